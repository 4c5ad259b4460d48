"""The treebank lab: the engine (cursors, backpropagation through structure, typed trees, training,
export), its screen driven by Textual's pilot, and ``rnnlab tree``."""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import threading
import time

import numpy as np
import pytest

from conftest import footer_keys, one_line_error, run_cli as run, screen_text, wait_for
from rnnlab.errors import TargetExistsError, UserError
from rnnlab.labs import lab_class
from rnnlab.labs.tree import DEFAULTS, TreeLab
from rnnlab.tui.labs import LabScreenApp
from rnnlab.tui.terminal import NOTHING_TRAINING
from rnnlab.tui.labs.tree import (DH_MAP_TITLES, H_MAP_TITLES, TreeLabScreen, TreeOutline, cap_prefix, map_title,
                                  outline_rows, parse_assignments, range_line, status_forms)
from rnnlab.tui.widgets import Heatmap, LinePlot

importlib.import_module("rnnlab.cli.tree")  # registers `rnnlab tree` (rnnlab.cli imports it once wired)
BENCH = "(((not (truly clumsy)) but) lovely)"  # the preset's bench: test tree 4, a negation inside a contrast


@pytest.fixture(scope="module")
def lab() -> TreeLab:
    return TreeLab.open({"hidden_size": 6})


def fresh(**options) -> TreeLab:
    return TreeLab.open({"hidden_size": 6, **options})


# ---------------------------------------------------------------------------------------------
# the engine
# ---------------------------------------------------------------------------------------------

def test_the_preset_opens_on_a_negation_inside_a_contrast():
    assert lab_class("treebank") is TreeLab
    lab = TreeLab.open()
    assert lab.options == DEFAULTS and lab.hidden_size == 16
    assert lab.tree.to_sexpr() == BENCH and lab.tree.label == "pos" and lab.tree_index == 4
    assert lab.bench_name == "test tree 4 of 150" and lab.num_nodes == 9
    assert lab.cursor == 0 and lab.node_index is None and lab.back_cursor is None and lab.loss is None
    assert len(lab.train_bank) == 450 and len(lab.test_bank) == 150 and lab.labels == ("neg", "pos")


def test_the_cursor_steps_through_the_nodes_in_post_order(lab):
    lab.select_tree(4)
    n = lab.num_nodes
    assert [lab.step_forward() for _ in range(n + 2)] == [*range(1, n + 1), n, n]  # clamped at the root
    assert lab.node_index == n - 1
    assert lab.step_back() == n - 1 and lab.node_index == n - 2
    assert lab.jump_first_leaf() == 1 and lab.node(0).word == "not"
    assert lab.jump_root() == n and lab.node(lab.node_index).phrase == "not truly clumsy but lovely"
    assert lab.move_to(3) == 4 and lab.node_index == 3 and lab.node(3).phrase == "truly clumsy"
    assert lab.move_to(99) == n and lab.move_to(-5) == 1
    lab.jump_first_leaf()
    assert lab.step_back() == 0 and lab.step_back() == 0


def test_node_vectors_follow_the_composition(lab):
    lab.select_tree(4)
    params = {k: v.astype(np.float64) for k, v in lab.model.state_dict().items()}
    E, W, b = params["embedding.weight"], params["compose.weight"], params["compose.bias"]
    h = lab.vectors()
    for i in range(lab.num_nodes):
        node = lab.node(i)
        if node.children is None:
            expected = E[lab.vocab.index(node.word)]
            assert node.equation == f"h_{i} = E[{node.word}]" and node.child_inputs is None
        else:
            left, right = node.children
            expected = np.tanh(W @ np.concatenate([h[left], h[right]]) + b)
            assert node.equation == f"h_{i} = tanh(W [h_{left}; h_{right}] + b)"
            H = lab.hidden_size
            assert node.child_inputs == pytest.approx((np.linalg.norm(W[:, :H] @ h[left]),
                                                       np.linalg.norm(W[:, H:] @ h[right])), rel=1e-5)
        np.testing.assert_allclose(node.h, expected, rtol=1e-5, atol=1e-6)
    # the readout applied to every node; the root's row is the prediction
    z = h @ params["readout.weight"].T + params["readout.bias"]
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(lab.node_probabilities(), p, rtol=1e-5)
    np.testing.assert_allclose(lab.probabilities(), p[-1], rtol=1e-5)
    np.testing.assert_allclose(lab.classify([lab.tree])[0], p[-1], rtol=1e-5)
    assert lab.prediction() == lab.labels[int(p[-1].argmax())]


def test_backward_steps_from_the_root_down_and_each_node_gets_its_dl_dh(lab):
    lab.select_tree(4)
    n = lab.num_nodes
    assert lab.gradients() is None
    assert lab.backward_step() == n - 1  # the root first; the loss needed every node
    assert lab.cursor == n and lab.gradient_reached(n - 1) and not lab.gradient_reached(n - 2)
    assert lab.node(n - 1).dh is not None and lab.node(n - 2).dh is None
    assert [lab.backward_step() for _ in range(n + 1)] == [*range(n - 2, -1, -1), 0, 0]

    params = {k: v.astype(np.float64) for k, v in lab.model.state_dict().items()}
    h, dh, H = lab.vectors(), lab.gradients(), lab.hidden_size
    p = lab.probabilities()
    target, why = lab.target()
    assert why == "label" and lab.labels[target] == "pos"
    assert lab.loss == pytest.approx(-np.log(p[target]), rel=1e-5)
    # at the root: dL/dh = W_o^T (p - onehot(target))
    d_logits = p - np.eye(len(p))[target]
    np.testing.assert_allclose(dh[n - 1], params["readout.weight"].T @ d_logits, rtol=1e-4, atol=1e-7)
    # every child gets its share of its parent's dL/dh through tanh and W = [W_L W_R]
    for i in range(n):
        children = lab.tree.children(i)
        if children is None:
            continue
        da = dh[i] * (1 - h[i] ** 2)
        np.testing.assert_allclose(dh[children[0]], params["compose.weight"][:, :H].T @ da, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(dh[children[1]], params["compose.weight"][:, H:].T @ da, rtol=1e-4, atol=1e-7)


def test_backward_all_and_a_new_tree_resets_the_cursors(lab):
    lab.select_tree(2)
    assert lab.backward_all() == 0 and all(lab.gradient_reached(i) for i in range(lab.num_nodes))
    lab.next_tree()
    assert lab.tree_index == 3 and lab.cursor == 0 and lab.back_cursor is None and lab.gradients() is None


def test_taking_the_root_back_drops_the_backward_pass(lab):
    lab.select_tree(4)
    n = lab.num_nodes
    lab.backward_all()
    lab.step_back()  # the root is no longer computed: no loss, so no dL/dh to show
    assert lab.cursor == n - 1 and lab.back_cursor is None and lab.loss is None and lab.gradients() is None
    assert lab.backward_step() == n - 1 and lab.cursor == n  # b runs it again, from the root
    lab.move_to(2)
    assert lab.back_cursor is None and lab.loss is None
    lab.backward_all()
    lab.jump_root()  # staying on the root keeps it
    assert lab.back_cursor == 0 and lab.loss is not None


def test_typed_trees_with_and_without_a_label(lab):
    tree = lab.type_tree("  pos ((dull but) good)")
    assert tree.to_sexpr() == "((dull but) good)" and tree.label == "pos"
    assert lab.tree_index is None and lab.bench_name == "typed tree" and lab.target()[1] == "label"
    lab.type_tree("(not good)")
    assert lab.tree.label is None
    target, why = lab.target()  # no label: the loss is taken against the prediction
    assert why == "prediction" and lab.labels[target] == lab.prediction()
    lab.backward_all()
    assert lab.gradients().shape == (3, lab.hidden_size)
    assert lab.type_tree("good").to_sexpr() == "good" and lab.num_nodes == 1  # one word is a one-leaf tree
    assert lab.next_tree() is lab.test_bank.trees[0]  # after a typed tree: the first test tree
    lab.type_tree("good")
    assert lab.previous_tree() is lab.test_bank.trees[-1]


@pytest.mark.parametrize("text, message", [
    ("", "type a tree, e.g."),
    ("((good but) dull", "'(' at column 1 is never closed"),
    ("pos (good", "'(' at column 5 is never closed"),  # columns count in the typed text, label included
    ("(good but dull)", "a node with 3 children at column 1"),
    ("(good but))", "')' at column 11 has no matching '('"),
    ("((superb but) dull)", "unknown word 'superb' at column 3"),
    ("neg (very superb)", "unknown word 'superb' at column 11"),
    ("(not GOOD)", "unknown word 'GOOD' at column 6 ("),  # the words are lower case: said, not guessed
    ("(not GOOD)", "did you mean 'good'?)"),
    ("very good", "'very' is not a label (neg, pos)"),
])
def test_bad_typed_trees_name_the_problem_and_change_nothing(lab, text, message):
    lab.select_tree(7)
    before = lab.tree
    with pytest.raises(UserError, match=None) as info:
        lab.type_tree(text)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert lab.tree is before and lab.tree_index == 7


@pytest.mark.parametrize("options, message", [
    ({"hidden_size": 0}, "hidden_size must be an integer in [1, 256], got 0"),
    ({"hidden_size": 2.5}, "hidden_size must be an integer"),
    ({"epochs": True}, "epochs must be an integer in [1, 10000], got True"),
    ({"seed": -1}, "seed must be an integer in [0, 2^63-1], got -1"),
    ({"batch_size": 0}, "batch_size must be an integer in [1, "),
    ({"learning_rate": 0}, "learning_rate must be a number in (0, 10], got 0"),
    ({"learning_rate": float("nan")}, "learning_rate must be a number"),
    ({"tree": 150}, "tree must be a test tree's index from 0 to 149, got 150"),
    ({"tree": "(a b"}, "tree: unbalanced parentheses: '(' at column 1 is never closed"),
    ({"tree": [1]}, "tree must be a test tree's index or a tree's s-expression"),
    ({"hidden": 8}, "unknown option 'hidden' (6 known; did you mean 'hidden_size'?)"),
    ({"bogus": 8}, "unknown option 'bogus' (6 known; e.g. hidden_size, learning_rate, epochs)"),
])
def test_bad_options_are_refused_naming_the_option(options, message):
    with pytest.raises(UserError) as info:
        TreeLab.open(options)
    assert message in str(info.value)


def test_seeds_take_the_same_64_bit_range_as_every_other_command(capsys, monkeypatch):
    assert fresh(seed=2**63 - 1).options["seed"] == 2**63 - 1
    with pytest.raises(UserError, match=re.escape(f"seed must be an integer in [0, 2^63-1], got {2**63}")):
        TreeLab.open({"seed": 2**63})
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run(capsys, "tree", "--help")
    assert code == 0 and "In [0, 2^63-1] (preset: 0)." in next(line for line in out.splitlines() if "--seed" in line)


def test_a_typed_tree_as_the_bench_option():
    lab = fresh(tree="neg ((good but) dull)")
    assert lab.tree.to_sexpr() == "((good but) dull)" and lab.tree.label == "neg" and lab.tree_index is None


def test_training_learns_the_structure_and_the_bench_follows():
    lab = TreeLab.open({"epochs": 12})
    lab.move_to(4)
    before = lab.vectors()
    seen = []
    assert lab.train(on_epoch=seen.append) == "completed"
    assert [s.epoch for s in lab.history] == list(range(1, 13)) and seen == lab.history
    assert lab.history[-1].loss < lab.history[0].loss
    assert lab.history[-1].test_accuracy >= 0.95  # a bag of words cannot pass ~0.7 here
    lab.refresh()
    assert lab.cursor == 5 and not np.allclose(lab.vectors(), before)
    lab.jump_root()
    assert lab.prediction() == "pos"
    # the same words, the other structure: "but" takes the polarity of its right part
    probs = lab.classify([lab.parse_tree_text("((good but) dull)"), lab.parse_tree_text("((dull but) good)")])
    assert [lab.labels[k] for k in probs.argmax(axis=1)] == ["neg", "pos"]
    summary = lab.summary()
    assert summary["training"]["epochs"] == 12 and summary["training"]["status"] == "completed"
    assert lab.train(2) == "completed" and lab.epochs_done == 14  # more epochs continue the run


def test_training_stops_and_pauses_between_epochs():
    lab = fresh(epochs=50)
    assert lab.train(should_stop=lambda: len(lab.history) >= 2) == "stopped" and len(lab.history) == 2

    lab = fresh(epochs=50)
    first_epoch = threading.Event()

    def on_epoch(stats):
        if stats.epoch == 1:
            lab.pause_training()
            first_epoch.set()

    worker = threading.Thread(target=lambda: lab.train(on_epoch=on_epoch))
    worker.start()
    try:
        assert first_epoch.wait(30)
        deadline = time.monotonic() + 30
        while lab.training_status != "paused" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert lab.training_status == "paused" and lab.training and len(lab.history) == 1
        with pytest.raises(UserError, match="stop training before changing the options"):
            lab.reconfigure({"hidden_size": 4})
    finally:
        lab.stop_training()
        worker.join(30)
    assert lab.training_status == "stopped" and len(lab.history) == 1 and not lab.training


def test_an_epoch_in_which_an_update_diverges_is_undone_whole():
    """The tree trainer stepped its optimizer unguarded: a huge step left NaN weights, and the next
    minibatch raised a bare ValueError out of the layer, past the lab's undo (code review). Now the
    update that diverges is refused, and the lab undoes the epoch's earlier ones too: weights,
    optimizer state and the minibatch order, so the lab is as before the epoch."""
    from rnnlab.train.optim import SGD

    lab = fresh()
    lab.train(1)
    trainer = lab.trainer
    trainer.optimizer = SGD(lab.model.parameters(), 1e37)
    weights, updates, order = lab.model.state_dict(), trainer.updates, trainer.rng.bit_generator.state
    assert updates > 0
    assert lab.train(3) == "diverged" and len(lab.history) == 1
    message = lab.training_message
    assert message.startswith("epoch 2: ") and "became non-finite in float32 at step" in message
    assert "learning_rate" in lab.training_message
    assert all(np.array_equal(weights[k], v) for k, v in lab.model.state_dict().items())
    assert trainer.optimizer.steps == 0 and trainer.updates == updates and trainer.rng.bit_generator.state == order
    assert all(np.isfinite(p).all() for p in lab.model.parameters().values())


def test_the_tree_trainer_refuses_an_update_that_diverges():
    from rnnlab.data.trees import Vocabulary, load_sample_treebank
    from rnnlab.layers.tree import TreeClassifier
    from rnnlab.train.trainer import TrainingDiverged
    from rnnlab.train.trees import TreeTrainer

    train, _ = load_sample_treebank()
    vocab = Vocabulary.from_trees(train.trees)
    model = TreeClassifier(vocab, train.labels, 6, seed=0)
    trainer = TreeTrainer(model, train, optimizer="sgd", learning_rate=1e30, batch_size=8)
    with pytest.raises(TrainingDiverged, match="non-finite in float32 at step"):
        trainer.fit(5)
    assert all(np.isfinite(p).all() for p in model.parameters().values()) and trainer.epochs_done < 5


def test_reconfigure_builds_a_fresh_model_and_keeps_the_bench():
    lab = fresh(epochs=1)
    lab.type_tree("neg ((good but) dull)")
    lab.train()
    lab.reconfigure({"hidden_size": 4, "learning_rate": 0.05})
    assert lab.hidden_size == 4 and lab.options["learning_rate"] == 0.05 and lab.history == []
    assert lab.tree.to_sexpr() == "((good but) dull)" and lab.tree.label == "neg" and lab.vectors().shape == (5, 4)
    with pytest.raises(UserError, match="hidden_size"):
        lab.reconfigure({"hidden_size": -1})
    assert lab.hidden_size == 4  # nothing changed


def test_epochs_apply_in_place_and_keep_the_trained_model():
    """Setting epochs to train further rebuilt the model: the trained epochs were lost. epochs does
    not change the model: the weights and history stay and the next run trains that many more."""
    lab = fresh(epochs=1)
    lab.train()
    model, weights, history = lab.model, lab.model.state_dict(), list(lab.history)
    lab.reconfigure({"epochs": 2})
    assert lab.model is model and lab.epochs_done == 1 and lab.history == history and lab.options["epochs"] == 2
    assert all(np.array_equal(weights[k], v) for k, v in lab.model.state_dict().items())
    lab.train()
    assert lab.epochs_done == 3 and lab.model is model
    assert not lab.rebuilds({"epochs": 5}) and lab.rebuilds({"epochs": 5, "hidden_size": 4})
    lab.reconfigure({"epochs": 5, "hidden_size": 4})  # with a model option: a fresh model
    assert lab.epochs_done == 0 and lab.hidden_size == 4 and lab.options["epochs"] == 5


def test_learning_rate_and_batch_size_apply_in_place_and_train_on_from_the_trained_model():
    """Lowering the learning rate (or changing the batch size) to fine-tune a trained net rebuilt
    it: the trained epochs were lost. Both only change how later epochs train: the weights and
    Adam's moments stay, and the epochs after the change are those of the same net trained on with
    the trainer's new rate and batch size."""
    def trained():
        lab = fresh(epochs=1)
        lab.train()
        return lab

    lab, reference = trained(), trained()
    model, optimizer = lab.model, lab.trainer.optimizer
    moments = {k: v.copy() for k, v in optimizer.state_arrays().items()}
    assert not lab.rebuilds({"learning_rate": 0.002, "batch_size": 32})
    assert lab.reconfigure({"learning_rate": 0.002, "batch_size": 32}) is False
    assert lab.model is model and lab.trainer.optimizer is optimizer and lab.epochs_done == 1
    assert all(np.array_equal(v, moments[k]) for k, v in optimizer.state_arrays().items())
    assert (optimizer.learning_rate, lab.trainer.batch_size) == (0.002, 32)
    assert (lab.options["learning_rate"], lab.options["batch_size"]) == (0.002, 32)
    lab.train()
    reference.trainer.optimizer.learning_rate, reference.trainer.batch_size = 0.002, 32
    reference.train()
    assert lab.epochs_done == 2 and [h.loss for h in lab.history] == [h.loss for h in reference.history]
    assert all(np.array_equal(v, reference.model.state_dict()[k]) for k, v in lab.model.state_dict().items())
    untouched = trained()
    untouched.train()  # the old rate and batch size train otherwise: the change took effect
    assert untouched.history[-1].loss != lab.history[-1].loss


def test_the_history_and_its_export_say_what_each_epoch_trained_with(tmp_path):
    """The options say what the next run trains with: after an in-place change of the rate or the batch
    size, the history (the summary's, --json's, the export's) keeps what each epoch trained with."""
    lab = fresh(epochs=1, learning_rate=0.01, batch_size=16)
    lab.train()
    lab.reconfigure({"learning_rate": 0.002, "batch_size": 32})
    lab.train()
    history = lab.summary()["training"]["history"]
    assert [(h["learning_rate"], h["batch_size"]) for h in history] == [(0.01, 16), (0.002, 32)]
    with np.load(lab.export(tmp_path / "tree.npz"), allow_pickle=False) as data:
        assert data["history_learning_rate"].tolist() == [0.01, 0.002]
        assert data["history_batch_size"].tolist() == [16, 32]


def test_export_writes_every_internal_atomically(tmp_path, lab):
    lab.select_tree(4)
    path = lab.export(tmp_path / "bench.npz")
    with np.load(path, allow_pickle=False) as data:
        files = set(data.files)
        assert "dh" not in files  # no backward yet
        assert data["h"].shape == (9, lab.hidden_size) and list(data["words"])[:3] == ["not", "truly", "clumsy"]
    lab.backward_all()
    with pytest.raises(TargetExistsError):  # the TUI's first Enter: the file is kept
        lab.export(path, replace=False)
    lab.export(path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    assert {"h", "dh", "node_probabilities", "logits", "left", "right", "words", "phrases", "labels", "vocabulary",
            "embedding.weight", "compose.weight", "compose.bias", "readout.weight", "readout.bias",
            "history_epoch", "history_loss", "history_train_accuracy", "history_test_accuracy", "meta"} <= set(arrays)
    np.testing.assert_array_equal(arrays["dh"], lab.gradients().astype(np.float32))
    assert arrays["phrases"][-1] == "not truly clumsy but lovely" and arrays["left"][3] == 1
    meta = json.loads(str(arrays["meta"]))
    assert meta["tree"]["sexpr"] == BENCH and meta["cursor"]["backward"] == 0 and "post-order" in meta["layout"]
    assert not [p for p in tmp_path.iterdir() if p.name != "bench.npz"]  # no temp file left
    with pytest.raises(UserError, match="must end in .npz"):
        lab.export(tmp_path / "bench.txt")
    with pytest.raises(UserError, match="no such directory"):
        lab.export(tmp_path / "missing" / "bench.npz")
    # a folder was refused for want of .npz: it is named a folder, with the file to name in it
    with pytest.raises(UserError, match=r" is a directory: name the export file in it, e\.g\. .*/treebank-\w+\.npz$"):
        lab.export(tmp_path)


def test_summary_is_json(lab):
    lab.select_tree(0)
    data = json.loads(json.dumps(lab.summary()))
    assert data["lab"] == "treebank" and data["tree"]["bench"] == "test tree 0 of 150"
    assert set(data["prediction"]["probabilities"]) == {"neg", "pos"} and data["model"]["hidden_size"] == 6
    assert data["options"]["tree"] == 0  # the bench's, not the one the lab opened on (4)
    lab.next_tree()
    assert lab.summary()["options"]["tree"] == 1
    lab.type_tree("pos ((dull but) good)")
    assert lab.summary()["options"]["tree"] == "pos ((dull but) good)"
    lab.select_tree(0)


# ---------------------------------------------------------------------------------------------
# the screen
# ---------------------------------------------------------------------------------------------



def drive(check, size=(160, 50), **options):
    async def main():
        app = LabScreenApp("treebank", {"hidden_size": 8, **options})
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, TreeLabScreen)
            await check(app, app.engine, pilot)

    asyncio.run(main())


def test_a_notice_leaves_the_status_line_whole_at_80_columns():
    """Textual stacks notices on the footer: at 80x24 a toast's blank last row lay over the status line
    from its 18th column, 'test tree 4 of 15▌' (of 150) and the training state hidden; they stand above
    it now, as the main lab's."""
    async def main():
        app = LabScreenApp("treebank", {"hidden_size": 8})
        async with app.run_test(size=(80, 24), notifications=True) as pilot:  # (toasts drawn)
            await pilot.pause()
            # s's own notice (test_s_with_nothing_training_says_so) lasts 2 s: on a loaded machine it was gone
            # before the screen was read; the same words for a minute test the layout alone
            app.notify(NOTHING_TRAINING, timeout=60)
            await wait_for(pilot, lambda: "nothing is training" in screen_text(app), what="the notice")
            assert screen_text(app).splitlines()[-2].strip() == \
                "test tree 4 of 150   no node yet   untrained (t trains)   ? help"

    asyncio.run(main())


def test_s_with_nothing_training_says_so():
    """s before any training (or after a run) did nothing visible, where the main lab says
    "nothing is training (t starts)"."""
    async def check(app, lab, pilot):
        await pilot.press("s")
        await pilot.pause()
        assert list(app._notifications)[-1].message == "nothing is training (t starts)"
        assert not lab.training

    drive(check, size=(80, 24))


def test_outline_draws_the_tree_root_first():
    lab = fresh()
    rows = outline_rows(lab.tree)
    assert [i for i, _ in rows] == [8, 6, 4, 0, 3, 1, 2, 5, 7]  # pre-order of the post-order numbers
    assert [prefix for _, prefix in rows][:4] == ["┬ ", "├─┬ ", "│ ├─┬ ", "│ │ ├── "]
    assert rows[-1][1] == "└── "


def test_screen_steps_forward_through_the_nodes():
    async def check(app, lab, pilot):
        text = screen_text(app)
        assert "test tree 4 of 150" in text and "no node yet: → computes node 0" in text and "untrained" in text
        await pilot.press("right", "right", "right")
        assert lab.cursor == 3
        h_map = app.screen.query_one("#tree-map-h", Heatmap)
        assert h_map.revealed == 3 and h_map.cursor == 2 and h_map.data.shape == (8, 9)
        # the leaves' embeddings go past 1: the colours span them (at least [-1, 1]), as the colour key says
        largest = float(np.abs(lab.vectors()).max())
        assert largest > 1 and h_map.vmax == largest == -h_map.vmin
        assert app.screen.query_one("#tree-bar-h").vmax == largest
        text = screen_text(app)
        assert "node 2 (3/9 computed)" in text and "▶ 2" in text and "h_2 = E[clumsy]" in text
        assert "needs the root" in text
        await pilot.press("end")
        text = screen_text(app)
        assert lab.cursor == 9 and "h_8 = tanh(W [h_6; h_7] + b)" in text and "label" in text
        assert f"{100 * lab.probabilities().max():.1f}%" in text  # the prediction, once the root is computed
        await pilot.press("home")
        assert lab.cursor == 1
        await pilot.press("left")
        assert lab.cursor == 0 and "no node yet: → computes node 0" in screen_text(app)

    drive(check)


def test_the_prediction_is_said_on_its_heading_line_at_80x24():
    """The side panel's six lines at 80x24 ended after the first class's bar: a tree predicted pos showed
    "neg 44.8%" alone under "prediction". The heading's line says the predicted class and whether it is the
    label's; the formula stays beside it where it fits (at 160 columns)."""
    async def check(app, lab, pilot):
        await pilot.press("end")
        await pilot.pause()
        best = lab.prediction()
        verdict = f"prediction {best} {100 * lab.probabilities().max():.1f}% "
        verdict += "✓ label" if best == lab.tree.label else "✗ label"
        lines = screen_text(app).splitlines()
        heading = next(line for line in lines if "prediction" in line)
        assert verdict in heading, heading
        if app.size.width >= 160:
            assert "softmax(W_o h_8 + b_o)" in heading

    drive(check, size=(80, 24))
    drive(check)


def test_a_short_side_panel_shows_the_node_being_computed():
    """At 80x24 the side panel has seven lines, and read in order (the bench, its s-expression, the
    prediction, then the node) it ended before the node: stepping through a tree showed nothing of what each
    step computes. Where it is too short the node comes after the bench's and the prediction's lines; where
    there is room the order stays."""
    async def check(app, lab, pilot):
        await pilot.press("right", "right", "right")
        await pilot.pause()
        text = screen_text(app)
        assert "node 2 of 9" in text and "h_2 = E[clumsy]" in text, text
        await pilot.press("end")
        await pilot.pause()
        text = screen_text(app)
        assert "h_8 = tanh(W [h_6; h_7] + b)" in text and f"prediction {lab.prediction()} " in text, text
        sexpr = lab.tree.to_sexpr()
        if app.size.height >= 40:  # room for all: the tree first, as it was
            assert text.index(sexpr) < text.index("prediction") < text.index("h_8 = tanh")

    drive(check, size=(80, 24))
    drive(check)


def test_screen_steps_backward_from_the_root():
    async def check(app, lab, pilot):
        await pilot.press("b")
        assert lab.back_cursor == 8 and lab.cursor == 9
        await pilot.press("b", "b")
        dh_map = app.screen.query_one("#tree-map-dh", Heatmap)
        assert dh_map.reveal_from_end and dh_map.revealed == 3 and dh_map.cursor == 6
        text = screen_text(app)
        assert "backward 3/9" in text and "◀" in text and "‖dL/dh‖" in text and "loss -log p(pos)" in text
        await pilot.press("B")
        assert lab.back_cursor == 0 and dh_map.revealed == 9
        await pilot.press("home")  # the root taken back: its loss and the gradients leave the screen
        text = screen_text(app)
        assert lab.back_cursor is None and "backward 9/9" not in text and "loss -log p" not in text
        assert "‖dL/dh_" not in text and dh_map.revealed == 0
        await pilot.press("b")
        assert lab.cursor == 9 and lab.back_cursor == 8

    drive(check)


def test_screen_switches_and_types_trees():
    async def check(app, lab, pilot):
        await pilot.press("n")
        assert lab.tree_index == 5 and "test tree 5 of 150" in screen_text(app)
        await pilot.press("N", "N")
        assert lab.tree_index == 3
        await pilot.press("i")
        prompt = app.screen.query_one("#prompt-input")
        prompt.value = "((superb but) dull)"
        await pilot.press("enter")
        error = str(app.screen.query_one("#prompt-error").render())
        assert "unknown word 'superb' at column 3" in error and lab.tree_index == 3  # shown inline, nothing changed
        app.screen.query_one("#prompt-input").value = "neg ((good but) dull)"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TreeLabScreen)
        assert lab.tree.to_sexpr() == "((good but) dull)" and "typed tree" in screen_text(app)
        outline = app.screen.query_one(TreeOutline)
        assert "good but dull" in str(outline.render())

    drive(check)


def test_screen_trains_in_the_background():
    async def check(app, lab, pilot):
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.training_status == "completed")
        await wait_for(pilot, lambda: "completed epoch 3" in screen_text(app))
        accuracy = app.screen.query_one("#tree-accuracy", LinePlot)
        assert accuracy.series_names == ["train", "test"] and "train" in accuracy.title
        loss = app.screen.query_one("#tree-loss", LinePlot)
        assert loss.series_names == ["loss"] and loss.title == f"loss per epoch ({lab.history[-1].loss:.3g})"

    drive(check, epochs=3)


def test_e_is_refused_from_the_t_that_starts_training_not_from_when_the_worker_starts():
    """Between t and the worker's first line the lab was not yet training: e opened the options
    dialog then, its warning counting the epochs before the run, and an epochs= change applied
    "in place" while the run already read the old value."""
    async def check(app, lab, pilot):
        screen = app.screen
        screen._train = lambda epochs: None  # the worker that has not started yet
        await pilot.press("t")
        assert lab.training
        await pilot.press("e")
        await pilot.pause()
        assert app.screen is screen and list(app._notifications)[-1].message == "stop training first (s)"
        lab.stop_training()
        lab.training_status = "stopped"  # what the worker's run would end in

    drive(check)


def test_screen_shows_training_errors_inline_and_stays_alive():
    async def check(app, lab, pilot):
        def broken(*args, **kwargs):
            raise RuntimeError("boom")

        lab.train = broken
        await pilot.press("t")
        await wait_for(pilot, lambda: "training failed: RuntimeError: boom" in screen_text(app))
        await pilot.press("right")  # still alive; the next action clears the message
        assert lab.cursor == 1 and "boom" not in app.screen.query_one("#tree-status").render().plain

    drive(check)


def test_screen_edits_options_exports_and_helps(tmp_path):
    async def check(app, lab, pilot):
        await pilot.press("e")
        app.screen.query_one("#prompt-input").value = "hidden_size=x"
        await pilot.press("enter")
        error = str(app.screen.query_one("#prompt-error").render())
        assert "hidden_size must be an integer in [1, 256], got 'x'" in error
        app.screen.query_one("#prompt-input").value = "hidden_size=4 learning_rate=0.02"
        await pilot.press("enter")
        await pilot.pause()
        assert lab.hidden_size == 4 and lab.options["learning_rate"] == 0.02
        assert app.screen.query_one("#tree-map-h", Heatmap).data.shape == (4, 9)

        await pilot.press("x")
        app.screen.query_one("#prompt-input").value = str(tmp_path / "out.npz")
        await pilot.press("enter")
        await pilot.pause()
        assert (tmp_path / "out.npz").is_file()

        await pilot.press("question_mark")
        text = screen_text(app)
        assert "treebank lab: keys" in text and "backprop: dL/dh one node further" in text and "type tree" in text
        assert "q, ctrl+c  quit" in text
        # t and s as the seq2seq lab's help says them: the bare "t  train/pause", "s  stop" said nothing of
        # what a second t does; a click once (the text says it, as the other labs'), not twice
        assert "t  train/pause: train (another run of epochs), pause, resume" in text
        assert "s  stop: stop training" in text
        assert text.count("heatmap column") == 1
        await pilot.press("escape")
        assert isinstance(app.screen, TreeLabScreen)

    drive(check)


def test_clicking_a_heatmap_column_moves_the_cursor():
    async def check(app, lab, pilot):
        h_map = app.screen.query_one("#tree-map-h", Heatmap)
        cell = h_map.content_region.width // lab.num_nodes
        await pilot.click("#tree-map-h", offset=(cell * 6 + cell // 2, 4))  # a map row, column 6
        assert lab.cursor == 7 and lab.node_index == 6

    drive(check)


def test_screen_works_at_100x30():
    async def check(app, lab, pilot):
        await pilot.press("end", "b")
        text = screen_text(app)
        assert "┬ not truly clumsy" in text and "backward 1/9" in text and "▶◀8" in text
        assert app.screen.has_class("-compact")

    drive(check, size=(100, 30))


def outline_lines(app) -> list[str]:
    """The tree panel's lines as the screen shows them."""
    region = app.screen.query_one(TreeOutline).content_region
    rows = screen_text(app).splitlines()[region.y: region.bottom]
    return [row[region.x: region.right].rstrip() for row in rows]


def status_line(app) -> str:
    """The status line as the screen shows it."""
    region = app.screen.query_one("#tree-status").content_region
    return screen_text(app).splitlines()[region.y][region.x: region.right].strip()


def test_a_terminal_below_the_minimum_says_so_until_enlarged():
    """As the main lab and the other labs: below 60x20 a message covers the panels."""
    async def check(app, lab, pilot):
        await pilot.resize_terminal(59, 30)
        await pilot.pause(0.1)
        assert app.screen.query_one("#too-small").display
        assert "The lab needs at least 60x20" in screen_text(app) and "(this terminal: 59x30)" in screen_text(app)
        before = lab.cursor
        await pilot.press("right", "t", "question_mark")  # held: only q acts behind the message
        await pilot.pause()
        assert lab.cursor == before and not lab.training and isinstance(app.screen, TreeLabScreen)
        await pilot.resize_terminal(60, 20)
        await pilot.pause(0.1)
        assert not app.screen.query_one("#too-small").display and "tree" in screen_text(app)
        await pilot.press("right")
        assert lab.cursor == before + 1

    drive(check, size=(100, 30))


def test_a_small_terminal_draws_each_node_on_one_line_and_keeps_the_status_line():
    """Trained, the next tree, resized to 60x20: the heading and every node are one line each (the
    node's number, its outline and its words together), the columns that do not fit are left out."""
    async def check(app, lab, pilot):
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.training_status == "completed")
        await pilot.press("n", "end", "b")
        for size in ((60, 20), (80, 24), (60, 24)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            await pilot.pause()
            outline = app.screen.query_one(TreeOutline)
            width = outline.content_size.width
            assert max(len(line) for line in str(outline.render()).splitlines()) <= width, size
            lines = outline_lines(app)
            assert lines[0].lstrip().startswith("tree"), lines
            shown = re.fullmatch(r" +lines (\d+)-(\d+) of (\d+)", lines[-1])
            assert shown and int(shown[3]) == lab.num_nodes, lines
            nodes = lines[1:-1]
            assert len(nodes) == int(shown[2]) - int(shown[1]) + 1 >= 3, lines
            for line in nodes:
                row = re.match(r"[ ▶][ ◀] *(\d+) (?:\d+›)?[│├└─┬ ]*(.+?)…?(?: {2,}|$| [█·])", line)
                assert row, lines
                i, label = int(row[1]), row[2].rstrip()
                phrase = lab.tree.word(int(i)) or lab.tree.phrase(int(i))
                assert phrase.startswith(label) and len(label) >= 4, (line, phrase)
            text = screen_text(app)
            status = status_line(app)
            assert status.startswith("test tree 5 of 150  ") and f"  node {lab.num_nodes - 1}" in status, status
            assert status.endswith("completed epoch 2") or "completed epoch 2   " in status, status
            tiny = size == (60, 20)  # too short for the plots too: they give way
            assert app.screen.query_one("#tree-plots").display is not tiny and ("loss per epoch" in text) is not tiny

    drive(check, size=(80, 24), epochs=2)


WORDS = "the film is really very not truly good but the plot was never dull the music clever".split()


def deep_tree(leaves: int = 31) -> str:
    """A right-branching tree of ``leaves`` words: height leaves - 1."""
    words = [WORDS[k % len(WORDS)] for k in range(leaves)]
    text = words[-1]
    for word in reversed(words[:-1]):
        text = f"({word} {text})"
    return text


def test_cap_prefix_keeps_the_last_levels_behind_the_depth():
    assert cap_prefix("│ ├─┬ ", 12) == "│ ├─┬ "  # short enough: unchanged
    capped = cap_prefix("│ " * 20 + "└── ", 12)
    assert capped == "21›" + "│ │ └── " and len(capped) <= 12  # depth 21, the last levels, the connector
    assert cap_prefix("  " * 5 + "├─┬ ", 10, depth_width=3) == "  6›" + "  ├─┬ "
    assert cap_prefix("  " * 40 + "├─┬ ", 4).endswith("├─┬ ")  # the node's own connector always stays


def test_a_deep_tree_keeps_every_label_on_the_panel_and_the_maps_count_nodes():
    async def check(app, lab, pilot):
        await pilot.press("i")
        app.screen.query_one("#prompt-input").value = deep_tree()
        await pilot.press("enter")
        await pilot.pause()
        assert lab.num_nodes == 61 and lab.tree.height() == 30
        await pilot.press("end", *["left"] * 32)  # the cursor deep in the tree
        assert lab.node_index == 28
        outline = app.screen.query_one(TreeOutline)
        rows = str(outline.render()).splitlines()[1:-1]  # below the heading, above "lines a-b of n"
        assert len(rows) > 10 and any("›" in row for row in rows)
        width = outline.content_size.width
        for row in rows:
            number, body = row[2:].split(maxsplit=1)
            label = body.split("█")[0].split("·")[0].lstrip(" 0123456789›│├└─┬").strip()
            assert label[:1].isalpha(), row  # each row keeps its word or phrase
            assert body.index(label) < width // 2, row  # the indentation stays in the left part
        h_map = app.screen.query_one("#tree-map-h", Heatmap)
        count = h_map.data.shape[1]
        assert count < 61 and h_map.title == f"node vectors h_i: nodes 0-{count - 1} of 61"
        text = screen_text(app)
        assert f"nodes 0-{count - 1} of 61" in text and " t 0-" not in text
        assert h_map.cursor + h_map.first_node == 28
        await pilot.press("end")  # the window follows the cursor to the root
        first = 61 - count
        assert h_map.first_node == first and h_map.title.endswith(f"nodes {first}-60 of 61")
        await pilot.click("#tree-map-h", offset=(2, 3))  # a click means the node under it, not the column
        assert lab.node_index == first + 2
        await pilot.press("end", "b", "b")
        dh_map = app.screen.query_one("#tree-map-dh", Heatmap)
        assert dh_map.title.endswith(f"nodes {first}-60 of 61") and dh_map.revealed == 2
        assert dh_map.cursor + dh_map.first_node == lab.back_cursor == 59

    drive(check, size=(120, 36))


def test_titles_and_the_range_line_shorten_whole_and_never_cut_a_number():
    """Every width gets a whole form or nothing: "nodes 31-5" of "nodes 31-58 of 59" would read as a value."""
    for width in range(0, 60):
        for titles in (H_MAP_TITLES, DH_MAP_TITLES):
            title = map_title(titles, 31, 58, 59, width)
            assert len(title) <= width or width == 0, (width, title)
            assert re.findall(r"\d+", title) in ([], ["31", "58", "59"]), (width, title)
            assert map_title(titles, 0, 8, 9, width) in (*titles, "")  # every node shown: no range
        line = range_line(1, 7, 121, width, 6)
        assert len(line) <= width and re.findall(r"\d+", line) in ([], ["1", "7", "121"]), (width, line)
    assert map_title(H_MAP_TITLES, 31, 58, 59, 0) == "node vectors h_i: nodes 31-58 of 59"  # not laid out yet
    assert map_title(DH_MAP_TITLES, 31, 58, 59, 28) == "dL/dh_i: nodes 31-58 of 59"
    assert range_line(1, 7, 121, 20, 6) == "      1-7 of 121" and range_line(1, 7, 121, 10, 6) == "1-7/121"


def test_the_status_line_says_how_far_of_how_many_epochs_and_t_says_where_a_new_round_ends():
    """The status line read "running epoch 12": it says "of" the epoch the run trains to while one is
    under way, as the seq2seq lab's "of" its steps; t on a trained model says where the new round ends
    (the main lab's words), withdrawn as it ends, as the pause's is as t resumes and the last run's end as t
    starts another ("training stopped at epoch 12" over "running epoch 15 of 42"). A stopped run has no total
    (t trains a new round)."""
    async def main():
        app = LabScreenApp("treebank", {"hidden_size": 8, "epochs": 10000})
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            lab = app.engine
            said_all, show = [], app.notify  # every notice, also one gone (5 s) before a loaded machine reads it
            app.notify = lambda message, **kw: (said_all.append(message), show(message, **kw))[1]
            await pilot.pause()
            await pilot.press("t")
            await wait_for(pilot, lambda: lab.epochs_done >= 1)
            await pilot.press("t")
            await wait_for(pilot, lambda: lab.training_status == "paused")
            done = lab.epochs_done
            paused = f"test tree 4 of 150   no node yet   paused epoch {done} of 10000   ? help"
            await wait_for(pilot, lambda: status_line(app) == paused, what="the paused line")  # (a timer's tick)
            assert not [n for n in app._notifications if "trained already" in n.message]  # a fresh model's: none
            assert "training paused (t resumes, s stops)" in said_all
            await pilot.press("t")  # resumed: the toast no longer says paused for seconds more
            assert "training paused (t resumes, s stops)" not in [n.message for n in app._notifications]
            await pilot.press("s")
            await wait_for(pilot, lambda: lab.training_status == "stopped")
            await pilot.pause()
            done = lab.epochs_done
            stopped = f"test tree 4 of 150   no node yet   stopped epoch {done}   ? help"
            await wait_for(pilot, lambda: status_line(app) == stopped, what="the stopped line")
            ended = f"training stopped at epoch {done}"
            await wait_for(pilot, lambda: ended in [n.message for n in app._notifications], what="the stopped notice")
            await pilot.press("t")
            said = f"{done} epochs trained already: training 10000 more, to epoch {done + 10000} (t pauses, s stops)"
            await wait_for(pilot, lambda: said in [n.message for n in app._notifications], what="the new round's")
            assert f"training stopped at epoch {done}" not in [n.message for n in app._notifications]  # (running)
            await pilot.press("s")
            await wait_for(pilot, lambda: lab.training_status == "stopped")
            await wait_for(pilot, lambda: said not in [n.message for n in app._notifications], what="its withdrawal")

    asyncio.run(main())


def test_the_run_s_total_is_given_up_before_the_node_s_words():
    lab = fresh(epochs=1)
    lab.jump_root()
    lab.backward_step()
    lab.mark_running()  # (as while a run to epoch 30 is under way)
    try:
        forms = status_forms(lab, target=30)
    finally:
        lab.training_status = "idle"
    assert forms[0] == "test tree 4 of 150   node 8 (9/9 computed)   backward 1/9   running epoch 0 of 30   ? help"
    with_total = [form for form in forms if "of 30" in form]
    assert with_total[-1] == "test tree 4 of 150  node 8 (9/9)  back 1/9  running epoch 0 of 30"
    assert forms[len(with_total)] == "test tree 4 of 150  node 8 (9/9)  back 1/9  running epoch 0"


def test_every_status_line_form_keeps_the_epoch_and_the_training_state():
    lab = fresh(epochs=1)
    lab.type_tree(deep_tree(301))  # 601 nodes: the longest numbers a cursor shows
    lab.jump_root()
    lab.backward_step()
    assert status_forms(lab)[-1].endswith("untrained")
    lab.train()
    forms = status_forms(lab, plots_hidden=True)
    assert "loss" in forms[0] and "? help" in forms[0]
    assert all(len(a) > len(b) for a, b in zip(forms, forms[1:]))  # each one shorter
    assert all(re.search(r"node 600.*back(ward)? 1/601.*completed ep", form) for form in forms), forms
    assert len(forms[-1]) <= 58  # the least screen (60 columns) less the padding fits it whole
    assert "completed epoch 1" in next(form for form in forms if len(form) <= 58)


@pytest.mark.parametrize("leaves", [31, 61])  # 61 nodes: the maps' titles are cut at 60x20; 121: the range line too
def test_a_typed_tree_at_60x20_keeps_whole_numbers_and_says_how_training_goes(leaves):
    """At 60x20 the plots are hidden: the status line is the one place that says training runs,
    pauses and stops, and its epoch; the maps' titles and the outline's range line shorten whole."""
    n = 2 * leaves - 1

    async def check(app, lab, pilot):
        await pilot.press("i")
        app.screen.query_one("#prompt-input").value = deep_tree(leaves)
        await pilot.press("enter")
        await pilot.pause()
        assert lab.num_nodes == n and not app.screen.query_one("#tree-plots").display
        await pilot.press("end", "b")
        await pilot.press("t")
        await wait_for(pilot, lambda: re.search(r"running epoch \d", status_line(app)))
        await pilot.press("t")
        await wait_for(pilot, lambda: f"paused epoch {lab.epochs_done}" in status_line(app))
        await pilot.press("s")
        await wait_for(pilot, lambda: not lab.training and f"stopped epoch {lab.epochs_done}" in status_line(app))
        for size in ((60, 20), (80, 22), (80, 24), (120, 36)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            await pilot.pause()
            status = status_line(app)
            assert f"stopped epoch {lab.epochs_done}" in status and f"node {n - 1}" in status, (size, status)
            assert re.search(rf"back(ward)? 1/{n}", status), (size, status)
            text = screen_text(app)
            for selector in ("#tree-map-h", "#tree-map-dh"):
                heatmap = app.screen.query_one(selector, Heatmap)
                first, count = heatmap.first_node, heatmap.data.shape[1]
                title = heatmap.title
                assert count < n and title in text, (size, title)  # drawn whole
                assert re.findall(r"\d+", title) == [str(first), str(first + count - 1), str(n)], (size, title)
            lines = outline_lines(app)
            shown = re.fullmatch(r" *(?:lines )?(\d+)-(\d+)(?: of |/)(\d+)", lines[-1])
            assert shown and shown[3] == str(n), (size, lines)
            assert int(shown[2]) - int(shown[1]) + 1 == len(lines) - 2, (size, lines)  # less the heading

    drive(check, size=(60, 20), epochs=10000)


def test_keys_stay_the_screens_when_a_deep_tree_overflows_the_side_panel_at_100x30():
    async def check(app, lab, pilot):
        await pilot.press("i")
        app.screen.query_one("#prompt-input").value = deep_tree()
        await pilot.press("enter", "right")  # a node computed: its lines too (with none the info fit exactly)
        await pilot.pause()
        side = app.screen.query_one("#tree-side")
        assert side.virtual_size.height > side.size.height  # the info overflows: the panel scrolls
        await pilot.press("end", "left")  # not the panel's scroll keys
        assert lab.cursor == lab.num_nodes - 1 and app.focused is None

    drive(check, size=(100, 30))


def test_the_export_notice_names_the_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def check(app, lab, pilot):
        notices = []
        monkeypatch.setattr(app, "notify", lambda message, **kwargs: notices.append(message))
        await pilot.press("x")
        app.screen.query_one("#prompt-input").value = "relative.npz"
        await pilot.press("enter")
        await pilot.pause()
        assert (tmp_path / "relative.npz").is_file()
        assert notices == [f"exported to {tmp_path / 'relative.npz'}"]
        await pilot.press("x")
        app.screen.query_one("#prompt-input").value = "/proc/rnnlab-cannot-write-here.npz"
        await pilot.press("enter")
        await pilot.pause()
        assert "cannot write /proc/rnnlab-cannot-write-here.npz" in str(app.screen.query_one("#prompt-error").render())

    drive(check)


def test_the_first_q_s_warning_counts_the_epochs_trained_after_it(monkeypatch):
    """The warning kept the count it was written with while training went on under it (the main lab's follows
    its count): the user read a stale number of epochs to lose."""
    from rnnlab.tui import terminal

    monkeypatch.setattr(terminal, "QUIT_CONFIRM_S", 600.0)  # the warning stays up however slow the machine

    async def check(app, lab, pilot):
        lab.train(epochs=1)
        await pilot.press("q")
        await pilot.pause()
        lab.train(epochs=2)  # more epochs under the warning (as a background training's)
        await wait_for(pilot, lambda: list(app._notifications)[-1].message.startswith("3 trained epochs would be "
                                                                                      "lost"), what="a new count")
        assert app.return_code is None and len(app._notifications) == 1  # the same toast, its text changed

    drive(check)


def test_q_with_trained_epochs_names_them_and_only_a_second_q_quits():
    """The lab cannot save a model: one stray q (or ctrl+c) must not throw away the training."""
    async def check(app, lab, pilot):
        lab.train(epochs=2)
        for key in ("q", "ctrl+c"):
            app._quit_armed_until = 0.0  # a second press long after the first: asks again
            await pilot.press(key)
            await pilot.pause()
            assert app.return_code is None and isinstance(app.screen, TreeLabScreen)
            assert list(app._notifications)[-1].message == (
                "2 trained epochs would be lost (this lab cannot save them): q (or ctrl+c) again quits, Esc stays")
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.return_code == 0

    async def untrained(app, lab, pilot):
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0 and not app._notifications

    drive(untrained)
    drive(check, size=(120, 36))


def test_new_options_after_training_take_a_second_enter_and_unchanged_ones_keep_the_model():
    async def check(app, lab, pilot):
        lab.train(epochs=2)
        await pilot.press("e")
        await pilot.pause()
        warning = app.screen.query_one("#prompt-warning")
        assert str(warning.render()) == ("Applying a change drops the 2 trained epochs (this lab cannot save them), "
                                         "unless it changes only learning_rate, epochs or batch_size.")
        await pilot.press("enter")  # the options as they are: nothing to drop
        await pilot.pause()
        assert isinstance(app.screen, TreeLabScreen) and lab.epochs_done == 2 and lab.hidden_size == 8
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#prompt-input").value = "hidden_size=x"
        await pilot.press("enter")  # a bad value is named at once, before any confirmation
        error = str(app.screen.query_one("#prompt-error").render())
        assert "hidden_size must be an integer in [1, 256], got 'x'" in error
        app.screen.query_one("#prompt-input").value = "hidden_size=0"
        await pilot.press("enter")
        error = str(app.screen.query_one("#prompt-error").render())
        assert "hidden_size must be an integer in [1, 256], got 0" in error
        app.screen.query_one("#prompt-input").value = "hidden_size=4"
        await pilot.press("enter")  # asks first
        await pilot.pause()
        assert not isinstance(app.screen, TreeLabScreen) and lab.epochs_done == 2 and lab.hidden_size == 8
        assert "Enter again drops the 2 trained epochs" in str(app.screen.query_one("#prompt-warning").render())
        assert str(app.screen.query_one("#prompt-error").render()) == ""
        app.screen.query_one("#prompt-input").value = "hidden_size=5"
        await pilot.press("enter")  # another text: asks again
        await pilot.pause()
        assert not isinstance(app.screen, TreeLabScreen) and lab.hidden_size == 8
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TreeLabScreen) and lab.hidden_size == 5 and lab.epochs_done == 0
        await pilot.press("e")  # untrained now: no warning, one Enter applies
        await pilot.pause()
        assert not app.screen.query("#prompt-warning")
        app.screen.query_one("#prompt-input").value = "hidden_size=6"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TreeLabScreen) and lab.hidden_size == 6

    drive(check, size=(120, 36))


def test_more_epochs_after_training_apply_at_the_first_enter_and_keep_the_trained_epochs():
    async def check(app, lab, pilot):
        lab.train(epochs=2)
        model = lab.model
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#prompt-input").value = "epochs=1"
        await pilot.press("enter")  # no second Enter: the model stays
        await pilot.pause()
        assert isinstance(app.screen, TreeLabScreen) and lab.model is model and lab.epochs_done == 2
        assert lab.options["epochs"] == 1
        assert list(app._notifications)[-1].message == "epochs 1: the model stays with its 2 trained epochs"
        await pilot.press("e")  # a lower rate to fine-tune: kept too
        await pilot.pause()
        app.screen.query_one("#prompt-input").value = "learning_rate=0.001 batch_size=8"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TreeLabScreen) and lab.model is model and lab.epochs_done == 2
        assert (lab.trainer.optimizer.learning_rate, lab.trainer.batch_size) == (0.001, 8)
        assert list(app._notifications)[-1].message == (
            "learning_rate 0.001, batch_size 8: the model stays with its 2 trained epochs")
        await pilot.press("question_mark")
        await pilot.pause()
        assert "options: name=value; hidden_size or seed: a fresh model" in screen_text(app)

    drive(check, size=(120, 36))


def test_the_options_dialog_lists_each_value_with_its_range_whole_at_80x24():
    """Its errors named the ranges, the dialog did not: it lists every option, its value and its
    range, above the field; at 80x24, after training (the warning above the field), all of them. Each
    with a word on what it is, as the seq2seq lab's dialog has ("steps ... per run (t)"): "epochs  30
    [1, 10000]" left it a guess whether epochs counted per run or in all."""
    async def check(app, lab, pilot):
        lab.train(epochs=1)
        await pilot.press("e")
        await pilot.pause()
        table = app.screen.query_one("#options-table")
        lines = str(table.render()).splitlines()
        assert [line.split()[0] for line in lines] == ["hidden_size", "learning_rate", "epochs", "seed", "batch_size"]
        assert re.fullmatch(r" *hidden_size  8 +\[1, 256\]  units per node vector", lines[0])
        assert lines[1].endswith("0.01  (0, 10]  Adam's") and lines[2].endswith("[1, 10000]  per run (t)")
        assert lines[3].endswith("[0, 2^63-1]  weights, minibatch order")
        assert lines[4].endswith("[1, 1024]  trees per step")
        scroll = app.screen.query_one("#options-scroll")
        assert scroll.size.height == 5 and scroll.region.bottom <= 24  # every option in view, none cut
        app.screen.query_one("#prompt-input").value = "epochs=0"
        await pilot.press("enter")
        await pilot.pause()
        error = app.screen.query_one("#prompt-error")
        assert str(error.render()) == "epochs must be an integer in [1, 10000], got 0"
        assert error.region.height > 0 and error.region.bottom < 24

    drive(check, size=(80, 24))


def test_an_unknown_word_is_one_line_and_the_help_lists_every_word():
    from textual.widgets import Static

    async def check(app, lab, pilot):
        await pilot.press("i")
        app.screen.query_one("#prompt-input").value = "((superb but) dull)"
        await pilot.press("enter")
        await pilot.pause()
        error = app.screen.query_one("#prompt-error")
        assert str(error.render()) == "unknown word 'superb' at column 3 (27 known; e.g. awful, bad, boring)"
        assert error.size.height == 1
        app.screen.query_one("#prompt-input").value = "((goood but) dull)"
        await pilot.press("enter")
        await pilot.pause()
        assert str(error.render()) == "unknown word 'goood' at column 3 (27 known; did you mean 'good'?)"
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        words = str(app.screen.query_one("#tree-help-words").render())
        assert words.startswith("\nThe model knows 27 words: awful, bad,") and "good" in words
        # the help ends with how to close it, as the other labs' do: it read "Esc closes this." above the words
        last = app.screen.query(Static).last()
        assert str(last.render()).strip() == "Esc closes this.", str(last.render())

    drive(check, size=(120, 36))


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 36)])
def test_every_footer_key_and_the_whole_sub_title_in_view_down_to_80_columns(size):
    """At 80 columns the footer lost its last keys to "▏^p palette" and the header ended "450
    trainin…": below 120 the footer packs its keys closer without the palette's (ctrl+p still opens
    it), as the main lab's, and the header takes the longest sub-title that fits."""
    async def check(app, lab, pilot):
        screen = app.screen
        lines = screen_text(app).splitlines()
        for shown in footer_keys(app, screen):
            assert shown in lines[-1], (shown, lines[-1])
        assert ("palette" in lines[-1]) == (size[0] >= 120)
        assert "…" not in lines[0] and "rnnlab — treebank: recursive net, H=8, 27 words" in lines[0]
        assert ("training trees" in lines[0]) == (size[0] >= 100)

    drive(check, size=size)


def test_at_80x24_the_plot_titles_and_the_side_panel_hints_fit():
    """The accuracy plot's title ended "(train 100%, test…" at 80 columns: where it does not fit, the
    same numbers shorter. The side panel's hints fit its 36 columns (one wrapped under its margin)."""
    async def check(app, lab, pilot):
        text = screen_text(app)
        assert "needs the root (End computes it)" in text and "test…" not in text
        info = app.screen.query_one("#tree-info")
        lines = str(info.render()).splitlines()
        assert "no node yet: → computes node 0" in lines  # below the fold here: whole, on one line
        assert info.content_size.width >= max(len("no node yet: → computes node 0"),
                                              len("  needs the root (End computes it)"))
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.training_status == "completed" and "completed ep" in screen_text(app))
        await pilot.pause()
        last = lab.history[-1]
        text = screen_text(app)
        test = "" if last.test_accuracy is None else f", test {last.test_accuracy:.0%}"
        assert f"train {last.train_accuracy:.0%}{test}" in text and "test…" not in text and "(train" not in text
        await pilot.press("home", "right")
        assert "needs the root (End computes it)" in screen_text(app)

    drive(check, size=(80, 24), epochs=2)


def test_the_help_wraps_a_long_description_under_itself():
    async def check(app, lab, pilot):
        await pilot.press("question_mark")
        await pilot.pause()
        lines = screen_text(app).splitlines()
        # the whole width, as the seq2seq lab's help: 76 columns left the lab's edges beside it ("──│", " -│")
        assert app.screen.query_one("#tree-help").region.width == 80
        at = next(k for k, line in enumerate(lines) if "export: vectors, dL/dh" in line)
        column = lines[at].index("export: ")
        for line in lines[at - 12:at + 1]:  # every key's description starts in the one column
            if re.search(r"\w: ", line[column:column + 20]):
                assert line[column - 2:column] == "  " and line[column] != " ", line

    drive(check, size=(80, 24))


def test_parse_assignments():
    assert parse_assignments("hidden_size=32, learning_rate=0.5") == {"hidden_size": 32, "learning_rate": 0.5}
    assert parse_assignments("seed=x") == {"seed": "x"}  # the lab's check names what a seed must be
    for text, message in (("hidden_size", "expected name=value, got 'hidden_size', e.g. hidden_size=16"),
                          ("tree=3", "unknown option 'tree'"), ("seed=1 seed=2", "seed is given twice"),
                          ("hiden_size=3", r"unknown option 'hiden_size' \(5 known; did you mean 'hidden_size'\?\)"),
                          # an abbreviation got "e.g. hidden_size, learning_rate, epochs", no guess
                          ("lr=0.1", r"^unknown option 'lr' \(5 known; did you mean 'learning_rate'\?\)$"),
                          ("bs=4", r"^unknown option 'bs' \(5 known; did you mean 'batch_size'\?\)$")):
        with pytest.raises(UserError, match=message):
            parse_assignments(text)


# ---------------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------------

def test_cli_trains_and_predicts_typed_trees_as_json(capsys):
    code, out, err = run(capsys, "tree", "--epochs", "2", "--hidden-size", "4", "--seed", "1", "--batch-size", "8",
                         "--json", "--parse", "pos ((dull but) good)", "--parse", "(not good)")
    assert code == 0, err
    data = json.loads(out)
    assert data["status"] == "completed" and data["options"]["hidden_size"] == 4 and data["options"]["seed"] == 1
    assert data["options"]["batch_size"] == 8
    assert [row["epoch"] for row in data["epochs"]] == [1, 2]
    assert set(data["epochs"][0]) == {"epoch", "loss", "train_accuracy", "test_accuracy", "seconds", "learning_rate",
                                      "batch_size"}
    assert (data["epochs"][1]["learning_rate"], data["epochs"][1]["batch_size"]) == (0.01, 8)
    assert data["final"]["epoch"] == 2
    first, second = data["predictions"]
    assert first["tree"] == "((dull but) good)" and first["label"] == "pos" and first["correct"] in (True, False)
    assert second["label"] is None and second["correct"] is None
    assert sum(second["probabilities"].values()) == pytest.approx(1.0)


def test_cli_prints_tables(capsys):
    code, out, _ = run(capsys, "tree", "--epochs", "1", "--hidden-size", "4", "--parse", "good")
    assert code == 0
    assert "test acc" in out and "prediction" in out and "p(pos)" in out and "good" in out


@pytest.mark.parametrize("args, message", [
    (["--parse", "((good but) dull"],
     "--parse '((good but) dull': unbalanced parentheses: '(' at column 1 is never closed"),
    (["--parse", "(superb film)"], "unknown word 'superb' at column 2"),
    # the engine's checks, in the words of esn's and seq2seq's and of the lab's options form
    (["--learning-rate", "0"], "rnnlab: error: --learning-rate must be a number in (0, 10], got 0"),
    (["--epochs", "0"], "rnnlab: error: --epochs must be an integer in [1, 10000], got 0"),
    (["--hidden-size", "1000"], "rnnlab: error: --hidden-size must be an integer in [1, 256], got 1000"),
    (["--batch-size", "0"], "rnnlab: error: --batch-size must be an integer in [1, 1024], got 0"),
    (["--seed", str(2**63)], f"rnnlab: error: --seed must be an integer in [0, 2^63-1], got {2**63}"),
])
def test_cli_bad_input_is_one_line_and_exit_2(capsys, args, message):
    code, _, err = run(capsys, "tree", "--epochs", "1", *args) if "--epochs" not in args else run(capsys, "tree", *args)
    assert code == 2
    assert message in one_line_error(err)


def test_p_says_a_screenshot_it_cannot_save_and_the_lab_goes_on(monkeypatch):
    """An unwritable working directory ended the architecture labs with a traceback (the main lab
    said it inline): each lab now says it (code review)."""
    from conftest import notices_of, refuse_screenshots

    async def check(app, lab, pilot):
        notices = notices_of(app.screen)
        refuse_screenshots(monkeypatch, app)
        await pilot.press("p")
        assert notices == [("cannot save the screenshot: Permission denied", "error")]
        before = lab.cursor
        await pilot.press("right")
        assert app.is_running and lab.cursor == before + 1

    drive(check)
