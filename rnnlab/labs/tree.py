"""The ``treebank`` lab: a recursive network reads a sentence as a binary tree, node by node.

A :class:`~rnnlab.layers.tree.TreeClassifier` composes every node of a parse tree from its two
children with one shared layer and classifies the sentence from the root::

    leaf i:      h_i = E[word_i]                          (embedding row, (H,))
    internal i:  h_i = tanh(W [h_left; h_right] + b)      W (H, 2H), b (H,)
    root r:      p = softmax(W_o h_r + b_o)               W_o (C, H), b_o (C,)

Nodes are numbered in post-order (children before parents, the root last): the order the net
computes them in. :class:`TreeLab` holds the model, the shipped treebank
(``rnnlab/sample_data/treebank.txt``: 450 training and 150 test trees, labels ``neg``/``pos``),
the tree on the bench and two cursors:

- the forward cursor ``cursor`` (0..n): nodes ``0 .. cursor-1`` are computed; the node under the
  cursor is ``cursor - 1``. The prediction needs the root (``cursor == n``).
- the backward cursor ``back_cursor`` (None before backward, and again once the forward cursor
  leaves the root; then n..0): backpropagation through
  structure runs from the root down, in reverse post-order, so that every node's dL/dh is complete
  (its one parent has passed it down) when it arrives. Nodes ``back_cursor .. n-1`` have received
  theirs; ``back_cursor`` itself is the node reached last.

The preset (:data:`DEFAULTS`) shows what a recursive net is for: in the shipped treebank, labels
follow the structure, not the words — ``not``/``never`` flip the polarity of the phrase they
modify, ``((X but) Y)`` takes Y's — so ``((good but) dull)`` is neg and ``((dull but) good)`` is
pos, the same bag of words. With H = 16, Adam at 0.01, batches of 16, the net reaches 100% test
accuracy within about 10 epochs where no bag-of-words model can pass ~70%
(``benchmarks/tree_treebank.py``). The bench starts on test tree 4, ``(((not (truly clumsy)) but)
lovely)``: a negation inside a contrast; after training, stepping up the tree shows each phrase's
polarity (the readout applied to every node, :meth:`TreeLab.node_probabilities`) flip at ``not``
and be overruled at ``but``.

Like :class:`~rnnlab.lab.Lab`, :meth:`TreeLab.train` runs in the calling thread (the TUI calls
it from a worker), holds :attr:`TreeLab.lock` for each epoch, and stops on
:meth:`TreeLab.stop_training` or ``should_stop()``. This module never imports textual or rich.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._cursor import StepCursor
from .._locks import HandoffLock, TrainingControl
from ..data.trees import SAMPLE_TREEBANK, Tree, Vocabulary, load_sample_treebank, parse_tree
from ..errors import UserError
from ..layers.tree import TreeClassifier, TreeTrace
from ..spec import SEED_MAX
from ..train.rundir import atomic_save_npz
from ..train.trainer import TrainingDiverged
from ..train.trees import EpochStats, TreeTrainer
from . import export_target, unknown_name
from ._options import Spell, check_int, check_number, interval

__all__ = ["TreeLab", "NodeView", "DEFAULTS", "IN_PLACE_OPTIONS", "LIMITS", "LEARNING_RATE_MAX"]

#: The preset: what ``TreeLab.open()`` builds without options (see the module docstring).
DEFAULTS: dict[str, Any] = {
    "hidden_size": 16,       # units per node vector
    "learning_rate": 0.01,   # Adam
    "epochs": 30,            # epochs per training run (t in the TUI, rnnlab tree --epochs)
    "seed": 0,               # weights and the order of the minibatches
    "batch_size": 16,        # trees per Adam step
    "tree": 4,               # the bench: a test tree's index, or a typed tree ("pos ((dull but) good)")
}

#: Allowed ranges of the integer options (inclusive).
LIMITS: dict[str, tuple[int, int]] = {
    "hidden_size": (1, 256),
    "epochs": (1, 10_000),
    "seed": (0, SEED_MAX),
    "batch_size": (1, 1024),
}

LEARNING_RATE_MAX = 10.0

#: The options of how later runs train, not of the model: :meth:`TreeLab.reconfigure` applies a change
#: of only these in place (the weights, trained epochs, history and Adam's moments stay); :meth:`TreeLab.train`
#: reads ``epochs`` when a run starts. ``learning_rate`` and ``batch_size`` go to the trainer (never mid-run:
#: reconfigure refuses while training): Adam reads its rate at every update, as torch's does when a param
#: group's lr is set, and each epoch shuffles the trees (seeded) and cuts them into batches of the size then.
IN_PLACE_OPTIONS = frozenset({"learning_rate", "epochs", "batch_size"})

_ATOM = re.compile(r"[^\s()]+")


@dataclass(frozen=True)
class NodeView:
    """One node of the bench tree, as the lab shows it.

    ``h`` ``(H,)`` its vector; ``probabilities`` ``(C,)`` the readout applied to it as if it were
    the root (what the classifier makes of the phrase alone); ``dh`` ``(H,)`` dL/dh once the
    backward pass has reached it (None before). For an internal node, ``child_inputs`` holds
    ``(||W_L h_left||, ||W_R h_right||)``: how strongly each child drives the composition
    (``W = [W_L W_R]``); None for a leaf.
    """

    index: int
    children: tuple[int, int] | None
    word: str | None
    phrase: str
    h: np.ndarray
    probabilities: np.ndarray
    dh: np.ndarray | None
    child_inputs: tuple[float, float] | None

    @property
    def equation(self) -> str:
        """How the node is computed, with its own indices: ``h_3 = tanh(W [h_1; h_2] + b)``."""
        if self.children is None:
            return f"h_{self.index} = E[{self.word}]"
        left, right = self.children
        return f"h_{self.index} = tanh(W [h_{left}; h_{right}] + b)"


# ---------------------------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------------------------

def option_range(name: str) -> str | None:
    """The values option ``name`` takes, as its errors (and the CLI's help) write them: ``[1, 256]``,
    ``(0, 10]``; None for the bench tree."""
    if name in LIMITS:
        return interval(*LIMITS[name])
    return interval(0, LEARNING_RATE_MAX, low_open=True) if name == "learning_rate" else None


def _check_options(options: dict[str, Any] | None, spell: Spell = str) -> dict[str, Any]:
    """The defaults updated with ``options``, every value checked (UserError naming the option as
    ``spell`` writes it: the CLI, as its flag)."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise UserError(f"options must be a dict of option names to values, got {type(options).__name__}")
    unknown = [k for k in options if k not in DEFAULTS]
    if unknown:
        raise UserError(unknown_name("option", unknown[0], list(DEFAULTS)))
    merged = {**DEFAULTS, **options}
    checked: dict[str, Any] = {name: check_int(spell(name), merged[name], *LIMITS[name]) for name in LIMITS}
    checked["learning_rate"] = check_number(spell("learning_rate"), merged["learning_rate"], 0, LEARNING_RATE_MAX,
                                            low_open=True)
    tree = merged["tree"]
    if isinstance(tree, bool) or not isinstance(tree, (int, np.integer, str)):
        raise UserError(f"{spell('tree')} must be a test tree's index or a tree's s-expression, got {tree!r}")
    checked["tree"] = int(tree) if not isinstance(tree, str) else tree
    return {name: checked[name] for name in DEFAULTS}


# ---------------------------------------------------------------------------------------------
# the lab
# ---------------------------------------------------------------------------------------------

class TreeLab(StepCursor, TrainingControl):
    """A recursive net on the shipped sentiment treebank; see the module docstring.

    Build it with :meth:`open` (options checked, the kernels warmed up). Every user action is a
    method; views read the attributes and :meth:`node`, :meth:`prediction`, :meth:`summary`.
    """

    name = "treebank"

    def __init__(self, options: dict[str, Any] | None = None, spell: Spell = str) -> None:
        self.options = _check_options(options, spell)
        self.train_bank, self.test_bank = load_sample_treebank()
        self.labels: tuple[str, ...] = self.train_bank.labels
        # the shipped treebank has a closed vocabulary: a typed word outside it is refused by name
        self.vocab = Vocabulary.from_trees(self.train_bank.trees)
        opts = self.options
        self.model = TreeClassifier(self.vocab, self.labels, opts["hidden_size"], seed=opts["seed"])
        self.trainer = TreeTrainer(self.model, self.train_bank, optimizer="adam",
                                   learning_rate=opts["learning_rate"], batch_size=opts["batch_size"],
                                   seed=opts["seed"])
        self.history: list[EpochStats] = []
        # training in a worker thread: every epoch and every read of the weights holds the lock
        self.lock = HandoffLock()
        self._init_training_control()
        # the bench
        self.tree: Tree = self.test_bank.trees[0]
        self.tree_index: int | None = 0  # which test tree; None for a typed one
        self.trace: TreeTrace | None = None
        self.cursor = 0
        self.back_cursor: int | None = None
        self.loss: float | None = None  # of the bench tree, once backward ran
        tree = opts["tree"]
        if isinstance(tree, str):
            try:
                self.type_tree(tree)
            except UserError as exc:
                raise UserError(f"tree: {exc}") from None
        else:
            self.select_tree(tree)

    @classmethod
    def open(cls, options: dict[str, Any] | None = None, spell: Spell = str) -> TreeLab:
        """The lab with ``options`` over :data:`DEFAULTS` (UserError naming a bad one as ``spell``
        writes it). Runs one forward and backward pass so that the kernels are compiled (or loaded)
        before the first key."""
        lab = cls(options, spell)
        with lab.lock:  # compiles (or loads) the backward kernels; the bench is left as it is
            lab.model.loss([lab.tree], np.array([lab.target()[0]]))
        return lab

    def reconfigure(self, options: dict[str, Any]) -> bool:
        """New options (merged over the current ones). A change of only :data:`IN_PLACE_OPTIONS`
        (``{"epochs": 100}``, ``{"learning_rate": 0.001}``) applies to this lab as it is: the model,
        its trained epochs and the optimizer's state stay, and the next run trains with the new values.
        Any other builds a fresh, untrained model; the bench tree is kept unless ``options`` names
        another. Nothing changes when an option is refused. Returns whether the model was rebuilt."""
        if self.training:
            raise UserError("stop training before changing the options")
        if not self.rebuilds(options):  # checked there: a refused option raises before anything changes
            checked = self.check_options(options)
            self.trainer.optimizer.learning_rate = checked["learning_rate"]
            self.trainer.batch_size = checked["batch_size"]
            self.options = {**self.options, **{name: checked[name] for name in options}}
            return False
        fresh = TreeLab.open({**self.options, **options})  # validates everything before this lab changes
        self.__dict__.update(fresh.__dict__)
        return True

    def rebuilds(self, options: dict[str, Any]) -> bool:
        """Whether :meth:`reconfigure` with ``options`` would build a fresh model (dropping the
        trained epochs): they change an option outside :data:`IN_PLACE_OPTIONS`. Checked as
        :meth:`check_options` is (UserError naming a bad value)."""
        checked = self.check_options(options)
        return any(checked[name] != self.options[name] for name in options if name not in IN_PLACE_OPTIONS)

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The options :meth:`reconfigure` would use, checked (UserError naming a bad one) without
        building a model: a view can ask before it drops a trained one."""
        return _check_options({**{k: v for k, v in self.options.items() if k != "tree"}, **options})

    # ------------------------------------------------------------------ facts
    @property
    def num_nodes(self) -> int:
        """n: the bench tree's node count."""
        return len(self.tree)

    @property
    def hidden_size(self) -> int:
        return self.model.hidden_size

    @property
    def epochs_done(self) -> int:
        return self.trainer.epochs_done

    @property
    def node_index(self) -> int | None:
        """The node under the forward cursor (the last computed), None before the first."""
        return self.cursor - 1 if self.cursor > 0 else None

    @property
    def bench_name(self) -> str:
        """``"test tree 4 of 150"`` or ``"typed tree"``."""
        if self.tree_index is None:
            return "typed tree"
        return f"test tree {self.tree_index} of {len(self.test_bank)}"

    # ------------------------------------------------------------------ the tree on the bench
    def parse_tree_text(self, text: str) -> Tree:
        """A typed tree: an s-expression, optionally after its label (``pos ((dull but) good)``).

        UserError, one line, for a malformed tree (naming the problem and its 1-based column), a
        label that is not a class, or a word the model does not know (naming it and its column).
        """
        if not isinstance(text, str) or not text.strip():
            raise UserError("type a tree, e.g. ((good but) dull), optionally after its label: pos ((dull but) good)")
        stripped = text.strip()
        label = None
        body_start = len(text) - len(text.lstrip())
        first = stripped.split(None, 1)
        if len(first) == 2 and "(" not in first[0] and ")" not in first[0]:
            label = first[0]
            if label not in self.labels:
                raise UserError(f"{label!r} is not a label ({', '.join(self.labels)}); a phrase of several "
                                f"words needs parentheses, e.g. (very good)")
            body_start = text.index(first[1], body_start + len(label))
        tree = parse_tree(text[body_start:], label=label, column_offset=body_start)
        for match in _ATOM.finditer(text, body_start):
            if match.group() not in self.vocab:
                raise UserError(unknown_name("word", match.group(), self.vocab.words,  # the help (?) lists them
                                             f" at column {match.start() + 1}"))
        return tree

    def type_tree(self, text: str) -> Tree:
        """Put a typed tree on the bench (see :meth:`parse_tree_text`); nothing changes on error."""
        tree = self.parse_tree_text(text)
        self._set_tree(tree, None)
        return tree

    def select_tree(self, k: int) -> Tree:
        """Put test tree ``k`` on the bench."""
        n = len(self.test_bank)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < n:
            raise UserError(f"tree must be a test tree's index from 0 to {n - 1}, got {k!r}")
        self._set_tree(self.test_bank.trees[int(k)], int(k))
        return self.tree

    def next_tree(self) -> Tree:
        """The next test tree (the first after a typed one), wrapping around."""
        k = 0 if self.tree_index is None else (self.tree_index + 1) % len(self.test_bank)
        return self.select_tree(k)

    def previous_tree(self) -> Tree:
        """The previous test tree (the last after a typed one), wrapping around."""
        n = len(self.test_bank)
        k = n - 1 if self.tree_index is None else (self.tree_index - 1) % n
        return self.select_tree(k)

    def _set_tree(self, tree: Tree, index: int | None) -> None:
        self.tree, self.tree_index = tree, index
        # the tree option follows the bench (a reconfigured lab keeps it, an export says it)
        self.options["tree"] = index if index is not None else f"{tree.label or ''} {tree.to_sexpr()}".strip()
        self.cursor = 0
        self.back_cursor = None
        self.loss = None
        self.refresh()

    def refresh(self) -> None:
        """Recompute the bench tree with the current weights (after training steps): the forward
        pass, and the backward pass too if it had run; the cursors stay."""
        with self.lock:
            _, trace = self.model.forward([self.tree])
            self.trace = trace
            if self.back_cursor is not None:
                self._backward()

    # ------------------------------------------------------------------ forward, node by node
    # step_forward (one more node, post-order) and step_back: StepCursor's, over 0..n nodes
    @property
    def cursor_end(self) -> int:
        return self.num_nodes

    def jump_first_leaf(self) -> int:
        """The cursor on node 0, the leftmost leaf (the first node computed)."""
        return self._set_cursor(1)

    def jump_root(self) -> int:
        """Every node computed: the cursor on the root."""
        return self.jump_end()

    def move_to(self, node: int) -> int:
        """The cursor on ``node`` (clamped to 0..n-1): nodes 0..node computed."""
        return self._set_cursor(max(0, min(int(node), self.num_nodes - 1)) + 1)

    def _set_cursor(self, value: int) -> int:
        """Moves the forward cursor; taking the root back drops the backward pass, which needs the
        root's loss (``b`` runs it again, completing the forward pass first)."""
        cursor = super()._set_cursor(value)
        if cursor < self.num_nodes:
            self.back_cursor, self.loss = None, None
        return cursor

    # ------------------------------------------------------------------ backward through structure
    def target(self) -> tuple[int, str]:
        """``(class id, why)`` the bench tree's loss is taken against: its label, or for an
        unlabelled typed tree the predicted class."""
        if self.tree.label is not None:
            return self.labels.index(self.tree.label), "label"
        return int(np.argmax(self.trace.outputs[0])), "prediction"

    def _backward(self) -> None:
        target, _ = self.target()
        loss, _, _, trace = self.model.loss([self.tree], np.array([target]))
        self.trace, self.loss = trace, float(loss)

    def run_backward(self) -> None:
        """Backpropagation through structure of the bench tree's cross-entropy: every node's
        dL/dh (``trace.dh``). The loss needs the root, so the forward pass completes first; the
        backward cursor waits at n (no node reached yet)."""
        with self.lock:
            self._backward()
        self.cursor = self.num_nodes
        self.back_cursor = self.num_nodes

    def backward_step(self) -> int:
        """dL/dh arrives at one more node, from the root down (reverse post-order); runs the
        backward pass first if needed. Returns the backward cursor."""
        if self.back_cursor is None:
            self.run_backward()
        self.back_cursor = max(self.back_cursor - 1, 0)
        return self.back_cursor

    def backward_all(self) -> int:
        """dL/dh at every node."""
        if self.back_cursor is None:
            self.run_backward()
        self.back_cursor = 0
        return self.back_cursor

    def gradient_reached(self, i: int) -> bool:
        """Whether node ``i``'s dL/dh has arrived."""
        return self.back_cursor is not None and i >= self.back_cursor

    # ------------------------------------------------------------------ what the views read
    def vectors(self) -> np.ndarray:
        """``(n, H)`` float64: every node's vector, post-order (also the not yet revealed ones)."""
        return np.asarray(self.trace.vectors(0), dtype=np.float64)

    def gradients(self) -> np.ndarray | None:
        """``(n, H)`` float64 dL/dh of every node after backward (None before)."""
        if self.back_cursor is None or not self.trace.has_gradients:
            return None
        return np.asarray(self.trace.gradients(0), dtype=np.float64)

    def node_probabilities(self) -> np.ndarray:
        """``(n, C)``: the readout applied to every node as if it were the root, softmax(W_o h_i + b_o):
        what the classifier makes of each phrase alone. The last row is the prediction."""
        params = self.trace._params  # the weights this trace was computed with
        z = self.vectors() @ params["readout.weight"].T.astype(np.float64) + params["readout.bias"]
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def probabilities(self) -> np.ndarray:
        """``(C,)``: the class probabilities of the bench tree (softmax of its logits)."""
        return self.node_probabilities()[-1]

    def prediction(self) -> str:
        """The most likely label of the bench tree."""
        return self.labels[int(np.argmax(self.probabilities()))]

    def classify(self, trees: Sequence[Tree]) -> np.ndarray:
        """``(len(trees), C)``: the class probabilities of each tree (e.g. from :meth:`parse_tree_text`)
        with the current weights; the bench is left alone."""
        with self.lock:
            logits, _ = self.model.forward(list(trees))
        z = np.asarray(logits, np.float64)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

    def node(self, i: int) -> NodeView:
        """Node ``i`` (post-order) of the bench tree: structure, vector, phrase polarity, gradient."""
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self.num_nodes:
            raise UserError(f"node must be from 0 to {self.num_nodes - 1}, got {i!r}")
        i = int(i)
        info = self.trace.node(0, i)
        child_inputs = None
        if info.children is not None:
            H = self.hidden_size
            W = self.trace._params["compose.weight"].astype(np.float64)
            h = self.vectors()
            left, right = info.children
            child_inputs = (float(np.linalg.norm(W[:, :H] @ h[left])), float(np.linalg.norm(W[:, H:] @ h[right])))
        dh = np.asarray(info.dh, np.float64) if self.gradient_reached(i) and info.dh is not None else None
        return NodeView(i, info.children, info.word, info.phrase, np.asarray(info.h, np.float64),
                        self.node_probabilities()[i], dh, child_inputs)

    # ------------------------------------------------------------------ training
    def train(self, epochs: int | None = None, should_stop=lambda: False, on_epoch=None) -> str:
        """Train ``epochs`` more epochs (default: the ``epochs`` option) in the calling thread,
        until done, :meth:`stop_training` or ``should_stop()``; :meth:`pause_training` holds it
        between epochs. Each epoch holds :attr:`lock` and appends an :class:`EpochStats` to
        :attr:`history` (then ``on_epoch(stats)`` is called). An epoch in which an update diverges
        (a loss, a gradient or a weight not finite) is undone, weights and optimizer state, and
        ends training ("diverged"). Returns the final status."""
        epochs = self.options["epochs"] if epochs is None else check_int("epochs", epochs, *LIMITS["epochs"])
        target = self.trainer.epochs_done + epochs
        self._start_training()
        try:
            while self.trainer.epochs_done < target and not self._between_steps(should_stop):
                with self.lock:
                    trainer = self.trainer
                    slots = {k: v.copy() for k, v in trainer.optimizer.state_arrays().items()}
                    before = self.model.state_dict(), slots, trainer.updates, trainer.rng.bit_generator.state
                    try:
                        stats = trainer.epoch(self.test_bank)
                    except TrainingDiverged as exc:  # its earlier minibatches applied: undone, the epoch whole
                        self.model.load_state_dict(before[0])
                        trainer.optimizer.load_state_arrays(before[1])
                        trainer.updates, trainer.rng.bit_generator.state = before[2], before[3]
                        self.training_status = "diverged"
                        self.training_message = (f"epoch {self.trainer.epochs_done + 1}: {exc} (try a smaller "
                                                 "learning_rate); the weights before the epoch are kept")
                        return self.training_status
                self.history.append(stats)
                if on_epoch is not None:
                    on_epoch(stats)
        finally:
            if self.training_status in ("running", "paused"):
                self.training_status = "completed" if self.trainer.epochs_done >= target else "stopped"
        return self.training_status

    # ------------------------------------------------------------------ summaries and exports
    def summary(self) -> dict[str, Any]:
        """Everything the lab shows, as JSON-ready values (``--json``)."""
        probs = self.probabilities()
        target, why = self.target()
        last = self.history[-1] if self.history else None
        return {
            "lab": self.name,
            "options": dict(self.options),
            "treebank": {"path": str(SAMPLE_TREEBANK), "train": len(self.train_bank), "test": len(self.test_bank),
                         "labels": list(self.labels), "vocabulary": len(self.vocab)},
            "model": {"hidden_size": self.hidden_size,
                      "parameters": sum(p.size for p in self.model.parameters().values()),
                      "composition": "h = tanh(W [h_left; h_right] + b)", "readout": "softmax(W_o h_root + b_o)"},
            "training": {
                "status": self.training_status, "epochs": self.epochs_done,
                "train_accuracy": None if last is None else last.train_accuracy,
                "test_accuracy": None if last is None else last.test_accuracy,
                "history": [_stats_json(s) for s in self.history],
            },
            "tree": {"bench": self.bench_name, "index": self.tree_index, "sexpr": self.tree.to_sexpr(),
                     "label": self.tree.label, "nodes": self.num_nodes, "height": self.tree.height()},
            "prediction": {"label": self.labels[int(np.argmax(probs))],
                           "probabilities": {c: float(p) for c, p in zip(self.labels, probs)},
                           "target": self.labels[target], "target_from": why, "loss": self.loss},
            "cursor": {"forward": self.cursor, "backward": self.back_cursor},
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """Every recorded internal of the bench tree, the weights and the training history, as
        plain arrays (no object arrays: they load with ``allow_pickle=False``)."""
        with self.lock:
            n = self.num_nodes
            t = self.tree
            out: dict[str, np.ndarray] = {
                "h": np.array(self.trace.vectors(0)),
                "node_probabilities": self.node_probabilities(),
                "logits": np.array(self.trace.outputs[0]),
                "left": np.array(t.left, np.int64),
                "right": np.array(t.right, np.int64),
                "words": np.array([t.word(i) or "" for i in range(n)], dtype=str),
                "phrases": np.array([t.phrase(i) for i in range(n)], dtype=str),
                "labels": np.array(self.labels, dtype=str),
                "vocabulary": np.array(self.vocab.words, dtype=str),
            }
            if self.back_cursor is not None and self.trace.has_gradients:
                out["dh"] = np.array(self.trace.gradients(0))
            for name, value in self.model.state_dict().items():
                out[name] = value
            rows = self.history
            out["history_epoch"] = np.array([s.epoch for s in rows], np.int64)
            out["history_loss"] = np.array([s.loss for s in rows], np.float64)
            out["history_train_accuracy"] = np.array([s.train_accuracy for s in rows], np.float64)
            out["history_test_accuracy"] = np.array([np.nan if s.test_accuracy is None else s.test_accuracy
                                                     for s in rows], np.float64)
            # as each epoch trained (options holds the next run's: they change in place between runs)
            out["history_learning_rate"] = np.array([s.learning_rate for s in rows], np.float64)
            out["history_batch_size"] = np.array([s.batch_size for s in rows], np.int64)
            meta = self.summary()
            meta["training"].pop("history")
            meta["layout"] = ("nodes in post-order (children before parents, the root last): h, dh, "
                              "node_probabilities (n, H|C), left/right child indices (-1 for a leaf), "
                              "words ('' for an internal node), phrases; logits (C,) of the root")
            out["meta"] = np.array(json.dumps(meta))
        return out

    @property
    def export_name(self) -> str:
        """The file name an export is offered under (and a directory given instead is told to hold)."""
        return f"treebank-{'typed' if self.tree_index is None else f'test{self.tree_index}'}.npz"

    def export(self, path: str | Path, *, replace: bool = True) -> Path:
        """Write :meth:`arrays` to ``path`` (``.npz``, atomically); returns the path written.
        ``replace=False`` refuses an existing file (:class:`~rnnlab.errors.TargetExistsError`)."""
        path = export_target(path, self.export_name, replace=replace)
        atomic_save_npz(path, self.arrays(), replace=replace)  # an OSError leaves as one line naming the path
        return path


def _stats_json(s: EpochStats) -> dict[str, Any]:
    return {"epoch": s.epoch, "loss": s.loss, "train_accuracy": s.train_accuracy,
            "test_accuracy": s.test_accuracy, "seconds": s.seconds, "learning_rate": s.learning_rate,
            "batch_size": s.batch_size}
