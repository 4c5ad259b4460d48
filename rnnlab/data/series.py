"""Deterministic generators of numeric time series: sine waves and the Mackey-Glass delay system."""

from __future__ import annotations

import numpy as np

#: reservoirpy's default dataset seed (``reservoirpy.datasets.get_seed()``); ``seed=None`` uses it so
#: ``mackey_glass(n)`` here equals ``reservoirpy.datasets.mackey_glass(n)`` there.
RESERVOIRPY_DEFAULT_SEED = 5555


def sine_waves(length: int, period: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """``sin(2 pi t / period + phase)`` for ``t = 0 .. length-1``, one column per (period, phase): ``(length, B)``."""
    t = np.arange(length, dtype=np.float64)[:, None]
    return np.sin(2.0 * np.pi * t / np.asarray(period, dtype=np.float64) + np.asarray(phase, dtype=np.float64))


def _mg_rate(xt: float, xtau: float, a: float, b: float, n: float) -> float:
    """Right-hand side of the Mackey-Glass equation: dx/dt = a x(t-tau) / (1 + x(t-tau)^n) - b x(t)."""
    return -b * xt + a * xtau / (1.0 + xtau**n)


def mackey_glass(n_steps: int, tau: int = 17, a: float = 0.2, b: float = 0.1, n: int = 10,
                 x0: float = 1.2, h: float = 1.0, seed: int | np.random.Generator | None = None,
                 history: np.ndarray | None = None) -> np.ndarray:
    """Mackey-Glass time series ``(n_steps,)`` float64, the same numbers as reservoirpy's.

    Integrates ``dx/dt = a x(t-tau) / (1 + x(t-tau)^n) - b x(t)`` with one classical RK4 step of
    size ``h`` per output sample, holding the delayed value ``x(t-tau)`` fixed within the step and
    reading it from a history buffer of ``floor(tau / h)`` past samples. This follows
    ``reservoirpy.datasets.mackey_glass`` as of reservoirpy 0.3 (``reservoirpy/datasets/_chaos.py``:
    ``_mg_eq``, ``_mg_rk4`` and the history deque) step for step, and matches reservoirpy 0.3.12
    bit for bit (the tests pin its numbers):

    - the initial history is ``x0 + 0.2 * (rng.random(L) - 0.5)`` with ``L = floor(tau / h)`` and
      ``rng = numpy.random.default_rng(seed)``; ``seed=None`` means reservoirpy's default dataset
      seed 5555, so ``mackey_glass(2000)`` equals ``reservoirpy.datasets.mackey_glass(2000)[:, 0]``;
    - the series starts at ``x0`` (sample 0 is ``x0`` itself), and ``tau = 0`` uses ``x(t-tau) = 0``;
    - ``history`` (optional, at least ``L`` values) replaces the random history; its last ``L`` are used.

    reservoirpy returns shape ``(n_steps, 1)``; this returns ``(n_steps,)``. Note: reservoirpy 0.4.1
    rewrote ``_mg_rk4`` in a rearranged form that is not the classical RK4 step (its first step from
    ``x0 = 1.2`` with ``tau = 0`` gives 1.08942 where RK4 and the exact solution give 1.0858), so its
    series differ from 0.3's; published results were made with the classical step followed here.
    """
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative integer, got {n_steps!r}")
    if tau < 0 or h <= 0:
        raise ValueError(f"need tau >= 0 and h > 0, got tau={tau}, h={h}")
    lag = int(np.floor(tau / h))
    if history is None:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(
            RESERVOIRPY_DEFAULT_SEED if seed is None else seed)
        past = x0 * np.ones(lag) + 0.2 * (rng.random(lag) - 0.5)
    else:
        past = np.asarray(history, dtype=np.float64).ravel()
        if len(past) < lag:
            raise ValueError(f"history has {len(past)} values, needs at least floor(tau/h) = {lag}")
        past = past[len(past) - lag:]

    # Plain Python floats in the loop: the same IEEE arithmetic as reservoirpy's numpy scalars, ~10x faster.
    x = [float(v) for v in past] + [0.0] * n_steps
    a, b, n, h = float(a), float(b), float(n), float(h)
    xt = float(x0)
    for i in range(lag, lag + n_steps):
        x[i] = xt
        xtau = x[i - lag] if tau > 0 else 0.0
        k1 = h * _mg_rate(xt, xtau, a, b, n)
        k2 = h * _mg_rate(xt + 0.5 * k1, xtau, a, b, n)
        k3 = h * _mg_rate(xt + 0.5 * k2, xtau, a, b, n)
        k4 = h * _mg_rate(xt + k3, xtau, a, b, n)
        xt = xt + k1 / 6 + k2 / 3 + k3 / 3 + k4 / 6
    return np.array(x[lag:], dtype=np.float64)
