"""A registered signed multiplier: one DSP block with its input and output registers.

A board's platform builds it from its FPGA family's DSP block with the
block's own registers (``platform.get_multiplier``, which the board platforms
of :mod:`nfloop.boards.families` have, as Amaranth's platforms have
``get_ff_sync``); elsewhere, in simulation or when the operands are wider than
the block, it is registers around a ``*``, equal cycle for cycle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Multiplier", "sign_extend"]


def sign_extend(value, width: int):
    """``value`` (signed) as ``width`` bits."""
    value = Value.cast(value)
    return value if len(value) >= width else Cat(value, value[-1].replicate(width - len(value)))


class Multiplier(wiring.Component):
    """``product = a * b``, two clock cycles after the operands are presented.

    Parameters
    ----------
    a_width, b_width : int
        Signed operand widths.

    Members
    -------
    a, b : In(signed)
    product : Out(signed(a_width + b_width))
    """

    def __init__(self, a_width: int, b_width: int):
        for name, width in (("a_width", a_width), ("b_width", b_width)):
            if not (isinstance(width, int) and width >= 1):
                raise TypeError(f"{name} must be a positive integer, not {width!r}")
        super().__init__({"a": In(signed(a_width)), "b": In(signed(b_width)),
                          "product": Out(signed(a_width + b_width))})

    #: Cycles from the operands to their product: the input and the output register.
    LATENCY = 2

    @property
    def latency(self) -> int:
        return self.LATENCY

    def elaborate(self, platform):
        if hasattr(platform, "get_multiplier"):
            dsp = platform.get_multiplier(self)
            if dsp is not None:
                return dsp
        m = Module()
        # Reset-less, like the DSP's own registers.
        a_reg = Signal.like(self.a, reset_less=True)
        b_reg = Signal.like(self.b, reset_less=True)
        product = Signal.like(self.product, reset_less=True)
        m.d.sync += [a_reg.eq(self.a), b_reg.eq(self.b), product.eq(a_reg * b_reg)]
        m.d.comb += self.product.eq(product)
        return m
