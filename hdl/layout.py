"""Where every weight lives in the lanes' memory banks, and the core's derived widths.

Row j of layer l lives in bank ``j % P`` (P lanes), at address
``base[l] + (j // P) * (n_in + 1) + i`` for column i (the bias is column n_in).
The forward pass reads a bank row by row; the backward/update pass column by
column, ``n_in + 1`` apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..model.config import ConfigError, LearnerConfig

__all__ = ["CoreLayout"]


@dataclass(frozen=True)
class CoreLayout:
    """Integer facts about a core with ``lanes`` lanes for ``config``."""
    config: LearnerConfig
    lanes: int

    def __post_init__(self):
        p = self.lanes
        if not (isinstance(p, int) and p >= 1 and p & (p - 1) == 0 and p <= 64):
            raise ConfigError(f"lanes must be a power of two from 1 to 64, not {p!r}")

    @property
    def layers(self) -> int:
        return len(self.config.layers)

    @property
    def lane_bits(self) -> int:
        return self.lanes.bit_length() - 1

    def n_in(self, l: int) -> int:
        return self.config.sizes[l]

    def n_out(self, l: int) -> int:
        return self.config.sizes[l + 1]

    def rounds(self, l: int) -> int:
        """Rows of layer l per bank."""
        return math.ceil(self.n_out(l) / self.lanes)

    def base(self, l: int) -> int:
        return sum(self.rounds(k) * (self.n_in(k) + 1) for k in range(l))

    @property
    def depth(self) -> int:
        """Words per bank."""
        return self.base(self.layers)

    def address(self, l: int, j: int, i: int) -> tuple[int, int]:
        """(bank, address) of weight W_l[j, i]."""
        return j % self.lanes, self.base(l) + (j // self.lanes) * (self.n_in(l) + 1) + i

    def banks(self, weights: list[np.ndarray]) -> list[list[int]]:
        """The banks' initial contents for per-layer ``(n_out, n_in + 1)`` weight_acc codes."""
        banks = [[0] * self.depth for _ in range(self.lanes)]
        for l, w in enumerate(weights):
            for j in range(w.shape[0]):
                for i in range(w.shape[1]):
                    bank, addr = self.address(l, j, i)
                    banks[bank][addr] = int(w[j, i])
        return banks

    # -- widths of the datapath ---------------------------------------------------------

    @property
    def operand_a_width(self) -> int:
        f = self.config.formats
        return max(f.weight.bits, f.error.bits)

    @property
    def operand_b_width(self) -> int:
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
        f = self.config.formats
        widest = max((self.n_out(l) for l in range(1, self.layers)), default=1)
        return f.weight.bits + f.error.bits + max(1, math.ceil(math.log2(widest + 1)))

    def mac_bound_cycles(self) -> float:
        """Multiplies of one training step per lane: the schedule's lower bound."""
        return self.config.mac_operations / self.lanes
