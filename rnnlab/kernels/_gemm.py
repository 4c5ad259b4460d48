"""Register-blocked products for the per-step recurrence: out = a @ w, one FMA chain per element.

Every step of a recurrent net multiplies a few rows (the batch, or one thread's share of it) by
the same weight matrix. BLAS is built for one big product: it re-packs ``w`` on every call and
costs about a microsecond to set up; a plain loop over ``out`` (``out[n] += a[k] * w[k, n]``)
loads and stores ``out`` once per multiply-add. Here ``w`` is packed once per kernel call
(:func:`pack_panels`) into panels of a few SIMD vectors' width, each a contiguous (K, width)
block, and a tile of ``out`` (up to 4 rows by up to 9 vectors) stays in registers for the whole
sum over k: each loaded vector of ``w`` feeds up to four multiply-adds, ``out`` is written once,
and a panel is read down contiguously while it sits in cache for the next block of rows.

The tile is emitted directly as LLVM vector code (:func:`fma_tile`, a numba intrinsic): numba's
loop vectoriser does not keep accumulators in registers across an outer loop.

Every element is the same chain ``acc = fma(a[i, k], w[k, j], acc)`` for k = 0, 1, ..., K-1,
started from 0, whatever tile, row split or column position computes it: results do not depend
on the batch size or on how rows are split across threads.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import helper, jit

#: SIMD lanes per vector: 32 bytes (one AVX2 register); wider hardware runs them as they are.
VECTOR_BYTES = 32

#: Vectors per packed panel: a panel (K, 3 vectors) by 4 rows is 12 accumulators, which leaves
#: AVX2's 16 registers room for the loaded vectors and hides the FMA latency.
PANEL_VECS = 3


def _lanes(dtype: types.Float) -> int:
    return VECTOR_BYTES // (dtype.bitwidth // 8)


def _intp(value: int) -> ir.Constant:
    return ir.Constant(cgutils.intp_t, value)


def _address(builder, data, offset_bytes):
    """data (a typed pointer) advanced by offset_bytes, same pointer type."""
    base = builder.ptrtoint(data, cgutils.intp_t)
    return builder.inttoptr(builder.add(base, offset_bytes), data.type)


@intrinsic(prefer_literal=True)
def fma_tile(typingctx, out, a, wp, i0, p0, accumulate, rows, vecs):
    """out[i0:i0+rows, p0*W : p0*W + vecs*L] = a[i0:i0+rows] @ w[:, same columns] (``+=`` when
    ``accumulate``: the chains start from out's values instead of 0).

    ``wp`` (P, K, W) is :func:`pack_panels`'s packing of w (W = PANEL_VECS * L lanes); vector v of
    the tile lies in panel p0 + v // PANEL_VECS. ``rows`` and ``vecs`` are compile-time constants.
    Columns at or past out.shape[1] (the panels' zero padding) are not stored.
    """
    if not (isinstance(rows, types.IntegerLiteral) and isinstance(vecs, types.IntegerLiteral)):
        return None
    R, V = rows.literal_value, vecs.literal_value
    dtype = out.dtype
    sig = types.void(out, a, wp, i0, p0, accumulate, rows, vecs)

    def codegen(context, builder, signature, args):
        out_t, a_t, wp_t, i0_t, p0_t = signature.args[:5]
        out_a = context.make_array(out_t)(context, builder, args[0])
        a_a = context.make_array(a_t)(context, builder, args[1])
        wp_a = context.make_array(wp_t)(context, builder, args[2])
        i0_v = context.cast(builder, args[3], i0_t, types.intp)
        p0_v = context.cast(builder, args[4], p0_t, types.intp)
        scalar = context.get_value_type(dtype)
        L = _lanes(dtype)
        itemsize = dtype.bitwidth // 8
        vec = ir.VectorType(scalar, L)
        i32 = ir.IntType(32)
        undef = ir.Constant(vec, ir.Undefined)
        broadcast_mask = ir.Constant(ir.VectorType(i32, L), [ir.Constant(i32, 0)] * L)
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3),
                                             f"llvm.fma.v{L}{scalar.intrinsic_name}")
        K = cgutils.unpack_tuple(builder, a_a.shape, 2)[1]
        a_stride = cgutils.unpack_tuple(builder, a_a.strides, 2)[0]
        out_stride = cgutils.unpack_tuple(builder, out_a.strides, 2)[0]
        n_cols = cgutils.unpack_tuple(builder, out_a.shape, 2)[1]
        panel_stride, k_stride, _ = cgutils.unpack_tuple(builder, wp_a.strides, 3)

        zero = ir.Constant(vec, [ir.Constant(scalar, 0.0)] * L)
        acc = [[cgutils.alloca_once_value(builder, zero) for _ in range(V)] for _ in range(R)]
        first_col = builder.mul(p0_v, _intp(PANEL_VECS * L))
        out_rows = [_address(builder, out_a.data, builder.mul(builder.add(i0_v, _intp(r)), out_stride)) for r in range(R)]
        with builder.if_then(context.cast(builder, args[5], signature.args[5], types.boolean)):
            for r in range(R):
                for v in range(V):
                    col = builder.add(first_col, _intp(v * L))
                    source = cgutils.gep(builder, out_rows[r], col)
                    whole = builder.icmp_signed("<=", builder.add(col, _intp(L)), n_cols)
                    with builder.if_else(whole) as (full, partial):
                        with full:
                            builder.store(builder.load(builder.bitcast(source, vec.as_pointer()), align=itemsize),
                                          acc[r][v])
                        with partial:  # the last panel's edge: load the lanes that exist
                            for lane in range(L):
                                inside = builder.icmp_signed("<", builder.add(col, _intp(lane)), n_cols)
                                with builder.if_then(inside):
                                    builder.store(builder.insert_element(
                                        builder.load(acc[r][v]), builder.load(cgutils.gep(builder, source, lane)),
                                        ir.Constant(i32, lane)), acc[r][v])
        a_rows = [_address(builder, a_a.data, builder.mul(builder.add(i0_v, _intp(r)), a_stride)) for r in range(R)]
        # vector v starts at panel p0 + v // PANEL_VECS, column (v % PANEL_VECS) * L
        w_starts = [_address(builder, wp_a.data, builder.add(
            builder.mul(builder.add(p0_v, _intp(v // PANEL_VECS)), panel_stride), _intp((v % PANEL_VECS) * L * itemsize)))
            for v in range(V)]
        with cgutils.for_range(builder, K) as loop:
            k_offset = builder.mul(loop.index, k_stride)
            w_vecs = [builder.load(builder.bitcast(_address(builder, start, k_offset), vec.as_pointer()), align=itemsize)
                      for start in w_starts]
            for r in range(R):
                a_rk = builder.load(cgutils.gep(builder, a_rows[r], loop.index))
                a_vec = builder.shuffle_vector(builder.insert_element(undef, a_rk, ir.Constant(i32, 0)),
                                               undef, broadcast_mask)
                for v in range(V):
                    builder.store(builder.call(fma, [a_vec, w_vecs[v], builder.load(acc[r][v])]), acc[r][v])

        for r in range(R):
            for v in range(V):
                col = builder.add(first_col, _intp(v * L))
                target = cgutils.gep(builder, out_rows[r], col)
                value = builder.load(acc[r][v])
                whole = builder.icmp_signed("<=", builder.add(col, _intp(L)), n_cols)
                with builder.if_else(whole) as (full, partial):
                    with full:
                        builder.store(value, builder.bitcast(target, vec.as_pointer()), align=itemsize)
                    with partial:  # the last panel's edge: store the lanes that exist
                        for lane in range(L):
                            inside = builder.icmp_signed("<", builder.add(col, _intp(lane)), n_cols)
                            with builder.if_then(inside):
                                builder.store(builder.extract_element(value, ir.Constant(i32, lane)),
                                              cgutils.gep(builder, target, lane))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def panel_width(typingctx, array):
    """Columns per packed panel for the array's dtype (PANEL_VECS SIMD vectors; a constant)."""
    width = PANEL_VECS * _lanes(array.dtype)

    def codegen(context, builder, signature, args):
        return context.get_constant(types.intp, width)

    return types.intp(array), codegen


@jit
def pack_panels(w):
    """w (K, N) as panels (P, K, W): panel p holds columns p*W .. p*W+W-1, zero-padded past N.

    For ``a @ w``; :func:`pack_panels_t` packs a transpose without forming it.
    """
    K, N = w.shape
    W = panel_width(w)
    P = (N + W - 1) // W
    wp = np.zeros((P, K, W), w.dtype)
    for p in range(P):
        width = min(W, N - p * W)
        for k in range(K):
            src = w[k, p * W: p * W + width]
            dst = wp[p, k]
            for c in range(width):
                dst[c] = src[c]
    return wp


@jit
def pack_panels_t(w):
    """:func:`pack_panels` of w.T for w (N, K): the panels for ``a @ w.T`` (rows of w read in order)."""
    N, K = w.shape
    W = panel_width(w)
    P = (N + W - 1) // W
    wp = np.zeros((P, K, W), w.dtype)
    for p in range(P):
        panel = wp[p]
        for c in range(min(W, N - p * W)):
            src = w[p * W + c]
            for k in range(K):
                panel[k, c] = src[k]
    return wp


@helper
def _tiles(a, wp, out, accumulate):
    """The tiling behind :func:`matmul_into` and :func:`matmul_add_into`.

    From 4 rows up, each panel runs down every 4-row block while it is in cache; a last block
    of 1-3 rows, and smaller batches, take wider tiles (up to 3 panels a row) to keep 9-12
    independent accumulators.
    """
    B = a.shape[0]
    P = wp.shape[0]
    full = B - B % 4
    for p in range(P):
        for i in range(0, full, 4):
            fma_tile(out, a, wp, i, p, accumulate, 4, 3)
    rest = B - full
    if rest == 3:
        for p in range(P):
            fma_tile(out, a, wp, full, p, accumulate, 3, 3)
    elif rest == 2:
        p = 0
        while p + 2 <= P:
            fma_tile(out, a, wp, full, p, accumulate, 2, 6)
            p += 2
        if p < P:
            fma_tile(out, a, wp, full, p, accumulate, 2, 3)
    elif rest == 1:
        p = 0
        while p + 3 <= P:
            fma_tile(out, a, wp, full, p, accumulate, 1, 9)
            p += 3
        while p < P:
            fma_tile(out, a, wp, full, p, accumulate, 1, 3)
            p += 1


@helper
def matmul_into(a, wp, out):
    """out = a @ w for a (B, K) and out (B, N) with contiguous rows, wp = pack_panels(w)."""
    _tiles(a, wp, out, False)


@helper
def matmul_add_into(a, wp, out):
    """out += a @ w, the chains continuing from out's values: ``matmul_into(x, u); matmul_add_into(h, v)``
    gives exactly the chains of ``[x, h] @ [u; v]``."""
    _tiles(a, wp, out, True)
