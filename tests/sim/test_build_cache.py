"""The build cache of ``nfloop.sim.toolchain``: a damaged artifact (truncated, overwritten, its
checksum lost) is built again with a one-line notice instead of being run, and Verilator builds work
in a cache whose path has a blank (``NFLOOP_CACHE="/tmp/a b"``).

The Verilator tests build the smallest design there is, an 8-bit counter with a ten-line C++ main
(about 25 s, almost all of it Verilator's run-time library), once into a cache with a blank in its
path, and once more after truncating the cached executable.
"""

from __future__ import annotations

import subprocess

import pytest
from nfloop.sim import toolchain
from nfloop.sim.toolchain import STAMP, cached_build, verilator_build

# -- the cache's bookkeeping, with a stand-in build ------------------------------------------------


class Builds:
    """A build function that writes ``tool`` and ``data`` and counts its calls."""

    def __init__(self):
        self.count = 0

    def __call__(self, work):
        self.count += 1
        (work / "tool").write_bytes(b"\x7fELF" + bytes(range(256)) * 64)
        (work / "data").write_text("not checked\n")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NFLOOP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_an_intact_build_is_reused_and_records_its_checksums(cache, capsys):
    build = Builds()
    folder, built = cached_build("test", "key", build, artifacts=("tool",))
    assert built and build.count == 1 and (folder / STAMP).is_file()
    assert (folder / toolchain.CHECKSUMS).read_text().endswith("  tool\n")
    assert cached_build("test", "key", build, artifacts=("tool",)) == (folder, False)
    assert build.count == 1 and capsys.readouterr().err == ""


def truncate(path):
    path.write_bytes(path.read_bytes()[:100])


def overwrite(path):
    """The same length, other bytes: only a checksum tells."""
    path.write_bytes(bytes(len(path.read_bytes())))


def remove(path):
    path.unlink()


def lose_record(path):
    (path.parent / toolchain.CHECKSUMS).unlink()


DAMAGE = {
    truncate: "has a damaged tool",
    overwrite: "has a damaged tool",
    remove: "has lost tool",
    lose_record: "has no checksums of its files",
}


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__)
def test_a_damaged_build_is_built_again_with_a_notice(damage, cache, capsys):
    build = Builds()
    folder, _ = cached_build("test", "key", build, artifacts=("tool",))
    good = (folder / "tool").read_bytes()
    damage(folder / "tool")
    assert cached_build("test", "key", build, artifacts=("tool",)) == (folder, True)
    assert build.count == 2 and (folder / "tool").read_bytes() == good
    notice = capsys.readouterr().err
    assert notice.count("\n") == 1 and notice.startswith(f"nfloop: the cached build {folder} {DAMAGE[damage]}")
    assert notice.rstrip().endswith("building it again")
    assert cached_build("test", "key", build, artifacts=("tool",)) == (folder, False)


def test_files_that_are_not_artifacts_are_not_checked(cache):
    build = Builds()
    folder, _ = cached_build("test", "key", build, artifacts=("tool",))
    (folder / "data").write_text("changed\n")
    assert cached_build("test", "key", build, artifacts=("tool",)) == (folder, False)


def test_a_build_without_its_artifact_fails(cache):
    with pytest.raises(toolchain.ToolchainError, match="did not make missing"):
        cached_build("test", "key", Builds(), artifacts=("missing",))


# -- real Verilator builds -----------------------------------------------------------------------

COUNTER = """module counter(input clk, output reg [7:0] q);
  initial q = 0;
  always @(posedge clk) q <= q + 1;
endmodule
"""

MAIN = """#include "Vcounter.h"
#include "verilated.h"
#include <cstdio>
int main() {
    Vcounter top;
    for (int i = 0; i < COUNT; i++) { top.clk = 0; top.eval(); top.clk = 1; top.eval(); }
    std::printf("%d\\n", (int)top.q);
    return 0;
}
"""


@pytest.fixture(scope="module")
def spaced(tmp_path_factory):
    """A cache and a C++ source in folders with blanks in their paths, and the counter built there."""
    folder = tmp_path_factory.mktemp("build cache") / "a b"
    folder.mkdir()
    source = folder / "counter main.cpp"
    source.write_text(MAIN)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NFLOOP_CACHE", str(folder / "nfloop cache"))
        executable = build_counter(source)
    return folder, source, executable


def build_counter(source):
    return verilator_build(COUNTER, "counter", source, {"COUNT": 5}, "counter")


def run(executable) -> str:
    return subprocess.run([str(executable)], capture_output=True, text=True, check=True, timeout=60).stdout


@pytest.mark.slow
def test_verilator_builds_in_a_cache_path_with_blanks(spaced):
    folder, _, executable = spaced
    assert executable.is_relative_to(folder / "nfloop cache") and " " in str(executable.parent)
    assert run(executable) == "5\n"


@pytest.mark.slow
def test_a_truncated_cached_executable_is_built_again(spaced, monkeypatch, capfd):
    folder, source, executable = spaced
    monkeypatch.setenv("NFLOOP_CACHE", str(folder / "nfloop cache"))
    assert build_counter(source) == executable and capfd.readouterr().err == ""    # reused as it is
    truncate(executable)
    assert build_counter(source) == executable
    notice = capfd.readouterr().err
    assert notice.count("\n") == 1 and "has a damaged counter" in notice and "building it again" in notice
    assert run(executable) == "5\n"


def test_a_cocotb_build_in_a_cache_path_with_blanks_builds_where_make_can(tmp_path, monkeypatch):
    """The cocotb build goes where make can build (no blank in the path), its run-time objects with it,
    and its products come back into the cache folder."""
    from nfloop.sim import cocotb as cocotb_build
    work, runtime = tmp_path / "cache with blanks" / "build", tmp_path / "cache with blanks" / "runtime"
    work.mkdir(parents=True)
    runtime.mkdir()
    (runtime / "verilated.o").write_bytes(b"object")
    seen = {}

    def build_in(place, verilog, config, runtime_used, export_runtime):
        seen.update(place=place, runtime=runtime_used)
        assert " " not in str(place) and (runtime_used / "verilated.o").read_bytes() == b"object"
        (place / "nfloop_core").write_bytes(b"simulator")

    monkeypatch.setattr(cocotb_build, "_build_in", build_in)
    cocotb_build._build(work, "module m; endmodule", None, runtime)
    assert seen["place"] != work and " " not in str(seen["runtime"])
    assert (work / "nfloop_core").read_bytes() == b"simulator" and not (work / "runtime").exists()
    assert not seen["place"].exists(), "the temporary build folder was left behind"
