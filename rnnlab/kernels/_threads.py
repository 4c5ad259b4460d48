"""Keep OpenBLAS single-threaded while rnnlab's kernels run (they bring their own threads)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numba

_lock = threading.Lock()
_blas_libs: list | None = None  # threadpoolctl's controllers of every loaded BLAS
_active = 0  # kernel calls in flight (threads may overlap: the TUI and a trainer)
_saved: list[int] = []


def kernel_threads() -> int:
    """Threads the kernels split work across: numba's current setting (``numba.set_num_threads``)."""
    return numba.get_num_threads()


def _controllers() -> list:
    global _blas_libs
    if _blas_libs is None:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the OpenBLAS that numba's np.dot calls)
        from threadpoolctl import ThreadpoolController

        _blas_libs = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
    return _blas_libs


@contextlib.contextmanager
def blas_single_threaded() -> Iterator[None]:
    """Limit every loaded BLAS to one thread inside the block, restoring the previous limits after.

    Reference-counted, so overlapping calls from several threads restore only when the last ends.
    Costs a few microseconds (threadpoolctl's general ``limit`` costs ~20 us, too much per call).
    """
    global _active, _saved
    with _lock:
        if _active == 0:
            libs = _controllers()
            _saved = [lib.get_num_threads() for lib in libs]
            for lib, n in zip(libs, _saved):
                if n != 1:
                    lib.set_num_threads(1)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                for lib, n in zip(_controllers(), _saved):
                    if n != 1:
                        lib.set_num_threads(n)
