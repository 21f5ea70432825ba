"""hdl/pipeline.py: a stream register passes every transfer, in order, one a cycle when unblocked, and its
``i_stream.ready`` does not follow ``o_stream.ready`` within a cycle."""

import random

import pytest
from amaranth.sim import Simulator
from nfloop.hdl.pipeline import StreamRegister


@pytest.mark.parametrize("send_rate, take_rate", [(1.0, 1.0), (0.5, 1.0), (1.0, 0.4), (0.7, 0.6)])
def test_stream_register_passes_every_transfer_in_order(send_rate, take_rate):
    dut = StreamRegister(16)
    rng = random.Random(f"{send_rate} {take_rate}")
    sent = [rng.randrange(1 << 16) for _ in range(200)]
    received, cycles = [], []

    async def bench(ctx):
        index, cycle = 0, 0
        while len(received) < len(sent):
            offer = index < len(sent) and rng.random() < send_rate
            ctx.set(dut.i_stream.valid, offer)
            ctx.set(dut.i_stream.payload, sent[index] if offer else 0)
            take = rng.random() < take_rate
            ctx.set(dut.o_stream.ready, take)
            if ctx.get(dut.o_stream.valid) and take:
                received.append(ctx.get(dut.o_stream.payload))
                cycles.append(cycle)
            if offer and ctx.get(dut.i_stream.ready):
                index += 1
            await ctx.tick()
            cycle += 1
            assert cycle < 10_000

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert received == sent
    if send_rate == take_rate == 1.0:
        # one transfer a cycle, each a cycle after it was sent
        assert cycles == list(range(1, len(sent) + 1))


def test_input_ready_is_a_register():
    """o_stream.ready changed within a cycle leaves i_stream.ready as it was: no path crosses the register."""
    dut = StreamRegister(8)
    seen = []

    async def bench(ctx):
        ctx.set(dut.i_stream.valid, 1)
        for cycle in range(6):
            ctx.set(dut.i_stream.payload, cycle)
            before = ctx.get(dut.i_stream.ready)
            ctx.set(dut.o_stream.ready, 1 - ctx.get(dut.o_stream.ready))
            assert ctx.get(dut.i_stream.ready) == before
            ctx.set(dut.o_stream.ready, 0)          # held: the skid buffer takes the next transfer
            seen.append(before)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen[:3] == [1, 1, 0]                # the register, then the skid buffer, then full
