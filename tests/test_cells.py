"""RNNCell, LSTMCell and GRUCell: one step of their layer, torch's cell names, hand-written BPTT.

The cells run the layers' kernels (pinned by the golden files and finite differences there); these
tests pin that a cell is its layer at one step, stepped by hand over a sequence and back.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import rnnlab
from rnnlab import analysis, explain
from rnnlab.layers import init

T, B, I, H = 6, 3, 4, 5
CELLS = {"RNNCell": ("RNN", dict(nonlinearity="relu")), "LSTMCell": ("LSTM", {}), "GRUCell": ("GRU", {})}


def _cell_and_layer(name, bias=True, dtype="float64"):
    """A cell and a one-layer layer with the same weights (the layer's state_dict, ``_l0`` dropped)."""
    layer_name, options = CELLS[name]
    layer = getattr(rnnlab, layer_name)(I, H, bias=bias, dtype=dtype, seed=1, **options)
    cell = getattr(rnnlab, name)(I, H, bias=bias, dtype=dtype, seed=2, **options)
    cell.load_state_dict({key.removesuffix("_l0"): value for key, value in layer.state_dict().items()})
    return cell, layer


def _pair_or_one(cell, h, c):
    return (h, c) if cell.has_cell_state else h


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name", list(CELLS))
def test_stepping_the_cell_by_hand_is_the_layer(name, bias):
    """The forward over a sequence, one call a step, and BPTT by hand (each step's backward handing
    dL/d(its incoming state) to the step before) give the layer's outputs and every gradient."""
    cell, layer = _cell_and_layer(name, bias)
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((T, B, I)), rng.standard_normal((T, B, H))
    h0, c0, dh_n, dc_n = rng.standard_normal((4, B, H))
    y, state_n, layer_trace = layer(x, _pair_or_one(layer, h0[None], c0[None]))
    expected = layer.backward(layer_trace, dy, _pair_or_one(layer, dh_n[None], dc_n[None]))

    state, traces = _pair_or_one(cell, h0, c0), []
    for t in range(T):
        state, trace = cell(x[t], state)
        traces.append(trace)
        np.testing.assert_allclose(state[0] if cell.has_cell_state else state, y[t], rtol=1e-12, atol=1e-14)
    final = state if cell.has_cell_state else (state,)
    for half, layer_half in zip(final, state_n if cell.has_cell_state else (state_n,), strict=True):
        np.testing.assert_allclose(half, layer_half[0], rtol=1e-12, atol=1e-14)

    totals = {key: np.zeros_like(value) for key, value in cell.parameters().items()}
    dx = np.empty_like(x)
    dh, dc = dh_n, dc_n
    for t in reversed(range(T)):
        grads = cell.backward(traces[t], _pair_or_one(cell, dh + dy[t], dc))
        for key in totals:
            totals[key] += grads[key]
        dx[t], dh, dc = grads["input"], grads["hx"], grads.get("cx")
        np.testing.assert_allclose(traces[t].get("dh")[0], layer_trace.get("dh")[t], rtol=1e-12, atol=1e-14)
    for key, total in totals.items():
        np.testing.assert_allclose(total, expected[key + "_l0"], rtol=1e-11, atol=1e-13, err_msg=key)
    np.testing.assert_allclose(dx, expected["input"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dh, expected["h0"][0], rtol=1e-12, atol=1e-14)
    if cell.has_cell_state:
        np.testing.assert_allclose(dc, expected["c0"][0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(CELLS))
def test_names_and_shapes_are_torchs_cells(name):
    cell, _ = _cell_and_layer(name, dtype="float32")
    G = {"RNNCell": 1, "LSTMCell": 4, "GRUCell": 3}[name]
    assert {key: value.shape for key, value in cell.state_dict().items()} == {
        "weight_ih": (G * H, I), "weight_hh": (G * H, H), "bias_ih": (G * H,), "bias_hh": (G * H,)}
    assert [key for key, _ in cell.named_parameters()] == list(cell.state_dict())
    assert list(getattr(rnnlab, name)(I, H, False).state_dict()) == ["weight_ih", "weight_hh"]
    state, trace = cell(np.ones((B, I), np.float32))
    grads = cell.backward(trace)
    assert list(grads) == list(cell.state_dict()) + ["input", "hx"] + (["cx"] if name == "LSTMCell" else [])
    assert grads["input"].shape == (B, I) and grads["hx"].shape == (B, H)
    assert trace.get("h").shape == (1, B, H) and trace["h"].shape == (1, 1, B, H)  # the layer's records, T = 1


@pytest.mark.parametrize("name", list(CELLS))
def test_unbatched_step_as_torch_takes_it(name):
    """torch's cells take x (I,) with hx (H,): the batch of one, with every result (H,) or (I,)."""
    cell, _ = _cell_and_layer(name)
    rng = np.random.default_rng(0)
    x, h, c, dh, dc = rng.standard_normal(I), *rng.standard_normal((4, H))
    state, trace = cell(x, _pair_or_one(cell, h, c))
    batched, batched_trace = cell(x[None], _pair_or_one(cell, h[None], c[None]))
    grads = cell.backward(trace, _pair_or_one(cell, dh, dc))
    batched_grads = cell.backward(batched_trace, _pair_or_one(cell, dh[None], dc[None]))
    for half, batched_half in zip(*(s if cell.has_cell_state else (s,) for s in (state, batched)), strict=True):
        assert half.shape == (H,)
        np.testing.assert_array_equal(half, batched_half[0])
    assert grads["input"].shape == (I,) and grads["hx"].shape == (H,)
    for key, grad in grads.items():
        np.testing.assert_array_equal(grad, batched_grads[key] if grad.ndim == 2 or key in cell.state_dict()
                                      else batched_grads[key][0], err_msg=key)


def test_cells_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for name in CELLS:
        theirs = getattr(torch.nn, name)(I, H).double()
        ours = getattr(rnnlab, name)(I, H, dtype="float64")
        ours.load_state_dict({key: value.detach().numpy() for key, value in theirs.state_dict().items()})
        x, h, c = (torch.tensor(a, requires_grad=True)
                   for a in (rng.standard_normal((B, I)), *rng.standard_normal((2, B, H))))
        dh, dc = rng.standard_normal((2, B, H))
        if name == "LSTMCell":
            h_next, c_next = theirs(x, (h, c))
            ((h_next * torch.from_numpy(dh)).sum() + (c_next * torch.from_numpy(dc)).sum()).backward()
            (ours_h, ours_c), trace = ours(x.detach().numpy(), (h.detach().numpy(), c.detach().numpy()))
            grads = ours.backward(trace, (dh, dc))
            np.testing.assert_allclose(ours_c, c_next.detach().numpy(), rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(grads["cx"], c.grad.numpy(), rtol=1e-12, atol=1e-14)
        else:
            h_next = theirs(x, h)
            (h_next * torch.from_numpy(dh)).sum().backward()
            ours_h, trace = ours(x.detach().numpy(), h.detach().numpy())
            grads = ours.backward(trace, dh)
        np.testing.assert_allclose(ours_h, h_next.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=name)
        for key, parameter in theirs.named_parameters():
            np.testing.assert_allclose(grads[key], parameter.grad.numpy(), rtol=1e-12, atol=1e-14, err_msg=key)
        np.testing.assert_allclose(grads["input"], x.grad.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(grads["hx"], h.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_gradient_agrees_with_finite_differences():
    cell = rnnlab.GRUCell(I, H, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    x, h, dh = rng.standard_normal((B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    grads = cell.backward(cell(x, h)[1], dh)
    w, eps = cell.parameters()["weight_hh"], 1e-6
    for index in [(0, 0), (7, 3), (14, 4)]:
        saved = w[index]
        w[index] = saved + eps
        plus = np.sum(cell(x, h)[0] * dh)
        w[index] = saved - eps
        minus = np.sum(cell(x, h)[0] * dh)
        w[index] = saved
        assert abs((plus - minus) / (2 * eps) - grads["weight_hh"][index]) < 1e-8, index


def test_arguments_follow_torchs_order():
    rnn = rnnlab.RNNCell(I, H, False, "relu")  # torch's RNNCell: bias before nonlinearity
    assert not rnn.bias and rnn.nonlinearity == "relu" and repr(rnn) == "RNNCell(4, 5, nonlinearity='relu', bias=False)"
    assert repr(rnnlab.LSTMCell(I, H, dtype="float64")) == "LSTMCell(4, 5, dtype='float64')"
    with pytest.raises(TypeError, match=re.escape("LSTMCell.__init__() takes from 3 to 4 positional arguments")):
        rnnlab.LSTMCell(I, H, True, "float64")
    with pytest.raises(TypeError, match=re.escape("GRUCell.forward() got an unexpected keyword argument 'h0'")):
        rnnlab.GRUCell(I, H)(np.zeros((B, I), np.float32), h0=None)


@pytest.mark.parametrize("call, message", [
    (lambda c: c(np.zeros((T, B, I), np.float32)),
     "input must have shape (B, 4), or (4,) unbatched, got (6, 3, 4); a whole sequence (T, B, I) runs in one call "
     "of rnnlab.LSTM"),
    (lambda c: c(np.zeros((B, I + 1), np.float32)), "input must have shape (B, 4), or (4,) unbatched, got (3, 5)"),
    (lambda c: c(np.zeros((0, I), np.float32)), "input must have at least one sequence, got shape (0, 4)"),
    (lambda c: c(np.zeros((B, I))), "input has dtype float64, but the layer is float32"),
    (lambda c: c(np.zeros((B, I), np.float32), np.zeros((B, H), np.float32)),
     "LSTMCell hx must be a pair (hx, cx), each of shape (3, 5)"),
    (lambda c: c(np.zeros((B, I), np.float32), (None, np.zeros((B + 1, H), np.float32))),
     "cx has shape (4, 5), expected (3, 5)"),
    (lambda c: c(np.zeros(I, np.float32), (np.zeros((1, H), np.float32), None)), "hx has shape (1, 5), expected (5,)"),
    (lambda c: c.backward(c(np.zeros((B, I), np.float32))[1], np.zeros((B, H), np.float32)),
     "LSTMCell dstate must be a pair (dh, dc), each of shape (3, 5)"),
    (lambda c: c.backward(rnnlab.LSTMCell(I, H)(np.zeros((B, I), np.float32))[1]),
     "trace comes from another LSTMCell's forward()"),
    (lambda c: c.backward(rnnlab.LSTM(I, H)(np.zeros((T, B, I), np.float32))[2]),
     "trace must come from this LSTMCell's own forward()"),
])
def test_bad_input_is_one_line_naming_it(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call(rnnlab.LSTMCell(I, H, seed=0))


def test_a_layers_state_dict_into_a_cell_says_how_the_names_differ():
    cell, layer = rnnlab.LSTMCell(I, H), rnnlab.LSTM(I, H)
    with pytest.raises(ValueError, match=re.escape("unexpected key(s): weight_ih_l0, weight_hh_l0, bias_ih_l0, "
                                                   "bias_hh_l0 (a one-layer layer's state dict: a cell's names "
                                                   "have no _l0; load {k.removesuffix('_l0'): v})")):
        cell.load_state_dict(layer.state_dict())
    with pytest.raises(ValueError, match=re.escape("(a cell's state dict: a layer's names end in _l0; load "
                                                   "{k + '_l0': v})")):
        layer.load_state_dict(cell.state_dict())
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})  # as the hint says
    layer.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})


def test_a_gru_cell_refuses_a_pair():
    with pytest.raises(ValueError, match=re.escape("GRUCell hx must be a single array hx of shape (3, 5), not a tup")):
        rnnlab.GRUCell(I, H)(np.zeros((B, I), np.float32), (None, None))


def test_initialisations_and_analyses_take_a_cell():
    """rnnlab.layers.init writes a cell's own names; rnnlab.analysis reads its trace as a layer's."""
    cell = rnnlab.LSTMCell(I, H, dtype="float64", seed=0)
    init.orthogonal_(cell, seed=0)
    init.forget_gate_bias_(cell, 1.0)
    w = cell.parameters()["weight_hh"]
    for gate in range(4):
        np.testing.assert_allclose(w[gate * H:(gate + 1) * H] @ w[gate * H:(gate + 1) * H].T, np.eye(H), atol=1e-12)
    assert (cell.parameters()["bias_ih"][H:2 * H] == 1.0).all()
    _, trace = cell(np.ones((B, I)))
    cell.backward(trace, (np.ones((B, H)), None))
    assert analysis.step_jacobians(trace, 0, 0).shape == (1, 2 * H, 2 * H)
    assert analysis.gradient_norms(trace).shape == (1, 1)


@pytest.mark.parametrize("name", list(CELLS))
def test_the_explained_equations_name_the_cells_own_parameters(name):
    cell, layer = _cell_and_layer(name)
    x = np.ones((B, I))
    cell_params = [eq.params for eq in explain.explain_step(cell(x)[1], 0, 1)]
    layer_params = [eq.params for eq in explain.explain_step(layer(x[None])[2], 0, 1)]
    assert cell_params == [params.replace("_l0", "") for params in layer_params]
    assert any("weight_hh" in params for params in cell_params) and "_l0" not in str(cell_params), cell_params


def test_a_cell_has_no_batch_first():
    """It is the layer's attribute, inherited: set to True, the batch of a step was read as its steps."""
    cell = rnnlab.GRUCell(I, H)
    with pytest.raises(AttributeError, match=re.escape("GRUCell has no batch_first: a cell takes one step, x (B, I)")):
        cell.batch_first = True
    assert cell.batch_first is False and cell(np.zeros((B, I), np.float32))[0].shape == (B, H)
