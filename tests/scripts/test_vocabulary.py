"""One command-line vocabulary: the same options, words and error lines in every command."""

from __future__ import annotations

import json
import socket

import click
import pytest
from click.testing import CliRunner
from nfloop.scripts.cli import cli


def run(*args):
    return CliRunner().invoke(cli, list(args), prog_name="nfloop")


def commands():
    """Every command as its argument path: ("train",), ("board", "list"), ..."""
    found = []

    def walk(group, path):
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                walk(command, path + (name,))
            else:
                found.append(path + (name,))
    walk(cli, ())
    return found


def command_object(path):
    command = cli
    for name in path:
        command = command.commands[name]
    return command


@pytest.mark.parametrize("path", commands(), ids=" ".join)
def test_every_command_takes_dash_h(path):
    short, long = run(*path, "-h"), run(*path, "--help")
    assert short.exit_code == 0 and short.output == long.output and "Usage:" in short.output


@pytest.mark.parametrize("path", commands(), ids=" ".join)
def test_every_option_has_help(path):
    missing = [p.name for p in command_object(path).params if isinstance(p, click.Option) and not p.help]
    assert not missing, f"nfloop {' '.join(path)}: options without help: {missing}"


@pytest.mark.parametrize("path", [("demo",), ("build",), ("explore",), ("config",), ("verilog",)], ids=" ".join)
def test_every_output_option_is_dash_o_output(path):
    names = {n for p in command_object(path).params for n in p.opts}
    assert {"-o", "--output"} <= names


def test_usage_errors_read_like_every_other_error():
    result = run("train", "--task", "xor", "--arith", "decimal")
    assert result.exit_code == 2
    assert result.output.startswith("error: Invalid value for '--arith'") and "nfloop train -h" in result.output
    assert "Error:" not in result.output


def test_lanes_offer_the_powers_of_two():
    result = run("sim", "--task", "xor", "--lanes", "3")
    assert result.exit_code == 2 and "'3' is not one of '1', '2', '4', '8', '16', '32', '64'" in result.output
    assert "[1|2|4|8|16|32|64]" in run("sim", "-h").output


@pytest.mark.parametrize("command", ["train", "sim", "compare"])
def test_zero_epochs_is_refused_alike(command):
    extra = ["--port", "socket://127.0.0.1:1"] if command == "compare" else []
    result = run(command, "--task", "xor", "--epochs", "0", *extra)
    assert result.exit_code == 2 and "'--epochs'" in result.output and "x>=1" in result.output


def test_config_output_is_not_overwritten_without_force(tmp_path):
    target = tmp_path / "my.toml"
    target.write_text("keep me")
    refused = run("config", "--task", "xor", "-o", str(target))
    assert refused.exit_code == 2 and "--force" in refused.output and target.read_text() == "keep me"
    assert run("config", "--task", "xor", "-o", str(target), "--force").exit_code == 0
    assert "[[layers]]" in target.read_text() or "layers" in target.read_text()


def test_plot_without_suffix_says_the_file_it_wrote(tmp_path):
    result = run("train", "--task", "xor", "--epochs", "2", "--plot", str(tmp_path / "curves"))
    assert result.exit_code == 0 and (tmp_path / "curves.png").is_file()
    assert f"learning curves: {tmp_path / 'curves.png'}" in result.output.replace("\n", "")


def test_an_output_folder_that_cannot_exist_is_one_line():
    result = run("demo", "--quick", "--output", "/dev/null/x")
    assert result.exit_code == 2 and "cannot create the folder /dev/null/x" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2


def test_learners_are_named_as_the_option_names_them():
    result = run("train", "--task", "xor", "--epochs", "1")
    assert "feedback" in result.output and " loop " not in result.output


def test_counts_are_singular_when_one(tmp_path):
    result = run("verilog", "--config", "xor", "--lanes", "1", "-o", str(tmp_path / "core.v"))
    assert result.exit_code == 0 and "(1 lane," in result.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_tcp_address_without_scheme_says_socket():
    result = run("compare", "--task", "xor", "--port", "127.0.0.1:4567")
    assert result.exit_code == 2 and "socket://127.0.0.1:4567" in result.output


def test_a_closed_virtual_board_port_hints_at_serve_sim():
    port = free_port()
    result = run("compare", "--task", "xor", "--port", f"socket://127.0.0.1:{port}")
    assert result.exit_code == 3 and f"nfloop serve-sim --port {port}" in result.output   # the link failed


@pytest.mark.slow
@pytest.mark.parametrize("seed", [None, 3])
def test_the_same_seed_trains_the_same_model_in_train_and_sim(seed):
    """--seed sets the initial weights and the sample order in every command."""
    flags = ["--task", "xor", "--epochs", "2"] + ([] if seed is None else ["--seed", str(seed)])
    trained = json.loads(run("train", "--arith", "fixed", "--json", *flags).stdout)
    simulated = json.loads(run("sim", "--json", *flags).stdout)
    assert simulated["mismatches"] == 0
    assert trained["test_mse"] == simulated["model_test_mse"]


@pytest.mark.slow
def test_verilator_builds_say_what_they_build():
    result = run("sim", "--task", "xor", "--lanes", "2", "--steps", "3")
    assert result.exit_code == 0 and "Verilator model of the xor core, 2 lanes" in result.output
