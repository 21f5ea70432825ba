"""Gate-level virtual boards: a board's synthesised netlist, simulated with Yosys's cell models and nfloop's
models of the cells Yosys has only as black boxes, trains bit for bit as the model does; so does the core
alone (nfloop sim --netlist); families without cell models are refused in one line."""

import json
import re
from dataclasses import replace

import pytest
from click.testing import CliRunner
from nfloop.boards.catalog import BOARDS
from nfloop.boards.client import BoardClient
from nfloop.boards.compare import check_weights, compare_board
from nfloop.boards.families import FAMILIES
from nfloop.boards.netlist import BIT_CYCLES, cell_models, netlist_spec
from nfloop.boards.virtual import VirtualBoard
from nfloop.model.config import ConfigError, load_config
from nfloop.model.fixed import FixedLearner
from nfloop.model.init import initial_weights
from nfloop.model.tasks import CONFIG_DIR, load_task
from nfloop.scripts.cli import cli


@pytest.mark.slow
@pytest.mark.parametrize("board", ["icebreaker", "orangecrab", "tangnano9k"])
def test_each_familys_netlist_trains_xor_bit_for_bit(board):
    """iCE40: SB_MAC16, SB_RAM40_4K and SB_SPRAM256KA as Yosys's models have them; ECP5: DP16KD in its
    true and pseudo dual-port modes and MULT18X18D as ecp5_sim.v models them; Gowin: SP, SPX9, SDPX9B,
    DPX9B and MULT18X18 as gowin_sim.v models them; and every LUT, carry and flip-flop."""
    config = load_config(CONFIG_DIR / "xor.toml")
    spec = BOARDS[board]
    with VirtualBoard(config, spec=spec, netlist=True) as virtual, BoardClient(virtual.url) as client:
        # as every host command does, identify first: the first request may meet a line still settling (a
        # freshly started gate-level iCE40 board left its first request unanswered for the client's 10 s)
        client.identify()
        # the block RAMs' initial contents: the board starts with the config's weights
        check_weights(client, FixedLearner.quantise_weights(config, initial_weights(config)))
        result = compare_board(client, config, load_task("xor"), epochs=3)
    assert (result.mismatches, result.epochs, result.steps) == (0, 3, 12)


@pytest.mark.slow
def test_sim_runs_the_core_as_a_netlist():
    result = CliRunner().invoke(cli, ["sim", "--task", "xor", "--lanes", "2", "--netlist", "ecp5", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["mismatches"], summary["steps"]) == (0, 4 * load_task("xor").default_epochs)


def test_cell_models_replace_yosyss_black_boxes_and_inline_includes():
    for family in ("ecp5", "gowin"):
        text = cell_models(family)
        assert "`include" not in text
        for cell in ("DP16KD", "MULT18X18D") if family == "ecp5" else ("SP", "SPX9", "SDPX9B", "DPX9B", "MULT18X18"):
            assert len(re.findall(rf"^module\s+{cell}\b", text, re.M)) == 1, (family, cell)
        assert not re.search(r"\(\*\s*blackbox\s*\*\)\s*module\s+(DP16KD|SP|SPX9)\b", text)


def test_the_netlist_differs_from_the_build_only_in_its_uart():
    spec = BOARDS["icebreaker"]
    gate = netlist_spec(spec)
    assert round(gate.clock_hz / gate.baud) == BIT_CYCLES
    assert (gate.clock_hz, gate.lanes, gate.data_words, gate.data_memory, gate.narrow) == \
        (spec.clock_hz, spec.lanes, spec.data_words, spec.data_memory, spec.narrow)


def test_families_without_cell_models_are_refused(monkeypatch):
    monkeypatch.setitem(FAMILIES, "gowin", replace(FAMILIES["gowin"], cell_models=()))
    with pytest.raises(ConfigError, match="no simulation models of the gowin cells"):
        netlist_spec(BOARDS["tangnano9k"])
    for command in (["serve-sim", "--board", "tangnano9k", "--netlist"],
                    ["sim", "--task", "xor", "--netlist", "gowin"]):
        result = CliRunner().invoke(cli, command + ["--config", "xor"])
        assert result.exit_code == 2 and "no simulation models" in result.stderr, command


def test_sim_refuses_an_unknown_family():
    result = CliRunner().invoke(cli, ["sim", "--task", "xor", "--netlist", "virtex"])
    assert result.exit_code == 2 and "unknown FPGA family 'virtex'" in result.stderr


def test_board_and_netlist_go_together():
    result = CliRunner().invoke(cli, ["serve-sim", "--board", "icebreaker"])
    assert result.exit_code == 2 and "--board and --netlist go together" in result.stderr
