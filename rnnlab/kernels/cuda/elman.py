"""Elman RNN on the GPU, forward and backward through time: the twin of :mod:`rnnlab.kernels.elman`.

    h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),   act = tanh (relu=False) or relu (relu=True)

Shapes and records exactly as the CPU kernels: x (T, B, I); w_ih (H, I); w_hh (H, H);
bias (H,) = b_ih + b_hh; h0 (B, H); hs (T+1, B, H) with hs[0] = h0.
Structure (one input GEMM; the recurrence as one grid-synchronised launch, resident weights for
small batches, shared-memory tiles beyond, fused with the activation; weight gradients as GEMMs)
as in :mod:`rnnlab.kernels.cuda.lstm`.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

from ._common import (SHARED_ALIGN, StepTile, check_dtype, check_sequences, column_sums, cuda, device_empty, end_step,
                      for_dtype, gemm, prefix_view, recurrent_grad, rows, share_untiled, step_kernel, step_link,
                      step_products, step_tile, tile_functions, tile_products)
from ._memory import remember, upload
from ._resident import next_gradients, previous_states, resident_kernel, resident_parts, run_recurrence


@functools.cache
def _kernels(dtype_name: str, tile_shape: StepTile):
    k = for_dtype(dtype_name)
    # the step tile's sizes, constants of every kernel built here (one kernel set a tile)
    rows_per_thread, a_words, w_words = tile_shape.rows_per_thread, tile_shape.a_words, tile_shape.w_words
    step_jit = step_kernel(tile_shape)
    tile_count = tile_functions(tile_shape).count
    tanh, zero, one, T_ = k.tanh, k.zero, k.one, k.nb_type
    forward_rows, backward_rows = step_products(dtype_name, 1, tile_shape)
    resident_step, partial_sum = resident_parts(dtype_name)
    load_products = tile_products(1, tile_shape)

    @cuda.jit(device=True)
    def cell_step(t, b, j, relu, a, h0, hs):
        """h_t[b, j] = act(a) from its pre-activation a (x and h parts, biases); step 0 also
        copies h0 into hs[0]."""
        if t == 0:
            hs[0, b, j] = h0[b, j]
        hs[t + 1, b, j] = max(a, zero) if relu else tanh(a)

    @cuda.jit(device=True)
    def cell_grad(s, b, k, relu, dh, h, d_pre, dh_total):
        """dL/da_s = dL/dh_s act'(a_s), from h_s: 1 - h^2 (tanh) or [h > 0] (relu)."""
        dh_total[s, b, k] = dh
        if relu:
            d_pre[s, b, k] = dh if h > zero else zero
        else:
            d_pre[s, b, k] = dh * (one - h * h)

    @cuda.jit(device=True)
    def forward_tile(tile, t, relu, x_proj, w_hh, h0, hs, acc, a_s, w_s):
        """h_t[b, j] = act(x_proj[t, b, j] + sum_m W_hh[j, m] h_{t-1}[b, m]) for one tile, through
        :func:`cell_step`."""
        row0, col0 = forward_rows(tile, t, h0, hs, w_hh, acc, a_s, w_s)
        forward_finish(row0, col0, t, relu, x_proj, h0, hs, acc)

    @cuda.jit(device=True)
    def forward_finish(row0, col0, t, relu, x_proj, h0, hs, acc):
        """The tile at (row0, col0) given its recurrent products acc: plus x_proj[t], through
        :func:`cell_step`."""
        B = hs.shape[1]
        H = hs.shape[2]
        j = col0 + cuda.threadIdx.x
        for r in range(rows_per_thread):  # every row's loads first: one L2 round trip, not one per row
            b = row0 + cuda.threadIdx.y * rows_per_thread + r
            if b < B and j < H:
                acc[r, 0] += x_proj[t, b, j]
        for r in range(rows_per_thread):
            b = row0 + cuda.threadIdx.y * rows_per_thread + r
            if b < B and j < H:
                cell_step(t, b, j, relu, acc[r, 0], h0, hs)

    @step_jit
    def forward_from_product(t, product, relu, x_proj, w_hh, h0, hs):
        """Step t of one tile (blockIdx.x), its recurrent products read from ``product`` = h_{t-1}
        W_hh^T (B, H), one GEMM for the whole step (the "gemm" recurrence)."""
        acc = cuda.local.array((rows_per_thread, 1), T_)
        row0, col0 = load_products(cuda.blockIdx.x, product, acc)
        forward_finish(row0, col0, t, relu, x_proj, h0, hs, acc)

    @step_jit
    def forward_step(t, relu, x_proj, w_hh, h0, hs):
        acc = cuda.local.array((rows_per_thread, 1), T_)
        a_s = cuda.shared.array(a_words, T_, alignment=SHARED_ALIGN)
        w_s = cuda.shared.array(w_words, T_, alignment=SHARED_ALIGN)
        forward_tile(cuda.blockIdx.x, t, relu, x_proj, w_hh, h0, hs, acc, a_s, w_s)

    @cuda.jit
    def forward_persistent(relu, x_proj, w_hh, h0, hs):
        acc = cuda.local.array((rows_per_thread, 1), T_)
        a_s = cuda.shared.array(a_words, T_, alignment=SHARED_ALIGN)
        w_s = cuda.shared.array(w_words, T_, alignment=SHARED_ALIGN)
        grid = cuda.cg.this_grid()
        tiles = tile_count(hs.shape[1], hs.shape[2])
        for t in range(x_proj.shape[0]):
            for tile in range(cuda.blockIdx.x, tiles, cuda.gridDim.x):
                forward_tile(tile, t, relu, x_proj, w_hh, h0, hs, acc, a_s, w_s)
            end_step(grid)

    @cuda.jit(device=True)
    def backward_tile(tile, s, relu, truncate, w_hh, hs, dy, d_pre, dh_total, dh_n, acc, a_s, w_s):
        """dL/dh_s = dy_s + sum_m dL/da_{s+1}[m] W_hh[m, k] (dh_n at s = T-1; 0 across a cut);
        dL/da_s = dL/dh_s * act'(a_s), from h_s: 1 - h^2 (tanh) or [h > 0] (relu); one tile."""
        row0, col0, last, cut = backward_rows(tile, s, truncate, d_pre, w_hh, acc, a_s, w_s)
        backward_finish(row0, col0, last, cut, s, relu, hs, dy, d_pre, dh_total, dh_n, acc)

    @cuda.jit(device=True)
    def backward_finish(row0, col0, last, cut, s, relu, hs, dy, d_pre, dh_total, dh_n, acc):
        """The tile at (row0, col0) given acc[:, 0], the recurrent term of dL/dh_s (unless ``last``
        or ``cut``): dL/dh_s, then :func:`cell_grad`."""
        B = dy.shape[1]
        H = dy.shape[2]
        k = col0 + cuda.threadIdx.x
        h = cuda.local.array(rows_per_thread, T_)
        for r in range(rows_per_thread):  # every row's loads first: one L2 round trip, not one per row
            b = row0 + cuda.threadIdx.y * rows_per_thread + r
            if b < B and k < H:
                if last:
                    acc[r, 0] = dy[s, b, k] + dh_n[b, k]
                elif cut:
                    acc[r, 0] = dy[s, b, k]
                else:
                    acc[r, 0] += dy[s, b, k]
                h[r] = hs[s + 1, b, k]
        for r in range(rows_per_thread):
            b = row0 + cuda.threadIdx.y * rows_per_thread + r
            if b < B and k < H:
                cell_grad(s, b, k, relu, acc[r, 0], h[r], d_pre, dh_total)

    @step_jit
    def backward_from_product(s, product, relu, truncate, w_hh, hs, dy, d_pre, dh_total, dh_n):
        """Step s of BPTT on one tile (blockIdx.x), the recurrent term read from ``product`` =
        d_pre[s+1] W_hh (B, H), one GEMM for the whole step (the "gemm" recurrence)."""
        acc = cuda.local.array((rows_per_thread, 1), T_)
        last, cut = step_link(s, dy.shape[0], truncate)
        row0, col0 = load_products(cuda.blockIdx.x, product, acc)
        backward_finish(row0, col0, last, cut, s, relu, hs, dy, d_pre, dh_total, dh_n, acc)

    @step_jit
    def backward_step(s, relu, truncate, w_hh, hs, dy, d_pre, dh_total, dh_n):
        acc = cuda.local.array((rows_per_thread, 1), T_)
        a_s = cuda.shared.array(a_words, T_, alignment=SHARED_ALIGN)
        w_s = cuda.shared.array(w_words, T_, alignment=SHARED_ALIGN)
        backward_tile(cuda.blockIdx.x, s, relu, truncate, w_hh, hs, dy, d_pre, dh_total, dh_n, acc, a_s, w_s)

    @cuda.jit
    def backward_persistent(relu, truncate, w_hh, hs, dy, d_pre, dh_total, dh_n):
        acc = cuda.local.array((rows_per_thread, 1), T_)
        a_s = cuda.shared.array(a_words, T_, alignment=SHARED_ALIGN)
        w_s = cuda.shared.array(w_words, T_, alignment=SHARED_ALIGN)
        grid = cuda.cg.this_grid()
        tiles = tile_count(dy.shape[1], dy.shape[2])
        for s in range(dy.shape[0] - 1, -1, -1):
            for tile in range(cuda.blockIdx.x, tiles, cuda.gridDim.x):
                backward_tile(tile, s, relu, truncate, w_hh, hs, dy, d_pre, dh_total, dh_n, acc, a_s, w_s)
            end_step(grid)

    @resident_kernel
    def forward_resident(units, relu, x_proj, w_hh, h0, hs):
        """All T steps in one launch, each block holding the W_hh rows of its ``units`` units in
        shared memory (:mod:`._resident`); thread u + b*units owns cell (b, col0 + u)."""
        res_s = cuda.shared.array(0, T_, alignment=SHARED_ALIGN)  # dynamic: sized at launch (resident_words)
        grid = cuda.cg.this_grid()
        B = hs.shape[1]
        H = hs.shape[2]
        u = cuda.threadIdx.x % units
        b = cuda.threadIdx.x // units
        held = -1  # the unit group whose weights res_s holds
        for t in range(x_proj.shape[0]):
            for group in range(cuda.blockIdx.x, -(-H // units), cuda.gridDim.x):
                j = group * units + u
                mine = b < B and j < H
                a = zero
                if mine:  # this cell's own input first: in flight while the block stages h_{t-1}
                    a = x_proj[t, b, j]
                held = resident_step(group, held, w_hh, False, H, units, units, H, h0 if t == 0 else hs[t], B, True,
                                     res_s)
                if mine:
                    cell_step(t, b, j, relu, a + partial_sum(res_s, units, B, H, u * B + b), h0, hs)
            end_step(grid)

    @resident_kernel
    def backward_resident(units, relu, truncate, w_hh, hs, dy, d_pre, dh_total, dh_n):
        """All T steps of BPTT in one launch, each block holding the W_hh columns of its ``units``
        units in shared memory (:mod:`._resident`); thread u + b*units owns cell (b, col0 + u)."""
        res_s = cuda.shared.array(0, T_, alignment=SHARED_ALIGN)  # dynamic: sized at launch (resident_words)
        grid = cuda.cg.this_grid()
        T = dy.shape[0]
        B = dy.shape[1]
        H = dy.shape[2]
        u = cuda.threadIdx.x % units
        b = cuda.threadIdx.x // units
        held = -1
        for s in range(T - 1, -1, -1):
            last, cut = step_link(s, T, truncate)
            through = not last and not cut  # the recurrent term enters
            for group in range(cuda.blockIdx.x, -(-H // units), cuda.gridDim.x):
                k = group * units + u
                mine = b < B and k < H
                dh = h = zero
                if mine:  # this cell's own inputs first: in flight while the block stages d_pre[s+1]
                    dh = dy[s, b, k] + dh_n[b, k] if last else dy[s, b, k]
                    h = hs[s + 1, b, k]
                held = resident_step(group, held, w_hh, True, H, units, units, H, d_pre[min(s + 1, T - 1)], B,
                                     through, res_s)
                if mine:
                    if through:
                        dh = partial_sum(res_s, units, B, H, u * B + b) + dh
                    cell_grad(s, b, k, relu, dh, h, d_pre, dh_total)
            end_step(grid)

    kernels = SimpleNamespace(forward_step=forward_step, forward_persistent=forward_persistent,
                              forward_resident=forward_resident, forward_from_product=forward_from_product,
                              backward_step=backward_step, backward_persistent=backward_persistent,
                              backward_resident=backward_resident, backward_from_product=backward_from_product)
    return share_untiled(kernels, _kernels, dtype_name, tile_shape)


def elman_forward_device(x, w_ih, w_hh, bias, h0, relu, recurrence: str | None = None):
    """:func:`elman_forward` on device arrays; returns the device array hs (``recurrence`` as in lstm)."""
    check_sequences(x)
    T, B, I = x.shape
    H = h0.shape[1]
    relu = bool(relu)
    tile = step_tile(B, H)
    k = _kernels(x.dtype.name, tile)
    x_proj = prefix_view(gemm(rows(x), w_ih, trans_b=True, bias=bias), (T, B, H))
    hs = device_empty((T + 1, B, H), x.dtype)
    run_recurrence((k.forward_step, k.forward_persistent, k.forward_resident), recurrence, tile=tile, batch=B, hidden=H,
                   gates=1, backward=False, dtype=x.dtype, steps=range(T), args=(relu, x_proj, w_hh, h0, hs),
                   by_gemm=(k.forward_from_product, previous_states(h0, hs), w_hh))
    return hs


def elman_backward_device(x, w_ih, w_hh, hs, dy, dh_n, relu, truncate, recurrence: str | None = None):
    """:func:`elman_backward` on device arrays; returns device arrays (dx, dw_ih, dw_hh, dbias, dh0, dh)."""
    check_sequences(x)
    T, B, I = x.shape
    H = hs.shape[2]
    relu = bool(relu)
    truncate = int(truncate)
    tile = step_tile(B, H)
    k = _kernels(x.dtype.name, tile)
    d_pre = device_empty((T, B, H), x.dtype)
    dh_total = device_empty((T, B, H), x.dtype)
    run_recurrence((k.backward_step, k.backward_persistent, k.backward_resident), recurrence, tile=tile,
                   batch=B, hidden=H, gates=1, backward=True, dtype=x.dtype, steps=range(T - 1, -1, -1),
                   args=(relu, truncate, w_hh, hs, dy, d_pre, dh_total, dh_n),
                   by_gemm=(k.backward_from_product, next_gradients(d_pre, truncate), w_hh))
    dh0 = recurrent_grad(prefix_view(d_pre, (B, H)), w_hh)
    d_rows = rows(d_pre)
    dx = prefix_view(gemm(d_rows, w_ih), (T, B, I))
    dw_ih = gemm(d_rows, rows(x), trans_a=True)
    dw_hh = gemm(d_rows, rows(hs, T), trans_a=True)
    return dx, dw_ih, dw_hh, column_sums(d_rows), dh0, dh_total


def elman_forward(x, w_ih, w_hh, bias, h0, relu, n_threads=None, *, recurrence: str | None = None,
                  device_arrays: dict | None = None):
    """Run the Elman RNN over x on the GPU; return the host array hs (T+1, B, H) as ``kernels.elman_forward``.

    ``device_arrays``: a dict where the device copies of x, w_ih, w_hh and hs are recorded, for
    an :func:`elman_backward` given the same dict and the same (unchanged) host arrays.
    """
    check_dtype(x=x, w_ih=w_ih, w_hh=w_hh, bias=bias, h0=h0)
    inputs = upload((x, w_ih, w_hh, bias, h0))
    hs = elman_forward_device(*inputs, relu, recurrence=recurrence)
    hs_host = hs.copy_to_host()
    remember(device_arrays, (x, w_ih, w_hh, hs_host), (*inputs[:3], hs))
    return hs_host


def elman_backward(x, w_ih, w_hh, hs, dy, dh_n, relu, truncate, n_threads=None, *, recurrence: str | None = None,
                   device_arrays: dict | None = None):
    """BPTT on the GPU; arguments and host-array results (dx, dw_ih, dw_hh, dbias, dh0, dh) as
    ``kernels.elman_backward`` (``device_arrays`` as in :func:`elman_forward`)."""
    check_dtype(x=x, w_ih=w_ih, w_hh=w_hh, hs=hs, dy=dy, dh_n=dh_n)
    out = elman_backward_device(*upload((x, w_ih, w_hh, hs, dy, dh_n), device_arrays), relu, truncate,
                                recurrence=recurrence)
    return tuple(a.copy_to_host() for a in out)
