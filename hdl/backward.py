"""Backward unit: the lanes' products W[j, i] * delta_j summed into g_i = (W^T delta)_i."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BackwardUnit"]


class BackwardUnit(wiring.Component):
    """Adder tree over the lanes, accumulated over the rounds of one column.

    The backward pass walks the weights column by column; in one cycle lane p
    holds W[r*P + p, i] * delta[r*P + p] for the round r. ``first`` starts a
    column, ``last`` ends it: then ``g`` holds the exact sum and ``g_valid``
    is set for one cycle (one cycle after ``last``).

    Members
    -------
    products : In(signed) x lanes
    lane_valid : In(lanes)   rows past the layer's last unit contribute nothing
    """

    def __init__(self, lanes: int, product_width: int, sum_width: int):
        self._lanes = lanes
        super().__init__({
            "products": In(signed(product_width)).array(lanes),
            "lane_valid": In(lanes),
            "strobe": In(1), "first": In(1), "last": In(1),
            "g": Out(signed(sum_width)), "g_valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        terms = [Mux(self.lane_valid[p], self.products[p], 0) for p in range(self._lanes)]
        while len(terms) > 1:
            terms = [terms[k] + terms[k + 1] if k + 1 < len(terms) else terms[k]
                     for k in range(0, len(terms), 2)]
        total = Signal.like(self.g)
        column = Signal.like(self.g)
        m.d.comb += column.eq(Mux(self.first, 0, total) + terms[0])
        m.d.sync += self.g_valid.eq(0)
        with m.If(self.strobe):
            m.d.sync += total.eq(column)
            with m.If(self.last):
                m.d.sync += [self.g.eq(column), self.g_valid.eq(1)]
        return m
