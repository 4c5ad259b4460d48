"""The layers (numba kernels) agree with the plain float64 NumPy reference, record by record.

Every combination of cell, depth, direction and bias is run forward and backward (full and
truncated BPTT) and compared with :mod:`rnnlab.reference` given the same ``state_dict``: outputs,
final states, every per-step record of the Trace, every gradient and the per-step dL/dh_t.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import rnnlab

from conftest import (
    CELL_IDS,
    CELLS,
    REFERENCE_RECORDS,
    layer_dstate,
    layer_state,
    make_layer,
    random_problem,
    reference_run,
    rel_err,
)

T, B, I, H = 6, 3, 4, 5
TOL64 = 1e-10
TOL32 = 1e-5

CONFIGS = list(itertools.product([1, 2], [False, True], [True, False]))  # num_layers, bidirectional, bias
CONFIG_IDS = [f"l{L}-{'bi' if D else 'uni'}-{'bias' if b else 'nobias'}" for L, D, b in CONFIGS]


def _run(mode, nonlinearity, num_layers, bidirectional, bias, *, dtype="float64", truncate=None, batch=B,
         steps=T, seed=0):
    layer = make_layer(mode, I, H, num_layers=num_layers, bidirectional=bidirectional, dtype=dtype,
                       nonlinearity=nonlinearity, bias=bias, seed=seed)
    p = random_problem(layer, steps, batch, np.random.default_rng(seed + 100))
    y, state_n, trace = layer.forward(p["x"], layer_state(layer, p))
    grads = layer.backward(trace, p["dy"], layer_dstate(layer, p), truncate=truncate)
    return layer, p, (y, state_n, trace, grads), reference_run(layer, p, truncate)


def _compare_all(layer, ours, ref, tol):
    y, state_n, trace, grads = ours
    ry, rh_n, rc_n, records, rgrads = ref
    errors = {"y": rel_err(y, ry)}
    if layer.mode == "LSTM":
        h_n, c_n = state_n
        errors["c_n"] = rel_err(c_n, rc_n)
    else:
        h_n = state_n
    errors["h_n"] = rel_err(h_n, rh_n)
    assert y.dtype == layer.dtype and h_n.dtype == layer.dtype

    for (l, d), rec in records.items():
        assert set(REFERENCE_RECORDS[layer.mode]) <= set(rec)
        for name in REFERENCE_RECORDS[layer.mode]:
            errors[f"trace.{name}[{l},{d}]"] = rel_err(trace.get(name, l, d), rec[name])
        errors[f"trace.dh[{l},{d}]"] = rel_err(trace.get("dh", l, d), rgrads["dh"][(l, d)])
    assert set(records) == {(l, d) for l in range(layer.num_layers) for d in range(layer.num_directions)}

    expected_keys = set(rgrads) - {"dh"}
    assert set(grads) == expected_keys
    assert list(grads)[: len(layer.state_dict())] == list(layer.state_dict())  # state_dict order first
    for name in expected_keys:
        assert grads[name].shape == rgrads[name].shape, name
        assert grads[name].dtype == layer.dtype, name
        errors[f"grad.{name}"] = rel_err(grads[name], rgrads[name])
    bad = {k: v for k, v in errors.items() if not v < tol}
    assert not bad, bad


@pytest.mark.parametrize("truncate", [None, 1, 3, T + 2], ids=lambda k: f"trunc{k}")
@pytest.mark.parametrize("num_layers,bidirectional,bias", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
def test_float64_matches_reference(mode, nonlinearity, num_layers, bidirectional, bias, truncate):
    layer, p, ours, ref = _run(mode, nonlinearity, num_layers, bidirectional, bias, truncate=truncate)
    _compare_all(layer, ours, ref, TOL64)


@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
def test_float64_matches_reference_large_batch(mode, nonlinearity):
    """Batch above the kernels' small-batch threshold (8) takes the BLAS path of the recurrent product."""
    layer, p, ours, ref = _run(mode, nonlinearity, 2, True, True, batch=11, truncate=None)
    _compare_all(layer, ours, ref, TOL64)
    layer, p, ours, ref = _run(mode, nonlinearity, 2, True, True, batch=11, truncate=2)
    _compare_all(layer, ours, ref, TOL64)


@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
def test_single_step_and_single_sequence(mode, nonlinearity):
    layer, p, ours, ref = _run(mode, nonlinearity, 2, True, True, batch=1, steps=1, truncate=1)
    _compare_all(layer, ours, ref, TOL64)


@pytest.mark.parametrize("truncate", [None, 3])
@pytest.mark.parametrize("num_layers,bidirectional,bias", [(1, False, True), (2, True, True), (2, True, False)])
@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
def test_float32_matches_float64_reference(mode, nonlinearity, num_layers, bidirectional, bias, truncate):
    layer, p, ours, ref = _run(mode, nonlinearity, num_layers, bidirectional, bias, dtype="float32",
                               truncate=truncate)
    assert p["x"].dtype == np.float32
    _compare_all(layer, ours, ref, TOL32)


def test_truncation_changes_gradients():
    """Sanity check of the comparison itself: truncated and full BPTT really differ."""
    _, _, (_, _, _, full), _ = _run("LSTM", "tanh", 1, False, True, truncate=None)
    _, _, (_, _, _, cut), _ = _run("LSTM", "tanh", 1, False, True, truncate=1)
    assert rel_err(cut["weight_hh_l0"], full["weight_hh_l0"]) > 1e-3
    assert rel_err(cut["h0"], full["h0"]) > 1e-3



@pytest.mark.parametrize("truncate", [10**20, 2**63, np.uint64(2**63), np.int64(2**62)])
def test_a_cut_beyond_any_length_is_full_bptt(truncate):
    """A truncate past int64 reached the kernels raw: a numba TypingError or an OverflowError (an
    API review); any cut at or beyond T is full BPTT."""
    from rnnlab import LeakyRNN, MinGRU

    for layer in (make_layer("LSTM", I, H, seed=0, dtype="float32"), LeakyRNN(I, H, seed=0), MinGRU(I, H, seed=0),
                  make_layer("GRU", I, H, num_layers=2, bidirectional=True, dtype="float32")):
        x = np.random.default_rng(1).standard_normal((T, B, I)).astype(np.float32)
        y, _, trace = layer.forward(x)
        full = layer.backward(trace, np.ones_like(y))
        cut = layer.backward(trace, np.ones_like(y), None, truncate)
        assert all(np.array_equal(cut[name], full[name]) for name in full)


# ------------------------------------------------------------------------------ the Trace itself
@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
def test_trace_stacked_access_and_names(mode, nonlinearity):
    layer = make_layer(mode, I, H, num_layers=2, bidirectional=True, nonlinearity=nonlinearity, seed=3)
    p = random_problem(layer, T, B, np.random.default_rng(4))
    _, _, trace = layer.forward(p["x"], layer_state(layer, p))
    expected_names = tuple(layer.record_names)
    assert set(REFERENCE_RECORDS[mode]) <= set(expected_names)
    assert trace.names == expected_names
    assert not trace.has_gradients
    assert "dh" not in trace
    assert all(name in trace for name in expected_names)
    with pytest.raises(KeyError):
        trace["dh"]
    with pytest.raises(KeyError):
        trace.get("dh", 0, 0)

    L, D = layer.num_layers, layer.num_directions

    def check_stacked(name):
        stacked = trace[name]
        assert stacked.shape == (L * D, T, B, H)
        for l in range(L):
            for d in range(D):
                assert np.array_equal(stacked[l * D + d], trace.get(name, l, d))
                assert trace.get(name, l, d).shape == (T, B, H)

    for name in expected_names:
        check_stacked(name)

    layer.backward(trace, p["dy"], layer_dstate(layer, p))
    assert trace.has_gradients
    assert trace.names == expected_names + ("dh",)
    check_stacked("dh")
    check_stacked("h")  # stacked records made before backward stay valid


@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
def test_trace_get_is_read_only(mode, nonlinearity):
    layer = make_layer(mode, I, H, nonlinearity=nonlinearity, seed=5)
    p = random_problem(layer, T, B, np.random.default_rng(5))
    _, _, trace = layer.forward(p["x"])
    with pytest.raises(ValueError):
        trace.get("h")[0, 0, 0] = 1.0


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True)])
def test_gru_hn_is_recurrent_candidate_term(num_layers, bidirectional, bias):
    """GRU's "hn" record is W_hn h_{t-1} + b_hn, with h_{t-1} the state before the step (h0 at the start)."""
    layer = make_layer("GRU", I, H, num_layers=num_layers, bidirectional=bidirectional, bias=bias, seed=6)
    p = random_problem(layer, T, B, np.random.default_rng(6))
    _, _, trace = layer.forward(p["x"], p["h0"])
    params = layer.state_dict()
    D = layer.num_directions
    for l in range(num_layers):
        for d in range(D):
            sfx = f"_l{l}" + ("_reverse" if d else "")
            W_hn = params["weight_hh" + sfx][2 * H:]
            b_hn = params["bias_hh" + sfx][2 * H:] if bias else np.zeros(H)
            h = trace.get("h", l, d)
            h0 = p["h0"][l * D + d]
            if d == 0:
                h_prev = np.concatenate([h0[None], h[:-1]])  # forward: h_{t-1}
            else:
                h_prev = np.concatenate([h[1:], h0[None]])  # reverse: the state after t+1
            expected = h_prev @ W_hn.T + b_hn
            assert rel_err(trace.get("hn", l, d), expected) < TOL64



def test_float32_saturated_tanh_units_are_exactly_saturated_and_pass_no_gradient():
    """Pre-activations of +-20 and beyond, where float32's own tanh is exactly +-1 (from 9.0109),
    torch's too: the kernels' float32 tanh approximation stopped at 0.99999976, leaving 4.8e-7 of
    slope that large inputs multiplied into gradient errors of 10% and more."""
    layer = rnnlab.RNN(1, 1, bias=False, seed=0)
    for name, weight in layer.parameters().items():
        weight[...] = 1.0 if name.startswith("weight_ih") else 0.0
    x = np.array([20.0, -20.0, 1e3, -1e4, 36.0, -18.1], np.float32)[:, None, None]  # (T, B=1, I=1)
    y, _, trace = layer(x)
    grads = layer.backward(trace, np.ones_like(y))
    np.testing.assert_array_equal(y, np.sign(x))
    for name, grad in grads.items():
        np.testing.assert_array_equal(grad, 0.0, err_msg=name)


def test_float32_tanh_past_the_approximations_range_is_correctly_rounded():
    """From the approximation's clamp (7.9053) to saturation float32's tanh takes five values below
    1; the kernels give each where it is the correctly rounded one (torch's too). The approximation's
    0.99999976 everywhere there made 1 - tanh^2, the unit's gradient, up to 4x torch's at |x| = 8.5-9."""
    from rnnlab.kernels._math import _CLAMP

    band = np.arange(_CLAMP.view(np.int32), np.float32(9.02).view(np.int32), 5, dtype=np.int32).view(np.float32)
    x = np.concatenate([band, -band])
    layer = rnnlab.RNN(1, 1, bias=False, seed=0)
    for name, weight in layer.parameters().items():
        weight[...] = 1.0 if name.startswith("weight_ih") else 0.0
    y = layer(x[None, :, None])[0][0, :, 0]  # one step, a batch of every x
    np.testing.assert_array_equal(y, np.tanh(x.astype(np.float64)).astype(np.float32))
    assert len(np.unique(np.abs(y))) == 6  # 1 - k * 2^-24 for k = 5..1, and 1


def test_float32_tanh_from_0_6_is_within_1_5_ulp_and_a_nearly_saturated_units_slope_as_torchs():
    """The rational approximation is within 4 ulp (2.4e-7) everywhere: near saturation that was most
    of 1 - tanh^2, and the gradient of a unit at x = 7-7.9 was up to 63% off (torch's 9%: float32's
    own rounding of tanh). From |x| = 0.6 the kernels compute 1 - 2 / (e^2|x| + 1)."""
    from rnnlab.kernels._math import _CLAMP, _EXP_FORM_FROM

    band = np.linspace(_EXP_FORM_FROM, _CLAMP, 40_001, endpoint=False, dtype=np.float32)
    x = np.concatenate([band, -band])
    layer = rnnlab.RNN(1, 1, bias=False, seed=0)
    for name, weight in layer.parameters().items():
        weight[...] = 1.0 if name.startswith("weight_ih") else 0.0
    y, _, trace = layer(x[None, :, None])  # one step, a batch of every x
    slope = layer.backward(trace, np.ones_like(y))["input"][0, :, 0]  # 1 - tanh(x)^2, as backward has it
    exact = np.tanh(x.astype(np.float64))
    ulps = np.abs(y[0, :, 0] - exact) / np.spacing(np.abs(exact).astype(np.float32))
    assert ulps.max() <= 1.5  # (1.3 measured, near 0.6; correctly rounded from 2 on)
    near = np.abs(x) >= 7.0
    slope_error = np.abs(slope[near] - (1 - exact[near] ** 2)) / (1 - exact[near] ** 2)
    assert slope_error.max() < 0.1


@pytest.mark.parametrize("cls", [rnnlab.LSTM, rnnlab.GRU], ids=["lstm", "gru"])
def test_float32_gates_shut_hard_keep_their_relative_precision_and_their_gradient(cls):
    """A gate at x = -20 is 2.1e-9 (torch's float32 sigmoid says so too). The kernels' float32
    sigmoid, 0.5 + 0.5 tanh(x / 2), was stuck at 1.2e-7 from x = -15.8 and exactly 0 from -18: such
    gates passed no gradient, and a model whose gates were all shut that hard got its gradients
    wrong by 100%. Each value and gradient is now float64's to float32 precision, relative to
    itself; past exp's range (x = -1e4) both are exactly 0."""
    def run(dtype):
        layer = cls(1, 1, bias=False, seed=0, dtype=dtype)
        for name, weight in layer.parameters().items():
            weight[...] = 1.0 if name.startswith("weight_ih") else 0.0
        x = -np.array([16.0, 17.9, 18.1, 20.0, 30.0, 60.0, 1e4], dtype)[:, None, None]
        y, _, trace = layer(x)
        return y, trace, layer.backward(trace, np.ones_like(y))

    y32, trace32, grads32 = run("float32")
    y64, trace64, grads64 = run("float64")
    gates = ("i", "f", "o") if cls is rnnlab.LSTM else ("r", "z")
    for name in gates:
        np.testing.assert_allclose(trace32[name], trace64[name], rtol=1e-6, atol=0, err_msg=name)
    assert trace32[gates[0]][0, 3, 0, 0] > 0 and trace32[gates[0]][0, -1, 0, 0] == 0.0  # x = -20; x = -1e4
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-30)
    # the gates' rows of W_ih (i, f; r, z) learn through them; the candidate's (g, n) goes through a
    # tanh saturated at x <= -16, exactly -1 in float32 (torch's too): no gradient, as in torch
    through_gates = grads32["weight_ih_l0"][:2]
    np.testing.assert_allclose(through_gates, grads64["weight_ih_l0"][:2], rtol=1e-5, atol=1e-30)
    assert np.count_nonzero(through_gates) == (2 if cls is rnnlab.LSTM else 1)  # (GRU's r reads W_hh h = 0)
    assert grads32["weight_ih_l0"][2] == 0.0
