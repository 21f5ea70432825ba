"""The fixed-point learner compiled with numba: the same integers as :mod:`.fixed`, faster.

:class:`~nfloop.model.fixed.FixedLearner` is the readable specification: one
numpy call per datapath operation, which costs Python overhead on every
operation of every sample. :class:`CompiledLearner` runs the same operations,
in the same order and on the same int64 codes, as one numba kernel over a
whole sample order, with no Python per sample. Its state lives in flat int64
buffers (all layers end to end); the per-layer arrays the numpy class exposes
(``weights``, ``views``, ``velocity``, ``batch_sum``, ``a_aug``) are views of
them, so everything that reads a ``FixedLearner`` reads this one unchanged.

The first call compiles the kernel and caches it on disk (numba
``cache=True``), so later processes start at once.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import BAND_SHIFT, ActivationKind, LearnerConfig, Rounding
from .fixed import GAIN_WORDS, MIX, SITE_LEAK, SITE_MOMENTUM, SITE_UPDATE, FixedLearner, StepRun, StepTrace

__all__ = ["CompiledLearner", "activation_code", "rounding_code"]

# Columns of the per-layer constant table (one int64 row per layer).
(N_IN, N_OUT, KIND, ONE, Z_SHIFT, BACK_SHIFT, SLOPE, CLIP_LO, CLIP_HI, STEP, WIN_LO, HAS_LO, WIN_HI, HAS_HI,
 DERIV, UPD_SHIFT, UPD_FITS, LEAK, MOM, VIEW_SHIFT, RESIDUAL, W_OFF, A_OFF, Z_OFF, THR_OFF, THR_N, COLUMNS) = range(27)
# Entries of the format table.
(ACT_LO, ACT_HI, ERR_LO, ERR_HI, ACC_LO, ACC_HI, ERR_SHIFT, FWD_RND, UPD_RND, BATCH, W_FRAC, PERIOD, GAIN_UP,
 GAIN_DOWN, FORMATS) = range(15)
# Entries of the state vector: step count, the LFSR, then each layer's LFSR state of its last update.
STEPS, LFSR = 0, 1
FLOOR, HALF_UP, STOCHASTIC = 0, 1, 2
IDENTITY, RELU, LEAKY_RELU, HARDTANH, STAIRS = 0, 1, 2, 3, 4
LFSR_MASK = 0x80200003


def rounding_code(rounding: Rounding) -> int:
    match rounding:
        case Rounding.FLOOR:
            return FLOOR
        case Rounding.HALF_UP:
            return HALF_UP
        case Rounding.STOCHASTIC:
            return STOCHASTIC
        case _:
            raise ValueError(f"the compiled engine has no rounding mode {rounding!r}")


def activation_code(kind: ActivationKind) -> int:
    match kind:
        case ActivationKind.IDENTITY:
            return IDENTITY
        case ActivationKind.RELU:
            return RELU
        case ActivationKind.LEAKY_RELU:
            return LEAKY_RELU
        case ActivationKind.HARDTANH:
            return HARDTANH
        case ActivationKind.SIGN | ActivationKind.STAIRCASE:
            return STAIRS
        case _:
            raise ValueError(f"the compiled engine has no activation {kind!r}")


# -- The kernel --------------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _shift_round(v, shift, rounding, rand):
    if shift <= 0:
        return v << -shift
    if rounding == FLOOR:
        return v >> shift
    if rounding == HALF_UP:
        return (v + (1 << (shift - 1))) >> shift
    return (v + rand) >> shift


@njit(cache=True, inline="always")
def _sat(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


@njit(cache=True, inline="always")
def _rand(mix, site, k, state, bits):
    return (mix[site, k] ^ state) >> (32 - bits)


@njit(cache=True)
def _mac_rows(view, a_aug, out):
    """out[j] = the exact sum of view[j, :] * a_aug, view's rows end to end."""
    cols = a_aug.shape[0]
    for j in range(view.shape[0] // cols):
        acc = 0
        for i in range(cols):
            acc += view[j * cols + i] * a_aug[i]
        out[j] = acc


@njit(cache=True)
def _activate_all(z, a, row, thr, rounding):
    """a = sigma(z) for one layer: a loop per kind."""
    kind = row[KIND]
    n = z.shape[0]
    if kind == IDENTITY:
        a[:] = z
    elif kind == RELU:
        for j in range(n):
            a[j] = z[j] if z[j] > 0 else 0
    elif kind == LEAKY_RELU:
        slope = row[SLOPE]
        for j in range(n):
            a[j] = z[j] if z[j] >= 0 else _shift_round(z[j], slope, rounding, 0)
    elif kind == HARDTANH:
        for j in range(n):
            a[j] = _sat(z[j], row[CLIP_LO], row[CLIP_HI])
    else:
        for j in range(n):
            total = 0
            for t in range(row[THR_OFF], row[THR_OFF] + row[THR_N]):
                total += 1 if z[j] > thr[t] else (-1 if z[j] < thr[t] else 0)
            a[j] = total * row[STEP]


@njit(cache=True, inline="always")
def _window(g, z, lay, l, rounding):
    if lay[l, DERIV]:
        kind = lay[l, KIND]
        if kind == IDENTITY:
            return g
        if kind == RELU:
            return g if z > 0 else 0
        if kind == LEAKY_RELU:
            return g if z > 0 else _shift_round(g, lay[l, SLOPE], rounding, 0)
        if kind == HARDTANH:
            return g if lay[l, CLIP_LO] < z < lay[l, CLIP_HI] else 0
        return 0
    if lay[l, HAS_LO] and z < lay[l, WIN_LO]:
        return 0
    if lay[l, HAS_HI] and z > lay[l, WIN_HI]:
        return 0
    return g


@njit(cache=True, nogil=True)
def train_kernel(xs, ys, order, lay, thr, fmt, mix, state, gain, w, view, vel, bsum, aaug, zbuf, abuf, gbuf, dbuf,
                 pred, err, err_sq, z_out, a_out, d_out, record):
    """Train on ``xs[order]``, ``ys[order]``: every step of :meth:`FixedLearner.step`, in its order.

    ``pred``/``err``/``err_sq`` receive each step's prediction, error and squared-error sum;
    with ``record``, ``z_out``/``a_out``/``d_out`` receive every layer's z, a and delta.
    """
    n_layers = lay.shape[0]
    last = n_layers - 1
    act_lo, act_hi, err_lo, err_hi = fmt[ACT_LO], fmt[ACT_HI], fmt[ERR_LO], fmt[ERR_HI]
    acc_lo, acc_hi = fmt[ACC_LO], fmt[ACC_HI]
    fwd, upd, batch = fmt[FWD_RND], fmt[UPD_RND], fmt[BATCH]
    sums = np.zeros(max(lay[:, N_IN].max(), lay[:, N_OUT].max()), dtype=np.int64)
    for s in range(order.shape[0]):
        sample = order[s]
        # forward
        a0 = lay[0, A_OFF]
        for i in range(lay[0, N_IN]):
            aaug[a0 + i] = xs[sample, i]
        for l in range(n_layers):
            n_in, n_out, w0, a0, z0 = lay[l, N_IN], lay[l, N_OUT], lay[l, W_OFF], lay[l, A_OFF], lay[l, Z_OFF]
            _mac_rows(view[w0:w0 + n_out * (n_in + 1)], aaug[a0:a0 + n_in + 1], sums)
            if lay[l, RESIDUAL]:                      # W + I
                for j in range(n_out):
                    sums[j] += aaug[a0 + j] << fmt[W_FRAC]
            z_shift = lay[l, Z_SHIFT]
            for j in range(n_out):
                zbuf[z0 + j] = _sat(_shift_round(sums[j], z_shift, fwd, 0), act_lo, act_hi)
            _activate_all(zbuf[z0:z0 + n_out], abuf[z0:z0 + n_out], lay[l], thr, fwd)
            if l < last:
                aaug[lay[l + 1, A_OFF]:lay[l + 1, A_OFF] + n_out] = abuf[z0:z0 + n_out]
        # error
        zl = lay[last, Z_OFF]
        sq = 0
        for j in range(lay[last, N_OUT]):
            e = _sat(_shift_round(ys[sample, j] - abuf[zl + j], fmt[ERR_SHIFT], fwd, 0), err_lo, err_hi)
            gbuf[zl + j] = e
            pred[s, j] = abuf[zl + j]
            err[s, j] = e
            sq += e * e
        err_sq[s] = sq
        # backward, with the weights before this step's update
        for l in range(last, -1, -1):
            z0 = lay[l, Z_OFF]
            for j in range(lay[l, N_OUT]):
                dbuf[z0 + j] = _window(gbuf[z0 + j], zbuf[z0 + j], lay, l, fwd)
            if l > 0:
                # W^T delta, row by row (rows of zero delta add nothing)
                n_in, w0, cols, back = lay[l, N_IN], lay[l, W_OFF], lay[l, N_IN] + 1, lay[l, BACK_SHIFT]
                below = lay[l - 1, Z_OFF]
                sums[:n_in] = 0
                for j in range(lay[l, N_OUT]):
                    d = dbuf[z0 + j]
                    if d != 0:
                        row = w0 + j * cols
                        for i in range(n_in):
                            sums[i] += d * view[row + i]
                if lay[l, RESIDUAL]:                  # (W + I)^T delta
                    for i in range(n_in):
                        sums[i] += dbuf[z0 + i] << fmt[W_FRAC]
                for i in range(n_in):
                    gbuf[below + i] = _sat(_shift_round(sums[i], back, fwd, 0), err_lo, err_hi)
        if record:
            for k in range(zbuf.shape[0]):
                z_out[s, k] = zbuf[k]
                a_out[s, k] = abuf[k]
                d_out[s, k] = dbuf[k]
        # The scaled update into the batch sums, last layer first, and at a batch end the
        # momentum, leak, saturation and weight view. Each weight's update depends only on its
        # own state, so both run in one pass; the LFSR state of a layer's last update is this one.
        ending = (state[STEPS] + 1) % batch == 0
        state[STEPS] += 1
        for l in range(last, -1, -1):
            if upd == STOCHASTIC:
                lfsr = state[LFSR]
                state[LFSR] = (lfsr >> 1) ^ (LFSR_MASK if lfsr & 1 else 0)
                state[LFSR + 1 + l] = state[LFSR]
            offset = gain[l * GAIN_WORDS] if fmt[PERIOD] else 0
            _update_layer(lay[l], offset, aaug, dbuf, mix, state[LFSR + 1 + l], w, view, vel, bsum,
                          upd, batch, ending, acc_lo, acc_hi)
        if fmt[PERIOD]:         # after the updates: a new gain applies from the next step on
            _adapt_gains(lay, dbuf, gain, fmt, state[STEPS] % fmt[PERIOD] == 0)


@njit(cache=True, inline="always")
def _adapt_gains(lay, dbuf, gain, fmt, ending):
    """Each layer's error energy and, at a period's end, its gain offset (fixed.error_energy, adapt_gain)."""
    for l in range(lay.shape[0]):
        z0, at = lay[l, Z_OFF], l * GAIN_WORDS
        energy = gain[at + 1]
        for j in range(lay[l, N_OUT]):
            energy += abs(dbuf[z0 + j])
        energy = min(energy, fmt[ACC_HI])
        if not ending:
            gain[at + 1] = energy
            continue
        previous = gain[at + 2]
        if previous >= 0:
            if energy > previous + (previous >> BAND_SHIFT):
                gain[at] = min(gain[at] + 1, fmt[GAIN_DOWN])
            elif energy < previous - (previous >> BAND_SHIFT):
                gain[at] = max(gain[at] - 1, -fmt[GAIN_UP])
        gain[at + 1], gain[at + 2] = 0, energy


@njit(cache=True)
def _online_update(w, view, a_aug, delta, left, right, half, lo, hi, view_shift):
    """w += round(delta a_aug^T), saturated, and its view; rows of zero delta keep their weights."""
    cols = a_aug.shape[0]
    for j in range(delta.shape[0]):
        d = delta[j] << left
        if d == 0:
            continue        # u = 0 in every rounding mode
        for i in range(cols):
            wk = _sat(w[j * cols + i] + ((d * a_aug[i] + half) >> right), lo, hi)
            w[j * cols + i] = wk
            view[j * cols + i] = wk >> view_shift


@njit(cache=True, inline="always")
def _update_layer(row, offset, aaug, dbuf, mix, lfsr, w, view, vel, bsum, upd, batch, ending, acc_lo, acc_hi):
    n_in, n_out, w0, a0, z0 = row[N_IN], row[N_OUT], row[W_OFF], row[A_OFF], row[Z_OFF]
    shift = row[UPD_SHIFT] + offset
    fits, mom, lk, vs = row[UPD_FITS], row[MOM], row[LEAK], row[VIEW_SHIFT]
    stochastic = upd == STOCHASTIC
    cols = n_in + 1
    if batch == 1 and not (stochastic or mom or lk) and fits:
        # the common case, online updates with no momentum or leak, as one straight loop:
        # a left shift (shift <= 0) goes on delta, exactly, as in scaled_update
        left, right = max(-shift, 0), max(shift, 0)
        half = (1 << (right - 1)) if upd == HALF_UP and right > 0 else 0
        size = n_out * cols
        _online_update(w[w0:w0 + size], view[w0:w0 + size], aaug[a0:a0 + cols], dbuf[z0:z0 + n_out],
                       left, right, half, acc_lo, acc_hi, vs)
        return
    for j in range(n_out):
        d = dbuf[z0 + j]
        for i in range(cols):
            k = w0 + j * cols + i
            if shift <= 0:
                u = (d << -shift) * aaug[a0 + i]
            else:
                r = _rand(mix, SITE_UPDATE, k, lfsr, shift) if stochastic else 0
                u = _shift_round(d * aaug[a0 + i], shift, upd, r)
            if not fits:
                u = _sat(u, acc_lo, acc_hi)
            if batch > 1:
                u = _sat(bsum[k] + u, acc_lo, acc_hi)
                if not ending:
                    bsum[k] = u
                    continue
                bsum[k] = 0
            change = u
            if mom:
                v = vel[k]
                r = _rand(mix, SITE_MOMENTUM, k, lfsr, mom) if stochastic else 0
                v = _sat(v - _shift_round(v, mom, upd, r) + change, acc_lo, acc_hi)
                vel[k] = v
                change = v
            wk = w[k]
            if lk:
                change -= _shift_round(wk, lk, upd, _rand(mix, SITE_LEAK, k, lfsr, lk) if stochastic else 0)
            wk = _sat(wk + change, acc_lo, acc_hi)
            w[k] = wk
            view[k] = wk >> vs


# -- The learner -------------------------------------------------------------------------------

def _tables(config: LearnerConfig, plans) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The layer constant table, the staircase thresholds and the format table."""
    lay = np.zeros((len(plans), COLUMNS), dtype=np.int64)
    thresholds: list[int] = []
    w_off = a_off = z_off = 0
    for p in plans:
        row = lay[p.index]
        row[N_IN], row[N_OUT], row[KIND], row[ONE] = p.n_in, p.n_out, activation_code(p.kind), p.one_code
        row[Z_SHIFT], row[BACK_SHIFT], row[SLOPE] = p.z_shift, p.back_shift, p.slope_shift
        row[CLIP_LO], row[CLIP_HI], row[STEP] = p.clip_lo, p.clip_hi, p.step_code
        row[HAS_LO], row[WIN_LO] = p.window_lo is not None, p.window_lo or 0
        row[HAS_HI], row[WIN_HI] = p.window_hi is not None, p.window_hi or 0
        row[DERIV], row[UPD_SHIFT], row[UPD_FITS] = p.derivative, p.update_shift, p.update_fits
        row[LEAK], row[MOM], row[VIEW_SHIFT] = p.leak_shift or 0, p.momentum_shift or 0, p.view_shift
        row[RESIDUAL] = p.residual
        row[W_OFF], row[A_OFF], row[Z_OFF] = w_off, a_off, z_off
        row[THR_OFF], row[THR_N] = len(thresholds), len(p.thresholds)
        thresholds.extend(p.thresholds)
        w_off += p.n_out * (p.n_in + 1)
        a_off += p.n_in + 1
        z_off += p.n_out
    f = config.formats
    fmt = np.zeros(FORMATS, dtype=np.int64)
    fmt[ACT_LO], fmt[ACT_HI] = f.activation.min_code, f.activation.max_code
    fmt[ERR_LO], fmt[ERR_HI] = f.error.min_code, f.error.max_code
    fmt[ACC_LO], fmt[ACC_HI] = f.weight_acc.min_code, f.weight_acc.max_code
    fmt[ERR_SHIFT] = f.activation.frac - f.error.frac
    fmt[FWD_RND], fmt[UPD_RND] = rounding_code(config.forward_rounding), rounding_code(config.rounding)
    fmt[BATCH] = config.batch_size
    fmt[W_FRAC] = f.weight.frac
    if config.adaptive_gain:
        g = config.adaptive_gain
        fmt[PERIOD], fmt[GAIN_UP], fmt[GAIN_DOWN] = g.period, g.up, g.down
    return lay, np.array(thresholds or [0], dtype=np.int64), fmt


def _flat(arrays: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """One buffer holding ``arrays`` end to end, and a view of it shaped like each."""
    buffer = np.concatenate([a.ravel() for a in arrays]).astype(np.int64)
    views, start = [], 0
    for a in arrays:
        views.append(buffer[start:start + a.size].reshape(a.shape))
        start += a.size
    return buffer, views


class CompiledLearner(FixedLearner):
    """:class:`FixedLearner` with the training loop compiled: the same integers at every step."""

    engine = "compiled"

    def __init__(self, config: LearnerConfig, weights: list[np.ndarray] | None = None, engine: str = "compiled"):
        super().__init__(config, weights, engine="numpy")
        self._lay, self._thr, self._fmt = _tables(config, self.plans)
        self._w, self.weights = _flat(self.weights)
        self._view, self.views = _flat(self.views)
        self._vel, velocity = _flat([np.zeros_like(w) for w in self.weights])
        self.velocity = [v if p.momentum_shift else None for v, p in zip(velocity, self.plans)]
        self._bsum, self.batch_sum = _flat(self.batch_sum)
        self._aaug, self.a_aug = _flat(self.a_aug)
        self._gain, self.gain = _flat(self.gain) if self.gain else (np.zeros(GAIN_WORDS, np.int64), [])
        # the stochastic rounding's index hash per site and weight (the numpy model's formula)
        index = np.concatenate([i.ravel() for i in self.flat_index])
        self._mix = np.stack([((3 * index + site) * MIX) & 0xFFFFFFFF
                              for site in (SITE_UPDATE, SITE_MOMENTUM, SITE_LEAK)])
        outputs = sum(p.n_out for p in self.plans)
        self._z, self._a, self._g, self._d = (np.zeros(outputs, dtype=np.int64) for _ in range(4))
        self._state = np.zeros(2 + len(self.plans), dtype=np.int64)

    def _sync_in(self):
        self._state[STEPS], self._state[LFSR] = self.steps, self.lfsr
        self._state[LFSR + 1:] = self.layer_lfsr

    def _sync_out(self):
        self.steps, self.lfsr = int(self._state[STEPS]), int(self._state[LFSR])
        self.layer_lfsr = [int(s) for s in self._state[LFSR + 1:]]

    def _run(self, xs, ys, order, record: bool):
        xs = np.ascontiguousarray(xs, dtype=np.int64)
        ys = np.ascontiguousarray(ys, dtype=np.int64)
        order = np.ascontiguousarray(order, dtype=np.int64)
        n, width = len(order), self.plans[-1].n_out
        pred, err = np.empty((n, width), np.int64), np.empty((n, width), np.int64)
        err_sq = np.empty(n, np.int64)
        shape = (n, self._z.size) if record else (1, 1)
        z_out, a_out, d_out = (np.empty(shape, np.int64) for _ in range(3))
        self._sync_in()
        train_kernel(xs, ys, order, self._lay, self._thr, self._fmt, self._mix, self._state, self._gain, self._w,
                     self._view, self._vel, self._bsum, self._aaug, self._z, self._a, self._g, self._d,
                     pred, err, err_sq, z_out, a_out, d_out, record)
        self._sync_out()
        return pred, err, err_sq, (z_out, a_out, d_out)

    def _per_layer(self, rows: np.ndarray) -> list[np.ndarray]:
        return [rows[..., self._lay[p.index, Z_OFF]:self._lay[p.index, Z_OFF] + p.n_out] for p in self.plans]

    def train_order(self, xs: np.ndarray, ys: np.ndarray, order: np.ndarray) -> StepRun:
        pred, err, err_sq, _ = self._run(xs, ys, order, record=False)
        return StepRun(pred, err, err_sq)

    def step(self, x: np.ndarray, y: np.ndarray) -> StepTrace:
        pred, err, _, (z, a, d) = self._run(np.asarray(x)[None], np.asarray(y)[None], np.zeros(1, np.int64),
                                             record=True)
        batch = self.config.batch_size
        return StepTrace(step=self.steps - 1, z=[v.copy() for v in self._per_layer(z[0])],
                         a=[v.copy() for v in self._per_layer(a[0])], error=err[0],
                         delta=[v.copy() for v in self._per_layer(d[0])],
                         weights=[w.copy() for w in self.weights],
                         velocity=[None if v is None else v.copy() for v in self.velocity],
                         updated=self.steps % batch == 0, lfsr=self.lfsr, gain=[g.copy() for g in self.gain])
