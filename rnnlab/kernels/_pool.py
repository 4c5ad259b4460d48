"""Parallel work for the kernels on plain Python threads.

The compiled kernels release the GIL (``nogil=True``), so a thread pool runs them truly in
parallel. This replaces numba's ``prange``: its OpenMP workers spin-wait after every parallel
region, and on this class of machine a spinning sibling made the following serial time loop
3x slower; pool threads sleep on a queue instead. It also keeps ``parallel=True`` compilation
(8-10 s per kernel, and not thread-safe under the workqueue layer) out of rnnlab entirely.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_executor_size = 0
_executor_pid = 0  # a forked child inherits the executor object but not its threads


def _submit(work: Callable[[int], None], chunks: range) -> list[Future]:
    """``work(c)`` for each chunk c, on a pool of at least ``len(chunks)`` threads. Submitted under
    the lock that grows the pool: another thread growing it in between shut down the pool just
    handed out, and the submit raised "cannot schedule new futures after shutdown"."""
    global _executor, _executor_size, _executor_pid
    workers = len(chunks)
    with _lock:
        if _executor is None or _executor_size < workers or _executor_pid != os.getpid():
            if _executor is not None and _executor_pid == os.getpid():
                _executor.shutdown(wait=False)  # (what it was given still runs)
            _executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rnnlab-kernel")
            _executor_size = workers
            _executor_pid = os.getpid()
        return [_executor.submit(work, c) for c in chunks]


def chunk_bounds(c: int, n_chunks: int, n: int) -> tuple[int, int]:
    """[start, stop) of chunk c when n items are split into n_chunks near-equal chunks."""
    return c * n // n_chunks, (c + 1) * n // n_chunks


def parallel_for(n_chunks: int, work: Callable[[int], None]) -> None:
    """Run ``work(c)`` for c in range(n_chunks): chunk 0 on this thread, the rest on the pool."""
    if n_chunks <= 1:
        work(0)
        return
    futures = _submit(work, range(1, n_chunks))
    try:
        work(0)
    finally:
        for future in futures:
            future.result()  # re-raises a worker's exception here
