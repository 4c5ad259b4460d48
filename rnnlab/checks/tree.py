"""Finite-difference gradient checks of the recursive (tree) networks, in float64.

``recursive_net``: :class:`~rnnlab.layers.tree.RecursiveNet` on a batch of differently shaped
trees (a one-word tree, left- and right-branching ones, a repeated word), loss
``L = sum(roots * d_root) + sum(h * d_nodes)`` with random cotangents on the roots and on every
node. ``tree_classifier``: :class:`~rnnlab.layers.tree.TreeClassifier`, loss the mean softmax
cross-entropy of the labels. Every element of every parameter is perturbed.
"""

from __future__ import annotations

import time

import numpy as np

from ..gradcheck import CheckResult, finite_difference_check, register

#: The trees both checks run on: several shapes in one batch, "the" and "cat" used more than once.
CHECK_TREES = ("((the cat) (sat down))", "cat", "(the (cat (on (the mat))))", "(((big cat) sat) down)")


def _batch(labels: tuple[str, ...] | None = None):
    from ..data.trees import TreeBatch, Vocabulary, parse_tree

    trees = [parse_tree(s, label=None if labels is None else labels[k]) for k, s in enumerate(CHECK_TREES)]
    vocab = Vocabulary.from_trees(trees)
    return trees, vocab, TreeBatch.from_trees(trees, vocab)


@register("recursive_net")
def check_recursive_net(hidden_size: int = 3, seed: int = 0) -> CheckResult:
    """RecursiveNet: embedding, composition weight and bias, gradients from roots and every node."""
    from ..layers.tree import RecursiveNet

    started = time.perf_counter()
    _, vocab, batch = _batch()
    net = RecursiveNet(len(vocab), hidden_size, dtype="float64", seed=seed)
    rng = np.random.default_rng(10_000 + seed)
    d_root = rng.standard_normal((len(batch), hidden_size))
    d_nodes = rng.standard_normal((batch.num_nodes, hidden_size))
    _, trace = net.forward(batch)
    grads = net.backward(trace, d_root, d_nodes)

    def loss() -> float:
        roots, tr = net.forward(batch)
        return float(np.sum(roots * d_root) + np.sum(tr.h * d_nodes))

    detail = (f"RecursiveNet V={len(vocab)} H={hidden_size} trees={len(batch)} nodes={batch.num_nodes} "
              f"seed={seed}")
    return finite_difference_check("recursive_net", loss, net.parameters(), grads, detail=detail,
                                   started=started)


@register("tree_classifier")
def check_tree_classifier(hidden_size: int = 3, seed: int = 0) -> CheckResult:
    """TreeClassifier: every parameter, through the softmax cross-entropy of the labels."""
    from ..layers.tree import TreeClassifier

    started = time.perf_counter()
    labels = ("a", "b", "c")
    trees, vocab, batch = _batch(("a", "c", "b", "c"))
    model = TreeClassifier(vocab, labels, hidden_size, dtype="float64", seed=seed)
    _, _, grads, _ = model.loss(batch)

    def loss() -> float:
        return model.loss(batch)[0]

    detail = f"TreeClassifier V={len(vocab)} H={hidden_size} C={len(labels)} trees={len(batch)} seed={seed}"
    return finite_difference_check("tree_classifier", loss, model.parameters(), grads, detail=detail,
                                   started=started)
