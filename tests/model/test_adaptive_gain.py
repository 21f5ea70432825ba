"""Adaptive gain: the rule, its state, and that it does what it is for (less gain when the loop overshoots,
more when it is slow), in the fixed-point and the float model."""

from __future__ import annotations

import numpy as np
import pytest
from nfloop.model import AdaptiveGain, FixedLearner, FloatLearner, Layer, LearnerConfig, default_config, load_task
from nfloop.model.config import QFormat
from nfloop.model.fixed import GAIN_ENERGY, GAIN_OFFSET, GAIN_PREVIOUS, adapt_gain, error_energy
from nfloop.model.train import encode

RULE = AdaptiveGain(period=4, up=1, down=2)


@pytest.mark.parametrize("offset, energy, previous, want", [
    (0, 500, -1, 0),        # no period has ended yet: keep
    (0, 126, 100, 1),       # grew by more than previous >> 2 (25): halve the gain
    (2, 126, 100, 2),       # ... no further than down
    (0, 125, 100, 0),       # grew, but by no more than 25: keep (sample noise)
    (0, 100, 100, 0),       # equal: keep
    (0, 75, 100, 0),        # fell, but by no more than 25: keep
    (0, 74, 100, -1),       # fell by more: double the gain
    (-1, 0, 100, -1),       # ... no further than up
    (1, 0, 0, 1),           # no error at all: keep
])
def test_the_rule(offset, energy, previous, want):
    assert adapt_gain(offset, energy, previous, RULE) == want


def test_the_energy_saturates_at_the_accumulator():
    acc = QFormat(8, 4)
    assert error_energy(100, np.array([-10, 5]), acc) == 115
    assert error_energy(120, np.array([-10, 5]), acc) == 127


def codes(config, task):
    data = encode(config, task)
    return data.x_train, data.y_train


def test_each_period_end_applies_the_rule_to_the_sum_of_the_deltas():
    """Recomputed from the step traces: each layer's energy is its summed |delta| over the period, and the
    offset moves by the rule at each period's end and nowhere else."""
    task = load_task("iris")
    config = default_config(task).with_changes(adaptive_gain=AdaptiveGain(period=8, up=2, down=2))
    learner = FixedLearner(config, engine="numpy")
    xs, ys = codes(config, task)
    acc = config.formats.weight_acc
    offsets, energies, previous = [0, 0], [0, 0], [-1, -1]
    moved = set()
    for step, k in enumerate(np.random.default_rng(0).integers(0, len(xs), 400)):
        trace = learner.step(xs[k], ys[k])
        for l, delta in enumerate(trace.delta):
            energies[l] = min(energies[l] + int(np.abs(delta).sum()), acc.max_code)
            if (step + 1) % 8 == 0:
                offsets[l] = adapt_gain(offsets[l], energies[l], previous[l], config.adaptive_gain)
                previous[l], energies[l] = energies[l], 0
            want = [offsets[l], energies[l], previous[l]]
            assert trace.gain[l][0].tolist() == want, f"step {step}, layer {l}"
            moved.add(offsets[l])
    assert len(moved) > 1, "the offsets never moved: the test checks nothing"


def test_the_gain_offset_scales_the_update():
    """An update at offset k is the update of gain_shift + k (here for k = -1 and 2)."""
    task = load_task("iris")
    base = default_config(task)
    config = base.with_changes(adaptive_gain=AdaptiveGain(period=1 << 16, up=1, down=2))
    xs, ys = codes(config, task)
    for offset in (-1, 2):
        shifted = base.with_changes(layers=tuple(layer.__class__(**{**layer.__dict__,
                                                                     "gain_shift": layer.gain_shift + offset})
                                                 for layer in base.layers))
        adaptive, plain = FixedLearner(config), FixedLearner(shifted)
        for gain in adaptive.gain:
            gain[0, GAIN_OFFSET] = offset
        for k in range(50):
            adaptive.step(xs[k], ys[k])
            plain.step(xs[k], ys[k])
        for want, got in zip(plain.weights, adaptive.weights):
            np.testing.assert_array_equal(got, want)


def unstable(config: LearnerConfig) -> LearnerConfig:
    """``config`` with every gain 16x above its shipped value, and room to come back down."""
    return config.with_changes(layers=tuple(Layer(**{**layer.__dict__, "gain_shift": layer.gain_shift - 4})
                                            for layer in config.layers),
                               adaptive_gain=AdaptiveGain(period=256, up=0, down=6))


def slow(config: LearnerConfig) -> LearnerConfig:
    """``config`` with every gain 16x below, and room to come back up."""
    return config.with_changes(layers=tuple(Layer(**{**layer.__dict__, "gain_shift": layer.gain_shift + 4})
                                            for layer in config.layers),
                               adaptive_gain=AdaptiveGain(period=256, up=4, down=0))


def offsets_per_period(config: LearnerConfig, task, arith: str, steps: int) -> np.ndarray:
    """Each layer's gain offset after each period of ``steps`` steps of training."""
    order = np.random.default_rng(1).integers(0, len(task.x_train), steps)
    period = config.adaptive_gain.period
    seen = []
    if arith == "fixed":
        learner = FixedLearner(config)
        xs, ys = codes(config, task)
        for start in range(0, steps, period):
            learner.train_order(xs, ys, order[start:start + period])
            seen.append([int(g[0, GAIN_OFFSET]) for g in learner.gain])
    else:
        learner = FloatLearner(config)
        for start in range(0, steps, period):
            for k in order[start:start + period]:
                learner.step(task.x_train[k], task.y_train[k])
            seen.append(list(learner.gain_offset))
    return np.array(seen)


@pytest.mark.parametrize("arith", ["fixed", "float"])
def test_a_slow_loop_raises_its_gain_and_an_overshooting_one_lowers_it(arith):
    """A loop 16x too slow doubles its gains while its error falls fast; one 16x too fast halves them."""
    task = load_task("iris")
    base = default_config(task)
    rising = offsets_per_period(slow(base), task, arith, 8 * 256)
    assert (rising.min(axis=0) < 0).all(), rising.T
    falling = offsets_per_period(unstable(base), task, arith, 24 * 256)
    assert (falling[-5:] > 0).all(), falling.T


def test_a_gain_state_out_of_range_is_refused():
    config = default_config(load_task("xor")).with_changes(adaptive_gain=RULE)
    state = FixedLearner(config).state()
    state["gain_0"] = np.array([[3, 0, -1]])
    with pytest.raises(ValueError, match=r"gain_0 offset 3 is outside \[-1, 2\]"):
        FixedLearner(config).load_state(state)
    state["gain_0"] = np.array([[0, -5, -1]])
    with pytest.raises(ValueError, match="gain_0 energies -5, -1 are outside"):
        FixedLearner(config).load_state(state)


def test_without_adaptive_gain_there_is_no_gain_state():
    learner = FixedLearner(default_config(load_task("xor")))
    assert learner.gain == [] and not any(name.startswith("gain") for name in learner.state())
    assert (GAIN_OFFSET, GAIN_ENERGY, GAIN_PREVIOUS) == (0, 1, 2)
