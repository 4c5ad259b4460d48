"""`rnnlab runs`: a folder of run directories at a glance, whatever state each was left in."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import DIVERGING_SPEC, one_line_error, run_cli as run
from rnnlab import cli
from rnnlab.train import RunDir
from rnnlab.train.runs import list_runs


def test_runs_lists_each_run_with_how_its_training_ended_newest_first(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "train", "hello", "--steps", "6", "--out", "runs/done")
    assert code == 0, err
    code, _, err = run(capsys, "train", "hello", "--steps", "4", "--out", "runs/older")
    assert code == 0, err
    # killed while resuming: its logs go past what its summary says (SIGKILL writes no summary)
    shutil.copytree("runs/done", "runs/killed")
    summary = json.loads((tmp_path / "runs/killed/summary.json").read_text())
    summary["step"] = 3
    (tmp_path / "runs/killed/summary.json").write_text(json.dumps(summary))
    shutil.copytree("runs/done", "runs/crashed")  # killed before its first summary
    os.remove("runs/crashed/summary.json")
    # resumed toward 50 steps and killed at once: the resume cut the log back (newer than the summary)
    shutil.copytree("runs/done", "runs/resumed")
    spec = (tmp_path / "runs/resumed/spec.toml").read_text()
    (tmp_path / "runs/resumed/spec.toml").write_text(spec.replace("steps = 6\n", "steps = 50\n"))
    os.makedirs("runs/fresh")
    shutil.copy("runs/done/spec.toml", "runs/fresh/spec.toml")  # created, never trained
    os.makedirs("runs/broken")
    (tmp_path / "runs/broken/spec.toml").write_text("[task\n")
    os.makedirs("runs/notes")  # no spec.toml: not a run, not listed
    (tmp_path / "runs/notes/todo.txt").write_text("x\n")
    for age, name in enumerate(("broken", "fresh", "crashed", "killed", "resumed", "done", "older")):
        for file in (tmp_path / "runs" / name).iterdir():
            os.utime(file, (1e9 - 60 * age, 1e9 - 60 * age))
    os.utime("runs/resumed/summary.json", (1e9 - 300, 1e9 - 300))

    listed = {run.path.name: run for run in list_runs("runs")}
    assert [r.path.name for r in list_runs("runs")] == ["broken", "fresh", "crashed", "killed", "resumed", "done",
                                                          "older"]
    assert {name: r.status for name, r in listed.items()} == {
        "done": "completed", "older": "completed", "killed": "interrupted", "crashed": "interrupted",
        "resumed": "interrupted", "fresh": "untrained", "broken": "damaged"}
    assert (listed["resumed"].step, listed["resumed"].steps) == (6, 50)  # the target it ran toward, not 6
    done = listed["done"]
    assert (done.task, done.cell, done.hidden_size, done.step, done.steps) == ("hello", "lstm", 16, 6, 6)
    assert done.eval["step"] == 6 and done.baseline["name"] == "chance" and done.loss > 0
    assert listed["fresh"].step is None and listed["fresh"].baseline["loss"] == done.baseline["loss"]
    assert listed["broken"].problem.startswith("spec.toml: not TOML")

    code, out, err = run(capsys, "runs")
    assert code == 0, err
    lines = out.splitlines()
    row = next(line for line in lines if "runs/done" in line)
    assert "hello" in row and "6/6" in row and "completed" in row and f"{100 * done.eval['accuracy']:.1f}%" in row
    assert next(line for line in lines if "runs/killed" in line).count("interrupted") == 1
    assert "runs/notes" not in out
    assert "runs/broken: spec.toml: not TOML" in out  # under the table, not squeezed into it
    code, out, _ = run(capsys, "runs", "--json")
    rows = json.loads(out)
    assert [r["path"] for r in rows][:2] == ["runs/broken", "runs/fresh"]
    assert rows[5]["status"] == "completed" and rows[5]["eval"]["accuracy"] is not None
    code, out, _ = run(capsys, "runs", "runs/done", "--json")  # a run directory lists itself
    assert code == 0 and [r["path"] for r in json.loads(out)] == ["runs/done"]


def test_a_run_whose_weights_are_gone_or_unreadable_is_listed_damaged(capsys, tmp_path):
    """Listed "completed" while bptt, sample, the lab and --resume refused it or ran it untrained."""
    code, _, err = run(capsys, "train", "hello", "--steps", "6", "--out", tmp_path / "done")
    assert code == 0, err
    for name in ("gone", "cut", "untrained"):
        shutil.copytree(tmp_path / "done", tmp_path / name)
    (tmp_path / "gone/checkpoint.npz").unlink()
    (tmp_path / "cut/checkpoint.npz").write_bytes((tmp_path / "done/checkpoint.npz").read_bytes()[:100])
    summary = json.loads((tmp_path / "untrained/summary.json").read_text())
    (tmp_path / "untrained/summary.json").write_text(json.dumps(summary | {"checkpoint_step": 0}))
    (tmp_path / "untrained/metrics.jsonl").write_text("")  # saved untrained: no step logged
    (tmp_path / "untrained/checkpoint.npz").unlink()  # the initial weights: the seed draws them again
    shutil.copytree(tmp_path / "gone", tmp_path / "bare")  # its summary gone too: the log still tells of step 6
    (tmp_path / "bare/summary.json").unlink()
    for name, old, new in (("edited", "hidden_size = 16", 'hidden_size = "x"'),  # TOML, but no spec
                           ("resized", "hidden_size = 16", "hidden_size = 9"),  # the weights no longer load
                           ("short", 'text = "hello"', 'text = "a"'),  # refused with the task's own fields
                           ("relearnt", "learning_rate = 0.05", "learning_rate = 1"),  # readable; --resume says
                           ("reinit", 'init = "uniform"', 'init = "orthogonal"'),  # the weights load the same
                           # a setting adam does not read, put back as the run reads it: --resume trains it
                           ("unread", "learning_rate = 0.05", "learning_rate = 0.05\nmomentum = 0.5")):
        shutil.copytree(tmp_path / "done", tmp_path / name)
        spec = (tmp_path / name / "spec.toml").read_text()
        assert old in spec
        (tmp_path / name / "spec.toml").write_text(spec.replace(old, new))
    shutil.copytree(tmp_path / "done", tmp_path / "emptied")
    shutil.copytree(tmp_path / "done", tmp_path / "badmeta")  # its step reads; its meta, which the others read, not
    with np.load(tmp_path / "done/checkpoint.npz") as saved:
        np.savez(tmp_path / "badmeta/checkpoint.npz", **{**saved, "meta": np.array("{broken")})
    (tmp_path / "emptied/spec.toml").write_text("# nothing but a comment\n")  # said to be hello's defaults, resized
    listed = {r.path.name: (r.status, r.problem) for r in list_runs(tmp_path)}
    edited = "spec.toml changed since its checkpoint was trained ({}): it cannot be trained further as it is"
    assert listed == {"done": ("completed", ""), "untrained": ("completed", ""), "unread": ("completed", ""),
                      # readable, not resumable:
                      "relearnt": ("completed", edited.format("train.learning_rate: 0.05 -> 1.0")),  # as --resume
                      "reinit": ("completed", edited.format('model.init: "uniform" -> "orthogonal"')),
                      "gone": ("damaged", "no checkpoint.npz: the weights of step 6 are gone"),
                      "bare": ("damaged", "no checkpoint.npz: the weights of step 6 are gone"),
                      "cut": ("damaged", "checkpoint.npz cannot be read"),
                      "badmeta": ("damaged", "checkpoint.npz cannot be read"),  # it was listed completed
                      "edited": ("damaged", 'spec.toml: model.hidden_size: expected an integer, got "x"'),
                      "resized": ("damaged", "spec.toml no longer describes its checkpoint's model "
                                             "(model.hidden_size: 16 -> 9)"),
                      "short": ("damaged", "spec.toml: task.text: needs at least 2 characters, got 1"),
                      "emptied": ("damaged", "spec.toml is empty: a spec needs at least one field, a [task] table "
                                             "say (see `rnnlab presets`)")}
    for name, said in (("emptied", "spec.toml is empty: a spec needs at least one field"),
                       ("edited", 'model.hidden_size: expected an integer, got "x"'),
                       ("resized", "no longer describes its checkpoint's model (model.hidden_size: 16 -> 9): put it "
                                   "back, or train the variant as a new run: rnnlab train "),
                       ("bare", "has no checkpoint.npz: the weights of step 6 are gone"),
                       ("short", "task.text: needs at least 2 characters, got 1"),
                       ("badmeta", "checkpoint.npz is damaged and cannot be read")):
        code, _, err = run(capsys, "bptt", tmp_path / name)
        assert code == 2 and said in one_line_error(err), name
    code, out, _ = run(capsys, "runs", tmp_path)
    assert code == 0 and f"{tmp_path / 'cut'}: checkpoint.npz cannot be read" in out
    assert f"{tmp_path / 'relearnt'}: spec.toml changed since" in out
    code, _, err = run(capsys, "train", "--resume", tmp_path / "relearnt", "--steps", "8")  # as runs said
    assert code == 2 and "changed since its checkpoint was trained (train.learning_rate: 0.05 -> 1.0)" in err
    code, _, err = run(capsys, "train", "--resume", tmp_path / "unread", "--steps", "8")  # runs said nothing
    assert code == 0, err


def test_a_run_whose_relative_data_file_is_gone_is_listed_with_the_others(capsys, tmp_path):
    """Reading a run's spec.toml as --resume does raised the data file's DataError: `rnnlab runs`
    listed no run at all (exit 2) and the lab's open dialog only the presets."""
    from rnnlab.tui.screens import open_choices

    (tmp_path / "s.csv").write_text("x\n" + "\n".join(str(v / 10) for v in range(40)) + "\n")
    (tmp_path / "s.toml").write_text('[task]\nkind = "series"\npath = "s.csv"\nlength = 8\n[model]\nhidden_size = 4\n')
    code, _, err = run(capsys, "train", tmp_path / "s.toml", "--steps", "2", "--out", tmp_path / "runs" / "moved")
    assert code == 0, err
    spec = tmp_path / "runs" / "moved" / "spec.toml"
    spec.write_text(re.sub(r'(?m)^path = .*$', 'path = "gone.csv"', spec.read_text()))
    code, _, err = run(capsys, "train", "hello", "--steps", "2", "--out", tmp_path / "runs" / "other")
    assert code == 0, err
    assert {r.path.name for r in list_runs(tmp_path / "runs")} == {"moved", "other"}
    code, out, err = run(capsys, "runs", tmp_path / "runs")
    assert code == 0 and "moved" in out and "other" in out, err
    assert {target.rpartition("/")[2] for target, _, _ in open_choices([tmp_path / "runs"])} >= {"moved", "other"}


def test_an_interrupted_run_is_listed_at_its_checkpoint_and_its_resume_says_what_goes(capsys, tmp_path):
    """A run killed with steps logged past its checkpoint (an aborted save: 1364 logged, the
    checkpoint at step 0) was listed at the logged step, and --resume dropped them unsaid."""
    code, _, err = run(capsys, "train", "hello", "--steps", "6", "--out", tmp_path / "r")
    assert code == 0, err
    last = json.loads((tmp_path / "r/metrics.jsonl").read_text().splitlines()[-1])
    evaluated = json.loads((tmp_path / "r/evals.jsonl").read_text().splitlines()[-1])
    with open(tmp_path / "r/metrics.jsonl", "a") as log:  # logged after the checkpoint of step 6, then killed
        for step in (7, 8, 9):
            log.write(json.dumps({**last, "step": step, "loss": 99.0}) + "\n")
    with open(tmp_path / "r/evals.jsonl", "a") as log:
        log.write(json.dumps({**evaluated, "step": 8, "loss": 99.0}) + "\n")
    os.remove(tmp_path / "r/summary.json")
    (listed,) = list_runs(tmp_path)
    assert (listed.status, listed.step) == ("interrupted", 6)  # what --resume goes on from
    # the losses of the checkpoint's step (step 9's is not step 6's; "-" read as if nothing was learned)
    assert last["step"] == 6 and listed.loss == last["loss"]
    assert evaluated["step"] == 6 and listed.eval == {key: evaluated[key] for key in ("step", "loss", "accuracy")}
    code, _, err = run(capsys, "train", "--resume", tmp_path / "r", "--steps", "10")
    assert code == 0, err
    assert f"rnnlab: note: {tmp_path / 'r'}'s checkpoint is at step 6; the steps logged after it (to step 9) are " \
           "trained again" in err
    assert [json.loads(line)["step"] for line in (tmp_path / "r/metrics.jsonl").read_text().splitlines()] == \
        list(range(1, 11))


def test_a_run_being_trained_is_listed_as_training(capsys, tmp_path):
    code, _, err = run(capsys, "train", "hello", "--steps", "2", "--out", tmp_path / "r")
    assert code == 0, err
    with RunDir.open(tmp_path / "r").writing() as held:  # as another process training it holds it
        assert held
        assert [r.status for r in list_runs(tmp_path)] == ["training"]
    assert [r.status for r in list_runs(tmp_path)] == ["completed"]


def test_runs_on_a_missing_or_empty_folder(capsys, tmp_path):
    code, _, err = run(capsys, "runs", str(tmp_path / "nothing"))
    assert code == 2 and one_line_error(err) == f"rnnlab: error: {tmp_path / 'nothing'} does not exist (rnnlab " \
                                                "train puts its runs in runs/ of the folder it runs in, or in --out)"
    code, out, _ = run(capsys, "runs", str(tmp_path))
    assert code == 0 and out.strip() == f"no run directories in {tmp_path} (rnnlab train NAME makes one)"
    code, out, _ = run(capsys, "runs", str(tmp_path), "--json")
    assert code == 0 and json.loads(out) == []
    code, _, err = run(capsys, "train", "hello", "--steps", "1", "--out", tmp_path / "runs" / "a")
    assert code == 0, err
    code, out, _ = run(capsys, "runs", str(tmp_path))  # the folder beside ./runs: where its runs are said
    assert out.strip() == f"no run directories in {tmp_path} ({tmp_path / 'runs'} holds some: rnnlab runs " \
                          f"{tmp_path / 'runs'})"
    code, _, err = run(capsys, "train", "hello", "--steps", "1", "--out", tmp_path / "sweep" / "lr-0.1")
    code, out, _ = run(capsys, "runs", str(tmp_path))  # a sweep's folder beside it too: rnnlab runs looks one deep
    assert out.strip() == f"no run directories in {tmp_path} ({tmp_path / 'runs'}, {tmp_path / 'sweep'} hold some: " \
                          f"rnnlab runs {tmp_path / 'runs'})"


def test_a_missing_folder_says_where_the_runs_are(capsys, tmp_path, monkeypatch):
    """"(rnnlab train puts its runs in runs/)" was said of runs/x, whose runs/ holds the runs, and of a
    bare `rnnlab runs` where train never ran: "runs does not exist", a name nobody typed."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "runs")
    assert code == 2 and one_line_error(err) == f"rnnlab: error: no runs/ folder in {Path.cwd()} (rnnlab train " \
                                                "makes it there; rnnlab runs FOLDER lists another)"
    assert run(capsys, "train", "hello", "--steps", "1", "--out", "runs/hello-1")[0] == 0
    for typed, hint in (("runs/sine-2", "rnnlab runs runs lists the runs beside it"),
                        ("runs/helo-1", "did you mean runs/hello-1?"), ("run", "did you mean runs?"),
                        ("elsewhere", "rnnlab train puts its runs in runs/ of the folder it runs in, or in --out")):
        code, _, err = run(capsys, "runs", typed)
        assert code == 2 and one_line_error(err) == f"rnnlab: error: {typed} does not exist ({hint})"


def test_a_folder_of_many_runs_given_as_one_names_the_newest_and_rnnlab_runs(capsys, tmp_path):
    code, _, err = run(capsys, "train", "hello", "--steps", "2", "--out", tmp_path / "runs" / "a")
    assert code == 0, err
    for name in "bcd":
        shutil.copytree(tmp_path / "runs" / "a", tmp_path / "runs" / name)
    code, _, err = run(capsys, "bptt", str(tmp_path / "runs"))
    assert code == 2 and one_line_error(err).endswith(f"(4 in all, the newest first: rnnlab runs {tmp_path / 'runs'} "
                                                      "lists them)")


def test_tui_on_a_folder_of_runs_is_the_lab_choosing_one(capsys, tmp_path):
    """rnnlab tui runs/ opens the lab's open dialog on its runs (tests/test_tui.py); without a
    terminal it names the command that lists them, not 'runs is not a run directory'."""
    code, _, err = run(capsys, "train", "hello", "--steps", "2", "--out", tmp_path / "runs" / "a")
    assert code == 0, err
    code, _, err = run(capsys, "tui", str(tmp_path / "runs"))
    assert code == 2 and one_line_error(err) == ("rnnlab: error: the lab needs a terminal (stdin and stdout are not "
                                                 "one); script it with rnnlab runs instead")
    code, _, err = run(capsys, "tui", str(tmp_path / "runs" / "a" / "nothing"))
    assert code == 2 and f"no such file or directory: {tmp_path / 'runs' / 'a' / 'nothing'}" in err
    code, _, err = run(capsys, "tui", "nothing")
    assert code == 2 and "unknown experiment 'nothing'" in err


def test_paths_with_brackets_are_listed_as_they_are(capsys, tmp_path, monkeypatch):
    """rich read runs/exp[lr=0.1] as markup: the table said runs/exp, and a folder e[/] crashed it
    (as it crashed train's first line)."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "train", "hello", "--steps", "2", "--out", "e[/]/exp[lr=0.1]")
    assert code == 0 and "-> e[/]/exp[lr=0.1]" in err, err
    code, out, err = run(capsys, "runs", "e[/]")
    assert code == 0 and "│ e[/]/exp[lr=0.1] │" in out, err
    (tmp_path / "empty[b]").mkdir()
    code, out, _ = run(capsys, "runs", "empty[b]")
    assert code == 0 and out.strip() == "no run directories in empty[b] (rnnlab train NAME makes one)"


def test_a_probe_of_the_lock_does_not_turn_a_writer_away(capsys, tmp_path):
    """rnnlab runs takes a shared lock for an instant; a resume or a lab's save arriving in that
    instant was refused ('being written by another rnnlab process')."""
    import fcntl
    import threading

    from rnnlab.train.rundir import LOCK

    code, _, err = run(capsys, "train", "hello", "--steps", "2", "--out", tmp_path / "r")
    assert code == 0, err
    handle = open(tmp_path / "r" / LOCK, "rb")
    fcntl.flock(handle, fcntl.LOCK_SH)
    threading.Timer(0.05, handle.close).start()  # the probe lets go
    with RunDir.open(tmp_path / "r").writing() as held:
        assert held
    assert not RunDir.being_written(tmp_path / "r")


def test_a_diverged_run_opened_and_saved_in_the_lab_untrained_stays_diverged(capsys, tmp_path):
    """ctrl+s in a lab on a diverged run, nothing trained: its summary said 'stopped' after."""
    from rnnlab.lab import Lab

    spec = tmp_path / "div.toml"
    spec.write_text(DIVERGING_SPEC, encoding="utf-8")
    code, _, _ = run(capsys, "train", spec, "--out", tmp_path / "div")
    assert code == 1
    [listed] = list_runs(tmp_path)
    assert listed.status == "diverged"
    lab = Lab.open(tmp_path / "div")
    lab.save_run()
    assert json.loads((tmp_path / "div" / "summary.json").read_text())["status"] == "diverged"
    assert [r.status for r in list_runs(tmp_path)] == ["diverged"]
    with pytest.raises(ValueError, match="until_step must be an integer past"):  # no step: still nothing new
        lab.train(until_step=lab.trainer.step)
    lab.save_run()
    assert [r.status for r in list_runs(tmp_path)] == ["diverged"]


def test_a_sweep_shows_the_settings_it_changed(capsys, tmp_path, monkeypatch):
    """Runs of one experiment read the same in every column: which had which learning rate?"""
    from rnnlab.train.runs import differing_fields

    monkeypatch.chdir(tmp_path)
    for lr in ("0.001", "0.01"):
        code, _, err = run(capsys, "train", "hello", "--set", f"train.learning_rate={lr}", "--steps", "2",
                           "--out", f"sweep/lr-{lr}")
        assert code == 0, err
    code, _, err = run(capsys, "train", "adding-rnn", "--steps", "1", "--out", "sweep/other")
    assert code == 0, err
    assert differing_fields(list_runs("sweep")) == ["train.learning_rate"]  # within hello; adding-rnn is alone
    code, out, _ = run(capsys, "runs", "sweep")
    header = next(line for line in out.splitlines() if "learning_rate" in line)
    assert [cell.strip() for cell in header.strip("┃ ").split("┃")][:6] == ["run", "task", "cell", "H",
                                                                          "learning_rate", "step"]
    assert "│         0.001 │" in next(line for line in out.splitlines() if "sweep/lr-0.001" in line)
    code, out, _ = run(capsys, "runs", "sweep", "--json")
    rates = {r["path"]: r["spec"]["train.learning_rate"] for r in json.loads(out)}
    assert rates["sweep/lr-0.001"] == 0.001 and rates["sweep/lr-0.01"] == 0.01
    os.makedirs("sweep/fresh")  # never evaluated: last, whatever the order
    shutil.copy("sweep/other/spec.toml", "sweep/fresh/spec.toml")
    for sort, value in (("eval", lambda r: r["eval"]["loss"]), ("loss", lambda r: r["loss"])):
        code, out, _ = run(capsys, "runs", "sweep", "--sort", sort, "--json")
        rows = json.loads(out)
        ranked = [value(r) for r in rows[:-1]]
        assert rows[-1]["path"] == "sweep/fresh" and ranked == sorted(ranked)
    code, out, _ = run(capsys, "runs", "sweep", "--sort", "name", "--json")
    assert [r["path"] for r in json.loads(out)] == ["sweep/fresh", "sweep/other", "sweep/lr-0.001", "sweep/lr-0.01"]
    code, _, err = run(capsys, "runs", "sweep", "--sort", "best")
    assert code == 2 and one_line_error(err) == ("rnnlab: error: --sort must be one of updated, eval, loss, name, "
                                                 "got 'best'")


def test_runs_into_a_pipe_prints_every_path_and_setting_whole_and_a_terminal_gets_a_fitted_table(
        capsys, tmp_path, monkeypatch):
    """Piped, the 160-column page cut the run's path (what --resume takes) and pushed settings
    under the table; a terminal's table is fitted and names what it left out."""
    from rich.console import Console

    from rnnlab.cli import _app

    monkeypatch.chdir(tmp_path)
    folder = "a-folder-with-a-rather-long-name-for-its-runs"
    for k, (lr, seed) in enumerate((("0.001", 1), ("0.01", 2))):
        code, _, err = run(capsys, "train", "hello", "--steps", "1", "--set", f"train.learning_rate={lr}",
                           "--set", f"seed={seed}", "--set", f"train.batch_size={8 + k}",
                           "--set", f"train.clip_norm={1 + k}", "--set", f"train.eval_every={50 + k}",
                           "--out", f"{folder}/hello-sweep-{k}")
        assert code == 0, err
    monkeypatch.setattr(_app, "_consoles", {})  # built afresh for this stdout: not a terminal
    code, out, _ = run(capsys, "runs", folder)
    header = next(line for line in out.splitlines() if "learning_rate" in line)
    assert all(name in header for name in ("seed", "batch_size", "clip_norm", "eval_every"))
    assert f"{folder}/hello-sweep-0" in out and "also differing" not in out
    monkeypatch.setattr(_app, "_consoles", {"out": Console(width=100, force_terminal=True, color_system=None)})
    code, out, _ = run(capsys, "runs", folder)
    assert all(len(line) <= 100 for line in out.splitlines())
    assert "also differing between runs of one experiment:" in out  # what the terminal had no room for


def test_an_80_column_terminal_folds_long_paths_whole_and_fits_the_table(capsys, tmp_path, monkeypatch):
    """Paths cut to "typ/hello-20261130-0…", four runs alike and none to pass to --resume; a run at step
    7794/100000000 pushed the table past the edge."""
    from rich.console import Console

    from rnnlab.cli import _app

    monkeypatch.chdir(tmp_path)
    folder = "a-folder-with-a-rather-long-name"
    for k in range(2):
        code, _, err = run(capsys, "train", "hello", "--steps", "1", "--out", f"{folder}/hello-20261130-0401{k}")
        assert code == 0, err
    summary = Path(folder, "hello-20261130-04011", "summary.json")
    summary.write_text(json.dumps(json.loads(summary.read_text()) | {"steps": 100_000_000}))
    monkeypatch.setattr(_app, "_consoles", {"out": Console(width=80, force_terminal=True, color_system=None)})
    code, out, _ = run(capsys, "runs", folder)
    assert code == 0 and all(len(line) <= 80 for line in out.splitlines()) and "…" not in out
    folded = "".join(line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│"))
    assert f"{folder}/hello-20261130-04010" in folded and f"{folder}/hello-20261130-04011" in folded


def test_the_open_dialog_names_what_a_sweep_changed(tmp_path, monkeypatch):
    from rnnlab.tui.screens import open_choices

    monkeypatch.chdir(tmp_path)
    for lr in ("0.001", "0.01"):
        assert run_quiet("train", "hello", "--set", f"train.learning_rate={lr}", "--steps", "1", "--out", f"r/{lr}")
    assert run_quiet("train", "parity", "--steps", "1", "--out", "r/p")
    labels = {target: label.plain for target, label, _ in open_choices([Path("r")])}
    assert "1/1 completed" in labels["r/0.001"] and labels["r/0.001"].endswith("hello, lstm, H=16, "
                                                                                  "learning_rate=0.001")
    assert labels["r/p"].endswith("  parity, gru, H=16")  # alone of its experiment: nothing varied
    spec = Path("r/p/spec.toml")
    spec.write_text(spec.read_text().replace("clip_norm = 5.0", "clip_norm = 2.0"))  # opens; t refuses to train it
    labels = {target: label.plain for target, label, _ in open_choices([Path("r")])}
    assert "damaged" not in labels["r/p"] and "1/1 completed" in labels["r/p"], labels["r/p"]  # as runs says
    assert labels["r/p"].endswith("parity, gru, H=16  spec.toml changed since its checkpoint was trained "
                                  "(train.clip_norm: 5.0 -> 2.0): it cannot be trained further as it is")


def run_quiet(*args) -> bool:
    """``rnnlab ARGS`` in this process, its output let through; True if it succeeded."""
    return cli.main([str(a) for a in args]) == 0


def test_settings_that_follow_from_another_are_not_listed_as_differing_and_dates_are_json(capsys, tmp_path,
                                                                                          monkeypatch):
    """sgd against adam: momentum, beta1, beta2 and eps each 'differed' (one run lacks each), and
    the cap of columns hid the optimizer's own. A TOML date typed into a spec.toml crashed --json."""
    from rnnlab.train.runs import differing_fields

    monkeypatch.chdir(tmp_path)
    assert run_quiet("train", "hello", "--set", "train.optimizer=sgd", "--set", "train.momentum=0.5", "--steps", "1",
                     "--out", "r/sgd")
    assert run_quiet("train", "hello", "--steps", "1", "--out", "r/adam")
    assert differing_fields(list_runs("r")) == ["train.optimizer"]
    spec = (tmp_path / "r" / "adam" / "spec.toml").read_text(encoding="utf-8")
    (tmp_path / "r" / "adam" / "spec.toml").write_text(spec.replace("seed = 0", "seed = 1979-05-27"), encoding="utf-8")
    capsys.readouterr()  # what the trainings printed
    code, out, err = run(capsys, "runs", "r", "--json", "--sort", "name")
    assert code == 0 and {r["spec"]["seed"] for r in json.loads(out)} == {"1979-05-27", 0}, err


def test_a_finished_run_with_a_torn_last_log_line_is_listed_where_it_ended(capsys, tmp_path):
    """Its last metrics line cut mid-record (a disk filled, a copy stopped): "5/6 completed", though
    its checkpoint and summary are at step 6."""
    code, _, err = run(capsys, "train", "hello", "--steps", "6", "--out", tmp_path / "r")
    assert code == 0, err
    metrics = (tmp_path / "r" / "metrics.jsonl").read_text()
    (tmp_path / "r" / "metrics.jsonl").write_text(metrics[:-20])
    os.utime(tmp_path / "r" / "summary.json")  # written last, as training does
    [listed] = list_runs(tmp_path)
    assert (listed.status, listed.step, listed.steps) == ("completed", 6, 6)


def test_a_sweeps_setting_is_shown_before_the_time_and_the_baseline_and_what_is_left_out_is_named(
        capsys, tmp_path, monkeypatch):
    """At 120 columns a learning-rate sweep's listing had no learning_rate column (the time took its
    room), and the columns it left out were not named."""
    from rich.console import Console

    from rnnlab.cli import _app

    monkeypatch.chdir(tmp_path)
    for lr in ("0.001", "0.003", "0.01"):
        assert run(capsys, "train", "hello", "--steps", "1", "--set", f"train.learning_rate={lr}",
                   "--out", f"sw/lr-{lr}")[0] == 0
    monkeypatch.setattr(_app, "_consoles", {"out": Console(width=120, force_terminal=True, color_system=None)})
    code, out, _ = run(capsys, "runs", "sw")
    header = next(line for line in out.splitlines() if "status" in line)
    assert code == 0 and "learning_rate" in header and "updated" not in header and "baseline" in header
    assert "left out to fit the terminal: updated (a wider one, a pipe or --json has them)" in out
    assert all(len(line) <= 120 for line in out.splitlines())


@pytest.mark.parametrize("width, shown, left_out", [
    (40, ["run", "step", "status"], "eval loss, H, cell, task"),
    (50, ["run", "task", "cell", "step", "status"], "eval loss, H"),
])
def test_a_narrow_terminal_leaves_columns_out_whole_and_keeps_the_runs_path(capsys, tmp_path, monkeypatch,
                                                                           width, shown, left_out):
    """At 40 columns rich squeezed the columns left: the run's path went to nothing, H read "…" and the status
    "complet…"; now the columns that do not fit are left out whole, and named."""
    from rich.console import Console

    from rnnlab.cli import _app

    monkeypatch.chdir(tmp_path)
    for name, steps in (("hello-a", "2"), ("hello-bb", "12")):
        assert run(capsys, "train", "hello", "--steps", steps, "--out", f"r/{name}")[0] == 0
    monkeypatch.setattr(_app, "_consoles", {"out": Console(width=width, force_terminal=True, color_system=None)})
    code, out, _ = run(capsys, "runs", "r", "--sort", "name")
    lines = out.splitlines()
    assert code == 0 and all(len(line) <= width for line in lines) and "…" not in out, out
    assert [h.strip() for h in lines[1].strip("┃").split("┃")] == shown, out
    assert lines[3].startswith("│ r/hello-a ") and "2/2" in lines[3] and "12/12" in lines[4], out
    assert f"{left_out} (a wider one, a pipe or --json has them)" in " ".join(out.split()), out


def test_list_runs_refuses_an_unknown_order():
    """list_runs(root, sort="nope") was a KeyError from inside; it is exported from rnnlab.train too."""
    import rnnlab.train

    assert rnnlab.train.list_runs is list_runs
    with pytest.raises(ValueError, match=r"^sort must be one of updated, eval, loss, name, got 'nope'$"):
        list_runs(".", sort="nope")


def test_a_setting_too_wide_for_the_terminal_takes_no_column_from_the_time_and_baseline(
        capsys, tmp_path, monkeypatch):
    """The time and the baseline were dropped for a sweep's setting that then did not fit anyway."""
    from rich.console import Console

    from rnnlab.cli import _app

    monkeypatch.chdir(tmp_path)
    for k, text in enumerate(("hello", "hello there, a rather long word to learn for a column " * 2)):
        assert run(capsys, "train", "hello", "--steps", "1", "--set", f"task.text={text!r}".replace("'", '"'),
                   "--out", f"t/{k}")[0] == 0
    monkeypatch.setattr(_app, "_consoles", {"out": Console(width=120, force_terminal=True, color_system=None)})
    code, out, _ = run(capsys, "runs", "t")
    header = next(line for line in out.splitlines() if "status" in line)
    assert code == 0 and "updated" in header and "baseline" in header and " text " not in header, out
    assert "also differing between runs of one experiment: task.text" in out and "left out to fit" not in out


def test_a_run_whose_spec_holds_a_number_past_a_floats_range_is_listed_damaged(capsys, tmp_path):
    """`rnnlab runs` crashed (OverflowError) over a folder with one run whose spec.toml held a
    400-digit clip_norm; now that run is listed damaged, the others as they are."""
    code, _, err = run(capsys, "train", "hello", "--steps", "2", "--out", tmp_path / "fine")
    assert code == 0, err
    shutil.copytree(tmp_path / "fine", tmp_path / "huge")
    spec = (tmp_path / "huge/spec.toml").read_text()
    assert "clip_norm = " in spec
    lines = [f"clip_norm = 1{'0' * 400}" if line.startswith("clip_norm = ") else line for line in spec.splitlines()]
    (tmp_path / "huge/spec.toml").write_text("\n".join(lines) + "\n")
    listed = {r.path.name: (r.status, r.problem) for r in list_runs(tmp_path)}
    assert listed["fine"] == ("completed", "")
    assert listed["huge"][0] == "damaged" and "train.clip_norm: must be a finite number, got an integer beyond" \
        in listed["huge"][1]
    code, out, _ = run(capsys, "runs", tmp_path)
    assert code == 0 and "huge" in out


@pytest.mark.parametrize("spec, problem", [
    ('[task]\nkind = ["hello"]\n', "spec.toml: task.kind: expected a task name, got a list"),
    ("a = " + "{b = " * 400 + "1" + "}" * 400 + "\n", "spec.toml: not TOML (tables or arrays nested too deeply"),
], ids=["kind-a-list", "nested-400-deep"])
def test_one_run_whose_spec_crashed_the_reader_is_listed_damaged_and_the_others_too(capsys, tmp_path, spec, problem):
    """A task.kind that is a list (TypeError) or a spec nested 400 deep (RecursionError) ended `rnnlab
    runs` of the whole folder with a traceback: no run of it listed."""
    code, _, err = run(capsys, "train", "hello", "--steps", "2", "--out", tmp_path / "fine")
    assert code == 0, err
    shutil.copytree(tmp_path / "fine", tmp_path / "odd")
    (tmp_path / "odd/spec.toml").write_text(spec)
    listed = {r.path.name: (r.status, r.problem) for r in list_runs(tmp_path)}
    assert listed["fine"] == ("completed", "")
    assert listed["odd"][0] == "damaged" and listed["odd"][1].startswith(problem), listed["odd"]
    code, out, err = run(capsys, "runs", tmp_path)
    assert code == 0 and "fine" in out and "odd" in out, err
    code, _, err = run(capsys, "bptt", tmp_path / "odd")
    assert code == 2 and "Traceback" not in err


def test_a_run_whose_spec_is_a_named_pipe_is_damaged_not_waited_on(capsys, tmp_path):
    """Read, a pipe with no writer never ends: rnnlab runs and every command opening the run hung."""
    (tmp_path / "x").mkdir()
    os.mkfifo(tmp_path / "x" / "spec.toml")
    (tmp_path / "x" / "metrics.jsonl").write_text("")
    listed = {r.path.name: (r.status, r.problem) for r in list_runs(tmp_path)}
    assert listed == {"x": ("damaged", "spec.toml: it is a named pipe")}
    code, _, err = run(capsys, "spec", tmp_path / "x")
    said = one_line_error(err)
    assert code == 2 and said == f"rnnlab: error: {tmp_path / 'x'} has a damaged spec.toml: it is a named pipe"


def test_a_column_no_run_has_takes_no_room(capsys, tmp_path, monkeypatch):
    """adding has no accuracy: its "eval acc" column of "-" kept its place while the training loss and
    the sweep's settings were left out to fit 100 columns (a workflow walkthrough)."""
    from rich.console import Console

    from rnnlab.cli import _app

    monkeypatch.chdir(tmp_path)
    for init in ("uniform", "orthogonal"):
        assert run(capsys, "train", "adding-rnn", "--steps", "1", "--set", "task.length=10", "--set",
                   f"model.init={init}", "--out", f"runs/adding-rnn-{init}")[0] == 0
    monkeypatch.setattr(_app, "_consoles", {"out": Console(width=100, force_terminal=True, color_system=None)})
    code, out, _ = run(capsys, "runs")
    header = next(line for line in out.splitlines() if "status" in line)
    assert code == 0 and "eval acc" not in header and " loss " in header, out
    assert "left out to fit" not in out or "eval acc" not in out.split("left out to fit")[1]


@pytest.mark.parametrize("damage", ['{"step": 20, "stat', "[]", '{"step": 20}'])
def test_a_run_whose_summary_is_damaged_says_so_under_the_table(capsys, tmp_path, damage):
    """A summary.json cut or edited (it is written atomically: a hand, a disk) was listed "interrupted" with no word,
    as a run killed before its first summary; the listing now names the file, and the run still reads and resumes."""
    code, _, err = run(capsys, "train", "hello", "--steps", "2", "--out", tmp_path / "r")
    assert code == 0, err
    (tmp_path / "r/summary.json").write_text(damage)
    (listed,) = list_runs(tmp_path)
    assert (listed.status, listed.step) == ("interrupted", 2)
    assert listed.problem.startswith("summary.json cannot be read")
    code, out, err = run(capsys, "runs", tmp_path)
    assert code == 0 and err == "" and f"{tmp_path / 'r'}: summary.json cannot be read (not JSON, or not as rnnlab " \
                                      "writes it): how its training ended is unknown" in out
    os.remove(tmp_path / "r/summary.json")  # killed before its first summary: no file, nothing to say
    assert list_runs(tmp_path)[0].problem == ""


def test_a_run_without_a_summary_still_says_its_eval_batch_is_the_training_data(capsys, tmp_path):
    """hello's eval batch is its one word: a run killed before its first summary listed its eval loss as held out,
    without the "(train)" its summary gives it (the task says it, as it gives the baseline)."""
    code, _, err = run(capsys, "train", "hello", "--steps", "2", "--out", tmp_path / "r")
    assert code == 0, err
    (summarized,) = list_runs(tmp_path)
    os.remove(tmp_path / "r/summary.json")
    (listed,) = list_runs(tmp_path)
    assert listed.status == "interrupted" and listed.eval_held_out is summarized.eval_held_out is False
    assert listed.baseline == summarized.baseline
    code, out, _ = run(capsys, "runs", tmp_path)
    assert code == 0 and " (train)" in out


def test_a_listing_opens_each_checkpoint_once_and_checks_each_spec_once(capsys, tmp_path, monkeypatch):
    """A folder of thousands of runs: each opening of a checkpoint reads the archive's whole table of
    contents, and the spec's checks were run twice (its fields, then the settings compared with the
    checkpoint's), a third of the listing's time; the listing must still see a changed setting."""
    from rnnlab.spec import Spec
    from rnnlab.train import rundir

    for name in ("a", "b"):
        code, _, err = run(capsys, "train", "hello", "--steps", "2", "--out", tmp_path / "runs" / name)
        assert code == 0, err
    spec = tmp_path / "runs" / "b" / "spec.toml"
    spec.write_text(spec.read_text().replace("learning_rate = 0.05", "learning_rate = 0.5"))
    opened, checked = [], []
    open_npz, checked_tables = rundir._open_npz, Spec._checked_tables.__func__
    monkeypatch.setattr(rundir, "_open_npz", lambda file: opened.append(file.parent.name) or open_npz(file))
    monkeypatch.setattr(Spec, "_checked_tables", classmethod(
        lambda cls, data, saved: checked.append(data["name"]) or checked_tables(cls, data, saved)))
    listed = {run.path.name: run for run in list_runs(tmp_path / "runs")}
    assert sorted(opened) == ["a", "b"] and checked == ["hello", "hello"]
    assert listed["a"].problem == "" and listed["b"].status == "completed"
    assert "train.learning_rate: 0.05 -> 0.5" in listed["b"].problem
