"""Sequence-to-sequence tasks over digit strings: reversal and sorting.

The output is as long as the input here, but the model never sees that: it reads the source,
then writes the target token by token until it emits EOS. Vocabulary (shared by source and
target)::

    0 <pad>   1 <s> (BOS)   2 </s> (EOS)   3..12 the digits 0..9

A batch (:class:`Seq2SeqBatch`) is time-major and padded: ``src`` (S, B) digits then PAD,
``tgt_in`` (T, B) = BOS + target, ``tgt_out`` (T, B) = target + EOS, T = longest target + 1;
``tgt_mask`` marks the steps whose loss and accuracy count. Batches are pure functions of their
arguments: training batch ``step`` of a run seeded ``seed`` draws from
``np.random.default_rng([TRAIN_TAG, seed, step])``, held-out batches from an unrelated stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PAD", "BOS", "EOS", "DIGIT0", "VOCAB", "Seq2SeqBatch", "Seq2SeqTask", "ReversalTask", "SortTask",
           "make_batch"]

PAD, BOS, EOS = 0, 1, 2
DIGIT0 = 3  # token of the digit 0; digit d is DIGIT0 + d
VOCAB = ("<pad>", "<s>", "</s>") + tuple(str(d) for d in range(10))

# Tags mixed into every seed so training steps and held-out batches draw from unrelated streams.
TRAIN_TAG = 0x7332_7374  # "s2st"
EVAL_TAG = 0x7332_7365  # "s2se"

#: Longest sequence a task accepts.
MAX_LENGTH = 10_000


@dataclass(frozen=True, eq=False)
class Seq2SeqBatch:
    """One padded, time-major batch of (source, target) token sequences.

    ``src`` (S, B) int64 and ``src_lengths`` (B,) in [1, S]; ``tgt_in`` (T, B) (BOS, then the
    target), ``tgt_out`` (T, B) (the target, then EOS), ``tgt_mask`` (T, B) bool (True at
    ``t < tgt_lengths[b]``), ``tgt_lengths`` (B,) (target length + 1 for EOS). PAD elsewhere.
    """

    src: np.ndarray
    src_lengths: np.ndarray
    tgt_in: np.ndarray
    tgt_out: np.ndarray
    tgt_mask: np.ndarray
    tgt_lengths: np.ndarray

    def __post_init__(self) -> None:
        if self.src.ndim != 2 or self.tgt_in.ndim != 2:
            raise ValueError(f"src and tgt_in must be (steps, B), got {self.src.shape} and {self.tgt_in.shape}")
        S, B = self.src.shape
        T = self.tgt_in.shape[0]
        if (self.src_lengths.shape != (B,) or self.tgt_in.shape != (T, B) or self.tgt_out.shape != (T, B)
                or self.tgt_mask.shape != (T, B) or self.tgt_lengths.shape != (B,)):
            raise ValueError(f"inconsistent batch shapes: src {self.src.shape}, src_lengths {self.src_lengths.shape}, "
                             f"tgt_in {self.tgt_in.shape}, tgt_out {self.tgt_out.shape}, "
                             f"tgt_mask {self.tgt_mask.shape}, tgt_lengths {self.tgt_lengths.shape}")

    @property
    def B(self) -> int:
        """Number of sequences."""
        return self.src.shape[1]


def make_batch(sources: list[np.ndarray], targets: list[np.ndarray]) -> Seq2SeqBatch:
    """Pad token sequences (1-D int arrays, no BOS/EOS) into a :class:`Seq2SeqBatch`."""
    if len(sources) != len(targets) or not sources:
        raise ValueError(f"need as many targets as sources (at least one), got {len(sources)} and {len(targets)}")
    B = len(sources)
    src_lengths = np.array([len(s) for s in sources], np.int64)
    tgt_lengths = np.array([len(t) + 1 for t in targets], np.int64)
    if src_lengths.min() < 1:
        raise ValueError("every source sequence needs at least one token")
    S, T = int(src_lengths.max()), int(tgt_lengths.max())
    src = np.full((S, B), PAD, np.int64)
    tgt_in = np.full((T, B), PAD, np.int64)
    tgt_out = np.full((T, B), PAD, np.int64)
    for b, (s, t) in enumerate(zip(sources, targets)):
        src[: len(s), b] = s
        tgt_in[0, b] = BOS
        tgt_in[1 : len(t) + 1, b] = t
        tgt_out[: len(t), b] = t
        tgt_out[len(t), b] = EOS
    tgt_mask = np.arange(T)[:, None] < tgt_lengths[None, :]
    return Seq2SeqBatch(src, src_lengths, tgt_in, tgt_out, tgt_mask, tgt_lengths)


def _length(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_LENGTH:
        raise ValueError(f"{name} must be an integer between 1 and {MAX_LENGTH}, got {value!r}")
    return int(value)


def _check_args(batch_size, step, seed) -> None:
    for name, v, lo in (("batch_size", batch_size, 1), ("step", step, 0), ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")


class Seq2SeqTask:
    """A digit-sequence task: sources of ``min_length``..``max_length`` random digits, targets ``transform(source)``.

    Subclasses define :meth:`transform`. Source and target share :data:`VOCAB`.
    """

    kind = ""
    vocab = VOCAB
    vocab_size = len(VOCAB)
    pad, bos, eos = PAD, BOS, EOS

    def __init__(self, min_length: int = 3, max_length: int = 10) -> None:
        self.min_length = _length("min_length", min_length)
        self.max_length = _length("max_length", max_length)
        if self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) must be <= max_length ({self.max_length})")

    def transform(self, digits: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        """The target digits (0..9) for source digits (0..9)."""
        raise NotImplementedError

    def _draw(self, rng: np.random.Generator, batch_size: int, lo: int, hi: int) -> Seq2SeqBatch:
        lengths = rng.integers(lo, hi + 1, size=batch_size)
        sources = [rng.integers(0, 10, size=int(n)) for n in lengths]
        return make_batch([DIGIT0 + s for s in sources], [DIGIT0 + self.transform(s) for s in sources])

    def batch(self, batch_size: int, step: int, seed: int) -> Seq2SeqBatch:
        """Training batch ``step`` of a run seeded ``seed`` (lengths uniform in the task's range); deterministic."""
        _check_args(batch_size, step, seed)
        return self._draw(np.random.default_rng([TRAIN_TAG, seed, step]), batch_size, self.min_length, self.max_length)

    def eval_batch(self, batch_size: int, seed: int, min_length: int | None = None,
                   max_length: int | None = None) -> Seq2SeqBatch:
        """A held-out batch with lengths uniform in ``min_length..max_length`` (default: the task's range).

        The range may reach past the training lengths, to test generalisation. Fixed for each
        (seed, range) and drawn independently of every training step.
        """
        _check_args(batch_size, 0, seed)
        lo = self.min_length if min_length is None else _length("min_length", min_length)
        hi = self.max_length if max_length is None else _length("max_length", max_length)
        if lo > hi:
            raise ValueError(f"min_length ({lo}) must be <= max_length ({hi})")
        return self._draw(np.random.default_rng([EVAL_TAG, seed, lo, hi]), batch_size, lo, hi)

    def decode(self, tokens) -> str:
        """Tokens as text: digits as they are, ``<s>``/``</s>``/``<pad>`` spelled out; stops after EOS."""
        out = []
        for tok in np.asarray(tokens).ravel():
            tok = int(tok)
            out.append(VOCAB[tok] if 0 <= tok < len(VOCAB) else f"<{tok}?>")
            if tok == EOS:
                break
        return " ".join(out)

    def describe(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(min_length={self.min_length}, max_length={self.max_length})"


class ReversalTask(Seq2SeqTask):
    """Reverse a digit sequence: ``3 1 4`` -> ``4 1 3``."""

    kind = "reverse"

    def transform(self, digits: np.ndarray) -> np.ndarray:
        return digits[::-1].copy()

    def describe(self) -> str:
        return f"reverse: read {self.min_length}-{self.max_length} digits, write them in reverse order; seq2seq"


class SortTask(Seq2SeqTask):
    """Sort a digit sequence ascending: ``3 1 4`` -> ``1 3 4``."""

    kind = "sort"

    def transform(self, digits: np.ndarray) -> np.ndarray:
        return np.sort(digits)

    def describe(self) -> str:
        return f"sort: read {self.min_length}-{self.max_length} digits, write them in ascending order; seq2seq"
