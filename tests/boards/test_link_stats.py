"""boards/link/stats.py: each epoch's sum of squared errors, and the epochs since CLEAR."""

import numpy as np
import pytest
from nfloop.boards.link.stats import ErrorStats
from support.link import core_ports, geometry, simulate, tick_until
from support.streams import stream_put


@pytest.mark.parametrize("name", ["digits", "odd"])
def test_epoch_sums_of_squares(name, rng):
    geo = geometry(name)
    f = geo.config.formats
    dut = ErrorStats(geo, core_ports(geo).result_layout)
    samples = 3
    epochs = [rng.integers(f.error.min_code, f.error.max_code + 1, (samples, geo.n_out)) for _ in range(3)]
    epochs[1][0, 0] = f.error.min_code                  # the largest square there is
    sums = [int(np.sum(e.astype(object) ** 2)) for e in epochs]

    async def testbench(ctx):
        ctx.set(dut.samples, samples)
        for number, errors in enumerate(epochs, start=1):
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            assert not ctx.get(dut.done) and ctx.get(dut.busy)
            for error in errors.ravel():
                await stream_put(ctx, dut.i_stream, {"prediction": 0, "error": int(error)}, rng)
            assert not ctx.get(dut.busy)
            await tick_until(ctx, dut.done, 3, "the epoch's sum")
            assert (ctx.get(dut.error_sum), ctx.get(dut.epochs)) == (sums[number - 1], number)
        ctx.set(dut.clear, 1)
        await ctx.tick()
        assert (ctx.get(dut.error_sum), ctx.get(dut.epochs)) == (0, 0)

    simulate(dut, testbench)
    assert dut.sum_bits >= (geo.capacity * geo.n_out * f.error.min_code ** 2).bit_length()
