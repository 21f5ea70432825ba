"""The host link's framed protocol: frames, CRC-16, commands and status codes.

Every request is one frame::

    0xA5 | command (1) | length (2, little-endian) | payload (length) | CRC-16 (2, little-endian)

and the device answers every request, good or bad, with one frame::

    0x5A | status (1) | command (1) | length (2) | payload (length) | CRC-16 (2)

The CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no
reflection) over everything between the sync byte and the CRC. The same
:data:`CRC` parameters build the device's checker (``CRC.create()``). The
full specification is ``docs/protocol.md``.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from amaranth.lib.crc import catalog

__all__ = ["CRC", "REQUEST_SYNC", "RESPONSE_SYNC", "MAX_PAYLOAD", "Command", "Status", "ProtocolError",
           "crc16", "encode_request", "encode_response", "FrameDecoder", "Frame"]

#: CRC-16/CCITT-FALSE over bytes; ``CRC.compute(data)`` in software, ``CRC.create()`` in gateware.
CRC = catalog.CRC16_CCITT_FALSE(data_width=8)

REQUEST_SYNC = 0xA5
RESPONSE_SYNC = 0x5A
#: The largest payload either side sends; longer lengths are refused (``Status.BAD_LENGTH``).
MAX_PAYLOAD = 1024


class Command(enum.IntEnum):
    IDENTIFY = 0x01        # -> magic, versions, config hash, geometry
    WRITE_WEIGHTS = 0x02   # layer, row, col, count, values
    READ_WEIGHTS = 0x03    # layer, row, col, count -> values
    LOAD_DATA = 0x04       # first sample, count, samples
    LOAD_ORDER = 0x05      # first position, count, sample indices
    TRAIN = 0x06           # samples per epoch, epochs
    INFER = 0x07           # one input vector -> predictions
    STATS = 0x08           # -> steps, cycles, epochs, last epoch's error sum
    CLEAR = 0x09           # momentum, batch sums, LFSR and counters to their start


class Status(enum.IntEnum):
    OK = 0x00
    BAD_CRC = 0x01           # the frame's CRC does not match; nothing was done
    UNKNOWN_COMMAND = 0x02
    BAD_LENGTH = 0x03        # payload too long, or not the length the command needs
    OUT_OF_RANGE = 0x04      # a layer, row, column, sample or count outside the device
    TIMEOUT = 0x05           # the frame stopped arriving (truncated); it was dropped
    NO_DATA = 0x06           # TRAIN before any data was loaded


class ProtocolError(RuntimeError):
    """A frame that cannot be decoded, or a device answer that is not OK."""


def crc16(data: bytes) -> int:
    return CRC.compute(data)


def _frame(sync: int, head: bytes, payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds the protocol's {MAX_PAYLOAD}")
    body = head + struct.pack("<H", len(payload)) + payload
    return bytes([sync]) + body + struct.pack("<H", crc16(body))


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
    ``(Status, command)``) and skipped, exactly as the device does.
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
            length = struct.unpack_from("<H", self._buffer, 1 + self._head)[0]
            command = self._buffer[self._head]
            if length > MAX_PAYLOAD:
                self.errors.append((Status.BAD_LENGTH, command))
                del self._buffer[:1]
                continue
            total = fixed + length + 2
            if len(self._buffer) < total:
                return frames
            body = bytes(self._buffer[1:fixed + length])
            (crc,) = struct.unpack_from("<H", self._buffer, fixed + length)
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
