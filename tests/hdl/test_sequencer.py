"""hdl/sequencer.py: the micro-op stream of one step is the documented schedule."""

from collections import Counter

import pytest
from amaranth.sim import Simulator
from nfloop.hdl.layout import CoreLayout
from nfloop.hdl.sequencer import Op, Sequencer, schedule
from nfloop.model.config import Activation, ActivationKind, Layer, LearnerConfig

CONFIG = LearnerConfig(inputs=5, layers=(Layer(6, Activation(ActivationKind.RELU)), Layer(3), Layer(2)))


@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_one_step_issues_every_multiply_once(lanes):
    layout = CoreLayout(CONFIG, lanes)
    seq = Sequencer(layout)
    ops = []
    cycles = {}

    async def bench(ctx):
        ctx.set(seq.sample_ready, 1)
        ctx.set(seq.fifo_empty, 1)
        ctx.set(seq.learn, 1)
        count = 0
        while True:
            await ctx.tick()
            count += 1
            op = ctx.get(seq.op)
            ctx.set(seq.sample_ready, 0)
            if op.op != Op.NOP:
                ops.append((Op(op.op), op.layer, op.r, op.i, op.waddr))
            if ctx.get(seq.sample_done):
                cycles["step"] = count
                break

    sim = Simulator(seq)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    kinds = Counter(op for op, *_ in ops)
    forward = sum(layout.rounds(l) * (layout.n_in(l) + 1) for l in range(layout.layers))
    backward = sum(layout.rounds(l) * layout.n_in(l) for l in range(1, layout.layers))
    assert kinds[Op.FWD] == forward and kinds[Op.UPD] == forward and kinds[Op.BWD] == backward
    assert kinds[Op.ERR] == layout.n_out(layout.layers - 1)
    # every weight address of every layer is updated exactly once per step
    updated = Counter((layer, waddr) for op, layer, r, i, waddr in ops if op == Op.UPD)
    assert set(updated.values()) == {1} and len(updated) == layout.depth
    for op, layer, r, i, waddr in ops:
        if op in (Op.FWD, Op.BWD, Op.UPD):
            assert waddr == layout.base(layer) + r * (layout.n_in(layer) + 1) + i
    assert cycles["step"] == sum(c for _, c in schedule(layout))
