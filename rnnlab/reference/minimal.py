"""Plain NumPy float64 reference of the recurrences linear in their state: minGRU, minLSTM, LRU.

The slow, obviously-correct twin of :mod:`rnnlab.kernels.minimal`: one step after another, every
equation written out once, exact libm functions, hand-written BPTT. Nothing is validated beyond
what NumPy does.

Conventions as in :mod:`rnnlab.reference.recurrent`: x (T, B, I) time-major; h0 (L*D, B, H) with
index layer*D + direction (None = zeros); y (T, B, D*H) for minGRU/minLSTM; the reverse direction
of a bidirectional layer reads the sequence from t = T-1 down to 0. Parameters (per layer k,
suffix ``_l{k}``, plus ``_reverse`` for the reverse direction)::

    MinGRU   weight_ih (2H, I_k) rows [W_z; W_h]        bias_ih (2H,)  [b_z; b_h]   (optional)
             z  = sigmoid(W_z x + b_z)      h~ = W_h x + b_h
             h' = (1 - z) * h + z * h~

    MinLSTM  weight_ih (3H, I_k) rows [W_f; W_i; W_h]   bias_ih (3H,)  [b_f; b_i; b_h] (optional)
             f  = sigmoid(W_f x + b_f)      i = sigmoid(W_i x + b_i)      h~ = W_h x + b_h
             f' = f / (f + i)               i' = i / (f + i)    (literally: undefined when
                                                                     both gates underflow to 0)
             h' = f' * h + i' * h~

    LRU      nu_log, theta_log, gamma_log (H,);  B_re, B_im (H, I);  C_re, C_im (I, H);  D (I,)
             lambda = exp(-exp(nu_log) + 1j * exp(theta_log))       complex, |lambda| < 1 in exact arithmetic
             h'     = lambda * h + exp(gamma_log) * ((B_re + 1j B_im) x)      complex state
             y      = Re((C_re + 1j C_im) h') + D * x                        real output (I,)

The LRU maps I features to I features (its state has H complex units), so every layer has
input size I; it has no reverse direction. Its h0, h_n and their gradients are complex, gradients
meaning dL/dRe + 1j dL/dIm.

Public functions: :func:`forward`, :func:`backward` (BPTT, optionally truncated) and
:func:`param_names`.
"""

from __future__ import annotations

import numpy as np

from .recurrent import _sigmoid, _suffix, _time_order  # (tiny gates keep their digits: minLSTM's f / (f + i))

__all__ = ["MODES", "forward", "backward", "param_names"]

MODES = ("MinGRU", "MinLSTM", "LRU")
_GATES = {"MinGRU": 2, "MinLSTM": 3}
_LRU_PARAMS = ("nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im", "D")


def param_names(mode, num_layers=1, bidirectional=False, bias=True):
    """The parameter names of a stacked network of ``mode``, in the layers' state_dict order."""
    names = []
    for layer in range(num_layers):
        if mode == "LRU":
            names += [f"{p}_l{layer}" for p in _LRU_PARAMS]
            continue
        for direction in range(2 if bidirectional else 1):
            s = _suffix(layer, direction)
            names.append(f"weight_ih{s}")
            if bias:
                names.append(f"bias_ih{s}")
    return names


def _check_mode(mode):
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")


def _gated_params(params, layer, direction):
    s = _suffix(layer, direction)
    W = np.asarray(params[f"weight_ih{s}"], np.float64)
    b = np.asarray(params.get(f"bias_ih{s}", np.zeros(W.shape[0])), np.float64)
    return W, b


def _lru_params(params, layer):
    p = {name: np.asarray(params[f"{name}_l{layer}"], np.float64) for name in _LRU_PARAMS}
    lam = np.exp(-np.exp(p["nu_log"]) + 1j * np.exp(p["theta_log"]))
    return p, lam, np.exp(p["gamma_log"])


# --------------------------------------------------------------------------
# forward
# --------------------------------------------------------------------------

def _gated_forward(mode, W, b, x, h0, direction):
    """One minGRU/minLSTM layer and direction; records (T, B, H) in natural time order."""
    T, B, _ = x.shape
    H = W.shape[0] // _GATES[mode]
    names = ("h", "z", "h_tilde") if mode == "MinGRU" else ("h", "f", "i", "f_norm", "h_tilde")
    rec = {name: np.zeros((T, B, H)) for name in names}
    h = h0
    for t in _time_order(T, direction):
        p = x[t] @ W.T + b                           # (B, G*H): gates read the input only
        if mode == "MinGRU":
            p_z, p_h = np.split(p, 2, axis=1)
            z = _sigmoid(p_z)
            h_tilde = p_h
            h = (1.0 - z) * h + z * h_tilde
            rec["z"][t] = z
        else:
            p_f, p_i, p_h = np.split(p, 3, axis=1)
            f = _sigmoid(p_f)
            i = _sigmoid(p_i)
            h_tilde = p_h
            f_norm = f / (f + i)
            i_norm = i / (f + i)
            h = f_norm * h + i_norm * h_tilde
            rec["f"][t], rec["i"][t], rec["f_norm"][t] = f, i, f_norm
        rec["h_tilde"][t] = h_tilde
        rec["h"][t] = h
    return h, rec


def _lru_forward(p, lam, gamma, x, h0):
    """One LRU layer: returns (y, h_last, rec); rec["h"] the complex states (T, B, H), rec["y"] = y."""
    T, B, _ = x.shape
    Bc = p["B_re"] + 1j * p["B_im"]                  # (H, I)
    Cc = p["C_re"] + 1j * p["C_im"]                  # (I, H)
    rec = {"h": np.zeros((T, B, lam.shape[0]), complex)}
    y = np.zeros(x.shape)
    h = h0
    for t in range(T):
        h = lam * h + gamma * (x[t] @ Bc.T)
        y[t] = (h @ Cc.T).real + p["D"] * x[t]
        rec["h"][t] = h
    rec["y"] = y
    return y, h, rec


def forward(mode, params, x, h0=None, *, num_layers=1, bidirectional=False):
    """Forward pass of a stacked minGRU / minLSTM (optionally bidirectional) or LRU network.

    Returns ``(y, h_n, records)``: y (T, B, D*H) (LRU: (T, B, I)); h_n (L*D, B, H) (complex for
    the LRU); records (layer, direction) -> dict of (T, B, H) arrays in natural time order:
    "h", "z", "h_tilde" (MinGRU); "h", "f", "i", "f_norm", "h_tilde" (MinLSTM); "h" complex and
    the layer's output "y" (T, B, I) (LRU).
    """
    _check_mode(mode)
    x = np.asarray(x, np.float64)
    T, B, _ = x.shape
    lru = mode == "LRU"
    if lru and bidirectional:
        raise ValueError("the LRU has no reverse direction")
    D = 2 if bidirectional else 1
    H = np.shape(params["nu_log_l0"])[0] if lru else np.shape(params["weight_ih_l0"])[0] // _GATES[mode]
    dtype = complex if lru else np.float64
    h0 = np.zeros((num_layers * D, B, H), dtype) if h0 is None else np.asarray(h0, dtype)
    h_n = np.zeros((num_layers * D, B, H), dtype)
    records = {}
    layer_input = x
    for layer in range(num_layers):
        if lru:
            p, lam, gamma = _lru_params(params, layer)
            layer_input, h_n[layer], records[(layer, 0)] = _lru_forward(p, lam, gamma, layer_input, h0[layer])
            continue
        outputs = []
        for direction in range(D):
            k = layer * D + direction
            W, b = _gated_params(params, layer, direction)
            h_n[k], rec = _gated_forward(mode, W, b, layer_input, h0[k], direction)
            records[(layer, direction)] = rec
            outputs.append(rec["h"])
        layer_input = np.concatenate(outputs, axis=2)
    return layer_input, h_n, records


# --------------------------------------------------------------------------
# backward through time
# --------------------------------------------------------------------------

def _gated_backward(mode, W, b, x, h0, rec, direction, dout, dh_last, truncate):
    """BPTT through one minGRU/minLSTM layer and direction; returns (dx, dh0, dW, db, dh_total)."""
    T = x.shape[0]
    order = list(_time_order(T, direction))
    dW, db = np.zeros_like(W), np.zeros_like(b)
    dx = np.zeros_like(x)
    dh_total = np.zeros_like(dout)
    dh_next = dh_last.copy()
    for s in range(T - 1, -1, -1):
        t = order[s]
        h_prev = h0 if s == 0 else rec["h"][order[s - 1]]
        dh = dout[t] + dh_next                       # dL/dh_t: from above plus from step s+1
        dh_total[t] = dh
        h_tilde = rec["h_tilde"][t]
        if mode == "MinGRU":
            z = rec["z"][t]
            # h = (1 - z) * h_prev + z * h_tilde
            dz = dh * (h_tilde - h_prev)
            dh_tilde = dh * z
            dh_next = dh * (1.0 - z)
            dp = np.concatenate([dz * z * (1.0 - z), dh_tilde], axis=1)
        else:
            f, i = rec["f"][t], rec["i"][t]
            f_norm, i_norm = f / (f + i), i / (f + i)
            # h = f_norm * h_prev + i_norm * h_tilde
            df_norm = dh * h_prev
            di_norm = dh * h_tilde
            dh_tilde = dh * i_norm
            dh_next = dh * f_norm
            # f_norm = f / (f + i), i_norm = i / (f + i)
            s2 = (f + i) ** 2
            df = df_norm * i / s2 - di_norm * i / s2
            di = -df_norm * f / s2 + di_norm * f / s2
            dp = np.concatenate([df * f * (1.0 - f), di * i * (1.0 - i), dh_tilde], axis=1)
        # p = x W^T + b
        dW += dp.T @ x[t]
        db += dp.sum(axis=0)
        dx[t] = dp @ W
        if truncate is not None and s > 0 and s % truncate == 0:
            dh_next = np.zeros_like(dh_next)
    return dx, dh_next, dW, db, dh_total


def _lru_backward(p, lam, gamma, x, h0, rec, dy, dh_last, truncate):
    """BPTT through one LRU layer; returns (dx, dh0, grads, dh_total), dh complex."""
    T = x.shape[0]
    Bc = p["B_re"] + 1j * p["B_im"]
    grads = {name: np.zeros_like(value) for name, value in p.items()}
    d_lam = np.zeros(lam.shape, complex)
    d_gamma = np.zeros(gamma.shape)
    dx = np.zeros_like(x)
    dh_total = np.zeros(rec["h"].shape, complex)
    dh_next = np.asarray(dh_last, complex).copy()
    for t in range(T - 1, -1, -1):
        h = rec["h"][t]
        h_prev = h0 if t == 0 else rec["h"][t - 1]
        # y = C_re Re(h) - C_im Im(h) + D x
        grads["C_re"] += dy[t].T @ h.real
        grads["C_im"] -= dy[t].T @ h.imag
        grads["D"] += (dy[t] * x[t]).sum(axis=0)
        dx[t] = dy[t] * p["D"]
        dh = dy[t] @ p["C_re"] - 1j * (dy[t] @ p["C_im"]) + dh_next   # dL/dRe(h) + 1j dL/dIm(h)
        dh_total[t] = dh
        # h = lambda * h_prev + gamma * w,  w = (B_re + 1j B_im) x
        w = x[t] @ Bc.T
        d_lam += (dh * np.conj(h_prev)).sum(axis=0)
        d_gamma += (dh * np.conj(w)).real.sum(axis=0)
        dw = gamma * dh
        grads["B_re"] += dw.real.T @ x[t]
        grads["B_im"] += dw.imag.T @ x[t]
        dx[t] += dw.real @ p["B_re"] + dw.imag @ p["B_im"]
        dh_next = np.conj(lam) * dh
        if truncate is not None and t > 0 and t % truncate == 0:
            dh_next = np.zeros_like(dh_next)
    # lambda = exp(mu), mu = -exp(nu_log) + 1j exp(theta_log);  gamma = exp(gamma_log)
    d_mu = np.conj(lam) * d_lam
    grads["nu_log"] = -np.exp(p["nu_log"]) * d_mu.real
    grads["theta_log"] = np.exp(p["theta_log"]) * d_mu.imag
    grads["gamma_log"] = gamma * d_gamma
    return dx, dh_next, grads, dh_total


def backward(mode, params, x, h0=None, *, num_layers=1, bidirectional=False, dy=None, dh_n=None, truncate=None):
    """Gradient of ``L = sum(y * dy) + sum(Re(conj(dh_n) * h_n))`` by explicit BPTT.

    ``truncate=k`` cuts the gradient through the state between processing steps s-1 and s
    whenever s % k == 0, per layer and direction (as :func:`rnnlab.reference.backward`).

    Returns a dict: every parameter name -> gradient, "input" (T, B, I), "h0" (L*D, B, H) (complex
    for the LRU) and "dh": (layer, direction) -> (T, B, H) total dL/dh_t in natural time order.
    """
    _check_mode(mode)
    if truncate is not None and truncate < 1:
        raise ValueError("truncate must be an int >= 1 or None")
    x = np.asarray(x, np.float64)
    lru = mode == "LRU"
    D = 2 if bidirectional else 1
    y, _, records = forward(mode, params, x, h0, num_layers=num_layers, bidirectional=bidirectional)
    B = x.shape[1]
    H = records[(0, 0)]["h"].shape[2]
    dtype = complex if lru else np.float64
    h0 = np.zeros((num_layers * D, B, H), dtype) if h0 is None else np.asarray(h0, dtype)
    dy = np.zeros_like(y) if dy is None else np.asarray(dy, np.float64)
    dh_n = np.zeros_like(h0) if dh_n is None else np.asarray(dh_n, dtype)

    grads = {"h0": np.zeros_like(h0), "dh": {}}
    d_layer_out = dy
    for layer in range(num_layers - 1, -1, -1):
        if layer == 0:
            layer_input = x
        elif lru:
            layer_input = records[(layer - 1, 0)]["y"]
        else:
            layer_input = np.concatenate([records[(layer - 1, d)]["h"] for d in range(D)], axis=2)
        if lru:
            p, lam, gamma = _lru_params(params, layer)
            dx, grads["h0"][layer], g, dh_total = _lru_backward(p, lam, gamma, layer_input, h0[layer],
                                                                 records[(layer, 0)], d_layer_out, dh_n[layer],
                                                                 truncate)
            for name, value in g.items():
                grads[f"{name}_l{layer}"] = value
            grads["dh"][(layer, 0)] = dh_total
            d_layer_out = dx
            continue
        d_layer_in = np.zeros_like(layer_input)
        for direction in range(D):
            k = layer * D + direction
            s = _suffix(layer, direction)
            W, b = _gated_params(params, layer, direction)
            dout = d_layer_out[:, :, direction * H:(direction + 1) * H]
            dx, grads["h0"][k], dW, db, dh_total = _gated_backward(
                mode, W, b, layer_input, h0[k], records[(layer, direction)], direction, dout, dh_n[k], truncate)
            d_layer_in += dx
            grads[f"weight_ih{s}"] = dW
            if f"bias_ih{s}" in params:
                grads[f"bias_ih{s}"] = db
            grads["dh"][(layer, direction)] = dh_total
        d_layer_out = d_layer_in
    grads["input"] = d_layer_out
    return grads

