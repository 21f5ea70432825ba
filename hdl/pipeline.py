"""A register stage in a stream, for a stream that crosses the die."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamRegister"]


class StreamRegister(wiring.Component):
    """Passes ``i_stream`` to ``o_stream`` a cycle later, one transfer a cycle.

    Every signal that leaves it comes from a register: ``o_stream``'s payload
    and ``valid``, and ``i_stream.ready``, so no path runs through it from one
    side of the die to the other. A transfer that arrives while ``o_stream``
    is held waits in a second register (a skid buffer), and ``i_stream.ready``
    falls until it has moved on.

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
        skid = Signal.like(i.payload, name="skid")
        skid_valid = Signal()           # only while o_stream holds a transfer too
        m.d.comb += i.ready.eq(~skid_valid)
        with m.If(~o.valid | o.ready):
            with m.If(skid_valid):
                m.d.sync += [o.payload.eq(skid), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [o.valid.eq(i.valid), o.payload.eq(i.payload)]
        with m.Elif(i.valid & ~skid_valid):
            m.d.sync += [skid.eq(i.payload), skid_valid.eq(1)]
        return m
