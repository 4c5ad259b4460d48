"""Plain NumPy float64 reference of rnnlab's recurrent layers.

This module is the slow, obviously-correct twin of the Numba kernels: every
equation is written out once, in float64, with exact libm ``tanh``/``exp``.
It exists to check the kernels and layers against, and to read.  Nothing here
is fast and nothing here validates its inputs beyond what NumPy does.

Conventions (the same as ``torch.nn.RNN/LSTM/GRU(batch_first=False)``)::

    x          (T, B, I)             time-major input
    h0, c0     (L*D, B, H)           index = layer*D + direction, None = zeros
    y          (T, B, D*H)           [forward | reverse] on the last axis
    h_n, c_n   (L*D, B, H)           c_n only for LSTM
    weight_ih_l{k}[_reverse]  (G*H, I_k)   I_0 = I, I_k = D*H for k > 0
    weight_hh_l{k}[_reverse]  (G*H, H)
    bias_ih_l{k}[_reverse], bias_hh_l{k}[_reverse]  (G*H,)   optional

with G = 1 (RNN), 4 (LSTM, gates i, f, g, o), 3 (GRU, gates r, z, n),
L = num_layers and D = 2 if bidirectional else 1.

Cells, with ``W_i* = weight_ih``, ``W_h* = weight_hh`` split per gate and
``h`` the previous hidden state::

    RNN   h' = act(W_ih x + b_ih + W_hh h + b_hh)            act = tanh | relu

    LSTM  i  = sigmoid(W_ii x + b_ii + W_hi h + b_hi)
          f  = sigmoid(W_if x + b_if + W_hf h + b_hf)
          g  = tanh   (W_ig x + b_ig + W_hg h + b_hg)
          o  = sigmoid(W_io x + b_io + W_ho h + b_ho)
          c' = f * c + i * g
          h' = o * tanh(c')

    GRU   r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
          z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
          n  = tanh   (W_in x + b_in + r * (W_hn h + b_hn))
          h' = (1 - z) * n + z * h

Public functions: :func:`forward` and :func:`backward` (BPTT, optionally
truncated).
"""

from __future__ import annotations

import numpy as np

__all__ = ["forward", "backward", "GATES", "param_names"]

#: Gate names per mode, in PyTorch's stacking order inside the weight rows.
GATES = {"RNN": (), "LSTM": ("i", "f", "g", "o"), "GRU": ("r", "z", "n")}


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def _sigmoid(a):
    # 1 / (1 + exp(-a)) written so that exp never overflows and the tail toward 0 keeps its relative
    # digits (0.5 + 0.5 tanh(a/2) gives 0 at a = -40, not 4.2e-18: no ground truth there)
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _suffix(layer, direction):
    return f"_l{layer}" + ("_reverse" if direction == 1 else "")


def param_names(mode, num_layers=1, bidirectional=False, bias=True):
    """The PyTorch ``state_dict`` names of a stacked RNN/LSTM/GRU, in torch's order."""
    names = []
    for layer in range(num_layers):
        for direction in range(2 if bidirectional else 1):
            s = _suffix(layer, direction)
            names += [f"weight_ih{s}", f"weight_hh{s}"]
            if bias:
                names += [f"bias_ih{s}", f"bias_hh{s}"]
    return names


def _cell_params(params, layer, direction):
    """(W_ih, W_hh, b_ih, b_hh) of one layer and direction, float64; missing biases -> 0."""
    s = _suffix(layer, direction)
    W_ih = np.asarray(params[f"weight_ih{s}"], dtype=np.float64)
    W_hh = np.asarray(params[f"weight_hh{s}"], dtype=np.float64)
    zeros = np.zeros(W_ih.shape[0])
    b_ih = np.asarray(params.get(f"bias_ih{s}", zeros), dtype=np.float64)
    b_hh = np.asarray(params.get(f"bias_hh{s}", zeros), dtype=np.float64)
    return W_ih, W_hh, b_ih, b_hh


def _time_order(T, direction):
    """Time indices in the order a direction processes them."""
    return range(T) if direction == 0 else range(T - 1, -1, -1)


def _initial_state(s0, L, D, B, H):
    if s0 is None:
        return np.zeros((L * D, B, H))
    return np.asarray(s0, dtype=np.float64)


# --------------------------------------------------------------------------
# one layer, one direction: forward
# --------------------------------------------------------------------------

def _direction_forward(mode, W_ih, W_hh, b_ih, b_hh, x, h0, c0, direction, nonlinearity):
    """Run one cell over x (T, B, I) in the given direction.

    Returns (h_last, c_last, rec) where rec holds per-step arrays (T, B, H) in
    natural time order: "h" (+ "c", "i", "f", "g", "o" | "r", "z", "n").
    """
    T, B, _ = x.shape
    H = W_hh.shape[1]
    rec = {"h": np.zeros((T, B, H))}
    for name in GATES[mode]:
        rec[name] = np.zeros((T, B, H))
    if mode == "LSTM":
        rec["c"] = np.zeros((T, B, H))

    h, c = h0, c0
    for t in _time_order(T, direction):
        gi = x[t] @ W_ih.T + b_ih          # input projection     (B, G*H)
        gh = h @ W_hh.T + b_hh             # recurrent projection (B, G*H)

        if mode == "RNN":
            a = gi + gh
            h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0)

        elif mode == "LSTM":
            a_i, a_f, a_g, a_o = np.split(gi + gh, 4, axis=1)
            i = _sigmoid(a_i)
            f = _sigmoid(a_f)
            g = np.tanh(a_g)
            o = _sigmoid(a_o)
            c = f * c + i * g
            h = o * np.tanh(c)
            rec["i"][t], rec["f"][t], rec["g"][t], rec["o"][t] = i, f, g, o
            rec["c"][t] = c

        elif mode == "GRU":
            gi_r, gi_z, gi_n = np.split(gi, 3, axis=1)
            gh_r, gh_z, gh_n = np.split(gh, 3, axis=1)
            r = _sigmoid(gi_r + gh_r)
            z = _sigmoid(gi_z + gh_z)
            n = np.tanh(gi_n + r * gh_n)
            h = (1.0 - z) * n + z * h
            rec["r"][t], rec["z"][t], rec["n"][t] = r, z, n

        else:
            raise ValueError(f"unknown mode {mode!r}")

        rec["h"][t] = h
    return h, c, rec


def forward(mode, params, x, h0=None, c0=None, *, num_layers=1, bidirectional=False,
            nonlinearity="tanh"):
    """Forward pass of a stacked (optionally bidirectional) RNN / LSTM / GRU in float64.

    Parameters
    ----------
    mode : {"RNN", "LSTM", "GRU"}
    params : dict
        PyTorch ``state_dict`` names -> arrays (see module docstring for shapes).
        Biases may be absent (``bias=False``): they are taken as zero.
    x : array (T, B, I)
    h0, c0 : array (num_layers*D, B, H) or None (zeros). ``c0`` is used by LSTM only.
    num_layers, bidirectional : as in ``torch.nn.RNN``.
    nonlinearity : {"tanh", "relu"}, RNN only.

    Returns
    -------
    y : (T, B, D*H) outputs of the top layer, forward then reverse on the last axis.
    h_n : (num_layers*D, B, H) final hidden state of each layer and direction
        (for the reverse direction: the state after processing t = 0).
    c_n : (num_layers*D, B, H) final cell state for LSTM, else None.
    records : dict (layer, direction) -> dict of (T, B, H) float64 arrays in
        natural time order: "h", plus "c", "i", "f", "g", "o" (LSTM) or
        "r", "z", "n" (GRU).
    """
    x = np.asarray(x, dtype=np.float64)
    T, B, _ = x.shape
    D = 2 if bidirectional else 1
    H = np.shape(params["weight_hh_l0"])[1]
    h0 = _initial_state(h0, num_layers, D, B, H)
    c0 = _initial_state(c0, num_layers, D, B, H)

    h_n = np.zeros((num_layers * D, B, H))
    c_n = np.zeros((num_layers * D, B, H)) if mode == "LSTM" else None
    records = {}

    layer_input = x
    for layer in range(num_layers):
        outputs = []
        for direction in range(D):
            k = layer * D + direction
            W_ih, W_hh, b_ih, b_hh = _cell_params(params, layer, direction)
            h_last, c_last, rec = _direction_forward(
                mode, W_ih, W_hh, b_ih, b_hh, layer_input, h0[k],
                c0[k] if mode == "LSTM" else None, direction, nonlinearity)
            h_n[k] = h_last
            if mode == "LSTM":
                c_n[k] = c_last
            records[(layer, direction)] = rec
            outputs.append(rec["h"])
        layer_input = np.concatenate(outputs, axis=2)   # (T, B, D*H) -> next layer
    return layer_input, h_n, c_n, records


# --------------------------------------------------------------------------
# one layer, one direction: backward through time
# --------------------------------------------------------------------------

def _direction_backward(mode, W_ih, W_hh, b_ih, b_hh, x, h0, c0, rec, direction,
                        nonlinearity, dout, dh_last, dc_last, truncate):
    """BPTT for one cell over one direction.

    dout (T, B, H) is the gradient arriving at each h_t from outside the
    recurrence (dy, or the layer above); dh_last / dc_last the gradient on the
    final state.  Returns (dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh, dh_total),
    dh_total (T, B, H) being the full dL/dh_t at every step.
    """
    T = x.shape[0]
    order = list(_time_order(T, direction))          # processing order: step s -> time t

    dW_ih, dW_hh = np.zeros_like(W_ih), np.zeros_like(W_hh)
    db_ih, db_hh = np.zeros_like(b_ih), np.zeros_like(b_hh)
    dx = np.zeros_like(x)
    dh_total = np.zeros_like(dout)

    dh_next = dh_last.copy()                         # dL/dh arriving through the recurrence
    dc_next = dc_last.copy() if mode == "LSTM" else None

    for s in range(T - 1, -1, -1):                   # walk the processing order backwards
        t = order[s]
        h_prev = h0 if s == 0 else rec["h"][order[s - 1]]
        dh = dout[t] + dh_next                       # dL/dh_t = from above + from step s+1
        dh_total[t] = dh

        if mode == "RNN":
            h = rec["h"][t]
            # h = act(a):  da = dh * act'(a)
            da = dh * (1.0 - h * h) if nonlinearity == "tanh" else dh * (h > 0.0)
            dgi = dgh = da

        elif mode == "LSTM":
            i, f, g, o, c = (rec[k][t] for k in ("i", "f", "g", "o", "c"))
            c_prev = c0 if s == 0 else rec["c"][order[s - 1]]
            tanh_c = np.tanh(c)
            # h = o * tanh(c)
            do = dh * tanh_c
            dc = dc_next + dh * o * (1.0 - tanh_c * tanh_c)
            # c = f * c_prev + i * g
            di = dc * g
            dg = dc * i
            df = dc * c_prev
            dc_next = dc * f                          # -> dL/dc_prev
            # through the gate nonlinearities: sigmoid' = s(1-s), tanh' = 1-t^2
            da = np.concatenate([di * i * (1.0 - i),
                                 df * f * (1.0 - f),
                                 dg * (1.0 - g * g),
                                 do * o * (1.0 - o)], axis=1)
            dgi = dgh = da

        else:  # GRU
            r, z, n = rec["r"][t], rec["z"][t], rec["n"][t]
            H = r.shape[1]
            gh_n = h_prev @ W_hh[2 * H:].T + b_hh[2 * H:]   # W_hn h + b_hn, recomputed
            # h = (1 - z) * n + z * h_prev
            dn = dh * (1.0 - z)
            dz = dh * (h_prev - n)
            # n = tanh(gi_n + r * gh_n)
            da_n = dn * (1.0 - n * n)
            dr = da_n * gh_n
            da_r = dr * r * (1.0 - r)
            da_z = dz * z * (1.0 - z)
            dgi = np.concatenate([da_r, da_z, da_n], axis=1)        # d(W_ih x + b_ih)
            dgh = np.concatenate([da_r, da_z, r * da_n], axis=1)    # d(W_hh h + b_hh)

        # gi = x W_ih^T + b_ih,  gh = h_prev W_hh^T + b_hh
        dW_ih += dgi.T @ x[t]
        db_ih += dgi.sum(axis=0)
        dW_hh += dgh.T @ h_prev
        db_hh += dgh.sum(axis=0)
        dx[t] = dgi @ W_ih
        dh_next = dgh @ W_hh
        if mode == "GRU":
            dh_next += dh * z                         # the direct path z * h_prev

        # truncated BPTT: steps s-1 and s are in different chunks -> cut the state
        if truncate is not None and s > 0 and s % truncate == 0:
            dh_next = np.zeros_like(dh_next)
            if mode == "LSTM":
                dc_next = np.zeros_like(dc_next)

    return dx, dh_next, dc_next, dW_ih, dW_hh, db_ih, db_hh, dh_total


def backward(mode, params, x, h0=None, c0=None, *, num_layers=1, bidirectional=False,
             nonlinearity="tanh", dy=None, dh_n=None, dc_n=None, truncate=None):
    """Gradient of ``L = sum(y*dy) + sum(h_n*dh_n) + sum(c_n*dc_n)`` by explicit BPTT.

    Runs :func:`forward` itself, then walks every layer (top to bottom) and
    direction backwards through time.  Any of ``dy`` (T, B, D*H), ``dh_n`` and
    ``dc_n`` (num_layers*D, B, H) may be None, meaning zero.

    ``truncate=k`` (int >= 1) cuts the recurrence: within each layer and
    direction, the steps in processing order (t = 0, 1, ... forward;
    t = T-1, T-2, ... reverse) are split into consecutive chunks of k steps
    from the first processed step, and no gradient crosses a chunk boundary
    through h (and c).  Gradients between layers are not cut, so h0/c0 get
    gradient from the first chunk only and dh_n/dc_n enter the last chunk.
    For unidirectional nets this equals chunked training with the carried
    state detached between chunks.

    Returns
    -------
    dict with
        every parameter name present in ``params`` -> gradient of the same shape,
        "input" (T, B, I), "h0" (num_layers*D, B, H), "c0" (LSTM only),
        "dh": dict (layer, direction) -> (T, B, H) total dL/dh_t at every step in
        natural time order (gradient from above / dy plus the recurrent one).
    All arrays are float64.
    """
    if truncate is not None and truncate < 1:
        raise ValueError("truncate must be an int >= 1 or None")
    x = np.asarray(x, dtype=np.float64)
    T, B, _ = x.shape
    D = 2 if bidirectional else 1
    H = np.shape(params["weight_hh_l0"])[1]
    h0 = _initial_state(h0, num_layers, D, B, H)
    c0 = _initial_state(c0, num_layers, D, B, H)

    y, _, _, records = forward(mode, params, x, h0, c0, num_layers=num_layers,
                               bidirectional=bidirectional, nonlinearity=nonlinearity)
    dy = np.zeros_like(y) if dy is None else np.asarray(dy, dtype=np.float64)
    dh_n = np.zeros_like(h0) if dh_n is None else np.asarray(dh_n, dtype=np.float64)
    dc_n = np.zeros_like(c0) if dc_n is None else np.asarray(dc_n, dtype=np.float64)

    grads = {"h0": np.zeros_like(h0), "dh": {}}
    if mode == "LSTM":
        grads["c0"] = np.zeros_like(c0)

    d_layer_out = dy                                   # dL/d(output of current layer)
    for layer in range(num_layers - 1, -1, -1):
        # the input this layer saw: x, or the concatenated outputs of the layer below
        if layer == 0:
            layer_input = x
        else:
            layer_input = np.concatenate(
                [records[(layer - 1, d)]["h"] for d in range(D)], axis=2)
        d_layer_in = np.zeros_like(layer_input)

        for direction in range(D):
            k = layer * D + direction
            s = _suffix(layer, direction)
            W_ih, W_hh, b_ih, b_hh = _cell_params(params, layer, direction)
            dout = d_layer_out[:, :, direction * H:(direction + 1) * H]
            dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh, dh_total = _direction_backward(
                mode, W_ih, W_hh, b_ih, b_hh, layer_input, h0[k], c0[k],
                records[(layer, direction)], direction, nonlinearity,
                dout, dh_n[k], dc_n[k], truncate)

            d_layer_in += dx                           # both directions read the same input
            grads["h0"][k] = dh0
            if mode == "LSTM":
                grads["c0"][k] = dc0
            grads[f"weight_ih{s}"] = dW_ih
            grads[f"weight_hh{s}"] = dW_hh
            if f"bias_ih{s}" in params:
                grads[f"bias_ih{s}"] = db_ih
            if f"bias_hh{s}" in params:
                grads[f"bias_hh{s}"] = db_hh
            grads["dh"][(layer, direction)] = dh_total

        d_layer_out = d_layer_in
    grads["input"] = d_layer_out
    return grads
