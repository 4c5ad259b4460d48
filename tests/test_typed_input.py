"""Typed sequences (the lab's ``i``) for the tasks beyond characters: layout, syntax, refusals.

A typed sequence must be laid out exactly as the task's generator lays out a batch (the loss, the
views and BPTT read it unchanged): each task is checked against arrays written out by hand for a
small case, and against a generated batch's sequence typed back in.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from rnnlab.data import TASKS, Batch, make_task
from rnnlab.data.tasks import MAX_TYPED_STEPS
from rnnlab.errors import DataError, UserError
from rnnlab.lab import Lab

TYPED = ["adding", "copy", "selective-copy", "sine", "mackey-glass", "parity", "counting", "series"]


def data_error(task, text: str) -> str:
    with pytest.raises(DataError) as info:
        task.sequence_from_text(text)
    msg = str(info.value)
    assert msg and "\n" not in msg
    return msg


def assert_batch(batch: Batch, x, y, mask, lengths=None) -> None:
    """``batch`` is one sequence with exactly these arrays (values, dtypes and shapes)."""
    T = len(mask)
    expected = {"x": np.asarray(x, dtype=np.float64), "y": np.asarray(y), "mask": np.asarray(mask, dtype=bool),
                "lengths": np.array([T if lengths is None else lengths], dtype=np.int64)}
    for name, want in expected.items():
        got = getattr(batch, name)
        assert got.dtype == want.dtype and got.shape == want.shape, (name, got.dtype, got.shape, want.shape)
        np.testing.assert_array_equal(got, want, err_msg=name)


def column(batch: Batch, b: int, steps: int | None = None) -> Batch:
    """Sequence ``b`` of ``batch`` (its first ``steps`` steps) as a batch of one."""
    T = batch.T if steps is None else steps
    return Batch(batch.x[:T, b:b + 1], batch.y[:T, b:b + 1], batch.mask[:T, b:b + 1],
                 np.minimum(batch.lengths[b:b + 1], T))


def assert_same(a: Batch, b: Batch) -> None:
    for name in ("x", "y", "mask", "lengths"):
        u, v = getattr(a, name), getattr(b, name)
        assert u.dtype == v.dtype and u.shape == v.shape, name
        np.testing.assert_array_equal(u, v, err_msg=name)


# ---- every typed task ------------------------------------------------------------------------------

def test_which_tasks_take_typed_input():
    typed = {kind for kind, cls in TASKS.items() if hasattr(cls, "sequence_from_text")}
    assert typed == set(TYPED) | {"hello", "text"}  # two-scales (a decomposition) takes none
    for kind in TYPED:
        cls = TASKS[kind]
        assert callable(cls.typing_prompt) and callable(cls.typing_placeholder)


# Seeded batches written out before typed input came (digests of x, y, mask, lengths with their dtypes
# and shapes): the generators' draws and layout must not change. Integer and U(0, 1) draws only,
# exact on every machine; the forecasting tasks (np.sin, the data) are checked to a tolerance below.
SEEDED = {
    ("adding", "tr"): "5c6feea4d081befc", ("adding", "ev"): "96e6e94a64e9fedd",
    ("copy", "tr"): "e9c4b7d40fa33755", ("copy", "ev"): "dcaa37b8f18e9739",
    ("selective-copy", "tr"): "ba20d5cd4ab5e0f9", ("selective-copy", "ev"): "49638f8f19d66f4c",
    ("parity", "tr"): "713d119aed23372d", ("parity", "ev"): "4303e0e6ccfea729",
    ("counting", "tr"): "ea352f22b82298a2", ("counting", "ev"): "c76e366acb3254f8",
}
SEEDED_OPTIONS = {"adding": {"length": 13}, "copy": {"delay": 5},
                  "selective-copy": {"length": 17, "tokens": 5, "vocab_size": 7},
                  "parity": {"length": 12, "min_length": 1}, "counting": {"max_count": 6, "length": 10}}


@pytest.mark.parametrize("kind,which", list(SEEDED))
def test_generated_batches_are_unchanged(kind, which):
    task = make_task(kind, SEEDED_OPTIONS[kind])
    batch = task.batch(5, 3, 7) if which == "tr" else task.eval_batch(5, 3)
    digest = hashlib.sha256()
    for name in ("x", "y", "mask", "lengths"):
        a = getattr(batch, name)
        digest.update(f"{a.dtype}{a.shape}".encode())
        digest.update(np.ascontiguousarray(a).tobytes())
    assert digest.hexdigest()[:16] == SEEDED[kind, which]


def test_generated_forecast_batches_are_unchanged():
    batch = make_task("sine", {"length": 9, "noise": 0.1}).batch(5, 3, 7)
    np.testing.assert_allclose(batch.x[:3, 0, 0], [-1.14295397, -0.84796208, -0.77773982], atol=1e-8)
    np.testing.assert_allclose(batch.y[-1, :, 0], [0.3425342, -0.20720647, 0.11111811, -0.24345723, 0.99723165],
                               atol=1e-8)
    batch = make_task("series", {"path": "example-series.csv", "length": 30}).eval_batch(5, 3)
    np.testing.assert_allclose(batch.x[:2, 1], [[-1.44402823, -0.72933148], [-0.70675186, -0.67097912]], atol=1e-8)
    np.testing.assert_allclose(batch.y[-1, 4], [0.10037271, 0.14466975], atol=1e-8)


def _as_text(kind: str, task, seq: Batch) -> str:
    """What a user would type for the one sequence ``seq`` of ``task``."""
    if kind == "adding":
        return " ".join(repr(float(v)) + ("*" if m else "") for v, m in seq.x[:, 0])
    if kind == "copy":
        return "".join(str(int(i)) for i in seq.x[:task.N_SYMBOLS, 0].argmax(axis=-1))
    if kind == "selective-copy":
        labels = (".",) + task.vocab
        return "".join(labels[int(i)] for i in seq.x[:task.length - task.tokens, 0].argmax(axis=-1))
    if kind == "parity":
        return " ".join(str(int(v)) for v in seq.x[:, 0, 0])
    if kind == "counting":
        return f" {int(seq.x[0, 0].argmax()) + 1} "
    rows = np.concatenate([seq.x[:, 0], seq.y[-1:, 0]])  # forecasting: the inputs, then the last target
    return "; ".join(", ".join(repr(float(v)) for v in row) for row in rows)


ROUND_TRIP = {"adding": {"length": 8}, "copy": {"delay": 3},
              "selective-copy": {"length": 12, "tokens": 3, "vocab_size": 11}, "sine": {"length": 7},
              "mackey-glass": {"length": 6}, "parity": {"length": 9, "min_length": 2},
              "counting": {"max_count": 5, "length": 8}, "series": {"path": "example-series.csv", "length": 5}}


@pytest.mark.parametrize("kind", TYPED)
def test_a_generated_sequence_typed_back_in_is_laid_out_the_same(kind):
    task = make_task(kind, ROUND_TRIP[kind])
    batch = task.batch(4, 2, 11)
    for b in range(batch.B):
        n = int(batch.lengths[b])  # parity: typed sequences carry no padding
        seq = column(batch, b, n)
        assert_same(task.sequence_from_text(_as_text(kind, task, seq)), seq)


# ---- each task by hand -----------------------------------------------------------------------------

def test_parity_bits():
    task = make_task("parity", {"length": 12, "min_length": 1})
    x = [[[1.0]], [[0.0]], [[1.0]], [[1.0]]]
    assert_batch(task.sequence_from_text("1 011"), x, [[0], [0], [0], [1]], [[False], [False], [False], [True]])
    assert_batch(task.sequence_from_text("0"), [[[0.0]]], [[0]], [[True]])
    assert task.sequence_from_text("1" * 20).T == 20  # longer than the task's length: a test of generalization
    assert data_error(task, "1021") == "'2' at position 3 is not a bit: type 0 and 1 (spaces are ignored)"
    assert data_error(task, "  ") == "type at least 1 bit (0 or 1)"
    assert data_error(task, "1" * (MAX_TYPED_STEPS + 1)) == f"{MAX_TYPED_STEPS + 1} bits is too many: at most " \
                                                            f"{MAX_TYPED_STEPS}"


def test_counting_k():
    task = make_task("counting", {"max_count": 3, "length": 5})
    x = np.zeros((5, 1, 3))
    x[0, 0, 1] = 1.0
    assert_batch(task.sequence_from_text(" 2 "), x, [[1], [2], [0], [0], [0]], np.ones((5, 1)))
    assert data_error(task, "4") == "k must be from 1 to 3 (the task's max_count), got 4"
    assert data_error(task, "0") == "k must be from 1 to 3 (the task's max_count), got 0"
    assert data_error(task, "two") == "type one whole number k from 1 to 3, got 'two'"
    assert data_error(task, "1 2") == "type one whole number k from 1 to 3, got '1 2'"


def test_copy_symbols():
    task = make_task("copy", {"delay": 2})
    # two symbols: T = 2 K + delay = 6; the marker at K + delay - 1 = 3, the recall at the last K steps
    ids = [3, 8, 0, 9, 0, 0]
    assert_batch(task.sequence_from_text("3 8"), np.eye(10)[ids][:, None], [[0], [0], [0], [0], [3], [8]],
                 np.ones((6, 1)))
    full = task.sequence_from_text("1234567812")
    assert full.T == task.length and task.input_tokens(full)[11] == "▶"  # ten symbols: the task's own layout
    assert data_error(task, "1290") == "'9' at position 3 is not a symbol: type digits 1-8 (spaces are ignored)"
    assert data_error(task, "12345678123") == "type 1 to 10 symbols (digits 1-8), got 11"
    assert data_error(task, "") == "type 1 to 10 symbols (digits 1-8), got 0"


def test_selective_copy_region():
    task = make_task("selective-copy", {"length": 20, "tokens": 4, "vocab_size": 10})
    # the data region ".2·.a" (a = A, class 10), then one marker (class 11) per token
    ids = [0, 2, 0, 0, 10, 11, 11]
    assert_batch(task.sequence_from_text(".2· .a"), np.eye(12)[ids][:, None], [[0]] * 5 + [[1], [9]],
                 [[False]] * 5 + [[True], [True]])
    batch = task.sequence_from_text("1.2")
    assert task.input_tokens(batch) == ["1", "·", "2", "▶", "▶"]
    assert task.target_tokens(batch) == ["", "", "", "1", "2"]
    assert data_error(task, "..B") == ("'B' at position 3 is not a token: type . for a blank and 1, 2, 3, 4, 5, 6, 7, "
                                       "8, 9 or A for the tokens (spaces are ignored)")
    assert data_error(task, "...") == "type at least one token (1, 2, 3, 4, 5, 6, 7, 8, 9 or A) among the blanks (.)"


def test_adding_values_and_marks():
    task = make_task("adding", {"length": 50})
    x = [[[0.25, 0.0]], [[0.5, 1.0]], [[0.0, 0.0]], [[1.0, 1.0]]]
    assert_batch(task.sequence_from_text("0.25, 0.5* 0 1*"), x, [[[0.0]], [[0.0]], [[0.0]], [[1.5]]],
                 [[False], [False], [False], [True]])
    assert task.input_tokens(task.sequence_from_text("0.3* 0.9*")) == ["0.30*", "0.90*"]  # both marks in one half
    assert data_error(task, "0.3 0.9* 0.1") == "mark exactly two values with a trailing * (as in 0.9*), got 1 marked"
    assert data_error(task, "0.3* 0.9* 0.1*") == "mark exactly two values with a trailing * (as in 0.9*), got 3 marked"
    assert data_error(task, "0.3 1.2* 0.1*") == "value 2 ('1.2') is outside [0, 1]"
    # the task's own range, not float32's (which was said first: "at most ±3.4e38")
    assert data_error(task, "1e308 0.3* 0.4*") == "value 1 ('1e308') is outside [0, 1]"
    assert data_error(task, "0.3 x* 0.1*") == "value 2 ('x') is not a number"
    assert data_error(task, "0.5*0.4* 0.3") == ("value 1 ('0.5*0.4') is not a number; separate the values with "
                                                "spaces, commas or semicolons: 0.5* 0.4*")
    assert data_error(task, "0.3 inf* 0.1*") == "value 2 ('inf') is not a finite number"
    assert data_error(task, "0.5*") == "type at least 2 values (two of them marked with a trailing *), got 1"


@pytest.mark.parametrize("kind", ["sine", "mackey-glass", "series"])
def test_forecasting_values(kind, tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("\n".join(str(t % 7) for t in range(30)) + "\n")
    task = make_task(kind, {"path": str(path), "length": 5} if kind == "series" else {})
    assert task.input_size == 1
    batch = task.sequence_from_text("0 0.5, -1;2")  # spaces, commas and semicolons all separate values
    assert_batch(batch, [[[0.0]], [[0.5]], [[-1.0]]], [[[0.5]], [[-1.0]], [[2.0]]], np.ones((3, 1)))
    assert data_error(task, "0.5") == ("type at least 2 values (the network reads all but the last and "
                                       "predicts each next), got 1")
    assert data_error(task, "0.5 abc") == "value 2 ('abc') is not a number"
    assert data_error(task, "0.5 nan") == "value 2 ('nan') is not a finite number"
    # a float32 model would read infinity (the lab raised "input contains NaN or Inf" and closed)
    assert data_error(task, "0.5 -1e39") == "value 2 ('-1e39') is too large: at most ±3.4e38 (float32's range)"
    assert task.sequence_from_text("3e38 -3e38").x[0, 0, 0] == 3e38
    # 1,2,,3 was read as 1, 2, 3 (a several-column series refuses its empty step)
    assert data_error(task, "1,2,,3") == "nothing between , and , at column 4: a value is missing"
    assert data_error(task, "1; ;2") == "nothing between ; and ; at column 2: a value is missing"
    # steps of a two-column series typed at a one-column one were read as the values in a row, silently
    assert data_error(task, "0.1 0.2; 0.3 0.4; 0.5 0.6") == ("typed as 3 steps of 2 values (';' between them), but "
                                                            "the series has 1 column: type its values without ';' "
                                                            "to have them read in a row")
    assert task.sequence_from_text(",1;2,").x.shape == (1, 1, 1)  # (empty pieces are no values)
    assert task.sequence_from_text("0.1; 0.2; 0.3").x.shape == (2, 1, 1)  # one a step: the values in a row


@pytest.mark.parametrize("kind", ["sine", "mackey-glass", "series"])
def test_typed_values_far_outside_the_training_range_are_noted(kind, tmp_path):
    """1e30 typed into mackey-glass (scaled to [-1, 1]) read a loss of 7 and a persistence of 1e60 with
    no word why: taken, as any number is, but said to lie beyond what the network trained on."""
    path = tmp_path / "one.csv"
    path.write_text("\n".join(str(t % 7) for t in range(30)) + "\n")  # values 0 to 6, not standardized
    task = make_task(kind, {"path": str(path), "length": 5, "standardize": False} if kind == "series" else {})
    lo, hi = task.trained_range()
    assert task.typed_range_note(task.sequence_from_text(f"{lo[0]} {hi[0]} {hi[0] + (hi[0] - lo[0])}")) == ""
    note = task.typed_range_note(task.sequence_from_text("0.5 1e30 0.2"))
    assert note == (f"value 2 (1e+30) lies far outside the {lo[0]:.3g} to {hi[0]:.3g} the network trained on: "
                    "its outputs there say little")
    assert "value 3 (-50)" in task.typed_range_note(task.sequence_from_text("0.5 0.2 -50"))  # the target too
    if kind != "series":  # input noise widens what the network read: sine's noise 5, inputs from about -18 to 18
        noisy = make_task(kind, {"noise": 5.0})
        assert noisy.typed_range_note(noisy.sequence_from_text(f"{hi[0] + 10} 0")) == ""


def test_a_series_of_several_columns_takes_steps_of_that_many_values(tmp_path):
    path = tmp_path / "two.csv"
    path.write_text("a,b\n" + "\n".join(f"{t},{t * t}" for t in range(20)) + "\n")
    task = make_task("series", {"path": str(path), "length": 5})
    assert task.input_size == 2 and "; between steps" in task.typing_prompt()
    batch = task.sequence_from_text("1 2; 3,4 ;5 6;")  # a trailing ; ends the last step
    assert_batch(batch, [[[1.0, 2.0]], [[3.0, 4.0]]], [[[3.0, 4.0]], [[5.0, 6.0]]], np.ones((2, 1)))
    assert data_error(task, "1 2 3 4") == ("step 1 has 4 values, the series has 2 columns: type ; between steps and "
                                           "spaces or commas between a step's values")
    assert data_error(task, "1 2; 3 x") == "step 2 value 2 ('x') is not a number"
    assert data_error(task, "1 2") == ("type at least 2 steps (the network reads all but the last and predicts "
                                       "each next), got 1")


def test_prompts_and_placeholders_name_what_to_type():
    parity = make_task("parity", {})
    assert parity.typing_prompt() == "Type bits (0 and 1): the network reads them and outputs their parity at the last"
    assert parity.typing_placeholder() == "e.g. 1011"
    for kind, options in ROUND_TRIP.items():  # every placeholder is a sequence the task takes
        task = make_task(kind, options)
        example = task.typing_placeholder().removeprefix("e.g. ")
        assert len(example) <= 40 and task.sequence_from_text(example).B == 1, kind
    assert "[-1, 1]" in make_task("mackey-glass", {}).typing_prompt()
    # a standardized series says how its file's units become the bench's (readings typed in kW read
    # 1000 std out: a loss of 6.7e5, unexplained)
    series = make_task("series", {"path": "example-series.csv", "length": 5})
    assert "(standardized, as the bench shows them: (signal + 0.0110148) / 0.79799, (lagged + 0.00634773) / " \
           "0.636942)" in series.typing_prompt()


def test_a_wide_vocabulary_is_cut_to_the_fields_cells_not_its_characters(tmp_path):
    """53 CJK characters are 106 cells: cut at 40 characters (80 cells) the placeholder overflowed
    the field, which then showed "characters from:" and nothing after it."""
    from rnnlab.data.text import PLACEHOLDER_CHARS, _cells

    text = "".join(chr(0x4E00 + k) for k in range(53)) * 20
    (tmp_path / "zh.txt").write_text(text, encoding="utf-8")
    placeholder = make_task("text", {"path": str(tmp_path / "zh.txt"), "length": 10}).typing_placeholder()
    assert placeholder.startswith("53 characters: 一丁") and placeholder.endswith("…")  # the count where it shows
    shown = placeholder.removeprefix("53 characters: ").removesuffix("…")
    assert PLACEHOLDER_CHARS - 2 <= _cells(shown) <= PLACEHOLDER_CHARS - 1  # and the … after them
    assert _cells("e\u0301") == 1 and _cells("a\u200bb") == 2 and _cells("好a") == 3  # as a terminal draws them


def test_the_lab_puts_a_typed_sequence_on_the_bench():
    lab = Lab.open("parity")
    lab.sequence_from_text("1101")
    assert lab.steps == 4 and lab.task.input_tokens(lab.sequence) == list("1101")
    assert lab.task.target_tokens(lab.sequence) == ["", "", "", "1"]
    with pytest.raises(UserError, match="position 2"):
        lab.sequence_from_text("1x")
    assert lab.steps == 4  # unchanged after the error
    two_scales = Lab.open("multiscale-rnn")
    with pytest.raises(UserError, match="takes no typed text"):
        two_scales.sequence_from_text("1 2 3")


def test_a_character_outside_the_vocabulary_is_named_as_typed():
    """hello\\nhello on hello (no newline in its text) said: character '\\\\' is not in the
    vocabulary, the backslash doubled and the escape not named."""
    task = make_task("hello", {})
    assert data_error(task, "hex") == "character 'x' at position 3 is not in the vocabulary (helo)"
    assert data_error(task, "he\\x") == "character '\\' at position 3 is not in the vocabulary (helo)"
    assert data_error(task, "hello\\nhello") == ("\\n at position 6 types a newline, which is not in the "
                                                 "vocabulary (helo)")
    assert data_error(task, "he\\t") == "\\t at position 3 types a tab, which is not in the vocabulary (helo)"
