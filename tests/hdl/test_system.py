"""System tests: the Verilog core in Verilator, driven by cocotb, bit-exact with the fixed-point model.

Each case builds ``core_verilog(config, lanes)`` once (cached by Verilog text
and lanes under ``cache_dir()/cocotb``, see ``nfloop.sim.cocotb``) and
runs ``cocotb_system.py`` on it: a few hundred training steps of seeded random
samples, every step's prediction and error compared with
:class:`~nfloop.model.fixed.FixedLearner`, and the whole weight memory read back
and compared at checkpoints. Some cases also stall the streams, and write new
weights through the host port and pulse ``clear`` mid-run (the model restarts
from those weights, which is what ``clear`` promises).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from nfloop.hdl import sequencer
from nfloop.hdl.layout import CoreLayout
from nfloop.model.config import (
    Activation,
    ActivationKind,
    AdaptiveGain,
    Formats,
    Layer,
    LearnerConfig,
    QFormat,
    Rounding,
    Window,
    load_config,
    save_config,
)
from nfloop.sim.cocotb import build_core, runner
from nfloop.sim.verilog import TOP_NAME

HERE = Path(__file__).parent
STEPS = 400
CHECKPOINT_EVERY = 100

IDENTITY = Activation(ActivationKind.IDENTITY)
RELU = Activation(ActivationKind.RELU)
FLOOR, HALF_UP, STOCHASTIC = Rounding.FLOOR, Rounding.HALF_UP, Rounding.STOCHASTIC
ALL = Window()
DERIV = Window(derivative=True)


def leaky(shift=3):
    return Activation(ActivationKind.LEAKY_RELU, slope_shift=shift)


def hardtanh(lo=-1.0, hi=1.0):
    return Activation(ActivationKind.HARDTANH, lo=lo, hi=hi)


def sign(scale=1.0):
    return Activation(ActivationKind.SIGN, scale=scale)


def staircase(thresholds=(-1.0, 0.0, 1.0), scale=0.25):
    return Activation(ActivationKind.STAIRCASE, thresholds=thresholds, scale=scale)


@dataclass(frozen=True)
class Case:
    name: str
    config: LearnerConfig
    lanes: int
    seed: int
    stalls: bool = False      # random input gaps and output back-pressure
    poke: bool = False        # host writes new weights and pulses clear at the first full checkpoint

    @property
    def id(self) -> str:
        return f"{self.name}-P{self.lanes}-seed{self.seed}"


def cfg(inputs, *layers, **kw) -> LearnerConfig:
    return LearnerConfig(inputs=inputs, layers=tuple(layers), **kw)


# (auto window: relu -> lo only, hardtanh / sign / staircase -> [lo, hi], identity / leaky -> all.
# With the default formats the update A * delta * a is exact in weight_acc for gain_shift <= 12 in
# layer 0 and <= 6 behind it: larger shifts are what makes the update rounding matter.)
CASES = [
    Case("identity-1L-floor", cfg(4, Layer(3, IDENTITY, gain_shift=15),
                                  rounding=FLOOR, forward_rounding=FLOOR), 1, 11),
    Case("relu-2L-momentum", cfg(6, Layer(8, RELU, gain_shift=4, momentum_shift=3), Layer(3, gain_shift=9),
                                 rounding=HALF_UP, forward_rounding=HALF_UP, init_seed=3), 2, 12, poke=True),
    Case("leaky-2L-lo-window-stochastic-batch4",
         cfg(5, Layer(12, leaky(2), window=Window(lo=-1.0), gain_shift=16, leak_shift=10),
             Layer(4, window=DERIV, gain_shift=8),
             batch_size=4, rounding=STOCHASTIC, forward_rounding=FLOOR, lfsr_seed=0xACE1, init_seed=4), 4, 13,
         stalls=True),
    Case("hardtanh-3L-leak",
         cfg(16, Layer(16, hardtanh(), gain_shift=6, leak_shift=8), Layer(12, RELU, window=DERIV, gain_shift=10),
             Layer(3, gain_shift=6), rounding=HALF_UP, forward_rounding=FLOOR, init_seed=5), 8, 14, poke=True),
    Case("sign-2L-hi-window-batch2",
         cfg(3, Layer(6, sign(0.5), gain_shift=4), Layer(2, window=Window(hi=2.0), gain_shift=12),
             batch_size=2, rounding=FLOOR, forward_rounding=HALF_UP, init_seed=6), 1, 15, stalls=True),
    Case("staircase-2L-stochastic-momentum",
         cfg(4, Layer(7, staircase(), gain_shift=5),
             Layer(2, hardtanh(-2.0, 2.0), window=DERIV, gain_shift=7, momentum_shift=2),
             rounding=STOCHASTIC, forward_rounding=HALF_UP, lfsr_seed=0x1234567, init_seed=7), 2, 16, poke=True),
    Case("derivative-3L-momentum-leak-stochastic-batch3",
         cfg(8, Layer(10, leaky(3), window=DERIV, gain_shift=14, momentum_shift=2),
             Layer(6, hardtanh(), window=DERIV, gain_shift=6, leak_shift=9, momentum_shift=4),
             Layer(4, window=DERIV, gain_shift=9),
             batch_size=3, rounding=STOCHASTIC, forward_rounding=FLOOR, lfsr_seed=0xBEEF, init_seed=8), 4, 17,
         stalls=True, poke=True),
    Case("narrow-formats-2L-range-window",
         cfg(5, Layer(5, RELU, window=Window(lo=-0.25, hi=4.0), gain_shift=3),
             Layer(2, leaky(4), window=DERIV, gain_shift=4),
             formats=Formats(input=QFormat(10, 6), activation=QFormat(12, 7), error=QFormat(12, 9),
                             weight=QFormat(12, 9), weight_acc=QFormat(24, 21)),
             rounding=HALF_UP, forward_rounding=FLOOR, init_seed=9), 2, 18),
    Case("left-shift-gain-saturating-2L",
         # weight_acc has few fraction bits, so the gain shifts the update LEFT (update_shift -1) and
         # updates can exceed weight_acc: the saturating update path
         cfg(4, Layer(6, hardtanh(-2.0, 2.0), gain_shift=-1, leak_shift=4),
             Layer(2, gain_shift=-7),
             formats=Formats(weight_acc=QFormat(20, 16)),
             rounding=FLOOR, forward_rounding=HALF_UP, init_seed=10), 1, 19, stalls=True),
    Case("wide-2L-all-window-momentum-batch8",
         cfg(16, Layer(16, RELU, window=ALL, gain_shift=6, momentum_shift=5),
             Layer(8, gain_shift=6, momentum_shift=5),
             batch_size=8, rounding=HALF_UP, forward_rounding=HALF_UP, init_seed=11), 8, 20),
    Case("relu-1L-lanes-exceed-outputs",
         cfg(2, Layer(2, RELU, window=Window(lo=-1.0), gain_shift=17),
             rounding=STOCHASTIC, forward_rounding=FLOOR, lfsr_seed=99, init_seed=12), 4, 21, poke=True),
    Case("staircase-sign-3L-hi-window-leak",
         cfg(6, Layer(9, staircase((-1.5, -0.5, 0.5, 1.5), 0.5), gain_shift=5, leak_shift=12),
             Layer(5, sign(0.25), window=Window(hi=0.5), gain_shift=5),
             Layer(2, gain_shift=8),
             rounding=HALF_UP, forward_rounding=HALF_UP, init_seed=13), 2, 22),
    Case("leaky-1L-wide-out-momentum-leak-batch2",
         cfg(12, Layer(16, leaky(4), gain_shift=13, momentum_shift=3, leak_shift=7),
             batch_size=2, rounding=FLOOR, forward_rounding=FLOOR, init_seed=14), 8, 23),
    Case("tiny-1-1-1-sign",
         # every vector of length one, lanes above every layer's width
         cfg(1, Layer(1, sign(0.5), gain_shift=3), Layer(1, RELU, window=Window(lo=-1.0), gain_shift=3),
             rounding=HALF_UP, forward_rounding=FLOOR, init_seed=16), 2, 25),
    Case("extreme-shifts-stochastic",
         # stochastic rounding at its 32-bit limit (update_shift 32 in layer 1), leak and momentum
         # at both ends of their range
         cfg(3, Layer(4, RELU, gain_shift=20, leak_shift=32, momentum_shift=1),
             Layer(2, gain_shift=38, leak_shift=1, momentum_shift=32),
             rounding=STOCHASTIC, forward_rounding=HALF_UP, lfsr_seed=0xFFFFFFFF, init_seed=17), 1, 26),
    Case("odd-formats-error-rounds",
         # input wider than activation (sample payload = input width), error with fewer fraction
         # bits than activation (the output error is rounded), odd widths everywhere
         cfg(3, Layer(5, hardtanh(), gain_shift=12), Layer(3, leaky(1), window=Window(lo=-2.0, hi=2.0),
                                                           gain_shift=13),
             formats=Formats(input=QFormat(14, 8), activation=QFormat(12, 8), error=QFormat(10, 5),
                             weight=QFormat(10, 7), weight_acc=QFormat(26, 23)),
             rounding=HALF_UP, forward_rounding=HALF_UP, init_seed=18), 4, 27, stalls=True),
    Case("wide-lanes-2L-relu-32",
         # more lanes than weights in a row: groups of columns, and columns over groups backward
         cfg(12, Layer(10, RELU, gain_shift=5), Layer(3, gain_shift=7),
             rounding=HALF_UP, forward_rounding=HALF_UP, init_seed=19), 32, 28, stalls=True),
    Case("wide-lanes-3L-stochastic-momentum-64",
         cfg(9, Layer(11, leaky(2), window=DERIV, gain_shift=13, momentum_shift=3),
             Layer(7, staircase(), gain_shift=5, leak_shift=10), Layer(2, gain_shift=8),
             batch_size=2, rounding=STOCHASTIC, forward_rounding=FLOOR, lfsr_seed=0xC0FFEE, init_seed=20), 64, 29,
         poke=True),
    Case("digits-shape-16",
         cfg(16, Layer(16, RELU, window=Window(lo=-0.5), gain_shift=5), Layer(10, gain_shift=7),
             rounding=HALF_UP, forward_rounding=HALF_UP, init_seed=21), 16, 30),
    Case("residual-3L-relu-hardtanh-momentum",
         # z = (W + I) a + b: the diagonal lanes add 1.0 to their weight, forward and backward
         cfg(8, Layer(8, RELU, gain_shift=5, residual=True),
             Layer(8, hardtanh(), gain_shift=6, momentum_shift=3, residual=True), Layer(3, gain_shift=7),
             rounding=HALF_UP, forward_rounding=FLOOR, init_seed=22), 4, 31, stalls=True),
    Case("residual-wide-lanes-stochastic-16",
         cfg(12, Layer(12, leaky(2), gain_shift=6, residual=True), Layer(12, staircase(), gain_shift=5, residual=True),
             Layer(4, gain_shift=7), rounding=STOCHASTIC, forward_rounding=HALF_UP, lfsr_seed=0x5EED,
             init_seed=23), 16, 32, poke=True),
    Case("adaptive-gain-3L-stochastic-batch-8",
         # the gains adapt every 4 steps; the poke writes a gain state through the host port
         cfg(6, Layer(9, RELU, gain_shift=5, momentum_shift=3), Layer(7, staircase(), gain_shift=4),
             Layer(3, gain_shift=6), batch_size=2, rounding=STOCHASTIC, forward_rounding=FLOOR, lfsr_seed=0xA0A0,
             init_seed=24, adaptive_gain=AdaptiveGain(period=4, up=2, down=3)), 8, 33, stalls=True, poke=True),
    Case("adaptive-gain-every-step-2L-1",
         cfg(5, Layer(4, hardtanh(), gain_shift=2), Layer(2, gain_shift=3), rounding=HALF_UP, forward_rounding=HALF_UP,
             init_seed=25, adaptive_gain=AdaptiveGain(period=1, up=1, down=4)), 1, 34),
    Case("adaptive-gain-wide-64",
         cfg(12, Layer(10, leaky(2), gain_shift=6), Layer(10, gain_shift=7), rounding=FLOOR, forward_rounding=FLOOR,
             init_seed=26, adaptive_gain=AdaptiveGain(period=16, up=1, down=2)), 64, 35, poke=True),
    Case("hardtanh-2L-single-output",
         cfg(16, Layer(16, hardtanh(-0.5, 1.5), gain_shift=6, momentum_shift=4), Layer(1, gain_shift=6),
             rounding=HALF_UP, forward_rounding=FLOOR, init_seed=15), 1, 24, stalls=True),
]
CASES_BY_NAME = {case.name: case for case in CASES}
#: The cases of the quick run, each a few seconds: between them every activation, rounding and update
#: path, batches, residual layers and adaptive gain, stalls and host pokes. --full runs every case.
QUICK = ("identity-1L-floor", "relu-2L-momentum", "leaky-2L-lo-window-stochastic-batch4", "hardtanh-3L-leak",
         "sign-2L-hi-window-batch2", "staircase-2L-stochastic-momentum", "left-shift-gain-saturating-2L",
         "residual-3L-relu-hardtanh-momentum", "adaptive-gain-every-step-2L-1")


def stimulus(config: LearnerConfig, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs over 90% of formats.input's range (some at its min/max codes); targets within a few
    units: a random linear teacher of the inputs plus noise, clipped to +-3."""
    rng = np.random.default_rng(zlib.crc32(f"{config!r}/{seed}".encode()))
    f = config.formats
    lo, hi = int(f.input.min_code * 0.9), int(f.input.max_code * 0.9)
    xs = rng.integers(lo, hi + 1, (steps, config.inputs), dtype=np.int64)
    extreme = rng.random(xs.shape) < 0.06
    xs[extreme] = rng.choice([f.input.min_code, f.input.max_code], int(extreme.sum()))
    for k, row in zip(range(2, steps, 37), ("min", "max", "alt")):
        xs[k] = {"min": f.input.min_code, "max": f.input.max_code}.get(
            row, np.where(np.arange(config.inputs) % 2, f.input.max_code, f.input.min_code))
    x_real = xs * f.input.lsb
    teacher = rng.uniform(-1, 1, (config.outputs, config.inputs)) / np.sqrt(config.inputs)
    y_real = np.clip(x_real @ teacher.T + rng.normal(0, 0.3, (steps, config.outputs)), -3.0, 3.0)
    ys = np.clip(np.round(y_real * (1 << f.activation.frac)), f.activation.min_code, f.activation.max_code)
    return xs, ys.astype(np.int64)


def checkpoints(steps: int) -> list[int]:
    """After step 1, every CHECKPOINT_EVERY steps and at the end."""
    return sorted({1, *range(CHECKPOINT_EVERY, steps, CHECKPOINT_EVERY), steps})


def run_bench(case: Case, tmp_path: Path, monkeypatch, *, steps: int = STEPS, checkpoint_list=None,
              model_config: LearnerConfig | None = None, corrupt=None) -> tuple[dict | None, str | None]:
    """Run the cocotb bench; (report, failure) with failure None when the cocotb test passed."""
    build = build_core(case.config, case.lanes)
    config_path = tmp_path / "config.toml"
    save_config(case.config, config_path)
    assert load_config(config_path) == case.config, "the config does not survive its TOML round trip"
    xs, ys = stimulus(case.config, steps, case.seed)
    points = checkpoint_list or checkpoints(steps)
    pokes = [points[1]] if case.poke and len(points) > 2 else []
    np.savez(tmp_path / "stimulus.npz", xs=xs, ys=ys, checkpoints=np.array(points), pokes=np.array(pokes))
    env = {"NFLOOP_CONFIG": str(config_path), "NFLOOP_STIMULUS": str(tmp_path / "stimulus.npz"),
           "NFLOOP_REPORT": str(tmp_path / "report.json"), "NFLOOP_SEED": str(case.seed),
           "NFLOOP_STALLS": "1" if case.stalls else "0"}
    if model_config is not None:
        save_config(model_config, tmp_path / "model.toml")
        env["NFLOOP_MODEL_CONFIG"] = str(tmp_path / "model.toml")
    if corrupt is not None:
        env["NFLOOP_CORRUPT"] = ",".join(str(v) for v in corrupt)
    monkeypatch.syspath_prepend(str(HERE))       # the cocotb process imports cocotb_system from here
    log = tmp_path / "sim.log"
    failure = None
    try:
        runner().test(test_module="cocotb_system", hdl_toplevel=TOP_NAME, hdl_toplevel_lang="verilog",
                      build_dir=build.directory, test_dir=tmp_path, extra_env=env, log_file=log)
    except SystemExit as exc:                  # how the runner reports a failed cocotb test under pytest
        failure = f"cocotb exited with {exc.code}"
    report_path = tmp_path / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else None
    if report is not None:
        report["build"] = {"dir": str(build.directory), "built": build.built, "seconds": build.seconds}
        report_path.write_text(json.dumps(report, indent=1))
    if failure is not None:
        failure += "\n" + _log_tail(log)
    return report, failure


def _log_tail(log: Path, lines: int = 40) -> str:
    if not log.is_file():
        return f"(no log at {log})"
    return f"--- {log} (tail) ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@pytest.mark.parametrize("case", [pytest.param(case, marks=() if case.name in QUICK else pytest.mark.slow)
                                  for case in CASES], ids=[case.id for case in CASES])
def test_core_matches_model(case, tmp_path, monkeypatch):
    report, failure = run_bench(case, tmp_path, monkeypatch)
    if report and report.get("mismatch"):
        m = report["mismatch"]
        pytest.fail(f"{case.id} (lanes {case.lanes}): step {m['step']}: {m['what']} of layer {m['layer']} "
                    f"at index {m['index']}: hardware {m['hw']}, model {m['model']}\n"
                    f"config: {case.config!r}\nrun dir: {tmp_path}", pytrace=False)
    assert failure is None, f"{case.id}: {failure}"
    assert report is not None and report["steps"] == STEPS, report
    # the core's cycle counter against the schedule the sequencer documents: exact, stalls or not
    # (a step starts only with its sample and the previous results taken, and then never waits)
    per_step = sum(cycles for _, cycles in sequencer.schedule(CoreLayout(case.config, case.lanes)))
    assert per_step == sequencer.step_cycles(CoreLayout(case.config, case.lanes))
    expected = per_step * report["steps_since_clear"]
    assert report["core_cycles"] == expected, \
        (f"{case.id}: the core counted {report['core_cycles']} cycles in {report['steps_since_clear']} "
         f"steps, the schedule says {per_step} per step")
    print(f"{case.id}: {report['cycles']} cycles in {report['wall_s']:.2f} s "
          f"({report['cycles_per_s']:.0f} cycles/s), build {report['build']}")


def test_core_case_table_covers_the_features():
    """The case table keeps covering what the system tests promise."""
    configs = [c.config for c in CASES]
    assert len(CASES) >= 12 and len({c.id for c in CASES}) == len(CASES)
    assert {len(c.layers) for c in configs} >= {1, 2, 3}
    assert {l.activation.kind for c in configs for l in c.layers} == set(ActivationKind)
    windows = [l.window for c in configs for l in c.layers]
    assert any(w.derivative for w in windows) and any(w == ALL for w in windows)
    assert any(w.lo is not None and w.hi is not None for w in windows)
    assert any(w.lo is not None and w.hi is None for w in windows)
    assert any(w.lo is None and w.hi is not None for w in windows)
    assert {c.rounding for c in configs} == set(Rounding)
    # every update rounding also where the gain shift itself discards bits (update_shift > 0);
    # with the default formats that takes gain_shift > 12 in layer 0 and > 6 behind it
    assert {c.rounding for c in configs if any(c.update_shift(l) > 0 for l in range(len(c.layers)))} \
        == set(Rounding)
    assert any(c.update_shift(l) < 0 for c in configs for l in range(len(c.layers)))
    assert {c.forward_rounding for c in configs} == {FLOOR, HALF_UP}
    for name in ("leak_shift", "momentum_shift"):
        values = [getattr(l, name) for c in configs for l in c.layers]
        assert None in values and any(v is not None for v in values)
    assert {c.lanes for c in CASES} == {1, 2, 4, 8, 16, 32, 64}
    # residual layers, first and behind it (where the backward pass carries (W + I)^T delta)
    assert any(c.layers[0].residual for c in configs) and any(l.residual for c in configs for l in c.layers[1:])
    assert {c.batch_size == 1 for c in configs} == {True, False}
    # adaptive gain, in at least two configs (one adjusting every step)
    rules = [c.adaptive_gain for c in configs if c.adaptive_gain]
    assert len(rules) >= 2 and any(rule.period == 1 for rule in rules)
    assert all(max(c.sizes) <= 16 for c in configs)
    # the quick run's cases between them
    quick = [CASES_BY_NAME[name] for name in QUICK]
    assert {l.activation.kind for c in quick for l in c.config.layers} == set(ActivationKind)
    assert {c.config.rounding for c in quick} == set(Rounding)
    assert any(c.config.update_shift(l) < 0 for c in quick for l in range(len(c.config.layers)))
    assert {c.lanes for c in quick} >= {1, 2, 4, 8} and any(c.stalls for c in quick) and any(c.poke for c in quick)
    assert any(c.config.batch_size > 1 for c in quick) and any(c.config.adaptive_gain for c in quick)
    assert any(l.residual for c in quick for l in c.config.layers)
    for name in ("leak_shift", "momentum_shift"):
        assert any(getattr(l, name) is not None for c in quick for l in c.config.layers)


@pytest.mark.parametrize("how", ["model-gain", "corrupt-weight",
                                 pytest.param("model-gain-period", marks=pytest.mark.slow)])
def test_comparison_catches_a_wrong_model(how, tmp_path, monkeypatch):
    """The bench must fail, naming step, layer and index, when the model is not the hardware's."""
    if how == "model-gain":
        case = CASES_BY_NAME["identity-1L-floor"]
        layers = (replace(case.config.layers[0], gain_shift=case.config.layers[0].gain_shift + 1),)
        report, failure = run_bench(case, tmp_path, monkeypatch, steps=30, checkpoint_list=[30],
                                    model_config=replace(case.config, layers=layers))
        expected_what = {"prediction", "error"}
    elif how == "model-gain-period":
        # the model adapts its gains every 8 steps, the hardware every 4: the same updates through step 4,
        # a different gain state after it
        case = CASES_BY_NAME["adaptive-gain-3L-stochastic-batch-8"]
        model = replace(case.config, adaptive_gain=replace(case.config.adaptive_gain, period=8))
        report, failure = run_bench(replace(case, poke=False), tmp_path, monkeypatch, steps=5, checkpoint_list=[5],
                                    model_config=model)
        expected_what = {"adaptive gain state (offset, energy, previous)"}
    else:
        case = CASES_BY_NAME["relu-2L-momentum"]
        report, failure = run_bench(replace(case, poke=False), tmp_path, monkeypatch, steps=30,
                                    checkpoint_list=[10, 30], corrupt=(1, 2, 5))
        expected_what = {"weight"}
    assert failure is not None, "the bench passed against a wrong model"
    assert report is not None and report["mismatch"] is not None, failure
    m = report["mismatch"]
    assert m["what"] in expected_what and m["hw"] != m["model"], m
    if how == "model-gain":
        # step 0 runs on the same initial weights; the first update already differs
        assert m["step"] >= 1 and m["layer"] == 0 and 0 <= m["index"] < case.config.outputs, m
    elif how == "model-gain-period":
        # layer 0's energy: restarted after step 3 on the hardware, still summing in the model
        assert m["step"] == 4 and m["layer"] == 0 and m["index"] == [0, 1] and m["hw"] < m["model"], m
    else:
        assert (m["step"], m["layer"], m["index"]) == (9, 1, [2, 5]) and m["hw"] ^ m["model"] == 1, m
