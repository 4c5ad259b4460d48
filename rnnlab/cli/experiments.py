"""Experiment commands: ``presets``, ``runs``, ``train``, ``bptt``, ``trace`` and ``sample``.

Each is a thin view over the core: specs (:mod:`rnnlab.spec`), training and run directories
(:mod:`rnnlab.train`) and the :class:`~rnnlab.lab.Lab`. Bad input arrives here as a
:class:`~rnnlab.errors.UserError` and leaves through ``main`` as one line and exit status 2.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import re
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import notices
from ..errors import UserError, clipped, number_text
from ..errors import number_or_dash as _fmt
from ._app import (SEED_MAX, TITLE_LEFT, ProgressLines, _compile_notices, _exit_for_training_status, _info,
                   _json_float, _message, _out_console, _print_json, _progress, _set_option, _with_sets, app,
                   choice_refused, home_expanded, load_with_sets, nonempty_path, open_lab, output_unread,
                   quiet_option, say, set_fields, spec_with_sets, write_out)

#: The spec's limits (rnnlab.spec.STEPS_MAX, TRUNCATE_MAX), written here so that --help shows them without
#: importing the spec (and numba); tests keep them equal.
STEPS_MAX, TRUNCATE_MAX = 100_000_000, 1_000_000
#: Architecture labs whose headless command has another name than the lab (the others: `rnnlab NAME`).
LAB_COMMANDS = {"treebank": "tree"}

TARGET_HELP = ("A preset name (see `rnnlab presets`), a spec .toml file (-: read from stdin) or a run directory "
               "(default: hello).")
DEVICE_HELP = ("cpu or cuda (default: the spec's model.device; a run made on a GPU is read on the CPU where none "
               "is usable).")
TUI_TARGET_HELP = ("A preset name (see `rnnlab presets`), a spec .toml file, a run directory, a folder of them "
                   "(runs/: choose one), or an architecture lab: esn, seq2seq, treebank (default: hello).")


def _check_device(device: str | None) -> None:
    """Refuse a --device the spec would refuse, naming the option rather than the spec's model.device."""
    from ..spec import DEVICES

    if device is not None and device not in DEVICES:
        raise choice_refused("--device", device, DEVICES)


def _open_run(path: Path, takes: str):
    """``RunDir.open(path)`` for ``takes`` (the command or option given ``path``), a preset's name refused with the
    command that trains it: `rnnlab sample hello` said "no such run directory: hello", nothing of the preset."""
    from ..spec import preset_names
    from ..train import RunDir
    from ..train.rundir import stat_path

    if stat_path(path) is None and str(path) in preset_names():
        raise UserError(f"{path} is a preset, not a run directory: {takes} takes a trained run (rnnlab train {path} "
                        "writes one in runs/; rnnlab runs lists them)")
    return RunDir.open(path, warn_untrained=False)


def _refuse_lab(target: str | None) -> None:
    """An architecture lab's name given as an experiment: say how that lab runs (it is not a preset)."""
    from ..labs import LABS
    from ..train.rundir import stat_path

    if target is None or stat_path(target) is not None:  # a file or directory of that name is read as one
        return
    for lab in LABS:
        command = LAB_COMMANDS.get(lab, lab)
        if target in (lab, command):
            raise UserError(f"unknown preset {target!r}: {lab} is an architecture lab, not a preset; run it with "
                            f"`rnnlab {command}` (interactive: `rnnlab tui {lab}`)")


# ---------------------------------------------------------------------------------------------
# rnnlab tui
# ---------------------------------------------------------------------------------------------

@app.command()
def tui(target: Annotated[str | None, typer.Argument(help=TUI_TARGET_HELP, parser=home_expanded,
                                                     show_default=False)] = None,
        sets: Annotated[list[str] | None, _set_option()] = None) -> None:
    """Open the lab (the interactive TUI) on an experiment; `rnnlab` alone opens it on hello."""
    open_lab(target, sets)


# ---------------------------------------------------------------------------------------------
# rnnlab presets
# ---------------------------------------------------------------------------------------------

#: Narrower than this, ``rnnlab presets`` lists each preset as a block, not a table row.
PRESETS_TABLE_MIN_WIDTH = 110


@app.command()
def presets(
    json_output: Annotated[bool, typer.Option("--json", help="Print the presets and labs as a JSON list.")] = False,
) -> None:
    """List the experiments that ship with rnnlab (the first is the default) and the architecture labs.

    `--json`: a list of objects; each has "kind": "experiment" (name, task, cell, hidden_size, steps,
    description) or "lab" (name, description), the experiments first."""
    from ..labs import DESCRIPTIONS, LABS
    from ..spec import load_preset, preset_names

    specs = [load_preset(name) for name in preset_names()]
    if json_output:  # one list, as before the labs were in it: "kind" tells the labs (no task, no cell) apart
        _print_json([{"kind": "experiment", "name": s.name, "task": s.task["kind"], "cell": s.model.cell,
                      "hidden_size": s.model.hidden_size, "steps": s.train.steps, "description": s.description}
                     for s in specs]
                    + [{"kind": "lab", "name": name, "description": DESCRIPTIONS.get(name, "")} for name in LABS])
        return
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    console = _out_console()
    titles = ("Presets: rnnlab train NAME, rnnlab tui NAME",
              "Architecture labs: rnnlab tui NAME (and rnnlab esn / seq2seq / tree)")
    if console.width < PRESETS_TABLE_MIN_WIDTH:  # a table's last column would be a few letters wide
        for title, rows in ((titles[0], [(s.name, f"{s.task['kind']} task, {s.model.cell}, H={s.model.hidden_size}, "
                                                  f"{s.train.steps} steps", s.description) for s in specs]),
                            (titles[1], [(name, "", DESCRIPTIONS.get(name, "")) for name in LABS])):
            console.print(Text(title, style="bold"))
            for name, settings, description in rows:  # the name and settings, then the description indented
                console.print(Text.assemble((name, "bold cyan"), "  " if settings else "", (settings, "dim")))
                if console.soft_wrap:  # a pipe or a file: the line whole (a Padding cut it at the page's width)
                    console.print(Text("    " + description))
                else:
                    console.print(Padding(Text(description), (0, 0, 0, 4)))
            console.print()
        return
    table = Table(title=titles[0], title_justify=TITLE_LEFT)
    for column in ("name", "task", "cell", "H", "steps"):
        table.add_column(column, justify="right" if column in ("H", "steps") else "left", no_wrap=True)
    table.add_column("what it shows")
    for s in specs:
        table.add_row(s.name, s.task["kind"], s.model.cell, str(s.model.hidden_size), str(s.train.steps), s.description)
    console.print(table)
    labs = Table(title=titles[1], title_justify=TITLE_LEFT)
    labs.add_column("name", no_wrap=True)
    labs.add_column("what it shows")
    for name in LABS:
        labs.add_row(name, DESCRIPTIONS.get(name, ""))
    console.print(labs)


# ---------------------------------------------------------------------------------------------
# rnnlab runs
# ---------------------------------------------------------------------------------------------

@app.command()
def runs(
    folder: Annotated[Path, typer.Argument(
        parser=nonempty_path, help="A folder of run directories (or one run directory).")] = Path("runs"),
    json_output: Annotated[bool, typer.Option(
        "--json", help='Print a JSON list: path, name, task, cell, hidden_size, step, steps, status, loss, eval '
        '{step, loss, accuracy}, eval_held_out, baseline {name, loss, accuracy}, updated (seconds since the '
        'epoch), problem, spec (every field by its dotted name).')] = False,
    sort: Annotated[str, typer.Option(
        "--sort", help="updated (the newest first), eval (the lowest eval loss first), loss (the lowest last "
        "training loss first) or name (the experiment's, then the path).")] = "updated",
) -> None:
    """List the run directories in a folder: how each trained, its losses against the baseline, what a sweep changed.

    The most recently updated first (--sort for others): task, cell, steps, status, the last
    losses against the task's baseline, and the settings that differ between runs of one
    experiment (a sweep's).

    A status is how the run's last training ended (completed, stopped, diverged), training (a
    process is training it now), interrupted (a process was killed mid-run: --resume goes on from
    its checkpoint), untrained, or damaged. Reads no data file, and of the weights only their step."""
    from ..train.runs import SORTS, holds_runs, list_runs

    if sort not in SORTS:
        raise choice_refused("--sort", sort, list(SORTS))
    listed = list_runs(folder, sort)
    if json_output:
        _print_json([run.to_json() for run in listed])
        return
    if not listed:  # the folders in it that hold some (runs/ beside it, a sweep's folder): runs looks one deep
        try:  # (the first hundred folders: runs on a dataset's folder looks no further for a hint)
            folders = [entry for entry in itertools.islice(os.scandir(folder), 1000) if entry.is_dir()][:100]
            inside = sorted(Path(entry.path) for entry in folders if holds_runs(Path(entry.path)))
        except OSError:
            inside = []
        named = ", ".join(shlex.quote(str(child)) for child in inside[:3]) + (", ..." if len(inside) > 3 else "")
        hint = (f"{named} {'holds' if len(inside) == 1 else 'hold'} some: rnnlab runs {shlex.quote(str(inside[0]))}"
                if inside else "rnnlab train NAME makes one")
        _out_console().print(f"no run directories in {folder} ({hint})", markup=False)
        return
    _print_runs(listed)


@app.command("spec")
def spec_command(
    target: Annotated[str | None, typer.Argument(help=TARGET_HELP, parser=home_expanded, show_default=False)] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print every field as JSON.")] = False,
    sets: Annotated[list[str] | None, _set_option()] = None,
    quiet: Annotated[bool, quiet_option()] = False,
) -> None:
    """Check an experiment and print it resolved: every field as `rnnlab train` would write its spec.toml.

    Reads its data file (a text, a series) as train does and refuses what train would refuse (one
    line, exit 2); trains nothing and writes nothing. A run directory is checked against its checkpoint."""
    _refuse_lab(target)
    spec, run = spec_with_sets(target, sets, fallback=False)  # train refuses a cuda this machine lacks
    if spec.model.device == "cuda":
        from ..kernels.cuda import CudaUnavailableError, require_cuda

        try:
            require_cuda()
        except CudaUnavailableError as exc:
            if "model.device" in set_fields(sets):  # the cuda asked for here
                how = "--set model.device=cpu"
            elif run is not None:
                how = f"rnnlab train --resume {shlex.quote(str(run.path))} --device cpu"
            else:  # the experiment named (train with no target trains hello)
                how = f"rnnlab train {shlex.quote(str(target or 'hello'))} --device cpu"
            raise _no_cuda(spec, exc, how) from None
    task = spec.make_task()
    if run is not None:
        run.check_checkpoint(task)  # it reads, the data it was trained on, the model its weights are
    spec.check_memory(task)  # what training it needs (train refuses it too)
    _warn_before_training(spec, task)
    if json_output:
        _print_json(json.loads(json.dumps(spec.applied_mapping(), default=str)))  # the fields the TOML lists
    else:
        write_out(spec.to_toml())


#: At most this many columns of the settings a sweep changed (``rnnlab runs``).
RUNS_VARIED_COLUMNS = 4
#: ... whose run column (the path, which wraps) is never narrower than this.
RUNS_PATH_MIN_CELLS = 24


def _print_runs(listed) -> None:
    """The runs as a table fitted to the terminal: the run's path never squeezed out; the settings a
    sweep changed while they fit, the time and the baseline left out for them first (what a sweep is
    listed for); on a narrow one the training loss, the eval accuracy and the eval loss left out
    too, in that order, and the path folded onto more lines; every column or setting left out named
    under the table. An eval accuracy or a baseline that no run has ("-" in every row: a task of
    numbers) takes no room. Into a pipe or a file, every column whole: no screen to fit, and a path cut
    short is no use to --resume."""
    from datetime import datetime

    from rich.table import Table
    from rich.text import Text

    from ..data.files import is_number
    from ..train.runs import differing_fields, setting_text

    status_styles = {"completed": "green", "diverged": "red", "damaged": "red", "training": "cyan"}
    columns: dict[str, list[Text]] = {name: [] for name in (
        "run", "task", "cell", "H", "step", "status", "loss", "eval loss", "eval acc", "baseline", "updated")}
    varied = differing_fields(listed)  # what a sweep changed between runs of one experiment
    settings: dict[str, list[Text]] = {key: [] for key in varied}
    for run in listed:
        evaluated = run.eval or {}
        accuracy = evaluated.get("accuracy")
        # Text, not markup: a path may hold brackets (runs/exp[lr=0.1]), a spec any name
        cells = {
            "run": Text(str(run.path)), "task": Text(run.task or "-"), "cell": Text(run.cell or "-"),
            "H": Text(_fmt(run.hidden_size, "d")),
            "step": Text("-" if run.step is None else f"{run.step}" + ("" if run.steps is None else f"/{run.steps}")),
            "status": Text(run.status, style=status_styles.get(run.status, "")), "loss": Text(_fmt(run.loss)),
            "eval loss": Text(_fmt(evaluated.get("loss")) + ("" if run.eval_held_out or not evaluated else " (train)")),
            "eval acc": Text("-" if not isinstance(accuracy, (int, float)) else f"{100 * accuracy:.1f}%"),
            "baseline": Text("-" if run.baseline is None else _fmt(run.baseline.get("loss"))),
            "updated": Text(datetime.fromtimestamp(run.updated).strftime("%Y-%m-%d %H:%M"))}
        for name, cell in cells.items():
            columns[name].append(cell)
        for key in varied:
            settings[key].append(Text(setting_text(run.spec.get(key))))

    for name in ("eval acc", "baseline"):  # "-" in every row (a task of numbers has no accuracy): room for others
        if listed and all(cell.plain == "-" for cell in columns[name]):
            del columns[name]

    def width(header: str, cells: list[Text]) -> int:  # a column's cells, padding and border
        return max([len(header), *(cell.cell_len for cell in cells)]) + 3

    console = _out_console()
    whole = sum(width(name, cells) for name, cells in [*columns.items(), *settings.items()]) + 1
    page = console.width if console.is_terminal else max(console.width, whole)
    run_width = width("run", columns["run"])
    if console.is_terminal:
        run_width = min(run_width, RUNS_PATH_MIN_CELLS + 3)  # the path wraps down to this
    room = page - 1 - run_width - sum(width(name, cells) for name, cells in columns.items() if name != "run")
    dropped = []

    def drop(name: str) -> int:
        dropped.append(name)
        return width(name, columns.pop(name))

    for name in ("updated", "baseline", "loss", "eval acc", "eval loss"):  # where not even the runs' own columns fit
        if room >= 0:
            break
        if name in columns:
            room += drop(name)
    if room < 0:  # the path wraps onto more lines, down to 12 cells (a shorter path keeps its width)
        narrower = min(-room, run_width - min(run_width, 12 + 3))
        run_width, room = run_width - narrower, room + narrower
    # narrower still (40 columns): the columns a run's name most often says too, then its step, each left out
    # whole; squeezed by rich instead, the path's column went to nothing and H read "…", the step "200/2…"
    for name in ("H", "cell", "task", "step"):
        if room >= 0:
            break
        room += drop(name)
    shown = []
    for key in varied:
        if len(shown) >= RUNS_VARIED_COLUMNS and console.is_terminal:
            break
        needed = width(key.rpartition(".")[2], settings[key])
        givers = [name for name in ("updated", "baseline") if name in columns]  # a sweep's settings first
        for name in givers if needed <= room + sum(width(n, columns[n]) for n in givers) else ():
            if needed > room:
                room += drop(name)
        if needed <= room:
            shown.append(key)
            room -= needed
    table = Table(title_justify=TITLE_LEFT)
    first = ("run", "task", "cell", "H")
    order = [*(name for name in first if name in columns), *shown, *(name for name in columns if name not in first)]
    numeric = {"H", "step", "loss", "eval loss", "eval acc", "baseline"}
    for name in order:
        cells = columns[name] if name in columns else settings[name]
        numbers = name in numeric or (name in settings and all(is_number(c.plain) or c.plain == "-" for c in cells))
        table.add_column(name.rpartition(".")[2], justify="right" if numbers else "left", no_wrap=name != "run",
                         min_width=run_width - 3 if name == "run" else None,
                         overflow="fold" if name == "run" else "ellipsis")  # a path has no spaces to wrap at
    for r in range(len(listed)):
        table.add_row(*((columns[name] if name in columns else settings[name])[r] for name in order))
    if page > console.width:  # (print's own width= cannot go past the console's)
        from rich.console import Console

        console = Console(highlight=False, width=page, soft_wrap=True, file=console.file)
    console.print(table)
    if left_out := [key for key in varied if key not in shown]:
        console.print(f"also differing between runs of one experiment: {', '.join(left_out)} (rnnlab runs --json "
                      "has every field)", markup=False)
    if dropped:
        console.print(f"left out to fit the terminal: {', '.join(dropped)} (a wider one, a pipe or --json has them)",
                      markup=False)
    for run in listed:  # under the table: a message would squeeze every column of it
        if run.problem:
            console.print(f"{run.path}: {run.problem}", markup=False)


# ---------------------------------------------------------------------------------------------
# rnnlab train
# ---------------------------------------------------------------------------------------------

class _Stop(threading.Event):
    """Set by the first Ctrl-C (SIGINT), SIGTERM or SIGHUP; ``exit_code`` is then 128 + that signal's
    number (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP), the status a stopped command exits with."""

    exit_code = 130
    observed = False  # whether the work has seen the request (its check between steps found it set)

    def is_set(self) -> bool:
        if super().is_set():
            self.observed = True
            return True
        return False


#: Seconds within which the same stop signal again is the first one's echo (see _graceful_interrupt)
SAME_REQUEST_S = 0.25


@contextlib.contextmanager
def _graceful_interrupt(unit: str = "step") -> Iterator[_Stop]:
    """The first Ctrl-C, SIGTERM (``timeout``, ``kill``, a service manager) or SIGHUP (the terminal
    closed under a run started without nohup) sets an event: training
    stops after the current step and saves its checkpoint and summary (another command after its
    current ``unit``: "stopping after this check"). A second one interrupts at once, which still
    leaves the last checkpoint intact (it is written atomically). The same signal again before the
    work has seen the request (its check between steps), or within :data:`SAME_REQUEST_S`, is the same
    request, not a second one: GNU ``timeout`` sends its signal to the process and then to its process
    group, and a run stopped so aborted instead, now and then, its summary unwritten (Python runs a
    handler only once a kernel call returns, so the echo's may run long after it came). The handlers
    are installed for the
    duration of the ``with`` only, and only in the main thread (elsewhere Python cannot install
    them: the event is then never set by a signal)."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    first: list[tuple[int, float]] = []  # (signal, when) of the request that set the event

    def handler(signum, frame):
        if threading.Event.is_set(stop):  # (not stop.is_set: the handler is not the work seeing it)
            if first and first[0][0] == signum and (not stop.observed or time.monotonic() - first[0][1]
                                                    < SAME_REQUEST_S):
                return
            raise KeyboardInterrupt
        first.append((signum, time.monotonic()))
        stop.exit_code = 128 + signum
        stop.set()
        # (during the step the same signal again is taken for the first's echo: aborting "now" was a
        # promise a long step did not keep; another signal, a Ctrl-C after a SIGTERM, aborts at once)
        again = ("Ctrl-C again once it has ended aborts at once" if signum == signal.SIGINT else
                 f"Ctrl-C aborts at once, {signal.Signals(signum).name} again once it has ended")
        _message(f"[yellow]stopping after this {unit} ({again})...[/yellow]")

    stopping = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # (nohup: ignored)
        stopping.append(signal.SIGHUP)
    previous = {signum: signal.signal(signum, handler) for signum in stopping}
    try:
        yield stop
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@app.command()
def train(
    target: Annotated[str | None, typer.Argument(
        help="A preset name (see `rnnlab presets`) or a spec .toml file (-: read from stdin, `rnnlab spec hello "
             "--set seed=3 | rnnlab train -`) (default: hello).", parser=home_expanded, show_default=False)] = None,
    steps: Annotated[int | None, typer.Option(
        "--steps", min=1, max=STEPS_MAX, help="Train to this many steps (overrides train.steps).")] = None,
    seed: Annotated[int | None, typer.Option(
        "--seed", min=0, max=SEED_MAX, help="Seed of the weights and data (overrides seed).")] = None,
    out: Annotated[Path | None, typer.Option("--out", parser=nonempty_path, metavar="<path>",
                                             help="Run directory to create (default runs/NAME-TIME).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the final summary as JSON on stdout.")] = False,
    resume: Annotated[Path | None, typer.Option(  # readable=False: RunDir.open names what it cannot read
        "--resume", readable=False, parser=nonempty_path, metavar="<path>",
        help="Continue the run in this directory from its checkpoint.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu or cuda (overrides model.device).")] = None,
    sets: Annotated[list[str] | None, _set_option("--steps", "--seed", "--device")] = None,
    quiet: Annotated[bool, quiet_option()] = False,
) -> None:
    """Train an experiment, writing a run directory (spec, metrics, checkpoints, summary).

    Ctrl-C (or SIGTERM, or SIGHUP where nohup does not ignore it) stops after the current step and
    saves a checkpoint, then exits 130 (143, 129); `--resume DIR` continues it.
    Exit status 1 if the loss, a gradient or an updated weight leaves the model's dtype (NaN or Inf: the update is
    not applied and the last good checkpoint is kept).
    """
    with contextlib.ExitStack() as held:  # a resumed run's writer lock: from before its first change to the end
        _train(held, target, steps, seed, out, json_output, resume, device, sets)


def _train(held: contextlib.ExitStack, target: str | None, steps: int | None, seed: int | None, out: Path | None,
           json_output: bool, resume: Path | None, device: str | None, sets: list[str] | None) -> None:
    from ..data.files import user_path
    from ..spec import SpecError, load_spec, preset_names
    from ..train import RunDir, default_run_path, train_run
    from ..train.rundir import SPEC, SUMMARY, is_run_dir, resume_notes

    _check_device(device)
    if resume is not None:
        if target is not None:
            raise UserError("give either a spec (TARGET) to start a run or --resume DIR, not both")
        given = [option for option, value in (("--seed", seed), ("--out", out), ("--set", sets or None))
                 if value is not None]
        if given:
            raise UserError(f"{' and '.join(given)} cannot change a run being resumed (--resume)")
        run = _open_run(resume, "--resume")  # read_checkpoint refuses a run without one
        seen = run.state()
        saved_steps = run.spec.train.steps
        if device is not None and device != run.spec.model.device:
            run.spec = run.spec.with_overrides({"model.device": device})
        if steps is not None and steps != run.spec.train.steps:
            run.spec = run.spec.with_overrides({"train.steps": steps})
        task = run.spec.make_task()
        trainer = _trainer(run.spec, task, device)
        if not run.never_trained:  # (one killed before its first checkpoint starts from step 0, as a new run)
            # a hand edit would train on with other settings, unrecorded: named first, from the checkpoint's
            # meta (its weights would fail to load into another optimizer as "optimizer state ... missing")
            run.check_settings()
            run.read_checkpoint(trainer)  # changes no file: a run that cannot be resumed is left as it was
        if steps is not None and steps < trainer.step:
            raise UserError(f"--steps {steps} is below the {trainer.step} steps {run.path} has already trained")
        if trainer.step >= run.spec.train.steps:  # nothing to train: training would only log the last eval again
            from ..train.rundir import summary_of_finished
            from ..train.runs import read_listing

            listed = read_listing(run.path)
            if listed.status == "interrupted" and trainer.step == saved_steps:
                # stopped between its last checkpoint and its summary (a kill, a full disk): it had completed,
                # which the advice to --resume it promised (it was left "interrupted" for good)
                with run.exclusive(), _saying_what_is_kept(run):
                    run.write_summary(summary_of_finished(run, trainer))
                listed = read_listing(run.path)
                say(f"rnnlab: {run.path} had trained all its {trainer.step} steps when it was stopped: its "
                    f"{SUMMARY} is written now ({listed.status})")
            else:
                say(f"rnnlab: {run.path} is already at step {trainer.step}: nothing to train (to train further: "
                    f"rnnlab train --resume {shlex.quote(str(run.path))} --steps N, with N > {trainer.step})")
            if json_output:  # a script still gets its result: the run's summary as it stands
                summary = run.read_summary()
                current = summary is not None and summary.get("status") == listed.status
                # a run killed at its checkpoint has no summary of it: said as `rnnlab runs` says it
                _print_json(summary if current else {"run_dir": str(run.path), "step": trainer.step,
                                                     "steps": listed.steps, "status": listed.status})
            return
        for note in resume_notes(run, trainer.step) if not run.never_trained else ():  # (training goes on)
            notices.note(note)
        run.spec.check_memory(task, fix=f"{run.path} can be read here (bptt, trace, the lab), not trained further")
        held.enter_context(run.exclusive())  # refused, changing nothing, while another process writes the run
        if run.state() != seen:  # it did since it was read: its checkpoint is not the one read above
            raise UserError(f"{run.path} changed while it was being read (another rnnlab process wrote it): "
                            "run the command again")
        with _saying_what_is_kept(run):  # reads both logs before writing: one that cannot be read changes nothing
            dropped = run.cut_logs(trainer.step)
            if run.spec.train.steps != saved_steps or run.data_moved:  # (the data file where it moved with the run)
                run.write_spec(run.spec)
        if dropped is not None:
            notices.note(f"{run.path}'s checkpoint is at step {trainer.step}; the steps logged after it (to step "
                         f"{dropped}) are trained again")
        spec = run.spec
    else:
        if target is not None and target not in preset_names() and is_run_dir(user_path(target)):
            spec_file = shlex.quote(str(Path(target) / SPEC))
            variant = f"; a variant of it: rnnlab train {spec_file} --set ..." if sets else ""
            raise UserError(f"{target} is a run directory, not a spec: continue it with --resume "
                            f"{shlex.quote(str(target))}{variant}")
        _refuse_lab(target)
        flags = {field: (option, value) for field, option, value in (
            ("train.steps", "--steps", steps), ("seed", "--seed", seed), ("model.device", "--device", device))
            if value is not None}
        # one edit: no order between them
        spec = _with_sets(load_spec("hello") if target is None else load_with_sets(target, sets, flags), sets, flags)
        task = spec.make_task()
        try:
            spec.check_memory(task)
        except SpecError as exc:  # named as given, as _with_sets names a refused field
            raise UserError(f"--set {exc}" if exc.field in set_fields(sets) else str(exc)) from None
        trainer = _trainer(spec, task, device)  # first: a model that cannot be built leaves no run directory behind
        _warn_before_training(spec, trainer.task)
        _note_eval_not_held_out(trainer.task)
        run = RunDir.create(out or default_run_path(spec), spec)

    from rich.markup import escape

    until = spec.train.steps
    doing = "training" if resume is None else f"resuming at step {trainer.step} of {until}:"
    _info(f"[dim]rnnlab: {doing} {escape(spec.name)} ({spec.model.cell}, {trainer.model.num_parameters} "
          f"parameters) -> {escape(str(run.path))}[/dim]")
    progress = _progress("loss {task.fields[loss]}  |g| {task.fields[norm]}  {task.fields[rate]} steps/s")
    # (the error said once the progress bar is gone: a line written under a live bar is drawn over)
    with _saying_what_is_kept(run), _compile_notices(), _graceful_interrupt() as stop, progress:
        bar = progress.add_task(spec.name, total=until, completed=trainer.step, loss="-", norm="-", rate="-")
        lines = ProgressLines(spec.name, "step", until, trainer.step) if progress.disable else None

        def on_event(event) -> None:
            from ..train import StepRecord

            if isinstance(event, StepRecord):
                rate = event.step / event.time if event.time > 0 else 0.0
                progress.update(bar, completed=event.step, loss=_fmt(event.loss), norm=_fmt(event.grad_norm, ".3g"),
                                rate=f"{rate:.0f}")
                if lines is not None:
                    lines(event.step, f"loss {_fmt(event.loss)}, |g| {_fmt(event.grad_norm, '.3g')}, "
                                      f"{rate:.0f} steps/s")

        try:
            outcome = train_run(run, trainer, until, should_stop=stop.is_set, on_event=on_event)
        except (KeyboardInterrupt, SystemError) as exc:  # a second signal: say what is kept (numba wraps it)
            from ._app import _interrupted

            if not _interrupted(exc):
                raise
            _message(f"[yellow]aborted: {escape(str(run.path))} {_kept(run)}; continue with: rnnlab train --resume "
                     f"{escape(shlex.quote(str(run.path)))}[/yellow]")
            raise typer.Exit(stop.exit_code) from None

    summary = outcome.summary
    if json_output:
        _print_json(summary)
    else:
        _print_summary(summary, teacher_forced=spec.train.teacher_forcing)
    _exit_for_training_status(outcome.status, outcome.message,
                              f"stopped at step {summary['step']} of {until}; "
                              f"continue with: rnnlab train --resume {shlex.quote(str(run.path))}", stop.exit_code)


def _kept(run) -> str:
    """What a run stopped short keeps on disk, as its messages say it: "keeps its checkpoint of step 950"."""
    kept = run.checkpoint_step()
    return "has no checkpoint yet" if kept is None else f"keeps its checkpoint of step {kept}"


@contextlib.contextmanager
def _saying_what_is_kept(run) -> Iterator[None]:
    """A full disk (a quota, an I/O error) while ``run`` is written: the error's line says what the run
    keeps and how to go on, exit 1. It said only "cannot write r/checkpoint.npz: No space left on
    device", leaving the user to wonder what of the training was lost."""
    from ..errors import WriteFailed
    from ..fsio import NO_ROOM_ERRNOS

    try:
        yield
    except WriteFailed as exc:
        when = "once there is room" if exc.errno in NO_ROOM_ERRNOS else "once it can be written"
        say(f"rnnlab: error: {' '.join(str(exc).split())}; {run.path} {_kept(run)} (continue {when}: "
            f"rnnlab train --resume {shlex.quote(str(run.path))})")
        raise typer.Exit(1) from None


def _warn_before_training(spec, task) -> None:
    """What ``train`` (and ``spec``, which checks as it does) warns of a spec and its task on stderr:
    a model that reads its targets, a data file read oddly (a row counter, a time stamp)."""
    _warn(spec.reads_its_targets(task), task.data_warning)


def _warn(*warnings: str) -> None:
    """Each warning that is not "" on stderr, one line each."""
    for warning in warnings:
        if warning:
            say(f"rnnlab: warning: {warning}")


def _note_eval_not_held_out(task, also: str = "") -> None:
    """A data file too short to spare its last tenth for a sequence: the eval batch (and the pass of
    bptt and trace, ``also``) draws from the training data, which a loss read as held out would hide."""
    if (note := task.eval_not_held_out) and not task.fixed_sequence:  # (hello's is no news)
        notices.note(f"{note}{also}")


def _trainer(spec, task, device: str | None):
    """``Trainer(spec, task)``; where the spec itself asks for a GPU this machine lacks, the refusal
    names the field, its file and the way out (it named neither)."""
    from ..kernels.cuda import CudaUnavailableError
    from ..train import Trainer

    try:
        return Trainer(spec, task)
    except CudaUnavailableError as exc:
        if device is not None:  # --device cuda: the flag given is named already
            raise
        raise _no_cuda(spec, exc) from None


def _no_cuda(spec, exc: Exception, way_out: str = "--device cpu") -> UserError:
    """Training refused where the spec asks for a GPU this machine lacks: the field, its file, the way out."""
    from ..spec import preset_names

    where = f" in {spec.source}" if spec.source and spec.source not in preset_names() else ""
    return UserError(f"model.device = \"cuda\"{where}: {exc} ({way_out} trains it on the CPU: the same numbers)")


def _print_summary(summary: dict[str, Any], teacher_forced: bool = False) -> None:
    """The run's summary as a table. ``teacher_forced``: the training steps fed back the targets and
    the held-out batch the model's own outputs (the jordan cell), which the rows then say: the gap
    between them is the exposure bias, not overfitting."""
    from rich.cells import cell_len
    from rich.table import Table
    from rich.text import Text

    if summary["status"] == "diverged":  # step counts the updates done: the next one went non-finite
        headline = (f"diverged at step {summary['step'] + 1} of {summary['steps']} "
                    f"(checkpoint kept: step {summary['checkpoint_step']})")
    else:
        headline = f"{summary['status']} at step {summary['step']} of {summary['steps']}"
    table = Table(title=Text(f"{summary['name']}: {headline}"), title_justify=TITLE_LEFT, show_header=True)
    table.add_column("")
    table.add_column("loss", justify="right")
    table.add_column("accuracy", justify="right")
    modes = (" (teacher-forced)", " (running free)") if teacher_forced else ("", "")
    evaluated = "held-out batch" if summary.get("eval_held_out", True) else "eval batch (training data)"
    if summary["eval"] and summary["eval"].get("step") not in (None, summary["step"]):  # a run stopped between evals
        evaluated += f" at step {summary['eval']['step']}"
    rows = [(f"last training step{modes[0]}", summary["final"]), (f"{evaluated}{modes[1]}", summary["eval"]),
            (f"baseline: {summary['baseline']['name']}" if summary["baseline"] else None, summary["baseline"])]
    for label, row in rows:
        if label and row:
            acc = row.get("accuracy")
            table.add_row(label, _fmt(row["loss"]), "-" if acc is None else f"{100 * acc:.1f}%")
    _out_console().print(table)
    rate = summary["steps_per_second"]
    where = f"run directory: {summary['run_dir']}"
    timing = f"{summary['seconds']:.1f} s, {'-' if rate is None else f'{rate:.0f}'} steps/s"
    console = _out_console()  # a terminal too narrow for both: the timing on a line of its own, not cut in two
    fits = cell_len(f"{where}   {timing}") <= console.width
    console.print(f"{where}   {timing}" if fits else f"{where}\n{timing}", markup=False)


# ---------------------------------------------------------------------------------------------
# rnnlab bptt / trace / sample: one Lab, one pass
# ---------------------------------------------------------------------------------------------

def _task_edits_said(lab) -> str:
    """``"; here task.length = 120, trained at 50"`` for a table's title (:meth:`Lab.task_edits`), ""
    for none."""
    return "".join(f"; here {key} = {json.dumps(here)}, trained at {json.dumps(trained)}"
                   for key, (trained, here) in lab.task_edits().items())


#: A bptt or trace pass estimated at this many multiply-adds (forward and backward) is announced:
#: 30-130 ps each on a 2-core machine (rnnlab.tui.app's measurements), so 10-40 s and up.
SLOW_PASS_MACS = 300_000_000_000


#: --input and --sequence-seed of bptt and trace: the lab's i (a sequence typed) and n (another draw)
INPUT_HELP = ("A sequence typed in the task's own terms instead of the task's draw, as the lab's i takes it: "
              "characters (\\n a newline), parity's bits (1011), counting's k, copy's digits 1-8, selective-copy's "
              "'.1..3.2', adding's values in [0, 1] with two marked by a trailing * (0.3 0.9* 0.1 0.5*), the "
              "forecasting tasks' numbers (; between steps of a multi-column series); one sequence (--batch 1).")
SEQUENCE_SEED_HELP = ("Draw the sequences with this seed instead of the spec's, as the lab's n draws another (a "
                      "trace's meta names the seed its sequence was drawn with).")


def _check_sequence_choice(typed: str | None, sequence_seed: int | None, batch: int) -> None:
    """Refuse, before any work, a sequence asked for twice: typed and drawn, or one typed in a batch of many."""
    if typed is not None and sequence_seed is not None:
        raise UserError("--input and --sequence-seed both choose the sequence (typed, or drawn with that seed): "
                        "give one")
    if typed is not None and batch != 1:
        raise UserError(f"--input types one sequence, --batch {batch} asks for {batch}: give one of them")
    if typed is not None and not typed.strip():
        raise UserError("--input is empty: type a sequence in the task's own terms (see --help)")


def _chosen_sequence(task, typed: str | None, sequence_seed: int | None):
    """The bench sequence ``--input`` typed, as the task reads it (the lab's i), None without one; a typed
    sequence the task refuses is named in one line, as the lab's dialog names it. ``--sequence-seed`` (the
    lab's n) of a task with one sequence only is noted: the Lab draws it with that seed."""
    if sequence_seed is not None and task.fixed_sequence:  # (hello: the same five characters whatever the seed)
        notices.note(f"the {task.kind} task has only one sequence: --sequence-seed draws it again")
    if typed is None:
        return None
    if not hasattr(task, "sequence_from_text"):
        raise UserError(f"--input: the {task.kind} task takes no typed sequence (--sequence-seed draws another)")
    try:
        batch = task.sequence_from_text(typed)
    except UserError as exc:
        raise _refused_input(typed, exc) from None
    _warn(getattr(task, "typed_range_note", lambda _: "")(batch))
    return batch


def _refused_input(typed: str, exc: UserError) -> UserError:
    """``--input`` refused, its start quoted (a pasted page: its start) before why."""
    return UserError(f"--input {clipped(repr(typed), 40)}: {exc}")


def _sequence_said(lab) -> str:
    """``"; on the typed sequence"`` or ``"; sequence seed 5"`` for a table's title where the pass did not
    run on the spec's own draw, "" where it did."""
    if lab.sequence_typed:
        return "; on the typed sequence"
    return "" if lab.sequence_seed == lab.spec.seed else f"; sequence seed {lab.sequence_seed}"


def _open_lab(target: str | None, batch: int = 1, device: str | None = None, sets: list[str] | None = None,
              typed: str | None = None, sequence_seed: int | None = None):
    from ..lab import Lab, SequenceRefused

    _check_device(device)
    _check_sequence_choice(typed, sequence_seed, batch)
    _refuse_lab(target)
    spec, run = spec_with_sets(target, sets, device, run_task_sets=True)  # Lab.open's pair, --set's fields in
    edited = run is not None and spec.task != run.spec.task  # the run's weights on other sequences
    given = ", ".join(f"task.{key}={json.dumps(value, default=str)}" for key, value in spec.task.items()
                      if edited and value != run.spec.task.get(key))
    task = spec.make_task()
    sequence = _chosen_sequence(task, typed, sequence_seed)  # before the weights and the pass: a typo costs nothing
    if edited:  # of its sizes?
        trained = run.spec.make_task()
        if (task.input_size, task.output_size) != (trained.input_size, trained.output_size):
            raise UserError(f"--set {given}: that task has {task.input_size} inputs and {task.output_size} outputs, "
                            f"{run.path}'s weights {trained.input_size} and {trained.output_size}")
    from ..errors import RunDirError
    from ..spec import BACKWARD_WORK, SpecError, forward_macs

    work = forward_macs(spec.model, getattr(task, "length", 0), task.input_size, task.output_size, batch)
    _warn(task.data_warning)  # (as the lab says it, on opening)
    _note_eval_not_held_out(task, " (this pass's too)")
    try:
        spec.check_memory(task, batch=batch)  # (as Lab does: a pass refused is not announced)
        if work * (1 + BACKWARD_WORK) >= SLOW_PASS_MACS:  # H=8192 over 10000 steps ran minutes without a word
            _info(f"[dim]rnnlab: a forward and backward pass of about {work * (1 + BACKWARD_WORK) / 1e9:.0f} "
                  "billion multiply-adds: this takes a while[/dim]")
        with _compile_notices():  # one forward pass, on the sequence chosen
            try:
                return Lab(spec, run, batch=batch, task=task, sequence_seed=sequence_seed, sequence=sequence,
                           sequence_text=typed)
            except SequenceRefused as exc:  # (too long for a selfattention model's positional encoding)
                raise _refused_input(typed, exc) from None
    except SpecError as exc:  # the pass does not fit this machine: name the flag where it is the batch
        if exc.field != "batch":
            raise
        raise UserError(f"--batch {batch}: {exc.message}") from None
    except RunDirError as exc:  # hello's text given other characters: --set's doing, not spec.toml's
        if not edited:
            raise
        said = re.search(r"was trained \((.*)\); ", str(exc))  # "(new: 'j'; gone: 'h')"
        why = f" ({said.group(1)})" if said else f": {exc}"
        raise UserError(f"--set {given}: not the data {run.path} was trained on{why}") from None


@app.command()
def bptt(
    target: Annotated[str | None, typer.Argument(help=TARGET_HELP, parser=home_expanded, show_default=False)] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print every number as JSON.")] = False,
    batch: Annotated[int, typer.Option("--batch", min=1, max=4096, help="Sequences in the pass.")] = 1,
    truncate: Annotated[int | None, typer.Option(
        "--truncate", min=0, max=TRUNCATE_MAX,
        help="Cut the gradient every k steps (0: full BPTT; default: the spec's).")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help=DEVICE_HELP, show_default=False)] = None,
    jacobians: Annotated[bool, typer.Option(
        "--jacobians/--no-jacobians",
        help="The step Jacobians' columns beside ||dL/dh_t||: their dense products take minutes for a large state "
             "over a long sequence (H=512, 1600 steps), the gradient norms a second.")] = True,
    sets: Annotated[list[str] | None, _set_option("--device")] = None,
    typed: Annotated[str | None, typer.Option("--input", metavar="TEXT", help=INPUT_HELP, show_default=False)] = None,
    sequence_seed: Annotated[int | None, typer.Option(
        "--sequence-seed", min=0, max=SEED_MAX, help=SEQUENCE_SEED_HELP, show_default=False)] = None,
    quiet: Annotated[bool, quiet_option()] = False,
) -> None:
    """One forward and backward pass: ||dL/dh_t|| at every step, the vanishing-gradient curve.

    Beside it, for every step t (and layer): the norm of the Jacobian
    J_t = ds_t/ds_{t-1}, their running product (the textbook bound), and the
    norm of the actual chained product ds_T/ds_t, where s = h
    (LSTM: \\[h; c]; LRU: \\[Re h; Im h]).
    For mingru, minlstm and lru J_t is diagonal: ||J_t|| = max |a_t|.
    selfattention has no recurrence: only ||dL/dh_t|| per block."""
    lab = _open_lab(target, batch, device, sets, typed, sequence_seed)
    with _compile_notices():
        lab.run_backward(truncate)
        grad = lab.gradient_norms()
    jac = None
    if jacobians and not lab.is_attention:
        with _progress() as progress:  # minutes for a large state over a long sequence
            task = progress.add_task("step Jacobians", total=len(_stream_names(lab)) * lab.steps)
            jac = lab.jacobian_norms(progress=lambda steps: progress.advance(task, steps))
    if lab.is_attention:
        _info("[dim]rnnlab: selfattention has no recurrence, so no step Jacobians: only ||dL/dh_t|| per block "
              "(its backward pass is not through time: every step gets its gradient at once)[/dim]")
    names = _stream_names(lab)
    if json_output:
        streams = []
        for k, (layer, direction) in enumerate(names):
            row: dict[str, Any] = {"layer": layer, "direction": direction,
                                   "grad_norm": [_json_float(float(v)) for v in grad[k]]}
            if jac is not None:
                row.update({f"jacobian_{key}": [_json_float(float(v)) for v in jac[key][k]]
                            for key in ("norm", "product", "chain")})
            streams.append(row)
        _print_json({
            "spec": lab.spec.name, "cell": lab.spec.model.cell, "trained_steps": lab.trainer.step,
            "steps": lab.steps, "batch": batch, "truncate": lab.truncate or 0, "loss": _json_float(lab.evaluation.loss),
            "recurrent": not lab.is_attention, "task_edits": lab.task_edits(), "sequence": lab.sequence_source(),
            "streams": streams,
        })
        return
    from rich.table import Table
    from rich.text import Text

    what = "backprop" if lab.is_attention else "BPTT"
    title = Text(f"{what} of {lab.spec.name} ({lab.spec.model.cell}, trained {lab.trainer.step} steps"
                 f"{_task_edits_said(lab)}{_sequence_said(lab)}): "
                 f"loss {_fmt(lab.evaluation.loss)}")  # Text: a name may hold "[bold]"
    # as many streams (layer, direction) a table as the page is wide: a 2-layer bidirectional
    # model's 17 columns in one table were cut to "9.674e…"
    def headers(layer: int, direction: int) -> list[str]:
        tag = ("block " if lab.is_attention else "l") + f"{layer}" + ("r" if direction else "")
        chained = "||ds_1/ds_t||" if direction else "||ds_T/ds_t||"  # a reverse direction ends at t = 1
        return [f"||dL/dh_t|| {tag}"] + ([] if jac is None else
                                         [f"||J_t|| {tag}", f"prod ||J|| {tag}", f"{chained} {tag}"])

    # each column as wide as its header or a number (9.674e-02), with rich's padding and rule
    stream_width = max(sum(max(len(h), BPTT_NUMBER_WIDTH) + 3 for h in headers(*name)) for name in names)
    page = _out_console().width
    per_table = max(1, (page - BPTT_T_WIDTH) // stream_width)
    step_width = 4 + len(str(lab.steps))  # the t column, its padding and the rules either side
    fits = max(1, (page - step_width) // (BPTT_NUMBER_WIDTH + 3))  # number columns whole, their headers wrapped
    tables: list[list[tuple[int, int]]] = []  # each table's columns: (stream, column of that stream)
    for first_stream in range(0, len(names), per_table):
        columns = [(k, c) for k in range(first_stream, min(first_stream + per_table, len(names)))
                   for c in range(len(headers(*names[k])))]
        # one stream's columns wider than a terminal (40 columns): over several tables, as even as can be, rather
        # than each number cut to "2.296…" to fit one (a file or a pipe crops no line: one table)
        parts = 1 if _out_console().soft_wrap else -(-len(columns) // fits)
        tables += [columns[part * len(columns) // parts:(part + 1) * len(columns) // parts] for part in range(parts)]
    formats = (".3e", ".3f", ".3e", ".3e")  # ||dL/dh_t||, ||J_t||, prod ||J||, the chained Jacobian's norm
    for number, columns in enumerate(tables):
        table = Table(title=title if number == 0 else None, title_justify=TITLE_LEFT)
        table.add_column("t", justify="right")
        # a narrow page wraps the headers, never cuts a number ("6.365e-…"), where the numbers fit
        # (into a file or a pipe: always, nothing crops the lines); a terminal narrower than them would
        # crop the table's end with no mark ("4.137e-0"): rich's "…" shows the cut there
        whole = _out_console().soft_wrap or step_width + len(columns) * (BPTT_NUMBER_WIDTH + 3) <= page
        for k, c in columns:
            table.add_column(headers(*names[k])[c], justify="right", min_width=BPTT_NUMBER_WIDTH if whole else None)
        for t in range(lab.steps):
            values = [grad] if jac is None else [grad, jac["norm"], jac["product"], jac["chain"]]
            table.add_row(str(t + 1), *(_fmt(float(values[c][k, t]), formats[c]) for k, c in columns))
        _out_console().print(table)
    for k, (layer, direction) in enumerate(names):
        first, last = float(grad[k, 0]), float(grad[k, -1])
        # where BPTT ends over where it starts: t = 1 over T; a reverse direction's, T over 1 (as the lab's plot)
        end, start, ends = (first, last, "1T") if not direction else (last, first, "T1")
        where = f"block {layer}" if lab.is_attention else f"layer {layer}{' reverse' if direction else ''}"
        if start > 0:  # a reverse direction's ratio is large where the loss sits at T, its pass's end
            order = " (its backward pass runs from t = 1 up to T)" if direction else ""
            said = f"||dL/dh_{ends[0]}|| / ||dL/dh_{ends[1]}|| = {_fmt(end / start, '.3e')}{order}"
        else:  # a reverse direction of a task scored at T: "= -" said nothing
            said = f"||dL/dh_{ends[1]}|| = 0 where its backward pass starts (no loss there): no ratio"
        _out_console().print(f"{where}: {said}")
    cut = ""
    if lab.truncate:
        cut = (f", cut every {lab.truncate} steps" if lab.truncate < lab.steps else
               f" (truncate {lab.truncate}: no cut within its {lab.steps} steps, so full BPTT)")
    said = ("||dL/dh_t||: the 2-norm of the total gradient at h_t over the units of every sequence in the "
            f"pass{cut}")
    if jac is not None:  # "||J_t|| > 1 at every step, so it explodes" is what the columns alone invite
        state = {"lstm": "[h; c]", "lru": "[Re h; Im h]"}.get(lab.spec.model.cell, "h")
        said += (f". ||J_t||: the norm of the step Jacobian ds_t/ds_(t-1) (s = {state}); prod ||J||: their product "
                 "over steps t+1..T, an upper bound on ||ds_T/ds_t||, the chained Jacobian's own norm, which can "
                 "vanish while the bound grows" + ("; a reverse direction's (r) run over steps 1..t-1 and bound "
                                                   "||ds_1/ds_t||" if lab.num_directions > 1 else "")
                 + ". The Jacobians' norms are spectral (the largest singular value), of the pass's first "
                   "sequence, never truncated")
    _out_console().print(said + ".", style="dim", markup=False, highlight=False)  # a sentence, as every line's


BPTT_T_WIDTH, BPTT_NUMBER_WIDTH = 8, 9  # the bptt table's step column (and frame); a number, 9.674e-02


def _stream_names(lab) -> list[tuple[int, int]]:
    D = lab.num_directions
    return [(layer, d) for layer in range(lab.spec.model.num_layers) for d in range(D)]


@app.command()
def trace(
    target: Annotated[str | None, typer.Argument(help=TARGET_HELP, parser=home_expanded, show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", parser=nonempty_path, metavar="<path>",
                                      help="The .npz file to write.")] = Path("trace.npz"),
    batch: Annotated[int, typer.Option("--batch", min=1, max=4096, help="Sequences in the pass.")] = 1,
    truncate: Annotated[int | None, typer.Option(
        "--truncate", min=0, max=TRUNCATE_MAX,
        help="Cut dL/dh_t every k steps (0: full BPTT; default: the spec's train.truncate; meta says which).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Describe what was written as JSON.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace the --out file if it exists.")] = False,
    device: Annotated[str | None, typer.Option("--device", help=DEVICE_HELP, show_default=False)] = None,
    sets: Annotated[list[str] | None, _set_option("--device")] = None,
    typed: Annotated[str | None, typer.Option("--input", metavar="TEXT", help=INPUT_HELP, show_default=False)] = None,
    sequence_seed: Annotated[int | None, typer.Option(
        "--sequence-seed", min=0, max=SEED_MAX, help=SEQUENCE_SEED_HELP, show_default=False)] = None,
    quiet: Annotated[bool, quiet_option()] = False,
) -> None:
    """Write every recorded state and gate of every step (and dL/dh_t) to an .npz file.

    For selfattention: each block's h, z, q, k, v and attention maps
    attn (B, heads, T, T)."""
    from ..train.rundir import npz_target

    out = npz_target(out, "trace file", replace=force)  # before the pass: a refused file costs no time
    lab = _open_lab(target, batch, device, sets, typed, sequence_seed)
    with _compile_notices():
        lab.run_backward(truncate)
    path = lab.export_trace(out, replace=force)
    arrays = lab.trace_arrays()
    shapes = {name: list(value.shape) for name, value in arrays.items() if name != "meta"}
    meta = json.loads(str(arrays["meta"]))  # a JSON string in the file
    if json_output:
        _print_json({"file": str(path), "arrays": shapes, "meta": meta})
    else:
        _out_console().print(f"wrote {path}: " + ", ".join(f"{k} {tuple(v)}" for k, v in shapes.items())
                             + f", meta (JSON: {', '.join(meta)})", markup=False)


@app.command()
def sample(
    run_dir: Annotated[Path, typer.Argument(
        readable=False, parser=nonempty_path,
        help="A run directory of a character model (text, hello).")],  # as train's --resume
    prime: Annotated[str | None, typer.Option(
        "--prime", help="Text to start from; \\n (or ⏎) is a newline where the text has no backslash.",
        show_default="a newline, or the text's first character")] = None,  # hello has no newline: "h"
    length: Annotated[int, typer.Option("--length", min=1, max=1_000_000, help="Characters to generate.")] = 200,
    temperature: Annotated[float, typer.Option(
        "--temperature", help="Softmax temperature, a positive finite number: low is conservative, high is wild.")
    ] = 1.0,
    seed: Annotated[int | None, typer.Option(
        "--seed", min=0, max=SEED_MAX, help="Seed of the sampling (default: the run's).")] = None,
    device: Annotated[str | None, typer.Option("--device", help=DEVICE_HELP, show_default=False)] = None,
    json_output: Annotated[bool, typer.Option(
        "--json", help='Print {"run", "step", "prime", "length", "temperature", "seed", "text"} as JSON '
        '(text: the prime, then what was generated).')] = False,
    quiet: Annotated[bool, quiet_option()] = False,
) -> None:
    """Generate text from a trained character model.

    A causal selfattention model reads a sliding window of the last
    task.length characters."""
    import unicodedata

    from ..data.text import display_char
    from ..lab import Lab

    if not (math.isfinite(temperature) and temperature > 0):  # before loading: a bad value costs no time
        raise UserError(f"--temperature must be a positive finite number, got {number_text(temperature)}")
    _check_device(device)
    run = _open_run(run_dir, "rnnlab sample")  # one untrained refused just below
    if not run.has_checkpoint:  # (one whose weights are gone is refused by open)
        raise UserError(f"{run_dir} is not trained yet: train it first "
                        f"(rnnlab train --resume {shlex.quote(str(run_dir))})")
    run.text_may_differ = True  # a manuscript edited since: its characters are what the weights read
    with _compile_notices():
        lab = Lab.open(run, device=device)  # the run's device, or the CPU where its cuda is not usable
        prime = lab.default_prime() if prime is None else prime
        terminal = sys.stdout.isatty()

        def printed(piece: str) -> None:  # the text as it is drawn (a million characters take minutes)
            if terminal:  # a text's control characters (ESC, BEL) as escapes: a terminal would act on them
                piece = "".join(c if c in "\n\t" or unicodedata.category(c) != "Cc" else display_char(c)
                                for c in piece)
            write_out(piece)

        with _graceful_interrupt("character") as stop:  # Ctrl-C: what was generated is printed
            # a reader gone (| head -c 20) stops it too: a million characters ran on for minutes, to nobody
            text = lab.sample(prime, length, temperature, seed, should_stop=lambda: stop.is_set() or output_unread(),
                              on_text=(lambda piece: None) if json_output else printed)
    primed = text[: len(lab.task.encode(prime))]  # as read: a typed \n is the newline it stood for
    generated = len(text) - len(primed)
    if json_output:
        _print_json({"run": str(run.path), "step": lab.trainer.step, "prime": primed, "length": generated,
                     "temperature": temperature, "seed": lab.spec.seed if seed is None else seed, "text": text})
    else:
        write_out("\n")
    if generated < length and stop.is_set():  # (not where nobody reads: the reader had what it wanted)
        _message(f"rnnlab: sampling stopped after {generated} of {length} characters")
        raise typer.Exit(stop.exit_code)
