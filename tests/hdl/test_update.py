"""hdl/update.py against the update path of nfloop.model.fixed."""

import numpy as np
import pytest
from amaranth.hdl import signed
from nfloop.hdl.update import UpdateUnit
from nfloop.model.config import AdaptiveGain, Formats, Layer, LearnerConfig, QFormat, Rounding
from nfloop.model.fixed import MIX, SITE_UPDATE, LayerPlan, leak, momentum, saturate, shift_round, stochastic_bits
from support.sim import random_codes, run_pipelined

CASES = {
    # name: (gain_shift, leak_shift, momentum_shift, batch_size, rounding, weight_acc)
    "plain-halfup": (6, None, None, 1, Rounding.HALF_UP, (32, 28)),
    "right-floor": (14, None, None, 1, Rounding.FLOOR, (24, 20)),
    "stochastic": (12, None, None, 1, Rounding.STOCHASTIC, (24, 20)),
    "leak-momentum": (8, 10, 3, 1, Rounding.HALF_UP, (32, 28)),
    "leak-momentum-stochastic": (10, 9, 2, 1, Rounding.STOCHASTIC, (24, 20)),
    "batch": (9, None, None, 4, Rounding.HALF_UP, (24, 20)),
    "batch-all-stochastic": (11, 12, 4, 3, Rounding.STOCHASTIC, (24, 20)),
    "huge-gain-saturates": (-8, None, None, 1, Rounding.FLOOR, (20, 16)),
}
#: adaptive gain: each update at a random offset of the rule's range
ADAPTIVE = {
    "adaptive-halfup": (6, None, None, 1, Rounding.HALF_UP, (32, 28), AdaptiveGain(up=2, down=3)),
    "adaptive-stochastic-momentum-batch": (10, None, 3, 2, Rounding.STOCHASTIC, (24, 20),
                                           AdaptiveGain(up=1, down=4)),
    "adaptive-left-shift-saturates": (-6, None, None, 1, Rounding.FLOOR, (20, 16), AdaptiveGain(up=2, down=1)),
}
CASES = {name: case + (None,) for name, case in CASES.items()} | ADAPTIVE


def reference(cfg, plan, product, w, v, s, k, lfsr, apply, offset):
    """One weight's update computed with the model's own functions."""
    acc, rnd = cfg.formats.weight_acc, cfg.rounding
    shift = plan.update_shift + offset
    rand = stochastic_bits(lfsr, k, SITE_UPDATE, shift) if rnd is Rounding.STOCHASTIC else None
    u = saturate(shift_round(product, shift, rnd, rand), acc)
    total = saturate(s + u, acc) if cfg.batch_size > 1 else u
    v_new, s_new, w_new = v, np.where(apply, 0, total), w
    change = total
    if plan.momentum_shift:
        v_next = momentum(v, total, plan.momentum_shift, acc, rnd, lfsr, k)
        v_new = np.where(apply, v_next, v)
        change = v_next
    if plan.leak_shift:
        change = change - leak(w, plan.leak_shift, rnd, lfsr, k)
    w_new = np.where(apply, saturate(w + change, acc), w)
    return w_new, v_new, s_new


@pytest.mark.parametrize("case", CASES)
def test_update_matches_model(case, rng):
    """A second layer without momentum or leak and with its own gain shares every unit."""
    gain, leak_shift, mom, batch, rounding, acc_fmt, adaptive = CASES[case]
    acc = QFormat(*acc_fmt)
    f = Formats(weight=QFormat(16, acc.int_bits and 16 - acc.int_bits), weight_acc=acc)
    cfg = LearnerConfig(inputs=5, layers=(Layer(3, gain_shift=gain, leak_shift=leak_shift, momentum_shift=mom),
                                          Layer(2, gain_shift=gain + 3)),
                        formats=f, batch_size=batch, rounding=rounding, adaptive_gain=adaptive)
    n = 400
    layer = rng.integers(0, 2, n)
    layer[:40] = 0
    plans = [LayerPlan.build(cfg, l) for l in range(2)]
    delta = random_codes(f.error, n, rng)
    a = random_codes(f.input, n, rng)
    a[:20] = plans[0].one_code  # the bias column
    delta[:4] = [f.error.min_code, f.error.max_code, 0, -1]
    product = delta * a
    w, v, s = (random_codes(acc, n, rng) for _ in range(3))
    w[:6] = [acc.min_code, acc.max_code, acc.min_code + 1, acc.max_code - 1, 0, -1]
    k = rng.integers(0, 3 * 6, n)          # flat indices of the 3x6 layer
    lfsr = rng.integers(1, 2**32, n)
    apply = rng.integers(0, 2, n) if batch > 1 else np.ones(n, dtype=np.int64)
    dut = UpdateUnit(cfg, signed(f.error.bits + f.input.bits + 2))
    vectors = {"product": product, "w": w, "layer": layer}
    outputs = ["w_new"]
    if mom:
        v[layer == 1] = 0                  # a layer without momentum keeps its velocity at zero
        vectors["v"] = v
        outputs.append("v_new")
    if batch > 1:
        vectors.update(s=s, apply=apply)
        outputs.append("s_new")
    if rounding is Rounding.STOCHASTIC:
        vectors.update(mix=(3 * k * MIX) & 0xFFFFFFFF, lfsr=lfsr)
    offset = np.zeros(n, dtype=np.int64)
    if adaptive:
        offset = rng.integers(-adaptive.up, adaptive.down + 1, n)
        vectors["offset"] = offset
    got = run_pipelined(dut, vectors, outputs, dut.latency)
    w_ref, v_ref, s_ref = [], [], []
    for i in range(n):
        wi, vi, si = reference(cfg, plans[layer[i]], product[i], w[i], v[i], s[i], k[i], int(lfsr[i]), apply[i],
                               int(offset[i]))
        w_ref.append(wi), v_ref.append(vi), s_ref.append(si)
    np.testing.assert_array_equal(got["w_new"], w_ref)
    if mom:
        np.testing.assert_array_equal(got["v_new"], v_ref)
    if batch > 1:
        np.testing.assert_array_equal(got["s_new"], s_ref)
    if case in ("huge-gain-saturates", "adaptive-left-shift-saturates"):
        assert {acc.min_code, acc.max_code} <= set(got["w_new"].tolist())
