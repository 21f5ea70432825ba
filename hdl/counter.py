"""A wide counter whose carry chain is cut in two, for the core's step and cycle counts.

A 48-bit ``count + inc`` is one carry chain from the increment's source through all 48
bits in a cycle: on the iCE40 the longest path of a board top. Here the low part
counts, its carry is registered, and the high part takes it a cycle later; the
output adds a carry still on its way, so it equals the plain counter at every
cycle, and only registers feed that adder.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SplitCounter"]


class SplitCounter(wiring.Component):
    """``value`` counts ``inc``: set to 0 by ``clear``, to ``load_value`` by ``load`` (clear first).

    Parameters
    ----------
    width : int
        Bits of the count (it wraps at ``2**width``, as a plain counter does).
    low_width : int
        Bits counted in the first cycle; the rest take their carry a cycle later.

    Members
    -------
    inc, clear, load : In(1)
    load_value : In(width)
    value : Out(width)
        The count: equal, every cycle, to a plain ``count + inc`` register's.
    """

    def __init__(self, width: int, low_width: int = 16):
        if not (isinstance(width, int) and width >= 2):
            raise TypeError(f"width must be an integer of at least 2, not {width!r}")
        if not (isinstance(low_width, int) and 1 <= low_width < width):
            raise TypeError(f"low_width must be an integer from 1 to {width - 1}, not {low_width!r}")
        self._low_width = low_width
        super().__init__({"inc": In(1), "clear": In(1), "load": In(1), "load_value": In(width),
                          "value": Out(width)})

    def elaborate(self, platform):
        m = Module()
        low = Signal(self._low_width)
        high = Signal(len(self.value) - self._low_width)
        carry = Signal()           # low wrapped last cycle; high has not taken it yet
        m.d.comb += self.value.eq(Cat(low, high + carry))
        m.d.sync += [high.eq(high + carry), carry.eq(0)]
        with m.If(self.clear):
            m.d.sync += [low.eq(0), high.eq(0)]
        with m.Elif(self.load):
            m.d.sync += Cat(low, high).eq(self.load_value)
        with m.Else():
            m.d.sync += [low.eq(low + self.inc), carry.eq(self.inc & low.all())]
        return m
