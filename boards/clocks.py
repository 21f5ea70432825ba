"""The board clock: a PLL from the board's oscillator, and the reset that waits for its lock.

Each family's module in :mod:`.families` computes its PLL settings the way
its own tool does (``icepll`` and ``ecppll``, shipped as YoWASP wheels, and
apycula's ``gowin_pll``), so a board spec only states the frequency it wants;
a test holds the two to the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, ResetSignal, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

__all__ = ["PLLSettings", "BoardClock", "closest", "buffered"]


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


def closest(family: str, input_hz: int, output_hz: int, best) -> tuple:
    """``best``, a PLL search's closest setting (its output in MHz first), or a ValueError naming the
    nearest output when that is further than :data:`TOLERANCE` from the clock wanted."""
    if best is None or abs(best[0] * 1e6 - output_hz) > TOLERANCE * output_hz:
        near = "" if best is None else f" (the nearest is {best[0]:g} MHz)"
        raise ValueError(f"no {family} PLL setting makes {output_hz / 1e6:g} MHz from {input_hz / 1e6:g} MHz{near}")
    return best


def buffered(m: Module, pin) -> Signal:
    """The oscillator's pin through an input buffer, for a PLL that does not take the pad itself."""
    m.submodules.clock_buffer = buffer = io.Buffer("i", pin)
    return buffer.i


class BoardClock(Elaboratable):
    """Clocks the ``sync`` domain at ``settings.output_hz`` from the platform's oscillator through
    the family's PLL, and holds it in reset until the PLL locks. The domain is the parent's to
    define: Amaranth wants it defined above every module that uses it.

    ``primitive(m, settings, pin, output, locked)`` adds the family's PLL to ``m``
    (:attr:`.families.Family.pll_primitive`), fed from the oscillator's ``pin``;
    ``reset_buffer(m, reset)``, where the family has one (:attr:`.families.Family.reset_buffer`),
    puts the synchronised reset on a global network.

    nextpnr derives the PLL output's frequency constraint from the oscillator's
    ("Derived frequency constraint" in its log): the clock net has no name of its
    own after synthesis to constrain it by. ``nfloop build`` compares the Fmax
    nextpnr reports with ``output_hz`` either way.
    """

    def __init__(self, settings: PLLSettings, oscillator: str, primitive, reset_buffer=None):
        self.settings = settings
        self._oscillator = oscillator
        self._primitive = primitive
        self._reset_buffer = reset_buffer
        self.locked = Signal()

    def elaborate(self, platform):
        m = Module()
        pll_out = Signal()
        self._primitive(m, self.settings, platform.request(self._oscillator, dir="-"), pll_out, self.locked)
        m.d.comb += ClockSignal("sync").eq(pll_out)
        # the synchronised reset, onto a global network where the family has a buffer for it
        # (Family.reset_buffer): it reaches every flip-flop
        m.domains.reset_sync = ClockDomain("reset_sync", local=True)
        m.d.comb += ClockSignal("reset_sync").eq(pll_out)
        m.submodules.reset = ResetSynchronizer(~self.locked, domain="reset_sync")
        buffer = self._reset_buffer or (lambda m, reset: reset)
        m.d.comb += ResetSignal("sync").eq(buffer(m, ResetSignal("reset_sync")))
        return m
