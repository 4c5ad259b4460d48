"""GRU on the GPU, forward and backward through time: the twin of :mod:`rnnlab.kernels.gru`.

    r_t = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigma(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh (W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Shapes and records exactly as the CPU kernels: x (T, B, I); w_ih (3H, I); w_hh (3H, H);
b_ih, b_hh (3H,); h0 (B, H); hs (T+1, B, H); gates (3, T, B, H) holding r, z, n;
hn (T, B, H) = W_hn h_{t-1} + b_hn. Structure (one input GEMM; the recurrence as one
grid-synchronised launch, resident weights for small batches, shared-memory tiles beyond, fused
with the gate math; weight gradients as GEMMs) as in :mod:`rnnlab.kernels.cuda.lstm`.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

from ._common import (HELPER_THREADS, SHARED_ALIGN, UNTILED_KERNELS, StepTile, check_dtype, check_sequences,
                      column_sums, cuda, device_empty, end_step, for_dtype, gemm, prefix_view, recurrent_grad, rows,
                      share_untiled, step_kernel, step_link, step_products, step_tile, tile_functions, tile_products)
from ._launch import launch
from ._memory import remember, upload
from ._resident import next_gradients, previous_states, resident_kernel, resident_parts, run_recurrence

GATES = 3


@functools.cache
def _kernels(dtype_name: str, tile_shape: StepTile):
    k = for_dtype(dtype_name)
    # the step tile's sizes, constants of every kernel built here (one kernel set a tile)
    rows_per_thread, a_words, w_words = tile_shape.rows_per_thread, tile_shape.a_words, tile_shape.w_words
    gates_w_words = GATES * w_words  # the forward step's weight stage, every gate
    step_jit = step_kernel(tile_shape)
    tile_count = tile_functions(tile_shape).count
    sigmoid, tanh, zero, one, T_ = k.sigmoid, k.tanh, k.zero, k.one, k.nb_type
    forward_rows, backward_rows = step_products(dtype_name, GATES, tile_shape)
    resident_step, partial_sum = resident_parts(dtype_name)
    forward_products, backward_products = tile_products(GATES, tile_shape), tile_products(1, tile_shape)

    @cuda.jit
    def input_bias(b_ih, b_hh, bias):
        """bias = b_ih + (b_hr, b_hz, 0): r and z see both biases; b_hn sits inside r's product."""
        n = cuda.grid(1)
        H = b_ih.shape[0] // 3
        if n < 2 * H:
            bias[n] = b_ih[n] + b_hh[n]
        elif n < 3 * H:
            bias[n] = b_ih[n]

    @cuda.jit(device=True)
    def cell_step(t, b, j, a_r, a_z, x_n, hh_n, h_prev, h0, hs, gates, hn_all):
        """Unit j of sequence b at step t: a_r, a_z the pre-activations of r and z (x and h parts,
        biases), x_n = W_in x + b_in, hh_n = W_hn h_{t-1} + b_hn:

        r, z = sigma(a_r, a_z); n = tanh(x_n + r hh_n); h_t = (1 - z) n + z h_{t-1}.
        Step 0 also copies h0 into hs[0]."""
        if t == 0:
            hs[0, b, j] = h0[b, j]
        r = sigmoid(a_r)
        z = sigmoid(a_z)
        n = tanh(x_n + r * hh_n)
        hs[t + 1, b, j] = (one - z) * n + z * h_prev
        gates[0, t, b, j] = r
        gates[1, t, b, j] = z
        gates[2, t, b, j] = n
        hn_all[t, b, j] = hh_n

    @cuda.jit(device=True)
    def cell_grad(s, b, k, dh, r, z, n, hh_n, h_prev, d_ih, d_hh, dh_total, skip):
        """Unit k of sequence b at step s, given dL/dh_s (dh): the input-side (d_ih) and
        recurrent-side (d_hh) pre-activation gradients of r, z, n, and skip[b, k] = dh z, the
        direct path to h_{s-1}."""
        H = dh_total.shape[2]
        dh_total[s, b, k] = dh
        dn = dh * (one - z) * (one - n * n)  # through n = tanh(.)
        dr = dn * hh_n * r * (one - r)  # through r, which scales W_hn h + b_hn
        dz = dh * (h_prev - n) * z * (one - z)  # through z
        d_ih[s, b, k] = dr
        d_ih[s, b, H + k] = dz
        d_ih[s, b, 2 * H + k] = dn
        d_hh[s, b, k] = dr
        d_hh[s, b, H + k] = dz
        d_hh[s, b, 2 * H + k] = dn * r
        skip[b, k] = dh * z

    @cuda.jit(device=True)
    def forward_tile(tile, t, x_proj, w_hh, b_hh, h0, hs, gates, hn_all, acc, a_s, w_s):
        """Step t of one tile: (W_hh h_{t-1}) for the rows of r, z and n of its units, then
        :func:`cell_step`; x_proj (T, B, 3H) = W_ih x + bias."""
        row0, col0 = forward_rows(tile, t, h0, hs, w_hh, acc, a_s, w_s)
        forward_finish(row0, col0, t, x_proj, b_hh, h0, hs, gates, hn_all, acc)

    @cuda.jit(device=True)
    def forward_finish(row0, col0, t, x_proj, b_hh, h0, hs, gates, hn_all, acc):
        """The tile at (row0, col0) given its recurrent products acc (W_hh h_{t-1} for r, z, n),
        then :func:`cell_step`."""
        B = hs.shape[1]
        H = hs.shape[2]
        j = col0 + cuda.threadIdx.x
        pre = cuda.local.array((rows_per_thread, GATES), T_)  # x_proj of r, z, n
        h_prev = cuda.local.array(rows_per_thread, T_)
        b_n = b_hh[2 * H + min(j, H - 1)]  # b_hn
        for q in range(rows_per_thread):  # every row's loads first: one L2 round trip, not one per row
            b = row0 + cuda.threadIdx.y * rows_per_thread + q
            if b < B and j < H:
                for g in range(GATES):
                    pre[q, g] = x_proj[t, b, g * H + j]
                h_prev[q] = h0[b, j] if t == 0 else hs[t, b, j]
        for q in range(rows_per_thread):
            b = row0 + cuda.threadIdx.y * rows_per_thread + q
            if b < B and j < H:
                cell_step(t, b, j, acc[q, 0] + pre[q, 0], acc[q, 1] + pre[q, 1], pre[q, 2], acc[q, 2] + b_n,
                          h_prev[q], h0, hs, gates, hn_all)

    @step_jit
    def forward_from_product(t, product, x_proj, w_hh, b_hh, h0, hs, gates, hn_all):
        """Step t of one tile (blockIdx.x), its recurrent products read from ``product`` = h_{t-1}
        W_hh^T (B, 3H), one GEMM for the whole step (the "gemm" recurrence)."""
        acc = cuda.local.array((rows_per_thread, GATES), T_)
        row0, col0 = forward_products(cuda.blockIdx.x, product, acc)
        forward_finish(row0, col0, t, x_proj, b_hh, h0, hs, gates, hn_all, acc)

    @step_jit
    def forward_step(t, x_proj, w_hh, b_hh, h0, hs, gates, hn_all):
        acc = cuda.local.array((rows_per_thread, GATES), T_)
        a_s = cuda.shared.array(a_words, T_, alignment=SHARED_ALIGN)
        w_s = cuda.shared.array(gates_w_words, T_, alignment=SHARED_ALIGN)
        forward_tile(cuda.blockIdx.x, t, x_proj, w_hh, b_hh, h0, hs, gates, hn_all, acc, a_s, w_s)

    @cuda.jit
    def forward_persistent(x_proj, w_hh, b_hh, h0, hs, gates, hn_all):
        acc = cuda.local.array((rows_per_thread, GATES), T_)
        a_s = cuda.shared.array(a_words, T_, alignment=SHARED_ALIGN)
        w_s = cuda.shared.array(gates_w_words, T_, alignment=SHARED_ALIGN)
        grid = cuda.cg.this_grid()
        tiles = tile_count(hs.shape[1], hs.shape[2])
        for t in range(x_proj.shape[0]):
            for tile in range(cuda.blockIdx.x, tiles, cuda.gridDim.x):
                forward_tile(tile, t, x_proj, w_hh, b_hh, h0, hs, gates, hn_all, acc, a_s, w_s)
            end_step(grid)

    @resident_kernel
    def forward_resident(units, x_proj, w_hh, b_hh, h0, hs, gates, hn_all):
        """All T steps in one launch, each block holding the W_hh rows of its ``units`` units' r, z
        and n in shared memory (:mod:`._resident`); thread u + b*units owns cell (b, col0 + u)."""
        res_s = cuda.shared.array(0, T_, alignment=SHARED_ALIGN)  # dynamic: sized at launch (resident_words)
        grid = cuda.cg.this_grid()
        B = hs.shape[1]
        H = hs.shape[2]
        rows = GATES * units
        u = cuda.threadIdx.x % units
        b = cuda.threadIdx.x // units
        held = -1  # the unit group whose weights res_s holds
        for t in range(x_proj.shape[0]):
            for group in range(cuda.blockIdx.x, -(-H // units), cuda.gridDim.x):
                j = group * units + u
                mine = b < B and j < H
                x_r = x_z = x_n = b_n = h_prev = zero
                if mine:  # this cell's own inputs first: in flight while the block stages h_{t-1}
                    x_r = x_proj[t, b, j]
                    x_z = x_proj[t, b, H + j]
                    x_n = x_proj[t, b, 2 * H + j]
                    b_n = b_hh[2 * H + j]  # b_hn
                    h_prev = h0[b, j] if t == 0 else hs[t, b, j]
                held = resident_step(group, held, w_hh, False, H, units, rows, H, h0 if t == 0 else hs[t], B, True,
                                     res_s)
                if mine:  # output (g*units + u)*B + b is gate g of this cell
                    o = u * B + b
                    gate = units * B
                    cell_step(t, b, j, x_r + partial_sum(res_s, rows, B, H, o),
                              x_z + partial_sum(res_s, rows, B, H, o + gate),
                              x_n, partial_sum(res_s, rows, B, H, o + 2 * gate) + b_n, h_prev, h0, hs, gates, hn_all)
            end_step(grid)

    @cuda.jit(device=True)
    def backward_tile(tile, s, truncate, w_hh, hs, gates, hn_all, dy, d_ih, d_hh, dh_total, dh_n, skip,
                      acc, a_s, w_s):
        """Step s (counting down) of one tile: dL/dh_s = dy_s + sum_m d_hh[s+1][m] W_hh[m, k] +
        dL/dh_{s+1} z_{s+1} (dh_n at s = T-1; 0 across a cut), then :func:`cell_grad`."""
        row0, col0, last, cut = backward_rows(tile, s, truncate, d_hh, w_hh, acc, a_s, w_s)
        backward_finish(row0, col0, last, cut, s, hs, gates, hn_all, dy, d_ih, d_hh, dh_total, dh_n, skip, acc)

    @cuda.jit(device=True)
    def backward_finish(row0, col0, last, cut, s, hs, gates, hn_all, dy, d_ih, d_hh, dh_total, dh_n, skip, acc):
        """The tile at (row0, col0) given acc[:, 0], the recurrent term of dL/dh_s through the gates
        (unless ``last`` or ``cut``): dL/dh_s, then :func:`cell_grad`."""
        B = dy.shape[1]
        H = dy.shape[2]
        k = col0 + cuda.threadIdx.x
        # Every row's loads first (one L2 round trip, not one per row): dh and the records.
        dh = cuda.local.array(rows_per_thread, T_)
        rec = cuda.local.array((rows_per_thread, 5), T_)  # r, z, n, hn, h_s
        for q in range(rows_per_thread):
            b = row0 + cuda.threadIdx.y * rows_per_thread + q
            if b < B and k < H:
                if last:
                    dh[q] = dy[s, b, k] + dh_n[b, k]
                elif cut:
                    dh[q] = dy[s, b, k]
                else:
                    dh[q] = dy[s, b, k] + (acc[q, 0] + skip[b, k])
                for g in range(GATES):
                    rec[q, g] = gates[g, s, b, k]
                rec[q, 3] = hn_all[s, b, k]
                rec[q, 4] = hs[s, b, k]
        for q in range(rows_per_thread):
            b = row0 + cuda.threadIdx.y * rows_per_thread + q
            if b < B and k < H:
                cell_grad(s, b, k, dh[q], rec[q, 0], rec[q, 1], rec[q, 2], rec[q, 3], rec[q, 4], d_ih, d_hh,
                          dh_total, skip)

    @step_jit
    def backward_from_product(s, product, truncate, w_hh, hs, gates, hn_all, dy, d_ih, d_hh, dh_total, dh_n, skip):
        """Step s of BPTT on one tile (blockIdx.x), the recurrent term through the gates read from
        ``product`` = d_hh[s+1] W_hh (B, H), one GEMM for the whole step (the "gemm" recurrence)."""
        acc = cuda.local.array((rows_per_thread, 1), T_)
        last, cut = step_link(s, dy.shape[0], truncate)
        row0, col0 = backward_products(cuda.blockIdx.x, product, acc)
        backward_finish(row0, col0, last, cut, s, hs, gates, hn_all, dy, d_ih, d_hh, dh_total, dh_n, skip, acc)

    @step_jit
    def backward_step(s, truncate, w_hh, hs, gates, hn_all, dy, d_ih, d_hh, dh_total, dh_n, skip):
        acc = cuda.local.array((rows_per_thread, 1), T_)
        a_s = cuda.shared.array(a_words, T_, alignment=SHARED_ALIGN)
        w_s = cuda.shared.array(w_words, T_, alignment=SHARED_ALIGN)
        backward_tile(cuda.blockIdx.x, s, truncate, w_hh, hs, gates, hn_all, dy, d_ih, d_hh, dh_total, dh_n, skip,
                      acc, a_s, w_s)

    @cuda.jit
    def backward_persistent(truncate, w_hh, hs, gates, hn_all, dy, d_ih, d_hh, dh_total, dh_n, skip):
        acc = cuda.local.array((rows_per_thread, 1), T_)
        a_s = cuda.shared.array(a_words, T_, alignment=SHARED_ALIGN)
        w_s = cuda.shared.array(w_words, T_, alignment=SHARED_ALIGN)
        grid = cuda.cg.this_grid()
        tiles = tile_count(dy.shape[1], dy.shape[2])
        for s in range(dy.shape[0] - 1, -1, -1):
            for tile in range(cuda.blockIdx.x, tiles, cuda.gridDim.x):
                backward_tile(tile, s, truncate, w_hh, hs, gates, hn_all, dy, d_ih, d_hh, dh_total, dh_n, skip,
                              acc, a_s, w_s)
            end_step(grid)

    @resident_kernel
    def backward_resident(units, truncate, w_hh, hs, gates, hn_all, dy, d_ih, d_hh, dh_total, dh_n, skip):
        """All T steps of BPTT in one launch, each block holding the W_hh columns of its ``units``
        units in shared memory (:mod:`._resident`); thread u + b*units owns cell (b, col0 + u)."""
        res_s = cuda.shared.array(0, T_, alignment=SHARED_ALIGN)  # dynamic: sized at launch (resident_words)
        grid = cuda.cg.this_grid()
        T = dy.shape[0]
        B = dy.shape[1]
        H = dy.shape[2]
        K = GATES * H
        u = cuda.threadIdx.x % units
        b = cuda.threadIdx.x // units
        held = -1
        for s in range(T - 1, -1, -1):
            last, cut = step_link(s, T, truncate)
            through = not last and not cut  # the recurrent term enters
            for group in range(cuda.blockIdx.x, -(-H // units), cuda.gridDim.x):
                k = group * units + u
                mine = b < B and k < H
                dh = direct = r = z = n = hh_n = h_prev = zero
                if mine:  # this cell's own inputs first: in flight while the block stages d_hh[s+1]
                    dh = dy[s, b, k]
                    if last:
                        dh += dh_n[b, k]
                    elif through:
                        direct = skip[b, k]
                    r = gates[0, s, b, k]
                    z = gates[1, s, b, k]
                    n = gates[2, s, b, k]
                    hh_n = hn_all[s, b, k]
                    h_prev = hs[s, b, k]
                held = resident_step(group, held, w_hh, True, H, units, units, K, d_hh[min(s + 1, T - 1)], B,
                                     through, res_s)
                if mine:
                    if through:
                        dh += partial_sum(res_s, units, B, K, u * B + b) + direct
                    cell_grad(s, b, k, dh, r, z, n, hh_n, h_prev, d_ih, d_hh, dh_total, skip)
            end_step(grid)

    kernels = SimpleNamespace(input_bias=input_bias, forward_step=forward_step, forward_persistent=forward_persistent,
                              forward_resident=forward_resident, forward_from_product=forward_from_product,
                              backward_step=backward_step, backward_persistent=backward_persistent,
                              backward_resident=backward_resident, backward_from_product=backward_from_product)
    return share_untiled(kernels, _kernels, dtype_name, tile_shape, ("input_bias", *UNTILED_KERNELS))


def gru_forward_device(x, w_ih, w_hh, b_ih, b_hh, h0, recurrence: str | None = None):
    """:func:`gru_forward` on device arrays; returns device arrays (hs, gates, hn) (``recurrence`` as in lstm)."""
    check_sequences(x)
    T, B, I = x.shape
    H = h0.shape[1]
    tile = step_tile(B, H)
    k = _kernels(x.dtype.name, tile)
    bias = device_empty(3 * H, x.dtype)
    launch(k.input_bias, -(-3 * H // HELPER_THREADS), HELPER_THREADS, (b_ih, b_hh, bias))
    x_proj = prefix_view(gemm(rows(x), w_ih, trans_b=True, bias=bias), (T, B, 3 * H))
    hs = device_empty((T + 1, B, H), x.dtype)
    gates = device_empty((3, T, B, H), x.dtype)
    hn_all = device_empty((T, B, H), x.dtype)
    run_recurrence((k.forward_step, k.forward_persistent, k.forward_resident), recurrence, tile=tile, batch=B, hidden=H,
                   gates=GATES, backward=False, dtype=x.dtype, steps=range(T),
                   args=(x_proj, w_hh, b_hh, h0, hs, gates, hn_all),
                   by_gemm=(k.forward_from_product, previous_states(h0, hs), w_hh))
    return hs, gates, hn_all


def gru_backward_device(x, w_ih, w_hh, hs, gates, hn_all, dy, dh_n, truncate, recurrence: str | None = None):
    """:func:`gru_backward` on device arrays; returns device arrays (dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dh)."""
    check_sequences(x)
    T, B, I = x.shape
    H = hs.shape[2]
    truncate = int(truncate)
    tile = step_tile(B, H)
    k = _kernels(x.dtype.name, tile)
    d_ih = device_empty((T, B, 3 * H), x.dtype)
    d_hh = device_empty((T, B, 3 * H), x.dtype)
    dh_total = device_empty((T, B, H), x.dtype)
    skip = device_empty((B, H), x.dtype)  # written by step T-1 before anything reads it
    run_recurrence((k.backward_step, k.backward_persistent, k.backward_resident), recurrence, tile=tile,
                   batch=B, hidden=H, gates=GATES, backward=True, dtype=x.dtype, steps=range(T - 1, -1, -1),
                   args=(truncate, w_hh, hs, gates, hn_all, dy, d_ih, d_hh, dh_total, dh_n, skip),
                   by_gemm=(k.backward_from_product, next_gradients(d_hh, truncate), w_hh))
    dh0 = recurrent_grad(prefix_view(d_hh, (B, 3 * H)), w_hh, carry=skip)  # through the gates, plus the direct path
    rows_ih, rows_hh = rows(d_ih), rows(d_hh)
    dx = prefix_view(gemm(rows_ih, w_ih), (T, B, I))
    dw_ih = gemm(rows_ih, rows(x), trans_a=True)
    dw_hh = gemm(rows_hh, rows(hs, T), trans_a=True)
    return dx, dw_ih, dw_hh, column_sums(rows_ih), column_sums(rows_hh), dh0, dh_total


def gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, n_threads=None, *, recurrence: str | None = None,
                device_arrays: dict | None = None):
    """Run the GRU over x on the GPU; return host arrays (hs, gates, hn) as ``kernels.gru_forward``.

    ``device_arrays``: a dict where the device copies of x, w_ih, w_hh and the results are
    recorded, for a :func:`gru_backward` given the same dict and the same (unchanged) host arrays.
    """
    check_dtype(x=x, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh, h0=h0)
    inputs = upload((x, w_ih, w_hh, b_ih, b_hh, h0))
    out = gru_forward_device(*inputs, recurrence=recurrence)
    host = tuple(a.copy_to_host() for a in out)
    remember(device_arrays, (x, w_ih, w_hh, *host), (*inputs[:3], *out))
    return host


def gru_backward(x, w_ih, w_hh, hs, gates, hn_all, dy, dh_n, truncate, n_threads=None, *,
                 recurrence: str | None = None, device_arrays: dict | None = None):
    """BPTT on the GPU; arguments and host-array results (dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dh) as
    ``kernels.gru_backward`` (``device_arrays`` as in :func:`gru_forward`)."""
    check_dtype(x=x, w_ih=w_ih, w_hh=w_hh, hs=hs, gates=gates, hn_all=hn_all, dy=dy, dh_n=dh_n)
    out = gru_backward_device(*upload((x, w_ih, w_hh, hs, gates, hn_all, dy, dh_n), device_arrays), truncate,
                              recurrence=recurrence)
    return tuple(a.copy_to_host() for a in out)
