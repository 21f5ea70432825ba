"""The properties ``nfloop prove`` proves about the protocol engine.

- The command unit, with every input free (the frames the receiver hands it,
  the frame buffer's bytes, the core's and the sender's handshakes): a frame
  the receiver reports as bad (BAD_CRC, BAD_LENGTH, TIMEOUT) never writes a
  weight, a data or order word or the core's state, never clears the core
  and never starts an epoch; and a frame answered with any status but OK
  did none of these either (a rejected command changes nothing). Bounded:
  the unit's frame walks are hundreds of cycles long, too long for
  induction to see past, so these hold for every input sequence of the
  stated depth from reset.
- The frame receiver: from any state, once no byte arrives (and its frames
  are taken), it is back to hunting for a sync byte within its timeout and
  two cycles; proved by k-induction, at a short timeout (the logic is the
  same at any).
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Assert, Assume, Mux, Signal

from ...hdl.core import LearnerCore
from ...hdl.layout import CoreLayout
from ...sim.formal import Property
from ...sim.proofs import Harness, free
from ..geometry import BoardGeometry
from ..protocol import Status
from .command import CommandUnit
from .ports import share_crc
from .receiver import FRAME, FrameReceiver
from .stats import ErrorStats

__all__ = ["engine_properties"]

#: The receiver's timeout in its proof.
PROOF_TIMEOUT = 8


def _command_property(geometry: BoardGeometry, depth: int) -> Property:
    config = geometry.config
    sample_layout, result_layout = LearnerCore.stream_layouts(config)
    # what the command unit reads of the core it serves
    core = SimpleNamespace(layout=CoreLayout(config, geometry.lanes), sample_layout=sample_layout,
                           result_layout=result_layout)
    sum_bits = ErrorStats.sum_bits_of(geometry, config.formats.error.bits)

    def build(h, m):
        m.submodules.dut = dut = CommandUnit(geometry, core, sum_bits)
        # every input free; the frame's fields stay as they were taken while the unit works on it, as the
        # receiver keeps them
        for name in ("busy", "trained", "steps", "cycles", "epochs", "error_sum"):
            port = getattr(dut, name)
            m.d.comb += port.eq(free(m, port.shape(), name))
        m.d.comb += [dut.frames.valid.eq(free(m, 1, "frame_valid")), dut.buffer.data.eq(free(m, 8, "byte")),
                     dut.head.ready.eq(free(m, 1, "head_ready")), dut.answer.ready.eq(free(m, 1, "answer_ready")),
                     dut.sample.ready.eq(free(m, 1, "sample_ready")),
                     dut.result.valid.eq(free(m, 1, "result_valid")),
                     dut.result.payload.eq(free(m, len(dut.result.payload.as_value()), "result")),
                     dut.weights.rdata.eq(free(m, dut.weights.rdata.shape(), "rdata")),
                     dut.weights.rvalid.eq(free(m, 1, "rvalid"))]
        offered, held = free(m, FRAME.size, "frame"), Signal(FRAME.size, name="frame_held")
        taken = dut.frames.valid & dut.frames.ready
        with m.If(taken):
            m.d.sync += held.eq(offered)
        m.d.comb += dut.frames.payload.eq(held)
        with m.If(dut.listen):
            m.d.comb += dut.frames.payload.eq(offered)
        # what the unit does to the board's state
        acts = dut.weights.write | dut.memory.wmask.any() | dut.state.load | dut.clear | dut.start
        # the frame being worked on: from the cycle it is taken until it is answered
        kept = Signal(Status, name="frame_status")
        acted = Signal()
        with m.If(taken):
            m.d.sync += [kept.eq(dut.frames.payload.status), acted.eq(acts)]
        with m.Elif(acts):
            m.d.sync += acted.eq(1)
        status = Mux(taken, dut.frames.payload.status, kept)
        m.d.comb += Assert(~(acts & (taken | ~dut.listen) & (status != Status.OK)))
        with m.If(dut.head.valid & dut.head.ready):
            m.d.comb += Assert((dut.head.payload.status == Status.OK) | ~(acted | acts))
    return Property("command unit", "bad frames and rejected commands change nothing", lambda: Harness(build),
                    "bmc", depth)


def _receiver_property(timeout: int) -> Property:
    bound = timeout + 2

    def build(h, m):
        m.submodules.dut = dut = FrameReceiver(timeout)
        share_crc(m, dut.crc)
        got = free(m, 1, "got")
        m.d.comb += [dut.i_stream.valid.eq(got), dut.i_stream.payload.eq(free(m, 8, "byte")),
                     dut.listen.eq(free(m, 1, "listen")), dut.o_stream.ready.eq(1)]
        quiet = Signal(range(bound + 2))
        with m.If(got):
            m.d.sync += quiet.eq(0)
        with m.Elif(quiet <= bound):
            m.d.sync += quiet.eq(quiet + 1)
        m.d.comb += Assume(quiet <= bound + 1)
        with m.If(quiet > bound):
            m.d.comb += Assert(~dut.busy)
    width = (timeout.bit_length() + 1)
    return Property(f"frame receiver, timeout {timeout}", f"idle within {bound} cycles of the last byte",
                    lambda: Harness(build), "prove", (1 << width) + bound + 2)


def engine_properties(geometry: BoardGeometry, depth: int) -> list[Property]:
    """The command unit's for ``geometry``, checked for ``depth`` cycles from reset, and the frame
    receiver's."""
    return [_command_property(geometry, depth), _receiver_property(PROOF_TIMEOUT)]
