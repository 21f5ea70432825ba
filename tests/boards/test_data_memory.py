"""boards/top.py DataMemory in block RAM: every word back after exactly ``latency`` cycles, through one
or more registered multiplexer levels over its banks, with byte writes."""

import numpy as np
import pytest
from nfloop.boards.top import BANK_WORDS, DataMemory
from support.link import simulate


def test_latency_grows_one_level_per_factor_of_eight_banks():
    assert [DataMemory.mux_levels(banks) for banks in (1, 2, 8, 9, 64, 65)] == [1, 1, 1, 2, 2, 3]
    assert DataMemory.latency_of("block", 8 * BANK_WORDS) == 6
    assert DataMemory.latency_of("block", 8 * BANK_WORDS + 1) == 7
    assert DataMemory.latency_of("spram", 65536) == 1


@pytest.mark.parametrize("banks", [1, 3, 10])
def test_every_word_comes_back_after_its_latency(banks):
    words = (banks - 1) * BANK_WORDS + 100          # the last bank is short
    memory = DataMemory(words, "block")
    port = memory.port
    rng = np.random.default_rng(banks)
    # each bank's first and last word, and random words
    edges = {*range(0, words, BANK_WORDS), *(min(b * BANK_WORDS - 1, words - 1) for b in range(1, banks + 1))}
    addresses = sorted(edges | set(rng.integers(0, words, 40).tolist()))
    values = {a: int(v) for a, v in zip(addresses, rng.integers(0, 1 << 16, len(addresses)))}

    async def bench(ctx):
        for a, v in values.items():
            ctx.set(port.addr, a)
            ctx.set(port.wdata, v)
            ctx.set(port.wmask, 0b11)
            await ctx.tick()
        # a high-byte-only write leaves the low byte
        first = addresses[0]
        ctx.set(port.addr, first)
        ctx.set(port.wdata, 0xAB00)
        ctx.set(port.wmask, 0b10)
        await ctx.tick()
        values[first] = 0xAB00 | (values[first] & 0xFF)
        ctx.set(port.wmask, 0)
        for _ in range(memory.latency + 1):     # writes settle through the address registers
            await ctx.tick()
        reads = list(values) + list(reversed(values))
        seen = []
        for k in range(len(reads) + memory.latency):
            ctx.set(port.addr, reads[k] if k < len(reads) else 0)
            await ctx.tick()
            # after this tick, rdata holds the word addressed latency cycles ago (k - latency + 1)
            seen.append(ctx.get(port.rdata))
        got = seen[memory.latency - 1:memory.latency - 1 + len(reads)]
        wanted = [values[a] for a in reads]
        wrong = [(a, g, w) for a, g, w in zip(reads, got, wanted) if g != w]
        assert not wrong, f"latency {memory.latency}: first wrong (address, read, written): {wrong[:3]}"

    simulate(memory, bench, cycles=len(values) * 3 + 200)
