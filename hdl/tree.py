"""Adder tree over the lanes' products: row sums forward, column sums backward."""

from __future__ import annotations

from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ReductionTree"]


class ReductionTree(wiring.Component):
    """Sums adjacent pairs of its inputs, one registered level per clock cycle.

    Level t holds ``inputs >> t`` sums of ``2**t`` neighbours each, t cycles
    after the inputs (level 0 is the inputs themselves). With lane
    ``p = g * C + c``, level ``log2 C`` holds the sum over the C lanes of
    each group g: a forward round's row sums.

    Only neighbours are added, so a placer can keep every wire short.

    Parameters
    ----------
    inputs : int
        A power of two.
    width : int
        Signed input width; level t is ``width + t`` bits wide and never overflows.
    levels : int
        Deepest level built.

    Members
    -------
    products : In(signed(width)).array(inputs)
    level_<t> : Out(signed(width + t)).array(inputs >> t), for t = 0 .. levels
    """

    def __init__(self, inputs: int, width: int, levels: int):
        if not (isinstance(inputs, int) and inputs >= 1 and inputs & (inputs - 1) == 0):
            raise ValueError(f"inputs must be a power of two, not {inputs!r}")
        if not (isinstance(levels, int) and 0 <= levels <= inputs.bit_length() - 1):
            raise ValueError(f"levels must be an integer from 0 to {inputs.bit_length() - 1}, not {levels!r}")
        self._inputs, self._width, self._levels = inputs, width, levels
        ports = {"products": In(signed(width)).array(inputs)}
        for t in range(levels + 1):
            ports[f"level_{t}"] = Out(signed(width + t)).array(inputs >> t)
        super().__init__(ports)

    @staticmethod
    def level_latency(t: int) -> int:
        """Cycles from the inputs to level t: one register per level."""
        return t

    def level(self, t: int):
        return getattr(self, f"level_{t}")

    def elaborate(self, platform):
        m = Module()
        n = self._inputs
        for q in range(n):
            m.d.comb += self.level_0[q].eq(self.products[q])
        for t in range(1, self._levels + 1):
            below, here = self.level(t - 1), self.level(t)
            for q in range(n >> t):
                m.d.sync += here[q].eq(below[2 * q] + below[2 * q + 1])
        return m
