"""LSTM over a whole sequence, forward and backward through time (PyTorch's gate order i, f, g, o).

    i_t = sigma(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
    f_t = sigma(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
    g_t = tanh (W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
    o_t = sigma(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

Shapes: x (T, B, I); w_ih (4H, I); w_hh (4H, H); bias (4H,) = b_ih + b_hh; h0, c0 (B, H).
Records: hs, cs (T+1, B, H) with hs[0] = h0, cs[0] = c0; gates (4, T, B, H) holding i, f, g, o.
All arrays C-contiguous and of one dtype (float32 or float64); the layers guarantee it.

Structure (as PyTorch's CPU path): one GEMM for the input projections of every step; per step a
recurrent product and the fused gate math; after the reverse time loop, the weight gradients as
GEMMs over all steps. Independent sequences run on separate threads, each with its own time loop.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._common import batch_chunks, chunk_bounds, matmul_into, matmul_rows, matmul_tn_rows, scalar_like
from ._jit import helper, jit
from ._math import sigmoid, tanh


@helper
def _forward_steps(x_proj, w_hh_t, bias, hs, cs, gates, b0, b1):
    """The time loop for sequences b0..b1-1 (one thread's share of the batch)."""
    T = x_proj.shape[0]
    H = hs.shape[2]
    rec = np.empty((b1 - b0, 4 * H), x_proj.dtype)  # W_hh h_{t-1} for every gate
    for t in range(T):
        matmul_into(hs[t, b0:b1], w_hh_t, rec)
        for b in range(b0, b1):
            a = x_proj[t, b]
            r = rec[b - b0]
            i_t, f_t, g_t, o_t = gates[0, t, b], gates[1, t, b], gates[2, t, b], gates[3, t, b]
            c_prev, c_t, h_t = cs[t, b], cs[t + 1, b], hs[t + 1, b]
            for j in range(H):
                i = sigmoid(a[j] + r[j] + bias[j])
                f = sigmoid(a[H + j] + r[H + j] + bias[H + j])
                g = tanh(a[2 * H + j] + r[2 * H + j] + bias[2 * H + j])
                o = sigmoid(a[3 * H + j] + r[3 * H + j] + bias[3 * H + j])
                c = f * c_prev[j] + i * g
                i_t[j] = i
                f_t[j] = f
                g_t[j] = g
                o_t[j] = o
                c_t[j] = c
                h_t[j] = o * tanh(c)


@jit(parallel=True)
def lstm_forward(x, w_ih, w_hh, bias, h0, c0, n_threads):
    """Run the LSTM over x; return (hs, cs, gates) as described in the module docstring."""
    T, B, I = x.shape
    H = h0.shape[1]
    x_proj = matmul_rows(x.reshape(T * B, I), w_ih.T, n_threads).reshape(T, B, 4 * H)
    w_hh_t = np.ascontiguousarray(w_hh.T)  # (H, 4H): row k holds h_k's weights into every gate
    hs = np.empty((T + 1, B, H), x.dtype)
    cs = np.empty((T + 1, B, H), x.dtype)
    gates = np.empty((4, T, B, H), x.dtype)
    hs[0] = h0
    cs[0] = c0
    n_chunks = batch_chunks(B, 4 * H * H, n_threads)
    if n_chunks == 1:
        _forward_steps(x_proj, w_hh_t, bias, hs, cs, gates, 0, B)
    else:
        for chunk in prange(n_chunks):
            b0, b1 = chunk_bounds(chunk, n_chunks, B)
            _forward_steps(x_proj, w_hh_t, bias, hs, cs, gates, b0, b1)
    return hs, cs, gates


@helper
def _backward_steps(w_hh, cs, gates, dy, truncate, d_pre, dh_total, dh_next, dc_next, b0, b1):
    """The reverse time loop for sequences b0..b1-1; dh_next, dc_next (b1-b0, H) enter holding
    dL/dh_T, dL/dc_T and leave holding dL/dh_0, dL/dc_0."""
    T = dy.shape[0]
    H = dy.shape[2]
    one = scalar_like(1.0, dy)
    dc_t = np.empty(H, dy.dtype)
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            i_t, f_t, g_t, o_t = gates[0, t, b], gates[1, t, b], gates[2, t, b], gates[3, t, b]
            c_prev, c_now = cs[t, b], cs[t + 1, b]
            dh = dh_total[t, b]
            da = d_pre[t, b]
            dh_in = dh_next[b - b0]
            dc_in = dc_next[b - b0]
            for j in range(H):
                dh_j = dy[t, b, j] + dh_in[j]
                dh[j] = dh_j
                tc = tanh(c_now[j])
                i = i_t[j]
                f = f_t[j]
                g = g_t[j]
                o = o_t[j]
                dc = dc_in[j] + dh_j * o * (one - tc * tc)
                dc_t[j] = dc
                da[j] = dc * g * i * (one - i)  # through i = sigma(.)
                da[H + j] = dc * c_prev[j] * f * (one - f)  # through f
                da[2 * H + j] = dc * i * (one - g * g)  # through g = tanh(.)
                da[3 * H + j] = dh_j * tc * o * (one - o)  # through o
            for j in range(H):
                dc_in[j] = dc_t[j] * f_t[j]  # dL/dc_{t-1}
        matmul_into(d_pre[t, b0:b1], w_hh, dh_next)  # dL/dh_{t-1} through the recurrence
        if truncate > 0 and t > 0 and t % truncate == 0:
            dh_next[:] = 0
            dc_next[:] = 0


@jit(parallel=True)
def lstm_backward(x, w_ih, w_hh, hs, cs, gates, dy, dh_n, dc_n, truncate, n_threads):
    """Backpropagation through time.

    dy (T, B, H): gradient arriving on each h_t from outside the recurrence (the layer above or
    the loss); dh_n, dc_n (B, H): gradient on the final state. ``truncate`` k > 0 cuts the
    recurrent gradient every k steps from t = 0 (no gradient crosses from step k*m to k*m - 1);
    0 means full BPTT.

    Returns (dx, dw_ih, dw_hh, dbias, dh0, dc0, dh) where dh (T, B, H) is the total dL/dh_t.
    """
    T, B, I = x.shape
    H = hs.shape[2]
    d_pre = np.empty((T, B, 4 * H), x.dtype)  # dL/d(pre-activation) of i, f, g, o per step
    dh_total = np.empty((T, B, H), x.dtype)
    dh0 = dh_n.copy()
    dc0 = dc_n.copy()
    n_chunks = batch_chunks(B, 4 * H * H, n_threads)
    if n_chunks == 1:
        _backward_steps(w_hh, cs, gates, dy, truncate, d_pre, dh_total, dh0, dc0, 0, B)
    else:
        for chunk in prange(n_chunks):
            b0, b1 = chunk_bounds(chunk, n_chunks, B)
            _backward_steps(w_hh, cs, gates, dy, truncate, d_pre, dh_total, dh0[b0:b1], dc0[b0:b1], b0, b1)
    d_rows = d_pre.reshape(T * B, 4 * H)
    dx = matmul_rows(d_rows, w_ih, n_threads).reshape(T, B, I)
    dw_ih = matmul_tn_rows(d_rows, x.reshape(T * B, I), n_threads)
    dw_hh = matmul_tn_rows(d_rows, hs[:T].reshape(T * B, H), n_threads)
    dbias = d_rows.sum(axis=0)
    return dx, dw_ih, dw_hh, dbias, dh0, dc0, dh_total
