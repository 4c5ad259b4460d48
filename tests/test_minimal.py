"""MinGRU, MinLSTM and LRU: the scan kernels, the layers against the float64 reference, and the
agreement of the evaluation strategies (sequential loop, chunked scan, Blelloch tree)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from conftest import rel_err
from rnnlab import gradcheck
from rnnlab.kernels import scan as scan_kernels
from rnnlab.kernels.scan import METHODS, scan_forward, scan_reverse
from rnnlab.layers import minimal
from rnnlab.layers.minimal import LRU, MinGRU, MinLSTM
from rnnlab.reference import minimal as reference

CELLS = {"MinGRU": MinGRU, "MinLSTM": MinLSTM, "LRU": LRU}
RECORDS = {"MinGRU": ("h", "z", "h_tilde"), "MinLSTM": ("h", "f", "i", "f_norm", "h_tilde"),
           "LRU": ("h", "h_im", "h_abs")}
TOL64 = 1e-10
TOL32 = 2e-5


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def make(mode, I, H, *, num_layers=1, bidirectional=False, bias=True, dtype="float64", seed=0, **kwargs):
    if mode == "LRU":
        return LRU(I, H, num_layers=num_layers, dtype=dtype, seed=seed, **kwargs)
    return CELLS[mode](I, H, num_layers=num_layers, bidirectional=bidirectional, bias=bias, dtype=dtype, seed=seed,
                       **kwargs)


def problem(layer, T, B, rng):
    """x, h0, dy, dh_n for ``layer`` in its dtypes (complex states for the LRU)."""
    shape = (layer.num_layers * layer.num_directions, B, layer.hidden_size)

    def state(scale):
        s = scale * rng.standard_normal(shape)
        if layer.state_dtype.kind == "c":
            s = s + 1j * scale * rng.standard_normal(shape)
        return s.astype(layer.state_dtype)

    return dict(x=rng.standard_normal((T, B, layer.input_size)).astype(layer.dtype), h0=state(0.5),
                dy=rng.standard_normal((T, B, layer.output_size)).astype(layer.dtype), dh_n=state(1.0))


def run(layer, p, truncate=None, method=None):
    y, h_n, trace = layer.forward(p["x"], p["h0"], method=method)
    grads = layer.backward(trace, p["dy"], p["dh_n"], truncate=truncate, method=method)
    return y, h_n, trace, grads


def reference_run(layer, p, truncate=None):
    params = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    up = {k: (v.astype(np.complex128) if np.iscomplexobj(v) else v.astype(np.float64)) for k, v in p.items()}
    kwargs = dict(num_layers=layer.num_layers, bidirectional=layer.bidirectional)
    y, h_n, records = reference.forward(layer.mode, params, up["x"], up["h0"], **kwargs)
    grads = reference.backward(layer.mode, params, up["x"], up["h0"], dy=up["dy"], dh_n=up["dh_n"],
                               truncate=truncate, **kwargs)
    return y, h_n, records, grads


def compare_to_reference(layer, ours, ref):
    """Every output, record, gradient and dL/dh_t of ``ours`` against the reference: errors by name."""
    y, h_n, trace, grads = ours
    ry, rh_n, records, rgrads = ref
    errors = {"y": rel_err(y, ry), "h_n": cerr(h_n, rh_n)}
    assert y.dtype == layer.dtype and h_n.dtype == layer.state_dtype
    for (l, d), rec in records.items():
        if layer.mode == "LRU":
            h = rec["h"]
            expected = {"h": h.real, "h_im": h.imag, "h_abs": np.abs(h)}
            dh = rgrads["dh"][(l, d)]
            expected.update(dh=np.abs(dh), dh_re=dh.real, dh_im=dh.imag)
        else:
            expected = dict(rec, dh=rgrads["dh"][(l, d)])
        for name, value in expected.items():
            errors[f"trace.{name}[{l},{d}]"] = rel_err(trace.get(name, l, d), value)
    assert set(grads) == set(rgrads) - {"dh"}
    assert list(grads)[: len(layer.state_dict())] == list(layer.state_dict())
    for name, value in grads.items():
        assert value.shape == rgrads[name].shape, name
        assert value.dtype == (layer.state_dtype if np.iscomplexobj(rgrads[name]) else layer.dtype), name
        errors[f"grad.{name}"] = cerr(value, rgrads[name])
    return errors


def cerr(actual, expected) -> float:
    """rel_err for real or complex arrays: max |actual - expected| / max |expected|."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-30)
    return float(np.abs(actual.astype(np.complex128) - expected).max(initial=0.0)) / scale


def assert_small(errors, tol):
    bad = {k: v for k, v in errors.items() if not v < tol}
    assert not bad, bad


# ---------------------------------------------------------------------------------------------
# the scan kernels
# ---------------------------------------------------------------------------------------------

def loop_forward(a, b, h0):
    """h_t = a_t h_{t-1} + b_t, in complex128/float64, one step after another."""
    wide = np.complex128 if np.iscomplexobj(b) else np.float64
    a, b, h = a.astype(wide), b.astype(wide), h0.astype(wide)
    out = np.empty_like(b)
    for t in range(b.shape[0]):
        h = a[t if a.shape[0] > 1 else 0] * h + b[t]
        out[t] = h
    return out


def loop_reverse(a, d, g_end):
    """g_t = d_t + a_{t+1} g_{t+1} with a_T g_T = g_end."""
    wide = np.complex128 if np.iscomplexobj(d) else np.float64
    a, d, carry = a.astype(wide), d.astype(wide), g_end.astype(wide)
    out = np.empty_like(d)
    for t in range(d.shape[0] - 1, -1, -1):
        out[t] = d[t] + carry
        carry = a[t if a.shape[0] > 1 else 0] * out[t]
    return out


def coefficients(rng, shape, dtype):
    """|a| in [0, 1) (the cells' range), with random phases when complex."""
    a = rng.uniform(0.0, 1.0, shape)
    if np.dtype(dtype).kind == "c":
        a = a * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))
    return a.astype(dtype)


def values(rng, shape, dtype):
    v = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        v = v + 1j * rng.standard_normal(shape)
    return v.astype(dtype)


STRATEGIES = [("sequential", None), ("blelloch", None)] + [("scan", c) for c in (None, 1, 2, 3, 5, 8)]


@given(T=st.integers(1, 200), N=st.integers(1, 64), dtype=st.sampled_from(["float32", "float64", "complex64",
                                                                              "complex128"]),
       invariant=st.booleans(), strategy=st.sampled_from(STRATEGIES), reverse=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_every_strategy_matches_the_loop(T, N, dtype, invariant, strategy, reverse, seed):
    rng = np.random.default_rng(seed)
    a = coefficients(rng, (1 if invariant else T, N), dtype)
    b = values(rng, (T, N), dtype)
    h0 = values(rng, (N,), dtype)
    a_before = a.copy()
    x = b.copy()
    method, chunks = strategy
    (scan_reverse if reverse else scan_forward)(a, x, h0, method, 1, chunks)
    expected = (loop_reverse if reverse else loop_forward)(a, b, h0)
    assert cerr(x, expected) < (1e-5 if dtype in ("float32", "complex64") else 1e-12)
    assert np.array_equal(a, a_before)  # the coefficients are read, never written


@pytest.mark.parametrize("dtype", ["float32", "complex64"])
def test_strategies_agree_on_two_threads(dtype):
    # big enough that every strategy splits its work across two threads
    T, N = 4096, 64
    rng = np.random.default_rng(7)
    a, b, h0 = coefficients(rng, (T, N), dtype), values(rng, (T, N), dtype), values(rng, (N,), dtype)
    assert scan_kernels.auto_chunks(T, N, 2) == 2 and scan_kernels.channel_blocks(T, N, 2) == 2
    for reverse in (False, True):
        expected = (loop_reverse if reverse else loop_forward)(a, b, h0)
        for method, chunks in STRATEGIES:
            x = b.copy()
            (scan_reverse if reverse else scan_forward)(a, x, h0, method, 2, chunks)
            assert cerr(x, expected) < 1e-5, (method, chunks, reverse)


def test_scan_rejects_bad_arguments():
    a, x, h0 = np.ones((4, 3)), np.ones((4, 3)), np.ones(3)
    with pytest.raises(ValueError, match="method"):
        scan_forward(a, x, h0, "parallel", 1)
    with pytest.raises(ValueError, match="a must have shape"):
        scan_forward(np.ones((2, 3)), x, h0, "sequential", 1)
    with pytest.raises(ValueError, match="h0"):
        scan_forward(a, x, np.ones(4), "sequential", 1)
    with pytest.raises(ValueError, match="dtype"):
        scan_reverse(a.astype(np.float32), x, h0, "sequential", 1)


# ---------------------------------------------------------------------------------------------
# the layers against the reference
# ---------------------------------------------------------------------------------------------

T, B, I, H = 6, 3, 4, 5
GATED_CONFIGS = list(itertools.product(["MinGRU", "MinLSTM"], [1, 2], [False, True], [True, False]))
CONFIGS = GATED_CONFIGS + [("LRU", 1, False, True), ("LRU", 2, False, True)]
CONFIG_IDS = [f"{m}-l{L}-{'bi' if D else 'uni'}-{'bias' if b else 'nobias'}" for m, L, D, b in CONFIGS]


@pytest.mark.parametrize("truncate", [None, 1, 3, T + 2], ids=lambda k: f"trunc{k}")
@pytest.mark.parametrize("mode,num_layers,bidirectional,bias", CONFIGS, ids=CONFIG_IDS)
def test_float64_matches_reference_with_every_method(mode, num_layers, bidirectional, bias, truncate):
    layer = make(mode, I, H, num_layers=num_layers, bidirectional=bidirectional, bias=bias, seed=3, scan_chunks=2)
    p = problem(layer, T, B, np.random.default_rng(4))
    ref = reference_run(layer, p, truncate)
    for method in METHODS:
        assert_small(compare_to_reference(layer, run(layer, p, truncate, method), ref), TOL64)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", list(CELLS))
def test_float32_matches_reference(mode, method):
    layer = make(mode, I, H, num_layers=2, bidirectional=mode != "LRU", dtype="float32", seed=5, scan_chunks=3)
    p = problem(layer, 40, B, np.random.default_rng(6))
    assert_small(compare_to_reference(layer, run(layer, p, truncate=7, method=method), reference_run(layer, p, 7)),
                 TOL32)


@st.composite
def shapes(draw):
    return dict(mode=draw(st.sampled_from(list(CELLS))), T=draw(st.integers(1, 200)), B=draw(st.integers(1, 4)),
                H=draw(st.integers(1, 16)), I=draw(st.integers(1, 6)), dtype=draw(st.sampled_from(["float32",
                                                                                                   "float64"])),
                num_layers=draw(st.integers(1, 2)), chunks=draw(st.integers(1, 8)),
                truncate=draw(st.one_of(st.none(), st.integers(1, 50))), seed=draw(st.integers(0, 2**32 - 1)))


@given(shape=shapes())
def test_sequential_and_scan_strategies_agree(shape):
    """Property (issue 7): outputs, final states, records and every gradient agree across strategies."""
    note(str(shape))
    s = shape
    layer = make(s["mode"], s["I"], s["H"], num_layers=s["num_layers"], dtype=s["dtype"], seed=s["seed"],
                 scan_chunks=s["chunks"])
    p = problem(layer, s["T"], s["B"], np.random.default_rng(s["seed"]))
    tol = TOL32 if s["dtype"] == "float32" else TOL64
    y0, h0, trace0, grads0 = run(layer, p, s["truncate"], "sequential")
    for method in ("scan", "blelloch"):
        y, h_n, trace, grads = run(layer, p, s["truncate"], method)
        errors = {"y": rel_err(y, y0), "h_n": cerr(h_n, h0)}
        for name in trace0.names:
            errors[f"trace.{name}"] = rel_err(trace[name], trace0[name])
        for name, value in grads0.items():
            errors[f"grad.{name}"] = cerr(grads[name], value)
        assert_small(errors, tol)


def test_layers_split_work_across_threads_and_agree():
    # sizes past the threading thresholds of every strategy (T * B * H >= 2**18)
    layer = MinGRU(8, 32, dtype="float32", seed=0)
    p = problem(layer, 2048, 4, np.random.default_rng(1))
    y0, h0, _, g0 = run(layer, p, method="sequential")
    for method in ("scan", "blelloch"):
        y, h_n, _, g = run(layer, p, method=method)
        assert rel_err(y, y0) < TOL32 and rel_err(h_n, h0) < TOL32
        assert all(rel_err(g[k], g0[k]) < TOL32 for k in g0)


def test_truncation_equals_training_on_chunks_with_a_detached_state():
    for mode in ("MinGRU", "LRU"):
        layer = make(mode, I, H, seed=8)
        p = problem(layer, 9, B, np.random.default_rng(9))
        k = 4
        grads = run(layer, p, truncate=k)[3]
        total = {name: np.zeros_like(value) for name, value in grads.items() if name not in ("input", "h0")}
        state = p["h0"]
        for start in range(0, 9, k):
            x = p["x"][start:start + k]
            _, state_n, trace = layer.forward(x, state)
            last = start + k >= 9
            chunk = layer.backward(trace, p["dy"][start:start + k], p["dh_n"] if last else None)
            for name in total:
                total[name] += chunk[name]
            state = state_n
        for name, value in total.items():
            assert rel_err(grads[name], value) < TOL64, (mode, name)


@pytest.mark.parametrize("mode", list(CELLS))
def test_truncation_at_or_beyond_the_length_is_full_bptt(mode):
    layer = make(mode, I, H, num_layers=2, seed=1)
    p = problem(layer, T, B, np.random.default_rng(2))
    full = run(layer, p)[3]
    for k in (T, T + 5):
        cut = run(layer, p, truncate=k)[3]
        assert all(np.array_equal(cut[name], full[name]) for name in full)


def test_minlstm_normalised_gates_survive_underflowing_gates_in_float32():
    # both gates ~1e-18: float32 rounds f and i to 0 and the literal f / (f + i) would be 0 / 0
    layer = MinLSTM(2, 3, dtype="float32", seed=0)
    params = layer.parameters()
    params["weight_ih_l0"][:] = 0.0
    params["bias_ih_l0"][:] = np.repeat(np.float32([-40.0, -45.0, 1.0]), 3)
    p = problem(layer, 5, 2, np.random.default_rng(3))
    y, h_n, trace, grads = run(layer, p)
    assert np.isfinite(y).all() and all(np.isfinite(g).all() for g in grads.values())
    ry, _, records, rgrads = reference_run(layer, p)
    assert rel_err(trace.get("f_norm"), records[(0, 0)]["f_norm"]) < 1e-6
    assert rel_err(y, ry) < 1e-5
    assert rel_err(grads["bias_ih_l0"], rgrads["bias_ih_l0"]) < 1e-4



@pytest.mark.parametrize("bias_f, bias_i", [(1.0, -30.0), (5.0, -12.0), (-3.0, -14.0)])
def test_minlstm_keeps_a_small_normalised_input_gate_accurate_in_float32(bias_f, bias_i):
    """i' = i / (f + i) where i << f: taken as 1 - f', float32 lost 17% of i' = 9e-6 and all of it
    below ~6e-8, in the outputs (y_1 = i' h~ from h0 = 0) and the gradients (an API review). The
    last case takes the log-space path (f + i < 0.1)."""
    layers = {dt: MinLSTM(2, 3, dtype=dt, seed=0) for dt in ("float32", "float64")}
    for layer in layers.values():
        params = layer.parameters()
        params["weight_ih_l0"][:] = 0.1
        params["bias_ih_l0"][:] = np.repeat([bias_f, bias_i, 1.0], 3)
    p32 = problem(layers["float32"], 6, 2, np.random.default_rng(4))
    p32["h0"][:] = 0
    p64 = {k: v.astype(np.float64) if isinstance(v, np.ndarray) else v for k, v in p32.items()}
    y32, _, _, g32 = run(layers["float32"], p32)
    y64, _, _, g64 = run(layers["float64"], p64)
    assert 0 < np.abs(y64[0]).max() < 1e-3  # the first step's output is i' h~: small, and checked relatively
    assert rel_err(y32[0], y64[0]) < 1e-5 and rel_err(y32, y64) < 1e-5
    assert all(rel_err(g32[k], g64[k]) < 1e-4 for k in g64)


# ---------------------------------------------------------------------------------------------
# the layer API
# ---------------------------------------------------------------------------------------------

def test_parameter_names_and_shapes():
    gru = MinGRU(3, 4, num_layers=2, bidirectional=True)
    assert {k: v.shape for k, v in gru.state_dict().items()} == {
        "weight_ih_l0": (8, 3), "bias_ih_l0": (8,), "weight_ih_l0_reverse": (8, 3), "bias_ih_l0_reverse": (8,),
        "weight_ih_l1": (8, 8), "bias_ih_l1": (8,), "weight_ih_l1_reverse": (8, 8), "bias_ih_l1_reverse": (8,)}
    assert list(MinLSTM(3, 4, bias=False).state_dict()) == ["weight_ih_l0"]
    assert MinLSTM(3, 4).state_dict()["weight_ih_l0"].shape == (12, 3)
    lru = LRU(3, 4, num_layers=2)
    assert {k: v.shape for k, v in lru.state_dict().items() if k.endswith("_l1")} == {
        "nu_log_l1": (4,), "theta_log_l1": (4,), "gamma_log_l1": (4,), "B_re_l1": (4, 3), "B_im_l1": (4, 3),
        "C_re_l1": (3, 4), "C_im_l1": (3, 4), "D_l1": (3,)}
    for layer in (gru, lru):
        assert list(layer.state_dict()) == reference.param_names(layer.mode, layer.num_layers, layer.bidirectional)
        assert layer.num_parameters == sum(v.size for v in layer.state_dict().values())
        assert all(v.dtype == np.float32 for v in layer.state_dict().values())


@pytest.mark.parametrize("mode", list(CELLS))
def test_seed_reproduces_and_state_dict_moves_weights(mode):
    a, b, c = make(mode, I, H, seed=11), make(mode, I, H, seed=11), make(mode, I, H, seed=12)
    assert all(np.array_equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not all(np.array_equal(a.state_dict()[k], c.state_dict()[k]) for k in a.state_dict())
    p = problem(a, T, B, np.random.default_rng(0))
    c.load_state_dict(a.state_dict())
    assert np.array_equal(a.forward(p["x"], p["h0"])[0], c.forward(p["x"], p["h0"])[0])
    with pytest.raises(ValueError, match="missing"):
        c.load_state_dict({k: v for k, v in a.state_dict().items() if not k.startswith("weight_ih") and k != "D_l0"})
    with pytest.raises(ValueError, match="unexpected"):
        c.load_state_dict({**a.state_dict(), "weight_hh_l0": np.zeros((2, 2))})


def test_gated_initialisation_is_uniform_over_the_fan_in():
    layer = MinGRU(16, 64, num_layers=2, seed=0)
    w0, w1 = layer.state_dict()["weight_ih_l0"], layer.state_dict()["weight_ih_l1"]
    assert np.abs(w0).max() <= 1 / 4 and np.abs(w0).max() > 0.9 / 4  # 1/sqrt(16)
    assert np.abs(w1).max() <= 1 / 8 and np.abs(w1).max() > 0.9 / 8  # 1/sqrt(64)


def test_lru_eigenvalues_follow_the_parameterisation_and_the_ring():
    layer = LRU(3, 200, num_layers=2, dtype="float64", seed=0, r_min=0.5, r_max=0.9, max_phase=np.pi)
    lam = layer.eigenvalues()
    assert lam.shape == (2, 200) and lam.dtype == np.complex128
    params = layer.state_dict()
    nu, theta = params["nu_log_l1"], params["theta_log_l1"]
    assert np.allclose(lam[1], np.exp(-np.exp(nu) + 1j * np.exp(theta)), rtol=0, atol=1e-15)
    assert np.all(np.abs(lam) >= 0.5 - 1e-12) and np.all(np.abs(lam) <= 0.9 + 1e-12)
    assert np.all(np.angle(lam) >= 0) and np.all(np.angle(lam) <= np.pi + 1e-12)
    assert np.allclose(np.exp(params["gamma_log_l0"]), np.sqrt(1 - np.abs(lam[0]) ** 2))
    assert np.all(np.abs(LRU(3, 500, seed=1).eigenvalues()) < 1)
    assert LRU(3, 4).eigenvalues().dtype == np.complex64



@pytest.mark.parametrize("name,value", [("nu_log_l0", 100.0), ("theta_log_l0", 89.0)])
def test_lru_float32_gradient_where_exp_of_the_parameter_overflows_float32(name, value):
    """exp(nu_log), exp(theta_log) beyond float32's range: the forward takes them in float64 (finite
    lambda), so must the backward. It took them in float32: Inf * 0 gave a NaN where the gradient is
    0 (nu_log = 100: lambda = 0), and Inf * d_mu an Inf where it is ~1e36 (theta_log = 89, dy = 1e-3)."""
    grads = {}
    for dtype in ("float32", "float64"):
        layer = LRU(2, 3, dtype=dtype, seed=0)
        state = layer.state_dict()
        state[name][0] = value
        layer.load_state_dict(state)
        y, _, trace = layer.forward(np.ones((3, 1, 2), dtype))
        grads[dtype] = layer.backward(trace, np.full_like(y, 1e-3))[name]
    assert np.isfinite(grads["float32"]).all(), grads["float32"]
    np.testing.assert_allclose(grads["float32"], grads["float64"], rtol=1e-4, atol=1e-6)

def test_lru_state_is_complex_and_its_output_has_the_input_size():
    layer = LRU(3, 5, num_layers=2, seed=0)
    x = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(np.float32)
    y, h_n, trace = layer.forward(x)
    assert y.shape == (4, 2, 3) and y.dtype == np.float32
    assert h_n.shape == (2, 2, 5) and h_n.dtype == np.complex64
    assert trace["h"].shape == (2, 4, 2, 5)
    assert np.allclose(trace["h_abs"], np.hypot(trace["h"], trace["h_im"]), atol=1e-6)
    assert np.allclose(trace.get("h", 1)[-1] + 1j * trace.get("h_im", 1)[-1], h_n[1])
    grads = layer.backward(trace, np.ones_like(y))
    assert grads["h0"].dtype == np.complex64 and set(trace.names) >= {"dh", "dh_re", "dh_im"}
    assert np.allclose(trace["dh"], np.hypot(trace["dh_re"], trace["dh_im"]), atol=1e-6)
    with pytest.raises(ValueError, match="complex64"):
        layer.forward(x, np.zeros((2, 2, 5), np.float32))


def test_records_and_outputs():
    layer = MinLSTM(3, 4, bidirectional=True, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    y, h_n, trace = layer.forward(x)
    assert trace.names == ("h", "f", "i", "f_norm", "h_tilde")
    assert np.array_equal(y[:, :, :4], trace.get("h", 0, 0)) and np.array_equal(y[:, :, 4:], trace.get("h", 0, 1))
    assert np.array_equal(h_n[1], trace.get("h", 0, 1)[0])  # the reverse direction ends at t = 0
    assert np.allclose(trace["f_norm"], trace["f"] / (trace["f"] + trace["i"]), atol=1e-6)
    y[:] = 0  # the output is the caller's: the trace keeps its own records
    assert np.abs(trace["h"]).max() > 0
    layer.backward(trace, np.ones((5, 2, 8), np.float32))
    assert trace.has_gradients and trace["dh"].shape == (2, 5, 2, 4)


def test_method_is_a_constructor_default_and_a_per_call_choice():
    layer = MinGRU(3, 4, method="blelloch", dtype="float64", seed=0)
    assert layer.method == "blelloch" and "method='blelloch'" in repr(layer)
    assert MinGRU(3, 4).method == "sequential"
    p = problem(layer, 7, 2, np.random.default_rng(0))
    assert rel_err(layer.forward(p["x"], method="scan")[0], layer.forward(p["x"])[0]) < TOL64


def test_bad_arguments_name_what_is_wrong():
    with pytest.raises(ValueError, match="method"):
        MinGRU(3, 4, method="fast")
    with pytest.raises(ValueError, match="method"):
        MinGRU(3, 4).forward(np.zeros((2, 1, 3), np.float32), method="parallel")
    with pytest.raises(ValueError, match="scan_chunks"):
        MinLSTM(3, 4, scan_chunks=0)
    with pytest.raises(ValueError, match="bidirectional"):
        LRU(3, 4, bidirectional=True)
    with pytest.raises(ValueError, match="r_min"):
        LRU(3, 4, r_min=0.9, r_max=0.5)
    with pytest.raises(ValueError, match="max_phase"):
        LRU(3, 4, max_phase=0.0)
    with pytest.raises(ValueError, match="hidden_size"):
        MinGRU(3, 0)
    layer = MinGRU(3, 4)
    with pytest.raises(ValueError, match=r"input has dtype float64"):
        layer.forward(np.zeros((2, 1, 3)))
    with pytest.raises(ValueError, match=r"h0 has shape"):
        layer.forward(np.zeros((2, 1, 3), np.float32), np.zeros((1, 2, 4), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        layer.forward(np.full((2, 1, 3), np.nan, np.float32))
    _, _, trace = layer.forward(np.zeros((2, 1, 3), np.float32))
    with pytest.raises(ValueError, match="dy has shape"):
        layer.backward(trace, np.zeros((2, 1, 5), np.float32))
    with pytest.raises(ValueError, match="truncate"):
        layer.backward(trace, None, truncate=0)
    with pytest.raises(ValueError, match="trace comes from another MinGRU's forward"):
        MinGRU(3, 4).backward(trace, None)


# ---------------------------------------------------------------------------------------------
# gradient checks
# ---------------------------------------------------------------------------------------------

MINIMAL_CHECKS = [name for name in gradcheck.CHECKS if name.split("_")[0] in ("mingru", "minlstm", "lru")]


def test_checks_are_registered_under_their_names():
    for cell in ("mingru", "minlstm", "lru"):
        for variant in ("", "_scan", "_blelloch"):
            assert cell + variant in gradcheck.CHECKS
    assert "mingru_deep_bidirectional" in gradcheck.CHECKS and "lru_deep" in gradcheck.CHECKS


@pytest.mark.parametrize("name", MINIMAL_CHECKS)
def test_registered_check_passes(name):
    result = gradcheck.CHECKS[name]()
    assert result.ok, result
    assert result.max_rel_err < gradcheck.TOLERANCE


@pytest.mark.parametrize("cls, check, key", [(MinGRU, "mingru_scan", "bias_ih_l0"), (LRU, "lru", "h0"),
                                             (LRU, "lru_deep", "theta_log_l0")])
def test_broken_gradient_is_caught(monkeypatch, cls, check, key):
    original = minimal._LinearRecurrence.backward

    def broken(self, *args, **kwargs):
        grads = original(self, *args, **kwargs)
        grads[key] = grads[key] * 1.001
        return grads

    monkeypatch.setattr(cls, "backward", broken)
    result = gradcheck.CHECKS[check]()
    assert not result.ok and result.worst == key
