"""boards/clocks.py and each family's PLL: the settings are the ones icepll, ecppll and gowin_pll pick; each
board's clock comes from one."""

import re
import subprocess
from pathlib import Path

import pytest
from nfloop.boards.catalog import BOARDS
from nfloop.boards.families import ecp5, gowin, ice40
from nfloop.boards.top import BoardTop
from nfloop.model.config import load_config
from nfloop.model.tasks import CONFIG_DIR
from nfloop.sim.toolchain import executable


def tool(name, *args) -> str:
    path = executable(name)
    assert path is not None, f"{name} is missing: reinstall nfloop with pip install -e ."
    return subprocess.run([path, *args], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("f_in, f_out", [(12, 24), (12, 30), (12, 36), (12, 18)])
def test_ice40_settings_are_icepll_s(f_in, f_out):
    out = tool("yowasp-icepll", "-i", str(f_in), "-o", str(f_out))
    expected = {name: int(value) for name, value in re.findall(r"^(DIVR|DIVF|DIVQ|FILTER_RANGE):\s+(\d+)", out, re.M)}
    settings = ice40.pll(f_in * 1_000_000, f_out * 1_000_000)
    assert settings.parameters == expected
    assert f"{settings.output_hz / 1e6:.3f} MHz (achieved)" in out


@pytest.mark.parametrize("f_in, f_out", [(25, 100), (25, 105), (25, 120), (25, 135), (48, 100), (48, 120)])
def test_ecp5_settings_are_ecppll_s(f_in, f_out):
    out = tool("yowasp-ecppll", "-i", str(f_in), "-o", str(f_out))
    names = {"Refclk divisor": "CLKI_DIV", "Feedback divisor": "CLKFB_DIV", "clkout0 divisor": "CLKOP_DIV"}
    expected = {names[name]: int(value) for name, value in re.findall(r"^(\w[\w ]+divisor): (\d+)", out, re.M)}
    settings = ecp5.pll(f_in * 1_000_000, f_out * 1_000_000)
    assert {k: settings.parameters[k] for k in expected} == expected
    assert f"clkout0 frequency: {settings.output_hz / 1e6:g} MHz" in out


#: apycula's names for the devices
GOWIN_TOOL_DEVICE = {"GW1NR-9C": "GW1NR-9 C6/I5", "GW2A-18C": "GW2A-18 C8/I7"}


@pytest.mark.parametrize("device", sorted(GOWIN_TOOL_DEVICE))
@pytest.mark.parametrize("f_out", [54, 81, 100, 108, 40.5])
def test_gowin_settings_are_gowin_pll_s(device, f_out):
    out = tool("gowin_pll", "-d", GOWIN_TOOL_DEVICE[device], "-i", "27", "-o", str(f_out))
    expected = {name: int(value) for name, value in re.findall(r"\.(IDIV_SEL|FBDIV_SEL|ODIV_SEL)\((\d+)\)", out)}
    settings = gowin.pll(27_000_000, int(f_out * 1_000_000), device)
    assert {k: settings.parameters[k] for k in expected} == expected and len(expected) == 3
    achieved = float(re.search(r"Achieved output frequency:\s+([\d.]+) MHz", out).group(1))
    assert round(settings.output_hz / 1e6, 3) == achieved


def test_impossible_clocks_are_refused():
    with pytest.raises(ValueError, match="no ECP5 PLL setting makes 1000 MHz from 25 MHz \\(the nearest is 400 MHz\\)"):
        ecp5.pll(25_000_000, 1_000_000_000)


@pytest.mark.parametrize("board", list(BOARDS))
def test_each_board_runs_from_its_pll(board, tmp_path):
    """The board's clock is exactly a PLL output of its oscillator, and the build plan instantiates the PLL."""
    spec = BOARDS[board]
    platform = spec.platform()
    assert spec.oscillator_hz == platform.default_clk_frequency
    assert spec.pll.output_hz == spec.clock_hz
    plan = platform.build(BoardTop(load_config(CONFIG_DIR / "xor.toml"), spec), name="nfloop", do_build=False)
    primitive = {"ice40": "SB_PLL40_PAD", "ecp5": "EHXPLLL", "gowin": "rPLL"}[spec.family]
    assert primitive in plan.files["nfloop.il"]
    constraints = next(text for name, text in plan.files.items()
                       if Path(name).suffix in (".pcf", ".lpf", ".cst", ".py"))
    assert constraints
