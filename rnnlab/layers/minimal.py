"""MinGRU, MinLSTM and LRU: recurrences linear in their state, evaluated step by step or by a parallel scan.

Their gates read the input x_t only, never h_{t-1}, so h_t = a_t * h_{t-1} + b_t with a_t, b_t
known for every step before the recurrence starts: the whole sequence is a prefix scan that can
run in O(log T) depth (see :mod:`rnnlab.kernels.scan`). The layers share the API of
:class:`rnnlab.RNN` / :class:`rnnlab.LSTM` / :class:`rnnlab.GRU`: time-major ``(T, B, I)`` input,
``forward(x, state=None, lengths=None, *, method=None) -> (y, h_n, trace)``,
``backward(trace, dy, dstate=None, truncate=None, method=None) -> grads``, ``state_dict`` /
``load_state_dict`` / ``parameters`` / ``num_parameters``, a seed for reproducible initialisation.

``method`` selects how the linear recurrence (forward and its reverse in backward) is evaluated;
the results agree to rounding:

- ``"sequential"`` (the default): the time loop, channels (batch x hidden units) split across
  threads when the work is large enough. The least work per thread on a CPU with few cores
  (see :mod:`rnnlab.kernels.scan`; ``benchmarks/scan_vs_sequential.py`` measures it).
- ``"scan"``: the chunked parallel scan over time, one chunk per thread (``scan_chunks`` fixes
  the number of chunks, e.g. to watch the algorithm on short sequences).
- ``"blelloch"``: the log-depth work-efficient tree scan, written for reading (slow on a CPU).

Parameters (per layer k; ``_reverse`` for the reverse direction of a bidirectional layer):

====================  ==================  ============================================================
MinGRU                ``weight_ih_l{k}``  (2H, I_k): rows [W_z; W_h]; ``bias_ih_l{k}`` (2H,)
MinLSTM               ``weight_ih_l{k}``  (3H, I_k): rows [W_f; W_i; W_h]; ``bias_ih_l{k}`` (3H,)
LRU                   ``nu_log_l{k}``, ``theta_log_l{k}``, ``gamma_log_l{k}`` (H,); ``B_re_l{k}``,
                      ``B_im_l{k}`` (H, I); ``C_re_l{k}``, ``C_im_l{k}`` (I, H); ``D_l{k}`` (I,)
====================  ==================  ============================================================

with I_0 = input_size and I_k = D * H above (D = 2 if bidirectional). There are no recurrent
weights. Initialisation: minGRU/minLSTM as ``torch.nn.Linear`` (uniform(+-1/sqrt(I_k)), the
paper's code); LRU as in Orvieto et al. 2023, appendix A (|lambda| uniform on the ring
[r_min, r_max], phase uniform in [0, max_phase], B ~ N(0, 1/(2I)), C ~ N(0, 1/H), D ~ N(0, 1),
gamma_log = log sqrt(1 - |lambda|^2)).

Trace records, each ``(num_layers * D, T, B, H)`` (see :class:`rnnlab.Trace`):

- MinGRU: ``h``; ``z`` (update gate); ``h_tilde`` (candidate W_h x + b_h).
- MinLSTM: ``h``; ``f``, ``i`` (raw gates); ``f_norm`` = f / (f + i), the coefficient of h_{t-1}
  (i / (f + i) = 1 - f_norm); ``h_tilde``.
- LRU: ``h`` = Re(h_t), ``h_im`` = Im(h_t), ``h_abs`` = |h_t| (the state is complex).
- after ``backward``: ``dh``, the total dL/dh_t; for the LRU its modulus |dL/dh_t| (so that
  ||dh_t|| is the gradient's norm) plus ``dh_re``, ``dh_im``, its parts dL/dRe(h), dL/dIm(h).

The LRU's state h0 / h_n and the gradient ``grads["h0"]`` are complex (complex64 for float32,
complex128 for float64), gradients meaning dL/dRe + 1j dL/dIm; its output y_t = Re(C h_t) + D x_t
has the input's size I, so stacked LRU layers all map I features to I. It has no reverse direction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import kernels
from ..kernels import minimal as mk
from ..kernels.scan import METHODS
from ._params import (assign_params, caller_layout, check_array, check_bool, check_finite_number, check_positive_int,
                      check_seed, check_truncate, draw_uniform, foreign_trace, is_one_of, refused_choice)
from .recurrent import RecurrentLayer, layer_suffix
from .trace import Trace

__all__ = ["MinGRU", "MinLSTM", "LRU", "METHODS"]


def _check_method(method: Any) -> str:
    if not is_one_of(method, METHODS):
        raise refused_choice("method", method, METHODS)
    return method


class _LinearRecurrence(RecurrentLayer):
    """Common machinery of :class:`MinGRU`, :class:`MinLSTM` and :class:`LRU`; not used directly."""

    state_dtype_kind = "f"  # "c": the state is complex (LRU)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True, *,
                 batch_first: bool = False, bidirectional: bool = False, dtype: str = "float32",
                 seed: int | None = None, method: str = "sequential", scan_chunks: int | None = None) -> None:
        self.method = _check_method(method)
        self.scan_chunks = None if scan_chunks is None else check_positive_int("scan_chunks", scan_chunks)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, bidirectional=bidirectional,
                         dtype=dtype, seed=seed)

    # ------------------------------------------------------------------ sizes and validation
    @property
    def output_size(self) -> int:
        """Features of y at each step: D * H (LRU: input_size)."""
        return self.num_directions * self.hidden_size

    @property
    def state_dtype(self) -> np.dtype:
        """dtype of h0 / h_n: the layer's dtype (LRU: the matching complex dtype)."""
        return mk.complex_dtype(self.dtype) if self.state_dtype_kind == "c" else self.dtype

    def _repr_extra(self) -> str:
        extra = "" if self.method == "sequential" else f", method={self.method!r}"
        return extra + ("" if self.scan_chunks is None else f", scan_chunks={self.scan_chunks}")

    def _check_state(self, what: str, value: Any, batch: int) -> np.ndarray:
        shape = self._state_shape(batch)
        if value is None:
            return np.zeros(shape, self.state_dtype)
        cls, arg = type(self).__name__, "state" if what == "h0" else "dstate"
        if isinstance(value, tuple):  # torch's (h, c) pair: refused, as by RNN and GRU
            raise ValueError(f"{cls} {arg} must be a single array {what} of shape {shape}, not a tuple")
        # an array-like (a nested list) is taken as the input is, and as RNN's and GRU's states are
        return check_array(what, value, shape, self.state_dtype, owner=f"the {cls} state")

    def _resolve_method(self, method: Any) -> str:
        return self.method if method is None else _check_method(method)

    # ------------------------------------------------------------------ forward / backward
    def forward(self, x: Any, state: Any = None, lengths: Any = None, *,
                method: str | None = None) -> tuple[np.ndarray, np.ndarray, Trace]:
        """Run the network over ``x`` (T, B, I); ``(B, T, I)`` for a ``batch_first`` layer.

        Returns ``(y, h_n, trace)``: y (T, B, output_size) is the top layer's output (MinGRU,
        MinLSTM: D*H, both directions concatenated; LRU: I, its layers as wide as the input;
        (B, T, output_size) for batch_first), h_n (num_layers * D, B, H) the final states, ``trace``
        every step of every layer, time-major. ``state``
        is h0 (None: zeros). ``method`` overrides the layer's evaluation strategy for this call.
        ``lengths`` is refused (a TypeError): the sequences of a batch run all T steps here, where
        RNN, LSTM and GRU take them in the same place.
        """
        if lengths is not None:  # RNN's third argument: not read as a method ("got a value of type list")
            raise TypeError(f"{type(self).__name__}.forward takes no lengths (RNN, LSTM and GRU do)")
        method = self._resolve_method(method)
        x = self._check_input(x)
        T, B, _ = x.shape
        h0 = self._check_state("h0", state, B)
        # the trace keeps its own input and weights: backward differentiates what forward computed
        x = x.copy()  # C-contiguous, time-major
        trace = Trace(self.mode, self.num_layers, self.num_directions, self.hidden_size, T, B, self.dtype,
                      _params=self._checked_params(), _owner=self, options=self._trace_options())
        h_n = np.empty(self._state_shape(B), self.state_dtype)
        n_threads = kernels.kernel_threads()
        layer_input = x
        with kernels.blas_single_threaded():
            for layer in range(self.num_layers):
                outputs = []
                for direction in range(self.num_directions):
                    k = layer * self.num_directions + direction
                    seq = layer_input[::-1].copy() if direction else layer_input
                    trace._inputs[(layer, direction)] = seq  # backward runs over the same sequence
                    out, h_last, records, saved = self._run_forward(trace._params, seq, layer_suffix(layer, direction),
                                                                    h0[k], method, n_threads)
                    trace._saved[(layer, direction)] = saved
                    for name, rec in records.items():  # processing order -> natural order
                        trace._set_record(layer, direction, name, rec[::-1] if direction else rec)
                    outputs.append(out[::-1] if direction else out)
                    h_n[k] = h_last
                layer_input = outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=2)
        # never a view of the trace's records: one direction's output is its kernel's, which the trace keeps
        return caller_layout(layer_input, self.batch_first, copy=len(outputs) == 1), h_n, trace

    def backward(self, trace: Trace, dy: Any = None, dstate: Any = None, truncate: int | None = None,
                 method: str | None = None) -> dict[str, np.ndarray]:
        """Backpropagate through time.

        Computes the gradient of ``sum(y * dy) + sum(h_n * dh_n)`` (LRU: ``Re(conj(dh_n) * h_n)``)
        where ``dstate`` is dh_n; ``dy`` or ``dstate`` may be None (zero). ``truncate=k`` cuts the
        gradient through the state every k steps of each direction's processing order (as
        :meth:`rnnlab.RNN.backward`); None is full BPTT (0 is refused). ``method`` as in :meth:`forward`.
        ``dy`` and the input's gradient are shaped as the forward's y and x (batch_first or not).

        Returns a dict keyed by the state_dict names plus ``"input"`` and ``"h0"``, and fills
        ``trace["dh"]`` (see the module docstring).
        """
        if not isinstance(trace, Trace) or trace._owner is not self:
            raise foreign_trace(self, trace)
        truncate = check_truncate(truncate)
        method = self._resolve_method(method)
        B, D = trace.batch, self.num_directions
        dy = self._check_dy(trace, dy, self.output_size)
        dh_n = self._check_state("dh_n", dstate, B)
        grads: dict[str, np.ndarray] = {}
        dh0 = np.empty(self._state_shape(B), self.state_dtype)
        n_threads = kernels.kernel_threads()
        d_out = dy
        with kernels.blas_single_threaded():
            for layer in range(self.num_layers - 1, -1, -1):
                d_in = np.zeros(trace._inputs[(layer, 0)].shape, self.dtype)
                width = d_out.shape[2] // D
                for direction in range(D):
                    k = layer * D + direction
                    d_seq = d_out[:, :, direction * width : (direction + 1) * width]
                    if direction:  # the kernel ran over the reversed sequence
                        d_seq = d_seq[::-1]
                    dx, dh0[k], records = self._run_backward(
                        trace, trace._inputs[(layer, direction)], layer_suffix(layer, direction),
                        trace._saved[(layer, direction)], np.ascontiguousarray(d_seq), dh_n[k], truncate or 0,
                        method, grads, n_threads)
                    d_in += dx[::-1] if direction else dx
                    for name, rec in records.items():
                        trace._set_record(layer, direction, name, rec[::-1] if direction else rec)
                d_out = d_in
        trace.backward_truncate = truncate or None
        ordered = {name: grads[name] for name in self._param_shapes()}
        ordered["input"] = caller_layout(d_out, trace.options["batch_first"])
        ordered["h0"] = dh0
        return ordered

    # ------------------------------------------------------------------ per-cell hooks
    def _run_forward(self, params, x, sfx, h0, method, n_threads):  # pragma: no cover - overridden
        """Run one layer and direction with ``params`` (the trace's copy of the weights); return
        (output (T, B, out), h_last, records in processing order, saved for backward)."""
        raise NotImplementedError

    def _run_backward(self, trace, x, sfx, saved, dy, dh_n, truncate, method, grads, n_threads):  # pragma: no cover
        """Fill ``grads`` for this layer and direction; return (dx, dh0, records in processing order)."""
        raise NotImplementedError


class _Gated(_LinearRecurrence):
    """minGRU / minLSTM: one input projection of G*H rows, no recurrent weights."""

    gate_count = 2

    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        G, H = self.gate_count, self.hidden_size
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else H * self.num_directions
            for direction in range(self.num_directions):
                sfx = layer_suffix(layer, direction)
                shapes["weight_ih" + sfx] = (G * H, layer_input)
                if self.bias:
                    shapes["bias_ih" + sfx] = (G * H,)
        return shapes

    def reset_parameters(self, seed: int | None = None) -> None:
        """Draw every parameter from uniform(-1/sqrt(I_k), 1/sqrt(I_k)) (``torch.nn.Linear``); reproducible from
        ``seed`` (recorded as :attr:`seed`). Writes into the arrays :meth:`parameters` handed out."""
        self.seed = seed = check_seed(seed)
        rng = np.random.default_rng(seed)
        params = {}
        for name, shape in self._param_shapes().items():
            layer = int(name.split("_l")[1].split("_")[0])
            fan_in = self.input_size if layer == 0 else self.hidden_size * self.num_directions
            bound = 1.0 / math.sqrt(fan_in)
            params[name] = draw_uniform(rng, -bound, bound, shape, self.dtype)
        assign_params(self._params, params)

    def _weights(self, params: Mapping[str, np.ndarray], sfx: str):
        w = params["weight_ih" + sfx]
        b = params["bias_ih" + sfx] if self.bias else np.zeros(w.shape[0], self.dtype)
        return w, b


class MinGRU(_Gated):
    """minGRU (Feng et al. 2024): a GRU whose update gate and candidate read the input only.

        z_t = sigmoid(W_z x_t + b_z),  h~_t = W_h x_t + b_h,  h_t = (1 - z_t) * h_{t-1} + z_t * h~_t

    ``MinGRU(input_size, hidden_size, num_layers=1, bias=True, *, batch_first=False,
    bidirectional=False, dtype="float32", seed=None, method="sequential", scan_chunks=None)``
    (keyword-only after ``bias``: torch has no such layer whose order to follow); parameters, records and methods in
    :mod:`rnnlab.layers.minimal`.
    """

    mode = "MinGRU"
    gate_count = 2
    record_names = ("h", "z", "h_tilde")

    def _run_forward(self, params, x, sfx, h0, method, n_threads):
        w, b = self._weights(params, sfx)
        hs, gates, a = mk.mingru_forward(x, w, b, h0, method, n_threads, self.scan_chunks)
        return hs[1:], hs[-1], {"h": hs[1:], "z": gates[0], "h_tilde": gates[1]}, (hs, gates, a)

    def _run_backward(self, trace, x, sfx, saved, dy, dh_n, truncate, method, grads, n_threads):
        w, _ = self._weights(trace._params, sfx)
        hs, gates, a = saved
        dx, dw, db, dh0, dh = mk.mingru_backward(x, w, hs, gates, a, dy, dh_n, truncate, method, n_threads,
                                                 self.scan_chunks)
        grads["weight_ih" + sfx] = dw
        if self.bias:
            grads["bias_ih" + sfx] = db
        return dx, dh0, {"dh": dh}


class MinLSTM(_Gated):
    """minLSTM (Feng et al. 2024) with the paper's normalised gates (length-independent scaling).

        f_t = sigmoid(W_f x_t + b_f),  i_t = sigmoid(W_i x_t + b_i),  h~_t = W_h x_t + b_h
        f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t),  h_t = f'_t * h_{t-1} + i'_t * h~_t

    Same constructor as :class:`MinGRU`; parameters, records and methods in
    :mod:`rnnlab.layers.minimal`. The state is h alone (no cell state).
    """

    mode = "MinLSTM"
    gate_count = 3
    record_names = ("h", "f", "i", "f_norm", "h_tilde")

    def _run_forward(self, params, x, sfx, h0, method, n_threads):
        w, b = self._weights(params, sfx)
        hs, gates = mk.minlstm_forward(x, w, b, h0, method, n_threads, self.scan_chunks)
        records = {"h": hs[1:], "f": gates[0], "i": gates[1], "f_norm": gates[2], "h_tilde": gates[3]}
        return hs[1:], hs[-1], records, (hs, gates)

    def _run_backward(self, trace, x, sfx, saved, dy, dh_n, truncate, method, grads, n_threads):
        w, _ = self._weights(trace._params, sfx)
        hs, gates = saved
        dx, dw, db, dh0, dh = mk.minlstm_backward(x, w, hs, gates, dy, dh_n, truncate, method, n_threads,
                                                  self.scan_chunks)
        grads["weight_ih" + sfx] = dw
        if self.bias:
            grads["bias_ih" + sfx] = db
        return dx, dh0, {"dh": dh}


_LRU_NAMES = ("nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im", "D")


class LRU(_LinearRecurrence):
    """Linear recurrent unit (Orvieto et al. 2023): a complex diagonal linear recurrence.

        lambda = exp(-exp(nu_log) + i exp(theta_log))
        h_t = lambda * h_{t-1} + exp(gamma_log) * ((B_re + i B_im) x_t)
        y_t = Re((C_re + i C_im) h_t) + D * x_t

    In exact arithmetic |lambda| = exp(-exp(nu_log)) < 1 for any finite nu_log. Computed, it rounds:
    once exp(nu_log) (= 1 - |lambda|, nearly) is below about 1e-7 in float32 (1e-16 in float64) the
    modulus can be exactly 1, and in float32, whose real and imaginary parts round separately, just
    above it (up to 1 + 1.2e-7; :meth:`eigenvalues` shows it). That happens when r_max is within
    about 1e-7 of 1 (the default r_max = 1 draws such a unit about once in five million) or when
    training drives nu_log below about -16; such a unit then keeps its state (or grows it by a
    factor of at most 1 + 1.2e-7 a step). Guaranteeing |lambda| < 1 would mean clamping nu_log in every forward,
    changing the results of trained models: it is not done.

    ``LRU(input_size, hidden_size, num_layers=1, *, dtype="float32", seed=None, method="sequential",
    scan_chunks=None, r_min=0.0, r_max=1.0, max_phase=2*pi, bidirectional=False, batch_first=False)``
    (keyword-only after num_layers, as MinGRU's are after ``bias``, which the LRU lacks): hidden_size is the number of
    complex state units, the output has input_size features (the paper's form, with its
    initialisation of |lambda| on the ring [r_min, r_max] and phases in [0, max_phase]). No bias,
    no reverse direction (``bidirectional=True`` is refused). :meth:`eigenvalues` gives every lambda.
    """

    mode = "LRU"
    record_names = ("h", "h_im", "h_abs")
    state_dtype_kind = "c"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *, dtype: str = "float32",
                 seed: int | None = None, method: str = "sequential", scan_chunks: int | None = None,
                 r_min: float = 0.0, r_max: float = 1.0, max_phase: float = 2 * math.pi,
                 bidirectional: bool = False, batch_first: bool = False) -> None:
        if check_bool("bidirectional", bidirectional):
            raise ValueError("bidirectional must be False: the LRU has no reverse direction")
        values = {"r_min": r_min, "r_max": r_max, "max_phase": max_phase}
        for name, value in values.items():
            check_finite_number(name, value)
        if not 0.0 <= r_min < r_max <= 1.0:
            raise ValueError(f"r_min and r_max must satisfy 0 <= r_min < r_max <= 1, got {r_min!r}, {r_max!r}")
        if max_phase <= 0.0:
            raise ValueError(f"max_phase must be positive, got {max_phase!r}")
        self.r_min, self.r_max, self.max_phase = float(r_min), float(r_max), float(max_phase)
        super().__init__(input_size, hidden_size, num_layers, True, batch_first=batch_first, bidirectional=False,
                         dtype=dtype, seed=seed, method=method, scan_chunks=scan_chunks)

    @property
    def output_size(self) -> int:
        """Features of y at each step: the LRU maps back to input_size (y_t = Re(C h_t) + D * x_t)."""
        return self.input_size

    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        H, I = self.hidden_size, self.input_size
        shapes = {"nu_log": (H,), "theta_log": (H,), "gamma_log": (H,), "B_re": (H, I), "B_im": (H, I),
                  "C_re": (I, H), "C_im": (I, H), "D": (I,)}
        return {f"{name}_l{layer}": shapes[name] for layer in range(self.num_layers) for name in _LRU_NAMES}

    def reset_parameters(self, seed: int | None = None) -> None:
        """The paper's initialisation (see the class docstring); reproducible from ``seed`` (recorded as
        :attr:`seed`). Writes into the arrays :meth:`parameters` handed out."""
        self.seed = seed = check_seed(seed)
        rng = np.random.default_rng(seed)
        H, I = self.hidden_size, self.input_size
        params = {}
        for layer in range(self.num_layers):
            u1 = rng.uniform(1e-12, 1.0, H)
            u2 = rng.uniform(1e-12, 1.0, H)
            nu = -0.5 * np.log(u1 * (self.r_max**2 - self.r_min**2) + self.r_min**2)  # |lambda| = exp(-nu)
            nu = np.maximum(nu, 1e-30)  # r_max = 1 may round a modulus to exactly 1
            values = {
                "nu_log": np.log(nu),
                "theta_log": np.log(self.max_phase * u2),
                "gamma_log": 0.5 * np.log(-np.expm1(-2.0 * nu)),  # log sqrt(1 - |lambda|^2)
                "B_re": rng.standard_normal((H, I)) / math.sqrt(2 * I),
                "B_im": rng.standard_normal((H, I)) / math.sqrt(2 * I),
                "C_re": rng.standard_normal((I, H)) / math.sqrt(H),
                "C_im": rng.standard_normal((I, H)) / math.sqrt(H),
                "D": rng.standard_normal(I),
            }
            params.update({f"{name}_l{layer}": values[name].astype(self.dtype) for name in _LRU_NAMES})
        assign_params(self._params, params)

    def eigenvalues(self) -> np.ndarray:
        """Every layer's diagonal lambda, complex (num_layers, H), as the kernels use it (computed in float64,
        rounded to the layer's complex dtype). The unit circle is stability: |lambda| < 1 in exact
        arithmetic, but a modulus within about 1e-7 of 1 (float32) rounds to 1 or just above, e.g.
        1.0000001 for r_max = 1 and r_min = 0.99999999 (see the class docstring)."""
        return np.stack([mk.lru_lambda(self._params[f"nu_log_l{k}"], self._params[f"theta_log_l{k}"])
                         for k in range(self.num_layers)])

    def _repr_extra(self) -> str:
        extra = "" if (self.r_min, self.r_max) == (0.0, 1.0) else f", r_min={self.r_min}, r_max={self.r_max}"
        extra += "" if self.max_phase == 2 * math.pi else f", max_phase={self.max_phase}"
        return super()._repr_extra() + extra

    def _layer_params(self, params: Mapping[str, np.ndarray], sfx: str) -> list[np.ndarray]:
        return [params[name + sfx] for name in _LRU_NAMES]

    def _run_forward(self, params, x, sfx, h0, method, n_threads):
        y, hs, h_re, h_im = mk.lru_forward(x, *self._layer_params(params, sfx), h0, method, n_threads,
                                           self.scan_chunks)
        records = {"h": h_re, "h_im": h_im, "h_abs": np.abs(hs[1:])}
        return y, hs[-1], records, (hs, h_re, h_im)

    def _run_backward(self, trace, x, sfx, saved, dy, dh_n, truncate, method, grads, n_threads):
        hs, h_re, h_im = saved
        dx, layer_grads, dh0, dh = mk.lru_backward(x, *self._layer_params(trace._params, sfx), hs, h_re, h_im, dy,
                                                   dh_n, truncate, method, n_threads, self.scan_chunks)
        for name, value in layer_grads.items():
            grads[name + sfx] = value.astype(self.dtype, copy=False)
        records = {"dh": np.abs(dh), "dh_re": np.ascontiguousarray(dh.real), "dh_im": np.ascontiguousarray(dh.imag)}
        return dx, dh0, records
