"""Tasks and data: batch layout, determinism, targets, baselines, validation and file loaders."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnlab.data import (REQUIRED, SAMPLE_DIR, TASKS, Batch, MackeyGlassTask, Task, load_series, load_text,
                         mackey_glass, make_task, task_fields)
from rnnlab.errors import DataError, SpecError
from rnnlab.data.files import load_named_series
from rnnlab.spec import Spec

ROOT = Path(__file__).resolve().parent.parent
SHAKESPEARE = SAMPLE_DIR / "tiny-shakespeare.txt"

#: One configuration per kind (with the options a kind requires).
CONFIGS = {
    "hello": {},
    "text": {"path": "tiny-shakespeare.txt"},
    "adding": {"length": 20},
    "copy": {"delay": 5},
    "selective-copy": {"length": 17, "tokens": 5, "vocab_size": 6},
    "sine": {"length": 30, "noise": 0.1},
    "two-scales": {"length": 40, "noise": 0.2},
    "mackey-glass": {"length": 40},
    "parity": {"length": 12, "min_length": 4},
    "counting": {"max_count": 5},
    "series": {"path": "example-series.csv", "length": 30},
}
KINDS = list(CONFIGS)


@pytest.fixture(scope="module")
def tasks() -> dict[str, Task]:
    return {kind: make_task(kind, opts) for kind, opts in CONFIGS.items()}


def same(a: Batch, b: Batch) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("x", "y", "mask", "lengths"))


def spec_error(kind, options, base_dir=None) -> SpecError:
    with pytest.raises(SpecError) as info:
        make_task(kind, options, base_dir)
    return info.value


def data_error(fn, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


# ---- every task: layout, determinism, display, options -----------------------------------------

def test_registry_lists_every_kind_in_order():
    assert list(TASKS) == ["hello", "text", "adding", "copy", "selective-copy", "sine", "two-scales", "mackey-glass",
                           "parity", "counting", "series"]
    assert set(CONFIGS) == set(TASKS)


@pytest.mark.parametrize("kind", KINDS)
def test_batch_shapes_and_dtypes(tasks, kind):
    task = tasks[kind]
    B = 5
    for batch in (task.batch(B, 3, 11), task.eval_batch(B, 11)):
        T = task.length
        assert batch.x.shape == (T, B, task.input_size) and batch.x.dtype == np.float64
        assert batch.mask.shape == (T, B) and batch.mask.dtype == np.bool_
        assert batch.lengths.shape == (B,) and batch.lengths.dtype == np.int64
        assert (batch.T, batch.B) == (T, B)
        assert np.isfinite(batch.x).all()
        if task.loss == "xent":
            assert batch.y.shape == (T, B) and batch.y.dtype == np.int64
            assert len(task.vocab) == task.output_size
            assert batch.y.min() >= 0 and batch.y.max() < task.output_size
        else:
            assert task.loss == "mse" and task.vocab is None
            assert batch.y.shape == (T, B, task.output_size) and batch.y.dtype == np.float64
            assert np.isfinite(batch.y).all()
        assert batch.mask.any(axis=0).all(), "every sequence has a step that counts"
        assert (batch.y[~batch.mask] == 0).all(), "targets are 0 where they do not count"
        assert ((batch.lengths >= 1) & (batch.lengths <= T)).all()
        assert task.mode in ("many-to-many", "many-to-one", "one-to-many")


@pytest.mark.parametrize("kind", KINDS)
def test_batches_are_deterministic_and_eval_is_held_apart(tasks, kind):
    task = tasks[kind]
    a, again = task.batch(6, 7, 3), task.batch(6, 7, 3)
    assert same(a, again)
    assert same(task.eval_batch(6, 3), task.eval_batch(6, 3))
    if kind == "hello":  # one fixed word: nothing random
        return
    assert not same(a, task.batch(6, 8, 3)), "another step gives another batch"
    assert not same(a, task.batch(6, 7, 4)), "another seed gives another batch"
    ev = task.eval_batch(6, 3)
    assert not any(same(ev, task.batch(6, s, 3)) for s in range(5))


@pytest.mark.parametrize("kind", KINDS)
def test_tokens_describe_and_baseline(tasks, kind):
    task = tasks[kind]
    batch = task.batch(3, 0, 0)
    for b in range(3):
        inputs, targets = task.input_tokens(batch, b), task.target_tokens(batch, b)
        assert len(inputs) == len(targets) == task.length
        assert all(isinstance(s, str) and 0 < len(s) <= 8 for s in inputs)
        assert all((s == "") == (not m) for s, m in zip(targets, batch.mask[:, b]))
    line = task.describe()
    assert line and "\n" not in line and line.startswith(kind)
    base = task.baseline()
    assert base is not None and base.loss > 0 and math.isfinite(base.loss)
    assert (base.accuracy is None) == (task.loss == "mse")


@pytest.mark.parametrize("kind", KINDS)
def test_options_round_trip_to_an_equal_task(tasks, kind):
    task = tasks[kind]
    opts = task.options()
    assert list(opts) == list(task_fields(kind))
    assert all(isinstance(v, (bool, int, float, str)) for v in opts.values())  # TOML-writable
    again = make_task(kind, opts, base_dir="/nonexistent")  # paths are absolute: base_dir unused
    assert again == task and hash(again) == hash(task)
    assert same(again.batch(4, 2, 9), task.batch(4, 2, 9))
    assert same(again.eval_batch(4, 9), task.eval_batch(4, 9))
    assert make_task(kind, {"kind": kind, **opts}) == task  # a whole [task] table is accepted


def test_task_fields_declare_defaults_and_help():
    for kind in TASKS:
        fields = task_fields(kind)
        assert all(isinstance(h, str) and h for _, h in fields.values())
    assert task_fields("text")["path"][0] is REQUIRED and task_fields("series")["path"][0] is REQUIRED
    assert task_fields("adding") == {"length": (50, task_fields("adding")["length"][1])}
    assert task_fields("copy")["delay"][0] == 10
    assert task_fields("parity")["min_length"][0] is None  # derived: = length
    assert make_task("parity", {"length": 7}).min_length == 7
    assert make_task("counting", {"max_count": 5}).length == 6
    assert make_task("hello").options() == {"text": "hello"}


def test_batch_arguments_are_checked(tasks):
    for args in [(0, 0, 0), (2, -1, 0), (2, 0, -1), (True, 0, 0), (2.0, 0, 0)]:
        with pytest.raises(ValueError):
            tasks["adding"].batch(*args)


# ---- hello and text ---------------------------------------------------------------------------

def test_hello_is_min_char_rnn():
    task = make_task("hello")
    assert task.vocab == ("h", "e", "l", "o") and task.length == 4
    batch = task.batch(3, 0, 0)
    assert task.decode(batch.x[:, 1].argmax(-1)) == "hell"
    assert task.decode(batch.y[:, 2]) == "ello"
    assert task.input_tokens(batch) == list("hell") and task.target_tokens(batch) == list("ello")
    assert task.baseline().loss == pytest.approx(math.log(4))


@given(st.text(alphabet="helo", min_size=2, max_size=30))
def test_sequence_from_text_round_trips(text):
    task = make_task("hello")
    assert task.decode(task.encode(text)) == text
    seq = task.sequence_from_text(text)
    assert seq.x.shape == (len(text) - 1, 1, 4) and seq.mask.all() and seq.lengths.tolist() == [len(text) - 1]
    assert task.decode(seq.x[:, 0].argmax(-1)) == text[:-1]
    assert task.decode(seq.y[:, 0]) == text[1:]


def test_unknown_characters_and_short_sequences_are_data_errors():
    task = make_task("hello")
    msg = data_error(task.encode, "hellx")
    assert "'x'" in msg and "position 5" in msg  # counted from 1, as the lab's steps
    assert "position 2" in data_error(task.sequence_from_text, "h!llo")
    assert "at least 2" in data_error(task.sequence_from_text, "h")
    text = make_task("text", {"path": "tiny-shakespeare.txt"})
    assert text.decode(text.encode("Speak, speak.\n")) == "Speak, speak.\n"
    assert "position 4" in data_error(text.sequence_from_text, "abc@")


def test_typed_numbers_take_ascii_digits_only_as_every_other_typed_number():
    """float() and int() read other scripts' digits ("٠.٩" as 0.9, "٣" as 3) and underscores
    ("0_0.3" as 0.3, a typo taken); the options and --set take ASCII digits only."""
    assert "is not a number" in data_error(make_task("adding").sequence_from_text, "0.1 \u0660.\u0669* 0.2 0.5*")
    assert "is not a number" in data_error(make_task("adding").sequence_from_text, "0.1 0.9* 0.2 0_0.3*")
    assert "type one whole number k" in data_error(make_task("counting").sequence_from_text, "\u0663")
    assert make_task("counting").sequence_from_text("3").y[:, 0].tolist()[:4] == [1, 2, 3, 0]


def test_text_vocab_baseline_and_display():
    task = make_task("text", {"path": "tiny-shakespeare.txt", "length": 16})
    raw = SHAKESPEARE.read_text(encoding="utf-8")
    assert task.chars == tuple(sorted(set(raw))) and task.output_size == len(task.chars)
    assert "⏎" in task.vocab and "␣" in task.vocab  # newline and space shown visibly
    split = len(raw) - len(raw) // 10  # the last tenth is held out
    counts = Counter(raw[:split])
    p = np.array(list(counts.values())) / split
    base = task.baseline()
    assert base.name == "unigram" and base.loss == pytest.approx(float(-(p * np.log(p)).sum()), rel=1e-12)
    assert base.accuracy == pytest.approx(max(counts.values()) / split)


def test_text_streams_continue_each_other():
    task = make_task("text", {"path": "tiny-shakespeare.txt", "length": 16})
    assert task.stream
    raw = SHAKESPEARE.read_text(encoding="utf-8")
    train = raw[: len(raw) - len(raw) // 10]
    B, T = 4, 16
    windows = [task.batch(B, s, 5) for s in range(3)]
    for b in range(B):
        ids = [w.x[:, b].argmax(-1) for w in windows]
        for s in range(2):  # window s+1 starts where window s's input ended, i.e. at its last target
            assert ids[s + 1][0] == windows[s].y[-1, b]
            assert np.array_equal(ids[s][1:], windows[s].y[:-1, b])
        stream = task.decode(np.concatenate(ids))
        assert stream in train + train[: 3 * T]  # a contiguous (possibly wrapped) piece of the training text
    starts = [train.index(task.decode(windows[0].x[:, b].argmax(-1))) for b in range(B)]
    gaps = np.diff(sorted(starts))
    assert (abs(gaps - len(train) // B) <= 1).all() or len(set(starts)) < B  # evenly spaced streams
    far = task.batch(B, 10**6, 5)  # far past the end: wraps around
    assert far.x.shape == (T, B, task.input_size)


def test_text_eval_comes_from_the_held_out_tail():
    task = make_task("text", {"path": "tiny-shakespeare.txt", "length": 30})
    raw = SHAKESPEARE.read_text(encoding="utf-8")
    tail = raw[len(raw) - len(raw) // 10:]
    ev = task.eval_batch(8, 0)
    for b in range(8):
        assert task.decode(ev.x[:, b].argmax(-1)) + task.decode(ev.y[-1:, b]) in tail


def test_a_held_out_tail_of_exactly_one_window_is_every_eval_window(tmp_path):
    """The eval windows of a text whose held-out tenth is exactly length + 1 characters: each must be
    that tail, no character of the training part in it (a split one early went unnoticed: 8 random
    windows were only checked to lie somewhere in the tail), and drawing them must not fail."""
    path = tmp_path / "t.txt"
    path.write_text("ab" * 50 + "0123456789X", encoding="utf-8")  # 111 characters: the last 11 held out
    task = make_task("text", {"path": str(path), "length": 10})
    assert len(task._eval_ids) == 11 and not task.eval_not_held_out
    for seed in range(5):
        ev = task.eval_batch(8, seed)
        for b in range(8):
            assert task.decode(ev.x[:, b].argmax(-1)) + task.decode(ev.y[-1:, b]) == "0123456789X"


# ---- synthetic tasks ---------------------------------------------------------------------------

@given(length=st.integers(2, 80), seed=st.integers(0, 2**32), step=st.integers(0, 10**6))
def test_adding_targets_and_markers(length, seed, step):
    task = make_task("adding", {"length": length})
    batch = task.batch(8, step, seed)
    values, markers = batch.x[..., 0], batch.x[..., 1]
    half = length // 2
    assert ((values >= 0) & (values < 1)).all()
    assert (markers[:half].sum(axis=0) == 1).all() and (markers[half:].sum(axis=0) == 1).all()
    assert np.allclose(batch.y[-1, :, 0], (values * markers).sum(axis=0))
    assert batch.mask[-1].all() and batch.mask.sum() == 8
    assert task.input_tokens(batch).count("*") == 0
    assert sum(tok.endswith("*") for tok in task.input_tokens(batch)) == 2


def test_adding_baseline_matches_monte_carlo():
    task = make_task("adding", {"length": 4})
    y = task.batch(200_000, 0, 0).y[-1, :, 0]
    assert task.baseline().loss == 1 / 6
    assert np.mean((y - 1.0) ** 2) == pytest.approx(1 / 6, abs=3e-3)


def test_copy_layout_targets_and_baseline():
    delay = 7
    task = make_task("copy", {"delay": delay})
    T = delay + 20
    assert task.length == T and (task.input_size, task.output_size) == (10, 9)
    batch = task.batch(16, 0, 0)
    ids = batch.x.argmax(-1)
    assert np.array_equal(batch.x.sum(-1), np.ones((T, 16)))  # one-hot
    symbols = ids[:10]
    assert ((symbols >= 1) & (symbols <= 8)).all()
    assert (ids[10:10 + delay - 1] == 0).all() and (ids[10 + delay - 1] == 9).all() and (ids[10 + delay:] == 0).all()
    assert (batch.y[:delay + 10] == 0).all() and np.array_equal(batch.y[delay + 10:], symbols)
    assert batch.mask.all()
    # The memoryless predictor: certain blank before the recall window, uniform over 1..8 inside it.
    probs = np.zeros((T, 9))
    probs[:delay + 10, 0] = 1.0
    probs[delay + 10:, 1:] = 1 / 8
    loss = -np.log(probs[np.arange(T)[:, None], batch.y]).mean()
    base = task.baseline()
    assert base.loss == pytest.approx(10 * math.log(8) / (delay + 20)) and loss == pytest.approx(base.loss)
    assert base.accuracy == pytest.approx((delay + 10 + 10 / 8) / T)
    assert task.input_tokens(batch)[10 + delay - 1] == "▶"


def test_selective_copy_layout_targets_and_baseline():
    L, K, V = 12, 5, 6  # tokens among L steps, then K markers
    task = make_task("selective-copy", {"length": L + K, "tokens": K, "vocab_size": V})
    T, B = L + K, 64
    assert task.length == T and (task.input_size, task.output_size) == (V + 2, V)
    assert task.vocab == ("1", "2", "3", "4", "5", "6")
    batch = task.batch(B, 0, 0)
    ids = batch.x.argmax(-1)
    assert np.array_equal(batch.x.sum(-1), np.ones((T, B)))  # one-hot
    assert (ids[L:] == V + 1).all() and (ids[:L] != V + 1).all()  # K markers at the end, none before
    data = ids[:L] > 0
    assert (data.sum(axis=0) == K).all()  # exactly K tokens among the blanks
    for b in range(B):
        tokens = ids[:L, b][data[:, b]]  # in order of position
        assert ((tokens >= 1) & (tokens <= V)).all()
        assert np.array_equal(batch.y[L:, b], tokens - 1)  # recalled in order, class = token - 1
    assert (batch.y[:L] == 0).all() and not batch.mask[:L].any() and batch.mask[L:].all()
    # the positions move from sequence to sequence (plain copy's do not): that is the point
    assert len({tuple(np.flatnonzero(data[:, b])) for b in range(B)}) > B // 2
    assert np.unique(np.flatnonzero(data.any(axis=1))).size == L  # every position gets used
    base = task.baseline()
    assert base.name == "chance" and base.loss == pytest.approx(math.log(V)) and base.accuracy == 1 / V
    tokens = task.input_tokens(batch, 3)
    assert tokens[L:] == ["▶"] * K and tokens.count("·") == L - K
    assert task.target_tokens(batch, 3)[L:] == [task.vocab[c] for c in batch.y[L:, 3]]
    full = make_task("selective-copy", {"length": 10, "tokens": 5}).batch(4, 0, 0)  # every step a token
    assert (full.x.argmax(-1)[:5] > 0).all()
    with pytest.raises(SpecError, match=r"task.tokens.*at most length / 2 \(4: .*got 5"):
        make_task("selective-copy", {"length": 9, "tokens": 5})


@given(length=st.integers(1, 40), data=st.data())
def test_parity_targets_and_variable_length_masks(length, data):
    min_length = data.draw(st.integers(1, length))
    seed = data.draw(st.integers(0, 2**32))
    task = make_task("parity", {"length": length, "min_length": min_length})
    batch = task.batch(16, 0, seed)
    bits, B = batch.x[..., 0], 16
    assert ((batch.lengths >= min_length) & (batch.lengths <= length)).all()
    assert np.array_equal(batch.mask.sum(axis=0), np.ones(B))
    for b in range(B):
        n = int(batch.lengths[b])
        assert batch.mask[n - 1, b]
        assert batch.y[n - 1, b] == int(bits[:n, b].sum()) % 2
        assert (bits[n:, b] == 0).all()
        tokens = task.input_tokens(batch, b)
        assert tokens[n:] == ["·"] * (length - n) and set(tokens[:n]) <= {"0", "1"}


def test_parity_lengths_vary_over_the_whole_range():
    batch = make_task("parity", {"length": 10, "min_length": 3}).batch(500, 0, 0)
    assert set(batch.lengths.tolist()) == set(range(3, 11))
    assert make_task("parity", {"length": 10}).batch(50, 0, 0).lengths.tolist() == [10] * 50
    assert make_task("parity").baseline().loss == pytest.approx(math.log(2))


def test_counting_targets_and_baseline():
    task = make_task("counting", {"max_count": 6, "length": 9})
    batch = task.batch(2000, 0, 0)
    assert (batch.x[1:] == 0).all() and np.array_equal(batch.x[0].sum(-1), np.ones(2000))
    k = batch.x[0].argmax(-1) + 1
    for b in range(20):
        assert batch.y[:, b].tolist() == list(range(1, k[b] + 1)) + [0] * (9 - k[b])
        assert task.target_tokens(batch, b)[: k[b]] == [str(i) for i in range(1, k[b] + 1)]
    assert set(k.tolist()) == set(range(1, 7))
    # The input-free predictor's loss on a big batch matches the analytic baseline.
    p_count = np.clip((6 - np.arange(9)) / 6, 0, 1)
    p_target = np.where(batch.y == 0, 1 - p_count[:, None], p_count[:, None])
    assert -np.log(p_target).mean() == pytest.approx(task.baseline().loss, abs=0.02)
    assert task.input_tokens(batch, 0)[0] == str(k[0]) and task.input_tokens(batch, 0)[1:] == ["·"] * 8


def test_sine_targets_and_persistence_baseline():
    clean = make_task("sine", {"length": 20, "min_period": 10.0, "max_period": 12.0})
    batch = clean.batch(20_000, 0, 0)
    assert np.array_equal(batch.x[1:], batch.y[:-1])  # y_t is the value at t+1
    assert np.abs(batch.x).max() <= 1.0
    mc = np.mean((batch.y - batch.x) ** 2)
    assert clean.baseline().loss == pytest.approx(mc, rel=0.01)
    fixed = make_task("sine", {"min_period": 16.0, "max_period": 16.0})
    assert fixed.baseline().loss == pytest.approx(1 - math.cos(2 * math.pi / 16))
    noisy = make_task("sine", {"length": 20, "noise": 0.3, "min_period": 10.0, "max_period": 12.0})
    nb = noisy.batch(20_000, 0, 0)
    assert np.std(nb.x[1:] - nb.y[:-1]) == pytest.approx(0.3, rel=0.02)  # noise on inputs, clean targets
    assert noisy.baseline().loss == pytest.approx(clean.baseline().loss + 0.09)
    assert noisy.baseline().loss == pytest.approx(np.mean((nb.y - nb.x) ** 2), rel=0.01)


def test_two_scales_targets_are_the_clean_slow_and_fast_parts_of_the_input():
    clean = make_task("two-scales", {"length": 150, "noise": 0.0, "slow_min_period": 100.0, "slow_max_period": 120.0,
                                     "fast_min_period": 4.0, "fast_max_period": 5.0})
    assert (clean.input_size, clean.output_size, clean.loss) == (1, 2, "mse")
    batch = clean.batch(2000, 0, 0)
    assert batch.y.shape == (150, 2000, 2) and batch.mask.all()
    np.testing.assert_allclose(batch.x[..., 0], batch.y[..., 0] + batch.y[..., 1], atol=1e-12)  # x = slow + fast
    assert np.abs(batch.y).max() <= 1.0
    # the slow part moves little from one step to the next, the fast part a lot
    slow_step, fast_step = (np.mean(np.diff(batch.y[..., k], axis=0) ** 2) for k in (0, 1))
    assert slow_step < 0.005 < 0.5 < fast_step
    # the zero baseline: E[sin^2] = 1/2 for each part
    assert clean.baseline().loss == 0.5 and np.mean(batch.y ** 2) == pytest.approx(0.5, rel=0.02)
    noisy = make_task("two-scales", {"length": 150, "noise": 0.4})
    nb = noisy.batch(2000, 0, 0)
    assert np.std(nb.x[..., 0] - nb.y.sum(axis=2)) == pytest.approx(0.4, rel=0.02)  # noise on inputs only
    assert "two-scales" in noisy.describe() and "noise std 0.4" in noisy.describe()


# ---- Mackey-Glass ------------------------------------------------------------------------------

def test_mackey_glass_matches_reservoirpy():
    # Numbers printed by reservoirpy 0.3.12: reservoirpy.datasets.mackey_glass(...)[:, 0]
    x = mackey_glass(2000)
    assert x.shape == (2000,) and x.dtype == np.float64
    expected = [1.2, 1.1354969068838492, 1.057359724580625, 0.4675952944832385, 0.454855039044518,
                1.2987879341478634, 1.0832410908936039, 1.0470591740109891, 0.5228837023051724]
    np.testing.assert_allclose(x[[0, 1, 2, 17, 18, 100, 500, 1000, 1999]], expected, rtol=1e-12)
    assert x.min() == pytest.approx(0.39826336179707894) and x.max() == pytest.approx(1.3301130170114106)
    y = mackey_glass(300, tau=30, seed=42, h=0.5)
    np.testing.assert_allclose(y[[0, 1, 50, 299]], [1.2, 1.1529392471402098, 0.4178617460032238,
                                                    1.2418050219538015], rtol=1e-12)
    z = mackey_glass(100, tau=0)  # no delay: plain RK4 decay dx/dt = -0.1 x
    np.testing.assert_allclose(z[[0, 1, 99]], [1.2, 1.085805, 6.02101584202189e-05], rtol=1e-12)


def test_mackey_glass_solves_the_delay_equation():
    def rate(xt, xd):
        return -0.1 * xt + 0.2 * xd / (1 + xd**10)

    residuals = {}
    for h in (1.0, 0.1):
        lag = round(17 / h)
        x = mackey_glass(round(3000 / h), h=h)
        i = np.arange(round(200 / h), len(x) - 1)
        slope = (x[i + 1] - x[i - 1]) / (2 * h)
        residuals[h] = np.abs(slope - rate(x[i], x[i - lag])).max() / np.abs(slope).max()
    assert residuals[0.1] < 0.05 and residuals[0.1] < residuals[1.0] / 5  # converges as h shrinks


def test_mackey_glass_determinism_history_and_errors():
    assert np.array_equal(mackey_glass(500, seed=3), mackey_glass(500, seed=3))
    assert not np.array_equal(mackey_glass(500, seed=3), mackey_glass(500, seed=4))
    assert np.array_equal(mackey_glass(500, seed=np.random.default_rng(3)), mackey_glass(500, seed=3))
    x = mackey_glass(1000)
    assert np.isfinite(x).all() and 0.3 < x.min() and x.max() < 1.4
    past = np.linspace(0.5, 1.0, 30)
    assert np.array_equal(mackey_glass(50, history=past), mackey_glass(50, history=past[-17:]))
    with pytest.raises(ValueError):
        mackey_glass(10, history=np.ones(5))
    with pytest.raises(ValueError):
        mackey_glass(-1)


def test_mackey_glass_task_windows_are_scaled_and_forecast_the_next_step():
    task = make_task("mackey-glass", {"length": 25})
    batch = task.batch(64, 0, 0)
    assert np.array_equal(batch.x[1:], batch.y[:-1])
    series = mackey_glass(MackeyGlassTask.WARMUP + MackeyGlassTask.N_STEPS)[MackeyGlassTask.WARMUP:]
    lo, hi = series.min(), series.max()
    assert (task.series_min, task.series_max) == (lo, hi)
    scaled = 2 * (series - lo) / (hi - lo) - 1
    first = batch.x[:, 0, 0]
    start = int(np.argmin(np.abs(scaled - first[0])))
    assert np.allclose(scaled[start:start + 25], first)
    assert -1 <= batch.x.min() and batch.x.max() <= 1
    ev = task.eval_batch(64, 0)
    split = len(scaled) - len(scaled) // 10
    assert all(np.isin(ev.x[:, b, 0], scaled[split:]).all() for b in range(64))
    base = task.baseline()
    assert base.loss == pytest.approx(np.mean(np.diff(scaled[:split]) ** 2))
    noisy = make_task("mackey-glass", {"length": 25, "noise": 0.05})
    assert noisy.baseline().loss == pytest.approx(base.loss + 0.0025)


# ---- series ------------------------------------------------------------------------------------

def test_series_csv_and_npy_samples_agree_and_standardize():
    csv_task = make_task("series", {"path": "example-series.csv", "length": 20})
    npy_task = make_task("series", {"path": "example-series.npy", "length": 20})
    assert csv_task.input_size == csv_task.output_size == 2
    assert same(csv_task.batch(4, 1, 2), npy_task.batch(4, 1, 2))
    raw = np.load(SAMPLE_DIR / "example-series.npy")
    split = len(raw) - len(raw) // 10
    z = (raw - raw[:split].mean(0)) / raw[:split].std(0)
    batch = csv_task.batch(4, 1, 2)
    assert np.array_equal(batch.x[1:], batch.y[:-1])
    assert any(np.allclose(z[o:o + 20], batch.x[:, 0]) for o in range(len(z) - 20))
    assert csv_task.baseline().loss == pytest.approx(np.mean(np.diff(z[:split], axis=0) ** 2))
    plain = make_task("series", {"path": "example-series.csv", "length": 20, "standardize": False})
    pb = plain.batch(4, 1, 2)
    assert any(np.allclose(raw[o:o + 20], pb.x[:, 0]) for o in range(len(raw) - 20))


def test_series_holds_out_the_last_tenth(tmp_path):
    data = np.arange(1000, dtype=np.float64)[:, None] * [1.0, -1.0]
    np.save(tmp_path / "ramp.npy", data)
    task = make_task("series", {"path": "ramp.npy", "length": 10, "standardize": False}, tmp_path)
    assert task.options()["path"] == str(tmp_path / "ramp.npy")
    assert all(task.batch(32, s, 0).y.max() < 900 for s in range(5))
    ev = task.eval_batch(32, 0)
    assert ev.x[..., 0].min() >= 900
    small = make_task("series", {"path": "ramp.npy", "length": 200}, tmp_path)  # tail 100 < 201: no hold-out
    assert small.batch(4, 0, 0).x.shape == (200, 4, 2)


def test_series_near_float64s_limit_standardize_and_beyond_float32_need_standardizing(tmp_path):
    """Values of 1e300 and up overflowed the mean and std: a series of all zeros trained without a
    word (1e300), or a traceback (1.7e308). Unstandardized values beyond float32's range were a
    traceback from the first forward pass, after the run directory was made."""
    wave = np.sin(np.arange(300) / 7.0)[:, None]
    np.save(tmp_path / "plain.npy", wave)
    plain = make_task("series", {"path": "plain.npy", "length": 10}, tmp_path)._train
    for scale in (1e300, 1.7e308):
        np.save(tmp_path / "huge.npy", wave * scale)
        task = make_task("series", {"path": "huge.npy", "length": 10}, tmp_path)
        assert np.allclose(task._train, plain, atol=1e-12), scale
    np.save(tmp_path / "big.npy", wave * 1e39)
    assert np.allclose(make_task("series", {"path": "big.npy", "length": 10}, tmp_path)._train, plain, atol=1e-12)

    def spec(path, dtype, **task):
        return Spec.from_mapping({"task": {"kind": "series", "path": path, "length": 10, **task},
                                  "model": {"dtype": dtype}}, base_dir=tmp_path)

    with pytest.raises(SpecError, match=r"big.npy: holds values up to 1e\+39, beyond float32's range \(±3.4e38\): "
                                        'set standardize = true, scale the data, or use dtype = "float64"'):
        spec("big.npy", "float32", standardize=False)
    assert spec("big.npy", "float64", standardize=False).model.dtype == "float64"  # which reads them
    # standardized by the training part's spread, a tail far outside it overflows float32 all the same
    np.save(tmp_path / "tail.npy", np.r_[wave[:280] * 1e-3, wave[280:] * 1e36])
    with pytest.raises(SpecError, match=r"tail.npy: holds values up to .* once standardized, beyond float32's range "
                                        r"\(±3.4e38\): its held-out tail lies far outside"):
        spec("tail.npy", "float32")


# ---- make_task validation ----------------------------------------------------------------------

def test_unknown_kind_and_field():
    err = spec_error("lstm-magic", {})
    assert err.field == "task.kind" and "lstm-magic" in str(err) and "hello, text, adding" in str(err)
    err = spec_error(3, {})
    assert err.field == "task.kind" and "expected a task name, got an integer (3)" in str(err)
    err = spec_error("adding", {"lenght": 10})
    assert err.field == "task.lenght" and "allowed: length" in str(err)
    with pytest.raises(SpecError, match="task.kind"):
        task_fields("nope")
    assert spec_error("adding", {"kind": "copy"}).field == "task.kind"


@pytest.mark.parametrize("kind, options, field, words", [
    ("adding", {"length": True}, "task.length", "integer"),
    ("adding", {"length": 10.5}, "task.length", "integer"),
    ("adding", {"length": "50"}, "task.length", "integer"),
    ("sine", {"noise": False}, "task.noise", "number"),
    ("sine", {"noise": "0.1"}, "task.noise", "number"),
    ("sine", {"noise": float("nan")}, "task.noise", "finite"),
    ("series", {"path": "example-series.csv", "standardize": 1}, "task.standardize", "true or false"),
    ("hello", {"text": 5}, "task.text", "string"),
    ("text", {"path": 5}, "task.path", "path"),
    ("adding", {"length": 1}, "task.length", "between 2 and 100000, got 1"),
    ("copy", {"delay": 0}, "task.delay", "between 1 and"),
    ("selective-copy", {"vocab_size": 33}, "task.vocab_size", "between 2 and 32"),
    ("sine", {"noise": -0.5}, "task.noise", "between 0 and 10"),
    ("sine", {"min_period": 1.0}, "task.min_period", "between 2"),
    ("sine", {"min_period": 20.0, "max_period": 10.0}, "task.min_period", "at most max_period (10), got 20"),
    ("sine", {"min_period": 40.0}, "task.min_period", "at most max_period (32)"),
    ("parity", {"length": 5, "min_length": 6}, "task.min_length", "at most length"),
    ("two-scales", {"slow_min_period": 90.0, "slow_max_period": 80.0}, "task.slow_min_period",
     "at most slow_max_period (80), got 90"),
    ("two-scales", {"fast_min_period": 9.0}, "task.fast_min_period", "at most fast_max_period (8), got 9"),
    ("two-scales", {"fast_max_period": 70.0}, "task.fast_max_period", "at most slow_min_period (60)"),
    ("counting", {"max_count": 8, "length": 8}, "task.length", "at least max_count + 1"),
    ("mackey-glass", {"tau": 0}, "task.tau", "between 1"),
    ("hello", {"text": "h"}, "task.text", "at least 2"),
    ("text", {}, "task.path", "missing"),
    ("series", {"length": 10}, "task.path", "missing"),
])
def test_bad_values_name_the_field(kind, options, field, words):
    err = spec_error(kind, options)
    assert err.field == field and words in str(err) and str(err).startswith(field)


def test_paths_resolve_against_base_dir_then_sample_data(tmp_path):
    (tmp_path / "mine.txt").write_text("abcabcabc" * 10, encoding="utf-8")
    task = make_task("text", {"path": "mine.txt", "length": 5}, tmp_path)
    assert task.options()["path"] == str(tmp_path / "mine.txt") and task.chars == ("a", "b", "c")
    # a file of the same name next to the spec wins over the sample
    (tmp_path / "tiny-shakespeare.txt").write_text("xyz" * 20, encoding="utf-8")
    assert make_task("text", {"path": "tiny-shakespeare.txt", "length": 5}, tmp_path).chars == ("x", "y", "z")
    sample = make_task("text", {"path": "tiny-shakespeare.txt"}, tmp_path / "elsewhere")
    assert sample.options()["path"] == str(SHAKESPEARE)
    msg = data_error(make_task, "text", {"path": "missing.txt"}, tmp_path)
    assert str(tmp_path / "missing.txt") in msg and "no such file" in msg
    assert (ROOT / "sample_data" / "tiny-shakespeare.txt").exists()  # the top-level link


# ---- loaders -----------------------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_pipe_or_a_device_is_refused_as_a_data_file(tmp_path):
    """Read as data, a named pipe with no writer never ends and /dev/zero fills memory (a CLI
    walkthrough's finding: spec and train hung, or took gigabytes): refused by what they are."""
    from rnnlab.data.trees import read_treebank

    for name in ("pipe.csv", "pipe.txt"):
        os.mkfifo(tmp_path / name)
    (tmp_path / "zero.csv").symlink_to("/dev/zero")
    assert data_error(load_series, tmp_path / "pipe.csv").endswith("pipe.csv: is a named pipe, expected a .csv or "
                                                                    ".npy file")
    assert "zero.csv: is a device, expected a .csv or .npy file" in data_error(load_series, tmp_path / "zero.csv")
    assert "pipe.txt: is a named pipe, expected a .txt file" in data_error(load_text, tmp_path / "pipe.txt")
    assert "pipe.txt: is a named pipe, expected a treebank text file" in data_error(read_treebank,
                                                                                    tmp_path / "pipe.txt")


def refuse_to_look_under(monkeypatch, folder: Path) -> None:
    """``os.stat`` of anything under ``folder`` raises PermissionError, as for a directory that may not
    be searched (simulated: root may look everywhere)."""
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        if str(path).startswith(str(folder)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)


def test_a_data_path_the_os_will_not_look_at_is_one_line(tmp_path, monkeypatch, capsys):
    """A directory on the path that may not be searched: Path.exists raised PermissionError, a
    traceback out of `rnnlab train` and exit 1 (a code review's finding). Simulated, as root may
    look everywhere."""
    from conftest import run_cli

    refuse_to_look_under(monkeypatch, tmp_path / "locked")
    locked = tmp_path / "locked" / "book.txt"
    assert data_error(load_text, locked) == f"cannot read {locked}: Permission denied"
    code, out, err = run_cli(capsys, "train", "hello", "--set", "task.kind=text", "--set", f"task.path={locked}",
                             "--out", tmp_path / "run")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"rnnlab: error: --set task.path: cannot read {locked}: Permission denied"]
    assert not (tmp_path / "run").exists()


def test_a_runs_data_file_the_os_will_not_look_at_is_one_line(tmp_path, monkeypatch, capsys):
    """The same for a run trained on such a file: RunDir.open asked Path.exists again, and spec, bptt,
    trace and tui on the run ended in a traceback (a diff review)."""
    from conftest import run_cli

    (tmp_path / "locked").mkdir()
    book = tmp_path / "locked" / "book.txt"
    book.write_text("to be or not to be " * 20, encoding="utf-8")
    assert run_cli(capsys, "train", "hello", "--set", "task.kind=text", "--set", f"task.path={book}", "--steps", "1",
                   "--out", tmp_path / "run")[0] == 0
    refuse_to_look_under(monkeypatch, tmp_path / "locked")
    for command in ("spec", "bptt"):
        code, out, err = run_cli(capsys, command, tmp_path / "run")
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
        assert f"cannot read {book}: Permission denied" in err and "Traceback" not in err


def test_text_loader_errors(tmp_path):
    assert "no such file" in data_error(load_text, tmp_path / "nope.txt")
    assert "is a directory" in data_error(load_text, tmp_path)
    (tmp_path / "notes.md").write_text("hello")
    assert ".txt" in data_error(load_text, tmp_path / "notes.md")
    (tmp_path / "latin1.txt").write_bytes("caf".encode() + b"\xe9 au lait")
    msg = data_error(load_text, tmp_path / "latin1.txt")
    assert "UTF-8" in msg and "byte 3" in msg and str(tmp_path / "latin1.txt") in msg
    (tmp_path / "empty.txt").write_bytes(b"")
    assert "empty" in data_error(load_text, tmp_path / "empty.txt")
    (tmp_path / "wide.txt").write_text("".join(chr(0x100 + i) for i in range(300)), encoding="utf-8")
    assert "300 distinct characters" in data_error(load_text, tmp_path / "wide.txt")
    (tmp_path / "short.txt").write_text("hi there")
    msg = data_error(make_task, "text", {"path": str(tmp_path / "short.txt"), "length": 25})
    assert "8 characters" in msg and "26" in msg
    (tmp_path / "dos.txt").write_bytes(b"\xef\xbb\xbfone\r\ntwo\r\n")
    assert load_text(tmp_path / "dos.txt") == "one\ntwo\n"  # BOM dropped, CRLF read as LF
    # Mac OS 9's (and some exporters') CR alone: a '\r' in the vocabulary, no newline to type, and
    # samples that drew it sent the terminal's cursor back over the line it wrote
    (tmp_path / "mac.txt").write_bytes(b"one\rtwo\r\nthree\r")
    assert load_text(tmp_path / "mac.txt") == "one\ntwo\nthree\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_loader_reads_headers_blank_lines_and_delimiters(tmp_path):
    a = load_series(write(tmp_path, "a.csv", "time,value\n1,2\n\n3,4.5\n-1e3,0\n"))
    assert a.shape == (3, 2) and a.dtype == np.float64 and a[2, 0] == -1000.0
    assert load_series(write(tmp_path, "b.csv", "1\n2\n3\n")).shape == (3, 1)
    assert load_series(write(tmp_path, "c.csv", "x\ty\n1\t2\n3\t4\n")).tolist() == [[1, 2], [3, 4]]
    assert load_series(write(tmp_path, "d.csv", "x;y\n1;2\n")).tolist() == [[1, 2]]
    # comment lines, where a logger writes its units: not the header (then "'# units' is not a number")
    commented = "# my sensor\n# units: volts\nt,v\n1,2\n  # a gap\n3,4\n"
    assert load_series(write(tmp_path, "e.csv", commented)).tolist() == [[1, 2], [3, 4]]
    # numpy's savetxt(header=...) writes the header as a comment: its names are taken where they fit
    np.savetxt(tmp_path / "f.csv", np.c_[np.arange(3.0), np.arange(3.0) ** 2], delimiter=",", header="t,square")
    assert load_named_series(tmp_path / "f.csv")[1] == ("t", "square")
    assert load_named_series(write(tmp_path, "g.csv", "# volts, amps, ohms\n1,2\n"))[1] is None  # 3 names, 2 columns
    only_comments = write(tmp_path, "h.csv", "# x\n")
    assert "has no data rows (only blank and # comment lines)" in data_error(load_series, only_comments)


@pytest.mark.parametrize("text, words", [
    ("a,b\n1,2\n3,4\n5,6\n7,8\n9,10\n1,2,3\n", "line 7 has 3 fields, expected 2"),
    ("a,b\n1,2\n3\n", "line 3 has 1 field, expected 2"),
    ("time,value\n1,2,3\n4,5,6\n", "the header (line 1) names 2 columns, but line 2 has 3 fields"),
    ("a,b\n1,2\n3,abc\n", "line 3, column 2 ('b'): 'abc' is not a number"),
    ("1,2\n3,abc\n", "line 2, column 2: 'abc' is not a number"),
    ("1,2\n3,\n", "line 2, column 2 is empty"),
    ("a,b\n1,2\nnan,4\n", "line 3, column 1 ('a'): 'nan' is not finite"),
    ("1,2\n3,inf\n", "line 2, column 2: 'inf' is not finite"),
    ("", "empty"),
    ("\n\n  \n", "empty"),
    ("a,b\n", "header line but no data rows"),
])
def test_csv_loader_errors(tmp_path, text, words):
    path = write(tmp_path, "data.csv", text)
    msg = data_error(load_series, path)
    assert words in msg and msg.startswith(str(path))


def test_series_loader_rows_and_extensions(tmp_path):
    path = write(tmp_path, "few.csv", "1\n2\n3\n")
    assert "has 3 rows, needs at least 10" in data_error(load_series, path, min_rows=10)
    msg = data_error(make_task, "series", {"path": str(path), "length": 5})
    assert "3 rows" in msg and "length = 5" in msg
    np.save(tmp_path / "wide.npy", np.zeros((3, 100)))
    assert "transposed" in data_error(make_task, "series", {"path": str(tmp_path / "wide.npy"), "length": 5})
    msg = data_error(load_series, write(tmp_path, "data.txt", "1\n2\n"))
    assert ".csv or .npy" in msg
    assert "is a directory" in data_error(load_series, tmp_path)
    assert "no such file" in data_error(load_series, tmp_path / "nope.csv")
    (tmp_path / "bad.csv").write_bytes(b"1,2\n3,\xff\n")
    assert "not valid UTF-8 (byte 6: 0xff)" in data_error(load_series, tmp_path / "bad.csv")


def test_a_series_channels_are_named_by_the_csv_header(tmp_path):
    """The lab labelled the columns of a "time,temperature,..." file #1, #2, #3."""
    rows = "\n".join(f"{t},{t * 2},{t * 3}" for t in range(40))
    named = make_task("series", {"path": str(write(tmp_path, "a.csv", "t,,a very long column name\n" + rows)),
                                 "length": 5})
    assert named.channels == ("t", "#2", "a very long column name")  # whole: views cut them to fit
    unnamed = make_task("series", {"path": str(write(tmp_path, "b.csv", rows)), "length": 5})
    assert unnamed.channels == ("#1", "#2", "#3")
    single = "load_kw\n" + "".join(f"{t % 9}\n" for t in range(40))  # one column: its name was dropped
    assert make_task("series", {"path": str(write(tmp_path, "c.csv", single)), "length": 5}).channels == ("load_kw",)
    assert make_task("series", {"path": "example-series.csv", "length": 5}).channels == ("signal", "lagged")


def test_a_series_column_that_counts_the_rows_is_named_in_a_warning(tmp_path):
    """pandas' to_csv writes its index as an unnamed first column (0, 1, 2, ...): the model read
    it as a feature and forecast it, with nothing said."""
    values = np.random.default_rng(0).standard_normal(40)

    def warning(name: str, text: str) -> str:
        return make_task("series", {"path": str(write(tmp_path, name, text)), "length": 5}).data_warning

    pandas = warning("pandas.csv", ",price\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    assert pandas == ("pandas.csv: column 1 has no name and counts the rows (0, 1, 2, ...): pandas' index? It is "
                      "read and forecast like a signal; to_csv(index=False) leaves it out")
    step = warning("step.csv", "price,t\n" + "".join(f"{v},{i + 1}\n" for i, v in enumerate(values)))
    assert step.startswith("step.csv: column 2 ('t') counts the rows (1, 2, 3, ...): read and forecast like a "
                           "signal, though a step number carries none")
    two = warning("two.csv", "".join(f"{i},{v},{i - 3}\n" for i, v in enumerate(values)))
    assert two.startswith("two.csv: columns 1, 3 count the rows: read and forecast")
    # a column that rises by one almost everywhere, by steps of 2, or from 0.5 is a signal
    assert warning("signal.csv", "".join(f"{i + (i == 20)},{2 * i},{i + 0.5}\n" for i in range(40))) == ""
    assert make_task("series", {"path": "example-series.csv", "length": 5}).data_warning == ""


def test_a_text_of_one_character_has_a_unigram_baseline_of_zero_not_minus_zero(tmp_path):
    path = write(tmp_path, "a.txt", "a" * 100)
    baseline = make_task("text", {"path": str(path), "length": 5}).baseline()
    assert baseline.loss == 0.0 and math.copysign(1.0, baseline.loss) == 1.0 and f"{baseline.loss:.4g}" == "0"


def test_utf16_files_are_named_as_such(tmp_path):
    """Windows' "Unicode" text: without a byte-order mark its ASCII decoded as UTF-8, a NUL beside
    every character, and a text model trained on them; with one, "not valid UTF-8" said not why."""
    text = "to be or not to be\n" * 30
    (tmp_path / "le.txt").write_bytes(text.encode("utf-16-le"))
    (tmp_path / "bom.txt").write_bytes(text.encode("utf-16"))
    (tmp_path / "le.csv").write_bytes("a,b\n1,2\n3,4\n".encode("utf-16-le"))
    hint = "; it looks like UTF-16: save it as UTF-8"
    assert data_error(load_text, tmp_path / "le.txt").endswith(
        "le.txt: holds NUL bytes (the first at byte 1), which text files do not" + hint)
    assert data_error(load_text, tmp_path / "bom.txt").endswith("not valid UTF-8 (byte 0: 0xff)" + hint)
    assert data_error(load_series, tmp_path / "le.csv").endswith(hint)
    (tmp_path / "ru.txt").write_bytes("Быть или не быть, вот в чём вопрос.\n".encode("utf-16-le") * 20)
    assert data_error(load_text, tmp_path / "ru.txt").endswith(hint)  # NULs only beside its spaces and commas
    (tmp_path / "elf.txt").write_bytes(open(sys.executable, "rb").read(3000))  # a NUL byte is not UTF-16 yet
    assert "UTF-16" not in data_error(load_text, tmp_path / "elf.txt")


def test_npy_loader(tmp_path):
    np.save(tmp_path / "one.npy", np.arange(5, dtype=np.int32))
    one = load_series(tmp_path / "one.npy")
    assert one.shape == (5, 1) and one.dtype == np.float64
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    assert "pickled data is never loaded" in data_error(load_series, tmp_path / "obj.npy")
    (tmp_path / "junk.npy").write_bytes(b"this is not an npy file at all" * 4)
    assert "not a .npy file (no NumPy header)" in data_error(load_series, tmp_path / "junk.npy")
    good = (tmp_path / "one.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(good[: len(good) - 7])
    assert "is truncated" in data_error(load_series, tmp_path / "cut.npy")
    (tmp_path / "huge.npy").write_bytes(good.replace(b"(5,)", b"(10000000000000,)"))
    assert "is truncated" in data_error(load_series, tmp_path / "huge.npy")  # nothing allocated
    (tmp_path / "hdr.npy").write_bytes(good.replace(b"'shape'", b"'shape\n"))
    assert "damaged header" in data_error(load_series, tmp_path / "hdr.npy")
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4)))
    assert "shape (2, 3, 4)" in data_error(load_series, tmp_path / "cube.npy")
    np.save(tmp_path / "cplx.npy", np.zeros(4, dtype=complex))
    assert "complex128" in data_error(load_series, tmp_path / "cplx.npy")
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    assert "dtype <U1" in data_error(load_series, tmp_path / "text.npy")
    bad = np.ones((4, 2))
    bad[2, 1] = np.inf
    np.save(tmp_path / "inf.npy", bad)
    assert "element [2, 1] is not finite (inf)" in data_error(load_series, tmp_path / "inf.npy")
    np.save(tmp_path / "none.npy", np.zeros((0, 3)))
    assert "empty" in data_error(load_series, tmp_path / "none.npy")
    np.savez(tmp_path / "arch.npz", a=np.ones(3))
    os.replace(tmp_path / "arch.npz", tmp_path / "arch.npy")
    assert ".npz archive" in data_error(load_series, tmp_path / "arch.npy")


def test_sample_data_files():
    text = load_text(SHAKESPEARE)
    assert 35_000 < len(text) < 45_000 and text.startswith("First Citizen:\n") and text.endswith("\n")
    series = load_series(SAMPLE_DIR / "example-series.csv")
    assert series.shape == (240, 2)
    assert np.array_equal(series, load_series(SAMPLE_DIR / "example-series.npy"))
    assert (SAMPLE_DIR / "README.txt").exists()


def test_data_package_imports_no_ui():
    code = ("import sys, json, rnnlab.data; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'textual', 'typer'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_utf8_error_offsets_count_the_byte_order_mark(tmp_path):
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfab\xff")
    assert "byte 5: 0xff" in data_error(load_text, tmp_path / "bom.txt")


def test_typed_text_writes_a_newline_as_backslash_n_or_its_label_unless_the_text_has_a_backslash(tmp_path):
    """A one-line field (the lab's i) or a shell's --prime cannot hold a newline."""
    plain = tmp_path / "plain.txt"
    plain.write_text("ab\ncd\n" * 20, encoding="utf-8")
    task = make_task("text", {"path": str(plain), "length": 5})
    assert task.typing_hint() == "\\n or ⏎ types a newline"
    assert task.decode(task.encode("a\\nb⏎c")) == "a\nb\nc"
    with_backslash = tmp_path / "slash.txt"
    with_backslash.write_text("a\\b\nn" * 20, encoding="utf-8")
    task = make_task("text", {"path": str(with_backslash), "length": 5})
    assert task.typing_hint() == "⏎ types a newline"
    assert task.decode(task.encode("a\\n")) == "a\\n"  # the text's own backslash and n
    assert make_task("hello", {}).typing_hint() == ""
    with pytest.raises(DataError, match="at least 2 characters, got 1"):  # two typed, one character
        make_task("text", {"path": str(plain), "length": 5}).sequence_from_text("\\n")


def test_task_fields_defaults_go_back_into_make_task_and_a_misspelt_kind_is_named():
    """task_fields gives None for a default derived from other fields (parity's min_length), which
    make_task refused ("expected an integer, got a NoneType"); "addng" got no "did you mean"."""
    for kind in TASKS:
        if kind in ("text", "series"):  # a required path
            continue
        defaults = make_task(kind)
        given = make_task(kind, {name: value for name, (value, _) in task_fields(kind).items()})
        assert given.options() == defaults.options(), kind
    with pytest.raises(SpecError, match=r"unknown task 'addng' \(did you mean 'adding'\? allowed: "):
        make_task("addng")


def test_a_baseline_scores_each_sequence_as_the_training_loss_would():
    """The lab reads "this sequence: loss" against the baseline on that sequence: adding's first
    sequence has target 0.98, where "predict 1" scores 0.0004, not its average 0.167."""
    from rnnlab.train.losses import mean_squared_error

    for kind, predict in (("adding", np.ones_like), ("two-scales", np.zeros_like), ("sine", None),
                          ("mackey-glass", None)):
        task = make_task(kind)
        batch = task.eval_batch(3, 0)
        predicted = predict(batch.y) if predict else batch.x  # persistence: y_t = x_t
        assert task.baseline_on(batch) == pytest.approx(mean_squared_error(predicted, batch.y, batch.mask).loss)
        assert task.baseline_on(task.eval_batch(4096, 1)) == pytest.approx(task.baseline().loss, rel=0.05), kind
    assert make_task("parity").baseline_on(make_task("parity").eval_batch(2, 0)) is None


def test_csv_files_as_spreadsheets_and_numpy_write_them_are_read_as_they_mean(tmp_path):
    """A forecasting walkthrough's files: European exports (';' between columns, decimal commas), CR
    line ends (Excel's "CSV (Macintosh)": a traceback), numpy's savetxt with its default blanks (read
    as a header, then "line 3 is not a number"), Python's 1_206.5 (not a number in a CSV)."""
    assert load_series(write(tmp_path, "eu.csv", "Last;Temp\n1206,91;7,19\n1297,82;-8,1\n")).tolist() == \
        [[1206.91, 7.19], [1297.82, -8.1]]
    assert load_series(write(tmp_path, "eu_e.csv", "1206,91;7,19\n1,5e3;-2,5\n")).tolist() == [[1206.91, 7.19],
                                                                                                 [1500.0, -2.5]]
    # elsewhere a comma in a number may be an English thousand ("1,206" pasted from a spreadsheet)
    assert "'1,206' is not a number" in data_error(load_series, write(tmp_path, "en.csv", "a\tb\n1,206\t7.5\n"))
    # the delimiter is the data's, outside quotes: a header name may hold ';' or a tab (the review's)
    quoted = '"visits; daily",day\n' + "".join(f"{10 + 3 * k},{k % 5}\n" for k in range(40))
    data, names, _ = load_named_series(write(tmp_path, "quoted.csv", quoted))
    assert data.tolist() == [[10 + 3 * k, k % 5] for k in range(40)] and names == ("visits; daily", "day")
    assert load_series(write(tmp_path, "tab.csv", "a,b\t\n1,2\n3,4\n")).tolist() == [[1, 2], [3, 4]]
    # pandas' to_csv: an unnamed index before integer labels is its header
    assert load_named_series(write(tmp_path, "pd.csv", ",0,1\n0,0.5,2\n1,0.25,3\n"))[1] == ("#1", "0", "1")
    assert load_series(write(tmp_path, "cr.csv", "a,b\r1,2\r3,4\r")).tolist() == [[1, 2], [3, 4]]
    assert load_series(write(tmp_path, "mixed.csv", "a,b\r\n1,2\r3,4\n5,6")).tolist() == [[1, 2], [3, 4], [5, 6]]
    np.savetxt(tmp_path / "blanks.csv", [[1206.9, 7.2], [1297.8, 8.1]], header="load temp")
    data, names, warning = load_named_series(tmp_path / "blanks.csv")
    assert data.tolist() == [[1206.9, 7.2], [1297.8, 8.1]] and names == ("load", "temp") and warning == ""
    assert load_named_series(write(tmp_path, "one.csv", "load kw\n1.5\n2\n"))[1] == ("load kw",)  # one column
    assert "'1_206.5' is not a number" in data_error(load_series, write(tmp_path, "u.csv", "x\n1_206.5\n"))


@pytest.mark.parametrize("first", ["1206.91,", "1206.91,NA", "1206.91,n/a", ",7.19"])
def test_a_first_row_of_numbers_with_a_value_missing_is_refused_not_taken_for_a_header(tmp_path, first):
    """With no header, a first row with a missing value was read as the header: that row dropped
    and its numbers made column names ("1206.91"), with no word."""
    path = write(tmp_path, "data.csv", first + "\n1297.82,8.11\n1301.5,8.3\n")
    message = data_error(load_series, path)
    assert "line 1, column " in message and ("is empty" in message or "is not a number" in message)
    assert load_named_series(write(tmp_path, "named.csv", "t,\n1,2\n"))[1] == ("t", "#2")  # a header still
    assert load_named_series(write(tmp_path, "year.csv", "year,2019\n1,2\n"))[1] == ("year", "2019")


def test_one_column_written_with_decimal_commas_is_warned_of_where_it_reads_as_two(tmp_path):
    """1206,91 (one column, a German spreadsheet's decimal comma) trained as two signals, 1206 and
    91, with no word; with a header naming one column, the refusal says why."""
    rows = "".join(f"{1200 + 3 * k},{k % 7}{k % 10}\n" for k in range(40))
    task = make_task("series", {"path": str(write(tmp_path, "eu.csv", rows)), "length": 5})
    assert task.data_warning == ("eu.csv reads as two columns of whole numbers (1200,00 is 1200 and 00, and the "
                                 "second column writes leading zeros): if its commas are decimal points (1200.00), "
                                 "write it with '.' for decimals or ';' between columns")
    for counts in ("".join(f"{5 * k + 3},{100 + 23 * k}\n" for k in range(40)),  # counts of equal widths
                   "".join(f"{k + 1},{10 + k % 25}\n" for k in range(40))):  # day, temperature: the day counts rows
        task = make_task("series", {"path": str(write(tmp_path, "counts.csv", counts)), "length": 5})
        assert "decimal" not in task.data_warning
    headed = write(tmp_path, "headed.csv", "load\n" + rows)
    assert "names 1 column, but line 2 has 2 fields: decimal commas?" in data_error(load_series, headed)


def test_characters_without_a_visible_width_get_a_visible_label():
    """A combining accent floated over a blank bench step, a variation selector's step looked empty
    (a text walkthrough's chat log): labels that show something, as a zero-width joiner's did."""
    from rnnlab.data.text import display_char

    assert display_char("\u0301") == "\u25cc\u0301"  # the accent on a dotted circle
    assert display_char("\ufe0f") == "\\ufe0f" and display_char("\u200d") == "\\u200d"
    assert [display_char(c) for c in "a李\n \t"] == ["a", "李", "⏎", "␣", "⇥"]


def test_a_latin1_text_is_told_how_to_become_utf8(tmp_path):
    """"not valid UTF-8 (byte 3: 0xe9)" said what, not why nor what to do (a text walkthrough's
    Latin-1 file); UTF-16 already got its hint."""
    (tmp_path / "notes.txt").write_bytes("café au lait, 20°\n".encode("latin-1"))
    message = data_error(load_text, tmp_path / "notes.txt")
    assert message.endswith(f"not valid UTF-8 (byte 3: 0xe9); if it is Latin-1 or Windows-1252 (0xe9 is 'é' there), "
                            f"save it as UTF-8: iconv -f cp1252 -t utf-8 {tmp_path / 'notes.txt'} > "
                            f"{tmp_path / 'notes-utf8.txt'}")
    (tmp_path / "quotes.txt").write_bytes("“quoted” – €5\n".encode("cp1252"))  # Windows-1252's own 0x80-0x9f
    assert "(0x93 is '“' there)" in data_error(load_text, tmp_path / "quotes.txt")
    for name, raw in (("cut.txt", "ok €".encode()[:-1]), ("mixed.txt", "é ok \xff".encode() + b"\xff")):
        (tmp_path / name).write_bytes(raw)  # UTF-8 cut short, a UTF-8 text with a bad byte: no such advice
        assert "iconv" not in data_error(load_text, tmp_path / name)


def test_an_unknown_character_in_a_text_with_escaped_labels_is_a_data_error_naming_it(tmp_path):
    """encode's error relabelled the vocabulary's labels: '\\x0c' and '◌́' (several characters)
    made unicodedata raise TypeError, which ended the lab (a review's finding)."""
    (tmp_path / "t.txt").write_text("cafe\u0301 abc\x0c de\n" * 5, encoding="utf-8")
    task = make_task("text", {"path": str(tmp_path / "t.txt"), "length": 5})
    message = data_error(task.encode, "zz")
    assert message.startswith("character 'z' at position 1 is not in the vocabulary (") and "\\x0c" in message
    from rnnlab.data.text import display_char

    assert display_char("\u0941") == "\u25cc\u0941"  # a Devanagari vowel sign: on its circle, not escaped
    assert task.typing_line_break() == "⏎"


def test_a_series_column_stepping_by_a_constant_is_warned_of_as_a_time_stamp(tmp_path):
    """unix seconds (3600 an hour) trained as a signal, eval loss 0.166 against persistence's 0.038,
    without a word: the row-counter warning only knew steps of 1 (a forecasting walkthrough)."""
    rows = "".join(f"{1704067200 + 3600 * k},{(k * 7) % 11}.5\n" for k in range(40))
    task = make_task("series", {"path": str(write(tmp_path, "hourly.csv", "unix_ts,load\n" + rows)), "length": 5})
    assert task.data_warning == ("hourly.csv: column 1 ('unix_ts') steps by 3600 every row (1704067200, 1704070800, "
                                 "...): a time stamp? It is read and forecast like a signal, and past the training "
                                 "rows it takes values never trained on")
    ramp_free = "".join(f"{(k * 7) % 11},{(k * 3) % 5}\n" for k in range(40))
    assert make_task("series", {"path": str(write(tmp_path, "plain.csv", ramp_free)), "length": 5}).data_warning == ""

    def warning(name: str, text: str) -> str:
        return make_task("series", {"path": str(write(tmp_path, name, text)), "length": 5}).data_warning

    # beside pandas' index too; a 10 Hz logger's stamps (0.1 s at 1.7e9, a few ulps); milliseconds whole
    indexed = ",ts,v\n" + "".join(f"{k},{1704067200 + 3600 * k},{(k * 7) % 11}\n" for k in range(40))
    assert "pandas' index?" in warning("pd.csv", indexed) and "column 2 ('ts') steps by 3600" in warning("pd.csv",
                                                                                                          indexed)
    tenth = "".join(f"{1704067200 + k / 10:.1f},{(k * 7) % 11}\n" for k in range(40))
    assert "column 1 steps by 0.1" in warning("hz.csv", tenth)
    millis = "".join(f"{1704067200000 + 60000 * k},{(k * 7) % 11}\n" for k in range(40))
    assert "steps by 60000 every row (1704067200000, 1704067260000, ...)" in warning("ms.csv", millis)


def test_a_standardized_series_dialog_gives_the_mean_to_the_digits_its_spread_needs(tmp_path):
    """Pressure at 101325.45 with a std of 0.03: the title said "- 101325", and a reading converted
    with it landed 14 std off (a review's)."""
    rows = "".join(f"{101325.4505 + 0.03 * ((k * 7) % 11 - 5)}\n" for k in range(40))
    task = make_task("series", {"path": str(write(tmp_path, "p.csv", "p\n" + rows)), "length": 5})
    mean = float(task.mean[0])
    shown = task.typing_prompt().split("(p - ")[1].split(")")[0]
    assert abs(float(shown) - mean) < 1e-3 * float(task.std[0])


def test_a_whole_number_written_as_a_float_is_an_integer_field_as_in_the_model_and_train_tables():
    """--set model.hidden_size=1e2 gave 100 and --set task.length=1e2 "expected an integer, got a
    number (100.0)": one rule for every integer field."""
    from rnnlab.spec import load_preset

    assert make_task("adding", {"length": 1e2}).options()["length"] == 100
    edited = load_preset("adding-lstm").with_overrides({"task.length": 1e2, "model.hidden_size": 1e2})
    assert edited.task["length"] == 100 and edited.model.hidden_size == 100
    with pytest.raises(SpecError, match=r"task.length: expected an integer, got a number \(100.5\)"):
        make_task("adding", {"length": 100.5})
