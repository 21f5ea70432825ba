"""The simulated hardware and the fixed-point model, side by side, step by step."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..model.config import LearnerConfig
from ..model.fixed import FixedLearner
from ..model.tasks import Task
from ..model.train import check_task, encode, sample_order
from .verify import Mismatch, first_output_mismatch, first_weight_mismatch
from .verilated import VerilatedCore

__all__ = ["CosimResult", "cosimulate"]


@dataclass
class CosimResult:
    steps: int
    lanes: int
    mismatches: int
    first_mismatch: Mismatch | None
    checkpoints: int
    cycles_per_step: float
    mac_bound_cycles_per_step: float
    test_accuracy: float | None
    model_test_accuracy: float | None
    test_mse: float | None
    model_test_mse: float | None
    sim_cycles_per_second: float
    seconds: float
    warnings: list[str] = field(default_factory=list)
    #: Each step's sum of squared output errors, from the hardware and from the model (for figures).
    hardware_error_squares: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    model_error_squares: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)

    def summary(self) -> dict:
        return {"steps": self.steps, "mismatches": self.mismatches,
                "first_mismatch": self.first_mismatch.as_dict() if self.first_mismatch else None,
                "weight_checkpoints": self.checkpoints,
                "cycles_per_step": round(self.cycles_per_step, 2),
                "mac_bound_cycles_per_step": round(self.mac_bound_cycles_per_step, 2),
                "lanes": self.lanes, "test_accuracy": self.test_accuracy,
                "model_test_accuracy": self.model_test_accuracy, "test_mse": self.test_mse,
                "model_test_mse": self.model_test_mse,
                "sim_cycles_per_second": round(self.sim_cycles_per_second),
                "seconds": round(self.seconds, 2), "warnings": self.warnings}


def _metrics(predictions, task: Task, lsb: float):
    real = predictions * lsb
    mse = float(np.mean((real - task.y_test) ** 2))
    accuracy = None if task.labels_test is None else float(np.mean(real.argmax(axis=1) == task.labels_test))
    return accuracy, mse


def _chunks(n: int, size: int, step: int, window: tuple[int, int] | None):
    """(begin, end) runs of at most ``size`` over ``n`` samples, split where a trace window of global
    steps starts or ends (the epoch starts at global step ``step``)."""
    cuts = {0, n}
    if window:
        cuts |= {c - step for c in (window[0], window[1] + 1) if 0 < c - step < n}
    points = sorted(cuts)
    for a, b in zip(points, points[1:]):
        for begin in range(a, b, size):
            yield begin, min(begin + size, b)


def cosimulate(config: LearnerConfig, task: Task, *, lanes: int = 8, epochs: int | None = None,
               steps: int | None = None, seed: int = 0, trace=None, progress=None, chunk: int = 128,
               log=None, engine: str = "compiled", trace_steps: tuple[int, int] | None = None,
               convert=None) -> CosimResult:
    """Train the Verilated core and the model on the same samples; compare every step.

    ``engine`` is the fixed-point model's implementation (both give the same integers).
    ``trace_steps``: (first, last), record the waveform of those steps only (counted from 0).
    ``convert``: the core as other Verilog than its RTL (:class:`~.verilated.VerilatedCore`).

    Every step's prediction and error vectors are compared, and the full
    weight memory at the end of every epoch. ``mismatches`` counts the
    compared steps and weight checkpoints that differ.
    """
    check_task(config, task)
    codes = encode(config, task)
    model = FixedLearner(config, engine=engine)
    core = VerilatedCore(config, lanes, trace=trace, log=log, convert=convert)
    orders = sample_order(len(codes.x_train), epochs if epochs is not None else task.default_epochs, steps, seed)
    mismatches, first, checkpoints, step = 0, None, 0, 0
    squares = ([], [])          # per-step squared-error sums: hardware, model
    sim_seconds, sim_cycles, start = 0.0, 0, time.perf_counter()
    last = len(config.layers) - 1
    if trace and trace_steps:
        core.set_tracing(trace_steps[0] == 0)
    for order in orders:
        for begin, end in _chunks(len(order), chunk, step, trace_steps if trace else None):
            idx = order[begin:end]
            if trace and trace_steps:
                core.set_tracing(trace_steps[0] <= step <= trace_steps[1])
            xs, ys = codes.x_train[idx], codes.y_train[idx]
            cycles0, t0 = core.cycles, time.perf_counter()
            predictions, errors = core.train(xs, ys)
            sim_seconds += time.perf_counter() - t0
            sim_cycles += core.cycles - cycles0
            run = model.train_order(codes.x_train, codes.y_train, idx)
            ref_pred, ref_err = run.predictions, run.errors
            squares[0].append(np.sum(errors.astype(np.int64) ** 2, axis=1))
            squares[1].append(run.error_squares)
            bad = np.any((predictions != ref_pred) | (errors != ref_err), axis=1)
            if bad.any():
                mismatches += int(bad.sum())
                first = first or first_output_mismatch(predictions, errors, ref_pred, ref_err, last, step)
            step += len(idx)
            if progress:
                progress(len(idx))
        checkpoints += 1
        found = first_weight_mismatch(core.read_weights(), model.weights, step - 1)
        if found:
            mismatches += 1
            first = first or found
    accuracy = mse = model_accuracy = model_mse = None
    if codes.x_test is not None:
        lsb = config.formats.activation.lsb
        accuracy, mse = _metrics(core.infer(codes.x_test), task, lsb)
        model_accuracy, model_mse = _metrics(model.predict(codes.x_test), task, lsb)
    steps_done = core.steps
    result = CosimResult(
        steps=step, lanes=lanes, mismatches=mismatches, first_mismatch=first, checkpoints=checkpoints,
        cycles_per_step=core.step_cycles / max(steps_done, 1),
        mac_bound_cycles_per_step=config.mac_operations / lanes,
        test_accuracy=accuracy, model_test_accuracy=model_accuracy, test_mse=mse, model_test_mse=model_mse,
        sim_cycles_per_second=sim_cycles / sim_seconds if sim_seconds else 0.0,
        seconds=time.perf_counter() - start, warnings=list(codes.warnings),
        hardware_error_squares=np.concatenate(squares[0]) if squares[0] else np.zeros(0, np.int64),
        model_error_squares=np.concatenate(squares[1]) if squares[1] else np.zeros(0, np.int64))
    core.close()
    return result
