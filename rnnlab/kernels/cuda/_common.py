"""Building blocks shared by the GPU cells: activations, a tiled GEMM, the recurrent step's tile
product, column sums, launch shapes.

Importing this module imports ``numba.cuda`` and fails with
:class:`~rnnlab.kernels.cuda.CudaUnavailableError` when no GPU (nor the simulator) is usable.

Every kernel is built per dtype by a cached factory (:func:`for_dtype`): the dtype fixes the
activations (the CPU kernels' rational tanh in float32, libm-grade ``math.tanh``/``math.exp`` in
float64, so the GPU agrees with the CPU to float32/float64 rounding), the constants and the
shared-memory tiles, so no kernel ever mixes dtypes. Kernels compile on first launch (no eager
signatures) and are not cached on disk.

Three things decide the speed here, the first two measured on an H200 (benchmarks/README.md):

- a kernel launch from Python costs tens of microseconds in numba-cuda, far more than a small
  step's arithmetic, so the recurrence runs as ONE grid-synchronised persistent launch per pass
  (:func:`persistent_blocks`), not one launch per step, and launches go through plans that
  keep what numba-cuda would redo each time (:mod:`._launch`);
- the products must reuse what they load: the GEMM gives each thread a GEMM_RM x GEMM_RN block
  of outputs from shared-memory tiles, and the recurrent step (:func:`recurrent_product`) gives
  each thread several sequences x every gate of one unit, so a weight loaded once serves several
  sequences and the gate math runs on the accumulators right away (a tile by shape,
  :func:`step_tile`: a quarter of one where the full one would leave multiprocessors idle);
- a small step runs on few multiprocessors, so its time is a chain of L2 round trips: every
  stage of the step issues all its loads before using any (the product prefetches the next
  shared-memory stage into registers while it multiplies this one; the gate math loads every
  row's inputs before it stores anything), so a stage waits for one round trip, not one per element;
  small batches go further and keep W_hh in shared memory for the whole pass (:mod:`._resident`),
  so a step waits for h_{t-1} alone.

The GEMMs: large ones on cuBLAS where it is installed and agrees with the kernel here
(:mod:`._cublas`; numba-cuda binds no cuBLAS), the rest on rnnlab's own GEMM kernel. In that
kernel either operand may be read transposed, with loads kept coalesced; long reductions (weight
gradients summed over T*B rows) are split over the grid's z dimension and combined with atomic
adds so that small outputs still fill the GPU.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from types import SimpleNamespace

import numba
import numpy as np

from .. import _math
from ._device import require_cuda, simulator_enabled
from ._tile import gemm_tile_problem, step_tile_problem
from ._launch import argument_kinds, argument_types, launch
from . import _cublas
from ._memory import device_empty, prefix_view, to_device  # noqa: F401 (to_device: for tests and benchmarks)

cuda = require_cuda()

# Small grids are deliberate here (a persistent kernel runs as few blocks as it needs; per-step
# grids of small shapes have few blocks): numba-cuda's warning for grids under 128 blocks would
# fire on most calls. Its text starts with a terminal bold code, hence the leading ".*".
warnings.filterwarnings("ignore", message=r".*Grid size \d+ will likely result in GPU under-utilization")

_SIM = simulator_enabled()  # the simulator runs each GPU thread as a Python thread: small blocks there
#: Alignment of the shared arrays read as vectors (None in the simulator, which refuses the argument).
SHARED_ALIGN = None if _SIM else 16
#: The type of shared-memory offsets: unsigned, since numba wraps negative signed indices around
#: (~5 instructions an access).
shared_offset = numba.uint32


def _aligned_row(words: int) -> int:
    """A shared-memory row of ``words``, padded to a multiple of 4 words plus 4: every row starts
    16-byte aligned (vector loads), and rows do not start on the same bank."""
    return -(-words // 4) * 4 + 4

def _use_gemm_tile(bm: int, bn: int, bk: int, tx: int, ty: int) -> None:
    """Set the GEMM's tile and every size derived from it (see :func:`set_gemm_tile`).

    GEMM_BM x GEMM_BN outputs a block, GEMM_BK deep per shared-memory stage, on GEMM_TX x GEMM_TY
    threads, each owning GEMM_RM x GEMM_RN outputs: runs of GEMM_VM consecutive rows (GEMM_VN
    columns), the runs of neighbouring threads side by side, so that a thread reads each run from
    shared memory as one vector load (LDS.128 for 4 float32). The stages' rows are padded to a
    multiple of 4 words, keeping every run aligned.
    """
    global GEMM_BM, GEMM_BN, GEMM_BK, GEMM_TX, GEMM_TY, GEMM_RM, GEMM_RN, GEMM_VM, GEMM_VN
    global GEMM_BM_PADDED, GEMM_BN_PADDED, GEMM_A_WORDS, GEMM_B_WORDS, GEMM_MIN_SPLIT_K
    GEMM_BM, GEMM_BN, GEMM_BK, GEMM_TX, GEMM_TY = bm, bn, bk, tx, ty
    GEMM_RM, GEMM_RN = bm // ty, bn // tx
    GEMM_VM, GEMM_VN = _vector_width(GEMM_RM), _vector_width(GEMM_RN)
    # Padding by 4 words (not 1) keeps the runs aligned; the transposing stores that fill a stage
    # then meet at most 2-way bank conflicts (BK = 16), none for BK <= 8.
    GEMM_BM_PADDED = _aligned_row(bm)
    GEMM_BN_PADDED = _aligned_row(bn)
    GEMM_A_WORDS = bk * GEMM_BM_PADDED  # the flat shared arrays' sizes
    GEMM_B_WORDS = bk * GEMM_BN_PADDED
    #: Each split of a GEMM's reduction covers at least this many products.
    GEMM_MIN_SPLIT_K = 8 * bk


def _vector_width(run: int) -> int:
    """The widest vector load (4, 2 or 1 elements) that divides a thread's ``run`` of outputs."""
    return 4 if run % 4 == 0 else 2 if run % 2 == 0 else 1


_use_gemm_tile(*((16, 16, 8, 4, 4) if _SIM else (64, 64, 16, 16, 16)))  # BM, BN, BK, TX, TY
#: Aim for at least this many thread blocks in a GEMM before splitting its reduction.
GEMM_TARGET_BLOCKS = 264
#: At most 64 splits of a GEMM's reduction (the grid's z dimension).
GEMM_MAX_SPLITS = 64
#: Products of at least this many multiply-adds go to cuBLAS where it is usable (:func:`gemm`):
#: smaller ones are latency, where one launch with the bias fused beats cuBLAS's launch plus the bias's.
CUBLAS_MIN_PRODUCTS = 1 << 24


def set_gemm_tile(bm: int, bn: int, bk: int, tx: int, ty: int) -> None:
    """Use another GEMM tile (see :func:`_use_gemm_tile`), for tests and benchmarks/cuda_breakdown.py.
    The GEMM and the other shared kernels are rebuilt on their next use (numba binds the
    constants when it compiles); ValueError for a tile that breaks :func:`gemm_tile_problem`'s rule."""
    problem = gemm_tile_problem(bm, bn, bk, tx, ty)
    if problem:
        raise ValueError(f"GEMM tile {bm},{bn},{bk},{tx},{ty}: {problem}")
    _use_gemm_tile(bm, bn, bk, tx, ty)
    _for_dtype.cache_clear()


@dataclasses.dataclass(frozen=True)
class StepTile:
    """A recurrent step's tile: ``units`` x ``row_threads`` threads own ``units`` hidden units
    (every gate of each) of ``rows`` = ``row_threads * rows_per_thread`` sequences and go through
    K ``k`` at a time in shared memory; each thread owns one unit of ``rows_per_thread``
    sequences. Every kernel built on a tile (:func:`recurrent_product`, the cells' step and
    persistent kernels) is built once per tile, which keys their caches.

    The stages live in flat shared arrays (see :func:`recurrent_product`): ``a_words`` for the
    vector's stage, k by rows, rows padded to ``rows_padded`` (a multiple of 4 words, so a
    thread's rows are one aligned vector load); ``w_words`` for each gate's weights, units by k,
    k padded to ``k_padded`` (a multiple of 4 words plus 4: a unit's ``k_vector`` consecutive k
    are one aligned vector load, and the 8 threads of a quarter warp read 8 different bank
    groups). ``launch_bounds``, of the one-launch-per-step kernels: ``threads`` threads, at least
    two blocks resident per multiprocessor (at most 128 registers a thread; ``ptxas -v`` for
    sm_90 in benchmarks/README.md). The persistent kernels go without, and by default they only
    run when every tile has a block of its own. ValueError for a tile that breaks
    :func:`~rnnlab.kernels.cuda._tile.step_tile_problem`'s rule.
    """

    units: int
    row_threads: int
    rows_per_thread: int
    k: int

    def __post_init__(self):
        problem = step_tile_problem(self.units, self.row_threads, self.rows_per_thread, self.k)
        if problem:
            raise ValueError(f"step tile {self.units},{self.row_threads},{self.rows_per_thread},{self.k}: {problem}")

    @property
    def rows(self) -> int:
        return self.row_threads * self.rows_per_thread

    @property
    def rows_padded(self) -> int:
        return _aligned_row(self.rows)

    @property
    def k_padded(self) -> int:
        return _aligned_row(self.k)

    @property
    def k_vector(self) -> int:
        return _vector_width(self.k)

    @property
    def a_words(self) -> int:
        return self.k * self.rows_padded

    @property
    def w_words(self) -> int:
        return self.units * self.k_padded

    @property
    def block(self) -> tuple[int, int]:
        return self.units, self.row_threads

    @property
    def threads(self) -> int:
        return self.units * self.row_threads

    @property
    def launch_bounds(self) -> tuple[int, int]:
        return self.threads, 2


#: The shipped step tiles: STEP_TILE, and SMALL_STEP_TILE (a quarter of it) for shapes where
#: STEP_TILE leaves multiprocessors idle (:func:`step_tile`). Measured on an H200
#: (benchmarks/README.md, 2026-11-30, f+b, quarter against full): 1.24-1.54x faster from B=16 to
#: B=64 (LSTM (32,100,64,128) 2.38 against 3.57 ms, (64,50,256,512) 4.03 against 5.99; GRU and
#: Elman alike), but 1.14-1.17x slower at (128,100,512,1024), 512 quarter tiles on 132
#: multiprocessors. The simulator runs each thread as a Python thread: small tiles there.
STEP_TILE = StepTile(*((8, 4, 2, 8) if _SIM else (32, 8, 4, 32)))  # units, row threads, rows per thread, K
SMALL_STEP_TILE = StepTile(*((4, 4, 1, 8) if _SIM else (16, 8, 2, 32)))
#: The tile every shape uses instead (:func:`set_step_tile`), or None to choose by shape.
STEP_TILE_OVERRIDE: StepTile | None = None
#: Multiprocessors the simulator pretends to have (its device reports none).
SIM_MULTIPROCESSORS = 4

#: Cap on the blocks of a persistent launch (None: as many as can be resident at once); with
#: fewer blocks than tiles each block takes several tiles per step. Tests lower it.
PERSISTENT_MAX_BLOCKS: int | None = None
#: Threads per block of the small helper kernels (bias, column sums, dL/dh_0).
HELPER_THREADS = 256

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# The CPU kernels' activations (rnnlab.kernels._math), compiled for the device from the very same
# Python functions, so GPU and CPU round alike: float32 tanh is the clamped rational approximation
# (Eigen's) near 0 and 1 - 2 / (e^2|x| + 1) beyond 0.6, float64 uses libm-grade math.tanh/math.exp.
# The float32 exp alone is another (below: CUDA's own), so the float32 sigmoid and tanh from 0.6 on
# are within float32 rounding of the CPU's, not bit for bit.
_tanh_f32_rational = cuda.jit(device=True)(_math._tanh_f32_rational)
_tanh_f32_from = cuda.jit(device=True)(_math._tanh_f32_from)
_sigmoid_f64 = cuda.jit(device=True)(_math._sigmoid_f64)


@cuda.jit(device=True)
def _tanh_f32(x):
    # the CPU's _math._tanh_f32 with CUDA's float32 exp, as the sigmoid below
    return _tanh_f32_from(x, _tanh_f32_rational(x), math.exp(min(_math._TWO32 * abs(x), _math._EXP_ARG)))


@cuda.jit(device=True)
def _sigmoid_f32(x):
    # the CPU kernels' 1 / (1 + exp(-x)), with CUDA's own float32 exp (libdevice's, within 2 ulp) in
    # place of their vectorised polynomial (a bitcast intrinsic the simulator cannot run): both
    # within 1.5e-7 of the exact value, 0 below float32's normal range, NaN kept. (The simulator runs
    # it in Python, whose math.exp is float64's: the device's expf is met only on a GPU.)
    s = _math._ONE32 / (_math._ONE32 + math.exp(-x))
    return _math._ZERO32 if x < _math._SIGMOID_ZERO else s


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


def launch_2d(cols: int, rows: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(grid, block) covering a rows x cols index space, x along cols (coalesced), y along rows."""
    bx = min(1 << max(cols - 1, 0).bit_length(), HELPER_THREADS)
    by = max(1, min(rows, HELPER_THREADS // bx))
    return ((cols + bx - 1) // bx, (rows + by - 1) // by), (bx, by)


def check_sequences(x) -> None:
    """ValueError unless x (T, B, I) holds at least one step and one sequence (the kernels write
    hs[0] at step 0 and launch grids over T*B rows)."""
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"x must hold at least one step and one sequence, got shape {tuple(x.shape)}")


def _tile_count(batch, hidden, rows, units):
    """Tiles of ``rows`` sequences x ``units`` units over ``batch`` x ``hidden`` (the host's and the
    kernels' one formula: :func:`step_tiles`, ``tile_functions(tile).count``)."""
    return -(-batch // rows) * -(-hidden // units)


_tile_count_device = cuda.jit(device=True)(_tile_count)


def step_tiles(batch: int, hidden: int, tile: StepTile) -> int:
    """Tiles of one recurrent step: ``tile.rows`` sequences x ``tile.units`` units each."""
    return _tile_count(batch, hidden, tile.rows, tile.units)


_MULTIPROCESSORS: dict = {}  # device id -> its multiprocessors


def multiprocessors() -> int:
    """The multiprocessors of the current GPU (SIM_MULTIPROCESSORS in the simulator)."""
    device = cuda.get_current_device()
    key = getattr(device, "id", None)
    count = _MULTIPROCESSORS.get(key)
    if count is None:
        count = _MULTIPROCESSORS[key] = int(getattr(device, "MULTIPROCESSOR_COUNT", None) or SIM_MULTIPROCESSORS)
    return count


def step_tile(batch: int, hidden: int) -> StepTile:
    """The step tile for ``batch`` sequences of ``hidden`` units: STEP_TILE_OVERRIDE if set; else
    SMALL_STEP_TILE where STEP_TILE would give fewer tiles than the GPU has multiprocessors and
    the small one no more than two a multiprocessor (beyond that STEP_TILE's reuse of each load
    pays, see SMALL_STEP_TILE); else STEP_TILE."""
    if STEP_TILE_OVERRIDE is not None:
        return STEP_TILE_OVERRIDE
    count = multiprocessors()
    if (step_tiles(batch, hidden, STEP_TILE) < count
            and step_tiles(batch, hidden, SMALL_STEP_TILE) <= 2 * count):
        return SMALL_STEP_TILE
    return STEP_TILE


def set_step_tile(units: int, row_threads: int, rows_per_thread: int, k: int) -> None:
    """Use this recurrent-step tile (:class:`StepTile`) at every shape, for tests,
    benchmarks/cuda_tile_variants.py and benchmarks/cuda_sass.py; ValueError for a tile that breaks
    :func:`~rnnlab.kernels.cuda._tile.step_tile_problem`'s rule."""
    global STEP_TILE_OVERRIDE
    STEP_TILE_OVERRIDE = StepTile(units, row_threads, rows_per_thread, k)


#: Every cell's kernels that hold no step tile (:func:`share_untiled`).
UNTILED_KERNELS = ("forward_resident", "backward_resident")


def share_untiled(kernels: SimpleNamespace, build, dtype_name: str, tile: StepTile,
                  names=UNTILED_KERNELS) -> SimpleNamespace:
    """A cell's kernel set built on ``tile``, its kernels ``names`` (those that hold no step tile:
    the resident ones, a cell's own others added) taken from ``build(dtype_name, STEP_TILE)``'s set
    instead, so that each compiles once however many tiles a process meets."""
    if tile != STEP_TILE:
        shared = build(dtype_name, STEP_TILE)
        for name in names:
            setattr(kernels, name, getattr(shared, name))
    return kernels


def step_kernel(tile: StepTile):
    """``cuda.jit`` for a one-launch-per-step kernel on ``tile``, with its launch bounds (not in
    the simulator)."""
    return cuda.jit if _SIM else cuda.jit(launch_bounds=tile.launch_bounds)


_RESIDENT_BLOCKS: dict = {}  # (kernel, device, argument types, block, shared bytes) -> blocks that fit at once


def kernel_key(kernel, args) -> tuple:
    """(kernel, device id, what its argument types depend on): what a compiled kernel's resources
    depend on, as a cache key. The argument kinds hash faster than numba's types (~20 us of a
    batch-1 forward+backward); :func:`argument_types` gives the signature to compile."""
    return kernel, getattr(cuda.get_current_device(), "id", None), argument_kinds(args) or argument_types(args)


def persistent_blocks(kernel, args, tiles: int, block, shared_bytes: int = 0) -> int:
    """Blocks for a grid-synchronised persistent launch of ``kernel`` on ``args``: no more than
    can be resident at once (a grid sync with a block left waiting for a free multiprocessor would
    deadlock; numba-cuda launches such kernels cooperatively, which the driver refuses beyond
    that), no more than ``tiles``; 0 when not even one block fits or the GPU cannot launch
    cooperatively. ``block``: the launch's block shape (a tile's ``block``); ``shared_bytes``: its
    dynamic shared memory a block. One block in the simulator, whose grid sync covers a single
    block."""
    if _SIM:
        return 1
    key = (*kernel_key(kernel, args), block, shared_bytes)
    resident = _RESIDENT_BLOCKS.get(key)
    if resident is None:  # 0 where the GPU can't launch cooperatively (a grid sync needs it)
        cooperative = bool(cuda.get_current_device().COOPERATIVE_LAUNCH)
        signature = argument_types(args)
        resident = kernel.compile(signature).max_cooperative_grid_blocks(block, shared_bytes) if cooperative else 0
        _RESIDENT_BLOCKS[key] = resident
    if PERSISTENT_MAX_BLOCKS is not None:
        resident = min(resident, PERSISTENT_MAX_BLOCKS)
    return min(tiles, resident)


def for_dtype(dtype) -> SimpleNamespace:
    """The kernels and device functions shared by the cells, specialised for ``dtype``.

    Returns a namespace with ``tanh``, ``sigmoid`` (device functions), ``zero``, ``one`` (scalars
    of the dtype), ``nb_type`` (its numba type) and the kernels ``gemm_kernel``, ``colsum_kernel``,
    ``fill_kernel``, ``bias_rows_kernel``, ``recurrent_grad_kernel``.
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

    # Two blocks a multiprocessor at least (<= 128 registers a thread): its stage loop unrolled,
    # ptxas would otherwise keep a whole stage's loads in flight (159 registers, one block).
    gemm_jit = cuda.jit if _SIM else cuda.jit(launch_bounds=(GEMM_TX * GEMM_TY, 2))
    index = shared_offset

    @cuda.jit(device=True)
    def stage(src, k_major, r0, R, tile_r, padded, k0, k_end, tid, dst):
        """dst[kk*padded + rr] = op(src)[k0 + kk, r0 + rr] for kk < GEMM_BK, rr < tile_r (zeros out
        of range): one operand's stage, K by rows, rows ``padded`` words apart. ``k_major``: src
        is stored (K, R), else (R, K); either way threads adjacent in tid read adjacent addresses."""
        for e in range(tid, GEMM_BK * tile_r, GEMM_TX * GEMM_TY):
            if k_major:
                kk = e // tile_r
                rr = e - kk * tile_r
            else:
                rr = e // GEMM_BK
                kk = e - rr * GEMM_BK
            k = k0 + kk
            r = r0 + rr
            at = index(kk * padded + rr)
            if k < k_end and r < R:
                dst[at] = src[k, r] if k_major else src[r, k]
            else:
                dst[at] = zero

    @gemm_jit
    def gemm_kernel(a, b, c, bias, trans_a, trans_b, add_bias, k_chunk):
        """c = op(a) @ op(b) (+ bias[n]) over the K-range of this grid z-slice.

        op(a) (M, K) is a, or a.T when trans_a (a stored (K, M)); op(b) (K, N) is b, or b.T when
        trans_b (b stored (N, K)). One z-slice stores; several add atomically into a zeroed c.
        Thread (tx, ty) owns rows m0 + ty*GEMM_VM + p*GEMM_TY*GEMM_VM + q (q < GEMM_VM) and
        columns n0 + tx*GEMM_VN + p*GEMM_TX*GEMM_VN + q (q < GEMM_VN): per k, each run of GEMM_VM
        rows is one vector load from shared memory (the same for a warp's threads of one ty: a
        broadcast), each run of GEMM_VN columns another (the warp's side by side).
        """
        a_s = cuda.shared.array(GEMM_A_WORDS, nb_type, alignment=SHARED_ALIGN)  # a_s[k*GEMM_BM_PADDED + m]
        b_s = cuda.shared.array(GEMM_B_WORDS, nb_type, alignment=SHARED_ALIGN)  # b_s[k*GEMM_BN_PADDED + n]
        acc = cuda.local.array((GEMM_RM, GEMM_RN), nb_type)
        a_v = cuda.local.array(GEMM_RM, nb_type)
        b_v = cuda.local.array(GEMM_RN, nb_type)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * GEMM_TX + tx
        m0 = cuda.blockIdx.x * GEMM_BM  # M (T*B rows, can be millions) on x: y stops at 65535 blocks
        n0 = cuda.blockIdx.y * GEMM_BN
        M = c.shape[0]
        N = c.shape[1]
        K = a.shape[0] if trans_a else a.shape[1]
        k_begin = cuda.blockIdx.z * k_chunk
        k_end = min(K, k_begin + k_chunk)
        for i in range(GEMM_RM):
            for j in range(GEMM_RN):
                acc[i, j] = zero
        for k0 in range(k_begin, k_end, GEMM_BK):
            stage(a, trans_a, m0, M, GEMM_BM, GEMM_BM_PADDED, k0, k_end, tid, a_s)
            stage(b, not trans_b, n0, N, GEMM_BN, GEMM_BN_PADDED, k0, k_end, tid, b_s)
            cuda.syncthreads()
            a_at = index(ty * GEMM_VM)
            b_at = index(tx * GEMM_VN)
            kk = 0
            while kk < GEMM_BK:  # not range(): numba's range loop kept ptxas from unrolling it (SASS)
                for i in range(GEMM_RM):
                    a_v[i] = a_s[a_at + index((i // GEMM_VM) * GEMM_TY * GEMM_VM + i % GEMM_VM)]
                for j in range(GEMM_RN):
                    b_v[j] = b_s[b_at + index((j // GEMM_VN) * GEMM_TX * GEMM_VN + j % GEMM_VN)]
                for i in range(GEMM_RM):
                    for j in range(GEMM_RN):
                        acc[i, j] += a_v[i] * b_v[j]
                a_at += index(GEMM_BM_PADDED)
                b_at += index(GEMM_BN_PADDED)
                kk += 1
            cuda.syncthreads()
        for i in range(GEMM_RM):
            m = m0 + ty * GEMM_VM + (i // GEMM_VM) * GEMM_TY * GEMM_VM + i % GEMM_VM
            for j in range(GEMM_RN):
                n = n0 + tx * GEMM_VN + (j // GEMM_VN) * GEMM_TX * GEMM_VN + j % GEMM_VN
                if m < M and n < N:
                    if cuda.gridDim.z > 1:
                        cuda.atomic.add(c, (m, n), acc[i, j])
                    elif add_bias:
                        c[m, n] = acc[i, j] + bias[n]
                    else:
                        c[m, n] = acc[i, j]

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
    def fill_kernel(a, value):
        """a[r, n] = value."""
        n, r = cuda.grid(2)
        if r < a.shape[0] and n < a.shape[1]:
            a[r, n] = value

    @cuda.jit
    def bias_rows_kernel(a, bias):
        """a[r, n] = bias[n]: every row the bias, for cuBLAS to add a product onto. Rows in a
        grid-stride loop: T*B rows can pass the grid's 65535 in y."""
        n = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        if n < a.shape[1]:
            value = bias[n]
            for r in range(cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y, a.shape[0],
                           cuda.gridDim.y * cuda.blockDim.y):
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
        dtype=dtype, zero=zero, one=one, nb_type=nb_type,
        tanh=_tanh_f32 if f32 else _tanh_f64,
        sigmoid=_sigmoid_f32 if f32 else _sigmoid_f64,
        gemm_kernel=gemm_kernel, colsum_kernel=colsum_kernel,
        fill_kernel=fill_kernel, bias_rows_kernel=bias_rows_kernel, recurrent_grad_kernel=recurrent_grad_kernel,
    )


def gemm(a, b, *, trans_a: bool = False, trans_b: bool = False, bias=None, out=None):
    """op(a) @ op(b) (+ bias per column) on device arrays; returns ``out`` (M, N), allocated if None.

    Products of CUBLAS_MIN_PRODUCTS multiply-adds or more run on cuBLAS where it is usable
    (:mod:`._cublas`; the bias is written into ``out`` first and the product added onto it); the
    rest, and everything where cuBLAS is not, on rnnlab's own GEMM kernel."""
    M, K = (a.shape[1], a.shape[0]) if trans_a else a.shape
    N, K_b = (b.shape[0], b.shape[1]) if trans_b else (b.shape[1], b.shape[0])
    if K != K_b:
        raise ValueError(f"gemm: inner dimensions differ ({K} and {K_b})")
    if out is None:
        out = device_empty((M, N), a.dtype)
    if (M * N * K >= CUBLAS_MIN_PRODUCTS and max(M, N, K) <= _cublas.INT_MAX and cublas_usable(a.dtype)
            and a.is_c_contiguous() and b.is_c_contiguous() and out.is_c_contiguous()):
        if bias is not None:
            grid, block = launch_2d(N, M)
            launch(for_dtype(a.dtype).bias_rows_kernel, (grid[0], min(grid[1], 65535)), block, (out, bias))
        _cublas.multiply(a, b, out, trans_a=trans_a, trans_b=trans_b, accumulate=bias is not None)
        return out
    return own_gemm(a, b, trans_a=trans_a, trans_b=trans_b, bias=bias, out=out)


def cublas_usable(dtype) -> bool:
    """Whether :func:`gemm` hands ``dtype``'s large products to cuBLAS (:func:`._cublas.ready`)."""
    return _cublas.ready(dtype, own_gemm)


def own_gemm(a, b, *, trans_a: bool = False, trans_b: bool = False, bias=None, out=None):
    """:func:`gemm` on rnnlab's GEMM kernel whatever the size."""
    k = for_dtype(a.dtype)
    M, K = (a.shape[1], a.shape[0]) if trans_a else a.shape
    N = b.shape[0] if trans_b else b.shape[1]
    if out is None:
        out = device_empty((M, N), a.dtype)
    blocks_m, blocks_n = -(-M // GEMM_BM), -(-N // GEMM_BN)
    splits = 1
    if bias is None:
        splits = max(1, min(GEMM_TARGET_BLOCKS // (blocks_m * blocks_n), K // GEMM_MIN_SPLIT_K, GEMM_MAX_SPLITS))
    k_chunk = -(-(-(-K // splits)) // GEMM_BK) * GEMM_BK
    splits = max(1, -(-K // k_chunk))
    if splits > 1:
        fill(out, 0.0)
    bias_arg = prefix_view(out, (1,)) if bias is None else bias  # without a bias: any vector, never read
    launch(k.gemm_kernel, (blocks_m, blocks_n, splits), (GEMM_TX, GEMM_TY),
           (a, b, out, bias_arg, trans_a, trans_b, bias is not None, k_chunk))
    return out


def fill(a, value: float) -> None:
    """Set every element of the 2-D device array ``a`` to ``value``."""
    k = for_dtype(a.dtype)
    grid, block = launch_2d(a.shape[1], a.shape[0])
    launch(k.fill_kernel, grid, block, (a, a.dtype.type(value)))


def column_sums(a):
    """The sums over rows of the 2-D device array ``a``: a new device array (N,)."""
    k = for_dtype(a.dtype)
    out = device_empty(a.shape[1], a.dtype)
    threads = 128
    launch(k.colsum_kernel, (a.shape[1] + threads - 1) // threads, threads, (a, out))
    return out


def recurrent_grad(d, w, carry=None):
    """dL/dh_0 = d @ W (+ carry) for d (B, G*H), W (G*H, H): a new device array (B, H)."""
    k = for_dtype(d.dtype)
    B, H = d.shape[0], w.shape[1]
    out = device_empty((B, H), d.dtype)
    grid, block = launch_2d(H, B)
    launch(k.recurrent_grad_kernel, grid, block, (d, w, out if carry is None else carry, carry is not None, out))
    return out


def rows(a, steps: int | None = None):
    """View the first ``steps`` (all if None) steps of a C-contiguous device array (T, B, F) as
    (steps*B, F) rows."""
    return prefix_view(a, ((a.shape[0] if steps is None else steps) * a.shape[1], a.shape[2]))


@functools.cache
def recurrent_product(dtype_name: str, gates: int, w_by_rows: bool, tile: StepTile):
    """The device function at the heart of every recurrent step, for one dtype, gate count and
    step tile:

        product(a, w, n, row0, col0, acc, a_s, w_s)
        acc[r, g] = sum_m a[row0 + ty*rows_per_thread + r, m] * W[g*n + col0 + tx, m]

    for thread (tx, ty) of a ``tile.block`` block, r < ``tile.rows_per_thread``, g < ``gates``: the rows
    row0.. of a (rows, K) times the rows of W (gates*n, K) that belong to units col0.. of every
    gate. ``w_by_rows``: ``w`` is W itself (W_hh in the forward pass, h_{t-1} W_hh^T); else ``w``
    is W^T, (K, gates*n) (W_hh in the backward pass, where gates = 1 and d_pre W_hh sums over
    all 4H rows). Out-of-range rows and units read zeros, so edge tiles need no special case.

    The K range goes through shared memory ``tile.k`` at a time, software-pipelined: each thread
    loads its share of the next stage into registers (a fixed count, unrolled, every load
    issued before any is used) while the block multiplies the current one. A step is a chain of
    dependent stages, so what bounds a small step is L2 latency, not bandwidth: storing each
    element as soon as it is loaded would wait out one L2 round trip per element.

    The stages are stored a_s[kk*rows_padded + row] (k by rows) and
    w_s[g*w_words + unit*k_padded + kk] (units by k; the tile's sizes), so that for each k_vector
    values of kk a thread reads its rows_per_thread rows at each kk as one vector (LDS.128 in
    float32; the same for the whole warp, a broadcast), and its unit's weights of each gate as
    one vector, with offsets that ptxas folds into the loads once the kk loop is unrolled. The
    caller declares the workspace (one per kernel, compile-time shapes):
    ``acc = cuda.local.array((tile.rows_per_thread, gates), T)``,
    ``a_s = cuda.shared.array(tile.a_words, T, alignment=SHARED_ALIGN)``,
    ``w_s = cuda.shared.array(gates * tile.w_words, T, alignment=SHARED_ALIGN)``.
    Every thread of the block must call it (it synchronises the block).
    """
    dtype = np.dtype(dtype_name)
    nb_type = numba.from_dtype(dtype)
    zero = dtype.type(0.0)
    units, row_threads, rows_per_thread, step_rows, step_k, threads = (
        tile.units, tile.row_threads, tile.rows_per_thread, tile.rows, tile.k, tile.threads)
    rows_padded, k_padded, k_vector, w_words = tile.rows_padded, tile.k_padded, tile.k_vector, tile.w_words
    index = shared_offset
    # Who loads what: thread tid reads column tid % step_k of rows tid // step_k + i*k_rows of the
    # stages stored by rows (a, and W in the forward pass), and unit tx of rows ty + i*row_threads
    # of the stage stored by columns (W^T): adjacent threads read adjacent addresses, and load i's
    # gate and offset are compile-time constants (no index arithmetic to keep in registers).
    k_rows = threads // step_k  # stage rows covered by one pass of the block
    a_loads = step_rows // k_rows
    w_loads = gates * units // k_rows if w_by_rows else gates * step_k // row_threads

    @cuda.jit(device=True)
    def fetch(a, w, n, row0, col0, k0, a_r, w_r):
        """Registers a_r, w_r <- this thread's elements of the stage at k0, zeros out of range:
        every load is issued before any is used, so they are all in flight at once."""
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * units + tx
        lane_k = tid % step_k
        lane_row = tid // step_k
        n_rows = a.shape[0]
        K = a.shape[1]
        m = k0 + lane_k
        for i in range(a_loads):
            b = row0 + lane_row + i * k_rows
            a_r[i] = a[b, m] if (b < n_rows and m < K) else zero
        for i in range(w_loads):
            if w_by_rows:  # W (gates*n, K): row g*n + col, column m
                g = (i * k_rows) // units
                col = col0 + lane_row + (i * k_rows) % units
                w_r[i] = w[g * n + col, m] if (col < n and m < K) else zero
            else:  # W^T (K, gates*n): row k0 + kk, column g*n + col
                g = (i * row_threads) // step_k
                m_t = k0 + ty + (i * row_threads) % step_k
                col = col0 + tx
                w_r[i] = w[m_t, g * n + col] if (col < n and m_t < K) else zero

    @cuda.jit(device=True)
    def store(a_r, w_r, a_s, w_s):
        """Shared stage <- registers, element for element as :func:`fetch` loaded them."""
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * units + tx
        lane_k = tid % step_k
        lane_row = tid // step_k
        for i in range(a_loads):
            a_s[index(lane_k * rows_padded + lane_row + i * k_rows)] = a_r[i]
        for i in range(w_loads):
            if w_by_rows:
                g = (i * k_rows) // units
                w_s[index(g * w_words + (lane_row + (i * k_rows) % units) * k_padded + lane_k)] = w_r[i]
            else:
                g = (i * row_threads) // step_k
                w_s[index(g * w_words + tx * k_padded + ty + (i * row_threads) % step_k)] = w_r[i]

    @cuda.jit(device=True)
    def product(a, w, n, row0, col0, acc, a_s, w_s):
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        K = a.shape[1]
        a_r = cuda.local.array(a_loads, nb_type)
        w_r = cuda.local.array(w_loads, nb_type)
        a_v = cuda.local.array((k_vector, rows_per_thread), nb_type)
        w_v = cuda.local.array(k_vector, nb_type)
        for r in range(rows_per_thread):
            for g in range(gates):
                acc[r, g] = zero
        fetch(a, w, n, row0, col0, 0, a_r, w_r)
        for k0 in range(0, K, step_k):
            store(a_r, w_r, a_s, w_s)
            cuda.syncthreads()
            if k0 + step_k < K:  # the next stage's loads fly while this one is multiplied
                fetch(a, w, n, row0, col0, k0 + step_k, a_r, w_r)
            a_at = index(ty * rows_per_thread)
            w_at = index(tx * k_padded)
            kk = 0
            while kk < step_k:  # not range(): numba's range loop kept ptxas from unrolling it (SASS)
                for q in range(k_vector):  # this thread's rows at kk + q: one vector load, a broadcast
                    for r in range(rows_per_thread):
                        a_v[q, r] = a_s[a_at + index(q * rows_padded + r)]
                for g in range(gates):
                    for q in range(k_vector):  # its unit's weights at kk..: one vector load
                        w_v[q] = w_s[w_at + index(g * w_words + q)]
                    for q in range(k_vector):
                        for r in range(rows_per_thread):
                            acc[r, g] += a_v[q, r] * w_v[q]
                a_at += index(k_vector * rows_padded)
                w_at += index(k_vector)
                kk += k_vector
            cuda.syncthreads()

    return product


@functools.cache
def tile_functions(tile: StepTile) -> SimpleNamespace:
    """The device functions that place a step's tiles of ``tile``: ``count(batch, hidden)``, the
    tiles of a step (:func:`step_tiles`), and ``origin(index, hidden)``, the (first sequence,
    first unit) of tile ``index``; tiles run along the units first."""
    units, rows = tile.units, tile.rows

    @cuda.jit(device=True)
    def count(batch, hidden):
        return _tile_count_device(batch, hidden, rows, units)

    @cuda.jit(device=True)
    def origin(index, hidden):
        unit_tiles = (hidden + units - 1) // units
        return (index // unit_tiles) * rows, (index % unit_tiles) * units

    return SimpleNamespace(count=count, origin=origin)


@cuda.jit(device=True)
def end_step(grid):
    """The barrier between two steps of a persistent kernel: a grid sync, or, when the grid is a
    single block, the block's own barrier (which orders its threads' global memory accesses
    too, and skips the grid barrier's round trips through global atomics)."""
    if cuda.gridDim.x == 1:
        cuda.syncthreads()
    else:
        grid.sync()


@cuda.jit(device=True)
def step_link(s, steps, truncate):
    """(last, cut) of BPTT step s of ``steps``: ``last``, s is the final step (dL/dh_n enters
    there); ``cut``, a truncation every ``truncate`` > 0 steps falls between s and s+1, where
    (s+1) % truncate == 0 as on the CPU (nothing crosses from step s+1). Otherwise the recurrent
    term of dL/dh_s comes from step s+1."""
    last = s == steps - 1
    return last, not last and truncate > 0 and (s + 1) % truncate == 0


@functools.cache
def tile_products(gates: int, tile: StepTile):
    """The device function ``load(index, product, acc) -> (row0, col0)`` of the "gemm" recurrence:
    a step's recurrent products computed for all sequences by one GEMM, ``product`` (B, gates*H),
    read into a thread's accumulators as the tiled product would leave them, acc[r, g] = product[b,
    g*H + j] for its rows b and unit j (left alone outside the shape), on ``tile``. (row0, col0):
    the tile's first sequence and unit."""
    rows_per_thread = tile.rows_per_thread
    tile_origin = tile_functions(tile).origin

    @cuda.jit(device=True)
    def load(index, product, acc):
        B = product.shape[0]
        H = product.shape[1] // gates
        row0, col0 = tile_origin(index, H)
        j = col0 + cuda.threadIdx.x
        for r in range(rows_per_thread):
            b = row0 + cuda.threadIdx.y * rows_per_thread + r
            if b < B and j < H:
                for g in range(gates):
                    acc[r, g] = product[b, g * H + j]
        return row0, col0

    return load


@functools.cache
def step_products(dtype_name: str, gates: int, tile: StepTile):
    """``(forward, backward)``: the device functions that open every cell's step on tile
    ``index`` of ``tile``.

    ``forward(index, t, h0, hs, w_hh, acc, a_s, w_s) -> (row0, col0)``: acc = h_{t-1} W_hh^T for
    the tile's units, every gate; h_{t-1} is h0 at step 0 (the kernels copy it into hs[0]).

    ``backward(index, s, truncate, d_pre, w_hh, acc, a_s, w_s) -> (row0, col0, last, cut)``:
    acc[:, 0] = (d_pre[s+1] W_hh)[:, units], the recurrent term of dL/dh_s, unless s is the last
    step (``last``: dL/dh_n enters instead) or a truncation cuts between s and s+1 (``cut``:
    nothing enters; cuts fall where (s+1) % truncate == 0, as on the CPU).

    (row0, col0) is the tile's first sequence and unit. Both branch alike for the whole block.
    """
    forward_product = recurrent_product(dtype_name, gates, True, tile)
    backward_product = recurrent_product(dtype_name, 1, False, tile)
    tile_origin = tile_functions(tile).origin

    @cuda.jit(device=True)
    def forward(index, t, h0, hs, w_hh, acc, a_s, w_s):
        H = hs.shape[2]
        row0, col0 = tile_origin(index, H)
        if t == 0:
            forward_product(h0, w_hh, H, row0, col0, acc, a_s, w_s)
        else:
            forward_product(hs[t], w_hh, H, row0, col0, acc, a_s, w_s)
        return row0, col0

    @cuda.jit(device=True)
    def backward(index, s, truncate, d_pre, w_hh, acc, a_s, w_s):
        H = w_hh.shape[1]
        row0, col0 = tile_origin(index, H)
        last, cut = step_link(s, d_pre.shape[0], truncate)
        if not last and not cut:
            backward_product(d_pre[s + 1], w_hh, H, row0, col0, acc, a_s, w_s)
        return row0, col0, last, cut

    return forward, backward
