"""Keep OpenBLAS single-threaded while rnnlab's kernels run (they bring their own threads)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numba

_controller = None


def kernel_threads() -> int:
    """Threads the kernels split work across: numba's current setting (``numba.set_num_threads``)."""
    return numba.get_num_threads()


def _get_controller():
    global _controller
    if _controller is None:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the OpenBLAS that numba's np.dot calls)
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


@contextlib.contextmanager
def blas_single_threaded() -> Iterator[None]:
    """Limit every loaded BLAS to one thread inside the block, restoring the previous limits after."""
    with _get_controller().limit(limits=1, user_api="blas"):
        yield
