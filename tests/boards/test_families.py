"""boards/families: one module per FPGA family, found without a list; each board's platform builds its
family's DSP blocks, with the registers a build checks for, and its flip-flops; the iCE40's vector memories
are block RAMs."""

import pkgutil

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Elaboratable, Module, Signal
from nfloop.boards import families
from nfloop.boards.build import DSP_REGISTERS
from nfloop.boards.catalog import BOARDS
from nfloop.hdl.core import LearnerCore
from nfloop.hdl.fanout import registered_copies
from nfloop.hdl.mac import Multiplier
from nfloop.model.config import load_config
from nfloop.model.tasks import CONFIG_DIR


def test_every_module_is_a_family_of_its_name():
    modules = {info.name for info in pkgutil.iter_modules(families.__path__)}
    assert modules == set(families.FAMILIES) >= {"ice40", "ecp5", "gowin"}
    for name, chip in families.FAMILIES.items():
        assert chip.name == name
        assert DSP_REGISTERS[chip.dsp.primitive] is chip.dsp


def test_an_unknown_family_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown FPGA family 'xilinx'; nfloop builds for .*gowin"):
        families.family("xilinx")


def _parameters(text: str, cell: str) -> dict[str, str]:
    """The parameters of the one ``cell`` instance in RTLIL ``text``."""
    block = text[text.index(f"cell \\{cell} "):]
    block = block[:block.index("\n  end")]
    return dict(line.split()[1:3] for line in block.splitlines() if line.strip().startswith("parameter "))


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_the_boards_platforms_build_their_dsp_block_with_the_registers_checked(board):
    spec = BOARDS[board]
    dsp = spec.fpga_family.dsp
    text = rtlil.convert(Multiplier(dsp.width, 8), platform=spec.platform())
    parameters = _parameters(text, dsp.primitive)
    for name, value in dsp.registers.items():
        # RTLIL writes numbers as integers and text quoted
        assert parameters[f"\\{name}"].strip('"') == str(value), (name, parameters[f"\\{name}"])
    wider = rtlil.convert(Multiplier(dsp.width + 1, 8), platform=spec.platform())
    assert f"cell \\{dsp.primitive} " not in wider


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_registered_copies_are_the_familys_flip_flops(board):
    spec = BOARDS[board]
    platform = spec.platform()
    primitive = {"ice40": "SB_DFF", "ecp5": "TRELLIS_FF", "gowin": "DFF"}[spec.family]

    class Copies(Elaboratable):
        def elaborate(self, platform):
            m = Module()
            value = Signal(3)
            m.d.sync += value.eq(value + 1)
            registered_copies(m, platform, value, 2, "copy")
            return m

    text = rtlil.convert(Copies(), platform=platform, ports=[])
    assert text.count(f"cell \\{primitive} ") == 6


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_shallow_vector_memories_are_flip_flops_except_where_logic_runs_out_first(board):
    """The UP5K runs out of logic cells before block RAMs: there every vector memory is a block RAM; elsewhere
    the shallow ones (xor's activations, deltas and results) are flip-flops."""
    spec = BOARDS[board]
    core = LearnerCore(load_config(CONFIG_DIR / "xor.toml"), lanes=1)
    text = rtlil.convert(core, platform=spec.platform())
    in_logic = text.count('attribute \\ram_style "logic"')
    if spec.family == "ice40":
        assert in_logic == 0
    else:
        assert in_logic >= 3
