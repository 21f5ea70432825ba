"""The float model: in derivative mode the loop *is* gradient descent on 0.5*||y - f(x)||^2.

The loop signal G of every layer is compared with minus the central-difference
gradient of the loss with respect to every weight and bias, for random
networks of piecewise-linear units whose pre-activations stay clear of the
kinks (the loss is then piecewise quadratic in each weight, and the central
difference is exact up to float rounding). The update rule (gain, mini-batch
sums, leak, momentum) and the windowed loop are recomputed independently.
"""

from __future__ import annotations

import numpy as np
import pytest
from nfloop.model import FloatLearner
from nfloop.model.config import Activation, ActivationKind, Layer, LearnerConfig, Window

H = 1e-6            # finite-difference step
KINK_MARGIN = 1e-3  # no pre-activation closer than this to a kink
SMOOTH_KINDS = [ActivationKind.IDENTITY, ActivationKind.RELU, ActivationKind.LEAKY_RELU,
                ActivationKind.HARDTANH]
HARDTANH_BOUNDS = [(-1.0, 1.0), (-0.5, 2.0), (0.0, 1.5)]


# -- Independent references --------------------------------------------------------------------

def ref_sigma(z, act: Activation):
    kind = act.kind
    if kind is ActivationKind.IDENTITY:
        return z
    if kind is ActivationKind.RELU:
        return np.where(z > 0, z, 0.0)
    if kind is ActivationKind.LEAKY_RELU:
        return np.where(z > 0, z, z / 2**act.slope_shift)
    if kind is ActivationKind.HARDTANH:
        return np.where(z < act.lo, act.lo, np.where(z > act.hi, act.hi, z))
    total = np.zeros_like(z)
    for c in act.thresholds:
        total = total + np.sign(z - c)
    return act.scale * total


def ref_forward(config: LearnerConfig, weights, x):
    zs, acts, a = [], [], np.asarray(x, dtype=np.float64)
    for layer, w in zip(config.layers, weights):
        z = np.array([sum(w[j, i] * a[i] for i in range(len(a))) + w[j, -1] for j in range(w.shape[0])])
        if layer.residual:
            z = z + a
        a = ref_sigma(z, layer.activation)
        zs.append(z)
        acts.append(a)
    return zs, acts


def loss(config, weights, x, y) -> float:
    e = np.asarray(y) - ref_forward(config, weights, x)[1][-1]
    return 0.5 * float(e @ e)


def numerical_gradient(config, weights, x, y) -> list[np.ndarray]:
    grads = []
    for l, w in enumerate(weights):
        g = np.zeros_like(w)
        for index in np.ndindex(w.shape):
            plus = [v.copy() for v in weights]
            minus = [v.copy() for v in weights]
            plus[l][index] += H
            minus[l][index] -= H
            g[index] = (loss(config, plus, x, y) - loss(config, minus, x, y)) / (2 * H)
        grads.append(g)
    return grads


def kinks(act: Activation) -> list[float]:
    if act.kind in (ActivationKind.RELU, ActivationKind.LEAKY_RELU):
        return [0.0]
    if act.kind is ActivationKind.HARDTANH:
        return [act.lo, act.hi]
    if act.is_step:
        return list(act.thresholds)
    return []


def random_activation(rng) -> Activation:
    kind = SMOOTH_KINDS[int(rng.integers(len(SMOOTH_KINDS)))]
    if kind is ActivationKind.LEAKY_RELU:
        return Activation(kind, slope_shift=int(rng.integers(1, 5)))
    if kind is ActivationKind.HARDTANH:
        lo, hi = HARDTANH_BOUNDS[int(rng.integers(len(HARDTANH_BOUNDS)))]
        return Activation(kind, lo=lo, hi=hi)
    return Activation(kind)


def random_network(rng, **config_kw) -> LearnerConfig:
    n_layers = int(rng.integers(1, 4))
    sizes = [int(s) for s in rng.integers(1, 7, size=n_layers + 1)]
    residual = [bool(r) for r in rng.random(n_layers) < 0.4]       # z = W a + b + a: as many units as inputs
    for l in range(n_layers):
        if residual[l]:
            sizes[l + 1] = sizes[l]
    layers = tuple(Layer(sizes[l + 1], random_activation(rng), gain_shift=int(rng.integers(0, 7)),
                         residual=residual[l]) for l in range(n_layers))
    return LearnerConfig(inputs=sizes[0], layers=layers, **config_kw).as_gradient_descent()


def random_point(config, rng, batch=1):
    """Weights and ``batch`` samples with every pre-activation at least KINK_MARGIN from a kink."""
    for _ in range(1000):
        weights = [rng.normal(0, 1, (n_out, n_in + 1)) for n_in, n_out in zip(config.sizes, config.sizes[1:])]
        xs = rng.normal(0, 1, (batch, config.inputs))
        ys = rng.normal(0, 1, (batch, config.outputs))
        clear = all(abs(z_j - k) > KINK_MARGIN
                    for x in xs for layer, z in zip(config.layers, ref_forward(config, weights, x)[0])
                    for z_j in z for k in kinks(layer.activation))
        if clear:
            return weights, xs, ys
    raise AssertionError("no sample clear of the kinks in 1000 draws")


def live_point(config, rng, batch=1):
    """A point as random_point whose first sample has a non-zero numerical gradient."""
    for _ in range(200):
        weights, xs, ys = random_point(config, rng, batch)
        numeric = numerical_gradient(config, weights, xs[0], ys[0])
        norm = np.sqrt(sum(float(np.sum(g**2)) for g in numeric))
        if norm > 1e-3:    # resample the all-dead / all-clipped points: nothing to compare there
            return weights, xs, ys, numeric, norm
    raise AssertionError("every draw had a zero gradient")


# -- Derivative mode is gradient descent ---------------------------------------------------------

def test_random_networks_have_residual_layers():
    """The gradient check below sees residual layers, behind the first layer too."""
    configs = [random_network(np.random.default_rng(seed)) for seed in range(40)]
    assert any(layer.residual for c in configs for layer in c.layers[1:])
    assert any(not layer.residual for c in configs for layer in c.layers)


@pytest.mark.parametrize("seed", range(40))
def test_derivative_mode_is_the_negative_gradient(seed):
    rng = np.random.default_rng(seed)
    config = random_network(rng)
    assert all(layer.window.derivative for layer in config.layers)
    weights, xs, ys, numeric, norm = live_point(config, rng)
    x, y = xs[0], ys[0]
    learner = FloatLearner(config, [w.copy() for w in weights])
    np.testing.assert_allclose(learner.predict(x), ref_forward(config, weights, x)[1][-1], rtol=1e-12)
    signals = learner.loop_signal(x, y)[0]
    assert len(signals) == len(config.layers)
    error = 0.0
    for l, (G, g) in enumerate(zip(signals, numeric)):
        assert G.shape == (config.sizes[l + 1], config.sizes[l] + 1)
        error += float(np.sum((G + g) ** 2))
    assert np.sqrt(error) / norm < 1e-6, [(G, -g) for G, g in zip(signals, numeric)]


@pytest.mark.parametrize("seed", range(10))
def test_online_step_moves_by_gain_times_signal(seed):
    rng = np.random.default_rng(100 + seed)
    config = random_network(rng)
    weights, xs, ys, _, _ = live_point(config, rng)
    learner = FloatLearner(config, [w.copy() for w in weights])
    signals = FloatLearner(config, [w.copy() for w in weights]).loop_signal(xs[0], ys[0])[0]
    trace = learner.step(xs[0], ys[0])
    assert trace.updated
    for l, (w0, G) in enumerate(zip(weights, signals)):
        expected = w0 + config.gain(l) * G
        np.testing.assert_array_equal(trace.weights[l], expected)
        np.testing.assert_array_equal(learner.weights[l], expected)
    assert any(not np.array_equal(w0, w) for w0, w in zip(weights, learner.weights))


@pytest.mark.parametrize("seed", range(10))
def test_mini_batch_step_sums_the_signals(seed):
    rng = np.random.default_rng(200 + seed)
    config = random_network(rng, batch_size=3)
    weights, xs, ys, _, _ = live_point(config, rng, batch=6)
    learner = FloatLearner(config, [w.copy() for w in weights])
    start = [w.copy() for w in weights]
    for batch in range(2):
        reference = FloatLearner(config, [w.copy() for w in start])
        total = [np.zeros_like(w) for w in start]
        for k in range(3):
            x, y = xs[3 * batch + k], ys[3 * batch + k]
            for l, G in enumerate(reference.loop_signal(x, y)[0]):
                total[l] += config.gain(l) * G
            trace = learner.step(x, y)
            assert trace.updated == (k == 2)
            if k < 2:  # nothing moves before the batch ends
                for w, w0 in zip(learner.weights, start):
                    np.testing.assert_array_equal(w, w0)
        for l in range(len(start)):
            np.testing.assert_allclose(learner.weights[l], start[l] + total[l], rtol=1e-12, atol=1e-14)
        if batch == 0:
            assert any(not np.array_equal(w, w0) for w, w0 in zip(learner.weights, start))
        start = [w.copy() for w in learner.weights]


@pytest.mark.parametrize("seed", range(5))
def test_leak_and_momentum(seed):
    """W += V with V = beta*V + A*G, beta = 1 - 2**-m; leak: W += ... - 2**-k * W."""
    rng = np.random.default_rng(300 + seed)
    base = random_network(rng, batch_size=2)
    config = base.with_changes(layers=tuple(
        Layer(l.size, l.activation, l.window, gain_shift=l.gain_shift, leak_shift=int(rng.integers(3, 9)),
              momentum_shift=int(rng.integers(1, 4))) for l in base.layers))
    weights, xs, ys, _, _ = live_point(config, rng, batch=8)
    learner = FloatLearner(config, [w.copy() for w in weights])
    w_ref = [w.copy() for w in weights]
    v_ref = [np.zeros_like(w) for w in weights]
    for b in range(4):
        reference = FloatLearner(config, [w.copy() for w in w_ref])
        signals = [reference.loop_signal(xs[2 * b + k], ys[2 * b + k])[0] for k in range(2)]
        for k in range(2):
            learner.step(xs[2 * b + k], ys[2 * b + k])
        for l, layer in enumerate(config.layers):
            u = config.gain(l) * (signals[0][l] + signals[1][l])
            v_ref[l] = (1 - 2.0 ** -layer.momentum_shift) * v_ref[l] + u
            w_ref[l] = w_ref[l] + v_ref[l] - 2.0 ** -layer.leak_shift * w_ref[l]
            np.testing.assert_allclose(learner.weights[l], w_ref[l], rtol=1e-12, atol=1e-14)


# -- The windowed loop -------------------------------------------------------------------------

def ref_window(z, win: Window):
    inside = np.ones(z.shape, dtype=bool)
    if win.lo is not None:
        inside &= z >= win.lo
    if win.hi is not None:
        inside &= z <= win.hi
    return inside.astype(float)


@pytest.mark.parametrize("seed", range(10))
def test_windowed_loop_signal(seed):
    """delta_L = e (.) s_L, delta_l = (W_{l+1}^T delta_{l+1}) (.) s_l, G_l = delta_l [a_{l-1}, 1]^T."""
    rng = np.random.default_rng(400 + seed)
    windows = [Window(), Window(lo=-0.5), Window(hi=0.25), Window(lo=-1.0, hi=1.0), Window(lo=0.5, hi=0.5)]
    base = random_network(rng)
    config = base.with_changes(layers=tuple(
        Layer(l.size, l.activation, windows[int(rng.integers(len(windows)))], gain_shift=l.gain_shift)
        for l in base.layers))
    weights, xs, ys = random_point(config, rng)
    x, y = xs[0], ys[0]
    zs, acts = ref_forward(config, weights, x)
    delta = (y - acts[-1]) * ref_window(zs[-1], config.layers[-1].window)
    expected = [None] * len(weights)
    for l in reversed(range(len(weights))):
        a_in = x if l == 0 else acts[l - 1]
        expected[l] = np.outer(delta, np.append(a_in, 1.0))
        if l:
            delta = (weights[l][:, :-1].T @ delta) * ref_window(zs[l - 1], config.layers[l - 1].window)
    signals = FloatLearner(config, weights).loop_signal(x, y)[0]
    for G, E in zip(signals, expected):
        np.testing.assert_allclose(G, E, rtol=1e-12, atol=1e-14)


# -- Step activations: gradient descent cannot move, the loop can -------------------------------

STEP_ACTIVATIONS = {
    "staircase": Activation(ActivationKind.STAIRCASE),
    "sign": Activation(ActivationKind.SIGN),
    "staircase5": Activation(ActivationKind.STAIRCASE, thresholds=(-0.75, -0.25, 0.25, 0.75), scale=0.25),
}


@pytest.mark.parametrize("name", STEP_ACTIVATIONS)
@pytest.mark.parametrize("seed", range(3))
def test_step_units_gradient_descent_stands_still_loop_moves(name, seed):
    act = STEP_ACTIVATIONS[name]
    rng = np.random.default_rng(500 + seed)
    loop = LearnerConfig(inputs=3, layers=(Layer(4, act, gain_shift=4), Layer(2, act, gain_shift=4)),
                         batch_size=2)
    gradient = loop.as_gradient_descent()
    # Weights small enough that the pre-activations sit inside the default windows.
    weights = [rng.normal(0, 0.2, (4, 4)), rng.normal(0, 0.2, (2, 5))]
    xs = rng.uniform(-1, 1, (10, 3))
    ys = rng.uniform(-2, 2, (10, 2))
    descent = FloatLearner(gradient, [w.copy() for w in weights])
    feedback = FloatLearner(loop, [w.copy() for w in weights])
    for x, y in zip(xs, ys):
        for G in descent.loop_signal(x, y)[0]:
            np.testing.assert_array_equal(G, 0.0)
        descent.step(x, y)
        feedback.step(x, y)
    for w0, w in zip(weights, descent.weights):
        np.testing.assert_array_equal(w, w0)
    assert all(not np.array_equal(w0, w) for w0, w in zip(weights, feedback.weights))


def test_step_hidden_layer_gets_no_gradient():
    """Staircase hidden units under gradient descent: only the identity output layer learns."""
    config = LearnerConfig(inputs=2, layers=(Layer(3, STEP_ACTIVATIONS["staircase5"]), Layer(2))
                           ).as_gradient_descent()
    rng = np.random.default_rng(9)
    weights = [rng.normal(0, 0.5, (3, 3)), rng.normal(0, 0.5, (2, 4))]
    learner = FloatLearner(config, [w.copy() for w in weights])
    for _ in range(5):
        learner.step(rng.uniform(-1, 1, 2), rng.uniform(-1, 1, 2))
    np.testing.assert_array_equal(learner.weights[0], weights[0])
    assert not np.array_equal(learner.weights[1], weights[1])


def test_staircase_paper_point_gradient_zero_loop_nonzero():
    """The paper's start (w, b) = (0.3, 0.8) on y = sigma(x - 1): G = 0 for gradient descent,
    and the loop's batch signal pulls w up and b down (towards w = 1, b = -1)."""
    act = Activation(ActivationKind.STAIRCASE)
    loop = LearnerConfig(inputs=1, layers=(Layer(1, act, init=((0.3, 0.8),)),))
    xs = np.linspace(-4, 4, 81) + 0.01
    ys = sum(np.sign(xs - 1 - c) for c in (-1.0, 0.0, 1.0))
    total = {"loop": np.zeros((1, 2)), "gradient": np.zeros((1, 2))}
    for name, config in (("loop", loop), ("gradient", loop.as_gradient_descent())):
        learner = FloatLearner(config)
        np.testing.assert_array_equal(learner.weights[0], [[0.3, 0.8]])
        for x, y in zip(xs, ys):
            total[name] += learner.loop_signal(np.array([x]), np.array([y]))[0][0]
    np.testing.assert_array_equal(total["gradient"], 0.0)
    assert total["loop"][0, 0] > 0 and total["loop"][0, 1] < 0


def test_step_traces_are_snapshots():
    rng = np.random.default_rng(11)
    config = random_network(rng)
    weights, xs, ys, _, _ = live_point(config, rng, batch=4)
    learner = FloatLearner(config, weights)
    traces, snapshots = [], []
    for x, y in zip(xs, ys):
        traces.append(learner.step(x, y))
        snapshots.append([w.copy() for w in traces[-1].weights])
    assert any(not np.array_equal(a, b) for a, b in zip(snapshots[0], snapshots[-1]))
    for trace, snap in zip(traces, snapshots):
        for w, s in zip(trace.weights, snap):
            np.testing.assert_array_equal(w, s)
