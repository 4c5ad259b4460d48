"""Elman RNN over a whole sequence, forward and backward through time.

    h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),   act = tanh (relu=False) or relu (relu=True)

Shapes: x (T, B, I); w_ih (H, I); w_hh (H, H); bias (H,) = b_ih + b_hh; h0 (B, H).
Records: hs (T+1, B, H) with hs[0] = h0.
Structure and threading as in :mod:`rnnlab.kernels.lstm` (``elman_forward_one``/``elman_backward_one``:
the whole call compiled in one piece when nothing is split across threads).
"""

from __future__ import annotations

import numpy as np

from ._common import (add_row, column_sums, fits_one_thread, matmul_rows, matmul_tn_rows,
                      run_batch_chunks, scalar_like)
from ._gemm import matmul_into, pack_panels, pack_panels_t
from ._jit import jit
from ._math import tanh


@jit
def elman_forward_steps(x_proj, w_hh_t, hs, relu, b0, b1):
    """The time loop for sequences b0..b1-1."""
    T = x_proj.shape[0]
    H = hs.shape[2]
    zero = scalar_like(0.0, hs)
    pre = np.empty((b1 - b0, H), hs.dtype)  # W_hh h_{t-1}
    for t in range(T):
        matmul_into(hs[t, b0:b1], w_hh_t, pre)
        for b in range(b0, b1):
            p = pre[b - b0]
            a = x_proj[t, b]  # W_ih x_t + b_ih + b_hh
            h_t = hs[t + 1, b]
            if relu:
                for j in range(H):
                    h_t[j] = max(a[j] + p[j], zero)
            else:
                for j in range(H):
                    h_t[j] = tanh(a[j] + p[j])


@jit
def elman_forward_one(x, w_ih, w_hh, bias, h0, relu):
    """:func:`elman_forward` on one thread, in one compiled call (the input projection as one GEMM)."""
    T, B, I = x.shape
    H = h0.shape[1]
    x_proj = np.empty((T * B, H), x.dtype)
    np.dot(x.reshape(T * B, I), w_ih.T, x_proj)
    add_row(x_proj, bias)
    w_hh_t = pack_panels_t(w_hh)  # W_hh^T, packed for matmul_into
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    elman_forward_steps(x_proj.reshape(T, B, H), w_hh_t, hs, relu, 0, B)
    return hs


def elman_forward(x, w_ih, w_hh, bias, h0, relu, n_threads):
    """Run the Elman RNN over x; return hs (T+1, B, H)."""
    T, B, I = x.shape
    H = h0.shape[1]
    if fits_one_thread(B, T, H * H, (H * I,), n_threads):
        return elman_forward_one(x, w_ih, w_hh, bias, h0, relu)
    x_proj = matmul_rows(x.reshape(T * B, I), w_ih.T, n_threads)
    add_row(x_proj, bias)
    x_proj = x_proj.reshape(T, B, H)
    w_hh_t = pack_panels_t(w_hh)  # W_hh^T, packed for matmul_into
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    run_batch_chunks(B, H * H, n_threads, lambda b0, b1: elman_forward_steps(x_proj, w_hh_t, hs, relu, b0, b1))
    return hs


@jit
def elman_backward_steps(w_hh_p, hs, dy, relu, truncate, d_pre, dh_total, dh_next, b0, b1):
    """The reverse time loop for sequences b0..b1-1; dh_next (b1-b0, H) enters holding dL/dh_T
    and leaves holding dL/dh_0."""
    T = dy.shape[0]
    H = dy.shape[2]
    one = scalar_like(1.0, dy)
    zero = scalar_like(0.0, dy)
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            h_t = hs[t + 1, b]
            dh = dh_total[t, b]
            da = d_pre[t, b]  # dL/d(pre-activation)
            dh_in = dh_next[b - b0]
            for j in range(H):  # dL/dh_t: from outside plus through the recurrence
                dh[j] = dy[t, b, j] + dh_in[j]
            if relu:
                for j in range(H):
                    da[j] = dh[j] if h_t[j] > zero else zero
            else:
                for j in range(H):
                    da[j] = dh[j] * (one - h_t[j] * h_t[j])
        matmul_into(d_pre[t, b0:b1], w_hh_p, dh_next)  # dL/dh_{t-1}
        if truncate > 0 and t > 0 and t % truncate == 0:
            dh_next[:] = 0


@jit
def elman_backward_one(x, w_ih, w_hh, hs, dy, dh_n, relu, truncate):
    """:func:`elman_backward` on one thread, in one compiled call."""
    T, B, I = x.shape
    H = hs.shape[2]
    d_pre = np.empty((T, B, H), x.dtype)
    dh_total = np.empty((T, B, H), x.dtype)
    dh0 = dh_n.copy()
    elman_backward_steps(pack_panels(w_hh), hs, dy, relu, truncate, d_pre, dh_total, dh0, 0, B)
    rows = d_pre.reshape(T * B, H)
    dx = np.empty((T * B, I), x.dtype)
    np.dot(rows, w_ih, dx)
    dw_ih = np.empty((H, I), x.dtype)
    np.dot(rows.T, x.reshape(T * B, I), dw_ih)
    dw_hh = np.empty((H, H), x.dtype)
    np.dot(rows.T, hs.reshape((T + 1) * B, H)[: T * B], dw_hh)
    return dx.reshape(T, B, I), dw_ih, dw_hh, column_sums(rows), dh0, dh_total


def elman_backward(x, w_ih, w_hh, hs, dy, dh_n, relu, truncate, n_threads):
    """Backpropagation through time; ``dy``, ``dh_n`` and ``truncate`` as in ``lstm_backward``.

    Returns (dx, dw_ih, dw_hh, dbias, dh0, dh) where dh (T, B, H) is the total dL/dh_t.
    """
    T, B, I = x.shape
    H = hs.shape[2]
    if fits_one_thread(B, T, H * H, (H * I, H * H), n_threads):
        return elman_backward_one(x, w_ih, w_hh, hs, dy, dh_n, relu, truncate)
    d_pre = np.empty((T, B, H), x.dtype)
    dh_total = np.empty((T, B, H), x.dtype)
    dh0 = dh_n.copy()  # carries dL/dh_{t-1} back through the loop, ends as dL/dh_0
    w_hh_p = pack_panels(w_hh)
    run_batch_chunks(B, H * H, n_threads, lambda b0, b1: elman_backward_steps(
        w_hh_p, hs, dy, relu, truncate, d_pre, dh_total, dh0[b0:b1], b0, b1))
    rows = d_pre.reshape(T * B, H)
    dx = matmul_rows(rows, w_ih, n_threads).reshape(T, B, I)
    dw_ih = matmul_tn_rows(rows, x.reshape(T * B, I), n_threads)
    dw_hh = matmul_tn_rows(rows, hs[:T].reshape(T * B, H), n_threads)
    return dx, dw_ih, dw_hh, rows.sum(axis=0), dh0, dh_total
