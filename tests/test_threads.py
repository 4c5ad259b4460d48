"""The kernels' thread pool and BLAS limit behave under the conditions a lab creates."""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest

import rnnlab
from rnnlab.kernels import blas_single_threaded

# Large enough that the batch is split across the pool's threads.
T, B, I, H = 12, 16, 24, 96


def _run_lstm(seed: int) -> np.ndarray:
    layer = rnnlab.LSTM(I, H, seed=seed)
    x = np.random.default_rng(seed).standard_normal((T, B, I)).astype(np.float32)
    y, _, trace = layer.forward(x)
    grads = layer.backward(trace, np.ones_like(y))
    return np.concatenate([y.ravel(), grads["weight_hh_l0"].ravel()])


def test_threaded_and_single_threaded_runs_agree():
    import numba

    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = _run_lstm(3)
    finally:
        numba.set_num_threads(before)
    threaded = _run_lstm(3)
    np.testing.assert_allclose(threaded, serial, rtol=1e-5, atol=1e-6)


def test_concurrent_calls_from_two_threads_give_the_same_numbers():
    # The TUI calls kernels on its own thread while a trainer thread does too.
    expected = {seed: _run_lstm(seed) for seed in (1, 2)}
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            for _ in range(3):
                results[seed] = _run_lstm(seed)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    for seed in (1, 2):
        np.testing.assert_array_equal(results[seed], expected[seed])


def _child(queue) -> None:
    queue.put(float(_run_lstm(5).sum()))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_kernels_work_in_a_forked_child_after_the_pool_started():
    parent = float(_run_lstm(5).sum())  # starts the pool in this process
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(queue,))
    process.start()
    process.join(timeout=120)
    if process.is_alive():
        process.kill()
    assert process.exitcode == 0, "the child hung or crashed"
    assert queue.get(timeout=5) == pytest.approx(parent, rel=1e-6)


def test_blas_limit_is_restored_after_kernel_calls():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    _run_lstm(0)
    before = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    with blas_single_threaded():
        inside = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    after = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert inside and all(n == 1 for n in inside)
    assert after == before


def test_a_blas_limit_set_during_a_kernel_call_is_not_undone_by_its_end():
    """The end of a kernel call put back the limit of its start, over one the user set meanwhile."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    _run_lstm(0)
    controller = threadpoolctl.ThreadpoolController()
    original = controller.select(user_api="blas").info()
    try:
        controller.limit(limits=2, user_api="blas")
        with blas_single_threaded():
            controller.limit(limits=3, user_api="blas")  # another thread's own setting
        assert [i["num_threads"] for i in controller.select(user_api="blas").info()] == [3] * len(original)
    finally:
        for info, lib in zip(original, controller.select(user_api="blas").lib_controllers):
            lib.set_num_threads(info["num_threads"])


def test_a_pool_grown_by_one_thread_never_fails_another_threads_submit():
    """The pool was handed out under the lock but submitted to outside it: a thread growing it in
    between shut it down, and the other thread's submit raised "cannot schedule new futures after
    shutdown" (a numerics audit forced 3222 of 44003 growths to fail)."""
    from rnnlab.kernels import _pool

    failures, done = [], threading.Event()

    def small():
        while not done.is_set():
            try:
                _pool.parallel_for(2, lambda c: None)
            except RuntimeError as exc:
                failures.append(exc)

    other = threading.Thread(target=small)
    other.start()
    try:
        for _ in range(300):
            _pool._executor_size = 1  # as if it had never been larger: the next call grows it
            _pool.parallel_for(3, lambda c: None)
    finally:
        done.set()
        other.join()
    assert failures == []


def _python(code: str) -> str:
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_layer_call_leaves_numbas_threading_layer_unlaunched_for_a_fork_childs_own_prange():
    """kernel_threads() asked numba.get_num_threads(), which launches its threading layer (GNU OpenMP):
    a fork child of a process that had run any rnnlab layer died ("fork() called from a process already
    using GNU OpenMP, this is unsafe") at its first numba parallel region of its own."""
    said = _python("import numpy as np, rnnlab\n"
                   "from numba.np.ufunc import parallel\n"
                   "layer = rnnlab.RNN(2, 3)\n"
                   "y, _, trace = layer.forward(np.ones((4, 1, 2), np.float32))\n"
                   "layer.backward(trace, np.ones_like(y))\n"
                   "print(parallel._is_initialized)")
    assert said == "False"


def test_a_child_forked_during_a_kernel_call_gets_its_blas_threads_and_a_free_lock_back():
    """The child inherited the count of calls in flight and OpenBLAS held to one thread, which no call
    of its own ever restored (every numpy product of a pool worker stayed single-threaded)."""
    said = _python("import os, threading\n"
                   "from rnnlab.kernels import _threads, blas_single_threaded\n"
                   "for lib in _threads._controllers(): lib.set(2)  # (one thread already: nothing to restore)\n"
                   "before = [lib.get() for lib in _threads._controllers()]\n"
                   "inside, done = threading.Event(), threading.Event()\n"
                   "def call():\n"
                   "    with blas_single_threaded():\n"
                   "        with _threads._lock:  # held at the fork, as by a call entering or leaving\n"
                   "            inside.set(); done.wait()\n"
                   "t = threading.Thread(target=call); t.start(); inside.wait()\n"
                   "pid = os.fork()\n"
                   "if pid == 0:\n"
                   "    ok = _threads._active == 0 and not _threads._lock.locked() and \\\n"
                   "        [lib.get() for lib in _threads._controllers()] == before\n"
                   "    os._exit(0 if ok else 1)\n"
                   "_, status = os.waitpid(pid, 0); done.set(); t.join()\n"
                   "print(os.waitstatus_to_exitcode(status))")
    assert said == "0"
