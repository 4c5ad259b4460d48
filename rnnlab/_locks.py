"""A reentrant lock that hands itself to a waiting thread, and the pause/stop control of a training loop.

The Lab's trainer holds its lock for each training step and re-acquires it right after the
release. With ``threading.RLock`` the waiting thread (the TUI reading the weights) is woken but
must first get the GIL, and by then the trainer has usually taken the lock again: measured, a
reader waited up to 0.4 s (dozens of steps) for a lock that is free between every two steps.
:class:`HandoffLock` makes the releasing thread wait, when someone is queued, until that
someone holds the lock — one short handoff per reader, nothing when nobody waits.
"""

from __future__ import annotations

import threading

__all__ = ["HandoffLock", "TrainingControl"]


class HandoffLock:
    """``threading.RLock`` with a handoff on release: a thread that fully releases the lock while
    another is waiting for it blocks until a waiter has acquired it (at most ``handoff_timeout``
    seconds), so a thread that re-acquires in a loop cannot starve the others."""

    def __init__(self, handoff_timeout: float = 0.05) -> None:
        self._lock = threading.Lock()  # re-entry is counted here, not by the lock
        self._state = threading.Condition(threading.Lock())
        self._waiting = 0  # threads blocked in acquire()
        self._grants = 0  # completed first-level acquisitions, to tell that a waiter got in
        self._owner: int | None = None
        self._depth = 0
        self.handoff_timeout = handoff_timeout

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """As ``threading.RLock.acquire``: True once held; False if not within ``timeout`` seconds
        (or at once, not ``blocking``). A waiter is handed the lock at the holder's next release."""
        me = threading.get_ident()
        if self._owner == me:  # re-entry: only the owner ever sees its own ident here
            self._depth += 1
            return True
        with self._state:
            self._waiting += 1
        got = False
        try:  # a bad timeout raises here: the count of waiters must still come down, or every release stalls
            got = self._lock.acquire(blocking, timeout)
        finally:
            with self._state:
                self._waiting -= 1
                if got:
                    self._grants += 1
                    self._owner, self._depth = me, 1
                self._state.notify_all()  # a releaser handing off waits for a grant or no waiter
        return got

    def release(self) -> None:
        if self._owner != threading.get_ident():
            raise RuntimeError("cannot release a lock this thread does not hold")
        self._depth -= 1
        if self._depth:
            return
        with self._state:
            self._owner = None
            self._lock.release()
            if self._waiting:
                granted = self._grants
                self._state.wait_for(lambda: self._grants != granted or not self._waiting, self.handoff_timeout)

    def locked_by_me(self) -> bool:
        return self._owner == threading.get_ident()

    __enter__ = acquire

    def __exit__(self, *exc_info) -> None:
        self.release()


class TrainingControl:
    """Pause, resume and stop for an engine that trains in the caller's thread (a view's worker):
    the flags are checked between two steps, and ``training_status`` is what the views show
    (idle | running | paused | completed | stopped | diverged). The Lab and the architecture labs
    share it; each has its own training loop around :meth:`_between_steps`."""

    def _init_training_control(self) -> None:
        self.training_status = "idle"
        self.training_message = ""
        self._pause = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by resume and stop: a paused loop waits on it, not in a busy loop

    @property
    def training(self) -> bool:
        """Whether training is under way: running, or paused (not stopped, completed or diverged)."""
        return self.training_status in ("running", "paused")

    @property
    def stop_requested(self) -> bool:
        """Training was asked to stop and has not yet: the step under way finishes first (a
        second or more for a large model)."""
        return self.training and self._stop.is_set()

    @property
    def status_shown(self) -> str:
        """``training_status`` as the views show it: "stopping" between a stop and its step's end."""
        return "stopping" if self.stop_requested else self.training_status

    def pause_training(self) -> None:
        """Hold training between two steps until :meth:`resume_training` (or a stop)."""
        self._wake.clear()
        self._pause.set()

    def resume_training(self) -> None:
        """Let paused training go on."""
        self._pause.clear()
        self._wake.set()

    def stop_training(self) -> None:
        """Stop training after the step under way (a paused one at once)."""
        self._stop.set()
        self._pause.clear()
        self._wake.set()

    def mark_running(self) -> None:
        """Training is about to start in a worker: "running" at once, for the view's timer and a
        second key to see (a stop left from the last run cleared now, not when the worker starts:
        an s pressed in between must stop this one)."""
        self._stop.clear()
        self._pause.clear()
        self.training_status, self.training_message = "running", ""

    def _start_training(self) -> None:
        if self.training_status != "running":  # else mark_running did it, and a stop since must stand
            self.mark_running()

    def _stopping(self, should_stop) -> bool:
        return self._stop.is_set() or should_stop()

    def _between_steps(self, should_stop) -> bool:
        """Hold here while paused (status "paused"); True when training should stop instead of
        taking another step."""
        while self._pause.is_set() and not self._stopping(should_stop):
            self.training_status = "paused"
            self._wake.wait(0.25)  # resume or stop wake it at once; should_stop (a view's cancel) is polled
        if self._stopping(should_stop):
            return True
        self.training_status = "running"
        return False
