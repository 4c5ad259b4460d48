"""Echo state network: the numba reservoir against the float64 reference, the reservoir's
construction (spectral radius, sparsity, seeds), the closed-form readout, one-step and free-running
forecasts, state dicts, the registered readout check, and every validation error."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from conftest import rel_err
from rnnlab import gradcheck
from rnnlab.data.series import mackey_glass
from rnnlab.kernels.esn import esn_forward
from rnnlab.layers import RNN
from rnnlab.layers import esn as esn_layer
from rnnlab.layers.esn import EchoStateNetwork, ridge_readout
from rnnlab.reference import esn as reference

T, B, I, N, O = 7, 3, 2, 6, 2
TOL64 = 1e-12
TOL32 = 1e-5


def _net(**kwargs) -> EchoStateNetwork:
    options = dict(spectral_radius=0.9, leak_rate=0.4, connectivity=0.5, input_connectivity=0.5, seed=0)
    options.update(kwargs)
    return EchoStateNetwork(options.pop("input_size", I), options.pop("reservoir_size", N), **options)


def _problem(dtype=np.float64, steps=T, batch=B, seed=1):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((steps, batch, I)).astype(dtype)
    y = rng.standard_normal((steps, batch, O)).astype(dtype)
    x0 = rng.uniform(-1.0, 1.0, (batch, N)).astype(dtype)
    return u, y, x0


def _reference_states(esn, u, x0=None):
    p = esn.state_dict()
    return reference.reservoir_states(u, p["weight_ih"], p["weight_hh"], p["bias"], esn.leak_rate, x0)


# ---------------------------------------------------------------------------------------------
# the reservoir run: kernel against reference
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, tol", [("float64", TOL64), ("float32", TOL32)])
def test_run_matches_reference(dtype, tol):
    esn = _net(dtype=dtype)
    u, _, x0 = _problem(esn.dtype)
    states, trace = esn.run(u, x0)
    assert states.dtype == esn.dtype and states.shape == (T, B, N)
    assert rel_err(states, _reference_states(esn, u, x0)) < tol
    assert trace.names == ("h",) and trace.mode == "ESN"
    np.testing.assert_array_equal(trace.get("h"), states)
    assert trace["h"].shape == (1, T, B, N)


@pytest.mark.parametrize("dtype, tol", [(np.float64, TOL64), (np.float32, TOL32)])
def test_kernel_records_every_state_after_the_initial_one(dtype, tol):
    rng = np.random.default_rng(5)
    u, w_in = rng.standard_normal((T, B, I)), rng.standard_normal((N, I))
    w, b, x0 = 0.3 * rng.standard_normal((N, N)), rng.standard_normal(N), rng.uniform(-1, 1, (B, N))
    xs = esn_forward(*(a.astype(dtype) for a in (u, w_in, w, b, x0)), 0.7, 1)
    assert xs.dtype == dtype and xs.shape == (T + 1, B, N)
    np.testing.assert_array_equal(xs[0], x0.astype(dtype))
    assert rel_err(xs[1:], reference.reservoir_states(u, w_in, w, b, 0.7, x0)) < tol


def test_run_matches_reference_when_sequences_are_split_across_threads():
    # B * N * N reaches the kernels' threshold for splitting the batch into chunks
    esn = EchoStateNetwork(3, 64, spectral_radius=1.1, leak_rate=0.5, seed=3)
    u = np.random.default_rng(2).standard_normal((5, 16, 3))
    states, _ = esn.run(u)
    assert rel_err(states, _reference_states(esn, u)) < TOL64


def test_run_continues_from_a_state_and_sequences_are_independent():
    esn = _net()
    u, _, x0 = _problem()
    whole, _ = esn.run(u, x0)
    first, _ = esn.run(u[:3], x0)
    rest, _ = esn.run(u[3:], first[-1])
    np.testing.assert_allclose(np.concatenate([first, rest]), whole, rtol=0, atol=1e-14)
    alone, _ = esn.run(u[:, 1:2], x0[1:2])
    np.testing.assert_allclose(alone, whole[:, 1:2], rtol=0, atol=1e-14)
    zeros, _ = esn.run(u)  # state None means zeros
    np.testing.assert_array_equal(zeros, esn.run(u, np.zeros((B, N)))[0])


def test_leak_rate_one_is_a_plain_tanh_rnn():
    esn = _net(leak_rate=1.0, spectral_radius=1.3)
    u, _, x0 = _problem()
    p = esn.state_dict()
    rnn = RNN(I, N, dtype="float64")
    rnn.load_state_dict({"weight_ih_l0": p["weight_ih"], "weight_hh_l0": p["weight_hh"],
                         "bias_ih_l0": p["bias"], "bias_hh_l0": np.zeros(N)})
    y, _, _ = rnn.forward(u, x0[None])
    states, _ = esn.run(u, x0)
    assert rel_err(states, y) < TOL64


def test_leaky_update_is_a_convex_combination_of_old_state_and_tanh():
    # x_t = (1 - a) x_{t-1} + a tanh(.): with a small leak the state moves slowly from x0
    esn = _net(leak_rate=0.01)
    u, _, x0 = _problem()
    states, _ = esn.run(u[:1], x0)
    assert np.abs(states[0] - x0).max() <= 0.01 * (1.0 + np.abs(x0).max()) + 1e-15


# ---------------------------------------------------------------------------------------------
# the reservoir's construction
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("radius", [0.5, 1.0, 1.25, 3.0])
def test_spectral_radius_equals_the_requested_value(radius):
    esn = EchoStateNetwork(1, 40, spectral_radius=radius, seed=7)
    w = esn.state_dict()["weight_hh"]
    assert np.abs(np.linalg.eigvals(w)).max() == pytest.approx(radius, rel=1e-10)
    lam = esn.eigenvalues()
    assert lam.shape == (40,) and np.iscomplexobj(lam)
    assert abs(lam[0]) == pytest.approx(radius, rel=1e-10)
    assert np.all(np.diff(np.abs(lam)) <= 1e-12)  # largest magnitude first


def test_spectral_radius_in_float32():
    esn = EchoStateNetwork(1, 30, spectral_radius=1.25, dtype="float32", seed=1)
    assert esn.state_dict()["weight_hh"].dtype == np.float32
    assert abs(esn.eigenvalues()[0]) == pytest.approx(1.25, rel=1e-5)


def test_sparsity_and_scalings_follow_the_arguments():
    esn = EchoStateNetwork(3, 50, connectivity=0.2, input_connectivity=0.3, input_scaling=0.5,
                           bias_scaling=0.25, seed=4)
    p = esn.state_dict()
    assert np.count_nonzero(p["weight_hh"]) == round(0.2 * 50 * 50)
    w_in = p["weight_ih"]
    assert np.count_nonzero(w_in) == round(0.3 * 50 * 3)
    assert set(np.unique(np.abs(w_in[w_in != 0]))) == {0.5}
    assert 0 < np.count_nonzero(w_in > 0) < np.count_nonzero(w_in)  # both signs drawn
    bias = p["bias"]
    assert np.count_nonzero(bias) == round(0.3 * 50)
    assert set(np.unique(np.abs(bias[bias != 0]))) == {0.25}
    assert not EchoStateNetwork(3, 50, bias_scaling=0.0, seed=4).state_dict()["bias"].any()


def test_reservoir_is_reproducible_from_its_seed():
    a, b, c = (EchoStateNetwork(2, 20, seed=s).state_dict() for s in (5, 5, 6))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["weight_hh"], c["weight_hh"])


@pytest.mark.parametrize("seed", range(5))
def test_tiny_sparse_reservoirs_are_redrawn_until_rescalable(seed):
    # one non-zero in a 2x2 W: off the diagonal it is nilpotent (spectral radius 0) and is redrawn
    esn = EchoStateNetwork(1, 2, connectivity=0.25, spectral_radius=0.8, seed=seed)
    assert abs(esn.eigenvalues()[0]) == pytest.approx(0.8, rel=1e-12)


def test_a_reservoir_too_sparse_to_rescale_is_a_clear_error():
    with pytest.raises(ValueError, match=r"connectivity=1e-05 is too sparse for reservoir_size=300"):
        EchoStateNetwork(1, 300, connectivity=1e-5, seed=1)  # a seed whose 100 draws all miss the diagonal


# ---------------------------------------------------------------------------------------------
# the readout
# ---------------------------------------------------------------------------------------------

def _direct_lstsq(z, y, ridge):
    """Ridge with an unpenalised bias, as one least-squares problem on the augmented system
    [[1, X], [0, sqrt(ridge) I]] [b; W^T] = [Y; 0]."""
    X = z.reshape(-1, z.shape[-1])
    Y = y.reshape(X.shape[0], -1)
    F = X.shape[1]
    A = np.block([[np.ones((X.shape[0], 1)), X], [np.zeros((F, 1)), math.sqrt(ridge) * np.eye(F)]])
    sol = np.linalg.lstsq(A, np.vstack([Y, np.zeros((F, Y.shape[1]))]), rcond=None)[0]
    return sol[1:].T, sol[0]


@pytest.mark.parametrize("readout_input", [False, True])
@pytest.mark.parametrize("ridge", [1e-3, 0.0])
def test_readout_equals_a_direct_lstsq_solution(readout_input, ridge):
    esn = _net(ridge=ridge, readout_input=readout_input)
    u, y, x0 = _problem(steps=40)
    final = esn.fit(u, y, warmup=4, state=x0)
    states, _ = esn.run(u, x0)
    np.testing.assert_array_equal(final, states[-1])
    z = reference.features(states[4:], u[4:] if readout_input else None)
    w_expected, b_expected = _direct_lstsq(z, y[4:], ridge)
    p = esn.state_dict()
    assert p["readout.weight"].shape == (O, N + (I if readout_input else 0))
    assert rel_err(p["readout.weight"], w_expected) < 1e-9
    assert rel_err(p["readout.bias"], b_expected) < 1e-9
    if ridge > 0:  # the normal equations of the reference agree too
        w_ref, b_ref = reference.ridge_readout(z, y[4:], ridge)
        assert rel_err(p["readout.weight"], w_ref) < 1e-9 and rel_err(p["readout.bias"], b_ref) < 1e-9


def test_a_float32_least_squares_readout_ignores_directions_below_float32s_rounding():
    """ridge=0 on a float32 reservoir whose states are nearly dependent (constant input): scipy's
    float64 cutoff kept directions made of float32 rounding noise, and the readout's weights reached
    3.5e12 with a training RMSE of 1.1e5 where predicting the mean scores 0.96."""
    y = np.random.default_rng(0).standard_normal((40, 2, 1))
    esn = EchoStateNetwork(2, 50, ridge=0.0, dtype="float32", seed=1)
    esn.fit(np.zeros((40, 2, 2), np.float32), y.astype(np.float32))
    rmse = float(np.sqrt(np.mean((esn.predict(np.zeros((40, 2, 2), np.float32)) - y) ** 2)))
    assert rmse < float(np.std(y))  # no worse than the mean: the noise directions are left out


def test_a_readout_beyond_the_dtypes_range_is_refused_not_kept_as_inf():
    """A one-unit reservoir that barely moves (leak 1e-12, inputs 1e-30): the readout was [[inf]] in
    float32 and predict returned inf, with only numpy's cast warning."""
    esn = EchoStateNetwork(2, 1, leak_rate=1e-12, ridge=0.0, dtype="float32", seed=0)
    y = np.random.default_rng(0).standard_normal((40, 1, 1)).astype(np.float32)
    with pytest.raises(ValueError, match=r"^the fitted readout's weight holds .*, beyond float32's range: the states "
                                         r"are too nearly dependent for ridge=0; raise ridge$"):
        esn.fit(np.full((40, 1, 2), 1e-30, np.float32), y)
    with pytest.raises(ValueError, match="fit"):  # nothing half-fitted is kept
        esn.predict(np.zeros((3, 1, 2), np.float32))


@pytest.mark.parametrize("radius, dtype", [(1e39, "float32"), (1e308, "float64")])
def test_a_spectral_radius_beyond_the_dtypes_range_is_refused(radius, dtype):
    """W came out of the scaling as inf (float32) or NaN (0 * inf, float64): the states NaN, eigenvalues
    a LinAlgError."""
    with pytest.raises(ValueError, match="^" + re.escape(f"spectral_radius={radius:g} scales W's entries beyond "
                                                         f"{dtype}'s range")):
        EchoStateNetwork(2, 10, spectral_radius=radius, dtype=dtype, seed=1)


def test_readout_bias_is_not_penalised():
    # shifting every target by a constant shifts only the bias, by that constant, whatever the ridge
    rng = np.random.default_rng(0)
    z = rng.standard_normal((50, 1, 4))
    y = rng.standard_normal((50, 1, 1))
    w1, b1 = ridge_readout(z, y, 10.0)
    w2, b2 = ridge_readout(z, y + 100.0, 10.0)
    np.testing.assert_allclose(w2, w1, atol=1e-12)
    np.testing.assert_allclose(b2, b1 + 100.0, atol=1e-10)


def test_ridge_shrinks_the_readout_weights():
    u, y, _ = _problem(steps=40)
    norms = []
    for ridge in (0.0, 1e-2, 1.0, 100.0):
        esn = _net(ridge=ridge)
        esn.fit(u, y)
        norms.append(np.linalg.norm(esn.state_dict()["readout.weight"]))
    assert norms == sorted(norms, reverse=True) and norms[-1] < 0.1 * norms[0]


@pytest.mark.parametrize("readout_input", [False, True])
def test_predict_is_the_readout_of_the_states(readout_input):
    esn = _net(readout_input=readout_input)
    u, y, x0 = _problem(steps=20)
    esn.fit(u, y, warmup=2)
    assert esn.fitted and esn.output_size == O
    p = esn.state_dict()
    y_hat, state_n, trace = esn.forward(u, x0)
    ref_states = _reference_states(esn, u, x0)
    expected = reference.readout(reference.features(ref_states, u if readout_input else None),
                                 p["readout.weight"], p["readout.bias"])
    assert rel_err(y_hat, expected) < TOL64
    assert rel_err(state_n, ref_states[-1]) < TOL64
    assert trace.get("h").shape == (20, B, N)
    np.testing.assert_array_equal(esn.predict(u, x0), y_hat)


def test_float32_network_fits_and_predicts_in_float32():
    esn = _net(dtype="float32")
    u, y, _ = _problem(np.float32, steps=20)
    esn.fit(u, y)
    assert all(v.dtype == np.float32 for v in esn.state_dict().values())
    assert esn.predict(u).dtype == np.float32


# ---------------------------------------------------------------------------------------------
# Mackey-Glass, reservoirpy's setup
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mackey_glass_split():
    x = mackey_glass(2000, tau=17)[:, None, None]
    # reservoirpy's README: to_forecasting(X, test_size=0.2), fit(warmup=100), run on the test part
    return x[:1599], x[1:1600], x[1599:1999], x[1600:]


def test_one_step_mackey_glass_forecast_is_accurate(mackey_glass_split):
    x_train, y_train, x_test, y_test = mackey_glass_split
    esn = EchoStateNetwork(1, 100, spectral_radius=1.25, leak_rate=0.3, ridge=1e-5, seed=0)
    final = esn.fit(x_train, y_train, warmup=100)
    y_hat = esn.predict(x_test, state=final)
    rmse = float(np.sqrt(np.mean((y_hat - y_test) ** 2)))
    r2 = 1.0 - float(np.sum((y_hat - y_test) ** 2) / np.sum((y_test - y_test.mean()) ** 2))
    assert rmse < 0.005 and r2 > 0.9995
    # a network that ignores its input (no readout) cannot do this: the mean predictor's error
    assert rmse < 0.05 * float(np.std(y_test))


# ---------------------------------------------------------------------------------------------
# free-running generation
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("readout_input", [False, True])
def test_generate_feeds_each_output_back_as_the_next_input(readout_input):
    esn = _net(input_size=2, readout_input=readout_input)
    u, _, x0 = _problem(steps=30)
    esn.fit(u[:-1], u[1:], warmup=3, state=x0)  # learn to forecast the next input
    warm = u[:10]
    y, trace = esn.generate(8, warm, state=x0)
    assert y.shape == (8, B, I)
    # teacher-forcing the generated outputs reproduces them: each was the next step's input
    again = esn.predict(np.concatenate([warm, y[:-1]]), state=x0)[-8:]
    assert rel_err(y, again) < 1e-12
    p = esn.state_dict()
    expected = reference.generate(8, warm, p["weight_ih"], p["weight_hh"], p["bias"], esn.leak_rate,
                                  p["readout.weight"], p["readout.bias"], x0)
    assert rel_err(y, expected) < TOL64
    # the trace holds the state each output was read from: the first is the warm-up's last state
    states = trace.get("h")
    assert states.shape == (8, B, N)
    np.testing.assert_allclose(states[0], esn.run(warm, x0)[0][-1], rtol=0, atol=1e-15)


def test_generate_tracks_mackey_glass_for_a_while(mackey_glass_split):
    x_train, y_train, x_test, _ = mackey_glass_split
    esn = EchoStateNetwork(1, 100, seed=0)
    esn.fit(x_train, y_train, warmup=100)
    y, _ = esn.generate(20, x_train)  # continues the training series
    truth = x_test[:20]
    assert np.abs(y - truth).max() < 0.05


def test_returned_states_and_outputs_are_not_the_traces_records():
    """Editing what run/forward/generate return leaves the trace's "h" as computed (run's states
    used to be the record itself)."""
    esn = _net()
    u, y, _ = _problem()
    states, trace = esn.run(u)
    kept = trace.get("h").copy()
    states[...] = 7.0
    np.testing.assert_array_equal(trace.get("h"), kept)
    esn.fit(u, u)
    out, state_n, trace = esn.forward(u)
    y_gen, gen_trace = esn.generate(3, u)
    for result, record in ((out, trace.get("h")), (state_n, trace.get("h")), (y_gen, gen_trace.get("h"))):
        assert not np.shares_memory(result, record)


# ---------------------------------------------------------------------------------------------
# state dict
# ---------------------------------------------------------------------------------------------

def test_state_dict_round_trip_reproduces_the_network():
    esn = _net(readout_input=True)
    u, y, x0 = _problem(steps=20)
    esn.fit(u, y)
    other = _net(readout_input=True, seed=99)
    other.load_state_dict(esn.state_dict())
    np.testing.assert_array_equal(other.predict(u, x0), esn.predict(u, x0))
    np.testing.assert_array_equal(other.eigenvalues(), esn.eigenvalues())
    reservoir_only = {k: v for k, v in esn.state_dict().items() if not k.startswith("readout.")}
    other.load_state_dict(reservoir_only)
    assert not other.fitted
    with pytest.raises(ValueError, match=r"predict\(\) needs a fitted readout"):
        other.predict(u)


def test_a_reservoir_without_readout_loaded_not_strict_keeps_the_fitted_readout():
    """Strict, a state without the readout makes the network unfitted (above); ``strict=False`` loads
    what the state has, as torch's does: the fitted readout stays, listed as missing."""
    esn, other = _net(), _net(seed=99)
    u, y, x0 = _problem(steps=20)
    esn.fit(u, y)
    readout = {k: v for k, v in esn.state_dict().items() if k.startswith("readout.")}
    reservoir = {k: v for k, v in other.state_dict().items() if not k.startswith("readout.")}
    keys = esn.load_state_dict(reservoir, strict=False)
    assert keys == (["readout.weight", "readout.bias"], []) and esn.fitted
    state = esn.state_dict()
    for key, value in {**reservoir, **readout}.items():
        np.testing.assert_array_equal(state[key], value, err_msg=key)
    assert other.load_state_dict(reservoir, strict=False) == ([], []) and not other.fitted
    with pytest.raises(ValueError, match=r"only half of the readout: 'readout.bias' is missing"):
        esn.load_state_dict({"readout.weight": readout["readout.weight"]}, strict=False)
    assert esn.load_state_dict(readout, strict=False) == (["weight_ih", "weight_hh", "bias"], [])


def test_parameters_are_the_live_arrays_by_the_state_dicts_names():
    esn = _net()
    u, y, x0 = _problem(steps=20)
    assert list(esn.parameters()) == ["weight_ih", "weight_hh", "bias"]
    assert esn.num_parameters == sum(v.size for v in esn.state_dict().values())  # as every layer counts them
    esn.fit(u, y)
    assert esn.num_parameters == sum(v.size for v in esn.state_dict().values())
    params = esn.parameters()
    assert list(params) == list(esn.state_dict())
    before = esn.predict(u, x0)
    params["readout.bias"] += 1.0  # in place: the network's own readout
    np.testing.assert_allclose(esn.predict(u, x0), before + 1.0)
    params["readout.bias"] = params["readout.bias"] + 1.0  # replaced: it used to be a copy, ignored
    np.testing.assert_allclose(esn.predict(u, x0), before + 2.0)
    params["weight_hh"] = np.asfortranarray(params["weight_hh"])  # any layout
    np.testing.assert_allclose(esn.predict(u, x0), before + 2.0)
    params["readout.weight"] = params["readout.weight"][:, :-1]
    with pytest.raises(ValueError, match=r"parameter 'readout.weight' has shape"):
        esn.predict(u, x0)
    params["readout.weight"] = np.zeros_like(params["weight_hh"][:1])
    params["weight_ih"] = params["weight_ih"].astype(np.float32)
    with pytest.raises(ValueError, match=r"parameter 'weight_ih' has dtype float32"):
        esn.run(u, x0)


def test_state_dict_is_a_copy():
    esn = _net()
    state = esn.state_dict()
    state["weight_hh"][:] = 0.0
    assert esn.state_dict()["weight_hh"].any()


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("bias"), r"missing key\(s\): bias"),
    (lambda s: s.update(extra=np.zeros(1)), r"unexpected key\(s\): extra"),
    (lambda s: s.update(weight_hh=np.zeros((N, N + 1))), r"'weight_hh' has shape \(6, 7\), expected \(6, 6\)"),
    (lambda s: s.update(weight_ih=np.full((N, I), np.nan)), r"'weight_ih' contains NaN or Inf"),
    (lambda s: s.pop("readout.bias"), r"only half of the readout: 'readout.bias' is missing"),
    (lambda s: s.update({"readout.weight": np.zeros((O, N + 1))}), r"'readout.weight' has shape \(2, 7\)"),
    (lambda s: s.update(bias=np.array(["a"] * N)), r"'bias' has non-numeric dtype"),
])
def test_bad_state_dicts_are_rejected_and_leave_the_network_unchanged(change, message):
    esn = _net()
    u, y, _ = _problem(steps=10)
    esn.fit(u, y)
    before = esn.state_dict()
    state = esn.state_dict()
    change(state)
    with pytest.raises(ValueError, match=message):
        esn.load_state_dict(state)
    for name, value in esn.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


# ---------------------------------------------------------------------------------------------
# validation: one-line ValueErrors naming the argument
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, name", [
    (dict(spectral_radius=0.0), "spectral_radius"),
    (dict(spectral_radius=-1.25), "spectral_radius"),
    (dict(spectral_radius=float("nan")), "spectral_radius"),
    (dict(spectral_radius=float("inf")), "spectral_radius"),
    (dict(spectral_radius="1.25"), "spectral_radius"),
    (dict(leak_rate=0.0), "leak_rate"),
    (dict(leak_rate=1.5), "leak_rate"),
    (dict(leak_rate=-0.3), "leak_rate"),
    (dict(connectivity=0.0), "connectivity"),
    (dict(connectivity=1.1), "connectivity"),
    (dict(input_connectivity=0.0), "input_connectivity"),
    (dict(input_connectivity=2.0), "input_connectivity"),
    (dict(input_scaling=0.0), "input_scaling"),
    (dict(input_scaling=-1.0), "input_scaling"),
    (dict(bias_scaling=-0.1), "bias_scaling"),
    (dict(ridge=-1e-5), "ridge"),
    (dict(ridge=float("nan")), "ridge"),
    (dict(readout_input="yes"), "readout_input"),
    (dict(reservoir_size=0), "reservoir_size"),
    (dict(reservoir_size=10.5), "reservoir_size"),
    (dict(reservoir_size=True), "reservoir_size"),
    (dict(input_size=0), "input_size"),
    (dict(output_size=0), "output_size"),
    (dict(dtype="int32"), "dtype"),
    (dict(dtype="nonsense"), "dtype"),
    (dict(seed=-1), "seed"),
    (dict(seed="a"), "seed"),
])
def test_bad_hyperparameters_are_one_line_errors_naming_them(kwargs, name):
    with pytest.raises(ValueError) as info:
        _net(**kwargs)
    message = str(info.value)
    assert message.startswith(name) and "\n" not in message


def test_a_reservoir_too_large_for_memory_is_refused_before_it_is_drawn(monkeypatch):
    """``EchoStateNetwork(1, 10**6)`` was numpy's MemoryError (7.28 TiB) from inside the sparse draw:
    refused first, in one line naming the network and what to make smaller, as every layer's sizes are."""
    from rnnlab.layers import _params

    need = 8 * (N * I + N * N + N)  # W_in, W, b in float64 (the readout comes with fit)
    monkeypatch.setattr(_params, "physical_memory", lambda: 2 * need)
    assert _net().state_dict()["weight_hh"].shape == (N, N)
    monkeypatch.setattr(_params, "physical_memory", lambda: 2 * need - 2)
    with pytest.raises(ValueError) as info:
        _net()
    assert str(info.value) == (f"EchoStateNetwork({I}, {N}): its {need // 8} parameters need about {need} bytes "
                               f"(float64), more than half of this machine's {2 * need - 2} bytes; "
                               "make reservoir_size smaller")
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"^EchoStateNetwork\(1, 1000000\): its 1,000,002,000,000 parameters need "
                                         r"about 3\.6 TiB \(float32\)"):
        EchoStateNetwork(1, 10**6, dtype="float32")


@pytest.fixture(scope="module")
def fitted():
    """A fitted network with O = 1 != I = 2 (the calls below all fail before changing it)."""
    esn = _net()
    u, y, _ = _problem(steps=12)
    esn.fit(u, y[:, :, :1])
    return esn


_GOOD_U = np.zeros((T, B, I))


@pytest.mark.parametrize("call, message", [
    (lambda e: e.run(np.zeros((T, I))), r"input must have shape \(T, B, 2\) \(input_size=2\), got \(7, 2\)"),
    (lambda e: e.run(np.zeros((T, B, I + 1))), r"input has shape \(7, 3, 3\), expected \(7, 3, 2\)"),
    (lambda e: e.run(np.zeros((0, B, I))), r"input must have at least one step and one sequence"),
    (lambda e: e.run(np.zeros((T, B, I), np.float32)), r"input has dtype float32, but the network is float64"),
    (lambda e: e.run(np.full((T, B, I), np.nan)), r"input contains NaN or Inf"),
    (lambda e: e.run(np.full((T, B, I), np.inf)), r"input contains NaN or Inf"),
    (lambda e: e.run(_GOOD_U, np.zeros((B, N + 1))), r"state has shape \(3, 7\), expected \(3, 6\)"),
    (lambda e: e.run(_GOOD_U, np.zeros((1, B, N))), r"state has shape \(1, 3, 6\), expected \(3, 6\)"),
    (lambda e: e.run(_GOOD_U, np.full((B, N), np.nan)), r"state contains NaN or Inf"),
    (lambda e: e.fit(_GOOD_U, np.zeros((T + 1, B, O))), r"targets has shape \(8, 3, 2\), expected \(7, 3, 2\)"),
    (lambda e: e.fit(_GOOD_U, np.zeros((T, B + 1, O))), r"targets has shape \(7, 4, 2\), expected \(7, 3, 2\)"),
    (lambda e: e.fit(_GOOD_U, np.zeros((T, B))), r"targets must have shape \(T, B, O\), got \(7, 3\)"),
    (lambda e: e.fit(_GOOD_U, np.full((T, B, O), np.nan)), r"targets contains NaN or Inf"),
    (lambda e: e.fit(_GOOD_U, np.zeros((T, B, O)), warmup=T), r"warmup must be an integer in \[0, 7\)"),
    (lambda e: e.fit(_GOOD_U, np.zeros((T, B, O)), warmup=-1), r"warmup must be an integer in \[0, 7\)"),
    (lambda e: e.fit(_GOOD_U, np.zeros((T, B, O)), warmup=1.0), r"warmup must be an integer"),
    (lambda e: e.generate(0, _GOOD_U), r"n_steps must be a positive integer, got 0"),
    (lambda e: e.generate(3, _GOOD_U), r"generate\(\) feeds outputs back as inputs: needs output_size == input_size"),
    (lambda e: e.forward(np.zeros((T, B, I + 1))), r"input has shape"),
    (lambda e: e.run([[[0.0, 1.0]], [[0.0]]]), r"^input is not an array: setting an array element with a sequence"),
    (lambda e: e.fit(_GOOD_U, [[[0.0, 1.0]], [[0.0]]]), r"^targets is not an array: "),
])
def test_bad_calls_are_one_line_errors(fitted, call, message):
    with pytest.raises(ValueError, match=message) as info:
        call(fitted)
    assert "\n" not in str(info.value)


def test_output_size_is_enforced_and_calls_need_a_fit():
    esn = _net(output_size=1)
    u, y, _ = _problem()
    with pytest.raises(ValueError, match=r"targets have 2 features, but output_size is 1"):
        esn.fit(u, y)
    for call in (lambda: esn.predict(u), lambda: esn.forward(u), lambda: esn.generate(2, u[:, :, :1])):
        with pytest.raises(ValueError, match=r"needs a fitted readout: call fit\(x, y\) first"):
            call()
    states, _ = esn.run(u)  # the reservoir runs without a readout
    assert states.shape == (T, B, N)


def test_generate_validates_warmup_inputs():
    esn = _net(input_size=2)
    u, _, _ = _problem()
    esn.fit(u[:-1], u[1:])
    with pytest.raises(ValueError, match=r"warmup_inputs must have shape \(T, B, 2\)"):
        esn.generate(3, u[0])
    with pytest.raises(ValueError, match=r"warmup_inputs contains NaN or Inf"):
        esn.generate(3, np.full_like(u, np.nan))
    for n in (10**13, 2**63):  # a free run past any memory: one line, not numpy's MemoryError (an API review)
        with pytest.raises(ValueError, match=r"^EchoStateNetwork.generate: this input's trace would hold .* make "
                                             r"n_steps smaller$"):
            esn.generate(n, u)


# ---------------------------------------------------------------------------------------------
# the registered readout check
# ---------------------------------------------------------------------------------------------

def test_readout_check_is_registered_and_passes():
    result = gradcheck.CHECKS["esn_readout"]()
    assert result.ok, result
    assert set(result.errors) == {"readout.weight", "readout.bias", "fd:readout.weight", "fd:readout.bias"}
    assert result.errors["readout.weight"] < 1e-12  # a true stationary point, up to rounding


def test_readout_check_catches_a_wrong_solution(monkeypatch):
    def slightly_off(features, targets, ridge):
        w, b = ridge_readout(features, targets, ridge)
        return w * 1.001, b

    monkeypatch.setattr(esn_layer, "ridge_readout", slightly_off)
    result = gradcheck.CHECKS["esn_readout"]()
    assert not result.ok and result.errors["readout.weight"] > 100 * gradcheck.TOLERANCE
    assert result.errors["fd:readout.weight"] < gradcheck.TOLERANCE  # the formula is still right
