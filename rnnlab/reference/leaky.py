"""Plain NumPy float64 reference of the leaky-integrator RNN (:class:`rnnlab.layers.leaky.LeakyRNN`).

The slow, obviously-correct twin of :mod:`rnnlab.kernels.leaky`, one equation per line::

    a   = sigmoid(alpha)                                   (H,)  per-unit rate, 0 < a < 1; tau = 1 / a
    u_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)      (B, H) the candidate
    h_t = (1 - a) * h_{t-1} + a * u_t                      (B, H)

Parameters (per layer k and direction): ``weight_ih_l{k}[_reverse]`` (H, I_k),
``weight_hh_l{k}[_reverse]`` (H, H), ``bias_ih_l{k}[_reverse]``, ``bias_hh_l{k}[_reverse]`` (H,)
(optional) and ``alpha_l{k}[_reverse]`` (H,). Stacking and bidirectionality as in
:mod:`rnnlab.reference.recurrent` (x (T, B, I) time-major; h0 (L*D, B, H); y (T, B, D*H)).
"""

from __future__ import annotations

import numpy as np

from .recurrent import _cell_params, _initial_state, _sigmoid, _suffix, _time_order

__all__ = ["forward", "backward", "param_names"]


def param_names(num_layers=1, bidirectional=False, bias=True):
    """The LeakyRNN's ``state_dict`` names, in its order."""
    names = []
    for layer in range(num_layers):
        for direction in range(2 if bidirectional else 1):
            s = _suffix(layer, direction)
            names += [f"weight_ih{s}", f"weight_hh{s}"]
            if bias:
                names += [f"bias_ih{s}", f"bias_hh{s}"]
            names.append(f"alpha{s}")
    return names


def _direction_forward(W_ih, W_hh, b_ih, b_hh, alpha, x, h0, direction):
    """One layer and direction; returns (h_last, rec) with rec "h", "u" (T, B, H) in natural time order."""
    T, B, _ = x.shape
    H = W_hh.shape[1]
    a = _sigmoid(alpha)
    rec = {"h": np.zeros((T, B, H)), "u": np.zeros((T, B, H))}
    h = h0
    for t in _time_order(T, direction):
        u = np.tanh(x[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
        h = (1.0 - a) * h + a * u
        rec["u"][t], rec["h"][t] = u, h
    return h, rec


def forward(params, x, h0=None, *, num_layers=1, bidirectional=False):
    """Forward pass in float64. Returns ``(y (T, B, D*H), h_n (L*D, B, H), records)`` where
    ``records[(layer, direction)]`` holds "h" and "u" (T, B, H) in natural time order and "a" (H,)."""
    x = np.asarray(x, dtype=np.float64)
    T, B, _ = x.shape
    D = 2 if bidirectional else 1
    H = np.shape(params["weight_hh_l0"])[1]
    h0 = _initial_state(h0, num_layers, D, B, H)
    h_n = np.zeros((num_layers * D, B, H))
    records = {}
    layer_input = x
    for layer in range(num_layers):
        outputs = []
        for direction in range(D):
            k = layer * D + direction
            W_ih, W_hh, b_ih, b_hh = _cell_params(params, layer, direction)
            alpha = np.asarray(params["alpha" + _suffix(layer, direction)], dtype=np.float64)
            h_n[k], rec = _direction_forward(W_ih, W_hh, b_ih, b_hh, alpha, layer_input, h0[k], direction)
            rec["a"] = _sigmoid(alpha)
            records[(layer, direction)] = rec
            outputs.append(rec["h"])
        layer_input = np.concatenate(outputs, axis=2)
    return layer_input, h_n, records


def _direction_backward(W_ih, W_hh, alpha, x, h0, rec, direction, dout, dh_last, truncate):
    """BPTT for one layer and direction. Returns (dx, dh0, dW_ih, dW_hh, db, dalpha, dh_total)."""
    T = x.shape[0]
    order = list(_time_order(T, direction))
    a = _sigmoid(alpha)
    dW_ih, dW_hh = np.zeros_like(W_ih), np.zeros_like(W_hh)
    db = np.zeros(W_hh.shape[0])
    da = np.zeros_like(a)
    dx = np.zeros_like(x)
    dh_total = np.zeros_like(dout)
    dh_next = dh_last.copy()
    for s in range(T - 1, -1, -1):
        t = order[s]
        h_prev = h0 if s == 0 else rec["h"][order[s - 1]]
        u = rec["u"][t]
        dh = dout[t] + dh_next                     # dL/dh_t
        dh_total[t] = dh
        # h_t = (1 - a) h_{t-1} + a u_t
        du = dh * a
        da += (dh * (u - h_prev)).sum(axis=0)
        # u_t = tanh(pre),  pre = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
        d_pre = du * (1.0 - u * u)
        dW_ih += d_pre.T @ x[t]
        dW_hh += d_pre.T @ h_prev
        db += d_pre.sum(axis=0)
        dx[t] = d_pre @ W_ih
        dh_next = d_pre @ W_hh + (1.0 - a) * dh
        if truncate is not None and s > 0 and s % truncate == 0:
            dh_next = np.zeros_like(dh_next)
    dalpha = da * a * (1.0 - a)                    # a = sigmoid(alpha)
    return dx, dh_next, dW_ih, dW_hh, db, dalpha, dh_total


def backward(params, x, h0=None, *, num_layers=1, bidirectional=False, dy=None, dh_n=None, truncate=None):
    """Gradient of ``L = sum(y * dy) + sum(h_n * dh_n)`` by explicit BPTT, float64.

    ``truncate`` as in :func:`rnnlab.reference.recurrent.backward`. Returns a dict: every parameter
    name present in ``params`` (``alpha_*`` included), "input", "h0", and "dh": (layer, direction)
    -> (T, B, H) total dL/dh_t in natural time order.
    """
    if truncate is not None and truncate < 1:
        raise ValueError("truncate must be an int >= 1 or None")
    x = np.asarray(x, dtype=np.float64)
    D = 2 if bidirectional else 1
    H = np.shape(params["weight_hh_l0"])[1]
    B = x.shape[1]
    h0 = _initial_state(h0, num_layers, D, B, H)
    y, _, records = forward(params, x, h0, num_layers=num_layers, bidirectional=bidirectional)
    dy = np.zeros_like(y) if dy is None else np.asarray(dy, dtype=np.float64)
    dh_n = np.zeros_like(h0) if dh_n is None else np.asarray(dh_n, dtype=np.float64)
    grads = {"h0": np.zeros_like(h0), "dh": {}}
    d_layer_out = dy
    for layer in range(num_layers - 1, -1, -1):
        if layer == 0:
            layer_input = x
        else:
            layer_input = np.concatenate([records[(layer - 1, d)]["h"] for d in range(D)], axis=2)
        d_layer_in = np.zeros_like(layer_input)
        for direction in range(D):
            k = layer * D + direction
            s = _suffix(layer, direction)
            W_ih, W_hh, _, _ = _cell_params(params, layer, direction)
            alpha = np.asarray(params["alpha" + s], dtype=np.float64)
            dout = d_layer_out[:, :, direction * H:(direction + 1) * H]
            dx, dh0, dW_ih, dW_hh, db, dalpha, dh_total = _direction_backward(
                W_ih, W_hh, alpha, layer_input, h0[k], records[(layer, direction)], direction, dout, dh_n[k],
                truncate)
            d_layer_in += dx
            grads["h0"][k] = dh0
            grads[f"weight_ih{s}"], grads[f"weight_hh{s}"] = dW_ih, dW_hh
            if f"bias_ih{s}" in params:
                grads[f"bias_ih{s}"] = db
            if f"bias_hh{s}" in params:
                grads[f"bias_hh{s}"] = db.copy()
            grads[f"alpha{s}"] = dalpha
            grads["dh"][(layer, direction)] = dh_total
        d_layer_out = d_layer_in
    grads["input"] = d_layer_out
    return grads
