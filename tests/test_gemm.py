"""The per-step recurrent product (``kernels._gemm.matmul_into`` over weights packed by
``pack_panels``): correct against a float64 product at any shape, including the panels' zero
padding and every tile shape, and deterministic: a row's result does not depend on the batch it
sits in (the property that keeps one-call and threaded kernel paths bit-identical)."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnlab.kernels._gemm import matmul_add_into, matmul_into, pack_panels, pack_panels_t


@numba.njit
def _product(a, w):
    out = np.full((a.shape[0], w.shape[1]), np.nan, a.dtype)  # every element must be written
    matmul_into(a, pack_panels(w), out)
    return out


def _draw(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@given(B=st.integers(1, 13), K=st.integers(1, 70), N=st.integers(1, 90), seed=st.integers(0, 2**16),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_matches_float64_product(B, K, N, seed, dtype):
    rng = np.random.default_rng(seed)
    a, w = _draw(rng, (B, K), dtype), _draw(rng, (K, N), dtype)
    got = _product(a, w)
    exact = a.astype(np.float64) @ w.astype(np.float64)
    scale = np.abs(a).astype(np.float64) @ np.abs(w).astype(np.float64)  # error bound ~ K eps |a||w|
    eps = np.finfo(dtype).eps
    assert np.all(np.abs(got - exact) <= 2 * K * eps * scale + 1e-30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N", [5, 24, 100, 257])
def test_row_results_do_not_depend_on_batch(dtype, N):
    rng = np.random.default_rng(1)
    a, w = _draw(rng, (11, 37), dtype), _draw(rng, (37, N), dtype)
    whole = _product(a, w)  # tiles of 4 rows, then a 3-row tile
    for start, stop in [(0, 1), (3, 5), (2, 5), (1, 9), (0, 11)]:
        assert np.array_equal(_product(a[start:stop], w), whole[start:stop])


def test_writes_only_its_columns():
    """The last panel is zero-padded: columns past N must not be written into out's neighbours."""
    rng = np.random.default_rng(2)
    a, w = _draw(rng, (5, 8), np.float32), _draw(rng, (8, 13), np.float32)
    buffer = np.full((5, 20), 7.0, np.float32)
    out = buffer[:, :13]
    matmul_into_strided(a, pack_panels(w), out)
    assert np.array_equal(buffer[:, 13:], np.full((5, 7), 7.0, np.float32))
    np.testing.assert_allclose(out, a @ w, rtol=1e-5, atol=1e-5)


@numba.njit
def matmul_into_strided(a, wp, out):
    matmul_into(a, wp, out)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (16, 64), (33, 100)])
def test_packing_a_transpose_equals_packing_the_transposed_matrix(dtype, shape):
    w = _draw(np.random.default_rng(3), shape, dtype)
    assert np.array_equal(pack_panels_t(w), pack_panels(np.ascontiguousarray(w.T)))


@numba.njit
def _two_part_product(x, u, h, v):
    out = np.full((x.shape[0], u.shape[1]), np.nan, x.dtype)
    matmul_into(x, pack_panels(u), out)
    matmul_add_into(h, pack_panels(v), out)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B,N", [(1, 5), (2, 24), (3, 40), (4, 100), (9, 257)])
def test_accumulating_continues_the_chains(dtype, B, N):
    """x @ u then += h @ v is, bit for bit, the one product [x, h] @ [u; v]."""
    rng = np.random.default_rng(4)
    x, h = _draw(rng, (B, 7), dtype), _draw(rng, (B, 12), dtype)
    u, v = _draw(rng, (7, N), dtype), _draw(rng, (12, N), dtype)
    joined = _product(np.ascontiguousarray(np.concatenate([x, h], axis=1)), np.concatenate([u, v], axis=0))
    assert np.array_equal(_two_part_product(x, u, h, v), joined)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packing_pads_with_zeros_and_handles_empty_matrices(dtype):
    w = _draw(np.random.default_rng(5), (6, 29), dtype)
    for packed in (pack_panels(w), pack_panels_t(np.ascontiguousarray(w.T))):
        P, K, W = packed.shape
        assert (P, K) == (-(-29 // W), 6)
        flat = packed.transpose(1, 0, 2).reshape(K, P * W)
        assert np.array_equal(flat[:, :29], w) and not flat[:, 29:].any()
    assert pack_panels(np.zeros((3, 0), dtype)).shape[0] == 0


def test_mismatched_or_strided_arguments_are_refused():
    rng = np.random.default_rng(6)
    a, w = _draw(rng, (5, 8), np.float32), _draw(rng, (8, 30), np.float32)
    wp = pack_panels(w)
    with pytest.raises(ValueError, match="do not agree"):
        matmul_into_strided(a[:4], wp, np.empty((5, 30), np.float32))  # rows of a and out
    with pytest.raises(ValueError, match="do not agree"):
        matmul_into_strided(np.ascontiguousarray(a[:, :7]), wp, np.empty((5, 30), np.float32))  # K
    with pytest.raises(ValueError, match="do not agree"):
        matmul_into_strided(a, wp, np.empty((5, 60), np.float32))  # N beyond the panels
    with pytest.raises(ValueError, match="contiguous last axis"):
        matmul_into_strided(a, wp, np.empty((5, 60), np.float32)[:, ::2])
    with pytest.raises(ValueError, match="contiguous last axis"):
        matmul_into_strided(np.asfortranarray(a), wp, np.empty((5, 30), np.float32))
    with pytest.raises(numba.core.errors.TypingError, match="one float dtype"):
        matmul_into_strided(a.astype(np.float64), wp, np.empty((5, 30), np.float32))
