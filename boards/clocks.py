"""The board clock: a PLL from the board's oscillator, and the reset that waits for its lock.

The PLL settings are computed here the way each family's tool computes them
(``icepll`` and ``ecppll``, shipped as YoWASP wheels, and apycula's
``gowin_pll``), so a board spec only states the frequency it wants; a test
holds the two to the same answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.hdl import ClockDomain, Const, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

__all__ = ["PLLSettings", "ice40_pll", "ecp5_pll", "gowin_pll", "ice40_pll_primitive", "ecp5_pll_primitive",
           "gowin_pll_primitive", "BoardClock"]


@dataclass(frozen=True)
class PLLSettings:
    """One PLL configuration: the frequency it makes and the primitive's parameters."""
    family: str
    input_hz: int
    output_hz: float
    vco_hz: float
    parameters: dict


#: How far a PLL's output may miss the requested clock.
TOLERANCE = 0.01


def _closest(family: str, input_hz: int, output_hz: int, best) -> tuple:
    if best is None or abs(best[0] * 1e6 - output_hz) > TOLERANCE * output_hz:
        near = "" if best is None else f" (the nearest is {best[0]:g} MHz)"
        raise ValueError(f"no {family} PLL setting makes {output_hz / 1e6:g} MHz from {input_hz / 1e6:g} MHz{near}")
    return best


def ice40_pll(input_hz: int, output_hz: int) -> PLLSettings:
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
    f_out, f_vco, f_pfd, divr, divf, divq = _closest("iCE40", input_hz, output_hz, best)
    filter_range = next(k for k, limit in enumerate((17, 26, 44, 66, 101), start=1) if f_pfd < limit) \
        if f_pfd < 101 else 6
    return PLLSettings("ice40", input_hz, f_out * 1e6, f_vco * 1e6,
                       {"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": filter_range})


def ecp5_pll(input_hz: int, output_hz: int) -> PLLSettings:
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
    f_out, f_vco, input_div, feedback_div, output_div = _closest("ECP5", input_hz, output_hz, best)
    return PLLSettings("ecp5", input_hz, f_out * 1e6, f_vco * 1e6,
                       {"CLKI_DIV": input_div, "CLKFB_DIV": feedback_div, "CLKOP_DIV": output_div,
                        "CLKOP_CPHASE": output_div // 2, "CLKOP_FPHASE": 0})


#: rPLL limits in MHz (phase detector, VCO, output) by Gowin device, from apycula's gowin_pll,
#: which takes them from Gowin's data sheets (DS117, DS226).
GOWIN_PLL_LIMITS = {
    "GW1NR-9C": {"pfd": (3, 400), "vco": (400, 1200), "clkout": (3.125, 600)},
    "GW2A-18C": {"pfd": (3, 500), "vco": (500, 1250), "clkout": (3.90625, 625)},
}


def gowin_pll(input_hz: int, output_hz: int, device: str) -> PLLSettings:
    """``rPLL`` settings as apycula's ``gowin_pll`` picks them (the first closest output) for ``device``
    (``GW1NR-9C``, ``GW2A-18C``)."""
    if device not in GOWIN_PLL_LIMITS:
        raise ValueError(f"no rPLL limits for the Gowin device {device!r}; known: {', '.join(GOWIN_PLL_LIMITS)}")
    limits = GOWIN_PLL_LIMITS[device]
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
    f_out, f_vco, idiv, fbdiv, odiv = _closest("Gowin", input_hz, output_hz, best)
    return PLLSettings("gowin", input_hz, f_out * 1e6, f_vco * 1e6,
                       {"IDIV_SEL": idiv, "FBDIV_SEL": fbdiv, "ODIV_SEL": odiv, "DEVICE": device})


def _buffered(m: Module, pin) -> Signal:
    m.submodules.clock_buffer = buffer = io.Buffer("i", pin)
    return buffer.i


def ice40_pll_primitive(m: Module, settings: PLLSettings, pin, output, locked) -> None:
    """``SB_PLL40_PAD``: the iCE40's PLL takes the oscillator straight from its pad."""
    p = settings.parameters
    m.submodules.pll = Instance(
        "SB_PLL40_PAD", p_FEEDBACK_PATH="SIMPLE",
        p_DIVR=p["DIVR"], p_DIVF=p["DIVF"], p_DIVQ=p["DIVQ"], p_FILTER_RANGE=p["FILTER_RANGE"],
        io_PACKAGEPIN=pin.io, i_RESETB=1, i_BYPASS=0, o_PLLOUTGLOBAL=output, o_LOCK=locked)


def ecp5_pll_primitive(m: Module, settings: PLLSettings, pin, output, locked) -> None:
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
        i_RST=0, i_STDBY=0, i_CLKI=_buffered(m, pin), o_CLKOP=output, i_CLKFB=output,
        i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
        i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=locked)


def gowin_pll_primitive(m: Module, settings: PLLSettings, pin, output, locked) -> None:
    """``rPLL`` with internal feedback and static dividers, as ``gowin_pll`` writes it."""
    s, p = settings, settings.parameters
    m.submodules.pll = Instance(
        "rPLL", p_FCLKIN=f"{s.input_hz / 1e6:g}", p_DEVICE=p["DEVICE"],
        p_IDIV_SEL=p["IDIV_SEL"], p_FBDIV_SEL=p["FBDIV_SEL"], p_ODIV_SEL=p["ODIV_SEL"],
        i_CLKIN=_buffered(m, pin), i_CLKFB=0, i_RESET=0, i_RESET_P=0,
        i_FBDSEL=Const(0, 6), i_IDSEL=Const(0, 6), i_ODSEL=Const(0, 6),
        i_PSDA=Const(0, 4), i_DUTYDA=Const(0, 4), i_FDLY=Const(0, 4),
        o_CLKOUT=output, o_LOCK=locked)


class BoardClock(Elaboratable):
    """Defines the ``sync`` domain, clocked at ``settings.output_hz`` from the platform's
    oscillator through the family's PLL, and holds it in reset until the PLL locks.

    ``primitive(m, settings, pin, output, locked)`` adds the family's PLL to ``m``
    (:attr:`.family.Family.pll_primitive`), fed from the oscillator's ``pin``.

    nextpnr derives the PLL output's frequency constraint from the oscillator's
    ("Derived frequency constraint" in its log): the clock net has no name of its
    own after synthesis to constrain it by. ``nfloop build`` compares the Fmax
    nextpnr reports with ``output_hz`` either way.
    """

    def __init__(self, settings: PLLSettings, oscillator: str, primitive):
        self.settings = settings
        self._oscillator = oscillator
        self._primitive = primitive
        self.locked = Signal()

    def elaborate(self, platform):
        m = Module()
        pll_out = Signal()
        self._primitive(m, self.settings, platform.request(self._oscillator, dir="-"), pll_out, self.locked)
        m.domains.sync = sync = ClockDomain("sync")
        m.d.comb += sync.clk.eq(pll_out)
        m.submodules.reset = ResetSynchronizer(~self.locked, domain="sync")
        return m
