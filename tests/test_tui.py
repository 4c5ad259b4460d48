"""The lab (TUI) driven by Textual's pilot: keys in, the Lab's state and the rendered text out.

Text snapshots of the main screens live in tests/snapshots/; regenerate them after an intended
change with ``RNNLAB_UPDATE_SNAPSHOTS=1 pytest tests/test_tui.py``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import screen_text, wait_for
from rnnlab.lab import Lab
from rnnlab.tui.app import LabApp
from rnnlab.tui.panels import DecayPlane, GradientPlot, StatePanel
from rnnlab.tui.screens import HelpScreen, PromptScreen
from rnnlab.tui.widgets import Heatmap, LinePlot

SNAPSHOTS = Path(__file__).parent / "snapshots"
SIZE = (160, 50)


wait_for = functools.partial(wait_for, timeout=60.0)


def drive(check, target=None, size=SIZE):
    """Open the lab on ``target``, wait until it is ready, then run ``check(app, pilot)``."""

    async def main():
        app = LabApp(target)
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: app.lab is not None)
            await check(app, pilot)

    asyncio.run(main())


def open_listed(app) -> bool:
    """Whether the open dialog is up and lists the runs of its folders (read in a thread)."""
    return bool(app.screen.query("#open-list")) and app.screen.listed


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("RNNLAB_UPDATE_SNAPSHOTS") or not path.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == path.read_text(encoding="utf-8"), f"screen differs from {path}"


def test_opens_on_hello_and_steps_through_time():
    async def check(app, pilot):
        lab = app.lab
        assert lab.spec.name == "hello" and lab.cursor == 0
        assert "hidden state h_t" in screen_text(app)
        for _ in range(3):
            await pilot.press("right")
        assert lab.cursor == 3
        h_map = app.query_one("#map-h", Heatmap)
        assert h_map.revealed == 3 and h_map.cursor == 2
        text = screen_text(app)
        assert "t 3/4" in text and "▼3" in text  # status bar and the heatmap's cursor, t = 1..T
        assert "i_t = σ(W_i·x_t + V_i·h_{t-1} + b_i)" in text  # the explain panel
        await pilot.press("left")
        assert lab.cursor == 2
        await pilot.press("end")
        assert lab.cursor == 4
        await pilot.press("home")
        assert lab.cursor == 0 and "Step forward" in screen_text(app)

    drive(check)


def test_the_edit_form_takes_input_only_in_the_fields_that_apply():
    """The chosen cell's and task's fields take input (and the focus); the others are disabled."""
    async def check(app, pilot):
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#edit-grid"))
        form = app.screen

        def enabled() -> set[str]:
            return {w.id for w in form.query("#edit-grid Input, #edit-grid Select") if not w.disabled}

        cell_fields = {"model-nonlinearity", "model-forget_bias", "model-scan", "model-init", "model-num_heads",
                       "model-d_ff"}
        assert enabled() & cell_fields == {"model-forget_bias", "model-init"}  # hello: an lstm
        assert "task-length" not in enabled()  # hello's sequence has no length to set
        for cell, fields in (("rnn", {"model-nonlinearity", "model-init"}), ("mingru", {"model-scan"}),
                             ("selfattention", {"model-num_heads", "model-d_ff"})):
            form.query_one("#model-cell").value = cell
            await pilot.pause()
            assert enabled() & cell_fields == fields, cell
        form.query_one("#task-kind").value = "adding"
        await pilot.pause()
        assert "task-length" in enabled() and form.query_one("#task-length").value == "50"  # adding's default
        form.query_one("#task-kind").value = "copy"
        await pilot.pause()
        assert form.query_one("#task-length").value == "10"  # copy's delay, not adding's length
        form.query_one("#apply").press()
        await wait_for(pilot, lambda: app.lab.spec.model.cell == "selfattention")
        assert app.lab.spec.task["kind"] == "copy" and app.lab.spec.task["delay"] == 10

    drive(check)


@pytest.mark.parametrize("cell", ["mingru", "jordan"])
def test_an_orthogonal_rnn_edited_into_a_mingru_gets_the_uniform_init_its_form_no_longer_offers(cell):
    """The form kept init enabled for the linear cells, which have no W_hh to initialise: an
    orthogonal rnn made a mingru was refused ("use uniform"), a selfattention silently reset; and
    for jordan, whose W_yh reads back its output, it still offered orthogonal and refused it."""
    from rnnlab.spec import load_preset

    async def check(app, pilot):
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#edit-grid"))
        app.screen.query_one("#model-cell").value = cell
        await pilot.pause()
        assert app.screen.query_one("#model-init").disabled
        app.screen.query_one("#apply").press()
        await wait_for(pilot, lambda: app.lab.spec.model.cell == cell)
        assert app.lab.spec.model.init == "uniform"

    drive(check, target=load_preset("hello").with_overrides({"model.cell": "rnn", "model.init": "orthogonal"}))


def test_the_edit_form_offers_each_cell_only_the_values_the_spec_takes_and_says_what_it_changed():
    """The form offered identity init for lstm and gru, and two layers, a reverse direction or
    truncation for jordan, each refused by the spec at Apply. Now the cell chosen limits them: a
    value it refuses turns to the default, visibly and said under the fields (in toasts, at 80
    columns jordan's three covered the form for 8 s), and comes back with a cell taking it."""
    from conftest import notices_of
    from rnnlab.spec import load_preset

    async def check(app, pilot):
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#edit-grid"))
        form = app.screen
        said = notices_of(form)
        field = form.query_one
        offered = lambda name: [value for _, value in field(name)._options]  # noqa: E731
        assert offered("#model-init") == ["uniform", "orthogonal", "identity"]  # rnn: every init
        field("#model-cell").value = "lstm"
        await pilot.pause()
        assert offered("#model-init") == ["uniform", "orthogonal"] and field("#model-init").value == "uniform"
        assert not field("#model-init").disabled
        note = field("#edit-error")
        assert str(note.render()) == "init set to uniform: identity (IRNN) is for the rnn cell, not lstm"
        assert note.has_class("note")  # no error: nothing is refused
        field("#model-cell").value = "jordan"
        await pilot.pause()
        for name, value in (("#model-init", "uniform"), ("#model-num_layers", "1"), ("#model-bidirectional", False),
                            ("#train-truncate", "0")):
            assert field(name).value == value and field(name).disabled, name
        assert [line.split(":")[0] for line in str(note.render()).splitlines()] == [
            "layers set to 1", "bidir. / non-causal set to no", "truncate BPTT (0 off) set to 0"]
        field("#model-cell").value = "rnn"  # what jordan refused comes back
        await pilot.pause()
        assert str(note.render()) == "" and said == []
        for name, value in (("#model-init", "identity"), ("#model-num_layers", "2"), ("#model-bidirectional", True),
                            ("#train-truncate", "3")):
            assert field(name).value == value and not field(name).disabled, name
        field("#model-cell").value = "jordan"
        await pilot.pause()
        field("#apply").press()
        await wait_for(pilot, lambda: app.lab.spec.model.cell == "jordan")
        model, train = app.lab.spec.model, app.lab.spec.train
        assert (model.num_layers, model.bidirectional, model.init, train.truncate) == (1, False, "uniform", 0)

    drive(check, target=load_preset("hello").with_overrides({
        "model.cell": "rnn", "model.init": "identity", "model.num_layers": 2, "model.bidirectional": True,
        "train.truncate": 3, "model.hidden_size": 8}))


def test_the_edit_form_gives_a_notes_rows_back_to_its_fields_once_it_goes():
    """The form fitted to a note under its fields (what choosing jordan changed) was measured a layout
    behind: the note took rows from the fields (two under a scroll where the terminal had room for
    them), and the form grew by them once it went, blank under the fields."""
    from rnnlab.spec import load_preset

    async def check(app, pilot):
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#edit-grid"))
        form = app.screen
        await pilot.pause()
        height = form.query_one("#edit").outer_size.height
        form.query_one("#model-cell").value = "jordan"
        await wait_for(pilot, lambda: form.query_one("#edit").outer_size.height > height, what="the note's rows")
        assert form.query_one("#edit-fields").max_scroll_y == 0  # every field in view beside it
        form.query_one("#model-cell").value = "rnn"
        await wait_for(pilot, lambda: form.query_one("#edit").outer_size.height == height, what="the rows back")
        assert form.query_one("#edit-fields").max_scroll_y == 0  # every field in view

    drive(check, target=load_preset("hello").with_overrides({"model.cell": "rnn", "model.num_layers": 2,
                                                             "train.truncate": 3}), size=(120, 40))


def test_p_saves_a_screenshot_named_by_its_absolute_path(monkeypatch, tmp_path):
    import errno

    from conftest import notices_of, refuse_screenshots

    monkeypatch.chdir(tmp_path)

    async def check(app, pilot):
        notices = notices_of(app)
        await pilot.press("p")
        saved = list(tmp_path.glob("*.svg"))
        assert len(saved) == 1 and notices == [(f"screenshot saved to {saved[0].resolve()}", "information")]
        refuse_screenshots(monkeypatch, app, OSError(errno.ENOSPC, "No space left on device"))
        await pilot.press("p")
        assert notices[-1] == ("cannot save the screenshot: No space left on device", "error")

    drive(check)


def test_an_enlarged_terminal_leaves_the_maps_at_a_title():
    """j/k at 60x20, then enlarged: the panel, scrolling less far, was left inside a map, its title
    and first rows out of view (a TUI walkthrough)."""
    from rnnlab.tui.panels import StatePanel

    async def check(app, pilot):
        await pilot.press("right", *["j"] * 6)
        await pilot.pause()
        await pilot.resize_terminal(160, 50)
        for _ in range(3):
            await pilot.pause()
        panel = app.query_one(StatePanel)
        tops = [m.virtual_region.y for m in panel._maps.values()]
        assert round(panel.scroll_y) in tops and round(panel.scroll_y) > 0

    drive(check, size=(60, 20))


def test_the_status_line_keeps_its_help_hint_at_60_columns():
    """At 60 columns a training lab's status line ran past the edge and lost "? help", the one hint
    to its keys where the footer is cut too."""
    async def check(app, pilot):
        await pilot.press("t")
        await wait_for(pilot, lambda: app.lab.trainer.step > 0)
        await pilot.pause()
        line = next(line for line in screen_text(app).splitlines() if line.lstrip().startswith("t 0/"))
        assert line.rstrip().endswith("? help") and "running step" in line, line

    drive(check, target="selective-copy-lru", size=(60, 20))


def test_the_status_line_says_how_far_of_how_many_while_training():
    """The main lab said "running step 838  125 steps/s" with no total, where the seq2seq and treebank labs
    say "running step 1662 of 2000": the total now, given up first where the line is short."""
    from rnnlab.spec import load_preset

    async def check(app, pilot):
        await pilot.press("t")
        await wait_for(pilot, lambda: re.search(r"running step \d+ of 1000000 \((…|[\d.]+) steps/s\)",
                                                app._status_text), what="the running line")  # (the labs' rate)
        await pilot.press("t")  # paused: the figures hold still
        await wait_for(pilot, lambda: app.lab.training_status == "paused")
        step = app.lab.trainer.step
        await wait_for(pilot, lambda: f"paused step {step} of 1000000" in app._status_text, what="the total")
        await pilot.resize_terminal(60, 20)
        await pilot.press("b")  # "BPTT t=4" too: no room for the total, which goes; the step and "? help" stay
        await wait_for(pilot, lambda: f"paused step {step}" in app._status_text and " of 1000000" not in
                       app._status_text and app._status_text.endswith("? help"), what="the line without it")

    drive(check, target=load_preset("hello").with_overrides({"train.steps": 1_000_000}))


def test_the_sequence_bars_last_line_gives_way_by_whole_numbers_and_words():
    """Cut at its end, the bar's line read "loss 0.005242 (predict 1: 0.0…" at 62 columns (a number cut
    short reads as another) and "adding: re…" at 80: the description gives way first, cut where a word
    ends, then the baseline, whole."""
    async def check(app, pilot):
        for width in (160, 100, 80, 70, 62, 60):
            await pilot.resize_terminal(width, 24)
            await pilot.pause()
            line = next(line for line in screen_text(app).splitlines() if line.lstrip().startswith("t 1-")).strip()
            assert len(line) <= width - 2 and line.split("   ")[1].startswith("this sequence: loss 1.014"), line
            assert re.search(r"\w…", line) is None, line  # a word or a number cut short
            assert "(predict 1: " not in line or "(predict 1: 0.00034)" in line, line
            assert "adding: " not in line or line.endswith(" …") or line.endswith("at the end"), line
        assert line == "t 1-7 of 100   this sequence: loss 1.014"

    drive(check, target="adding-lstm", size=(160, 24))


def test_a_notice_leaves_the_status_line_readable_at_80_columns():
    """Textual stacks notices on the footer: at 80 columns each toast (half the width) covered the
    status line's end ("untrained (t", its "? help"); they stand above it now."""
    async def main():
        app = LabApp()
        async with app.run_test(size=(80, 24), notifications=True) as pilot:  # (toasts drawn)
            await wait_for(pilot, lambda: app.lab is not None)
            await pilot.press("m")  # "nothing to pin yet: ...", two lines
            await wait_for(pilot, lambda: "nothing to pin" in screen_text(app), what="the notice")
            lines = screen_text(app).splitlines()
            assert lines[-2].strip() == "t 0/4   layer 0  unit 0   untrained (t trains)   ? help"

    asyncio.run(main())


def test_a_terminal_too_small_for_the_heatmaps_says_so_until_enlarged():
    async def check(app, pilot):
        message = app.query_one("#too-small")
        assert message.display and "at least 60x20" in screen_text(app) and "(this terminal: 50x16)" in screen_text(app)
        assert not any(c in screen_text(app) for c in "▁▂▃▄▅▆▇█")  # no scrollbar of the panels covered
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert not message.display and "hidden state h_t" in screen_text(app)
        await pilot.resize_terminal(59, 30)
        await pilot.pause()
        assert message.display and "(this terminal: 59x30)" in screen_text(app)
        await pilot.resize_terminal(120, 36)
        await pilot.press("question_mark")  # resized while a dialog is open: the lab's screen follows
        await wait_for(pilot, lambda: len(app.screen_stack) > 1)
        await pilot.resize_terminal(50, 16)
        await pilot.press("escape")
        await pilot.pause()
        assert message.display and "(this terminal: 50x16)" in screen_text(app)

    drive(check, size=(50, 16))


def test_a_narrow_footer_leaves_out_whole_keys_and_keeps_help_and_quit():
    """Between 60 and 79 columns Textual's footer cut its keys at the edge: "? hel" at 70 columns,
    neither "? help" nor "q quit" at 65; the keys that do not fit are left out whole, from the right,
    help and quit last. Composed so at the start and again as the terminal shrinks and grows."""
    keys = ["→ forward", "← back", "b BPTT step", "t train/pause", "n new sequence", "e edit", "? help", "q quit"]
    shown = {80: keys, 78: keys, 75: keys[:5] + keys[6:], 70: keys[:4] + keys[6:], 60: keys[:4] + keys[6:]}

    def footer(app) -> str:
        return screen_text(app).splitlines()[-1].strip()

    async def check(app, pilot):
        assert footer(app) == " ".join(shown[70])
        for width in (80, 75, 60, 78, 70):
            await pilot.resize_terminal(width, 24)
            await wait_for(pilot, lambda: footer(app) == " ".join(shown[width]), timeout=10, what=f"{width} columns")

    drive(check, size=(70, 24))


def test_a_task_with_a_taller_sequence_bar_needs_the_rows_it_takes():
    """multiscale-leaky's two target rows make its sequence bar two rows taller: at 60x20 the
    heatmaps between it and the plots had no row at all, under no message."""
    async def check(app, pilot):
        message = app.query_one("#too-small")
        assert message.display and "at least 60x22" in screen_text(app)
        await pilot.resize_terminal(60, 22)
        await wait_for(pilot, lambda: not message.display)
        heatmaps = app.query_one(StatePanel)
        await wait_for(pilot, lambda: all(part in screen_text(app) for part in ("h_t (r = 1)", "0›▀▀▀")),
                       what="the heatmaps drawn")  # (the short title: "hidden st… (r = 1)" was cut)
        assert heatmaps.size.height >= 4

    drive(check, "multiscale-leaky", size=(60, 20))


@pytest.mark.parametrize("width", [1, 6, 7, 12])
def test_every_dialog_shrunk_to_a_few_columns_wide_still_closes(width):
    """A dialog open as the terminal shrinks below 60x20: at 6 columns the open dialog's list sized
    itself by wrapping its messages into no columns, and rich's wrap raised (a traceback in tmux)."""
    async def check(app, pilot):
        await pilot.press("t")  # trained steps not saved: the open dialog says so above its list
        await wait_for(pilot, lambda: app.lab.trainer.step > 0)
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.lab.training)
        for key in ("o", "e", "i", "x", "question_mark"):
            await pilot.resize_terminal(80, 24)
            await pilot.pause()
            await pilot.press(key)
            await wait_for(pilot, lambda: len(app.screen_stack) == 2)
            await pilot.resize_terminal(width, 10)
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
            assert len(app.screen_stack) == 1, key
        assert app.is_running and app.query_one("#too-small").display

    drive(check)


def test_behind_the_too_small_message_only_q_acts():
    """t trained unseen and ? drew the help over the message saying to enlarge the terminal or quit
    (a TUI walkthrough); enlarged, the keys act again."""
    async def check(app, pilot):
        for key in ("t", "question_mark", "right", "e", "b"):
            await pilot.press(key)
            await pilot.pause()
        assert not app.lab.training and app.lab.cursor == 0 and app.lab.bptt_cursor is None
        assert len(app.screen_stack) == 1 and app.query_one("#too-small").display
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.press("right")
        assert app.lab.cursor == 1
        await pilot.resize_terminal(50, 16)
        await pilot.pause()
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running)

    drive(check, size=(50, 16))


def test_behind_the_too_small_message_ctrl_s_saves_as_the_quit_warning_offers(tmp_path, monkeypatch):
    """The warning of q says ctrl+s saves the trained steps: held with the other keys, it did
    nothing (a diff review)."""
    monkeypatch.chdir(tmp_path)

    async def check(app, pilot):
        await pilot.press("t")
        await wait_for(pilot, lambda: app.lab.training_status == "completed")
        await pilot.resize_terminal(50, 16)
        await pilot.pause()
        await pilot.press("q")
        assert "ctrl+s saves them" in list(app._notifications)[-1].message
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.lab.run is not None and app.lab.unsaved_steps == 0)
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running)

    drive(check, size=(80, 24))


def test_the_edit_form_keeps_the_specs_length_and_gives_another_task_its_own(tmp_path):
    """Opening the form changes nothing (Textual posts Select.Changed as it mounts); another task
    brings its own default length, the spec's task its own again; counting's derived length applies."""
    spec = tmp_path / "adding17.toml"
    spec.write_text('[task]\nkind = "adding"\nlength = 17\n[model]\nhidden_size = 8\n')

    async def check(app, pilot):
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#edit-grid"))
        form = app.screen
        await pilot.pause()
        assert form.query_one("#task-length").value == "17" and form.overrides()["task.length"] == 17
        for kind, length in (("copy", "10"), ("adding", "17"), ("counting", "")):
            form.query_one("#task-kind").value = kind
            await pilot.pause()
            assert form.query_one("#task-length").value == length, kind
        form.query_one("#apply").press()
        await wait_for(pilot, lambda: app.lab.spec.task["kind"] == "counting")

    drive(check, str(spec))


def test_the_edit_form_gives_a_cell_that_always_has_biases_its_biases_and_names_copys_delay():
    """An rnn with bias = false could not be edited to an lru: "the lru has no biases to turn off", and
    no field of the form could undo it. Copy's field is its delay, which the form called its length
    (T is 25 where it read 5). (A walkthrough of cells and options.)"""
    from rnnlab.spec import edited, load_preset

    async def check(app, pilot):
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#edit-grid"))
        form = app.screen
        assert str(form.query_one("#task-length-label").render()) == "task delay"
        form.query_one("#model-cell").value = "lru"
        await pilot.pause()
        form.query_one("#apply").press()
        await wait_for(pilot, lambda: app.lab.spec.model.cell == "lru")
        assert app.lab.spec.model.bias is True
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#edit-grid"))
        app.screen.query_one("#task-kind").value = "adding"
        await pilot.pause()
        assert str(app.screen.query_one("#task-length-label").render()) == "task length"

    drive(check, target=edited(load_preset("copy"), {"model.cell": "rnn", "model.bias": False, "model.hidden_size": 8,
                                                     "task.delay": 5}))


def test_a_refused_key_pressed_again_shows_its_notice_once():
    """Six presses of ] on a one-layer model stacked six identical toasts over the plots."""
    async def check(app, pilot):
        await pilot.press(*"]]]]]]", "s")
        await pilot.pause()
        assert [n.message for n in app._notifications] == ["one layer and direction: nothing to switch to",
                                                           "nothing is training (t starts)"]
        app._unnotify(next(iter(app._notifications)))  # dismissed (a click): the next ] says it again
        await pilot.press("]")
        await pilot.pause()
        assert [n.message for n in app._notifications] == ["nothing is training (t starts)",
                                                           "one layer and direction: nothing to switch to"]

    drive(check)


def test_the_sequence_loss_is_read_beside_the_baseline_on_that_sequence():
    """adding-rnn's first sequence (target 0.98) showed an untrained model's loss 0.0003 beside a
    baseline of 0.167 on the plot: a lecturer's class read the model as good. The bench line now
    gives "predict 1" on that very sequence too."""
    async def check(app, pilot):
        here = app.lab.task.baseline_on(app.lab.sequence)
        assert here < 0.01  # this sequence is an easy one for "predict 1"
        assert f"this sequence: loss {app.lab.evaluation.loss:.4g} (predict 1: {here:.2g})" in screen_text(app)

    drive(check, target="adding-rnn")


def test_a_map_scrolled_to_the_chosen_unit_keeps_its_title_in_view():
    """U (unit 63 of 64) scrolled the dL/dh_t map to its last rows at 100x30 and its title, "dL/dh_t
    (BPTT, r = ...)  t 1-53 of 100", went off the top: nothing said which record the rows were."""
    from rnnlab.tui.panels import StatePanel

    async def check(app, pilot):
        await pilot.press("B")
        await wait_for(pilot, lambda: app.lab.bptt_cursor == 0)
        await pilot.press("U")
        await pilot.pause()
        await pilot.pause()
        panel, dh = app.query_one(StatePanel), app.query_one("#map-dh", Heatmap)
        assert panel.scroll_y > dh.virtual_region.y  # its own title line is out of view
        top = panel.region.y + 1  # under the docked colour key
        line = screen_text(app).splitlines()[top]
        assert "dL/dh_t (BPTT" in line and "t 1-" in line, line
        await pilot.press("k")  # back to a map's own title: nothing pinned
        await pilot.pause()
        assert all(m._pinned_line is None for m in app.query(Heatmap))

    drive(check, target="adding-rnn", size=(100, 30))


def test_keys_with_nothing_to_do_say_so():
    """s with nothing training, [ and ] with one layer, b once BPTT has reached t=1: a notice each,
    not silence."""
    async def check(app, pilot):
        notices = []
        app.notify = lambda message, **kw: notices.append(message)
        await pilot.press("s", "[", "]")
        assert notices == ["nothing is training (t starts)"] + ["one layer and direction: nothing to switch to"] * 2
        await pilot.press(*"bbbb")
        assert app.lab.bptt_cursor == 0 and len(notices) == 3
        await pilot.press("b")
        assert app.lab.bptt_cursor == 0 and notices[-1] == "BPTT has reached t=1, the first step"

    drive(check)


def test_j_and_k_say_so_when_every_heatmap_is_in_view():
    """multiscale-rnn's one heatmap fits the panel: j said nothing moved as "the last heatmap is in
    view (k goes back)", k as "(j goes on)", neither of which can move it."""
    async def check(app, pilot):
        notices = []
        app.notify = lambda message, **kw: notices.append(message)
        await pilot.pause()
        assert app.query_one(StatePanel).max_scroll_y == 0
        await pilot.press("j", "k")
        assert notices == ["every heatmap is in view: nothing to scroll to"] * 2

    drive(check, "multiscale-rnn", size=(160, 50))


def test_the_header_names_an_edited_task():
    """The text experiment turned into the copy task is named for it ("copy-lstm"); where the user
    keeps a name that does not say the task, the header says it: so for selective-copy-gru,
    although "copy" is inside its name."""
    def check_edit(name: str, cell: str, keep_name: bool):
        async def check(app, pilot):
            assert app.sub_title.startswith(f"{name}: {cell}, H=")
            await pilot.press("e")
            await wait_for(pilot, lambda: app.screen.query("#task-kind"))
            app.screen.query_one("#task-kind").value = "copy"
            await pilot.pause()
            if keep_name:
                app.screen.query_one("#name").value = name
            app.screen.query_one("#apply").press()
            await wait_for(pilot, lambda: app.lab.spec.task["kind"] == "copy")
            await pilot.pause()
            assert app.sub_title.startswith(f"{name} (copy task): {cell}, H=" if keep_name else f"copy-{cell}: {cell}")

        return check

    drive(check_edit("text", "lstm", keep_name=False), "text")
    drive(check_edit("selective-copy-gru", "gru", keep_name=True), "selective-copy-gru")


def test_an_edited_preset_is_named_for_its_new_cell_unless_the_user_names_it(tmp_path, monkeypatch):
    """copy-attention given the lru cell must not be saved as runs/copy-attention-...: the name
    follows the cell until the user types one, which then stays; a bad name is refused inline."""
    monkeypatch.chdir(tmp_path)  # ctrl+s saves under runs/ here

    async def check(app, pilot):
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#edit-grid"))
        form, name = app.screen, app.screen.query_one("#name")
        assert name.value == "hello"
        for cell, expected in (("gru", "hello-gru"), ("lstm", "hello"), ("rnn", "hello-rnn")):
            form.query_one("#model-cell").value = cell
            await pilot.pause()
            assert name.value == expected, cell
        name.value = "../escape"
        form.query_one("#apply").press()
        await pilot.pause()
        assert "name" in str(form.query_one("#edit-error").render()) and app.lab.spec.name == "hello"
        name.value = "my-rnn"
        form.query_one("#model-cell").value = "gru"  # a name the user typed is kept
        await pilot.pause()
        assert name.value == "my-rnn"
        form.query_one("#apply").press()
        await wait_for(pilot, lambda: app.lab.spec.model.cell == "gru")
        assert app.lab.spec.name == "my-rnn"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.lab.run is not None)
        assert app.lab.run.path.name.startswith("my-rnn-")
        assert app.sub_title.startswith(f"{app.lab.run.path} · my-rnn (hello task): gru")
        # the preset's description told of an LSTM: the saved spec says what the experiment now is
        saved = (app.lab.run.path / "spec.toml").read_text(encoding="utf-8")
        assert 'description = "hello with the gru cell instead of lstm"' in saved

    drive(check)


def test_the_time_keys_still_move_the_cursor_after_a_dialog():
    """A closing dialog hands focus back to the screen; no panel takes it (a focused scroll
    container would take home, end and the arrows to scroll itself)."""
    async def check(app, pilot):
        lab = app.lab
        for dialog in ("x", "e"):  # (copy has no typed sequences)
            await pilot.press(dialog)
            await wait_for(pilot, lambda: len(app.screen_stack) > 1)
            await pilot.press("escape")
            await wait_for(pilot, lambda: len(app.screen_stack) == 1)
            assert app.focused is None
            await pilot.press("end")
            assert lab.cursor == lab.steps > 0, dialog
            await pilot.press("left", "home")
            assert lab.cursor == 0, dialog
        assert not app.screen.focus_chain

    drive(check, "copy-attention")


def test_a_short_terminal_keeps_the_heatmaps_and_every_plot_in_view():
    """On an 80x24 terminal the plots band shrinks so that the state panel keeps 9 rows, and the
    loss and gradient-norm plots stand side by side at the band's full height; from 44 rows up
    the band is 14 rows, the two stacked."""
    async def check(app, pilot):
        states, band = app.query_one("#states"), app.query_one("#plots")
        plots = [app.query_one(name) for name in ("#grad-plot", "#loss-plot", "#norm-plot")]
        if app.size.height == 24:
            assert states.size.height == 9 and band.outer_size.height == 6
            assert app.query_one("#map-h", Heatmap).region.height >= 5  # the h_t map, from its top
            assert all(plot.size.height == 5 and plot.size.width >= 16 for plot in plots)
            assert plots[1].region.y == plots[2].region.y  # side by side
        else:
            assert band.outer_size.height == 14 and plots[1].region.bottom <= plots[2].region.y  # stacked
            assert all(plot.size.height >= 6 for plot in plots[1:])

    drive(check, size=(80, 24))
    drive(check, size=(120, 44))


def test_a_self_attention_lab_on_80_columns_leaves_the_heatmaps_room():
    """Its side panel holds two columns of values (h, z), so it yields width to the heatmaps
    beside the attention map; an LSTM's side panel keeps its seven columns."""
    async def check(app, pilot):
        await pilot.press("right")
        states, side = app.query_one("#states"), app.query_one("#side")
        attention = app.lab.is_attention
        assert states.size.width >= (24 if attention else 36) and side.size.width >= (20 if attention else 33)
        header = "unit      h      z" if attention else "#    h    c   i   f    g   o"
        assert header in screen_text(app)  # the cursor values' columns, whole

    drive(check, target="copy-attention", size=(80, 24))
    drive(check, size=(80, 24))


def test_the_attention_panel_follows_a_resize_and_gives_way_at_60_columns():
    """Its width was set at each step only: from 120 columns to 80 it kept 33 and the heatmaps got 15
    until a key; at 60 its 28 columns left the state heatmaps one column wide (a TUI walkthrough).
    At 80 its header fits its three lines (the long forms wrapped to six)."""
    from rnnlab.tui.panels import AttentionPanel

    async def check(app, pilot):
        await pilot.press("right")
        panel, states = app.query_one(AttentionPanel), app.query_one("#states")
        wide = panel.size.width
        await pilot.resize_terminal(80, 24)
        for _ in range(3):
            await pilot.pause()
        assert panel.display and panel.size.width < wide and states.size.width >= 24
        assert "block 0, head 1/4" in screen_text(app) and "row 1 attends to" in screen_text(app)
        await pilot.resize_terminal(60, 20)
        for _ in range(3):
            await pilot.pause()
        assert not panel.display and states.size.width >= 30
        await pilot.resize_terminal(70, 30)  # its narrowest: the header's three lines, the map under them
        for _ in range(3):
            await pilot.pause()
        title = app.query_one("#attention-title")
        assert panel.display and title.size.height == 3, str(title.render())
        assert str(title.render()).startswith("b0 h1/4") and app.query_one("#attention-body").size.height >= 6
        await pilot.resize_terminal(120, 40)
        for _ in range(3):
            await pilot.pause()
        assert panel.display and panel.size.width == wide
        assert "attention: block 0, head 1/4" in screen_text(app)

    drive(check, target="copy-attention", size=(120, 40))


def test_the_attention_map_gets_a_column_per_key():
    """copy-attention (T = 30) at 100x30: the map's 30 key columns, none under the scrollbar."""
    from rnnlab.tui.panels import AttentionMap

    async def check(app, pilot):
        await pilot.press("end")
        await pilot.pause()
        attention_map = app.query_one(AttentionMap)
        assert attention_map.size.width >= 30 and attention_map.region.right <= app.query_one("#side").region.x

    drive(check, target="copy-attention", size=(100, 30))


def test_the_attention_panels_header_stays_in_view_while_its_map_scrolls():
    """copy-attention at 100x30: at t = 30 the map scrolls to its last row, under the header (block
    and head, the row shown, the axes), which scrolled away with it."""
    from rnnlab.tui.panels import AttentionMap

    async def check(app, pilot):
        await pilot.press("end")
        await pilot.pause()
        await pilot.pause()
        attention_map = app.query_one(AttentionMap)
        body = attention_map.parent
        assert body.max_scroll_y > 0 and body.scroll_y > 0  # the map is taller than the panel: scrolled
        row = attention_map.virtual_region.y + attention_map.query_line()  # in the body's content
        assert body.scroll_y <= row < body.scroll_y + body.size.height  # the highlighted row, in view
        text = screen_text(app)
        headers = ("attention: block 0, head 1/4", "row 30: what step 30 attends to", "query t ↓, key j → (causal)")
        assert all(header in text for header in headers), text

    drive(check, target="copy-attention", size=(100, 30))


def test_the_colour_key_shows_only_the_scales_of_the_maps_shown():
    """A self-attention block's maps (h, z, dL/dh_t) are all signed: no "gates 0..1" key."""
    async def check(app, pilot):
        await pilot.pause()
        key_row = next(line for line in screen_text(app).splitlines() if "signed -r" in line)
        assert ("gates" in key_row) == (not app.lab.is_attention), key_row

    drive(check, target="copy-attention", size=(100, 30))
    drive(check, size=(100, 30))


def test_the_attention_explain_names_the_query_step_and_breaks_names_only_at_their_joints():
    """copy-attention at 100x30, t = 5: "a_t,5" read as the weight of key 5 for an unnamed t, and
    the note folded a parameter's name at the width, "self_attn.in_proj_weigh" / "t"."""
    from rnnlab.tui.panels import _break_long_words

    async def check(app, pilot):
        await pilot.press(*["right"] * 5)
        explain = app.query_one("#explain")
        lines = [explain.render_line(y).text.rstrip() for y in range(explain.size.height)]
        text = "\n".join(lines)
        assert "a_5," in text and "a_t," not in text, text
        assert "self_attn." in lines and any(line.startswith("in_proj_weight") for line in lines), text

    drive(check, "copy-attention", size=(100, 30))
    assert _break_long_words("rows of self_attn.in_proj_weight [W_q]", 20) == "rows of self_attn.\nin_proj_weight [W_q]"
    assert _break_long_words("weight_ih_l0_reverse[0:64],", 16) == "weight_ih_l0_\nreverse[0:64],"
    assert _break_long_words("a_very_long_name", 0) == "a_very_long_name"  # not laid out yet
    assert _break_long_words("unbreakablewordwithoutjoints", 10) == "unbreakablewordwithoutjoints"


def test_the_edit_form_shows_the_steps_trained_past_the_spec_as_a_save_writes_them():
    """t past train.steps trains that many more and ctrl+s saves steps = 100; the form said 50."""
    from rnnlab.spec import load_preset

    async def check(app, pilot):
        lab = app.lab
        for target in (5, 10):  # the spec's 5, then 5 more
            await pilot.press("t")
            await wait_for(pilot, lambda: lab.training_status == "completed" and lab.trainer.step == target)
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#train-steps"))
        assert app.screen.query_one("#train-steps").value == "10" and lab.spec_as_trained.train.steps == 10
        app.screen.query_one("#apply").press()  # nothing changed: the trained model stays
        await pilot.pause()
        assert str(app.screen.query_one("#edit-error").render()).startswith("nothing changed")

    drive(check, target=load_preset("hello").with_overrides({"train.steps": 5}))


def test_a_new_sequence_drops_the_bptt_marker_of_the_last():
    """Stepping back through time marks t on the gradient plot; a new sequence (no backward pass
    on it yet) kept the mark, drawn beside a pinned curve as if BPTT had reached t=1."""
    from rnnlab.tui.panels import GradientPlot

    async def check(app, pilot):
        plot = app.query_one(GradientPlot)
        await pilot.press("b")
        await wait_for(pilot, lambda: app.lab.bptt_cursor is not None)
        await pilot.pause()
        assert plot.marker == app.lab.steps
        await pilot.press("n")
        await wait_for(pilot, lambda: app.lab.bptt_cursor is None)
        await pilot.pause()
        assert plot.marker is None

    drive(check)


def test_the_edit_form_fits_a_narrow_terminal():
    """On 80 columns the edit form takes one label-field pair a row, every field within the
    screen's width, and scrolls to its buttons; on 160 it has two pairs a row."""
    async def check(app, pilot):
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#edit-grid"))
        await pilot.pause()  # laid out
        width = app.size.width
        form, grid = app.screen.query_one("#edit"), app.screen.query_one("#edit-grid")
        assert grid.has_class("narrow") == (width == 80) and form.region.right <= width
        fields = list(app.screen.query("#edit-grid Input, #edit-grid Select"))
        assert fields and all(f.region.right <= width and f.region.width >= 20 for f in fields)
        assert len({f.region.x for f in fields}) == (1 if width == 80 else 2)  # field columns
        apply = app.screen.query_one("#apply")
        apply.focus()
        await wait_for(pilot, lambda: 0 <= apply.region.y and apply.region.bottom <= app.size.height,
                       timeout=5, what="the Apply button scrolled into view")
        await pilot.press("escape")

    drive(check, size=(80, 24))
    drive(check, size=(160, 50))


def test_the_edit_form_opens_in_its_narrow_layout_before_any_resize(monkeypatch):
    """The narrow class was set by the resize only: at 60x20 the four columns were drawn, each value
    cut to a letter ("task h", "cell l"), for half a second first."""
    from rnnlab.tui.screens import EditScreen

    monkeypatch.setattr(EditScreen, "on_resize", lambda self: None)  # the mount alone

    async def check(app, pilot):
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#edit-grid"))
        assert app.screen.query_one("#edit-grid").has_class("narrow")

    drive(check, size=(60, 20))


def test_clicking_a_heatmap_column_moves_the_cursor():
    async def check(app, pilot):
        h_map = app.query_one("#map-h", Heatmap)
        width = h_map.content_region.width
        await pilot.click("#map-h", offset=(width * 3 // 4 // 1, 3))  # a map row in the last quarter
        assert app.lab.cursor == 4

    drive(check)


def test_bptt_steps_backward_and_plots_the_gradient_norm():
    async def check(app, pilot):
        lab = app.lab
        await pilot.press("b")
        assert lab.bptt_cursor == 3
        await pilot.press("b", "b")
        assert lab.bptt_cursor == 1
        dh_map = app.query_one("#map-dh", Heatmap)
        assert dh_map.reveal_from_end and dh_map.revealed == 3
        plot = app.query_one(GradientPlot)
        assert plot.series_names == ["||dL/dh_t||", "||ΔW_hh(t)||"]
        # named where the names find no room (80x24: "||ΔW_hh(t)||" was left out)
        assert [series.short_name for series in plot._series.values()] == ["dL/dh_t", "ΔW_hh"]
        assert "||dL/dh_t|| / ||dL/dh_T||" in plot.title
        assert "BPTT t=2" in screen_text(app)

    drive(check)


def test_every_heatmap_scrolls_into_view_and_bptt_brings_up_dl_dh():
    """At 120x36 the state panel has room for one or two of an LSTM's seven heatmaps: it scrolls
    (j/k a heatmap at a time), and the first b brings the dL/dh_t heatmap into view."""
    async def check(app, pilot):
        states = app.query_one(StatePanel)
        await pilot.press("right", "right", "b")
        await wait_for(pilot, lambda: app.query("#map-dh"))
        dh_map = app.query_one("#map-dh", Heatmap)
        top = dh_map.virtual_region.y
        assert states.max_scroll_y > 0
        # (the scroll follows a refresh: one pause was too short once in a loaded suite)
        await wait_for(pilot, lambda: states.scroll_y <= top and
                       top + dh_map.size.height <= states.scroll_y + states.size.height, what="dL/dh_t in view")
        tops = {name: app.query_one(f"#map-{name}", Heatmap).virtual_region.y for name in "hcifgo"}
        await pilot.press("k")
        assert states.scroll_y == tops["o"]
        await pilot.press(*"kkkkk")
        assert states.scroll_y == 0
        await pilot.press("k", "j")
        assert states.scroll_y == tops["c"]
        assert [n.message for n in app._notifications] == ["the first heatmap is in view (j goes on)"]  # the k
        app.action_next_map()  # two keys arriving together, before the screen refreshes: each one counts
        app.action_next_map()
        assert states.scroll_y == tops["f"]
        await pilot.press("k", "k", "j", "j")
        assert states.scroll_y == tops["f"]
        await pilot.press("k")
        assert states.scroll_y == tops["i"]
        await pilot.press(*"jjjjjjjjj")  # past the last heatmap: it stays, its title in view, and says so
        assert states.scroll_y <= top < states.scroll_y + states.size.height
        assert [n.message for n in app._notifications][-1] == "the last heatmap is in view (k goes back)"
        await edit_hidden_size(app, pilot, 8)
        assert states.scroll_y == 0  # the new model's first heatmap, not the old scroll position

    drive(check, size=(120, 36))


def test_a_new_sequence_takes_the_panel_back_to_the_map_bptt_took_it_from():
    """b brings the dL/dh_t map into view; a new sequence (n, or one typed) drops it, and the panel
    goes back to the map shown before, not to the last state map (which the scroll, clamped to the
    shorter panel, left on top)."""
    async def check(app, pilot):
        states = app.query_one(StatePanel)
        tops = {name: app.query_one(f"#map-{name}", Heatmap).virtual_region.y for name in "hcifgo"}
        for before, keys in ((0, ()), (tops["c"], ("j",))):
            await pilot.press(*keys, "right", "b")
            await wait_for(pilot, lambda: states.scroll_y > tops["o"] - 1, what="dL/dh_t in view")
            await pilot.press("n")
            await wait_for(pilot, lambda: not app.query("#map-dh"), what="BPTT's map dropped")
            await pilot.pause()
            assert states.scroll_y == before
        await pilot.press("b")  # from the map c: another model (e) opens on its first map, not on c
        await wait_for(pilot, lambda: states.scroll_y > tops["o"] - 1, what="dL/dh_t in view")
        await edit_hidden_size(app, pilot, 8)
        await pilot.pause()
        assert states.scroll_y == 0

    drive(check, size=(120, 36))


def test_a_reverse_directions_bptt_runs_from_t_1_up():
    """A reverse direction's recurrence carries dL/dh from t - 1 to t: its backward pass starts at
    t = 1. Its dL/dh_t map, values, curve and status revealed t = T first, as the forward direction's,
    each column before the ones it depends on."""
    from rnnlab.spec import load_preset

    async def check(app, pilot):
        lab = app.lab
        await pilot.press("right", "right", "b", "b")  # two BPTT steps: t = 4, 3 forward; t = 1, 2 reverse
        assert list(lab.bptt_revealed(0)) == [2, 3] and list(lab.bptt_revealed(1)) == [0, 1]
        await pilot.press("right_square_bracket")  # layer 0 reverse
        await pilot.pause()
        dh_map = app.query_one("#map-dh", Heatmap)
        assert not dh_map.reveal_from_end and dh_map.revealed == 2 and dh_map.cursor == 1
        plot = app.query_one(GradientPlot)
        assert plot.title.startswith("BPTT t=2: ||dL/dh_t|| / ||dL/dh_1|| = ") and plot.marker == 2.0
        assert plot._series["||dL/dh_t||"].xs.tolist() == [1, 2]
        assert "BPTT t=2   layer 0 reverse" in screen_text(app)
        values = app.query_one("#values")  # the cursor at t = 2: revealed in reverse, not yet forward
        lines = [values.render_line(y).text.split() for y in range(1, 4)]
        assert lines[0][-1] == "dh" and "·" not in lines[1] + lines[2], lines
        # the cursor step's ||dL/dh_t||, the plot's number there (the plot's title names the BPTT step's ratio)
        norm = plot._series["||dL/dh_t||"].ys[1]
        assert values.render_line(0).text.split()[-2:] == ["||dL/dh_t||", f"{norm:.3g}"]
        await pilot.press("left_square_bracket")  # the forward direction: t = 4, 3 revealed, t = 2 not
        await pilot.pause()
        assert app.query_one("#map-dh", Heatmap).reveal_from_end and "BPTT t=3   layer 0 " in screen_text(app)
        lines = [values.render_line(y).text.split() for y in range(1, 4)]
        assert lines[1][-1] == "·" and "||dL/dh_t||" not in values.render_line(0).text, lines

        notices = []
        app.notify = lambda message, **kw: notices.append(message)
        await pilot.press("right_square_bracket", "b", "b", "b")  # the reverse direction's end: t = T
        assert notices == ["BPTT has reached t=4, the last step (a reverse direction's backward pass runs from t=1 "
                           "up)"]

    drive(check, target=load_preset("hello").with_overrides({"model.bidirectional": True}))


def test_a_narrow_heatmap_titles_its_record_by_its_symbol_and_scale_rather_than_a_cut_name():
    """At 80 columns the maps read "hidden state h_… (r = 1)" and "dL/d… (BPTT, r = 0.24)": each map has a
    short title, its record's symbol and the scale, drawn whole where the long one would be cut."""
    from rnnlab.spec import load_preset

    async def check(app, pilot):
        await pilot.press("right", "right", "b", "right_square_bracket")  # layer 0 reverse
        await pilot.pause()
        maps = {name: app.query_one(f"#map-{name}", Heatmap) for name in ("h", "f", "dh")}
        for heatmap in maps.values():
            heatmap.styles.width = 22
        await pilot.pause()
        titles = {name: heatmap.render_line(0).text.rstrip() for name, heatmap in maps.items()}
        assert titles["h"].startswith("h_t (r = 1)  · layer") and titles["f"] == "forget gate f_t  · la…"
        assert re.fullmatch(r"dL/dh_t \(r = [0-9.e-]+\)( +· layer|…)", titles["dh"]), titles

    drive(check, target=load_preset("hello").with_overrides({"model.bidirectional": True}))


def test_the_values_panels_gradient_norm_is_never_cut_short():
    """At 80x24 the title ended "||dL/dh_t|| 0.1…" for 0.157 (a diff review): a shorter form, or none."""
    from rnnlab.tui.panels import GradientPlot

    async def check(app, pilot):
        await pilot.press("end", "b", "b", "left")
        await pilot.pause()
        title = app.query_one("#values").render_line(0).text.rstrip()
        norm = app.query_one(GradientPlot)._series["||dL/dh_t||"].ys[-2]
        assert "…" not in title and title.endswith(f"{norm:.3g}"), title

    drive(check, size=(80, 24))


def test_the_values_table_is_redrawn_for_the_width_it_gets():
    """After B and ] on a 2-layer LSTM the table grew, the column's scrollbar took a cell, and the o
    column read "+0.…" in every row until the next key (a walkthrough of cells and options)."""
    from rnnlab.spec import edited, load_preset

    async def check(app, pilot):
        await pilot.press("end", "B")
        await wait_for(pilot, lambda: app.lab.bptt_cursor == 0)
        await pilot.press("right_square_bracket")
        for _ in range(3):
            await pilot.pause()
        values = app.query_one("#values")
        rows = [values.render_line(y).text for y in range(2, 4)]
        assert not any("…" in row for row in rows) and len(rows[0].split()) == 8, rows  # unit, h c i f g o, dh

    drive(check, target=edited(load_preset("selective-copy-gru"), {
        "model.cell": "lstm", "model.init": "orthogonal", "model.forget_bias": 1.0, "model.hidden_size": 8,
        "task.length": 16, "task.tokens": 3}), size=(140, 45))


def test_a_reverse_directions_maps_name_its_previous_state_h_t_plus_1():
    """GRU's W_hn h_{t-1} map read so in a reverse direction too, whose explain panel writes V_n·h_{t+1}."""
    from rnnlab.spec import load_preset

    async def check(app, pilot):
        hn = app.query_one("#map-hn", Heatmap)
        assert hn.title.startswith("W_hn h_{t-1} + b_hn")
        await pilot.press("right_square_bracket")  # layer 0 reverse
        await pilot.pause()
        assert hn.title.startswith("W_hn h_{t+1} + b_hn") and "layer 0 reverse" in hn.title

    drive(check, target=load_preset("hello").with_overrides({"model.cell": "gru", "model.bidirectional": True}))


def test_a_reverse_direction_of_a_task_scored_at_the_end_shows_its_norms_and_its_first_columns():
    """adding scores t = T alone: a reverse direction's dL/dh_1 is 0, and the ratio to it read "nan" at
    every step; its map, scrolled to the forward direction's end, kept its revealed t = 1.. out of view."""
    from rnnlab.spec import load_preset

    async def check(app, pilot):
        await pilot.press(*"bbbbb")  # t = 100..96 forward, 1..5 reverse
        await wait_for(pilot, lambda: app.lab.bptt_cursor == 95)
        await pilot.pause()
        dh_map = app.query_one("#map-dh", Heatmap)
        assert dh_map._geometry(dh_map.size.width)[2] > 0  # forward: the view at the end, t = T
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert dh_map._geometry(dh_map.size.width)[2] == 0  # reverse: at its start, where its BPTT began
        title = app.query_one(GradientPlot).title
        assert title == "BPTT t=5: ||dL/dh_t|| = 0 at t=1..5: no loss there (a log scale draws no 0)", title

    drive(check, target=load_preset("adding-lstm").with_overrides({"model.bidirectional": True}), size=(100, 30))


def test_a_gradient_that_underflowed_to_zero_is_said_so_in_the_plots_title():
    """A gradient vanished below float32's smallest number (here: exactly 0) read "= 0.00e+00" over a
    plot with no curve there (a log axis has no 0): a student took it for a bug, not the lesson."""
    from rnnlab.spec import load_preset

    async def check(app, pilot):
        lab = app.lab
        lab.model.rnn.parameters()["weight_hh_l0"][:] = 0  # nothing reaches h_{T-1} from the loss at T
        lab.set_sequence(lab.sequence)
        await pilot.press("b", "b")
        await wait_for(pilot, lambda: lab.bptt_cursor == lab.steps - 2)
        await pilot.pause()
        title = app.query_one(GradientPlot).title
        assert title == (f"BPTT t={lab.steps - 1}: ||dL/dh_t|| / ||dL/dh_T|| = 0.00e+00  "
                         "(0 in float32, whose smallest is 1.4e-45: zeros are not drawn)"), title

    drive(check, target=load_preset("adding-rnn").with_overrides({"task.length": 10}), size=(120, 36))


def test_a_reverse_direction_with_no_loss_at_its_start_says_its_zeros_in_the_title_and_the_plot():
    """A reverse direction of a task scored at T has dL/dh_t = 0 from t = 1 until its pass reaches T: the
    title read "||dL/dh_t|| = 0.00e+00" over a plot saying "no data". Both say the zeros, undrawn."""
    from rnnlab.spec import load_preset

    async def check(app, pilot):
        await pilot.press("end", "b", "b", "b", "right_square_bracket")  # layer 0 reverse: t = 1..3 revealed
        await pilot.pause()
        plot = app.query_one(GradientPlot)
        canvas = [line.text for line in (plot.render_line(y) for y in range(1, plot.size.height))]
        assert plot.title == "BPTT t=3: ||dL/dh_t|| = 0 at t=1..3: no loss there (a log scale draws no 0)"
        assert any("0 at t=1..3: none drawn on a log scale" in line for line in canvas), canvas
        assert not any("no data" in line for line in canvas), canvas
        await pilot.press("B")  # the whole pass: the loss at T reached, its norm drawn
        await wait_for(pilot, lambda: app.lab.bptt_cursor == 0)
        assert re.fullmatch(r"BPTT t=10: \|\|dL/dh_t\|\| = \d\.\d\de[+-]\d\d \(\|\|dL/dh_1\|\| = 0: no loss there\)",
                            plot.title), plot.title

    drive(check, target=load_preset("adding-rnn").with_overrides({"task.length": 10, "model.bidirectional": True}),
          size=(120, 36))


def test_the_values_table_shows_a_gradient_only_once_bptt_has_revealed_it():
    """An LSTM steps BPTT back from t = T: at t = 2, with BPTT at t = 4, the dh column is "·" as the
    dL/dh_t heatmap's column is empty; once BPTT has passed t = 2, the numbers."""
    async def check(app, pilot):
        await pilot.press("right", "right", "b")
        values = app.query_one("#values")

        def dh_column() -> list[str]:
            lines = [values.render_line(y).text.split() for y in range(1, 5)]
            assert lines[0][-1] == "dh", lines
            return [line[-1] for line in lines[1:]]

        assert app.lab.bptt_cursor == 3 and set(dh_column()) == {"·"}
        await pilot.press("b", "b")
        assert app.lab.bptt_cursor == 1 and "·" not in dh_column()

    drive(check)


@pytest.mark.parametrize("size", [(120, 40), (160, 50)])
def test_the_attention_map_leaves_the_heatmaps_more_room_in_a_wider_terminal(size):
    """adding-attention's 100 keys: the map took 66 of 120 columns and 102 of 160, the heatmaps
    shrinking to 21 and 25 steps as the terminal grew."""
    async def check(app, pilot):
        await pilot.press("right")
        await pilot.pause()
        panel, states = app.query_one("#attention"), app.query_one("#states")
        assert panel.size.width <= 0.4 * size[0] + 1 and states.size.width >= 0.3 * size[0]

    drive(check, "adding-attention", size=size)


def test_the_gradient_heatmap_follows_the_time_cursor_once_bptt_is_whole():
    """After B the dL/dh_t map stayed on t = 1..65 of 200 (its cursor the finished BPTT's, t = 1):
    End and the arrows moved every other map, and no key reached the rest of it."""
    async def check(app, pilot):
        lab = app.lab
        await pilot.press("b", "b")
        dh_map = app.query_one("#map-dh", Heatmap)
        assert dh_map.cursor == lab.bptt_cursor == lab.steps - 2  # stepping: the BPTT step
        await pilot.press("B", "end")
        await pilot.pause()
        assert lab.bptt_cursor == 0 and dh_map.cursor == lab.steps - 1 == app.query_one("#map-h").cursor
        lab.bptt_cursor = 1  # at t = 2, then b's last step to t = 1: the map stays there, where the user looks
        app.update_views()
        await pilot.press("b")
        await wait_for(pilot, lambda: lab.bptt_cursor == 0)
        await pilot.pause()
        assert dh_map.cursor == 0
        await pilot.press("left")  # until a time key moves
        await pilot.pause()
        assert dh_map.cursor == lab.cursor - 1 == app.query_one("#map-h").cursor

    drive(check, "adding-rnn", size=(120, 40))


def test_self_attention_reveals_its_backward_pass_whole_and_every_view_says_so():
    """copy-attention: no recurrence to step back through, every step's gradient comes at once: b
    shows it whole (the dL/dh_t heatmap, the values at t = 5, the plot "all steps at once"), with no
    BPTT cursor marked (its heatmap follows the time cursor, t = 5, as the states'); a second b says
    why there is nothing more."""
    async def check(app, pilot):
        notices = []
        app.notify = lambda message, **kw: notices.append(message)
        await pilot.press(*["right"] * 5, "b")
        lab = app.lab
        assert lab.bptt_cursor == 0
        dh_map = app.query_one("#map-dh", Heatmap)
        assert dh_map.revealed == lab.steps and dh_map.cursor == 4 == app.query_one("#map-h", Heatmap).cursor
        plot = app.query_one(GradientPlot)
        assert plot.marker is None and "all steps at once" in plot.short_titles[0]
        values = app.query_one("#values")
        lines = [values.render_line(y).text.split() for y in range(1, 4)]
        assert lines[0][-1] == "dh" and all(line[-1] != "·" for line in lines[1:]), lines
        assert "backprop" in app.query_one("#status").render().plain
        await pilot.press("b")
        assert lab.bptt_cursor == 0 and notices[-1].startswith("backprop is shown for every step")

    drive(check, "copy-attention", size=(100, 30))


def test_the_chosen_unit_is_marked_in_every_heatmap_and_the_panel_follows_it():
    """copy at 120x36: 64 units, 32 lines a map in a panel of about 20. U (unit 63) scrolls the
    map at the panel's top down to that unit's line; u brings unit 0 back into view."""
    async def check(app, pilot):
        states = app.query_one(StatePanel)
        maps = [heatmap for heatmap in app.query(Heatmap) if heatmap.id.startswith("map-")]
        assert all(heatmap.marked_row == 0 for heatmap in maps)
        assert " 0›" in screen_text(app) and states.scroll_y == 0
        await pilot.press("U")
        await pilot.pause()
        assert app.unit == 63 and all(heatmap.marked_row == 63 for heatmap in maps)
        h_map = app.query_one("#map-h", Heatmap)
        line = h_map.virtual_region.y + h_map.row_line(63)
        assert states.scroll_y <= line < states.scroll_y + states.size.height - 1  # under the colour key
        assert "63›" in screen_text(app)
        await pilot.press("u")
        await pilot.pause()
        assert app.unit == 0 and " 0›" in screen_text(app)

    drive(check, "copy", size=(120, 36))


def test_bptt_brings_up_dl_dh_with_a_heatmaps_title_on_the_panels_top_line():
    """multiscale-leaky at 200x50: four maps of 18 lines in a panel of 24. Scrolled just far enough
    for dL/dh_t, the panel opened inside the map above it, without its title; now dL/dh_t's title
    is the top line (the panel scrolls past the last map to let it), and k goes back a map at a time."""
    async def check(app, pilot):
        states = app.query_one(StatePanel)
        await pilot.press("b")
        dh_map = app.query_one("#map-dh", Heatmap)
        top = dh_map.virtual_region.y
        await wait_for(pilot, lambda: states.scroll_y == top, timeout=5, what="dL/dh_t at the top")
        visible = states.scrollable_content_region.height - 1  # under the colour key
        assert top + dh_map.outer_size.height <= states.scroll_y + visible
        lines = screen_text(app).splitlines()
        key = next(i for i, line in enumerate(lines) if line.startswith(" signed -r"))
        assert lines[key + 1].startswith(" dL/dh_t (BPTT"), lines[key + 1]
        await pilot.press("k")
        assert states.scroll_y == app.query_one("#map-a", Heatmap).virtual_region.y
        await pilot.press("j")
        await wait_for(pilot, lambda: states.scroll_y == top, timeout=5, what="dL/dh_t at the top again")
        await pilot.press("n")  # a new sequence drops dL/dh_t: back to the map b took the panel from, on its title
        await wait_for(pilot, lambda: not app.query("#map-dh"), timeout=5, what="dL/dh_t gone")
        await pilot.pause()
        assert states.scroll_y == 0  # (it stayed as far down as the shorter panel scrolls)
        await pilot.press("b")
        await wait_for(pilot, lambda: states.scroll_y == app.query_one("#map-dh", Heatmap).virtual_region.y)
        await pilot.press("k", "k")  # dL/dh_t out of view: a new sequence leaves the panel on the map shown
        shown = states.scroll_y
        await pilot.press("n")
        await wait_for(pilot, lambda: not app.query("#map-dh"), timeout=5, what="dL/dh_t gone")
        await pilot.pause()
        tops = [heatmap.virtual_region.y for heatmap in app.query(Heatmap) if heatmap.id.startswith("map-")]
        assert states.scroll_y == shown and shown in tops
        lines = screen_text(app).splitlines()
        key = next(i for i, line in enumerate(lines) if line.startswith(" signed -r"))
        assert lines[key + 1].strip(), "the panel opens on a heatmap's title"

    drive(check, "multiscale-leaky", size=(200, 50))


def test_the_plots_band_follows_a_resized_terminal():
    from rnnlab.tui.app import plots_rows

    async def check(app, pilot):
        band = app.query_one("#plots")
        for columns, rows in ((80, 24), (200, 60), (100, 30), (120, 36)):
            await pilot.resize_terminal(columns, rows)
            await pilot.pause()
            assert band.outer_size.height == plots_rows(rows), (columns, rows)

    drive(check, size=(120, 36))


def test_a_target_with_two_channels_shows_both_in_the_sequence_bar():
    from rnnlab.tui.app import plots_rows

    async def check(app, pilot):
        await pilot.press("right", "right")
        await pilot.pause()
        lines = screen_text(app).splitlines()[1:8]
        labels = [line.split()[0] + (" " + line.split()[1] if line.split()[0] in ("target", "output") else "")
                  for line in lines]
        assert labels == ["t", "input", "target slow", "output slow", "target fast", "output fast", "t"]
        fast = app.lab.sequence.y[:, 0, 1]
        assert lines[4].split()[2:5] == [f"{v:.2f}" for v in fast[:3]]  # the fast part itself
        assert len(lines[5].split()) == 4  # outputs of the two revealed steps only
        assert app.query_one("#sequence").outer_size.height == 8
        assert app.query_one("#plots").outer_size.height == plots_rows(36, 8)

    drive(check, "multiscale-leaky", size=(120, 36))


def test_a_series_with_more_channels_than_the_bar_shows_says_which(tmp_path):
    rng = np.random.default_rng(0)
    np.savetxt(tmp_path / "five.csv", rng.standard_normal((300, 5)), delimiter=",")
    (tmp_path / "five.toml").write_text('name = "five"\n[task]\nkind = "series"\npath = "five.csv"\nlength = 20\n'
                                       '[model]\ncell = "gru"\nhidden_size = 8\n')

    async def check(app, pilot):
        lines = screen_text(app).splitlines()
        labels = [" ".join(line.split()[:2]) for line in lines[2:11]]
        assert labels == ["input #1", "input #2", "input #3", "target #1", "output #1", "target #2", "output #2",
                          "target #3", "output #3"]
        assert "channels 1-3 of 5" in lines[11]

    drive(check, str(tmp_path / "five.toml"), size=(120, 40))


def test_t_on_a_finished_run_says_it_trains_more_and_a_paused_run_is_named_when_refusing(monkeypatch):
    async def check(app, pilot):
        notices = []
        monkeypatch.setattr(app, "notify", lambda message, **kwargs: notices.append(message))
        lab = app.lab
        lab.train()  # the preset's 200 steps, done before the key
        start = lab._start_training
        monkeypatch.setattr(lab, "_start_training", lambda: (start(), lab.pause_training()))  # held at once
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.training_status == "paused")
        assert notices[-1] == "200 steps trained already: training 200 more, to step 400 (t pauses, s stops)"
        await pilot.press("n")
        assert notices[-1] == "stop training first (s) (t only paused it)"
        await pilot.press("s")
        await wait_for(pilot, lambda: not lab.training)
        assert lab.trainer.step == 200

    drive(check, size=(120, 36))


def test_a_clicked_scroll_panel_leaves_the_time_keys_stepping_and_named_in_the_footer():
    async def check(app, pilot):
        await pilot.click("#states")  # a scroll panel, which would bind the arrows, home and end itself
        await pilot.pause()
        assert app.focused is None
        await pilot.press("right")
        await pilot.pause()
        assert app.lab.cursor == 1
        await pilot.press("end")
        assert app.lab.cursor == app.lab.steps
        await pilot.press("home", "right")
        await pilot.pause()
        assert screen_text(app).splitlines()[-1].startswith(" → forward  ← back")  # not "l forward  h back"

    drive(check, size=(120, 36))


def test_the_gradient_curves_are_computed_once_per_backward_pass_not_per_key(monkeypatch):
    import rnnlab.analysis

    calls = []
    original = rnnlab.analysis.step_weight_grad_norms
    monkeypatch.setattr(rnnlab.analysis, "step_weight_grad_norms", lambda *a, **k: calls.append(a) or original(*a, **k))

    async def check(app, pilot):
        await pilot.press("end", "b", "b", "left", "u", "b")
        await pilot.pause()
        assert len(calls) == 1 and app.lab.bptt_cursor == 1
        plot = app.query_one(GradientPlot)
        np.testing.assert_allclose(plot._series["||ΔW_hh(t)||"].ys, original(app.lab.trace)[1:])
        await pilot.press("n", "end", "b")  # a new sequence: a new backward pass, new curves
        await pilot.pause()
        assert len(calls) == 2
        np.testing.assert_allclose(plot._series["||ΔW_hh(t)||"].ys, original(app.lab.trace)[3:])

    drive(check, size=(120, 36))


def test_a_new_experiment_clears_the_training_plots_numbers():
    async def check(app, pilot):
        app.lab.train(until_step=5)
        app.update_views()
        loss_plot = app.query_one("#loss-plot")
        assert loss_plot.short_titles[0].startswith("loss ")
        app.lab.reconfigure({"train.learning_rate": 0.02})  # what the edit form's Apply does
        app.update_views()
        assert loss_plot.title == "loss (press t to train)" and loss_plot.short_titles == ("loss (t trains)", "loss")
        assert app.query_one("#norm-plot").short_titles == ("|g|",)

    drive(check, size=(80, 24))


def test_a_cursor_key_leaves_the_heatmaps_data_alone_and_new_data_replaces_it(monkeypatch):
    calls = []
    original = Heatmap.set_data
    monkeypatch.setattr(Heatmap, "set_data", lambda self, *a, **k: calls.append(self.id) or original(self, *a, **k))

    async def check(app, pilot):
        h_map = app.query_one("#map-h", Heatmap)
        calls.clear()
        await pilot.press("right", "right", "u", "left")
        await pilot.pause()
        assert calls == [] and app.lab.cursor == 1
        await pilot.press("n")  # a new sequence: new records, every map redrawn
        await pilot.pause()
        assert "map-h" in calls and "map-c" in calls
        np.testing.assert_allclose(h_map.data, app.lab.trace.get("h")[:, 0, :].T)

    drive(check, size=(120, 36))


def test_n_on_a_task_with_one_sequence_says_so_and_points_at_typing_one(monkeypatch):
    async def check(app, pilot):
        notices = []
        monkeypatch.setattr(app, "notify", lambda message, **kwargs: notices.append(message))
        text = app.lab.task.decode(app.lab.sequence.x[:, 0].argmax(axis=-1))
        await pilot.press("n")
        await pilot.pause()
        assert notices == ["the hello task has only this sequence: read again (i types another)"]
        assert app.lab.task.decode(app.lab.sequence.x[:, 0].argmax(axis=-1)) == text == "hell"

    drive(check, size=(120, 36))


def test_switching_layers_redraws_the_heatmaps_with_that_layers_records():
    async def check(app, pilot):
        lab = app.lab
        assert lab.spec.model.num_layers == 2
        for key, layer in (("]", 1), ("[", 0)):
            await pilot.press(key)
            await pilot.pause()
            np.testing.assert_array_equal(app.query_one("#map-h", Heatmap).data,
                                          lab.trace.get("h", layer)[:, 0, :].T.astype(np.float64))

    drive(check, "selective-copy-mingru", size=(120, 36))


def test_the_values_table_follows_the_chosen_unit_and_leaves_the_equations_in_view():
    async def check(app, pilot):
        await pilot.press("right", "U")  # unit - from 0: the last of 64
        await pilot.pause()
        assert app.unit == 63
        values = app.query_one("#values")
        lines = [values.render_line(y).text for y in range(values.size.height)]
        assert lines[-1].strip() == "units 60-63 of 64 (u/U)" and lines[-2].split()[0] == "63"
        side, explain = app.query_one("#side"), app.query_one("#explain")
        assert "explain: unit 63" in str(explain.render())
        assert explain.virtual_region.y < side.size.height  # its first line is on screen
        await pilot.press("u")  # unit + from 63: back to 0
        await pilot.pause()
        assert app.unit == 0 and values.render_line(values.size.height - 1).text.strip().startswith("units 0-")

    drive(check, "copy-gru", size=(120, 36))


def test_the_side_column_says_when_the_explain_panel_continues_below_its_edge():
    """copy-attention's softmax explanation is taller than its column at 120x36: a last line says
    more lies below until the column is scrolled to its end."""
    async def check(app, pilot):
        await pilot.press("right", "right")
        await pilot.pause()
        side, more = app.query_one("#side"), app.query_one("#side-more")
        assert side.max_scroll_y > 0 and more.display
        assert "↓ more: PgDn" in screen_text(app)
        for _ in range(10):  # the keyboard scrolls it too: no panel takes the focus
            await pilot.press("pagedown")
        await pilot.pause()
        assert side.scroll_y == side.max_scroll_y
        assert not more.display and "↓ more" not in screen_text(app)
        assert "in_proj_weight" in screen_text(app)  # the panel's last line, now in view
        await pilot.press("pageup")
        await pilot.pause()
        assert side.scroll_y < side.max_scroll_y and more.display
        assert app.lab.cursor == 2  # the time cursor stayed where it was

    drive(check, "copy-attention", size=(120, 36))


def test_the_side_column_says_nothing_more_where_everything_fits():
    async def check(app, pilot):
        await pilot.press("right")
        await pilot.pause()
        assert app.query_one("#side").max_scroll_y == 0 and not app.query_one("#side-more").display

    drive(check, "hello", size=(200, 60))


def test_the_more_line_goes_when_a_new_sequence_shortens_the_column():
    """End's long explanation, then a typed sequence (the cursor back at t=0, a short panel): the
    line went on saying "↓ more: PgDn" with nothing below (no resize told the column)."""
    async def check(app, pilot):
        side, more = app.query_one("#side"), app.query_one("#side-more")
        await pilot.press("end")
        await wait_for(pilot, lambda: more.display)
        await pilot.press("i")
        await wait_for(pilot, lambda: app.screen.query("#prompt-input"))
        await pilot.press(*"hellohell", "enter")
        await wait_for(pilot, lambda: app.lab.cursor == 0 and app._computing is None)
        await wait_for(pilot, lambda: side.max_scroll_y == 0, what="the short column")
        await pilot.pause()
        assert not more.display and "↓ more" not in screen_text(app)

    drive(check, "hello", size=(120, 40))


def test_bptt_stays_in_view_while_training_refreshes_the_heatmaps():
    async def check(app, pilot):
        lab = app.lab
        lab.reconfigure({"train.steps": 1_000_000})
        await pilot.press("b", "b")
        await pilot.press("t")
        await wait_for(pilot, lambda: app._refreshed_history > 0)  # the heatmaps were recomputed
        await wait_for(pilot, lambda: app._refreshed_history != app._seen_history or len(lab.history) > 20)
        assert lab.bptt_cursor == 2 and "dh" in lab.trace.names
        await pilot.press("s")
        await wait_for(pilot, lambda: not lab.training)
        assert lab.bptt_cursor == 2  # and after the last refresh too

    drive(check)


def test_ctrl_c_quits_the_lab():
    async def check(app, pilot):
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.return_code == 0  # quit, not Textual's "press ctrl+q to quit" notice

    drive(check)


def test_training_runs_in_the_background_and_the_plots_follow():
    async def check(app, pilot):
        lab = app.lab
        lab.reconfigure({"train.steps": 1_000_000})  # long enough to pause, resume and stop
        await pilot.press("t")
        await wait_for(pilot, lambda: len(lab.history) > 3)
        await pilot.press("t")  # pause
        await wait_for(pilot, lambda: lab.training_status == "paused")
        paused_at = len(lab.history)
        await pilot.pause(0.2)
        assert len(lab.history) == paused_at
        await pilot.press("e")  # refused while training: nothing opens
        assert not app.screen.query("#edit")
        await pilot.press("t")  # resume
        await wait_for(pilot, lambda: len(lab.history) > paused_at + 3)
        await pilot.press("s")
        await wait_for(pilot, lambda: lab.training_status == "stopped")
        steps = [r.step for r in lab.history]
        assert steps == list(range(1, len(steps) + 1))

    drive(check)


def test_training_to_the_end_updates_every_view():
    async def check(app, pilot):
        lab = app.lab
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.training_status == "completed")
        await pilot.pause(0.3)
        assert lab.trainer.step == lab.spec.train.steps == 200
        loss_plot = app.query_one("#loss-plot", LinePlot)
        assert "train" in loss_plot.series_names and loss_plot.title.startswith("loss ")
        assert lab.evaluation.accuracy == 1.0  # the views show the trained network
        assert "completed step 200" in screen_text(app)
        assert "accuracy 100%" in screen_text(app)

    drive(check)


def spec_on(tmp_path: Path, name: str, kind: str, data: str, length: int) -> str:
    """A spec file of a ``kind`` task (text, series) on ``data`` written to ``tmp_path/name``."""
    (tmp_path / name).write_text(data, encoding="utf-8")
    spec = tmp_path / f"{Path(name).stem}.toml"
    spec.write_text(f'[task]\nkind = "{kind}"\npath = "{tmp_path / name}"\nlength = {length}\n')
    return str(spec)


async def edit_hidden_size(app, pilot, size: int) -> None:
    """e, a hidden size typed in the form (its field has the focus when it opens), Enter: the new model shown."""
    await pilot.press("e")
    await wait_for(pilot, lambda: app.screen.query("#edit-grid"))
    app.screen.query_one("#model-hidden_size").value = str(size)
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.lab.spec.model.hidden_size == size)


async def typing_dialog(app, pilot):
    """Open the lab's typing dialog (i); returns its field."""
    await pilot.press("i")
    await wait_for(pilot, lambda: app.screen.query("#prompt-input"))
    return app.screen.query_one("#prompt-input")


@pytest.mark.parametrize("keys", [("enter", "escape"), ("enter", "enter"), ("escape", "escape")])
def test_two_closing_keys_in_one_batch_of_input_close_the_dialog_alone(keys):
    """Textual's dismiss pops whatever screen is on top: an Enter and a second closing key that reached a
    dialog together (a paste ending in a line break, a script, a fast hand) closed it and then the lab under
    it, a ScreenStackError. The dialog closes once and the lab stays, its keys working."""
    from textual import events

    async def check(app, pilot):
        lab_screen = app.screen
        field = await typing_dialog(app, pilot)
        field.value = "hel"
        for key in keys:  # posted with no await between: queued behind one another, as a paste's are
            app.post_message(events.Key(key, "\r" if key == "enter" else None))
        if keys == ("enter", "enter"):  # applied (once); an Esc acts before the Enter's submission, cancelling
            await wait_for(pilot, lambda: app.lab.task.target_tokens(app.lab.sequence) == list("el"))
        await pilot.pause()
        await pilot.pause()
        assert app.screen is lab_screen
        await pilot.press("right")
        assert app.lab.cursor == 1

    drive(check)


@pytest.mark.parametrize("target, pasted, field, steps", [
    ("text", "the cat\r\nsat\n", "the cat⏎sat", 10),  # a text: each line break a newline, as ⏎ types it
    ("sine", "0.1\n0.5\n0.9\n\n\n", "0.1 0.5 0.9", 2),  # numbers: a separator (trailing blank lines: none)
])
def test_a_paste_into_the_typing_dialog_keeps_every_line(target, pasted, field, steps):
    """textual's Input kept the first line of a paste: a pasted poem or column of numbers lost the
    rest, with no word (a text walkthrough's finding)."""
    from textual import events

    async def check(app, pilot):
        typing = await typing_dialog(app, pilot)
        typing.post_message(events.Paste(pasted))
        await pilot.pause()
        assert typing.value == field
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.lab.sequence_typed and not app.computing)
        assert app.lab.steps == steps

    drive(check, target=target)


def test_a_paste_of_lines_where_nothing_types_a_line_break_is_refused_in_the_dialog(tmp_path):
    """A text holding '⏎' and a backslash of its own has no way to type a newline: a raw newline put
    in the field broke the screen's drawing (a review's finding). The paste is refused, saying why."""
    from textual import events

    async def check(app, pilot):
        typing = await typing_dialog(app, pilot)
        typing.post_message(events.Paste("ab\nba"))
        await pilot.pause()
        assert typing.value == "" and "cannot be typed here" in str(app.screen.query_one("#prompt-error").render())
        typing.post_message(events.Paste("ab⏎\n"))  # one line (its end types nothing): taken
        await pilot.pause()
        assert typing.value == "ab⏎"

    drive(check, target=spec_on(tmp_path, "odd.txt", "text", "a⏎b\\c\n" * 40, 8))


def test_a_column_name_with_brackets_is_shown_as_written_in_the_typing_dialog(tmp_path):
    """The dialog's title read its text as markup: a column named "time[/s]" ended the lab with a
    MarkupError, "load [kW]" lost its unit (a review's finding)."""
    rows = "".join(f"{(k * 7) % 11},{(k * 3) % 5}.5\n" for k in range(60))

    async def check(app, pilot):
        await typing_dialog(app, pilot)
        await pilot.pause()
        text = " ".join(screen_text(app).split())
        assert "(time[/s] - 5" in text and "(load [kW] - 2" in text, text

    drive(check, target=spec_on(tmp_path, "units.csv", "series", "time[/s],load [kW]\n" + rows, 5), size=(160, 40))


def test_a_zero_width_joiner_typed_into_the_typing_dialog_is_kept(tmp_path):
    """👨‍👩‍👧 typed by an emoji picker lost both joiners (Input drops what is not "printable"), and the
    network read three people where the text held one family."""
    from textual import events

    async def check(app, pilot):
        typing = await typing_dialog(app, pilot)
        for character in "a\u200db":
            typing.post_message(events.Key(character, character))
        await pilot.pause()
        assert typing.value == "a\u200db"

    drive(check, target=spec_on(tmp_path, "family.txt", "text", "a\u200db " * 40, 8))


def test_keys_typed_faster_than_a_dialog_draws_land_in_it():
    """e then 99 in one burst (a paste, tmux send-keys): the 9s reached the lab's screen before e's
    binding pushed the form, and were lost; the form showed hidden size 16."""
    from textual import events

    async def check(app, pilot):
        for key in "e99":  # all queued before the first is handled
            app.post_message(events.Key(key, key))
        await wait_for(pilot, lambda: app.screen.query("#model-hidden_size"))
        await wait_for(pilot, lambda: app.screen.query_one("#model-hidden_size").value == "99")
        await pilot.press("escape")
        for key in "ocopy":
            app.post_message(events.Key(key, key))
        await wait_for(pilot, lambda: app.screen.query("#open-input"))
        await wait_for(pilot, lambda: app.screen.query_one("#open-input").value == "copy")
        await pilot.press("escape")
        for key in [*"iheh", "enter"]:  # Enter in the burst too: the typed sequence goes on the bench
            app.post_message(events.Key(key, key if len(key) == 1 else None))
        await wait_for(pilot, lambda: app.lab.steps == 2 and not app.screen.query("#prompt-input"))  # h e -> e h
        for key in [*"ihe", "enter", "l"]:  # l after Enter overtook it ("hel" went on the bench): now it steps
            app.post_message(events.Key(key, key if len(key) == 1 else "\r"))
        await wait_for(pilot, lambda: app.lab.steps == 1 and app.lab.cursor == 1)
        assert app.lab.task.input_tokens(app.lab.sequence) == ["h"] and not app.screen.query("#prompt-input")
        for key, character in (("question_mark", "?"), ("q", "q")):  # help's own q closes it (the lab goes on)
            app.post_message(events.Key(key, character))
        await pilot.pause(0.5)  # help has opened by now (and stays open if its q were lost)
        await wait_for(pilot, lambda: app.screen is app.screen_stack[0] and app.is_running)
        for key in ("o", "down", "enter"):  # the list's keys: the second entry opens
            app.post_message(events.Key(key, "o" if key == "o" else None))
        await wait_for(pilot, lambda: app.lab.spec.name != "hello" and not app.screen.query("#open-input"))

    drive(check)


def test_the_edit_form_opens_with_its_focused_field_in_view_and_as_much_above_it_as_fits():
    """At 100x30 the form opened focused on the hidden size under the fold: typed digits went to a
    field out of sight. In view now, scrolled no further: the name, task and cell stay above it. At
    80x24 it came after the cell's own fields, and showed scrolled past the name, task and cell (the
    form's top, greyed fields of other cells, out of view): the sizes now follow the cell."""
    async def check(app, pilot):
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#edit-grid"))
        await pilot.pause()
        fields, focused = app.screen.query_one("#edit-fields"), app.screen.focused
        assert focused.id == "model-hidden_size" and fields.region.contains_region(focused.region)
        for above in ("#name", "#task-kind", "#model-cell"):
            assert fields.region.contains_region(app.screen.query_one(above).region), above

    drive(check, target="adding-rnn", size=(100, 30))
    drive(check, target="adding-rnn", size=(80, 24))


def test_tab_and_shift_tab_in_the_edit_form_stop_only_at_its_fields_and_buttons():
    """shift+tab from the name (the form's first field) focused the fields' scroll container, which
    shows no focus: typed digits and Enter went nowhere, as if the form had lost the focus."""
    from textual.widgets import Button, Input, Select

    async def check(app, pilot):
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#edit-grid"))
        form = app.screen
        for key in ("shift+tab", "tab"):
            stops = []
            for _ in range(30):  # more than the form's fields and buttons: round once at least
                await pilot.press(key)
                stops.append(form.focused)
            assert all(isinstance(stop, (Input, Select, Button)) for stop in stops), stops
            assert form.query_one("#name") in stops and form.query_one("#cancel") in stops

    drive(check, target="adding-rnn", size=(80, 24))


def test_edit_refuses_bad_values_inline_and_applies_good_ones():
    async def check(app, pilot):
        await pilot.press("e")
        await pilot.pause()
        hidden = app.screen.query_one("#model-hidden_size")
        hidden.value = "0"
        await pilot.pause()
        app.screen.query_one("#apply").press()
        await pilot.pause()
        error = str(app.screen.query_one("#edit-error").render())
        assert error.startswith("hidden size: ") and "between 1 and" in error  # named as the form labels it
        assert app.lab.spec.model.hidden_size == 16  # nothing changed
        app.screen.query_one("#train-steps").focus()
        hidden.value = "8"
        app.screen.query_one("#model-num_layers").value = "YY"
        app.screen.query_one("#apply").press()
        await pilot.pause()
        error = str(app.screen.query_one("#edit-error").render())
        assert error.startswith("layers: expected an integer") and app.focused.id == "model-num_layers"
        assert not app._notifications  # the message under the fields is in view: no toast over the form
        app.screen.query_one("#model-num_layers").value = "1"
        await pilot.pause()
        assert str(app.screen.query_one("#edit-error").render()) == ""  # it spoke of the value before
        hidden.value = "0"
        app.screen.query_one("#apply").press()
        await pilot.pause()
        assert str(app.screen.query_one("#edit-error").render()).startswith("hidden size: ")
        app.screen.query_one("#model-cell").value = "gru"  # a choice changed clears it too
        await pilot.pause()
        assert str(app.screen.query_one("#edit-error").render()) == ""
        hidden.value = "8"
        hidden.focus()
        await pilot.press("enter")  # Enter in a field applies the form, as the Apply button does
        await wait_for(pilot, lambda: app.lab.spec.model.cell == "gru")
        assert app.lab.spec.model.cell == "gru" and app.lab.spec.model.hidden_size == 8
        assert "update gate z_t" in screen_text(app)

    drive(check)


def test_heads_that_do_not_divide_the_hidden_size_are_said_at_the_field_as_they_are_typed():
    """The edit form refused heads that do not divide d_model only at Apply; now the field is tinted
    and the spec's reason shown under the fields as the heads, the hidden size or the cell change."""
    async def check(app, pilot):
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#edit-grid"))
        form = app.screen
        error, heads = form.query_one("#edit-error"), form.query_one("#model-num_heads")
        refused = ("heads (selfattention): hidden_size (16) must be divisible by num_heads (3): each head gets "
                   "hidden_size / num_heads dimensions")
        heads.value = "3"  # (not self-attention's yet: the field is disabled, and nothing to say)
        await pilot.pause()
        assert str(error.render()) == "" and not heads.has_class("-invalid")
        form.query_one("#model-cell").value = "selfattention"
        await pilot.pause()
        assert str(error.render()) == refused and heads.has_class("-invalid")
        heads.focus()
        await pilot.press("backspace", "4")  # typed: 4 divides 16
        assert str(error.render()) == "" and not heads.has_class("-invalid")
        form.query_one("#model-hidden_size").value = "18"
        await pilot.pause()
        assert str(error.render()) == refused.replace("16", "18").replace("(3)", "(4)")
        form.query_one("#model-hidden_size").value = "12"
        await pilot.pause()
        assert str(error.render()) == "" and not heads.has_class("-invalid")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.lab.spec.model.cell == "selfattention")
        assert (app.lab.spec.model.hidden_size, app.lab.spec.model.num_heads) == (12, 4)

    drive(check)


def test_one_unsaved_step_is_named_it_in_the_warnings():
    """The edit form's, the open dialog's and the quit warnings said of "the 1 step trained since the
    last save" that "ctrl+s saves them first", as of many."""
    from rnnlab.spec import load_preset

    async def check(app, pilot):
        await pilot.press("t")
        await wait_for(pilot, lambda: app.lab.training_status == "completed" and not app.lab.training)
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#edit-grid"))
        assert str(app.screen.query_one("#edit-warning").render()) == (
            "Applying starts a new, untrained model: the 1 step trained since the last save is dropped (ctrl+s "
            "saves it first).")
        app.screen.query_one("#model-hidden_size").value = "8"
        app.screen.query_one("#apply").press()
        await wait_for(pilot, lambda: app.screen.query_one("#edit-warning").has_class("armed"))
        assert str(app.screen.query_one("#edit-warning").render()).endswith(
            "drops the 1 step trained since the last save; ctrl+s saves it first, Esc keeps it.")
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1)
        await pilot.press("q")
        await pilot.pause()
        assert list(app._notifications)[-1].message == (
            "1 trained step is not saved: q (or ctrl+c) again quits without it, ctrl+s saves it, Esc stays")

    drive(check, target=load_preset("hello").with_overrides({"train.steps": 1}))


def _trained_run(path: Path, preset: str, steps: int) -> Path:
    from rnnlab.spec import load_preset
    from rnnlab.train import RunDir, Trainer, train_run

    spec = load_preset(preset).with_overrides({"train.steps": steps, "model.hidden_size": 4})
    train_run(RunDir.create(path, spec), Trainer(spec), steps)
    return path


def test_o_lists_runs_and_presets_narrows_as_typed_and_opens_the_chosen_run(tmp_path, monkeypatch):
    """A lab on one run had to be quit to look at another (rnnlab tui runs/OTHER)."""
    monkeypatch.chdir(tmp_path)
    _trained_run(tmp_path / "runs" / "parity-a", "parity", 3)
    _trained_run(tmp_path / "runs" / "hello-b", "hello", 2)

    async def check(app, pilot):
        await pilot.press("o")
        await wait_for(pilot, lambda: open_listed(app))
        listed = app.screen._shown  # the targets of the options listed
        assert listed[:2] == ["runs/hello-b", "runs/parity-a"] and "hello" in listed and "copy-lru" in listed
        row = next(line for line in screen_text(app).splitlines() if "runs/parity-a" in line)
        assert row.index("3/3 completed") < row.index("parity, gru, H=4")  # what cuts at 80 columns last
        await pilot.press(*"parit")  # typing narrows the list: the run, then the preset
        assert app.screen._shown == ["runs/parity-a", "parity"]
        await pilot.press("y")  # a name typed whole comes first
        assert app.screen._shown == ["parity", "runs/parity-a"]
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: app.lab.task.kind == "parity")
        assert app.lab.run.path == Path("runs/parity-a") and app.lab.trainer.step == 3
        assert any(n.message.startswith("opened runs/parity-a: gru, parity") for n in app._notifications)
        assert app.layer == 0 and app.sub_title.startswith("runs/parity-a · parity")  # which run of several
        await pilot.press("o")  # the open run's folder and ./runs are one: each run once
        await wait_for(pilot, lambda: open_listed(app))
        listed = app.screen._shown
        assert listed.count("runs/parity-a") == 1
        assert listed[:2] == ["runs/hello-b", "runs/parity-a"]  # opening changes no run: the same order
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.lab.task.kind == "hello")
        assert app.lab.run.path == Path("runs/hello-b")

    drive(check, target="runs/hello-b")


def test_a_folder_of_runs_opens_the_lab_on_the_run_chosen_and_esc_quits(tmp_path, monkeypatch):
    """rnnlab tui runs/ said 'runs is not a run directory' and listed three of them; then it
    listed the runs of ./runs and ./ beside that folder's."""
    monkeypatch.chdir(tmp_path)
    _trained_run(tmp_path / "exp" / "parity-a", "parity", 3)
    _trained_run(tmp_path / "runs" / "hello-b", "hello", 2)

    async def main(keys):
        app = LabApp(choose_in=Path("exp"))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: open_listed(app))
            assert app.lab is None and "exp/parity-a" in screen_text(app) and "Esc quits" in screen_text(app)
            assert app.screen._shown[0] == "exp/parity-a" and "runs/hello-b" not in app.screen._shown
            await pilot.press(*keys)
            await wait_for(pilot, lambda: app.lab is not None or not app.is_running)
        return app

    async def main_then_step():
        app = LabApp(choose_in=Path("exp"))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: open_listed(app))
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.lab is not None)
            assert app.lab.run.path == Path("exp/parity-a") and app.target == "exp/parity-a"
            await pilot.pause()
            await pilot.press("l")  # the keys reach the lab (the focus was left on the removed loading log)
            assert app.lab.cursor == 1

    asyncio.run(main_then_step())
    app = asyncio.run(main(["escape"]))
    assert app.lab is None and not app.return_code


def test_the_open_dialog_fits_80x24_and_a_run_named_like_a_preset_opens_as_a_run(tmp_path, monkeypatch):
    """A run in ./ named hello crashed the dialog (two options with the id 'hello'), and chose the
    preset; at 80x24 the dialog's last line was cut off and rows wrapped."""
    monkeypatch.chdir(tmp_path)
    _trained_run(tmp_path / "hello", "hello", 2)
    _trained_run(tmp_path / "runs" / "a-rather-long-run-directory-name-of-an-experiment", "parity", 2)

    async def check(app, pilot):
        await pilot.press("o")
        await wait_for(pilot, lambda: open_listed(app))
        await pilot.pause()
        text = screen_text(app)
        assert "Esc cancels" in text and "./hello" in text
        rows = [line for line in text.splitlines() if "run    " in line]
        assert len(rows) == 2 and all(line.rstrip().endswith("│") for line in rows)  # one line each, cut with …
        await pilot.press("tab", *"hel")  # letters typed in the list go to the field
        assert app.screen.query_one("#open-input").value == "hel"
        app.screen.query_one("#open-input").value = "./hello"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.lab.run is not None)
        assert app.lab.run.path == Path("hello") and app.lab.trainer.step == 2

    drive(check, target="parity", size=(80, 24))


def test_the_open_dialog_at_80_columns_shows_a_default_named_runs_eval_loss(tmp_path, monkeypatch):
    """"step 200/200 completed  eval…": the README says the list gives each run's eval loss."""
    monkeypatch.chdir(tmp_path)
    _trained_run(tmp_path / "runs" / "hello-20261201-055007", "hello", 2)

    async def check(app, pilot):
        await pilot.press("o")
        await wait_for(pilot, lambda: open_listed(app))
        await pilot.pause()
        row = next(line for line in screen_text(app).splitlines() if "hello-20261201-055007" in line)
        assert re.search(r"2/2 completed  eval loss \d\.\d+", row), row

    drive(check, size=(80, 24))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_the_open_dialogs_rows_fill_the_list_with_whole_fields(tmp_path, monkeypatch, size):
    """A row longer than the list was cut to the dialog's width less a guess of its frame: its "…"
    stood 2 cells (4 without a scrollbar) short of the list's edge, hiding what would have fit. Now a row
    is fitted to the list, each field whole, up to the edge less the next field's width."""
    from rnnlab.spec import load_preset
    from rnnlab.train import RunDir, Trainer, train_run

    monkeypatch.chdir(tmp_path)
    for k, rate in enumerate((0.01, 0.002)):  # a sweep's two runs: each row names its two settings
        spec = load_preset("parity").with_overrides({"name": "a-rather-long-experiment-name-of-a-sweep",
                                                     "train.steps": 2, "model.hidden_size": 4 + k,
                                                     "train.learning_rate": rate})
        train_run(RunDir.create(tmp_path / "runs" / f"{spec.name}-{k}", spec), Trainer(spec), 2)

    async def check(app, pilot):
        await pilot.press("o")
        await wait_for(pilot, lambda: open_listed(app))
        await pilot.pause()
        options = app.screen.query_one("#open-list")
        region = options.scrollable_content_region  # inside its padding and scrollbar
        row = next(line for line in screen_text(app).splitlines() if "sweep-0" in line)[region.x:region.right]
        assert row.startswith("run    …") and "…" not in row[8:], row  # the path's own end, the rest whole
        fields = (r"2/2 completed  eval( loss)? \d\.\d+"
                  r"(  parity(, gru(, H=4(, hidden_size=4(, learning_rate=0.01)?)?)?)?)?")
        assert re.fullmatch(fields, row[7:].partition("-0  ")[2].rstrip()), row
        # what is left out did not fit whole: "parity" at 80 columns, the sweep's setting at 120
        left_out = "  parity" if size[0] == 80 else ", hidden_size=4"
        assert row.rstrip().endswith("H=4") == (size[0] == 120), row
        assert len(row.rstrip()) > region.width - len(left_out), row

    drive(check, target="parity", size=size)


def test_the_open_dialog_at_80x24_shows_each_figure_whole_or_leaves_it_out(tmp_path, monkeypatch):
    """At 80x24 a default run of 200 steps read "200/200 completed  eval loss 0.01…" (a figure cut at the
    list's edge reads as another number). Now its eval loss is whole, "eval" its label in every row where
    "eval loss" would leave one out, and a field that does not fit whole is left out: "hello, lstm" goes
    before its H, and at 120 columns, the dialog listed again as the terminal widens, the rows are whole."""
    from rnnlab.train.runs import list_runs

    monkeypatch.chdir(tmp_path)
    _trained_run(tmp_path / "runs" / "hello-20261201-055007", "hello", 200)
    _trained_run(tmp_path / "runs" / "parity-b", "parity", 3)
    loss = {run.path.name: f"{run.eval['loss']:.4g}" for run in list_runs(Path("runs"))}

    async def check(app, pilot):
        await pilot.press("o")
        await wait_for(pilot, lambda: open_listed(app))
        await pilot.pause()
        rows = {name: next(line for line in screen_text(app).splitlines() if name in line) for name in loss}
        for name, row in rows.items():
            assert f"completed  eval {loss[name]}" in row and "…" not in row, row
            details = row.partition(f"eval {loss[name]}")[2].strip(" │▎▊")
            assert details in ("", "hello", "hello, lstm", "parity", "parity, gru", "parity, gru, H=4"), row
        await pilot.resize_terminal(120, 30)
        await wait_for(pilot, lambda: "eval loss" in screen_text(app), what="the rows fitted to 120 columns")
        rows = {name: next(line for line in screen_text(app).splitlines() if name in line) for name in loss}
        assert f"200/200 completed  eval loss {loss['hello-20261201-055007']}  hello, lstm, H=4" in rows[
            "hello-20261201-055007"]

    drive(check, target="hello", size=(80, 24))


def test_the_open_dialog_writes_a_runs_problem_whole_or_cut_after_a_word(tmp_path, monkeypatch):
    """A damaged run's reason was cut to 50 cells at any width: 'the weights of step 2…' (of step 20) at 160
    columns; now it has the row's room, and where that is short it ends after a whole word, ' …'."""
    from rnnlab.tui.screens import open_choices

    monkeypatch.chdir(tmp_path)
    _trained_run(tmp_path / "runs" / "gone", "hello", 20)
    (tmp_path / "runs" / "gone" / "checkpoint.npz").unlink()
    row = lambda columns: open_choices([Path("runs")], columns)[0][1].plain  # noqa: E731
    assert row(160).endswith("damaged: no checkpoint.npz: the weights of step 20 are gone"), row(160)
    assert row(80).endswith(": the …") and len(row(80)) <= 80 - 12, row(80)  # OPEN_FRAME_CELLS


def test_the_open_dialog_takes_a_name_typed_as_its_row_reads_it():
    """'preset text', as the list writes it, was refused as an unknown preset."""
    async def check(app, pilot):
        await pilot.press("o")
        await wait_for(pilot, lambda: app.screen.query("#open-input"))
        app.screen.query_one("#open-input").value = "preset parity"
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.lab.task.kind == "parity")

    drive(check, target="hello")


def test_a_folder_of_runs_typed_in_the_open_dialog_lists_them(tmp_path, monkeypatch):
    """Typing runs, which also narrowed the list to the runs in it, opened the first of them."""
    monkeypatch.chdir(tmp_path)
    _trained_run(tmp_path / "elsewhere" / "x", "parity", 2)
    _trained_run(tmp_path / "runs" / "hello-b", "hello", 2)

    async def check(app, pilot):
        await pilot.press("o")
        await wait_for(pilot, lambda: app.screen.query("#open-input"))
        app.screen.query_one("#open-input").value = "elsewhere"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.query_one("#open-input").value == "" and open_listed(app))
        assert "elsewhere/x" in screen_text(app) and app.lab.spec.name == "hello"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.lab.run is not None)
        assert app.lab.run.path == Path("elsewhere/x")
        await pilot.press("o", *"runs")
        await wait_for(pilot, lambda: open_listed(app))
        await pilot.pause()
        assert app.screen._shown == ["runs/hello-b"]
        await pilot.press("enter")  # the folder, though the list holds a run in it: its runs
        await wait_for(pilot, lambda: app.screen.query_one("#open-input").value == "" and open_listed(app))
        assert app.lab.run.path == Path("elsewhere/x") and app.screen._shown[0] == "runs/hello-b"
        await pilot.press(*"runs", "down", "up", "enter")  # chosen with up/down: that run opens
        await wait_for(pilot, lambda: app.lab.run.path == Path("runs/hello-b"))

    drive(check, target="hello")


def test_the_open_dialog_answers_keys_while_it_lists_the_runs_and_lists_them_once(tmp_path, monkeypatch):
    """o on a folder of 3000 runs froze the lab some 25 s: the runs were read in the UI thread, and read
    again on each resize. Now they are read in a thread, the dialog saying how many meanwhile (here until
    the test lets the reading go on): it takes keys, Esc closes it, and a resize fits the rows again."""
    import threading

    from rnnlab.train import runs

    monkeypatch.chdir(tmp_path)
    _trained_run(tmp_path / "runs" / "parity-a", "parity", 3)
    _trained_run(tmp_path / "runs" / "hello-b", "hello", 2)
    release, reads, real = threading.Event(), [], runs.list_runs

    def held(folder, *args, **kwargs):
        reads.append(folder)
        release.wait(20)  # (code reading in the UI thread is held this long: the test fails, not hangs)
        return real(folder, *args, **kwargs)

    monkeypatch.setattr(runs, "list_runs", held)

    async def check(app, pilot):
        lab = app.lab
        await pilot.press("o")
        await wait_for(pilot, lambda: "listing 2 runs in runs/ and ./ …" in screen_text(app), timeout=10)
        await pilot.press("escape")  # Esc closes it while it lists
        assert not app.screen.query("#open-input")
        await pilot.press("l")
        assert lab.cursor == 1
        await pilot.press("o")
        await wait_for(pilot, lambda: "listing 2 runs" in screen_text(app), timeout=10)
        await pilot.press(*"hello-")
        assert app.screen.query_one("#open-input").value == "hello-"
        await pilot.press("enter")  # no preset nor path: it may name a run not listed yet
        assert "the runs are still being listed" in screen_text(app) and app.lab is lab
        release.set()
        await wait_for(pilot, lambda: open_listed(app))
        assert app.screen._shown == ["runs/hello-b"] and "listing" not in screen_text(app)
        read = len(reads)
        await pilot.resize_terminal(90, 30)
        await wait_for(pilot, lambda: app.screen.query_one("#open").outer_size.width == 90)
        row = next(line for line in screen_text(app).splitlines() if "runs/hello-b" in line)
        assert row.startswith("│") and "2/2 completed" in row and len(reads) == read  # fitted, not read
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.lab is not lab)
        assert app.lab.run.path == Path("runs/hello-b")

    try:
        drive(check, target="hello")
    finally:
        release.set()


def test_the_open_dialog_lists_so_many_entries_and_says_how_many_it_leaves_out(tmp_path, monkeypatch):
    """A list of 3000 runs took a third of a second to draw again on each letter typed; none reads so far
    down it. It lists the first OPEN_LISTED entries that typing leaves, and says how many there are."""
    from rnnlab.tui import screens

    monkeypatch.chdir(tmp_path)
    _trained_run(tmp_path / "runs" / "parity-a", "parity", 3)
    _trained_run(tmp_path / "runs" / "hello-b", "hello", 2)
    monkeypatch.setattr(screens, "OPEN_LISTED", 2, raising=False)  # (main had none: it failed below)
    entries = 2 + len(screens.preset_names())

    async def check(app, pilot):
        await pilot.press("o")
        await wait_for(pilot, lambda: open_listed(app))
        assert app.screen._shown == ["runs/hello-b", "runs/parity-a"]
        assert f"the first 2 of {entries} listed: type to narrow them" in screen_text(app)
        await pilot.press(*"parity-")
        assert app.screen._shown == ["runs/parity-a"] and "the first" not in screen_text(app)

    drive(check, target="hello")


def test_the_lab_opens_on_a_spec_edited_on_the_command_line():
    """rnnlab tui hello --set model.cell=gru hands the lab a Spec, named as the edit form names it."""
    from rnnlab.spec import edited, load_preset

    async def check(app, pilot):
        assert app.lab.spec.model.cell == "gru" and app.lab.spec.name == "hello-gru" and app.lab.run is None
        assert "hello-gru: gru, H=16" in app.sub_title

    drive(check, target=edited(load_preset("hello"), {"model.cell": "gru"}))


def test_a_pin_is_named_for_its_experiment_not_the_time_of_its_default_run(tmp_path):
    """'pin adding-lstm-202…': the run's time took the legend's room."""
    lab = Lab.open("hello")
    lab.run_backward()
    plot = GradientPlot()
    lab.save_run(tmp_path / "hello-20261130-041522")
    assert plot.pin(lab, 0, 0) == "pin hello"
    lab.run = None
    lab.save_run(tmp_path / "my-sweep-lr0.1")  # a name of the user's own says more than the experiment's
    assert plot.pin(lab, 0, 0) == "pin my-sweep-lr0.1"


def test_a_longer_pinned_curve_labels_the_axis_by_the_distance_from_T():
    """parity's 10 steps pinned under hello's 4: the axis ran from t = -5, a step of neither model."""
    async def check(app, pilot):
        plot = app.query_one(GradientPlot)
        await pilot.press("B", "m")
        pinned_steps = app.lab.steps
        await pilot.press("o")
        await wait_for(pilot, lambda: app.screen.query("#open-input"))
        app.screen.query_one("#open-input").value = "hello"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.lab.task.kind == "hello")
        await pilot.press("B")
        await wait_for(pilot, lambda: app.lab.bptt_cursor == 0)
        await pilot.pause()
        assert app.lab.steps < pinned_steps and plot.x_from_end == "T"
        axis = [plot.render_line(y).text for y in range(plot.size.height)][-1]
        assert axis.split()[0] == f"T-{pinned_steps - 1}" and axis.split()[-1] == "T" and "-5" not in axis
        await pilot.press("home", "b", "b")  # BPTT at t = T - 1: its marker counted from T too
        await pilot.pause()
        axis = [plot.render_line(y).text for y in range(plot.size.height)][-1]
        assert f"▲T-{app.lab.steps - app.lab.bptt_cursor - 1}" in axis, axis
        await pilot.press("M")
        assert plot.x_from_end == ""

    drive(check, target="parity")


def test_m_pins_the_gradient_curve_to_compare_the_next_model_with():
    """The classic figure, RNN and LSTM gradients on one plot, needed two labs side by side."""
    async def check(app, pilot):
        plot = app.query_one(GradientPlot)
        await pilot.press("m")  # nothing to pin before a backward pass or a training
        assert plot.pinned is None and "nothing to pin yet: t trains (its loss), b steps back (||dL/dh_t||)" in [
            n.message for n in app._notifications]
        app.lab.train(until_step=5)  # and its loss, where it trained
        await pilot.press("B", "m")
        pinned = plot._curves(app.lab, 0, 0)[0].copy()
        assert plot.series_names[0] == "pin hello"
        loss_plot = app.query_one("#loss-plot")
        assert loss_plot.series_names[:2] == ["pin hello", "train"]
        assert loss_plot._series["pin hello"].xs.tolist() == [1, 2, 3, 4, 5]
        await pilot.press("o")
        await wait_for(pilot, lambda: app.screen.query("#open-input"))
        app.screen.query_one("#open-input").value = "parity"
        await pilot.press("enter")  # the 5 steps trained are dropped on a second Enter
        await wait_for(pilot, lambda: "again" in str(app.screen.query_one("#open-warning").render()))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.lab.task.kind == "parity")
        assert plot.series_names == ["pin hello"]  # under the new model's title, before its b
        await pilot.press("B")
        await wait_for(pilot, lambda: app.lab.bptt_cursor == 0)
        assert plot.series_names == ["pin hello", "||dL/dh_t||", "||ΔW_hh(t)||"]
        xs, ys = plot._series["pin hello"].xs, plot._series["pin hello"].ys
        steps = app.lab.steps  # hello's 4 steps, as computed there, lined up by their distance from T
        assert xs.tolist() == list(range(steps - 3, steps + 1)) and np.array_equal(ys, pinned)
        assert plot.x_range == (float(min(steps - 3, 1)), float(steps))
        assert loss_plot.series_names == ["pin hello"]  # parity has not trained
        baseline = app.lab.task.baseline()  # its baseline under the pinned loss, not hello's chance
        assert (loss_plot.threshold, loss_plot.threshold_label) == (baseline.loss, f"{baseline.name}:") != (
            math.log(4), "chance")  # hello's: a uniform guess over its 4 characters
        await pilot.press("M")
        assert plot.series_names == ["||dL/dh_t||", "||ΔW_hh(t)||"] and plot.pinned is None
        assert loss_plot.series_names == []

    drive(check, target="hello")


def test_m_keeps_three_curves_to_compare_an_rnn_an_lstm_and_a_gru():
    """One pin only: comparing three cells, the study the lab is for, took three screenshots (a
    workflow walkthrough). Three are kept, each in its own colour; the same model pinned again
    replaces its curve; a fourth drops the oldest, which the notice names."""
    from rnnlab.lab import Lab
    from rnnlab.spec import edited, load_preset
    from rnnlab.tui.panels import PIN_COLORS

    async def check(app, pilot):
        plot = app.query_one(GradientPlot)
        for cell in ("rnn", "lstm", "gru", "mingru"):
            lab = Lab(edited(load_preset("adding-rnn"), {"model.cell": cell, "task.length": 8, "model.hidden_size": 4}))
            app._show_lab(lab, cell)
            await pilot.pause()
            await pilot.press("B", "m")
            await wait_for(pilot, lambda: plot.pinned is not None and plot.pinned[0] == f"pin adding-{cell}")
        assert [pin[0] for pin in plot.pins] == ["pin adding-lstm", "pin adding-gru", "pin adding-mingru"]
        assert "'pin adding-rnn' dropped (at most 3 kept)" in list(app._notifications)[-1].message
        assert [plot._series[pin[0]].style.color.name for pin in plot.pins] == list(PIN_COLORS)
        await pilot.press("m")  # the shown model again: its curve replaced, not added
        assert [pin[0] for pin in plot.pins] == ["pin adding-lstm", "pin adding-gru", "pin adding-mingru"]
        await pilot.press("M")
        assert plot.pins == [] and plot.pinned is None

    drive(check, target=edited(load_preset("adding-rnn"), {"task.length": 8, "model.hidden_size": 4}))


def test_m_after_training_alone_pins_the_training_loss():
    """m refused a trained model until a backward pass had run: the loss curves could not be compared."""
    async def check(app, pilot):
        plot, loss_plot = app.query_one(GradientPlot), app.query_one("#loss-plot")
        app.lab.train(until_step=5)
        await pilot.press("m")
        await pilot.pause()
        assert plot.pinned is None and loss_plot.series_names[:2] == ["pin hello", "train"]
        assert any(n.message.startswith("pinned its training loss as 'pin hello'; ||dL/dh_t|| too after a "
                                        "backward pass (b, then m)") for n in app._notifications)
        await pilot.press("M")
        await pilot.pause()
        assert "pin hello" not in loss_plot.series_names  # M drops a loss pinned alone too

    drive(check, target="hello")


def test_the_plots_beside_the_eigenvalue_plane_at_80x24_name_themselves_and_a_pin_whole():
    """At 80x24 beside the eigenvalue plane the untrained plots read "||dL/dh_t|| (b steps…", "loss (t…" and
    "gradient…", and a pinned loss curve went unnamed: its "pin adding-mingru" had no room."""
    from rnnlab.spec import edited, load_preset

    spec = edited(load_preset("adding-mingru"), {"task.length": 8, "model.hidden_size": 4})

    async def check(app, pilot):
        assert app.query_one(DecayPlane).display
        header = next(line for line in screen_text(app).splitlines() if line.startswith("||dL/dh_t||"))
        assert "…" not in header and header.endswith("loss (t trains)  |g|"), header
        app.lab.train(until_step=5)
        await pilot.press("m")
        app._show_lab(Lab(spec), "a fresh model")  # untrained: its loss plot holds the pin alone
        await pilot.pause()
        header = next(line for line in screen_text(app).splitlines() if line.startswith("||dL/dh_t||"))
        assert header.split()[-4:] == ["loss", "━", "pin", "|g|"], header

    drive(check, target=spec, size=(80, 24))


def test_a_pinned_reverse_direction_lines_up_from_t_1():
    """Beside a model of another length, a pinned curve lines up where both backward passes start:
    a forward direction's at T, a reverse one's at t = 1 (it was drawn from T back, as a forward one)."""
    from rnnlab.lab import Lab
    from rnnlab.spec import edited, load_preset

    def adding(length: int):
        return edited(load_preset("adding-lstm"), {"task.length": length, "model.hidden_size": 8,
                                                   "model.bidirectional": True})

    async def check(app, pilot):
        plot = app.query_one(GradientPlot)
        await pilot.press("B")
        await wait_for(pilot, lambda: app.lab.bptt_cursor == 0)
        shorter = Lab(adding(6), None)
        shorter.run_backward()
        shorter.bptt_cursor = 0
        for direction, xs, x_range in ((0, [-3, -2, -1, 0, 1, 2, 3, 4, 5, 6], (-3.0, 6.0)),
                                       (1, list(range(1, 11)), (1.0, 10.0))):
            plot.pins = []  # each alone
            name = plot.pin(app.lab, 0, direction)
            plot.update_from(shorter, 0, direction)
            assert plot._series[name].xs.tolist() == xs and plot.x_range == x_range, direction

    drive(check, target=adding(10))


def test_a_self_attention_model_pins_its_input_gradient():
    """Its ||dL/dh_t|| is 0 but at the last step (a block's output at t feeds only y_t): pinned, one dot."""
    from rnnlab.spec import edited, load_preset

    async def check(app, pilot):
        plot = app.query_one(GradientPlot)
        await pilot.press("B", "m")
        name, curve = plot.pinned
        assert name == "pin adding-attention dx" and np.array_equal(curve, plot._curves(app.lab, 0, 0)[1])
        assert np.count_nonzero(curve) == curve.size

    drive(check, target=edited(load_preset("adding-attention"), {"task.length": 12, "model.hidden_size": 8}))


async def trained_then(app, pilot, key: str, ready: str) -> None:
    """Train the lab's model to its steps, then press ``key`` and wait for the dialog's ``ready`` widget."""
    await pilot.press("t")
    await wait_for(pilot, lambda: app.lab.training_status == "completed")
    await pilot.press(key)
    await wait_for(pilot, lambda: app.screen.query(ready))


def test_applying_the_form_or_opening_another_with_unsaved_steps_takes_a_second_try(tmp_path, monkeypatch):
    """One Enter in the form (or on a run to open) dropped 200 trained steps, the warning above read or
    not, where q asks again and the architecture labs' forms take a second Enter. The first try now
    makes the new model (a bad value is still named at once) and says the same again drops the steps;
    the second shows it. Esc keeps the trained model."""
    monkeypatch.chdir(tmp_path)

    async def check(app, pilot):
        lab = app.lab
        await trained_then(app, pilot, "e", "#edit-grid")
        field = app.screen.query_one("#model-hidden_size")
        field.value = "x"
        field.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "expected an integer" in str(app.screen.query_one("#edit-error").render()))
        field.value = "8"
        await pilot.press("enter")
        warning = app.screen.query_one("#edit-warning")
        await wait_for(pilot, lambda: "again" in str(warning.render()))
        assert "Apply (or Enter) again drops the 200 steps trained since the last save; ctrl+s saves them first, " \
               "Esc keeps them." in str(warning.render()) and warning.has_class("armed")
        assert app.lab is lab and app.screen.query("#edit-grid")
        fields = app.screen.query_one("#edit-fields")  # the field Enter goes to, in view: the longer warning
        await wait_for(pilot, lambda: fields.region.contains_region(field.region))  # pushed it out at 80x24
        await pilot.press("escape")  # kept
        await wait_for(pilot, lambda: not app.screen.query("#edit-grid"))
        assert app.lab is lab and lab.trainer.step == 200
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#edit-grid"))
        app.screen.query_one("#model-hidden_size").value = "8"
        app.screen.query_one("#model-hidden_size").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "again" in str(app.screen.query_one("#edit-warning").render()))
        await pilot.press("enter")  # the same again: applied
        await wait_for(pilot, lambda: app.lab is not lab)
        assert app.lab.spec.model.hidden_size == 8 and app.lab.trainer.step == 0

        edited = app.lab
        await trained_then(app, pilot, "o", "#open-input")
        await pilot.press(*"adding-rnn", "enter")
        warning = app.screen.query_one("#open-warning")
        await wait_for(pilot, lambda: "again" in str(warning.render()))
        assert f"opening it again drops the {edited.trainer.step} steps" in str(warning.render())
        assert app.lab is edited
        await pilot.press("enter")
        # (a cold kernel cache, as in CI, compiles the rnn's kernels here: 30 s was not always enough)
        await wait_for(pilot, lambda: app.lab is not edited, timeout=240)
        assert app.lab.spec.name == "adding-rnn"

    drive(check, target="hello")
    drive(check, target="hello", size=(80, 24))


def test_the_second_try_keeps_the_focus_follows_a_save_and_esc_while_building_keeps_the_model(tmp_path, monkeypatch):
    """The review's cases. A build slower than the loading cover's fade left nothing focused, so the
    Enter the warning asks for reached no field; an edit after the warning is another try; ctrl+s
    between the tries reads the run as saved, not the copy made before; Esc while a model is being
    made keeps the trained one (it armed the drop instead)."""
    import time

    monkeypatch.chdir(tmp_path)
    run_backward = Lab.run_backward

    def slow(self, *args, **kwargs):  # a build that takes a second: a new cell's kernels compiling
        time.sleep(1.0)
        return run_backward(self, *args, **kwargs)

    async def check(app, pilot):
        lab = app.lab
        await trained_then(app, pilot, "e", "#edit-grid")
        monkeypatch.setattr(Lab, "run_backward", slow)
        field = app.screen.query_one("#model-hidden_size")
        field.value = "8"
        field.focus()
        await pilot.press("enter")
        await pilot.press("escape")  # while it is made
        await wait_for(pilot, lambda: not app.screen.query("#edit-grid"))
        assert app.lab is lab and lab.trainer.step == 200
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#edit-grid"))
        warning = app.screen.query_one("#edit-warning")
        app.screen.query_one("#model-hidden_size").value = "8"
        app.screen.query_one("#model-hidden_size").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "again" in str(warning.render()))
        assert app.focused is app.screen.query_one("#model-hidden_size")  # for the Enter it asks for
        app.screen.query_one("#model-hidden_size").value = "9"  # another try: the warning no longer armed
        await wait_for(pilot, lambda: "again" not in str(warning.render()))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.screen.query("#edit-grid"))
        monkeypatch.setattr(Lab, "run_backward", run_backward)

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: lab.run is not None and lab.unsaved_steps == 0)
        await pilot.press("t")  # 200 steps more, not saved
        await wait_for(pilot, lambda: lab.training_status == "completed" and lab.trainer.step == 400)
        await pilot.press("o")
        await wait_for(pilot, lambda: app.screen.query("#open-input"))
        app.screen.query_one("#open-input").value = str(lab.run.path)
        await pilot.press("enter")  # the run as saved at step 200, made: the warning armed
        await wait_for(pilot, lambda: "again" in str(app.screen.query_one("#open-warning").render()))
        await pilot.press("ctrl+s")  # step 400 saved from the dialog
        await wait_for(pilot, lambda: lab.unsaved_steps == 0)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.lab is not lab)
        assert app.lab.trainer.step == 400  # the run as it is now, not the copy made before the save

    drive(check, target="hello")


def test_a_model_slow_to_make_is_said_with_what_esc_does_and_the_notice_goes_when_it_is_done(monkeypatch):
    """An edit to H=8192 (or a cell whose kernels compile) took its dialog under a bare spinner for
    seconds, and an Esc meanwhile seemed to do nothing: it closes the dialog only once the build ends."""
    import time

    from rnnlab.tui.screens import ReplacesTheModel

    monkeypatch.setattr(ReplacesTheModel, "MAKING_NOTICE_S", 0.2, raising=False)
    run_backward = Lab.run_backward

    def slow(self, *args, **kwargs):
        time.sleep(1.5)
        return run_backward(self, *args, **kwargs)

    def notices(app) -> list[str]:
        return [n.message for n in app._notifications if n.message.startswith(("building", "opening"))]

    async def check(app, pilot):
        lab = app.lab
        monkeypatch.setattr(Lab, "run_backward", slow)
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#edit-grid"))
        app.screen.query_one("#model-hidden_size").value = "8"
        await pilot.press("enter")
        building = "building the new model (lstm, H=8) and its passes over the sequence shown"
        await wait_for(pilot, lambda: notices(app) == [f"{building}: Esc cancels"])
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.query("#edit-grid")  # the build cannot be interrupted: the dialog waits for it
        assert notices(app) == [f"{building}: cancelled; the dialog closes once that is done (it cannot be "
                                "interrupted)"]
        await wait_for(pilot, lambda: not app.screen.query("#edit-grid"))
        assert app.lab is lab and not notices(app)

        await pilot.press("o")  # the same for a run or preset opened
        await wait_for(pilot, lambda: app.screen.query("#open-input"))
        app.screen.query_one("#open-input").value = "parity"
        await pilot.press("enter")
        await wait_for(pilot, lambda: notices(app) == ["opening parity: Esc cancels"])
        await wait_for(pilot, lambda: app.lab is not lab)
        assert not notices(app)

    drive(check, target="hello")


def test_a_model_whose_kernels_compile_says_so_while_it_is_made(monkeypatch):
    """A cell's first use compiles its kernels for 10-60 s: the open dialog said only "opening
    adding-rnn: Esc cancels" for a minute and a half, where the loading screen names each compile."""
    import contextlib
    import time

    import rnnlab.kernels

    compiled = "compiling elman_forward_one (float32); cached after the first run"

    @contextlib.contextmanager
    def one_compile(callback):  # a kernel compiled on the way, as numba's compile event calls it
        callback(compiled)
        yield

    run_backward = Lab.run_backward

    def slow(self, *args, **kwargs):
        time.sleep(1.0)
        return run_backward(self, *args, **kwargs)

    def notices(app) -> list[str]:
        return [n.message for n in app._notifications if n.message.startswith("opening")]

    async def check(app, pilot):
        lab = app.lab
        monkeypatch.setattr(rnnlab.kernels, "compile_notices", one_compile)
        monkeypatch.setattr(Lab, "run_backward", slow)
        await pilot.press("o")
        await wait_for(pilot, lambda: app.screen.query("#open-input"))
        app.screen.query_one("#open-input").value = "parity"
        await pilot.press("enter")
        await wait_for(pilot, lambda: notices(app) == [f"opening parity: {compiled}. Esc cancels"])
        await wait_for(pilot, lambda: app.lab is not lab)
        assert not notices(app)

    drive(check, target="hello")


def test_o_names_a_bad_target_inline_and_warns_of_unsaved_steps(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def check(app, pilot):
        lab = app.lab
        await trained_then(app, pilot, "o", "#open-input")
        warning = app.screen.query_one("#open-warning")
        assert warning.display and f"the {lab.trainer.step} steps trained since the last save are dropped" in \
            str(warning.render())
        await pilot.press(*"nope.toml", "enter")
        await wait_for(pilot, lambda: str(app.screen.query_one("#open-error").render()))
        assert str(app.screen.query_one("#open-error").render()) == "no such spec file: nope.toml"
        assert not app.screen.query_one("#open-list").display  # nothing listed matches: no empty box
        app.screen.query_one("#open-input").value = "esn"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "architecture lab" in str(app.screen.query_one("#open-error").render()))
        assert app.lab is lab  # nothing opened
        await pilot.press("ctrl+s")  # saving from the dialog drops the warning
        await wait_for(pilot, lambda: not app.screen.query_one("#open-warning").display)
        await pilot.press("escape")
        assert app.lab is lab and not app.screen.query("#open-input")

    drive(check, target="hello")


def test_the_open_dialog_tells_runs_on_other_files_apart_by_the_files_names(tmp_path, monkeypatch):
    """Runs of one spec trained on different CSVs read "H=16, path=/tm…": the part that differed cut off."""
    from rnnlab.spec import load_spec
    from rnnlab.train import RunDir, Trainer, train_run

    monkeypatch.chdir(tmp_path)
    for name in ("load.csv", "temperature.csv"):
        (tmp_path / "a-long-folder-name-for-the-data").mkdir(exist_ok=True)
        data = tmp_path / "a-long-folder-name-for-the-data" / name
        data.write_text("".join(f"{k % 7 + 0.5 * (name == 'load.csv')}\n" for k in range(60)))
        spec = tmp_path / "s.toml"
        spec.write_text(f'name = "mine"\n[task]\nkind = "series"\npath = "{data}"\nlength = 5\n'
                        '[model]\ncell = "rnn"\nhidden_size = 4\n[train]\nsteps = 2\n')
        loaded = load_spec(spec)
        train_run(RunDir.create(tmp_path / "runs" / name.removesuffix(".csv"), loaded), Trainer(loaded), 2)

    async def check(app, pilot):
        await pilot.press("o")
        await wait_for(pilot, lambda: open_listed(app))
        await pilot.pause()
        text = screen_text(app)
        assert "path=load.csv" in text and "path=temperature.csv" in text, text

    drive(check, target="hello", size=(160, 40))


@pytest.mark.parametrize("size", [(60, 20), (200, 40)])
def test_the_open_dialog_grows_to_its_rows_and_keeps_its_last_line_under_a_warning(tmp_path, monkeypatch, size):
    """A 110-cell dialog cut every run's row before its H, on any terminal (two runs told apart only by
    H looked alike); at 60x20 the warning wrapped to three rows and pushed "Esc cancels" out."""
    from rnnlab.spec import load_preset
    from rnnlab.train import RunDir, Trainer, train_run

    monkeypatch.chdir(tmp_path)
    for k, changes in enumerate([{}, {"train.learning_rate": 0.00123, "seed": 12345}]):  # a sweep: both named
        spec = load_preset("parity").with_overrides({"train.steps": 2, "model.hidden_size": 4, **changes})
        train_run(RunDir.create(tmp_path / "runs" / f"a-rather-long-run-directory-name-{k}", spec), Trainer(spec), 2)

    async def check(app, pilot):
        await trained_then(app, pilot, "o", "#open-input")
        await pilot.pause()
        assert app.screen.query_one("#open-warning").display
        text = screen_text(app)
        assert "Esc cancels" in text
        row = next(line for line in text.splitlines() if "name-1 " in line)
        assert ("H=4, seed=12345, learning_rate=0.00123" in row) == (size[0] == 200), row
        # a wide terminal shows a long path whole (cut to its last 32 cells, "…ather-long-run-…", before)
        assert ("runs/a-rather-long-run-directory-name-1 " in row) == (size[0] == 200), row

    drive(check, target="hello", size=size)


def test_an_unchanged_form_keeps_the_trained_model_and_a_changed_one_warns_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # ctrl+s saves under runs/ here

    async def check(app, pilot):
        lab = app.lab
        await trained_then(app, pilot, "e", "#edit-grid")
        warning = app.screen.query_one("#edit-warning")
        assert "the 200 steps trained since the last save are dropped" in str(warning.render())
        assert warning.region.y >= 0 and warning.region.bottom <= app.size.height  # not scrolled off
        app.screen.query_one("#model-hidden_size").focus()
        await pilot.press("enter")  # an Enter with nothing changed
        await pilot.pause()
        assert "nothing changed" in str(app.screen.query_one("#edit-error").render())
        await pilot.press("ctrl+s")  # as the warning offers, from within the form
        await pilot.pause()
        assert lab.run is not None and (lab.run.path / "checkpoint.npz").is_file()
        assert not warning.display  # saved: nothing left for applying to drop
        await pilot.press("escape")
        assert app.lab is lab and lab.trainer.step == 200

    drive(check)
    drive(check, size=(80, 24))  # where the fields scroll, the warning stays in view above them


def test_q_with_unsaved_training_quits_only_when_pressed_again_and_after_a_save_at_once(tmp_path, monkeypatch):
    """One stray q must not throw away trained steps (as the edit form warns before it drops them)."""
    monkeypatch.chdir(tmp_path)  # ctrl+s saves under runs/ here

    async def check(app, pilot):
        lab = app.lab
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.training_status == "completed")
        for key in ("q", "ctrl+c"):
            app._quit_armed_until = 0.0  # a second press long after the first: asks again
            await pilot.press(key)
            await pilot.pause()
            assert app.return_code is None  # still open
            assert list(app._notifications)[-1].message == (
                "200 trained steps are not saved: q (or ctrl+c) again quits without them, ctrl+s saves them, "
                "Esc stays")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert lab.unsaved_steps == 0 and (lab.run.path / "checkpoint.npz").is_file()
        app._quit_armed_until = 0.0
        await pilot.press("q")  # saved: at once
        await pilot.pause()
        assert app.return_code == 0

    drive(check)


def test_a_save_takes_down_the_first_q_s_warning_and_resuming_or_stopping_the_notices_of_before(tmp_path,
                                                                                               monkeypatch):
    """A toast that no longer held stayed up for seconds beside the status line: "... trained steps
    are not saved: q again quits without them" over "run saved to ...", "training paused" while it
    ran again, "stop training first (s)" once s had stopped it."""
    from rnnlab.spec import load_preset

    monkeypatch.chdir(tmp_path)

    def shown(app, words: str) -> bool:
        return any(words in n.message for n in app._notifications)

    async def check(app, pilot):
        lab = app.lab
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.unsaved_steps > 0)
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.training_status == "paused")
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code is None and shown(app, f"{lab.unsaved_steps} trained steps are not saved")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert lab.unsaved_steps == 0 and shown(app, "run saved to") and not shown(app, "trained steps are not")
        assert shown(app, "training paused")  # it still is
        await pilot.press("t")
        await pilot.pause()
        assert lab.training_status == "running" and not shown(app, "training paused")
        await pilot.press("e")  # (waited for, not paused for: a toast lives 5 s, and the training thread took the
        # GIL for seconds of a loaded CI machine's pause; it had expired when looked at)
        await wait_for(pilot, lambda: shown(app, "stop training first (s)"), what="the stop-first notice")
        await pilot.press("s")
        await wait_for(pilot, lambda: shown(app, "training stopped at step"), what="the stopped notice")
        assert not lab.training and not shown(app, "stop training first")

    drive(check, target=load_preset("hello").with_overrides({"train.steps": 1_000_000}))


@pytest.mark.parametrize("key", ["b", "right", "n"])
def test_the_pause_notice_gives_way_to_a_key_that_moves_through_the_view(key):
    """At 80x24 "training paused (t resumes, s stops)" lay over the plots band for 5 s, the gradient
    plot that t then b was pressed to look at; a key that moves through the view takes it down (the
    status line still says paused)."""
    from rnnlab.spec import load_preset

    def paused_shown(app) -> bool:
        return any(n.message.startswith("training paused") for n in app._notifications)

    async def check(app, pilot):
        lab = app.lab
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.trainer.step > 0)
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.training_status == "paused" and app.computing is None)
        assert paused_shown(app)
        await pilot.press(key)
        await pilot.pause()
        assert not paused_shown(app) and "paused" in str(app.query_one("#status").render())

    drive(check, target=load_preset("hello").with_overrides({"train.steps": 1_000_000}), size=(80, 24))


def test_esc_after_a_first_q_keeps_the_lab_open_and_a_q_then_asks_again():
    """The pending quit outlived an Esc: a q seconds later quit without the trained steps."""
    async def check(app, pilot):
        lab = app.lab
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.training_status == "completed")
        await pilot.press("q")
        await pilot.pause()
        assert any("not saved" in shown.message for shown in app._notifications)
        await pilot.press("escape", "q")  # the q asks again, within the first one's window
        await pilot.pause()
        assert app.return_code is None
        assert [shown.message for shown in app._notifications if "not saved" in shown.message] == [
            "200 trained steps are not saved: q (or ctrl+c) again quits without them, ctrl+s saves them, "
            "Esc stays"]
        await pilot.press("escape")  # and its toast goes with it
        await pilot.pause()
        assert not any("not saved" in shown.message for shown in app._notifications)
        await pilot.press("question_mark")
        await pilot.pause()
        assert "after a first q: keep the lab open" in screen_text(app)

    drive(check)


def test_q_while_training_runs_says_the_unsaved_steps_go_on():
    """The count the first q gave was stale by the second: 173 said, 200 dropped."""
    from rnnlab.spec import load_preset

    async def check(app, pilot):
        lab = app.lab
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.unsaved_steps > 0)
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code is None and lab.training_status == "running"
        assert "(and training goes on): q (or ctrl+c) again quits" in list(app._notifications)[-1].message
        lab.stop_training()
        await wait_for(pilot, lambda: not lab.training)

    drive(check, target=load_preset("hello").with_overrides({"train.steps": 1_000_000}))


def test_sigterm_while_training_saves_the_steps_not_saved_and_exits_143(tmp_path, monkeypatch):
    """A kill (or a closed terminal: SIGHUP) ended the lab at once: the trained steps were lost without
    a word, and the terminal was left in the alternate screen. Now it saves as ctrl+s, then quits."""
    import signal

    from rnnlab.spec import load_preset
    from rnnlab.train import RunDir

    monkeypatch.chdir(tmp_path)

    async def check(app, pilot):
        lab = app.lab
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.unsaved_steps > 0)
        saver = app.exit_on_signal(signal.SIGTERM)  # as the handler calls it on the signal
        assert app.exit_on_signal(signal.SIGTERM) is None  # a second one while the first saves: nothing more
        await wait_for(pilot, lambda: app.return_code is not None)  # (the saver waits for the exit: not joined here)
        assert saver is not None
        assert app.return_code == 143 and not lab.training and lab.unsaved_steps == 0
        saved = RunDir.open(lab.run.path)
        assert saved.checkpoint_step() == lab.trainer.step > 0
        assert app.exit_message == (f"SIGTERM: the trained steps not saved were saved to {lab.run.path.resolve()} "
                                    f"(step {lab.trainer.step})")

    drive(check, target=load_preset("hello").with_overrides({"train.steps": 1_000_000}))


def test_t_on_a_saved_run_notes_another_thread_count_as_a_resume_does(tmp_path, monkeypatch):
    """`rnnlab train --resume` notes a run trained with other kernel threads (it drifts from its
    uninterrupted self, bit for bit); the lab's t, which trains the same run on, said nothing."""
    from rnnlab.kernels import kernel_threads
    from rnnlab.spec import load_preset
    from rnnlab.train import RunDir, Trainer, train_run
    from rnnlab.train import rundir as rundir_module

    spec = load_preset("hello").with_overrides({"train.steps": 3})
    run = RunDir.create(tmp_path / "run", spec)
    train_run(run, Trainer(spec), 3)
    trained = kernel_threads()
    real = rundir_module.environment
    monkeypatch.setattr(rundir_module, "environment", lambda: {**real(), "threads": trained + 5})

    async def check(app, pilot):
        await pilot.press("t")
        await wait_for(pilot, lambda: app.lab.training_status == "completed")
        threads = f"{trained} kernel thread{'' if trained == 1 else 's'}"
        assert any(f"was trained with {threads}, this process has {trained + 5}" in n.message
                   for n in app._notifications)

    drive(check, target=str(tmp_path / "run"))


def test_a_signal_with_nothing_to_save_exits_at_once_says_nothing_and_leaves_no_handler_behind():
    import signal

    before = signal.getsignal(signal.SIGTERM)
    savers = []

    async def check(app, pilot):
        assert signal.getsignal(signal.SIGTERM) is not before  # the lab's, while it runs
        savers.append(app.exit_on_signal(signal.SIGTERM))
        await wait_for(pilot, lambda: app.return_code is not None)
        assert app.return_code == 143 and app.exit_message == "" and app.lab.run is None

    drive(check)
    assert signal.getsignal(signal.SIGTERM) is before
    savers[0].join(30)  # its deadline, which would end the process, called off by the exit
    assert not savers[0].is_alive()


def test_a_signal_exit_stays_forced_until_run_returns_not_just_until_the_unmount(monkeypatch):
    """Textual closes its driver after the unmount, and that close blocks for good on a terminal that
    is gone (its writer's queue full): the unmount called the forced exit off, and a lab whose
    terminal closed while it trained lived on, orphaned. Only ``run()`` returning (say_exit) may."""
    import asyncio
    import signal

    from rnnlab.tui import terminal

    ended = []
    monkeypatch.setattr(terminal, "EXIT_GRACE_S", {"SIGTERM": 0.5})
    monkeypatch.setattr(terminal.os, "_exit", ended.append)

    class OnATerminal(terminal.ExitsOnSignal):
        is_headless = False

        def exit(self, return_code=0):
            self.return_code = return_code

    async def signalled(app):
        app.exit_on_signals()
        saver = app.exit_on_signal(signal.SIGTERM)
        app.restore_signals()  # the unmount: Textual's close of its driver comes after it
        return saver

    forced = OnATerminal()
    asyncio.run(signalled(forced)).join(10)
    assert ended == [143]  # no run() returned: the process ends
    closed = OnATerminal()
    saver = asyncio.run(signalled(closed))
    terminal.say_exit(closed)  # run() returned
    saver.join(10)
    assert ended == [143] and not saver.is_alive()


def test_q_pressed_twice_quits_though_the_training_is_not_saved():
    async def check(app, pilot):
        lab = app.lab
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.training_status == "completed")
        await pilot.press("q", "q")
        await pilot.pause()
        assert app.return_code == 0 and lab.run is None  # nothing written

    drive(check)


def test_brackets_and_tildes_in_what_the_user_types_are_text_not_markup_or_a_crash(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))

    async def check(app, pilot):
        await pilot.press("x")
        await pilot.pause()
        prompt = app.screen.query_one("#prompt-input")
        for typed, error in (("[/]", "trace file must end in .npz: [/]"),
                             ("~no-such-user-xyz/t.npz", "~no-such-user-xyz/t.npz: no home directory for "
                                                        "~no-such-user-xyz (no such user)")):
            prompt.value = typed
            await pilot.press("enter")
            await pilot.pause()
            assert str(app.screen.query_one("#prompt-error").render()) == error  # shown as typed, the lab alive
        prompt.value = "~/[a=+].npz"
        await pilot.press("enter")
        await pilot.pause()
        assert (tmp_path / "[a=+].npz").is_file()
        notice = list(app._notifications)[-1]
        assert notice.message.endswith("[a=+].npz") and notice.markup is False  # markup here ended the lab
        app.screen.notify("a widget's notice [/]")  # widgets ask for markup: rnnlab's notices never use it
        assert list(app._notifications)[-1].markup is False

    drive(check, size=(120, 36))


def test_an_export_that_cannot_be_written_says_why_in_the_dialog(tmp_path, monkeypatch):
    import errno

    import rnnlab.lab

    def read_only(path, arrays, **_):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    async def check(app, pilot):
        await pilot.press("x")
        await pilot.pause()
        prompt = app.screen.query_one("#prompt-input")
        prompt.value = str(tmp_path / "gone" / "t.npz")
        await pilot.press("enter")
        await pilot.pause()
        assert "no such directory" in str(app.screen.query_one("#prompt-error").render())
        monkeypatch.setattr(rnnlab.lab, "atomic_save_npz", read_only)  # an OSError however it comes
        prompt.value = str(tmp_path / "t.npz")
        await pilot.press("enter")
        await pilot.pause()
        error = str(app.screen.query_one("#prompt-error").render())
        assert error == f"cannot write {tmp_path / 't.npz'}: Read-only file system"  # the dialog stays

    drive(check)


def test_typing_a_sequence_and_a_refused_one():
    async def check(app, pilot):
        await pilot.press("i")
        await pilot.press(*"hex", "enter")
        await pilot.pause()
        assert "'x'" in str(app.screen.query_one("#prompt-error").render())
        await pilot.press("backspace")  # corrected: the message was of the text before
        assert str(app.screen.query_one("#prompt-error").render()) == ""
        prompt = app.screen.query_one("#prompt-input")
        prompt.value = ""
        await pilot.press(*"hello", "l", "enter")
        await pilot.pause()
        assert app.lab.steps == 5 and app.lab.task.target_tokens(app.lab.sequence) == list("ellol")

    drive(check)


def test_typing_bits_on_the_parity_task_and_a_refused_one():
    """Typed input beyond characters: the task titles the dialog, refuses in it, and the bench reads the bits."""
    async def check(app, pilot):
        await pilot.press("i")
        await pilot.pause()
        text = screen_text(app)
        assert "Type bits (0 and 1)" in text and "e.g. 1011" in text
        await pilot.press(*"1021", "enter")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)  # refused: the dialog stays open with the reason
        error = str(app.screen.query_one("#prompt-error").render())
        assert error == "'2' at position 3 is not a bit: type 0 and 1 (spaces are ignored)"
        app.screen.query_one("#prompt-input").value = ""
        await pilot.press(*"1011", "enter")
        await wait_for(pilot, lambda: app.lab.steps == 4)
        await pilot.pause()
        lab = app.lab
        assert lab.task.input_tokens(lab.sequence) == list("1011")
        assert lab.task.target_tokens(lab.sequence) == ["", "", "", "1"]
        assert lab.trace.get("h").shape[0] == 4  # the forward pass ran on the typed bits
        lines = screen_text(app).splitlines()
        assert any(line.split() == ["input", "1", "0", "1", "1"] for line in lines[:6])
        # the task's "parity of 10 bits" is what it trains on, not these 4
        assert "t 1-4 of 4   this typed sequence: loss" in screen_text(app)
        assert "trained on parity: " in screen_text(app)
        await pilot.press("n")  # a draw of the task's again
        await wait_for(pilot, lambda: not app.lab.sequence_typed and "this sequence: loss" in screen_text(app))

    drive(check, "parity", size=(120, 36))


def test_a_typed_value_far_outside_the_series_is_read_and_warned_about():
    async def check(app, pilot):
        await pilot.press("i")
        await pilot.pause()
        app.screen.query_one("#prompt-input").value = "0.1 1e30 0.2"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.lab.steps == 2)
        assert [(n.message, n.severity) for n in app._notifications][-1] == (
            "value 2 (1e+30) lies far outside the -1 to 1 the network trained on: its outputs there say little",
            "warning")

    drive(check, "mackey-glass", size=(120, 36))


def test_an_edited_model_keeps_the_typed_sequence():
    """e (a hidden size) keeps the sequence typed with i on the bench, so that the edited model is
    compared on it (it showed the task's draw again: a walkthrough's finding)."""
    async def check(app, pilot):
        typing = await typing_dialog(app, pilot)
        typing.value = "1011"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.lab.sequence_typed and not app.computing)
        await edit_hidden_size(app, pilot, 8)
        await pilot.pause()
        assert app.lab.sequence_text == "1011" and app.lab.task.input_tokens(app.lab.sequence) == list("1011")
        assert "t 1-4 of 4   this typed sequence: loss" in screen_text(app)

    drive(check, "parity", size=(120, 36))


def test_a_typed_newline_is_backslash_n_or_its_label_and_the_dialog_says_so():
    """A one-line field cannot hold a newline, yet every line of the text starts after one."""
    async def check(app, pilot):
        await pilot.press("i")
        await pilot.pause()
        assert "(\\n or ⏎ types a newline)" in screen_text(app)
        app.screen.query_one("#prompt-input").value = "ROMEO:\\nWhat⏎is"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.lab.steps == 13)
        assert app.lab.task.decode(app.lab.sequence.x[:, 0].argmax(axis=-1)) + "s" == "ROMEO:\nWhat\nis"

    drive(check, "text", size=(120, 36))


def test_a_says_a_model_without_attention_has_no_heads():
    """a/A did nothing at all in a recurrent model's lab, where [ and ] say why they do nothing."""
    async def check(app, pilot):
        await pilot.press("a")
        await pilot.pause()
        assert any("lstm model has no attention heads" in n.message for n in app._notifications)
        assert app.head == 0

    drive(check)


def test_a_unit_is_reached_by_its_number_typed():
    """At H=1024 u and U, one unit a press, took 517 presses to unit 517. A digit typed opens a dialog with
    it (# an empty one): its number and Enter go there; one out of range is named there, the unit kept."""
    from conftest import notices_of

    async def check(app, pilot):
        await pilot.press("right", *"12")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen), timeout=10)
        assert app.screen.query_one("#prompt-input").value == "12"  # the second digit after the first
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, PromptScreen))
        assert app.unit == 12 and "unit 12" in screen_text(app).splitlines()[-2]
        said = notices_of(app)
        await pilot.press("number_sign", *"16", "enter")
        await pilot.pause()
        assert "a unit is a whole number between 0 and 15, got '16'" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert app.unit == 12 and not said
        await pilot.press("question_mark")
        await pilot.pause()
        assert "#  go to a unit by number (or just type it)" in screen_text(app)

    drive(check)  # hello: an LSTM of 16 units


def test_help_lists_every_key():
    async def check(app, pilot):
        await pilot.press("question_mark")
        await pilot.pause()
        text = screen_text(app)
        for binding in app.BINDINGS:  # an LSTM: every key but the attention heads' and its b
            attention_only = binding.action in ("next_head", "previous_head", "backprop")
            assert (f"  {binding.description}" in text) != attention_only, binding
        dialog = [line.split("│")[1].rstrip() for line in text.splitlines() if line.count("│") >= 2]
        assert_snapshot("help", "\n".join(line for line in dialog if line.strip()))
        await pilot.press("escape")
        assert "hidden state h_t" in screen_text(app)
        await pilot.press("f1")  # the help key of many terminal programs, too
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)

    drive(check)


def test_the_help_fits_a_terminal_narrower_than_itself():
    """At 60 columns the 64-cell help box lost its right border off screen."""
    async def check(app, pilot):
        await pilot.press("question_mark")
        await pilot.pause()
        lines = screen_text(app).splitlines()
        assert lines[0].rstrip().endswith("╮") and lines[1].rstrip().endswith("│")

    drive(check, size=(60, 20))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_the_help_says_more_keys_lie_below_where_it_is_taller_than_the_terminal(size):
    """At 80x24 the help showed 20 of its keys and ended in a border, nothing saying that it scrolls."""
    async def check(app, pilot):
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()
        scrolls = size[1] < 30
        assert ("↓ more: ↓/PgDn" in screen_text(app)) == scrolls
        if scrolls:
            await pilot.press("end")  # scrolled to its end: nothing more below
            await pilot.pause()
            assert "↓ more" not in screen_text(app) and "Esc closes this." in screen_text(app)
            await pilot.press("home")
            await pilot.pause()
            assert "↓ more: ↓/PgDn" in screen_text(app)

    drive(check, size=size)


def test_the_help_of_a_self_attention_model_says_blocks_and_backprop():
    """The status line says "block 0"; the help said "prev layer", and "BPTT step" for a b that
    shows the whole backward pass at once."""
    async def check(app, pilot):
        await pilot.press("question_mark")
        await pilot.pause()
        dialog = "\n".join(line.split("│")[1] for line in screen_text(app).splitlines() if line.count("│") >= 2)
        assert "[  prev block" in dialog and "]  next block" in dialog and "prev layer" not in dialog
        assert "b  backprop (every step at once: no recurrence)" in dialog and "BPTT step" not in dialog
        assert "a  next head" in dialog and "mouse wheel  scroll the panel under the mouse" in dialog
        await pilot.press("escape")
        footer = screen_text(app).splitlines()[-1]
        assert "b backprop" in footer and "BPTT" not in footer  # the footer says it too
        await pilot.press("b")
        await wait_for(pilot, lambda: app.lab.bptt_cursor == 0, what="every step at once")

    drive(check, "copy-attention", size=(120, 44))  # the whole help: it scrolls at 40 rows, each line rewrapped


def test_the_status_line_of_a_deep_bidirectional_model_at_80_columns_drops_whole_words():
    """At 80 columns a two-layer bidirectional model with truncated BPTT had its status line cut in a
    word ("running step 8 (2 ste…", "paused step 9  trunca…"), its truncation lost: the rate, the unit
    and the layer (which the values panel names) give way first, whole, and the training's words stay."""
    from rnnlab.spec import load_preset

    spec = load_preset("adding-lstm").with_overrides({"model.hidden_size": 16, "model.num_layers": 2,
                                                     "model.bidirectional": True, "train.truncate": 20,
                                                     "train.steps": 1_000_000})

    async def check(app, pilot):
        await pilot.press("end", "b", "right_square_bracket", "right_square_bracket", "right_square_bracket", "U")
        await pilot.pause()
        states = [("untrained (t trains)", app._status_text)]
        assert app.lab.bptt_cursor is not None and (app.layer, app.direction, app.unit) == (1, 1, 15)

        def said(words: str) -> bool:  # the line as it says them, once it does
            if words in app._status_text:
                states.append((words, app._status_text))
            return words in app._status_text

        await pilot.press("t")
        await wait_for(pilot, lambda: app.lab.trainer.step > 0 and said("running step"), what="running")
        await pilot.press("t")
        await wait_for(pilot, lambda: said(f"paused step {app.lab.trainer.step}"), what="paused")
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.lab.training and said(f"stopped step {app.lab.trainer.step}"),
                       what="stopped")
        assert [words.split()[0] for words, _ in states] == ["untrained", "running", "paused", "stopped"]
        for words, line in states:
            assert len(line) <= 78 and "…" not in line and line.endswith("truncate 20   ? help"), line
            assert line.startswith("t 100/100  ") and "BPTT t=" in line and words in line, line
        assert "layer 1 reverse" in states[-1][1]  # where the line has room for it

    drive(check, target=spec, size=(80, 24))


def test_the_status_line_says_training_compiles_its_kernels_until_the_first_step(monkeypatch):
    """A cell's first t compiles its training kernels for 10-60 s: the status line read "running step 0
    of 1500 (… steps/s)" all that while, as if the lab were stuck. It says so now, until a step ends."""
    import contextlib
    import time

    import rnnlab.kernels
    from rnnlab.train.trainer import Trainer

    @contextlib.contextmanager
    def one_compile(callback):  # a kernel compiled as training starts, as numba's compile event calls it
        callback("compiling lstm_forward_steps (float32) again, for other argument types; cached after the first run")
        yield

    warm_up = Trainer.warm_up

    def slow_warm_up(self):  # the compile's time
        time.sleep(1.0)
        warm_up(self)

    async def check(app, pilot):
        monkeypatch.setattr(rnnlab.kernels, "compile_notices", one_compile)
        monkeypatch.setattr(Trainer, "warm_up", slow_warm_up)
        await pilot.press("t")
        await wait_for(pilot, lambda: "running step 0 of 200 (compiling kernels)" in app._status_text,
                       what="the compile said")
        await wait_for(pilot, lambda: app.lab.trainer.step > 0 and "compiling" not in app._status_text,
                       what="the compile's word gone once a step ends")

    drive(check, size=(80, 24))


def test_the_status_line_says_an_untrained_model_is_untrained_and_how_to_train_it():
    """It read "idle step 0" before the first t, as if the lab were stuck (the seq2seq and treebank
    labs say "untrained (t trains)"); once trained, the training state and step as before."""
    async def check(app, pilot):
        status = lambda: str(app.query_one("#status").render())  # noqa: E731
        assert status().endswith("untrained (t trains)   ? help") and "idle" not in status()
        await pilot.press("t")
        await wait_for(pilot, lambda: app.lab.trainer.step >= 2)
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.lab.training and app.lab.training_status in status())
        assert f" step {app.lab.trainer.step}   ? help" in status() and "untrained" not in status()

    drive(check, size=(80, 24))


def test_main_screen_snapshot():
    async def check(app, pilot):
        await pilot.press("right", "right", "right", "b", "b")
        await pilot.pause()
        # the sequence panel and the status bar: text that must read right (the maps are colour)
        lines = screen_text(app).splitlines()
        assert_snapshot("main-hello", "\n".join(lines[1:6] + lines[-2:]))

    drive(check)


def test_save_run_and_export_trace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def check(app, pilot):
        await pilot.press("ctrl+s")
        await pilot.pause()
        runs = list((tmp_path / "runs").iterdir())
        assert len(runs) == 1 and (runs[0] / "checkpoint.npz").is_file()
        await pilot.press("x")
        await pilot.pause()
        # the run's name offered (two runs of one experiment were offered one file name)
        assert app.screen.query_one("#prompt-input").value == f"{runs[0].name}-trace.npz"
        app.screen.query_one("#prompt-input").value = str(tmp_path / "trace.npz")
        await pilot.press("enter")
        await pilot.pause()
        assert (tmp_path / "trace.npz").is_file()
        with np.load(tmp_path / "trace.npz") as written:
            assert json.loads(str(written["meta"]))["run"] == str(runs[0].resolve())

        # the same name again: refused once with the way to replace it, and the file is kept until then
        (tmp_path / "trace.npz").write_bytes(b"the first export")
        await pilot.press("x")
        await pilot.pause()
        app.screen.query_one("#prompt-input").value = str(tmp_path / "trace.npz")
        await pilot.press("enter")
        await pilot.pause()
        error = str(app.screen.query_one("#prompt-error").render())
        assert "already exists: Enter again to replace it" in error
        assert (tmp_path / "trace.npz").read_bytes() == b"the first export"
        prompt = app.screen.query_one("#prompt-input")
        prompt.value = str(tmp_path / "other.npz")  # edited away and back: the warning must come again
        await pilot.pause()
        prompt.value = str(tmp_path / "trace.npz")
        await pilot.press("enter")
        await pilot.pause()
        assert (tmp_path / "trace.npz").read_bytes() == b"the first export"
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, PromptScreen)
        assert np.load(tmp_path / "trace.npz")["h"].ndim == 4

    drive(check)


def test_a_run_opened_as_dot_offers_its_own_name_for_the_trace(tmp_path, monkeypatch, capsys):
    """`rnnlab tui .` inside a run: the export offered "-trace.npz" (the path as typed has no name)."""
    from conftest import run_cli

    assert run_cli(capsys, "train", "hello", "--steps", "1", "--out", tmp_path / "myrun")[0] == 0
    monkeypatch.chdir(tmp_path / "myrun")

    async def check(app, pilot):
        await pilot.press("x")
        await wait_for(pilot, lambda: app.screen.query("#prompt-input"))
        assert app.screen.query_one("#prompt-input").value == "myrun-trace.npz"

    drive(check, target=".")


def test_a_bad_target_is_reported_on_the_loading_screen():
    async def main():
        app = LabApp("no-such-preset")
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: "error" in app.sub_title)
            assert "unknown preset 'no-such-preset'" in screen_text(app)
            assert app.lab is None
            await pilot.press("right")  # nothing breaks (the key says q quits)

    asyncio.run(main())


def loading_held(monkeypatch):
    """Hold the lab on its loading screen (as a first compile does) until the event returned is set."""
    import threading

    from rnnlab.tui import app as app_module

    release = threading.Event()
    opened_lab = app_module._opened_lab
    monkeypatch.setattr(app_module, "_opened_lab", lambda target: (release.wait(30), opened_lab(target))[1])
    return release


def test_the_loading_log_wraps_a_notice_at_its_own_width_at_80_columns(monkeypatch):
    """The log rendered each notice at least 78 wide (RichLog's min_width) in its 74 columns: a compile
    notice of 78 characters ("... again, for other argument types; cached after the first run") was
    cut at the log's edge, its "cached" lost; now it wraps, every word shown."""
    release = loading_held(monkeypatch)
    notice = "compiling lstm_forward_steps (float32) again, for other argument types; cached after the first run"

    async def main():
        app = LabApp("hello")
        async with app.run_test(size=(80, 24)) as pilot:
            try:
                await pilot.pause()
                app._loading_message(notice)
                await pilot.pause()
                log = app.query_one("#loading-log")
                assert log.scrollable_content_region.width < 78  # the case: the log narrower than 78
                shown = " ".join(line.strip("│ ") for line in screen_text(app).splitlines())
                assert "argument types; cached after the first run" in shown
            finally:
                release.set()
            await wait_for(pilot, lambda: app.lab is not None)

    asyncio.run(main())


@pytest.mark.parametrize("presses", [1, 2])
def test_t_pressed_while_the_lab_loads_trains_once_it_is_open_and_t_again_takes_it_back(monkeypatch, presses):
    """A t on the loading screen (a first compile takes a while) was dropped unsaid: the lab opened
    idle. Now it says training starts once the lab is open, and does; a second t takes that back."""
    from conftest import notices_of

    release = loading_held(monkeypatch)

    async def main():
        app = LabApp("hello")
        async with app.run_test(size=SIZE) as pilot:
            said = notices_of(app)
            await pilot.pause()
            try:
                for _ in range(presses):
                    await pilot.press("t")
                assert app.lab is None and said[-1][0] == (
                    "training starts once the lab is open (t again: it does not)" if presses == 1
                    else "the lab opens without training (t trains then)")
            finally:
                release.set()
            await wait_for(pilot, lambda: app.lab is not None)
            if presses == 1:
                await wait_for(pilot, lambda: app.lab.trainer.step > 0, what="training")
            else:
                await pilot.pause(0.3)
                assert app.lab.trainer.step == 0 and app.lab.training_status == "idle"

    asyncio.run(main())


@pytest.mark.parametrize("key", ["right", "b", "n", "e", "o", "ctrl+s", "s", "u", "M", "a"])
def test_a_key_pressed_while_the_lab_loads_says_it_acts_once_the_lab_is_open(monkeypatch, key):
    """Every key but t (queued) and the help, quit and screenshot keys did nothing on the loading
    screen, unsaid: a user pressing → or e during a first compile (10-60 s) saw no sign it was read.
    The notice goes as the lab opens; once it could not open, keys say q quits. (PgDn/PgUp scroll
    the loading log.)"""
    release = loading_held(monkeypatch)

    async def main():
        app = LabApp("hello")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            try:
                await pilot.press(key)
                await pilot.pause()
                assert app.lab is None
                assert [(n.message, n.severity) for n in app._notifications] == [
                    ("the lab is still opening: keys act once it is open (t trains then, q quits)", "warning")]
            finally:
                release.set()
            await wait_for(pilot, lambda: app.lab is not None)
            await pilot.pause()
            assert not [n for n in app._notifications if n.message.startswith("the lab is still opening")]
            assert app.lab.cursor == 0 and len(app.screen_stack) == 1  # nothing queued: → did not step, e no form

    asyncio.run(main())


@pytest.mark.parametrize("keys, said", [
    (("right", "e"), ["the lab could not open: q quits"] * 2),
    (("t",), ["the lab could not open: nothing to train (q quits)"]),
])
def test_a_key_after_the_lab_failed_to_open_says_q_quits(keys, said):
    from conftest import notices_of

    async def main():
        app = LabApp("no-such-preset")
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: "error" in app.sub_title)
            shown = notices_of(app)
            await pilot.press(*keys)
            assert shown == [(message, "warning") for message in said]

    asyncio.run(main())


def test_layers_and_directions_can_be_chosen(tmp_path):
    spec = tmp_path / "deep.toml"
    spec.write_text('[task]\nkind = "parity"\nlength = 6\n[model]\ncell = "gru"\nhidden_size = 4\n'
                    'num_layers = 2\nbidirectional = true\n', encoding="utf-8")

    async def check(app, pilot):
        assert app.query_one(StatePanel).stream == (0, 0)
        await pilot.press("right_square_bracket")
        assert app.query_one(StatePanel).stream == (0, 1)
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert app.query_one(StatePanel).stream == (1, 1)
        await pilot.press("right_square_bracket")
        assert app.query_one(StatePanel).stream == (0, 0)
        await pilot.press("right")
        assert "layer 0" in screen_text(app)

    drive(check, target=str(spec))


def test_lru_lab_shows_its_eigenvalues_against_the_unit_circle():
    async def check(app, pilot):
        lab = app.lab
        assert lab.spec.model.cell == "lru"
        plane = app.query_one(DecayPlane)
        assert plane.display and plane.series_names == ["λ"]
        np.testing.assert_allclose(plane.points("λ"), lab.model.rnn.eigenvalues()[0], rtol=1e-6)
        assert np.all(np.abs(plane.points("λ")) < 1)
        canvas = [plane.render_line(y).text for y in range(1, plane.size.height - 1)]
        assert sum(ch != " " for line in canvas for ch in line) > 30  # circle, axes and points drawn
        assert "λ l0: |λ|" in plane.title
        for name in ("h", "h_im", "h_abs"):  # the complex state's records
            assert app.query_one(f"#map-{name}", Heatmap)
        assert app.query_one("#map-h", Heatmap).title.startswith("hidden state Re h_t")
        await pilot.press("right", "right")
        explained = str(app.query_one("#explain").render())
        assert "|λ| = exp(−exp(ν_log))" in explained and "Re h_t = Re λ·Re h_{t-1}" in explained
        await pilot.press("b")
        assert lab.bptt_cursor == lab.steps - 1
        # no recurrent weights: no per-step dW_hh series, and the gradient's parts are drawn
        assert app.query_one(GradientPlot).series_names == ["||dL/dh_t||"]
        assert app.query_one("#map-dh", Heatmap).title.startswith("|dL/dh_t| (BPTT, r = ")
        keys = {part.id: part.display for part in app.query("#colorbars ColorBar")}  # its colour key: 0 .. r
        assert keys == {"bar-signed": True, "bar-gates": False, "bar-moduli": True}
        assert app.query_one("#map-dh_re", Heatmap).reveal_from_end
        await pilot.press("end")
        await pilot.pause()
        values = app.query_one("#values")  # the real part and the modulus, headed as such
        values = "\n".join(values.render_line(y).text for y in range(values.size.height))
        assert re.search(r"h_re +h_im +h_abs", values) and re.search(r"\|dh\| +dh_re +dh_im", values)
        await pilot.press("right_square_bracket")  # the second layer's eigenvalues
        assert app.query_one(StatePanel).stream == (1, 0) and "λ l1" in plane.title
        np.testing.assert_allclose(plane.points("λ"), lab.model.rnn.eigenvalues()[1], rtol=1e-6)

    drive(check, target="selective-copy-lru")


def test_the_leaky_planes_title_keeps_its_time_constants_whole():
    """"leak 1−a l0: tau = 1/a 1.0..100.0 steps (median 9.5)" was cut in the plane's 30 columns at
    every terminal size: the time constants, which multiscale-leaky is about, come first now."""
    async def check(app, pilot):
        plane = app.query_one(DecayPlane)
        await pilot.pause()
        tau = 1.0 / app.lab.trace.get("a", 0, 0)[0, 0].astype(np.float64)
        header = plane.render_line(0).text
        assert f"tau {tau.min():.3g}..{tau.max():.3g}" in header and "…" not in header, header

    drive(check, "multiscale-leaky", size=(100, 30))


def test_a_wide_terminals_leaky_plane_gives_the_median_time_constant_and_its_key():
    """Capped at 30 columns, the plane left out the median ("…, med 7.92") to name its points."""
    async def check(app, pilot):
        plane = app.query_one(DecayPlane)
        await wait_for(pilot, lambda: ", med " in plane.render_line(0).text, what="the median")
        assert "● 1−a" in plane.render_line(0).text

    drive(check, "multiscale-leaky", size=(200, 50))


def test_the_bptt_map_brought_into_view_stays_in_view_when_the_terminal_is_enlarged():
    """B at 100x30 showed dL/dh_t whole; enlarged to 200x60, the snap to a title took the map above
    and dL/dh_t's title sat on the panel's last line, its rows out of view."""
    async def check(app, pilot):
        await pilot.press("B")
        gradient = app.query_one("#map-dh", Heatmap)
        panel = app.query_one(StatePanel)

        def whole_in_view() -> bool:
            top, now = gradient.virtual_region.y, round(panel.scroll_y)
            visible = panel.scrollable_content_region.height - panel.query_one("#colorbars").outer_size.height
            return now <= top and top + min(gradient.outer_size.height, visible) <= now + visible  # (as it fits)

        await wait_for(pilot, whole_in_view, what="dL/dh_t in view whole")
        await pilot.resize_terminal(200, 60)
        for _ in range(4):
            await pilot.pause()
        await wait_for(pilot, whole_in_view, timeout=5, what="dL/dh_t in view whole after the resize")

    drive(check, target="adding-lstm", size=(100, 30))


def test_the_eigenvalue_plane_gives_way_to_the_training_plots_in_a_narrow_terminal():
    """At 60 columns the plane's 30 left the loss curve two columns wide and the gradient-norm plot
    none: below 80 it is hidden, and back when the terminal widens."""
    async def check(app, pilot):
        plane = app.query_one(DecayPlane)
        assert plane.display
        await pilot.resize_terminal(60, 20)
        await wait_for(pilot, lambda: not plane.display)
        assert app.query_one("#loss-plot").size.width >= 12
        await pilot.resize_terminal(100, 30)
        await wait_for(pilot, lambda: plane.display)

    drive(check, "selective-copy-lru", size=(100, 30))


def test_the_eigenvalue_plane_is_as_wide_as_it_draws_and_the_training_plots_get_the_rest():
    """At 80x24 the plane was 30 columns for a circle 8 wide and its key, and squeezed the loss and
    gradient-norm plots beside it to 12 and 9 columns; now it takes what its square and its header
    (the range, "● 1−z_t") use, at each height, up to 30 where the terminal is wide."""
    async def check(app, pilot):
        plane = app.query_one(DecayPlane)
        await pilot.pause()
        lines = [plane.render_line(y).text for y in range(plane.size.height)]
        assert plane.display and plane.size.width <= 20, (plane.size, lines)
        assert re.fullmatch(r"\d\.\d\d\.\.\d\.\d\d +● 1−z_t", lines[0].strip()), lines  # whole, named
        assert app.query_one("#loss-plot").size.width >= 15 and app.query_one("#norm-plot").size.width >= 11
        await pilot.resize_terminal(120, 40)
        await wait_for(pilot, lambda: plane.size.width >= 28, what="the plane widened")
        header = plane.render_line(0).text
        assert header.startswith("1−z_t l0: ") and "● 1−z_t" in header and "…" not in header, header

    drive(check, "adding-mingru", size=(80, 24))


def test_the_mingru_plane_names_in_its_legend_what_its_title_shows():
    async def check(app, pilot):
        plane = app.query_one(DecayPlane)
        await pilot.pause()
        lines = [plane.render_line(y).text for y in range(plane.size.height)]
        assert plane.title.startswith("mean 1−z_t l0") and plane.series_names == ["1−z_t"]
        assert any("● 1−z_t" in line for line in lines) and not any("● a" in line for line in lines), lines

    drive(check, "selective-copy-mingru", size=(120, 40))


def test_edit_to_minlstm_with_a_scan_then_train_and_the_form_offers_no_bidirectional_lru():
    from conftest import notices_of

    async def check(app, pilot):
        lab = app.lab
        assert not app.query_one(DecayPlane).display  # lstm: a full Jacobian, nothing to plot
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#model-cell").value = "minlstm"
        app.screen.query_one("#model-scan").value = "blelloch"
        await pilot.pause()
        app.screen.query_one("#apply").press()
        await wait_for(pilot, lambda: app.lab.spec.model.cell == "minlstm")
        lab = app.lab
        assert lab.spec.model.scan == "blelloch" and "minlstm (blelloch)" in app.sub_title
        plane = app.query_one(DecayPlane)
        assert plane.display and plane.title.startswith("mean f'_t l0") and plane.series_names == ["f'_t"]
        points = plane.points("f'_t")  # the legend says what the title does (it said "● a")
        assert np.all(points.imag == 0) and np.all((points.real > 0) & (points.real < 1))
        for name, colormap in (("f_norm", "sequential"), ("h_tilde", "diverging")):
            assert app.query_one(f"#map-{name}", Heatmap).colormap.name == colormap
        await pilot.press("right", "b")
        assert "f'_t = f_t/(f_t + i_t)" in str(app.query_one("#explain").render())
        assert app.query_one("#map-h_tilde", Heatmap).title == "candidate h~_t  (r = 1)"  # r of the -r..+r key
        await pilot.press("t")
        await wait_for(pilot, lambda: len(lab.history) >= 3)
        await pilot.press("s")
        await wait_for(pilot, lambda: not lab.training)
        await pilot.press("e")
        await pilot.pause()
        said = notices_of(app.screen)
        app.screen.query_one("#model-bidirectional").value = True
        app.screen.query_one("#model-cell").value = "lru"
        await pilot.pause()
        bidirectional = app.screen.query_one("#model-bidirectional")  # (Apply refused it: "bidir. / ...: the lru ...")
        assert bidirectional.value is False and bidirectional.disabled
        assert str(app.screen.query_one("#edit-error").render()) == \
            "bidir. / non-causal set to no: the lru has no reverse direction" and said == []  # under the fields
        app.screen.query_one("#apply").press()  # the steps trained are not saved: a second Apply drops them
        await wait_for(pilot, lambda: app.screen.query_one("#edit-warning").has_class("armed"))
        app.screen.query_one("#apply").press()
        await wait_for(pilot, lambda: app.lab.spec.model.cell == "lru")
        assert not app.lab.spec.model.bidirectional

    drive(check)


def test_attention_lab_shows_the_map_per_head_and_reveals_backprop():
    from rnnlab.tui.panels import AttentionMap, AttentionPanel

    async def check(app, pilot):
        lab = app.lab
        assert lab.is_attention and lab.steps == 100
        panel = app.query_one(AttentionPanel)
        assert panel.display and "selfattention, d_model=64, 4 heads, 1 block(s), causal" in app.sub_title
        # drawn after the panels' first layout: a moment later on a loaded machine (this read an
        # empty middle once while the simulator cases ran beside the suite)
        await wait_for(pilot, lambda: "attention: block 0, head 1/4" in screen_text(app))
        assert "a next head" in screen_text(app)
        assert {m.id for m in app.query(Heatmap) if m.id and m.id.startswith("map-")} == {"map-h", "map-z"}
        assert app.query_one("#map-z", Heatmap).title.startswith("attention sublayer output z_t")
        await pilot.press("right", "right")
        attention_map = app.query_one(AttentionMap)
        assert attention_map.query_row == 1
        np.testing.assert_array_equal(attention_map.data, lab.attention_map(0, 0))
        # the first line holds query rows 0 (upper half) and 1 (lower half, the cursor's: highlighted);
        # row 0 attends to key 0 only, with weight 1; keys after the query (causal) and rows not
        # revealed yet are drawn empty
        strip = attention_map.render_line(1)  # the cursor line, then the map (its title is the panel's)
        cells = [(seg.style.color, seg.style.bgcolor) for seg in strip for ch in seg.text if ch == "▀"]
        empty, lit_empty = cells[2]  # key 2 is after both queries: empty (lit in the cursor's row)
        assert empty != lit_empty and len(cells) > 20 and cells[3] == cells[-1] == (empty, lit_empty)
        assert cells[0][0] not in (empty, lit_empty) and cells[1][0] == empty  # row 0: key 0 only
        assert lit_empty not in (cells[0][1], cells[1][1])  # row 1: keys 0 and 1
        assert cells[0][0] != cells[0][1]  # row 1 highlighted, row 0 not
        hidden = attention_map.render_line(2)  # rows 2 and 3: not revealed yet
        assert {(seg.style.color, seg.style.bgcolor) for seg in hidden if seg.text.strip("▀") == ""} == {(empty, empty)}
        assert attention_map.query_line() == 1
        assert "row 2: what step 2 attends to" in screen_text(app)
        explained = str(app.query_one("#explain").render())
        assert "s_tj = q_t·k_j/√16" in explained and "a_2,1" in explained  # step 2 attending to key 1
        await pilot.press("a")
        assert app.head == 1 and "head 2/4" in screen_text(app)
        np.testing.assert_array_equal(attention_map.data, lab.attention_map(0, 1))
        await pilot.press("A", "A")
        assert app.head == 3 and "head 4/4" in screen_text(app)
        await pilot.press("b")
        assert lab.bptt_cursor == 0  # every step's gradient at once: no recurrence to step back through
        plot = app.query_one(GradientPlot)
        # no recurrent weights: no per-step dW_hh, but the input's gradient, which attention sends to every step
        assert plot.series_names == ["||dL/dh_t||", "||dL/dx_t||"]
        dx = lab.grads["input"].astype(np.float64)
        np.testing.assert_allclose(plot._series["||dL/dx_t||"].ys, np.sqrt((dx ** 2).sum(axis=(1, 2))))
        assert plot.title.startswith("backprop (not through time): each step's gradient arrives at once")
        assert app.query_one("#map-dh", Heatmap).title.startswith("dL/dh_t (backprop, r = ")
        assert not app.query_one(DecayPlane).display
        await pilot.press("t")
        await wait_for(pilot, lambda: len(lab.history) >= 3)
        await pilot.press("s")
        await wait_for(pilot, lambda: not lab.training)
        assert lab.trainer.step >= 3 and panel.display

    drive(check, target="adding-attention")


def test_edit_to_selfattention_refuses_bad_heads_then_shows_the_attention_panel():
    from rnnlab.tui.panels import AttentionPanel

    async def check(app, pilot):
        assert not app.query_one(AttentionPanel).display  # an lstm: no attention, no head keys
        assert "next head" not in screen_text(app).splitlines()[-1]
        await pilot.press("a")
        assert app.head == 0
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#model-cell").value = "selfattention"
        app.screen.query_one("#model-num_heads").value = "3"
        await pilot.pause()
        app.screen.query_one("#apply").press()
        await pilot.pause()
        error = str(app.screen.query_one("#edit-error").render())
        assert "heads (selfattention): " in error and "hidden_size (16) must be divisible by num_heads (3)" in error
        assert app.lab.spec.model.cell == "lstm"  # nothing changed
        app.screen.query_one("#model-num_heads").value = "2"
        await pilot.pause()
        app.screen.query_one("#apply").press()
        await wait_for(pilot, lambda: app.lab.spec.model.cell == "selfattention")
        assert app.lab.spec.model.num_heads == 2 and app.query_one(AttentionPanel).display
        await pilot.press("right", "a")
        assert app.head == 1 and "head 2/2" in screen_text(app)
        assert "next head" in screen_text(app).splitlines()[-1]

    drive(check)


def test_long_sequences_label_every_few_steps_and_keep_the_cursor_mark():
    """T = 40 with one-character tokens: two-digit step numbers would run together, so every 2nd
    step is labelled; the cursor's ▼ is never overwritten by a label."""

    async def check(app, pilot):
        for _ in range(12):
            await pilot.press("right")
        await pilot.pause()
        header = next(line for line in screen_text(app).splitlines() if line.lstrip().startswith("t  "))
        labels = header.split()[1:]
        assert labels == ["2", "4", "6", "8", "10", "▼", *map(str, range(14, 41, 2))]  # step 12 holds the cursor

    drive(check, "selective-copy-lru")

    async def narrow(app, pilot):  # a window of the steps: a label at its left edge is whole or not there
        for _ in range(40):
            await pilot.press("right")
            header = next(line for line in screen_text(app).splitlines() if line.lstrip().startswith("t  "))
            numbers = [int(label) for label in re.findall(r"\d+", header)]
            gaps = {b - a for a, b in zip(numbers, numbers[1:])}
            assert all(n % 2 == 0 for n in numbers) and gaps <= {2, 4}, header  # 4: over the cursor's ▼

    drive(narrow, "selective-copy-lru", size=(60, 30))


def test_a_series_sequence_lines_its_numbers_up_on_the_right():
    """Values like 0.18 and -0.03 centred in one width stood half a column apart."""
    async def check(app, pilot):
        lines = screen_text(app).splitlines()
        rows = {name: next(line for line in lines if line.lstrip().startswith(name)) for name in ("input", "target")}
        ends = {name: [m.end() for m in re.finditer(r"-?\d+\.\d+", row)] for name, row in rows.items()}
        assert len(ends["input"]) > 5 and ends["input"] == ends["target"][:len(ends["input"])]

    drive(check, "sine", size=(120, 36))


def test_compact_values_keep_small_gradients_visible_in_four_or_five_characters():
    from rnnlab.tui.panels import _num_compact

    cases = {0.0: ".00", 0.16: ".16", -0.16: "-.16", 2.1: "2.1", -12.0: "-12", 1.2e-5: "1e-5", -3.4e-7: "-3e-7",
             -9e-21: "~0"}
    assert {value: _num_compact(value) for value in cases} == cases


def test_wide_values_write_small_numbers_as_the_compact_ones_do():
    from rnnlab.tui.panels import _num

    cases = {0.0: "+0.00", 0.16: "+0.16", -0.16: "-0.16", 1.2e-5: "+1e-5", -3.4e-3: "-3e-3", -3.4e-17: "-3e-17"}
    assert {value: _num(value) for value in cases} == cases


def test_a_negative_zero_is_written_as_zero_in_both_layouts():
    """adding-mingru's dL/dh holds negative zeros (0 times a negative weight): the values table
    showed "-0.00" (wide) and "-.00" (compact) beside the "+0.00" of the same zero elsewhere."""
    from rnnlab.tui.panels import _num, _num_compact

    assert (_num(-0.0), _num_compact(-0.0)) == ("+0.00", ".00")
    assert (_num(np.float32(-0.0)), _num_compact(np.float32(-0.0))) == ("+0.00", ".00")


def test_wide_values_write_exploded_numbers_with_an_exponent_not_two_dozen_digits():
    """An exploding relu RNN's h of 9.6e21 was written +9566976422224821485568.00, its dL/dh cut off."""
    from rnnlab.tui.panels import _num

    cases = {1234.567: "+1234.57", -9999.99: "-9999.99", 9999.996: "+1.0e4", 9.566976e21: "+9.6e21",
             -2.44e38: "-2.4e38", 3.1e300: "+3.1e300"}
    assert {value: _num(value) for value in cases} == cases


def test_a_one_record_values_table_keeps_its_title_and_caption_on_one_line():
    """jordan's table is one record (h) wide: its title and caption wrapped to that width
    ("t = 3" / "(layer 0)")."""
    async def check(app, pilot):
        await pilot.press("right", "right", "right")
        await pilot.pause()
        text = screen_text(app)
        assert "t = 3  (layer 0)" in text and re.search(r"units 0-\d+ of 32 \(u/U\)", text), text

    drive(check, "sine-jordan", size=(120, 36))


def test_cursor_values_stay_readable_in_a_narrow_terminal():
    """At 100 columns an LSTM's seven records do not fit as "+0.16": the table switches to
    ".16" / "-.16" with one space instead of cutting every number to "+…"."""

    async def check(app, pilot):
        await pilot.press("end", "b")
        await pilot.pause()
        values = app.query_one("#values")
        lines = [values.render_line(y).text for y in range(1, 6)]
        assert "#" in lines[0] and "dh" in lines[0]
        assert not any("…" in line for line in lines), lines
        assert all(len(line.split()) == 8 for line in lines[1:]), lines  # unit + 7 numbers

    drive(check, "adding-lstm", size=(100, 30))


def test_the_values_table_lays_itself_out_again_when_the_terminal_is_resized():
    """Widened, the table writes "+0.16"; narrowed again, ".16" at once: it read the old width
    (resized before the layout) and kept the wide numbers, each cut to "+…", until training redrew it."""
    async def check(app, pilot):
        await pilot.press("end", "b")
        values = app.query_one("#values")

        def header() -> str:
            return values.render_line(1).text

        assert header().split()[0] == "#"  # compact at 80 columns
        await pilot.resize_terminal(200, 50)
        await pilot.pause()
        assert header().split()[0] == "unit"
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        lines = [values.render_line(y).text for y in range(1, 4)]
        assert lines[0].split()[0] == "#" and not any("…" in line for line in lines), lines

    drive(check, "adding-lstm", size=(80, 24))


def test_the_plot_headers_are_cut_between_words_and_the_bptt_title_keeps_its_digits_at_80x24():
    """At 80x24 the titles do not fit: the short ones say the same in the same digits ("1.00e+00",
    not "1.0e+00" beside the long title's "1.00e+00"), and no header is cut inside a number."""
    async def check(app, pilot):
        app.lab.train(until_step=30)
        app.update_views()
        await pilot.press("b")
        grad_plot = app.query_one(GradientPlot)
        ratio = grad_plot.title.split()[-1]
        assert ratio in grad_plot.render_line(0).text and ratio in grad_plot.short_titles[0]
        for plot in (grad_plot, app.query_one("#loss-plot"), app.query_one("#norm-plot")):
            words = plot.render_line(0).text.replace("…", " ").split()
            whole = f"{plot.title} {' '.join(plot.short_titles)} ━ {' '.join(plot.series_names)}".split()
            assert words and all(word in whole for word in words), (words, whole)

    drive(check, size=(80, 24))


def test_the_gradient_norm_plot_shows_a_title_form_whole_at_80x24():
    """Its 16 columns cut the short title, "|g| 0.98 0%…"; the norm alone fits whole."""
    async def check(app, pilot):
        app.lab.train(until_step=30)
        app.update_views()
        await pilot.pause()
        plot = app.query_one("#norm-plot")
        header = plot.render_line(0).text
        assert "…" not in header, header
        forms = (plot.title, *plot.short_titles)
        assert any(f"{header} ".startswith(f"{form} ") for form in forms), (header, forms)

    drive(check, size=(80, 24))


def test_the_loss_plot_names_a_pinned_loss_the_training_loss_and_the_held_out_loss_at_80x24(tmp_path):
    """Its 21 columns named "━ train" alone: "┄ 0.167" took the one row the curves left free, and
    "━ held-out" found no room beside the title. The baseline's value gives way (on the axis where its
    line's row has no label of its own), and the other two share that row, one blank apart."""
    spec = tmp_path / "adding-rnn.toml"
    spec.write_text('name = "adding-rnn"\n[task]\nkind = "adding"\nlength = 30\n[model]\ncell = "rnn"\n'
                    'hidden_size = 64\n[train]\nsteps = 300\nlearning_rate = 0.001\nclip_norm = 1.0\n'
                    'eval_every = 30\n')

    async def check(app, pilot):
        app.lab.train(until_step=300)
        await pilot.press("B", "m")  # its loss and gradient curves pinned, and 300 steps more
        app.lab.train(until_step=600)
        app.update_views()
        await pilot.pause()
        plot = app.query_one("#loss-plot", LinePlot)
        lines = [plot.render_line(y).text for y in range(plot.size.height)]
        assert plot.series_names == ["pin adding-rnn", "train", "held-out"] and plot.size.width <= 22, lines
        for names in (("━ pin ", "━ pin adding-rnn"), ("━ train",), ("━ held-out",)):
            assert sum(any(f"{line} ".count(name) for name in names) for line in lines) == 1, (names, lines)

    drive(check, str(spec), size=(80, 24))


def test_the_plots_name_their_curves_and_the_baseline_at_120_columns():
    """mackey-glass at 120x40 after training: the loss plot's dashed baseline was drawn without its
    name (it showed from 160 columns on), and the gradient plot's two curves without a legend."""
    async def check(app, pilot):
        app.lab.train(until_step=600)
        app.lab.refresh()
        app.update_views()
        await pilot.press("b", "b", "b")
        await pilot.pause()

        def text(name: str) -> str:
            plot = app.query_one(name)
            return "\n".join(plot.render_line(y).text for y in range(plot.size.height))

        assert f"persistence: {app.lab.task.baseline().loss:.3g}" in text("#loss-plot")
        assert "━ ||dL/dh_t||" in text("#grad-plot") and "━ ||ΔW_hh(t)||" in text("#grad-plot")

    drive(check, "mackey-glass", size=(120, 40))


def test_the_plot_hints_say_their_key_whole_beside_the_eigenvalue_plane():
    """At 120 columns beside the plane: "||dL/dh_t|| (press b to step…", "loss (press t…"."""
    async def check(app, pilot):
        await pilot.pause()
        for name, key in (("#grad-plot", "(b steps back)"), ("#loss-plot", "(press t to train)")):
            header = app.query_one(name).render_line(0).text
            assert key in header and "…" not in header, header

    drive(check, "selective-copy-lru", size=(120, 40))


def test_weights_that_overflow_are_named_by_b_and_the_lab_stays_open(monkeypatch, tmp_path):
    """A diverged checkpoint's weights (a relu rnn whose states overflow float32 within 4 steps):
    the forward pass is shown, b says why BPTT cannot run."""
    spec = tmp_path / "relu.toml"
    spec.write_text('[task]\nkind = "hello"\n[model]\ncell = "rnn"\nnonlinearity = "relu"\n')

    async def check(app, pilot):
        notices = []
        monkeypatch.setattr(app, "notify", lambda message, **kwargs: notices.append(message))
        lab = app.lab
        for name, value in lab.model.parameters().items():
            value *= np.float32(1e20 if "weight_hh" in name else 10)
        lab.trainer.step = 7  # as a checkpoint saved at step 7 would be
        lab.refresh()
        await pilot.press("end", "b")
        await pilot.pause()
        assert lab.bptt_cursor is None and app.return_code is None
        assert notices and "dL/d(outputs) went beyond float32's range with the weights of step 7: the weights " \
                           "diverged" in notices[-1]

    drive(check, str(spec), size=(120, 36))


def test_a_lab_on_a_model_that_reads_its_targets_says_so(tmp_path):
    spec = tmp_path / "bidi.toml"
    spec.write_text('[task]\nkind = "hello"\n[model]\ncell = "gru"\nhidden_size = 4\nbidirectional = true\n')

    async def check(app, pilot):
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("reads the input after each step, which is the hello task's target" in m for m in messages)

    drive(check, target=str(spec))


def test_a_lab_on_a_series_with_pandas_index_column_says_so(tmp_path):
    data = tmp_path / "prices.csv"
    data.write_text(",price\n" + "".join(f"{i},{np.sin(i / 3):.4f}\n" for i in range(60)))
    spec = tmp_path / "prices.toml"
    spec.write_text(f'[task]\nkind = "series"\npath = "{data.name}"\nlength = 10\n[model]\nhidden_size = 4\n')

    async def check(app, pilot):
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("prices.csv: column 1 has no name and counts the rows" in m for m in messages), messages

    drive(check, target=str(spec))


def test_the_command_palette_offers_no_theme_the_colour_maps_were_not_made_for():
    async def check(app, pilot):
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Quit" in titles and "Theme" not in titles

    drive(check)


def test_the_step_rate_is_not_shown_as_zero_before_it_is_measured(monkeypatch):
    from rnnlab.tui import panels

    clock = iter([0.0, 0.5, 1.5, 2.0])
    monkeypatch.setattr(panels.time, "perf_counter", lambda: next(clock))
    rate = panels.StepRate()
    rate.update(0)
    rate.update(10)  # half a second: not measured yet
    assert str(rate) == "… steps/s"
    rate.update(30)
    assert str(rate) == "20 steps/s"
    rate.restart()  # training starts again: a new rate
    assert str(rate) == "… steps/s"


def test_a_slow_models_step_rate_is_a_fraction_not_zero(monkeypatch):
    """H=512, two bidirectional layers: a step takes seconds. A second with no step in it is not
    "0 steps/s" (it looked stalled); the rate is measured over the steps that ended."""
    from rnnlab.tui import panels

    clock = iter([0.0, 1.2, 2.4, 6.2, 7.2, 17.2])
    monkeypatch.setattr(panels.time, "perf_counter", lambda: next(clock))
    rate = panels.StepRate()
    rate.update(0)
    rate.update(1)  # the first step (its compile in it): the mark
    rate.update(1)  # 1.2 s later, no step yet
    assert str(rate) == "… steps/s"
    rate.update(2)  # the second step, 5 s after the mark
    assert str(rate) == "0.2 steps/s"
    rate.update(2)
    assert str(rate) == "0.2 steps/s"  # 1 s later, no new step: the rate stands
    rate.update(6)  # four steps in 11 s
    assert str(rate) == "0.36 steps/s"


def test_the_step_rate_leaves_out_the_first_steps_compile(monkeypatch):
    """Right after t the status line said "0.11 steps/s": the first step's 9 s of compile over one step."""
    from rnnlab.tui import panels

    clock = iter([0.0, 9.0, 9.5, 10.0, 11.0, 11.1])
    monkeypatch.setattr(panels.time, "perf_counter", lambda: next(clock))
    rate = panels.StepRate()
    rate.update(0)  # t: the kernels compile
    rate.update(1)  # 9 s later the first step has ended
    assert str(rate) == "… steps/s"
    rate.update(11)
    rate.update(111)  # a second after the first step: 110 steps
    assert str(rate) == "110 steps/s"
    rate.restart()  # paused, then resumed: measured from the first step after it
    rate.update(111)
    rate.update(200)
    assert str(rate) == "… steps/s"


@pytest.mark.filterwarnings("error::RuntimeWarning")  # inf meets a saturated unit's 0 slope: nan, silently
def test_a_gradient_that_overflows_is_drawn_with_the_scale_of_its_finite_steps(tmp_path):
    spec = tmp_path / "explode.toml"
    spec.write_text('[task]\nkind = "sine"\nlength = 200\n[model]\ncell = "rnn"\nhidden_size = 32\n')

    async def check(app, pilot):
        lab = app.lab
        q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((32, 32)))
        lab.model.parameters()["weight_hh_l0"][...] = 10 * q  # dL/dh_t overflows ~23 steps before t = 1
        lab.refresh()
        await pilot.press("end", "B")
        await pilot.pause()
        title = app.query_one("#map-dh", Heatmap).title
        assert lab.bptt_cursor == 0 and "r = nan" not in title and "r = inf" not in title and "e+3" in title
        assert "overflowed" in app.query_one(GradientPlot).title

    drive(check, str(spec), size=(120, 36))


def test_the_cores_warnings_on_opening_a_run_are_notices_not_lost_on_stderr(tmp_path, capsys):
    from conftest import run_cli

    for name in ("untrained", "odd-log"):
        assert run_cli(capsys, "train", "hello", "--steps", "2", "--out", tmp_path / name)[0] == 0
    summary = json.loads((tmp_path / "untrained" / "summary.json").read_text())  # saved at step 0, checkpoint lost
    (tmp_path / "untrained" / "summary.json").write_text(json.dumps(summary | {"checkpoint_step": 0}))
    (tmp_path / "untrained" / "metrics.jsonl").write_text("")
    (tmp_path / "untrained" / "checkpoint.npz").unlink()
    with open(tmp_path / "odd-log" / "metrics.jsonl", "a", encoding="utf-8") as log:
        log.write("5\n")

    def expect(warning):
        async def check(app, pilot):
            await pilot.pause()
            messages = [n.message for n in app._notifications]
            assert any(warning in m for m in messages), messages
        return check

    drive(expect("has no checkpoint.npz: its weights are the initial ones"), str(tmp_path / "untrained"))
    drive(expect("metrics.jsonl: line 3 is not a step record: skipped"), str(tmp_path / "odd-log"))


def test_a_run_moved_with_its_data_says_so_in_the_lab_though_the_cli_said_it_first(tmp_path, capsys):
    """`rnnlab tui RUN` checks the run before the screen opens (the note on stderr, hidden by the
    screen), then the lab opens it again: the note must reach the lab as a notice too."""
    import shutil

    from conftest import run_cli
    from rnnlab.lab import open_target

    project = tmp_path / "project"
    project.mkdir()
    np.savetxt(project / "d.csv", np.sin(np.arange(300) / 7.0))
    (project / "s.toml").write_text('[task]\nkind = "series"\npath = "d.csv"\nlength = 10\n'
                                    '[model]\nhidden_size = 4\n')
    assert run_cli(capsys, "train", project / "s.toml", "--steps", "3", "--out", project / "run")[0] == 0
    shutil.move(project, tmp_path / "moved")
    run_dir = tmp_path / "moved" / "run"
    open_target(str(run_dir))  # the CLI's check
    assert "is gone; using" in capsys.readouterr().err

    async def check(app, pilot):
        await pilot.pause()
        notes = [n.message for n in app._notifications if "is gone; using" in n.message]
        assert len(notes) == 1 and notes[0].startswith(f"{project / 'd.csv'} is gone; using {tmp_path / 'moved'}")
        assert app.lab.task.path == tmp_path / "moved" / "d.csv"

    drive(check, str(run_dir))


def test_sequence_bar_numbers_keep_their_magnitude_and_wide_characters_their_column():
    from rnnlab.tui.panels import fit_cells, fit_number

    assert fit_number("1000063000.00", 7) == "1e9" and fit_number("-98765.4321", 7) == "-98765"
    assert fit_number("0.000012", 6) == "1.2e-5" and fit_number("123.46", 6) == "123.46"
    assert fit_cells("好", 3) == "好 " and fit_cells("a", 2) == "a " and fit_cells("好", 1) == " "


def test_the_sequence_bar_shows_big_series_values_and_wide_characters_in_place(tmp_path):
    """1.00006e9 showed as 1000063 (read: a million), cut to 7 characters; a CJK character takes two
    cells, and each pushed the later steps one column right of the cursor's ▼."""
    np.savetxt(tmp_path / "big.csv", 1e9 + np.arange(300.0) * 7)
    (tmp_path / "big.toml").write_text('[task]\nkind = "series"\npath = "big.csv"\nlength = 20\nstandardize = false\n'
                                      '[model]\ncell = "gru"\nhidden_size = 4\n')
    (tmp_path / "zh.txt").write_text("我们一起学习循环神经网络。" * 30, encoding="utf-8")
    (tmp_path / "zh.toml").write_text('[task]\nkind = "text"\npath = "zh.txt"\nlength = 40\n'
                                     '[model]\nhidden_size = 4\n', encoding="utf-8")

    header = "时间,温度,a rather long column name"
    rows = "\n".join(f"{t},{np.sin(t / 5)},{t % 7}" for t in range(300))
    (tmp_path / "zh.csv").write_text(f"{header}\n{rows}\n", encoding="utf-8")
    (tmp_path / "zhcols.toml").write_text('[task]\nkind = "series"\npath = "zh.csv"\nlength = 20\n'
                                         '[model]\ncell = "gru"\nhidden_size = 4\n', encoding="utf-8")

    async def named(app, pilot):
        """The channels' (wide) header names label the rows, each row as wide as the step row."""
        from rich.cells import cell_len

        for _ in range(3):
            await pilot.press("right")
        await pilot.pause()
        lines = screen_text(app).splitlines()[1:11]
        assert [" ".join(line.split()[:2]) for line in lines[1:4]] == ["input 时间", "input 温度", "input a"]
        assert "target a rather lo…" in lines[8]  # 12 cells
        ends = {cell_len(line.rstrip()) for line in lines[1:4] + lines[4:9:2]}  # inputs, targets: to the edge
        assert len(ends) == 1, lines

    async def big(app, pilot):
        inputs = screen_text(app).splitlines()[2].split()
        assert inputs[0] == "input" and set(inputs[1:]) == {"1e9"}

    async def wide(app, pilot):
        from rich.cells import cell_len

        for _ in range(16):
            await pilot.press("right")
        await pilot.pause()
        lines = screen_text(app).splitlines()
        marker = lines[1].index("▼")
        step = app.lab.sequence.x[15, 0].argmax()  # the cursor's input character
        character = app.lab.task.vocab[step]
        inputs = lines[2]
        # every step 3 cells wide (2 for the character, 1 between), the cursor's character under its mark
        positions = [cell_len(inputs[:i]) for i, c in enumerate(inputs) if c == character]
        assert cell_len(lines[1][:marker]) - 1 in positions

    drive(big, str(tmp_path / "big.toml"), size=(120, 40))
    drive(named, str(tmp_path / "zhcols.toml"), size=(120, 40))
    drive(wide, str(tmp_path / "zh.toml"), size=(120, 40))


def test_t_refuses_training_that_would_not_fit_and_the_lab_still_shows_the_model(monkeypatch, tmp_path):
    """The lab opens on a model whose view fits (one sequence), though its training batches do not
    (a run from a larger machine, a spec with a huge batch): t says so instead of allocating them."""
    import rnnlab.spec

    monkeypatch.setattr(rnnlab.spec, "physical_memory", lambda: 24 * 2**30)  # this machine's, whatever CI has
    spec = tmp_path / "big.toml"
    spec.write_text('name = "big"\n[task]\nkind = "adding"\nlength = 2000\n[model]\nhidden_size = 16\n'
                    "[train]\nbatch_size = 4096\neval_batch_size = 16384\n", encoding="utf-8")

    async def check(app, pilot):
        notices = []
        app.notify = lambda message, **kw: notices.append(message)
        await pilot.press("t")
        assert not app.lab.training and app.lab.trainer.step == 0
        assert notices == [f"cannot train: train.eval_batch_size: training this experiment needs about "
                           f"{app.lab.spec.estimated_bytes() / 2**30:.1f} GiB (hidden_size=16, num_layers=1, "
                           "batch_size=4096, eval_batch_size=16384, length=2000), more than half of this machine's "
                           "24.0 GiB; make them smaller"]
        await pilot.press("right")
        assert app.lab.cursor == 1

    drive(check, str(spec))


def test_the_edit_forms_numbers_are_ascii_digits_as_the_specs_are():
    """int("٣٢") is 32: the form took a hidden size the CLI's --set and a spec file refuse."""
    from rnnlab.labs._options import number_or_text as _parse_number

    assert _parse_number(" 32 ") == 32 and _parse_number("0.01") == 0.01 and _parse_number("٣٢") == "٣٢"


def test_a_screen_refits_after_a_dialog_only_while_it_is_shown():
    """RefitsAfterDialogs replays the resize a dialog took once the screen returns, reading the
    size then; a screen popped (or covered again) before that is left alone: the treebank lab's
    replay, run on a popped screen, raised NoMatches (a review's finding)."""
    from textual.app import App
    from textual.screen import ModalScreen, Screen

    from rnnlab.tui.terminal import RefitsAfterDialogs

    class Fitted(RefitsAfterDialogs, Screen):
        def __init__(self) -> None:
            super().__init__()
            self.fitted: list[tuple[int, int]] = []

        def on_resize(self, event) -> None:
            self.fitted.append(tuple(event.size))

    async def main():
        app = App()
        async with app.run_test(size=(80, 24)) as pilot:
            shown, popped = Fitted(), Fitted()
            for screen in (shown, popped):
                await app.push_screen(screen)
                await pilot.pause()
                await app.push_screen(ModalScreen())
                await pilot.resize_terminal(100, 30 if screen is shown else 31)
                await pilot.pause()
                screen.fitted.clear()
                app.pop_screen()  # the dialog closes...
                if screen is popped:
                    app.pop_screen()  # ...and the screen goes before its replay runs
                await pilot.pause()
            assert (100, 30) in shown.fitted and popped.fitted == []

    asyncio.run(main())


def test_a_notice_at_80_columns_is_as_wide_as_on_a_wide_terminal():
    """Textual's toasts are 60 columns but at most half the terminal: at 80 columns the quit
    warning wrapped to five lines of 36 over the plots; it takes two of 57 now."""
    async def main():
        app = LabApp()
        async with app.run_test(size=(80, 24), notifications=True) as pilot:  # (toasts drawn)
            await wait_for(pilot, lambda: app.lab is not None)
            app.notify("a long notice " * 8)
            await wait_for(pilot, lambda: app.screen.query("Toast"), what="the notice")
            await pilot.pause()
            assert app.screen.query_one("Toast").size.width >= 56

    asyncio.run(main())


def test_the_first_q_s_warning_counts_the_steps_trained_since_and_drops_goes_on_once_stopped(monkeypatch):
    """The warning kept the count it was written with while training went on under it (and its
    "(and training goes on)" after s had stopped it): the user read a stale number of steps to lose."""
    from rnnlab.spec import load_preset
    from rnnlab.tui import terminal

    monkeypatch.setattr(terminal, "QUIT_CONFIRM_S", 600.0)  # the warning stays up however slow the machine

    def warnings(app) -> list[str]:
        return [shown.message for shown in app._notifications if "not saved" in shown.message]

    async def check(app, pilot):
        lab = app.lab
        await pilot.press("t")
        await wait_for(pilot, lambda: lab.unsaved_steps > 0)
        await pilot.press("q")
        await pilot.pause()
        first = int(warnings(app)[0].split()[0])
        assert "(and training goes on)" in warnings(app)[0]
        await wait_for(pilot, lambda: int(warnings(app)[0].split()[0]) > first, what="a new count")
        await pilot.press("s")
        await wait_for(pilot, lambda: not lab.training)
        await wait_for(pilot, lambda: warnings(app) == [
            f"{lab.unsaved_steps} trained steps are not saved: q (or ctrl+c) again quits without them, ctrl+s "
            "saves them, Esc stays"], what="the count where training stopped")
        assert app.return_code is None

    drive(check, target=load_preset("hello").with_overrides({"train.steps": 1_000_000}))


def test_the_sequence_bar_and_the_heatmaps_write_their_windows_of_steps_alike():
    """At 80 columns the bar said "steps 1-11 of 100" above a heatmap titled "... t 1-33 of 100":
    two wordings of one thing, read as two different counts."""
    async def check(app, pilot):
        lines = screen_text(app).splitlines()
        bar = next(line for line in lines if "this sequence: loss" in line)
        title = next(line for line in lines if "hidden state" in line)
        assert re.search(r"^ t 1-\d+ of 100   this sequence", bar), bar
        assert re.search(r" t 1-\d+ ", title.split("│")[0]), title  # (its total where the title's name keeps room)

    drive(check, "adding-rnn", size=(80, 24))


def test_the_values_caption_beside_the_attention_map_keeps_to_one_line_at_80_columns():
    """Beside the attention map the values column is 21 columns wide: its caption "units 0-3 of
    64 (u/U)" wrapped, "(u/U)" alone on a line of its own; the keys go where they do not fit."""
    async def check(app, pilot):
        await pilot.press("right")
        await wait_for(pilot, lambda: "units 0-" in screen_text(app), what="the values table")
        sides = [line.split("│")[-1].strip() for line in screen_text(app).splitlines()]
        assert "(u/U)" not in sides and any(side.startswith("units 0-") for side in sides), sides

    drive(check, "copy-attention", size=(80, 24))
