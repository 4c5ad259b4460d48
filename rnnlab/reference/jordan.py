"""Plain NumPy float64 reference of the Jordan network (:class:`rnnlab.layers.jordan.JordanRNN`).

The previous OUTPUT feeds back, not the hidden state::

    h_t = tanh(W_ih x_t + b_ih + W_yh f_{t-1} + b_yh)      (B, H)
    y_t = W_out h_t + b_out                                (B, O)

with f_{t-1} the previous target under teacher forcing (``teacher`` (T, B, O) given: f_{t-1} =
teacher[t-1], f_{-1} = y0), or, running free, the model's own previous output f_t = y_t
(``softmax=False``) or softmax(y_t) (``softmax=True``). Parameters: ``weight_ih_l0`` (H, I),
``weight_yh_l0`` (H, O), ``bias_ih_l0``, ``bias_yh_l0`` (H,) (optional), ``readout.weight`` (O, H),
``readout.bias`` (O,).
"""

from __future__ import annotations

import numpy as np

__all__ = ["forward", "backward", "param_names"]


def param_names(bias=True):
    """The JordanRNN's ``state_dict`` names, in its order."""
    return (["weight_ih_l0", "weight_yh_l0"] + (["bias_ih_l0", "bias_yh_l0"] if bias else [])
            + ["readout.weight", "readout.bias"])


def _softmax(y):
    e = np.exp(y - y.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _params(params):
    f64 = lambda name: np.asarray(params[name], dtype=np.float64)  # noqa: E731
    H = np.shape(params["weight_ih_l0"])[0]
    b = f64("bias_ih_l0") + f64("bias_yh_l0") if "bias_ih_l0" in params else np.zeros(H)
    return f64("weight_ih_l0"), f64("weight_yh_l0"), b, f64("readout.weight"), f64("readout.bias")


def forward(params, x, y0=None, teacher=None, softmax=False):
    """Returns ``(outputs (T, B, O), records)``; records "h" (T, B, H) and "f" (T, B, O), the f_{t-1}
    each step read."""
    W_ih, W_yh, b, W_out, b_out = _params(params)
    x = np.asarray(x, dtype=np.float64)
    T, B, _ = x.shape
    O = W_out.shape[0]
    f = np.zeros((B, O)) if y0 is None else np.asarray(y0, dtype=np.float64)
    rec = {"h": np.zeros((T, B, W_ih.shape[0])), "f": np.zeros((T, B, O))}
    out = np.zeros((T, B, O))
    for t in range(T):
        rec["f"][t] = f
        h = np.tanh(x[t] @ W_ih.T + f @ W_yh.T + b)
        y = h @ W_out.T + b_out
        rec["h"][t], out[t] = h, y
        if teacher is not None:
            f = np.asarray(teacher[t], dtype=np.float64)  # the TARGET of step t feeds step t+1
        else:
            f = _softmax(y) if softmax else y
    return out, rec


def backward(params, x, y0=None, teacher=None, softmax=False, d_out=None):
    """Gradient of ``sum(outputs * d_out)`` by the chain rule, float64: every parameter name in
    ``params``, "input" and "y0". Under teacher forcing the fed-back targets are constants: no
    gradient crosses from one step to the next."""
    W_ih, W_yh, b, W_out, b_out = _params(params)
    out, rec = forward(params, x, y0, teacher, softmax)
    x = np.asarray(x, dtype=np.float64)
    T = x.shape[0]
    d_out = np.zeros_like(out) if d_out is None else np.asarray(d_out, dtype=np.float64)
    g = {name: np.zeros_like(np.asarray(params[name], dtype=np.float64)) for name in params}
    d_b = np.zeros_like(b)
    dx = np.zeros_like(x)
    d_f = np.zeros_like(out[0])  # dL/df_t arriving from step t+1
    for t in range(T - 1, -1, -1):
        h, f_prev = rec["h"][t], rec["f"][t]
        d_y = d_out[t].copy()
        if teacher is None:  # f_t = y_t or softmax(y_t) fed step t+1
            if softmax:
                p = _softmax(out[t])
                d_y += p * (d_f - (p * d_f).sum(axis=-1, keepdims=True))
            else:
                d_y += d_f
        # y = W_out h + b_out
        g["readout.weight"] += d_y.T @ h
        g["readout.bias"] += d_y.sum(axis=0)
        d_pre = (d_y @ W_out) * (1.0 - h * h)  # h = tanh(pre)
        g["weight_ih_l0"] += d_pre.T @ x[t]
        g["weight_yh_l0"] += d_pre.T @ f_prev
        d_b += d_pre.sum(axis=0)
        dx[t] = d_pre @ W_ih
        d_f = d_pre @ W_yh  # dL/df_{t-1}
    if "bias_ih_l0" in params:
        g["bias_ih_l0"], g["bias_yh_l0"] = d_b, d_b.copy()
    g["input"] = dx
    g["y0"] = d_f
    return g
