"""Numba kernels of the recurrent cells: arrays in, arrays out, one module per cell family.

Each module has ``*_forward`` (records every step's state and gates) and ``*_backward`` (full or
truncated BPTT). Kernels compile lazily on first call and are cached on disk. Every kernel takes
``n_threads`` last (see :func:`kernel_threads`); call them inside :func:`blas_single_threaded`.
"""

from ._jit import cache_dir, compile_notices
from ._threads import blas_single_threaded, kernel_threads
from .elman import elman_backward, elman_forward
from .gru import gru_backward, gru_forward
from .lstm import lstm_backward, lstm_forward

__all__ = [
    "blas_single_threaded",
    "kernel_threads",
    "cache_dir",
    "compile_notices",
    "elman_forward",
    "elman_backward",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
]
