"""The learner core compiled with Verilator, driven from Python a block of samples at a time.

The Verilog is built once per (config, lanes, tracing) into a shared library
in the nfloop cache (see :func:`nfloop.sim.toolchain.cache_dir`) and loaded
with ctypes; the clock runs in C++ (``sim/harness.cpp``). Weights are loaded
through the core's weight port, so one build serves every initial weight set.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from ..hdl.layout import CoreLayout
from ..model.config import LearnerConfig
from ..model.fixed import FixedLearner
from ..model.init import initial_weights
from .toolchain import ToolchainError, verilator_build
from .verilog import TOP_NAME, core_verilog

__all__ = ["VerilatedCore", "build_library"]

HARNESS = Path(__file__).with_name("harness.cpp")
_I64P = ctypes.POINTER(ctypes.c_int64)


TRACE_KINDS = {None: 0, "fst": 1, "vcd": 2}


def trace_kind(path) -> str | None:
    """``fst`` or ``vcd`` from a waveform file name."""
    if path is None:
        return None
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in ("fst", "vcd"):
        raise ToolchainError(f"trace file {str(path)!r} must end in .fst or .vcd")
    return suffix


def build_library(config: LearnerConfig, lanes: int, trace: str | None = None, log=None, narrow: bool = False,
                  convert=None) -> Path:
    """Compile the core and harness into a shared library, or reuse a cached one.

    ``trace``: None, ``"fst"`` or ``"vcd"``. ``convert``: as :func:`~.verilog.core_verilog` takes it
    (a gate-level netlist instead of the RTL).
    """
    hw_config = config.hardware()
    layout = CoreLayout(hw_config, lanes, narrow=narrow)
    zeros = [np.zeros((layout.n_out(l), layout.n_in(l) + 1), dtype=np.int64) for l in range(layout.layers)]
    verilog = core_verilog(hw_config, lanes, zeros, narrow=narrow, convert=convert)
    f = config.formats
    defines = {"N_IN": config.inputs, "N_OUT": config.outputs,
               "SAMPLE_BITS": max(f.input.bits, f.activation.bits), "ACT_BITS": f.activation.bits,
               "ERR_BITS": f.error.bits, "ACC_BITS": f.weight_acc.bits, "TRACE": TRACE_KINDS[trace]}
    return verilator_build(verilog, TOP_NAME, HARNESS, defines, "libnfloop_core.so", shared=True, trace=trace,
                           log=log)


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
    narrow : bool
        The narrow core of ``LearnerCore`` (the iCEBreaker's).
    convert : callable, optional
        ``convert(core, name)``: Verilog of the core other than its RTL, such as a gate-level netlist
        (:func:`nfloop.boards.netlist.core_netlist`).
    """

    def __init__(self, config: LearnerConfig, lanes: int = 1, weights=None, trace=None, log=None, narrow=False,
                 convert=None):
        self._handle = None
        self.config = config
        self.layout = CoreLayout(config, lanes, narrow=narrow)
        self._lib = ctypes.CDLL(str(build_library(config, lanes, trace=trace_kind(trace), log=log,
                                                  narrow=narrow, convert=convert)))
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
        lib.nf_set_tracing.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self._handle = lib.nf_new(str(trace).encode() if trace else None)
        if weights is None:
            weights = FixedLearner.quantise_weights(config, initial_weights(config))
        self.write_weights(weights)
        self.clear()

    def set_tracing(self, on: bool):
        """Record the waveform (if there is one) from now on, or stop recording it."""
        self._lib.nf_set_tracing(self._handle, int(on))

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
