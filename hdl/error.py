"""Error unit: e = y - yhat, aligned to the error format, saturated (combinational)."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..model.config import LearnerConfig
from .arith import requantise

__all__ = ["ErrorUnit"]


class ErrorUnit(wiring.Component):
    """:func:`nfloop.model.fixed.output_error` in hardware.

    Members
    -------
    y, yhat : In(activation)
    e : Out(error)
    """

    def __init__(self, config: LearnerConfig):
        self._config = config
        f = config.formats
        super().__init__({"y": In(f.activation.shape), "yhat": In(f.activation.shape),
                          "e": Out(f.error.shape)})

    def elaborate(self, platform):
        m = Module()
        f = self._config.formats
        diff = self.y - self.yhat
        m.d.comb += self.e.eq(requantise(diff, f.activation.frac - f.error.frac, f.error,
                                         self._config.forward_rounding))
        return m
