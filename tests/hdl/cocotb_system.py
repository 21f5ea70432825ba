"""cocotb testbench: the Verilated learner core against the fixed-point model, step by step.

Run by ``tests/hdl/test_system.py`` through ``cocotb_tools.runner``; everything
comes in through environment variables:

``NFLOOP_CONFIG``         TOML of the config the core was built from.
``NFLOOP_MODEL_CONFIG``   optional TOML of the config the model runs (default: the same);
                          a different one is how the self-test builds a wrong model.
``NFLOOP_STIMULUS``       .npz with ``xs`` (steps, n_in) input codes, ``ys`` (steps, n_out)
                          target codes, ``checkpoints`` (steps after which the full weight
                          memory is read back and compared; the last is the end) and
                          ``pokes`` (checkpoints where the host writes new weights through
                          the weight port and pulses ``clear``).
``NFLOOP_SEED``           seed of the bench's own randomness (stalls, poked weights).
``NFLOOP_STALLS``         "1": random gaps in the input stream and back-pressure on the output.
``NFLOOP_CORRUPT``        optional "layer,row,col": flip the LSB of that expected weight at the
                          first checkpoint (self-test of the comparison).
``NFLOOP_REPORT``         where to write the JSON report (mismatch, cycles, wall time).

Transaction level: the clock runs in C++ (cocotb's GPI clock); the bench wakes
once per stream transfer, per output result and per weight access, never per
cycle of a step's compute phases (it sleeps on ``ready``, ``valid`` and ``busy``
edges meanwhile).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # tests/: nfloop from this checkout
import cocotb  # noqa: E402
import numpy as np
import support.checkout  # noqa: E402, F401
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, FallingEdge, ReadOnly, RisingEdge, with_timeout
from cocotb.utils import get_sim_time
from nfloop.hdl.core import GAIN_BANK, LearnerCore
from nfloop.model.config import load_config
from nfloop.model.fixed import GAIN_WORDS, FixedLearner, output_error
from nfloop.sim.verify import GAIN_STATE, first_output_mismatch, first_weight_mismatch
from support.cocotb_streams import StreamSink, StreamSource  # noqa: E402

PERIOD_NS = 10


def step_cycle_bound(config) -> int:
    """A generous bound on the cycles of one training step (the sequencer's schedule, doubled)."""
    sizes = config.sizes
    total = sum(3 * sizes[l + 1] * (sizes[l] + 1) + 20 for l in range(len(config.layers)))
    return 2 * (total + 2 * sizes[-1] + 50)


class Mismatched(AssertionError):
    def __init__(self, mismatch):
        super().__init__(str(mismatch))
        self.mismatch = mismatch


class Bench:
    def __init__(self, dut):
        self.dut = dut
        self.config = load_config(os.environ["NFLOOP_CONFIG"])
        model_path = os.environ.get("NFLOOP_MODEL_CONFIG") or os.environ["NFLOOP_CONFIG"]
        self.model_config = load_config(model_path)
        stim = np.load(os.environ["NFLOOP_STIMULUS"])
        self.xs, self.ys = stim["xs"].astype(np.int64), stim["ys"].astype(np.int64)
        self.checkpoints = [int(c) for c in stim["checkpoints"]]
        self.pokes = {int(c) for c in stim["pokes"]}
        self.rng = np.random.default_rng(int(os.environ.get("NFLOOP_SEED", "0")))
        self.stalls = os.environ.get("NFLOOP_STALLS") == "1"
        corrupt = os.environ.get("NFLOOP_CORRUPT")
        self.corrupt = tuple(int(v) for v in corrupt.split(",")) if corrupt else None

        f = self.config.formats
        self.n_in, self.n_out = self.config.inputs, self.config.outputs
        self.layers = len(self.config.layers)
        self.sizes = self.config.sizes
        self.result_layout = LearnerCore(self.config).result_layout
        stall_rng = self.rng if self.stalls else None
        per_sample = self.n_in + self.n_out          # a gap before about one sample in five
        self.source = StreamSource(dut, "i_stream", stall_rng, stall=(0.2 / per_sample, 30))
        self.sink = StreamSink(dut, "o_stream", stall_rng, stall=(0.05, 40))
        self.acc_mask = (1 << f.weight_acc.bits) - 1
        self.results: list[int] = []         # raw o_stream payloads
        self.target = 0                      # results the sink is waiting for
        self.results_done = Event()
        self.report: dict = {"mismatch": None, "steps": 0}

    # -- streams -------------------------------------------------------------------------

    def take(self, payload: int):
        """The sink's hand-off: one raw o_stream payload."""
        self.results.append(payload)
        if len(self.results) >= self.target:
            self.results_done.set()

    async def feed(self, xs: np.ndarray, ys: np.ndarray):
        """i_stream: the samples (xs[k], ys[k]), one awaited transfer per element."""
        for x, y in zip(xs.tolist(), ys.tolist()):
            for value in (*x, *y):
                await self.source.put(value)
        self.source.idle()

    async def wait_idle(self, results: int):
        """Until ``results`` results came out and the core finished its last step."""
        if len(self.results) < results:
            self.target = results
            self.results_done.clear()
            await self.results_done.wait()
            await RisingEdge(self.dut.clk)                       # out of the sink's read-only phase
        while True:
            await ReadOnly()
            if not self.dut.busy.value:
                break
            await FallingEdge(self.dut.busy)
        await FallingEdge(self.dut.clk)                          # leave the read-only phase
        if len(self.results) != results:
            raise AssertionError(f"the core produced {len(self.results)} results, expected {results}")

    def decode(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """Results first..last-1 as (steps, n_out) predictions and errors, through the core's ``result_layout``."""
        results = [self.result_layout.from_bits(self.results[k]) for k in range(first, last)]
        shape = ((last - first) // self.n_out, self.n_out)
        pred = np.array([r.prediction for r in results], dtype=np.int64).reshape(shape)
        err = np.array([r.error for r in results], dtype=np.int64).reshape(shape)
        return pred, err

    async def infer(self, model, step: int, weights: list[np.ndarray], since_clear: int):
        """A burst of samples with learn = 0: forward results only, weights and counters unchanged."""
        dut, cfg = self.dut, self.model_config
        count = min(6, len(self.xs))
        xs, ys = self.xs[:count], self.ys[:count]
        dut.learn.value = 0
        first = len(self.results)
        await with_timeout(self.feed(xs, ys), self.bound_ns * (count + 4), "ns")
        await with_timeout(self.wait_idle(first + count * self.n_out), self.bound_ns * (count + 4), "ns")
        dut.learn.value = 1
        pred, err = self.decode(first, first + count * self.n_out)
        want = model.forward(xs)[1][-1]
        f = cfg.formats
        want_err = output_error(ys, want, f.activation, f.error, cfg.forward_rounding)
        mismatch = first_output_mismatch(pred, err, want, want_err, layer=self.layers - 1)
        if mismatch:
            self.fail(replace(mismatch, step=step - 1, what=f"{mismatch.what} of inference sample "
                                                            f"{mismatch.step} (learn=0) after the step"))
        if dut.steps.value.to_unsigned() != since_clear:
            raise AssertionError(f"inference samples after step {step - 1} changed the steps counter")
        mismatch = first_weight_mismatch(await self.read_weights(), weights, step=step - 1)
        if mismatch:
            self.fail(replace(mismatch, what="weight after inference samples"))

    # -- weight port ---------------------------------------------------------------------

    def _indices(self):
        for l in range(self.layers):
            for j in range(self.sizes[l + 1]):
                for i in range(self.sizes[l] + 1):
                    yield l, j, i

    def _gain_indices(self):
        for l in range(self.layers):
            for word in range(GAIN_WORDS):
                yield l, 0, word

    async def read_weights(self, bank: int = 0) -> list[np.ndarray]:
        """The whole weight memory (or the adaptive gain state, ``bank`` GAIN_BANK), one read per cycle; the
        answers come back in order with rvalid."""
        dut = self.dut
        w = dut.weights__layer, dut.weights__row, dut.weights__col
        read, rdata, rvalid = dut.weights__read, dut.weights__rdata, dut.weights__rvalid
        if bank == GAIN_BANK:
            out = [np.zeros((1, GAIN_WORDS), dtype=np.int64) for _ in range(self.layers)]
            indices = list(self._gain_indices())
        else:
            out = [np.zeros((self.sizes[l + 1], self.sizes[l] + 1), dtype=np.int64) for l in range(self.layers)]
            indices = list(self._indices())
        dut.weights__bank.value = bank
        answered = 0

        def collect():
            nonlocal answered
            if rvalid.value and answered < len(indices):
                l, j, i = indices[answered]
                out[l][j, i] = rdata.value.to_signed()          # the accumulator's width exactly
                answered += 1

        for index in indices:
            for handle, value in zip(w, index):
                handle.value = value
            read.value = 1
            await FallingEdge(dut.clk)              # the rising edge in between takes the read
            collect()
        read.value = 0
        dut.weights__bank.value = 0
        for _ in range(64):
            if answered == len(indices):
                break
            await FallingEdge(dut.clk)
            collect()
        if answered != len(indices):
            raise AssertionError(f"the weight port answered {answered} of {len(indices)} reads")
        return out

    async def write_weights(self, weights: list[np.ndarray], bank: int = 0):
        dut = self.dut
        w = dut.weights__layer, dut.weights__row, dut.weights__col
        dut.weights__bank.value = bank
        for l, j, i in (self._gain_indices() if bank == GAIN_BANK else self._indices()):
            for handle, value in zip(w, (l, j, i)):
                handle.value = value
            dut.weights__wdata.value = int(weights[l][j, i]) & self.acc_mask
            dut.weights__write.value = 1
            await FallingEdge(dut.clk)
        dut.weights__write.value = 0
        dut.weights__bank.value = 0

    async def clear(self):
        self.dut.clear.value = 1
        await FallingEdge(self.dut.clk)
        self.dut.clear.value = 0
        await self.wait_idle(len(self.results))

    # -- the run ---------------------------------------------------------------------------

    def fail(self, mismatch):
        self.report["mismatch"] = mismatch.as_dict()
        raise Mismatched(mismatch)

    def poked_weights(self, weights):
        """New weights for the host to write: the trained ones nudged, a few at the extremes."""
        acc = self.config.formats.weight_acc
        out = []
        for w in weights:
            nudge = self.rng.integers(-(1 << (acc.frac - 2)), 1 << (acc.frac - 2), w.shape)
            new = np.clip(w + nudge, acc.min_code, acc.max_code)
            flat = new.reshape(-1)
            flat[self.rng.integers(0, flat.size)] = acc.max_code
            flat[self.rng.integers(0, flat.size)] = acc.min_code
            out.append(new)
        return out

    async def run(self):
        dut = self.dut
        config, L = self.config, self.layers
        Clock(dut.clk, PERIOD_NS, unit="ns").start()
        dut.rst.value = 1
        for handle in (dut.i_stream__valid, dut.weights__read, dut.weights__write, dut.clear):
            handle.value = 0
        for handle in (dut.i_stream__payload, dut.weights__layer, dut.weights__row, dut.weights__col,
                       dut.weights__wdata, dut.weights__bank):
            handle.value = 0
        dut.o_stream__ready.value = 1
        dut.learn.value = 1                          # inference-mode input: every core has it
        await ClockCycles(dut.clk, 4)
        dut.rst.value = 0
        await FallingEdge(dut.clk)
        cocotb.start_soon(self.sink.run(self.take))

        model = FixedLearner(self.model_config)
        self.bound_ns = bound_ns = step_cycle_bound(config) * PERIOD_NS * (4 if self.stalls else 1)
        start_wall, start_ns = time.perf_counter(), get_sim_time("ns")
        since_clear, step = 0, 0
        for checkpoint in self.checkpoints:
            traces = [model.step(self.xs[k], self.ys[k]) for k in range(step, checkpoint)]
            timeout = (checkpoint - step + 4) * bound_ns
            base = len(self.results)            # all earlier results are in (inference bursts add some)
            await with_timeout(self.feed(self.xs[step:checkpoint], self.ys[step:checkpoint]), timeout, "ns")
            await with_timeout(self.wait_idle(base + (checkpoint - step) * self.n_out), timeout, "ns")
            pred, err = self.decode(base, base + (checkpoint - step) * self.n_out)
            mismatch = first_output_mismatch(pred, err, np.array([t.prediction for t in traces]),
                                             np.array([t.error for t in traces]), layer=L - 1, first_step=step)
            if mismatch:
                self.fail(mismatch)
            since_clear += checkpoint - step
            step = checkpoint
            self.report["steps"] = step
            counted = dut.steps.value.to_unsigned()
            if counted != since_clear:
                raise AssertionError(f"after step {step - 1}: the core's steps counter is {counted}, "
                                     f"expected {since_clear} (steps since the last clear)")
            weights = await self.read_weights()
            expected = [w.copy() for w in model.weights]
            if self.corrupt and checkpoint == self.checkpoints[0]:
                l, j, i = self.corrupt
                expected[l][j, i] ^= 1
            mismatch = first_weight_mismatch(weights, expected, step=step - 1)
            if mismatch:
                self.fail(mismatch)
            if config.adaptive_gain:
                mismatch = first_weight_mismatch(await self.read_weights(GAIN_BANK), model.gain, step - 1, GAIN_STATE)
                if mismatch:
                    self.fail(mismatch)
            if checkpoint != self.checkpoints[0]:
                await self.infer(model, step, weights, since_clear)
            if checkpoint in self.pokes:
                new = self.poked_weights(weights)
                await self.write_weights(new)
                await self.clear()
                mismatch = first_weight_mismatch(await self.read_weights(), new, step=step - 1)
                if mismatch:
                    self.fail(replace(mismatch, what="weight written through the host port (read back)"))
                model = FixedLearner(self.model_config, new)
                if config.adaptive_gain:
                    # a resumed run's gain state, written through the host port
                    rule, top = config.adaptive_gain, config.formats.weight_acc.max_code
                    gain = [np.array([[self.rng.integers(-rule.up, rule.down + 1), self.rng.integers(0, top),
                                       self.rng.integers(-1, top)]]) for _ in range(L)]
                    await self.write_weights(gain, GAIN_BANK)
                    for mine, theirs in zip(model.gain, gain):
                        mine[...] = theirs
                since_clear = 0
                if dut.steps.value.to_unsigned() != 0 or dut.cycles.value.to_unsigned() != 0:
                    raise AssertionError("clear did not reset the steps / cycles counters")
        wall = time.perf_counter() - start_wall
        cycles = (get_sim_time("ns") - start_ns) / PERIOD_NS
        self.report.update(cycles=int(cycles), wall_s=wall, cycles_per_s=cycles / wall,
                           core_cycles=dut.cycles.value.to_unsigned(), steps_since_clear=since_clear)


@cocotb.test()
async def core_matches_model(dut):
    """Train the core on the stimulus; every step's outputs and every checkpoint's weights match."""
    bench = Bench(dut)
    try:
        await bench.run()
    finally:
        path = os.environ.get("NFLOOP_REPORT")
        if path:
            with open(path, "w") as handle:
                json.dump(bench.report, handle, indent=1)
