"""rnnlab.analysis: step Jacobians, their norms, gradient norms and per-step weight gradients.

The Jacobians are checked against central finite differences of the layers' own forward pass
(float64 kernels): one cell step for J_t, several steps for the chained products, so the time
order and the direction convention are checked, not just the algebra -- for the linear
recurrences too (MinGRU, MinLSTM, and the LRU's complex state as [Re h; Im h]). The per-step
weight gradients are checked against backward()'s d weight_hh.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnlab
from rnnlab import analysis

from rnnlab.layers.leaky import LeakyRNN

from conftest import make_layer

T, B, I, H = 6, 3, 4, 3
EPS = 1e-6

# (mode, nonlinearity, bias, num_layers, bidirectional): every cell, with and without bias,
# stacked and bidirectional
CONFIGS = [
    ("RNN", "tanh", True, 2, True),
    ("RNN", "relu", True, 2, True),
    ("RNN", "tanh", False, 1, False),
    ("RNN", "relu", False, 2, False),
    ("LSTM", "tanh", True, 2, True),
    ("LSTM", "tanh", False, 1, True),
    ("GRU", "tanh", True, 2, True),
    ("GRU", "tanh", False, 2, False),
    ("Leaky", "tanh", True, 2, True),
    ("Leaky", "tanh", False, 1, False),
]
IDS = [f"{m}-{nl}-{'bias' if bias else 'nobias'}-l{L}{'-bi' if bi else ''}" for m, nl, bias, L, bi in CONFIGS]


def _setup(mode, nonlinearity, bias, num_layers, bidirectional, seed=0, steps=T, batch=B):
    """A float64 layer with weights large enough to make the cells non-trivial, and its trace."""
    if mode == "Leaky":  # time constants 1.5..6 steps: leak and candidate both matter in J_t
        layer = LeakyRNN(I, H, num_layers=num_layers, bidirectional=bidirectional, bias=bias, dtype="float64",
                         seed=seed, time_constants=(1.5, 6.0))
    else:
        layer = make_layer(mode, I, H, num_layers=num_layers, bidirectional=bidirectional,
                           nonlinearity=nonlinearity, bias=bias, seed=seed)
    rng = np.random.default_rng(seed + 1)
    # scale the default init up (uniform(+-1/sqrt(H)) is tame) so gates and saturation vary
    layer.load_state_dict({k: 2.0 * v for k, v in layer.state_dict().items()})
    D = 2 if bidirectional else 1
    x = rng.standard_normal((steps, batch, I))
    shape = (num_layers * D, batch, H)
    h0 = 0.5 * rng.standard_normal(shape)
    state = (h0, 0.5 * rng.standard_normal(shape)) if mode == "LSTM" else h0
    y, state_n, trace = layer.forward(x, state)
    return layer, x, state, trace


def _single(layer, lyr, direction):
    """A one-layer, unidirectional copy of (layer lyr, direction) of ``layer``: runs that cell alone."""
    sfx = f"_l{lyr}" + ("_reverse" if direction else "")
    params = {k.replace(sfx, "_l0"): v for k, v in layer.state_dict().items() if k.endswith(sfx)}
    in_size = params["weight_ih_l0"].shape[1]
    kwargs = dict(bias=layer.bias, dtype="float64")
    if layer.mode == "RNN":
        kwargs["nonlinearity"] = layer.nonlinearity
    if layer.mode == "Leaky":
        kwargs["time_constants"] = layer.time_constants
    cell = type(layer)(in_size, H, **kwargs)
    cell.load_state_dict(params)
    return cell


def _layer_input(trace, x, lyr):
    """The sequence layer ``lyr`` read, natural order: x, or the layer below's outputs."""
    if lyr == 0:
        return x
    return np.concatenate([trace.get("h", lyr - 1, d) for d in range(trace.num_directions)], axis=2)


def _state_at(trace, state0, lyr, direction, t, b):
    """s = h (or [h; c]) after the cell has seen natural position t; t = -1 means the initial state."""
    k = lyr * trace.num_directions + direction
    lstm = trace.mode == "LSTM"
    if t == -1:
        parts = [state0[0][k, b], state0[1][k, b]] if lstm else [state0[k, b]]
    else:
        parts = [trace.get("h", lyr, direction)[t, b]]
        if lstm:
            parts.append(trace.get("c", lyr, direction)[t, b])
    return np.concatenate(parts)


def _run_cell(cell, seq, s, mode):
    """Run a single-layer copy over seq (T', 1, I) from state s (S,); return the final state (S,)."""
    if mode == "LSTM":
        h, c = s[:H].reshape(1, 1, H), s[H:].reshape(1, 1, H)
        _, (h_n, c_n), _ = cell.forward(seq, (h.copy(), c.copy()))
        return np.concatenate([h_n[0, 0], c_n[0, 0]])
    _, h_n, _ = cell.forward(seq, s.reshape(1, 1, H).copy())
    return h_n[0, 0]


def _fd_jacobian(fn, s):
    """Central finite differences of fn: R^S -> R^S at s, shape (S, S)."""
    cols = []
    for j in range(s.size):
        e = np.zeros_like(s)
        e[j] = EPS
        cols.append((fn(s + e) - fn(s - e)) / (2 * EPS))
    return np.stack(cols, axis=1)


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def _chain(jac, direction, t_from, t_to):
    """d s_{t_to} / d s_{t_from} from step_jacobians' output, via the documented chaining rule."""
    steps = range(t_from + 1, t_to + 1) if direction == 0 else range(t_from - 1, t_to - 1, -1)
    prod = np.eye(jac.shape[1])
    for t in steps:  # each later-processed step multiplies on the left
        prod = jac[t] @ prod
    return prod


# ------------------------------------------------------------------------------------------------
# step_jacobians
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_step_jacobians_match_finite_differences(config):
    mode = config[0]
    layer, x, state0, trace = _setup(*config)
    D = trace.num_directions
    targets = {(trace.num_layers - 1, D - 1), (0, 0)}  # the top layer's last direction, and (0, 0)
    b = 1
    for lyr, direction in sorted(targets):
        cell = _single(layer, lyr, direction)
        seq = _layer_input(trace, x, lyr)
        jac = analysis.step_jacobians(trace, lyr, direction, b)
        S = 2 * H if mode == "LSTM" else H
        assert jac.shape == (T, S, S) and jac.dtype == np.float64
        assert S == analysis.state_size(trace)
        for t in range(T):
            prev_t = (t - 1 if direction == 0 else t + 1)
            if prev_t in (-1, T):
                prev_t = -1  # the first processed step reads the initial state
            s_prev = _state_at(trace, state0, lyr, direction, prev_t, b)
            x_t = seq[t : t + 1, b : b + 1]
            # the copy reproduces the recorded step
            np.testing.assert_allclose(_run_cell(cell, x_t, s_prev, mode),
                                       _state_at(trace, state0, lyr, direction, t, b), rtol=0, atol=1e-12)
            fd = _fd_jacobian(lambda s: _run_cell(cell, x_t, s, mode), s_prev)
            assert _rel(jac[t], fd) < 1e-6, (lyr, direction, t)


@pytest.mark.parametrize("mode,nonlinearity", [("RNN", "tanh"), ("RNN", "relu"), ("LSTM", "tanh"), ("GRU", "tanh")])
def test_jacobian_products_match_multi_step_finite_differences(mode, nonlinearity):
    """J_{t_to} ... J_{t_from+1} (in processing order) = d s_{t_to} / d s_{t_from} over several steps."""
    layer, x, state0, trace = _setup(mode, nonlinearity, True, 2, True, seed=3)
    b = 2
    for lyr in (0, 1):
        seq = _layer_input(trace, x, lyr)
        for direction in (0, 1):
            cell = _single(layer, lyr, direction)
            jac = analysis.step_jacobians(trace, lyr, direction, b)
            # (t_from, t_to) in natural time, t_from = -1 meaning the initial state; the chain
            # runs in processing order, so for direction 1 t_to < t_from
            spans = [(1, 4), (-1, T - 1)] if direction == 0 else [(4, 1), (-1, 0)]
            for t_from, t_to in spans:
                if direction == 0:
                    sub = seq[t_from + 1 : t_to + 1, b : b + 1]
                    chain = _chain(jac, 0, t_from, t_to)
                else:
                    start = T if t_from == -1 else t_from
                    sub = seq[t_to:start, b : b + 1][::-1].copy()  # processing order for the copy
                    chain = _chain(jac, 1, start, t_to)
                s_from = _state_at(trace, state0, lyr, direction, t_from, b)
                fd = _fd_jacobian(lambda s: _run_cell(cell, sub, s, mode), s_from)
                assert _rel(chain, fd) < 1e-6, (lyr, direction, t_from, t_to)


def test_step_jacobians_bad_arguments():
    _, _, _, trace = _setup("GRU", "tanh", True, 1, False)
    with pytest.raises(ValueError, match="layer"):
        analysis.step_jacobians(trace, layer=1)
    with pytest.raises(ValueError, match="direction"):
        analysis.step_jacobians(trace, direction=1)
    with pytest.raises(ValueError, match="batch"):
        analysis.step_jacobians(trace, b=B)
    with pytest.raises(ValueError, match="Trace"):
        analysis.step_jacobians({"h": 1})


# ------------------------------------------------------------------------------------------------
# jacobian_norms
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_jacobian_norms_products_run_back_in_processing_order(mode):
    layer, x, state0, trace = _setup(mode, "tanh", True, 2, True)
    out = analysis.jacobian_norms(trace, b=1)
    assert set(out) == {"norm", "product", "chain"}
    norm, product = out["norm"], out["product"]
    assert norm.shape == product.shape == (4, T)
    for lyr in range(2):
        for direction in range(2):
            k = lyr * 2 + direction
            jac = analysis.step_jacobians(trace, lyr, direction, b=1)
            np.testing.assert_allclose(norm[k], [np.linalg.norm(j, 2) for j in jac], rtol=1e-12)
            for t in range(T):
                after = norm[k, t + 1 :] if direction == 0 else norm[k, :t]
                np.testing.assert_allclose(product[k, t], np.prod(after), rtol=1e-12)
            last = T - 1 if direction == 0 else 0
            assert product[k, last] == 1.0
            # the bound it stands for: ||d s_last / d s_t|| <= product[k, t]
            for t in range(T):
                chain = _chain(jac, direction, t, last)
                assert np.linalg.norm(chain, 2) <= product[k, t] * (1 + 1e-12)


def test_leaky_jacobian_is_the_leak_plus_the_candidate_path():
    """J_t = diag(1 - a) + diag(a (1 - u_t^2)) W_hh; with W_hh = 0 only the leak is left, and it keeps
    the gradient alive however saturated the candidate is."""
    layer, x, h0, trace = _setup("Leaky", "tanh", True, 1, False)
    a = layer.rates()
    u = np.asarray(trace.get("u"), np.float64)[:, 1]
    w_hh = layer.parameters()["weight_hh_l0"]
    expected = np.diag(1 - a)[None] + (a * (1 - u * u))[:, :, None] * w_hh[None]
    np.testing.assert_allclose(analysis.step_jacobians(trace, 0, 0, 1), expected, rtol=1e-12, atol=1e-15)
    w_hh[...] = 0.0
    _, _, trace = layer.forward(x, h0)
    jac = analysis.step_jacobians(trace, 0, 0, 1)
    np.testing.assert_allclose(jac, np.broadcast_to(np.diag(1 - a), (T, H, H)), rtol=0, atol=0)
    norms = analysis.jacobian_norms(trace, b=1)
    np.testing.assert_allclose(norms["norm"][0], (1 - a).max(), rtol=1e-12)
    np.testing.assert_allclose(norms["product"][0, 0], (1 - a).max() ** (T - 1), rtol=1e-10)


def test_small_recurrent_weights_make_the_bound_vanish_geometrically():
    """The point of the view: a tanh RNN whose W_hh is small has ||J_t|| <= ||W_hh|| < 1, so the
    bound on ||d h_T / d h_t|| shrinks geometrically toward early t -- and the real gradient, which
    only enters at the last step here, shrinks with it (and stays under the bound)."""
    steps = 30
    layer = make_layer("RNN", I, 8, seed=0)
    params = layer.state_dict()
    params["weight_hh_l0"] *= 0.3
    layer.load_state_dict(params)
    w_norm = np.linalg.norm(params["weight_hh_l0"], 2)
    assert w_norm < 0.5
    x = np.random.default_rng(0).standard_normal((steps, 1, I))
    y, _, trace = layer.forward(x)
    out = analysis.jacobian_norms(trace)
    norm, product = out["norm"][0], out["product"][0]
    assert np.all(norm <= w_norm + 1e-12)
    # geometric: each step further back multiplies the bound by at most ||W_hh||
    assert np.all(product[:-1] <= product[1:] * w_norm + 1e-300)
    assert product[0] < w_norm ** (steps - 1) * (1 + 1e-9) < 1e-8
    # the loss reads only the last output: dL/dh_t decays toward early t and obeys the bound
    dy = np.zeros_like(y)
    dy[-1] = 1.0
    layer.backward(trace, dy)
    g = analysis.gradient_norms(trace)[0]
    assert np.all(g <= product * g[-1] * (1 + 1e-9))
    assert g[0] < 1e-8 * g[-1]
    assert np.all(np.diff(g) > 0)


# ------------------------------------------------------------------------------------------------
# gradient_norms
# ------------------------------------------------------------------------------------------------

def test_gradient_norms_match_the_recorded_dh():
    layer, x, state0, trace = _setup("LSTM", "tanh", True, 2, True)
    with pytest.raises(ValueError, match="backward"):
        analysis.gradient_norms(trace)
    with pytest.raises(ValueError, match="backward"):
        analysis.step_weight_grads(trace)
    dy = np.random.default_rng(5).standard_normal((T, B, 2 * H))
    layer.backward(trace, dy)
    g = analysis.gradient_norms(trace)
    assert g.shape == (4, T) and g.dtype == np.float64
    dh = trace["dh"]
    np.testing.assert_allclose(g, np.linalg.norm(dh.reshape(4, T, -1), axis=2), rtol=1e-12)
    np.testing.assert_allclose(g[3, 2], np.linalg.norm(trace.get("dh", 1, 1)[2]), rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# step_weight_grads
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("truncate", [None, 3], ids=["full", "trunc3"])
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_step_weight_grads_sum_to_backward(config, truncate):
    mode = config[0]
    steps = 8  # not a multiple of 3: a short last chunk
    layer, x, state0, trace = _setup(*config, steps=steps)
    D = trace.num_directions
    dy = np.random.default_rng(7).standard_normal((steps, B, D * H))
    grads = layer.backward(trace, dy, dstate=None, truncate=truncate)
    G = {"RNN": 1, "LSTM": 4, "GRU": 3, "Leaky": 1}[mode]
    for lyr in range(trace.num_layers):
        for direction in range(D):
            sfx = f"_l{lyr}" + ("_reverse" if direction else "")
            per_step = analysis.step_weight_grads(trace, lyr, direction)
            assert per_step.shape == (steps, G * H, H) and per_step.dtype == np.float64
            np.testing.assert_allclose(per_step.sum(axis=0), grads["weight_hh" + sfx], rtol=1e-10, atol=1e-13)
            # the first processed step reads h0 = the initial state: its contribution is not zero
            first = 0 if direction == 0 else steps - 1
            assert np.abs(per_step[first]).max() > 0
            # the norms the lab plots, by Gram matrices: equal to the stack's own (B > 1: cross terms)
            np.testing.assert_allclose(analysis.step_weight_grad_norms(trace, lyr, direction),
                                       np.linalg.norm(per_step, axis=(1, 2)), rtol=1e-10, atol=1e-15)


def test_step_weight_grads_lstm_follow_the_truncation_and_dc_n_of_the_last_backward():
    """For LSTM the truncation rule and the final cell-state gradient are rebuilt here from what the
    trace records of its last backward(): a second backward with other settings moves them along."""
    layer, x, state0, trace = _setup("LSTM", "tanh", True, 1, True, steps=8)
    rng = np.random.default_rng(11)
    dy = rng.standard_normal((8, B, 2 * H))
    dc_n = rng.standard_normal((2, B, H))
    names = ["weight_hh_l0", "weight_hh_l0_reverse"]
    runs = []
    for settings in ({"dstate": (None, dc_n), "truncate": 3}, {"dstate": None, "truncate": None}):
        runs.append(layer.backward(trace, dy, **settings))
        for direction, name in enumerate(names):
            per_step = analysis.step_weight_grads(trace, 0, direction)
            np.testing.assert_allclose(per_step.sum(axis=0), runs[-1][name], rtol=1e-10, atol=1e-13)
    assert not np.allclose(runs[0][names[0]], runs[1][names[0]], rtol=1e-6)  # the settings matter


def test_float32_traces_are_cast_up():
    layer = make_layer("GRU", I, H, dtype="float32", seed=0)
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    y, _, trace = layer.forward(x)
    grads = layer.backward(trace, np.ones_like(y))
    assert analysis.step_jacobians(trace).dtype == np.float64
    per_step = analysis.step_weight_grads(trace)
    assert per_step.dtype == np.float64
    np.testing.assert_allclose(per_step.sum(axis=0), grads["weight_hh_l0"], rtol=1e-4, atol=1e-6)


def test_jacobian_chain_is_the_norm_of_the_actual_product():
    """``chain`` is ||d s_last / d s_t||: the exact curve that ``product`` only bounds."""
    for bidirectional in (False, True):
        layer, x, state0, trace = _setup("GRU", "tanh", True, 1, bidirectional, steps=6)
        out = analysis.jacobian_norms(trace)
        for direction in range(2 if bidirectional else 1):
            jac = analysis.step_jacobians(trace, 0, direction)
            for t in range(6):
                later = range(t + 1, 6) if direction == 0 else range(t - 1, -1, -1)
                acc = np.eye(jac.shape[1])
                for s in later:  # d s_last / d s_t = J_last @ ... @ J_(next after t)
                    acc = jac[s] @ acc
                expect = np.linalg.norm(acc, 2)
                assert out["chain"][direction, t] == pytest.approx(expect, rel=1e-10)
                assert out["chain"][direction, t] <= out["product"][direction, t] * (1 + 1e-10)


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU", "Leaky"])
def test_jacobian_norms_in_chunks_and_by_arpack_match_the_whole_products(mode, monkeypatch):
    """Built two steps at a time (a long sequence's memory bound) over 7 steps, with ARPACK's
    largest singular value for every size (large states' path): the same norms and chains as the
    full SVDs of all the Jacobians multiplied out."""
    steps = 7
    layer, x, state0, trace = _setup(mode, "tanh", True, 2, mode != "Leaky", steps=steps)
    S = analysis.state_size(trace)
    monkeypatch.setattr(analysis, "JACOBIAN_CHUNK_BYTES", 2 * 8 * S * S)
    monkeypatch.setattr(analysis, "SVDS_FROM", 2)
    out = analysis.jacobian_norms(trace, b=2)
    D = trace.num_directions
    for lyr in range(2):
        for direction in range(D):
            k = lyr * D + direction
            jac = analysis.step_jacobians(trace, lyr, direction, b=2)
            np.testing.assert_allclose(out["norm"][k], [np.linalg.norm(j, 2) for j in jac], rtol=1e-10)
            for t in range(steps):
                later = range(t + 1, steps) if direction == 0 else range(t - 1, -1, -1)
                acc = np.eye(S)
                for u in later:
                    acc = jac[u] @ acc
                assert out["chain"][k, t] == pytest.approx(np.linalg.norm(acc, 2), rel=1e-10)


def test_arpacks_norm_is_the_same_bits_on_every_call():
    """svds started from a random vector: `bptt --json` of a 128-unit state differed in its last
    digits between two identical calls (27.973088505950848, ...850, ...845)."""
    a = np.random.default_rng(0).standard_normal((analysis.SVDS_FROM + 72,) * 2)
    norms = {analysis._spectral_norm(a) for _ in range(5)}
    assert len(norms) == 1 and norms.pop() == pytest.approx(np.linalg.norm(a, 2), rel=1e-12)


def test_jacobian_norms_report_progress_over_every_step_of_every_stream(monkeypatch):
    """rnnlab bptt's progress bar: the counts add up to L * D * T, a chunk at a time."""
    layer, x, state0, trace = _setup("LSTM", "tanh", True, 2, True, steps=7)
    monkeypatch.setattr(analysis, "JACOBIAN_CHUNK_BYTES", 3 * 8 * analysis.state_size(trace) ** 2)
    done = []
    analysis.jacobian_norms(trace, progress=done.append)
    assert done == [3, 3, 1] * 4


# ------------------------------------------------------------------------------------------------
# the linear recurrences: MinGRU, MinLSTM, LRU (diagonal step Jacobians, no W_hh)
# ------------------------------------------------------------------------------------------------

# (mode, bias, num_layers, bidirectional)
LINEAR_CONFIGS = [("MinGRU", True, 2, True), ("MinGRU", False, 1, False), ("MinLSTM", True, 2, True),
                  ("MinLSTM", False, 1, True), ("LRU", True, 2, False)]
LINEAR_IDS = [f"{m}-{'bias' if bias else 'nobias'}-l{L}{'-bi' if bi else ''}" for m, bias, L, bi in LINEAR_CONFIGS]


def _linear_setup(mode, bias, num_layers, bidirectional, seed=0, steps=T):
    """A float64 linear-recurrence layer, a random initial state (complex for the LRU) and its trace."""
    cls = getattr(rnnlab, mode)
    kwargs = dict(num_layers=num_layers, dtype="float64", seed=seed)
    if mode != "LRU":
        kwargs.update(bias=bias, bidirectional=bidirectional)
    layer = cls(I, H, **kwargs)
    if mode != "LRU":  # larger gate pre-activations, so a_t varies from step to step
        layer.load_state_dict({k: 2.0 * v for k, v in layer.state_dict().items()})
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((steps, B, I))
    h0 = 0.5 * rng.standard_normal((num_layers * layer.num_directions, B, H))
    if mode == "LRU":
        h0 = h0 + 0.5j * rng.standard_normal(h0.shape)
    _, _, trace = layer.forward(x, h0)
    return layer, h0, trace


def _linear_cell(layer, lyr, direction):
    """A one-layer, unidirectional copy of (layer lyr, direction) of a linear-recurrence layer."""
    sfx = f"_l{lyr}" + ("_reverse" if direction else "")
    params = {k[: -len(sfx)] + "_l0": v for k, v in layer.state_dict().items() if k.endswith(sfx)}
    if layer.mode == "LRU":
        cell = rnnlab.LRU(params["B_re_l0"].shape[1], H, dtype="float64")
    else:
        cell = type(layer)(params["weight_ih_l0"].shape[1], H, bias=layer.bias, dtype="float64")
    cell.load_state_dict(params)
    return cell


def _real_state(trace, h0, lyr, direction, t, b):
    """s after natural position t (t = -1: the initial state), [Re h; Im h] for the LRU."""
    k = lyr * trace.num_directions + direction
    if trace.mode == "LRU":
        h = h0[k, b] if t == -1 else trace.get("h", lyr)[t, b] + 1j * trace.get("h_im", lyr)[t, b]
        return np.concatenate([h.real, h.imag])
    return h0[k, b].copy() if t == -1 else trace.get("h", lyr, direction)[t, b].copy()


def _run_linear(cell, seq, s):
    """Run a one-layer copy over seq (T', 1, I) from the real state s; return the final real state."""
    if cell.mode == "LRU":
        _, h_n, _ = cell.forward(seq, (s[:H] + 1j * s[H:]).reshape(1, 1, H))
        return np.concatenate([h_n[0, 0].real, h_n[0, 0].imag])
    _, h_n, _ = cell.forward(seq, s.reshape(1, 1, H).copy())
    return h_n[0, 0]


def _natural_input(trace, lyr, direction):
    seq = trace._inputs[(lyr, direction)]  # processing order
    return seq[::-1] if direction else seq


@pytest.mark.parametrize("config", LINEAR_CONFIGS, ids=LINEAR_IDS)
def test_linear_cells_step_jacobians_match_finite_differences(config):
    mode = config[0]
    layer, h0, trace = _linear_setup(*config)
    D, b = trace.num_directions, 1
    S = 2 * H if mode == "LRU" else H
    assert analysis.state_size(trace) == S
    for lyr in range(trace.num_layers):
        for direction in range(D):
            cell = _linear_cell(layer, lyr, direction)
            seq = _natural_input(trace, lyr, direction)
            jac = analysis.step_jacobians(trace, lyr, direction, b)
            assert jac.shape == (T, S, S) and jac.dtype == np.float64
            for t in range(T):
                prev_t = t - 1 if direction == 0 else t + 1
                prev_t = -1 if prev_t in (-1, T) else prev_t
                s_prev = _real_state(trace, h0, lyr, direction, prev_t, b)
                x_t = seq[t : t + 1, b : b + 1]
                np.testing.assert_allclose(_run_linear(cell, x_t, s_prev),
                                           _real_state(trace, h0, lyr, direction, t, b), rtol=0, atol=1e-12)
                fd = _fd_jacobian(lambda s: _run_linear(cell, x_t, s), s_prev)
                assert _rel(jac[t], fd) < 1e-6, (lyr, direction, t)


@pytest.mark.parametrize("mode", ["MinGRU", "LRU"])
def test_linear_cells_chained_jacobians_match_multi_step_finite_differences(mode):
    layer, h0, trace = _linear_setup(mode, True, 1, mode != "LRU", seed=3)
    b = 2
    for direction in range(trace.num_directions):
        cell = _linear_cell(layer, 0, direction)
        seq = _natural_input(trace, 0, direction)
        jac = analysis.step_jacobians(trace, 0, direction, b)
        if direction == 0:
            t_from, t_to, sub = 1, 4, seq[2:5, b : b + 1]
        else:
            t_from, t_to, sub = 4, 1, seq[1:4, b : b + 1][::-1].copy()
        chain = _chain(jac, direction, t_from, t_to)
        s_from = _real_state(trace, h0, 0, direction, t_from, b)
        fd = _fd_jacobian(lambda s: _run_linear(cell, sub, s), s_from)
        assert _rel(chain, fd) < 1e-6


@pytest.mark.parametrize("config", LINEAR_CONFIGS[::2], ids=LINEAR_IDS[::2])
def test_linear_cells_jacobian_norms_equal_the_generic_computation(config):
    """The diagonal shortcut gives what the SVD of the full step Jacobians and their products give."""
    layer, h0, trace = _linear_setup(*config)
    out = analysis.jacobian_norms(trace, b=1)
    D = trace.num_directions
    for lyr in range(trace.num_layers):
        for direction in range(D):
            k = lyr * D + direction
            jac = analysis.step_jacobians(trace, lyr, direction, b=1)
            np.testing.assert_allclose(out["norm"][k], [np.linalg.norm(j, 2) for j in jac], rtol=1e-12)
            last = T - 1 if direction == 0 else 0
            for t in range(T):
                expect = np.linalg.norm(_chain(jac, direction, t, last), 2)
                assert out["chain"][k, t] == pytest.approx(expect, rel=1e-10)
                assert out["chain"][k, t] <= out["product"][k, t] * (1 + 1e-12)


def test_step_coefficients_are_the_gates_or_lambda():
    layer, _, trace = _linear_setup("MinGRU", True, 1, True)
    for direction in range(2):
        a = analysis.step_coefficients(trace, 0, direction, b=1)
        np.testing.assert_allclose(a, 1.0 - trace.get("z", 0, direction)[:, 1], rtol=1e-15)
        assert np.all((a > 0) & (a < 1)) and np.ptp(a, axis=0).min() > 0  # set by each input
    _, _, trace = _linear_setup("MinLSTM", True, 1, False)
    np.testing.assert_allclose(analysis.step_coefficients(trace, b=2), trace.get("f_norm")[:, 2], rtol=1e-15)
    layer, _, trace = _linear_setup("LRU", True, 2, False)
    lam = layer.eigenvalues()
    for lyr in range(2):
        a = analysis.step_coefficients(trace, lyr)
        assert a.dtype == np.complex128 and a.shape == (T, H)
        np.testing.assert_allclose(a, np.broadcast_to(lam[lyr], (T, H)), rtol=1e-15)  # the same at every step
        assert np.all(np.abs(a) < 1)
    _, _, _, gru_trace = _setup("GRU", "tanh", True, 1, False)
    assert analysis.has_recurrent_weights(gru_trace)
    with pytest.raises(ValueError, match="not a linear recurrence"):
        analysis.step_coefficients(gru_trace)


@pytest.mark.parametrize("mode", ["MinGRU", "MinLSTM", "LRU"])
def test_linear_cells_have_gradient_norms_but_no_per_step_weight_grads(mode):
    layer, h0, trace = _linear_setup(mode, True, 1, False)
    dy = np.random.default_rng(2).standard_normal((T, B, layer.output_size))
    layer.backward(trace, dy)
    g = analysis.gradient_norms(trace)
    assert g.shape == (1, T)
    if mode == "LRU":  # the norm of the complex gradient dL/dRe h + i dL/dIm h
        expect = np.sqrt((trace["dh_re"] ** 2 + trace["dh_im"] ** 2).sum(axis=(2, 3)))
    else:
        expect = np.linalg.norm(trace["dh"].reshape(1, T, -1), axis=2)
    np.testing.assert_allclose(g, expect, rtol=1e-12)
    assert not analysis.has_recurrent_weights(trace)
    with pytest.raises(ValueError, match="no recurrent weights W_hh"):
        analysis.step_weight_grads(trace)


# ------------------------------------------------------------------------------------------------
# self-attention: no recurrence, so the recurrent analyses refuse; gradient norms and the softmax
# explanation work
# ------------------------------------------------------------------------------------------------

def _attention_setup(causal=True, lengths=None, num_layers=2):
    from rnnlab.layers.selfattention import SelfAttentionModel

    model = SelfAttentionModel(I, 2, d_model=8, num_heads=2, num_layers=num_layers, d_ff=12, causal=causal,
                               max_len=T, dtype="float64", seed=3)
    x = np.random.default_rng(4).standard_normal((T, B, I))
    out, _, trace = model.forward(x, lengths=lengths)
    return model, out, trace


def test_attention_traces_refuse_the_recurrent_analyses_by_name():
    from rnnlab.errors import UserError
    from rnnlab.explain import explain_step

    model, out, trace = _attention_setup()
    model.backward(trace, np.ones_like(out))
    assert not analysis.is_recurrent(trace) and not analysis.has_recurrent_weights(trace)
    refusals = [
        (lambda: analysis.step_jacobians(trace), "step Jacobian"),
        (lambda: analysis.jacobian_norms(trace), "step Jacobian norm"),
        (lambda: analysis.step_coefficients(trace), "recurrence coefficient"),
        (lambda: analysis.step_weight_grads(trace), "per-step dW_hh"),
        (lambda: analysis.state_size(trace), "state size"),
        (lambda: explain_step(trace, 0, 0), "step equation"),
    ]
    for call, what in refusals:
        with pytest.raises(analysis.NotRecurrentError, match=f"{what}.*no meaning for self-attention") as info:
            call()
        assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)
        assert "\n" not in str(info.value)
    # the recurrent cells are unaffected
    *_, trace_lstm = _setup("LSTM", "tanh", True, 1, False)
    assert analysis.is_recurrent(trace_lstm)


def test_an_echo_state_networks_trace_is_recurrent_and_says_why_the_rest_does_not_apply():
    """Every analysis said "unknown recurrent mode 'ESN' in trace", is_recurrent too, though the Trace
    docstring lists the mode."""
    from rnnlab import explain
    _, trace = rnnlab.EchoStateNetwork(2, 10, seed=0).run(np.zeros((5, 1, 2)))
    assert analysis.is_recurrent(trace) and not analysis.has_recurrent_weights(trace)
    assert analysis.state_size(trace) == 10
    for call in (analysis.gradient_norms, analysis.step_jacobians, lambda t: explain.explain_step(t, 0, 0)):
        with pytest.raises(ValueError, match=r"^an echo state network's trace records only its reservoir states h: "
                                             r".*no backward pass, no dL/dh_t"):
            call(trace)


def test_attention_gradient_norms_are_the_norms_of_each_blocks_dh():
    model, out, trace = _attention_setup()
    with pytest.raises(ValueError, match="no gradients yet"):
        analysis.gradient_norms(trace)
    d_out = np.random.default_rng(5).standard_normal(out.shape)
    model.backward(trace, d_out)
    g = analysis.gradient_norms(trace)
    assert g.shape == (2, T)  # one row per block
    for k in range(2):
        np.testing.assert_allclose(g[k], np.linalg.norm(trace.get("dh", k).reshape(T, -1), axis=1), rtol=1e-12)
    # the top block's dh is the readout's gradient: dL/dh = d_out @ W_out
    top = d_out @ model.parameters()["readout.weight"]
    np.testing.assert_allclose(trace.get("dh", 1), top, rtol=1e-10)


@pytest.mark.parametrize("causal", [True, False])
def test_explain_attention_reproduces_the_recorded_weights_from_q_and_k(causal):
    from rnnlab.explain import explain_attention

    lengths = np.array([T, T - 2, 3])
    _, _, trace = _attention_setup(causal=causal, lengths=lengths)
    for b, t, layer, head in [(0, T - 1, 1, 1), (1, 2, 0, 0), (1, T - 1, 0, 1), (2, 4, 1, 0)]:
        step = explain_attention(trace, t, layer, head, b=b, top=3)
        weights = trace.attention(layer, b, head)[t]
        visible = min(t + 1, lengths[b]) if causal else lengths[b]
        assert step.keys == tuple(range(visible))  # never the future (causal) nor padding
        np.testing.assert_allclose(weights[visible:], 0.0)
        assert len(step.top) == min(3, visible)
        assert [w.weight for w in step.top] == sorted(weights[:visible], reverse=True)[:len(step.top)]
        for w in step.top:  # a_tj = exp(s_tj - m) / Z, with s_tj recomputed from the recorded q and k
            assert w.weight == pytest.approx(np.exp(w.score - step.shift) / step.normaliser, rel=1e-10)
            q, k = trace.get("q", layer)[t, b, head], trace.get("k", layer)[w.key, b, head]
            assert w.score == pytest.approx(q @ k / np.sqrt(4), rel=1e-12)
        lines = step.lines(labels=[f"x{j}" for j in range(T)])
        assert lines[0] == "s_tj = q_t·k_j/√4,  a_tj = exp(s_tj − m)/Z"
        best = step.top[0]
        assert lines[2].startswith(f"a_t,{best.key + 1} [x{best.key}] = exp(") and "\n" not in "".join(lines)


def test_explain_attention_bad_arguments():
    from rnnlab.explain import explain_attention

    _, _, trace = _attention_setup()
    for kwargs, name in [({"t": T}, "t"), ({"t": 0, "layer": 2}, "layer"), ({"t": 0, "head": 2}, "head"),
                         ({"t": 0, "b": B}, "b"), ({"t": 0, "top": 0}, "top")]:
        with pytest.raises(ValueError, match=f"^{name} "):
            explain_attention(trace, **kwargs)
    *_, gru_trace = _setup("GRU", "tanh", True, 1, False)
    with pytest.raises(ValueError, match="needs a self-attention trace"):
        explain_attention(gru_trace, 0)
