"""Protocol fuzzing of the virtual board: random and mutated frames, each answered as the protocol says.

An independent oracle (below, written from ``docs/protocol.md``) predicts the
status of every frame; the board must answer every frame with that status,
never hang, and keep its weights through all of it.
"""

import socket
import struct
from pathlib import Path

import numpy as np
import pytest
from nfloop.boards.catalog import VIRTUAL
from nfloop.boards.client import BoardClient
from nfloop.boards.compare import read_weights
from nfloop.boards.geometry import BoardGeometry
from nfloop.boards.protocol import (
    CRC,
    MAX_PAYLOAD,
    REQUEST_SYNC,
    Command,
    FrameDecoder,
    Status,
    encode_request,
)
from nfloop.boards.virtual import VirtualBoard
from nfloop.model.config import load_config

ODD_CONFIG = Path(__file__).with_name("data") / "odd.toml"
FRAMES = 10_000
STATS_BYTES = 22


class Oracle:
    """What the device must answer to a complete frame with a good CRC."""

    def __init__(self, geometry: BoardGeometry):
        self.geo = geometry
        self.sizes = geometry.config.sizes
        self.data_loaded = False

    def _weights_in_layer(self, layer, row, col, count):
        if layer >= len(self.sizes) - 1:
            return False
        rows, stride = self.sizes[layer + 1], self.sizes[layer] + 1
        return row < rows and col < stride and row * stride + col + count <= rows * stride

    def status(self, command: int, payload: bytes) -> Status:
        geo, f = self.geo, self.geo.config.formats
        n = len(payload)
        head = payload[:7] + bytes(max(0, 7 - n))
        layer, row, col, count = struct.unpack("<BHHH", head)
        first, count2 = struct.unpack_from("<HH", head)
        if command not in Command._value2member_map_:
            return Status.UNKNOWN_COMMAND
        command = Command(command)
        lengths = {Command.IDENTIFY: 0, Command.STATS: 0, Command.CLEAR: 0, Command.READ_WEIGHTS: 7,
                   Command.WRITE_WEIGHTS: 7 + 4 * count, Command.LOAD_DATA: 4 + 2 * geo.record_elements * count2,
                   Command.LOAD_ORDER: 4 + 2 * count2, Command.TRAIN: 4, Command.INFER: 2 * geo.n_in}
        if n != lengths[command]:
            return Status.BAD_LENGTH
        in_range = {
            Command.READ_WEIGHTS: self._weights_in_layer(layer, row, col, count) and count <= MAX_PAYLOAD // 4,
            Command.WRITE_WEIGHTS: self._weights_in_layer(layer, row, col, count),
            Command.LOAD_DATA: first + count2 <= geo.capacity,
            Command.LOAD_ORDER: first + count2 <= geo.capacity,
            Command.TRAIN: 1 <= first <= geo.capacity and count2 >= 1,
        }.get(command, True)
        if not in_range:
            return Status.OUT_OF_RANGE
        if command == Command.TRAIN and not self.data_loaded:
            return Status.NO_DATA
        if command == Command.WRITE_WEIGHTS:
            values = np.frombuffer(payload[7:], dtype="<i4")
            ok = np.all((values >= f.weight_acc.min_code) & (values <= f.weight_acc.max_code))
        elif command == Command.LOAD_DATA:
            values = np.frombuffer(payload[4:], dtype="<i2").reshape(-1, geo.record_elements)
            ok = all(np.all((values[:, cols] >= fmt.min_code) & (values[:, cols] <= fmt.max_code))
                     for cols, fmt in ((slice(0, geo.n_in), f.input), (slice(geo.n_in, None), f.activation)))
        elif command == Command.LOAD_ORDER:
            ok = np.all(np.frombuffer(payload[4:], dtype="<u2") < geo.capacity)
        elif command == Command.INFER:
            values = np.frombuffer(payload, dtype="<i2")
            ok = np.all((values >= f.input.min_code) & (values <= f.input.max_code))
        else:
            ok = True
        return Status.OK if ok else Status.OUT_OF_RANGE

    def answer_length(self, command: int) -> int:
        return {Command.IDENTIFY: len(self.geo.identify_payload()), Command.STATS: STATS_BYTES,
                Command.INFER: 2 * self.geo.n_out}.get(command, 0)


def near(rng, limit: int, bits: int) -> int:
    """A field value: often at or around ``limit``, sometimes anything that fits ``bits``."""
    choice = rng.integers(4)
    if choice == 0:
        return int(rng.integers(1 << bits))
    return int(np.clip(limit + rng.integers(-2, 2) if choice == 1 else rng.integers(0, max(limit, 1)),
                       0, (1 << bits) - 1))


def structured_payload(rng, command: Command, geo: BoardGeometry) -> bytes:
    """A payload for ``command`` whose fields sit near the device's limits."""
    sizes, f = geo.config.sizes, geo.config.formats
    if command in (Command.READ_WEIGHTS, Command.WRITE_WEIGHTS):
        layer = near(rng, len(sizes) - 1, 8)
        l = min(layer, len(sizes) - 2)
        row, col = near(rng, sizes[l + 1], 16), near(rng, sizes[l] + 1, 16)
        count = int(rng.integers(0, 6)) if rng.random() < 0.7 else near(rng, 256, 16)
        head = struct.pack("<BHHH", layer, row, col, count)
        if command == Command.READ_WEIGHTS:
            return head
        span = 1 << (f.weight_acc.bits - 1)
        values = rng.integers(-span - 3, span + 3, size=min(count, 254)).astype("<i4")
        return head + values.tobytes()
    if command in (Command.LOAD_DATA, Command.LOAD_ORDER):
        count = int(rng.integers(0, 4))
        first = near(rng, geo.capacity - count, 16)
        if command == Command.LOAD_ORDER:
            order = rng.integers(0, geo.capacity + 2, size=count).astype("<u2")
            return struct.pack("<HH", first, count) + order.tobytes()
        limits = [f.input] * geo.n_in + [f.activation] * geo.n_out
        rows = [[int(rng.integers(fmt.min_code - 1, fmt.max_code + 2)) if rng.random() < 0.1 else
                 int(rng.integers(fmt.min_code, fmt.max_code + 1)) for fmt in limits] for _ in range(count)]
        return struct.pack("<HH", first, count) + np.array(rows, dtype="<i2").tobytes()
    if command == Command.TRAIN:
        return struct.pack("<HH", near(rng, geo.capacity, 16), int(rng.integers(0, 2)))
    if command == Command.INFER:
        values = rng.integers(f.input.min_code - (rng.random() < 0.2), f.input.max_code + 1, size=geo.n_in)
        return values.astype("<i2").tobytes()
    return b""


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


def test_fuzzed_frames_are_answered_and_change_no_weight(board, rng):
    config = load_config(ODD_CONFIG)
    geo = BoardGeometry(config, VIRTUAL)
    oracle = Oracle(geo)
    shapes = [(n_out, n_in + 1) for n_in, n_out in zip(config.sizes, config.sizes[1:])]
    with BoardClient(board.url) as client:
        before = read_weights(client, shapes)
    link = Link(board.url)
    # nothing loaded yet: a good TRAIN frame is refused
    answer = link.exchange(encode_request(Command.TRAIN, struct.pack("<HH", 1, 1)))
    assert (answer.status, answer.command) == (Status.NO_DATA, Command.TRAIN)
    counts = {Status.NO_DATA.name: 1}
    commands = list(Command)
    sent = 1
    while sent < FRAMES:
        kind = rng.choice(["structured", "structured", "random", "bad_crc", "truncated", "oversized", "noise"])
        command = int(commands[rng.integers(len(commands))])
        payload = structured_payload(rng, Command(command), geo)
        if kind == "random":
            command = int(rng.integers(256))
            payload = rng.integers(0, 256, size=int(rng.integers(0, 12))).astype(np.uint8).tobytes()
        frame = encode_request(command, payload)
        expected = oracle.status(command, payload)
        if kind in ("structured", "random", "noise") and expected == Status.OK and command in (
                Command.WRITE_WEIGHTS, Command.TRAIN):
            continue                            # valid frames that change weights are not fuzz
        if kind == "bad_crc":
            body = bytearray(frame)
            spots = [1] + list(range(4, len(body)))             # not the sync byte, not the length
            spot = int(spots[rng.integers(len(spots))])
            body[spot] ^= 1 << int(rng.integers(8))
            frame, expected, command = bytes(body), Status.BAD_CRC, body[1]
        elif kind == "truncated":
            cut = int(rng.integers(1, len(frame)))
            frame, expected = frame[:cut], Status.TIMEOUT
            command = frame[1] if cut > 1 else 0
        elif kind == "oversized":
            length = int(rng.integers(MAX_PAYLOAD + 1, 1 << 16))
            frame = bytes([REQUEST_SYNC, command]) + struct.pack("<H", length)
            expected = Status.BAD_LENGTH
        elif kind == "noise":
            noise = rng.integers(0, 256, size=int(rng.integers(1, 20))).astype(np.uint8)
            frame = bytes(noise[noise != REQUEST_SYNC]) + frame
        answer = link.exchange(frame)
        assert (answer.status, answer.command) == (expected, command), \
            f"frame {sent} ({kind}) {frame.hex()}: answered {Status(answer.status).name} to 0x{answer.command:02x}, " \
            f"expected {expected.name}"
        if expected == Status.OK:
            if command == Command.READ_WEIGHTS:
                assert len(answer.payload) == 4 * struct.unpack_from("<H", payload, 5)[0]
            else:
                assert len(answer.payload) == oracle.answer_length(command)
            oracle.data_loaded |= command == Command.LOAD_DATA
        else:
            assert answer.payload == b""
        counts[expected.name] = counts.get(expected.name, 0) + 1
        sent += 1
    link.sock.close()
    with BoardClient(board.url) as client:
        after = read_weights(client, shapes)
        assert client.identify().config_hash == geo.identify_payload()[6:14]
    assert all(np.array_equal(a, b) for a, b in zip(before, after)), "a fuzzed frame changed a weight"
    # every answer the protocol has was exercised
    assert set(counts) == {status.name for status in Status}, counts
    assert CRC.compute(b"123456789") == 0x29B1
