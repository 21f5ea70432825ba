"""hdl/mac.py: products and exact sums equal nfloop.model.fixed.mac."""

import numpy as np
from amaranth.sim import Simulator
from nfloop.hdl.mac import MacLane
from nfloop.model.fixed import mac


def test_lane_accumulates_rows_exactly(rng):
    lane = MacLane(16, 16, 40)
    rows = [rng.integers(-2**15, 2**15, (rng.integers(1, 70),)) for _ in range(6)]
    inputs = [rng.integers(-2**15, 2**15, len(r)) for r in rows]
    rows[0][:3] = -2**15                     # the extreme product (-2**15)**2, several times
    inputs[0][:3] = -2**15
    sums, products = [], []

    async def bench(ctx):
        pipeline = []                        # (first, last) of the operands in flight
        for w, a in zip(rows, inputs):
            for k in range(len(w)):
                ctx.set(lane.a, int(w[k]))
                ctx.set(lane.b, int(a[k]))
                pipeline.append((k == 0, k == len(w) - 1))
                await ctx.tick()
                if len(pipeline) >= lane.latency:
                    first, last = pipeline.pop(0)
                    ctx.set(lane.first, first)
                    ctx.set(lane.accumulate, 1)
                    products.append(ctx.get(lane.product))
                    if last:
                        sums.append(ctx.get(lane.sum))
        while pipeline:
            await ctx.tick()
            first, last = pipeline.pop(0)
            ctx.set(lane.first, first)
            products.append(ctx.get(lane.product))
            if last:
                sums.append(ctx.get(lane.sum))

    sim = Simulator(lane)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    np.testing.assert_array_equal(products, np.concatenate([w * a for w, a in zip(rows, inputs)]))
    np.testing.assert_array_equal(sums, [mac(w, a) for w, a in zip(rows, inputs)])
