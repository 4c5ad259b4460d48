"""Training and scoring a :class:`~rnnlab.layers.seq2seq.Seq2Seq`: teacher forcing with a masked
cross-entropy, greedy-decoding accuracy."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import kernels
from ..layers._params import check_positive_int
from ..layers.seq2seq import Seq2Seq
from .losses import cross_entropy
from .optim import OPTIMIZER_CLASSES, check_optimizer_arguments
from .trainer import apply_update, check_loss

__all__ = ["Seq2SeqScore", "Seq2SeqStep", "Seq2SeqTrainer", "evaluate_greedy"]

@dataclass(frozen=True)
class Seq2SeqScore:
    """Greedy-decoding accuracy on a batch.

    ``sequence_accuracy``: fraction of sequences whose every target token (EOS included) is right;
    ``token_accuracy``: fraction of target tokens (EOS included) right at their position.
    """

    sequence_accuracy: float
    token_accuracy: float
    count: int  # sequences scored


def evaluate_greedy(model: Seq2Seq, batch: Any, bos: int, eos: int, max_len: int | None = None,
                    exclude: Sequence[int] = ()) -> Seq2SeqScore:
    """Decode ``batch.src`` greedily and score it against ``batch.tgt_out`` where ``batch.tgt_mask``.

    ``batch`` has ``src`` (S, B), ``src_lengths`` (B,), ``tgt_out`` (T, B) and ``tgt_mask`` (T, B)
    (a :class:`rnnlab.data.seq2seq.Seq2SeqBatch`). ``max_len`` defaults to T: a model that has
    not produced EOS by then is wrong anyway. ``exclude``: tokens never written (see
    :meth:`Seq2Seq.greedy_decode`).
    """
    tgt, tmask = np.asarray(batch.tgt_out), np.asarray(batch.tgt_mask, bool)
    T, B = tgt.shape
    tokens, _ = model.greedy_decode(batch.src, batch.src_lengths, max_len or T, bos, eos, pad=eos, exclude=exclude)
    got = np.full((T, B), -1, np.int64)  # steps the decoder never reached count as wrong
    n = min(T, tokens.shape[0])
    got[:n] = tokens[:n]
    right = (got == tgt) | ~tmask
    return Seq2SeqScore(float(right.all(axis=0).mean()),
                        float(((got == tgt) & tmask).sum() / max(int(tmask.sum()), 1)), B)


@dataclass(frozen=True)
class Seq2SeqStep:
    """One training step: the teacher-forced loss (nats per target token) and token accuracy, and
    what it trained with (a lab may change the rate and the batch size between runs)."""

    step: int
    loss: float
    accuracy: float
    grad_norm: float  # before clipping
    clipped: bool
    learning_rate: float
    batch_size: int


class Seq2SeqTrainer:
    """Trains a :class:`Seq2Seq` on a task with teacher forcing and masked cross-entropy.

    ``task`` provides ``vocab_size``, ``bos``, ``eos`` and ``batch(batch_size, step, seed)``
    returning a batch with ``src``, ``src_lengths``, ``tgt_in``, ``tgt_out``, ``tgt_mask`` (e.g.
    :class:`rnnlab.data.seq2seq.ReversalTask`). Batch ``k`` is a pure function of ``(seed, k)``:
    the same seed gives the same run. Optimizer: ``"adam"``, ``"sgd"``, ``"rmsprop"`` or
    ``"adagrad"`` with its default settings; ``clip_norm`` rescales the global gradient norm (0: off).
    """

    def __init__(self, model: Seq2Seq, task: Any, *, batch_size: int = 64, learning_rate: float = 5e-3,
                 clip_norm: float = 1.0, optimizer: str = "adam", seed: int = 0) -> None:
        vocab = int(task.vocab_size)
        if model.vocab_in != vocab or model.vocab_out != vocab:
            raise ValueError(f"model vocabularies (vocab_in {model.vocab_in}, vocab_out {model.vocab_out}) do not "
                             f"match the task's {vocab} tokens")
        check_optimizer_arguments(optimizer, learning_rate, clip_norm)
        self.model, self.task = model, task
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.clip_norm = float(clip_norm)
        self.seed = seed
        self.optimizer = OPTIMIZER_CLASSES[optimizer](model.parameters(), float(learning_rate))
        self.step = 0
        self.elapsed = 0.0

    def train_step(self) -> Seq2SeqStep:
        """One update on batch number ``self.step``; raises TrainingDiverged (weights and optimizer
        untouched) where the loss, a gradient or an updated weight leaves the model's dtype (NaN/Inf)."""
        started = time.perf_counter()
        batch = self.task.batch(self.batch_size, self.step, self.seed)
        # One BLAS thread for the whole step, not only inside the kernels: the readout products and
        # the gradient norm's np.dot otherwise wake OpenBLAS's spinning threads (ms per call on 2 cores).
        with kernels.blas_single_threaded():
            logits, trace = self.model.forward(batch.src, batch.src_lengths, batch.tgt_in)
            result = cross_entropy(logits, batch.tgt_out, batch.tgt_mask)
            check_loss(result.loss, self.step + 1, self.model.dtype)
            grads = self.model.backward(trace, result.grad)
            norm, clipped = apply_update(self.optimizer, self.model.parameters(), grads, self.step + 1,
                                         self.model.dtype, clip_norm=self.clip_norm)
        self.step += 1
        self.elapsed += time.perf_counter() - started
        return Seq2SeqStep(self.step, result.loss, float(result.accuracy or 0.0), norm, clipped,
                           float(self.optimizer.learning_rate), self.batch_size)

    def train(self, steps: int, callback: Callable[[Seq2SeqStep], None] | None = None) -> list[Seq2SeqStep]:
        """Run ``steps`` more updates; ``callback(record)`` after each. Returns the records."""
        records = []
        for _ in range(check_positive_int("steps", steps)):
            record = self.train_step()
            records.append(record)
            if callback is not None:
                callback(record)
        return records

    def evaluate(self, batch: Any, max_len: int | None = None) -> Seq2SeqScore:
        """Greedy-decoding accuracy on ``batch`` (see :func:`evaluate_greedy`); the decoder never
        writes the task's BOS or PAD."""
        return evaluate_greedy(self.model, batch, self.task.bos, self.task.eos, max_len,
                               exclude=(self.task.pad, self.task.bos))
