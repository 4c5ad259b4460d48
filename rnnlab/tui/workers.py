"""Long computations of the labs' thread workers, kept from holding up a quit."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from textual.worker import Worker

T = TypeVar("T")


def run_until_cancelled(compute: Callable[[], T], worker: Worker, name: str = "rnnlab-compute") -> T | None:
    """Run ``compute`` in a daemon thread and wait for it, in a thread worker; returns its result
    (None if the worker was cancelled first). A NumPy or Numba call cannot be interrupted, and
    asyncio waits at exit for every worker thread (not daemons) to finish: q would wait for the
    whole computation (an ESN refit of 1000 units left the terminal blank for 13 s). Cancelled (the
    app quits, or a newer request replaced it), the worker stops waiting; the computation goes on
    to its end, or to the process's. Its exception is raised here, in the worker."""
    result: list[T] = []
    failure: list[Exception] = []

    def run() -> None:
        try:
            result.append(compute())
        except Exception as exc:  # raised again in the worker: its ERROR state reports it
            failure.append(exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    while thread.is_alive() and not worker.is_cancelled:
        thread.join(0.05)
    if failure:
        raise failure[0]
    return result[0] if result else None
