"""How a layer's weights are spread over the lanes, and the core's derived widths.

The P lanes of the core work on one layer at a time. For layer l they form
``G_l`` groups of ``C_l`` lanes (``G_l * C_l = P``, both powers of two): lane
``p = g * C_l + c`` holds the weights ``W[j, i]`` with ``j mod G_l = g`` and
``i mod C_l = c``. A forward *round* (r, k) then computes, in one cycle, the
products of rows ``r*G_l .. r*G_l + G_l - 1`` with columns
``k*C_l .. k*C_l + C_l - 1``; an adder tree of neighbouring lanes sums each
group's C_l products. The backward pass sums the same products over the
groups instead, so a layer behind the first takes either ``C_l = 1`` (each
lane a row: the column sum is the whole tree's) or ``C_l = P`` (each lane a
column: its own products, accumulated over the row rounds): either way the
sum runs over neighbours, and no wire crosses the lane array. A 10-unit
output layer keeps 64 lanes busy as one group of 64 columns rather than
using 10 of them.

Weight ``W[j, i]`` of layer l (the bias is column ``n_in``) lives in bank
``p`` at address ``base_l + r * K_l + k`` with ``r = j div G_l`` and
``k = i div C_l``: ``K_l`` column rounds per row round. Banks pad a layer to
``R_l * G_l`` rows and ``K_l * C_l`` columns; padding weights are zero and
stay zero, because the operands that meet them are zero.

:class:`CoreLayout` picks ``C_l`` for every layer so that a training step
takes the fewest cycles (:func:`nfloop.hdl.sequencer.schedule`), unless the
caller names the columns.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from ..model.config import ConfigError, LearnerConfig

__all__ = ["CoreLayout", "MAX_LANES"]

#: The widest core: the largest FPGAs the boards carry have 156 multipliers.
MAX_LANES = 128


def log2(n: int) -> int:
    return n.bit_length() - 1


@dataclass(frozen=True)
class CoreLayout:
    """Integer facts about a core with ``lanes`` lanes for ``config``.

    Parameters
    ----------
    config : LearnerConfig
    lanes : int
        P, a power of two from 1 to :data:`MAX_LANES`.
    columns : tuple of int, optional
        C_l per layer (powers of two dividing P); default: the fastest mapping.
    narrow : bool
        Prefer the mappings whose hidden layers' vector memories hold the fewest values a word (one,
        for a network with one hidden layer): on a device with few, narrow block RAMs (the iCE40's
        are 16 bits wide) each such memory is then one of them; and read each update's old weight a
        second time rather than carry it (:attr:`reread_weights`).
    """
    config: LearnerConfig
    lanes: int
    columns: tuple[int, ...] | None = field(default=None)
    narrow: bool = False

    def __post_init__(self):
        p = self.lanes
        if not (isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= MAX_LANES and p & (p - 1) == 0):
            raise ConfigError(f"lanes must be a power of two from 1 to {MAX_LANES}, not {p!r}")
        if self.columns is None:
            object.__setattr__(self, "columns", _fastest_columns(self.config, p, self.narrow))
        else:
            columns = tuple(self.columns)
            if len(columns) != len(self.config.layers) or any(
                    not (isinstance(c, int) and 1 <= c <= p and c & (c - 1) == 0) for c in columns):
                raise ConfigError(f"columns must give each of the {len(self.config.layers)} layers a power of "
                                  f"two from 1 to {p} (the lanes), not {self.columns!r}")
            if any(c not in (1, p) for c in columns[1:]):
                raise ConfigError(f"columns of the layers behind the first must be 1 or {p} (the lanes), "
                                  f"not {self.columns!r}: their backward sums run over neighbouring lanes")

            object.__setattr__(self, "columns", columns)

    # -- the network ------------------------------------------------------------------

    @property
    def layers(self) -> int:
        return len(self.config.layers)

    @property
    def lane_bits(self) -> int:
        return log2(self.lanes)

    def n_in(self, l: int) -> int:
        return self.config.sizes[l]

    def n_out(self, l: int) -> int:
        return self.config.sizes[l + 1]

    def n_cols(self, l: int) -> int:
        """Columns of layer l's weight matrix: the inputs and the bias."""
        return self.n_in(l) + 1

    # -- the mapping --------------------------------------------------------------------

    def cols(self, l: int) -> int:
        """C_l: lanes that share one row of layer l."""
        return self.columns[l]

    def groups(self, l: int) -> int:
        """G_l: rows of layer l computed side by side."""
        return self.lanes // self.columns[l]

    def row_rounds(self, l: int) -> int:
        return math.ceil(self.n_out(l) / self.groups(l))

    def col_rounds(self, l: int) -> int:
        return math.ceil(self.n_cols(l) / self.cols(l))

    def input_rounds(self, l: int) -> int:
        """Column rounds that hold an input; a round past them holds only the bias, which has no delta to
        pass back."""
        return math.ceil(self.n_in(l) / self.cols(l))

    def words(self, l: int) -> int:
        """Words of each bank that layer l takes: one per round."""
        return self.row_rounds(l) * self.col_rounds(l)

    def base(self, l: int) -> int:
        return sum(self.words(k) for k in range(l))

    @property
    def depth(self) -> int:
        """Words per bank."""
        return self.base(self.layers)

    def lane(self, l: int, g: int, c: int) -> int:
        return g * self.cols(l) + c

    def address(self, l: int, j: int, i: int) -> tuple[int, int]:
        """(bank, address) of weight W_l[j, i]."""
        G, C = self.groups(l), self.cols(l)
        return self.lane(l, j % G, i % C), self.base(l) + (j // G) * self.col_rounds(l) + i // C

    def banks(self, weights: list[np.ndarray]) -> list[list[int]]:
        """The banks' initial contents for per-layer ``(n_out, n_in + 1)`` weight_acc codes."""
        banks = [[0] * self.depth for _ in range(self.lanes)]
        for l, w in enumerate(weights):
            for j in range(w.shape[0]):
                for i in range(w.shape[1]):
                    bank, addr = self.address(l, j, i)
                    banks[bank][addr] = int(w[j, i])
        return banks

    # -- vectors between the layers -----------------------------------------------------

    def vector_slots(self, l: int) -> int:
        """Values per word of layer l's activation, window and delta memories.

        Layer l writes its activations G_l at a time and layer l+1 reads them
        C_{l+1} at a time (the other way round for deltas); both are powers of
        two, so a word of the larger count serves both.
        """
        if l == self.layers - 1:
            return self.groups(l)
        return max(self.groups(l), self.cols(l + 1))

    @property
    def reread_weights(self) -> bool:
        """An update op reads its old weight from its bank a second time, in the stage its update unit
        uses it, rather than carrying the first read's word there through a register per stage and lane:
        on a small device (``narrow``) those registers cost more than the cycles the second reads may add
        at a step's end (:func:`nfloop.hdl.sequencer.weight_reread`)."""
        return self.narrow

    @property
    def hidden_slots(self) -> int:
        """The most values a word of any hidden layer's vector memories holds (1 without hidden layers)."""
        return max([self.vector_slots(l) for l in range(self.layers - 1)], default=1)

    def vector_words(self, l: int) -> int:
        return math.ceil(self.n_out(l) / self.vector_slots(l))

    @property
    def input_slots(self) -> int:
        return self.cols(0)

    @property
    def input_words(self) -> int:
        return math.ceil(self.n_in(0) / self.input_slots)

    def forward_tap(self, l: int) -> int:
        """Adder-tree level whose sums are layer l's row sums (sum over the C_l columns)."""
        return log2(self.cols(l))

    def backward_tap(self, l: int) -> int:
        """Adder-tree level of layer l's column sums: the lanes' own products (C_l = P) or the root (C_l = 1)."""
        return 0 if self.cols(l) == self.lanes else self.lane_bits

    @property
    def accumulators(self) -> int:
        """Round sums kept at once: a forward round's G_l rows or a backward round's C_l columns."""
        return max([self.groups(l) for l in range(self.layers)] + [self.cols(l) for l in range(1, self.layers)])

    def accumulator_slots(self, l: int, backward: bool) -> list[int]:
        """The round accumulator of each of layer l's round sums (rows forward, columns backward): the first
        lane its adder-tree node covers, so that every accumulator sits by its lanes whichever layer it
        sums. (Numbered 0, 1, ... instead, a 2-column layer's row g would share an accumulator with lane
        g, half the chip away from lanes 2g and 2g + 1.)"""
        level = self.backward_tap(l) if backward else self.forward_tap(l)
        values = self.cols(l) if backward else self.groups(l)
        assert values == self.lanes >> level
        return [x << level for x in range(values)]

    @property
    def tree_levels(self) -> int:
        taps = [self.forward_tap(l) for l in range(self.layers)]
        taps += [self.backward_tap(l) for l in range(1, self.layers)]
        return max(taps)

    # -- widths of the datapath ---------------------------------------------------------

    @property
    def operand_a_width(self) -> int:
        """Weights (forward, backward; a bit wider for a residual layer's ``W + I``) and deltas (update)."""
        cfg = self.config
        return max(max(cfg.weight_operand_bits(l) for l in range(self.layers)), cfg.formats.error.bits)

    @property
    def operand_b_width(self) -> int:
        """Inputs, activations and the bias input 1.0 (forward, update) and deltas (backward)."""
        f, cfg = self.config.formats, self.config
        one = max((1 << cfg.input_format(l).frac).bit_length() + 1 for l in range(self.layers))
        return max(f.input.bits, f.activation.bits, f.error.bits, one)

    @property
    def product_width(self) -> int:
        return self.operand_a_width + self.operand_b_width

    @property
    def mac_sum_width(self) -> int:
        return max(self.config.mac_sum_bits(l) for l in range(self.layers))

    @property
    def backward_sum_width(self) -> int:
        f, cfg = self.config.formats, self.config
        widest = max((self.n_out(l) for l in range(1, self.layers)), default=1)
        weights = max(cfg.weight_operand_bits(l) for l in range(self.layers))
        return weights + f.error.bits + max(1, math.ceil(math.log2(widest + 1)))

    @property
    def accumulator_width(self) -> int:
        """Wide enough for every exact row sum and column sum (the config checks the former)."""
        return max(self.mac_sum_width, self.backward_sum_width, self.product_width + self.tree_levels)

    def block_rams(self, words_per_ram: int = 512, bits_per_word: int = 36) -> int:
        """The block RAMs of the weight, momentum and batch-sum banks (ECP5 DP16KD as 512 x 36 by default)."""
        f = self.config.formats
        banks = 1 + any(layer.momentum_shift for layer in self.config.layers) + (self.config.batch_size > 1)
        per_bank = math.ceil(self.depth / words_per_ram) * math.ceil(f.weight_acc.bits / bits_per_word)
        return self.lanes * banks * per_bank

    def mac_bound_cycles(self) -> float:
        """Multiplies of one training step per lane: the schedule's lower bound."""
        return self.config.mac_operations / self.lanes


@functools.lru_cache(maxsize=64)
def _fastest_columns(config: LearnerConfig, lanes: int, narrow: bool = False) -> tuple[int, ...]:
    """The C_l per layer whose training step is shortest (narrow: among those with the narrowest hidden
    vector memories); ties go to the shallower adder tree."""
    from .sequencer import step_cycles
    first = [1 << b for b in range(log2(lanes) + 1)]
    behind = sorted({1, lanes})
    best, best_key = None, None
    for columns in itertools.product(first, *[behind] * (len(config.layers) - 1)):
        layout = CoreLayout(config, lanes, columns)
        key = (layout.hidden_slots if narrow else 0, step_cycles(layout), layout.tree_levels, layout.accumulators,
               columns)
        if best_key is None or key < best_key:
            best, best_key = columns, key
    return best
