"""hdl/writeback.py against the model's requantise, activate, output_error and apply_window."""

import numpy as np
import pytest
from nfloop.hdl.writeback import ColumnWriteback, RowWriteback
from nfloop.model.config import Activation, ActivationKind, Layer, LearnerConfig, Rounding, Window
from nfloop.model.fixed import LayerPlan, activate, apply_window, output_error, requantise
from support.sim import random_codes, run_pipelined

STAIR = Activation(ActivationKind.STAIRCASE, thresholds=(-0.5, 0.0, 0.5), scale=0.25)
LAYERS = {
    "relu-window": Layer(4, Activation(ActivationKind.RELU)),
    "leaky-derivative": Layer(4, Activation(ActivationKind.LEAKY_RELU), window=Window(derivative=True)),
    "staircase": Layer(4, STAIR),
    "hardtanh-derivative": Layer(4, Activation(ActivationKind.HARDTANH), window=Window(derivative=True)),
    "identity-open": Layer(4, window=Window(lo=-1.0, hi=2.0)),
}
WIDTH = 40


def sums(config, l, n, rng):
    """Row sums around the activation range, with the extremes."""
    plan = LayerPlan.build(config, l)
    fmt = config.formats.activation
    s = rng.integers(fmt.min_code * 3, fmt.max_code * 3, n) << max(plan.z_shift, 0)
    s[:4] = [-(1 << (WIDTH - 1)), (1 << (WIDTH - 1)) - 1, 0, -1]
    return s


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("output", [False, True])
@pytest.mark.parametrize("rounding", [Rounding.FLOOR, Rounding.HALF_UP])
def test_row_writeback(name, output, rounding, rng):
    layers = (LAYERS[name], Layer(2)) if not output else (Layer(3), LAYERS[name])
    config = LearnerConfig(inputs=3, layers=layers, forward_rounding=rounding)
    l = 1 if output else 0
    plan, f = LayerPlan.build(config, l), config.formats
    n = 300
    s = sums(config, l, n, rng)
    dut = RowWriteback(config, l, WIDTH)
    z = requantise(s, plan.z_shift, f.activation, rounding)
    a = activate(z, plan, rounding)
    if not output:
        got = run_pipelined(dut, {"sum": s}, ["a"], dut.latency)
        np.testing.assert_array_equal(got["a"], a)
        return
    y = random_codes(f.activation, n, rng)
    # y is presented TARGET_DELAY cycles after its sum: shift it in the stimulus
    y_in = np.concatenate([np.zeros(dut.TARGET_DELAY, dtype=np.int64), y])[:n]
    got = run_pipelined(dut, {"sum": s, "y": y_in}, ["a", "e", "delta"], dut.latency)
    e = output_error(y, a, f.activation, f.error, rounding)[:n - dut.TARGET_DELAY]
    np.testing.assert_array_equal(got["a"], a)
    np.testing.assert_array_equal(got["e"][:len(e)], e)
    np.testing.assert_array_equal(got["delta"][:len(e)], apply_window(e, z[:len(e)], plan, rounding))


@pytest.mark.parametrize("name", LAYERS)
def test_column_writeback(name, rng):
    """The window bit stored forward, applied to (W^T delta) backward, is apply_window of z."""
    config = LearnerConfig(inputs=3, layers=(LAYERS[name], Layer(2)))
    plan, f = LayerPlan.build(config, 0), config.formats
    n = 300
    g_sum = rng.integers(-(1 << 30), 1 << 30, n)
    z = random_codes(f.activation, n, rng)
    row = RowWriteback(config, 0, WIDTH)
    bits = run_pipelined(row, {"sum": z << max(plan.z_shift, 0)}, ["bit"], row.latency)["bit"]
    dut = ColumnWriteback(config, 0, WIDTH)
    bit_in = np.concatenate([[0], bits])[:n]
    got = run_pipelined(dut, {"sum": g_sum, "bit": bit_in}, ["delta"], dut.latency)
    g = requantise(g_sum, f.weight.frac, f.error, config.forward_rounding)
    z_row = requantise(z << max(plan.z_shift, 0), plan.z_shift, f.activation, config.forward_rounding)
    # the last row's bit would arrive after the stimulus ends
    np.testing.assert_array_equal(got["delta"][:-1], apply_window(g, z_row, plan, config.forward_rounding)[:-1])
