"""Losses, optimizers and clipping: the arithmetic under every training step."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.train import clip_gradients, cross_entropy, global_norm, mean_squared_error
from rnnlab.train.optim import SGD, Adagrad, Adam, RMSprop



def _numeric_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        up = f(x)
        x[idx] = old - eps
        down = f(x)
        x[idx] = old
        g[idx] = (up - down) / (2 * eps)
    return g


def test_cross_entropy_value_gradient_and_accuracy():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 3, 4))
    targets = rng.integers(0, 4, (5, 3))
    mask = rng.random((5, 3)) > 0.3
    result = cross_entropy(logits, targets, mask)
    # the definition, step by step
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(logp, targets[..., None], -1)[..., 0]
    assert result.loss == pytest.approx(-(picked * mask).sum() / mask.sum(), rel=1e-12)
    assert result.accuracy == pytest.approx(((logits.argmax(-1) == targets) & mask).sum() / mask.sum())
    numeric = _numeric_grad(lambda z: cross_entropy(z, targets, mask).loss, logits.copy())
    np.testing.assert_allclose(result.grad, numeric, atol=1e-8)
    assert np.all(result.grad[~mask] == 0)  # masked steps never contribute


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[[1000.0, 0.0, -1000.0]]])
    result = cross_entropy(logits, np.array([[0]]), np.ones((1, 1), bool))
    assert result.loss == pytest.approx(0.0, abs=1e-12)
    assert np.isfinite(result.grad).all()


def test_diverged_outputs_give_a_non_finite_loss_without_warnings():
    """The trainer names the divergence in one line; NumPy's RuntimeWarnings must not add a second."""
    mask = np.array([[True, False]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mse = mean_squared_error(np.array([[[np.inf], [np.inf]]]), np.zeros((1, 2, 1)), mask)
        xent = cross_entropy(np.array([[[np.inf, 0.0], [np.nan, 1.0]]]), np.array([[0, 1]]), mask)
    assert not np.isfinite(mse.loss) and not np.isfinite(xent.loss)


def test_mean_squared_error_value_and_gradient():
    rng = np.random.default_rng(1)
    out, target = rng.standard_normal((6, 2, 3)), rng.standard_normal((6, 2, 3))
    mask = np.zeros((6, 2), bool)
    mask[-1] = True  # many-to-one: only the last step counts
    result = mean_squared_error(out, target, mask)
    assert result.loss == pytest.approx(((out[-1] - target[-1]) ** 2).mean(), rel=1e-12)
    assert result.accuracy is None
    numeric = _numeric_grad(lambda z: mean_squared_error(z, target, mask).loss, out.copy())
    np.testing.assert_allclose(result.grad, numeric, atol=1e-8)


def _run(opt_cls, steps=5, **kwargs):
    rng = np.random.default_rng(2)
    p = {"w": rng.standard_normal(4)}
    grads = [{"w": rng.standard_normal(4)} for _ in range(steps)]
    opt = opt_cls(p, **kwargs)
    for g in grads:
        opt.step(p, g)
    return p["w"], grads


def test_sgd_momentum_matches_torch_rule():
    w, grads = _run(SGD, learning_rate=0.1, momentum=0.9)
    expect = np.random.default_rng(2).standard_normal(4)
    v = None
    for g in grads:
        v = g["w"].copy() if v is None else 0.9 * v + g["w"]
        expect = expect - 0.1 * v
    np.testing.assert_allclose(w, expect, rtol=1e-14)


def test_adam_matches_its_definition():
    w, grads = _run(Adam, learning_rate=0.01, beta1=0.9, beta2=0.999, eps=1e-8)
    expect = np.random.default_rng(2).standard_normal(4)
    m = v = 0
    for t, g in enumerate(grads, 1):
        m = 0.9 * m + 0.1 * g["w"]
        v = 0.999 * v + 0.001 * g["w"] ** 2
        expect = expect - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(w, expect, rtol=1e-12)


def test_adagrad_and_rmsprop_match_their_definitions():
    w, grads = _run(Adagrad, learning_rate=0.1, eps=1e-10)
    expect, G = np.random.default_rng(2).standard_normal(4), 0
    for g in grads:
        G = G + g["w"] ** 2
        expect = expect - 0.1 * g["w"] / (np.sqrt(G) + 1e-10)
    np.testing.assert_allclose(w, expect, rtol=1e-12)

    w, grads = _run(RMSprop, learning_rate=0.01, alpha=0.9, eps=1e-8)
    expect, s = np.random.default_rng(2).standard_normal(4), 0
    for g in grads:
        s = 0.9 * s + 0.1 * g["w"] ** 2
        expect = expect - 0.01 * g["w"] / (np.sqrt(s) + 1e-8)
    np.testing.assert_allclose(w, expect, rtol=1e-12)


def test_optimizer_state_round_trips_and_continues_identically():
    rng = np.random.default_rng(3)
    grads = [{"w": rng.standard_normal(3)} for _ in range(6)]
    straight = {"w": np.ones(3)}
    opt = Adam(straight, 0.1)
    for g in grads:
        opt.step(straight, g)
    first = {"w": np.ones(3)}
    opt1 = Adam(first, 0.1)
    for g in grads[:3]:
        opt1.step(first, g)
    resumed = {"w": first["w"].copy()}
    opt2 = Adam(resumed, 0.1)
    opt2.load_state_arrays({k: v.copy() for k, v in opt1.state_arrays().items()})
    for g in grads[3:]:
        opt2.step(resumed, g)
    np.testing.assert_array_equal(resumed["w"], straight["w"])  # bit for bit


@settings(max_examples=50)
@given(st.lists(st.floats(-100, 100), min_size=1, max_size=12), st.floats(0.01, 50))
def test_clip_by_global_norm_caps_the_norm_and_keeps_direction(values, limit):
    g = {"a": np.array(values[: len(values) // 2 + 1]), "b": np.array(values[len(values) // 2 + 1:] or [0.0])}
    before = {k: v.copy() for k, v in g.items()}
    norm, clipped = clip_gradients(g, clip_norm=limit)
    assert norm == pytest.approx(global_norm(before))
    assert global_norm(g) <= limit * (1 + 1e-9)
    assert clipped == (norm > limit)
    if clipped:
        for k in g:  # same direction, only rescaled
            np.testing.assert_allclose(g[k] * norm / limit, before[k], rtol=1e-9, atol=1e-12)
    else:
        for k in g:
            np.testing.assert_array_equal(g[k], before[k])


def test_clip_by_value_then_norm():
    g = {"a": np.array([10.0, -0.5, -7.0])}
    norm, clipped = clip_gradients(g, clip_value=1.0)
    assert clipped and norm == pytest.approx(np.sqrt(100 + 0.25 + 49))
    np.testing.assert_array_equal(g["a"], [1.0, -0.5, -1.0])
    norm, clipped = clip_gradients(g, clip_value=1.0, clip_norm=0.5)
    assert clipped and global_norm(g) == pytest.approx(0.5)
    g = {"a": np.array([0.1, 0.2])}
    assert clip_gradients(g, clip_value=1.0, clip_norm=1.0) == (pytest.approx(np.sqrt(0.05)), False)
    # both in one call: the norm clip reads the norm after the value clip (1.5), not the one before (12.2)
    g = {"a": np.array([10.0, -0.5, -7.0])}
    norm, clipped = clip_gradients(g, clip_value=1.0, clip_norm=0.5)
    assert clipped and norm == pytest.approx(np.sqrt(149.25)) and global_norm(g) == pytest.approx(0.5)


@pytest.mark.parametrize("opt_cls, kwargs", [(SGD, dict(momentum=0.9)), (Adagrad, {}), (RMSprop, {}), (Adam, {})],
                         ids=["sgd", "adagrad", "rmsprop", "adam"])
def test_a_checked_update_is_the_same_update(opt_cls, kwargs):
    """``finite=True`` (the trainer's) computes on copies before applying: bit for bit the same."""
    rng = np.random.default_rng(4)
    plain = {"w": rng.standard_normal((3, 4)).astype(np.float32), "b": rng.standard_normal(4).astype(np.float32)}
    checked = {k: v.copy() for k, v in plain.items()}
    opts = opt_cls(plain, 0.1, **kwargs), opt_cls(checked, 0.1, **kwargs)
    for _ in range(4):
        grads = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in plain.items()}
        opts[0].step(plain, grads)
        opts[1].step(checked, grads, finite=True)
    for key in plain:
        np.testing.assert_array_equal(plain[key], checked[key])
    for key, value in opts[0].state_arrays().items():
        np.testing.assert_array_equal(value, opts[1].state_arrays()[key])


@pytest.mark.parametrize("opt_cls, kwargs, grad, what", [
    (SGD, dict(momentum=0.9), 3e38, "the updated w"),  # p - lr * g: 1e38 - 10 * 3e38 overflows float32
    (Adam, {}, 1e21, "the updated optimizer's v of w"),  # (1 - beta2) g^2 overflows v; p itself stays finite
    (Adagrad, {}, 2e19, "the updated optimizer's sum_squares of w"),
], ids=["sgd", "adam", "adagrad"])
def test_an_update_that_would_overflow_float32_changes_nothing(opt_cls, kwargs, grad, what):
    from rnnlab.train.model import WeightsDiverged

    params = {"b": np.ones(2, np.float32), "w": np.full(3, 1e38, np.float32)}
    opt = opt_cls(params, 10.0, **kwargs)
    opt.step(params, {"b": np.ones(2, np.float32), "w": np.ones(3, np.float32)}, finite=True)
    before = {k: v.copy() for k, v in params.items()}
    state = {k: v.copy() for k, v in opt.state_arrays().items()}
    grads = {"b": np.ones(2, np.float32), "w": np.full(3, grad, np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning: the error says it in one line
        with pytest.raises(WeightsDiverged, match=f"^{what} went beyond float32's range: the weights diverged"):
            opt.step(params, grads, finite=True)
    for key, value in params.items():  # "b", updated before "w" was found to overflow, is untouched too
        np.testing.assert_array_equal(value, before[key])
    for key, value in opt.state_arrays().items():
        np.testing.assert_array_equal(value, state[key])


@pytest.mark.parametrize("cell, extra", [("rnn", {}), ("lstm", {"num_layers": 2}), ("gru", {"bidirectional": True}),
                                         ("mingru", {}), ("leaky", {}), ("jordan", {}), ("selfattention", {})])
def test_a_trained_models_gradients_are_its_losss_by_finite_differences(cell, extra):
    """The layers are checked by finite differences; the models training runs around them (their
    readout, its bias) were not: a readout bias gradient that dropped a row of the batch trained on,
    every test passing."""
    from rnnlab.gradcheck import finite_difference_check
    from rnnlab.spec import ModelSpec
    from rnnlab.train.model import make_model

    spec = ModelSpec(cell=cell, hidden_size=4, dtype="float64", num_heads=2, **extra)
    model = make_model(spec, input_size=3, output_size=2, seed=0, max_len=5)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 2, 3))
    weights = rng.standard_normal((5, 2, 2))  # the loss: sum(outputs * weights), dL/d(outputs) = weights

    def loss() -> float:
        return float(np.sum(model.forward(x)[0] * weights))

    _, _, trace = model.forward(x)
    grads = model.backward(trace, weights)
    params = model.parameters()
    assert {"readout.weight", "readout.bias"} <= set(params)
    result = finite_difference_check(cell, loss, params, grads)
    assert result.ok, (result.worst, result.max_rel_err)
