"""Response frames onto the UART's bytes: sync, status, command, length, payload, CRC."""


from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..protocol import MAX_PAYLOAD, RESPONSE_SYNC, Status
from .ports import crc_signature

__all__ = ["FrameSender", "RESPONSE"]

#: What a response frame says before its payload.
RESPONSE = data.StructLayout({"status": Status, "command": 8, "length": range(MAX_PAYLOAD + 1)})


class FrameSender(wiring.Component):
    """Sends response frames (``docs/protocol.md``), their payload taken from a byte stream.

    Every byte goes out of a register, and a CRC unit (:func:`~.ports.share_crc`)
    follows the bytes as they are taken,
    so no long path runs from whatever produces the payload to the UART.
    A byte takes at least two cycles, far less than the UART needs.

    Members
    -------
    i_head : In(stream of :data:`RESPONSE`)
        A response. It is taken when its frame's last byte has been sent:
        its fields are read while the frame goes out.
    i_stream : In(stream of bytes)
        The payload: exactly ``length`` bytes are taken for each response.
    o_stream : Out(stream of bytes)
        To the UART.
    crc : a CRC unit's port
    """

    i_head: In(stream.Signature(RESPONSE))
    i_stream: In(stream.Signature(8))
    o_stream: Out(stream.Signature(8))
    crc: Out(crc_signature())

    def elaborate(self, platform):
        m = Module()
        crc = self.crc
        head, out = self.i_head.payload, self.o_stream
        left = Signal(range(MAX_PAYLOAD + 1))       # payload bytes still to send
        done = Signal()                             # none: left == 0, registered
        covered = Signal()                          # the byte on o_stream goes into the CRC
        taken = out.valid & out.ready

        with m.If(taken):
            m.d.sync += out.valid.eq(0)
        m.d.comb += [crc.data.eq(out.payload), crc.valid.eq(taken & covered)]

        def load(value, then, checked=True):
            """Offer ``value`` once the previous byte has gone."""
            with m.If(~out.valid):
                m.d.sync += [out.payload.eq(value), out.valid.eq(1), covered.eq(checked)]
                m.next = then

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.i_head.valid):
                    m.d.comb += crc.start.eq(1)
                    load(RESPONSE_SYNC, "STATUS", checked=False)
            with m.State("STATUS"):
                load(head.status, "COMMAND")
            with m.State("COMMAND"):
                load(head.command, "LENGTH_LOW")
            with m.State("LENGTH_LOW"):
                load(head.length[:8], "LENGTH_HIGH")
            with m.State("LENGTH_HIGH"):
                m.d.sync += [left.eq(head.length), done.eq(head.length == 0)]
                load(head.length[8:], "PAYLOAD")
            with m.State("PAYLOAD"):
                # the CRC has taken the last payload byte by the cycle after it went
                with m.If(done):
                    load(crc.crc[:8], "CRC_HIGH", checked=False)
                with m.Elif(~out.valid & self.i_stream.valid):
                    m.d.comb += self.i_stream.ready.eq(1)
                    m.d.sync += [left.eq(left - 1), done.eq(left == 1)]
                    load(self.i_stream.payload, "PAYLOAD")
            with m.State("CRC_HIGH"):
                load(crc.crc[8:], "SENT", checked=False)
            with m.State("SENT"):
                with m.If(~out.valid):
                    m.d.comb += self.i_head.ready.eq(1)
                    m.next = "IDLE"
        return m
