"""The board top: UART, protocol engine, learner core and data-set memory.

The same top runs on every board and in Verilator (the virtual board): on a
platform it takes the board's ``uart`` resource, without one it exposes
``rx``/``tx`` (and ``idle``, which the virtual board's bridge uses to sleep
while nothing happens).
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockDomain, Elaboratable, Module, Mux, Signal
from amaranth.lib import io, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from ..hdl.core import LearnerCore
from ..hdl.fanout import GROUP, registered_copies
from ..hdl.pipeline import StreamRegister
from ..hdl.uart import UARTRx, UARTTx, bit_period
from ..model.config import ConfigError, LearnerConfig
from .clocks import BoardClock
from .engine import ProtocolEngine, data_port_signature
from .families import BANK_WORDS
from .geometry import BoardGeometry
from .spec import BoardSpec

__all__ = ["BoardTop", "DataMemory"]



class DataMemory(wiring.Component):
    """``words`` 16-bit words with byte write enables: block RAM, or the FPGA family's single-port RAM
    blocks (``spram``, a :class:`~.families.SPRAM`: the UP5K's).

    Block RAM of this size is tens of blocks across the chip. Every step of the
    way is a register: the address and write data (registered where they are
    driven, then a copy per few banks), each
    bank's read data twice (in the block's own output register where the family
    has one, :attr:`~.families.Family.block_ram`, else beside it: an unregistered
    block output takes most of a cycle on its own; then on its way), and a tree of multiplexers
    over the banks, each choosing one of at most
    :data:`~nfloop.hdl.fanout.GROUP` neighbours, so that no word crosses the
    die in one cycle: :attr:`latency`.
    """

    def __init__(self, words: int, kind: str, spram=None):
        if kind not in ("spram", "block"):
            raise ValueError(f"data memory kind must be 'spram' or 'block', not {kind!r}")
        if kind == "spram" and spram is None:
            raise ValueError("an SPRAM data memory needs the FPGA family's SPRAM blocks")
        if kind == "spram" and words % spram.words:
            raise ValueError(f"SPRAM data memory must be a multiple of {spram.words} words, not {words}")
        self._words, self._kind, self._spram = words, kind, spram
        super().__init__({"port": In(data_port_signature(words))})

    @staticmethod
    def mux_levels(banks: int) -> int:
        """Registered multiplexer levels over ``banks`` block-RAM banks: one per factor of GROUP."""
        levels, reach = 1, GROUP
        while reach < banks:
            levels, reach = levels + 1, reach * GROUP
        return levels

    @classmethod
    def latency_of(cls, kind: str, words: int) -> int:
        """The read latency of a data memory of ``kind`` and ``words``: a single cycle for SPRAM; for
        block RAM, the port's register, its copy, the RAM, its two data registers and the multiplexer
        levels."""
        return 1 if kind == "spram" else 5 + cls.mux_levels(-(-words // BANK_WORDS))

    @property
    def latency(self) -> int:
        """Cycles from ``addr`` to its word on ``rdata``."""
        return self.latency_of(self._kind, self._words)

    def elaborate(self, platform):
        m = Module()
        port = self.port
        if self._kind == "block":
            banks = -(-self._words // BANK_WORDS)
            bits = (BANK_WORDS - 1).bit_length()
            copies = -(-banks // GROUP)
            # the port registered once where it is driven, then copied out to the banks
            fanned = []
            for field in (port.addr, port.wdata, port.wmask):
                name = f"data_{field.name.rsplit('__', 1)[-1]}"
                driven = Signal.like(field, name=name)
                m.d.sync += driven.eq(field)
                fanned.append(registered_copies(m, platform, driven, copies, name))
            addr, wdata, wmask = fanned
            # the family's block with its own output register, or an inferred one and a register beside it
            block_ram = getattr(platform, "get_block_ram", None)
            outputs = []
            for b in range(banks):
                k = b // GROUP
                selected = addr[k][bits:] == b if banks > 1 else 1
                enables = Mux(selected, wmask[k], 0)
                near, out = Signal(16, name=f"bank_{b}_near"), Signal(16, name=f"bank_{b}_data")
                if block_ram is not None:
                    m.submodules[f"bank_{b}"] = block_ram(addr[k][:bits], wdata[k], enables, near)
                else:
                    memory = Memory(shape=16, depth=min(BANK_WORDS, self._words - b * BANK_WORDS), init=[])
                    m.submodules[f"bank_{b}"] = memory
                    rd, wr = memory.read_port(), memory.write_port(granularity=8)
                    m.d.comb += [rd.addr.eq(addr[k][:bits]), wr.addr.eq(addr[k][:bits]), wr.data.eq(wdata[k]),
                                 wr.en.eq(enables)]
                    m.d.sync += near.eq(rd.data)
                m.d.sync += out.eq(near)
                outputs.append(out)
            # the bank number, delayed to meet each multiplexer level as its words arrive (a register
            # for each of the banks' two data registers, the level's own below)
            read, which = Signal(range(max(banks, 2)), name="which_read"), Signal(range(max(banks, 2)))
            m.d.sync += [read.eq(addr[0][bits:] if banks > 1 else 0), which.eq(read)]
            level_bits = (GROUP - 1).bit_length()
            for level in range(self.mux_levels(banks)):
                at_level = Signal.like(which, name=f"which_at_{level}")
                m.d.sync += at_level.eq(which)
                which, choose = at_level, at_level[level * level_bits:(level + 1) * level_bits]
                groups = [outputs[k:k + GROUP] for k in range(0, len(outputs), GROUP)]
                outputs = []
                for g, group in enumerate(groups):
                    out = Signal(16, name=f"data_mux_{level}_{g}")
                    m.d.sync += out.eq(Cat(*group).word_select(choose[:max(1, (len(group) - 1).bit_length())], 16)
                                       if len(group) > 1 else group[0])
                    outputs.append(out)
            m.d.comb += port.rdata.eq(outputs[0])
            return m
        spram = self._spram
        banks = self._words // spram.words
        bits = (spram.words - 1).bit_length()
        bank = port.addr[bits:] if banks > 1 else 0
        bank_read = Signal(range(max(banks, 2)))
        m.d.sync += bank_read.eq(bank)
        outputs = []
        for b in range(banks):
            out = Signal(16, name=f"spram_{b}_out")
            write = (bank == b) & (port.wmask != 0)
            m.submodules[f"spram_{b}"] = spram.bank(port.addr[:bits], port.wdata, port.wmask, write, out)
            outputs.append(out)
        m.d.comb += port.rdata.eq(Cat(*outputs).word_select(bank_read, 16) if banks > 1 else outputs[0])
        return m


class BoardTop(Elaboratable):
    """Everything on the FPGA for ``config`` on the board ``spec``."""

    def __new__(cls, config: LearnerConfig, spec: BoardSpec, src_loc_at=0, **kwargs):
        # Checked before the top exists: a rejected config or baud rate leaves no unused top behind.
        cls.checked(config, spec)
        return super().__new__(cls, src_loc_at=src_loc_at + 1, **kwargs)

    def __init__(self, config: LearnerConfig, spec: BoardSpec):
        self.geometry, self.period = self.checked(config, spec)
        self.spec = self.geometry.spec          # with its data memory sized
        self.rx = Signal(init=1)
        self.tx = Signal(init=1)
        self.idle = Signal()
        self.steps = Signal(32)         # training steps so far: the virtual board's trace window follows it

    @staticmethod
    def checked(config: LearnerConfig, spec: BoardSpec) -> tuple[BoardGeometry, int]:
        """The geometry and the UART's bit period, or a ConfigError naming the fix."""
        geometry = BoardGeometry(config, spec)
        try:
            period = bit_period(spec.clock_hz, spec.baud)
        except ValueError as error:
            raise ConfigError(f"{spec.name}: {error}") from None
        return geometry, period

    def elaborate(self, platform):
        m = Module()
        geo, spec = self.geometry, self.spec
        # a board platform has pins and a PLL; a netlist for simulation has only the family's primitives
        on_board = hasattr(platform, "request")
        if on_board and spec.pll is not None:
            m.domains.sync = ClockDomain("sync")
            chip = spec.fpga_family
            m.submodules.clock = BoardClock(spec.pll, platform.default_clk, chip.pll_primitive, chip.reset_buffer)
        if on_board:
            pins = platform.request("uart", 0, dir="-")
            m.submodules.rx_pin = rx_pin = io.Buffer("i", pins.rx)
            m.submodules.tx_pin = tx_pin = io.Buffer("o", pins.tx)
            m.d.comb += [self.rx.eq(rx_pin.i), tx_pin.o.eq(self.tx)]
        m.submodules.core = core = LearnerCore(geo.config, geo.lanes, narrow=spec.narrow)
        m.submodules.engine = engine = ProtocolEngine(geo, core, spec.timeout_cycles)
        m.submodules.memory = memory = DataMemory(spec.data_words, spec.data_memory,
                                                  spram=spec.fpga_family.spram if spec.fpga_family else None)
        m.submodules.uart_rx = uart_rx = UARTRx(self.period)
        m.submodules.uart_tx = uart_tx = UARTTx(self.period)
        wiring.connect(m, uart_rx.o_stream, engine.rx)
        wiring.connect(m, engine.tx, uart_tx.i_stream)
        # the samples cross the die from the feeder to the core's input memories: a register on the way
        m.submodules.sample_register = sample_register = StreamRegister(core.sample_layout)
        wiring.connect(m, engine.sample, sample_register.i_stream)
        wiring.connect(m, sample_register.o_stream, core.i_stream)
        wiring.connect(m, core.o_stream, engine.result)
        wiring.connect(m, engine.weights, core.weights)
        wiring.connect(m, engine.state, core.state)
        wiring.connect(m, engine.memory, memory.port)
        m.d.comb += [core.learn.eq(engine.learn), core.clear.eq(engine.clear), engine.busy.eq(core.busy),
                     engine.steps.eq(core.steps), engine.cycles.eq(core.cycles),
                     uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx),
                     self.idle.eq(engine.idle & ~sample_register.o_stream.valid & uart_tx.i_stream.ready),
                     self.steps.eq(core.steps)]
        return m
