"""The learner configuration: one frozen object for the model, the HDL, the
board build and the host tool.

A config describes the network (layer sizes, activations, windows), the loop
(per-layer gain, leak and momentum as power-of-two shifts, batch size) and the
bit-level arithmetic (fixed-point formats and rounding). It validates itself on
construction, so anything that holds a :class:`LearnerConfig` holds a valid
one, and it round-trips through TOML (schema: ``docs/config.md``).
"""

from __future__ import annotations

import enum
import errno
import functools
import math
import numbers
import os
import stat
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import tomli_w

__all__ = [
    "ConfigError", "QFormat", "Rounding", "ActivationKind", "Activation", "Window",
    "Layer", "AdaptiveGain", "BAND_SHIFT", "Formats", "LearnerConfig", "load_config", "save_config", "config_toml",
]

#: Widest fixed-point word the int64 reference model handles exactly. The MAC
#: and update widths derived from it are checked against 62 bits (int64 minus
#: a guard bit for the sign of a sum).
MAX_BITS = 32
INT64_SAFE_BITS = 62
MAX_SHIFT = 40
#: The most memory a model's state may take. The fixed-point model keeps STATE_ARRAYS
#: 8-byte arrays the size of the weights (weights, MAC view, batch sums, momentum,
#: flat index, and the float initial weights while it starts); a config whose state
#: would exceed this is refused up front instead of failing (or swapping) mid-run.
MAX_STATE_BYTES = 4 * 2**30
STATE_ARRAYS = 6
#: init.scale above this saturates every initial weight of any format (at most 2**23).
MAX_INIT_SCALE = 2.0 ** 32


class ConfigError(ValueError):
    """A learner configuration that cannot be built; the message names the fix."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    """A real number (not a bool) that is neither infinite nor NaN."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_finite(value: Any, what: str, fix: str = "") -> None:
    _check(isinstance(value, numbers.Real) and not isinstance(value, bool),
           f"bad value: {what} must be a number, not {value!r}")
    _check(math.isfinite(value), f"{what} must be a finite number, not {value!r}{fix}")


class Rounding(enum.Enum):
    """How a right shift discards bits.

    ``floor`` truncates towards minus infinity (a plain arithmetic shift);
    ``half_up`` adds half an LSB first; ``stochastic`` adds a pseudo-random
    fraction drawn from the loop's LFSR (see :mod:`nfloop.model.fixed`), which
    makes the rounding unbiased on average.
    """
    FLOOR = "floor"
    HALF_UP = "half_up"
    STOCHASTIC = "stochastic"


@dataclass(frozen=True)
class QFormat:
    """A signed two's complement fixed-point format.

    Parameters
    ----------
    bits : int
        Total width including the sign bit.
    frac : int
        Fraction bits; a code ``c`` stands for the value ``c * 2**-frac``.
    """
    bits: int
    frac: int

    def __post_init__(self):
        _check(_is_int(self.bits) and 2 <= self.bits <= MAX_BITS,
               f"Format width must be an integer from 2 to {MAX_BITS} bits, not {self.bits!r}")
        _check(_is_int(self.frac) and 0 <= self.frac < self.bits,
               f"Format fraction bits must be an integer from 0 to {self.bits - 1} "
               f"for a {self.bits}-bit format, not {self.frac!r}")

    @property
    def int_bits(self) -> int:
        """Integer bits, sign included."""
        return self.bits - self.frac

    # Cached: the fixed-point model reads these on every saturation.
    @functools.cached_property
    def min_code(self) -> int:
        return -(1 << (self.bits - 1))

    @functools.cached_property
    def max_code(self) -> int:
        return (1 << (self.bits - 1)) - 1

    @functools.cached_property
    def np_bounds(self):
        """(min_code, max_code) as numpy int64 scalars: cheaper in numpy expressions."""
        import numpy as np
        return np.int64(self.min_code), np.int64(self.max_code)

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.frac

    @property
    def min_value(self) -> float:
        return self.min_code * self.lsb

    @property
    def max_value(self) -> float:
        return self.max_code * self.lsb

    @property
    def shape(self):
        """The Amaranth shape of a code in this format."""
        from amaranth.hdl import signed
        return signed(self.bits)

    def representable(self, value: float) -> bool:
        """Whether ``value`` is exactly a code of this format (never for infinity or NaN)."""
        if not _is_finite(value):
            return False
        scaled = value * (1 << self.frac)
        return math.isfinite(scaled) and scaled == math.floor(scaled) and self.min_code <= scaled <= self.max_code

    def code(self, value: float) -> int:
        """The nearest code to a real number (half up), saturated to the range."""
        scaled = math.floor(value * (1 << self.frac) + 0.5)
        return int(min(max(scaled, self.min_code), self.max_code))

    def value(self, code: int) -> float:
        return code * self.lsb

    def __str__(self):
        return f"Q({self.bits},{self.frac})"


class ActivationKind(enum.Enum):
    IDENTITY = "identity"
    RELU = "relu"
    LEAKY_RELU = "leaky_relu"
    HARDTANH = "hardtanh"
    SIGN = "sign"
    STAIRCASE = "staircase"


@dataclass(frozen=True)
class Activation:
    """A unit's activation function sigma.

    Parameters
    ----------
    kind : ActivationKind
    slope_shift : int
        ``leaky_relu``: the negative slope is ``2**-slope_shift``.
    lo, hi : float
        ``hardtanh``: the clip bounds.
    thresholds : tuple of float
        ``staircase``: the step positions c_j of ``sum_j sgn(z - c_j)``.
        ``sign`` is the staircase with the single threshold 0.
    scale : float
        ``sign`` / ``staircase``: the height of one step.
    """
    kind: ActivationKind
    slope_shift: int = 3
    lo: float = -1.0
    hi: float = 1.0
    thresholds: tuple[float, ...] = (-1.0, 0.0, 1.0)
    scale: float = 1.0

    def __post_init__(self):
        _check(isinstance(self.kind, ActivationKind),
               f"Activation kind must be one of {[k.value for k in ActivationKind]}, not {self.kind!r}")
        if self.kind is ActivationKind.LEAKY_RELU:
            _check(_is_int(self.slope_shift) and 1 <= self.slope_shift <= 16,
                   f"leaky_relu slope_shift must be an integer from 1 to 16 "
                   f"(slope 2**-slope_shift), not {self.slope_shift!r}")
        if self.kind is ActivationKind.HARDTANH:
            for name in ("lo", "hi"):
                _check_finite(getattr(self, name), f"hardtanh {name}")
            _check(self.lo < self.hi, f"hardtanh needs lo < hi, not lo={self.lo} hi={self.hi}")
        if self.kind is ActivationKind.SIGN:
            object.__setattr__(self, "thresholds", (0.0,))
        if self.kind is ActivationKind.STAIRCASE:
            for t in self.thresholds:
                _check_finite(t, "every staircase threshold")
            object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
            _check(len(self.thresholds) >= 1, "staircase needs at least one threshold")
            _check(all(a < b for a, b in zip(self.thresholds, self.thresholds[1:])),
                   f"staircase thresholds must be strictly increasing, not {list(self.thresholds)}")
        if self.kind in (ActivationKind.SIGN, ActivationKind.STAIRCASE):
            _check_finite(self.scale, f"{self.kind.value} scale")
            _check(self.scale > 0, f"{self.kind.value} scale must be positive, not {self.scale}")

    @property
    def is_step(self) -> bool:
        """Sign and staircase: zero derivative almost everywhere."""
        return self.kind in (ActivationKind.SIGN, ActivationKind.STAIRCASE)

    def default_window(self) -> Window:
        """The window of ALGORITHM section 2 for this activation."""
        if self.kind is ActivationKind.RELU:
            return Window(lo=-0.5)
        if self.kind is ActivationKind.HARDTANH:
            return Window(lo=self.lo, hi=self.hi)
        if self.is_step:
            # Widen by the smallest step spacing: a difference of codes is itself a code,
            # so the bounds stay representable whatever the spacing.
            c = self.thresholds
            margin = min(b - a for a, b in zip(c, c[1:])) if len(c) > 1 else 1.0
            return Window(lo=c[0] - margin, hi=c[-1] + margin)
        return Window()

    def to_toml(self) -> str | dict:
        defaults = Activation(self.kind)
        table = {"kind": self.kind.value}
        for name in {ActivationKind.LEAKY_RELU: ["slope_shift"],
                     ActivationKind.HARDTANH: ["lo", "hi"],
                     ActivationKind.SIGN: ["scale"],
                     ActivationKind.STAIRCASE: ["thresholds", "scale"]}.get(self.kind, []):
            if getattr(self, name) != getattr(defaults, name):
                value = getattr(self, name)
                table[name] = list(value) if isinstance(value, tuple) else value
        return table if len(table) > 1 else self.kind.value


@dataclass(frozen=True)
class Window:
    """The rectangular window s(z) of a layer: 1 where lo <= z <= hi, else 0.

    ``lo`` / ``hi`` of ``None`` leave that side open; both ``None`` is the
    identity window. ``derivative=True`` replaces the window by sigma'(z),
    which turns the loop into gradient descent on 0.5*||e||^2.
    """
    lo: float | None = None
    hi: float | None = None
    derivative: bool = False

    def __post_init__(self):
        if self.derivative:
            _check(self.lo is None and self.hi is None,
                   "A derivative window takes no lo/hi bounds")
        for name in ("lo", "hi"):
            if getattr(self, name) is not None:
                _check_finite(getattr(self, name), f"window {name}", f" (leave {name} out for an open side)")
        if self.lo is not None and self.hi is not None:
            _check(self.lo <= self.hi, f"Window needs lo <= hi, not lo={self.lo} hi={self.hi}")

    def to_toml(self) -> str | dict:
        if self.derivative:
            return "derivative"
        if self.lo is None and self.hi is None:
            return "all"
        return {k: v for k, v in (("lo", self.lo), ("hi", self.hi)) if v is not None}


@dataclass(frozen=True)
class Layer:
    """One layer of the learner and its own feedback loop.

    Parameters
    ----------
    size : int
        Number of units (outputs).
    activation : Activation
    window : Window
    gain_shift : int
        The loop gain is ``A = 2**-gain_shift`` (negative shifts give A > 1).
    leak_shift : int or None
        Weight decay ``lambda = 2**-leak_shift``; ``None`` for none.
    momentum_shift : int or None
        Momentum ``beta = 1 - 2**-momentum_shift``; ``None`` for none.
    residual : bool
        Add the layer's input to its pre-activation, ``z = W a + b + a`` (the layer's input and output
        widths must match): the forward and backward passes see ``W + I``, the loop integrates ``W``.
    init : tuple of rows or None
        Explicit initial weights, one row per unit, bias last.
    """
    size: int
    activation: Activation = Activation(ActivationKind.IDENTITY)
    window: Window | None = None
    gain_shift: int = 6
    leak_shift: int | None = None
    momentum_shift: int | None = None
    residual: bool = False
    init: tuple[tuple[float, ...], ...] | None = None

    def __post_init__(self):
        _check(_is_int(self.size) and self.size >= 1,
               f"Layer size must be a positive integer, not {self.size!r}")
        if self.window is None:
            object.__setattr__(self, "window", self.activation.default_window())
        _check(_is_int(self.gain_shift) and -8 <= self.gain_shift <= MAX_SHIFT,
               f"gain_shift must be an integer from -8 to {MAX_SHIFT} (gain 2**-gain_shift), "
               f"not {self.gain_shift!r}")
        for name in ("leak_shift", "momentum_shift"):
            value = getattr(self, name)
            _check(value is None or (_is_int(value) and 1 <= value <= MAX_SHIFT),
                   f"{name} must be an integer from 1 to {MAX_SHIFT}, or absent to switch it off, "
                   f"not {value!r}")
        _check(isinstance(self.residual, bool), f"residual must be true or false, not {self.residual!r}")
        if self.init is not None:
            object.__setattr__(self, "init", tuple(tuple(float(v) for v in row) for row in self.init))
            _check(all(math.isfinite(v) for row in self.init for v in row),
                   "init weights must be finite numbers (no NaN or infinity)")


@dataclass(frozen=True)
class AdaptiveGain:
    """Each layer's loop gain follows its own error: halved when the error grows, doubled when it falls.

    Every ``period`` training steps, each layer compares the sum of its ``|delta|`` over the period (its
    error energy, saturating at formats.weight_acc) with the previous period's: larger by more than 1/4
    (:data:`BAND_SHIFT`), and the gain halves (the loop overshoots); smaller by more than 1/4, and it
    doubles (the loop is slow and stable); in between (sample noise), it stays. The gain stays within ``up``
    doublings above and ``down`` halvings below the layer's ``gain_shift``, so the hardware applies it as one
    of a few fixed shifts.

    Parameters
    ----------
    period : int
        Training steps between adjustments: a power of two from 1 to 65536.
    up : int
        The most doublings above ``2**-gain_shift`` (0 to 4).
    down : int
        The most halvings below it (0 to 8).
    """
    period: int = 256
    up: int = 1
    down: int = 3

    def __post_init__(self):
        _check(_is_int(self.period) and 1 <= self.period <= 1 << 16 and self.period & (self.period - 1) == 0,
               f"adaptive_gain period must be a power of two from 1 to 65536 (training steps between "
               f"adjustments), not {self.period!r}")
        _check(_is_int(self.up) and 0 <= self.up <= 4,
               f"adaptive_gain up must be an integer from 0 to 4 (doublings above gain_shift), not {self.up!r}")
        _check(_is_int(self.down) and 0 <= self.down <= 8,
               f"adaptive_gain down must be an integer from 0 to 8 (halvings below gain_shift), "
               f"not {self.down!r}")

    @property
    def offsets(self) -> range:
        """The shifts added to a layer's update shift: ``-up`` (the most gain) to ``down``."""
        return range(-self.up, self.down + 1)


#: The error energy must rise above ``previous + previous >> BAND_SHIFT`` for the gain to halve, and fall below
#: ``previous - previous >> BAND_SHIFT`` for it to double.
BAND_SHIFT = 2


def _matching_acc(w: QFormat, acc: QFormat) -> QFormat:
    """The accumulator format nearest ``acc`` that has ``w``'s integer bits and fits 32 bits."""
    frac = min(acc.frac, MAX_BITS - w.int_bits)
    return QFormat(frac + w.int_bits, max(frac, w.frac))


@dataclass(frozen=True)
class Formats:
    """The fixed-point formats of every quantity the hardware stores.

    ``weight`` is what the multipliers see; ``weight_acc`` is the wide
    accumulator the loop integrates into. They share their integer bits, so
    the MAC weight is the top ``weight.bits`` bits of the accumulator.
    """
    input: QFormat = QFormat(8, 4)
    activation: QFormat = QFormat(16, 10)
    error: QFormat = QFormat(16, 12)
    weight: QFormat = QFormat(16, 12)
    weight_acc: QFormat = QFormat(32, 28)

    def __post_init__(self):
        for f in fields(self):
            _check(isinstance(getattr(self, f.name), QFormat),
                   f"formats.{f.name} must be a QFormat, not {getattr(self, f.name)!r}")
        w, acc = self.weight, self.weight_acc
        _check(acc.int_bits == w.int_bits,
               f"formats.weight_acc must have the integer bits of formats.weight "
               f"({w.int_bits}) so the MAC weight is a bit slice of it, not {acc.int_bits}: "
               f"use {_matching_acc(w, acc)}")
        _check(acc.frac >= w.frac,
               f"formats.weight_acc needs at least the fraction bits of formats.weight "
               f"({w.frac}), not {acc.frac}")
        for name in ("input", "activation", "error", "weight"):
            _check(getattr(self, name).bits <= 24,
                   f"formats.{name} must be at most 24 bits wide (a multiplier operand), "
                   f"not {getattr(self, name).bits}")


@dataclass(frozen=True)
class LearnerConfig:
    """A negative-feedback learner, complete down to the bit.

    Parameters
    ----------
    inputs : int
        Input vector length.
    layers : tuple of Layer
    formats : Formats
    batch_size : int
        1 for online updates; B > 1 sums B samples' updates into one.
    rounding : Rounding
        Rounding of the update path (gain, leak, momentum shifts).
    forward_rounding : Rounding
        Rounding of the forward and backward requantisation (floor or half_up).
    lfsr_seed : int
        Initial state of the 32-bit LFSR behind stochastic rounding (non-zero).
    init_seed : int
        Seed of the random initial weights of layers without ``init``.
    init_scale : float
        Multiplier on the Glorot-uniform initial weight range.
    adaptive_gain : AdaptiveGain or None
        Per-layer gains that adapt to the error (:class:`AdaptiveGain`); None: fixed gains.
    name : str
    """
    inputs: int
    layers: tuple[Layer, ...]
    formats: Formats = Formats()
    batch_size: int = 1
    rounding: Rounding = Rounding.HALF_UP
    forward_rounding: Rounding = Rounding.HALF_UP
    lfsr_seed: int = 1
    init_seed: int = 0
    init_scale: float = 1.0
    adaptive_gain: AdaptiveGain | None = None
    name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        _check(_is_int(self.inputs) and self.inputs >= 1,
               f"inputs must be a positive integer, not {self.inputs!r}")
        _check(len(self.layers) >= 1, "A learner needs at least one layer")
        for layer in self.layers:
            _check(isinstance(layer, Layer), f"layers must hold Layer objects, not {layer!r}")
        _check(_is_int(self.batch_size) and self.batch_size >= 1,
               f"batch_size must be a positive integer, not {self.batch_size!r}")
        _check(isinstance(self.rounding, Rounding),
               f"rounding must be one of {[r.value for r in Rounding]}, not {self.rounding!r}")
        forward = getattr(self.forward_rounding, "value", self.forward_rounding)
        _check(self.forward_rounding in (Rounding.FLOOR, Rounding.HALF_UP),
               f"forward_rounding must be 'floor' or 'half_up', not {forward!r}: "
               f"stochastic rounding applies to the update path only")
        _check(_is_int(self.lfsr_seed) and 0 < self.lfsr_seed < 1 << 32,
               f"lfsr_seed must be an integer from 1 to 2**32-1 (an LFSR never leaves 0), "
               f"not {self.lfsr_seed!r}")
        _check(_is_int(self.init_seed) and self.init_seed >= 0,
               f"init_seed must be a non-negative integer, not {self.init_seed!r}")
        _check(_is_finite(self.init_scale) and 0 < self.init_scale <= MAX_INIT_SCALE,
               f"init_scale must be positive, finite and at most 2**32 (more saturates every initial "
               f"weight), not {self.init_scale!r}")
        _check(self.adaptive_gain is None or isinstance(self.adaptive_gain, AdaptiveGain),
               f"adaptive_gain must be an AdaptiveGain or None, not {self.adaptive_gain!r}")
        state = self.state_bytes
        _check(state <= MAX_STATE_BYTES,
               f"the layers {list(self.sizes)} have {self.weight_count:,} weights and biases; the model keeps "
               f"{STATE_ARRAYS} 8-byte values per weight, {state / 2**30:,.1f} GiB, more than the "
               f"{MAX_STATE_BYTES / 2**30:g} GiB nfloop allows: make the layers or inputs smaller")
        for index, layer in enumerate(self.layers):
            self._check_layer(index, layer)

    def _check_layer(self, index: int, layer: Layer):
        where = f"layers[{index}]"
        fmt = self.formats
        act, win = layer.activation, layer.window
        n_in = self.sizes[index]
        a_in = fmt.input if index == 0 else fmt.activation
        # Representability of every constant the hardware compares against.
        if act.kind is ActivationKind.HARDTANH:
            for name in ("lo", "hi"):
                _check(fmt.activation.representable(getattr(act, name)),
                       f"{where}: hardtanh {name}={getattr(act, name)} is not a code of "
                       f"formats.activation {fmt.activation}")
        if act.is_step:
            for c in act.thresholds:
                _check(fmt.activation.representable(c),
                       f"{where}: staircase threshold {c} is not a code of formats.activation "
                       f"{fmt.activation}")
            _check(fmt.activation.representable(act.scale),
                   f"{where}: {act.kind.value} scale {act.scale} is not a code of formats.activation "
                   f"{fmt.activation}")
            top = act.scale * len(act.thresholds)
            _check(fmt.activation.representable(top) and fmt.activation.representable(-top),
                   f"{where}: {act.kind.value} output +-{top} does not fit formats.activation "
                   f"{fmt.activation}; lower the scale or widen the format")
        for name in ("lo", "hi"):
            bound = getattr(win, name)
            if bound is not None:
                _check(fmt.activation.representable(bound),
                       f"{where}: window {name}={bound} is not a code of formats.activation "
                       f"{fmt.activation}")
        # Exact int64 arithmetic: MAC sums and shifted update products.
        _check(self.mac_sum_bits(index) <= INT64_SAFE_BITS,
               f"{where}: the exact MAC sum needs {self.mac_sum_bits(index)} bits, more than "
               f"{INT64_SAFE_BITS}; narrow the formats or the layer")
        if index > 0:
            _check(self.backward_sum_bits(index) <= INT64_SAFE_BITS,
                   f"{where}: the exact backward sum W^T delta over its {layer.size} units needs "
                   f"{self.backward_sum_bits(index)} bits (formats.weight {fmt.weight.bits} + formats.error "
                   f"{fmt.error.bits} + {self.backward_sum_bits(index) - fmt.weight.bits - fmt.error.bits} "
                   f"for the sum), more than {INT64_SAFE_BITS}; narrow formats.weight or formats.error, "
                   f"or the layer")
        shifts = self.update_shifts(index)
        adaptive = " (with adaptive_gain up)" if self.adaptive_gain and self.adaptive_gain.up else ""
        left = -shifts[0]
        _check(fmt.error.bits + a_in.bits + max(left, 0) <= INT64_SAFE_BITS,
               f"{where}: gain_shift {layer.gain_shift}{adaptive} shifts the update left by {left} bits, "
               f"past int64; raise gain_shift")
        adaptive = " (with adaptive_gain down)" if self.adaptive_gain and self.adaptive_gain.down else ""
        _check(shifts[-1] <= 62,
               f"{where}: gain_shift {layer.gain_shift}{adaptive} shifts every update to zero; lower it")
        if self.rounding is Rounding.STOCHASTIC:
            _check(max(shifts[-1], layer.leak_shift or 0,
                       layer.momentum_shift or 0) <= 32,
                   f"{where}: stochastic rounding draws 32 random bits, so no shift may discard "
                   f"more than 32 bits; raise formats.weight_acc fraction bits or lower the shifts")
        _check(not layer.residual or n_in == layer.size,
               f"{where}: a residual layer adds its input to its output, so it needs as many units as inputs: "
               f"it has {layer.size} units and {n_in} inputs; set size = {n_in} or residual = false")
        if layer.init is not None:
            _check(len(layer.init) == layer.size and all(len(r) == n_in + 1 for r in layer.init),
                   f"{where}: init must have {layer.size} rows of {n_in + 1} values "
                   f"({n_in} weights and the bias)")

    # -- Derived quantities, shared by the model and the HDL --------------------------------

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.inputs, *(layer.size for layer in self.layers))

    @property
    def outputs(self) -> int:
        return self.layers[-1].size

    def input_format(self, index: int) -> QFormat:
        """Format of layer ``index``'s input vector."""
        return self.formats.input if index == 0 else self.formats.activation

    def mac_sum_bits(self, index: int) -> int:
        """Width of layer ``index``'s exact MAC sum (bias included), sign bit included."""
        a = self.input_format(index)
        terms = self.sizes[index] + 1
        return self.weight_operand_bits(index) + max(a.bits, a.frac + 2) + math.ceil(math.log2(terms))

    def weight_operand_bits(self, index: int) -> int:
        """Width of the weights layer ``index`` multiplies with: the MAC weight's, and one bit more for a
        residual layer, whose forward and backward passes see ``W + I`` (1.0 added on the diagonal)."""
        return self.formats.weight.bits + self.layers[index].residual

    def backward_sum_bits(self, index: int) -> int:
        """Width of layer ``index``'s exact backward sum ``W^T delta`` (over its units), sign bit included."""
        f = self.formats
        return self.weight_operand_bits(index) + f.error.bits + math.ceil(math.log2(self.sizes[index + 1] + 1))

    @property
    def weight_count(self) -> int:
        """Weights and biases of every layer."""
        return sum((self.sizes[i] + 1) * self.sizes[i + 1] for i in range(len(self.layers)))

    @property
    def state_bytes(self) -> int:
        """Memory the model's state takes: :data:`STATE_ARRAYS` 8-byte values per weight."""
        return self.weight_count * 8 * STATE_ARRAYS

    def update_shift(self, index: int) -> int:
        """Right shift taking ``delta * a`` (error x input frac) into weight_acc after the gain.

        Negative values are exact left shifts.
        """
        f = self.formats
        return f.error.frac + self.input_format(index).frac + self.layers[index].gain_shift \
            - f.weight_acc.frac

    def update_shifts(self, index: int) -> tuple[int, ...]:
        """Every update shift layer ``index`` can take, smallest (the most gain) first: one without
        adaptive gain."""
        base = self.update_shift(index)
        offsets = self.adaptive_gain.offsets if self.adaptive_gain else range(1)
        return tuple(base + k for k in offsets)

    @property
    def mac_operations(self) -> int:
        """Multiplies in one training step: forward, backward and update (biases included)."""
        forward = sum((self.sizes[i] + 1) * self.sizes[i + 1] for i in range(len(self.layers)))
        backward = sum(self.sizes[i] * self.sizes[i + 1] for i in range(1, len(self.layers)))
        return 2 * forward + backward

    def gain(self, index: int) -> float:
        return 2.0 ** -self.layers[index].gain_shift

    def as_gradient_descent(self) -> LearnerConfig:
        """The same network trained by gradient descent: every window becomes sigma'."""
        return replace(self, layers=tuple(replace(l, window=Window(derivative=True))
                                          for l in self.layers))

    def with_changes(self, **changes) -> LearnerConfig:
        return replace(self, **changes)

    def hardware(self) -> LearnerConfig:
        """The config less what only sets initial weights (loaded at run time) and its name:
        two configs that build the same gateware have equal ``hardware()``."""
        return replace(self, init_seed=0, init_scale=1.0, name="",
                       layers=tuple(replace(layer, init=None) for layer in self.layers))

    # -- TOML -----------------------------------------------------------------------------

    def to_dict(self) -> dict:
        f = self.formats
        out: dict[str, Any] = {}
        if self.name:
            out["name"] = self.name
        out.update(inputs=self.inputs, batch_size=self.batch_size)
        out["formats"] = {fl.name: [getattr(f, fl.name).bits, getattr(f, fl.name).frac]
                          for fl in fields(f)}
        out["rounding"] = {"update": self.rounding.value, "forward": self.forward_rounding.value,
                           "lfsr_seed": self.lfsr_seed, "overflow": "saturate"}
        out["init"] = {"seed": self.init_seed, "scale": self.init_scale}
        if self.adaptive_gain:
            g = self.adaptive_gain
            out["adaptive_gain"] = {"period": g.period, "up": g.up, "down": g.down}
        out["layers"] = []
        for layer in self.layers:
            table: dict[str, Any] = {"size": layer.size, "activation": layer.activation.to_toml(),
                                     "window": layer.window.to_toml(),
                                     "gain_shift": layer.gain_shift}
            for name in ("leak_shift", "momentum_shift"):
                if getattr(layer, name) is not None:
                    table[name] = getattr(layer, name)
            if layer.residual:
                table["residual"] = True
            if layer.init is not None:
                table["init"] = [list(row) for row in layer.init]
            out["layers"].append(table)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> LearnerConfig:
        return _from_dict(data)


# -- Parsing --------------------------------------------------------------------------------

def _keys(table: dict, where: str, allowed: set[str], required: set[str] = frozenset()):
    _check(isinstance(table, dict), f"{where} must be a table, not {table!r}")
    unknown = set(table) - allowed
    _check(not unknown, f"Unknown key(s) {sorted(unknown)} in {where}; expected some of {sorted(allowed)}")
    missing = set(required) - set(table)
    _check(not missing, f"{where} is missing {sorted(missing)}")


def _enum(kind, value, where):
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"{where} must be one of {[k.value for k in kind]}, not {value!r}") from None


def _qformat(value, where) -> QFormat:
    _check(isinstance(value, list) and len(value) == 2 and all(_is_int(v) for v in value),
           f"{where} must be [bits, fraction_bits], not {value!r}")
    try:
        return QFormat(*value)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def _activation(value, where) -> Activation:
    if isinstance(value, str):
        return Activation(_enum(ActivationKind, value, where))
    _keys(value, where, {"kind", "slope_shift", "lo", "hi", "thresholds", "scale"}, {"kind"})
    kind = _enum(ActivationKind, value["kind"], f"{where}.kind")
    params = {k: (tuple(v) if k == "thresholds" else v) for k, v in value.items() if k != "kind"}
    return Activation(kind, **params)


def _window(value, where) -> Window | None:
    if value == "auto":
        return None
    if value == "all":
        return Window()
    if value == "derivative":
        return Window(derivative=True)
    _check(isinstance(value, dict),
           f"{where} must be 'auto', 'all', 'derivative' or a table {{lo = ..., hi = ...}}, not {value!r}")
    _keys(value, where, {"lo", "hi"})
    return Window(lo=value.get("lo"), hi=value.get("hi"))


def _from_dict(data: dict) -> LearnerConfig:
    _keys(data, "the config", {"name", "inputs", "batch_size", "formats", "rounding", "init", "adaptive_gain",
                               "layers"}, {"inputs", "layers"})
    adaptive = data.get("adaptive_gain")
    if adaptive is not None:
        _keys(adaptive, "[adaptive_gain]", {"period", "up", "down"})
        adaptive = AdaptiveGain(**adaptive)
    formats = data.get("formats", {})
    _keys(formats, "[formats]", {f.name for f in fields(Formats)})
    rounding = data.get("rounding", {})
    _keys(rounding, "[rounding]", {"update", "forward", "lfsr_seed", "overflow"})
    _check(rounding.get("overflow", "saturate") == "saturate",
           f"[rounding] overflow must be 'saturate', not {rounding.get('overflow')!r}: "
           f"nfloop never wraps around silently")
    init = data.get("init", {})
    _keys(init, "[init]", {"seed", "scale"})
    _check(isinstance(data["layers"], list) and data["layers"],
           "layers must be a non-empty array of [[layers]] tables")
    layers = []
    for index, table in enumerate(data["layers"]):
        where = f"[[layers]] {index}"
        _keys(table, where, {"size", "activation", "window", "gain_shift", "leak_shift",
                             "momentum_shift", "residual", "init"}, {"size"})
        activation = _activation(table.get("activation", "identity"), f"{where} activation")
        window = _window(table.get("window", "auto"), f"{where} window")
        init_rows = table.get("init")
        layers.append(Layer(size=table["size"], activation=activation, window=window,
                            gain_shift=table.get("gain_shift", 6),
                            leak_shift=table.get("leak_shift"),
                            momentum_shift=table.get("momentum_shift"),
                            residual=table.get("residual", False),
                            init=None if init_rows is None else tuple(tuple(r) for r in init_rows)))
    return LearnerConfig(
        name=data.get("name", ""),
        inputs=data["inputs"],
        layers=tuple(layers),
        formats=Formats(**{k: _qformat(v, f"formats.{k}") for k, v in formats.items()}),
        batch_size=data.get("batch_size", 1),
        rounding=_enum(Rounding, rounding.get("update", "half_up"), "[rounding] update"),
        forward_rounding=_enum(Rounding, rounding.get("forward", "half_up"), "[rounding] forward"),
        lfsr_seed=rounding.get("lfsr_seed", 1),
        init_seed=init.get("seed", 0),
        init_scale=init.get("scale", 1.0),
        adaptive_gain=adaptive,
    )


#: The longest name of one file or folder most file systems allow (bytes).
NAME_MAX = 255


def path_problem(path: Path, what: str, kind: str = "file") -> str | None:
    """Why ``path`` cannot be opened as a file, in one line beginning with ``what`` (``"Data file"``);
    None if it can be tried. ``kind`` names the file wanted (``"a .npz or .csv file"``).

    Names the actual problem: a missing file, a folder where a file belongs, a path component
    longer than the file system allows, a permission.
    """
    try:
        mode = path.stat().st_mode
    except OSError as err:
        return f"{what} {_shown(path)} {_os_problem(path, err)}"
    except ValueError as err:                         # a NUL byte in the path
        return f"{what} {_shown(path)} is not a usable path: {err}"
    if stat.S_ISDIR(mode):
        return f"{what} {_shown(path)} does not exist as a file: it is a folder; give the path of {kind}"
    return None


def _shown(path: Path) -> str:
    """The path quoted, shortened in the middle if it is very long."""
    text = str(path)
    return repr(text) if len(text) <= 120 else repr(f"{text[:60]}...{text[-40:]}")


def _os_problem(path: Path, err: OSError) -> str:
    """What ``err``, raised for ``path``, means, as the end of a sentence naming the path."""
    if err.errno == errno.ENAMETOOLONG:
        longest = max(path.parts, key=lambda part: len(os.fsencode(part)))
        size = len(os.fsencode(longest))
        if size > NAME_MAX:
            return (f"cannot be used: its part {longest[:24]!r}... is {size} bytes long, more than the "
                    f"{NAME_MAX} a file or folder name may have; shorten that name")
        return f"cannot be used: the path is too long ({len(os.fsencode(str(path)))} bytes); use a shorter one"
    if err.errno == errno.ENOENT:
        return "does not exist"
    if err.errno == errno.ENOTDIR:
        return "does not exist: a part of the path before the last is a file, not a folder"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"cannot be read: {err.strerror} (check the permissions of the file and its folders)"
    return f"cannot be read: {err.strerror or err}"


def load_config(path: str | Path) -> LearnerConfig:
    """Read a learner config from a TOML file (schema: ``docs/config.md``)."""
    path = Path(path)
    problem = path_problem(path, "Config file", "a TOML config file")
    _check(problem is None, problem)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a text file") from None
    except OSError as err:
        raise ConfigError(f"Config file {_shown(path)} {_os_problem(path, err)}") from None
    try:
        return LearnerConfig.from_dict(data)
    except (TypeError, ValueError) as err:
        message = str(err) if isinstance(err, ConfigError) else f"bad value: {err}"
        raise ConfigError(f"{path}: {message}") from None


def _inline(value) -> str:
    """One TOML value on one line: arrays as ``[16, 10]``, tables as ``{ lo = -0.5 }``."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_inline(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def config_toml(config: LearnerConfig) -> str:
    """The config as TOML in the layout of ``docs/config.md``: one ``[[layers]]`` table per layer."""
    data = config.to_dict()
    layers = data.pop("layers")
    lines = [f"{k} = {_inline(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for name, table in data.items():
        if isinstance(table, dict):
            lines += ["", f"[{name}]"] + [f"{k} = {_inline(v)}" for k, v in table.items()]
    for layer in layers:
        lines += ["", "[[layers]]"] + [f"{k} = {_inline(v)}" for k, v in layer.items()]
    return "\n".join(lines) + "\n"


def save_config(config: LearnerConfig, path: str | Path) -> None:
    Path(path).write_text(config_toml(config))
