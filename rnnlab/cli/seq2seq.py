"""``rnnlab seq2seq``: train the encoder-decoder lab's model headless and print its greedy-decoding
accuracy by source length, the last bucket longer than any training input.

A thin view over :class:`rnnlab.labs.seq2seq.Seq2SeqLab`: options left out take the lab's preset
(:data:`rnnlab.labs.seq2seq.DEFAULTS`), so ``rnnlab seq2seq`` and ``rnnlab seq2seq --attention none``
side by side show what attention is for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import UserError, clipped
from ..errors import percent_or_dash as _pct
from ._app import (EXPORT_HELP_FORCE, TITLE_LEFT, ProgressLines, _compile_notices, _exit_for_training_status,
                   _info, _message, _out_console, _print_json, _progress, app, export_file, export_option, help_notes,
                   lab_option, option_flag, output_unread, quiet_option, whole_cells)
from .experiments import _graceful_interrupt


def _option_notes() -> dict[str, str]:
    """Each lab option's range and preset value, for --help: the engine's own (:mod:`rnnlab.labs.seq2seq`)."""
    from ..labs.seq2seq import DEFAULTS, option_range

    notes = {}
    for name in ("attention", "task", "cell", "steps", "hidden_size", "min_length", "max_length", "batch_size",
                 "learning_rate", "seed", "eval_every", "eval_size"):
        interval = option_range(name)
        if name in ("eval_every", "eval_size"):  # defaults of their own, shown by typer
            notes[name] = f"In {interval}."
        else:  # after the choices' own sentence ("rnn, lstm or gru."), a sentence of its own
            notes[name] = f"In {interval} (preset: {DEFAULTS[name]})." if interval else f"Preset: {DEFAULTS[name]}."
    return notes


@app.command("seq2seq", cls=help_notes(_option_notes))
def seq2seq(
    attention: Annotated[str | None, lab_option("--attention", "none, dot, general or additive.")] = None,
    task: Annotated[str | None, lab_option("--task", "reverse or sort.")] = None,
    cell: Annotated[str | None, lab_option("--cell", "rnn, lstm or gru.")] = None,
    steps: Annotated[int | None, lab_option("--steps", "Training steps.")] = None,
    hidden_size: Annotated[int | None, lab_option("--hidden-size", "Hidden size H.")] = None,
    min_length: Annotated[int | None, lab_option("--min-length", "Shortest training source.")] = None,
    max_length: Annotated[int | None, lab_option("--max-length", "Longest training source.")] = None,
    batch_size: Annotated[int | None, lab_option("--batch-size", "Sequences per training step.")] = None,
    learning_rate: Annotated[float | None, lab_option("--learning-rate", "Adam's learning rate.")] = None,
    seed: Annotated[int | None, lab_option("--seed", "Seed of weights and data.")] = None,
    eval_every: Annotated[int, typer.Option("--eval-every", help="Also score every this many steps, a line on stderr "
                                            "each (0: only at the end).")] = 0,
    eval_size: Annotated[int, typer.Option("--eval-size", help="Held-out sequences per length bucket.")] = 500,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    source: Annotated[str | None, typer.Option(
        "--source", metavar="DIGITS", show_default=False,
        help="After training, decode this source, as the lab's i types one: digits 0-9, spaces or commas between "
             "them allowed ('3 1 4'); the example under the table (and --json's bench, --export's arrays) is its "
             "decoding (default: a draw of max_length digits).")] = None,
    export: Annotated[Path | None, export_option(
        "the example's decoding (encoder and decoder states, attention weights, probabilities), the training "
        "history and the scores")] = None,
    force: Annotated[bool, typer.Option("--force", help=EXPORT_HELP_FORCE)] = False,
    quiet: Annotated[bool, quiet_option()] = False,
) -> None:
    """Train a seq2seq model (teacher forcing) and print greedy-decoding accuracy by source length.

    Ctrl-C stops after the current step and scores the model as it is (exit status 130).
    Exit status 1 if the loss became NaN or Inf.
    """
    from ..labs.seq2seq import OptionError, Seq2SeqLab

    given = {"attention": attention, "task": task, "cell": cell, "steps": steps, "hidden_size": hidden_size,
             "min_length": min_length, "max_length": max_length, "batch_size": batch_size,
             "learning_rate": learning_rate, "seed": seed, "eval_every": eval_every, "eval_size": eval_size}
    options: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    try:
        lab = Seq2SeqLab.open(options)
    except OptionError as exc:  # name the flags the user typed
        message = exc.message.replace(exc.other, option_flag(exc.other)) if exc.other else exc.message
        raise UserError(f"{option_flag(exc.option)} {message}") from None  # as the other commands: "--units must be"
    if source is not None:  # before training: a bad source costs no time
        try:
            lab.source_from_text(source)
        except UserError as exc:
            raise UserError(f"--source {clipped(repr(source), 40)}: {exc}") from None
    export = export_file(export, force, lab.export_name)

    total = lab.options["steps"]
    _info(f"[dim]rnnlab: training seq2seq ({lab.describe()}, {lab.model.num_parameters} parameters)[/dim]")
    progress = _progress("loss {task.fields[loss]}  token acc {task.fields[acc]}")
    with _compile_notices(), _graceful_interrupt() as stop, progress:
        bar = progress.add_task("seq2seq", total=total, loss="-", acc="-")
        lines = ProgressLines("seq2seq", "step", total) if progress.disable else None

        def on_step(record) -> None:
            if record.step % 10 == 0 or record.step == total:
                progress.update(bar, completed=record.step, loss=f"{record.loss:.4g}", acc=_pct(record.accuracy))
            if lines is not None:
                lines(record.step, f"loss {record.loss:.4g}, token accuracy {_pct(record.accuracy)}")
            if lab.evals and lab.evals[-1].step == record.step and record.step != total:  # --eval-every's score
                scores = ", ".join(f"{b.label}{'*' if b.unseen else ''} {_pct(b.sequence_accuracy)}"
                                   for b in lab.evals[-1].buckets)
                _message(f"rnnlab: seq2seq: step {record.step}: sequence accuracy by source length {scores} "
                         "(*: longer than training)")

        # a reader gone (| true, a pager quit) stops it too: its only product is the table, which nobody would see
        # (unless it goes to an --export file too)
        status = lab.train(should_stop=lambda: stop.is_set() or (export is None and output_unread()), on_step=on_step)
    if status == "stopped" and not stop.is_set():  # the reader gone: quietly, as it would have ended (0)
        return
    if status == "stopped":
        lab.evaluate()
    path = lab.export(export, replace=force) if export is not None else None
    summary = lab.summary()
    if json_output:
        if path is not None:
            summary["export"] = str(path)
        _print_json(summary)
    else:
        _print_table(lab, summary)
        if path is not None:
            _out_console().print(f"exported to {path}", markup=False)
    stopped = f"stopped at step {lab.trained_steps} of {total}"
    if status == "completed" and stop.is_set():  # Ctrl-C in the final scoring: the buckets scored are printed
        status = "stopped"
        stopped = f"trained {total} steps; scoring stopped after {len(summary['buckets'])} of {len(lab.buckets)} " \
                  "length buckets"
    _exit_for_training_status(status, lab.training_message, stopped, stop.exit_code)


def _print_table(lab, summary: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"seq2seq: {lab.describe()}", title_justify=TITLE_LEFT)
    table.add_column("source length")  # (wraps on a narrow page: no_wrap left the scores no room, "│  │ │  │")
    table.add_column("sequence accuracy", justify="right")
    table.add_column("token accuracy", justify="right")
    table.add_column("sequences", justify="right")
    for b in summary["buckets"]:
        span = f"{b['min_length']}-{b['max_length']}" if b["max_length"] > b["min_length"] else str(b["min_length"])
        table.add_row(span + (" (longer than training)" if b["unseen"] else ""), _pct(b["sequence_accuracy"]),
                      _pct(b["token_accuracy"]), str(b["count"]))
    out = _out_console()
    out.print(whole_cells(table))
    loss = summary["loss"]
    out.print(f"{summary['trained_steps']} steps in {summary['train_seconds']:.1f} s, last training loss "
              f"{'-' if loss is None else f'{loss:.4g}'} (teacher forcing); greedy decoding of held-out sources "
              "(a sequence is right if every token and its </s> are)")
    bench = summary["bench"]
    verdict = "right" if bench["correct"] else f"wrong; expected {' '.join(bench['expected'])}"
    out.print(f"example: {' '.join(bench['source'])} -> {' '.join(bench['decoded'])} ({verdict})")
