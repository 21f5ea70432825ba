"""The training statistics the STATS answer reports: epochs and the sum of squared output errors."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ...hdl.mac import Multiplier
from ..geometry import BoardGeometry
from ..protocol import STATS_ANSWER

__all__ = ["ErrorStats"]


class ErrorStats(wiring.Component):
    """Squares the error of every result of an epoch and sums the squares.

    An epoch is ``samples`` samples of ``n_out`` results each; the command
    unit starts one per epoch of a TRAIN. The square is the protocol engine's
    one multiplication: its operand and product are registers without a
    reset, so that they are the DSP block's own registers. The sum is as wide
    as an epoch of the largest squares needs, so it never wraps, and holds
    the last epoch's sum until the next epoch starts.

    Parameters
    ----------
    geometry : BoardGeometry
    result_layout : Layout
        The core's results; only their ``error`` is used.

    Members
    -------
    samples : In
        The epoch's samples, at least one, held while it runs.
    start : In(1)
        Starts an epoch: zeroes the sum.
    i_stream : In(stream of ``result_layout``)
        The core's results, taken only during an epoch.
    busy : Out(1)
        An epoch is taking results.
    done : Out(1)
        The epoch's last square is in the sum; stays set until the next start.
    clear : In(1)
        Zero the epoch count and the sum (as CLEAR does).
    epochs : Out(16)
        Epochs finished since the last clear.
    error_sum : Out
        The sum of the last finished epoch (of the epoch under way, during one).
    """

    def __init__(self, geometry: BoardGeometry, result_layout: data.Layout):
        self._geo = geometry
        self._error_bits = error_bits = result_layout["error"].shape.width
        self._sum_bits = self.sum_bits_of(geometry, error_bits)
        super().__init__({
            "samples": In(range(geometry.capacity + 1)), "start": In(1),
            "i_stream": In(stream.Signature(result_layout)),
            "busy": Out(1), "done": Out(1), "clear": In(1),
            "epochs": Out(STATS_ANSWER["epochs"].shape),
            "error_sum": Out(self._sum_bits),
        })

    @staticmethod
    def sum_bits_of(geometry: BoardGeometry, error_bits: int) -> int:
        """The error sum's width: every squared error of an epoch of the largest data set, added."""
        return (geometry.capacity * geometry.n_out << 2 * (error_bits - 1)).bit_length()

    @property
    def sum_bits(self) -> int:
        return self._sum_bits

    def elaborate(self, platform):
        m = Module()
        geo, results = self._geo, self.i_stream
        samples_left = Signal.like(self.samples)
        output = Signal(range(geo.n_out))
        sample_end = output == geo.n_out - 1
        last = sample_end & (samples_left == 1)
        take = results.valid & results.ready
        m.d.comb += results.ready.eq(self.busy)

        with m.If(self.start):
            m.d.sync += [self.busy.eq(1), samples_left.eq(self.samples), output.eq(0)]
        with m.Elif(take):
            m.d.sync += output.eq(Mux(sample_end, 0, output + 1))
            with m.If(sample_end):
                m.d.sync += samples_left.eq(samples_left - 1)
            with m.If(last):
                m.d.sync += self.busy.eq(0)

        # the square on a DSP block with its own registers (the learner core's multiplier)
        m.submodules.square = multiplier = Multiplier(self._error_bits, self._error_bits)
        assert multiplier.latency == 2
        square = multiplier.product.as_unsigned()
        valid, ends = Signal(2), Signal(2)              # per pipeline stage: a square, the epoch's last
        m.d.comb += [multiplier.a.eq(results.payload.error), multiplier.b.eq(results.payload.error)]
        m.d.sync += [valid.eq(Cat(take, valid[0])), ends.eq(Cat(take & last, ends[0]))]
        with m.If(self.start | self.clear):
            m.d.sync += self.error_sum.eq(0)
        with m.Elif(valid[1]):
            m.d.sync += self.error_sum.eq(self.error_sum + square)
        with m.If(self.clear):
            m.d.sync += self.epochs.eq(0)
        with m.Elif(valid[1] & ends[1]):
            m.d.sync += self.epochs.eq(self.epochs + 1)
        with m.If(self.start):
            m.d.sync += self.done.eq(0)
        with m.Elif(valid[1] & ends[1]):
            m.d.sync += self.done.eq(1)
        return m
