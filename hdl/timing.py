"""When each stage of the core's pipeline sees a micro-op, from the blocks' own latencies.

A micro-op issued by the sequencer (:mod:`nfloop.hdl.sequencer`) is
registered into stage 0 (:attr:`CoreTiming.issue`); in stage 0 it reads the
weight banks and the vector memories at t0; their registered outputs are the
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
from .writeback import ColumnWriteback, RowWriteback

__all__ = ["CoreTiming", "MEMORY_LATENCY"]

#: A synchronous memory read: address in one cycle, data in the next.
MEMORY_LATENCY = 1


@dataclass(frozen=True)
class CoreTiming:
    """Stage numbers (cycles after a micro-op's issue) of the core for ``layout``."""
    layout: CoreLayout

    @property
    def issue(self) -> int:
        """From the sequencer's op to stage 0: a register, so that every memory address is one."""
        return 1

    @property
    def operand(self) -> int:
        """Memory read, then a register (the registered fan-out to the lanes)."""
        return MEMORY_LATENCY + 1

    @property
    def product(self) -> int:
        return self.operand + Multiplier.LATENCY

    @property
    def update_latency(self) -> int:
        return UpdateUnit.latency_of(self.layout.config)

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
        return self.tap(l, backward) + 1

    def forward_write(self, l: int) -> int:
        """A forward round's activations (and for the output layer: deltas, results) are written."""
        lay = self.layout
        return self.round_sum(l, False) + RowWriteback.latency_of(lay.config, l)

    def target_read(self, l: int) -> int:
        """The output layer's targets are read (address) for its error."""
        return self.round_sum(l, False) + RowWriteback.TARGET_DELAY - MEMORY_LATENCY

    def backward_write(self, l: int) -> int:
        """A backward round of layer l writes the deltas of layer l - 1."""
        return self.round_sum(l, True) + ColumnWriteback.LATENCY

    def window_read(self, l: int) -> int:
        """A backward round of layer l reads layer l - 1's window bits (address)."""
        return self.round_sum(l, True)

    @property
    def deepest(self) -> int:
        """The last stage any micro-op reaches."""
        lay = self.layout
        stages = [self.update_write] + [self.forward_write(l) for l in range(lay.layers)]
        stages += [self.backward_write(l) for l in range(1, lay.layers)]
        return max(stages)
