"""Recursive (tree) networks: the s-expression parser and treebank format, vocabularies and batches,
the numba kernels against the recursive float64 reference, the layers, the gradient checks and
training on the shipped treebank."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import rel_err
from rnnlab import gradcheck
from rnnlab.data import trees as tr
from rnnlab.data.trees import Tree, TreeBatch, Treebank, Vocabulary, parse_tree, parse_treebank, read_treebank
from rnnlab.errors import DataError, UserError
from rnnlab.kernels.tree import tree_backward, tree_forward
from rnnlab.layers.tree import RecursiveNet, TreeClassifier, TreeTrace
from rnnlab.train.trees import TreeTrainer, train_tree_classifier
from rnnlab.reference import tree as ref

SHAPES = ("((the cat) (sat down))", "cat", "(the (cat (on (the mat))))", "(((big cat) sat) down)", "(a b)")


# ---------------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", SHAPES + ("((a b) ((c d) (e (f g))))", "(x\t(y   z))"))
def test_round_trip(text):
    tree = parse_tree(text)
    assert tree.to_sexpr() == " ".join(text.replace("\t", " ").split())
    assert parse_tree(tree.to_sexpr()) == tree


def test_post_order_numbering_spans_and_phrases():
    t = parse_tree("((the cat) (sat down))")
    assert t.left == (-1, -1, 0, -1, -1, 3, 2)
    assert t.right == (-1, -1, 1, -1, -1, 4, 5)
    assert [t.word(i) for i in range(len(t))] == ["the", "cat", None, "sat", "down", None, None]
    assert t.root == 6 and t.children(6) == (2, 5) and t.children(0) is None
    assert [t.phrase(i) for i in (2, 5, 6)] == ["the cat", "sat down", "the cat sat down"]
    assert t.tokens == ("the", "cat", "sat", "down")
    assert t.parent(3) == 5 and t.parent(6) is None
    assert t.height() == 2 and t.height(0) == 0
    assert Tree.from_nested((("the", "cat"), ("sat", "down"))) == t
    assert parse_tree("((the cat) (sat down))", label="x") != t  # the label is part of the tree


def test_tree_numbering_must_be_post_order():
    # ((a b) c) numbered a, b, c, (a b), root: topological but not post-order
    with pytest.raises(ValueError, match="not a post-order numbering"):
        Tree([-1, -1, -1, 0, 3], [-1, -1, -1, 1, 2], ["a", "b", "c", None, None])
    with pytest.raises(ValueError, match="covers nodes 1..3, not all 4"):
        Tree([-1, -1, -1, 1], [-1, -1, -1, 2], ["a", "b", "c", None])  # a forest: leaf a has no parent
    assert Tree([-1, -1, 0, -1, 2], [-1, -1, 1, -1, 3], ["a", "b", None, "c", None]) == parse_tree("((a b) c)")


def test_a_single_token_is_a_one_leaf_tree():
    t = parse_tree("  word ")
    assert len(t) == 1 and t.is_leaf(0) and t.word(0) == "word" and t.to_sexpr() == "word"


def test_labelled_treebank_format_comments_and_blank_lines():
    bank = parse_treebank("# a comment\n\npos (not bad)\n  # indented comment\nneg  good\npos ((a b) c)\n")
    assert bank.labels == ("neg", "pos")
    assert [t.label for t in bank] == ["pos", "neg", "pos"]
    assert [t.to_sexpr() for t in bank] == ["(not bad)", "good", "((a b) c)"]
    assert bank.targets.tolist() == [1, 0, 1]
    assert tr.format_treebank(bank.trees) == "pos (not bad)\nneg good\npos ((a b) c)\n"
    assert parse_treebank(tr.format_treebank(bank.trees)).trees == bank.trees


def test_plain_format_has_no_labels():
    bank = parse_treebank("(a b)\nc\n", format="plain")
    assert [t.label for t in bank] == [None, None] and bank.labels == ()
    assert bank.targets.tolist() == [-1, -1]


def test_sst_form_keeps_every_node_label():
    t = parse_tree("(3 (2 the) (4 (1 cat) (4 sat)))", sst=True)
    assert t.label == "3"
    assert t.node_labels == ("2", "1", "4", "4", "3")  # post-order: the, cat, sat, (cat sat), root
    assert t.tokens == ("the", "cat", "sat")
    assert t.to_sexpr() == "(3 (2 the) (4 (1 cat) (4 sat)))"
    bank = parse_treebank("(0 (0 not) (1 good))\n(1 (1 fine) (1 film))\n", format="sst")
    assert bank.labels == ("0", "1") and bank.targets.tolist() == [0, 1]


@pytest.mark.parametrize("text, message", [
    ("", "empty tree"),
    ("  \t ", "empty tree"),
    ("(a b", "unbalanced parentheses: '(' at column 1 is never closed"),
    ("(a (b c)", "unbalanced parentheses: '(' at column 1 is never closed"),
    ("(a (b c", "unbalanced parentheses: '(' at column 4 is never closed"),
    ("(a b))", "unbalanced parentheses: ')' at column 6 has no matching '('"),
    (")", "unbalanced parentheses: ')' at column 1 has no matching '('"),
    ("a b", "unexpected 'b' at column 3 after the end of the tree"),
    ("(a b) (c d)", "unexpected '(' at column 7 after the end of the tree"),
    ("(a)", "a node with 1 child at column 1; every node of a binary tree has exactly 2 children"),
    ("(x (a b c))", "a node with 3 children at column 4"),
    ("(a ())", "an empty node '()' at column 4"),
    # words run together by a comma: one word, not two ("(good,bad)" said only "1 child")
    ("(good,bad)", "a node with 1 child at column 1; every node of a binary tree has exactly 2 children (blanks "
                   "separate words: 'good,bad' is one word)"),
])
def test_malformed_trees_name_the_problem_and_column(text, message):
    with pytest.raises(DataError) as info:
        parse_tree(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, UserError)


@pytest.mark.parametrize("text, message", [
    ("((2 a) (3 b))", "SST node at column 1 does not start with a label"),
    ("(2 (3 a))", "SST node at column 1 holds subtree after its label"),
    ("(2 a b)", "SST node at column 1 holds word, word after its label"),
    ("(1 (2 a) (2 b) (2 c))", "expected one word (a leaf) or exactly 2 subtrees"),
    ("word", "SST trees start with '(', got 'word' at column 1"),
])
def test_malformed_sst_trees(text, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_tree(text, sst=True)


@pytest.mark.parametrize("text, message", [
    ("pos (a b)\nneg (a b c)\n", "line 2: a node with 3 children at column 5;"),
    ("pos (a b)\n\n  neg   (a (b", "line 3: unbalanced parentheses: '(' at column 12 is never closed"),
    ("(a b)\n", "line 1: expected 'LABEL TREE', but the line starts with '(a' (no label before the tree)"),
    ("pos\n", "line 1: label 'pos' has no tree after it"),
    ("# only a comment\n\n", "contains no trees"),
])
def test_treebank_errors_name_the_line(text, message):
    with pytest.raises(DataError) as info:
        parse_treebank(text, source="bank.txt")
    assert str(info.value).startswith("bank.txt")
    assert message in str(info.value)


def test_read_treebank_file_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_treebank(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="is a directory"):
        read_treebank(tmp_path)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"pos (caf\xe9 ok)\n")
    with pytest.raises(DataError, match=r"not valid UTF-8 \(byte 8: 0xe9\); if it is Latin-1"):
        read_treebank(bad)
    bom = tmp_path / "bom.txt"  # as Windows' Notepad saves UTF-8: the mark is not part of the first label
    bom.write_bytes(b"\xef\xbb\xbfpos (a b)\r\nneg c\r\n")
    assert [t.label for t in read_treebank(bom).trees] == ["pos", "neg"]
    with pytest.raises(ValueError, match="format must be one of"):
        parse_treebank("pos a", format="json")


def test_write_treebank_is_read_back(tmp_path):
    trees = [parse_tree("(not (very good))", label="neg"), parse_tree("fine", label="pos")]
    path = tmp_path / "bank.txt"
    tr.write_treebank(path, trees, header="two trees\nfor a test")
    assert path.read_text().startswith("# two trees\n# for a test\n")
    assert read_treebank(path).trees == tuple(trees)
    assert [p.name for p in tmp_path.iterdir()] == ["bank.txt"]  # no temp file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # as open() makes it, not mkstemp's 0600
    with pytest.raises(ValueError, match="tree 0 has no label"):
        tr.format_treebank([parse_tree("a")])


# ---------------------------------------------------------------------------------------------
# vocabularies and batches
# ---------------------------------------------------------------------------------------------

def test_vocabulary_from_trees_and_unknown_words():
    trees = [parse_tree("((the cat) (sat down))"), parse_tree("(the dog)")]
    vocab = Vocabulary.from_trees(trees)
    assert vocab.words == ("cat", "dog", "down", "sat", "the") and vocab.unk is None
    assert vocab.encode(trees[1]).tolist() == [4, 1, -1]
    with pytest.raises(DataError, match="unknown word 'bird': not in the vocabulary of 5 words"):
        vocab.encode(parse_tree("(the bird)"))
    with_unk = Vocabulary.from_trees(trees, min_count=2, unk=True)
    assert with_unk.words == (tr.UNK, "the")
    assert with_unk.encode(parse_tree("(the bird)")).tolist() == [1, 0, -1]
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary(["a", "b", "a"])


def test_tree_batch_flattens_trees_of_different_shapes():
    trees = [parse_tree(s) for s in SHAPES]
    vocab = Vocabulary.from_trees(trees)
    batch = TreeBatch.from_trees(trees, vocab)
    sizes = [len(t) for t in trees]
    assert batch.offsets.tolist() == np.concatenate([[0], np.cumsum(sizes)]).tolist()
    assert batch.roots.tolist() == (np.cumsum(sizes) - 1).tolist()
    for b, t in enumerate(trees):
        for i in range(len(t)):
            n = batch.node(b, i)
            if t.is_leaf(i):
                assert batch.left[n] == batch.right[n] == -1 and vocab.words[batch.word[n]] == t.word(i)
            else:
                assert (batch.left[n], batch.right[n]) == (batch.node(b, t.left[i]), batch.node(b, t.right[i]))
                assert batch.word[n] == -1
    with pytest.raises(DataError, match="tree 1: unknown word 'bird'"):
        TreeBatch.from_trees([trees[0], parse_tree("(the bird)")], vocab)


def test_hand_made_tree_batch_is_validated():
    tree = parse_tree("(a b)")
    ok = dict(trees=(tree,), offsets=np.array([0, 3]), left=np.array([-1, -1, 0]), right=np.array([-1, -1, 1]),
              word=np.array([0, 1, -1]), vocab_size=2)
    assert TreeBatch(**ok).num_nodes == 3
    for change, message in [
        (dict(word=np.array([0, 2, -1])), "word id 2 is out of range for a vocabulary of 2 words"),
        (dict(left=np.array([-1, -1, 2])), "children must come before their parent"),
        (dict(right=np.array([-1, -1, 7])), "children must come before their parent"),
        (dict(word=np.array([0, 1, 1])), "a leaf has left = right = -1 and a word id"),
        (dict(offsets=np.array([0, 2])), "must have 2 entries"),
        (dict(offsets=np.array([1, 3])), "offsets must rise from 0"),
        (dict(left=np.array([-1.0, -1.0, 0.0])), "TreeBatch.left must be a 1-D integer array"),
        # sound arrays of another tree: the trace named a node 2 of 4 the root, the root out of reach
        (dict(offsets=np.array([0, 4]), left=np.array([-1, -1, 0, 2]), right=np.array([-1, -1, 1, 2]),
              word=np.array([0, 1, -1, -1])), "offsets must give each tree as many nodes as it has"),
        (dict(left=np.array([-1, -1, 1]), right=np.array([-1, -1, 0])), "TreeBatch.left must be the trees' own"),
    ]:
        with pytest.raises(ValueError, match=message):
            TreeBatch(**{**ok, **change})


# ---------------------------------------------------------------------------------------------
# the shipped treebank
# ---------------------------------------------------------------------------------------------

def test_shipped_treebank_is_what_the_generator_writes(tmp_path):
    path = tmp_path / "treebank.txt"
    tr.write_sample_treebank(path)
    assert path.read_bytes() == tr.SAMPLE_TREEBANK.read_bytes()


def test_shipped_treebank_split_labels_and_vocabulary():
    train, test = tr.load_sample_treebank()
    assert (len(train), len(test)) == (tr.SAMPLE_SIZE - tr.SAMPLE_TEST_SIZE, tr.SAMPLE_TEST_SIZE)
    assert train.labels == test.labels == ("neg", "pos")
    for part in (train, test):
        share = part.targets.mean()
        assert 0.35 < share < 0.65
    texts = [t.to_sexpr() for t in train.trees + test.trees]
    assert len(set(texts)) == len(texts)  # no tree is in both parts
    assert set(Vocabulary.from_trees(test.trees).words) <= set(Vocabulary.from_trees(train.trees).words)


def test_shipped_treebank_labels_follow_structure_not_words():
    train, test = tr.load_sample_treebank()
    labels_by_bag: dict[tuple[str, ...], set[str]] = {}
    for t in train.trees + test.trees:
        labels_by_bag.setdefault(tuple(sorted(t.tokens)), set()).add(t.label)
    assert any(len(v) == 2 for v in labels_by_bag.values())  # the same words with both labels
    negated = [t for t in train.trees if t.tokens[0] in tr.NEGATORS and len(t.tokens) == 2]
    for t in negated:  # (not ADJ) has the opposite label of ADJ
        assert (t.label == "pos") == (t.tokens[1] in tr.NEGATIVE)


def test_generator_grammar_on_examples():
    trees = tr.generate_sentiment_trees(200, seed=11)
    assert len({t.to_sexpr() for t in trees}) == 200

    def polarity(t: Tree, i: int) -> int:  # the grammar's semantics, computed independently
        if t.is_leaf(i):
            w = t.word(i)
            return 1 if w in tr.POSITIVE else -1 if w in tr.NEGATIVE else 0
        left, right = t.children(i)
        if t.is_leaf(left) and t.word(left) in tr.NEGATORS:
            return -polarity(t, right)
        if t.is_leaf(right) and t.word(right) == "but":
            return 0
        if not t.is_leaf(left) and t.word(t.right[left]) == "but":
            return polarity(t, right)
        return polarity(t, left) or polarity(t, right)

    for t in trees:
        assert t.label == ("pos" if polarity(t, t.root) > 0 else "neg"), t


# ---------------------------------------------------------------------------------------------
# kernels and layers against the reference
# ---------------------------------------------------------------------------------------------

def _problem(texts, H, dtype, seed=0):
    trees = [parse_tree(s) for s in texts]
    vocab = Vocabulary.from_trees(trees)
    net = RecursiveNet(len(vocab), H, dtype=dtype, seed=seed)
    batch = TreeBatch.from_trees(trees, vocab)
    rng = np.random.default_rng(seed + 1)
    d_root = rng.standard_normal((len(trees), H)).astype(dtype)
    d_nodes = rng.standard_normal((batch.num_nodes, H)).astype(dtype)
    return trees, vocab, net, batch, d_root, d_nodes


def _reference(net, vocab, trees, batch, d_root, d_nodes):
    params = net.state_dict()
    hs, dhs, grads = [], [], {k: 0.0 for k in ref.PARAM_NAMES}
    for b, t in enumerate(trees):
        word = vocab.encode(t)
        h = ref.forward(params, t.left, t.right, word)
        d = np.asarray(d_nodes[batch.offsets[b]: batch.offsets[b + 1]], np.float64).copy()
        d[-1] += d_root[b]  # the root is the last node
        r = ref.backward(params, t.left, t.right, word, h, d)
        hs.append(h)
        dhs.append(r["dh"])
        for k in ref.PARAM_NAMES:
            grads[k] = grads[k] + r[k]
    return np.concatenate(hs), np.concatenate(dhs), grads


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 2e-5)])
def test_kernels_match_reference(dtype, tol):
    trees, vocab, net, batch, d_root, d_nodes = _problem(SHAPES, 5, dtype)
    roots, trace = net.forward(batch)
    grads = net.backward(trace, d_root, d_nodes)
    h, dh, rgrads = _reference(net, vocab, trees, batch, d_root, d_nodes)
    assert roots.dtype == trace.h.dtype == np.dtype(dtype)
    assert rel_err(trace.h, h) < tol
    assert rel_err(roots, h[batch.roots]) < tol
    assert rel_err(trace.dh, dh) < tol
    assert list(grads) == list(net.state_dict())
    for k in ref.PARAM_NAMES:
        assert grads[k].dtype == np.dtype(dtype)
        assert rel_err(grads[k], rgrads[k]) < tol, k


def test_leaves_are_embedding_rows_and_unused_words_get_no_gradient():
    trees, vocab, net, batch, d_root, d_nodes = _problem(("(the cat)", "dog"), 4, "float64")
    vocab_big = Vocabulary(list(vocab.words) + ["unused"])
    net = RecursiveNet(len(vocab_big), 4, dtype="float64", seed=0)
    batch = TreeBatch.from_trees(trees, vocab_big)
    _, trace = net.forward(batch)
    E = net.parameters()["embedding.weight"]
    assert np.array_equal(trace.vectors(0)[0], E[vocab_big.index("the")])
    assert np.array_equal(trace.roots[1], E[vocab_big.index("dog")])  # a one-word tree's root is its leaf
    grads = net.backward(trace, d_root)
    assert not grads["embedding.weight"][vocab_big.index("unused")].any()
    assert np.array_equal(grads["embedding.weight"][vocab_big.index("dog")], d_root[1])


def test_batch_of_one_word_trees_has_zero_composition_gradient():
    _, _, net, batch, d_root, _ = _problem(("a", "b", "a"), 3, "float64")
    _, trace = net.forward(batch)
    grads = net.backward(trace, d_root)
    assert not grads["compose.weight"].any() and not grads["compose.bias"].any()
    assert np.allclose(grads["embedding.weight"][0], d_root[0] + d_root[2])


def test_threaded_kernels_equal_serial():
    rng = np.random.default_rng(3)
    texts = [random_tree_text(rng, int(rng.integers(1, 12))) for _ in range(80)]  # big enough to split
    trees, vocab, net, batch, d_root, d_nodes = _problem(texts, 16, "float64")
    p = net.parameters()
    args = (p["embedding.weight"], p["compose.weight"], p["compose.bias"], batch.left, batch.right, batch.word,
            batch.offsets)
    h1, h2 = tree_forward(*args, 1), tree_forward(*args, 2)
    assert np.array_equal(h1, h2)
    d = d_nodes.copy()
    d[batch.roots] += d_root
    b1 = tree_backward(p["compose.weight"], h1, batch.left, batch.right, batch.word, batch.offsets, d, len(vocab), 1)
    b2 = tree_backward(p["compose.weight"], h1, batch.left, batch.right, batch.word, batch.offsets, d, len(vocab), 2)
    for x, y in zip(b1, b2):
        assert rel_err(x, y) < 1e-13
    h, dh, _ = _reference(net, vocab, trees, batch, d_root, d_nodes)
    assert rel_err(h1, h) < 1e-12 and rel_err(b1[3], dh) < 1e-12


def random_tree_text(rng, n_leaves, words=("a", "b", "c", "d", "e")):
    """A random binary tree over ``n_leaves`` random words, as an s-expression."""
    parts = [str(rng.choice(words)) for _ in range(n_leaves)]
    while len(parts) > 1:
        k = int(rng.integers(len(parts) - 1))
        parts[k: k + 2] = [f"({parts[k]} {parts[k + 1]})"]
    return parts[0]


# ---------------------------------------------------------------------------------------------
# the layers' API
# ---------------------------------------------------------------------------------------------

def test_state_dict_names_shapes_and_round_trip():
    net = RecursiveNet(7, 4, seed=0)
    sd = net.state_dict()
    assert {k: v.shape for k, v in sd.items()} == {
        "embedding.weight": (7, 4), "compose.weight": (4, 8), "compose.bias": (4,)}
    assert all(v.dtype == np.float32 for v in sd.values())
    other = RecursiveNet(7, 4, seed=1)
    other.load_state_dict(sd)
    assert all(np.array_equal(other.state_dict()[k], sd[k]) for k in sd)
    sd["compose.bias"][0] = 99.0  # a copy: the net is unchanged
    assert net.parameters()["compose.bias"][0] != 99.0
    with pytest.raises(ValueError, match="missing key"):
        other.load_state_dict({"embedding.weight": sd["embedding.weight"]})
    with pytest.raises(ValueError, match=r"'compose.weight' has shape \(4, 4\), expected \(4, 8\)"):
        other.load_state_dict({**sd, "compose.weight": np.zeros((4, 4))})
    with pytest.raises(ValueError, match="NaN or Inf"):
        other.load_state_dict({**sd, "compose.bias": np.full(4, np.nan)})


def test_classifier_state_dict_names():
    vocab = Vocabulary(["a", "b"])
    model = TreeClassifier(vocab, ("neg", "pos"), 3, seed=0)
    assert list(model.state_dict()) == ["embedding.weight", "compose.weight", "compose.bias",
                                        "readout.weight", "readout.bias"]
    assert model.state_dict()["readout.weight"].shape == (2, 3)
    clone = TreeClassifier(vocab, ("neg", "pos"), 3, seed=5)
    clone.load_state_dict(model.state_dict())
    tree = parse_tree("(a b)")
    assert np.array_equal(clone.forward([tree])[0], model.forward([tree])[0])


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        RecursiveNet(3, 0)
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        RecursiveNet(3, 2, dtype="int8")
    trees, vocab, net, batch, d_root, _ = _problem(SHAPES, 3, "float64")
    with pytest.raises(ValueError, match="trees must be a TreeBatch"):
        net.forward(trees)
    small = RecursiveNet(len(vocab) - 1, 3, dtype="float64")
    with pytest.raises(DataError, match=f"mismatched vocabularies: .* {len(vocab)} words, but the embedding "
                                        f"has {len(vocab) - 1} rows"):
        small.forward(batch)
    _, trace = net.forward(batch)
    with pytest.raises(ValueError, match=r"d_root has shape \(4, 3\), expected \(5, 3\)"):
        net.backward(trace, d_root[:4])
    with pytest.raises(ValueError, match="d_root has dtype float32, but the network is float64"):
        net.backward(trace, d_root.astype(np.float32))
    with pytest.raises(ValueError, match="trace comes from another RecursiveNet"):
        small.backward(trace, d_root)
    model = TreeClassifier(vocab, ("neg", "pos"), 3)
    with pytest.raises(DataError, match="tree 0 has label 'meh', not one of the classes neg, pos"):
        model.loss([parse_tree("cat", label="meh")])
    with pytest.raises(DataError, match="tree 0 has no label"):
        model.loss([parse_tree("cat")])
    with pytest.raises(ValueError, match="targets must be 1 integer class ids, got dtype float64"):
        model.loss([parse_tree("cat")], [0.7])  # not read as class 0
    with pytest.raises(ValueError, match=r"targets must be 1 class ids in 0\.\.1"):
        model.loss([parse_tree("cat")], [2])
    # a RecursiveNet's trace (its own, or its net's) has no readout: it said "another TreeClassifier's"
    for owner in (net, model.net):
        _, foreign = owner.forward(model.batch([parse_tree("(a b)")]) if owner is model.net else batch)
        with pytest.raises(ValueError, match=r"^trace must come from this TreeClassifier's own forward\(\): this "
                                             r"one is a RecursiveNet's, without the readout$"):
            model.backward(foreign)


def test_trace_steps_node_by_node():
    trees, vocab, net, batch, d_root, _ = _problem(SHAPES, 3, "float64")
    _, trace = net.forward(batch)
    assert isinstance(trace, TreeTrace) and not trace.has_gradients and trace.dh is None
    node = trace.node(0, 5)
    assert node.children == (3, 4) and node.phrase == "sat down" and node.word is None and node.dh is None
    assert np.array_equal(node.h, trace.h[batch.node(0, 5)])
    with pytest.raises(ValueError, match="no gradients"):
        trace.gradients(0)
    net.backward(trace, d_root)
    assert trace.has_gradients
    leaf = trace.node(2, 0)
    assert leaf.word == "the" and leaf.children is None
    assert np.array_equal(trace.gradients(2)[0], leaf.dh)
    assert np.array_equal(trace.node(1, 0).dh, d_root[1])  # a one-node tree: only the root's gradient
    with pytest.raises(IndexError, match="node 7 out of range: tree 0 has 7 nodes"):
        trace.node(0, 7)
    with pytest.raises(ValueError):
        trace.h[0, 0] = 1.0  # read-only


@pytest.mark.parametrize("call", ["tree", "vectors", "gradients", "node"])
def test_every_trace_index_helper_checks_its_index_alike(call):
    """``trace.vectors(True)`` was numpy's "only 0-dimensional arrays..." and ``trace.tree(-1)`` the last
    tree while ``trace.vectors(-1)`` was refused: each helper now refuses a bool or a non-integer
    (ValueError) and a negative or too large index (IndexError), naming the range."""
    trees, vocab, net, batch, d_root, _ = _problem(SHAPES, 3, "float64")
    _, trace = net.forward(batch)
    net.backward(trace, d_root)

    def at(b):
        return getattr(trace, call)(b, 0) if call == "node" else getattr(trace, call)(b)

    for bad, shown in ((True, "True"), (np.bool_(False), "False"), (1.0, "1.0"), ("0", "'0'"), (None, "None")):
        with pytest.raises(ValueError) as info:
            at(bad)
        assert str(info.value) == f"tree must be an integer, got {shown}"  # (numpy's bool as written: not np.False_)
    for bad in (-1, -len(SHAPES), len(SHAPES)):
        with pytest.raises(IndexError, match=rf"^tree {bad} out of range: the batch has {len(SHAPES)} tree\(s\)$"):
            at(bad)
    first, last = at(np.int64(0)), at(len(SHAPES) - 1)
    assert first is not None and last is not None
    if call == "node":
        assert type(first.tree) is int and type(first.index) is int  # numpy's integers, held as ints
        for bad in (True, 0.0):
            with pytest.raises(ValueError, match="^node must be an integer"):
                trace.node(0, bad)
        with pytest.raises(IndexError, match=r"^node -1 out of range: tree 0 has 7 nodes$"):
            trace.node(0, -1)


def test_recursive_net_and_classifier_refuse_parameters_too_large_before_drawing(monkeypatch):
    """``RecursiveNet(10**9, 10**6)`` was numpy's MemoryError (7.11 PiB of float64: the weights were drawn
    in float64 whatever the dtype); the classifier names itself, not the RecursiveNet inside it."""
    from rnnlab.layers import _params

    vocab = Vocabulary(["a", "b", "c"])
    need = 4 * (3 * 5 + 5 * 10 + 5 + 2 * 5 + 2)  # embedding, composition, readout; float32
    monkeypatch.setattr(_params, "physical_memory", lambda: 2 * need)
    assert TreeClassifier(vocab, ["x", "y"], 5).net.num_parameters * 4 == need - 4 * 12
    monkeypatch.setattr(_params, "physical_memory", lambda: 2 * need - 2)
    with pytest.raises(ValueError, match=r"^TreeClassifier\(vocab=3 words, labels=2 classes, hidden_size=5\): its 82 "
                                         r"parameters need about 328 bytes \(float32\), more than half of this "
                                         r"machine's 654 bytes; make the vocabulary, the labels or hidden_size "
                                         r"smaller$"):
        TreeClassifier(vocab, ["x", "y"], 5)
    monkeypatch.setattr(_params, "physical_memory", lambda: 2 * (need - 4 * 12) - 2)
    with pytest.raises(ValueError, match=r"^RecursiveNet\(3, 5\): its 70 parameters .* make vocab_size or "
                                         r"hidden_size smaller$"):
        RecursiveNet(3, 5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_parameters_are_drawn_into_the_dtype_with_the_numbers_of_a_float64_draw(dtype, monkeypatch):
    """Drawn in chunks straight into the dtype (no float64 temporary of the embedding): the values
    are bit for bit those of the float64 draw rounded, as before, whatever the chunk size."""
    from rnnlab.layers import _params

    monkeypatch.setattr(_params, "DRAW_CHUNK", 7)  # the embedding (11, 5) spans many chunks
    clf = TreeClassifier(Vocabulary(list("abcdefghijk")), ["x", "y", "z"], 5, dtype=dtype, seed=3)
    rng = np.random.default_rng(3)
    bound = 1 / np.sqrt(10)
    expected = {"embedding.weight": rng.standard_normal((11, 5)), "compose.weight": rng.uniform(-bound, bound, (5, 10)),
                "compose.bias": rng.uniform(-bound, bound, 5)}
    rng = np.random.default_rng([3, 0x7265_6164])
    expected.update({"readout.weight": rng.uniform(-1 / np.sqrt(5), 1 / np.sqrt(5), (3, 5)),
                     "readout.bias": rng.uniform(-1 / np.sqrt(5), 1 / np.sqrt(5), 3)})
    for name, value in clf.state_dict().items():
        assert value.dtype == dtype and value.tobytes() == expected[name].astype(dtype).tobytes(), name


def test_backward_uses_the_weights_forward_saw():
    trees, vocab, net, batch, d_root, d_nodes = _problem(SHAPES, 3, "float64")
    _, trace = net.forward(batch)
    expected = net.backward(trace, d_root, d_nodes)
    net.parameters()["compose.weight"] += 1.0  # e.g. an optimizer step in between
    again = net.backward(trace, d_root, d_nodes)
    assert all(np.array_equal(expected[k], again[k]) for k in expected)


# ---------------------------------------------------------------------------------------------
# gradient checks and training
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["recursive_net", "tree_classifier"])
def test_registered_gradient_checks_pass(name):
    assert "rnnlab.checks.tree" in gradcheck.CHECK_MODULES
    result = gradcheck.run_checks([name])[0]
    assert result.ok and result.max_rel_err < gradcheck.TOLERANCE, result
    expected = {"embedding.weight", "compose.weight", "compose.bias"}
    if name == "tree_classifier":
        expected |= {"readout.weight", "readout.bias"}
    assert set(result.errors) == expected


def test_broken_gradient_is_caught(monkeypatch):
    original = RecursiveNet.backward

    def broken(self, *args, **kwargs):
        grads = original(self, *args, **kwargs)
        grads["compose.weight"] = grads["compose.weight"] * 1.001
        return grads

    monkeypatch.setattr(RecursiveNet, "backward", broken)
    result = gradcheck.CHECKS["recursive_net"]()
    assert not result.ok and result.worst == "compose.weight"


def test_training_on_the_shipped_treebank_learns_the_structure():
    train, test = tr.load_sample_treebank()
    model, history = train_tree_classifier(train, test, hidden_size=16, epochs=15, seed=0)
    assert history[-1].train_accuracy >= 0.95
    assert history[-1].test_accuracy >= 0.95  # a bag of words stays near 0.5-0.7 (benchmarks/tree_treebank.py)
    assert history[-1].loss < history[0].loss
    assert model.predict([parse_tree("((good but) dull)"), parse_tree("((dull but) good)")]) == ["neg", "pos"]


def test_trainer_rejects_bad_settings_and_unknown_words():
    vocab = Vocabulary(["a", "b"])
    model = TreeClassifier(vocab, ("neg", "pos"), 3)
    bank = Treebank.from_trees([parse_tree("(a b)", label="pos")])
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TreeTrainer(model, bank, optimizer="lbfgs")
    # as Seq2SeqTrainer's: an infinite rate, a negative or NaN clipping norm (which turned clipping off)
    for bad, said in (({"learning_rate": float("inf")}, "learning_rate must be a positive number, got inf"),
                      ({"clip_norm": -1.0}, "clip_norm must be a number >= 0, got -1.0"),
                      ({"clip_norm": float("nan")}, "clip_norm must be a number >= 0, got nan")):
        with pytest.raises(ValueError, match=f"^{said}$"):
            TreeTrainer(model, bank, **bad)
    with pytest.raises(DataError, match="tree 0: unknown word 'c'"):
        TreeTrainer(model, [parse_tree("(a c)", label="pos")])
    stats = TreeTrainer(model, bank, optimizer="adagrad", learning_rate=0.1).fit(2)
    assert [s.epoch for s in stats] == [1, 2] and stats[-1].test_accuracy is None


# ---------------------------------------------------------------------------------------------
# properties over random trees
# ---------------------------------------------------------------------------------------------

@st.composite
def nested_trees(draw, max_leaves=12):
    words = st.sampled_from(["a", "b", "c", "d", "e", "f"])
    return draw(st.recursive(words, lambda children: st.tuples(children, children), max_leaves=max_leaves))


@given(st.lists(nested_trees(), min_size=1, max_size=6), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_random_trees_round_trip_and_match_reference(nested, H, seed):
    trees = [Tree.from_nested(n) for n in nested]
    for t in trees:
        assert parse_tree(t.to_sexpr()) == t
        assert all(t.is_leaf(i) or t.right[i] == i - 1 > t.left[i] for i in range(len(t)))  # post-order
    vocab = Vocabulary.from_trees(trees)
    net = RecursiveNet(len(vocab), H, dtype="float64", seed=seed)
    batch = TreeBatch.from_trees(trees, vocab)
    rng = np.random.default_rng(seed)
    d_root = rng.standard_normal((len(trees), H))
    d_nodes = rng.standard_normal((batch.num_nodes, H))
    roots, trace = net.forward(batch)
    grads = net.backward(trace, d_root, d_nodes)
    h, dh, rgrads = _reference(net, vocab, trees, batch, d_root, d_nodes)
    assert rel_err(trace.h, h) < 1e-12 and rel_err(trace.dh, dh) < 1e-12
    for k in ref.PARAM_NAMES:
        assert rel_err(grads[k], rgrads[k]) < 1e-12, k


def test_tree_node_queries_refuse_an_index_outside_the_tree():
    """tree.parent(-1) answered for the last leaf, tree.children(-1) gave the root's children, and
    tree.children(100) a bare tuple IndexError."""
    tree = parse_tree("(a (b c))")
    for query in (tree.parent, tree.children, tree.word, tree.is_leaf, tree.span):
        for i in (-1, 5, 100):
            with pytest.raises(IndexError, match=rf"^node {i} out of range: the tree has 5 nodes$"):
                query(i)
        with pytest.raises(ValueError, match="node must be an integer"):
            query(True)
    assert tree.parent(0) == 4 and tree.parent(1) == 3 and tree.children(4) == (0, 3) and tree.parent(4) is None
