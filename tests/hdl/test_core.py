"""hdl/core.py in Amaranth's simulator: every step's outputs and the final weights equal the model's."""

import pytest
from nfloop.hdl.core import LearnerCore
from nfloop.hdl.layout import CoreLayout
from nfloop.hdl.sequencer import step_cycles, weight_reread
from nfloop.model.config import Activation, ActivationKind, ConfigError, Layer, LearnerConfig, Rounding, Window
from nfloop.model.fixed import FixedLearner
from nfloop.sim.verify import first_output_mismatch, first_weight_mismatch
from support.sim import run_core

RELU = Activation(ActivationKind.RELU)
STAIR = Activation(ActivationKind.STAIRCASE, thresholds=(-0.5, 0.0, 0.5), scale=0.25)

CONFIGS = {
    "1-layer": (LearnerConfig(inputs=3, layers=(Layer(2, gain_shift=4),)), 1),
    "relu-2-lanes": (LearnerConfig(inputs=3, layers=(Layer(3, RELU, gain_shift=3), Layer(2, gain_shift=3))), 2),
    "stair-4-lanes-batch": (LearnerConfig(inputs=2, layers=(Layer(5, STAIR, gain_shift=4), Layer(2, gain_shift=5)),
                                          batch_size=3), 4),
    "3-layers-stochastic-momentum-leak": (LearnerConfig(
        inputs=4, layers=(Layer(3, Activation(ActivationKind.LEAKY_RELU), gain_shift=5, leak_shift=9),
                          Layer(3, Activation(ActivationKind.HARDTANH), momentum_shift=2, gain_shift=6),
                          Layer(2, window=Window(derivative=True), gain_shift=5, momentum_shift=3)),
        rounding=Rounding.STOCHASTIC, lfsr_seed=0xBEEF), 2),
}


def samples(config, steps, rng):
    f = config.formats
    xs = rng.integers(f.input.min_code // 2, f.input.max_code // 2, (steps, config.inputs))
    ys = rng.integers(-2 << f.activation.frac, 2 << f.activation.frac, (steps, config.outputs))
    return xs, ys


def assert_trains_like_the_model(dut, config, xs, ys, stall_rng=None):
    """``dut`` trained on (xs, ys): every step's predictions and errors, the final weights and the cycles
    are the model's and the exact schedule's; the first difference is named."""
    model = FixedLearner(config)
    traces = [model.step(x, y) for x, y in zip(xs, ys)]
    pred, err, weights, steps, cycles = run_core(dut, xs, ys, stall_rng=stall_rng)
    mismatch = first_output_mismatch(pred, err, [t.prediction for t in traces], [t.error for t in traces],
                                     layer=len(config.layers) - 1)
    assert mismatch is None, str(mismatch)
    mismatch = first_weight_mismatch(weights, model.weights, step=len(xs) - 1)
    assert mismatch is None, str(mismatch)
    assert steps == len(xs) and cycles == steps * step_cycles(dut.layout)


@pytest.mark.parametrize("name, stalls", [("1-layer", True), ("relu-2-lanes", False),
                                          ("stair-4-lanes-batch", True), ("3-layers-stochastic-momentum-leak", False)])
def test_core_is_bit_exact(name, stalls, rng):
    """Random valid/ready stalls on half the configs: results must not depend on them."""
    config, lanes = CONFIGS[name]
    xs, ys = samples(config, 12, rng)
    assert_trains_like_the_model(LearnerCore(config, lanes), config, xs, ys, stall_rng=rng if stalls else None)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_core_that_reads_its_old_weights_again_is_bit_exact(name, rng):
    """A narrow core's update ops read their old weights from the banks a second time, in the stage their
    update units use them (with a leak, the first; else the last), rather than carrying them."""
    config, lanes = CONFIGS[name]
    xs, ys = samples(config, 8, rng)
    dut = LearnerCore(config, lanes, narrow=True)
    assert weight_reread(dut.layout) > 0
    assert_trains_like_the_model(dut, config, xs, ys, stall_rng=rng)


MAPPED = LearnerConfig(inputs=5, layers=(Layer(7, RELU, gain_shift=4), Layer(3, STAIR, gain_shift=4),
                                         Layer(2, gain_shift=5)), batch_size=2)


@pytest.mark.parametrize("lanes, columns", [(4, (4, 4, 1)), (8, (2, 8, 1)), (8, (1, 1, 8)), (16, (8, 1, 16))])
def test_every_lane_mapping_is_bit_exact(lanes, columns, rng):
    """Rows split over groups and columns over lanes in every proportion, padding in both directions."""
    xs, ys = samples(MAPPED, 8, rng)
    dut = LearnerCore(MAPPED, lanes, columns=columns)
    assert dut.layout.columns == columns
    assert_trains_like_the_model(dut, MAPPED, xs, ys, stall_rng=rng)


@pytest.mark.parametrize("lanes, columns", [(8, (2, 8, 1)), (16, (8, 1, 16)), (64, (2, 64, 1))])
def test_each_accumulator_is_the_first_lane_of_the_nodes_it_sums(lanes, columns):
    """Where the place-and-route finds an accumulator's sums: lane x's product, or the tree node of lanes
    x .. x + 2^level - 1; never lane x alone for one layer and lanes 2x, 2x + 1 for another."""
    layout = CoreLayout(MAPPED, lanes, columns)
    for l in range(layout.layers):
        for backward in (False, True) if l else (False,):
            level = layout.backward_tap(l) if backward else layout.forward_tap(l)
            slots = layout.accumulator_slots(l, backward)
            assert len(slots) == lanes >> level
            assert [x >> level for x in slots] == list(range(len(slots))), (l, backward)
    # 64 lanes: rows of layer 0 in the even accumulators, layer 1's columns in all 64
    if lanes == 64:
        assert layout.accumulator_slots(0, False) == list(range(0, 64, 2))
        assert layout.accumulator_slots(1, True) == list(range(64))


def test_mismatch_reports_the_first_difference():
    """The comparison itself must catch a single flipped weight bit."""
    config, lanes = CONFIGS["1-layer"]
    model = FixedLearner(config)
    bad = [w.copy() for w in model.weights]
    bad[0][1, 2] ^= 1
    mismatch = first_weight_mismatch(bad, model.weights, step=7)
    assert (mismatch.step, mismatch.layer, mismatch.index) == (7, 0, [1, 2])
    assert mismatch.hw == model.weights[0][1, 2] ^ 1


@pytest.mark.parametrize("lanes", [0, 3, 256])
def test_lanes_must_be_a_power_of_two(lanes):
    with pytest.raises(ConfigError, match="lanes must be a power of two"):
        LearnerCore(CONFIGS["1-layer"][0], lanes)


def test_a_narrow_core_is_bit_exact(rng):
    """Hidden layers' vectors as few values a word as the mapping allows (the iCE40 boards' choice)."""
    config = LearnerConfig(inputs=5, layers=(Layer(7, RELU, gain_shift=4), Layer(3, gain_shift=5)), batch_size=2)
    xs, ys = samples(config, 6, rng)
    dut = LearnerCore(config, 4, narrow=True)
    assert dut.layout.hidden_slots == 1 and dut.layout.columns == (4, 1)
    assert CoreLayout(MAPPED, 4, narrow=True).hidden_slots > 1      # two hidden layers: one of them is wide
    assert_trains_like_the_model(dut, config, xs, ys)
