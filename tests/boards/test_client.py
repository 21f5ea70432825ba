"""boards/client.py against a scripted device on a loopback socket."""

import socket
import threading
import time

import numpy as np
import pytest
from nfloop.boards.catalog import GATEWARE_VERSION, PROTOCOL_VERSION
from nfloop.boards.client import BoardClient, BoardMismatch, DeviceError
from nfloop.boards.geometry import MAGIC
from nfloop.boards.protocol import (
    STATS_ANSWER,
    WEIGHTS_HEADER,
    Command,
    FrameDecoder,
    LinkError,
    ProtocolError,
    RequestError,
    Status,
    encode_response,
    identify_layout,
    pack,
    unpack,
)


class ScriptedDevice:
    """Answers each request with a fixed (status, payload) per command, on 127.0.0.1."""

    def __init__(self, answers, corrupt=False, chatter=None):
        self.answers = answers
        self.corrupt = corrupt
        self.chatter = chatter          # bytes sent over and over instead of any answer
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
                if self.chatter:
                    try:
                        while True:
                            conn.sendall(self.chatter)
                    except OSError:
                        return
                for frame in decoder.feed(data):
                    self.requests.append(frame)
                    status, payload = self.answers.get(frame.command, (Status.UNKNOWN_COMMAND, b""))
                    reply = bytearray(encode_response(status, frame.command, payload))
                    if self.corrupt:
                        reply[-1] ^= 1
                    conn.sendall(bytes(reply))

    def url(self):
        return f"socket://127.0.0.1:{self.port}"


def identity_answer(protocol=PROTOCOL_VERSION, gateware=GATEWARE_VERSION, layers=2):
    return pack(identify_layout(layers), head={"magic": int.from_bytes(MAGIC, "little"), "protocol": protocol,
                                               "gateware": gateware,
                                               "config_hash": int.from_bytes(bytes(range(8)), "little"),
                                               "lanes": 8, "layers": layers},
                sizes=[64, 32, 10, 5][:layers + 1], tail={"capacity": 1400, "clock_hz": 30_000_000})


def test_commands_round_trip():
    identity = identity_answer()
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
    assert unpack(WEIGHTS_HEADER, sent.payload) == {"layer": 0, "bank": 0, "row": 31, "col": 60, "count": 3}
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


@pytest.mark.parametrize("command, payload, call, message", [
    (Command.IDENTIFY, identity_answer()[:9], "identify", "not an nfloop device"),
    (Command.IDENTIFY, identity_answer()[:15] + bytes([255]) + identity_answer()[16:], "identify",
     "not an nfloop device"),
    (Command.STATS, bytes(10), "stats", "STATS answered 10 bytes"),
    (Command.INFER, bytes(3), "infer", "not whole 16-bit outputs"),
    (Command.READ_WEIGHTS, bytes(6), "read_weights", "returned 6 bytes for 2 weights"),
])
def test_malformed_answers_with_a_good_crc_are_link_errors(command, payload, call, message):
    device = ScriptedDevice({command: (Status.OK, payload)})
    args = {"infer": ([1, 2],), "read_weights": (0, 0, 0, 2)}.get(call, ())
    with BoardClient(device.url(), timeout=2) as board, pytest.raises(LinkError, match=message):
        getattr(board, call)(*args)


@pytest.mark.parametrize("protocol, gateware", [(PROTOCOL_VERSION + 1, GATEWARE_VERSION),
                                                (PROTOCOL_VERSION, GATEWARE_VERSION - 1)])
def test_a_board_of_another_version_is_refused(protocol, gateware):
    device = ScriptedDevice({Command.IDENTIFY: (Status.OK, identity_answer(protocol, gateware))})
    with BoardClient(device.url(), timeout=2) as board, pytest.raises(BoardMismatch, match="rebuild and flash"):
        board.identify()


def test_a_chatty_device_cannot_hold_the_client_past_its_deadline():
    import time
    device = ScriptedDevice({}, chatter=b"\x00noise\xff" * 100)
    start = time.perf_counter()
    with BoardClient(device.url(), timeout=0.5) as board, pytest.raises(LinkError, match="no answer to STATS within"):
        board.stats()
    assert time.perf_counter() - start < 2


def test_a_lost_link_is_one_link_error():
    server = socket.create_server(("127.0.0.1", 0))
    board = BoardClient(f"socket://127.0.0.1:{server.getsockname()[1]}", timeout=2)
    conn, _ = server.accept()
    conn.close()
    server.close()
    with board, pytest.raises(LinkError, match="failed during STATS"):
        board.stats()


@pytest.mark.parametrize("call, args, message", [
    ("write_weights", (0, 0, 0, [2**31]), "weights of layer 0: value 2147483648 at index 0"),
    ("load_data", (0, np.array([[1, 300]]), np.array([[0]]), True), "inputs: value 300 at index 1"),
    ("load_data", (0, np.array([[1, 2]]), np.array([[-40000]]), False), "targets: value -40000"),
    ("load_order", (0, [0, 70000]), "sample order: value 70000 at index 1"),
    ("load_order", (0, [-1]), "sample order: value -1"),
    ("infer", ([2**15],), "inference input: value 32768"),
    ("write_weights", (0, 0, 0, [0.5]), "must be integers"),
    ("read_weights", (0, 70000, 0, 1), "row must be an integer from 0 to 65535"),
])
def test_values_outside_the_protocol_are_refused_not_wrapped(call, args, message):
    device = ScriptedDevice({})
    with BoardClient(device.url(), timeout=2) as board, pytest.raises(RequestError, match=message):
        getattr(board, call)(*args)
    assert device.requests == []


def test_a_serial_port_is_opened_by_one_program_at_a_time():
    import os
    controller, device = os.openpty()
    name = os.ttyname(device)
    try:
        with BoardClient(name, timeout=0.2):
            with pytest.raises(LinkError, match=f"cannot open {name}.*no other program"):
                BoardClient(name, timeout=0.2)
    finally:
        os.close(controller)
        os.close(device)


def test_a_refusal_that_arrives_while_stale_input_is_dropped_is_still_shown(monkeypatch):
    """A refusal sent as soon as the client connects (the virtual board waits for the client's request,
    another server may not) can arrive just after the client looked for stale input: it must reach the
    error, not be dropped with the stale input."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    line = b"virtual board: busy: another client is connected; one client at a time\n"

    def refuse():
        conn, _ = listener.accept()
        time.sleep(0.2)
        conn.sendall(line)
        conn.shutdown(socket.SHUT_WR)
        time.sleep(1.0)
        conn.close()

    server = threading.Thread(target=refuse, daemon=True)
    server.start()
    import serial.urlhandler.protocol_socket as protocol_socket
    reset = protocol_socket.Serial.reset_input_buffer

    def late_reset(self):
        time.sleep(0.5)                 # the line arrives meanwhile
        reset(self)

    try:
        with BoardClient(f"socket://127.0.0.1:{port}", timeout=3) as client:
            monkeypatch.setattr(protocol_socket.Serial, "reset_input_buffer", late_reset)
            with pytest.raises(LinkError, match="busy: another client"):
                client.identify()
    finally:
        server.join()
        listener.close()
