"""Host side of the link: one client for a real board and for the virtual board.

``BoardClient("/dev/ttyUSB1")`` or ``BoardClient("socket://127.0.0.1:4567")``:
the port is opened with pyserial's ``serial_for_url``, exclusively, so any URL
pyserial knows works and no second process can interleave frames. Every method
sends one request and waits for its response, within one overall deadline.

Errors, each a :class:`~.protocol.ProtocolError`:

- :class:`~.protocol.LinkError`: the port cannot be opened, the link went away,
  no answer came before the deadline, or the answer is not what the protocol allows;
- :class:`DeviceError` (a ``LinkError``): the device answered with an error status;
- :class:`BoardMismatch`: the board speaks another protocol or gateware version;
- :class:`~.protocol.RequestError`: a value the request cannot carry (never wrapped).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np

from .geometry import MAGIC, encode_records
from .protocol import (
    IDENTIFY_HEAD,
    RESPONSE_SYNC,
    SPAN_HEADER,
    STATE_HEADER,
    STATS_ANSWER,
    TRAIN_HEADER,
    WEIGHTS_HEADER,
    Bank,
    Command,
    FrameDecoder,
    LinkError,
    ProtocolError,
    RequestError,
    Status,
    encode_request,
    identify_layout,
    pack,
    unpack,
)
from .spec import GATEWARE_VERSION, PROTOCOL_VERSION

__all__ = ["BoardClient", "BoardMismatch", "DeviceError", "Identity", "Stats", "check_range"]

#: A generous bound on one training step's time (a slow board, or the virtual board on a busy machine).
TRAIN_SECONDS_PER_STEP = 0.01
#: The same over a socket, where the board is a simulation: a gate-level netlist simulates a thousand
#: times slower than the board runs (``nfloop serve-sim --netlist``).
SIMULATED_SECONDS_PER_STEP = 1.0


def _shown(junk: bytes) -> str:
    """What came back that was not a frame: a virtual board's refusal is a line of text."""
    text = bytes(junk).decode("ascii", "replace").strip()
    if "virtual board:" in text:
        return f" ({text[text.index('virtual board:'):].splitlines()[0]})"
    return f" (it sent {len(junk)} bytes that are not frames, such as {bytes(junk[:16])!r})" if junk else ""


def _name(codes, value: int) -> str:
    """A command's or status's name, or its hex code when the protocol has none."""
    return codes(value).name if value in codes._value2member_map_ else f"0x{value:02x}"


class DeviceError(LinkError):
    """The device answered with an error status."""

    def __init__(self, status: int, command: int):
        self.status = status
        super().__init__(f"the device answered {_name(Status, status)} to {_name(Command, command)}")


class BoardMismatch(ProtocolError):
    """The board is not the one the host expects: another config, protocol or gateware (exit status 2)."""


def check_range(values, dtype: str, what: str) -> np.ndarray:
    """``values`` as ``dtype``, or a :class:`RequestError` naming the first one that does not fit."""
    values = np.asarray(values)
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
        values = values.astype(np.int64) if np.all(np.abs(values) < 2.0**62) else values
    if values.dtype.kind not in "iub":
        raise RequestError(f"{what} must be integers, not {values.dtype} values such as "
                           f"{values.ravel()[:1].tolist()}")
    info = np.iinfo(dtype)
    outside = np.flatnonzero((values.ravel() < info.min) | (values.ravel() > info.max))
    if len(outside):
        k = int(outside[0])
        raise RequestError(f"{what}: value {values.ravel()[k]} at index {k} is outside {info.min} .. {info.max}, "
                           f"the range the protocol carries")
    return values.astype(dtype)


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
        self._errors = (serial.SerialException, OSError)
        virtual = url.startswith("socket://")
        try:
            # exclusive: a second process on the same serial port would interleave its frames with ours
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout,
                                               **({} if virtual else {"exclusive": True}))
        except (serial.SerialException, OSError, ValueError) as error:
            hint = ("; is the virtual board running? Start it with nfloop serve-sim --port "
                    f"{url.rpartition(':')[2]}" if virtual else
                    "; is the board plugged in, is this its port, and is no other program using it? "
                    "(docs/boards.md)")
            raise LinkError(f"cannot open {url}: {error}{hint}") from None
        self.url = url
        self._decoder = FrameDecoder(response=True)
        self.timeout = timeout
        self._seconds_per_step = SIMULATED_SECONDS_PER_STEP if virtual else TRAIN_SECONDS_PER_STEP

    def close(self):
        self._port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, command: int, payload: bytes = b"", timeout: float | None = None) -> bytes:
        """Send one request; the OK response's payload.

        The whole exchange has one deadline, ``timeout`` seconds (the client's unless given): a device
        that keeps sending bytes that are not our answer cannot hold the client past it. Input left
        from an earlier, abandoned exchange is dropped first.
        """
        timeout = self.timeout if timeout is None else timeout
        name = _name(Command, command)
        deadline = time.monotonic() + timeout
        junk = bytearray()          # bytes that were not frames: shown when the exchange fails
        try:
            self._drop_stale_input(junk)
            self._decoder = FrameDecoder(response=True)
            self._port.write(encode_request(command, payload))
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LinkError(f"no answer to {name} within {timeout:g} s{_shown(junk)}: "
                                    f"is the board flashed, the port right and the baud rate the board's?")
                self._port.timeout = left
                data = self._port.read(max(1, min(self._port.in_waiting, 65536)))
                if len(junk) < 256 and data and RESPONSE_SYNC not in data:
                    junk += data[:256]
                frames = self._decoder.feed(data)
                if self._decoder.errors:
                    status, _ = self._decoder.errors.pop(0)
                    raise LinkError(f"a corrupted response ({_name(Status, status)}) to {name}")
                if frames:
                    frame = frames[0]
                    if frame.command != command:
                        raise LinkError(f"answer to {name} came back as command {_name(Command, frame.command)}")
                    if frame.status != Status.OK:
                        raise DeviceError(frame.status, command)
                    return frame.payload
        except self._errors as error:
            raise LinkError(f"the link to {self.url} failed during {name}: {error}{_shown(junk)}") from None

    def _drop_stale_input(self, junk: bytearray) -> None:
        """Drop what an earlier, abandoned exchange left on the line, keeping its first bytes in ``junk``
        (a virtual board that refuses a second client says so in a line of text, then closes)."""
        if self.url.startswith("socket://"):
            self._port.timeout = 0
            # A byte at a time: pyserial drops a read's bytes if the peer closes within it. No
            # reset_input_buffer here: it would also drop a refusal that arrives just after the
            # loop, and the request would then meet a closed socket with nothing to show.
            while self._port.in_waiting:
                byte = self._port.read(1)
                if len(junk) < 256:
                    junk += byte
            return
        self._port.reset_input_buffer()

    # -- commands ---------------------------------------------------------------------------

    def identify(self, check_versions: bool = True) -> Identity:
        """The device's identity; asked twice before giving up (the first request may meet a line
        still settling). ``check_versions``: refuse a device of another protocol or gateware version."""
        try:
            data = self.request(Command.IDENTIFY)
        except LinkError as first:
            try:
                data = self.request(Command.IDENTIFY)
            except LinkError:
                raise first from None       # the first failure says more (a refusal, the first timeout)
        head_bytes = IDENTIFY_HEAD.size // 8
        head = unpack(IDENTIFY_HEAD, data) if len(data) >= head_bytes else {}
        layout = identify_layout(head.get("layers", 0))
        if head.get("magic") != int.from_bytes(MAGIC, "little") or len(data) != layout.size // 8:
            raise LinkError(f"not an nfloop device, or a damaged answer: IDENTIFY answered {len(data)} bytes "
                            f"starting {data[:head_bytes]!r}")
        answer = unpack(layout, data)
        head, tail = answer["head"], answer["tail"]
        identity = Identity(head.protocol, head.gateware, head.config_hash.to_bytes(8, "little"), head.lanes,
                            tuple(answer["sizes"]), tail.capacity, tail.clock_hz)
        if check_versions and (identity.protocol, identity.gateware) != (PROTOCOL_VERSION, GATEWARE_VERSION):
            raise BoardMismatch(f"the board runs protocol {identity.protocol} and gateware {identity.gateware}, "
                                f"this nfloop speaks protocol {PROTOCOL_VERSION} and gateware {GATEWARE_VERSION}: "
                                f"rebuild and flash the board with this nfloop (or restart nfloop serve-sim)")
        return identity

    def write_weights(self, layer: int, row: int, col: int, values, bank: Bank = Bank.WEIGHTS) -> None:
        """``values`` into ``layer``'s ``bank`` (its weights, momentum or batch sums) from (row, col) on."""
        values = check_range(values, "<i4", f"{Bank(bank).name.lower()} of layer {layer}").ravel()
        header = pack(WEIGHTS_HEADER, layer=layer, bank=bank, row=row, col=col, count=len(values))
        self.request(Command.WRITE_WEIGHTS, header + values.tobytes())

    def read_weights(self, layer: int, row: int, col: int, count: int, bank: Bank = Bank.WEIGHTS) -> np.ndarray:
        data = self.request(Command.READ_WEIGHTS, pack(WEIGHTS_HEADER, layer=layer, bank=bank, row=row, col=col,
                                                       count=count))
        if len(data) != 4 * count:
            raise LinkError(f"READ_WEIGHTS returned {len(data)} bytes for {count} weights")
        return np.frombuffer(data, dtype="<i4").astype(np.int64)

    def load_data(self, first: int, xs: np.ndarray, ys: np.ndarray, packed: bool) -> None:
        """Samples from ``first`` on; ``packed``: two inputs a word (:func:`~.geometry.packs_inputs`)."""
        xs = check_range(xs, "i1" if packed else "<i2", "inputs")
        ys = check_range(ys, "<i2", "targets")
        records = encode_records(xs, ys, packed)
        self.request(Command.LOAD_DATA, pack(SPAN_HEADER, first=first, count=len(xs)) + records)

    def load_order(self, first: int, order) -> None:
        order = check_range(order, "<u2", "sample order")
        self.request(Command.LOAD_ORDER, pack(SPAN_HEADER, first=first, count=len(order)) + order.tobytes())

    def train(self, samples: int, epochs: int = 1) -> None:
        """Answers when training ends: allow up to TRAIN_SECONDS_PER_STEP per step (a simulated board's
        SIMULATED_SECONDS_PER_STEP) on top of the timeout."""
        self.request(Command.TRAIN, pack(TRAIN_HEADER, samples=samples, epochs=epochs),
                     timeout=self.timeout + samples * epochs * self._seconds_per_step)

    def infer(self, x) -> np.ndarray:
        data = self.request(Command.INFER, check_range(x, "<i2", "inference input").tobytes())
        if len(data) % 2:
            raise LinkError(f"INFER answered {len(data)} bytes, not whole 16-bit outputs")
        return np.frombuffer(data, dtype="<i2").astype(np.int64)

    def stats(self) -> Stats:
        data = self.request(Command.STATS)
        if len(data) != STATS_ANSWER.size // 8:
            raise LinkError(f"STATS answered {len(data)} bytes, not {STATS_ANSWER.size // 8}")
        answer = unpack(STATS_ANSWER, data)
        return Stats(answer["steps"], answer["cycles"], answer["epochs"], answer["error_sum"])

    def clear(self) -> None:
        self.request(Command.CLEAR)

    def set_state(self, steps: int, lfsr: int, batch: int) -> None:
        """The step count, the LFSR and the next step's position in its mini-batch (to resume a run)."""
        self.request(Command.SET_STATE, pack(STATE_HEADER, steps=steps, lfsr=lfsr, batch=batch))
