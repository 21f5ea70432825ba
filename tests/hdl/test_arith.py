"""hdl/arith.py: the saturation and rounding expressions against the model's, exhaustively on small widths."""

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, Signal, signed, unsigned
from nfloop.hdl.arith import const_mul, saturate, shift_round
from nfloop.model import fixed
from nfloop.model.config import QFormat, Rounding
from support.sim import run_comb


class Wrap(Elaboratable):
    """A combinational component around one expression of one input."""

    def __init__(self, shape, build, out_width):
        self.x = Signal(shape)
        self.y = Signal(signed(out_width))
        self._build = build

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self._build(self.x))
        return m


@pytest.mark.parametrize("width, fmt", [(9, QFormat(4, 2)), (6, QFormat(6, 3)), (5, QFormat(8, 0)),
                                        (12, QFormat(7, 1))])
@pytest.mark.parametrize("is_signed", [True, False])
def test_saturate_is_a_clamp(width, fmt, is_signed):
    lo, hi = (-(1 << (width - 1)), 1 << (width - 1)) if is_signed else (0, 1 << width)
    x = np.arange(lo, hi, dtype=np.int64)
    dut = Wrap(signed(width) if is_signed else unsigned(width), lambda v: saturate(v, fmt), fmt.bits)
    got = run_comb(dut, {"x": x}, ["y"])["y"]
    np.testing.assert_array_equal(got, fixed.saturate(x, fmt))


@pytest.mark.parametrize("rounding", [Rounding.FLOOR, Rounding.HALF_UP])
@pytest.mark.parametrize("shift", [-2, 0, 1, 3])
def test_shift_round(rounding, shift):
    x = np.arange(-256, 256, dtype=np.int64)
    dut = Wrap(signed(9), lambda v: shift_round(v, shift, rounding), 12)
    got = run_comb(dut, {"x": x}, ["y"])["y"]
    np.testing.assert_array_equal(got, fixed.shift_round(x, shift, rounding))


@pytest.mark.parametrize("factor", [0, 1, 33, 65, 100, 255])
def test_const_mul(factor):
    x = np.arange(0, 128, dtype=np.int64)
    dut = Wrap(unsigned(7), lambda v: const_mul(v, factor), 17)
    np.testing.assert_array_equal(run_comb(dut, {"x": x}, ["y"])["y"], x * factor)
