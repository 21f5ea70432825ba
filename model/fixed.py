"""Fixed-point reference model: the bit-level contract the HDL is held to.

Everything here works on raw integer codes (numpy int64). Each quantisation
step is a named function that mirrors one hardware operation; a training step
is nothing but these functions in the order the datapath runs them:

forward, per layer l (input a_{l-1}, bias input exactly 1.0)
    ``mac``  exact sum of W_view[j, :] * a_aug          (weight.frac + in.frac)
    ``requantise``  to formats.activation               -> z_l
    ``activate``                                        -> a_l
error
    ``output_error``  y - a_L, aligned to formats.error, saturated -> e
backward, l = L-1 .. 0, using the weights *before* this step's update
    ``apply_window``  delta_l = g_l (.) s_l(z_l)   (g_L = e)
    ``mac`` + ``requantise``  g_{l-1} = W_view_l[:, :-1]^T delta_l  -> formats.error
update, per layer (the LFSR steps once per layer, last layer first)
    ``scaled_update``  u = round(A * delta_l a_aug^T) into formats.weight_acc
    batch sum (saturating) over ``batch_size`` samples, then at the batch end
    ``momentum``  V = sat(V - round(V >> m) + U)        (if configured)
    ``leak``  W = sat(W + V_or_U - round(W >> k))         (k absent: no leak)
    ``weight_view``  the MAC's W_view = W >> (acc.frac - weight.frac)
    (batch-end momentum and leak use the LFSR state of the layer's last update)
adaptive gain (if configured), after the updates
    ``error_energy``  E_l = sat(E_l + sum |delta_l|); at a period's end ``adapt_gain``
    moves the layer's shift offset (used from the next step's ``scaled_update`` on)

Stochastic rounding adds a random integer r in [0, 2**d) before a right
shift by d. r comes from a 32-bit Galois LFSR (polynomial
x^32 + x^22 + x^2 + x + 1, mask 0x80200003, shifting right) and the flat
index k of the weight (k = j * (n_in + 1) + i) and the rounding site
(0 update, 1 momentum, 2 leak): ``r = ((S ^ ((3k + site) * 0x9E3779B1)) mod 2**32) >> (32 - d)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import BAND_SHIFT, ActivationKind, AdaptiveGain, LearnerConfig, QFormat, Rounding
from .init import initial_weights

__all__ = [
    "LFSR_MASK", "MIX", "lfsr_next", "stochastic_bits", "saturate", "shift_round", "requantise",
    "mac", "activate", "apply_window", "output_error", "scaled_update", "error_energy", "adapt_gain", "momentum",
    "leak", "weight_view", "GAIN_OFFSET", "GAIN_ENERGY", "GAIN_PREVIOUS", "GAIN_WORDS", "initial_gain",
    "gain_problem", "LayerPlan", "StepTrace", "StepRun", "ENGINES", "FixedLearner",
]

#: The implementations of :class:`FixedLearner`: this module's numpy code, the readable
#: specification, and :mod:`.compiled`'s numba kernel, which gives the same integers faster.
ENGINES = ("numpy", "compiled")

LFSR_MASK = 0x80200003
MIX = 0x9E3779B1
SITE_UPDATE, SITE_MOMENTUM, SITE_LEAK = 0, 1, 2

# Shift amounts and half-LSB addends as numpy scalars: numpy converts a Python
# int operand on every call, which costs as much as the operation at these sizes.
_SHIFT = tuple(np.int64(i) for i in range(64))
_HALF = (np.int64(0),) + tuple(np.int64(1 << (i - 1)) for i in range(1, 64))


# -- Quantisation primitives -----------------------------------------------------------------

def lfsr_next(state: int) -> int:
    """One step of the 32-bit Galois LFSR."""
    return (state >> 1) ^ (LFSR_MASK if state & 1 else 0)


def stochastic_bits(state: int, index: np.ndarray, site: int, bits: int) -> np.ndarray:
    """The ``bits``-bit random addend for each flat weight index (0 <= bits <= 32)."""
    if bits <= 0:
        return np.zeros_like(index)
    mixed = ((3 * index + site) * MIX) & 0xFFFFFFFF
    return (mixed ^ state) >> (32 - bits)


def saturate(v: np.ndarray, fmt: QFormat) -> np.ndarray:
    """Clamp codes into ``fmt`` (the hardware's saturation logic)."""
    lo, hi = fmt.np_bounds
    return np.minimum(np.maximum(v, lo), hi)


def shift_round(v: np.ndarray, shift: int, rounding: Rounding, rand: np.ndarray | None = None):
    """Arithmetic right shift by ``shift`` with rounding; ``shift <= 0`` shifts left, exactly."""
    if shift <= 0:
        return v << _SHIFT[-shift]
    match rounding:
        case Rounding.FLOOR:
            return v >> _SHIFT[shift]
        case Rounding.HALF_UP:
            return (v + _HALF[shift]) >> _SHIFT[shift]
        case Rounding.STOCHASTIC:
            return (v + rand) >> _SHIFT[shift]
        case _:
            raise ValueError(f"no rounding mode {rounding!r}")


def requantise(v, shift: int, fmt: QFormat, rounding: Rounding, rand=None):
    """Shift with rounding into ``fmt``, then saturate."""
    return saturate(shift_round(v, shift, rounding, rand), fmt)


def mac(w_view: np.ndarray, a_aug: np.ndarray) -> np.ndarray:
    """Exact multiply-accumulate: ``W_view @ a_aug`` (no rounding, no overflow by construction)."""
    return np.dot(w_view, a_aug)


def weight_view(w_acc: np.ndarray, shift: int) -> np.ndarray:
    """The MAC's narrow weight: the top bits of the accumulator (a bit slice, floor)."""
    return w_acc >> _SHIFT[shift]


# -- Per-layer constants -------------------------------------------------------------------

@dataclass(frozen=True)
class LayerPlan:
    """Integer constants of one layer, derived from the config; the HDL uses the same."""
    index: int
    n_in: int
    n_out: int
    kind: ActivationKind
    one_code: int           # the bias input 1.0 in the layer's input format
    z_shift: int            # exact MAC sum -> formats.activation
    back_shift: int         # W^T delta sum -> formats.error
    slope_shift: int        # leaky_relu negative slope
    clip_lo: int
    clip_hi: int
    thresholds: tuple[int, ...]
    step_code: int          # height of one staircase step
    window_lo: int | None   # None: open side
    window_hi: int | None
    derivative: bool
    update_shift: int
    update_shifts: tuple[int, ...]  # every shift adaptive gain may choose, the most gain first
    update_fits: bool       # |A * delta * a| always fits weight_acc (at the most gain): saturation is a no-op
    update_bound: int       # largest |u| scaled_update can return
    leak_shift: int | None
    momentum_shift: int | None
    view_shift: int         # weight_acc -> MAC weight
    residual: bool          # forward and backward through W + I

    @classmethod
    def build(cls, config: LearnerConfig, index: int) -> LayerPlan:
        f, layer = config.formats, config.layers[index]
        act, win = layer.activation, layer.window
        in_fmt = config.input_format(index)
        bound = _update_bound(config, index)
        return cls(
            index=index, n_in=config.sizes[index], n_out=layer.size, kind=act.kind,
            one_code=1 << in_fmt.frac,
            z_shift=f.weight.frac + in_fmt.frac - f.activation.frac,
            back_shift=f.weight.frac,
            slope_shift=act.slope_shift,
            clip_lo=f.activation.code(act.lo), clip_hi=f.activation.code(act.hi),
            thresholds=tuple(f.activation.code(c) for c in act.thresholds),
            step_code=f.activation.code(act.scale),
            window_lo=None if win.lo is None else f.activation.code(win.lo),
            window_hi=None if win.hi is None else f.activation.code(win.hi),
            derivative=win.derivative,
            update_shift=config.update_shift(index), update_shifts=config.update_shifts(index),
            update_fits=bound <= f.weight_acc.max_code,
            update_bound=bound,
            leak_shift=layer.leak_shift, momentum_shift=layer.momentum_shift,
            view_shift=f.weight_acc.frac - f.weight.frac,
            residual=layer.residual,
        )


def _update_bound(config: LearnerConfig, index: int) -> int:
    """Largest |u| that ``scaled_update`` can produce before saturation (any rounding mode)."""
    f = config.formats
    biggest = (1 << (f.error.bits - 1)) * max(1 << (config.input_format(index).bits - 1),
                                              1 << config.input_format(index).frac)
    shift = config.update_shifts(index)[0]
    return biggest << -shift if shift <= 0 else (biggest >> shift) + 1


# -- The datapath's operations ---------------------------------------------------------------

def activate(z: np.ndarray, plan: LayerPlan, rounding: Rounding) -> np.ndarray:
    """sigma(z) on activation codes."""
    match plan.kind:
        case ActivationKind.IDENTITY:
            return z
        case ActivationKind.RELU:
            return np.maximum(z, 0)
        case ActivationKind.LEAKY_RELU:
            return np.where(z >= 0, z, shift_round(z, plan.slope_shift, rounding))
        case ActivationKind.HARDTANH:
            return np.minimum(np.maximum(z, plan.clip_lo), plan.clip_hi)
        case ActivationKind.SIGN | ActivationKind.STAIRCASE:
            # step_code * sum_j sgn(z - c_j), with sgn(0) = 0
            total = np.zeros_like(z)
            for c in plan.thresholds:
                total += np.sign(z - c)
            return total * plan.step_code
        case kind:
            raise ValueError(f"no activation {kind!r}")


def apply_window(g: np.ndarray, z: np.ndarray, plan: LayerPlan, rounding: Rounding) -> np.ndarray:
    """delta = g (.) s(z): the rectangular window, or sigma'(z) in derivative mode."""
    if plan.derivative:
        match plan.kind:
            case ActivationKind.IDENTITY:
                return g
            case ActivationKind.RELU:
                return np.where(z > 0, g, 0)
            case ActivationKind.LEAKY_RELU:
                return np.where(z > 0, g, shift_round(g, plan.slope_shift, rounding))
            case ActivationKind.HARDTANH:
                return np.where((z > plan.clip_lo) & (z < plan.clip_hi), g, 0)
            case ActivationKind.SIGN | ActivationKind.STAIRCASE:
                return np.zeros_like(g)
            case kind:
                raise ValueError(f"no activation {kind!r}")
    if plan.window_lo is None and plan.window_hi is None:
        return g
    inside = True
    if plan.window_lo is not None:
        inside = z >= plan.window_lo
    if plan.window_hi is not None:
        inside = inside & (z <= plan.window_hi)
    return g * inside


def output_error(y: np.ndarray, yhat: np.ndarray, act: QFormat, err: QFormat,
                 rounding: Rounding) -> np.ndarray:
    """e = y - yhat (both activation codes), aligned to the error format and saturated."""
    return requantise(y - yhat, act.frac - err.frac, err, rounding)


def scaled_update(delta: np.ndarray, a_aug: np.ndarray, plan: LayerPlan, acc: QFormat,
                  rounding: Rounding, lfsr_state: int, index: np.ndarray, offset: int = 0) -> np.ndarray:
    """u = round(A * delta a_aug^T) in weight_acc codes, saturated; ``offset`` halves A that many times
    (adaptive gain; negative doubles it)."""
    shift = plan.update_shift + offset
    if shift <= 0:
        # An exact left shift commutes with the product: shift the short vector instead.
        u = np.multiply.outer(delta << _SHIFT[-shift], a_aug)
    else:
        rand = None
        if rounding is Rounding.STOCHASTIC:
            rand = stochastic_bits(lfsr_state, index, SITE_UPDATE, shift)
        u = shift_round(np.multiply.outer(delta, a_aug), shift, rounding, rand)
    return u if plan.update_fits else saturate(u, acc)


def error_energy(energy: int, delta: np.ndarray, acc: QFormat) -> int:
    """A layer's error energy after one more step: ``energy + sum |delta|``, saturated at acc's largest code."""
    return min(energy + int(np.abs(delta).sum()), acc.max_code)


def adapt_gain(offset: int, energy: int, previous: int, rule: AdaptiveGain) -> int:
    """A layer's gain offset at the end of a period (:class:`~nfloop.model.config.AdaptiveGain`): one more
    halving when the error energy grew by more than ``previous >> BAND_SHIFT``, one fewer when it fell by more,
    within ``[-up, down]``. ``previous`` < 0: no period has ended yet, keep the offset."""
    if previous < 0:
        return offset
    if energy > previous + (previous >> BAND_SHIFT):
        return min(offset + 1, rule.down)
    if energy < previous - (previous >> BAND_SHIFT):
        return max(offset - 1, -rule.up)
    return offset


def momentum(velocity: np.ndarray, update: np.ndarray, shift: int, acc: QFormat,
             rounding: Rounding, lfsr_state: int, index: np.ndarray) -> np.ndarray:
    """V = sat(V - round(V * 2**-shift) + U): beta = 1 - 2**-shift."""
    rand = None
    if rounding is Rounding.STOCHASTIC:
        rand = stochastic_bits(lfsr_state, index, SITE_MOMENTUM, shift)
    return saturate(velocity - shift_round(velocity, shift, rounding, rand) + update, acc)


def leak(w_acc: np.ndarray, shift: int, rounding: Rounding, lfsr_state: int,
         index: np.ndarray) -> np.ndarray:
    """round(W * 2**-shift), the weight decay term lambda*W."""
    rand = None
    if rounding is Rounding.STOCHASTIC:
        rand = stochastic_bits(lfsr_state, index, SITE_LEAK, shift)
    return shift_round(w_acc, shift, rounding, rand)


# -- Adaptive gain state ----------------------------------------------------------------------

#: A layer's adaptive gain state, one row of words: its offset on the update shift, its error energy in
#: the period so far, and the last period's (-1 before the first period ends).
GAIN_OFFSET, GAIN_ENERGY, GAIN_PREVIOUS, GAIN_WORDS = 0, 1, 2, 3


def initial_gain() -> np.ndarray:
    return np.array([[0, 0, -1]], dtype=np.int64)


def gain_problem(state: np.ndarray, rule: AdaptiveGain, acc: QFormat) -> str | None:
    """Why ``state`` cannot be a layer's adaptive gain state, or None."""
    if state.shape != (1, GAIN_WORDS):
        return f"has shape {state.shape}, not {(1, GAIN_WORDS)}"
    offset, energy, previous = (int(v) for v in state[0])
    if offset not in rule.offsets:
        return f"offset {offset} is outside [-{rule.up}, {rule.down}] (adaptive_gain up and down)"
    if not 0 <= energy <= acc.max_code or not -1 <= previous <= acc.max_code:
        return f"energies {energy}, {previous} are outside 0 .. {acc.max_code} (previous: or -1)"
    return None


# -- The learner -----------------------------------------------------------------------------

@dataclass
class StepTrace:
    """Everything one training step computed, as integer codes.

    ``z``, ``a``, ``delta`` have one array per layer; ``weights`` and
    ``velocity`` are the weight_acc / momentum state after the step (changed
    only when ``updated``, at the end of a mini-batch).
    """
    step: int
    z: list[np.ndarray]
    a: list[np.ndarray]
    error: np.ndarray
    delta: list[np.ndarray]
    weights: list[np.ndarray]
    velocity: list[np.ndarray | None]
    updated: bool
    lfsr: int
    gain: list[np.ndarray]      # adaptive gain state per layer after the step (empty without)

    @property
    def prediction(self) -> np.ndarray:
        return self.a[-1]


@dataclass
class StepRun:
    """What a run of training steps returns per step: prediction, error and its squared sum."""
    predictions: np.ndarray     # (steps, outputs) activation codes
    errors: np.ndarray          # (steps, outputs) error codes
    error_squares: np.ndarray   # (steps,) sum of squared error codes

    @property
    def error_sum(self) -> int:
        return int(self.error_squares.sum(dtype=object)) if len(self.error_squares) else 0


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    return engine


class FixedLearner:
    """The fixed-point learner: state is the weight accumulators, momentum, batch sums and LFSR.

    Parameters
    ----------
    config : LearnerConfig
    weights : list of int64 arrays, optional
        Initial weight_acc codes; by default the config's initial weights, quantised.
    engine : ``"numpy"`` or ``"compiled"``
        ``"compiled"`` gives a :class:`~nfloop.model.compiled.CompiledLearner`: the same
        integers at every step, from a numba kernel.
    """

    engine = "numpy"

    def __new__(cls, config: LearnerConfig, weights: list[np.ndarray] | None = None, engine: str = "numpy"):
        if cls is FixedLearner and check_engine(engine) == "compiled":
            from .compiled import CompiledLearner
            cls = CompiledLearner
        return super().__new__(cls)

    def __init__(self, config: LearnerConfig, weights: list[np.ndarray] | None = None, engine: str = "numpy"):
        self.config = config
        self.plans = [LayerPlan.build(config, i) for i in range(len(config.layers))]
        f = config.formats
        if weights is None:
            weights = self.quantise_weights(config, initial_weights(config))
        self.weights = [np.array(w, dtype=np.int64) for w in weights]
        for plan, w in zip(self.plans, self.weights):
            if w.shape != (plan.n_out, plan.n_in + 1):
                raise ValueError(f"layer {plan.index} weights must have shape "
                                 f"{(plan.n_out, plan.n_in + 1)}, not {w.shape}")
            if w.min(initial=0) < f.weight_acc.min_code or w.max(initial=0) > f.weight_acc.max_code:
                raise ValueError(f"layer {plan.index} weights are outside formats.weight_acc {f.weight_acc}")
        self.views = [weight_view(w, p.view_shift) for w, p in zip(self.weights, self.plans)]
        self.velocity = [np.zeros_like(w) if p.momentum_shift else None
                         for w, p in zip(self.weights, self.plans)]
        self.batch_sum = [np.zeros_like(w) for w in self.weights]
        # adaptive gain: per layer [[offset, energy, previous]] (GAIN_WORDS), as the board's gain bank holds it
        self.gain = [initial_gain() for _ in self.plans] if config.adaptive_gain else []
        self.flat_index = [np.arange(w.size, dtype=np.int64).reshape(w.shape) for w in self.weights]
        # Each layer's input with the constant bias input 1.0 appended, reused every step.
        self.a_aug = [np.full(p.n_in + 1, p.one_code, dtype=np.int64) for p in self.plans]
        self.lfsr = config.lfsr_seed
        self.layer_lfsr = [self.lfsr] * len(self.plans)
        # Updates each layer can still take without any weight reaching saturation
        # (plain online updates only; see _apply_update). 0: unknown, check.
        self.headroom = [0] * len(self.plans)
        self._headroom_of = [None] * len(self.plans)    # the array the headroom was counted for
        self.steps = 0

    @staticmethod
    def quantise_weights(config: LearnerConfig, weights: list[np.ndarray]) -> list[np.ndarray]:
        acc = config.formats.weight_acc
        return [saturate(np.floor(np.asarray(w) * (1 << acc.frac) + 0.5).astype(np.int64), acc)
                for w in weights]

    def forward(self, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Pre-activations and outputs for one input (1-D) or a batch (2-D, one row per sample).

        A 1-D input is written into the layers' augmented input buffers (input,
        then the bias input 1.0), which the update of the same step reuses.
        """
        f, rnd = self.config.formats, self.config.forward_rounding
        zs, acts = [], []
        a = np.asarray(x, dtype=np.int64)
        for plan, view, a_aug in zip(self.plans, self.views, self.a_aug):
            if a.ndim == 1:
                a_aug[:-1] = a
                s = mac(view, a_aug)
            else:
                s = a @ view[:, :-1].T + view[:, -1] * plan.one_code
            if plan.residual:
                s = s + (a << f.weight.frac)          # W + I: 1.0 on the diagonal, in the weights' format
            z = requantise(s, plan.z_shift, f.activation, rnd)
            a = activate(z, plan, rnd)
            zs.append(z)
            acts.append(a)
        return zs, acts

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[1][-1]

    def step(self, x: np.ndarray, y: np.ndarray) -> StepTrace:
        """One training sample: forward, error, backward and (at a batch end) the update."""
        cfg, f = self.config, self.config.formats
        rnd_fwd, rnd_upd = cfg.forward_rounding, cfg.rounding
        zs, acts = self.forward(x)
        e = output_error(np.asarray(y, dtype=np.int64), acts[-1], f.activation, f.error, rnd_fwd)
        deltas: list[np.ndarray] = [None] * len(self.plans)
        g = e
        for plan in reversed(self.plans):
            l = plan.index
            delta = apply_window(g, zs[l], plan, rnd_fwd)
            deltas[l] = delta
            if l > 0:
                # W^T delta as delta @ W over the augmented columns, bias column dropped; (W + I)^T delta
                # for a residual layer
                s = np.dot(delta, self.views[l])[:-1]
                if plan.residual:
                    s = s + (delta << f.weight.frac)
                g = requantise(s, plan.back_shift, f.error, rnd_fwd)
        rule = cfg.adaptive_gain
        stochastic = rnd_upd is Rounding.STOCHASTIC
        for plan in reversed(self.plans):
            l = plan.index
            if stochastic:
                self.lfsr = lfsr_next(self.lfsr)
                self.layer_lfsr[l] = self.lfsr
            u = scaled_update(deltas[l], self.a_aug[l], plan, f.weight_acc, rnd_upd, self.lfsr,
                              self.flat_index[l], int(self.gain[l][0, GAIN_OFFSET]) if rule else 0)
            self.batch_sum[l] = u if cfg.batch_size == 1 else saturate(self.batch_sum[l] + u, f.weight_acc)
        if rule:
            # after this step's updates: a new gain applies from the next step on
            ending = (self.steps + 1) % rule.period == 0
            for state, delta in zip(self.gain, deltas):
                offset, energy, previous = (int(v) for v in state[0])
                energy = error_energy(energy, delta, f.weight_acc)
                if ending:
                    state[0] = (adapt_gain(offset, energy, previous, rule), 0, energy)
                else:
                    state[0, GAIN_ENERGY] = energy
        self.steps += 1
        updated = self.steps % cfg.batch_size == 0
        if updated:
            self._apply_update()
        # Arrays are replaced, never written in place, so copying the lists snapshots the state.
        return StepTrace(step=self.steps - 1, z=zs, a=acts, error=e, delta=deltas,
                         weights=list(self.weights), velocity=list(self.velocity), updated=updated,
                         lfsr=self.lfsr, gain=[g.copy() for g in self.gain])

    def train_order(self, xs: np.ndarray, ys: np.ndarray, order: np.ndarray) -> StepRun:
        """One step per index of ``order``, on ``xs[k]``, ``ys[k]``."""
        traces = [self.step(xs[k], ys[k]) for k in order]
        width = self.plans[-1].n_out
        errors = np.array([t.error for t in traces], dtype=np.int64).reshape(-1, width)
        return StepRun(np.array([t.prediction for t in traces], dtype=np.int64).reshape(-1, width), errors,
                       np.sum(errors * errors, axis=1))

    def _apply_update(self):
        acc, rnd = self.config.formats.weight_acc, self.config.rounding
        for plan in reversed(self.plans):
            l = plan.index
            change = self.batch_sum[l]
            if plan.momentum_shift:
                self.velocity[l] = momentum(self.velocity[l], change, plan.momentum_shift, acc, rnd,
                                            self.layer_lfsr[l], self.flat_index[l])
                change = self.velocity[l]
            w = self.weights[l]
            if plan.leak_shift:
                change = change - leak(w, plan.leak_shift, rnd, self.layer_lfsr[l], self.flat_index[l])
            new = w + change
            if self.config.batch_size == 1 and not (plan.momentum_shift or plan.leak_shift):
                # |change| <= update_bound, so while every |w| <= max - k * bound the next k
                # updates cannot saturate: skip the clamp (a no-op) until that is used up.
                if self.headroom[l] <= 0 or self._headroom_of[l] is not w:
                    self.headroom[l] = (acc.max_code - int(np.abs(w).max(initial=0))) // plan.update_bound
                if self.headroom[l] > 0:
                    self.headroom[l] -= 1
                else:
                    new = saturate(new, acc)
            else:
                new = saturate(new, acc)
            self.weights[l] = self._headroom_of[l] = new
            self.views[l] = weight_view(new, plan.view_shift)
            if self.config.batch_size > 1:
                self.batch_sum[l] = np.zeros_like(w)

    def state(self) -> dict[str, np.ndarray]:
        """Everything the next step depends on besides the data, as named arrays (a checkpoint):
        ``weights_L``, ``velocity_L`` (momentum layers), ``batch_sum_L``, ``gain_L`` (adaptive gain), ``lfsr``
        and ``steps``."""
        arrays = {"lfsr": np.array(self.lfsr, dtype=np.int64), "steps": np.array(self.steps, dtype=np.int64)}
        for l, gain in enumerate(self.gain):
            arrays[f"gain_{l}"] = np.array(gain)
        for l, (w, v, s) in enumerate(zip(self.weights, self.velocity, self.batch_sum)):
            arrays[f"weights_{l}"] = np.array(w)
            arrays[f"batch_sum_{l}"] = np.array(s)
            if v is not None:
                arrays[f"velocity_{l}"] = np.array(v)
        return arrays

    def load_state(self, arrays) -> None:
        """Continue from :meth:`state`'s arrays: the steps that follow are those the saved learner took."""
        expected = set(self.state())
        if set(arrays) != expected:
            raise ValueError(f"a learner state needs the arrays {sorted(expected)}, not {sorted(arrays)}")
        acc = self.config.formats.weight_acc
        for l, plan in enumerate(self.plans):
            for name in ("weights", "batch_sum", "velocity"):
                if name == "velocity" and self.velocity[l] is None:
                    continue
                value = np.asarray(arrays[f"{name}_{l}"], dtype=np.int64)
                target = getattr(self, name)[l]
                if value.shape != target.shape:
                    raise ValueError(f"{name}_{l} has shape {value.shape}, not {target.shape}")
                if value.min(initial=0) < acc.min_code or value.max(initial=0) > acc.max_code:
                    raise ValueError(f"{name}_{l} is outside formats.weight_acc {acc}")
                target[...] = value          # in place: the compiled engine's buffers stay shared
            self.views[l][...] = weight_view(self.weights[l], plan.view_shift)
        rule = self.config.adaptive_gain
        for l, gain in enumerate(self.gain):
            value = np.asarray(arrays[f"gain_{l}"], dtype=np.int64)
            problem = gain_problem(value, rule, acc)
            if problem:
                raise ValueError(f"gain_{l} {problem}")
            gain[...] = value
        self.lfsr = int(arrays["lfsr"])
        self.layer_lfsr = [self.lfsr] * len(self.plans)
        self.steps = int(arrays["steps"])
        self.headroom = [0] * len(self.plans)
        self._headroom_of = [None] * len(self.plans)

    def real_weights(self) -> list[np.ndarray]:
        return [w * self.config.formats.weight_acc.lsb for w in self.weights]
