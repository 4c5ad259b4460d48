"""Plain NumPy float64 reference of attention (Luong et al. 2015, with Bahdanau's additive score).

The slow, obviously-correct twin of :mod:`rnnlab.kernels.attention` and
:class:`rnnlab.layers.seq2seq.Attention`, written equation by equation::

    query   d       (T, B, H)   decoder states
    memory  e       (S, B, H)   encoder states (keys and values)
    mask            (S, B)      True where e[s, b] is a real step

    scores      dot       s_tbs = d_tb . e_sb
                general   s_tbs = d_tb . (W_a e_sb)                 params["weight"]  W_a (H, H)
                additive  s_tbs = v . tanh(W_1 d_tb + W_2 e_sb)     params["W1"], ["W2"] (A, H), ["v"] (A,)
    weights     a_tbs = exp(s_tbs) / sum_{s' valid} exp(s_tbs')  for valid s, 0 for masked s
    context     c_tb  = sum_s a_tbs e_sb
    attentional h~_tb = tanh(W_c [c_tb ; d_tb])                     params["combine.weight"] W_c (H, 2H)

:func:`forward` returns every intermediate; :func:`backward` the gradient of
``L = sum(h~ * d_out)`` with respect to every parameter, ``"query"`` and ``"memory"``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["KINDS", "param_shapes", "scores", "masked_softmax", "context", "attentional", "forward", "backward"]

#: The score functions.
KINDS = ("dot", "general", "additive")


def param_shapes(kind, hidden_size, attn_size=None):
    """Parameter names and shapes of an attention of ``kind`` (A = attn_size, default H)."""
    H = hidden_size
    A = H if attn_size is None else attn_size
    shapes = {}
    if kind == "general":
        shapes["weight"] = (H, H)
    elif kind == "additive":
        shapes["W1"] = (A, H)
        shapes["W2"] = (A, H)
        shapes["v"] = (A,)
    elif kind != "dot":
        raise ValueError(f"unknown attention kind {kind!r}")
    shapes["combine.weight"] = (H, 2 * H)
    return shapes


def _f64(params):
    return {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}


def scores(kind, params, d, e):
    """s (T, B, S) for queries d (T, B, H) over memory e (S, B, H)."""
    if kind == "dot":
        return np.einsum("tbh,sbh->tbs", d, e)
    if kind == "general":
        W_a = params["weight"]
        return np.einsum("tbh,sbh->tbs", d, e @ W_a.T)
    if kind == "additive":
        W1, W2, v = params["W1"], params["W2"], params["v"]
        u = np.tanh((d @ W1.T)[:, :, None, :] + np.transpose(e @ W2.T, (1, 0, 2))[None])  # (T, B, S, A)
        return u @ v
    raise ValueError(f"unknown attention kind {kind!r}")


def masked_softmax(s, mask):
    """a (T, B, S): softmax of s over the valid s of each (t, b); exactly 0 on masked steps."""
    valid = np.asarray(mask, dtype=bool).T[None]  # (1, B, S)
    shifted = np.where(valid, s, -np.inf)
    shifted = shifted - shifted.max(axis=2, keepdims=True)
    expd = np.where(valid, np.exp(shifted), 0.0)
    return expd / expd.sum(axis=2, keepdims=True)


def context(a, e):
    """c (T, B, H) = sum_s a_tbs e_sb."""
    return np.einsum("tbs,sbh->tbh", a, e)


def attentional(c, d, W_c):
    """h~ (T, B, H) = tanh(W_c [c ; d])."""
    return np.tanh(np.concatenate([c, d], axis=2) @ W_c.T)


def forward(kind, params, query, memory, mask):
    """Every step of the attention in float64: dict with "scores", "weights", "context", "attentional"."""
    p = _f64(params)
    d = np.asarray(query, dtype=np.float64)
    e = np.asarray(memory, dtype=np.float64)
    s = scores(kind, p, d, e)
    a = masked_softmax(s, mask)
    c = context(a, e)
    h = attentional(c, d, p["combine.weight"])
    return {"scores": s, "weights": a, "context": c, "attentional": h}


def backward(kind, params, query, memory, mask, d_out):
    """Gradients of ``L = sum(h~ * d_out)``: every parameter name, plus "query" and "memory"."""
    p = _f64(params)
    d = np.asarray(query, dtype=np.float64)
    e = np.asarray(memory, dtype=np.float64)
    f = forward(kind, p, d, e, mask)
    a, c, h = f["weights"], f["context"], f["attentional"]
    H = d.shape[2]
    W_c = p["combine.weight"]
    grads = {}

    # h~ = tanh(z), z = W_c [c; d]
    dz = np.asarray(d_out, dtype=np.float64) * (1.0 - h * h)
    cat = np.concatenate([c, d], axis=2)
    grads["combine.weight"] = np.einsum("tbi,tbj->ij", dz, cat)
    d_cat = dz @ W_c
    dc, dd = d_cat[:, :, :H], d_cat[:, :, H:].copy()

    # c_tb = sum_s a_tbs e_sb
    da = np.einsum("tbh,sbh->tbs", dc, e)
    de = np.einsum("tbs,tbh->sbh", a, dc)

    # a = softmax(s) over valid s: ds = a * (da - sum_s a da)
    ds = a * (da - (a * da).sum(axis=2, keepdims=True))

    if kind == "dot":
        dd += np.einsum("tbs,sbh->tbh", ds, e)
        de += np.einsum("tbs,tbh->sbh", ds, d)
    elif kind == "general":
        W_a = p["weight"]
        k = e @ W_a.T                                   # projected keys W_a e
        dd += np.einsum("tbs,sbh->tbh", ds, k)
        dk = np.einsum("tbs,tbh->sbh", ds, d)
        de += dk @ W_a
        grads["weight"] = np.einsum("sbi,sbj->ij", dk, e)
    elif kind == "additive":
        W1, W2, v = p["W1"], p["W2"], p["v"]
        u = np.tanh((d @ W1.T)[:, :, None, :] + np.transpose(e @ W2.T, (1, 0, 2))[None])  # (T, B, S, A)
        grads["v"] = np.einsum("tbs,tbsa->a", ds, u)
        dpre = ds[..., None] * v * (1.0 - u * u)       # d/d(W_1 d_t + W_2 e_s)  (T, B, S, A)
        dq_proj = dpre.sum(axis=2)                       # (T, B, A)
        dk_proj = np.transpose(dpre.sum(axis=0), (1, 0, 2))  # (S, B, A)
        dd += dq_proj @ W1
        de += dk_proj @ W2
        grads["W1"] = np.einsum("tba,tbh->ah", dq_proj, d)
        grads["W2"] = np.einsum("sba,sbh->ah", dk_proj, e)
    else:
        raise ValueError(f"unknown attention kind {kind!r}")

    ordered = {name: grads[name] for name in param_shapes(kind, H, p.get("W1", np.empty((H, H))).shape[0])}
    ordered["query"] = dd
    ordered["memory"] = de
    return ordered
