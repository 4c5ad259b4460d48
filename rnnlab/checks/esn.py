"""Check of the echo state network's readout: the closed-form ridge solution is a stationary point.

An ESN's reservoir is never trained and its readout is solved in closed form, so there is no
backward pass to check by finite differences. What can be checked is that :meth:`fit` found the
minimum of the ridge objective over the readout's parameters,

    J(W_out, b_out) = ||Y - (X W_out^T + b_out)||^2 + ridge ||W_out||^2,

    dJ/dW_out = -2 R^T X + 2 ridge W_out,   dJ/db_out = -2 sum_rows R,   R = Y - (X W_out^T + b_out),

(X: the features the readout reads, rows over time and sequences after the warm-up; J is convex,
so a zero gradient means the global minimum). The check ``esn_readout`` reports, per tensor:

- ``readout.weight``, ``readout.bias``: the gradient at the fitted readout, relative to the size
  of the terms that cancel in it (max|g| / max(2|Y|^T|X| + 2|P|^T|X| + 2 ridge|W_out|) for W_out,
  P = X W_out^T + b_out the predictions; likewise for b_out). Rounding leaves ~1e-14.
- ``fd:readout.weight``, ``fd:readout.bias``: the gradient formula itself, against central finite
  differences of J at a point away from the minimum (J is quadratic: the differences are exact
  up to rounding), so the stationarity figures do not rest on a hand-derived formula alone.

It passes when every figure is below :data:`rnnlab.gradcheck.TOLERANCE`.
"""

from __future__ import annotations

import time

import numpy as np

from ..gradcheck import TOLERANCE, CheckResult, finite_difference_check, register
from ..reference import esn as reference

#: The problem: small enough to take milliseconds, with several sequences, a warm-up, a readout
#: that also reads the input and a ridge penalty large enough that its term matters.
I, N, O, T, B, WARMUP, RIDGE, SEED = 2, 8, 2, 30, 2, 5, 1e-2, 0


def _relative_gradient(grad: np.ndarray, scale: np.ndarray) -> float:
    """max|grad| over the largest magnitude of the terms summed into it (0 if those are all 0)."""
    return float(np.abs(grad).max()) / max(float(np.abs(scale).max()), 1e-300)


@register("esn_readout")
def check_esn_readout() -> CheckResult:
    """The fitted ESN readout is a stationary point of the ridge objective (see the module docstring)."""
    from ..layers.esn import EchoStateNetwork  # here, so importing the registry stays cheap

    started = time.perf_counter()
    rng = np.random.default_rng(10_000 + SEED)
    u = rng.standard_normal((T, B, I))
    y = rng.standard_normal((T, B, O))
    esn = EchoStateNetwork(I, N, output_size=O, ridge=RIDGE, readout_input=True, connectivity=0.5,
                           input_connectivity=0.5, dtype="float64", seed=SEED)
    esn.fit(u, y, warmup=WARMUP)
    state = esn.state_dict()
    w_out, b_out = state["readout.weight"], state["readout.bias"]

    states, _ = esn.run(u)
    z = reference.features(states[WARMUP:], u[WARMUP:])
    targets = y[WARMUP:]
    X = z.reshape(-1, z.shape[-1])
    Y = targets.reshape(-1, O)
    P = X @ w_out.T + b_out

    errors: dict[str, float] = {}
    d_w, d_b = reference.ridge_gradient(z, targets, w_out, b_out, RIDGE)
    errors["readout.weight"] = _relative_gradient(
        d_w, 2.0 * np.abs(Y).T @ np.abs(X) + 2.0 * np.abs(P).T @ np.abs(X) + 2.0 * RIDGE * np.abs(w_out))
    errors["readout.bias"] = _relative_gradient(d_b, 2.0 * np.abs(Y).sum(axis=0) + 2.0 * np.abs(P).sum(axis=0))

    # the formula, by finite differences at a point away from the minimum
    w_away = np.ascontiguousarray(w_out + 0.1 * rng.standard_normal(w_out.shape))
    b_away = np.ascontiguousarray(b_out + 0.1 * rng.standard_normal(b_out.shape))
    analytic = dict(zip(("fd:readout.weight", "fd:readout.bias"),
                        reference.ridge_gradient(z, targets, w_away, b_away, RIDGE)))
    fd = finite_difference_check(
        "esn_readout", lambda: reference.ridge_objective(z, targets, w_away, b_away, RIDGE),
        {"fd:readout.weight": w_away, "fd:readout.bias": b_away}, analytic)
    errors.update(fd.errors)

    worst = max(errors, key=lambda k: errors[k])
    max_err = errors[worst]
    return CheckResult(
        name="esn_readout",
        max_rel_err=max_err,
        ok=bool(np.isfinite(max_err) and max_err < TOLERANCE),
        worst=worst,
        seconds=time.perf_counter() - started,
        errors=errors,
        detail=(f"ESN ridge readout: I={I} N={N} O={O} T={T} B={B} warmup={WARMUP} ridge={RIDGE:g} "
                f"readout_input=True seed={SEED}"),
    )


__all__ = ["check_esn_readout"]
