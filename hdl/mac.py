"""One MAC lane: registered operands, registered product, accumulator.

Each lane maps onto one DSP block (SB_MAC16 on iCE40, MULT18X18D on ECP5):
the operand and product registers are the DSP's own input and output
registers, which is what lets the multiplier meet timing on iCE40, where
nextpnr cannot time the DSP itself.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MacLane"]


class MacLane(wiring.Component):
    """Multiply ``a * b`` with two register stages; accumulate the products.

    Timing: operands presented in cycle t appear as ``product`` in cycle t + 2.
    ``first`` / ``accumulate`` qualify that product: in the cycle ``product``
    appears, ``sum`` is ``product`` plus the running total (or plus 0 when
    ``first``), and the total takes ``sum`` when ``accumulate`` is set.

    Parameters
    ----------
    a_width, b_width : int
        Signed operand widths.
    sum_width : int
        Accumulator width: wide enough for every exact sum (the config checks).
    """

    def __init__(self, a_width: int, b_width: int, sum_width: int):
        self.latency = 2
        super().__init__({
            "a": In(signed(a_width)), "b": In(signed(b_width)),
            "product": Out(signed(a_width + b_width)),
            "first": In(1), "accumulate": In(1),
            "sum": Out(signed(sum_width)),
        })

    def elaborate(self, platform):
        m = Module()
        a_reg = Signal.like(self.a)
        b_reg = Signal.like(self.b)
        total = Signal.like(self.sum)
        m.d.sync += [a_reg.eq(self.a), b_reg.eq(self.b), self.product.eq(a_reg * b_reg)]
        m.d.comb += self.sum.eq(Mux(self.first, 0, total) + self.product)
        with m.If(self.accumulate):
            m.d.sync += total.eq(self.sum)
        return m
