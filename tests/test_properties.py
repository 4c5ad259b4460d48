"""Property tests over random shapes: kernels vs reference, truncation, finite differences.

Example counts come from the Hypothesis profile (tests/conftest.py): HYPOTHESIS_PROFILE=ci (default),
dev or thorough.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st

from conftest import (
    CELL_IDS,
    CELLS,
    layer_dstate,
    layer_state,
    make_layer,
    random_problem,
    reference_run,
    rel_err,
)


@st.composite
def problems(draw, max_steps=60, max_batch=8, max_size=64, max_layers=3):
    """A random network shape (kwargs of make_layer minus mode) plus steps, batch and a data seed."""
    return dict(
        steps=draw(st.integers(1, max_steps)),
        batch=draw(st.integers(1, max_batch)),
        input_size=draw(st.integers(1, max_size)),
        hidden_size=draw(st.integers(1, max_size)),
        num_layers=draw(st.integers(1, max_layers)),
        bidirectional=draw(st.booleans()),
        bias=draw(st.booleans()),
        random_state=draw(st.booleans()),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def _build(mode, nonlinearity, shape):
    note(f"{mode} {nonlinearity} {shape}")
    layer = make_layer(mode, shape["input_size"], shape["hidden_size"], num_layers=shape["num_layers"],
                       bidirectional=shape["bidirectional"], bias=shape["bias"], nonlinearity=nonlinearity,
                       seed=shape["seed"])
    rng = np.random.default_rng(shape["seed"] + 1)
    p = random_problem(layer, shape["steps"], shape["batch"], rng, random_state=shape["random_state"],
                       random_dstate=shape["random_state"])
    return layer, p


@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
@given(shape=problems())
def test_kernels_match_reference(mode, nonlinearity, shape):
    layer, p = _build(mode, nonlinearity, shape)
    y, state_n, trace = layer.forward(p["x"], layer_state(layer, p))
    grads = layer.backward(trace, p["dy"], layer_dstate(layer, p))
    ry, rh_n, rc_n, _, rgrads = reference_run(layer, p)
    errors = {"y": rel_err(y, ry), "h_n": rel_err(state_n[0] if mode == "LSTM" else state_n, rh_n)}
    if mode == "LSTM":
        errors["c_n"] = rel_err(state_n[1], rc_n)
    assert set(grads) == set(rgrads) - {"dh"}
    for name in grads:
        errors[name] = rel_err(grads[name], rgrads[name])
    bad = {k: v for k, v in errors.items() if not v < 1e-9}
    assert not bad, bad


@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
@given(shape=problems(), extra=st.integers(0, 5))
def test_truncation_at_or_beyond_length_is_full_bptt(mode, nonlinearity, shape, extra):
    layer, p = _build(mode, nonlinearity, shape)
    _, _, trace = layer.forward(p["x"], layer_state(layer, p))
    full = layer.backward(trace, p["dy"], layer_dstate(layer, p))
    full_dh = trace["dh"].copy()
    cut = layer.backward(trace, p["dy"], layer_dstate(layer, p), truncate=shape["steps"] + extra)
    assert list(cut) == list(full)
    for name in full:
        assert np.array_equal(cut[name], full[name]), name
    assert np.array_equal(trace["dh"], full_dh)


# --------------------------------------------------------------------------- finite differences
def _loss(layer, p, params, x, h0, c0):
    """L = sum(y*dy) + sum(h_n*dh_n) (+ sum(c_n*dc_n)), the quantity backward differentiates."""
    layer.load_state_dict(params)
    y, state_n, trace = layer.forward(x, (h0, c0) if layer.mode == "LSTM" else h0)
    h_n = state_n[0] if layer.mode == "LSTM" else state_n
    loss = np.sum(y * p["dy"]) + np.sum(h_n * p["dh_n"])
    if layer.mode == "LSTM":
        loss += np.sum(state_n[1] * p["dc_n"])
    return loss, trace


def _relu_pattern(trace):
    return [trace.get("h", l, d) > 0 for l in range(trace.num_layers) for d in range(trace.num_directions)]


@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
@given(shape=problems(max_steps=30, max_size=32), truncate_on=st.booleans())
def test_directional_derivative_matches_finite_differences(mode, nonlinearity, shape, truncate_on):
    """sum(grad * v) equals (L(p + eps v) - L(p - eps v)) / (2 eps) for a random direction v.

    Covers every parameter and the input and initial state at once. (Truncated BPTT is not a
    derivative of L, so only full BPTT is checked; ``truncate_on`` checks truncate >= T instead.)
    """
    layer, p = _build(mode, nonlinearity, shape)
    rng = np.random.default_rng(shape["seed"] + 2)
    params = layer.state_dict()
    lstm = mode == "LSTM"
    inputs = {"input": p["x"], "h0": p["h0"]}
    if lstm:
        inputs["c0"] = p["c0"]
    point = {**params, **inputs}
    direction = {k: rng.standard_normal(v.shape) for k, v in point.items()}

    _, trace = _loss(layer, p, params, p["x"], p["h0"], p["c0"])
    grads = layer.backward(trace, p["dy"], layer_dstate(layer, p),
                           truncate=shape["steps"] if truncate_on else None)
    analytic = sum(float(np.sum(grads[k] * direction[k])) for k in point)
    magnitude = sum(float(np.sum(np.abs(grads[k] * direction[k]))) for k in point)

    eps = 1e-6

    def shifted(sign):
        q = {k: v + sign * eps * direction[k] for k, v in point.items()}
        return _loss(layer, p, {k: q[k] for k in params}, q["input"], q["h0"], q.get("c0"))

    plus, trace_plus = shifted(+1)
    minus, trace_minus = shifted(-1)
    if nonlinearity == "relu":
        # A unit crossing the relu kink inside [p - eps v, p + eps v] makes L non-smooth there.
        assume(all(np.array_equal(a, b) for a, b in zip(_relu_pattern(trace_plus), _relu_pattern(trace_minus))))
        assume(all(np.array_equal(a, b) for a, b in zip(_relu_pattern(trace_plus), _relu_pattern(trace))))
    numeric = (plus - minus) / (2 * eps)
    # Relative to the derivative, floored by a small share of sum|g_i v_i| against cancellation.
    scale = max(abs(analytic), 1e-3 * magnitude, 1e-12)
    err = abs(numeric - analytic) / scale
    note(f"analytic={analytic!r} numeric={numeric!r} err={err:.3g}")
    assert err < 1e-6


@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
@given(shape=problems(max_steps=20, max_size=24))
def test_batch_first_is_the_transposed_time_major_layer(mode, nonlinearity, shape):
    """Any shape: batch_first=True gives the time-major layer's numbers on swapped axes, bit for bit."""
    layer, p = _build(mode, nonlinearity, shape)
    options = dict(num_layers=layer.num_layers, bidirectional=layer.bidirectional, bias=layer.bias,
                   dtype=layer.dtype.name, batch_first=True)
    if mode == "RNN":
        options["nonlinearity"] = nonlinearity
    batch_first = type(layer)(layer.input_size, layer.hidden_size, **options)
    batch_first.load_state_dict(layer.state_dict())
    y, state_n, trace = layer.forward(p["x"], layer_state(layer, p))
    grads = layer.backward(trace, p["dy"], layer_dstate(layer, p))
    y_bf, state_bf, trace_bf = batch_first.forward(p["x"].transpose(1, 0, 2), layer_state(layer, p))
    grads_bf = batch_first.backward(trace_bf, p["dy"].transpose(1, 0, 2), layer_dstate(layer, p))
    np.testing.assert_array_equal(y_bf, y.transpose(1, 0, 2))
    for half, half_bf in zip(np.atleast_1d(state_n) if mode != "LSTM" else state_n,
                             np.atleast_1d(state_bf) if mode != "LSTM" else state_bf, strict=True):
        np.testing.assert_array_equal(half_bf, half)
    for name, grad in grads.items():
        np.testing.assert_array_equal(grads_bf[name], grad.transpose(1, 0, 2) if name == "input" else grad,
                                      err_msg=name)


@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
@given(shape=problems(max_steps=16, max_size=16), truncate=st.sampled_from([None, 1, 2, 3, 5]))
def test_lengths_run_each_sequence_as_the_reference_runs_it_alone(mode, nonlinearity, shape, truncate):
    """Any shape and lengths: each sequence's outputs, final state and input and state gradients
    are the float64 reference's over its own steps (zeros beyond), the weights' gradients the sum."""
    layer, p = _build(mode, nonlinearity, shape)
    T, B = shape["steps"], shape["batch"]
    lengths = np.random.default_rng(shape["seed"]).integers(1, T + 1, size=B)
    note(f"lengths {lengths.tolist()}")
    y, state_n, trace = layer.forward(p["x"], layer_state(layer, p), lengths)
    grads = layer.backward(trace, p["dy"], layer_dstate(layer, p), truncate=truncate)
    totals: dict[str, float] = {}
    for b, n in enumerate(lengths):
        alone = {k: None if v is None else (v[:n, b : b + 1] if k in ("x", "dy") else v[:, b : b + 1])
                 for k, v in p.items()}
        ry, rh_n, rc_n, _, rgrads = reference_run(layer, alone, truncate=truncate)
        assert rel_err(y[:n, b : b + 1], ry) < 1e-9 and not y[n:, b].any()
        assert rel_err((state_n[0] if mode == "LSTM" else state_n)[:, b : b + 1], rh_n) < 1e-9
        if mode == "LSTM":
            assert rel_err(state_n[1][:, b : b + 1], rc_n) < 1e-9
        assert rel_err(grads["input"][:n, b : b + 1], rgrads["input"]) < 1e-9 and not grads["input"][n:, b].any()
        assert rel_err(grads["h0"][:, b : b + 1], rgrads["h0"]) < 1e-9
        totals = {name: totals.get(name, 0.0) + rgrads[name] for name in layer.state_dict()}
    for name, total in totals.items():
        assert rel_err(grads[name], total) < 1e-9, name


@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
@given(shape=problems(max_steps=12, max_size=24, max_layers=1))
def test_a_cell_stepped_by_hand_is_the_one_layer_layer(mode, nonlinearity, shape):
    """Any shape: a cell stepped over the sequence, and BPTT by hand through its steps, give the
    unidirectional one-layer layer's outputs and gradients (float64: to rounding)."""
    import rnnlab

    assume(not shape["bidirectional"])
    layer, p = _build(mode, nonlinearity, shape)
    cell = getattr(rnnlab, f"{mode}Cell")(layer.input_size, layer.hidden_size, bias=layer.bias, dtype="float64",
                                          **({"nonlinearity": nonlinearity} if mode == "RNN" else {}))
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    y, _, trace = layer.forward(p["x"], layer_state(layer, p))
    expected = layer.backward(trace, p["dy"], layer_dstate(layer, p))
    lstm = mode == "LSTM"
    state = (p["h0"][0], p["c0"][0]) if lstm else p["h0"][0]
    traces = []
    for t, x_t in enumerate(p["x"]):
        state, step = cell(x_t, state)
        traces.append(step)
        np.testing.assert_allclose(state[0] if lstm else state, y[t], rtol=1e-10, atol=1e-12)
    dh, dc = p["dh_n"][0], p["dc_n"][0] if lstm else None
    totals = {name: 0.0 for name in cell.state_dict()}
    for t in reversed(range(len(traces))):
        grads = cell.backward(traces[t], (dh + p["dy"][t], dc) if lstm else dh + p["dy"][t])
        totals = {name: totals[name] + grads[name] for name in totals}
        dh, dc = grads["hx"], grads.get("cx")
        np.testing.assert_allclose(grads["input"], expected["input"][t], rtol=1e-9, atol=1e-11)
    for name, total in totals.items():
        assert rel_err(total, expected[name + "_l0"]) < 1e-10, name
    assert rel_err(dh, expected["h0"][0]) < 1e-10
