"""GRU over a whole sequence, forward and backward through time (PyTorch's gate order r, z, n).

    r_t = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigma(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh (W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Shapes: x (T, B, I); w_ih (3H, I); w_hh (3H, H); b_ih, b_hh (3H,) (kept apart: b_hn sits inside
r_t's product); h0 (B, H). Records: hs (T+1, B, H) with hs[0] = h0; gates (3, T, B, H) holding
r, z, n; hn (T, B, H) = W_hn h_{t-1} + b_hn, the term r_t gates.
Threading as in :mod:`rnnlab.kernels.lstm` (``gru_forward_one``/``gru_backward_one``: the whole call
compiled in one piece when nothing is split across threads); unlike the LSTM's, the input projection
is always precomputed for every step (``x_proj``), whatever the batch.
"""

from __future__ import annotations

import numpy as np

from ._common import (add_row, column_sums, fits_one_thread, input_projection, matmul_rows, matmul_tn_rows,
                      run_batch_chunks, scalar_like)
from ._gemm import matmul_into, pack_panels, pack_panels_t
from ._jit import helper, jit
from ._math import sigmoid, tanh


@jit
def gru_forward_steps(x_proj, w_hh_p, b_hn, hs, gates, hn_all, b0, b1):
    """The time loop for sequences b0..b1-1; one loop per equation (see lstm_forward_steps)."""
    T = x_proj.shape[0]
    H = hs.shape[2]
    one = scalar_like(1.0, hs)
    pre = np.empty((b1 - b0, 3 * H), hs.dtype)  # W_hh h_{t-1}, then r and z in place
    for t in range(T):
        matmul_into(hs[t, b0:b1], w_hh_p, pre)
        for b in range(b0, b1):
            p = pre[b - b0]
            a = x_proj[t, b]  # W_ih x_t + b_ih, plus b_hr, b_hz for r and z
            r, z, n, hn = gates[0, t, b], gates[1, t, b], gates[2, t, b], hn_all[t, b]
            h_prev, h_t = hs[t, b], hs[t + 1, b]
            for j in range(H):  # hn = W_hn h_{t-1} + b_hn
                hn[j] = p[2 * H + j] + b_hn[j]
            for j in range(H):
                r[j] = sigmoid(p[j] + a[j])
            for j in range(H):
                z[j] = sigmoid(p[H + j] + a[H + j])
            for j in range(H):
                n[j] = tanh(a[2 * H + j] + r[j] * hn[j])
            for j in range(H):
                h_t[j] = (one - z[j]) * n[j] + z[j] * h_prev[j]


@helper
def _input_side_bias(b_ih, b_hh):
    """The bias added to the input projection: r and z see b_ih + b_hh; n sees b_in here and b_hn
    inside r's product."""
    H = b_ih.shape[0] // 3
    bias = b_ih.copy()
    bias[: 2 * H] += b_hh[: 2 * H]
    return bias


@helper
def _new_records(T, h0):
    """hs (T+1, B, H) starting at h0, gates (3, T, B, H) and hn (T, B, H), to be filled by the time loop."""
    B, H = h0.shape
    hs = np.empty((T + 1, B, H), h0.dtype)
    gates = np.empty((3, T, B, H), h0.dtype)
    hn_all = np.empty((T, B, H), h0.dtype)
    hs[0] = h0
    return hs, gates, hn_all


@jit
def gru_forward_one(x, w_ih, w_hh, b_ih, b_hh, h0):
    """:func:`gru_forward` on one thread, in one compiled call (the input projection as one GEMM)."""
    T, B, I = x.shape
    H = h0.shape[1]
    x_proj = np.empty((T * B, 3 * H), x.dtype)
    np.dot(x.reshape(T * B, I), w_ih.T, x_proj)
    add_row(x_proj, _input_side_bias(b_ih, b_hh))
    w_hh_p = pack_panels_t(w_hh)  # W_hh^T (H, 3H) as panels for matmul_into
    b_hn = np.ascontiguousarray(b_hh[2 * H :])
    hs, gates, hn_all = _new_records(T, h0)
    gru_forward_steps(x_proj.reshape(T, B, 3 * H), w_hh_p, b_hn, hs, gates, hn_all, 0, B)
    return hs, gates, hn_all


def gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, n_threads):
    """Run the GRU over x; return (hs, gates, hn) as described in the module docstring."""
    T, B, I = x.shape
    H = h0.shape[1]
    if fits_one_thread(B, T, 3 * H * H, (3 * H * I,), n_threads):
        return gru_forward_one(x, w_ih, w_hh, b_ih, b_hh, h0)
    x_proj = input_projection(x, w_ih, _input_side_bias(b_ih, b_hh), n_threads)
    w_hh_p = pack_panels_t(w_hh)  # W_hh^T (H, 3H) as panels for matmul_into
    b_hn = np.ascontiguousarray(b_hh[2 * H :])
    hs, gates, hn_all = _new_records(T, h0)
    run_batch_chunks(B, 3 * H * H, n_threads,
                     lambda b0, b1: gru_forward_steps(x_proj, w_hh_p, b_hn, hs, gates, hn_all, b0, b1))
    return hs, gates, hn_all


@jit
def gru_backward_steps(w_hh_p, hs, gates, hn_all, dy, truncate, d_ih, d_hh, dh_total, dh_next, b0, b1):
    """The reverse time loop for sequences b0..b1-1; dh_next (b1-b0, H) enters holding dL/dh_T
    and leaves holding dL/dh_0."""
    T = dy.shape[0]
    H = dy.shape[2]
    one = scalar_like(1.0, dy)
    dh_skip = np.empty((b1 - b0, H), dy.dtype)  # the direct path h_{t-1} -> z_t * h_{t-1}
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            r, z, n, hn = gates[0, t, b], gates[1, t, b], gates[2, t, b], hn_all[t, b]
            h_prev = hs[t, b]
            dh = dh_total[t, b]
            di = d_ih[t, b]  # dL/d(input-side pre-activation) of r, z, n
            dr = d_hh[t, b]  # dL/d(recurrent-side pre-activation): n's is scaled by r
            dh_in = dh_next[b - b0]
            skip = dh_skip[b - b0]
            for j in range(H):  # dL/dh_t: from outside plus through the recurrence
                dh[j] = dy[t, b, j] + dh_in[j]
            for j in range(H):  # through n = tanh(.)
                di[2 * H + j] = dh[j] * (one - z[j]) * (one - n[j] * n[j])
            for j in range(H):  # through r, which scales W_hn h + b_hn
                di[j] = di[2 * H + j] * hn[j] * r[j] * (one - r[j])
            for j in range(H):  # through z
                di[H + j] = dh[j] * (h_prev[j] - n[j]) * z[j] * (one - z[j])
            for j in range(2 * H):
                dr[j] = di[j]
            for j in range(H):
                dr[2 * H + j] = di[2 * H + j] * r[j]
            for j in range(H):
                skip[j] = dh[j] * z[j]
        matmul_into(d_hh[t, b0:b1], w_hh_p, dh_next)  # dL/dh_{t-1} through the gates ...
        dh_next += dh_skip  # ... plus the direct path
        if truncate > 0 and t > 0 and t % truncate == 0:
            dh_next[:] = 0


@jit
def gru_backward_one(x, w_ih, w_hh, hs, gates, hn_all, dy, dh_n, truncate):
    """:func:`gru_backward` on one thread, in one compiled call."""
    T, B, I = x.shape
    H = hs.shape[2]
    d_ih = np.empty((T, B, 3 * H), x.dtype)
    d_hh = np.empty((T, B, 3 * H), x.dtype)
    dh_total = np.empty((T, B, H), x.dtype)
    dh0 = dh_n.copy()
    gru_backward_steps(pack_panels(w_hh), hs, gates, hn_all, dy, truncate, d_ih, d_hh, dh_total, dh0, 0, B)
    rows_ih = d_ih.reshape(T * B, 3 * H)
    rows_hh = d_hh.reshape(T * B, 3 * H)
    dx = np.empty((T * B, I), x.dtype)
    np.dot(rows_ih, w_ih, dx)
    dw_ih = np.empty((3 * H, I), x.dtype)
    np.dot(rows_ih.T, x.reshape(T * B, I), dw_ih)
    dw_hh = np.empty((3 * H, H), x.dtype)
    np.dot(rows_hh.T, hs.reshape((T + 1) * B, H)[: T * B], dw_hh)
    return dx.reshape(T, B, I), dw_ih, dw_hh, column_sums(rows_ih), column_sums(rows_hh), dh0, dh_total


def gru_backward(x, w_ih, w_hh, hs, gates, hn_all, dy, dh_n, truncate, n_threads):
    """Backpropagation through time; ``dy``, ``dh_n`` and ``truncate`` as in ``lstm_backward``.

    Returns (dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dh) where dh (T, B, H) is the total dL/dh_t.
    """
    T, B, I = x.shape
    H = hs.shape[2]
    if fits_one_thread(B, T, 3 * H * H, (3 * H * I, 3 * H * H), n_threads):
        return gru_backward_one(x, w_ih, w_hh, hs, gates, hn_all, dy, dh_n, truncate)
    d_ih = np.empty((T, B, 3 * H), x.dtype)
    d_hh = np.empty((T, B, 3 * H), x.dtype)
    dh_total = np.empty((T, B, H), x.dtype)
    dh0 = dh_n.copy()  # carries dL/dh_{t-1} back through the loop, ends as dL/dh_0
    w_hh_p = pack_panels(w_hh)
    run_batch_chunks(B, 3 * H * H, n_threads, lambda b0, b1: gru_backward_steps(
        w_hh_p, hs, gates, hn_all, dy, truncate, d_ih, d_hh, dh_total, dh0[b0:b1], b0, b1))
    rows_ih = d_ih.reshape(T * B, 3 * H)
    rows_hh = d_hh.reshape(T * B, 3 * H)
    dx = matmul_rows(rows_ih, w_ih, n_threads).reshape(T, B, I)
    dw_ih = matmul_tn_rows(rows_ih, x.reshape(T * B, I), n_threads)
    dw_hh = matmul_tn_rows(rows_hh, hs[:T].reshape(T * B, H), n_threads)
    return dx, dw_ih, dw_hh, rows_ih.sum(axis=0), rows_hh.sum(axis=0), dh0, dh_total
