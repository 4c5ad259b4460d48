"""Leaky-integrator RNN (units with their own time constants), forward and backward through time.

    u_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)        the candidate
    h_t = (1 - a) * h_{t-1} + a * u_t                          a = sigmoid(alpha), per unit, 0 < a < 1

Each unit j keeps a fraction 1 - a_j of its state per step: its time constant is tau_j = 1 / a_j
steps. Small a (large tau) gives a slow unit that integrates its candidate over many steps; a = 1
would be the Elman RNN.

Shapes: x (T, B, I); w_ih (H, I); w_hh (H, H); bias (H,) = b_ih + b_hh; a (H,); h0 (B, H).
Records: hs (T+1, B, H) with hs[0] = h0; us (T, B, H), the candidates u_t.
Structure and threading as in :mod:`rnnlab.kernels.elman`.
"""

from __future__ import annotations

import numpy as np

from ._common import input_projection, matmul_rows, matmul_tn_rows, run_batch_chunks, scalar_like
from ._gemm import matmul_into, pack_panels, pack_panels_t
from ._jit import jit
from ._math import tanh


@jit
def leaky_forward_steps(x_proj, w_hh_p, a, hs, us, b0, b1):
    """The time loop for sequences b0..b1-1."""
    T = x_proj.shape[0]
    H = hs.shape[2]
    one = scalar_like(1.0, hs)
    pre = np.empty((b1 - b0, H), hs.dtype)  # W_hh h_{t-1}
    for t in range(T):
        matmul_into(hs[t, b0:b1], w_hh_p, pre)
        for b in range(b0, b1):
            p = pre[b - b0]
            xp = x_proj[t, b]  # W_ih x_t + b_ih + b_hh
            h_prev = hs[t, b]
            h_t = hs[t + 1, b]
            u_t = us[t, b]
            for j in range(H):
                u = tanh(xp[j] + p[j])
                u_t[j] = u
                h_t[j] = (one - a[j]) * h_prev[j] + a[j] * u


def leaky_forward(x, w_ih, w_hh, bias, a, h0, n_threads):
    """Run the leaky RNN over x; return (hs (T+1, B, H), us (T, B, H))."""
    T, B, I = x.shape
    H = h0.shape[1]
    x_proj = input_projection(x, w_ih, bias, n_threads)
    w_hh_p = pack_panels_t(w_hh)  # W_hh^T, packed for matmul_into
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    us = np.empty((T, B, H), x.dtype)
    run_batch_chunks(B, H * H, n_threads, lambda b0, b1: leaky_forward_steps(x_proj, w_hh_p, a, hs, us, b0, b1))
    return hs, us


@jit
def leaky_backward_steps(w_hh_p, a, hs, us, dy, truncate, d_pre, dh_total, da_rows, dh_next, b0, b1):
    """The reverse time loop for sequences b0..b1-1; dh_next (b1-b0, H) enters holding dL/dh_T
    and leaves holding dL/dh_0; da_rows[b] (H,) accumulates sequence b's dL/da.

    Per step: dh_t = dy_t + dL/dh_t from step t+1; dL/da += dh_t * (u_t - h_{t-1});
    d_pre_t = dh_t * a * (1 - u_t^2); dL/dh_{t-1} = W_hh^T d_pre_t + (1 - a) * dh_t.
    """
    T = dy.shape[0]
    H = dy.shape[2]
    one = scalar_like(1.0, dy)
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            u_t = us[t, b]
            h_prev = hs[t, b]
            dh = dh_total[t, b]
            dp = d_pre[t, b]  # dL/d(pre-activation of u_t)
            da = da_rows[b]
            dh_in = dh_next[b - b0]
            for j in range(H):
                dh[j] = dy[t, b, j] + dh_in[j]
                da[j] += dh[j] * (u_t[j] - h_prev[j])
                dp[j] = dh[j] * a[j] * (one - u_t[j] * u_t[j])
        matmul_into(d_pre[t, b0:b1], w_hh_p, dh_next)  # through u_t: W_hh^T d_pre_t
        for b in range(b0, b1):
            dh = dh_total[t, b]
            dh_out = dh_next[b - b0]
            for j in range(H):  # through the leak: (1 - a) dh_t
                dh_out[j] += (one - a[j]) * dh[j]
        if truncate > 0 and t > 0 and t % truncate == 0:
            dh_next[:] = 0


def leaky_backward(x, w_ih, w_hh, a, hs, us, dy, dh_n, truncate, n_threads):
    """Backpropagation through time; ``dy`` (T, B, H), ``dh_n`` (B, H) and ``truncate`` (0: full BPTT,
    k: no gradient from processing step p to p-1 when p % k == 0) as in ``elman_backward``.

    Returns (dx, dw_ih, dw_hh, dbias, da, dh0, dh): ``da`` (H,) is dL/da, the sum over steps and
    sequences of dh_t * (u_t - h_{t-1}) (the caller applies da/dalpha = a (1 - a)); dh (T, B, H)
    is the total dL/dh_t.
    """
    T, B, I = x.shape
    H = hs.shape[2]
    d_pre = np.empty((T, B, H), x.dtype)
    dh_total = np.empty((T, B, H), x.dtype)
    da_rows = np.zeros((B, H), x.dtype)  # per sequence: chunks of the batch never share a row
    dh0 = dh_n.copy()  # carries dL/dh_{t-1} back through the loop, ends as dL/dh_0
    w_hh_p = pack_panels(w_hh)
    run_batch_chunks(B, H * H, n_threads, lambda b0, b1: leaky_backward_steps(
        w_hh_p, a, hs, us, dy, truncate, d_pre, dh_total, da_rows, dh0[b0:b1], b0, b1))
    rows = d_pre.reshape(T * B, H)
    dx = matmul_rows(rows, w_ih, n_threads).reshape(T, B, I)
    dw_ih = matmul_tn_rows(rows, x.reshape(T * B, I), n_threads)
    dw_hh = matmul_tn_rows(rows, hs[:T].reshape(T * B, H), n_threads)
    return dx, dw_ih, dw_hh, rows.sum(axis=0), da_rows.sum(axis=0), dh0, dh_total
