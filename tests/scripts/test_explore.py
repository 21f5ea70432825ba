"""nfloop explore: spaces, points, jobs, the Pareto front, reruns that run nothing again, and Ray."""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from nfloop.model.config import ConfigError
from nfloop.model.tasks import default_config, load_task
from nfloop.scripts import explore
from nfloop.scripts.cli import cli
from nfloop.scripts.explore import ExploreError, LocalBackend, apply, expand, load_space, pareto_front


def write_space(tmp_path: Path, text: str, name: str = "space") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


# -- spaces ----------------------------------------------------------------------------------

def test_shipped_spaces_load():
    assert {"xor-small", "digits-bits"} <= set(explore.shipped_spaces())
    space = load_space("xor-small")
    assert space.base == "xor" and space.boards == ("icebreaker",)
    assert len(expand(space)) == 4
    assert len(expand(load_space("digits-bits"))) == 20


@pytest.mark.parametrize("text, message", [
    ('base = "xor"\n[sweep]\n"layers.0.colour" = [1]', "unknown space field 'layers.0.colour'"),
    ('base = "xor"\n[sweep]\n"formats.weight.width" = [8]', "unknown space field"),
    ('base = "xor"', "needs a \\[sweep\\] table"),
    ('[sweep]\nlanes = [1]', "needs base = "),
    ('base = "xor"\nmode = "spiral"\n[sweep]\nlanes = [1]', "mode must be grid or random"),
    ('base = "xor"\n[sweep]\nlanes = {from = 1}', "a range is {from = A, to = B}"),
    ('base = "xor"\n[sweep]\nlanes = []', "has no values"),
    ('base = "xor"\ncolour = 1\n[sweep]\nlanes = [1]', "unknown key"),
    ('base = "xor"\n[sweep\nlanes = [1]', "cannot read the space"),
])
def test_bad_spaces_name_the_fix(tmp_path, text, message):
    with pytest.raises(ExploreError, match=message):
        load_space(str(write_space(tmp_path, text)))


def test_unknown_space_lists_the_shipped_ones():
    with pytest.raises(ExploreError, match="xor-small"):
        load_space("no-such-space")


def test_ranges_and_random_mode(tmp_path):
    space = load_space(str(write_space(tmp_path, 'base = "xor"\nmode = "random"\nsamples = 5\nseed = 3\n'
                                                 '[sweep]\n"layers.0.size" = {from = 2, to = 12, step = 2}\n'
                                                 '"layers.*.gain_shift" = {from = 3, to = 5}\n')))
    assert space.fields["layers.0.size"] == [2, 4, 6, 8, 10, 12] and space.fields["layers.*.gain_shift"] == [3, 4, 5]
    points = expand(space)
    assert len(points) == 5 and len({json.dumps(p, sort_keys=True) for p in points}) == 5
    assert points == expand(space)          # the same seed draws the same points


# -- points ----------------------------------------------------------------------------------

def test_widths_keep_integer_bits_and_the_accumulator_follows():
    base = default_config(load_task("digits"))      # weight Q(16,12), weight_acc Q(32,28)
    config, lanes = apply(base, {"formats.weight.bits": 10, "formats.activation.bits": 12, "lanes": 16})
    f = config.formats
    assert (f.weight.bits, f.weight.frac) == (10, 6) and (f.weight_acc.bits, f.weight_acc.frac) == (26, 22)
    assert (f.activation.bits, f.activation.frac) == (12, 6) and lanes == 16


def test_every_layer_field_and_star():
    base = default_config(load_task("xor"))
    config, _ = apply(base, {"layers.*.gain_shift": 7, "layers.0.activation": "relu", "layers.0.momentum_shift": 3})
    assert [layer.gain_shift for layer in config.layers] == [7, 7]
    assert config.layers[0].activation.kind.value == "relu" and config.layers[0].momentum_shift == 3


@pytest.mark.parametrize("assignment, reason", [
    ({"formats.weight.bits": 30}, "formats.weight_acc|at most|32"),
    ({"lanes": 3}, "lanes must be a power of two"),
    ({"formats.activation.bits": 4}, "integer bits"),
])
def test_invalid_points_give_the_validators_reason(assignment, reason):
    with pytest.raises(ConfigError, match=reason):
        apply(default_config(load_task("digits")), assignment)


def test_pareto_front_keeps_only_undominated_rows():
    rows = [{"score": 0.9, "luts": 100, "steps_per_second": 10, "cycles_per_step": 1, "board": "b", "fits": True,
             "meets_timing": True},
            {"score": 0.8, "luts": 200, "steps_per_second": 5, "cycles_per_step": 1, "board": "b", "fits": True,
             "meets_timing": True},                                                  # dominated
            {"score": 0.95, "luts": 300, "steps_per_second": 5, "cycles_per_step": 1, "board": "b", "fits": True,
             "meets_timing": True},                                                  # most accurate
            {"score": 0.99, "luts": 50, "steps_per_second": 50, "cycles_per_step": 1, "board": "b", "fits": False,
             "meets_timing": False}]                                                 # does not fit
    assert [r["score"] for r in pareto_front(rows)] == [0.95, 0.9]


def test_without_builds_the_front_weighs_bits_and_cycles():
    rows = [{"board": None, "score": 0.97, "state_bits": 100, "multiplier_bits": 64, "cycles_per_step": 50},
            {"board": None, "score": 0.98, "state_bits": 200, "multiplier_bits": 64, "cycles_per_step": 50},
            {"board": None, "score": 0.97, "state_bits": 150, "multiplier_bits": 64, "cycles_per_step": 50},  # beaten
            {"board": None, "score": 0.96, "state_bits": 100, "multiplier_bits": 32, "cycles_per_step": 50},
            {"board": None, "score": 0.90, "state_bits": 100, "multiplier_bits": 64, "cycles_per_step": 40}]
    assert [(r["score"], r["state_bits"]) for r in pareto_front(rows)] == [(0.98, 200), (0.97, 100), (0.96, 100),
                                                                          (0.9, 100)]


# -- runs ------------------------------------------------------------------------------------

SMALL = ('base = "xor"\n[sweep]\n"layers.0.size" = [3, 6]\n"formats.weight.bits" = [12, 30]\n'
         'lanes = [1, 2]\n')


def run_small(tmp_path, backend=None, seeds=2):
    space = load_space(str(write_space(tmp_path, SMALL)))
    return explore.run_exploration(space, "xor", seeds=seeds, epochs=2, out=tmp_path / "out",
                                   backend=backend or LocalBackend(2))


def test_exploration_writes_results_and_reruns_nothing(tmp_path):
    first = run_small(tmp_path)
    # 8 points: weight bits 30 is invalid (4 points skipped); lanes 1 and 2 share their trainings
    assert (first.jobs_total, first.jobs_run, first.jobs_skipped, first.failed) == (4, 4, 4, [])
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    skipped = [r for r in records if r["kind"] == "skipped"]
    assert len(skipped) == 4 and all("weight_acc" in r["reason"] or "32" in r["reason"] for r in skipped)
    assert len([r for r in records if r["kind"] == "train"]) == 4
    assert {r["lanes"] for r in first.rows} == {1, 2} and len(first.rows) == 4
    assert all(r["cycles_per_step"] > r["mac_bound_cycles"] > 0 for r in first.rows)
    with open(tmp_path / "out" / "pareto.csv") as handle:
        front = list(csv.DictReader(handle))
    assert front and len(front) == len(first.pareto)
    assert (tmp_path / "out" / "pareto.png").stat().st_size > 10_000
    again = run_small(tmp_path)
    assert (again.jobs_run, again.jobs_cached, again.jobs_total) == (0, 4, 4)
    assert len((tmp_path / "out" / "results.jsonl").read_text().splitlines()) == len(records)


class InterruptAfter:
    """A backend that runs jobs in this process and is interrupted after ``count`` of them."""

    def __init__(self, count):
        self.count = count

    def run(self, jobs):
        for n, job in enumerate(jobs):
            if n == self.count:
                raise KeyboardInterrupt
            yield job, job.function(*job.args), None

    def close(self, cancel=False):
        pass


def test_interrupt_keeps_finished_jobs_and_a_rerun_finishes(tmp_path):
    interrupted = run_small(tmp_path, InterruptAfter(3))
    assert interrupted.interrupted and interrupted.jobs_run == 3
    rest = run_small(tmp_path, InterruptAfter(99))
    assert not rest.interrupted and (rest.jobs_run, rest.jobs_cached) == (1, 3)


def test_a_torn_last_line_is_ignored(tmp_path):
    run_small(tmp_path)
    results = tmp_path / "out" / "results.jsonl"
    lines = results.read_text().splitlines()
    results.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    again = run_small(tmp_path)
    assert again.jobs_run == 1


class Failing(InterruptAfter):
    def run(self, jobs):
        for job in jobs:
            yield job, None, RuntimeError("worker died")


def test_failed_jobs_are_reported_and_not_recorded(tmp_path):
    result = run_small(tmp_path, Failing(0))
    assert len(result.failed) == 4 and result.jobs_run == 0
    assert "worker died" in result.failed[0]["error"]
    assert run_small(tmp_path).jobs_run == 4


def test_build_best_builds_only_the_best_point(tmp_path, monkeypatch):
    """With build_best, the builds wait for the trainings and take the most accurate points."""
    calls = []

    def fake_build(config_data, board, lanes):
        calls.append((config_data["layers"][0]["size"], board, lanes))
        return {"board": board, "lanes": lanes, "fits": True, "meets_timing": True, "luts": 1000,
                "steps_per_second": 1000, "clock_mhz": 18.0}

    def fake_train(config_data, task_name, seed, epochs):     # the 5-unit point is the most accurate
        accuracy = 1 - abs(config_data["layers"][0]["size"] - 5) / 10
        return {"test_accuracy": accuracy, "test_mse": 0.1, "train_accuracy": accuracy, "train_mse": 0.1}

    monkeypatch.setattr(explore, "build_job", fake_build)
    monkeypatch.setattr(explore, "train_job", fake_train)
    space = load_space(str(write_space(tmp_path, 'base = "xor"\nboards = ["icebreaker"]\nbuild_best = 1\n'
                                                 '[sweep]\n"layers.0.size" = [1, 5, 8]\nlanes = [1]\n')))
    result = explore.run_exploration(space, "xor", seeds=1, epochs=3, out=tmp_path / "out", backend=InterruptAfter(99))
    assert calls == [(5, "icebreaker", 1)]
    assert result.jobs_total == 4 and [r["board"] for r in result.rows].count("icebreaker") == 1
    assert [r["board"] for r in result.pareto] == ["icebreaker"]     # the front of what was built


# -- the command line, with a real board build, locally and on Ray ---------------------------

def explore_cli(*args):
    result = CliRunner().invoke(cli, ["explore", *args, "--json"], catch_exceptions=False)
    return result, (json.loads(result.output) if result.exit_code == 0 else None)


def check_xor_small(out: Path, summary: dict):
    assert summary["failed"] == [] and summary["jobs_total"] == 9 and summary["out"] == str(out)
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    builds = [r for r in records if r["kind"] == "build"]
    assert len(builds) == 1
    build = builds[0]["result"]
    assert build["board"] == "icebreaker" and build["fits"] and build["luts"] > 100
    assert build["steps_per_second"] == round(build["clock_mhz"] * 1e6 / build["cycles_per_step"])
    assert (out / "pareto.csv").is_file() and (out / "pareto.png").is_file()
    assert any(row.get("board") == "icebreaker" for row in summary["pareto"])


@pytest.mark.slow
def test_xor_small_with_a_board_build(tmp_path):
    out = tmp_path / "xor"
    result, summary = explore_cli("--task", "xor", "--space", "xor-small", "--seeds", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    check_xor_small(out, summary)
    _, again = explore_cli("--task", "xor", "--space", "xor-small", "--seeds", "2", "--out", str(out))
    assert again["jobs_run"] == 0 and again["jobs_cached"] == 9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head():
    """A local Ray head on free ports, stopped by its process when the test ends."""
    ray = shutil.which("ray", path=os.path.dirname(sys.executable))
    if ray is None:
        pytest.fail("Ray is missing: pip install -e '.[dev]' installs nfloop[cluster]")
    port = free_port()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")      # Ray's socket paths must stay under 108 characters
    head = subprocess.Popen([ray, "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--include-dashboard=false", "--object-store-memory=100000000",
                             f"--temp-dir={temp}", "--disable-usage-stats"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert head.poll() is None, "ray start --head exited"
        time.sleep(0.5)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()            # ray start --block stops its cluster's processes on SIGTERM
        try:
            head.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, 9)
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_xor_small_on_ray(tmp_path, ray_head):
    out = tmp_path / "xor-ray"
    result, summary = explore_cli("--task", "xor", "--space", "xor-small", "--seeds", "2", "--out", str(out),
                                  "--ray", ray_head)
    assert result.exit_code == 0, result.output
    check_xor_small(out, summary)


def test_ray_address_that_answers_nothing_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["explore", "--task", "xor", "--space", "xor-small", "--out", str(tmp_path),
                                      "--ray", f"127.0.0.1:{free_port()}"])
    assert result.exit_code == 2 and "cannot reach the Ray cluster" in result.output
