"""Ports the protocol engine's parts share."""

from __future__ import annotations

from amaranth.hdl import Cat, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..protocol import CRC, MAX_PAYLOAD

__all__ = ["data_port_signature", "buffer_read_signature", "crc_signature", "share_crc", "BUFFER_ADDRESS_BITS",
           "BUFFER_LATENCY"]

#: A payload byte's address in the frame buffer.
BUFFER_ADDRESS_BITS = (MAX_PAYLOAD - 1).bit_length()
#: Cycles from a frame buffer address to its byte: the block RAM's read, then its output register (or
#: one beside it), so that the block's slow clock-to-output has a cycle of its own.
BUFFER_LATENCY = 2


def data_port_signature(words: int) -> wiring.Signature:
    """A 16-bit memory port of ``words`` words, from the user's side.

    ``rdata`` is the word at ``addr`` a fixed number of cycles later (the
    memory's ``latency``); ``wmask`` writes ``wdata``'s low and high bytes.
    """
    return wiring.Signature({
        "addr": Out(range(words)), "wdata": Out(16), "wmask": Out(2), "rdata": In(16),
    })


def buffer_read_signature() -> wiring.Signature:
    """The frame buffer's read port, from the reader's side: ``data`` is the byte at ``addr``
    :data:`BUFFER_LATENCY` cycles before."""
    return wiring.Signature({"addr": Out(BUFFER_ADDRESS_BITS), "data": In(8)})


def crc_signature() -> wiring.Signature:
    """A CRC unit's port, from its user's side (``amaranth.lib.crc.Processor``'s members).

    ``crc`` covers the bytes given with ``valid`` since ``start``, from the next cycle on.
    """
    return wiring.Signature({"start": Out(1), "valid": Out(1), "data": Out(8), "crc": In(16)})


def share_crc(m, *users):
    """One CRC unit (:data:`~nfloop.boards.protocol.CRC`) for ``users`` that never use it at once."""
    m.submodules.crc = crc = CRC.create()
    data = users[-1].data
    for user in reversed(users[:-1]):
        data = Mux(user.valid, user.data, data)
    m.d.comb += [crc.start.eq(Cat(*(user.start for user in users)).any()),
                 crc.valid.eq(Cat(*(user.valid for user in users)).any()), crc.data.eq(data)]
    m.d.comb += [user.crc.eq(crc.crc) for user in users]
