"""Two repairs to numba-cuda's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), installed by
:func:`rnnlab.kernels.cuda._device.require_cuda` when the simulator runs the kernels.

**Shared arrays.**
The simulator runs each GPU thread of a block as a Python thread and gives a block's
``cuda.shared.array`` calls one NumPy array per source line, looked up in a dict and created on
the first call (numba-cuda 0.30.4, ``FakeCUDAShared.array``). The look-up and the creation are not
atomic: when the interpreter switches threads between them, two threads of one block each create
an array, and the block's "shared" memory is split in two. A kernel that stages its operands in
shared memory then computes with the other threads' stale halves, which is a wrong result that
changes from run to run. It showed in CI (a truncated BPTT 19% off, under load). With
``sys.setswitchinterval(1e-6)``, 5 of 40 simulated Elman backward passes were wrong before this
repair and 0 of 60 after.

:func:`shared_array` is the same allocation under a lock. Dynamic shared memory (shape 0) and
aligned requests, which have no such race, go to numba-cuda's own method.

**Speed.** The simulator's block manager waits for a block's threads to reach a barrier by polling
them in a loop that holds the interpreter lock until Python's switch interval (5 ms) takes it
away, so each barrier costs several intervals of nothing. :func:`launch` runs a simulated kernel
with a 0.2 ms interval and restores the caller's afterwards. In rnnlab's simulated cases this took
a partial-tile LSTM pass from 21.1 to 7.2 s and a GEMM test from 27.5 to 4.6 s (0.05 ms was slower
again: 12.7 s for the LSTM).
"""

from __future__ import annotations

import sys
import threading

import numpy as np

_LOCK = threading.Lock()
_original_array = None  # FakeCUDAShared.array as numba-cuda defines it, once replaced
_original_call = None  # FakeCUDAKernel.__call__, likewise
#: Python's switch interval while a simulated kernel runs (seconds).
LAUNCH_SWITCH_INTERVAL_S = 2e-4


def _new_array(shape, dtype) -> np.ndarray:
    """A block's new shared array (a seam for the tests, which slow it down to force the race)."""
    return np.empty(shape, dtype)


def shared_array(self, shape, dtype, alignment=None):
    """``cuda.shared.array`` in the simulator: one array per block and source line, as numba-cuda
    allocates it, but created by exactly one thread."""
    if shape == 0 or alignment is not None:
        return _original_array(self, shape, dtype, alignment)
    from numba.core import types
    from numba.np import numpy_support

    if isinstance(dtype, types.Type):
        dtype = numpy_support.as_dtype(dtype)
    frame = sys._getframe(1)
    caller = (frame.f_code.co_filename, frame.f_lineno)  # numba-cuda's key: the calling line
    with _LOCK:
        array = self._allocations.get(caller)
        if array is None:
            array = self._allocations[caller] = _new_array(shape, dtype)
    return array


def launch(self, *args):
    """A simulated kernel's launch at a short switch interval; unchanged, what the simulator runs
    as a device function's call (a device function, or any kernel called while one runs)."""
    from numba.cuda.simulator import kernel

    if self._device or kernel._kernel_context:
        return _original_call(self, *args)
    saved = sys.getswitchinterval()
    sys.setswitchinterval(min(saved, LAUNCH_SWITCH_INTERVAL_S))
    try:
        return _original_call(self, *args)
    finally:
        sys.setswitchinterval(saved)


def repair_simulator() -> None:
    """Install :func:`shared_array` as the simulator's ``cuda.shared.array`` and :func:`launch`
    as its kernels' call (idempotent). Each is left alone where numba-cuda's simulator no longer
    has what it repairs."""
    global _original_array, _original_call
    from numba.cuda.simulator import kernel, kernelapi

    shared = getattr(kernelapi, "FakeCUDAShared", None)
    if (shared is not None and shared.array is not shared_array
            and "_allocations" in shared.__init__.__code__.co_names):
        _original_array = shared.array
        shared.array = shared_array
    kernel_class = getattr(kernel, "FakeCUDAKernel", None)
    if (kernel_class is not None and kernel_class.__call__ is not launch and hasattr(kernel, "_kernel_context")
            and "_device" in kernel_class.__init__.__code__.co_names):
        _original_call = kernel_class.__call__
        kernel_class.__call__ = launch
