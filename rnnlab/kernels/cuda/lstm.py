"""LSTM on the GPU, forward and backward through time: the twin of :mod:`rnnlab.kernels.lstm`.

    i_t = sigma(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
    f_t = sigma(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
    g_t = tanh (W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
    o_t = sigma(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

Shapes and records exactly as the CPU kernels: x (T, B, I); w_ih (4H, I); w_hh (4H, H);
bias (4H,) = b_ih + b_hh; h0, c0 (B, H); hs, cs (T+1, B, H); gates (4, T, B, H) holding i, f, g, o.

Structure. Forward: one GEMM for the input projections of all T*B rows (bias folded in); then
the recurrence as ONE launch over every step, in one of two forms (``recurrence=``, chosen by
shape by default, :func:`~rnnlab.kernels.cuda._resident.run_recurrence`):

- "resident", for small batches (the persistent RNN of Diamos et al. 2016): each block holds the
  W_hh rows of a few units' four gates in shared memory for the whole pass, and per step stages
  only h_{t-1}, multiplies, applies the gate and cell math and waits at a grid-wide barrier
  (:mod:`~rnnlab.kernels.cuda._resident`);
- "persistent": each block owns tiles of sequences x units (the step tile chosen by shape,
  :func:`~rnnlab.kernels.cuda._common.step_tile`), computes the four recurrent products of its
  units, (W_hh h_{t-1})[gH + j], from shared-memory tiles of
  h_{t-1} and W_hh re-staged every step (:func:`~rnnlab.kernels.cuda._common.recurrent_product`),
  applies the gate and cell math to the accumulators, and waits at a grid-wide barrier.

"per-step" launches the tile code once per step instead. "gemm", for large batches where cuBLAS
runs, computes each step's h_{t-1} W_hh^T for every sequence as one GEMM and then launches the
cell math on the tiles. Everything stays on the device.
Backward: per step (last to first) the same structures fuse dL/dh_s's recurrent term,
sum_m dL/dpre_{s+1}[m] W_hh[m, k] (a resident block holds the W_hh columns of its units), with
the gate derivatives of unit k; then dL/dh_0 and the weight gradients as GEMMs over all steps.
The cell math itself (:func:`cell_step`, :func:`cell_grad`) is shared by every form.

``lstm_forward``/``lstm_backward`` take and return host (NumPy) arrays, with the signatures of
the CPU kernels (``n_threads`` is accepted and ignored); ``*_device`` variants take and return
numba device arrays and leave everything on the GPU.
"""

from __future__ import annotations

import functools

from types import SimpleNamespace

from ._common import (SHARED_ALIGN, StepTile, check_dtype, check_sequences, column_sums, cuda, device_empty, end_step,
                      for_dtype, gemm, prefix_view, recurrent_grad, rows, share_untiled, step_kernel, step_link,
                      step_products, step_tile, tile_functions, tile_products)
from ._memory import remember, upload
from ._resident import next_gradients, previous_states, resident_kernel, resident_parts, run_recurrence

GATES = 4


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

    @cuda.jit(device=True)
    def cell_step(t, b, j, a_i, a_f, a_g, a_o, c_prev, h0, hs, cs, gates):
        """Unit j of sequence b at step t from its four pre-activations a_* (x and h parts, biases):

        i, f, o = sigma(a_i, a_f, a_o), g = tanh(a_g); c_t = f c_{t-1} + i g; h_t = o tanh(c_t).
        Step 0 also copies h0 and c0 (= c_prev) into hs[0], cs[0] (no separate copy: each costs a
        launch-sized ~140 us from Python)."""
        if t == 0:
            hs[0, b, j] = h0[b, j]
            cs[0, b, j] = c_prev
        i = sigmoid(a_i)
        f = sigmoid(a_f)
        g = tanh(a_g)
        o = sigmoid(a_o)
        c = f * c_prev + i * g
        cs[t + 1, b, j] = c
        hs[t + 1, b, j] = o * tanh(c)
        gates[0, t, b, j] = i
        gates[1, t, b, j] = f
        gates[2, t, b, j] = g
        gates[3, t, b, j] = o

    @cuda.jit(device=True)
    def cell_grad(s, b, k, dh, dc_in, i, f, g, o, c, c_prev, d_pre, dh_total, dc_carry):
        """Unit k of sequence b at step s, given dL/dh_s (dh) and dL/dc_s from step s+1 (dc_in):

        dL/dc_s = dc_in + dh o tanh'(c_s), then the pre-activation gradients of i, f, g, o into
        d_pre[s, b, gH + k], and dL/dc_{s-1} through c_s = dL/dc_s f into dc_carry[b, k]."""
        H = dh_total.shape[2]
        dh_total[s, b, k] = dh
        tanh_c = tanh(c)
        dc = dc_in + dh * o * (one - tanh_c * tanh_c)
        d_pre[s, b, k] = dc * g * i * (one - i)  # i = sigma(.)
        d_pre[s, b, H + k] = dc * c_prev * f * (one - f)  # f
        d_pre[s, b, 2 * H + k] = dc * i * (one - g * g)  # g = tanh(.)
        d_pre[s, b, 3 * H + k] = dh * tanh_c * o * (one - o)  # o
        dc_carry[b, k] = dc * f

    @cuda.jit(device=True)
    def forward_tile(tile, t, x_proj, w_hh, h0, c0, hs, cs, gates, acc, a_s, w_s):
        """Step t of one tile: h_{t-1} W_hh^T for its units' four gates, then :func:`forward_finish`."""
        row0, col0 = forward_rows(tile, t, h0, hs, w_hh, acc, a_s, w_s)
        forward_finish(row0, col0, t, x_proj, h0, c0, hs, cs, gates, acc)

    @cuda.jit(device=True)
    def forward_finish(row0, col0, t, x_proj, h0, c0, hs, cs, gates, acc):
        """The tile at (row0, col0) given its recurrent products acc: plus x_proj[t], through
        :func:`cell_step`."""
        B = hs.shape[1]
        H = hs.shape[2]
        j = col0 + cuda.threadIdx.x
        c_prev = cuda.local.array(rows_per_thread, T_)
        for r in range(rows_per_thread):  # every row's loads first: one L2 round trip, not one per row
            b = row0 + cuda.threadIdx.y * rows_per_thread + r
            if b < B and j < H:
                for g in range(GATES):
                    acc[r, g] += x_proj[t, b, g * H + j]
                c_prev[r] = c0[b, j] if t == 0 else cs[t, b, j]
        for r in range(rows_per_thread):
            b = row0 + cuda.threadIdx.y * rows_per_thread + r
            if b < B and j < H:
                cell_step(t, b, j, acc[r, 0], acc[r, 1], acc[r, 2], acc[r, 3], c_prev[r], h0, hs, cs, gates)

    @step_jit
    def forward_from_product(t, product, x_proj, w_hh, h0, c0, hs, cs, gates):
        """Step t of one tile (blockIdx.x), its recurrent products read from ``product`` = h_{t-1}
        W_hh^T (B, 4H), one GEMM for the whole step (the "gemm" recurrence)."""
        acc = cuda.local.array((rows_per_thread, GATES), T_)
        row0, col0 = forward_products(cuda.blockIdx.x, product, acc)
        forward_finish(row0, col0, t, x_proj, h0, c0, hs, cs, gates, acc)

    @step_jit
    def forward_step(t, x_proj, w_hh, h0, c0, hs, cs, gates):
        """Step t: one block per tile."""
        acc = cuda.local.array((rows_per_thread, GATES), T_)
        a_s = cuda.shared.array(a_words, T_, alignment=SHARED_ALIGN)
        w_s = cuda.shared.array(gates_w_words, T_, alignment=SHARED_ALIGN)
        forward_tile(cuda.blockIdx.x, t, x_proj, w_hh, h0, c0, hs, cs, gates, acc, a_s, w_s)

    @cuda.jit
    def forward_persistent(x_proj, w_hh, h0, c0, hs, cs, gates):
        """All T steps in one launch: each block takes tiles blockIdx.x, + gridDim.x, ...; a grid
        sync ends every step (h_t complete before any block reads it)."""
        acc = cuda.local.array((rows_per_thread, GATES), T_)
        a_s = cuda.shared.array(a_words, T_, alignment=SHARED_ALIGN)
        w_s = cuda.shared.array(gates_w_words, T_, alignment=SHARED_ALIGN)
        grid = cuda.cg.this_grid()
        tiles = tile_count(hs.shape[1], hs.shape[2])
        for t in range(x_proj.shape[0]):
            for tile in range(cuda.blockIdx.x, tiles, cuda.gridDim.x):
                forward_tile(tile, t, x_proj, w_hh, h0, c0, hs, cs, gates, acc, a_s, w_s)
            end_step(grid)

    @resident_kernel
    def forward_resident(units, x_proj, w_hh, h0, c0, hs, cs, gates):
        """All T steps in one launch, each block holding the W_hh rows of its ``units`` units' four
        gates in shared memory (:mod:`._resident`); thread u + b*units owns cell (b, col0 + u)."""
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
                a_i = a_f = a_g = a_o = c_prev = zero
                if mine:  # this cell's own inputs first: in flight while the block stages h_{t-1}
                    a_i = x_proj[t, b, j]
                    a_f = x_proj[t, b, H + j]
                    a_g = x_proj[t, b, 2 * H + j]
                    a_o = x_proj[t, b, 3 * H + j]
                    c_prev = c0[b, j] if t == 0 else cs[t, b, j]
                held = resident_step(group, held, w_hh, False, H, units, rows, H, h0 if t == 0 else hs[t], B, True,
                                     res_s)
                if mine:  # output (g*units + u)*B + b is gate g of this cell
                    o = u * B + b
                    gate = units * B
                    cell_step(t, b, j, a_i + partial_sum(res_s, rows, B, H, o),
                              a_f + partial_sum(res_s, rows, B, H, o + gate),
                              a_g + partial_sum(res_s, rows, B, H, o + 2 * gate),
                              a_o + partial_sum(res_s, rows, B, H, o + 3 * gate), c_prev, h0, hs, cs, gates)
            end_step(grid)

    @cuda.jit(device=True)
    def backward_tile(tile, s, truncate, w_hh, cs, gates, dy, d_pre, dh_total, dh_n, dc_n, dc_carry, acc, a_s,
                      w_s):
        """Step s (counting down) of one tile.

        dL/dh_s = dy_s + sum_m dL/dpre_{s+1}[m] W_hh[m, k]  (dh_n at s = T-1; 0 across a cut),
        then :func:`cell_grad`. dc_carry[b, k] enters holding dL/dc_{s} through c_{s+1} (at
        s = T-1 dc_n is read instead) and leaves holding dL/dc_{s-1} through c_s.
        """
        row0, col0, last, cut = backward_rows(tile, s, truncate, d_pre, w_hh, acc, a_s, w_s)
        backward_finish(row0, col0, last, cut, s, cs, gates, dy, d_pre, dh_total, dh_n, dc_n, dc_carry, acc)

    @cuda.jit(device=True)
    def backward_finish(row0, col0, last, cut, s, cs, gates, dy, d_pre, dh_total, dh_n, dc_n, dc_carry, acc):
        """The tile at (row0, col0) given acc[:, 0], the recurrent term of dL/dh_s (unless ``last``
        or ``cut``): dL/dh_s, then :func:`cell_grad`."""
        B = dy.shape[1]
        H = dy.shape[2]
        k = col0 + cuda.threadIdx.x
        # Every row's loads first (one L2 round trip, not one per row): dh, dc_in and the records.
        dh = cuda.local.array(rows_per_thread, T_)
        dc_in = cuda.local.array(rows_per_thread, T_)
        rec = cuda.local.array((rows_per_thread, 6), T_)  # i, f, g, o, c_s, c_{s-1}
        for r in range(rows_per_thread):
            b = row0 + cuda.threadIdx.y * rows_per_thread + r
            if b < B and k < H:
                if last:  # the gradient on the final state
                    dh[r] = dy[s, b, k] + dh_n[b, k]
                    dc_in[r] = dc_n[b, k]
                elif cut:  # nothing crosses from step s+1 to s
                    dh[r] = dy[s, b, k]
                    dc_in[r] = zero
                else:
                    dh[r] = dy[s, b, k] + acc[r, 0]
                    dc_in[r] = dc_carry[b, k]
                for g in range(GATES):
                    rec[r, g] = gates[g, s, b, k]
                rec[r, 4] = cs[s + 1, b, k]
                rec[r, 5] = cs[s, b, k]
        for r in range(rows_per_thread):
            b = row0 + cuda.threadIdx.y * rows_per_thread + r
            if b < B and k < H:
                cell_grad(s, b, k, dh[r], dc_in[r], rec[r, 0], rec[r, 1], rec[r, 2], rec[r, 3], rec[r, 4], rec[r, 5],
                          d_pre, dh_total, dc_carry)

    @step_jit
    def backward_from_product(s, product, truncate, w_hh, cs, gates, dy, d_pre, dh_total, dh_n, dc_n, dc_carry):
        """Step s of BPTT on one tile (blockIdx.x), the recurrent term read from ``product`` =
        d_pre[s+1] W_hh (B, H), one GEMM for the whole step (the "gemm" recurrence)."""
        acc = cuda.local.array((rows_per_thread, 1), T_)
        last, cut = step_link(s, dy.shape[0], truncate)
        row0, col0 = backward_products(cuda.blockIdx.x, product, acc)
        backward_finish(row0, col0, last, cut, s, cs, gates, dy, d_pre, dh_total, dh_n, dc_n, dc_carry, acc)

    @step_jit
    def backward_step(s, truncate, w_hh, cs, gates, dy, d_pre, dh_total, dh_n, dc_n, dc_carry):
        """Step s of BPTT: one block per tile."""
        acc = cuda.local.array((rows_per_thread, 1), T_)
        a_s = cuda.shared.array(a_words, T_, alignment=SHARED_ALIGN)
        w_s = cuda.shared.array(w_words, T_, alignment=SHARED_ALIGN)
        backward_tile(cuda.blockIdx.x, s, truncate, w_hh, cs, gates, dy, d_pre, dh_total, dh_n, dc_n, dc_carry,
                      acc, a_s, w_s)

    @cuda.jit
    def backward_persistent(truncate, w_hh, cs, gates, dy, d_pre, dh_total, dh_n, dc_n, dc_carry):
        """All T steps of BPTT in one launch, a grid sync after each (d_pre[s] complete before step s-1)."""
        acc = cuda.local.array((rows_per_thread, 1), T_)
        a_s = cuda.shared.array(a_words, T_, alignment=SHARED_ALIGN)
        w_s = cuda.shared.array(w_words, T_, alignment=SHARED_ALIGN)
        grid = cuda.cg.this_grid()
        tiles = tile_count(dy.shape[1], dy.shape[2])
        for s in range(dy.shape[0] - 1, -1, -1):
            for tile in range(cuda.blockIdx.x, tiles, cuda.gridDim.x):
                backward_tile(tile, s, truncate, w_hh, cs, gates, dy, d_pre, dh_total, dh_n, dc_n, dc_carry, acc, a_s,
                              w_s)
            end_step(grid)

    @resident_kernel
    def backward_resident(units, truncate, w_hh, cs, gates, dy, d_pre, dh_total, dh_n, dc_n, dc_carry):
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
                dh = dc_in = i = f = g = o = c = c_prev = zero
                if mine:  # this cell's own inputs first: in flight while the block stages d_pre[s+1]
                    dh = dy[s, b, k]
                    if last:
                        dh += dh_n[b, k]
                        dc_in = dc_n[b, k]
                    elif not cut:
                        dc_in = dc_carry[b, k]
                    i = gates[0, s, b, k]
                    f = gates[1, s, b, k]
                    g = gates[2, s, b, k]
                    o = gates[3, s, b, k]
                    c = cs[s + 1, b, k]
                    c_prev = cs[s, b, k]
                held = resident_step(group, held, w_hh, True, H, units, units, K, d_pre[min(s + 1, T - 1)], B,
                                     through, res_s)
                if mine:
                    if through:
                        dh += partial_sum(res_s, units, B, K, u * B + b)
                    cell_grad(s, b, k, dh, dc_in, i, f, g, o, c, c_prev, d_pre, dh_total, dc_carry)
            end_step(grid)

    kernels = SimpleNamespace(forward_step=forward_step, forward_persistent=forward_persistent,
                              forward_resident=forward_resident, forward_from_product=forward_from_product,
                              backward_step=backward_step, backward_persistent=backward_persistent,
                              backward_resident=backward_resident, backward_from_product=backward_from_product)
    return share_untiled(kernels, _kernels, dtype_name, tile_shape)


def lstm_forward_device(x, w_ih, w_hh, bias, h0, c0, recurrence: str | None = None):
    """:func:`lstm_forward` on device arrays; returns device arrays (hs, cs, gates).

    ``recurrence``: "resident" (W_hh held in shared memory over one launch), "persistent" (one
    launch, W_hh re-staged every step), "per-step" (one launch a step), "gemm" (a step's product
    as one GEMM, cuBLAS where usable, then the cell math), or None (the default) to pick by shape
    (:func:`~rnnlab.kernels.cuda._resident.run_recurrence`).
    """
    check_sequences(x)
    T, B, I = x.shape
    H = h0.shape[1]
    tile = step_tile(B, H)
    k = _kernels(x.dtype.name, tile)
    x_proj = prefix_view(gemm(rows(x), w_ih, trans_b=True, bias=bias), (T, B, 4 * H))  # W_ih x_t + b, all t
    hs = device_empty((T + 1, B, H), x.dtype)
    cs = device_empty((T + 1, B, H), x.dtype)
    gates = device_empty((4, T, B, H), x.dtype)
    run_recurrence((k.forward_step, k.forward_persistent, k.forward_resident), recurrence, tile=tile, batch=B, hidden=H,
                   gates=GATES, backward=False, dtype=x.dtype, steps=range(T),
                   args=(x_proj, w_hh, h0, c0, hs, cs, gates),
                   by_gemm=(k.forward_from_product, previous_states(h0, hs), w_hh))
    return hs, cs, gates


def lstm_backward_device(x, w_ih, w_hh, hs, cs, gates, dy, dh_n, dc_n, truncate, recurrence: str | None = None):
    """:func:`lstm_backward` on device arrays; returns device arrays (dx, dw_ih, dw_hh, dbias, dh0, dc0, dh)."""
    check_sequences(x)
    T, B, I = x.shape
    H = hs.shape[2]
    tile = step_tile(B, H)
    k = _kernels(x.dtype.name, tile)
    d_pre = device_empty((T, B, 4 * H), x.dtype)  # dL/d(pre-activation) of i, f, g, o per step
    dh_total = device_empty((T, B, H), x.dtype)
    dc_carry = device_empty(dc_n.shape, x.dtype)  # ends as dL/dc_0
    truncate = int(truncate)
    run_recurrence((k.backward_step, k.backward_persistent, k.backward_resident), recurrence, tile=tile,
                   batch=B, hidden=H, gates=GATES, backward=True, dtype=x.dtype, steps=range(T - 1, -1, -1),
                   args=(truncate, w_hh, cs, gates, dy, d_pre, dh_total, dh_n, dc_n, dc_carry),
                   by_gemm=(k.backward_from_product, next_gradients(d_pre, truncate), w_hh))
    dh0 = recurrent_grad(prefix_view(d_pre, (B, 4 * H)), w_hh)  # the first step's gradient through the recurrence
    d_rows = rows(d_pre)
    dx = prefix_view(gemm(d_rows, w_ih), (T, B, I))
    dw_ih = gemm(d_rows, rows(x), trans_a=True)
    dw_hh = gemm(d_rows, rows(hs, T), trans_a=True)
    return dx, dw_ih, dw_hh, column_sums(d_rows), dh0, dc_carry, dh_total


def lstm_forward(x, w_ih, w_hh, bias, h0, c0, n_threads=None, *, recurrence: str | None = None,
                 device_arrays: dict | None = None):
    """Run the LSTM over x on the GPU; return host arrays (hs, cs, gates) as ``kernels.lstm_forward``.

    ``device_arrays``: a dict where the device copies of x, w_ih, w_hh and the results are
    recorded, for an :func:`lstm_backward` given the same dict and the same (unchanged) host arrays.
    """
    check_dtype(x=x, w_ih=w_ih, w_hh=w_hh, bias=bias, h0=h0, c0=c0)
    inputs = upload((x, w_ih, w_hh, bias, h0, c0))
    out = lstm_forward_device(*inputs, recurrence=recurrence)
    host = tuple(a.copy_to_host() for a in out)
    remember(device_arrays, (x, w_ih, w_hh, *host), (*inputs[:3], *out))
    return host


def lstm_backward(x, w_ih, w_hh, hs, cs, gates, dy, dh_n, dc_n, truncate, n_threads=None, *,
                  recurrence: str | None = None, device_arrays: dict | None = None):
    """BPTT on the GPU; arguments and host-array results (dx, dw_ih, dw_hh, dbias, dh0, dc0, dh) as
    ``kernels.lstm_backward`` (``truncate`` k > 0 cuts the recurrent gradient every k steps;
    ``device_arrays`` as in :func:`lstm_forward`)."""
    check_dtype(x=x, w_ih=w_ih, w_hh=w_hh, hs=hs, cs=cs, gates=gates, dy=dy, dh_n=dh_n, dc_n=dc_n)
    out = lstm_backward_device(*upload((x, w_ih, w_hh, hs, cs, gates, dy, dh_n, dc_n), device_arrays),
                               truncate, recurrence=recurrence)
    return tuple(a.copy_to_host() for a in out)
