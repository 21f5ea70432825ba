"""boards/engine.py: the protocol engine in Amaranth's simulator, between the host's frames and a core.

The core is a stand-in served by a testbench: its weights are an array, a
weight read answers ``rvalid`` several cycles later, and each sample it takes
gives results computed from the sample. Every command runs end to end, from
``encode_request`` to ``FrameDecoder``, and an oracle written from the
protocol's documentation predicts the answer to a stream of fuzzed frames.
"""

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from nfloop.boards.engine import ProtocolEngine, memory_latency
from nfloop.boards.geometry import encode_records
from nfloop.boards.protocol import (
    SPAN_HEADER,
    STATS_ANSWER,
    TRAIN_HEADER,
    WEIGHTS_HEADER,
    Command,
    FrameDecoder,
    Status,
    encode_request,
    pack,
    unpack,
)
from support.link import DataMemoryModel, core_ports, geometry, random_samples, record_words, simulate
from support.oracle import Oracle, fuzz_frame
from support.streams import stream_get, stream_put

TIMEOUT = 64
#: Cycles between the engine's last answer byte and the host's next request: through a UART, at least
#: the byte's ten bits of at least four cycles each.
UART_GAP = 40
#: Cycles the stand-in core spends on a training step, and reports in ``cycles``.
STEP_CYCLES = 30


class EngineBench(Elaboratable):
    def __init__(self, geo, latency):
        self.geo = geo
        self.engine = ProtocolEngine(geo, core_ports(geo), TIMEOUT)
        self.memory = DataMemoryModel(geo.spec.data_words, latency)

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine, m.submodules.memory = self.engine, self.memory
        wiring.connect(m, self.engine.memory, self.memory.port)
        return m


class StandInCore:
    """The core's side of the engine's ports, as a background testbench."""

    def __init__(self, geo, engine, rng, read_latency):
        self.geo, self.engine, self.rng, self.read_latency = geo, engine, rng, read_latency
        f = geo.config.formats
        sizes = geo.config.sizes
        self.weights = [rng.integers(f.weight_acc.min_code, f.weight_acc.max_code + 1, (n_out, n_in + 1))
                        for n_in, n_out in zip(sizes, sizes[1:])]
        self.samples = []           # (inputs, targets, learn) as taken
        self.errors = []            # the errors of trained samples
        self.steps = 0

    def results(self, x, y):
        """Predictions and errors of a sample: any function of it will do."""
        f = self.geo.config.formats
        prediction = np.clip(np.arange(self.geo.n_out) * 7 + int(np.sum(x)), f.activation.min_code,
                             f.activation.max_code)
        return prediction, np.clip(y - prediction, f.error.min_code, f.error.max_code)

    def _weight(self, layer, row, col):
        assert layer < len(self.weights) and row < self.weights[layer].shape[0] \
            and col < self.weights[layer].shape[1], f"weight ({layer}, {row}, {col}) is outside the core"
        return self.weights[layer], (row, col)

    async def run(self, ctx):
        e, geo = self.engine, self.geo
        port = e.weights
        elements, results, reads = [], [], []
        busy = 0
        async for _, _, read, write, layer, row, col, wdata, take, data, given, learn, clear in ctx.tick().sample(
                port.read, port.write, port.layer, port.row, port.col, port.wdata,
                e.sample.valid & e.sample.ready, e.sample.payload.data, e.result.valid & e.result.ready,
                e.learn, e.clear):
            if read:
                assert not busy and not reads, "a weight read while the core is busy or a read is on its way"
                weights, index = self._weight(layer, row, col)
                reads.append([self.read_latency, int(weights[index])])
            if write:
                assert not busy, "a weight write while the core is busy"
                weights, index = self._weight(layer, row, col)
                weights[index] = wdata
            if take:
                elements.append(data)
            if len(elements) == geo.n_in + geo.n_out:
                x, y = np.array(elements[:geo.n_in]), np.array(elements[geo.n_in:])
                self.samples.append((x, y, learn))
                prediction, error = self.results(x, y)
                results += list(zip(prediction, error))
                if learn:
                    self.steps += 1
                    self.errors.append(error)
                elements, busy = [], STEP_CYCLES
            if given:
                results.pop(0)
            if clear:
                self.steps, busy = 0, 2
            busy = max(busy - 1, 1 if results else 0)
            for pending in reads:
                pending[0] -= 1
            ready = bool(reads) and reads[0][0] == 0
            ctx.set(port.rvalid, ready)
            ctx.set(port.rdata, reads.pop(0)[1] if ready else 0)
            ctx.set(e.result.valid, bool(results))
            if results:
                ctx.set(e.result.payload, {"prediction": int(results[0][0]), "error": int(results[0][1])})
            ctx.set(e.busy, busy > 0)
            ctx.set(e.steps, self.steps)
            ctx.set(e.cycles, self.steps * STEP_CYCLES)
            ctx.set(e.sample.ready, self.rng.random() < 0.8)


class Host:
    """Requests into the engine's ``rx`` and answers out of its ``tx``, with random stalls."""

    def __init__(self, engine, rng):
        self.engine, self.rng = engine, rng
        self.decoder = FrameDecoder(response=True)

    async def exchange(self, ctx, frame: bytes):
        for byte in frame:
            await stream_put(ctx, self.engine.rx, byte, self.rng)
        while True:
            frames = self.decoder.feed(bytes([await stream_get(ctx, self.engine.tx, self.rng)]))
            assert not self.decoder.errors, self.decoder.errors
            if frames:
                assert self.decoder.pending == 0
                for _ in range(UART_GAP):
                    await ctx.tick()
                return frames[0]

    async def request(self, ctx, command, payload=b"", status=Status.OK) -> bytes:
        answer = await self.exchange(ctx, encode_request(command, payload))
        assert (answer.status, answer.command) == (status, command), \
            f"{Command(command).name} answered {Status(answer.status).name}, not {status.name}"
        return answer.payload


def engine_run(name, rng, bench_function, data_memory="block", read_latency=3, cycles=400_000):
    """The engine on ``data_memory`` (a memory model of that memory's latency), the stand-in core
    answering weight reads after ``read_latency`` cycles."""
    geo = geometry(name, data_memory=data_memory)
    bench = EngineBench(geo, memory_latency(geo))
    core = StandInCore(geo, bench.engine, rng, read_latency)
    host = Host(bench.engine, rng)

    async def testbench(ctx):
        await bench_function(ctx, geo, bench, core, host)

    simulate(bench, testbench, core.run, cycles=cycles)


@pytest.mark.parametrize("data_memory, read_latency", [("spram", 1), ("block", 6)])
@pytest.mark.parametrize("name", ["digits", "odd", "narrow"])
def test_every_command_end_to_end(name, data_memory, read_latency, rng):
    async def session(ctx, geo, bench, core, host):
        f = geo.config.formats
        assert await host.request(ctx, Command.IDENTIFY) == geo.identify_payload()

        # weights: a run across a row's end, written, read back, the rest untouched
        layer = len(core.weights) - 1
        rows, stride = core.weights[layer].shape
        values = rng.integers(f.weight_acc.min_code, f.weight_acc.max_code + 1, stride + 2)
        before = [w.copy() for w in core.weights]
        await host.request(ctx, Command.WRITE_WEIGHTS, pack(WEIGHTS_HEADER, layer=layer, row=0, col=1,
                                                            count=len(values)) + values.astype("<i4").tobytes())
        expected = before[layer].ravel().copy()
        expected[1:1 + len(values)] = values
        np.testing.assert_array_equal(core.weights[layer].ravel(), expected)
        for l in range(layer):
            np.testing.assert_array_equal(core.weights[l], before[l])
        read = await host.request(ctx, Command.READ_WEIGHTS, pack(WEIGHTS_HEADER, layer=layer, row=rows - 1, col=0,
                                                                  count=stride))
        np.testing.assert_array_equal(np.frombuffer(read, "<i4"), core.weights[layer][rows - 1])

        # data and order: the memory holds the records, the order holds the samples' addresses
        xs, ys = random_samples(geo, 4, rng)
        await host.request(ctx, Command.LOAD_DATA, pack(SPAN_HEADER, first=1, count=3)
                           + encode_records(xs[1:], ys[1:], geo.packed_inputs))
        await host.request(ctx, Command.LOAD_DATA, pack(SPAN_HEADER, first=0, count=1)
                           + encode_records(xs[:1], ys[:1], geo.packed_inputs))
        words = record_words(geo, xs, ys)
        assert [[ctx.get(bench.memory.contents.data[geo.record_address(s, w)]) for w in range(geo.record_words)]
                for s in range(4)] == words.tolist()
        order = [2, 0, 3]
        await host.request(ctx, Command.LOAD_ORDER, pack(SPAN_HEADER, first=0, count=3)
                           + np.array(order, "<u2").tobytes())
        assert [ctx.get(bench.memory.contents.data[geo.order_address(p)]) for p in range(3)] == order

        # two epochs over the order: the core trains on those samples, STATS has the last epoch's sum
        await host.request(ctx, Command.TRAIN, pack(TRAIN_HEADER, samples=3, epochs=2))
        assert [(list(x), list(y), learn) for x, y, learn in core.samples] \
            == [(list(xs[s]), list(ys[s]), 1) for s in order * 2]
        stats = unpack(STATS_ANSWER, await host.request(ctx, Command.STATS))
        last_epoch = sum(int(np.sum(e.astype(object) ** 2)) for e in core.errors[3:])
        assert stats == {"steps": 6, "cycles": 6 * STEP_CYCLES, "epochs": 2, "error_sum": last_epoch}

        # INFER: the inputs and zero targets into the core without learning, its predictions back
        x = xs[3]
        prediction = np.frombuffer(await host.request(ctx, Command.INFER, x.astype("<i2").tobytes()), "<i2")
        assert (list(core.samples[-1][0]), list(core.samples[-1][1]), core.samples[-1][2]) \
            == (list(x), [0] * geo.n_out, 0)
        np.testing.assert_array_equal(prediction, core.results(x, np.zeros(geo.n_out, int))[0])
        assert core.steps == 6

        await host.request(ctx, Command.CLEAR)
        stats = unpack(STATS_ANSWER, await host.request(ctx, Command.STATS))
        assert stats == {"steps": 0, "cycles": 0, "epochs": 0, "error_sum": 0}

    engine_run(name, rng, session, data_memory, read_latency)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["odd", "narrow"])
def test_fuzzed_frames_get_the_oracles_answer(name, rng):
    """Random, mutated, truncated and over-long frames: each answered as the protocol says, weights kept."""
    async def fuzz(ctx, geo, bench, core, host):
        oracle = Oracle(geo)
        before = [w.copy() for w in core.weights]
        seen = set()
        sent = 0
        while sent < 250:
            frame = fuzz_frame(rng, oracle)
            if frame is None:
                continue
            kind, data, command, payload, expected = frame
            oracle.check(await host.exchange(ctx, data), command, payload, expected, f"frame {sent} ({kind})")
            seen.add(expected)
            sent += 1
        assert all(np.array_equal(a, b) for a, b in zip(before, core.weights)), "a fuzzed frame changed a weight"
        assert seen >= {Status.OK, Status.BAD_CRC, Status.BAD_LENGTH, Status.OUT_OF_RANGE, Status.TIMEOUT}

    engine_run(name, rng, fuzz, cycles=2_000_000)


def edge_frames(geo):
    """Frames at the edges of every check: (command, payload)."""
    f, cap, sizes = geo.config.formats, geo.capacity, geo.config.sizes
    stride, rows = sizes[-2] + 1, sizes[-1]
    last = len(sizes) - 2

    def weights(count, values=None, layer=last, row=0, col=0):
        head = pack(WEIGHTS_HEADER, layer=layer, row=row, col=col, count=count)
        return head if values is None else head + np.array(values, "<i8").astype("<i4").tobytes()

    def span(first, count, data=b""):
        return pack(SPAN_HEADER, first=first, count=count) + data

    zeros = encode_records(np.zeros((1, geo.n_in), int), np.zeros((1, geo.n_out), int), geo.packed_inputs)
    return [
        (0x00, b""), (0x0A, b""), (0xFF, bytes(7)),
        (Command.IDENTIFY, b"\0"), (Command.TRAIN, bytes(5)), (Command.INFER, bytes(2 * geo.n_in - 2)),
        (Command.READ_WEIGHTS, weights(1) + b"\0"), (Command.READ_WEIGHTS, weights(1)[:6]),
        (Command.WRITE_WEIGHTS, weights(1025, [0])), (Command.WRITE_WEIGHTS, weights(0x4001, [])),
        (Command.WRITE_WEIGHTS, weights(2, [1])), (Command.WRITE_WEIGHTS, weights(1, [f.weight_acc.max_code + 1])),
        (Command.WRITE_WEIGHTS, weights(1, [f.weight_acc.min_code], row=rows - 1, col=stride - 1)),
        (Command.WRITE_WEIGHTS, weights(2, [0, 0], row=rows - 1, col=stride - 1)),
        (Command.READ_WEIGHTS, weights(0, row=rows)), (Command.READ_WEIGHTS, weights(0, col=stride)),
        (Command.READ_WEIGHTS, weights(0, layer=last + 1)), (Command.READ_WEIGHTS, weights(rows * stride)),
        (Command.READ_WEIGHTS, weights(rows * stride + 1)), (Command.READ_WEIGHTS, weights(256, layer=0)),
        (Command.READ_WEIGHTS, weights(257, layer=0)),
        (Command.LOAD_DATA, span(0, 2049, zeros)), (Command.LOAD_DATA, span(0, 0x8001, zeros)),
        (Command.LOAD_DATA, span(cap, 1, zeros)), (Command.LOAD_DATA, span(cap - 1, 1, zeros)),
        (Command.LOAD_DATA, span(0, 1, zeros + b"\0\0")), (Command.LOAD_DATA, span(0xFFFF, 1, zeros)),
        (Command.LOAD_ORDER, span(0, 1, np.array([cap - 1], "<u2").tobytes())),
        (Command.LOAD_ORDER, span(0, 1, np.array([cap], "<u2").tobytes())),
        (Command.LOAD_ORDER, span(cap, 0)), (Command.LOAD_ORDER, span(cap, 1, bytes(2))),
        (Command.LOAD_ORDER, span(0, 0x8002, bytes(4))),
        (Command.TRAIN, pack(TRAIN_HEADER, samples=0, epochs=1)),
        (Command.TRAIN, pack(TRAIN_HEADER, samples=cap + 1, epochs=1)),
        (Command.TRAIN, pack(TRAIN_HEADER, samples=1, epochs=0)),
        (Command.INFER, np.full(geo.n_in, f.input.min_code - 1, "<i2").tobytes()),
        (Command.INFER, np.full(geo.n_in, f.input.max_code, "<i2").tobytes()),
    ]


@pytest.mark.parametrize("name", ["digits", "odd", "narrow"])
def test_frames_at_the_edges_of_the_checks(name, rng):
    async def edges(ctx, geo, bench, core, host):
        oracle = Oracle(geo)
        before = [w.copy() for w in core.weights]
        for number, (command, payload) in enumerate(edge_frames(geo)):
            expected = oracle.status(command, payload)
            answer = await host.exchange(ctx, encode_request(command, payload))
            oracle.check(answer, command, payload, expected, f"edge frame {number}: {payload.hex()}")
            if command == Command.WRITE_WEIGHTS and expected == Status.OK:
                before = [w.copy() for w in core.weights]
        assert all(np.array_equal(a, b) for a, b in zip(before, core.weights))

    engine_run(name, rng, edges)
