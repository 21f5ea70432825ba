"""The fixed-point reference model, checked bit for bit.

Every quantisation primitive of :mod:`nfloop.model.fixed` is compared with
apytypes, an independent arbitrary-precision fixed-point library: the exact
product / sum is formed there and cast into the target format with the
matching quantisation mode (``TRN`` is floor, ``RND`` is floor(x + 1/2), our
``half_up``) and ``SAT`` overflow. The activation, window and LFSR are
compared with small per-element references written here with Python ints and
:class:`fractions.Fraction`, and a whole training step of a 2-3-2 learner is
recomputed from the module's documented datapath.
"""

from __future__ import annotations

import math
from fractions import Fraction

import apytypes as apy
import numpy as np
import pytest
from nfloop.model import fixed
from nfloop.model.config import Activation, ActivationKind, Formats, Layer, LearnerConfig, QFormat, Rounding, Window
from nfloop.model.fixed import (
    FixedLearner,
    LayerPlan,
    activate,
    apply_window,
    lfsr_next,
    mac,
    output_error,
    requantise,
    saturate,
    scaled_update,
    shift_round,
    stochastic_bits,
)

QM, OM = apy.QuantizationMode, apy.OverflowMode
#: Our roundings in apytypes' vocabulary (checked by test_apytypes_modes_are_floor_and_half_up).
APY_MODE = {Rounding.FLOOR: QM.TRN, Rounding.HALF_UP: QM.RND}
DETERMINISTIC = [Rounding.FLOOR, Rounding.HALF_UP]

FORMATS = [QFormat(8, 4), QFormat(16, 10), QFormat(16, 12), QFormat(24, 20), QFormat(32, 28)]
RIGHT_SHIFTS = list(range(1, 21))
LEFT_SHIFTS = [0, -1, -2, -3, -5, -8]

MIX = 0x9E3779B1          # written out again here: the docstring's constant, not the module's
POLY_TAPS = (32, 22, 2, 1)  # x^32 + x^22 + x^2 + x + 1 (the constant term is implied)


# -- Independent helpers -------------------------------------------------------------------------

def apy_array(codes, bits: int, frac: int) -> apy.APyFixedArray:
    """Raw two's complement codes as an apytypes array of ``bits`` bits, ``frac`` of them fraction."""
    codes = np.asarray(codes, dtype=np.int64)
    return apy.APyFixedArray(codes.tolist(), bits=bits, frac_bits=frac)


def apy_codes(array: apy.APyFixedArray) -> np.ndarray:
    """Signed integer codes of an apytypes array (its bit patterns read as two's complement)."""
    bits = array.bits
    flat = [int(b) for b in array.flatten().to_bits()]
    signed = [b - (1 << bits) if b >> (bits - 1) else b for b in flat]
    return np.array(signed, dtype=np.int64).reshape(array.shape)


def apy_into(array: apy.APyFixedArray, fmt: QFormat, rounding: Rounding) -> np.ndarray:
    """Cast into ``fmt`` (quantise, then saturate) and return the codes."""
    cast = array.cast(int_bits=fmt.int_bits, frac_bits=fmt.frac, quantization=APY_MODE[rounding],
                      overflow=OM.SAT)
    assert cast.bits == fmt.bits and cast.frac_bits == fmt.frac
    return apy_codes(cast)


def rnd(value: Fraction, rounding: Rounding) -> int:
    """Exact rounding of a rational to an integer."""
    if rounding is Rounding.FLOOR:
        return math.floor(value)
    if rounding is Rounding.HALF_UP:
        return math.floor(value + Fraction(1, 2))
    raise AssertionError(rounding)


def fmt_range(fmt: QFormat) -> tuple[int, int]:
    return -(1 << (fmt.bits - 1)), (1 << (fmt.bits - 1)) - 1


def sat(v: int, fmt: QFormat) -> int:
    lo, hi = fmt_range(fmt)
    return min(max(v, lo), hi)


def exact_code(value: float, fmt: QFormat) -> int:
    scaled = Fraction(value) * (1 << fmt.frac)
    assert scaled.denominator == 1, f"{value} is not a code of {fmt}"
    return int(scaled)


def edge_codes(fmt: QFormat) -> list[int]:
    lo, hi = fmt_range(fmt)
    return [lo, lo + 1, lo + 2, -2, -1, 0, 1, 2, hi - 2, hi - 1, hi]


def boundary_codes(fmt: QFormat, shift: int) -> list[int]:
    """Wide codes (``shift`` more fraction bits than ``fmt``) at every rounding and saturation edge.

    For a right shift: k * 2**shift plus offsets 0, 1, half-1, half (the exact tie x.5 LSB),
    half+1, 2**shift - 1 and -1, around k = 0, +-1, +-2 and the saturation thresholds
    min-1, min, min+1, max-1, max, max+1. For a left shift: the codes that land next to them.
    """
    lo, hi = fmt_range(fmt)
    targets = [lo - 2, lo - 1, lo, lo + 1, -2, -1, 0, 1, 2, hi - 1, hi, hi + 1, hi + 2]
    if shift <= 0:
        step = 1 << -shift
        return sorted({t // step + o for t in targets for o in (-1, 0, 1)})
    half = 1 << (shift - 1)
    offsets = {0, 1, half - 1, half, half + 1, (1 << shift) - 1, -1}
    return sorted({(t << shift) + o for t in targets for o in offsets})


def random_wide_codes(rng, fmt: QFormat, shift: int, n: int) -> np.ndarray:
    """Codes with ``shift`` extra fraction bits: two thirds inside the format's range, a third beyond."""
    lo, hi = fmt_range(fmt)
    scale = Fraction(2) ** shift
    inside_lo, inside_hi = math.floor(lo * scale), math.ceil((hi + 1) * scale)
    inside = rng.integers(inside_lo, inside_hi, size=2 * n // 3, dtype=np.int64)
    outside = rng.integers(4 * inside_lo, 4 * inside_hi, size=n - 2 * n // 3, dtype=np.int64)
    return np.concatenate([inside, outside])


def random_codes(rng, fmt: QFormat, n, with_edges=True) -> np.ndarray:
    lo, hi = fmt_range(fmt)
    codes = rng.integers(lo, hi + 1, size=n, dtype=np.int64)
    if with_edges:
        codes = np.concatenate([np.array(edge_codes(fmt), dtype=np.int64), codes])
    return codes


# -- The oracle's vocabulary --------------------------------------------------------------------

def test_apytypes_modes_are_floor_and_half_up():
    """TRN is floor and RND is floor(x + 1/2) (ties towards +inf), also for negative ties."""
    codes = list(range(-32, 32))               # Q(6, 2): every quarter from -8 to 7.75
    out = {mode: apy_codes(apy_array(codes, 6, 2).cast(int_bits=6, frac_bits=0, quantization=q,
                                                        overflow=OM.SAT))
           for mode, q in APY_MODE.items()}
    for mode in DETERMINISTIC:
        expected = [rnd(Fraction(c, 4), mode) for c in codes]
        np.testing.assert_array_equal(out[mode], expected)
    # The ties: -1.5 -> -1 and 1.5 -> 2 for half_up, -2 and 1 for floor.
    assert out[Rounding.HALF_UP][codes.index(-6)] == -1
    assert out[Rounding.HALF_UP][codes.index(6)] == 2
    assert out[Rounding.FLOOR][codes.index(-6)] == -2


# -- saturate ------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_saturate(fmt, seed):
    rng = np.random.default_rng(seed)
    lo, hi = fmt_range(fmt)
    v = np.concatenate([np.array(edge_codes(fmt) + [lo - 1, hi + 1, lo - 2**20, hi + 2**20,
                                                    -(2**50), 2**50], dtype=np.int64),
                        rng.integers(8 * lo, 8 * (hi + 1), size=2000, dtype=np.int64)])
    got = saturate(v, fmt)
    expected = apy_into(apy_array(v, 64, fmt.frac), fmt, Rounding.FLOOR)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(saturate(np.array([lo - 1, lo, hi, hi + 1]), fmt), [lo, lo, hi, hi])


# -- shift_round ---------------------------------------------------------------------------------

@pytest.mark.parametrize("rounding", DETERMINISTIC, ids=lambda r: r.value)
@pytest.mark.parametrize("shift", RIGHT_SHIFTS)
def test_shift_round_right(shift, rounding):
    rng = np.random.default_rng(shift)
    fmt = QFormat(24, 0)  # only to place the edge list around +-2**23
    v = np.concatenate([np.array(boundary_codes(fmt, shift), dtype=np.int64),
                        rng.integers(-(2**40), 2**40, size=3000, dtype=np.int64)])
    got = shift_round(v, shift, rounding)
    wide = apy_array(v, 48, shift)
    expected = apy_codes(wide.cast(int_bits=48 - shift + 1, frac_bits=0,
                                   quantization=APY_MODE[rounding], overflow=OM.SAT))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("rounding", list(Rounding), ids=lambda r: r.value)
@pytest.mark.parametrize("shift", LEFT_SHIFTS)
def test_shift_round_left_is_exact(shift, rounding):
    rng = np.random.default_rng(100 - shift)
    v = np.concatenate([np.array([-(2**30), -3, -1, 0, 1, 3, 2**30], dtype=np.int64),
                        rng.integers(-(2**30), 2**30, size=1000, dtype=np.int64)])
    got = shift_round(v, shift, rounding, rand=np.zeros_like(v))
    expected = apy_codes(apy_array(v, 40, 0).cast(int_bits=40, frac_bits=-shift))
    np.testing.assert_array_equal(got, expected)


def test_shift_round_ties():
    """The exact ties x.5 LSB: half_up goes towards +inf, floor towards -inf."""
    v = np.array([-7, -5, -3, -1, 1, 3, 5, 7], dtype=np.int64)      # odd / 2: all ties
    np.testing.assert_array_equal(shift_round(v, 1, Rounding.HALF_UP), [-3, -2, -1, 0, 1, 2, 3, 4])
    np.testing.assert_array_equal(shift_round(v, 1, Rounding.FLOOR), [-4, -3, -2, -1, 0, 1, 2, 3])
    # +-1 LSB around a tie of a 4-bit shift: 7/16, 8/16, 9/16 and the negatives.
    v = np.array([-9, -8, -7, 7, 8, 9], dtype=np.int64)
    np.testing.assert_array_equal(shift_round(v, 4, Rounding.HALF_UP), [-1, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(shift_round(v, 4, Rounding.FLOOR), [-1, -1, -1, 0, 0, 0])


# -- requantise ----------------------------------------------------------------------------------

@pytest.mark.parametrize("rounding", DETERMINISTIC, ids=lambda r: r.value)
@pytest.mark.parametrize("shift", LEFT_SHIFTS + RIGHT_SHIFTS)
@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_requantise(fmt, shift, rounding):
    rng = np.random.default_rng(1000 * fmt.bits + 10 * fmt.frac + shift)
    v = np.concatenate([np.array(boundary_codes(fmt, shift), dtype=np.int64),
                        random_wide_codes(rng, fmt, shift, 1500)])
    got = requantise(v, shift, fmt, rounding)
    wide = apy_array(v, fmt.bits + max(shift, 0) + 4, fmt.frac + shift)
    expected = apy_into(wide, fmt, rounding)
    lo, hi = fmt_range(fmt)
    assert got.min() == lo and got.max() == hi      # the edge list reaches both saturation rails
    np.testing.assert_array_equal(got, expected)


# -- output_error --------------------------------------------------------------------------------

ERROR_PAIRS = [  # (activation, error)
    (QFormat(16, 10), QFormat(16, 12)),   # left shift by 2 (the default formats)
    (QFormat(16, 12), QFormat(16, 10)),   # right shift by 2
    (QFormat(8, 4), QFormat(8, 4)),       # no shift, but y - yhat needs one more bit
    (QFormat(24, 20), QFormat(16, 8)),    # right shift by 12
    (QFormat(12, 8), QFormat(24, 20)),    # left shift by 12
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rounding", DETERMINISTIC, ids=lambda r: r.value)
@pytest.mark.parametrize("act,err", ERROR_PAIRS, ids=lambda f: str(f))
def test_output_error(act, err, rounding, seed):
    rng = np.random.default_rng(seed)
    edges = edge_codes(act)
    y = np.concatenate([np.repeat(edges, len(edges)), random_codes(rng, act, 3000, False)])
    yhat = np.concatenate([np.tile(edges, len(edges)), random_codes(rng, act, 3000, False)])
    got = output_error(y, yhat, act, err, rounding)
    diff = apy_array(y, act.bits, act.frac) - apy_array(yhat, act.bits, act.frac)   # exact
    np.testing.assert_array_equal(got, apy_into(diff, err, rounding))


# -- mac + requantise: the forward and the backward pass ----------------------------------------

MAC_FORMATS = [  # (weight, input, activation)
    (QFormat(16, 12), QFormat(8, 4), QFormat(16, 10)),     # defaults: right shift 6
    (QFormat(16, 12), QFormat(12, 8), QFormat(16, 10)),    # staircase formats: right shift 10
    (QFormat(24, 20), QFormat(24, 20), QFormat(16, 8)),    # right shift 32
    (QFormat(8, 4), QFormat(8, 2), QFormat(16, 10)),       # left shift 4
    (QFormat(8, 4), QFormat(16, 10), QFormat(24, 20)),     # left shift 6
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rounding", DETERMINISTIC, ids=lambda r: r.value)
@pytest.mark.parametrize("w_fmt,a_fmt,z_fmt", MAC_FORMATS, ids=lambda f: str(f))
def test_mac_requantise_forward(w_fmt, a_fmt, z_fmt, rounding, seed):
    rng = np.random.default_rng(seed)
    n_out, n_in = int(rng.integers(1, 9)), int(rng.integers(1, 65))
    w = random_codes(rng, w_fmt, n_out * n_in, False).reshape(n_out, n_in)
    w[0, : min(n_in, 11)] = edge_codes(w_fmt)[: min(n_in, 11)]
    a = random_codes(rng, a_fmt, n_in, False)
    cases = [(w, a)]
    # All-extreme rows and inputs: the largest sums of either sign, saturated.
    lo_w, hi_w = fmt_range(w_fmt)
    lo_a, hi_a = fmt_range(a_fmt)
    extreme = np.array([[lo_w] * n_in, [hi_w] * n_in, [lo_w, hi_w] * (n_in // 2) + [0] * (n_in % 2)])
    cases += [(extreme, np.full(n_in, lo_a)), (extreme, np.full(n_in, hi_a))]
    shift = w_fmt.frac + a_fmt.frac - z_fmt.frac
    for w_, a_ in cases:
        got = requantise(mac(w_, a_), shift, z_fmt, rounding)
        exact = apy_array(w_, w_fmt.bits, w_fmt.frac) @ apy_array(a_, a_fmt.bits, a_fmt.frac)
        np.testing.assert_array_equal(got, apy_into(exact, z_fmt, rounding))


BACK_FORMATS = [  # (weight, error)
    (QFormat(16, 12), QFormat(16, 12)),
    (QFormat(24, 20), QFormat(16, 12)),
    (QFormat(8, 4), QFormat(24, 20)),
    (QFormat(12, 8), QFormat(8, 4)),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rounding", DETERMINISTIC, ids=lambda r: r.value)
@pytest.mark.parametrize("w_fmt,e_fmt", BACK_FORMATS, ids=lambda f: str(f))
def test_mac_requantise_backward(w_fmt, e_fmt, rounding, seed):
    """g = W^T delta, back into formats.error: the shift is weight.frac."""
    rng = np.random.default_rng(seed)
    n_out, n_in = int(rng.integers(1, 12)), int(rng.integers(1, 33))
    w = random_codes(rng, w_fmt, n_out * (n_in + 1), False).reshape(n_out, n_in + 1)
    delta = random_codes(rng, e_fmt, n_out, False)
    delta[: min(n_out, 3)] = [fmt_range(e_fmt)[0], fmt_range(e_fmt)[1], 1][: min(n_out, 3)]
    got = requantise(mac(w[:, :-1].T, delta), w_fmt.frac, e_fmt, rounding)
    wt = apy_array(w[:, :-1].T.copy(), w_fmt.bits, w_fmt.frac)
    exact = wt @ apy_array(delta, e_fmt.bits, e_fmt.frac)
    np.testing.assert_array_equal(got, apy_into(exact, e_fmt, rounding))


# -- scaled_update (the loop gain) -------------------------------------------------------------

UPDATE_FORMATS = {
    "default": Formats(),
    "narrow_acc": Formats(input=QFormat(12, 8), weight=QFormat(16, 12), weight_acc=QFormat(20, 16)),
    "wide": Formats(input=QFormat(8, 4), activation=QFormat(24, 20), error=QFormat(24, 20),
                    weight=QFormat(24, 20), weight_acc=QFormat(32, 28)),
}


def two_layer_config(formats: Formats, gain_shift: int, rounding=Rounding.HALF_UP, **kw) -> LearnerConfig:
    return LearnerConfig(inputs=5, layers=(Layer(4, Activation(ActivationKind.RELU), gain_shift=gain_shift),
                                           Layer(3, gain_shift=gain_shift)),
                         formats=formats, rounding=rounding, **kw)


def gain_constant(gain_shift: int) -> apy.APyFixed:
    """The gain 2**-gain_shift as an exact apytypes scalar."""
    if gain_shift >= 0:
        return apy.APyFixed.from_float(2.0 ** -gain_shift, int_bits=2, frac_bits=gain_shift)
    return apy.APyFixed.from_float(2.0 ** -gain_shift, int_bits=2 - gain_shift, frac_bits=0)


@pytest.mark.parametrize("layer", [0, 1])
@pytest.mark.parametrize("rounding", DETERMINISTIC, ids=lambda r: r.value)
@pytest.mark.parametrize("gain_shift", [-8, -3, 0, 4, 6, 9, 14, 20, 40])
@pytest.mark.parametrize("formats", UPDATE_FORMATS.values(), ids=UPDATE_FORMATS.keys())
def test_scaled_update(formats, gain_shift, rounding, layer):
    config = two_layer_config(formats, gain_shift)
    plan = LayerPlan.build(config, layer)
    in_fmt, err, acc = config.input_format(layer), formats.error, formats.weight_acc
    rng = np.random.default_rng(gain_shift + 10 + 100 * layer)
    delta = np.concatenate([np.array(edge_codes(err), dtype=np.int64), random_codes(rng, err, 20, False)])
    a_aug = np.append(np.concatenate([np.array(edge_codes(in_fmt), dtype=np.int64),
                                      random_codes(rng, in_fmt, 20, False)]), plan.one_code)
    index = np.arange(delta.size * a_aug.size, dtype=np.int64).reshape(delta.size, a_aug.size)
    got = scaled_update(delta, a_aug, plan, acc, rounding, 0x12345678, index)
    exact = apy_array(delta, err.bits, err.frac).outer(apy_array(a_aug, in_fmt.bits, in_fmt.frac))
    exact = exact * gain_constant(gain_shift)
    np.testing.assert_array_equal(got, apy_into(exact, acc, rounding))


# -- The LFSR and stochastic rounding ----------------------------------------------------------

def galois_step_bits(state: int) -> int:
    """One right-shifting Galois step, bit by bit, from the polynomial's taps."""
    bits = [(state >> i) & 1 for i in range(32)]
    out = bits[0]
    new = bits[1:] + [0]
    for tap in POLY_TAPS:
        new[tap - 1] ^= out
    return sum(b << i for i, b in enumerate(new))


def reverse32(v: int) -> int:
    return int(f"{v:032b}"[::-1], 2)


def poly_mulmod(a: int, b: int, poly: int) -> int:
    """Product of two GF(2)[x] polynomials (bit i = coefficient of x^i) modulo ``poly``."""
    degree = poly.bit_length() - 1
    result = 0
    while b:
        if b & 1:
            result ^= a
        b >>= 1
        a <<= 1
        if a >> degree & 1:
            a ^= poly
    return result


def poly_powmod(base: int, exponent: int, poly: int) -> int:
    result = 1
    while exponent:
        if exponent & 1:
            result = poly_mulmod(result, base, poly)
        base = poly_mulmod(base, base, poly)
        exponent >>= 1
    return result


def reciprocal_of_mask(mask: int) -> int:
    """The right-shifting Galois LFSR with ``mask`` multiplies the bit-reversed state by x modulo this."""
    return (1 << 32) | reverse32(mask)


@pytest.mark.parametrize("seed", [1, 0xDEADBEEF, 0x80000000, 0xFFFFFFFF, 0x00010000])
def test_lfsr_matches_polynomial(seed):
    """lfsr_next equals the bit-level Galois LFSR of x^32+x^22+x^2+x+1, and multiplication by x
    modulo the reciprocal polynomial on the bit-reversed state (the algebraic view)."""
    reciprocal = reciprocal_of_mask(sum(1 << (t - 1) for t in POLY_TAPS))
    state = seed
    for _ in range(20000):
        nxt = lfsr_next(state)
        assert nxt == galois_step_bits(state)
        assert reverse32(nxt) == poly_mulmod(reverse32(state), 0b10, reciprocal)
        state = nxt


def test_lfsr_mask_is_the_documented_polynomial():
    assert fixed.LFSR_MASK == sum(1 << (t - 1) for t in POLY_TAPS) == 0x80200003


def test_lfsr_no_short_cycle_and_never_zero():
    state, seen = 1, {1}
    for _ in range(100_000):
        state = lfsr_next(state)
        assert 0 < state < 1 << 32
        assert state not in seen
        seen.add(state)


def test_lfsr_mask_gives_maximal_period():
    """The mask's reciprocal polynomial has x of order exactly 2**32 - 1 (primitive): the LFSR
    visits every non-zero state before repeating. 2**32 - 1 = 3 * 5 * 17 * 257 * 65537."""
    poly = reciprocal_of_mask(fixed.LFSR_MASK)
    order = (1 << 32) - 1
    assert poly_powmod(0b10, order, poly) == 1
    for prime in (3, 5, 17, 257, 65537):
        assert poly_powmod(0b10, order // prime, poly) != 1
    # The jump ahead agrees with stepping (ties the algebra to lfsr_next).
    state = 0xACE1
    for _ in range(12345):
        state = lfsr_next(state)
    assert reverse32(state) == poly_mulmod(reverse32(0xACE1), poly_powmod(0b10, 12345, poly), poly)


@pytest.mark.parametrize("site", [0, 1, 2])
@pytest.mark.parametrize("bits", [0, 1, 2, 7, 16, 31, 32])
def test_stochastic_bits(bits, site):
    rng = np.random.default_rng(bits * 3 + site)
    index = np.arange(4096, dtype=np.int64)
    for state in [1, 0xFFFFFFFF, 0x80000000, *map(int, rng.integers(1, 1 << 32, size=8))]:
        r = stochastic_bits(state, index, site, bits)
        assert r.shape == index.shape
        assert r.min() >= 0 and r.max() < 1 << bits
        if bits == 0:
            np.testing.assert_array_equal(r, 0)
            continue
        expected = [((state ^ (((3 * k + site) * MIX) % 2**32)) % 2**32) >> (32 - bits)
                    for k in range(0, 4096, 37)]
        np.testing.assert_array_equal(r[::37], expected)
    if bits >= 7:  # the indices do get different addends
        assert len(np.unique(stochastic_bits(1, index, site, bits))) > 100


@pytest.mark.parametrize("shift", [1, 2, 5, 12, 20, 32])
def test_shift_round_stochastic_is_floor_of_sum(shift):
    rng = np.random.default_rng(shift)
    v = np.concatenate([np.array(boundary_codes(QFormat(16, 0), shift), dtype=np.int64),
                        rng.integers(-(2**28), 2**28, size=2000, dtype=np.int64)])
    rand = rng.integers(0, 1 << shift, size=v.size, dtype=np.int64)
    rand[:4] = [0, (1 << shift) - 1, 0, (1 << shift) - 1]
    got = shift_round(v, shift, Rounding.STOCHASTIC, rand)
    expected = [(int(a) + int(r)) // (1 << shift) for a, r in zip(v, rand)]
    np.testing.assert_array_equal(got, expected)
    fmt = QFormat(12, 4)
    got = requantise(v, shift, fmt, Rounding.STOCHASTIC, rand)
    np.testing.assert_array_equal(got, [sat(e, fmt) for e in expected])


@pytest.mark.parametrize("shift", [1, 3, 8, 16, 24])
def test_stochastic_rounding_is_unbiased(shift):
    """Mean rounding error over N consecutive LFSR states is ~0, unlike floor and half_up.

    With the fraction f of v/2**d discarded, each rounding adds 1 with probability
    P(r >= 2**d - (v mod 2**d)) = f for uniform r: the error is a Bernoulli(f) minus f, standard
    deviation <= 1/2. Consecutive states share bits (the top ten bits of a Galois state are the
    last ten output bits), so treat samples as independent only in blocks of 2*d+1:
    sd(mean) <= sqrt((2d+1) / (4N)). We allow 5 of those. The fractions tested are >= 1/4, where
    floor's bias is <= -1/4 and half_up's is -1/4 or +1/2, far outside the tolerance.
    """
    n = 1 << 16
    states = np.empty(n, dtype=np.int64)
    state = 0xC0FFEE
    for i in range(n):
        state = lfsr_next(state)
        states[i] = state
    tolerance = 5 * math.sqrt((2 * shift + 1) / (4 * n))
    assert tolerance < 0.1
    base = 12345 << shift
    fractions = sorted({1 << (shift - 1), max(1, 1 << max(shift - 2, 0)), (3 << shift) // 4} - {0})
    for frac_code in fractions:
        f = Fraction(frac_code, 1 << shift)
        if f < Fraction(1, 4):
            continue
        for k in (0, 5, 1000):
            for v0 in (base + frac_code, -base + frac_code):
                r = stochastic_bits(states, np.int64(k), 0, shift)
                rounded = shift_round(np.full(n, v0, dtype=np.int64), shift, Rounding.STOCHASTIC, r)
                error = float(np.mean(rounded)) - v0 / 2**shift
                assert abs(error) < tolerance, (frac_code, k, v0, error)
                for det in DETERMINISTIC:
                    det_error = float(shift_round(np.int64(v0), shift, det)) - v0 / 2**shift
                    assert abs(det_error) > tolerance
    # Over the weights of one step (one state, many indices) it is unbiased as well.
    index = np.arange(n, dtype=np.int64)
    v0 = (7 << shift) + (1 << (shift - 1))
    r = stochastic_bits(0x1234567, index, 0, shift)
    rounded = shift_round(np.full(n, v0, dtype=np.int64), shift, Rounding.STOCHASTIC, r)
    assert abs(float(np.mean(rounded)) - v0 / 2**shift) < tolerance


@pytest.mark.parametrize("layer", [0, 1])
@pytest.mark.parametrize("gain_shift", [-2, 0, 8, 16, 26])
def test_scaled_update_stochastic(gain_shift, layer):
    """u = sat(floor((delta * a + r) / 2**d)) with r from the documented LFSR mix, site 0."""
    formats = UPDATE_FORMATS["narrow_acc"]
    config = two_layer_config(formats, gain_shift, rounding=Rounding.STOCHASTIC)
    plan = LayerPlan.build(config, layer)
    d = plan.update_shift
    assert 0 < d <= 32
    in_fmt = config.input_format(layer)
    rng = np.random.default_rng(gain_shift + 10)
    delta = random_codes(rng, formats.error, 6)
    a_aug = np.append(random_codes(rng, in_fmt, 5), plan.one_code)
    index = np.arange(delta.size * a_aug.size, dtype=np.int64).reshape(delta.size, a_aug.size)
    for state in (1, 0xFFFFFFFF, int(rng.integers(1, 1 << 32))):
        got = scaled_update(delta, a_aug, plan, formats.weight_acc, Rounding.STOCHASTIC, state, index)
        expected = np.empty_like(got)
        for j, dj in enumerate(delta):
            for i, ai in enumerate(a_aug):
                k = j * a_aug.size + i
                r = ((state ^ ((3 * k) * MIX % 2**32)) % 2**32) >> (32 - d)
                expected[j, i] = sat(math.floor(Fraction(int(dj) * int(ai) + r, 1 << d)), formats.weight_acc)
        np.testing.assert_array_equal(got, expected)


# -- activate and apply_window against per-element references ---------------------------------

ACTIVATIONS = {
    "identity": Activation(ActivationKind.IDENTITY),
    "relu": Activation(ActivationKind.RELU),
    "leaky1": Activation(ActivationKind.LEAKY_RELU, slope_shift=1),
    "leaky3": Activation(ActivationKind.LEAKY_RELU, slope_shift=3),
    "leaky16": Activation(ActivationKind.LEAKY_RELU, slope_shift=16),
    "hardtanh": Activation(ActivationKind.HARDTANH),
    "hardtanh_asym": Activation(ActivationKind.HARDTANH, lo=-0.5, hi=2.0),
    "sign": Activation(ActivationKind.SIGN, scale=0.5),
    "staircase": Activation(ActivationKind.STAIRCASE),
    "staircase5": Activation(ActivationKind.STAIRCASE, thresholds=(-0.75, -0.25, 0.25, 0.75), scale=0.25),
}
WINDOWS = {
    "auto": None,
    "all": Window(),
    "lo": Window(lo=-0.5),
    "hi": Window(hi=1.25),
    "lohi": Window(lo=-1.5, hi=0.75),
    "point": Window(lo=0.25, hi=0.25),
    "derivative": Window(derivative=True),
}
ACT_FORMATS = [QFormat(8, 4), QFormat(16, 10)]


def one_layer(act: Activation, window: Window | None, act_fmt: QFormat, rounding: Rounding):
    config = LearnerConfig(inputs=2, layers=(Layer(3, act, window),),
                           formats=Formats(activation=act_fmt), forward_rounding=rounding)
    return config, LayerPlan.build(config, 0)


def ref_sigma(z: int, act: Activation, fmt: QFormat, rounding: Rounding) -> int:
    kind = act.kind
    if kind is ActivationKind.IDENTITY:
        return z
    if kind is ActivationKind.RELU:
        return z if z > 0 else 0
    if kind is ActivationKind.LEAKY_RELU:
        return z if z >= 0 else rnd(Fraction(z, 2**act.slope_shift), rounding)
    if kind is ActivationKind.HARDTANH:
        return min(max(z, exact_code(act.lo, fmt)), exact_code(act.hi, fmt))
    total = 0
    for c in act.thresholds:
        c = exact_code(c, fmt)
        total += (z > c) - (z < c)
    return total * exact_code(act.scale, fmt)


def ref_window(g: int, z: int, act: Activation, win: Window, fmt: QFormat, rounding: Rounding) -> int:
    if win.derivative:
        kind = act.kind
        if kind is ActivationKind.IDENTITY:
            return g
        if kind is ActivationKind.RELU:
            return g if z > 0 else 0
        if kind is ActivationKind.LEAKY_RELU:
            return g if z > 0 else rnd(Fraction(g, 2**act.slope_shift), rounding)
        if kind is ActivationKind.HARDTANH:
            return g if exact_code(act.lo, fmt) < z < exact_code(act.hi, fmt) else 0
        return 0
    above = win.lo is None or z >= exact_code(win.lo, fmt)
    below = win.hi is None or z <= exact_code(win.hi, fmt)
    inside = above and below
    return g if inside else 0


def interesting_z(act: Activation, win: Window, fmt: QFormat, rng) -> np.ndarray:
    """Every code of a narrow format; else edges, each threshold / bound +-1, and random codes."""
    lo, hi = fmt_range(fmt)
    if fmt.bits <= 10:
        return np.arange(lo, hi + 1, dtype=np.int64)
    marks = [0]
    if act.kind is ActivationKind.HARDTANH:
        marks += [act.lo, act.hi]
    if act.is_step:
        marks += list(act.thresholds)
    marks += [b for b in (win.lo, win.hi) if b is not None]
    codes = set(edge_codes(fmt))
    for m in marks:
        c = exact_code(m, fmt)
        codes |= {c - 1, c, c + 1}
    return np.concatenate([np.array(sorted(codes), dtype=np.int64),
                           rng.integers(lo, hi + 1, size=3000, dtype=np.int64)])


@pytest.mark.parametrize("rounding", DETERMINISTIC, ids=lambda r: r.value)
@pytest.mark.parametrize("act_fmt", ACT_FORMATS, ids=str)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activate(name, act_fmt, rounding):
    act = ACTIVATIONS[name]
    config, plan = one_layer(act, None, act_fmt, rounding)
    z = interesting_z(act, config.layers[0].window, act_fmt, np.random.default_rng(7))
    got = activate(z, plan, rounding)
    assert got.shape == z.shape
    np.testing.assert_array_equal(got, [ref_sigma(int(v), act, act_fmt, rounding) for v in z])
    # Batched (2-D) codes give the same values element-wise.
    z2 = z[: (z.size // 4) * 4].reshape(-1, 4)
    np.testing.assert_array_equal(activate(z2, plan, rounding), got[: z2.size].reshape(-1, 4))


@pytest.mark.parametrize("rounding", DETERMINISTIC, ids=lambda r: r.value)
@pytest.mark.parametrize("act_fmt", ACT_FORMATS, ids=str)
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_apply_window(name, window, act_fmt, rounding):
    act = ACTIVATIONS[name]
    config, plan = one_layer(act, WINDOWS[window], act_fmt, rounding)
    win = config.layers[0].window
    rng = np.random.default_rng(11)
    z = interesting_z(act, win, act_fmt, rng)
    err = config.formats.error
    g = random_codes(rng, err, z.size, False)
    g[:6] = [fmt_range(err)[0], fmt_range(err)[1], -1, 1, -7, 7][: min(6, g.size)]
    got = apply_window(g, z, plan, rounding)
    expected = [ref_window(int(gv), int(zv), act, win, act_fmt, rounding) for gv, zv in zip(g, z)]
    np.testing.assert_array_equal(got, expected)


def test_default_windows_resolve_to_the_documented_bounds():
    fmt = QFormat(16, 10)
    cases = {"relu": (-0.5, None), "hardtanh": (-1.0, 1.0), "hardtanh_asym": (-0.5, 2.0),
             "staircase": (-2.0, 2.0), "staircase5": (-1.25, 1.25), "sign": (-1.0, 1.0),
             "identity": (None, None), "leaky3": (None, None)}
    for name, (lo, hi) in cases.items():
        _, plan = one_layer(ACTIVATIONS[name], None, fmt, Rounding.HALF_UP)
        assert plan.window_lo == (None if lo is None else exact_code(lo, fmt)), name
        assert plan.window_hi == (None if hi is None else exact_code(hi, fmt)), name
        assert not plan.derivative


# -- FixedLearner: a whole step against an independent Python-int datapath --------------------

def ref_lfsr_next(state: int) -> int:
    return galois_step_bits(state)


def ref_rand(state: int, k: int, site: int, d: int) -> int:
    if d <= 0:
        return 0
    return ((state ^ ((3 * k + site) * MIX % 2**32)) % 2**32) >> (32 - d)


def ref_shift(v: int, d: int, rounding: Rounding, r: int = 0) -> int:
    if d <= 0:
        return v * 2**-d
    if rounding is Rounding.STOCHASTIC:
        return math.floor(Fraction(v + r, 2**d))
    return rnd(Fraction(v, 2**d), rounding)


class RefLearner:
    """The module docstring's datapath, one Python int at a time."""

    def __init__(self, config: LearnerConfig, weights):
        self.cfg = config
        self.W = [[[int(v) for v in row] for row in w] for w in weights]
        self.V = [[[0] * len(w[0]) for _ in w] if layer.momentum_shift else None
                  for w, layer in zip(self.W, config.layers)]
        self.B = [[[0] * len(w[0]) for _ in w] for w in self.W]
        self.lfsr = config.lfsr_seed
        self.layer_lfsr = [self.lfsr] * len(self.W)
        self.steps = 0

    def view(self, l):
        f = self.cfg.formats
        return [[v // 2 ** (f.weight_acc.frac - f.weight.frac) for v in row] for row in self.W[l]]

    def step(self, x, y):
        cfg, f = self.cfg, self.cfg.formats
        fwd, upd = cfg.forward_rounding, cfg.rounding
        views = [self.view(l) for l in range(len(self.W))]
        a, zs, acts = [int(v) for v in x], [], []
        for l, layer in enumerate(cfg.layers):
            in_fmt = f.input if l == 0 else f.activation
            one = 2**in_fmt.frac
            z = []
            for row in views[l]:
                s = sum(wi * ai for wi, ai in zip(row[:-1], a)) + row[-1] * one
                shift = f.weight.frac + in_fmt.frac - f.activation.frac
                z.append(sat(ref_shift(s, shift, fwd), f.activation))
            zs.append(z)
            a = [ref_sigma(v, layer.activation, f.activation, fwd) for v in z]
            acts.append(a)
        e = [sat(ref_shift(int(yi) - ai, f.activation.frac - f.error.frac, fwd), f.error)
             for yi, ai in zip(y, acts[-1])]
        deltas = [None] * len(self.W)
        g = e
        for l in reversed(range(len(self.W))):
            layer = cfg.layers[l]
            deltas[l] = [ref_window(gj, zj, layer.activation, layer.window, f.activation, fwd)
                         for gj, zj in zip(g, zs[l])]
            if l > 0:
                n_in = len(views[l][0]) - 1
                g = [sat(ref_shift(sum(views[l][j][i] * deltas[l][j] for j in range(len(views[l]))),
                                   f.weight.frac, fwd), f.error) for i in range(n_in)]
        acc = f.weight_acc
        for l in reversed(range(len(self.W))):
            if upd is Rounding.STOCHASTIC:
                self.lfsr = ref_lfsr_next(self.lfsr)
                self.layer_lfsr[l] = self.lfsr
            in_fmt = f.input if l == 0 else f.activation
            a_aug = ([int(v) for v in x] if l == 0 else acts[l - 1]) + [2**in_fmt.frac]
            d = f.error.frac + in_fmt.frac + cfg.layers[l].gain_shift - acc.frac
            for j, dj in enumerate(deltas[l]):
                for i, ai in enumerate(a_aug):
                    k = j * len(a_aug) + i
                    u = sat(ref_shift(dj * ai, d, upd, ref_rand(self.lfsr, k, 0, d)), acc)
                    self.B[l][j][i] = u if cfg.batch_size == 1 else sat(self.B[l][j][i] + u, acc)
        self.steps += 1
        updated = self.steps % cfg.batch_size == 0
        if updated:
            for l in reversed(range(len(self.W))):
                layer, state = cfg.layers[l], self.layer_lfsr[l]
                for j, row in enumerate(self.W[l]):
                    for i, w in enumerate(row):
                        k = j * len(row) + i
                        change = self.B[l][j][i]
                        if layer.momentum_shift:
                            m = layer.momentum_shift
                            v = self.V[l][j][i]
                            v = sat(v - ref_shift(v, m, upd, ref_rand(state, k, 1, m)) + change, acc)
                            self.V[l][j][i] = change = v
                        if layer.leak_shift:
                            s = layer.leak_shift
                            change -= ref_shift(w, s, upd, ref_rand(state, k, 2, s))
                        self.W[l][j][i] = sat(w + change, acc)
                        self.B[l][j][i] = 0
        return zs, acts, e, deltas, updated


HIDDEN = {
    "leaky_all": (Activation(ActivationKind.LEAKY_RELU, slope_shift=2), Window()),
    "hardtanh_window": (Activation(ActivationKind.HARDTANH), Window(lo=-1.5, hi=1.5)),
    "staircase_auto": (Activation(ActivationKind.STAIRCASE, thresholds=(-0.5, 0.0, 0.5), scale=0.5), None),
    "relu_derivative": (Activation(ActivationKind.RELU), Window(derivative=True)),
}
LEARNER_FORMATS = {
    # (formats, gain shifts): update shifts 2 and 1 with the default wide accumulator...
    "default": (Formats(), (14, 7)),
    # ... and large gains into a narrow one (updates often saturate).
    "narrow": (Formats(input=QFormat(8, 4), activation=QFormat(12, 8), error=QFormat(12, 8),
                       weight=QFormat(12, 8), weight_acc=QFormat(16, 12)), (2, 1)),
}
ROUNDINGS = [(Rounding.FLOOR, Rounding.FLOOR), (Rounding.HALF_UP, Rounding.HALF_UP),
             (Rounding.STOCHASTIC, Rounding.HALF_UP), (Rounding.STOCHASTIC, Rounding.FLOOR)]


def small_config(hidden: str, formats: str, rounding, batch_size: int, lfsr_seed: int = 1) -> LearnerConfig:
    act, win = HIDDEN[hidden]
    fmts, (g0, g1) = LEARNER_FORMATS[formats]
    return LearnerConfig(
        inputs=2,
        layers=(Layer(3, act, win, gain_shift=g0, leak_shift=6, momentum_shift=2),
                Layer(2, Activation(ActivationKind.IDENTITY), Window(), gain_shift=g1, leak_shift=5,
                      momentum_shift=3)),
        formats=fmts, batch_size=batch_size, rounding=rounding[0], forward_rounding=rounding[1],
        lfsr_seed=lfsr_seed)


def random_weights(config: LearnerConfig, rng) -> list[np.ndarray]:
    acc = config.formats.weight_acc
    lo, hi = fmt_range(acc)
    return [rng.integers(lo // 3, hi // 3, size=(n_out, n_in + 1), dtype=np.int64)
            for n_in, n_out in zip(config.sizes, config.sizes[1:])]


def random_samples(config: LearnerConfig, rng, n: int):
    f = config.formats
    xs = rng.integers(*(v // 2 for v in fmt_range(f.input)), size=(n, config.inputs), dtype=np.int64)
    ys = rng.integers(*(v // 4 for v in fmt_range(f.activation)), size=(n, config.outputs), dtype=np.int64)
    return xs, ys


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("rounding", ROUNDINGS, ids=lambda r: f"{r[0].value}-{r[1].value}")
@pytest.mark.parametrize("formats", LEARNER_FORMATS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_fixed_learner_step_matches_reference(hidden, formats, rounding, batch_size, seed):
    config = small_config(hidden, formats, rounding, batch_size, lfsr_seed=0x1234 + seed)
    rng = np.random.default_rng(seed)
    weights = random_weights(config, rng)
    learner, ref = FixedLearner(config, [w.copy() for w in weights]), RefLearner(config, weights)
    xs, ys = random_samples(config, rng, 7)
    before = [w.copy() for w in learner.weights]
    changed = False
    for t, (x, y) in enumerate(zip(xs, ys)):
        trace = learner.step(x, y)
        zs, acts, e, deltas, updated = ref.step(x, y)
        assert trace.step == t
        assert trace.updated == updated == ((t + 1) % batch_size == 0)
        for l in range(2):
            np.testing.assert_array_equal(trace.z[l], zs[l], err_msg=f"step {t} z[{l}]")
            np.testing.assert_array_equal(trace.a[l], acts[l], err_msg=f"step {t} a[{l}]")
            np.testing.assert_array_equal(trace.delta[l], deltas[l], err_msg=f"step {t} delta[{l}]")
            np.testing.assert_array_equal(trace.weights[l], ref.W[l], err_msg=f"step {t} weights[{l}]")
            np.testing.assert_array_equal(trace.velocity[l], ref.V[l], err_msg=f"step {t} velocity[{l}]")
            assert trace.weights[l].dtype == np.int64
        np.testing.assert_array_equal(trace.error, e)
        np.testing.assert_array_equal(trace.prediction, acts[-1])
        assert trace.lfsr == ref.lfsr
        now = [w.copy() for w in trace.weights]
        if not updated:  # mini-batch: the weights move only at the end of a batch
            for b, w in zip(before, now):
                np.testing.assert_array_equal(w, b)
        else:
            changed |= any(not np.array_equal(b, w) for b, w in zip(before, now))
        before = now
    assert changed, "no step changed the weights: the test exercised nothing"
    if rounding[0] is Rounding.STOCHASTIC:  # one LFSR step per layer and sample
        state = config.lfsr_seed
        for _ in range(2 * len(xs)):
            state = ref_lfsr_next(state)
        assert learner.lfsr == state


@pytest.mark.parametrize("formats", LEARNER_FORMATS)
def test_forward_matches_apytypes(formats):
    """z of every layer = the exact apytypes MAC with the bias input 1.0, cast into activation."""
    config = small_config("hardtanh_window", formats, ROUNDINGS[1], 1)
    f = config.formats
    rng = np.random.default_rng(3)
    learner = FixedLearner(config, random_weights(config, rng))
    xs, _ = random_samples(config, rng, 20)
    zs, acts = learner.forward(xs)
    inputs = [xs, acts[0]]
    for l in range(2):
        in_fmt = config.input_format(l)
        view = learner.weights[l] >> (f.weight_acc.frac - f.weight.frac)
        w_apy = apy_array(view, f.weight.bits, f.weight.frac)
        for n, a in enumerate(inputs[l]):
            a_aug = np.append(a, 1 << in_fmt.frac)
            exact = w_apy @ apy_array(a_aug, in_fmt.bits + 1, in_fmt.frac)
            np.testing.assert_array_equal(zs[l][n], apy_into(exact, f.activation, Rounding.HALF_UP))


def test_step_traces_are_snapshots():
    """A trace is "the state after the step": keeping traces must not let later steps rewrite them."""
    config = small_config("leaky_all", "default", ROUNDINGS[1], 1)
    rng = np.random.default_rng(5)
    learner = FixedLearner(config, random_weights(config, rng))
    xs, ys = random_samples(config, rng, 4)
    traces, snapshots = [], []
    for x, y in zip(xs, ys):
        traces.append(learner.step(x, y))
        snapshots.append([w.copy() for w in traces[-1].weights])
    assert not np.array_equal(snapshots[0][0], snapshots[-1][0])
    for t, (trace, snap) in enumerate(zip(traces, snapshots)):
        for l in range(2):
            np.testing.assert_array_equal(trace.weights[l], snap[l],
                                          err_msg=f"trace of step {t} changed later")


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("momentum", [None, 1])
def test_huge_gain_saturates_without_wrapping(momentum, batch_size):
    """With gain 2**8 every update overflows weight_acc: weights must pin to the rails, never wrap."""
    formats = Formats()
    lo, hi = fmt_range(formats.weight_acc)
    config = LearnerConfig(inputs=1, layers=(Layer(1, gain_shift=-8, momentum_shift=momentum),),
                           formats=formats, batch_size=batch_size)
    learner = FixedLearner(config, [np.zeros((1, 2), dtype=np.int64)])
    x_max = fmt_range(formats.input)[1]
    y_lo, y_hi = fmt_range(formats.activation)
    first = True
    for target in (y_hi, y_lo, y_hi):
        for _ in range(8 * batch_size):
            before = learner.weights[0].copy()
            trace = learner.step(np.array([x_max]), np.array([target]))
            w = trace.weights[0]
            assert w.min() >= lo and w.max() <= hi
            if momentum:
                assert learner.velocity[0].min() >= lo and learner.velocity[0].max() <= hi
            else:
                # x and the bias input are positive: a step moves each weight with the error's sign.
                assert np.all((w - before) * np.sign(trace.error[0]) >= 0), (before, w, trace.error)
            if first and trace.updated:
                # From 0, one update of about 2**42 LSB lands exactly on the top rail.
                np.testing.assert_array_equal(w, [[hi, hi]])
                first = False
        if target > 0:
            assert w.min() > hi // 2
        else:
            assert w.max() < lo // 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_huge_gain_network_stays_in_format(seed):
    config = LearnerConfig(inputs=2, layers=(Layer(3, Activation(ActivationKind.RELU), gain_shift=-8,
                                                   leak_shift=1, momentum_shift=1),
                                             Layer(2, gain_shift=-8, momentum_shift=2)),
                           batch_size=2, rounding=Rounding.STOCHASTIC)
    acc = config.formats.weight_acc
    lo, hi = fmt_range(acc)
    rng = np.random.default_rng(seed)
    learner = FixedLearner(config, random_weights(config, rng))
    xs, ys = random_samples(config, rng, 40)
    rails = False
    for x, y in zip(xs, ys * 4):
        trace = learner.step(x, y)
        for w, v in zip(trace.weights, trace.velocity):
            assert w.min() >= lo and w.max() <= hi
            assert v.min() >= lo and v.max() <= hi
            rails |= bool((w == lo).any() or (w == hi).any())
    assert rails, "the gain never drove a weight to saturation: the test exercised nothing"


def test_initial_weights_are_quantised_half_up():
    config = small_config("leaky_all", "default", ROUNDINGS[1], 1).with_changes(init_seed=4)
    from nfloop.model.init import initial_weights
    real = initial_weights(config)
    learner = FixedLearner(config)
    frac = config.formats.weight_acc.frac
    for w, r in zip(learner.weights, real):
        expected = [[math.floor(Fraction(float(v)) * 2**frac + Fraction(1, 2)) for v in row] for row in r]
        np.testing.assert_array_equal(w, expected)
    # Explicit init rows (the staircase start (w, b) = (0.3, 0.8)) go through the same rounding.
    config = LearnerConfig(inputs=1, layers=(Layer(1, init=((0.3, 0.8),)),))
    np.testing.assert_array_equal(FixedLearner(config).weights[0],
                                  [[math.floor(Fraction(0.3) * 2**28 + Fraction(1, 2)),
                                    math.floor(Fraction(0.8) * 2**28 + Fraction(1, 2))]])


def test_fixed_learner_rejects_bad_weights():
    config = small_config("leaky_all", "default", ROUNDINGS[1], 1)
    good = random_weights(config, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"layer 1 weights must have shape \(2, 4\)"):
        FixedLearner(config, [good[0], good[1][:, :-1]])
    lo, hi = fmt_range(config.formats.weight_acc)
    for bad in (hi + 1, lo - 1):
        w = [good[0].copy(), good[1].copy()]
        w[0][1, 1] = bad
        with pytest.raises(ValueError, match="outside formats.weight_acc"):
            FixedLearner(config, w)


def test_skipped_saturation_equals_always_saturating():
    """The learner skips the weight clamp only where it cannot change anything."""
    cfg = LearnerConfig(inputs=4, layers=(Layer(3, gain_shift=-6), Layer(2, gain_shift=-4)),
                        formats=Formats(weight=QFormat(12, 8), weight_acc=QFormat(16, 12)))
    learner = FixedLearner(cfg)
    acc = cfg.formats.weight_acc
    rng = np.random.default_rng(7)
    clamped = 0
    for _ in range(2000):
        before = list(learner.weights)
        x, y = rng.integers(-128, 128, 4), rng.integers(-3000, 3000, 2)
        trace = learner.step(x, y)
        for l, plan in enumerate(learner.plans):
            a_aug = np.append(x if l == 0 else trace.a[l - 1], plan.one_code)
            u = scaled_update(trace.delta[l], a_aug, plan, acc, cfg.rounding, 0, None)
            raw = before[l] + u
            clamped += int(np.sum(raw != saturate(raw, acc)))
            np.testing.assert_array_equal(trace.weights[l], saturate(raw, acc))
    assert clamped > 1000          # the run really did saturate, often


# -- every dispatch over a closed set fails loudly on anything else ---------------------------

def test_the_unit_tests_cover_every_activation_kind():
    """A new kind must get a case here before any unit test can pass for it."""
    assert {a.kind for a in ACTIVATIONS.values()} == set(ActivationKind)


@pytest.mark.parametrize("derivative", [False, True])
def test_an_unknown_activation_is_refused(derivative):
    import dataclasses
    _, plan = one_layer(Activation(ActivationKind.RELU), Window(derivative=derivative), QFormat(16, 10),
                        Rounding.HALF_UP)
    plan = dataclasses.replace(plan, kind="swish")
    z = np.arange(-4, 4, dtype=np.int64)
    with pytest.raises(ValueError, match="no activation 'swish'"):
        apply_window(z, z, plan, Rounding.HALF_UP) if derivative else activate(z, plan, Rounding.HALF_UP)


def test_an_unknown_rounding_is_refused():
    with pytest.raises(ValueError, match="no rounding mode 'banker'"):
        shift_round(np.arange(4, dtype=np.int64), 2, "banker")


@pytest.mark.parametrize("function", ["sigma", "sigma_slope"])
def test_the_float_model_refuses_an_unknown_activation(function):
    from types import SimpleNamespace

    from nfloop.model import floating
    with pytest.raises(ValueError, match="no activation 'swish'"):
        getattr(floating, function)(np.zeros(3), SimpleNamespace(kind="swish"))
