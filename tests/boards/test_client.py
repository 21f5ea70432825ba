"""boards/client.py against a scripted device on a loopback socket."""

import socket
import threading

import numpy as np
import pytest
from nfloop.boards.client import BoardClient, DeviceError
from nfloop.boards.geometry import MAGIC
from nfloop.boards.protocol import (
    STATS_ANSWER,
    WEIGHTS_HEADER,
    Command,
    FrameDecoder,
    ProtocolError,
    Status,
    encode_response,
    identify_layout,
    pack,
    unpack,
)


class ScriptedDevice:
    """Answers each request with a fixed (status, payload) per command, on 127.0.0.1."""

    def __init__(self, answers, corrupt=False):
        self.answers = answers
        self.corrupt = corrupt
        self.requests = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.server.accept()
        decoder = FrameDecoder(response=False)
        with conn:
            while data := conn.recv(4096):
                for frame in decoder.feed(data):
                    self.requests.append(frame)
                    status, payload = self.answers.get(frame.command, (Status.UNKNOWN_COMMAND, b""))
                    reply = bytearray(encode_response(status, frame.command, payload))
                    if self.corrupt:
                        reply[-1] ^= 1
                    conn.sendall(bytes(reply))

    def url(self):
        return f"socket://127.0.0.1:{self.port}"


def test_commands_round_trip():
    identity = pack(identify_layout(2), head={"magic": int.from_bytes(MAGIC, "little"), "protocol": 2, "gateware": 1,
                                              "config_hash": int.from_bytes(bytes(range(8)), "little"),
                                              "lanes": 8, "layers": 2},
                    sizes=[64, 32, 10], tail={"capacity": 1400, "clock_hz": 30_000_000})
    weights = np.array([-5, 7, 2**31 - 1], dtype="<i4")
    device = ScriptedDevice({
        Command.IDENTIFY: (Status.OK, identity),
        Command.READ_WEIGHTS: (Status.OK, weights.tobytes()),
        Command.WRITE_WEIGHTS: (Status.OK, b""),
        Command.STATS: (Status.OK, pack(STATS_ANSWER, steps=1400, cycles=1_054_200, epochs=1, error_sum=12345)),
    })
    with BoardClient(device.url(), timeout=2) as board:
        ident = board.identify()
        assert (ident.lanes, ident.sizes, ident.capacity, ident.clock_hz) == (8, (64, 32, 10), 1400, 30_000_000)
        assert ident.config_hash == bytes(range(8))
        np.testing.assert_array_equal(board.read_weights(1, 2, 0, 3), weights)
        board.write_weights(0, 31, 60, [1, -2, 3])
        assert board.stats().cycles == 1_054_200
    sent = device.requests[2]
    assert sent.command == Command.WRITE_WEIGHTS
    assert unpack(WEIGHTS_HEADER, sent.payload) == {"layer": 0, "row": 31, "col": 60, "count": 3}
    assert np.frombuffer(sent.payload[WEIGHTS_HEADER.size // 8:], "<i4").tolist() == [1, -2, 3]


def test_error_status_is_raised_by_name():
    device = ScriptedDevice({Command.READ_WEIGHTS: (Status.OUT_OF_RANGE, b"")})
    with BoardClient(device.url(), timeout=2) as board:
        with pytest.raises(DeviceError, match="OUT_OF_RANGE to READ_WEIGHTS"):
            board.read_weights(9, 0, 0, 1)


def test_corrupted_answer_and_silence_are_errors():
    device = ScriptedDevice({Command.CLEAR: (Status.OK, b"")}, corrupt=True)
    with BoardClient(device.url(), timeout=2) as board:
        with pytest.raises(ProtocolError, match="corrupted response"):
            board.clear()
    quiet = socket.create_server(("127.0.0.1", 0))
    with BoardClient(f"socket://127.0.0.1:{quiet.getsockname()[1]}", timeout=0.3) as board:
        with pytest.raises(ProtocolError, match="no answer to STATS"):
            board.stats()
    quiet.close()


def test_unopenable_port_is_a_clear_error():
    with pytest.raises(ProtocolError, match="cannot open /dev/nonexistent-tty"):
        BoardClient("/dev/nonexistent-tty")
