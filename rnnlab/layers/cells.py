"""RNNCell, LSTMCell and GRUCell: one time step, as ``torch.nn.RNNCell``, ``LSTMCell`` and ``GRUCell``.

A cell is its layer with one layer, one direction and one step: the same kernels, numbers and
trace records (``(1, 1, B, H)``, or ``trace.get(name)`` ``(1, B, H)``), with torch's cell
parameter names (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``: the layer's without
``_l0``), so a cell's ``state_dict`` moves to and from torch's cell of the same sizes.

Stepping a cell through a sequence by hand computes what the layer computes over it; BPTT by
hand is each step's :meth:`~_Cell.backward` from the last step to the first, each handing the
gradient of its incoming state (``grads["hx"]``, and ``grads["cx"]``) to the step before::

    cell = rnnlab.LSTMCell(8, 16)
    state, traces = None, []
    for x_t in x:                                   # x (T, B, 8)
        state, trace = cell(x_t, state)             # state (h, c), each (B, 16)
        traces.append(trace)
    dstate = (dh_T, None)                           # dL/dh_T (, dL/dc_T: None is zero)
    for trace in reversed(traces):
        grads = cell.backward(trace, dstate)        # sum grads["weight_ih"], ... over the steps
        dstate = (grads["hx"], grads["cx"])         # (+ the output's dL/dh of the step before, if any)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._params import array_shape
from .recurrent import GRU, LSTM, RNN, RecurrentLayer
from .trace import Trace

__all__ = ["RNNCell", "LSTMCell", "GRUCell"]


class _Cell:
    """What RNNCell, LSTMCell and GRUCell add to their layer (one layer, one direction, one step);
    not used directly. Comes first in their bases, so its methods take the layer's place."""

    hidden_size: int
    input_size: int
    dtype: np.dtype
    has_cell_state: bool

    @property
    def batch_first(self) -> bool:
        """Always False: a cell takes one step, x (B, I); torch's cells have no batch_first."""
        return False

    @batch_first.setter
    def batch_first(self, value: bool) -> None:  # the layer's __init__ sets False; anything else is refused
        if value is not False:
            raise AttributeError(f"{type(self).__name__} has no batch_first: a cell takes one step, x (B, I)")

    # ------------------------------------------------------------------ names
    def _suffixes(self) -> list[str]:
        return [""]  # torch's cells: weight_ih, not weight_ih_l0

    def _trace_name(self, name: str) -> str:
        return name + "_l0"  # the kernels and a trace's readers (rnnlab.analysis) know the layer's names

    # ------------------------------------------------------------------ one step
    def _check_step_input(self, x: Any) -> tuple[np.ndarray, bool]:
        """``input`` (B, I), or torch's unbatched (I,): the checked (B, I) array, and whether unbatched."""
        shape = array_shape("input", x)
        I = self.input_size
        if len(shape) not in (1, 2) or shape[-1] != I:
            layer = type(self).__name__.removesuffix("Cell")
            hint = f"; a whole sequence (T, B, I) runs in one call of rnnlab.{layer}" if len(shape) == 3 else ""
            raise ValueError(f"input must have shape (B, {I}), or ({I},) unbatched, got {shape}{hint}")
        if len(shape) == 2 and shape[0] < 1:
            raise ValueError(f"input must have at least one sequence, got shape {shape}")
        x = self._check_array("input", x, shape)
        return (x[None] if len(shape) == 1 else x), len(shape) == 1

    def _check_step_state(self, state: Any, batch: int, unbatched: bool, names: tuple[str, str],
                          what: str) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``state`` as the cell takes it (h, or the LSTM's pair (h, c); None, or either half None: zeros),
        each (B, H) ((H,) unbatched), as the layer's (1, B, H) arrays."""
        shape = (self.hidden_size,) if unbatched else (batch, self.hidden_size)
        cls = type(self).__name__

        def check(name: str, value: Any) -> np.ndarray | None:
            return None if value is None else self._check_array(name, value, shape).reshape(1, batch, -1)

        if self.has_cell_state:
            if state is None:
                return None, None
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise ValueError(f"{cls} {what} must be a pair ({names[0]}, {names[1]}), each of shape {shape}")
            return check(names[0], state[0]), check(names[1], state[1])
        if isinstance(state, tuple):  # an LSTM's pair, refused as the layers refuse it
            raise ValueError(f"{cls} {what} must be a single array {names[0]} of shape {shape}, not a tuple")
        return check(names[0], state), None

    def forward(self, input: Any, hx: Any = None) -> tuple[Any, Trace]:
        """One step from the state ``hx``: ``(h', trace)`` (LSTMCell: ``((h', c'), trace)``).

        ``input`` is (B, I) (torch's unbatched (I,) too); ``hx`` is h (B, H) (LSTMCell: the pair
        (h, c)), each (H,) for an unbatched input; None (or, for the pair, either half) means zeros.
        The trace records the step as the layer's do (T = 1), for :meth:`backward`.
        """
        x, unbatched = self._check_step_input(input)
        B = x.shape[0]
        h0, c0 = self._check_step_state(hx, B, unbatched, ("hx", "cx"), "hx")
        state = (h0, c0) if self.has_cell_state else h0
        _, state_n, trace = RecurrentLayer.forward(self, x[None], state)
        trace.options["unbatched"] = unbatched  # backward's dstate and gradients follow the step's shapes
        trace.options["cell"] = True  # its weights are named without _l0 (rnnlab.explain names them)
        halves = tuple(half[0, 0] if unbatched else half[0]  # drop the one layer (and the batch of one)
                       for half in (state_n if self.has_cell_state else (state_n,)))
        return (halves if self.has_cell_state else halves[0]), trace

    def backward(self, trace: Trace, dstate: Any = None) -> dict[str, np.ndarray]:
        """The gradient of ``sum(h' * dh)`` (LSTMCell: ``+ sum(c' * dc)``) where ``dstate`` is dh, shaped as
        h' (LSTMCell: the pair (dh, dc); None, or either half, is zero), for the step that made ``trace``.

        Returns a dict keyed by the state_dict names plus ``"input"`` and ``"hx"`` (LSTMCell: ``"cx"``),
        each shaped as what the forward took. Fills ``trace["dh"]``.
        """
        if not isinstance(trace, Trace) or trace._owner is not self:
            return RecurrentLayer.backward(self, trace)  # its one-line error names the trace's maker
        unbatched, B = trace.options["unbatched"], trace.batch
        dh, dc = self._check_step_state(dstate, B, unbatched, ("dh", "dc"), "dstate")
        grads = RecurrentLayer.backward(self, trace, None, (dh, dc) if self.has_cell_state else dh)
        squeeze = (lambda a: a[0, 0]) if unbatched else (lambda a: a[0])  # noqa: E731 - drop T = 1 (and B = 1)
        grads["input"] = squeeze(grads["input"])
        grads["hx"] = squeeze(grads.pop("h0"))
        if self.has_cell_state:
            grads["cx"] = squeeze(grads.pop("c0"))
        return grads


class RNNCell(_Cell, RNN):
    """One Elman step, ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``, as ``torch.nn.RNNCell``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh", *,
                 dtype: str = "float32", seed: int | None = None, device: str = "cpu") -> None:
        """As :class:`LSTMCell`'s, with torch's ``nonlinearity`` after ``bias`` (as torch's RNNCell
        orders them): ``"tanh"`` (default) or ``"relu"``."""
        RNN.__init__(self, input_size, hidden_size, 1, nonlinearity, bias, dtype=dtype, seed=seed, device=device)


class LSTMCell(_Cell, LSTM):
    """One LSTM step, as ``torch.nn.LSTMCell`` (gate order i, f, g, o); the state is the pair (h, c)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, dtype: str = "float32",
                 seed: int | None = None, device: str = "cpu") -> None:
        """Arguments as torch's cell's, in its order: ``input_size``, ``hidden_size`` (features of x and h),
        ``bias`` (True: with b_ih and b_hh). Keyword-only: ``dtype`` (``"float32"``, the default, or
        ``"float64"``), ``seed`` (the initial weights', uniform(-1/sqrt(H), 1/sqrt(H)) as torch draws
        them; None: fresh randomness), ``device`` (``"cpu"`` or ``"cuda"``). ValueError names a bad value.
        """
        LSTM.__init__(self, input_size, hidden_size, 1, bias, dtype=dtype, seed=seed, device=device)


class GRUCell(_Cell, GRU):
    """One GRU step, as ``torch.nn.GRUCell`` (gate order r, z, n)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, dtype: str = "float32",
                 seed: int | None = None, device: str = "cpu") -> None:
        """As :class:`LSTMCell`'s (``help(rnnlab.LSTMCell.__init__)``)."""
        GRU.__init__(self, input_size, hidden_size, 1, bias, dtype=dtype, seed=seed, device=device)
