"""What the board top and the build need to know about a board: :class:`BoardSpec`.

The specs themselves are in :mod:`.catalog`. A build depends on its own board's
spec, not on the rest of the catalog, so a change to one board's entry leaves
the others' builds current (:func:`~.build.gateware_id`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from ..model.config import ConfigError

__all__ = ["BoardSpec", "PROTOCOL_VERSION", "GATEWARE_VERSION", "ENGINE_BLOCK_RAMS", "BLOCK_RAM_MARGIN"]

#: Bumped when the frame format or a command's payload changes.
PROTOCOL_VERSION = 3
#: Bumped when the board top changes in a way the host can observe.
GATEWARE_VERSION = 3
#: Block RAMs of the protocol engine (its 1 KiB frame buffer) and those kept free beyond the core's own
#: estimate (its input, target and vector memories, which Yosys may also put in block RAM).
ENGINE_BLOCK_RAMS = 1
BLOCK_RAM_MARGIN = 8


@dataclass(frozen=True)
class BoardSpec:
    """One board.

    name : the ``--board`` name.
    family : the name of its :class:`~.families.Family`: ``ice40``, ``ecp5`` or ``gowin``
        (``virtual`` for the Verilator board).
    device, package : the FPGA.
    clock_hz : the clock the gateware runs at: the PLL's output.
    oscillator_hz : the board's oscillator, which feeds the PLL (None: no PLL, as on the virtual board).
    lanes : multipliers of the learner core.
    narrow : the core for a small device: it maps its layers so that each hidden layer's vectors fit a
        16-bit block RAM (the UP5K has thirty of them, and logic cells are what it runs out of first),
        and its update ops read their old weights a second time rather than carry them
        (:attr:`~nfloop.hdl.layout.CoreLayout.reread_weights`).
    data_words : 16-bit words of on-chip memory for samples and the epoch order; None: every block RAM
        the core and the protocol engine leave free (:meth:`sized_for`).
    block_rams : the FPGA's block RAMs (ECP5 DP16KD, Gowin BSRAM: 1024 16-bit words each), for
        ``data_words=None``.
    data_block_rams : with ``data_words=None``, at most this many of the free block RAMs hold the
        data set (None: all of them). A data memory spread over every block RAM of a large die
        takes routing the lanes need (``docs/boards.md``, ULX3S).
    data_memory : ``spram`` (iCE40UP5K single-port RAM) or ``block`` (inferred block RAM).
    baud, max_baud : the UART's default rate and the highest the board's serial bridge takes.
    loader : openFPGALoader's ``-b`` name; None if the board cannot be flashed with it.
    bitstream : the bitstream file's extension.
    serial : how the host sees the board's UART.
    placer : nextpnr's placer, one of its family's :attr:`~.families.Family.placers` (``heap``, the
        default, or on the ECP5 ``static``). The static placer spreads a large design more evenly: the
        64-lane ULX3S core routes after it and not after ``heap`` (``docs/boards.md``).
    board_platform : makes the amaranth-boards platform (None for the virtual board); :meth:`platform`
        gives it its family's primitives.
    """
    name: str
    description: str
    family: str
    device: str
    package: str
    clock_hz: int
    lanes: int
    data_words: int | None
    data_memory: str
    oscillator_hz: int | None = None
    narrow: bool = False
    block_rams: int = 0
    data_block_rams: int | None = None
    baud: int = 115200
    max_baud: int = 115200
    timeout_ms: int = 10
    loader: str | None = None
    bitstream: str = "bit"
    serial: str = ""
    placer: str = "heap"
    board_platform: Callable | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.data_block_rams is not None and not (isinstance(self.data_block_rams, int)
                                                     and self.data_block_rams >= 1):
            raise ConfigError(f"{self.name}: data_block_rams must be a whole number of at least 1, or None for "
                              f"every free block RAM, not {self.data_block_rams!r}")
        family = self.fpga_family          # none for the virtual board, which nextpnr never places
        if family is not None and self.placer not in family.placers:
            raise ConfigError(f"{self.name}: nextpnr places {self.family} designs with "
                              f"{' or '.join(family.placers)}, not {self.placer!r}")

    def sized_for(self, config) -> BoardSpec:
        """This board with its data memory sized: explicitly, or from the block RAM left free."""
        if self.data_words is not None:
            return self
        from ..hdl.layout import CoreLayout
        layout = CoreLayout(config, self.lanes, narrow=self.narrow)
        free = self.block_rams - layout.block_rams() - ENGINE_BLOCK_RAMS - BLOCK_RAM_MARGIN
        if free < 1:
            raise ConfigError(f"{self.name}: the core at {self.lanes} lanes leaves no block RAM for the data set; "
                              f"use fewer lanes or a smaller network")
        most = free if self.data_block_rams is None else self.data_block_rams
        return replace(self, data_words=min(free, most) * 1024)

    @property
    def fpga_family(self):
        """The board's :class:`~.families.Family` (None for the virtual board)."""
        from .families import FAMILIES
        return FAMILIES.get(self.family)

    def platform(self):
        """The board's Amaranth platform, which builds its family's DSP blocks and flip-flops."""
        if self.board_platform is None:
            raise ConfigError(f"{self.name} is not an FPGA board: it has no platform")
        return self.fpga_family.platform(self.board_platform())

    @property
    def pll(self):
        """The PLL settings that make ``clock_hz`` from the oscillator (None without a PLL)."""
        if self.oscillator_hz is None:
            return None
        return self.fpga_family.pll(self.oscillator_hz, self.clock_hz, self.device)

    @property
    def timeout_cycles(self) -> int:
        """Clock cycles without a byte after which a half-received frame is answered TIMEOUT."""
        return self.clock_hz * self.timeout_ms // 1000

    def with_baud(self, baud: int | None) -> BoardSpec:
        """This board at another baud rate; checked against the serial bridge's limit."""
        if baud is None:
            return self
        if not (isinstance(baud, int) and 0 < baud <= self.max_baud):
            raise ConfigError(f"baud rate {baud} is not supported on {self.name}: choose 1 .. {self.max_baud}")
        return replace(self, baud=baud)
