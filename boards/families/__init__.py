"""FPGA families: what building, timing, reporting and flashing need to know about each kind of chip.

A board is a :class:`~nfloop.boards.catalog.BoardSpec` plus one :class:`Family`.
Each family is one module of this package that defines ``FAMILY``: the tools
pip installs for it, the synthesis options, the nextpnr cell types its report
counts, its PLL, its DSP block with the registers a trustworthy timing figure
needs, its flip-flop and its single-port RAM. The package finds every module,
so adding a family is one new module here (and its tests); adding a board of a
known family touches only the catalog.

The gateware asks the platform for the family's primitives, as Amaranth's own
library asks for ``get_ff_sync``: :meth:`Family.platform` gives the board's
amaranth-boards platform ``get_multiplier`` and ``get_flip_flop``.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

from amaranth.hdl import Module

__all__ = ["Family", "DSP", "SPRAM", "FAMILIES", "family"]

#: 16-bit words of one block RAM (an ECP5 DP16KD or a Gowin BSRAM as 1024 x 16): a bank of the data
#: memory (:class:`~nfloop.boards.top.DataMemory`), so that a bank's write enable and read data go to
#: and from one place. Banks of four blocks had Yosys's own decoder and multiplexer spread over blocks
#: far apart (7 ns of routing on the ULX3S).
BANK_WORDS = 1024


@dataclass(frozen=True)
class DSP:
    """A family's multiplier block, always built with its input and output registers: nextpnr does not
    time the iCE40's multiplier at all, and the others are slow without them.

    primitive : the cell's name.
    width : the widest signed operand it takes.
    registers : the parameters that put its registers in, as nextpnr's netlist shows them; a build
        fails a DSP without them.
    clock : its clock port, which must not be tied to a constant.
    build : ``build(m, a, b, product)`` adds the block to ``m``: ``product = a * b`` two cycles after
        ``a`` and ``b``, as :class:`nfloop.hdl.mac.Multiplier` promises.
    """
    primitive: str
    width: int
    registers: dict
    clock: str
    build: Callable


@dataclass(frozen=True)
class SPRAM:
    """Single-port RAM blocks of 16-bit words with a nibble write mask (the iCE40UP5K's).

    words : words in one block.
    bank : ``bank(addr, wdata, wmask, write, rdata)``, the Instance of one block; ``wmask`` has a
        bit per byte, ``rdata`` holds the word at ``addr`` one cycle later.
    """
    words: int
    bank: Callable


@dataclass(frozen=True)
class Family:
    """One FPGA family.

    name : ``BoardSpec.family``, and the module's name in this package.
    tools : the tools Amaranth's build plan invokes, in order, each with the executable that pip
        installs for it and the step it is ("synthesis", "place and route", "bitstream").
    cells : nextpnr's cell type for each resource a report counts (``luts``, ``ffs``, ``dsps``,
        ``bram``, ``spram``); None counts none. A tuple sums the used cells of several types that
        take the same sites (a Gowin ALU bit sits where a LUT4 would); the first type's total is
        the resource's total.
    ffs_in_log : ``ffs_in_log(log)``, the flip-flops used, for a family whose report has no
        flip-flop cell (the iCE40's logic cell pairs a LUT4 with a flip-flop).
    logic : what the report's ``luts`` are called on this family.
    pll : ``pll(oscillator_hz, clock_hz, device)``, the PLL settings that make the clock.
    pll_primitive : ``pll_primitive(m, settings, pin, output, locked)`` adds the PLL to a module
        (:class:`~nfloop.boards.clocks.BoardClock`).
    reset_buffer : ``reset_buffer(m, reset)``, the reset on a global network, for a family whose
        place-and-route promotes only clocks; None: nextpnr routes or promotes it itself.
    dsp : the multiplier block.
    flip_flop : ``flip_flop(d, q)``, the Instance of one flip-flop, which Yosys does not merge
        with its equals (:func:`nfloop.hdl.fanout.registered_copies`).
    spram : single-port RAM blocks for the data set, None without them.
    block_ram : ``block_ram(addr, wdata, wmask, rdata)``, the Instance of one single-port block RAM of
        :data:`BANK_WORDS` 16-bit words, ``wmask`` a bit per byte, ``rdata`` the word at ``addr`` two
        cycles later (before any write in that cycle), from the block's own output register: the data
        memory's banks and the frame buffer. None: they are inferred, and registered in the fabric.
    bank_ram : ``bank_ram(depth, shape, init)``, a core weight bank (:class:`nfloop.hdl.core.LearnerCore`):
        a component with a ``read`` and a ``write`` port as :class:`amaranth.lib.memory.Memory`'s, whose
        read data comes from the block's own output register a cycle after a memory's would; None from
        it, or no ``bank_ram``: the bank is inferred and registered in the fabric.
    small_memory_words : the core's vector memories shallower than this are built from flip-flops
        (:class:`nfloop.hdl.vectors.VectorMemory`); None: the core's own bound. 0 on the iCE40, whose
        logic cells run out before its block RAMs.
    timing_margin : Fmax over the clock a build must reach, and ``untimed``, why.
    synth_opts : ``synth_opts(platform)``, extra options for the family's Yosys ``synth_*`` command.
    sram_loading : whether openFPGALoader can load a bitstream into configuration SRAM.
    packages : the pip distributions of its place-and-route and packing tools, whose versions key
        a cached build.
    templates : Amaranth command templates that replace the platform's, by the tool they invoke.
    placers : the nextpnr placers its back end has that a board may name (``BoardSpec.placer``): the
        analytic ``heap``, its default, and on the ECP5 the ``static`` placer too (nextpnr's Gowin
        back end refuses it).
    cell_models : the gate-level simulation models of its cells (:mod:`nfloop.boards.netlist`): files
        of the YoWASP Yosys's ``share/`` folder, and files next to this module (``NAME_sim.v``) that
        model the cells ``share/`` has only as black boxes. Empty: no gate-level simulation.
    """
    name: str
    tools: tuple[tuple[str, str, str], ...]
    cells: dict
    logic: str
    pll: Callable
    pll_primitive: Callable
    dsp: DSP
    flip_flop: Callable
    spram: SPRAM | None = None
    block_ram: Callable | None = None
    bank_ram: Callable | None = None
    small_memory_words: int | None = None
    reset_buffer: Callable | None = None
    ffs_in_log: Callable | None = None
    timing_margin: float = 1.0
    untimed: str = ""
    synth_opts: Callable = lambda platform: ()
    sram_loading: bool = True
    packages: tuple[str, ...] = ()
    templates: dict = field(default_factory=dict)
    placers: tuple[str, ...] = ("heap",)
    cell_models: tuple[str, ...] = ()

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

    def multiplier(self, multiplier) -> Module | None:
        """The DSP block for a :class:`~nfloop.hdl.mac.Multiplier`, None when its operands are wider."""
        if max(len(multiplier.a), len(multiplier.b)) > self.dsp.width:
            return None
        m = Module()
        self.dsp.build(m, multiplier.a, multiplier.b, multiplier.product)
        return m

    def platform(self, platform):
        """``platform``, an amaranth-boards platform of this family, giving the gateware this
        family's primitives: ``get_multiplier(multiplier)``, ``get_flip_flop(d, q)`` and, where the
        family has them, ``get_block_ram(addr, wdata, wmask, rdata)`` and ``get_bank_ram(depth, shape, init)``;
        ``small_memory_words`` where the family sets it."""
        platform.get_multiplier = self.multiplier
        platform.get_flip_flop = self.flip_flop
        if self.block_ram is not None:
            platform.get_block_ram = self.block_ram
        if self.bank_ram is not None:
            platform.get_bank_ram = self.bank_ram
        if self.small_memory_words is not None:
            platform.small_memory_words = self.small_memory_words
        return platform


def _discover() -> dict[str, Family]:
    families = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        chip = importlib.import_module(f"{__name__}.{module.name}").FAMILY
        assert chip.name == module.name, f"{module.name}.py defines the family {chip.name!r}"
        families[chip.name] = chip
    return families


#: Every family, by name.
FAMILIES: dict[str, Family] = _discover()


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown FPGA family {name!r}; nfloop builds for {', '.join(FAMILIES)}") from None
