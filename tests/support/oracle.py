"""What a device must answer, written from ``docs/protocol.md`` alone, and frames that probe it."""

import numpy as np
from nfloop.boards.geometry import BoardGeometry, encode_records
from nfloop.boards.protocol import (
    HEADERS,
    MAX_PAYLOAD,
    REQUEST_SYNC,
    SPAN_HEADER,
    STATE_HEADER,
    STATS_ANSWER,
    TRAIN_HEADER,
    WEIGHTS_HEADER,
    Bank,
    Command,
    Status,
    encode_request,
    pack,
    unpack,
)

__all__ = ["Oracle", "structured_payload", "fuzz_frame"]


def _header(command: Command, payload: bytes) -> dict:
    """The command's header fields; bytes the payload lacks read as zero (the length check fails then)."""
    layout = HEADERS[command]
    return unpack(layout, payload[:layout.size // 8].ljust(layout.size // 8, b"\0"))


def _fits(values, fmt) -> bool:
    return bool(np.all((values >= fmt.min_code) & (values <= fmt.max_code)))


class Oracle:
    """The status a device must answer to a complete frame with a good CRC."""

    def __init__(self, geometry: BoardGeometry):
        self.geo = geometry
        self.sizes = geometry.config.sizes
        self.data_loaded = False
        config = geometry.config
        # banks: the weights; momentum if any layer has it; batch sums with mini-batches; adaptive gain
        self.banks = {Bank.WEIGHTS} | ({Bank.VELOCITY} if any(layer.momentum_shift for layer in config.layers)
                                       else set()) | ({Bank.BATCH_SUM} if config.batch_size > 1 else set()) \
            | ({Bank.GAIN} if config.adaptive_gain else set())

    def _weights_in_layer(self, layer, bank, row, col, count):
        if layer >= len(self.sizes) - 1 or bank not in self.banks:
            return False
        rows, stride = self.sizes[layer + 1], self.sizes[layer] + 1
        if bank == Bank.GAIN:
            rows, stride = 1, 3             # offset, energy, previous energy
        return row < rows and col < stride and row * stride + col + count <= rows * stride

    def records(self, payload: bytes):
        """LOAD_DATA's samples: (inputs, targets), the memory image decoded."""
        geo = self.geo
        words = np.frombuffer(payload[SPAN_HEADER.size // 8:], dtype="<i2").reshape(-1, geo.record_words)
        if geo.packed_inputs:
            inputs = words[:, :geo.input_words].copy().view("i1")[:, :geo.n_in]
        else:
            inputs = words[:, :geo.n_in]
        return inputs.astype(np.int64), words[:, geo.input_words:].astype(np.int64)

    def status(self, command: int, payload: bytes) -> Status:
        geo, f = self.geo, self.geo.config.formats
        if command not in Command._value2member_map_:
            return Status.UNKNOWN_COMMAND
        command = Command(command)
        header = _header(command, payload) if command in HEADERS else {}
        count = header.get("count", 0)
        lengths = {Command.IDENTIFY: 0, Command.STATS: 0, Command.CLEAR: 0, Command.READ_WEIGHTS: 7,
                   Command.WRITE_WEIGHTS: 7 + 4 * count, Command.LOAD_DATA: 4 + 2 * geo.record_words * count,
                   Command.LOAD_ORDER: 4 + 2 * count, Command.TRAIN: 4, Command.INFER: 2 * geo.n_in,
                   Command.SET_STATE: 10}
        if len(payload) != lengths[command]:
            return Status.BAD_LENGTH
        in_range = {
            Command.READ_WEIGHTS: lambda: self._weights_in_layer(**header) and count <= MAX_PAYLOAD // 4,
            Command.WRITE_WEIGHTS: lambda: self._weights_in_layer(**header),
            Command.LOAD_DATA: lambda: header["first"] + count <= geo.capacity,
            Command.LOAD_ORDER: lambda: header["first"] + count <= geo.capacity,
            Command.TRAIN: lambda: 1 <= header["samples"] <= geo.capacity and header["epochs"] >= 1,
            Command.SET_STATE: lambda: header["batch"] < geo.config.batch_size,
        }.get(command, lambda: True)
        if not in_range():
            return Status.OUT_OF_RANGE
        if command == Command.TRAIN and not self.data_loaded:
            return Status.NO_DATA
        values_ok = {
            Command.WRITE_WEIGHTS: lambda: _fits(np.frombuffer(payload[7:], dtype="<i4"), f.weight_acc),
            Command.LOAD_DATA: lambda: (lambda xs, ys: _fits(xs, f.input) and _fits(ys, f.activation))(
                *self.records(payload)),
            Command.LOAD_ORDER: lambda: bool(np.all(np.frombuffer(payload[4:], dtype="<u2") < geo.capacity)),
            Command.INFER: lambda: _fits(np.frombuffer(payload, dtype="<i2"), f.input),
        }.get(command, lambda: True)
        return Status.OK if values_ok() else Status.OUT_OF_RANGE

    def answer_length(self, command: int, payload: bytes) -> int:
        if command == Command.READ_WEIGHTS:
            return 4 * _header(Command.READ_WEIGHTS, payload)["count"]
        return {Command.IDENTIFY: len(self.geo.identify_payload()), Command.STATS: STATS_ANSWER.size // 8,
                Command.INFER: 2 * self.geo.n_out}.get(command, 0)

    def check(self, answer, command: int, payload: bytes, expected: Status, what: str):
        """``answer`` (a decoded response frame) is the one expected; follows the device's state."""
        assert (answer.status, answer.command) == (expected, command), \
            f"{what}: answered {Status(answer.status).name} to 0x{answer.command:02x}, expected {expected.name}"
        size = self.answer_length(command, payload) if expected == Status.OK else 0
        assert len(answer.payload) == size, f"{what}: {len(answer.payload)} bytes answered, {size} expected"
        self.data_loaded |= command == Command.LOAD_DATA and expected == Status.OK


def _near(rng, limit: int, bits: int) -> int:
    """A field value: often at or around ``limit``, sometimes anything that fits ``bits``."""
    choice = rng.integers(4)
    if choice == 0:
        return int(rng.integers(1 << bits))
    return int(np.clip(limit + rng.integers(-2, 2) if choice == 1 else rng.integers(0, max(limit, 1)),
                       0, (1 << bits) - 1))


def _codes(rng, fmt, shape, bits: int, edges=0.1):
    """Codes of ``fmt`` for a ``bits``-bit signed field; a share ``edges`` of them at the edges.

    The edges are the format's (min, max), one step outside it (min - 1, max + 1) and the field's own
    limits, each kept inside the field: a format that fills its field (a 16-bit activation in an i16
    word) has no outside code that the field can carry, and a code outside the field would wrap into
    another, in-range, code.
    """
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if not lo <= fmt.min_code <= fmt.max_code <= hi:
        raise ValueError(f"a {fmt.bits}-bit format does not fit a {bits}-bit field")
    codes = rng.integers(fmt.min_code, fmt.max_code + 1, shape)
    edge = np.clip(rng.choice([lo, fmt.min_code - 1, fmt.min_code, fmt.max_code, fmt.max_code + 1, hi], shape),
                   lo, hi)
    return np.where(rng.random(shape) < edges, edge, codes)


def structured_payload(rng, command: Command, geo: BoardGeometry) -> bytes:
    """A payload for ``command`` whose fields and values sit near the device's limits."""
    sizes, f = geo.config.sizes, geo.config.formats
    if command in (Command.READ_WEIGHTS, Command.WRITE_WEIGHTS):
        layer = _near(rng, len(sizes) - 1, 6)
        l = min(layer, len(sizes) - 2)
        bank = 0 if rng.random() < 0.6 else int(rng.integers(0, 4))
        row, col = _near(rng, sizes[l + 1], 16), _near(rng, sizes[l] + 1, 16)
        count = int(rng.integers(0, 6)) if rng.random() < 0.7 else _near(rng, 256, 16)
        head = pack(WEIGHTS_HEADER, layer=layer, bank=bank, row=row, col=col, count=count)
        if command == Command.READ_WEIGHTS:
            return head
        return head + _codes(rng, f.weight_acc, min(count, 254), 32).astype("<i4").tobytes()
    if command in (Command.LOAD_DATA, Command.LOAD_ORDER):
        count = int(rng.integers(0, 4))
        head = pack(SPAN_HEADER, first=_near(rng, geo.capacity - count, 16), count=count)
        if command == Command.LOAD_ORDER:
            order = np.where(rng.random(count) < 0.1, rng.choice([geo.capacity - 1, geo.capacity], count),
                             rng.integers(0, geo.capacity, count))
            return head + order.astype("<u2").tobytes()
        packed = geo.packed_inputs
        records = bytearray(encode_records(_codes(rng, f.input, (count, geo.n_in), 8 if packed else 16),
                                           _codes(rng, f.activation, (count, geo.n_out), 16), packed))
        if packed and geo.n_in % 2:
            # the last input word's high byte: 0 from the host, ignored by the device; probe the latter
            pad = 2 * geo.input_words - 1
            for k in range(count):
                if rng.random() < 0.3:
                    records[2 * geo.record_words * k + pad] = int(rng.integers(1, 256))
        return head + bytes(records)
    if command == Command.TRAIN:
        return pack(TRAIN_HEADER, samples=_near(rng, geo.capacity, 16), epochs=int(rng.integers(0, 2)))
    if command == Command.INFER:
        return _codes(rng, f.input, geo.n_in, 16, edges=0.02).astype("<i2").tobytes()
    if command == Command.SET_STATE:
        return pack(STATE_HEADER, steps=int(rng.integers(0, 1 << 32)), lfsr=int(rng.integers(1, 1 << 32)),
                    batch=_near(rng, geo.config.batch_size, 16))
    return b""


def fuzz_frame(rng, oracle: Oracle):
    """A random, structured or mutated frame: (kind, bytes, command, payload, expected status).

    None for a valid frame that would change the weights or train: that is not fuzz.
    """
    kind = rng.choice(["structured", "structured", "random", "bad_crc", "truncated", "oversized", "noise"])
    commands = list(Command)
    command = int(commands[rng.integers(len(commands))])
    payload = structured_payload(rng, Command(command), oracle.geo)
    if kind == "random":
        command = int(rng.integers(256))
        payload = rng.integers(0, 256, size=int(rng.integers(0, 12))).astype(np.uint8).tobytes()
    frame = encode_request(command, payload)
    expected = oracle.status(command, payload)
    if kind in ("structured", "random", "noise") and expected == Status.OK and command in (
            Command.WRITE_WEIGHTS, Command.TRAIN):
        return None
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
        # the whole declared payload and CRC follow, random bytes (A5s too): all skipped
        length = int(rng.integers(MAX_PAYLOAD + 1, MAX_PAYLOAD + 64))
        rest = rng.integers(0, 256, size=length + 2).astype(np.uint8).tobytes()
        frame = bytes([REQUEST_SYNC, command]) + length.to_bytes(2, "little") + rest
        expected = Status.BAD_LENGTH
    elif kind == "noise":
        noise = rng.integers(0, 256, size=int(rng.integers(1, 20))).astype(np.uint8)
        frame = bytes(noise[noise != REQUEST_SYNC]) + frame
    return str(kind), frame, command, payload, expected
