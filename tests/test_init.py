"""Initialisation options (orthogonal, IRNN identity, LSTM forget-gate bias): layers and spec."""

from __future__ import annotations

import re

import numpy as np
import pytest

import rnnlab
from rnnlab.errors import SpecError
from rnnlab.layers.init import apply_init, forget_gate_bias_, identity_, orthogonal_
from rnnlab.spec import Spec


def test_orthogonal_makes_every_gate_block_orthogonal_and_is_seeded():
    layer = rnnlab.GRU(3, 5, num_layers=2, bidirectional=True, dtype="float64", seed=0)
    orthogonal_(layer, seed=7)
    for name, w in layer.state_dict().items():
        if name.startswith("weight_hh"):
            for g in range(3):
                block = w[g * 5:(g + 1) * 5]
                np.testing.assert_allclose(block.T @ block, np.eye(5), atol=1e-12)
    again = rnnlab.GRU(3, 5, num_layers=2, bidirectional=True, dtype="float64", seed=0)
    orthogonal_(again, seed=7)
    other = rnnlab.GRU(3, 5, num_layers=2, bidirectional=True, dtype="float64", seed=0)
    orthogonal_(other, seed=8)
    np.testing.assert_array_equal(layer.state_dict()["weight_hh_l1_reverse"], again.state_dict()["weight_hh_l1_reverse"])
    assert not np.allclose(layer.state_dict()["weight_hh_l0"], other.state_dict()["weight_hh_l0"])


def test_irnn_copies_the_state_forward_and_the_gradient_backward():
    """Le et al. 2015: with W_hh = I, zero biases and ReLU, a positive state passes through steps
    with no input unchanged, and so does dL/dh_t going back: no vanishing at initialisation."""
    layer = rnnlab.RNN(2, 4, nonlinearity="relu", dtype="float64", seed=0)
    identity_(layer, seed=1)
    params = layer.state_dict()
    np.testing.assert_array_equal(params["weight_hh_l0"], np.eye(4))
    assert not params["bias_ih_l0"].any() and not params["bias_hh_l0"].any()
    assert 0 < params["weight_ih_l0"].std() < 3e-3
    h0 = np.array([[0.5, 1.0, 2.0, 0.25]])
    y, h_n, trace = layer.forward(np.zeros((50, 1, 2)), h0[None])
    np.testing.assert_array_equal(h_n[0], h0)
    dh_n = np.ones((1, 1, 4))
    layer.backward(trace, np.zeros_like(y), dh_n)
    norms = np.linalg.norm(trace["dh"][0, :, 0], axis=-1)
    np.testing.assert_allclose(norms, norms[-1])


def test_identity_is_refused_for_gated_cells():
    with pytest.raises(ValueError, match="IRNN"):
        identity_(rnnlab.LSTM(2, 3, seed=0))


def test_forget_gate_bias_opens_the_forget_gate_at_initialisation():
    layer = rnnlab.LSTM(2, 3, num_layers=2, dtype="float64", seed=0)
    forget_gate_bias_(layer, 1.0)
    params = layer.state_dict()
    for k in (0, 1):
        np.testing.assert_array_equal(params[f"bias_ih_l{k}"][3:6] + params[f"bias_hh_l{k}"][3:6], 1.0)
    for name, w in params.items():  # nothing else was touched: the other gates keep torch's init
        if name.startswith("weight"):
            np.testing.assert_array_equal(w, rnnlab.LSTM(2, 3, num_layers=2, dtype="float64", seed=0).state_dict()[name])
    zeros = {k: np.zeros_like(v) for k, v in params.items() if k.startswith("weight")}
    layer.load_state_dict({**params, **zeros})
    _, _, trace = layer.forward(np.zeros((1, 1, 2)))
    np.testing.assert_allclose(trace["f"][0, 0, 0], 1 / (1 + np.exp(-1.0)))
    with pytest.raises(ValueError, match="LSTM option"):
        forget_gate_bias_(rnnlab.GRU(2, 3, seed=0), 1.0)
    with pytest.raises(ValueError, match="bias=True"):
        forget_gate_bias_(rnnlab.LSTM(2, 3, bias=False, seed=0), 1.0)


def test_apply_init_names_an_unknown_scheme():
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        apply_init(rnnlab.RNN(2, 3, seed=0), "xavier")


def _spec(**model):
    return Spec.from_mapping({"task": {"kind": "adding", "length": 10}, "model": model})


def test_spec_applies_the_init_to_the_trained_model():
    from rnnlab.train import Trainer

    trainer = Trainer(_spec(cell="rnn", nonlinearity="relu", hidden_size=6, init="identity"))
    np.testing.assert_array_equal(trainer.model.rnn.state_dict()["weight_hh_l0"], np.eye(6, dtype=np.float32))
    trainer = Trainer(_spec(cell="lstm", hidden_size=6, forget_bias=1.0))
    b = trainer.model.rnn.state_dict()
    np.testing.assert_allclose(b["bias_ih_l0"][6:12] + b["bias_hh_l0"][6:12], 1.0)
    assert "init = \"uniform\"" in _spec().to_toml() and "forget_bias = 0.0" in _spec().to_toml()


@pytest.mark.parametrize(("model", "field", "message"), [
    (dict(cell="lstm", init="identity"), "model.init", "identity (IRNN) is for the rnn cell"),
    (dict(cell="gru", forget_bias=1.0), "model.forget_bias", "only the lstm cell has a forget gate"),
    (dict(cell="lstm", forget_bias=1.0, bias=False), "model.forget_bias", "needs model.bias = true"),
    (dict(init="he"), "model.init", "unknown value \"he\""),
])
def test_spec_refuses_inits_that_do_not_fit_the_cell(model, field, message):
    with pytest.raises(SpecError, match=re.escape(message)) as caught:
        _spec(**model)
    assert caught.value.field == field
