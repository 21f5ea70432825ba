"""boards/link/receiver.py: request frames from bytes, against the host's encode_request."""

import pytest
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from nfloop.boards.link.receiver import HEADER_BYTES, FrameReceiver
from nfloop.boards.protocol import MAX_PAYLOAD, REQUEST_SYNC, Command, Status, encode_request
from support.link import Bench, simulate, tick_until
from support.streams import stream_get, stream_put

TIMEOUT = 50


def receiver_bench(timeout=TIMEOUT):
    dut = FrameReceiver(timeout)
    buffer = Memory(shape=8, depth=MAX_PAYLOAD, init=[])
    return dut, buffer, Bench(dut, buffer=(buffer, lambda m, dut: wiring.connect(m, dut.buffer, buffer.write_port())))


async def send(ctx, dut, data: bytes, rng=None):
    for byte in data:
        await stream_put(ctx, dut.i_stream, byte, rng)


async def receive(ctx, dut, rng=None):
    frame = await stream_get(ctx, dut.o_stream, rng)
    return frame.status, frame.command, frame.length, frame.header.as_value().value.to_bytes(HEADER_BYTES, "little")


def random_payload(rng) -> bytes:
    size = int(rng.choice([0, 1, 4, 7, int(rng.integers(8, 60)), MAX_PAYLOAD]))
    return rng.integers(0, 256, size).astype("u1").tobytes()


def test_frames_arrive_with_their_header_and_payload(rng):
    dut, buffer, bench = receiver_bench()
    frames = [(int(rng.integers(256)), random_payload(rng)) for _ in range(12)]

    async def testbench(ctx):
        ctx.set(dut.listen, 1)
        for command, payload in frames:
            noise = bytes(b for b in rng.integers(0, 256, int(rng.integers(0, 4))).astype("u1") if b != REQUEST_SYNC)
            await send(ctx, dut, noise + encode_request(command, payload), rng)
            status, got_command, length, header = await receive(ctx, dut, rng)
            assert (status, got_command, length) == (Status.OK, command, len(payload))
            kept = min(len(payload), HEADER_BYTES)
            assert header[:kept] == payload[:kept]
            assert bytes(ctx.get(buffer.data[k]) for k in range(len(payload))) == payload

    simulate(bench, testbench, cycles=60_000)


@pytest.mark.parametrize("spot", ["command", "payload", "crc_low", "crc_high"])
def test_a_corrupted_frame_ends_as_bad_crc(spot, rng):
    dut, _, bench = receiver_bench()
    frame = bytearray(encode_request(Command.LOAD_ORDER, bytes(range(10))))
    frame[{"command": 1, "payload": 8, "crc_low": -2, "crc_high": -1}[spot]] ^= 1 << int(rng.integers(8))

    async def testbench(ctx):
        ctx.set(dut.listen, 1)
        await send(ctx, dut, bytes(frame))
        status, command, *_ = await receive(ctx, dut)
        assert (status, command) == (Status.BAD_CRC, frame[1])
        await send(ctx, dut, encode_request(Command.STATS))          # the next frame is good again
        assert (await receive(ctx, dut))[:3] == (Status.OK, Command.STATS, 0)

    simulate(bench, testbench)


@pytest.mark.parametrize("length", [MAX_PAYLOAD + 1, 0x0500, 0xFFFF])
def test_an_over_long_length_ends_the_frame_at_once(length):
    dut, _, bench = receiver_bench()

    async def testbench(ctx):
        ctx.set(dut.listen, 1)
        await send(ctx, dut, bytes([REQUEST_SYNC, Command.LOAD_DATA]) + length.to_bytes(2, "little"))
        assert await tick_until(ctx, dut.o_stream.valid, 2, "the BAD_LENGTH frame") <= 2
        status, command, *_ = await receive(ctx, dut)
        assert (status, command) == (Status.BAD_LENGTH, Command.LOAD_DATA)

    simulate(bench, testbench)


@pytest.mark.parametrize("cut", [1, 2, 3, 6, 9])
def test_a_frame_that_stops_ends_as_timeout(cut):
    dut, _, bench = receiver_bench()
    frame = encode_request(Command.WRITE_WEIGHTS, bytes(4))

    async def testbench(ctx):
        ctx.set(dut.listen, 1)
        await send(ctx, dut, frame[:cut])
        waited = await tick_until(ctx, dut.o_stream.valid, 2 * TIMEOUT, "the TIMEOUT frame")
        assert TIMEOUT - 1 <= waited <= TIMEOUT + 1
        status, command, *_ = await receive(ctx, dut)
        assert (status, command) == (Status.TIMEOUT, Command.WRITE_WEIGHTS if cut > 1 else 0)

    simulate(bench, testbench)


def test_bytes_are_dropped_while_not_listening():
    dut, _, bench = receiver_bench()

    async def testbench(ctx):
        await send(ctx, dut, encode_request(Command.CLEAR))
        for _ in range(3 * TIMEOUT):
            assert not ctx.get(dut.o_stream.valid) and not ctx.get(dut.busy)
            await ctx.tick()
        ctx.set(dut.listen, 1)
        await send(ctx, dut, encode_request(Command.IDENTIFY))
        assert (await receive(ctx, dut))[:2] == (Status.OK, Command.IDENTIFY)

    simulate(bench, testbench)


def test_timeout_is_checked():
    with pytest.raises(TypeError, match=r"Timeout must be a positive integer number of cycles, not 0"):
        FrameReceiver(0)


def test_an_over_long_frames_declared_bytes_are_skipped_frames_in_them_too():
    dut, _, bench = receiver_bench()
    length = MAX_PAYLOAD + 20
    inner = encode_request(Command.STATS)
    rest = bytes(10) + inner + bytes(length + 2 - 10 - len(inner))

    async def testbench(ctx):
        ctx.set(dut.listen, 1)
        await send(ctx, dut, bytes([REQUEST_SYNC, Command.LOAD_DATA]) + length.to_bytes(2, "little"))
        assert (await receive(ctx, dut))[:2] == (Status.BAD_LENGTH, Command.LOAD_DATA)
        await send(ctx, dut, rest)                          # the declared payload and CRC, a frame inside
        await send(ctx, dut, encode_request(Command.IDENTIFY))
        status, command, *_ = await receive(ctx, dut)
        assert (status, command) == (Status.OK, Command.IDENTIFY), "the frame inside was taken, or the next lost"

    simulate(bench, testbench)


def test_an_over_long_frame_that_stops_is_skipped_until_the_line_is_quiet():
    dut, _, bench = receiver_bench()

    async def testbench(ctx):
        ctx.set(dut.listen, 1)
        await send(ctx, dut, bytes([REQUEST_SYNC, Command.LOAD_DATA]) + (0xFFFF).to_bytes(2, "little") + bytes(5))
        assert (await receive(ctx, dut))[:2] == (Status.BAD_LENGTH, Command.LOAD_DATA)
        await send(ctx, dut, encode_request(Command.STATS))    # still inside the declared payload: skipped
        for _ in range(TIMEOUT + 4):
            await ctx.tick()
            assert not ctx.get(dut.o_stream.valid), "a frame inside the skipped bytes was taken"
        await send(ctx, dut, encode_request(Command.IDENTIFY))  # after a quiet line: a frame again
        status, command, *_ = await receive(ctx, dut)
        assert (status, command) == (Status.OK, Command.IDENTIFY)

    simulate(bench, testbench)
