"""Activation and window units of one layer (combinational)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..model.config import ActivationKind, LearnerConfig
from ..model.fixed import LayerPlan
from .arith import saturate, shift_round

__all__ = ["ActivationUnit", "WindowUnit"]


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
        kind = p.kind
        if kind is ActivationKind.IDENTITY:
            m.d.comb += self.a.eq(z)
        elif kind is ActivationKind.RELU:
            m.d.comb += self.a.eq(Mux(z < 0, 0, z))
        elif kind is ActivationKind.LEAKY_RELU:
            slope = shift_round(z, p.slope_shift, self._config.forward_rounding)
            m.d.comb += self.a.eq(Mux(z >= 0, z, saturate(slope, fmt)))
        elif kind is ActivationKind.HARDTANH:
            m.d.comb += self.a.eq(Mux(z < p.clip_lo, p.clip_lo, Mux(z > p.clip_hi, p.clip_hi, z)))
        else:
            total = sum(_sign(z, c) for c in p.thresholds)
            m.d.comb += self.a.eq(total * p.step_code)
        return m


class WindowUnit(wiring.Component):
    """delta = g (.) s(z): :func:`nfloop.model.fixed.apply_window`.

    Members
    -------
    g : In(error)
        The difference arriving at this layer (the error, or W^T delta).
    z : In(activation)
        The layer's pre-activation for the same unit.
    delta : Out(error)
    """

    def __init__(self, config: LearnerConfig, layer: int):
        self._plan = LayerPlan.build(config, layer)
        self._config = config
        f = config.formats
        super().__init__({"g": In(f.error.shape), "z": In(f.activation.shape),
                          "delta": Out(f.error.shape)})

    def elaborate(self, platform):
        m = Module()
        p, g, z = self._plan, self.g, self.z
        if p.derivative:
            kind = p.kind
            if kind is ActivationKind.IDENTITY:
                out = g
            elif kind is ActivationKind.RELU:
                out = Mux(z > 0, g, 0)
            elif kind is ActivationKind.LEAKY_RELU:
                slope = saturate(shift_round(g, p.slope_shift, self._config.forward_rounding),
                                 self._config.formats.error)
                out = Mux(z > 0, g, slope)
            elif kind is ActivationKind.HARDTANH:
                out = Mux((z > p.clip_lo) & (z < p.clip_hi), g, 0)
            else:
                out = 0
        else:
            inside = 1
            if p.window_lo is not None:
                inside = z >= p.window_lo
            if p.window_hi is not None:
                inside = inside & (z <= p.window_hi)
            out = Mux(inside, g, 0)
        m.d.comb += self.delta.eq(out)
        return m
