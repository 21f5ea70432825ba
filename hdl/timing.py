"""When each stage of the core's pipeline sees a micro-op, from the blocks' own latencies.

A micro-op issued by the sequencer (:mod:`nfloop.hdl.sequencer`) is
registered into stage 0 (:attr:`CoreTiming.issue`); in stage 0 it reads the
weight banks, whose words are registered as they leave the block RAMs; the
vector memories are read a stage later (:attr:`CoreTiming.vector_read`), so
that both arrive together and, registered once more per lane, are the
operands at :attr:`CoreTiming.operand`; the multipliers' products appear at
:attr:`CoreTiming.product`. From there a forward or backward product goes
through the adder tree to its layer's tap, into the round accumulators, and
through the row or column write-back into a vector memory; an update product
goes through the update unit into the banks. Every figure here is derived
from a block's ``latency`` property, so a stage added to a block moves every
drain and the exact schedule with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .layout import CoreLayout
from .mac import Multiplier
from .tree import ReductionTree
from .update import UpdateUnit
from .vectors import VectorMemory
from .writeback import ColumnWriteback, RowWriteback

__all__ = ["CoreTiming", "MEMORY_LATENCY", "BANK_REGISTERS", "ADDEND_REGISTERS"]

#: A synchronous memory read: address in one cycle, data in the next.
MEMORY_LATENCY = 1

#: Registers on the weight banks' read data, before any logic: a block RAM's data output is slow
#: (5.8 ns from the clock on the ECP5's speed grade 6), so it feeds a flip-flop and nothing else.
BANK_REGISTERS = 1

#: Registers between the adder tree's selected tap and the round accumulators' adders: the selection
#: over the layers' taps and the accumulators' carry chains in separate cycles.
ADDEND_REGISTERS = 1


@dataclass(frozen=True)
class CoreTiming:
    """Stage numbers (cycles after a micro-op's issue) of the core for ``layout``."""
    layout: CoreLayout

    @property
    def issue(self) -> int:
        """From the sequencer's op to stage 0: a register, so that every memory address is one."""
        return 1

    @property
    def vector_read(self) -> int:
        """The stage whose op addresses the vector memories: their data arrives with the registered bank
        words."""
        return BANK_REGISTERS

    @property
    def operand(self) -> int:
        """Bank read and its registers, then a register per lane (the registered fan-out to the lanes)."""
        return MEMORY_LATENCY + BANK_REGISTERS + 1

    @property
    def product(self) -> int:
        return self.operand + Multiplier.LATENCY

    @property
    def update_latency(self) -> int:
        return UpdateUnit.latency_of(self.layout.config)

    @property
    def update_weight(self) -> int:
        """The stage in which the update unit first uses an update op's old weight."""
        return self.product + UpdateUnit.weight_stage_of(self.layout.config)

    @property
    def weight_reread(self) -> int:
        """The latest stage in which an update op can read its old weight from its bank a second time: its
        word, registered, reaches the update unit in :attr:`update_weight`
        (:func:`nfloop.hdl.sequencer.weight_reread` picks the stage)."""
        return self.update_weight - MEMORY_LATENCY - BANK_REGISTERS

    @property
    def update_write(self) -> int:
        """An update op's weight, momentum and batch-sum writes."""
        return self.product + self.update_latency

    def tap(self, l: int, backward: bool) -> int:
        """The cycle in which the adder tree holds layer l's row sums (or column sums)."""
        lay = self.layout
        level = lay.backward_tap(l) if backward else lay.forward_tap(l)
        return self.product + ReductionTree.level_latency(level)

    def round_sum(self, l: int, backward: bool) -> int:
        """The cycle in which a finished round's sums sit in the accumulators."""
        return self.tap(l, backward) + ADDEND_REGISTERS + 1

    # -- write-back: a finished round's sums, a few at a time --------------------------------

    def round_values(self, l: int, backward: bool) -> int:
        """Sums a round finishes: G_l rows forward, C_l columns backward."""
        return self.layout.cols(l) if backward else self.layout.groups(l)

    def round_period(self, l: int, backward: bool) -> int:
        """Cycles between two rounds' ends: a backward round's row rounds each take a BWD and an UPD op."""
        lay = self.layout
        return 2 * lay.row_rounds(l) if backward else lay.col_rounds(l)

    #: A round's write-back takes at most this many cycles: each one delays the layer's last values.
    MAX_STEPS = 4

    def units(self, l: int, backward: bool) -> int:
        """Write-back units: the fewest (a power of two) that finish a round's sums before the next round
        ends, and within :attr:`MAX_STEPS` cycles."""
        values, period = self.round_values(l, backward), self.round_period(l, backward)
        units = 1
        while units * min(period, self.MAX_STEPS) < values:
            units *= 2
        return min(units, values)

    def serial(self, l: int, backward: bool) -> bool:
        """The round's sums are copied aside and written back over several cycles."""
        return self.units(l, backward) < self.round_values(l, backward)

    def steps(self, l: int, backward: bool) -> int:
        return self.round_values(l, backward) // self.units(l, backward)

    def writeback_start(self, l: int, backward: bool) -> int:
        """The cycle the first sums of a finished round enter the write-back units: at once, or from the
        heads of the copies' chains (one register) when serial."""
        return self.round_sum(l, backward) + self.serial(l, backward)

    def forward_write(self, l: int, step: int = 0) -> int:
        """Step ``step`` of a forward round's write-back writes its activations (output layer: deltas, results)."""
        lay = self.layout
        return self.writeback_start(l, False) + step + RowWriteback.latency_of(lay.config, l) \
            + VectorMemory.WRITE_LATENCY

    def target_read(self, l: int, step: int = 0) -> int:
        """The output layer's targets of write-back step ``step`` are read (address) for its errors."""
        return self.writeback_start(l, False) + step + RowWriteback.TARGET_DELAY - MEMORY_LATENCY

    def backward_write(self, l: int, step: int = 0) -> int:
        """Step ``step`` of a backward round of layer l writes deltas of layer l - 1."""
        return self.writeback_start(l, True) + step + ColumnWriteback.LATENCY + VectorMemory.WRITE_LATENCY

    def window_read(self, l: int, step: int = 0) -> int:
        """Step ``step`` of a backward round of layer l reads layer l - 1's window bits (address)."""
        return self.writeback_start(l, True) + step

    @property
    def deepest(self) -> int:
        """The last stage any micro-op reaches."""
        lay = self.layout
        stages = [self.update_write] + [self.forward_write(l, self.steps(l, False) - 1) for l in range(lay.layers)]
        stages += [self.backward_write(l, self.steps(l, True) - 1) for l in range(1, lay.layers)]
        return max(stages)
