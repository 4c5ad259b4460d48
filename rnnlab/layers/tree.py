"""Recursive (tree) networks: :class:`RecursiveNet`, a softmax :class:`TreeClassifier` on its root,
and the :class:`TreeTrace` of one pass (the trainer is :mod:`rnnlab.train.trees`).

The composition (see :mod:`rnnlab.kernels.tree` for the equations and shapes)::

    leaf:  h = E[word]                    internal node:  h = tanh(W [h_left; h_right] + b)

Parameters use ``torch.nn`` names and shapes so they move both ways: ``embedding.weight`` (V, H)
as ``nn.Embedding(V, H)``, ``compose.weight`` (H, 2H) and ``compose.bias`` (H,) as
``nn.Linear(2H, H)``; the classifier adds ``readout.weight`` (C, H) and ``readout.bias`` (C,) as
``nn.Linear(H, C)``. Initialisation follows torch too: embeddings N(0, 1), linear layers
uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)).

Trees enter as a :class:`~rnnlab.data.trees.TreeBatch` (any shapes, flattened in post-order);
the classifier, which owns a vocabulary, also takes :class:`~rnnlab.data.trees.Tree` s directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.trees import Tree, Treebank, TreeBatch, Vocabulary
from ..errors import DataError
from ..kernels import blas_single_threaded, kernel_threads
from ..kernels.tree import tree_backward, tree_forward
from ..train.losses import cross_entropy
from ._params import (CallsForward, IncompatibleKeys, LiveParameters, NamedParameters, as_array, assign_params,
                      check_param_memory, check_params, check_positive_int, check_seed, draw_normal, draw_uniform,
                      foreign_trace, load_into, load_params, parse_dtype)

__all__ = ["RecursiveNet", "TreeClassifier", "TreeTrace", "TreeNode"]


def _check_grad(what: str, value: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    value = as_array(what, value)
    if value.dtype != dtype:
        raise ValueError(f"{what} has dtype {value.dtype}, but the network is {dtype.name}")
    if value.shape != shape:
        raise ValueError(f"{what} has shape {value.shape}, expected {shape}")
    if not np.isfinite(value).all():
        raise ValueError(f"{what} contains NaN or Inf")
    return value


def _read_only(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.flags.writeable = False
    return view


# ---------------------------------------------------------------------------------------------
# the trace
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)  # compared (and hashed) as itself: it holds arrays
class TreeNode:
    """One node of one tree of a trace, for stepping through the tree node by node."""

    tree: int  # which tree of the batch
    index: int  # post-order index in its tree (the root is the last)
    children: tuple[int, int] | None  # (left, right) indices, None for a leaf
    word: str | None  # a leaf's token
    phrase: str  # the words the node covers
    h: np.ndarray  # (H,) the node's vector
    dh: np.ndarray | None  # (H,) total dL/dh after backward, else None


@dataclass(eq=False)
class TreeTrace:
    """Everything one forward pass over a batch of trees computed (and, after backward, dL/dh).

    ``h`` ``(N, H)``: every node's vector, batch-wide post-order (tree ``b`` owns rows
    ``batch.offsets[b]:batch.offsets[b+1]``); ``dh`` the same shape after ``backward`` (None
    before): the total gradient arriving at each node. ``outputs``: the classifier's logits
    ``(B, C)`` when a :class:`TreeClassifier` made the trace. Arrays are read-only views.

    :meth:`tree`, :meth:`vectors`, :meth:`gradients` and :meth:`node` take a tree index ``b`` (and
    a node index ``i``) from 0, as integers: ValueError for anything else (a bool too: True would
    read as tree 1), IndexError naming the range for one outside it (a negative one too: it is not
    counted from the end).
    """

    batch: TreeBatch
    hidden_size: int
    dtype: np.dtype
    _h: np.ndarray = field(repr=False)
    _params: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _owner: Any = field(default=None, repr=False)
    _dh: np.ndarray | None = field(default=None, repr=False)
    _outputs: np.ndarray | None = field(default=None, repr=False)

    @property
    def h(self) -> np.ndarray:
        """(N, H): every node's vector, batch-wide post-order (read-only)."""
        return _read_only(self._h)

    @property
    def dh(self) -> np.ndarray | None:
        """(N, H): the total dL/dh arriving at each node, after ``backward`` (None before; read-only)."""
        return None if self._dh is None else _read_only(self._dh)

    @property
    def has_gradients(self) -> bool:
        """True once ``backward`` has filled :attr:`dh`."""
        return self._dh is not None

    @property
    def outputs(self) -> np.ndarray | None:
        """(B, C): the logits, when a :class:`TreeClassifier` made the trace (None otherwise; read-only)."""
        return None if self._outputs is None else _read_only(self._outputs)

    @property
    def roots(self) -> np.ndarray:
        """``(B, H)``: each tree's root vector."""
        return _read_only(self._h[self.batch.roots])

    def __len__(self) -> int:
        """Number of trees."""
        return len(self.batch)

    # every index helper below checks its indices through TreeBatch.tree_index / TreeBatch.node: one rule
    def tree(self, b: int) -> Tree:
        """Tree ``b`` of the batch."""
        return self.batch.trees[self.batch.tree_index(b)]

    def _rows(self, b: int) -> slice:
        """The rows of tree ``b``'s nodes in ``h`` and ``dh``, after checking ``b``."""
        b = self.batch.tree_index(b)
        return slice(int(self.batch.offsets[b]), int(self.batch.offsets[b + 1]))

    def vectors(self, b: int) -> np.ndarray:
        """``(n_b, H)``: the vectors of tree ``b``'s nodes in post-order."""
        return _read_only(self._h[self._rows(b)])

    def gradients(self, b: int) -> np.ndarray:
        """``(n_b, H)``: dL/dh of tree ``b``'s nodes in post-order (after backward)."""
        rows = self._rows(b)
        if self._dh is None:
            raise ValueError("no gradients in this trace yet: call backward() first")
        return _read_only(self._dh[rows])

    def node(self, b: int, i: int) -> TreeNode:
        """Node ``i`` (post-order) of tree ``b``: structure, words, vector and gradient."""
        n = self.batch.node(b, i)
        b, i = int(b), int(i)  # checked integers: the TreeNode holds plain ints
        t = self.batch.trees[b]
        return TreeNode(tree=b, index=i, children=t.children(i), word=t.word(i), phrase=t.phrase(i),
                        h=_read_only(self._h[n]), dh=None if self._dh is None else _read_only(self._dh[n]))


# ---------------------------------------------------------------------------------------------
# the recursive network
# ---------------------------------------------------------------------------------------------

class RecursiveNet(NamedParameters, CallsForward):
    """A recursive neural network over binary trees: word embeddings at the leaves, one shared
    composition ``h = tanh(W [h_left; h_right] + b)`` at every internal node.

    ``state_dict`` keys: ``embedding.weight`` (V, H), ``compose.weight`` (H, 2H), ``compose.bias`` (H,).
    """

    def __init__(self, vocab_size: int, hidden_size: int, *, dtype: str = "float32", seed: int | None = None) -> None:
        self.vocab_size = check_positive_int("vocab_size", vocab_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.dtype = parse_dtype(dtype)
        self._params: dict[str, np.ndarray] = {}
        # refused before any array is allocated: numpy's MemoryError names neither the net nor a size
        check_param_memory(repr(self), self._param_shapes().values(), self.dtype, "vocab_size or hidden_size")
        self.reset_parameters(seed)  # sets self.seed

    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        V, H = self.vocab_size, self.hidden_size
        return {"embedding.weight": (V, H), "compose.weight": (H, 2 * H), "compose.bias": (H,)}

    def reset_parameters(self, seed: int | None = None) -> None:
        """torch's initialisation: embedding N(0, 1); composition uniform(-1/sqrt(2H), 1/sqrt(2H)).
        Reproducible from ``seed`` (recorded as :attr:`seed`); writes into the arrays :meth:`parameters`
        handed out."""
        self.seed = seed = check_seed(seed)
        rng = np.random.default_rng(seed)
        V, H = self.vocab_size, self.hidden_size
        bound = 1.0 / math.sqrt(2 * H)
        assign_params(self._params, {  # drawn in order, straight into the dtype (no float64 copy of them)
            "embedding.weight": draw_normal(rng, (V, H), self.dtype),
            "compose.weight": draw_uniform(rng, -bound, bound, (H, 2 * H), self.dtype),
            "compose.bias": draw_uniform(rng, -bound, bound, (H,), self.dtype),
        })

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter, keyed as torch's ``embedding``/``compose`` submodules."""
        return {k: v.copy() for k, v in self._params.items()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Load parameters; keys and shapes must match exactly (ValueError naming every wrong key and shape,
        the net left unchanged); with ``strict=False`` a missing parameter keeps its value, an unknown
        key is ignored. Values are copied into the arrays :meth:`parameters` handed out, as torch does;
        returns torch's ``(missing_keys, unexpected_keys)``."""
        return load_into(self._params, self._param_shapes(), state, self.dtype, strict)

    def parameters(self) -> dict[str, np.ndarray]:
        """The live parameter arrays (updating them in place changes the net). An entry replaced by
        another array must keep its shape and the net's dtype: ``forward`` checks (ValueError)."""
        return self._params

    @property
    def num_parameters(self) -> int:
        """Scalars in the parameters (what torch's ``sum(p.numel() for p in m.parameters())`` counts)."""
        return sum(p.size for p in self._params.values())

    def __repr__(self) -> str:
        extra = "" if self.dtype == np.float32 else f", dtype='{self.dtype.name}'"
        return f"RecursiveNet({self.vocab_size}, {self.hidden_size}{extra})"

    def check_batch(self, batch: Any) -> TreeBatch:
        """``batch`` if it is a TreeBatch encoded with a vocabulary of this net's size (DataError otherwise)."""
        if not isinstance(batch, TreeBatch):
            raise ValueError(f"trees must be a TreeBatch (TreeBatch.from_trees(trees, vocab)), "
                             f"got {type(batch).__name__}")
        if batch.vocab_size != self.vocab_size:
            raise DataError(f"mismatched vocabularies: the trees were encoded with a vocabulary of "
                            f"{batch.vocab_size} words, but the embedding has {self.vocab_size} rows")
        return batch

    def forward(self, batch: TreeBatch) -> tuple[np.ndarray, TreeTrace]:
        """Compute every node of every tree of ``batch``.

        Returns ``(roots, trace)``: ``roots`` ``(B, H)`` the root vectors, ``trace`` a
        :class:`TreeTrace` holding every node's vector (for stepping node by node) and what
        :meth:`backward` needs.
        """
        batch = self.check_batch(batch)
        # the trace keeps its own copy of the weights: backward differentiates exactly what forward
        # computed, even if an optimizer updates the weights in between
        check_params(self._params, self._param_shapes(), self.dtype)
        params = {k: v.copy() for k, v in self._params.items()}
        with blas_single_threaded():
            h = tree_forward(params["embedding.weight"], params["compose.weight"], params["compose.bias"],
                             batch.left, batch.right, batch.word, batch.offsets, kernel_threads())
        trace = TreeTrace(batch, self.hidden_size, self.dtype, h, params, self)
        return h[batch.roots], trace

    def backward(self, trace: TreeTrace, d_root: Any = None, d_nodes: Any = None) -> dict[str, np.ndarray]:
        """Backpropagation through structure.

        Computes the gradient of ``sum(roots * d_root) + sum(trace.h * d_nodes)``: ``d_root``
        ``(B, H)`` is dL/d(root vector), ``d_nodes`` ``(N, H)`` an optional gradient on every node
        (e.g. a per-node readout); either may be None (zero). Returns a dict keyed by the
        state_dict names and fills ``trace.dh`` with the total dL/dh of every node.
        """
        if not isinstance(trace, TreeTrace) or trace._owner is not self:
            raise foreign_trace(self, trace)
        batch = trace.batch
        N, B, H = batch.num_nodes, len(batch), self.hidden_size
        if d_nodes is None:
            total = np.zeros((N, H), self.dtype)
        else:
            total = _check_grad("d_nodes", d_nodes, (N, H), self.dtype).copy()
        if d_root is not None:
            total[batch.roots] += _check_grad("d_root", d_root, (B, H), self.dtype)
        with blas_single_threaded():
            d_emb, d_w, d_b, dh = tree_backward(trace._params["compose.weight"], trace._h, batch.left,
                                                batch.right, batch.word, batch.offsets, total,
                                                self.vocab_size, kernel_threads())
        trace._dh = dh
        return {"embedding.weight": d_emb, "compose.weight": d_w, "compose.bias": d_b}


# ---------------------------------------------------------------------------------------------
# the classifier
# ---------------------------------------------------------------------------------------------

class TreeClassifier(NamedParameters, CallsForward):
    """A :class:`RecursiveNet` with a softmax readout on each tree's root: ``logits = W_o h_root + b_o``.

    ``vocab`` maps words to embedding rows; ``labels`` are the class names (class id = position).
    ``state_dict`` = the net's entries plus ``readout.weight`` (C, H) and ``readout.bias`` (C,).
    """

    def __init__(self, vocab: Vocabulary, labels: Sequence[str], hidden_size: int, *, dtype: str = "float32",
                 seed: int | None = None) -> None:
        if not isinstance(vocab, Vocabulary):
            raise ValueError(f"vocab must be a Vocabulary, got {type(vocab).__name__}")
        labels = tuple(labels)
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise ValueError(f"labels must be at least 2 distinct class names, got {labels!r}")
        self.vocab = vocab
        self.labels = labels
        seed = check_seed(seed)
        # the net and the readout at once, named as the classifier was called (the net alone would name a
        # RecursiveNet the user never built)
        V, C, H = len(vocab), len(labels), check_positive_int("hidden_size", hidden_size)
        check_param_memory(f"TreeClassifier(vocab={V} words, labels={C} classes, hidden_size={H})",
                           [(V, H), (H, 2 * H), (H,), (C, H), (C,)], parse_dtype(dtype),
                           "the vocabulary, the labels or hidden_size")
        self.net = RecursiveNet(V, H, dtype=dtype, seed=seed)
        self.dtype = self.net.dtype
        self.hidden_size = self.net.hidden_size
        self._readout: dict[str, np.ndarray] = {}
        self._reset_readout(seed)

    def _readout_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"readout.weight": (len(self.labels), self.hidden_size), "readout.bias": (len(self.labels),)}

    def _reset_readout(self, seed: int | None) -> None:
        rng = np.random.default_rng(None if seed is None else [seed, 0x7265_6164])  # apart from the net's stream
        bound = 1.0 / math.sqrt(self.hidden_size)
        assign_params(self._readout, {k: draw_uniform(rng, -bound, bound, shape, self.dtype)
                                      for k, shape in self._readout_shapes().items()})

    def reset_parameters(self, seed: int | None = None) -> None:
        """Draw the net's and the readout's parameters again, as the constructor does with ``seed``;
        writes into the arrays :meth:`parameters` handed out."""
        seed = check_seed(seed)
        self.net.reset_parameters(seed)
        self._reset_readout(seed)

    def parameters(self) -> LiveParameters:
        """The live parameter arrays of the net and the readout: updating one in place, or replacing it
        with an array of the same shape and dtype, changes the model (``forward`` checks, ValueError)."""
        return LiveParameters(lambda: [("", self.net.parameters(), None), ("", self._readout, None)])

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter by name: the net's (``embedding``, ``compose``) and the ``readout``'s."""
        return {k: v.copy() for k, v in self.parameters().items()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Load all five entries (ValueError naming every wrong key and shape; nothing changes on error); with
        ``strict=False`` a missing parameter keeps its value, an unknown key is ignored. Values are
        copied into the arrays :meth:`parameters` handed out, as torch does; returns torch's
        ``(missing_keys, unexpected_keys)``."""
        shapes = {**self.net._param_shapes(), **self._readout_shapes()}
        loaded, keys = load_params(shapes, state, self.dtype, strict, self.parameters())
        assign_params(self.net._params, {k: loaded[k] for k in self.net._param_shapes()})  # nothing here can fail
        assign_params(self._readout, {k: loaded[k] for k in self._readout_shapes()})
        return keys

    def __repr__(self) -> str:
        return (f"TreeClassifier(vocab={len(self.vocab)} words, labels={list(self.labels)}, "
                f"hidden_size={self.hidden_size}, dtype='{self.dtype.name}')")

    def batch(self, trees: Any) -> TreeBatch:
        """A TreeBatch of ``trees`` (a Tree, a sequence of them, a Treebank, or a TreeBatch) in this
        model's vocabulary (DataError naming the tree and word for an unknown word)."""
        if isinstance(trees, TreeBatch):
            return self.net.check_batch(trees)
        if isinstance(trees, Treebank):
            trees = trees.trees
        return TreeBatch.from_trees(trees, self.vocab)

    def targets(self, batch: TreeBatch) -> np.ndarray:
        """Class ids ``(B,)`` of the trees' labels (DataError for a missing or unknown label)."""
        index = {lbl: c for c, lbl in enumerate(self.labels)}
        out = np.empty(len(batch), np.int64)
        for k, t in enumerate(batch.trees):
            if t.label not in index:
                what = "has no label" if t.label is None else f"has label {t.label!r}"
                raise DataError(f"tree {k} {what}, not one of the classes {', '.join(self.labels)}")
            out[k] = index[t.label]
        return out

    def forward(self, trees: Any) -> tuple[np.ndarray, TreeTrace]:
        """``(logits (B, C), trace)``; ``trace.outputs`` holds the logits too."""
        batch = self.batch(trees)
        check_params(self._readout, self._readout_shapes(), self.dtype)
        params = {k: v.copy() for k, v in self._readout.items()}
        roots, trace = self.net.forward(batch)
        logits = roots @ params["readout.weight"].T + params["readout.bias"]
        trace._outputs = logits
        trace._params.update(params)
        return logits.copy(), trace  # editing the result leaves trace.outputs as computed

    def backward(self, trace: TreeTrace, d_logits: Any = None) -> dict[str, np.ndarray]:
        """Gradients of ``sum(logits * d_logits)`` for every parameter (state_dict order); fills ``trace.dh``.
        ``d_logits`` (B, C) may be None (zero)."""
        if isinstance(trace, TreeTrace) and trace._outputs is None:  # a RecursiveNet's own: the readout not in it
            raise foreign_trace(self, trace, note=": this one is a RecursiveNet's, without the readout")
        if not isinstance(trace, TreeTrace) or trace._owner is not self.net:
            raise foreign_trace(self, trace, owner=self.net)
        shape = trace._outputs.shape
        if d_logits is None:
            d_logits = np.zeros(shape, self.dtype)
        else:
            d_logits = _check_grad("d_logits", d_logits, shape, self.dtype)
        W_o = trace._params["readout.weight"]
        d_root = d_logits @ W_o  # (B, H)
        grads = self.net.backward(trace, d_root)
        grads["readout.weight"] = d_logits.T @ trace._h[trace.batch.roots]
        grads["readout.bias"] = d_logits.sum(axis=0)
        return grads

    def loss(self, trees: Any, targets: Any = None) -> tuple[float, float, dict[str, np.ndarray], TreeTrace]:
        """Mean softmax cross-entropy over the trees and its gradients.

        ``targets`` ``(B,)`` class ids default to the trees' labels. Returns
        ``(loss, accuracy, grads, trace)``.
        """
        batch = self.batch(trees)
        if targets is None:
            y = self.targets(batch)
        else:  # class ids: 1.7 would otherwise be read as class 1
            y = np.asarray(targets)
            if y.dtype.kind not in "iu":
                raise ValueError(f"targets must be {len(batch)} integer class ids, got dtype {y.dtype}")
            y = y.astype(np.int64)
        if y.shape != (len(batch),) or (y.size and not (0 <= y.min() and y.max() < len(self.labels))):
            raise ValueError(f"targets must be {len(batch)} class ids in 0..{len(self.labels) - 1}")
        logits, trace = self.forward(batch)
        result = cross_entropy(logits[None], y[None], np.ones((1, len(batch)), bool))
        grads = self.backward(trace, result.grad[0].astype(self.dtype))
        return result.loss, float(result.accuracy), grads, trace

    def predict(self, trees: Any) -> list[str]:
        """The most likely label of each tree."""
        logits, _ = self.forward(trees)
        return [self.labels[c] for c in logits.argmax(axis=1)]

    def evaluate(self, trees: Any) -> tuple[float, float]:
        """``(mean cross-entropy, accuracy)`` over labelled trees."""
        batch = self.batch(trees)
        logits, _ = self.forward(batch)
        y = self.targets(batch)
        result = cross_entropy(logits[None], y[None], np.ones((1, len(batch)), bool))
        return result.loss, float(result.accuracy)
