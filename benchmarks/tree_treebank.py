"""A recursive net against bags of words on the shipped sentiment treebank, where structure decides.

    python benchmarks/tree_treebank.py                       # seeds 0 1 2, H = 16, 30 epochs
    python benchmarks/tree_treebank.py --seeds 0 --epochs 60 --hidden 8 --json

Trains :class:`rnnlab.layers.tree.TreeClassifier` (h = tanh(W [h_left; h_right] + b), softmax
on the root; Adam, lr 0.01, batches of 16) on the 450 training trees of
``rnnlab/sample_data/treebank.txt`` and reports train/test accuracy, the first epoch at which the
test accuracy reached its best, and the training time (the first seed's time includes numba
compilation or loading from the disk cache; the warm-up below takes that out).

Baselines, on the same split:

- *bag of words*: the mean of the leaves' embeddings, softmax readout (the same sizes, optimizer,
  learning rate and epochs), trained in NumPy here; and the same with one tanh layer between the
  mean and the readout (a nonlinear bag of words);
- *bag-of-words ceiling*: the best accuracy ANY function of the multiset of words can reach on
  the whole treebank (each distinct bag of words answered with its majority label), an upper
  bound for every order-blind model; and how many trees share their bag with a tree of the
  other label.

Prints a markdown table (or ``--json``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict

import numpy as np

from rnnlab.data.trees import Treebank, Vocabulary, load_sample_treebank
from rnnlab.layers.tree import TreeClassifier
from rnnlab.train.trees import TreeTrainer
from rnnlab.train.losses import cross_entropy
from rnnlab.train.optim import Adam


def train_recursive(train: Treebank, test: Treebank, hidden: int, epochs: int, seed: int) -> dict:
    vocab = Vocabulary.from_trees(train.trees)
    model = TreeClassifier(vocab, train.labels, hidden, seed=seed)
    trainer = TreeTrainer(model, train, optimizer="adam", learning_rate=0.01, batch_size=16, seed=seed)
    started = time.perf_counter()
    history = trainer.fit(epochs, test)
    seconds = time.perf_counter() - started
    best = max(s.test_accuracy for s in history)
    return {"model": "recursive net", "seed": seed, "train_accuracy": history[-1].train_accuracy,
            "test_accuracy": history[-1].test_accuracy, "best_epoch": next(
                s.epoch for s in history if s.test_accuracy == best), "seconds": seconds}


def train_bag_of_words(train: Treebank, test: Treebank, hidden: int, epochs: int, seed: int,
                       mlp: bool = False) -> dict:
    """Mean of the leaves' embeddings v -> softmax readout (``mlp``: through one tanh layer,
    z = tanh(W_1 v + b_1), first); Adam on the mean cross-entropy."""
    vocab = Vocabulary.from_trees(train.trees)
    rng = np.random.default_rng(seed)
    C = len(train.labels)

    def counts(bank: Treebank) -> np.ndarray:  # (n, V): how often each word occurs, / length
        m = np.zeros((len(bank), len(vocab)))
        for k, t in enumerate(bank.trees):
            for w in t.tokens:
                m[k, vocab.index(w)] += 1.0 / len(t.tokens)
        return m

    x_train, x_test = counts(train), counts(test)
    y_train, y_test = train.targets, test.targets
    bound = 1.0 / np.sqrt(hidden)
    params = {"E": rng.standard_normal((len(vocab), hidden)), "W": rng.uniform(-bound, bound, (C, hidden)),
              "b": rng.uniform(-bound, bound, C)}
    if mlp:
        params["W1"] = rng.uniform(-bound, bound, (hidden, hidden))
        params["b1"] = rng.uniform(-bound, bound, hidden)
    opt = Adam(params, 0.01)

    def features(x):  # (n, H): what the readout sees, and the mean embedding
        v = x @ params["E"]
        return (np.tanh(v @ params["W1"].T + params["b1"]) if mlp else v), v

    def accuracy(x, y):
        z, _ = features(x)
        return float(((z @ params["W"].T + params["b"]).argmax(axis=1) == y).mean())

    started = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(y_train))
        for s in range(0, len(order), 16):
            idx = order[s: s + 16]
            x, y = x_train[idx], y_train[idx]
            z, v = features(x)
            result = cross_entropy((z @ params["W"].T + params["b"])[None], y[None], np.ones((1, len(y)), bool))
            g = result.grad[0]
            grads = {"W": g.T @ z, "b": g.sum(axis=0)}
            dz = g @ params["W"]
            if mlp:
                da = dz * (1.0 - z * z)
                grads["W1"], grads["b1"] = da.T @ v, da.sum(axis=0)
                dz = da @ params["W1"]
            grads["E"] = x.T @ dz
            opt.step(params, grads)
    return {"model": "bag of words" + (" + tanh layer" if mlp else ""), "seed": seed,
            "train_accuracy": accuracy(x_train, y_train), "test_accuracy": accuracy(x_test, y_test),
            "best_epoch": None, "seconds": time.perf_counter() - started}


def bag_of_words_ceiling(bank: Treebank) -> tuple[float, int]:
    """(accuracy of the best possible function of the word multiset on ``bank``: each bag's majority
    label; how many trees share their bag with a tree of the other label)."""
    by_bag: dict[tuple[str, ...], Counter] = defaultdict(Counter)
    for t in bank.trees:
        by_bag[tuple(sorted(t.tokens))][t.label] += 1
    best = sum(c.most_common(1)[0][1] for c in by_bag.values()) / len(bank)
    return best, sum(sum(c.values()) for c in by_bag.values() if len(c) > 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    train, test = load_sample_treebank()
    nodes = sum(len(t) for t in train.trees)
    # warm-up: compile the kernels (or load them from the cache) outside the timings
    train_recursive(train, train[:16], args.hidden, 1, 0)
    rows = []
    for seed in args.seeds:
        rows.append(train_recursive(train, test, args.hidden, args.epochs, seed))
        rows.append(train_bag_of_words(train, test, args.hidden, args.epochs, seed))
        rows.append(train_bag_of_words(train, test, args.hidden, args.epochs, seed, mlp=True))
    everything = Treebank(train.trees + test.trees, train.labels)
    ceiling, ambiguous = bag_of_words_ceiling(everything)
    if args.json:
        print(json.dumps({"train_trees": len(train), "test_trees": len(test), "train_nodes": nodes,
                          "hidden": args.hidden, "epochs": args.epochs, "bag_of_words_ceiling": ceiling,
                          "trees_sharing_a_bag_with_the_other_label": ambiguous,
                          "runs": rows}, indent=2))
        return
    print(f"{len(train)} training trees ({nodes} nodes), {len(test)} test trees; H = {args.hidden}, "
          f"{args.epochs} epochs, Adam lr 0.01, batches of 16\n")
    print("| model | seed | train acc | test acc | best test acc first at epoch | seconds |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        best = "" if r["best_epoch"] is None else str(r["best_epoch"])
        print(f"| {r['model']} | {r['seed']} | {r['train_accuracy']:.3f} | {r['test_accuracy']:.3f} | "
              f"{best} | {r['seconds']:.2f} |")
    print(f"\nBag-of-words ceiling: no function of the word multiset can classify more than "
          f"{ceiling:.3f} of all {len(everything)} trees; {ambiguous} trees share their bag of words "
          "with a tree of the other label.")


if __name__ == "__main__":
    main()
