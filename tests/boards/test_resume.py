"""A compare that loses nothing: run folders, resume after an interrupt, link loss, and the interrupt script."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from nfloop.boards.compare import RunFolder
from nfloop.boards.virtual import VirtualBoard
from nfloop.model import default_config, load_task
from nfloop.scripts import interrupts

#: interrupted runs on the virtual board: a minute or more each
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits_board():
    with VirtualBoard(default_config(load_task("digits"))) as board:
        yield board


def compare(url, *args):
    return subprocess.Popen([sys.executable, "-m", "nfloop.scripts.cli", "compare", "--port", url, "--json", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_rows(run, count, process, limit=300):
    end = time.monotonic() + limit
    while len(RunFolder(run).rows()) < count:
        assert process.poll() is None, f"compare ended early: {process.communicate()}"
        assert time.monotonic() < end, "no epoch recorded in time"
        time.sleep(0.05)


def checkpoint(run):
    with np.load(run / "checkpoint.npz") as saved:
        return {name: saved[name] for name in saved.files}


def test_an_interrupted_compare_resumes_to_the_uninterrupted_weights(digits_board, tmp_path):
    whole, part = tmp_path / "whole", tmp_path / "part"
    first = compare(digits_board.url, "--task", "digits", "--epochs", "3", "--run-dir", str(whole))
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    interrupted = compare(digits_board.url, "--task", "digits", "--epochs", "3", "--run-dir", str(part))
    wait_for_rows(part, 1, interrupted)
    interrupted.send_signal(signal.SIGINT)
    _, err = interrupted.communicate(timeout=60)
    assert interrupted.returncode == 130
    assert f"continue with: nfloop compare --resume {part}" in " ".join(err.split())
    kept = RunFolder(part).rows()
    assert 1 <= len(kept) < 3 and all(row.weights_equal for row in kept)
    resumed = compare(digits_board.url, "--resume", str(part))
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    summary = json.loads(out)
    assert summary["mismatches"] == 0 and summary["steps"] == 3 * 1400 and len(summary["per_epoch"]) == 3
    want, got = checkpoint(whole), checkpoint(part)
    assert sorted(want) == sorted(got)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert json.loads((part / "result.json").read_text())["mismatches"] == 0


def test_a_lost_link_keeps_the_epochs_and_exits_3(tmp_path):
    run = tmp_path / "run"
    with VirtualBoard(default_config(load_task("digits"))) as board:
        process = compare(board.url, "--task", "digits", "--epochs", "5", "--run-dir", str(run))
        wait_for_rows(run, 1, process)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 3, err
    assert "Traceback" not in err and "error:" in err
    assert f"--resume {run}" in " ".join(err.split())
    assert len(RunFolder(run).rows()) >= 1 and (run / "checkpoint.npz").exists()


def test_a_run_folder_is_not_overwritten(digits_board, tmp_path):
    (tmp_path / "run.json").write_text("{}")
    process = compare(digits_board.url, "--task", "digits", "--epochs", "1", "--run-dir", str(tmp_path))
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2 and "already holds a run" in err


def test_interrupts_at_random_moments_are_always_followed_by_a_good_rerun(digits_board, tmp_path):
    lines = []
    counts = interrupts.run_tries(digits_board.url, tries=2, task="digits", epochs=1, seed=5, folder=tmp_path,
                                  log=lines.append)
    assert counts["tries"] == 2 and counts["rerun_ok"] == 2, lines


def test_weights_saved_by_train_go_into_a_board_and_come_back_out(digits_board, tmp_path):
    from click.testing import CliRunner
    from nfloop.scripts.cli import cli
    runner = CliRunner()
    saved, back = tmp_path / "trained.npz", tmp_path / "board.npz"
    result = runner.invoke(cli, ["train", "--task", "digits", "--arith", "fixed", "--epochs", "1",
                                 "--save", str(saved)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["weights", "write", "--port", digits_board.url, "--config", "digits", str(saved)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["weights", "read", "--port", digits_board.url, "--config", "digits", "-o", str(back)])
    assert result.exit_code == 0, result.output
    with np.load(saved) as a, np.load(back) as b:
        for l in range(2):
            np.testing.assert_array_equal(b[f"codes_{l}"], a[f"codes_{l}"])
            np.testing.assert_allclose(b[f"weights_{l}"], a[f"weights_{l}"])
        initial = np.load(saved)["codes_0"]
    assert np.any(initial != 0)


@pytest.mark.parametrize("problem, message", [
    ("missing", "does not exist"), ("garbage", "cannot read weight file"), ("shape", "has shape"),
    ("range", "outside formats.weight_acc"),
])
def test_bad_weight_files_are_refused_in_one_line(tmp_path, problem, message):
    from nfloop.model.config import ConfigError
    from nfloop.model.weights import load_weight_codes, save_weights
    config = default_config(load_task("digits"))
    path = tmp_path / "w.npz"
    real = [np.zeros((32, 65)), np.zeros((10, 33))]
    if problem == "garbage":
        path.write_bytes(b"not a zip")
    elif problem == "shape":
        save_weights(path, config, [np.zeros((32, 64)), real[1]])
    elif problem == "range":
        save_weights(path, config, [real[0] + 1e9, real[1]])
    with pytest.raises(ConfigError, match=message):
        load_weight_codes(path, config)


ODD_CONFIG = Path(__file__).with_name("data") / "odd.toml"
ADAPTIVE_CONFIG = Path(__file__).with_name("data") / "adaptive.toml"


def odd_task(path, rng, train=91):
    """Regression data for the odd config with a train split that is not a whole number of its mini-batches
    of 3, so that epochs end inside a mini-batch."""
    import csv
    x = rng.uniform(-3, 3, size=(train + 20, 5))
    y = np.stack([np.sin(x[:, 0]) * 0.8 + 0.1 * x[:, 1], np.tanh(x[:, 2] - x[:, 3])], axis=1)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([f"x{i}" for i in range(5)] + ["y0", "y1", "split"])
        for k in range(len(x)):
            writer.writerow([f"{v:.4f}" for v in [*x[k], *y[k]]] + ["test" if k >= train else "train"])
    return load_task(str(path))


def test_momentum_batch_sums_gains_and_lfsr_go_into_the_board_and_a_run_resumes_inside_a_batch(tmp_path, rng):
    from nfloop.boards.client import BoardClient
    from nfloop.boards.compare import compare_board, read_weights, write_state
    from nfloop.boards.protocol import Bank
    from nfloop.model.config import load_config
    from nfloop.model.fixed import FixedLearner
    # the odd config with adaptive gain every 4 steps: a resume at step 91 is inside a gain period as well as a
    # mini-batch
    config = load_config(ADAPTIVE_CONFIG)
    task = odd_task(tmp_path / "odd.csv", rng)
    shapes = [(n_out, n_in + 1) for n_in, n_out in zip(config.sizes, config.sizes[1:])]
    with VirtualBoard(config) as board, BoardClient(board.url) as client:
        # a state with every part non-zero goes in and comes back out
        model = FixedLearner(config)
        codes = rng.integers(-1000, 1000, size=(12, 5))
        model.train_order(codes, rng.integers(-100, 100, size=(12, 2)), np.arange(7))
        assert model.steps % config.batch_size and any(np.any(v) for v in model.velocity if v is not None)
        for l, gain in enumerate(model.gain):
            gain[0] = (l - 1, 1000 + l, 2000 - l)
        client.clear()
        write_state(client, model)
        for got, want in zip(read_weights(client, [(1, 3)] * len(shapes), Bank.GAIN), model.gain):
            np.testing.assert_array_equal(got, want)
        velocity = read_weights(client, shapes, Bank.VELOCITY)
        np.testing.assert_array_equal(velocity[0], model.velocity[0])
        for got, want in zip(read_weights(client, shapes, Bank.BATCH_SUM), model.batch_sum):
            np.testing.assert_array_equal(got, want)
        assert client.stats().steps == model.steps
        # one run of 3 epochs; the same in two parts, the second resumed from the first's checkpoint
        whole = compare_board(client, config, task, epochs=3, seed=2, run=RunFolder(tmp_path / "whole"))
        part = RunFolder(tmp_path / "part")
        first = compare_board(client, config, task, epochs=1, seed=2, run=part)
        state, done = part.checkpoint()
        assert done == 1 and int(state["steps"]) % config.batch_size != 0
        assert int(state["steps"]) % config.adaptive_gain.period and all(state[f"gain_{l}"][0, 1] for l in range(3))
        rest = compare_board(client, config, task, epochs=3, seed=2, run=part, resume=True)
    assert whole.mismatches == first.mismatches == rest.mismatches == 0, rest.first_mismatch
    assert rest.steps == whole.steps == 3 * 91 and len(rest.rows) == 3
    want, got = checkpoint(tmp_path / "whole"), checkpoint(tmp_path / "part")
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
