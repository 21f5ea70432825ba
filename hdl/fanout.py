"""Registered copies of a control signal, so that no single net drives thousands of loads.

A select line that steers every lane of a 64-lane core reaches a few thousand
LUT inputs across the chip; its routing alone can take longer than a clock
cycle. Each copy drives a share of them instead. Yosys merges equal
registers into one, so on an FPGA each copy is the family's own flip-flop
primitive, which it keeps (``platform.get_flip_flop(d, q)``, which the board
platforms have); in simulation a copy is an ordinary register.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, Value

__all__ = ["registered_copies", "GROUP"]

#: Loads (lanes, accumulators, banks) one copy drives.
GROUP = 8


def registered_copies(m: Module, platform, value, copies: int, name: str) -> list[Signal]:
    """``copies`` registers of ``value``, each equal to ``value`` one cycle later (not reset)."""
    value = Value.cast(value)
    out = []
    for k in range(copies):
        copy = Signal(value.shape(), name=f"{name}_copy{k}", reset_less=True)
        if copies > 1 and hasattr(platform, "get_flip_flop"):
            for b in range(len(value)):
                m.submodules[f"{name}_copy{k}_{b}"] = platform.get_flip_flop(value[b], copy[b])
        else:
            m.d.sync += copy.eq(value)
        out.append(copy)
    return out
