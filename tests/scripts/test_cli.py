"""The ``nfloop`` command line: outputs, judged behaviours and error messages."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from nfloop.scripts.cli import cli

JSON_KEYS = {"task", "learner", "arith", "epochs", "steps", "train_mse", "test_mse",
             "train_accuracy", "test_accuracy", "seconds", "warnings"}


def run(*args):
    result = CliRunner().invoke(cli, list(args))
    return result


def run_json(*args):
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("arith", ["float", "fixed"])
def test_staircase_loop_converges_and_gradient_does_not_move(arith):
    loop = run_json("train", "--task", "staircase", "--arith", arith)
    assert JSON_KEYS <= set(loop)
    assert loop["train_accuracy"] is None and loop["test_accuracy"] is None
    assert loop["initial_train_mse"] > 5
    assert loop["train_mse"] < 0.01
    gd = run_json("train", "--task", "staircase", "--arith", arith, "--learner", "gradient")
    assert gd["train_mse"] == gd["initial_train_mse"]


def test_classification_reports_accuracy():
    summary = run_json("train", "--task", "xor", "--arith", "fixed")
    assert summary["test_accuracy"] == 1.0
    assert summary["steps"] == summary["epochs"] * 4


def test_seed_changes_the_run():
    a = run_json("train", "--task", "iris", "--epochs", "2", "--seed", "1")
    b = run_json("train", "--task", "iris", "--epochs", "2", "--seed", "2")
    assert a["train_mse"] != b["train_mse"]


def test_unstable_gain_warns_with_the_bound(tmp_path):
    config = tmp_path / "loud.toml"
    config.write_text(run("config", "--task", "staircase").stdout.replace("gain_shift = 8", "gain_shift = 2"))
    summary = run_json("train", "--task", "staircase", "--config", str(config), "--epochs", "1")
    assert any("stability bound" in w and "gain_shift >= " in w for w in summary["warnings"])


def test_shipped_config_by_name():
    summary = run_json("train", "--task", "digits", "--config", "digits_staircase", "--epochs", "1", "--arith",
                       "fixed")
    assert summary["epochs"] == 1 and summary["steps"] == 1400 and summary["test_accuracy"] > 0.5


def test_plot_is_written(tmp_path):
    png = tmp_path / "curves.png"
    result = run("train", "--task", "xor", "--epochs", "5", "--plot", str(png))
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_user_npz_task(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (60, 3))
    np.savez(tmp_path / "mine.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    summary = run_json("train", "--task", str(tmp_path / "mine.npz"), "--arith", "fixed", "--epochs", "3")
    assert summary["task"] == "mine" and summary["train_accuracy"] is not None


@pytest.mark.parametrize("args, message", [
    (["train", "--task", "nosuch"], "Unknown task 'nosuch'"),
    (["train", "--task", "missing.npz"], "does not exist"),
    (["train", "--task", "xor", "--config", "missing.toml"], "or name a shipped config"),
    (["train", "--task", "xor", "--config", "digits"], "pass a matching --config"),
])
def test_bad_input_gives_one_clear_line(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_config_file_names_the_problem(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(run("config", "--task", "xor").stdout.replace("gain_shift = 4", "gain_shift = 99"))
    result = run("train", "--task", "xor", "--config", str(config))
    assert result.exit_code == 2
    assert "gain_shift must be an integer from -8 to 40" in result.output
    config.write_text("inputs = [")
    result = run("train", "--task", "xor", "--config", str(config))
    assert result.exit_code == 2 and "not valid TOML" in result.output


@pytest.mark.slow
def test_demo_writes_figures_and_summary(tmp_path):
    result = run("demo", "--quick", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    for name in ("staircase_fit.png", "staircase_trajectory.png", "staircase_learning.png",
                 "digits_learning.png", "digits_staircase_learning.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {"staircase", "digits", "digits_staircase", "hardware", "virtual_board"} <= set(summary)
    assert len(summary["staircase"]) == 4
    for part in ("hardware", "virtual_board"):
        assert summary[part]["steps"] == 200 and summary[part]["mismatches"] == 0, part
    assert result.output.count("bit-exact: 200 steps, 0 mismatches") == 2


def test_bench_model_prints_figures():
    figures = run_json("bench", "--model", "--steps", "50", "--repeats", "1")["model"]
    assert figures["network"] == "64-32-10"
    assert figures["fixed_steps_per_second"] > 0 and figures["float_steps_per_second"] > 0
    assert figures["compiled_steps_per_second"] > 0
    assert figures["compiled_over_numpy"] == pytest.approx(
        figures["compiled_steps_per_second"] / figures["fixed_steps_per_second"], rel=0.01)


@pytest.mark.parametrize("command", ["train", "sim", "compare"])
def test_engine_option_offers_both_engines(command):
    result = run(command, "--help")
    assert "--engine [numpy|compiled]" in result.output and "default: compiled" in result.output


def test_train_engines_give_the_same_result():
    args = ("train", "--task", "xor", "--arith", "fixed", "--epochs", "3")
    numpy_run, compiled_run = (run_json(*args, "--engine", engine) for engine in ("numpy", "compiled"))
    for key in ("train_mse", "train_accuracy", "test_accuracy", "steps"):
        assert numpy_run[key] == compiled_run[key], key


def test_bench_needs_a_target():
    result = run("bench")
    assert result.exit_code == 2 and "--model" in result.output


def test_a_diverging_float_run_prints_valid_json_and_says_so(tmp_path):
    import json as json_module

    from click.testing import CliRunner
    from nfloop.model import default_config, load_task
    from nfloop.model.config import save_config
    from nfloop.scripts.cli import cli
    config = default_config(load_task("xor"))
    bad = config.to_dict()
    for layer in bad["layers"]:
        layer["gain_shift"] = -8
    path = tmp_path / "hot.toml"
    from nfloop.model.config import LearnerConfig
    save_config(LearnerConfig.from_dict(bad), path)
    result = CliRunner().invoke(cli, ["train", "--task", "xor", "--config", str(path), "--epochs", "50", "--json"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    summary = json_module.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in the JSON"))
    assert summary["train_mse"] is None
    assert any("diverged" in w for w in summary["warnings"])


def test_bench_names_a_board_build_that_is_not_this_source(tmp_path):
    """A board's build report counts in ``bench --boards`` only if it is of this gateware, lanes and clock."""
    from nfloop.boards.build import gateware_id
    from nfloop.boards.catalog import BOARDS
    from nfloop.model.tasks import default_config, load_task
    from nfloop.scripts.cli import build_status
    spec, config = BOARDS["orangecrab"], default_config(load_task("digits"))
    assert build_status(spec, config, tmp_path)["build"].startswith("missing: nfloop build --board orangecrab")
    folder = tmp_path / "orangecrab"
    folder.mkdir()
    report = {"lanes": spec.lanes, "clock_mhz": spec.clock_hz / 1e6, "meets_timing": True, "fmax_mhz": 120.0,
              "gateware": gateware_id(spec, config)}
    for change, said in (({}, "present"), ({"gateware": "0123456789abcdef"}, "stale: built from other gateware"),
                         ({"lanes": spec.lanes // 2}, f"stale: built with {spec.lanes // 2} lanes")):
        (folder / "nfloop.build.json").write_text(json.dumps({**report, **change}))
        status = build_status(spec, config, tmp_path)
        assert status["build"].startswith(said) and status["fmax_mhz"] == 120.0, status
