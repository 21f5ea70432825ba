"""hdl/sequencer.py: the micro-op stream of one step is the documented schedule."""

from collections import Counter

import pytest
from amaranth.sim import Simulator
from nfloop.hdl.layout import CoreLayout
from nfloop.hdl.sequencer import Op, Sequencer, busy_multipliers, schedule, step_cycles, weight_reread
from nfloop.hdl.timing import CoreTiming
from nfloop.model.config import Activation, ActivationKind, Layer, LearnerConfig

CONFIG = LearnerConfig(inputs=5, layers=(Layer(6, Activation(ActivationKind.RELU)), Layer(3), Layer(2)))


def run_step(layout, learn=True, per_cycle=None):
    """The non-NOP micro-ops of one step and the cycles from its first op to its sample_done;
    ``per_cycle`` (a list) receives every cycle's (op, layer, r, k), NOPs included."""
    seq = Sequencer(layout)
    ops, cycles = [], {}

    async def bench(ctx):
        ctx.set(seq.sample_ready, 1)
        ctx.set(seq.results_free, 1)
        ctx.set(seq.learn, learn)
        count = 0
        while True:
            count += ctx.get(seq.busy)
            op = ctx.get(seq.op)
            if per_cycle is not None:
                per_cycle.append((Op(op.op), op.layer, op.r, op.k))
            if op.op != Op.NOP:
                ops.append((Op(op.op), op.layer, op.r, op.k, op.waddr, op.first, op.last))
            if ctx.get(seq.sample_done):
                cycles["step"] = count
                break
            await ctx.tick()
            ctx.set(seq.sample_ready, 0)

    sim = Simulator(seq)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return ops, cycles["step"]


#: The digits network's shape: at 32 lanes its output layer's second column round holds only the bias.
DIGITS = LearnerConfig(inputs=64, layers=(Layer(32, Activation(ActivationKind.RELU)), Layer(10)))


@pytest.mark.parametrize("config, lanes, columns", [
    (CONFIG, 1, None), (CONFIG, 2, None), (CONFIG, 4, None), (CONFIG, 4, (2, 4, 1)), (CONFIG, 8, (8, 1, 8)),
    (DIGITS, 32, None)])
def test_one_step_issues_every_multiply_once(config, lanes, columns):
    layout = CoreLayout(config, lanes, columns)
    ops, cycles = run_step(layout)
    kinds = Counter(op for op, *_ in ops)
    rounds = [layout.row_rounds(l) * layout.col_rounds(l) for l in range(layout.layers)]
    assert kinds[Op.FWD] == sum(rounds) and kinds[Op.UPD] == sum(rounds)
    # a round of only the bias passes nothing back
    assert kinds[Op.BWD] == sum(layout.row_rounds(l) * layout.input_rounds(l) for l in range(1, layout.layers))
    # every weight word of every layer is updated exactly once per step, after its backward read
    updated = Counter((layer, waddr) for op, layer, r, k, waddr, *_ in ops if op == Op.UPD)
    assert set(updated.values()) == {1} and len(updated) == layout.depth
    order = {(op, layer, waddr): i for i, (op, layer, r, k, waddr, *_) in enumerate(ops)}
    for (op, layer, waddr), i in order.items():
        if op == Op.BWD:
            assert i < order[(Op.UPD, layer, waddr)]
    for op, layer, r, k, waddr, first, last in ops:
        assert waddr == layout.base(layer) + r * layout.col_rounds(layer) + k
        if op == Op.FWD:
            assert (first, last) == (k == 0, k == layout.col_rounds(layer) - 1)
        if op == Op.BWD:
            assert (first, last) == (r == 0, r == layout.row_rounds(layer) - 1)
    assert cycles == sum(c for _, c in schedule(layout)) == step_cycles(layout)


def test_inference_runs_the_forward_phases_only():
    layout = CoreLayout(CONFIG, 2)
    ops, cycles = run_step(layout, learn=False)
    assert {op for op, *_ in ops} == {Op.FWD}
    assert cycles == step_cycles(layout, learning=False)


def test_the_mapping_keeps_wide_cores_busy():
    """A 10-unit output layer on 64 lanes: every multiplier works (the digits network within 1.3x its bound)."""
    config = LearnerConfig(inputs=64, layers=(Layer(32, Activation(ActivationKind.RELU)), Layer(10)))
    for lanes in (8, 16, 32, 64):
        layout = CoreLayout(config, lanes)
        assert step_cycles(layout) <= 1.3 * layout.mac_bound_cycles() + 40, lanes


def issued_tiles(layout):
    """Multiplies of the tile the Amaranth sequencer issues in each cycle of one step (0: no op)."""
    per_cycle = []
    run_step(layout, per_cycle=per_cycle)
    sizes = []
    for op, l, r, k in per_cycle:
        if op == Op.NOP:
            sizes.append(0)
            continue
        G, C = layout.groups(l), layout.cols(l)
        width = layout.n_in(l) if op == Op.BWD else layout.n_cols(l)
        sizes.append((min((r + 1) * G, layout.n_out(l)) - r * G) * max(0, min((k + 1) * C, width) - k * C))
    return sizes


def _trimmed(values):
    values = list(values)
    first = next(i for i, v in enumerate(values) if v)
    last = len(values) - next(i for i, v in enumerate(reversed(values)) if v)
    return values[first:last]


@pytest.mark.parametrize("config, lanes, columns", [
    (CONFIG, 1, None), (CONFIG, 4, None), (CONFIG, 4, (2, 4, 1)), (CONFIG, 8, (8, 1, 8)), (DIGITS, 32, None)])
def test_busy_multipliers_are_what_the_sequencer_issues(config, lanes, columns):
    """The utilisation figure's per-cycle counts, against the gateware's own op stream."""
    layout = CoreLayout(config, lanes, columns)
    busy = busy_multipliers(layout)
    assert len(busy) == step_cycles(layout) and sum(busy) == config.mac_operations and max(busy) <= lanes
    assert _trimmed(busy) == _trimmed(issued_tiles(layout))


def test_the_pass_order_is_the_shorter_one():
    """Each layer's pass takes whichever order of its BWD and UPD ops gives the shorter step: at 64 lanes the
    digits network's output layer sweeps its BWD ops first; at one lane they interleave."""
    from nfloop.hdl.sequencer import _cycles, backward_sweeps
    for lanes, expected in ((1, (False, False)), (64, (False, True))):
        layout = CoreLayout(DIGITS, lanes)
        assert backward_sweeps(layout) == expected
        other = (False, not expected[1])
        assert step_cycles(layout) < _cycles(layout, True, other)


LEAKY = LearnerConfig(inputs=4, layers=(Layer(3, gain_shift=5, leak_shift=9), Layer(2)))


@pytest.mark.parametrize("config, lanes, stage", [
    (DIGITS, 2, 4), (DIGITS, 4, 4), (CONFIG, 2, 2), (CONFIG, 4, 0), (CONFIG, 8, 4), (LEAKY, 2, 2)])
def test_an_update_op_reads_its_weight_again_when_the_bank_s_read_port_is_free(config, lanes, stage):
    """A narrow core's update ops read their old weights a second time in the latest stage in which no
    forward or backward op reads the banks, and the step ends after the last such read; where every stage
    meets one (stage 0), they carry their first read's word. With a leak the update unit uses the old
    weight in its first stage (latest 3, which the interleaved backward and update ops meet)."""
    layout = CoreLayout(config, lanes, narrow=True)
    assert layout.reread_weights and weight_reread(layout) == stage
    assert CoreTiming(layout).weight_reread == (3 if config is LEAKY else 4)
    per_cycle = []
    run_step(layout, per_cycle=per_cycle)
    first = next(c for c, (op, *_) in enumerate(per_cycle) if op != Op.NOP)
    ops = [op for op, *_ in per_cycle[first:]]
    reads = {c for c, op in enumerate(ops) if op in (Op.FWD, Op.BWD)}
    for later in range(1, CoreTiming(layout).weight_reread + 1):
        rereads = {c + later for c, op in enumerate(ops) if op == Op.UPD}
        free = not reads & rereads
        assert free if later == stage else (not free or later < stage), later
    if stage:
        # the next step's first read, step_cycles after this one's, comes after the last second read
        assert max(c for c, op in enumerate(ops) if op == Op.UPD) + stage < step_cycles(layout)
    assert not CoreLayout(config, lanes).reread_weights
