"""Training a :class:`~rnnlab.layers.tree.TreeClassifier` on a treebank: minibatches of trees,
an optimizer from :mod:`rnnlab.train.optim`, accuracies per epoch."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.trees import Tree, Treebank, Vocabulary
from ..layers._params import check_positive_int
from ..layers.tree import TreeClassifier
from .losses import cross_entropy
from .optim import OPTIMIZER_CLASSES, check_optimizer_arguments
from .trainer import apply_update, check_loss

__all__ = ["EpochStats", "TreeTrainer", "train_tree_classifier"]

@dataclass(frozen=True)
class EpochStats:
    """One epoch of :class:`TreeTrainer`: mean minibatch loss, accuracies after the epoch, seconds, and
    what it trained with (a lab may change the rate and the batch size between runs)."""

    epoch: int
    loss: float
    train_accuracy: float
    test_accuracy: float | None
    seconds: float
    learning_rate: float
    batch_size: int


class TreeTrainer:
    """Minibatch training of a :class:`TreeClassifier` on a :class:`~rnnlab.data.trees.Treebank`.

    Each epoch shuffles the trees (seeded), steps the optimizer (``"sgd"``, ``"adagrad"``,
    ``"rmsprop"`` or ``"adam"`` from :mod:`rnnlab.train.optim`, with its default settings, as
    :class:`~rnnlab.train.seq2seq.Seq2SeqTrainer`'s) once per minibatch on the mean
    cross-entropy, with optional gradient-norm clipping, then measures accuracy. An update whose
    loss, gradient or new weights are not finite raises
    :class:`~rnnlab.train.trainer.TrainingDiverged` with nothing of it applied, as every trainer's.
    """

    def __init__(self, model: TreeClassifier, train: Treebank | Sequence[Tree], *, optimizer: str = "adam",
                 learning_rate: float = 0.01, batch_size: int = 16, clip_norm: float = 0.0, seed: int = 0) -> None:
        check_optimizer_arguments(optimizer, learning_rate, clip_norm)
        self.model = model
        self.trees = tuple(train.trees if isinstance(train, Treebank) else train)
        if not self.trees:
            raise ValueError("the training set has no trees")
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.clip_norm = float(clip_norm)
        self.optimizer = OPTIMIZER_CLASSES[optimizer](model.parameters(), learning_rate)
        self.rng = np.random.default_rng(seed)
        self.epochs_done = 0
        self.updates = 0  # minibatches applied, over all epochs: TrainingDiverged's step
        model.targets(model.batch(self.trees))  # fail now, naming the tree, on unknown words or labels

    def epoch(self, test: Treebank | Sequence[Tree] | None = None) -> EpochStats:
        """One pass over the shuffled training trees; accuracies measured after it. A
        TrainingDiverged leaves it part done: the minibatches before the one that diverged are
        applied, :attr:`epochs_done` is not counted up."""
        started = time.perf_counter()
        order = self.rng.permutation(len(self.trees))
        losses = []
        for start in range(0, len(order), self.batch_size):
            chunk = [self.trees[k] for k in order[start: start + self.batch_size]]
            batch, step, dtype = self.model.batch(chunk), self.updates + 1, self.model.dtype
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported as what it is
                logits, trace = self.model.forward(batch)
                result = cross_entropy(logits[None], self.model.targets(batch)[None], np.ones((1, len(batch)), bool))
            check_loss(result.loss, step, dtype)  # before backward, which refuses a NaN gradient of the logits
            grads = self.model.backward(trace, result.grad[0].astype(dtype))
            apply_update(self.optimizer, self.model.parameters(), grads, step, dtype, clip_norm=self.clip_norm)
            self.updates = step
            losses.append(result.loss * len(chunk))
        self.epochs_done += 1
        train_acc = self.model.evaluate(self.trees)[1]
        test_acc = None if test is None else self.model.evaluate(test)[1]
        return EpochStats(self.epochs_done, float(sum(losses) / len(self.trees)), train_acc, test_acc,
                          time.perf_counter() - started, float(self.optimizer.learning_rate), self.batch_size)

    def fit(self, epochs: int, test: Treebank | Sequence[Tree] | None = None,
            callback: Any = None) -> list[EpochStats]:
        """Run ``epochs`` epochs; ``callback(stats)`` after each (return True to stop early)."""
        history = []
        for _ in range(check_positive_int("epochs", epochs)):
            stats = self.epoch(test)
            history.append(stats)
            if callback is not None and callback(stats):
                break
        return history


def train_tree_classifier(train: Treebank, test: Treebank | None = None, *, hidden_size: int = 16,
                          epochs: int = 30, optimizer: str = "adam", learning_rate: float = 0.01,
                          batch_size: int = 16, dtype: str = "float32", seed: int = 0,
                          unk: bool = False) -> tuple[TreeClassifier, list[EpochStats]]:
    """Build a vocabulary and a classifier from ``train`` and train it; returns (model, history).

    With ``unk=True`` the vocabulary has ``<unk>``, so test trees may hold words unseen in training.
    """
    vocab = Vocabulary.from_trees(train.trees, unk=unk)
    model = TreeClassifier(vocab, train.labels, hidden_size, dtype=dtype, seed=seed)
    trainer = TreeTrainer(model, train, optimizer=optimizer, learning_rate=learning_rate,
                          batch_size=batch_size, seed=seed)
    return model, trainer.fit(epochs, test)
