"""Fixed-point expressions mirroring :mod:`nfloop.model.fixed`, one for one.

Each function builds an Amaranth expression for the hardware operation that
the model function of the same name defines.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Value, signed

from ..model.config import QFormat, Rounding

__all__ = ["saturate", "shift_round", "requantise", "weight_view", "const_mul"]


def saturate(value: Value, fmt: QFormat) -> Value:
    """Clamp into ``fmt``; the result has exactly ``fmt.bits`` bits.

    A signed value fits ``fmt`` exactly when its bits from the format's sign
    bit up are all equal, and one that does not fit clamps to the end of its
    own sign: a few gates, where comparing with the bounds takes two carry chains.
    """
    value = Value.cast(value)
    n = fmt.bits
    if not value.shape().signed:
        value = Cat(value, Const(0, 1)).as_signed()          # room for the sign bit
    if value.shape().width <= n:
        return value.as_signed()
    top = value[n - 1:]
    fits = (top == 0) | (top == (1 << len(top)) - 1)
    clamp = Mux(value[-1], Const(fmt.min_code, signed(n)), Const(fmt.max_code, signed(n)))
    return Mux(fits, value[:n], clamp)[:n].as_signed()


def shift_round(value: Value, shift: int, rounding: Rounding, rand: Value | None = None) -> Value:
    """Arithmetic right shift by ``shift`` with rounding; ``shift <= 0`` shifts left, exactly.

    ``rand`` is the stochastic addend in [0, 2**shift), an unsigned value.
    """
    value = Value.cast(value).as_signed()
    if shift <= 0:
        return value << -shift
    match rounding:
        case Rounding.FLOOR:
            return value >> shift
        case Rounding.HALF_UP:
            return (value + (1 << (shift - 1))) >> shift
        case Rounding.STOCHASTIC:
            if rand is None:
                raise ValueError("stochastic rounding needs the random addend")
            return (value + rand[:shift].as_unsigned()) >> shift
        case _:
            raise ValueError(f"no rounding mode {rounding!r}")


def requantise(value: Value, shift: int, fmt: QFormat, rounding: Rounding, rand=None) -> Value:
    return saturate(shift_round(value, shift, rounding, rand), fmt)


def weight_view(w_acc: Value, shift: int, fmt: QFormat) -> Value:
    """The MAC's weight: the top ``fmt.bits`` bits of the accumulator (floor)."""
    return Value.cast(w_acc)[shift:shift + fmt.bits].as_signed()


def const_mul(value: Value, factor: int) -> Value:
    """``value * factor`` for a constant ``factor >= 0``, as a sum of shifted copies.

    Not a model function: address arithmetic. Yosys maps every ``*``, even by a
    constant, onto a DSP block on iCE40; a sum of shifts stays in the fabric.
    """
    value = Value.cast(value)
    terms = [value << b for b in range(factor.bit_length()) if factor >> b & 1]
    total = Const(0, 1)
    for term in terms:
        total = total + term
    return total
