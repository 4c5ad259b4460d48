"""Finite-difference gradient checks of the leaky-integrator RNN (float64), registered into
:data:`rnnlab.gradcheck.CHECKS` as ``leaky``, ``leaky_deep_bidirectional`` and ``leaky_truncated``.

Each check runs forward and backward once for the analytic gradient of
``L = sum(y * dy) + sum(h_n * dh_n)`` with random cotangents, then compares every element of every
parameter (the time-constant parameters ``alpha_*`` included), of the input and of h0 with central
differences (see :func:`rnnlab.gradcheck.finite_difference_check`). The alphas start from the
layer's time-constant spread plus noise, so no two units share a rate. ``leaky_truncated`` checks
truncated BPTT against the loss of a forward pass run in chunks with the state detached between
them (what ``truncate=k`` means).
"""

from __future__ import annotations

import time

import numpy as np

from ..gradcheck import CheckResult, finite_difference_check, register_call

__all__ = ["check_leaky"]


def check_leaky(name: str, *, num_layers: int = 1, bidirectional: bool = False, bias: bool = True,
                truncate: int | None = None, T: int = 6, B: int = 2, I: int = 3, H: int = 4,
                seed: int = 0) -> CheckResult:
    """Gradient check of :class:`rnnlab.layers.leaky.LeakyRNN` on a random tiny float64 problem.

    With ``truncate`` (unidirectional only) the loss is evaluated chunk by chunk, the state passed
    from one chunk to the next as a constant, so its exact gradient is truncated BPTT's."""
    from ..layers.leaky import LeakyRNN

    if truncate is not None and bidirectional:
        raise ValueError("check_leaky: truncate is checked on unidirectional layers only")
    started = time.perf_counter()
    layer = LeakyRNN(I, H, num_layers=num_layers, bidirectional=bidirectional, bias=bias, dtype="float64",
                     seed=seed, time_constants=(1.5, 10.0))
    rng = np.random.default_rng(20_000 + seed)
    for name_, value in layer.parameters().items():
        if name_.startswith("alpha"):
            value += rng.uniform(-0.3, 0.3, value.shape)
    shape = (num_layers * layer.num_directions, B, H)
    x = rng.standard_normal((T, B, I))
    h0 = rng.uniform(-1.0, 1.0, shape)
    dy = rng.standard_normal((T, B, layer.num_directions * H))
    dh_n = rng.standard_normal(shape)
    _, _, trace = layer.forward(x, h0)
    grads = layer.backward(trace, dy, dh_n, truncate=truncate)

    def loss() -> float:
        y, h_n, _ = layer.forward(x, h0)
        return float(np.sum(y * dy) + np.sum(h_n * dh_n))

    if truncate is not None:  # the carried states depend on the parameters but are held constant
        return _check_truncated(name, layer, x, h0, dy, dh_n, truncate, grads, started,
                                detail=f"Leaky layers={num_layers} bias={bias} truncate={truncate} "
                                       f"T={T} B={B} I={I} H={H} seed={seed}")
    tensors: dict[str, np.ndarray] = dict(layer.parameters())  # live arrays: forward reads them
    tensors["input"] = x
    tensors["h0"] = h0
    detail = (f"Leaky layers={num_layers} bidirectional={bidirectional} bias={bias} "
              f"T={T} B={B} I={I} H={H} seed={seed}")
    return finite_difference_check(name, loss, tensors, grads, detail=detail, started=started)


def _check_truncated(name, layer, x, h0, dy, dh_n, truncate, grads, started, detail) -> CheckResult:
    """Truncated BPTT: the loss is a sum over chunks, each chunk's initial state frozen at the value
    the untouched parameters give (computed once), so finite differences see no path between chunks."""
    T = x.shape[0]
    L = layer.num_layers
    _, _, full = layer.forward(x, h0)
    carried = {start: np.stack([np.array(full.get("h", k)[start - 1]) for k in range(L)])
               for start in range(truncate, T, truncate)}

    def loss() -> float:
        total = 0.0
        for start in range(0, T, truncate):
            stop = min(start + truncate, T)
            state = h0 if start == 0 else carried[start]
            y, h_n, _ = layer.forward(x[start:stop], state)
            total += float(np.sum(y * dy[start:stop]))
            if stop == T:
                total += float(np.sum(h_n * dh_n))
        return total

    tensors: dict[str, np.ndarray] = dict(layer.parameters())
    tensors["h0"] = h0
    tensors["input"] = x
    return finite_difference_check(name, loss, tensors, grads, detail=detail, started=started)


def _register(name: str, **options) -> None:
    register_call(name, check_leaky, "LeakyRNN", **options)


_register("leaky")
_register("leaky_deep_bidirectional", num_layers=2, bidirectional=True)
_register("leaky_no_bias", bias=False)
_register("leaky_truncated", num_layers=2, truncate=2, T=5)
