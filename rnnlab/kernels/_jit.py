"""The one place that holds numba's flags for every kernel.

Kernels are compiled lazily (no eager signatures: those would compile at import) and cached to
disk. ``fastmath`` is a chosen subset: the full set implies no-NaN/no-Inf, which would let LLVM
fold away the non-finite checks that the layers rely on.
"""

from __future__ import annotations

import os

import numba

#: fastmath flags: reassociation and contraction let reductions and FMAs vectorise; no 'nnan'/'ninf'.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

#: Set RNNLAB_NO_CACHE=1 to compile in memory only (e.g. while profiling compile time).
CACHE = os.environ.get("RNNLAB_NO_CACHE", "") not in ("1", "true", "yes")

_OPTIONS = dict(
    nogil=True,  # a training thread runs while the TUI stays responsive
    cache=CACHE,
    fastmath=FASTMATH,
    error_model="numpy",  # needed for vectorised division
    boundscheck=False,
)


def jit(func=None, **overrides):
    """``numba.njit`` with rnnlab's flags; usable bare (``@jit``) or with overrides (``@jit(inline="always")``)."""
    options = {**_OPTIONS, **overrides}
    if func is None:
        return lambda f: numba.njit(**options)(f)
    return numba.njit(**options)(func)
