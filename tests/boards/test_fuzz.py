"""Protocol fuzzing of the virtual board: random and mutated frames, each answered as the protocol says.

An independent oracle (``tests/support/oracle.py``, written from ``docs/protocol.md``) predicts the
status of every frame; the board must answer every frame with that status,
never hang, and keep its weights through all of it. Each test runs on three configs: the odd
one (inputs one to a memory word, 12-bit activations, 24-bit weights), the shipped digits config
(8-bit inputs packed two to a word, 16-bit activations and 32-bit weights: formats that fill their
fields) and a small packed one (an odd count of 6-bit inputs, so a byte can hold codes outside
the format and the last word has a padding byte).

Over-long frames (a length above ``MAX_PAYLOAD``) are answered ``BAD_LENGTH`` as soon as the length
has arrived, and the bytes the frame declared (its payload and CRC) are skipped, until the line has
been quiet for the frame timeout: a frame inside a rejected frame is neither answered nor run, and a
frame after the declared end, or after a quiet line, is answered.
"""

import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from nfloop.boards.catalog import VIRTUAL
from nfloop.boards.client import BoardClient
from nfloop.boards.compare import read_weights
from nfloop.boards.geometry import BoardGeometry, config_hash
from nfloop.boards.protocol import (
    CRC,
    MAX_PAYLOAD,
    REQUEST_SYNC,
    TRAIN_HEADER,
    WEIGHTS_HEADER,
    Bank,
    Command,
    FrameDecoder,
    Status,
    encode_request,
    pack,
    unpack,
)
from nfloop.boards.virtual import VirtualBoard
from nfloop.model.config import load_config
from nfloop.model.fixed import GAIN_WORDS, initial_gain
from nfloop.model.tasks import CONFIG_DIR
from support.oracle import Oracle, fuzz_frame

DATA = Path(__file__).with_name("data")
ODD_CONFIG = DATA / "odd.toml"
#: The configs fuzzed: the odd one, the shipped digits config (resolved as the command line resolves
#: a shipped name) and a small one whose inputs are packed two to a word.
CONFIGS = {"odd": ODD_CONFIG, "digits": CONFIG_DIR / "digits.toml", "packed": DATA / "packed.toml",
           "adaptive": DATA / "adaptive.toml"}
#: Frames per config: the --full run, and the long run (``NFLOOP_LONG_FUZZ=1``: about five minutes a
#: config on two cores).
QUICK_FRAMES = 1_000
FRAMES = 10_000


class Link:
    """Raw bytes to the board and decoded frames back."""

    def __init__(self, url: str):
        host, port = url.removeprefix("socket://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.decoder = FrameDecoder(response=True)

    def answers(self, data: bytes, count: int):
        """Sends ``data``; its ``count`` answers, and not one more in the same bytes."""
        self.sock.sendall(data)
        frames = []
        while len(frames) < count:
            frames += self.decoder.feed(self.sock.recv(4096))      # socket.timeout: the board hung
            assert not self.decoder.errors, f"a corrupted response: {self.decoder.errors}"
        assert len(frames) == count and self.decoder.pending == 0, \
            f"{len(frames)} answers to {data.hex()}, {count} expected"
        return frames

    def exchange(self, data: bytes):
        return self.answers(data, 1)[0]

    def close(self):
        self.sock.close()


#: The quick run frames the odd config's board; --full all four (a Verilator build of each).
@pytest.fixture(scope="module", params=[pytest.param(name, marks=() if name == "odd" else pytest.mark.slow)
                                        for name in CONFIGS])
def config(request):
    return load_config(CONFIGS[request.param])


@pytest.fixture(scope="module")
def board(config):
    with VirtualBoard(config) as virtual:
        yield virtual


def weight_shapes(config):
    return [(n_out, n_in + 1) for n_in, n_out in zip(config.sizes, config.sizes[1:])]


def fuzz(config, rng, frames: int) -> dict:
    """``frames`` fuzzed frames to a board just powered up, each answered as the oracle says; by status."""
    geo = BoardGeometry(config, VIRTUAL)
    oracle = Oracle(geo)
    shapes = weight_shapes(config)
    with VirtualBoard(config) as board:              # its own board: nothing loaded yet
        with BoardClient(board.url) as client:
            before = read_weights(client, shapes)
        flat = [w.ravel() for w in before]
        link = Link(board.url)
        # nothing loaded yet: a good TRAIN frame is refused
        answer = link.exchange(encode_request(Command.TRAIN, pack(TRAIN_HEADER, samples=1, epochs=1)))
        assert (answer.status, answer.command) == (Status.NO_DATA, Command.TRAIN)
        counts = {Status.NO_DATA.name: 1}
        sent, began = 1, time.perf_counter()
        while sent < frames:
            fuzz = fuzz_frame(rng, oracle)
            if fuzz is None:
                continue
            kind, frame, command, payload, expected = fuzz
            what = f"{config.name}: frame {sent} ({kind}) {frame.hex()}"
            answer = link.exchange(frame)
            oracle.check(answer, command, payload, expected, what)
            if command == Command.READ_WEIGHTS and expected == Status.OK:
                # the weights read are the ones the board started with; momentum and batch sums stay 0, the
                # adaptive gain state at its start
                head = unpack(WEIGHTS_HEADER, payload)
                start = {Bank.WEIGHTS: flat[head["layer"]], Bank.GAIN: initial_gain().ravel()}.get(head["bank"])
                first = head["row"] * (shapes[head["layer"]][1] if head["bank"] != Bank.GAIN else GAIN_WORDS) \
                    + head["col"]
                want = 0 if start is None else start[first:first + head["count"]]
                assert np.array_equal(np.frombuffer(answer.payload, "<i4"), want * np.ones(head["count"])), what
            counts[expected.name] = counts.get(expected.name, 0) + 1
            sent += 1
        seconds = time.perf_counter() - began
        link.close()
        with BoardClient(board.url) as client:
            after = read_weights(client, shapes)
            assert client.identify().config_hash == config_hash(config)
    assert all(np.array_equal(a, b) for a, b in zip(before, after)), "a fuzzed frame changed a weight"
    assert sum(counts.values()) == frames
    print(f"\nfuzzed {config.name}: {frames} frames in {seconds:.1f} s, {dict(sorted(counts.items()))}")
    # every answer the protocol has was exercised
    assert set(counts) == {status.name for status in Status}, counts
    return counts


@pytest.mark.slow
def test_fuzzed_frames_are_answered_and_change_no_weight(config, rng):
    fuzz(config, rng, QUICK_FRAMES)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("NFLOOP_LONG_FUZZ") != "1",
                    reason=f"{FRAMES} fuzzed frames a config take minutes: set NFLOOP_LONG_FUZZ=1")
def test_many_fuzzed_frames_are_answered_and_change_no_weight(config, rng):
    fuzz(config, rng, FRAMES)


def test_crc_check_value():
    assert CRC.compute(b"123456789") == 0x29B1


# -- over-long frames -----------------------------------------------------------------------------------

def no_sync(rng, size: int) -> bytes:
    """Noise: bytes that hold no ``A5``, so the board skips them all."""
    noise = rng.integers(0, 255, size=size).astype(np.uint8)
    return bytes(np.where(noise >= REQUEST_SYNC, noise + 1, noise).astype(np.uint8))


def over_long(command: int, length: int) -> bytes:
    """The start of a frame whose length is over the protocol's limit."""
    assert length > MAX_PAYLOAD
    return bytes([REQUEST_SYNC, command]) + length.to_bytes(2, "little")


def read_request(layer: int, count: int) -> bytes:
    return encode_request(Command.READ_WEIGHTS, pack(WEIGHTS_HEADER, layer=layer, row=0, col=0, count=count))


def identified(link: Link, config):
    """The board answers IDENTIFY exactly (and nothing else is waiting in the link)."""
    answer = link.exchange(encode_request(Command.IDENTIFY))
    assert (answer.status, answer.command) == (Status.OK, Command.IDENTIFY)
    assert answer.payload == BoardGeometry(config, VIRTUAL).identify_payload()


@pytest.fixture
def weights(board, config):
    """The board's weights, and a check that a test left them as they were."""
    shapes = weight_shapes(config)
    with BoardClient(board.url) as client:
        before = read_weights(client, shapes)
    yield before
    with BoardClient(board.url) as client:
        after = read_weights(client, shapes)
    assert all(np.array_equal(a, b) for a, b in zip(before, after)), "an over-long frame changed a weight"


def quiet(board_timeout_s: float = 0.2):
    """Long enough for the board's frame timeout (10 ms of its clock) to pass: an over-long frame's skip ends."""
    time.sleep(board_timeout_s)


@pytest.mark.parametrize("length", [MAX_PAYLOAD + 1, 0x8000, 0xFFFF])
def test_over_long_frame_is_refused_at_its_length_and_the_next_frame_answered(board, config, weights, rng, length):
    link = Link(board.url)
    try:
        for command in (Command.IDENTIFY, Command.WRITE_WEIGHTS, Command.LOAD_DATA, 0xEE):
            # the length alone: answered at once, no payload awaited (a TIMEOUT would come instead)
            answer = link.exchange(over_long(command, length))
            assert (answer.status, answer.command, answer.payload) == (Status.BAD_LENGTH, command, b"")
            quiet()
            identified(link, config)
            # the length and some of the payload: answered once; after a quiet line the next frame is answered
            answer = link.exchange(over_long(command, length) + no_sync(rng, 64))
            assert (answer.status, answer.command, answer.payload) == (Status.BAD_LENGTH, command, b"")
            quiet()
            count = config.sizes[1]
            answer = link.exchange(no_sync(rng, 40) + read_request(0, count))
            assert (answer.status, answer.command) == (Status.OK, Command.READ_WEIGHTS)
            assert np.array_equal(np.frombuffer(answer.payload, "<i4"), weights[0].ravel()[:count])
    finally:
        link.close()


def test_a_frame_right_after_an_over_long_frames_declared_end_is_answered(board, config, weights, rng):
    """The declared payload and CRC, A5s and frames in them included, are skipped, and no more."""
    link = Link(board.url)
    try:
        for length in (MAX_PAYLOAD + 1, MAX_PAYLOAD + 77):
            inner = encode_request(Command.STATS)
            inside = bytes(rng.integers(0, 256, size=length + 2 - len(inner)).astype(np.uint8)) + inner
            assert len(inside) == length + 2
            bad, good = link.answers(over_long(Command.LOAD_ORDER, length) + inside + encode_request(Command.IDENTIFY),
                                     2)
            assert (bad.status, bad.command) == (Status.BAD_LENGTH, Command.LOAD_ORDER)
            assert (good.status, good.command) == (Status.OK, Command.IDENTIFY)
    finally:
        link.close()


def test_a_frame_inside_an_over_long_frame_is_neither_answered_nor_run(board, config, weights, rng):
    """A WRITE_WEIGHTS or READ_WEIGHTS inside an over-long frame's declared payload: nothing but the one
    BAD_LENGTH answer, and no weight changes (the fixture checks)."""
    layer = 0
    old = int(weights[layer][0, 0])
    new = old + 1 if old < config.formats.weight_acc.max_code else old - 1
    write = encode_request(Command.WRITE_WEIGHTS, pack(WEIGHTS_HEADER, layer=layer, row=0, col=0, count=1)
                           + np.array([new], "<i4").tobytes())
    link = Link(board.url)
    try:
        for inner in (write, read_request(0, 1)):
            bad = link.exchange(over_long(Command.WRITE_WEIGHTS, 0x4000) + bytes(64) + inner + bytes(16))
            assert (bad.status, bad.command) == (Status.BAD_LENGTH, Command.WRITE_WEIGHTS)
            quiet()
            identified(link, config)        # exactly one answer came: the next exchange sees only its own
            answer = link.exchange(read_request(layer, 1))
            assert (answer.status, np.frombuffer(answer.payload, "<i4").tolist()) == (Status.OK, [old])
    finally:
        link.close()


def test_frame_inside_a_longest_frame_is_payload(board, config, weights, rng):
    """A length of exactly ``MAX_PAYLOAD`` is not over-long: the whole payload is received and the
    CRC checked, and a frame's bytes inside it are payload, not a frame."""
    inner = read_request(0, 1)
    payload = no_sync(rng, 100) + inner + no_sync(rng, MAX_PAYLOAD - 100 - len(inner))
    good = encode_request(Command.IDENTIFY, payload)
    bad_crc = good[:-1] + bytes([good[-1] ^ 0x01])
    link = Link(board.url)
    try:
        answer = link.exchange(good)          # IDENTIFY takes no payload: the length is wrong for it
        assert (answer.status, answer.command, answer.payload) == (Status.BAD_LENGTH, Command.IDENTIFY, b"")
        answer = link.exchange(bad_crc)
        assert (answer.status, answer.command, answer.payload) == (Status.BAD_CRC, Command.IDENTIFY, b"")
        identified(link, config)
    finally:
        link.close()
