"""The learner core: lanes, memories and the pipeline that runs the sequencer's micro-ops.

Pipeline of one micro-op issued in cycle t0 (see :mod:`nfloop.hdl.sequencer`):

- t0: memory reads (weights, momentum, batch sums, input, activations, deltas).
- t1: operand selection into the lanes; ERR ops compute the error and the
  output window here and write delta_L and the result FIFO.
- t1 -> t3: the lanes' registered multiply (the DSP's input and output registers).
- t3: FWD accumulates; BWD sums across lanes; UPD runs the update units and
  writes weights, momentum and batch sums back.
- t4: a FWD row's sum is requantised and activated into the layer's z/a
  memories; a finished BWD column is requantised, windowed by the previous
  layer's z and written to that layer's delta memory.

Activations, pre-activations and deltas are stored ``P`` to a word (slot p
of word r is unit r*P + p), so a FWD or BWD round reads or writes all lanes
at once.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model.config import ConfigError, LearnerConfig
from ..model.fixed import LFSR_MASK, MIX, FixedLearner, LayerPlan
from ..model.init import initial_weights
from .activation import ActivationUnit, WindowUnit
from .arith import requantise, saturate, view
from .backward import BackwardUnit
from .error import ErrorUnit
from .layout import CoreLayout
from .mac import MacLane
from .sequencer import Op, Sequencer
from .update import UpdateUnit

__all__ = ["LearnerCore", "weight_port_signature"]

#: Activation, pre-activation and delta memories shallower than this are built from flip-flops.
SMALL_MEMORY_WORDS = 16


def weight_port_signature(layout: CoreLayout) -> wiring.Signature:
    """Host access to every weight accumulator, from the host's side.

    ``write`` / ``read`` are one-cycle strobes, honoured only while the core
    is not ``busy``; ``rdata`` is valid in the cycle ``rvalid`` is set (the
    cycle after ``read``).
    """
    L = layout.layers
    acc = layout.config.formats.weight_acc.shape
    return wiring.Signature({
        "layer": Out(range(max(L, 2))),
        "row": Out(range(max(max(layout.n_out(l) for l in range(L)), 2))),
        "col": Out(range(max(layout.n_in(l) + 1 for l in range(L)))),
        "wdata": Out(acc), "write": Out(1), "read": Out(1),
        "rdata": In(acc), "rvalid": In(1),
    })


class LearnerCore(wiring.Component):
    """A negative-feedback learner that trains on every sample it receives.

    Parameters
    ----------
    config : LearnerConfig
    lanes : int
        P, the number of MAC lanes (a power of two).
    weights : list of arrays, optional
        Initial weight_acc codes per layer; default: the config's initial weights.

    Members
    -------
    i_stream : In(stream)
        Samples, one element per transfer: the n_in inputs (formats.input
        codes) then the n_out targets (formats.activation codes).
    o_stream : Out(stream)
        Per trained sample, n_out results: ``prediction`` (a_L) and ``error`` (e).
    weights : In(weight_port_signature)
    learn : In(1)
        1: train on each sample; 0: inference only (results out, weights unchanged).
        Sampled when a sample's step starts.
    clear : In(1)
        Zero momentum and batch sums, reset the LFSR and the counters (when not busy).
    busy : Out(1)
    steps, cycles : Out
        Training steps done, and clock cycles spent inside steps.
    """

    def __init__(self, config: LearnerConfig, lanes: int = 1, weights=None):
        try:
            self._layout = layout = CoreLayout(config, lanes)
        except ConfigError:
            self._MustUse__silence = True        # a core that failed validation is not an unused one
            raise
        self._config = config
        f = config.formats
        if weights is None:
            weights = FixedLearner.quantise_weights(config, initial_weights(config))
        self._weights = weights
        self.sample_layout = data.StructLayout({"data": signed(max(f.input.bits, f.activation.bits))})
        self.result_layout = data.StructLayout({"prediction": f.activation.shape, "error": f.error.shape})
        super().__init__({
            "i_stream": In(stream.Signature(self.sample_layout)),
            "o_stream": Out(stream.Signature(self.result_layout)),
            "weights": In(weight_port_signature(layout)),
            "learn": In(1, init=1), "clear": In(1), "busy": Out(1),
            "steps": Out(32), "cycles": Out(48),
        })

    @property
    def layout(self) -> CoreLayout:
        return self._layout

    def elaborate(self, platform):
        m = Module()
        lay, cfg = self._layout, self._config
        f, P, L = cfg.formats, lay.lanes, lay.layers
        lane_bits = lay.lane_bits
        plans = [LayerPlan.build(cfg, l) for l in range(L)]
        n0, nL = lay.n_in(0), lay.n_out(L - 1)

        m.submodules.sequencer = seq = Sequencer(lay)
        ops = [seq.op]
        for t in range(1, 5):
            op = Signal(seq.micro_op, name=f"op_t{t}")
            m.d.sync += op.eq(ops[-1])
            ops.append(op)
        op0, op1, op2, op3, op4 = ops

        def is_op(op, kind, layer=None):
            cond = op.op == kind
            return cond if layer is None else cond & (op.layer == layer)

        def slot_of(index):
            return index[:lane_bits] if lane_bits else Const(0, 1)

        def word_of(index):
            return index >> lane_bits

        def slot(word, index, fmt):
            """Value ``index mod P`` of a word holding P values of ``fmt``."""
            return word.word_select(slot_of(index), fmt.bits).as_signed() if P > 1 else word.as_signed()

        def lane_valid(op, p):
            """Unit r*P + p exists in the op's layer."""
            valid = Const(0, 1)
            for l in range(L):
                if p < lay.n_out(l):
                    valid = Mux(op.layer == l, op.r <= (lay.n_out(l) - 1 - p) // P, valid)
            return valid

        # -- LFSR, counters ---------------------------------------------------------------
        lfsr = Signal(32, init=cfg.lfsr_seed)
        m.d.comb += [seq.clear.eq(self.clear), seq.learn.eq(self.learn), self.busy.eq(seq.busy)]
        with m.If(self.clear & ~seq.busy):
            m.d.sync += [lfsr.eq(cfg.lfsr_seed), self.steps.eq(0), self.cycles.eq(0)]
        with m.Else():
            m.d.sync += [self.steps.eq(self.steps + seq.trained),
                         self.cycles.eq(self.cycles + (seq.busy & ~seq.clearing & seq.learning))]
            with m.If(seq.lfsr_step):
                m.d.sync += lfsr.eq((lfsr >> 1) ^ Mux(lfsr[0], LFSR_MASK, 0))

        # -- Sample loader: two buffers, one filling while the other trains ----------------
        m.submodules.xbuf = xbuf = Memory(shape=f.input.shape, depth=2 * n0, init=[])
        m.submodules.ybuf = ybuf = Memory(shape=f.activation.shape, depth=2 * nL, init=[])
        x_wr, x_rd = xbuf.write_port(), xbuf.read_port()
        y_wr, y_rd = ybuf.write_port(), ybuf.read_port()
        full = Signal(2)
        load_half, cur_half = Signal(), Signal()
        load_k = Signal(range(n0 + nL))
        sample = self.i_stream.payload.data
        m.d.comb += [
            self.i_stream.ready.eq(~full.bit_select(load_half, 1)),
            seq.sample_ready.eq(full.bit_select(cur_half, 1)),
            x_wr.addr.eq(Mux(load_half, n0, 0) + load_k), x_wr.data.eq(saturate(sample, f.input)),
            y_wr.addr.eq(Mux(load_half, nL, 0) + (load_k - n0)), y_wr.data.eq(saturate(sample, f.activation)),
        ]
        with m.If(self.i_stream.valid & self.i_stream.ready):
            m.d.comb += [x_wr.en.eq(load_k < n0), y_wr.en.eq(load_k >= n0)]
            m.d.sync += load_k.eq(load_k + 1)
            with m.If(load_k == n0 + nL - 1):
                m.d.sync += [load_k.eq(0), load_half.eq(~load_half), full.bit_select(load_half, 1).eq(1)]
        with m.If(seq.sample_done):
            m.d.sync += [cur_half.eq(~cur_half), full.bit_select(cur_half, 1).eq(0)]

        # -- Memories -----------------------------------------------------------------------
        momentum = any(p.momentum_shift for p in plans)
        batched = cfg.batch_size > 1
        init = lay.banks(self._weights)
        w_rd, w_wr, v_rd, v_wr, s_rd, s_wr = [], [], [], [], [], []
        for p in range(P):
            bank = Memory(shape=f.weight_acc.shape, depth=lay.depth, init=init[p])
            m.submodules[f"weights_{p}"] = bank
            w_rd.append(bank.read_port())
            w_wr.append(bank.write_port())
            for enabled, name, rd, wr in ((momentum, "velocity", v_rd, v_wr), (batched, "batch_sum", s_rd, s_wr)):
                if enabled:
                    mem = Memory(shape=f.weight_acc.shape, depth=lay.depth, init=[])
                    m.submodules[f"{name}_{p}"] = mem
                    rd.append(mem.read_port())
                    wr.append(mem.write_port())
        act_word = unsigned(P * f.activation.bits)
        err_word = unsigned(P * f.error.bits)
        z_rd, z_wr, a_rd, a_wr, d_rd, d_wr = [], [], [], [], [], []
        for l in range(L):
            for name, shape, rd, wr, gran in (("z", act_word, z_rd, z_wr, None), ("a", act_word, a_rd, a_wr, None),
                                              ("delta", err_word, d_rd, d_wr, f.error.bits)):
                # A few words P values wide: flip-flops, not a block RAM per 16 bits of width.
                # From SMALL_MEMORY_WORDS words up, block RAM costs less than the flip-flops.
                attrs = {"ram_style": "logic"} if lay.rounds(l) < SMALL_MEMORY_WORDS else {}
                mem = Memory(shape=shape, depth=lay.rounds(l), init=[], attrs=attrs)
                m.submodules[f"{name}_{l}"] = mem
                rd.append(mem.read_port())
                wr.append(mem.write_port(granularity=gran) if gran else mem.write_port())

        # -- t0: read addresses -------------------------------------------------------------
        host = self.weights
        host_bank = slot_of(host.row)
        host_addr = Signal.like(op0.waddr)
        with m.Switch(host.layer):
            for l in range(L):
                with m.Case(l):
                    m.d.comb += host_addr.eq(lay.base(l) + word_of(host.row) * (lay.n_in(l) + 1) + host.col)
        host_read = host.read & ~seq.busy
        for p in range(P):
            m.d.comb += w_rd[p].addr.eq(Mux(op0.op == Op.NOP, host_addr, op0.waddr))
            for rd in (v_rd, s_rd):
                if rd:
                    m.d.comb += rd[p].addr.eq(op0.waddr)
        m.d.comb += [
            x_rd.addr.eq(Mux(cur_half, n0, 0) + Mux(op0.i >= n0, 0, op0.i)),
            y_rd.addr.eq(Mux(cur_half, nL, 0) + Mux(op0.i >= nL, 0, op0.i)),
        ]
        for l in range(L):
            m.d.comb += [a_rd[l].addr.eq(word_of(op0.i)), d_rd[l].addr.eq(op0.r)]
            if l == L - 1:
                m.d.comb += z_rd[l].addr.eq(word_of(op0.i))       # ERR
            else:
                m.d.comb += z_rd[l].addr.eq(word_of(op3.i))       # BWD window at t4

        # host read data, one cycle later
        host_bank_t1 = Signal.like(host_bank)
        m.d.sync += [host_bank_t1.eq(host_bank), host.rvalid.eq(host_read)]
        m.d.comb += host.rdata.eq(slot(Cat(*(w_rd[p].data for p in range(P))), host_bank_t1, f.weight_acc))

        # -- t1: operands ---------------------------------------------------------------------
        a_in = Signal(signed(lay.operand_b_width))
        delta = [Signal(f.error.shape, name=f"delta_{p}") for p in range(P)]
        with m.Switch(op1.layer):
            for l in range(L):
                with m.Case(l):
                    source = x_rd.data if l == 0 else slot(a_rd[l - 1].data, op1.i, f.activation)
                    m.d.comb += a_in.eq(Mux(op1.i == lay.n_in(l), plans[l].one_code, source))
                    m.d.comb += [delta[p].eq(d_rd[l].data.word_select(p, f.error.bits).as_signed())
                                 for p in range(P)]

        lanes = []
        for p in range(P):
            m.submodules[f"lane_{p}"] = lane = MacLane(lay.operand_a_width, lay.operand_b_width, lay.mac_sum_width)
            lanes.append(lane)
            w_view = view(w_rd[p].data, plans[0].view_shift, f.weight)
            m.d.comb += [
                lane.a.eq(Mux(op1.op == Op.UPD, delta[p], w_view)),
                lane.b.eq(Mux(op1.op == Op.BWD, delta[p], a_in)),
            ]

        # ERR at t1: error, output window, result FIFO, delta_L
        # depth n_out + 1: the buffered FIFO holds depth - 1 items before its output register
        m.submodules.results = fifo = SyncFIFOBuffered(width=self.result_layout.size, depth=nL + 1)
        m.submodules.error = err = ErrorUnit(cfg)
        m.submodules.out_window = out_window = WindowUnit(cfg, L - 1)
        yhat = slot(a_rd[L - 1].data, op1.i, f.activation)
        m.d.comb += [
            err.y.eq(y_rd.data), err.yhat.eq(yhat),
            out_window.g.eq(err.e), out_window.z.eq(slot(z_rd[L - 1].data, op1.i, f.activation)),
            fifo.w_data.eq(Cat(yhat, err.e)), fifo.w_en.eq(is_op(op1, Op.ERR)),
            seq.fifo_empty.eq(fifo.level == 0),
            self.o_stream.valid.eq(fifo.r_rdy), self.o_stream.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.o_stream.ready),
        ]

        # -- t1 -> t3: state of the weight being updated travels beside its product ----------
        def delay(value, stages, name):
            for k in range(stages):
                reg = Signal.like(value, name=f"{name}_d{k + 1}")
                m.d.sync += reg.eq(value)
                value = reg
            return value

        w_old = [delay(w_rd[p].data, 2, f"w_old_{p}") for p in range(P)]
        v_old = [delay(v_rd[p].data, 2, f"v_old_{p}") for p in range(P)] if momentum else None
        s_old = [delay(s_rd[p].data, 2, f"s_old_{p}") for p in range(P)] if batched else None

        # -- t3: accumulate, backward sum, update ---------------------------------------------
        valid3 = [lane_valid(op3, p) for p in range(P)]
        m.submodules.backward = bwd = BackwardUnit(P, lay.product_width, lay.backward_sum_width)
        m.d.comb += [bwd.strobe.eq(is_op(op3, Op.BWD)), bwd.first.eq(op3.first), bwd.last.eq(op3.last),
                     bwd.lane_valid.eq(Cat(*valid3))]
        row_sum = [Signal(signed(lay.mac_sum_width), name=f"row_sum_{p}") for p in range(P)]
        for p, lane in enumerate(lanes):
            m.d.comb += [lane.first.eq(op3.first), lane.accumulate.eq(is_op(op3, Op.FWD)),
                         bwd.products[p].eq(lane.product)]
            with m.If(is_op(op3, Op.FWD) & op3.last):
                m.d.sync += row_sum[p].eq(lane.sum)

        writing = is_op(op3, Op.UPD)
        for p in range(P):
            w_new = Signal(f.weight_acc.shape, name=f"w_new_{p}")
            v_new = Signal(f.weight_acc.shape, name=f"v_new_{p}")
            s_new = Signal(f.weight_acc.shape, name=f"s_new_{p}")
            for l in range(L):
                unit = UpdateUnit(cfg, l, signed(lay.product_width))
                m.submodules[f"update_{l}_{p}"] = unit
                m.d.comb += [unit.product.eq(lanes[p].product), unit.w.eq(w_old[p])]
                if plans[l].momentum_shift:
                    m.d.comb += unit.v.eq(v_old[p])
                if batched:
                    m.d.comb += [unit.s.eq(s_old[p]), unit.apply.eq(op3.apply)]
                if hasattr(unit, "mix"):
                    lane_mix = (3 * MIX * p * (lay.n_in(l) + 1)) & 0xFFFFFFFF
                    m.d.comb += [unit.mix.eq(op3.mix + lane_mix), unit.lfsr.eq(lfsr)]
                with m.If(op3.layer == l):
                    m.d.comb += w_new.eq(unit.w_new)
                    m.d.comb += v_new.eq(unit.v_new if plans[l].momentum_shift else v_old[p] if momentum else 0)
                    if batched:
                        m.d.comb += s_new.eq(unit.s_new)
            upd = writing & valid3[p]
            host_write = host.write & ~seq.busy & (host_bank == p)
            m.d.comb += [
                w_wr[p].addr.eq(Mux(upd, op3.waddr, host_addr)),
                w_wr[p].data.eq(Mux(upd, w_new, host.wdata)),
                w_wr[p].en.eq(upd | host_write),
            ]
            for enabled, wr, value in ((momentum, v_wr, v_new), (batched, s_wr, s_new)):
                if enabled:
                    m.d.comb += [wr[p].addr.eq(Mux(seq.clearing, seq.clear_addr, op3.waddr)),
                                 wr[p].data.eq(Mux(seq.clearing, 0, value)),
                                 wr[p].en.eq(upd | seq.clearing)]

        # -- t4: activations of a finished row; delta of a finished column --------------------
        for l in range(L):
            zs, acts = [], []
            for p in range(P):
                z = Signal(f.activation.shape, name=f"z_{l}_{p}")
                m.d.comb += z.eq(requantise(row_sum[p], plans[l].z_shift, f.activation, cfg.forward_rounding))
                m.submodules[f"activation_{l}_{p}"] = act = ActivationUnit(cfg, l)
                m.d.comb += act.z.eq(z)
                zs.append(z)
                acts.append(act.a)
            done = is_op(op4, Op.FWD, l) & op4.last
            m.d.comb += [z_wr[l].addr.eq(op4.r), z_wr[l].data.eq(Cat(*zs)), z_wr[l].en.eq(done),
                         a_wr[l].addr.eq(op4.r), a_wr[l].data.eq(Cat(*acts)), a_wr[l].en.eq(done)]

        g = Signal(f.error.shape)
        m.d.comb += g.eq(requantise(bwd.g, f.weight.frac, f.error, cfg.forward_rounding))
        for l in range(L - 1):
            m.submodules[f"window_{l}"] = win = WindowUnit(cfg, l)
            m.d.comb += [win.g.eq(g), win.z.eq(slot(z_rd[l].data, op4.i, f.activation)),
                         d_wr[l].addr.eq(word_of(op4.i)), d_wr[l].data.eq(Cat(*([win.delta] * P))),
                         d_wr[l].en.eq(Mux(bwd.g_valid & (op4.layer == l + 1), 1 << slot_of(op4.i), 0))]
        m.d.comb += [d_wr[L - 1].addr.eq(word_of(op1.i)), d_wr[L - 1].data.eq(Cat(*([out_window.delta] * P))),
                     d_wr[L - 1].en.eq(Mux(is_op(op1, Op.ERR), 1 << slot_of(op1.i), 0))]
        return m
