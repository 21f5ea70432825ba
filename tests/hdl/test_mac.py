"""hdl/mac.py: the registered multiplier's products, exactly, two cycles after their operands."""

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator
from nfloop.hdl.mac import Multiplier


@pytest.mark.parametrize("a_width, b_width", [(16, 16), (16, 8), (18, 18), (24, 16)])
def test_products_are_exact(a_width, b_width, rng):
    dut = Multiplier(a_width, b_width)
    lo_a, hi_a, lo_b, hi_b = -2**(a_width - 1), 2**(a_width - 1) - 1, -2**(b_width - 1), 2**(b_width - 1) - 1
    a = np.concatenate([[lo_a, lo_a, hi_a, hi_a, 0, -1, 1], rng.integers(lo_a, hi_a + 1, 200)])
    b = np.concatenate([[lo_b, hi_b, lo_b, hi_b, -1, -1, 1], rng.integers(lo_b, hi_b + 1, 200)])
    got = []

    async def bench(ctx):
        for k in range(len(a) + dut.latency):
            if k < len(a):
                ctx.set(dut.a, int(a[k]))
                ctx.set(dut.b, int(b[k]))
            await ctx.tick()
            if k + 1 >= dut.latency:
                got.append(ctx.get(dut.product))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    np.testing.assert_array_equal(got[:len(a)], a * b)


def test_without_a_dsp_block_it_is_registers_around_a_product():
    """Simulation and platforms without ``get_multiplier`` get the generic form: no Instance."""
    text = rtlil.convert(Multiplier(16, 16))
    assert "cell $mul " in text
    assert "SB_MAC16" not in text and "MULT18X18" not in text


@pytest.mark.parametrize("width", [0, -3, "16"])
def test_widths_are_checked(width):
    with pytest.raises(TypeError, match="a_width must be a positive integer"):
        Multiplier(width, 16)
