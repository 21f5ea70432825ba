"""A whole epoch of the digits learner in Verilator, bit-exact, and the CLI around it."""

import json
import re
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner
from nfloop.hdl.layout import CoreLayout
from nfloop.hdl.sequencer import schedule
from nfloop.model import default_config, load_task
from nfloop.scripts.cli import cli
from nfloop.sim import cosim
from nfloop.sim.cosim import cosimulate


def test_digits_epoch_is_bit_exact():
    """1400 steps at 8 lanes: every step's outputs, the final weights, the test accuracy."""
    task = load_task("digits")
    config = default_config(task)
    result = cosimulate(config, task, lanes=8, epochs=1)
    assert result.first_mismatch is None, str(result.first_mismatch)
    assert (result.steps, result.mismatches, result.checkpoints) == (1400, 0, 1)
    assert result.test_accuracy == result.model_test_accuracy and result.test_accuracy > 0.85
    assert result.cycles_per_step == sum(cycles for _, cycles in schedule(CoreLayout(config, 8)))
    assert result.cycles_per_step <= 1.25 * result.mac_bound_cycles_per_step + 64


def test_a_wrong_model_is_caught(monkeypatch):
    """The same run against a model with another gain must report where they part."""
    task = load_task("xor")
    config = default_config(task)
    other = config.with_changes(layers=(config.layers[0],
                                        replace(config.layers[1], gain_shift=config.layers[1].gain_shift + 1)))
    real_learner = cosim.FixedLearner
    monkeypatch.setattr(cosim, "FixedLearner",
                        lambda cfg, engine="compiled": real_learner(other, engine=engine))
    result = cosimulate(config, task, lanes=2, steps=20)
    assert result.mismatches > 0
    m = result.first_mismatch
    assert m.step >= 1 and m.what in ("prediction", "error") and m.hw != m.model


def test_sim_cli_json_and_exit_status(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.uniform(-2, 2, (40, 3))
    np.savez(tmp_path / "blobs.npz", x=x, y=(x.sum(axis=1) > 0).astype(np.int64), x_test=x[:10],
             y_test=(x[:10].sum(axis=1) > 0).astype(np.int64))
    result = CliRunner().invoke(cli, ["sim", "--task", str(tmp_path / "blobs.npz"), "--epochs", "2",
                                      "--lanes", "4", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    for key in ("steps", "mismatches", "first_mismatch", "cycles_per_step", "mac_bound_cycles_per_step",
                "lanes", "test_accuracy", "model_test_accuracy", "sim_cycles_per_second"):
        assert key in summary
    assert summary["steps"] == 80 and summary["mismatches"] == 0 and summary["first_mismatch"] is None
    assert summary["test_accuracy"] == summary["model_test_accuracy"]


def test_sim_cli_rejects_bad_lanes():
    result = CliRunner().invoke(cli, ["sim", "--task", "xor", "--lanes", "3"])
    assert result.exit_code == 2 and "'3' is not one of '1', '2', '4', '8', '16', '32', '64'" in result.output


def test_verilog_cli(tmp_path):
    out = tmp_path / "core.v"
    result = CliRunner().invoke(cli, ["verilog", "--config", "xor", "--lanes", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "module nfloop_core" in out.read_text()


@pytest.mark.slow
def test_sim_writes_a_waveform(tmp_path):
    vcd = tmp_path / "run.vcd"
    result = CliRunner().invoke(cli, ["sim", "--task", "xor", "--steps", "3", "--lanes", "2", "--trace", str(vcd)])
    assert result.exit_code == 0, result.output
    text = vcd.read_text()
    assert "$enddefinitions" in text and "i_stream" in text


def test_sim_rejects_unknown_waveform_format(tmp_path):
    result = CliRunner().invoke(cli, ["sim", "--task", "xor", "--steps", "3", "--trace", str(tmp_path / "run.txt")])
    assert result.exit_code == 2 and "must end in .fst or .vcd" in result.output


def sim(*args):
    return CliRunner().invoke(cli, ["sim", "--task", "xor", "--lanes", "2", *args], prog_name="nfloop")


@pytest.mark.slow
def test_trace_steps_record_only_their_window(tmp_path):
    whole, window = tmp_path / "whole.vcd", tmp_path / "window.vcd"
    assert sim("--steps", "40", "--trace", str(whole)).exit_code == 0
    result = sim("--steps", "40", "--trace", str(window), "--trace-steps", "20:21")
    assert result.exit_code == 0 and "bit-exact: 40 steps" in result.output
    assert "$enddefinitions" in window.read_text()[:100_000]
    assert window.stat().st_size < whole.stat().st_size / 5


@pytest.mark.slow
def test_a_waveform_over_the_limit_is_refused_with_a_window_that_fits(tmp_path):
    vcd = tmp_path / "run.vcd"
    refused = sim("--steps", "3000", "--trace", str(vcd), "--trace-limit", "1")
    assert refused.exit_code == 2 and "over --trace-limit 1 MB" in refused.output and not vcd.exists()
    suggestion = re.search(r"--trace-steps (\d+:\d+)", refused.output).group(1)
    accepted = sim("--steps", "3000", "--trace", str(vcd), "--trace-steps", suggestion, "--trace-limit", "1")
    assert accepted.exit_code == 0 and vcd.stat().st_size < 1.3e6


@pytest.mark.parametrize("window, message", [("5:2", "FIRST <= LAST"), ("a:b", "is not FIRST:LAST"),
                                             ("7", "is not FIRST:LAST")])
def test_bad_trace_windows_are_refused(tmp_path, window, message):
    result = sim("--steps", "3", "--trace", str(tmp_path / "run.vcd"), "--trace-steps", window)
    assert result.exit_code == 2 and message in result.output


def test_trace_steps_need_a_trace():
    result = sim("--steps", "3", "--trace-steps", "0:1")
    assert result.exit_code == 2 and "give --trace FILE.vcd too" in result.output


def test_chunks_split_at_the_trace_window():
    chunks = list(cosim._chunks(300, 128, 100, (150, 159)))
    assert chunks == [(0, 50), (50, 60), (60, 188), (188, 300)]
    assert list(cosim._chunks(300, 128, 0, None)) == [(0, 128), (128, 256), (256, 300)]
