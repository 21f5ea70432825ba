"""Verilog of the learner core."""

from __future__ import annotations

from amaranth.back import verilog

from ..hdl.core import LearnerCore
from ..model.config import LearnerConfig

__all__ = ["TOP_NAME", "core_verilog"]

TOP_NAME = "nfloop_core"


def core_verilog(config: LearnerConfig, lanes: int, weights=None, name: str = TOP_NAME, narrow: bool = False) -> str:
    """The core as a Verilog module (ports: clk, rst and the component's signature)."""
    core = LearnerCore(config, lanes, weights, narrow=narrow)
    return verilog.convert(core, name=name, emit_src=False)
