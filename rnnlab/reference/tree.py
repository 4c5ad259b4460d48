"""Plain NumPy float64 reference of the recursive (tree) network, written recursively.

The slow, obviously-correct twin of :mod:`rnnlab.kernels.tree`: it walks each tree from its root
with Python recursion, one equation per line, in float64 with exact ``np.tanh``. One tree at a
time; nodes are numbered in post-order as in :class:`rnnlab.data.trees.Tree`.

Parameters (``torch.nn.Embedding`` / ``torch.nn.Linear`` names)::

    embedding.weight   E  (V, H)
    compose.weight     W  (H, 2H) = [W_l | W_r]
    compose.bias       b  (H,)

Forward::

    h(leaf)  = E[word]                                  (no tanh on leaves)
    h(node)  = tanh(W_l h(left) + W_r h(right) + b)

Backward (backpropagation through structure), for a loss whose gradient w.r.t. each node's
vector from outside the net is ``d_nodes[n]``; ``g`` is what the parent sends down::

    dh_n  = d_nodes[n] + g
    da_n  = dh_n * (1 - h_n^2)
    send  W_l^T da_n to the left child, W_r^T da_n to the right one
    dW   += outer(da_n, [h_left; h_right]),  db += da_n,  dE[word_n] += dh_n (leaves)
"""

from __future__ import annotations

import numpy as np

__all__ = ["forward", "backward", "PARAM_NAMES"]

PARAM_NAMES = ("embedding.weight", "compose.weight", "compose.bias")


def _params(params):
    E = np.asarray(params["embedding.weight"], np.float64)
    W = np.asarray(params["compose.weight"], np.float64)
    b = np.asarray(params["compose.bias"], np.float64)
    H = W.shape[0]
    return E, W[:, :H], W[:, H:], b


def forward(params, left, right, word):
    """Every node's vector ``(n, H)`` of one tree given by post-order ``left``, ``right``, ``word``."""
    E, W_l, W_r, b = _params(params)
    n = len(left)
    h = np.full((n, E.shape[1]), np.nan)

    def vector(i):
        if left[i] < 0:
            h[i] = E[word[i]]
        else:
            h_left = vector(left[i])
            h_right = vector(right[i])
            h[i] = np.tanh(W_l @ h_left + W_r @ h_right + b)
        return h[i]

    vector(n - 1)  # the root is the last node
    return h


def backward(params, left, right, word, h, d_nodes):
    """Gradients of one tree: dict with the three parameter names plus ``"dh"`` (n, H), the total
    dL/dh of every node. ``h`` comes from :func:`forward`; ``d_nodes`` (n, H) as in the module docstring."""
    E, W_l, W_r, b = _params(params)
    H = E.shape[1]
    d_nodes = np.asarray(d_nodes, np.float64)
    dE = np.zeros_like(E)
    dW_l = np.zeros_like(W_l)
    dW_r = np.zeros_like(W_r)
    db = np.zeros_like(b)
    dh = np.full((len(left), H), np.nan)

    def back(i, g):
        dh[i] = d_nodes[i] + g
        if left[i] < 0:
            dE[word[i]] += dh[i]
            return
        da = dh[i] * (1.0 - h[i] ** 2)
        dW_l[...] += np.outer(da, h[left[i]])
        dW_r[...] += np.outer(da, h[right[i]])
        db[...] += da
        back(left[i], W_l.T @ da)
        back(right[i], W_r.T @ da)

    back(len(left) - 1, np.zeros(H))
    return {"embedding.weight": dE, "compose.weight": np.concatenate([dW_l, dW_r], axis=1),
            "compose.bias": db, "dh": dh}
