"""Recurrences that are linear in the state: minGRU, minLSTM and the LRU, forward and backward.

Their gates read the input only, never h_{t-1}, so each cell is a projection of every step at once
(one GEMM over all T*B rows), elementwise gate math, and then one linear recurrence
h_t = a_t * h_{t-1} + b_t evaluated by :mod:`.scan` (``method``: sequential loop, chunked scan or
Blelloch tree). The backward pass is the reverse recurrence g_t = d_t + a_{t+1} g_{t+1} through
the same scan, then elementwise gate gradients, then GEMMs for the weights and the input.

minGRU (Feng et al. 2024, "Were RNNs all we needed?", the plain, not the log-space, form)::

    z_t  = sigma(W_z x_t + b_z)            h~_t = W_h x_t + b_h
    h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t          a_t = 1 - z_t,  b_t = z_t * h~_t

minLSTM (same paper, with the normalised, length-independent gates)::

    f_t = sigma(W_f x_t + b_f)   i_t = sigma(W_i x_t + b_i)   h~_t = W_h x_t + b_h
    f'_t = f_t / (f_t + i_t)     i'_t = i_t / (f_t + i_t) = 1 - f'_t
    h_t = f'_t * h_{t-1} + i'_t * h~_t               a_t = f'_t,  b_t = i'_t * h~_t

  where f_t + i_t is small, f'_t is computed as sigma(softplus(-p_i) - softplus(-p_f)) from the
  pre-activations p_f, p_i (the paper's log-space identity): exact, and free of 0/0 where both
  gates underflow.

LRU (Orvieto et al. 2023, "Resurrecting recurrent neural networks for long sequences")::

    lambda = exp(-exp(nu_log) + i exp(theta_log))    (H,) complex, |lambda| < 1 (exactly; see LRU)
    gamma  = exp(gamma_log)                          (H,) input normalisation
    h_t    = lambda * h_{t-1} + gamma * ((B_re + i B_im) x_t)     complex state (B, H)
    y_t    = Re((C_re + i C_im) h_t) + D * x_t                   real output (B, I)

Shapes: x (T, B, I); minGRU w_ih (2H, I) rows [z; h~], b_ih (2H,); minLSTM w_ih (3H, I) rows
[f; i; h~], b_ih (3H,); LRU B_re, B_im (H, I), C_re, C_im (I, H), D (I,); h0 (B, H) (complex
for the LRU). Records hs (T+1, B, H) with hs[0] = h0; gates gate-major (G, T, B, H). All arrays
C-contiguous and of one dtype (complex64 with float32, complex128 with float64).

Complex gradients use the convention dL/dz = dL/dRe(z) + i dL/dIm(z). Through h_t = lambda h_{t-1}
that makes dL/dh_{t-1} = conj(lambda) dL/dh_t: the reverse scan runs on conj(lambda).

Truncated BPTT (``truncate = k > 0``): the gradient through the state is cut between steps s-1
and s whenever s % k == 0 (a zeroed coefficient in the reverse scan), as in the other kernels.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import add_row, matmul_rows, matmul_tn_rows, scalar_like
from ._jit import helper, jit
from ._math import sigmoid
from ._pool import chunk_bounds, parallel_for
from .scan import scan_forward, scan_reverse


#: Below this many gate elements (rows * width) the gate kernels run on the calling thread.
MIN_GATE_WORK = 1 << 15


def _run_rows(n_rows: int, width: int, n_threads: int, work) -> None:
    """Call ``work(r0, r1)`` on near-equal row ranges, in parallel when the elementwise work is worth it."""
    n_chunks = 1 if n_rows * width < MIN_GATE_WORK else max(1, min(n_threads, n_rows))
    parallel_for(n_chunks, lambda c: work(*chunk_bounds(c, n_chunks, n_rows)))


def _cut(a: np.ndarray, truncate: int) -> np.ndarray:
    """a (T, ...) with the rows s = k, 2k, ... zeroed: the reverse scan's coefficients under truncation."""
    if truncate <= 0 or truncate >= a.shape[0]:
        return a
    cut = a.copy()
    cut[truncate::truncate] = 0
    return cut


@helper
def _softplus(x):
    """log(1 + exp(x)) without overflow."""
    zero = scalar_like(0.0, x)
    return max(x, zero) + math.log1p(math.exp(-abs(x)))


# ---------------------------------------------------------------------------------------------
# minGRU
# ---------------------------------------------------------------------------------------------

@jit
def mingru_gates(proj, z, h_tilde, a, b, r0, r1):
    """Rows r0..r1-1 of the T*B rows: z = sigma(p_z), h~ = p_h, a = 1 - z, b = z * h~."""
    H = z.shape[1]
    one = scalar_like(1.0, z)
    for r in range(r0, r1):
        p, z_r, ht_r, a_r, b_r = proj[r], z[r], h_tilde[r], a[r], b[r]
        for j in range(H):
            z_r[j] = sigmoid(p[j])
        for j in range(H):
            ht_r[j] = p[H + j]
        for j in range(H):
            a_r[j] = one - z_r[j]
        for j in range(H):
            b_r[j] = z_r[j] * ht_r[j]


@jit
def mingru_gate_grads(h_prev, z, h_tilde, g, d_proj, r0, r1):
    """Rows r0..r1-1: from g = dL/dh_t, the pre-activation gradients d_proj = [dp_z, dp_h].

    h_t = (1 - z) h_{t-1} + z h~:  dz = g (h~ - h_{t-1}),  dp_z = dz z (1 - z),  dp_h = dh~ = g z.
    """
    H = z.shape[1]
    one = scalar_like(1.0, z)
    for r in range(r0, r1):
        z_r, ht_r, hp_r, g_r, d_r = z[r], h_tilde[r], h_prev[r], g[r], d_proj[r]
        for j in range(H):
            d_r[j] = g_r[j] * (ht_r[j] - hp_r[j]) * z_r[j] * (one - z_r[j])
        for j in range(H):
            d_r[H + j] = g_r[j] * z_r[j]


def mingru_forward(x, w_ih, b_ih, h0, method, n_threads, n_chunks=None):
    """minGRU over x; returns (hs, gates, a): hs (T+1, B, H), gates (2, T, B, H) = z, h~, a = 1 - z."""
    T, B, I = x.shape
    H = h0.shape[1]
    proj = matmul_rows(x.reshape(T * B, I), w_ih.T, n_threads)  # (T*B, 2H): every step at once
    add_row(proj, b_ih)
    gates = np.empty((2, T, B, H), x.dtype)
    a = np.empty((T, B, H), x.dtype)
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    rows = [arr.reshape(T * B, H) for arr in (gates[0], gates[1], a, hs[1:])]
    _run_rows(T * B, H, n_threads, lambda r0, r1: mingru_gates(proj, *rows, r0, r1))
    scan_forward(a.reshape(T, B * H), hs[1:].reshape(T, B * H), np.ascontiguousarray(h0).reshape(B * H),
                 method, n_threads, n_chunks)
    return hs, gates, a


def mingru_backward(x, w_ih, hs, gates, a, dy, dh_n, truncate, method, n_threads, n_chunks=None):
    """BPTT of :func:`mingru_forward`: gradient of sum(h * dy) + sum(h_{T-1} * dh_n).

    Returns (dx, dw_ih, db_ih, dh0, dh) where dh (T, B, H) is the total dL/dh_t.
    """
    T, B, I = x.shape
    H = hs.shape[2]
    dh = dy.copy()
    scan_reverse(_cut(a, truncate).reshape(T, B * H), dh.reshape(T, B * H), np.ascontiguousarray(dh_n).reshape(B * H),
                 method, n_threads, n_chunks)
    dh0 = a[0] * dh[0]
    d_proj = np.empty((T * B, 2 * H), x.dtype)
    rows = [arr.reshape(T * B, H) for arr in (hs[:-1], gates[0], gates[1], dh)]
    _run_rows(T * B, 2 * H, n_threads, lambda r0, r1: mingru_gate_grads(*rows, d_proj, r0, r1))
    dx = matmul_rows(d_proj, w_ih, n_threads).reshape(T, B, I)
    dw_ih = matmul_tn_rows(d_proj, x.reshape(T * B, I), n_threads)
    return dx, dw_ih, d_proj.sum(axis=0), dh0, dh


# ---------------------------------------------------------------------------------------------
# minLSTM
# ---------------------------------------------------------------------------------------------

#: Where f + i falls below this, minLSTM's f' = f / (f + i) is computed in log space: the float32
#: sigmoid's absolute error (~6e-8) would show in the ratio of two tiny gates, and 0 / 0 if both underflow.
MINLSTM_LOG_SPACE_BELOW = 0.1


@jit
def minlstm_gates(proj, f, i, f_norm, h_tilde, i_norm, b, r0, r1):
    """Rows r0..r1-1: f = sigma(p_f), i = sigma(p_i), f' = f / (f + i), i' = i / (f + i), h~ = p_h,
    b = i' h~.

    Where f + i < MINLSTM_LOG_SPACE_BELOW, f' = sigma(u) and i' = sigma(-u) with
    u = softplus(-p_i) - softplus(-p_f) = log f - log i (exact; two libm calls each, so only there).
    i' is computed, not taken as 1 - f': where i << f that difference cancels (float32 lost 17% of
    i' = 9e-6, and all of it below ~6e-8).
    """
    H = f.shape[1]
    small = scalar_like(MINLSTM_LOG_SPACE_BELOW, f)
    for r in range(r0, r1):
        p, f_r, i_r, fn_r, ht_r, in_r, b_r = proj[r], f[r], i[r], f_norm[r], h_tilde[r], i_norm[r], b[r]
        for j in range(H):
            f_r[j] = sigmoid(p[j])
        for j in range(H):
            i_r[j] = sigmoid(p[H + j])
        for j in range(H):
            ht_r[j] = p[2 * H + j]
        for j in range(H):
            total = f_r[j] + i_r[j]
            if total >= small:
                fn_r[j] = f_r[j] / total
                in_r[j] = i_r[j] / total
            else:
                u = _softplus(-p[H + j]) - _softplus(-p[j])
                fn_r[j] = sigmoid(u)
                in_r[j] = sigmoid(-u)
        for j in range(H):
            b_r[j] = in_r[j] * ht_r[j]


@jit
def minlstm_gate_grads(h_prev, f, i, f_norm, h_tilde, i_norm, g, d_proj, r0, r1):
    """Rows r0..r1-1: from g = dL/dh_t, d_proj = [dp_f, dp_i, dp_h].

    With q = g (h_{t-1} - h~) = dL/df' - dL/di' and f' = sigma(log f - log i):
    dp_f = q f' i' (1 - f),  dp_i = -q f' i' (1 - i),  dp_h = g i'.
    """
    H = f.shape[1]
    one = scalar_like(1.0, f)
    for r in range(r0, r1):
        f_r, i_r, fn_r, ht_r, in_r = f[r], i[r], f_norm[r], h_tilde[r], i_norm[r]
        hp_r, g_r, d_r = h_prev[r], g[r], d_proj[r]
        for j in range(H):
            s = g_r[j] * (hp_r[j] - ht_r[j]) * fn_r[j] * in_r[j]
            d_r[j] = s * (one - f_r[j])
            d_r[H + j] = -s * (one - i_r[j])
        for j in range(H):
            d_r[2 * H + j] = g_r[j] * in_r[j]


def minlstm_forward(x, w_ih, b_ih, h0, method, n_threads, n_chunks=None):
    """minLSTM over x; returns (hs, gates): hs (T+1, B, H), gates (5, T, B, H) = f, i, f', h~, i' (a = f')."""
    T, B, I = x.shape
    H = h0.shape[1]
    proj = matmul_rows(x.reshape(T * B, I), w_ih.T, n_threads)  # (T*B, 3H)
    add_row(proj, b_ih)
    gates = np.empty((5, T, B, H), x.dtype)
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    rows = [arr.reshape(T * B, H) for arr in (*gates, hs[1:])]
    _run_rows(T * B, 3 * H, n_threads, lambda r0, r1: minlstm_gates(proj, *rows, r0, r1))
    scan_forward(gates[2].reshape(T, B * H), hs[1:].reshape(T, B * H), np.ascontiguousarray(h0).reshape(B * H),
                 method, n_threads, n_chunks)
    return hs, gates


def minlstm_backward(x, w_ih, hs, gates, dy, dh_n, truncate, method, n_threads, n_chunks=None):
    """BPTT of :func:`minlstm_forward`; returns (dx, dw_ih, db_ih, dh0, dh) as :func:`mingru_backward`."""
    T, B, I = x.shape
    H = hs.shape[2]
    a = gates[2]
    dh = dy.copy()
    scan_reverse(_cut(a, truncate).reshape(T, B * H), dh.reshape(T, B * H), np.ascontiguousarray(dh_n).reshape(B * H),
                 method, n_threads, n_chunks)
    dh0 = a[0] * dh[0]
    d_proj = np.empty((T * B, 3 * H), x.dtype)
    rows = [arr.reshape(T * B, H) for arr in (hs[:-1], *gates, dh)]
    _run_rows(T * B, 3 * H, n_threads, lambda r0, r1: minlstm_gate_grads(*rows, d_proj, r0, r1))
    dx = matmul_rows(d_proj, w_ih, n_threads).reshape(T, B, I)
    dw_ih = matmul_tn_rows(d_proj, x.reshape(T * B, I), n_threads)
    return dx, dw_ih, d_proj.sum(axis=0), dh0, dh


# ---------------------------------------------------------------------------------------------
# LRU
# ---------------------------------------------------------------------------------------------

def complex_dtype(dtype) -> np.dtype:
    """complex64 for float32, complex128 for float64."""
    return np.result_type(dtype, np.complex64)


def lru_lambda(nu_log: np.ndarray, theta_log: np.ndarray) -> np.ndarray:
    """lambda = exp(-exp(nu_log) + i exp(theta_log)), computed in float64 and rounded to the matching complex dtype."""
    nu = np.asarray(nu_log, np.float64)
    theta = np.asarray(theta_log, np.float64)
    lam = np.exp(-np.exp(nu) + 1j * np.exp(theta))
    return lam.astype(complex_dtype(np.asarray(nu_log).dtype))


def lru_forward(x, nu_log, theta_log, gamma_log, b_re, b_im, c_re, c_im, d, h0, method, n_threads, n_chunks=None):
    """LRU over x; returns (y, hs, h_re, h_im): y (T, B, I); hs (T+1, B, H) complex with hs[0] = h0;
    h_re, h_im (T, B, H) its real and imaginary parts for t >= 0 (C-contiguous)."""
    T, B, I = x.shape
    H = nu_log.shape[0]
    ctype = complex_dtype(x.dtype)
    lam = lru_lambda(nu_log, theta_log)
    gamma = np.exp(gamma_log)[:, None]
    rows = x.reshape(T * B, I)
    hs = np.empty((T + 1, B, H), ctype)
    hs[0] = h0
    u = hs[1:].reshape(T * B, H)  # u_t = gamma * (B x_t), then h_t in place
    u.real = matmul_rows(rows, (gamma * b_re).T, n_threads)
    u.imag = matmul_rows(rows, (gamma * b_im).T, n_threads)
    scan_forward(np.tile(lam, B)[None], hs[1:].reshape(T, B * H), np.ascontiguousarray(h0).reshape(B * H),
                 method, n_threads, n_chunks)
    h_re = np.ascontiguousarray(hs[1:].real)
    h_im = np.ascontiguousarray(hs[1:].imag)
    y = matmul_rows(h_re.reshape(T * B, H), c_re.T, n_threads)  # Re(C h) = C_re h_re - C_im h_im
    y -= matmul_rows(h_im.reshape(T * B, H), c_im.T, n_threads)
    y = y.reshape(T, B, I)
    y += x * d
    return y, hs, h_re, h_im


def lru_backward(x, nu_log, theta_log, gamma_log, b_re, b_im, c_re, c_im, d, hs, h_re, h_im, dy, dh_n, truncate,
                 method, n_threads, n_chunks=None):
    """BPTT of :func:`lru_forward`: gradient of sum(y * dy) + sum(Re(conj(dh_n) * h_{T-1})).

    Returns (dx, grads, dh0, dh) where grads maps 'nu_log', 'theta_log', 'gamma_log', 'B_re',
    'B_im', 'C_re', 'C_im', 'D' to their gradients and dh (T, B, H) complex is the total dL/dh_t.
    """
    T, B, I = x.shape
    H = nu_log.shape[0]
    ctype = complex_dtype(x.dtype)
    lam = lru_lambda(nu_log, theta_log)
    gamma = np.exp(gamma_log)
    rows = x.reshape(T * B, I)
    dy_rows = dy.reshape(T * B, I)
    # from y_t = C_re h_re - C_im h_im + D x_t:  d_t = dL/dh_t from the output = dy_t (C_re - i C_im)
    dh = np.empty((T, B, H), ctype)
    dh_rows = dh.reshape(T * B, H)
    dh_rows.real = matmul_rows(dy_rows, c_re, n_threads)
    dh_rows.imag = matmul_rows(dy_rows, c_im, n_threads)
    dh_rows.imag *= -1
    coef = np.tile(np.conj(lam), B)[None]  # dL/dh_{t-1} = conj(lambda) dL/dh_t
    if 0 < truncate < T:
        coef = _cut(np.repeat(coef, T, axis=0), truncate)
    scan_reverse(coef, dh.reshape(T, B * H), np.ascontiguousarray(dh_n).reshape(B * H), method, n_threads, n_chunks)
    dh0 = np.conj(lam) * dh[0]
    g_re = np.ascontiguousarray(dh_rows.real)
    g_im = np.ascontiguousarray(dh_rows.imag)
    # lambda = exp(mu), mu = -exp(nu_log) + i exp(theta_log):  dL/dlambda = sum_t g_t conj(h_{t-1})
    d_lam = np.einsum("tbh,tbh->h", dh, np.conj(hs[:-1]))
    d_mu = np.conj(lam) * d_lam
    # u_t = gamma * (B x_t): with M = g^T x (H, I), dB = gamma M, dgamma = sum_i (B_re M_re + B_im M_im)
    m_re = matmul_tn_rows(g_re, rows, n_threads)
    m_im = matmul_tn_rows(g_im, rows, n_threads)
    # exp(nu_log), exp(theta_log) in float64 as lru_lambda takes them: in float32 exp(100) is Inf, and
    # Inf * 0 (lambda = 0 exactly) gave NaN where the gradient is 0
    nu, theta = np.exp(nu_log.astype(np.float64)), np.exp(theta_log.astype(np.float64))
    grads = {
        "nu_log": (-nu * d_mu.real).astype(x.dtype),
        "theta_log": (theta * d_mu.imag).astype(x.dtype),
        "gamma_log": gamma * (b_re * m_re + b_im * m_im).sum(axis=1),
        "B_re": gamma[:, None] * m_re,
        "B_im": gamma[:, None] * m_im,
        "C_re": matmul_tn_rows(dy_rows, h_re.reshape(T * B, H), n_threads),
        "C_im": -matmul_tn_rows(dy_rows, h_im.reshape(T * B, H), n_threads),
        "D": (dy * x).sum(axis=(0, 1)),
    }
    dx = matmul_rows(g_re, gamma[:, None] * b_re, n_threads)
    dx += matmul_rows(g_im, gamma[:, None] * b_im, n_threads)
    dx = dx.reshape(T, B, I)
    dx += dy * d
    return dx, grads, dh0, dh
