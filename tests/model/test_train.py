"""Training runs: the paper's staircase experiment (the loop learns, gradient descent does not
move), the stability warning, and the checks that a config fits its task."""

from __future__ import annotations

import dataclasses
import importlib
import math
import time
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from nfloop.model import FixedLearner, FloatLearner, TaskError, default_config, load_task, train
from nfloop.model.config import Layer, LearnerConfig, Window
from nfloop.model.stability import check_layers, check_stability, layer_inputs, stable_gain_shift
from nfloop.model.tasks import GAIN_OFFSETS, HIDDEN_WINDOWS, SEARCH_SAMPLES, Task, bounded_config, searched_config


@pytest.fixture(scope="module")
def staircase():
    task = load_task("staircase")
    return task, default_config(task)


def with_gain_shift(config, gain_shift):
    return config.with_changes(layers=(replace(config.layers[0], gain_shift=gain_shift), *config.layers[1:]))


# -- The paper's Fig. 4 --------------------------------------------------------------------------

@pytest.mark.parametrize("arith", ["float", "fixed"])
def test_staircase_feedback_learns(staircase, arith):
    task, config = staircase
    result = train(config, task, learner="feedback", arith=arith)
    assert result.epochs == task.default_epochs == 30
    assert len(result.history) == 31 and result.steps == 30 * 400
    assert result.history[0].train_mse > 5          # from (w, b) = (0.3, 0.8): MSE 7.5
    assert result.final.train_mse < 0.01
    assert result.final.test_mse < 0.05
    assert result.warnings == []
    (w, b), = result.model.real_weights()[0]
    assert abs(w - 1) < 0.05 and abs(b + 1) < 0.05  # recovers w = 1, b = -1
    expected_model = FixedLearner if arith == "fixed" else FloatLearner
    assert isinstance(result.model, expected_model)


@pytest.mark.parametrize("arith", ["float", "fixed"])
def test_staircase_gradient_descent_does_not_move(staircase, arith):
    task, config = staircase
    result = train(config, task, learner="gradient", arith=arith)
    initial = result.history[0].train_mse
    assert initial > 5
    assert [m.train_mse for m in result.history] == [initial] * len(result.history)
    np.testing.assert_array_equal(result.model.real_weights()[0], [[0.3, 0.8]] if arith == "float"
                                  else np.floor(np.array([[0.3, 0.8]]) * 2**28 + 0.5) / 2**28)
    assert all(layer.window.derivative for layer in result.model.config.layers)


def test_staircase_float_and_fixed_agree(staircase):
    """The fixed-point run follows the float run: same curve within a few hundredths."""
    task, config = staircase
    runs = {a: train(config, task, arith=a, epochs=10) for a in ("float", "fixed")}
    for f, x in zip(runs["float"].history, runs["fixed"].history):
        assert abs(f.train_mse - x.train_mse) < 0.05
    np.testing.assert_allclose(runs["fixed"].model.real_weights()[0], runs["float"].model.real_weights()[0],
                               atol=0.02)


def test_train_is_reproducible(staircase):
    task, config = staircase
    a = train(config, task, arith="fixed", epochs=2, seed=3)
    b = train(config, task, arith="fixed", epochs=2, seed=3)
    np.testing.assert_array_equal(a.model.weights[0], b.model.weights[0])
    assert [m.train_mse for m in a.history] == [m.train_mse for m in b.history]


# -- Stability ----------------------------------------------------------------------------------

def lms_bound_shift(x, batch_size):
    """The smallest gain_shift with A * curvature < 2, computed here from ALGORITHM section 5."""
    x_aug = np.hstack([x, np.ones((len(x), 1))])
    if batch_size == 1:
        curvature = max(float(v @ v) for v in x_aug)
    else:
        curvature = batch_size * float(np.max(np.linalg.eigvalsh(x_aug.T @ x_aug / len(x_aug))))
    shift = -8
    while 2.0 ** -shift * curvature >= 2:
        shift += 1
    return shift, curvature


def test_stability_warning_when_gain_too_high(staircase):
    task, config = staircase
    needed, curvature = lms_bound_shift(task.x_train, config.batch_size)
    assert config.layers[0].gain_shift >= needed             # the shipped gain sits inside the bound
    assert train(config, task, epochs=0).warnings == []
    for low in (needed - 1, needed - 3):
        result = train(with_gain_shift(config, low), task, epochs=0)
        assert len(result.warnings) == 1
        message = result.warnings[0]
        assert "stability bound 2" in message
        assert f"use gain_shift >= {needed} for layers[0]" in message
        assert f"A = {2.0 ** -low:g}" in message
        assert f"{2.0 ** -low * curvature:.3g}" in message
        assert "lambda_max" in message                        # mini-batch: the batch curvature


def test_stability_online_bound_is_max_norm():
    """Online: A * max ||[x, 1]||^2 < 2; xor's corners have ||[x, 1]||^2 = 3."""
    task = load_task("xor")
    config = default_config(task)
    assert lms_bound_shift(task.x_train, 1) == (1, 3.0)
    report = check_stability(with_gain_shift(config, 0), task.x_train)
    assert not report.ok and report.loop_gain == 3.0 and "max||x||^2" in report.message()
    assert "use gain_shift >= 1" in report.message()
    assert check_stability(with_gain_shift(config, 1), task.x_train).ok


def test_stability_bound_is_strict():
    """A loop gain of exactly 2 is not stable (0 < A*||x||^2 < 2)."""
    task = load_task("xor")
    config = default_config(task)
    x = np.array([[1.0, 0.0]])                 # ||[x, 1]||^2 = 2
    report = check_stability(with_gain_shift(config, 0), x)
    assert report.loop_gain == 2.0 and not report.ok
    assert "use gain_shift >= 1" in report.message()


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("batch_size", [1, 8])
def test_stable_gain_shift_matches_bound(seed, batch_size):
    x = np.random.default_rng(seed).normal(0, 2 ** seed, size=(40, 3))
    needed, _ = lms_bound_shift(x, batch_size)
    assert stable_gain_shift(x, batch_size, margin=1.0 + 1e-9) == max(needed, 0)


# -- Config vs task -----------------------------------------------------------------------------

def test_train_rejects_config_of_other_task(staircase):
    task, _ = staircase
    xor_config = default_config(load_task("xor"))
    with pytest.raises(TaskError, match=r"The config has 2 inputs and 2 outputs, the data .*1 and 1"):
        train(xor_config, task)


def test_train_rejects_wrong_output_count():
    task = load_task("xor")
    config = default_config(task)
    bad = config.with_changes(layers=(config.layers[0], replace(config.layers[1], size=3)))
    with pytest.raises(TaskError, match="3 outputs"):
        train(bad, task, arith="fixed")


def test_train_rejects_bad_arguments(staircase):
    task, config = staircase
    with pytest.raises(ValueError, match="learner must be one of"):
        train(config, task, learner="backprop", epochs=1)
    with pytest.raises(ValueError, match="arith must be one of"):
        train(config, task, arith="double", epochs=1)
    with pytest.raises(ValueError, match="epochs must be a non-negative integer"):
        train(config, task, epochs=-1)


# -- Digits, briefly -----------------------------------------------------------------------------

def test_digits_one_fixed_epoch_on_a_subset():
    task = load_task("digits")
    small = dataclasses.replace(task, x_train=task.x_train[:200], y_train=task.y_train[:200],
                                labels_train=task.labels_train[:200])
    config = default_config(task)
    start = time.perf_counter()
    result = train(config, small, arith="fixed", epochs=1)
    assert time.perf_counter() - start < 5
    assert result.steps == 200 and len(result.history) == 2
    assert result.warnings == []
    first, last = result.history
    assert last.train_mse < first.train_mse
    assert last.test_accuracy > 0.3 > first.test_accuracy      # chance is 0.1
    assert math.isfinite(last.test_mse)
    for w, layer in zip(result.model.weights, config.layers):
        assert w.dtype == np.int64
        assert w.shape[0] == layer.size


def test_fixed_run_warns_when_data_saturates_the_input_format():
    task = load_task("xor")
    config = default_config(task)
    big = dataclasses.replace(task, x_train=task.x_train * np.array([[10.0, 1.0]]))     # +-10 in Q(8,4)
    result = train(config, big, arith="fixed", epochs=0)
    assert any("50.0% of input values saturate formats.input Q(8,4)" in w for w in result.warnings)
    assert not any("saturate" in w for w in train(config, big, arith="float", epochs=0).warnings)
    assert not any("saturate" in w for w in train(config, task, arith="fixed", epochs=0).warnings)


def test_badly_scaled_inputs_are_warned_about():
    from nfloop.model.tasks import Task
    rng = np.random.default_rng(0)
    x = rng.normal(scale=3000, size=(50, 2))
    y = rng.normal(size=(50, 1))
    task = Task("big", x, y, None, None, default_epochs=1)
    config = LearnerConfig(inputs=2, layers=(Layer(1),))
    for arith in ("float", "fixed"):
        warnings = train(config, task, arith=arith, epochs=1).warnings
        assert any("standardise them" in w for w in warnings), (arith, warnings)
    scaled = Task("unit", x / 3000, y, None, None, default_epochs=1)
    assert not any("standardise" in w for w in train(config, scaled, epochs=1).warnings)


def test_every_layer_is_checked_on_its_own_input():
    """The output layer's input is the hidden layer's activations: a gain too large for them is
    reported for layers[1], with the shift its own input needs."""
    task = load_task("moons")
    config = default_config(task)
    assert train(config, task, epochs=0).warnings == []
    inputs = layer_inputs(config, task.x_train)
    assert [x.shape[1] for x in inputs] == [task.inputs, config.layers[0].size]
    needed = stable_gain_shift(inputs[1], 1, margin=1.0 + 1e-9)
    loud = config.with_changes(layers=(config.layers[0], replace(config.layers[1], gain_shift=needed - 2)))
    reports = check_layers(loud, task.x_train)
    assert [r.ok for r in reports] == [True, False]
    (message,) = train(loud, task, epochs=0).warnings
    assert message.startswith("layers[1] gain") and f"use gain_shift >= {needed} for layers[1]" in message


def test_a_users_config_takes_each_layers_gain_from_its_input():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 5)) * [1, 2, 3, 1, 1]
    task = Task("mine", x, (x[:, :2] > 0).astype(float), None, None)
    config = bounded_config(task)
    first, second = layer_inputs(config, x)
    assert config.layers[0].gain_shift == stable_gain_shift(x, 1)
    assert config.layers[1].gain_shift == stable_gain_shift(second, 1)
    assert all(r.ok for r in check_layers(config, x))
    # the search moves the hidden window and every gain together, and stays inside every bound
    searched = default_config(task)
    offsets = {s.gain_shift - b.gain_shift for s, b in zip(searched.layers, config.layers)}
    assert len(offsets) == 1 and offsets <= set(GAIN_OFFSETS)
    assert searched.layers[0].window in HIDDEN_WINDOWS
    assert all(r.ok for r in check_layers(searched, x))


def test_the_search_takes_the_least_held_out_error(monkeypatch):
    """Scored by a stand-in trainer whose held-out error is least at offset +1 with ReLU's own window, the
    search returns that candidate, and it held out a fifth of the training data to score it."""
    training = importlib.import_module("nfloop.model.train")   # the module: nfloop.model.train is its function
    rng = np.random.default_rng(4)
    x = rng.normal(size=(100, 3))
    task = Task("mine", x, (x[:, :1] > 0).astype(float), None, None)
    base = bounded_config(task)
    seen = []

    def fake_train(config, part, **kw):
        seen.append(len(part.x_train) + len(part.x_test))
        offset = config.layers[1].gain_shift - base.layers[1].gain_shift
        error = abs(offset - 1) + (0 if config.layers[0].window == Window(lo=0.0) else 0.5)
        return SimpleNamespace(history=[SimpleNamespace(test_mse=error)])

    monkeypatch.setattr(training, "train", fake_train)
    searched = searched_config(base, task)
    assert [l.gain_shift for l in searched.layers] == [l.gain_shift + 1 for l in base.layers]
    assert searched.layers[0].window == Window(lo=0.0)
    assert set(seen) == {100} and len(seen) == 2 * len(GAIN_OFFSETS) * len(HIDDEN_WINDOWS)
    # too few samples to hold any out: the bounded config as it is
    assert searched_config(base, task.head(SEARCH_SAMPLES - 1)) == base
