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

__all__ = ["learning_curves", "staircase_fit", "staircase_trajectory", "pareto_plot", "hardware_against_model",
           "schedule_utilisation"]

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


def hardware_against_model(cosim, board, path: Path, title: str) -> Path:
    """The simulated core's run step by step, and the virtual board's epoch by epoch, each against the model."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2.2, 1]})
    hw, ref = cosim.hardware_error_squares, cosim.model_error_squares
    window = max(1, min(50, len(hw) // 10))
    kernel = np.ones(window) / window
    steps = np.arange(len(hw))[window - 1:]
    left.plot(steps, np.convolve(hw, kernel, "valid"), color="tab:blue", lw=3, alpha=0.5, label="hardware (Verilator)")
    left.plot(steps, np.convolve(ref, kernel, "valid"), color="k", lw=1, ls="--", label="fixed-point model")
    differ = np.flatnonzero(hw != ref)
    left.set(xlabel="training step", ylabel=f"squared error codes, mean of {window} steps",
             title=f"{title}: the simulated core, every step\n"
                   + ("identical at every step" if not len(differ) else f"first difference at step {differ[0]}"))
    left.set_yscale("log")
    left.grid(alpha=0.3, which="both")
    left.legend()
    epochs = [row.epoch + 1 for row in board.rows]
    width = 0.38
    right.bar(np.array(epochs) - width / 2, [row.device_error_sum for row in board.rows], width, color="tab:blue",
              label="virtual board")
    right.bar(np.array(epochs) + width / 2, [row.model_error_sum for row in board.rows], width, color="0.3",
              label="model")
    for row in board.rows:
        right.annotate("equal" if row.device_error_sum == row.model_error_sum and row.weights_equal else "DIFFER",
                       (row.epoch + 1, max(row.device_error_sum, row.model_error_sum)), ha="center", va="bottom",
                       fontsize=8, xytext=(0, 3), textcoords="offset points")
    right.set(xlabel="epoch", ylabel="sum of squared error codes", xticks=epochs,
              title="the virtual board, epoch by epoch\n(over its UART; weights compared too)")
    right.title.set_fontsize(10)
    right.margins(y=0.15)
    right.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def schedule_utilisation(layout, path: Path) -> Path:
    """Multipliers busy in each cycle of one training step, against the lanes there are."""
    from ..hdl.sequencer import busy_multipliers
    busy = np.array(busy_multipliers(layout))
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.fill_between(np.arange(len(busy)), busy, step="post", color="tab:blue", alpha=0.6, lw=0)
    ax.axhline(layout.lanes, color="tab:red", lw=1, ls="--")
    ax.text(len(busy) * 0.995, layout.lanes * 1.02, f"{layout.lanes} lanes", ha="right", va="bottom", fontsize=8,
            color="tab:red")
    sizes = "-".join(map(str, layout.config.sizes))
    ax.set(xlabel="cycle of one training step", ylabel="busy multipliers", ylim=(0, layout.lanes * 1.15),
           xlim=(0, len(busy)),
           title=f"The {sizes} learner at {layout.lanes} lanes: {busy.sum():,} multiplies in {len(busy):,} cycles, "
                 f"{busy.sum() / (layout.lanes * len(busy)):.0%} of the multipliers' cycles")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
