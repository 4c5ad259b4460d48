"""The kernels' float32 tanh: its error by range of |x| and its cost in a bare loop.

For each range: the largest error in ulps against the correctly rounded value, the share of values
that are not the correctly rounded one, and the largest relative error of 1 - tanh(x)^2 (a unit's
gradient, which backward computes from the recorded tanh) against float64's; torch's float32 tanh
beside it where torch is installed. Then the time per value of a loop over 262,144 values
(median of 300 calls), as the kernels compile it. With torch: the gradients of whole layers
whose units saturate (:func:`saturated_layers`).

    python benchmarks/tanh_f32.py
    PYTHONPATH=/path/to/older/checkout python benchmarks/tanh_f32.py   # the same for another version
"""

from __future__ import annotations

import time

import numba
import numpy as np

from rnnlab.kernels import _math
from rnnlab.kernels._jit import FASTMATH

RANGES = ((0, 0.6), (0.6, 1), (1, 2), (2, 4), (4, 7), (7, 7.9), (7.9, 9.5))


@numba.njit(nogil=True, fastmath=FASTMATH, error_model="numpy", boundscheck=False)
def _tanh_all(x, out):
    for i in range(x.size):
        out[i] = _math.tanh(x[i])


def errors(y: np.ndarray, x: np.ndarray) -> list[tuple[float, float, float]]:
    """Per range of |x|: (max ulps, share not correctly rounded, max relative error of 1 - y^2)."""
    exact = np.tanh(x.astype(np.float64))
    rounded = exact.astype(np.float32)
    ulps = np.abs(y - exact) / np.spacing(np.abs(rounded)).astype(np.float64)
    slope, exact_slope = 1 - y.astype(np.float64) ** 2, 1 - exact ** 2
    slope_error = np.abs(slope - exact_slope) / exact_slope
    rows = []
    for lo, hi in RANGES:
        m = (np.abs(x) >= lo) & (np.abs(x) < hi)
        rows.append((float(ulps[m].max()), float(np.mean(y[m] != rounded[m])), float(slope_error[m].max())))
    return rows


def main() -> None:
    x = np.linspace(-9.5, 9.5, 4_000_001).astype(np.float32)
    y = np.empty_like(x)
    _tanh_all(x, y)
    ours = errors(y, x)
    try:
        import torch
        theirs = errors(torch.tanh(torch.from_numpy(x)).numpy(), x)
    except ImportError:
        theirs = None
    print(f"rnnlab at {_math.__file__}")
    print("|x| range | max ulp | not correctly rounded | max rel err of 1 - tanh^2" + (" | torch's three" if theirs else ""))
    for k, (lo, hi) in enumerate(RANGES):
        line = f"[{lo}, {hi}) | {ours[k][0]:.2f} | {ours[k][1]:.3f} | {ours[k][2]:.3f}"
        if theirs:
            line += f" | {theirs[k][0]:.2f}, {theirs[k][1]:.3f}, {theirs[k][2]:.3f}"
        print(line)
    values = (np.random.default_rng(0).standard_normal(262_144) * 3).astype(np.float32)
    out = np.empty_like(values)
    times = []
    for _ in range(300):
        start = time.perf_counter()
        _tanh_all(values, out)
        times.append(time.perf_counter() - start)
    print(f"{np.median(times) / values.size * 1e9:.3f} ns a value")
    if theirs:
        saturated_layers()


def saturated_layers(seeds: int = 30) -> None:
    """RNN, GRU and LSTM (4, 16), weights scaled by 6 (units saturated), T = 20, B = 4: the largest
    relative error of a parameter's float32 gradient against float64 torch's, median and max over
    ``seeds``, rnnlab's beside torch float32's."""
    import torch

    import rnnlab

    def rel(a, b):
        return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))

    rng = np.random.default_rng(0)
    for cls in ("RNN", "GRU", "LSTM"):
        ours, theirs = [], []
        for seed in range(seeds):
            layer = getattr(rnnlab, cls)(4, 16, seed=seed)
            for value in layer.parameters().values():
                value *= 6
            x = rng.standard_normal((20, 4, 4)).astype(np.float32)
            y, _, trace = layer.forward(x)
            dy = rng.standard_normal(y.shape).astype(np.float32)
            grads = layer.backward(trace, dy)
            torch_grads = {}
            for dtype in (torch.float64, torch.float32):
                module = getattr(torch.nn, cls)(4, 16).to(dtype)
                module.load_state_dict({k: torch.from_numpy(v).to(dtype) for k, v in layer.state_dict().items()})
                out, _ = module(torch.from_numpy(x).to(dtype))
                (out * torch.from_numpy(dy).to(dtype)).sum().backward()
                torch_grads[dtype] = {n: p.grad.double().numpy() for n, p in module.named_parameters()}
            exact = torch_grads[torch.float64]
            ours.append(max(rel(grads[n], exact[n]) for n in exact))
            theirs.append(max(rel(torch_grads[torch.float32][n], exact[n]) for n in exact))
        print(f"{cls}, weights x6: gradient error median {np.median(ours):.2e} max {max(ours):.2e}; "
              f"torch float32 median {np.median(theirs):.2e} max {max(theirs):.2e}")


if __name__ == "__main__":
    main()
