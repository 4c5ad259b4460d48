"""Attention of queries over a memory: scores, masked softmax, context, attentional state; forward and backward.

Luong et al. (2015) ("global attention") with Bahdanau et al. (2015)'s additive score as a third
kind. Queries are the decoder states, the memory is the encoder states (keys and values at once)::

    query     d   (T, B, H)      one query per decoder step t
    memory    e   (S, B, H)      one key/value per encoder step s
    mask          (S, B) bool    True where e[s, b] is a real (not padded) step

    scores    dot       s[t, b, s] = d_t . e_s
              general   s[t, b, s] = d_t . (W_a e_s)                    W_a (H, H)
              additive  s[t, b, s] = v . tanh(W_1 d_t + W_2 e_s)        W_1, W_2 (A, H), v (A,)
    weights   a[t, b, s] = exp(s[t, b, s]) / sum_{s' valid} exp(s[t, b, s'])   (0 where masked)
    context   c[t, b]    = sum_s a[t, b, s] e_s                                 (T, B, H)
    attentional state   h~_t = tanh(W_c [c_t ; d_t])                 W_c (H, 2H)

Every ``*_backward`` returns the gradient of ``L = sum(out * d_out)`` w.r.t. its inputs given the
cotangent ``d_out`` of its output. The per-pair loops (scores, softmax, context) run over batch
chunks (:func:`run_batch_chunks`); the projections (W_a, W_1, W_2, W_c) are big GEMMs over all
rows. float32 and float64; never mixed inside a kernel. Every public function takes ``n_threads``
last; call them inside :func:`rnnlab.kernels.blas_single_threaded`.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import matmul_rows, matmul_tn_rows, run_batch_chunks, scalar_like, sum_of, tanh_inplace
from ._jit import jit
from ._math import tanh

__all__ = [
    "dot_scores",
    "dot_scores_backward",
    "general_scores",
    "general_scores_backward",
    "additive_scores",
    "additive_scores_backward",
    "masked_softmax",
    "masked_softmax_backward",
    "attention_context",
    "attention_context_backward",
    "attentional_state",
    "attentional_state_backward",
]


def _rows(a: np.ndarray) -> np.ndarray:
    """(N, B, F) -> (N*B, F) C-contiguous rows."""
    return np.ascontiguousarray(a).reshape(-1, a.shape[-1])


# ---------------------------------------------------------------------------------------------
# dot scores (general = dot over projected keys)
# ---------------------------------------------------------------------------------------------

@jit
def dot_scores_steps(q, k, scores, b0, b1):
    """scores[t, b, s] = q[t, b] . k[s, b] for sequences b0..b1-1."""
    T, S, H = q.shape[0], k.shape[0], q.shape[2]
    for b in range(b0, b1):
        for t in range(T):
            q_t = q[t, b]
            for s in range(S):
                k_s = k[s, b]
                acc = scalar_like(0.0, scores)
                for j in range(H):
                    acc += q_t[j] * k_s[j]
                scores[t, b, s] = acc


@jit
def dot_scores_backward_steps(q, k, d_scores, dq, dk, b0, b1):
    """dq[t, b] = sum_s dS[t, b, s] k[s, b];  dk[s, b] = sum_t dS[t, b, s] q[t, b]."""
    T, S, H = q.shape[0], k.shape[0], q.shape[2]
    for b in range(b0, b1):
        for t in range(T):
            dq[t, b, :] = 0
        for s in range(S):
            dk[s, b, :] = 0
        for t in range(T):
            q_t, dq_t = q[t, b], dq[t, b]
            for s in range(S):
                g = d_scores[t, b, s]
                k_s, dk_s = k[s, b], dk[s, b]
                for j in range(H):
                    dq_t[j] += g * k_s[j]
                for j in range(H):
                    dk_s[j] += g * q_t[j]


def dot_scores(q: np.ndarray, k: np.ndarray, n_threads: int) -> np.ndarray:
    """Luong's dot score: q (T, B, H), k (S, B, H) -> scores (T, B, S), ``scores[t, b, s] = q_t . k_s``."""
    T, B, H = q.shape
    S = k.shape[0]
    scores = np.empty((T, B, S), q.dtype)
    run_batch_chunks(B, T * S * H, n_threads, lambda b0, b1: dot_scores_steps(q, k, scores, b0, b1))
    return scores


def dot_scores_backward(q: np.ndarray, k: np.ndarray, d_scores: np.ndarray, n_threads: int):
    """Gradients (dq, dk) of ``sum(scores * d_scores)``."""
    T, B, H = q.shape
    S = k.shape[0]
    dq = np.empty_like(q)
    dk = np.empty_like(k)
    run_batch_chunks(B, 2 * T * S * H, n_threads,
                     lambda b0, b1: dot_scores_backward_steps(q, k, d_scores, dq, dk, b0, b1))
    return dq, dk


def general_scores(q: np.ndarray, k: np.ndarray, w_a: np.ndarray, n_threads: int):
    """Luong's general score ``s[t, b, s] = q_t . (W_a k_s)``, W_a (H, H).

    Returns (scores (T, B, S), projected keys W_a k (S, B, H)); backward needs the latter.
    """
    S, B, H = k.shape
    k_proj = matmul_rows(_rows(k), w_a.T, n_threads).reshape(S, B, H)
    return dot_scores(q, k_proj, n_threads), k_proj


def general_scores_backward(q, k, w_a, k_proj, d_scores, n_threads):
    """Gradients (dq, dk, dW_a) of ``sum(scores * d_scores)``; ``k_proj`` from :func:`general_scores`."""
    S, B, H = k.shape
    dq, dk_proj = dot_scores_backward(q, k_proj, d_scores, n_threads)
    rows = _rows(dk_proj)
    dk = matmul_rows(rows, w_a, n_threads).reshape(S, B, H)  # k_proj = k W_a^T  ->  dk = dk_proj W_a
    dw_a = matmul_tn_rows(rows, _rows(k), n_threads)          # dW_a = sum_rows dk_proj^T k
    return dq, dk, dw_a


# ---------------------------------------------------------------------------------------------
# additive (Bahdanau) scores
# ---------------------------------------------------------------------------------------------

@jit
def additive_scores_steps(q_proj, k_proj, v, scores, b0, b1):
    """scores[t, b, s] = v . tanh(q_proj[t, b] + k_proj[s, b]) for sequences b0..b1-1."""
    T, S, A = q_proj.shape[0], k_proj.shape[0], q_proj.shape[2]
    u = np.empty(A, scores.dtype)
    for b in range(b0, b1):
        for t in range(T):
            p_t = q_proj[t, b]
            for s in range(S):
                p_s = k_proj[s, b]
                for j in range(A):
                    u[j] = tanh(p_t[j] + p_s[j])
                acc = scalar_like(0.0, scores)
                for j in range(A):
                    acc += v[j] * u[j]
                scores[t, b, s] = acc


@jit
def additive_scores_backward_steps(q_proj, k_proj, v, d_scores, dq_proj, dk_proj, dv_rows, b0, b1):
    """With u = tanh(q_proj_t + k_proj_s) recomputed and g = dS[t, b, s]:
    dv += g u;  da = g v (1 - u^2);  dq_proj_t += da;  dk_proj_s += da.
    dv_rows[b] holds sequence b's share of dv (summed by the caller)."""
    T, S, A = q_proj.shape[0], k_proj.shape[0], q_proj.shape[2]
    one = scalar_like(1.0, v)
    u = np.empty(A, v.dtype)
    da = np.empty(A, v.dtype)
    for b in range(b0, b1):
        for t in range(T):
            dq_proj[t, b, :] = 0
        for s in range(S):
            dk_proj[s, b, :] = 0
        dv = dv_rows[b]
        dv[:] = 0
        for t in range(T):
            p_t, dp_t = q_proj[t, b], dq_proj[t, b]
            for s in range(S):
                g = d_scores[t, b, s]
                p_s, dp_s = k_proj[s, b], dk_proj[s, b]
                for j in range(A):
                    u[j] = tanh(p_t[j] + p_s[j])
                for j in range(A):
                    dv[j] += g * u[j]
                for j in range(A):
                    da[j] = g * v[j] * (one - u[j] * u[j])
                for j in range(A):
                    dp_t[j] += da[j]
                for j in range(A):
                    dp_s[j] += da[j]


def additive_scores(q, k, w1, w2, v, n_threads):
    """Bahdanau's additive score ``s[t, b, s] = v . tanh(W_1 q_t + W_2 k_s)``; W_1, W_2 (A, H), v (A,).

    Returns (scores (T, B, S), W_1 q (T, B, A), W_2 k (S, B, A)); backward needs the projections.
    """
    T, B, _ = q.shape
    S = k.shape[0]
    A = w1.shape[0]
    q_proj = matmul_rows(_rows(q), w1.T, n_threads).reshape(T, B, A)
    k_proj = matmul_rows(_rows(k), w2.T, n_threads).reshape(S, B, A)
    scores = np.empty((T, B, S), q.dtype)
    run_batch_chunks(B, 2 * T * S * A, n_threads,
                     lambda b0, b1: additive_scores_steps(q_proj, k_proj, v, scores, b0, b1))
    return scores, q_proj, k_proj


def additive_scores_backward(q, k, w1, w2, v, q_proj, k_proj, d_scores, n_threads):
    """Gradients (dq, dk, dW_1, dW_2, dv) of ``sum(scores * d_scores)``."""
    T, B, H = q.shape
    S = k.shape[0]
    A = w1.shape[0]
    dq_proj = np.empty_like(q_proj)
    dk_proj = np.empty_like(k_proj)
    dv_rows = np.empty((B, A), q.dtype)
    run_batch_chunks(B, 5 * T * S * A, n_threads, lambda b0, b1: additive_scores_backward_steps(
        q_proj, k_proj, v, d_scores, dq_proj, dk_proj, dv_rows, b0, b1))
    rows_q, rows_k = _rows(dq_proj), _rows(dk_proj)
    dq = matmul_rows(rows_q, w1, n_threads).reshape(T, B, H)
    dk = matmul_rows(rows_k, w2, n_threads).reshape(S, B, H)
    dw1 = matmul_tn_rows(rows_q, _rows(q), n_threads)
    dw2 = matmul_tn_rows(rows_k, _rows(k), n_threads)
    return dq, dk, dw1, dw2, dv_rows.sum(axis=0)


# ---------------------------------------------------------------------------------------------
# masked softmax over the memory steps
# ---------------------------------------------------------------------------------------------

@jit
def masked_softmax_steps(scores, mask, weights, b0, b1):
    """weights[t, b, :] = softmax of scores[t, b, :] over the s with mask[s, b]; exactly 0 elsewhere.

    A row with no valid step is all zeros."""
    T, S = scores.shape[0], scores.shape[2]
    zero = scalar_like(0.0, weights)
    one = scalar_like(1.0, weights)
    for b in range(b0, b1):
        for t in range(T):
            row, w = scores[t, b], weights[t, b]
            found = False
            m = zero
            for s in range(S):  # the largest valid score, for a stable exp
                if mask[s, b] and (not found or row[s] > m):
                    m = row[s]
                    found = True
            for s in range(S):
                w[s] = math.exp(row[s] - m) if mask[s, b] else zero
            total = sum_of(w, S)  # not summed in the loop above (see sum_of); masked terms are 0
            if found:
                inv = one / total
                for s in range(S):
                    w[s] *= inv


@jit
def masked_softmax_backward_steps(weights, d_weights, d_scores, b0, b1):
    """dS[t, b, s] = a[t, b, s] (dA[t, b, s] - sum_s' a[t, b, s'] dA[t, b, s']) (0 where a is masked)."""
    T, S = weights.shape[0], weights.shape[2]
    for b in range(b0, b1):
        for t in range(T):
            a, da, ds = weights[t, b], d_weights[t, b], d_scores[t, b]
            dot = scalar_like(0.0, weights)
            for s in range(S):
                dot += a[s] * da[s]
            for s in range(S):
                ds[s] = a[s] * (da[s] - dot)


def masked_softmax(scores: np.ndarray, mask: np.ndarray, n_threads: int) -> np.ndarray:
    """Softmax of scores (T, B, S) over s where ``mask`` (S, B) is True; masked weights are exactly 0."""
    T, B, S = scores.shape
    weights = np.empty_like(scores)
    run_batch_chunks(B, 4 * T * S, n_threads, lambda b0, b1: masked_softmax_steps(scores, mask, weights, b0, b1))
    return weights


def masked_softmax_backward(weights: np.ndarray, d_weights: np.ndarray, n_threads: int) -> np.ndarray:
    """Gradient d_scores (T, B, S) of ``sum(weights * d_weights)``."""
    T, B, S = weights.shape
    d_scores = np.empty_like(weights)
    run_batch_chunks(B, 3 * T * S, n_threads,
                     lambda b0, b1: masked_softmax_backward_steps(weights, d_weights, d_scores, b0, b1))
    return d_scores


# ---------------------------------------------------------------------------------------------
# context: the weighted sum of the memory
# ---------------------------------------------------------------------------------------------

@jit
def context_steps(weights, values, context, b0, b1):
    """context[t, b] = sum_s weights[t, b, s] values[s, b] for sequences b0..b1-1."""
    T, S, H = weights.shape[0], weights.shape[2], values.shape[2]
    for b in range(b0, b1):
        for t in range(T):
            c = context[t, b]
            c[:] = 0
            for s in range(S):
                a = weights[t, b, s]
                e = values[s, b]
                for j in range(H):
                    c[j] += a * e[j]


@jit
def context_backward_steps(weights, values, d_context, d_weights, d_values, b0, b1):
    """dA[t, b, s] = dc[t, b] . values[s, b];  d_values[s, b] = sum_t weights[t, b, s] dc[t, b]."""
    T, S, H = weights.shape[0], weights.shape[2], values.shape[2]
    for b in range(b0, b1):
        for s in range(S):
            d_values[s, b, :] = 0
        for t in range(T):
            dc = d_context[t, b]
            for s in range(S):
                e, de = values[s, b], d_values[s, b]
                a = weights[t, b, s]
                acc = scalar_like(0.0, weights)
                for j in range(H):
                    acc += dc[j] * e[j]
                d_weights[t, b, s] = acc
                for j in range(H):
                    de[j] += a * dc[j]


def attention_context(weights: np.ndarray, values: np.ndarray, n_threads: int) -> np.ndarray:
    """Context vectors (T, B, H): weights (T, B, S) applied to values (S, B, H)."""
    T, B, S = weights.shape
    H = values.shape[2]
    context = np.empty((T, B, H), values.dtype)
    run_batch_chunks(B, T * S * H, n_threads, lambda b0, b1: context_steps(weights, values, context, b0, b1))
    return context


def attention_context_backward(weights, values, d_context, n_threads):
    """Gradients (d_weights (T, B, S), d_values (S, B, H)) of ``sum(context * d_context)``."""
    T, B, S = weights.shape
    d_weights = np.empty_like(weights)
    d_values = np.empty_like(values)
    run_batch_chunks(B, 2 * T * S * values.shape[2], n_threads, lambda b0, b1: context_backward_steps(
        weights, values, d_context, d_weights, d_values, b0, b1))
    return d_weights, d_values


# ---------------------------------------------------------------------------------------------
# attentional state h~ = tanh(W_c [c; d])
# ---------------------------------------------------------------------------------------------

@jit
def tanh_backward_inplace(y, dy):
    """dy <- dy * (1 - y^2) elementwise, the gradient through y = tanh(x); 2-D arrays."""
    one = scalar_like(1.0, y)
    for r in range(y.shape[0]):
        yr, dr = y[r], dy[r]
        for j in range(y.shape[1]):
            dr[j] = dr[j] * (one - yr[j] * yr[j])


def attentional_state(context: np.ndarray, query: np.ndarray, w_c: np.ndarray, n_threads: int) -> np.ndarray:
    """Luong's attentional state ``h~_t = tanh(W_c [c_t ; d_t])``: context, query (T, B, H), W_c (H, 2H) -> (T, B, H)."""
    T, B, H = query.shape
    cat = np.concatenate([context, query], axis=2).reshape(T * B, 2 * H)
    out = matmul_rows(cat, w_c.T, n_threads)
    tanh_inplace(out)
    return out.reshape(T, B, H)


def attentional_state_backward(context, query, w_c, out, d_out, n_threads):
    """Gradients (d_context, d_query, dW_c) of ``sum(out * d_out)``; ``out`` is the forward's h~."""
    T, B, H = query.shape
    d_pre = np.array(d_out, dtype=query.dtype, order="C").reshape(T * B, H)
    tanh_backward_inplace(_rows(out), d_pre)
    cat = np.concatenate([context, query], axis=2).reshape(T * B, 2 * H)
    dw_c = matmul_tn_rows(d_pre, cat, n_threads)
    d_cat = matmul_rows(d_pre, w_c, n_threads).reshape(T, B, 2 * H)
    return np.ascontiguousarray(d_cat[:, :, :H]), np.ascontiguousarray(d_cat[:, :, H:]), dw_c
