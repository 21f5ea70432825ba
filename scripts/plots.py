"""Figures: learning curves, the staircase fit, the (w, b) trajectory and an exploration's front."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..model.tasks import Task, staircase_fn  # noqa: E402
from ..model.train import TrainResult  # noqa: E402

__all__ = ["learning_curves", "staircase_fit", "staircase_trajectory", "pareto_plot"]

STYLE = {"feedback": "-", "gradient": "--"}
COLOUR = {"float": "tab:blue", "fixed": "tab:orange"}


def _label(r: TrainResult) -> str:
    return f"{'loop' if r.learner == 'feedback' else 'gradient descent'} ({r.arith})"


def learning_curves(results: list[TrainResult], path: Path, title: str) -> Path:
    """Train MSE (and test accuracy where there are classes) against epochs."""
    classify = any(r.final.test_accuracy is not None for r in results)
    fig, axes = plt.subplots(1, 2 if classify else 1, figsize=(11 if classify else 6, 4), squeeze=False)
    ax = axes[0, 0]
    for r in results:
        ax.plot([m.epoch for m in r.history], [m.train_mse for m in r.history],
                STYLE[r.learner], color=COLOUR[r.arith], label=_label(r))
    ax.set_yscale("symlog", linthresh=1e-3)
    # tick labels at 1, 2 and 5 of every decade: one or two decades still read
    ax.yaxis.set_major_locator(matplotlib.ticker.SymmetricalLogLocator(linthresh=1e-3, base=10, subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set(xlabel="epoch", ylabel="train MSE", title=f"{title}: training error")
    ax.grid(alpha=0.3)
    ax.legend()
    if classify:
        ax = axes[0, 1]
        for r in results:
            ax.plot([m.epoch for m in r.history], [m.test_accuracy for m in r.history],
                    STYLE[r.learner], color=COLOUR[r.arith], label=_label(r))
        # zoom to where the learners differ: epoch 0 (chance) may sit below the axis
        later = [m.test_accuracy for r in results for m in r.history[1:] if m.test_accuracy is not None]
        if later:
            low = max(0.0, min(later) - 0.02)
            ax.set_ylim(low, min(1.0, max(later) + 0.01) + 0.005)
            if any(r.history[0].test_accuracy < low for r in results):
                ax.text(0.02, 0.02, f"epoch 0 (before training) below {low:.0%}", transform=ax.transAxes,
                        fontsize=8, color="0.35")
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.set(xlabel="epoch", ylabel="test accuracy", title=f"{title}: test accuracy")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def staircase_fit(task: Task, results: list[TrainResult], path: Path) -> Path:
    """The data, the starting guess and each learner's final fit; every curve visible."""
    x = np.linspace(-4.5, 4.5, 1000)
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    ax.plot(task.x_train[:, 0], task.y_train[:, 0], ".", color="k", ms=2, zorder=5,
            label="data: sigma(x - 1)")
    w0, b0 = results[0].history[0].weights[0][0]
    # curves that coincide (gradient descent never leaves the start) are told apart by a small
    # vertical offset per arithmetic, and the start is drawn last, with markers
    offset = {"float": 0.08, "fixed": -0.08}
    for r in results:
        w, b = r.final.weights[0][0]
        ax.plot(x, staircase_fn(w * x + b) + offset[r.arith], STYLE[r.learner], color=COLOUR[r.arith],
                lw=2.2 if r.learner == "gradient" else 1.4, label=f"{_label(r)}: w={w:.3f}, b={b:.3f}")
    ax.plot(x, staircase_fn(w0 * x + b0), ":", color="0.2", lw=1.2, marker="o", markevery=60, ms=3, zorder=6,
            label=f"start: w={w0:.2f}, b={b0:.2f}")
    ax.set(xlabel="x", ylabel="y", title="Staircase neuron: fit after training\n"
                                         "(float curves drawn 0.08 above, fixed 0.08 below, to be seen apart)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def staircase_trajectory(task: Task, results: list[TrainResult], path: Path) -> Path:
    """(w, b) after every epoch over the training-MSE landscape."""
    ws, bs = np.linspace(-0.2, 1.6, 181), np.linspace(-2.0, 1.2, 161)
    W, B = np.meshgrid(ws, bs)
    x, y = task.x_train[:, 0], task.y_train[:, 0]
    mse = np.mean((staircase_fn(W[..., None] * x + B[..., None]) - y) ** 2, axis=-1)
    fig, ax = plt.subplots(figsize=(6, 5))
    shade = ax.contourf(W, B, mse, levels=20, cmap="Greys")
    fig.colorbar(shade, ax=ax, label="train MSE")
    for r in results:
        path_wb = np.array([m.weights[0][0] for m in r.history])
        moved = np.abs(path_wb - path_wb[0]).max() > 0
        marker, size = ("o", 3 + 2 * (r.arith == "float")) if moved else ("X", 12 - 4 * (r.arith == "fixed"))
        ax.plot(path_wb[:, 0], path_wb[:, 1], STYLE[r.learner], marker=marker, color=COLOUR[r.arith],
                ms=size, lw=2.5 if r.arith == "float" else 1.2,
                label=_label(r) + ("" if moved else ": does not move"))
    ax.plot([1.0], [-1.0], "*", color="tab:red", ms=14, label="truth (1, -1)")
    ax.set(xlabel="w", ylabel="b", title="Staircase neuron: (w, b) per epoch")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pareto_plot(rows: list[dict], front: list[dict], path: Path, task_name: str, classification: bool) -> Path:
    """Every explored point: accuracy against size, with speed as colour; the Pareto front ringed.

    Built points: LUTs and steps/s at the board's clock. Without builds: the multipliers' bits
    and the weight state's bits, the size figures a config gives without synthesis.
    """
    built = [r for r in rows if r.get("luts") is not None]
    shown = built or [r for r in rows if r.get("board") is None]
    size, colour = ("luts", "steps_per_second") if built else ("multiplier_bits", "state_bits")
    names = {"luts": "LUTs / logic cells", "steps_per_second": "training steps/s at the board clock",
             "multiplier_bits": "multiplier bits (lanes x weight bits x activation bits)",
             "state_bits": "weight state bits"}

    def height(row):
        return 100 * row["score"] if classification else row["mse"]

    fig, ax = plt.subplots(figsize=(8, 5))
    if not shown:
        ax.text(0.5, 0.5, "no finished points yet", ha="center", va="center", transform=ax.transAxes)
    else:
        ys = np.array([height(r) for r in shown], dtype=float)
        floor = None
        if classification:
            # zoom to what matters: ten points below the best; anything lower sits on the floor
            floor = max(0.0, ys.max() - 10)
            ax.set_ylim(floor - 0.5, min(100.0, ys.max() + 1))
        clipped = ys < floor if floor is not None else np.zeros(len(ys), bool)
        xs = np.array([r[size] for r in shown], dtype=float)
        cs = np.array([r[colour] or 0 for r in shown], dtype=float)
        dots = ax.scatter(xs[~clipped], ys[~clipped], c=cs[~clipped], cmap="viridis", s=36, zorder=3,
                          vmin=cs.min(), vmax=cs.max(), label="explored points")
        if clipped.any():
            ax.scatter(xs[clipped], np.full(clipped.sum(), floor - 0.3), marker="v", color="0.5", s=30, zorder=3,
                       label=f"{clipped.sum()} points below {floor:.0f} %")
        fig.colorbar(dots, ax=ax, label=names[colour])
        ringed = [r for r in front if r in shown and (floor is None or height(r) >= floor)]
        ax.scatter([r[size] for r in ringed], [height(r) for r in ringed], s=130, facecolors="none",
                   edgecolors="tab:red", linewidths=1.5, zorder=4, label="Pareto front")
        for k, r in enumerate(ringed[:10]):
            text = r["label"].replace(".bits=", " ") + (f" ({r['board']})" if r.get("board") else "")
            ax.annotate(text, (r[size], height(r)), fontsize=7, xytext=(6, -10 if k % 2 else 5),
                        textcoords="offset points")
        if not classification:
            ax.set_yscale("log")
        ax.legend(loc="lower right", fontsize=8)
    ax.set(xlabel=names[size],
           ylabel="test accuracy (%, mean over seeds)" if classification else "test MSE (mean over seeds)",
           title=f"{task_name}: explored design points")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
