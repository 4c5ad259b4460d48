"""GRU over a whole sequence, forward and backward through time (PyTorch's gate order r, z, n).

    r_t = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigma(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh (W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Shapes: x (T, B, I); w_ih (3H, I); w_hh (3H, H); b_ih, b_hh (3H,) (kept apart: b_hn sits inside
r_t's product); h0 (B, H). Records: hs (T+1, B, H) with hs[0] = h0; gates (3, T, B, H) holding
r, z, n; hn (T, B, H) = W_hn h_{t-1} + b_hn, the term r_t gates.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._common import batch_chunks, chunk_bounds, matmul_into, matmul_rows, matmul_tn_rows, scalar_like
from ._jit import jit
from ._math import sigmoid, tanh


@jit(parallel=True)
def gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, n_threads):
    """Run the GRU over x; return (hs, gates, hn) as described in the module docstring."""
    T, B, I = x.shape
    H = h0.shape[1]
    one = scalar_like(1.0, x)
    x_proj = matmul_rows(x.reshape(T * B, I), w_ih.T, n_threads).reshape(T, B, 3 * H)
    w_hh_t = np.ascontiguousarray(w_hh.T)  # (H, 3H)
    b_rz = b_ih[: 2 * H] + b_hh[: 2 * H]
    b_in = b_ih[2 * H :]
    b_hn = b_hh[2 * H :]
    hs = np.empty((T + 1, B, H), x.dtype)
    gates = np.empty((3, T, B, H), x.dtype)
    hn_all = np.empty((T, B, H), x.dtype)
    hs[0] = h0
    n_chunks = batch_chunks(B, 3 * H * H, n_threads)
    for chunk in prange(n_chunks):
        b0, b1 = chunk_bounds(chunk, n_chunks, B)
        rec = np.empty((b1 - b0, 3 * H), x.dtype)
        for t in range(T):
            matmul_into(hs[t, b0:b1], w_hh_t, rec)
            for b in range(b0, b1):
                a = x_proj[t, b]
                rc = rec[b - b0]
                r_t, z_t, n_t, hn_t = gates[0, t, b], gates[1, t, b], gates[2, t, b], hn_all[t, b]
                h_prev, h_t = hs[t, b], hs[t + 1, b]
                for j in range(H):
                    r = sigmoid(a[j] + rc[j] + b_rz[j])
                    z = sigmoid(a[H + j] + rc[H + j] + b_rz[H + j])
                    hn = rc[2 * H + j] + b_hn[j]
                    n = tanh(a[2 * H + j] + b_in[j] + r * hn)
                    r_t[j] = r
                    z_t[j] = z
                    n_t[j] = n
                    hn_t[j] = hn
                    h_t[j] = (one - z) * n + z * h_prev[j]
    return hs, gates, hn_all


@jit(parallel=True)
def gru_backward(x, w_ih, w_hh, hs, gates, hn_all, dy, dh_n, truncate, n_threads):
    """Backpropagation through time; ``dy``, ``dh_n`` and ``truncate`` as in ``lstm_backward``.

    Returns (dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dh) where dh (T, B, H) is the total dL/dh_t.
    """
    T, B, I = x.shape
    H = hs.shape[2]
    one = scalar_like(1.0, x)
    d_ih = np.empty((T, B, 3 * H), x.dtype)  # dL/d(input-side pre-activation) of r, z, n
    d_hh = np.empty((T, B, 3 * H), x.dtype)  # dL/d(recurrent-side pre-activation): n's is scaled by r
    dh_total = np.empty((T, B, H), x.dtype)
    dh0 = dh_n.copy()  # carries dL/dh_{t-1} through the loop, ends as dL/dh_0
    n_chunks = batch_chunks(B, 3 * H * H, n_threads)
    for chunk in prange(n_chunks):
        b0, b1 = chunk_bounds(chunk, n_chunks, B)
        dh_next = dh0[b0:b1]
        dh_skip = np.empty((b1 - b0, H), x.dtype)  # the direct path h_{t-1} -> z_t * h_{t-1}
        for t in range(T - 1, -1, -1):
            for b in range(b0, b1):
                r_t, z_t, n_t, hn_t = gates[0, t, b], gates[1, t, b], gates[2, t, b], hn_all[t, b]
                h_prev = hs[t, b]
                dh = dh_total[t, b]
                di = d_ih[t, b]
                dr = d_hh[t, b]
                dh_in = dh_next[b - b0]
                skip = dh_skip[b - b0]
                for j in range(H):
                    dh_j = dy[t, b, j] + dh_in[j]
                    dh[j] = dh_j
                    r = r_t[j]
                    z = z_t[j]
                    n = n_t[j]
                    da_n = dh_j * (one - z) * (one - n * n)
                    da_r = da_n * hn_t[j] * r * (one - r)
                    da_z = dh_j * (h_prev[j] - n) * z * (one - z)
                    di[j] = da_r
                    di[H + j] = da_z
                    di[2 * H + j] = da_n
                    dr[j] = da_r
                    dr[H + j] = da_z
                    dr[2 * H + j] = da_n * r
                    skip[j] = dh_j * z
            matmul_into(d_hh[t, b0:b1], w_hh, dh_next)
            dh_next += dh_skip
            if truncate > 0 and t > 0 and t % truncate == 0:
                dh_next[:] = 0
    rows_ih = d_ih.reshape(T * B, 3 * H)
    rows_hh = d_hh.reshape(T * B, 3 * H)
    dx = matmul_rows(rows_ih, w_ih, n_threads).reshape(T, B, I)
    dw_ih = matmul_tn_rows(rows_ih, x.reshape(T * B, I), n_threads)
    dw_hh = matmul_tn_rows(rows_hh, hs[:T].reshape(T * B, H), n_threads)
    return dx, dw_ih, dw_hh, rows_ih.sum(axis=0), rows_hh.sum(axis=0), dh0, dh_total
