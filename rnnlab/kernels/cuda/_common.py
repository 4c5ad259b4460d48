"""Building blocks shared by the GPU cells: activations, a tiled GEMM, column sums, launch shapes.

Importing this module imports ``numba.cuda`` and fails with
:class:`~rnnlab.kernels.cuda.CudaUnavailableError` when no GPU (nor the simulator) is usable.

Every kernel is built per dtype by a cached factory (:func:`for_dtype`): the dtype fixes the
activations (the CPU kernels' rational tanh in float32, libm-grade ``math.tanh``/``math.exp`` in
float64, so the GPU agrees with the CPU to float32/float64 rounding), the constants and the
shared-memory tiles, so no kernel ever mixes dtypes. Kernels compile on first launch (no eager
signatures) and are not cached on disk.

The GEMM is a plain shared-memory tiled product (numba-cuda has no cuBLAS): TILE x TILE threads
each own one output element; either operand may be read transposed, with loads kept coalesced;
long reductions (weight gradients summed over T*B rows) are split over the grid's z dimension
and combined with atomic adds so that small outputs still fill the GPU.
"""

from __future__ import annotations

import functools
import math
import warnings
from types import SimpleNamespace

import numba
import numpy as np

from .. import _math
from ._device import require_cuda, simulator_enabled

cuda = require_cuda()

# Small grids are deliberate here (a persistent kernel is ONE block; per-step grids of small
# shapes have few blocks): numba-cuda's warning for grids under 128 blocks would fire on most calls.
warnings.filterwarnings("ignore", message=r"Grid size \d+ will likely result in GPU under-utilization")

#: Side of the GEMM's square thread block and shared-memory tiles. The simulator runs each GPU
#: thread as a Python thread, so it gets 8 x 8 blocks (4x fewer threads, the same code; 4 x 4 was slower).
TILE = 8 if simulator_enabled() else 16
#: Aim for at least this many thread blocks in a GEMM before splitting its reduction.
GEMM_TARGET_BLOCKS = 128
#: Each split of a GEMM's reduction covers at least this many products; at most 64 splits
#: (the grid's z dimension).
GEMM_MIN_SPLIT_K = 8 * TILE
GEMM_MAX_SPLITS = 64
#: Threads per block of the per-step kernels, and the most a single-block persistent kernel uses.
STEP_BLOCK_THREADS = 256
PERSISTENT_THREADS = 1024

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# The CPU kernels' activations (rnnlab.kernels._math), compiled for the device from the very same
# Python functions, so GPU and CPU round alike: float32 tanh is the clamped rational approximation
# (Eigen's), float64 uses libm-grade math.tanh/math.exp.
_tanh_f32 = cuda.jit(device=True)(_math._tanh_f32)
_sigmoid_f64 = cuda.jit(device=True)(_math._sigmoid_f64)


@cuda.jit(device=True)
def _sigmoid_f32(x):
    return _math._HALF32 + _math._HALF32 * _tanh_f32(_math._HALF32 * x)


@cuda.jit(device=True)
def _tanh_f64(x):
    return math.tanh(x)


def check_dtype(**arrays) -> np.dtype:
    """The one float dtype shared by every array given; ValueError naming the first that differs."""
    dtype = None
    for name, array in arrays.items():
        if array is None:
            continue
        if dtype is None:
            dtype = np.dtype(array.dtype)
            if dtype not in DTYPES:
                raise ValueError(f"{name} has dtype {dtype}; the CUDA kernels take float32 or float64")
        elif np.dtype(array.dtype) != dtype:
            raise ValueError(f"{name} has dtype {array.dtype}, but the other arrays are {dtype}")
    return dtype


def to_device(array):
    """A C-contiguous device copy of a host (NumPy) array; anything else is taken as a device array."""
    if isinstance(array, np.ndarray):
        return cuda.to_device(np.ascontiguousarray(array))
    return array


def device_copy(array):
    """A new device array holding a copy of the device array ``array``."""
    out = cuda.device_array(array.shape, array.dtype)
    out.copy_to_device(array)
    return out


def launch_2d(cols: int, rows: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(grid, block) covering a rows x cols index space, x along cols (coalesced), y along rows."""
    bx = min(1 << max(cols - 1, 0).bit_length(), STEP_BLOCK_THREADS)
    by = max(1, min(rows, STEP_BLOCK_THREADS // bx))
    return ((cols + bx - 1) // bx, (rows + by - 1) // by), (bx, by)


def use_persistent(batch: int, hidden: int, persistent: bool | None) -> bool:
    """Whether to run the single-block persistent kernel: as asked, or (None) when every one of the
    B*H (sequence, unit) pairs gets a thread of its own (B*H <= 1024)."""
    return batch * hidden <= PERSISTENT_THREADS if persistent is None else bool(persistent)


def persistent_threads(units: int) -> int:
    """Threads of the single-block persistent kernels: one per (sequence, unit), at most 1024, whole warps."""
    return min(PERSISTENT_THREADS, max(32, (units + 31) // 32 * 32))


def for_dtype(dtype) -> SimpleNamespace:
    """The kernels and device functions shared by the cells, specialised for ``dtype``.

    Returns a namespace with ``tanh``, ``sigmoid`` (device functions), ``zero``, ``one`` (scalars
    of the dtype) and the kernels ``gemm_kernel``, ``colsum_kernel``, ``transpose_kernel``,
    ``fill_kernel``, ``recurrent_grad_kernel``.
    """
    dtype = np.dtype(dtype)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return _for_dtype(dtype.name)


@functools.cache
def _for_dtype(name: str) -> SimpleNamespace:
    dtype = np.dtype(name)
    nb_type = numba.from_dtype(dtype)
    zero = dtype.type(0.0)
    one = dtype.type(1.0)

    @cuda.jit
    def gemm_kernel(a, b, c, bias, trans_a, trans_b, add_bias, k_chunk):
        """c = op(a) @ op(b) (+ bias[n]) over the K-range of this grid z-slice.

        op(a) (M, K) is a, or a.T when trans_a (a stored (K, M)); op(b) (K, N) is b, or b.T when
        trans_b (b stored (N, K)). One z-slice stores; several add atomically into a zeroed c.
        """
        a_tile = cuda.shared.array((TILE, TILE), nb_type)  # a_tile[m, k]
        b_tile = cuda.shared.array((TILE, TILE), nb_type)  # b_tile[k, n]
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        m0 = cuda.blockIdx.y * TILE
        n0 = cuda.blockIdx.x * TILE
        M = c.shape[0]
        N = c.shape[1]
        K = a.shape[0] if trans_a else a.shape[1]
        k_begin = cuda.blockIdx.z * k_chunk
        k_end = min(K, k_begin + k_chunk)
        acc = zero
        for k0 in range(k_begin, k_end, TILE):
            # Threads adjacent in x read adjacent addresses, whichever way an operand is stored.
            if trans_a:
                k = k0 + ty
                m = m0 + tx
                a_tile[tx, ty] = a[k, m] if (k < k_end and m < M) else zero
            else:
                m = m0 + ty
                k = k0 + tx
                a_tile[ty, tx] = a[m, k] if (m < M and k < k_end) else zero
            if trans_b:
                n = n0 + ty
                k = k0 + tx
                b_tile[tx, ty] = b[n, k] if (n < N and k < k_end) else zero
            else:
                k = k0 + ty
                n = n0 + tx
                b_tile[ty, tx] = b[k, n] if (k < k_end and n < N) else zero
            cuda.syncthreads()
            for kk in range(TILE):
                acc += a_tile[ty, kk] * b_tile[kk, tx]
            cuda.syncthreads()
        m = m0 + ty
        n = n0 + tx
        if m < M and n < N:
            if cuda.gridDim.z > 1:
                cuda.atomic.add(c, (m, n), acc)
            elif add_bias:
                c[m, n] = acc + bias[n]
            else:
                c[m, n] = acc

    @cuda.jit
    def colsum_kernel(a, out):
        """out[n] = sum_r a[r, n]: the bias gradient, summed over every step and sequence."""
        n = cuda.grid(1)
        if n < a.shape[1]:
            acc = zero
            for r in range(a.shape[0]):
                acc += a[r, n]
            out[n] = acc

    @cuda.jit
    def transpose_kernel(a, out):
        """out[j, i] = a[i, j]."""
        j, i = cuda.grid(2)
        if i < a.shape[0] and j < a.shape[1]:
            out[j, i] = a[i, j]

    @cuda.jit
    def fill_kernel(a, value):
        """a[r, n] = value."""
        n, r = cuda.grid(2)
        if r < a.shape[0] and n < a.shape[1]:
            a[r, n] = value

    @cuda.jit
    def recurrent_grad_kernel(d, w, carry, add_carry, out):
        """out[b, k] = sum_m d[b, m] W[m, k] (+ carry[b, k]): dL/dh_0 from the first step's
        pre-activation gradients d (B, G*H) through W_hh (G*H, H), plus a direct path (GRU)."""
        k, b = cuda.grid(2)
        if b < out.shape[0] and k < out.shape[1]:
            acc = zero
            for m in range(d.shape[1]):
                acc += d[b, m] * w[m, k]
            out[b, k] = acc + carry[b, k] if add_carry else acc

    f32 = dtype == np.float32
    return SimpleNamespace(
        dtype=dtype, zero=zero, one=one,
        tanh=_tanh_f32 if f32 else _tanh_f64,
        sigmoid=_sigmoid_f32 if f32 else _sigmoid_f64,
        gemm_kernel=gemm_kernel, colsum_kernel=colsum_kernel, transpose_kernel=transpose_kernel,
        fill_kernel=fill_kernel, recurrent_grad_kernel=recurrent_grad_kernel,
    )


def gemm(a, b, *, trans_a: bool = False, trans_b: bool = False, bias=None, out=None):
    """op(a) @ op(b) (+ bias per column) on device arrays; returns ``out`` (M, N), allocated if None."""
    k = for_dtype(a.dtype)
    M, K = (a.shape[1], a.shape[0]) if trans_a else a.shape
    N, K_b = (b.shape[0], b.shape[1]) if trans_b else (b.shape[1], b.shape[0])
    if K != K_b:
        raise ValueError(f"gemm: inner dimensions differ ({K} and {K_b})")
    if out is None:
        out = cuda.device_array((M, N), a.dtype)
    blocks_m, blocks_n = (M + TILE - 1) // TILE, (N + TILE - 1) // TILE
    splits = 1
    if bias is None:
        splits = max(1, min(GEMM_TARGET_BLOCKS // (blocks_m * blocks_n), K // GEMM_MIN_SPLIT_K, GEMM_MAX_SPLITS))
    k_chunk = ((K + splits - 1) // splits + TILE - 1) // TILE * TILE
    splits = max(1, (K + k_chunk - 1) // k_chunk)
    if splits > 1:
        fill(out, 0.0)
    k.gemm_kernel[(blocks_n, blocks_m, splits), (TILE, TILE)](
        a, b, out, out[0] if bias is None else bias, trans_a, trans_b, bias is not None, k_chunk)  # out[0]: unread
    return out


def fill(a, value: float) -> None:
    """Set every element of the 2-D device array ``a`` to ``value``."""
    k = for_dtype(a.dtype)
    grid, block = launch_2d(a.shape[1], a.shape[0])
    k.fill_kernel[grid, block](a, a.dtype.type(value))


def column_sums(a):
    """The sums over rows of the 2-D device array ``a``: a new device array (N,)."""
    k = for_dtype(a.dtype)
    out = cuda.device_array(a.shape[1], a.dtype)
    threads = 128
    k.colsum_kernel[(a.shape[1] + threads - 1) // threads, threads](a, out)
    return out


def transpose(a):
    """A C-contiguous device copy of a.T for the 2-D device array ``a``."""
    k = for_dtype(a.dtype)
    out = cuda.device_array((a.shape[1], a.shape[0]), a.dtype)
    grid, block = launch_2d(a.shape[1], a.shape[0])
    k.transpose_kernel[grid, block](a, out)
    return out


def recurrent_grad(d, w, carry=None):
    """dL/dh_0 = d @ W (+ carry) for d (B, G*H), W (G*H, H): a new device array (B, H)."""
    k = for_dtype(d.dtype)
    B, H = d.shape[0], w.shape[1]
    out = cuda.device_array((B, H), d.dtype)
    grid, block = launch_2d(H, B)
    k.recurrent_grad_kernel[grid, block](d, w, out if carry is None else carry, carry is not None, out)
    return out


def rows(a):
    """View a C-contiguous device array (T, B, F) as (T*B, F)."""
    return a.reshape(a.shape[0] * a.shape[1], a.shape[2])
