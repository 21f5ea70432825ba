"""The loop's stability bound for the data at hand (ALGORITHM section 5).

For a single linear layer the loop is LMS: online updates are stable for
``0 < A * ||x||^2 < 2`` (every sample), a batch of B samples for
``0 < A * lambda_max(X_B^T X_B) < 2``. nfloop checks every layer with its
bias input appended: the first on the data, each later one on the float
model's activations of the layer before at the initial weights. For deeper or
non-linear networks this is a guide, exact only where the rest of the network
has unit slope.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import LearnerConfig
from .tasks import TaskError

__all__ = ["StabilityReport", "loop_gain", "check_stability", "check_layers", "layer_inputs", "stable_gain_shift"]


@dataclass(frozen=True)
class StabilityReport:
    gain: float
    loop_gain: float    # A * (max ||x||^2 or lambda_max of a batch)
    ok: bool
    advice: str
    measure: str        # what the gain multiplies
    layer: int = 0

    def message(self) -> str:
        return (f"layers[{self.layer}] gain A = {self.gain:g} gives A*{self.measure} = {self.loop_gain:.3g}, "
                f"beyond the stability bound 2 for this data (see docs/algorithm.md); {self.advice}")


#: Below this magnitude a sum of squares over any array that fits in memory stays finite.
_SAFE_PEAK = 2.0 ** 480


def _scaled_curvature(x: np.ndarray, batch_size: int) -> tuple[float, int]:
    """``(c, k)``: max ||x||^2 (online) or the expected lambda_max of a batch's X^T X, bias included,
    is ``c * 4**k``. ``k`` is 0 unless the data are large enough for it to overflow float64 (its
    squares pass 1e308 from about 1e154); then they are divided by ``2**k`` first, exactly, and ``c``
    stays finite."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise TaskError("the data contain NaN or infinite values; clean the data")
    x_aug = np.concatenate([x.reshape(len(x), -1), np.ones((len(x), 1))], axis=1)
    peak = float(np.max(np.abs(x_aug)))
    if peak < _SAFE_PEAK:
        return _plain_curvature(x_aug, batch_size), 0
    k = math.frexp(peak)[1]                                 # 2**k > every magnitude
    return _plain_curvature(np.ldexp(x_aug, -k), batch_size), k


def _plain_curvature(x_aug: np.ndarray, batch_size: int) -> float:
    if batch_size == 1:
        return float(np.max(np.sum(x_aug ** 2, axis=1)))
    batch = min(batch_size, len(x_aug))
    mean_outer = x_aug.T @ x_aug / len(x_aug)
    return float(batch * np.linalg.eigvalsh(mean_outer)[-1])


def _curvature(x: np.ndarray, batch_size: int) -> float:
    """max ||x||^2 (online) or the expected lambda_max of a batch's X^T X, bias included (inf past float64)."""
    curvature, k = _scaled_curvature(x, batch_size)
    return curvature if k == 0 else math.inf


def loop_gain(config: LearnerConfig, x: np.ndarray, layer: int = 0) -> float:
    """The gain of ``layer`` times the curvature of its input ``x``."""
    return config.gain(layer) * _curvature(x, config.batch_size)


def stable_gain_shift(x: np.ndarray, batch_size: int, margin: float = 2.0) -> int:
    """The smallest gain_shift whose loop gain stays below 2 / margin."""
    curvature, k = _scaled_curvature(x, batch_size)
    if curvature <= 0:
        return 0
    # log2(curvature * margin / 2) as before when nothing overflows; past float64, plus 2k exactly
    shift = int(np.ceil(np.log2(curvature * margin / 2.0))) + 2 * k
    return max(shift, 0)


def layer_inputs(config: LearnerConfig, x: np.ndarray) -> list[np.ndarray]:
    """What each layer sees for the data ``x``: ``x`` itself, then the float model's activations of
    the layer before at the config's initial weights. Only the first when the data are too large for
    a forward pass in float64."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if _scaled_curvature(x, 1)[1] > 0:
        return [x]
    from .floating import FloatLearner
    with np.errstate(over="ignore", invalid="ignore"):
        activations = FloatLearner(config).forward(x)[1]
    inputs = [x]
    for a in activations[:-1]:
        if not np.all(np.isfinite(a)):
            break
        inputs.append(a)
    return inputs


def check_stability(config: LearnerConfig, x: np.ndarray, layer: int = 0) -> StabilityReport:
    """The stability of ``layer`` whose input is ``x``."""
    value = loop_gain(config, x, layer)
    needed = stable_gain_shift(x, config.batch_size, margin=1.0 + 1e-9)
    ok = value < 2.0
    advice = f"use gain_shift >= {needed} for layers[{layer}]" if not ok else "stable"
    measure = "max||x||^2" if config.batch_size == 1 else "lambda_max(X^T X)"
    return StabilityReport(config.gain(layer), value, ok, advice, measure, layer)


def check_layers(config: LearnerConfig, x: np.ndarray) -> list[StabilityReport]:
    """:func:`check_stability` of every layer, each on its input (:func:`layer_inputs`)."""
    return [check_stability(config, inputs, layer) for layer, inputs in enumerate(layer_inputs(config, x))]
