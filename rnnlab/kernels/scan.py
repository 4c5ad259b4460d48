"""Linear recurrences over time, h_t = a_t * h_{t-1} + b_t: step by step, or as a parallel scan.

When a cell's coefficients a_t and b_t depend on the input only (minGRU, minLSTM, LRU), its whole
sequence of states is the *prefix composition* of the affine maps f_t(h) = a_t * h + b_t, and
composition is associative:

    (a1, b1) o (a2, b2) = (a1 * a2,  a2 * b1 + b2)        "f1 first, then f2"

so the T prefixes can be computed in O(log T) depth instead of T dependent steps (Blelloch 1990;
Martin & Cundy 2018). Everything is elementwise: each of the N = B * H channels is its own
recurrence, so arrays are ``(T, N)`` (a ``(T, B, H)`` array reshaped), C-contiguous, one dtype:
float32, float64, complex64 or complex128 (LRU's diagonal lambda). The coefficients ``a`` are
``(T, N)``, or ``(1, N)`` for a time-invariant recurrence (the same a at every step).

Two directions, both in place on ``x``:

    forward  (:func:`scan_forward`)   x: b_t -> h_t,   h_t = a_t * h_{t-1} + b_t,      h_{-1} = h0
    reverse  (:func:`scan_reverse`)   x: d_t -> g_t,   g_t = d_t + a_{t+1} * g_{t+1},  a_T g_T = g_end

The reverse one is backpropagation through the forward one: with d_t = dL/dh_t from outside and
g_end = dL/dh_{T-1} from the final state, g_t is the total dL/dh_t and dL/dh0 = a_0 * g_0 (pass
conj(a) for complex coefficients: see :mod:`rnnlab.kernels.minimal`). Both run the same kernels
in *processing order*: step s writes row s going forward and row T-1-s going in reverse.

Methods (:data:`METHODS`), which agree to rounding:

``"sequential"``  the loop: step s reads step s-1. Depth T, work T. Channels split across threads
                  when the work is worth it (as every rnnlab kernel splits independent sequences).
``"scan"``        chunked scan: the steps are cut into C chunks; (1) every chunk scans itself as if
                  its carried-in state were zero, and multiplies up its coefficients, in parallel;
                  (2) the carries into chunks 1..C-1 follow serially, carry_{c+1} = last_c +
                  prod_c * carry_c (C steps); (3) every chunk c >= 1 adds prod(a over its steps up
                  to t) * carry_c, in parallel. Depth ~2T/C + C, work ~2T. One chunk per thread:
                  the practical parallel-in-time scan on a CPU.
``"blelloch"``    the work-efficient tree scan (Blelloch 1990) written out for reading: up-sweep
                  (pairwise totals, log2 T levels), down-sweep (exclusive prefixes, log2 T levels),
                  then h_t = a_t * prefix_t + b_t. Depth 2 log2 T, work ~2T plus the copies into
                  power-of-two work arrays. Each level's loop is over independent pairs (that is
                  what a GPU runs in parallel); here one thread runs the tree per block of channels.

On a CPU with few cores, splitting the channels is already a parallelisation with no extra
work: on P threads "sequential" does T*N/P channel-steps per thread, the chunked scan about
T*N/P + T*N(P-1)/P^2 (1.5x as many on two threads). The scan's depth pays off when threads
outnumber blocks of channels (few channels, many cores: a GPU). Below MIN_PARALLEL_WORK both run
the same single-thread loop. ``benchmarks/scan_vs_sequential.py`` measures them.
"""

from __future__ import annotations

import numpy as np

from ._jit import helper, jit
from ._pool import chunk_bounds, parallel_for

#: The evaluation strategies of :func:`scan_forward` / :func:`scan_reverse`.
METHODS = ("sequential", "scan", "blelloch")

#: Below this many channel-steps (T * N) everything runs on the calling thread: one thread runs
#: about 3 channel-steps per nanosecond (float32), and handing work to a thread costs tens of
#: microseconds.
MIN_PARALLEL_WORK = 1 << 18

#: The automatic chunk count of ``"scan"`` keeps chunks at least this many steps long.
MIN_CHUNK_STEPS = 64

#: A thread's block of channels is at least this wide (a few SIMD vectors).
MIN_CHANNEL_BLOCK = 16


# ---------------------------------------------------------------------------------------------
# compiled kernels (processing order: step s -> row s forward, row T-1-s in reverse)
# ---------------------------------------------------------------------------------------------

@helper
def _step_rows(s, T, reverse):
    """Rows of processing step s >= 1: (dst, src, k), meaning x[dst] += a[k] * x[src].

    Forward: h_s = a_s * h_{s-1} + b_s.  Reverse (t = T-1-s): g_t = d_t + a_{t+1} * g_{t+1}.
    """
    if reverse:
        t = T - 1 - s
        return t, t + 1, t + 1
    return s, s - 1, s


@jit
def scan_steps(a, x, reverse, s0, s1, n0, n1):
    """The plain recurrence over processing steps max(s0, 1)..s1-1, channels n0..n1-1, in place.

    Each step reads the previous step's row: x[dst] += a[k] * x[src] (see ``_step_rows``).
    """
    T = x.shape[0]
    nb = n1 - n0
    a_step = 1 if a.shape[0] > 1 else 0  # (1, N): the same coefficients at every step
    for s in range(max(s0, 1), s1):
        dst, src, k = _step_rows(s, T, reverse)
        # row slices indexed from 0: numba then drops its negative-index checks and the loop vectorises
        x_dst, x_src, a_k = x[dst, n0:n1], x[src, n0:n1], a[k * a_step, n0:n1]
        for j in range(nb):
            x_dst[j] += a_k[j] * x_src[j]


@jit
def scan_chunk_local(a, x, reverse, s0, s1, prod):
    """Phase 1 of the chunked scan for chunk s0..s1-1 (s0 >= 1), every channel, in place.

    Scans the chunk as if the state carried into step s0 were zero (row s0 keeps b), and sets
    prod = a(s0) * a(s0+1) * ... * a(s1-1), the factor the carried-in state picks up by the
    chunk's last step (a(s) is step s's coefficient).
    """
    T, N = x.shape
    a_step = 1 if a.shape[0] > 1 else 0
    k0 = _step_rows(s0, T, reverse)[2]
    a_first = a[k0 * a_step]
    for n in range(N):
        prod[n] = a_first[n]
    for s in range(s0 + 1, s1):
        dst, src, k = _step_rows(s, T, reverse)
        x_dst, x_src, a_k = x[dst], x[src], a[k * a_step]
        for n in range(N):
            x_dst[n] += a_k[n] * x_src[n]
        for n in range(N):
            prod[n] *= a_k[n]


@jit
def scan_chunk_fixup(a, x, reverse, s0, s1, carry, n0, n1):
    """Phase 3 of the chunked scan: add the carried-in state to chunk s0..s1-1, channels n0..n1-1.

    x[row(s)] += (a(s0) * ... * a(s)) * carry, the running product kept per channel.
    """
    T = x.shape[0]
    nb = n1 - n0
    a_step = 1 if a.shape[0] > 1 else 0
    factor = carry[n0:n1].copy()  # carry * a(s0) * ... * a(s), updated step by step
    for s in range(s0, s1):
        dst, _, k = _step_rows(s, T, reverse)
        x_dst, a_k = x[dst, n0:n1], a[k * a_step, n0:n1]
        for j in range(nb):
            factor[j] *= a_k[j]
        for j in range(nb):
            x_dst[j] += factor[j]


@jit
def scan_blelloch_block(a, x, reverse, n0, n1):
    """Blelloch's work-efficient scan of every step, channels n0..n1-1, in place.

    Element s is the affine map of step s, (A_s, B_s) = (a(s), x[row(s)]), in work arrays padded
    to a power of two with the identity (1, 0). Step 0's coefficient multiplies the zero state
    before the sequence (h0 is folded into its b by the caller), so its value does not matter.
    """
    T = x.shape[0]
    nb = n1 - n0
    a_step = 1 if a.shape[0] > 1 else 0
    size = 1
    while size < T:
        size *= 2
    A = np.empty((size, nb), a.dtype)
    B = np.empty((size, nb), x.dtype)
    for s in range(size):
        A_s, B_s = A[s], B[s]
        if s < T:
            k = _step_rows(s, T, reverse)[2] if s > 0 else 0
            row = T - 1 - s if reverse else s
            a_k, x_row = a[k * a_step, n0:n1], x[row, n0:n1]
            for n in range(nb):
                A_s[n] = a_k[n]
            for n in range(nb):
                B_s[n] = x_row[n]
        else:
            A_s[:] = 1
            B_s[:] = 0
    # up-sweep: node i (right) absorbs its left sibling j: (A_i, B_i) <- (A_j, B_j) o (A_i, B_i)
    d = 1
    while d < size:
        for i in range(2 * d - 1, size, 2 * d):
            A_i, B_i, A_j, B_j = A[i], B[i], A[i - d], B[i - d]
            for n in range(nb):
                B_i[n] = A_i[n] * B_j[n] + B_i[n]
            for n in range(nb):
                A_i[n] = A_j[n] * A_i[n]
        d *= 2
    # down-sweep: the root's prefix is the identity; a left child takes its parent's prefix, a
    # right child the parent's prefix followed by the left sibling's total
    A[size - 1] = 1
    B[size - 1] = 0
    d = size // 2
    while d >= 1:
        for i in range(2 * d - 1, size, 2 * d):
            A_i, B_i, A_j, B_j = A[i], B[i], A[i - d], B[i - d]
            for n in range(nb):
                a_left, b_left = A_j[n], B_j[n]
                A_j[n], B_j[n] = A_i[n], B_i[n]
                B_i[n] = a_left * B_i[n] + b_left
                A_i[n] = A_i[n] * a_left
        d //= 2
    # B[s] is now the state after steps 0..s-1, i.e. the carry into step s: h(s) = a(s) B[s] + b(s)
    for s in range(1, T):
        dst, _, k = _step_rows(s, T, reverse)
        x_dst, a_k, B_s = x[dst, n0:n1], a[k * a_step, n0:n1], B[s]
        for n in range(nb):
            x_dst[n] += a_k[n] * B_s[n]


# ---------------------------------------------------------------------------------------------
# orchestration
# ---------------------------------------------------------------------------------------------

def channel_blocks(T: int, N: int, n_threads: int) -> int:
    """How many blocks of channels to split a (T, N) recurrence into: one per thread, if worth it."""
    if T * N < MIN_PARALLEL_WORK:
        return 1
    return max(1, min(n_threads, N // MIN_CHANNEL_BLOCK))


def auto_chunks(T: int, N: int, n_threads: int) -> int:
    """The chunk count ``"scan"`` uses by default: one per thread when the sequence is long enough."""
    if T * N < MIN_PARALLEL_WORK:
        return 1
    return max(1, min(n_threads, T // MIN_CHUNK_STEPS))


def _check(a: np.ndarray, x: np.ndarray, state: np.ndarray, what: str) -> None:
    if x.ndim != 2 or a.ndim != 2 or a.shape[1] != x.shape[1] or a.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"scan: a must have shape (T, N) or (1, N) for x of shape (T, N), got a {a.shape}, "
                         f"x {x.shape}")
    if state.shape != (x.shape[1],):
        raise ValueError(f"scan: {what} must have shape ({x.shape[1]},), got {state.shape}")
    if not (a.dtype == x.dtype == state.dtype):
        raise ValueError(f"scan: a, x and {what} must share one dtype, got {a.dtype}, {x.dtype}, {state.dtype}")
    if not (a.flags.c_contiguous and x.flags.c_contiguous):
        raise ValueError("scan: a and x must be C-contiguous")


def _run(a: np.ndarray, x: np.ndarray, reverse: bool, method: str, n_threads: int, n_chunks: int | None) -> None:
    T, N = x.shape
    if method == "sequential":
        n_blocks = channel_blocks(T, N, n_threads)
        parallel_for(n_blocks, lambda c: scan_steps(a, x, reverse, 0, T, *chunk_bounds(c, n_blocks, N)))
    elif method == "scan":
        _chunked(a, x, reverse, n_threads, auto_chunks(T, N, n_threads) if n_chunks is None else n_chunks)
    elif method == "blelloch":
        n_blocks = channel_blocks(T, N, n_threads)
        parallel_for(n_blocks, lambda c: scan_blelloch_block(a, x, reverse, *chunk_bounds(c, n_blocks, N)))
    else:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")


def _chunked(a: np.ndarray, x: np.ndarray, reverse: bool, n_threads: int, n_chunks: int) -> None:
    """The three phases of the chunked scan (see the module docstring), chunks spread over threads."""
    T, N = x.shape
    n_chunks = max(1, min(int(n_chunks), T))
    if n_chunks == 1:
        scan_steps(a, x, reverse, 0, T, 0, N)
        return
    n_workers = max(1, min(n_threads, n_chunks)) if T * N >= MIN_PARALLEL_WORK else 1
    steps = [chunk_bounds(c, n_chunks, T) for c in range(n_chunks)]  # [s0, s1) per chunk
    prod = np.empty((n_chunks, N), x.dtype)

    def local(w: int) -> None:  # phase 1: chunk 0 is exact (its carry-in is the true one)
        for c in range(w, n_chunks, n_workers):
            s0, s1 = steps[c]
            if c == 0:
                scan_steps(a, x, reverse, 0, s1, 0, N)
            else:
                scan_chunk_local(a, x, reverse, s0, s1, prod[c])

    parallel_for(n_workers, local)

    def row(s: int) -> int:
        return T - 1 - s if reverse else s

    carry = np.empty((n_chunks, N), x.dtype)  # phase 2: the state carried into each chunk
    carry[1] = x[row(steps[0][1] - 1)]
    for c in range(1, n_chunks - 1):
        carry[c + 1] = x[row(steps[c][1] - 1)] + prod[c] * carry[c]

    n_blocks = n_workers if N >= n_workers * MIN_CHANNEL_BLOCK else 1

    def fixup(w: int) -> None:  # phase 3: every chunk after the first, split by channels
        n0, n1 = chunk_bounds(w, n_blocks, N)
        for c in range(1, n_chunks):
            scan_chunk_fixup(a, x, reverse, steps[c][0], steps[c][1], carry[c], n0, n1)

    parallel_for(n_blocks, fixup)


def scan_forward(a: np.ndarray, x: np.ndarray, h0: np.ndarray, method: str, n_threads: int,
                 n_chunks: int | None = None) -> None:
    """h_t = a_t * h_{t-1} + b_t for t = 0..T-1 with h_{-1} = h0, in place: x holds b on entry, h on exit.

    a (T, N) or (1, N); x (T, N); h0 (N,); one dtype. ``method`` is one of :data:`METHODS`;
    ``n_chunks`` (``"scan"`` only) fixes the number of time chunks (default :func:`auto_chunks`).
    """
    _check(a, x, h0, "h0")
    x[0] += a[0] * h0  # fold the initial state into b_0: every method then starts from zero
    _run(a, x, False, method, n_threads, n_chunks)


def scan_reverse(a: np.ndarray, x: np.ndarray, g_end: np.ndarray, method: str, n_threads: int,
                 n_chunks: int | None = None) -> None:
    """g_t = d_t + a_{t+1} * g_{t+1} for t = T-1..0, with a_T g_T = g_end, in place: x holds d, then g.

    The adjoint of :func:`scan_forward`: g_t = dL/dh_t when d_t is the gradient arriving at h_t
    from outside and g_end the gradient on h_{T-1} as the final state; dL/dh0 is then a_0 * g_0.
    Arguments as in :func:`scan_forward`.
    """
    _check(a, x, g_end, "g_end")
    x[-1] += g_end
    _run(a, x, True, method, n_threads, n_chunks)
