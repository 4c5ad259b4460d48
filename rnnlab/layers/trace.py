"""Trace: everything a recurrent layer recorded in one forward pass (and its backward pass).

Shape conventions
-----------------
Every per-step record is indexed like PyTorch's final state: ``trace[name]`` has shape
``(num_layers * num_directions, T, B, H)`` where index ``layer * num_directions + direction``
(direction 0 is forward in time, 1 is the reverse direction of a bidirectional layer), and time
runs in the input's natural order for both directions: ``trace["h"][k, t]`` is the hidden state
after the cell has seen position ``t``. ``trace.get(name, layer, direction)`` gives one ``(T, B, H)``.

Records by layer class (every one ``(T, B, H)`` per layer and direction unless said otherwise):

- every layer: ``"h"``, the state after each step;
- :class:`~rnnlab.layers.LSTM`: ``"c"`` (cell state), ``"i"``, ``"f"``, ``"g"``, ``"o"`` (gates);
- :class:`~rnnlab.layers.GRU`: ``"r"``, ``"z"``, ``"n"`` and ``"hn"`` (= W_hn h_{t-1} + b_hn, the
  term r_t gates);
- :class:`~rnnlab.layers.LeakyRNN`: ``"u"`` (the tanh candidate) and ``"a"`` (each unit's rate,
  the same at every step);
- :class:`~rnnlab.layers.JordanRNN`: ``"y"`` (its outputs) and ``"f"`` (what each step read back:
  the previous target or output), both ``(T, B, O)``;
- :class:`~rnnlab.layers.MinGRU`: ``"z"`` and ``"h_tilde"``;
  :class:`~rnnlab.layers.MinLSTM`: ``"f"``, ``"i"``, ``"f_norm"`` and ``"h_tilde"``;
- :class:`~rnnlab.layers.LRU`: ``"h"`` is the real part of its complex state, ``"h_im"`` the
  imaginary part and ``"h_abs"`` the modulus;
- :class:`~rnnlab.layers.EchoStateNetwork`: ``"h"`` only, the reservoir states (H = reservoir_size);
- self-attention blocks record into a :class:`~rnnlab.layers.selfattention.SelfAttentionTrace`
  (``"z"``, ``"attn"``, ``"q"``, ``"k"``, ``"v"``; shapes there).

After ``backward``: ``"dh"``, the total gradient dL/dh_t arriving at every step (from the output
and through the recurrence; for lower layers from the layer above), which is what gradient-norm
curves plot. For the LRU ``"dh"`` is the modulus of dL/dh_t, with ``"dh_re"`` and ``"dh_im"``
(its parts) beside it.

The records are what backward differentiates: treat them as read-only. A trace made on the GPU
(``device="cuda"``) also keeps the device copies of its input, weights and records, so that its
backward uploads only the incoming gradients; that GPU memory is reused once the trace is gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ._params import check_layer_direction


@dataclass(eq=False)  # a trace is itself: its arrays have no truth value to compare by
class Trace:
    """The per-step records of one forward pass of a layer (and, after its ``backward``, dL/dh_t).

    Made by a layer's ``forward`` (never built by hand) and handed back to that same layer's
    ``backward``, which refuses a trace from any other layer. It keeps its own copies of the input
    and weights, so backward differentiates exactly what forward computed.

    Reading it:

    - ``trace[name]``: one record of every layer and direction, ``(num_layers * num_directions, T,
      B, H)``, index ``layer * num_directions + direction`` (read-only, cached);
    - ``trace.get(name, layer=0, direction=0)``: one layer and direction, ``(T, B, H)``
      (read-only view); ValueError for a layer or direction out of range;
    - ``name in trace``, ``for name in trace``, ``trace.names`` (what is recorded now), ``trace.has_gradients`` (True
      once ``backward`` filled in ``"dh"``); an unknown name raises KeyError listing the names;
    - as a dict reads: ``len``, ``keys()``, ``values()``, ``items()``, so ``dict(trace)`` and
      ``np.savez(path, **trace)`` take every record.

    Attributes: ``mode`` (the cell: ``"RNN"``, ``"LSTM"``, ``"GRU"``, ``"Leaky"``, ``"Jordan"``,
    ``"MinGRU"``, ``"MinLSTM"``, ``"LRU"``, ``"ESN"``, ``"SelfAttention"``), ``num_layers``, ``num_directions``,
    ``hidden_size``, ``steps`` (T), ``batch`` (B), ``dtype``, and ``backward_truncate``, the
    ``truncate`` of the last backward on this trace (None: full BPTT), ``options`` (what the
    layer's forward ran with: ``{"batch_first": False, "nonlinearity": "relu"}``), ``lengths`` (the
    forward's ``lengths``, records zero past each; None where every sequence ran all T steps). Time runs in the input's
    natural order for both directions; the records each layer class writes are listed in the
    module docstring.
    """

    mode: str
    num_layers: int
    num_directions: int
    hidden_size: int
    steps: int
    batch: int
    dtype: np.dtype
    backward_truncate: int | None = None  # the ``truncate`` of the last backward() on this trace
    #: The layer's options that forward ran with (an RNN's ``nonlinearity``, a JordanRNN's ``feedback``,
    #: the recurrent layers' and a SelfAttentionBlock's ``batch_first``, the layout of x and y): backward
    #: and the analyses read these, not the layer's, which may be switched since.
    options: dict[str, Any] = field(default_factory=dict)
    #: The forward's ``lengths`` (B,) int64, read-only; None where every sequence ran all T steps.
    lengths: np.ndarray | None = field(default=None, repr=False)
    # (layer, direction) -> name -> (T, B, H) array in natural time order (views of kernel output)
    _records: dict[tuple[int, int], dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    # private state for backward: kernel outputs in processing order, layer inputs, weights used
    _saved: dict[tuple[int, int], Any] = field(default_factory=dict, repr=False)
    # (layer, direction) -> the sequence that direction's kernel ran over, in processing order
    _inputs: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, repr=False)
    _params: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    # (layer, direction) -> what a GPU forward left on the device for the backward (kernels.cuda)
    _device: dict[tuple[int, int], dict] = field(default_factory=dict, repr=False)
    _owner: Any = field(default=None, repr=False)  # the layer whose forward() made this trace
    _stacked: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _backward_dc_n: np.ndarray | None = field(default=None, repr=False)  # LSTM dstate's dc_n of that backward

    def __repr__(self) -> str:
        """The fields as a dataclass writes them (the dtype by its name, ``backward_truncate`` once a
        backward set it), then what a reader looks for first: the records, and the lengths if some are short."""
        parts = []
        for item in fields(self):
            value = getattr(self, item.name)
            if not item.repr or (item.name == "backward_truncate" and value is None):
                continue
            parts.append(f"{item.name}={np.dtype(value).name!r}" if item.name == "dtype" else f"{item.name}={value!r}")
        parts.append(f"records={list(self.names)!r}")
        if self.lengths is not None and (np.asarray(self.lengths) < self.steps).any():  # (a block keeps full ones)
            parts.append(f"lengths={self.lengths.tolist()!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the records available now (``"dh"`` appears after backward)."""
        first = self._records.get((0, 0), {})
        return tuple(first)

    @property
    def has_gradients(self) -> bool:
        """True once ``backward`` has filled in ``"dh"``."""
        return "dh" in self.names

    def get(self, name: str, layer: int = 0, direction: int = 0) -> np.ndarray:
        """One record of one layer and direction, shape ``(T, B, H)``, natural time order (read-only view)."""
        layer, direction = check_layer_direction(layer, direction, self.num_layers, self.num_directions)
        records = self._records[(layer, direction)]
        if not isinstance(name, str) or name not in records:  # a list asked for is named, not "unhashable"
            raise KeyError(f"no record {name!r} in this trace; available: {', '.join(records)}")
        view = records[name].view()
        view.flags.writeable = False
        return view

    def __getitem__(self, name: str) -> np.ndarray:
        """All layers and directions of one record, shape ``(num_layers * D, T, B, H)``."""
        if not isinstance(name, str) or name not in self.names:  # a list asked for is named, not "unhashable"
            raise KeyError(f"no record {name!r} in this trace; available: {', '.join(self.names)}")
        if name not in self._stacked:
            stacked = np.stack(
                [self._records[(l, d)][name] for l in range(self.num_layers) for d in range(self.num_directions)]
            )
            stacked.flags.writeable = False  # cached: a caller's edit must not leak into the next read
            self._stacked[name] = stacked
        return self._stacked[name]

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __iter__(self):
        """The names of the records, as a dict's keys: ``for name in trace: trace[name]``."""
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    # A dict's reading methods: dict(trace), np.savez(path, **trace). (Not a Mapping: get() takes
    # a layer and a direction, not a default.)
    def keys(self) -> tuple[str, ...]:
        """The names of the records, as :attr:`names`."""
        return self.names

    def values(self) -> list[np.ndarray]:
        """Every record, as ``trace[name]``, in the order of :meth:`keys`."""
        return [self[name] for name in self.names]

    def items(self) -> list[tuple[str, np.ndarray]]:
        """``(name, trace[name])`` for every record."""
        return [(name, self[name]) for name in self.names]

    def _set_record(self, layer: int, direction: int, name: str, array: np.ndarray) -> None:
        self._records.setdefault((layer, direction), {})[name] = array
        self._stacked.pop(name, None)
