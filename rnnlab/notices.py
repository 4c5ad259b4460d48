"""What the core tells the user beside its results: warnings and notes, one line each.

By default each goes to stderr as ``rnnlab: warning: ...`` / ``rnnlab: note: ...`` (the CLI's
convention: results on stdout, messages on stderr). A view that has no stderr to show (the TUI,
full screen) collects them instead with :func:`collected`, in the thread that does the work: the
process's ``sys.stderr`` is left alone (swapping it, as ``contextlib.redirect_stderr`` does, took
every other thread's messages too).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Literal

Kind = Literal["warning", "note"]

_local = threading.local()


def say(kind: Kind, text: str) -> None:
    """Tell the user ``text``: collected where this thread collects (:func:`collected`), else one
    line on stderr."""
    collecting = getattr(_local, "collecting", None)
    if collecting is not None:
        collecting.append((kind, text))
        return
    sys.stderr.write(f"rnnlab: {kind}: {text}\n")


def warn(text: str) -> None:
    """:func:`say` a warning: something the user should act on or know before trusting a result."""
    say("warning", text)


def note(text: str) -> None:
    """:func:`say` a note: what rnnlab did on the user's behalf (a data file found where it moved)."""
    say("note", text)


def listener() -> int:
    """Who hears :func:`say` in this thread now (an id): a message said once per listener is said
    again to a new one (the TUI opens a run the CLI has checked already)."""
    collecting = getattr(_local, "collecting", None)
    return id(collecting) if collecting is not None else id(sys.stderr)


@contextlib.contextmanager
def collected() -> Iterator[list[tuple[Kind, str]]]:
    """Within it, this thread's warnings and notes are appended to the list it gives, as
    ``(kind, text)``, instead of written to stderr."""
    before = getattr(_local, "collecting", None)
    _local.collecting = got = []
    try:
        yield got
    finally:
        _local.collecting = before
