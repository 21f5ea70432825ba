"""``amaranth.lib.stream`` from a testbench: put and get transfers, with random stalls.

``stream_put`` and ``stream_get`` are the helpers of Amaranth's stream
documentation, with an optional seeded ``rng``: before each transfer the
source holds ``valid`` (the sink ``ready``) low for a random number of
cycles, so that a component is tested against every pace of its neighbours.
``stream_rules`` watches a stream the component drives and fails the test
when ``valid`` drops, or the payload changes, before a transfer.
"""

__all__ = ["stream_put", "stream_get", "stream_rules"]

#: The chance of one more idle cycle before a transfer, with an ``rng``.
STALL = 0.3


async def _stall(ctx, signal, rng):
    ctx.set(signal, 0)
    while rng is not None and rng.random() < STALL:
        await ctx.tick()


async def stream_put(ctx, stream, payload, rng=None):
    """Send ``payload`` on ``stream`` (a component's input); returns when it has been taken."""
    await _stall(ctx, stream.valid, rng)
    ctx.set(stream.payload, payload)
    ctx.set(stream.valid, 1)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, rng=None):
    """Take one payload from ``stream`` (a component's output)."""
    await _stall(ctx, stream.ready, rng)
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


def stream_rules(stream, name="stream"):
    """A background testbench: ``stream``'s source keeps ``valid`` and the payload until the transfer."""
    async def watch(ctx):
        offered = None
        async for _, _, valid, ready, payload in ctx.tick().sample(stream.valid, stream.ready, stream.payload):
            if offered is not None:
                assert valid, f"{name}: valid fell before the transfer"
                assert payload == offered, f"{name}: the payload changed from {offered} to {payload} untaken"
            offered = payload if valid and not ready else None
    return watch
