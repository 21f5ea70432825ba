"""hdl/backward.py: column sums of W^T delta over the lanes and rounds, exactly."""

import numpy as np
import pytest
from amaranth.sim import Simulator
from nfloop.hdl.backward import BackwardUnit


@pytest.mark.parametrize("lanes, n_out", [(1, 3), (4, 10), (8, 10), (8, 3)])
def test_column_sums(lanes, n_out, rng):
    n_in = 7
    w = rng.integers(-2**15, 2**15, (n_out, n_in))
    delta = rng.integers(-2**15, 2**15, n_out)
    w[0, 0], delta[0] = -2**15, -2**15
    rounds = -(-n_out // lanes)
    unit = BackwardUnit(lanes, 32, 40)
    got = []

    async def bench(ctx):
        for i in range(n_in):
            for r in range(rounds):
                for p in range(lanes):
                    j = r * lanes + p
                    ctx.set(unit.products[p], int(w[j, i] * delta[j]) if j < n_out else 12345)
                ctx.set(unit.lane_valid, sum(1 << p for p in range(lanes) if r * lanes + p < n_out))
                ctx.set(unit.strobe, 1)
                ctx.set(unit.first, r == 0)
                ctx.set(unit.last, r == rounds - 1)
                await ctx.tick()
                if ctx.get(unit.g_valid):
                    got.append(ctx.get(unit.g))
                ctx.set(unit.strobe, 0)
                if rng.random() < 0.3:       # idle cycles between strobes change nothing
                    await ctx.tick()
                    if ctx.get(unit.g_valid):
                        got.append(ctx.get(unit.g))
        await ctx.tick()
        if ctx.get(unit.g_valid):
            got.append(ctx.get(unit.g))

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    np.testing.assert_array_equal(got, delta @ w)
