"""UART receiver and transmitter (8 data bits, no parity, 1 stop bit) with byte streams."""


from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["bit_period", "UARTRx", "UARTTx"]


def bit_period(clock_hz: int, baud: int) -> int:
    """Clock cycles per bit; the receiver needs at least 4 to find the middle of a bit."""
    if not isinstance(baud, int) or isinstance(baud, bool):
        raise TypeError(f"baud rate must be a positive integer, not {baud!r}")
    if baud <= 0:
        raise ValueError(f"baud rate must be a positive integer, not {baud!r}")
    period = round(clock_hz / baud)
    if period < 4:
        raise ValueError(f"baud rate {baud} is too high for a {clock_hz / 1e6:g} MHz clock: "
                          f"a bit must last at least 4 clock cycles (baud <= {clock_hz // 4})")
    error = abs(clock_hz / period - baud) / baud
    if error > 0.02:
        raise ValueError(f"baud rate {baud} is off by {error:.1%} with a {clock_hz / 1e6:g} MHz clock "
                          f"(UARTs tolerate about 2%); pick a baud rate near {clock_hz // period}")
    return period


class _BitTimed(wiring.Component):
    """A UART half: its port signature from annotations, its bit period in clock cycles."""

    def __init__(self, period: int):
        if not isinstance(period, int) or isinstance(period, bool):
            raise TypeError(f"UART bit period must be an integer of at least 4 cycles, not {period!r}")
        if period < 4:
            raise ValueError(f"UART bit period must be an integer of at least 4 cycles, not {period!r}")
        self._period = period
        super().__init__()


class UARTRx(_BitTimed):
    """Receives bytes on ``rx``; each arrives on ``o_stream``.

    The start bit's falling edge starts a byte; each bit is sampled in its
    middle. A byte without its stop bit sets ``framing_error`` for a cycle and
    is dropped; a byte arriving while the previous one still waits on
    ``o_stream`` sets ``overrun`` and is dropped.
    """

    rx: In(1, init=1)
    o_stream: Out(stream.Signature(8))
    framing_error: Out(1)
    overrun: Out(1)

    def elaborate(self, platform):
        m = Module()
        period = self._period
        rx = Signal(init=1)
        rx_sync = Signal(init=1)
        m.d.sync += [rx_sync.eq(self.rx), rx.eq(rx_sync)]      # two flops against metastability
        timer = Signal(range(period * 3 // 2 + 1))
        bits = Signal(range(9))
        shift = Signal(8)
        m.d.sync += [self.framing_error.eq(0), self.overrun.eq(0)]
        with m.If(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += [timer.eq(period // 2), bits.eq(0)]
                    m.next = "START"
            with m.State("START"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(rx):
                        m.next = "IDLE"                        # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += timer.eq(period - 1)
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [shift.eq(Cat(shift[1:], rx)), bits.eq(bits + 1), timer.eq(period - 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(~rx):
                        m.d.sync += self.framing_error.eq(1)
                    with m.Elif(self.o_stream.valid & ~self.o_stream.ready):
                        m.d.sync += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o_stream.payload.eq(shift), self.o_stream.valid.eq(1)]
                    m.next = "IDLE"
        return m


class UARTTx(_BitTimed):
    """Sends each byte taken from ``i_stream`` on ``tx``: start bit, 8 bits LSB first, stop bit."""

    i_stream: In(stream.Signature(8))
    tx: Out(1, init=1)

    def elaborate(self, platform):
        m = Module()
        period = self._period
        timer = Signal(range(period))
        frame = Signal(10, init=0x3FF)
        bits = Signal(range(11))
        m.d.comb += self.tx.eq(frame[0])
        with m.If(bits == 0):
            m.d.comb += self.i_stream.ready.eq(1)
            with m.If(self.i_stream.valid):
                m.d.sync += [frame.eq(Cat(0, self.i_stream.payload, 1)), bits.eq(10), timer.eq(period - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [frame.eq(Cat(frame[1:], 1)), bits.eq(bits - 1), timer.eq(period - 1)]
        return m
