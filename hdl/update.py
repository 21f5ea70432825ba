"""Update unit of one lane: gain shift, batch sum, momentum, leak and saturation, pipelined."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..model.config import LearnerConfig, Rounding
from ..model.fixed import MIX, SITE_LEAK, SITE_MOMENTUM, SITE_UPDATE, LayerPlan
from .arith import saturate, shift_round

__all__ = ["UpdateUnit"]


def _has_momentum(config: LearnerConfig) -> bool:
    return any(layer.momentum_shift for layer in config.layers)


def _has_leak(config: LearnerConfig) -> bool:
    return any(layer.leak_shift for layer in config.layers)


class UpdateUnit(wiring.Component):
    """One weight's update, as :meth:`nfloop.model.fixed.FixedLearner.step` does it, for any layer.

    Every input belongs to one weight and is presented in one cycle; the
    results appear :attr:`latency` cycles later. One clock cycle per
    addition: the gain shift with its rounding (and the momentum and leak
    roundings beside it), then the batch sum, the momentum, the leak and the
    saturating write-back, each only when the config has it.

    Members
    -------
    product : In(signed)
        The exact product delta * a (bias input 1.0 included).
    layer : In(range(layers))
        Whose gain, momentum and leak shifts apply.
    w : In(weight_acc)
        The weight accumulator before the update; ``w_new`` after.
    v, v_new : momentum state (when a layer has ``momentum_shift``).
    s, s_new : the batch sum (``batch_size > 1``); ``apply`` marks the batch's last sample.
    mix : In(unsigned(32))
        ``3 * k * 0x9E3779B1 mod 2**32`` for the weight's flat index k (stochastic rounding only).
    lfsr : In(unsigned(32))
        The LFSR state of this layer's update (stochastic rounding only).
    offset : In(signed)
        Adaptive gain: halvings of the layer's gain (negative: doublings), one of ``adaptive_gain.offsets``.

    With ``late_weight``, ``w`` is presented :meth:`weight_stage_of` cycles after the other inputs, in the
    stage that first uses it, so that the unit need not carry it.
    """

    def __init__(self, config: LearnerConfig, product_shape, late_weight: bool = False):
        self._config = config
        self._late_weight = late_weight
        self._plans = plans = [LayerPlan.build(config, l) for l in range(len(config.layers))]
        acc = config.formats.weight_acc.shape
        ports = {"product": In(product_shape), "layer": In(range(max(len(plans), 2))),
                 "w": In(acc), "w_new": Out(acc)}
        if self.momentum:
            ports.update(v=In(acc), v_new=Out(acc))
        if self.batched:
            ports.update(s=In(acc), s_new=Out(acc), apply=In(1))
        if self.stochastic:
            ports.update(mix=In(unsigned(32)), lfsr=In(unsigned(32)))
        if config.adaptive_gain:
            ports.update(offset=In(self.offset_shape(config)))
        super().__init__(ports)

    @staticmethod
    def offset_shape(config: LearnerConfig):
        offsets = config.adaptive_gain.offsets
        return signed(max(offsets.start.bit_length(), (offsets.stop - 1).bit_length()) + 1)

    @property
    def momentum(self) -> bool:
        return _has_momentum(self._config)

    @property
    def leak(self) -> bool:
        return _has_leak(self._config)

    @property
    def batched(self) -> bool:
        return self._config.batch_size > 1

    @property
    def stochastic(self) -> bool:
        return self._config.rounding is Rounding.STOCHASTIC

    @staticmethod
    def latency_of(config: LearnerConfig) -> int:
        """Cycles from the inputs to ``w_new``, ``v_new`` and ``s_new``: the roundings, the batch sum,
        the momentum, the leak and the write-back, one cycle each where the config has them."""
        return 2 + (config.batch_size > 1) + _has_momentum(config) + _has_leak(config)

    @property
    def latency(self) -> int:
        return self.latency_of(self._config)

    @staticmethod
    def weight_stage_of(config: LearnerConfig) -> int:
        """The stage (cycles after the inputs) that first uses ``w``: the leak's rounding in the first,
        otherwise the saturating write-back in the last."""
        return 0 if _has_leak(config) else UpdateUnit.latency_of(config) - 1

    def _per_layer(self, m, layer, shape, build, name):
        """A signal equal to ``build(plan)`` for the layer numbered by ``layer``."""
        out = Signal(shape, name=name)
        with m.Switch(layer):
            for plan in self._plans:
                with m.Case(plan.index):
                    value = build(plan)
                    if value is not None:
                        m.d.comb += out.eq(value)
        return out

    def _rand(self, site: int, bits: int):
        if not self.stochastic or bits <= 0:
            return None
        word = (self.mix + ((site * MIX) & 0xFFFFFFFF))[:32] ^ self.lfsr
        return word[32 - bits:32]

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        acc, rnd = cfg.formats.weight_acc, cfg.rounding
        stage = 0
        live = {}

        def next_stage(*keep, **values):
            """Register ``values`` and the ``keep`` entries of the last stage: one clock cycle."""
            nonlocal live, stage
            stage += 1
            values = {name: live[name] for name in keep} | values
            registered = {}
            for name, value in values.items():
                reg = Signal.like(value, name=f"{name}_{stage}") if isinstance(value, Signal) else \
                    Signal(value.shape(), name=f"{name}_{stage}")
                m.d.sync += reg.eq(value)
                registered[name] = reg
            live = registered

        # Stage 1: every rounding shift, on the inputs.
        def scaled(p, shift):
            u = shift_round(self.product, shift, rnd, self._rand(SITE_UPDATE, shift))
            return u if p.update_fits else saturate(u, acc)

        def update(p):
            if not cfg.adaptive_gain:
                return scaled(p, p.update_shift)
            u = Signal(acc.shape, name=f"u_{p.index}")
            with m.Switch(self.offset):
                for k, shift in zip(cfg.adaptive_gain.offsets, p.update_shifts):
                    with m.Case(k):
                        m.d.comb += u.eq(scaled(p, shift))
            return u
        # the old weight rides along from the inputs unless it comes in the stage that uses it
        carry_w = not (self._late_weight and self.weight_stage_of(cfg))
        values = {"u": self._per_layer(m, self.layer, acc.shape, update, "u")} | ({"w": self.w} if carry_w else {}) \
            | {"layer": self.layer}
        if self.momentum:
            values["decay"] = self._per_layer(m, self.layer, acc.shape, lambda p: p.momentum_shift and shift_round(
                self.v, p.momentum_shift, rnd, self._rand(SITE_MOMENTUM, p.momentum_shift)), "decay")
            values["v"] = self.v
        if self.leak:
            values["leak"] = self._per_layer(m, self.layer, acc.shape, lambda p: p.leak_shift and shift_round(
                self.w, p.leak_shift, rnd, self._rand(SITE_LEAK, p.leak_shift)), "leak")
        if self.batched:
            values.update(s=self.s, apply=self.apply)
        next_stage(**values)
        carried = (["w"] * carry_w + ["layer"] + ["v", "decay"] * self.momentum + ["leak"] * self.leak
                   + ["apply"] * self.batched)

        def apply():
            return live["apply"] if self.batched else 1

        change = "u"
        if self.batched:
            total = saturate(live["s"] + live["u"], acc)
            next_stage(*carried, change=total, s_new=Mux(apply(), 0, total))
            carried.append("s_new")
            change = "change"
        if self.momentum:
            carried.remove("decay")
            v_next = saturate(live["v"] - live["decay"] + live[change], acc)
            has = self._per_layer(m, live["layer"], 1, lambda p: int(bool(p.momentum_shift)), "has_momentum")
            carried.remove("v")
            next_stage(*carried, change=Mux(has, v_next, live[change]),
                       v_new=Mux(has & apply(), v_next, live["v"]))
            change = "change"
            carried.append("v_new")
        if self.leak:
            carried.remove("leak")
            next_stage(*carried, change=live[change] - live["leak"])
            change = "change"
        w = live["w"] if carry_w else self.w
        if carry_w:
            carried.remove("w")
        next_stage(*carried, w_new=Mux(apply(), saturate(w + live[change], acc), w))
        assert stage == self.latency, (stage, self.latency)
        m.d.comb += self.w_new.eq(live["w_new"])
        if self.momentum:
            m.d.comb += self.v_new.eq(live["v_new"])
        if self.batched:
            m.d.comb += self.s_new.eq(live["s_new"])
        return m
