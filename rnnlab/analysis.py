"""The numbers behind the vanishing/exploding-gradient views, read off a layer's :class:`Trace`.

Pure NumPy in float64 (float32 records are cast up). Nothing here runs a kernel: everything is
rebuilt from what ``forward`` (and, for the gradient functions, ``backward``) recorded.

Time and direction conventions
------------------------------
Results are indexed like the trace's records: natural time order for both directions, and
``k = layer * D + direction`` where several layers/directions are stacked. "The state at t" is the
state after the cell has seen position t (``trace.get("h")[t]``). Its *previous* state is the one
the cell read when it processed t: the state at t-1 for direction 0, the state at t+1 for
direction 1 (the reverse direction runs from T-1 down to 0), and the initial state (h0, c0) at
the first processed step (t = 0 forward, t = T-1 reverse).

The state is ``s = h`` (size S = H) for RNN, GRU, Leaky, MinGRU and MinLSTM and ``s = [h; c]`` (S = 2H,
h first) for LSTM: the cell state's own path (``dc_t/dc_{t-1} = diag(f_t)``) is where an LSTM's
gradient survives, so a Jacobian of h alone would hide it. The LRU's state is complex; it is read
as 2H real numbers ``s = [Re h; Im h]`` (S = 2H, real parts first).

The linear recurrences (MinGRU, MinLSTM, LRU) have h_t = a_t * h_{t-1} + b_t with a_t, b_t
computed from the input alone, so their step Jacobian is diagonal: ``diag(a_t)`` with
a_t = 1 - z_t (MinGRU), a_t = f'_t = f_t / (f_t + i_t) (MinLSTM), and for the LRU a_t = lambda, the
same complex number at every step, which acts on each unit's (Re, Im) pair as the 2x2
rotation-scaling block ``[[Re lambda, -Im lambda], [Im lambda, Re lambda]]`` whose norm is |lambda|.
So ``||J_t|| = max_j |a_tj|`` and the chained product is exactly ``max_j prod |a_tj|``:
:func:`step_coefficients` gives the a_t themselves. These cells have no recurrent weights W_hh,
so :func:`step_weight_grads` refuses them.

The leaky RNN (mode ``"Leaky"``, :class:`rnnlab.layers.leaky.LeakyRNN`) is not linear in its state
(its candidate u_t = tanh(W_ih x_t + W_hh h_{t-1} + b) reads it), so its Jacobian is a full matrix,
``J_t = diag(1 - a) + diag(a * (1 - u_t^2)) W_hh``: the leak ``1 - a`` (per unit, constant) is a
path for the gradient that no saturation of tanh can close, which is why slow units (small a, large
tau = 1/a) carry dL/dh back over many steps.

The Jordan network (mode ``"Jordan"``, :class:`rnnlab.layers.jordan.JordanRNN`) feeds back its
previous OUTPUT f_{t-1} (y_{t-1}, or its softmax), not h: ``J_t = diag(1 - h_t^2) W_yh W_out``
(softmax: ``diag(1 - h_t^2) W_yh (diag(p) - p p^T) W_out`` with p = f_{t-1}), a matrix of rank at
most O, the output width. ``J_0 = 0`` (step 0 reads the initial feedback y0, not a hidden state)
and under teacher forcing every ``J_t = 0``: the fed-back targets are constants, nothing of h_{t-1}
reaches h_t. It has no W_hh, so :func:`step_weight_grads` refuses it.

Self-attention traces (mode ``"SelfAttention"``, :class:`rnnlab.layers.selfattention.SelfAttentionTrace`)
have no recurrent state: step t reads every other step directly through its attention weights,
not through s_{t-1}. So step Jacobians, their products, step coefficients and per-step dW_hh have
no meaning there, and those functions raise :class:`NotRecurrentError` (a ``UserError``, so a
``ValueError``). :func:`gradient_norms` works (``dh`` is recorded per block: dL/d(block output)).

Why these numbers: by the chain rule ``d s_last / d s_t`` is the product of the step Jacobians of
every step processed after t, so ``||d s_last / d s_t|| <= prod ||J_s||`` over those steps.
Norms below 1 make that bound shrink geometrically toward early steps (vanishing gradients),
norms above 1 let it grow (exploding).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import UserError
from .layers.recurrent import layer_suffix
from .layers.trace import Trace

__all__ = ["step_jacobians", "jacobian_norms", "gradient_norms", "step_weight_grads", "step_weight_grad_norms",
           "state_size", "step_coefficients", "has_recurrent_weights", "is_recurrent", "LINEAR_MODES",
           "ATTENTION_MODES", "NotRecurrentError"]

#: Trace modes with a recurrence these analyses read.
RECURRENT_MODES = frozenset({"RNN", "LSTM", "GRU", "Leaky", "Jordan", "MinGRU", "MinLSTM", "LRU"})
#: Trace modes whose recurrence is linear in the state, h_t = a_t * h_{t-1} + b_t (diagonal Jacobian).
LINEAR_MODES = ("MinGRU", "MinLSTM", "LRU")
#: Trace modes with no recurrence at all (every step attends to the others).
ATTENTION_MODES = ("SelfAttention",)
#: An echo state network's trace: a recurrent reservoir, fixed (no backward pass), states h only.
ESN_MODE = "ESN"


class NotRecurrentError(UserError):
    """An analysis of a recurrence (a step Jacobian, a per-step dW_hh, an equation of a recurrent
    cell) was asked of a trace that has none: self-attention."""


def _refuse_attention(trace, what: str) -> None:
    """NotRecurrentError naming ``what`` when ``trace`` is a self-attention trace."""
    if isinstance(trace, Trace) and trace.mode in ATTENTION_MODES:
        raise NotRecurrentError(f"{what} has no meaning for self-attention: it has no recurrent state "
                                "(step t reads every step directly through its attention weights, not through s_{t-1})")


# ------------------------------------------------------------------------------------------------
# Private accessors: the only place that knows the layout of a trace's private fields
# (trace._params, trace._saved, trace._owner) and of each cell's saved kernel outputs.
# Everything they return is float64 and in PROCESSING order (reversed in time for direction 1).
# ------------------------------------------------------------------------------------------------

def _check_trace(trace, allow_attention: bool = False, allow_esn: bool = False) -> None:
    if not isinstance(trace, Trace):
        raise ValueError(f"expected an rnnlab Trace (from a layer's forward()), got {type(trace).__name__}")
    if allow_attention and trace.mode in ATTENTION_MODES or allow_esn and trace.mode == ESN_MODE:
        return
    if trace.mode == ESN_MODE:  # recurrent, but what it records is not what these analyses read
        raise ValueError("an echo state network's trace records only its reservoir states h: the reservoir is "
                         "fixed and only the readout is fitted (ridge regression), so there is no backward pass, "
                         "no dL/dh_t and no gate records to analyse; read trace['h']")
    if trace.mode not in RECURRENT_MODES:
        raise ValueError(f"unknown recurrent mode {trace.mode!r} in trace")


def _check_index(trace, layer: int, direction: int, b: int | None = None) -> None:
    _check_trace(trace)
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 0 <= layer < trace.num_layers:
        raise ValueError(f"layer {layer!r} out of range: the network has {trace.num_layers} layer(s)")
    if (isinstance(direction, bool) or not isinstance(direction, (int, np.integer))
            or not 0 <= direction < trace.num_directions):
        raise ValueError(f"direction {direction!r} out of range: the network has {trace.num_directions} direction(s)")
    if b is not None and (isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 0 <= b < trace.batch):
        raise ValueError(f"batch index {b!r} out of range: the trace has batch size {trace.batch}")


def _nonlinearity(trace) -> str:
    """RNN's activation ("tanh" or "relu") as its forward ran it (the layer's may be switched since)."""
    return trace.options.get("nonlinearity", "tanh")


def _weights(trace, layer: int, direction: int):
    """(W_ih, W_hh, b_ih, b_hh) used by forward, float64; absent biases (bias=False) are zeros."""
    sfx = layer_suffix(layer, direction)
    params = trace._params
    w_ih = np.asarray(params["weight_ih" + sfx], dtype=np.float64)
    w_hh = np.asarray(params["weight_hh" + sfx], dtype=np.float64)
    zeros = np.zeros(w_hh.shape[0])
    b_ih = np.asarray(params.get("bias_ih" + sfx, zeros), dtype=np.float64)
    b_hh = np.asarray(params.get("bias_hh" + sfx, zeros), dtype=np.float64)
    return w_ih, w_hh, b_ih, b_hh


def _saved(trace, layer: int, direction: int) -> dict[str, np.ndarray]:
    """Kernel outputs of one layer/direction by name, float64, processing order.

    ``hs`` (and LSTM's ``cs``) are (T+1, B, H) with index 0 the initial state, so step p reads
    ``hs[p]`` and writes ``hs[p+1]``; gates and GRU's ``hn`` are (T, B, H) indexed by step p.
    The LRU's ``hs`` is complex128.
    """
    if trace.lengths is not None:  # the reverse direction's saved outputs are each sequence reversed within its length
        raise ValueError("the analyses read a forward over whole sequences, and this trace's had lengths: run "
                         "sequence b alone, x[:lengths[b], b:b+1], for its Jacobians and explanations")
    saved = trace._saved[(layer, direction)]
    f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    if trace.mode == "RNN":
        return {"hs": f64(saved[0])}
    if trace.mode == "Jordan":  # fs (T+1, B, O): fs[p] is the f_{p-1} step p read; hs (T, B, H)
        fs, hs, free = saved
        return {"fs": f64(fs), "h": f64(hs), "free": free}
    if trace.mode == "Leaky":  # u: the tanh candidates (T, B, H); a: the per-unit rates (H,)
        hs, us, a = saved
        return {"hs": f64(hs), "u": f64(us), "a": f64(a)}
    if trace.mode == "MinGRU":
        hs, gates, _ = saved
        return {"hs": f64(hs), "z": f64(gates[0]), "h_tilde": f64(gates[1])}
    if trace.mode == "MinLSTM":
        hs, gates = saved
        return {"hs": f64(hs), "f": f64(gates[0]), "i": f64(gates[1]), "f_norm": f64(gates[2]),
                "h_tilde": f64(gates[3])}
    if trace.mode == "LRU":
        return {"hs": np.asarray(saved[0], dtype=np.complex128)}
    if trace.mode == "LSTM":
        hs, cs, gates = saved
        return {"hs": f64(hs), "cs": f64(cs), "i": f64(gates[0]), "f": f64(gates[1]),
                "g": f64(gates[2]), "o": f64(gates[3])}
    hs, gates, hn = saved  # GRU
    return {"hs": f64(hs), "r": f64(gates[0]), "z": f64(gates[1]), "n": f64(gates[2]), "hn": f64(hn)}


def _dh(trace, layer: int, direction: int) -> np.ndarray:
    """Total dL/dh at every step (T, B, H), float64, processing order; needs backward."""
    _require_gradients(trace)
    dh = np.asarray(trace.get("dh", layer, direction), dtype=np.float64)
    return dh[::-1] if direction else dh


def _lru_lambda(trace, layer: int) -> np.ndarray:
    """The LRU's lambda = exp(-exp(nu_log) + i exp(theta_log)) of one layer (H,), complex128, from the
    weights forward used."""
    nu = np.asarray(trace._params[f"nu_log_l{layer}"], dtype=np.float64)
    theta = np.asarray(trace._params[f"theta_log_l{layer}"], dtype=np.float64)
    return np.exp(-np.exp(nu) + 1j * np.exp(theta))


def _require_gradients(trace) -> None:
    if not trace.has_gradients:
        raise ValueError("this trace has no gradients yet: run layer.backward(trace, dy) on it first "
                         "(it records trace['dh'])")


def _natural(steps: np.ndarray, direction: int) -> np.ndarray:
    """Processing order -> natural time order along axis 0 (a copy)."""
    return np.ascontiguousarray(steps[::-1] if direction else steps)


# ------------------------------------------------------------------------------------------------
# public API
# ------------------------------------------------------------------------------------------------

def is_recurrent(trace) -> bool:
    """True for every recurrent cell's trace (an echo state network's too); False for self-attention
    (no state carried from step to step: the step Jacobians, coefficients and per-step dW_hh do not apply)."""
    _check_trace(trace, allow_attention=True, allow_esn=True)
    return trace.mode not in ATTENTION_MODES


def has_recurrent_weights(trace) -> bool:
    """True for RNN, LSTM, GRU and Leaky traces (a W_hh: :func:`step_weight_grads` applies); False for
    the linear recurrences, whose gates read the input only, the Jordan net (it feeds back its output),
    an echo state network (its reservoir is fixed: no gradient) and self-attention (no recurrence)."""
    _check_trace(trace, allow_attention=True, allow_esn=True)
    return trace.mode not in LINEAR_MODES + ATTENTION_MODES + ("Jordan", ESN_MODE)


def state_size(trace) -> int:
    """Size S of the recurrent state the Jacobians act on: H (RNN, GRU, Leaky, Jordan, MinGRU, MinLSTM)
    or 2H (LSTM: s = [h; c]; LRU: s = [Re h; Im h]); an echo state network's N reservoir units (whose
    Jacobians this module does not compute). NotRecurrentError for self-attention."""
    _refuse_attention(trace, "a recurrent state size")
    _check_trace(trace, allow_esn=True)
    return 2 * trace.hidden_size if trace.mode in ("LSTM", "LRU") else trace.hidden_size


def step_coefficients(trace, layer: int = 0, direction: int = 0, b: int = 0) -> np.ndarray:
    """The diagonal step Jacobian a_t of a linear recurrence h_t = a_t * h_{t-1} + b_t, per unit.

    Returns (T, H) in natural time order for one layer, direction and batch element: float64
    ``1 - z_t`` (MinGRU) or ``f'_t = f_t / (f_t + i_t)`` (MinLSTM), each in (0, 1) and set by the
    input x_t; complex128 ``lambda`` for the LRU, the same row at every step whatever the input
    (|lambda| < 1: inside the unit circle). ``|a_tj|`` is how much of unit j's state (and of the
    gradient dL/dh_t flowing back through it) survives step t. ValueError for the other cells,
    whose Jacobians are full matrices (see :func:`step_jacobians`); NotRecurrentError for self-attention.
    """
    _refuse_attention(trace, "a recurrence coefficient a_t")
    _check_index(trace, layer, direction, b)
    if trace.mode not in LINEAR_MODES:
        raise ValueError(f"step_coefficients: {trace.mode} is not a linear recurrence "
                         f"(only {', '.join(LINEAR_MODES)}); use step_jacobians")
    if trace.mode == "LRU":
        return np.broadcast_to(_lru_lambda(trace, layer), (trace.steps, trace.hidden_size)).copy()
    rec = _saved(trace, layer, direction)
    a = 1.0 - rec["z"][:, b] if trace.mode == "MinGRU" else rec["f_norm"][:, b]
    return _natural(a, direction)


def step_jacobians(trace, layer: int = 0, direction: int = 0, b: int = 0) -> np.ndarray:
    """Step Jacobians ``J_t = d s_t / d s_prev`` of one layer, direction and batch element.

    Returns (T, S, S) float64 in natural time order: ``J[t]`` is the derivative of the state
    after seeing position t with respect to the state the cell read at that step -- s_{t-1} for
    direction 0, s_{t+1} for direction 1 (processing order), the initial state at the first
    processed step. ``s = h`` for RNN/GRU/MinGRU/MinLSTM, ``s = [h; c]`` (h first) for LSTM and
    ``s = [Re h; Im h]`` for the LRU, so S = H or 2H. The input x_t is held fixed (for layer > 0 that
    is the layer below's output). For the linear recurrences J_t is diagonal (LRU: 2x2 blocks),
    built from :func:`step_coefficients`.

    Chaining: for direction 0, ``d s_t / d s_u = J[t] @ J[t-1] @ ... @ J[u+1]`` (t > u); for
    direction 1, ``d s_t / d s_u = J[t] @ J[t+1] @ ... @ J[u-1]`` (t < u).

    NotRecurrentError for self-attention (no s_{t-1} to differentiate against).
    """
    _refuse_attention(trace, "a step Jacobian ds_t/ds_{t-1}")
    _check_index(trace, layer, direction, b)
    H = trace.hidden_size
    if trace.mode in LINEAR_MODES:
        a = step_coefficients(trace, layer, direction, b)  # natural order already
        if trace.mode != "LRU":
            return np.einsum("tj,jk->tjk", a, np.eye(H))
        re, im = np.einsum("tj,jk->tjk", a.real, np.eye(H)), np.einsum("tj,jk->tjk", a.imag, np.eye(H))
        jac = np.empty((trace.steps, 2 * H, 2 * H))
        jac[:, :H, :H], jac[:, :H, H:] = re, -im  # Re h' = Re(lambda) Re h - Im(lambda) Im h
        jac[:, H:, :H], jac[:, H:, H:] = im, re   # Im h' = Im(lambda) Re h + Re(lambda) Im h
        return jac
    jac = _processing_jacobians(trace, _saved(trace, layer, direction), layer, direction, b, 0, trace.steps)
    return _natural(jac, direction)


def _processing_jacobians(trace, rec, layer: int, direction: int, b: int, p0: int, p1: int) -> np.ndarray:
    """The step Jacobians of processing steps p0..p1-1 (processing order), (p1 - p0, S, S), of a
    cell that is not linear; ``rec``: :func:`_saved`'s records of that layer and direction."""
    if trace.mode == "Jordan":
        return _jordan_jacobians(trace, rec, b, p0, p1)
    _, w_hh, _, _ = _weights(trace, layer, direction)
    H, n = trace.hidden_size, p1 - p0
    hs = rec["hs"][p0:p1 + 1, b]  # (n+1, H): step p reads hs[p] and writes hs[p+1]
    h_prev, h_new = hs[:-1], hs[1:]

    def diag_times(v, w):  # diag(v_t) @ w for every step: (n, H) x (H', H) -> (n, H, H)
        return v[:, :, None] * w[None, :, :]

    if trace.mode == "RNN":
        if _nonlinearity(trace) == "relu":
            deriv = (h_new > 0.0).astype(np.float64)  # the kernel's rule: relu'(a) = 1 iff h > 0
        else:
            deriv = 1.0 - h_new * h_new
        return diag_times(deriv, w_hh)

    if trace.mode == "Leaky":  # h' = (1 - a) * h + a * u,  u = tanh(W_ih x + W_hh h + b)
        a, u = rec["a"], rec["u"][p0:p1, b]
        return diag_times(a * (1.0 - u * u), w_hh) + np.diag(1.0 - a)[None]

    if trace.mode == "LSTM":
        i, f, g, o = (rec[k][p0:p1, b] for k in ("i", "f", "g", "o"))
        c_prev, c_new = rec["cs"][p0:p1, b], rec["cs"][p0 + 1:p1 + 1, b]
        W_i, W_f, W_g, W_o = (w_hh[k * H:(k + 1) * H] for k in range(4))
        tanh_c = np.tanh(c_new)
        dtanh_c = 1.0 - tanh_c * tanh_c
        jac = np.zeros((n, 2 * H, 2 * H))
        # c' = f * c + i * g, gates reading h through W_h*
        dc_dh = jac[:, H:, :H]
        dc_dh[...] = diag_times(c_prev * f * (1.0 - f), W_f)
        dc_dh += diag_times(g * i * (1.0 - i), W_i)
        dc_dh += diag_times(i * (1.0 - g * g), W_g)
        # h' = o * tanh(c')
        jac[:, :H, :H] = diag_times(tanh_c * o * (1.0 - o), W_o)
        jac[:, :H, :H] += (o * dtanh_c)[:, :, None] * dc_dh
        diagonal = np.arange(H)
        jac[:, diagonal, H + diagonal] = o * dtanh_c * f  # dh'/dc
        jac[:, H + diagonal, H + diagonal] = f  # dc'/dc
        return jac

    # GRU: h' = (1 - z) * n + z * h,  n = tanh(W_in x + b_in + r * hn),  hn = W_hn h + b_hn
    r, z, n_t, hn = (rec[k][p0:p1, b] for k in ("r", "z", "n", "hn"))
    W_r, W_z, W_n = (w_hh[k * H:(k + 1) * H] for k in range(3))
    da_n = hn[:, :, None] * diag_times(r * (1.0 - r), W_r) + diag_times(r, W_n)  # d(pre-activation of n)/dh
    jac = ((1.0 - z) * (1.0 - n_t * n_t))[:, :, None] * da_n
    jac += diag_times((h_prev - n_t) * z * (1.0 - z), W_z)
    diagonal = np.arange(H)
    jac[:, diagonal, diagonal] += z
    return jac


def _jordan_jacobians(trace, rec, b: int, p0: int, p1: int) -> np.ndarray:
    """:func:`_processing_jacobians` of a Jordan trace: dh_t/dh_{t-1} through the fed-back output."""
    H = trace.hidden_size
    jac = np.zeros((p1 - p0, H, H))
    if not rec["free"]:
        return jac  # teacher forcing: the fed-back targets do not depend on h
    params = trace._params
    w_yh = np.asarray(params["weight_yh_l0"], np.float64)
    w_out = np.asarray(params["readout.weight"], np.float64)
    h, fs = rec["h"][:, b], rec["fs"][:, b]
    for t in range(max(p0, 1), p1):  # J_0 = 0: step 0 reads the initial feedback, not a hidden state
        df_dy = np.eye(w_out.shape[0])
        if trace.options.get("feedback") == "softmax":  # f = softmax(y)
            p = fs[t]
            df_dy = np.diag(p) - np.outer(p, p)
        jac[t - p0] = (1.0 - h[t] * h[t])[:, None] * (w_yh @ df_dy @ w_out)
    return jac


def jacobian_norms(trace, b: int = 0, progress: Callable[[int], Any] | None = None) -> dict[str, np.ndarray]:
    """Spectral norms of every step Jacobian and their running products, for batch element b.

    Returns ``{"norm": (L*D, T), "product": (L*D, T), "chain": (L*D, T)}``, float64, natural time order, row
    ``k = layer * D + direction``:

    - ``norm[k, t] = ||J_t||_2`` (largest singular value of :func:`step_jacobians`' ``J[t]``);
    - ``product[k, t]`` = the product of ``norm`` over the steps processed AFTER t (1.0 at the
      last processed step: t = T-1 for direction 0, t = 0 for direction 1), i.e. the textbook
      upper bound on ``||d s_last / d s_t||``. For direction 0 it is ``prod(norm[t+1:])``, for
      direction 1 ``prod(norm[:t])``. It may underflow to 0 or overflow to inf for long
      sequences: that is what vanishing and exploding look like.
    - ``chain[k, t] = ||d s_last / d s_t||_2``, the norm of the actual product of the Jacobians
      after t (what ``product`` bounds): the exact vanishing/exploding curve for element b.

    For the linear recurrences (diagonal J_t, see :func:`step_coefficients`) these are computed
    from the coefficients directly: ``norm = max_j |a_tj|``, ``chain = max_j prod |a_sj|`` over the
    steps s after t (exact: diagonal products commute; the LRU's 2x2 blocks have norm |lambda|).

    ``progress(steps)``, if given, is called as the steps of each layer and direction are done
    (L * D * T in all): a large state over a long sequence takes minutes (two ARPACK norms and an
    S x S product a step).

    NotRecurrentError for self-attention.
    """
    _refuse_attention(trace, "a step Jacobian norm ||ds_t/ds_{t-1}||")
    _check_index(trace, 0, 0, b)
    L, D, T = trace.num_layers, trace.num_directions, trace.steps
    norm = np.empty((L * D, T))
    product = np.empty((L * D, T))
    chain = np.empty((L * D, T))
    for layer in range(L):
        for direction in range(D):
            k = layer * D + direction
            if trace.mode in LINEAR_MODES:
                moduli = np.abs(step_coefficients(trace, layer, direction, b))  # (T, H)
                norm[k] = moduli.max(axis=1)
                chained = _diagonal_chain_norms(moduli[::-1] if direction else moduli)
                proc = norm[k][::-1] if direction else norm[k]
            else:
                proc, chained = _norms_and_chain(trace, layer, direction, b, progress)  # processing order
                norm[k] = proc[::-1] if direction else proc
            after = np.ones(T)  # after[p] = prod(proc[p+1:])
            with np.errstate(over="ignore", invalid="ignore", under="ignore"):
                after[:-1] = np.cumprod(proc[:0:-1])[::-1]
            product[k] = after[::-1] if direction else after
            chain[k] = chained[::-1] if direction else chained
            if progress is not None and trace.mode in LINEAR_MODES:
                progress(T)
    return {"norm": norm, "product": product, "chain": chain}


#: Bytes of step Jacobians held at once (:func:`_norms_and_chain` builds them a chunk of steps at
#: a time): a 2-layer bidirectional LSTM at H=512 over 1600 steps would need 13 GiB a stream.
JACOBIAN_CHUNK_BYTES = 32 * 2**20


def _norms_and_chain(trace, layer: int, direction: int, b: int, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """``(||J_p||_2, ||J[-1] @ ... @ J[p+1]||_2)`` for every processing step p of a cell that is
    not linear: the Jacobians are built a chunk of steps at a time, from the last one back, while
    the chain is multiplied on (memory bounded by JACOBIAN_CHUNK_BYTES whatever T is)."""
    rec = _saved(trace, layer, direction)
    T, S = trace.steps, state_size(trace)
    norms, chain = np.empty(T), np.ones(T)
    chunk = max(1, JACOBIAN_CHUNK_BYTES // (8 * S * S))
    acc = None  # J[-1] @ ... @ J[q], q the last step folded in
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for p1 in range(T, 0, -chunk):
            p0 = max(0, p1 - chunk)
            jac = _processing_jacobians(trace, rec, layer, direction, b, p0, p1)
            norms[p0:p1] = [_spectral_norm(j) for j in jac]
            for q in range(p1 - 1, max(p0, 1) - 1, -1):  # chain[q-1] = ||J[-1] @ ... @ J[q]||
                acc = jac[q - p0] if acc is None else acc @ jac[q - p0]
                chain[q - 1] = _spectral_norm(acc) if np.isfinite(acc).all() else np.inf
            if progress is not None:
                progress(p1 - p0)
    return norms, chain


#: From this many rows on, the largest singular value comes from ARPACK (scipy's svds: a few
#: dozen products with the matrix) rather than a full SVD: 6-9x faster at 256-1024 rows, the
#: same value to rounding (measured on this machine's 2 cores).
SVDS_FROM = 128


def _spectral_norm(a: np.ndarray) -> float:
    """||a||_2, the largest singular value of a square matrix; the same bits on every call (ARPACK's
    start vector is seeded: a random one changed the last digits of `bptt --json` between calls)."""
    if a.shape[0] >= SVDS_FROM and np.any(a):
        from scipy.sparse.linalg import ArpackError, svds

        try:
            return float(svds(a, k=1, tol=0, return_singular_vectors=False, random_state=0)[0])
        except ArpackError:  # no convergence (rare): the full decomposition
            pass
    return float(np.linalg.norm(a, 2))


def _diagonal_chain_norms(moduli: np.ndarray) -> np.ndarray:
    """The chained norms of :func:`_norms_and_chain` for diagonal Jacobians given by their moduli
    (T, H), processing order: ``max_j prod(moduli[p+1:, j])`` for every p."""
    T = moduli.shape[0]
    out = np.ones(T)
    with np.errstate(under="ignore"):
        after = np.cumprod(moduli[:0:-1], axis=0)[::-1]  # after[p] = prod(moduli[p+1:]) for p < T-1
    if T > 1:
        out[:-1] = after.max(axis=1)
    return out


def gradient_norms(trace) -> np.ndarray:
    """``||dL/dh_t||`` at every step, (L*D, T) float64: Frobenius norm over batch and units of
    ``trace["dh"]`` (the total gradient arriving at h_t; for the LRU its recorded modulus
    |dL/dh_t|, so this is the norm of the complex gradient). Natural time order, row
    ``k = layer * D + direction``. Raises ValueError if backward has not run on the trace.

    Self-attention: one row per block, ``||dL/d(block output at t)||``; its backward is not
    sequential in time (every step gets its gradient at once, through the attention weights)."""
    _check_trace(trace, allow_attention=True)
    _require_gradients(trace)
    dh = np.asarray(trace["dh"], dtype=np.float64)
    return np.sqrt(np.einsum("ktbh,ktbh->kt", dh, dh))


def step_weight_grads(trace, layer: int = 0, direction: int = 0) -> np.ndarray:
    """Each step's contribution to ``d weight_hh`` of one layer/direction, summed over the batch.

    Returns (T, G*H, H) float64 in natural time order (G = 1, 4, 3, 1 for RNN, LSTM, GRU, Leaky): entry t is
    ``dL/d(W_hh h_prev) at step t`` (outer) ``h_prev``, where h_prev is the state the cell read at
    t (see the module docstring). Summed over t it equals ``backward()``'s
    ``grads["weight_hh_l{layer}[_reverse]"]``.

    Needs ``trace["dh"]``: the contributions are those of the last ``backward()`` run on the trace.
    RNN and GRU need only dh_t (which already carries its truncation), but an LSTM's dc_t flows
    back from c_{t+1} and is rebuilt here from what the trace records of that backward: its
    ``truncate`` (cut exactly where the kernels cut it: in processing order p, no gradient flows
    from step p to p-1 when ``p > 0 and p % truncate == 0``) and the final cell state's gradient
    dc_n it was given (dstate's second half; zeros for ``dstate=None``). dh_n is already part of
    the recorded dh at the last step.

    ValueError for MinGRU, MinLSTM and LRU: they have no recurrent weights W_hh, so there is no
    per-step dW_hh to show (their gates read the input only). NotRecurrentError for self-attention.
    """
    d_pre, h_prev = _step_pre_grads(trace, layer, direction)
    return _natural(np.einsum("tbg,tbh->tgh", d_pre, h_prev), direction)


def step_weight_grad_norms(trace, layer: int = 0, direction: int = 0) -> np.ndarray:
    """(T,) Frobenius norms of :func:`step_weight_grads`, without forming the (T, G*H, H) stack.

    Step t's contribution is a sum over the batch of outer products a_b h_b^T, so its squared norm
    is sum_{b,b'} (a_b . a_b')(h_b . h_b'): two (B, B) Gram matrices a step instead of G*H*H
    products (a 2000-step character sequence at H=64: milliseconds instead of seconds).
    Same arguments and errors as :func:`step_weight_grads`."""
    d_pre, h_prev = _step_pre_grads(trace, layer, direction)
    with np.errstate(over="ignore", invalid="ignore"):
        squared = np.einsum("tbc,tbc->t", np.einsum("tbg,tcg->tbc", d_pre, d_pre),
                            np.einsum("tbh,tch->tbc", h_prev, h_prev))
    return _natural(np.sqrt(np.maximum(squared, 0.0)), direction)


def _step_pre_grads(trace, layer: int, direction: int) -> tuple[np.ndarray, np.ndarray]:
    """(d_pre (T, B, G*H), h_prev (T, B, H)) in processing order: the two factors of each step's
    dW_hh contribution (see :func:`step_weight_grads`).
    A dL/dh_t that overflowed (inf) meets saturated units' slope of exactly 0 there: nan, as the
    backward pass computes it too, and as the views show it ("overflowed"), without a warning."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _pre_grads(trace, layer, direction)


def _pre_grads(trace, layer: int, direction: int) -> tuple[np.ndarray, np.ndarray]:
    _refuse_attention(trace, "a per-step dW_hh")
    _check_index(trace, layer, direction)
    if trace.mode in LINEAR_MODES:
        raise ValueError(f"step_weight_grads: the {trace.mode} has no recurrent weights W_hh (its gates read "
                         "the input only), so there is no per-step dW_hh")
    if trace.mode == "Jordan":
        raise ValueError("step_weight_grads: the Jordan network has no W_hh (W_yh reads its previous output), "
                         "so there is no per-step dW_hh")
    _require_gradients(trace)
    truncate, dstate_c = trace.backward_truncate, trace._backward_dc_n  # what that backward ran with
    dh = _dh(trace, layer, direction)  # (T, B, H), processing order
    rec = _saved(trace, layer, direction)
    T, B, H = dh.shape
    h_prev, h_new = rec["hs"][:-1], rec["hs"][1:]

    if trace.mode == "RNN":
        if _nonlinearity(trace) == "relu":
            d_pre = dh * (h_new > 0.0)
        else:
            d_pre = dh * (1.0 - h_new * h_new)

    elif trace.mode == "Leaky":  # the candidate's pre-activation: dh_t * a * (1 - u_t^2)
        d_pre = dh * rec["a"] * (1.0 - rec["u"] * rec["u"])

    elif trace.mode == "LSTM":
        k = layer * trace.num_directions + direction
        dc_in = np.zeros((B, H)) if dstate_c is None else dstate_c[k].astype(np.float64)
        i, f, g, o, cs = rec["i"], rec["f"], rec["g"], rec["o"], rec["cs"]
        tanh_c = np.tanh(cs[1:])
        d_pre = np.empty((T, B, 4 * H))
        for p in range(T - 1, -1, -1):  # mirrors lstm_backward_steps
            dc = dc_in + dh[p] * o[p] * (1.0 - tanh_c[p] * tanh_c[p])
            d_pre[p, :, :H] = dc * g[p] * i[p] * (1.0 - i[p])
            d_pre[p, :, H:2 * H] = dc * cs[p] * f[p] * (1.0 - f[p])
            d_pre[p, :, 2 * H:3 * H] = dc * i[p] * (1.0 - g[p] * g[p])
            d_pre[p, :, 3 * H:] = dh[p] * tanh_c[p] * o[p] * (1.0 - o[p])
            dc_in = dc * f[p]
            if truncate and p > 0 and p % truncate == 0:
                dc_in = np.zeros((B, H))

    else:  # GRU: the recurrent-side pre-activation gradient (n's scaled by r)
        r, z, n, hn = rec["r"], rec["z"], rec["n"], rec["hn"]
        da_n = dh * (1.0 - z) * (1.0 - n * n)
        da_r = da_n * hn * r * (1.0 - r)
        da_z = dh * (h_prev - n) * z * (1.0 - z)
        d_pre = np.concatenate([da_r, da_z, r * da_n], axis=2)

    return d_pre, h_prev
