"""Sequencer: one micro-op per cycle, forward then backward and update, per sample.

Schedule of one training step (L layers; layer l in R_l row rounds and K_l
column rounds, :mod:`nfloop.hdl.layout`):

1. ``FWD`` layer 0 .. L-1, row-major: for row round r, for column round k,
   one op; the lanes multiply their weights with C_l inputs (the bias input
   1.0 in column n_in) and the adder tree sums each row's products. The
   output layer's rows go on to the error, its delta and the result.
2. Layer L-1 .. 0, column-major: for column round k, for row round r, a
   ``BWD`` op (W[j, i] * delta_j summed over the groups into (W^T delta)_i;
   layers > 0 only, and not in a round that holds only the bias column) and
   an ``UPD`` op (delta_j * a_i into the update units, written back): either
   interleaved, or the round's BWD ops back to back before its UPD ops,
   whichever makes the step shorter (:func:`backward_sweeps`). The weight
   read for the backward product is the one before the update.

Before a phase the sequencer idles just long enough for everything the
phase reads to have been written (:func:`step_plan`), and at the end of a
step just long enough for the next step's reads of the updated weights.
So a step takes exactly :func:`step_cycles` cycles, back to back.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from ..model.config import Rounding
from ..model.fixed import MIX
from .layout import CoreLayout
from .timing import CoreTiming

__all__ = ["Op", "micro_op_layout", "Sequencer", "Phase", "step_plan", "step_cycles", "schedule", "backward_sweeps",
           "weight_reread"]


class Op(enum.Enum, shape=2):
    NOP = 0
    FWD = 1
    BWD = 2
    UPD = 3


def _bits(n: int) -> int:
    return max(1, (n - 1).bit_length())


def micro_op_layout(layout: CoreLayout) -> data.StructLayout:
    L = layout.layers
    adaptive = {"learn": 1,             # the op's step trains: its output deltas count in the error energy
                "adapt": 1}             # the step's last op, and the step ends a period: the gains adapt
    return data.StructLayout(({} if layout.config.adaptive_gain is None else adaptive) | {
        "op": Op,
        "layer": unsigned(_bits(L)),
        "r": unsigned(_bits(max(layout.row_rounds(l) for l in range(L)))),
        "k": unsigned(_bits(max(layout.col_rounds(l) for l in range(L)))),
        "first": 1, "last": 1, "apply": 1,
        "pass_start": 1,         # the first op of a backward/update pass: the LFSR steps
        "half": 1,               # which sample buffer the step trains on
        "waddr": unsigned(_bits(layout.depth)),
        "mix": unsigned(32),
    })


# -- the exact schedule ---------------------------------------------------------------------

@dataclass(frozen=True)
class Phase:
    """One phase of a step: ``ops`` micro-ops, after ``drain`` idle cycles."""
    kind: str            # "forward" or "pass"
    layer: int
    ops: int
    drain: int

    @property
    def name(self) -> str:
        if self.kind == "forward":
            return f"forward {self.layer}"
        return f"backward+update {self.layer}" if self.layer else "update 0"


def _phase_ops(layout: CoreLayout, kind: str, l: int, swept: bool = False):
    """(offset, op, r, k) of a phase's micro-ops, in issue order (``swept``: :func:`backward_sweeps`)."""
    R, K = layout.row_rounds(l), layout.col_rounds(l)
    if kind == "forward":
        return [(r * K + k, Op.FWD, r, k) for r in range(R) for k in range(K)]
    kinds = []
    for k in range(K):
        passes_back = l > 0 and k < layout.input_rounds(l)     # the bias alone passes nothing back
        if swept and passes_back:
            kinds += [(Op.BWD, r, k) for r in range(R)] + [(Op.UPD, r, k) for r in range(R)]
        else:
            ops = (Op.BWD, Op.UPD) if passes_back else (Op.UPD,)
            kinds += [(op, r, k) for r in range(R) for op in ops]
    return [(off, op, r, k) for off, (op, r, k) in enumerate(kinds)]


@functools.lru_cache(maxsize=256)
def backward_sweeps(layout: CoreLayout) -> tuple[bool, ...]:
    """Per layer, the order of its pass's ops within a column round: True, the round's BWD ops back to back
    and then its UPD ops (the deltas passed back sooner); False, each BWD op just before the UPD op of the
    same weights (the BWD ops at the pace at which the forward pass wrote their deltas). Whichever makes
    the training step shorter, the interleaved order on a tie."""
    choices = itertools.product((False, True), repeat=layout.layers - 1)
    return min(((False, *rest) for rest in choices), key=lambda sweeps: (_cycles(layout, True, sweeps), sweeps))


def _cycles(layout: CoreLayout, learning: bool, sweeps, reread: int = 0) -> int:
    phases, end, _ = _walk(layout, learning, sweeps, reread)
    return sum(p.drain + p.ops for p in phases) + end


@functools.lru_cache(maxsize=256)
def weight_reread(layout: CoreLayout) -> int:
    """The stage in which an update op reads its old weight from its bank a second time; 0: it keeps the
    word of its stage-0 read, carried through registers to its update unit.

    With :attr:`CoreLayout.reread_weights`, the latest stage up to :attr:`CoreTiming.weight_reread` (the
    one whose word reaches the update unit just as it is used) in which no update op's second read meets
    a forward or backward op's stage-0 read in the bank's one read port; the step's end waits for the
    last second read (:func:`step_plan`). An update op's own stage-0 read goes unused.
    """
    if not layout.reread_weights:
        return 0
    phases, _, walked = _walk(layout, True, None)
    reads, updates, t = set(), [], 0
    for phase, ops in zip(phases, walked):
        t += phase.drain
        for off, op, _, _ in ops:
            (updates.append if op is Op.UPD else reads.add)(t + off)
        t += phase.ops
    latest = CoreTiming(layout).weight_reread
    return next((stage for stage in range(latest, 0, -1) if not reads & {c + stage for c in updates}), 0)


def _reread(layout: CoreLayout, learning: bool) -> int:
    return weight_reread(layout) if learning else 0


def step_plan(layout: CoreLayout, learning: bool = True, sweeps=None) -> tuple[list[Phase], int]:
    """The phases of one step, each with the idle cycles before it, and the idle cycles after the step."""
    phases, end, _ = _walk(layout, learning, sweeps, _reread(layout, learning))
    return phases, end


def _walk(layout: CoreLayout, learning: bool, sweeps, reread: int = 0) -> tuple[list[Phase], int, list[list]]:
    """:func:`step_plan`, and each phase's ops ``(offset, op, r, k)`` as it walked them.

    Every drain is the least that keeps each read after the write it needs
    (vector memories and weight banks: a write in cycle t is readable from
    t + 1) and each op's use of the round accumulators after the previous
    phase's last one, with the stage numbers of :class:`CoreTiming`; the
    step's end, also after its update ops' second reads of the banks in stage
    ``reread`` (:func:`weight_reread`; 0, none).
    """
    lay, timing = layout, CoreTiming(layout)
    L = lay.layers
    if sweeps is None:
        sweeps = backward_sweeps(layout) if learning else (False,) * L
    order = [("forward", l) for l in range(L)] + ([("pass", l) for l in reversed(range(L))] if learning else [])
    a_written = [dict() for _ in range(L)]       # layer -> unit -> cycle its activation is readable
    d_written = [dict() for _ in range(L)]       # layer -> unit -> cycle its delta is readable
    w_written = {}                               # (layer, r, k) -> cycle the update is readable
    acc_last = -1                                # last cycle an op used the round accumulators
    last_update = -1                             # the last update op's cycle
    hold_last = -1                               # last cycle a serial write-back read its copied sums
    phases, t = [], 0
    starts, walked = [], []

    def uses_acc(op):
        return op is not Op.UPD

    for kind, l in order:
        ops = _phase_ops(lay, kind, l, sweeps[l])
        walked.append(ops)
        G, C = lay.groups(l), lay.cols(l)
        need = t
        for off, op, r, k in ops:
            # an op reads the vector memories in stage vector_read
            if op is Op.FWD and l > 0:
                units = range(k * C, min((k + 1) * C, lay.n_in(l)))
                need = max([need] + [a_written[l - 1][j] - off - timing.vector_read for j in units])
            if op in (Op.BWD, Op.UPD):
                units = range(r * G, min((r + 1) * G, lay.n_out(l)))
                need = max([need] + [d_written[l][j] - off - timing.vector_read for j in units])
        first_acc = next((off, op) for off, op, r, k in ops if uses_acc(op)) if any(
            uses_acc(op) for _, op, _, _ in ops) else None
        if first_acc is not None:
            need = max(need, acc_last + 1 - first_acc[0] - timing.tap(l, first_acc[1] is Op.BWD))
        for backward in (False, True):
            # the first round end that copies its sums aside comes after the last serial read of the copy
            ends = [off for off, op, r, k in ops if op is (Op.BWD if backward else Op.FWD) and
                    (r if backward else k) == (lay.row_rounds(l) if backward else lay.col_rounds(l)) - 1]
            if ends and timing.serial(l, backward):
                need = max(need, hold_last - ends[0] - timing.round_sum(l, backward))
        start = need
        phases.append(Phase(kind, l, len(ops), start - t))
        starts.append(start)
        for off, op, r, k in ops:
            cycle = start + off
            if uses_acc(op):
                acc_last = max(acc_last, cycle + timing.tap(l, op is Op.BWD))
            if op is Op.FWD and k == lay.col_rounds(l) - 1:
                units = timing.units(l, False)
                for j in range(r * G, min((r + 1) * G, lay.n_out(l))):
                    a_written[l][j] = cycle + timing.forward_write(l, (j - r * G) // units) + 1
                    if l == L - 1:
                        d_written[l][j] = a_written[l][j]
                if timing.serial(l, False):
                    hold_last = cycle + timing.round_sum(l, False) + timing.steps(l, False)
            if op is Op.BWD and r == lay.row_rounds(l) - 1:
                units = timing.units(l, True)
                for i in range(k * C, min((k + 1) * C, lay.n_in(l))):
                    d_written[l - 1][i] = cycle + timing.backward_write(l, (i - k * C) // units) + 1
                if timing.serial(l, True):
                    hold_last = cycle + timing.round_sum(l, True) + timing.steps(l, True)
            if op is Op.UPD:
                w_written[(l, r, k)] = cycle + timing.update_write + 1
                last_update = cycle
        t = start + len(ops)

    # The next step starts at t + end: its reads of this step's updates come after them.
    end = 0
    if learning:
        for (_, l), start, ops in zip(order, starts, walked):
            for off, _, r, k in ops:
                end = max(end, w_written[(l, r, k)] - (t + start + off))
    # ... and its first read of the banks after this step's last second read of a weight
    if reread and last_update >= 0:
        end = max(end, last_update + reread + 1 - t)
    # ... and its first use of the accumulators after this step's last.
    end = max(end, acc_last + 1 - (t + starts[0] + timing.tap(0, False)))
    # The sample's buffer is freed in the step's last cycle: after the last target has been read.
    last_forward = starts[L - 1] + phases[L - 1].ops - 1
    last_read = timing.target_read(L - 1, timing.steps(L - 1, False) - 1)
    end = max(end, last_forward + timing.issue + last_read + 1 - t)
    # ... and its first copy of round sums after this step's last serial read of them.
    first_end = next(off for off, op, r, k in walked[0] if k == lay.col_rounds(0) - 1)
    if timing.serial(0, False):
        end = max(end, hold_last - (t + starts[0] + first_end + timing.round_sum(0, False)))
    return phases, end, walked


def step_cycles(layout: CoreLayout, learning: bool = True) -> int:
    """Cycles of one step, from its first op to the cycle before the next step's first op."""
    return _cycles(layout, learning, None, _reread(layout, learning))


def busy_multipliers(layout: CoreLayout, learning: bool = True) -> list[int]:
    """Multipliers doing useful work in each cycle of one step (``step_cycles`` entries).

    An op multiplies one tile: up to G rows by C columns of a layer's weights (the bias column
    too, except in the backward pass); tiles at a matrix's edge are partly empty.
    """
    phases, end, walked = _walk(layout, learning, None, _reread(layout, learning))
    busy = []
    for p, ops in zip(phases, walked):
        l = p.layer
        G, C = layout.groups(l), layout.cols(l)
        busy += [0] * p.drain
        for _, op, r, k in ops:
            rows = min((r + 1) * G, layout.n_out(l)) - r * G
            width = layout.n_in(l) if op is Op.BWD else layout.n_cols(l)
            busy.append(rows * max(0, min((k + 1) * C, width) - k * C))
    return busy + [0] * end


def schedule(layout: CoreLayout, learning: bool = True) -> list[tuple[str, int]]:
    """The phases of one training step and their cycles, in order, as the sequencer runs them.

    Assumes the previous step's results have been taken (no wait before the step).
    """
    phases, end = step_plan(layout, learning)
    rows = []
    for p in phases:
        if p.drain:
            rows.append(("drain", p.drain))
        rows.append((p.name, p.ops))
    if end:
        rows.append(("drain", end))
    return rows


# -- the gateware -----------------------------------------------------------------------------

class Sequencer(wiring.Component):
    """Emits the micro-ops of one step when a sample is ready.

    Members
    -------
    op : Out(micro_op_layout)
        This cycle's micro-op (``Op.NOP`` when idle).
    sample_ready : In(1)
        A whole sample (x, y) is buffered.
    results_free : In(1)
        The previous step's results have all been taken.
    learn : In(1)
        Sampled when a step starts: 1 trains on the sample, 0 only infers
        (forward and error; no backward, no update, not counted as a step).
    sample_done : Out(1)
        One-cycle pulse in a step's last cycle: the sample's buffer is free.
    learning : Out(1)
        The current step trains (valid from the cycle after the step starts).
    trained : Out(1)
        With ``sample_done``: the step trained.
    results_issued : Out(1)
        The output layer's last forward op is issued this cycle.
    clear : In(1)
        Zero momentum and batch sums (``clearing`` with ``clear_addr`` over every word).
    load, load_batch : In
        While idle: the next step is step ``load_batch`` of its mini-batch (to resume a run).
    load_period : In
        With ``load`` (adaptive gain): the next training step is step ``load_period`` of its gain period.
    busy : Out(1)
        Inside a step (its first cycle included) or a clear.
    resting : Out(1)
        In no step and no clear: ``busy`` without the start test, which a ``clear`` strobe always wins.
    engaged : Out(1)
        ``busy``, or idle with a sample ready and the results free, whether or not ``clear`` takes the
        cycle: what a host waits on, with no path from its own ``clear`` strobe back to it.
    counting : Out(1)
        Inside a training step: the cycles the core's ``cycles`` counter counts.
    half : In(1)
        The sample buffer that holds the next sample; every op of its step carries it.
    """

    def __init__(self, layout: CoreLayout):
        self._layout = layout
        self.micro_op = micro_op_layout(layout)
        super().__init__({
            "op": Out(self.micro_op),
            "sample_ready": In(1), "sample_done": Out(1), "results_free": In(1), "half": In(1),
            "learn": In(1), "learning": Out(1), "trained": Out(1), "results_issued": Out(1),
            "clear": In(1), "clearing": Out(1), "counting": Out(1),
            "load": In(1), "load_batch": In(range(max(layout.config.batch_size, 2))),
            "load_period": In(range(max(self.period, 2))),
            "clear_addr": Out(unsigned(_bits(layout.depth))), "busy": Out(1), "engaged": Out(1),
            "resting": Out(1),
        })

    @property
    def period(self) -> int:
        """Training steps between gain adjustments; 1 without adaptive gain."""
        rule = self._layout.config.adaptive_gain
        return rule.period if rule else 1

    def elaborate(self, platform):
        m = Module()
        lay, cfg = self._layout, self._layout.config
        L = lay.layers
        shape = self.micro_op
        phases, train_end = step_plan(lay, True)
        sweeps = backward_sweeps(lay)
        forward_phases, infer_end = step_plan(lay, False)
        assert phases[:L] == forward_phases, "the forward phases do not depend on what follows them"
        assert phases[0].drain == 0
        stochastic = cfg.rounding is Rounding.STOCHASTIC
        three_c = (3 * MIX) & 0xFFFFFFFF

        r = Signal(shape["r"].shape)
        k = Signal(shape["k"].shape)
        upd = Signal()                           # in a pass: 0 the column round's BWD ops, 1 its UPD ops
        waddr = Signal(shape["waddr"].shape)
        col_addr = Signal(shape["waddr"].shape)
        mix = Signal(32)
        col_mix = Signal(32)
        half = Signal()
        longest = max([p.drain for p in phases] + [train_end, infer_end, 1])
        drain = Signal(range(longest + 1))
        batch = Signal(range(max(cfg.batch_size, 2)))
        apply = batch == cfg.batch_size - 1
        adaptive = cfg.adaptive_gain is not None
        period = Signal(range(max(self.period, 2)))      # training steps done in the gain period
        period_end = period == self.period - 1
        starting = Signal()                      # IDLE, and a step starts in this cycle
        learn_now = Mux(starting, self.learn, self.learning)
        half_now = Mux(starting, self.half, half)

        def emit(op, l, first, last, pass_start=0, step_end=0):
            m.d.comb += [self.op.op.eq(op), self.op.layer.eq(l), self.op.r.eq(r), self.op.k.eq(k),
                         self.op.first.eq(first), self.op.last.eq(last), self.op.apply.eq(apply),
                         self.op.pass_start.eq(pass_start), self.op.half.eq(half_now),
                         self.op.waddr.eq(waddr), self.op.mix.eq(mix if stochastic else 0)]
            if adaptive:
                m.d.comb += [self.op.learn.eq(learn_now), self.op.adapt.eq(step_end & period_end)]

        def state(p):
            return f"{p.kind.upper()}_{p.layer}"

        def rest():
            """Counters at their values for a step's first op."""
            m.d.sync += [r.eq(0), k.eq(0), upd.eq(0), waddr.eq(0), col_addr.eq(0), mix.eq(0), col_mix.eq(0)]

        def finish():
            """The step's last cycle."""
            m.d.comb += [self.sample_done.eq(1), self.trained.eq(learn_now)]
            with m.If(learn_now):
                m.d.sync += batch.eq(Mux(apply, 0, batch + 1))
                if self.period > 1:
                    m.d.sync += period.eq(Mux(period_end, 0, period + 1))
            rest()
            m.next = "IDLE"

        def end_of_step(end, name):
            if end:
                m.d.sync += drain.eq(end - 1)
                m.next = name
            else:
                finish()

        def go_to(index):
            p = phases[index]
            m.d.sync += [r.eq(0), k.eq(0), upd.eq(0), waddr.eq(lay.base(p.layer)),
                         col_addr.eq(lay.base(p.layer)), mix.eq(0), col_mix.eq(0)]
            if p.drain:
                m.d.sync += drain.eq(p.drain - 1)
                m.next = "DRAIN_" + state(p)
            else:
                m.next = state(p)

        def leave(index):
            """After phase ``index``'s last op: a drain, then the next phase or the step's end."""
            if index == L - 1:
                with m.If(learn_now):
                    go_to(index + 1)
                with m.Else():
                    end_of_step(infer_end, "END_INFER")
            elif index + 1 == len(phases):
                end_of_step(train_end, "END_TRAIN")
            else:
                go_to(index + 1)

        def run(index):
            """Emit the current op of phase ``index`` and advance the counters."""
            p = phases[index]
            l = p.layer
            R, K = lay.row_rounds(l), lay.col_rounds(l)
            last_op = (r == R - 1) & (k == K - 1)
            if p.kind == "forward":
                emit(Op.FWD, l, k == 0, k == K - 1)
                if l == L - 1:
                    m.d.comb += self.results_issued.eq(last_op)
                m.d.sync += waddr.eq(waddr + 1)
                with m.If(k == K - 1):
                    m.d.sync += [k.eq(0), r.eq(r + 1)]
                with m.Else():
                    m.d.sync += k.eq(k + 1)
                with m.If(last_op):
                    leave(index)
                return
            G, C, n_cols = lay.groups(l), lay.cols(l), lay.n_cols(l)
            next_column = (three_c * C) & 0xFFFFFFFF
            next_row = (three_c * G * n_cols) & 0xFFFFFFFF

            def advance():
                with m.If(r == R - 1):
                    m.d.sync += [r.eq(0), k.eq(k + 1), col_addr.eq(col_addr + 1), waddr.eq(col_addr + 1),
                                 col_mix.eq(col_mix + next_column), mix.eq(col_mix + next_column)]
                with m.Else():
                    m.d.sync += [r.eq(r + 1), waddr.eq(waddr + K), mix.eq(mix + next_row)]
                with m.If(last_op):
                    leave(index)

            pass_start = (r == 0) & (k == 0)
            if l > 0:
                # a round of only the bias has no BWD ops (_phase_ops)
                passes_back = ~upd & (k < lay.input_rounds(l)) if K > lay.input_rounds(l) else ~upd
                with m.If(passes_back):
                    emit(Op.BWD, l, r == 0, r == R - 1, pass_start=pass_start)
                    if sweeps[l]:       # the round's BWD ops, then back to its first row for its UPD ops
                        with m.If(r == R - 1):
                            m.d.sync += [r.eq(0), upd.eq(1), waddr.eq(col_addr)]
                        with m.Else():
                            m.d.sync += [r.eq(r + 1), waddr.eq(waddr + K)]
                    else:               # the UPD op of the same weights next
                        m.d.sync += upd.eq(1)
                with m.Else():
                    emit(Op.UPD, l, r == 0, r == R - 1)
                    if sweeps[l]:
                        with m.If(r == R - 1):
                            m.d.sync += upd.eq(0)
                    else:
                        m.d.sync += upd.eq(0)
                    advance()
            else:
                # the step's last op: pass 0's last
                emit(Op.UPD, l, r == 0, r == R - 1, pass_start=pass_start, step_end=last_op)
                advance()

        m.d.comb += [self.busy.eq(1), self.engaged.eq(1),
                     self.counting.eq(self.busy & ~self.clearing & learn_now)]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.busy.eq(starting), self.resting.eq(1),
                             self.engaged.eq(self.sample_ready & self.results_free)]
                rest()
                with m.If(self.load):           # apart from the chain below: a load never starts a step
                    m.d.sync += [batch.eq(self.load_batch), period.eq(self.load_period)]
                with m.If(self.clear):
                    m.d.sync += [self.clear_addr.eq(0), batch.eq(0), period.eq(0)]
                    m.next = "CLEAR"
                with m.Elif(self.sample_ready & self.results_free):
                    # The step's first op goes out in this cycle, from the counters' rest values.
                    m.d.comb += starting.eq(1)
                    m.d.sync += [self.learning.eq(self.learn), half.eq(self.half)]
                    m.next = state(phases[0])
                    run(0)

            with m.State("CLEAR"):
                m.d.comb += self.clearing.eq(1)
                m.d.sync += self.clear_addr.eq(self.clear_addr + 1)
                with m.If(self.clear_addr == lay.depth - 1):
                    m.next = "IDLE"

            for index, p in enumerate(phases):
                if p.drain:
                    with m.State("DRAIN_" + state(p)):
                        m.d.sync += drain.eq(drain - 1)
                        with m.If(drain == 0):
                            m.next = state(p)
                with m.State(state(p)):
                    run(index)

            for name, end in (("END_TRAIN", train_end), ("END_INFER", infer_end)):
                if end:
                    with m.State(name):
                        m.d.sync += drain.eq(drain - 1)
                        with m.If(drain == 0):
                            finish()
        return m
