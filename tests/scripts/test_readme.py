"""README.md's Use section, run as written: every command a new user can run here succeeds."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
#: What cannot run on a machine without a board, a cluster, or many minutes to spare; each is tested elsewhere.
NOT_HERE = {
    "--ray auto": "needs a running Ray cluster (tests/scripts/test_explore.py starts one)",
    "bench --hdl": "builds 20 Verilator models (tests/sim: the cycles per step of every lane count)",
    "build --board": "a full board build takes minutes (tests/boards/test_build.py builds small ones)",
    "flash": "needs a board on USB",
    "/dev/ttyUSB1": "needs a board on USB",
    "bench --boards": "builds the boards' Verilator models (tests/boards)",
    "demo --quick": "tests/scripts/test_cli.py runs it and checks what it writes",
    "prove --json": "six minutes at its default bound (tests/sim/test_formal.py proves digits at a shorter one)",
    "--board icebreaker --netlist": "synthesises and compiles the digits netlist (test_netlist.py runs xor's)",
}


def use_commands() -> list[str]:
    text = README.read_text()
    block = re.search(r"## Use\n.*?```sh\n(.*?)```", text, re.S).group(1)
    return [" ".join(shlex.split(line, comments=True)) for line in block.splitlines() if line.strip()]


def test_the_use_section_is_found():
    commands = use_commands()
    assert len(commands) > 15 and all(c.startswith("nfloop ") for c in commands)


def free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
def test_use_section_runs_as_written(tmp_path):
    nfloop = str(Path(sys.executable).with_name("nfloop"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 4))
    np.savez(tmp_path / "mydata.npz", x=x, y=(x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1))
    env = dict(os.environ, COLUMNS="100")
    background, ran = [], []
    try:
        for command in use_commands():
            reason = next((why for key, why in NOT_HERE.items() if key in command), None)
            if reason:
                continue
            argv = [nfloop] + shlex.split(command.rstrip("& "))[1:]
            if command.endswith("&"):
                port = int(argv[argv.index("--port") + 1])
                assert free(port), f"port {port} of the README is in use on this machine"
                background.append(subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.DEVNULL))
                deadline = time.monotonic() + 600
                while free(port):
                    assert background[-1].poll() is None and time.monotonic() < deadline, f"{command} did not start"
                    time.sleep(0.5)
                ran.append(command)
                continue
            result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
            assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            ran.append(command)
    finally:
        for process in background:
            process.terminate()
            process.wait(30)
    assert (tmp_path / "curves.png").is_file() and (tmp_path / "my.toml").is_file()
    assert (tmp_path / "core.v").is_file() and (tmp_path / "run.vcd").is_file()
    assert len(ran) >= len(use_commands()) - len(NOT_HERE)
