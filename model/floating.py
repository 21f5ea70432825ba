"""Float reference model: the learner of ALGORITHM sections 1-5 in float64.

It takes the same :class:`LearnerConfig` as the fixed-point model and ignores
the formats. With every window set to ``derivative`` it *is* gradient descent
on 0.5*||e||^2 (``tests/model/test_floating.py`` checks this against numerical
gradients), which is how :func:`nfloop.model.train.train` builds the baseline
(``learner="gradient"``, through :meth:`LearnerConfig.as_gradient_descent`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import BAND_SHIFT, Activation, ActivationKind, LearnerConfig, Window
from .init import initial_weights

__all__ = ["sigma", "sigma_slope", "window", "FloatTrace", "FloatLearner"]


def sigma(z: np.ndarray, act: Activation) -> np.ndarray:
    match act.kind:
        case ActivationKind.IDENTITY:
            return z
        case ActivationKind.RELU:
            return np.maximum(z, 0.0)
        case ActivationKind.LEAKY_RELU:
            return np.where(z >= 0, z, z * 2.0 ** -act.slope_shift)
        case ActivationKind.HARDTANH:
            return np.clip(z, act.lo, act.hi)
        case ActivationKind.SIGN | ActivationKind.STAIRCASE:
            return act.scale * sum(np.sign(z - c) for c in act.thresholds)
        case kind:
            raise ValueError(f"no activation {kind!r}")


def sigma_slope(z: np.ndarray, act: Activation) -> np.ndarray:
    """sigma'(z), with the same choice at kinks as the fixed-point model."""
    match act.kind:
        case ActivationKind.IDENTITY:
            return np.ones_like(z)
        case ActivationKind.RELU:
            return (z > 0).astype(np.float64)
        case ActivationKind.LEAKY_RELU:
            return np.where(z > 0, 1.0, 2.0 ** -act.slope_shift)
        case ActivationKind.HARDTANH:
            return ((z > act.lo) & (z < act.hi)).astype(np.float64)
        case ActivationKind.SIGN | ActivationKind.STAIRCASE:
            return np.zeros_like(z)
        case kind:
            raise ValueError(f"no activation {kind!r}")


def window(z: np.ndarray, win: Window, act: Activation) -> np.ndarray:
    """s(z): the rectangular window, or sigma'(z) in derivative mode."""
    if win.derivative:
        return sigma_slope(z, act)
    inside = np.ones(z.shape, dtype=bool)
    if win.lo is not None:
        inside &= z >= win.lo
    if win.hi is not None:
        inside &= z <= win.hi
    return inside.astype(np.float64)


@dataclass
class FloatTrace:
    step: int
    z: list[np.ndarray]
    a: list[np.ndarray]
    error: np.ndarray
    delta: list[np.ndarray]
    weights: list[np.ndarray]
    updated: bool

    @property
    def prediction(self) -> np.ndarray:
        return self.a[-1]


class FloatLearner:
    """The negative-feedback learner in float64.

    Parameters
    ----------
    config : LearnerConfig
    weights : list of arrays, optional
        ``(n_out, n_in + 1)`` per layer, bias last; default: the config's initial weights.
    """

    def __init__(self, config: LearnerConfig, weights: list[np.ndarray] | None = None):
        self.config = config
        self.weights = [np.array(w, dtype=np.float64)
                        for w in (weights if weights is not None else initial_weights(config))]
        self.velocity = [np.zeros_like(w) for w in self.weights]
        self.batch_sum = [np.zeros_like(w) for w in self.weights]
        self.steps = 0
        # adaptive gain, per layer: the offset on gain_shift, this period's error energy, the last one's
        self.gain_offset = [0] * len(self.weights)
        self.energy = [0.0] * len(self.weights)
        self.previous: list[float | None] = [None] * len(self.weights)

    def _adapt(self, deltas) -> None:
        """Each layer's error energy (the sum of its |delta|) and, at the end of a period, its gain offset:
        the fixed-point model's rule (:func:`nfloop.model.fixed.adapt_gain`) on real numbers."""
        rule = self.config.adaptive_gain
        ending = (self.steps + 1) % rule.period == 0
        for l, delta in enumerate(deltas):
            self.energy[l] += float(np.abs(delta).sum())
            if not ending:
                continue
            energy, previous = self.energy[l], self.previous[l]
            if previous is not None:
                if energy > previous * (1 + 2.0 ** -BAND_SHIFT):
                    self.gain_offset[l] = min(self.gain_offset[l] + 1, rule.down)
                elif energy < previous * (1 - 2.0 ** -BAND_SHIFT):
                    self.gain_offset[l] = max(self.gain_offset[l] - 1, -rule.up)
            self.energy[l], self.previous[l] = 0.0, energy

    def forward(self, x: np.ndarray):
        zs, acts = [], []
        a = np.asarray(x, dtype=np.float64)
        for layer, w in zip(self.config.layers, self.weights):
            z = a @ w[:, :-1].T + w[:, -1] + (a if layer.residual else 0.0)
            a = sigma(z, layer.activation)
            zs.append(z)
            acts.append(a)
        return zs, acts

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[1][-1]

    def loop_signal(self, x: np.ndarray, y: np.ndarray):
        """G for every layer (the loop's drive before the gain), with the forward pass.

        In derivative mode G_l = -d(0.5*||y - f(x)||^2)/dW_l.
        """
        zs, acts = self.forward(x)
        e = np.asarray(y, dtype=np.float64) - acts[-1]
        deltas = [None] * len(self.weights)
        g = e
        for l in reversed(range(len(self.weights))):
            layer = self.config.layers[l]
            deltas[l] = g * window(zs[l], layer.window, layer.activation)
            # a residual layer's input reaches z through W + I
            g = self.weights[l][:, :-1].T @ deltas[l] + (deltas[l] if layer.residual else 0.0)
        signals = []
        for l, delta in enumerate(deltas):
            a_in = np.asarray(x, dtype=np.float64) if l == 0 else acts[l - 1]
            signals.append(np.outer(delta, np.append(a_in, 1.0)))
        return signals, zs, acts, e, deltas

    def step(self, x: np.ndarray, y: np.ndarray) -> FloatTrace:
        cfg = self.config
        signals, zs, acts, e, deltas = self.loop_signal(x, y)
        for l, G in enumerate(signals):
            self.batch_sum[l] += cfg.gain(l) * 2.0 ** -self.gain_offset[l] * G
        if cfg.adaptive_gain:
            self._adapt(deltas)         # after the updates: a new gain applies from the next step on
        self.steps += 1
        updated = self.steps % cfg.batch_size == 0
        if updated:
            for l, layer in enumerate(cfg.layers):
                change = self.batch_sum[l]
                if layer.momentum_shift:
                    self.velocity[l] = self.velocity[l] * (1 - 2.0 ** -layer.momentum_shift) + change
                    change = self.velocity[l]
                if layer.leak_shift:
                    change = change - self.weights[l] * 2.0 ** -layer.leak_shift
                self.weights[l] = self.weights[l] + change
                self.batch_sum[l] = np.zeros_like(self.weights[l])
        return FloatTrace(step=self.steps - 1, z=zs, a=acts, error=e, delta=deltas,
                          weights=list(self.weights), updated=updated)

    def real_weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self.weights]
