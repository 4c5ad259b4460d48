"""Plain NumPy float64 reference of the Transformer encoder block and the sinusoidal positional encoding.

The slow, obviously-correct twin of :mod:`rnnlab.kernels.selfattention`: every equation once, in
float64, one sequence and one head at a time, nothing fused. It validates nothing.

Conventions (``torch.nn.TransformerEncoderLayer(batch_first=False, dropout=0)``)::

    x, y                       (T, B, d)      time-major, d = d_model
    lengths                    (B,)           keys t >= lengths[b] are padding; None = all T
    self_attn.in_proj_weight   (3d, d)        rows [W_q; W_k; W_v]
    self_attn.in_proj_bias     (3d,)
    self_attn.out_proj.weight  (d, d)         W_o,  bias (d,)
    linear1.weight             (d_ff, d)      W_1,  bias (d_ff,)
    linear2.weight             (d, d_ff)      W_2,  bias (d,)
    norm1.weight / .bias       (d,)           gamma_1, beta_1;  norm2 likewise

The block (``norm_first=False``, post-norm; ``True``, pre-norm)::

    post:  z = LN1(x + MHA(x))          y = LN2(z + FFN(z))
    pre:   z = x + MHA(LN1(x))          y = z + FFN(LN2(z))

    MHA(u):  q = u W_q^T + b_q,  k = u W_k^T + b_k,  v = u W_v^T + b_v       (per sequence, (T, d))
             head h uses columns h*d_head:(h+1)*d_head (q_h, k_h, v_h: (T, d_head)), d_head = d / H
             s_h = q_h k_h^T / sqrt(d_head)                                 (T, T)
             s_h[i, j] = -inf if j >= length or (causal and j > i)
             p_h = softmax(s_h, axis=keys)
             o   = concat_h(p_h v_h)                                        (T, d)
             MHA(u) = o W_o^T + b_o
    FFN(u) = act(u W_1^T + b_1) W_2^T + b_2,   act = relu | gelu(a) = a * Phi(a)
    LN(r)  = (r - mean(r)) / sqrt(var(r) + eps) * gamma + beta              over features

Positional encoding (Vaswani et al. 2017, section 3.5)::

    PE[pos, 2i]   = sin(pos / 10000^(2i / d))
    PE[pos, 2i+1] = cos(pos / 10000^(2i / d))

Public: :func:`positional_encoding`, :func:`block_forward`, :func:`block_backward`,
:data:`PARAM_NAMES`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["PARAM_NAMES", "positional_encoding", "block_forward", "block_backward"]

#: torch.nn.TransformerEncoderLayer's state_dict names, in its order.
PARAM_NAMES = (
    "self_attn.in_proj_weight", "self_attn.in_proj_bias",
    "self_attn.out_proj.weight", "self_attn.out_proj.bias",
    "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
    "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
)


def positional_encoding(T, d_model):
    """The sinusoidal table PE (T, d_model), float64, written entry by entry."""
    pe = np.zeros((T, d_model))
    for pos in range(T):
        for i in range(0, d_model, 2):
            angle = pos / 10000.0 ** (i / d_model)
            pe[pos, i] = math.sin(angle)
            if i + 1 < d_model:
                pe[pos, i + 1] = math.cos(angle)
    return pe


# --------------------------------------------------------------------------
# pieces, forward and backward
# --------------------------------------------------------------------------

def _f64(params):
    return {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}


def _layer_norm(r, gamma, beta, eps):
    mean = r.mean(axis=-1, keepdims=True)
    var = ((r - mean) ** 2).mean(axis=-1, keepdims=True)  # biased, as torch
    r_hat = (r - mean) / np.sqrt(var + eps)
    return r_hat * gamma + beta, (r_hat, var)


def _layer_norm_backward(dy, gamma, cache, eps):
    """The full Jacobian of LN applied to dy, row by row: dr = J^T dy."""
    r_hat, var = cache
    d = r_hat.shape[-1]
    rstd = 1.0 / np.sqrt(var + eps)
    dr = np.empty_like(dy)
    for idx in np.ndindex(dy.shape[:-1]):
        # d r_hat_j / d r_k = rstd * (delta_jk - 1/d - r_hat_j r_hat_k / d)
        J = rstd[idx] * (np.eye(d) - 1.0 / d - np.outer(r_hat[idx], r_hat[idx]) / d)
        dr[idx] = J.T @ (dy[idx] * gamma)
    dgamma = (dy * r_hat).reshape(-1, d).sum(axis=0)
    dbeta = dy.reshape(-1, d).sum(axis=0)
    return dr, dgamma, dbeta


def _act(a, activation):
    if activation == "relu":
        return np.maximum(a, 0.0)
    erf = np.vectorize(math.erf)
    return 0.5 * a * (1.0 + erf(a / math.sqrt(2.0)))


def _act_grad(a, activation):
    if activation == "relu":
        return (a > 0.0).astype(np.float64)
    erf = np.vectorize(math.erf)
    cdf = 0.5 * (1.0 + erf(a / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)
    return cdf + a * pdf


def _visible(T, length, causal):
    """visible[i, j]: may query i attend to key j?"""
    i, j = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
    ok = j < length
    if causal:
        ok &= j <= i
    return ok


def _mha(p, u, num_heads, lengths, causal):
    """Multi-head attention of u (T, B, d); returns (out, cache)."""
    T, B, d = u.shape
    dh = d // num_heads
    W_q, W_k, W_v = np.split(p["self_attn.in_proj_weight"], 3)
    b_q, b_k, b_v = np.split(p["self_attn.in_proj_bias"], 3)
    q = u @ W_q.T + b_q
    k = u @ W_k.T + b_k
    v = u @ W_v.T + b_v
    attn = np.zeros((B, num_heads, T, T))
    o = np.zeros((T, B, d))
    for b in range(B):
        visible = _visible(T, lengths[b], causal)
        for h in range(num_heads):
            cols = slice(h * dh, (h + 1) * dh)
            s = q[:, b, cols] @ k[:, b, cols].T / math.sqrt(dh)
            s = np.where(visible, s, -np.inf)
            e = np.exp(s - s.max(axis=1, keepdims=True))
            attn[b, h] = e / e.sum(axis=1, keepdims=True)
            o[:, b, cols] = attn[b, h] @ v[:, b, cols]
    out = o @ p["self_attn.out_proj.weight"].T + p["self_attn.out_proj.bias"]
    return out, (u, q, k, v, attn, o)


def _mha_backward(p, d_out, cache, num_heads):
    u, q, k, v, attn, o = cache
    T, B, d = u.shape
    dh = d // num_heads
    g = {}
    W_o = p["self_attn.out_proj.weight"]
    g["self_attn.out_proj.weight"] = np.einsum("tbi,tbj->ij", d_out, o)
    g["self_attn.out_proj.bias"] = d_out.sum(axis=(0, 1))
    do = d_out @ W_o
    dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    for b in range(B):
        for h in range(num_heads):
            cols = slice(h * dh, (h + 1) * dh)
            P = attn[b, h]
            dP = do[:, b, cols] @ v[:, b, cols].T
            dv[:, b, cols] = P.T @ do[:, b, cols]
            # softmax Jacobian per row i: dS_i = (diag(P_i) - P_i P_i^T) dP_i
            dS = np.stack([(np.diag(P[i]) - np.outer(P[i], P[i])) @ dP[i] for i in range(T)])
            dS /= math.sqrt(dh)
            dq[:, b, cols] = dS @ k[:, b, cols]
            dk[:, b, cols] = dS.T @ q[:, b, cols]
    W_q, W_k, W_v = np.split(p["self_attn.in_proj_weight"], 3)
    du = dq @ W_q + dk @ W_k + dv @ W_v
    g["self_attn.in_proj_weight"] = np.concatenate(
        [np.einsum("tbi,tbj->ij", dz, u) for dz in (dq, dk, dv)], axis=0)
    g["self_attn.in_proj_bias"] = np.concatenate([dz.sum(axis=(0, 1)) for dz in (dq, dk, dv)])
    return du, g


def _ffn(p, u, activation):
    a1 = u @ p["linear1.weight"].T + p["linear1.bias"]
    h1 = _act(a1, activation)
    return h1 @ p["linear2.weight"].T + p["linear2.bias"], (u, a1, h1)


def _ffn_backward(p, d_out, cache, activation):
    u, a1, h1 = cache
    g = {"linear2.weight": np.einsum("tbi,tbj->ij", d_out, h1), "linear2.bias": d_out.sum(axis=(0, 1))}
    d_a1 = (d_out @ p["linear2.weight"]) * _act_grad(a1, activation)
    g["linear1.weight"] = np.einsum("tbi,tbj->ij", d_a1, u)
    g["linear1.bias"] = d_a1.sum(axis=(0, 1))
    return d_a1 @ p["linear1.weight"], g


def _lengths(lengths, T, B):
    return np.full(B, T, dtype=np.int64) if lengths is None else np.asarray(lengths, dtype=np.int64)


# --------------------------------------------------------------------------
# the block
# --------------------------------------------------------------------------

def block_forward(params, x, num_heads, *, lengths=None, causal=False, norm_first=False,
                  activation="relu", eps=1e-5):
    """The encoder block on x (T, B, d); returns (y, records) with records ``attn`` (B, H, T, T),
    ``q``, ``k``, ``v`` (T, B, d) (q unscaled) and ``z`` (T, B, d), the output of the first sublayer."""
    p = _f64(params)
    x = np.asarray(x, dtype=np.float64)
    T, B, _ = x.shape
    lengths = _lengths(lengths, T, B)
    ln1 = (p["norm1.weight"], p["norm1.bias"], eps)
    ln2 = (p["norm2.weight"], p["norm2.bias"], eps)
    if norm_first:
        u1, _ = _layer_norm(x, *ln1)
        a, mha = _mha(p, u1, num_heads, lengths, causal)
        z = x + a
        u2, _ = _layer_norm(z, *ln2)
        f, _ = _ffn(p, u2, activation)
        y = z + f
    else:
        a, mha = _mha(p, x, num_heads, lengths, causal)
        z, _ = _layer_norm(x + a, *ln1)
        f, _ = _ffn(p, z, activation)
        y, _ = _layer_norm(z + f, *ln2)
    _, q, k, v, attn, _ = mha
    return y, {"attn": attn, "q": q, "k": k, "v": v, "z": z}


def block_backward(params, x, dy, num_heads, *, lengths=None, causal=False, norm_first=False,
                   activation="relu", eps=1e-5):
    """Gradients of L = sum(y * dy) for every parameter (torch names) and ``"input"``."""
    p = _f64(params)
    x = np.asarray(x, dtype=np.float64)
    dy = np.asarray(dy, dtype=np.float64)
    T, B, _ = x.shape
    lengths = _lengths(lengths, T, B)
    g1, b1 = p["norm1.weight"], p["norm1.bias"]
    g2, b2 = p["norm2.weight"], p["norm2.bias"]
    grads = {}
    if norm_first:
        u1, c1 = _layer_norm(x, g1, b1, eps)
        a, mha = _mha(p, u1, num_heads, lengths, causal)
        z = x + a
        u2, c2 = _layer_norm(z, g2, b2, eps)
        _, ffn = _ffn(p, u2, activation)
        # y = z + FFN(u2)
        d_u2, g = _ffn_backward(p, dy, ffn, activation)
        grads.update(g)
        d_z_ln, grads["norm2.weight"], grads["norm2.bias"] = _layer_norm_backward(d_u2, g2, c2, eps)
        dz = dy + d_z_ln
        # z = x + MHA(u1)
        d_u1, g = _mha_backward(p, dz, mha, num_heads)
        grads.update(g)
        d_x_ln, grads["norm1.weight"], grads["norm1.bias"] = _layer_norm_backward(d_u1, g1, c1, eps)
        dx = dz + d_x_ln
    else:
        a, mha = _mha(p, x, num_heads, lengths, causal)
        z, c1 = _layer_norm(x + a, g1, b1, eps)
        f, ffn = _ffn(p, z, activation)
        _, c2 = _layer_norm(z + f, g2, b2, eps)
        # y = LN2(z + f)
        d_r2, grads["norm2.weight"], grads["norm2.bias"] = _layer_norm_backward(dy, g2, c2, eps)
        d_z_ffn, g = _ffn_backward(p, d_r2, ffn, activation)
        grads.update(g)
        dz = d_r2 + d_z_ffn
        # z = LN1(x + a)
        d_r1, grads["norm1.weight"], grads["norm1.bias"] = _layer_norm_backward(dz, g1, c1, eps)
        d_x_mha, g = _mha_backward(p, d_r1, mha, num_heads)
        grads.update(g)
        dx = d_r1 + d_x_mha
    out = {name: grads[name] for name in PARAM_NAMES}
    out["input"] = dx
    return out
