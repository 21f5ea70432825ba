"""The window and gain study: every variant trains, the summary keeps mean and spread over seeds,
and the command writes its JSON and figures."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from nfloop.scripts.cli import cli
from nfloop.scripts.study import GAIN_OFFSETS, WINDOWS, dead_units, run_study, summarise, variants


def test_every_variant_and_seed_is_one_row():
    rows = run_study(["xor"], seeds=2, ariths=("float",), workers=1, windows={"lo=0": WINDOWS["lo=0"]},
                     offsets=(0, 1))
    assert len(rows) == 2 * len(variants({"lo=0": None}, (0, 1))) == 2 * 4
    assert {(r.learner, r.window) for r in rows} == {("feedback", "lo=0"), ("gradient", "-")}
    summary = summarise(rows)
    assert len(summary) == 4 and all(e["seeds"] == 2 for e in summary)
    for entry in summary:
        scores = [r.score for r in rows if (r.learner, r.window, r.gain_offset) ==
                  (entry["learner"], entry["window"], entry["gain_offset"])]
        assert entry["mean"] == np.mean(scores) and entry["std"] == np.std(scores)
        assert 0 <= entry["converged_epoch"] <= 100


def test_the_study_command_writes_its_json_and_a_figure_per_task(tmp_path):
    result = CliRunner().invoke(cli, ["study", "--task", "xor", "--seeds", "1", "--arith", "float", "--workers", "1",
                                      "-o", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert len(summary) == len(WINDOWS) * len(GAIN_OFFSETS) + len(GAIN_OFFSETS)
    assert (tmp_path / "study.json").is_file() and (tmp_path / "study_xor.png").stat().st_size > 10_000


def test_the_adaptive_study_trains_fixed_and_adaptive_gains_from_each_offset(tmp_path):
    rows = run_study(["xor"], seeds=1, ariths=("fixed",), workers=1, offsets=(0, 2), adaptive=True)
    lines = (("feedback", "default"), ("adaptive", "default"), ("gradient", "-"))
    assert {(r.learner, r.window, r.gain_offset) for r in rows} == {
        (learner, window, offset) for learner, window in lines for offset in (0, 2)}
    result = CliRunner().invoke(cli, ["study", "--adaptive", "--task", "xor", "--seeds", "1", "--arith", "fixed",
                                      "--workers", "1", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "loop, adaptive" in result.stdout and "loop, fixed" in result.stdout
    assert (tmp_path / "study_xor.png").stat().st_size > 10_000


def test_the_study_refuses_an_unknown_task():
    result = CliRunner().invoke(cli, ["study", "--task", "nosuch"])
    assert result.exit_code == 2 and "Unknown task 'nosuch'" in result.stderr


def test_dead_relu_units_stay_dead_under_gradient_descent_and_the_loop_revives_them():
    """A unit whose z <= 0 for every sample gets no gradient, so under gradient descent the dead
    fraction never falls; the loop's window lets error through below z = 0 and revives units."""
    descent = dead_units("moons", -1.5, "gradient descent", epochs=4)
    assert descent["dead"][0] > 0.5 and np.all(np.diff(descent["dead"]) >= 0)
    loop = dead_units("moons", -1.5, "loop, lo=-1", epochs=4)
    assert loop["dead"][0] == descent["dead"][0] and loop["dead"][-1] < loop["dead"][0]


@pytest.mark.slow
def test_the_dead_units_study_writes_its_figure(tmp_path):
    result = CliRunner().invoke(cli, ["study", "--dead-units", "--seeds", "1", "-o", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 9 and (tmp_path / "dead_units_moons.png").stat().st_size > 10_000
