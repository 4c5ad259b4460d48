"""Recursive (tree) network over a batch of binary trees: forward, and backpropagation through structure.

Nodes of every tree are numbered in post-order (children before parents) and the trees are laid
one after another, so one pass in index order computes every child before its parent::

    leaf n:      h_n = E[word_n]                                  (the embedding row, no tanh)
    internal n:  a_n = W_l h_left(n) + W_r h_right(n) + b,   h_n = tanh(a_n)

with W = [W_l | W_r] (H, 2H) as ``torch.nn.Linear(2H, H).weight``: columns 0..H-1 read the left
child, H..2H-1 the right one. Leaves are not squashed: an embedding row is a free parameter, so a
tanh would only limit its range.

Backpropagation through structure, in reverse index order (each node's parent comes later, so its
gradient is complete when the node is reached)::

    dh_n   = d_nodes[n] + (what n's parent sent down)       total dL/dh_n
    da_n   = dh_n * (1 - h_n^2)                              internal nodes
    dh_left(n)  += W_l^T da_n,     dh_right(n) += W_r^T da_n
    dW = sum_n da_n [h_left(n); h_right(n)]^T,   db = sum_n da_n,   dE[word_n] += dh_n (leaves)

Shapes: embedding (V, H); weight (H, 2H); bias (H,); left, right, word (N,) int64 (children's
batch-wide indices or -1 for a leaf; a leaf's word id or -1); offsets (B+1,) int64, tree b owning
nodes offsets[b]:offsets[b+1]; h, d_nodes, dh (N, H). Trees are independent, so chunks of trees
run on separate threads (above a work threshold); the weight gradient is one GEMM after the loop.
"""

from __future__ import annotations

import numpy as np

from ._common import matmul_tn_rows, run_batch_chunks, scalar_like
from ._gemm import matmul_into, pack_panels, pack_panels_t
from ._jit import jit
from ._math import tanh


@jit
def tree_forward_nodes(embedding, w_p, bias, left, right, word, h, n0, n1):
    """h_n for nodes n0..n1-1 in index order; w_p = W^T (2H, H) as panels (pack_panels_t): rows
    0..H-1 of W^T are W_l^T, H..2H-1 W_r^T."""
    H = h.shape[1]
    x = np.empty((1, 2 * H), h.dtype)  # [h_left; h_right]
    for n in range(n0, n1):
        h_n = h[n]
        if left[n] < 0:  # a leaf: its word's embedding row
            h_n[:] = embedding[word[n]]
            continue
        x[0, :H] = h[left[n]]
        x[0, H:] = h[right[n]]
        matmul_into(x, w_p, h[n: n + 1])  # W [h_left; h_right]
        for j in range(H):
            h_n[j] = tanh(h_n[j] + bias[j])


def tree_forward(embedding, weight, bias, left, right, word, offsets, n_threads):
    """Every node's vector h (N, H) of the trees described by (left, right, word, offsets)."""
    N = left.shape[0]
    B = offsets.shape[0] - 1
    H = weight.shape[0]
    w_p = pack_panels_t(weight)  # W^T (2H, H) as panels for matmul_into
    h = np.empty((N, H), embedding.dtype)
    run_batch_chunks(B, 2 * H * H * max(N // max(B, 1), 1), n_threads, lambda b0, b1: tree_forward_nodes(
        embedding, w_p, bias, left, right, word, h, int(offsets[b0]), int(offsets[b1])))
    return h


@jit
def tree_backward_nodes(weight_p, h, left, right, dh, da, n0, n1):
    """Reverse pass over nodes n1-1..n0. dh (N, H) enters holding the outside gradients d_nodes and
    leaves holding the total dL/dh_n; da (N, H) receives dL/da_n (zero rows for leaves)."""
    H = h.shape[1]
    one = scalar_like(1.0, h)
    d_x = np.empty((1, 2 * H), h.dtype)  # W^T da = [dL/dh_left; dL/dh_right] through this node
    for n in range(n1 - 1, n0 - 1, -1):
        da_n = da[n]
        if left[n] < 0:
            da_n[:] = 0
            continue
        h_n, dh_n = h[n], dh[n]
        for j in range(H):  # through tanh
            da_n[j] = dh_n[j] * (one - h_n[j] * h_n[j])
        matmul_into(da[n: n + 1], weight_p, d_x)  # (1, H) @ (H, 2H)
        dh_l, dh_r = dh[left[n]], dh[right[n]]
        for k in range(H):
            dh_l[k] += d_x[0, k]
        for k in range(H):
            dh_r[k] += d_x[0, H + k]


@jit
def scatter_add_rows(d_embedding, word, dh):
    """d_embedding[word_n] += dh_n for every leaf n (word_n >= 0); a word used twice gets both."""
    H = dh.shape[1]
    for n in range(word.shape[0]):
        w = word[n]
        if w >= 0:
            row, g = d_embedding[w], dh[n]
            for j in range(H):
                row[j] += g[j]


def tree_backward(weight, h, left, right, word, offsets, d_nodes, vocab_size, n_threads):
    """Backpropagation through structure for the loss whose gradient w.r.t. every node's vector
    (from outside the net, e.g. a readout on the roots) is ``d_nodes`` (N, H).

    Returns (d_embedding (V, H), d_weight (H, 2H), d_bias (H,), dh (N, H)), dh the total dL/dh_n.
    """
    N, H = h.shape
    B = offsets.shape[0] - 1
    dh = np.array(d_nodes, dtype=h.dtype, order="C", copy=True)
    da = np.empty((N, H), h.dtype)
    weight_p = pack_panels(weight)  # packed for matmul_into
    run_batch_chunks(B, 2 * H * H * max(N // max(B, 1), 1), n_threads, lambda b0, b1: tree_backward_nodes(
        weight_p, h, left, right, dh, da, int(offsets[b0]), int(offsets[b1])))
    internal = np.flatnonzero(left >= 0)
    da_int = da[internal]  # (M, H)
    children = np.concatenate([h[left[internal]], h[right[internal]]], axis=1)  # (M, 2H): [h_l; h_r]
    if internal.size:
        d_weight = matmul_tn_rows(da_int, children, n_threads)
    else:  # a batch of one-word trees: the composition is never used
        d_weight = np.zeros((H, 2 * H), h.dtype)
    d_bias = da_int.sum(axis=0, dtype=h.dtype)
    d_embedding = np.zeros((vocab_size, H), h.dtype)
    scatter_add_rows(d_embedding, word, dh)
    return d_embedding, d_weight, d_bias, dh
