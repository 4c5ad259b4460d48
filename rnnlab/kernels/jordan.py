"""Jordan network: the previous OUTPUT, not the hidden state, feeds back. Forward and backward.

    h_t = tanh(W_ih x_t + W_yh f_{t-1} + b)           b = b_ih + b_yh                 (B, H)
    y_t = W_out h_t + b_out                                                            (B, O)

f_{t-1} is what step t reads back: under teacher forcing the previous TARGET (given: no recurrence
at all, every step is independent, so training needs no BPTT); running free, the model's own
previous output, f_t = y_t (``softmax=False``) or f_t = softmax(y_t) (``softmax=True``, for
classes), and then the gradient flows back through the outputs (BPTT through f).

Shapes: x (T, B, I); w_ih (H, I); w_yh (H, O); bias (H,); w_out (O, H); b_out (O,); fs (T+1, B, O)
with fs[0] = f_{-1} (the initial feedback, y0) and fs[t+1] = f_t. Records: hs (T, B, H), ys (T, B, O).
"""

from __future__ import annotations

import numpy as np

from ._common import (add_row, input_projection, matmul_rows, matmul_tn_rows, run_batch_chunks, scalar_like,
                      sum_of, tanh_inplace)
from ._gemm import matmul_into, pack_panels, pack_panels_t
from ._jit import helper, jit
from ._math import tanh


@helper
def _softmax_row(y, out):
    """out = softmax(y) for one row (shifted by its maximum)."""
    m = y[0]
    for k in range(1, y.shape[0]):
        m = max(m, y[k])
    for k in range(y.shape[0]):
        out[k] = np.exp(y[k] - m)
    total = sum_of(out, y.shape[0])  # not summed in the loop above: see sum_of
    for k in range(y.shape[0]):
        out[k] /= total


def jordan_forward_teacher(x, f_prev, w_ih, w_yh, bias, w_out, b_out, n_threads):
    """Teacher forcing: f_prev (T, B, O) given (f_prev[t] = f_{t-1}); every step at once.
    Returns (hs (T, B, H), ys (T, B, O))."""
    T, B, I = x.shape
    O = f_prev.shape[2]
    H = w_ih.shape[0]
    pre = matmul_rows(x.reshape(T * B, I), w_ih.T, n_threads)
    pre += matmul_rows(f_prev.reshape(T * B, O), w_yh.T, n_threads)
    add_row(pre, bias)
    tanh_inplace(pre)
    ys = matmul_rows(pre, w_out.T, n_threads)
    add_row(ys, b_out)
    return pre.reshape(T, B, H), ys.reshape(T, B, O)


@jit
def jordan_free_steps(x_proj, w_yh_p, w_out_p, b_out, softmax, hs, ys, fs, b0, b1):
    """The time loop for sequences b0..b1-1: f_{t-1} -> h_t -> y_t -> f_t."""
    T = x_proj.shape[0]
    H = hs.shape[2]
    O = ys.shape[2]
    fb = np.empty((b1 - b0, H), hs.dtype)  # W_yh f_{t-1}
    for t in range(T):
        matmul_into(fs[t, b0:b1], w_yh_p, fb)
        for b in range(b0, b1):
            h_t = hs[t, b]
            xp = x_proj[t, b]  # W_ih x_t + b
            for j in range(H):
                h_t[j] = tanh(xp[j] + fb[b - b0, j])
        matmul_into(hs[t, b0:b1], w_out_p, ys[t, b0:b1])
        for b in range(b0, b1):
            y_t = ys[t, b]
            for k in range(O):
                y_t[k] += b_out[k]
            if softmax:
                _softmax_row(y_t, fs[t + 1, b])
            else:
                for k in range(O):
                    fs[t + 1, b, k] = y_t[k]


def jordan_forward_free(x, w_ih, w_yh, bias, w_out, b_out, f0, softmax, n_threads):
    """Running free: each step reads back f_{t-1} = y_{t-1} (or its softmax), f_{-1} = f0 (B, O).
    Returns (hs (T, B, H), ys (T, B, O), fs (T+1, B, O))."""
    T, B, I = x.shape
    H, O = w_ih.shape[0], w_out.shape[0]
    x_proj = input_projection(x, w_ih, bias, n_threads)
    hs = np.empty((T, B, H), x.dtype)
    ys = np.empty((T, B, O), x.dtype)
    fs = np.empty((T + 1, B, O), x.dtype)
    fs[0] = f0
    w_yh_p, w_out_p = pack_panels_t(w_yh), pack_panels_t(w_out)  # W_yh^T, W_out^T as panels
    run_batch_chunks(B, 2 * H * O, n_threads, lambda b0, b1: jordan_free_steps(
        x_proj, w_yh_p, w_out_p, b_out, softmax, hs, ys, fs, b0, b1))
    return hs, ys, fs


@jit
def jordan_free_backward_steps(w_yh_p, w_out_p, softmax, hs, fs, d_out, d_y, d_pre, b0, b1):
    """Reverse time loop through the fed-back outputs: d_y[t] = d_out[t] + (df_t/dy_t)^T W_yh^T d_pre[t+1];
    d_pre[t] = (W_out^T d_y[t]) * (1 - h_t^2)."""
    T = d_out.shape[0]
    H = hs.shape[2]
    O = d_out.shape[2]
    one = scalar_like(1.0, hs)
    df = np.zeros((b1 - b0, O), hs.dtype)  # dL/df_t from step t+1 (none after the last step)
    dh = np.empty((b1 - b0, H), hs.dtype)
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            g = df[b - b0]
            dy = d_y[t, b]
            if softmax:  # f = softmax(y): dL/dy = p * (g - p.g)
                p = fs[t + 1, b]
                pg = scalar_like(0.0, hs)
                for k in range(O):
                    pg += p[k] * g[k]
                for k in range(O):
                    dy[k] = d_out[t, b, k] + p[k] * (g[k] - pg)
            else:
                for k in range(O):
                    dy[k] = d_out[t, b, k] + g[k]
        matmul_into(d_y[t, b0:b1], w_out_p, dh)
        for b in range(b0, b1):
            h_t = hs[t, b]
            dp = d_pre[t, b]
            for j in range(H):
                dp[j] = dh[b - b0, j] * (one - h_t[j] * h_t[j])
        matmul_into(d_pre[t, b0:b1], w_yh_p, df)


def jordan_backward(x, fs, hs, w_ih, w_yh, w_out, d_out, free, softmax, n_threads):
    """Gradients of ``sum(y * d_out)``: teacher forcing (``free=False``: f given, steps independent)
    or running free (``free=True``: through the fed-back outputs, f_t = y_t or softmax(y_t)).

    ``fs`` (T+1, B, O): fs[t] is the f_{t-1} step t read. Returns (dx, dw_ih, dw_yh, dbias,
    dw_out, db_out, df, d_y) where df (T, B, O) is dL/df_{t-1} through step t's W_yh (df[0] =
    dL/df_{-1}, the initial feedback's gradient; under teacher forcing, the gradient with respect
    to the fed targets, which training does not use) and d_y (T, B, O) the total dL/dy_t.
    """
    T, B, I = x.shape
    H, O = hs.shape[2], d_out.shape[2]
    d_out = np.ascontiguousarray(d_out)
    if free:
        d_y = np.empty((T, B, O), x.dtype)
        d_pre = np.empty((T, B, H), x.dtype)
        w_yh_p, w_out_p = pack_panels(w_yh), pack_panels(w_out)  # packed for matmul_into
        run_batch_chunks(B, 2 * H * O, n_threads, lambda b0, b1: jordan_free_backward_steps(
            w_yh_p, w_out_p, softmax, hs, fs, d_out, d_y, d_pre, b0, b1))
        d_pre = d_pre.reshape(T * B, H)
    else:
        d_y = d_out
        d_pre = matmul_rows(d_out.reshape(T * B, O), w_out, n_threads)
        h = hs.reshape(T * B, H)
        d_pre *= 1 - h * h
    rows_y = d_y.reshape(T * B, O)
    h = hs.reshape(T * B, H)
    dx = matmul_rows(d_pre, w_ih, n_threads).reshape(T, B, I)
    dw_ih = matmul_tn_rows(d_pre, x.reshape(T * B, I), n_threads)
    dw_yh = matmul_tn_rows(d_pre, np.ascontiguousarray(fs[:T]).reshape(T * B, O), n_threads)
    dw_out = matmul_tn_rows(rows_y, h, n_threads)
    df = matmul_rows(d_pre, w_yh, n_threads).reshape(T, B, O)
    return dx, dw_ih, dw_yh, d_pre.sum(axis=0), dw_out, rows_y.sum(axis=0), df, d_y
