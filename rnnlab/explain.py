"""A cell's equations with the actual numbers of one step for one unit (the lab's "explain" panel).

:func:`explain_step` reads one layer/direction/batch element of a :class:`~rnnlab.Trace` at
natural time position ``t`` and hidden unit ``j`` and returns the cell's equations in order, each
with the numbers that went into it, e.g. for an LSTM::

    i_t = σ(W_i·x_t + V_i·h_{t-1} + b_i) = σ(0.312 + -0.120 + 0.051) = σ(0.243) = 0.560
    f_t = σ(W_f·x_t + V_f·h_{t-1} + b_f) = ...
    g_t = tanh(W_g·x_t + V_g·h_{t-1} + b_g) = ...
    o_t = σ(W_o·x_t + V_o·h_{t-1} + b_o) = ...
    c_t = f_t·c_{t-1} + i_t·g_t = 0.710·0.200 + 0.560·0.330 = 0.327
    h_t = o_t·tanh(c_t) = 0.620·tanh(0.327) = 0.196

Notation (the seeds' W/V; :attr:`Equation.params` maps it to PyTorch's state_dict names):

- ``W_k`` = the gate's rows of ``weight_ih`` (input weights), ``V_k`` = its rows of ``weight_hh``
  (recurrent weights), ``b_k = bias_ih + bias_hh`` rows. Gate k of unit j is row ``k*H + j``, gate
  order as PyTorch: LSTM i, f, g, o; GRU r, z, n. GRU's n keeps ``b_in`` and ``b_hn`` apart,
  ``n_t = tanh(W_n·x_t + b_in + r_t·(V_n·h_{t-1} + b_hn))``, exactly as PyTorch computes it.
  An Elman RNN has one "gate": ``h_t = tanh(W·x_t + V·h_{t-1} + b)`` (or ``relu``).
- The Jordan network: ``[h_t]`` with ``h_t = tanh(W·x_t + U·f_{t-1} + b)``, ``U`` = ``weight_yh``
  and ``f_{t-1}`` what the step read back (the previous target under teacher forcing, else the
  previous output or its softmax), ``b = bias_ih + bias_yh``.
- The leaky RNN: ``[a, u_t, h_t]`` with the unit's rate ``a = σ(α)`` (``α`` = ``alpha`` row j; its
  params also give the time constant τ = 1/a in steps), the candidate
  ``u_t = tanh(W·x_t + V·h_{t-1} + b)`` and ``h_t = (1 − a)·h_{t-1} + a·u_t``.
- A term ``W_i·x_t`` is the number ``weight_ih[row] @ x_t`` (the matrix-row-times-vector product
  for this unit), ``V_i·h_{t-1}`` likewise; so the pre-activation is the plain sum of the terms.
- ``x_t`` is the layer's input at t: the network input for layer 0, the layer below's output
  (both directions concatenated) for higher layers.
- ``bias=False``: the b terms are left out of formula and terms, and ``params`` says so.

The linear recurrences read no previous state in their gates (``W`` only, no ``V``): MinGRU
``[z_t, h~_t, h_t]`` with ``z_t = σ(W_z·x_t + b_z)``, ``h~_t = W_h·x_t + b_h``,
``h_t = (1 − z_t)·h_{t-1} + z_t·h~_t`` (rows [z; h~] of ``weight_ih`` / ``bias_ih``); MinLSTM
``[f_t, i_t, h~_t, f'_t, h_t]`` with ``f'_t = f_t/(f_t + i_t)`` and
``h_t = f'_t·h_{t-1} + (1 − f'_t)·h~_t`` (rows [f; i; h~]). The LRU's state is complex:
``λ = exp(−exp(ν_log) + i·exp(θ_log))`` is shown by its modulus ``|λ| = exp(−exp(ν_log))`` and
phase ``arg λ = exp(θ_log)`` (radians), then ``Re λ``, ``Im λ``, the input scale
``γ = exp(γ_log)``, and the update ``h_t = λ·h_{t-1} + γ·(B·x_t)`` written as its real and
imaginary parts ``Re h_t``, ``Im h_t`` (B = B_re + i·B_im; ``B_re·x_t`` is row j of B_re times
x_t). The values of |λ|, arg λ, Re λ, Im λ and γ are computed from the weights (no record holds
them); Re h_t and Im h_t are the trace's ``h`` and ``h_im``.

Time and direction: ``t`` is the natural-time index of the step and every value is the one of
position t (the trace's natural order). The *previous* state is the one the cell read when it
processed t: h_{t-1} for direction 0; for direction 1 (the reverse direction runs from T-1 down
to 0) it is the state at t+1, so its equations are written with ``h_{t+1}`` / ``c_{t+1}``. At the
first processed step (t = 0 forward, t = T-1 reverse) the previous state is the initial state
(h0, c0), read from the trace.

Self-attention has no recurrent cell to explain: :func:`explain_step` raises
:class:`~rnnlab.analysis.NotRecurrentError` for its traces. :func:`explain_attention` shows instead,
for one query step t, block and head, the softmax that made its attention weights, with the
numbers of the keys it attends to most::

    s_tj = q_t·k_j/√d_head,  a_tj = exp(s_tj − m)/Σ_j' exp(s_tj' − m),  m = max_j s_tj

Numbers are float64 (float32 records are cast up). Each equation's ``value`` is the trace's own
record (gate, state); the terms are recomputed from the weights and inputs forward used, and
applying the formula to them reproduces ``value`` to rounding (float32 kernels: ~1e-6 relative).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .analysis import ATTENTION_MODES, LINEAR_MODES, _check_index, _nonlinearity, _refuse_attention, _saved
from .layers.recurrent import layer_suffix

__all__ = ["Term", "Equation", "explain_step", "AttentionWeight", "AttentionStep", "explain_attention"]

_GATES = {"RNN": ("",), "Leaky": ("",), "LSTM": ("i", "f", "g", "o"), "GRU": ("r", "z", "n")}
_FUNCS = {"σ": lambda v: 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v)),
          "tanh": math.tanh,
          "relu": lambda v: max(v, 0.0),
          "exp": math.exp,
          "cos": math.cos,
          "sin": math.sin}


#: Past this magnitude a number is written in e-notation: a typed 1e30 made a pre-activation of
#: 48423268629591244099005972480.000.
FIXED_POINT_MAX = 1e6


def _number(v: float, digits: int) -> str:
    """``v`` with ``digits`` decimals (never "-0.000"), or in e-notation where it is huge."""
    if math.isfinite(v) and abs(v) >= FIXED_POINT_MAX:
        return f"{v:.{digits}e}"
    text = f"{v:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0.0 else text


@dataclass(frozen=True)
class Term:
    """One named number in an equation, e.g. ``Term("V_i·h_{t-1}", -0.12)``."""

    name: str
    value: float


@dataclass(frozen=True)
class Equation:
    """One equation of a cell step with its numbers.

    ``formula`` is written in the term names (unicode σ, ·, −, tanh, relu; subscripts ``_t``,
    ``_{t-1}``); ``terms`` are its inputs in order of first appearance; ``value`` is the result as
    the trace recorded it; ``params`` maps W/V/b to PyTorch parameter slices ("" when the equation
    uses no parameters).
    """

    symbol: str
    formula: str
    terms: tuple[Term, ...]
    value: float
    params: str

    def text(self, digits: int = 3) -> str:
        """The one-line form: ``symbol = formula = formula with numbers [= act(pre)] = value``."""
        if isinstance(digits, bool) or not isinstance(digits, (int, np.integer)) or digits < 0:
            raise ValueError(f"digits must be a non-negative integer, got {digits!r}")

        def fmt(v: float) -> str:
            return _number(v, digits)

        values = {term.name: term.value for term in self.terms}
        parts = [f"{self.symbol} = {self.formula}"]
        if self.terms:
            tokens = _tokenize(self.formula, values)
            parts.append(_with_numbers(tokens, values, fmt))
            outer = _outer_call(tokens)
            if outer is not None:  # σ(a + b + c) = σ(sum) = value (not after a lone name: exp(θ_log))
                func, inner = outer
                if [kind for kind, _ in inner if kind != "space"] != ["name"]:
                    parts.append(f"{func}({fmt(_evaluate(inner, values))})")
        parts.append(fmt(self.value))
        return " = ".join(parts)


# ------------------------------------------------------------------------------------------------
# a tiny reader of the formulas above: tokens, and evaluation (for text()'s pre-activation step)
# ------------------------------------------------------------------------------------------------

def _tokenize(formula: str, names) -> list[tuple[str, str]]:
    """Split a formula into (kind, text) tokens: name, func, num, op ("+", "−", "·", "/"), paren, space."""
    by_length = sorted(names, key=len, reverse=True)  # "b_in" before "b_i", "W_i·x_t" before "·"
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(formula):
        name = next((n for n in by_length if formula.startswith(n, i)), None)
        func = next((f for f in _FUNCS if formula.startswith(f + "(", i)), None)
        ch = formula[i]
        if name is not None:
            tokens.append(("name", name))
        elif func is not None:
            tokens.append(("func", func))
        elif ch.isdigit():
            j = i
            while j < len(formula) and (formula[j].isdigit() or formula[j] == "."):
                j += 1
            tokens.append(("num", formula[i:j]))
        elif ch in "+−·/":
            tokens.append(("op", ch))
        elif ch in "()":
            tokens.append(("paren", ch))
        elif ch == " ":
            tokens.append(("space", ch))
        else:
            raise ValueError(f"cannot read {formula[i:]!r} in formula {formula!r}")
        i += len(tokens[-1][1])
    return tokens


def _with_numbers(tokens, values, fmt) -> str:
    """The formula with every name replaced by its number: a negative term's sign folded into the
    ``+`` or ``−`` before it (``0.07 − 0.16``, not ``0.07 + -0.16``), a negative factor of ``·``
    or ``/`` in parentheses."""
    out = []
    for pos, (kind, tok) in enumerate(tokens):
        if kind != "name":
            out.append(tok)
            continue
        number = fmt(values[tok])
        before = next((p for p in range(pos - 1, -1, -1) if tokens[p][0] != "space"), None)
        if number.startswith("-") and before is not None:
            if tokens[before] in (("op", "+"), ("op", "−")):
                out[before] = "−" if tokens[before][1] == "+" else "+"
                number = number[1:]
            elif before == pos - 1 and tokens[before] in (("op", "·"), ("op", "/")):
                number = f"({number})"
        out.append(number)
    return "".join(out)


def _outer_call(tokens):
    """(func, inner tokens) if the whole formula is one call like ``σ(...)``, else None."""
    if len(tokens) < 3 or tokens[0][0] != "func" or tokens[1] != ("paren", "(") or tokens[-1] != ("paren", ")"):
        return None
    depth = 0
    for pos, tok in enumerate(tokens[1:], start=1):
        if tok[0] == "paren":
            depth += 1 if tok[1] == "(" else -1
            if depth == 0 and pos != len(tokens) - 1:
                return None  # e.g. tanh(a)·tanh(b)
    return tokens[0][1], tokens[2:-1]


def _evaluate(tokens, values) -> float:
    """Value of a token list: sums (+, −) of products (·, /) of names, numbers, (…), func(…) and −factor."""
    toks = [t for t in tokens if t[0] != "space"]
    pos = 0

    def expr() -> float:
        nonlocal pos
        total = product()
        while pos < len(toks) and toks[pos][0] == "op" and toks[pos][1] in "+−":
            sign = 1.0 if toks[pos][1] == "+" else -1.0
            pos += 1
            total += sign * product()
        return total

    def product() -> float:
        nonlocal pos
        acc = factor()
        while pos < len(toks) and toks[pos] in (("op", "·"), ("op", "/")):
            op = toks[pos][1]
            pos += 1
            acc = acc * factor() if op == "·" else acc / factor()
        return acc

    def factor() -> float:
        nonlocal pos
        kind, text = toks[pos]
        pos += 1
        if kind == "name":
            return float(values[text])
        if kind == "num":
            return float(text)
        if (kind, text) == ("op", "−"):  # unary minus, as in exp(−exp(ν_log))
            return -factor()
        if kind == "func":
            return _FUNCS[text](factor())
        if (kind, text) == ("paren", "("):
            v = expr()
            pos += 1  # ")"
            return v
        raise ValueError(f"unexpected {text!r} in formula")

    return expr()


# ------------------------------------------------------------------------------------------------
# explain_step
# ------------------------------------------------------------------------------------------------

def _check_position(name: str, value, size: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < size:
        raise ValueError(f"{name} {value!r} out of range: {what} (valid: 0..{size - 1})")
    return int(value)


def explain_step(trace, t: int, unit: int, layer: int = 0, direction: int = 0, b: int = 0) -> list[Equation]:
    """The equations of step ``t`` (natural time, 0-based) for hidden unit ``unit``, in order.

    RNN: ``[h_t]``; Leaky: ``[a, u_t, h_t]``; LSTM: ``[i_t, f_t, g_t, o_t, c_t, h_t]``; GRU: ``[r_t, z_t, n_t, h_t]``;
    MinGRU: ``[z_t, h~_t, h_t]``; MinLSTM: ``[f_t, i_t, h~_t, f'_t, h_t]``; LRU:
    ``[|λ|, arg λ, Re λ, Im λ, γ, Re h_t, Im h_t]`` (see the module docstring).
    For direction 1 the previous state is the one at t+1 (its processing order) and is written
    ``h_{t+1}`` / ``c_{t+1}``; see the module docstring. Raises ValueError naming the argument
    (t, unit, layer, direction, b) that is out of range; :class:`~rnnlab.analysis.NotRecurrentError`
    for a self-attention trace (see :func:`explain_attention`).
    """
    _refuse_attention(trace, "a recurrent cell's step equation")
    _check_index(trace, layer, direction)
    b = _check_position("b", b, trace.batch, f"the trace has batch size {trace.batch}")
    t = _check_position("t", t, trace.steps, f"the trace has {trace.steps} step(s)")
    j = _check_position("unit", unit, trace.hidden_size, f"the layer has hidden size {trace.hidden_size}")
    layer, direction = int(layer), int(direction)

    H, T, mode = trace.hidden_size, trace.steps, trace.mode
    p = T - 1 - t if direction else t  # processing index: the kernel's step p reads hs[p], writes hs[p+1]
    if mode in LINEAR_MODES:
        return _explain_linear(trace, p, j, layer, direction, b)
    if mode == "Jordan":
        return _explain_jordan(trace, p, j, b)
    rec = _saved(trace, layer, direction)
    x = np.asarray(trace._inputs[(layer, direction)][p, b], dtype=np.float64)  # processing order
    h_prev = rec["hs"][p, b]
    prev = "{t+1}" if direction else "{t-1}"
    hp = f"h_{prev}"

    sfx = layer_suffix(layer, direction)
    # the unit's rows alone, in float64 as forward's numbers are checked: _weights' whole matrices,
    # converted on every call, took the lab 1.7 s a key at H = 8192 (0.1 s at 4096)
    w_ih, w_hh = trace._params["weight_ih" + sfx], trace._params["weight_hh" + sfx]
    has_bias = f"bias_ih{sfx}" in trace._params
    b_ih = np.asarray(trace._params["bias_ih" + sfx], dtype=np.float64) if has_bias else None
    b_hh = np.asarray(trace._params["bias_hh" + sfx], dtype=np.float64) if has_bias else None
    shown = "" if trace.options.get("cell") else sfx  # the parameters' names as the user's state_dict has them
    note = "" if has_bias else "; no bias (bias=False)"
    if layer > 0:
        note += f"; x_t = layer {layer - 1}'s output" + (" (both directions)" if trace.num_directions == 2 else "")

    def wx(k: int) -> float:
        return float(np.asarray(w_ih[k * H + j], dtype=np.float64) @ x)

    def vh(k: int) -> float:
        return float(np.asarray(w_hh[k * H + j], dtype=np.float64) @ h_prev)

    def rows(k: int) -> str:
        return "" if mode in ("RNN", "Leaky") else f"[{k * H}:{(k + 1) * H}]"

    def gate(symbol: str, func: str, k: int, value: float) -> Equation:
        """``symbol = func(W_k·x_t + V_k·h_prev + b_k)`` for gate index k."""
        g = _GATES[mode][k]
        sub = f"_{g}" if g else ""
        W, V, B = f"W{sub}", f"V{sub}", f"b{sub}"
        terms = [Term(f"{W}·x_t", wx(k)), Term(f"{V}·{hp}", vh(k))]
        params = f"{W} = weight_ih{shown}{rows(k)}, {V} = weight_hh{shown}{rows(k)}"
        if has_bias:
            terms.append(Term(B, float(b_ih[k * H + j] + b_hh[k * H + j])))
            params += f", {B} = bias_ih{shown}{rows(k)} + bias_hh{shown}{rows(k)}"
        formula = f"{func}({' + '.join(term.name for term in terms)})"
        return Equation(symbol, formula, tuple(terms), value, params + note)

    h_new = float(rec["hs"][p + 1, b, j])

    if mode == "RNN":
        return [gate("h_t", _nonlinearity(trace), 0, h_new)]

    if mode == "Leaky":
        a, u = float(rec["a"][j]), float(rec["u"][p, b, j])
        alpha = float(trace._params["alpha" + sfx][j])
        return [
            Equation("a", "σ(α)", (Term("α", alpha),), a, f"α = alpha{sfx}[{j}]; time constant τ = 1/a = "
                                                         f"{1.0 / a:.3g} steps"),
            gate("u_t", "tanh", 0, u),
            Equation("h_t", f"(1 − a)·{hp} + a·u_t", (Term("a", a), Term(hp, float(h_prev[j])), Term("u_t", u)),
                     h_new, ""),
        ]

    if mode == "LSTM":
        i, f, g, o = (float(rec[name][p, b, j]) for name in ("i", "f", "g", "o"))
        c_prev, c_new = float(rec["cs"][p, b, j]), float(rec["cs"][p + 1, b, j])
        cp = f"c_{prev}"
        return [
            gate("i_t", "σ", 0, i),
            gate("f_t", "σ", 1, f),
            gate("g_t", "tanh", 2, g),
            gate("o_t", "σ", 3, o),
            Equation("c_t", f"f_t·{cp} + i_t·g_t",
                     (Term("f_t", f), Term(cp, c_prev), Term("i_t", i), Term("g_t", g)), c_new, ""),
            Equation("h_t", "o_t·tanh(c_t)", (Term("o_t", o), Term("c_t", c_new)), h_new, ""),
        ]

    # GRU
    r, z, n = (float(rec[name][p, b, j]) for name in ("r", "z", "n"))
    terms = [Term("W_n·x_t", wx(2))]
    params = f"W_n = weight_ih{shown}{rows(2)}, V_n = weight_hh{shown}{rows(2)}"
    if has_bias:
        terms += [Term("b_in", float(b_ih[2 * H + j])), Term("r_t", r), Term(f"V_n·{hp}", vh(2)),
                  Term("b_hn", float(b_hh[2 * H + j]))]
        formula = f"tanh(W_n·x_t + b_in + r_t·(V_n·{hp} + b_hn))"
        params += f", b_in = bias_ih{shown}{rows(2)}, b_hn = bias_hh{shown}{rows(2)}"
    else:
        terms += [Term("r_t", r), Term(f"V_n·{hp}", vh(2))]
        formula = f"tanh(W_n·x_t + r_t·V_n·{hp})"
    return [
        gate("r_t", "σ", 0, r),
        gate("z_t", "σ", 1, z),
        Equation("n_t", formula, tuple(terms), n, params + note),
        Equation("h_t", f"(1 − z_t)·n_t + z_t·{hp}",
                 (Term("z_t", z), Term("n_t", n), Term(hp, float(h_prev[j]))), h_new, ""),
    ]


def _explain_jordan(trace, p: int, j: int, b: int) -> list[Equation]:
    """:func:`explain_step` for the Jordan network (one layer, forward only) at step ``p``."""
    rec = _saved(trace, 0, 0)
    params = trace._params
    x = np.asarray(trace._inputs[(0, 0)][p, b], dtype=np.float64)
    f_prev = rec["fs"][p, b]
    terms = [Term("W·x_t", float(np.asarray(params["weight_ih_l0"][j], np.float64) @ x)),
             Term("U·f_{t-1}", float(np.asarray(params["weight_yh_l0"][j], np.float64) @ f_prev))]
    where = "W = weight_ih_l0, U = weight_yh_l0"
    if "bias_ih_l0" in params:
        terms.append(Term("b", float(params["bias_ih_l0"][j]) + float(params["bias_yh_l0"][j])))
        where += ", b = bias_ih_l0 + bias_yh_l0"
    else:
        where += "; no bias (bias=False)"
    fed = ("the previous target (teacher forcing)" if not rec["free"] else
           "softmax of the previous output" if trace.options.get("feedback") == "softmax" else
           "the previous output y_{t-1}")
    where += f"; f_{{t-1}} = {fed}" + (" (y0 at t = 0)" if p == 0 else "")
    return [Equation("h_t", f"tanh({' + '.join(t.name for t in terms)})", tuple(terms),
                     float(rec["h"][p, b, j]), where)]


def _explain_linear(trace, p: int, j: int, layer: int, direction: int, b: int) -> list[Equation]:
    """:func:`explain_step` for MinGRU, MinLSTM and LRU at processing index ``p`` (arguments checked)."""
    H, mode = trace.hidden_size, trace.mode
    params = trace._params
    sfx = layer_suffix(layer, direction)
    x = np.asarray(trace._inputs[(layer, direction)][p, b], dtype=np.float64)  # processing order
    prev = "{t+1}" if direction else "{t-1}"
    below = "" if layer == 0 else f"; x_t = layer {layer - 1}'s output" + (
        " (both directions)" if trace.num_directions == 2 else "")
    rec = _saved(trace, layer, direction)
    h_prev, h_new = rec["hs"][p, b, j], rec["hs"][p + 1, b, j]

    if mode == "LRU":
        num = lambda name: float(params[name + sfx][j])  # noqa: E731
        nu, theta, gamma_log = num("nu_log"), num("theta_log"), num("gamma_log")
        modulus, phase, gamma = math.exp(-math.exp(nu)), math.exp(theta), math.exp(gamma_log)
        lam_re, lam_im = modulus * math.cos(phase), modulus * math.sin(phase)
        bx_re = float(np.asarray(params["B_re" + sfx][j], np.float64) @ x)
        bx_im = float(np.asarray(params["B_im" + sfx][j], np.float64) @ x)
        hp_re, hp_im = f"Re h_{prev}", f"Im h_{prev}"
        rows = f"[{j}]"
        lam_params = (f"ν_log = nu_log{sfx}{rows}, θ_log = theta_log{sfx}{rows}; "
                      "λ = exp(−exp(ν_log) + i·exp(θ_log)), h_t = λ·h_{t-1} + γ·(B·x_t) (complex)" + below)
        return [
            Equation("|λ|", "exp(−exp(ν_log))", (Term("ν_log", nu),), modulus, lam_params),
            Equation("arg λ", "exp(θ_log)", (Term("θ_log", theta),), phase, "radians"),
            Equation("Re λ", "|λ|·cos(arg λ)", (Term("|λ|", modulus), Term("arg λ", phase)), lam_re, ""),
            Equation("Im λ", "|λ|·sin(arg λ)", (Term("|λ|", modulus), Term("arg λ", phase)), lam_im, ""),
            Equation("γ", "exp(γ_log)", (Term("γ_log", gamma_log),), gamma, f"γ_log = gamma_log{sfx}{rows}"),
            Equation("Re h_t", f"Re λ·{hp_re} − Im λ·{hp_im} + γ·B_re·x_t",
                     (Term("Re λ", lam_re), Term(hp_re, float(h_prev.real)), Term("Im λ", lam_im),
                      Term(hp_im, float(h_prev.imag)), Term("γ", gamma), Term("B_re·x_t", bx_re)),
                     float(h_new.real), f"B_re = B_re{sfx}{rows}"),
            Equation("Im h_t", f"Im λ·{hp_re} + Re λ·{hp_im} + γ·B_im·x_t",
                     (Term("Im λ", lam_im), Term(hp_re, float(h_prev.real)), Term("Re λ", lam_re),
                      Term(hp_im, float(h_prev.imag)), Term("γ", gamma), Term("B_im·x_t", bx_im)),
                     float(h_new.imag), f"B_im = B_im{sfx}{rows}"),
        ]

    w_ih = np.asarray(params["weight_ih" + sfx], dtype=np.float64)
    has_bias = f"bias_ih{sfx}" in params
    b_ih = np.asarray(params["bias_ih" + sfx], dtype=np.float64) if has_bias else None
    note = ("" if has_bias else "; no bias (bias=False)") + below
    hp = f"h_{prev}"
    names = ("z", "h") if mode == "MinGRU" else ("f", "i", "h")

    def affine(k: int) -> tuple[list[Term], str]:
        """Terms ``W_k·x_t (+ b_k)`` of row block k, and the parameter slices they come from."""
        g, rows = names[k], f"[{k * H}:{(k + 1) * H}]"
        terms = [Term(f"W_{g}·x_t", float(w_ih[k * H + j] @ x))]
        where = f"W_{g} = weight_ih{sfx}{rows}"
        if has_bias:
            terms.append(Term(f"b_{g}", float(b_ih[k * H + j])))
            where += f", b_{g} = bias_ih{sfx}{rows}"
        return terms, where + note

    def gate(symbol: str, k: int, value: float) -> Equation:
        terms, where = affine(k)
        return Equation(symbol, f"σ({' + '.join(t.name for t in terms)})", tuple(terms), value, where)

    def candidate(k: int, value: float) -> Equation:
        terms, where = affine(k)
        return Equation("h~_t", " + ".join(t.name for t in terms), tuple(terms), value, where)

    value = lambda name: float(rec[name][p, b, j])  # noqa: E731
    h_prev, h_new = float(h_prev), float(h_new)
    if mode == "MinGRU":
        z, h_tilde = value("z"), value("h_tilde")
        return [
            gate("z_t", 0, z),
            candidate(1, h_tilde),
            Equation("h_t", f"(1 − z_t)·{hp} + z_t·h~_t", (Term("z_t", z), Term(hp, h_prev), Term("h~_t", h_tilde)),
                     h_new, ""),
        ]
    f, i, f_norm, h_tilde = value("f"), value("i"), value("f_norm"), value("h_tilde")
    return [
        gate("f_t", 0, f),
        gate("i_t", 1, i),
        candidate(2, h_tilde),
        Equation("f'_t", "f_t/(f_t + i_t)", (Term("f_t", f), Term("i_t", i)), f_norm, "i'_t = i_t/(f_t + i_t) = 1 − f'_t"),
        Equation("h_t", f"f'_t·{hp} + (1 − f'_t)·h~_t", (Term("f'_t", f_norm), Term(hp, h_prev), Term("h~_t", h_tilde)),
                 h_new, ""),
    ]


# ------------------------------------------------------------------------------------------------
# self-attention: the softmax of one query step
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AttentionWeight:
    """One key step j of a query step t: its score ``s_tj = q_t·k_j/√d_head`` and weight ``a_tj``."""

    key: int       # j, 0-based
    score: float   # s_tj, recomputed from the recorded q_t and k_j
    weight: float  # a_tj as the trace recorded it


@dataclass(frozen=True)
class AttentionStep:
    """The attention of query step ``t`` (0-based) in block ``layer``, head ``head``, sequence ``b``.

    ``keys`` are the steps it may attend to (causal: 0..t; never padding past the sequence's
    length); ``top`` its largest weights, largest first; ``shift`` is m = max_j s_tj and
    ``normaliser`` Z = Σ_j exp(s_tj − m) over ``keys``, so ``a_tj = exp(s_tj − m)/Z``.
    """

    t: int
    layer: int
    head: int
    b: int
    d_head: int
    causal: bool
    keys: tuple[int, ...]
    top: tuple[AttentionWeight, ...]
    shift: float
    normaliser: float

    @property
    def covered(self) -> float:
        """How much of the weight the ``top`` keys hold together (1.0 when they are every key)."""
        return float(sum(w.weight for w in self.top))

    def lines(self, digits: int = 3, labels: list[str] | None = None, numbered: bool = False) -> list[str]:
        """The formulas, then one line per top key with its numbers (steps numbered 1..T, as the lab's).

        ``labels`` (one per step), when given, name what each key step holds (its input token).
        ``numbered``: the keys' lines name the query by its step number, ``a_5,3`` rather than
        ``a_t,3``, for a reader who has been told t (the lab's explain panel).
        """
        if isinstance(digits, bool) or not isinstance(digits, (int, np.integer)) or digits < 0:
            raise ValueError(f"digits must be a non-negative integer, got {digits!r}")

        def fmt(v: float) -> str:
            return _number(v, digits)

        first, last = self.keys[0] + 1, self.keys[-1] + 1
        span = f"keys j = {first}..{last}" + (", causal" if self.causal else "")
        out = [f"s_tj = q_t·k_j/√{self.d_head},  a_tj = exp(s_tj − m)/Z",
               f"m = max_j s_tj = {fmt(self.shift)},  Z = Σ_j exp(s_tj − m) = {fmt(self.normaliser)}  ({span})"]
        query = self.t + 1 if numbered else "t"
        for w in self.top:
            label = f" [{labels[w.key]}]" if labels is not None else ""
            shift = f"({fmt(w.score)} − {fmt(self.shift)})" if self.shift >= 0 else f"({fmt(w.score)} + {fmt(-self.shift)})"
            out.append(f"a_{query},{w.key + 1}{label} = exp{shift}/{fmt(self.normaliser)} = {fmt(w.weight)}")
        if len(self.top) < len(self.keys):
            out.append(f"top {len(self.top)} of {len(self.keys)} keys hold {fmt(self.covered)} of the weight")
        return out


def explain_attention(trace, t: int, layer: int = 0, head: int = 0, b: int = 0, top: int = 5) -> AttentionStep:
    """Which steps query step ``t`` (0-based) attends to in block ``layer``, head ``head``: the
    ``top`` largest weights with the softmax's numbers (see :class:`AttentionStep`).

    Scores are recomputed in float64 from the recorded queries and keys (``trace["q"]`` before the
    1/√d_head scaling, ``trace["k"]``); the weights are the trace's ``attn`` record, which
    ``exp(s_tj − m)/Z`` reproduces to rounding. ValueError naming an argument out of range, or a
    trace that is not a self-attention trace.
    """
    if getattr(trace, "mode", None) not in ATTENTION_MODES:
        raise ValueError(f"explain_attention needs a self-attention trace, got mode {getattr(trace, 'mode', None)!r}")
    layer = _check_position("layer", layer, trace.num_layers, f"the model has {trace.num_layers} block(s)")
    b = _check_position("b", b, trace.batch, f"the trace has batch size {trace.batch}")
    t = _check_position("t", t, trace.steps, f"the trace has {trace.steps} step(s)")
    head = _check_position("head", head, trace.num_heads, f"the block has {trace.num_heads} head(s)")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ValueError(f"top must be a positive integer, got {top!r}")
    q = np.asarray(trace.get("q", layer)[t, b, head], np.float64)            # (d_head,)
    k = np.asarray(trace.get("k", layer)[:, b, head], np.float64)            # (T, d_head)
    weights = np.asarray(trace.attention(layer, b, head)[t], np.float64)    # (T,)
    d_head = q.shape[0]
    length = int(trace.lengths[b]) if trace.lengths is not None else trace.steps
    last = min(t + 1, length) if trace.causal else length
    keys = tuple(range(last))
    scores = (k[:last] @ q) / math.sqrt(d_head)
    shift = float(scores.max())
    normaliser = float(np.exp(scores - shift).sum())
    order = sorted(keys, key=lambda j: (-weights[j], j))[: int(top)]
    return AttentionStep(t, layer, head, b, d_head, trace.causal, keys,
                         tuple(AttentionWeight(j, float(scores[j]), float(weights[j])) for j in order),
                         shift, normaliser)
