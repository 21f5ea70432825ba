"""hdl/activation.py against nfloop.model.fixed.activate / apply_window."""

import numpy as np
import pytest
from nfloop.hdl.activation import ActivationUnit, WindowBit, WindowUnit
from nfloop.model.config import Activation, ActivationKind, Layer, LearnerConfig, Rounding, Window
from nfloop.model.fixed import LayerPlan, activate, apply_window
from support.sim import edge_codes, random_codes, run_comb

ACTIVATIONS = [
    Activation(ActivationKind.IDENTITY), Activation(ActivationKind.RELU),
    Activation(ActivationKind.LEAKY_RELU, slope_shift=3), Activation(ActivationKind.HARDTANH, lo=-0.5, hi=1.5),
    Activation(ActivationKind.SIGN, scale=0.5),
    Activation(ActivationKind.STAIRCASE, thresholds=(-1.0, 0.0, 1.0)),
    Activation(ActivationKind.STAIRCASE, thresholds=(-0.75, -0.25, 0.25, 0.75), scale=0.25),
]
WINDOWS = [None, Window(), Window(derivative=True), Window(lo=-0.5), Window(hi=0.25), Window(lo=-1.25, hi=1.25)]


def config_for(act, window=None, rounding=Rounding.HALF_UP):
    return LearnerConfig(inputs=3, layers=(Layer(2, act, window=window),), forward_rounding=rounding)


def plan_codes(plan):
    return [c for c in (plan.clip_lo, plan.clip_hi, plan.window_lo, plan.window_hi, *plan.thresholds)
            if c is not None]


@pytest.mark.parametrize("rounding", [Rounding.FLOOR, Rounding.HALF_UP], ids=lambda r: r.value)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda a: f"{a.kind.value}-{len(a.thresholds)}")
def test_activation_matches_model(act, rounding, rng):
    cfg = config_for(act, rounding=rounding)
    plan = LayerPlan.build(cfg, 0)
    fmt = cfg.formats.activation
    z = np.concatenate([edge_codes(fmt, plan_codes(plan)), random_codes(fmt, 300, rng)])
    got = run_comb(ActivationUnit(cfg, 0), {"z": z}, ["a"])["a"]
    np.testing.assert_array_equal(got, activate(z, plan, rounding))


@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: w.to_toml() if w else "auto")
@pytest.mark.parametrize("act", ACTIVATIONS[:5], ids=lambda a: a.kind.value)
def test_window_matches_model(act, window, rng):
    cfg = config_for(act, window)
    plan = LayerPlan.build(cfg, 0)
    f = cfg.formats
    z = np.concatenate([edge_codes(f.activation, plan_codes(plan)), random_codes(f.activation, 200, rng)])
    g = random_codes(f.error, len(z), rng)
    g[:4] = [f.error.min_code, f.error.max_code, -1, 1]
    got = run_comb(WindowUnit(cfg, 0), {"g": g, "z": z}, ["delta"])["delta"]
    np.testing.assert_array_equal(got, apply_window(g, z, plan, cfg.forward_rounding))


def test_the_unit_tests_cover_every_activation_kind():
    assert {a.kind for a in ACTIVATIONS} == set(ActivationKind)


@pytest.mark.parametrize("unit", [ActivationUnit, WindowBit])
def test_an_unknown_activation_is_refused_by_the_gateware(unit, monkeypatch):
    import dataclasses

    from amaranth.hdl import Fragment
    config = config_for(Activation(ActivationKind.RELU), Window(derivative=True))
    real = LayerPlan.build
    monkeypatch.setattr(LayerPlan, "build", classmethod(
        lambda cls, cfg, index: dataclasses.replace(real(cfg, index), kind="swish")))
    with pytest.raises(ValueError, match="no activation 'swish'"):
        Fragment.get(unit(config, 0), None)
