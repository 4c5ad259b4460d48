"""The lab's heavy keys (b, B, n, i on a large model or a long sequence) compute in a worker thread.

With ``BACKGROUND_WORK_MACS`` set to 0 every such key takes the worker's path on the small hello
lab; the work is held on a threading.Event the test releases, so what the screen does meanwhile
(the status line, refused keys, quitting) is checked while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time

from conftest import screen_text, wait_for
from rnnlab.errors import UserError
from rnnlab.data import make_task
from rnnlab.spec import load_spec, preset_names
from rnnlab.tui import app as app_module
from rnnlab.tui.app import BACKGROUND_WORK_MACS, BACKWARD_WORK, LabApp, forward_macs
from rnnlab.tui.widgets import Heatmap

wait_for = functools.partial(wait_for, timeout=60.0)
SIZE = (160, 50)
HOLD_S = 30.0  # the longest a held computation waits for its release (a broken test must not hang)


def drive(check, target=None, size=SIZE) -> LabApp:
    """Open the lab on ``target``, wait until it is ready, run ``check(app, pilot)``; the app."""
    app = LabApp(target)

    async def main():
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: app.lab is not None)
            await check(app, pilot)

    asyncio.run(main())
    return app


class Held:
    """Wraps a method of ``obj``: each call waits until :meth:`release` (or HOLD_S), then runs it;
    with ``thread``, only calls from the thread of that name wait. As a context manager it
    releases on the way out, so a failing test never leaves the computation waiting."""

    def __init__(self, monkeypatch, obj, name: str, thread: str | None = None) -> None:
        self.started, self.released = threading.Event(), threading.Event()
        original = getattr(obj, name)

        def held(*args, **kwargs):
            if thread is None or threading.current_thread().name == thread:
                self.started.set()
                self.released.wait(HOLD_S)
            return original(*args, **kwargs)

        monkeypatch.setattr(obj, name, held)

    def release(self) -> None:
        self.released.set()

    def __enter__(self) -> "Held":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def record_notices(monkeypatch, app) -> list[tuple[str, str]]:
    notices: list[tuple[str, str]] = []
    monkeypatch.setattr(app, "notify",
                        lambda message, severity="information", **kw: notices.append((message, severity)))
    return notices


def computing(app) -> bool:
    return any(w.group == "compute" and w.is_running for w in app.workers)


def computed(app) -> bool:
    """The compute worker has finished and the app has taken its result."""
    return not computing(app) and app._computing is None


def test_the_estimate_keeps_every_preset_inline_and_sends_a_large_model_to_the_worker():
    """Every preset at its own sizes, forward and backward, is under the threshold; the text preset
    at H=512, 2 bidirectional layers and a 1591-step typed sequence (measured 620 ms forward, 840
    ms backward) is far over it."""
    for name in preset_names():
        spec = load_spec(name)
        task = make_task(spec.task["kind"], spec.task)
        macs = forward_macs(spec.model, task.length, task.input_size, task.output_size)
        assert 0 < BACKWARD_WORK * macs < BACKGROUND_WORK_MACS / 10, name
    spec = load_spec("text").with_overrides({"model.hidden_size": 512, "model.num_layers": 2,
                                             "model.bidirectional": True})
    task = make_task(spec.task["kind"], spec.task)
    assert forward_macs(spec.model, 1591, task.input_size, task.output_size) > 10 * BACKGROUND_WORK_MACS


def test_at_the_default_threshold_b_stays_inline(monkeypatch):
    started = []
    original = LabApp._compute_in_background
    monkeypatch.setattr(LabApp, "_compute_in_background", lambda self, compute: started.append(compute)
                        or original(self, compute))

    async def check(app, pilot):
        await pilot.press("b")
        assert app.lab.bptt_cursor == 3 and "BPTT t=4" in screen_text(app)  # at once, as always
        await pilot.press("B", "n")
        assert app.lab.bptt_cursor is None and app.lab.sequence_seed == app.lab.spec.seed + 1
        assert not started and not computing(app)

    drive(check)


def test_b_computes_in_the_background_refusing_keys_meanwhile(monkeypatch):
    monkeypatch.setattr(app_module, "BACKGROUND_WORK_MACS", 0)

    async def check(app, pilot):
        lab = app.lab
        notices = record_notices(monkeypatch, app)
        with Held(monkeypatch, lab, "run_backward") as held:
            await pilot.press("b")
            await wait_for(pilot, held.started.is_set)
            assert computing(app) and lab.bptt_cursor is None
            await pilot.pause(0.3)  # a few timer ticks: the spinner turns
            assert "computing BPTT over 4 steps ..." in screen_text(app)
            await pilot.press("l", "n", "b")
            assert [m for m, _ in notices] == ["busy computing BPTT over 4 steps: wait a moment"] * 3
            assert lab.cursor == 0 and lab.sequence_seed == lab.spec.seed  # refused, not queued
            await pilot.press("question_mark")  # the screen keeps answering
            await wait_for(pilot, lambda: "Click a heatmap column" in screen_text(app))
            await pilot.press("escape")
        await wait_for(pilot, lambda: not computing(app) and lab.bptt_cursor == 3)
        await pilot.pause()
        assert "BPTT t=4" in screen_text(app) and app.query_one("#map-dh", Heatmap).revealed == 1
        assert lab.cursor == 0 and len(notices) == 3
        await pilot.press("l", "b")  # the keys work again
        assert lab.cursor == 1 and lab.bptt_cursor == 2

    drive(check)


def test_bptt_all_computes_in_the_background(monkeypatch):
    monkeypatch.setattr(app_module, "BACKGROUND_WORK_MACS", 0)

    async def check(app, pilot):
        lab = app.lab
        with Held(monkeypatch, lab, "run_backward") as held:
            await pilot.press("B")
            await wait_for(pilot, held.started.is_set)
            await pilot.pause()
            assert computing(app) and "computing BPTT over 4 steps ..." in screen_text(app)
        await wait_for(pilot, lambda: not computing(app) and lab.bptt_cursor == 0)
        await pilot.pause()
        assert "BPTT t=1" in screen_text(app) and app.query_one("#map-dh", Heatmap).revealed == 4

    drive(check)


def test_bptt_all_after_b_reveals_the_pass_already_computed(monkeypatch):
    """B once the backward pass of this trace has run only reveals every step: no second pass,
    so no worker, and no view meanwhile reads a dL/dh being rewritten."""
    monkeypatch.setattr(app_module, "BACKGROUND_WORK_MACS", 0)

    async def check(app, pilot):
        lab = app.lab
        await pilot.press("b")
        await wait_for(pilot, lambda: computed(app) and lab.bptt_cursor == 3)
        passes = []
        monkeypatch.setattr(lab.model, "backward", lambda *a, **k: passes.append(a))
        await pilot.press("B")
        assert lab.bptt_cursor == 0 and not computing(app) and not passes
        await pilot.pause()
        assert "BPTT t=1" in screen_text(app) and app.query_one("#map-dh", Heatmap).revealed == 4

    drive(check)


def test_a_resize_while_computing_draws_nothing_from_the_lab_until_it_is_done(monkeypatch):
    """The worker owns the lab's trace and cursors: the sequence bar, which redraws itself on a
    resize, waits, and every panel is redrawn once the work is done."""
    from rnnlab.tui.panels import SequenceBar

    monkeypatch.setattr(app_module, "BACKGROUND_WORK_MACS", 0)

    async def check(app, pilot):
        lab = app.lab
        drawn = []
        original = SequenceBar.refresh_view
        monkeypatch.setattr(SequenceBar, "refresh_view", lambda self: drawn.append(app.computing) or original(self))
        with Held(monkeypatch, lab, "run_backward") as held:
            await pilot.press("b")
            await wait_for(pilot, held.started.is_set)
            await pilot.resize_terminal(120, 40)
            await pilot.pause(0.2)
            assert computing(app) and drawn == []
        await wait_for(pilot, lambda: computed(app) and lab.bptt_cursor == 3)
        await pilot.pause()
        assert drawn and None in drawn and not [d for d in drawn if d is not None]
        assert "BPTT t=4" in screen_text(app)

    drive(check)


def test_a_typed_sequence_is_read_in_the_background_and_a_refused_one_named_in_the_dialog(monkeypatch):
    monkeypatch.setattr(app_module, "BACKGROUND_WORK_MACS", 0)

    async def check(app, pilot):
        lab = app.lab
        notices = record_notices(monkeypatch, app)
        with Held(monkeypatch, lab, "refresh") as held:
            await pilot.press("i", *"hex", "enter")
            await pilot.pause()
            assert "'x'" in str(app.screen.query_one("#prompt-error").render())  # in the dialog, as inline
            assert not held.started.is_set() and not computing(app)
            app.screen.query_one("#prompt-input").value = ""
            await pilot.press(*"hellohello", "enter")
            await wait_for(pilot, held.started.is_set)
            await pilot.pause()
            assert computing(app) and "reading the typed sequence (9 steps) ..." in screen_text(app)
            await pilot.press("b")
            assert notices[-1] == ("busy reading the typed sequence (9 steps): wait a moment", "warning")
            assert lab.steps == 4  # the old sequence until its new trace is there
        await wait_for(pilot, lambda: not computing(app) and lab.steps == 9)
        await pilot.pause()
        assert lab.task.target_tokens(lab.sequence) == list("ellohello") and lab.bptt_cursor is None
        assert "t 0/9" in screen_text(app) and app.query_one("#map-h", Heatmap).data.shape[1] == 9

    drive(check)


def test_a_sequence_too_long_for_self_attention_is_refused_in_the_dialog_on_the_background_path(
        monkeypatch, tmp_path):
    monkeypatch.setattr(app_module, "BACKGROUND_WORK_MACS", 0)
    spec = load_spec("text").with_overrides({"model.cell": "selfattention", "model.hidden_size": 16,
                                             "model.num_heads": 2})
    path = tmp_path / "attention.toml"
    path.write_text(spec.to_toml(), encoding="utf-8")

    async def check(app, pilot):
        await pilot.press("i")
        await wait_for(pilot, lambda: app.screen.query("#prompt-input"))
        app.screen.query_one("#prompt-input").value = "the " * 20
        await pilot.press("enter")
        await pilot.pause()
        assert "positional encoding" in str(app.screen.query_one("#prompt-error").render())
        assert not computing(app) and app.lab.steps == 50

    drive(check, str(path))


def test_n_reads_a_new_sequence_in_the_background(monkeypatch):
    monkeypatch.setattr(app_module, "BACKGROUND_WORK_MACS", 0)

    async def check(app, pilot):
        lab = app.lab
        with Held(monkeypatch, lab, "refresh") as held:
            await pilot.press("n")
            await wait_for(pilot, held.started.is_set)
            await pilot.pause()
            assert "reading a new sequence (4 steps) ..." in screen_text(app)
        await wait_for(pilot, lambda: not computing(app))
        assert lab.sequence_seed == lab.spec.seed + 1 and "t 0/4" in screen_text(app)

    drive(check)


def test_an_error_in_the_background_is_a_notice_and_the_lab_goes_on(monkeypatch):
    monkeypatch.setattr(app_module, "BACKGROUND_WORK_MACS", 0)

    async def check(app, pilot):
        lab = app.lab
        notices = record_notices(monkeypatch, app)

        def fails(*args, **kwargs):
            raise UserError("the backward pass failed")

        monkeypatch.setattr(lab, "run_backward", fails)
        await pilot.press("b")
        await wait_for(pilot, lambda: computed(app))
        assert ("the backward pass failed", "error") in notices
        assert lab.bptt_cursor is None and "t 0/4" in screen_text(app)
        await pilot.press("l")
        assert lab.cursor == 1

    drive(check)


def test_quitting_while_computing_exits_at_once(monkeypatch):
    """Textual cancels the worker on the way out but cannot stop the computation; the app must not
    wait for it (asyncio waits for every worker thread at exit)."""
    monkeypatch.setattr(app_module, "BACKGROUND_WORK_MACS", 0)
    holds = []

    async def check(app, pilot):
        held = Held(monkeypatch, app.lab, "run_backward")
        holds.append(held)
        await pilot.press("b")
        await wait_for(pilot, held.started.is_set)
        await pilot.press("q")

    try:
        start = time.monotonic()
        app = drive(check)
        assert time.monotonic() - start < HOLD_S / 2
        assert app.return_code == 0
    finally:
        holds and holds[0].release()


def test_training_does_not_refresh_the_trace_under_a_background_backward_pass(monkeypatch):
    """b is allowed while training: the timer's heatmap refresh waits for the worker, and so does
    the refresh at the end of a training stopped meanwhile; BPTT then follows the new weights."""
    monkeypatch.setattr(app_module, "BACKGROUND_WORK_MACS", 0)

    async def check(app, pilot):
        lab = app.lab
        lab.reconfigure({"train.steps": 1_000_000})
        refreshes = []
        original = lab.refresh
        monkeypatch.setattr(lab, "refresh", lambda *a, **k: refreshes.append(k) or original(*a, **k))
        with Held(monkeypatch, lab, "run_backward") as held:
            await pilot.press("t")
            await wait_for(pilot, lambda: len(lab.history) > 0)
            await pilot.press("b")
            await wait_for(pilot, held.started.is_set)
            refreshed = len(refreshes)
            steps = len(lab.history)
            await wait_for(pilot, lambda: len(lab.history) > steps + 50 and app._ticks > 2 * 8, what="training")
            await pilot.press("s")
            await wait_for(pilot, lambda: not lab.training)
            await pilot.pause(0.2)
            assert len(refreshes) == refreshed and app._refresh_when_computed
        await wait_for(pilot, lambda: computed(app))
        assert len(refreshes) == refreshed + 1 and refreshes[-1].get("keep_bptt")
        assert lab.bptt_cursor == 3 and "dh" in lab.trace.names and "BPTT t=4" in screen_text(app)

    drive(check)


def test_a_large_sequence_follows_the_weights_in_a_pause_not_every_few_ticks(monkeypatch):
    """Where bringing the bench sequence up to new weights is large work, the timer does not redo
    it while training runs (it would freeze the screen every HEATMAP_EVERY ticks; the status line
    says so), but once when training pauses, in the worker."""
    monkeypatch.setattr(app_module, "BACKGROUND_WORK_MACS", 0)

    async def check(app, pilot):
        lab = app.lab
        lab.reconfigure({"train.steps": 1_000_000})
        refreshes = []
        original = lab.refresh
        monkeypatch.setattr(lab, "refresh", lambda *a, **k: refreshes.append(k) or original(*a, **k))
        await pilot.press("t")
        await wait_for(pilot, lambda: len(lab.history) > 50 and app._ticks > 3 * app_module.HEATMAP_EVERY,
                       what="training")
        assert refreshes == [] and "(maps follow in a pause: t)" in screen_text(app)
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.training_status == "paused" and len(refreshes) == 1
                       and computed(app), what="the refresh in the pause")
        assert refreshes[0].get("keep_bptt")
        ticks = app._ticks
        await wait_for(pilot, lambda: app._ticks > ticks + 2 * app_module.HEATMAP_EVERY, what="more ticks")
        assert len(refreshes) == 1  # paused: nothing new to show
        await pilot.press("s")
        await wait_for(pilot, lambda: not lab.training and computed(app))
        await pilot.pause(0.2)
        assert len(refreshes) == 1  # stopped after the pause's refresh: the same weights, not refreshed again

    drive(check)


def test_quitting_while_training_waits_neither_for_the_computation_nor_the_trainer(monkeypatch):
    """The computation holds the lab's lock; the trainer, stopped by the quit, must not wait for
    it (its thread is one asyncio waits for at exit)."""
    monkeypatch.setattr(app_module, "BACKGROUND_WORK_MACS", 0)
    holds = []

    async def check(app, pilot):
        lab = app.lab
        lab.reconfigure({"train.steps": 1_000_000})
        await pilot.press("t")
        await wait_for(pilot, lambda: len(lab.history) > 0)
        holds.append(Held(monkeypatch, lab.model, "backward", thread="rnnlab-compute"))  # inside Lab.lock
        await pilot.press("b")
        await wait_for(pilot, holds[0].started.is_set)
        await pilot.press("q", "q")  # the second: steps trained and not saved

    start = time.monotonic()
    try:
        app = drive(check)
        assert time.monotonic() - start < HOLD_S / 2 and app.return_code == 0
    finally:
        holds and holds[0].release()


def test_bptt_while_a_large_model_trains_is_of_the_current_weights(monkeypatch):
    """The timer leaves a large model's trace at older weights while it trains: b brings it up to
    the current ones in the same work, before the backward pass. t still pauses meanwhile."""
    monkeypatch.setattr(app_module, "BACKGROUND_WORK_MACS", 0)

    async def check(app, pilot):
        lab = app.lab
        lab.reconfigure({"train.steps": 1_000_000})
        calls = []
        for name in ("refresh", "run_backward"):
            original = getattr(lab, name)
            monkeypatch.setattr(lab, name, lambda *a, _name=name, _f=original, **k: calls.append(_name) or _f(*a, **k))
        notices = record_notices(monkeypatch, app)
        await pilot.press("t")
        await wait_for(pilot, lambda: len(lab.history) > 20)
        with Held(monkeypatch, lab, "run_backward") as held:
            await pilot.press("b")
            await wait_for(pilot, held.started.is_set)
            await pilot.press("t")  # not refused: it only pauses the trainer
            assert lab.training_status == "paused" or lab._pause.is_set()
            assert not any(m.startswith("busy") for m, _ in notices)
        await wait_for(pilot, lambda: computed(app) and lab.bptt_cursor is not None)
        assert calls[:2] == ["refresh", "run_backward"]
        await pilot.press("s")
        await wait_for(pilot, lambda: not lab.training and computed(app))

    drive(check)


def test_an_export_dialog_open_when_a_computation_starts_refuses_until_it_is_done(monkeypatch):
    monkeypatch.setattr(app_module, "BACKGROUND_WORK_MACS", 0)

    async def check(app, pilot):
        lab = app.lab
        await pilot.press("x")
        await wait_for(pilot, lambda: bool(app.screen.query("#prompt-input")))
        with Held(monkeypatch, lab, "run_backward") as held:
            app.action_bptt_all()  # as a pause's refresh or training's end would start one meanwhile
            await wait_for(pilot, held.started.is_set)
            await pilot.press("enter")
            await pilot.pause()
            assert "busy computing BPTT" in str(app.screen.query_one("#prompt-error").render())
        await wait_for(pilot, lambda: computed(app))
        assert lab.bptt_cursor == 0

    drive(check)


def test_an_export_that_needs_a_large_backward_pass_writes_in_the_background(tmp_path, monkeypatch):
    """x before BPTT has run on a large model: the name is checked in the dialog (a bad one is
    named there), then the backward pass and the write run in the worker."""
    monkeypatch.setattr(app_module, "BACKGROUND_WORK_MACS", 0)

    async def check(app, pilot):
        lab = app.lab
        notices = record_notices(monkeypatch, app)
        await pilot.press("x")
        await wait_for(pilot, lambda: bool(app.screen.query("#prompt-input")))
        prompt = app.screen.query_one("#prompt-input")
        prompt.value = str(tmp_path / "gone" / "t.npz")
        await pilot.press("enter")
        await pilot.pause()
        assert "no such directory" in str(app.screen.query_one("#prompt-error").render())
        prompt.value = str(tmp_path / "t.npz")
        with Held(monkeypatch, lab, "run_backward") as held:
            await pilot.press("enter")
            await wait_for(pilot, held.started.is_set)
            await pilot.pause()
            assert computing(app) and "writing the trace to t.npz ..." in screen_text(app)
            assert not (tmp_path / "t.npz").exists()
        await wait_for(pilot, lambda: computed(app))
        assert (tmp_path / "t.npz").is_file() and lab.bptt_cursor is None  # computed for the file only
        assert notices[-1] == (f"trace written to {(tmp_path / 't.npz').resolve()}", "information")

    drive(check)


@contextlib.asynccontextmanager
async def a_step_under_way(monkeypatch, pilot, lab):
    """t, and the first training step held (as a large model's takes seconds) until the block ends."""
    with Held(monkeypatch, lab.trainer, "train_step") as held:
        await pilot.press("t")
        await wait_for(pilot, held.started.is_set, what="a step under way")
        yield


def test_s_says_stopping_at_once_while_a_slow_step_finishes(monkeypatch):
    """A large model's step takes seconds: s shows "stopping" in the status line at once (and t
    then says why it does nothing), not "running" until the step ends."""
    async def check(app, pilot):
        lab = app.lab
        notices = record_notices(monkeypatch, app)
        async with a_step_under_way(monkeypatch, pilot, lab):
            await pilot.press("s")
            assert lab.training and lab.stop_requested and "stopping step" in app._status_text
            await pilot.press("t")
            assert notices[-1] == ("training is stopping: the step under way finishes first", "information")
            assert lab.stop_requested
        await wait_for(pilot, lambda: not lab.training, what="the stop")
        await pilot.pause()
        assert lab.training_status == "stopped" and not lab.stop_requested and "stopped step" in app._status_text

    drive(check)


def test_quitting_during_a_slow_step_says_what_it_waits_for(monkeypatch):
    """q while a large model's step runs: the exit waits for the step (the screen is no longer
    drawn then), so a notice says so first, and training stops at that step."""
    async def check(app, pilot):
        lab = app.lab
        notices = record_notices(monkeypatch, app)
        async with a_step_under_way(monkeypatch, pilot, lab):
            await pilot.press("q")  # nothing trained yet: nothing to lose, so no second q is asked for
            assert lab.stop_requested
            assert notices[-1] == ("quitting: the training step under way finishes first", "information")
        await wait_for(pilot, lambda: app.return_code == 0, what="the exit")

    drive(check)
