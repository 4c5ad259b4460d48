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
started from 0 (from out's value for :func:`matmul_add_into`), whatever tile, row split or column
position computes it: results do not depend on the batch size or on how rows are split across
threads.

``matmul_into``/``matmul_add_into`` are kernels of their own (compiled once per dtype and cached),
not helpers inlined into every caller: the tiles are a lot of code for LLVM to optimise, and the
edges of the last panel use masked loads and stores rather than a branch per lane for the same
reason (cold compile of ``matmul_into`` 2.8 -> 0.7 s).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
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


def _i32(value: int) -> ir.Constant:
    return ir.Constant(ir.IntType(32), value)


def _address(builder, data, offset_bytes):
    """data (a typed pointer) advanced by offset_bytes, same pointer type."""
    base = builder.ptrtoint(data, cgutils.intp_t)
    return builder.inttoptr(builder.add(base, offset_bytes), data.type)


class _Vectors:
    """LLVM vector helpers for one dtype: L lanes, unaligned loads and stores, broadcast, FMA."""

    def __init__(self, context, builder, dtype):
        self.builder = builder
        self.scalar = context.get_value_type(dtype)
        self.lanes = _lanes(dtype)
        self.itemsize = dtype.bitwidth // 8
        self.type = ir.VectorType(self.scalar, self.lanes)
        self.zero = ir.Constant(self.type, [ir.Constant(self.scalar, 0.0)] * self.lanes)
        self._undef = ir.Constant(self.type, ir.Undefined)
        self._fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(self.type, [self.type] * 3),
            f"llvm.fma.v{self.lanes}{self.scalar.intrinsic_name}")

    def load(self, ptr):
        return self.builder.load(self.builder.bitcast(ptr, self.type.as_pointer()), align=self.itemsize)

    def store(self, value, ptr):
        self.builder.store(value, self.builder.bitcast(ptr, self.type.as_pointer()), align=self.itemsize)

    def broadcast(self, scalar):
        b = self.builder
        one = b.insert_element(self._undef, scalar, _i32(0))
        return b.shuffle_vector(one, self._undef, ir.Constant(ir.VectorType(ir.IntType(32), self.lanes),
                                                              [_i32(0)] * self.lanes))

    def fma(self, x, y, z):
        return self.builder.call(self._fma, [x, y, z])

    def _mask(self, col, n_cols):
        """Lanes col+i < n_cols as an <L x i1> mask."""
        b, i64 = self.builder, cgutils.intp_t
        left = b.insert_element(ir.Constant(ir.VectorType(i64, self.lanes), ir.Undefined), b.sub(n_cols, col), _i32(0))
        left = b.shuffle_vector(left, ir.Constant(left.type, ir.Undefined),
                                ir.Constant(ir.VectorType(ir.IntType(32), self.lanes), [_i32(0)] * self.lanes))
        return b.icmp_signed("<", ir.Constant(left.type, list(range(self.lanes))), left)

    def _masked(self, name, ret, args):
        b = self.builder
        mask_type = ir.VectorType(ir.IntType(1), self.lanes)
        arg_types = {"load": [self.type.as_pointer(), ir.IntType(32), mask_type, self.type],
                     "store": [self.type, self.type.as_pointer(), ir.IntType(32), mask_type]}[name]
        fn = cgutils.get_or_insert_function(b.module, ir.FunctionType(ret, arg_types),
                                            f"llvm.masked.{name}.v{self.lanes}{self.scalar.intrinsic_name}.p0")
        return b.call(fn, args)

    def load_clipped(self, slot, row, col, n_cols):
        """slot (an alloca) = row[col : col+L]; lanes at or past n_cols (the last panel's zero
        padding) are not read and keep slot's value."""
        b = self.builder
        ptr = cgutils.gep(b, row, col)
        with b.if_else(b.icmp_signed("<=", b.add(col, _intp(self.lanes)), n_cols)) as (whole, edge):
            with whole:
                b.store(self.load(ptr), slot)
            with edge:
                b.store(self._masked("load", self.type, [b.bitcast(ptr, self.type.as_pointer()), _i32(self.itemsize),
                                                         self._mask(col, n_cols), b.load(slot)]), slot)

    def store_clipped(self, value, row, col, n_cols):
        """row[col : col+L] = value; lanes at or past n_cols are not written."""
        b = self.builder
        ptr = cgutils.gep(b, row, col)
        with b.if_else(b.icmp_signed("<=", b.add(col, _intp(self.lanes)), n_cols)) as (whole, edge):
            with whole:
                self.store(value, ptr)
            with edge:
                self._masked("store", ir.VoidType(), [value, b.bitcast(ptr, self.type.as_pointer()),
                                                      _i32(self.itemsize), self._mask(col, n_cols)])


@intrinsic(prefer_literal=True)
def fma_tile(typingctx, out, a, wp, i0, p0, accumulate, rows, vecs):
    """out[i0:i0+rows, p0*W : p0*W + vecs*L] = a[i0:i0+rows] @ w[:, same columns] (``+=`` when
    ``accumulate``: the chains start from out's values instead of 0).

    ``wp`` (P, K, W) is :func:`pack_panels`'s packing of w (W = PANEL_VECS * L lanes); vector v of
    the tile lies in panel p0 + v // PANEL_VECS. ``rows`` and ``vecs`` are compile-time constants.
    Columns at or past out.shape[1] (the panels' zero padding) are neither read nor written.
    """
    if not (isinstance(rows, types.IntegerLiteral) and isinstance(vecs, types.IntegerLiteral)):
        return None
    if not (isinstance(out.dtype, types.Float) and out.dtype == a.dtype == wp.dtype):
        raise TypingError(f"fma_tile needs one float dtype, got {out.dtype}, {a.dtype}, {wp.dtype}")
    R, V = rows.literal_value, vecs.literal_value
    sig = types.void(out, a, wp, i0, p0, accumulate, rows, vecs)

    def codegen(context, builder, signature, args):
        out_t, a_t, wp_t, i0_t, p0_t, accumulate_t = signature.args[:6]
        out_a, a_a, wp_a = (context.make_array(t)(context, builder, v) for t, v in zip((out_t, a_t, wp_t), args))
        i0_v = context.cast(builder, args[3], i0_t, types.intp)
        p0_v = context.cast(builder, args[4], p0_t, types.intp)
        vec = _Vectors(context, builder, out_t.dtype)
        L = vec.lanes
        K = cgutils.unpack_tuple(builder, a_a.shape, 2)[1]
        n_cols = cgutils.unpack_tuple(builder, out_a.shape, 2)[1]
        panel_stride, k_stride, _ = cgutils.unpack_tuple(builder, wp_a.strides, 3)

        def rows_of(array):  # pointers to rows i0 .. i0+R-1
            stride = cgutils.unpack_tuple(builder, array.strides, 2)[0]
            return [_address(builder, array.data, builder.mul(builder.add(i0_v, _intp(r)), stride)) for r in range(R)]

        out_rows, a_rows = rows_of(out_a), rows_of(a_a)
        first_col = builder.mul(p0_v, _intp(PANEL_VECS * L))
        cols = [builder.add(first_col, _intp(v * L)) for v in range(V)]
        # vector v of w: panel p0 + v // PANEL_VECS, lanes from column (v % PANEL_VECS) * L
        w_starts = [_address(builder, wp_a.data, builder.add(
            builder.mul(builder.add(p0_v, _intp(v // PANEL_VECS)), panel_stride),
            _intp((v % PANEL_VECS) * L * vec.itemsize))) for v in range(V)]

        # R x V accumulators; allocas in the entry block, which LLVM promotes to registers
        acc = [[cgutils.alloca_once_value(builder, vec.zero) for _ in range(V)] for _ in range(R)]
        with builder.if_then(context.cast(builder, args[5], accumulate_t, types.boolean)):
            for r in range(R):
                for v in range(V):
                    vec.load_clipped(acc[r][v], out_rows[r], cols[v], n_cols)
        with cgutils.for_range(builder, K) as loop:  # acc += a[:, k] (x) w[k, :], k in order
            k_offset = builder.mul(loop.index, k_stride)
            w_k = [vec.load(_address(builder, start, k_offset)) for start in w_starts]
            for r in range(R):
                a_rk = vec.broadcast(builder.load(cgutils.gep(builder, a_rows[r], loop.index)))
                for v in range(V):
                    builder.store(vec.fma(a_rk, w_k[v], builder.load(acc[r][v])), acc[r][v])
        for r in range(R):
            for v in range(V):
                vec.store_clipped(builder.load(acc[r][v]), out_rows[r], cols[v], n_cols)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def panel_width(typingctx, array):
    """Columns per packed panel for the array's dtype (PANEL_VECS SIMD vectors; a constant)."""
    width = PANEL_VECS * _lanes(array.dtype)

    def codegen(context, builder, signature, args):
        return context.get_constant(types.intp, width)

    return types.intp(array), codegen


@helper
def _empty_panels(P, K, W, N, dtype):
    """Panels to fill, with the last panel's columns past N (the zero padding) already zero."""
    wp = np.empty((P, K, W), dtype)
    if P > 0:
        wp[P - 1, :, N - (P - 1) * W:] = 0
    return wp


@jit
def pack_panels(w):
    """w (K, N) as panels (P, K, W): panel p holds columns p*W .. p*W+W-1, zero-padded past N.

    For ``a @ w``; :func:`pack_panels_t` packs a transpose without forming it.
    """
    K, N = w.shape
    W = panel_width(w)
    P = (N + W - 1) // W
    wp = _empty_panels(P, K, W, N, w.dtype)
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
    wp = _empty_panels(P, K, W, N, w.dtype)
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
    B, K = a.shape
    P = wp.shape[0]
    # the tiles index raw memory (kernels compile without bounds checks): a wrong caller must fail loudly
    itemsize = out.itemsize
    if (wp.shape[1] != K or wp.shape[2] != panel_width(out) or out.shape[0] != B
            or P != (out.shape[1] + wp.shape[2] - 1) // wp.shape[2]):
        raise ValueError("matmul_into: shapes of a (B, K), packed w (P, K, W) and out (B, N) do not agree")
    if (B > 0 and K > 1 and a.strides[1] != itemsize) or (B > 0 and out.shape[1] > 1 and out.strides[1] != itemsize):
        raise ValueError("matmul_into: a and out need a contiguous last axis")
    full = B - B % 4
    for p in range(P):
        for i in range(0, full, 4):
            fma_tile(out, a, wp, i, p, accumulate, 4, 3)
    rest = B - full  # tile shapes are compile-time constants, hence one spelled-out branch each
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


@jit
def matmul_into(a, wp, out):
    """out = a @ w for a (B, K), out (B, N) and wp = pack_panels(w); a and out need a unit stride
    along their last axis (their rows may be strided: ``ys[t, b0:b1]``)."""
    _tiles(a, wp, out, False)


@jit
def matmul_add_into(a, wp, out):
    """out += a @ w, the chains continuing from out's values: ``matmul_into(x, u); matmul_add_into(h, v)``
    gives exactly the chains of ``[x, h] @ [u; v]``."""
    _tiles(a, wp, out, True)
