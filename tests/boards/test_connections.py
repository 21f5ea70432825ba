"""The virtual board between clients: whatever a client leaves in flight is finished or dropped before the
next one is served, a second client is refused, and an idle client is disconnected."""

import socket
import time
from pathlib import Path

import numpy as np
import pytest
from nfloop.boards.catalog import VIRTUAL
from nfloop.boards.client import BoardClient
from nfloop.boards.compare import read_weights, write_weights
from nfloop.boards.geometry import BoardGeometry
from nfloop.boards.protocol import TRAIN_HEADER, Command, LinkError, encode_request, pack
from nfloop.boards.virtual import VirtualBoard
from nfloop.model.config import load_config
from nfloop.model.fixed import FixedLearner

ODD_CONFIG = Path(__file__).with_name("data") / "odd.toml"


#: interrupted runs on the virtual board: a minute or more each
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def board():
    with VirtualBoard(load_config(ODD_CONFIG), idle_timeout=3) as virtual:
        yield virtual


def raw(url: str) -> socket.socket:
    host, port = url.removeprefix("socket://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def shapes(config):
    return [(n_out, n_in + 1) for n_in, n_out in zip(config.sizes, config.sizes[1:])]


def identify_at_once(url: str) -> float:
    """Seconds the next client's IDENTIFY takes; it must succeed at the first try."""
    start = time.perf_counter()
    with BoardClient(url, timeout=5) as client:
        assert client.request(Command.IDENTIFY)[:4] == b"NFLP"
        return time.perf_counter() - start


def test_a_client_killed_mid_frame_leaves_nothing_for_the_next(board):
    frame = encode_request(Command.STATS)
    with raw(board.url) as sock:
        sock.sendall(frame[:3])             # a frame's first bytes, then the client is gone
    assert identify_at_once(board.url) < 2


def test_a_client_killed_before_its_answer_leaves_nothing_for_the_next(board):
    config = load_config(ODD_CONFIG)
    count = 200
    with raw(board.url) as sock:            # asks for weights, leaves before reading the answer
        sock.sendall(encode_request(Command.READ_WEIGHTS, bytes([0, 0, 0, 0, 0]) + count.to_bytes(2, "little")))
        time.sleep(0.05)
    assert identify_at_once(board.url) < 2
    with BoardClient(board.url, timeout=5) as client:
        assert len(read_weights(client, shapes(config))) == len(shapes(config))


def test_a_client_killed_mid_train_leaves_a_board_that_answers(board, rng):
    config = load_config(ODD_CONFIG)
    geo = BoardGeometry(config, VIRTUAL)
    model = FixedLearner(config)
    with BoardClient(board.url, timeout=5) as client:
        client.clear()
        write_weights(client, model.weights)
        n = 40
        xs = rng.integers(-100, 100, size=(n, config.sizes[0]))
        ys = rng.integers(-100, 100, size=(n, config.sizes[-1]))
        client.load_data(0, xs, ys, packed=geo.packed_inputs)
        client.load_order(0, np.arange(n))
    with raw(board.url) as sock:            # a long TRAIN, and the client leaves at once
        sock.sendall(encode_request(Command.TRAIN, pack(TRAIN_HEADER, samples=n, epochs=20)))
    took = identify_at_once(board.url)
    with BoardClient(board.url, timeout=5) as client:
        stats = client.stats()
    assert stats.steps == 20 * n, "the abandoned TRAIN did not run to its end before the next client"
    assert took < 5


def test_a_second_client_is_refused_in_one_line(board):
    with BoardClient(board.url, timeout=5) as first:
        first.identify()
        with BoardClient(board.url, timeout=2) as second, pytest.raises(LinkError, match="busy: another client"):
            second.identify()
        first.identify()


def test_an_idle_client_is_disconnected(board):
    with BoardClient(board.url, timeout=5) as idle:
        idle.identify()
        time.sleep(4)                       # the board's idle timeout is 3 s
        with pytest.raises(LinkError):
            idle.identify()
    assert identify_at_once(board.url) < 2
