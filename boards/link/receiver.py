"""Request frames from the UART's bytes: sync, command, length, payload, CRC."""


from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import In, Out

from ..protocol import MAX_PAYLOAD, REQUEST_HEADER, REQUEST_SYNC, Status
from .ports import BUFFER_ADDRESS_BITS, crc_signature

__all__ = ["FrameReceiver", "FRAME", "HEADER_BYTES"]

#: The payload bytes kept in the header register as they arrive: the longest command header.
HEADER_BYTES = REQUEST_HEADER.size // 8

#: What the receiver tells of a frame. ``status`` is ``OK``, ``BAD_CRC``, ``BAD_LENGTH`` (then
#: ``length`` is meaningless) or ``TIMEOUT``; ``command`` is 0 when the frame timed out before it.
FRAME = data.StructLayout({
    "status": Status,
    "command": 8,
    "length": range(MAX_PAYLOAD + 1),
    "header": REQUEST_HEADER,
})


class FrameReceiver(wiring.Component):
    """Receives request frames (``docs/protocol.md``) from a byte stream.

    The payload goes into the frame buffer through ``buffer``, each byte at
    its offset, while a CRC unit (:func:`~.ports.share_crc`) follows the
    frame. The first :data:`HEADER_BYTES` payload bytes are also kept in a
    register, so the command's header fields are at hand without reading the
    buffer. A frame that stops arriving for ``timeout_cycles``
    ends as ``TIMEOUT``; a length over the protocol's limit ends it as
    ``BAD_LENGTH`` as soon as it has arrived, and the bytes the frame declared
    (its payload and CRC) are then skipped, until the line has been quiet for
    ``timeout_cycles``: nothing inside a rejected frame is taken for a frame.

    Parameters
    ----------
    timeout_cycles : int
        Clock cycles without a byte, inside a frame, after which it ends as ``TIMEOUT``.

    Members
    -------
    i_stream : In(stream of bytes)
        From the UART. Always ready: bytes outside a frame are skipped.
    o_stream : Out(stream of :data:`FRAME`)
        One transfer per frame, good or bad. Its payload, like the frame
        buffer, stays as it is after the transfer until the next frame
        starts, so the frame's user can keep reading it.
    buffer : frame buffer write port
        ``MAX_PAYLOAD`` bytes.
    crc : a CRC unit's port
    listen : In(1)
        Look for a sync byte; while low, bytes outside a frame are dropped,
        so that a request is not taken while the previous one runs.
    busy : Out(1)
        A frame is arriving or waiting to be taken.
    """

    i_stream: In(stream.Signature(8))
    o_stream: Out(stream.Signature(FRAME))
    buffer: Out(WritePort.Signature(addr_width=BUFFER_ADDRESS_BITS, shape=8).flip())
    crc: Out(crc_signature())
    listen: In(1)
    busy: Out(1)

    def __new__(cls, timeout_cycles: int, src_loc_at=0, **kwargs):
        # Checked before the part exists: a rejected one leaves no unused part behind.
        if not (isinstance(timeout_cycles, int) and timeout_cycles >= 1):
            raise TypeError(f"Timeout must be a positive integer number of cycles, not {timeout_cycles!r}")
        return super().__new__(cls, src_loc_at=src_loc_at + 1, **kwargs)

    def __init__(self, timeout_cycles: int):
        self._timeout = timeout_cycles
        super().__init__()

    @property
    def timeout_cycles(self) -> int:
        return self._timeout

    def elaborate(self, platform):
        m = Module()
        crc = self.crc
        frame = self.o_stream.payload
        byte, got = self.i_stream.payload, self.i_stream.valid
        k = Signal(range(MAX_PAYLOAD + 1))          # payload bytes so far
        # what the frame says is only read once it has arrived: no reset needed
        header = Signal(REQUEST_HEADER.size, reset_less=True)
        command, length = Signal(8, reset_less=True), Signal.like(frame.length, reset_less=True)
        m.d.comb += [frame.header.eq(header), frame.command.eq(command), frame.length.eq(length)]
        crc_low_ok = Signal()
        skip = Signal(17)                           # BAD_LENGTH: the declared bytes still to be skipped
        # counts down from timeout - 1 to -1: the sign bit is the timeout, with no comparator
        timer = Signal(signed(self._timeout.bit_length() + 1))

        m.d.comb += [
            self.i_stream.ready.eq(1),
            crc.data.eq(byte),
            self.buffer.addr.eq(k), self.buffer.data.eq(byte),
        ]

        def end(status):
            m.d.sync += frame.status.eq(status)
            m.next = "DONE"

        def receiving(then):
            """A byte of the frame arrives, or has not for too long."""
            with m.If(got):
                m.d.sync += timer.eq(self._timeout - 1)
                then()
            with m.Elif(timer[-1]):
                end(Status.TIMEOUT)
            with m.Else():
                m.d.sync += timer.eq(timer - 1)

        def checked(then):
            """The byte goes into the CRC."""
            def on_byte():
                m.d.comb += crc.valid.eq(1)
                then()
            return on_byte

        with m.FSM() as fsm:
            with m.State("HUNT"):
                m.d.sync += timer.eq(self._timeout - 1)
                with m.If(got & self.listen & (byte == REQUEST_SYNC)):
                    m.d.comb += crc.start.eq(1)
                    m.d.sync += [command.eq(0), k.eq(0)]
                    m.next = "COMMAND"

            with m.State("COMMAND"):
                def on_command():
                    m.d.sync += command.eq(byte)
                    m.next = "LENGTH_LOW"
                receiving(checked(on_command))

            with m.State("LENGTH_LOW"):
                def on_length_low():
                    m.d.sync += length[:8].eq(byte)
                    m.next = "LENGTH_HIGH"
                receiving(checked(on_length_low))

            with m.State("LENGTH_HIGH"):
                def on_length_high():
                    m.d.sync += length[8:].eq(byte)
                    with m.If(Cat(length[:8], byte) > MAX_PAYLOAD):
                        m.d.sync += skip.eq(Cat(length[:8], byte) + 2)
                        end(Status.BAD_LENGTH)
                    with m.Else():
                        m.next = "PAYLOAD"
                receiving(checked(on_length_high))

            with m.State("PAYLOAD"):
                # after the last payload byte (at once for an empty payload) comes the CRC's low byte
                def on_payload():
                    m.d.comb += [crc.valid.eq(1), self.buffer.en.eq(1)]
                    m.d.sync += k.eq(k + 1)
                    with m.If(k < HEADER_BYTES):
                        with m.Switch(k[:(HEADER_BYTES - 1).bit_length()]):
                            for b in range(HEADER_BYTES):
                                with m.Case(b):
                                    m.d.sync += header[8 * b:8 * (b + 1)].eq(byte)

                def on_crc_low():
                    m.d.sync += crc_low_ok.eq(byte == crc.crc[:8])
                    m.next = "CRC_HIGH"

                def on_byte():
                    with m.If(k == length):
                        on_crc_low()
                    with m.Else():
                        on_payload()
                receiving(on_byte)

            with m.State("CRC_HIGH"):
                def on_crc_high():
                    end(Status.OK)
                    with m.If(~crc_low_ok | (byte != crc.crc[8:])):
                        end(Status.BAD_CRC)
                receiving(on_crc_high)

            skipping = frame.status == Status.BAD_LENGTH

            def skipped():
                """A byte of an over-long frame's declared payload and CRC goes by."""
                m.d.sync += [skip.eq(skip - 1), timer.eq(self._timeout - 1)]
                with m.If(skip == 1):
                    m.next = "HUNT"

            with m.State("DONE"):
                m.d.comb += self.o_stream.valid.eq(1)
                m.d.sync += timer.eq(self._timeout - 1)
                with m.If(got & skipping):
                    skipped()
                with m.If(self.o_stream.ready):
                    with m.If(~skipping | (got & (skip == 1))):
                        m.next = "HUNT"
                    with m.Else():
                        m.next = "SKIP"

            with m.State("SKIP"):
                with m.If(got):
                    skipped()
                with m.Elif(timer[-1]):
                    m.next = "HUNT"             # the rest of the frame never came
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)

        m.d.comb += self.busy.eq(~fsm.ongoing("HUNT"))
        return m
