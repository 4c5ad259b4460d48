"""Finite-difference gradient checks of MinGRU, MinLSTM and LRU (float64), registered into :data:`rnnlab.gradcheck.CHECKS`.

Each check runs forward and backward once for the analytic gradient of
``L = sum(y * dy) + sum(Re(conj(dh_n) * h_n))`` with random cotangents, then compares every element
of every parameter, of the input and of h0 with central differences (see
:func:`rnnlab.gradcheck.finite_difference_check`). The LRU's complex h0 is checked as its real
and imaginary parts (the gradient's convention is dL/dRe + 1j dL/dIm).

The backward pass evaluates its reverse recurrence with the layer's ``method``, so every cell is
checked with each: ``<cell>`` (sequential), ``<cell>_scan`` (the chunked scan, forced to three
chunks so the carries between chunks are exercised on a short sequence) and ``<cell>_blelloch``;
plus stacked (and, for minGRU/minLSTM, bidirectional) and bias-free networks.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..gradcheck import CheckResult, finite_difference_check, register_call

__all__ = ["check_minimal"]


def check_minimal(name: str, mode: str, *, method: str = "sequential", scan_chunks: int | None = None,
                  num_layers: int = 1, bidirectional: bool = False, bias: bool = True, T: int = 5, B: int = 2,
                  I: int = 3, H: int = 4, seed: int = 0) -> CheckResult:
    """Gradient check of ``rnnlab.layers.minimal.<mode>`` (MinGRU, MinLSTM or LRU) on a random tiny float64 problem."""
    from ..layers import minimal

    started = time.perf_counter()
    cls = {"MinGRU": minimal.MinGRU, "MinLSTM": minimal.MinLSTM, "LRU": minimal.LRU}[mode]
    kwargs: dict[str, Any] = dict(num_layers=num_layers, dtype="float64", seed=seed, method=method,
                                  scan_chunks=scan_chunks)
    if mode != "LRU":
        kwargs.update(bias=bias, bidirectional=bidirectional)
    layer = cls(I, H, **kwargs)
    complex_state = layer.state_dtype.kind == "c"
    rng = np.random.default_rng(10_000 + seed)
    shape = (num_layers * layer.num_directions, B, H)

    def draw_state() -> np.ndarray:
        if complex_state:
            return rng.uniform(-1.0, 1.0, shape) + 1j * rng.uniform(-1.0, 1.0, shape)
        return rng.uniform(-1.0, 1.0, shape)

    x = rng.standard_normal((T, B, I))
    h0 = draw_state()
    dy = rng.standard_normal((T, B, layer.output_size))
    dh_n = draw_state()
    _, _, trace = layer.forward(x, h0)
    grads = layer.backward(trace, dy, dh_n)

    def loss() -> float:
        y, h_n, _ = layer.forward(x, h0)
        return float(np.sum(y * dy) + np.sum((np.conj(dh_n) * h_n).real))

    tensors: dict[str, np.ndarray] = dict(layer.parameters())  # live arrays: forward reads them
    tensors["input"] = x
    analytic = dict(grads)
    if complex_state:  # real and imaginary parts interleaved, for the state and its gradient alike
        tensors["h0"] = h0.view(np.float64)
        analytic["h0"] = grads["h0"].view(np.float64)
    else:
        tensors["h0"] = h0
    detail = (f"{mode} method={method} scan_chunks={scan_chunks} layers={num_layers} "
              f"bidirectional={bidirectional} bias={bias} T={T} B={B} I={I} H={H} seed={seed}")
    return finite_difference_check(name, loss, tensors, analytic, detail=detail, started=started)


def _register(name: str, mode: str, **options: Any) -> None:
    register_call(name, check_minimal, mode, mode, **options)


for _cell, _mode in (("mingru", "MinGRU"), ("minlstm", "MinLSTM"), ("lru", "LRU")):
    _register(_cell, _mode)
    _register(f"{_cell}_scan", _mode, method="scan", scan_chunks=3, T=7)
    _register(f"{_cell}_blelloch", _mode, method="blelloch", T=6)
    if _mode == "LRU":
        _register(f"{_cell}_deep", _mode, num_layers=2)
    else:
        _register(f"{_cell}_deep_bidirectional", _mode, num_layers=2, bidirectional=True)
        _register(f"{_cell}_no_bias", _mode, bias=False)
del _cell, _mode
