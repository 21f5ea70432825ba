"""Figures of the architecture and results pages: ``python -m nfloop.scripts.figures docs/figures``.

The board speed chart reads ``bench_boards.json`` in the same folder, which
``nfloop bench --boards --json > docs/figures/bench_boards.json`` writes; from it the table in
``results.md`` beside the folder is regenerated too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from ..hdl.layout import CoreLayout  # noqa: E402
from ..hdl.sequencer import schedule  # noqa: E402
from ..model.config import load_config  # noqa: E402
from ..model.tasks import CONFIG_DIR  # noqa: E402

__all__ = ["block_diagram", "schedule_chart", "board_speed_chart", "bench_table", "with_bench_table"]

BENCH_FILE = "bench_boards.json"


def _box(ax, x, y, w, h, text, colour):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", fc=colour, ec="0.25", lw=1))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8.5)


def _arrow(ax, a, b, text=None, colour="0.2"):
    ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="->", color=colour, lw=1.2))
    if text:
        ax.text((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 0.12, text, ha="center", fontsize=7.5, color=colour)


def _path(ax, points, text=None, colour="0.2", at=0):
    """A polyline with an arrow head at its end; ``text`` beside segment ``at``."""
    xs, ys = zip(*points)
    ax.plot(xs[:-1], ys[:-1], color=colour, lw=1.2)
    _arrow(ax, points[-2], points[-1], colour=colour)
    if text:
        (x0, y0), (x1, y1) = points[at], points[at + 1]
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.1, text, ha="center", fontsize=7.5, color=colour)


def block_diagram(path: Path) -> Path:
    """The learner core's blocks and the data that flows between them."""
    fig, ax = plt.subplots(figsize=(11, 6.2))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 6.6)
    ax.axis("off")
    mem, unit, ctl, io = "#dbe8f6", "#fde9c8", "#e3f1dc", "#eeeeee"
    _box(ax, 0.2, 4.9, 1.6, 0.8, "i_stream\nx then y", io)
    _box(ax, 2.2, 4.9, 1.8, 0.8, "sample buffers\nx, y (double)", mem)
    _box(ax, 4.5, 5.5, 2.2, 0.8, "sequencer\none micro-op / cycle", ctl)
    _box(ax, 7.2, 5.5, 1.6, 0.8, "LFSR\n(stochastic)", ctl)
    _box(ax, 2.2, 2.6, 1.8, 1.7, "weight banks\n(one per lane)\nW acc, momentum,\nbatch sums", mem)
    _box(ax, 4.5, 2.6, 2.2, 1.7, "P MAC lanes\nreg -> x -> reg\n(one DSP each)\n+ accumulators", unit)
    _box(ax, 7.2, 3.5, 1.6, 0.8, "update units\nshift, round,\nmomentum, leak", unit)
    _box(ax, 7.2, 2.4, 1.6, 0.8, "backward\nadder tree", unit)
    _box(ax, 9.2, 3.5, 1.6, 0.8, "requantise +\nactivation", unit)
    _box(ax, 9.2, 2.4, 1.6, 0.8, "requantise +\nwindow", unit)
    _box(ax, 9.2, 0.5, 1.6, 1.1, "z, a, delta\nmemories\n(P per word)", mem)
    _box(ax, 4.5, 0.5, 2.2, 1.1, "error unit\ne = y - yhat\n+ output window", unit)
    _box(ax, 2.2, 0.5, 1.8, 1.1, "result FIFO", mem)
    _box(ax, 0.2, 0.7, 1.6, 0.8, "o_stream\nprediction, error", io)
    _box(ax, 0.2, 2.9, 1.6, 1.0, "weight port\nload / read back", io)
    _arrow(ax, (1.8, 5.3), (2.2, 5.3))
    _arrow(ax, (4.0, 5.1), (4.5, 3.9), "x")
    _arrow(ax, (5.6, 5.5), (5.6, 4.3), "micro-ops")
    _arrow(ax, (4.0, 3.45), (4.5, 3.45), "W view")
    _arrow(ax, (6.7, 3.9), (7.2, 3.9), "delta*a")
    _arrow(ax, (6.7, 2.8), (7.2, 2.8), "W*delta")
    _path(ax, [(6.7, 3.33), (9.0, 3.33), (9.2, 3.6)], "row sums")
    _path(ax, [(7.6, 4.3), (7.6, 4.6), (3.1, 4.6), (3.1, 4.3)], "W, V, S written back", "#a35a00", at=1)
    _arrow(ax, (8.8, 2.8), (9.2, 2.8), "W^T delta")
    _path(ax, [(10.8, 3.9), (10.95, 3.9), (10.95, 1.3), (10.8, 1.3)], "z, a", at=1)
    _arrow(ax, (10.0, 2.4), (10.0, 1.6), "delta")
    _arrow(ax, (9.2, 1.05), (6.7, 1.05), "a_L, z_L")
    _path(ax, [(9.2, 1.5), (7.0, 2.05), (6.0, 2.6)], "a, delta to the lanes", "#245")
    _arrow(ax, (4.5, 1.05), (4.0, 1.05))
    _arrow(ax, (2.2, 1.05), (1.8, 1.05))
    _arrow(ax, (1.8, 3.4), (2.2, 3.4))
    _arrow(ax, (8.0, 5.5), (8.0, 4.3))
    _path(ax, [(2.25, 4.9), (2.1, 4.7), (2.1, 2.2), (4.6, 1.6)], "y", at=1)
    ax.set_title("nfloop learner core: forward -> error -> backward/update, all from one config", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def start_label(phases) -> float:
    """Phases at least this long get a label."""
    return sum(c for _, c in phases) / 20


def schedule_chart(path: Path, config_name: str = "digits", lanes: int = 64) -> Path:
    """The cycles of one training step, phase by phase, against the MAC bound."""
    config = load_config(CONFIG_DIR / f"{config_name}.toml")
    layout = CoreLayout(config, lanes)
    phases = schedule(layout)
    colours = {"forward": "tab:blue", "drain": "0.8", "backward+update": "tab:orange", "update": "tab:green"}
    fig, ax = plt.subplots(figsize=(11, 2.6))
    start = 0
    for name, cycles in phases:
        colour = colours[name.split()[0]]
        ax.barh(1, cycles, left=start, color=colour, edgecolor="white")
        if cycles >= start_label(phases):
            ax.text(start + cycles / 2, 1, f"{name}\n{cycles}", ha="center", va="center", fontsize=8)
        start += cycles
    bound = config.mac_operations / lanes
    ax.barh(0, bound, color="0.35")
    ax.text(bound / 2, 0, f"MAC bound {bound:.1f}", ha="center", va="center", color="white", fontsize=8)
    budget = 1.3 * bound + 40
    ax.axvline(budget, color="tab:red", ls="--", lw=1)
    ax.text(budget + 2, 0.5, "budget\n1.3 x bound + 40", fontsize=7.5, color="tab:red", va="center")
    ax.set_yticks([0, 1], ["bound", f"schedule: {start}"])
    ax.set_xlabel("clock cycles")
    ax.set_title(f"One training step of the {'-'.join(map(str, config.sizes))} learner at P = {lanes} lanes")
    ax.set_xlim(0, max(start, budget) * 1.12)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def board_speed_chart(bench: dict, path: Path) -> Path:
    """Digits training steps per second on each board, against the model on one core in the same run."""
    section = bench["boards"]
    rows, reference = section["boards"], section["reference_steps_per_second"]
    names = [f"{r['board']}\n{r['lanes']} lane{'s' if r['lanes'] > 1 else ''}\n{r['clock_hz'] / 1e6:g} MHz"
             for r in rows]
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    # a board whose build does not meet its clock (or is missing) is drawn hollow
    closed = [r.get("meets_timing") is True for r in rows]
    bars = ax.bar(names, [r["steps_per_second"] for r in rows], color=["tab:blue" if c else "none" for c in closed],
                  edgecolor="tab:blue")
    for bar, r, c in zip(bars, rows, closed):
        label = f"{r['steps_per_second'] / 1e3:,.1f}k\n{r['over_reference']:g}x" + ("" if c else "\nno timed build")
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() * 1.08, label, ha="center", va="bottom",
                fontsize=8, bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    # the references in a legend: a label on the line would sit on a slow board's bar label
    ax.axhline(reference, color="tab:red", ls="--", lw=1,
               label=f"numpy fixed-point reference, one core: {reference / 1e3:.0f}k")
    compiled = section.get("compiled_steps_per_second")
    if compiled:
        ax.axhline(compiled, color="tab:purple", ls=":", lw=1,
                   label=f"compiled fixed-point model, one core: {compiled / 1e3:.0f}k")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_yscale("log")
    # every bar above the bottom, and room for the legend above the tallest
    lowest = min([reference] + [r["steps_per_second"] for r in rows])
    ax.set_ylim(lowest / 3, max(r["steps_per_second"] for r in rows) * 15)
    ax.set_ylabel("digits training steps / s")
    ax.set_title("Training speed on each board (64-32-10, one sample a step)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


#: The markers around the bench table in ``results.md``.
BENCH_TABLE = ("<!-- bench-boards -->", "<!-- /bench-boards -->")


def bench_table(bench: dict) -> str:
    """The Markdown table of ``nfloop bench --boards --json``: a row per board."""
    lines = ["| board | clock | lanes | cycles / step | steps / s | over the reference | streamed steps / s | build |",
             "|---|--:|--:|--:|--:|--:|--:|---|"]
    for r in bench["boards"]["boards"]:
        if r.get("meets_timing") is None:
            build = "missing"
        else:
            build = f"{'meets' if r['meets_timing'] else 'misses'}, {r['fmax_mhz']:.1f} MHz"
        lines.append(f"| {r['board']} | {r['clock_hz'] / 1e6:g} MHz | {r['lanes']} | {r['cycles_per_step']:,} | "
                     f"{r['steps_per_second']:,} | {r['over_reference']:.2f}x | {r['streamed_steps_per_second']:,} | "
                     f"{build} |")
    return "\n".join(lines)


def with_bench_table(page: str, bench: dict) -> str:
    """``page`` with the text between the :data:`BENCH_TABLE` markers replaced by :func:`bench_table`."""
    start, end = BENCH_TABLE
    head, rest = page.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{bench_table(bench)}\n{end}{tail}"


def main(folder: str = "docs/figures"):
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    figures = [block_diagram(out / "core_blocks.png"), schedule_chart(out / "core_schedule.png")]
    bench = out / BENCH_FILE
    if bench.is_file():
        figures.append(board_speed_chart(json.loads(bench.read_text()), out / "board_speed.png"))
        results = out.parent / "results.md"
        if results.is_file() and BENCH_TABLE[0] in results.read_text():
            results.write_text(with_bench_table(results.read_text(), json.loads(bench.read_text())))
            figures.append(results)
    else:
        print(f"no {bench}: run nfloop bench --boards --json > {bench} for the board speed chart")
    for figure in figures:
        print(figure)


if __name__ == "__main__":
    main(*sys.argv[1:])
