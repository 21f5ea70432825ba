"""The host link's framed protocol: frames, CRC-16, commands and status codes.

Every request is one frame::

    0xA5 | command (1) | length (2, little-endian) | payload (length) | CRC-16 (2, little-endian)

and the device answers every request, good or bad, with one frame::

    0x5A | status (1) | command (1) | length (2) | payload (length) | CRC-16 (2)

The CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no
reflection) over everything between the sync byte and the CRC. The same
:data:`CRC` parameters build the device's checker (``CRC.create()``).

The fixed fields of the payloads (a command's header, the STATS answer, the
IDENTIFY answer) are ``amaranth.lib.data.StructLayout`` objects, written once here:
the gateware views its header register through them, and the host packs and
unpacks with :func:`pack` and :func:`unpack`. Fields are little-endian and
follow each other in the order given, the first at the lowest byte. The full
specification is ``docs/protocol.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Shape
from amaranth.lib import data, enum
from amaranth.lib.crc import catalog

__all__ = ["CRC", "REQUEST_SYNC", "RESPONSE_SYNC", "MAX_PAYLOAD", "Command", "Bank", "Status", "ProtocolError",
           "LinkError", "RequestError",
           "WEIGHTS_HEADER", "SPAN_HEADER", "TRAIN_HEADER", "STATE_HEADER", "REQUEST_HEADER", "HEADERS", "STATS_ANSWER",
           "IDENTIFY_HEAD", "IDENTIFY_TAIL", "identify_layout", "pack", "unpack",
           "crc16", "encode_request", "encode_response", "FrameDecoder", "Frame"]

#: CRC-16/CCITT-FALSE over bytes; ``CRC.compute(data)`` in software, ``CRC.create()`` in gateware.
CRC = catalog.CRC16_CCITT_FALSE(data_width=8)

REQUEST_SYNC = 0xA5
RESPONSE_SYNC = 0x5A
#: The largest payload either side sends; longer lengths are refused (``Status.BAD_LENGTH``).
MAX_PAYLOAD = 1024


class Command(enum.IntEnum, shape=8):
    IDENTIFY = 0x01        # -> magic, versions, config hash, geometry
    WRITE_WEIGHTS = 0x02   # layer, row, col, count, values
    READ_WEIGHTS = 0x03    # layer, row, col, count -> values
    LOAD_DATA = 0x04       # first sample, count, samples
    LOAD_ORDER = 0x05      # first position, count, sample indices
    TRAIN = 0x06           # samples per epoch, epochs
    INFER = 0x07           # one input vector -> predictions
    STATS = 0x08           # -> steps, cycles, epochs, last epoch's error sum
    CLEAR = 0x09           # momentum, batch sums, LFSR and counters to their start
    SET_STATE = 0x0A       # step count, LFSR, position in the mini-batch (to resume a run)


class Status(enum.IntEnum, shape=8):
    OK = 0x00
    BAD_CRC = 0x01           # the frame's CRC does not match; nothing was done
    UNKNOWN_COMMAND = 0x02
    BAD_LENGTH = 0x03        # payload too long, or not the length the command needs
    OUT_OF_RANGE = 0x04      # a layer, row, column, sample or count outside the device
    TIMEOUT = 0x05           # the frame stopped arriving (truncated); it was dropped
    NO_DATA = 0x06           # TRAIN before any data was loaded


class ProtocolError(RuntimeError):
    """A frame that cannot be decoded, or a device answer that is not OK."""


class LinkError(ProtocolError):
    """The device or the link failed: it cannot be opened, went away, stayed silent past the deadline,
    or answered what the protocol does not allow (exit status 3 on the command line)."""


class RequestError(ProtocolError, ValueError):
    """A request the protocol cannot carry: a value outside its field (exit status 2)."""


class Bank(enum.IntEnum, shape=2):
    """What READ_WEIGHTS and WRITE_WEIGHTS reach: a layer's weights, or the state its updates keep."""
    WEIGHTS = 0
    VELOCITY = 1           # momentum (layers with momentum only)
    BATCH_SUM = 2          # the mini-batch's summed updates (batch_size > 1 only)
    GAIN = 3               # adaptive gain: per layer one row, offset, energy and previous energy (GAIN_WORDS)


#: READ_WEIGHTS and WRITE_WEIGHTS: ``count`` values of ``layer``'s ``bank`` from (``row``, ``col``) on,
#: row-major. ``layer`` and ``bank`` share the first byte.
WEIGHTS_HEADER = data.StructLayout({"layer": 6, "bank": 2, "row": 16, "col": 16, "count": 16})
#: SET_STATE: the step count, the LFSR and the step's position in its mini-batch (``steps % batch_size``).
STATE_HEADER = data.StructLayout({"steps": 32, "lfsr": 32, "batch": 16})
#: LOAD_DATA and LOAD_ORDER: ``count`` samples or order positions from ``first`` on.
SPAN_HEADER = data.StructLayout({"first": 16, "count": 16})
#: TRAIN: ``epochs`` epochs over order positions 0 .. ``samples`` - 1.
TRAIN_HEADER = data.StructLayout({"samples": 16, "epochs": 16})
#: The header a request's payload starts with, by command; commands not listed have none.
HEADERS = {
    Command.WRITE_WEIGHTS: WEIGHTS_HEADER, Command.READ_WEIGHTS: WEIGHTS_HEADER,
    Command.LOAD_DATA: SPAN_HEADER, Command.LOAD_ORDER: SPAN_HEADER, Command.TRAIN: TRAIN_HEADER,
    Command.SET_STATE: STATE_HEADER,
}
#: Every command's header in the same bytes: what the device keeps of a request's first bytes.
REQUEST_HEADER = data.UnionLayout({"weights": WEIGHTS_HEADER, "span": SPAN_HEADER, "train": TRAIN_HEADER,
                                   "state": STATE_HEADER})

#: The STATS answer: training steps and cycles, epochs and the last epoch's sum of squared errors.
STATS_ANSWER = data.StructLayout({"steps": 32, "cycles": 64, "epochs": 16, "error_sum": 64})
#: The IDENTIFY answer's fixed part; ``layers + 1`` sizes and :data:`IDENTIFY_TAIL` follow it.
IDENTIFY_HEAD = data.StructLayout({"magic": 32, "protocol": 8, "gateware": 8, "config_hash": 64,
                                   "lanes": 8, "layers": 8})
IDENTIFY_TAIL = data.StructLayout({"capacity": 16, "clock_hz": 32})


def identify_layout(layers: int) -> data.StructLayout:
    """The whole IDENTIFY answer of a device with ``layers`` layers: its sizes are ``layers + 1`` u16."""
    return data.StructLayout({"head": IDENTIFY_HEAD, "sizes": data.ArrayLayout(16, layers + 1),
                              "tail": IDENTIFY_TAIL})


def pack(layout: data.Layout, **fields) -> bytes:
    """``fields`` in ``layout``'s bytes; a value that does not fit its field is an error, not truncated."""
    for name, value in fields.items():
        shape = Shape.cast(layout[name].shape) if isinstance(value, int) else None
        if shape is not None and not shape.signed and not 0 <= value < 1 << shape.width:
            raise RequestError(f"{name} must be an integer from 0 to {(1 << shape.width) - 1}, not {value}")
    return layout.const(fields).as_value().value.to_bytes(layout.size // 8, "little")


def unpack(layout: data.Layout, payload: bytes) -> dict:
    """The fields of ``layout`` from the first bytes of ``payload``, by name."""
    size = layout.size // 8
    if len(payload) < size:
        raise LinkError(f"{size} bytes expected, not {len(payload)}")
    value = layout.from_bits(int.from_bytes(payload[:size], "little"))
    return {name: getattr(value, name) for name, _ in layout}


def crc16(data: bytes) -> int:
    return CRC.compute(data)


def _frame(sync: int, head: bytes, payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise RequestError(f"payload of {len(payload)} bytes exceeds the protocol's {MAX_PAYLOAD}")
    body = head + len(payload).to_bytes(2, "little") + payload
    return bytes([sync]) + body + crc16(body).to_bytes(2, "little")


def encode_request(command: int, payload: bytes = b"") -> bytes:
    return _frame(REQUEST_SYNC, bytes([command]), payload)


def encode_response(status: int, command: int, payload: bytes = b"") -> bytes:
    return _frame(RESPONSE_SYNC, bytes([status, command]), payload)


@dataclass(frozen=True)
class Frame:
    """A decoded frame: ``status`` is None for requests."""
    command: int
    payload: bytes
    status: int | None = None


class FrameDecoder:
    """Byte-stream to frames, for either direction; resynchronises on the sync byte.

    ``feed(data)`` returns the complete frames found. A frame with a bad CRC
    or an oversized length is reported through ``errors`` (a list of
    ``(Status, command)``) and skipped up to the next sync byte. (The device
    also skips an over-long request's declared bytes; no device answer is
    over-long, so the host's decoder needs no such rule.)
    """

    def __init__(self, response: bool):
        self._sync = RESPONSE_SYNC if response else REQUEST_SYNC
        self._head = 2 if response else 1
        self._buffer = bytearray()
        self.errors: list[tuple[Status, int]] = []

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while True:
            start = self._buffer.find(self._sync)
            if start < 0:
                self._buffer.clear()
                return frames
            del self._buffer[:start]
            fixed = 1 + self._head + 2
            if len(self._buffer) < fixed:
                return frames
            length = int.from_bytes(self._buffer[1 + self._head:fixed], "little")
            command = self._buffer[self._head]
            if length > MAX_PAYLOAD:
                self.errors.append((Status.BAD_LENGTH, command))
                del self._buffer[:1]
                continue
            total = fixed + length + 2
            if len(self._buffer) < total:
                return frames
            body = bytes(self._buffer[1:fixed + length])
            crc = int.from_bytes(self._buffer[fixed + length:total], "little")
            if crc != crc16(body):
                self.errors.append((Status.BAD_CRC, command))
                del self._buffer[:1]
                continue
            del self._buffer[:total]
            payload = body[self._head + 2:]
            if self._head == 2:
                frames.append(Frame(command=body[1], payload=payload, status=body[0]))
            else:
                frames.append(Frame(command=body[0], payload=payload))

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buffer)
