"""What becomes of a round's sums: activations and the error forward, deltas backward."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..model.config import LearnerConfig
from ..model.fixed import LayerPlan
from .activation import ActivationUnit, WindowApply, WindowBit
from .arith import requantise
from .error import ErrorUnit

__all__ = ["RowWriteback", "ColumnWriteback"]


class RowWriteback(wiring.Component):
    """One unit's forward result: z = requantise(sum), a = sigma(z) and its window bit.

    For the output layer the unit goes on to the error e = y - a and the delta
    ``e`` windowed by z. One register stage per step; every output appears
    :attr:`latency` cycles after ``sum``.

    Members
    -------
    sum : In(signed)
        The exact row sum.
    a : Out(activation)
    bit : Out(1)
        The window at z (kept for the backward pass).
    y : In(activation)
        Output layer only: the target, presented :attr:`target_delay` cycles after ``sum``.
    e, delta : Out(error)
        Output layer only.
    """

    def __init__(self, config: LearnerConfig, layer: int, sum_width: int):
        self._config, self._layer = config, layer
        self._output = layer == len(config.layers) - 1
        f = config.formats
        ports = {"sum": In(signed(sum_width)), "a": Out(f.activation.shape), "bit": Out(1)}
        if self._output:
            ports.update(y=In(f.activation.shape), e=Out(f.error.shape), delta=Out(f.error.shape))
        super().__init__(ports)

    @staticmethod
    def latency_of(config: LearnerConfig, layer: int) -> int:
        """Register stages: z, then a and the window bit; for the output layer also e (and delta)."""
        return 3 if layer == len(config.layers) - 1 else 2

    @property
    def latency(self) -> int:
        return self.latency_of(self._config, self._layer)

    #: Cycles after ``sum`` that the output layer takes its target: beside a.
    TARGET_DELAY = 2

    def elaborate(self, platform):
        m = Module()
        cfg, l = self._config, self._layer
        f, plan = cfg.formats, LayerPlan.build(cfg, l)
        z = Signal(f.activation.shape)
        m.d.sync += z.eq(requantise(self.sum, plan.z_shift, f.activation, cfg.forward_rounding))
        m.submodules.activation = act = ActivationUnit(cfg, l)
        m.submodules.window = win = WindowBit(cfg, l)
        a, bit = Signal.like(self.a, name="a_2"), Signal(name="bit_2")
        m.d.comb += [act.z.eq(z), win.z.eq(z)]
        m.d.sync += [a.eq(act.a), bit.eq(win.bit)]
        if not self._output:
            m.d.comb += [self.a.eq(a), self.bit.eq(bit)]
            return m
        m.submodules.error = err = ErrorUnit(cfg)
        m.submodules.apply = apply = WindowApply(cfg, l)
        m.d.comb += [err.y.eq(self.y), err.yhat.eq(a)]
        m.d.sync += [self.e.eq(err.e), self.a.eq(a), self.bit.eq(bit)]
        m.d.comb += [apply.g.eq(self.e), apply.bit.eq(self.bit), self.delta.eq(apply.delta)]
        return m


class ColumnWriteback(wiring.Component):
    """One column's backward result: g = requantise(sum) into the error format, windowed.

    ``layer`` is the layer that receives the delta (the one before the
    layer whose weights made the sum).

    Members
    -------
    sum : In(signed)
        The exact column sum of W^T delta.
    bit : In(1)
        The receiving unit's window bit, presented one cycle after ``sum``.
    delta : Out(error)
        :attr:`latency` cycles after ``sum``.
    """

    def __init__(self, config: LearnerConfig, layer: int, sum_width: int):
        self._config, self._layer = config, layer
        f = config.formats
        super().__init__({"sum": In(signed(sum_width)), "bit": In(1), "delta": Out(f.error.shape)})

    #: The requantisation register; the window is applied after it.
    LATENCY = 1

    @property
    def latency(self) -> int:
        return self.LATENCY

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        f = cfg.formats
        g = Signal(f.error.shape)
        m.d.sync += g.eq(requantise(self.sum, f.weight.frac, f.error, cfg.forward_rounding))
        m.submodules.apply = apply = WindowApply(cfg, self._layer)
        m.d.comb += [apply.g.eq(g), apply.bit.eq(self.bit), self.delta.eq(apply.delta)]
        return m
