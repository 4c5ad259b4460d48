"""``rnnlab tree``: train the recursive net of the treebank lab on the shipped treebank, headless.

Prints the accuracy of every epoch (train and test) and, for each ``--parse TREE``, the trained
model's prediction for that typed tree. A thin view over :class:`rnnlab.labs.tree.TreeLab`
(``rnnlab tui treebank`` is the same lab, interactive).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import UserError, counted
from ..errors import percent_or_dash as _percent
from ._app import (EXPORT_HELP_FORCE, TITLE_LEFT, ProgressLines, _compile_notices, _exit_for_training_status, _info,
                   _json_float, _out_console, _print_json, _progress, app, export_file, export_option, help_notes,
                   lab_option, option_flag, out_glyph, output_unread, quiet_option, whole_cells)


def _option_notes() -> dict[str, str]:
    """Each lab option's range and preset value, for --help: the engine's own (:mod:`rnnlab.labs.tree`)."""
    from ..labs.tree import DEFAULTS, option_range

    return {name: f"In {option_range(name)} (preset: {DEFAULTS[name]})."
            for name in ("epochs", "hidden_size", "learning_rate", "batch_size", "seed")}


@app.command("tree", cls=help_notes(_option_notes))
def tree(
    epochs: Annotated[int | None, lab_option("--epochs", "Epochs to train.")] = None,
    hidden_size: Annotated[int | None, lab_option("--hidden-size", "Units per node vector.")] = None,
    learning_rate: Annotated[float | None, lab_option("--learning-rate", "Adam's learning rate.")] = None,
    batch_size: Annotated[int | None, lab_option("--batch-size", "Trees per Adam step.")] = None,
    seed: Annotated[int | None, lab_option("--seed", "Seed of the weights and the minibatch order.")] = None,
    test_tree: Annotated[int | None, typer.Option(
        "--tree", metavar="N", show_default=False,
        help="After training, classify test tree N of the treebank, numbered as the lab's n and N show them (from "
             "0: 'test tree 4 of 150'); --export writes it.")] = None,
    parse: Annotated[list[str] | None, typer.Option(
        "--parse", metavar="TREE",
        help="After training, classify this tree: an s-expression such as '((good but) dull)', optionally "
             "after its label ('pos ((dull but) good)'). Repeat for more trees.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the epochs and predictions as JSON.")] = False,
    export: Annotated[Path | None, export_option(
        "the --tree test tree or the first --parse tree (else test tree 4, the lab's first) after training: every "
        "node's h and dL/dh, the weights and the training history,")] = None,
    force: Annotated[bool, typer.Option("--force", help=EXPORT_HELP_FORCE)] = False,
    quiet: Annotated[bool, quiet_option()] = False,
) -> None:
    """Train a recursive net on the shipped sentiment treebank and print its accuracy per epoch.

    Every node computes h = tanh(W (h_left, h_right) + b), a softmax reads the root; structure decides
    the treebank's labels. Prints each epoch's train and test accuracy, then the prediction for the
    --tree and each --parse tree. The options are those of the options dialog (e) of `rnnlab tui treebank`.
    """
    from ..labs.tree import TreeLab

    if export is not None and parse and test_tree is not None:  # (as bptt's --input and --sequence-seed)
        raise UserError("--tree and --parse both choose the tree --export writes: give one")
    given = {"epochs": epochs, "hidden_size": hidden_size, "learning_rate": learning_rate,
             "batch_size": batch_size, "seed": seed}
    with _compile_notices():
        lab = TreeLab.open({k: v for k, v in given.items() if v is not None}, spell=option_flag)
    epochs = lab.options["epochs"]
    hidden_size = lab.options["hidden_size"]
    typed = []  # bad trees are refused before training
    if test_tree is not None:
        count = len(lab.test_bank)
        if not 0 <= test_tree < count:
            raise UserError(f"--tree must be a test tree's index in [0, {count - 1}] (numbered from 0, as the lab's "
                            f"'test tree 4 of {count}'), got {test_tree}")
        typed.append(lab.select_tree(test_tree))  # the bench: what the export is of, and its file's name
    for text in parse or []:
        try:
            typed.append(lab.parse_tree_text(text))
        except UserError as exc:
            raise UserError(f"--parse {text!r}: {exc}") from None
    if export is not None and parse:  # the bench: what the export is of, and its file's name
        lab.type_tree(parse[0])
    export = export_file(export, force, lab.export_name)
    summary = lab.summary()
    _info(f"[dim]rnnlab: training a recursive net (H={hidden_size}, {summary['model']['parameters']} parameters) "
          f"on {len(lab.train_bank)} trees, testing on {len(lab.test_bank)}[/dim]")

    from .experiments import _graceful_interrupt

    progress = _progress("loss {task.fields[loss]}  test {task.fields[test]}")
    lines = ProgressLines("tree", "epoch", epochs) if progress.disable else None
    with _compile_notices(), _graceful_interrupt("epoch") as stop, progress:
        bar = progress.add_task("epoch", total=epochs, loss="-", test="-")

        def on_epoch(stats) -> None:
            progress.update(bar, completed=stats.epoch, loss=f"{stats.loss:.4g}", test=_percent(stats.test_accuracy))
            if lines is not None:
                lines(stats.epoch, f"loss {stats.loss:.4g}, test accuracy {_percent(stats.test_accuracy)}")

        # a reader gone (| true, a pager quit) stops it too: its only product is the tables, which nobody would see
        # (unless it goes to an --export file too)
        status = lab.train(epochs, should_stop=lambda: stop.is_set() or (export is None and output_unread()),
                           on_epoch=on_epoch)
    if status == "stopped" and not stop.is_set():  # the reader gone: quietly, as it would have ended (0)
        return
    path = None
    if export is not None:
        lab.backward_all()  # (the lab's B: dL/dh at every node, with the trained weights)
        path = lab.export(export, replace=force)

    predictions = []
    if typed:
        probs = lab.classify(typed)
        for k, (t, p) in enumerate(zip(typed, probs)):
            best = lab.labels[int(p.argmax())]
            predictions.append({"tree": t.to_sexpr(), "label": t.label, "prediction": best,
                                "probabilities": {c: float(v) for c, v in zip(lab.labels, p)},
                                "correct": None if t.label is None else best == t.label,
                                "test_tree": test_tree if k == 0 else None})
    history = lab.summary()["training"]["history"]
    last = history[-1] if history else None
    if json_output:
        _print_json({
            "lab": lab.name, "options": {k: v for k, v in lab.options.items() if k != "tree"},
            "status": status, "parameters": summary["model"]["parameters"],
            "epochs": [{**row, "loss": _json_float(row["loss"])} for row in history],
            "final": None if last is None else {k: last[k] for k in ("epoch", "train_accuracy", "test_accuracy")},
            "predictions": predictions, **({} if path is None else {"export": str(path)}),
        })
    else:
        _print_tables(lab, history, predictions, status)
        if path is not None:
            _out_console().print(f"exported to {path}", markup=False)
    _exit_for_training_status(status, lab.training_message, f"stopped after epoch {lab.epochs_done} of {epochs}",
                              stop.exit_code)


def _print_tables(lab: Any, history: list[dict], predictions: list[dict], status: str) -> None:
    from rich.table import Table

    console = _out_console()
    table = Table(title=f"treebank: {status}, {counted(len(history), 'epoch')}", title_justify=TITLE_LEFT)
    for column in ("epoch", "loss", "train acc", "test acc", "seconds"):
        table.add_column(column, justify="right")
    for row in history:
        table.add_row(str(row["epoch"]), f"{row['loss']:.4g}", _percent(row["train_accuracy"]),
                      _percent(row["test_accuracy"]), f"{row['seconds']:.2f}")
    console.print(whole_cells(table))
    if predictions:
        table = Table(title="predictions", title_justify=TITLE_LEFT)
        table.add_column("tree")
        table.add_column("label")
        table.add_column("prediction")
        for name in lab.labels:
            table.add_column(f"p({name})", justify="right")
        for row in predictions:
            mark = "" if row["correct"] is None else \
                " " + (out_glyph("✓", "right") if row["correct"] else out_glyph("✗", "wrong"))
            tree = row["tree"] if row["test_tree"] is None else \
                f"test tree {row['test_tree']} of {len(lab.test_bank)}: {row['tree']}"
            table.add_row(tree, row["label"] or "-", row["prediction"] + mark,
                          *(_percent(row["probabilities"][name]) for name in lab.labels))
        console.print(whole_cells(table))
