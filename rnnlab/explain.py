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
- A term ``W_i·x_t`` is the number ``weight_ih[row] @ x_t`` (the matrix-row-times-vector product
  for this unit), ``V_i·h_{t-1}`` likewise; so the pre-activation is the plain sum of the terms.
- ``x_t`` is the layer's input at t: the network input for layer 0, the layer below's output
  (both directions concatenated) for higher layers.
- ``bias=False``: the b terms are left out of formula and terms, and ``params`` says so.

Time and direction: ``t`` is the natural-time index of the step and every value is the one of
position t (the trace's natural order). The *previous* state is the one the cell read when it
processed t: h_{t-1} for direction 0; for direction 1 (the reverse direction runs from T-1 down
to 0) it is the state at t+1, so its equations are written with ``h_{t+1}`` / ``c_{t+1}``. At the
first processed step (t = 0 forward, t = T-1 reverse) the previous state is the initial state
(h0, c0), read from the trace.

Numbers are float64 (float32 records are cast up). Each equation's ``value`` is the trace's own
record (gate, state); the terms are recomputed from the weights and inputs forward used, and
applying the formula to them reproduces ``value`` to rounding (float32 kernels: ~1e-6 relative).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .analysis import _check_index, _nonlinearity, _saved, _suffix, _weights

__all__ = ["Term", "Equation", "explain_step"]

_GATES = {"RNN": ("",), "LSTM": ("i", "f", "g", "o"), "GRU": ("r", "z", "n")}
_FUNCS = {"σ": lambda v: 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v)),
          "tanh": math.tanh,
          "relu": lambda v: max(v, 0.0)}


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
            s = f"{v:.{digits}f}"
            return s[1:] if s.startswith("-") and float(s) == 0.0 else s  # no "-0.000"

        values = {term.name: term.value for term in self.terms}
        parts = [f"{self.symbol} = {self.formula}"]
        if self.terms:
            tokens = _tokenize(self.formula, values)
            parts.append(_with_numbers(tokens, values, fmt))
            outer = _outer_call(tokens)
            if outer is not None:  # σ(a + b + c) = σ(sum) = value
                func, inner = outer
                parts.append(f"{func}({fmt(_evaluate(inner, values))})")
        parts.append(fmt(self.value))
        return " = ".join(parts)


# ------------------------------------------------------------------------------------------------
# a tiny reader of the formulas above: tokens, and evaluation (for text()'s pre-activation step)
# ------------------------------------------------------------------------------------------------

def _tokenize(formula: str, names) -> list[tuple[str, str]]:
    """Split a formula into (kind, text) tokens: name, func, num, op ("+", "−", "·"), paren, space."""
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
        elif ch in "+−·":
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
    """The formula with every name replaced by its number; a negative factor of ``·`` in parentheses."""
    out = []
    for pos, (kind, tok) in enumerate(tokens):
        if kind != "name":
            out.append(tok)
            continue
        number = fmt(values[tok])
        if number.startswith("-") and pos > 0 and tokens[pos - 1] == ("op", "·"):
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
    """Value of a token list: sums (+, −) of products (·) of names, numbers, (…) and func(…)."""
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
        while pos < len(toks) and toks[pos] == ("op", "·"):
            pos += 1
            acc *= factor()
        return acc

    def factor() -> float:
        nonlocal pos
        kind, text = toks[pos]
        pos += 1
        if kind == "name":
            return float(values[text])
        if kind == "num":
            return float(text)
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

    RNN: ``[h_t]``; LSTM: ``[i_t, f_t, g_t, o_t, c_t, h_t]``; GRU: ``[r_t, z_t, n_t, h_t]``.
    For direction 1 the previous state is the one at t+1 (its processing order) and is written
    ``h_{t+1}`` / ``c_{t+1}``; see the module docstring. Raises ValueError naming the argument
    (t, unit, layer, direction, b) that is out of range.
    """
    _check_index(trace, layer, direction)
    b = _check_position("b", b, trace.batch, f"the trace has batch size {trace.batch}")
    t = _check_position("t", t, trace.steps, f"the trace has {trace.steps} step(s)")
    j = _check_position("unit", unit, trace.hidden_size, f"the layer has hidden size {trace.hidden_size}")
    layer, direction = int(layer), int(direction)

    H, T, mode = trace.hidden_size, trace.steps, trace.mode
    p = T - 1 - t if direction else t  # processing index: the kernel's step p reads hs[p], writes hs[p+1]
    rec = _saved(trace, layer, direction)
    w_ih, w_hh, b_ih, b_hh = _weights(trace, layer, direction)
    x = np.asarray(trace._inputs[(layer, direction)][p, b], dtype=np.float64)  # processing order
    h_prev = rec["hs"][p, b]
    prev = "{t+1}" if direction else "{t-1}"
    hp = f"h_{prev}"

    sfx = _suffix(layer, direction)
    has_bias = f"bias_ih{sfx}" in trace._params
    note = "" if has_bias else "; no bias (bias=False)"
    if layer > 0:
        note += f"; x_t = layer {layer - 1}'s output" + (" (both directions)" if trace.num_directions == 2 else "")

    def wx(k: int) -> float:
        return float(w_ih[k * H + j] @ x)

    def vh(k: int) -> float:
        return float(w_hh[k * H + j] @ h_prev)

    def rows(k: int) -> str:
        return "" if mode == "RNN" else f"[{k * H}:{(k + 1) * H}]"

    def gate(symbol: str, func: str, k: int, value: float) -> Equation:
        """``symbol = func(W_k·x_t + V_k·h_prev + b_k)`` for gate index k."""
        g = _GATES[mode][k]
        sub = f"_{g}" if g else ""
        W, V, B = f"W{sub}", f"V{sub}", f"b{sub}"
        terms = [Term(f"{W}·x_t", wx(k)), Term(f"{V}·{hp}", vh(k))]
        params = f"{W} = weight_ih{sfx}{rows(k)}, {V} = weight_hh{sfx}{rows(k)}"
        if has_bias:
            terms.append(Term(B, float(b_ih[k * H + j] + b_hh[k * H + j])))
            params += f", {B} = bias_ih{sfx}{rows(k)} + bias_hh{sfx}{rows(k)}"
        formula = f"{func}({' + '.join(term.name for term in terms)})"
        return Equation(symbol, formula, tuple(terms), value, params + note)

    h_new = float(rec["hs"][p + 1, b, j])

    if mode == "RNN":
        return [gate("h_t", _nonlinearity(trace), 0, h_new)]

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
    params = f"W_n = weight_ih{sfx}{rows(2)}, V_n = weight_hh{sfx}{rows(2)}"
    if has_bias:
        terms += [Term("b_in", float(b_ih[2 * H + j])), Term("r_t", r), Term(f"V_n·{hp}", vh(2)),
                  Term("b_hn", float(b_hh[2 * H + j]))]
        formula = f"tanh(W_n·x_t + b_in + r_t·(V_n·{hp} + b_hn))"
        params += f", b_in = bias_ih{sfx}{rows(2)}, b_hn = bias_hh{sfx}{rows(2)}"
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
