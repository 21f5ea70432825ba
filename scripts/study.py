"""The window and gain study: how a hidden layer's window and the loop's gains set accuracy and
convergence, the loop against gradient descent, in float and fixed point.

``nfloop study [--task NAME ...] [--seeds N] [-o DIR]`` trains every variant of each task's default
config (:func:`nfloop.model.tasks.default_config`) with seeds 0 .. N-1 and writes ``study.json``
(one row per variant and seed) and ``study_TASK.png`` into DIR. A variant is:

- a learner: the loop with each window of :data:`WINDOWS` on its hidden layers (the output layer
  keeps its own), or gradient descent;
- a gain offset: every layer's ``gain_shift`` moved by :data:`GAIN_OFFSETS` (a larger shift is a
  smaller gain).

The seed sets the initial weights and the sample order. Convergence is the first epoch whose test
accuracy (test MSE for regression) comes within :data:`NEAR` of the run's last.

``nfloop study --adaptive`` compares fixed and adaptive gains instead: the loop with each task's default
windows, at every gain offset, with its gains fixed (learner ``feedback``) and adapting by
:data:`ADAPTIVE_RULE` from that starting gain (learner ``adaptive``), beside gradient descent.

``nfloop study --dead-units`` runs the dying-ReLU experiment instead (:func:`dead_units`).
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..model.config import AdaptiveGain, Window
from ..model.tasks import default_config, load_task
from ..model.train import train

__all__ = ["WINDOWS", "GAIN_OFFSETS", "ADAPTIVE_RULE", "StudyRow", "variants", "run_study", "summarise", "study_figure",
           "dead_units", "dead_units_figure"]

#: The hidden layers' windows the loop is tried with, by name. ``default`` is the config's own.
WINDOWS = {"default": None, "lo=-1": Window(lo=-1.0), "lo=-0.5": Window(lo=-0.5), "lo=-0.25": Window(lo=-0.25),
           "lo=0": Window(lo=0.0), "derivative": Window(derivative=True)}
#: Moves of every layer's gain shift: -1 doubles every gain, +1 halves it.
GAIN_OFFSETS = (-2, -1, 0, 1, 2)
#: How close to its last value a run's test score must come to count as converged.
NEAR = 0.01
TASKS = ("moons", "circles", "breast_cancer", "wine", "iris")
#: The adaptive gain of ``nfloop study --adaptive``: the defaults, a decision every 256 steps, from one doubling
#: above the starting gain to three halvings below.
ADAPTIVE_RULE = AdaptiveGain()


@dataclass(frozen=True)
class StudyRow:
    task: str
    learner: str            # "feedback" (the loop), "adaptive" (the loop with ADAPTIVE_RULE) or "gradient"
    window: str             # a key of WINDOWS ("-" for gradient descent)
    gain_offset: int
    arith: str
    seed: int
    score: float            # final test accuracy, or test MSE for regression
    converged_epoch: int
    epochs: int
    diverged: bool


def variants(windows=WINDOWS, offsets=GAIN_OFFSETS, adaptive: bool = False) -> list[tuple[str, str, int]]:
    """(learner, window, gain offset) of every variant; ``adaptive``: the default windows, with fixed and
    with adaptive gains."""
    if adaptive:
        loop = [(learner, "default", offset) for learner in ("feedback", "adaptive") for offset in offsets]
    else:
        loop = [("feedback", name, offset) for name in windows for offset in offsets]
    return loop + [("gradient", "-", offset) for offset in offsets]


def _config(task, window: str, offset: int, seed: int):
    config = default_config(task)
    layers = []
    for k, layer in enumerate(config.layers):
        shift = min(max(layer.gain_shift + offset, -8), 24)
        hidden = k < len(config.layers) - 1
        win = WINDOWS.get(window) if hidden else None
        layers.append(replace(layer, gain_shift=shift, window=layer.window if win is None else win))
    return config.with_changes(layers=tuple(layers), init_seed=seed)


def _run(job) -> StudyRow:
    name, learner, window, offset, arith, seed = job
    task = load_task(name)
    config = _config(task, window, offset, seed)
    if learner == "adaptive":
        config = config.with_changes(adaptive_gain=ADAPTIVE_RULE)
    with np.errstate(all="ignore"):             # a gain past the bound diverges: that is a result here
        result = train(config, task, learner="gradient" if learner == "gradient" else "feedback", arith=arith,
                       seed=seed)
    classification = task.is_classification
    scores = [h.test_accuracy if classification else h.test_mse for h in result.history]
    final = scores[-1]
    diverged = final is None or not np.isfinite(final)
    near = NEAR * max(1.0, abs(final)) if not diverged else 0.0
    converged = next((epoch for epoch, score in enumerate(scores)
                      if score is not None and np.isfinite(score) and abs(score - final) <= near), len(scores) - 1)
    return StudyRow(name, learner, window, offset, arith, seed, float(final) if not diverged else float("nan"),
                    converged, result.epochs, diverged)


def run_study(tasks=TASKS, seeds: int = 3, ariths=("float", "fixed"), workers: int = 2, progress=None,
              windows=WINDOWS, offsets=GAIN_OFFSETS, adaptive: bool = False) -> list[StudyRow]:
    """Every variant of every task, arithmetic and seed; ``progress(1)`` after each run."""
    jobs = [(name, learner, window, offset, arith, seed) for name in tasks for learner, window, offset
            in variants(windows, offsets, adaptive) for arith in ariths for seed in range(seeds)]
    rows = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for row in pool.map(_run, jobs, chunksize=4):
            rows.append(row)
            if progress:
                progress(1)
    return rows


def summarise(rows: list[StudyRow]) -> list[dict]:
    """Mean and spread of score and convergence over seeds, one entry per task, learner, window, gain
    offset and arithmetic."""
    groups: dict[tuple, list[StudyRow]] = {}
    for row in rows:
        groups.setdefault((row.task, row.learner, row.window, row.gain_offset, row.arith), []).append(row)
    out = []
    for (task, learner, window, offset, arith), members in groups.items():
        scores = np.array([r.score for r in members])
        out.append({"task": task, "learner": learner, "window": window, "gain_offset": offset, "arith": arith,
                    "seeds": len(members), "mean": float(np.nanmean(scores)) if np.any(np.isfinite(scores)) else None,
                    "std": float(np.nanstd(scores)) if np.any(np.isfinite(scores)) else None,
                    "converged_epoch": float(np.mean([r.converged_epoch for r in members])),
                    "diverged": sum(r.diverged for r in members)})
    return out


def study_figure(summary: list[dict], task: str, path: Path, metric: str = "test accuracy") -> Path:
    """Score against gain offset, one line per window and one for gradient descent; float and fixed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    entries = [e for e in summary if e["task"] == task]
    ariths = [a for a in ("float", "fixed") if any(e["arith"] == a for e in entries)]
    fig, axes = plt.subplots(1, len(ariths), figsize=(5.5 * len(ariths), 4), sharey=True, squeeze=False)
    for ax, arith in zip(axes[0], ariths):
        lines = sorted({(e["learner"], e["window"]) for e in entries if e["arith"] == arith},
                       key=lambda lw: (lw[0] == "gradient", lw[1]))
        for learner, window in lines:
            points = sorted((e["gain_offset"], e["mean"], e["std"]) for e in entries
                            if (e["arith"], e["learner"], e["window"]) == (arith, learner, window)
                            and e["mean"] is not None)
            if not points:
                continue
            x, y, s = map(np.array, zip(*points))
            label = {"gradient": "gradient descent", "adaptive": f"loop, {window}, adaptive gain"}.get(
                learner, f"loop, {window}")
            style = dict(color="black", ls="--", lw=2) if learner == "gradient" else {}
            ax.errorbar(x, y, yerr=s, capsize=3, marker="o", ms=4, label=label, **style)
        ax.set_title(f"{task}, {arith}")
        ax.set_xlabel("gain offset (shift; +1 halves every gain)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{metric}, mean ± std over seeds")
    axes[0][-1].legend(fontsize=7.5, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_study(rows: list[StudyRow], folder: Path) -> list[Path]:
    """``study.json`` and a figure per task into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = summarise(rows)
    (folder / "study.json").write_text(json.dumps({"rows": [asdict(r) for r in rows], "summary": summary},
                                                  indent=1, allow_nan=True))
    paths = [folder / "study.json"]
    for task in sorted({r.task for r in rows}):
        metric = "test accuracy" if load_task(task).is_classification else "test MSE"
        paths.append(study_figure(summary, task, folder / f"study_{task}.png", metric))
    return paths


# -- Dying ReLU -------------------------------------------------------------------------------

#: The learners of the dying-ReLU experiment: gradient descent and the loop with two windows of
#: :data:`WINDOWS`.
DEAD_UNIT_LEARNERS = {"gradient descent": None, "loop, lo=-0.5": "lo=-0.5", "loop, lo=-1": "lo=-1"}


def dead_units(task_name: str, bias: float, learner: str, epochs: int = 30, seed: int = 0) -> dict:
    """Train the float model of the task's config from its initial weights with every hidden unit's
    bias set to ``bias`` (a bad start that leaves units dead); the fraction of dead hidden units (z <= 0
    for every training sample) before each epoch and after the last, and the final test accuracy."""
    from ..model.floating import FloatLearner
    from ..model.init import initial_weights
    from ..model.train import epoch_order
    task = load_task(task_name)
    window = DEAD_UNIT_LEARNERS[learner]
    config = _config(task, window or "default", 0, seed)
    if window is None:
        config = config.as_gradient_descent()
    weights = initial_weights(config)
    for w in weights[:-1]:
        w[:, -1] = bias
    model = FloatLearner(config, weights)

    def dead() -> float:
        return float(np.mean(np.all(model.forward(task.x_train)[0][0] <= 0, axis=0)))

    fractions = []
    for order in epoch_order(len(task.x_train), epochs, seed):
        fractions.append(dead())
        for k in order:
            model.step(task.x_train[k], task.y_train[k])
    fractions.append(dead())
    accuracy = float(np.mean(np.argmax(model.predict(task.x_test), axis=1) == task.labels_test))
    return {"task": task_name, "bias": bias, "learner": learner, "seed": seed, "dead": fractions,
            "test_accuracy": accuracy}


def dead_units_figure(runs: list[dict], path: Path) -> Path:
    """The fraction of dead hidden units over the epochs, mean over seeds, a panel per starting bias."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    biases = sorted({r["bias"] for r in runs}, reverse=True)
    fig, axes = plt.subplots(1, len(biases), figsize=(4.6 * len(biases), 3.8), sharey=True, squeeze=False)
    for ax, bias in zip(axes[0], biases):
        for learner in DEAD_UNIT_LEARNERS:
            mine = [r for r in runs if r["bias"] == bias and r["learner"] == learner]
            if not mine:
                continue
            curve = np.mean([r["dead"] for r in mine], axis=0)
            accuracy = np.mean([r["test_accuracy"] for r in mine])
            style = dict(color="black", ls="--") if learner == "gradient descent" else {}
            ax.plot(curve, label=f"{learner} (test {accuracy:.2f})", **style)
        ax.set_title(f"{runs[0]['task']}: hidden biases start at {bias:g}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7.5)
    axes[0][0].set_ylabel("dead hidden units (fraction)")
    axes[0][0].set_ylim(-0.02, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
