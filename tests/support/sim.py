"""Helpers for the gateware unit tests in Amaranth's simulator."""

import numpy as np
from amaranth.sim import Simulator


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


def edge_codes(fmt, extra=()) -> np.ndarray:
    """min, max, 0, +-1 LSB around them and around each extra code."""
    codes = {fmt.min_code, fmt.min_code + 1, fmt.max_code, fmt.max_code - 1, -1, 0, 1}
    for c in extra:
        codes |= {c - 1, c, c + 1}
    return np.array(sorted(c for c in codes if fmt.min_code <= c <= fmt.max_code), dtype=np.int64)


def random_codes(fmt, n, rng) -> np.ndarray:
    return rng.integers(fmt.min_code, fmt.max_code + 1, n, dtype=np.int64)
