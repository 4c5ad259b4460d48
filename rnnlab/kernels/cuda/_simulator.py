"""A repair to numba-cuda's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), installed by
:func:`rnnlab.kernels.cuda._device.require_cuda` when the simulator runs the kernels.

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
"""

from __future__ import annotations

import sys
import threading

import numpy as np

_LOCK = threading.Lock()
_original_array = None  # FakeCUDAShared.array as numba-cuda defines it, once replaced


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


def repair_simulator() -> None:
    """Install :func:`shared_array` as the simulator's ``cuda.shared.array`` (idempotent). Left
    alone where numba-cuda's simulator no longer keeps its allocations the way this repairs."""
    global _original_array
    from numba.cuda.simulator import kernelapi

    shared = getattr(kernelapi, "FakeCUDAShared", None)
    if shared is None or shared.array is shared_array:
        return
    if "_allocations" not in shared.__init__.__code__.co_names:
        return
    _original_array = shared.array
    shared.array = shared_array
