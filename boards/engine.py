"""The device side of the host link: frames in, commands run on the learner core, frames out.

The engine is a composition of the parts in :mod:`nfloop.boards.link`, one
request at a time (``docs/protocol.md``):

- :class:`~.link.FrameReceiver` takes the UART's bytes, puts the payload in
  the frame buffer and keeps the command's header fields in a register; it
  tells the CRC's verdict, a timeout or an over-long length.
- :class:`~.link.CommandUnit` checks the frame over a few registered cycles
  and its values on a first pass over the buffer, acts on a second pass,
  and answers through
- :class:`~.link.FrameSender`, which adds the frame's head and CRC.
- During TRAIN, :class:`~.link.SampleFeeder` streams the samples from the
  data memory into the core, one element per clock, and
  :class:`~.link.ErrorStats` sums each epoch's squared output errors.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..hdl.core import LearnerCore, state_port_signature, weight_port_signature
from .families import BANK_WORDS
from .geometry import BoardGeometry
from .link import CommandUnit, ErrorStats, FrameReceiver, FrameSender, SampleFeeder, data_port_signature
from .link.ports import BUFFER_LATENCY, share_crc
from .protocol import MAX_PAYLOAD

__all__ = ["ProtocolEngine", "data_port_signature"]


def memory_latency(geometry: BoardGeometry) -> int:
    """The read latency of the board's data memory (:attr:`~nfloop.boards.top.DataMemory.latency`)."""
    from .top import DataMemory  # the board top imports this module: not at the top
    return DataMemory.latency_of(geometry.spec.data_memory, geometry.spec.data_words)


class ProtocolEngine(wiring.Component):
    """Runs the host link's commands on a learner core and a data-set memory.

    Parameters
    ----------
    geometry : BoardGeometry
    core : LearnerCore
        Only its layouts are used: the engine is connected to it by the board top.
    timeout_cycles : int
        Cycles without a byte after which a frame is answered TIMEOUT (16 at least).

    Members
    -------
    rx, tx : byte streams from and to the UART.
    sample, result, weights, state, learn, clear, busy, steps, cycles :
        the core's ports, from the engine's side.
    memory : the data-set memory.
    idle : no frame in progress: waiting for a sync byte with nothing to send.
    """

    def __init__(self, geometry: BoardGeometry, core: LearnerCore, timeout_cycles: int):
        self._geo = geometry
        self._core = core
        self._timeout = max(int(timeout_cycles), 16)
        self._latency = memory_latency(geometry)
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "sample": Out(stream.Signature(core.sample_layout)),
            "result": In(stream.Signature(core.result_layout)),
            "weights": Out(weight_port_signature(core.layout)),
            "state": Out(state_port_signature(geometry.config)),
            "learn": Out(1), "clear": Out(1), "busy": In(1), "steps": In(32), "cycles": In(48),
            "memory": Out(data_port_signature(geometry.spec.data_words)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        geo, core = self._geo, self._core
        m.submodules.receiver = receiver = FrameReceiver(self._timeout)
        m.submodules.sender = sender = FrameSender()
        m.submodules.stats = stats = ErrorStats(geo, core.result_layout)
        m.submodules.feeder = feeder = SampleFeeder(geo, core.sample_layout, self._latency)
        m.submodules.commands = commands = CommandUnit(geo, core, stats.sum_bits)
        # The frame buffer, read BUFFER_LATENCY cycles after its address: the family's block RAM with its
        # output register, one byte of its words; else an inferred one and a register beside it. The
        # receiver writes only while the command unit does not read, so one port serves both.
        block_ram = getattr(platform, "get_block_ram", None)
        assert BUFFER_LATENCY == 2 and MAX_PAYLOAD <= BANK_WORDS
        if block_ram is not None:
            write, word = receiver.buffer, Signal(16)
            m.submodules.frame = block_ram(Mux(write.en, write.addr, commands.buffer.addr),
                                           Cat(write.data, Const(0, 8)), Cat(write.en, Const(0, 1)), word)
            m.d.comb += commands.buffer.data.eq(word[:8])
        else:
            # Yosys honours no_rw_check (no logic for a read of a byte being written) when it makes the
            # read port synchronous itself
            m.submodules.frame = frame = Memory(shape=8, depth=MAX_PAYLOAD, init=[], attrs={"no_rw_check": 1})
            frame_read, near = frame.read_port(domain="comb"), Signal(8)
            m.d.comb += frame_read.addr.eq(commands.buffer.addr)
            m.d.sync += [near.eq(frame_read.data), commands.buffer.data.eq(near)]
            wiring.connect(m, receiver.buffer, frame.write_port())

        share_crc(m, receiver.crc, sender.crc)       # a frame is received, then answered: never both
        wiring.connect(m, wiring.flipped(self.rx), receiver.i_stream)
        wiring.connect(m, receiver.o_stream, commands.frames)
        wiring.connect(m, commands.head, sender.i_head)
        wiring.connect(m, commands.answer, sender.i_stream)
        wiring.connect(m, sender.o_stream, wiring.flipped(self.tx))
        wiring.connect(m, commands.weights, wiring.flipped(self.weights))
        wiring.connect(m, commands.state, wiring.flipped(self.state))
        m.d.comb += [
            receiver.listen.eq(commands.listen),
            self.idle.eq(commands.listen & ~receiver.busy),
            self.learn.eq(commands.learn), self.clear.eq(commands.clear), stats.clear.eq(commands.clear),
            commands.busy.eq(self.busy), commands.steps.eq(self.steps), commands.cycles.eq(self.cycles),
            commands.epochs.eq(stats.epochs), commands.error_sum.eq(stats.error_sum),
            commands.trained.eq(stats.done),
        ]

        # each epoch of a TRAIN starts the feeder and the statistics together
        m.d.comb += [feeder.samples.eq(commands.run.samples), stats.samples.eq(commands.run.samples),
                     feeder.start.eq(commands.start), stats.start.eq(commands.start)]

        # samples from the feeder during a run, else INFER's; results to the statistics during a run
        with m.If(feeder.busy):
            wiring.connect(m, feeder.o_stream, wiring.flipped(self.sample))
        with m.Else():
            wiring.connect(m, commands.sample, wiring.flipped(self.sample))
        with m.If(stats.busy):
            wiring.connect(m, wiring.flipped(self.result), stats.i_stream)
        with m.Else():
            wiring.connect(m, wiring.flipped(self.result), commands.result)

        # the feeder reads the data memory during a run; LOAD_DATA and LOAD_ORDER write it otherwise
        with m.If(feeder.busy):
            m.d.comb += self.memory.addr.eq(feeder.memory.addr)
        with m.Else():
            m.d.comb += [self.memory.addr.eq(commands.memory.addr), self.memory.wdata.eq(commands.memory.wdata),
                         self.memory.wmask.eq(commands.memory.wmask)]
        m.d.comb += [feeder.memory.rdata.eq(self.memory.rdata)]
        return m
