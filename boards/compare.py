"""Train on a board and on the fixed-point model side by side; compare them bit for bit.

The host loads the model's initial weights and the data set, then per epoch
loads the epoch's sample order (a data set larger than the board's memory is
sent again each epoch, a memory's worth at a time, in the epoch's order), trains the board for one epoch, and reads
back every weight, the step and cycle counters and the epoch's sum of squared
output errors. Each must equal the model's. At the end the board and the
model classify the test split, and their predictions must be equal too.

With a :class:`RunFolder`, every epoch's row and, after every equal epoch, the
model's state are written as they happen, so an interrupted or failed compare
loses nothing and ``resume=True`` continues it, bit-exact, where it stopped: the
board is given the model's whole state (:func:`write_state`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..model.config import LearnerConfig
from ..model.fixed import FixedLearner
from ..model.tasks import Task
from ..model.train import check_task, encode, sample_order
from ..sim.verify import GAIN_STATE, Mismatch, first_weight_mismatch
from .client import BoardClient, BoardMismatch
from .geometry import MAX_READ_WEIGHTS, config_hash, encode_records, packs_inputs
from .protocol import MAX_PAYLOAD, SPAN_HEADER, WEIGHTS_HEADER, Bank, LinkError

__all__ = ["CompareError", "EpochRow", "CompareResult", "RunFolder", "compare_board", "write_weights",
           "read_weights", "write_state", "identify_for", "check_weights"]


class CompareError(BoardMismatch):
    """The board cannot be compared with this config or data (built for another config, too small, ...)."""


@dataclass(frozen=True)
class EpochRow:
    epoch: int
    steps: int
    device_error_sum: int
    model_error_sum: int
    weights_equal: bool
    cycles_per_step: float


@dataclass
class CompareResult:
    epochs: int
    steps: int
    mismatches: int
    first_mismatch: Mismatch | None
    device_cycles_per_step: float
    test_accuracy: float | None
    model_test_accuracy: float | None
    test_mismatches: int
    rows: list[EpochRow] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"epochs": self.epochs, "steps": self.steps, "mismatches": self.mismatches,
                "first_mismatch": self.first_mismatch.as_dict() if self.first_mismatch else None,
                "device_cycles_per_step": round(self.device_cycles_per_step, 2),
                "test_accuracy": self.test_accuracy, "model_test_accuracy": self.model_test_accuracy,
                "test_prediction_mismatches": self.test_mismatches,
                "per_epoch": [vars(row) for row in self.rows],
                "seconds": round(self.seconds, 2), "warnings": self.warnings}


class RunFolder:
    """A compare's record on disk, each file replaced atomically (written aside, then renamed):

    - ``run.json``: what is compared (task, seed, epochs, engine, port) and ``config.toml``, its config;
    - ``epochs.jsonl``: one line per epoch compared, as it ends;
    - ``checkpoint.npz``: the model's state (:meth:`FixedLearner.state`) after the last equal epoch,
      with ``epochs``, the number of epochs it has done;
    - ``result.json``: the summary, once the compare has ended.
    """

    def __init__(self, path: Path, meta: dict | None = None, config: LearnerConfig | None = None):
        """``meta`` and ``config``: a new run, written by :meth:`start` (compare_board calls it once the
        board and the data have been checked, so a compare that cannot start leaves no folder)."""
        self.path = Path(path)
        self._new = (meta, config) if meta is not None else None

    def _replace(self, name: str, write) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        aside = self.path / f".{name}.partial"
        with open(aside, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(aside, self.path / name)

    def check_new(self) -> None:
        """A new run's folder must not hold another run."""
        if self._new is not None and (self.path / "run.json").exists():
            raise CompareError(f"{self.path} already holds a run: continue it with --resume {self.path}, or choose "
                               f"another --run-dir")

    def start(self) -> None:
        """Write a new run's ``run.json`` and ``config.toml`` (nothing for a run being resumed)."""
        if self._new is None:
            return
        from ..model.config import config_toml
        self.check_new()
        meta, config = self._new
        self._new = None
        self._replace("config.toml", lambda f: f.write(config_toml(config).encode()))
        self._replace("run.json", lambda f: f.write(json.dumps(meta, indent=2).encode()))
        self._replace("epochs.jsonl", lambda f: None)

    def meta(self) -> dict:
        try:
            return json.loads((self.path / "run.json").read_text())
        except FileNotFoundError:
            raise CompareError(f"{self.path} is not a compare run folder (no run.json); give the folder "
                               f"nfloop compare --run-dir wrote") from None
        except (OSError, ValueError) as error:
            raise CompareError(f"cannot read {self.path / 'run.json'}: {error}") from None

    def config(self) -> LearnerConfig:
        from ..model.config import load_config
        return load_config(self.path / "config.toml")

    def rows(self) -> list[EpochRow]:
        path = self.path / "epochs.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [EpochRow(**json.loads(line)) for line in lines if line.strip()]

    def add_row(self, row: EpochRow, rows_before: list[EpochRow]) -> None:
        text = "".join(json.dumps(vars(r)) + "\n" for r in [*rows_before, row])
        self._replace("epochs.jsonl", lambda f: f.write(text.encode()))

    def save_checkpoint(self, state: dict, epochs: int) -> None:
        self._replace("checkpoint.npz", lambda f: np.savez(f, epochs=np.array(epochs), **state))

    def checkpoint(self) -> tuple[dict, int] | None:
        """The saved model state and the epochs it has done; None before the first equal epoch."""
        path = self.path / "checkpoint.npz"
        if not path.exists():
            return None
        try:
            with np.load(path) as saved:
                arrays = {name: saved[name] for name in saved.files}
        except (OSError, ValueError) as error:
            raise CompareError(f"cannot read {path}: {error}") from None
        return arrays, int(arrays.pop("epochs"))

    def finish(self, summary: dict) -> None:
        self._replace("result.json", lambda f: f.write(json.dumps(summary, indent=2).encode()))


def _chunks(total: int, size: int):
    for start in range(0, total, size):
        yield start, min(size, total - start)


def write_weights(client: BoardClient, weights: list[np.ndarray | None], bank: Bank = Bank.WEIGHTS) -> None:
    """Every layer's weight accumulators (or momentum, or batch sums: ``bank``), a frame's worth at a time;
    a layer given as None is left as it is."""
    per_frame = (MAX_PAYLOAD - WEIGHTS_HEADER.size // 8) // 4
    for layer, w in enumerate(weights):
        if w is None:
            continue
        flat = np.asarray(w, dtype=np.int64).ravel()
        cols = w.shape[1]
        for start, count in _chunks(len(flat), per_frame):
            client.write_weights(layer, start // cols, start % cols, flat[start:start + count], bank)


def read_weights(client: BoardClient, shapes: list[tuple[int, int]], bank: Bank = Bank.WEIGHTS) -> list[np.ndarray]:
    layers = []
    for layer, (rows, cols) in enumerate(shapes):
        parts = [client.read_weights(layer, start // cols, start % cols, count, bank)
                 for start, count in _chunks(rows * cols, MAX_READ_WEIGHTS)]
        layers.append(np.concatenate(parts).reshape(rows, cols))
    return layers


def identify_for(client: BoardClient, config: LearnerConfig):
    """The board's identity, once it is known to be built from ``config`` (else a :class:`CompareError`)."""
    identity = client.identify()
    if identity.config_hash != config_hash(config):
        virtual = getattr(client, "url", "").startswith("socket://")
        fix = ("restart nfloop serve-sim with --config for this config" if virtual else
               "rebuild and flash it for this config")
        raise CompareError(f"the board was built from another config (its hash {identity.config_hash.hex()}, "
                           f"this config's {config_hash(config).hex()}); {fix}, or pass the --config it was "
                           f"built from")
    return identity


def check_weights(client: BoardClient, weights: list[np.ndarray]) -> None:
    """Read the board's weights back: a :class:`LinkError` unless they are ``weights``."""
    wrong = first_weight_mismatch(read_weights(client, [w.shape for w in weights]), weights, -1)
    if wrong:
        raise LinkError(f"weights read back differ from those written ({wrong}); the link or the board is faulty")


def write_state(client: BoardClient, model: FixedLearner) -> None:
    """Put the board into the model's state: weights, momentum, batch sums, adaptive gains, step count, LFSR,
    batch position (after a CLEAR, which zeroes momentum and batch sums and restarts the gains)."""
    write_weights(client, model.weights)
    if any(v is not None for v in model.velocity):
        write_weights(client, model.velocity, Bank.VELOCITY)
    if model.config.batch_size > 1:
        write_weights(client, model.batch_sum, Bank.BATCH_SUM)
    if model.gain:
        write_weights(client, model.gain, Bank.GAIN)
    client.set_state(model.steps, model.lfsr, model.steps % model.config.batch_size)


def _load_data(client: BoardClient, xs: np.ndarray, ys: np.ndarray, packed: bool) -> None:
    per_frame = (MAX_PAYLOAD - SPAN_HEADER.size // 8) // len(encode_records(xs[:1], ys[:1], packed))
    for start, count in _chunks(len(xs), per_frame):
        client.load_data(start, xs[start:start + count], ys[start:start + count], packed)


def _load_order(client: BoardClient, order: np.ndarray) -> None:
    for start, count in _chunks(len(order), (MAX_PAYLOAD - SPAN_HEADER.size // 8) // 2):
        client.load_order(start, order[start:start + count])


def compare_board(client: BoardClient, config: LearnerConfig, task: Task, *, epochs: int | None = None,
                  seed: int = 0, progress=None, on_epoch=None, engine: str = "compiled",
                  run: RunFolder | None = None, resume: bool = False) -> CompareResult:
    """Train ``client``'s board and the model for ``epochs`` epochs and compare them.

    ``engine`` is the fixed-point model's implementation (both give the same integers).

    ``progress(n)`` is called as n steps complete; ``on_epoch(row)`` after each epoch.
    ``run``: record every epoch there as it ends; ``resume``: continue the run recorded there from its
    last checkpoint (the board's cycle counter then counts from the resume).
    """
    start_time = time.perf_counter()
    identity = identify_for(client, config)
    check_task(config, task)
    if run is not None:
        run.start()
    codes = encode(config, task)
    n = len(codes.x_train)
    # a data set larger than the board's memory goes over the link again each epoch, a part at a time
    resident = n <= identity.capacity
    model = FixedLearner(config, engine=engine)
    done, rows = 0, []
    if resume:
        saved = run.checkpoint()
        if saved is not None:
            state, done = saved
            try:
                model.load_state(state)
            except ValueError as error:
                raise CompareError(f"{run.path / 'checkpoint.npz'} does not fit this config: {error}") from None
        rows = run.rows()[:done]
    shapes = [w.shape for w in model.weights]
    client.clear()
    write_state(client, model)
    check_weights(client, model.weights)
    packed = packs_inputs(config)
    if resident:
        _load_data(client, codes.x_train, codes.y_train, packed)

    epochs = task.default_epochs if epochs is None else epochs
    mismatches, first, step = 0, None, model.steps
    steps_before = model.steps          # the board's cycle counter starts at the resume
    cycles_before = 0
    for epoch, order in enumerate(sample_order(n, epochs, None, seed)):
        if epoch < done:
            continue
        device_error_sum = 0
        for start, count in _chunks(len(order), n if resident else identity.capacity):
            if resident:
                _load_order(client, order)
            else:
                part = order[start:start + count]
                _load_data(client, codes.x_train[part], codes.y_train[part], packed)
                _load_order(client, np.arange(count))
            client.train(count, 1)
            stats = client.stats()
            device_error_sum += stats.last_epoch_error_sum
        model_error_sum = model.train_order(codes.x_train, codes.y_train, order).error_sum
        step += len(order)
        found = first_weight_mismatch(read_weights(client, shapes), model.weights, step - 1)
        if model.gain:
            found = found or first_weight_mismatch(read_weights(client, [g.shape for g in model.gain], Bank.GAIN),
                                                   model.gain, step - 1, GAIN_STATE)
        if stats.steps != step:
            found = found or Mismatch(step - 1, "steps", -1, 0, stats.steps, step)
        if device_error_sum != model_error_sum:
            found = found or Mismatch(step - 1, "epoch_error_sum", len(shapes) - 1, 0,
                                      device_error_sum, model_error_sum)
        if found:
            mismatches += 1
            first = first or found
        row = EpochRow(epoch, step, device_error_sum, model_error_sum, found is None,
                       (stats.cycles - cycles_before) / len(order))
        cycles_before = stats.cycles
        if run is not None:
            run.add_row(row, rows)
            if found is None and not mismatches:
                run.save_checkpoint(model.state(), epoch + 1)
        rows.append(row)
        if progress:
            progress(len(order))
        if on_epoch:
            on_epoch(row)

    accuracy = model_accuracy = None
    test_mismatches = 0
    if codes.x_test is not None:
        device = np.array([client.infer(x) for x in codes.x_test])
        reference = model.predict(codes.x_test)
        different = np.flatnonzero(np.any(device != reference, axis=1))
        test_mismatches = len(different)
        if test_mismatches:
            mismatches += test_mismatches
            k = int(different[0])
            j = int(np.flatnonzero(device[k] != reference[k])[0])
            first = first or Mismatch(step, "test_prediction", len(shapes) - 1, [k, j],
                                      int(device[k, j]), int(reference[k, j]))
        if task.labels_test is not None:
            accuracy = float(np.mean(device.argmax(axis=1) == task.labels_test))
            model_accuracy = float(np.mean(reference.argmax(axis=1) == task.labels_test))
    stats = client.stats()
    result = CompareResult(epochs=epochs, steps=step, mismatches=mismatches, first_mismatch=first,
                           device_cycles_per_step=stats.cycles / max(stats.steps - steps_before, 1),
                           test_accuracy=accuracy, model_test_accuracy=model_accuracy,
                           test_mismatches=test_mismatches, rows=rows,
                           seconds=time.perf_counter() - start_time, warnings=list(codes.warnings))
    if run is not None:
        run.finish(result.summary())
    return result
