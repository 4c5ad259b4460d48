"""The encoder-decoder lab: its engine (rnnlab.labs.seq2seq), its screen driven by Textual's pilot
(rnnlab.tui.labs.seq2seq) and its command (rnnlab seq2seq)."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import footer_keys, screen_text, wait_for
from rnnlab import fsio
from rnnlab.data.seq2seq import BOS, DIGIT0, EOS, PAD
from rnnlab.errors import TargetExistsError, UserError, counted
from rnnlab.labs import lab_class
from rnnlab.labs.seq2seq import DEFAULTS, MAX_BENCH_LENGTH, OptionError, Seq2SeqLab, length_buckets
from rnnlab.tui.labs.seq2seq import short_token

ROOT = Path(__file__).resolve().parent.parent
#: A lab small enough to train in milliseconds.
SMALL = {"hidden_size": 8, "min_length": 2, "max_length": 5, "batch_size": 8, "steps": 4, "eval_every": 2,
         "eval_size": 5}


def small(**options) -> Seq2SeqLab:
    return Seq2SeqLab.open({**SMALL, **options})


# ---------------------------------------------------------------------------------------------
# the engine
# ---------------------------------------------------------------------------------------------

def test_the_preset_opens_with_a_decoded_bench_sequence():
    lab = lab_class("seq2seq").open(None)
    assert lab.options == DEFAULTS
    assert lab.model.attention_kind == "general" and lab.model.cell == "gru" and lab.model.hidden_size == 32
    d = lab.decoding
    assert lab.length == 10 and d.source.tolist() == (DIGIT0 + lab.source).tolist()
    assert d.expected.tolist() == (DIGIT0 + lab.source[::-1]).tolist() + [EOS]
    # exactly the model's own greedy decoding, batch axis dropped
    tokens, trace = lab.model.greedy_decode(d.source[:, None], [lab.length], d.expected.size + 3, BOS, EOS,
                                            exclude=(PAD, BOS))
    steps = int(trace.output_lengths[0])
    assert d.tokens.tolist() == tokens[:steps, 0].tolist()
    np.testing.assert_array_equal(d.weights, trace["weights"][:steps, 0])
    assert d.weights.shape == (d.steps, lab.length)
    np.testing.assert_allclose(d.weights.sum(axis=1), 1.0, rtol=1e-5)
    assert lab.cursor == d.steps  # the whole decoding shown; home rewinds


def test_the_decoder_never_writes_bos_or_padding():
    lab = Seq2SeqLab.open({"attention": "none"})  # untrained, its readout favours BOS for these sources
    for text in ("6", "1 2", "9 9 9 9", "0"):
        lab.source_from_text(text)
        d = lab.decoding
        tokens, _ = lab.model.greedy_decode(d.source[:, None], [d.source.size], 6, BOS, EOS)
        assert BOS in tokens  # what a plain argmax over the whole vocabulary writes
        assert not np.isin(d.tokens, [PAD, BOS]).any(), text
        assert all(lab.step_info(t).runner_up not in (PAD, BOS) for t in range(d.steps))


@pytest.mark.parametrize("options, message", [
    ({"attention": "luong"}, "attention must be one of none, dot, general, additive, got 'luong'"),
    ({"task": "copy"}, "task must be reverse or sort, got 'copy'"),  # two choices: as the CLI's "cpu or cuda"
    ({"cell": "tcn"}, "cell must be one of rnn, lstm, gru"),
    ({"hidden_size": 0}, "hidden_size must be an integer in [1, 512], got 0"),
    ({"steps": True}, "steps must be an integer"),
    ({"steps": 2.5}, "steps must be an integer"),
    ({"learning_rate": -0.1}, "learning_rate must be a number in (0, 1], got -0.1"),
    ({"learning_rate": float("nan")}, "learning_rate must be a number"),
    ({"min_length": 6, "max_length": 4}, "min_length must be <= max_length (4), got 6"),
    ({"max_length": 2}, "max_length must be >= min_length (3), got 2"),  # the one changed is blamed
    ({"max_length": 51}, "max_length must be an integer in [1, 50]"),
])
def test_a_bad_option_is_refused_naming_it(options, message):
    with pytest.raises(OptionError) as info:
        Seq2SeqLab.open(options)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert info.value.option == message.split(" ")[0]


def test_an_unknown_option_is_refused_with_the_closest_name():
    """As the ESN and treebank labs say it (it listed every option, without a "did you mean")."""
    with pytest.raises(UserError, match=r"^unknown option 'hiden_size' \(12 known; did you mean 'hidden_size'\?\)$"):
        Seq2SeqLab.open({"hiden_size": 8})
    # an abbreviation (initials, or another library's name) is no misspelling: it got "e.g. task, attention, cell"
    for short, meant in (("lr", "learning_rate"), ("bs", "batch_size"), ("iters", "steps")):
        with pytest.raises(UserError, match=rf"^unknown option '{short}' \(12 known; did you mean '{meant}'\?\)$"):
            Seq2SeqLab.open({short: 8})


def test_options_none_means_no_attention_and_buckets_reach_past_training():
    lab = small(attention=None)
    assert lab.attention == "none" and lab.model.attention is None
    assert lab.buckets == [(2, 2), (3, 4), (5, 5), (6, 8)]
    assert length_buckets(3, 10) == [(3, 5), (6, 7), (8, 10), (11, 13)]
    assert length_buckets(5, 5) == [(5, 5), (6, 8)]


def test_the_decoder_cursor_reveals_one_output_token_per_step():
    lab = small()
    d = lab.decoding
    assert lab.jump_start() == 0 and lab.cursor_step is None and lab.step_info() is None
    assert lab.step_back() == 0
    lab.step_forward()
    lab.step_forward()
    info = lab.step_info()
    assert lab.cursor == 2 and info.step == 1
    writable = d.probabilities[1][[EOS, *range(DIGIT0, DIGIT0 + 10)]]  # never PAD or BOS, which no target holds
    assert info.token == d.tokens[1] and info.probability == pytest.approx(writable.max())
    assert info.expected == d.expected[1] and info.correct == (d.tokens[1] == d.expected[1])
    assert info.runner_up not in (info.token, PAD, BOS) and info.runner_up_probability <= info.probability
    assert info.runner_up_probability == pytest.approx(np.sort(writable)[-2])
    assert info.focus == int(np.argmax(d.weights[1])) and info.focus_token == d.source[info.focus]
    assert lab.jump_end() == d.steps
    assert lab.step_forward() == d.steps  # nothing past the last token
    with pytest.raises(UserError, match="step must be in"):
        lab.step_info(d.steps)


def test_the_bench_sequence_can_be_drawn_grown_shrunk_and_typed():
    lab = small()
    lab.new_sequence(7)
    assert lab.length == 7 and lab.unseen_length  # longer than the training lengths 2-5
    first = lab.source.copy()
    lab.longer()
    assert lab.length == 8 and lab.source[:7].tolist() == first.tolist()
    lab.shorter()
    lab.shorter()
    assert lab.source.tolist() == first[:6].tolist()
    lab.source_from_text("3 1, 4")
    assert lab.source.tolist() == [3, 1, 4] and not lab.unseen_length
    assert lab.decoding.expected.tolist() == [DIGIT0 + 4, DIGIT0 + 1, DIGIT0 + 3, EOS]
    assert lab.cursor == lab.decoding.steps
    for text, message in (("3 x 4", "'x'"), ("", "at least one digit"), (" , ", "at least one digit"),
                          ("1" * (MAX_BENCH_LENGTH + 1), f"at most {MAX_BENCH_LENGTH} digits")):
        with pytest.raises(UserError, match=message):
            lab.source_from_text(text)
    assert lab.source.tolist() == [3, 1, 4]  # a refused sequence changes nothing
    lab.source_from_text("7")
    with pytest.raises(UserError, match="at its shortest"):
        lab.shorter()
    lab.new_sequence(MAX_BENCH_LENGTH)
    with pytest.raises(UserError, match="at its longest"):
        lab.longer()
    with pytest.raises(UserError, match="length must be"):
        lab.new_sequence(0)


def test_n_after_a_model_switch_goes_on_drawing():
    """Every new model (a, k) restarted the seed's draws: the first n after each switch drew the same
    digits, said to be a new sequence (the architecture labs' walkthrough)."""
    lab = small()
    drawn = []
    for kind in ("none", "dot", "general"):
        lab.set_attention(kind)
        lab.new_sequence()
        drawn.append(lab.source.tolist())
    assert drawn[0] != drawn[1] != drawn[2] != drawn[0]
    lab.reconfigure({"seed": 5})  # another seed: its own draws
    assert np.array_equal(lab._bench_rng.integers(0, 10, 5), small(seed=5)._bench_rng.integers(0, 10, 5))


def test_training_records_history_and_length_bucket_scores_and_redecodes_the_bench():
    lab = small(steps=5)
    assert lab.train() == "completed"
    assert [r.step for r in lab.history] == [1, 2, 3, 4, 5]
    assert [e.step for e in lab.evals] == [2, 4, 5]  # every eval_every steps, and at the end
    scores = lab.evals[-1].buckets
    assert [(b.min_length, b.max_length, b.unseen) for b in scores] == [(2, 2, False), (3, 4, False), (5, 5, False),
                                                                         (6, 8, True)]
    assert all(0 <= b.sequence_accuracy <= b.token_accuracy <= 1 and b.count == 5 for b in scores)
    assert lab.train(should_stop=lambda: len(lab.history) >= 7) == "stopped"
    assert lab.trained_steps == 7
    summary = json.loads(json.dumps(lab.summary()))
    assert summary["trained_steps"] == 7 and summary["status"] == "stopped" and summary["options"]["steps"] == 5
    # the summary's bench is decoded with the weights as they are now
    tokens, trace = lab.model.greedy_decode(lab.decoding.source[:, None], [lab.length],
                                            lab.decoding.expected.size + 3, BOS, EOS)
    n = int(trace.output_lengths[0])
    assert summary["bench"]["decoded"] == [lab.task.vocab[t] for t in tokens[:n, 0]]


def test_training_pauses_resumes_and_stops_from_another_thread():
    lab = small(steps=1_000_000, eval_every=0)
    worker = threading.Thread(target=lab.train)
    worker.start()
    try:
        _wait(lambda: len(lab.history) > 2)
        lab.pause_training()
        _wait(lambda: lab.training_status == "paused")
        paused_at = len(lab.history)
        time.sleep(0.1)
        assert len(lab.history) == paused_at and lab.training
        lab.resume_training()
        _wait(lambda: len(lab.history) > paused_at + 2)
    finally:
        lab.stop_training()
        worker.join(10)
    assert lab.training_status == "stopped" and not lab.training
    assert [r.step for r in lab.history] == list(range(1, len(lab.history) + 1))


def _wait(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_switching_attention_makes_a_new_untrained_model_and_keeps_the_bench():
    lab = small()
    lab.train(until_step=2)
    lab.source_from_text("1 2 3 4")
    lab.set_attention("none")
    assert lab.model.attention is None and lab.trained_steps == 0 and lab.history == [] and lab.evals == []
    assert lab.source.tolist() == [1, 2, 3, 4] and lab.decoding.weights is None
    assert lab.decoding.records["encoder"].shape == (4, 8) and lab.decoding.records["decoder"].shape[1] == 8
    with pytest.raises(OptionError, match="attention must be one of"):
        lab.set_attention("luong")
    assert lab.attention == "none"
    lab.training_status = "running"  # as while a worker trains
    with pytest.raises(UserError, match="stop training"):
        lab.set_attention("dot")
    lab.training_status = "stopped"
    lab.reconfigure({"attention": "additive", "task": "sort"})
    assert lab.model.attention_kind == "additive" and lab.task.kind == "sort"
    assert lab.decoding.expected.tolist() == [DIGIT0 + d for d in (1, 2, 3, 4)] + [EOS]


def test_check_options_names_a_bad_value_without_touching_the_trained_model():
    """What a view asks before it drops a trained model: the options a change would give, or the
    engine's own error for a bad one; the model, its training and its options stay either way."""
    lab = small()
    lab.train(until_step=2)
    model = lab.model
    assert lab.check_options({"hidden_size": 4.0, "cell": "lstm"}) == {**lab.options, "hidden_size": 4, "cell": "lstm"}
    with pytest.raises(OptionError, match=r"^max_length must be >= min_length \(2\), got 1$"):
        lab.check_options({"max_length": 1})
    assert lab.model is model and lab.trained_steps == 2 and lab.options["hidden_size"] == 8


def test_steps_and_eval_options_apply_in_place_and_keep_the_trained_model():
    """Setting steps=5000 to train further rebuilt the model: the trained steps were lost. steps,
    eval_every and eval_size do not change the model: the weights, history and scores stay, and the
    next run uses the new values; a change that also names a model option still builds a fresh one."""
    lab = small(steps=3)
    lab.train()
    model, weights = lab.model, {name: w.copy() for name, w in lab.model.parameters().items()}
    history, evals = list(lab.history), list(lab.evals)
    lab.reconfigure({"steps": 4, "eval_every": 0, "eval_size": 7})
    assert lab.model is model and lab.trained_steps == 3 and lab.history == history and lab.evals == evals
    assert all(np.array_equal(w, weights[name]) for name, w in lab.model.parameters().items())
    assert (lab.options["steps"], lab.options["eval_every"], lab.options["eval_size"]) == (4, 0, 7)
    lab.train()  # 4 more steps, scored at the end only, on 7 sources per bucket
    assert lab.trained_steps == 7 and [r.step for r in lab.history] == list(range(1, 8))
    assert [e.step for e in lab.evals] == [e.step for e in evals] + [7]
    assert all(b.count == 7 for b in lab.evals[-1].buckets) and all(b.count == 5 for b in evals[-1].buckets)
    assert not lab.rebuilds({"steps": 5, "eval_size": 7}) and lab.rebuilds({"steps": 9, "hidden_size": 4})
    assert lab.reconfigure({"steps": 9, "hidden_size": 4}) is True
    assert lab.trained_steps == 0 and lab.model.hidden_size == 4 and lab.options["steps"] == 9


def test_batch_size_and_learning_rate_apply_in_place_and_train_on_from_the_trained_model():
    """Lowering the learning rate (or growing the batch) to fine-tune a trained model rebuilt it:
    the trained steps were lost. Both only change how later steps train: the weights and Adam's
    moments stay, and the steps after the change are those of the same model trained on with the
    trainer's new batch size and rate (batch k drawn from (seed, k) at the new size)."""
    def trained(**options):
        lab = small(steps=3, **options)
        lab.train()
        return lab

    lab, reference = trained(), trained()
    model, optimizer = lab.model, lab.trainer.optimizer
    moments = {name: m.copy() for name, m in optimizer.slots["m"].items()}
    assert not lab.rebuilds({"batch_size": 16, "learning_rate": 0.002})
    assert lab.reconfigure({"batch_size": 16, "learning_rate": 0.002, "steps": 2}) is False
    assert lab.model is model and lab.trainer.optimizer is optimizer and lab.trained_steps == 3
    assert all(np.array_equal(m, moments[name]) for name, m in optimizer.slots["m"].items())
    assert (lab.trainer.batch_size, optimizer.learning_rate) == (16, 0.002)
    assert (lab.options["batch_size"], lab.options["learning_rate"]) == (16, 0.002)
    lab.train()
    reference.trainer.batch_size, reference.trainer.optimizer.learning_rate = 16, 0.002
    reference.train(until_step=5)
    assert lab.trained_steps == 5 and [r.step for r in lab.history] == [1, 2, 3, 4, 5]
    assert [r.loss for r in lab.history] == [r.loss for r in reference.history]
    assert all(np.array_equal(w, reference.model.parameters()[name]) for name, w in lab.model.parameters().items())
    untouched = trained()
    untouched.train(until_step=5)  # the old batch size and rate train otherwise: the change took effect
    assert [r.loss for r in untouched.history][3:] != [r.loss for r in lab.history][3:]


def test_the_history_and_its_export_say_what_each_step_trained_with(tmp_path):
    """The options say what the next run trains with: after an in-place change of the rate or the batch
    size, an export claiming 0.002 of steps trained at 0.005 would misreport them. Each step's record
    keeps its own, and the export has them per step."""
    lab = small(steps=2, learning_rate=0.005, batch_size=8)
    lab.train()
    lab.reconfigure({"learning_rate": 0.002, "batch_size": 16})
    lab.train()
    assert [(r.learning_rate, r.batch_size) for r in lab.history] == [(0.005, 8)] * 2 + [(0.002, 16)] * 2
    with np.load(lab.export(tmp_path / "bench.npz"), allow_pickle=False) as data:
        assert data["history_learning_rate"].tolist() == [0.005, 0.005, 0.002, 0.002]
        assert data["history_batch_size"].tolist() == [8, 8, 16, 16]
        assert json.loads(str(data["meta"]))["options"]["learning_rate"] == 0.002  # the next run's


#: A model trained part of the way (0.3 s): its greedy decoding of some 5-digit sources goes wrong after one
#: mistake where teacher forcing stays right (exposure bias)
PARTLY = {"hidden_size": 16, "min_length": 2, "max_length": 6, "batch_size": 16, "eval_every": 0, "eval_size": 5}


def partly_trained() -> Seq2SeqLab:
    lab = Seq2SeqLab.open(PARTLY)
    lab.train(until_step=120)
    return lab


def exposure_bias_source(lab: Seq2SeqLab) -> str:
    """The first bench source of a few on which greedy decoding misses more tokens than teacher forcing."""
    for digits in ("01102", "01108", "01120", "00112", "00310", "01003", "00211", "00262", "00433"):
        lab.source_from_text(digits)
        if lab.decodings["greedy"].misses > lab.decodings["teacher-forced"].misses:
            return digits
    raise AssertionError("no source shows exposure bias")


def test_teacher_forced_decoding_feeds_the_expected_tokens_and_greedy_its_own():
    """The bench showed greedy decoding only; teacher forcing (how the model trains) was never shown."""
    lab = partly_trained()
    exposure_bias_source(lab)
    greedy, forced = lab.decodings["greedy"], lab.decodings["teacher-forced"]
    assert lab.decode_mode == "greedy" and lab.decoding is greedy and greedy.mode == "greedy"
    T = forced.expected.size
    assert forced.steps == T and forced.inputs.tolist() == [BOS, *forced.expected[:-1].tolist()]
    assert greedy.inputs.tolist() == [BOS, *greedy.tokens[:-1].tolist()]
    # the same model as training's pass: its logits, their argmax (the markers never written)
    logits, _ = lab.model.forward(forced.source[:, None], np.array([forced.source.size]), forced.inputs[:, None])
    np.testing.assert_array_equal(forced.records["logits"], logits[:, 0])
    writable = logits[:, 0].copy()
    writable[:, [PAD, BOS]] = -np.inf
    assert forced.tokens.tolist() == writable.argmax(axis=1).tolist()
    assert forced.records["weights"].shape == (T, forced.source.size)
    # fed the same tokens up to greedy's first mistake, both write the same there; after it they part
    first_wrong = int(np.flatnonzero(~greedy.correct)[0])
    assert greedy.tokens[:first_wrong + 1].tolist() == forced.tokens[:first_wrong + 1].tolist()
    assert forced.misses < greedy.misses and forced.misses == int((~forced.correct).sum())

    lab.jump_end()
    assert lab.set_decode_mode("teacher-forced") == "teacher-forced" and lab.decoding is forced
    assert lab.cursor == T  # at the end: at the new end
    lab.cursor = 2
    info = lab.step_info()
    assert info.fed == forced.expected[0] and info.token == forced.tokens[1]
    assert lab.toggle_decode_mode() == "greedy" and lab.cursor == 2 and lab.step_info().fed == greedy.tokens[0]
    with pytest.raises(UserError, match="^decode mode must be greedy or teacher-forced, got 'forced' "
                                        "\\(did you mean 'teacher-forced'\\?\\)$"):
        lab.set_decode_mode("forced")
    assert lab.decode_mode == "greedy"


def test_the_decode_mode_stays_through_training_a_new_model_and_into_the_export(tmp_path):
    lab = small()
    lab.set_decode_mode("teacher-forced")
    lab.train()
    lab.refresh()  # as the screen does while training: both modes decoded with the new weights
    assert lab.decoding is lab.decodings["teacher-forced"] and lab.decoding.steps == lab.decoding.expected.size
    lab.reconfigure({"attention": "none"})  # a new model, decoded as the old one was
    assert lab.decode_mode == "teacher-forced" and lab.decoding.mode == "teacher-forced"
    assert lab.decoding.weights is None and lab.decoding.records["decoder"].shape[0] == lab.decoding.expected.size
    summary = json.loads(json.dumps(lab.summary()))
    d = lab.decoding
    assert summary["bench"]["decode_mode"] == "teacher-forced"
    assert summary["bench"]["fed"] == [lab.task.vocab[t] for t in d.inputs]
    assert lab.export_name == "seq2seq-reverse-none-forced.npz"  # beside the greedy one's file, not over it
    with np.load(lab.export(tmp_path / lab.export_name), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    assert meta["decode_mode"] == "teacher-forced" and "teacher-forced" in meta["layout"]
    assert arrays["fed"].tolist() == d.inputs.tolist() and arrays["decoded"].tolist() == d.tokens.tolist()
    np.testing.assert_array_equal(arrays["decoder"], d.records["decoder"])
    assert arrays["decoded_greedy"].tolist() == lab.decodings["greedy"].tokens.tolist()
    assert arrays["decoded_teacher_forced"].tolist() == d.tokens.tolist()
    lab.set_decode_mode("greedy")
    assert lab.export_name == "seq2seq-reverse-none.npz" and lab.summary()["bench"]["decode_mode"] == "greedy"


def test_export_writes_every_record_atomically(tmp_path):
    lab = small()
    lab.train()
    path = lab.export(tmp_path / "bench.npz")
    with pytest.raises(TargetExistsError):  # the TUI's first Enter: the file is kept
        lab.export(path, replace=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.npz"]  # no temp file left
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    d = lab.decoding
    S, T = lab.length, d.steps
    assert set(meta["records"]) == {"encoder", "decoder", "logits", "scores", "weights", "context", "attentional"}
    for name in meta["records"]:
        np.testing.assert_array_equal(arrays[name], d.records[name])
    assert arrays["weights"].shape == (T, S) and arrays["encoder"].shape == (S, 8) and arrays["logits"].shape[0] == T
    assert arrays["decoded"].tolist() == d.tokens.tolist() and arrays["source"].tolist() == d.source.tolist()
    assert arrays["history_loss"].shape == (4,) and arrays["eval_step"].tolist() == [2, 4]
    assert arrays["eval_sequence_accuracy"].shape == (2, len(lab.buckets)) and arrays["buckets"].shape == (4, 2)
    assert meta["trained_steps"] == 4 and meta["options"]["attention"] == "general"
    with pytest.raises(UserError, match="must end in .npz"):
        lab.export(tmp_path / "bench.txt")
    with pytest.raises(UserError, match="no such directory"):
        lab.export(tmp_path / "missing" / "bench.npz")
    # a folder was refused for want of .npz: it is named a folder, with the file to name in it
    with pytest.raises(UserError, match=r" is a directory: name the export file in it, e\.g\. "
                                        r".*/seq2seq-reverse-general\.npz$"):
        lab.export(tmp_path)


def test_trained_reversal_attends_along_the_anti_diagonal():
    """The preset's point, scaled down to seconds of training: decoder step t looks at source
    position S - t (within one step), so the attention matrix is an anti-diagonal."""
    # 1000 steps: after 600 the longest bucket was >= 0.9 in CI but 0.88 on a Zen 3 machine with the
    # same code (and with numpy 2.4 and 2.5 alike): kernels compiled for the host CPU round last bits
    # their own way, and 600 steps sat on the line; 1000 gets 0.92-1.0. Which one source decodes
    # wholly right is as fragile ("3 1 4 1 5 9" did on AVX2 machines, not on an AVX-512 EPYC: one of
    # its repeated 1s came twice), so the attention is checked on six sources and most must decode
    lab = Seq2SeqLab.open({"hidden_size": 16, "min_length": 3, "max_length": 6, "steps": 1000, "eval_every": 0,
                           "eval_size": 50})
    lab.train()
    inside = [b for b in lab.evals[-1].buckets if not b.unseen]
    assert min(b.sequence_accuracy for b in inside) >= 0.9
    correct = 0
    for source in ("3 1 4 1 5 9", "2 7 1 8 2 8", "9 8 7 6 5 4", "0 1 2 3 4 5", "5 4 3 2 1", "6 0 2 2 1"):
        lab.source_from_text(source)
        d, S = lab.decoding, lab.length
        correct += d.all_correct
        focus = d.weights[:S].argmax(axis=1)
        assert np.all(np.abs(focus - (S - 1 - np.arange(S))) <= 1), source
        band = [d.weights[t, max(0, S - 2 - t):S - t + 1].sum() for t in range(S)]  # columns S-1-t and neighbours
        assert np.mean(band) > 0.9, source
        assert np.mean([d.weights[t, S - 1 - t] for t in range(S)]) > 0.5, source  # the anti-diagonal holds most
    assert correct >= 5


def test_the_engine_imports_no_ui():
    code = ("import sys, rnnlab.labs.seq2seq; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'typer', 'torch')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# the screen
# ---------------------------------------------------------------------------------------------

wait_for = functools.partial(wait_for, what="the screen")


def drive(check, options=None, size=(160, 50), engine=None):
    from rnnlab.tui.labs import LabScreenApp
    from rnnlab.tui.labs.seq2seq import Seq2SeqScreen

    async def main():
        app = LabScreenApp("seq2seq", {**SMALL, **(options or {})}, engine=engine)
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, Seq2SeqScreen))
            await check(app, app.screen, pilot)

    asyncio.run(main())


def test_a_notice_leaves_the_message_and_status_lines_whole_at_80_columns():
    """Textual stacks notices on the footer, where their last row lay over the status line's end;
    they stand above it and the message line over it now, as the main lab's above its status line."""
    from rnnlab.tui.labs import LabScreenApp
    from rnnlab.tui.labs.seq2seq import Seq2SeqScreen

    async def main():
        app = LabScreenApp("seq2seq", dict(SMALL))
        async with app.run_test(size=(80, 24), notifications=True) as pilot:  # (toasts drawn)
            await wait_for(pilot, lambda: isinstance(app.screen, Seq2SeqScreen))
            await pilot.press("s")  # the message line: "nothing is training (t starts)"
            await wait_for(pilot, lambda: "nothing is training" in screen_text(app))
            before = screen_text(app).splitlines()[-3:-1]
            app.notify("a notice of two lines at 80 columns: " + "word " * 12)  # (as the quit warning)
            await wait_for(pilot, lambda: "a notice of two lines" in screen_text(app))
            assert screen_text(app).splitlines()[-3:-1] == before

    asyncio.run(main())


def test_s_with_nothing_training_says_so():
    """s before any training (or after a run) did nothing visible, where the main lab says
    "nothing is training (t starts)"."""
    async def check(app, screen, pilot):
        await pilot.press("s")
        await pilot.pause()
        assert "nothing is training (t starts)" in screen_text(app)
        assert not screen.engine.training

    drive(check, size=(80, 24))


def test_screen_steps_the_decoder_one_token_at_a_time():
    from rnnlab.tui.labs.seq2seq import Seq2SeqAttention

    async def check(app, screen, pilot):
        lab = screen.engine
        grid = screen.query_one(Seq2SeqAttention)
        assert grid.revealed == lab.decoding.steps  # opens on the whole decoding
        await pilot.press("home")
        assert lab.cursor == 0 and grid.revealed == 0 and grid.cursor_row is None
        await pilot.press("right", "right")
        assert lab.cursor == 2 and grid.revealed == 2 and grid.cursor_row == 1
        text = screen_text(app)
        assert f"decode step 2/{lab.decoding.steps}" in text
        info = lab.step_info()
        token = lab.task.vocab[info.token]
        # fed its own first token (greedy): "wrong" where it was, the mistake it reads on
        fed = f"{'' if lab.decoding.correct[0] else 'wrong '}{short_token(info.fed)}"
        assert info.fed == lab.decoding.tokens[0] and f"step 2/{lab.decoding.steps}: fed its {fed} → wrote {token}" in text
        assert f"looked at source position {info.focus + 1}" in text
        rows = [grid.render_line(y).text for y in range(grid.size.height)]
        assert any(row.startswith("▶ 2 ") for row in rows)  # the cursor row, with its weights in percent
        percents = [int(v) for v in next(r for r in rows if r.startswith("▶ 2 "))[8:].split()]
        assert percents == [round(100 * w) for w in lab.decoding.weights[1]]
        await pilot.press("left")
        assert lab.cursor == 1
        await pilot.press("end")
        assert lab.cursor == lab.decoding.steps
        # clicking a row of the matrix moves the cursor there
        await pilot.click(Seq2SeqAttention, offset=(10, Seq2SeqAttention.HEADER_LINES))
        assert lab.cursor == 1

    drive(check, {"max_length": 4})


def test_screen_bench_keys_new_longer_shorter_and_typing():
    async def check(app, screen, pilot):
        lab = screen.engine
        n = lab.length
        await pilot.press("n")
        assert lab.length == n and "new sequence" in screen_text(app)
        await pilot.press("plus", "plus")
        assert lab.length == n + 2 and lab.unseen_length
        assert "longer than training" in screen_text(app)
        await pilot.press("minus")
        assert lab.length == n + 1
        await pilot.press("i")
        await pilot.pause()
        prompt = app.screen.query_one("#prompt-input")
        prompt.value = "3 x"
        await pilot.press("enter")
        await pilot.pause()
        assert "'x'" in str(app.screen.query_one("#prompt-error").render())
        prompt.value = "3 1 4"
        await pilot.press("enter")
        await pilot.pause()
        assert lab.source.tolist() == [3, 1, 4]
        assert "expected   4   1   3  EOS" in screen_text(app)

    drive(check)


def test_the_status_line_says_how_far_of_how_many_steps_at_80_columns():
    """At 80x24 the status line read "running step 838 (122 steps/s)" under "training 2000 steps ...", no
    total; it says "of" the step the run trains to while one is under way, the help hint (the footer's) and
    the wide gaps given up first, and t on a trained model says where the new round ends, as the main lab's."""
    async def check(app, screen, pilot):
        lab = screen.engine
        status = lambda: str(screen.query_one("#s2s-status").render())  # noqa: E731
        message = lambda: str(screen.query_one("#s2s-message").render())  # noqa: E731
        await pilot.press("t")
        assert message() == "training 100000 steps (t pauses, s stops)"
        await wait_for(pilot, lambda: lab.trained_steps >= 1)
        await pilot.press("t")  # pause
        await wait_for(pilot, lambda: lab.training_status == "paused")
        done = lab.trained_steps
        paused = f"decode step {lab.cursor}/{lab.decoding.steps}   bench 4 digits   " \
                 f"paused step {done} of 100000   ? help"
        await wait_for(pilot, lambda: status() == paused, what="the paused line")  # (the timer's next tick)
        await pilot.press("s")
        await wait_for(pilot, lambda: lab.training_status == "stopped")
        # t trains a new round: no total
        await wait_for(pilot, lambda: status().endswith(f"stopped step {done}   ? help"), what="the stopped line")
        lab.mark_running()  # (as 838 steps into the second round, 125 a second)
        lab.trainer.step, screen._train_target, screen.step_rate.per_second = 838, 2838, 125.0
        screen.update_status()
        assert status() == f"decode step {lab.cursor}/{lab.decoding.steps}   bench 4 digits   " \
                           "running step 838 of 2838 (125 steps/s)"
        decode = f"decode step {lab.cursor}/{lab.decoding.steps}"
        lab.trainer.step, screen._train_target, screen.step_rate.per_second = 83800, 283800, 12500.0
        screen.update_status()  # longer figures: the gaps narrow, the total stays
        assert status() == f"{decode}  bench 4 digits  running step 83800 of 283800 (12500 steps/s)"
        lab.trainer.step, screen._train_target = 8380000, 28380000
        screen.update_status()  # longer still: the total goes, the step stays whole
        assert status() == f"{decode}   bench 4 digits   running step 8380000 (12500 steps/s)"
        lab.trainer.step = 838
        lab.training_status = "stopped"
        await pilot.press("t")
        assert message() == "838 steps trained already: training 100000 more, to step 100838"  # (its keys: 80+)
        await pilot.press("s")
        await wait_for(pilot, lambda: lab.training_status == "stopped")

    drive(check, {"steps": 100_000, "eval_every": 0, "min_length": 4, "max_length": 4}, size=(80, 24))


def test_screen_trains_in_the_background_pauses_and_stops():
    from rnnlab.tui.widgets import LinePlot

    async def check(app, screen, pilot):
        lab = screen.engine
        # (the pilot waits up to a second for an idle process after each key: few keys while training)
        await pilot.press("t")
        await wait_for(pilot, lambda: len(lab.evals) >= 2)
        await pilot.press("t")  # pause
        await wait_for(pilot, lambda: lab.training_status == "paused")
        paused_at = len(lab.history)
        await pilot.pause(0.2)
        assert len(lab.history) == paused_at
        await pilot.press("a")  # refused while training: no dialog
        assert app.screen is screen and "stop training first" in screen_text(app)
        screen.show_message("")
        await pilot.press("e")  # so are the options
        assert app.screen is screen and "stop training first (s)" in screen_text(app)
        await pilot.press("s")
        await wait_for(pilot, lambda: lab.training_status == "stopped" and "training stopped" in screen_text(app))
        await pilot.pause(0.2)
        loss = screen.query_one("#s2s-loss", LinePlot)
        buckets = screen.query_one("#s2s-buckets", LinePlot)
        assert loss.series_names == ["train"] and loss.title.startswith("loss ")
        assert buckets.series_names == ["2", "3-4", "5", "6-8*"]
        text = screen_text(app)
        assert f"stopped step {lab.trained_steps}" in text and "6-8*" in text and "* longer than any" in text
        assert lab.decoded_at_step == lab.trained_steps  # the bench shows the final weights

    drive(check, {"steps": 1_000_000})


def test_screen_switches_attention_after_confirming_and_shows_hidden_states_without_it():
    from rnnlab.tui.widgets import Heatmap
    from rnnlab.tui.labs.seq2seq import Seq2SeqAttention, Seq2SeqChoice

    async def check(app, screen, pilot):
        lab = screen.engine
        lab.train(until_step=2)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, Seq2SeqChoice)
        assert "A switch starts a new model: the 2 trained steps are lost." in screen_text(app)
        await pilot.press("escape")  # cancelled: nothing changes
        assert lab.attention == "general" and lab.trained_steps == 2
        await pilot.press("a")
        await pilot.pause()
        await pilot.press("up", "up", "enter")  # general -> none: asks first
        await pilot.pause()
        assert isinstance(app.screen, Seq2SeqChoice) and lab.attention == "general" and lab.trained_steps == 2
        assert "none: Enter again drops the 2 trained steps." in screen_text(app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: lab.attention == "none" and not screen.busy)
        assert lab.trained_steps == 0
        assert not screen.query_one(Seq2SeqAttention).display
        encoder, decoder = screen.query_one("#s2s-encoder", Heatmap), screen.query_one("#s2s-decoder", Heatmap)
        assert encoder.display and encoder.data.shape == (8, lab.length)
        assert decoder.data.shape == (8, lab.decoding.steps) and decoder.revealed == lab.cursor
        text = screen_text(app)
        assert "No attention: the decoder starts from the encoder's final state" in text
        assert "new model" in text and "no attention" in text
        await pilot.press("home", "right")
        assert decoder.revealed == 1 and decoder.cursor == 0

    drive(check)


def test_screen_export_help_and_an_error_shown_inline(tmp_path):
    from rnnlab.tui.labs.seq2seq import Seq2SeqScreen

    async def check(app, screen, pilot):
        await pilot.press("x")
        await pilot.pause()
        app.screen.query_one("#prompt-input").value = str(tmp_path / "s2s.npz")
        await pilot.press("enter")
        await pilot.pause()
        assert (tmp_path / "s2s.npz").is_file() and "exported to" in screen_text(app)
        await pilot.press("question_mark")
        await pilot.pause()
        text = screen_text(app)
        for binding in Seq2SeqScreen.BINDINGS:
            assert binding.description in text, binding.description
        assert "anti-diagonal" in text and "q, ctrl+c  quit" in text
        await pilot.press("escape")

        def broken(**kwargs):
            raise RuntimeError("the trainer broke")

        screen.engine.train = broken
        await pilot.press("t")
        await wait_for(pilot, lambda: "the trainer broke" in screen_text(app))
        assert app.screen is screen  # still alive
        await pilot.press("right")

    drive(check)


def test_an_export_that_cannot_be_written_is_a_user_error(tmp_path, monkeypatch):
    def unwritable(*args, **kwargs):  # the atomic writer's temp file, in a directory not writable
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fsio.tempfile, "mkstemp", unwritable)
    with pytest.raises(UserError, match=r"cannot write .*s2s\.npz: Permission denied"):
        small().export(tmp_path / "s2s.npz")


def test_screen_export_errors_stay_in_the_dialog_and_the_message_names_the_absolute_path(tmp_path, monkeypatch):
    from rnnlab.labs import seq2seq as seq2seq_lab
    from rnnlab.tui.labs.seq2seq import Seq2SeqPrompt

    def unwritable(path, arrays, **_):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.chdir(tmp_path)

    async def check(app, screen, pilot):
        with monkeypatch.context() as patch:
            patch.setattr(seq2seq_lab, "atomic_save_npz", unwritable)
            await pilot.press("x")
            await pilot.pause()
            app.screen.query_one("#prompt-input").value = "full.npz"
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, Seq2SeqPrompt)
            error = str(app.screen.query_one("#prompt-error").render())
            assert "cannot write full.npz: No space left on device" in error
            await pilot.press("escape")
        await pilot.press("x")
        await pilot.pause()
        app.screen.query_one("#prompt-input").value = "relative.npz"
        await pilot.press("enter")
        await pilot.pause()
        assert (tmp_path / "relative.npz").is_file()
        assert f"exported to {tmp_path / 'relative.npz'}" in screen.query_one("#s2s-message").render().plain

    drive(check)


def test_screen_bench_tokens_titles_and_accuracy_title_fit_at_120x36():
    from rnnlab.tui.labs.seq2seq import short_token
    from rnnlab.tui.widgets import Heatmap, LinePlot

    async def check(app, screen, pilot):
        lab = screen.engine
        await pilot.pause()
        text = screen_text(app)
        for name, tokens in (("decoded", lab.decoding.tokens), ("expected", lab.decoding.expected)):
            tokens = [short_token(t) for t in tokens]
            row = next(line for line in text.splitlines() if line.startswith(f" {name}"))[1:]
            cells = [row[10 + 4 * k:14 + 4 * k] for k in range(len(tokens))]
            assert [c.strip() for c in cells] == tokens and all(c.endswith(" ") for c in cells[:-1])  # a column each
        assert tokens[-1] == "EOS"  # three characters in its column
        for name in ("#s2s-encoder", "#s2s-decoder"):
            heatmap = screen.query_one(name, Heatmap)
            assert 0 < len(heatmap.title) <= heatmap.size.width and heatmap.title in text
        assert "▼ final" in screen.query_one("#s2s-encoder", Heatmap).title
        assert "(H=32 x t, ±1)" in screen.query_one("#s2s-decoder", Heatmap).title  # the colours' range
        lab.train()
        screen.update_views()
        await pilot.pause()
        buckets = screen.query_one("#s2s-buckets", LinePlot)
        shown = buckets.render_line(0).text
        assert buckets.series_names and any(shown.startswith(title) and "accuracy" in title
                                            for title in (buckets.title, *buckets.short_titles)), shown

    drive(check, {"attention": "none", "seed": 4, "hidden_size": 32}, size=(120, 36))


def test_an_accuracy_plot_whose_title_says_key_below_draws_no_legend_over_its_curves():
    """At 80x24 the title said "(key below)" while the plot moved its legend into the canvas, over
    the curves and out of order."""
    from rnnlab.tui.widgets import LinePlot

    async def check(app, screen, pilot):
        lab = screen.engine
        lab.train()
        screen.update_views()
        await pilot.pause()
        buckets = screen.query_one("#s2s-buckets", LinePlot)
        assert "(key below)" in buckets.title and not buckets.show_legend, buckets.title
        assert not any("━" in buckets.render_line(y).text for y in range(buckets.size.height))

    drive(check, {"attention": "none", "seed": 4, "hidden_size": 32}, size=(80, 24))


def test_the_loss_title_refits_when_its_plot_narrows_without_a_redraw():
    """The loss title was fitted to the plot's width when the lab redrew it: where the training
    column narrowed meanwhile (its scrollbar appearing as the score table grew) the title stayed
    that long and was cut ("loss 0.0012, token acc 10…"). The plot now picks among its forms itself."""
    from rnnlab.tui.widgets import LinePlot

    async def check(app, screen, pilot):
        screen.engine.train()
        screen.update_views()
        await pilot.pause()
        loss = screen.query_one("#s2s-loss", LinePlot)
        assert loss.render_line(0).text.startswith(loss.title)  # the longest form, whole, at 160 columns
        forms = (loss.title, *loss.short_titles)
        for width in (30, 20, 16):
            screen.query_one("#s2s-side").styles.width = width + 3  # no update_views: as a scrollbar appearing
            await pilot.pause()
            head = loss.render_line(0).text
            assert loss.size.width == width and "…" not in head, head
            assert head.startswith(next(form for form in forms if len(form) <= width)), head

    drive(check, size=(160, 50))


def test_screen_works_at_100x30():
    from rnnlab.tui.labs.seq2seq import Seq2SeqAttention

    async def check(app, screen, pilot):
        lab = screen.engine
        lab.new_sequence(12)
        await pilot.press("home", "right", "right", "right")
        grid = screen.query_one(Seq2SeqAttention)
        assert grid.size.width > 30 and grid.size.height >= 8
        rows = [grid.render_line(y).text for y in range(grid.size.height)]
        assert any(row.startswith("▶ 3 ") for row in rows)
        text = screen_text(app)
        assert "decode step 3/" in text and "source" in text and "expected" in text

    drive(check, size=(100, 30))


#: Forty digits with no repeating stretch (pi's first), so a row's window of them can be located.
PI40 = "3141592653,5897932384 6264338327 9502884197"
CELL = re.compile(r"( [0-9·] {2}|[A-Z]{3} | {4})")  # a bench cell: a digit or "·" centred in 4, BOS/EOS, blank


def bench_row(text: str, name: str) -> tuple[bool, list[str], str]:
    """The bench row ``name`` on the screen: (cut on the left, its cells' tokens, what follows them)."""
    line = next(line for line in text.splitlines() if line.startswith(f" {name} "))
    line = line[1:] + "   "  # the screen's text drops a last cell's spaces: " 7  " reads " 7"
    cells, x = [], 10
    while CELL.fullmatch(line[x:x + 4]):
        cells.append(line[x:x + 4].strip())
        x += 4
    return line[9] in "…◀", cells, line[x:].rstrip()  # ◀ (and ▶): cut where the attended position is


def window_starts(cells: list[str], tokens: list[str]) -> list[int]:
    """Every position at which ``cells`` show ``tokens`` (blank past their end)."""
    padded = tokens + [""] * len(cells)
    return [start for start in range(len(tokens)) if padded[start:start + len(cells)] == cells]


def test_screen_long_input_scrolls_the_three_rows_together_and_marks_what_is_cut():
    """A 40-digit source at 120x36: one window of positions for source, expected and decoded (a
    column is one position in all three), around the cursor's step, "…" where a row goes on."""
    from rnnlab.tui.labs.seq2seq import short_token

    async def check(app, screen, pilot):
        lab = screen.engine
        await pilot.press("i")
        await pilot.pause()
        app.screen.query_one("#prompt-input").value = PI40
        await pilot.press("enter", "end")
        await pilot.pause()
        d = lab.decoding
        assert lab.length == 40 and lab.cursor == d.steps == 44  # wider than the bench
        source = [short_token(t) for t in d.source]
        expected = [short_token(t) for t in d.expected]
        decoded = [short_token(t) for t in d.tokens]
        marks = set()
        for keys in ((), ("home",), *[("right",)] * 20):
            await pilot.press(*keys)
            text = screen_text(app)
            (source_cut, source_cells, _), (expected_cut, expected_cells, _), (decoded_cut, decoded_cells, after) = (
                bench_row(text, name) for name in ("source", "expected", "decoded"))
            [start] = window_starts(expected_cells, expected)
            assert window_starts(source_cells, source) == [start]  # the same positions as the outputs
            revealed = [token if t < lab.cursor else "·" for t, token in enumerate(decoded)]
            assert start in window_starts(decoded_cells, revealed)
            step = lab.cursor - 1 if lab.cursor else 0
            assert start <= step < start + len(decoded_cells)  # the cursor's step stays in view
            assert source_cut == expected_cut == decoded_cut == (start > 0)
            assert after.startswith("…") == (d.steps > start + len(decoded_cells))
            focus = lab.step_info().focus if lab.cursor else None  # the source position attended to most
            line = next(line for line in text.splitlines() if line.startswith(" source "))
            shown = range(start, start + len(source_cells))
            assert ("◀" in line) == (focus is not None and focus < shown.start)
            assert ("▶" in line) == (focus is not None and focus >= shown.stop and shown.stop < lab.length)
            marks.update(mark for mark in "◀▶" if mark in line)
        assert lab.cursor == 20 and 0 < start < 20
        assert marks, "no step of this walk attended outside the window: the marks went untested"

    drive(check, {"max_length": 10, "seed": 1}, size=(120, 36))  # this seed: no EOS, 44 steps


def test_screen_draws_no_cut_mark_after_a_decoding_that_ended_and_counts_in_the_singular():
    async def check(app, screen, pilot):
        lab = screen.engine
        assert lab.decoding.tokens.tolist() == [EOS] and lab.decoding.ended  # this seed: EOS at once
        text = screen_text(app)
        for name in ("source", "expected", "decoded"):
            cut, cells, after = bench_row(text, name)
            assert not cut and "…" not in after, text
        assert bench_row(text, "decoded")[1:] == (["EOS"], "   wrong: 1 of 1 token, 10 missing")
        await pilot.press("i")
        await pilot.pause()
        app.screen.query_one("#prompt-input").value = "7"
        await pilot.press("enter")
        await pilot.pause()
        text = screen_text(app)
        assert "typed sequence of 1 digit" in text and "bench 1 digit " in text and "1 digits" not in text
        assert bench_row(text, "source")[1:] == (["7"], "   1 digit (training 2-5)")

    async def start(app, screen, pilot):
        screen.engine.source_from_text("3141592653")
        screen.update_views()
        await pilot.pause()
        await check(app, screen, pilot)

    drive(start, {"seed": 2}, size=(60, 20))


def test_digit_count_and_describe_name_one_length_in_the_singular():
    from rnnlab.labs.seq2seq import digit_count

    assert [digit_count(1), digit_count(7), digit_count(3, 10), digit_count(4, 4)] == [
        "1 digit", "7 digits", "3-10 digits", "4 digits"]
    assert small(min_length=4, max_length=4).describe().endswith("reverse 4 digits")


@pytest.mark.parametrize("size, rows", [((60, 20), 5), ((60, 24), 8), ((80, 24), 8)])
def test_screen_small_terminals_keep_the_attention_map_and_drop_its_note_first(size, rows):
    from rnnlab.tui.labs.seq2seq import Seq2SeqAttention

    async def check(app, screen, pilot):
        screen.engine.source_from_text("3 1 4 1 5 9 2 6 5 3")
        assert screen.engine.decoding.steps == 14  # this seed: no EOS
        await pilot.press("home", "right", "right", "right")
        await pilot.pause()
        grid = screen.query_one(Seq2SeqAttention)
        lines = [grid.render_line(y).text for y in range(grid.size.height)]
        matrix = [line for line in lines if re.match(r"[ ▶][ \d]\d \S", line)]
        assert len(matrix) >= rows and any(line.startswith("▶ 3 ") for line in matrix), lines
        assert re.match(r"t wrote +1 ", lines[2])  # the positions' header, a space before the first
        text = screen_text(app)
        assert "says where step t looks" not in text  # the paragraph gave way
        for line in lines[:3]:
            assert line.rstrip() in text  # title, digits and positions on the screen, uncut

    drive(check, {"max_length": 10, "seed": 1}, size=size)


def test_a_terminal_below_the_minimum_says_so_and_keeps_the_training():
    """At 32 columns the note under the matrix had no column to wrap into: rich's wrap raised, the
    lab ended in a traceback and took its trained steps with it. Below 60x20 the lab is covered by
    the main lab's message; enlarged, it is back, training and all."""
    async def check(app, screen, pilot):
        await pilot.press("t")
        await wait_for(pilot, lambda: screen.engine.trained_steps > 0)
        for size in ((32, 30), (20, 10), (59, 20)):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.1)
            assert screen.query_one("#too-small").display and "The lab needs at" in screen_text(app), size
        await pilot.resize_terminal(100, 30)
        await pilot.pause(0.1)
        assert not screen.query_one("#too-small").display and "decode step" in screen_text(app)
        assert app.is_running and screen.engine.trained_steps > 0

    drive(check, size=(100, 30))


def test_every_dialog_opens_and_closes_in_a_terminal_a_few_columns_wide():
    """The attention and task choices (a, k) are lists: at 6 columns Textual's OptionList, given no
    column, raised out of rich's wrap."""
    async def check(app, screen, pilot):
        for key in ("a", "k", "e", "i", "x", "question_mark"):
            await pilot.press(key)
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is screen, key
        assert app.is_running

    drive(check, size=(6, 10))


def test_screen_large_terminals_keep_the_attention_note():
    async def check(app, screen, pilot):
        screen.engine.source_from_text("3 1 4 1 5 9 2 6 5 3")
        screen.update_views()
        await pilot.pause()
        note = screen.query_one("#s2s-note")
        assert note.display and "says where step t looks" in str(note.render())
        assert "▶ row in %" in screen_text(app)  # the numbers on the cursor row are percent
        assert "Reversal draws an anti-diagonal" in screen_text(app)

    drive(check, {"max_length": 10, "seed": 1}, size=(120, 36))


def test_screen_explains_the_sorting_task_in_its_own_terms():
    from rnnlab.labs.seq2seq import TASKS
    from rnnlab.tui.labs.seq2seq import ATTENTION_PATTERNS

    assert set(ATTENTION_PATTERNS) == set(TASKS)  # every task says what its attention draws

    async def check(app, screen, pilot):
        screen.engine.source_from_text("3 1 4 1 5 9 2 6 5 3")
        screen.update_views()
        await pilot.pause()
        text = screen_text(app)
        assert "Sorting draws a permutation" in text and "anti-diagonal" not in text
        await pilot.press("question_mark")
        await pilot.pause()
        text = screen_text(app)
        assert "t-th smallest digit" in text and "anti-diagonal" not in text

    drive(check, {"task": "sort", "max_length": 10, "seed": 1}, size=(120, 36))


def _decode_steps(text: str) -> tuple[str | None, str | None]:
    """The bench's "step k/T'" (its last line) and the status line's "decode step k/T'"."""
    bench = re.search(r"^ (?:step|decoder step) (\d+/\d+)", text, re.M)
    status = re.search(r"decode step (\d+/\d+)", text)
    return bench and bench[1], status and status[1]


def test_the_bench_and_the_status_line_count_the_same_decoding(tmp_path):
    """The status line (10 Hz while training) and the bench (redrawn when the screen re-decodes,
    2 Hz) said "step 11/11" and "decode step 10/10" at once: the engine had re-decoded (an export
    decodes with the newest weights) behind the bench. A status line drawn from a decoding the
    bench does not show redraws the bench first, so the two always count the same one."""
    async def check(app, screen, pilot):
        lab = screen.engine
        await pilot.press("home", "right", "right")
        assert _decode_steps(screen_text(app)) == (f"2/{lab.decoding.steps}",) * 2
        lab.source_from_text("3 1 4 1 5")  # the engine moves on without the screen (all of it shown)
        assert lab.cursor == lab.decoding.steps
        screen.update_status()  # as the timer does while training
        await pilot.pause()
        counted = f"{lab.cursor}/{lab.decoding.steps}"
        assert _decode_steps(screen_text(app)) == (counted, counted)
        assert "expected   5   1   4   1   3  EOS" in screen_text(app)
        # while training: an export re-decodes with the newest weights, and the screen shows that decoding
        lab.train(until_step=2)
        await pilot.press("x")
        await pilot.pause()
        app.screen.query_one("#prompt-input").value = str(tmp_path / "bench.npz")
        await pilot.press("enter")
        await pilot.pause()
        assert lab.decoded_at_step == 2
        counted = f"{lab.cursor}/{lab.decoding.steps}"
        assert _decode_steps(screen_text(app)) == (counted, counted)

    drive(check, {"max_length": 6})


def _status(screen) -> str:
    return screen.query_one("#s2s-status").render().plain


def test_f_shows_the_bench_teacher_forced_where_greedy_goes_wrong_after_one_mistake():
    """Teacher forcing was explained in the help and never shown: f decodes the bench fed the expected
    previous tokens, and a partly trained model gets right there what greedy decoding, fed its own mistake,
    got wrong. The bench, the matrix, the step line and the status line follow the mode (at 80x24)."""
    lab = partly_trained()
    exposure_bias_source(lab)
    greedy, forced = lab.decodings["greedy"], lab.decodings["teacher-forced"]

    async def check(app, screen, pilot):
        text = screen_text(app)
        assert bench_row(text, "decoded")[1] == [short_token(t) for t in greedy.tokens]
        assert _status(screen).startswith(f"decode step {greedy.steps}/{greedy.steps}   ")
        await pilot.press("f")
        await pilot.pause()
        text = screen_text(app)
        row = bench_row(text, "forced")
        assert row[1] == [short_token(t) for t in forced.tokens] and "decoded" not in text
        T = forced.expected.size
        assert row[2] in (f"   wrong: {forced.misses} of {T} (greedy {greedy.misses})",
                          f"   wrong: {forced.misses} of {counted(T, 'token')} (greedy: {greedy.misses} of {T})")
        assert _status(screen).startswith(f"teacher-forced step {T}/{T}   ")
        grid = screen.query_one("#s2s-grid")
        assert grid._rows == [short_token(t) for t in forced.tokens] and "teacher-forced" in grid._heading
        np.testing.assert_array_equal(grid._weights, forced.weights)
        assert f"teacher-forced: fed the expected previous token ({forced.misses} of {T} wrong, greedy " \
               f"{greedy.misses})" in text
        assert f"step {T}/{T}: fed the true {short_token(forced.expected[-2])} → " in text
        # greedy, the step after its first mistake was fed that mistake
        await pilot.press("f")
        after = int(np.flatnonzero(~greedy.correct)[0]) + 2
        await pilot.press("home", *["right"] * after)
        text = screen_text(app)
        assert f"step {after}/{greedy.steps}: fed its wrong {short_token(greedy.tokens[after - 2])} → " in text
        assert bench_row(text, "decoded")[1][:after] == [short_token(t) for t in greedy.tokens[:after]]
        assert _status(screen).startswith(f"decode step {after}/{greedy.steps}   ")

    drive(check, engine=lab, size=(80, 24))


def test_f_while_a_new_model_is_built_changes_nothing():
    """The model being built copies the mode it started with: f meanwhile switched the old model's bench
    and the new one came back in the other mode. As the bench's keys, f waits for the build."""
    async def check(app, screen, pilot):
        lab = screen.engine
        screen.busy = "building a model with attention=none ..."  # (as _build says while its worker runs)
        await pilot.press("f")
        assert lab.decode_mode == "greedy" and lab.decoding is lab.decodings["greedy"]
        screen.busy = ""
        await pilot.press("f")
        assert lab.decode_mode == "teacher-forced"

    drive(check)


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 36)])
def test_every_footer_key_is_in_view_down_to_80_columns(size):
    """At 100 columns the footer ended "… s sto▏^p palette": below 120 it packs its keys closer and
    leaves out the palette's (ctrl+p still opens it), as the main lab's; the help lists every key."""
    async def check(app, screen, pilot):
        footer = screen_text(app).splitlines()[-1]
        for key in footer_keys(app, screen):
            # f (greedy/teacher-forced) is the one key without room at 80 columns: the help lists it
            assert (key in footer) == (key != "f forcing" or size[0] > 80), (key, footer)
        assert ("palette" in footer) == (size[0] >= 120)
        header = screen_text(app).splitlines()[0]
        # the sub-title fits, shortened; named as the other labs name theirs ("rnnlab — esn: ...")
        assert "…" not in header and "rnnlab — seq2seq: GRU H=8" in header

    drive(check, size=size)


def test_the_help_wraps_a_long_description_under_itself():
    """A description longer than the dialog's line went on under the keys ("  row appears" at the
    dialog's edge); the keys and descriptions are two columns, so it wraps under its own start."""
    async def check(app, screen, pilot):
        await pilot.press("question_mark")
        await pilot.pause()
        lines = screen_text(app).splitlines()
        at = next(k for k, line in enumerate(lines) if "decode: the decoder writes one more token" in line)
        column = lines[at].index("decode: ")
        assert lines[at].rstrip().endswith("│") and not lines[at].rstrip("│ ").endswith("appears")  # it wrapped
        follow = lines[at + 1]
        assert follow[:column].strip("│ ") == "" and follow[column] != " ", (lines[at], follow)

    drive(check, size=(80, 24))


# ---------------------------------------------------------------------------------------------
# trained work is not thrown away by one key; bench notes clipped with an ellipsis
# ---------------------------------------------------------------------------------------------

def test_q_with_trained_steps_names_them_and_only_a_second_q_quits():
    """The lab cannot save a model: one stray q (or ctrl+c) must not throw away the training."""
    async def check(app, screen, pilot):
        lab = screen.engine
        lab.train(until_step=3)
        for key in ("q", "ctrl+c"):
            app._quit_armed_until = 0.0  # a second press long after the first: asks again
            await pilot.press(key)
            await pilot.pause()
            assert app.return_code is None and app.screen is screen  # still open
            assert list(app._notifications)[-1].message == (
                "3 trained steps would be lost (this lab cannot save them): q (or ctrl+c) again quits, Esc stays")
        await pilot.press("q")  # within the few seconds: quits
        await pilot.pause()
        assert app.return_code == 0

    drive(check)


def test_the_first_q_s_warning_counts_the_steps_trained_after_it(monkeypatch):
    """The warning kept the count it was written with while training went on under it (the main lab's follows
    its count): the user read a stale number of steps to lose."""
    from rnnlab.tui import terminal

    monkeypatch.setattr(terminal, "QUIT_CONFIRM_S", 600.0)  # the warning stays up however slow the machine

    async def check(app, screen, pilot):
        lab = screen.engine
        lab.train(until_step=3)
        await pilot.press("q")
        await pilot.pause()
        lab.train(until_step=6)  # more steps under the warning (as a background training's)
        await wait_for(pilot, lambda: list(app._notifications)[-1].message.startswith("6 trained steps would be "
                                                                                      "lost"), what="a new count")
        assert app.return_code is None and len(app._notifications) == 1  # the same toast, its text changed

    drive(check, {"steps": 10})


def test_a_kill_quits_and_says_the_trained_steps_it_could_not_save():
    """SIGTERM (or SIGHUP) ended the lab at once, the terminal left in the alternate screen; now it
    quits as q does, 143, and says on stderr what was lost."""
    import signal

    async def check(app, screen, pilot):
        screen.engine.train(until_step=3)
        app.exit_on_signal(signal.SIGTERM)
        await wait_for(pilot, lambda: app.return_code is not None)
        assert app.return_code == 143
        assert app.exit_message == "SIGTERM: lost 3 trained steps (this lab cannot save a model)"

    drive(check)


def test_q_without_training_quits_at_once():
    async def check(app, screen, pilot):
        assert screen.unsaved_work() == ""
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0 and not app._notifications

    drive(check)


@pytest.mark.parametrize("key", ["a", "k"])
def test_an_untrained_model_switches_on_one_enter_without_a_warning(key):
    from rnnlab.tui.labs.seq2seq import Seq2SeqChoice

    async def check(app, screen, pilot):
        lab = screen.engine
        option = "attention" if key == "a" else "task"
        before = lab.options[option]
        await pilot.press(key)
        await pilot.pause()
        assert isinstance(app.screen, Seq2SeqChoice) and not app.screen.query("#choice-warning")
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: lab.options[option] != before and not screen.busy)

    drive(check)


def test_two_enters_in_one_batch_of_input_close_the_choice_alone():
    """An Enter that picks and a second queued behind it (a paste, a script) closed the choice and then
    the lab's screen under it (Textual's dismiss pops whatever is on top): the choice closes once."""
    from textual import events

    from rnnlab.tui.labs.seq2seq import Seq2SeqChoice

    async def check(app, screen, pilot):
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, Seq2SeqChoice)
        app.post_message(events.Key("down", None))
        for _ in range(2):  # posted with no await between: queued behind one another
            app.post_message(events.Key("enter", "\r"))
        await wait_for(pilot, lambda: not screen.busy and not isinstance(app.screen, Seq2SeqChoice))
        await pilot.pause()
        assert app.screen is screen

    drive(check)


def test_switching_the_task_of_a_trained_model_takes_a_second_enter_on_the_same_value():
    from rnnlab.tui.labs.seq2seq import Seq2SeqChoice

    async def check(app, screen, pilot):
        lab = screen.engine
        lab.train(until_step=2)
        await pilot.press("k")
        await pilot.pause()
        warning = app.screen.query_one("#choice-warning")
        assert "the 2 trained steps are lost" in str(warning.render())
        await pilot.press("enter")  # the current task: nothing to confirm, nothing changes
        await pilot.pause()
        assert not isinstance(app.screen, Seq2SeqChoice) and lab.trained_steps == 2
        await pilot.press("k")
        await pilot.pause()
        await pilot.press("down", "enter")  # reverse -> sort: asks
        await pilot.pause()
        assert isinstance(app.screen, Seq2SeqChoice) and lab.options["task"] == "reverse"
        assert "sort: Enter again drops the 2 trained steps" in screen_text(app)
        await pilot.press("escape")  # Esc keeps the model
        await pilot.pause()
        assert lab.options["task"] == "reverse" and lab.trained_steps == 2
        await pilot.press("k")
        await pilot.pause()
        await pilot.press("down", "enter", "enter")
        await wait_for(pilot, lambda: lab.options["task"] == "sort" and not screen.busy)
        assert lab.trained_steps == 0

    drive(check)


def _options_dialog(app):
    from rnnlab.tui.labs import OptionsPrompt

    return app.screen if isinstance(app.screen, OptionsPrompt) else None


async def _open_options(app, pilot):
    """e pressed: the options dialog (None where none opened)."""
    await pilot.press("e")
    await pilot.pause()
    return _options_dialog(app)


def _submit_options(app, pilot, text):
    app.screen.query_one("#prompt-input").value = text
    return pilot.press("enter")


def test_the_options_dialog_names_the_clis_own_eval_defaults_whole_at_80x24():
    """The lab scores every 250 steps on 100 sources, rnnlab seq2seq once at the end on 500: a user who
    met one saw the other's defaults unexplained. The dialog's notes say the CLI's, as its --help does."""
    import inspect

    from rnnlab.cli.seq2seq import seq2seq

    cli = {name: inspect.signature(seq2seq).parameters[name].default for name in ("eval_every", "eval_size")}
    assert cli != {name: DEFAULTS[name] for name in cli}  # (where they become one, the notes go)

    async def check(app, screen, pilot):
        await _open_options(app, pilot)
        text = screen_text(app)
        for name, default in cli.items():
            row = next(line for line in text.splitlines() if f" {name}  " in line)
            assert f"(CLI: {default})" in row, row

    drive(check, size=(80, 24))


def test_e_sets_any_option_prefilled_with_the_current_ones_and_keeps_the_bench():
    async def check(app, screen, pilot):
        lab = screen.engine
        lab.source_from_text("3 1 4 1 5")
        dialog = await _open_options(app, pilot)
        assert dialog is not None and not dialog.query("#prompt-warning")  # untrained: nothing to drop
        assert dialog.query_one("#prompt-input").value == " ".join(f"{k}={v}" for k, v in lab.options.items())
        table = str(dialog.query_one("#options-table").render())
        assert re.search(r"hidden_size  8 +\[1, 512\]", table) and re.search(r"cell  gru +rnn, lstm, gru", table)
        assert re.search(r"learning_rate  0.01 +\(0, 1\]", table)
        await pilot.press("enter")  # the options as they are: the model stays
        await pilot.pause()
        assert app.screen is screen and "options unchanged: the model stays" in screen_text(app)
        model = lab.model
        assert await _open_options(app, pilot) is not None
        await _submit_options(app, pilot, "hidden_size=4 cell=lstm")  # untrained: one Enter applies
        await wait_for(pilot, lambda: lab.model is not model and not screen.busy)
        assert lab.options["hidden_size"] == 4 and lab.options["cell"] == "lstm" and lab.trained_steps == 0
        assert lab.model.hidden_size == 4 and lab.model.cell == "lstm"
        assert lab.source.tolist() == [3, 1, 4, 1, 5]  # the bench keeps its digits
        assert "new model: LSTM H=4" in screen_text(app)
        await pilot.press("question_mark")
        await pilot.pause()
        assert "options: any option, name=value" in screen_text(app)

    drive(check)


@pytest.mark.parametrize("text, message", [
    ("hidden_size=x", "hidden_size must be an integer in [1, 512], got 'x'"),
    ("hidden_size=4 cell=transformer", "cell must be one of rnn, lstm, gru, got 'transformer'"),
    ("task=Sort", "task must be reverse or sort, got 'Sort' (did you mean 'sort'?)"),  # said "one of reverse, sort"
    ("min_length=9", "min_length must be <= max_length (5), got 9"),
    ("hiden_size=4", "unknown option 'hiden_size' (12 known; did you mean 'hidden_size'?)"),
    ("learning_rate=2", "learning_rate must be a number in (0, 1], got 2"),
])
def test_a_bad_option_is_named_in_the_dialog_with_its_range_and_nothing_changes(text, message):
    async def check(app, screen, pilot):
        lab = screen.engine
        model, options = lab.model, dict(lab.options)
        assert await _open_options(app, pilot) is not None
        await _submit_options(app, pilot, text)
        await pilot.pause()
        dialog = _options_dialog(app)
        assert dialog is not None  # the dialog stays, the error under the field
        assert str(dialog.query_one("#prompt-error").render()) == message
        assert lab.model is model and lab.options == options and not screen.busy
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen and lab.model is model

    drive(check)


def test_new_options_after_training_take_a_second_enter_that_names_the_trained_steps():
    async def check(app, screen, pilot):
        lab = screen.engine
        lab.train(until_step=2)
        warning = (await _open_options(app, pilot)).query_one("#prompt-warning")
        assert str(warning.render()) == ("Applying a change drops the 2 trained steps (this lab cannot save them), "
                                         "unless it changes only steps, batch_size, learning_rate, eval_every "
                                         "or eval_size.")
        await pilot.press("enter")  # nothing changed: nothing to drop, the dialog closes
        await pilot.pause()
        assert app.screen is screen and lab.trained_steps == 2 and "options unchanged" in screen_text(app)
        assert await _open_options(app, pilot) is not None
        await _submit_options(app, pilot, "hidden_size=0")  # a bad value is named at once, no confirmation
        await pilot.pause()
        assert str(app.screen.query_one("#prompt-error").render()).startswith("hidden_size must be an integer")
        assert "Applying a change" in str(app.screen.query_one("#prompt-warning").render())
        await _submit_options(app, pilot, "hidden_size=4")  # asks first
        await pilot.pause()
        assert _options_dialog(app) is not None and lab.trained_steps == 2 and lab.options["hidden_size"] == 8
        assert str(app.screen.query_one("#prompt-warning").render()) == (
            "Enter again drops the 2 trained steps for a fresh model; Esc keeps them.")
        await pilot.press("escape")  # Esc keeps them
        await pilot.pause()
        assert app.screen is screen and lab.trained_steps == 2 and lab.options["hidden_size"] == 8
        assert await _open_options(app, pilot) is not None
        await _submit_options(app, pilot, "hidden_size=4")
        await pilot.pause()
        assert _options_dialog(app) is not None and lab.trained_steps == 2
        await pilot.press("enter")  # the same text again: applied
        await wait_for(pilot, lambda: lab.options["hidden_size"] == 4 and not screen.busy)
        assert lab.trained_steps == 0 and app.screen is screen

    drive(check)


def test_more_steps_after_training_apply_at_the_first_enter_and_keep_the_trained_steps():
    """A user who trained and sets steps=... to train further was asked to drop the trained steps
    for a fresh model: steps and eval_* keep the model, one Enter applies them and t trains on."""
    async def check(app, screen, pilot):
        lab = screen.engine
        lab.train(until_step=2)
        model = lab.model
        assert await _open_options(app, pilot) is not None
        await _submit_options(app, pilot, "steps=3 eval_size=6")
        await pilot.pause()
        assert app.screen is screen and not screen.busy  # no second Enter
        assert lab.model is model and lab.trained_steps == 2 and len(lab.history) == 2
        assert lab.options["steps"] == 3 and lab.options["eval_size"] == 6
        assert "steps 3, eval_size 6: the model stays with its 2 trained steps" in screen_text(app)
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.training_status == "completed")
        assert lab.trained_steps == 5 and lab.model is model
        assert await _open_options(app, pilot) is not None
        await _submit_options(app, pilot, "steps=4 hidden_size=4")  # with a model option: asks first
        await pilot.pause()
        assert _options_dialog(app) is not None and lab.model is model and lab.options["steps"] == 3
        assert str(app.screen.query_one("#prompt-warning").render()).startswith("Enter again drops the 5 trained")

    drive(check)


def test_a_lower_learning_rate_or_larger_batch_after_training_applies_at_the_first_enter():
    """Fine-tuning a trained model (a lower rate, larger batches) asked to drop the trained steps
    for a fresh model: one Enter applies them, the model and Adam's state stay, t trains on with
    them, and the help and the dialog say which options keep the model."""
    async def check(app, screen, pilot):
        lab = screen.engine
        lab.train(until_step=2)
        model, optimizer = lab.model, lab.trainer.optimizer
        dialog = await _open_options(app, pilot)
        table = str(dialog.query_one("#options-table").render())
        assert re.search(r"batch_size  8 +\[1, 4096\]  sources per step", table)
        await _submit_options(app, pilot, "learning_rate=0.001 batch_size=16")
        await pilot.pause()
        assert app.screen is screen and not screen.busy  # no second Enter
        assert lab.model is model and lab.trainer.optimizer is optimizer and lab.trained_steps == 2
        assert (lab.trainer.batch_size, optimizer.learning_rate) == (16, 0.001)
        assert "batch_size 16, learning_rate 0.001: the model stays with its 2 trained steps" in screen_text(app)
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.training_status == "completed")
        assert lab.trained_steps == 6 and lab.model is model
        await pilot.press("question_mark")
        await pilot.pause()
        help_text = screen_text(app)
        assert "a new model, unless only" in help_text and "steps, batch_size, learning_rate or eval_*" in help_text

    drive(check)


def test_an_edit_after_the_first_enter_takes_back_its_enter_again_warning():
    """Enter on a model change armed "Enter again drops the 2 trained steps"; the text then edited to
    steps=... (which keeps the model) still read so, in bold, though Enter applies it in place."""
    async def check(app, screen, pilot):
        lab = screen.engine
        lab.train(until_step=2)
        dialog = await _open_options(app, pilot)
        await _submit_options(app, pilot, "hidden_size=4")
        await pilot.pause()
        warning = dialog.query_one("#prompt-warning")
        assert str(warning.render()).startswith("Enter again drops the 2 trained steps")
        dialog.query_one("#prompt-input").value = "steps=3"
        await pilot.pause()
        assert str(warning.render()).startswith("Applying a change drops") and not warning.has_class("armed")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen and lab.trained_steps == 2 and lab.options["steps"] == 3

    drive(check)


@pytest.mark.parametrize("size", [(60, 20), (80, 24)])
def test_the_options_dialog_is_whole_at_the_smallest_sizes(size):
    """Twelve options and, after training, the warning: the list scrolls (PgDn), while the frame,
    the field, its error and the hint stay on the screen."""
    width, height = size

    async def check(app, screen, pilot):
        screen.engine.train(until_step=2)
        dialog = await _open_options(app, pilot)
        await _submit_options(app, pilot, "hidden_size=x")
        await pilot.pause(0.2)
        assert dialog is not None and app.screen is dialog
        frame = dialog.query_one(".dialog").region
        assert frame.y >= 0 and frame.bottom <= height and frame.right <= width
        for part in ("#options-scroll", "#prompt-warning", "#prompt-input", "#prompt-error", "#prompt-hint"):
            region = dialog.query_one(part).region
            assert region.height > 0 and frame.y < region.y and region.bottom < frame.bottom, part
        lines = screen_text(app).splitlines()
        corners = (lines[frame.y][frame.x], lines[frame.y][frame.right - 1], lines[frame.bottom - 1][frame.x],
                   lines[frame.bottom - 1][frame.right - 1])
        assert corners == ("╭", "╮", "╰", "╯")  # drawn whole, on the screen
        assert any("hidden_size must be an integer in [1, 512], got 'x'" in line for line in lines)
        assert any("PgUp/PgDn" in line for line in lines)  # the list is cut: the hint says how to scroll it
        scroll = dialog.query_one("#options-scroll")
        await pilot.press("pagedown")
        await pilot.pause()
        assert scroll.scroll_y > 0 and app.focused is dialog.query_one("#prompt-input")

    drive(check, size=size)


def test_the_accuracy_plot_spans_the_loss_plots_steps():
    """The first score (at step 250 of the preset) sat mid-plot on an axis of its own, "225 ... 275"
    ("1.8 ... 2.2" at step 2), under a loss plot from step 1: both now span the steps trained."""
    from rnnlab.tui.labs.seq2seq import Seq2SeqTraining

    async def check(app, screen, pilot):
        lab = screen.engine
        lab.train(until_step=2)  # one score, at step 2
        screen.query_one(Seq2SeqTraining).update_from(lab)
        await pilot.pause()
        assert [e.step for e in lab.evals] == [2]
        axes = []
        for plot_id in ("#s2s-loss", "#s2s-buckets"):
            plot = screen.query_one(plot_id)
            axes.append(plot.render_line(plot.size.height - 1).text.split())
        assert axes == [["1", "2"], ["1", "2"]]

    drive(check)


def test_the_status_line_says_an_untrained_model_waits_for_t():
    """It read "idle step 0" until the first run, and again after a new model: untrained, and t
    trains it, as the treebank lab's status line says; a trained model keeps its state and steps."""
    async def check(app, screen, pilot):
        lab = screen.engine
        status = lambda: str(screen.query_one("#s2s-status").render())  # noqa: E731
        assert "untrained (t trains)" in status() and "idle" not in status()
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.training_status == "completed")
        await pilot.pause()
        assert "completed step 4" in status()
        await pilot.press("a", "down", "enter", "enter")  # another attention: a fresh model
        await wait_for(pilot, lambda: lab.trained_steps == 0 and not screen.busy)
        await pilot.pause()
        assert "untrained (t trains)" in status()

    drive(check)


def test_a_long_message_and_status_line_are_cut_with_an_ellipsis_not_wrapped_out_of_view():
    """At 80 columns "new model: ... (untrained: t trains it)" showed "(untrained: t" and the status line
    "building a model" without what: each wrapped onto a second line that its one row hides."""
    async def check(app, screen, pilot):
        screen.show_message("new model: GRU H=8, additive attention; reverse 2-5 digits (untrained: t trains it)")
        screen.busy = "building a model with hidden_size 16, cell lstm ..."
        screen.update_status()
        await pilot.pause()
        message, status = screen_text(app).splitlines()[-3:-1]
        assert message.startswith(" new model: GRU H=8") and message.endswith("…") and len(message) <= 80
        assert "building a model with hid" in status and status.endswith("…")

    drive(check, size=(80, 24))


def test_a_message_too_long_for_80_columns_gives_up_its_hint_whole():
    """At 80 columns "new model: ... (untrained: t trains i…" was cut mid-word; the hint gives way whole
    (the status line says "untrained (t trains)"), as the round's "(t pauses, s stops)" does."""
    async def check(app, screen, pilot):
        screen._build({"attention": "none"})
        await wait_for(pilot, lambda: not screen.busy and "new model" in screen_text(app))
        message = screen_text(app).splitlines()[-3]
        assert message.strip() == "new model: GRU H=16, no attention; reverse 2-10 digits"
        assert "untrained (t trains)" in screen_text(app).splitlines()[-2]

    drive(check, {"hidden_size": 16, "max_length": 10}, size=(80, 24))


def _decoded_note(app) -> str:
    return bench_row(screen_text(app), "decoded")[2]


@pytest.mark.parametrize("digits", [9, 11])
def test_a_shortened_verdict_is_a_whole_form_that_keeps_the_count(digits):
    """At 80x24 the decoded row's verdict is a shorter form of its own where the whole one does not fit
    ("wrong 12/12", "✗ 14/14"), the count of wrong tokens kept: it read "wrong…", a word cut short, and
    never cut; at 160 columns the same decoding shows the whole verdict."""
    notes = {}

    def at(size):
        async def check(app, screen, pilot):
            screen.engine.set_source([3] * digits)
            screen.update_views()
            await pilot.pause()
            notes[size] = _decoded_note(app), screen.engine.decoding
            bench = screen.query_one("#s2s-bench")
            for y in range(3):
                assert len(bench.render_line(y).text.rstrip()) <= bench.size.width
        drive(check, size=size)

    at((160, 50))
    at((80, 24))
    (whole, _), (short, decoding) = notes[(160, 50)], notes[(80, 24)]
    wrong, steps = int((~decoding.correct).sum()), decoding.steps
    assert whole.strip().startswith(f"wrong: {wrong} of {steps} token") and not whole.endswith("…")
    assert short.strip() != whole.strip() and not short.endswith("…")
    assert short.strip() in (f"wrong: {wrong} of {steps} tokens", f"wrong: {wrong} of {steps}",
                             f"wrong {wrong}/{steps}", f"✗ {wrong}/{steps}")


# ---------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------

def _cli(args):
    import importlib

    from rnnlab.cli import main

    importlib.import_module("rnnlab.cli.seq2seq")  # registers the command (until rnnlab.cli imports it)

    return main(args)


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
def test_the_step_line_says_where_the_decoder_looked_in_shorter_words_where_it_must(size):
    """At 80 columns "looked at source position …" lost the position, the digit and the weight."""
    async def check(app, screen, pilot):
        lab = screen.engine
        await pilot.press("home", "right", "right")
        info = lab.step_info()
        line = next(line for line in screen_text(app).splitlines() if line.lstrip().startswith("step 2/"))
        assert "…" not in line
        digit, weight = short_token(info.focus_token), f"{info.focus_weight:.2f}"
        assert (f"looked at source position {info.focus + 1} (digit {digit}, weight {weight})" in line
                if size[0] == 120 else f"← source {info.focus + 1} ({digit}, {weight})" in line), line

    drive(check, {"max_length": 10}, size=size)


def test_pgdn_scrolls_the_training_column_of_a_short_terminal():
    """At 80x24 the accuracy plot and the decoding table lay below the column's edge, and only the
    mouse wheel reached them."""
    async def check(app, screen, pilot):
        side = screen.query_one("#s2s-side")
        await pilot.pause()
        assert side.max_scroll_y > 0 and side.scroll_y == 0
        await pilot.press("pagedown")
        await pilot.pause()
        assert side.scroll_y > 0
        await pilot.press("pageup")
        await pilot.pause()
        assert side.scroll_y == 0

    drive(check, size=(80, 24))


def test_both_training_plots_show_whole_in_a_short_terminal():
    """At 80x24 the loss and accuracy plots, 8 rows each, overran the training column's 15: the
    accuracy chart was cut above its x-axis. They share the column now, the table scrolling under them."""
    async def check(app, screen, pilot):
        await pilot.pause()
        side = screen.query_one("#s2s-side")
        for plot_id in ("#s2s-loss", "#s2s-buckets"):
            plot = screen.query_one(plot_id)
            assert plot.size.height >= 5 and side.content_region.contains_region(plot.region), (plot_id, plot.region)
        await pilot.resize_terminal(160, 50)  # room: their own height again
        await wait_for(pilot, lambda: screen.query_one("#s2s-loss").size.height == 11, what="the plots' 11 rows")

    drive(check, size=(80, 24))


CLI_SMALL = ["--steps", "3", "--hidden-size", "4", "--max-length", "4", "--eval-size", "5"]


def test_cli_trains_and_prints_accuracy_by_length(capsys):
    assert _cli(["seq2seq", *CLI_SMALL, "--attention", "none", "--task", "sort"]) == 0
    out = capsys.readouterr().out
    assert "no attention; sort 3-4 digits" in out
    assert "sequence accuracy" in out and "5-7 (longer than training)" in out and "3 steps" in out
    example = next(line for line in out.splitlines() if line.startswith("example: "))
    assert "(wrong; expected " in example and example.endswith(" </s>)")  # 3 steps: wrong, and what was due


def test_cli_json(capsys):
    assert _cli(["seq2seq", *CLI_SMALL, "--attention", "dot", "--seed", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["lab"] == "seq2seq" and data["trained_steps"] == 3 and data["status"] == "completed"
    options = data["options"]
    assert options["attention"] == "dot" and options["seed"] == 3 and options["hidden_size"] == 4
    assert [(b["min_length"], b["max_length"], b["unseen"]) for b in data["buckets"]] == [
        (3, 3, False), (4, 4, False), (5, 7, True)]
    assert all(b["count"] == 5 for b in data["buckets"])


def test_cli_batch_size_and_eval_every_reach_the_lab(capsys):
    """The lab takes batch_size and eval_every, the command had no flags for them: --eval-every N
    also scores every N steps, each score a line on stderr."""
    assert _cli(["seq2seq", *CLI_SMALL, "--steps", "4", "--batch-size", "3", "--eval-every", "2", "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["options"]["batch_size"] == 3 and data["options"]["eval_every"] == 2 and data["trained_steps"] == 4
    scored = [line for line in captured.err.splitlines() if "sequence accuracy by source length" in line]
    assert len(scored) == 1 and scored[0].startswith("rnnlab: seq2seq: step 2: sequence accuracy by source length 3 ")
    assert "5-7* " in scored[0]


@pytest.mark.parametrize("args, message", [
    (["--attention", "luong"], "--attention must be one of none, dot, general, additive"),
    (["--hidden-size", "0"], "--hidden-size must be an integer in [1, 512]"),
    (["--min-length", "12"], "--min-length must be <= --max-length (10), got 12"),
    (["--max-length", "2"], "--max-length must be >= --min-length (3), got 2"),
    (["--steps", "many"], "--steps must be an integer, got 'many'"),
    (["--batch-size", "0"], "--batch-size must be an integer in [1, 4096], got 0"),
    (["--eval-every", "-1"], "--eval-every must be an integer in [0, 10000000], got -1"),
])
def test_cli_bad_option_is_one_line_and_exit_2(capsys, args, message):
    assert _cli(["seq2seq", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_cli_help_shows_the_engines_own_ranges(capsys, monkeypatch):
    from rnnlab.labs import seq2seq as engine

    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setitem(engine._LIMITS, "hidden_size", (1, 777))  # the help reads the engine, not a copy
    assert _cli(["seq2seq", "--help"]) == 0
    out = capsys.readouterr().out

    def option_line(flag):
        return next(line for line in out.splitlines() if f" {flag} " in line)

    assert "In [1, 777] (preset: 32)." in option_line("--hidden-size")
    assert "In [1, 50] (preset: 10)." in option_line("--max-length")
    assert "In (0, 1] (preset: 0.01)." in option_line("--learning-rate")
    assert "In [0, 2^63-1] (preset: 0)." in option_line("--seed")
    assert "In [1, 10000]." in option_line("--eval-size") and "additive. Preset: general." in option_line("--attention")


def test_ctrl_c_during_the_scoring_stops_it_between_buckets_and_the_cli_exits_130(capsys, monkeypatch):
    """Ctrl-C while rnnlab seq2seq scored its buckets (minutes with a large --eval-size) was
    ignored: the scoring ran on and the command exited 0."""
    import signal

    from conftest import run_cli

    lab = small()
    record = lab.evaluate(should_stop=lambda: True)  # one bucket is scored before it looks
    assert len(record.buckets) == 1 and len(lab.buckets) > 1

    original = Seq2SeqLab.evaluate

    def scoring(self, should_stop=lambda: False):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C as the final scoring starts
        return original(self, should_stop)

    monkeypatch.setattr(Seq2SeqLab, "evaluate", scoring)
    code, out, err = run_cli(capsys, "seq2seq", "--steps", "3", "--eval-size", "8", "--max-length", "12")
    assert code == 130 and "source length" in out
    assert err.splitlines()[-1].startswith("trained 3 steps; scoring stopped after 1 of ")


def test_p_says_a_screenshot_it_cannot_save_and_the_lab_goes_on(monkeypatch, tmp_path):
    """An unwritable working directory ended the architecture labs with a traceback (code review);
    a saved one is named by its absolute path, as the main lab's."""
    from conftest import refuse_screenshots

    monkeypatch.chdir(tmp_path)

    async def check(app, screen, pilot):
        said = []
        screen.show_message = lambda text, error=False: said.append((text, error))
        await pilot.press("p")
        saved = list(tmp_path.glob("*.svg"))
        assert len(saved) == 1 and said == [(f"screenshot saved to {saved[0].resolve()}", False)]
        refuse_screenshots(monkeypatch, app)
        await pilot.press("p")
        assert said[-1] == ("cannot save the screenshot: Permission denied", True) and app.is_running

    drive(check)
