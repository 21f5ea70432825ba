"""Verilog of the learner core."""

from __future__ import annotations

from amaranth.back import verilog

from ..hdl.core import LearnerCore
from ..model.config import LearnerConfig

__all__ = ["TOP_NAME", "core_verilog"]

TOP_NAME = "nfloop_core"


def core_verilog(config: LearnerConfig, lanes: int, weights=None, name: str = TOP_NAME, narrow: bool = False,
                 convert=None) -> str:
    """The core as a Verilog module (ports: clk, rst and the component's signature).

    ``convert(core, name)`` turns the core into Verilog another way: a gate-level netlist
    (:func:`nfloop.boards.netlist.core_netlist`) keeps the ports' names.
    """
    core = LearnerCore(config, lanes, weights, narrow=narrow)
    if convert is not None:
        return convert(core, name)
    return verilog.convert(core, name=name, emit_src=False)
