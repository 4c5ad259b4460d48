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


class _BlasThreads:
    """get/set the thread count of one BLAS library; raw ctypes calls for OpenBLAS (~0.3 us)."""

    def __init__(self, controller) -> None:
        self.get, self.set = controller.get_num_threads, controller.set_num_threads
        try:  # threadpoolctl's own methods cost a few microseconds per call; go direct when we can
            prefix, suffix = controller._find_affixes()
            self.get = getattr(controller.dynlib, f"{prefix}openblas_get_num_threads{suffix}")
            self.set = getattr(controller.dynlib, f"{prefix}openblas_set_num_threads{suffix}")
        except (AttributeError, TypeError, ValueError):
            pass


def _controllers() -> list[_BlasThreads]:
    global _blas_libs
    if _blas_libs is None:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the OpenBLAS that numba's np.dot calls)
        from threadpoolctl import ThreadpoolController

        _blas_libs = [_BlasThreads(c) for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
    return _blas_libs


@contextlib.contextmanager
def blas_single_threaded() -> Iterator[None]:
    """Limit every loaded BLAS to one thread inside the block, restoring the previous limits after.

    Reference-counted, so overlapping calls from several threads restore only when the last ends.
    Costs about a microsecond (threadpoolctl's general ``limit`` costs ~20 us, too much per call).
    """
    global _active, _saved
    with _lock:
        if _active == 0:
            libs = _controllers()
            _saved = [lib.get() for lib in libs]
            for lib, n in zip(libs, _saved):
                if n != 1:
                    lib.set(1)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                for lib, n in zip(_controllers(), _saved):
                    if n != 1:
                        lib.set(n)
