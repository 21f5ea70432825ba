"""The ``nfloop`` command line."""

from __future__ import annotations

import json
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import click
import numpy as np
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..boards.build import RESOURCE_NAMES, BuildError
from ..boards.catalog import BOARDS, VIRTUAL, BoardSpec, board_spec
from ..boards.protocol import LinkError, ProtocolError
from ..model.config import ConfigError, LearnerConfig, config_toml, load_config, path_problem, save_config
from ..model.tasks import BUILTIN_TASKS, CONFIG_DIR, Task, TaskError, default_config, load_task
from ..model.train import ARITHS, ENGINES, LEARNERS, TrainResult, train
from ..sim.toolchain import ToolchainError

err = Console(stderr=True)
out = Console()

DEFAULT_BAUD = 3_000_000    # the iCEBreaker's and the ULX3S's rate; the virtual boards ignore it


def fail(message: str, status: int = 2):
    """One line on stderr, in the same words as every other error, and the exit status."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(status)


#: Exit statuses, the same for every command (README.md): 0 success or all equal, 1 a bit-exact mismatch or
#: a build that misses timing, 2 usage or config error or a board built from another config, 3 the device or
#: link failed, 130 interrupted.
EXIT_MISMATCH, EXIT_USAGE, EXIT_LINK, EXIT_INTERRUPTED = 1, 2, 3, 130


class NfloopGroup(click.Group):
    """Turns the project's own errors, and click's usage errors, into one clear line and the exit status
    of its kind: 3 when the device or link failed, 2 otherwise."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LinkError as error:
            fail(str(error), EXIT_LINK)
        except (ConfigError, TaskError, ToolchainError, BuildError, ProtocolError) as error:
            fail(str(error), EXIT_USAGE)

    def main(self, *args, **kwargs):
        try:
            kwargs.pop("standalone_mode", None)
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as error:
            click.echo(error.ctx.get_help())
            sys.exit(0)
        except click.UsageError as error:
            fail(f"{error.format_message()} (see {error.ctx.command_path if error.ctx else 'nfloop'} -h)",
                 error.exit_code)
        except click.ClickException as error:
            fail(error.format_message(), error.exit_code)
        except (click.exceptions.Abort, KeyboardInterrupt):
            err.print("interrupted")
            sys.exit(EXIT_INTERRUPTED)


@click.group(cls=NfloopGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nfloop", prog_name="nfloop")
def cli():
    """nfloop: a learner whose optimiser is a high-gain negative feedback loop."""


# -- shared pieces --------------------------------------------------------------------------

def resolve_config(config: str | None, task: Task) -> LearnerConfig:
    """``--config`` is a TOML path or the name of a shipped config; default: the task's."""
    return default_config(task) if config is None else named_config(config)


def seed_option():
    return click.option("--seed", type=click.IntRange(min=0),
                        help="Initial weights (the config's init seed) and sample order; default: the config's "
                             "init seed and order 0.")


def make_folder(path: Path) -> Path:
    """``path`` and its parents, or one line saying why not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail(f"cannot create the folder {path}: {error.strerror or error}; choose another -o/--output")
    return path


def with_seed(config: LearnerConfig, seed: int | None) -> LearnerConfig:
    """``--seed``, the same in every command: it sets the initial weights (and, where it is used, the
    sample order), so train --arith fixed, sim and compare with the same flags train the same model."""
    return config if seed is None else config.with_changes(init_seed=seed)


def named_config(config: str) -> LearnerConfig:
    """A config from a TOML path or a shipped config's name."""
    shipped = sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))
    path = CONFIG_DIR / f"{config}.toml" if config in shipped else Path(config)
    problem = path_problem(path, "Config file", "a TOML config file")
    if problem:
        raise ConfigError(f"{problem} (or name a shipped config: {', '.join(shipped)})")
    return load_config(path)


@contextmanager
def progress_bar(total: int, description: str, enabled: bool = True, unit: str = "steps"):
    """A progress bar on stderr when it is a terminal; yields ``advance(n)``."""
    if not (enabled and err.is_terminal):
        yield lambda n: None
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn(unit), TimeRemainingColumn()]
    with Progress(*columns, console=err, transient=True) as bar:
        task_id = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task_id, n)


def engine_option():
    return click.option("--engine", type=click.Choice(ENGINES), default="compiled", show_default=True,
                        help="The fixed-point model's implementation: compiled (numba) or numpy, the readable "
                             "specification. Both give the same integers.")


def run_training(config, task, learner, arith, epochs, seed, show_progress=True, record=False, engine="compiled"):
    epochs = task.default_epochs if epochs is None else epochs
    total = epochs * len(task.x_train)
    with progress_bar(total, f"{task.name} {learner}/{arith}", show_progress) as advance:
        return train(config, task, learner=learner, arith=arith, epochs=epochs, seed=seed,
                     progress=advance, record_weights=record, engine=engine)


def finite_json(value):
    """``value`` with NaN and infinities as null: valid JSON (a diverged run says so in its warnings)."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_json(v) for v in value]
    return value


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _fmt(value, pct=False):
    if value is None:
        return "-"
    return f"{value:.1%}" if pct else f"{value:.3g}"


def results_table(results: list[TrainResult], title: str) -> Table:
    """One row per run; fits an 80-column terminal."""
    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False,
                  caption="ep: epochs; MSE ep0: train MSE before training; MSE end: after it; "
                          "test acc: test accuracy; s: seconds")
    for name in ("task", "learner", "arith", "ep", "MSE ep0", "MSE end", "test MSE", "test acc", "s"):
        left = name in ("task", "learner", "arith")
        table.add_column(name, justify="left" if left else "right", no_wrap=True)
    for r in results:
        f = r.final
        table.add_row(r.task, r.learner, r.arith,
                      str(r.epochs), _fmt(r.history[0].train_mse), _fmt(f.train_mse),
                      _fmt(f.test_mse), _fmt(f.test_accuracy, pct=True), f"{r.seconds:.1f}")
    return table


def print_verdict(result, what: str):
    """The last line of a hardware-against-model run: where they first differ, or that they never do."""
    if result.first_mismatch:
        out.print(f"[bold red]first mismatch:[/] {result.first_mismatch}")
    else:
        out.print(f"bit-exact: {what}, 0 mismatches")


def print_warnings(warnings):
    for w in warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)


# -- train ----------------------------------------------------------------------------------

@cli.command("train")
@click.option("--task", "task_name", required=True, metavar="NAME|PATH",
              help=f"Built-in task ({', '.join(BUILTIN_TASKS)}) or a .npz / .csv file.")
@click.option("--learner", type=click.Choice(LEARNERS), default="feedback", show_default=True,
              help="feedback: the loop with its windows; gradient: the same network by gradient descent.")
@click.option("--arith", type=click.Choice(ARITHS), default="float", show_default=True,
              help="float: the float model; fixed: the bit-level fixed-point model the hardware is held to.")
@click.option("--config", "config_name", metavar="FILE|NAME", help="Learner config (TOML) or a shipped config name.")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs (default: the task's).")
@seed_option()
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write learning curves to this PNG.")
@click.option("--save", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the trained weights to this .npz (the layout nfloop weights write reads).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@engine_option()
def train_command(task_name, learner, arith, config_name, epochs, seed, plot, save, as_json, engine):
    """Train a learner on a task and report its errors."""
    task = load_task(task_name)
    config = with_seed(resolve_config(config_name, task), seed)
    with np.errstate(over="ignore", invalid="ignore"):     # a diverging float run is reported once, below
        result = run_training(config, task, learner, arith, epochs, seed or 0, show_progress=True, engine=engine)
    if not all(np.all(np.isfinite(w)) for w in result.model.weights):
        result.warnings.append("training diverged: weights reached NaN or infinity (lower the gains: larger "
                               "gain shifts)")
    print_warnings(result.warnings)
    if save:
        from ..model.weights import save_weights
        save = save if save.suffix else save.with_suffix(".npz")
        make_folder(save.parent)
        model = result.model
        save_weights(save, model.config, model.real_weights(), model.weights if arith == "fixed" else None)
    if plot:
        plot = plot if plot.suffix else plot.with_suffix(".png")
        from .plots import learning_curves
        make_folder(plot.parent)
        learning_curves([result], plot, task.name)
    if as_json:
        out.print_json(json.dumps(finite_json(result.summary())))
    else:
        out.print(results_table([result], f"nfloop train: {task.description or task.name}"))
        if plot:
            out.print(f"learning curves: {plot}")


# -- config ---------------------------------------------------------------------------------

@cli.command("config")
@click.option("--task", "task_name", required=True, metavar="NAME|PATH",
              help=f"Built-in task ({', '.join(BUILTIN_TASKS)}) or a .npz / .csv file: the config is sized for it.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the TOML here (default: print it).")
@click.option("--force", is_flag=True, help="Overwrite the --output file if it exists.")
def config_command(task_name, output, force):
    """Print or save the default learner config of a task, as a starting point."""
    config = default_config(load_task(task_name))
    if output and output.exists() and not force:
        fail(f"{output} exists: pass --force to overwrite it, or choose another -o")
    if output:
        save_config(config, output)
        err.print(f"wrote {escape(str(output))}", highlight=False, soft_wrap=True)
    else:
        click.echo(config_toml(config), nl=False)


# -- demo -----------------------------------------------------------------------------------

@cli.command("demo")
@click.option("-o", "--output", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("nfloop-demo"), show_default=True, help="Folder for the figures and summary.")
@click.option("--quick", is_flag=True, help="Fewer epochs, for a smoke test.")
def demo_command(out_dir, quick):
    """The main job on the built-in data: the staircase neuron and the digits classifier,
    the loop against gradient descent, in float and in fixed point."""
    from .plots import learning_curves, staircase_fit, staircase_trajectory
    make_folder(out_dir)
    start = time.perf_counter()
    summary, figures, warnings = {}, [], []

    stair = load_task("staircase")
    cfg = default_config(stair)
    runs = [run_training(cfg, stair, learner, arith, 3 if quick else None, 0, record=True)
            for arith in ARITHS for learner in LEARNERS]
    out.print(results_table(runs, "Staircase neuron y = sigma(w x + b), from (w, b) = (0.3, 0.8)"))
    figures += [learning_curves(runs, out_dir / "staircase_learning.png", "staircase"),
                staircase_fit(stair, runs, out_dir / "staircase_fit.png"),
                staircase_trajectory(stair, runs, out_dir / "staircase_trajectory.png")]
    summary["staircase"] = [r.summary() | {"final_weights": r.final.weights[0].tolist()} for r in runs]

    digits = load_task("digits")
    digit_runs = []
    for config_name in ("digits", "digits_staircase"):
        cfg = resolve_config(config_name, digits)
        runs = [run_training(cfg, digits, learner, arith, 2 if quick else None, 0)
                for arith in ARITHS for learner in LEARNERS]
        for r in runs:
            r.task = {"digits_staircase": "digits/stair"}.get(config_name, config_name)
        digit_runs += runs
        figures.append(learning_curves(runs, out_dir / f"{config_name}_learning.png",
                                       f"{config_name} (64-32-10)"))
        summary[config_name] = [r.summary() for r in runs]
    out.print(results_table(digit_runs, "Digits 64-32-10: ReLU hidden units, then staircase hidden units"))

    cosim = run_cosim(default_config(digits), digits, 8, None if quick else 1, 200 if quick else None, 0)
    verdict = "bit-exact" if cosim.mismatches == 0 else "MISMATCH"
    trained = "200 steps" if quick else "1 epoch"
    out.print(f"Digits learner in the simulated hardware (Verilator, 8 lanes): {verdict}: "
              f"{cosim.steps:,} steps, {cosim.mismatches} mismatches; {cosim.cycles_per_step:.0f} cycles "
              f"per step (MAC bound {cosim.mac_bound_cycles_per_step:.0f}); test accuracy after {trained} "
              f"(the tables above train {digits.default_epochs}): {cosim.test_accuracy:.2%} on the hardware, "
              f"{cosim.model_test_accuracy:.2%} in the model",
              highlight=False, soft_wrap=True)
    summary["hardware"] = cosim.summary()
    board = compare_on_virtual_board(default_config(digits), digits.head(200) if quick else digits, 1)
    verdict = "bit-exact" if board.mismatches == 0 else "MISMATCH"
    out.print(f"Digits learner on the virtual board (board top in Verilator, over its UART): {verdict}: "
              f"{board.steps:,} steps, {board.mismatches} mismatches, test accuracy after "
              f"{'200 steps' if quick else '1 epoch'}: {board.test_accuracy:.2%} on the board, "
              f"{board.model_test_accuracy:.2%} in the model",
              highlight=False, soft_wrap=True)
    summary["virtual_board"] = board.summary()
    from ..hdl.layout import CoreLayout
    from .plots import hardware_against_model, schedule_utilisation
    figures += [hardware_against_model(cosim, board, out_dir / "hardware_vs_model.png", "digits"),
                schedule_utilisation(CoreLayout(default_config(digits), 8), out_dir / "schedule_utilisation.png")]
    for runs in summary.values():
        for r in runs if isinstance(runs, list) else [runs]:
            warnings += r["warnings"]
    print_warnings(sorted(set(warnings)))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    for result in (cosim, board):
        if result.mismatches:
            err.print(f"[bold red]hardware and model differ:[/] {result.first_mismatch}")
            sys.exit(EXIT_MISMATCH)
    out.print(f"figures and summary.json in [bold]{out_dir}/[/]: "
              + ", ".join(p.name for p in figures) + f"  ({time.perf_counter() - start:.0f} s)")


def compare_on_virtual_board(config, task, epochs):
    from ..boards.client import BoardClient
    from ..boards.compare import compare_board
    from ..boards.virtual import VirtualBoard
    with step_status(f"virtual board for {config.name or 'the config'}") as step:
        step("building its Verilator model (once per config, then cached) and starting it")
        board = VirtualBoard(config, log=lambda text: err.print(text, highlight=False))
    with board, BoardClient(board.url) as client, \
            progress_bar(epochs * len(task.x_train), f"{task.name} virtual board vs model") as advance:
        return compare_board(client, config, task, epochs=epochs, progress=advance)


# -- sim, verilog ---------------------------------------------------------------------------

LANE_CHOICES = [str(1 << k) for k in range(7)]      # the core takes 1 .. 64 lanes, powers of two


def _lanes_option(default=8):
    return click.option("--lanes", type=click.Choice(LANE_CHOICES), default=str(default), show_default=True,
                        callback=lambda ctx, param, value: int(value), help="MAC lanes P.")


def _step_window(ctx, param, value):
    if value is None:
        return None
    first, sep, last = value.partition(":")
    if not (sep and first.isdigit() and last.isdigit() and int(first) <= int(last)):
        raise click.BadParameter(f"{value!r} is not FIRST:LAST, two step numbers with FIRST <= LAST (e.g. 0:49)")
    return int(first), int(last)


def trace_limit_option():
    return click.option("--trace-limit", type=click.IntRange(min=1), default=300, show_default=True, metavar="MB",
                        help="Refuse (sim) or stop (serve-sim) a waveform larger than this many megabytes.")


def check_trace_size(config, task, lanes, trace, window, total, limit_mb):
    """Measure a short waveform of this core, and refuse a run whose waveform would pass the limit."""
    import tempfile

    from ..model.train import encode
    from ..sim.verilated import VerilatedCore
    with step_status("estimating the waveform's size") as step:
        step(f"recording 4 steps of the {lanes}-lane core")
        codes = encode(config, task)
        with tempfile.TemporaryDirectory() as folder:
            probe = Path(folder) / f"probe{trace.suffix}"
            with VerilatedCore(config, lanes, trace=probe) as core:
                core.train(codes.x_train[:4].repeat(1 + 4 // len(codes.x_train), 0)[:4],
                           codes.y_train[:4].repeat(1 + 4 // len(codes.y_train), 0)[:4])
            per_step = probe.stat().st_size / 4
    steps = total if window is None else max(0, min(window[1], total - 1) - window[0] + 1)
    estimate = per_step * steps
    if estimate > limit_mb * 1e6:
        fits = max(1, int(limit_mb * 1e6 // per_step))
        start = window[0] if window else 0
        fail(f"the waveform would be about {estimate / 1e6:,.0f} MB ({plural(steps, 'step')} x "
             f"{per_step / 1e6:.2f} MB), over --trace-limit {limit_mb} MB: record fewer steps with --trace-steps "
             f"FIRST:LAST (e.g. --trace-steps {start}:{start + fits - 1}, about {fits * per_step / 1e6:,.0f} MB), "
             f"or raise --trace-limit")
    return estimate


def run_cosim(config, task, lanes, epochs, steps, seed, trace=None, show_progress=True, engine="compiled",
              trace_steps=None, convert=None):
    from ..sim.cosim import cosimulate
    from ..sim.verilated import build_library, trace_kind
    total = steps if steps is not None else len(task.x_train) * (task.default_epochs if epochs is None else epochs)
    with step_status(f"Verilator model of the {config.name or 'learner'} core, {plural(lanes, 'lane')}") as step:
        step("compiling (once per config and lanes, then cached)")
        build_library(config, lanes, trace_kind(trace), log=lambda text: err.print(text, highlight=False),
                      convert=convert)
    with progress_bar(total, f"{task.name} hardware vs model", show_progress) as advance:
        return cosimulate(config, task, lanes=lanes, epochs=epochs, steps=steps, seed=seed, trace=trace,
                          progress=advance, log=lambda text: err.print(text, highlight=False), engine=engine,
                          trace_steps=trace_steps, convert=convert)


@cli.command("sim")
@click.option("--task", "task_name", required=True, metavar="NAME|PATH",
              help=f"Built-in task ({', '.join(BUILTIN_TASKS)}) or a .npz / .csv file.")
@click.option("--config", "config_name", metavar="FILE|NAME", help="Learner config (TOML) or a shipped config name.")
@click.option("--epochs", type=click.IntRange(min=1), help="Whole epochs (default: the task's).")
@click.option("--steps", type=click.IntRange(min=1), help="Or this many training steps.")
@_lanes_option()
@seed_option()
@click.option("--trace", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a waveform here: FILE.fst or FILE.vcd.")
@click.option("--trace-steps", callback=_step_window, metavar="FIRST:LAST",
              help="Record only these training steps (counted from 0, both included).")
@trace_limit_option()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@engine_option()
@click.option("--netlist", "family", metavar="FAMILY",
              help="Simulate the core as FAMILY's gate-level netlist (ice40, ecp5, gowin): Yosys's synthesis "
                   "and the cells' models.")
def sim_command(task_name, config_name, epochs, steps, lanes, seed, trace, trace_steps, trace_limit, as_json,
                engine, family):
    """Run the Verilated core beside the fixed-point model and compare them bit for bit.

    With --netlist FAMILY the core is first synthesised as a board build of that family would
    synthesise it, and simulated cell by cell. Exit status 1 on any mismatch.
    """
    if epochs is not None and steps is not None:
        raise click.UsageError("give --epochs or --steps, not both")
    if trace_steps and not trace:
        raise click.UsageError("--trace-steps selects steps of a waveform: give --trace FILE.vcd too")
    task = load_task(task_name)
    config = with_seed(resolve_config(config_name, task), seed)
    if trace:
        total = steps or len(task.x_train) * (task.default_epochs if epochs is None else epochs)
        check_trace_size(config, task, lanes, trace, trace_steps, total, trace_limit)
    convert = None
    if family is not None:
        from ..boards.netlist import core_netlist
        convert = core_netlist(family, log=lambda text: err.print(text, highlight=False))
    result = run_cosim(config, task, lanes, epochs, steps, seed or 0, trace, engine=engine, trace_steps=trace_steps,
                       convert=convert)
    print_warnings(result.warnings)
    summary = result.summary()
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        level = f", {family} netlist" if family else ""
        table = Table(title=f"nfloop sim: {task.name}, {plural(lanes, 'lane')}{level}", box=box.SIMPLE_HEAD,
                      show_header=False)
        table.add_column("")
        table.add_column("", justify="right")
        rows = [("steps", f"{result.steps:,}"), ("weight checkpoints", str(result.checkpoints)),
                ("mismatches", str(result.mismatches)),
                ("cycles per step", f"{result.cycles_per_step:.1f}"),
                ("MAC bound", f"{result.mac_bound_cycles_per_step:.1f}"),
                ("simulated cycles/s", f"{result.sim_cycles_per_second:,.0f}")]
        if result.test_accuracy is not None:
            rows += [("test accuracy (hardware)", f"{result.test_accuracy:.2%}"),
                     ("test accuracy (model)", f"{result.model_test_accuracy:.2%}")]
        elif result.test_mse is not None:
            rows += [("test MSE (hardware)", f"{result.test_mse:.4g}"),
                     ("test MSE (model)", f"{result.model_test_mse:.4g}")]
        for row in rows:
            table.add_row(*row)
        out.print(table)
        print_verdict(result, f"{result.steps:,} steps")
    if result.mismatches:
        sys.exit(EXIT_MISMATCH)


@cli.command("verilog")
@click.option("--config", "config_name", metavar="FILE|NAME", default="digits", show_default=True,
              help="Learner config (TOML) or a shipped config name.")
@_lanes_option()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The Verilog file to write.")
def verilog_command(config_name, lanes, output):
    """Write the learner core as Verilog (module nfloop_core)."""
    from ..sim.verilog import core_verilog
    config = named_config(config_name)
    make_folder(output.parent)
    output.write_text(core_verilog(config, lanes))
    err.print(f"wrote {escape(str(output))} ({plural(lanes, 'lane')}, {'-'.join(map(str, config.sizes))})",
              highlight=False, soft_wrap=True)


# -- prove ----------------------------------------------------------------------------------

PROOF_STYLE = {"proved": "green", "bounded": "green", "failed": "bold red"}
COMMAND_DEPTH = 40      # the command unit's bound: a WRITE_WEIGHTS frame's first write comes at about 35


@cli.command("prove")
@click.option("--config", "config_name", metavar="FILE|NAME", default="digits", show_default=True,
              help="Learner config (TOML) or a shipped config name.")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the proofs run and counterexamples go (default: build/prove/CONFIG).")
@click.option("--depth", type=click.IntRange(min=2), default=COMMAND_DEPTH, show_default=True,
              help="Cycles from reset the protocol engine's command unit is checked for (bounded).")
@click.option("--json", "as_json", is_flag=True, help='Print {"properties": [...], "failed": N} as JSON.')
def prove_command(config_name, out_dir, depth, as_json):
    """Prove the core's arithmetic, the UART receiver and the protocol engine with SymbiYosys and
    Yices (pip wheels).

    Every arithmetic unit of the core (the error unit, each layer's window and writebacks, the update
    unit) equals its model function with exact arithmetic and saturation, for all inputs, by
    k-induction. The frame receiver returns to idle after a quiet line (k-induction); the UART
    receiver and the command unit (bad frames and rejected commands change nothing) are checked to a
    bound. A failed property's counterexample is written as a VCD. Exit status 1 if any fails.
    """
    from ..boards.geometry import BoardGeometry
    from ..boards.link.proofs import engine_properties
    from ..sim.formal import formal_tools, prove
    from ..sim.proofs import core_properties, uart_properties
    config = named_config(config_name)
    out_dir = make_folder(out_dir or Path("build") / "prove" / config.name)
    tools = formal_tools()
    properties = (core_properties(config) + uart_properties()
                  + engine_properties(BoardGeometry(config, VIRTUAL), depth))
    results = []
    with progress_bar(len(properties), f"proving {config.name}", unit="properties") as advance:
        for prop in properties:
            results.append(prove(prop, out_dir, tools))
            advance(1)
    failed = [r for r in results if r.status == "failed"]
    if as_json:
        out.print_json(json.dumps({"config": config.name, "properties": [r.as_json() for r in results],
                                   "failed": len(failed)}))
    else:
        table = Table(title=f"nfloop prove: {config.name}", box=box.SIMPLE_HEAD)
        for column in ("property", "claim", "status", "depth", "s"):
            table.add_column(column, justify="right" if column in ("depth", "s") else "left")
        for r in results:
            table.add_row(escape(r.name), escape(r.claim), f"[{PROOF_STYLE[r.status]}]{r.status}[/]", str(r.depth),
                          f"{r.seconds:.0f}")
        out.print(table)
    for r in failed:
        err.print(f"[bold red]failed:[/] {escape(r.name)}: the assertion at {escape(str(r.where))}; "
                  f"counterexample {escape(str(r.trace))}", highlight=False, soft_wrap=True)
    if failed:
        sys.exit(EXIT_MISMATCH)


# -- bench ----------------------------------------------------------------------------------

def bench_model(steps: int, repeats: int) -> dict:
    """Training steps per second of the fixed-point model (numpy and compiled engines) and the float model
    on the digits network, measured in one run."""
    from ..model.fixed import FixedLearner
    from ..model.floating import FloatLearner
    from ..model.train import encode
    task = load_task("digits")
    config = default_config(task)
    codes = encode(config, task)
    order = np.arange(steps) % len(codes.x_train)
    FixedLearner(config, engine="compiled").train_order(codes.x_train, codes.y_train, order[:1])  # compile or load

    def fixed(model):
        model.train_order(codes.x_train, codes.y_train, order)

    def floating(model):
        for k in order:
            model.step(task.x_train[k], task.y_train[k])

    figures = {}
    for name, make, run in (("fixed", lambda: FixedLearner(config), fixed),
                            ("compiled", lambda: FixedLearner(config, engine="compiled"), fixed),
                            ("float", lambda: FloatLearner(config), floating)):
        best = float("inf")
        for _ in range(repeats):
            model = make()
            t0 = time.perf_counter()
            run(model)
            best = min(best, time.perf_counter() - t0)
        figures[name] = steps / best
    macs = config.mac_operations
    return {"network": "-".join(map(str, config.sizes)), "steps": steps, "repeats": repeats,
            "fixed_steps_per_second": round(figures["fixed"]),
            "compiled_steps_per_second": round(figures["compiled"]),
            "compiled_over_numpy": round(figures["compiled"] / figures["fixed"], 2),
            "float_steps_per_second": round(figures["float"]),
            "fixed_over_float": round(figures["fixed"] / figures["float"], 3),
            "macs_per_step": macs, "compiled_macs_per_second": round(figures["compiled"] * macs)}


def budget(bound: float) -> float:
    """The cycles a step may take against its MAC bound."""
    return 1.3 * bound + 40


def bench_hdl(lanes_list, steps: int, tasks=("digits", "iris", "xor", "staircase")) -> list[dict]:
    """Cycles per training step of the Verilated core against the MAC bound."""
    from ..model.train import encode, sample_order
    from ..sim.verilated import VerilatedCore
    rows = []
    total, done = len(tasks) * len(lanes_list), 0
    for name in tasks:
        task = load_task(name)
        config = default_config(task)
        codes = encode(config, task)
        for lanes in lanes_list:
            done += 1
            with step_status(f"bench --hdl {done} of {total}: {name}, {plural(lanes, 'lane')}") as step:
                step("Verilator model (built once per config and lanes, then cached)")
                core = VerilatedCore(config, lanes)
            idx = np.concatenate(sample_order(len(codes.x_train), None, steps, 0))
            cycles0, t0 = core.cycles, time.perf_counter()
            with step_status(f"bench --hdl {done} of {total}: {name}, {plural(lanes, 'lane')}") as step:
                step(f"training {len(idx)} steps")
                core.train(codes.x_train[idx], codes.y_train[idx])
            seconds = time.perf_counter() - t0
            bound = config.mac_operations / lanes
            per_step = core.step_cycles / core.steps
            rows.append({"task": name, "network": "-".join(map(str, config.sizes)), "lanes": lanes,
                         "steps": int(core.steps), "cycles_per_step": round(per_step, 1),
                         "mac_bound_cycles_per_step": round(bound, 1),
                         "ratio": round(per_step / bound, 3),
                         "budget_1.3x_plus_40": round(budget(bound), 1),
                         "within_budget": per_step <= budget(bound),
                         "sim_cycles_per_second": round((core.cycles - cycles0) / seconds)})
            core.close()
    return rows


def build_status(spec, config, build_root: Path = Path("build")) -> dict:
    """``build``, ``meets_timing`` and ``fmax_mhz`` of the board's last build under ``build_root``:
    ``present``, or why it is not this source's (missing, other lanes or clock, other gateware)."""
    from .board_table import last_build
    built, report, current = last_build(build_root, spec, config)
    if report is None:
        return {"build": f"missing: nfloop build --board {spec.name} writes {built}", "meets_timing": None,
                "fmax_mhz": None}
    status = {"build": "present", "meets_timing": report.get("meets_timing"), "fmax_mhz": report.get("fmax_mhz")}
    rebuild = f"rebuild with nfloop build --board {spec.name}"
    if report.get("lanes") != spec.lanes or report.get("clock_mhz") != spec.clock_hz / 1e6:
        status["build"] = f"stale: built with {report.get('lanes')} lanes at {report.get('clock_mhz')} MHz; {rebuild}"
    elif not current:
        status["build"] = f"stale: built from other gateware ({report.get('gateware')}); {rebuild}"
    return status


def bench_boards(steps: int, build_root: Path = Path("build")) -> dict:
    """Digits training steps per second on each board, from its clock and the exact schedule at its lanes
    (checked in Verilator), against the fixed-point reference model measured in the same run."""
    from ..boards.geometry import BoardGeometry
    from ..hdl.layout import CoreLayout
    from ..hdl.sequencer import step_cycles
    from ..model.train import encode
    from ..sim.verilated import VerilatedCore
    task = load_task("digits")
    config = default_config(task)
    codes = encode(config, task)
    with step_status("bench --boards") as step:
        step("the fixed-point reference model on digits, numpy and compiled (best of 3 x 2000 steps)")
        model = bench_model(2000, 3)
        reference, compiled = model["fixed_steps_per_second"], model["compiled_steps_per_second"]
    rows = []
    for index, spec in enumerate(BOARDS.values(), start=1):
        layout = CoreLayout(config, spec.lanes, narrow=spec.narrow)
        cycles = step_cycles(layout)
        with step_status(f"bench --boards {index} of {len(BOARDS)}: {spec.name}, {plural(spec.lanes, 'lane')}") as step:
            step("Verilator model (built once per config and lanes, then cached)")
            with VerilatedCore(config, spec.lanes, narrow=spec.narrow) as core:
                step(f"training {steps} steps")
                core.train(codes.x_train[:steps], codes.y_train[:steps])
                measured = core.step_cycles / core.steps
        if measured != cycles:
            raise click.ClickException(f"{spec.name}: the Verilated core took {measured:.2f} cycles per step, the "
                                       f"schedule says {cycles}")
        geometry = BoardGeometry(config, spec)
        steps_per_second = spec.clock_hz / cycles
        link = spec.baud / 10                      # 8N1: ten bits a byte
        row = {"board": spec.name, "clock_hz": spec.clock_hz, "lanes": spec.lanes, "columns": list(layout.columns),
               "cycles_per_step": cycles, "mac_bound_cycles_per_step": round(layout.mac_bound_cycles(), 1),
               "cycles_checked_in_verilator": True,
               "steps_per_second": round(steps_per_second), "reference_steps_per_second": reference,
               "over_reference": round(steps_per_second / reference, 2),
               "compiled_steps_per_second": compiled, "over_compiled": round(steps_per_second / compiled, 2),
               "link_bytes_per_second": round(link), "bytes_per_sample": 2 * geometry.record_words,
               "streamed_steps_per_second": round(link / (2 * geometry.record_words)),
               "capacity_samples": geometry.capacity}
        row.update(build_status(spec, config, build_root))
        rows.append(row)
    return {"network": "-".join(map(str, config.sizes)), "reference_steps_per_second": reference,
            "compiled_steps_per_second": compiled, "boards": rows}


def boards_bench_table(result: dict) -> Table:
    table = Table(title=f"Digits ({result['network']}) training on each board", box=box.SIMPLE_HEAD)
    for name in ("board", "clock", "lanes", "cycles/step", "steps/s", "x numpy", "x compiled", "link B/s", "fmax",
                 "timing"):
        table.add_column(name, justify="left" if name in ("board", "timing") else "right")
    for row in result["boards"]:
        timing = {True: "[green]met[/]", False: "[bold red]missed[/]", None: "no build"}[row["meets_timing"]]
        if row["build"].startswith("stale"):
            timing = "stale build"
        table.add_row(row["board"], f"{row['clock_hz'] / 1e6:g} MHz", str(row["lanes"]), str(row["cycles_per_step"]),
                      f"{row['steps_per_second']:,}", f"{row['over_reference']:g}", f"{row['over_compiled']:g}",
                      f"{row['link_bytes_per_second']:,}",
                      "-" if row["fmax_mhz"] is None else f"{row['fmax_mhz']:.1f} MHz", timing)
    return table


@cli.command("bench")
@click.option("--model", "bench_model_flag", is_flag=True, help="Reference-model training steps per second.")
@click.option("--hdl", "bench_hdl_flag", is_flag=True, help="Core cycles per step against the MAC bound (Verilator).")
@click.option("--boards", "bench_boards_flag", is_flag=True,
              help="Digits steps per second on each board at its clock and lanes, against the reference model.")
@click.option("--steps", type=click.IntRange(min=1), help="Steps per measurement (model: 5000, hdl: 1400).")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True, help="Model runs; best is kept.")
@click.option("--lanes", "lanes_list", type=click.Choice(LANE_CHOICES), multiple=True,
              callback=lambda ctx, param, value: tuple(int(v) for v in value),
              help="Lanes for --hdl (repeatable; default 1, 8, 16, 32, 64).")
@click.option("--task", "tasks", multiple=True, type=click.Choice(["digits", "iris", "xor", "staircase"]),
              help="Networks for --hdl (repeatable; default all four).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def bench_command(bench_model_flag, bench_hdl_flag, bench_boards_flag, steps, repeats, lanes_list, tasks, as_json):
    """Benchmarks that print figures."""
    if not (bench_model_flag or bench_hdl_flag or bench_boards_flag):
        raise click.UsageError("choose what to benchmark: --model, --hdl and/or --boards")
    result = {}
    if bench_model_flag:
        result["model"] = bench_model(steps or 5000, repeats)
    if bench_hdl_flag:
        result["hdl"] = bench_hdl(lanes_list or (1, 8, 16, 32, 64), steps or 1400,
                                  tasks or ("digits", "iris", "xor", "staircase"))
    if bench_boards_flag:
        result["boards"] = bench_boards(steps or 700)
    if as_json:
        out.print_json(json.dumps(result))
        return
    if "model" in result:
        m = result["model"]
        table = Table(title=f"The model on digits {m['network']}", box=box.SIMPLE_HEAD,
                      caption=f"best of {repeats} runs of {m['steps']:,} steps")
        table.add_column("model")
        table.add_column("steps/s", justify="right")
        table.add_row("fixed point, numpy (the specification)", f"{m['fixed_steps_per_second']:,}")
        table.add_row("fixed point, compiled (numba)", f"{m['compiled_steps_per_second']:,}")
        table.add_row("float", f"{m['float_steps_per_second']:,}")
        out.print(table)
        out.print(f"compiled / numpy: {m['compiled_over_numpy']:.1f}; fixed (numpy) / float: "
                  f"{m['fixed_over_float']:.2f}; compiled: {m['compiled_macs_per_second'] / 1e6:,.0f} M "
                  f"multiply-accumulates/s ({m['macs_per_step']:,} a step)")
    if "hdl" in result:
        table = Table(title="Learner core (Verilator): cycles per training step", box=box.SIMPLE_HEAD)
        for name in ("task", "P", "cycles/step", "MAC bound", "ratio", "budget", "sim cycles/s"):
            table.add_column(name, justify="left" if name == "task" else "right")
        for row in result["hdl"]:
            table.add_row(row["task"], str(row["lanes"]), f"{row['cycles_per_step']:.1f}",
                          f"{row['mac_bound_cycles_per_step']:.1f}", f"{row['ratio']:.2f}",
                          f"{row['budget_1.3x_plus_40']:.0f}", f"{row['sim_cycles_per_second']:,}")
        out.print(table)
        out.print("MAC bound: multiplies per step (forward + backward + update) / P; "
                  "budget: 1.3 x bound + 40.")
    if "boards" in result:
        out.print(boards_bench_table(result["boards"]))
        b = result["boards"]
        out.print(f"reference: the fixed-point model on one core of this machine, measured in this run: numpy "
                  f"{b['reference_steps_per_second']:,} steps/s, compiled {b['compiled_steps_per_second']:,} steps/s; "
                  f"cycles per step from the exact schedule, checked in Verilator")

# -- explore ----------------------------------------------------------------------------------

def _boards_list(ctx, param, value):
    if value is None:
        return None
    names = tuple(b.strip() for b in value.split(",") if b.strip())
    for name in names:
        board_spec(name)
    return names


def _adaptive_table(summary, tasks, ariths) -> Table:
    """Per task and arithmetic, the mean test score at each starting gain offset: fixed gains, adaptive gains,
    gradient descent."""
    offsets = sorted({e["gain_offset"] for e in summary})
    table = Table(title="nfloop study --adaptive: test score (mean over seeds) by starting gain offset (gains "
                        "fixed, adaptive, and gradient descent)", box=box.SIMPLE_HEAD)
    for column in ("task", "arith", "learner", *(f"{o:+d}" for o in offsets)):
        table.add_column(column, justify="left" if column in ("task", "arith", "learner") else "right")
    names = {"feedback": "loop, fixed", "adaptive": "loop, adaptive", "gradient": "GD"}
    for name in tasks:
        task = load_task(name)
        for a in ariths:
            for learner, shown in names.items():
                means = {e["gain_offset"]: e["mean"] for e in summary
                         if (e["task"], e["arith"], e["learner"]) == (task.name, a, learner)}
                table.add_row(task.name, a, shown, *("-" if means.get(o) is None else f"{means[o]:.3f}"
                                                     for o in offsets))
    return table


@cli.command("study")
@click.option("--task", "task_names", multiple=True, metavar="NAME|PATH",
              help="A task to study (repeat for several; default: moons, circles, breast_cancer, wine, iris).")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Trainings per variant (initial weights and sample order); mean and spread are reported.")
@click.option("--arith", type=click.Choice(["float", "fixed", "both"]), default="both", show_default=True,
              help="Arithmetic of the trainings: the float model, the fixed-point model, or each.")
@click.option("--workers", type=click.IntRange(min=1), help="Local worker processes (default: the CPU count).")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), default="nfloop-study",
              show_default=True, help="Where study.json and a figure per task go.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead of a table.")
@click.option("--adaptive", is_flag=True,
              help="Compare fixed and adaptive gains instead: the loop with the default windows at every gain "
                   "offset, its gains fixed and adapting from there, beside gradient descent.")
@click.option("--dead-units", is_flag=True,
              help="Run the dying-ReLU experiment instead (float, default task moons): hidden biases start at 0, "
                   "-1 and -1.5; the fraction of dead hidden units over the epochs, gradient descent against the loop.")
def study_command(task_names, seeds, arith, workers, out_dir, as_json, adaptive, dead_units):
    """The window and gain study: every hidden-layer window and gain offset of each task's default
    config, the loop against gradient descent, in float and fixed point, over seeds.

    Prints, per task and arithmetic, the default config's score, the best loop variant and the best
    gradient-descent variant; writes DIR/study.json and DIR/study_TASK.png.
    """
    import os

    from .study import TASKS, run_study, summarise, variants, write_study
    if dead_units:
        _dead_units_study(task_names or ("moons",), seeds, out_dir, as_json)
        return
    tasks = task_names or TASKS
    for name in tasks:
        load_task(name)
    ariths = ("float", "fixed") if arith == "both" else (arith,)
    total = len(tasks) * len(variants(adaptive=adaptive)) * len(ariths) * seeds
    with progress_bar(total, "study", unit="trainings") as advance:
        rows = run_study(tasks, seeds, ariths, workers or os.cpu_count() or 1, progress=advance, adaptive=adaptive)
    make_folder(out_dir)
    paths = write_study(rows, out_dir)
    summary = summarise(rows)
    if as_json:
        out.print_json(json.dumps(summary))
        return
    if adaptive:
        out.print(_adaptive_table(summary, tasks, ariths))
        err.print(f"wrote {', '.join(escape(str(p)) for p in paths)}", highlight=False, soft_wrap=True)
        return
    table = Table(title="nfloop study: test score, mean ± std over seeds", box=box.SIMPLE_HEAD)
    for column in ("task", "arith", "default config", "best loop", "best gradient descent"):
        table.add_column(column)

    def cell(entry):
        if entry is None or entry["mean"] is None:
            return "-"
        what = "GD" if entry["learner"] == "gradient" else entry["window"]
        return f"{entry['mean']:.3f} ± {entry['std']:.3f} ({what}, gain {entry['gain_offset']:+d})"

    for name in tasks:
        task = load_task(name)
        sign = 1 if task.is_classification else -1          # accuracy up, MSE down
        for a in ariths:
            mine = [e for e in summary if e["task"] == task.name and e["arith"] == a and e["mean"] is not None]
            best = {learner: max((e for e in mine if e["learner"] == learner), key=lambda e: sign * e["mean"],
                                 default=None) for learner in ("feedback", "gradient")}
            default = next((e for e in mine if e["learner"] == "feedback" and e["window"] == "default"
                            and e["gain_offset"] == 0), None)
            table.add_row(task.name, a, cell(default), cell(best["feedback"]), cell(best["gradient"]))
    out.print(table)
    err.print(f"wrote {', '.join(escape(str(p)) for p in paths)}", highlight=False, soft_wrap=True)


def _dead_units_study(task_names, seeds, out_dir, as_json):
    from .study import DEAD_UNIT_LEARNERS, dead_units, dead_units_figure
    for name in task_names:
        if not load_task(name).is_classification:
            raise TaskError(f"{name}: the dying-ReLU experiment needs a classification task")
    jobs = [(name, bias, learner, seed) for name in task_names for bias in (0.0, -1.0, -1.5)
            for learner in DEAD_UNIT_LEARNERS for seed in range(seeds)]
    runs = []
    with progress_bar(len(jobs), "dying ReLU", unit="trainings") as advance:
        for name, bias, learner, seed in jobs:
            runs.append(dead_units(name, bias, learner, seed=seed))
            advance(1)
    make_folder(out_dir)
    (out_dir / "dead_units.json").write_text(json.dumps(runs))
    paths = [out_dir / "dead_units.json"] + [dead_units_figure([r for r in runs if r["task"] == name],
                                                               out_dir / f"dead_units_{name}.png")
                                             for name in task_names]
    rows = []
    for name in task_names:
        for bias in (0.0, -1.0, -1.5):
            for learner in DEAD_UNIT_LEARNERS:
                mine = [r for r in runs if (r["task"], r["bias"], r["learner"]) == (name, bias, learner)]
                rows.append({"task": name, "bias": bias, "learner": learner,
                             "dead_start": float(np.mean([r["dead"][0] for r in mine])),
                             "dead_end": float(np.mean([r["dead"][-1] for r in mine])),
                             "test_accuracy": float(np.mean([r["test_accuracy"] for r in mine]))})
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title=f"nfloop study --dead-units: mean over {plural(seeds, 'seed')}", box=box.SIMPLE_HEAD)
    for column in ("task", "hidden bias at start", "learner", "dead at start", "dead at end", "test accuracy"):
        table.add_column(column, justify="left" if column in ("task", "learner") else "right")
    for row in rows:
        table.add_row(row["task"], f"{row['bias']:g}", row["learner"], f"{row['dead_start']:.2f}",
                      f"{row['dead_end']:.2f}", f"{row['test_accuracy']:.3f}")
    out.print(table)
    err.print(f"wrote {', '.join(escape(str(p)) for p in paths)}", highlight=False, soft_wrap=True)


@cli.command("explore")
@click.option("--task", "task_name", required=True, metavar="NAME|PATH",
              help=f"Built-in task ({', '.join(BUILTIN_TASKS)}) or a .npz / .csv file.")
@click.option("--space", "space_name", required=True, metavar="FILE|NAME",
              help="A space file (TOML) or a shipped space: xor-small, digits-bits.")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Trainings per point (initial weights and sample order); the mean and spread are reported.")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs per training (default: the task's).")
@click.option("--boards", callback=_boards_list, metavar="B1,B2",
              help="Boards to build each point for (default: the space's boards).")
@click.option("-o", "--output", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Results folder; rerunning into it runs only what is missing (default: "
                   "nfloop-explore/TASK-SPACE).")
@click.option("--workers", type=click.IntRange(min=1), help="Local worker processes (default: the CPU count).")
@click.option("--ray", "ray_address", metavar="ADDRESS",
              help="Run the jobs on a Ray cluster: auto (a running local one) or ray://HOST:PORT.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def explore_command(task_name, space_name, seeds, epochs, boards, out_dir, workers, ray_address, as_json):
    """Sweep a design space: accuracy over seeds, cycles per step, and board builds; the Pareto front.

    Writes DIR/results.jsonl (one line per finished job), DIR/pareto.csv and DIR/pareto.png.
    """
    import os

    from .explore import LocalBackend, RayBackend, load_space, run_exploration
    space = load_space(space_name)
    load_task(task_name)
    out_dir = out_dir or Path("nfloop-explore") / f"{Path(task_name).stem}-{space.name}"
    backend = RayBackend(ray_address) if ray_address else LocalBackend(workers or os.cpu_count() or 1)
    where = f"Ray at {ray_address}" if ray_address else f"{workers or os.cpu_count()} local workers"
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("jobs"),
               TimeElapsedColumn()]
    with Progress(*columns, console=err, transient=True, disable=as_json or not err.is_terminal) as bar:
        task_id = bar.add_task(f"exploring {space.name} on {task_name} ({where})", total=None)
        result = run_exploration(space, task_name, seeds=seeds, epochs=epochs, boards=boards, out=out_dir,
                                 backend=backend, progress=lambda done, total: bar.update(task_id, completed=done,
                                                                                           total=total),
                                 log=lambda text: err.print(escape(text), highlight=False))
    if as_json:
        out.print_json(json.dumps(result.summary()))
    else:
        out.print(explore_table(result, task_name))
        out.print(f"{result.jobs_run} jobs run, {result.jobs_cached} found done in {out_dir}, "
                  f"{result.jobs_skipped} points skipped as invalid (reasons in results.jsonl), "
                  f"{len(result.failed)} failed; front in {out_dir / 'pareto.csv'} and {out_dir / 'pareto.png'}",
                  highlight=False)
    for failure in result.failed:
        err.print(f"[bold red]failed:[/] {escape(failure['job'])}: {escape(failure['error'])}")
    if result.interrupted:
        err.print(f"interrupted: every finished job is in {out_dir / 'results.jsonl'}; run the same command "
                  f"again to finish the rest")
        sys.exit(EXIT_INTERRUPTED)
    if result.failed:
        sys.exit(EXIT_MISMATCH)


def explore_table(result, task_name) -> Table:
    classification = any(r["score"] >= 0 for r in result.pareto)
    table = Table(title=f"nfloop explore: {task_name}, the Pareto front", box=box.SIMPLE_HEAD)
    table.add_column("point (fields set)", overflow="fold")
    for name in ("lanes", "accuracy" if classification else "MSE", "±", "cycles/step", "state bits", "mult bits",
                 "board", "LUTs", "steps/s"):
        table.add_column(name, justify="left" if name == "board" else "right", no_wrap=True)
    for r in result.pareto:
        score = f"{r['score']:.1%}" if classification else f"{r['mse']:.3g}"
        spread = f"{r['score_spread']:.1%}" if classification else f"{r['score_spread']:.2g}"
        luts = "-" if r.get("luts") is None else f"{r['luts']:,}"
        speed = "-" if r.get("steps_per_second") is None else f"{r['steps_per_second']:,}"
        table.add_row(r["label"], str(r["lanes"]), score, spread, str(r["cycles_per_step"]), f"{r['state_bits']:,}",
                      f"{r['multiplier_bits']:,}", r.get("board") or "-", luts, speed)
    return table


# -- boards: build, flash, list -------------------------------------------------------------

@contextmanager
def step_status(title: str):
    """A spinner with the running step and the time spent on stderr when it is a terminal, else one
    line per step; yields ``step(name)``."""
    if not err.is_terminal:
        # one line a step, never wrapped: a step may name a command line or a path
        yield lambda name: err.print(f"{title}: {escape(name)}", highlight=False, soft_wrap=True)
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()]
    with Progress(*columns, console=err, transient=True) as status:
        task_id = status.add_task(title, total=None)
        yield lambda name: status.update(task_id, description=f"{title}: {name}")


def _used(used: int, total: int) -> str:
    return f"{used:,} / {total:,} ({used / total:.0%})" if total else f"{used:,}"


def _logic_name(board: str) -> str:
    """What a build report's ``luts`` are on the board's family: logic cells on the iCE40, LUTs elsewhere."""
    spec = BOARDS.get(board)
    return spec.fpga_family.logic if spec is not None else "LUTs"


def build_table(report) -> Table:
    """One build's resources and timing, one row per figure."""
    lanes = plural(report.lanes, "lane")
    table = Table(title=f"nfloop build: {report.board}, {report.config}, {lanes}", box=box.SIMPLE,
                  show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    verdict = "[green]meets[/]" if report.meets_timing else "[bold red]misses[/]"
    rows = [("FPGA", report.device), ("clock", f"{report.clock_mhz:g} MHz"),
            ("fmax (nextpnr)", f"{report.fmax_mhz:.1f} MHz, {verdict} the clock"),
            (_logic_name(report.board), _used(report.luts_used, report.luts_total)),
            (RESOURCE_NAMES["ffs"], f"{report.ffs_used:,}"),
            (RESOURCE_NAMES["dsps"], _used(report.dsps_used, report.dsps_total)),
            (RESOURCE_NAMES["bram"], _used(report.bram_used, report.bram_total))]
    if report.device.startswith("iCE40UP"):
        rows.append((RESOURCE_NAMES["spram"], _used(report.spram_used, 4)))
    rows += [("bitstream", escape(report.bitstream)), ("seconds", f"{report.seconds:.0f}")]
    for row in rows:
        table.add_row(*row)
    return table


@cli.command("build")
@click.option("--board", "board_name", required=True, metavar="NAME", help="A board of nfloop board list.")
@click.option("--config", "config_name", metavar="FILE|NAME", default="digits", show_default=True,
              help="Learner config (TOML) or a shipped config name.")
@click.option("-o", "--output", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Build folder (default: build/BOARD).")
@click.option("--baud", type=click.IntRange(min=1),
              help="UART baud rate (default: the board's, see nfloop board list; at most its serial bridge's).")
@click.option("--lanes", type=click.IntRange(min=1),
              help="MAC lanes, a power of two (default: the board's, see nfloop board list); another "
                   "count builds in build/BOARD-Nlanes, beside the board's own build.")
@click.option("--seed", type=click.IntRange(min=1),
              help="nextpnr's placement seed (default: nextpnr's own): another placement of the same design, "
                   "for a build that misses its clock by a little.")
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
def build_command(board_name, config_name, out_dir, baud, lanes, seed, as_json):
    """Build a board's bitstream with the YoWASP tools and report its resources and timing.

    The products (nfloop.bin or nfloop.bit, the tool logs and nfloop.build.json) go to the build
    folder. Exit status 1 if the design misses the board's clock; 2 if it does not fit the FPGA.
    """
    from dataclasses import replace

    from ..boards.build import build_board, save_report
    from ..hdl.layout import CoreLayout
    spec = board_spec(board_name).with_baud(baud)
    config = named_config(config_name)
    default_dir = Path("build") / spec.name
    if lanes is not None and lanes != spec.lanes:
        # checked before the tools run: lanes the core cannot take are a usage error, not a failed build
        CoreLayout(config, lanes, narrow=spec.narrow)
        spec = replace(spec, lanes=lanes)
        default_dir = Path("build") / f"{spec.name}-{lanes}lanes"
    out_dir = out_dir or default_dir
    with step_status(f"building {spec.name}") as step:
        report = build_board(spec, config, out_dir=out_dir, log=step,
                             nextpnr_opts=("--seed", str(seed)) if seed is not None else ())
    save_report(report, out_dir)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        out.print(build_table(report))
    if not report.meets_timing:
        reasons = list(report.timing_problems)
        if report.fmax_mhz < report.clock_mhz:
            reasons.insert(0, f"nextpnr estimates {report.fmax_mhz:.1f} MHz, below the {report.clock_mhz:g} MHz "
                              f"clock of {spec.name}")
        for reason in reasons:
            err.print(f"[bold red]timing:[/] {escape(reason)}", highlight=False, soft_wrap=True)
        err.print("do not flash this bitstream; use fewer lanes (--lanes), or for a small miss try another "
                  "placement (--seed)", highlight=False, soft_wrap=True)
        sys.exit(EXIT_MISMATCH)
    if not as_json:
        out.print(f"flash it with: nfloop flash --board {spec.name}"
                  + ("" if out_dir == Path("build") / spec.name else f" --bitstream {escape(report.bitstream)}"),
                  highlight=False, soft_wrap=True)


@cli.command("flash")
@click.option("--board", "board_name", required=True, metavar="NAME", help="A board of nfloop board list.")
@click.option("--bitstream", type=click.Path(dir_okay=False, path_type=Path),
              help="Default: build/BOARD/nfloop.bin (iCE40) or .bit (ECP5).")
@click.option("--sram", is_flag=True, help="ECP5 over JTAG: load the FPGA's SRAM only (lost at power-off).")
def flash_command(board_name, bitstream, sram):
    """Write a bitstream to a board with openFPGALoader (its SPI flash unless --sram)."""
    from ..boards.build import DESIGN_NAME, flash_board
    spec = board_spec(board_name)
    bitstream = bitstream or Path("build") / spec.name / f"{DESIGN_NAME}.{spec.bitstream}"
    with step_status(f"flashing {spec.name}") as step:
        flash_board(spec, bitstream, sram=sram, log=step)
    err.print(f"{'loaded' if sram else 'flashed'} {spec.name} with {escape(str(bitstream))}", highlight=False,
              soft_wrap=True)


MEMORY_KINDS = {"spram": "SPRAM", "block": "block RAM"}


def board_summary(spec: BoardSpec) -> dict:
    return {"name": spec.name, "description": spec.description, "family": spec.family, "device": spec.device,
            "package": spec.package, "clock_hz": spec.clock_hz, "oscillator_hz": spec.oscillator_hz,
            "lanes": spec.lanes,
            "data_words": spec.data_words, "data_memory": spec.data_memory, "baud": spec.baud,
            "max_baud": spec.max_baud, "serial": spec.serial, "loader": spec.loader, "bitstream": spec.bitstream}


@cli.group("board")
def board_group():
    """The FPGA boards nfloop builds for."""


@board_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def board_list_command(as_json):
    """The supported boards: FPGA, clock, lanes, data memory, serial link and loader."""
    if as_json:
        out.print_json(json.dumps([board_summary(spec) for spec in BOARDS.values()]))
        return
    # one row per board, in short cells that fit 80 columns; the longer details follow the table
    table = Table(title="nfloop boards", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("board", "FPGA", "clock", "lanes", "data memory", "UART max"):
        table.add_column(column, justify="right" if column in ("clock", "lanes") else "left", no_wrap=True)
    for spec in BOARDS.values():
        memory = f"{MEMORY_KINDS[spec.data_memory]}, {spec.data_words // 1024} Ki words" if spec.data_words \
            else f"free {MEMORY_KINDS[spec.data_memory]}"
        table.add_row(spec.name, spec.device, f"{spec.clock_hz / 1e6:g} MHz", str(spec.lanes), memory,
                      f"{spec.max_baud / 1e6:g} Mbaud")
    out.print(table)
    for spec in BOARDS.values():
        clock = f", a PLL on its {spec.oscillator_hz / 1e6:g} MHz oscillator" if spec.oscillator_hz else ""
        loader = f"openFPGALoader -b {spec.loader}" if spec.loader else "no openFPGALoader board"
        out.print(f"[bold]{spec.name}[/]: {escape(spec.description)}, {spec.device} {spec.package}{clock}; "
                  f"serial link: {escape(spec.serial)}; {loader}", highlight=False)


# -- the virtual board and bit-exact comparison on a board ----------------------------------

def _interrupt(signum, frame):
    raise KeyboardInterrupt

@cli.command("serve-sim")
@click.option("--config", "config_name", metavar="FILE|NAME", default="digits", show_default=True,
              help="Learner config (TOML) or a shipped config name.")
@click.option("--port", type=click.IntRange(0, 65535), default=4567, show_default=True,
              help="TCP port on 127.0.0.1 (0: any free port).")
@click.option("--trace", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a VCD of the whole board top here (large: for short sessions).")
@click.option("--trace-steps", callback=_step_window, metavar="FIRST:LAST",
              help="Record only while the board's step count is in this window (counted from 0).")
@trace_limit_option()
@click.option("--idle-timeout", type=click.IntRange(min=0), default=600, show_default=True,
              help="Disconnect a client that sends nothing for this many seconds while the board is idle (0: never).")
@click.option("--board", "board_name", metavar="NAME",
              help="With --netlist: the board whose build is simulated (nfloop board list).")
@click.option("--netlist", is_flag=True,
              help="Simulate the board's gate-level netlist (Yosys's synthesis and its cell models) instead of "
                   "the RTL; the UART bit is 4 cycles, the one difference from the board's build.")
def serve_sim_command(config_name, port, trace, trace_steps, trace_limit, idle_timeout, board_name, netlist):
    """Run the virtual board: the board top in Verilator, its UART on socket://127.0.0.1:PORT.

    One client at a time; between clients the board runs on until it is idle, as a real board's clock
    does. Stops with Ctrl-C, SIGTERM or SIGHUP; exit status 3 if the simulator itself fails.
    With --board NAME --netlist it runs that board's synthesised netlist, cell by cell; compare it with
    nfloop compare --board NAME.
    """
    from ..boards.netlist import BIT_CYCLES, netlist_spec
    from ..boards.virtual import VirtualBoard
    from ..hdl.uart import bit_period
    if trace_steps and not trace:
        raise click.UsageError("--trace-steps selects steps of a waveform: give --trace FILE.vcd too")
    if trace is not None and trace.suffix.lower() != ".vcd":
        raise ConfigError(f"the virtual board writes VCD waveforms: name the trace file *.vcd, not {trace.name}")
    if netlist != (board_name is not None):
        raise click.UsageError("--board and --netlist go together: nfloop serve-sim --board NAME --netlist")
    config = named_config(config_name)
    spec = VIRTUAL
    if netlist:
        spec = board_spec(board_name)
        netlist_spec(spec)                      # a family without cell models is refused before building
    # SIGTERM and SIGHUP stop the board as Ctrl-C does: it is closed, and its port freed
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, _interrupt)
    what = f"{spec.name} netlist" if netlist else "virtual board"
    with step_status(f"{what} for {config.name or config_name}") as step:
        step("synthesising it and building its Verilator model (once per config, then cached), and starting it"
             if netlist else "building its Verilator model (once per config, then cached) and starting it")
        board = VirtualBoard(config, port=port, trace=trace, log=lambda text: err.print(text, highlight=False),
                             trace_limit_mb=trace_limit, trace_steps=trace_steps, idle_timeout=idle_timeout,
                             spec=spec, netlist=netlist)
    with board:
        out.print(f"{what} for [bold]{escape(config.name or config_name)}[/] on [bold]{board.url}[/]")
        if netlist:
            period = bit_period(spec.clock_hz, spec.baud)
            out.print(f"  gate-level: {spec.name}'s build, but a UART bit of {BIT_CYCLES} cycles instead of {period}",
                      highlight=False)
        board_flag = f" --board {spec.name}" if netlist else ""
        out.print(f"  try: nfloop compare --port {board.url}{board_flag} --task digits --epochs 2", highlight=False)
        try:
            status = board.wait()
        except KeyboardInterrupt:
            return
    how = f"by signal {signal.Signals(-status).name}" if status < 0 else f"with status {status}"
    fail(f"the virtual board's simulator stopped {how}; start nfloop serve-sim again", EXIT_LINK)


@cli.group("weights")
def weights_group():
    """Read a board's weights into a file, or write a file's weights into a board."""


def _board_for(url: str, config_name: str, baud: int | None, board_name: str | None):
    """An open client to a board built from ``config_name`` (checked against its IDENTIFY)."""
    from ..boards.client import BoardClient
    from ..boards.compare import identify_for
    config = named_config(config_name)
    if baud is None:
        baud = board_spec(board_name).baud if board_name else DEFAULT_BAUD
    client = BoardClient(url, baudrate=baud)
    try:
        identify_for(client, config)
    except BaseException:
        client.close()
        raise
    return client, config


def board_options(command):
    for option in reversed([
            click.option("--port", "url", required=True, metavar="URL",
                         help="The board's serial port (/dev/ttyUSB1, COM3) or socket://127.0.0.1:PORT."),
            click.option("--config", "config_name", metavar="FILE|NAME", required=True,
                         help="The config the board was built from (TOML or a shipped config name)."),
            click.option("--board", "board_name", metavar="NAME",
                         help="The board of nfloop board list behind the port: its baud rate is the default."),
            click.option("--baud", type=click.IntRange(min=1),
                         help=f"Serial baud rate (default: the --board's, else {DEFAULT_BAUD:,}).")]):
        command = option(command)
    return command


@weights_group.command("read")
@board_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The .npz to write (the layout of nfloop train --save).")
def weights_read_command(url, config_name, board_name, baud, output):
    """Read every weight accumulator of a board into a .npz (codes_L and weights_L, and the config)."""
    from ..boards.compare import read_weights
    from ..model.weights import save_weights
    client, config = _board_for(url, config_name, baud, board_name)
    with client:
        shapes = [(n_out, n_in + 1) for n_in, n_out in zip(config.sizes, config.sizes[1:])]
        codes = read_weights(client, shapes)
    output = output if output.suffix else output.with_suffix(".npz")
    make_folder(output.parent)
    lsb = config.formats.weight_acc.lsb
    save_weights(output, config, [c * lsb for c in codes], codes)
    err.print(f"read {sum(c.size for c in codes):,} weights into {escape(str(output))}", highlight=False)


@weights_group.command("write")
@board_options
@click.argument("weights_file", metavar="FILE.npz", type=click.Path(dir_okay=False, path_type=Path))
def weights_write_command(url, config_name, board_name, baud, weights_file):
    """Write a .npz's weights into a board (its codes_L, else its weights_L quantised), and check them."""
    from ..boards.compare import check_weights, write_weights
    from ..model.weights import load_weight_codes
    client, config = _board_for(url, config_name, baud, board_name)
    with client:
        codes = load_weight_codes(weights_file, config)
        write_weights(client, codes)
        check_weights(client, codes)
    err.print(f"wrote {sum(c.size for c in codes):,} weights from {escape(str(weights_file))}",
              highlight=False, soft_wrap=True)


def new_run_folder(root: Path, name: str) -> Path:
    """``root/NAME-TIME``, with a suffix when a run started in the same second."""
    base = root / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


@cli.command("compare")
@click.option("--port", "url", metavar="URL",
              help="The board's serial port (/dev/ttyUSB1, COM3) or socket://127.0.0.1:PORT "
                   "(with --resume: default the run's).")
@click.option("--task", "task_name", metavar="NAME|PATH",
              help=f"Built-in task ({', '.join(BUILTIN_TASKS)}) or a .npz / .csv file (with --resume: the run's).")
@click.option("--config", "config_name", metavar="FILE|NAME",
              help="The config the board was built from (default: the task's; with --resume: the run's).")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs in all (default: the task's, or the run's).")
@seed_option()
@click.option("--board", "board_name", metavar="NAME",
              help="The board of nfloop board list behind the port: its baud rate is the default.")
@click.option("--baud", type=click.IntRange(min=1),
              help=f"Serial baud rate the board was built for (default: the --board's, else {DEFAULT_BAUD:,}).")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Record every epoch and a checkpoint here as they end (default: nfloop-runs/TASK-TIME).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Continue the run recorded in this folder from its last equal epoch.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@engine_option()
def compare_command(url, task_name, config_name, epochs, seed, board_name, baud, run_dir, resume_dir, as_json,
                    engine):
    """Train on a board and on the fixed-point model; compare every weight after every epoch.

    Every epoch is recorded in the run folder as it ends; an interrupted or failed compare is continued
    with --resume. Exit status 0 all equal, 1 a mismatch, 2 a board built from another config, 3 the
    board or link failed, 130 interrupted.
    """
    from ..boards.client import BoardClient
    from ..boards.compare import RunFolder, compare_board
    if resume_dir is not None:
        if run_dir is not None:
            raise click.UsageError("--resume continues the run in its own folder: leave out --run-dir")
        run = RunFolder(resume_dir)
        meta = run.meta()
        for option, given, recorded in (("--task", task_name, meta["task"]), ("--seed", seed, meta["seed"])):
            if given is not None and given != recorded:
                raise click.UsageError(f"{option} {given} differs from the run's {recorded}: leave it out to resume")
        task = load_task(meta["task"])
        config = run.config()
        if config_name is not None and named_config(config_name).hardware() != config.hardware():
            raise click.UsageError(f"--config {config_name} is not the run's config: leave it out to resume")
        url, seed = url or meta["port"], meta["seed"]
        epochs = epochs or meta["epochs"]
        engine = meta.get("engine", engine)
    else:
        if task_name is None:
            raise click.UsageError("give --task NAME|PATH (or --resume DIR)")
        if url is None:
            raise click.UsageError("give --port URL: the board's serial port or the virtual board's socket:// URL")
        task = load_task(task_name)
        config = with_seed(resolve_config(config_name, task), seed)
        seed = seed or 0
        epochs = task.default_epochs if epochs is None else epochs
        run = RunFolder(run_dir or new_run_folder(Path("nfloop-runs"), Path(task_name).stem),
                        {"task": task_name, "seed": seed, "epochs": epochs, "engine": engine, "port": url}, config)
        run.check_new()
    table = Table(title=f"nfloop compare: {task.name} on {url}", box=box.SIMPLE_HEAD)
    for name in ("epoch", "steps", "device Σe²", "model Σe²", "weights", "cycles/step"):
        table.add_column(name, justify="right")
    rows = []

    def on_epoch(row):
        rows.append(row)
        table.add_row(str(row.epoch), f"{row.steps:,}", f"{row.device_error_sum:,}", f"{row.model_error_sum:,}",
                      "equal" if row.weights_equal else "[bold red]differ[/]", f"{row.cycles_per_step:.1f}")

    def stopped(reason: str, status: int):
        if rows and not as_json:
            out.print(table)
        kept = run.rows()
        equal = sum(r.weights_equal for r in kept)
        err.print(f"{reason}: {plural(len(kept), 'epoch')} recorded in {escape(str(run.path))} ({equal} equal); "
                  f"continue with: nfloop compare --resume {escape(str(run.path))}", highlight=False, soft_wrap=True)
        sys.exit(status)

    if baud is None:
        baud = board_spec(board_name).baud if board_name else DEFAULT_BAUD
    done = len(run.rows()) if resume_dir else 0
    try:
        with BoardClient(url, baudrate=baud) as client, \
                progress_bar(max(epochs - done, 0) * len(task.x_train), f"{task.name} board vs model",
                             not as_json) as advance:
            result = compare_board(client, config, task, epochs=epochs, seed=seed, progress=advance,
                                   on_epoch=on_epoch, engine=engine, run=run, resume=resume_dir is not None)
    except KeyboardInterrupt:
        stopped("interrupted", EXIT_INTERRUPTED)
    except LinkError as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        stopped("the board or its link failed", EXIT_LINK)
    print_warnings(result.warnings)
    if as_json:
        out.print_json(json.dumps(result.summary()))
    else:
        out.print(table)
        if result.test_accuracy is not None:
            out.print(f"test accuracy: board {result.test_accuracy:.2%}, model {result.model_test_accuracy:.2%}")
        out.print(f"device cycles per step: {result.device_cycles_per_step:.1f}")
        print_verdict(result, f"{plural(result.steps, 'step')}, {plural(result.epochs, 'epoch')}")
        out.print(f"run recorded in {escape(str(run.path))}", highlight=False)
    if result.mismatches:
        sys.exit(EXIT_MISMATCH)


def main():
    cli(prog_name="nfloop")


if __name__ == "__main__":
    main()
