"""The compiled engine against the numpy specification: equal integers at every step.

Both engines train the same config on the same samples; after every step the
z, a, delta and error vectors, the weights, momentum, batch sums, the LFSR and
the step count must be equal. A difference is reported with its step, layer,
quantity and first differing index.
"""

from __future__ import annotations

import numpy as np
import pytest
from nfloop.model import compiled
from nfloop.model.config import (
    Activation,
    ActivationKind,
    AdaptiveGain,
    Formats,
    Layer,
    LearnerConfig,
    QFormat,
    Rounding,
    Window,
)
from nfloop.model.fixed import FixedLearner
from nfloop.model.tasks import default_config, load_task
from nfloop.model.train import encode, train
from nfloop.scripts.sweep import random_config


def first_difference(numpy_trace, compiled_trace) -> str | None:
    """Where two step traces first differ: quantity, layer and index."""
    for name in ("z", "a", "delta", "weights", "velocity", "gain"):
        for layer, (want, got) in enumerate(zip(getattr(numpy_trace, name), getattr(compiled_trace, name))):
            if (want is None) != (got is None):
                return f"{name}[{layer}]: present in one engine only"
            if want is not None and not np.array_equal(want, got):
                index = tuple(int(i) for i in np.argwhere(want != got)[0])
                return f"{name}[{layer}]{list(index)}: numpy {want[index]}, compiled {got[index]}"
    if not np.array_equal(numpy_trace.error, compiled_trace.error):
        k = int(np.flatnonzero(numpy_trace.error != compiled_trace.error)[0])
        return f"error[{k}]: numpy {numpy_trace.error[k]}, compiled {compiled_trace.error[k]}"
    for name in ("lfsr", "updated", "step"):
        if getattr(numpy_trace, name) != getattr(compiled_trace, name):
            return f"{name}: numpy {getattr(numpy_trace, name)}, compiled {getattr(compiled_trace, name)}"
    return None


def random_codes(rng, fmt: QFormat, shape) -> np.ndarray:
    return rng.integers(fmt.min_code, fmt.max_code + 1, shape)


def assert_engines_agree(config: LearnerConfig, steps: int, seed: int = 0, samples: int = 40):
    rng = np.random.default_rng(seed)
    xs = random_codes(rng, config.formats.input, (samples, config.inputs))
    ys = random_codes(rng, config.formats.activation, (samples, config.outputs))
    spec, fast = FixedLearner(config), FixedLearner(config, engine="compiled")
    for step in range(steps):
        k = int(rng.integers(samples))
        where = first_difference(spec.step(xs[k], ys[k]), fast.step(xs[k], ys[k]))
        assert where is None, f"step {step}: {where}"
        if config.batch_size > 1:     # with online updates the batch sum is not state
            for layer, (want, got) in enumerate(zip(spec.batch_sum, fast.batch_sum)):
                assert np.array_equal(want, got), f"step {step}: batch_sum[{layer}]"
    return spec, fast


@pytest.mark.parametrize("seed", range(24))
def test_random_configs_agree_at_every_step(seed):
    config = random_config(np.random.default_rng(seed))
    assert_engines_agree(config, 300, seed)


def _stair(scale=0.25):
    return Activation(ActivationKind.STAIRCASE, thresholds=(-0.5, 0.0, 0.75), scale=scale)


EDGE_CONFIGS = {
    # the narrowest formats the validator accepts
    "narrowest": LearnerConfig(
        inputs=3, layers=(Layer(4, Activation(ActivationKind.RELU), Window(lo=-0.5), gain_shift=0), Layer(2)),
        formats=Formats(input=QFormat(2, 1), activation=QFormat(2, 1), error=QFormat(2, 1),
                        weight=QFormat(2, 1), weight_acc=QFormat(3, 2))),
    # the widest: 24-bit operands, a 32-bit accumulator
    "widest": LearnerConfig(
        inputs=4, layers=(Layer(5, Activation(ActivationKind.HARDTANH), gain_shift=2),
                          Layer(3, Activation(ActivationKind.LEAKY_RELU, slope_shift=5), Window(derivative=True))),
        formats=Formats(input=QFormat(24, 20), activation=QFormat(24, 20), error=QFormat(24, 20),
                        weight=QFormat(24, 20), weight_acc=QFormat(32, 28))),
    # gains large enough that updates and weights saturate (update_fits False)
    "saturating_gain": LearnerConfig(
        inputs=5, layers=(Layer(6, Activation(ActivationKind.SIGN), gain_shift=-8),
                          Layer(3, Activation(ActivationKind.IDENTITY), gain_shift=-8)),
        formats=Formats(weight=QFormat(10, 6), weight_acc=QFormat(14, 10))),
    # stochastic rounding with momentum and leak, mini-batches
    "stochastic_momentum_leak": LearnerConfig(
        inputs=6, layers=(Layer(7, _stair(), gain_shift=5, leak_shift=9, momentum_shift=2),
                          Layer(4, Activation(ActivationKind.HARDTANH), Window(derivative=True), gain_shift=6,
                                leak_shift=7, momentum_shift=3)),
        batch_size=3, rounding=Rounding.STOCHASTIC, forward_rounding=Rounding.FLOOR, lfsr_seed=0xDEADBEEF),
    # online stochastic rounding, left-shifted updates, leak only
    "stochastic_online_leak": LearnerConfig(
        inputs=4, layers=(Layer(5, Activation(ActivationKind.LEAKY_RELU), gain_shift=-2, leak_shift=4),
                          Layer(2, gain_shift=1)),
        rounding=Rounding.STOCHASTIC),
    # floor everywhere, three layers, momentum only
    "floor_three_layers": LearnerConfig(
        inputs=3, layers=(Layer(6, Activation(ActivationKind.RELU), gain_shift=4, momentum_shift=1),
                          Layer(5, _stair(0.5), Window(lo=-1.0, hi=1.0), gain_shift=5),
                          Layer(2, Activation(ActivationKind.HARDTANH), gain_shift=6)),
        batch_size=2, rounding=Rounding.FLOOR, forward_rounding=Rounding.FLOOR),
    # adaptive gain adjusted every step, online, stochastic rounding with left-shifted updates at the most gain
    "adaptive_every_step": LearnerConfig(
        inputs=4, layers=(Layer(5, Activation(ActivationKind.RELU), gain_shift=5),
                          Layer(3, Activation(ActivationKind.HARDTANH), gain_shift=6)),
        rounding=Rounding.STOCHASTIC, adaptive_gain=AdaptiveGain(period=1, up=3, down=4)),
    # adaptive gain every 8 steps with mini-batches, momentum and a residual layer
    "adaptive_batched_residual": LearnerConfig(
        inputs=4, layers=(Layer(4, Activation(ActivationKind.LEAKY_RELU), gain_shift=4, momentum_shift=2,
                                residual=True),
                          Layer(2, gain_shift=5, leak_shift=8)),
        batch_size=3, adaptive_gain=AdaptiveGain(period=8, up=2, down=2)),
}


@pytest.mark.parametrize("name", EDGE_CONFIGS)
def test_edge_configs_agree_at_every_step(name):
    config = EDGE_CONFIGS[name]
    spec, _ = assert_engines_agree(config, 400)
    assert spec.steps == 400


def test_saturating_config_does_saturate():
    """The saturating edge config reaches the accumulator's limits, so saturation is compared, not skipped."""
    spec, _ = assert_engines_agree(EDGE_CONFIGS["saturating_gain"], 100)
    acc = EDGE_CONFIGS["saturating_gain"].formats.weight_acc
    assert any(np.any(np.abs(w) >= acc.max_code) for w in spec.weights)
    assert not spec.plans[0].update_fits


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_train_order_is_step_by_step(engine):
    """A run over an order gives what the steps give, one by one."""
    config = EDGE_CONFIGS["stochastic_momentum_leak"]
    rng = np.random.default_rng(3)
    xs = random_codes(rng, config.formats.input, (30, config.inputs))
    ys = random_codes(rng, config.formats.activation, (30, config.outputs))
    order = rng.permutation(30)
    stepped, ran = FixedLearner(config), FixedLearner(config, engine=engine)
    traces = [stepped.step(xs[k], ys[k]) for k in order]
    run = ran.train_order(xs, ys, order)
    assert np.array_equal(run.predictions, [t.prediction for t in traces])
    assert np.array_equal(run.errors, [t.error for t in traces])
    assert run.error_sum == sum(int(np.sum(t.error ** 2)) for t in traces)
    assert all(np.array_equal(a, b) for a, b in zip(stepped.weights, ran.weights))
    assert (stepped.lfsr, stepped.steps) == (ran.lfsr, ran.steps)


def test_digits_training_is_equal_in_both_engines():
    task = load_task("digits")
    config = default_config(task)
    runs = [train(config, task, arith="fixed", epochs=1, engine=engine) for engine in ("numpy", "compiled")]
    for a, b in zip(runs[0].model.weights, runs[1].model.weights):
        assert np.array_equal(a, b)
    assert runs[0].final == runs[1].final


def test_engine_selection():
    config = EDGE_CONFIGS["narrowest"]
    model = FixedLearner(config, engine="compiled")
    assert isinstance(model, compiled.CompiledLearner) and isinstance(model, FixedLearner)
    assert type(FixedLearner(config)) is FixedLearner
    with pytest.raises(ValueError, match="engine must be one of numpy, compiled"):
        FixedLearner(config, engine="fortran")


def test_compiled_state_is_what_the_model_shows():
    """The per-layer arrays are views of the kernel's buffers: they change as it trains."""
    config = default_config(load_task("xor"))
    model = FixedLearner(config, engine="compiled")
    codes = encode(config, load_task("xor"))
    before = [w.copy() for w in model.weights]
    model.train_order(codes.x_train, codes.y_train, np.arange(len(codes.x_train)))
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.weights))
    for plan, w, view in zip(model.plans, model.weights, model.views):
        assert np.array_equal(view, w >> plan.view_shift)
    assert np.array_equal(model.predict(codes.x_train), FixedLearner(config, model.weights).predict(codes.x_train))


@pytest.mark.parametrize("kind", list(ActivationKind))
def test_every_activation_has_a_kernel_code(kind):
    assert compiled.activation_code(kind) in range(5)


@pytest.mark.parametrize("rounding", list(Rounding))
def test_every_rounding_has_a_kernel_code(rounding):
    assert compiled.rounding_code(rounding) in range(3)


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
@pytest.mark.parametrize("name", sorted(EDGE_CONFIGS))
def test_a_learner_resumed_from_its_state_continues_exactly(name, engine):
    """Train 60 steps, save the state, train 40 more in a new learner loaded from it: the same integers as
    100 steps in one learner (momentum, batch sums, LFSR and step count all carried)."""
    config = EDGE_CONFIGS[name]
    rng = np.random.default_rng(3)
    f, n_in, n_out = config.formats, config.sizes[0], config.sizes[-1]
    xs, ys = random_codes(rng, f.input, (30, n_in)), random_codes(rng, f.activation, (30, n_out))
    order = rng.integers(0, 30, size=100)
    whole = FixedLearner(config, engine=engine)
    whole.train_order(xs, ys, order)
    first = FixedLearner(config, engine=engine)
    first.train_order(xs, ys, order[:61])
    saved = {k: v.copy() for k, v in first.state().items()}
    resumed = FixedLearner(config, engine=engine)
    resumed.load_state(saved)
    resumed.train_order(xs, ys, order[61:])
    for key, value in whole.state().items():
        np.testing.assert_array_equal(resumed.state()[key], value, err_msg=f"{name}: {key} after resuming")
    assert any(np.any(v != 0) for k, v in whole.state().items() if k.startswith(("velocity", "batch_sum"))) or \
        config.batch_size == 1


def test_a_state_of_another_shape_is_refused():
    config = EDGE_CONFIGS[sorted(EDGE_CONFIGS)[0]]
    state = FixedLearner(config).state()
    state.pop("steps")
    with pytest.raises(ValueError, match="needs the arrays"):
        FixedLearner(config).load_state(state)
