"""nfloop: a learner whose optimiser is a high-gain negative feedback loop.

Sub-packages: :mod:`nfloop.model` (reference models and the learner config),
:mod:`nfloop.hdl` (Amaranth gateware), :mod:`nfloop.boards` (FPGA board
tops), :mod:`nfloop.scripts` (the ``nfloop`` command line).
"""

__version__ = "0.1.0"

