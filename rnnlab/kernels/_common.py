"""Helpers shared by the cell kernels: dtype-preserving constants, products and work splitting.

Threading model: a kernel parallelises over independent sequences (batch chunks, each running the
whole time loop) and over rows of the big GEMMs, with numba's ``prange``. Every BLAS call inside
runs single-threaded: :func:`rnnlab.kernels.blas_single_threaded` wraps kernel calls so OpenBLAS's
own threads never nest inside numba's (on 2 cores that oversubscription cost 3-10x). The thread
count comes in as an argument (``n_threads``): calling ``numba.get_num_threads()`` inside a
kernel would make it uncachable.
"""

from __future__ import annotations

import numpy as np
from numba import prange, types
from numba.extending import overload

from ._jit import HELPER_OPTIONS, helper

#: Up to this many rows the per-step recurrent product runs as a hand loop: a BLAS call costs
#: about a microsecond of set-up, more than the whole product at small sizes.
SMALL_BATCH = 8

#: Below this many multiply-adds per step (over the batch) the sequences are not split across
#: threads: entering a parallel region costs a barrier, and a descheduled thread stalls it.
MIN_WORK_PER_CHUNK = 16384
#: Below this many multiply-adds a GEMM runs on one thread.
MIN_WORK_PER_GEMM = 1 << 20


def scalar_like(value, like):
    """``value`` as a scalar of ``like``'s dtype (a Python float literal would promote float32 to float64)."""
    return like.dtype.type(value)


@overload(scalar_like, jit_options=HELPER_OPTIONS)
def _scalar_like_overload(value, like):
    target = like.dtype if isinstance(like, types.Array) else like
    return lambda value, like: target(value)


@helper
def matmul_into(a, w, out):
    """out = a @ w for a (B, K), w (K, N) C-contiguous, out (B, N); hand loop at small batch, else BLAS."""
    B, K = a.shape
    N = w.shape[1]
    if B <= SMALL_BATCH:
        for b in range(B):
            row = out[b]
            row[:] = 0
            for k in range(K):
                s = a[b, k]
                wk = w[k]
                for n in range(N):
                    row[n] += s * wk[n]
    else:
        np.dot(a, w, out)


@helper
def batch_chunks(B, work_per_sequence, n_threads):
    """How many chunks to split B independent sequences into: one per thread, if worth it."""
    if work_per_sequence * B < MIN_WORK_PER_CHUNK:
        return 1
    return max(1, min(n_threads, B))


@helper
def row_chunks(N, work_per_row, n_threads):
    """How many row blocks to split a GEMM of N rows into: one per thread, if worth it."""
    if N * work_per_row < MIN_WORK_PER_GEMM:
        return 1
    return max(1, min(n_threads, N // 64))


@helper
def chunk_bounds(c, n_chunks, n):
    """[start, stop) of chunk c when n items are split into n_chunks near-equal chunks."""
    return c * n // n_chunks, (c + 1) * n // n_chunks


# Inlined at IR level so their prange joins the calling kernel's parallel region.
@helper(inline="always")
def matmul_rows(a, b, n_threads):
    """a @ b for a (N, K), b (K, M) (any BLAS layout), rows of a split across threads."""
    N = a.shape[0]
    out = np.empty((N, b.shape[1]), a.dtype)
    n_chunks = row_chunks(N, a.shape[1] * b.shape[1], n_threads)
    if n_chunks == 1:  # no parallel region: its barrier costs more than small products
        np.dot(a, b, out)
    else:
        for c in prange(n_chunks):
            r0, r1 = chunk_bounds(c, n_chunks, N)
            np.dot(a[r0:r1], b, out[r0:r1])
    return out


@helper(inline="always")
def matmul_tn_rows(a, x, n_threads):
    """a.T @ x for a (N, M), x (N, K): the sum over rows (time and batch) of outer products,
    split across threads by rows and reduced."""
    N = a.shape[0]
    n_chunks = row_chunks(N, a.shape[1] * x.shape[1], n_threads)
    partial = np.empty((n_chunks, a.shape[1], x.shape[1]), a.dtype)
    if n_chunks == 1:
        np.dot(a.T, x, partial[0])
    else:
        for c in prange(n_chunks):
            r0, r1 = chunk_bounds(c, n_chunks, N)
            np.dot(a[r0:r1].T, x[r0:r1], partial[c])
    return partial.sum(axis=0)
