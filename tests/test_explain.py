"""rnnlab.explain: one step's equations for one unit, with the numbers.

Every equation's value must be the trace's own record, the formula applied (here, independently,
in plain Python) to the terms must reproduce it, and the terms themselves are rebuilt from the
state_dict, the natural-order input and the natural-order states (h0 at the first processed step,
t+1 as the previous state of direction 1), so the direction and stacking conventions are checked
too, not just the algebra.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import rnnlab
from rnnlab.explain import Equation, Term, explain_step

T, B, I, H = 5, 2, 3, 4

# (mode, nonlinearity, bias, num_layers, bidirectional)
CONFIGS = [
    ("RNN", "tanh", True, 1, False),
    ("RNN", "relu", True, 2, True),
    ("RNN", "relu", False, 1, False),
    ("LSTM", "tanh", True, 1, False),
    ("LSTM", "tanh", True, 2, True),
    ("LSTM", "tanh", False, 1, True),
    ("GRU", "tanh", True, 1, False),
    ("GRU", "tanh", True, 2, True),
    ("GRU", "tanh", False, 2, False),
]
IDS = [f"{m}-{nl}-{'bias' if bias else 'nobias'}-l{L}{'-bi' if bi else ''}" for m, nl, bias, L, bi in CONFIGS]
TOL = {"float32": 1e-5, "float64": 1e-12}
SYMBOLS = {"RNN": ["h_t"], "LSTM": ["i_t", "f_t", "g_t", "o_t", "c_t", "h_t"], "GRU": ["r_t", "z_t", "n_t", "h_t"]}
GATE_ROWS = {"RNN": {"h_t": 0}, "LSTM": {"i_t": 0, "f_t": 1, "g_t": 2, "o_t": 3}, "GRU": {"r_t": 0, "z_t": 1, "n_t": 2}}


def _sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


def _make(mode, nonlinearity, bias, num_layers, bidirectional, dtype, seed=0):
    kwargs = dict(num_layers=num_layers, bidirectional=bidirectional, bias=bias, dtype=dtype, seed=seed)
    if mode == "RNN":
        kwargs["nonlinearity"] = nonlinearity
    layer = {"RNN": rnnlab.RNN, "LSTM": rnnlab.LSTM, "GRU": rnnlab.GRU}[mode](I, H, **kwargs)
    # scale the tame default init up so gates vary and relu units are both on and off
    layer.load_state_dict({k: 2.0 * v for k, v in layer.state_dict().items()})
    rng = np.random.default_rng(seed + 1)
    D = 2 if bidirectional else 1
    x = rng.standard_normal((T, B, I)).astype(dtype)
    shape = (num_layers * D, B, H)
    h0 = (0.5 * rng.standard_normal(shape)).astype(dtype)
    state = (h0, (0.5 * rng.standard_normal(shape)).astype(dtype)) if mode == "LSTM" else h0
    _, _, trace = layer.forward(x, state)
    return layer, x, state, trace


def _close(actual, expected, scale, tol):
    return abs(actual - expected) <= tol * max(scale, 1e-30)


def _recompute(mode, nonlinearity, eq: Equation) -> float:
    """The formula applied to the term values, written out by hand per equation."""
    v = {term.name: term.value for term in eq.terms}
    hp = next((name for name in v if name.startswith("h_{")), None)
    if eq.symbol in GATE_ROWS[mode] and eq.symbol != "n_t":
        pre = sum(v.values())
        if eq.formula.startswith("σ"):
            return _sigmoid(pre)
        return max(pre, 0.0) if eq.formula.startswith("relu") else math.tanh(pre)
    if eq.symbol == "n_t":
        vh = next(val for name, val in v.items() if name.startswith("V_n·"))
        return math.tanh(v["W_n·x_t"] + v.get("b_in", 0.0) + v["r_t"] * (vh + v.get("b_hn", 0.0)))
    if mode == "LSTM" and eq.symbol == "c_t":
        cp = next(val for name, val in v.items() if name.startswith("c_{"))
        return v["f_t"] * cp + v["i_t"] * v["g_t"]
    if mode == "LSTM":  # h_t
        return v["o_t"] * math.tanh(v["c_t"])
    return (1.0 - v["z_t"]) * v["n_t"] + v["z_t"] * v[hp]  # GRU h_t


def _layer_input(trace, x, lyr):
    if lyr == 0:
        return np.asarray(x, np.float64)
    return np.concatenate([trace.get("h", lyr - 1, d) for d in range(trace.num_directions)], axis=2).astype(np.float64)


def _previous(trace, state0, name, lyr, direction, t, b):
    """The state the cell read at natural t: t-1 (direction 0) or t+1 (direction 1), else the initial one."""
    k = lyr * trace.num_directions + direction
    u = t + 1 if direction else t - 1
    if 0 <= u < trace.steps:
        return np.asarray(trace.get(name, lyr, direction)[u, b], np.float64)
    init = state0 if trace.mode != "LSTM" else state0[0 if name == "h" else 1]
    return np.asarray(init[k, b], np.float64)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_equations_match_trace_and_recompute(config, dtype):
    mode, nonlinearity, bias, num_layers, bidirectional = config
    layer, x, state0, trace = _make(*config, dtype)
    params = {k: np.asarray(v, np.float64) for k, v in layer.state_dict().items()}
    tol = TOL[dtype]
    for lyr in range(num_layers):
        inp = _layer_input(trace, x, lyr)
        for direction in range(trace.num_directions):
            sfx = f"_l{lyr}" + ("_reverse" if direction else "")
            prev = "{t+1}" if direction else "{t-1}"
            for t, unit, b in [(0, 0, 0), (T - 1, H - 1, 1), (2, 1, 1)]:  # both ends: h0 for one direction
                eqs = explain_step(trace, t, unit, layer=lyr, direction=direction, b=b)
                assert [eq.symbol for eq in eqs] == SYMBOLS[mode]
                by_symbol = {eq.symbol: eq for eq in eqs}
                h_prev = _previous(trace, state0, "h", lyr, direction, t, b)
                for eq in eqs:
                    assert isinstance(eq.value, float) and all(isinstance(term, Term) for term in eq.terms)
                    # the value is the trace's record, exactly
                    record = {"c_t": "c", "h_t": "h"}.get(eq.symbol, eq.symbol[0])
                    assert eq.value == float(trace.get(record, lyr, direction)[t, b, unit]), eq.symbol
                    # the formula applied to the terms reproduces it
                    scale = max([abs(eq.value), 1.0] + [abs(term.value) for term in eq.terms])
                    recomputed = _recompute(mode, nonlinearity, eq)
                    assert _close(recomputed, eq.value, scale, tol), (eq.text(8), recomputed)
                    # every term name appears in the formula; the previous state is written with prev
                    for term in eq.terms:
                        assert term.name in eq.formula
                    assert "{t+1}" not in eq.formula if not direction else "{t-1}" not in eq.formula
                    if not bias:
                        assert not any(term.name.startswith("b") for term in eq.terms)
                    # the terms are what the weights, the input and the previous state give
                    if eq.symbol in GATE_ROWS[mode]:
                        k = GATE_ROWS[mode][eq.symbol]
                        row = k * H + unit
                        v = {term.name: term.value for term in eq.terms}
                        sub = "" if mode == "RNN" else "_" + eq.symbol[0]
                        wx = params["weight_ih" + sfx][row] @ inp[t, b]
                        vh = params["weight_hh" + sfx][row] @ h_prev
                        assert _close(v[f"W{sub}·x_t"], wx, abs(wx) + 1.0, 1e-12)
                        assert _close(v[f"V{sub}·h_{prev}"], vh, abs(vh) + 1.0, 1e-12)
                        assert f"W{sub} = weight_ih{sfx}" in eq.params
                        assert f"V{sub} = weight_hh{sfx}" in eq.params
                        if mode != "RNN":
                            assert f"[{k * H}:{(k + 1) * H}]" in eq.params
                        if bias:
                            b_ih, b_hh = params["bias_ih" + sfx][row], params["bias_hh" + sfx][row]
                            if eq.symbol == "n_t":
                                assert v["b_in"] == pytest.approx(b_ih, abs=1e-15)
                                assert v["b_hn"] == pytest.approx(b_hh, abs=1e-15)
                                hn = float(trace.get("hn", lyr, direction)[t, b, unit])
                                assert _close(v[f"V_n·h_{prev}"] + v["b_hn"], hn, abs(hn) + 1.0, tol)
                            else:
                                assert v[f"b{sub}"] == pytest.approx(b_ih + b_hh, abs=1e-15)
                            assert "bias_hh" + sfx in eq.params
                        else:
                            assert "bias=False" in eq.params
                        if lyr > 0:
                            assert "x_t = layer 0's output" in eq.params
                # the state equations read the gate equations' values and the previous state
                hp = Term(f"h_{prev}", float(h_prev[unit]))
                if mode == "LSTM":
                    c_prev = _previous(trace, state0, "c", lyr, direction, t, b)[unit]
                    c, i, f, g, o = (by_symbol[s] for s in ("c_t", "i_t", "f_t", "g_t", "o_t"))
                    assert c.terms == (Term("f_t", f.value), Term(f"c_{prev}", float(c_prev)),
                                       Term("i_t", i.value), Term("g_t", g.value))
                    assert by_symbol["h_t"].terms == (Term("o_t", o.value), Term("c_t", c.value))
                elif mode == "GRU":
                    z, n = by_symbol["z_t"], by_symbol["n_t"]
                    assert by_symbol["h_t"].terms == (Term("z_t", z.value), Term("n_t", n.value), hp)
                    assert dict((term.name, term.value) for term in n.terms)["r_t"] == by_symbol["r_t"].value


def test_relu_units_both_on_and_off():
    """The relu config above exercises both sides of the kink (else the relu check is vacuous)."""
    layer, x, state0, trace = _make("RNN", "relu", True, 1, False, "float64")
    values = [explain_step(trace, t, u, b=b)[0] for t in range(T) for u in range(H) for b in range(B)]
    assert any(eq.value == 0.0 for eq in values) and any(eq.value > 0.0 for eq in values)
    off = next(eq for eq in values if eq.value == 0.0)
    assert off.formula == "relu(W·x_t + V·h_{t-1} + b)"
    assert sum(term.value for term in off.terms) <= 0.0
    assert off.text().endswith("= 0.000")


def test_text_lstm_format():
    _, _, _, trace = _make("LSTM", "tanh", True, 1, False, "float32")
    eqs = explain_step(trace, 1, 2)
    for eq in eqs:
        for digits in (3, 5):
            line = eq.text(digits)
            assert line.startswith(f"{eq.symbol} = {eq.formula} = ")
            assert line.endswith(f"{eq.value:.{digits}f}".replace("-0." + "0" * digits, "0." + "0" * digits))
            for term in eq.terms:
                assert f"{abs(term.value):.{digits}f}" in line
    i = eqs[0]
    assert i.formula == "σ(W_i·x_t + V_i·h_{t-1} + b_i)"
    assert i.params == "W_i = weight_ih_l0[0:4], V_i = weight_hh_l0[0:4], b_i = bias_ih_l0[0:4] + bias_hh_l0[0:4]"
    pre = sum(term.value for term in i.terms)
    nums = " + ".join(f"{term.value:.3f}" for term in i.terms)
    assert i.text() == f"i_t = σ(W_i·x_t + V_i·h_{{t-1}} + b_i) = σ({nums}) = σ({pre:.3f}) = {i.value:.3f}"
    c = eqs[4]
    assert c.formula == "f_t·c_{t-1} + i_t·g_t"
    assert eqs[5].formula == "o_t·tanh(c_t)"
    assert eqs[5].text().startswith(f"h_t = o_t·tanh(c_t) = {eqs[3].value:.3f}·tanh(")
    assert [eq.params for eq in eqs[4:]] == ["", ""]
    with pytest.raises(ValueError, match="digits"):
        i.text(-1)


def test_text_folds_a_negative_terms_sign_into_the_operator_before_it():
    """σ(0.068 + 0.000 − 0.156), not σ(0.068 + 0.000 + -0.156); a negative factor keeps parentheses."""
    terms = (Term("a", 0.068), Term("b", 0.0), Term("c", -0.156))
    assert Equation("i_t", "σ(a + b + c)", terms, 0.478, "").text() == \
        "i_t = σ(a + b + c) = σ(0.068 + 0.000 − 0.156) = σ(-0.088) = 0.478"
    assert Equation("d", "a − c", terms, 0.224, "").text() == "d = a − c = 0.068 + 0.156 = 0.224"
    assert Equation("e", "a·c + c", terms, -0.167, "").text() == "e = a·c + c = 0.068·(-0.156) − 0.156 = -0.167"


def test_text_writes_a_huge_number_in_e_notation():
    """A typed 1e30 gave σ(48423268629591244099005972480.000 − 0.006 − 0.147)."""
    terms = (Term("a", 4.8423e28), Term("b", -0.006))
    assert Equation("f_t", "σ(a + b)", terms, 1.0, "").text() == \
        "f_t = σ(a + b) = σ(4.842e+28 − 0.006) = σ(4.842e+28) = 1.000"


def test_text_gru_and_reverse_direction():
    _, _, _, trace = _make("GRU", "tanh", True, 1, True, "float64")
    r, z, n, h = explain_step(trace, 0, 0, direction=1)
    assert n.formula == "tanh(W_n·x_t + b_in + r_t·(V_n·h_{t+1} + b_hn))"
    assert n.params == ("W_n = weight_ih_l0_reverse[8:12], V_n = weight_hh_l0_reverse[8:12], "
                        "b_in = bias_ih_l0_reverse[8:12], b_hn = bias_hh_l0_reverse[8:12]")
    assert h.formula == "(1 − z_t)·n_t + z_t·h_{t+1}"
    assert f"(1 − {z.value:.3f})·" in h.text()
    v = {term.name: term.value for term in n.terms}
    pre = v["W_n·x_t"] + v["b_in"] + v["r_t"] * (v["V_n·h_{t+1}"] + v["b_hn"])
    assert f"= tanh({pre:.3f}) = {n.value:.3f}" in n.text().replace("tanh(-0.000)", "tanh(0.000)")


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_one_units_step_converts_its_rows_of_the_weights_not_the_whole_matrices(mode):
    """The lab explains the cursor step on every key: converting every weight to float64 each time
    took 1.7 s a key at H = 8192. Memory allocated at the peak stays under one weight matrix."""
    import tracemalloc

    hidden = 512
    layer = {"LSTM": rnnlab.LSTM, "GRU": rnnlab.GRU}[mode](I, hidden, seed=0)
    _, _, trace = layer.forward(np.ones((2, 1, I), np.float32))
    weight_bytes = trace._params["weight_hh_l0"].nbytes  # float32: the float64 copy is twice as large
    tracemalloc.start()
    try:
        equations = explain_step(trace, 1, 7)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [e.symbol for e in equations] == SYMBOLS[mode]
    assert peak < weight_bytes / 4, peak


def test_bias_false_formulas():
    _, _, _, trace = _make("GRU", "tanh", False, 1, False, "float32")
    r, z, n, h = explain_step(trace, 3, 1)
    assert r.formula == "σ(W_r·x_t + V_r·h_{t-1})"
    assert n.formula == "tanh(W_n·x_t + r_t·V_n·h_{t-1})"
    assert all("no bias (bias=False)" in eq.params for eq in (r, z, n))
    _, _, _, trace = _make("RNN", "tanh", False, 1, False, "float32")
    (eq,) = explain_step(trace, 0, 0)
    assert eq.formula == "tanh(W·x_t + V·h_{t-1})"
    assert eq.params == "W = weight_ih_l0, V = weight_hh_l0; no bias (bias=False)"


def test_first_step_reads_initial_state():
    layer, x, state0, trace = _make("LSTM", "tanh", True, 1, True, "float64")
    for direction, t in ((0, 0), (1, T - 1)):
        eqs = explain_step(trace, t, 3, direction=direction, b=1)
        c = eqs[4]
        assert c.terms[1].value == state0[1][direction, 1, 3]
        vh = eqs[0].terms[1].value
        w_hh = layer.state_dict()["weight_hh_l0" + ("_reverse" if direction else "")]
        assert vh == pytest.approx(w_hh[3] @ state0[0][direction, 1], abs=1e-12)


def test_equations_are_frozen():
    _, _, _, trace = _make("RNN", "tanh", True, 1, False, "float64")
    (eq,) = explain_step(trace, 0, 0)
    with pytest.raises(AttributeError):
        eq.value = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("kwargs, name", [
    (dict(t=T), "t"), (dict(t=-1), "t"), (dict(t=True), "t"),
    (dict(unit=H), "unit"), (dict(unit=-1), "unit"),
    (dict(layer=2), "layer"), (dict(layer=-1), "layer"),
    (dict(direction=2), "direction"),
    (dict(b=B), "b"), (dict(b=-1), "b"),
])
def test_out_of_range_raises(kwargs, name):
    _, _, _, trace = _make("GRU", "tanh", True, 2, True, "float32")
    args = dict(t=0, unit=0, layer=0, direction=0, b=0) | kwargs
    with pytest.raises(ValueError, match=rf"^{name}\b.*out of range"):
        explain_step(trace, **args)


def test_unidirectional_rejects_direction_1():
    _, _, _, trace = _make("RNN", "tanh", True, 1, False, "float32")
    with pytest.raises(ValueError, match="direction"):
        explain_step(trace, 0, 0, direction=1)


def test_not_a_trace():
    with pytest.raises(ValueError, match="Trace"):
        explain_step(object(), 0, 0)


# ------------------------------------------------------------------------------------------------
# the linear recurrences: MinGRU, MinLSTM, LRU
# ------------------------------------------------------------------------------------------------

# (mode, bias, num_layers, bidirectional)
LINEAR_CONFIGS = [("MinGRU", True, 2, True), ("MinGRU", False, 1, False), ("MinLSTM", True, 2, True),
                  ("MinLSTM", False, 1, False), ("LRU", True, 2, False)]
LINEAR_IDS = [f"{m}-{'bias' if bias else 'nobias'}-l{L}{'-bi' if bi else ''}" for m, bias, L, bi in LINEAR_CONFIGS]
LINEAR_SYMBOLS = {"MinGRU": ["z_t", "h~_t", "h_t"], "MinLSTM": ["f_t", "i_t", "h~_t", "f'_t", "h_t"],
                  "LRU": ["|λ|", "arg λ", "Re λ", "Im λ", "γ", "Re h_t", "Im h_t"]}
LINEAR_RECORDS = {"z_t": "z", "h~_t": "h_tilde", "h_t": "h", "f_t": "f", "i_t": "i", "f'_t": "f_norm",
                  "Re h_t": "h", "Im h_t": "h_im"}


def _make_linear(mode, bias, num_layers, bidirectional, dtype, seed=0):
    kwargs = dict(num_layers=num_layers, dtype=dtype, seed=seed)
    if mode != "LRU":
        kwargs.update(bias=bias, bidirectional=bidirectional)
    layer = getattr(rnnlab, mode)(I, H, **kwargs)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    shape = (num_layers * layer.num_directions, B, H)
    h0 = 0.5 * rng.standard_normal(shape)
    h0 = (h0 + 0.5j * rng.standard_normal(shape) if mode == "LRU" else h0).astype(layer.state_dtype)
    _, _, trace = layer.forward(x, h0)
    return layer, x, h0, trace


def _linear_recompute(eq: Equation) -> float:
    """The formula applied to the term values, written out by hand per equation."""
    v = {term.name: term.value for term in eq.terms}
    hp = next((val for name, val in v.items() if name.startswith("h_{")), None)
    re_hp = next((val for name, val in v.items() if name.startswith("Re h_{")), None)
    im_hp = next((val for name, val in v.items() if name.startswith("Im h_{")), None)
    formulas = {
        "z_t": lambda: _sigmoid(sum(v.values())), "f_t": lambda: _sigmoid(sum(v.values())),
        "i_t": lambda: _sigmoid(sum(v.values())), "h~_t": lambda: sum(v.values()),
        "f'_t": lambda: v["f_t"] / (v["f_t"] + v["i_t"]),
        "|λ|": lambda: math.exp(-math.exp(v["ν_log"])), "arg λ": lambda: math.exp(v["θ_log"]),
        "Re λ": lambda: v["|λ|"] * math.cos(v["arg λ"]), "Im λ": lambda: v["|λ|"] * math.sin(v["arg λ"]),
        "γ": lambda: math.exp(v["γ_log"]),
        "Re h_t": lambda: v["Re λ"] * re_hp - v["Im λ"] * im_hp + v["γ"] * v["B_re·x_t"],
        "Im h_t": lambda: v["Im λ"] * re_hp + v["Re λ"] * im_hp + v["γ"] * v["B_im·x_t"],
    }
    if eq.symbol == "h_t":
        a = (1.0 - v["z_t"]) if "z_t" in v else v["f'_t"]
        return a * hp + (1.0 - a) * v["h~_t"] if "f'_t" in v else a * hp + v["z_t"] * v["h~_t"]
    return formulas[eq.symbol]()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("config", LINEAR_CONFIGS, ids=LINEAR_IDS)
def test_linear_cells_equations_match_trace_and_recompute(config, dtype):
    mode, bias, num_layers, bidirectional = config
    layer, x, h0, trace = _make_linear(*config, dtype)
    params = {k: np.asarray(v, np.float64) for k, v in layer.state_dict().items()}
    tol = TOL[dtype]
    for lyr in range(num_layers):
        for direction in range(trace.num_directions):
            sfx = f"_l{lyr}" + ("_reverse" if direction else "")
            inp = trace._inputs[(lyr, direction)]
            inp = np.asarray(inp[::-1] if direction else inp, np.float64)  # natural order
            prev = "{t+1}" if direction else "{t-1}"
            for t, unit, b in [(0, 0, 0), (T - 1, H - 1, 1), (2, 1, 1)]:
                eqs = explain_step(trace, t, unit, layer=lyr, direction=direction, b=b)
                assert [eq.symbol for eq in eqs] == LINEAR_SYMBOLS[mode]
                by_symbol = {eq.symbol: eq for eq in eqs}
                u = t + 1 if direction else t - 1
                k = lyr * trace.num_directions + direction
                for eq in eqs:
                    assert isinstance(eq.value, float)
                    for term in eq.terms:
                        assert term.name in eq.formula
                    if eq.symbol in LINEAR_RECORDS:  # the value is the trace's record, exactly
                        assert eq.value == float(trace.get(LINEAR_RECORDS[eq.symbol], lyr, direction)[t, b, unit])
                    scale = max([abs(eq.value), 1.0] + [abs(term.value) for term in eq.terms])
                    assert _close(_linear_recompute(eq), eq.value, scale, tol), eq.text(8)
                    assert eq.text().startswith(f"{eq.symbol} = {eq.formula} = ")
                if mode == "LRU":
                    lam = layer.eigenvalues()[lyr, unit]
                    assert by_symbol["|λ|"].value == pytest.approx(abs(lam), rel=1e-6)
                    assert by_symbol["Re λ"].value + 1j * by_symbol["Im λ"].value == pytest.approx(lam, rel=1e-6)
                    if 0 <= u < T:
                        h_prev = trace.get("h", lyr)[u, b, unit] + 1j * trace.get("h_im", lyr)[u, b, unit]
                    else:
                        h_prev = h0[k, b, unit]
                    v = {term.name: term.value for term in by_symbol["Re h_t"].terms}
                    assert v[f"Re h_{prev}"] == float(h_prev.real) and v[f"Im h_{prev}"] == float(h_prev.imag)
                    assert _close(v["B_re·x_t"], params["B_re" + sfx][unit] @ inp[t, b], 1.0, 1e-12)
                    assert f"nu_log{sfx}[{unit}]" in by_symbol["|λ|"].params
                    continue
                # gates and candidate: W·x_t (+ b) from the state_dict and the layer's input
                names = ("z", "h") if mode == "MinGRU" else ("f", "i", "h")
                for row_block, g in enumerate(names):
                    eq = by_symbol["h~_t" if g == "h" else f"{g}_t"]
                    v = {term.name: term.value for term in eq.terms}
                    row = row_block * H + unit
                    assert _close(v[f"W_{g}·x_t"], params["weight_ih" + sfx][row] @ inp[t, b], 1.0, 1e-12)
                    assert f"W_{g} = weight_ih{sfx}[{row_block * H}:{(row_block + 1) * H}]" in eq.params
                    if bias:
                        assert v[f"b_{g}"] == pytest.approx(params["bias_ih" + sfx][row], abs=1e-15)
                    else:
                        assert "bias=False" in eq.params and len(v) == 1
                    assert "V_" not in eq.formula  # no recurrent weights
                h_prev = trace.get("h", lyr, direction)[u, b, unit] if 0 <= u < T else h0[k, b, unit]
                v = {term.name: term.value for term in by_symbol["h_t"].terms}
                assert v[f"h_{prev}"] == float(h_prev)


def test_linear_cells_text():
    _, _, _, trace = _make_linear("LRU", True, 1, False, "float64")
    eqs = explain_step(trace, 1, 2)
    modulus, phase = eqs[0], eqs[1]
    nu = modulus.terms[0].value
    assert modulus.text() == (f"|λ| = exp(−exp(ν_log)) = exp(−exp({nu:.3f})) = exp({-math.exp(nu):.3f}) "
                              f"= {modulus.value:.3f}")
    assert phase.text() == f"arg λ = exp(θ_log) = exp({phase.terms[0].value:.3f}) = {phase.value:.3f}"
    assert "λ = exp(−exp(ν_log) + i·exp(θ_log))" in modulus.params
    assert eqs[5].formula == "Re λ·Re h_{t-1} − Im λ·Im h_{t-1} + γ·B_re·x_t"
    _, _, _, trace = _make_linear("MinLSTM", True, 1, False, "float32")
    f_norm = explain_step(trace, 0, 0)[3]
    f, i = f_norm.terms[0].value, f_norm.terms[1].value
    assert f_norm.text() == f"f'_t = f_t/(f_t + i_t) = {f:.3f}/({f:.3f} + {i:.3f}) = {f_norm.value:.3f}"
    _, _, _, trace = _make_linear("MinGRU", True, 1, False, "float32")
    assert explain_step(trace, 0, 0)[2].formula == "(1 − z_t)·h_{t-1} + z_t·h~_t"


def test_text_reads_division_and_unary_minus():
    eq = Equation("q", "exp(−a/b)", (Term("a", 1.0), Term("b", -4.0)), math.exp(0.25), "")
    assert eq.text() == "q = exp(−a/b) = exp(−1.000/(-4.000)) = exp(0.250) = 1.284"


# ------------------------------------------------------------------------------------------------
# the leaky RNN: [a, u_t, h_t]
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bias, num_layers, bidirectional", [(True, 2, True), (False, 1, False)])
def test_leaky_equations_match_trace_and_recompute(bias, num_layers, bidirectional, dtype):
    from rnnlab.layers.leaky import LeakyRNN

    layer = LeakyRNN(I, H, num_layers=num_layers, bidirectional=bidirectional, bias=bias, dtype=dtype, seed=3,
                     time_constants=(1.5, 8.0))
    layer.load_state_dict({k: 2.0 * v for k, v in layer.state_dict().items()})
    rng = np.random.default_rng(4)
    D = 2 if bidirectional else 1
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((num_layers * D, B, H))).astype(dtype)
    _, _, trace = layer.forward(x, h0)
    params = {k: np.asarray(v, np.float64) for k, v in layer.state_dict().items()}
    tol = TOL[dtype]
    for lyr in range(num_layers):
        inp = _layer_input(trace, x, lyr)
        for direction in range(D):
            sfx = f"_l{lyr}" + ("_reverse" if direction else "")
            prev = "{t+1}" if direction else "{t-1}"
            for t, unit, b in [(0, 0, 0), (T - 1, H - 1, 1), (2, 1, 1)]:
                a_eq, u_eq, h_eq = eqs = explain_step(trace, t, unit, layer=lyr, direction=direction, b=b)
                assert [eq.symbol for eq in eqs] == ["a", "u_t", "h_t"]
                for eq, record in zip(eqs, ("a", "u", "h")):  # values are the trace's records, exactly
                    assert eq.value == float(trace.get(record, lyr, direction)[t, b, unit])
                alpha = params["alpha" + sfx][unit]
                assert a_eq.terms == (Term("α", float(layer.parameters()["alpha" + sfx][unit])),)
                assert _close(_sigmoid(alpha), a_eq.value, 1.0, tol)
                assert f"alpha{sfx}[{unit}]" in a_eq.params and f"τ = 1/a = {1.0 / a_eq.value:.3g} steps" in a_eq.params
                h_prev = _previous(trace, h0, "h", lyr, direction, t, b)
                v = {term.name: term.value for term in u_eq.terms}
                wx = params["weight_ih" + sfx][unit] @ inp[t, b]
                vh = params["weight_hh" + sfx][unit] @ h_prev
                assert _close(v["W·x_t"], wx, abs(wx) + 1.0, 1e-12) and _close(v[f"V·h_{prev}"], vh, abs(vh) + 1.0, 1e-12)
                assert ("b" in v) == bias
                assert _close(math.tanh(sum(v.values())), u_eq.value, 1.0, tol)
                assert h_eq.formula == f"(1 − a)·h_{prev} + a·u_t"
                assert h_eq.terms == (Term("a", a_eq.value), Term(f"h_{prev}", float(h_prev[unit])),
                                      Term("u_t", u_eq.value))
                recomputed = (1.0 - a_eq.value) * h_prev[unit] + a_eq.value * u_eq.value
                assert _close(recomputed, h_eq.value, 1.0, tol)
                assert h_eq.text().startswith(f"h_t = (1 − a)·h_{prev} + a·u_t = (1 − ")
