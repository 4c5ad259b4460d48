"""HandoffLock: the Lab's lock must let a reader in between two training steps; TrainingControl's
pause, stop and start flags."""

from __future__ import annotations

import threading
import time

import pytest

from conftest import held_by_another_thread
from rnnlab._locks import HandoffLock, TrainingControl


def test_reentrant_and_owner_checked():
    lock = HandoffLock()
    with lock:
        with lock:
            assert lock.locked_by_me()
        assert lock.locked_by_me()
    assert not lock.locked_by_me()
    with pytest.raises(RuntimeError, match="does not hold"):
        lock.release()


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_a_queued_reader_holds_the_lock_when_its_holders_release_returns():
    """The handoff itself, without timing: a lock that only released (no handoff) was caught by the
    greedy-loop test below 3 times in 5."""
    lock = HandoffLock(handoff_timeout=10.0)
    done = threading.Event()

    def reader():
        with lock:
            done.wait(10)

    lock.acquire()  # the trainer, in a step
    thread = threading.Thread(target=reader)
    thread.start()
    deadline = time.monotonic() + 10
    while lock._waiting == 0 and time.monotonic() < deadline:  # the reader has queued
        time.sleep(0.001)
    lock.release()  # returns once the reader holds it
    took_it_back = lock.acquire(blocking=False)  # the trainer's next step must wait for the reader
    if took_it_back:
        lock.release()  # (and the reader, queued behind it, gets its turn: no test hangs)
    done.set()
    thread.join(10)
    assert not took_it_back and not thread.is_alive()
    assert lock.acquire(blocking=False)
    lock.release()


def test_a_waiting_reader_gets_in_between_two_steps_of_a_greedy_loop():
    """The trainer's pattern: hold the lock for a step, release, re-acquire at once. A reader that
    queues must get the lock at the next release, not after many more steps (with an RLock it
    waited for 100-200 steps here: the releasing thread keeps the GIL and takes the lock back)."""
    lock = HandoffLock(handoff_timeout=1.0)
    steps = 0
    stop = threading.Event()

    def greedy():
        nonlocal steps
        while not stop.is_set():
            with lock:
                steps += 1
                busy(0.002)  # one "training step", holding the lock and the GIL

    trainer = threading.Thread(target=greedy)
    trainer.start()
    try:
        time.sleep(0.02)
        waited_steps = []
        for _ in range(20):
            before = steps
            with lock:
                waited_steps.append(steps - before)
            time.sleep(0.005)
    finally:
        stop.set()
        trainer.join()
    # the step running when the reader queued finishes; then the reader is next
    assert max(waited_steps) <= 1, waited_steps


def test_mutual_exclusion_under_contention():
    lock = HandoffLock()
    inside = 0
    overlaps = 0
    counter = 0

    def work():
        nonlocal inside, overlaps, counter
        for _ in range(300):
            with lock:
                inside += 1
                overlaps += inside > 1
                counter += 1
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == 0 and counter == 900


def test_a_timed_acquire_gives_up_and_leaves_the_holder_undisturbed():
    lock = HandoffLock()
    with held_by_another_thread(lock):  # a training step that takes long (an evaluation, a kernel compiling)
        started = time.perf_counter()
        assert lock.acquire(timeout=0.05) is False and lock.acquire(blocking=False) is False
        assert time.perf_counter() - started < 2
        assert not lock.locked_by_me() and lock._waiting == 0  # nobody left waiting: the holder's release won't stall
    assert lock.acquire(timeout=1) is True and lock.locked_by_me()
    lock.release()


def test_the_labs_timer_refresh_gives_up_while_the_trainer_holds_the_weights():
    from rnnlab.lab import Lab

    lab = Lab.open("hello")
    trace = lab.trace
    with held_by_another_thread(lab.lock):
        assert lab.refresh(timeout=0.05) is False and lab.trace is trace  # nothing changed, the screen not frozen
    assert lab.refresh(timeout=1) is True and lab.trace is not trace


def test_a_bad_timeout_leaves_no_phantom_waiter_to_stall_every_release():
    lock = HandoffLock(handoff_timeout=5.0)
    for bad in ({"blocking": False, "timeout": 0.1}, {"timeout": -0.5}):
        with pytest.raises(ValueError):
            lock.acquire(**bad)
    assert lock._waiting == 0
    started = time.perf_counter()
    lock.acquire()
    lock.release()  # would wait handoff_timeout for a waiter that does not exist
    assert time.perf_counter() - started < 2.0


def test_a_stop_between_a_views_start_and_its_workers_start_stands():
    """seq2seq's t marks the lab running at once, then a worker starts the loop: an s in between
    must stop that run, and a stop left from the last run must not show "stopping" for the new one."""
    class Engine(TrainingControl):
        def __init__(self) -> None:
            self._init_training_control()

    engine = Engine()
    engine.stop_training()  # left from a run that ended
    engine.training_status = "stopped"
    engine.mark_running()  # t
    assert engine.status_shown == "running" and not engine.stop_requested
    engine.stop_training()  # s, before the worker runs
    engine._start_training()  # the worker
    assert engine.stop_requested and engine._between_steps(lambda: False)  # the loop stops at once
    engine.training_status = "stopped"
    engine._start_training()  # a later run started by the worker alone: the old stop is cleared
    assert engine.status_shown == "running" and not engine._between_steps(lambda: False)
