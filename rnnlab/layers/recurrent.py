"""RNN, LSTM and GRU layers with PyTorch's parameters, stacking and bidirectionality.

A layer is a parameter container plus the glue that runs the numba kernels layer by layer and
direction by direction. Parameters follow ``torch.nn`` exactly (names, shapes, gate order, init),
so ``state_dict`` moves both ways. Inputs are time-major ``(T, B, I)``, or ``(B, T, I)`` with
``batch_first=True`` as torch's; traces are time-major either way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import kernels
from ._params import (CallsForward, IncompatibleKeys, NamedParameters, array_shape, assign_params, caller_layout,
                      check_array, check_bool, check_forward_memory, check_param_memory, check_params,
                      check_positive_int, check_seed, check_sequence_gradient, check_truncate, draw_uniform,
                      foreign_trace, is_one_of, load_into, own_function, parse_dtype, refused_choice, time_major)
from ._lengths import Lengths, check_lengths, segment_of
from .trace import Trace

_DEVICES = ("cpu", "cuda")
#: An :class:`RNN`'s nonlinearities.
NONLINEARITIES = ("tanh", "relu")


def layer_suffix(layer: int, direction: int) -> str:
    """torch's state-dict suffix of one layer and direction, ``_l1_reverse``: the names the kernels'
    weights have in a trace (:meth:`RecurrentLayer._trace_name`)."""
    return f"_l{layer}" + ("_reverse" if direction else "")


class RecurrentLayer(NamedParameters, CallsForward):
    """Common machinery of :class:`RNN`, :class:`LSTM` and :class:`GRU`; not used directly."""

    mode: str = ""
    gate_count: int = 1
    record_names: tuple[str, ...] = ("h",)  # what a forward trace records, before backward adds "dh"
    has_cell_state: bool = False
    #: Whether forward takes ``lengths`` (RNN, LSTM and GRU: their kernels' outputs are what
    #: :mod:`._lengths` reads the final states from, zeroes past each end and cuts into segments; a
    #: subclass's other outputs, a LeakyRNN's rates, would need their own handling).
    takes_lengths: bool = False
    #: The methods each subclass gets its own named copy of (see __init_subclass__).
    _OWN_METHODS = ("__init__", "forward", "backward", "load_state_dict", "reset_parameters", "state_dict",
                    "parameters")  # and named_parameters (NamedParameters)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Give each layer its own copy of every method it inherits, so that LSTM(3, 5, 2, True, True, 0.5) says
        # "LSTM.__init__() takes ...", lstm.forward(x, hx=h) "LSTM.forward() got an unexpected keyword
        # argument", not "RecurrentLayer...", a class the user never called (see own_function).
        for name in cls._OWN_METHODS:
            if name not in cls.__dict__:
                setattr(cls, name, own_function(getattr(cls, name), f"{cls.__qualname__}.{name}"))

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        *,
        bidirectional: bool = False,
        dtype: str = "float32",
        seed: int | None = None,
        device: str = "cpu",
    ) -> None:
        """Arguments as ``torch.nn.LSTM``'s (RNN, GRU alike), in torch's order up to ``batch_first``:

        - ``input_size``, ``hidden_size``: features of x_t and of h_t;
        - ``num_layers``: stacked layers, each reading the one below's output (1);
        - ``bias``: with the biases b_ih and b_hh (True);
        - ``batch_first``: inputs and outputs ``(B, T, features)`` instead of ``(T, B, features)``
          (False); states stay ``(num_layers * D, B, H)`` and trace records time-major, as in torch.

        Keyword-only (torch's next, ``dropout``, has no counterpart here: a sixth positional argument
        is a TypeError rather than something else):

        - ``bidirectional``: a reverse direction in every layer, y then ``(T, B, 2 * H)`` (False);
        - ``dtype``: ``"float32"`` (default; None means it too) or ``"float64"`` (numpy's and torch's
          dtypes of those names too);
        - ``seed``: the initial weights' seed, uniform(-1/sqrt(H), 1/sqrt(H)) as torch draws them
          (None: fresh randomness; recorded as :attr:`seed`);
        - ``device``: ``"cpu"``, or ``"cuda"`` (numba-cuda and an NVIDIA GPU; a one-line error
          says why not where they are missing).

        ValueError names a bad value.
        """
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.bias = check_bool("bias", bias)
        self.batch_first = check_bool("batch_first", batch_first)
        self.bidirectional = check_bool("bidirectional", bidirectional)
        self.dtype = parse_dtype(dtype)
        seed = check_seed(seed)
        if not is_one_of(device, _DEVICES):
            raise refused_choice("device", device, _DEVICES)
        if device == "cuda":  # imported only when asked for; raises a UserError naming why not
            from ..kernels.cuda import require_cuda

            require_cuda()
        self.device = device
        self._params: dict[str, np.ndarray] = {}
        # refused before any array is allocated: numpy's MemoryError names neither the layer nor a size
        first, deeper = self._first_and_deeper_shapes()
        check_param_memory(repr(self), first, self.dtype, "input_size, hidden_size or num_layers",
                           each_layer=deeper, layers=self.num_layers - 1)
        self.reset_parameters(seed)  # sets self.seed

    # ------------------------------------------------------------------ parameters
    @property
    def _kernels(self):
        """The kernel functions of this layer's device: :mod:`rnnlab.kernels` or :mod:`rnnlab.kernels.cuda`
        (same signatures and results)."""
        if self.device == "cuda":
            from ..kernels import cuda

            return cuda
        return kernels

    @property
    def num_directions(self) -> int:
        """D: 2 for a bidirectional layer, else 1 (states are (num_layers * D, B, H))."""
        return 2 if self.bidirectional else 1

    def _suffixes(self) -> list[str]:
        """The state-dict suffix of every layer and direction, in order (layer k's directions together):
        torch's ``_l0``, ``_l0_reverse``, ``_l1``, ... (a cell's parameters have none)."""
        return [layer_suffix(k, d) for k in range(self.num_layers) for d in range(self.num_directions)]

    def _trace_name(self, name: str) -> str:
        """The name a trace gives the parameter ``name`` of :meth:`_param_shapes`, and its gradient has
        in the kernels' results: the name itself (a cell's ``weight_ih`` is its one layer's ``weight_ih_l0``)."""
        return name

    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter names and shapes in PyTorch's state_dict order."""
        G, H, D = self.gate_count, self.hidden_size, self.num_directions
        shapes: dict[str, tuple[int, ...]] = {}
        for k, sfx in enumerate(self._suffixes()):
            shapes["weight_ih" + sfx] = (G * H, self.input_size if k < D else D * H)  # above layer 0: the one below
            shapes["weight_hh" + sfx] = (G * H, H)
            if self.bias:
                shapes["bias_ih" + sfx] = (G * H,)
                shapes["bias_hh" + sfx] = (G * H,)
        return shapes

    def _first_and_deeper_shapes(self) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
        """The first layer's parameter shapes and a deeper one's (every deeper layer has the same), from
        :meth:`_param_shapes` of one and two layers: the memory check of ``num_layers=2**31`` lists no
        names of two billion layers."""
        layers = self.num_layers
        try:
            self.num_layers = 1
            first = list(self._param_shapes().values())
            self.num_layers = min(layers, 2)
            return first, list(self._param_shapes().values())[len(first):]
        finally:
            self.num_layers = layers

    def _expected_params(self) -> dict[str, tuple[int, ...]]:
        """:meth:`_param_shapes`, computed once (the sizes never change after construction)."""
        shapes = self.__dict__.get("_expected_shapes")
        if shapes is None:
            shapes = self._expected_shapes = self._param_shapes()
        return shapes

    def _checked_params(self) -> dict[str, np.ndarray]:
        """C-contiguous copies of the live parameters for one forward (and its trace), after checking
        that each replaced entry still has its name, shape and dtype (ValueError naming it)."""
        check_params(self._params, self._expected_params(), self.dtype)
        return {self._trace_name(k): v.copy() for k, v in self._params.items()}

    def reset_parameters(self, seed: int | None = None) -> None:
        """Draw every parameter from uniform(-1/sqrt(H), 1/sqrt(H)), as torch does; reproducible from ``seed``
        (recorded as :attr:`seed`). Writes into the arrays :meth:`parameters` handed out."""
        self.seed = seed = check_seed(seed)
        shapes = self._param_shapes()
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.hidden_size)
        assign_params(self._params, {name: draw_uniform(rng, -bound, bound, shape, self.dtype)
                                     for name, shape in shapes.items()})

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter, keyed and shaped as the matching ``torch.nn`` module's state_dict."""
        return {name: value.copy() for name, value in self._params.items()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Load parameters (e.g. ``{k: v.numpy()}`` of a torch model). Keys and shapes must match exactly;
        with ``strict=False`` a parameter the state lacks keeps its value and a key of none is ignored.

        Values are converted to the layer's dtype and copied into the arrays :meth:`parameters` handed
        out, as torch does (an optimizer holding them keeps training the layer). Returns torch's
        ``(missing_keys, unexpected_keys)``. Raises ValueError naming any missing, extra (when
        strict), misshapen or non-finite entry; on error the layer is left unchanged.
        """
        return load_into(self._params, self._param_shapes(), state, self.dtype, strict)

    def parameters(self) -> dict[str, np.ndarray]:
        """The live parameter arrays (updating them in place changes the layer). An entry replaced
        by another array must keep its shape and the layer's dtype: ``forward`` checks (ValueError)."""
        return self._params

    @property
    def num_parameters(self) -> int:
        """Scalars in the parameters (what torch's ``sum(p.numel() for p in m.parameters())`` counts)."""
        return sum(p.size for p in self._params.values())

    def __repr__(self) -> str:
        extra = f", num_layers={self.num_layers}" if self.num_layers != 1 else ""
        extra += self._repr_extra()  # the class's own options next, as its constructor orders them
        if not self.bias:
            extra += ", bias=False"
        if self.batch_first:
            extra += ", batch_first=True"
        if self.bidirectional:
            extra += ", bidirectional=True"
        if self.dtype != np.float32:
            extra += f", dtype='{self.dtype.name}'"
        if self.device != "cpu":
            extra += f", device='{self.device}'"
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}{extra})"

    def _repr_extra(self) -> str:
        return ""

    def _trace_options(self) -> dict[str, Any]:
        """What else than the weights a forward ran with, kept by its trace (:attr:`Trace.options`):
        ``batch_first``, the layout of the forward's input and output, which backward's ``dy`` and
        input gradient follow (the layer's may be switched in between, as torch's may)."""
        return {"batch_first": self.batch_first}

    # ------------------------------------------------------------------ validation
    def _state_shape(self, batch: int) -> tuple[int, int, int]:
        return (self.num_layers * self.num_directions, batch, self.hidden_size)

    def _check_array(self, what: str, value: Any, shape: tuple[int, ...], *, finite: bool = True) -> np.ndarray:
        return check_array(what, value, shape, self.dtype, finite=finite)

    def _check_input(self, x: Any, *, finite: bool = True) -> np.ndarray:
        """``x`` checked in the caller's layout (``batch_first``), returned time-major ``(T, B, I)``
        (a transposed view for batch_first); ``finite=False``: NaN and Inf left for the caller."""
        shape = array_shape("input", x)
        layout, add_batch = ("(B, T, {})", "x[None]") if self.batch_first else ("(T, B, {})", "x[:, None]")
        if len(shape) != 3:
            hint = (f"; one sequence (T, I), as torch takes it unbatched: {add_batch} adds B = 1"
                    if len(shape) == 2 else "")
            raise ValueError(f"input must have shape {layout.format(self.input_size)}, got {shape}{hint}")
        if shape[0] < 1 or shape[1] < 1:
            raise ValueError(f"input must have at least one step and one sequence, got shape {shape}")
        return time_major(self._check_array("input", x, shape[:2] + (self.input_size,), finite=finite),
                          self.batch_first)

    def _check_dy(self, trace: Trace, dy: Any, width: int, padding: np.ndarray | None = None) -> np.ndarray:
        """backward's ``dy`` (None: zeros) in the layout of the forward that made ``trace``, time-major
        (``padding``: its forward's :attr:`Lengths.padding`, where dy may be anything)."""
        return check_sequence_gradient(dy, trace.steps, trace.batch, width, self.dtype, trace.options["batch_first"],
                                       padding)

    def _split_state(self, state: Any, batch: int, names: tuple[str, str] = ("h0", "c0"), what: str = "state"):
        """Validate ``state`` (h, or (h, c) for LSTM); None, as a whole or either half, means zeros.
        Each array may be any array-like of the layer's dtype, as the input may; a tuple is the
        LSTM's pair (a list of two is too), refused for the other cells. ``what`` names the argument
        in messages (``"dstate"`` in backward)."""
        shape = self._state_shape(batch)
        cls = type(self).__name__

        def check(name: str, value: Any) -> np.ndarray:
            return np.zeros(shape, self.dtype) if value is None else self._check_array(name, value, shape)

        if self.has_cell_state:
            if state is None:
                state = (None, None)
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise ValueError(f"{cls} {what} must be a pair ({names[0]}, {names[1]})")
            return check(names[0], state[0]), check(names[1], state[1])
        if isinstance(state, tuple):  # torch's (h, c) pair: refused, not read as an array-like
            raise ValueError(f"{cls} {what} must be a single array {names[0]} of shape {shape}, not a tuple")
        # an array-like (a nested list) is taken as x is and as each half of an LSTM's pair is
        return check(names[0], state), None

    # ------------------------------------------------------------------ forward / backward
    def forward(self, x: Any, state: Any = None, lengths: Any = None) -> tuple[np.ndarray, Any, Trace]:
        """Run the network over ``x`` (T, B, I); ``(B, T, I)`` for a ``batch_first`` layer.

        ``state`` is the initial state (torch's ``hx``): h0 (num_layers*D, B, H), for the LSTM the
        pair (h0, c0); None means zeros. Returns ``(y, state_n, trace)``: y (T, B, D*H) is the top
        layer's output (both directions concatenated; (B, T, D*H) for batch_first), state_n is h_n
        (num_layers*D, B, H) (LSTM: the pair (h_n, c_n)), and ``trace`` records every step of every
        layer, time-major (see :class:`rnnlab.Trace`).

        ``lengths`` (RNN, LSTM and GRU; B ints in 1..T, any order) runs sequence b over its first
        ``lengths[b]`` steps only, as torch's ``pack_padded_sequence(x, lengths, enforce_sorted=False)``
        through the layer and ``pad_packed_sequence(total_length=T)`` compute: state_n holds each
        sequence's state after its own last step, y and every trace record are zeros beyond it, the
        reverse direction starts at it, and backward ignores dy there and gives the input zeros. x and
        dy beyond it are never read (NaN there is taken). None (the default) runs all T steps; the
        LeakyRNN takes nothing else (a TypeError).
        """
        if lengths is not None and not self.takes_lengths:
            raise TypeError(f"{type(self).__name__}.forward takes no lengths (RNN, LSTM and GRU do)")
        x = self._check_input(x, finite=lengths is None)  # with lengths, the padding may hold NaN (never read)
        T, B, _ = x.shape
        batch = None
        if lengths is not None:
            lengths = check_lengths(lengths, T, B)
            batch = Lengths(lengths, T)
            if not np.isfinite(x[~batch.padding]).all():
                raise ValueError("input contains NaN or Inf before a sequence's end (past it, the padding may hold "
                                 "anything)")
            if (lengths == T).all():  # every sequence runs all T steps: the one-block path computes that
                lengths = batch = None
        layers = self.num_layers * self.num_directions  # each records every step, and keeps its input
        check_forward_memory(f"{type(self).__name__}.forward", layers * (len(self.record_names) + 1) * (T + 1) * B *
                             self.hidden_size + T * B * self.input_size, self.dtype,
                             "the sequence (T), the batch (B), hidden_size or num_layers")
        h0, c0 = self._split_state(state, B)
        # The trace keeps its own copies of the input and weights: backward must differentiate
        # exactly what forward computed, even if an optimizer updates the weights in between.
        x = x.copy()  # C-contiguous, time-major
        if batch is not None:
            x[batch.padding] = 0  # the padding is never read, but a NaN there would be one in dW_ih (0 * NaN)
        trace = Trace(self.mode, self.num_layers, self.num_directions, self.hidden_size, T, B, self.dtype,
                      _params=self._checked_params(), _owner=self, options=self._trace_options(), lengths=lengths)
        h_n = np.empty(self._state_shape(B), self.dtype)
        c_n = np.empty_like(h_n) if self.has_cell_state else None
        with kernels.blas_single_threaded():
            if batch is None:
                y = self._forward_layers(trace, x, h0, c0, h_n, c_n)
            else:
                lengths.flags.writeable = False  # the trace's, read by its backward
                y = self._forward_by_length(trace, x, h0, c0, h_n, c_n, batch)
        state_n = (h_n, c_n) if self.has_cell_state else h_n
        return caller_layout(y, self.batch_first), state_n, trace

    def _forward_layers(self, trace, layer_input, h0, c0, h_n, c_n) -> np.ndarray:
        """Run every layer and direction, filling ``trace``, h_n and c_n; return the top output."""
        T, B, _ = layer_input.shape
        H, D = self.hidden_size, self.num_directions
        n_threads = kernels.kernel_threads()  # once per call: it costs microseconds
        for layer in range(self.num_layers):
            y = np.empty((T, B, D * H), self.dtype) if D > 1 else None
            for direction in range(D):
                k = layer * D + direction
                sfx = layer_suffix(layer, direction)
                seq = layer_input[::-1].copy() if direction else layer_input
                trace._inputs[(layer, direction)] = seq  # backward runs over the same sequence
                saved = self._run_forward(trace._params, seq, sfx, h0[k], None if c0 is None else c0[k], n_threads,
                                          **self._device_arrays(trace, layer, direction))
                trace._saved[(layer, direction)] = saved
                records = self._records(saved)  # processing order -> natural order
                records = {name: rec[::-1] for name, rec in records.items()} if direction else dict(records)
                trace._records[(layer, direction)] = records  # a new trace: nothing stacked yet
                if y is None:  # one direction: the output is a copy of the h record
                    y = records["h"].copy()
                else:
                    y[:, :, direction * H : (direction + 1) * H] = records["h"]
                h_n[k] = saved[0][-1]
                if c_n is not None:
                    c_n[k] = saved[1][-1]
            layer_input = y
        return layer_input

    def _forward_by_length(self, trace, layer_input, h0, c0, h_n, c_n, batch: Lengths) -> np.ndarray:
        """:meth:`_forward_layers` for sequences of their own lengths (see :mod:`._lengths`): each
        direction in one call over the padded batch, the reverse one over each sequence reversed
        within its length; the final states read at each sequence's end, the rest zeroed past it."""
        T, B, _ = layer_input.shape
        H, D = self.hidden_size, self.num_directions
        n_threads = kernels.kernel_threads()
        for layer in range(self.num_layers):
            y = np.empty((T, B, D * H), self.dtype)
            for direction in range(D):
                k = layer * D + direction
                seq = batch.reverse(layer_input) if direction else layer_input
                trace._inputs[(layer, direction)] = seq
                saved = self._run_forward(trace._params, seq, layer_suffix(layer, direction), h0[k],
                                          None if c0 is None else c0[k], n_threads)
                h_n[k] = batch.last(saved[0])
                if c_n is not None:
                    c_n[k] = batch.last(saved[1])
                batch.zero_padding(saved)
                trace._saved[(layer, direction)] = saved
                records = self._records(saved)  # processing order
                records = {name: batch.reverse(rec) for name, rec in records.items()} if direction else dict(records)
                trace._records[(layer, direction)] = records
                y[:, :, direction * H : (direction + 1) * H] = records["h"]
            layer_input = y
        return layer_input

    def backward(self, trace: Trace, dy: Any = None, dstate: Any = None,
                 truncate: int | None = None) -> dict[str, np.ndarray]:
        """Backpropagate through time.

        Computes the gradient of ``sum(y * dy) + sum(h_n * dh_n) (+ sum(c_n * dc_n))`` where
        ``dstate`` is dh_n (LSTM: the pair (dh_n, dc_n)); ``dy`` or ``dstate`` may be None (zero).
        ``dy`` and the input's gradient are shaped as the forward's y and x (batch_first or not).
        ``truncate=k`` cuts the gradient through the recurrent state every k steps, counted in each
        direction's processing order from its first step (what chunked training with a detached
        state computes); None is full BPTT (0 is refused: the spec's ``truncate = 0`` is None here).

        Returns a dict keyed by the state_dict names plus ``"input"``, ``"h0"`` (and ``"c0"``), and
        fills ``trace["dh"]``, the total dL/dh_t of every step.
        """
        if not isinstance(trace, Trace) or trace._owner is not self:
            raise foreign_trace(self, trace)
        truncate = check_truncate(truncate)
        B, H, D = trace.batch, self.hidden_size, self.num_directions
        batch = None if trace.lengths is None else Lengths(trace.lengths, trace.steps)
        dy = self._check_dy(trace, dy, D * H, None if batch is None else batch.padding)
        dh_n, dc_n = self._split_state(dstate, B, names=("dh_n", "dc_n"), what="dstate")

        grads: dict[str, np.ndarray] = {}
        dh0 = np.empty(self._state_shape(B), self.dtype)
        dc0 = np.empty_like(dh0) if self.has_cell_state else None
        with kernels.blas_single_threaded():
            if batch is None:
                d_input = self._backward_layers(trace, dy, dh_n, dc_n, truncate or 0, grads, dh0, dc0)
            else:
                d_input = self._backward_by_length(trace, dy, dh_n, dc_n, truncate or 0, grads, dh0, dc0, batch)
        trace.backward_truncate = truncate or None  # what per-step analyses must mirror
        trace._backward_dc_n = None if dc_n is None else dc_n.copy()
        ordered = {name: grads[self._trace_name(name)] for name in self._param_shapes()}
        ordered["input"] = caller_layout(d_input, trace.options["batch_first"])
        ordered["h0"] = dh0
        if dc0 is not None:
            ordered["c0"] = dc0
        return ordered

    def _backward_layers(self, trace, dy, dh_n, dc_n, truncate, grads, dh0, dc0) -> np.ndarray:
        """BPTT through every layer (top down) and direction; return dL/dx of the bottom layer."""
        H, D = self.hidden_size, self.num_directions
        n_threads = kernels.kernel_threads()
        d_out = dy
        for layer in range(self.num_layers - 1, -1, -1):
            d_in = None
            for direction in range(D):
                k = layer * D + direction
                sfx = layer_suffix(layer, direction)
                d_seq = d_out if D == 1 else d_out[:, :, direction * H : (direction + 1) * H]
                if direction:  # the kernel ran over the reversed sequence
                    d_seq = d_seq[::-1]
                dx, dh0[k], dc0_k, dh_steps = self._run_backward(
                    trace, trace._inputs[(layer, direction)], sfx, trace._saved[(layer, direction)],
                    np.ascontiguousarray(d_seq), dh_n[k], None if dc_n is None else dc_n[k], truncate, grads,
                    n_threads, **self._device_arrays(trace, layer, direction),
                )
                if dc0 is not None:
                    dc0[k] = dc0_k
                if direction:
                    d_in += dx[::-1]
                else:  # the kernel's own fresh array; += 0 makes its -0.0 +0.0, as the sum always gave
                    d_in = dx
                    d_in += 0
                trace._set_record(layer, direction, "dh", dh_steps[::-1] if direction else dh_steps)
            d_out = d_in
        return d_out

    def _backward_by_length(self, trace, dy, dh_n, dc_n, truncate, grads, dh0, dc0, batch: Lengths) -> np.ndarray:
        """:meth:`_backward_layers` for a forward with lengths: each direction in one call, no gradient
        past any sequence's end; or, for an LSTM's dc_n on a sequence that ends early, segment by
        segment over the sequences still running (see :mod:`._lengths`)."""
        H, D = self.hidden_size, self.num_directions
        n_threads = kernels.kernel_threads()
        d_out = dy
        for layer in range(self.num_layers - 1, -1, -1):
            d_in = None
            for direction in range(D):
                k = layer * D + direction
                d_seq = d_out[:, :, direction * H : (direction + 1) * H]
                d_seq = batch.reverse(d_seq) if direction else d_seq
                if dc_n is not None and dc_n[k][batch.short].any():
                    dx, dh0[k], dc0[k], dh_steps = self._backward_segments(
                        trace, layer, direction, d_seq, dh_n[k], dc_n[k], truncate, grads, n_threads, batch)
                else:
                    d_seq, dh_last = batch.gradient_in(d_seq, dh_n[k])
                    sfx = layer_suffix(layer, direction)
                    dx, dh0[k], dc0_k, dh_steps = self._run_backward(
                        trace, trace._inputs[(layer, direction)], sfx, trace._saved[(layer, direction)], d_seq,
                        dh_last, None if dc_n is None else dc_n[k], truncate, grads, n_threads)
                    if dc0 is not None:
                        dc0[k] = dc0_k
                if direction:
                    dx, dh_steps = batch.reverse(dx), batch.reverse(dh_steps)
                if d_in is None:  # a fresh array; += 0 makes its -0.0 +0.0, as _backward_layers does
                    d_in = dx
                    d_in += 0
                else:
                    d_in = d_in + dx
                trace._set_record(layer, direction, "dh", dh_steps)
            d_out = d_in
        return d_out

    def _backward_segments(self, trace, layer, direction, d_seq, dh_n, dc_n, truncate, grads, n_threads,
                           batch: Lengths):
        """One direction's BPTT segment by segment, from the last to the first, each from the gradient
        the later one left on its sequences' states (or their dh_n, dc_n where they end). Truncation
        cuts fall on segment starts: each one's gradient into the state before is zeroed there.
        Returns (dx, dh0, dc0, dh) as :meth:`_run_backward`; adds the weights' gradients to ``grads``."""
        sfx = layer_suffix(layer, direction)
        seq, saved = trace._inputs[(layer, direction)], trace._saved[(layer, direction)]
        dx, dh_steps = np.zeros(seq.shape, self.dtype), np.zeros(d_seq.shape, self.dtype)
        dh, dc = dh_n.copy(), dc_n.copy()
        for t0, t1, running in batch.segments(truncate)[::-1]:
            part: dict[str, np.ndarray] = {}
            dx[t0:t1, running], dh[running], dc[running], dh_steps[t0:t1, running] = self._run_backward(
                trace, np.ascontiguousarray(seq[t0:t1, running]), sfx, segment_of(saved, t0, t1, running),
                np.ascontiguousarray(d_seq[t0:t1, running]), dh[running], dc[running], 0, part, n_threads)
            if truncate and t0 and t0 % truncate == 0:  # the cut before step t0
                dh[running] = dc[running] = 0
            for name, g in part.items():
                grads[name] = grads[name] + g if name in grads else g
        return dx, dh, dc, dh_steps

    # ------------------------------------------------------------------ per-cell kernels
    def _device_arrays(self, trace, layer: int, direction: int) -> dict:
        """Keyword arguments for this layer's kernels: on the GPU, ``device_arrays``, where the
        forward leaves the device copies of what it read and wrote and the backward of the same
        trace takes them instead of uploading those arrays again; nothing on the CPU."""
        if self.device != "cuda":
            return {}
        return {"device_arrays": trace._device.setdefault((layer, direction), {})}

    def _weights(self, params: Mapping[str, np.ndarray], sfx: str):
        G, H = self.gate_count, self.hidden_size
        w_ih, w_hh = params["weight_ih" + sfx], params["weight_hh" + sfx]
        if self.bias:
            return w_ih, w_hh, params["bias_ih" + sfx], params["bias_hh" + sfx]
        zeros = np.zeros(G * H, self.dtype)
        return w_ih, w_hh, zeros, zeros

    def _run_forward(self, params, x, sfx, h0, c0, n_threads, **device_arrays):  # pragma: no cover - overridden
        """Run one layer and direction over x with ``params`` (the trace's copy of the weights)."""
        raise NotImplementedError

    def _records(self, saved) -> dict[str, np.ndarray]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _run_backward(self, trace, x, sfx, saved, dy, dh_n, dc_n, truncate, grads, n_threads,
                      **device_arrays):  # pragma: no cover - overridden
        raise NotImplementedError

    def _store_bias_grads(self, grads, sfx, d_ih, d_hh):
        if self.bias:
            grads["bias_ih" + sfx] = d_ih
            grads["bias_hh" + sfx] = d_hh


class RNN(RecurrentLayer):
    """Elman RNN, ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``, as ``torch.nn.RNN``.

    ``nonlinearity`` is ``"tanh"`` or ``"relu"``.
    """

    mode = "RNN"
    takes_lengths = True
    gate_count = 1
    record_names = ("h",)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, *, bidirectional: bool = False,
                 dtype: str = "float32", seed: int | None = None, device: str = "cpu"):
        """As :class:`LSTM`'s (see ``help(rnnlab.LSTM.__init__)``), with torch's ``nonlinearity``
        after ``num_layers``: ``"tanh"`` (default) or ``"relu"``."""
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, bidirectional=bidirectional,
                         dtype=dtype, seed=seed, device=device)

    @property
    def nonlinearity(self) -> str:
        """``"tanh"`` or ``"relu"``; may be switched between forwards, as torch's (anything else
        is a ValueError when set: torch's forward raises on it, a check in forward alone would
        let a trace record one name and compute with another)."""
        return self._nonlinearity

    @nonlinearity.setter
    def nonlinearity(self, value: str) -> None:
        if not is_one_of(value, NONLINEARITIES):
            raise refused_choice("nonlinearity", value, NONLINEARITIES)
        self._nonlinearity = value

    def _repr_extra(self) -> str:
        return ", nonlinearity='relu'" if self.nonlinearity == "relu" else ""

    def _trace_options(self) -> dict[str, Any]:
        return {**super()._trace_options(), "nonlinearity": self.nonlinearity}

    def _run_forward(self, params, x, sfx, h0, c0, n_threads, **device_arrays):
        w_ih, w_hh, b_ih, b_hh = self._weights(params, sfx)
        return (self._kernels.elman_forward(x, w_ih, w_hh, b_ih + b_hh, h0, self.nonlinearity == "relu",
                                            n_threads, **device_arrays),)

    def _records(self, saved):
        return {"h": saved[0][1:]}

    def _run_backward(self, trace, x, sfx, saved, dy, dh_n, dc_n, truncate, grads, n_threads, **device_arrays):
        w_ih, w_hh, _, _ = self._weights(trace._params, sfx)
        dx, dw_ih, dw_hh, db, dh0, dh = self._kernels.elman_backward(
            x, w_ih, w_hh, saved[0], dy, dh_n, trace.options["nonlinearity"] == "relu", truncate, n_threads,
            **device_arrays
        )
        grads["weight_ih" + sfx], grads["weight_hh" + sfx] = dw_ih, dw_hh
        self._store_bias_grads(grads, sfx, db, db.copy())
        return dx, dh0, None, dh


class LSTM(RecurrentLayer):
    """Long short-term memory, as ``torch.nn.LSTM`` (gate order i, f, g, o); state is the pair (h, c)."""

    mode = "LSTM"
    takes_lengths = True
    gate_count = 4
    record_names = ("h", "c", "i", "f", "g", "o")
    has_cell_state = True

    def _run_forward(self, params, x, sfx, h0, c0, n_threads, **device_arrays):
        w_ih, w_hh, b_ih, b_hh = self._weights(params, sfx)
        return self._kernels.lstm_forward(x, w_ih, w_hh, b_ih + b_hh, h0, c0, n_threads, **device_arrays)

    def _records(self, saved):
        hs, cs, gates = saved
        return {"h": hs[1:], "c": cs[1:], "i": gates[0], "f": gates[1], "g": gates[2], "o": gates[3]}

    def _run_backward(self, trace, x, sfx, saved, dy, dh_n, dc_n, truncate, grads, n_threads, **device_arrays):
        w_ih, w_hh, _, _ = self._weights(trace._params, sfx)
        hs, cs, gates = saved
        dx, dw_ih, dw_hh, db, dh0, dc0, dh = self._kernels.lstm_backward(
            x, w_ih, w_hh, hs, cs, gates, dy, dh_n, dc_n, truncate, n_threads, **device_arrays
        )
        grads["weight_ih" + sfx], grads["weight_hh" + sfx] = dw_ih, dw_hh
        self._store_bias_grads(grads, sfx, db, db.copy())
        return dx, dh0, dc0, dh


class GRU(RecurrentLayer):
    """Gated recurrent unit, as ``torch.nn.GRU`` (gate order r, z, n;
    n_t = tanh(W_in x + b_in + r * (W_hn h + b_hn)))."""

    mode = "GRU"
    takes_lengths = True
    gate_count = 3
    record_names = ("h", "r", "z", "n", "hn")

    def _run_forward(self, params, x, sfx, h0, c0, n_threads, **device_arrays):
        w_ih, w_hh, b_ih, b_hh = self._weights(params, sfx)
        return self._kernels.gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, n_threads, **device_arrays)

    def _records(self, saved):
        hs, gates, hn = saved
        return {"h": hs[1:], "r": gates[0], "z": gates[1], "n": gates[2], "hn": hn}

    def _run_backward(self, trace, x, sfx, saved, dy, dh_n, dc_n, truncate, grads, n_threads, **device_arrays):
        w_ih, w_hh, _, _ = self._weights(trace._params, sfx)
        hs, gates, hn = saved
        dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dh = self._kernels.gru_backward(
            x, w_ih, w_hh, hs, gates, hn, dy, dh_n, truncate, n_threads, **device_arrays
        )
        grads["weight_ih" + sfx], grads["weight_hh" + sfx] = dw_ih, dw_hh
        self._store_bias_grads(grads, sfx, db_ih, db_hh)
        return dx, dh0, None, dh
