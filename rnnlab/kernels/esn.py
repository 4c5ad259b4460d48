"""Echo state network reservoir: the leaky-integrator tanh update over a whole sequence, the linear
readout, and free-running generation with the readout's output fed back as the next input.

    x_t = (1 - a) x_{t-1} + a tanh(W x_{t-1} + W_in u_t + b)        reservoir, leak rate a in (0, 1]
    y_t = W_out z_t + b_out,   z_t = x_t  or  [x_t; u_t]             readout

Shapes: u (T, B, I); w_in (N, I); w (N, N); bias (N,); x0 (B, N); w_out (O, N) or (O, N + I)
when the readout also sees the input; b_out (O,).
Records: xs (T+1, B, N) with xs[0] = x0.

W is kept dense even though only a fraction ``connectivity`` of it is non-zero: a dense row-major
product vectorises over contiguous rows (4 float64 / 8 float32 lanes with FMA) while a CSR product
gathers x through an index array one element at a time. Measured on this 2-core AVX2 machine
(float64, B=1, T=2000, us per step, dense / CSR): connectivity 0.1 (the default): N=100 3.1 / 6.0,
N=300 16 / 28, N=1000 151 / 201; connectivity 0.02: N=100 2.4 / 2.4, N=300 16 / 14,
N=1000 145 / 79. So dense wins at the default connectivity up to N=1000; CSR would only pay for
much sparser or larger reservoirs than the ones used here (and the float64 tanh, a scalar libm
call, is a large part of the step at N=100 either way).

Structure and threading as in :mod:`rnnlab.kernels.elman`: one big GEMM for every step's input
projection W_in u_t + b, then per step the recurrent product and the fused leaky update;
independent sequences split across threads.
"""

from __future__ import annotations

import numpy as np

from ._common import add_row, input_projection, matmul_rows, run_batch_chunks, scalar_like
from ._gemm import matmul_into, pack_panels_t
from ._jit import jit
from ._math import tanh


@jit
def esn_forward_steps(u_proj, w_p, leak_rate, xs, b0, b1):
    """The time loop for sequences b0..b1-1: x_t = (1 - a) x_{t-1} + a tanh(W x_{t-1} + u_proj_t)."""
    T = u_proj.shape[0]
    N = xs.shape[2]
    a = scalar_like(leak_rate, xs)
    keep = scalar_like(1.0, xs) - a
    pre = np.empty((b1 - b0, N), xs.dtype)  # W x_{t-1}
    for t in range(T):
        matmul_into(xs[t, b0:b1], w_p, pre)
        for b in range(b0, b1):
            p = pre[b - b0]
            v = u_proj[t, b]  # W_in u_t + b
            x_prev, x_t = xs[t, b], xs[t + 1, b]
            for j in range(N):
                x_t[j] = keep * x_prev[j] + a * tanh(p[j] + v[j])


def esn_forward(u, w_in, w, bias, x0, leak_rate, n_threads):
    """Run the reservoir over u; return xs (T+1, B, N) with xs[0] = x0 and xs[t] = x_t."""
    T, B, I = u.shape
    N = x0.shape[1]
    u_proj = input_projection(u, w_in, bias, n_threads)
    w_p = pack_panels_t(w)  # x @ W^T = (W x)^T; W^T as panels for matmul_into
    xs = np.empty((T + 1, B, N), u.dtype)
    xs[0] = x0
    run_batch_chunks(B, N * N, n_threads,
                     lambda b0, b1: esn_forward_steps(u_proj, w_p, float(leak_rate), xs, b0, b1))
    return xs


def esn_readout(features, w_out, b_out, n_threads):
    """y_t = W_out z_t + b_out for features z (T, B, F) C-contiguous (F = N, or N + I when the
    readout also sees the input: z_t = [x_t; u_t]); w_out (O, F); returns (T, B, O)."""
    T, B, F = features.shape
    O = w_out.shape[0]
    y = matmul_rows(features.reshape(T * B, F), w_out.T, n_threads)
    add_row(y, b_out)
    return y.reshape(T, B, O)


@jit
def esn_generate_steps(w_in, w_p, bias, w_out, b_out, leak_rate, u_last, xs, ys, b0, b1):
    """Free-running loop for sequences b0..b1-1; xs[0] holds the starting state x_0 and u_last the
    input that produced it. With z_k = [x_k] (or [x_k; u_k] when w_out has N + I columns):

        y_k     = W_out z_{k-1} + b_out,     u_k = y_k  (the output is the next input, O == I)
        x_k     = (1 - a) x_{k-1} + a tanh(W x_{k-1} + W_in u_k + b)
    stored as ys[k-1] = y_k and xs[k-1] = x_{k-1} (the state y_k is read from), k = 1 .. n.
    """
    n = ys.shape[0]
    N = xs.shape[2]
    O = ys.shape[2]
    I = w_in.shape[1]
    with_input = w_out.shape[1] > N
    a = scalar_like(leak_rate, xs)
    keep = scalar_like(1.0, xs) - a
    pre = np.empty((b1 - b0, N), xs.dtype)  # W x_{k-1}
    for k in range(n):
        for b in range(b0, b1):  # the readout: y_k = W_out z_{k-1} + b_out
            x = xs[k, b]
            u = u_last[b] if k == 0 else ys[k - 1, b]  # the input that produced x_{k-1}
            y = ys[k, b]
            for o in range(O):
                wo = w_out[o]
                s = b_out[o]
                for j in range(N):
                    s += wo[j] * x[j]
                if with_input:
                    for i in range(I):
                        s += wo[N + i] * u[i]
                y[o] = s
        if k + 1 == n:
            break
        matmul_into(xs[k, b0:b1], w_p, pre)
        for b in range(b0, b1):  # the output becomes the next input
            p = pre[b - b0]
            u = ys[k, b]
            x_prev, x_next = xs[k, b], xs[k + 1, b]
            for j in range(N):
                s = p[j] + bias[j]
                for i in range(I):
                    s += w_in[j, i] * u[i]
                x_next[j] = keep * x_prev[j] + a * tanh(s)


def esn_generate(x0, u_last, w_in, w, bias, w_out, b_out, leak_rate, n_steps, n_threads):
    """Generate n_steps outputs from state x0 (B, N), each fed back as the next input (needs O == I).

    ``u_last`` (B, I) is the input that produced x0 (read only when the readout sees the input,
    i.e. w_out is (O, N + I)). Returns (ys (n_steps, B, O), xs (n_steps, B, N)) where ys[k] is
    read from xs[k] and xs[0] = x0.
    """
    B, N = x0.shape
    O = w_out.shape[0]
    xs = np.empty((n_steps, B, N), x0.dtype)
    ys = np.empty((n_steps, B, O), x0.dtype)
    xs[0] = x0
    w_p = pack_panels_t(w)  # W^T as panels for matmul_into
    w_in = np.ascontiguousarray(w_in)
    w_out = np.ascontiguousarray(w_out)
    u_last = np.ascontiguousarray(u_last)
    run_batch_chunks(B, N * N, n_threads, lambda b0, b1: esn_generate_steps(
        w_in, w_p, bias, w_out, b_out, float(leak_rate), u_last, xs, ys, b0, b1))
    return ys, xs
