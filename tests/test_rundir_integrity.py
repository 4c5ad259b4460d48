"""A run directory's integrity: the data its weights were trained on, what a resume with nothing
to do leaves alone, untrained or damaged checkpoints, a full disk, and the train command's hints."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import one_line_error as one_line, run_cli as run
from rnnlab.errors import SpecError, UserError, WriteFailed
from rnnlab.spec import Spec
from rnnlab import fsio
from rnnlab.train import rundir

ROOT = Path(__file__).resolve().parents[1]
#: Takes a run's writer lock in another process, says "held", and keeps it until killed.
HOLD_LOCK = ("import fcntl, sys, time\nhandle = open(sys.argv[1], 'a')\nfcntl.flock(handle, fcntl.LOCK_EX)\n"
             "print('held', flush=True)\ntime.sleep(600)")


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file()}


@pytest.fixture
def text_run(capsys, tmp_path):
    """A 20-step character model of small.txt ("abab...") and its spec; returns (run dir, text file)."""
    text = tmp_path / "small.txt"
    text.write_text("ab" * 300, encoding="utf-8")
    spec = tmp_path / "small.toml"
    spec.write_text('name = "small"\n[task]\nkind = "text"\npath = "small.txt"\nlength = 10\n'
                    '[model]\ncell = "rnn"\nhidden_size = 8\n[train]\nsteps = 20\nbatch_size = 4\n', encoding="utf-8")
    run_dir = tmp_path / "r"
    code, _, err = run(capsys, "train", spec, "--out", run_dir, "--steps", "20")
    assert code == 0, err
    return run_dir, text


@pytest.fixture
def hello_run(capsys, tmp_path):
    run_dir = tmp_path / "r_hello"
    code, _, err = run(capsys, "train", "hello", "--steps", "3", "--out", run_dir)
    assert code == 0, err
    return run_dir


def commands(run_dir: Path, tmp_path: Path) -> list[list]:
    """Every command that loads a run directory's weights, and ``spec``, which checks them as those do."""
    return [["sample", run_dir, "--prime", "a"], ["train", "--resume", run_dir, "--steps", "40"],
            ["bptt", run_dir], ["trace", run_dir, "--out", tmp_path / "t.npz"], ["spec", run_dir]]


# ---------------------------------------------------------------------------- the training data
def test_a_text_file_with_other_characters_is_refused_naming_the_file_and_the_change(capsys, tmp_path, text_run):
    run_dir, text = text_run
    text.write_text("xy" * 300, encoding="utf-8")  # as many characters, other ones
    saved = snapshot(run_dir)
    for args in [*commands(run_dir, tmp_path), ["tui", run_dir]]:  # tui: before it asks for a terminal
        code, out, err = run(capsys, *args)
        assert code == 2 and out == "", (args, err)
        line = one_line(err)
        assert f"{text}: its characters changed since {run_dir} was trained (new: 'xy'; gone: 'ab')" in line, line
    assert snapshot(run_dir) == saved and not (tmp_path / "t.npz").exists()


def test_the_same_characters_in_another_text_are_refused_too(capsys, tmp_path, text_run):
    """... but by sample, which reads the characters alone (a note says the text changed)."""
    run_dir, text = text_run
    text.write_text("aabb" * 150, encoding="utf-8")
    saved = snapshot(run_dir)
    for args in commands(run_dir, tmp_path)[1:]:  # (sample's is commands' first)
        code, out, err = run(capsys, *args)
        assert code == 2 and out == ""
        assert f"{text}: its text changed since {run_dir} was trained" in one_line(err)
    assert snapshot(run_dir) == saved
    text.write_bytes(("ab" * 300).replace("\n", "\r\n").encode())  # the text it was trained on: fine again
    code, out, err = run(capsys, "sample", run_dir, "--prime", "a", "--length", "5")
    assert code == 0 and out.strip()[0] == "a" and set(out.strip()) <= {"a", "b"}, err


def test_a_run_saved_before_checkpoints_recorded_their_data_keeps_working(capsys, tmp_path, text_run):
    run_dir, _ = text_run
    checkpoint = run_dir / "checkpoint.npz"
    with np.load(checkpoint, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    meta = json.loads(str(arrays["meta"]))
    assert meta["data"]["vocabulary"] == "ab" and len(meta["data"]["sha256"]) == 64
    del meta["data"]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(checkpoint, **arrays)
    code, out, err = run(capsys, "sample", run_dir, "--prime", "a", "--length", "5")
    assert code == 0 and set(out.strip()) <= {"a", "b"}, err
    code, out, err = run(capsys, "train", "--resume", run_dir, "--steps", "25", "--json")
    assert code == 0 and json.loads(out)["step"] == 25, err
    with np.load(checkpoint, allow_pickle=False) as data:  # saved again: it records its data from now on
        assert json.loads(str(data["meta"]))["data"]["vocabulary"] == "ab"


def test_a_hello_run_whose_spec_was_edited_to_other_characters_is_refused(capsys, hello_run):
    spec = hello_run / "spec.toml"
    spec.write_text(spec.read_text().replace('text = "hello"', 'text = "hallo"'))  # 4 characters still
    code, out, err = run(capsys, "sample", hello_run, "--prime", "h")
    assert code == 2 and out == ""
    assert f"{spec}: its characters changed" in one_line(err) and "new: 'a'; gone: 'e'" in err


# ---------------------------------------------------------------------------- nothing to do
def test_resuming_a_completed_run_changes_nothing_and_says_so(capsys, hello_run):
    saved = snapshot(hello_run)
    for extra in ([], ["--steps", "3"], ["--json"]):
        code, out, err = run(capsys, "train", "--resume", hello_run, *extra)
        summary = json.loads((hello_run / "summary.json").read_text())
        assert code == 0 and (json.loads(out) == summary if extra == ["--json"] else out == "")
        line = one_line(err)
        assert f"{hello_run} is already at step 3: nothing to train" in line and "--steps N" in line
        assert snapshot(hello_run) == saved
    (hello_run / "summary.json").unlink()  # stopped between its last checkpoint and its summary: it completed
    code, out, err = run(capsys, "train", "--resume", hello_run, "--json")  # (its summary written again: below)
    assert code == 0 and json.loads(out)["status"] == "completed"
    (hello_run / "summary.json").unlink()
    spec = hello_run / "spec.toml"  # killed at a checkpoint halfway: --steps at that step trains nothing
    spec.write_text(spec.read_text().replace("steps = 3", "steps = 6"))
    code, out, err = run(capsys, "train", "--resume", hello_run, "--steps", "3", "--json")
    assert code == 0 and json.loads(out) == {"run_dir": str(hello_run), "step": 3, "steps": 6,
                                             "status": "interrupted"}


def test_a_writer_killed_mid_write_leaves_no_temporary_file_past_the_next_writer(capsys, hello_run):
    """A kill during a checkpoint's write left its .checkpoint.npz.*.tmp, as large as the checkpoint,
    which nothing removed."""
    leftovers = [hello_run / ".checkpoint.npz.hlcqv6aa.tmp", hello_run / ".metrics.jsonl.x1y2z3.tmp"]
    for leftover in leftovers:
        leftover.write_bytes(b"half")
    kept = hello_run / ".notes.tmp"  # not the run's: left alone
    kept.write_text("mine")
    code, out, err = run(capsys, "train", "--resume", hello_run, "--steps", "4")
    assert code == 0, err
    assert not any(leftover.exists() for leftover in leftovers) and kept.read_text() == "mine"


@pytest.mark.parametrize("cut", ["first two kept", "deleted", "emptied"])
def test_a_log_that_lost_steps_before_the_checkpoint_is_named_by_runs_and_by_resume(capsys, hello_run, cut):
    """metrics.jsonl cut by hand (or a checkpoint copied from a run further on) was listed as completed,
    with an older step's loss as the last, and a resume appended after the gap without a word."""
    metrics = hello_run / "metrics.jsonl"
    if cut == "deleted":
        metrics.unlink()
    elif cut == "emptied":  # said "ends at step 0"
        metrics.write_text("")
    else:
        metrics.write_text("".join(metrics.read_text().splitlines(keepends=True)[:2]))
    logged = 2 if cut == "first two kept" else 0
    code, out, err = run(capsys, "runs", hello_run.parent, "--json")
    listed = next(row for row in json.loads(out) if row["path"] == str(hello_run))
    logs = {"deleted": "metrics.jsonl is missing", "emptied": "metrics.jsonl holds no step"}.get(
        cut, f"metrics.jsonl ends at step {logged}")
    assert listed["problem"] == f"{logs}, but its checkpoint.npz is at step 3"
    code, out, err = run(capsys, "train", "--resume", hello_run, "--steps", "4")
    first = 3 if cut == "first two kept" else 1
    assert code == 0 and (f"rnnlab: warning: {metrics} lacks {3 - logged} of the 3 steps up to the checkpoint's "
                          f"(the first missing: step {first}); training goes on from step 3") in err


# ---------------------------------------------------------------------------- the checkpoint
def test_resume_refuses_a_spec_edited_since_its_checkpoint(capsys, hello_run):
    """A hand edit of a run's spec.toml (learning rate, seed, the task's length) went on training with
    the new settings, silently, while --set and --seed are refused on a resume: the run's record
    would no longer say how it trained. The steps (--steps) may change."""
    spec = hello_run / "spec.toml"
    original = spec.read_text()
    spec.write_text(original.replace("learning_rate = 0.05", "learning_rate = 5.0").replace("seed = 0", "seed = 7"))
    files = {name: (hello_run / name).read_bytes() for name in ("checkpoint.npz", "metrics.jsonl", "spec.toml")}
    code, out, err = run(capsys, "train", "--resume", hello_run, "--steps", "5")
    assert code == 2 and out == ""
    assert one_line(err) == (f"rnnlab: error: {spec} changed since its checkpoint was trained (seed: 0 -> 7; "
                             f"train.learning_rate: 0.05 -> 5.0): put it back, or train the variant as a new run: "
                             f"rnnlab train {spec} --out NEW")
    assert files == {name: (hello_run / name).read_bytes() for name in files}
    spec.write_text(original.replace("eval_every = 20", "eval_every = 2"))  # how often it evaluates: its own
    assert "eval_every = 2\n" in spec.read_text()
    code, _, err = run(capsys, "train", "--resume", hello_run, "--steps", "5")
    assert code == 0, err


def test_settings_only_one_side_records_are_not_changes(capsys, hello_run):
    """A checkpoint of an rnnlab that recorded other fields (eval_every, since left out; a field
    since removed) was "changed since its checkpoint was trained (train.eval_every: 20 -> (none))"
    though spec.toml said eval_every = 20: nothing to put back."""
    with np.load(hello_run / "checkpoint.npz", allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    meta = json.loads(str(arrays["meta"]))
    meta["settings"] |= {"train.eval_every": 20, "train.checkpoint_every": 50, "model.gone_field": 1}
    del meta["settings"]["model.init"]  # and one it did not record
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(hello_run / "checkpoint.npz", **arrays)
    assert rundir.RunDir.open(hello_run).changed_settings() == []
    code, _, err = run(capsys, "train", "--resume", hello_run, "--steps", "5")
    assert code == 0, err


def test_a_run_whose_checkpoint_is_gone_is_refused_by_every_reader(capsys, tmp_path, hello_run):
    """bptt and trace ran it on its initial weights with a warning (the JSON said nothing), and
    sample said "no checkpoint yet: train it first", of a run trained 3 steps: `runs` lists it
    damaged, and every command now says the weights of that step are gone."""
    (hello_run / "checkpoint.npz").unlink()
    expected = (f"rnnlab: error: {hello_run} has no checkpoint.npz: the weights of step 3 are gone (its experiment "
                f"from the start: {hello_run / 'spec.toml'})")
    for args in (["bptt", hello_run, "--json"], ["trace", hello_run, "--out", tmp_path / "t.npz"],
                 ["sample", hello_run], ["train", "--resume", hello_run, "--steps", "5"], ["tui", hello_run]):
        code, out, err = run(capsys, *args)
        assert code == 2 and out == "" and one_line(err) == expected, args


def test_a_run_saved_untrained_without_its_checkpoint_reads_the_initial_weights_saying_so(capsys, hello_run):
    """Step 0's weights are the seed's: drawn again, with a warning, where the checkpoint went; and
    --resume trains it from there (it said "has no checkpoint.npz to resume from")."""
    summary = json.loads((hello_run / "summary.json").read_text())
    (hello_run / "summary.json").write_text(json.dumps(summary | {"checkpoint_step": 0}))
    (hello_run / "metrics.jsonl").write_text("")
    (hello_run / "checkpoint.npz").unlink()
    code, out, err = run(capsys, "bptt", hello_run, "--json")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert warnings == [f"rnnlab: warning: {hello_run} has no checkpoint.npz: its weights are the initial ones, "
                        "untrained"]
    assert json.loads(out)["trained_steps"] == 0
    code, _, err = run(capsys, "train", "--resume", hello_run, "--steps", "2")
    assert code == 0 and json.loads((hello_run / "summary.json").read_text())["step"] == 2, err


@pytest.mark.parametrize("content", [b"garbage", b"\x93NUMPY not an archive", b"\x80\x04K\x01."])
def test_a_checkpoint_that_is_not_an_npz_says_so_and_never_suggests_loading_it_unsafely(capsys, tmp_path,
                                                                                         hello_run, content):
    (hello_run / "checkpoint.npz").write_bytes(content)
    for args in commands(hello_run, tmp_path):
        code, out, err = run(capsys, *args)
        assert code == 2 and out == ""
        line = one_line(err)
        assert line.endswith("checkpoint.npz is damaged and cannot be read: it is not a NumPy .npz archive"), line


def test_a_checkpoint_holding_python_objects_is_named_without_numpys_advice(capsys, hello_run):
    np.savez(hello_run / "checkpoint.npz", meta=np.array([{"format": 1}], dtype=object))
    code, out, err = run(capsys, "sample", hello_run)
    assert code == 2 and out == ""
    line = one_line(err)
    assert "Python objects" in line and "allow_pickle" not in line and "unsafe" not in line


# ---------------------------------------------------------------------------- a full disk
def test_a_full_disk_while_training_is_a_failure_exit_1_and_keeps_the_last_checkpoint(capsys, monkeypatch,
                                                                                       hello_run):
    saved = (hello_run / "checkpoint.npz").read_bytes()

    def full_disk(handle, **arrays):
        handle.write(b"the first bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rundir.np, "savez", full_disk)
    code, out, err = run(capsys, "train", "--resume", hello_run, "--steps", "30")
    assert code == 1 and out == ""
    # what is kept and how to go on: the error alone left the user to guess what of the training was lost
    assert err.splitlines()[-1] == (f"rnnlab: error: cannot write {hello_run}/checkpoint.npz: No space left on device; "
                                    f"{hello_run} keeps its checkpoint of step 3 (continue once there is room: "
                                    f"rnnlab train --resume {hello_run})")
    assert "Traceback" not in err
    assert (hello_run / "checkpoint.npz").read_bytes() == saved
    assert not [p for p in hello_run.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()
    code, out, err = run(capsys, "train", "--resume", hello_run, "--steps", "30", "--json")
    assert code == 0 and json.loads(out)["step"] == 30, err


def test_a_new_run_whose_first_checkpoint_meets_a_full_disk_says_it_has_none_and_resumes_from_0(capsys, monkeypatch,
                                                                                                  tmp_path):
    def io_error(handle, **arrays):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(rundir.np, "savez", io_error)
    run_dir = tmp_path / "r"
    code, out, err = run(capsys, "train", "hello", "--steps", "3", "--out", run_dir)
    assert code == 1 and out == ""
    assert err.splitlines()[-1] == (f"rnnlab: error: cannot write {run_dir}/checkpoint.npz: Input/output error; "
                                    f"{run_dir} has no checkpoint yet (continue once it can be written: "
                                    f"rnnlab train --resume {run_dir})")
    monkeypatch.undo()
    code, out, err = run(capsys, "train", "--resume", run_dir, "--json")
    assert code == 0 and json.loads(out)["step"] == 3, err


def test_a_resume_that_cannot_cut_its_log_for_a_full_disk_says_what_the_run_keeps(capsys, monkeypatch, hello_run):
    with open(hello_run / "metrics.jsonl", "a", encoding="utf-8") as log:  # a step logged past the checkpoint
        log.write('{"step": 4, "loss": 1.0, "accuracy": 0.5, "grad_norm": 1.0, "clipped": false, "time": 0.1}\n')
    saved = snapshot(hello_run)

    def full_disk(path, text):
        raise fsio.write_error(path, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(rundir, "atomic_write_text", full_disk)
    code, out, err = run(capsys, "train", "--resume", hello_run, "--steps", "30")
    assert code == 1 and out == "" and snapshot(hello_run) == saved
    assert err.splitlines()[-1] == (f"rnnlab: error: cannot write {hello_run}/metrics.jsonl: No space left on device; "
                                    f"{hello_run} keeps its checkpoint of step 3 (continue once there is room: "
                                    f"rnnlab train --resume {hello_run})")


@pytest.mark.parametrize("code, kind", [(errno.ENOENT, UserError), (errno.EACCES, UserError),
                                        (errno.EROFS, UserError), (errno.ENOSPC, WriteFailed),
                                        (errno.EIO, WriteFailed), (errno.EDQUOT, WriteFailed)])
def test_a_write_error_is_bad_input_only_when_the_path_is_the_problem(code, kind):
    error = fsio.write_error(Path("r/x"), OSError(code, "reason"))
    assert type(error) is kind and str(error) == "cannot write r/x: reason"


# ---------------------------------------------------------------------------- the train command's hints
def test_a_run_whose_optimizer_was_edited_reads_but_its_resume_names_the_edit(capsys, hello_run, tmp_path):
    """adam -> sgd in spec.toml: `runs` said the run reads and only training it further is refused,
    but bptt, trace and the lab could not load it ("optimizer state 'velocity/...' is missing"),
    and the resume's error was that one too, not the edit."""
    spec = hello_run / "spec.toml"
    spec.write_text("\n".join(line for line in spec.read_text().splitlines()
                              if not line.startswith(("beta1", "beta2", "eps"))).replace('"adam"', '"sgd"') + "\n")
    code, out, err = run(capsys, "bptt", hello_run, "--json")
    assert code == 0 and json.loads(out)["trained_steps"] == 3, err
    code, out, err = run(capsys, "train", "--resume", hello_run, "--steps", "5")
    assert code == 2 and 'changed since its checkpoint was trained (train.optimizer: "adam" -> "sgd")' in one_line(err)
    from rnnlab.errors import RunDirError
    from rnnlab.train import RunDir, Trainer
    opened = RunDir.open(hello_run)
    with pytest.raises(RunDirError, match="train.optimizer"):  # the library's resume, as the command's
        opened.resume(Trainer(opened.spec))


def test_resume_names_only_the_options_given(capsys, hello_run, tmp_path):
    code, _, err = run(capsys, "train", "--resume", hello_run, "--seed", "5")
    assert code == 2 and one_line(err) == "rnnlab: error: --seed cannot change a run being resumed (--resume)"
    code, _, err = run(capsys, "train", "--resume", hello_run, "--seed", "5", "--out", tmp_path / "o")
    assert code == 2 and "--seed and --out cannot" in one_line(err)


def test_a_run_directory_given_as_the_spec_suggests_resume(capsys, hello_run):
    saved = snapshot(hello_run)
    code, out, err = run(capsys, "train", hello_run)
    assert code == 2 and out == ""
    assert one_line(err) == (f"rnnlab: error: {hello_run} is a run directory, not a spec: "
                             f"continue it with --resume {hello_run}")
    assert snapshot(hello_run) == saved


@pytest.mark.parametrize("name", [" ", "\t", " x", "x "])
def test_a_blank_or_blank_edged_name_is_refused(name, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match="must not be blank or start or end with a blank") as info:
        Spec.from_mapping({"name": name, "task": {"kind": "hello"}})
    assert info.value.field == "name"
    spec = tmp_path / "blank.toml"
    spec.write_text(f'name = "{name}"\n[task]\nkind = "hello"\n'.replace("\t", "\\t"))
    code, out, err = run(capsys, "train", spec, "--steps", "1")
    assert code == 2 and out == "" and "name:" in one_line(err)
    assert not Path("runs").exists()


@pytest.mark.parametrize("path", ["", "   "])
def test_an_empty_export_name_is_named_as_missing(path):
    """The lab's export dialog with nothing typed: not "trace file must end in .npz: ."."""
    from rnnlab.train.rundir import npz_target

    with pytest.raises(UserError, match=r"^no name given for the trace file \(a path ending in \.npz\)$"):
        npz_target(path, "trace file")


# ---------------------------------------------------------------------------- a resume refused changes nothing
@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_a_resume_refused_because_another_process_writes_the_run_changes_no_file(capsys, hello_run):
    """The lock is taken before the spec (--steps) is rewritten or the logs are cut back."""
    with open(hello_run / "metrics.jsonl", "a") as log:  # a step past the checkpoint: a resume would cut it
        log.write(json.dumps(STEP | {"step": 4}) + "\n")
    saved = snapshot(hello_run)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(hello_run / ".rnnlab.lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, out, err = run(capsys, "train", "--resume", hello_run, "--steps", "5000000")
    finally:
        holder.kill()
        holder.wait()
    assert code == 2 and out == ""
    assert one_line(err) == (f"rnnlab: error: {hello_run} is being written by another rnnlab process (training it, "
                             "or a lab saving it): wait for it to finish, or train a copy")
    assert snapshot(hello_run) == saved
    code, out, err = run(capsys, "train", "--resume", hello_run, "--steps", "5", "--json")  # free again
    assert code == 0 and json.loads(out)["step"] == 5, err
    steps = [json.loads(line)["step"] for line in (hello_run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]


def test_the_library_resume_cuts_no_log_of_a_run_another_process_holds(hello_run):
    """RunDir.resume (the Python API's resume) promises to cut the logs under the run's lock; nothing
    checked that it takes it (only the CLI's path was)."""
    from rnnlab.errors import RunDirError
    from rnnlab.train import RunDir, Trainer

    metrics = hello_run / "metrics.jsonl"
    metrics.write_text(metrics.read_text() + '{"step": 4, "loss": 1.0, "accuracy": null, "grad_norm": 1.0, '
                                             '"clipped": false, "time": 0.1}\n')  # logged past the checkpoint
    saved = snapshot(hello_run)
    opened = RunDir.open(hello_run)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(hello_run / ".rnnlab.lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirError, match="is being written by another rnnlab process"):
            opened.resume(Trainer(opened.spec))
    finally:
        holder.kill()
        holder.wait()
    assert snapshot(hello_run) == saved


def test_a_run_written_between_reading_it_and_taking_its_lock_is_refused(capsys, monkeypatch, hello_run):
    saved = snapshot(hello_run)
    states = iter([(3, 100), (7, 200)])  # what the resume saw, then what is there once it holds the lock
    monkeypatch.setattr(rundir.RunDir, "state", lambda self: next(states))
    code, out, err = run(capsys, "train", "--resume", hello_run, "--steps", "50")
    assert code == 2 and out == ""
    assert "changed while it was being read" in one_line(err)
    assert snapshot(hello_run) == saved


@pytest.mark.parametrize("step", [np.array(-5, np.int64), np.array(2.5), np.array([1, 2]), np.array("3")])
def test_a_checkpoint_step_that_is_not_an_integer_from_0_is_damaged_and_nothing_is_written(capsys, tmp_path,
                                                                                          hello_run, step):
    checkpoint = hello_run / "checkpoint.npz"
    with np.load(checkpoint, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    np.savez(checkpoint, **(arrays | {"step": step}))
    saved = snapshot(hello_run)
    for args in [*commands(hello_run, tmp_path), ["train", "--resume", hello_run, "--steps", "5000000"]]:
        code, out, err = run(capsys, *args)
        assert code == 2 and out == "", (args, err)
        line = one_line(err)
        assert f"{checkpoint} is damaged and cannot be read: its step is " in line and "not an integer >= 0" in line
    assert snapshot(hello_run) == saved and not (tmp_path / "t.npz").exists()


@pytest.mark.parametrize("key, value", [("param/weight_hh_l0", np.nan), ("optim/v/weight_hh_l0", np.inf)])
def test_a_checkpoint_holding_nan_or_inf_is_damaged_for_every_command_and_nothing_is_written(capsys, tmp_path,
                                                                                             hello_run, key, value):
    """Training never saves a number that is not finite: NaN weights were "does not match spec.toml (was
    spec.toml or the training data changed?)", and an Inf optimizer slot was trained into a divergence at
    once, the damaged checkpoint kept as "the last good" one."""
    checkpoint = hello_run / "checkpoint.npz"
    with np.load(checkpoint, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    edited = arrays[key].copy()
    edited.flat[0] = value
    np.savez(checkpoint, **(arrays | {key: edited}))
    saved = snapshot(hello_run)
    for args in commands(hello_run, tmp_path):
        code, out, err = run(capsys, *args)
        assert code == 2 and out == "", (args, err)
        assert one_line(err).endswith(f"{checkpoint} is damaged and cannot be read: its {key} holds NaN or Inf, "
                                      "which training never saves"), (args, err)
    assert snapshot(hello_run) == saved and not (tmp_path / "t.npz").exists()


# ---------------------------------------------------------------------------- files the OS will not read
# chmod 000 stops no one with CAP_DAC_OVERRIDE (root): there the commands run without it (setpriv)
UNREADABLE_CASES = """
import contextlib, io, json, os, sys
from rnnlab import cli
results = []
for target, args in json.loads(sys.argv[1]):
    mode = os.stat(target).st_mode
    os.chmod(target, 0)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(args)
    finally:
        os.chmod(target, mode)
    results.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def _without_file_privileges() -> list[str]:
    if os.geteuid() != 0:
        return []
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    if shutil.which("setpriv") is None or subprocess.run([*drop, "true"], capture_output=True).returncode != 0:
        pytest.skip("running as root without setpriv: chmod 000 cannot make a file unreadable")
    return drop


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_run_files_the_os_will_not_read_are_one_line_naming_the_file_and_the_reason(tmp_path, hello_run):
    run_dir = hello_run
    trace = ["trace", run_dir, "--out", tmp_path / "t.npz"]
    resume = ["train", "--resume", run_dir, "--steps", "9"]
    cases = [(run_dir, ["bptt", run_dir], run_dir), (run_dir, trace, run_dir), (run_dir, ["tui", run_dir], run_dir),
             (run_dir, ["train", run_dir], run_dir), (run_dir, ["sample", run_dir], run_dir),
             (tmp_path, ["bptt", run_dir], run_dir), (tmp_path, ["tui", run_dir], run_dir),  # a directory above it
             (tmp_path, resume, run_dir), (tmp_path, ["sample", run_dir], run_dir),
             (run_dir / "spec.toml", ["bptt", run_dir], None), (run_dir / "spec.toml", resume, None),
             (run_dir / "metrics.jsonl", ["bptt", run_dir], None), (run_dir / "metrics.jsonl", resume, None),
             (run_dir / "evals.jsonl", trace, None), (run_dir / "evals.jsonl", resume, None),
             (run_dir / "checkpoint.npz", ["sample", run_dir], None), (run_dir / "checkpoint.npz", resume, None)]
    saved = snapshot(run_dir)
    payload = json.dumps([[str(target), [str(a) for a in args]] for target, args, _ in cases])
    proc = subprocess.run([*_without_file_privileges(), sys.executable, "-c", UNREADABLE_CASES, payload],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    for (target, args, named), (code, out, err) in zip(cases, json.loads(proc.stdout)):
        assert code == 2 and out == "", (args, err)
        assert one_line(err) == f"rnnlab: error: cannot read {named or target}: Permission denied", (target, args)
    assert snapshot(run_dir) == saved and not (tmp_path / "t.npz").exists()


@pytest.mark.parametrize("name", ["spec.toml", "metrics.jsonl", "evals.jsonl", "checkpoint.npz"])
def test_a_directory_in_place_of_a_run_file_is_one_line_and_changes_nothing(capsys, tmp_path, hello_run, name):
    (hello_run / name).unlink()
    (hello_run / name).mkdir()
    saved = snapshot(hello_run)
    for args in [*commands(hello_run, tmp_path), ["train", "--resume", hello_run, "--steps", "5000000"]]:
        if args[0] == "spec" and name.endswith(".jsonl"):
            continue  # spec reads no log
        code, out, err = run(capsys, *args)
        assert code == 2 and out == "", (args, err)
        assert one_line(err) == f"rnnlab: error: cannot read {hello_run / name}: Is a directory", args
    assert snapshot(hello_run) == saved and (hello_run / name).is_dir()


def test_an_os_error_reading_a_checkpoint_is_not_called_damage():
    file = Path("r/checkpoint.npz")
    assert str(rundir._unreadable(file, PermissionError(errno.EACCES, "Permission denied"))) == \
        "cannot read r/checkpoint.npz: Permission denied"
    assert str(rundir._unreadable(file, OSError("bad magic"))) == \
        "r/checkpoint.npz is damaged and cannot be read: bad magic"
    assert str(rundir._unreadable(file, EOFError())) == \
        "r/checkpoint.npz is damaged and cannot be read: the file is empty or cut short"


# ---------------------------------------------------------------------------- log lines that are not records
STEP = {"step": 2, "loss": 1.0, "accuracy": 0.5, "grad_norm": 1.0, "clipped": False, "time": 0.1}
BAD_LINES = {"metrics.jsonl": ["5", '{"step": 1}', json.dumps(STEP | {"step": "1"}), json.dumps(STEP | {"clipped": 1}),
                               json.dumps(STEP | {"step": -1}), "null", '{"step": 3, "lo'],
             "evals.jsonl": ["[1]", '{"step": 1, "loss": "x", "accuracy": null}', '"text"', "{"]}
WHAT = {"metrics.jsonl": "a step record", "evals.jsonl": "an eval record"}


@pytest.mark.parametrize("name, bad", [(name, line) for name, lines in BAD_LINES.items() for line in lines])
def test_a_log_line_that_is_not_a_record_is_skipped_with_a_warning_like_a_torn_line(capsys, tmp_path, hello_run,
                                                                                     name, bad):
    """JSON that is not a record is treated as a line that is not JSON: every reader skips it,
    saying so in one line; a resume removes it (saying so), keeping the rest of the history."""
    from rnnlab.lab import Lab

    log = hello_run / name
    good = log.read_text().splitlines()
    evals = [json.loads(line)["step"] for line in (hello_run / "evals.jsonl").read_text().splitlines()]
    log.write_text("\n".join([good[0], bad, *good[1:]]) + "\n")  # line 2
    warning = f"rnnlab: warning: {log}: line 2 is not {WHAT[name]}: skipped"
    for args in [["bptt", hello_run, "--json"], ["trace", hello_run, "--out", tmp_path / "t.npz", "--force"],
                 ["sample", hello_run, "--length", "5"]]:
        code, out, err = run(capsys, *args)
        assert code == 0 and out, (args, err)
        assert one_line(err) == warning, args
    lab = Lab.open(hello_run)
    capsys.readouterr()
    assert [r.step for r in lab.history] == [1, 2, 3] and [r.step for r in lab.evals] == evals
    code, out, err = run(capsys, "train", "--resume", hello_run, "--steps", "5", "--json")
    assert code == 0 and json.loads(out)["step"] == 5, err
    assert f"rnnlab: warning: {log}: line 2 is not {WHAT[name]}: removed" in err.splitlines()
    lines = log.read_text().splitlines()
    assert bad not in lines and lines[:len(good)] == good
    code, _, err = run(capsys, "bptt", hello_run, "--json")
    assert code == 0 and "warning" not in err


def test_a_record_with_keys_rnnlab_does_not_know_is_read_and_kept(capsys, hello_run):
    log = hello_run / "metrics.jsonl"
    lines = log.read_text().splitlines()
    lines[1] = json.dumps(json.loads(lines[1]) | {"note": "mine"})
    log.write_text("\n".join(lines) + "\n")
    run_dir = rundir.RunDir.open(hello_run)
    assert [row["step"] for row in run_dir.read_metrics()] == [1, 2, 3] and "note" not in run_dir.read_metrics()[1]
    code, out, err = run(capsys, "bptt", hello_run, "--json")
    assert code == 0 and json.loads(out)["trained_steps"] == 3 and err == ""
    code, out, err = run(capsys, "train", "--resume", hello_run, "--steps", "4", "--json")
    assert code == 0 and "warning" not in err, err
    assert log.read_text().splitlines()[:3] == lines


def test_many_bad_lines_are_one_warning_per_file(capsys, hello_run):
    log = hello_run / "metrics.jsonl"
    log.write_text(log.read_text() + "x\n" * 7)
    rundir.RunDir.open(hello_run).read_metrics()
    assert one_line(capsys.readouterr().err) == (f"rnnlab: warning: {log}: lines 4, 5, 6, 7, 8, ... (7 in all) are "
                                                 "not step records: skipped")


# ---------------------------------------------------------------------------- a directory as the file to write
@pytest.mark.parametrize("args", [["trace", "hello", "--out", "{out}"], ["trace", "hello", "--out", "{out}", "--force"],
                                  ["esn", "--export", "{out}"], ["esn", "--export", "{out}", "--force"]])
def test_a_directory_given_as_the_npz_file_to_write_is_refused_at_once(capsys, tmp_path, args):
    out_dir = tmp_path / "dd.npz"
    out_dir.mkdir()
    code, out, err = run(capsys, *[a.format(out=out_dir) for a in args])
    assert code == 2 and out == ""
    what, example = ("trace file", "trace.npz") if args[0] == "trace" else ("export file", "esn.npz")
    assert one_line(err) == f"rnnlab: error: {out_dir} is a directory: name the {what} in it, e.g. {out_dir / example}"
    assert out_dir.is_dir() and not any(out_dir.iterdir())


@pytest.mark.parametrize("args", [["trace", "hello", "--out", "{out}"], ["esn", "--export", "{out}"]])
def test_a_directory_without_npz_given_as_the_file_to_write_is_named_a_directory(capsys, tmp_path, args):
    """'rnnlab esn --export /tmp' said 'export file must end in .npz: /tmp', as if a suffix were
    missing: a folder is named as one, with a file in it to give instead (the labs' wording)."""
    code, out, err = run(capsys, *[a.format(out=tmp_path) for a in args])
    what, example = ("trace file", "trace.npz") if args[0] == "trace" else ("export file", "esn.npz")
    assert code == 2 and out == ""
    said = f"{tmp_path} is a directory: name the {what} in it, e.g. {tmp_path / example}"
    assert one_line(err) == f"rnnlab: error: {said}"
    assert not any(tmp_path.iterdir())


def test_a_saved_spec_with_another_optimizers_setting_still_opens_with_it_at_its_default(capsys, hello_run):
    """rnnlab once ignored, say, momentum under adam; it refuses it in a spec now, but a run saved
    then must stay readable: the setting never took part, so it goes back to its default."""
    spec_file = hello_run / "spec.toml"
    text = spec_file.read_text(encoding="utf-8")
    assert 'optimizer = "adam"' in text and "momentum" not in text  # sgd's, which an older rnnlab wrote too
    spec_file.write_text(text.replace('optimizer = "adam"', 'optimizer = "adam"\nmomentum = 0.5'), encoding="utf-8")
    with pytest.raises(SpecError, match="train.momentum: only sgd uses momentum, not adam"):
        Spec.from_mapping({"train": {"optimizer": "adam", "momentum": 0.5}})
    assert rundir.RunDir.open(hello_run).spec.train.momentum == 0.9
    code, out, err = run(capsys, "bptt", hello_run)
    assert code == 0, err


def test_a_log_whose_last_record_lacks_its_newline_keeps_every_record_on_resume(capsys, hello_run):
    """A write cut just before its newline (or an editor): the next record must not join it."""
    metrics = hello_run / "metrics.jsonl"
    metrics.write_text(metrics.read_text(encoding="utf-8").rstrip("\n"), encoding="utf-8")
    code, _, err = run(capsys, "train", "--resume", hello_run, "--steps", "5")
    assert code == 0, err
    assert [row["step"] for row in rundir.RunDir.open(hello_run).read_metrics()] == [1, 2, 3, 4, 5]
    assert "not a step record" not in capsys.readouterr().err


def test_a_run_file_that_is_a_directory_is_refused_before_training(capsys, hello_run):
    """summary.json made a directory: the resume trained, saved its checkpoint, then failed to write
    the summary (exit 2 after the work); it is refused before any step now."""
    (hello_run / "summary.json").unlink()
    (hello_run / "summary.json").mkdir()
    saved = (hello_run / "checkpoint.npz").read_bytes()
    code, _, err = run(capsys, "train", "--resume", hello_run, "--steps", "5")
    assert code == 2 and f"{hello_run / 'summary.json'} is a directory: the run writes a file there" in err
    assert (hello_run / "checkpoint.npz").read_bytes() == saved


def test_a_run_spec_saved_with_a_byte_order_mark_is_read_and_listed(capsys, hello_run):
    """A run's spec.toml opened and saved in a Windows editor gains a BOM: every reader and the
    listing take it as the spec it still is (one function reads spec TOML: spec_toml)."""
    from rnnlab.train.runs import list_runs

    spec = hello_run / "spec.toml"
    spec.write_bytes(b"\xef\xbb\xbf" + spec.read_bytes())
    code, out, err = run(capsys, "bptt", hello_run, "--json", "--no-jacobians")
    assert code == 0 and json.loads(out)["trained_steps"] == 3, err
    [listed] = list_runs(hello_run)
    assert (listed.status, listed.problem) == ("completed", "")


# ---------------------------------------------------------------------------- what spec.toml keeps
SPEC_WITH_NOTES = """# baseline for the lecture: do not change the seed
name = "hello"
seed = 0

[train]
steps = 3  # short: a demo
learning_rate = 0.05
"""


def test_respelling_a_spec_keeps_its_comments_and_order_and_edits_only_the_changed_values():
    from rnnlab.spec import parse_spec, respelt_spec, spec_toml

    noted = parse_spec(SPEC_WITH_NOTES, source="notes", base_dir=None)
    assert respelt_spec(SPEC_WITH_NOTES, noted) != SPEC_WITH_NOTES  # the defaults it leaves out: written whole
    whole = noted.to_toml()
    commented = whole.replace("steps = 3\n", "steps = 3  # short: a demo\n", 1).replace(
        'name = "hello"', '# the baseline\nname = "hello"  # kept # as written', 1)
    assert respelt_spec(commented, noted) == commented
    longer = noted.with_overrides({"train.steps": 40})
    respelt = respelt_spec(commented, longer)
    assert respelt == commented.replace("steps = 3  # short", "steps = 40  # short", 1)
    assert spec_toml(respelt) == spec_toml(longer.to_toml())
    # a key quoted, or a value spelt over several lines, is not respelt line by line: written whole
    quoted = commented.replace("steps = 3  #", '"steps" = 3  #', 1)
    assert spec_toml(quoted) == spec_toml(commented)
    assert respelt_spec(quoted, longer) == longer.to_toml()
    spread = commented.replace('name = "hello"', 'name = """\nhello"""', 1)
    assert spec_toml(spread) == spec_toml(commented)
    renamed = noted.with_overrides({"name": "other"})
    assert respelt_spec(spread, renamed) == renamed.to_toml()
    assert respelt_spec("not = [toml", longer) == longer.to_toml()


def test_resuming_to_more_steps_edits_the_steps_in_a_commented_spec_toml_and_nothing_else(capsys, hello_run):
    spec = hello_run / "spec.toml"
    noted = "# my notes on this run\n" + spec.read_text().replace("steps = 3\n", "steps = 3  # a demo\n", 1)
    spec.write_text(noted)
    code, _, err = run(capsys, "train", "--resume", hello_run, "--steps", "5")
    assert code == 0, err
    assert spec.read_text() == noted.replace("steps = 3  # a demo", "steps = 5  # a demo", 1)


def test_training_a_run_past_its_steps_from_the_api_records_them_in_its_spec(tmp_path):
    from rnnlab.spec import load_spec
    from rnnlab.train import RunDir, Trainer, train_run

    spec = load_spec("hello").with_overrides({"train.steps": 2})
    run = RunDir.create(tmp_path / "api", spec)
    trainer = Trainer(spec)
    train_run(run, trainer, 2)
    train_run(run, trainer, 4)
    assert RunDir.open(tmp_path / "api").spec.train.steps == 4 == run.spec.train.steps
    assert json.loads((tmp_path / "api" / "summary.json").read_text())["step"] == 4


def test_resume_notes_another_thread_count_only_when_it_trains(capsys, hello_run, monkeypatch):
    """A run trained with other kernel threads drifts from its uninterrupted self, bit for bit: said
    when the resume trains, not when there is nothing to train."""
    from rnnlab.kernels import kernel_threads
    from rnnlab.train import rundir as rundir_module

    trained = kernel_threads()
    real = rundir_module.environment
    monkeypatch.setattr(rundir_module, "environment", lambda: {**real(), "threads": trained + 5})
    code, out, err = run(capsys, "train", "--resume", hello_run)
    assert code == 0 and "kernel thread" not in err and "nothing to train" in err
    code, out, err = run(capsys, "train", "--resume", hello_run, "--steps", "5")
    threads = f"{trained} kernel thread{'' if trained == 1 else 's'}"
    assert code == 0 and (f"rnnlab: note: {hello_run} was trained with {threads}, this process has {trained + 5} "
                          "(NUMBA_NUM_THREADS") in err, err


# ---------------------------------------------------------------------------- the clock and the speed
def test_a_resumed_run_keeps_its_training_clock_and_says_its_speed(capsys, hello_run):
    """Nothing checked that a resume carries the checkpoint's elapsed time on (the logs' ``time``, the
    summary's ``seconds``), nor that ``steps_per_second`` is steps over seconds."""
    with np.load(hello_run / "checkpoint.npz") as data:
        saved = float(data["elapsed"])
    assert saved > 0
    code, out, err = run(capsys, "train", "--resume", hello_run, "--steps", "5", "--json")
    assert code == 0, err
    summary = json.loads(out)
    times = [json.loads(line)["time"] for line in (hello_run / "metrics.jsonl").read_text().splitlines()]
    assert times == sorted(times) and times[3] > saved  # step 4 goes on from step 3's clock
    assert summary["seconds"] >= saved
    seconds = summary["seconds"]  # (rounded to the millisecond)
    assert summary["step"] / (seconds + 5e-4) <= summary["steps_per_second"] <= summary["step"] / (seconds - 5e-4)


@pytest.mark.parametrize("failing", ["spec.toml", "evals.jsonl"])
def test_a_new_run_that_cannot_write_its_first_files_leaves_no_empty_run_behind(capsys, monkeypatch, tmp_path,
                                                                                  failing):
    """A full disk as training starts: the run directory made for it was left, empty or holding a spec
    never trained (runs/ filling with them at every retry, each listed "untrained"); a folder the user
    made for it (--out) stays, emptied."""
    touch, atomic_file = Path.touch, rundir.atomic_file

    def full_disk(path: Path, *args, **kwargs):
        if path.name == failing:  # (atomic_file names the file itself, as a failed write does)
            error = OSError(errno.ENOSPC, "No space left on device")
            raise error if path.name.endswith(".jsonl") else fsio.write_error(path, error)
        return (touch if path.name.endswith(".jsonl") else atomic_file)(path, *args, **kwargs)

    monkeypatch.setattr(Path, "touch", full_disk)
    monkeypatch.setattr(rundir, "atomic_file", full_disk)
    made, given = tmp_path / "runs" / "new", tmp_path / "given"
    given.mkdir()
    for run_dir in (made, given):
        code, out, err = run(capsys, "train", "hello", "--steps", "3", "--out", run_dir)
        assert code == 1 and out == "", err
        assert one_line(err) == f"rnnlab: error: cannot write {run_dir}/{failing}: No space left on device"
    assert not made.exists() and (tmp_path / "runs").is_dir() and list(given.iterdir()) == []


def test_a_run_stopped_between_its_last_checkpoint_and_its_summary_is_completed_by_its_resume(capsys, hello_run):
    """Killed (or out of room) after its last checkpoint, before its summary: listed "interrupted",
    which --resume continues, and --resume said "nothing to train", leaving it interrupted for good."""
    from rnnlab.train.runs import read_listing

    summary = json.loads((hello_run / "summary.json").read_text())
    (hello_run / "summary.json").unlink()
    assert read_listing(hello_run).status == "interrupted"
    code, out, err = run(capsys, "train", "--resume", hello_run, "--json")
    assert code == 0, err
    assert one_line(err) == (f"rnnlab: {hello_run} had trained all its 3 steps when it was stopped: its summary.json "
                             "is written now (completed)")
    assert json.loads(out) == summary == json.loads((hello_run / "summary.json").read_text())
    assert read_listing(hello_run).status == "completed"
    # one edited to fewer steps than it trained is not called completed (nor one halfway: the test above)
    steps = (hello_run / "spec.toml").read_text()
    (hello_run / "summary.json").unlink()
    (hello_run / "spec.toml").write_text(steps.replace("steps = 3\n", "steps = 2\n"))
    code, _, err = run(capsys, "train", "--resume", hello_run)
    assert code == 0 and "nothing to train" in err and not (hello_run / "summary.json").exists()
