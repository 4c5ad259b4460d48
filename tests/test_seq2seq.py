"""Encoder-decoder with attention: kernels vs the float64 reference, masks, teacher forcing vs
step-by-step decoding, finite-difference gradients, greedy decoding, training, data and validation."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import rel_err
from rnnlab import gradcheck
from rnnlab import reference
from rnnlab.checks.seq2seq import check_attention, check_seq2seq
from rnnlab.data.seq2seq import BOS, DIGIT0, EOS, PAD, ReversalTask, SortTask, make_batch
from rnnlab.layers import seq2seq as s2s
from rnnlab.layers.seq2seq import Attention, Seq2Seq, lengths_mask
from rnnlab.train.seq2seq import Seq2SeqTrainer, evaluate_greedy
from rnnlab.train.trainer import TrainingDiverged
from rnnlab.reference import attention as ref

KINDS = ["dot", "general", "additive"]
T, B, S, H, A = 3, 4, 5, 6, 4
LENGTHS = np.array([5, 2, 1, 3])


def _attention_problem(kind, dtype, seed=0):
    layer = Attention(kind, H, attn_size=A, dtype=dtype, seed=seed)
    rng = np.random.default_rng(100 + seed)
    q = rng.standard_normal((T, B, H)).astype(dtype)
    m = rng.standard_normal((S, B, H)).astype(dtype)
    dy = rng.standard_normal((T, B, H)).astype(dtype)
    return layer, q, m, dy


# ---------------------------------------------------------------------------------------------
# kernels and the attention layer vs the reference
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 2e-5)])
@pytest.mark.parametrize("kind", KINDS)
def test_attention_matches_reference(kind, dtype, tol):
    layer, q, m, dy = _attention_problem(kind, dtype)
    out, trace = layer.forward(q, m, lengths=LENGTHS)
    grads = layer.backward(trace, dy)
    mask = lengths_mask(LENGTHS, S)
    rf = ref.forward(kind, layer.parameters(), q, m, mask)
    rg = ref.backward(kind, layer.parameters(), q, m, mask, dy)
    assert out.dtype == np.dtype(dtype) and out.shape == (T, B, H)
    errors = {name: rel_err(trace[name], rf[name]) for name in ("scores", "weights", "context", "attentional")}
    assert list(grads) == list(rg) == list(layer.state_dict()) + ["query", "memory"]
    for name in rg:
        assert grads[name].dtype == np.dtype(dtype), name
        errors["grad." + name] = rel_err(grads[name], rg[name])
    bad = {k: v for k, v in errors.items() if not v < tol}
    assert not bad, bad


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", KINDS)
def test_masked_weights_are_zero_and_rows_sum_to_one(kind, dtype):
    layer, q, m, _ = _attention_problem(kind, dtype)
    padded = ~lengths_mask(LENGTHS, S)  # (S, B)
    m[padded] = 1e4  # huge padded memory: must not leak into the weights or the context
    _, trace = layer.forward(q, m, lengths=LENGTHS)
    w = trace["weights"]
    assert w.shape == (T, B, S)
    assert np.all(w.transpose(0, 2, 1)[:, padded] == 0.0)
    assert np.all(w.transpose(0, 2, 1)[:, ~padded] > 0.0)
    np.testing.assert_allclose(w.sum(axis=2), 1.0, rtol=0, atol=1e-6 if dtype == "float32" else 1e-14)
    # sequence 2 has one valid step: all its weight is there and its context is that memory step
    assert np.all(w[:, 2, 0] == 1.0)
    np.testing.assert_allclose(trace["context"][:, 2], np.broadcast_to(m[0, 2], (T, H)), rtol=1e-6)


def test_mask_argument_equals_lengths_and_general_mask_is_respected():
    layer, q, m, _ = _attention_problem("general", "float64")
    out_len, _ = layer.forward(q, m, lengths=LENGTHS)
    out_mask, _ = layer.forward(q, m, mask=lengths_mask(LENGTHS, S))
    np.testing.assert_array_equal(out_len, out_mask)
    holes = np.ones((S, B), bool)
    holes[1, :] = False  # a hole in the middle, not only padding at the end
    _, trace = layer.forward(q, m, mask=holes)
    assert np.all(trace["weights"][:, :, 1] == 0.0)
    np.testing.assert_allclose(trace["weights"].sum(axis=2), 1.0, atol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_reference_backward_agrees_with_finite_differences(kind):
    """The reference's own gradients, checked independently of the kernels."""
    layer, q, m, dy = _attention_problem(kind, "float64")
    p = {k: v.copy() for k, v in layer.parameters().items()}
    mask = lengths_mask(LENGTHS, S)
    tensors = {**p, "query": q, "memory": m}
    analytic = ref.backward(kind, p, q, m, mask, dy)
    result = gradcheck.finite_difference_check(
        kind, lambda: float(np.sum(ref.forward(kind, p, q, m, mask)["attentional"] * dy)), tensors, analytic)
    assert result.ok, result


def test_reference_package_keeps_its_recurrent_api():
    assert callable(reference.forward) and callable(ref.forward)


# ---------------------------------------------------------------------------------------------
# the whole model vs a per-sequence NumPy reference
# ---------------------------------------------------------------------------------------------

def _reference_logits(model, src, lengths, tgt_in):
    """Each sequence alone, unpadded, through rnnlab.reference: encoder, decoder, attention, readout."""
    p = {k: v.astype(np.float64) for k, v in model.parameters().items()}
    mode = model.cell.upper()
    enc = {k[len("encoder."):]: v for k, v in p.items() if k.startswith("encoder.")}
    dec = {k[len("decoder."):]: v for k, v in p.items() if k.startswith("decoder.")}
    att = {k[len("attn."):]: v for k, v in p.items() if k.startswith("attn.")}
    out = []
    for b in range(src.shape[1]):
        x = p["src_embed.weight"][src[: lengths[b], b]][:, None]
        e, h_n, c_n, _ = reference.forward(mode, enc, x, num_layers=model.num_layers)
        y = p["tgt_embed.weight"][tgt_in[:, b]][:, None]
        d, _, _, _ = reference.forward(mode, dec, y, h_n, c_n, num_layers=model.num_layers)
        if model.attention_kind:
            d = ref.forward(model.attention_kind, att, d, e, np.ones((len(e), 1), bool))["attentional"]
        out.append(d[:, 0] @ p["readout.weight"].T + p["readout.bias"])
    return np.stack(out, axis=1)


def _tokens(rng, vocab, shape):
    return rng.integers(0, vocab, shape)


@pytest.mark.parametrize("cell,attention,layers", [("gru", None, 1), ("lstm", "dot", 2), ("rnn", "general", 1),
                                                   ("gru", "additive", 2)])
def test_model_matches_per_sequence_reference(cell, attention, layers):
    model = Seq2Seq(7, 8, 5, cell=cell, attention=attention, num_layers=layers, dtype="float64", seed=3,
                    embed_size=4)
    rng = np.random.default_rng(0)
    src, tgt_in = _tokens(rng, 7, (6, 4)), _tokens(rng, 8, (4, 4))
    lengths = np.array([6, 2, 4, 1])
    logits, trace = model.forward(src, lengths, tgt_in)
    assert logits.shape == (4, 4, 8) and logits.dtype == np.float64
    assert rel_err(logits, _reference_logits(model, src, lengths, tgt_in)) < 1e-12
    assert np.all(trace["encoder"][~lengths_mask(lengths, 6)] == 0.0)  # nothing recorded on padding


@pytest.mark.parametrize("attention", [None, "additive"])
def test_reset_parameters_draws_what_the_constructor_draws_into_the_live_arrays(attention):
    model = Seq2Seq(6, 7, 5, cell="lstm", attention=attention, num_layers=2, seed=3, embed_size=4)
    live = model.parameters()
    model.reset_parameters(11)
    fresh = Seq2Seq(6, 7, 5, cell="lstm", attention=attention, num_layers=2, seed=11, embed_size=4).state_dict()
    assert model.seed == 11 and list(model.state_dict()) == list(fresh)
    for name, value in model.parameters().items():
        assert value is live[name], name  # an optimizer holding the arrays sees the new values
        np.testing.assert_array_equal(value, fresh[name], err_msg=name)


def test_padding_and_batch_neighbours_change_nothing():
    model = Seq2Seq(7, 7, 6, attention="dot", dtype="float64", seed=1)
    rng = np.random.default_rng(1)
    src, tgt_in = _tokens(rng, 7, (6, 3)), _tokens(rng, 7, (4, 3))
    lengths = np.array([3, 6, 2])
    logits, _ = model.forward(src, lengths, tgt_in)
    noisy = src.copy()
    noisy[~lengths_mask(lengths, 6)] = 6  # other tokens in the padding
    np.testing.assert_array_equal(model.forward(noisy, lengths, tgt_in)[0], logits)
    alone, _ = model.forward(src[:3, :1], lengths[:1], tgt_in[:, :1])  # sequence 0 alone, unpadded
    np.testing.assert_allclose(alone[:, 0], logits[:, 0], rtol=0, atol=1e-13)


def test_float32_model_tracks_float64():
    m64 = Seq2Seq(7, 7, 8, attention="additive", dtype="float64", seed=2)
    m32 = Seq2Seq(7, 7, 8, attention="additive", dtype="float32", seed=2)
    m32.load_state_dict(m64.state_dict())
    rng = np.random.default_rng(2)
    src, tgt_in, lengths = _tokens(rng, 7, (5, 3)), _tokens(rng, 7, (4, 3)), np.array([5, 3, 1])
    l64, t64 = m64.forward(src, lengths, tgt_in)
    l32, t32 = m32.forward(src, lengths, tgt_in)
    assert l32.dtype == np.float32
    assert rel_err(l32, l64) < 1e-5
    d = rng.standard_normal(l64.shape)
    g64, g32 = m64.backward(t64, d), m32.backward(t32, d)
    assert all(g32[k].dtype == np.float32 for k in g32)
    assert max(rel_err(g32[k], g64[k]) for k in g64) < 1e-4


# ---------------------------------------------------------------------------------------------
# gradients by finite differences
# ---------------------------------------------------------------------------------------------

def test_checks_are_registered_under_their_names():
    for name in ("attention_dot", "attention_general", "attention_additive", "seq2seq", "seq2seq_attention"):
        assert name in gradcheck.CHECKS


@pytest.mark.parametrize("kind", KINDS)
def test_attention_gradients_by_finite_differences(kind):
    result = gradcheck.CHECKS[f"attention_{kind}"]()
    assert result.ok, result
    assert set(result.errors) == set(Attention(kind, 4, attn_size=3).state_dict()) | {"query", "memory"}


@pytest.mark.parametrize("cell,attention", [("rnn", "dot"), ("lstm", "general"), ("gru", None)])
def test_seq2seq_gradients_by_finite_differences(cell, attention):
    result = check_seq2seq("test", cell, attention, seed=1)
    assert result.ok, result
    model = Seq2Seq(5, 6, 3, cell=cell, attention=attention, embed_size=2)
    assert set(result.errors) == set(model.state_dict())


def test_broken_attention_gradient_is_caught(monkeypatch):
    original = Attention.backward

    def backward(self, trace, d_out):
        grads = original(self, trace, d_out)
        grads["memory"] = grads["memory"] * 1.001
        return grads

    monkeypatch.setattr(Attention, "backward", backward)
    result = check_attention("broken", "additive")
    assert not result.ok and result.worst == "memory"


# ---------------------------------------------------------------------------------------------
# decoding
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell,attention", [("gru", None), ("lstm", "general"), ("gru", "additive")])
def test_teacher_forcing_equals_step_by_step_decoding(cell, attention):
    model = Seq2Seq(9, 9, 6, cell=cell, attention=attention, dtype="float64", seed=4)
    rng = np.random.default_rng(4)
    src, lengths = _tokens(rng, 9, (5, 3)), np.array([5, 2, 4])
    tokens, greedy = model.greedy_decode(src, lengths, max_len=6, bos=1, eos=2, pad=0)
    steps = tokens.shape[0]
    tgt_in = np.concatenate([np.full((1, 3), 1), tokens[:-1]])  # what the decoder was fed
    # past a sequence's EOS the decoder was fed `pad`, which is exactly what tokens holds there
    logits, forced = model.forward(src, lengths, tgt_in)
    np.testing.assert_allclose(logits, greedy["logits"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(forced["decoder"], greedy["decoder"], rtol=0, atol=1e-12)
    live = np.arange(steps)[:, None] < greedy.output_lengths[None, :]
    np.testing.assert_array_equal(logits.argmax(axis=2)[live], tokens[live])
    if attention:
        assert greedy["weights"].shape == (steps, 3, 5)
        np.testing.assert_allclose(forced["weights"], greedy["weights"], rtol=0, atol=1e-12)


def test_greedy_decoding_stops_at_eos():
    model = Seq2Seq(6, 6, 4, attention="dot", dtype="float64", seed=0)
    src, lengths = np.array([[3, 4], [5, 3], [4, 0]]), np.array([3, 2])
    params = model.parameters()
    params["readout.weight"][...] = 0.0
    params["readout.bias"][...] = 0.0
    params["readout.bias"][2] = 1.0  # EOS always wins
    tokens, trace = model.greedy_decode(src, lengths, max_len=10, bos=1, eos=2)
    assert tokens.tolist() == [[2, 2]] and trace.output_lengths.tolist() == [1, 1]
    params["readout.bias"][2] = -1.0  # EOS never wins: runs to max_len
    tokens, trace = model.greedy_decode(src, lengths, max_len=7, bos=1, eos=2)
    assert tokens.shape == (7, 2) and not np.any(tokens == 2) and trace.output_lengths.tolist() == [7, 7]


def test_greedy_decoding_never_writes_excluded_tokens():
    model = Seq2Seq(6, 6, 4, attention="dot", dtype="float64", seed=0)
    src, lengths = np.array([[3, 4], [5, 3], [4, 0]]), np.array([3, 2])
    params = model.parameters()
    params["readout.weight"][...] = 0.0
    params["readout.bias"][...] = [3.0, 2.0, -1.0, 0.0, 1.0, 0.0]  # PAD, then BOS, would always win
    tokens, trace = model.greedy_decode(src, lengths, max_len=4, bos=1, eos=2, exclude=(0, 1))
    assert tokens.tolist() == [[4, 4]] * 4  # the best of the rest
    assert trace["logits"][0, 0].argmax() == 0  # the logits are the readout's, over every token
    with pytest.raises(ValueError, match="exclude must not hold eos"):
        model.greedy_decode(src, lengths, max_len=4, bos=1, eos=2, exclude=(2,))
    with pytest.raises(ValueError, match="exclude must be a token id"):
        model.greedy_decode(src, lengths, max_len=4, bos=1, eos=2, exclude=(6,))
    # a generator is read once (its checks emptied it, and the mask then excluded nothing: an API review)
    tokens, _ = model.greedy_decode(src, lengths, max_len=4, bos=1, eos=2, exclude=(t for t in (0, 1)))
    assert tokens.tolist() == [[4, 4]] * 4
    with pytest.raises(ValueError, match="^exclude must be a sequence of token ids, got 0$"):
        model.greedy_decode(src, lengths, max_len=4, bos=1, eos=2, exclude=0)
    with pytest.raises(ValueError, match="^max_len must be at most 1,000,000, got 100000000000000000000$"):
        model.greedy_decode(src, lengths, max_len=10**20, bos=1, eos=2)  # was an OverflowError from numpy


def test_no_source_lengths_means_every_source_fills_its_steps():
    """As Attention's lengths=None (src_lengths=None said "must hold integers, got dtype object")."""
    model = Seq2Seq(6, 6, 4, attention="dot", dtype="float64", seed=0)
    src, tgt_in = np.array([[3, 4], [5, 3], [4, 1]]), np.array([[1, 1], [3, 4]])
    full = np.array([3, 3])
    assert np.array_equal(model(src, None, tgt_in)[0], model(src, full, tgt_in)[0])
    assert np.array_equal(model.greedy_decode(src, None, 5, bos=1, eos=2)[0],
                          model.greedy_decode(src, full, 5, bos=1, eos=2)[0])


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained():
    task = ReversalTask(2, 5)
    model = Seq2Seq(task.vocab_size, task.vocab_size, 32, attention="general", seed=0)
    trainer = Seq2SeqTrainer(model, task, batch_size=32, learning_rate=0.01, seed=0)
    records = trainer.train(300)
    return task, model, trainer, records


def test_training_learns_reversal_of_short_sequences(trained):
    task, model, trainer, records = trained
    assert records[-1].step == 300
    assert np.mean([r.loss for r in records[-20:]]) < 0.2 < records[0].loss
    score = trainer.evaluate(task.eval_batch(200, seed=0))
    assert score.count == 200
    assert score.sequence_accuracy > 0.8 and score.token_accuracy > 0.9


def test_trained_model_decodes_to_eos_per_sequence(trained):
    task, model, _, _ = trained
    batch = task.eval_batch(50, seed=1)
    tokens, trace = model.greedy_decode(batch.src, batch.src_lengths, 20, task.bos, task.eos, pad=task.pad)
    n = trace.output_lengths
    assert tokens.shape[0] == n.max() < 20  # stopped once every sequence had produced EOS
    for b in range(50):
        assert tokens[n[b] - 1, b] == task.eos and task.eos not in tokens[: n[b] - 1, b]
        assert np.all(tokens[n[b]:, b] == task.pad)
    correct = evaluate_greedy(model, batch, task.bos, task.eos).sequence_accuracy
    assert np.mean(n == batch.tgt_lengths) >= correct  # a right answer has the right length


def test_training_is_deterministic():
    task = ReversalTask(2, 3)

    def losses():
        model = Seq2Seq(task.vocab_size, task.vocab_size, 8, attention="dot", seed=5)
        return [r.loss for r in Seq2SeqTrainer(model, task, batch_size=4, seed=1).train(3)]

    assert losses() == losses()


def test_an_update_that_overflows_is_refused_whole():
    """A step whose update leaves float32 raises TrainingDiverged naming the weight, and applies none
    of the update: the weights and the step count are as before it. Here the readout's bias is
    3.4e38 on every class (the loss is still log 13), just below float32's largest number, and sgd at
    lr 3e38 raises the targets' past it."""
    task = ReversalTask(2, 3)
    model = Seq2Seq(task.vocab_size, task.vocab_size, 8, attention="dot", seed=5)
    model.parameters()["readout.bias"][:] = 3.4e38
    trainer = Seq2SeqTrainer(model, task, batch_size=4, learning_rate=3e38, clip_norm=0.0, optimizer="sgd", seed=1)
    before = {name: p.copy() for name, p in model.parameters().items()}
    with pytest.raises(TrainingDiverged, match=r"the updated readout.bias became non-finite in float32 at step 1"):
        trainer.train_step()
    assert trainer.step == 0 and trainer.optimizer.steps == 0
    for name, p in model.parameters().items():
        np.testing.assert_array_equal(p, before[name], err_msg=name)


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------

def test_reversal_batches_are_deterministic_padded_and_reversed():
    task = ReversalTask(3, 6)
    a, b = task.batch(16, 7, 0), task.batch(16, 7, 0)
    np.testing.assert_array_equal(a.src, b.src)
    assert not np.array_equal(task.batch(16, 8, 0).src, a.src)
    assert a.src_lengths.min() >= 3 and a.src_lengths.max() <= 6 and a.src.shape[0] == a.src_lengths.max()
    for k in range(16):
        n = a.src_lengths[k]
        digits = a.src[:n, k]
        assert np.all((digits >= DIGIT0) & (digits < DIGIT0 + 10)) and np.all(a.src[n:, k] == PAD)
        assert a.tgt_lengths[k] == n + 1
        np.testing.assert_array_equal(a.tgt_out[:n, k], digits[::-1])
        assert a.tgt_out[n, k] == EOS and a.tgt_in[0, k] == BOS
        np.testing.assert_array_equal(a.tgt_in[1 : n + 1, k], digits[::-1])
        assert a.tgt_mask[:, k].tolist() == [t <= n for t in range(a.tgt_in.shape[0])]
    held = task.eval_batch(8, 0, 9, 11)
    assert held.src_lengths.min() >= 9 and held.src_lengths.max() <= 11
    assert task.decode([BOS, DIGIT0 + 4, DIGIT0 + 2, EOS, PAD]) == "<s> 4 2 </s>"


def test_sort_task_sorts():
    batch = SortTask(4, 4).batch(5, 0, 3)
    np.testing.assert_array_equal(batch.tgt_out[:4], np.sort(batch.src, axis=0))


def test_make_batch_pads_targets_of_other_lengths():
    batch = make_batch([np.array([3, 4, 5]), np.array([6])], [np.array([7]), np.array([8, 9, 10, 11])])
    assert batch.src.shape == (3, 2) and batch.tgt_in.shape == (5, 2)
    assert batch.tgt_lengths.tolist() == [2, 5]
    assert batch.tgt_out[:, 0].tolist() == [7, EOS, PAD, PAD, PAD]


# ---------------------------------------------------------------------------------------------
# parameters and validation
# ---------------------------------------------------------------------------------------------

def test_state_dict_round_trip_and_names():
    model = Seq2Seq(7, 8, 5, cell="lstm", attention="additive", seed=0, embed_size=3, attn_size=2)
    names = list(model.state_dict())
    assert names[0] == "src_embed.weight" and names[-2:] == ["readout.weight", "readout.bias"]
    assert {"attn.W1", "attn.W2", "attn.v", "attn.combine.weight", "encoder.weight_hh_l0",
            "decoder.bias_ih_l0"} <= set(names)
    assert model.state_dict()["attn.W1"].shape == (2, 5) and model.state_dict()["src_embed.weight"].shape == (7, 3)
    other = Seq2Seq(7, 8, 5, cell="lstm", attention="additive", seed=1, embed_size=3, attn_size=2)
    other.load_state_dict(model.state_dict())
    src, lengths, tgt = np.array([[3], [4]]), np.array([2]), np.array([[1], [5]])
    np.testing.assert_array_equal(other.forward(src, lengths, tgt)[0], model.forward(src, lengths, tgt)[0])
    assert other.parameters()["encoder.weight_ih_l0"] is other.encoder.parameters()["weight_ih_l0"]



@pytest.mark.parametrize("attention", [None, "dot"])
def test_backward_uses_the_tokens_seen_by_forward(attention):
    """The trace owns copies of src and tgt_in: reusing the caller's int64 arrays after forward (a
    batch buffer refilled in place) used to send the embedding gradients to the new tokens' rows."""
    model = Seq2Seq(6, 7, 4, cell="gru", attention=attention, seed=0)
    src, tgt = np.array([[1, 2], [3, 4], [0, 5]]), np.array([[0, 1], [2, 3]])
    logits, trace = model.forward(src, [3, 2], tgt)
    expected = model.backward(trace, np.ones_like(logits))
    src[...] = 0
    tgt[...] = 0
    got = model.backward(trace, np.ones_like(logits))
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)

def _one_line(excinfo, *words):
    message = str(excinfo.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_validation_errors_name_the_argument():
    with pytest.raises(ValueError) as e:
        Seq2Seq(13, 13, 8, attention="multiplicative")
    _one_line(e, "attention", "'multiplicative'")
    with pytest.raises(ValueError) as e:
        Attention("cosine", 8)
    _one_line(e, "kind", "'cosine'")
    with pytest.raises(ValueError) as e:
        Seq2Seq(13, 13, 8, cell="transformer")
    _one_line(e, "cell")
    with pytest.raises(ValueError) as e:
        Seq2Seq(0, 13, 8)
    _one_line(e, "vocab_in")

    model = Seq2Seq(6, 6, 4, attention="dot", seed=0)
    src, tgt = np.array([[3, 4], [5, 3]]), np.array([[1, 1]])
    cases = [
        ((src, [0, 2], tgt), ("src_lengths", "0")),
        ((src, [3, 2], tgt), ("src_lengths", "3")),
        ((src, [2], tgt), ("src_lengths", "shape")),
        ((src, [2.0, 2.0], tgt), ("src_lengths", "integers")),
        ((src + 3, [2, 2], tgt), ("src", "token 8", "vocab_in")),
        ((src, [2, 2], tgt + 6), ("tgt_in", "vocab_out")),
        ((src.astype(float), [2, 2], tgt), ("src", "integer")),
        ((src, [2, 2], np.array([[1, 1, 1]])), ("batch",)),
    ]
    for args, words in cases:
        with pytest.raises(ValueError) as e:
            model.forward(*args)
        _one_line(e, *words)

    with pytest.raises(ValueError) as e:  # mismatched vocabulary sizes
        Seq2SeqTrainer(Seq2Seq(10, 10, 4), ReversalTask())
    _one_line(e, "vocab", "13")
    state = model.state_dict()
    state["tgt_embed.weight"] = np.zeros((7, 4), np.float32)
    with pytest.raises(ValueError) as e:
        model.load_state_dict(state)
    _one_line(e, "tgt_embed.weight", "(7, 4)")
    before = model.state_dict()
    state = model.state_dict()
    state["readout.bias"] = np.full(6, np.nan)
    with pytest.raises(ValueError):
        model.load_state_dict(state)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())  # left unchanged

    logits, trace = model.forward(src, [2, 1], tgt)
    with pytest.raises(ValueError) as e:
        model.backward(trace, np.zeros((2, 2, 6)))
    _one_line(e, "d_logits", "shape")
    _, greedy = model.greedy_decode(src, [2, 1], 3, 1, 2)
    with pytest.raises(ValueError) as e:
        model.backward(greedy, logits)
    _one_line(e, "trace")
    with pytest.raises(ValueError) as e:
        model.greedy_decode(src, [2, 1], 3, bos=1, eos=6)
    _one_line(e, "eos")

    layer = Attention("general", 4)
    q, m = np.zeros((2, 2, 4), np.float32), np.zeros((3, 2, 4), np.float32)
    for kwargs, words in [(dict(lengths=[4, 1]), ("lengths", "4")), (dict(lengths=[0, 1]), ("lengths",)),
                          (dict(mask=np.zeros((3, 2), bool)), ("mask", "no valid")),
                          (dict(lengths=[1, 1], mask=np.ones((3, 2), bool)), ("not both",))]:
        with pytest.raises(ValueError) as e:
            layer.forward(q, m, **kwargs)
        _one_line(e, *words)
    with pytest.raises(ValueError) as e:
        layer.forward(q, np.zeros((3, 1, 4), np.float32))
    _one_line(e, "batch")
    with pytest.raises(ValueError) as e:
        layer.forward(q.astype(np.float64), m)
    _one_line(e, "query", "float64")
    for bad in [dict(min_length=0), dict(min_length=5, max_length=4)]:
        with pytest.raises(ValueError) as e:
            ReversalTask(**bad)
        _one_line(e, "min_length")


@pytest.mark.parametrize("attention", [None, "dot", "general"])
def test_attn_size_is_refused_where_no_attention_has_that_size(attention):
    """``Seq2Seq(..., attn_size=7)`` with dot, general or no attention was silently ignored (and the
    repr showed it for dot, hid it for None): only the additive score has a size."""
    with pytest.raises(ValueError) as e:
        Seq2Seq(5, 5, 4, attention=attention, attn_size=7)
    _one_line(e, "attn_size", f"attention={attention!r} has none", "got 7")
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="attn_size"):
            Seq2Seq(5, 5, 4, attention=attention, attn_size=bad)
    # None, and hidden_size (the value it defaults to and sizes nothing with), are what it can be
    for ok in (None, 4, np.int64(4)):
        model = Seq2Seq(5, 5, 4, attention=attention, attn_size=ok, seed=0)
        assert model.attn_size is None and "attn_size" not in repr(model)
        assert np.array_equal(model.state_dict().get("attn.combine.weight", 0),
                              Seq2Seq(5, 5, 4, attention=attention, seed=0).state_dict().get("attn.combine.weight", 0))


def test_additive_attn_size_sizes_the_score():
    model = Seq2Seq(5, 5, 4, attention="additive", attn_size=7, seed=0)
    assert model.attn_size == 7 and model.state_dict()["attn.W1"].shape == (7, 4)
    assert repr(model) == "Seq2Seq(5, 5, 4, cell='gru', attention='additive', attn_size=7)"
    assert Seq2Seq(5, 5, 4, attention="additive").attn_size == 4
    with pytest.raises(ValueError, match="attn_size must be a positive integer, got 0"):
        Seq2Seq(5, 5, 4, attention="additive", attn_size=0)


@pytest.mark.parametrize("attention", [None, "dot", "general", "additive"])
@pytest.mark.parametrize("cell,layers", [("rnn", 1), ("lstm", 2), ("gru", 3)])
def test_the_model_is_checked_whole_against_memory_before_anything_is_drawn(cell, layers, attention, monkeypatch):
    """``Seq2Seq(10**9, 10, 10**6)`` named an inner "GRU(1000000, 1000000)" the user never built, and
    embeddings alone too large were numpy's MemoryError: the whole model is counted first, exactly."""
    from rnnlab.layers import _params

    kwargs = dict(cell=cell, attention=attention, num_layers=layers, embed_size=3)
    if attention == "additive":
        kwargs["attn_size"] = 2
    size = Seq2Seq(7, 9, 5, **kwargs).num_parameters
    monkeypatch.setattr(_params, "physical_memory", lambda: 2 * 4 * size)
    Seq2Seq(7, 9, 5, **kwargs)
    monkeypatch.setattr(_params, "physical_memory", lambda: 2 * 4 * size - 2)
    with pytest.raises(ValueError) as e:
        Seq2Seq(7, 9, 5, **kwargs)
    assert str(e.value).startswith(f"Seq2Seq(7, 9, 5, cell={cell!r}")
    _one_line(e, f"its {size:,} parameters need about", "(float32)",
              "make vocab_in, vocab_out, hidden_size, embed_size or num_layers smaller")


def test_attention_refuses_parameters_too_large_before_drawing(monkeypatch):
    from rnnlab.layers import _params

    monkeypatch.setattr(_params, "physical_memory", lambda: 2 * 8 * (6 * 6 + 6 * 12) - 2)
    with pytest.raises(ValueError) as e:
        Attention("general", 6, dtype="float64")
    _one_line(e, "Attention('general', 6, dtype='float64'): its 108 parameters", "make hidden_size smaller")
    Attention("dot", 6, dtype="float64")  # 72 parameters fit


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_parameters_are_drawn_into_the_dtype_with_the_numbers_of_a_float64_draw(dtype, monkeypatch):
    """Attention's weights and the model's embeddings and readout are drawn in chunks straight into the
    dtype (no float64 temporary): bit for bit the float64 draw rounded, as before, whatever the chunk."""
    from rnnlab.layers import _params

    monkeypatch.setattr(_params, "DRAW_CHUNK", 5)
    layer = Attention("additive", 4, attn_size=3, dtype=dtype, seed=11)
    rng = np.random.default_rng(11)
    for name, shape in (("W1", (3, 4)), ("W2", (3, 4)), ("v", (3,)), ("combine.weight", (4, 8))):
        bound = 1 / np.sqrt(shape[-1])
        expected = rng.uniform(-bound, bound, shape).astype(dtype)
        assert layer.state_dict()[name].tobytes() == expected.tobytes(), name
    model = Seq2Seq(6, 7, 4, seed=12, embed_size=3, dtype=dtype)
    rng = np.random.default_rng(s2s._part_seeds(12)[3])
    expected = {"src_embed.weight": rng.standard_normal((6, 3)), "tgt_embed.weight": rng.standard_normal((7, 3)),
                "readout.weight": rng.uniform(-0.5, 0.5, (7, 4)), "readout.bias": rng.uniform(-0.5, 0.5, 7)}
    for name, value in expected.items():
        assert model.state_dict()[name].tobytes() == value.astype(dtype).tobytes(), name


def test_module_exports_exist():
    for name in s2s.__all__:
        assert hasattr(s2s, name)
