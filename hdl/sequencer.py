"""Sequencer: one micro-op per cycle, forward -> error -> backward/update per sample.

Schedule of one training step (L layers, P lanes, R_l = ceil(n_out/P) rounds):

1. ``FWD`` layer 0 .. L-1, row-major: round r, column i = 0 .. n_in (bias last).
   Lane p accumulates unit r*P + p.
2. ``ERR`` j = 0 .. n_out-1: error, output window, result out.
3. Layer L-1 .. 0, column-major: for column i, for round r, a ``BWD`` op
   (W[j, i] * delta_j into the backward sum, layers > 0, not the bias column)
   and an ``UPD`` op (delta_j * a_i into the update unit, written back). The
   weight read for the backward product is the pre-update weight.

Between phases the sequencer idles ``DRAIN`` cycles so that every write of a
phase has landed before the next phase reads it.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from ..model.config import Rounding
from ..model.fixed import MIX
from .layout import CoreLayout

__all__ = ["Op", "micro_op_layout", "Sequencer", "DRAIN", "schedule"]

#: Idle cycles between phases: the deepest write lands 4 cycles after its issue.
DRAIN = 5


class Op(enum.Enum, shape=3):
    NOP = 0
    FWD = 1
    BWD = 2
    UPD = 3
    ERR = 4


def _bits(n: int) -> int:
    return max(1, (n - 1).bit_length())


def micro_op_layout(layout: CoreLayout) -> data.StructLayout:
    L = layout.layers
    return data.StructLayout({
        "op": Op,
        "layer": unsigned(_bits(L)),
        "r": unsigned(_bits(max(layout.rounds(l) for l in range(L)))),
        "i": unsigned(_bits(max(max(layout.n_in(l) + 1 for l in range(L)), layout.n_out(L - 1)))),
        "first": 1, "last": 1, "apply": 1,
        "waddr": unsigned(_bits(layout.depth)),
        "mix": unsigned(32),
    })


class Sequencer(wiring.Component):
    """Emits the micro-ops of one training step when a sample is ready.

    Members
    -------
    op : Out(micro_op_layout)
        The micro-op issued this cycle (``Op.NOP`` when idle).
    sample_ready : In(1)
        A whole sample (x, y) is buffered.
    learn : In(1)
        Sampled when a step starts: 1 trains on the sample, 0 only infers
        (forward and error; no backward, no update, not counted as a step).
    sample_done : Out(1)
        One-cycle pulse at the end of a step: the sample's buffer is free.
    learning : Out(1)
        The current step trains.
    trained : Out(1)
        With ``sample_done``: the step trained.
    fifo_empty : In(1)
        The result FIFO has room for a whole output vector.
    lfsr_step : Out(1)
        Pulse before each layer's update pass (stochastic rounding).
    clear : In(1)
        Zero momentum and batch sums (``clearing`` with ``clear_addr`` over every word).
    busy : Out(1)
        Inside a step or a clear.
    """

    def __init__(self, layout: CoreLayout):
        self._layout = layout
        self.micro_op = micro_op_layout(layout)
        super().__init__({
            "op": Out(self.micro_op),
            "sample_ready": In(1), "sample_done": Out(1), "fifo_empty": In(1),
            "learn": In(1), "learning": Out(1), "trained": Out(1),
            "lfsr_step": Out(1), "clear": In(1), "clearing": Out(1),
            "clear_addr": Out(unsigned(_bits(layout.depth))), "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lay, cfg = self._layout, self._layout.config
        L, P = lay.layers, lay.lanes
        shape = self.micro_op
        r = Signal(shape["r"].shape)
        i = Signal(shape["i"].shape)
        phase = Signal()                         # 0: BWD, 1: UPD (columns with a backward product)
        waddr = Signal(shape["waddr"].shape)
        col_addr = Signal(shape["waddr"].shape)
        mix = Signal(32)
        col_mix = Signal(32)
        drain = Signal(range(DRAIN + 1))
        learning = self.learning                 # latched from learn for the whole step
        batch = Signal(range(max(cfg.batch_size, 2)))
        stochastic = cfg.rounding is Rounding.STOCHASTIC
        three_c = (3 * MIX) & 0xFFFFFFFF

        def emit(op, layer, first=0, last=0, apply=0):
            m.d.comb += [self.op.op.eq(op), self.op.layer.eq(layer), self.op.r.eq(r),
                         self.op.i.eq(i), self.op.first.eq(first), self.op.last.eq(last),
                         self.op.apply.eq(apply), self.op.waddr.eq(waddr), self.op.mix.eq(mix)]

        def start_forward(l):
            m.d.sync += [r.eq(0), i.eq(0), waddr.eq(lay.base(l))]

        def start_pass(l):
            m.d.sync += [r.eq(0), i.eq(0), phase.eq(0), waddr.eq(lay.base(l)), col_addr.eq(lay.base(l)),
                         mix.eq(0), col_mix.eq(0)]
            if stochastic:
                m.d.comb += self.lfsr_step.eq(1)

        def start_error():
            m.d.sync += i.eq(0)

        def drain_then(target, setup):
            """Idle DRAIN cycles, then run ``setup`` and go to ``target``."""
            m.d.sync += drain.eq(drain + 1)
            with m.If(drain == DRAIN - 1):
                m.d.sync += drain.eq(0)
                setup()
                m.next = target

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.clear):
                    m.d.sync += [self.clear_addr.eq(0), batch.eq(0)]
                    m.next = "CLEAR"
                with m.Elif(self.sample_ready):
                    start_forward(0)
                    m.d.sync += learning.eq(self.learn)
                    m.next = "FWD0"

            with m.State("CLEAR"):
                m.d.comb += [self.busy.eq(1), self.clearing.eq(1)]
                m.d.sync += self.clear_addr.eq(self.clear_addr + 1)
                with m.If(self.clear_addr == lay.depth - 1):
                    m.next = "IDLE"

            for l in range(L):
                n_in, rounds = lay.n_in(l), lay.rounds(l)
                with m.State(f"FWD{l}"):
                    m.d.comb += self.busy.eq(1)
                    emit(Op.FWD, l, first=i == 0, last=i == n_in)
                    m.d.sync += waddr.eq(waddr + 1)
                    with m.If(i == n_in):
                        m.d.sync += [i.eq(0), r.eq(r + 1)]
                        with m.If(r == rounds - 1):
                            m.next = f"FWD{l}_DRAIN"
                    with m.Else():
                        m.d.sync += i.eq(i + 1)
                with m.State(f"FWD{l}_DRAIN"):
                    m.d.comb += self.busy.eq(1)
                    if l + 1 < L:
                        drain_then(f"FWD{l + 1}", lambda l=l: start_forward(l + 1))
                    else:
                        drain_then("ERR_WAIT", start_error)

            with m.State("ERR_WAIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(self.fifo_empty):
                    m.next = "ERR"
            with m.State("ERR"):
                m.d.comb += self.busy.eq(1)
                emit(Op.ERR, L - 1)
                m.d.sync += i.eq(i + 1)
                with m.If(i == lay.n_out(L - 1) - 1):
                    m.next = "ERR_DRAIN"
            with m.State("ERR_DRAIN"):
                m.d.comb += self.busy.eq(1)
                with m.If(learning):
                    drain_then(f"PASS{L - 1}", lambda: start_pass(L - 1))
                with m.Else():
                    drain_then("DONE", lambda: None)

            for l in reversed(range(L)):
                n_in, rounds = lay.n_in(l), lay.rounds(l)
                row_stride = n_in + 1
                with m.State(f"PASS{l}"):
                    m.d.comb += self.busy.eq(1)
                    apply = batch == cfg.batch_size - 1
                    backward = (i < n_in) & (phase == 0) if l > 0 else 0
                    with m.If(backward):
                        emit(Op.BWD, l, first=r == 0, last=r == rounds - 1, apply=apply)
                        m.d.sync += phase.eq(1)
                    with m.Else():
                        emit(Op.UPD, l, first=r == 0, last=r == rounds - 1, apply=apply)
                        m.d.sync += phase.eq(0)
                        with m.If(r == rounds - 1):
                            with m.If(i == n_in):
                                m.next = f"PASS{l}_DRAIN"
                            m.d.sync += [r.eq(0), i.eq(i + 1), col_addr.eq(col_addr + 1),
                                         waddr.eq(col_addr + 1),
                                         col_mix.eq(col_mix + three_c), mix.eq(col_mix + three_c)]
                        with m.Else():
                            m.d.sync += [r.eq(r + 1), waddr.eq(waddr + row_stride),
                                         mix.eq(mix + ((three_c * P * row_stride) & 0xFFFFFFFF))]
                with m.State(f"PASS{l}_DRAIN"):
                    m.d.comb += self.busy.eq(1)
                    if l > 0:
                        drain_then(f"PASS{l - 1}", lambda l=l: start_pass(l - 1))
                    else:
                        drain_then("DONE", lambda: None)

            with m.State("DONE"):
                m.d.comb += [self.busy.eq(1), self.sample_done.eq(1), self.trained.eq(learning)]
                with m.If(learning):
                    m.d.sync += batch.eq(Mux(batch == cfg.batch_size - 1, 0, batch + 1))
                m.next = "IDLE"
        return m


def schedule(layout: CoreLayout) -> list[tuple[str, int]]:
    """The phases of one training step and their cycles, in order, as the FSM runs them.

    Assumes the result FIFO is drained (no wait in ERR_WAIT beyond its one cycle).
    """
    L = layout.layers
    phases = []
    for l in range(L):
        phases += [(f"forward {l}", layout.rounds(l) * (layout.n_in(l) + 1)), ("drain", DRAIN)]
    phases += [("wait for FIFO", 1), ("error", layout.n_out(L - 1)), ("drain", DRAIN)]
    for l in reversed(range(L)):
        ops_per_column = [2 if (l > 0 and i < layout.n_in(l)) else 1 for i in range(layout.n_in(l) + 1)]
        phases += [(f"backward+update {l}" if l else "update 0", layout.rounds(l) * sum(ops_per_column)),
                   ("drain", DRAIN)]
    phases.append(("done", 1))
    return phases
