"""Training runs: one loop over epochs for every learner and arithmetic.

``learner`` is ``feedback`` (the configured windows) or ``gradient`` (the same
network with every window replaced by sigma', i.e. gradient descent);
``arith`` is ``float`` or ``fixed``. Sample order is a seeded permutation per
epoch, the same for every learner, so runs compare side by side.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .config import LearnerConfig
from .fixed import ENGINES, FixedLearner
from .floating import FloatLearner
from .stability import check_layers
from .tasks import Task, TaskError

__all__ = ["LEARNERS", "ARITHS", "ENGINES", "Metrics", "TrainResult", "DataCodes", "encode", "make_learner",
           "check_task", "evaluate", "epoch_order", "sample_order", "train"]

LEARNERS = ("feedback", "gradient")
ARITHS = ("float", "fixed")


@dataclass
class Metrics:
    epoch: int
    train_mse: float
    test_mse: float | None
    train_accuracy: float | None
    test_accuracy: float | None
    weights: list[np.ndarray] | None = None    # real values, when recorded


@dataclass
class TrainResult:
    task: str
    learner: str
    arith: str
    epochs: int
    steps: int
    history: list[Metrics]
    seconds: float
    warnings: list[str]
    model: object = field(repr=False)

    @property
    def final(self) -> Metrics:
        return self.history[-1]

    def summary(self) -> dict:
        f = self.final
        return {"task": self.task, "learner": self.learner, "arith": self.arith,
                "epochs": self.epochs, "steps": self.steps,
                "train_mse": f.train_mse, "test_mse": f.test_mse,
                "train_accuracy": f.train_accuracy, "test_accuracy": f.test_accuracy,
                "initial_train_mse": self.history[0].train_mse,
                "seconds": round(self.seconds, 3), "warnings": self.warnings}


@dataclass
class DataCodes:
    """A task's data as the fixed-point learner sees it."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    warnings: list[str]


def _codes(values: np.ndarray, fmt) -> tuple[np.ndarray, float]:
    scaled = np.floor(values * (1 << fmt.frac) + 0.5)
    clipped = np.clip(scaled, fmt.min_code, fmt.max_code)
    return clipped.astype(np.int64), float(np.mean(clipped != scaled))


def encode(config: LearnerConfig, task: Task) -> DataCodes:
    """Quantise inputs (formats.input) and targets (formats.activation), half up, saturating."""
    f = config.formats
    warnings = []
    x_train, sat_x = _codes(task.x_train, f.input)
    y_train, sat_y = _codes(task.y_train, f.activation)
    x_test = None
    if task.x_test is not None:
        x_test, sat_t = _codes(task.x_test, f.input)
        sat_x = max(sat_x, sat_t)
    if sat_x:
        warnings.append(f"{sat_x:.1%} of input values saturate formats.input {f.input} "
                        f"(range {f.input.min_value:g} .. {f.input.max_value:g}); scale the data "
                        f"or give the format more integer bits")
    if sat_y:
        warnings.append(f"{sat_y:.1%} of target values saturate formats.activation {f.activation}")
    return DataCodes(x_train, y_train, x_test, warnings)


#: Inputs larger than this are badly scaled for a loop whose gain is a power of two.
INPUT_SCALE_LIMIT = 64.0


def input_scale_warning(task: Task) -> str | None:
    """A warning for inputs far from unit scale: they force tiny gains and slow, poor learning."""
    peak = float(np.max(np.abs(task.x_train)))
    if peak <= INPUT_SCALE_LIMIT:
        return None
    return (f"inputs reach {peak:g} in magnitude: standardise them (subtract each feature's mean, divide by its "
            f"standard deviation); inputs this large force tiny loop gains and train poorly")


def check_task(config: LearnerConfig, task: Task) -> None:
    if config.inputs != task.inputs or config.outputs != task.outputs:
        raise TaskError(f"The config has {config.inputs} inputs and {config.outputs} outputs, the "
                        f"data has {task.inputs} and {task.outputs}; pass a matching --config")


def make_learner(config: LearnerConfig, learner: str = "feedback", arith: str = "float", engine: str = "compiled"):
    """The learner to train; ``engine`` picks the fixed-point model's implementation (same integers)."""
    if learner not in LEARNERS:
        raise ValueError(f"learner must be one of {LEARNERS}, not {learner!r}")
    if arith not in ARITHS:
        raise ValueError(f"arith must be one of {ARITHS}, not {arith!r}")
    if learner == "gradient":
        config = config.as_gradient_descent()
    return FixedLearner(config, engine=engine) if arith == "fixed" else FloatLearner(config)


def _mse(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.mean((y - yhat) ** 2))


def _accuracy(labels, yhat) -> float | None:
    return None if labels is None else float(np.mean(np.argmax(yhat, axis=1) == labels))


def evaluate(model, task: Task, codes: DataCodes | None, epoch: int, record_weights=False) -> Metrics:
    """Metrics in real units; the fixed model is run on its integer codes."""
    if isinstance(model, FixedLearner):
        lsb = model.config.formats.activation.lsb
        train_hat = model.predict(codes.x_train) * lsb
        test_hat = None if codes.x_test is None else model.predict(codes.x_test) * lsb
    else:
        train_hat = model.predict(task.x_train)
        test_hat = None if task.x_test is None else model.predict(task.x_test)
    return Metrics(
        epoch=epoch,
        train_mse=_mse(task.y_train, train_hat),
        test_mse=None if test_hat is None else _mse(task.y_test, test_hat),
        train_accuracy=_accuracy(task.labels_train, train_hat),
        test_accuracy=None if test_hat is None else _accuracy(task.labels_test, test_hat),
        weights=model.real_weights() if record_weights else None,
    )


def epoch_order(n: int, epochs: int, seed: int):
    """The sample order of each epoch: a permutation drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        yield rng.permutation(n)


def sample_order(n: int, epochs: int | None, steps: int | None, seed: int) -> list[np.ndarray]:
    """Sample indices per epoch: ``epochs`` whole epochs, or the first ``steps`` steps."""
    if steps is not None:
        whole = -(-steps // n)
        orders = list(epoch_order(n, whole, seed))
        orders[-1] = orders[-1][:steps - (whole - 1) * n]
        return orders
    return list(epoch_order(n, epochs, seed))


def train(config: LearnerConfig, task: Task, *, learner="feedback", arith="float", epochs=None,
          seed=0, progress: Callable[[int], None] | None = None, record_weights=False,
          engine: str = "compiled") -> TrainResult:
    """Train from the config's initial weights; ``progress(n)`` is called every n steps done.

    ``engine`` is the fixed-point model's implementation (:data:`ENGINES`): both give the same integers.
    """
    check_task(config, task)
    epochs = task.default_epochs if epochs is None else epochs
    if epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, not {epochs}")
    model = make_learner(config, learner, arith, engine)
    warnings = [w for w in [input_scale_warning(task)] if w]
    warnings.extend(report.message() for report in check_layers(config, task.x_train) if not report.ok)
    codes = None
    if arith == "fixed":
        codes = encode(config, task)
        warnings.extend(codes.warnings)
        xs, ys = codes.x_train, codes.y_train
    else:
        xs, ys = task.x_train, task.y_train
    start = time.perf_counter()
    history = [evaluate(model, task, codes, 0, record_weights)]
    chunk = max(1, min(len(xs), 256))
    for epoch, order in enumerate(epoch_order(len(xs), epochs, seed), start=1):
        for begin in range(0, len(order), chunk):
            part = order[begin:begin + chunk]
            if arith == "fixed":
                model.train_order(xs, ys, part)
            else:
                for k in part:
                    model.step(xs[k], ys[k])
            if progress:
                progress(len(part))
        history.append(evaluate(model, task, codes, epoch, record_weights))
    return TrainResult(task.name, learner, arith, epochs, epochs * len(xs), history,
                       time.perf_counter() - start, warnings, model)
