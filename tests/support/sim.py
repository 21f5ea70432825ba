"""Helpers for the gateware unit tests in Amaranth's simulator."""

import numpy as np
from amaranth.sim import Simulator

from .streams import stream_get, stream_put


def run_comb(dut, vectors: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
    """Drive a combinational component with each row of ``vectors``; collect ``outputs``."""
    n = len(next(iter(vectors.values())))
    got = {name: np.zeros(n, dtype=np.int64) for name in outputs}

    async def bench(ctx):
        for k in range(n):
            for name, values in vectors.items():
                ctx.set(getattr(dut, name), int(values[k]))
            for name in outputs:
                got[name][k] = ctx.get(getattr(dut, name))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return got


def run_pipelined(dut, vectors: dict[str, np.ndarray], outputs: list[str], latency: int,
                  view=None) -> dict[str, np.ndarray]:
    """Drive a pipelined component with one row of ``vectors`` per cycle; collect ``outputs`` ``latency``
    cycles after each row. ``view`` resolves the names (default: ``dut``'s attributes)."""
    n = len(next(iter(vectors.values())))
    view = dut if view is None else view
    got = {name: np.zeros(n, dtype=np.int64) for name in outputs}

    async def bench(ctx):
        # In cycle t: row t's inputs, then the outputs of row t - latency.
        for t in range(n + latency):
            if t < n:
                for name, values in vectors.items():
                    ctx.set(getattr(view, name), int(values[t]))
            if t >= latency:
                for name in outputs:
                    got[name][t - latency] = ctx.get(getattr(view, name))
            if latency:
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6, if_exists=True)
    sim.add_testbench(bench)
    sim.run()
    return got


def edge_codes(fmt, extra=()) -> np.ndarray:
    """min, max, 0, +-1 LSB around them and around each extra code."""
    codes = {fmt.min_code, fmt.min_code + 1, fmt.max_code, fmt.max_code - 1, -1, 0, 1}
    for c in extra:
        codes |= {c - 1, c, c + 1}
    return np.array(sorted(c for c in codes if fmt.min_code <= c <= fmt.max_code), dtype=np.int64)


def random_codes(fmt, n, rng) -> np.ndarray:
    return rng.integers(fmt.min_code, fmt.max_code + 1, n, dtype=np.int64)


def run_core(dut, xs, ys, stall_rng=None, timeout_cycles=200_000):
    """Train ``dut`` (a LearnerCore) on samples in Amaranth's simulator.

    Returns (predictions, errors, weights, steps, cycles): per-step arrays of
    the core's results and the weight accumulators read back at the end.
    With ``stall_rng``, the source and the sink drop valid / ready at random.
    """
    n_out = ys.shape[1]
    layout = dut.layout
    results = []
    weights = []
    counters = {}

    async def source(ctx):
        for x, y in zip(xs, ys):
            for value in list(x) + list(y):
                await stream_put(ctx, dut.i_stream, {"data": int(value)}, stall_rng)

    async def sink(ctx):
        while len(results) < len(xs) * n_out:
            payload = await stream_get(ctx, dut.o_stream, stall_rng)
            results.append((payload.prediction, payload.error))
        await ctx.tick().until(~dut.busy)
        for l in range(layout.layers):
            w = np.zeros((layout.n_out(l), layout.n_in(l) + 1), dtype=np.int64)
            for j in range(w.shape[0]):
                for i in range(w.shape[1]):
                    ctx.set(dut.weights.layer, l)
                    ctx.set(dut.weights.row, j)
                    ctx.set(dut.weights.col, i)
                    ctx.set(dut.weights.read, 1)
                    await ctx.tick()
                    ctx.set(dut.weights.read, 0)
                    while not ctx.get(dut.weights.rvalid):
                        await ctx.tick()
                    w[j, i] = ctx.get(dut.weights.rdata)
            weights.append(w)
        counters["steps"], counters["cycles"] = ctx.get(dut.steps), ctx.get(dut.cycles)

    async def watchdog(ctx):
        for _ in range(timeout_cycles):
            await ctx.tick()
        raise AssertionError(f"the core produced {len(results)} of {len(xs) * n_out} results "
                             f"within {timeout_cycles} cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(source, background=True)
    sim.add_testbench(watchdog, background=True)
    sim.add_testbench(sink)
    sim.run()            # ends with the sink; the watchdog only fails a hang
    out = np.array(results, dtype=np.int64).reshape(len(xs), n_out, 2)
    return out[..., 0], out[..., 1], weights, counters["steps"], counters["cycles"]
