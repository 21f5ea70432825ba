"""boards/protocol.py: frames, CRC, resynchronisation."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nfloop.boards.protocol import (
    IDENTIFY_HEAD,
    MAX_PAYLOAD,
    REQUEST_HEADER,
    SPAN_HEADER,
    STATE_HEADER,
    STATS_ANSWER,
    TRAIN_HEADER,
    WEIGHTS_HEADER,
    Bank,
    Command,
    FrameDecoder,
    ProtocolError,
    Status,
    crc16,
    encode_request,
    encode_response,
    identify_layout,
    pack,
    unpack,
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


def test_layouts_are_the_documented_bytes():
    """docs/protocol.md: little-endian fields, one after the other."""
    assert pack(WEIGHTS_HEADER, layer=1, row=0x0302, col=0x0504, count=0x0706) == bytes.fromhex("01020304050607")
    assert pack(SPAN_HEADER, first=0x0201, count=0x0403) == pack(TRAIN_HEADER, samples=0x0201, epochs=0x0403) \
        == bytes.fromhex("01020304")
    assert pack(STATS_ANSWER, steps=1, cycles=2, epochs=3, error_sum=4) \
        == bytes.fromhex("01000000" "0200000000000000" "0300" "0400000000000000")
    assert pack(WEIGHTS_HEADER, layer=5, bank=Bank.BATCH_SUM, row=0, col=0, count=0)[0] == 0x85
    assert pack(STATE_HEADER, steps=0x04030201, lfsr=0x08070605, batch=0x0A09) == bytes(range(1, 11))
    assert [IDENTIFY_HEAD.size // 8, identify_layout(2).size // 8, REQUEST_HEADER.size // 8] == [16, 28, 10]


@given(st.integers(0, 63), st.integers(0, 3), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_pack_and_unpack_round_trip(layer, bank, row, col, count):
    fields = {"layer": layer, "bank": bank, "row": row, "col": col, "count": count}
    assert unpack(WEIGHTS_HEADER, pack(WEIGHTS_HEADER, **fields) + b"values") == fields


def test_a_field_that_does_not_fit_is_refused():
    with pytest.raises(ProtocolError, match=r"count must be an integer from 0 to 65535, not 65536"):
        pack(SPAN_HEADER, first=0, count=1 << 16)
    with pytest.raises(ProtocolError, match=r"7 bytes expected, not 4"):
        unpack(WEIGHTS_HEADER, bytes(4))
