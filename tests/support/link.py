# amaranth: UnusedElaboratable=no
"""Benches for the protocol engine's parts (``nfloop.boards.link``) in Amaranth's simulator."""

import dataclasses
from dataclasses import replace
from pathlib import Path

import numpy as np
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In
from amaranth.sim import Simulator
from nfloop.boards.catalog import VIRTUAL
from nfloop.boards.geometry import BoardGeometry, encode_records
from nfloop.boards.link.ports import data_port_signature, share_crc
from nfloop.hdl.core import LearnerCore
from nfloop.model.config import QFormat, load_config

__all__ = ["simulate", "tick_until", "Bench", "DataMemoryModel", "CONFIGS", "geometry", "core_ports",
           "random_samples", "record_words", "memory_image"]

ROOT = Path(__file__).parents[2]


def _narrow():
    """Packed inputs narrower than a byte, an odd count of them, targets narrower than 16 bits."""
    xor = load_config(ROOT / "model" / "configs" / "xor.toml")
    formats = dataclasses.replace(xor.formats, input=QFormat(6, 3), activation=QFormat(12, 7))
    return xor.with_changes(name="narrow", inputs=3, formats=formats)


#: Configs whose link differs: digits (64 packed 8-bit inputs, 16-bit targets), odd (10-bit inputs,
#: one a word, 12-bit targets, 24-bit weights, three layers), narrow (3 packed 6-bit inputs).
CONFIGS = {
    "digits": lambda: load_config(ROOT / "model" / "configs" / "digits.toml"),
    "odd": lambda: load_config(ROOT / "tests" / "boards" / "data" / "odd.toml"),
    "narrow": _narrow,
}


def geometry(name: str, data_words: int = 4096, data_memory: str = "block") -> BoardGeometry:
    """A board for config ``name`` with a small data memory, so that simulations stay small."""
    return BoardGeometry(CONFIGS[name]().hardware(),
                         replace(VIRTUAL, data_words=data_words, data_memory=data_memory, lanes=1))


def core_ports(geo: BoardGeometry) -> LearnerCore:
    """A core for ``geo``, for its layouts and port signatures only: it is never elaborated."""
    return LearnerCore(geo.config, geo.lanes)


def random_samples(geo: BoardGeometry, count: int, rng):
    """``count`` samples of codes anywhere in their formats: (inputs, targets)."""
    f = geo.config.formats
    return (rng.integers(f.input.min_code, f.input.max_code + 1, (count, geo.n_in)),
            rng.integers(f.activation.min_code, f.activation.max_code + 1, (count, geo.n_out)))


def record_words(geo: BoardGeometry, xs, ys) -> np.ndarray:
    """The memory words of samples ``xs``, ``ys``: one row per sample."""
    image = np.frombuffer(encode_records(xs, ys, geo.packed_inputs), dtype="<u2")
    return image.reshape(len(xs), geo.record_words).astype(np.int64)


def memory_image(geo: BoardGeometry, xs, ys, order) -> list[int]:
    """The data memory holding samples ``xs``, ``ys`` from sample 0 on, and ``order`` in epoch order."""
    words = np.zeros(geo.spec.data_words, dtype=np.int64)
    for sample, row in enumerate(record_words(geo, xs, ys)):
        for w, word in enumerate(row):
            words[geo.record_address(sample, w)] = word
    for position, sample in enumerate(order):
        words[geo.order_address(position)] = sample
    return [int(w) for w in words]


def simulate(dut, bench, *background, cycles: int = 200_000):
    """Run ``bench`` (and ``background`` testbenches) on ``dut`` until ``bench`` returns.

    ``cycles`` is only a hang guard: a bench still running after that many cycles fails.
    """
    async def watchdog(ctx):
        for _ in range(cycles):
            await ctx.tick()
        raise AssertionError(f"the testbench did not finish within {cycles} cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for testbench in background:
        sim.add_testbench(testbench, background=True)
    sim.add_testbench(watchdog, background=True)
    sim.add_testbench(bench)
    sim.run()


async def tick_until(ctx, condition, limit: int, what: str) -> int:
    """Ticks until ``condition`` (a signal) is set; the cycles it took. More than ``limit`` fails."""
    for cycles in range(limit + 1):
        if ctx.get(condition):
            return cycles
        await ctx.tick()
    raise AssertionError(f"{what} did not happen within {limit} cycles")


class Bench(Elaboratable):
    """A part with a CRC unit on its ``crc`` port, as the engine gives it, and ``extras`` beside it.

    ``extras`` maps submodule names to ``(elaboratable, connect)``; ``connect(m, dut)`` wires them.
    """

    def __init__(self, dut, **extras):
        self.dut = dut
        self.extras = extras

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        if "crc" in self.dut.signature.members:
            share_crc(m, self.dut.crc)
        for name, (extra, connect) in self.extras.items():
            m.submodules[name] = extra
            connect(m, self.dut)
        return m


class DataMemoryModel(wiring.Component):
    """The data memory with any read ``latency``: ``words`` 16-bit words, ``contents`` readable by tests."""

    def __init__(self, words: int, latency: int, init=()):
        self._latency = latency
        self.contents = Memory(shape=16, depth=words, init=list(init))
        super().__init__({"port": In(data_port_signature(words))})

    @property
    def latency(self) -> int:
        return self._latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.contents = self.contents
        rd, wr = self.contents.read_port(), self.contents.write_port(granularity=8)
        port = self.port
        m.d.comb += [rd.addr.eq(port.addr), wr.addr.eq(port.addr), wr.data.eq(port.wdata), wr.en.eq(port.wmask)]
        data = rd.data
        for stage in range(self._latency - 1):
            later = Signal(16, name=f"rdata_{stage + 1}")
            m.d.sync += later.eq(data)
            data = later
        m.d.comb += port.rdata.eq(data)
        return m
