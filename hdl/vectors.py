"""The core's vector memories: inputs, activations, window bits, deltas, targets and results."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib.memory import Memory

from .layout import log2

__all__ = ["VectorMemory", "SMALL_MEMORY_WORDS"]

#: Vector memories shallower than this are built from flip-flops rather than a block RAM each, unless the
#: platform sets its own bound (``platform.small_memory_words``, :class:`nfloop.boards.families.Family`).
SMALL_MEMORY_WORDS = 16


class VectorMemory:
    """A memory of ``slots`` values a word, ``width`` bits each, written and read a block of values at a time.

    Block ``index`` of ``count`` values (``count`` divides ``slots``) is word
    ``index // (slots // count)``, from slot ``(index mod (slots // count)) * count``.
    Writes have a slot granularity, so a block leaves the rest of its word alone.
    """

    def __init__(self, m: Module, name: str, slots: int, width: int, depth: int,
                 small_words: int = SMALL_MEMORY_WORDS):
        self.slots, self.width, self.depth = slots, width, depth
        attrs = {"ram_style": "logic"} if depth < small_words else {}
        m.submodules[name] = mem = Memory(shape=unsigned(slots * width), depth=max(depth, 1), init=[],
                                          attrs=attrs)
        self.rd = mem.read_port()
        self.wr = mem.write_port(granularity=width)

    def place(self, m: Module, index, count: int):
        """Word and first slot of the ``count`` values of block ``index`` (blocks of ``count`` values)."""
        ratio = self.slots // count
        word = index >> log2(ratio) if ratio > 1 else index
        offset = (index[:log2(ratio)] if ratio > 1 else Const(0, 1))
        return word, offset, ratio

    def _read_word(self, m: Module, index, count: int):
        """The word block ``index`` of ``count`` values is read from, clamped into the memory."""
        word, _, _ = self.place(m, index, count)
        return Mux(word >= self.depth, 0, word)

    def read(self, m: Module, index, count: int):
        """Set the read address for block ``index`` of ``count`` values."""
        m.d.comb += self.rd.addr.eq(self._read_word(m, index, count))

    def read_ahead(self, m: Module, index, count: int, enable, name: str):
        """:meth:`read`, one cycle ahead: the address of block ``index`` goes into a register while
        ``enable``, so that nothing but the word multiplexer lies between a register and the read."""
        addr = Signal.like(self.rd.addr, name=f"{name}_addr")
        with m.If(enable):
            m.d.sync += addr.eq(self._read_word(m, index, count))
        m.d.comb += self.rd.addr.eq(addr)

    def values(self, m: Module, index, count: int, name: str):
        """The ``count`` values of block ``index`` from the read data (``index`` as of the read's answer)."""
        _, offset, ratio = self.place(m, index, count)
        out = [Signal(self.width, name=f"{name}_{c}") for c in range(count)]
        for o in range(ratio):
            with m.If(offset == o):
                for c in range(count):
                    slot = o * count + c
                    m.d.comb += out[c].eq(self.rd.data[slot * self.width:(slot + 1) * self.width])
        return out

    #: Cycles from :meth:`write` to the memory's write port: a register, so that the write-back units
    #: and the memory (next to the lanes that read it) need not be placed side by side.
    WRITE_LATENCY = 1

    def write(self, m: Module, index, values, valid, enable):
        """Write ``values`` (a block of ``len(values)``) as block ``index``; ``valid[c]`` per value.

        The write lands :attr:`WRITE_LATENCY` cycles later."""
        count = len(values)
        word, offset, ratio = self.place(m, index, count)
        mask = Cat(*valid)
        en = Signal.like(self.wr.en)
        with m.If(enable):
            for o in range(ratio):
                with m.If(offset == o):
                    m.d.comb += en.eq(mask << (o * count))
        m.d.sync += [self.wr.addr.eq(word), self.wr.data.eq(Cat(*(list(values) * ratio))), self.wr.en.eq(en)]
