"""Character tasks: ``hello`` (min-char-rnn's first example) and ``text`` (a character language model)."""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import DataError, SpecError, counted
from .base import (_TRAIN_TAG, REQUIRED, Baseline, Batch, Field, Task, _check_args, held_out_split, not_held_out,
                   register)
from .files import MAX_VOCAB, load_text

_SHOWN = {"\n": "⏎", "\t": "⇥", " ": "␣", "\r": "␍"}


def display_char(c: str) -> str:
    """A character as one visible label: ``⏎`` newline, ``␣`` space, ``⇥`` tab, a combining mark on a
    dotted circle (``◌́``), escapes for other controls and for the invisible rest (a variation
    selector, a zero-width joiner: ``\ufe0f``), whose step looked empty on the bench."""
    if c in _SHOWN:
        return _SHOWN[c]
    if len(c) == 1 and (0xFE00 <= ord(c) <= 0xFE0F or 0xE0100 <= ord(c) <= 0xE01EF):  # variation selectors
        return c.encode("unicode_escape").decode("ascii")
    if len(c) == 1 and c.isprintable() and unicodedata.category(c) in ("Mn", "Me"):  # a mark: on its circle
        return "\u25cc" + c
    return c if c.isprintable() else c.encode("unicode_escape").decode("ascii")


#: What a typed line may write for the characters it cannot hold.
_ESCAPES = {"\\n": "\n", "\\t": "\t"}
#: The vocabulary shown in the typing dialog's empty field, at most (terminal cells).
PLACEHOLDER_CHARS = 40


def _cells(text: str) -> int:
    """Terminal cells ``text`` takes: two for a wide character (CJK, most emoji), none for a
    combining mark or an invisible format character (a zero-width space), one for the others."""
    return sum(0 if unicodedata.combining(c) or unicodedata.category(c) == "Cf"
               else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


class CharTask(Task):
    """A task over characters: one-hot inputs, next-character class targets.

    ``chars`` holds the raw character of each class id (what :meth:`encode` and :meth:`decode`
    use); ``vocab`` the same as display labels (``⏎`` for a newline, ``␣`` for a space).
    """

    loss = "xent"
    mode = "many-to-many"
    predicts_next_input = True
    chars: tuple[str, ...]

    def _set_chars(self, chars: Iterable[str]) -> None:
        self.chars = tuple(chars)
        self._index = {c: i for i, c in enumerate(self.chars)}
        self.vocab = tuple(display_char(c) for c in self.chars)
        self.input_size = self.output_size = len(self.chars)
        # what a one-line field (or a --prime) cannot hold: typed as the label the lab shows for it
        # (⏎ for a newline), or as \n and \t where the text has no backslash of its own
        self._from_labels = str.maketrans({label: c for c, label in zip(self.chars, self.vocab)
                                           if len(label) == 1 and label != c and label not in self._index})
        self._escapes = {escape: c for escape, c in _ESCAPES.items() if c in self._index and "\\" not in self._index}

    def typing_hint(self) -> str:
        """How to type the characters a one-line field cannot hold ("\\n or ⏎ types a newline"),
        "" where the vocabulary has none of them."""
        return ", ".join(f"{' or '.join([e for e, c in self._escapes.items() if c == raw] + [label])} types a {name}"
                         for raw, label, name in (("\n", "⏎", "newline"), ("\t", "⇥", "tab"))
                         if raw in self._index and label not in self._index)

    def typing_line_break(self) -> str | None:
        """What a line break pasted into the one-line typing field becomes: the newline as the field
        types it (``⏎``, else ``\\n``; a text without newlines refuses the ``⏎``, naming it); None where
        nothing types one (the text holds ``⏎`` and a backslash of its own)."""
        if "⏎" not in self._index:
            return "⏎"
        return "\\n" if "\\n" in self._escapes else None

    def typing_prompt(self) -> str:
        """The typing dialog's title: what to type, what the network does with it, how to type a newline."""
        hint = self.typing_hint()
        typed = f" ({hint})" if hint else ""
        return f"Type a sequence: the network reads it and predicts each next character{typed}"

    def typing_placeholder(self) -> str:
        """The characters that may be typed, cut where the field could not show the whole list."""
        vocab = "".join(self.vocab)
        if _cells(vocab) <= PLACEHOLDER_CHARS:
            return f"characters from: {vocab}"
        while _cells(vocab) > PLACEHOLDER_CHARS - 1:  # wider than the field, it showed nothing of the list
            vocab = vocab[:-1]
        return f"{len(self.vocab)} characters: {vocab}…"  # the count first: at its end the field cut it off

    def encode(self, text: str) -> np.ndarray:
        """Class ids ``(len(text),)`` int64; DataError naming the first unknown character and its
        position (from 1, as the lab numbers its steps). A character's label (``⏎``, ``␣``) stands
        for it where the vocabulary does not hold the label itself, and ``\\n``, ``\\t`` for a newline
        and a tab where it holds them and no backslash (:meth:`typing_hint`)."""
        for escape, c in self._escapes.items():
            text = text.replace(escape, c)
        text = text.translate(self._from_labels)
        try:
            return np.fromiter((self._index[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError:
            pos = next(i for i, c in enumerate(text) if c not in self._index)
            known = "".join(self.vocab) if len(self.vocab) <= 100 else f"{len(self.vocab)} characters"  # (labels)
            escape = text[pos:pos + 2]
            if escape in _ESCAPES:  # an escape for a character this vocabulary lacks: say which
                name = "a newline" if escape == "\\n" else "a tab"
                raise DataError(f"{escape} at position {pos + 1} types {name}, which is not in the vocabulary "
                                f"({known})") from None
            raise DataError(f"character '{display_char(text[pos])}' at position {pos + 1} is not in the "
                            f"vocabulary ({known})") from None

    def decode(self, ids: Iterable[int]) -> str:
        """The text of class ids (raw characters, newlines as newlines)."""
        n = len(self.chars)
        out = []
        for i in np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids).ravel():
            if not 0 <= int(i) < n:
                raise ValueError(f"class id {int(i)} out of range 0..{n - 1}")
            out.append(self.chars[int(i)])
        return "".join(out)

    def first_character(self) -> str:
        """The training text's first character: what sampling starts from where the vocabulary has
        no newline (a newline starts a line of a text that has them)."""
        return self.chars[0]

    def sequence_from_text(self, text: str) -> Batch:
        """A batch of one sequence (B=1): inputs one-hot ``text[:-1]``, targets the ids of ``text[1:]``.

        DataError when the text has fewer than 2 characters or characters outside the vocabulary.
        """
        ids = self.encode(text)  # first: an escape (\\n) is one character
        if len(ids) < 2:
            raise DataError(f"a sequence needs at least 2 characters, got {len(ids)}")
        return self._batch_from_ids(ids[:, None])

    def _batch_from_ids(self, seq: np.ndarray) -> Batch:
        """Next-character batch from ids ``(T+1, B)``: x one-hot of ``seq[:-1]``, y ``seq[1:]``."""
        T, B = seq.shape[0] - 1, seq.shape[1]
        x = np.eye(len(self.chars), dtype=np.float64)[seq[:-1]]
        return Batch(x=x, y=np.ascontiguousarray(seq[1:], dtype=np.int64), mask=np.ones((T, B), dtype=bool),
                     lengths=np.full(B, T, dtype=np.int64))

    def input_tokens(self, batch: Batch, b: int = 0) -> list[str]:
        """The input character of each step (display form)."""
        return [self.vocab[int(i)] for i in batch.x[:, b].argmax(axis=-1)]


@register
class HelloTask(CharTask):
    """min-char-rnn's first example: learn to continue one short word, "hello" -> "ello"."""

    kind = "hello"
    fixed_sequence = True
    eval_not_held_out = "hello has one word: its eval batch is the word it trains on"
    FIELDS = (Field("text", str, "hello", "The word to learn; the network sees text[:-1] and predicts text[1:]"),)

    def _setup(self) -> None:
        if len(self.text) < 2:
            raise SpecError("task.text", f"needs at least 2 characters, got {len(self.text)}")
        chars = dict.fromkeys(self.text)  # unique, in order of first appearance: h, e, l, o
        if len(chars) > MAX_VOCAB:
            raise SpecError("task.text", f"has {len(chars)} distinct characters, at most {MAX_VOCAB} are supported")
        self._set_chars(chars)
        self.length = len(self.text) - 1
        self._ids = self.encode(self.text)

    def first_character(self) -> str:
        return self.text[0]

    def _make(self, rng: np.random.Generator, batch_size: int, train: bool) -> Batch:
        # Every sequence is the word itself; there is nothing to draw.
        return self._batch_from_ids(np.repeat(self._ids[:, None], batch_size, axis=1))

    def baseline(self) -> Baseline:
        """"chance": a uniform guess over the vocabulary."""
        V = len(self.chars)
        return Baseline("chance", math.log(V), 1.0 / V)

    def describe(self) -> str:
        return (f"hello: read {self.text[:-1]!r} one character at a time and predict each next one "
                f"({self.text[1:]!r}); vocabulary {len(self.chars)}")


@register
class TextTask(CharTask):
    """A character language model over a UTF-8 text file, read as parallel streams.

    Vocabulary: the file's distinct characters, sorted. Training batches are streams (``stream``
    is True): sequence ``b`` starts at offset ``start + b * N / B`` of the training text (``start``
    drawn from the seed) and step ``s`` reads its window ``s``, so step ``s + 1`` continues where
    step ``s`` ended and the trainer carries the hidden state across steps; streams wrap around the
    end of the text. When the text is long enough (both parts at least ``length + 1`` characters)
    its last tenth is held out: training reads the first nine tenths, the eval batch takes windows
    at seeded random offsets from the held-out tenth (from the whole text otherwise).
    """

    kind = "text"
    stream = True
    FIELDS = (
        Field("path", Path, REQUIRED, "Path of a UTF-8 .txt file to model character by character"),
        Field("length", int, 25, "Characters per training window (steps of truncated BPTT)", 1, 100_000),
    )

    def _setup(self) -> None:
        path: Path = self.path
        text = load_text(path)
        if len(text) < self.length + 1:
            raise DataError(f"{path}: has {counted(len(text), 'character')}, needs at least {self.length + 1} "
                            f"for length = {self.length}")
        # Sorted unique code points and each character's class id, without a Python loop over the text.
        codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
        uniq, ids = np.unique(codes, return_inverse=True)
        self._set_chars(chr(int(c)) for c in uniq)
        self.n_chars = len(text)
        # what a run directory stores to see later whether this file still holds the text it was
        # trained on (the text as read: a file resaved with \r\n line ends is the same text)
        self.data_sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
        ids = ids.astype(np.int64).ravel()
        split = held_out_split(len(ids), self.length + 1)
        self.eval_not_held_out = not_held_out(len(ids), split, self.length + 1, "characters")
        self._train_ids = ids[:split]
        self._eval_ids = ids[split:] if split < len(ids) else ids

    def first_character(self) -> str:
        return self.chars[self._train_ids[0]]  # the vocabulary is sorted: its first is not the text's

    def batch(self, batch_size: int, step: int, seed: int) -> Batch:
        """Window ``step`` of ``batch_size`` parallel streams (consecutive steps continue each other)."""
        _check_args(batch_size, step, seed)
        data, T = self._train_ids, self.length
        N = len(data)
        start = int(np.random.default_rng([_TRAIN_TAG, seed]).integers(N))
        offsets = start + (np.arange(batch_size, dtype=np.int64) * N) // batch_size
        pos = (offsets[None, :] + step * T + np.arange(T + 1, dtype=np.int64)[:, None]) % N
        return self._batch_from_ids(data[pos])

    def _make(self, rng: np.random.Generator, batch_size: int, train: bool) -> Batch:
        data, T = (self._train_ids if train else self._eval_ids), self.length
        offsets = rng.integers(0, len(data) - T, size=batch_size)
        return self._batch_from_ids(data[offsets[None, :] + np.arange(T + 1)[:, None]])

    def baseline(self) -> Baseline:
        """"unigram": predicting the training text's character frequencies at every step."""
        p = np.bincount(self._train_ids, minlength=len(self.chars)) / len(self._train_ids)
        nz = p[p > 0]
        entropy = -(nz * np.log(nz)).sum() + 0.0  # + 0.0: one character's 0, not -0
        return Baseline("unigram", float(entropy), float(p.max()))

    def describe(self) -> str:
        return (f"text: predict the next character of {Path(self.path).name} ({self.n_chars} characters, "
                f"vocabulary {len(self.chars)}) in streams of {self.length}-step windows")
