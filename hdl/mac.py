"""A registered signed multiplier: one DSP block with its input and output registers.

The same two-stage pipeline is built three ways, equal cycle for cycle:

- on iCE40, an ``SB_MAC16`` instance with ``A_REG``/``B_REG`` and the 16x16
  product register: nextpnr has no timing model for the DSP itself, so no
  path may enter or leave it combinationally;
- on ECP5, a ``MULT18X18D`` instance with ``REG_INPUTA``/``REG_INPUTB`` and
  ``REG_OUTPUT`` on ``CLK0`` (Yosys never folds fabric registers into it);
- on Gowin, a ``MULT18X18`` instance with ``AREG``, ``BREG`` and ``OUT_REG``
  (Yosys infers it without any register);
- elsewhere (simulation, other families), registers around a ``*``.

Operands wider than the DSP (16 bits on iCE40, 18 on ECP5 and Gowin) fall back
to the generic form.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Multiplier", "dsp_kind", "fpga_family", "sign_extend"]

#: Operand width of each family's DSP block.
DSP_WIDTH = {"ice40": 16, "ecp5": 18, "gowin": 18}


def fpga_family(platform) -> str | None:
    """The platform's FPGA family: ``ice40`` and ``ecp5`` (Amaranth's Lattice platforms say
    ``"iCE40"`` and ``"ecp5"``), ``gowin`` (its Gowin platforms name the device instead), or None
    for simulation and platforms without one."""
    from amaranth.vendor import GowinPlatform
    if isinstance(platform, GowinPlatform):
        return "gowin"
    family = getattr(platform, "family", None)
    return family.lower() if isinstance(family, str) else None


def dsp_kind(platform, a_width: int, b_width: int) -> str:
    """``ice40``, ``ecp5``, ``gowin`` or ``generic``: which implementation :class:`Multiplier` builds."""
    family = fpga_family(platform)
    width = DSP_WIDTH.get(family)
    if width is not None and max(a_width, b_width) <= width:
        return family
    return "generic"


def sign_extend(value, width: int):
    """``value`` (signed) as ``width`` bits."""
    value = Value.cast(value)
    return value if len(value) >= width else Cat(value, value[-1].replicate(width - len(value)))


def _bits(value, width: int, prefix: str) -> dict:
    """``{prefix0: value[0], ...}``: the bit-per-port DSP primitives' operands, sign-extended to ``width``."""
    value = sign_extend(value, width)
    return {f"{prefix}{k}": value[k] for k in range(width)}


class Multiplier(wiring.Component):
    """``product = a * b``, two clock cycles after the operands are presented.

    Parameters
    ----------
    a_width, b_width : int
        Signed operand widths.

    Members
    -------
    a, b : In(signed)
    product : Out(signed(a_width + b_width))
    """

    def __init__(self, a_width: int, b_width: int):
        for name, width in (("a_width", a_width), ("b_width", b_width)):
            if not (isinstance(width, int) and width >= 1):
                raise TypeError(f"{name} must be a positive integer, not {width!r}")
        super().__init__({"a": In(signed(a_width)), "b": In(signed(b_width)),
                          "product": Out(signed(a_width + b_width))})

    #: Cycles from the operands to their product: the input and the output register.
    LATENCY = 2

    @property
    def latency(self) -> int:
        return self.LATENCY

    def elaborate(self, platform):
        m = Module()
        kind = dsp_kind(platform, len(self.a), len(self.b))
        width = len(self.product)
        if kind == "ice40":
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
                i_A=sign_extend(self.a, 16), i_B=sign_extend(self.b, 16),
                i_C=0, i_D=0,
                i_AHOLD=0, i_BHOLD=0, i_CHOLD=0, i_DHOLD=0,
                i_IRSTTOP=0, i_IRSTBOT=0, i_ORSTTOP=0, i_ORSTBOT=0,
                i_OLOADTOP=0, i_OLOADBOT=0, i_ADDSUBTOP=0, i_ADDSUBBOT=0,
                i_OHOLDTOP=0, i_OHOLDBOT=0, i_CI=0, i_ACCUMCI=0, i_SIGNEXTIN=0,
                o_O=out)
            m.d.comb += self.product.eq(out[:width].as_signed())
        elif kind == "ecp5":
            out = Signal(36)
            # As Yosys's own MULT18X18D mapping: C tied low, the cascade and unused clocks left open.
            zeros = {f"i_C{k}": Const(0, 1) for k in range(18)}
            m.submodules.dsp = Instance(
                "MULT18X18D",
                p_REG_INPUTA_CLK="CLK0", p_REG_INPUTB_CLK="CLK0", p_REG_OUTPUT_CLK="CLK0",
                p_REG_INPUTC_CLK="NONE", p_REG_PIPELINE_CLK="NONE",
                p_REG_INPUTA_CE="CE0", p_REG_INPUTB_CE="CE0", p_REG_OUTPUT_CE="CE0",
                p_REG_INPUTA_RST="RST0", p_REG_INPUTB_RST="RST0", p_REG_OUTPUT_RST="RST0",
                p_GSR="DISABLED", p_RESETMODE="SYNC", p_SOURCEB_MODE="B_SHIFT", p_MULT_BYPASS="DISABLED",
                p_CAS_MATCH_REG="FALSE", p_HIGHSPEED_CLK="NONE",
                p_CLK0_DIV="ENABLED", p_CLK1_DIV="ENABLED", p_CLK2_DIV="ENABLED", p_CLK3_DIV="ENABLED",
                **{f"i_{k}": v for k, v in _bits(self.a, 18, "A").items()},
                **{f"i_{k}": v for k, v in _bits(self.b, 18, "B").items()},
                **zeros,
                i_SIGNEDA=1, i_SIGNEDB=1, i_SOURCEA=0, i_SOURCEB=0,
                i_CLK0=ClockSignal(), i_CE0=1, i_RST0=0,
                **{f"o_P{k}": out[k] for k in range(36)})
            m.d.comb += self.product.eq(out[:width].as_signed())
        elif kind == "gowin":
            out = Signal(36)
            m.submodules.dsp = Instance(
                "MULT18X18",
                p_AREG=1, p_BREG=1, p_OUT_REG=1, p_PIPE_REG=0, p_ASIGN_REG=0, p_BSIGN_REG=0, p_SOA_REG=0,
                p_MULT_RESET_MODE="SYNC",
                i_A=sign_extend(self.a, 18), i_B=sign_extend(self.b, 18), i_SIA=Const(0, 18), i_SIB=Const(0, 18),
                i_ASIGN=1, i_BSIGN=1, i_ASEL=0, i_BSEL=0,
                i_CLK=ClockSignal(), i_CE=1, i_RESET=0,
                o_DOUT=out)
            m.d.comb += self.product.eq(out[:width].as_signed())
        else:
            # Reset-less, like the DSP's own registers.
            a_reg = Signal.like(self.a, reset_less=True)
            b_reg = Signal.like(self.b, reset_less=True)
            product = Signal.like(self.product, reset_less=True)
            m.d.sync += [a_reg.eq(self.a), b_reg.eq(self.b), product.eq(a_reg * b_reg)]
            m.d.comb += self.product.eq(product)
        return m
