"""Interrupt ``nfloop compare`` at random moments and check that an immediate rerun always succeeds.

    python -m nfloop.scripts.interrupts [--tries 20] [--task digits] [--epochs 2] [--seed 0] [--port URL]

Each try starts a compare against the virtual board (one is started unless ``--port`` names one),
stops it after a random time with Ctrl-C (SIGINT) or SIGKILL, then at once continues it: with
``--resume`` when its run folder holds a run, else with a new compare. The rerun must exit 0 with
0 mismatches, and a resumed run must end with the weights of an uninterrupted run of the same length.
Prints one line per try and a summary; exit status 1 if any rerun failed.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def compare(port: str, args: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "nfloop.scripts.cli", "compare", "--port", port, "--json", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def final_weights(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "checkpoint.npz") as saved:
        return {name: saved[name] for name in saved.files}


def run_tries(port: str, tries: int, task: str, epochs: int, seed: int, folder: Path, log=print) -> dict:
    rng = np.random.default_rng(seed)
    reference = folder / "reference"
    start = time.perf_counter()
    code, _, err = finish(compare(port, ["--task", task, "--epochs", str(epochs), "--run-dir", str(reference)]))
    if code != 0:
        raise SystemExit(f"the uninterrupted compare failed ({code}): {err.strip()}")
    length = time.perf_counter() - start
    expected = final_weights(reference)
    counts = {"tries": 0, "rerun_ok": 0, "resumed": 0, "restarted": 0, "interrupted_by": {"SIGINT": 0, "SIGKILL": 0}}
    for k in range(tries):
        run = folder / f"try-{k}"
        how = signal.SIGINT if rng.random() < 0.5 else signal.SIGKILL
        after = float(rng.uniform(0.0, length))
        process = compare(port, ["--task", task, "--epochs", str(epochs), "--run-dir", str(run)])
        time.sleep(after)
        process.send_signal(how)
        first, _, _ = finish(process)
        resumed = (run / "run.json").exists()
        rerun = compare(port, ["--resume", str(run)] if resumed else
                        ["--task", task, "--epochs", str(epochs), "--run-dir", str(folder / f"try-{k}-again")])
        code, out, err = finish(rerun)
        ok = code == 0 and json.loads(out)["mismatches"] == 0
        if ok and resumed:
            got = final_weights(run)
            ok = all(np.array_equal(got[name], value) for name, value in expected.items())
        counts["tries"] += 1
        counts["rerun_ok"] += ok
        counts["resumed" if resumed else "restarted"] += 1
        counts["interrupted_by"][how.name] += 1
        log(f"try {k + 1}/{tries}: {how.name} after {after:.1f} s (status {first}), "
            f"{'resumed' if resumed else 'started again'}: {'ok' if ok else 'FAILED: ' + (err.strip() or out[-300:])}")
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--task", default="digits")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="Seeds the interrupt times and signals.")
    parser.add_argument("--port", help="A running virtual board's socket:// URL (default: start one for the task).")
    args = parser.parse_args(argv)
    if args.tries < 1 or args.epochs < 1:
        parser.error("--tries and --epochs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="nfloop-interrupts-") as folder:
        if args.port:
            counts = run_tries(args.port, args.tries, args.task, args.epochs, args.seed, Path(folder))
        else:
            from ..boards.virtual import VirtualBoard
            from ..model import default_config, load_task
            with VirtualBoard(default_config(load_task(args.task))) as board:
                counts = run_tries(board.url, args.tries, args.task, args.epochs, args.seed, Path(folder))
    print(json.dumps(counts))
    return 0 if counts["rerun_ok"] == counts["tries"] else 1


if __name__ == "__main__":
    sys.exit(main())
