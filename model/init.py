"""Initial weights, shared by every model so that float, fixed and gradient
descent runs start from the same point."""

from __future__ import annotations

import numpy as np

from .config import LearnerConfig

__all__ = ["initial_weights"]


def initial_weights(config: LearnerConfig) -> list[np.ndarray]:
    """Real-valued initial weights, one ``(n_out, n_in + 1)`` array per layer, bias last.

    Layers with an explicit ``init`` use it; the others draw Glorot-uniform
    weights (times ``init_scale``) from ``init_seed`` and start with zero bias.
    Values are clipped into the range of ``formats.weight``.
    """
    rng = np.random.default_rng(config.init_seed)
    fmt = config.formats.weight
    weights = []
    for index, layer in enumerate(config.layers):
        n_in, n_out = config.sizes[index], layer.size
        # Draw even when init is explicit so that layer k's draw does not
        # depend on whether an earlier layer was given explicitly.
        limit = config.init_scale * np.sqrt(6.0 / (n_in + n_out))
        drawn = np.concatenate([rng.uniform(-limit, limit, (n_out, n_in)), np.zeros((n_out, 1))], axis=1)
        w = np.array(layer.init, dtype=np.float64) if layer.init is not None else drawn
        weights.append(np.clip(w, fmt.min_value, fmt.max_value))
    return weights
