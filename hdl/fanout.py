"""Registered copies of a control signal, so that no single net drives thousands of loads.

A select line that steers every lane of a 64-lane core reaches a few thousand
LUT inputs across the chip; its routing alone can take longer than a clock
cycle. Each copy drives a share of them instead. Yosys merges equal
registers into one, so on an FPGA each copy is the family's own flip-flop
primitive, which it keeps; in simulation a copy is an ordinary register.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Instance, Module, Signal, Value

from .mac import fpga_family

__all__ = ["registered_copies", "GROUP"]

#: Loads (lanes, accumulators, banks) one copy drives.
GROUP = 8


def _flip_flop(platform, d, q) -> Instance | None:
    family = fpga_family(platform)
    if family == "ecp5":
        return Instance("TRELLIS_FF", p_GSR="DISABLED", p_CEMUX="1", p_CLKMUX="CLK", p_LSRMUX="LSR",
                        p_REGSET="RESET", p_SRMODE="LSR_OVER_CE", i_CLK=ClockSignal(), i_DI=d, i_LSR=0, o_Q=q)
    if family == "ice40":
        return Instance("SB_DFF", i_C=ClockSignal(), i_D=d, o_Q=q)
    if family == "gowin":
        return Instance("DFF", i_CLK=ClockSignal(), i_D=d, o_Q=q)
    return None


def registered_copies(m: Module, platform, value, copies: int, name: str) -> list[Signal]:
    """``copies`` registers of ``value``, each equal to ``value`` one cycle later (not reset)."""
    value = Value.cast(value)
    out = []
    for k in range(copies):
        copy = Signal(value.shape(), name=f"{name}_copy{k}", reset_less=True)
        if copies > 1 and _flip_flop(platform, value[0], copy[0]) is not None:
            for b in range(len(value)):
                m.submodules[f"{name}_copy{k}_{b}"] = _flip_flop(platform, value[b], copy[b])
        else:
            m.d.sync += copy.eq(value)
        out.append(copy)
    return out
