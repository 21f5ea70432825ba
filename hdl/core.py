"""The learner core: lanes, memories and the pipeline that runs the sequencer's micro-ops.

A micro-op issued in cycle t0 (:mod:`nfloop.hdl.sequencer`) moves down one
pipeline; :class:`nfloop.hdl.timing.CoreTiming` numbers its stages:

- t0: the weight banks are read; their words are registered as they leave
  the block RAMs. The vector memories are read a stage later, so that their
  data arrives with the registered bank words.
- operand stage: each lane's operands, registered per lane (the DSP's input
  registers follow): weight and input forward, weight and delta backward,
  delta and input for an update.
- product stage: the products. Forward and backward products enter the adder
  tree; an update product enters the lane's update unit, whose result is
  written back to the banks. The unit's old weight is the word of the op's
  stage-0 read, carried along, or (a narrow core) of a second read of the
  bank in a later stage, when the port is free (``weight_reread``).
- a layer's tap: its round sums (over the C_l columns forward, over the G_l
  groups backward) go into the round accumulators.
- round sum + write-back: a finished forward round becomes activations and
  window bits (the output layer: errors, deltas and results); a finished
  backward round becomes the previous layer's deltas.

Inputs, activations, window bits and deltas live in small memories of
:meth:`~nfloop.hdl.layout.CoreLayout.vector_slots` values a word, written
and read a round at a time.
"""

from __future__ import annotations

import math

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model.config import LearnerConfig, Rounding
from ..model.fixed import GAIN_WORDS, LFSR_MASK, MIX, FixedLearner, LayerPlan
from ..model.init import initial_weights
from .arith import const_mul, saturate, weight_view
from .counter import SplitCounter
from .fanout import GROUP, registered_copies
from .gain import GainAdapter
from .layout import CoreLayout, log2
from .mac import Multiplier
from .sequencer import Op, Sequencer, weight_reread
from .timing import ADDEND_REGISTERS, BANK_REGISTERS, MEMORY_LATENCY, CoreTiming
from .tree import ReductionTree
from .update import UpdateUnit
from .vectors import SMALL_MEMORY_WORDS, VectorMemory
from .writeback import ColumnWriteback, RowWriteback

__all__ = ["LearnerCore", "weight_port_signature", "state_port_signature", "GAIN_BANK", "ENERGY_LATENCY"]

#: The weight port's ``bank`` that reaches the adaptive gain state: ``col`` picks the word (GAIN_WORDS).
GAIN_BANK = 3
#: Registers from a delta's write to its |delta| sum entering the gain adapter: the magnitudes, their sum.
ENERGY_LATENCY = 2


def state_port_signature(config: LearnerConfig) -> wiring.Signature:
    """Setting the core's step count, LFSR and mini-batch position, from the setter's side: ``load`` is a
    one-cycle strobe, honoured while the core is not ``busy``."""
    return wiring.Signature({"load": Out(1), "steps": Out(32), "lfsr": Out(32),
                             "batch": Out(range(max(config.batch_size, 2)))})


def weight_port_signature(layout: CoreLayout) -> wiring.Signature:
    """Host access to every weight accumulator, from the host's side.

    ``write`` / ``read`` are one-cycle strobes, honoured only while the core
    is not ``busy``, one per cycle; ``rdata`` is valid in the cycle ``rvalid``
    is set, :attr:`LearnerCore.weight_read_latency` cycles after ``read``.
    """
    L = layout.layers
    acc = layout.config.formats.weight_acc.shape
    cols = [layout.n_in(l) + 1 for l in range(L)] + [GAIN_WORDS] * bool(layout.config.adaptive_gain)
    return wiring.Signature({
        "layer": Out(range(max(L, 2))),
        # 0 the weights, 1 momentum, 2 batch sums, 3 adaptive gain (GAIN_BANK; where the config has them)
        "bank": Out(2),
        "row": Out(range(max(max(layout.n_out(l) for l in range(L)), 2))),
        "col": Out(range(max(cols))),
        "wdata": Out(acc), "write": Out(1), "read": Out(1),
        "rdata": In(acc), "rvalid": In(1),
    })


class LearnerCore(wiring.Component):
    """A negative-feedback learner that trains on every sample it receives.

    Parameters
    ----------
    config : LearnerConfig
    lanes : int
        P, the number of multipliers (a power of two).
    weights : list of arrays, optional
        Initial weight_acc codes per layer; default: the config's initial weights.
    columns : tuple of int, optional
        The lane mapping per layer (:class:`~nfloop.hdl.layout.CoreLayout`); default: the fastest.
    narrow : bool
        Only mappings whose hidden layers' vector memories are one value wide (block RAM on iCE40).

    Members
    -------
    i_stream : In(stream)
        Samples, one element per transfer: the n_in inputs (formats.input
        codes) then the n_out targets (formats.activation codes).
    o_stream : Out(stream)
        Per sample, n_out results: ``prediction`` (a_L) and ``error`` (e).
    weights : In(weight_port_signature)
    learn : In(1)
        1: train on each sample; 0: inference only (results out, weights unchanged).
        Sampled when a sample's step starts.
    clear : In(1)
        Zero momentum and batch sums, reset the LFSR and the counters (when not busy).
    state : In(state_port_signature)
        When not busy, ``load`` sets the step count, the LFSR and the position in the mini-batch (to
        resume a run from a checkpoint; momentum and batch sums are written through ``weights``).
    busy : Out(1)
        A step, a clear or a write to the weights is under way, or a step starts unless a clear takes
        the cycle (so that ``clear`` has no path to ``busy``).
    steps, cycles : Out
        Training steps done, and clock cycles spent inside steps.
    """

    def __new__(cls, config: LearnerConfig, lanes: int = 1, weights=None, columns=None, narrow=False,
                src_loc_at=0, **kwargs):
        # Checked before the component exists: a rejected config leaves no unused component behind.
        CoreLayout(config, lanes, columns, narrow)
        return super().__new__(cls, src_loc_at=src_loc_at + 1, **kwargs)

    def __init__(self, config: LearnerConfig, lanes: int = 1, weights=None, columns=None, narrow=False):
        self._layout = layout = CoreLayout(config, lanes, columns, narrow)
        self._config = config
        if weights is None:
            weights = FixedLearner.quantise_weights(config, initial_weights(config))
        self._weights = weights
        self.sample_layout, self.result_layout = self.stream_layouts(config)
        super().__init__({
            "i_stream": In(stream.Signature(self.sample_layout)),
            "o_stream": Out(stream.Signature(self.result_layout)),
            "weights": In(weight_port_signature(layout)),
            "learn": In(1, init=1), "clear": In(1), "busy": Out(1),
            "state": In(state_port_signature(config)),
            "steps": Out(32), "cycles": Out(48),
        })

    @staticmethod
    def stream_layouts(config: LearnerConfig) -> tuple[data.StructLayout, data.StructLayout]:
        """The payloads of ``i_stream`` (a sample's inputs, then its targets) and ``o_stream`` (a result)."""
        f = config.formats
        return (data.StructLayout({"data": signed(max(f.input.bits, f.activation.bits))}),
                data.StructLayout({"prediction": f.activation.shape, "error": f.error.shape}))

    @property
    def layout(self) -> CoreLayout:
        return self._layout

    @property
    def timing(self) -> CoreTiming:
        return CoreTiming(self._layout)

    @property
    def weight_read_latency(self) -> int:
        """Cycles from a ``weights.read`` strobe to ``rvalid``: address, the banks' address registers, bank
        read, its registers, selection within a group of banks, selection of the group."""
        return 1 + 1 + MEMORY_LATENCY + BANK_REGISTERS + 1 + 1

    def _residual_diagonal(self, m: Module, op_at, timing: CoreTiming, copies) -> list | None:
        """Per lane, a register that is 1 in stage ``operand - 1`` when the lane's weight is on the diagonal
        of a residual layer in a forward or backward op: the weight then enters the multiplier as ``w + 1.0``.

        Lane ``p = g * C + c`` holds row ``j = r * G + g`` and column ``i = k * C + c`` in round (r, k): on
        the diagonal when ``r * G - k * C == c - g``. The difference is taken two stages ahead and
        registered once per group of lanes; each lane compares it with its own constant. None without a
        residual layer (no logic at all)."""
        lay = self._layout
        residual = [l for l in range(lay.layers) if lay.config.layers[l].residual]
        if not residual:
            return None
        assert timing.operand >= 3
        ahead = op_at(timing.operand - 3)
        moving = (ahead.op == Op.FWD) | (ahead.op == Op.BWD)
        span = max(max(lay.row_rounds(l) * lay.groups(l), lay.col_rounds(l) * lay.cols(l)) for l in residual)
        offsets = []
        for l in residual:
            G, C = lay.groups(l), lay.cols(l)
            offset = Signal(signed(span.bit_length() + 2), name=f"diagonal_offset_{l}")
            # off the diagonal in every lane (no lane's c - g reaches span + 1) unless this layer moves
            m.d.comb += offset.eq(Mux(moving & (ahead.layer == l),
                                      (ahead.r << log2(G)) - (ahead.k << log2(C)), span + 1))
            offsets.append(copies(offset, f"diagonal_offset_{l}"))
        diagonal = []
        for p in range(lay.lanes):
            on = Signal(name=f"diagonal_{p}")
            m.d.sync += on.eq(Cat(*(copy[p // GROUP] == (p % lay.cols(l)) - (p // lay.cols(l))
                                    for l, copy in zip(residual, offsets))).any())
            diagonal.append(on)
        return diagonal

    def elaborate(self, platform):
        m = Module()
        lay, cfg, timing = self._layout, self._config, self.timing
        f, P, L = cfg.formats, lay.lanes, lay.layers
        plans = [LayerPlan.build(cfg, l) for l in range(L)]
        n0, nL = lay.n_in(0), lay.n_out(L - 1)
        stochastic = cfg.rounding is Rounding.STOCHASTIC

        m.submodules.sequencer = seq = Sequencer(lay)
        issued = Signal(seq.micro_op, name="op_t0")     # the memories' addresses come from a register
        m.d.sync += issued.eq(seq.op)
        ops = [issued]
        assert timing.issue == 1

        def op_at(stage):
            """The micro-op in stage ``stage`` (stage 0 reads the memories)."""
            while len(ops) <= stage:
                reg = Signal(seq.micro_op, name=f"op_t{len(ops)}")
                m.d.sync += reg.eq(ops[-1])
                ops.append(reg)
            return ops[stage]

        def is_op(op, kind, layer=None):
            cond = op.op == kind
            return cond if layer is None else cond & (op.layer == layer)

        # Some op is in a stage of the pipeline: a register, from the stages a cycle earlier (and the issue).
        in_flight = Signal()
        m.d.sync += in_flight.eq(Cat(seq.op.op != Op.NOP,
                                     *(op_at(t).op != Op.NOP for t in range(timing.deepest))).any())
        idle = ~seq.busy & ~in_flight

        # -- LFSR, counters -----------------------------------------------------------------
        lfsr = Signal(32, init=cfg.lfsr_seed)
        m.d.comb += [seq.clear.eq(self.clear & ~in_flight), seq.learn.eq(self.learn),
                     seq.load.eq(self.state.load & idle), seq.load_batch.eq(self.state.batch),
                     seq.load_period.eq(self.state.steps[:log2(seq.period)])]
        # the counters' carry chains are cut in two (hdl.counter): they were the iCE40's longest paths
        m.submodules.step_count = step_count = SplitCounter(len(self.steps))
        m.submodules.cycle_count = cycle_count = SplitCounter(len(self.cycles))
        # clear & idle without the start test, which clear wins (idle's path from the input buffers)
        clearing, loading = self.clear & seq.resting & ~in_flight, self.state.load & idle
        # The counters take their strobes a cycle late, from registers: the strobes come from the
        # sequencer's start test (an input buffer full, the results taken, the host's strobes), and at
        # 32 lanes that logic and the counters' 80 enables spanned the die in one cycle. The counts lag
        # by that cycle; the host reads them only once the core is idle.
        count_clear, count_load, count_trained, count_cycle = _delayed(
            m, [clearing, loading, seq.trained, seq.counting & ~loading], 1, "count_strobe")
        load_value = _delay(m, self.state.steps, "count_load_value")
        m.d.comb += [step_count.clear.eq(count_clear), step_count.load.eq(count_load),
                     step_count.load_value.eq(load_value), step_count.inc.eq(count_trained),
                     self.steps.eq(step_count.value),
                     cycle_count.clear.eq(count_clear), cycle_count.inc.eq(count_cycle),
                     self.cycles.eq(cycle_count.value)]
        with m.If(clearing):
            m.d.sync += lfsr.eq(cfg.lfsr_seed)
        with m.Elif(loading):
            m.d.sync += lfsr.eq(self.state.lfsr)
        with m.Else():
            if stochastic:
                # steps before the pass's first update reaches its rounding, after the last pass's last
                with m.If(op_at(timing.product - 1).pass_start):
                    m.d.sync += lfsr.eq((lfsr >> 1) ^ Mux(lfsr[0], LFSR_MASK, 0))

        # -- Sample loader: two buffers, one filling while the other trains ----------------
        x_words = lay.input_words
        y_slots = timing.units(L - 1, False)        # targets are read and results written a block at a time
        y_words = math.ceil(nL / y_slots)
        # Vector memories shallower than the platform's bound (if it has one) are flip-flops; the sample
        # buffers are never forced to be, and Yosys picks their cells.
        small_words = getattr(platform, "small_memory_words", SMALL_MEMORY_WORDS)
        xmem = VectorMemory(m, "inputs", lay.input_slots, f.input.bits, 2 * x_words, small_words=0)
        ymem = VectorMemory(m, "targets", y_slots, f.activation.bits, 2 * y_words, small_words=0)
        full = Signal(2)
        load_half, cur_half = Signal(), Signal()
        load_x = Signal(range(max(n0, 2)))
        load_y = Signal(range(max(nL, 2)))
        loading_y = Signal()
        sample = self.i_stream.payload.data
        take = self.i_stream.valid & self.i_stream.ready
        m.d.comb += [
            self.i_stream.ready.eq(~full.bit_select(load_half, 1)),
            seq.sample_ready.eq(full.bit_select(cur_half, 1)), seq.half.eq(cur_half),
        ]
        for mem, counter, slots, words, fmt, enable in (
                (xmem, load_x, lay.input_slots, x_words, f.input, take & ~loading_y),
                (ymem, load_y, y_slots, y_words, f.activation, take & loading_y)):
            word = Mux(load_half, words, 0) + (counter >> log2(slots))
            m.d.comb += [mem.wr.addr.eq(word),
                         mem.wr.data.eq(Cat(*([saturate(sample, fmt)] * slots)))]
            with m.If(enable):
                m.d.comb += mem.wr.en.eq(1 << (counter[:log2(slots)] if slots > 1 else 0))
        with m.If(take):
            with m.If(~loading_y):
                m.d.sync += load_x.eq(load_x + 1)
                with m.If(load_x == n0 - 1):
                    m.d.sync += [load_x.eq(0), loading_y.eq(1)]
            with m.Else():
                m.d.sync += load_y.eq(load_y + 1)
                with m.If(load_y == nL - 1):
                    m.d.sync += [load_y.eq(0), loading_y.eq(0), load_half.eq(~load_half),
                                 full.bit_select(load_half, 1).eq(1)]
        with m.If(seq.sample_done):
            m.d.sync += cur_half.eq(~cur_half)
        # The half a step trained on is freed once its inputs' last read has its address (the step's last
        # op reads them in stage vector_read): the loader writes it from the cycle after, and a read in
        # the cycle of a write sees the old word.
        freed, freed_half = _delayed(m, [seq.sample_done, cur_half], timing.issue + timing.vector_read - 1, "freed")
        with m.If(freed):
            m.d.sync += full.bit_select(freed_half, 1).eq(0)

        # -- Weight banks -------------------------------------------------------------------
        momentum = any(p.momentum_shift for p in plans)
        batched = cfg.batch_size > 1
        init = lay.banks(self._weights)
        w_rd, w_wr, v_rd, v_wr, s_rd, s_wr = [], [], [], [], [], []
        # a family's bank reads through the block's own output register (BANK_REGISTERS of them)
        bank_ram = getattr(platform, "get_bank_ram", lambda depth, shape, init: None)
        blocks = [bank_ram(lay.depth, f.weight_acc.shape, init[p]) for p in range(P)]
        registered = blocks[0] is not None          # all banks alike: one depth and width
        for p, bank in enumerate(blocks):
            if registered:
                w_rd.append(bank.read)
                w_wr.append(bank.write)
            else:
                # block RAM even when shallow: the fabric's memory would cost logic and routing per lane
                bank = Memory(shape=f.weight_acc.shape, depth=lay.depth, init=init[p], attrs={"ram_style": "block"})
                w_rd.append(bank.read_port())
                w_wr.append(bank.write_port())
            m.submodules[f"weights_{p}"] = bank
            for enabled, name, rd, wr in ((momentum, "velocity", v_rd, v_wr), (batched, "batch_sum", s_rd, s_wr)):
                if enabled:
                    mem = Memory(shape=f.weight_acc.shape, depth=lay.depth, init=[])
                    m.submodules[f"{name}_{p}"] = mem
                    rd.append(mem.read_port())
                    wr.append(mem.write_port())

        # -- Vector memories: activations and window bits (hidden layers), deltas ----------
        act_mem, win_mem, delta_mem = [], [], []
        for l in range(L):
            slots, words = lay.vector_slots(l), lay.vector_words(l)
            if l < L - 1:
                act_mem.append(VectorMemory(m, f"activations_{l}", slots, f.activation.bits, words, small_words))
                win_mem.append(VectorMemory(m, f"windows_{l}", slots, 1, words, small_words))
            delta_mem.append(VectorMemory(m, f"deltas_{l}", slots, f.error.bits, words, small_words))
        results = VectorMemory(m, "results", y_slots, f.activation.bits + f.error.bits, y_words, small_words)

        # -- Host access to the weights -------------------------------------------------------
        host = self.weights
        groups = -(-P // GROUP)

        def copies(value, name):
            """Registered copies of ``value``, one per GROUP loads (lanes, banks, accumulators)."""
            return registered_copies(m, platform, value, groups, name)

        h_bank = Signal(range(P))
        h_addr = Signal.like(op_at(0).waddr)
        h_read, h_write = Signal(), Signal()
        h_addr_next, h_bank_next = Signal.like(h_addr), Signal.like(h_bank)
        m.d.sync += [h_read.eq(host.read & idle), h_write.eq(host.write & idle),
                     h_addr.eq(h_addr_next), h_bank.eq(h_bank_next)]
        with m.Switch(host.layer):
            for l in range(L):
                with m.Case(l):
                    G, C = lay.groups(l), lay.cols(l)
                    row_round = host.row >> log2(G) if G > 1 else host.row
                    col_round = host.col >> log2(C) if C > 1 else host.col
                    g = host.row[:log2(G)] if G > 1 else Const(0, 1)
                    c = host.col[:log2(C)] if C > 1 else Const(0, 1)
                    m.d.comb += [h_addr_next.eq(lay.base(l) + const_mul(row_round, lay.col_rounds(l)) + col_round),
                                 h_bank_next.eq((g << log2(C)) | c)]
        # the writes' address, data and bank, once per group of banks
        h_addr_at = copies(h_addr_next, "host_addr")
        h_wdata_at = copies(host.wdata, "host_wdata")
        h_write_at = copies(host.write & idle, "host_write")
        h_bank_at = copies(h_bank_next, "host_bank")
        h_select_at = copies(host.bank, "host_select")      # which memory: weights, momentum, batch sums

        # -- t0: reads ------------------------------------------------------------------------
        # the issue register's address and host selection, once per group of banks; an update op's second
        # read of its old weight (weight_reread) takes the port from them
        address = Mux(seq.op.op == Op.NOP, h_addr, seq.op.waddr)
        reread = weight_reread(lay)
        if reread:
            rereading = op_at(reread - 1)
            address = Mux(rereading.op == Op.UPD, rereading.waddr, address)
        bank_addr = copies(address, "bank_addr")
        for p in range(P):
            m.d.comb += w_rd[p].addr.eq(bank_addr[p // GROUP])
        late = op_at(timing.product - MEMORY_LATENCY - 1)     # momentum and batch sums are read late
        for rd in v_rd + s_rd:
            # no op at that stage: no update uses the word read, so the host may read there
            m.d.comb += rd.addr.eq(Mux(late.op == Op.NOP, h_addr, late.waddr))

        def input_reader(l):
            """The memory layer l reads its inputs from, and how many at a time."""
            return xmem if l == 0 else act_mem[l - 1]

        # the vector memories' read addresses are registers too, loaded from the op a stage before the read
        coming = op_at(timing.vector_read - 1) if timing.vector_read else seq.op
        x_word = Signal.like(xmem.rd.addr, name="x_word")
        m.d.sync += x_word.eq(Mux(coming.k >= x_words, 0, coming.k) + Mux(coming.half, x_words, 0))
        m.d.comb += xmem.rd.addr.eq(x_word)
        for l in range(1, L):
            act_mem[l - 1].read_ahead(m, coming.k, lay.cols(l), coming.layer == l, f"act_{l - 1}")
        for l in range(L):
            delta_mem[l].read_ahead(m, coming.r, lay.groups(l), coming.layer == l, f"delta_{l}")

        # -- the read data: this op's inputs and deltas, per layer; then per lane ---------------
        op1 = op_at(timing.vector_read + MEMORY_LATENCY)
        assert timing.vector_read + MEMORY_LATENCY == MEMORY_LATENCY + BANK_REGISTERS == timing.operand - 1
        # op1's round against the bias column and the layer's last rows: compared a cycle ahead and
        # registered, once per group of lanes, so that op1's register drives only the value multiplexers
        op_before = op_at(timing.operand - 2)
        columns, rows = [], []
        for l in range(L):
            C, G, n_in, n_out = lay.cols(l), lay.groups(l), lay.n_in(l), lay.n_out(l)
            raw = input_reader(l).values(m, op1.k, C, f"in_{l}")
            bias_k, bias_c = divmod(n_in, C)
            at_bias = copies(op_before.k == bias_k, f"at_bias_{l}")
            past_bias = copies(op_before.k > bias_k, f"past_bias_{l}")
            col = []
            for c in range(C):
                value = Signal(signed(lay.operand_b_width), name=f"column_{l}_{c}")
                is_bias = at_bias[c // GROUP] if c == bias_c else Const(0, 1)
                padding = past_bias[c // GROUP] | (at_bias[c // GROUP] if c > bias_c else Const(0, 1))
                m.d.comb += value.eq(Mux(is_bias, plans[l].one_code, Mux(padding, 0, raw[c].as_signed())))
                col.append(value)
            columns.append(col)
            d_raw = delta_mem[l].values(m, op1.r, G, f"d_{l}")
            # row g is past the layer's last row from row round (n_out - 1 - g) // G + 1 on
            within = {last: copies(op_before.r <= last, f"within_{l}_{last}")
                      for last in sorted({(n_out - 1 - g) // G for g in range(min(G, n_out))})}
            row = []
            for g in range(G):
                value = Signal(f.error.shape, name=f"row_{l}_{g}")
                valid = within[(n_out - 1 - g) // G][g // GROUP] if g < n_out else Const(0, 1)
                m.d.comb += value.eq(Mux(valid, d_raw[g].as_signed(), 0))
                row.append(value)
            rows.append(row)

        # the bank words, registered as they leave the block RAMs (in op1's stage)
        assert BANK_REGISTERS == 1
        w_data = [w_rd[p].data for p in range(P)] if registered else \
            _delayed(m, [w_rd[p].data for p in range(P)], BANK_REGISTERS, "w_r")
        lane_a = [Signal(signed(lay.operand_a_width), name=f"lane_a_{p}") for p in range(P)]
        lane_b = [Signal(signed(lay.operand_b_width), name=f"lane_b_{p}") for p in range(P)]
        # Every C_l divides the widest C, so lane p's input is entry p mod C_max of one shared bus.
        widest = max(lay.cols(l) for l in range(L))
        bus = [Signal(signed(lay.operand_b_width), name=f"in_{c}") for c in range(widest)]
        # op1's layer and kind, once per group of lanes (and of bus entries)
        layer1 = copies(op_before.layer, "layer_t1")
        update1 = copies(op_before.op == Op.UPD, "update_t1")
        backward1 = copies(op_before.op == Op.BWD, "backward_t1")
        for c in range(widest):
            with m.Switch(layer1[c // GROUP]):
                for l in range(L):
                    with m.Case(l):
                        m.d.comb += bus[c].eq(columns[l][c % lay.cols(l)])
        diagonal = self._residual_diagonal(m, op_at, timing, copies)
        lanes = []
        for p in range(P):
            column = bus[p % widest]
            delta = Signal(f.error.shape, name=f"delta_{p}")
            with m.Switch(layer1[p // GROUP]):
                for l in range(L):
                    with m.Case(l):
                        m.d.comb += delta.eq(rows[l][p // lay.cols(l)])
            view = weight_view(w_data[p], plans[0].view_shift, f.weight)
            if diagonal:
                view = view + Mux(diagonal[p], 1 << f.weight.frac, 0)        # W + I
            m.d.sync += [lane_a[p].eq(Mux(update1[p // GROUP], delta, view)),
                         lane_b[p].eq(Mux(backward1[p // GROUP], delta, column))]
            m.submodules[f"lane_{p}"] = lane = Multiplier(lay.operand_a_width, lay.operand_b_width)
            lanes.append(lane)
            m.d.comb += [lane.a.eq(lane_a[p]), lane.b.eq(lane_b[p])]
        assert timing.product == timing.operand + lanes[0].latency

        # -- product stage: the adder tree and the round accumulators -------------------------
        m.submodules.tree = tree = ReductionTree(P, lay.product_width, lay.tree_levels)
        for p in range(P):
            m.d.comb += tree.products[p].eq(lanes[p].product)
        # One adder per accumulator: the active layer's tap is selected first (at most one is active).
        # Which one is decided a cycle ahead, so that the select lines are registers.
        # Each accumulator is numbered by the first lane of the tree nodes it sums (accumulator_slots).
        passes = [(l, backward) for l in range(L) for backward in ((False, True) if l > 0 else (False,))]
        slots = sorted({x for l, backward in passes for x in lay.accumulator_slots(l, backward)})
        acc = {x: Signal(signed(lay.accumulator_width), name=f"acc_{x}") for x in slots}
        addend = {x: Signal(signed(lay.accumulator_width), name=f"addend_{x}") for x in slots}
        near = {k: i for i, k in enumerate(sorted({x // GROUP for x in slots}))}   # a copy per group of lanes
        acc_groups = len(near)
        active = [Signal(name=f"active_{k}") for k in range(acc_groups)]
        restart = [Signal(name=f"restart_{k}") for k in range(acc_groups)]
        for l, backward in passes:
            ahead = op_at(timing.tap(l, backward) - 1)
            name = f"{l}_{'bwd' if backward else 'fwd'}"
            hit = registered_copies(m, platform, is_op(ahead, Op.BWD if backward else Op.FWD, l), acc_groups,
                                    f"tap_{name}")
            first = registered_copies(m, platform, ahead.first, acc_groups, f"first_{name}")
            level = tree.level(lay.backward_tap(l) if backward else lay.forward_tap(l))
            # backward: all P lanes' own, or the root; forward: the G_l row sums
            nodes = dict(zip(lay.accumulator_slots(l, backward), level))
            for k in range(acc_groups):
                with m.If(hit[k]):
                    m.d.comb += [active[k].eq(1), restart[k].eq(first[k])]
                    m.d.comb += [addend[x].eq(node) for x, node in nodes.items() if near[x // GROUP] == k]
        # the selected addends, with their enable and restart, registered before the adders
        assert ADDEND_REGISTERS == 1
        late_addend = dict(zip(slots, _delayed(m, [addend[x] for x in slots], 1, "addend_r")))
        late_active, late_restart = _delayed(m, active, 1, "active_r"), _delayed(m, restart, 1, "restart_r")
        for x in slots:
            k = near[x // GROUP]
            with m.If(late_active[k]):
                m.d.sync += acc[x].eq(Mux(late_restart[k], 0, acc[x]) + late_addend[x])

        # -- write-back of finished rounds, a block of `units` sums per cycle ------------------
        copying = [(l, b) for l, b in passes if timing.serial(l, b)]
        # a copy beside each accumulator a serial write-back reads (numbered as the accumulators)
        hold = {x: Signal(signed(lay.accumulator_width), name=f"hold_{x}")
                for x in sorted({x for l, b in copying for x in lay.accumulator_slots(l, b)})}

        def round_blocks(l, backward):
            """(valid, block, half, learn, sums) as they enter the write-back units; ``block`` numbers the
            blocks of ``units`` sums through the layer (rows forward, columns backward); ``learn``: the step
            trains (adaptive gain only)."""
            values, units = timing.round_values(l, backward), timing.units(l, backward)
            opr = op_at(timing.round_sum(l, backward))
            done = is_op(opr, Op.BWD if backward else Op.FWD, l) & opr.last
            index = opr.k if backward else opr.r
            places = lay.accumulator_slots(l, backward)
            if not timing.serial(l, backward):
                return done, index, opr.half, learning(opr), [acc[x] for x in places]
            steps = values // units
            tag = f"{l}_{int(backward)}"
            step = Signal(range(steps), name=f"step_{tag}")
            step_next = Signal.like(step, name=f"step_next_{tag}")
            running = Signal(name=f"running_{tag}")
            base = Signal.like(index, name=f"round_{tag}")
            half = Signal(name=f"half_{tag}")
            learn = Signal(name=f"learn_{tag}")
            running_next = Signal(name=f"running_next_{tag}")
            m.d.comb += [step_next.eq(step), running_next.eq(running)]
            with m.If(done):
                m.d.sync += [base.eq(index), half.eq(opr.half), learn.eq(learning(opr))]
                m.d.comb += [step_next.eq(0), running_next.eq(1)]
            with m.Elif(running):
                m.d.comb += step_next.eq(step + 1)
                with m.If(step == steps - 1):
                    m.d.comb += running_next.eq(0)
            m.d.sync += [step.eq(step_next), running.eq(running_next)]
            # The copies form `units` chains of `steps` registers, which shift one place a cycle towards
            # the write-back units at their heads: each register takes the one `units` lanes along, where a
            # select at the head would gather from across the whole lane array. The copy's enable and the
            # shift's, once per group of sums, are decided a cycle ahead; a chain shifts steps - 1 times.
            ahead = op_at(timing.round_sum(l, backward) - 1)
            copy_now = registered_copies(m, platform, is_op(ahead, Op.BWD if backward else Op.FWD, l) & ahead.last,
                                         -(-values // GROUP), f"copy_{tag}")
            shift_now = registered_copies(m, platform, running_next & (step_next != steps - 1),
                                          -(-values // GROUP), f"shift_{tag}")
            for x, place in enumerate(places):
                with m.If(copy_now[x // GROUP]):
                    m.d.sync += hold[place].eq(acc[place])
                if x + units < values:
                    with m.Elif(shift_now[x // GROUP]):
                        m.d.sync += hold[place].eq(hold[places[x + units]])
            block = Signal(range(max(lay.col_rounds(l) if backward else lay.row_rounds(l), 1) * steps),
                           name=f"block_{tag}")
            m.d.comb += block.eq((base << log2(steps)) | step)
            return running, block, half, learn, [hold[places[u]] for u in range(units)]

        # -- adaptive gain: each layer's |delta| as its deltas are written, and the rule at a period's end ----
        gain = None
        if cfg.adaptive_gain:
            widest = max([timing.units(L - 1, False)] + [timing.units(l, True) for l in range(1, L)])
            m.submodules.gain = gain = GainAdapter(cfg, f.error.bits + (widest - 1).bit_length())
            # the step's last op takes its gain offset at product - 1 (below): the new offsets follow it
            m.d.comb += [gain.decide.eq(op_at(timing.product - 1).adapt), gain.clear.eq(clearing)]
            # A delta written in cycle w is in the energy from w + ENERGY_LATENCY + 1; the op that reads it
            # (in stage vector_read, from w + WRITE_LATENCY + 1) is the step's last or comes before it.
            assert timing.product - 1 - timing.vector_read >= ENERGY_LATENCY - VectorMemory.WRITE_LATENCY

        def energy_addend(deltas, slots, valid, name):
            """sum |delta| over a write's valid slots, ENERGY_LATENCY registers later (0 when not ``valid``)."""
            magnitudes = []
            for u, (delta, ok) in enumerate(zip(deltas, slots)):
                magnitude = Signal(unsigned(f.error.bits), name=f"{name}_magnitude_{u}")
                m.d.sync += magnitude.eq(Mux(valid & ok, Mux(delta < 0, -delta, delta), 0))
                magnitudes.append(magnitude)
            total = Signal(unsigned(f.error.bits + (len(deltas) - 1).bit_length()), name=f"{name}_sum")
            m.d.sync += total.eq(sum(magnitudes))
            return total

        def learning(op):
            return op.learn if cfg.adaptive_gain else Const(0, 1)

        def valid_slots(block, units, count):
            return [block <= (count - 1 - u) // units if u < count else Const(0, 1) for u in range(units)]

        results_written = Signal()
        for l in range(L):
            units_n = timing.units(l, False)
            valid, block, half, learn, sums = round_blocks(l, False)
            units = []
            for u in range(units_n):
                unit = RowWriteback(cfg, l, lay.accumulator_width)
                m.submodules[f"row_{l}_{u}"] = unit
                m.d.comb += unit.sum.eq(sums[u])
                units.append(unit)
            latency = units[0].latency
            if l == L - 1:
                # the targets of a block, read to arrive beside its activations
                t_block, t_half = _delayed(m, [block, half], RowWriteback.TARGET_DELAY - MEMORY_LATENCY, f"t_{l}")
                ratio = y_slots // units_n
                word = (t_block >> log2(ratio)) if ratio > 1 else t_block
                m.d.comb += ymem.rd.addr.eq(Mux(t_half, y_words, 0) + word)
                a_block, = _delayed(m, [block], RowWriteback.TARGET_DELAY, f"y_{l}")
                for unit, y in zip(units, ymem.values(m, a_block, units_n, "y")):
                    m.d.comb += unit.y.eq(y)
            w_valid, w_block, w_learn = _delayed(m, [valid, block, learn], latency, f"row_{l}")
            slots = valid_slots(w_block, units_n, lay.n_out(l))
            if l < L - 1:
                act_mem[l].write(m, w_block, [u.a for u in units], slots, w_valid)
                win_mem[l].write(m, w_block, [u.bit for u in units], slots, w_valid)
                continue
            delta_mem[l].write(m, w_block, [u.delta for u in units], slots, w_valid)
            if gain is not None:
                m.d.comb += gain.addend[l].eq(energy_addend([u.delta for u in units], slots, w_valid & w_learn,
                                                            f"energy_{l}"))
            results.write(m, w_block, [Cat(u.a, u.e) for u in units], slots, w_valid)
            blocks = lay.row_rounds(l) * timing.steps(l, False)
            m.d.sync += results_written.eq(w_valid & (w_block == blocks - 1))     # as the write lands

        # -- backward write-back: the deltas of the layer before ------------------------------
        for l in range(1, L):
            units_n = timing.units(l, True)
            valid, block, half, _, sums = round_blocks(l, True)
            with m.If(valid):
                win_mem[l - 1].read(m, block, units_n)
            w_valid, w_block = _delayed(m, [valid, block], ColumnWriteback.LATENCY, f"column_{l}")
            bits = win_mem[l - 1].values(m, w_block, units_n, f"bit_{l}")
            units = []
            for u in range(units_n):
                unit = ColumnWriteback(cfg, l - 1, lay.accumulator_width)
                m.submodules[f"column_{l}_{u}"] = unit
                m.d.comb += [unit.sum.eq(sums[u]), unit.bit.eq(bits[u])]
                units.append(unit)
            assert units[0].latency == ColumnWriteback.LATENCY == MEMORY_LATENCY
            slots = valid_slots(w_block, units_n, lay.n_in(l))
            delta_mem[l - 1].write(m, w_block, [u.delta for u in units], slots, w_valid)
            if gain is not None:
                m.d.comb += gain.addend[l - 1].eq(energy_addend([u.delta for u in units], slots, w_valid,
                                                                f"energy_{l - 1}"))

        # -- update units and the write-back to the banks ------------------------------------
        # the old weight for the update units, from the bank word of the first read (stage 0) or the second
        weight_read = reread + MEMORY_LATENCY + BANK_REGISTERS           # the stage w_data holds it
        w_late = _delayed(m, w_data, (timing.update_weight if reread else timing.product) - weight_read, "w_late")
        ahead = op_at(timing.update_write - 1)
        writing = copies(ahead.op == Op.UPD, "writing")          # opu's, once per group of banks
        write_addr = copies(ahead.waddr, "write_addr")
        late_mix = op_at(timing.product - 1)
        unit_layer = copies(late_mix.layer, "update_layer")        # opp's, once per group of units
        unit_apply = copies(late_mix.apply, "update_apply")
        if gain is not None:
            unit_offset = copies(gain.offset[late_mix.layer], "update_offset")
        for p in range(P):
            unit = UpdateUnit(cfg, signed(lay.product_width), late_weight=bool(reread))
            m.submodules[f"update_{p}"] = unit
            k = p // GROUP
            m.d.comb += [unit.product.eq(lanes[p].product), unit.w.eq(w_late[p]), unit.layer.eq(unit_layer[k])]
            if gain is not None:
                m.d.comb += unit.offset.eq(unit_offset[k])
            if momentum:
                v_now = Signal(f.weight_acc.shape, name=f"v_{p}")
                m.d.sync += v_now.eq(v_rd[p].data)
                m.d.comb += unit.v.eq(v_now)
            if batched:
                s_now = Signal(f.weight_acc.shape, name=f"s_{p}")
                m.d.sync += s_now.eq(s_rd[p].data)
                m.d.comb += [unit.s.eq(s_now), unit.apply.eq(unit_apply[k])]
            if stochastic:
                lane_mix = Signal(32, name=f"mix_{p}")
                with m.Switch(late_mix.layer):
                    for l in range(L):
                        with m.Case(l):
                            g, c = p // lay.cols(l), p % lay.cols(l)
                            offset = (3 * MIX * (g * lay.n_cols(l) + c)) & 0xFFFFFFFF
                            m.d.sync += lane_mix.eq((late_mix.mix + offset)[:32])
                m.d.comb += [unit.mix.eq(lane_mix), unit.lfsr.eq(lfsr)]
            host_here = h_write_at[k] & (h_bank_at[k] == p)
            m.d.comb += [
                w_wr[p].addr.eq(Mux(writing[k], write_addr[k], h_addr_at[k])),
                w_wr[p].data.eq(Mux(writing[k], unit.w_new, h_wdata_at[k])),
                w_wr[p].en.eq(writing[k] | (host_here & (h_select_at[k] == 0))),
            ]
            for enabled, wr, value, select in ((momentum, v_wr, "v_new", 1), (batched, s_wr, "s_new", 2)):
                if enabled:
                    m.d.comb += [wr[p].addr.eq(Mux(seq.clearing, seq.clear_addr,
                                                   Mux(writing[k], write_addr[k], h_addr_at[k]))),
                                 wr[p].data.eq(Mux(seq.clearing, 0, Mux(writing[k], getattr(unit, value),
                                                                        h_wdata_at[k]))),
                                 wr[p].en.eq(writing[k] | seq.clearing | (host_here & (h_select_at[k] == select)))]

        # host read data: the registered bank words, selected within each group of banks, registered, then
        # the group selected and registered (two short multiplexers rather than one across the chip)
        h_bank_at, = _delayed(m, [h_bank], 1 + MEMORY_LATENCY + BANK_REGISTERS, "h_bank")
        rvalid, = _delayed(m, [h_read], 2 + MEMORY_LATENCY + BANK_REGISTERS, "h_read")
        width, in_group = f.weight_acc.bits, min(P, GROUP)
        # momentum and batch sums for the host: read a cycle earlier than the weights, so a register later
        host_data = w_data
        for select, enabled, rd in ((1, momentum, v_rd), (2, batched, s_rd)):
            if enabled:
                select_now = Signal(2, name=f"host_select_{select}")
                m.d.sync += select_now.eq(host.bank)
                words = []
                for p in range(P):
                    late_word, = _delayed(m, [rd[p].data], 2, f"host_{select}_{p}")
                    words.append(Mux(select_now == select, late_word, host_data[p]))
                host_data = words
        chosen = []
        for k in range(groups):
            word = Signal(f.weight_acc.shape, name=f"host_word_{k}")
            banks = Cat(*host_data[k * in_group:(k + 1) * in_group])
            m.d.sync += word.eq(banks.word_select(h_bank_at[:log2(in_group)], width) if in_group > 1 else banks)
            chosen.append(word)
        group_at = _delay(m, h_bank_at >> log2(in_group), "host_group")
        word = Cat(*chosen).word_select(group_at, width) if groups > 1 else chosen[0]
        if gain is not None:
            # the gain bank: its word when the read is strobed, kept alongside the banks' read
            m.d.comb += [gain.layer.eq(host.layer), gain.word.eq(host.col), gain.wdata.eq(host.wdata),
                         gain.write.eq(host.write & idle & (host.bank == GAIN_BANK))]
            gain_word, gain_read = _delayed(m, [gain.rdata, host.bank == GAIN_BANK], self.weight_read_latency - 1,
                                            "host_gain")
            word = Mux(gain_read, gain_word, word)
        m.d.sync += [host.rdata.eq(word), host.rvalid.eq(rvalid)]
        # the sequencer's engaged, not busy: the host's clear strobe does not reach its own busy input
        m.d.comb += self.busy.eq(seq.engaged | in_flight | h_write)

        # -- results, one per transfer ---------------------------------------------------------
        pending = Signal()                  # results issued and not all taken
        sending = Signal()
        word = Signal(range(max(y_words, 2)))
        slot = Signal(range(max(y_slots, 2)))
        index = Signal(range(max(nL, 2)))
        loaded = Signal()
        buffer = Signal(unsigned(y_slots * (f.activation.bits + f.error.bits)))
        m.d.comb += [seq.results_free.eq(~pending), results.rd.addr.eq(word)]
        with m.If(seq.results_issued):
            m.d.sync += pending.eq(1)
        with m.If(results_written):
            m.d.sync += [sending.eq(1), word.eq(0), slot.eq(0), index.eq(0), loaded.eq(0)]
        with m.If(sending & ~loaded):
            m.d.sync += loaded.eq(1)                 # the word was addressed last cycle: its data is here
        with m.If(sending & loaded & ~self.o_stream.valid):
            m.d.sync += buffer.eq(results.rd.data)
        out_valid = Signal()
        m.d.comb += [self.o_stream.valid.eq(out_valid),
                     self.o_stream.payload.eq(buffer.word_select(slot, f.activation.bits + f.error.bits)
                                              if y_slots > 1 else buffer)]
        with m.If(sending & loaded & ~out_valid):
            m.d.sync += out_valid.eq(1)
        with m.If(out_valid & self.o_stream.ready):
            m.d.sync += [index.eq(index + 1), slot.eq(slot + 1)]
            with m.If(index == nL - 1):
                m.d.sync += [out_valid.eq(0), sending.eq(0), pending.eq(0)]
            with m.Elif(slot == y_slots - 1):
                m.d.sync += [out_valid.eq(0), loaded.eq(0), word.eq(word + 1), slot.eq(0)]
        return m


def _delay(m: Module, value, name: str):
    reg = Signal.like(value, name=name)
    m.d.sync += reg.eq(value)
    return reg


def _delayed(m: Module, values, cycles: int, name: str):
    """``values``, each ``cycles`` registers later (a pipeline's side signals keep pace with its data)."""
    for k in range(cycles):
        values = [_delay(m, v, f"{name}_{i}_{k}") for i, v in enumerate(values)]
    return values
