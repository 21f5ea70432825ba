"""Protocol fuzzing of the virtual board: random and mutated frames, each answered as the protocol says.

An independent oracle (``tests/support/oracle.py``, written from ``docs/protocol.md``) predicts the
status of every frame; the board must answer every frame with that status,
never hang, and keep its weights through all of it.
"""

import socket
from pathlib import Path

import numpy as np
import pytest
from nfloop.boards.catalog import VIRTUAL
from nfloop.boards.client import BoardClient
from nfloop.boards.compare import read_weights
from nfloop.boards.geometry import BoardGeometry, config_hash
from nfloop.boards.protocol import CRC, TRAIN_HEADER, Command, FrameDecoder, Status, encode_request, pack
from nfloop.boards.virtual import VirtualBoard
from nfloop.model.config import load_config
from support.oracle import Oracle, fuzz_frame

ODD_CONFIG = Path(__file__).with_name("data") / "odd.toml"
FRAMES = 10_000


class Link:
    """Raw bytes to the board and decoded frames back."""

    def __init__(self, url: str):
        host, port = url.removeprefix("socket://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.decoder = FrameDecoder(response=True)

    def exchange(self, data: bytes):
        self.sock.sendall(data)
        while True:
            frames = self.decoder.feed(self.sock.recv(4096))      # socket.timeout: the board hung
            assert not self.decoder.errors, f"a corrupted response: {self.decoder.errors}"
            if frames:
                assert len(frames) == 1 and self.decoder.pending == 0, "more than one answer to one frame"
                return frames[0]


@pytest.fixture(scope="module")
def board():
    with VirtualBoard(load_config(ODD_CONFIG)) as virtual:
        yield virtual


@pytest.mark.slow
def test_fuzzed_frames_are_answered_and_change_no_weight(board, rng):
    config = load_config(ODD_CONFIG)
    geo = BoardGeometry(config, VIRTUAL)
    oracle = Oracle(geo)
    shapes = [(n_out, n_in + 1) for n_in, n_out in zip(config.sizes, config.sizes[1:])]
    with BoardClient(board.url) as client:
        before = read_weights(client, shapes)
    link = Link(board.url)
    # nothing loaded yet: a good TRAIN frame is refused
    answer = link.exchange(encode_request(Command.TRAIN, pack(TRAIN_HEADER, samples=1, epochs=1)))
    assert (answer.status, answer.command) == (Status.NO_DATA, Command.TRAIN)
    counts = {Status.NO_DATA.name: 1}
    sent = 1
    while sent < FRAMES:
        fuzz = fuzz_frame(rng, oracle)
        if fuzz is None:
            continue
        kind, frame, command, payload, expected = fuzz
        oracle.check(link.exchange(frame), command, payload, expected, f"frame {sent} ({kind}) {frame.hex()}")
        counts[expected.name] = counts.get(expected.name, 0) + 1
        sent += 1
    link.sock.close()
    with BoardClient(board.url) as client:
        after = read_weights(client, shapes)
        assert client.identify().config_hash == config_hash(config)
    assert all(np.array_equal(a, b) for a, b in zip(before, after)), "a fuzzed frame changed a weight"
    # every answer the protocol has was exercised
    assert set(counts) == {status.name for status in Status}, counts
    assert CRC.compute(b"123456789") == 0x29B1
