"""The boards nfloop builds for, and the virtual board: one :class:`BoardSpec` each.

A spec holds what the board top and the build need to know about a board:
its FPGA, the clock the design runs at, how many MAC lanes fit, how large the
on-chip data-set memory is and what it is built from, and the UART's default
baud rate. ``BOARDS`` lists the real boards; :data:`VIRTUAL` is the Verilator
board that ``nfloop serve-sim`` runs.
"""

from __future__ import annotations

from ..model.config import ConfigError
from .spec import BLOCK_RAM_MARGIN, ENGINE_BLOCK_RAMS, GATEWARE_VERSION, PROTOCOL_VERSION, BoardSpec

__all__ = ["BoardSpec", "BOARDS", "VIRTUAL", "board_spec", "PROTOCOL_VERSION", "GATEWARE_VERSION",
           "ENGINE_BLOCK_RAMS", "BLOCK_RAM_MARGIN"]

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


BOARDS: dict[str, BoardSpec] = {spec.name: spec for spec in [
    # Two lanes: at four, the core alone takes 31 block RAMs of the UP5K's 30 and about 4,580 of its 5,280
    # logic cells (docs/boards.md, "Why not four lanes").
    BoardSpec("icebreaker", "1BitSquared iCEBreaker", "ice40", "iCE40UP5K", "SG48",
              clock_hz=24_000_000, oscillator_hz=12_000_000, lanes=2, narrow=True, data_words=65536,
              data_memory="spram",
              baud=3_000_000, max_baud=3_000_000, loader="icebreaker", bitstream="bin",
              serial="the FT2232H's second port, /dev/ttyUSB1 on Linux", board_platform=_icebreaker),
    BoardSpec("ulx3s", "Radiona ULX3S (ECP5-85F)", "ecp5", "LFE5U-85F", "CABGA381",
              clock_hz=100_000_000, oscillator_hz=25_000_000, lanes=64, data_words=None, block_rams=208,
              data_block_rams=DATA_BLOCK_RAMS_85F, data_memory="block", placer="static",
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
    # Sixteen lanes take 81% of the GW2A-18C's flip-flops; nextpnr's placer had not legalised them after
    # 101 minutes, and its Gowin back end has no static placer (docs/boards.md): eight.
    BoardSpec("tangprimer20k", "Sipeed Tang Primer 20K (GW2A-18C)", "gowin", "GW2A-18C", "PG256",
              clock_hz=72_000_000, oscillator_hz=27_000_000, lanes=8, data_words=None, block_rams=46,
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
