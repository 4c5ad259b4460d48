"""Trace: everything a recurrent layer recorded in one forward pass (and its backward pass).

Shape conventions
-----------------
Every per-step record is indexed like PyTorch's final state: ``trace[name]`` has shape
``(num_layers * num_directions, T, B, H)`` where index ``layer * num_directions + direction``
(direction 0 is forward in time, 1 is the reverse direction of a bidirectional layer), and time
runs in the input's natural order for both directions: ``trace["h"][k, t]`` is the hidden state
after the cell has seen position ``t``. ``trace.get(name, layer, direction)`` gives one ``(T, B, H)``.

Names: ``"h"`` always; ``"c"``, ``"i"``, ``"f"``, ``"g"``, ``"o"`` for LSTM; ``"r"``, ``"z"``,
``"n"`` and ``"hn"`` (= W_hn h_{t-1} + b_hn, the term r_t gates) for GRU; ``"z"``, ``"h_tilde"``
for MinGRU; ``"f"``, ``"i"``, ``"f_norm"``, ``"h_tilde"`` for MinLSTM; ``"h_im"`` and ``"h_abs"``
``"u"`` (the tanh candidate) and ``"a"`` (each unit's rate) for LeakyRNN; ``"y"`` and ``"f"`` (what
was fed back) for JordanRNN; for LRU (whose ``"h"`` is the real part of its complex state; after backward ``"dh"`` is the
modulus of dL/dh_t, with ``"dh_re"`` and ``"dh_im"`` beside it). After ``backward``:
``"dh"``, the total gradient dL/dh_t arriving at every step (from the output and through the
recurrence; for lower layers from the layer above), which is what gradient-norm curves plot.

The records are what backward differentiates: treat them as read-only. A trace made on the GPU
(``device="cuda"``) also keeps the device copies of its input, weights and records, so that its
backward uploads only the incoming gradients; that GPU memory is reused once the trace is gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Trace:
    """The per-step records of one forward pass; see the module docstring for shapes."""

    mode: str
    num_layers: int
    num_directions: int
    hidden_size: int
    steps: int
    batch: int
    dtype: np.dtype
    backward_truncate: int | None = None  # the ``truncate`` of the last backward() on this trace
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
        if not 0 <= layer < self.num_layers:
            raise ValueError(f"layer {layer} out of range: the network has {self.num_layers} layer(s)")
        if not 0 <= direction < self.num_directions:
            raise ValueError(f"direction {direction} out of range: the network has {self.num_directions}")
        records = self._records[(layer, direction)]
        if name not in records:
            raise KeyError(f"no record {name!r} in this trace; available: {', '.join(records)}")
        view = records[name].view()
        view.flags.writeable = False
        return view

    def __getitem__(self, name: str) -> np.ndarray:
        """All layers and directions of one record, shape ``(num_layers * D, T, B, H)``."""
        if name not in self._stacked:
            if name not in self.names:
                raise KeyError(f"no record {name!r} in this trace; available: {', '.join(self.names)}")
            stacked = np.stack(
                [self._records[(l, d)][name] for l in range(self.num_layers) for d in range(self.num_directions)]
            )
            stacked.flags.writeable = False  # cached: a caller's edit must not leak into the next read
            self._stacked[name] = stacked
        return self._stacked[name]

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def _set_record(self, layer: int, direction: int, name: str, array: np.ndarray) -> None:
        self._records.setdefault((layer, direction), {})[name] = array
        self._stacked.pop(name, None)
