"""Update unit of one lane and layer: gain shift, batch sum, momentum, leak, saturation."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..model.config import LearnerConfig, Rounding
from ..model.fixed import MIX, SITE_LEAK, SITE_MOMENTUM, SITE_UPDATE, LayerPlan
from .arith import saturate, shift_round

__all__ = ["UpdateUnit"]


class UpdateUnit(wiring.Component):
    """One weight's update (combinational), as :meth:`nfloop.model.fixed.FixedLearner.step` does it.

    Members
    -------
    product : In(signed)
        The exact product delta * a (bias input 1.0 included).
    w : In(weight_acc)
        The weight accumulator before the update; ``w_new`` after.
    v, v_new : momentum state (only with ``momentum_shift``).
    s, s_new : the batch sum (only with ``batch_size > 1``); ``apply`` marks the batch's last sample.
    mix : In(unsigned(32))
        ``3 * k * 0x9E3779B1 mod 2**32`` for the weight's flat index k (stochastic rounding only).
    lfsr : In(unsigned(32))
        The LFSR state of this layer's update (stochastic rounding only).
    """

    def __init__(self, config: LearnerConfig, layer: int, product_shape):
        self._config = config
        self._plan = plan = LayerPlan.build(config, layer)
        acc = config.formats.weight_acc.shape
        ports = {"product": In(product_shape), "w": In(acc), "w_new": Out(acc)}
        if plan.momentum_shift:
            ports.update(v=In(acc), v_new=Out(acc))
        if config.batch_size > 1:
            ports.update(s=In(acc), s_new=Out(acc), apply=In(1))
        if config.rounding is Rounding.STOCHASTIC:
            ports.update(mix=In(unsigned(32)), lfsr=In(unsigned(32)))
        super().__init__(ports)

    def _rand(self, site: int, bits: int):
        if self._config.rounding is not Rounding.STOCHASTIC or bits <= 0:
            return None
        word = (self.mix + ((site * MIX) & 0xFFFFFFFF))[:32] ^ self.lfsr
        return word[32 - bits:32]

    def elaborate(self, platform):
        m = Module()
        cfg, p = self._config, self._plan
        acc, rnd = cfg.formats.weight_acc, cfg.rounding
        u = shift_round(self.product, p.update_shift, rnd, self._rand(SITE_UPDATE, p.update_shift))
        if not p.update_fits:
            u = saturate(u, acc)
        if cfg.batch_size > 1:
            total = saturate(self.s + u, acc)
            m.d.comb += self.s_new.eq(Mux(self.apply, 0, total))
            apply = self.apply
        else:
            total, apply = u, 1
        change = total
        if p.momentum_shift:
            decay = shift_round(self.v, p.momentum_shift, rnd, self._rand(SITE_MOMENTUM, p.momentum_shift))
            v_next = saturate(self.v - decay + change, acc)
            m.d.comb += self.v_new.eq(Mux(apply, v_next, self.v))
            change = v_next
        if p.leak_shift:
            change = change - shift_round(self.w, p.leak_shift, rnd, self._rand(SITE_LEAK, p.leak_shift))
        m.d.comb += self.w_new.eq(Mux(apply, saturate(self.w + change, acc), self.w))
        return m
