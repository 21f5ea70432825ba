"""Bit-exact comparison of the hardware's results with the fixed-point model."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Mismatch", "first_output_mismatch", "first_weight_mismatch", "GAIN_STATE"]


@dataclass(frozen=True)
class Mismatch:
    """The first place where hardware and model differ.

    ``what`` is ``prediction`` or ``error`` (``layer`` is then the output layer
    and ``index`` the output), or ``weight`` (``index`` is ``[row, column]``,
    the bias in the last column).
    """
    step: int
    what: str
    layer: int
    index: int | list[int]
    hw: int
    model: int

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self):
        return (f"step {self.step}: {self.what} of layer {self.layer} at index {self.index}: "
                f"hardware {self.hw}, model {self.model}")


def first_output_mismatch(predictions: np.ndarray, errors: np.ndarray, model_predictions: np.ndarray,
                          model_errors: np.ndarray, layer: int, first_step: int = 0) -> Mismatch | None:
    """Compare per-step output vectors ``(steps, n_out)``; None when equal."""
    for what, hw, ref in (("prediction", predictions, model_predictions), ("error", errors, model_errors)):
        hw, ref = np.asarray(hw), np.asarray(ref)
        if hw.shape != ref.shape:
            raise ValueError(f"{what}: hardware gave shape {hw.shape}, the model {ref.shape}")
    for step in range(len(predictions)):
        for what, hw, ref in (("prediction", predictions, model_predictions), ("error", errors, model_errors)):
            diff = np.flatnonzero(hw[step] != ref[step])
            if diff.size:
                k = int(diff[0])
                return Mismatch(first_step + step, what, layer, k, int(hw[step][k]), int(ref[step][k]))
    return None


#: What a mismatch in the adaptive gain state is called.
GAIN_STATE = "adaptive gain state (offset, energy, previous)"


def first_weight_mismatch(weights: list[np.ndarray], model_weights: list[np.ndarray], step: int,
                          what: str = "weight") -> Mismatch | None:
    """Compare every layer's weight accumulators (or another per-layer state, ``what``) after ``step``;
    None when equal."""
    for layer, (hw, ref) in enumerate(zip(weights, model_weights)):
        diff = np.argwhere(np.asarray(hw) != np.asarray(ref))
        if diff.size:
            j, i = (int(v) for v in diff[0])
            return Mismatch(step, what, layer, [j, i], int(hw[j, i]), int(ref[j, i]))
    return None
