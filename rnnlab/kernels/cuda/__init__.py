"""Optional GPU twins of the recurrent kernels, on numba-cuda (``pip install -e '.[cuda]'``).

``elman_forward``/``elman_backward``, ``lstm_*`` and ``gru_*`` take and return host (NumPy) arrays
with the CPU kernels' signatures and results (:mod:`rnnlab.kernels`), so a layer can dispatch on a
device flag; ``*_device`` variants work on numba device arrays and keep everything on the GPU.

Importing this package imports neither ``numba.cuda`` nor the kernel modules: the first access
to a kernel does, after :func:`require_cuda` has checked that a GPU (or numba's CUDA simulator,
``NUMBA_ENABLE_CUDASIM=1``) is usable, raising :class:`CudaUnavailableError` (a
:class:`rnnlab.errors.UserError`) that names why not otherwise. :func:`cuda_available` asks
without raising.

Device memory the kernels free is kept for their next call (:mod:`._memory`);
:func:`release_cached_memory` hands it back, e.g. before another library allocates. Large GEMMs
(the input projection, the gradients over all steps) run on cuBLAS where it is installed and
agrees with rnnlab's own GEMM (:mod:`._cublas`; ``RNNLAB_CUBLAS=0`` keeps rnnlab's).
"""

from __future__ import annotations

import importlib

from ._device import CudaUnavailableError, cuda_available, require_cuda

_KERNELS = {
    "elman": ("elman_forward", "elman_backward", "elman_forward_device", "elman_backward_device"),
    "lstm": ("lstm_forward", "lstm_backward", "lstm_forward_device", "lstm_backward_device"),
    "gru": ("gru_forward", "gru_backward", "gru_forward_device", "gru_backward_device"),
    "_memory": ("release_cached_memory",),
}
_MODULE_OF = {name: module for module, names in _KERNELS.items() for name in names}

__all__ = ["CudaUnavailableError", "cuda_available", "require_cuda", *_MODULE_OF]


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    require_cuda()
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
