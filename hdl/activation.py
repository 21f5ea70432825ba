"""Activation and window units of one layer (combinational)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..model.config import ActivationKind, LearnerConfig
from ..model.fixed import LayerPlan
from .arith import saturate, shift_round

__all__ = ["ActivationUnit", "WindowBit", "WindowApply", "WindowUnit"]


def _sign(value, threshold):
    """sgn(value - threshold) with sgn(0) = 0, as a 2-bit signed value."""
    return Mux(value > threshold, 1, Mux(value < threshold, -1, 0))


class ActivationUnit(wiring.Component):
    """sigma(z) on activation codes: :func:`nfloop.model.fixed.activate`.

    Members
    -------
    z : In(activation)
    a : Out(activation)
    """

    def __init__(self, config: LearnerConfig, layer: int):
        self._plan = LayerPlan.build(config, layer)
        self._config = config
        shape = config.formats.activation.shape
        super().__init__({"z": In(shape), "a": Out(shape)})

    def elaborate(self, platform):
        m = Module()
        p, z, fmt = self._plan, self.z, self._config.formats.activation
        match p.kind:
            case ActivationKind.IDENTITY:
                m.d.comb += self.a.eq(z)
            case ActivationKind.RELU:
                m.d.comb += self.a.eq(Mux(z < 0, 0, z))
            case ActivationKind.LEAKY_RELU:
                slope = shift_round(z, p.slope_shift, self._config.forward_rounding)
                m.d.comb += self.a.eq(Mux(z >= 0, z, saturate(slope, fmt)))
            case ActivationKind.HARDTANH:
                m.d.comb += self.a.eq(Mux(z < p.clip_lo, p.clip_lo, Mux(z > p.clip_hi, p.clip_hi, z)))
            case ActivationKind.SIGN | ActivationKind.STAIRCASE:
                total = sum(_sign(z, c) for c in p.thresholds)
                m.d.comb += self.a.eq(total * p.step_code)
            case kind:
                raise ValueError(f"no activation {kind!r}")
        return m


class WindowBit(wiring.Component):
    """Whether the window lets a difference through at z: one bit per unit is all the backward pass keeps.

    Rectangular windows pass ``g`` where ``lo <= z <= hi``; in derivative mode
    the bit says ``sigma'(z) = 1`` (leaky ReLU: the positive side; sign and
    staircase: never).

    Members
    -------
    z : In(activation)
    bit : Out(1)
    """

    def __init__(self, config: LearnerConfig, layer: int):
        self._plan = LayerPlan.build(config, layer)
        super().__init__({"z": In(config.formats.activation.shape), "bit": Out(1)})

    def elaborate(self, platform):
        m = Module()
        p, z = self._plan, self.z
        if p.derivative:
            match p.kind:
                case ActivationKind.IDENTITY:
                    bit = 1
                case ActivationKind.RELU | ActivationKind.LEAKY_RELU:
                    bit = z > 0
                case ActivationKind.HARDTANH:
                    bit = (z > p.clip_lo) & (z < p.clip_hi)
                case ActivationKind.SIGN | ActivationKind.STAIRCASE:
                    bit = 0
                case kind:
                    raise ValueError(f"no activation {kind!r}")
        else:
            bit = 1
            if p.window_lo is not None:
                bit = z >= p.window_lo
            if p.window_hi is not None:
                bit = bit & (z <= p.window_hi)
        m.d.comb += self.bit.eq(bit)
        return m


class WindowApply(wiring.Component):
    """delta = g where the window bit is set, else 0 (leaky ReLU's derivative: g times its slope).

    Members
    -------
    g : In(error)
    bit : In(1)
    delta : Out(error)
    """

    def __init__(self, config: LearnerConfig, layer: int):
        self._plan = LayerPlan.build(config, layer)
        self._config = config
        f = config.formats
        super().__init__({"g": In(f.error.shape), "bit": In(1), "delta": Out(f.error.shape)})

    def elaborate(self, platform):
        m = Module()
        p, cfg = self._plan, self._config
        other = 0
        if p.derivative and p.kind is ActivationKind.LEAKY_RELU:
            other = saturate(shift_round(self.g, p.slope_shift, cfg.forward_rounding), cfg.formats.error)
        m.d.comb += self.delta.eq(Mux(self.bit, self.g, other))
        return m


class WindowUnit(wiring.Component):
    """delta = g (.) s(z): :func:`nfloop.model.fixed.apply_window`, as :class:`WindowBit` then :class:`WindowApply`.

    Members
    -------
    g : In(error)
        The difference arriving at this layer (the error, or W^T delta).
    z : In(activation)
        The layer's pre-activation for the same unit.
    delta : Out(error)
    """

    def __init__(self, config: LearnerConfig, layer: int):
        self._config, self._layer = config, layer
        f = config.formats
        super().__init__({"g": In(f.error.shape), "z": In(f.activation.shape),
                          "delta": Out(f.error.shape)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.bit = bit = WindowBit(self._config, self._layer)
        m.submodules.apply = apply = WindowApply(self._config, self._layer)
        m.d.comb += [bit.z.eq(self.z), apply.g.eq(self.g), apply.bit.eq(bit.bit), self.delta.eq(apply.delta)]
        return m
