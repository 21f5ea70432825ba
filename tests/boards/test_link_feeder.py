"""boards/link/feeder.py: an epoch's samples from the data memory into the core's stream."""

import numpy as np
import pytest
from amaranth.lib import wiring
from nfloop.boards.link.feeder import SampleFeeder
from support.link import Bench, DataMemoryModel, core_ports, geometry, memory_image, random_samples, simulate
from support.streams import stream_get, stream_rules


def feeder_bench(name, latency, samples, rng):
    geo = geometry(name)
    xs, ys = random_samples(geo, samples, rng)
    order = rng.permutation(samples)
    memory = DataMemoryModel(geo.spec.data_words, latency, memory_image(geo, xs, ys, order))
    dut = SampleFeeder(geo, core_ports(geo).sample_layout, memory.latency)
    bench = Bench(dut, memory=(memory, lambda m, dut: wiring.connect(m, dut.memory, memory.port)))
    expected = np.concatenate([np.concatenate([xs[s], ys[s]]) for s in order])
    return geo, dut, bench, expected


@pytest.mark.parametrize("latency", [1, 4])
@pytest.mark.parametrize("name", ["digits", "odd", "narrow"])
def test_epochs_stream_in_order_through_stalls(name, latency, rng):
    geo, dut, bench, expected = feeder_bench(name, latency, 5, rng)
    got = []

    async def testbench(ctx):
        ctx.set(dut.samples, 5)
        for _ in range(2):                          # a second epoch starts where the first left off
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            for _ in expected:
                got.append((await stream_get(ctx, dut.o_stream, rng)).data)
            await ctx.tick().until(~dut.busy)

    simulate(bench, testbench, stream_rules(dut.o_stream, "o_stream"))
    np.testing.assert_array_equal(got, np.concatenate([expected, expected]))


@pytest.mark.parametrize("latency", [1, 4])
def test_one_element_per_clock_while_the_core_is_ready(latency, rng):
    """A digits sample (64 inputs, 10 targets) takes 74 cycles, the next sample's address read ahead."""
    geo, dut, bench, expected = feeder_bench("digits", latency, 6, rng)
    taken = []

    async def testbench(ctx):
        ctx.set(dut.samples, 6)
        ctx.set(dut.start, 1)
        ctx.set(dut.o_stream.ready, 1)
        cycle = 0
        while len(taken) < len(expected):
            await ctx.tick()
            ctx.set(dut.start, 0)
            if ctx.get(dut.o_stream.valid):
                taken.append(cycle)
            cycle += 1

    simulate(bench, testbench)
    firsts = taken[::geo.record_elements]
    assert np.diff(firsts).tolist() == [geo.record_elements] * 5
    assert taken[-1] - taken[0] == len(expected) - 1         # not one gap, from the first element on


def test_latency_is_checked():
    geo = geometry("odd")
    with pytest.raises(TypeError, match=r"Memory latency must be a positive integer, not 0"):
        SampleFeeder(geo, core_ports(geo).sample_layout, 0)
