"""The small-batch recurrence with the recurrent weights resident in shared memory: the persistent
kernel of Diamos et al. 2016, "Persistent RNNs", in its shared-memory form.

The tiled kernels (:func:`~rnnlab.kernels.cuda._common.recurrent_product`) re-stage W_hh through
shared memory at every step and give each thread several sequences: at batch 1 a step
still streams all of W_hh from L2 and computes 15 idle rows of every 16. Here each block owns
``units`` hidden units for the whole pass and loads their slice of W_hh ONCE, into shared memory;
each step then only stages the small vector the step depends on (h_{t-1}, or the next step's
pre-activation gradients going backward) and multiplies, so a step costs one L2 round trip for
that vector, a short product out of shared memory, the cell math and a grid sync.

A block's resident matrix M (``rows`` x K, each row padded with zeros to a multiple of 4 words
plus 4, :func:`resident_row`: a thread reads 4 consecutive k of a row as one 16-byte vector, and
the 8 lanes of a quarter warp reading neighbouring rows at the same k meet 8 different bank
groups):

- forward: the rows g*H + j of W_hh for every gate g and owned unit j (rows = gates * units,
  K = H); out[(g*units + u), b] = sum_k W_hh[g*H + col0 + u, k] h_{t-1}[b, k];
- backward: the columns j of W_hh (rows = units, K = gates * H);
  out[u, b] = sum_m d_pre[s+1][b, m] W_hh[m, col0 + u], the recurrent term of dL/dh_s.

A block has RES_THREADS = RES_LANES x RES_KSPLIT threads: lane l of K-slice q adds up outputs
l, l + RES_LANES, ... over the q-th slice of K, into the partial sums p[q, output]; the thread
that owns cell (u, b) then sums the RES_KSPLIT partials of each of its gates, so the gate math
reads finished pre-activations without another pass. Output o is (row o // batch, sequence
o % batch); one cell a thread, so units x batch <= RES_THREADS.

Shared memory is one dynamic array (sized at launch, :func:`resident_words`): M, then the
staged vectors, then the partial sums, within the 48 KB a block may declare without opting in.
(Opting in to more, up to 227 KB on an H200, so that ONE block held every unit and block
barriers replaced grid syncs, gained nothing measurable on an H200 and made the GRU at B=1,
H=128 1.5x slower: one block then does the work of five. A grid sync over a few blocks costs
~1.3 us, the same as one block's; see benchmarks/README.md.)

:func:`resident_units` says how many units a block holds for a shape (0: even one does not fit)
and spreads the units evenly over the blocks. Every block of a launch must be resident at once
(one grid sync per step); where fewer blocks run than unit groups (tests, the simulator), a
block takes groups in turn and re-stages each one's weights when it switches.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from . import _common
from ._common import _SIM, StepTile, cuda, step_tiles
from ._launch import launch
from ._memory import step_view

#: Lanes x K-slices of a block (RES_LANES is a warp: lanes read neighbouring rows or a broadcast).
RES_LANES, RES_KSPLIT = (8, 4) if _SIM else (32, 8)
RES_THREADS = RES_LANES * RES_KSPLIT
#: Shared memory a block may use without opting in (the CUDA default).
RES_SHARED_BYTES = 48 * 1024
#: Loads each thread has in flight while staging a vector.
STAGE_LOADS = 4
#: The forms a recurrence can run as (``recurrence=`` of the cells' functions).
RECURRENCES = ("resident", "persistent", "per-step", "gemm")
#: Without ``recurrence=``, batches from GEMM_AUTO_MIN_BATCH sequences run "gemm" where cuBLAS is
#: usable and a step's product (B x H x G*H multiply-adds) is at least GEMM_AUTO_MIN_PRODUCTS, the
#: cell math a launch of its own. Measured on an H200 (benchmarks/README.md, 2026-11-30), f+b:
#: LSTM (256,100,512,1024), a product of 2^30, 31.5 ms against 46.7 tiled per step; GRU there
#: (3 x 2^28) 29.4-31.0 against 39.4-39.9 in three calls of four (40.1 in one); Elman there
#: (2^28) 27.2 against 16.6; LSTM (64,50,256,512) (2^26) 10.7 against 6.1 persistent. Two
#: launches and a cuBLAS call a step pay only for the largest.
GEMM_AUTO_MIN_BATCH = 64
GEMM_AUTO_MIN_PRODUCTS = 3 << 28
#: Without ``recurrence=``, batches up to RESIDENT_AUTO_MAX_BATCH run resident where the weights
#: fit and W_hh has at least RESIDENT_AUTO_ROWS_PER_SEQUENCE rows (gates x hidden) a sequence:
#: holding W_hh saves re-staging it every step, which pays against the tiles' product only where
#: the weights are large against the batch. Measured on an H200 (benchmarks/README.md, 2026-11-30,
#: the tiles at the quarter step tile small batches get), f+b resident against persistent: 64 rows
#: a sequence, LSTM (4,100,32,64) 1.26 against 1.45 ms; 32-48 level, LSTM (16,100,32,128) 2.17
#: against 2.22, GRU (4,100,32,64) 1.29 against 1.27; but 24, GRU (16,100,32,128) 2.45 against
#: 1.89, and 16, LSTM (16,100,32,64) 2.10 against 1.57, Elman (16,100,64,256) 1.75 against 1.43.
RESIDENT_AUTO_MAX_BATCH = 16
RESIDENT_AUTO_ROWS_PER_SEQUENCE = 32
#: Cap on the units a block holds (None: as many as fit); tests lower it to get several blocks.
RESIDENT_MAX_UNITS: int | None = None
#: At batch 1, a block holds only the units that give each lane one output where the weights take
#: several blocks anyway (:func:`resident_units`); False: as many as fit (benchmarks compare).
RESIDENT_ONE_OUTPUT_A_LANE = True


#: Launch bounds of the resident kernels: RES_THREADS threads, one block a multiprocessor (their
#: blocks are meant to spread over the multiprocessors anyway; ``ptxas -v`` for sm_90: 136-234
#: registers, no spills (benchmarks/cuda_sass.py); an earlier version capped at 128, two blocks a
#: multiprocessor, spilled).
RES_LAUNCH_BOUNDS = (RES_THREADS, 1)


def resident_kernel(func):
    """``cuda.jit`` for a resident kernel, with its launch bounds (not in the simulator)."""
    return cuda.jit(func) if _SIM else cuda.jit(launch_bounds=RES_LAUNCH_BOUNDS)(func)


def resident_row(k: int) -> int:
    """Words of a row of M or of a staged vector, K = ``k`` long: padded to a multiple of 4 plus 4
    (the kernels compute it as 4 * (ceil(k / 4) + 1), so that the compiler sees every row start
    16-byte aligned). Up to 6 words more than the K + 1 of before: at a few shapes on the edge one
    unit fewer fits a block, or none (LSTM float64 backward at H=88, B=16)."""
    return _common._aligned_row(k)


def resident_words(units: int, batch: int, rows_per_unit: int, k: int) -> int:
    """Words of shared memory a block holding ``units`` units needs: its rows_per_unit x units
    rows of M and the ``batch`` staged vectors, each K = ``k`` long padded to :func:`resident_row`,
    and the RES_KSPLIT partial sums of each of its rows x batch outputs."""
    rows = rows_per_unit * units
    return (rows + batch) * resident_row(k) + RES_KSPLIT * rows * batch


def resident_matrix(gates: int, hidden: int, backward: bool) -> tuple[int, int]:
    """(rows a unit, K) of the resident matrix M: going forward a unit's row of every gate of
    W_hh, K = hidden; going ``backward`` its column of W_hh, K = gates * hidden."""
    return (1, gates * hidden) if backward else (gates, hidden)


def resident_units(hidden: int, batch: int, rows_per_unit: int, k: int, dtype) -> int:
    """Units each block holds: as many as fit RES_SHARED_BYTES (:func:`resident_words`) with one
    cell a thread, spread evenly over the ceil(hidden / units) blocks. 0 when even one unit does
    not fit.

    At batch 1, where that takes more than one block anyway, a block holds no more units than
    give each lane of a K-slice one output (RES_LANES // rows_per_unit), as long as every block
    still has a multiprocessor: a lane's second output is a second round of the product, and
    more blocks cost nothing (a grid sync takes the same ~1.3 us over 1 to 32 blocks). Measured on
    an H200 (benchmarks/README.md, 2026-11-30; benchmarks/cuda_resident_units.py), f+b at
    (1,100,64,256): Elman 0.830 ms on 32 units a block against 0.909 on the 43 that fit (8, 16
    units: 0.839, 0.832); LSTM 1.175 on 8 units against 1.226 on 11."""
    words = RES_SHARED_BYTES // np.dtype(dtype).itemsize
    per_unit = resident_words(1, batch, rows_per_unit, k) - resident_words(0, batch, rows_per_unit, k)
    fit = min((words - resident_words(0, batch, rows_per_unit, k)) // per_unit, RES_THREADS // batch, hidden)
    if RESIDENT_MAX_UNITS is not None:
        fit = min(fit, RESIDENT_MAX_UNITS)
    if fit < 1:
        return 0
    one_round = max(1, RES_LANES // rows_per_unit)
    if (RESIDENT_ONE_OUTPUT_A_LANE and batch == 1 and one_round < fit < hidden
            and -(-hidden // one_round) <= _common.multiprocessors()):
        fit = one_round
    groups = -(-hidden // fit)
    return -(-hidden // groups)


@functools.cache
def resident_parts(dtype_name: str):
    """``(step, partial_sum)``: the device functions of a resident step for one dtype (see the
    module docstring). ``res_s`` is the block's dynamic shared array, laid out as
    :func:`resident_words` counts it: M (rows x :func:`resident_row` (K)), the vectors (batch x
    resident_row(K)), then the partial sums p[q, o] (RES_KSPLIT x rows*batch).

    ``step(group, held, w, by_columns, n, units, rows, K, v, batch, through, res_s) -> held``:
    the products of one step for unit group ``group`` (every thread of the block calls it; it
    synchronises the block). It is made of three parts:

    - ``stage_matrix``: M, unless the block already holds this group's (``held``), zero rows
      past unit n. ``by_columns`` False: row g*units + u of M is row g*n + col0 + u of w
      (gates*n, K). True: row u of M is column col0 + u of w (K, n);
    - ``stage_vectors``, if ``through``: row b of v (batch, K);
    - ``products``, if ``through``: p[q, r*batch + b] = the sum over K-slice q of M[r, k] v[b, k].

    ``partial_sum(res_s, rows, batch, K, o)``: output o summed over the K-slices.
    """
    dtype = np.dtype(dtype_name)
    zero = dtype.type(0.0)
    nb_type = numba.from_dtype(dtype)
    index = _common.shared_offset

    @cuda.jit(device=True)
    def quads(K):
        """Groups of 4 words in a padded row (:func:`resident_row`)."""
        return index((K + 3) // 4 + 1)

    @cuda.jit(device=True)
    def row_stride(K):
        """Words of a padded row, 4 * quads: visibly a multiple of 4, so every row start is 16-byte aligned."""
        return index(4) * quads(K)

    # No division by a runtime value per element (stage_matrix divides once per row): each 64-bit
    # one is a long instruction sequence, and with 26 of them inlined into one kernel ptxas took
    # 255 registers and spilled.
    # The staging loops run k up to the padded row's last multiple of 4 (k_end) and write zeros
    # past K: the products read whole groups of 4, and shared memory starts out as anything, NaN
    # included (0 * NaN is NaN).
    @cuda.jit(device=True)
    def stage_matrix(w, by_columns, n, col0, units, rows, K, res_s):
        stride = row_stride(K)
        k_end = stride - index(4)
        if by_columns:  # row u of M is column col0 + u of W (K, n): one row of W a thread
            for k in range(cuda.threadIdx.x, k_end, RES_THREADS):
                for r in range(units):
                    col = col0 + r
                    res_s[index(r) * stride + k] = w[k, col] if col < n and k < K else zero
        else:  # row g*units + u of M is row g*n + col0 + u of W (gates*n, K): threads read along it
            for r in range(rows):
                g = r // units
                col = col0 + r - g * units
                for k in range(cuda.threadIdx.x, k_end, RES_THREADS):
                    res_s[index(r) * stride + k] = w[g * n + col, k] if col < n and k < K else zero

    @cuda.jit(device=True)
    def stage_vectors(v, batch, K, res_s, offset):
        loads = cuda.local.array(STAGE_LOADS, nb_type)
        stride = row_stride(K)
        for k in range(cuda.threadIdx.x, stride - index(4), RES_THREADS):
            for b0 in range(0, batch, STAGE_LOADS):
                for i in range(STAGE_LOADS):  # every load in flight before any is stored
                    if b0 + i < batch:
                        loads[i] = v[b0 + i, k] if k < K else zero
                for i in range(STAGE_LOADS):
                    if b0 + i < batch:
                        res_s[offset + index(b0 + i) * stride + k] = loads[i]

    @cuda.jit(device=True)
    def products(res_s, rows, batch, K):
        # One output at a time, a plain dot product over this thread's K slice: the loop stays
        # small (an unrolled set of accumulators, hoisted out of a kernel's time loop, took the
        # kernels to 255 registers). The slice is whole groups of 4 k, each one vector load of
        # the row and one of the vector (offsets 4 * something: the compiler can prove them
        # 16-byte aligned); the rows' zero padding makes up the last group. Offsets are
        # unsigned: numba wraps negative signed indices around, ~5 instructions an access.
        lane = cuda.threadIdx.x % RES_LANES
        part = cuda.threadIdx.x // RES_LANES
        row_quads = quads(K)
        k_quads = row_quads - index(1)  # the groups holding k < K (and the padding's zeros)
        chunk = (k_quads + index(RES_KSPLIT - 1)) // index(RES_KSPLIT)
        q_begin = min(k_quads, index(part) * chunk)
        q_count = min(k_quads, q_begin + chunk) - q_begin
        outputs = rows * batch
        p_at = index(rows + batch) * row_stride(K) + index(part * outputs)
        r = lane // batch  # output o = r*batch + b, moved on RES_LANES at a time
        b = lane - r * batch
        r_step = RES_LANES // batch
        b_step = RES_LANES - r_step * batch
        for o in range(lane, outputs, RES_LANES):
            m_at = index(4) * (index(r) * row_quads + q_begin)
            v_at = index(4) * (index(rows + b) * row_quads + q_begin)
            acc = zero
            q = index(0)
            while q < q_count:  # not range(): see _common.recurrent_product
                for e in range(4):  # one vector load each of the row and the vector
                    acc += res_s[m_at + index(e)] * res_s[v_at + index(e)]
                m_at += index(4)
                v_at += index(4)
                q += index(1)
            res_s[p_at + o] = acc
            r += r_step
            b += b_step
            if b >= batch:
                r += 1
                b -= batch

    @cuda.jit(device=True)
    def partial_sum(res_s, rows, batch, K, o):
        outputs = index(rows * batch)
        p_at = index(rows + batch) * row_stride(K) + index(o)
        total = zero
        for q in range(RES_KSPLIT):
            total += res_s[p_at + index(q) * outputs]
        return total

    @cuda.jit(device=True)
    def step(group, held, w, by_columns, n, units, rows, K, v, batch, through, res_s):
        if group != held:
            stage_matrix(w, by_columns, n, group * units, units, rows, K, res_s)
        if through:
            stage_vectors(v, batch, K, res_s, index(rows) * row_stride(K))
        cuda.syncthreads()
        if through:
            products(res_s, rows, batch, K)
        cuda.syncthreads()
        return group

    return step, partial_sum


def previous_states(h0, hs):
    """``factor(t)`` of a forward "gemm" recurrence: h_{t-1}, the (B, H) state the step multiplies."""
    return lambda t: h0 if t == 0 else step_view(hs, t)


def next_gradients(d, truncate: int):
    """``factor(s)`` of a backward "gemm" recurrence: the (B, G*H) pre-activation gradients of
    step s+1 that the recurrent term of dL/dh_s multiplies, or None where nothing crosses into step
    s (the last step; a cut: :func:`_common.step_link` decides, as in the kernels)."""
    steps = d.shape[0]
    link = _common.step_link.py_func  # the kernels' own rule, run on the host

    def factor(s):
        last, cut = link(s, steps, truncate)
        return None if last or cut else step_view(d, s + 1)

    return factor


def run_recurrence(kernels, recurrence: str | None, *, tile: StepTile, batch: int, hidden: int, gates: int,
                   backward: bool, dtype, steps, args, by_gemm=None) -> None:
    """Run a recurrence over ``steps`` with ``args`` on one of ``kernels`` = (step, persistent,
    resident), the first two built on step tile ``tile``: ``step(t, *args)`` launched once per step
    t on every tile; ``persistent(*args)`` once, tiles re-staging W_hh every step and a grid sync
    between steps; ``resident(units, *args)`` once,
    each block holding its units' slice of W_hh (``gates`` rows a unit going forward, one column
    of K = gates * hidden going ``backward``) in shared memory.

    ``recurrence`` (one of RECURRENCES) picks one; a persistent or resident launch with fewer
    blocks resident at once than it has tiles or unit groups takes them in turn, and falls back
    to one launch per step where not even one block fits. None picks: resident for batches up to
    RESIDENT_AUTO_MAX_BATCH with RESIDENT_AUTO_ROWS_PER_SEQUENCE rows of W_hh a sequence, when
    every unit group gets a block (a tile computes 15 idle rows of 16 at batch 1 and streams W_hh
    from L2 every step; on an H200 resident took the LSTM f+b at B=1, H=64 from 2.9 to 1.0 ms);
    else persistent while every tile gets a block of its own (measured on an H200: a launch from
    Python costs ~75 us, a grid sync ~4 us); else per step (all tiles at once beat fewer blocks
    taking tiles in turn: 123 against 153 ms for the GRU at B=256, H=1024). ValueError for an
    unknown ``recurrence``, or "resident" where one unit's weights don't fit.

    "gemm" (``by_gemm`` = (from_product, factor, w_hh)): per step, the recurrent product of every
    sequence as one GEMM (:func:`_common.gemm`: cuBLAS where usable) into a (B, G*H) buffer going
    forward (factor(t) W_hh^T) or (B, H) going ``backward`` (factor(s) W_hh, none where factor(s)
    is None), then ``from_product(t, product, *args)`` launched on the step's tiles for the cell
    math. None picks it from GEMM_AUTO_MIN_BATCH sequences where cuBLAS is usable and a step's
    product is at least GEMM_AUTO_MIN_PRODUCTS multiply-adds; a smaller product is better fused
    into the tiles, one launch for every step (or per step, without the product's launch).
    """
    if recurrence is not None and recurrence not in RECURRENCES:
        raise ValueError(f"recurrence must be one of {', '.join(RECURRENCES)}, got {recurrence!r}")
    if recurrence == "gemm" or (recurrence is None and by_gemm is not None and batch >= GEMM_AUTO_MIN_BATCH
                                and batch * gates * hidden * hidden >= GEMM_AUTO_MIN_PRODUCTS
                                and _common.cublas_usable(dtype)):
        if by_gemm is None:
            raise ValueError("recurrence='gemm' needs the step's product (by_gemm)")
        _run_by_gemm(by_gemm, tile=tile, batch=batch, hidden=hidden, gates=gates, backward=backward, dtype=dtype,
                     steps=steps, args=args)
        return
    step_kernel, persistent_kernel, resident_kernel = kernels
    if recurrence == "resident" or (recurrence is None and batch <= RESIDENT_AUTO_MAX_BATCH
                                    and gates * hidden >= RESIDENT_AUTO_ROWS_PER_SEQUENCE * batch):
        rows_per_unit, k = resident_matrix(gates, hidden, backward)
        if _launch_resident(resident_kernel, recurrence == "resident", batch, hidden, rows_per_unit, k, dtype, args):
            return
    tiles = step_tiles(batch, hidden, tile)
    if recurrence in (None, "persistent"):
        blocks = _common.persistent_blocks(persistent_kernel, args, tiles, tile.block)
        if blocks > 0 and (recurrence == "persistent" or blocks == tiles):
            launch(persistent_kernel, blocks, tile.block, args)
            return
    for t in steps:
        launch(step_kernel, tiles, tile.block, (t, *args))


def _run_by_gemm(by_gemm, *, tile: StepTile, batch: int, hidden: int, gates: int, backward: bool, dtype, steps,
                 args) -> None:
    """The "gemm" recurrence of :func:`run_recurrence`."""
    from_product, factor, w_hh = by_gemm
    product = _common.device_empty((batch, hidden if backward else gates * hidden), dtype)
    tiles = step_tiles(batch, hidden, tile)
    for t in steps:
        a = factor(t)
        if a is not None:
            _common.gemm(a, w_hh, trans_b=not backward, out=product)
        launch(from_product, tiles, tile.block, (t, product, *args))


def _launch_resident(kernel, asked: bool, batch: int, hidden: int, rows_per_unit: int, k: int, dtype, args) -> bool:
    """Launch ``kernel(units, *args)`` as :func:`run_recurrence` describes; False where it does
    not run (not every unit group gets a block, unless ``asked``; or no block fits at all)."""
    units = resident_units(hidden, batch, rows_per_unit, k, dtype)
    if asked and not units:
        raise ValueError(f"recurrence='resident': one unit's {rows_per_unit} x {k} weights with {batch} "
                         f"sequences exceed a block ({RES_SHARED_BYTES} bytes of shared memory, one cell "
                         f"a thread of {RES_THREADS})")
    if not units:
        return False
    groups = -(-hidden // units)
    shared = resident_words(units, batch, rows_per_unit, k) * np.dtype(dtype).itemsize
    blocks = _common.persistent_blocks(kernel, (units, *args), groups, RES_THREADS, shared)
    if blocks == 0 or (blocks < groups and not asked):
        return False
    launch(kernel, blocks, RES_THREADS, (units, *args), shared)
    return True
