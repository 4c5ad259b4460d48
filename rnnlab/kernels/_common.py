"""Helpers shared by the cell kernels: dtype-preserving constants and the per-step products."""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload, register_jitable

from ._jit import FASTMATH

_JIT_OPTIONS = dict(fastmath=FASTMATH, error_model="numpy")

#: Up to this batch size the per-step recurrent product runs as a hand loop: a BLAS call costs
#: about a microsecond of set-up, more than the whole product at small sizes.
SMALL_BATCH = 8


def scalar_like(value, like):
    """``value`` as a scalar of ``like``'s dtype (a Python float literal would promote float32 to float64)."""
    return like.dtype.type(value)


@overload(scalar_like, jit_options=_JIT_OPTIONS)
def _scalar_like_overload(value, like):
    target = like.dtype if isinstance(like, types.Array) else like
    return lambda value, like: target(value)


@register_jitable(**_JIT_OPTIONS)
def matmul_into(a, w, out):
    """out = a @ w for a (B, K), w (K, N) C-contiguous, out (B, N); hand loop at small batch, else BLAS."""
    B, K = a.shape
    N = w.shape[1]
    if B <= SMALL_BATCH:
        for b in range(B):
            row = out[b]
            row[:] = 0
            for k in range(K):
                s = a[b, k]
                wk = w[k]
                for n in range(N):
                    row[n] += s * wk[n]
    else:
        np.dot(a, w, out)
