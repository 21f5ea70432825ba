"""What a board built for a config holds, and where: shared by the gateware and the host.

The data-set memory is 16-bit words. A sample is ``record_words`` words: its
inputs (two 8-bit codes per word when ``formats.input`` has at most 8 bits,
else one per word, low byte first), then its targets, one per word; LOAD_DATA
carries exactly these words (:func:`encode_records`). The memory holds them a
column at a time: word w of sample s is at ``record_address(s, w)`` =
``w * capacity + s``, so that the words of one sample, and the first words of
consecutive samples, are a constant step apart and no address is a product.
The epoch order fills the memory from its top down: position p is the word at
``order_address(p)`` and holds a sample index.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import tomli_w

from ..model.config import ConfigError, LearnerConfig
from .protocol import MAX_PAYLOAD, SPAN_HEADER, identify_layout, pack
from .spec import GATEWARE_VERSION, PROTOCOL_VERSION, BoardSpec

__all__ = ["BoardGeometry", "config_hash", "packs_inputs", "encode_records", "MAGIC", "MAX_READ_WEIGHTS"]

MAGIC = b"NFLP"
#: READ_WEIGHTS answers with 4 bytes a weight, within one frame.
MAX_READ_WEIGHTS = MAX_PAYLOAD // 4


def config_hash(config: LearnerConfig) -> bytes:
    """First 8 bytes of the SHA-256 of the hardware config's canonical TOML."""
    return hashlib.sha256(tomli_w.dumps(config.hardware().to_dict()).encode()).digest()[:8]


def packs_inputs(config: LearnerConfig) -> bool:
    """Two input codes per memory word (and per LOAD_DATA word): ``formats.input`` has at most 8 bits."""
    return config.formats.input.bits <= 8


def encode_records(xs, ys, packed: bool) -> bytes:
    """Samples (rows of ``xs`` inputs and ``ys`` targets) as the data memory holds them, little-endian.

    Packed inputs are signed bytes, two to a word, the first in the low byte; an odd count's last
    word has a high byte of 0. Unpacked inputs and every target are one i16 word each.
    """
    xs, ys = np.atleast_2d(np.asarray(xs, dtype=np.int64)), np.atleast_2d(np.asarray(ys, dtype=np.int64))
    if packed:
        inputs = np.zeros((len(xs), xs.shape[1] + xs.shape[1] % 2), dtype="i1")
        inputs[:, :xs.shape[1]] = xs
    else:
        inputs = xs.astype("<i2")
    return np.concatenate([inputs.view("u1"), ys.astype("<i2").view("u1")], axis=1).tobytes()


@dataclass(frozen=True)
class BoardGeometry:
    """Where everything the host reaches lives on one board, for one config: the memory map.

    The protocol engine (gateware) and the client (host) both read it, so
    that the data memory's records, the results area and the weight indices
    cannot disagree between the two sides. ``spec`` comes out with its data
    memory sized (:meth:`BoardSpec.sized_for`).
    """

    config: LearnerConfig
    spec: BoardSpec

    def __post_init__(self):
        object.__setattr__(self, "spec", self.spec.sized_for(self.config))
        f, name = self.config.formats, self.spec.name
        for what, fmt, limit in (("formats.input", f.input, 16), ("formats.activation", f.activation, 16),
                                 ("formats.weight_acc", f.weight_acc, 32)):
            if fmt.bits > limit:
                raise ConfigError(f"{what} has {fmt.bits} bits; the host link carries at most {limit}: "
                                  f"narrow it to build for {name}")
        if 2 * self.n_in > MAX_PAYLOAD:
            raise ConfigError(f"{self.n_in} inputs do not fit one INFER frame ({MAX_PAYLOAD // 2} at most)")
        if SPAN_HEADER.size // 8 + 2 * self.record_words > MAX_PAYLOAD:
            raise ConfigError(f"a sample of {self.record_words} memory words does not fit one LOAD_DATA frame "
                              f"({(MAX_PAYLOAD - SPAN_HEADER.size // 8) // 2} at most)")
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
        return packs_inputs(self.config)

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

    def record_address(self, sample: int, word: int) -> int:
        """The data memory word holding word ``word`` of sample ``sample``."""
        return word * self.capacity + sample

    def order_address(self, position):
        """The word holding order position ``position`` (an int or an Amaranth value): from the top down."""
        words = self.spec.data_words
        if isinstance(position, int):
            return words - 1 - position
        if words & (words - 1) == 0:
            return position.as_unsigned() ^ (words - 1)         # no adder for a power of two
        return words - 1 - position

    @property
    def lanes(self) -> int:
        return self.spec.lanes

    def identify_payload(self) -> bytes:
        """The IDENTIFY answer (``docs/protocol.md``)."""
        sizes = self.config.sizes
        head = {"magic": int.from_bytes(MAGIC, "little"), "protocol": PROTOCOL_VERSION, "gateware": GATEWARE_VERSION,
                "config_hash": int.from_bytes(config_hash(self.config), "little"), "lanes": self.lanes,
                "layers": len(sizes) - 1}
        return pack(identify_layout(len(sizes) - 1), head=head, sizes=list(sizes),
                    tail={"capacity": self.capacity, "clock_hz": self.spec.clock_hz})
