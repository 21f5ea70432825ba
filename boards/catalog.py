"""The boards nfloop builds for, and the virtual board: one :class:`BoardSpec` each.

A spec holds what the board top and the build need to know about a board:
its FPGA, the clock the design runs at, how many MAC lanes fit, how large the
on-chip data-set memory is and what it is built from, and the UART's default
baud rate. ``BOARDS`` lists the real boards; :data:`VIRTUAL` is the Verilator
board that ``nfloop serve-sim`` runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from ..model.config import ConfigError

__all__ = ["BoardSpec", "BOARDS", "VIRTUAL", "board_spec", "PROTOCOL_VERSION", "GATEWARE_VERSION"]

#: Bumped when the frame format or a command's payload changes.
PROTOCOL_VERSION = 3
#: Bumped when the board top changes in a way the host can observe.
GATEWARE_VERSION = 3
#: Block RAMs of the protocol engine (its 1 KiB frame buffer) and those kept free beyond the core's own
#: estimate (its input, target and vector memories, which Yosys may also put in block RAM).
ENGINE_BLOCK_RAMS = 1
BLOCK_RAM_MARGIN = 8
#: The ECP5-85F's data memory: 80 block RAMs, 81,920 words, hold every built-in data set (digits takes
#: 77,271 words with its epoch order). At 32 lanes all 167 free blocks left nextpnr 37,000 of 100,000
#: arcs to route after 37 minutes; with 80 it routed (docs/boards.md).
DATA_BLOCK_RAMS_85F = 80


def _icebreaker():
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    return ICEBreakerPlatform()


def _ulx3s():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform
    return ULX3S_85F_Platform()


def _orangecrab():
    from amaranth.build import Attrs
    from amaranth_boards.orangecrab_r0_2 import OrangeCrabR0_2_25FPlatform
    from amaranth_boards.resources import UARTResource
    platform = OrangeCrabR0_2_25FPlatform()
    # The OrangeCrab's USB goes straight to the FPGA, with no serial bridge: the link is a
    # 3.3 V USB-serial adapter on the Feather header's TX/RX pins.
    platform.add_resources([UARTResource(0, rx="N17", tx="M18", attrs=Attrs(IO_TYPE="LVCMOS33", PULLMODE="UP"))])
    return platform


def _tangnano9k():
    from amaranth_boards.tang_nano_9k import TangNano9kPlatform
    return TangNano9kPlatform()


def _tangprimer20k():
    from amaranth_boards.tang_primer_20k import TangPrimer20kPlatform
    return TangPrimer20kPlatform()


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
    narrow : the core maps its layers so that each hidden layer's vectors fit a 16-bit block RAM
        (the UP5K has thirty of them, and flip-flops are what it runs out of first).
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
    board_platform: Callable | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.data_block_rams is not None and not (isinstance(self.data_block_rams, int)
                                                     and self.data_block_rams >= 1):
            raise ConfigError(f"{self.name}: data_block_rams must be a whole number of at least 1, or None for "
                              f"every free block RAM, not {self.data_block_rams!r}")

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


BOARDS: dict[str, BoardSpec] = {spec.name: spec for spec in [
    BoardSpec("icebreaker", "1BitSquared iCEBreaker", "ice40", "iCE40UP5K", "SG48",
              clock_hz=24_000_000, oscillator_hz=12_000_000, lanes=1, narrow=True, data_words=65536,
              data_memory="spram",
              baud=3_000_000, max_baud=3_000_000, loader="icebreaker", bitstream="bin",
              serial="the FT2232H's second port, /dev/ttyUSB1 on Linux", board_platform=_icebreaker),
    BoardSpec("ulx3s", "Radiona ULX3S (ECP5-85F)", "ecp5", "LFE5U-85F", "CABGA381",
              clock_hz=100_000_000, oscillator_hz=25_000_000, lanes=32, data_words=None, block_rams=208,
              data_block_rams=DATA_BLOCK_RAMS_85F, data_memory="block",
              baud=3_000_000, max_baud=3_000_000, loader="ulx3s", bitstream="bit",
              serial="the FT231X, /dev/ttyUSB0 on Linux", board_platform=_ulx3s),
    BoardSpec("orangecrab", "Good Things OrangeCrab r0.2 (ECP5-25F)", "ecp5", "LFE5U-25F", "CSFBGA285",
              clock_hz=100_000_000, oscillator_hz=48_000_000, lanes=16, data_words=None, block_rams=56,
              data_memory="block",
              baud=1_000_000, max_baud=1_000_000, loader="orangecrab", bitstream="bit",
              serial="a 3.3 V USB-serial adapter on the Feather header (TX N17, RX M18)",
              board_platform=_orangecrab),
    # Both Sipeed boards reach the host through a BL702 USB bridge (JTAG and a serial port) on
    # the FPGA's UART pins; it has been run at 3 Mbaud.
    BoardSpec("tangnano9k", "Sipeed Tang Nano 9K (GW1NR-9)", "gowin", "GW1NR-9C", "QN88P",
              clock_hz=72_000_000, oscillator_hz=27_000_000, lanes=2, data_words=None, block_rams=26,
              data_memory="block",
              baud=3_000_000, max_baud=3_000_000, loader="tangnano9k", bitstream="fs",
              serial="the BL702's serial port, /dev/ttyUSB1 on Linux", board_platform=_tangnano9k),
    BoardSpec("tangprimer20k", "Sipeed Tang Primer 20K (GW2A-18C)", "gowin", "GW2A-18C", "PG256",
              clock_hz=72_000_000, oscillator_hz=27_000_000, lanes=16, data_words=None, block_rams=46,
              data_memory="block",
              baud=3_000_000, max_baud=3_000_000, loader="tangprimer20k", bitstream="fs",
              serial="the dock's BL702 serial port, /dev/ttyUSB1 on Linux", board_platform=_tangprimer20k),
]}

#: The board top in Verilator (``nfloop serve-sim``): a nominal 1 MHz clock and a UART bit of
#: 4 cycles, so a byte costs 40 simulated cycles instead of a real board's hundreds.
VIRTUAL = BoardSpec("virtual", "the board top in Verilator, bridged to TCP", "virtual", "verilator", "",
                    clock_hz=1_000_000, lanes=8, data_words=65536, data_memory="block",
                    baud=250_000, max_baud=250_000, serial="socket://127.0.0.1:PORT")


def board_spec(name: str) -> BoardSpec:
    try:
        return BOARDS[name]
    except KeyError:
        raise ConfigError(f"unknown board {name!r}; supported boards: {', '.join(BOARDS)} "
                          f"(nfloop board list)") from None
