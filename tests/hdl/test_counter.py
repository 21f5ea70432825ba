"""hdl/counter.py: the split counter against a plain ``count + inc`` register, cycle by cycle."""

import pytest
from amaranth.sim import Simulator
from nfloop.hdl.counter import SplitCounter


@pytest.mark.parametrize("width, low_width", [(8, 3), (6, 1), (5, 4)])
def test_split_counter_equals_a_plain_counter_every_cycle(width, low_width, rng):
    dut = SplitCounter(width, low_width)
    # long runs of increments wrap the low part and the whole count; clears and loads land anywhere,
    # also in the cycle after a carry
    cycles = 3000
    inc = rng.random(cycles) < 0.9
    clear = rng.random(cycles) < 0.01
    load = rng.random(cycles) < 0.02
    load_value = rng.integers(0, 2 ** width, cycles)
    seen = []

    async def bench(ctx):
        plain = 0
        for k in range(cycles):
            ctx.set(dut.inc, int(inc[k]))
            ctx.set(dut.clear, int(clear[k]))
            ctx.set(dut.load, int(load[k]))
            ctx.set(dut.load_value, int(load_value[k]))
            assert ctx.get(dut.value) == plain, f"cycle {k}: {ctx.get(dut.value)}, a plain counter holds {plain}"
            seen.append(plain)
            await ctx.tick()
            plain = 0 if clear[k] else int(load_value[k]) if load[k] else (plain + int(inc[k])) % 2 ** width

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(seen) == cycles and seen.count(2 ** width - 1) > 3      # the whole count wrapped


@pytest.mark.parametrize("width, low_width", [(1, 1), (8, 0), (8, 8), ("8", 4)])
def test_bad_widths_are_refused(width, low_width):
    with pytest.raises(TypeError, match="width"):
        SplitCounter(width, low_width)
