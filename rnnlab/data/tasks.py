"""The synthetic benchmark tasks and numeric forecasting tasks.

Memory probes (adding, copy, selective copy, parity, counting), smooth and chaotic forecasting (sine, Mackey-Glass),
separating a signal into its time scales (two-scales),
and the user's own numeric series. The character tasks live in :mod:`rnnlab.data.text`; the shared
machinery (Batch, Baseline, Task, registry, make_task) in :mod:`rnnlab.data.base` and is re-exported
here.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from pathlib import Path

import numpy as np

from ..errors import DataError, SpecError, clipped, counted
from .base import (REQUIRED, TASKS, Baseline, Batch, Field, Task, held_out_split, make_task, masked_mse, not_held_out,
                   register, task_fields)
from .files import FLOAT32_MAX, load_named_series
from .series import mackey_glass, sine_waves

__all__ = ["AddingTask", "Baseline", "Batch", "CopyTask", "CountingTask", "Field", "MackeyGlassTask",
           "ParityTask", "REQUIRED", "SelectiveCopyTask", "SeriesTask", "SineTask", "TASKS", "Task", "TwoScalesTask",
           "make_task", "task_fields"]

BLANK = "·"  # display label of "nothing here" (blank symbol, padding, stop)


def _one_hot(ids: np.ndarray, n: int) -> np.ndarray:
    return np.eye(n, dtype=np.float64)[ids]


def _full_lengths(T: int, B: int) -> np.ndarray:
    return np.full(B, T, dtype=np.int64)


# ---- typed sequences (the lab's ``i``) --------------------------------------------------------------
# A task that can be typed has sequence_from_text(text) -> Batch (B = 1, laid out as its _make lays
# out a batch, by the same helper), typing_prompt() (the dialog's title) and typing_placeholder() (an
# example for the empty field); a refused text is a DataError of one line, shown in the open dialog.

#: The most steps a typed sequence may have: the largest length a task's fields allow.
MAX_TYPED_STEPS = 100_000


def _quoted(token: str) -> str:
    """A typed token for a one-line message, cut where a paste made it long."""
    return repr(clipped(token, 20))


def _check_steps(n: int, what: str) -> None:
    if n > MAX_TYPED_STEPS:
        raise DataError(f"{n} {what} is too many: at most {MAX_TYPED_STEPS}")


def _typed_chars(text: str, ids: dict[str, int], what: str, allowed: str) -> np.ndarray:
    """The id of each character of ``text`` that is not a space ``(n,)`` int64; DataError naming the
    first one that is not ``what`` (a bit, a symbol), its position in the text (from 1), and ``allowed``."""
    chars = [(pos, c) for pos, c in enumerate(text, 1) if not c.isspace()]
    _check_steps(len(chars), f"{what}s")
    out = np.empty(len(chars), dtype=np.int64)
    for k, (pos, c) in enumerate(chars):
        if c not in ids:
            raise DataError(f"{_quoted(c)} at position {pos} is not a {what}: type {allowed} (spaces are ignored)")
        out[k] = ids[c]
    return out


def _typed_number(token: str, where: str, within: tuple[float, float] | None = None) -> float:
    """``token`` as a finite float, or a DataError naming it and ``where`` it was typed ("value 3");
    outside ``within`` (the task's own range, said before float32's), too."""
    try:
        if not token.isascii() or "_" in token:  # float() reads "٠.٩" as 0.9 and "0_0.3" as 0.3
            raise ValueError(token)
        v = float(token)
    except ValueError:
        # "0.5*0.4": two marked values typed together (a * ends a value, it does not separate two)
        hint = "; separate the values with spaces, commas or semicolons: 0.5* 0.4*" if "*" in token else ""
        raise DataError(f"{where} ({_quoted(token)}) is not a number{hint}") from None
    if not math.isfinite(v):
        raise DataError(f"{where} ({_quoted(token)}) is not a finite number")
    if within is not None and not within[0] <= v <= within[1]:
        raise DataError(f"{where} ({_quoted(token)}) is outside [{within[0]:g}, {within[1]:g}]")
    if abs(v) > FLOAT32_MAX:  # a float32 model would read infinity (a float64 one, too big to mean anything)
        raise DataError(f"{where} ({_quoted(token)}) is too large: at most ±3.4e38 (float32's range)")
    return v


def _typed_tokens(text: str) -> list[str]:
    """The tokens of a typed list of numbers: separated by spaces, commas or semicolons. Two commas
    (or semicolons) with nothing between them are refused: a value left out, not one separator
    (a multi-column series refuses its empty step the same way)."""
    if gap := re.search(r"[,;]\s*[,;]", text):
        raise DataError(f"nothing between {gap.group(0)[0]} and {gap.group(0)[-1]} at column {gap.start() + 1}: "
                        "a value is missing")
    return [tok for tok in re.split(r"[\s,;]+", text) if tok]


@register
class AddingTask(Task):
    """The adding problem (Hochreiter & Schmidhuber 1997; as in Le et al. 2015).

    Input ``(T, B, 2)``: channel 0 a value ~ U(0, 1) at every step, channel 1 a marker that is 1 at
    one random step of the first half (``t < T // 2``) and one of the second half. Target: the sum
    of the two marked values, at the last step only (``y`` ``(T, B, 1)``, mask only ``t = T - 1``).
    """

    kind = "adding"
    loss = "mse"
    mode = "many-to-one"
    FIELDS = (Field("length", int, 50, "Sequence length T (one marker in each half)", 2, 100_000),)

    def _setup(self) -> None:
        self.input_size, self.output_size = 2, 1

    def _make(self, rng: np.random.Generator, batch_size: int, train: bool) -> Batch:
        T, B = self.length, batch_size
        half = T // 2
        values = rng.random((T, B))
        first = rng.integers(0, half, size=B)
        second = rng.integers(half, T, size=B)
        return self._layout(values, first, second)

    @staticmethod
    def _layout(values: np.ndarray, first: np.ndarray, second: np.ndarray) -> Batch:
        """The batch of ``values`` ``(T, B)`` with sequence b's markers at steps ``first[b]`` and ``second[b]``."""
        T, B = values.shape
        cols = np.arange(B)
        markers = np.zeros((T, B))
        markers[first, cols] = 1.0
        markers[second, cols] = 1.0
        y = np.zeros((T, B, 1))
        y[-1, :, 0] = values[first, cols] + values[second, cols]
        mask = np.zeros((T, B), dtype=bool)
        mask[-1] = True
        return Batch(np.stack([values, markers], axis=-1), y, mask, _full_lengths(T, B))

    def sequence_from_text(self, text: str) -> Batch:
        """One sequence (B = 1) of typed values: numbers in [0, 1] separated by spaces or commas, two
        of them marked with a trailing ``*`` (``0.3 0.9* 0.1 0.5* 0.2``); the target is their sum at
        the last step. Any length from 2 steps (up to :data:`MAX_TYPED_STEPS`), and the two marks
        anywhere (the generator puts one in each half); exactly two, as the task's target is a sum of two.
        """
        tokens = _typed_tokens(text)
        _check_steps(len(tokens), "values")
        values, marked = np.empty(len(tokens)), []
        for k, token in enumerate(tokens, 1):
            if token.endswith("*"):
                marked.append(k - 1)
            values[k - 1] = _typed_number(token.removesuffix("*"), f"value {k}", within=(0.0, 1.0))
        if len(tokens) < 2:
            raise DataError(f"type at least 2 values (two of them marked with a trailing *), got {len(tokens)}")
        if len(marked) != 2:
            raise DataError(f"mark exactly two values with a trailing * (as in 0.9*), got {len(marked)} marked")
        return self._layout(values[:, None], np.array(marked[:1]), np.array(marked[1:]))

    def typing_prompt(self) -> str:
        return ("Type values in [0, 1], two marked with a trailing *: the network outputs the sum of the marked two "
                "at the end")

    def typing_placeholder(self) -> str:
        return "e.g. 0.3 0.9* 0.1 0.5* 0.2"

    def baseline(self) -> Baseline:
        """"predict 1": always answering the mean sum 1 scores Var(u1 + u2) = 2/12 = 1/6."""
        return Baseline("predict 1", 1.0 / 6.0)

    def baseline_on(self, batch: Batch) -> float:
        return masked_mse(np.ones_like(batch.y), batch)

    def input_tokens(self, batch: Batch, b: int = 0) -> list[str]:
        """Each value as ``0.42``, with ``*`` on the two marked ones."""
        return [f"{v:.2f}" + ("*" if m > 0.5 else "") for v, m in batch.x[:, b]]

    def describe(self) -> str:
        return (f"adding: read {self.length} (value, marker) pairs and output the sum of the two marked "
                "values at the end; many-to-one, MSE")


@register
class CopyTask(Task):
    """Copy memory (Arjovsky et al. 2016): remember 10 symbols across ``delay`` blank steps.

    Input (``T = delay + 20`` steps, one-hot over 10 classes): 10 symbols from 1..8, ``delay - 1``
    blanks (0), the marker 9, then 10 blanks. Target (classes 0..8): blank for the first
    ``delay + 10`` steps, then the 10 symbols. Every step counts.
    """

    kind = "copy"
    loss = "xent"
    mode = "many-to-many"
    FIELDS = (Field("delay", int, 10, "Blank steps between the symbols and their recall (T = delay + 20)", 1, 100_000),)
    N_SYMBOLS = 10  # symbols to remember
    MARKER = 9

    def _setup(self) -> None:
        self.length = self.delay + 20
        self.input_size, self.output_size = 10, 9
        self.vocab = (BLANK,) + tuple(str(k) for k in range(1, 9))

    def _make(self, rng: np.random.Generator, batch_size: int, train: bool) -> Batch:
        return self._layout(rng.integers(1, 9, size=(self.N_SYMBOLS, batch_size)))

    def _layout(self, symbols: np.ndarray) -> Batch:
        """The batch remembering ``symbols`` ``(K, B)`` (1..8): ``T = 2 K + delay`` steps (``length`` for K = 10)."""
        K, B = symbols.shape
        T = 2 * K + self.delay
        ids = np.zeros((T, B), dtype=np.int64)
        ids[:K] = symbols
        ids[K + self.delay - 1] = self.MARKER
        y = np.zeros((T, B), dtype=np.int64)
        y[T - K:] = symbols
        return Batch(_one_hot(ids, 10), y, np.ones((T, B), dtype=bool), _full_lengths(T, B))

    def sequence_from_text(self, text: str) -> Batch:
        """One sequence (B = 1) remembering the typed symbols: digits 1-8 (``27182818``; spaces are
        ignored), then ``delay - 1`` blanks, the marker and one recall step per symbol, laid out as
        every batch is. The task's sequences hold 10 symbols; 1 to 10 may be typed: fewer make a
        shorter sequence (``T = 2 K + delay``) whose marker comes earlier than the network was
        trained on, a test of whether it learnt to wait for the marker or to count steps.
        """
        symbols = _typed_chars(text, {str(k): k for k in range(1, 9)}, "symbol", "digits 1-8")
        if not 1 <= len(symbols) <= self.N_SYMBOLS:
            raise DataError(f"type 1 to {self.N_SYMBOLS} symbols (digits 1-8), got {len(symbols)}")
        return self._layout(symbols[:, None])

    def typing_prompt(self) -> str:
        return (f"Type up to {self.N_SYMBOLS} symbols (digits 1-8): the network reads them, waits {self.delay} "
                "steps for the marker, then replays them")

    def typing_placeholder(self) -> str:
        return "e.g. 2718281828"

    def baseline(self) -> Baseline:
        """"memoryless": blanks where blanks are due, a uniform guess over the 8 symbols in the recall window."""
        T = self.length
        return Baseline("memoryless", 10 * math.log(8) / T, (T - 10 + 10 / 8) / T)

    def input_tokens(self, batch: Batch, b: int = 0) -> list[str]:
        """Symbols ``1``..``8``, ``·`` for blanks, ``▶`` for the recall marker."""
        labels = (BLANK,) + tuple(str(k) for k in range(1, 9)) + ("▶",)
        return [labels[int(i)] for i in batch.x[:, b].argmax(axis=-1)]

    def describe(self) -> str:
        return (f"copy: remember 10 symbols across {self.delay} blank steps and replay them after the "
                f"marker; T = {self.length}, cross-entropy")


#: Display labels of selective-copy's data tokens (its ``vocab`` field is at most this long).
_TOKEN_LABELS = "123456789ABCDEFGHIJKLMNOPQRSTUVW"


@register
class SelectiveCopyTask(Task):
    """Selective copying (Gu & Dao 2023, the Mamba paper): replay K tokens scattered at random positions.

    Input (``T = length`` steps, one-hot over ``vocab_size + 2`` classes): ``tokens`` (K) data
    tokens drawn uniformly from 1..vocab_size (class k) at K distinct random positions of the first
    ``T - K`` steps, in order; blanks (class 0) everywhere else there; then K marker steps (class
    ``vocab_size + 1``). Target (classes 0..vocab_size-1, class c = data token c + 1): at the k-th
    marker step the k-th data token. Only the K marker steps count (mask).

    Plain copy (:class:`CopyTask`) puts its symbols at fixed positions: an input-independent
    (linear time-invariant) recurrence such as the LRU solves it with a fixed delay line. Here the
    positions, so the delays, change from sequence to sequence: the network has to decide from
    each input whether to write it into its state (input-dependent gating, as minGRU's z_t(x_t);
    the LRU's lambda reads no input).
    """

    kind = "selective-copy"
    loss = "xent"
    mode = "many-to-many"
    FIELDS = (
        Field("length", int, 20, "Sequence length T: tokens scattered over the first T - K steps, then K markers",
              2, 100_000),
        Field("tokens", int, 4, "Data tokens K to remember and replay in order (2K <= length)", 1, 1_000),
        Field("vocab_size", int, 4, "Distinct data tokens", 2, len(_TOKEN_LABELS)),
    )

    def _setup(self) -> None:
        if 2 * self.tokens > self.length:
            raise SpecError("task.tokens", f"must be at most length / 2 ({self.length // 2}: K tokens among the first "
                                           f"length - K steps, then K markers), got {self.tokens}")
        self.input_size, self.output_size = self.vocab_size + 2, self.vocab_size
        self.vocab = tuple(_TOKEN_LABELS[: self.vocab_size])  # the label of each output class
        self.marker = self.vocab_size + 1  # the input class of the K recall steps at the end

    def _make(self, rng: np.random.Generator, batch_size: int, train: bool) -> Batch:
        T, K, V, B = self.length, self.tokens, self.vocab_size, batch_size
        L = T - K  # the steps the tokens are scattered over
        symbols = rng.integers(1, V + 1, size=(K, B))
        # K distinct positions per sequence, in increasing order: the K smallest of L random keys
        positions = np.sort(np.argsort(rng.random((L, B)), axis=0)[:K], axis=0)
        return self._layout(symbols, positions, L)

    def _layout(self, symbols: np.ndarray, positions: np.ndarray, L: int) -> Batch:
        """The batch of data tokens ``symbols`` ``(K, B)`` (1..vocab_size) at steps ``positions``
        ``(K, B)`` (distinct, increasing, < L) of an L-step data region, then the K markers."""
        K, B = symbols.shape
        T = L + K
        cols = np.broadcast_to(np.arange(B), (K, B))
        ids = np.zeros((T, B), dtype=np.int64)
        ids[positions, cols] = symbols
        ids[L:] = self.marker
        y = np.zeros((T, B), dtype=np.int64)
        y[L:] = symbols - 1
        mask = np.zeros((T, B), dtype=bool)
        mask[L:] = True
        return Batch(_one_hot(ids, self.vocab_size + 2), y, mask, _full_lengths(T, B))

    def sequence_from_text(self, text: str) -> Batch:
        """One sequence (B = 1) from its typed data region: ``.`` (or ``·``) for a blank, a token's
        label (``1``..``9``, then ``A``.. as the bench shows them; lower case too) for a data token,
        spaces ignored: ``.1..3...2.4``. The K markers are added after it, where the network replays
        the K typed tokens in order. K and the region's length are the typed ones, not the task's
        ``tokens`` and ``length``: more or fewer tokens than trained on test how far the skill reaches.
        """
        ids = {BLANK: 0, ".": 0} | {c: k for k, label in enumerate(self.vocab, 1) for c in {label, label.lower()}}
        labels = self.vocab[0] if len(self.vocab) == 1 else f"{', '.join(self.vocab[:-1])} or {self.vocab[-1]}"
        region = _typed_chars(text, ids, "token", f". for a blank and {labels} for the tokens")
        (positions,) = np.nonzero(region)
        if len(positions) == 0:
            raise DataError(f"type at least one token ({labels}) among the blanks (.)")
        _check_steps(len(region) + len(positions), "steps (data and markers)")
        return self._layout(region[positions, None], positions[:, None], len(region))

    def typing_prompt(self) -> str:
        return (f"Type blanks (.) and tokens ({''.join(self.vocab)}): the network replays the tokens in order "
                "at the markers after them")

    def typing_placeholder(self) -> str:
        K, V = min(self.tokens, 4), self.vocab_size
        return "e.g. " + "".join("." * (1 + k % 3) + self.vocab[(3 * k) % V] for k in range(K))

    def baseline(self) -> Baseline:
        """"chance": the tokens are uniform and independent: a guess without memory scores log(V), 1/V."""
        return Baseline("chance", math.log(self.vocab_size), 1.0 / self.vocab_size)

    def input_tokens(self, batch: Batch, b: int = 0) -> list[str]:
        """The data tokens, ``·`` for blanks, ``▶`` for the recall markers."""
        labels = (BLANK,) + self.vocab + ("▶",)
        return [labels[int(i)] for i in batch.x[:, b].argmax(axis=-1)]

    def describe(self) -> str:
        return (f"selective-copy: {self.tokens} tokens (of {self.vocab_size}) at random positions among "
                f"{self.length - self.tokens} steps, replayed in order at the markers; T = {self.length}, "
                "cross-entropy on the replay")


def _forecast_batch(x: np.ndarray, y: np.ndarray) -> Batch:
    """A next-value batch: inputs ``x`` and targets ``y`` ``(T, B, F)``, every step counting."""
    T, B = x.shape[:2]
    return Batch(x, y, np.ones((T, B), dtype=bool), _full_lengths(T, B))


class _TypedForecast:
    """Typed sequences for a next-value task: the network reads the typed values and predicts each next one."""

    input_size: int
    #: The scale typed values are read in, for the dialog's title where it is not the obvious one.
    typing_scale: str = ""

    def sequence_from_text(self, text: str) -> Batch:
        """One sequence (B = 1) of typed values, in the scale the bench shows them: inputs all but the
        last, targets all but the first (no noise added), at least 2 values. One channel: numbers
        separated by spaces, commas or semicolons (``0 0.5 0.87 1``). F channels: ``;`` between steps,
        spaces or commas between a step's F values (``0.1 -2; 0.3 -1.5; 0.2 -1``).
        """
        F = self.input_size
        steps = [[tok for tok in re.split(r"[\s,]+", step) if tok] for step in text.split(";")]  # ; between steps
        if F == 1:
            rows = [[tok] for tok in _typed_tokens(text)]
            groups = [step for step in steps if step]
            if len(groups) > 1 and len({len(group) for group in groups}) == 1 and len(groups[0]) > 1:
                # "0.1 0.2; 0.3 0.4": steps of a multi-column series, which this one-column task would
                # read as 4 values in a row
                raise DataError(f"typed as {len(groups)} steps of {len(groups[0])} values (';' between them), but "
                                "the series has 1 column: type its values without ';' to have them read in a row")
        else:
            rows = steps
            if rows and not rows[-1]:  # a trailing ;
                rows.pop()
        _check_steps(len(rows) - 1, "steps")
        values = np.empty((len(rows), F))
        for t, row in enumerate(rows):
            if len(row) != F:
                raise DataError(f"step {t + 1} has {counted(len(row), 'value')}, the series has "
                                f"{F} columns: type ; between steps and spaces or commas between a step's values")
            for f, token in enumerate(row):
                values[t, f] = _typed_number(token, f"value {t + 1}" if F == 1 else f"step {t + 1} value {f + 1}")
        if len(rows) < 2:
            what = "values" if F == 1 else "steps"
            raise DataError(f"type at least 2 {what} (the network reads all but the last and predicts each next), "
                            f"got {len(rows)}")
        return _forecast_batch(values[:-1, None].copy(), values[1:, None].copy())

    def trained_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Per column, the lowest and the highest value the network reads in training (F,) each: the
        series', widened by four standard deviations of the input noise where the task adds some."""
        spread = 4.0 * getattr(self, "noise", 0.0)
        return self._train.min(axis=0) - spread, self._train.max(axis=0) + spread

    def typed_range_note(self, batch: Batch) -> str:
        """A warning for a typed sequence (:meth:`sequence_from_text`'s) holding a value far outside what
        the network trained on, beyond :meth:`trained_range` by more than its width ("" when none is):
        any number is taken, but the outputs there say little (1e30 into a model of a series scaled
        to [-1, 1] read a loss and a persistence of 1e60 without a word why)."""
        values = np.concatenate([batch.x[:, 0], batch.y[-1:, 0]])  # the typed values, (n, F)
        lo, hi = self.trained_range()
        width = np.where(hi > lo, hi - lo, 1.0)
        far = (values < lo - width) | (values > hi + width)
        if not far.any():
            return ""
        t, f = (int(k) for k in np.argwhere(far)[0])
        where = f"value {t + 1}" if self.input_size == 1 else f"step {t + 1} value {f + 1}"
        return (f"{where} ({values[t, f]:g}) lies far outside the {lo[f]:.3g} to {hi[f]:.3g} the network trained "
                "on: its outputs there say little")

    def baseline_on(self, batch: Batch) -> float | None:
        """Persistence (``y_t = x_t``, the input as read, noise and all) on ``batch``."""
        return masked_mse(batch.x, batch) if batch.x.shape == batch.y.shape else None

    def typing_line_break(self) -> str:
        """What a line break pasted into the typing field becomes: a step's end (one row of a
        multi-column series a line, as a CSV writes it), else a separator between numbers."""
        return "; " if self.input_size > 1 else " "

    def typing_prompt(self) -> str:
        if self.input_size == 1:
            return f"Type numbers{self.typing_scale}: the network reads them and predicts each next one"
        return (f"Type steps of {self.input_size} values{self.typing_scale}, ; between steps: the network reads "
                "them and predicts each next step")

    def typing_placeholder(self) -> str:
        if self.input_size == 1:
            return "e.g. 0 0.5 0.87 1 0.87 0.5"
        return "e.g. " + "; ".join(" ".join(f"{0.1 * (t + f):.1f}" for f in range(min(self.input_size, 4)))
                                   + (" ..." if self.input_size > 4 else "") for t in range(3))


@register
class SineTask(_TypedForecast, Task):
    """Forecast the next value of a sine wave with a random period and phase per sequence.

    ``x_t = sin(2 pi t / P + phi) + noise * N(0, 1)``, ``y_t`` the clean value at ``t + 1``;
    ``P ~ U(min_period, max_period)``, ``phi ~ U(0, 2 pi)``.
    The lab types a sequence of it as numbers (:meth:`_TypedForecast.sequence_from_text`).
    """

    kind = "sine"
    loss = "mse"
    mode = "many-to-many"
    predicts_next_input = True
    FIELDS = (
        Field("length", int, 50, "Sequence length T", 1, 100_000),
        Field("noise", float, 0.0, "Std of Gaussian noise added to the inputs (targets stay clean)", 0.0, 10.0),
        Field("min_period", float, 8.0, "Shortest period, in steps", 2.0, 1e6),
        Field("max_period", float, 32.0, "Longest period, in steps (>= min_period)", 2.0, 1e6),
    )

    def _setup(self) -> None:
        if self.min_period > self.max_period:
            raise SpecError("task.min_period",
                            f"must be at most max_period ({self.max_period:g}), got {self.min_period:g}")
        self.input_size = self.output_size = 1

    def _make(self, rng: np.random.Generator, batch_size: int, train: bool) -> Batch:
        T, B = self.length, batch_size
        period = rng.uniform(self.min_period, self.max_period, size=B)
        phase = rng.uniform(0.0, 2.0 * np.pi, size=B)
        wave = sine_waves(T + 1, period, phase)
        x = wave[:-1].copy()
        if self.noise > 0:
            x += self.noise * rng.standard_normal((T, B))
        return _forecast_batch(x[..., None], wave[1:, :, None])

    def trained_range(self) -> tuple[np.ndarray, np.ndarray]:
        """A sine's [-1, 1], widened by four standard deviations of the input noise."""
        return np.array([-1.0 - 4.0 * self.noise]), np.array([1.0 + 4.0 * self.noise])

    def baseline(self) -> Baseline:
        """"persistence" (predict ``y_t = x_t``), exact: ``E_P[1 - cos(2 pi / P)] + noise**2``.

        Over a uniform phase the squared one-step change of a sine of period P averages
        ``1 - cos(2 pi / P)``; the expectation over ``P ~ U(min, max)`` is a Gauss-Legendre quadrature
        (exact to ~1e-15 for this smooth integrand).
        """
        lo, hi = self.min_period, self.max_period
        if hi == lo:
            clean = 1.0 - math.cos(2.0 * math.pi / lo)
        else:
            nodes, weights = np.polynomial.legendre.leggauss(64)
            p = 0.5 * (hi - lo) * nodes + 0.5 * (hi + lo)
            clean = float(0.5 * (weights * (1.0 - np.cos(2.0 * np.pi / p))).sum())
        return Baseline("persistence", clean + self.noise**2)

    def describe(self) -> str:
        noisy = f", input noise std {self.noise:g}" if self.noise > 0 else ""
        return (f"sine: forecast the next value of a sine wave (period {self.min_period:g}-{self.max_period:g} "
                f"steps{noisy}); T = {self.length}, MSE")


@register
class TwoScalesTask(Task):
    """Separate a noisy signal into its slow and its fast component: a task for multiple time scales.

    ``x_t = s_t + f_t + noise * N(0, 1)`` with a slow sine ``s_t = sin(2 pi t / P_s + phi_s)`` and a
    fast one ``f_t = sin(2 pi t / P_f + phi_f)``; periods ``P_s ~ U(slow_min_period, slow_max_period)``,
    ``P_f ~ U(fast_min_period, fast_max_period)`` and phases ``~ U(0, 2 pi)`` drawn per sequence.
    Target ``y_t = (s_t, f_t)`` ``(T, B, 2)``, every step. Recovering s_t means averaging the input over
    a window as long as the slow period (a slow, leaky unit does exactly that); f_t is what is left
    after that, from the last few steps (a fast unit). The split is visible: correlate each hidden
    unit with s_t and f_t (``benchmarks/multiscale_leaky.py``).
    """

    kind = "two-scales"
    loss = "mse"
    mode = "many-to-many"
    FIELDS = (
        Field("length", int, 200, "Sequence length T", 1, 100_000),
        Field("noise", float, 0.3, "Std of Gaussian noise added to the input (targets stay clean)", 0.0, 10.0),
        Field("slow_min_period", float, 60.0, "Shortest period of the slow component, in steps", 2.0, 1e6),
        Field("slow_max_period", float, 120.0, "Longest period of the slow component (>= slow_min_period)", 2.0, 1e6),
        Field("fast_min_period", float, 4.0, "Shortest period of the fast component, in steps", 2.0, 1e6),
        Field("fast_max_period", float, 8.0, "Longest period of the fast component (>= fast_min_period, "
                                             "<= slow_min_period)", 2.0, 1e6),
    )

    def _setup(self) -> None:
        for scale in ("slow", "fast"):
            lo, hi = getattr(self, f"{scale}_min_period"), getattr(self, f"{scale}_max_period")
            if lo > hi:
                raise SpecError(f"task.{scale}_min_period", f"must be at most {scale}_max_period ({hi:g}), got {lo:g}")
        if self.fast_max_period > self.slow_min_period:
            raise SpecError("task.fast_max_period", f"must be at most slow_min_period ({self.slow_min_period:g}): the "
                                                    f"fast component must be the faster, got {self.fast_max_period:g}")
        self.input_size, self.output_size = 1, 2
        self.channels = ("slow", "fast")

    def _make(self, rng: np.random.Generator, batch_size: int, train: bool) -> Batch:
        T, B = self.length, batch_size
        slow = sine_waves(T, rng.uniform(self.slow_min_period, self.slow_max_period, size=B),
                          rng.uniform(0.0, 2.0 * np.pi, size=B))
        fast = sine_waves(T, rng.uniform(self.fast_min_period, self.fast_max_period, size=B),
                          rng.uniform(0.0, 2.0 * np.pi, size=B))
        x = slow + fast
        if self.noise > 0:
            x += self.noise * rng.standard_normal((T, B))
        y = np.stack([slow, fast], axis=2)
        return Batch(x[..., None], y, np.ones((T, B), dtype=bool), _full_lengths(T, B))

    def baseline(self) -> Baseline:
        """"zero" (predict 0 for both components): 0.5, the mean of sin^2 over a uniform phase."""
        return Baseline("zero", 0.5)

    def baseline_on(self, batch: Batch) -> float:
        return masked_mse(np.zeros_like(batch.y), batch)

    def describe(self) -> str:
        noisy = f", input noise std {self.noise:g}" if self.noise > 0 else ""
        return (f"two-scales: split slow (period {self.slow_min_period:g}-{self.slow_max_period:g}) + fast "
                f"(period {self.fast_min_period:g}-{self.fast_max_period:g}) sines into their parts{noisy}; "
                f"T = {self.length}, MSE")


class _WindowForecast(_TypedForecast, Task):
    """Next-step forecasting on windows cut at seeded random offsets from one long series ``(N, F)``.

    Subclasses set ``_train`` and ``_eval`` (the series parts windows are cut from) and ``noise``.
    """

    loss = "mse"
    mode = "many-to-many"
    predicts_next_input = True
    noise: float = 0.0
    _train: np.ndarray
    _eval: np.ndarray

    def _set_parts(self, series: np.ndarray) -> None:
        split = held_out_split(len(series), self.length + 1)
        self.eval_not_held_out = not_held_out(len(series), split, self.length + 1, "rows")
        self._train = series[:split]
        self._eval = series[split:] if split < len(series) else series
        self.input_size = self.output_size = series.shape[1]
        if series.shape[1] > 1:
            self.channels = tuple(f"#{k + 1}" for k in range(series.shape[1]))  # the file's columns

    def _make(self, rng: np.random.Generator, batch_size: int, train: bool) -> Batch:
        data, T, B = (self._train if train else self._eval), self.length, batch_size
        offsets = rng.integers(0, len(data) - T, size=B)
        win = data[offsets[None, :] + np.arange(T + 1)[:, None]]  # (T+1, B, F)
        x = win[:-1].copy()
        if self.noise > 0:
            x += self.noise * rng.standard_normal(x.shape)
        return _forecast_batch(x, np.ascontiguousarray(win[1:]))

    def baseline(self) -> Baseline:
        """"persistence" (predict ``y_t = x_t``): mean squared one-step change over the training part, plus noise**2."""
        d = np.diff(self._train, axis=0)
        return Baseline("persistence", float(np.mean(d * d)) + self.noise**2)


@functools.lru_cache(maxsize=8)
def _mackey_glass_scaled(tau: int) -> tuple[np.ndarray, float, float]:
    """The task's series for ``tau`` (cached: tasks are rebuilt often), scaled to [-1, 1], and its raw min and max."""
    series = mackey_glass(MackeyGlassTask.WARMUP + MackeyGlassTask.N_STEPS, tau=tau)[MackeyGlassTask.WARMUP:]
    lo, hi = float(series.min()), float(series.max())
    scaled = 2.0 * (series - lo) / (hi - lo) - 1.0
    scaled.setflags(write=False)
    return scaled[:, None], lo, hi


@register
class MackeyGlassTask(_WindowForecast):
    """Forecast the next step of the chaotic Mackey-Glass series.

    The series is :func:`~rnnlab.data.series.mackey_glass` with reservoirpy's defaults (a=0.2,
    b=0.1, n=10, x0=1.2, h=1, seed 5555) and the given ``tau``: 12,200 steps, the first 200
    (transient from the initial history) dropped, then scaled linearly by its own minimum and
    maximum to exactly [-1, 1] (tanh's range): ``z = 2 (x - series_min) / (series_max - series_min) - 1``,
    with ``series_min``, ``series_max`` kept on the task to map predictions back. The last 1,200
    steps are held out for the eval batch. Windows start at seeded random offsets; ``noise`` is
    added to the inputs only.
    The lab types a sequence of it as numbers (:meth:`_TypedForecast.sequence_from_text`).
    """

    kind = "mackey-glass"
    typing_scale = " (the series is scaled to [-1, 1])"
    WARMUP = 200
    N_STEPS = 12_000
    FIELDS = (
        Field("length", int, 50, "Window length T", 1, 1_000),
        Field("tau", int, 17, "Delay of the equation (17: mildly chaotic, 30: more)", 1, 500),
        Field("noise", float, 0.0, "Std of Gaussian noise added to the inputs (targets stay clean)", 0.0, 10.0),
    )

    def _setup(self) -> None:
        scaled, self.series_min, self.series_max = _mackey_glass_scaled(self.tau)
        self._set_parts(scaled)

    def describe(self) -> str:
        noisy = f", input noise std {self.noise:g}" if self.noise > 0 else ""
        return (f"mackey-glass: forecast the next step of the chaotic Mackey-Glass series (tau = {self.tau}, "
                f"scaled to [-1, 1]{noisy}); T = {self.length}, MSE")


@register
class ParityTask(Task):
    """Parity (XOR) of a bit string, answered at its last bit.

    Input ``(T, B, 1)``: a bit in {0, 1} per step (a scalar, 0 also after the end). Target: the
    parity (0 even, 1 odd) of the whole string, at each sequence's last valid step only. With
    ``min_length < length`` lengths vary uniformly in ``[min_length, length]``: sequences are
    padded at the end and ``lengths`` says where each ends.
    """

    kind = "parity"
    loss = "xent"
    mode = "many-to-one"
    FIELDS = (
        Field("length", int, 10, "Longest sequence (T of the batches)", 1, 100_000),
        Field("min_length", int, None, "Shortest sequence; default = length (all the same length)", 1, 100_000),
    )

    def _setup(self) -> None:
        if self.min_length is None:
            self.min_length = self.length
        if self.min_length > self.length:
            raise SpecError("task.min_length", f"must be at most length ({self.length}), got {self.min_length}")
        self.input_size, self.output_size = 1, 2
        self.vocab = ("0", "1")

    def _make(self, rng: np.random.Generator, batch_size: int, train: bool) -> Batch:
        T, B = self.length, batch_size
        bits = rng.integers(0, 2, size=(T, B))
        lengths = rng.integers(self.min_length, T + 1, size=B).astype(np.int64)
        return self._layout(bits, lengths)

    @staticmethod
    def _layout(bits: np.ndarray, lengths: np.ndarray) -> Batch:
        """The batch of ``bits`` ``(T, B)``, sequence b ending at step ``lengths[b]`` (int64; 0s after it)."""
        T, B = bits.shape
        valid = np.arange(T)[:, None] < lengths[None, :]
        bits = np.where(valid, bits, 0)
        cols = np.arange(B)
        y = np.zeros((T, B), dtype=np.int64)
        y[lengths - 1, cols] = bits.sum(axis=0) % 2
        mask = np.zeros((T, B), dtype=bool)
        mask[lengths - 1, cols] = True
        return Batch(bits[..., None].astype(np.float64), y, mask, lengths)

    def sequence_from_text(self, text: str) -> Batch:
        """One sequence (B = 1) of typed bits, ``0`` and ``1`` (``1011``; spaces are ignored); the
        target is their parity at the last bit. No padding: T is the number of bits, any from 1 (up
        to :data:`MAX_TYPED_STEPS`), longer than ``length`` too, to see how far the network generalizes.
        """
        bits = _typed_chars(text, {"0": 0, "1": 1}, "bit", "0 and 1")
        if len(bits) == 0:
            raise DataError("type at least 1 bit (0 or 1)")
        return self._layout(bits[:, None], np.array([len(bits)], dtype=np.int64))

    def typing_prompt(self) -> str:
        return "Type bits (0 and 1): the network reads them and outputs their parity at the last"

    def typing_placeholder(self) -> str:
        return "e.g. 1011"

    def baseline(self) -> Baseline:
        """"chance": parity is independent of any proper subset of the bits, so a coin flip is the best guess."""
        return Baseline("chance", math.log(2.0), 0.5)

    def input_tokens(self, batch: Batch, b: int = 0) -> list[str]:
        """``0``/``1`` for the bits, ``·`` for padding."""
        n = int(batch.lengths[b])
        return [str(int(v)) if t < n else BLANK for t, v in enumerate(batch.x[:, b, 0])]

    def describe(self) -> str:
        span = f"{self.length}" if self.min_length == self.length else f"{self.min_length}-{self.length}"
        return f"parity: output the parity of {span} bits after reading them; many-to-one, cross-entropy"


@register
class CountingTask(Task):
    """Count to k (one-to-many): read k once, then emit 1, 2, ..., k and stop.

    Input ``(T, B, max_count)``: one-hot of k in 1..max_count at t = 0 (index k - 1), zeros after.
    Target (classes 0..max_count): ``t + 1`` for ``t < k``, then 0 ("stop", shown ``·``). Every
    step counts.
    """

    kind = "counting"
    loss = "xent"
    mode = "one-to-many"
    FIELDS = (
        Field("max_count", int, 8, "Largest k to count to", 1, 1_000),
        Field("length", int, None, "Sequence length T; default = max_count + 1 (must be at least max_count + 1)",
              2, 100_000),
    )

    def _setup(self) -> None:
        if self.length is None:
            self.length = self.max_count + 1
        if self.length < self.max_count + 1:
            raise SpecError("task.length", f"must be at least max_count + 1 ({self.max_count + 1}), got {self.length}")
        self.input_size, self.output_size = self.max_count, self.max_count + 1
        self.vocab = (BLANK,) + tuple(str(k) for k in range(1, self.max_count + 1))

    def _make(self, rng: np.random.Generator, batch_size: int, train: bool) -> Batch:
        return self._layout(rng.integers(1, self.max_count + 1, size=batch_size))

    def _layout(self, k: np.ndarray) -> Batch:
        """The batch of sequence b counting to ``k[b]`` (1..max_count), ``length`` steps."""
        T, B, M = self.length, len(k), self.max_count
        x = np.zeros((T, B, M))
        x[0, np.arange(B), k - 1] = 1.0
        t = np.arange(T)[:, None]
        y = np.where(t < k[None, :], t + 1, 0).astype(np.int64)
        return Batch(x, y, np.ones((T, B), dtype=bool), _full_lengths(T, B))

    def sequence_from_text(self, text: str) -> Batch:
        """One sequence (B = 1) counting to the typed k, a whole number from 1 to ``max_count``:
        k at the first step, ``length`` steps as every sequence of the task."""
        token = text.strip()
        try:
            if not token.isascii() or "_" in token:  # int() reads "٣" as 3, as the options' ASCII digits do not
                raise ValueError(token)
            k = int(token)
        except ValueError:
            raise DataError(f"type one whole number k from 1 to {self.max_count}, got {_quoted(token)}") from None
        if not 1 <= k <= self.max_count:
            raise DataError(f"k must be from 1 to {self.max_count} (the task's max_count), got {k}")
        return self._layout(np.array([k]))

    def typing_prompt(self) -> str:
        return (f"Type k (1 to {self.max_count}): the network reads it once, then counts 1..k and stops "
                f"({self.length} steps)")

    def typing_placeholder(self) -> str:
        return f"e.g. {min(3, self.max_count)}"

    def baseline(self) -> Baseline:
        """"ignores input": the best guess knowing the step t but not k.

        At step t the target is ``t + 1`` with probability ``p = (M - t) / M`` (when ``k > t``) and
        0 otherwise; predicting that distribution costs its entropy and the argmax is right with
        probability ``max(p, 1 - p)``. Averaged over the T steps.
        """
        M, T = self.max_count, self.length
        p = np.clip((M - np.arange(T)) / M, 0.0, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = -(np.where(p > 0, p * np.log(p), 0.0) + np.where(p < 1, (1 - p) * np.log(1 - p), 0.0))
        return Baseline("ignores input", float(h.mean()), float(np.maximum(p, 1 - p).mean()))

    def input_tokens(self, batch: Batch, b: int = 0) -> list[str]:
        """k at the first step, ``·`` after."""
        k = int(batch.x[0, b].argmax()) + 1
        return [str(k)] + [BLANK] * (batch.T - 1)

    def describe(self) -> str:
        return (f"counting: read k (1-{self.max_count}) once, then count 1..k and stop; T = {self.length}, "
                "one-to-many, cross-entropy")


def _standardized(data: np.ndarray, split: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each column of ``data`` less the mean of its first ``split`` rows, over their std (a constant
    column: only shifted), with that mean and std (1 for a constant column): the data is
    ``out * std + mean``. Values near float64's limit (1e300 and up) overflow the sums: those are
    scaled by the column's largest magnitude first, which leaves the result the same."""
    train = data[:split]
    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = train.mean(axis=0), train.std(axis=0)
        out = (data - mean) / np.where(std > 0, std, 1.0)
        if not (np.isfinite(std).all() and np.isfinite(out).all()):
            scale = np.abs(data).max(axis=0)
            scale = np.where(scale > 0, scale, 1.0)
            scaled = data / scale
            mean, std = scaled[:split].mean(axis=0), scaled[:split].std(axis=0)
            out = (scaled - mean) / np.where(std > 0, std, 1.0)
            mean, std = mean * scale, std * scale  # what the data was shifted and scaled by
    return out, mean, np.where(std > 0, std, 1.0)


def _digits_for(mean: float, std: float) -> str:
    """|mean| with the digits that keep it within a thousandth of ``std`` (101325.4505 where the std is
    0.03: "101325" put typed readings 14 std off)."""
    spread = abs(mean) / std if std > 0 and abs(mean) > 0 else 1.0
    return f"{abs(mean):.{min(17, max(6, math.ceil(math.log10(spread)) + 4))}g}"


def _row_counter_warning(path: Path, data: np.ndarray, names: tuple[str, ...] | None) -> str:
    """A warning ("" for none) naming the columns of ``data`` that count its rows (0, 1, 2, ... or
    from any start): a step number, or pandas' index (``to_csv`` without ``index=False``, whose
    header leaves that column unnamed), which a model would read and forecast like a signal."""
    if len(data) < 3:
        return ""
    steps = np.diff(data, axis=0)
    counting = (steps == 1).all(axis=0) & (data[0] == np.round(data[0]))
    counters = np.flatnonzero(counting).tolist()  # (one pass over the rows, however many columns)
    counted = _counter_text(path, data, names, counters) if counters else ""
    return "; ".join(filter(None, (counted, _clock_warning(path, data, steps, names, skip=counters))))


def _counter_text(path: Path, data: np.ndarray, names: tuple[str, ...] | None, counters: list[int]) -> str:
    """:func:`_row_counter_warning`'s words for the columns ``counters``."""

    def named(c: int) -> bool:  # load_named_series calls an unnamed column #k; pandas reads one back as Unnamed: 0
        return names is not None and names[c] not in (f"#{c + 1}", "Unnamed: 0")

    if counters == [0] and names is not None and not named(0):
        start = int(data[0, 0])
        return (f"{path.name}: column 1 has no name and counts the rows ({start}, {start + 1}, {start + 2}, ...): "
                "pandas' index? It is read and forecast like a signal; to_csv(index=False) leaves it out")
    if len(counters) == 1:
        c, start = counters[0], int(data[0, counters[0]])
        what = (f"column {c + 1}" + (f" ('{names[c]}')" if named(c) else "")
                + f" counts the rows ({start}, {start + 1}, {start + 2}, ...)")
    else:
        what = "columns " + ", ".join(str(c + 1) for c in counters) + " count the rows"
    return (f"{path.name}: {what}: read and forecast like a signal, though a step number carries none, and "
            "past the training rows it takes values never trained on")


def _clock_warning(path: Path, data: np.ndarray, steps: np.ndarray, names: tuple[str, ...] | None,
                   skip: list[int] = ()) -> str:
    """A warning ("" for none) naming the first column that steps by one constant every row from a
    value of a million or more: a time stamp (unix seconds, 3600 an hour; milliseconds), which a model
    reads and forecasts like a signal, and which past the training rows takes values never trained on.
    (A small ramp, 0, 2, 4, ..., may be a signal: it is left alone.)"""
    first = steps[0]
    with np.errstate(invalid="ignore", over="ignore"):  # (values near float64's limit: their steps overflow)
        largest = np.abs(data).max(axis=0)
        tolerance = np.maximum(1e-9 * np.abs(first), 16 * np.finfo(np.float64).eps * largest)  # a 0.1 s step at 1.7e9
        steady = (first != 0) & (np.abs(steps - first) <= tolerance).all(axis=0) & (np.abs(data).min(axis=0) >= 1e6)
    steady[list(skip)] = False
    if not steady.any():
        return ""
    c = int(np.flatnonzero(steady)[0])
    name = f" ('{names[c]}')" if names is not None and names[c] != f"#{c + 1}" else ""

    def shown(value: float, digits: int = 12) -> str:  # a millisecond stamp whole, not 1.7040672e+12
        return str(int(value)) if value == round(value) and abs(value) < 1e18 else f"{value:.{digits}g}"

    step = (data[-1, c] - data[0, c]) / (len(data) - 1)  # (two stamps near 1.7e9 differ by 0.0999999046)
    return (f"{path.name}: column {c + 1}{name} steps by {shown(step, 6)} every row ({shown(data[0, c])}, "
            f"{shown(data[1, c])}, "
            f"...): a time stamp? It is read and forecast like a signal, and past the training rows it takes "
            "values never trained on")


@register
class SeriesTask(_WindowForecast):
    """Forecast the next row of the user's numeric series (``.csv`` or ``.npy``; rows are time steps).

    A file is one long series ``(N, F)`` (a 1-D ``.npy`` is one feature). With ``standardize``
    every column is shifted and scaled by the training part's mean and std (a constant column only
    shifted). When both parts have at least ``length + 1`` rows the last tenth is held out for the
    eval batch. Windows start at seeded random offsets.
    The lab types a sequence of it as numbers, ``;`` between the steps of several columns
    (:meth:`_TypedForecast.sequence_from_text`).
    """

    kind = "series"
    #: With ``standardize``: what each column was shifted and scaled by (the file's values are
    #: ``standardized * std + mean``); None without.
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    FIELDS = (
        Field("path", Path, REQUIRED, "Path of a .csv (optional header line) or .npy file; rows are time steps"),
        Field("length", int, 50, "Window length T", 1, 100_000),
        Field("standardize", bool, True, "Scale each column to zero mean and unit std (training part's)"),
    )

    def _setup(self) -> None:
        path: Path = self.path
        data, names, read_warning = load_named_series(path)
        if len(data) < self.length + 1:
            hint = " (rows are time steps: is it transposed?)" if data.shape[1] >= self.length + 1 else ""
            raise DataError(f"{path}: has {len(data)} rows, needs at least {self.length + 1} for "
                            f"length = {self.length}{hint}")
        self.n_rows, self.n_features = data.shape
        # what a run directory stores to see later whether this file still holds the series it was
        # trained on: the numbers as read and their shape (a CSV resaved with other spacing is the same)
        digest = hashlib.sha256(repr(data.shape).encode())
        digest.update(np.ascontiguousarray(data, dtype="<f8").tobytes())
        self.data_sha256 = digest.hexdigest()
        self.data_warning = "; ".join(filter(None, (read_warning, _row_counter_warning(path, data, names))))
        if self.standardize:
            data, self.mean, self.std = _standardized(data, held_out_split(len(data), self.length + 1))
        self.largest = float(np.abs(data).max())  # of the values a model reads
        self._set_parts(data)
        if names is not None:  # the header's names, not #1, #2, ...; a single column's too ("input load_kw")
            self.channels = names
        if self.standardize:
            # the file's units to the bench's, where they fit the title: readings typed as the file
            # writes them (1419 kW) read 1000 std out and gave a loss of 6.7e5 with no word why
            names = self.channels or ("",) * self.n_features
            scales = [f"({name + ' ' if name else 'x '}{'-' if m >= 0 else '+'} {_digits_for(m, d)}) / {d:.6g}"
                      for name, m, d in zip(names, np.atleast_1d(self.mean), np.atleast_1d(self.std))]
            shown = ", ".join(scales) if len(scales) <= 2 else f"{scales[0]}, ... ({len(scales)} columns)"
            self.typing_scale = f" (standardized, as the bench shows them: {shown})"

    def beyond_float32(self) -> str:
        """Why a float32 model cannot read this series ("" when it can): values beyond float32's
        range, which it would read as infinity."""
        if self.largest <= FLOAT32_MAX:
            return ""
        advice = ("its held-out tail lies far outside the training part's spread, by which it is "
                  "standardized" if self.standardize else "set standardize = true")
        standardized = " once standardized" if self.standardize else ""
        return (f"{self.path}: holds values up to {self.largest:.3g}{standardized}, beyond float32's range "
                f"(±3.4e38): {advice}, scale the data, or use dtype = \"float64\"")

    def describe(self) -> str:
        std = ", standardized" if self.standardize else ""
        features = counted(self.n_features, "feature")
        return (f"series: forecast the next row of {Path(self.path).name} ({self.n_rows} rows x "
                f"{features}{std}); T = {self.length}, MSE")
