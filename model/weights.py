"""Weight files: what ``nfloop train --save`` and ``nfloop weights read`` write, and ``weights write`` reads.

One ``.npz`` per network:

- ``config``: the learner config as TOML text (``docs/config.md``);
- ``weights_L``: layer L's weights as real numbers, shape (n_out, n_in + 1), the bias last;
- ``codes_L``: the same as ``formats.weight_acc`` integer codes, when they come from the fixed-point
  model or a board (absent after float training: they are then quantised when written to a board).

``np.load(path)["weights_0"]`` is all a user needs from Python.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .config import ConfigError, LearnerConfig, config_toml

__all__ = ["save_weights", "load_weight_codes"]


def save_weights(path: Path, config: LearnerConfig, real: list[np.ndarray], codes: list[np.ndarray] | None = None):
    path = Path(path)
    arrays = {"config": np.array(config_toml(config))}
    for l, w in enumerate(real):
        arrays[f"weights_{l}"] = np.asarray(w, dtype=np.float64)
        if codes is not None:
            arrays[f"codes_{l}"] = np.asarray(codes[l], dtype=np.int64)
    aside = path.with_name(f".{path.name}.partial")
    with open(aside, "wb") as file:
        np.savez(file, **arrays)
    aside.replace(path)


def load_weight_codes(path: Path, config: LearnerConfig) -> list[np.ndarray]:
    """The file's weights as ``config``'s weight_acc codes: its codes, or its real weights quantised."""
    from .fixed import FixedLearner
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as saved:
            arrays = {name: saved[name] for name in saved.files}
    except FileNotFoundError:
        raise ConfigError(f"weight file {path} does not exist") from None
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ConfigError(f"cannot read weight file {path}: {error} (write one with nfloop train --save or "
                          f"nfloop weights read)") from None
    layers = len(config.layers)
    kind = "codes" if all(f"codes_{l}" in arrays for l in range(layers)) else "weights"
    missing = [f"{kind}_{l}" for l in range(layers) if f"{kind}_{l}" not in arrays]
    if missing:
        raise ConfigError(f"weight file {path} lacks {', '.join(missing)} for a {layers}-layer network")
    acc = config.formats.weight_acc
    result = []
    for l, (n_in, n_out) in enumerate(zip(config.sizes, config.sizes[1:])):
        w = arrays[f"{kind}_{l}"]
        if w.shape != (n_out, n_in + 1):
            raise ConfigError(f"{kind}_{l} in {path} has shape {w.shape}; this config's layer {l} needs "
                              f"{(n_out, n_in + 1)}: is the file from another config?")
        if not np.all(np.isfinite(w)):
            raise ConfigError(f"{kind}_{l} in {path} holds NaN or infinite values")
        if kind == "codes":
            if w.dtype.kind not in "iu" or w.min(initial=0) < acc.min_code or w.max(initial=0) > acc.max_code:
                raise ConfigError(f"codes_{l} in {path} are not integers within formats.weight_acc {acc}")
            result.append(w.astype(np.int64))
        else:
            low, high = acc.min_code * acc.lsb, acc.max_code * acc.lsb
            if w.min(initial=0) < low or w.max(initial=0) > high:
                raise ConfigError(f"weights_{l} in {path} reach {w.min():g} .. {w.max():g}, outside "
                                  f"formats.weight_acc {acc} ({low:g} .. {high:g}): widen the format or scale them")
            result.append(FixedLearner.quantise_weights(config, [w])[0])
    return result
