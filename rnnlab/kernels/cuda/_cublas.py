"""cuBLAS for the GPU cells' large GEMMs, called through ctypes where the library is installed.

numba-cuda binds no cuBLAS, and rnnlab's own GEMM kernel (:func:`._common.gemm`) is a plain
shared-memory tiling. In a large forward+backward the GEMMs (input projection, dx, dW_ih, dW_hh)
are about half of the arithmetic, and cuBLAS is the library that does them best. Four entry
points of ``libcublas`` are used (create a handle, read its version, SGEMM, DGEMM), on the legacy
default stream, the one every rnnlab launch uses, so they are ordered with the kernels around them.

The library is looked up by ``cuda.pathfinder`` (installed with numba-cuda): the ``[cuda]``
extra's cuBLAS wheel, a CUDA toolkit, or the copy torch brings. Before its first use in a
process, for each dtype, cuBLAS multiplies small random operands in every transposition and must
agree with rnnlab's own GEMM. If the library is missing, fails, or disagrees, rnnlab's GEMM stays
and :func:`status` says why (a failure or a disagreement also warns once). ``RNNLAB_CUBLAS=0``
keeps rnnlab's GEMM, for benchmarks that compare the two. Never in the simulator, nor in
numba's per-thread default stream mode.

Row-major products through a column-major library: C = op(A) op(B), every array C-contiguous, is
C^T = op(B)^T op(A)^T in column-major terms, where a row-major (R, C) array reads as its own
transpose with leading dimension C. So cuBLAS gets B first, then A, each with its row length as
leading dimension (:func:`column_major_arguments`).
"""

from __future__ import annotations

import ctypes
import os
import threading
import warnings

import numpy as np

from ._device import _one_line, require_cuda, simulator_enabled
from ._memory import _per_thread_default_stream, to_device

cuda = require_cuda()
_SIM = simulator_enabled()

_OP = {False: 0, True: 1}  # cublasOperation_t: CUBLAS_OP_N, CUBLAS_OP_T
#: Largest size cuBLAS takes (its sizes and leading dimensions are C ints).
INT_MAX = 2**31 - 1
_CHECK_SHAPE = (67, 45, 33)  # M, N, K of the agreement check: no tile divides them
_TOLERANCE = {"float32": 1e-5, "float64": 1e-12}

_lock = threading.RLock()  # ready() holds it through the agreement check, which makes a handle
_library = None
_handles: dict = {}  # (CUDA context key, thread) -> (numba's context, kept alive; the cuBLAS handle)
_verdicts: dict[tuple, bool] = {}  # (context key, dtype name) -> whether cuBLAS runs its large GEMMs
_reasons: dict[str, str] = {}  # dtype name -> "cuBLAS <version>" or why not (the last context decided)


class CublasFailed(RuntimeError):
    """cuBLAS returned an error status."""


class CublasCannotStart(CublasFailed):
    """cublasCreate said CUBLAS_STATUS_NOT_INITIALIZED: no usable GPU for this cuBLAS (a driver
    older than the library, e.g. cuBLAS 13 on a CUDA 12 driver). Expected there: no warning."""


def column_major_arguments(a_shape, b_shape, trans_a: bool, trans_b: bool) -> tuple[int, ...]:
    """``(op_first, op_second, m, n, k, ld_first, ld_second, ldc)`` for cuBLAS's gemm computing the
    row-major ``op(a) @ op(b)`` of C-contiguous ``a`` and ``b`` into a C-contiguous (M, N) output:
    the first operand is b, the second a (see the module docstring)."""
    M, K = (a_shape[1], a_shape[0]) if trans_a else a_shape
    N = b_shape[0] if trans_b else b_shape[1]
    return _OP[trans_b], _OP[trans_a], N, M, K, b_shape[1], a_shape[1], N


def ready(dtype, own_gemm) -> bool:
    """Whether :func:`multiply` may take this ``dtype``'s large GEMMs; decided once per CUDA context
    and dtype, the first time it is asked (``own_gemm(a, b, trans_a=, trans_b=)``: rnnlab's GEMM,
    for the agreement check)."""
    name = np.dtype(dtype).name
    key = (_context_key(), name)
    verdict = _verdicts.get(key)
    if verdict is None:
        with _lock:
            verdict = _verdicts.get(key)
            if verdict is None:
                reason, unexpected = _why_not(name, own_gemm)
                verdict = reason is None
                _reasons[name] = reason or f"cuBLAS {_version()}"
                _verdicts[key] = verdict
                if unexpected:
                    warnings.warn(f"rnnlab: {reason}; the GPU cells use rnnlab's own GEMM", RuntimeWarning,
                                  stacklevel=2)
    return verdict


def status() -> dict[str, str]:
    """dtype name -> what runs its large GEMMs ("cuBLAS <version>") or why cuBLAS does not, for
    each dtype decided so far (benchmarks record it)."""
    return dict(_reasons)


def multiply(a, b, out, *, trans_a: bool, trans_b: bool, accumulate: bool) -> None:
    """out = op(a) @ op(b) (+ out when ``accumulate``) by cuBLAS on the default stream; every array
    a C-contiguous 2-D device array of one dtype, sizes at most INT_MAX. :class:`CublasFailed` on
    a cuBLAS error. Only after :func:`ready` said yes for the dtype."""
    op_first, op_second, m, n, k, ld_first, ld_second, ldc = column_major_arguments(a.shape, b.shape, trans_a, trans_b)
    double = np.dtype(out.dtype) == np.float64
    scalar = ctypes.c_double if double else ctypes.c_float
    function = _library.cublasDgemm_v2 if double else _library.cublasSgemm_v2
    alpha, beta = scalar(1.0), scalar(1.0 if accumulate else 0.0)
    status = function(_handle(), op_first, op_second, m, n, k, ctypes.byref(alpha), _pointer(b), ld_first,
                      _pointer(a), ld_second, ctypes.byref(beta), _pointer(out), ldc)
    if status:
        raise CublasFailed(f"cuBLAS gemm failed (cublasStatus_t {status})")


def _why_not(name: str, own_gemm) -> tuple[str | None, bool]:
    """(why cuBLAS must not run ``name``'s GEMMs, or None; whether that is unexpected enough to warn)."""
    if os.environ.get("RNNLAB_CUBLAS", "").strip() == "0":
        return "RNNLAB_CUBLAS=0", False
    if _SIM:
        return "the CUDA simulator runs no libraries", False
    if _per_thread_default_stream():
        return "numba's per-thread default stream mode (cuBLAS runs on the legacy default stream)", False
    global _library
    try:
        if _library is None:
            _library = _load_library()
    except Exception as exc:  # noqa: BLE001 - not installed, or not loadable: rnnlab's GEMM stays
        return f"cuBLAS not found ({_one_line(exc)[:200]})", False
    try:  # any other error (a CUDA fault, memory) is not cuBLAS's and reaches the caller
        disagreement = _disagreement(name, own_gemm)
    except CublasCannotStart as exc:
        return f"cuBLAS cannot start ({exc})", False
    except CublasFailed as exc:
        return f"cuBLAS failed ({exc})", True
    if disagreement:
        return f"cuBLAS disagreed with rnnlab's GEMM ({disagreement})", True
    return None, False


def _load_library():
    """libcublas with its four entry points typed; raises on any failure to find or load it."""
    from cuda.pathfinder import load_nvidia_dynamic_lib

    library = ctypes.CDLL(load_nvidia_dynamic_lib("cublas").abs_path)
    int_, void_p = ctypes.c_int, ctypes.c_void_p
    library.cublasCreate_v2.argtypes = [ctypes.POINTER(void_p)]
    library.cublasGetVersion_v2.argtypes = [void_p, ctypes.POINTER(int_)]
    for name, scalar in (("cublasSgemm_v2", ctypes.c_float), ("cublasDgemm_v2", ctypes.c_double)):
        scalar_p = ctypes.POINTER(scalar)
        getattr(library, name).argtypes = [void_p, int_, int_, int_, int_, int_, scalar_p, void_p, int_, void_p,
                                           int_, scalar_p, void_p, int_]
    for name in ("cublasCreate_v2", "cublasGetVersion_v2", "cublasSgemm_v2", "cublasDgemm_v2"):
        getattr(library, name).restype = int_
    return library


def _context_key() -> int:
    """The current CUDA context's driver handle as an int (numba-cuda's is a cuda-bindings
    CUcontext, which converts; older ones were ctypes pointers); 0 in the simulator."""
    if _SIM:
        return 0
    handle = cuda.current_context().handle
    value = getattr(handle, "value", None)
    return int(handle) if value is None else value


def _handle():
    """The cuBLAS handle of the current CUDA context and thread, created once: a handle belongs to
    one context, and must not be used by two threads at once (the lab trains in one thread while
    another may run a trace). The context is kept alive beside it, so its key is never another's."""
    key = (_context_key(), threading.get_ident())
    entry = _handles.get(key)
    if entry is None:
        with _lock:
            entry = _handles.get(key)
            if entry is None:
                handle = ctypes.c_void_p()
                status = _library.cublasCreate_v2(ctypes.byref(handle))
                if status == 1:  # CUBLAS_STATUS_NOT_INITIALIZED
                    raise CublasCannotStart("cublasCreate: CUBLAS_STATUS_NOT_INITIALIZED; a driver older "
                                            "than this cuBLAS?")
                if status:
                    raise CublasFailed(f"cublasCreate failed (cublasStatus_t {status})")
                entry = _handles[key] = (cuda.current_context(), handle)
    return entry[1]


def _version() -> str:
    version = ctypes.c_int()
    if _library is None or _library.cublasGetVersion_v2(_handle(), ctypes.byref(version)):
        return "(version unknown)"
    major, rest = divmod(version.value, 10000)  # CUBLAS_VERSION = major * 10000 + minor * 100 + patch
    return f"{major}.{rest // 100}.{rest % 100}"


def _pointer(array) -> int:
    return array.device_ctypes_pointer.value or 0


def _disagreement(name: str, own_gemm) -> str | None:
    """None if cuBLAS's products of small random operands, in every transposition and accumulating
    onto a start, equal rnnlab's GEMM's plus that start; else which one differed, by how much."""
    M, N, K = _CHECK_SHAPE
    rng = np.random.default_rng(0)
    for trans_a in (False, True):
        for trans_b in (False, True):
            a = to_device(rng.standard_normal((K, M) if trans_a else (M, K)).astype(name))
            b = to_device(rng.standard_normal((N, K) if trans_b else (K, N)).astype(name))
            start = rng.standard_normal((M, N)).astype(name)
            ours = own_gemm(a, b, trans_a=trans_a, trans_b=trans_b).copy_to_host().astype(np.float64) + start
            theirs = to_device(start)
            multiply(a, b, theirs, trans_a=trans_a, trans_b=trans_b, accumulate=True)
            error = float(np.abs(theirs.copy_to_host() - ours).max() / np.abs(ours).max())
            if not error <= _TOLERANCE[name]:
                return f"{name}, trans_a={trans_a}, trans_b={trans_b}: relative error {error:.1e}"
    return None
