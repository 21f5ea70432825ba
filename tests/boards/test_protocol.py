"""boards/protocol.py: frames, CRC, resynchronisation."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nfloop.boards.protocol import (
    MAX_PAYLOAD,
    Command,
    FrameDecoder,
    ProtocolError,
    Status,
    crc16,
    encode_request,
    encode_response,
)


def test_crc_is_ccitt_false():
    assert crc16(b"123456789") == 0x29B1     # the algorithm's published check value
    assert crc16(b"") == 0xFFFF


def test_request_layout():
    frame = encode_request(Command.READ_WEIGHTS, b"\x01\x02")
    assert frame[:4] == bytes([0xA5, 0x03, 0x02, 0x00])
    assert struct.unpack("<H", frame[-2:])[0] == crc16(frame[1:-2])


@given(st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=64)), max_size=8),
       st.lists(st.integers(1, 40), max_size=6))
def test_requests_survive_any_chunking(requests, cuts):
    stream = b"".join(encode_request(c, p) for c, p in requests)
    decoder = FrameDecoder(response=False)
    frames, pos = [], 0
    for cut in cuts + [len(stream)]:
        frames += decoder.feed(stream[pos:pos + cut])
        pos += cut
    frames += decoder.feed(stream[pos:])
    assert [(f.command, f.payload) for f in frames] == requests
    assert decoder.errors == [] and decoder.pending == 0


def test_responses_carry_status():
    decoder = FrameDecoder(response=True)
    (frame,) = decoder.feed(encode_response(Status.OUT_OF_RANGE, Command.READ_WEIGHTS, b"xy"))
    assert (frame.status, frame.command, frame.payload) == (Status.OUT_OF_RANGE, Command.READ_WEIGHTS, b"xy")


def test_bad_crc_is_reported_and_the_next_frame_still_decodes():
    bad = bytearray(encode_request(Command.STATS))
    bad[-1] ^= 0x40
    good = encode_request(Command.IDENTIFY)
    decoder = FrameDecoder(response=False)
    frames = decoder.feed(b"\x00\x13" + bytes(bad) + good)
    assert [f.command for f in frames] == [Command.IDENTIFY]
    assert decoder.errors == [(Status.BAD_CRC, Command.STATS)]


def test_oversized_length_is_refused():
    decoder = FrameDecoder(response=False)
    header = bytes([0xA5, Command.LOAD_DATA]) + struct.pack("<H", MAX_PAYLOAD + 1)
    frames = decoder.feed(header + encode_request(Command.CLEAR))
    assert [f.command for f in frames] == [Command.CLEAR]      # resynchronised on the next frame
    assert decoder.errors == [(Status.BAD_LENGTH, Command.LOAD_DATA)]
    with pytest.raises(ProtocolError, match="exceeds"):
        encode_request(Command.LOAD_DATA, bytes(MAX_PAYLOAD + 1))
