"""The Lab: cursors, BPTT stepping, training in a thread, reconfiguring, saving, exporting."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from rnnlab.errors import RunDirError, SpecError, UserError
from rnnlab.lab import Lab
from rnnlab.spec import load_preset
from rnnlab.train import RunDir, StepRecord, Trainer, train_run


@pytest.fixture
def lab():
    return Lab.open("hello")


def test_forward_cursor_moves_and_clamps(lab):
    assert lab.steps == 4 and lab.cursor == 0
    assert [lab.step_forward() for _ in range(6)] == [1, 2, 3, 4, 4, 4]
    assert lab.step_back() == 3
    assert lab.jump_start() == 0 and lab.jump_end() == 4
    assert lab.move_to(-5) == 0 and lab.move_to(2) == 2 and lab.move_to(99) == 4


def test_revealed_columns_equal_stepping_the_cell_one_step_at_a_time(lab):
    """The lab shows the whole-sequence trace one column at a time: the same numbers as running
    the cell step by step with the carried state."""
    x = lab.sequence.x.astype(np.float32)
    state = None
    for t in range(lab.steps):
        _, state, step_trace = lab.model.rnn.forward(x[t : t + 1], state)
        np.testing.assert_allclose(step_trace.get("h")[0], lab.trace.get("h")[t], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(step_trace.get("c")[0], lab.trace.get("c")[t], rtol=1e-6, atol=1e-7)


def test_bptt_steps_from_T_down_and_fills_dh(lab):
    assert lab.bptt_cursor is None
    assert [lab.bptt_step() for _ in range(5)] == [3, 2, 1, 0, 0]
    norms = lab.gradient_norms()
    assert norms.shape == (1, 4) and np.all(norms > 0)
    lab.regenerate()  # a new sequence invalidates the backward pass
    assert lab.bptt_cursor is None


def test_typed_sequence_and_its_errors(lab):
    lab.sequence_from_text("hell")
    assert lab.steps == 3
    assert lab.task.target_tokens(lab.sequence) == ["e", "l", "l"]
    with pytest.raises(UserError, match="'z'"):
        lab.sequence_from_text("hez")
    assert lab.steps == 3  # unchanged after the error
    adding = Lab.open("adding-rnn")  # another task's syntax, its one-line message
    with pytest.raises(UserError, match=r"value 1 \('abc'\) is not a number"):
        adding.sequence_from_text("abc")
    two_scales = Lab.open("multiscale-rnn")  # a decomposition: nothing to type
    with pytest.raises(UserError, match="takes no typed text"):
        two_scales.sequence_from_text("abc")


def test_an_edited_model_shows_the_sequence_the_lab_showed():
    """Edited (the TUI's e), a model is compared with the one before on the same sequence: the same
    draw after n, the same typed text where the task is unchanged (it was the task's first draw, a
    pinned curve beside one of another sequence)."""
    lab = Lab.open("hello")
    lab.regenerate()
    lab.regenerate()
    edited = Lab(lab.spec.with_overrides({"model.hidden_size": 16}))
    assert edited.show_sequence_of(lab) == ""
    assert edited.sequence_seed == lab.sequence_seed and not edited.sequence_typed
    np.testing.assert_array_equal(edited.sequence.x, lab.sequence.x)

    lab.sequence_from_text("hell")
    edited = Lab(lab.spec.with_overrides({"model.cell": "gru"}))
    assert edited.show_sequence_of(lab) == ""
    assert edited.sequence_text == "hell" and edited.steps == 3
    np.testing.assert_array_equal(edited.sequence.x, lab.sequence.x)
    assert edited.sequence_seed == lab.sequence_seed  # n goes on from the same draw as it would have

    other_task = Lab(lab.spec.with_overrides({"task.text": "abcabc"}))  # 'h' is no longer a character of it
    assert other_task.show_sequence_of(lab) == "the task changed: its draw, not the typed sequence"
    assert not other_task.sequence_typed and other_task.sequence_seed == lab.sequence_seed


def test_training_in_a_thread_pauses_resumes_and_stops(lab):
    lab.reconfigure({"train.steps": 100000})
    worker = threading.Thread(target=lab.train)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while len(lab.history) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        lab.pause_training()
        while lab.training_status != "paused" and time.monotonic() < deadline:  # the step under way ends first
            time.sleep(0.01)
        assert lab.training_status == "paused"
        paused_at = len(lab.history)
        time.sleep(0.2)
        assert len(lab.history) == paused_at  # no step while paused
        lab.resume_training()
        while len(lab.history) < paused_at + 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(lab.history) >= paused_at + 5
        with pytest.raises(UserError, match="stop training"):
            lab.reconfigure({"model.cell": "gru"})
    finally:
        lab.stop_training()
        worker.join(30)
    assert lab.training_status == "stopped"
    steps = [r.step for r in lab.history]
    assert steps == list(range(1, len(steps) + 1))
    assert lab.trainer.step == steps[-1]


def test_training_to_the_end_learns_hello(lab):
    assert lab.train() == "completed"
    lab.refresh()
    assert lab.evaluation.accuracy == 1.0
    assert lab.evals and lab.evals[-1].step == lab.spec.train.steps
    # training again continues for another spec.train.steps
    lab.reconfigure({"train.steps": 10})
    lab.train()
    assert lab.trainer.step == 10
    lab.train()
    assert lab.trainer.step == 20


def test_reconfigure_validates_and_keeps_the_old_experiment_on_error(lab, monkeypatch):
    with pytest.raises(SpecError, match="model.hidden_size"):
        lab.reconfigure({"model.hidden_size": 0})
    assert lab.spec.model.hidden_size == 16
    import rnnlab.spec

    monkeypatch.setattr(rnnlab.spec, "physical_memory", lambda: 24 * 2**30)  # this machine's, whatever CI has
    with pytest.raises(SpecError, match="needs about"):  # refused by the view's memory check: nothing changes
        lab.reconfigure({"task.kind": "adding", "task.length": 100_000, "model.hidden_size": 8192})
    assert lab.spec.model.hidden_size == 16 and lab.trainer.spec is lab.spec
    lab.reconfigure({"model.cell": "gru", "model.hidden_size": 8})
    assert lab.model.cell == "gru" and lab.trace.get("z").shape == (4, 1, 8)


def test_save_run_then_reopen_continues_the_history(lab, tmp_path):
    lab.reconfigure({"train.steps": 12})
    lab.train()
    path = lab.save_run(tmp_path / "run")
    run = RunDir.open(path)
    assert [json.loads(line)["step"] for line in (path / "metrics.jsonl").read_text().splitlines()] == list(range(1, 13))
    reopened = Lab(run.spec, run)
    assert reopened.trainer.step == 12 and len(reopened.history) == 12
    for name, value in lab.model.parameters().items():
        np.testing.assert_array_equal(reopened.model.parameters()[name], value)
    assert lab.save_run() == path  # the same run the second time


def test_a_reopened_run_trains_rounds_of_the_steps_it_was_made_with(lab, tmp_path):
    """t past a finished run trained its spec's steps more; a save wrote the grown count into the
    spec, so after each save and reopen the round doubled (12, 24, 48, ...)."""
    lab.reconfigure({"train.steps": 4})
    lab.train()
    lab.train()  # a round more: 8
    path = lab.save_run(tmp_path / "run")
    assert RunDir.open(path).spec.train.steps == 8
    reopened = Lab.open(path)
    assert reopened.more_steps == 4 and reopened.next_train_target() == 12
    assert reopened.training_status == "completed"  # as its session said it (it read "idle")
    reopened.train()
    assert reopened.trainer.step == 12
    reopened.save_run()
    again = Lab.open(path)
    assert again.spec.train.steps == 12 and again.next_train_target() == 16
    run = RunDir.open(path)  # rnnlab train --resume to more steps keeps the round too
    trainer = Trainer(run.spec.with_overrides({"train.steps": 14}), again.task)
    run.resume(trainer)
    run.spec = trainer.spec
    train_run(run, trainer, 14)
    assert Lab.open(path).next_train_target() == 18
    lab.reconfigure({"train.steps": 3})  # another experiment: its own round
    assert lab.more_steps == 3


def test_a_run_killed_between_its_checkpoint_and_that_steps_evaluation_gets_it_from_the_lab_as_from_a_resume(
        lab, tmp_path):
    """Logs are flushed at a checkpoint, before that step's evaluation: a run killed between them
    lacks it. `rnnlab train --resume` evaluated it before going on; the lab's t did not, and its
    saved run lacked that row (10, 30, 40 where the resume wrote 10, 20, 30, 40)."""
    import shutil

    lab.reconfigure({"train.steps": 4, "train.eval_every": 2, "train.checkpoint_every": 2})
    lab.train()
    killed = lab.save_run(tmp_path / "killed")
    evals = killed / "evals.jsonl"
    evals.write_text("".join(evals.read_text().splitlines(keepends=True)[:-1]))  # the step-4 evaluation lost
    shutil.copytree(killed, tmp_path / "resumed")
    resumed = RunDir.open(tmp_path / "resumed")
    trainer = Trainer(resumed.spec.with_overrides({"train.steps": 8}), lab.task)
    resumed.resume(trainer)
    resumed.spec = trainer.spec
    train_run(resumed, trainer, 8)
    reopened = Lab.open(killed)
    reopened.train()  # to 8, the round it was made with
    reopened.save_run()
    steps = [[json.loads(line)["step"] for line in (path / "evals.jsonl").read_text().splitlines()]
             for path in (killed, tmp_path / "resumed")]
    assert steps[0] == steps[1] == [2, 4, 6, 8]


def test_a_save_waits_for_the_step_that_holds_the_labs_lock(lab, tmp_path):
    """save_run takes the lab's lock, so that it never writes weights halfway through an update: a
    save without it passed every test."""
    import threading

    from conftest import held_by_another_thread

    lab.reconfigure({"train.steps": 2})
    lab.train()
    saver = threading.Thread(target=lab.save_run, args=(tmp_path / "run",))
    with held_by_another_thread(lab.lock):  # a step under way
        saver.start()
        saver.join(0.3)
        assert saver.is_alive() and not (tmp_path / "run").exists()  # waiting for the step
    saver.join(30)
    assert not saver.is_alive() and (tmp_path / "run" / "checkpoint.npz").is_file()


def test_t_after_a_stop_finishes_the_round_it_stopped(lab):
    """Stopped (s) in a second round (300 -> 600, at 452), t trained a round more from there, to 752,
    while the first round's stop went on to its end, and the run saved said 452 of 600."""
    lab.reconfigure({"train.steps": 4})
    lab.train()
    assert lab.train(should_stop=lambda: lab.trainer.step >= 6) == "stopped" and lab.trainer.step == 6
    assert lab.next_train_target() == 8 and lab.spec_as_trained.train.steps == 8
    lab.train()
    assert lab.trainer.step == 8 and lab.next_train_target() == 12


def test_unsaved_steps_count_what_quitting_would_lose(lab, tmp_path):
    lab.reconfigure({"train.steps": 6})
    assert lab.unsaved_steps == 0  # untrained: nothing to lose
    lab.train()
    assert lab.unsaved_steps == 6
    path = lab.save_run(tmp_path / "run")
    assert lab.unsaved_steps == 0
    reopened = Lab(RunDir.open(path).spec, RunDir.open(path))
    assert reopened.unsaved_steps == 0  # what is on disk is saved
    reopened.train(until_step=9)
    assert reopened.unsaved_steps == 3
    reopened.reconfigure({"model.hidden_size": 8})  # a new, untrained model
    assert reopened.unsaved_steps == 0


def test_a_save_never_replaces_a_run_trained_further_by_another_process(lab, tmp_path):
    """The lab reopened a run; `rnnlab train --resume` took it further meanwhile. ctrl+s must not
    put the run back to the lab's step: it saves to a new run and says which one it left alone."""
    lab.reconfigure({"train.steps": 6})
    lab.train()
    path = lab.save_run(tmp_path / "run")
    opened = Lab(RunDir.open(path).spec, RunDir.open(path))
    further = Lab(RunDir.open(path).spec, RunDir.open(path))  # the other process
    further.train(until_step=9)
    further.save_run()
    before = {name: (path / name).read_bytes() for name in ("checkpoint.npz", "metrics.jsonl", "spec.toml")}
    elsewhere = opened.save_run(tmp_path / "new")
    assert elsewhere == tmp_path / "new" and opened.diverted_from == path
    assert {name: (path / name).read_bytes() for name in before} == before  # left as the other left it
    assert opened.save_run() == elsewhere and opened.diverted_from is None  # its own new run from then on


def test_a_run_saved_before_any_step_is_listed_untrained(tmp_path):
    """ctrl+s at step 0 wrote the status "stopped", as if training had been interrupted."""
    from rnnlab.train.runs import list_runs

    path = Lab.open("hello").save_run(tmp_path / "run")
    assert json.loads((path / "summary.json").read_text())["status"] == "untrained"
    assert [(r.status, r.step) for r in list_runs(tmp_path)] == [("untrained", 0)]


def test_a_run_whose_checkpoint_is_gone_is_refused_and_a_save_leaves_it_alone(lab, tmp_path):
    """Its log tells of training whose weights are gone: opened, the lab held untrained weights as if
    they were the run's (and ctrl+s emptied metrics.jsonl and evals.jsonl for them). It is refused,
    as `rnnlab runs` lists it damaged; a lab holding it when the checkpoint went saves elsewhere."""
    lab.reconfigure({"train.steps": 6, "train.eval_every": 3})
    lab.train()
    path = lab.save_run(tmp_path / "run")
    opened = Lab.open(path)
    (path / "checkpoint.npz").unlink()
    before = {name.name: name.read_bytes() for name in path.iterdir() if name.is_file()}
    with pytest.raises(RunDirError, match=r"has no checkpoint.npz: the weights of step 6 are gone \(its experiment "
                                          r"from the start: .*spec.toml\)$"):
        RunDir.open(path)
    elsewhere = opened.save_run(tmp_path / "new")
    assert elsewhere == tmp_path / "new" and opened.diverted_from == path
    assert opened.diverted_because == "changed on disk since this lab read it"
    assert {name.name: name.read_bytes() for name in path.iterdir() if name.is_file()} == before
    assert opened.save_run() == elsewhere and opened.diverted_from is None  # its own run from then on
    untrained = RunDir.create(tmp_path / "fresh", lab.spec)  # made, never trained: nothing to lose
    assert Lab(lab.spec, untrained).save_run() == untrained.path


def test_the_lab_refuses_to_train_a_run_whose_spec_was_edited_since_its_checkpoint(lab, tmp_path):
    """As `rnnlab train --resume` refuses it: trained on, the run would no longer say how it trained."""
    lab.reconfigure({"train.steps": 3})
    lab.train()
    path = lab.save_run(tmp_path / "run")
    spec = path / "spec.toml"
    spec.write_text(spec.read_text().replace("seed = 0", "seed = 7"))
    edited = Lab.open(path)
    with pytest.raises(UserError, match=r"spec.toml changed since its checkpoint was trained \(seed: 0 -> 7\): put "
                                        r"it back and open the run again \(o\)$"):
        edited.train(until_step=4)
    assert edited.trainer.step == 3 and not edited.training


def test_a_save_with_nothing_new_leaves_the_run_as_it_is(lab, tmp_path):
    """ctrl+s on a run opened and not trained rewrote every file: the summary, left as it was, went
    stale ("completed" listed "interrupted"), and a spec.toml edited since the checkpoint was stamped
    into it, so resuming with the true settings was refused."""
    from rnnlab.train.runs import list_runs

    lab.reconfigure({"train.steps": 3})
    lab.train()
    path = lab.save_run(tmp_path / "run")
    spec = path / "spec.toml"
    spec.write_text(spec.read_text().replace("seed = 0", "seed = 7"))
    files = {name.name: (name.read_bytes(), name.stat().st_mtime_ns) for name in path.iterdir() if name.is_file()}
    opened = Lab.open(path)
    assert opened.nothing_to_save and opened.save_run() == path
    assert files == {name.name: (name.read_bytes(), name.stat().st_mtime_ns)
                     for name in path.iterdir() if name.is_file()}
    assert [r.status for r in list_runs(tmp_path)] == ["completed"]
    assert RunDir.open(path).changed_settings() == ["seed: 0 -> 7"]
    lab.train(until_step=4)
    assert not lab.nothing_to_save  # a step trained since its save


def test_saving_a_run_trained_further_keeps_the_comments_of_its_spec_toml(lab, tmp_path):
    """Each save wrote spec.toml whole: a note typed into it was gone after ctrl+s. Now the values
    that changed (the steps trained toward) are respelt in place, the rest kept as written."""
    lab.reconfigure({"train.steps": 3})
    lab.train()
    path = lab.save_run(tmp_path / "run")
    spec = path / "spec.toml"
    noted = "# lr sweep, run 1\n" + spec.read_text().replace("steps = 3\n", "steps = 3  # short\n", 1)
    spec.write_text(noted)
    opened = Lab.open(path)
    opened.train()  # past its 3 steps: another 3
    assert opened.save_run() == path
    assert spec.read_text() == noted.replace("steps = 3  # short", "steps = 6  # short", 1)


def test_a_save_leaves_a_run_alone_while_another_process_writes_it(lab, tmp_path):
    """Between its checkpoints a `rnnlab train --resume` has not moved the checkpoint yet: the
    run's writer lock (and its growing metrics) still send the lab's save elsewhere."""
    lab.reconfigure({"train.steps": 4})
    lab.train()
    path = lab.save_run(tmp_path / "run")
    lab.train(until_step=5)  # something new to save
    with RunDir.open(path).writing() as held:  # the other process, mid-run
        assert held
        assert lab.save_run(tmp_path / "elsewhere") == tmp_path / "elsewhere" and lab.diverted_from == path
    reopened = Lab(RunDir.open(path).spec, RunDir.open(path))
    other = RunDir.open(path)
    other.record(StepRecord(**json.loads((path / "metrics.jsonl").read_text().splitlines()[-1]) | {"step": 5}))
    other.flush()  # a step logged, not yet checkpointed
    assert reopened.save_run(tmp_path / "third") == tmp_path / "third" and reopened.diverted_from == path
    from rnnlab.train.rundir import train_run

    with RunDir.open(path).writing():  # and training refuses a run a lab is saving
        with pytest.raises(UserError, match="being written by another rnnlab process"):
            train_run(RunDir.open(path), reopened.trainer, 10)


def test_a_save_records_what_training_ran_toward_and_a_divergence(lab, tmp_path):
    lab.reconfigure({"train.steps": 4})
    lab.train()
    lab.train()  # done, so another train.steps: toward 8
    path = lab.save_run(tmp_path / "run")
    summary = json.loads((path / "summary.json").read_text())
    assert summary["step"] == summary["steps"] == 8 and summary["status"] == "completed"
    assert RunDir.open(path).spec.train.steps == 8
    diverging = Lab(load_preset("sine").with_overrides({
        "train.steps": 30, "model.hidden_size": 8, "model.cell": "rnn", "model.nonlinearity": "relu",
        "train.clip_norm": 0.0, "train.optimizer": "sgd", "train.learning_rate": 10.0, "train.momentum": 0.0}))
    assert diverging.train() == "diverged"
    assert not diverging.nothing_to_save
    path = diverging.save_run(tmp_path / "diverged")
    assert json.loads((path / "summary.json").read_text())["status"] == "diverged"
    assert diverging.nothing_to_save  # recorded
    reopened = Lab.open(path)  # its status says so, and a save has nothing new to write (it rewrote the run,
    assert reopened.training_status == "diverged" and reopened.nothing_to_save  # spec.toml's edits included)


def test_a_bidirectional_character_model_refuses_to_sample():
    """Its reverse direction read each step's next character in training (a fake 100%), so one
    character at a time it would generate garbage."""
    lab = Lab(load_preset("hello").with_overrides({"model.bidirectional": True}))
    with pytest.raises(UserError, match="bidirectional"):
        lab.sample("he", 5)
    assert Lab(load_preset("hello")).sample("he", 5).startswith("he")


def test_refresh_drops_the_backward_pass_unless_asked_to_keep_it(lab):
    """While training, the lab refreshes the bench sequence's pass with the new weights; a BPTT
    view under way is recomputed with the same steps revealed instead of being thrown away."""
    lab.bptt_step(), lab.bptt_step()
    before = lab.trace["dh"].copy()
    with lab.lock:  # other weights, as a training step would leave them
        lab.model.load_state_dict({k: 1.1 * v for k, v in lab.model.state_dict().items()})
    lab.refresh(keep_bptt=True)
    assert lab.bptt_cursor == 2 and "dh" in lab.trace.names
    assert not np.allclose(lab.trace["dh"], before)  # of the new weights
    lab.refresh()
    assert lab.bptt_cursor is None


def test_export_trace_writes_every_record(lab, tmp_path):
    path = lab.export_trace(tmp_path / "t.npz")  # backward not run yet: the export runs it
    with np.load(path, allow_pickle=False) as data:
        assert {"h", "c", "i", "f", "g", "o", "dh", "x", "y", "mask", "outputs", "meta"} <= set(data.files)
        assert np.abs(data["dh"]).max() > 0
    assert lab.bptt_cursor is None  # computed for the file, not revealed in the views
    with pytest.raises(UserError, match=".npz"):
        lab.export_trace(tmp_path / "t.csv")
    lab.sequence_from_text("hell")  # a typed sequence is said to be one: nothing else tells it from a draw
    with np.load(lab.export_trace(tmp_path / "typed.npz"), allow_pickle=False) as data:
        assert json.loads(str(data["meta"]))["sequence"] == {"typed": "hell"}


@pytest.mark.parametrize("cell", ["mingru", "minlstm", "lru"])
def test_the_linear_recurrences_open_step_train_save_and_export(cell, tmp_path):
    spec = load_preset(f"selective-copy-{'lru' if cell == 'lru' else 'mingru'}").with_overrides({
        "model.cell": cell, "model.hidden_size": 6, "model.num_layers": 2, "model.scan": "scan",
        "task.length": 11, "task.tokens": 3, "train.steps": 4, "train.batch_size": 4, "train.eval_batch_size": 4})
    lab = Lab(spec)
    assert lab.steps == 11 and lab.model.rnn.method == "scan"
    assert [lab.step_forward() for _ in range(3)] == [1, 2, 3]
    assert lab.bptt_step() == 10
    norms = lab.gradient_norms()
    assert norms.shape == (2, 11) and np.all(np.isfinite(norms)) and norms[:, -1].min() > 0
    jac = lab.jacobian_norms()
    a = lab.unit_decays(1)
    if cell == "lru":  # input-independent: lambda itself, inside the unit circle
        np.testing.assert_allclose(a, lab.model.rnn.eigenvalues()[1], rtol=1e-6)
        np.testing.assert_allclose(jac["norm"][1], np.abs(a).max(), rtol=1e-6)  # the same at every step
    else:  # set by each input: 1 - z_t or f'_t, averaged over the steps
        assert a.dtype == np.float64 and np.all((a > 0) & (a < 1))
        assert np.ptp(jac["norm"][0]) > 0
    assert np.all(np.abs(a) < 1) and a.shape == (6,)
    assert lab.train() == "completed" and lab.trainer.step == 4
    lab.refresh()
    lab.run_backward()
    arrays = lab.trace_arrays()
    assert arrays["h"].shape == (2, 11, 1, 6) and ("lambda" in arrays) == (cell == "lru")
    if cell == "lru":
        np.testing.assert_allclose(arrays["lambda"], lab.model.rnn.eigenvalues(), rtol=1e-6)
        assert {"h_im", "h_abs", "dh_re", "dh_im"} <= set(arrays)
    path = lab.export_trace(tmp_path / "t.npz")
    with np.load(path, allow_pickle=False) as data:
        assert set(arrays) == set(data.files)
    # the checkpoint holds the new parameters by name and a reopened lab has the same weights
    reopened = Lab.open(lab.save_run(tmp_path / "run"))
    assert reopened.trainer.step == 4 and reopened.spec.model.scan == "scan"
    for name, value in lab.model.parameters().items():
        np.testing.assert_array_equal(reopened.model.parameters()[name], value)
    lab.reconfigure({"model.cell": "gru", "model.scan": "sequential"})
    assert lab.unit_decays() is None


def test_a_character_model_with_a_complex_state_samples(tmp_path):
    lab = Lab(load_preset("hello").with_overrides({"model.cell": "lru", "train.steps": 150}))
    lab.train()
    assert lab.model.zero_state(1).dtype == np.complex64
    assert lab.sample("h", 4, temperature=0.01) == "hello"


# ---------------------------------------------------------------------------- self-attention
def _attention_lab(**overrides) -> Lab:
    spec = load_preset("adding-attention").with_overrides({
        "task.length": 12, "model.hidden_size": 8, "model.num_heads": 2, "model.num_layers": 2,
        "train.steps": 4, "train.batch_size": 4, "train.eval_batch_size": 4, **overrides})
    return Lab(spec)


def test_attention_lab_reveals_what_a_causal_step_by_step_run_computes():
    from rnnlab.analysis import NotRecurrentError

    lab = _attention_lab()
    assert lab.is_attention and lab.num_heads == 2 and lab.num_directions == 1
    assert set(lab.trace.names) == {"h", "z", "attn", "q", "k", "v"}
    x = lab.sequence.x
    for t in (1, 5, 12):  # the prefix of t steps gives the same rows: nothing later leaks back
        _, _, prefix = lab.model.forward(x[:t])
        for name in ("h", "z"):
            np.testing.assert_allclose(prefix.get(name, 1), lab.trace.get(name, 1)[:t], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(prefix.attention(0, 0, 1), lab.attention_map(0, 1)[:t, :t], rtol=1e-5, atol=1e-7)
    attn = lab.attention_map(1, 0)
    assert attn.shape == (12, 12) and np.allclose(attn.sum(axis=1), 1.0)
    assert np.all(np.triu(attn, 1) == 0)  # causal: no step attends to a later one
    # the outputs the lab shows are the model's own
    out, _, _ = lab.model.forward(x)
    np.testing.assert_allclose(lab.evaluation.outputs, out, rtol=1e-6)
    # what only a recurrence has is refused by name, and nothing else breaks
    with pytest.raises(NotRecurrentError, match="no meaning for self-attention"):
        lab.jacobian_norms()
    assert lab.unit_decays() is None
    with pytest.raises(UserError, match="no attention maps"):
        Lab.open("hello").attention_map()


def test_attention_lab_backward_is_revealed_from_T_and_refuses_truncation():
    lab = _attention_lab()
    assert [lab.bptt_step() for _ in range(3)] == [11, 10, 9]
    norms = lab.gradient_norms()
    assert norms.shape == (2, 12) and np.all(np.isfinite(norms))
    assert norms[1, -1] > 0 and norms[1, :-1].max() < 1e-3 * norms[1, -1]  # the loss reads only the last output
    assert norms[0, :].min() > 0  # ... which attends to every earlier step: all of them get a gradient at once
    with pytest.raises(UserError, match="truncate 3: selfattention has no recurrence"):
        lab.run_backward(3)
    assert lab.bptt_cursor == 9  # unchanged


def test_attention_lab_refuses_a_sequence_longer_than_the_task_and_keeps_its_own():
    lab = Lab(load_preset("hello").with_overrides({"model.cell": "selfattention"}))
    with pytest.raises(UserError, match="has 9 steps but .* covers the task's length, 4 steps"):
        lab.sequence_from_text("hellohello")
    assert lab.steps == 4
    lab.sequence_from_text("hel")
    assert lab.steps == 2 and lab.attention_map().shape == (2, 2)


def test_attention_lab_trains_saves_reopens_and_exports(tmp_path):
    lab = _attention_lab()
    assert lab.train() == "completed" and lab.trainer.step == 4
    lab.refresh()
    lab.run_backward()
    arrays = lab.trace_arrays()
    assert arrays["attn"].shape == (2, 1, 2, 12, 12) and arrays["q"].shape == (2, 12, 1, 2, 4)
    assert arrays["h"].shape == arrays["z"].shape == arrays["dh"].shape == (2, 12, 1, 8)
    meta = json.loads(str(arrays["meta"]))
    assert meta["cell"] == "selfattention" and meta["num_heads"] == 2 and meta["causal"] is True
    assert "attn is (num_layers, B, heads, T_query, T_key)" in meta["layout"]
    path = lab.export_trace(tmp_path / "t.npz")
    with np.load(path, allow_pickle=False) as data:
        assert set(arrays) == set(data.files)
    reopened = Lab.open(lab.save_run(tmp_path / "run"))
    assert reopened.trainer.step == 4 and reopened.is_attention and len(reopened.history) == 4
    for name, value in lab.model.parameters().items():
        np.testing.assert_array_equal(reopened.model.parameters()[name], value)
    np.testing.assert_array_equal(reopened.attention_map(1, 1), lab.attention_map(1, 1))


def test_a_causal_attention_character_model_samples_through_a_sliding_window():
    lab = Lab(load_preset("hello").with_overrides({"model.cell": "selfattention", "train.steps": 150}))
    lab.train()
    assert lab.model.max_len == 4
    assert lab.sample("h", 4, temperature=0.01) == "hello"
    assert lab.sample("hell", 1, temperature=0.01) == "hello"
    assert len(lab.sample("hello", 20)) == 25  # far past the 4 steps its positions cover: a window of the last 4
    non_causal = Lab(load_preset("hello").with_overrides({"model.cell": "selfattention", "model.bidirectional": True}))
    with pytest.raises(UserError, match="not causal"):
        non_causal.sample("h", 3)


def exploding_lab() -> Lab:
    """An untrained rnn whose W_hh is 10 x orthogonal: dL/dh_t grows fast back in time (its units
    mostly saturated, their slopes small) and overflows float32 tens of steps before t = 1 (where
    depends on the last bits of every saturated slope), while the forward pass stays finite."""
    spec = load_preset("sine").with_overrides({"model.cell": "rnn", "model.hidden_size": 32, "task.length": 200})
    lab = Lab(spec)
    params = lab.model.parameters()
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((32, 32)))
    params["weight_hh_l0"][...] = 10 * q
    lab.refresh()
    return lab


def test_bptt_shows_a_gradient_exploding_to_inf_where_training_stops_on_it():
    """The lab is for watching dL/dh_t explode: its BPTT runs through an overflow (training refuses it)."""
    lab = exploding_lab()
    assert np.isfinite(lab.evaluation.loss)
    lab.run_backward()
    norms = np.linalg.norm(lab.trace.get("dh")[:, 0, :].astype(np.float64), axis=-1)
    finite = np.isfinite(norms)
    assert finite[-1] and not finite[0] and 100 < finite.sum() < 200
    assert norms[finite][0] > 1e30 * norms[-1]  # it grew back through time until it overflowed
    with pytest.raises(UserError, match="beyond float32's range"):
        lab.model.backward(lab.trace, lab._loss_grad)  # the trainer's pass: an error


def test_lab_train_refuses_a_target_already_reached(lab):
    """lab.train(5) after 30 steps said "completed" and logged the last evaluation again each time; a
    target of "x" was kept and broke every later save."""
    lab.reconfigure({"train.steps": 3})
    lab.train()
    for until in (3, 1, "x", 4.5):
        with pytest.raises(ValueError, match="until_step must be an integer past the 3 steps trained"):
            lab.train(until)
    assert [e.step for e in lab.evals].count(3) == 1 and lab.spec_as_trained.train.steps == 3


def test_ctrl_s_records_a_divergence_and_a_missing_summary(tmp_path, capsys):
    """A run diverging in the lab at the step it was opened at kept its "completed" summary beside a
    spec.toml asking for more steps (listed "interrupted"); a run without summary.json got none."""
    from conftest import DIVERGING_SPEC, run_cli
    from rnnlab.train.runs import list_runs

    spec = tmp_path / "div.toml"
    spec.write_text(DIVERGING_SPEC, encoding="utf-8")
    assert run_cli(capsys, "train", spec, "--steps", "1", "--out", tmp_path / "runs" / "dc")[0] == 0
    lab = Lab.open(tmp_path / "runs" / "dc")
    assert lab.train(until_step=3) == "diverged" and lab.trainer.step == 1
    lab.save_run()
    assert json.loads((tmp_path / "runs" / "dc" / "summary.json").read_text())["status"] == "diverged"
    assert [(r.status, r.step) for r in list_runs(tmp_path / "runs")] == [("diverged", 1)]
    assert run_cli(capsys, "train", "hello", "--steps", "2", "--out", tmp_path / "runs" / "ns")[0] == 0
    (tmp_path / "runs" / "ns" / "summary.json").unlink()
    opened = Lab.open(tmp_path / "runs" / "ns")
    assert not opened.nothing_to_save
    opened.save_run()
    assert json.loads((tmp_path / "runs" / "ns" / "summary.json").read_text())["status"] == "completed"


def test_grads_are_the_last_backward_pass_of_the_trace_on_the_bench(lab):
    """lab.grads did not exist before run_backward (AttributeError) and stayed stale after a new
    forward pass replaced the trace."""
    assert lab.grads is None
    grads = lab.run_backward()
    assert lab.grads is grads and "input" in grads
    lab.refresh()
    assert lab.grads is None
