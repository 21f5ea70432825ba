"""Host side of the link: one client for a real board and for the virtual board.

``BoardClient("/dev/ttyUSB1")`` or ``BoardClient("socket://127.0.0.1:4567")``:
the port is opened with pyserial's ``serial_for_url``, so any URL pyserial
knows works. Every method sends one request and waits for its response;
a status other than OK raises :class:`DeviceError` naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .geometry import MAGIC, encode_records
from .protocol import (
    IDENTIFY_HEAD,
    SPAN_HEADER,
    STATS_ANSWER,
    TRAIN_HEADER,
    WEIGHTS_HEADER,
    Command,
    FrameDecoder,
    ProtocolError,
    Status,
    encode_request,
    identify_layout,
    pack,
    unpack,
)

__all__ = ["BoardClient", "DeviceError", "Identity", "Stats"]

#: A generous bound on one training step's time (a slow board, or the virtual board on a busy machine).
TRAIN_SECONDS_PER_STEP = 0.01


def _name(codes, value: int) -> str:
    """A command's or status's name, or its hex code when the protocol has none."""
    return codes(value).name if value in codes._value2member_map_ else f"0x{value:02x}"


class DeviceError(ProtocolError):
    """The device answered with an error status."""

    def __init__(self, status: int, command: int):
        self.status = status
        super().__init__(f"the device answered {_name(Status, status)} to {_name(Command, command)}")


@dataclass(frozen=True)
class Identity:
    protocol: int
    gateware: int
    config_hash: bytes
    lanes: int
    sizes: tuple[int, ...]
    capacity: int
    clock_hz: int


@dataclass(frozen=True)
class Stats:
    steps: int
    cycles: int
    epochs: int
    last_epoch_error_sum: int


class BoardClient:
    """A connection to a learner board.

    Parameters
    ----------
    url : str
        A serial device or any pyserial URL (``socket://host:port`` for the virtual board).
    baudrate : int
    timeout : float
        Seconds to wait for a response before giving up.
    """

    def __init__(self, url: str, baudrate: int = 115200, timeout: float = 10.0):
        try:
            import serial
        except ImportError:
            raise ProtocolError("pyserial is missing: pip install pyserial") from None
        if re.fullmatch(r"[\w.-]+:\d+", url):
            raise ProtocolError(f"--port {url} looks like a TCP address: write it socket://{url} "
                                f"(the virtual board's URL, as nfloop serve-sim prints it)")
        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout)
        except (serial.SerialException, ValueError) as error:
            hint = ("; is the virtual board running? Start it with nfloop serve-sim --port "
                    f"{url.rpartition(':')[2]}" if url.startswith("socket://") else
                    "; is the board plugged in, and is this its port? (docs/boards.md)")
            raise ProtocolError(f"cannot open {url}: {error}{hint}") from None
        self.url = url
        self._decoder = FrameDecoder(response=True)
        self.timeout = timeout

    def close(self):
        self._port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, command: int, payload: bytes = b"", timeout: float | None = None) -> bytes:
        """Send one request; the OK response's payload. ``timeout`` overrides the client's for this one."""
        timeout = self.timeout if timeout is None else timeout
        self._port.timeout = timeout
        self._port.write(encode_request(command, payload))
        while True:
            data = self._port.read(max(1, self._port.in_waiting))
            if not data:
                raise ProtocolError(f"no answer to {_name(Command, command)} within {timeout:g} s: "
                                    f"is the board flashed and the port right?")
            frames = self._decoder.feed(data)
            if self._decoder.errors:
                status, _ = self._decoder.errors.pop(0)
                raise ProtocolError(f"a corrupted response ({Status(status).name}) to {Command(command).name}")
            if frames:
                frame = frames[0]
                if frame.command != command:
                    raise ProtocolError(f"answer to {Command(command).name} came back as command "
                                        f"0x{frame.command:02x}")
                if frame.status != Status.OK:
                    raise DeviceError(frame.status, command)
                return frame.payload

    # -- commands ---------------------------------------------------------------------------

    def identify(self) -> Identity:
        data = self.request(Command.IDENTIFY)
        head_bytes = IDENTIFY_HEAD.size // 8
        head = unpack(IDENTIFY_HEAD, data) if len(data) >= head_bytes else {}
        layout = identify_layout(head.get("layers", 0))
        if head.get("magic") != int.from_bytes(MAGIC, "little") or len(data) != layout.size // 8:
            raise ProtocolError(f"not an nfloop device (IDENTIFY answered {data[:head_bytes]!r})")
        answer = unpack(layout, data)
        head, tail = answer["head"], answer["tail"]
        return Identity(head.protocol, head.gateware, head.config_hash.to_bytes(8, "little"), head.lanes,
                        tuple(answer["sizes"]), tail.capacity, tail.clock_hz)

    def write_weights(self, layer: int, row: int, col: int, values) -> None:
        values = np.asarray(values, dtype="<i4").ravel()
        header = pack(WEIGHTS_HEADER, layer=layer, row=row, col=col, count=len(values))
        self.request(Command.WRITE_WEIGHTS, header + values.tobytes())

    def read_weights(self, layer: int, row: int, col: int, count: int) -> np.ndarray:
        data = self.request(Command.READ_WEIGHTS, pack(WEIGHTS_HEADER, layer=layer, row=row, col=col, count=count))
        if len(data) != 4 * count:
            raise ProtocolError(f"READ_WEIGHTS returned {len(data)} bytes for {count} weights")
        return np.frombuffer(data, dtype="<i4").astype(np.int64)

    def load_data(self, first: int, xs: np.ndarray, ys: np.ndarray, packed: bool) -> None:
        """Samples from ``first`` on; ``packed``: two inputs a word (:func:`~.geometry.packs_inputs`)."""
        records = encode_records(xs, ys, packed)
        self.request(Command.LOAD_DATA, pack(SPAN_HEADER, first=first, count=len(xs)) + records)

    def load_order(self, first: int, order) -> None:
        order = np.asarray(order, dtype="<u2")
        self.request(Command.LOAD_ORDER, pack(SPAN_HEADER, first=first, count=len(order)) + order.tobytes())

    def train(self, samples: int, epochs: int = 1) -> None:
        """Answers when training ends: allow up to TRAIN_SECONDS_PER_STEP per step on top of the timeout."""
        self.request(Command.TRAIN, pack(TRAIN_HEADER, samples=samples, epochs=epochs),
                     timeout=self.timeout + samples * epochs * TRAIN_SECONDS_PER_STEP)

    def infer(self, x) -> np.ndarray:
        data = self.request(Command.INFER, np.asarray(x, dtype="<i2").tobytes())
        return np.frombuffer(data, dtype="<i2").astype(np.int64)

    def stats(self) -> Stats:
        answer = unpack(STATS_ANSWER, self.request(Command.STATS))
        return Stats(answer["steps"], answer["cycles"], answer["epochs"], answer["error_sum"])

    def clear(self) -> None:
        self.request(Command.CLEAR)
