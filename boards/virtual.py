"""The virtual board: the board top compiled with Verilator, its UART on a TCP socket.

``VirtualBoard(config)`` builds (or reuses) the executable and starts it;
``board.url`` is the ``socket://`` URL that :class:`~nfloop.boards.client.BoardClient`
and ``nfloop compare --port`` take. ``nfloop serve-sim`` runs it in the foreground.
"""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

from amaranth.back import verilog

from ..model.config import LearnerConfig
from ..sim.toolchain import ToolchainError, verilator_build
from .catalog import VIRTUAL
from .netlist import cell_models, netlist_spec, synthesise
from .spec import BoardSpec
from .top import BoardTop

__all__ = ["VirtualBoard", "build_virtual_board", "TOP_NAME"]

SOURCE = Path(__file__).with_name("virtual.cpp")
TOP_NAME = "nfloop_board"


def build_virtual_board(config: LearnerConfig, spec: BoardSpec = VIRTUAL, trace: bool = False, log=None,
                        netlist: bool = False) -> Path:
    """The virtual board's executable for ``config``, built once per hardware config: the board top in
    RTL, or (``netlist``) the gate-level netlist of ``spec``'s build (:mod:`.netlist`)."""
    if netlist:
        spec = netlist_spec(spec)
        text = cell_models(spec.family) + "\n" + synthesise(config, spec, TOP_NAME, log=log)
        output = f"nfloop_gate_{spec.family}"
    else:
        top = BoardTop(config.hardware(), spec)
        text = verilog.convert(top, ports=[top.rx, top.tx, top.idle, top.steps], name=TOP_NAME, emit_src=False)
        output = "nfloop_virtual_board"
    _, period = BoardTop.checked(config.hardware(), spec)
    defines = {"BIT_PERIOD": period, "TRACE": int(trace)}
    return verilator_build(text, TOP_NAME, SOURCE, defines, output, trace="vcd" if trace else None, log=log)


def _forward(stream, log):
    for line in stream:
        if log:
            log(line.rstrip())


class VirtualBoard:
    """A running virtual board; a context manager that stops it on exit.

    Parameters
    ----------
    config : LearnerConfig
    port : int
        TCP port on 127.0.0.1; 0 picks a free one.
    trace : path, optional
        Write a VCD of the whole board top (large: use for short sessions).
    trace_limit_mb : int, optional
        Stop recording the VCD once it passes this many megabytes.
    trace_steps : (first, last), optional
        Record only while the board's step count is in this window (steps counted from 0).
    idle_timeout : int
        Seconds a connected client may send nothing, the board idle, before it is disconnected (0: never).
    spec : BoardSpec
        The board whose top it runs; with ``netlist``, a real board, simulated as its build's netlist.
    """

    def __init__(self, config: LearnerConfig, port: int = 0, trace=None, spec: BoardSpec = VIRTUAL, log=None,
                 trace_limit_mb: int | None = None, trace_steps: tuple[int, int] | None = None,
                 idle_timeout: int = 600, netlist: bool = False):
        executable = build_virtual_board(config, spec, trace=trace is not None, log=log, netlist=netlist)
        command = [str(executable), "--port", str(port), "--idle-timeout", str(idle_timeout)]
        if trace is not None:
            command += ["--trace", str(trace)]
            if trace_limit_mb:
                command += ["--trace-limit", str(trace_limit_mb * 1_000_000)]
            if trace_steps:
                command += ["--trace-steps", f"{trace_steps[0]}:{trace_steps[1]}"]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self._process.stdout.readline()
        found = re.match(r"listening on ([\d.]+):(\d+)", line)
        if not found:
            self.close()                        # stdout ended or said something else: the board is stopping
            error = self._process.stderr.read()
            if "Address already in use" in error:
                raise ToolchainError(f"port {port} is in use: choose another with --port (0 picks a free one)")
            raise ToolchainError(f"the virtual board did not start: {(line + error).strip() or 'no output'}")
        self.host, self.port = found.group(1), int(found.group(2))
        # keep draining stdout so the board never blocks on a full pipe; what it says on stderr
        # (a waveform stopped at its limit) goes to ``log``
        threading.Thread(target=self._process.stdout.read, daemon=True).start()
        threading.Thread(target=_forward, args=(self._process.stderr, log), daemon=True).start()

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    def wait(self) -> int:
        """Until the board stops; its exit status (negative: the signal that stopped it)."""
        return self._process.wait()

    def close(self):
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
