"""Gate-level virtual boards: the iCEBreaker's synthesised netlist, simulated with Yosys's cell models,
trains bit for bit as the model does; families without cell models are refused in one line."""

import pytest
from click.testing import CliRunner
from nfloop.boards.catalog import BOARDS
from nfloop.boards.client import BoardClient
from nfloop.boards.compare import compare_board
from nfloop.boards.netlist import BIT_CYCLES, netlist_spec
from nfloop.boards.virtual import VirtualBoard
from nfloop.model.config import ConfigError, load_config
from nfloop.model.tasks import CONFIG_DIR, load_task
from nfloop.scripts.cli import cli


@pytest.mark.slow
def test_the_icebreaker_netlist_trains_xor_bit_for_bit():
    """SB_MAC16, SB_RAM40_4K and SB_SPRAM256KA as Yosys's models have them, and every LUT and flip-flop."""
    config = load_config(CONFIG_DIR / "xor.toml")
    spec = BOARDS["icebreaker"]
    with VirtualBoard(config, spec=spec, netlist=True) as board, BoardClient(board.url) as client:
        result = compare_board(client, config, load_task("xor"), epochs=3)
    assert (result.mismatches, result.epochs, result.steps) == (0, 3, 12)


def test_the_netlist_differs_from_the_build_only_in_its_uart():
    spec = BOARDS["icebreaker"]
    gate = netlist_spec(spec)
    assert round(gate.clock_hz / gate.baud) == BIT_CYCLES
    assert (gate.clock_hz, gate.lanes, gate.data_words, gate.data_memory, gate.narrow) == \
        (spec.clock_hz, spec.lanes, spec.data_words, spec.data_memory, spec.narrow)


@pytest.mark.parametrize("board", ["ulx3s", "tangnano9k"])
def test_families_without_cell_models_are_refused(board):
    with pytest.raises(ConfigError, match="Yosys ships no simulation models for every .* cell"):
        netlist_spec(BOARDS[board])
    result = CliRunner().invoke(cli, ["serve-sim", "--board", board, "--netlist", "--config", "xor"])
    assert result.exit_code == 2 and "no simulation models" in result.stderr


def test_board_and_netlist_go_together():
    result = CliRunner().invoke(cli, ["serve-sim", "--board", "icebreaker"])
    assert result.exit_code == 2 and "--board and --netlist go together" in result.stderr
