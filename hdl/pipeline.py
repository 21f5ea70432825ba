"""A register stage in a stream, for a stream that crosses the die."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamRegister"]


class StreamRegister(wiring.Component):
    """Passes ``i_stream`` to ``o_stream`` a cycle later, one transfer a cycle.

    ``o_stream``'s payload and ``valid`` leave registers, so the path from
    whatever drives ``i_stream`` ends here. ``ready`` passes through without
    a register (``i_stream.ready`` is set when the register is empty or is
    being taken): a stream whose ``ready`` is a register on the far side
    keeps its long path on the data alone.

    Parameters
    ----------
    payload_shape : shape-like
    """

    def __init__(self, payload_shape):
        super().__init__({"i_stream": In(stream.Signature(payload_shape)),
                          "o_stream": Out(stream.Signature(payload_shape))})

    def elaborate(self, platform):
        m = Module()
        i, o = self.i_stream, self.o_stream
        m.d.comb += i.ready.eq(~o.valid | o.ready)
        with m.If(i.ready):
            m.d.sync += [o.valid.eq(i.valid), o.payload.eq(i.payload)]
        return m
