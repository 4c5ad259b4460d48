"""`rnnlab presets | train | bptt | trace | sample`: outputs, run directories, exit codes, errors."""

from __future__ import annotations

import contextlib
import json
import tomllib
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import typer

from conftest import DIVERGING_SPEC, ctrl_c_at, one_line_error, run_cli as run
from rnnlab import cli

ROOT = Path(__file__).resolve().parents[1]


def test_presets_json_lists_every_preset(capsys):
    code, out, _ = run(capsys, "presets", "--json")
    assert code == 0
    rows = json.loads(out)
    assert rows[0]["name"] == "hello"
    assert {"adding-rnn", "adding-lstm", "copy", "sine", "mackey-glass", "text"} <= {r["name"] for r in rows}
    code, out, _ = run(capsys, "presets")
    assert code == 0 and "adding-lstm" in out


def test_bptt_and_trace_read_a_runs_weights_on_other_sequences_of_its_task(capsys, tmp_path):
    """Does adding's model trained at T=20 carry its gradient at T=40? --set task.length on the run
    was refused ("changes a spec, not a run"), though the weights are the same shapes."""
    code, _, err = run(capsys, "train", "adding-rnn", "--set", "task.length=20", "--steps", "3",
                       "--out", tmp_path / "r")
    assert code == 0, err
    code, out, err = run(capsys, "bptt", tmp_path / "r", "--set", "task.length=40", "--json", "--no-jacobians")
    assert code == 0, err
    result = json.loads(out)
    assert result["steps"] == 40 and result["trained_steps"] == 3 and result["task_edits"] == {"task.length": [20, 40]}
    code, out, _ = run(capsys, "bptt", tmp_path / "r", "--set", "task.length=40", "--no-jacobians")
    assert "(rnn, trained 3 steps; here task.length = 40, trained at 20)" in out
    code, out, err = run(capsys, "trace", tmp_path / "r", "--set", "task.length=40", "--out", tmp_path / "t.npz")
    assert code == 0, err
    with np.load(tmp_path / "t.npz", allow_pickle=False) as trace:
        assert trace["x"].shape[0] == 40
        assert json.loads(str(trace["meta"]))["task_edits"] == {"task.length": [20, 40]}  # said in the file too
    for field in ("task.kind=copy", "model.hidden_size=3"):  # another task, another model: trained otherwise
        code, _, err = run(capsys, "bptt", tmp_path / "r", "--set", field)
        assert code == 2 and "--set changes a spec, not a run (its task's fields but kind, path and standardize" in err
    code, out, _ = run(capsys, "bptt", tmp_path / "r", "--json", "--no-jacobians")
    assert json.loads(out)["task_edits"] == {}
    spec_file = tmp_path / "r" / "spec.toml"  # edited by hand since: the checkpoint says what it trained at
    spec_file.write_text(spec_file.read_text().replace("length = 20", "length = 30"))
    code, out, _ = run(capsys, "bptt", tmp_path / "r", "--json", "--no-jacobians", "--set", "task.length=50")
    assert json.loads(out)["task_edits"] == {"task.length": [20, 50]}  # (not [30, 50])
    run(capsys, "train", "hello", "--steps", "1", "--out", tmp_path / "h")
    code, _, err = run(capsys, "bptt", tmp_path / "h", "--set", "task.text=jello")  # --set's doing, not spec.toml's
    assert code == 2 and one_line_error(err) == (f'rnnlab: error: --set task.text="jello": not the data '
                                                 f"{tmp_path / 'h'} was trained on (new: 'j'; gone: 'h')")
    run(capsys, "train", "selective-copy-gru", "--steps", "1", "--out", tmp_path / "s")
    code, _, err = run(capsys, "bptt", tmp_path / "s", "--set", "task.vocab_size=12")  # other outputs
    assert code == 2 and one_line_error(err) == (f"rnnlab: error: --set task.vocab_size=12: that task has 14 inputs "
                                                 f"and 12 outputs, {tmp_path / 's'}'s weights 10 and 8")


def test_a_training_into_a_log_says_how_it_goes_and_a_resume_says_where_it_starts(capsys, tmp_path, monkeypatch):
    """A cron job's log (stderr not a terminal) held the first line and an empty one until the run
    ended; a resume's first line read as a fresh start."""
    import rnnlab.cli._app as cli_app

    code, _, err = run(capsys, "train", "hello", "--steps", "20", "--out", tmp_path / "r")
    assert code == 0
    lines = err.splitlines()
    assert lines[0] == f"rnnlab: training hello (lstm, 1476 parameters) -> {tmp_path / 'r'}" and "" not in lines
    progress = [line for line in lines if line.startswith("rnnlab: hello: step ")]
    assert [line.split(",")[0] for line in progress] == [f"rnnlab: hello: step {s} of 20" for s in range(2, 21, 2)]
    assert all(", loss " in line and "|g| " in line and line.endswith(" steps/s") for line in progress)
    monkeypatch.setattr(cli_app, "PROGRESS_LINE_S", 0.0)  # a slow run: a line at least this often
    code, _, err = run(capsys, "train", "--resume", tmp_path / "r", "--steps", "25")
    assert code == 0
    lines = err.splitlines()
    assert lines[0].startswith("rnnlab: resuming at step 20 of 25: hello (lstm, 1476 parameters) -> ")
    assert [line.split(",")[0] for line in lines[1:]] == [f"rnnlab: hello: step {s} of 25" for s in range(21, 26)]


def test_a_spec_asking_for_a_gpu_this_machine_lacks_names_the_field_and_the_way_out(capsys, tmp_path):
    """It said "device 'cuda' is not available: ..." alone: which file asked, and what to do?"""
    from rnnlab.kernels.cuda import cuda_available

    if cuda_available()[0]:
        pytest.skip("this machine has a usable GPU")
    (tmp_path / "gpu.toml").write_text('[task]\nkind = "adding"\n[model]\ndevice = "cuda"\n')
    code, _, err = run(capsys, "train", tmp_path / "gpu.toml", "--steps", "1", "--out", tmp_path / "r")
    line = one_line_error(err)
    assert code == 2 and line.startswith(f'rnnlab: error: model.device = "cuda" in {tmp_path / "gpu.toml"}: ')
    assert line.endswith("(--device cpu trains it on the CPU: the same numbers)") and not (tmp_path / "r").exists()
    code, out, err = run(capsys, "spec", tmp_path / "gpu.toml")  # spec checks it as train would: refused too
    line = one_line_error(err)  # (it printed device = "cpu" and exit 0, a warning on stderr; CLI walkthrough)
    assert code == 2 and out == "" and line.startswith(f'rnnlab: error: model.device = "cuda" in {tmp_path}')
    assert line.endswith(f"(rnnlab train {tmp_path / 'gpu.toml'} --device cpu trains it on the CPU: the same numbers)")
    code, _, err = run(capsys, "spec", "hello", "--set", "model.device=cuda")
    assert code == 2 and one_line_error(err).endswith("(--set model.device=cpu trains it on the CPU: the same numbers)")


def test_spec_checks_an_experiment_and_prints_it_as_train_would_write_it(capsys, tmp_path):
    """An instructor checked 40 students' spec files by training each for 5 steps."""
    from rnnlab.spec import parse_spec

    (tmp_path / "hw1.toml").write_text('# week 1\n[task]\nkind = "adding"\nlength = 20\n[model]\ncell = "gru"\n')
    code, out, err = run(capsys, "spec", tmp_path / "hw1.toml", "--set", "train.learning_rate=0.01")
    assert code == 0 and err == ""
    resolved = parse_spec(out, source="out", base_dir=None)
    assert (resolved.task["length"], resolved.model.cell, resolved.train.learning_rate) == (20, "gru", 0.01)
    code, _, err = run(capsys, "train", tmp_path / "hw1.toml", "--set", "train.learning_rate=0.01", "--steps", "1",
                       "--out", tmp_path / "r")
    assert code == 0 and (tmp_path / "r" / "spec.toml").read_text().replace("steps = 1\n", "steps = 500\n") == out
    code, out, _ = run(capsys, "spec", tmp_path / "r", "--json")  # a run directory, checked and printed
    assert code == 0 and json.loads(out)["model"]["cell"] == "gru"
    # the fields its spec.toml lists, not the leaky cell's tau_min or sgd's momentum (a fresh-install walkthrough)
    written = tomllib.loads((tmp_path / "r" / "spec.toml").read_text())
    assert {table: set(fields) for table, fields in json.loads(out).items() if isinstance(fields, dict)} == \
        {table: set(fields) for table, fields in written.items() if isinstance(fields, dict)}
    (tmp_path / "bad.toml").write_text('[task]\nkind = "adding"\n[train]\nsteps = 5\nseed = 3\n')
    code, out, err = run(capsys, "spec", tmp_path / "bad.toml")
    assert code == 2 and out == "" and "train.seed: seed is a top-level field" in one_line_error(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml", "hw1.toml", "r"]  # nothing written


def test_a_long_pass_is_announced(capsys, monkeypatch):
    """bptt of H=8192 over 10000 steps ran for minutes without a word: it seemed to hang."""
    import rnnlab.cli.experiments as experiments

    code, _, err = run(capsys, "bptt", "hello", "--no-jacobians")
    assert code == 0 and "takes a while" not in err
    monkeypatch.setattr(experiments, "SLOW_PASS_MACS", 1)
    code, _, err = run(capsys, "bptt", "hello", "--no-jacobians")
    assert code == 0 and "rnnlab: a forward and backward pass of about 0 billion multiply-adds: this takes a " \
                         "while" in err


def test_seq2seq_and_tree_into_a_log_say_how_they_go(capsys):
    """As train's: their logs held a first line and an empty one until the end."""
    code, _, err = run(capsys, "seq2seq", "--steps", "20", "--hidden-size", "8", "--eval-size", "5")
    assert code == 0 and "" not in err.splitlines()
    assert "rnnlab: seq2seq: step 20 of 20, loss " in err and ", token accuracy " in err
    code, _, err = run(capsys, "tree", "--epochs", "1", "--hidden-size", "4")
    assert code == 0 and "" not in err.splitlines() and "rnnlab: tree: epoch 1 of 1, loss " in err


def test_seq2seq_and_tree_export_and_type_what_their_labs_x_and_i_do(capsys, tmp_path):
    """The seq2seq and treebank labs' x (export) and seq2seq's i (a source typed) had no command: esn alone had
    --export, so a script could not keep a decoding's attention weights or a tree's dL/dh."""
    small = ("--steps", "5", "--hidden-size", "8", "--eval-size", "5")
    code, out, err = run(capsys, "seq2seq", *small, "--source", "3 1 4", "--export", tmp_path / "s.npz", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["bench"]["source"] == ["3", "1", "4"] and summary["export"] == str(tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz", allow_pickle=False) as data:
        vocab = json.loads(str(data["meta"]))["vocab"]
        assert [vocab[k] for k in data["source"]] == ["3", "1", "4"]
        assert data["weights"].shape[1] == 3 and data["history_step"].tolist() == [1, 2, 3, 4, 5]
    code, out, err = run(capsys, "seq2seq", *small, "--source", "3 1 4")
    assert code == 0 and "example: 3 1 4 -> " in out, err
    tree = ("--epochs", "1", "--hidden-size", "4")
    code, out, err = run(capsys, "tree", *tree, "--parse", "pos ((dull but) good)", "--export", tmp_path / "t.npz")
    assert code == 0 and f"exported to {tmp_path / 't.npz'}" in out, err
    with np.load(tmp_path / "t.npz", allow_pickle=False) as data:  # the first --parse tree, backpropagated whole
        assert data["words"].tolist() == ["dull", "but", "", "good", ""] and data["dh"].shape == (5, 4)
        assert json.loads(str(data["meta"]))["tree"]["sexpr"] == "((dull but) good)"
    code, out, err = run(capsys, "tree", *tree, "--export", tmp_path / "t4.npz", "--json")
    assert code == 0 and json.loads(out)["export"] == str(tmp_path / "t4.npz"), err
    with np.load(tmp_path / "t4.npz", allow_pickle=False) as data:  # else the lab's first tree, test tree 4
        assert json.loads(str(data["meta"]))["tree"]["index"] == 4


@pytest.mark.parametrize("args, message", [
    (("seq2seq", "--source", "3 a"), "--source '3 a': type digits 0-9 only (spaces and commas allowed), got 'a'"),
    (("seq2seq", "--force"), "--force needs --export"),
    (("tree", "--force"), "--force needs --export"),
    (("seq2seq", "--export", "."), "is a directory: name the export file in it, e.g. "),
    (("tree", "--export", "."), "is a directory: name the export file in it, e.g. "),
    (("seq2seq", "--export", "old.npz"), "old.npz already exists (add --force to replace it)"),
    (("tree", "--export", "old.npz"), "old.npz already exists (add --force to replace it)"),
])
def test_seq2seq_and_tree_refuse_a_bad_source_or_export_before_training(capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "old.npz").write_bytes(b"kept")
    code, _, err = run(capsys, *args)
    assert code == 2 and message in one_line_error(err) and "training" not in err, err
    assert (tmp_path / "old.npz").read_bytes() == b"kept"


def test_a_quoted_tilde_is_the_home_directory_not_a_folder_named_tilde(capsys, tmp_path, monkeypatch):
    """OUT="~/runs/a" in a script (or a config file) reaches rnnlab unexpanded: train --out "$OUT" made a folder
    named ~ in the working directory, and bptt, runs and sample of "~/runs/a" said there was none, where the lab's
    open dialog and a spec's data path read ~ as home."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    code, out, err = run(capsys, "train", "hello", "--steps", "2", "--out", "~/runs/a", "--json")
    assert code == 0 and json.loads(out)["run_dir"] == str(home / "runs" / "a"), err
    assert not (work / "~").exists() and (home / "runs" / "a" / "checkpoint.npz").is_file()
    code, out, err = run(capsys, "bptt", "~/runs/a", "--json", "--no-jacobians")
    assert code == 0 and json.loads(out)["trained_steps"] == 2, err
    code, out, err = run(capsys, "runs", "~/runs", "--json")
    assert code == 0 and [row["path"] for row in json.loads(out)] == [str(home / "runs" / "a")], err
    code, _, err = run(capsys, "trace", "~/runs/a", "--out", "~/t.npz")
    assert code == 0 and (home / "t.npz").is_file(), err
    code, out, err = run(capsys, "sample", "~/runs/a", "--length", "3", "--json")
    assert code == 0 and json.loads(out)["step"] == 2, err
    (home / "s.toml").write_text("[train]\nsteps = 1\n")
    code, out, err = run(capsys, "train", "~/s.toml", "--out", "~/runs/b", "--json")
    assert code == 0 and json.loads(out)["step"] == 1, err


@pytest.mark.parametrize("epochs, said", [("1", "treebank: completed, 1 epoch\n"),
                                          ("2", "treebank: completed, 2 epochs\n")])
def test_tree_counts_its_epochs_in_words(capsys, epochs, said):
    """Its table's title said "2 epoch(s)" (and "1 epoch(s)"), a form's plural: now the count's own word."""
    code, out, err = run(capsys, "tree", "--epochs", epochs, "--hidden-size", "4")
    assert code == 0 and out.startswith(said), out


def test_trees_predictions_in_a_narrow_terminal_keep_their_one_word_columns_whole(capsys, monkeypatch):
    """At 40 columns the predictions' header read "predicti…" (rich narrowed that one-word column with the tree's,
    which wraps): a column that wrapping cannot narrow keeps its width, the tree wraps instead."""
    from rich.console import Console

    from rnnlab.cli import _app

    monkeypatch.setattr(_app, "_consoles", {"out": Console(width=40, force_terminal=True, color_system=None)})
    code, out, _ = run(capsys, "tree", "--epochs", "1", "--hidden-size", "4", "--parse", "((good but) dull)",
                       "--parse", "pos ((dull but) good)")
    lines = out.splitlines()
    assert code == 0 and "…" not in out and max(map(len, lines)) <= 40, out
    assert re.search(r"^tree +label +prediction +p\(neg\) +p\(pos\)$", out, re.M), out
    assert re.search(r"^\(\(dull +pos +(pos ✓|neg ✗) +\d+\.\d% +\d+\.\d%$", out, re.M), out


def test_a_frameless_table_in_a_narrow_terminal_ends_no_line_in_a_space(capsys, monkeypatch):
    """Where its frame goes (whole_cells, at 40 columns) a table's cells kept their padding to the columns' widths:
    a wrapped tree's 'but)' ended in 36 spaces, the epochs' wrapped headers in 8, which a terminal's copy keeps."""
    from rich.console import Console

    from rnnlab.cli import _app

    monkeypatch.setattr(_app, "_consoles", {"out": Console(width=40, force_terminal=True, color_system=None)})
    code, out, _ = run(capsys, "tree", "--epochs", "1", "--hidden-size", "4", "--parse", "((good but) dull)")
    lines = out.splitlines()
    assert code == 0 and "but)" in lines and all(line == line.rstrip() for line in lines), lines


@pytest.mark.parametrize("columns", ["40", "50"])
def test_seq2seq_in_a_narrow_terminal_shows_every_score(capsys, monkeypatch, columns):
    """At 40 columns the table's rows were "│ 3-5   │  │ │  │": the unwrapped "11-13 (longer than
    training)" took the width and every score was gone (cut to "10…" at 50); the label wraps instead, and at 40,
    where the labels were still cut ("4…", "7…"), the frame goes (a space between columns)."""
    from rich.console import Console

    from rnnlab.cli import _app

    monkeypatch.setattr(_app, "_consoles", {"out": Console(width=int(columns), highlight=False)})  # a terminal's
    code, out, _ = run(capsys, "seq2seq", "--steps", "2", "--hidden-size", "8", "--eval-size", "5", "--max-length", "6")
    bar = "│ " if columns == "50" else ""
    # the lengths whole, then sequence and token accuracy and the sequences
    scores = re.compile(rf"{bar}(3|4-5|6|7-9 \(longer) +({bar} *\d+\.\d% +){{2}}{bar} *5( │)?")
    rows = [line for line in out.splitlines() if scores.fullmatch(line)]
    assert code == 0 and len(rows) == 4 and "…" not in out, out
    assert max(len(line) for line in out.splitlines()) <= int(columns)


def test_a_set_field_the_spec_does_not_read_is_refused_at_its_default_too(capsys, tmp_path):
    """A momentum sweep on adam half-succeeded: momentum=0.5 was refused, momentum=0.9 (the default)
    trained a run that ignored it."""
    for field, said in (("train.momentum=0.9", "train.momentum: adam does not read it (only sgd does)"),
                        ("train.teacher_forcing=false",
                         "train.teacher_forcing: lstm does not read it (only jordan does)"),
                        ("model.scan=sequential",
                         "model.scan: lstm does not read it (only mingru, minlstm and lru do)")):
        code, _, err = run(capsys, "train", "hello", "--set", field, "--steps", "1", "--out", tmp_path / "r")
        assert code == 2 and one_line_error(err) == f"rnnlab: error: --set {said}: the run would ignore it", err
        assert not (tmp_path / "r").exists()
    # another cell: the old one's fields go back to their defaults (a jordan spec's teacher_forcing
    # refused the gru, and then --set of it too)
    code, _, err = run(capsys, "train", "sine-jordan", "--set", "model.cell=gru", "--steps", "1",
                       "--out", tmp_path / "j")
    assert code == 0, err
    code, _, err = run(capsys, "train", "hello", "--set", "train.optimizer=sgd", "--set", "train.momentum=0.9",
                       "--set", "model.device=cpu", "--steps", "1", "--out", tmp_path / "r")
    assert code == 0, err


def test_a_folder_or_file_named_like_a_preset_does_not_hide_it(capsys, tmp_path, monkeypatch):
    """copy/ or a file sine in the working directory: the bare name is still the preset; ./copy is
    the folder. A run directory of a preset's name too (else nothing could name the preset there):
    the bare name is the preset, with a warning naming ./NAME, the run."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "copy").mkdir()
    (tmp_path / "sine").write_text("notes\n", encoding="utf-8")
    code, out, err = run(capsys, "bptt", "copy", "--json")
    assert code == 0 and json.loads(out)["spec"] == "copy" and json.loads(out)["steps"] == 30, err
    code, _, err = run(capsys, "train", "sine", "--steps", "2", "--out", "r")
    assert code == 0, err
    code, _, err = run(capsys, "bptt", "./copy")
    assert code == 2 and "copy is not a run directory: it has no spec.toml" in one_line_error(err)
    code, _, err = run(capsys, "train", "hello", "--steps", "3", "--out", "hello")
    assert code == 0, err
    code, out, err = run(capsys, "bptt", "hello", "--json")
    assert code == 0 and json.loads(out)["trained_steps"] == 0
    assert err.strip() == "rnnlab: warning: hello is the preset; the run directory of that name here is ./hello"
    code, out, err = run(capsys, "bptt", "./hello", "--json")
    assert code == 0 and json.loads(out)["trained_steps"] == 3 and err == ""
    code, _, err = run(capsys, "train", "hello", "--steps", "2", "--out", "hello2")
    assert code == 0 and "the run directory of that name here is ./hello" in err
    code, _, err = run(capsys, "train", "./hello", "--steps", "2")
    assert code == 2 and "hello is a run directory, not a spec: continue it with --resume ./hello" in err


def test_training_a_bidirectional_next_character_model_warns_that_it_reads_its_targets(capsys, tmp_path):
    spec = tmp_path / "bidi.toml"
    spec.write_text('[task]\nkind = "hello"\n[model]\ncell = "gru"\nhidden_size = 4\nbidirectional = true\n')
    code, _, err = run(capsys, "train", spec, "--steps", "2", "--out", tmp_path / "r")
    assert code == 0, err
    assert "rnnlab: warning: a reverse direction reads the input after each step, which is the hello task's " \
           "target" in err


def test_training_on_a_series_with_pandas_index_column_warns(capsys, tmp_path):
    data = tmp_path / "prices.csv"
    data.write_text(",price\n" + "".join(f"{i},{np.sin(i / 3):.4f}\n" for i in range(60)))
    spec = tmp_path / "prices.toml"
    spec.write_text(f'[task]\nkind = "series"\npath = "{data.name}"\nlength = 10\n[model]\nhidden_size = 4\n')
    code, _, err = run(capsys, "train", spec, "--steps", "1", "--out", tmp_path / "r")
    assert code == 0, err
    assert "rnnlab: warning: prices.csv: column 1 has no name and counts the rows (0, 1, 2, ...): pandas' index?" in err


def test_bptt_and_trace_say_what_train_says_of_the_data(capsys, tmp_path):
    """A pandas index column and a tail too short to hold out a sequence were said by train (and
    spec) alone: bptt and trace on the same spec, or the run at a longer --set task.length, scored
    training data and channels called '#1' without a word."""
    data = tmp_path / "prices.csv"
    data.write_text(",price\n" + "".join(f"{i},{np.sin(i / 3):.4f}\n" for i in range(120)))
    spec = tmp_path / "prices.toml"
    spec.write_text(f'[task]\nkind = "series"\npath = "{data.name}"\nlength = 10\n[model]\nhidden_size = 4\n')
    index = "rnnlab: warning: prices.csv: column 1 has no name and counts the rows (0, 1, 2, ...): pandas' index?"
    for args in (["bptt", spec], ["trace", spec, "--out", tmp_path / "t.npz"]):
        code, _, err = run(capsys, *args)
        assert code == 0 and index in err and "rnnlab: note:" not in err, (args, err)
        code, _, err = run(capsys, *args, "--set", "task.length=40", "--force" if args[0] == "trace" else "--json")
        assert code == 0 and ("rnnlab: note: 120 rows are too few to hold out the last tenth (both parts need "
                              "length + 1 = 41: 410 rows): the eval batch draws from the training data (this "
                              "pass's too)") in err, (args, err)


def test_train_writes_a_run_directory_and_resume_extends_it(capsys, tmp_path):
    out_dir = tmp_path / "run"
    code, out, err = run(capsys, "train", "hello", "--steps", "30", "--seed", "4", "--out", out_dir, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["status"] == "completed" and summary["step"] == 30 and summary["baseline"]["name"]
    for name in ("spec.toml", "metrics.jsonl", "evals.jsonl", "checkpoint.npz", "summary.json"):
        assert (out_dir / name).is_file(), name
    metrics = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(1, 31))
    assert set(metrics[0]) == {"step", "loss", "accuracy", "grad_norm", "clipped", "time"}
    assert "seed = 4" in (out_dir / "spec.toml").read_text()

    code, out, err = run(capsys, "train", "--resume", out_dir, "--steps", "45", "--json")
    assert code == 0, err
    assert json.loads(out)["step"] == 45
    metrics = (out_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(m)["step"] for m in metrics] == list(range(1, 46))
    assert "steps = 45" in (out_dir / "spec.toml").read_text()


def test_train_table_output_names_the_baseline(capsys, tmp_path):
    code, out, err = run(capsys, "train", "adding-rnn", "--steps", "2", "--out", tmp_path / "r")
    assert code == 0, err
    assert "predict 1" in out and "held-out" in out


def test_a_series_too_short_to_hold_out_a_tail_says_its_eval_batch_is_training_data(capsys, tmp_path):
    """The shipped example series (240 rows) at length 50 holds nothing out: the table and the
    plots called its eval batch "held-out", though it drew from the very data trained on."""
    spec = tmp_path / "short.toml"
    spec.write_text('[task]\nkind = "series"\npath = "example-series.csv"\n[model]\nhidden_size = 4\n')
    code, out, err = run(capsys, "train", spec, "--steps", "2", "--out", tmp_path / "r")
    assert code == 0, err
    assert ("rnnlab: note: 240 rows are too few to hold out the last tenth (both parts need length + 1 = 51: 510 "
            "rows): the eval batch draws from the training data") in err
    assert "eval batch (training data)" in out and "held-out" not in out
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["eval_held_out"] is False
    spec.write_text(spec.read_text().replace("[model]", "length = 10\n[model]"))  # 240 rows hold out 24 >= 11
    code, out, err = run(capsys, "train", spec, "--steps", "2", "--out", tmp_path / "r10")
    assert code == 0 and "note:" not in err and "held-out batch" in out
    assert json.loads((tmp_path / "r10" / "summary.json").read_text())["eval_held_out"] is True


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "nope"], ["unknown preset 'nope'", "hello"]),
        (["tui", "nope"], ["unknown experiment 'nope'", "hello", "esn, seq2seq, treebank"]),
        (["train", "{dir}/bad.toml"], ["not valid TOML"]),
        (["train", "{dir}/field.toml"], ["train.optimizer", "adam"]),
        (["train", "{dir}/ragged.toml"], ["ragged.csv", "line 3"]),
        (["train", "--resume", "{dir}"], ["not a run directory"]),
        (["train", "--resume", "{dir}/missing"], ["no such run directory"]),
        (["train", "hello", "--resume", "{dir}"], ["either"]),
        (["train", "hello", "--steps", "0"], ["--steps"]),
        (["bptt", "{dir}/bad.toml"], ["not valid TOML"]),
        (["trace", "hello", "--out", "{dir}/trace.txt"], [".npz"]),
        (["trace", "hello", "--out", "{dir}/no/such/trace.npz"], ["no such directory"]),
        (["sample", "{dir}"], ["not a run directory"]),
        (["train", "{dir}/empty.toml"], ["empty.toml is empty", "needs at least one field"]),
        (["train", "{dir}/comments.toml"], ["comments.toml is empty"]),
        (["train", "{dir}/escape.toml"], ["name:", "no '/'"]),
        (["train", "{dir}/ragged.toml"], ["task.path: ", "ragged.csv", "(in "]),
        (["bptt", "{dir}/missing-book.toml"], ["task.path: ", "book.txt: no such file", "sample_data/", "(in "]),
        (["bptt", "{dir}/trace.npz"], ["trace.npz is not a spec .toml file", "a preset name"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, args, words):
    (tmp_path / "empty.toml").write_text("")
    (tmp_path / "comments.toml").write_text("# nothing but a comment\n\n   \n")
    (tmp_path / "escape.toml").write_text('name = "../../evil"\n[task]\nkind = "adding"\n')
    (tmp_path / "bad.toml").write_text("[train\n")
    (tmp_path / "field.toml").write_text('[train]\noptimizer = "adamw"\n')
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3\n")
    (tmp_path / "ragged.toml").write_text('[task]\nkind = "series"\npath = "ragged.csv"\nlength = 1\n')
    (tmp_path / "missing-book.toml").write_text('[task]\nkind = "text"\npath = "book.txt"\n')
    (tmp_path / "trace.npz").write_bytes(b"PK\x03\x04 an archive, not a spec")
    code, out, err = run(capsys, *[a.format(dir=tmp_path) for a in args])
    assert code == 2
    line = one_line_error(err)
    for word in words:
        assert word in line
    assert out == ""


def test_bptt_of_a_deep_bidirectional_model_prints_every_number_whole(capsys, tmp_path):
    """Four streams of four columns each did not fit one table: its cells were cut to '9.674e…'."""
    spec = tmp_path / "bidir.toml"
    spec.write_text('[task]\nkind = "hello"\n[model]\ncell = "gru"\nhidden_size = 8\nnum_layers = 2\n'
                    'bidirectional = true\n')
    code, out, err = run(capsys, "bptt", str(spec))
    assert code == 0, err
    assert "…" not in out
    for tag in ("l0", "l1"):
        assert f"||ds_T/ds_t|| {tag} " in out
    for tag in ("l0r", "l1r"):  # a reverse direction's chain ends at t = 1: its header said ds_T
        assert f"||ds_1/ds_t|| {tag} " in out
    blocks = tmp_path / "blocks.toml"  # eight self-attention blocks: headers of 19 characters, whole too
    blocks.write_text('[task]\nkind = "copy"\n[model]\ncell = "selfattention"\nhidden_size = 16\nnum_heads = 2\n'
                      'num_layers = 8\n')
    code, out, err = run(capsys, "bptt", str(blocks))
    assert code == 0, err
    assert all(f"||dL/dh_t|| block {k} " in out for k in range(8)) and "…" not in out


def test_a_trace_says_the_truncation_its_gradients_were_cut_by_and_takes_another(capsys, tmp_path):
    """A run trained with train.truncate = 5 exported dh cut every 5 steps (0 before the last five),
    with nothing in the file saying so and no way to export full BPTT."""
    code, _, err = run(capsys, "train", "adding-rnn", "--set", "task.length=20", "--set", "train.truncate=5",
                       "--steps", "2", "--out", tmp_path / "r")
    assert code == 0, err
    for extra, cut in (([], 5), (["--truncate", "0"], 0)):
        code, _, err = run(capsys, "trace", tmp_path / "r", "--out", tmp_path / f"t{cut}.npz", *extra)
        assert code == 0, err
        with np.load(tmp_path / f"t{cut}.npz", allow_pickle=False) as trace:
            assert json.loads(str(trace["meta"]))["truncate"] == cut
            assert json.loads(str(trace["meta"]))["task_layout"].startswith("The adding problem")  # x's columns
            assert (np.abs(trace["dh"][0, :15]).max() == 0) == (cut == 5)


def test_bptt_shows_the_vanishing_curve(capsys):
    code, out, err = run(capsys, "bptt", "adding-rnn", "--json")
    assert code == 0 and err == "", err  # no progress bar's leftover line where stderr is no terminal
    data = json.loads(out)
    stream = data["streams"][0]
    assert data["steps"] == len(stream["grad_norm"]) == 100
    assert stream["grad_norm"][0] < 1e-6 * stream["grad_norm"][-1]
    assert stream["jacobian_product"][-1] == 1.0 and stream["jacobian_chain"][-1] == 1.0
    code, out, _ = run(capsys, "bptt", "hello")
    assert code == 0 and "||dL/dh_t||" in out and "||dL/dh_1|| / ||dL/dh_T||" in out
    # the columns say what they are: "||J_t|| > 1 at every step" read as "it explodes" while it vanished
    assert "prod ||J||: their product over steps t+1..T, an upper bound on ||ds_T/ds_t||" in " ".join(out.split())
    assert "(s = [h; c])" in out
    code, out, _ = run(capsys, "bptt", "hello", "--set", "model.bidirectional=true", "--no-jacobians")
    # where each direction's BPTT ends over where it starts: a reverse direction's runs from t = 1 up
    assert code == 0 and "layer 0: ||dL/dh_1|| / ||dL/dh_T|| = " in out
    assert "layer 0 reverse: ||dL/dh_T|| / ||dL/dh_1|| = " in out
    assert "(its backward pass runs from t = 1 up to T)" in out
    # adding scores t = T alone: its reverse direction's pass starts where no gradient is ("= -" said nothing)
    code, out, _ = run(capsys, "bptt", "adding-rnn", "--set", "model.bidirectional=true", "--set", "task.length=20",
                       "--no-jacobians", "--truncate", "500")
    assert code == 0 and "layer 0 reverse: ||dL/dh_1|| = 0 where its backward pass starts (no loss there): no ratio" \
        in out
    assert "(truncate 500: no cut within its 20 steps, so full BPTT)" in " ".join(out.split())  # not "cut every 500"


@pytest.mark.parametrize("args", [[], ["--no-jacobians"], ["--truncate", "2"]])
def test_bptts_explanation_under_the_table_ends_in_a_full_stop(capsys, args):
    """It ended 'of the pass's first sequence, never truncated' (or 'in the pass'), a sentence cut short."""
    code, out, _ = run(capsys, "bptt", "hello", *args)
    assert code == 0 and out.endswith(".\n") and "||dL/dh_t||: the 2-norm" in out.splitlines()[-1], out[-200:]


def test_names_and_paths_are_printed_as_they_are_not_as_markup(capsys):
    """rich read "x[bold]y" as x, bold, y, and "runs/z[/]w" in the Ctrl-C message as a closing tag
    with nothing to close: a MarkupError traceback and exit status 1 instead of 130."""
    from rnnlab.cli._app import _exit_for_training_status

    code, out, _ = run(capsys, "bptt", "hello", "--set", 'name="x[bold]y"')
    assert code == 0 and out.startswith("BPTT of x[bold]y (")
    with pytest.raises(typer.Exit) as stopped:
        _exit_for_training_status("stopped", "", "continue with: rnnlab train --resume 'runs/z[/]w'")
    assert stopped.value.exit_code == 130
    assert capsys.readouterr().err.strip() == "continue with: rnnlab train --resume 'runs/z[/]w'"


def test_bptt_counts_its_own_batch_in_the_memory_check(capsys, monkeypatch):
    """The spec's check counted the training's batches only: --batch 4096 over 2000 steps went on to
    allocate about 36 GiB."""
    import rnnlab.spec

    monkeypatch.setattr(rnnlab.spec, "physical_memory", lambda: 24 * 2**30)  # this machine's, whatever CI has
    code, out, err = run(capsys, "bptt", "adding-lstm", "--set", "task.length=2000", "--batch", "4096")
    assert code == 2 and out == ""
    assert one_line_error(err).startswith("rnnlab: error: --batch 4096: a pass over 4096 sequences needs about ")


def test_a_run_trained_with_batches_too_large_here_is_read_not_called_damaged(capsys, tmp_path, monkeypatch):
    """A run trained on a larger machine (its batches do not fit this one) was "damaged" to every
    command, bptt --batch 1 too: the spec's memory check ran when it was read. Reading it runs one
    pass; only training it further is refused, saying so. (The run is trained here, then read on a
    "machine" of 64 MiB.)"""
    import rnnlab.spec

    run_dir = tmp_path / "big"
    code, _, err = run(capsys, "train", "adding-lstm", "--set", "task.length=2000", "--set", "model.hidden_size=16",
                       "--steps", "1", "--out", run_dir)
    assert code == 0, err
    monkeypatch.setattr(rnnlab.spec, "physical_memory", lambda: 64 * 2**20)
    code, out, err = run(capsys, "bptt", run_dir, "--json")
    assert code == 0, err
    assert json.loads(out)["trained_steps"] == 1
    code, out, err = run(capsys, "train", "--resume", run_dir, "--steps", "2")
    assert code == 2 and out == ""
    assert one_line_error(err).startswith("rnnlab: error: task.length: training this experiment needs about ")
    assert one_line_error(err).endswith(f"{run_dir} can be read here (bptt, trace, the lab), not trained further")
    code, out, err = run(capsys, "train", "--resume", run_dir, "--json")  # nothing to train: said as before
    assert code == 0 and json.loads(out)["step"] == 1, err
    monkeypatch.setattr(rnnlab.spec, "physical_memory", lambda: 24 * 2**30)  # this machine's, whatever CI has
    code, out, _ = run(capsys, "bptt", "adding-lstm", "--set", "task.length=2000", "--set", "train.batch_size=4096",
                       "--set", "train.eval_batch_size=16384", "--set", "model.hidden_size=16")
    assert code == 0  # a spec's pass, at batch 1: its training sizes are the train command's concern


def test_trace_exports_every_record(capsys, tmp_path):
    from rnnlab.spec import load_preset

    path = tmp_path / "t.npz"
    code, out, err = run(capsys, "trace", "hello", "--out", path, "--json")
    assert code == 0, err
    with np.load(path, allow_pickle=False) as data:
        for name in ("h", "c", "i", "f", "g", "o", "dh", "x", "y", "mask", "outputs"):
            assert name in data.files, name
        assert data["f"].shape == (1, 4, 1, 16)  # (layers * directions, T, B, H)
        meta = json.loads(str(data["meta"]))
    assert meta["cell"] == "lstm"
    assert json.loads(out)["meta"] == meta  # --json lists what the file holds, its meta too
    assert meta["vocab"] == ["h", "e", "l", "o"]  # x's one-hot columns, the outputs' classes
    # where the numbers come from: a trace of one run of an experiment said what another's did
    assert meta["run"] is None and meta["task_edits"] == {} and meta["sequence"] == {"drawn": {"seed": 0, "batch": 1}}
    assert meta["spec_toml"] == load_preset("hello").to_toml()
    code, _, err = run(capsys, "train", "hello", "--steps", "2", "--set", "model.init=orthogonal", "--out",
                       tmp_path / "orth")
    code, out, err = run(capsys, "trace", tmp_path / "orth", "--out", tmp_path / "o.npz", "--batch", "2", "--json")
    meta = json.loads(out)["meta"]
    assert code == 0 and meta["run"] == str((tmp_path / "orth").resolve()), err
    assert 'init = "orthogonal"' in meta["spec_toml"] and meta["sequence"] == {"drawn": {"seed": 0, "batch": 2}}


def test_bptt_and_trace_run_on_a_typed_sequence_or_another_draw_as_the_labs_i_and_n_do(capsys, tmp_path):
    """The lab's i (a sequence typed) and n (another draw) had no command: a trace the lab exported of a typed
    sequence, or of its third draw, could not be made again by a script, though its meta named the sequence."""
    code, out, err = run(capsys, "trace", "hello", "--input", "hell", "--out", tmp_path / "typed.npz", "--json")
    assert code == 0, err
    meta = json.loads(out)["meta"]
    assert meta["sequence"] == {"typed": "hell"}
    with np.load(tmp_path / "typed.npz") as data:  # x: the one-hot inputs "hel", y: the next characters "ell"
        assert "".join(meta["vocab"][k] for k in data["x"][:, 0].argmax(-1)) == "hel"
        assert "".join(meta["vocab"][k] for k in data["y"][:, 0]) == "ell"
    adding = ("adding-rnn", "--set", "task.length=12", "--set", "model.hidden_size=4")
    code, out, err = run(capsys, "bptt", *adding, "--input", "0.3 0.9* 0.1 0.5* 0.2", "--json", "--no-jacobians")
    assert code == 0, err
    result = json.loads(out)
    assert result["steps"] == 5 and result["sequence"] == {"typed": "0.3 0.9* 0.1 0.5* 0.2"}
    code, out, _ = run(capsys, "bptt", *adding, "--input", "0.3 0.9* 0.1 0.5* 0.2", "--no-jacobians")
    assert "trained 0 steps; on the typed sequence)" in out  # the table says it is not the task's draw
    draws = {}
    for seed in (None, 5):
        chosen = () if seed is None else ("--sequence-seed", seed)
        path = tmp_path / f"drawn-{seed}.npz"
        code, out, err = run(capsys, "trace", *adding, *chosen, "--out", path, "--json")
        assert code == 0, err
        assert json.loads(out)["meta"]["sequence"] == {"drawn": {"seed": 0 if seed is None else seed, "batch": 1}}
        with np.load(path) as data:
            draws[seed] = data["x"].copy()
        code, out, err = run(capsys, "bptt", *adding, *chosen, "--json", "--no-jacobians")
        assert json.loads(out)["sequence"] == {"drawn": {"seed": 0 if seed is None else seed, "batch": 1}}
    assert draws[None].shape == draws[5].shape == (12, 1, 2) and not np.array_equal(draws[None], draws[5])
    code, out, _ = run(capsys, "bptt", *adding, "--sequence-seed", "5", "--no-jacobians")
    assert "trained 0 steps; sequence seed 5)" in out


@pytest.mark.parametrize("args, message", [
    (("hello", "--input", "hexl"), "--input 'hexl': character 'x' at position 3 is not in the vocabulary (helo)"),
    (("hello", "--input", "hell", "--sequence-seed", "2"), "--input and --sequence-seed both choose the sequence"),
    (("hello", "--input", "hell", "--batch", "2"), "--input types one sequence, --batch 2 asks for 2"),
    (("hello", "--input", " "), "--input is empty"),
    (("multiscale-rnn", "--input", "1"), "--input: the two-scales task takes no typed sequence"),
    (("adding-attention", "--set", "task.length=5", "--set", "model.hidden_size=4",
      "--input", "0.1* 0.2* 0.3 0.4 0.5 0.6"),
     "--input '0.1* 0.2* 0.3 0.4 0.5 0.6': this sequence has 6 steps but the selfattention model's positional "
     "encoding covers the task's length, 5 steps"),  # (what only the model says, once it is built)
    (("hello", "--input", "h" * 300 + "x"), "--input 'hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh…: character 'x' at "
                                            "position 301"),  # a paste: its start, not the page
    (("hello", "--sequence-seed", "-1"), "--sequence-seed must be an integer in [0, 2^63-1], got -1"),
])
def test_a_typed_sequence_or_draw_the_pass_cannot_take_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch, args,
                                                                             message):
    monkeypatch.chdir(tmp_path)  # (trace's default file, were one written)
    for command in ("bptt", "trace"):
        code, _, err = run(capsys, command, *args)
        assert code == 2 and message in one_line_error(err), err


def test_a_typed_sequence_the_task_refuses_is_refused_before_any_pass(capsys, monkeypatch):
    """A typo in --input was named only once the weights were read and a forward pass of the task's own draw
    had run (kernels compiled on the way, a large model's minutes): the task reads the text first."""
    from rnnlab.lab import Lab

    def no_pass(*args, **kwargs):
        raise AssertionError("a forward pass before --input was read")

    monkeypatch.setattr(Lab, "refresh", no_pass)
    for command in ("bptt", "trace"):
        code, _, err = run(capsys, command, "hello", "--input", "hexl")
        assert code == 2 and one_line_error(err) == ("rnnlab: error: --input 'hexl': character 'x' at position 3 is "
                                                     "not in the vocabulary (helo)"), err


def test_a_draw_asked_of_a_task_of_one_sequence_is_noted(capsys):
    code, _, err = run(capsys, "bptt", "hello", "--sequence-seed", "3", "--no-jacobians")
    assert code == 0 and "note: the hello task has only one sequence: --sequence-seed draws it again" in err


def test_a_trace_says_how_to_read_its_arrays_back_in_the_datas_terms(capsys, tmp_path):
    """x was a one-hot code or standardized numbers with nothing in the file to decode them: a
    text's characters (its own, a newline as a newline) and a series' channels, mean and std."""
    (tmp_path / "t.txt").write_text("ab\nba\n" * 40, encoding="utf-8")
    np.savetxt(tmp_path / "s.csv", np.c_[np.arange(300.0), np.arange(300.0) ** 0.5], delimiter=",",
               header="level,root", comments="")
    for kind, name in (("text", "t.txt"), ("series", "s.csv")):
        (tmp_path / f"{kind}.toml").write_text(f'[task]\nkind = "{kind}"\npath = "{name}"\nlength = 8\n'
                                               '[model]\nhidden_size = 4\n')
        code, out, err = run(capsys, "trace", tmp_path / f"{kind}.toml", "--out", tmp_path / f"{kind}.npz")
        assert code == 0, err
    with np.load(tmp_path / "text.npz") as data:
        meta = json.loads(str(data["meta"]))
        assert meta["vocab"] == ["\n", "a", "b"]
        assert "".join(meta["vocab"][k] for k in data["x"][:, 0].argmax(-1)) in ("ab\nba\n" * 3)
    with np.load(tmp_path / "series.npz") as data:
        meta = json.loads(str(data["meta"]))
        assert meta["channels"] == ["level", "root"] and "vocab" not in meta
        raw = data["x"][:, 0] * meta["standardized"]["std"] + meta["standardized"]["mean"]
        assert np.allclose(raw[:, 1], raw[:, 0] ** 0.5) and np.allclose(np.diff(raw[:, 0]), 1.0)


def test_a_record_named_like_the_tasks_arrays_keeps_its_own_key(capsys, tmp_path):
    """The jordan cell records y (its outputs): the file's y is the task's targets, as for every cell,
    and the record is record_y, listed in meta's names, with a record's shape."""
    path = tmp_path / "j.npz"
    code, _, err = run(capsys, "trace", "sine-jordan", "--out", path)
    assert code == 0, err
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        assert meta["names"] == ["h", "record_y", "f", "dh"]
        T = data["x"].shape[0]
        for key in meta["names"]:
            assert data[key].shape[:3] == (1, T, 1), key  # (layers * directions, T, B, ...)
        assert data["y"].shape == data["outputs"].shape == (T, 1, 1)
        assert "record_y is the cell's record y, y the task's array" in meta["layout"]
        np.testing.assert_allclose(data["record_y"][0], data["outputs"], rtol=1e-5, atol=1e-6)  # the outputs
        assert not np.array_equal(data["y"], data["outputs"])  # the targets, not overwritten by them


def test_sample_generates_from_a_trained_character_model(capsys, tmp_path):
    run_dir = tmp_path / "hello"
    assert run(capsys, "train", "hello", "--out", run_dir)[0] == 0
    code, out, err = run(capsys, "sample", run_dir, "--prime", "h", "--length", "4", "--temperature", "0.01")
    assert code == 0, err
    assert out.strip() == "hello"
    for tiny in ("1e-308", "5e-324"):  # logits / T overflowed to inf, inf - inf: NaN and a traceback
        code, out, err = run(capsys, "sample", run_dir, "--prime", "h", "--length", "4", "--temperature", tiny)
        assert code == 0 and out.strip() == "hello" and err == "", err
    code, _, err = run(capsys, "sample", run_dir, "--prime", "x")
    assert code == 2 and "'x'" in one_line_error(err)
    code, out, err = run(capsys, "sample", run_dir, "--length", "4", "--temperature", "0.01")  # no newline in
    assert code == 0 and out.strip() == "hello", err  # hello's vocabulary: the prime is its first character
    code, out, err = run(capsys, "sample", run_dir, "--length", "4", "--temperature", "0.01", "--json")
    assert code == 0, err
    assert json.loads(out) == {"run": str(run_dir.resolve()), "step": 200, "prime": "h", "length": 4,
                               "temperature": 0.01, "seed": 0, "text": "hello"}
    sine_dir = tmp_path / "sine"
    assert run(capsys, "train", "sine", "--steps", "1", "--out", sine_dir)[0] == 0
    code, _, err = run(capsys, "sample", sine_dir)
    assert code == 2 and "not a character model" in one_line_error(err)


def test_sample_stopped_prints_what_it_generated_and_exits_130(capsys, tmp_path, monkeypatch):
    """Ctrl-C during a long sample printed nothing (exit 130, the characters made so far lost)."""
    from rnnlab.cli import experiments

    run_dir = tmp_path / "hello"
    assert run(capsys, "train", "hello", "--steps", "2", "--out", run_dir)[0] == 0
    # the 4th question: Ctrl-C came during the 3rd character
    monkeypatch.setattr(experiments, "_graceful_interrupt", ctrl_c_at(3))
    code, out, err = run(capsys, "sample", run_dir, "--prime", "h", "--length", "1000", "--json")
    assert code == 130 and json.loads(out)["length"] == 3 and len(json.loads(out)["text"]) == 4
    assert err.strip().splitlines()[-1] == "rnnlab: sampling stopped after 3 of 1000 characters"


def test_a_prime_writes_a_newline_as_backslash_n(capsys, tmp_path):
    """A shell's --prime 'A:\\nB' (no newline in an argument typed on one line) is A, a newline, B."""
    (tmp_path / "lines.txt").write_text("A:\nB\n" * 50, encoding="utf-8")
    spec = tmp_path / "lines.toml"
    spec.write_text('[task]\nkind = "text"\npath = "lines.txt"\nlength = 8\n[model]\nhidden_size = 8\n')
    assert run(capsys, "train", spec, "--steps", "2", "--out", tmp_path / "r")[0] == 0
    code, out, err = run(capsys, "sample", tmp_path / "r", "--prime", "A:\\nB", "--length", "3")
    assert code == 0 and out.startswith("A:\nB") and "\\n" not in out, err
    code, out, err = run(capsys, "sample", tmp_path / "r", "--prime", "A:\\nB", "--length", "3", "--json")
    assert code == 0 and json.loads(out)["prime"] == "A:\nB", err  # as read, as the text starts


def test_sample_from_a_text_without_newlines_starts_from_its_first_character(capsys, tmp_path):
    (tmp_path / "one-line.txt").write_text("zebras graze at dusk " * 8, encoding="utf-8")
    spec = tmp_path / "one-line.toml"
    spec.write_text('[task]\nkind = "text"\npath = "one-line.txt"\nlength = 8\n[model]\nhidden_size = 8\n')
    run_dir = tmp_path / "run"
    assert run(capsys, "train", spec, "--steps", "1", "--out", run_dir)[0] == 0
    code, out, err = run(capsys, "sample", run_dir, "--length", "3")
    assert code == 0 and out.startswith("z") and len(out.rstrip("\n")) == 4, (out, err)  # not the sorted " "


def test_sample_reads_a_manuscript_edited_since_in_the_same_characters(capsys, tmp_path):
    """A writer's text edited since the model trained could not be sampled from at all; its
    characters are what the weights read and write. New characters, or bptt, still refuse."""
    book = tmp_path / "book.txt"
    book.write_text("zebras graze at dusk " * 8, encoding="utf-8")
    spec = tmp_path / "book.toml"
    spec.write_text('[task]\nkind = "text"\npath = "book.txt"\nlength = 8\n[model]\nhidden_size = 8\n')
    assert run(capsys, "train", spec, "--steps", "1", "--out", tmp_path / "run")[0] == 0
    code, before, _ = run(capsys, "sample", tmp_path / "run", "--length", "20", "--prime", "z")
    book.write_text("at dusk zebras graze " * 9, encoding="utf-8")  # the same characters, other text
    code, out, err = run(capsys, "sample", tmp_path / "run", "--length", "20", "--prime", "z")
    assert code == 0 and out == before  # the model as trained
    assert err.strip() == (f"rnnlab: note: {book}'s text changed since {tmp_path / 'run'} was trained (the same "
                           "characters): the model is used as it was trained")
    code, _, err = run(capsys, "bptt", tmp_path / "run")  # its losses would be on another text: refused
    assert code == 2 and "its text changed since" in err
    book.write_text("zebras graze at noon " * 9, encoding="utf-8")  # an n, an o: characters it never saw
    code, _, err = run(capsys, "sample", tmp_path / "run", "--length", "5")
    assert code == 2 and "its characters changed since" in one_line_error(err)


def test_nan_loss_exits_1_and_keeps_the_checkpoint(capsys, tmp_path):
    spec = tmp_path / "boom.toml"
    spec.write_text('[task]\nkind = "sine"\n[model]\ncell = "rnn"\nnonlinearity = "relu"\nhidden_size = 8\n'
                    '[train]\nsteps = 50\noptimizer = "sgd"\nmomentum = 0.0\nlearning_rate = 10.0\nclip_norm = 0.0\n')
    code, _, err = run(capsys, "train", spec, "--out", tmp_path / "r")
    assert code == 1
    assert "non-finite" in err and "is kept" in err
    assert (tmp_path / "r" / "checkpoint.npz").is_file()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_cleanly_and_resume_continues(tmp_path):
    """SIGINT mid-run: exit 130, a consistent run directory, and --resume finishes it."""
    out_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "rnnlab.cli", "train", "text", "--steps", "100000", "--out", str(out_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    metrics = out_dir / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until training is under way (checkpoint at step 0 written)
        if (out_dir / "checkpoint.npz").exists():
            break
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    with np.load(out_dir / "checkpoint.npz") as ckpt:
        stopped_at = int(ckpt["step"])
    assert stopped_at > 0
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps == list(range(1, stopped_at + 1))
    code = cli.main(["train", "--resume", str(out_dir), "--steps", str(stopped_at + 3), "--json"])
    assert code == 0
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps == list(range(1, stopped_at + 4))


def test_the_same_signal_twice_at_once_is_one_stop_request(monkeypatch):
    """GNU timeout sends its signal to the process and then to its process group: the echo, a few
    ms later, aborted the run it asked to stop (its summary unwritten; a CLI walkthrough's finding).
    The same signal before the work has seen the request, or within SAME_REQUEST_S, is the first
    one's; later, or another signal, aborts."""
    import time

    from rnnlab.cli import experiments

    monkeypatch.setattr(experiments, "_message", lambda text: None)
    with experiments._graceful_interrupt() as stop:
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)  # the echo at once
        time.sleep(experiments.SAME_REQUEST_S)  # a long kernel call: an echo's handler runs when it returns
        signal.raise_signal(signal.SIGINT)
        assert stop.is_set() and stop.exit_code == 130  # the work sees the request
        with pytest.raises(KeyboardInterrupt):  # a second one now
            signal.raise_signal(signal.SIGINT)
    with experiments._graceful_interrupt() as stop:
        signal.raise_signal(signal.SIGTERM)
        with pytest.raises(KeyboardInterrupt):  # another signal at once: a second request
            signal.raise_signal(signal.SIGINT)


def test_a_second_ctrl_c_says_which_checkpoint_the_run_keeps(capsys, tmp_path, monkeypatch):
    """The second Ctrl-C aborts at once: stderr ended at "stopping after this step (Ctrl-C again to
    abort now)...", exit 130, with no word of what was kept or how to go on."""
    import contextlib

    from rnnlab.cli import experiments

    @contextlib.contextmanager
    def twice(unit: str = "step"):  # both presses within the step of the 3rd question: an abort there
        stop = experiments._Stop()
        asked = iter(range(10**6))

        def is_set():
            if next(asked) >= 3:
                raise KeyboardInterrupt
            return False
        stop.is_set = is_set
        yield stop

    monkeypatch.setattr(experiments, "_graceful_interrupt", twice)
    monkeypatch.setattr(experiments, "_message", lambda text: sys.stderr.write(text + "\n"))
    code, out, err = run(capsys, "train", "hello", "--steps", "1000", "--out", tmp_path / "r")
    assert code == 130 and out == ""
    with np.load(tmp_path / "r" / "checkpoint.npz") as saved:
        step = int(saved["step"])
    assert f"aborted: {tmp_path / 'r'} keeps its checkpoint of step {step}; continue with: rnnlab train --resume " \
           f"{tmp_path / 'r'}" in err


def test_bptt_without_the_jacobians_prints_the_gradient_norms_alone(capsys):
    """The chained Jacobians' dense products took about 16 minutes for H=512, two bidirectional
    layers and 1600 steps, with no way to ask for the gradient curve alone."""
    code, out, err = run(capsys, "bptt", "adding-lstm", "--set", "task.length=6", "--no-jacobians", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["recurrent"] and list(data["streams"][0]) == ["layer", "direction", "grad_norm"]
    code, full, _ = run(capsys, "bptt", "adding-lstm", "--set", "task.length=6", "--json")
    assert json.loads(full)["streams"][0]["grad_norm"] == data["streams"][0]["grad_norm"]
    code, out, err = run(capsys, "bptt", "adding-lstm", "--set", "task.length=6", "--no-jacobians")
    assert code == 0 and "||dL/dh_t|| l0" in out and "||J_t||" not in out and "layer 0: ||dL/dh_1||" in out
    assert "step Jacobians" not in err


def test_linear_recurrence_presets_list_bptt_and_trace(capsys, tmp_path):
    code, out, _ = run(capsys, "presets", "--json")
    cells = {row["name"]: row["cell"] for row in json.loads(out) if row["kind"] == "experiment"}
    assert {"adding-mingru": "mingru", "copy-gru": "gru", "copy-mingru": "mingru", "copy-lru": "lru",
            "selective-copy-gru": "gru", "selective-copy-mingru": "mingru", "selective-copy-lru": "lru"}.items() \
        <= cells.items()
    code, out, err = run(capsys, "bptt", "selective-copy-lru", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["cell"] == "lru" and data["steps"] == 40 and len(data["streams"]) == 2
    for stream in data["streams"]:  # lambda is the same at every step: so is ||J_t|| = max |lambda|
        assert len(set(stream["jacobian_norm"])) == 1 and 0 < stream["jacobian_norm"][0] < 1
        assert all(math.isfinite(g) and g >= 0 for g in stream["grad_norm"])
    path = tmp_path / "t.npz"
    code, out, err = run(capsys, "trace", "selective-copy-mingru", "--out", path, "--json")
    assert code == 0, err
    with np.load(path, allow_pickle=False) as data:
        assert {"h", "z", "h_tilde", "dh"} <= set(data.files) and data["z"].shape == (2, 40, 1, 64)


def test_train_and_sample_a_mingru_character_model(capsys, tmp_path):
    spec = tmp_path / "hello-mingru.toml"
    spec.write_text('[task]\nkind = "hello"\n[model]\ncell = "mingru"\nhidden_size = 16\nscan = "blelloch"\n'
                    '[train]\nsteps = 200\nbatch_size = 1\nlearning_rate = 0.05\n', encoding="utf-8")
    run_dir = tmp_path / "run"
    code, out, err = run(capsys, "train", spec, "--out", run_dir, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["cell"] == "mingru" and summary["eval"]["accuracy"] == 1.0
    code, out, err = run(capsys, "sample", run_dir, "--prime", "h", "--length", "4", "--temperature", "0.01")
    assert code == 0, err
    assert out.strip() == "hello"
    bad = tmp_path / "bad.toml"
    bad.write_text('[task]\nkind = "hello"\n[model]\ncell = "gru"\nscan = "scan"\n', encoding="utf-8")
    code, _, err = run(capsys, "train", bad, "--out", tmp_path / "bad")
    assert code == 2 and "model.scan: only the linear recurrences" in one_line_error(err)


@pytest.mark.parametrize("command", [("bptt",), ("trace", "--out", "j.npz")], ids=["bptt", "trace"])
def test_a_jordan_models_truncate_is_refused_in_one_line(capsys, tmp_path, monkeypatch, command):
    """As its spec's train.truncate is (a CLI walkthrough's finding: a traceback, exit 1)."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, command[0], "sine-jordan", *command[1:], "--truncate", "3")
    assert code == 2 and "truncate 3: the jordan cell takes no truncation" in one_line_error(err)
    assert not (tmp_path / "j.npz").exists()


def test_attention_presets_bptt_without_jacobians_and_trace_with_attention_maps(capsys, tmp_path):
    code, out, _ = run(capsys, "presets", "--json")
    cells = {row["name"]: row["cell"] for row in json.loads(out) if row["kind"] == "experiment"}
    assert cells["adding-attention"] == cells["copy-attention"] == "selfattention"
    code, out, err = run(capsys, "bptt", "copy-attention", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["cell"] == "selfattention" and data["recurrent"] is False and data["steps"] == 30
    assert len(data["streams"]) == 1 and set(data["streams"][0]) == {"layer", "direction", "grad_norm"}
    notes = [line for line in err.splitlines() if "no step Jacobians" in line]  # a note on stderr, not an error
    assert len(notes) == 1 and "Traceback" not in err
    code, out, err = run(capsys, "bptt", "copy-attention")
    assert code == 0, err
    assert "||dL/dh_t|| block 0" in out and "||J_t||" not in out and "block 0: ||dL/dh_1||" in out
    code, _, err = run(capsys, "bptt", "copy-attention", "--truncate", "5")
    assert code == 2 and "truncate 5: selfattention has no recurrence" in one_line_error(err)
    path = tmp_path / "t.npz"
    code, out, err = run(capsys, "trace", "copy-attention", "--out", path, "--json")
    assert code == 0, err
    assert json.loads(out)["arrays"]["attn"] == [1, 1, 4, 30, 30]
    with np.load(path, allow_pickle=False) as arrays:
        attn = arrays["attn"][0, 0]  # block 0, sequence 0: (heads, T, T)
        np.testing.assert_allclose(attn.sum(axis=-1), 1.0, rtol=1e-5)
        assert {"h", "z", "q", "k", "v", "dh"} <= set(arrays.files)


def test_train_and_sample_an_attention_character_model(capsys, tmp_path):
    spec = tmp_path / "hello-attention.toml"
    spec.write_text('[task]\nkind = "hello"\n[model]\ncell = "selfattention"\nhidden_size = 16\nnum_heads = 2\n'
                    '[train]\nsteps = 150\nbatch_size = 1\nlearning_rate = 0.05\n', encoding="utf-8")
    run_dir = tmp_path / "run"
    code, out, err = run(capsys, "train", spec, "--out", run_dir, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["cell"] == "selfattention" and summary["eval"]["accuracy"] == 1.0
    code, out, err = run(capsys, "sample", run_dir, "--prime", "h", "--length", "4", "--temperature", "0.01")
    assert code == 0, err
    assert out.strip() == "hello"
    code, out, err = run(capsys, "train", "--resume", run_dir, "--steps", "160", "--json")
    assert code == 0, err
    assert json.loads(out)["step"] == 160
    bad = tmp_path / "bad.toml"
    bad.write_text('[task]\nkind = "hello"\n[model]\ncell = "selfattention"\nhidden_size = 10\n', encoding="utf-8")
    code, _, err = run(capsys, "train", bad, "--out", tmp_path / "bad")
    assert code == 2 and "model.num_heads: hidden_size (10) must be divisible by num_heads (4)" in one_line_error(err)
    assert not (tmp_path / "bad").exists()


# ---------------------------------------------------------------------------------------------
# files that must not be lost, and one-line errors for what cannot be read or written
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def hello_run(capsys, tmp_path):
    """A trained (3 steps) hello run directory."""
    run_dir = tmp_path / "run"
    code, _, err = run(capsys, "train", "hello", "--steps", "3", "--out", run_dir)
    assert code == 0, err
    return run_dir


def test_trace_refuses_an_existing_file_without_force_and_a_run_dirs_checkpoint_always(capsys, tmp_path, hello_run):
    checkpoint = hello_run / "checkpoint.npz"
    saved = checkpoint.read_bytes()
    for extra in ([], ["--force"]):
        code, out, err = run(capsys, "trace", "hello", "--out", checkpoint, *extra)
        assert code == 2 and out == ""
        assert "belongs to the run directory" in one_line_error(err)
    assert checkpoint.read_bytes() == saved
    target = tmp_path / "t.npz"
    target.write_bytes(b"mine")
    code, out, err = run(capsys, "trace", "hello", "--out", target)
    assert code == 2 and out == ""
    assert one_line_error(err) == f"rnnlab: error: {target} already exists (add --force to replace it)"
    assert target.read_bytes() == b"mine"
    code, _, err = run(capsys, "trace", "hello", "--out", target, "--force")
    assert code == 0, err
    with np.load(target, allow_pickle=False) as data:
        assert "h" in data.files


def test_esn_export_refuses_an_existing_file_without_force_and_a_run_dirs_checkpoint_always(capsys, tmp_path,
                                                                                            hello_run):
    checkpoint = hello_run / "checkpoint.npz"
    saved = checkpoint.read_bytes()
    small = ["esn", "--units", "10", "--length", "300", "--test", "50", "--warmup", "20", "--generate", "20"]
    code, out, err = run(capsys, *small, "--export", checkpoint, "--force")
    assert code == 2 and out == "" and "belongs to the run directory" in one_line_error(err)
    assert checkpoint.read_bytes() == saved
    target = tmp_path / "e.npz"
    target.write_bytes(b"mine")
    code, out, err = run(capsys, *small, "--export", target)
    assert code == 2 and out == "" and "already exists (add --force" in one_line_error(err)
    assert target.read_bytes() == b"mine"
    code, _, err = run(capsys, *small, "--export", target, "--force", "--json")
    assert code == 0, err
    with np.load(target, allow_pickle=False) as data:
        assert data.files


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc (a directory nothing can be made in)")
@pytest.mark.parametrize("args", [["trace", "hello", "--out", "/proc/x.npz"],
                                  ["esn", "--units", "10", "--length", "300", "--test", "50", "--warmup", "20",
                                   "--generate", "20", "--export", "/proc/x.npz"]])
def test_an_unwritable_output_is_one_line_naming_it(capsys, args):
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    line = one_line_error(err)
    assert line.startswith("rnnlab: error: cannot write /proc/x.npz: ")


def test_a_failed_resume_leaves_spec_toml_as_it_was(capsys, hello_run):
    spec = hello_run / "spec.toml"
    saved = spec.read_bytes()
    (hello_run / "checkpoint.npz").write_bytes(b"PK\x03\x04 not a zip archive")
    code, out, err = run(capsys, "train", "--resume", hello_run, "--steps", "10")
    assert code == 2 and out == ""
    assert "is damaged" in one_line_error(err)
    assert spec.read_bytes() == saved


@pytest.mark.parametrize("args", [["sample", "{run}"], ["bptt", "{run}"], ["trace", "{run}", "--out", "{tmp}/t.npz"],
                                  ["train", "--resume", "{run}", "--steps", "10"]])
def test_an_empty_checkpoint_is_damaged_not_an_abort(capsys, tmp_path, hello_run, args):
    (hello_run / "checkpoint.npz").write_bytes(b"")
    code, out, err = run(capsys, *[a.format(run=hello_run, tmp=tmp_path) for a in args])
    assert code == 2 and out == ""
    line = one_line_error(err)
    assert "checkpoint.npz is damaged" in line and "aborted" not in line


def test_a_run_killed_before_its_first_checkpoint_resumes_from_step_0(capsys, tmp_path):
    """Killed a second into its start, a run held its spec and empty logs: --resume said it had no
    checkpoint, and --out that it existed ("choose another --out or --resume it"). Nothing was
    trained, so the resume trains it from step 0, as a new run of its spec does; one that did train
    and lost its checkpoint is still refused."""
    code, _, err = run(capsys, "train", "hello", "--steps", "3", "--out", tmp_path / "whole")
    assert code == 0, err
    (tmp_path / "killed").mkdir()
    (tmp_path / "killed/spec.toml").write_bytes((tmp_path / "whole/spec.toml").read_bytes())
    for log in ("metrics.jsonl", "evals.jsonl"):
        (tmp_path / "killed" / log).touch()
    code, _, err = run(capsys, "train", "--resume", tmp_path / "killed")
    assert code == 0, err
    same_losses = [json.loads(line)["loss"] for line in (tmp_path / "whole/metrics.jsonl").read_text().splitlines()]
    losses = [json.loads(line)["loss"] for line in (tmp_path / "killed/metrics.jsonl").read_text().splitlines()]
    assert losses == same_losses and len(losses) == 3  # the run a fresh start of its spec trains
    (tmp_path / "whole/checkpoint.npz").unlink()  # trained, its weights gone: no fresh start over its log
    code, _, err = run(capsys, "train", "--resume", tmp_path / "whole", "--steps", "5")
    assert code == 2 and one_line_error(err) == (f"rnnlab: error: {tmp_path / 'whole'} has no checkpoint.npz: the "
                                                 f"weights of step 3 are gone (its experiment from the start: "
                                                 f"{tmp_path / 'whole' / 'spec.toml'})")


def test_resume_to_fewer_steps_than_trained_is_refused(capsys, hello_run):
    files = {name: (hello_run / name).read_bytes() for name in ("spec.toml", "summary.json", "metrics.jsonl")}
    code, out, err = run(capsys, "train", "--resume", hello_run, "--steps", "2")
    assert code == 2 and out == ""
    assert one_line_error(err) == f"rnnlab: error: --steps 2 is below the 3 steps {hello_run} has already trained"
    assert files == {name: (hello_run / name).read_bytes() for name in files}


def test_a_checkpoint_that_does_not_fit_the_spec_says_so_not_damaged(capsys, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hello world, a tiny corpus.\n" * 20, encoding="utf-8")
    spec = tmp_path / "mine.toml"
    spec.write_text('name = "mine"\n[task]\nkind = "text"\npath = "corpus.txt"\nlength = 10\n'
                    "[model]\nhidden_size = 8\n", encoding="utf-8")
    run_dir = tmp_path / "run"
    code, _, err = run(capsys, "train", spec, "--steps", "2", "--out", run_dir)
    assert code == 0, err
    # a run saved before checkpoints recorded their data (newer ones name the change: test_rundir_integrity.py)
    with np.load(run_dir / "checkpoint.npz", allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    meta = json.loads(str(arrays["meta"]))
    del meta["data"]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(run_dir / "checkpoint.npz", **arrays)
    corpus.write_text("hello world, a tiny corpus.\n" * 20 + "QXZ 0123456789\n", encoding="utf-8")  # more characters
    for args in (["sample", run_dir], ["train", "--resume", run_dir, "--steps", "4"]):
        code, out, err = run(capsys, *args)
        assert code == 2 and out == ""
        line = one_line_error(err)
        assert f"{run_dir}/checkpoint.npz does not match {run_dir}/spec.toml" in line, line
        assert "'weight_ih_l0' has shape (32, 20), expected (32, 33)" in line  # the first in state-dict order
        assert "training data changed?" in line and "damaged" not in line


def test_bptt_and_trace_help_name_only_what_they_accept_and_tui_the_labs(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    for command in ("bptt", "trace"):
        code, out, _ = run(capsys, command, "--help")
        assert code == 0 and "a run directory" in out
        assert "seq2seq" not in out and "treebank" not in out
    code, out, _ = run(capsys, "tui", "--help")
    assert code == 0 and "esn, seq2seq, treebank" in out


def test_sample_help_shows_the_prime_default_on_its_line(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run(capsys, "sample", "--help")
    assert code == 0
    line = next(line for line in out.splitlines() if "--prime" in line)
    assert "[default: (a newline, or the text's first character)]" in line
    assert not any(line.strip(" │") == "]" for line in out.splitlines())


def test_resume_with_a_spec_is_an_rnnlab_error_line(capsys, hello_run):
    code, out, err = run(capsys, "train", "hello", "--resume", hello_run)
    assert code == 2 and out == ""
    assert one_line_error(err).startswith("rnnlab: error: give either a spec")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum, nohup", [("SIGTERM", False), ("SIGHUP", False), ("SIGHUP", True)])
def test_sigterm_stops_like_ctrl_c_saving_the_checkpoint_and_summary(tmp_path, signum, nohup):
    """SIGTERM (timeout, kill) mid-run: the steps since the last checkpoint are saved, summary.json
    says "stopped", exit 143 (128 + SIGTERM). SIGHUP (the terminal closed) too, exit 129: it used to
    kill the run with the steps since its last checkpoint. Under nohup (SIGHUP ignored) a SIGHUP
    changes nothing: the SIGTERM after it stops the run."""
    signum = getattr(signal, signum)
    out_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "rnnlab.cli", "train", "hello", "--steps", "10000000", "--out", str(out_dir)]
    # (a test run under nohup passes its ignored SIGHUP on: the run would rightly ignore it too)
    hup = signal.SIG_IGN if nohup else signal.SIG_DFL
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, hup))
    metrics = out_dir / "metrics.jsonl"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:  # until training is under way
            if metrics.is_file() and metrics.read_text().strip():
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(signum)
        if nohup:
            time.sleep(0.5)
            assert proc.poll() is None  # still training
            signum = signal.SIGTERM
            proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signum, err
    assert "--resume" in err and "Traceback" not in err
    summary = json.loads((out_dir / "summary.json").read_text())
    with np.load(out_dir / "checkpoint.npz") as ckpt:
        stopped_at = int(ckpt["step"])
    assert summary["status"] == "stopped" and summary["step"] == stopped_at > 0
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps == list(range(1, stopped_at + 1))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pseudo-terminal that hangs up")
def test_a_terminal_that_hangs_up_stops_the_run_saved_with_status_129(tmp_path):
    """The terminal closed (ssh dropped, a window shut): every write to it fails with EIO, and the
    progress bar's last refresh ended the saved run with a traceback and status 1, not 129."""
    import select

    master, slave = os.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "rnnlab", "train", "hello", "--steps", "10000000", "--out",
                             str(out_dir)], stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    os.close(slave)
    try:
        deadline, screen = time.monotonic() + 120, b""
        # the progress bar's count past 0: steps done (a fixed wait after the run directory appeared, or
        # after the bar's first drawing, was not always enough under load: the run stopped at step 0)
        while time.monotonic() < deadline and not re.search(rb"\s[1-9]\d*/1", screen):  # ("13060/1…": cut)
            if select.select([master], [], [], 0.1)[0]:
                with contextlib.suppress(OSError):
                    screen += os.read(master, 65536)  # the screen, read as a terminal would
        os.close(master)  # the terminal goes
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(timeout=120) == 128 + signal.SIGHUP
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["step"] > 0


def test_presets_json_lists_the_architecture_labs_as_kind_lab(capsys):
    from rnnlab.labs import DESCRIPTIONS

    code, out, _ = run(capsys, "presets", "--json")
    assert code == 0
    rows = json.loads(out)
    kinds = [row["kind"] for row in rows]
    assert kinds == sorted(kinds, key=["experiment", "lab"].index)  # the experiments first, hello at the head
    labs = {row["name"]: row for row in rows if row["kind"] == "lab"}
    assert labs == {name: {"kind": "lab", "name": name, "description": DESCRIPTIONS[name]}
                    for name in ("esn", "seq2seq", "treebank")}
    for row in rows:
        if row["kind"] == "experiment":
            assert set(row) == {"kind", "name", "task", "cell", "hidden_size", "steps", "description"}
    code, text, _ = run(capsys, "presets")
    assert code == 0 and all(name in text for name in labs)


def test_presets_in_an_80_column_terminal_list_each_preset_readably(capsys, monkeypatch):
    """A table's description column was five letters wide at 80 columns (534 lines of "Read" /
    "\"hel…"); narrower than 110 columns each preset is a block: name and settings, then its description."""
    from rich.console import Console

    from rnnlab.cli import _app
    from rnnlab.spec import load_preset, preset_names

    monkeypatch.setattr(_app, "_consoles", {"out": Console(width=80, highlight=False)})
    code, out, _ = run(capsys, "presets")
    lines = out.splitlines()
    assert code == 0 and max(map(len, lines)) <= 80 and len(lines) < 120
    assert "hello  hello task, lstm, H=16, 200 steps" in lines
    words = " ".join(out.split())
    assert all(" ".join(load_preset(name).description.split()) in words for name in preset_names())
    assert "treebank" in lines and "Architecture labs: rnnlab tui NAME (and rnnlab esn / seq2seq / tree)" in lines


def test_a_narrow_page_in_a_file_keeps_each_description_and_number_whole(capsys, monkeypatch):
    """COLUMNS=100 rnnlab presets > file cut each description at 100 columns ("beats the 0.167 bas"),
    and a 50-column page cut the bptt table's numbers to "6.365e-…", their exponents gone."""
    from rnnlab.cli import _app
    from rnnlab.spec import load_preset, preset_names

    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setattr(_app, "_consoles", {})
    code, out, _ = run(capsys, "presets")
    assert code == 0 and all(f"    {load_preset(name).description}" in out.splitlines() for name in preset_names())
    monkeypatch.setenv("COLUMNS", "50")
    monkeypatch.setattr(_app, "_consoles", {})
    code, out, _ = run(capsys, "bptt", "adding-rnn", "--set", "task.length=3")
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert code == 0 and len(rows) == 3 and all(re.search(r"\d\.\d{3}e[+-]\d\d │ \d", row) for row in rows), out


def test_a_terminal_too_narrow_for_one_layers_columns_splits_them_over_tables_each_number_whole(capsys, monkeypatch):
    """At 40 columns bptt's four columns of one layer were squeezed into one table, each number cut to "2.296…"
    (a wrong figure); now they go over two tables of two columns, every number whole."""
    from rich.console import Console

    from rnnlab.cli import _app

    monkeypatch.setattr(_app, "_consoles", {"out": Console(width=40, force_terminal=True, color_system=None)})
    code, out, err = run(capsys, "bptt", "hello")
    lines = out.splitlines()
    assert code == 0 and "…" not in out and max(map(len, lines)) <= 40, out
    headers = [" ".join(cell.split()) for line in lines if line.startswith("┃") for cell in line.split("┃")[2:-1]]
    assert headers == ["||dL/dh_t|| l0", "||J_t|| l0", "prod ||J|| l0", "||ds_T/ds_t|| l0"], out
    rows = [line for line in lines if line.startswith("│")]
    number = r" +\d\.\d{3}(e[+-]\d\d)? │"
    assert len(rows) == 8 and all(re.fullmatch(rf"│ \d │{number}{number}", row) for row in rows), out


def test_a_spec_piped_in_as_dash_trains_and_a_terminal_or_bad_text_is_refused_in_one_line(capsys, monkeypatch,
                                                                                          tmp_path):
    """`rnnlab spec hello --set seed=3 | rnnlab train -` said "unknown preset '-'" and listed every preset; now -
    reads the spec from stdin (once, though --set loads a target twice), and refuses a terminal rather than wait."""
    import io

    def piped(data: bytes) -> None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))

    code, toml, err = run(capsys, "spec", "hello", "--set", "seed=3")
    assert code == 0, err
    piped(toml.encode())
    code, out, err = run(capsys, "train", "-", "--steps", "2", "--set", "train.learning_rate=0.02",
                         "--out", tmp_path / "r")
    written = (tmp_path / "r" / "spec.toml").read_text(encoding="utf-8")
    assert code == 0 and "seed = 3" in written and "learning_rate = 0.02" in written, err
    piped(toml.encode())
    code, out, err = run(capsys, "spec", "-")
    assert (code, out) == (0, toml), err
    for data, said in ((b"", "stdin is empty: a spec needs at least one field"),
                       (b"x = [", "stdin: not valid TOML"), (b"n\xffame = 1", "stdin: not UTF-8 text")):
        piped(data)
        code, out, err = run(capsys, "bptt", "-")
        assert code == 2 and out == "" and err.startswith(f"rnnlab: error: {said}") and len(err.splitlines()) == 1
    monkeypatch.setattr(sys, "stdin", type("Tty", (io.StringIO,), {"isatty": lambda self: True})())
    code, out, err = run(capsys, "train", "-")
    assert (code, out) == (2, "") and err == ("rnnlab: error: - reads a spec from stdin, which is a terminal here: "
                                              "pipe one in (rnnlab spec hello --set seed=3 | rnnlab train -)\n")
    code, out, err = run(capsys, "tui", "-")
    assert code == 2 and "takes no spec from there (-)" in err


def test_a_spec_piped_in_from_an_endless_stream_is_refused_not_read_to_its_end(capsys, monkeypatch):
    """`rnnlab train - < /dev/zero` (or `yes | rnnlab train -`) read stdin to its end, filling the memory (a spec
    file's path /dev/zero is refused as a device); now stdin is read up to a size no spec reaches."""
    import io

    from rnnlab.spec import STDIN_SPEC_MAX_BYTES

    class Endless(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            assert size >= 0, "read to the end of a stream that never ends"
            return b"\0" * size

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(Endless(), encoding="utf-8"))
    code, out, err = run(capsys, "train", "-")
    assert (code, out) == (2, "") and err == (f"rnnlab: error: - reads a spec from stdin, which holds more than "
                                              f"{STDIN_SPEC_MAX_BYTES // 2**20} MiB: no spec is that long (a device "
                                              "such as /dev/zero, or a stream that never ends?)\n")


def test_a_spec_piped_in_with_a_wrong_data_path_is_rescued_by_set_and_its_error_says_where_it_looked(
        capsys, monkeypatch, tmp_path):
    """A spec piped in whose task.path is wrong: --set task.path=... could not rescue it (the retry reread only
    .toml files), and its error said the path was "looked for beside the spec", where stdin's is the working
    directory's."""
    import io
    import shutil

    from rnnlab.data.files import SAMPLE_DIR

    monkeypatch.chdir(tmp_path)
    shutil.copy(SAMPLE_DIR / "tiny-shakespeare.txt", tmp_path / "mine.txt")
    code, toml, err = run(capsys, "spec", "text", "--set", "task.path=mine.txt")
    assert code == 0, err
    toml = toml.replace(str(tmp_path / "mine.txt"), "missing.txt")
    assert 'path = "missing.txt"' in toml
    for command in ("spec", "bptt"):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(toml.encode()), encoding="utf-8"))
        code, out, err = run(capsys, command, "-")
        assert (code, out) == (2, "") and err == (f"rnnlab: error: task.path: {tmp_path / 'missing.txt'}: no such file "
                                                  "(a relative path is looked for in the working directory, then in "
                                                  "rnnlab's sample_data/) (in stdin)\n"), err
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(toml.encode()), encoding="utf-8"))
        code, out, err = run(capsys, command, "-", "--set", "task.path=mine.txt")
        assert code == 0 and (command != "spec" or f'path = "{tmp_path / "mine.txt"}"' in out), err


def test_output_to_a_pipe_keeps_whole_lines(capsys, monkeypatch, tmp_path):
    """Nothing to fit on a screen: a message longer than any page, and a title wider than its table,
    stay on one line each (grep sees them whole); the tables keep their width."""
    from rnnlab.cli import _app

    monkeypatch.setattr(_app, "_consoles", {})  # built afresh for this stdout
    code, out, err = run(capsys, "trace", "hello", "--out", tmp_path / "t.npz")
    assert code == 0, err
    (line,) = out.splitlines()
    assert len(line) > 160 and line.startswith("wrote ") and "y (4, 1), mask (4, 1), outputs (4, 1, 4)" in line
    code, out, err = run(capsys, "bptt", "adding-attention")
    assert code == 0, err
    title = "backprop of adding-attention (selfattention, trained 0 steps): loss "
    assert out.splitlines()[0].startswith(title) and out.splitlines()[1].startswith("┏")
    assert max(map(len, out.splitlines())) <= 160


# ---------------------------------------------------------------------------------------------
# limits, defaults and messages the help and the errors agree on
# ---------------------------------------------------------------------------------------------

def test_the_cli_shows_the_spec_and_labs_own_limits():
    """The options' ranges are written in the CLI (its --help imports no engine); they must be the engines'."""
    from rnnlab import spec
    from rnnlab.cli import _app, experiments
    from rnnlab.labs import esn, seq2seq, tree

    assert experiments.STEPS_MAX == spec.STEPS_MAX == spec.TRAIN_RULES["steps"].high
    assert experiments.TRUNCATE_MAX == spec.TRUNCATE_MAX == spec.TRAIN_RULES["truncate"].high
    assert _app.SEED_MAX == spec.SEED_MAX == spec.TOP_RULES["seed"].high == 2**63 - 1
    assert esn._INT_LIMITS["seed"] == seq2seq._LIMITS["seed"] == tree.LIMITS["seed"] == (0, _app.SEED_MAX)


@pytest.mark.parametrize("command", [[], ["train"], ["presets"], ["sample"], ["tree"], ["esn"], ["bench"]])
def test_help_shows_no_type_beside_a_flag_and_h_is_help(capsys, command):
    """typer 0.2x writes "<bool>" beside a flag, which takes no value (--json false is refused)."""
    code, out, _ = run(capsys, *command, "-h")
    assert code == 0 and "Usage: rnnlab" in out and "--help" in out and "<bool>" not in out
    assert "9223372036854775807" not in out  # a seed's range cut across two lines at 80 columns


@pytest.mark.parametrize("args", [["train", "--steps", "1"], ["tree", "--epochs", "1"], ["sample", "RUN"]])
def test_a_seed_past_the_largest_is_one_line(capsys, tmp_path, args):
    if "RUN" in args:
        code, _, err = run(capsys, "train", "hello", "--steps", "2", "--out", tmp_path / "run")
        assert code == 0, err
        args = [str(tmp_path / "run") if a == "RUN" else a for a in args]
    code, out, err = run(capsys, *args, "--seed", 2**63)
    line = one_line_error(err)
    assert code == 2 and out == "" and "--seed" in line and (str(2**63 - 1) in line or "[0, 2^63-1]" in line)


@pytest.mark.parametrize("value", ["99999999999999999999999", "9223372036854775808", "1000001"])
def test_bptt_truncate_has_an_upper_bound(capsys, value):
    code, out, err = run(capsys, "bptt", "hello", "--truncate", value)
    assert code == 2 and out == ""
    line = one_line_error(err)
    assert "--truncate" in line and "1000000" in line


@pytest.mark.parametrize("field, value", [("truncate", 99999999999999999999), ("truncate", 2**63),
                                          ("eval_every", 100_000_001), ("checkpoint_every", 2**64)])
def test_a_spec_with_a_huge_step_count_is_one_line_not_a_traceback(capsys, tmp_path, field, value):
    path = tmp_path / "huge.toml"
    path.write_text(f'[task]\nkind = "hello"\n[train]\nsteps = 2\n{field} = {value}\n')
    code, out, err = run(capsys, "train", path, "--out", tmp_path / "run")
    assert code == 2 and out == ""
    assert f"train.{field}: must be between 0 and " in one_line_error(err)
    assert not (tmp_path / "run").exists()


def test_a_run_whose_data_file_is_gone_says_so_not_damaged(capsys, tmp_path):
    book = tmp_path / "book.txt"
    book.write_text("the quick brown fox jumps over the lazy dog. " * 4, encoding="utf-8")
    spec = tmp_path / "book.toml"
    spec.write_text('[task]\nkind = "text"\npath = "book.txt"\nlength = 8\n[model]\nhidden_size = 8\n')
    run_dir = tmp_path / "run"
    assert run(capsys, "train", spec, "--steps", "1", "--out", run_dir)[0] == 0
    saved = (run_dir / "spec.toml").read_text()
    book.unlink()
    for args in (["sample", run_dir], ["bptt", run_dir], ["train", "--resume", run_dir, "--steps", "2"]):
        code, out, err = run(capsys, *args)
        assert code == 2 and out == ""
        assert one_line_error(err) == (f"rnnlab: error: {run_dir}'s data file {book} (task.path) is missing: "
                                       "put it back to use the run")
    book.write_text("", encoding="utf-8")  # there, but unusable: its own reason, still not "damaged"
    code, _, err = run(capsys, "sample", run_dir)
    line = one_line_error(err)
    assert code == 2 and f"data file (task.path) cannot be used: {book}: file is empty" in line
    assert "damaged" not in line
    assert (run_dir / "spec.toml").read_text() == saved


def test_train_out_naming_a_file_says_it_is_a_file(capsys, tmp_path):
    target = tmp_path / "afile"
    target.write_text("mine")
    code, out, err = run(capsys, "train", "hello", "--steps", "5", "--out", target)
    assert code == 2 and out == ""
    assert one_line_error(err) == f"rnnlab: error: {target} is a file, not a directory; choose another --out"
    assert target.read_text() == "mine"


@pytest.mark.parametrize("args, message", [
    (["trace", "hello", "--out", "{}/x.npz"], "cannot write the trace file {}/x.npz: {} is a file, not a directory"),
    (["trace", "hello", "--out", "{}/a/x.npz"],
     "cannot write the trace file {}/a/x.npz: {} is a file, not a directory"),
    (["esn", "--export", "{}/x.npz"], "cannot write the export file {}/x.npz: {} is a file, not a directory"),
    (["train", "hello", "--steps", "1", "--out", "{}/run"],
     "cannot create run directory {}/run: {} is a file, not a directory"),
])
def test_a_path_under_a_file_says_the_file_is_no_directory(capsys, tmp_path, args, message):
    """`trace --out good.toml/x.npz` said "no such directory for the trace file: good.toml" of a file
    that is there; `train --out good.toml/run` the OS's bare "Not a directory"."""
    spec = tmp_path / "good.toml"
    spec.write_text("mine")
    code, out, err = run(capsys, *(arg.format(spec) for arg in args))
    assert code == 2 and out == ""
    assert one_line_error(err) == "rnnlab: error: " + message.format(spec, spec)
    assert spec.read_text() == "mine"


def test_a_file_written_under_a_file_names_it(tmp_path):
    """Every atomic write (a spec, a screenshot) said only "Not a directory"."""
    from rnnlab.errors import UserError
    from rnnlab.fsio import atomic_write_text

    spec = tmp_path / "good.toml"
    spec.write_text("mine")
    with pytest.raises(UserError) as info:
        atomic_write_text(spec / "sub" / "x.toml", "text")
    assert str(info.value) == f"cannot write {spec / 'sub' / 'x.toml'}: {spec} is a file, not a directory"


def test_train_out_inside_another_run_is_refused(capsys, tmp_path):
    """A run made inside another run's directory was one more folder of it: rnnlab runs of the
    folder the runs were in did not list it (a CLI walkthrough's finding)."""
    code, _, err = run(capsys, "train", "hello", "--steps", "2", "--out", tmp_path / "h1")
    assert code == 0, err
    code, out, err = run(capsys, "train", "hello", "--steps", "2", "--out", tmp_path / "h1" / "sub")
    assert code == 2 and out == ""
    assert one_line_error(err) == (f"rnnlab: error: {tmp_path / 'h1'} is a run directory: rnnlab runs would not "
                                   "list a run inside it; choose a place beside it")
    assert not (tmp_path / "h1" / "sub").exists()
    # a folder of runs inside it is listed (the lab's ctrl+s saves to runs/ of where it runs), and beside it is
    # beside it, however the path says so
    for out_dir in (tmp_path / "h1" / "runs" / "a", tmp_path / "h1" / ".." / "h2"):
        code, _, err = run(capsys, "train", "hello", "--steps", "2", "--out", out_dir)
        assert code == 0, err
    code, out, _ = run(capsys, "runs", tmp_path / "h1" / "runs", "--json")
    assert code == 0 and [run["path"] for run in json.loads(out)] == [str(tmp_path / "h1" / "runs" / "a")]


@pytest.mark.parametrize("args, message", [
    (["train", "hello", "--steps", "2", "--out"], "cannot create run directory {}: File name too long"),
    (["trace", "hello", "--out"], "cannot write the trace file {}.npz: File name too long"),
])
def test_a_name_too_long_for_the_file_system_is_one_line(capsys, tmp_path, args, message):
    """The OSError of the first look at the name (Path.exists) left as a traceback, exit status 1."""
    long = tmp_path / ("n" * 300)
    code, out, err = run(capsys, *args, f"{long}.npz" if args[0] == "trace" else long)
    assert code == 2 and out == ""
    assert one_line_error(err) == "rnnlab: error: " + message.format(long)


@pytest.mark.parametrize("args", [["train", "hello", "--steps", "1", "--out", ""], ["train", "--resume", ""],
                                  ["sample", ""], ["runs", ""], ["trace", "hello", "--out", ""],
                                  ["esn", "--export", ""]])
def test_an_empty_path_is_refused_not_read_as_the_current_folder(capsys, tmp_path, monkeypatch, args):
    """--out '' (an unset shell variable) wrote the run's files into the current folder."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *args)
    assert code == 2 and out == "" and one_line_error(err).endswith(": is empty: give a path")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["train", "bptt", "trace"])
def test_help_says_the_target_defaults_to_hello(capsys, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    line = next(line for line in out.splitlines() if " TARGET " in line)
    assert "(default: hello)" in line


@pytest.mark.parametrize("args", [["sample", "{run}", "--seed", str(2**64)], ["train", "hello", "--seed", str(2**63)]])
def test_seeds_above_2_63_are_refused_naming_the_range(capsys, hello_run, args):
    code, out, err = run(capsys, *[a.format(run=hello_run) for a in args])
    assert code == 2 and out == ""
    line = one_line_error(err)
    assert "--seed must be an integer in [0, 2^63-1], got " in line


@pytest.mark.parametrize("command, option, says", [
    ("sample", "--seed", "<int> Seed of the sampling (default: the run's). In [0, 2^63-1]."),  # not 19 digits
    ("bptt", "--batch", "<int> Sequences in the pass. In [1, 4096]."),
    ("bench", "--threads", "<int> Threads for numba, torch and BLAS (default: all cores). At least 1."),
])
def test_a_ranged_options_help_gives_its_range_as_the_labs_and_its_errors_do(capsys, monkeypatch, command, option,
                                                                          says):
    """typer wrote "<int range> [1<=x<=4096]" where the labs' options say "<int> ... In [1, 4096]" and the
    error for a value outside says "must be an integer in [1, 4096]"."""
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run(capsys, command, "--help")
    line = " ".join(next(line for line in out.splitlines() if f" {option} " in line).strip("│ ").split())
    assert code == 0 and line.startswith(f"{option} {says}") and "<=x" not in out and "int range" not in out


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1"])
def test_sample_temperature_must_be_positive_and_finite(capsys, hello_run, value):
    code, out, err = run(capsys, "sample", hello_run, "--temperature", value)
    assert code == 2 and out == ""
    assert one_line_error(err) == f"rnnlab: error: --temperature must be a positive finite number, got {float(value):g}"


@pytest.mark.parametrize("args", [["train", "hello", "--steps", "1"], ["bptt", "hello"], ["trace", "hello"],
                                  ["sample", "{run}"], ["train", "--resume", "{run}"]])
def test_a_bad_device_names_the_option(capsys, tmp_path, hello_run, args):
    code, out, err = run(capsys, *[a.format(run=hello_run) for a in args], "--device", "tpu")
    assert code == 2 and out == ""
    assert one_line_error(err) == "rnnlab: error: --device must be cpu or cuda, got 'tpu'"


@pytest.mark.parametrize("command, name, how", [
    ("train", "esn", "`rnnlab esn` (interactive: `rnnlab tui esn`)"),
    ("bptt", "seq2seq", "`rnnlab seq2seq` (interactive: `rnnlab tui seq2seq`)"),
    ("trace", "treebank", "`rnnlab tree` (interactive: `rnnlab tui treebank`)"),
    ("train", "tree", "`rnnlab tree` (interactive: `rnnlab tui treebank`)"),
])
def test_a_lab_given_as_a_preset_says_how_the_lab_runs(capsys, command, name, how):
    code, out, err = run(capsys, command, name)
    assert code == 2 and out == ""
    line = one_line_error(err)
    assert f"unknown preset {name!r}:" in line and "is an architecture lab, not a preset" in line and how in line


def test_a_teacher_forced_summary_says_which_row_ran_free(capsys, tmp_path):
    """sine-jordan trains on the targets fed back and is evaluated on its own outputs: the summary's two
    rows name their modes (their gap is exposure bias); a model without feedback keeps plain rows."""
    code, out, err = run(capsys, "train", "sine-jordan", "--steps", "2", "--out", tmp_path / "j")
    assert code == 0, err
    assert "last training step (teacher-forced)" in out and "held-out batch (running free)" in out
    code, out, err = run(capsys, "train", "parity", "--steps", "2", "--out", tmp_path / "p")
    assert code == 0, err
    assert "last training step " in out and "held-out batch " in out and "running free" not in out


def test_hellos_eval_batch_is_its_training_word_and_a_stopped_runs_eval_names_its_step(capsys, tmp_path):
    """hello's "held-out batch" was the word it trains on (its eval loss at step 100 was the training
    loss at step 101); a run stopped between evals showed the last eval as if of the last step."""
    code, out, err = run(capsys, "train", "hello", "--steps", "2", "--out", tmp_path / "h")
    assert code == 0 and "note:" not in err, err  # hello's one word is no news
    assert "eval batch (training data)" in out and "held-out" not in out
    assert json.loads((tmp_path / "h" / "summary.json").read_text())["eval_held_out"] is False
    from rnnlab.cli.experiments import _print_summary

    summary = json.loads((tmp_path / "h" / "summary.json").read_text())
    _print_summary(summary | {"status": "stopped", "step": 3, "steps": 10})
    assert "eval batch (training data) at step 2" in capsys.readouterr().out


def test_a_diverged_run_says_which_step_diverged_and_which_was_kept(capsys, tmp_path):
    """The adding task at learning rate 10 without clipping: step 1 is done, step 2's loss overflows,
    and the checkpoint kept is the first one (step 0): the headline, the message, summary.json
    and what bptt reads all agree."""
    spec = tmp_path / "div.toml"
    spec.write_text(DIVERGING_SPEC, encoding="utf-8")
    code, out, err = run(capsys, "train", spec, "--out", tmp_path / "div")
    assert code == 1
    summary = json.loads((tmp_path / "div" / "summary.json").read_text(encoding="utf-8"))
    done, kept = summary["step"], summary["checkpoint_step"]
    assert summary["status"] == "diverged" and kept <= done
    assert f"div: diverged at step {done + 1} of 500 (checkpoint kept: step {kept})" in out
    assert f"non-finite in float32 at step {done + 1}; the last good checkpoint (step {kept}) is kept" in err
    code, out, err = run(capsys, "bptt", tmp_path / "div", "--json")
    assert code == 0 and json.loads(out)["trained_steps"] == kept


def test_a_folder_of_runs_given_for_a_run_names_the_runs_in_it(capsys, tmp_path):
    """rnnlab tui runs: the folder the runs go to, not a run. The error names the newest runs in it."""
    folder = tmp_path / "runs"
    for k in range(4):
        code, _, err = run(capsys, "train", "hello", "--steps", "1", "--out", folder / f"r{k}")
        assert code == 0, err
        for file in (folder / f"r{k}").iterdir():  # newest first, as rnnlab runs lists them
            os.utime(file, (1000 + k, 1000 + k))
    code, out, err = run(capsys, "bptt", folder)
    assert code == 2 and out == ""
    assert one_line_error(err) == (f"rnnlab: error: {folder} is not a run directory: it has no spec.toml; the runs "
                                   f"in it: {folder / 'r3'}, {folder / 'r2'}, {folder / 'r1'} (4 in all, the newest "
                                   f"first: rnnlab runs {folder} lists them)")


def test_set_changes_spec_fields_from_the_command_line(capsys, tmp_path):
    """A learning-rate sweep needed a spec file per value."""
    code, _, err = run(capsys, "train", "hello", "--set", "model.cell=gru", "--set", "train.learning_rate=1e-2",
                       "--set", "model.hidden_size = 8", "--steps", "2", "--out", tmp_path / "r")
    assert code == 0, err
    spec = (tmp_path / "r" / "spec.toml").read_text(encoding="utf-8")
    assert 'name = "hello-gru"' in spec and 'cell = "gru"' in spec and "learning_rate = 0.01" in spec
    assert "hidden_size = 8" in spec
    code, _, err = run(capsys, "train", "hello", "--set", "model.cell=gru", "--set", 'name="mine"', "--steps", "1",
                       "--out", tmp_path / "s")
    assert code == 0 and 'name = "mine"' in (tmp_path / "s" / "spec.toml").read_text(encoding="utf-8"), err
    code, out, err = run(capsys, "bptt", "adding-rnn", "--set", "task.length=20", "--json")
    assert code == 0 and json.loads(out)["steps"] == 20, err
    for args, message in (
            (["train", "hello", "--set", "model.hidden_sizee=3"], "--set model.hidden_sizee: unknown field"),
            (["train", "hello", "--set", "model.hidden_size=x"],
             '--set model.hidden_size: expected an integer, got "x"'),
            (["train", "hello", "--set", "model.hidden_size=٨"],  # float("٨") is 8.0: it trained H = 8
             '--set model.hidden_size: expected an integer, got "\\u0668"'),
            (["train", "hello", "--set", "model.cell"], "--set takes FIELD=VALUE (model.cell=gru), got 'model.cell'"),
            (["train", "--resume", tmp_path / "r", "--set", "seed=3"], "--set cannot change a run being resumed"),
            (["trace", tmp_path / "r", "--set", "model.hidden_size=3", "--out", tmp_path / "t.npz"],
             "--set changes a spec, not a run")):
        code, _, err = run(capsys, *args)
        assert code == 2 and message in one_line_error(err), (args, err)
    assert not (tmp_path / "t.npz").exists()
    # what TOML reads otherwise: a name that looks like a number is the text, .01 a number
    code, _, err = run(capsys, "train", "hello", "--set", "name=1e3", "--set", "train.learning_rate=.01",
                       "--steps", "1", "--out", tmp_path / "n")
    spec = (tmp_path / "n" / "spec.toml").read_text(encoding="utf-8")
    assert code == 0 and 'name = "1e3"' in spec and "learning_rate = 0.01" in spec, err
    # another task starts from its defaults (hello's text meant nothing to parity)
    code, out, err = run(capsys, "bptt", "hello", "--set", "task.kind=parity", "--json")
    assert code == 0 and json.loads(out)["spec"] == "parity-lstm", err
    for args, message in (
            (["train", "hello", "--set", "train.steps=5", "--steps", "3"],
             "--set train.steps and --steps both set train.steps: give one"),
            (["bptt", "hello", "--set", "model.device=cuda", "--device", "cpu"],
             "--set model.device and --device both set model.device"),
            (["train", "hello", "--set", 'model={cell="gru"}'], "not a table or list"),
            (["train", "hello", "--set", "model=3"], "--set model: expected a table [model]"),  # was a traceback
            (["bptt", "hello", "--set", "train=true"], "--set train: expected a table [train]"),
            (["spec", "hello", "--set", "task=3"], "--set task: expected a table [task]"),
            (["spec", "hello", "--set", "model=3", "--set", "model.hidden_size=8"], "--set model: expected a table"),
            (["bptt", "hello", "--set", "model.hidden_size=8", "--set", "model.hidden_size=9"],
             "--set model.hidden_size given twice (8 and 9): give one"),  # the second silently won
            (["train", tmp_path / "r", "--set", "seed=1"],
             f"a variant of it: rnnlab train {tmp_path / 'r' / 'spec.toml'}"),
            (["tui", "esn", "--set", "seed=1"], "esn is an architecture lab"),
            (["bptt", "hello", "--set", "task.kind=text", "--set", "task.path=nothere.txt"],
             f"{Path.cwd() / 'nothere.txt'}"),
            # the lines after a newline were read as TOML of their own and dropped: hidden_size 4, seed 0
            (["spec", "hello", "--set", "model.hidden_size=4\nseed=3"],
             "--set takes one FIELD=VALUE on one line (model.cell=gru), got 'model.hidden_size=4\\nseed=3'"),
            (["spec", "hello", "--set", ".seed=3"], "--set .seed: unknown table"),  # was seed
            (["spec", "sine", "--set", "task.noise=inf"], "--set task.noise: expected a finite number, got inf"),
            (["spec", "hello", "--set", "seed=9223372036854775808"],  # (the bound read 9.22337e+18, below it)
             "--set seed: must be between 0 and 9223372036854775807, got 9223372036854775808"),
            (["spec", "hello", "--set", "seed=" + "[" * 500 + "]" * 500], "--set seed: expected an integer")):
        code, _, err = run(capsys, *args)
        assert code == 2 and message in one_line_error(err), (args, err)
    # a shipped data file by its bare name, as a spec file names it (it was the working directory's only)
    code, out, err = run(capsys, "bptt", "text", "--set", "task.path=tiny-shakespeare.txt", "--set", "task.length=20",
                         "--json")
    assert code == 0 and json.loads(out)["steps"] == 20, err
    # the lab's fields too, refused before it opens (here, with no terminal, before that is said)
    code, _, err = run(capsys, "tui", "hello", "--set", "model.x=1")
    assert code == 2 and one_line_error(err).startswith("rnnlab: error: --set model.x: unknown field")
    code, _, err = run(capsys, "tui", "hello", "--set", "model.cell=gru")
    assert code == 2 and "needs a terminal" in one_line_error(err)


def test_tui_with_set_hands_the_lab_the_edited_spec(capsys, monkeypatch):
    from rnnlab.cli import _app
    from rnnlab.spec import Spec
    from rnnlab.tui import app as tui_app

    opened = []
    monkeypatch.setattr(_app, "_require_terminal", lambda *args: None)
    monkeypatch.setattr(tui_app, "run_lab", lambda target=None, **kw: opened.append(target) or 0)
    code, _, err = run(capsys, "tui", "hello", "--set", "model.cell=gru", "--set", "model.hidden_size=6")
    assert code == 0, err
    [spec] = opened
    assert isinstance(spec, Spec) and (spec.name, spec.model.cell, spec.model.hidden_size) == ("hello-gru", "gru", 6)
    code, _, err = run(capsys, "tui", "hello")
    assert code == 0 and opened[-1] == "hello"  # without --set, the name (a run directory's path, too)


def test_set_fixes_the_task_fields_a_spec_file_fails_on(capsys, tmp_path, monkeypatch):
    """`rnnlab train tiny.toml --set task.length=2` said the spec's own length 25 was too long for
    its 3-character text: the file was checked alone before --set changed it (a text walkthrough)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.txt").write_text("abcab")
    (tmp_path / "tiny.toml").write_text('[task]\nkind = "text"\npath = "tiny.txt"\nlength = 25\n[train]\nsteps = 2\n')
    (tmp_path / "gone.toml").write_text('[task]\nkind = "text"\npath = "gone.txt"\nlength = 2\n[train]\nsteps = 2\n')
    code, _, err = run(capsys, "train", "tiny.toml", "--set", "task.length=2", "--out", "r1")
    assert code == 0, err
    assert "length = 2\n" in (tmp_path / "r1" / "spec.toml").read_text()
    code, out, err = run(capsys, "bptt", "gone.toml", "--set", "task.path=tiny.txt", "--json", "--no-jacobians")
    assert code == 0 and json.loads(out)["steps"] == 2, err
    code, _, err = run(capsys, "train", "tiny.toml", "--set", "task.length=30", "--out", "r2")  # still too long:
    assert code == 2 and "needs at least 31 for length = 30" in one_line_error(err)  # named as --set made it
    code, _, err = run(capsys, "train", "tiny.toml", "--out", "r3")
    assert code == 2 and "needs at least 26 for length = 25" in one_line_error(err)
    # as on a spec that loads: .TOML too, and a text field's number taken as the text typed (a review's)
    (tmp_path / "TINY.TOML").write_text((tmp_path / "tiny.toml").read_text())
    assert run(capsys, "train", "TINY.TOML", "--set", "task.length=2", "--out", "r4")[0] == 0
    (tmp_path / "h.toml").write_text('[task]\nkind = "hello"\ntext = "a"\n[train]\nsteps = 2\n')  # too short
    code, _, err = run(capsys, "train", "h.toml", "--set", "task.text=1234", "--out", "r5")
    assert code == 0, err
    assert 'text = "1234"' in (tmp_path / "r5" / "spec.toml").read_text()


def test_sample_writes_a_texts_control_characters_as_escapes_to_a_terminal_only(capsys, tmp_path, monkeypatch):
    """A model of a text holding BEL and ESC wrote them raw to the terminal, which acts on them; a
    pipe or a file still gets the text as it is."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ctrl.txt").write_text("ab\x07c\x1b" * 60, encoding="utf-8")
    (tmp_path / "ctrl.toml").write_text('[task]\nkind = "text"\npath = "ctrl.txt"\nlength = 5\n[train]\nsteps = 2\n')
    assert run(capsys, "train", "ctrl.toml", "--out", "r")[0] == 0
    code, out, err = run(capsys, "sample", "r", "--prime", "a\x07b\x1b", "--length", "3")
    assert code == 0 and out.startswith("a\x07b\x1b"), err
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, err = run(capsys, "sample", "r", "--prime", "a\x07b\x1b", "--length", "3")
    assert code == 0 and out.startswith("a\\x07b\\x1b") and "\x07" not in out and "\x1b" not in out, err


@pytest.mark.parametrize("command", ["bptt", "trace"])
def test_bptt_and_trace_read_the_tasks_data_once(capsys, monkeypatch, tmp_path, command):
    """The pass's task (a text read, a series loaded) is made once: the command checks it before the
    pass and hands it to the Lab, which made its own again."""
    from rnnlab.spec import Spec

    made = []
    make_task = Spec.make_task
    monkeypatch.setattr(Spec, "make_task", lambda self: made.append(self.name) or make_task(self))
    out = ["--out", str(tmp_path / "trace.npz")] if command == "trace" else []
    code, _, err = run(capsys, command, "hello", *out)
    assert code == 0, err
    assert made == ["hello"]


def test_an_ascii_stdout_gets_a_path_it_cannot_encode_escaped_not_a_traceback(tmp_path):
    """PYTHONIOENCODING=ascii (or a C locale without UTF-8 mode) and a path with an ü: the last line
    of a training that had saved its run raised UnicodeEncodeError, exit 1; stderr escaped it."""
    folder = tmp_path / "d\u00efr"
    folder.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "ascii"}
    done = subprocess.run([sys.executable, "-m", "rnnlab", "runs", str(folder)], env=env, capture_output=True,
                          timeout=120)
    assert done.returncode == 0 and b"d\\xefr" in done.stdout and not done.stderr, done.stderr
    # a result, not a message: escaped, a spec's TOML would be no TOML ("caf\xe9"), so refused
    spec = tmp_path / "caf\u00e9.toml"
    spec.write_text('name = "caf\u00e9"\n[task]\nkind = "hello"\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "rnnlab", "spec", str(spec)], env=env, capture_output=True,
                          timeout=120)
    assert done.returncode == 2 and done.stdout == b"" and done.stderr.decode().startswith(
        "rnnlab: error: stdout (ascii) cannot encode "), done.stderr


@pytest.mark.parametrize("args, takes", [(["sample", "hello"], "rnnlab sample"),
                                         (["train", "--resume", "text"], "--resume")])
def test_a_preset_given_for_a_run_directory_says_how_to_make_one(capsys, tmp_path, monkeypatch, args, takes):
    """`rnnlab sample hello` (README: "a character model (text, hello)") said "no such run directory: hello"."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert one_line_error(err) == (f"rnnlab: error: {args[-1]} is a preset, not a run directory: {takes} takes a "
                                   f"trained run (rnnlab train {args[-1]} writes one in runs/; rnnlab runs lists them)")
    os.makedirs("hello")  # a folder of that name is read as a run directory, as ever
    code, _, err = run(capsys, "sample", "hello")
    assert code == 2 and one_line_error(err).startswith("rnnlab: error: hello is not a run directory: it has no spec")


# ---------------------------------------------------------------------------------------------
# -q/--quiet: results, warnings and errors only
# ---------------------------------------------------------------------------------------------

def test_quiet_drops_progress_and_notes_but_keeps_warnings_results_and_errors(capsys, tmp_path):
    """A sweep's loop got ten progress lines a run on stderr, and `2>/dev/null` hid its errors too."""
    code, _, err = run(capsys, "train", "hello", "--steps", "20", "--out", tmp_path / "loud")
    assert code == 0 and "rnnlab: hello: step 20 of 20, loss " in err and "rnnlab: training hello" in err
    code, out, err = run(capsys, "train", "hello", "--steps", "20", "--out", tmp_path / "a", "--quiet", "--json")
    assert code == 0 and err == "" and json.loads(out)["status"] == "completed"
    code, _, err = run(capsys, "train", "hello", "--steps", "2", "--out", tmp_path / "b", "-q",
                       "--set", "model.bidirectional=true")  # a warning the user must see is said all the same
    assert code == 0 and err.startswith("rnnlab: warning: a reverse direction reads the input"), err
    assert len(err.splitlines()) == 1, err
    code, _, err = run(capsys, "train", "hello", "--steps", "2", "--out", tmp_path / "a", "-q")  # and errors
    assert code == 2 and "already exists and is not empty" in one_line_error(err)
    code, out, err = run(capsys, "bptt", "hello", "--sequence-seed", "3", "--no-jacobians", "-q")
    assert code == 0 and err == "" and "sequence seed 3" in out  # its note of hello's one sequence dropped
    code, _, err = run(capsys, "bptt", "hello", "--sequence-seed", "3", "--no-jacobians")
    assert "rnnlab: note: the hello task has only one sequence" in err


@pytest.mark.parametrize("args", [
    ["tree", "--epochs", "1", "--hidden-size", "4"],
    ["seq2seq", "--steps", "10", "--hidden-size", "8", "--eval-size", "5"],
    ["esn", "--units", "20", "--sweep", "ridge"],
    ["trace", "hello", "--out", "t.npz"],
    ["sample", "RUN", "--length", "3"],
    ["spec", "hello"],
    ["gradcheck", "--only", "rnn_tanh"],
])
def test_every_command_that_says_how_it_goes_takes_quiet(capsys, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    if "RUN" in args:
        assert run(capsys, "train", "hello", "--steps", "2", "--out", "RUN")[0] == 0
    code, out, err = run(capsys, *args, "--quiet")
    assert code == 0 and err == "" and out, err


def test_quiet_silences_kernel_compile_notices_and_progress_lines(capsys):
    """A cold cache said a line a kernel compiled, which a quiet sweep's first run printed too."""
    from rnnlab.cli import _app

    with _app.quieted():
        _app._on_compile("compiling lstm_forward_one (float32)")
        _app.ProgressLines("hello", "step", 10)(10, "loss 0.1")
        assert _app._progress().disable
    _app.ProgressLines("hello", "step", 10)(10, "loss 0.1")
    assert capsys.readouterr().err == "rnnlab: hello: step 10 of 10, loss 0.1\n"


def test_seq2seqs_eval_every_lines_are_kept_under_quiet_as_the_scores_asked_for(capsys):
    code, _, err = run(capsys, "seq2seq", "--steps", "10", "--hidden-size", "8", "--eval-size", "5",
                       "--eval-every", "5", "-q")
    assert code == 0 and err.startswith("rnnlab: seq2seq: step 5: sequence accuracy by source length "), err
    assert len(err.splitlines()) == 1, err


def test_quiet_is_refused_where_a_script_of_its_own_says_how_it_goes(capsys):
    code, _, err = run(capsys, "bench", "--device", "cuda", "--quiet")
    assert code == 2 and "--quiet applies to the CPU benchmark" in one_line_error(err)


# ---------------------------------------------------------------------------------------------
# bptt/trace --input, --sequence-seed: one forward pass
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["bptt", "adding-rnn", "--input", "0.3 0.9* 0.1 0.5* 0.2", "--no-jacobians", "--json"],
    ["bptt", "adding-rnn", "--sequence-seed", "5", "--no-jacobians", "--json"],
    ["trace", "adding-rnn", "--input", "0.3 0.9* 0.1 0.5* 0.2", "--out", "t.npz", "--json"],
])
def test_a_chosen_sequence_costs_one_forward_pass_not_two(capsys, tmp_path, monkeypatch, args):
    """The Lab ran the spec's own draw first, then the sequence asked for: a huge model's pass took twice as long."""
    from rnnlab.train import Trainer

    monkeypatch.chdir(tmp_path)
    passes = []
    compute = Trainer.compute
    monkeypatch.setattr(Trainer, "compute", lambda self, batch, *a, **k: passes.append(batch.T) or
                        compute(self, batch, *a, **k))
    code, out, err = run(capsys, *args)
    assert code == 0, err
    sequence = json.loads(out)["sequence" if args[0] == "bptt" else "meta"]
    sequence = sequence.get("sequence", sequence)
    assert sequence == ({"typed": "0.3 0.9* 0.1 0.5* 0.2"} if "--input" in args else {"drawn": {"seed": 5, "batch": 1}})
    assert passes == ([5] if "--input" in args else [100]), passes  # adding's draws are 100 steps long


def test_a_lab_built_on_a_sequence_checks_it_and_names_it(capsys):
    from rnnlab.lab import Lab, SequenceRefused
    from rnnlab.spec import load_preset

    spec = load_preset("adding-rnn")
    lab = Lab(spec, sequence_seed=7)
    again = Lab(spec)
    again.regenerate(7)
    assert lab.sequence_seed == 7 and not lab.sequence_typed
    np.testing.assert_array_equal(lab.sequence.x, again.sequence.x)
    np.testing.assert_array_equal(lab.evaluation.outputs, again.evaluation.outputs)
    typed = lab.task.sequence_from_text("0.5 0.1* 0.2*")
    lab = Lab(spec, sequence=typed, sequence_text="0.5 0.1* 0.2*")
    assert lab.steps == 3 and lab.sequence_text == "0.5 0.1* 0.2*" and lab.trace is not None
    attention = load_preset("adding-attention").with_overrides({"task.length": 2})
    with pytest.raises(SequenceRefused, match="this sequence has 3 steps"):
        Lab(attention, sequence=typed, sequence_text="0.5 0.1* 0.2*")


# ---------------------------------------------------------------------------------------------
# tree --tree N: a test tree of the treebank, as the lab's n/N number them
# ---------------------------------------------------------------------------------------------

def test_tree_classifies_and_exports_a_test_tree_chosen_by_its_number(capsys, tmp_path):
    """--export wrote test tree 4 or a typed one: no other test tree, which the lab's n/N step through."""
    from rnnlab.labs.tree import TreeLab

    bank = TreeLab().test_bank
    small = ("--epochs", "1", "--hidden-size", "4")
    code, out, err = run(capsys, "tree", *small, "--tree", "7", "--export", tmp_path / "t7.npz", "--json")
    assert code == 0, err
    row = json.loads(out)["predictions"][0]
    assert row["test_tree"] == 7 and row["tree"] == bank.trees[7].to_sexpr() and row["label"] == bank.trees[7].label
    with np.load(tmp_path / "t7.npz", allow_pickle=False) as data:
        tree = json.loads(str(data["meta"]))["tree"]
        assert tree["index"] == 7 and tree["bench"] == f"test tree 7 of {len(bank)}"
    code, out, err = run(capsys, "tree", *small, "--tree", "0", "--parse", "good")
    assert code == 0 and f"test tree 0 of {len(bank)}: {bank.trees[0].to_sexpr()}" in " ".join(out.split()), out


@pytest.mark.parametrize("args, message", [
    (["--tree", "150"], "--tree must be a test tree's index in [0, 149] (numbered from 0, as the lab's 'test tree "
                        "4 of 150'), got 150"),
    (["--tree", "-1"], "--tree must be a test tree's index in [0, 149]"),
    (["--tree", "x"], "--tree must be an integer, got 'x'"),
    (["--tree", "3", "--parse", "good", "--export", "t.npz"],
     "--tree and --parse both choose the tree --export writes: give one"),
])
def test_tree_refuses_a_test_tree_it_lacks_before_training(capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "tree", "--epochs", "1", *args)
    assert code == 2 and message in one_line_error(err) and not (tmp_path / "t.npz").exists()
