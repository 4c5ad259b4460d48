"""GRU on the GPU, forward and backward through time: the twin of :mod:`rnnlab.kernels.gru`.

    r_t = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigma(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh (W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Shapes and records exactly as the CPU kernels: x (T, B, I); w_ih (3H, I); w_hh (3H, H);
b_ih, b_hh (3H,); h0 (B, H); hs (T+1, B, H); gates (3, T, B, H) holding r, z, n;
hn (T, B, H) = W_hn h_{t-1} + b_hn. Structure as in :mod:`rnnlab.kernels.cuda.lstm`.
"""

from __future__ import annotations

import functools

from ._common import (check_dtype, column_sums, cuda, for_dtype, gemm,
                      launch_2d, persistent_threads, recurrent_grad, rows, to_device, transpose,
                      use_persistent)


@functools.cache
def _kernels(dtype_name: str):
    k = for_dtype(dtype_name)
    sigmoid, tanh, zero, one = k.sigmoid, k.tanh, k.zero, k.one

    @cuda.jit
    def input_bias(b_ih, b_hh, bias):
        """bias = b_ih + (b_hr, b_hz, 0): r and z see both biases; b_hn sits inside r's product."""
        n = cuda.grid(1)
        H = b_ih.shape[0] // 3
        if n < 2 * H:
            bias[n] = b_ih[n] + b_hh[n]
        elif n < 3 * H:
            bias[n] = b_ih[n]

    @cuda.jit(device=True)
    def unit_forward(t, b, j, x_proj, w_hh_t, b_hn, hs, gates, hn_all):
        """Step t of hidden unit j of sequence b; x_proj (T, B, 3H) = W_ih x + bias, w_hh_t (H, 3H) = W_hh^T."""
        H = hs.shape[2]
        p_r = zero  # (W_hh h_{t-1}) for the rows of r, z and n of unit j
        p_z = zero
        p_n = zero
        for m in range(H):
            h_m = hs[t, b, m]
            p_r += w_hh_t[m, j] * h_m
            p_z += w_hh_t[m, H + j] * h_m
            p_n += w_hh_t[m, 2 * H + j] * h_m
        hn = p_n + b_hn[j]
        r = sigmoid(p_r + x_proj[t, b, j])
        z = sigmoid(p_z + x_proj[t, b, H + j])
        n = tanh(x_proj[t, b, 2 * H + j] + r * hn)
        hs[t + 1, b, j] = (one - z) * n + z * hs[t, b, j]
        gates[0, t, b, j] = r
        gates[1, t, b, j] = z
        gates[2, t, b, j] = n
        hn_all[t, b, j] = hn

    @cuda.jit
    def forward_step(t, x_proj, w_hh_t, b_hn, hs, gates, hn_all):
        j, b = cuda.grid(2)
        if b < hs.shape[1] and j < hs.shape[2]:
            unit_forward(t, b, j, x_proj, w_hh_t, b_hn, hs, gates, hn_all)

    @cuda.jit
    def forward_persistent(x_proj, w_hh_t, b_hn, hs, gates, hn_all):
        B = hs.shape[1]
        H = hs.shape[2]
        for t in range(x_proj.shape[0]):
            for u in range(cuda.threadIdx.x, B * H, cuda.blockDim.x):
                unit_forward(t, u // H, u % H, x_proj, w_hh_t, b_hn, hs, gates, hn_all)
            cuda.syncthreads()

    @cuda.jit(device=True)
    def unit_backward(s, b, k, truncate, w_hh, hs, gates, hn_all, dy, d_ih, d_hh, dh_total, dh_n, skip):
        """Step s (counting down) of unit k of sequence b.

        dL/dh_s = dy_s + sum_m d_hh[s+1][m] W_hh[m, k] + dL/dh_{s+1} z_{s+1}  (dh_n at s = T-1;
        0 across a cut); then the input-side (d_ih) and recurrent-side (d_hh) pre-activation
        gradients of r, z, n. skip[b, k] carries the direct path dL/dh_s z_s to step s-1.
        """
        T = dy.shape[0]
        H = dy.shape[2]
        if s == T - 1:
            dh_in = dh_n[b, k]
        elif truncate > 0 and (s + 1) % truncate == 0:
            dh_in = zero
        else:
            dh_in = zero
            for m in range(3 * H):
                dh_in += d_hh[s + 1, b, m] * w_hh[m, k]
            dh_in += skip[b, k]
        dh = dy[s, b, k] + dh_in
        dh_total[s, b, k] = dh
        r = gates[0, s, b, k]
        z = gates[1, s, b, k]
        n = gates[2, s, b, k]
        dn = dh * (one - z) * (one - n * n)  # through n = tanh(.)
        dr = dn * hn_all[s, b, k] * r * (one - r)  # through r, which scales W_hn h + b_hn
        dz = dh * (hs[s, b, k] - n) * z * (one - z)  # through z
        d_ih[s, b, k] = dr
        d_ih[s, b, H + k] = dz
        d_ih[s, b, 2 * H + k] = dn
        d_hh[s, b, k] = dr
        d_hh[s, b, H + k] = dz
        d_hh[s, b, 2 * H + k] = dn * r
        skip[b, k] = dh * z

    @cuda.jit
    def backward_step(s, truncate, w_hh, hs, gates, hn_all, dy, d_ih, d_hh, dh_total, dh_n, skip):
        k, b = cuda.grid(2)
        if b < dy.shape[1] and k < dy.shape[2]:
            unit_backward(s, b, k, truncate, w_hh, hs, gates, hn_all, dy, d_ih, d_hh, dh_total, dh_n, skip)

    @cuda.jit
    def backward_persistent(truncate, w_hh, hs, gates, hn_all, dy, d_ih, d_hh, dh_total, dh_n, skip):
        B = dy.shape[1]
        H = dy.shape[2]
        for s in range(dy.shape[0] - 1, -1, -1):
            for u in range(cuda.threadIdx.x, B * H, cuda.blockDim.x):
                unit_backward(s, u // H, u % H, truncate, w_hh, hs, gates, hn_all, dy, d_ih, d_hh, dh_total, dh_n,
                              skip)
            cuda.syncthreads()

    return input_bias, forward_step, forward_persistent, backward_step, backward_persistent


def gru_forward_device(x, w_ih, w_hh, b_ih, b_hh, h0, persistent: bool | None = None):
    """:func:`gru_forward` on device arrays; returns device arrays (hs, gates, hn) (``persistent`` as in lstm)."""
    T, B, I = x.shape
    H = h0.shape[1]
    input_bias, forward_step, forward_persistent, _, _ = _kernels(x.dtype.name)
    bias = cuda.device_array(3 * H, x.dtype)
    input_bias[(3 * H + 127) // 128, 128](b_ih, b_hh, bias)
    x_proj = gemm(rows(x), w_ih, trans_b=True, bias=bias).reshape(T, B, 3 * H)
    w_hh_t = transpose(w_hh)  # (H, 3H)
    b_hn = b_hh[2 * H:]
    hs = cuda.device_array((T + 1, B, H), x.dtype)
    gates = cuda.device_array((3, T, B, H), x.dtype)
    hn_all = cuda.device_array((T, B, H), x.dtype)
    hs[0].copy_to_device(h0)
    if use_persistent(B, H, persistent):
        forward_persistent[1, persistent_threads(B * H)](x_proj, w_hh_t, b_hn, hs, gates, hn_all)
    else:
        forward_step_launch = forward_step[launch_2d(H, B)]  # configured once, launched every step
        for t in range(T):
            forward_step_launch(t, x_proj, w_hh_t, b_hn, hs, gates, hn_all)
    return hs, gates, hn_all


def gru_backward_device(x, w_ih, w_hh, hs, gates, hn_all, dy, dh_n, truncate, persistent: bool | None = None):
    """:func:`gru_backward` on device arrays; returns device arrays (dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dh)."""
    T, B, I = x.shape
    H = hs.shape[2]
    truncate = int(truncate)
    _, _, _, backward_step, backward_persistent = _kernels(x.dtype.name)
    d_ih = cuda.device_array((T, B, 3 * H), x.dtype)
    d_hh = cuda.device_array((T, B, 3 * H), x.dtype)
    dh_total = cuda.device_array((T, B, H), x.dtype)
    skip = cuda.device_array((B, H), x.dtype)  # written by step T-1 before anything reads it
    if use_persistent(B, H, persistent):
        backward_persistent[1, persistent_threads(B * H)](truncate, w_hh, hs, gates, hn_all, dy, d_ih, d_hh,
                                                          dh_total, dh_n, skip)
    else:
        backward_step_launch = backward_step[launch_2d(H, B)]  # configured once, launched every step
        for s in range(T - 1, -1, -1):
            backward_step_launch(s, truncate, w_hh, hs, gates, hn_all, dy, d_ih, d_hh, dh_total, dh_n, skip)
    dh0 = recurrent_grad(d_hh[0], w_hh, carry=skip)  # through the gates, plus the direct path
    rows_ih, rows_hh = rows(d_ih), rows(d_hh)
    dx = gemm(rows_ih, w_ih).reshape(T, B, I)
    dw_ih = gemm(rows_ih, rows(x), trans_a=True)
    dw_hh = gemm(rows_hh, rows(hs[:T]), trans_a=True)
    return dx, dw_ih, dw_hh, column_sums(rows_ih), column_sums(rows_hh), dh0, dh_total


def gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, n_threads=None, *, persistent: bool | None = None):
    """Run the GRU over x on the GPU; return host arrays (hs, gates, hn) as ``kernels.gru_forward``."""
    check_dtype(x=x, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh, h0=h0)
    out = gru_forward_device(*(to_device(a) for a in (x, w_ih, w_hh, b_ih, b_hh, h0)), persistent=persistent)
    return tuple(a.copy_to_host() for a in out)


def gru_backward(x, w_ih, w_hh, hs, gates, hn_all, dy, dh_n, truncate, n_threads=None, *,
                 persistent: bool | None = None):
    """BPTT on the GPU; arguments and host-array results (dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dh) as
    ``kernels.gru_backward``."""
    check_dtype(x=x, w_ih=w_ih, w_hh=w_hh, hs=hs, gates=gates, hn_all=hn_all, dy=dy, dh_n=dh_n)
    out = gru_backward_device(*(to_device(a) for a in (x, w_ih, w_hh, hs, gates, hn_all, dy, dh_n)), truncate,
                              persistent=persistent)
    return tuple(a.copy_to_host() for a in out)
