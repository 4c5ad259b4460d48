"""What the core tells the user beside its results: warnings and notes, one line each.

By default each goes to stderr as ``rnnlab: warning: ...`` / ``rnnlab: note: ...`` (the CLI's
convention: results on stdout, messages on stderr). A view that has no stderr to show (the TUI,
full screen) collects them instead with :func:`collected`, in the thread that does the work: the
process's ``sys.stderr`` is left alone (swapping it, as ``contextlib.redirect_stderr`` does, took
every other thread's messages too). A front end that writes its own messages otherwise (the CLI wraps
them at words to a terminal's width) hands the others to its writer with :func:`written_by`.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Literal

Kind = Literal["warning", "note"]

_local = threading.local()
#: Who writes a line not collected (:func:`written_by`); None: a plain line on stderr.
_writer: Callable[[str], None] | None = None
#: Whether a note that is not collected is dropped (:func:`notes_dropped`: the CLI's --quiet).
_notes_dropped = False


def say(kind: Kind, text: str) -> None:
    """Tell the user ``text``: collected where this thread collects (:func:`collected`), else one
    line on stderr (or the line handed to the writer of :func:`written_by`); a note within
    :func:`notes_dropped`, nowhere."""
    collecting = getattr(_local, "collecting", None)
    if collecting is not None:
        collecting.append((kind, text))
        return
    if kind == "note" and _notes_dropped:
        return
    line = f"rnnlab: {kind}: {text}"
    if _writer is not None:
        _writer(line)
    else:
        sys.stderr.write(f"{line}\n")


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


@contextlib.contextmanager
def written_by(write: Callable[[str], None]) -> Iterator[None]:
    """Within it (in every thread), a warning or note that is not collected is handed to ``write`` as its
    whole line, without its newline (``rnnlab: warning: ...``), rather than written to stderr: the CLI's
    writer wraps it at words to a terminal's width, as its own messages, where the terminal broke it
    mid-word."""
    global _writer
    before, _writer = _writer, write
    try:
        yield
    finally:
        _writer = before


@contextlib.contextmanager
def notes_dropped() -> Iterator[None]:
    """Within it (in every thread), a note that is not collected is dropped; warnings are still said: the
    CLI's --quiet, whose sweep's log keeps what the user must see and nothing of what rnnlab did on its own."""
    global _notes_dropped
    before, _notes_dropped = _notes_dropped, True
    try:
        yield
    finally:
        _notes_dropped = before
