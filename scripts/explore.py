"""Design-space exploration: which bits, sizes, gains and lanes train well, and what fits each board.

A *space* (a TOML file, or a shipped one by name) names a base config and,
per field, the values to sweep. Every point of the space becomes jobs, each a
plain function of plain data, so a local process pool and a Ray cluster run
the same code:

- :func:`train_job` trains the point's config with the compiled fixed-point
  model for one seed;
- :func:`build_job` synthesises it for one board at one lane count through
  ``nfloop build``'s own :func:`~nfloop.boards.build.build_board`, cached by
  the config's hardware and the gateware's source, so equal gateware is built
  once, whatever the run.

Each finished job is appended to ``DIR/results.jsonl`` at once; a rerun of the
same command skips every job found there, and an interrupt keeps them.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import logging
import math
import os
import socket
import time
import tomllib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..model.config import ConfigError, LearnerConfig
from ..model.tasks import TaskError, load_task

__all__ = ["ExploreError", "Space", "SPACES_DIR", "shipped_spaces", "load_space", "Point", "expand", "apply",
           "train_job", "build_job", "Job", "plan_jobs", "run_exploration", "pareto_front", "ExploreResult"]

SPACES_DIR = Path(__file__).parent / "spaces"
FORMATS = ("input", "activation", "error", "weight", "weight_acc")
LAYER_FIELDS = ("size", "gain_shift", "leak_shift", "momentum_shift", "activation", "window")
TOP_FIELDS = ("lanes", "batch_size", "rounding.update", "rounding.forward", "init.scale")
DEFAULT_LANES = 8


class ExploreError(ConfigError):
    """A space file or an exploration that cannot run; the message names the fix."""


# -- Spaces ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Space:
    """What to sweep. ``fields`` maps a field key to the list of its values."""
    name: str
    base: str
    fields: dict[str, list]
    mode: str = "grid"
    samples: int = 20
    seed: int = 0
    boards: tuple[str, ...] = ()
    build_best: int | None = None     # build only the N most accurate points (None: all)


def shipped_spaces() -> list[str]:
    return sorted(p.stem for p in SPACES_DIR.glob("*.toml"))


def _values(key: str, value) -> list:
    if isinstance(value, dict):
        unknown = set(value) - {"from", "to", "step"}
        if unknown or not {"from", "to"} <= set(value):
            raise ExploreError(f"space field {key!r}: a range is {{from = A, to = B}} with an optional step, "
                               f"not {value!r}")
        start, stop, step = value["from"], value["to"], value.get("step", 1)
        if not all(isinstance(v, int) for v in (start, stop, step)) or step == 0:
            raise ExploreError(f"space field {key!r}: from, to and step must be integers, step not 0")
        return list(range(start, stop + (1 if step > 0 else -1), step))
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ExploreError(f"space field {key!r} has no values")
    return values


def _check_key(key: str) -> None:
    parts = key.split(".")
    if key in TOP_FIELDS:
        return
    if len(parts) == 3 and parts[0] == "formats" and parts[1] in FORMATS and parts[2] in ("bits", "frac"):
        return
    if len(parts) == 3 and parts[0] == "layers" and (parts[1] == "*" or parts[1].isdigit()) \
            and parts[2] in LAYER_FIELDS:
        return
    raise ExploreError(f"unknown space field {key!r}: use one of {', '.join(TOP_FIELDS)}, "
                       f"formats.NAME.bits|frac (NAME: {', '.join(FORMATS)}), or layers.I.FIELD "
                       f"(I: a layer index or *; FIELD: {', '.join(LAYER_FIELDS)})")


def load_space(name_or_path: str) -> Space:
    """A space file, or a shipped space by name (:func:`shipped_spaces`)."""
    path = Path(name_or_path)
    if not path.suffix and (SPACES_DIR / f"{name_or_path}.toml").is_file():
        path = SPACES_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise ExploreError(f"space {name_or_path!r} is neither a file nor a shipped space "
                           f"({', '.join(shipped_spaces())})")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as error:
        raise ExploreError(f"cannot read the space {path}: {error}") from None
    allowed = {"base", "mode", "samples", "seed", "boards", "build_best", "sweep", "description"}
    unknown = set(data) - allowed
    if unknown:
        raise ExploreError(f"unknown key(s) {sorted(unknown)} in {path}; expected some of {sorted(allowed)}")
    if "base" not in data or not isinstance(data["base"], str):
        raise ExploreError(f"{path} needs base = \"NAME\": a shipped config name or a config file")
    sweep = data.get("sweep", {})
    if not isinstance(sweep, dict) or not sweep:
        raise ExploreError(f"{path} needs a [sweep] table: field = [values, ...]")
    for key in sweep:
        _check_key(key)
    mode = data.get("mode", "grid")
    if mode not in ("grid", "random"):
        raise ExploreError(f"{path}: mode must be grid or random, not {mode!r}")
    samples, build_best = data.get("samples", 20), data.get("build_best")
    if not isinstance(samples, int) or samples < 1:
        raise ExploreError(f"{path}: samples must be a positive integer, not {samples!r}")
    if build_best is not None and (not isinstance(build_best, int) or build_best < 1):
        raise ExploreError(f"{path}: build_best must be a positive integer, not {build_best!r}")
    base = data["base"]
    if not Path(base).is_absolute() and (path.parent / base).is_file():
        base = str(path.parent / base)
    return Space(name=path.stem, base=base, fields={k: _values(k, v) for k, v in sweep.items()}, mode=mode,
                 samples=samples, seed=int(data.get("seed", 0)), boards=tuple(data.get("boards", ())),
                 build_best=build_best)


def expand(space: Space) -> list[dict[str, Any]]:
    """The space's points as field assignments: every combination, or ``samples`` distinct ones at random."""
    keys = list(space.fields)
    grid = list(itertools.product(*(space.fields[k] for k in keys)))
    if space.mode == "random" and space.samples < len(grid):
        rng = np.random.default_rng(space.seed)
        grid = [grid[i] for i in sorted(rng.choice(len(grid), space.samples, replace=False))]
    return [dict(zip(keys, values)) for values in grid]


# -- Points ------------------------------------------------------------------------------------

def _set_format(formats: dict, name: str, part: str, value) -> None:
    bits, frac = formats[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ExploreError(f"formats.{name}.{part} must be an integer, not {value!r}")
    if part == "frac":
        formats[name] = [bits, value]
    else:       # a width: the integer bits stay, the fraction bits follow
        formats[name] = [value, frac + value - bits]
        if frac + value - bits < 0:
            raise ConfigError(f"formats.{name} has {bits - frac} integer bits; {value} bits leave no room for them")


def apply(base: LearnerConfig, assignment: dict[str, Any]) -> tuple[LearnerConfig, int]:
    """The config and lane count of one point; ConfigError with the validator's reason if invalid.

    A width (``formats.X.bits``) keeps the format's integer bits. ``formats.weight_acc``
    follows ``formats.weight`` (same integer bits, as many extra fraction bits as the base
    has) unless the point sets it.
    """
    data = base.to_dict()
    data.pop("name", None)
    formats = data["formats"]
    extra = formats["weight_acc"][1] - formats["weight"][1]
    lanes = DEFAULT_LANES
    for key, value in assignment.items():
        parts = key.split(".")
        if key == "lanes":
            lanes = value
        elif key == "batch_size":
            data["batch_size"] = value
        elif key == "init.scale":
            data["init"]["scale"] = value
        elif parts[0] == "rounding":
            data["rounding"][parts[1]] = value
        elif parts[0] == "formats":
            _set_format(formats, parts[1], parts[2], value)
        else:
            layers = range(len(data["layers"])) if parts[1] == "*" else [int(parts[1])]
            for index in layers:
                if index >= len(data["layers"]):
                    raise ExploreError(f"space field {key!r}: the base config has {len(data['layers'])} layers")
                data["layers"][index][parts[2]] = value
    if any(k.startswith("formats.weight.") for k in assignment) and \
            not any(k.startswith("formats.weight_acc.") for k in assignment):
        bits, frac = formats["weight"]
        formats["weight_acc"] = [bits + extra, frac + extra]
    config = LearnerConfig.from_dict(data)
    from ..hdl.layout import CoreLayout
    CoreLayout(config, lanes)       # lanes: a power of two the core supports
    return config, lanes


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Point:
    """One point of the space: its assignment and, when valid, its config and schedule."""
    assignment: dict[str, Any]
    config: LearnerConfig | None = None
    lanes: int = DEFAULT_LANES
    reason: str | None = None          # why the point is invalid
    varying: tuple[str, ...] = ()      # the space's fields with more than one value: what labels show
    cycles_per_step: int | None = None
    mac_bound_cycles: float | None = None
    # size figures without synthesis: the weight accumulators' bits, and multiplier area as
    # lanes x weight bits x activation bits (an array multiplier grows with both widths)
    state_bits: int | None = None
    multiplier_bits: int | None = None

    @property
    def id(self) -> str:
        if self.config is None:
            return "x" + _digest(self.assignment)
        return _digest(self.config.to_dict(), self.lanes)

    @property
    def train_key(self) -> str:
        """Points that differ only in lanes train the same model."""
        return _digest(self.config.to_dict())

    def train_job_id(self, task_name: str, epochs: int | None, seed: int) -> str:
        return f"train-{self.train_key}-{task_name}-{epochs}-{seed}"

    def build_job_id(self, board: str) -> str:
        """Points whose gateware is equal at the same lanes share one build."""
        return f"build-{_digest(self.config.hardware().to_dict(), self.lanes)}-{board}"

    @property
    def label(self) -> str:
        return ", ".join(f"{k.removeprefix('formats.').removeprefix('layers.')}={_short(v)}"
                         for k, v in self.assignment.items() if k in self.varying or not self.varying)


def _short(value) -> str:
    return json.dumps(value, separators=(",", ":")) if isinstance(value, (dict, list)) else str(value)


def make_points(space: Space, base: LearnerConfig, task) -> list[Point]:
    from ..hdl.layout import CoreLayout
    from ..hdl.sequencer import step_cycles
    from ..model.train import check_task
    points = []
    varying = tuple(k for k, v in space.fields.items() if len(v) > 1)
    for assignment in expand(space):
        point = Point(assignment, varying=varying)
        try:
            point.config, point.lanes = apply(base, assignment)
            check_task(point.config, task)
            layout = CoreLayout(point.config, point.lanes)
            point.cycles_per_step = step_cycles(layout)
            point.mac_bound_cycles = round(layout.mac_bound_cycles(), 2)
            sizes = point.config.sizes
            f = point.config.formats
            point.state_bits = sum((a + 1) * b for a, b in zip(sizes, sizes[1:])) * f.weight_acc.bits
            point.multiplier_bits = point.lanes * f.weight.bits * f.activation.bits
        except (ConfigError, TaskError) as error:
            point.config, point.reason = None, str(error)
        points.append(point)
    return points


# -- Jobs: plain functions of plain data -----------------------------------------------------

@lru_cache(maxsize=4)
def _task(name: str):
    return load_task(name)


def train_job(config_data: dict, task_name: str, seed: int, epochs: int | None) -> dict:
    """Train one config for one seed (initial weights and sample order) with the compiled model."""
    from ..model.train import train
    task = _task(task_name)
    config = LearnerConfig.from_dict(config_data).with_changes(init_seed=seed)
    result = train(config, task, arith="fixed", epochs=epochs, seed=seed, engine="compiled")
    f = result.final
    return {"test_accuracy": f.test_accuracy, "test_mse": f.test_mse, "train_accuracy": f.train_accuracy,
            "train_mse": f.train_mse, "epochs": result.epochs, "seconds": round(result.seconds, 3)}


def build_job(config_data: dict, board: str, lanes: int) -> dict:
    """Synthesise, place and route one config for ``board`` at ``lanes`` lanes: resources, Fmax, steps/s.

    Through :func:`~nfloop.boards.build.cached_board_build`: equal gateware is built once.
    """
    from ..boards.build import cached_board_build
    from ..boards.catalog import board_spec
    from ..hdl.layout import CoreLayout
    from ..hdl.sequencer import step_cycles
    config = LearnerConfig.from_dict(config_data)
    spec = replace(board_spec(board), lanes=lanes)
    folder, report, built = cached_board_build(spec, config)
    cycles = step_cycles(CoreLayout(config, lanes, narrow=spec.narrow))
    row = {"board": board, "lanes": lanes, "clock_mhz": spec.clock_hz / 1e6, "cycles_per_step": cycles,
           "built_now": built, "folder": str(folder)}
    if report.get("fits") is False:
        return row | {"fits": False, "meets_timing": False, "error": report["error"]}
    return row | {"fits": True, "meets_timing": report["meets_timing"], "fmax_mhz": report["fmax_mhz"],
                  "luts": report["luts_used"], "luts_total": report["luts_total"], "ffs": report["ffs_used"],
                  "dsps": report["dsps_used"], "brams": report["bram_used"], "seconds": report["seconds"],
                  "steps_per_second": round(spec.clock_hz / cycles)}


@dataclass(frozen=True)
class Job:
    id: str
    kind: str                 # train | build
    function: Callable
    args: tuple
    point: str                # the point id (train jobs: the first point that needs it)


# -- Running -----------------------------------------------------------------------------------

class LocalBackend:
    """A process pool on this machine."""

    def __init__(self, workers: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))

    def run(self, jobs: list[Job]):
        """Yields (job, result, error) as each job finishes."""
        from concurrent.futures import as_completed
        futures = {self.pool.submit(job.function, *job.args): job for job in jobs}
        for future in as_completed(futures):
            error = future.exception()
            yield futures[future], None if error else future.result(), error

    def close(self, cancel: bool = False):
        if cancel:
            # an interrupt stops the running jobs too (their results would be dropped anyway);
            # the pool offers no public way to reach its workers
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.terminate()
        self.pool.shutdown(wait=True, cancel_futures=cancel)


class RayBackend:
    """An existing Ray cluster: ``auto`` for a running local one, or ``ray://host:port``."""

    def __init__(self, address: str):
        try:
            import ray
        except ImportError:
            raise ExploreError("--ray needs Ray: pip install 'nfloop[cluster]'") from None
        self.ray = ray
        if address != "auto":
            # ray.init waits minutes for a cluster that is not there: ask the port first
            host, _, port = address.removeprefix("ray://").rpartition(":")
            try:
                socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
            except (OSError, ValueError) as error:
                raise ExploreError(f"cannot reach the Ray cluster at {address}: {error}; start one with "
                                   f"'ray start --head', or pass auto, HOST:PORT or ray://HOST:PORT") from None
        try:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ExploreError(f"cannot reach the Ray cluster at {address}: {error}; start one with "
                               f"'ray start --head' or pass its address") from None
        self.refs = {}

    def run(self, jobs: list[Job]):
        for job in jobs:
            # a board build holds a core and a few GB for minutes; a training, one core
            options = {"num_cpus": 1, "memory": 3 * 2**30} if job.kind == "build" else {"num_cpus": 1}
            self.refs[self.ray.remote(job.function).options(**options).remote(*job.args)] = job
        while self.refs:
            done, _ = self.ray.wait(list(self.refs), num_returns=1)
            job = self.refs.pop(done[0])
            try:
                yield job, self.ray.get(done[0]), None
            except self.ray.exceptions.RayError as error:
                yield job, None, error

    def close(self, cancel: bool = False):
        if cancel:
            for ref in self.refs:
                self.ray.cancel(ref, force=True)
        self.ray.shutdown()


def read_results(path: Path) -> dict[str, dict]:
    """The finished jobs of earlier runs (a torn last line, from a kill, is dropped)."""
    done = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[record["job"]] = record
    return done


def _append(path: Path, record: dict) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def train_jobs(points: list[Point], task_name: str, seeds: int, epochs: int | None) -> list[Job]:
    jobs, seen = [], set()
    for point in points:
        if point.config is None or point.train_key in seen:
            continue
        seen.add(point.train_key)
        for seed in range(seeds):
            jobs.append(Job(point.train_job_id(task_name, epochs, seed), "train", train_job,
                            (point.config.to_dict(), task_name, seed, epochs), point.id))
    return jobs


def build_jobs(points: list[Point], boards: tuple[str, ...]) -> list[Job]:
    jobs, seen = [], set()
    for point in points:
        for board in boards:
            job_id = point.build_job_id(board)
            if job_id not in seen:
                seen.add(job_id)
                jobs.append(Job(job_id, "build", build_job, (point.config.to_dict(), board, point.lanes), point.id))
    return jobs


def plan_jobs(points, task_name, seeds, epochs, boards, build_best, done) -> list[Job]:
    """Every job of the exploration: trainings, then builds (of the most accurate points if
    ``build_best``: those need the trainings' results, in ``done``)."""
    jobs = train_jobs(points, task_name, seeds, epochs)
    if not boards:
        return jobs
    valid = [p for p in points if p.config is not None]
    if build_best is not None:
        if any(job.id not in done for job in jobs):
            return jobs                 # the builds are chosen once the trainings are in
        scores = {p.id: _quality(p, done, task_name, seeds, epochs)[0] for p in valid}
        valid = sorted(valid, key=lambda p: (-_finite(scores[p.id]), p.cycles_per_step, p.id))[:build_best]
    return jobs + build_jobs(valid, boards)


def _finite(value) -> float:
    return -math.inf if value is None or not math.isfinite(value) else value


def _quality(point: Point, done, task_name, seeds, epochs) -> tuple[float | None, float | None, float | None]:
    """(score, spread, mse) over seeds: the score is the test accuracy, or minus the MSE for regression
    (train figures where the task has no test split)."""
    rows = [done.get(point.train_job_id(task_name, epochs, seed)) for seed in range(seeds)]
    rows = [r["result"] for r in rows if r]
    if not rows:
        return None, None, None
    test = rows[0]["test_mse"] is not None
    mse = [r["test_mse"] if test else r["train_mse"] for r in rows]
    accuracy = [r["test_accuracy"] if test else r["train_accuracy"] for r in rows]
    if accuracy[0] is None:
        return -float(np.mean(mse)), float(np.std(mse)), float(np.mean(mse))
    return float(np.mean(accuracy)), float(np.std(accuracy)), float(np.mean(mse))


# -- Results -----------------------------------------------------------------------------------

@dataclass
class ExploreResult:
    out: Path
    jobs_total: int = 0
    jobs_run: int = 0
    jobs_cached: int = 0
    jobs_skipped: int = 0
    failed: list[dict] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    pareto: list[dict] = field(default_factory=list)
    interrupted: bool = False

    def summary(self) -> dict:
        return {"jobs_total": self.jobs_total, "jobs_run": self.jobs_run, "jobs_cached": self.jobs_cached,
                "jobs_skipped": self.jobs_skipped, "failed": self.failed, "out": str(self.out),
                "interrupted": self.interrupted, "pareto": self.pareto}


def result_rows(points, done, task_name, seeds, epochs, boards) -> list[dict]:
    """One row per valid point and board (or per point, without boards)."""
    rows = []
    for point in points:
        if point.config is None:
            continue
        score, spread, mse = _quality(point, done, task_name, seeds, epochs)
        if score is None:
            continue
        base = {"point": point.id, "label": point.label, **{f"set {k}": v for k, v in point.assignment.items()},
                "lanes": point.lanes, "score": score, "score_spread": spread, "mse": mse,
                "cycles_per_step": point.cycles_per_step, "mac_bound_cycles": point.mac_bound_cycles,
                "state_bits": point.state_bits, "multiplier_bits": point.multiplier_bits}
        built = False
        for board in boards:
            record = done.get(point.build_job_id(board))
            if record:
                built = True
                result = record["result"]
                rows.append(base | {"board": board} | {k: result.get(k) for k in (
                    "fits", "meets_timing", "luts", "luts_total", "ffs", "dsps", "brams", "fmax_mhz",
                    "clock_mhz", "steps_per_second")})
        if not built:
            rows.append(base | {"board": None})
    return rows


def pareto_front(rows: list[dict]) -> list[dict]:
    """Rows no other row beats: score up, LUTs down, steps/s up.

    Where boards were built, the front is over the builds that fit and meet timing; without
    builds, over every point, with the weight state's bits and the multipliers' bits for size and
    cycles per step for speed.
    """
    def objectives(row):
        if row.get("board") is None:
            return (row["score"], -row["state_bits"], -row["multiplier_bits"], -row["cycles_per_step"])
        return (row["score"], -row["luts"], row["steps_per_second"])

    built = [r for r in rows if r.get("board") is not None]
    candidates = [r for r in built if r.get("fits") and r.get("meets_timing")] if built else rows
    front = []
    for row in candidates:
        mine = objectives(row)
        dominated = any(all(o >= m for o, m in zip(objectives(other), mine)) and objectives(other) != mine
                        for other in candidates)
        if not dominated:
            front.append(row)
    return sorted(front, key=lambda r: (-r["score"], r["cycles_per_step"]))


def write_pareto(rows: list[dict], front: list[dict], out: Path, task_name: str, classification: bool) -> None:
    keys = []
    for row in front:
        keys += [k for k in row if k not in keys]
    with open(out / "pareto.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys or ["point"])
        writer.writeheader()
        writer.writerows(front)
    from .plots import pareto_plot
    pareto_plot(rows, front, out / "pareto.png", task_name, classification)


def run_exploration(space: Space, task_name: str, *, seeds: int = 3, epochs: int | None = None,
                    boards: tuple[str, ...] | None = None, out: Path, backend, progress=None,
                    log=None) -> ExploreResult:
    """Plan, run and summarise an exploration; ``backend`` runs the jobs (:class:`LocalBackend`,
    :class:`RayBackend`). ``progress(done, total)`` after each job; KeyboardInterrupt keeps what finished."""
    from ..boards.catalog import board_spec
    from ..scripts.cli import named_config
    task = _task(task_name)
    boards = space.boards if boards is None else boards
    for board in boards:
        board_spec(board)
    base = named_config(space.base)
    points = make_points(space, base, task)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.jsonl"
    done = read_results(results_path)
    before = set(done)
    result = ExploreResult(out=out)
    for point in points:
        if point.config is None:
            result.jobs_skipped += 1
            record = {"job": f"skip-{point.id}", "kind": "skipped", "point": point.id,
                      "assignment": point.assignment, "reason": point.reason}
            if record["job"] not in done:
                _append(results_path, record)
                done[record["job"]] = record
    ran = set()
    try:
        while True:
            jobs = plan_jobs(points, task_name, seeds, epochs, boards, space.build_best, done)
            pending = [job for job in jobs if job.id not in done and job.id not in ran]
            result.jobs_total = len(jobs)
            if progress:
                progress(len(jobs) - len(pending), len(jobs))
            if not pending:
                break
            for job, value, error in backend.run(pending):
                ran.add(job.id)
                if error is not None:
                    result.failed.append({"job": job.id, "error": f"{type(error).__name__}: {error}"})
                    if log:
                        log(f"job {job.id} failed: {error}")
                else:
                    record = {"job": job.id, "kind": job.kind, "point": job.point, "result": value,
                              "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
                    _append(results_path, record)
                    done[job.id] = record
                    result.jobs_run += 1
                if progress:
                    progress(sum(1 for j in jobs if j.id in done or j.id in ran), len(jobs))
    except KeyboardInterrupt:
        result.interrupted = True
        backend.close(cancel=True)
    else:
        backend.close()
    result.jobs_cached = sum(1 for job in plan_jobs(points, task_name, seeds, epochs, boards, space.build_best, done)
                             if job.id in before)
    result.rows = result_rows(points, done, task_name, seeds, epochs, boards)
    result.pareto = pareto_front(result.rows)
    write_pareto(result.rows, result.pareto, out, task_name, task.is_classification)
    return result
