"""The learner core compiled with Verilator, driven from Python a block of samples at a time.

The Verilog is built once per (config, lanes, tracing) into a shared library
in the nfloop cache (see :func:`nfloop.hdl.toolchain.cache_dir`) and loaded
with ctypes; the clock runs in C++ (``hdl/harness.cpp``). Weights are loaded
through the core's weight port, so one build serves every initial weight set.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..model.config import LearnerConfig
from ..model.fixed import FixedLearner
from ..model.init import initial_weights
from .layout import CoreLayout
from .toolchain import MAKE_FIXES, ToolchainError, build_lock, cache_dir, verilator_env, verilator_root
from .verilog import TOP_NAME, core_verilog

__all__ = ["VerilatedCore", "build_library"]

HARNESS = Path(__file__).with_name("harness.cpp")
_I64P = ctypes.POINTER(ctypes.c_int64)


def _hardware_config(config: LearnerConfig) -> LearnerConfig:
    """The config less what only sets initial weights: those are loaded at run time."""
    return replace(config, init_seed=0, init_scale=1.0, name="",
                   layers=tuple(replace(layer, init=None) for layer in config.layers))


TRACE_KINDS = {None: 0, "fst": 1, "vcd": 2}


def trace_kind(path) -> str | None:
    """``fst`` or ``vcd`` from a waveform file name."""
    if path is None:
        return None
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in ("fst", "vcd"):
        raise ToolchainError(f"trace file {str(path)!r} must end in .fst or .vcd")
    return suffix


def build_library(config: LearnerConfig, lanes: int, trace: str | None = None, log=None) -> Path:
    """Compile the core and harness into a shared library, or reuse a cached one.

    ``trace``: None, ``"fst"`` or ``"vcd"``.
    """
    hw_config = _hardware_config(config)
    layout = CoreLayout(hw_config, lanes)
    zeros = [np.zeros((layout.n_out(l), layout.n_in(l) + 1), dtype=np.int64) for l in range(layout.layers)]
    verilog = core_verilog(hw_config, lanes, zeros)
    f = config.formats
    defines = {"N_IN": config.inputs, "N_OUT": config.outputs,
               "SAMPLE_BITS": max(f.input.bits, f.activation.bits), "ACT_BITS": f.activation.bits,
               "ERR_BITS": f.error.bits, "ACC_BITS": f.weight_acc.bits, "TRACE": TRACE_KINDS[trace]}
    root = verilator_root()
    key = hashlib.sha256("\n".join([verilog, HARNESS.read_text(), repr(sorted(defines.items())),
                                    str(root)]).encode()).hexdigest()[:20]
    folder = cache_dir() / "verilator" / key
    library = folder / "libnfloop_core.so"
    if library.is_file():
        return library
    folder.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(folder.parent / f"{key}.lock"):      # another process may be building the same core
        if library.is_file():
            return library
        work = folder.with_name(key + ".tmp")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        (work / f"{TOP_NAME}.v").write_text(verilog)
        cflags = " ".join(["-fPIC", "-O2"] + [f"-D{k}={v}" for k, v in defines.items()])
        command = ["verilator", "--cc", "--exe", "--build", f"{TOP_NAME}.v", str(HARNESS),
                   "--top-module", TOP_NAME, "--prefix", "Vnfloop_core", "-O3", "--x-assign", "fast",
                   "--x-initial", "fast", "--noassert", "-Wno-fatal", "-Wno-lint", "-Wno-style",
                   "-CFLAGS", cflags, "-LDFLAGS", "-shared", "-o", library.name,
                   "-j", str(max(1, min(2, os.cpu_count() or 1))), "--Mdir", "obj"]
        for name, value in MAKE_FIXES.items():
            command += ["-MAKEFLAGS", f"{name}={value}"]
        if trace:
            command.insert(1, "--trace-fst" if trace == "fst" else "--trace")
        start = time.perf_counter()
        result = subprocess.run(command, cwd=work, env=verilator_env(), capture_output=True, text=True)
        if result.returncode != 0 or not (work / "obj" / library.name).is_file():
            (work / "build.log").write_text(result.stdout + result.stderr)
            if trace == "fst" and "lz4.h" in result.stdout + result.stderr:
                raise ToolchainError("FST waveforms need the lz4 C headers for Verilator's FST writer, and "
                                     "this machine has none; write a VCD instead: --trace FILE.vcd")
            raise ToolchainError(f"Verilator build failed (log: {work / 'build.log'}):\n"
                                 + (result.stderr or result.stdout)[-3000:])
        shutil.copy(work / "obj" / library.name, work / library.name)
        shutil.rmtree(work / "obj")
        shutil.rmtree(folder, ignore_errors=True)
        work.rename(folder)
        if log:
            log(f"built the Verilator model in {time.perf_counter() - start:.1f} s")
    return library


class VerilatedCore:
    """One simulated core: train, read and write weights, counters.

    Parameters
    ----------
    config : LearnerConfig
    lanes : int
    weights : list of int64 arrays, optional
        Initial weight_acc codes; default: the config's initial weights.
    trace : path, optional
        Write a waveform of everything the core does: FST (``.fst``) or VCD (``.vcd``).
    """

    def __init__(self, config: LearnerConfig, lanes: int = 1, weights=None, trace=None, log=None):
        self._handle = None
        self.config = config
        self.layout = CoreLayout(config, lanes)
        self._lib = ctypes.CDLL(str(build_library(config, lanes, trace=trace_kind(trace), log=log)))
        lib = self._lib
        lib.nf_new.restype = ctypes.c_void_p
        lib.nf_new.argtypes = [ctypes.c_char_p]
        lib.nf_free.argtypes = [ctypes.c_void_p]
        for name in ("nf_cycles", "nf_steps", "nf_step_cycles"):
            getattr(lib, name).restype = ctypes.c_uint64
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        lib.nf_train.restype = ctypes.c_int64
        lib.nf_train.argtypes = [ctypes.c_void_p, ctypes.c_int64, _I64P, _I64P, _I64P, _I64P, ctypes.c_uint64,
                                 ctypes.c_int]
        for name in ("nf_read_weights", "nf_write_weights"):
            getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, _I64P]
        lib.nf_clear.argtypes = [ctypes.c_void_p]
        self._handle = lib.nf_new(str(trace).encode() if trace else None)
        if weights is None:
            weights = FixedLearner.quantise_weights(config, initial_weights(config))
        self.write_weights(weights)
        self.clear()

    def close(self):
        if self._handle:
            self._lib.nf_free(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    @property
    def cycles(self) -> int:
        """Every clock cycle simulated so far."""
        return self._lib.nf_cycles(self._handle)

    @property
    def steps(self) -> int:
        return self._lib.nf_steps(self._handle)

    @property
    def step_cycles(self) -> int:
        """Cycles spent inside training steps (the core's own counter)."""
        return self._lib.nf_step_cycles(self._handle)

    def train(self, xs: np.ndarray, ys: np.ndarray, learn: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Train on samples (input / activation codes); every step's predictions and errors.

        With ``learn=False`` the core only infers: the weights stay as they are.
        """
        xs = np.ascontiguousarray(xs, dtype=np.int64)
        ys = np.ascontiguousarray(ys, dtype=np.int64)
        n = len(xs)
        if xs.shape != (n, self.config.inputs) or ys.shape != (n, self.config.outputs):
            raise ValueError(f"samples must be ({n}, {self.config.inputs}) and ({n}, {self.config.outputs}), "
                             f"not {xs.shape} and {ys.shape}")
        predictions = np.zeros((n, self.config.outputs), dtype=np.int64)
        errors = np.zeros_like(predictions)
        got = self._lib.nf_train(self._handle, n, _ptr(xs), _ptr(ys), _ptr(predictions), _ptr(errors),
                                 1_000_000, int(learn))
        if got != n * self.config.outputs:
            raise RuntimeError(f"the simulated core stopped answering after {self.steps} steps")
        return predictions, errors

    def infer(self, xs: np.ndarray, ys: np.ndarray | None = None) -> np.ndarray:
        """Predictions for inputs, computed by the core without learning."""
        if ys is None:
            ys = np.zeros((len(xs), self.config.outputs), dtype=np.int64)
        return self.train(xs, ys, learn=False)[0]

    def read_weights(self) -> list[np.ndarray]:
        out = []
        for l in range(self.layout.layers):
            w = np.zeros((self.layout.n_out(l), self.layout.n_in(l) + 1), dtype=np.int64)
            self._lib.nf_read_weights(self._handle, l, w.shape[0], w.shape[1], _ptr(w))
            out.append(w)
        return out

    def write_weights(self, weights: list[np.ndarray]):
        for l, w in enumerate(weights):
            w = np.ascontiguousarray(w, dtype=np.int64)
            self._lib.nf_write_weights(self._handle, l, w.shape[0], w.shape[1], _ptr(w))

    def clear(self):
        """Zero momentum and batch sums, reset the LFSR and counters: the model's starting state."""
        self._lib.nf_clear(self._handle)


def _ptr(array: np.ndarray):
    return array.ctypes.data_as(_I64P)
