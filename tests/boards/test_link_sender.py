"""boards/link/sender.py: response frames onto bytes, decoded by the host's FrameDecoder."""

from nfloop.boards.link.sender import FrameSender
from nfloop.boards.protocol import MAX_PAYLOAD, Command, FrameDecoder, Status
from support.link import Bench, simulate
from support.streams import stream_get, stream_put, stream_rules


def test_responses_decode_on_the_host(rng):
    dut = FrameSender()
    responses = []
    for _ in range(10):
        size = int(rng.choice([0, 1, 2, 22, int(rng.integers(3, 80)), MAX_PAYLOAD]))
        responses.append((Status(int(rng.integers(len(Status)))), int(rng.integers(256)),
                          rng.integers(0, 256, size).astype("u1").tobytes()))
    total = sum(len(payload) + 7 for *_, payload in responses)
    sent = []

    async def source(ctx):
        for status, command, payload in responses:
            ctx.set(dut.i_head.payload, {"status": status, "command": command, "length": len(payload)})
            ctx.set(dut.i_head.valid, 1)
            for byte in payload:
                await stream_put(ctx, dut.i_stream, byte, rng)
            await ctx.tick().until(dut.i_head.ready)
            ctx.set(dut.i_head.valid, 0)

    async def sink(ctx):
        while len(sent) < total:
            sent.append(await stream_get(ctx, dut.o_stream, rng))

    simulate(Bench(dut), source, sink, stream_rules(dut.o_stream, "o_stream"), cycles=60_000)
    decoder = FrameDecoder(response=True)
    frames = decoder.feed(bytes(sent))
    assert decoder.errors == [] and decoder.pending == 0
    assert [(f.status, f.command, f.payload) for f in frames] == responses


def test_a_response_is_taken_when_its_frame_has_gone():
    dut = FrameSender()

    async def testbench(ctx):
        ctx.set(dut.i_head.payload, {"status": Status.OK, "command": Command.CLEAR, "length": 0})
        ctx.set(dut.i_head.valid, 1)
        sent = []
        for _ in range(7):
            assert not ctx.get(dut.i_head.ready)
            sent.append(await stream_get(ctx, dut.o_stream))
        await ctx.tick().until(dut.i_head.ready)
        assert FrameDecoder(response=True).feed(bytes(sent))[0].command == Command.CLEAR

    simulate(Bench(dut), testbench)
