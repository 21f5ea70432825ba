"""The loop's stability bound for the data at hand (ALGORITHM section 5).

For a single linear layer the loop is LMS: online updates are stable for
``0 < A * ||x||^2 < 2`` (every sample), a batch of B samples for
``0 < A * lambda_max(X_B^T X_B) < 2``. nfloop checks the first layer with its
bias input appended; for deeper or non-linear networks this is a guide, exact
only where the rest of the network has unit slope.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import LearnerConfig

__all__ = ["StabilityReport", "loop_gain", "check_stability", "stable_gain_shift"]


@dataclass(frozen=True)
class StabilityReport:
    gain: float
    loop_gain: float    # A * (max ||x||^2 or lambda_max of a batch)
    ok: bool
    advice: str
    measure: str        # what the gain multiplies

    def message(self) -> str:
        return (f"layers[0] gain A = {self.gain:g} gives A*{self.measure} = {self.loop_gain:.3g}, "
                f"beyond the stability bound 2 for this data (see docs/algorithm.md); {self.advice}")


def _curvature(x: np.ndarray, batch_size: int) -> float:
    """max ||x||^2 (online) or the expected lambda_max of a batch's X^T X, bias included."""
    x_aug = np.concatenate([np.asarray(x, dtype=np.float64), np.ones((len(x), 1))], axis=1)
    if batch_size == 1:
        return float(np.max(np.sum(x_aug ** 2, axis=1)))
    batch = min(batch_size, len(x_aug))
    mean_outer = x_aug.T @ x_aug / len(x_aug)
    return float(batch * np.linalg.eigvalsh(mean_outer)[-1])


def loop_gain(config: LearnerConfig, x: np.ndarray) -> float:
    return config.gain(0) * _curvature(x, config.batch_size)


def stable_gain_shift(x: np.ndarray, batch_size: int, margin: float = 2.0) -> int:
    """The smallest gain_shift whose loop gain stays below 2 / margin."""
    curvature = _curvature(x, batch_size)
    shift = int(np.ceil(np.log2(curvature * margin / 2.0))) if curvature > 0 else 0
    return max(shift, 0)


def check_stability(config: LearnerConfig, x: np.ndarray) -> StabilityReport:
    value = loop_gain(config, x)
    needed = stable_gain_shift(x, config.batch_size, margin=1.0 + 1e-9)
    ok = value < 2.0
    advice = f"use gain_shift >= {needed} for layers[0]" if not ok else "stable"
    measure = "max||x||^2" if config.batch_size == 1 else "lambda_max(X^T X)"
    return StabilityReport(config.gain(0), value, ok, advice, measure)
