"""Adaptive gain: each layer's error energy, and its gain offset moved by the rule at a period's end."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..model.config import BAND_SHIFT, LearnerConfig
from ..model.fixed import GAIN_ENERGY, GAIN_OFFSET, GAIN_PREVIOUS, GAIN_WORDS
from .update import UpdateUnit

__all__ = ["GainAdapter"]


class GainAdapter(wiring.Component):
    """The state of :class:`~nfloop.model.config.AdaptiveGain` per layer, as
    :meth:`nfloop.model.fixed.FixedLearner.step` keeps it: an offset on the layer's update shift, its error
    energy in this period, and the last period's (-1 before the first period ends).

    Members
    -------
    addend : In(array of unsigned, one per layer)
        Sums of ``|delta|`` to add to each layer's energy this cycle (saturating at formats.weight_acc).
    decide : In(1)
        A period ends: each layer's offset moves by :func:`nfloop.model.fixed.adapt_gain`, its energy
        becomes the previous one and restarts from this cycle's addend.
    clear : In(1)
        Back to the start: offsets 0, energies 0, no previous period.
    offset : Out(array of signed, one per layer)
    layer, word, wdata, write, rdata
        Host access to the words of :data:`~nfloop.model.fixed.GAIN_WORDS` (offset, energy, previous): a
        ``write`` strobe writes ``wdata``; ``rdata`` shows the addressed word.
    """

    def __init__(self, config: LearnerConfig, addend_width: int):
        self._config = config
        L = len(config.layers)
        acc = config.formats.weight_acc
        super().__init__({
            "addend": In(data.ArrayLayout(unsigned(addend_width), L)),
            "decide": In(1), "clear": In(1),
            "offset": Out(data.ArrayLayout(UpdateUnit.offset_shape(config), L)),
            "layer": In(range(max(L, 2))), "word": In(range(GAIN_WORDS)),
            "wdata": In(acc.shape), "write": In(1), "rdata": Out(acc.shape),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, rule = self._config, self._config.adaptive_gain
        acc = cfg.formats.weight_acc
        top = acc.max_code
        for l in range(len(cfg.layers)):
            offset = self.offset[l]
            energy = Signal(unsigned(acc.bits - 1), name=f"energy_{l}")
            previous = Signal(signed(acc.bits), init=-1, name=f"previous_{l}")
            # the rule's thresholds, from the registered previous energy (it changes a period apart)
            rising = Signal(signed(acc.bits + 1), name=f"rising_{l}")
            falling = Signal(signed(acc.bits), name=f"falling_{l}")
            m.d.sync += [rising.eq(previous + (previous >> BAND_SHIFT)),
                         falling.eq(previous - (previous >> BAND_SHIFT))]
            total = Mux(self.decide, 0, energy) + self.addend[l]
            m.d.sync += energy.eq(Mux(total > top, top, total))
            with m.If(self.decide):
                m.d.sync += previous.eq(energy)
                with m.If(previous >= 0):
                    with m.If(energy > rising):
                        m.d.sync += offset.eq(Mux(offset == rule.down, rule.down, offset + 1))
                    with m.Elif(energy < falling):
                        m.d.sync += offset.eq(Mux(offset == -rule.up, -rule.up, offset - 1))
            here = self.layer == l
            words = {GAIN_OFFSET: offset, GAIN_ENERGY: energy, GAIN_PREVIOUS: previous}
            with m.If(here):
                with m.Switch(self.word):
                    for index, word in words.items():
                        with m.Case(index):
                            m.d.comb += self.rdata.eq(word)
                            with m.If(self.write):
                                m.d.sync += word.eq(self.wdata)
            with m.If(self.clear):
                m.d.sync += [offset.eq(0), energy.eq(0), previous.eq(-1)]
        return m
