"""What a board built for a config holds, and where: shared by the gateware and the host.

The data-set memory is 16-bit words. Sample s occupies ``record_words`` words
from ``s * record_words``: its inputs (two 8-bit codes per word when
``formats.input`` has at most 8 bits, else one per word, low byte first),
then its targets, one per word. The epoch order (one sample index per word)
follows the last sample, at ``order_base``.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import tomli_w

from ..model.config import ConfigError, LearnerConfig
from .catalog import GATEWARE_VERSION, PROTOCOL_VERSION, BoardSpec
from .protocol import MAX_PAYLOAD

__all__ = ["BoardGeometry", "config_hash", "MAGIC", "MAX_READ_WEIGHTS"]

MAGIC = b"NFLP"
#: READ_WEIGHTS answers with 4 bytes a weight, within one frame.
MAX_READ_WEIGHTS = MAX_PAYLOAD // 4


def config_hash(config: LearnerConfig) -> bytes:
    """First 8 bytes of the SHA-256 of the hardware config's canonical TOML."""
    return hashlib.sha256(tomli_w.dumps(config.hardware().to_dict()).encode()).digest()[:8]


@dataclass(frozen=True)
class BoardGeometry:
    config: LearnerConfig
    spec: BoardSpec

    def __post_init__(self):
        f, name = self.config.formats, self.spec.name
        for what, fmt, limit in (("formats.input", f.input, 16), ("formats.activation", f.activation, 16),
                                 ("formats.weight_acc", f.weight_acc, 32)):
            if fmt.bits > limit:
                raise ConfigError(f"{what} has {fmt.bits} bits; the host link carries at most {limit}: "
                                  f"narrow it to build for {name}")
        if 2 * self.n_in > MAX_PAYLOAD:
            raise ConfigError(f"{self.n_in} inputs do not fit one INFER frame ({MAX_PAYLOAD // 2} at most)")
        if 4 + 2 * self.record_elements > MAX_PAYLOAD:
            raise ConfigError(f"a sample of {self.record_elements} values does not fit one LOAD_DATA frame "
                              f"({(MAX_PAYLOAD - 4) // 2} at most)")
        if self.capacity < 1:
            raise ConfigError(f"{name}'s data memory ({self.spec.data_words} words) cannot hold one sample "
                              f"of {self.record_words} words")

    @property
    def n_in(self) -> int:
        return self.config.inputs

    @property
    def n_out(self) -> int:
        return self.config.outputs

    @property
    def packed_inputs(self) -> bool:
        """Two input codes per memory word."""
        return self.config.formats.input.bits <= 8

    @property
    def input_words(self) -> int:
        return (self.n_in + 1) // 2 if self.packed_inputs else self.n_in

    @property
    def record_elements(self) -> int:
        """Values per sample on the wire: inputs then targets."""
        return self.n_in + self.n_out

    @property
    def record_words(self) -> int:
        return self.input_words + self.n_out

    @property
    def capacity(self) -> int:
        """Samples the board holds, each with its place in the epoch order."""
        return min(self.spec.data_words // (self.record_words + 1), 0xFFFF)

    @property
    def order_base(self) -> int:
        return self.capacity * self.record_words

    @property
    def lanes(self) -> int:
        return self.spec.lanes

    def identify_payload(self) -> bytes:
        """The IDENTIFY answer (``docs/protocol.md``)."""
        sizes = self.config.sizes
        return (MAGIC + bytes([PROTOCOL_VERSION, GATEWARE_VERSION]) + config_hash(self.config)
                + bytes([self.lanes, len(sizes) - 1]) + struct.pack(f"<{len(sizes)}H", *sizes)
                + struct.pack("<HI", self.capacity, self.spec.clock_hz))
