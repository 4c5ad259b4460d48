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

Structure: per step a register-blocked product (:mod:`._gemm`) and the gate math; after the
reverse time loop, the weight gradients as GEMMs over all steps. The input side (W_ih x_t going
forward, dL/dx_t going back) runs inside each step from a batch of PER_STEP_INPUT_BATCH up,
accumulated with the recurrent product; a smaller batch does it as one GEMM over all steps.
``lstm_forward``/``lstm_backward`` orchestrate; the compiled time loops
(``lstm_forward_steps``/``lstm_backward_steps``) each run one chunk of independent sequences,
chunks on separate threads when the batch is big enough. When nothing would be split across
threads (small batch and sizes), ``lstm_forward_one``/``lstm_backward_one`` do the whole call in
one compiled function: the same operations in the same order, without the Python in between.
"""

from __future__ import annotations

import numpy as np

from ._common import (PER_STEP_INPUT_BATCH, add_row, column_sums, fits_one_thread, input_projection, matmul_rows,
                      matmul_tn_rows, run_batch_chunks, scalar_like)
from ._gemm import matmul_add_into, matmul_into, pack_panels, pack_panels_t
from ._jit import helper, jit
from ._math import sigmoid, tanh


@jit
def lstm_forward_steps(x, w_ih_p, x_proj, w_hh_p, bias, hs, cs, gates, b0, b1):
    """The time loop for sequences b0..b1-1 (one thread's share of the batch).

    The input projection comes one of two ways. ``x_proj`` (T, B, 4H) holds W_ih x_t + bias for
    every step, computed beforehand as one GEMM (best for a batch of 1-3: the per-step product
    would re-read W_ih for a single row). Or ``x_proj`` is None and each step projects its own
    rows, W_ih x_t then + W_hh h_{t-1} in one accumulation (``w_ih_p`` packed W_ih^T), with
    ``bias`` added in the gate loop: no (T, B, 4H) array written and read back.

    One loop per equation, each touching few arrays: a loop that reads and writes many arrays
    exceeds LLVM's budget of runtime alias checks and silently stays scalar (5-8x slower).
    """
    T = hs.shape[0] - 1
    H = hs.shape[2]
    pre = np.empty((b1 - b0, 4 * H), hs.dtype)  # W_hh h_{t-1} (+ W_ih x_t)
    for t in range(T):
        if w_ih_p is not None:  # (numba prunes branches on an argument that is None)
            matmul_into(x[t, b0:b1], w_ih_p, pre)
            matmul_add_into(hs[t, b0:b1], w_hh_p, pre)
        else:
            matmul_into(hs[t, b0:b1], w_hh_p, pre)
        for b in range(b0, b1):
            z = pre[b - b0]
            a = bias if x_proj is None else x_proj[t, b]
            i, f, g, o = gates[0, t, b], gates[1, t, b], gates[2, t, b], gates[3, t, b]
            # every range starts at 0, offsets go in the index: `for j in range(2 * H, 3 * H)`
            # did not vectorise (measured 3-5x slower per element)
            for j in range(H):
                i[j] = sigmoid(z[j] + a[j])
            for j in range(H):
                f[j] = sigmoid(z[H + j] + a[H + j])
            for j in range(H):
                g[j] = tanh(z[2 * H + j] + a[2 * H + j])
            for j in range(H):
                o[j] = sigmoid(z[3 * H + j] + a[3 * H + j])
            c_prev, c_t, h_t = cs[t, b], cs[t + 1, b], hs[t + 1, b]
            for j in range(H):  # c_t = f * c_{t-1} + i * g
                c_t[j] = f[j] * c_prev[j] + i[j] * g[j]
            for j in range(H):  # h_t = o * tanh(c_t)
                h_t[j] = o[j] * tanh(c_t[j])


@helper
def _new_records(T, h0, c0):
    """hs, cs (T+1, B, H) starting at h0, c0, and gates (4, T, B, H), to be filled by the time loop."""
    B, H = h0.shape
    hs = np.empty((T + 1, B, H), h0.dtype)
    cs = np.empty((T + 1, B, H), h0.dtype)
    gates = np.empty((4, T, B, H), h0.dtype)
    hs[0] = h0
    cs[0] = c0
    return hs, cs, gates


@jit
def lstm_forward_one(x, w_ih, w_hh, bias, h0, c0):
    """:func:`lstm_forward` on one thread, in one compiled call."""
    T, B, I = x.shape
    H = h0.shape[1]
    hs, cs, gates = _new_records(T, h0, c0)
    w_hh_p = pack_panels_t(w_hh)  # W_hh^T (H, 4H) packed: row k holds h_k's weights into every gate
    if B >= PER_STEP_INPUT_BATCH:
        lstm_forward_steps(x, pack_panels_t(w_ih), None, w_hh_p, bias, hs, cs, gates, 0, B)
    else:
        x_proj = np.empty((T * B, 4 * H), x.dtype)  # W_ih x_t + b_ih + b_hh for every step
        np.dot(x.reshape(T * B, I), w_ih.T, x_proj)
        add_row(x_proj, bias)
        lstm_forward_steps(x, None, x_proj.reshape(T, B, 4 * H), w_hh_p, bias, hs, cs, gates, 0, B)
    return hs, cs, gates


def lstm_forward(x, w_ih, w_hh, bias, h0, c0, n_threads):
    """Run the LSTM over x; return (hs, cs, gates) as described in the module docstring."""
    T, B, I = x.shape
    H = h0.shape[1]
    per_step_input = B >= PER_STEP_INPUT_BATCH
    work = 4 * H * (H + I) if per_step_input else 4 * H * H  # multiply-adds per sequence and step
    if fits_one_thread(B, T, work, () if per_step_input else (4 * H * I,), n_threads):
        return lstm_forward_one(x, w_ih, w_hh, bias, h0, c0)
    hs, cs, gates = _new_records(T, h0, c0)
    w_hh_p = pack_panels_t(w_hh)  # W_hh^T (H, 4H) packed: row k holds h_k's weights into every gate
    if per_step_input:
        w_ih_p = pack_panels_t(w_ih)
        run_batch_chunks(B, work, n_threads, lambda b0, b1: lstm_forward_steps(
            x, w_ih_p, None, w_hh_p, bias, hs, cs, gates, b0, b1))
    else:
        x_proj = input_projection(x, w_ih, bias, n_threads)
        run_batch_chunks(B, work, n_threads, lambda b0, b1: lstm_forward_steps(
            x, None, x_proj, w_hh_p, bias, hs, cs, gates, b0, b1))
    return hs, cs, gates


@jit
def lstm_backward_steps(w_hh_p, w_ih_p, cs, gates, dy, truncate, d_pre, dh_total, dx, dh_next, dc_next, b0, b1):
    """The reverse time loop for sequences b0..b1-1; dh_next, dc_next (b1-b0, H) enter holding
    dL/dh_T, dL/dc_T and leave holding dL/dh_0, dL/dc_0. One loop per equation (see forward).

    With ``w_ih_p`` (packed W_ih) each step also writes dx[t] = d_pre[t] @ W_ih while d_pre[t]
    is in cache; with None, dx is left to one GEMM after the loop.
    """
    T = dy.shape[0]
    H = dy.shape[2]
    one = scalar_like(1.0, dy)
    tanh_c = np.empty(H, dy.dtype)
    dc = np.empty(H, dy.dtype)
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            i, f, g, o = gates[0, t, b], gates[1, t, b], gates[2, t, b], gates[3, t, b]
            c_prev, c_now = cs[t, b], cs[t + 1, b]
            dh = dh_total[t, b]
            da = d_pre[t, b]  # dL/d(pre-activation) of i, f, g, o
            dh_in = dh_next[b - b0]
            dc_in = dc_next[b - b0]
            for j in range(H):  # dL/dh_t: from outside plus through the recurrence
                dh[j] = dy[t, b, j] + dh_in[j]
            for j in range(H):
                tanh_c[j] = tanh(c_now[j])
            for j in range(H):  # dL/dc_t = dL/dc_t (from t+1) + dL/dh_t * o * tanh'(c_t)
                dc[j] = dc_in[j] + dh[j] * o[j] * (one - tanh_c[j] * tanh_c[j])
            for j in range(H):  # i = sigma(.): dc * g * sigma'
                da[j] = dc[j] * g[j] * i[j] * (one - i[j])
            for j in range(H):  # f
                da[H + j] = dc[j] * c_prev[j] * f[j] * (one - f[j])
            for j in range(H):  # g = tanh(.)
                da[2 * H + j] = dc[j] * i[j] * (one - g[j] * g[j])
            for j in range(H):  # o
                da[3 * H + j] = dh[j] * tanh_c[j] * o[j] * (one - o[j])
            for j in range(H):  # dL/dc_{t-1}
                dc_in[j] = dc[j] * f[j]
        if w_ih_p is not None:
            matmul_into(d_pre[t, b0:b1], w_ih_p, dx[t, b0:b1])  # dL/dx_t
        matmul_into(d_pre[t, b0:b1], w_hh_p, dh_next)  # dL/dh_{t-1} through the recurrence
        if truncate > 0 and t > 0 and t % truncate == 0:
            dh_next[:] = 0
            dc_next[:] = 0


@jit
def lstm_backward_one(x, w_ih, w_hh, hs, cs, gates, dy, dh_n, dc_n, truncate):
    """:func:`lstm_backward` on one thread, in one compiled call."""
    T, B, I = x.shape
    H = hs.shape[2]
    d_pre = np.empty((T, B, 4 * H), x.dtype)
    dh_total = np.empty((T, B, H), x.dtype)
    dx = np.empty((T, B, I), x.dtype)
    dh0 = dh_n.copy()
    dc0 = dc_n.copy()
    d_rows = d_pre.reshape(T * B, 4 * H)
    if B >= PER_STEP_INPUT_BATCH:
        lstm_backward_steps(pack_panels(w_hh), pack_panels(w_ih), cs, gates, dy, truncate, d_pre, dh_total, dx,
                            dh0, dc0, 0, B)
    else:
        lstm_backward_steps(pack_panels(w_hh), None, cs, gates, dy, truncate, d_pre, dh_total, dx, dh0, dc0, 0, B)
        np.dot(d_rows, w_ih, dx.reshape(T * B, I))
    dw_ih = np.empty((4 * H, I), x.dtype)
    np.dot(d_rows.T, x.reshape(T * B, I), dw_ih)
    dw_hh = np.empty((4 * H, H), x.dtype)
    np.dot(d_rows.T, hs.reshape((T + 1) * B, H)[: T * B], dw_hh)
    return dx, dw_ih, dw_hh, column_sums(d_rows), dh0, dc0, dh_total


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
    per_step_input = B >= PER_STEP_INPUT_BATCH
    work = 4 * H * (H + I) if per_step_input else 4 * H * H
    if fits_one_thread(B, T, work, (4 * H * I, 4 * H * H), n_threads):  # dW_ih and dW_hh (and dx) GEMMs
        return lstm_backward_one(x, w_ih, w_hh, hs, cs, gates, dy, dh_n, dc_n, truncate)
    d_pre = np.empty((T, B, 4 * H), x.dtype)  # dL/d(pre-activation) of i, f, g, o per step
    dh_total = np.empty((T, B, H), x.dtype)
    dx = np.empty((T, B, I), x.dtype)
    dh0 = dh_n.copy()  # carries dL/dh_{t-1} back through the loop, ends as dL/dh_0
    dc0 = dc_n.copy()
    w_hh_p = pack_panels(w_hh)
    w_ih_p = pack_panels(w_ih) if per_step_input else None
    run_batch_chunks(B, work, n_threads, lambda b0, b1: lstm_backward_steps(
        w_hh_p, w_ih_p, cs, gates, dy, truncate, d_pre, dh_total, dx, dh0[b0:b1], dc0[b0:b1], b0, b1))
    d_rows = d_pre.reshape(T * B, 4 * H)
    if not per_step_input:
        dx = matmul_rows(d_rows, w_ih, n_threads).reshape(T, B, I)
    dw_ih = matmul_tn_rows(d_rows, x.reshape(T * B, I), n_threads)
    dw_hh = matmul_tn_rows(d_rows, hs[:T].reshape(T * B, H), n_threads)
    dbias = d_rows.sum(axis=0)
    return dx, dw_ih, dw_hh, dbias, dh0, dc0, dh_total
