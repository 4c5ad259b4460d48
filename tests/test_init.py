"""Initialisation options (orthogonal, IRNN identity, LSTM forget-gate bias): layers and spec."""

from __future__ import annotations

import re

import numpy as np
import pytest

import rnnlab
from rnnlab.errors import SpecError
from rnnlab.layers import MinGRU
from rnnlab.layers.init import apply_init, forget_gate_bias_, identity_, orthogonal_
from rnnlab.layers.jordan import JordanRNN
from rnnlab.layers.leaky import LeakyRNN
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
    with pytest.raises(ValueError, match="^init must be one of uniform, orthogonal, identity, got 'xavier'$"):
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


@pytest.mark.parametrize("make", [
    lambda: rnnlab.MinGRU(2, 3, seed=0),
    lambda: rnnlab.MinLSTM(2, 3, seed=0),
    lambda: rnnlab.LRU(2, 3, seed=0),
    lambda: rnnlab.JordanRNN(2, 3, 2, seed=0),
], ids=["MinGRU", "MinLSTM", "LRU", "JordanRNN"])
@pytest.mark.parametrize("init", [orthogonal_, identity_], ids=["orthogonal_", "identity_"])
def test_inits_refuse_layers_without_recurrent_weights(make, init):
    """Not a bare KeyError('weight_hh_l0'): a ValueError naming the function, the weights and the class."""
    layer = make()
    before = layer.state_dict()
    name = type(layer).__name__
    with pytest.raises(ValueError, match=re.escape(f"{init.__name__} needs recurrent weights weight_hh_l*; "
                                                   f"{name} has none")):
        init(layer)
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_inits_refuse_a_layer_without_live_parameters():
    with pytest.raises(ValueError, match=r"orthogonal_ needs a layer with live parameters\(\).*got object"):
        orthogonal_(object())


def test_inits_refuse_a_torch_module_naming_torchs_own():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"orthogonal_ is for rnnlab's layers, not torch's LSTM \(torch.nn.init"):
        orthogonal_(torch.nn.LSTM(3, 4))  # was AttributeError: 'Parameter' object has no attribute 'startswith'

    class MyLSTM(torch.nn.LSTM):  # a user's own subclass too
        pass

    with pytest.raises(ValueError, match=r"orthogonal_ is for rnnlab's layers, not torch's MyLSTM"):
        orthogonal_(MyLSTM(3, 4))


@pytest.mark.parametrize("init", [orthogonal_, identity_], ids=["orthogonal_", "identity_"])
def test_inits_refuse_an_echo_state_network_saying_why(init):
    """It said "EchoStateNetwork has none" although the ESN has a weight_hh: that is its fixed
    reservoir, drawn sparse and scaled to a spectral radius, not a weight an init scheme may set."""
    esn = rnnlab.EchoStateNetwork(2, 10, seed=0)
    before = esn.state_dict()
    with pytest.raises(ValueError) as info:
        init(esn)
    message = str(info.value)
    assert message.startswith(f"{init.__name__} is for trained recurrent layers (RNN, LSTM, GRU, LeakyRNN); an "
                              "EchoStateNetwork's weight_hh is its fixed reservoir"), message
    assert "spectral_radius" in message and "has none" not in message and "\n" not in message
    for key, value in esn.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_identity_is_for_the_elman_rnn_only_as_its_docstring_and_the_spec_say():
    """identity_ accepted a LeakyRNN (gate_count 1) while its docstring said "Only for the Elman cell
    (RNN)" and the spec refuses model.init = "identity" for the leaky cell: the three agree now."""
    layer = LeakyRNN(2, 3, seed=0)
    before = layer.state_dict()
    with pytest.raises(ValueError, match=r"^identity init is for the Elman RNN \(IRNN\), not LeakyRNN$"):
        identity_(layer)
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    with pytest.raises(SpecError, match=re.escape("identity (IRNN) is for the rnn cell, not leaky")):
        _spec(cell="leaky", init="identity")
    assert "Only for the Elman cell" in identity_.__doc__ and "LeakyRNN" in identity_.__doc__


def _read_only(layer, name):
    value = layer.parameters()[name].copy()
    value.flags.writeable = False
    layer.parameters()[name] = value


@pytest.mark.parametrize("call,name", [
    (lambda layer: orthogonal_(layer, seed=0), "weight_hh_l0_reverse"),
    (lambda layer: identity_(layer, seed=0), "bias_hh_l0"),
    (lambda layer: forget_gate_bias_(layer), "bias_hh_l0"),
], ids=["orthogonal_", "identity_", "forget_gate_bias_"])
def test_inits_name_a_read_only_parameter_before_writing_anything(call, name):
    """``orthogonal_`` on a parameter replaced by a read-only array said only numpy's "assignment
    destination is read-only" (after writing the blocks before it): one line naming it, nothing written."""
    function = call.__code__.co_names[0]
    layer = (rnnlab.LSTM(2, 3, seed=0) if function == "forget_gate_bias_"
             else rnnlab.RNN(2, 3, bidirectional=function == "orthogonal_", seed=0))
    _read_only(layer, name)
    before = layer.state_dict()
    with pytest.raises(ValueError) as info:
        call(layer)
    assert str(info.value) == (f"{function}: parameter {name!r} is a read-only array, and {function} writes in "
                               f"place (put a writable one in parameters(), e.g. its .copy())")
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    layer.parameters()[name] = layer.parameters()[name].copy()  # the fix the message gives
    call(layer)


def test_inits_name_a_parameter_replaced_by_another_shape_or_dtype():
    layer = rnnlab.GRU(2, 3, seed=0)
    layer.parameters()["weight_hh_l0"] = np.zeros((3, 9), np.float32)
    with pytest.raises(ValueError, match=r"^orthogonal_: parameter 'weight_hh_l0' has shape \(3, 9\), expected "
                                         r"\(9, 3\)$"):
        orthogonal_(layer)
    layer.parameters()["weight_hh_l0"] = np.zeros((9, 3))
    with pytest.raises(ValueError, match=r"^orthogonal_: parameter 'weight_hh_l0' has dtype float64, but the layer"):
        orthogonal_(layer)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: forget_gate_bias_(rnnlab.LSTM(2, 3, seed=0), float("nan")), "forget_gate_bias_: value must be a finite"),
    (lambda: forget_gate_bias_(rnnlab.LSTM(2, 3, seed=0), float("inf")), "forget_gate_bias_: value must be a finite"),
    (lambda: forget_gate_bias_(rnnlab.LSTM(2, 3, seed=0), "1"), "forget_gate_bias_: value must be a finite"),
    (lambda: orthogonal_(rnnlab.GRU(2, 3, seed=0), gain=float("inf")), "orthogonal_: gain must be a finite"),
    (lambda: orthogonal_(rnnlab.GRU(2, 3, seed=0), gain=np.float32("nan")), "orthogonal_: gain must be a finite"),
    (lambda: orthogonal_(rnnlab.GRU(2, 3, seed=0), gain=True), "orthogonal_: gain must be a finite"),
    (lambda: identity_(rnnlab.RNN(2, 3, seed=0), scale=float("nan")), "identity_: scale must be a finite"),
    (lambda: identity_(rnnlab.RNN(2, 3, seed=0), input_std=float("inf")), "identity_: input_std must be a finite"),
    (lambda: identity_(rnnlab.RNN(2, 3, seed=0), input_std=-1e-3), "identity_: input_std must be >= 0"),
    (lambda: apply_init(rnnlab.LSTM(2, 3, seed=0), forget_bias=float("nan")), "value must be a finite"),
], ids=["forget-nan", "forget-inf", "forget-str", "gain-inf", "gain-nan32", "gain-bool", "scale-nan", "std-inf",
        "std-negative", "apply_init-nan"])
def test_inits_refuse_non_finite_values(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_inits_apply_to_the_leaky_rnn():
    layer = rnnlab.LeakyRNN(2, 3, dtype="float64", seed=0)
    orthogonal_(layer, gain=2, seed=1)
    w = layer.state_dict()["weight_hh_l0"]
    np.testing.assert_allclose(w.T @ w, 4 * np.eye(3), atol=1e-12)


def _drawn_as_before(layer, seed, bound_of=None):
    """What the layers drew before: rng.uniform(-b, b, shape) in float64, then cast to the layer's dtype."""
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-b, b, size=value.shape).astype(value.dtype)
            for name, value in layer.parameters().items() if not name.startswith("alpha")
            for b in [bound_of(name) if bound_of else 1.0 / np.sqrt(layer.hidden_size)]}


@pytest.mark.parametrize("make", [
    lambda dtype: rnnlab.RNN(3, 5, 2, bidirectional=True, dtype=dtype, seed=11),
    lambda dtype: rnnlab.LSTM(3, 5, 2, dtype=dtype, seed=11),
    lambda dtype: rnnlab.GRU(3, 5, bias=False, dtype=dtype, seed=11),
    lambda dtype: LeakyRNN(3, 5, 2, dtype=dtype, seed=11),
    lambda dtype: JordanRNN(3, 5, 2, dtype=dtype, seed=11),
], ids=["rnn", "lstm", "gru", "leaky", "jordan"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_weights_are_drawn_bit_for_bit_as_before_in_chunks(make, dtype, monkeypatch):
    """The float32 layers no longer draw a whole float64 array first: chunks of float64 draws are
    rounded into the float32 array as they come (a chunk of 7 here, to cross its boundaries)."""
    from rnnlab.layers import _params

    monkeypatch.setattr(_params, "DRAW_CHUNK", 7)
    layer = make(dtype)
    for name, expected in _drawn_as_before(layer, 11).items():
        assert layer.parameters()[name].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(layer.parameters()[name].view(np.uint8), expected.view(np.uint8), err_msg=name)


def test_mingru_draws_with_its_fan_in_bit_for_bit_as_before():
    layer = MinGRU(3, 5, 2, bidirectional=True, seed=2)
    fan_in = lambda name: 1.0 / np.sqrt(3 if "_l0" in name else 10)  # noqa: E731
    for name, expected in _drawn_as_before(layer, 2, fan_in).items():
        np.testing.assert_array_equal(layer.parameters()[name], expected, err_msg=name)


def _recursive_net():
    from rnnlab.layers.tree import RecursiveNet

    return RecursiveNet(8192, 1024, seed=0)


@pytest.mark.parametrize("make", [
    lambda: rnnlab.LSTM(4, 2048, seed=0),
    lambda: rnnlab.Attention("general", 2896, seed=0),  # the reviewer's: drawn in float64, then cast
    _recursive_net,  # its N(0, 1) embedding too
    lambda: rnnlab.Seq2Seq(8192, 16, 8, embed_size=1024, seed=0),
], ids=["LSTM", "Attention", "RecursiveNet", "Seq2Seq"])
def test_a_float32_layer_allocates_no_float64_copy_of_its_weights(make):
    """LSTM(4, 2048)'s weight_hh is 64 MiB in float32: drawn whole in float64 first, 128 MiB more."""
    import tracemalloc

    from rnnlab.layers._params import DRAW_CHUNK

    tracemalloc.start()
    try:
        layer = make()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    weights = layer.num_parameters * 4
    assert peak < weights + 2 * DRAW_CHUNK * 8, (peak, weights)
