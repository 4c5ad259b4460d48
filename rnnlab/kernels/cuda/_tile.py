"""The rules a recurrent-step tile and a GEMM tile must obey, importable without numba.cuda (so a
benchmark can refuse a tile variant before it starts a GPU process)."""

from __future__ import annotations


def step_tile_problem(units: int, row_threads: int, rows_per_thread: int, k: int) -> str | None:
    """Why a step tile cannot work, or None if it can.

    A block of ``units`` x ``row_threads`` threads owns ``units`` units of
    ``row_threads * rows_per_thread`` sequences and goes through K ``k`` at a time. Every thread
    loads the same number of elements of each shared-memory stage (see
    ``_common.recurrent_product``): the stages of h (rows x k) and W (units x k per gate) are read
    along k by whole passes of the block, so k must divide the threads and the rows of one pass
    (threads / k) must divide both the rows and the units. W^T's stage is read along the units,
    ``row_threads`` rows of k at a time, which then divide k too (k = units / (threads / k) *
    row_threads).
    """
    if min(units, row_threads, rows_per_thread, k) < 1:
        return "every size must be positive"
    threads = units * row_threads
    if threads > 1024:
        return f"{threads} threads, more than a block's 1024"
    if threads % k:
        return f"K={k} must divide the {threads} threads"
    pass_rows = threads // k
    if (row_threads * rows_per_thread) % pass_rows or units % pass_rows:
        return (f"the {pass_rows} rows one pass of the block loads must divide the "
                f"{row_threads * rows_per_thread} rows and the {units} units")
    return None


def gemm_tile_problem(bm: int, bn: int, bk: int, tx: int, ty: int) -> str | None:
    """Why a GEMM tile cannot work, or None if it can: every thread owns the same number of
    outputs, so TY divides BM and TX divides BN, on at most 1024 threads."""
    if min(bm, bn, bk, tx, ty) < 1:
        return "every size must be positive"
    if tx * ty > 1024:
        return f"{tx * ty} threads, more than a block's 1024"
    if bm % ty or bn % tx:
        return f"the {ty} x {tx} threads must divide the {bm} x {bn} outputs evenly"
    return None
