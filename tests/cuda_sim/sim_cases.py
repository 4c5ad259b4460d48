"""GPU kernels == CPU kernels, array by array: run by tests/test_cuda.py in a subprocess.

Not collected by a plain ``pytest`` run (no ``test_`` prefix): numba's CUDA simulator must be
switched on (``NUMBA_ENABLE_CUDASIM=1``) before numba is imported, so tests/test_cuda.py starts
``python -m pytest tests/cuda_sim/sim_cases.py`` with it set; on a machine with a GPU it runs the
same file again without it, on the device. Shapes are tiny: the simulator runs every GPU thread
as a Python thread.

Tolerances are norm-wise relative errors (conftest.rel_err): 1e-5 in float32, 1e-10 in float64.
"""

from __future__ import annotations

import itertools
import os
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import (CELL_IDS, CELLS, layer_dstate, layer_state, make_layer, random_problem, reference_run,
                      rel_err)
from rnnlab import kernels
from rnnlab.kernels import cuda as gpu
from rnnlab.kernels.cuda import _device

AVAILABLE, REASON = _device.cuda_available()
cuda = _device.require_cuda() if AVAILABLE else None  # as the kernel modules get numba.cuda (a global: see below)
if AVAILABLE and os.environ.get("RNNLAB_TEST_STEP_TILE"):  # another tile geometry, set before any cell loads
    from rnnlab.kernels.cuda import _common

    _common.set_step_tile(*(int(v) for v in os.environ["RNNLAB_TEST_STEP_TILE"].split(",")))
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"CUDA unavailable: {REASON}")

T, B, I, H = 5, 2, 3, 5  # H not a power of two: the per-step blocks have idle threads
TRUNCATE = 2  # cuts at t = 2 and 4
TOL = {"float32": 1e-5, "float64": 1e-10}
DTYPES = list(TOL)


def _assert_same(ours, theirs, names, dtype):
    assert len(ours) == len(theirs) == len(names)
    errors = {}
    for name, a, b in zip(names, ours, theirs):
        assert isinstance(a, np.ndarray), name
        assert a.shape == b.shape and a.dtype == b.dtype, (name, a.shape, b.shape, a.dtype, b.dtype)
        errors[name] = rel_err(a, b)
    bad = {k: v for k, v in errors.items() if not v < TOL[dtype]}
    assert not bad, bad


def _draw(rng, dtype, *shape, scale=0.5):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def test_simulator_or_device_is_available():
    assert AVAILABLE
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        assert REASON == _device.SIMULATOR
    else:
        assert REASON.startswith("CUDA device 0")


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") != "1", reason="a repair to the simulator")
def test_a_blocks_threads_share_one_shared_array_when_creating_it_is_slow(monkeypatch):
    """Every thread of a block writes its index into a shared array, and after the barrier each
    sums all of them. numba-cuda's simulator split such an array between threads that asked for
    it at once (a wrong CI result); a 2 ms allocation makes every thread ask at once. The kernel
    reads ``cuda`` as a module global, which is what the simulator swaps for its own module."""
    import time

    from numba.cuda.simulator import kernelapi

    from rnnlab.kernels.cuda import _simulator

    assert kernelapi.FakeCUDAShared.array is _simulator.shared_array

    def slow_new_array(shape, dtype):
        time.sleep(0.002)  # releases the GIL: the other threads reach the allocation meanwhile
        return np.empty(shape, dtype)

    monkeypatch.setattr(_simulator, "_new_array", slow_new_array)

    @cuda.jit
    def sum_of_indices(out):
        s = cuda.shared.array(16, np.float64)
        s[cuda.threadIdx.x] = cuda.threadIdx.x
        cuda.syncthreads()
        total = 0.0
        for i in range(16):
            total += s[i]
        out[cuda.threadIdx.x] = total

    out = np.zeros(16)
    sum_of_indices[1, 16](out)
    assert np.all(out == 120.0), out


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") != "1", reason="a repair to the simulator")
def test_a_simulated_launch_runs_at_a_short_switch_interval_and_restores_the_callers():
    """The simulator polls a block's threads holding the interpreter lock: at Python's 5 ms switch
    interval every barrier waits out several (the simulated cases ran 3-6x slower)."""
    import sys

    from numba.cuda.simulator import kernel

    from rnnlab.kernels.cuda import _simulator

    assert kernel.FakeCUDAKernel.__call__ is _simulator.launch

    @cuda.jit
    def record_interval(out):
        out[0] = sys.getswitchinterval()  # the simulator runs a kernel as Python

    out = np.zeros(1)
    before = sys.getswitchinterval()
    record_interval[1, 1](out)
    assert out[0] == pytest.approx(_simulator.LAUNCH_SWITCH_INTERVAL_S)  # as the interpreter rounds it
    assert out[0] < before == sys.getswitchinterval()


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_matches_numpy(dtype, trans_a, trans_b, monkeypatch):
    """op(a) @ op(b) for every transposition, over full and partial tiles (two block rows, two
    block columns), with the K range split 5 ways."""
    from rnnlab.kernels.cuda import _common

    monkeypatch.setattr(_common, "GEMM_MIN_SPLIT_K", _common.GEMM_BK)
    rng = np.random.default_rng(1)
    M, K, N = _common.GEMM_BM + 3, 5 * _common.GEMM_BK, _common.GEMM_BN + 5
    a = _draw(rng, dtype, *((K, M) if trans_a else (M, K)))
    b = _draw(rng, dtype, *((N, K) if trans_b else (K, N)))
    expected = (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b).astype(np.float64)
    split = _common.gemm(_common.to_device(a), _common.to_device(b), trans_a=trans_a, trans_b=trans_b)
    assert rel_err(split.copy_to_host(), expected) < TOL[dtype]
    bias = _draw(rng, dtype, N)
    whole = _common.gemm(_common.to_device(a), _common.to_device(b), trans_a=trans_a, trans_b=trans_b,
                         bias=_common.to_device(bias))  # a bias turns the split off
    assert rel_err(whole.copy_to_host(), expected + bias) < TOL[dtype]


def test_gemm_with_another_tile():
    """benchmarks/cuda_breakdown.py times other GEMM tiles: one where no two sizes coincide (12 x 10
    outputs on 5 x 3 threads, 4 x 2 each, K 3 deep) multiplies right over partial tiles, split or
    with a bias; a tile whose threads don't divide its outputs is refused."""
    from rnnlab.kernels.cuda import _common

    shipped = (_common.GEMM_BM, _common.GEMM_BN, _common.GEMM_BK, _common.GEMM_TX, _common.GEMM_TY)
    rng = np.random.default_rng(4)
    built = _common.for_dtype("float64")
    try:
        _common.set_gemm_tile(12, 10, 3, 5, 3)
        assert _common.for_dtype("float64") is not built  # on a GPU the constants are bound when compiled
        assert (_common.GEMM_RM, _common.GEMM_RN) == (4, 2)
        M, K, N = 2 * 12 + 5, 40, 10 + 3
        for trans_a, trans_b in itertools.product([False, True], repeat=2):
            a = _draw(rng, "float64", *((K, M) if trans_a else (M, K)))
            b = _draw(rng, "float64", *((N, K) if trans_b else (K, N)))
            bias = _draw(rng, "float64", N)
            expected = (a.T if trans_a else a) @ (b.T if trans_b else b)
            split = _common.gemm(_common.to_device(a), _common.to_device(b), trans_a=trans_a, trans_b=trans_b)
            whole = _common.gemm(_common.to_device(a), _common.to_device(b), trans_a=trans_a, trans_b=trans_b,
                                 bias=_common.to_device(bias))
            assert rel_err(split.copy_to_host(), expected) < TOL["float64"]
            assert rel_err(whole.copy_to_host(), expected + bias) < TOL["float64"]
        with pytest.raises(ValueError, match=r"GEMM tile 12,10,3,4,3: the 3 x 4 threads must divide the 12 x 10"):
            _common.set_gemm_tile(12, 10, 3, 4, 3)
    finally:
        _common.set_gemm_tile(*shipped)


def _column_major_gemm(op_a, op_b, m, n, k, a, lda, b, ldb, ldc):
    """What BLAS's column-major gemm computes on flat buffers: C (m x n, leading dimension ldc) =
    op(A) op(B), A and B read column by column with their leading dimensions."""
    def matrix(flat, rows, cols, ld):  # column j starts at j * ld
        return np.stack([flat[j * ld:j * ld + rows] for j in range(cols)], axis=1)

    op_a_m = matrix(a, k, m, lda).T if op_a else matrix(a, m, k, lda)
    op_b_m = matrix(b, n, k, ldb).T if op_b else matrix(b, k, n, ldb)
    c = np.zeros(ldc * n)
    product = op_a_m @ op_b_m
    for j in range(n):
        c[j * ldc:j * ldc + m] = product[:, j]
    return c


@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product([False, True], repeat=2)))
def test_cublas_arguments_give_the_row_major_product(trans_a, trans_b):
    """The column-major arguments handed to cuBLAS, run through a column-major gemm on the raw
    buffers, give the row-major op(a) @ op(b) (the simulator runs no cuBLAS; this is its contract)."""
    from rnnlab.kernels.cuda._cublas import column_major_arguments

    rng = np.random.default_rng(5)
    M, K, N = 7, 4, 5
    a = rng.standard_normal((K, M) if trans_a else (M, K))
    b = rng.standard_normal((N, K) if trans_b else (K, N))
    op_first, op_second, m, n, k, ld_first, ld_second, ldc = column_major_arguments(a.shape, b.shape, trans_a, trans_b)
    c = _column_major_gemm(op_first, op_second, m, n, k, b.ravel(), ld_first, a.ravel(), ld_second, ldc)
    assert np.allclose(c.reshape(M, N), (a.T if trans_a else a) @ (b.T if trans_b else b))


def test_cublas_multiply_hands_the_library_b_first(monkeypatch):
    """multiply() through a stand-in library that computes what cuBLAS's column-major gemm does on
    the raw buffers (host arrays here): every transposition, accumulating or not, gives the
    row-major op(a) @ op(b) (+ out)."""
    import ctypes

    from rnnlab.kernels.cuda import _cublas

    buffers = {}

    def gemm(handle, op_first, op_second, m, n, k, alpha, first, ld_first, second, ld_second, beta, out, ldc):
        c = buffers[out].reshape(-1)
        product = _column_major_gemm(op_first, op_second, m, n, k, buffers[first].reshape(-1), ld_first,
                                     buffers[second].reshape(-1), ld_second, ldc)
        c[:] = alpha._obj.value * product[:c.size] + beta._obj.value * c
        return 0

    def pointer(array):
        buffers[id(array)] = array
        return id(array)

    library = SimpleNamespace(cublasSgemm_v2=gemm, cublasDgemm_v2=gemm)
    monkeypatch.setattr(_cublas, "_library", library)
    monkeypatch.setattr(_cublas, "_handle", lambda: ctypes.c_void_p())
    monkeypatch.setattr(_cublas, "_pointer", pointer)
    rng = np.random.default_rng(8)
    M, K, N = 6, 4, 5
    for trans_a, trans_b, accumulate in itertools.product([False, True], repeat=3):
        a = rng.standard_normal((K, M) if trans_a else (M, K))
        b = rng.standard_normal((N, K) if trans_b else (K, N))
        out = rng.standard_normal((M, N))
        expected = (a.T if trans_a else a) @ (b.T if trans_b else b) + (out if accumulate else 0)
        _cublas.multiply(a, b, out, trans_a=trans_a, trans_b=trans_b, accumulate=accumulate)
        assert np.allclose(out, expected), (trans_a, trans_b, accumulate)


def test_gemm_hands_large_products_to_cublas_after_the_bias_rows(monkeypatch):
    """Where cuBLAS runs, gemm() writes the bias into every row of the output, in a grid-stride
    loop however few rows of blocks the grid has (here one row of 4 x 2 threads for 11 rows), and
    has cuBLAS add the product onto it; without a bias nothing is added to."""
    from rnnlab.kernels.cuda import _common, _cublas

    def multiply(a, b, out, *, trans_a, trans_b, accumulate):  # cuBLAS stood in for on the host
        product = (a.copy_to_host().T if trans_a else a.copy_to_host()) @ (
            b.copy_to_host().T if trans_b else b.copy_to_host())
        out.copy_to_device((out.copy_to_host() if accumulate else 0) + product)

    monkeypatch.setattr(_common, "cublas_usable", lambda dtype: True)
    monkeypatch.setattr(_cublas, "multiply", multiply)
    monkeypatch.setattr(_common, "CUBLAS_MIN_PRODUCTS", 11 * 3 * 2)
    monkeypatch.setattr(_common, "launch_2d", lambda cols, rows: ((1, 1), (4, 2)))
    rng = np.random.default_rng(9)
    a, b, bias = _draw(rng, "float32", 11, 2), _draw(rng, "float32", 3, 2), _draw(rng, "float32", 3)
    out = _common.gemm(_common.to_device(a), _common.to_device(b), trans_b=True, bias=_common.to_device(bias))
    assert rel_err(out.copy_to_host(), a @ b.T + bias) < TOL["float32"]
    start = _common.to_device(np.full((11, 3), 7.0, np.float32))  # a reused buffer's old values are ignored
    out = _common.gemm(_common.to_device(a), _common.to_device(b), trans_b=True, out=start)
    assert rel_err(out.copy_to_host(), a @ b.T) < TOL["float32"]


def test_the_simulator_keeps_rnnlabs_gemm(monkeypatch):
    """Where cuBLAS cannot run (here the simulator; RNNLAB_CUBLAS=0 anywhere) a product of any
    size is rnnlab's GEMM, and status() says why."""
    from rnnlab.kernels.cuda import _common, _cublas

    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        monkeypatch.setenv("RNNLAB_CUBLAS", "0")
    monkeypatch.setattr(_cublas, "_verdicts", {})
    monkeypatch.setattr(_cublas, "_reasons", {})
    monkeypatch.setattr(_common, "CUBLAS_MIN_PRODUCTS", 0)
    rng = np.random.default_rng(6)
    a, b, bias = _draw(rng, "float32", 9, 4), _draw(rng, "float32", 6, 4), _draw(rng, "float32", 6)
    out = _common.gemm(_common.to_device(a), _common.to_device(b), trans_b=True, bias=_common.to_device(bias))
    assert rel_err(out.copy_to_host(), a @ b.T + bias) < TOL["float32"]
    reason = _cublas.status()["float32"]
    assert reason in ("the CUDA simulator runs no libraries", "RNNLAB_CUBLAS=0")


def test_bias_rows_reach_every_row_past_the_grid():
    """cuBLAS adds a biased product onto rows holding the bias; T*B rows can outnumber the grid's
    65535 in y, so the rows go in a grid-stride loop (here 2 x 2 threads of rows for 11 rows)."""
    from rnnlab.kernels.cuda import _common

    bias = np.arange(3, dtype=np.float32) + 1
    out = _common.to_device(np.zeros((11, 3), np.float32))
    _common.launch(_common.for_dtype("float32").bias_rows_kernel, (1, 2), (4, 2), (out, _common.to_device(bias)))
    assert np.array_equal(out.copy_to_host(), np.tile(bias, (11, 1)))


if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":  # on a GPU only (the simulator runs no libraries; no skips here)
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_large_products_go_to_cublas_where_it_is_installed(dtype, monkeypatch):
        """On a GPU: every product through gemm() with the size threshold lowered to 0, every
        transposition, with and without a bias, then every cell's forward and backward by the
        "gemm" recurrence, against NumPy and the CPU. Where cuBLAS is installed and not turned off,
        cuBLAS must have taken every product (one that failed or disagreed fails here); where it
        is missing or cannot start, or RNNLAB_CUBLAS=0, rnnlab's GEMM must have."""
        from rnnlab.kernels.cuda import _common, _cublas

        usable = _cublas.ready(dtype, _common.own_gemm)
        reason = _cublas.status()[np.dtype(dtype).name]
        if os.environ.get("RNNLAB_CUBLAS", "").strip() == "0":
            assert not usable and reason == "RNNLAB_CUBLAS=0"
        elif not usable:
            assert reason.startswith(("cuBLAS not found", "cuBLAS cannot start")), reason  # failed or disagreed
        monkeypatch.setattr(_common, "CUBLAS_MIN_PRODUCTS", 0)
        calls = []
        multiply = _cublas.multiply
        monkeypatch.setattr(_cublas, "multiply", lambda *args, **kw: calls.append(1) or multiply(*args, **kw))
        rng = np.random.default_rng(7)
        M, K, N = 70, 37, 45
        for trans_a, trans_b in itertools.product([False, True], repeat=2):
            a = _draw(rng, dtype, *((K, M) if trans_a else (M, K)))
            b = _draw(rng, dtype, *((N, K) if trans_b else (K, N)))
            bias = _draw(rng, dtype, N)
            expected = (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b).astype(np.float64)
            for with_bias in (False, True):
                out = _common.gemm(_common.to_device(a), _common.to_device(b), trans_a=trans_a, trans_b=trans_b,
                                   bias=_common.to_device(bias) if with_bias else None)
                assert rel_err(out.copy_to_host(), expected + bias if with_bias else expected) < TOL[dtype]
        assert len(calls) == (8 if usable else 0)
        for mode in ("RNN", "LSTM", "GRU"):
            _check_cell(mode, False, dtype, "gemm", _cell_problem(mode, dtype, seed=11))
        assert (len(calls) > 8) == usable


@pytest.mark.parametrize("dtype", DTYPES)
def test_column_sums(dtype):
    from rnnlab.kernels.cuda import _common

    a = _draw(np.random.default_rng(2), dtype, 7, 5)
    assert rel_err(_common.column_sums(_common.to_device(a)).copy_to_host(), a.sum(axis=0)) < TOL[dtype]


@pytest.mark.parametrize("shape", [(0, B, I), (T, 0, I)], ids=["no-step", "no-sequence"])
def test_empty_sequences_are_refused(shape):
    """Step 0 writes hs[0]: with no step the result would be uninitialised memory, so it is an error."""
    x = np.zeros(shape, np.float32)
    h0 = np.zeros((shape[1], H), np.float32)
    with pytest.raises(ValueError, match=r"x must hold at least one step and one sequence, got shape"):
        gpu.elman_forward(x, np.zeros((H, I), np.float32), np.zeros((H, H), np.float32), np.zeros(H, np.float32),
                          h0, False)


def test_mixed_dtypes_are_refused():
    x = np.zeros((T, B, I), np.float32)
    with pytest.raises(ValueError, match="w_ih has dtype float64"):
        gpu.elman_forward(x, np.zeros((H, I)), np.zeros((H, H), np.float32), np.zeros(H, np.float32),
                          np.zeros((B, H), np.float32), False)


# ---------------------------------------------------------------------------------------------
# Cells: forward and backward (full and truncated) against the CPU kernels
# ---------------------------------------------------------------------------------------------
def _cell_problem(mode, dtype, seed, hidden=H, batch=B):
    rng = np.random.default_rng(seed)
    G = {"RNN": 1, "LSTM": 4, "GRU": 3}[mode]
    bound = 1.0 / np.sqrt(hidden)
    w = lambda *s: rng.uniform(-bound, bound, s).astype(dtype)  # noqa: E731
    return SimpleNamespace(
        x=_draw(rng, dtype, T, batch, I, scale=1.0), w_ih=w(G * hidden, I), w_hh=w(G * hidden, hidden),
        b_ih=w(G * hidden), b_hh=w(G * hidden), h0=_draw(rng, dtype, batch, hidden),
        c0=_draw(rng, dtype, batch, hidden), dy=_draw(rng, dtype, T, batch, hidden, scale=1.0),
        dh_n=_draw(rng, dtype, batch, hidden, scale=1.0), dc_n=_draw(rng, dtype, batch, hidden, scale=1.0),
    )


def _check_cell(mode, relu, dtype, recurrence, p):
    if mode == "RNN":
        bias = p.b_ih + p.b_hh
        ref = kernels.elman_forward(p.x, p.w_ih, p.w_hh, bias, p.h0, relu, 1)
        out = gpu.elman_forward(p.x, p.w_ih, p.w_hh, bias, p.h0, relu, 1, recurrence=recurrence)
        _assert_same([out], [ref], ["hs"], dtype)
        names = ["dx", "dw_ih", "dw_hh", "dbias", "dh0", "dh"]
        for truncate in (0, TRUNCATE):
            _assert_same(gpu.elman_backward(p.x, p.w_ih, p.w_hh, ref, p.dy, p.dh_n, relu, truncate, 1,
                                            recurrence=recurrence),
                         kernels.elman_backward(p.x, p.w_ih, p.w_hh, ref, p.dy, p.dh_n, relu, truncate, 1),
                         [f"{n} (truncate={truncate})" for n in names], dtype)
    elif mode == "LSTM":
        bias = p.b_ih + p.b_hh
        ref = kernels.lstm_forward(p.x, p.w_ih, p.w_hh, bias, p.h0, p.c0, 1)
        out = gpu.lstm_forward(p.x, p.w_ih, p.w_hh, bias, p.h0, p.c0, 1, recurrence=recurrence)
        _assert_same(out, ref, ["hs", "cs", "gates"], dtype)
        names = ["dx", "dw_ih", "dw_hh", "dbias", "dh0", "dc0", "dh"]
        for truncate in (0, TRUNCATE):
            _assert_same(gpu.lstm_backward(p.x, p.w_ih, p.w_hh, *ref, p.dy, p.dh_n, p.dc_n, truncate, 1,
                                           recurrence=recurrence),
                         kernels.lstm_backward(p.x, p.w_ih, p.w_hh, *ref, p.dy, p.dh_n, p.dc_n, truncate, 1),
                         [f"{n} (truncate={truncate})" for n in names], dtype)
    else:
        ref = kernels.gru_forward(p.x, p.w_ih, p.w_hh, p.b_ih, p.b_hh, p.h0, 1)
        out = gpu.gru_forward(p.x, p.w_ih, p.w_hh, p.b_ih, p.b_hh, p.h0, 1, recurrence=recurrence)
        _assert_same(out, ref, ["hs", "gates", "hn"], dtype)
        names = ["dx", "dw_ih", "dw_hh", "db_ih", "db_hh", "dh0", "dh"]
        for truncate in (0, TRUNCATE):
            _assert_same(gpu.gru_backward(p.x, p.w_ih, p.w_hh, *ref, p.dy, p.dh_n, truncate, 1,
                                          recurrence=recurrence),
                         kernels.gru_backward(p.x, p.w_ih, p.w_hh, *ref, p.dy, p.dh_n, truncate, 1),
                         [f"{n} (truncate={truncate})" for n in names], dtype)


# The tiled launch structures (persistent and per-step) call the same per-unit device functions,
# so the persistent kernels are checked in both dtypes and the per-step kernels in float32, the
# default; the resident kernels (what small batches run by default) and "gemm" (one GEMM a step,
# what large batches run where cuBLAS does: here rnnlab's own GEMM stands in) in both dtypes.
CELL_RUNS = [(dtype, recurrence) for recurrence in ("resident", "persistent", "gemm") for dtype in DTYPES]
CELL_RUNS.append(("float32", "per-step"))
CELL_RUN_IDS = [f"{dtype}-{recurrence}" for dtype, recurrence in CELL_RUNS]


@pytest.mark.parametrize("dtype,recurrence", CELL_RUNS, ids=CELL_RUN_IDS)
@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
def test_cell_matches_cpu_kernels(mode, nonlinearity, dtype, recurrence):
    p = _cell_problem(mode, dtype, seed=len(mode) + len(nonlinearity))
    _check_cell(mode, nonlinearity == "relu", dtype, recurrence, p)


@pytest.mark.parametrize("recurrence", ["persistent", "per-step", "gemm"])
@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
def test_cell_matches_cpu_kernels_on_the_full_tile(mode, nonlinearity, recurrence, monkeypatch):
    """The tiled recurrences on STEP_TILE in float32 (and relu), the shape of the other cell
    tests getting SMALL_STEP_TILE, whose one row a thread in the simulator leaves the cells'
    loops over a thread's rows unrun."""
    from rnnlab.kernels.cuda import _common

    monkeypatch.setattr(_common, "STEP_TILE_OVERRIDE", _common.STEP_TILE_OVERRIDE or _common.STEP_TILE)
    p = _cell_problem(mode, "float32", seed=len(mode) + len(nonlinearity) + 1)
    _check_cell(mode, nonlinearity == "relu", "float32", recurrence, p)


@pytest.mark.parametrize("recurrence", ["persistent", "per-step", "gemm"], ids=["persistent-two-blocks", "per-step",
                                                                                "gemm"])
@pytest.mark.parametrize("tile_name", ["STEP_TILE", "SMALL_STEP_TILE"])
@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_several_tiles_with_partial_edges(mode, recurrence, tile_name, monkeypatch):
    """B and H one past and three past a tile, on each shipped tile (or on the one set for every
    shape, RNNLAB_TEST_STEP_TILE): four tiles, two of them partial. The persistent kernel runs
    them on two blocks on a GPU (grid syncs between blocks, and each block takes two tiles per
    step: what happens when a large shape has more tiles than the GPU holds blocks) and on one in
    the simulator; the per-step and "gemm" kernels on four."""
    from rnnlab.kernels.cuda import _common

    tile = _common.STEP_TILE_OVERRIDE or getattr(_common, tile_name)
    monkeypatch.setattr(_common, "PERSISTENT_MAX_BLOCKS", 2)
    monkeypatch.setattr(_common, "STEP_TILE_OVERRIDE", tile)
    batch, hidden = tile.rows + 1, tile.units + 3
    assert _common.step_tiles(batch, hidden, tile) == 4
    _check_cell(mode, False, "float64", recurrence, _cell_problem(mode, "float64", seed=7, hidden=hidden,
                                                                batch=batch))


def test_the_kernels_that_hold_no_step_tile_are_built_once_for_every_tile():
    """Each tile has its own step and persistent kernels; the resident ones (and GRU's bias
    kernel) are the same objects on both, so a process meeting both tiles compiles them once."""
    from rnnlab.kernels.cuda import _common, elman, gru, lstm

    for module, untiled in ((elman, []), (lstm, []), (gru, ["input_bias"])):
        full, small = (module._kernels("float32", tile) for tile in (_common.STEP_TILE, _common.SMALL_STEP_TILE))
        for name in untiled + ["forward_resident", "backward_resident"]:
            assert getattr(small, name) is getattr(full, name), (module.__name__, name)
        for name in ("forward_step", "forward_persistent", "backward_step", "backward_persistent"):
            assert getattr(small, name) is not getattr(full, name), (module.__name__, name)


@pytest.mark.parametrize("rows,units,expected", [
    (1, 1, "SMALL_STEP_TILE"),  # one tile of 8 multiprocessors: a quarter tile gives four
    (1, 4, "SMALL_STEP_TILE"),  # four tiles: sixteen quarter tiles, two a multiprocessor
    (1, 5, "STEP_TILE"),  # twenty quarter tiles would be more than two a multiprocessor
    (2, 4, "STEP_TILE"),  # eight tiles, one a multiprocessor
    (4, 8, "STEP_TILE"),
])
def test_the_step_tile_is_a_quarter_where_the_full_one_leaves_multiprocessors_idle(monkeypatch, rows, units,
                                                                                    expected):
    """On a GPU of 8 multiprocessors, a shape of ``rows`` x ``units`` full tiles."""
    from rnnlab.kernels.cuda import _common

    monkeypatch.setattr(_common, "multiprocessors", lambda: 8)
    full, small = _common.STEP_TILE, _common.SMALL_STEP_TILE
    assert (small.rows * 2, small.units * 2) == (full.rows, full.units)
    assert _common.step_tile(rows * full.rows, units * full.units) == getattr(_common, expected)
    monkeypatch.setattr(_common, "STEP_TILE_OVERRIDE", small)  # set_step_tile: every shape
    assert _common.step_tile(4 * full.rows, 8 * full.units) == small


@pytest.mark.parametrize("max_blocks", [None, 2], ids=["a-block-per-group", "two-blocks-take-turns"])
@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_resident_unit_groups_with_a_partial_edge(mode, max_blocks, monkeypatch):
    """Two units a block over H = 5: three unit groups, the last one partial, at B = 3. On a GPU
    they run on three blocks (each keeps its weights for the whole pass; grid syncs between
    them), or on two, one of which takes two groups in turn and re-stages their weights at every
    switch; in the simulator on one block, taking all three in turn."""
    from rnnlab.kernels.cuda import _common, _resident

    monkeypatch.setattr(_resident, "RESIDENT_MAX_UNITS", 2)
    monkeypatch.setattr(_common, "PERSISTENT_MAX_BLOCKS", max_blocks)
    assert _resident.resident_units(5, 3, 4, 5, np.float64) == 2
    _check_cell(mode, False, "float64", "resident", _cell_problem(mode, "float64", seed=11, hidden=5, batch=3))


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_resident_rows_are_padded_with_zeros_whatever_shared_memory_held(mode, monkeypatch):
    """The resident products read whole groups of 4 k; with K = 5 (and 15 for the GRU's
    backward) a row's last group reaches into its padding. Shared memory starts out as anything
    on a GPU, NaN included; the simulator's starts as zeros, so here it starts as NaN: a padding
    the kernels did not zero would turn every output NaN."""
    from numba.cuda.simulator import kernelapi

    original = kernelapi.FakeCUDAShared.__init__

    def poisoned(self, dynshared_size):
        original(self, dynshared_size)
        self._dynshared[:] = -1  # bytes 0xFF: every float32 and float64 word a NaN

    monkeypatch.setattr(kernelapi.FakeCUDAShared, "__init__", poisoned)
    for dtype in DTYPES:
        _check_cell(mode, False, dtype, "resident", _cell_problem(mode, dtype, seed=5, hidden=5, batch=3))


def test_resident_units_fill_shared_memory_evenly():
    """Units a block holds: as many as fit (matrix rows, vectors and partial sums; one cell a
    thread), then spread evenly over the blocks that takes."""
    from rnnlab.kernels.cuda import _resident

    words = _resident.RES_SHARED_BYTES // 4
    fit = max(u for u in range(1, 1000) if _resident.resident_words(u, 1, 4, 256) <= words)  # LSTM, B=1, H=256
    assert 1 < fit < _resident.RES_THREADS  # bound by memory here
    assert _resident.resident_units(fit + 1, 1, 4, 256, np.float32) == -(-(fit + 1) // 2)  # two blocks, half each
    assert _resident.resident_units(3, 1, 4, 256, np.float32) == 3  # never more units than there are
    assert _resident.resident_units(3, 1, 4, words, np.float32) == 0  # one row alone does not fit
    assert _resident.resident_units(64, _resident.RES_THREADS // 2 + 1, 1, 4, np.float32) == 1  # a cell a thread


def test_at_batch_1_a_resident_lane_gets_one_output_where_it_takes_several_blocks_anyway(monkeypatch):
    """At batch 1 a block that needs company anyway holds RES_LANES // rows a unit units (one
    output a lane of a K-slice), while every block has a multiprocessor of its own; one block
    stays one block (no grid sync), and other batches are left as they fit."""
    from rnnlab.kernels.cuda import _common, _resident

    lanes, threads = _resident.RES_LANES, _resident.RES_THREADS
    monkeypatch.setattr(_common, "multiprocessors", lambda: 64)
    assert _resident.resident_units(2 * threads, 1, 1, 4, np.float32) == lanes  # Elman: 2 * threads / lanes blocks
    assert _resident.resident_units(2 * threads, 1, 4, 4, np.float32) == lanes // 4  # LSTM's four rows a unit
    assert _resident.resident_units(threads, 1, 1, 4, np.float32) == threads  # all in one block
    assert _resident.resident_units(threads, 2, 1, 4, np.float32) == threads // 2  # batch 2: as they fit
    monkeypatch.setattr(_common, "multiprocessors", lambda: 1)
    assert _resident.resident_units(2 * threads, 1, 1, 4, np.float32) == threads  # no room for more blocks


def test_a_resident_recurrence_that_does_not_fit_is_refused():
    from rnnlab.kernels.cuda import _resident

    p = _cell_problem("LSTM", "float32", seed=3, hidden=3)
    big = _resident.RES_THREADS + 1  # one cell a thread: not even one unit of this many sequences fits
    x = np.zeros((2, big, p.x.shape[2]), np.float32)
    state = np.zeros((big, 3), np.float32)
    with pytest.raises(ValueError, match="recurrence='resident': one unit's 4 x 3 weights with"):
        gpu.lstm_forward(x, p.w_ih, p.w_hh, p.b_ih + p.b_hh, state, state, recurrence="resident")
    with pytest.raises(ValueError, match="recurrence must be one of resident, persistent, per-step, gemm, got 'fast'"):
        gpu.lstm_forward(p.x, p.w_ih, p.w_hh, p.b_ih + p.b_hh, p.h0, p.c0, recurrence="fast")


if AVAILABLE and REASON != _device.SIMULATOR:  # the simulator launches through numba-cuda only
    @pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
    def test_a_gpu_launches_every_kernel_through_a_plan(mode):
        """On a GPU every launch of a forward and backward goes through a plan (rnnlab.kernels.
        cuda._launch), none falls back to numba-cuda's own launch, and the numbers match the CPU
        kernels (as every case above does, through the same plans)."""
        from rnnlab.kernels.cuda import _launch

        assert _launch._FAST
        _launch._PLANS.clear()
        _launch.FALLBACKS.clear()
        _check_cell(mode, False, "float32", "resident", _cell_problem(mode, "float32", seed=19, hidden=40, batch=3))
        names = sorted(kernel.py_func.__name__ for kernel, _ in _launch._PLANS)
        assert names and all(_launch._PLANS.values()) and not _launch.FALLBACKS, (_launch._PLANS, _launch.FALLBACKS)
        assert {"gemm_kernel", "forward_resident", "backward_resident"} <= set(names), names


class _Kernel:
    """A kernel that records its launches, (name, blocks, shared bytes, args)."""

    def __init__(self, name, launches):
        self.name, self.launches = name, launches

    def __getitem__(self, config):
        def launch(*args):
            self.launches.append((self.name, config[0], config[3] if len(config) > 3 else 0, args))
        return launch


def _run_fake_recurrence(monkeypatch, recurrence, batch, groups_fit, tiles_fit):
    """run_recurrence on recording kernels: H = 5 in three resident unit groups of 2, four tiles;
    the blocks that fit are all, two, or none."""
    from rnnlab.kernels.cuda import _common, _resident

    def fitting_blocks(kernel, args, count, *rest):
        fit = groups_fit if kernel.name == "resident" else tiles_fit
        return count if fit else (0 if fit is None else 2)

    monkeypatch.setattr(_common, "persistent_blocks", fitting_blocks)
    monkeypatch.setattr(_resident, "resident_units", lambda hidden, batch, rows_per_unit, k, dtype: 2)
    monkeypatch.setattr(_resident, "RESIDENT_AUTO_ROWS_PER_SEQUENCE", 1)
    monkeypatch.setattr(_resident, "step_tiles", lambda batch, hidden, tile: 4)
    launches = []
    kernels = (_Kernel("step", launches), _Kernel("persistent", launches), _Kernel("resident", launches))
    _resident.run_recurrence(kernels, recurrence, tile=_common.STEP_TILE, batch=batch, hidden=5, gates=4,
                             backward=False, dtype=np.float32, steps=range(3), args=("a", "b"))
    return [launch if launch[0] == "step" else launch[:2] + launch[3:] for launch in launches]


@pytest.mark.parametrize("recurrence,batch,groups_fit,tiles_fit,expected", [
    (None, 16, True, True, "resident x3"),  # a small batch, every unit group has a block
    (None, 17, True, True, "persistent x4"),  # past the small batches: tiles, each with a block
    (None, 16, False, True, "persistent x4"),  # not every unit group gets a block
    (None, 17, True, False, "per-step"),  # fewer blocks than tiles: all tiles at once beat tiles in turn (H200)
    ("resident", 17, False, True, "resident x2"),  # asked for: a block takes two groups in turn
    ("persistent", 8, True, False, "persistent x2"),  # asked for: each block takes two tiles per step
    ("persistent", 8, True, None, "per-step"),  # not even one block fits
    ("per-step", 8, True, True, "per-step"),
])
def test_which_launch_runs_the_recurrence(monkeypatch, recurrence, batch, groups_fit, tiles_fit, expected):
    launches = _run_fake_recurrence(monkeypatch, recurrence, batch, groups_fit, tiles_fit)
    if expected == "per-step":
        assert launches == [("step", 4, 0, (t, "a", "b")) for t in range(3)]
    elif expected.startswith("resident"):
        assert launches == [("resident", int(expected[-1]), (2, "a", "b"))]
    else:
        assert launches == [("persistent", int(expected[-1]), ("a", "b"))]


@pytest.mark.parametrize("recurrence,batch,cublas,min_products,backward,expected", [
    (None, 64, True, 6400, False, "gemm"),  # a large batch where cuBLAS runs: one GEMM a step, then the cell math
    (None, 64, True, 6400, True, "gemm"),
    (None, 64, True, 6401, False, "tiles"),  # a step's product too small to pay for its launch (64 x 20 x 5 = 6400)
    (None, 63, True, 0, False, "tiles"),
    (None, 64, False, 0, False, "tiles"),  # without cuBLAS the fused tiles stay
    ("gemm", 1, False, 6400, True, "gemm"),  # asked for: rnnlab's own GEMM then
])
def test_when_the_recurrence_runs_as_one_gemm_a_step(monkeypatch, recurrence, batch, cublas, min_products, backward,
                                                      expected):
    """The "gemm" recurrence: per step the product of every sequence as one GEMM into a buffer
    (forward (B, G*H) = h_{t-1} W_hh^T; backward (B, H) = d_{s+1} W_hh, none where nothing
    crosses), then the cell math launched on the step's tiles with that buffer."""
    from rnnlab.kernels.cuda import _common, _resident

    monkeypatch.setattr(_common, "cublas_usable", lambda dtype: cublas)
    monkeypatch.setattr(_resident, "GEMM_AUTO_MIN_PRODUCTS", min_products)
    products = []
    monkeypatch.setattr(_common, "gemm", lambda a, w, trans_b, out: products.append((a, w, trans_b, out)))
    monkeypatch.setattr(_common, "device_empty", lambda shape, dtype: ("buffer", shape))
    monkeypatch.setattr(_common, "persistent_blocks", lambda kernel, args, count, *rest: count)
    monkeypatch.setattr(_resident, "step_tiles", lambda batch, hidden, tile: 4)
    launches = []
    kernels = (_Kernel("step", launches), _Kernel("persistent", launches), _Kernel("resident", launches))
    factor = (lambda t: None if t == 1 else f"d{t + 1}") if backward else (lambda t: f"h{t - 1}")
    _resident.run_recurrence(kernels, recurrence, tile=_common.STEP_TILE, batch=batch, hidden=5, gates=4,
                             backward=backward, dtype=np.float32, steps=range(3), args=("a", "b"),
                             by_gemm=(_Kernel("from_product", launches), factor, "w_hh"))
    if expected == "tiles":
        assert products == [] and all(launch[0] != "from_product" for launch in launches)
        return
    buffer = ("buffer", (batch, 5 if backward else 20))
    assert launches == [("from_product", 4, 0, (t, buffer, "a", "b")) for t in range(3)]
    steps = [0, 2] if backward else [0, 1, 2]
    assert products == [(factor(t), "w_hh", not backward, buffer) for t in steps]


@pytest.mark.parametrize("batch,hidden,gates,expected", [
    (256, 1024, 4, "gemm"),  # LSTM: 31.5 ms f+b against 46.7 tiled per step
    (256, 1024, 3, "gemm"),  # GRU: 29.4-31.0 against 39.4-39.9 in three calls (40.1 in a fourth)
    (256, 1024, 1, "tiles"),  # Elman: 27.2 against 16.6
    (64, 512, 4, "tiles"),  # LSTM: 10.1 against 4.0 persistent
    (128, 1024, 4, "tiles"),  # LSTM: 37.4 against 27.2
    (1, 64, 1, "resident"),  # Elman: 0.62 against 0.88 persistent
    (4, 64, 4, "resident"),  # LSTM: 1.26 against 1.45
    (8, 256, 4, "resident"),  # LSTM: 1.81 against 5.47 (persistent on the full tile)
    (16, 128, 4, "resident"),  # LSTM: 2.17 against 2.22, level
    (4, 64, 3, "resident"),  # GRU: 1.29 against 1.27, level
    (16, 128, 3, "tiles"),  # GRU: 1.89 against 2.45 resident
    (16, 64, 4, "tiles"),  # LSTM: 1.57 against 2.10
    (16, 256, 1, "tiles"),  # Elman: 1.43 against 1.75
    (4, 64, 1, "tiles"),  # Elman: 0.87 against 0.90
    (16, 64, 3, "tiles"),  # GRU: 1.43 against 2.19
    (16, 64, 1, "tiles"),  # Elman: 0.90 against 1.48
    (32, 128, 4, "tiles"),  # past RESIDENT_AUTO_MAX_BATCH
])
def test_the_recurrence_picked_is_the_one_measured_faster(monkeypatch, batch, hidden, gates, expected):
    """Without ``recurrence=``, the shipped thresholds pick the form that was fastest at these
    shapes on an H200 (f+b, benchmarks/README.md, 2026-11-30), where cuBLAS is usable and every
    block fits: "gemm" only for the products that paid for a cuBLAS call and a second launch
    each step, resident only where W_hh is large against the batch."""
    from rnnlab.kernels.cuda import _common, _resident

    monkeypatch.setattr(_common, "cublas_usable", lambda dtype: True)
    monkeypatch.setattr(_common, "gemm", lambda a, w, trans_b, out: None)
    monkeypatch.setattr(_common, "device_empty", lambda shape, dtype: None)
    monkeypatch.setattr(_common, "persistent_blocks", lambda kernel, args, count, *rest: count)
    monkeypatch.setattr(_resident, "resident_units", lambda hidden, batch, rows_per_unit, k, dtype: 2)
    launches = []
    kernels = (_Kernel("step", launches), _Kernel("persistent", launches), _Kernel("resident", launches))
    _resident.run_recurrence(kernels, None, tile=_common.STEP_TILE, batch=batch, hidden=hidden, gates=gates,
                             backward=False, dtype=np.float32, steps=range(2), args=(),
                             by_gemm=(_Kernel("from_product", launches), lambda t: None, "w_hh"))
    picked = {"from_product": "gemm", "resident": "resident"}.get(launches[0][0], "tiles")
    assert picked == expected


# ---------------------------------------------------------------------------------------------
# The layers with device="cuda"
# ---------------------------------------------------------------------------------------------

def _layer_run(layer, p, truncate):
    y, state_n, trace = layer.forward(p["x"], layer_state(layer, p))
    grads = layer.backward(trace, p["dy"], layer_dstate(layer, p), truncate=truncate)
    return y, state_n, trace, grads


@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
def test_layer_on_gpu_kernels_matches_cpu(mode, nonlinearity):
    """A 2-layer bidirectional layer with ``device="cuda"``: same outputs, Trace and gradients as
    the same layer on the CPU, and as the float64 NumPy reference."""
    layer = make_layer(mode, I, 4, num_layers=2, bidirectional=True, nonlinearity=nonlinearity, seed=3)
    p = random_problem(layer, 3, B, np.random.default_rng(4))
    y, state_n, trace, grads = _layer_run(layer, p, truncate=2)
    options = dict(num_layers=2, bidirectional=True, dtype=layer.dtype.name, device="cuda")
    if mode == "RNN":
        options["nonlinearity"] = nonlinearity
    gpu_layer = type(layer)(I, 4, **options)
    assert gpu_layer.device == "cuda" and "device='cuda'" in repr(gpu_layer)
    gpu_layer.load_state_dict(layer.state_dict())
    gy, gstate_n, gtrace, ggrads = _layer_run(gpu_layer, p, truncate=2)

    ours = [gy, *(gstate_n if mode == "LSTM" else [gstate_n])]
    theirs = [y, *(state_n if mode == "LSTM" else [state_n])]
    names = ["y", "h_n", "c_n"][: len(ours)]
    for layer_index, direction in itertools.product(range(2), range(2)):
        for record in (*layer.record_names, "dh"):
            ours.append(gtrace.get(record, layer_index, direction))
            theirs.append(trace.get(record, layer_index, direction))
            names.append(f"trace.{record}[{layer_index},{direction}]")
    assert list(ggrads) == list(grads)
    ours += list(ggrads.values())
    theirs += list(grads.values())
    names += [f"grad.{k}" for k in grads]
    _assert_same(ours, theirs, names, "float64")

    ry, rh_n, _, _, rgrads = reference_run(layer, p, truncate=2)
    _assert_same([gy, gstate_n[0] if mode == "LSTM" else gstate_n, *(ggrads[k] for k in grads)],
                 [ry, rh_n, *(rgrads[k] for k in grads)], ["y", "h_n", *(f"grad.{k}" for k in grads)], "float64")


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_a_cell_and_a_batch_first_layer_on_gpu_kernels_match_cpu(mode):
    """The one step of a cell and the (B, T, ...) layout of batch_first are the host's work around
    the same kernels: with ``device="cuda"`` they give the CPU's step and gradients."""
    import rnnlab

    rng = np.random.default_rng(5)
    cpu_cell = getattr(rnnlab, mode + "Cell")(I, H, dtype="float64", seed=1)
    gpu_cell = getattr(rnnlab, mode + "Cell")(I, H, dtype="float64", device="cuda")
    gpu_cell.load_state_dict(cpu_cell.state_dict())
    x, h, c, dh, dc = _draw(rng, "float64", B, I), *(_draw(rng, "float64", B, H) for _ in range(4))
    runs = []
    for cell in (gpu_cell, cpu_cell):
        state, trace = cell(x, (h, c) if mode == "LSTM" else h)
        grads = cell.backward(trace, (dh, dc) if mode == "LSTM" else dh)
        runs.append([*(state if mode == "LSTM" else (state,)), *grads.values()])
    _assert_same(*runs, ["h", "c"][: 2 if mode == "LSTM" else 1] + list(grads), "float64")

    cpu_layer = make_layer(mode, I, 4, num_layers=2, bidirectional=True, seed=3)
    gpu_layer = type(cpu_layer)(I, 4, 2, batch_first=True, bidirectional=True, dtype="float64", device="cuda")
    gpu_layer.load_state_dict(cpu_layer.state_dict())
    p = random_problem(cpu_layer, 3, B, rng)
    y, _, trace = cpu_layer(p["x"])
    gy, _, gtrace = gpu_layer(np.ascontiguousarray(p["x"].transpose(1, 0, 2)))
    grads = cpu_layer.backward(trace, p["dy"], truncate=2)
    ggrads = gpu_layer.backward(gtrace, p["dy"].transpose(1, 0, 2), truncate=2)
    _assert_same([gy.transpose(1, 0, 2), ggrads["input"].transpose(1, 0, 2)], [y, grads["input"]], ["y", "input"],
                 "float64")


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_a_layer_with_lengths_on_gpu_kernels_matches_cpu(mode):
    """Sequences of their own lengths run as the host's segments of the same kernels (without the
    forward's device copies, which backward's segments do not line up with): the CPU's numbers."""
    cpu_layer = make_layer(mode, I, 4, num_layers=2, bidirectional=True, seed=3)
    gpu_layer = type(cpu_layer)(I, 4, 2, bidirectional=True, dtype="float64", device="cuda")
    gpu_layer.load_state_dict(cpu_layer.state_dict())
    p = random_problem(cpu_layer, 5, 4, np.random.default_rng(6))
    lengths = [2, 5, 1, 4]
    runs = []
    for layer in (gpu_layer, cpu_layer):
        y, state_n, trace = layer(p["x"], layer_state(layer, p), lengths)
        grads = layer.backward(trace, p["dy"], layer_dstate(layer, p), truncate=2)
        runs.append([y, *(state_n if mode == "LSTM" else (state_n,)), trace["dh"], *grads.values()])
    _assert_same(*runs, ["y", *(["h_n", "c_n"] if mode == "LSTM" else ["h_n"]), "dh", *grads], "float64")


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_a_layers_backward_uploads_only_the_gradients_coming_in(mode, monkeypatch):
    """What the forward uploaded and computed stays on the device with the trace: the backward
    copies up dy and the final-state gradients, not x, the weights or the records again. A
    second trace of the same layer keeps its own copies."""
    from rnnlab.kernels.cuda import _memory

    layer = make_layer(mode, I, 4, num_layers=2, seed=3)
    gpu_layer = type(layer)(I, 4, num_layers=2, dtype=layer.dtype.name, device="cuda")
    gpu_layer.load_state_dict(layer.state_dict())
    p = random_problem(layer, 3, B, np.random.default_rng(4))
    first = gpu_layer.forward(p["x"], layer_state(gpu_layer, p))[2]
    second = gpu_layer.forward(2 * p["x"], layer_state(gpu_layer, p))[2]
    uploads = []
    upload = _memory.to_device
    monkeypatch.setattr(_memory, "to_device", lambda a: uploads.append(a.shape) or upload(a))
    grads = {name: gpu_layer.backward(trace, p["dy"], layer_dstate(gpu_layer, p)) for name, trace in
             (("first", first), ("second", second))}
    incoming = 3 if mode == "LSTM" else 2  # dy (or dL/dy of the layer above), dh_n (, dc_n)
    assert len(uploads) == 2 * 2 * incoming, uploads  # two traces, two layers
    expected = layer.backward(layer.forward(2 * p["x"], layer_state(layer, p))[2], p["dy"], layer_dstate(layer, p))
    _assert_same(list(grads["second"].values()), list(expected.values()), list(expected), "float32")


@pytest.mark.parametrize("preset,cell", [("hello", None), ("adding-lstm", "gru")])
def test_training_on_the_gpu_takes_the_cpus_steps(preset, cell):
    """A preset trained three steps with ``model.device = "cuda"`` (what ``rnnlab train --device
    cuda`` and the lab run) has the CPU's losses, gradient norms and weights: the layers, the
    readout, the loss and the optimizer together, not only each kernel."""
    from rnnlab.spec import load_preset
    from rnnlab.train.trainer import Trainer

    # SGD: Adam's first steps are about lr * sign(g), which magnifies rounding where |g| ~ eps
    overrides = {"train.steps": 3, "train.batch_size": 2, "train.optimizer": "sgd"}
    if cell:
        overrides.update({"model.cell": cell, "model.hidden_size": 6, "task.length": 8})
    runs = {}
    for device in ("cpu", "cuda"):
        trainer = Trainer(load_preset(preset).with_overrides({**overrides, "model.device": device}))
        assert trainer.model.rnn.device == device and (trainer.model.rnn._kernels is gpu) == (device == "cuda")
        records = [trainer.train_step() for _ in range(3)]
        runs[device] = ([r.loss for r in records], [r.grad_norm for r in records], trainer.model.state_dict())
    (cpu_loss, cpu_norm, cpu_weights), (gpu_loss, gpu_norm, gpu_weights) = runs["cpu"], runs["cuda"]
    np.testing.assert_allclose(gpu_loss, cpu_loss, rtol=1e-5)
    np.testing.assert_allclose(gpu_norm, cpu_norm, rtol=1e-5)
    assert list(gpu_weights) == list(cpu_weights)
    errors = {k: rel_err(gpu_weights[k], w) for k, w in cpu_weights.items()}
    assert all(e < 1e-5 for e in errors.values()), errors
