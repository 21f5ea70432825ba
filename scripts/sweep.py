"""Random valid learner configs, each co-simulated against the model: a sweep for unseen configs.

``python -m nfloop.scripts.sweep [COUNT] [FIRST_SEED]`` builds and runs each
config in Verilator for two epochs of random data and prints one line per
config; exit status 1 if any differs from the model.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from ..model.config import (
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
from ..model.tasks import Task
from ..sim.cosim import cosimulate

__all__ = ["random_config", "main"]

WINDOWS = [None, Window(), Window(derivative=True), Window(lo=-0.5), Window(hi=1.0), Window(-1.0, 1.0)]


def random_config(rng: np.random.Generator) -> LearnerConfig:
    """1-3 layers of 1-12 units, random formats, activations, windows, rounding, leak, momentum, batch, and
    residual layers (as many units as inputs)."""
    wbits, wint, extra = int(rng.integers(10, 17)), int(rng.integers(2, 5)), int(rng.integers(4, 15))
    formats = Formats(
        input=QFormat(int(rng.integers(6, 13)), int(rng.integers(2, 6))),
        activation=QFormat(int(rng.integers(12, 17)), 8),
        error=QFormat(int(rng.integers(12, 17)), int(rng.integers(8, 11))),
        weight=QFormat(wbits, wbits - wint), weight_acc=QFormat(wbits + extra, wbits - wint + extra))
    layers = []
    inputs = width = int(rng.integers(1, 11))
    for _ in range(int(rng.integers(1, 4))):
        kind = ActivationKind(rng.choice([k.value for k in ActivationKind]))
        activation = Activation(kind, thresholds=(-0.5, 0.0, 0.75), scale=0.25 if kind.value == "staircase" else 0.5)
        residual = bool(rng.random() < 0.3)
        width = width if residual else int(rng.integers(1, 13))
        layers.append(Layer(width, activation, WINDOWS[int(rng.integers(len(WINDOWS)))],
                            gain_shift=int(rng.integers(3, 9)),
                            leak_shift=int(rng.integers(6, 14)) if rng.random() < 0.3 else None,
                            momentum_shift=int(rng.integers(1, 5)) if rng.random() < 0.3 else None,
                            residual=residual))
    config = LearnerConfig(inputs=inputs, layers=tuple(layers), formats=formats,
                           batch_size=int(rng.integers(1, 5)),
                           rounding=Rounding(rng.choice([r.value for r in Rounding])),
                           forward_rounding=Rounding(rng.choice(["floor", "half_up"])),
                           lfsr_seed=int(rng.integers(1, 2**32)), init_seed=int(rng.integers(0, 100)))
    if rng.random() < 0.35:
        # short periods, so that the gains move within a short run
        adaptive = AdaptiveGain(period=2 ** int(rng.integers(0, 5)), up=int(rng.integers(0, 3)),
                                down=int(rng.integers(0, 4)))
        config = config.with_changes(adaptive_gain=adaptive)
    return config


def main(count: int = 10, first: int = 0) -> int:
    failures = 0
    for seed in range(first, first + count):
        rng = np.random.default_rng(seed)
        config = random_config(rng)
        lanes = int(rng.choice([1, 2, 4, 8, 16]))
        x = rng.uniform(config.formats.input.min_value, config.formats.input.max_value, (60, config.inputs))
        y = rng.uniform(-2, 2, (60, config.outputs))
        start = time.perf_counter()
        result = cosimulate(config, Task("sweep", x, y, x[:10], y[:10]), lanes=lanes, epochs=2)
        failures += result.mismatches > 0
        verdict = "bit-exact" if not result.mismatches else f"MISMATCH {result.first_mismatch}"
        print(f"seed {seed}: P={lanes} sizes={config.sizes} batch={config.batch_size} "
              f"rounding={config.rounding.value}/{config.forward_rounding.value} "
              f"{[l.activation.kind.value + ('+residual' if l.residual else '') for l in config.layers]}"
              f"{' adaptive gain' if config.adaptive_gain else ''}: {verdict} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"{count - failures} of {count} configs bit-exact")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*(int(a) for a in sys.argv[1:3])))
