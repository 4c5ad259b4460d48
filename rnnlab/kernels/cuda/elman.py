"""Elman RNN on the GPU, forward and backward through time: the twin of :mod:`rnnlab.kernels.elman`.

    h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),   act = tanh (relu=False) or relu (relu=True)

Shapes and records exactly as the CPU kernels: x (T, B, I); w_ih (H, I); w_hh (H, H);
bias (H,) = b_ih + b_hh; h0 (B, H); hs (T+1, B, H) with hs[0] = h0.
Structure (one input GEMM; per step one fused launch, or one single-block persistent launch for
B*H <= 1024; weight gradients as GEMMs) as in :mod:`rnnlab.kernels.cuda.lstm`.
"""

from __future__ import annotations

import functools

from ._common import (check_dtype, column_sums, cuda, for_dtype, gemm, launch_2d,
                      persistent_threads, recurrent_grad, rows, to_device, transpose,
                      use_persistent)


@functools.cache
def _kernels(dtype_name: str):
    k = for_dtype(dtype_name)
    tanh, zero, one = k.tanh, k.zero, k.one

    @cuda.jit(device=True)
    def unit_forward(t, b, j, relu, x_proj, w_hh_t, hs):
        """h_t[b, j] = act(x_proj[t, b, j] + sum_m W_hh[j, m] h_{t-1}[b, m]); w_hh_t (H, H) = W_hh^T."""
        H = hs.shape[2]
        p = zero  # (W_hh h_{t-1})[j]
        for m in range(H):
            p += w_hh_t[m, j] * hs[t, b, m]
        a = x_proj[t, b, j] + p
        hs[t + 1, b, j] = max(a, zero) if relu else tanh(a)

    @cuda.jit
    def forward_step(t, relu, x_proj, w_hh_t, hs):
        j, b = cuda.grid(2)
        if b < hs.shape[1] and j < hs.shape[2]:
            unit_forward(t, b, j, relu, x_proj, w_hh_t, hs)

    @cuda.jit
    def forward_persistent(relu, x_proj, w_hh_t, hs):
        B = hs.shape[1]
        H = hs.shape[2]
        for t in range(x_proj.shape[0]):
            for u in range(cuda.threadIdx.x, B * H, cuda.blockDim.x):
                unit_forward(t, u // H, u % H, relu, x_proj, w_hh_t, hs)
            cuda.syncthreads()

    @cuda.jit(device=True)
    def unit_backward(s, b, k, relu, truncate, w_hh, hs, dy, d_pre, dh_total, dh_n):
        """dL/dh_s = dy_s + sum_m dL/da_{s+1}[m] W_hh[m, k] (dh_n at s = T-1; 0 across a cut);
        dL/da_s = dL/dh_s * act'(a_s), from h_s: 1 - h^2 (tanh) or [h > 0] (relu)."""
        T = dy.shape[0]
        H = dy.shape[2]
        if s == T - 1:
            dh_in = dh_n[b, k]
        elif truncate > 0 and (s + 1) % truncate == 0:
            dh_in = zero
        else:
            dh_in = zero
            for m in range(H):
                dh_in += d_pre[s + 1, b, m] * w_hh[m, k]
        dh = dy[s, b, k] + dh_in
        dh_total[s, b, k] = dh
        h = hs[s + 1, b, k]
        if relu:
            d_pre[s, b, k] = dh if h > zero else zero
        else:
            d_pre[s, b, k] = dh * (one - h * h)

    @cuda.jit
    def backward_step(s, relu, truncate, w_hh, hs, dy, d_pre, dh_total, dh_n):
        k, b = cuda.grid(2)
        if b < dy.shape[1] and k < dy.shape[2]:
            unit_backward(s, b, k, relu, truncate, w_hh, hs, dy, d_pre, dh_total, dh_n)

    @cuda.jit
    def backward_persistent(relu, truncate, w_hh, hs, dy, d_pre, dh_total, dh_n):
        B = dy.shape[1]
        H = dy.shape[2]
        for s in range(dy.shape[0] - 1, -1, -1):
            for u in range(cuda.threadIdx.x, B * H, cuda.blockDim.x):
                unit_backward(s, u // H, u % H, relu, truncate, w_hh, hs, dy, d_pre, dh_total, dh_n)
            cuda.syncthreads()

    return forward_step, forward_persistent, backward_step, backward_persistent


def elman_forward_device(x, w_ih, w_hh, bias, h0, relu, persistent: bool | None = None):
    """:func:`elman_forward` on device arrays; returns the device array hs (``persistent`` as in lstm)."""
    T, B, I = x.shape
    H = h0.shape[1]
    relu = bool(relu)
    forward_step, forward_persistent, _, _ = _kernels(x.dtype.name)
    x_proj = gemm(rows(x), w_ih, trans_b=True, bias=bias).reshape(T, B, H)
    w_hh_t = transpose(w_hh)
    hs = cuda.device_array((T + 1, B, H), x.dtype)
    hs[0].copy_to_device(h0)
    if use_persistent(B, H, persistent):
        forward_persistent[1, persistent_threads(B * H)](relu, x_proj, w_hh_t, hs)
    else:
        forward_step_launch = forward_step[launch_2d(H, B)]  # configured once, launched every step
        for t in range(T):
            forward_step_launch(t, relu, x_proj, w_hh_t, hs)
    return hs


def elman_backward_device(x, w_ih, w_hh, hs, dy, dh_n, relu, truncate, persistent: bool | None = None):
    """:func:`elman_backward` on device arrays; returns device arrays (dx, dw_ih, dw_hh, dbias, dh0, dh)."""
    T, B, I = x.shape
    H = hs.shape[2]
    relu = bool(relu)
    truncate = int(truncate)
    _, _, backward_step, backward_persistent = _kernels(x.dtype.name)
    d_pre = cuda.device_array((T, B, H), x.dtype)
    dh_total = cuda.device_array((T, B, H), x.dtype)
    if use_persistent(B, H, persistent):
        backward_persistent[1, persistent_threads(B * H)](relu, truncate, w_hh, hs, dy, d_pre, dh_total, dh_n)
    else:
        backward_step_launch = backward_step[launch_2d(H, B)]  # configured once, launched every step
        for s in range(T - 1, -1, -1):
            backward_step_launch(s, relu, truncate, w_hh, hs, dy, d_pre, dh_total, dh_n)
    dh0 = recurrent_grad(d_pre[0], w_hh)
    d_rows = rows(d_pre)
    dx = gemm(d_rows, w_ih).reshape(T, B, I)
    dw_ih = gemm(d_rows, rows(x), trans_a=True)
    dw_hh = gemm(d_rows, rows(hs[:T]), trans_a=True)
    return dx, dw_ih, dw_hh, column_sums(d_rows), dh0, dh_total


def elman_forward(x, w_ih, w_hh, bias, h0, relu, n_threads=None, *, persistent: bool | None = None):
    """Run the Elman RNN over x on the GPU; return the host array hs (T+1, B, H) as ``kernels.elman_forward``."""
    check_dtype(x=x, w_ih=w_ih, w_hh=w_hh, bias=bias, h0=h0)
    hs = elman_forward_device(*(to_device(a) for a in (x, w_ih, w_hh, bias, h0)), relu, persistent=persistent)
    return hs.copy_to_host()


def elman_backward(x, w_ih, w_hh, hs, dy, dh_n, relu, truncate, n_threads=None, *, persistent: bool | None = None):
    """BPTT on the GPU; arguments and host-array results (dx, dw_ih, dw_hh, dbias, dh0, dh) as
    ``kernels.elman_backward``."""
    check_dtype(x=x, w_ih=w_ih, w_hh=w_hh, hs=hs, dy=dy, dh_n=dh_n)
    out = elman_backward_device(*(to_device(a) for a in (x, w_ih, w_hh, hs, dy, dh_n)), relu, truncate,
                                persistent=persistent)
    return tuple(a.copy_to_host() for a in out)
