"""hdl/uart.py: bytes through TX -> line -> RX, stalls, framing errors, baud checks."""

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator
from nfloop.hdl.uart import UARTRx, UARTTx, bit_period
from support.streams import stream_get, stream_put


def loopback(period):
    m = Module()
    m.submodules.tx = tx = UARTTx(period)
    m.submodules.rx = rx = UARTRx(period)
    m.d.comb += rx.rx.eq(tx.tx)
    return m, tx, rx


@pytest.mark.parametrize("period", [4, 7, 16])
def test_bytes_arrive_intact_despite_stalls(period, rng):
    m, tx, rx = loopback(period)
    sent = [0x00, 0xFF, 0x55, 0xAA, 0xA5, 0x5A] + [int(b) for b in rng.integers(0, 256, 30)]
    got = []

    async def source(ctx):
        for byte in sent:
            await stream_put(ctx, tx.i_stream, byte, rng)
            for _ in range(int(rng.integers(0, 3 * period))):   # idle line between bytes
                await ctx.tick()

    async def sink(ctx):
        while len(got) < len(sent):
            got.append(await stream_get(ctx, rx.o_stream, rng))

    async def no_overrun(ctx):
        async for _, _, overrun in ctx.tick().sample(rx.overrun):
            assert not overrun, f"the receiver overran after {len(got)} bytes"

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(source, background=True)
    sim.add_testbench(no_overrun, background=True)
    sim.add_testbench(sink)
    sim.run()
    assert got == sent


def test_missing_stop_bit_is_a_framing_error():
    period = 8
    rx = UARTRx(period)
    seen = {"error": 0, "valid": 0}

    async def line(ctx):
        bits = [0] + [1, 0, 1, 0, 1, 0, 1, 0] + [0]        # start, 0x55, stop bit held low
        for bit in bits + [1] * 3:
            ctx.set(rx.rx, bit)
            for _ in range(period):
                await ctx.tick()
                seen["error"] += ctx.get(rx.framing_error)
                seen["valid"] += ctx.get(rx.o_stream.valid)

    sim = Simulator(rx)
    sim.add_clock(1e-6)
    sim.add_testbench(line)
    sim.run()
    assert seen == {"error": 1, "valid": 0}


def test_bit_period_checks_the_baud_rate():
    assert bit_period(12_000_000, 115_200) == 104
    with pytest.raises(ValueError, match="too high"):
        bit_period(12_000_000, 4_000_000)
    with pytest.raises(ValueError, match="off by"):
        bit_period(1_000_000, 230_400)
    with pytest.raises(ValueError, match="positive integer"):
        bit_period(12_000_000, 0)
