"""Elman RNN over a whole sequence, forward and backward through time.

    h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),   act = tanh (relu=False) or relu (relu=True)

Shapes: x (T, B, I); w_ih (H, I); w_hh (H, H); bias (H,) = b_ih + b_hh; h0 (B, H).
Records: hs (T+1, B, H) with hs[0] = h0.
Structure and threading as in :mod:`rnnlab.kernels.lstm` (``elman_forward_one``/``elman_backward_one``:
the whole call compiled in one piece when nothing is split across threads).
"""

from __future__ import annotations

import numpy as np

from ._common import (PER_STEP_INPUT_BATCH, add_row, column_sums, fits_one_thread, input_projection, matmul_rows,
                      matmul_tn_rows, run_batch_chunks, scalar_like)
from ._gemm import matmul_add_into, matmul_into, pack_panels, pack_panels_t
from ._jit import jit
from ._math import tanh


@jit
def elman_forward_steps(x, w_ih_p, x_proj, w_hh_p, bias, hs, relu, b0, b1):
    """The time loop for sequences b0..b1-1; the input projection precomputed in ``x_proj``
    (W_ih x_t + bias) or, with ``x_proj`` None, per step as in :func:`..lstm.lstm_forward_steps`."""
    T = hs.shape[0] - 1
    H = hs.shape[2]
    zero = scalar_like(0.0, hs)
    pre = np.empty((b1 - b0, H), hs.dtype)  # W_hh h_{t-1} (+ W_ih x_t)
    for t in range(T):
        if w_ih_p is not None:  # (numba prunes branches on an argument that is None)
            matmul_into(x[t, b0:b1], w_ih_p, pre)
            matmul_add_into(hs[t, b0:b1], w_hh_p, pre)
        else:
            matmul_into(hs[t, b0:b1], w_hh_p, pre)
        for b in range(b0, b1):
            p = pre[b - b0]
            a = bias if x_proj is None else x_proj[t, b]
            h_t = hs[t + 1, b]
            if relu:
                for j in range(H):
                    h_t[j] = max(p[j] + a[j], zero)
            else:
                for j in range(H):
                    h_t[j] = tanh(p[j] + a[j])


@jit
def elman_forward_one(x, w_ih, w_hh, bias, h0, relu):
    """:func:`elman_forward` on one thread, in one compiled call."""
    T, B, I = x.shape
    H = h0.shape[1]
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    w_hh_p = pack_panels_t(w_hh)  # W_hh^T, packed for matmul_into
    if B >= PER_STEP_INPUT_BATCH:
        elman_forward_steps(x, pack_panels_t(w_ih), None, w_hh_p, bias, hs, relu, 0, B)
    else:
        x_proj = np.empty((T * B, H), x.dtype)
        np.dot(x.reshape(T * B, I), w_ih.T, x_proj)
        add_row(x_proj, bias)
        elman_forward_steps(x, None, x_proj.reshape(T, B, H), w_hh_p, bias, hs, relu, 0, B)
    return hs


def elman_forward(x, w_ih, w_hh, bias, h0, relu, n_threads):
    """Run the Elman RNN over x; return hs (T+1, B, H)."""
    T, B, I = x.shape
    H = h0.shape[1]
    per_step_input = B >= PER_STEP_INPUT_BATCH
    work = H * (H + I) if per_step_input else H * H  # multiply-adds per sequence and step
    if fits_one_thread(B, T, work, () if per_step_input else (H * I,), n_threads):
        return elman_forward_one(x, w_ih, w_hh, bias, h0, relu)
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    w_hh_p = pack_panels_t(w_hh)
    if per_step_input:
        w_ih_p = pack_panels_t(w_ih)
        run_batch_chunks(B, work, n_threads, lambda b0, b1: elman_forward_steps(
            x, w_ih_p, None, w_hh_p, bias, hs, relu, b0, b1))
    else:
        x_proj = input_projection(x, w_ih, bias, n_threads)
        run_batch_chunks(B, work, n_threads, lambda b0, b1: elman_forward_steps(
            x, None, x_proj, w_hh_p, bias, hs, relu, b0, b1))
    return hs


@jit
def elman_backward_steps(w_hh_p, w_ih_p, hs, dy, relu, truncate, d_pre, dh_total, dx, dh_next, b0, b1):
    """The reverse time loop for sequences b0..b1-1; dh_next (b1-b0, H) enters holding dL/dh_T
    and leaves holding dL/dh_0. With ``w_ih_p`` (packed W_ih) each step also writes dx[t]."""
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
        if w_ih_p is not None:
            matmul_into(d_pre[t, b0:b1], w_ih_p, dx[t, b0:b1])  # dL/dx_t
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
    dx = np.empty((T, B, I), x.dtype)
    dh0 = dh_n.copy()
    rows = d_pre.reshape(T * B, H)
    if B >= PER_STEP_INPUT_BATCH:
        elman_backward_steps(pack_panels(w_hh), pack_panels(w_ih), hs, dy, relu, truncate, d_pre, dh_total, dx,
                             dh0, 0, B)
    else:
        elman_backward_steps(pack_panels(w_hh), None, hs, dy, relu, truncate, d_pre, dh_total, dx, dh0, 0, B)
        np.dot(rows, w_ih, dx.reshape(T * B, I))
    dw_ih = np.empty((H, I), x.dtype)
    np.dot(rows.T, x.reshape(T * B, I), dw_ih)
    dw_hh = np.empty((H, H), x.dtype)
    np.dot(rows.T, hs.reshape((T + 1) * B, H)[: T * B], dw_hh)
    return dx, dw_ih, dw_hh, column_sums(rows), dh0, dh_total


def elman_backward(x, w_ih, w_hh, hs, dy, dh_n, relu, truncate, n_threads):
    """Backpropagation through time; ``dy``, ``dh_n`` and ``truncate`` as in ``lstm_backward``.

    Returns (dx, dw_ih, dw_hh, dbias, dh0, dh) where dh (T, B, H) is the total dL/dh_t.
    """
    T, B, I = x.shape
    H = hs.shape[2]
    per_step_input = B >= PER_STEP_INPUT_BATCH
    work = H * (H + I) if per_step_input else H * H
    if fits_one_thread(B, T, work, (H * I, H * H), n_threads):  # dW_ih and dW_hh (and dx) GEMMs
        return elman_backward_one(x, w_ih, w_hh, hs, dy, dh_n, relu, truncate)
    d_pre = np.empty((T, B, H), x.dtype)
    dh_total = np.empty((T, B, H), x.dtype)
    dx = np.empty((T, B, I), x.dtype)
    dh0 = dh_n.copy()  # carries dL/dh_{t-1} back through the loop, ends as dL/dh_0
    w_hh_p = pack_panels(w_hh)
    w_ih_p = pack_panels(w_ih) if per_step_input else None
    run_batch_chunks(B, work, n_threads, lambda b0, b1: elman_backward_steps(
        w_hh_p, w_ih_p, hs, dy, relu, truncate, d_pre, dh_total, dx, dh0[b0:b1], b0, b1))
    rows = d_pre.reshape(T * B, H)
    if not per_step_input:
        dx = matmul_rows(rows, w_ih, n_threads).reshape(T, B, I)
    dw_ih = matmul_tn_rows(rows, x.reshape(T * B, I), n_threads)
    dw_hh = matmul_tn_rows(rows, hs[:T].reshape(T * B, H), n_threads)
    return dx, dw_ih, dw_hh, rows.sum(axis=0), dh0, dh_total
