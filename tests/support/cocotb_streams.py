"""``amaranth.lib.stream`` ports of a Verilated component, from a cocotb testbench.

The cocotb counterpart of :mod:`support.streams`: a source and a sink that
move one payload per transfer, with optional random stalls, and wake once
per transfer rather than once per clock (they wait on ``ready`` and
``valid`` edges). Ports are found by Amaranth's Verilog names:
``{name}__valid``, ``{name}__ready``, ``{name}__payload``.
"""

from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

__all__ = ["StreamSource", "StreamSink"]


class _Port:
    def __init__(self, dut, name, rng=None, stall=(0.0, 1)):
        self.clk = dut.clk
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.rng, (self.stall_chance, self.stall_cycles) = rng, stall

    def _stalls(self) -> bool:
        return self.rng is not None and self.rng.random() < self.stall_chance

    async def _stall(self, signal):
        signal.value = 0
        await ClockCycles(self.clk, int(self.rng.integers(1, self.stall_cycles + 1)))


class StreamSource(_Port):
    """Puts payloads on a component's input stream; ``stall=(chance, cycles)`` idles before a
    :meth:`put` with that chance, for 1 to ``cycles`` clocks."""

    def __init__(self, dut, name, rng=None, stall=(0.0, 1)):
        super().__init__(dut, name, rng, stall)
        self.mask = (1 << len(self.payload)) - 1

    async def put(self, value: int):
        """One transfer: returns after the clock edge that takes ``value``."""
        if self._stalls():
            await self._stall(self.valid)
        self.payload.value = int(value) & self.mask
        self.valid.value = 1
        await ReadOnly()
        if not self.ready.value:
            await RisingEdge(self.ready)
        await RisingEdge(self.clk)

    def idle(self):
        self.valid.value = 0


class StreamSink(_Port):
    """Takes every payload of a component's output stream and hands it, as an unsigned integer, to
    ``take``; ``stall=(chance, cycles)`` drops ``ready`` after a transfer with that chance."""

    async def run(self, take):
        self.ready.value = 1
        while True:
            await ReadOnly()
            if not self.valid.value:
                await RisingEdge(self.valid)
                await ReadOnly()
            take(self.payload.value.to_unsigned())     # valid & ready: taken at the next edge
            await RisingEdge(self.clk)
            if self._stalls():
                await self._stall(self.ready)
                self.ready.value = 1
