"""Binary trees written as s-expressions, treebanks of labelled trees, vocabularies and tree batches.

Tree syntax
-----------
A leaf is one token (any run of characters other than whitespace and parentheses); ``(A B)`` is a
node whose two children are the trees ``A`` and ``B``::

    ((the cat) (sat down))

Every node has exactly two children: ``()``, ``(a)`` and ``(a b c)`` are errors. The Stanford
Sentiment Treebank's labelled form, where every node starts with its label and leaves are
``(label word)``, is read with ``sst=True``::

    (3 (2 the) (3 cat))

Treebank file format
--------------------
UTF-8 text, one tree per line. Blank lines and lines whose first non-blank character is ``#``
are skipped (comments). In the default ``"labelled"`` format each line is ``LABEL TREE``: the first
token is the tree's class label (any token), the rest of the line its tree, e.g.
``neg (not (very good))``. ``"plain"`` lines hold only a tree (no label); ``"sst"`` lines hold an
SST tree whose root label is the tree's label. Every error is one :class:`~rnnlab.errors.DataError`
line naming the file, line and 1-based column.

Nodes are numbered in post-order (children before parents; the root is last), which is the order
a recursive network computes them in and the order the lab steps through them.

The shipped treebank (``rnnlab/sample_data/treebank.txt``) is written by
:func:`write_sample_treebank`; see :func:`generate_sentiment_trees` for its grammar.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from ..errors import DataError, choice_refusal, given, is_choice
from ..fsio import atomic_write_text
from .files import check_readable_file, read_text_file

__all__ = [
    "Tree",
    "Treebank",
    "TreeBatch",
    "Vocabulary",
    "UNK",
    "parse_tree",
    "parse_treebank",
    "read_treebank",
    "format_treebank",
    "write_treebank",
    "generate_sentiment_trees",
    "write_sample_treebank",
    "load_sample_treebank",
    "SAMPLE_TREEBANK",
    "SAMPLE_SEED",
    "SAMPLE_SIZE",
    "SAMPLE_TEST_SIZE",
]

#: The unknown-word token of a vocabulary built with ``unk=True``.
UNK = "<unk>"

#: The shipped treebank, its generator's seed, its size and how many trees (the last ones) are the test set.
SAMPLE_TREEBANK = Path(__file__).resolve().parent.parent / "sample_data" / "treebank.txt"
SAMPLE_SEED = 5
SAMPLE_SIZE = 600
SAMPLE_TEST_SIZE = 150

FORMATS = ("labelled", "plain", "sst")

Nested = Union[str, tuple]  # a leaf word or a pair (left, right) of nested trees


# ---------------------------------------------------------------------------------------------
# trees
# ---------------------------------------------------------------------------------------------

class Tree:
    """A binary tree whose nodes are numbered in post-order (children first, root last); not to be
    changed once made (a batch encodes it as it was).

    Node ``i`` is a leaf when ``left[i] == -1``; then ``word(i)`` is its token. An internal node's
    children are ``left[i]`` and ``right[i] == i - 1`` (the left subtree ends just before the right
    one starts). ``label`` is the tree's class label (None when unlabelled); ``node_labels`` holds
    every node's label for SST trees.
    """

    __slots__ = ("left", "right", "_words", "tokens", "label", "node_labels", "_span")

    def __init__(self, left: Sequence[int], right: Sequence[int], words: Sequence[str | None],
                 label: str | None = None, node_labels: Sequence[str] | None = None) -> None:
        n = len(left)
        if n == 0 or len(right) != n or len(words) != n:
            raise ValueError(f"a tree needs equally long, non-empty left/right/words, got {len(left)}, "
                             f"{len(right)}, {len(words)}")
        if node_labels is not None and len(node_labels) != n:
            raise ValueError(f"node_labels has {len(node_labels)} entries for {n} nodes")
        first: list[int] = []  # the smallest index in each node's subtree
        span: list[tuple[int, int]] = []
        tokens: list[str] = []
        for i in range(n):
            lft, rgt, word = int(left[i]), int(right[i]), words[i]
            if lft == -1 and rgt == -1:
                if not isinstance(word, str) or not word:
                    raise ValueError(f"leaf {i} has no word")
                first.append(i)
                span.append((len(tokens), len(tokens) + 1))
                tokens.append(word)
                continue
            if word is not None:
                raise ValueError(f"internal node {i} has a word ({word!r})")
            # post-order: the right subtree ends just before its parent, the left one just before it
            if rgt != i - 1 or not 0 <= lft < i or lft != first[rgt] - 1:
                raise ValueError(f"node {i} has children ({lft}, {rgt}): not a post-order numbering "
                                 "(expected the right child at i-1, the left subtree just before it)")
            first.append(first[lft])
            span.append((span[lft][0], span[rgt][1]))
        if first[n - 1] != 0:
            raise ValueError(f"node {n - 1} (the root) covers nodes {first[n - 1]}..{n - 1}, not all {n}")
        self.left = tuple(int(v) for v in left)
        self.right = tuple(int(v) for v in right)
        self._words = tuple(words)
        self.tokens = tuple(tokens)  # the leaves' words, left to right
        self.label = label
        self.node_labels = None if node_labels is None else tuple(node_labels)
        self._span = tuple(span)

    # -------------------------------------------------------------- construction
    @classmethod
    def from_nested(cls, nested: Nested, label: str | None = None) -> Tree:
        """A tree from nested pairs: ``(("the", "cat"), ("sat", "down"))``; a string is a leaf (recursive:
        meant for literals and tests; the parser reads deep trees without recursion)."""
        left: list[int] = []
        right: list[int] = []
        words: list[str | None] = []

        def visit(node: Nested) -> int:
            if isinstance(node, str):
                left.append(-1)
                right.append(-1)
                words.append(node)
                return len(words) - 1
            if not isinstance(node, (tuple, list)) or len(node) != 2:
                raise ValueError(f"a nested tree is a word or a pair of nested trees, got {node!r}")
            lft = visit(node[0])
            rgt = visit(node[1])
            left.append(lft)
            right.append(rgt)
            words.append(None)
            return len(words) - 1

        visit(nested)
        return cls(left, right, words, label)

    def with_label(self, label: str | None) -> Tree:
        """The same tree with another class label."""
        return Tree(self.left, self.right, self._words, label, self.node_labels)

    # -------------------------------------------------------------- structure
    def __len__(self) -> int:
        """Number of nodes (leaves and internal nodes)."""
        return len(self.left)

    @property
    def root(self) -> int:
        """Index of the root: the last node in post-order."""
        return len(self.left) - 1

    def _node(self, i: object) -> int:
        """``i`` as a node index: ValueError for no integer, IndexError outside ``0..len-1`` (a negative
        one too: parent(-1) read as the last leaf's parent, children(-1) as the root's)."""
        return _check_index("node", i, len(self.left), f"the tree has {len(self.left)} nodes")

    def is_leaf(self, i: int) -> bool:
        """Whether node ``i`` (post-order) is a word, with no children."""
        return self.left[self._node(i)] == -1

    def word(self, i: int) -> str | None:
        """The token of leaf ``i`` (None for an internal node)."""
        return self._words[self._node(i)]

    def children(self, i: int) -> tuple[int, int] | None:
        """``(left, right)`` of node ``i``, None for a leaf."""
        i = self._node(i)
        return None if self.left[i] == -1 else (self.left[i], self.right[i])

    def parent(self, i: int) -> int | None:
        """The parent of node ``i`` (None for the root)."""
        i = self._node(i)
        for p in range(i + 1, len(self.left)):
            if self.left[p] == i or self.right[p] == i:
                return p
        return None

    def span(self, i: int) -> tuple[int, int]:
        """The tokens node ``i`` covers: ``tokens[start:end]``."""
        return self._span[self._node(i)]

    def phrase(self, i: int | None = None) -> str:
        """The words under node ``i`` (the whole sentence by default), space-separated."""
        start, end = self._span[self.root if i is None else i]
        return " ".join(self.tokens[start:end])

    def height(self, i: int | None = None) -> int:
        """Edges on the longest path from node ``i`` (the root by default) down to a leaf."""
        heights: list[int] = []
        for n in range(len(self.left)):
            heights.append(0 if self.left[n] == -1 else 1 + max(heights[self.left[n]], heights[self.right[n]]))
        return heights[self.root if i is None else i]

    # -------------------------------------------------------------- text
    def to_sexpr(self, i: int | None = None) -> str:
        """The s-expression of node ``i`` (the whole tree by default); SST form when the tree has node labels."""
        parts: list[str] = []
        for n in range(len(self.left)):
            if self.left[n] == -1:
                text = self._words[n]
                if self.node_labels is not None:
                    text = f"({self.node_labels[n]} {text})"
            else:
                lbl = f"{self.node_labels[n]} " if self.node_labels is not None else ""
                text = f"({lbl}{parts[self.left[n]]} {parts[self.right[n]]})"
            parts.append(text)
        return parts[self.root if i is None else i]

    def __str__(self) -> str:
        return self.to_sexpr()

    def __repr__(self) -> str:
        lbl = "" if self.label is None else f", label={self.label!r}"
        return f"Tree({self.to_sexpr()!r}{lbl})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tree):
            return NotImplemented
        return (self.left, self.right, self._words, self.label, self.node_labels) == \
            (other.left, other.right, other._words, other.label, other.node_labels)

    def __hash__(self) -> int:
        return hash((self.left, self.right, self._words, self.label, self.node_labels))


# ---------------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------------

def _tokenize(text: str):
    """(kind, value, column) with kind '(' ')' or 'atom'; columns are 1-based."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "()":
            out.append((c, c, i + 1))
            i += 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "()":
                j += 1
            out.append(("atom", text[i:j], i + 1))
            i = j
    return out


def _fail(where: str, message: str) -> DataError:
    return DataError(f"{where}{message}")


def parse_tree(text: str, *, sst: bool = False, label: str | None = None, where: str = "",
               column_offset: int = 0) -> Tree:
    """Parse one binary tree from its s-expression (see the module docstring).

    ``sst=True`` reads the SST form (every node starts with its label; ``tree.label`` becomes the
    root's label, ``tree.node_labels`` holds them all). ``label`` sets the tree's label otherwise.
    Errors are one-line :class:`DataError` s naming the problem and its 1-based column; ``where``
    prefixes the message (e.g. ``"trees.txt line 3: "``) and ``column_offset`` shifts the columns.
    """
    if not isinstance(text, str):
        raise DataError(f"{where}a tree must be a string, got {type(text).__name__}")
    tokens = _tokenize(text)
    if not tokens:
        raise _fail(where, "empty tree")
    left: list[int] = []
    right: list[int] = []
    words: list[str | None] = []
    labels: list[str] = []

    def leaf(word: str, node_label: str | None = None) -> int:
        left.append(-1)
        right.append(-1)
        words.append(word)
        if node_label is not None:
            labels.append(node_label)
        return len(words) - 1

    # An explicit stack (no recursion): each open frame is [column, items]; items are node ids,
    # and in SST mode the first item is the label (a str) or a leaf word.
    stack: list[tuple[int, list]] = []
    root: int | None = None
    for kind, value, col in tokens:
        col += column_offset
        if root is not None:
            if kind == ")":
                raise _fail(where, f"unbalanced parentheses: ')' at column {col} has no matching '('")
            raise _fail(where, f"unexpected {value!r} at column {col} after the end of the tree "
                               "(one tree per line; wrap siblings in parentheses)")
        if kind == "(":
            stack.append((col, []))
        elif kind == "atom":
            if not stack:  # a bare token: a one-leaf tree, valid only if nothing follows
                if sst:
                    raise _fail(where, f"SST trees start with '(', got {value!r} at column {col}")
                root = leaf(value)
            elif sst:  # a label or an SST leaf's word: numbered when its node closes
                stack[-1][1].append(("atom", value, col))
            else:  # numbered now, so that a left subtree's nodes all come before the right one's
                stack[-1][1].append(("node", leaf(value), col))
        else:  # ")"
            if not stack:
                raise _fail(where, f"unbalanced parentheses: ')' at column {col} has no matching '('")
            open_col, items = stack.pop()
            node = _close_sst(where, open_col, items, leaf, left, right, words, labels) if sst \
                else _close_plain(where, open_col, items, left, right, words)
            if stack:
                stack[-1][1].append(("node", node, open_col))
            else:
                root = node
    if stack:
        raise _fail(where, f"unbalanced parentheses: '(' at column {stack[-1][0]} is never closed")
    assert root is not None
    if sst:
        return Tree(left, right, words, labels[-1], labels)
    return Tree(left, right, words, label)


def _close_plain(where, open_col, items, left, right, words) -> int:
    if len(items) != 2:
        what = "an empty node '()'" if not items else \
            f"a node with {len(items)} child{'' if len(items) == 1 else 'ren'}"
        joined = next((words[item[1]] for item in items if item[0] == "node" and words[item[1]] is not None and
                       any(mark in words[item[1]] for mark in ",;")), None)
        hint = f" (blanks separate words: {joined!r} is one word)" if joined else ""
        raise _fail(where, f"{what} at column {open_col}; every node of a binary tree has exactly 2 children{hint}")
    left.append(items[0][1])
    right.append(items[1][1])
    words.append(None)
    return len(words) - 1


def _close_sst(where, open_col, items, leaf, left, right, words, labels) -> int:
    if not items or items[0][0] != "atom":
        raise _fail(where, f"SST node at column {open_col} does not start with a label")
    node_label = items[0][1]
    rest = items[1:]
    if len(rest) == 1 and rest[0][0] == "atom":
        return leaf(rest[0][1], node_label)
    if len(rest) != 2 or any(kind != "node" for kind, _, _ in rest):
        shape = ", ".join("word" if kind == "atom" else "subtree" for kind, _, _ in rest) or "nothing"
        raise _fail(where, f"SST node at column {open_col} holds {shape} after its label; expected one "
                           "word (a leaf) or exactly 2 subtrees")
    left.append(rest[0][1])
    right.append(rest[1][1])
    words.append(None)
    labels.append(node_label)
    return len(words) - 1


# ---------------------------------------------------------------------------------------------
# treebanks
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Treebank:
    """A list of trees with their class labels.

    ``labels`` are the class names, sorted (class id = position); ``targets`` ``(len,)`` int64 the
    class id of every tree (-1 for an unlabelled one).
    """

    trees: tuple[Tree, ...]
    labels: tuple[str, ...]
    source: str = ""

    @classmethod
    def from_trees(cls, trees: Iterable[Tree], labels: Sequence[str] | None = None, source: str = "") -> Treebank:
        """Collect ``trees``; the class names are their sorted distinct labels unless given."""
        trees = tuple(trees)
        if labels is None:
            labels = sorted({t.label for t in trees if t.label is not None})
        labels = tuple(labels)
        known = set(labels)
        for k, t in enumerate(trees):
            if t.label is not None and t.label not in known:
                raise DataError(f"{source or 'treebank'}: tree {k} has label {t.label!r}, not one of "
                                f"{', '.join(labels) or '(none)'}")
        return cls(trees, labels, source)

    def __len__(self) -> int:
        return len(self.trees)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return Treebank(self.trees[k], self.labels, self.source)
        return self.trees[k]

    def __iter__(self):
        return iter(self.trees)

    @property
    def targets(self) -> np.ndarray:
        """(len,) int64: each tree's label as its index in :attr:`labels`, -1 for an unlabelled tree."""
        index = {lbl: c for c, lbl in enumerate(self.labels)}
        return np.array([-1 if t.label is None else index[t.label] for t in self.trees], dtype=np.int64)

    def split(self, test_size: int) -> tuple[Treebank, Treebank]:
        """(train, test): the last ``test_size`` trees are the test set."""
        if not 0 < test_size < len(self.trees):
            raise ValueError(f"test_size must be between 1 and {len(self.trees) - 1}, got {test_size}")
        return self[: len(self.trees) - test_size], self[len(self.trees) - test_size:]


def parse_treebank(text: str, format: str = "labelled", source: str = "treebank") -> Treebank:
    """Parse a treebank's text (see the module docstring for the three formats)."""
    if not is_choice(format, FORMATS):
        raise ValueError(f"format {choice_refusal(format, FORMATS)}")
    trees = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{source} line {number}: "
        if format == "labelled":
            lead = len(line) - len(line.lstrip())
            parts = line.strip().split(None, 1)
            label = parts[0]
            if "(" in label or ")" in label:
                raise DataError(f"{where}expected 'LABEL TREE', but the line starts with "
                                f"{label!r} (no label before the tree)")
            if len(parts) == 1:
                raise DataError(f"{where}label {label!r} has no tree after it")
            rest = parts[1]
            offset = lead + line.strip().index(rest, len(label))
            trees.append(parse_tree(rest, label=label, where=where, column_offset=offset))
        else:
            trees.append(parse_tree(line, sst=format == "sst", where=where))
    if not trees:
        raise DataError(f"{source}: contains no trees")
    return Treebank.from_trees(trees, source=source)


def read_treebank(path: str | os.PathLike, format: str = "labelled") -> Treebank:
    """Read a UTF-8 treebank file (DataError naming the path for a missing, unreadable or malformed file)."""
    path = Path(path)
    check_readable_file(path, "a treebank text file")
    return parse_treebank(read_text_file(path), format, source=str(path))


def format_treebank(trees: Iterable[Tree], header: str = "") -> str:
    """The labelled-format text of ``trees`` (``LABEL TREE`` per line) after ``header`` lines as ``#`` comments."""
    lines = [f"# {h}".rstrip() for h in header.splitlines()] if header else []
    for k, t in enumerate(trees):
        if t.label is None:
            raise ValueError(f"tree {k} has no label; the labelled format needs one per tree")
        lines.append(f"{t.label} {t.to_sexpr()}")
    return "\n".join(lines) + "\n"


def write_treebank(path: str | os.PathLike, trees: Iterable[Tree], header: str = "") -> None:
    """Write ``trees`` in the labelled format, atomically (temp file + ``os.replace``)."""
    atomic_write_text(Path(path), format_treebank(trees, header))


# ---------------------------------------------------------------------------------------------
# vocabularies and batches
# ---------------------------------------------------------------------------------------------

class Vocabulary:
    """Words and their ids. With ``unk`` set, unknown words map to its id; otherwise they are errors."""

    def __init__(self, words: Iterable[str], unk: str | None = None) -> None:
        words = list(words)
        if unk is not None and unk not in words:
            words = [unk] + words
        if len(set(words)) != len(words):
            dupes = sorted(w for w, c in Counter(words).items() if c > 1)
            raise ValueError(f"vocabulary has duplicate word(s): {', '.join(map(repr, dupes[:5]))}")
        if not words:
            raise ValueError("a vocabulary needs at least one word")
        self.words = tuple(words)
        self.unk = unk
        self._index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def from_trees(cls, trees: Iterable[Tree], min_count: int = 1, unk: bool = False) -> Vocabulary:
        """The words of ``trees`` seen at least ``min_count`` times, sorted; ``unk=True`` adds
        :data:`UNK` (id 0) for every other word."""
        counts = Counter(w for t in trees for w in t.tokens)
        words = sorted(w for w, c in counts.items() if c >= min_count)
        if not words and not unk:
            raise DataError("no word occurs often enough to build a vocabulary"
                            f" (min_count={min_count})")
        return cls(words, UNK if unk else None)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self._index

    def __repr__(self) -> str:
        return f"Vocabulary({len(self.words)} words{', unk=' + repr(self.unk) if self.unk else ''})"

    def index(self, word: str, where: str = "") -> int:
        """The id of ``word`` (the ``unk`` id when unknown and there is one; DataError otherwise)."""
        i = self._index.get(word)
        if i is not None:
            return i
        if self.unk is not None:
            return self._index[self.unk]
        raise DataError(f"{where}unknown word {word!r}: not in the vocabulary of {len(self.words)} words "
                        "(build it with unk=True to map unknown words to <unk>)")

    def encode(self, tree: Tree, where: str = "") -> np.ndarray:
        """Word id of every node of ``tree`` in post-order, -1 for internal nodes (int64)."""
        out = np.full(len(tree), -1, dtype=np.int64)
        for i in range(len(tree)):
            if tree.is_leaf(i):
                out[i] = self.index(tree.word(i), where)
        return out


def _check_index(what: str, value: object, size: int, extent: str) -> int:
    """An index into ``size`` items as an int: ValueError for anything but an integer (a bool is not
    one, though Python indexes with it), IndexError for one outside ``0..size-1``, each one line
    ("node 7 out of range: tree 0 has 7 nodes")."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{what} must be an integer, got {given(value)}")
    if not 0 <= value < size:
        raise IndexError(f"{what} {value} out of range: {extent}")
    return int(value)


def _children_in_batch(trees: Sequence[Tree], offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The trees' own ``left`` and ``right`` children as batch-wide indices: tree b's shifted by
    ``offsets[b]``, -1 for a leaf."""
    shift = np.repeat(offsets[:-1], np.diff(offsets))
    own = (np.concatenate([np.asarray(getattr(t, name), dtype=np.int64) for t in trees]) for name in ("left", "right"))
    return tuple(np.where(children >= 0, children + shift, -1) for children in own)


@dataclass(frozen=True, eq=False)
class TreeBatch:
    """Trees of any shapes flattened into post-order arrays, one tree after another.

    ``offsets`` ``(B+1,)``: tree ``b`` owns nodes ``offsets[b]:offsets[b+1]`` (its root is the
    last). ``left``, ``right`` ``(N,)``: batch-wide indices of each node's children, -1 for
    leaves. ``word`` ``(N,)``: each leaf's word id, -1 for internal nodes. All int64.
    ``vocab_size`` is the size of the vocabulary the words were encoded with.
    """

    trees: tuple[Tree, ...]
    offsets: np.ndarray
    left: np.ndarray
    right: np.ndarray
    word: np.ndarray
    vocab_size: int

    def __post_init__(self) -> None:
        # The kernels index without bounds checks: a hand-made batch is checked here, so that a
        # bad one is a ValueError and never an out-of-bounds access.
        def ints(name: str) -> np.ndarray:
            a = np.asarray(getattr(self, name))
            if a.ndim != 1 or a.dtype.kind not in "iu":
                raise ValueError(f"TreeBatch.{name} must be a 1-D integer array, got {a.dtype} {a.shape}")
            a = np.ascontiguousarray(a, dtype=np.int64)
            a.flags.writeable = False
            object.__setattr__(self, name, a)
            return a

        offsets, left, right, word = ints("offsets"), ints("left"), ints("right"), ints("word")
        B, N = len(self.trees), int(offsets[-1]) if offsets.size else 0
        if offsets.shape != (B + 1,) or offsets[0] != 0 or np.any(np.diff(offsets) < 1):
            raise ValueError(f"TreeBatch.offsets must rise from 0 by at least 1 per tree ({B + 1} entries)")
        if not left.shape == right.shape == word.shape == (N,):
            raise ValueError(f"TreeBatch.left, right and word must have {N} entries (offsets[-1])")
        leaf = left < 0
        if np.any(leaf != (right < 0)) or np.any(leaf != (word >= 0)) or np.any(left < -1) or np.any(right < -1):
            raise ValueError("TreeBatch: a leaf has left = right = -1 and a word id; an internal node two "
                             "children and word -1")
        if np.any(word >= self.vocab_size):
            raise ValueError(f"TreeBatch: word id {int(word.max())} is out of range for a vocabulary of "
                             f"{self.vocab_size} words")
        start = np.repeat(offsets[:-1], np.diff(offsets))  # the first node of each node's tree
        node = np.arange(N)
        for child in (left, right):
            if np.any(~leaf & ((child < start) | (child >= node))):
                raise ValueError("TreeBatch: children must come before their parent, inside its tree")
        # the arrays are the trees' own (a trace names a node by them): sound arrays of another shape
        # made node(b, k) show another node, and the real root out of reach
        if not self.trees:  # (no arrays to compare: np.concatenate of none raised numpy's own error)
            return
        if not np.array_equal(np.diff(offsets), [len(t) if isinstance(t, Tree) else -1 for t in self.trees]):
            raise ValueError("TreeBatch.offsets must give each tree as many nodes as it has (len(trees[b]))")
        for name, child, own in zip(("left", "right"), (left, right), _children_in_batch(self.trees, offsets)):
            if not np.array_equal(child, own):
                raise ValueError(f"TreeBatch.{name} must be the trees' own children (trees[b].{name}, shifted by "
                                 "offsets[b])")

    @classmethod
    def from_trees(cls, trees: Iterable[Tree] | Tree, vocab: Vocabulary) -> TreeBatch:
        """Flatten and encode ``trees`` (DataError naming the tree for an unknown word)."""
        trees = (trees,) if isinstance(trees, Tree) else tuple(trees)
        if not trees:
            raise ValueError("a tree batch needs at least one tree")
        for k, t in enumerate(trees):
            if not isinstance(t, Tree):
                raise ValueError(f"tree {k} is a {type(t).__name__}, not a Tree")
        sizes = np.array([len(t) for t in trees], dtype=np.int64)
        offsets = np.zeros(len(trees) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        left, right = _children_in_batch(trees, offsets)
        word = np.concatenate([vocab.encode(t, f"tree {k}: ") for k, t in enumerate(trees)])
        for a in (offsets, left, right, word):
            a.flags.writeable = False
        return cls(trees, offsets, left, right, word, len(vocab))

    def __len__(self) -> int:
        """Number of trees."""
        return len(self.trees)

    @property
    def num_nodes(self) -> int:
        """N: the nodes of every tree in the batch (the rows of a trace's ``h``)."""
        return int(self.offsets[-1])

    @property
    def roots(self) -> np.ndarray:
        """Batch-wide index of every tree's root, ``(B,)``."""
        return self.offsets[1:] - 1

    def tree_index(self, b: int) -> int:
        """``b`` as the int index of one of the trees: ValueError for a non-integer (a bool too: True
        would read as tree 1), IndexError outside ``0..len-1`` (a negative index is refused, not
        counted from the end)."""
        return _check_index("tree", b, len(self.trees), f"the batch has {len(self.trees)} tree(s)")

    def node(self, b: int, i: int) -> int:
        """Batch-wide index of node ``i`` of tree ``b`` (both checked as :meth:`tree_index` checks ``b``)."""
        b = self.tree_index(b)
        n = len(self.trees[b])
        return int(self.offsets[b]) + _check_index("node", i, n, f"tree {b} has {n} nodes")


# ---------------------------------------------------------------------------------------------
# the shipped treebank: sentiment with negation, intensifiers and contrast
# ---------------------------------------------------------------------------------------------

POSITIVE = ("good", "great", "fun", "clever", "lovely")
NEGATIVE = ("bad", "dull", "awful", "boring", "clumsy")
INTENSIFIERS = ("very", "really", "truly")  # keep the polarity of what they modify
NEGATORS = ("not", "never")  # flip it
DETERMINERS = ("the", "this")
NOUNS = ("movie", "film", "plot", "cast", "ending", "music")
VERBS = ("is", "was", "seems")


def _adjective_phrase(rng: np.random.Generator) -> tuple[Nested, int]:
    """AP := ADJ | (INTENSIFIER AP) | (NEGATOR AP); polarity +1 / -1."""
    polarity = 1 if rng.random() < 0.5 else -1
    phrase: Nested = str(rng.choice(POSITIVE if polarity > 0 else NEGATIVE))
    for _ in range(int(rng.choice(4, p=[0.25, 0.35, 0.25, 0.15]))):
        if rng.random() < 0.55:
            phrase, polarity = (str(rng.choice(NEGATORS)), phrase), -polarity
        else:
            phrase = (str(rng.choice(INTENSIFIERS)), phrase)
    return phrase, polarity


def _sentence(rng: np.random.Generator) -> tuple[Nested, int]:
    """S := ((DET NOUN) (VERB AP)); the polarity of AP."""
    ap, polarity = _adjective_phrase(rng)
    return ((str(rng.choice(DETERMINERS)), str(rng.choice(NOUNS))), (str(rng.choice(VERBS)), ap)), polarity


def generate_sentiment_trees(n: int, seed: int) -> list[Tree]:
    """``n`` distinct labelled trees ("pos"/"neg") of a tiny sentiment grammar where structure decides.

    Phrases and their polarity::

        AP := ADJ                      polarity of the adjective (good, great, ... / bad, dull, ...)
            | (INTENSIFIER AP)         same polarity (very, really, truly)
            | (NEGATOR AP)             flipped (not, never)
        S  := ((DET NOUN) (VERB AP))   polarity of AP
        tree := AP | S | ((AP but) AP) | ((S but) S)    "but": the polarity of the right part

    A negator flips only the phrase it is applied to and "but" selects its right part, so the
    label depends on the parity of negations along the path and on word order: ``((good but)
    dull)`` is negative and ``((dull but) good)`` positive, the same bag of words. Mixture: 30%
    AP, 35% S, 20% AP contrasts, 15% S contrasts; the two parts of a contrast differ in polarity
    four times out of five. Deterministic in ``seed``.
    """
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    trees: list[Tree] = []
    while len(trees) < n:
        kind = rng.choice(4, p=[0.30, 0.35, 0.20, 0.15])
        make = _adjective_phrase if kind in (0, 2) else _sentence
        nested, polarity = make(rng)
        if kind >= 2:  # a contrast: the right part decides
            differ = rng.random() < 0.8
            for _ in range(20):
                right, right_polarity = make(rng)
                if (right_polarity != polarity) == differ:
                    break
            nested, polarity = ((nested, "but"), right), right_polarity
        tree = Tree.from_nested(nested, "pos" if polarity > 0 else "neg")
        text = tree.to_sexpr()
        if text not in seen:
            seen.add(text)
            trees.append(tree)
    return trees


SAMPLE_HEADER = f"""\
rnnlab sample treebank: sentiment with negation, intensifiers and contrast ({SAMPLE_SIZE} trees).
Format: one tree per line, 'LABEL TREE'; LABEL is pos or neg, TREE a binary s-expression:
a token is a leaf, (A B) a node with children A and B. Lines starting with # are comments.
Labels follow the grammar: (not X) / (never X) flip X's polarity, (very X) / (really X) /
(truly X) keep it, ((X but) Y) takes Y's, ((the movie) (is X)) is X's. The same words can carry
either label, e.g. ((good but) dull) is neg and ((dull but) good) is pos: structure decides.
The last {SAMPLE_TEST_SIZE} trees are the test set. Generated (do not edit) by
rnnlab.data.trees.write_sample_treebank(path), seed {SAMPLE_SEED}."""


def write_sample_treebank(path: str | os.PathLike = SAMPLE_TREEBANK) -> None:
    """(Re)write the shipped treebank deterministically (:func:`generate_sentiment_trees`, seed :data:`SAMPLE_SEED`)."""
    write_treebank(path, generate_sentiment_trees(SAMPLE_SIZE, SAMPLE_SEED), SAMPLE_HEADER)


def load_sample_treebank() -> tuple[Treebank, Treebank]:
    """The shipped treebank as (train, test): the last :data:`SAMPLE_TEST_SIZE` trees are the test set."""
    return read_treebank(SAMPLE_TREEBANK).split(SAMPLE_TEST_SIZE)


if __name__ == "__main__":  # python -m rnnlab.data.trees [PATH]
    import sys

    write_sample_treebank(sys.argv[1] if len(sys.argv) > 1 else SAMPLE_TREEBANK)
