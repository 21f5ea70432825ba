"""The virtual board (board top in Verilator behind a TCP socket) against the fixed-point model."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from nfloop.boards import compare as compare_module
from nfloop.boards.catalog import VIRTUAL
from nfloop.boards.client import BoardClient, DeviceError
from nfloop.boards.compare import CompareError, compare_board, read_weights
from nfloop.boards.geometry import BoardGeometry, config_hash
from nfloop.boards.protocol import Status
from nfloop.boards.virtual import VirtualBoard
from nfloop.model import default_config, load_task
from nfloop.model.config import load_config
from nfloop.model.tasks import CONFIG_DIR
from nfloop.scripts.cli import cli

ODD_CONFIG = Path(__file__).with_name("data") / "odd.toml"


@pytest.fixture(scope="module")
def digits_board():
    with VirtualBoard(default_config(load_task("digits"))) as board:
        yield board


@pytest.fixture(scope="module")
def odd_board():
    with VirtualBoard(load_config(ODD_CONFIG)) as board:
        yield board


def odd_data(path: Path, rng) -> Path:
    """Regression data for the odd config: 5 features, 2 targets, 90 train and 30 test rows."""
    x = rng.uniform(-3, 3, size=(120, 5))
    y = np.stack([np.sin(x[:, 0]) * 0.8 + 0.1 * x[:, 1], np.tanh(x[:, 2] - x[:, 3])], axis=1)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([f"x{i}" for i in range(5)] + ["y0", "y1", "split"])
        for k in range(120):
            writer.writerow([f"{v:.4f}" for v in [*x[k], *y[k]]] + ["test" if k >= 90 else "train"])
    return path


# The digits board is a large Verilator build; `nfloop demo` trains digits on it bit for bit before every
# quick run (README), and --full runs these two tests as well.
@pytest.mark.slow
def test_digits_two_epochs_bit_exact(digits_board):
    task = load_task("digits")
    config = default_config(task)
    with BoardClient(digits_board.url) as client:
        result = compare_board(client, config, task, epochs=2)
    assert result.first_mismatch is None, str(result.first_mismatch)
    assert (result.epochs, result.steps, result.mismatches) == (2, 2800, 0)
    assert [row.weights_equal for row in result.rows] == [True, True]
    assert result.rows[1].device_error_sum < result.rows[0].device_error_sum      # it learns
    assert result.test_accuracy == result.model_test_accuracy and result.test_accuracy > 0.9
    assert result.device_cycles_per_step > 0


def test_unseen_config_and_csv_bit_exact(odd_board, tmp_path, rng):
    config = load_config(ODD_CONFIG)
    task = load_task(str(odd_data(tmp_path / "odd.csv", rng)))
    geometry = BoardGeometry(config, VIRTUAL)
    assert not geometry.packed_inputs
    with BoardClient(odd_board.url) as client:
        result = compare_board(client, config, task, epochs=4, seed=3)
    assert result.first_mismatch is None, str(result.first_mismatch)
    assert (result.steps, result.mismatches, result.test_mismatches) == (360, 0, 0)


def test_a_wrong_model_is_caught(odd_board, tmp_path, rng, monkeypatch):
    """A model with another output gain must part from the board, and the report must say where."""
    config = load_config(ODD_CONFIG)
    task = load_task(str(odd_data(tmp_path / "odd.csv", rng)))
    other = config.with_changes(layers=config.layers[:2] + (replace(config.layers[2], gain_shift=7),))
    real_learner = compare_module.FixedLearner
    monkeypatch.setattr(compare_module, "FixedLearner",
                        lambda cfg, engine="compiled": real_learner(other, engine=engine))
    with BoardClient(odd_board.url) as client:
        result = compare_board(client, config, task, epochs=2)
    assert result.mismatches > 0
    first = result.first_mismatch
    assert first.step == 89 and first.what in ("weight", "epoch_error_sum") and first.hw != first.model


def test_a_board_of_another_config_is_refused(odd_board):
    config = load_config(ODD_CONFIG)
    other = config.with_changes(layers=config.layers[:2] + (replace(config.layers[2], gain_shift=7),))
    assert config_hash(other) != config_hash(config)
    assert config_hash(config.with_changes(init_seed=5, name="renamed")) == config_hash(config)
    with BoardClient(odd_board.url) as client, pytest.raises(CompareError, match="another config"):
        compare_board(client, other, load_task("xor"))


def test_identify_and_errors_leave_the_board_working(odd_board):
    config = load_config(ODD_CONFIG)
    geometry = BoardGeometry(config, VIRTUAL)
    with BoardClient(odd_board.url) as client:
        identity = client.identify()
        assert identity.config_hash == config_hash(config)
        assert identity.sizes == config.sizes and identity.lanes == VIRTUAL.lanes
        assert identity.capacity == geometry.capacity and identity.clock_hz == VIRTUAL.clock_hz
        shapes = [(n_out, n_in + 1) for n_in, n_out in zip(config.sizes, config.sizes[1:])]
        before = read_weights(client, shapes)
        for call, status in [
            (lambda: client.read_weights(3, 0, 0, 1), Status.OUT_OF_RANGE),            # no layer 3
            (lambda: client.read_weights(0, 7, 0, 1), Status.OUT_OF_RANGE),            # 7 rows only
            (lambda: client.read_weights(0, 6, 5, 2), Status.OUT_OF_RANGE),            # runs off the layer
            (lambda: client.write_weights(2, 0, 0, [1 << 23]), Status.OUT_OF_RANGE),   # 24-bit accumulators
            (lambda: client.load_data(geometry.capacity, np.zeros((1, 5)), np.zeros((1, 2)), packed=False),
             Status.OUT_OF_RANGE),
            (lambda: client.load_data(0, np.full((1, 5), 512), np.zeros((1, 2)), packed=False),
             Status.OUT_OF_RANGE),
            (lambda: client.load_order(0, [geometry.capacity]), Status.OUT_OF_RANGE),
            (lambda: client.train(0, 1), Status.OUT_OF_RANGE),
            (lambda: client.infer([1, 2, 3]), Status.BAD_LENGTH),
            (lambda: client.request(0x42), Status.UNKNOWN_COMMAND),
        ]:
            with pytest.raises(DeviceError) as error:
                call()
            assert error.value.status == status
        assert [np.array_equal(a, b) for a, b in zip(read_weights(client, shapes), before)] == [True] * 3


@pytest.mark.slow
def test_data_larger_than_the_board_goes_in_parts(tmp_path, rng):
    """A board that holds 32 samples trains 90 a part at a time, still bit-exact."""
    config = load_config(ODD_CONFIG)
    small = replace(VIRTUAL, data_words=256)
    assert BoardGeometry(config, small).capacity == 32
    task = load_task(str(odd_data(tmp_path / "odd.csv", rng)))
    with VirtualBoard(config, spec=small) as board, BoardClient(board.url) as client:
        result = compare_board(client, config, task, epochs=2)
    assert result.first_mismatch is None, str(result.first_mismatch)
    assert (result.steps, result.mismatches) == (180, 0)


def test_compare_command(odd_board, tmp_path, rng):
    data = odd_data(tmp_path / "odd.csv", rng)
    args = ["compare", "--port", odd_board.url, "--task", str(data), "--config", str(ODD_CONFIG), "--epochs", "2"]
    result = CliRunner().invoke(cli, args + ["--json", "--run-dir", str(tmp_path / "run-json")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["epochs"], summary["steps"], summary["mismatches"], summary["first_mismatch"]) == (2, 180, 0, None)
    assert summary["device_cycles_per_step"] > 0 and summary["test_accuracy"] is None
    table = CliRunner().invoke(cli, args + ["--run-dir", str(tmp_path / "run-table")])
    assert table.exit_code == 0 and "bit-exact: 180 steps, 2 epochs, 0 mismatches" in table.stdout
    refused = CliRunner().invoke(cli, ["compare", "--port", odd_board.url, "--task", "xor",
                                       "--run-dir", str(tmp_path / "refused")])
    assert refused.exit_code == 2 and "built from another config" in refused.stderr
    assert not (tmp_path / "refused").exists(), "a compare that could not start left a run folder"
    assert "restart nfloop serve-sim with --config" in refused.stderr
    assert "Traceback" not in refused.output


def test_serve_sim_refuses_a_taken_port(odd_board):
    result = CliRunner().invoke(cli, ["serve-sim", "--config", str(ODD_CONFIG), "--port", str(odd_board.port)])
    assert result.exit_code == 2 and f"port {odd_board.port} is in use" in result.stderr


@pytest.mark.slow
def test_serve_sim_waveform_stops_at_its_limit(tmp_path):
    """A virtual board's waveform stops growing at --trace-limit, and the board says so."""
    config = load_config(CONFIG_DIR / "xor.toml")
    said = []
    vcd = tmp_path / "board.vcd"
    with VirtualBoard(config, trace=vcd, trace_limit_mb=1, log=said.append) as board, \
            BoardClient(board.url) as client:
        result = compare_board(client, config, load_task("xor"), epochs=40)
        assert result.mismatches == 0
    assert 1e6 <= vcd.stat().st_size < 3e6
    assert any("--trace-limit" in line and "recording stopped" in line for line in said), said


@pytest.mark.slow
def test_compare_trains_what_train_trains_with_the_same_seed(digits_board, tmp_path):
    """--seed means the same in compare as in train: the same initial weights and sample order."""
    runner = CliRunner()
    flags = ["--task", "digits", "--epochs", "1", "--seed", "3", "--json"]
    compared = runner.invoke(cli, ["compare", "--port", digits_board.url, *flags, "--run-dir", str(tmp_path / "r")])
    trained = runner.invoke(cli, ["train", "--arith", "fixed", *flags])
    assert compared.exit_code == 0, compared.output
    board, model = json.loads(compared.stdout), json.loads(trained.stdout)
    assert board["mismatches"] == 0 and board["model_test_accuracy"] == model["test_accuracy"]


@pytest.mark.slow
def test_serve_sim_trace_steps_record_only_their_window(tmp_path):
    config = load_config(CONFIG_DIR / "xor.toml")
    sizes = {}
    for name, window in (("whole", None), ("window", (10, 11))):
        vcd = tmp_path / f"{name}.vcd"
        with VirtualBoard(config, trace=vcd, trace_steps=window) as board, BoardClient(board.url) as client:
            assert compare_board(client, config, load_task("xor"), epochs=5).mismatches == 0
        sizes[name] = vcd.stat().st_size
    assert sizes["window"] < sizes["whole"] / 4


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"     # a zombie has exited
    except FileNotFoundError:
        return True


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_a_stopped_serve_sim_leaves_no_board_and_frees_its_port(signal_number):
    """serve-sim stops its board on SIGTERM and SIGHUP; on SIGKILL the board notices its parent is gone."""
    nfloop = str(Path(sys.executable).with_name("nfloop"))
    server = subprocess.Popen([nfloop, "serve-sim", "--config", "xor", "--port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        lines = []
        while not lines or "try:" not in lines[-1]:         # the last line serve-sim prints when it is up
            lines.append(server.stdout.readline())
            assert lines[-1] or server.poll() is None, "serve-sim did not start"
        port = int("".join(lines).split("socket://127.0.0.1:")[1].split()[0])
        boards = _children(server.pid)
        assert boards, "no virtual board process under serve-sim"
        server.send_signal(signal_number)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (all(_gone(b) for b in boards) and _port_free(port)):
            time.sleep(0.1)
        assert all(_gone(b) for b in boards), "the virtual board outlived serve-sim"
        assert _port_free(port), f"port {port} still taken 10 s after the signal"
    finally:
        server.kill()
        server.wait()


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
def test_a_crashed_simulator_makes_serve_sim_exit_3_and_say_so():
    nfloop = str(Path(sys.executable).with_name("nfloop"))
    server = subprocess.Popen([nfloop, "serve-sim", "--config", "xor", "--port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or "try:" not in lines[-1]:
            lines.append(server.stdout.readline())
            assert lines[-1] or server.poll() is None, "serve-sim did not start"
        boards = _children(server.pid)
        assert boards, "no virtual board process under serve-sim"
        os.kill(boards[0], signal.SIGSEGV)
        _, err = server.communicate(timeout=20)
        assert server.returncode == 3
        assert "stopped by signal SIGSEGV" in " ".join(err.split()) and "Traceback" not in err
    finally:
        server.kill()
        server.wait()
