"""LSTM on the GPU, forward and backward through time: the twin of :mod:`rnnlab.kernels.lstm`.

    i_t = sigma(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
    f_t = sigma(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
    g_t = tanh (W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
    o_t = sigma(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

Shapes and records exactly as the CPU kernels: x (T, B, I); w_ih (4H, I); w_hh (4H, H);
bias (4H,) = b_ih + b_hh; h0, c0 (B, H); hs, cs (T+1, B, H); gates (4, T, B, H) holding i, f, g, o.

Structure. Forward: one GEMM for the input projections of all T*B rows (bias folded in); then
per step ONE launch in which thread (b, j) computes the four recurrent dot products of unit j,
(W_hh h_{t-1})[gH + j], fused with the gate and cell math, everything staying on the device.
When B*H is small (<= 1024 units) a single-block *persistent* kernel runs all T steps in one
launch instead, with ``syncthreads`` as the per-step barrier (after Diamos et al. 2016, in its
simplest, single-block form: no launch per step; the weights are re-read each step through the
L1/L2 caches rather than pinned in registers or shared memory). Backward: per step (last to first) one launch that fuses
dL/dh_s's recurrent term, sum_m dL/dpre_{s+1}[m] W_hh[m, k], with the gate derivatives of unit k;
then dL/dh_0 and the weight gradients as GEMMs over all steps.

``lstm_forward``/``lstm_backward`` take and return host (NumPy) arrays, with the signatures of
the CPU kernels (``n_threads`` is accepted and ignored); ``*_device`` variants take and return
numba device arrays and leave everything on the GPU.
"""

from __future__ import annotations

import functools

from ._common import (check_dtype, column_sums, cuda, device_copy, for_dtype, gemm,
                      launch_2d, persistent_threads, recurrent_grad, rows, to_device, transpose,
                      use_persistent)


@functools.cache
def _kernels(dtype_name: str):
    k = for_dtype(dtype_name)
    sigmoid, tanh, zero, one = k.sigmoid, k.tanh, k.zero, k.one

    @cuda.jit(device=True)
    def unit_forward(t, b, j, x_proj, w_hh_t, hs, cs, gates):
        """Step t of hidden unit j of sequence b: its four gates, c_t and h_t.

        x_proj (T, B, 4H) = W_ih x + b; w_hh_t (H, 4H) = W_hh^T (threads of adjacent j read
        adjacent weights).
        """
        H = hs.shape[2]
        zi = zero  # (W_hh h_{t-1}) for each gate's row of unit j
        zf = zero
        zg = zero
        zo = zero
        for m in range(H):
            h_m = hs[t, b, m]
            zi += w_hh_t[m, j] * h_m
            zf += w_hh_t[m, H + j] * h_m
            zg += w_hh_t[m, 2 * H + j] * h_m
            zo += w_hh_t[m, 3 * H + j] * h_m
        i = sigmoid(zi + x_proj[t, b, j])
        f = sigmoid(zf + x_proj[t, b, H + j])
        g = tanh(zg + x_proj[t, b, 2 * H + j])
        o = sigmoid(zo + x_proj[t, b, 3 * H + j])
        c = f * cs[t, b, j] + i * g
        cs[t + 1, b, j] = c
        hs[t + 1, b, j] = o * tanh(c)
        gates[0, t, b, j] = i
        gates[1, t, b, j] = f
        gates[2, t, b, j] = g
        gates[3, t, b, j] = o

    @cuda.jit
    def forward_step(t, x_proj, w_hh_t, hs, cs, gates):
        """Step t for every (sequence b, unit j): thread x along j, y along b."""
        j, b = cuda.grid(2)
        if b < hs.shape[1] and j < hs.shape[2]:
            unit_forward(t, b, j, x_proj, w_hh_t, hs, cs, gates)

    @cuda.jit
    def forward_persistent(x_proj, w_hh_t, hs, cs, gates):
        """All T steps in one launch of ONE block: each thread takes units u = b*H + j in turn."""
        B = hs.shape[1]
        H = hs.shape[2]
        for t in range(x_proj.shape[0]):
            for u in range(cuda.threadIdx.x, B * H, cuda.blockDim.x):
                unit_forward(t, u // H, u % H, x_proj, w_hh_t, hs, cs, gates)
            cuda.syncthreads()  # h_t complete before any thread reads it at step t+1

    @cuda.jit(device=True)
    def unit_backward(s, b, k, truncate, w_hh, cs, gates, dy, d_pre, dh_total, dh_n, dc_carry):
        """Step s (counting down) of unit k of sequence b.

        dL/dh_s = dy_s + sum_m dL/dpre_{s+1}[m] W_hh[m, k]  (dh_n at s = T-1; 0 across a cut)
        dL/dc_s = dL/dc_s (from s+1: dc_{s+1} f_{s+1}) + dL/dh_s o_s tanh'(c_s)
        and the pre-activation gradients of i, f, g, o into d_pre[s, b, gH + k].
        dc_carry[b, k] enters holding dL/dc_{s} through c_{s+1} (dc_n at s = T-1) and leaves
        holding dL/dc_{s-1} through c_s.
        """
        T = dy.shape[0]
        H = dy.shape[2]
        if s == T - 1:  # the gradient on the final state
            dh_in = dh_n[b, k]
            dc_in = dc_carry[b, k]
        elif truncate > 0 and (s + 1) % truncate == 0:  # cut: nothing crosses from step s+1 to s
            dh_in = zero
            dc_in = zero
        else:
            dh_in = zero
            for m in range(4 * H):
                dh_in += d_pre[s + 1, b, m] * w_hh[m, k]
            dc_in = dc_carry[b, k]
        dh = dy[s, b, k] + dh_in
        dh_total[s, b, k] = dh
        i = gates[0, s, b, k]
        f = gates[1, s, b, k]
        g = gates[2, s, b, k]
        o = gates[3, s, b, k]
        tanh_c = tanh(cs[s + 1, b, k])
        dc = dc_in + dh * o * (one - tanh_c * tanh_c)
        d_pre[s, b, k] = dc * g * i * (one - i)  # i = sigma(.)
        d_pre[s, b, H + k] = dc * cs[s, b, k] * f * (one - f)  # f
        d_pre[s, b, 2 * H + k] = dc * i * (one - g * g)  # g = tanh(.)
        d_pre[s, b, 3 * H + k] = dh * tanh_c * o * (one - o)  # o
        dc_carry[b, k] = dc * f

    @cuda.jit
    def backward_step(s, truncate, w_hh, cs, gates, dy, d_pre, dh_total, dh_n, dc_carry):
        """Step s of BPTT for every (sequence b, unit k)."""
        k, b = cuda.grid(2)
        if b < dy.shape[1] and k < dy.shape[2]:
            unit_backward(s, b, k, truncate, w_hh, cs, gates, dy, d_pre, dh_total, dh_n, dc_carry)

    @cuda.jit
    def backward_persistent(truncate, w_hh, cs, gates, dy, d_pre, dh_total, dh_n, dc_carry):
        """All T steps of BPTT in one launch of ONE block."""
        B = dy.shape[1]
        H = dy.shape[2]
        for s in range(dy.shape[0] - 1, -1, -1):
            for u in range(cuda.threadIdx.x, B * H, cuda.blockDim.x):
                unit_backward(s, u // H, u % H, truncate, w_hh, cs, gates, dy, d_pre, dh_total, dh_n, dc_carry)
            cuda.syncthreads()  # d_pre[s] complete before step s-1 reads it

    return forward_step, forward_persistent, backward_step, backward_persistent


def lstm_forward_device(x, w_ih, w_hh, bias, h0, c0, persistent: bool | None = None):
    """:func:`lstm_forward` on device arrays; returns device arrays (hs, cs, gates).

    ``persistent``: True runs all steps in one single-block launch, False one launch per step,
    None picks the persistent kernel when B*H <= 1024.
    """
    T, B, I = x.shape
    H = h0.shape[1]
    forward_step, forward_persistent, _, _ = _kernels(x.dtype.name)
    x_proj = gemm(rows(x), w_ih, trans_b=True, bias=bias).reshape(T, B, 4 * H)  # W_ih x_t + b, all t
    w_hh_t = transpose(w_hh)  # (H, 4H)
    hs = cuda.device_array((T + 1, B, H), x.dtype)
    cs = cuda.device_array((T + 1, B, H), x.dtype)
    gates = cuda.device_array((4, T, B, H), x.dtype)
    hs[0].copy_to_device(h0)
    cs[0].copy_to_device(c0)
    if use_persistent(B, H, persistent):
        forward_persistent[1, persistent_threads(B * H)](x_proj, w_hh_t, hs, cs, gates)
    else:
        forward_step_launch = forward_step[launch_2d(H, B)]  # configured once, launched every step
        for t in range(T):
            forward_step_launch(t, x_proj, w_hh_t, hs, cs, gates)
    return hs, cs, gates


def lstm_backward_device(x, w_ih, w_hh, hs, cs, gates, dy, dh_n, dc_n, truncate, persistent: bool | None = None):
    """:func:`lstm_backward` on device arrays; returns device arrays (dx, dw_ih, dw_hh, dbias, dh0, dc0, dh)."""
    T, B, I = x.shape
    H = hs.shape[2]
    _, _, backward_step, backward_persistent = _kernels(x.dtype.name)
    d_pre = cuda.device_array((T, B, 4 * H), x.dtype)  # dL/d(pre-activation) of i, f, g, o per step
    dh_total = cuda.device_array((T, B, H), x.dtype)
    dc_carry = device_copy(dc_n)  # ends as dL/dc_0
    truncate = int(truncate)
    if use_persistent(B, H, persistent):
        backward_persistent[1, persistent_threads(B * H)](truncate, w_hh, cs, gates, dy, d_pre, dh_total, dh_n,
                                                          dc_carry)
    else:
        backward_step_launch = backward_step[launch_2d(H, B)]  # configured once, launched every step
        for s in range(T - 1, -1, -1):
            backward_step_launch(s, truncate, w_hh, cs, gates, dy, d_pre, dh_total, dh_n, dc_carry)
    dh0 = recurrent_grad(d_pre[0], w_hh)  # the first step's gradient through the recurrence
    d_rows = rows(d_pre)
    dx = gemm(d_rows, w_ih).reshape(T, B, I)
    dw_ih = gemm(d_rows, rows(x), trans_a=True)
    dw_hh = gemm(d_rows, rows(hs[:T]), trans_a=True)
    return dx, dw_ih, dw_hh, column_sums(d_rows), dh0, dc_carry, dh_total


def lstm_forward(x, w_ih, w_hh, bias, h0, c0, n_threads=None, *, persistent: bool | None = None):
    """Run the LSTM over x on the GPU; return host arrays (hs, cs, gates) as ``kernels.lstm_forward``."""
    check_dtype(x=x, w_ih=w_ih, w_hh=w_hh, bias=bias, h0=h0, c0=c0)
    out = lstm_forward_device(*(to_device(a) for a in (x, w_ih, w_hh, bias, h0, c0)), persistent=persistent)
    return tuple(a.copy_to_host() for a in out)


def lstm_backward(x, w_ih, w_hh, hs, cs, gates, dy, dh_n, dc_n, truncate, n_threads=None, *,
                  persistent: bool | None = None):
    """BPTT on the GPU; arguments and host-array results (dx, dw_ih, dw_hh, dbias, dh0, dc0, dh) as
    ``kernels.lstm_backward`` (``truncate`` k > 0 cuts the recurrent gradient every k steps)."""
    check_dtype(x=x, w_ih=w_ih, w_hh=w_hh, hs=hs, cs=cs, gates=gates, dy=dy, dh_n=dh_n, dc_n=dc_n)
    out = lstm_backward_device(*(to_device(a) for a in (x, w_ih, w_hh, hs, cs, gates, dy, dh_n, dc_n)),
                               truncate, persistent=persistent)
    return tuple(a.copy_to_host() for a in out)
