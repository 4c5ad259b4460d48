"""The core's warnings and notes: stderr by default, collected per thread where a view asks."""

from __future__ import annotations

import threading

from rnnlab import notices


def test_warnings_and_notes_go_to_stderr_unless_collected(capsys):
    notices.warn("a run has no checkpoint")
    notices.note("a data file moved")
    assert capsys.readouterr().err == "rnnlab: warning: a run has no checkpoint\nrnnlab: note: a data file moved\n"
    with notices.collected() as said:
        notices.warn("kept")
        with notices.collected() as inner:  # nested: the inner one hears, the outer one again after it
            notices.note("inner")
        notices.note("outer")
    assert said == [("warning", "kept"), ("note", "outer")] and inner == [("note", "inner")]
    assert capsys.readouterr().err == ""


def test_collecting_in_one_thread_leaves_the_others_on_stderr(capsys):
    """The TUI opened a lab in a worker with contextlib.redirect_stderr, which swaps sys.stderr for
    the whole process: another thread's messages went into its capture (a code review)."""
    inside, outside = threading.Event(), threading.Event()

    def other() -> None:
        inside.wait(10)
        notices.warn("from another thread")
        outside.set()

    thread = threading.Thread(target=other)
    thread.start()
    with notices.collected() as said:
        inside.set()
        outside.wait(10)
        notices.note("from this one")
    thread.join(10)
    assert said == [("note", "from this one")]
    assert capsys.readouterr().err == "rnnlab: warning: from another thread\n"


def test_a_front_ends_writer_gets_each_line_not_collected_and_stderr_gets_them_again_after(capsys):
    """The CLI writes the core's warnings with its own say() (wrapped at words on a terminal): a writer
    handed in gets each whole line; a collecting thread still collects; outside it, plain lines again."""
    written: list[str] = []
    with notices.written_by(written.append):
        notices.warn("to the writer")
        with notices.collected() as said:
            notices.note("collected")
    notices.note("to stderr")
    assert written == ["rnnlab: warning: to the writer"] and said == [("note", "collected")]
    assert capsys.readouterr().err == "rnnlab: note: to stderr\n"
