"""Training samples from the data memory into the learner core, one element per clock."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..geometry import BoardGeometry
from .ports import data_port_signature

__all__ = ["SampleFeeder"]


class SampleFeeder(wiring.Component):
    """Streams an epoch's samples, in epoch order, from the data memory to the core.

    An epoch is order positions 0 .. ``samples`` - 1 (``docs/protocol.md``);
    the command unit starts one per epoch of a TRAIN. Each order position
    holds a sample index, which is also the address of the sample's first
    word: its ``record_words`` words are ``capacity`` words apart
    (:class:`~nfloop.boards.geometry.BoardGeometry`). A word is read every
    cycle that a queue of :attr:`depth` words will have room for it when it
    arrives, :attr:`latency` cycles later; the next sample's order position is
    read ahead in a cycle without a word to read. Each word leaves the queue as
    one element (a target, or an unpacked input) or two (two packed inputs,
    low byte first), so the core receives one element per clock while it is
    ready, and the stream's payload stays put while it is not.

    Parameters
    ----------
    geometry : BoardGeometry
    sample_layout : Layout
        The core's samples: a ``data`` field as wide as its widest input or target.
    latency : int
        Cycles from a memory address to its word on ``rdata`` (the memory's ``latency``).

    Members
    -------
    samples : In
        The epoch's samples, at least one, held while it runs.
    start : In(1)
        Starts an epoch.
    o_stream : Out(stream of ``sample_layout``)
        To the core.
    memory : data memory port
        Reads only; ``wdata`` and ``wmask`` stay 0.
    busy : Out(1)
        From the start until the epoch's last element has been taken.
    """

    def __new__(cls, geometry: BoardGeometry, sample_layout, latency: int, src_loc_at=0, **kwargs):
        # Checked before the part exists: a rejected one leaves no unused part behind.
        if not (isinstance(latency, int) and latency >= 1):
            raise TypeError(f"Memory latency must be a positive integer, not {latency!r}")
        return super().__new__(cls, src_loc_at=src_loc_at + 1, **kwargs)

    def __init__(self, geometry: BoardGeometry, sample_layout, latency: int):
        self._geo = geometry
        self._latency = latency
        super().__init__({
            "samples": In(range(geometry.capacity + 1)), "start": In(1),
            "o_stream": Out(stream.Signature(sample_layout)),
            "memory": Out(data_port_signature(geometry.spec.data_words)),
            "busy": Out(1),
        })

    @property
    def latency(self) -> int:
        """The data memory's read latency the feeder is built for."""
        return self._latency

    @property
    def depth(self) -> int:
        """Words the queue holds: a word is reserved from the cycle before its read until it leaves, which
        is a cycle after it arrives (the queue's output register)."""
        return self._latency + 3

    def elaborate(self, platform):
        m = Module()
        geo, mem, out = self._geo, self.memory, self.o_stream
        n_in, packed = geo.n_in, geo.packed_inputs
        # buffered: the queue's words leave a register, not a LUT RAM's asynchronous read, so the byte
        # selection and the core's saturation fit in one cycle at 100 MHz
        m.submodules.queue = queue = SyncFIFOBuffered(width=16, depth=self.depth)

        # -- Reads: the order position of the next sample, then each word of the current one ---------
        # A read is decided a cycle ahead: the memory's address and the read's kind are registers.
        position = Signal(range(geo.capacity + 1))      # the next order position to read
        next_word, next_full = Signal(range(geo.capacity)), Signal()     # the next sample, read ahead
        word, words_left = Signal.like(mem.addr), Signal(range(geo.record_words + 1))
        reserved = Signal(range(self.depth + 1))        # queued words and words on their way
        address = Signal.like(mem.addr)
        word_reads, order_reads = Signal(self._latency + 1), Signal(self._latency + 1)     # reads on their way
        popped = Signal()

        read_word = (words_left != 0) & ((reserved != self.depth) | popped)
        ordering = self.busy & (position != self.samples)     # order positions of the epoch not read yet
        read_order = ~read_word & ordering & ~next_full & (order_reads == 0)
        next_sample = next_full & ((words_left == 0) | (read_word & (words_left == 1)))
        m.d.comb += mem.addr.eq(address)
        m.d.sync += [address.eq(Mux(read_word, word, geo.order_address(position))),
                     word_reads.eq(Cat(read_word, word_reads)), order_reads.eq(Cat(read_order, order_reads)),
                     reserved.eq(reserved + read_word - popped)]

        with m.If(next_sample):
            m.d.sync += [word.eq(next_word), words_left.eq(geo.record_words), next_full.eq(0)]
        with m.Elif(read_word):
            m.d.sync += [word.eq(word + geo.capacity), words_left.eq(words_left - 1)]
        with m.If(order_reads[-1]):
            m.d.sync += [next_word.eq(mem.rdata), next_full.eq(1)]
        with m.If(self.start):
            m.d.sync += [position.eq(0), self.busy.eq(1)]
        with m.Elif(read_order):
            m.d.sync += position.eq(position + 1)
        with m.Elif(~ordering & (order_reads == 0) & ~next_full & (words_left == 0) & (reserved == 0)):
            m.d.sync += self.busy.eq(0)
        m.d.comb += [queue.w_data.eq(mem.rdata), queue.w_en.eq(word_reads[-1])]

        # -- Elements: each word once, or each of its two bytes ---------------------------------------
        element = Signal(range(geo.record_elements))
        inputs = Signal(init=1)                         # the element is an input
        m.d.comb += [out.valid.eq(queue.r_rdy), queue.r_en.eq(popped)]
        if packed:
            byte = Mux(element[0], queue.r_data[8:], queue.r_data[:8]).as_signed()
            m.d.comb += out.payload.data.eq(Mux(inputs, byte, queue.r_data.as_signed()))
            word_done = ~inputs | element[0] | (element == n_in - 1)
        else:
            m.d.comb += out.payload.data.eq(queue.r_data.as_signed())
            word_done = 1
        with m.If(out.valid & out.ready):
            m.d.comb += popped.eq(word_done)
            m.d.sync += element.eq(element + 1)
            with m.If(element == n_in - 1):
                m.d.sync += inputs.eq(0)
            with m.If(element == geo.record_elements - 1):
                m.d.sync += [element.eq(0), inputs.eq(1)]
        return m
