"""Keep OpenBLAS single-threaded while rnnlab's kernels run (they bring their own threads)."""

from __future__ import annotations

import importlib
import os
import threading

import numba
from numba.np.ufunc import parallel as _numba_parallel

_lock = threading.Lock()
_blas_libs: list | None = None  # threadpoolctl's controllers of every loaded BLAS
_active = 0  # kernel calls in flight (threads may overlap: the TUI and a trainer)
_saved: list[int] = []


def kernel_threads() -> int:
    """Threads the kernels split work across: numba's current setting (``numba.set_num_threads``)."""
    # numba.get_num_threads() launches numba's threading layer (GNU OpenMP here), which rnnlab's
    # kernels never use: a fork child of this process then died running a numba parallel region
    # of its own ("fork() called from a process already using GNU OpenMP"). Before the layer is
    # launched nobody can have called numba.set_num_threads: the count is NUMBA_NUM_THREADS.
    if not getattr(_numba_parallel, "_is_initialized", True):
        return numba.config.NUMBA_NUM_THREADS
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
        importlib.import_module("scipy.linalg.cython_blas")  # loads the OpenBLAS that numba's np.dot calls
        from threadpoolctl import ThreadpoolController

        _blas_libs = [_BlasThreads(c) for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
    return _blas_libs


class _BlasSingleThreaded:
    """The context manager :func:`blas_single_threaded` returns (a plain class: a generator-based
    ``contextlib`` manager costs about 2 us more per use, a third of a small layer call's glue)."""

    __slots__ = ()

    def __enter__(self) -> None:
        global _active, _saved
        with _lock:
            if _active == 0:
                libs = _controllers()
                _saved = [lib.get() for lib in libs]
                for lib, n in zip(libs, _saved):
                    if n != 1:
                        lib.set(1)
            _active += 1

    def __exit__(self, *exc_info) -> None:
        global _active
        with _lock:
            _active -= 1
            if _active == 0:
                for lib, n in zip(_controllers(), _saved):
                    if n != 1 and lib.get() == 1:  # a limit set meanwhile (the user's threadpoolctl) stays
                        lib.set(n)


_BLAS_SINGLE_THREADED = _BlasSingleThreaded()  # stateless: the reference count lives in the module


def blas_single_threaded() -> _BlasSingleThreaded:
    """Limit every loaded BLAS to one thread inside the ``with`` block, restoring the previous limits after.

    Reference-counted, so overlapping calls from several threads restore only when the last ends.
    A limit someone else sets meanwhile is left as they set it, unless they set 1: that one cannot
    be told from this block's own, and the limit before the block comes back. OpenBLAS's limit is
    the process's: other threads' numpy products run on one thread while a kernel call is in flight.
    Costs about a microsecond (threadpoolctl's general ``limit`` costs ~20 us, too much per call).
    """
    return _BLAS_SINGLE_THREADED


def _after_fork_in_child() -> None:
    """A child forked while another thread of its parent was inside a kernel call inherits the
    count of calls in flight and the BLAS held to one thread, with no call of its own left to
    restore it (every numpy product of that worker stayed single-threaded), and maybe the lock held."""
    global _lock, _active
    _lock = threading.Lock()
    if _active:
        for lib, n in zip(_blas_libs or [], _saved):
            if n != 1:
                lib.set(n)
    _active = 0


if hasattr(os, "register_at_fork"):  # (not on Windows)
    os.register_at_fork(after_in_child=_after_fork_in_child)
