"""Helpers shared by the cell kernels: dtype-preserving constants, products and work splitting.

Threading model: a kernel call splits its work across threads at two places, both on the
Python thread pool of :mod:`._pool` (the compiled parts release the GIL): independent sequences
(batch chunks, each running the whole time loop) and rows of the big GEMMs. Every BLAS call runs
single-threaded: :func:`rnnlab.kernels.blas_single_threaded` wraps kernel calls so OpenBLAS's own
threads never run beside rnnlab's (on 2 cores that oversubscription cost 3-10x).
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

from ._jit import HELPER_OPTIONS, helper, jit
from ._math import tanh
from ._pool import chunk_bounds, parallel_for

#: From this batch size up, LSTM and Elman steps project their own input (W_ih x_t accumulated
#: with W_hh h_{t-1}) and backpropagate to it (dL/dx_t) inside the time loop; a smaller batch
#: does each as one GEMM over all steps, since one row per step would re-read W_ih every step.
PER_STEP_INPUT_BATCH = 4

#: Below this many multiply-adds per step (over the batch) the sequences are not split across
#: threads: handing work to a thread costs tens of microseconds.
MIN_WORK_PER_CHUNK = 65536

#: Below this many multiply-adds a GEMM runs on one thread.
MIN_WORK_PER_GEMM = 1 << 21


def scalar_like(value, like):
    """``value`` as a scalar of ``like``'s dtype (a Python float literal would promote float32 to float64)."""
    return like.dtype.type(value)


@overload(scalar_like, jit_options=HELPER_OPTIONS)
def _scalar_like_overload(value, like):
    target = like.dtype if isinstance(like, types.Array) else like
    return lambda value, like: target(value)


@jit
def gemm(a, b, out):
    """out = a @ b (BLAS; any of a, b may be a transposed view)."""
    np.dot(a, b, out)


@helper
def column_sums(m):
    """m.sum(axis=0) of a 2-D array, summed row after row in order (as NumPy does for axis 0 of a
    C-contiguous array, so the results are identical bit for bit)."""
    out = m[0].copy()
    for r in range(1, m.shape[0]):
        mr = m[r]
        for j in range(m.shape[1]):
            out[j] += mr[j]
    return out


@helper
def sum_of(row, n):
    """row[0] + ... + row[n-1], in the order that LLVM's vectorised reduction gives for n.

    A reduction must not share its loop with a store. With fastmath's reassociation LLVM
    vectorises a reduction; if the loop also stores, it guards the vector loop with a run-time
    check on the addresses and runs the scalar, in-order loop instead when an input starts less
    than a vector block before the stored array (64 floats here), although they don't overlap.
    The sum then depends on where the allocator put the arrays: a self-attention training run
    resumed from a checkpoint differed from a straight one in the 9th digit of the gradient in
    ~8% of processes (layer_norm_backward). A loop that only reads has no such check.
    """
    total = scalar_like(0.0, row)
    for j in range(n):
        total += row[j]
    return total


@jit
def tanh_inplace(a):
    """a <- tanh(a) element by element, a 2-D array."""
    for r in range(a.shape[0]):
        row = a[r]
        for j in range(a.shape[1]):
            row[j] = tanh(row[j])


@jit
def add_row(m, row):
    """m[r, :] += row for every row r of the 2-D array m."""
    for r in range(m.shape[0]):
        mr = m[r]
        for j in range(m.shape[1]):
            mr[j] += row[j]


def batch_chunks(B: int, work_per_sequence: int, n_threads: int) -> int:
    """How many chunks to split B independent sequences into: one per thread, if worth it."""
    if work_per_sequence * B < MIN_WORK_PER_CHUNK:
        return 1
    return max(1, min(n_threads, B))


def _row_chunks(N: int, work_per_row: int, n_threads: int) -> int:
    """How many threads a GEMM over N rows of ``work_per_row`` multiply-adds each is split across."""
    if N * work_per_row < MIN_WORK_PER_GEMM:
        return 1
    return max(1, min(n_threads, N // 64))


def matmul_rows(a: np.ndarray, b: np.ndarray, n_threads: int) -> np.ndarray:
    """a @ b for a (N, K) C-contiguous, b (K, M) (any BLAS layout), rows of a split across threads."""
    N = a.shape[0]
    out = np.empty((N, b.shape[1]), a.dtype)
    n_chunks = _row_chunks(N, a.shape[1] * b.shape[1], n_threads)

    def work(c: int) -> None:
        r0, r1 = chunk_bounds(c, n_chunks, N)
        gemm(a[r0:r1], b, out[r0:r1])

    parallel_for(n_chunks, work)
    return out


def input_projection(x: np.ndarray, w: np.ndarray, bias: np.ndarray, n_threads: int) -> np.ndarray:
    """W x_t + bias for every step at once: x (T, B, I), w (G, I), bias (G,) -> (T, B, G), one GEMM
    split across threads by rows."""
    T, B, I = x.shape
    proj = matmul_rows(x.reshape(T * B, I), w.T, n_threads)
    add_row(proj, bias)
    return proj.reshape(T, B, w.shape[0])


def matmul_tn_rows(a: np.ndarray, x: np.ndarray, n_threads: int) -> np.ndarray:
    """a.T @ x for a (N, M), x (N, K): the sum over rows (time and batch) of outer products,
    split across threads by rows and reduced."""
    N = a.shape[0]
    n_chunks = _row_chunks(N, a.shape[1] * x.shape[1], n_threads)
    partial = np.empty((n_chunks, a.shape[1], x.shape[1]), a.dtype)

    def work(c: int) -> None:
        r0, r1 = chunk_bounds(c, n_chunks, N)
        gemm(a[r0:r1].T, x[r0:r1], partial[c])

    parallel_for(n_chunks, work)
    return partial[0] if n_chunks == 1 else partial.sum(axis=0)


def fits_one_thread(B: int, T: int, work_per_sequence: int, gemm_work_per_row: tuple[int, ...],
                    n_threads: int) -> bool:
    """True when a kernel call would run on one thread anyway: the batch in one chunk and every
    GEMM over the T*B rows (``gemm_work_per_row``: multiply-adds per row of each) in one piece.
    Then one compiled call can do the whole job (projections, time loop, weight gradients) with
    the very same operations in the same order, without Python between the parts."""
    if n_threads <= 1:
        return True
    if batch_chunks(B, work_per_sequence, n_threads) != 1:
        return False
    for work in gemm_work_per_row:
        if _row_chunks(T * B, work, n_threads) != 1:
            return False
    return True


def run_batch_chunks(B: int, work_per_sequence: int, n_threads: int, steps) -> None:
    """Call ``steps(b0, b1)`` on near-equal batch chunks, in parallel when the work is worth it."""
    n_chunks = batch_chunks(B, work_per_sequence, n_threads)
    parallel_for(n_chunks, lambda c: steps(*chunk_bounds(c, n_chunks, B)))
