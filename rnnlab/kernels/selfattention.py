"""A Transformer encoder block (self-attention, feed-forward, residuals, layer norm), forward and backward.

The block is ``torch.nn.TransformerEncoderLayer(dropout=0)`` with its two orders of sublayers:

    post-norm (torch's default, ``norm_first=False``)     pre-norm (``norm_first=True``)
        z = LN1(x + MHA(x))                                  z = x + MHA(LN1(x))
        y = LN2(z + FFN(z))                                  y = z + FFN(LN2(z))

Multi-head attention over the sequence (d = d_model, heads h = 1..H, d_head = d / H)::

    [Q | K | V] = u W_in^T + b_in              W_in (3d, d): rows [W_q; W_k; W_v]
    Q_h, K_h, V_h = columns h*d_head .. (h+1)*d_head - 1 of Q, K, V
    S_h = Q_h K_h^T / sqrt(d_head)             (T, T) per sequence: query i, key j
    S_h[i, j] = -inf  where key j is masked    (j >= length, or j > i when causal)
    P_h = softmax(S_h) over j                  the attention weights; masked ones exactly 0
    O   = [P_1 V_1 | ... | P_H V_H]            (T, d) per sequence
    MHA(u) = O W_out^T + b_out

    FFN(u) = act(u W_1^T + b_1) W_2^T + b_2     act = relu | gelu (exact, erf)
    LN(r)  = (r - mean(r)) / sqrt(var(r) + eps) * gamma + beta     over the d features

Shapes: x (T, B, d) time-major; ``lengths`` (B,) int64, every 1 <= length <= T (keys at
t >= length are padding); weights as in torch's state_dict. Q, K, V stay time-major rows
(T*B, 3d); attention weights are ``(B, H, T_query, T_key)`` (torch's ``need_weights=True,
average_attn_weights=False`` layout), so each head's T x T matrix is contiguous.

Structure: the projections (in, out, linear1, linear2) are big GEMMs over all T*B rows, rows
split across threads (:func:`._common.matmul_rows`); the attention of each sequence and head runs
in compiled code (:func:`attention_heads_forward`), sequences split across threads, with a
vectorising float32 exp (:func:`exp_shifted`; libm in float64); layer norm and the activation are
compiled row loops. ``block_forward`` returns the output and a dict of saved arrays;
``block_backward`` takes that dict back. All arrays of one call share one dtype (float32
or float64); the layer guarantees it and C-contiguity.
"""

from __future__ import annotations

import math

import numpy as np
from numba import types
from numba.extending import overload

from ._common import add_row, matmul_rows, matmul_tn_rows, run_batch_chunks, scalar_like, sum_of
from ._jit import HELPER_OPTIONS, helper, jit

# ---------------------------------------------------------------------------------------------
# the softmax's exponentials
# ---------------------------------------------------------------------------------------------

# float32 exp by Cody-Waite range reduction (Cephes' expf): x = k ln2 + r, |r| <= ln2 / 2,
# exp(x) = 2^k * p(r). Unlike libm's expf (a scalar call: llvmlite has no SVML) it vectorises:
# 3x faster, and as accurate on the softmax's range (x <= 0; max relative error 6e-8, one half
# ulp, measured over 2e6 points in [-87, 0]). 2^k is built from its bits (exponent field k + 127).
_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)  # ln 2 in two parts: k * _LN2_HI is exact for |k| < 2^8
_LN2_LO = np.float32(-2.12194440e-4)
_P0, _P1, _P2 = np.float32(1.9875691500e-4), np.float32(1.3981999507e-3), np.float32(8.3334519073e-3)
_P3, _P4, _P5 = np.float32(4.1665795894e-2), np.float32(1.6666665459e-1), np.float32(5.0000001201e-1)
_X_MIN = np.float32(-87.0)  # below, 2^k would leave float32's normal range: exp(-87) ~ 1.6e-38 instead
_HALF32, _ONE32 = np.float32(0.5), np.float32(1.0)


def exp_shifted(row, n, shift, scale, bits):
    """row[j] = exp((row[j] - shift) * scale) for j < n, arguments <= 0; returns their sum.

    float64: libm. float32: the vectorising range reduction above (``bits`` (>= n,) int32 scratch).
    """
    total = 0.0
    for j in range(n):
        row[j] = math.exp((row[j] - shift) * scale)
    for j in range(n):
        total += row[j]
    return total


@helper
def _exp_shifted_f32(row, n, shift, scale, bits):
    for j in range(n):
        x = max((row[j] - shift) * scale, _X_MIN)
        k = math.floor(x * _LOG2E + _HALF32)
        r = x - k * _LN2_HI - k * _LN2_LO
        p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
        row[j] = p * r * r + r + _ONE32  # exp(r)
        bits[j] = (np.int32(k) + 127) << 23  # 2^k as float32 bits
    two_k = bits.view(np.float32)
    for j in range(n):
        row[j] *= two_k[j]
    return sum_of(row, n)


@helper
def _exp_shifted_libm(row, n, shift, scale, bits):
    for j in range(n):
        row[j] = math.exp((row[j] - shift) * scale)
    return sum_of(row, n)


@overload(exp_shifted, jit_options=HELPER_OPTIONS)
def _exp_shifted_overload(row, n, shift, scale, bits):
    if isinstance(row.dtype, types.Float) and row.dtype.bitwidth == 32:
        return _exp_shifted_f32
    return _exp_shifted_libm


# ---------------------------------------------------------------------------------------------
# attention of every head of a chunk of sequences
# ---------------------------------------------------------------------------------------------


@jit
def attention_heads_forward(qkv, num_heads, lengths, causal, P, o, b0, b1):
    """P = softmax(Q K^T / sqrt(d_head) + mask), O = P V for sequences b0..b1-1 and every head.

    qkv (T, B, 3d) holds [Q | K | V] by rows; P (B, H, T, T) is written in full (masked weights
    = 0); o (T, B, d) receives [O_1 | ... | O_H]. Each head's Q, K, V are gathered into
    contiguous (T, d_head) buffers so the products run as BLAS calls.
    """
    T = qkv.shape[0]
    d = o.shape[2]
    d_head = d // num_heads
    scale = scalar_like(1.0 / math.sqrt(d_head), qkv)
    zero = scalar_like(0.0, qkv)
    one = scalar_like(1.0, qkv)
    q = np.empty((T, d_head), qkv.dtype)
    k = np.empty_like(q)
    v = np.empty_like(q)
    out = np.empty_like(q)
    bits = np.empty(T, np.int32)  # scratch of exp_shifted
    for b in range(b0, b1):
        n_keys = lengths[b]
        for h in range(num_heads):
            c = h * d_head
            for t in range(T):
                q[t] = qkv[t, b, c : c + d_head]
                k[t] = qkv[t, b, d + c : d + c + d_head]
                v[t] = qkv[t, b, 2 * d + c : 2 * d + c + d_head]
            S = P[b, h]
            np.dot(q, k.T, S)  # Q K^T, scaled inside the exponent below
            for i in range(T):
                row = S[i]
                visible = min(n_keys, i + 1) if causal else n_keys  # keys 0..visible-1
                m = row[0]
                for j in range(1, visible):
                    m = max(m, row[j])
                total = exp_shifted(row, visible, m, scale, bits)  # exp((s_ij - max_j s_ij) / sqrt(d_head))
                inv = one / total
                for j in range(visible):
                    row[j] *= inv
                for j in range(visible, T):
                    row[j] = zero
            np.dot(S, v, out)  # O_h = P_h V_h
            for t in range(T):
                o[t, b, c : c + d_head] = out[t]


@jit
def attention_heads_backward(qkv, P, d_o, num_heads, d_qkv, b0, b1):
    """Gradients of the attention of sequences b0..b1-1, every head (shapes as the forward)::

        dV = P^T dO        dP = dO V^T
        dS = P * (dP - rowsum(P * dP)) / sqrt(d_head)      (the softmax's Jacobian; 0 where P = 0)
        dQ = dS K          dK = dS^T Q

    d_o (T, B, d) is dL/dO; d_qkv (T, B, 3d) receives [dQ | dK | dV].
    """
    T = qkv.shape[0]
    d = d_o.shape[2]
    d_head = d // num_heads
    scale = scalar_like(1.0 / math.sqrt(d_head), qkv)
    zero = scalar_like(0.0, qkv)
    q = np.empty((T, d_head), qkv.dtype)
    k = np.empty_like(q)
    v = np.empty_like(q)
    dO = np.empty_like(q)
    dq = np.empty_like(q)
    dk = np.empty_like(q)
    dv = np.empty_like(q)
    dS = np.empty((T, T), qkv.dtype)
    for b in range(b0, b1):
        for h in range(num_heads):
            c = h * d_head
            for t in range(T):
                q[t] = qkv[t, b, c : c + d_head]
                k[t] = qkv[t, b, d + c : d + c + d_head]
                v[t] = qkv[t, b, 2 * d + c : 2 * d + c + d_head]
                dO[t] = d_o[t, b, c : c + d_head]
            p = P[b, h]
            np.dot(p.T, dO, dv)
            np.dot(dO, v.T, dS)  # dP, overwritten by dS row by row
            for i in range(T):
                p_i, d_i = p[i], dS[i]
                s = zero
                for j in range(T):
                    s += p_i[j] * d_i[j]
                for j in range(T):
                    d_i[j] = p_i[j] * (d_i[j] - s) * scale
            np.dot(dS, k, dq)
            np.dot(dS.T, q, dk)
            for t in range(T):
                d_qkv[t, b, c : c + d_head] = dq[t]
                d_qkv[t, b, d + c : d + c + d_head] = dk[t]
                d_qkv[t, b, 2 * d + c : 2 * d + c + d_head] = dv[t]


# ---------------------------------------------------------------------------------------------
# layer norm and the feed-forward activation: row loops
# ---------------------------------------------------------------------------------------------


@jit
def layer_norm_forward(r, gamma, beta, eps, y, r_hat, rstd):
    """y = r_hat * gamma + beta, r_hat = (r - mean) * rstd, rstd = 1 / sqrt(var + eps), per row.

    r, y, r_hat (N, d); gamma, beta (d,); rstd (N,). var is the biased variance (as torch).
    """
    N, d = r.shape
    inv_d = scalar_like(1.0 / d, r)
    eps_ = scalar_like(eps, r)
    one = scalar_like(1.0, r)
    for n in range(N):
        row, hat, out = r[n], r_hat[n], y[n]
        mean = scalar_like(0.0, r)
        for j in range(d):
            mean += row[j]
        mean *= inv_d
        var = scalar_like(0.0, r)
        for j in range(d):
            c = row[j] - mean
            var += c * c
        var *= inv_d
        s = one / math.sqrt(var + eps_)
        rstd[n] = s
        for j in range(d):
            hat[j] = (row[j] - mean) * s
        for j in range(d):
            out[j] = hat[j] * gamma[j] + beta[j]


@jit
def layer_norm_backward(dy, r_hat, rstd, gamma, dr, dgamma, dbeta):
    """dr = rstd * (g - mean(g) - r_hat * mean(g * r_hat)) with g = dy * gamma, per row;
    dgamma = sum_rows dy * r_hat, dbeta = sum_rows dy (both overwritten)."""
    N, d = dy.shape
    inv_d = scalar_like(1.0 / d, dy)
    dgamma[:] = 0
    dbeta[:] = 0
    g = np.empty(d, dy.dtype)
    for n in range(N):
        dy_n, hat, out = dy[n], r_hat[n], dr[n]
        mean_g = scalar_like(0.0, dy)
        mean_gh = scalar_like(0.0, dy)
        for j in range(d):
            g[j] = dy_n[j] * gamma[j]
        for j in range(d):  # no store in a reduction's loop: see _common.sum_of
            mean_g += g[j]
            mean_gh += g[j] * hat[j]
        mean_g *= inv_d
        mean_gh *= inv_d
        s = rstd[n]
        for j in range(d):
            out[j] = s * (g[j] - mean_g - hat[j] * mean_gh)
        for j in range(d):
            dgamma[j] += dy_n[j] * hat[j]
            dbeta[j] += dy_n[j]


@jit
def activation_forward(a, gelu, out):
    """out = relu(a) = max(a, 0), or gelu(a) = a * Phi(a) = a/2 * (1 + erf(a / sqrt 2)); a, out (N, F)."""
    half = scalar_like(0.5, a)
    one = scalar_like(1.0, a)
    zero = scalar_like(0.0, a)
    inv_sqrt2 = scalar_like(1.0 / math.sqrt(2.0), a)
    N, F = a.shape
    for n in range(N):
        a_n, o_n = a[n], out[n]
        if gelu:
            for j in range(F):
                o_n[j] = half * a_n[j] * (one + math.erf(a_n[j] * inv_sqrt2))
        else:
            for j in range(F):
                o_n[j] = max(a_n[j], zero)


@jit
def activation_backward(a, d, gelu):
    """d *= act'(a), in place: d (N, F) holds dL/d(act(a)) on entry and dL/da on return.

    relu' = [a > 0] (the gradient is zeroed where a <= 0, as torch's threshold_backward);
    gelu' = Phi(a) + a * phi(a), phi the standard normal density.
    """
    half = scalar_like(0.5, a)
    one = scalar_like(1.0, a)
    zero = scalar_like(0.0, a)
    inv_sqrt2 = scalar_like(1.0 / math.sqrt(2.0), a)
    inv_sqrt2pi = scalar_like(1.0 / math.sqrt(2.0 * math.pi), a)
    N, F = a.shape
    for n in range(N):
        a_n, d_n = a[n], d[n]
        if gelu:
            for j in range(F):
                x = a_n[j]
                cdf = half * (one + math.erf(x * inv_sqrt2))
                pdf = inv_sqrt2pi * math.exp(-half * x * x)
                d_n[j] *= cdf + x * pdf
        else:
            for j in range(F):  # written as a masked store: an in-place select would stay scalar
                if a_n[j] <= zero:
                    d_n[j] = zero


# ---------------------------------------------------------------------------------------------
# the sublayers, on (N, d) rows with N = T * B
# ---------------------------------------------------------------------------------------------


def _linear(u, w, b, n_threads):
    """u W^T + b for u (N, K), w (M, K), b (M,)."""
    out = matmul_rows(u, w.T, n_threads)
    add_row(out, b)
    return out


def _linear_backward(d_out, u, w, n_threads):
    """(du, dW, db) of out = u W^T + b."""
    return (matmul_rows(d_out, w, n_threads), matmul_tn_rows(d_out, u, n_threads), d_out.sum(axis=0))


def mha_forward(u, w_in, b_in, w_out, b_out, num_heads, lengths, causal, T, B, n_threads):
    """Multi-head self-attention of u (T*B, d) rows; returns (MHA(u) rows, qkv, P, o) with
    qkv (T*B, 3d) = [Q | K | V], P (B, H, T, T) and o (T*B, d) = [O_1 | ... | O_H]."""
    d = u.shape[1]
    qkv = _linear(u, w_in, b_in, n_threads)
    P = np.empty((B, num_heads, T, T), u.dtype)
    o = np.empty((T, B, d), u.dtype)
    qkv_3 = qkv.reshape(T, B, 3 * d)
    run_batch_chunks(B, T * T * d * 2, n_threads,
                     lambda b0, b1: attention_heads_forward(qkv_3, num_heads, lengths, causal, P, o, b0, b1))
    o = o.reshape(T * B, d)
    return _linear(o, w_out, b_out, n_threads), qkv, P, o


def mha_backward(d_mha, u, w_in, w_out, qkv, P, o, T, B, n_threads):
    """Gradients of MHA(u) given d_mha (T*B, d): (du, dW_in, db_in, dW_out, db_out)."""
    d = u.shape[1]
    num_heads = P.shape[1]
    d_o, dw_out, db_out = _linear_backward(d_mha, o, w_out, n_threads)
    d_qkv = np.empty((T, B, 3 * d), u.dtype)
    qkv_3, d_o_3 = qkv.reshape(T, B, 3 * d), d_o.reshape(T, B, d)
    run_batch_chunks(B, T * T * d * 4, n_threads,
                     lambda b0, b1: attention_heads_backward(qkv_3, P, d_o_3, num_heads, d_qkv, b0, b1))
    du, dw_in, db_in = _linear_backward(d_qkv.reshape(T * B, 3 * d), u, w_in, n_threads)
    return du, dw_in, db_in, dw_out, db_out


def _layer_norm(r, gamma, beta, eps):
    y, r_hat, rstd = np.empty_like(r), np.empty_like(r), np.empty(r.shape[0], r.dtype)
    layer_norm_forward(r, gamma, beta, eps, y, r_hat, rstd)
    return y, r_hat, rstd


def _layer_norm_backward(dy, r_hat, rstd, gamma):
    dr, dgamma, dbeta = np.empty_like(dy), np.empty_like(gamma), np.empty_like(gamma)
    layer_norm_backward(dy, r_hat, rstd, gamma, dr, dgamma, dbeta)
    return dr, dgamma, dbeta


# ---------------------------------------------------------------------------------------------
# the block
# ---------------------------------------------------------------------------------------------


def block_forward(x, w_in, b_in, w_out, b_out, w_1, b_1, w_2, b_2, gamma_1, beta_1, gamma_2, beta_2,
                  num_heads, lengths, causal, norm_first, gelu, eps, n_threads):
    """The encoder block over x (T, B, d); see the module docstring for the equations.

    ``lengths`` (B,) int64; ``causal``, ``norm_first``, ``gelu`` booleans; ``eps`` layer norm's.
    Returns ``(y, saved)``: y (T, B, d) and a dict of what :func:`block_backward` needs, which
    also holds the records: ``qkv`` (T*B, 3d) = [Q | K | V] (Q before the 1/sqrt(d_head)
    scaling), ``P`` (B, H, T, T), the attention weights, and ``z`` (T*B, d), the first sublayer's output.
    """
    T, B, d = x.shape
    xr = x.reshape(T * B, d)
    s: dict = {}
    if norm_first:  # z = x + MHA(LN1(x)); y = z + FFN(LN2(z))
        u1, s["hat1"], s["rstd1"] = _layer_norm(xr, gamma_1, beta_1, eps)
    else:  # z = LN1(x + MHA(x)); y = LN2(z + FFN(z))
        u1 = xr
    a, s["qkv"], s["P"], s["o"] = mha_forward(u1, w_in, b_in, w_out, b_out, num_heads, lengths, causal,
                                              T, B, n_threads)
    a += xr  # the residual x + MHA(u1), in place: fresh memory costs page faults
    if norm_first:
        z = a
        u2, s["hat2"], s["rstd2"] = _layer_norm(z, gamma_2, beta_2, eps)
    else:
        z, s["hat1"], s["rstd1"] = _layer_norm(a, gamma_1, beta_1, eps)
        u2 = z
    s["a1"] = _linear(u2, w_1, b_1, n_threads)  # pre-activation of the feed-forward layer
    s["h1"] = np.empty_like(s["a1"])
    activation_forward(s["a1"], gelu, s["h1"])
    f = _linear(s["h1"], w_2, b_2, n_threads)
    f += z  # the residual z + FFN(u2)
    if norm_first:
        y = f
    else:
        y, s["hat2"], s["rstd2"] = _layer_norm(f, gamma_2, beta_2, eps)
    s["u1"], s["u2"], s["z"] = u1, u2, z
    return y.reshape(T, B, d), s


def block_backward(dy, saved, w_in, w_out, w_1, w_2, gamma_1, gamma_2, norm_first, gelu, n_threads):
    """Gradients of the block given dL/dy (T, B, d) and ``saved`` from :func:`block_forward`.

    Returns (dx, grads) with grads keyed ``w_in, b_in, w_out, b_out, w_1, b_1, w_2, b_2,
    gamma_1, beta_1, gamma_2, beta_2``.
    """
    T, B, d = dy.shape
    s = saved
    g: dict = {}
    dy = dy.reshape(T * B, d)
    if norm_first:  # y = z + FFN(LN2(z))
        d_f = dz = dy
    else:  # y = LN2(z + f)
        d_f, g["gamma_2"], g["beta_2"] = _layer_norm_backward(dy, s["hat2"], s["rstd2"], gamma_2)
        dz = d_f
    d_a1, g["w_2"], g["b_2"] = _linear_backward(d_f, s["h1"], w_2, n_threads)  # dL/dh1 ...
    activation_backward(s["a1"], d_a1, gelu)  # ... times act'(a1), in place: dL/da1
    d_u2, g["w_1"], g["b_1"] = _linear_backward(d_a1, s["u2"], w_1, n_threads)
    # the sums of two paths below are written into the fresh term (dy itself must stay untouched)
    if norm_first:  # u2 = LN2(z)
        d_ln2, g["gamma_2"], g["beta_2"] = _layer_norm_backward(d_u2, s["hat2"], s["rstd2"], gamma_2)
        d_ln2 += dz
        d_mha = dx = dz = d_ln2  # z = x + MHA(u1)
    else:  # u2 = z = LN1(x + MHA(x))
        d_u2 += dz
        dz = d_u2
        d_mha, g["gamma_1"], g["beta_1"] = _layer_norm_backward(dz, s["hat1"], s["rstd1"], gamma_1)
        dx = d_mha
    d_u1, g["w_in"], g["b_in"], g["w_out"], g["b_out"] = mha_backward(
        d_mha, s["u1"], w_in, w_out, s["qkv"], s["P"], s["o"], T, B, n_threads)
    if norm_first:  # u1 = LN1(x)
        d_ln1, g["gamma_1"], g["beta_1"] = _layer_norm_backward(d_u1, s["hat1"], s["rstd1"], gamma_1)
        d_ln1 += dx
        dx = d_ln1
    else:  # u1 = x
        d_u1 += dx
        dx = d_u1
    return dx.reshape(T, B, d), g
