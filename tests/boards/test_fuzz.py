"""Protocol fuzzing of the virtual board: random and mutated frames, each answered as the protocol says.

An independent oracle (``tests/support/oracle.py``, written from ``docs/protocol.md``) predicts the
status of every frame; the board must answer every frame with that status,
never hang, and keep its weights through all of it. Each test runs on three configs: the odd
one (inputs one to a memory word, 12-bit activations, 24-bit weights), the shipped digits config
(8-bit inputs packed two to a word, 16-bit activations and 32-bit weights: formats that fill their
fields) and a small packed one (an odd count of 6-bit inputs, so a byte can hold codes outside
the format and the last word has a padding byte).

Over-long frames (a length above ``MAX_PAYLOAD``) are answered ``BAD_LENGTH`` as soon as the length
has arrived, and the rest of the frame is skipped as noise: bytes up to the next ``A5``. So the
board must answer a valid frame that follows one, and one whose bytes sit inside its payload.
"""

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
    Command,
    FrameDecoder,
    Status,
    encode_request,
    pack,
    unpack,
)
from nfloop.boards.virtual import VirtualBoard
from nfloop.model.config import load_config
from nfloop.model.tasks import CONFIG_DIR
from support.oracle import Oracle, fuzz_frame

DATA = Path(__file__).with_name("data")
ODD_CONFIG = DATA / "odd.toml"
#: The configs fuzzed: the odd one, the shipped digits config (resolved as the command line resolves
#: a shipped name) and a small one whose inputs are packed two to a word.
CONFIGS = {"odd": ODD_CONFIG, "digits": CONFIG_DIR / "digits.toml", "packed": DATA / "packed.toml"}
#: Frames per config: the default test, and the slow one.
QUICK_FRAMES = 300
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


@pytest.fixture(scope="module", params=list(CONFIGS))
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
                # the weights read are the ones the board started with; momentum and batch sums stay 0
                head = unpack(WEIGHTS_HEADER, payload)
                first = head["row"] * shapes[head["layer"]][1] + head["col"]
                want = flat[head["layer"]][first:first + head["count"]] if head["bank"] == 0 else 0
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


def test_fuzzed_frames_are_answered_and_change_no_weight(config, rng):
    fuzz(config, rng, QUICK_FRAMES)


@pytest.mark.slow
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


@pytest.mark.parametrize("length", [MAX_PAYLOAD + 1, 0x8000, 0xFFFF])
def test_over_long_frame_is_refused_at_its_length_and_the_next_frame_answered(board, config, weights, rng, length):
    link = Link(board.url)
    try:
        for command in (Command.IDENTIFY, Command.WRITE_WEIGHTS, Command.LOAD_DATA, 0xEE):
            # the length alone: answered at once, no payload awaited (a TIMEOUT would come instead)
            answer = link.exchange(over_long(command, length))
            assert (answer.status, answer.command, answer.payload) == (Status.BAD_LENGTH, command, b"")
            identified(link, config)
            # the length and some of the payload: the rest is noise, answered once
            answer = link.exchange(over_long(command, length) + no_sync(rng, 64))
            assert (answer.status, answer.command, answer.payload) == (Status.BAD_LENGTH, command, b"")
            identified(link, config)
            # the rest of the frame after the answer: skipped, and the next frame answered
            answer = link.exchange(over_long(command, length))
            assert (answer.status, answer.command, answer.payload) == (Status.BAD_LENGTH, command, b"")
            count = config.sizes[1]
            answer = link.exchange(no_sync(rng, 40) + read_request(0, count))
            assert (answer.status, answer.command) == (Status.OK, Command.READ_WEIGHTS)
            assert np.array_equal(np.frombuffer(answer.payload, "<i4"), weights[0].ravel()[:count])
    finally:
        link.close()


def test_valid_frame_inside_an_over_long_frame_is_answered(board, config, weights, rng):
    """A valid frame's bytes in an over-long frame's payload, past its BAD_LENGTH answer: the rest of the
    over-long frame is noise, and the frame in it is a frame."""
    layer, count = len(config.sizes) - 2, config.sizes[-1]
    inner = read_request(layer, count)
    link = Link(board.url)
    try:
        for head in (over_long(Command.WRITE_WEIGHTS, MAX_PAYLOAD + 7 + 4 * count),
                     over_long(Command.READ_WEIGHTS, 0xFFFF)):
            # the answer to the over-long frame takes 7 byte times; 64 bytes of noise let it go first
            frame = head + no_sync(rng, 64) + inner + no_sync(rng, 32)
            bad, good = link.answers(frame, 2)
            assert (bad.status, bad.command, bad.payload) == (Status.BAD_LENGTH, head[1], b"")
            assert (good.status, good.command) == (Status.OK, Command.READ_WEIGHTS)
            assert np.array_equal(np.frombuffer(good.payload, "<i4"), weights[layer].ravel()[:count])
            identified(link, config)
    finally:
        link.close()


def test_frame_inside_an_over_long_frame_acts(board, config, weights):
    """A WRITE_WEIGHTS inside an over-long frame writes (it is a frame like any other), and only once."""
    layer = 0
    old = int(weights[layer][0, 0])
    new = old + 1 if old < config.formats.weight_acc.max_code else old - 1

    def write(value):
        return encode_request(Command.WRITE_WEIGHTS, pack(WEIGHTS_HEADER, layer=layer, row=0, col=0, count=1)
                              + np.array([value], "<i4").tobytes())

    link = Link(board.url)
    try:
        bad, good = link.answers(over_long(Command.WRITE_WEIGHTS, 0x4000) + bytes(64) + write(new) + bytes(16), 2)
        assert (bad.status, bad.command) == (Status.BAD_LENGTH, Command.WRITE_WEIGHTS)
        assert (good.status, good.command, good.payload) == (Status.OK, Command.WRITE_WEIGHTS, b"")
        answer = link.exchange(read_request(layer, 1))
        assert (answer.status, np.frombuffer(answer.payload, "<i4").tolist()) == (Status.OK, [new])
        answer = link.exchange(write(old))
        assert (answer.status, answer.command) == (Status.OK, Command.WRITE_WEIGHTS)
    finally:
        link.close()


def test_frame_right_behind_an_over_long_length_is_dropped(board, config, weights):
    """Bytes that arrive while the board sends its BAD_LENGTH answer are dropped, the next frame's
    sync byte among them: that frame is not answered (send the next request after the answer)."""
    inner = encode_request(Command.IDENTIFY)
    assert REQUEST_SYNC not in inner[1:]                # nothing in it can start a frame of its own
    link = Link(board.url)
    try:
        answer = link.exchange(over_long(Command.IDENTIFY, MAX_PAYLOAD + 1) + inner)
        assert (answer.status, answer.command, answer.payload) == (Status.BAD_LENGTH, Command.IDENTIFY, b"")
        identified(link, config)
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
