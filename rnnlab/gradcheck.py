"""Finite-difference gradient checks of rnnlab's layers, in float64.

Each check builds a tiny network, runs ``forward`` and ``backward`` once for the analytic
gradient of a random scalar loss

    L = sum(y * dy) + sum(h_n * dh_n) (+ sum(c_n * dc_n))

(``dy``, ``dh_n``, ``dc_n`` are random cotangents), then perturbs every element of every
parameter, of the input and of the initial state(s) by +-eps and compares the central difference
``(L(+eps) - L(-eps)) / 2 eps`` with the analytic gradient.

Error measure, per tensor: ``max|fd - analytic| / max(max|analytic|, max|fd|, 1e-12)``; a check
reports the worst tensor and passes when that error is below :data:`TOLERANCE` (1e-6).

Checks live in a registry, :data:`CHECKS` (name -> zero-argument callable returning a
:class:`CheckResult`), so later architectures add theirs with :func:`register`::

    @register("attention")
    def _attention() -> CheckResult:
        ...
        return finite_difference_check("attention", loss, tensors, analytic)

:func:`run_checks` runs some or all of them. Everything is seeded: results are deterministic.
This module is part of the core: it never imports rich, typer or textual.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "CHECKS",
    "TOLERANCE",
    "EPS",
    "CheckResult",
    "UnknownCheckError",
    "register",
    "register_call",
    "register_layer_check",
    "finite_difference_check",
    "check_layer",
    "tensor_error",
    "run_checks",
]

#: A check passes when its worst per-tensor relative error is below this.
TOLERANCE = 1e-6
#: Central-difference step. With float64 and O(1) values the truncation error (~eps^2) and the
#: rounding error (~1e-16 / eps) both stay near 1e-10, four orders below the tolerance.
EPS = 1e-6
#: ReLU checks pick a problem whose pre-activations all stay at least this far from the kink at 0,
#: so no +-eps perturbation crosses it (a perturbation moves a pre-activation by ~eps * O(1)).
RELU_MARGIN = 1e-3


@dataclass
class CheckResult:
    """Outcome of one gradient check."""

    name: str
    max_rel_err: float
    ok: bool
    worst: str  # the tensor with the largest error ("" if there were none)
    seconds: float
    errors: dict[str, float] = field(default_factory=dict)  # per tensor, in check order
    detail: str = ""  # e.g. the network checked and the seed used


class UnknownCheckError(ValueError):
    """Raised by :func:`run_checks` for a name that is not in :data:`CHECKS`."""


#: name -> zero-argument callable returning a CheckResult, in registration order.
CHECKS: dict[str, Callable[[], CheckResult]] = {}


def register(name: str) -> Callable[[Callable[[], CheckResult]], Callable[[], CheckResult]]:
    """Decorator adding a zero-argument check function to :data:`CHECKS` under ``name``."""

    def decorator(func: Callable[[], CheckResult]) -> Callable[[], CheckResult]:
        if name in CHECKS:
            raise ValueError(f"a gradient check named {name!r} is already registered")
        CHECKS[name] = func
        return func

    return decorator


# ---------------------------------------------------------------------------------------------
# the generic machinery
# ---------------------------------------------------------------------------------------------

def tensor_error(fd: np.ndarray, analytic: np.ndarray) -> float:
    """``max|fd - analytic| / max(max|analytic|, max|fd|, 1e-12)``."""
    fd = np.asarray(fd, dtype=np.float64)
    analytic = np.asarray(analytic, dtype=np.float64)
    if fd.shape != analytic.shape:
        raise ValueError(f"gradient shape {analytic.shape} does not match the tensor's {fd.shape}")
    if not np.isfinite(analytic).all():
        return float("inf")
    scale = max(float(np.abs(analytic).max(initial=0.0)), float(np.abs(fd).max(initial=0.0)), 1e-12)
    return float(np.abs(fd - analytic).max(initial=0.0)) / scale


def finite_difference_check(
    name: str,
    loss: Callable[[], float],
    tensors: Mapping[str, np.ndarray],
    analytic: Mapping[str, np.ndarray],
    *,
    eps: float = EPS,
    tolerance: float = TOLERANCE,
    detail: str = "",
    started: float | None = None,
) -> CheckResult:
    """Compare ``analytic`` gradients with central differences of ``loss``.

    ``tensors`` maps names to the live float64 arrays that ``loss()`` reads: each element is
    perturbed in place (and restored). ``analytic`` holds the gradient of ``loss`` for each name.
    A gradient missing from ``analytic`` counts as an infinite error.
    """
    started = time.perf_counter() if started is None else started
    errors: dict[str, float] = {}
    for key, array in tensors.items():
        if array.dtype != np.float64 or not array.flags.c_contiguous:
            raise ValueError(f"tensor {key!r} must be a C-contiguous float64 array")
        if key not in analytic:
            errors[key] = float("inf")
            continue
        flat = array.reshape(-1)  # a view: writes reach the array loss() reads
        fd = np.empty(flat.size, np.float64)
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            up = loss()
            flat[i] = original - eps
            down = loss()
            flat[i] = original
            fd[i] = (up - down) / (2.0 * eps)
        errors[key] = tensor_error(fd.reshape(array.shape), np.asarray(analytic[key]))
    worst = max(errors, key=lambda k: errors[k]) if errors else ""
    max_err = errors[worst] if errors else 0.0
    ok = bool(np.isfinite(max_err) and max_err < tolerance)
    return CheckResult(
        name=name,
        max_rel_err=float(max_err),
        ok=ok,
        worst=worst,
        seconds=time.perf_counter() - started,
        errors=errors,
        detail=detail,
    )


# ---------------------------------------------------------------------------------------------
# the recurrent layers
# ---------------------------------------------------------------------------------------------

def _make_layer(mode: str, input_size: int, hidden_size: int, *, num_layers: int, bidirectional: bool,
                nonlinearity: str, bias: bool, seed: int):
    from . import layers  # imported here so that importing this module stays cheap

    kwargs: dict[str, Any] = dict(num_layers=num_layers, bias=bias, bidirectional=bidirectional,
                                  dtype="float64", seed=seed)
    if mode == "RNN":
        return layers.RNN(input_size, hidden_size, nonlinearity=nonlinearity, **kwargs)
    return {"LSTM": layers.LSTM, "GRU": layers.GRU}[mode](input_size, hidden_size, **kwargs)


def _relu_min_margin(layer, x: np.ndarray, h0: np.ndarray, lengths: tuple[int, ...] | None) -> float:
    """:func:`_relu_min_preactivation` of the forward ``lengths`` runs: each sequence over its own
    steps (its reverse direction starts at its own end, other pre-activations than the whole one's)."""
    if lengths is None:
        return _relu_min_preactivation(layer, x, h0)
    return min(_relu_min_preactivation(layer, x[:n, b : b + 1], h0[:, b : b + 1]) for b, n in enumerate(lengths))


def _relu_min_preactivation(layer, x: np.ndarray, h0: np.ndarray) -> float:
    """Smallest |pre-activation| of a ReLU RNN over every layer, direction, step and unit."""
    from .layers.recurrent import layer_suffix

    _, _, trace = layer.forward(x, h0)
    params = layer.parameters()
    D = layer.num_directions
    smallest = np.inf
    layer_input = x
    for lyr in range(layer.num_layers):
        outputs = []
        for d in range(D):
            sfx = layer_suffix(lyr, d)
            h = np.asarray(trace.get("h", lyr, d))
            # previous state in natural time order: the reverse direction comes from t + 1
            if d == 0:
                h_prev = np.concatenate([h0[lyr * D + d][None], h[:-1]], axis=0)
            else:
                h_prev = np.concatenate([h[1:], h0[lyr * D + d][None]], axis=0)
            pre = layer_input @ params["weight_ih" + sfx].T + h_prev @ params["weight_hh" + sfx].T
            if layer.bias:
                pre = pre + params["bias_ih" + sfx] + params["bias_hh" + sfx]
            smallest = min(smallest, float(np.abs(pre).min()))
            outputs.append(h)
        layer_input = np.concatenate(outputs, axis=2)
    return smallest


def check_layer(
    name: str,
    mode: str,
    *,
    nonlinearity: str = "tanh",
    num_layers: int = 1,
    bidirectional: bool = False,
    bias: bool = True,
    T: int = 5,
    B: int = 2,
    I: int = 3,
    H: int = 4,
    seed: int = 0,
    eps: float = EPS,
    tolerance: float = TOLERANCE,
    lengths: tuple[int, ...] | None = None,
) -> CheckResult:
    """Gradient check of ``rnnlab.RNN/LSTM/GRU`` (``mode``) in float64 on a random tiny problem.

    Checks every element of every parameter, of the input and of the initial state(s); with
    ``lengths`` (B of them), sequences of their own lengths (the input past each has no gradient). For ReLU
    the seed is advanced deterministically until no pre-activation lies within
    :data:`RELU_MARGIN` of 0, so the finite differences never straddle the kink.

    The problems are tiny, so the kernels run them on the calling thread (they split work across
    threads only above a size threshold).
    """
    return _check_layer(name, mode, nonlinearity=nonlinearity, num_layers=num_layers,
                        bidirectional=bidirectional, bias=bias, T=T, B=B, I=I, H=H, seed=seed,
                        eps=eps, tolerance=tolerance, lengths=lengths)


def _check_layer(name: str, mode: str, *, nonlinearity: str, num_layers: int, bidirectional: bool,
                 bias: bool, T: int, B: int, I: int, H: int, seed: int, eps: float,
                 tolerance: float, lengths: tuple[int, ...] | None) -> CheckResult:
    started = time.perf_counter()
    D = 2 if bidirectional else 1
    lstm = mode == "LSTM"
    for attempt in range(100):
        s = seed + attempt
        layer = _make_layer(mode, I, H, num_layers=num_layers, bidirectional=bidirectional,
                            nonlinearity=nonlinearity, bias=bias, seed=s)
        rng = np.random.default_rng(10_000 + s)
        x = rng.standard_normal((T, B, I))
        h0 = rng.uniform(-1.0, 1.0, (num_layers * D, B, H))
        c0 = rng.uniform(-1.0, 1.0, (num_layers * D, B, H)) if lstm else None
        dy = rng.standard_normal((T, B, D * H))
        dh_n = rng.standard_normal((num_layers * D, B, H))
        dc_n = rng.standard_normal((num_layers * D, B, H)) if lstm else None
        if mode != "RNN" or nonlinearity != "relu" or _relu_min_margin(layer, x, h0, lengths) > RELU_MARGIN:
            break
    else:  # pragma: no cover - 100 unlucky seeds in a row
        raise RuntimeError(f"{name}: found no ReLU problem away from the kink")

    state = (h0, c0) if lstm else h0
    dstate = (dh_n, dc_n) if lstm else dh_n
    _, _, trace = layer.forward(x, state, lengths)
    grads = layer.backward(trace, dy, dstate)

    def loss() -> float:
        y, state_n, _ = layer.forward(x, state, lengths)
        if lstm:
            h_n, c_n = state_n
            return float(np.sum(y * dy) + np.sum(h_n * dh_n) + np.sum(c_n * dc_n))
        return float(np.sum(y * dy) + np.sum(state_n * dh_n))

    tensors: dict[str, np.ndarray] = dict(layer.parameters())  # live arrays: forward reads them
    tensors["input"] = x
    tensors["h0"] = h0
    if lstm:
        tensors["c0"] = c0
    shape = f"{mode}" + (f"({nonlinearity})" if mode == "RNN" else "")
    detail = (f"{shape} layers={num_layers} bidirectional={bidirectional} bias={bias} "
              f"T={T} B={B} I={I} H={H} seed={s}" + (f" lengths={list(lengths)}" if lengths else ""))
    return finite_difference_check(name, loss, tensors, grads, eps=eps, tolerance=tolerance,
                                   detail=detail, started=started)


def register_call(name: str, check: Callable[..., CheckResult], label: str, *args: Any, **options: Any) -> None:
    """Register ``check(name, *args, **options)`` under ``name``; ``label`` names the network in its docstring."""

    def run() -> CheckResult:
        return check(name, *args, **options)

    run.__name__ = f"check_{name}"
    run.__doc__ = f"Gradient check {name}: {label} {options}"
    register(name)(run)


def register_layer_check(name: str, mode: str, **options: Any) -> None:
    """Register ``check_layer(name, mode, **options)`` under ``name``."""
    register_call(name, check_layer, mode, mode, **options)


_CELLS = {
    "rnn_tanh": dict(mode="RNN", nonlinearity="tanh"),
    "rnn_relu": dict(mode="RNN", nonlinearity="relu"),
    "lstm": dict(mode="LSTM"),
    "gru": dict(mode="GRU"),
}
for _cell, _opts in _CELLS.items():
    register_layer_check(_cell, **_opts)
for _cell, _opts in _CELLS.items():
    # the second layer reads both directions of the first (input size 2H), so this covers the
    # stacking and the reverse direction's time flips as well
    register_layer_check(f"{_cell}_deep_bidirectional", num_layers=2, bidirectional=True, **_opts)
for _cell, _opts in _CELLS.items():
    register_layer_check(f"{_cell}_no_bias", bias=False, **_opts)
for _cell, _opts in _CELLS.items():
    # sequences of 3, 5 and 1 of 5 steps: the final states read early, the reverse direction
    # starting at each sequence's own end, and (LSTM) dc_n on sequences that end early
    register_layer_check(f"{_cell}_lengths", num_layers=2, bidirectional=True, B=3, lengths=(3, 5, 1), **_opts)
del _cell, _opts

#: Modules of later architectures that register their own checks (with :func:`register`) when
#: imported. Imported at the end of this module, so ``CHECKS`` always lists every check.
CHECK_MODULES: tuple[str, ...] = (
    "rnnlab.checks.tree",
    "rnnlab.checks.minimal",
    "rnnlab.checks.esn",
    "rnnlab.checks.seq2seq",
    "rnnlab.checks.selfattention",
    "rnnlab.checks.leaky",
    "rnnlab.checks.jordan",
)


# ---------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------

def run_checks(
    names: Iterable[str] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[CheckResult]:
    """Run the named checks (all of :data:`CHECKS` when ``names`` is None), in registry order.

    ``progress(done, total, name)`` is called before each check and once at the end
    (``name == ""``). ``should_stop()`` true before a check ends the run there: the results so far.
    Raises :class:`UnknownCheckError` naming any unknown check before running any; one name alone
    (``run_checks("lstm")``) is that check, not its letters.
    """
    if names is None:
        selected = list(CHECKS)
    else:
        wanted = list(dict.fromkeys([names] if isinstance(names, str) else names))
        unknown = [n for n in wanted if n not in CHECKS]
        if unknown:
            raise UnknownCheckError(
                f"unknown gradient check {', '.join(map(repr, unknown))}; known: {', '.join(CHECKS)}"
            )
        selected = [n for n in CHECKS if n in wanted]
    results = []
    for done, name in enumerate(selected):
        if should_stop():
            return results
        if progress is not None:
            progress(done, len(selected), name)
        results.append(CHECKS[name]())
    if progress is not None:
        progress(len(selected), len(selected), "")
    return results


def _import_check_modules() -> None:
    import importlib

    for module in CHECK_MODULES:
        importlib.import_module(module)


_import_check_modules()
