"""The protocol engine's parts (:class:`nfloop.boards.engine.ProtocolEngine` composes them).

Each is a small component with stream interfaces, tested on its own in
Amaranth's simulator against the host side of :mod:`nfloop.boards.protocol`.
"""

from .command import CommandUnit
from .feeder import SampleFeeder
from .ports import data_port_signature
from .receiver import FRAME, FrameReceiver
from .sender import RESPONSE, FrameSender
from .stats import ErrorStats

__all__ = ["CommandUnit", "ErrorStats", "FRAME", "FrameReceiver", "FrameSender", "RESPONSE", "SampleFeeder",
           "data_port_signature"]
