"""The lab: the Textual app that ``rnnlab`` opens.

One screen shows the sequence on the bench, heatmaps of every state and gate (units x time) of one
layer and direction, the exact values and the equations of the cursor step, the BPTT gradient
curve (beside it, for the cells linear in their state, each unit's recurrence coefficient in the
complex plane: the LRU's eigenvalues against the unit circle) and the training curves. With a
self-attention model the heatmaps are each block's output h and attention sublayer output z, and an
attention panel shows the map of one block and head (a/A switch heads). The
headless :class:`~rnnlab.lab.Lab` does all the work; training runs in one worker thread and the
screen reads the Lab's history on a timer (12 Hz), so the UI never waits for the trainer and the
trainer never waits for the UI. A key whose work is large (BPTT or a typed sequence of a large
model, see :data:`BACKGROUND_WORK_MACS`) computes in a worker thread too, the status line saying so.
"""

from __future__ import annotations

import functools
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult, ScreenStackError
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.geometry import Size
from textual.widgets import Header, LoadingIndicator, RichLog, Static
from textual.worker import Worker, WorkerState, get_current_worker

from ..data import Batch
from ..errors import UserError, given, range_words
from ..lab import Lab
from ..notices import collected as collected_notices
from ..labs import LABS
from ..spec import BACKWARD_WORK, Spec, forward_macs
from ..train.rundir import npz_target, resume_notes
from .panels import (MAX_PINS, AttentionPanel, CursorValues, DecayPlane, ExplainPanel, GradientPlot, SequenceBar,
                     StatePanel, StepRate, TrainingPlots)
from .screens import EditScreen, HelpScreen, OpenScreen, PromptScreen, key_names
from .terminal import (MIN_SIZE, NOTHING_TRAINING, PAUSED_NOTICE, UNTRAINED, ConfirmQuit, ExitsOnSignal, FixedTheme,
                       KeysFollowDialogs, LabMainScreen, PlainNotices, error_text, fit_footer, fitted_footer,
                       held_while_too_small, say_exit, scroll_pages, show_if_too_small, take_screenshot_and_say,
                       training_goes_on, training_progress, warn_without_true_colour, withdraw_notices)
from .widgets import Heatmap
from .workers import run_until_cancelled

REFRESH_HZ = 12          # how often the screen reads the trainer's buffer while training (status line)
PLOTS_EVERY = 3          # ... redraws the loss and gradient-norm curves (4 Hz: each redraw is a few ms
                         # of GIL the trainer waits for; at 12 Hz hello trained at 0.71 of headless)
HEATMAP_EVERY = 8        # ... and recomputes the bench sequence's forward pass (1.5 Hz)
REFRESH_WAIT = 0.1       # seconds that recompute waits for the trainer's step, else it tries HEATMAP_EVERY ticks later
#: Rows of the plots band (gradient curve, loss, gradient norm): PLOTS_ROWS where the terminal
#: has room; on a short one it shrinks, down to PLOTS_MIN_ROWS, so that the heatmaps keep about
#: three fifths of the rows the sequence, status and footer leave (an 80x24 terminal: 9 of 15).
PLOTS_ROWS, PLOTS_MIN_ROWS = 14, 6
PLOTS_STACKED_ROWS = 13  # from this band height on, the loss plot sits above the gradient norm's
FIXED_ROWS = 3           # header, status line, footer; the sequence bar's rows come on top
SEQUENCE_BAR_ROWS = 6    # the sequence bar of a task with one target channel
VALUES_FRAME_ROWS = 3    # the values table's title and header rows and the margin under it

#: Work estimated (:func:`forward_macs`) above this many multiply-adds runs in a worker thread
#: behind a "computing ..." status line; below it, inline as always (a few ms, and the result is
#: there when the key's handler returns). Measured on this 2-core machine (AVX2, float32, batch 1):
#: lstm, gru, rnn, minlstm, mingru, lru and selfattention with H 16-512, 1-2 layers, one or two
#: directions, T 200-1600 took 0.03-0.1 ns per estimated multiply-add forward and 0.05-0.13
#: backward once the work passed 1e8 (small work: up to 1-2 ns, but then under 70 ms), so 1e9 is
#: 50-100 ms of forward pass, 30-65 ms of backward (x BACKWARD_WORK). text at H=512, 2
#: bidirectional layers, T=1600: 13.9e9 (forward 620 ms, backward 840 ms); the largest preset at
#: its own sizes, text (H=128, T=50): 5e6 (1-3 ms), with a typed 1600-character sequence 1.6e8 (13 ms).
BACKGROUND_WORK_MACS = 1_000_000_000
REFRESHING = "bringing the sequence up to the trained weights"  # the status line while that runs in the worker
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"  # the status line's sign of life while a worker computes (4 frames a second)
TRAIN_WHEN_OPEN_NOTICE = "training starts once the lab is open (t again: it does not)"  # a t while it loads
NO_TRAIN_WHEN_OPEN_NOTICE = "the lab opens without training (t trains then)"
STOP_FIRST_NOTICE = "stop training first (s)"  # (t only paused it) follows in a pause
STILL_OPENING_NOTICE = "the lab is still opening: keys act once it is open (t trains then, q quits)"
NOT_OPEN_NOTICE = "the lab could not open: q quits"
#: The status line's word on a training whose kernels compile (a cell's first t: 10-60 s of "… steps/s" at step 0).
COMPILING_TO_TRAIN = "compiling kernels"


def plots_rows(terminal_rows: int, bar_rows: int = SEQUENCE_BAR_ROWS) -> int:
    """The plots band's height in a terminal ``terminal_rows`` high under a sequence bar
    ``bar_rows`` high (see PLOTS_ROWS)."""
    return max(PLOTS_MIN_ROWS, min(PLOTS_ROWS, (terminal_rows - FIXED_ROWS - bar_rows) * 2 // 5))


def fitted_status(text: str, width: int, key_hint: str = "? help") -> str:
    """The status line in ``width`` cells, its key hint kept at the end: the gaps closed up, then
    the middle cut ("…") where a word ends. Cut from its end, as before, a 60-column lab lost the one
    hint to its keys."""
    if len(text) <= width:
        return text
    text = re.sub(r"   +", "  ", text)
    if len(text) <= width or not text.endswith(key_hint):
        return text
    body = text.removesuffix(key_hint).rstrip()
    room = max(0, width - len(key_hint) - 3)
    kept = body[:room]
    if len(body) > room and body[room] != " " and " " in kept:  # at a word's end: "trunca…" read as a word
        kept = kept.rsplit(" ", 1)[0]
    return kept.rstrip() + "…  " + key_hint


def refused_until_open(handler):
    """A key of the lab: refused with a notice while there is none (it loads: a first compile takes
    10-60 s; or it could not open), where it did nothing, unsaid. (t is queued instead.)"""
    @functools.wraps(handler)
    def guarded(self: "LabApp", *args, **kwargs):
        if self.lab is None:
            self.notify(NOT_OPEN_NOTICE if self.load_error is not None else STILL_OPENING_NOTICE,
                        severity="warning", timeout=3)
            return None
        return handler(self, *args, **kwargs)
    return guarded


def moves_through_the_view(handler):
    """A key (or click) that moves through what the lab shows, a step, a BPTT step, a layer, a unit:
    the pause's toast gives way to it (the status line still says paused). At 80x24 the toast lay
    over the plots for 5 s, the gradient plot that t then b was pressed to look at."""
    @functools.wraps(handler)
    def moved(self: "LabApp", *args, **kwargs):
        withdraw_notices(self, PAUSED_NOTICE)
        return handler(self, *args, **kwargs)
    return moved


def refused_while_computing(handler):
    """A key or click that reads or changes the bench sequence, its trace or the cursors: refused
    with a notice while a compute worker changes them (queued, it would act on a half-changed lab),
    and until the lab is open (:func:`refused_until_open`)."""
    @refused_until_open
    @functools.wraps(handler)
    def guarded(self: "LabApp", *args, **kwargs):
        if self._computing is not None:
            self.notify(f"busy {self._computing}: wait a moment", severity="warning", timeout=2)
            return None
        return handler(self, *args, **kwargs)
    return guarded


def _opened_lab(target: str | Path | Spec | None) -> tuple[Lab, list[tuple[str, str]]]:
    """``Lab.open(target)``, its backward pass run (compiling those kernels too, before the first
    key press) and its views' numbers computed; with the core's warnings and notes (a run without
    a checkpoint, skipped log lines, a data file found where it moved), which the CLI writes to
    stderr, hidden by the full-screen app: collected (:mod:`rnnlab.notices`) as ``(message,
    severity)`` notices."""
    with collected_notices() as said:  # in this worker's thread: the process's stderr is left alone
        lab = Lab.open(target)
        try:
            lab.run_backward()
        except UserError:  # diverged weights overflow it: the lab shows their forward pass, b says why
            pass
        lab.refresh()
    return lab, [(text, "warning" if kind == "warning" else "information") for kind, text in said]


class SideColumn(VerticalScroll):
    """The values table and the explain panel. Not focusable (see StatePanel): PgDn/PgUp (the
    app's bindings) and the mouse wheel scroll it on a short terminal, and a last line says so
    while more lies below."""

    can_focus = False

    def compose(self) -> ComposeResult:
        yield Static("↓ more: PgDn", id="side-more")

    def on_mount(self) -> None:
        self.show_more()

    _drawn_for: Size | None = None  # the column's size the values table was last laid out for

    def on_resize(self, event: events.Resize) -> None:
        # The values table picks its layout (wide or compact numbers, how many units) from the
        # column's size: redrawn here, where it is the new one (from the app's resize event, which
        # comes before the layout, it read the old width: a narrowed terminal cut every number to
        # "+…" until training redrew it). Not for a new length of the content (every key).
        if event.size != self._drawn_for:
            self._drawn_for = event.size
            self.app._update_side()
        self.call_after_refresh(self.show_more)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self.show_more()

    def watch_virtual_size(self) -> None:
        # the content's length changed (a new sequence's shorter explain panel) with no resize
        # of the column: the line must not go on saying "more" below
        self.show_more()

    def show_more(self) -> None:
        """Show the "more below" line while the column's content continues under its bottom edge."""
        self.query_one("#side-more").display = self.max_scroll_y > 0 and self.scroll_y < self.max_scroll_y


class LabApp(ConfirmQuit, ExitsOnSignal, KeysFollowDialogs, FixedTheme, PlainNotices, App[None]):
    """``rnnlab`` / ``rnnlab tui [PRESET|SPEC.toml|RUN_DIR]``."""

    CSS_PATH = "lab.tcss"
    TITLE = "rnnlab"

    BINDINGS = [
        # key_display: the footer shows the arrow even where a focused scroll panel also binds it
        Binding("right,l", "step_forward", "forward", key_display="→"),
        Binding("left,h", "step_back", "back", key_display="←"),
        Binding("home,g", "jump_start", "start", show=False),
        Binding("end,G", "jump_end", "end", show=False),
        Binding("b", "bptt_step", "BPTT step"),
        Binding("b", "backprop", "backprop"),  # a self-attention model's b: check_action shows one of the two
        Binding("B", "bptt_all", "BPTT all", show=False),
        Binding("t", "train_toggle", "train/pause"),
        Binding("s", "train_stop", "stop", show=False),
        Binding("n", "new_sequence", "new sequence"),
        Binding("i", "type_sequence", "type input", show=False),
        Binding("e", "edit", "edit"),
        Binding("o", "open", "open a run, preset or spec file", show=False),
        Binding("left_square_bracket", "previous_stream", "prev layer or direction", show=False),
        Binding("right_square_bracket", "next_stream", "next layer or direction", show=False),
        Binding("j", "next_map", "next heatmap", show=False),
        Binding("k", "previous_map", "previous heatmap", show=False),
        Binding("pagedown", "scroll_side(1)", "values/explain down", show=False),  # no panel takes the focus
        Binding("pageup", "scroll_side(-1)", "values/explain up", show=False),
        Binding("u", "next_unit", "next unit", show=False),  # lower case forward, as n, a, ]
        Binding("U", "previous_unit", "previous unit", show=False),
        Binding("number_sign", "go_to_unit", "go to a unit by number (or just type it)", show=False),
        Binding("ctrl+s", "save_run", "save run", show=False),
        Binding("x", "export_trace", "export trace", show=False),
        Binding("m", "pin_curve", "pin ||dL/dh_t|| and loss to compare (up to 3)", show=False),
        Binding("M", "unpin_curve", "drop the pinned curves", show=False),
        Binding("p", "screenshot", "screenshot", show=False),
        Binding("question_mark,f1", "help", "help"),
        Binding("q,ctrl+c", "quit", "quit", key_display="q"),
        Binding("escape", "cancel_quit", "after a first q: keep the lab open", show=False),
        # self-attention only (check_action hides them otherwise); after q: the footer's first to go where narrow
        Binding("a", "next_head", "next head"),
        Binding("A", "previous_head", "previous head", show=False),
        Binding("a,A", "no_heads", "heads (self-attention)", show=False),  # the others': a notice, not silence
    ]

    def __init__(self, target: str | Path | Spec | None = None, *, choose_in: Path | None = None) -> None:
        """The lab on ``target`` (a preset, a spec file, a run directory or a Spec; None: hello), or, with
        ``choose_in`` (a folder of runs), on what the user chooses from the open dialog's list of
        them first (Esc quits)."""
        super().__init__()
        self.target = target
        self._choose_in = choose_in
        self.load_error: BaseException | None = None  # why the lab could not open: run_lab's exit status says it
        self.lab: Lab | None = None
        self.layer = 0
        self.direction = 0
        self.unit = 0
        self.head = 0  # the attention head shown (self-attention models)
        self._ticks = 0
        self._seen_history = -1
        self._refreshed_history = -1  # history length at the last refresh of the heatmaps
        self._status_text = ""  # the status line as last drawn
        self._computing: str | None = None  # what a compute worker is computing ("computing BPTT over ...")
        self._computing_since = 0.0
        self._refresh_when_computed = False  # training ended during the computation: refresh after it
        self._train_when_open = False  # t was pressed while the lab loaded: it trains once open
        self._compiling_at = -1  # the training's history length when it last compiled a kernel (the trainer's thread)
        self.step_rate = StepRate()

    # ------------------------------------------------------------------ layout
    def get_default_screen(self) -> LabMainScreen:
        return LabMainScreen(id="_default")  # (the id Textual gives its own default screen)

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="loading"):
            yield LoadingIndicator()
            # wrapped to its own width: RichLog renders at least 78 wide, and at 80 columns (a log 74
            # wide) cut a notice of 75-78 characters at its edge, "...types; cached" lost its word
            yield RichLog(id="loading-log", markup=True, wrap=True, min_width=1)
        with Vertical(id="lab"):
            yield SequenceBar(id="sequence")
            with Horizontal(id="middle"):
                yield StatePanel(id="states")
                yield AttentionPanel(id="attention")
                with SideColumn(id="side"):
                    yield CursorValues(id="values")
                    yield ExplainPanel(id="explain")
            with Horizontal(id="plots"):
                yield GradientPlot(title="||dL/dh_t||", log_y=True, id="grad-plot")
                yield DecayPlane(id="decay-plane")
                yield TrainingPlots(id="training")
            yield Static(id="status")
        yield Static(id="too-small")
        yield fitted_footer(self)

    def on_resize(self, event: events.Resize) -> None:
        self._fit_plots(event.size.height)  # self.size still holds the size before this resize
        self._show_if_too_small(*event.size)
        fit_footer(self.screen_stack[0], event.size.width)  # the values table follows in SideColumn.on_resize
        if self.lab is not None and self.lab.is_attention:
            self.query_one(AttentionPanel).fit_width(event.size.width)
        self.query_one(DecayPlane).fit_width(event.size.width)

    def _show_if_too_small(self, width: int, height: int) -> None:
        """:func:`show_if_too_small` on the lab's screen (under any dialog open), with the rows the
        lab needs: MIN_SIZE's, and those a taller sequence bar takes (a task with several target
        channels: at 20 rows its heatmaps had no row left between bar and plots)."""
        bar = SEQUENCE_BAR_ROWS if self.lab is None else SequenceBar.rows_needed(self.lab)
        show_if_too_small(self.screen_stack[0], width, height, min_height=MIN_SIZE[1] + max(0, bar - SEQUENCE_BAR_ROWS))

    def _fit_plots(self, height: int | None = None) -> None:
        """Size the plots band to a terminal ``height`` rows high (default: the app's size;
        :func:`plots_rows`); in a short band the loss and gradient-norm plots stand side by side,
        each the band's full height."""
        bar = SEQUENCE_BAR_ROWS if self.lab is None else SequenceBar.rows_needed(self.lab)
        rows = plots_rows(self.size.height if height is None else height, bar)
        self.query_one("#plots").styles.height = rows
        side_by_side = rows < PLOTS_STACKED_ROWS
        training = self.query_one("#training")
        training.styles.layout = "horizontal" if side_by_side else "vertical"
        training.set_class(side_by_side, "side-by-side")

    def on_unmount(self) -> None:
        self.restore_signals()

    def on_mount(self) -> None:
        self.exit_on_signals()
        self._fit_plots()
        self._show_if_too_small(*self.size)
        self.query_one("#lab").display = False
        self.sub_title = "loading"
        if self._choose_in is None:
            self._load_lab()
        else:
            self._choose_lab()
        self.set_interval(1 / REFRESH_HZ, self._tick)

    # ------------------------------------------------------------------ start-up
    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load_lab(self) -> None:
        """Build the Lab off the UI thread: a cold Numba cache compiles kernels (seconds), and
        each compile is announced on the loading screen."""
        from ..kernels import compile_notices

        def notice(message: str) -> None:
            self.call_from_thread(self._loading_message, message)

        shown = (self.target.name if isinstance(self.target, Spec) else self.target) or "hello"  # a Spec by its name
        self.call_from_thread(self._loading_message, f"opening {shown} ...")
        with compile_notices(notice):
            lab, notices = _opened_lab(self.target)
        self.call_from_thread(self._lab_ready, lab)
        for message, severity in notices:
            self.call_from_thread(self.notify, message, severity=severity, timeout=10)

    def _choose_lab(self) -> None:
        """The open dialog on the runs of a folder, before any lab: what is chosen opens, Esc quits."""
        def chosen(result: tuple[str, Lab, list[tuple[str, str]]] | None) -> None:
            if result is None:
                self.exit()
                return
            self.target, lab, notices = result
            self._lab_ready(lab)
            self.call_after_refresh(self.set_focus, None)  # not the removed loading log: keys reach the app
            for message, severity in notices:
                self.notify(message, severity=severity, timeout=10)

        self._loading_message(f"choose a run of {self._choose_in}")
        # that folder's runs (and the presets), as typing it in `o` lists
        self.push_screen(OpenScreen([self._choose_in], self._open_target, escape="quits"), chosen)

    @staticmethod
    def _open_target(target: str) -> tuple[str, Lab, list[tuple[str, str]]]:
        """The open dialog's ``load`` (in its thread): ``target`` and :func:`_opened_lab`'s lab and notices."""
        if target in LABS and not Path(target).exists():
            raise UserError(f"{target} is an architecture lab with a screen of its own: run `rnnlab tui {target}`")
        if target.startswith("~"):  # typed in the dialog: no shell expanded it
            target = str(Path(target).expanduser())
        return (target, *_opened_lab(target))

    def _loading_message(self, message: str, style: str = "") -> None:
        self.query_one("#loading-log", RichLog).write(Text(message, style=style))  # a typed path is not markup

    def _lab_ready(self, lab: Lab) -> None:
        self.lab = lab
        self.query_one("#loading").remove()  # hidden, its indicator would keep animating (idle CPU)
        self.query_one("#lab").display = True
        self.update_views()
        self.refresh_bindings()
        warn_without_true_colour(self, "heatmaps need")
        self._warn_about_the_experiment()
        withdraw_notices(self, STILL_OPENING_NOTICE, TRAIN_WHEN_OPEN_NOTICE)  # it is open
        if self._train_when_open:
            self._train_when_open = False
            self.action_train_toggle()

    def _warn_about_the_experiment(self) -> None:
        for warning in (self.lab.spec.reads_its_targets(self.lab.task), self.lab.task.data_warning):
            if warning:
                self.notify(warning, severity="warning", timeout=10)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The head keys only exist for a self-attention model (hidden from the footer otherwise),
        and its b is named backprop: it has no recurrence to step back through. Behind the
        too-small message only q acts."""
        if held_while_too_small(self.screen_stack[0], action):
            return False
        attention = self.lab is not None and self.lab.is_attention
        if action in ("next_head", "previous_head", "backprop"):
            return attention
        if action in ("bptt_step", "no_heads"):
            return not attention
        return True

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Errors of the workers are handled here, in one place."""
        worker = event.worker
        if worker.group == "compute" and event.state in (WorkerState.SUCCESS, WorkerState.ERROR,
                                                         WorkerState.CANCELLED):
            self._computed(cancelled=event.state == WorkerState.CANCELLED)
        if event.state == WorkerState.ERROR:
            error = worker.error
            message = error_text(error)
            if worker.group == "load":
                self.load_error = error
                self._train_when_open = False
                withdraw_notices(self, TRAIN_WHEN_OPEN_NOTICE, STILL_OPENING_NOTICE)  # it will not open
                self._loading_message(f"cannot open the lab: {message}", style="red")
                self.query_one("#loading LoadingIndicator").remove()
                self.sub_title = "error (q quits)"
            else:
                self.notify(message, severity="error", timeout=10)
        elif worker.group == "train" and event.state in (WorkerState.SUCCESS, WorkerState.CANCELLED):
            lab = self.lab
            withdraw_notices(self, PAUSED_NOTICE, STOP_FIRST_NOTICE)  # of a training that has ended
            if lab is not None:
                if self._computing is None:
                    self._refresh_after_training(self._refresh_macs())
                else:  # a refresh now would replace the trace under the worker's backward pass
                    self._refresh_when_computed = True
                if lab.training_status == "diverged":
                    self.notify(f"training stopped: {lab.training_message}", severity="error", timeout=10)
                else:
                    self.notify(f"training {lab.training_status} at step {lab.trainer.step}")

    # ------------------------------------------------------------------ drawing
    def _views_alive(self) -> bool:
        """False once the app is closing and its widgets are being removed: a timer tick or a
        trainer finishing then must draw nothing (it raised NoMatches on the way out)."""
        try:
            return bool(self.query("#status"))
        except ScreenStackError:
            return False

    @property
    def computing(self) -> str | None:
        """What the compute worker is computing (its status line), or None when it is idle: while
        it runs the worker owns the lab's trace and cursors, and no panel reads them."""
        return self._computing

    def update_views(self) -> None:
        """Redraw every panel from the Lab (only the status line while a worker changes the lab)."""
        lab = self.lab
        if lab is None or not self._views_alive():
            return
        if self._computing is not None:
            self.update_status()
            return
        self._update_header(lab)
        self.query_one("#middle").set_class(lab.is_attention, "with-attention")  # a narrower side panel
        self.query_one(SequenceBar).update_from(lab)
        self._fit_plots()  # a task with several target channels has a taller sequence bar
        self._show_if_too_small(*self.size)
        self.query_one(StatePanel).select(lab, self.layer, self.direction, self.unit)
        self.query_one(AttentionPanel).update_from(lab, self.layer, self.head)
        self._update_side()
        self.query_one(GradientPlot).update_from(lab, self.layer, self.direction)
        self.query_one(DecayPlane).update_from(lab, self.layer, self.direction)
        self.query_one(TrainingPlots).update_from(lab)
        self.update_status()

    def _update_header(self, lab: Lab) -> None:
        """The header's sub-title: the run open, the experiment, its model."""
        m = lab.spec.model
        scan = f" ({m.scan})" if m.scan != "sequential" else ""
        kind = lab.spec.task["kind"]  # named where the experiment's name doesn't say it (an edited task)
        named = lab.spec.name == kind or lab.spec.name.startswith(f"{kind}-")  # adding-lstm; not selective-copy
        name = lab.spec.name if named else f"{lab.spec.name} ({kind} task)"
        if lab.is_attention:
            model = (f"{name}: {m.cell}, d_model={m.hidden_size}, {m.num_heads} heads, "
                     f"{m.num_layers} block(s), {'non-causal' if m.bidirectional else 'causal'}")
        else:
            model = f"{name}: {m.cell}{scan}, H={m.hidden_size}, " \
                    f"{m.num_layers} layer(s){' bidirectional' if m.bidirectional else ''}"
        # which of several runs of one experiment this is (o opens another); first: a narrow header cuts the end
        self.sub_title = model if lab.run is None else f"{lab.run.path} · {model}"

    def _update_side(self) -> None:
        """The explain panel of the chosen unit, then the values table cut to the units around it
        that leave the equations in view (on a short terminal the panel scrolls instead)."""
        lab = self.lab
        if lab is None or self._computing is not None:  # a resize meanwhile: the side follows when it is done
            return
        explain, side = self.query_one(ExplainPanel), self.query_one("#side")
        explain.update_from(lab, self.layer, self.direction, self.unit, self.head)
        height, width = side.content_size.height, side.content_size.width
        rows = height - explain.rows_needed(width) - VALUES_FRAME_ROWS if height else None
        self.query_one(CursorValues).update_from(lab, self.layer, self.direction, self.unit, rows)
        side.call_after_refresh(side.show_more)  # the explain panel's new length may overflow the column

    def update_status(self) -> None:
        lab = self.lab
        if lab is None or not self._views_alive():
            return
        # how far of how many while a run is under way, as the architecture labs say it; the total first to go
        forms = training_progress(lab.status_shown, "step", lab.trainer.step, lab.train_target)
        rate = ""
        if lab.status_shown in ("idle", "untrained") and not lab.trainer.step:  # "idle step 0" read as stuck
            forms = [UNTRAINED]
        elif lab.status_shown == "running" and self._compiling_at == len(lab.history):
            rate = f" ({COMPILING_TO_TRAIN})"  # no step since a kernel compiled: the first t of a cell takes a while
        elif lab.status_shown == "running":
            rate = f" ({self.step_rate})"  # as the architecture labs write it: with the run, not a field of its own
            if self._computing is None and self._refresh_macs() >= BACKGROUND_WORK_MACS:
                rate += "  (maps follow in a pause: t)"
        width = self.size.width - 2  # (its padding)
        text = ""
        for text in self._status_lines(lab, forms, rate):
            if len(re.sub(r"   +", "  ", text)) <= width:  # whole once its gaps close (fitted_status)
                break
        text = fitted_status(text, width)
        if text != self._status_text:  # the timer calls this 12 times a second: an unchanged line costs a layout
            self._status_text = text
            self.query_one("#status", Static).update(text)

    def _status_lines(self, lab: Lab, forms: list[str], rate: str) -> Iterator[str]:
        """The status line's forms, the fullest first (:meth:`update_status` shows the first that fits):
        ``forms`` of the training's words with the ``rate``, the last without it, then without the unit
        and the layer (or block and head), which the values panel names too. At 80 columns a two-layer
        bidirectional model's line was cut in its last word ("running step 8 (2 ste…"), the truncation lost."""
        for training in forms:
            yield self._status_line(lab, training + rate)
        for kept in range(len(self._stream_words(lab)), -1, -1):
            yield self._status_line(lab, forms[-1], kept)

    def _stream_words(self, lab: Lab) -> list[str]:
        """Where the views look, as the status line says it: the layer and direction (a self-attention
        model's block and head), then the unit."""
        if lab.is_attention:
            return [f"block {self.layer}", f"head {self.head + 1}/{lab.num_heads}", f"unit {self.unit}"]
        return [f"layer {self.layer}{' reverse' if self.direction else ''}", f"unit {self.unit}"]

    def _status_line(self, lab: Lab, training: str, stream_words: int | None = None) -> str:
        """The status line with ``training``'s words on training and the first ``stream_words`` of
        :meth:`_stream_words` (None: all), before it is fitted to the width."""
        if self._computing is not None:  # the cursors and the trace are the worker's until it is done
            frame = SPINNER[int((time.monotonic() - self._computing_since) * 4) % len(SPINNER)]
            text = f"{frame} {self._computing} ...   {training}   ? help"
        else:
            t = f"t {lab.cursor}/{lab.steps}"
            bptt = ("" if lab.bptt_cursor is None else "  backprop" if lab.is_attention
                    else f"  BPTT t={lab.bptt_t(self.direction)}")  # a reverse direction's runs from t = 1 up
            stream = "  ".join(self._stream_words(lab)[:stream_words])
            trunc = f"  truncate {lab.truncate}" if lab.truncate else ""
            text = f"{t}{bptt}{'   ' if stream else ''}{stream}   {training}{trunc}   ? help"
        return text

    def _tick(self) -> None:
        """The timer: while training, read the trainer's buffer (plots, status) and now and then
        recompute the bench sequence with the new weights (heatmaps, not while a compute worker
        changes the trace); while a compute worker runs, turn the status line's spinner."""
        lab = self.lab
        if lab is None or not self._views_alive():
            return
        self.follow_quit_warning()  # its count, as training goes on (and once it stops)
        if not lab.training:
            if self._computing is not None:
                self.update_status()
            return
        self._ticks += 1
        n = len(lab.history)
        self.step_rate.update(n)
        if n != self._seen_history and self._ticks % PLOTS_EVERY == 0:
            self._seen_history = n
            self.query_one(TrainingPlots).update_from(lab)
        if self._ticks % HEATMAP_EVERY == 0 and n != self._refreshed_history and self._computing is None:
            macs = self._refresh_macs()  # (n unchanged: paused, nothing new)
            if macs < BACKGROUND_WORK_MACS:
                try:
                    refreshed = lab.refresh(keep_bptt=True, timeout=REFRESH_WAIT)  # a BPTT view follows the weights
                except UserError as exc:  # its backward pass overflowed: said once for these weights
                    self._refreshed_history = n
                    self.notify(str(exc), severity="error", timeout=10)
                    refreshed = False
                if refreshed:
                    self._refreshed_history = n
                    self.query_one(SequenceBar).update_from(lab)
                    self.query_one(StatePanel).update_from(lab)
                    self.query_one(AttentionPanel).update_from(lab, self.layer, self.head)
                    self._update_side()
                    self.query_one(GradientPlot).update_from(lab, self.layer, self.direction)
                    self.query_one(DecayPlane).update_from(lab, self.layer, self.direction)
            elif lab.training_status == "paused":  # too large to redo every few ticks: once, in a pause
                self._refresh_after_training(macs)
        self.update_status()

    # ------------------------------------------------------------------ computing
    def _forward_macs(self, steps: int, batch: int) -> int:
        lab = self.lab
        return forward_macs(lab.spec.model, steps, lab.task.input_size, lab.task.output_size, batch)

    def _bench_macs(self) -> int:
        """A forward pass of the sequence on the bench."""
        return self._forward_macs(self.lab.steps, self.lab.sequence.B)

    def _refresh_macs(self) -> int:
        """The work of bringing the bench sequence up to new weights: its forward pass, and its
        backward pass too while BPTT is shown (``refresh(keep_bptt=True)`` runs it again). Above
        BACKGROUND_WORK_MACS the timer does not redo it while training runs (it would freeze the
        screen every HEATMAP_EVERY ticks) but once in a pause, in the compute worker."""
        passes = 1 + (BACKWARD_WORK if self.lab.bptt_cursor is not None else 0)
        return passes * self._bench_macs()

    def _compute(self, what: str, compute: Callable[[], object], macs: int) -> None:
        """Run ``compute`` (it changes the lab), then redraw: inline when its estimated work ``macs``
        is small, else in the compute worker, the status line saying ``what`` meanwhile."""
        if macs < BACKGROUND_WORK_MACS:
            try:
                compute()
            except UserError as exc:  # weights that diverged (a backward pass overflowing): said, as the worker's
                self.notify(str(exc), severity="error", timeout=10)
            self.update_views()
            return
        self._computing, self._computing_since = what, time.monotonic()
        self.update_status()
        self._compute_in_background(compute)

    @work(thread=True, exclusive=True, group="compute", exit_on_error=False)
    def _compute_in_background(self, compute: Callable[[], object]) -> None:
        """Run ``compute`` (:func:`~rnnlab.tui.workers.run_until_cancelled`: q does not wait for it)."""
        run_until_cancelled(compute, get_current_worker())

    def _computed(self, cancelled: bool) -> None:
        """The compute worker has finished (or was cancelled: the app is closing, and the thread
        may still change the lab): redraw, after the refresh a training that ended meanwhile asked for."""
        self._computing = None
        if cancelled or self.lab is None:
            return
        if self._refresh_when_computed:
            self._refresh_when_computed = False
            self._refresh_after_training(self._refresh_macs())
            return
        self.update_views()

    def _refresh_after_training(self, macs: int) -> None:
        """Bring the bench sequence (and a BPTT view) up to the weights training left, unless they
        are the ones it already shows (no step since: a pause refreshed, then s stopped)."""
        lab = self.lab
        n = len(lab.history)
        if n == self._refreshed_history:
            self.update_views()
            return
        self._refreshed_history = n  # the weights read now: training has paused or ended
        self._compute(REFRESHING, functools.partial(lab.refresh, keep_bptt=True), macs)

    # ------------------------------------------------------------------ time
    def _has_lab(self) -> bool:
        return self.lab is not None

    @refused_while_computing
    @moves_through_the_view
    def action_step_forward(self) -> None:
        if self._has_lab():
            self.lab.step_forward()
            self.update_views()

    @refused_while_computing
    @moves_through_the_view
    def action_step_back(self) -> None:
        if self._has_lab():
            self.lab.step_back()
            self.update_views()

    @refused_while_computing
    @moves_through_the_view
    def action_jump_start(self) -> None:
        if self._has_lab():
            self.lab.jump_start()
            self.update_views()

    @refused_while_computing
    @moves_through_the_view
    def action_jump_end(self) -> None:
        if self._has_lab():
            self.lab.jump_end()
            self.update_views()

    @on(Heatmap.ColumnClicked)
    @refused_while_computing
    @moves_through_the_view
    def column_clicked(self, event: Heatmap.ColumnClicked) -> None:
        if self._has_lab():
            self.lab.move_to(event.column + 1)
            self.update_views()

    def _backward_macs(self) -> int:
        return BACKWARD_WORK * self._bench_macs()

    def _compute_bptt(self, bptt: Callable[[], object], macs: int) -> None:
        """Run a BPTT key's work. While a model too large for the timer to follow trains (see
        :meth:`_refresh_macs`), the trace is at older weights: the same work brings it up first."""
        lab = self.lab
        what = f"computing BPTT over {lab.steps} steps"
        if macs and lab.training and self._refresh_macs() >= BACKGROUND_WORK_MACS:
            def fresh_bptt() -> None:
                lab.refresh()
                bptt()

            self._refreshed_history = len(lab.history)
            self._compute(what, fresh_bptt, macs + self._bench_macs())
        else:
            self._compute(what, bptt, macs)

    @refused_while_computing
    @moves_through_the_view
    def action_bptt_step(self) -> None:
        lab = self.lab
        if lab is not None and lab.bptt_cursor == 0:
            self.notify("backprop is shown for every step (attention: no steps back through time)"
                        if lab.is_attention else "BPTT has reached t=1, the first step" if not self.direction
                        else f"BPTT has reached t={lab.steps}, the last step (a reverse direction's backward "
                             "pass runs from t=1 up)", timeout=2)
        elif lab is not None and lab.is_attention:
            # Every step's gradient comes at once, straight through attention (no recurrence to step
            # back through): revealed a step at a time, the views and the plot's title disagreed.
            self.action_bptt_all()
        elif lab is not None:  # the first b runs the backward pass, the next ones only reveal a step
            self._compute_bptt(lab.bptt_step, 0 if lab.bptt_cursor is not None else self._backward_macs())

    def action_backprop(self) -> None:
        """b for a self-attention model: its whole backward pass at once."""
        self.action_bptt_step()

    @refused_while_computing
    @moves_through_the_view
    def action_bptt_all(self) -> None:
        lab = self.lab
        if lab is not None and lab.bptt_cursor is not None:  # the backward pass of this trace has run
            lab.bptt_cursor = 0
            self.update_views()
        elif lab is not None:
            def bptt_all() -> None:
                lab.run_backward()
                lab.bptt_cursor = 0

            self._compute_bptt(bptt_all, self._backward_macs())

    # ------------------------------------------------------------------ layers and units
    def _streams(self) -> list[tuple[int, int]]:
        m = self.lab.spec.model
        return [(layer, d) for layer in range(m.num_layers) for d in range(self.lab.num_directions)]

    def _move_stream(self, delta: int) -> None:
        if not self._has_lab():
            return
        streams = self._streams()
        if len(streams) == 1:
            self.notify(f"one {'block' if self.lab.is_attention else 'layer and direction'}: nothing to switch to",
                        timeout=2)
            return
        k = (streams.index((self.layer, self.direction)) + delta) % len(streams)
        self.layer, self.direction = streams[k]
        self.update_views()

    @refused_while_computing
    @moves_through_the_view
    def action_previous_stream(self) -> None:
        self._move_stream(-1)

    @refused_while_computing
    @moves_through_the_view
    def action_next_stream(self) -> None:
        self._move_stream(1)

    def _scroll_maps(self, delta: int) -> None:
        """j/k: the next or previous heatmap, or a notice why not (as [ and ] give one)."""
        panel = self.query_one(StatePanel)
        if panel.scroll_maps(delta):
            return
        if panel.max_scroll_y <= 0:  # "j goes on" would promise what it cannot do
            self.notify("every heatmap is in view: nothing to scroll to", timeout=2)
        elif delta > 0:
            self.notify("the last heatmap is in view (k goes back)", timeout=2)
        else:
            self.notify("the first heatmap is in view (j goes on)", timeout=2)

    @refused_while_computing
    @moves_through_the_view
    def action_next_map(self) -> None:
        self._scroll_maps(1)

    @refused_while_computing
    @moves_through_the_view
    def action_previous_map(self) -> None:
        self._scroll_maps(-1)

    @refused_while_computing
    @moves_through_the_view
    def action_previous_unit(self) -> None:
        if self._has_lab():
            self.unit = (self.unit - 1) % self.lab.spec.model.hidden_size
            self.update_views()

    @refused_while_computing
    @moves_through_the_view
    def action_next_unit(self) -> None:
        if self._has_lab():
            self.unit = (self.unit + 1) % self.lab.spec.model.hidden_size
            self.update_views()

    def on_key(self, event: events.Key) -> None:
        """A digit typed in the lab opens the unit dialog with it: "517" Enter goes to unit 517 (a key that
        reached this screen after a dialog opened is that dialog's: :class:`KeysFollowDialogs`)."""
        digit = event.character
        if digit and len(digit) == 1 and digit in "0123456789" and getattr(event, "_typed_under", None) is self.screen \
                and self.screen is self.screen_stack[0]:
            event.stop()
            event.prevent_default()
            self.action_go_to_unit(digit)

    @refused_while_computing
    def action_go_to_unit(self, typed: str = "") -> None:
        """Go to a unit typed by its number in a dialog (``#``, or a digit typed): at H=1024, u and U, one
        unit a press, took 517 presses to unit 517."""
        lab, size = self.lab, self.lab.spec.model.hidden_size

        def accept(text: str) -> int:
            number = text.strip()
            if not (number.isascii() and number.isdigit()) or int(number) >= size:
                raise UserError(f"a unit is a whole number {range_words(0, size - 1)}, got {given(number)}")
            return int(number)

        def chosen(unit: int | None) -> None:
            if unit is not None and self.lab is lab:
                withdraw_notices(self, PAUSED_NOTICE)  # as u and U (moves_through_the_view)
                self.unit = unit
                self.update_views()

        self.push_screen(PromptScreen(f"Go to unit (0-{size - 1}; u/U step one at a time)", typed, accept,
                                      select_on_focus=False), chosen)  # the digit typed is kept, the next after it

    def _move_head(self, delta: int) -> None:
        if self._has_lab() and self.lab.is_attention:
            self.head = (self.head + delta) % self.lab.num_heads
            self.update_views()

    @refused_until_open
    def action_no_heads(self) -> None:
        self.notify(f"this {self.lab.spec.model.cell} model has no attention heads (a/A switch a "
                    "self-attention model's)", timeout=2)

    @refused_while_computing
    @moves_through_the_view
    def action_next_head(self) -> None:
        self._move_head(1)

    @refused_while_computing
    @moves_through_the_view
    def action_previous_head(self) -> None:
        self._move_head(-1)

    # ------------------------------------------------------------------ training
    def action_train_toggle(self) -> None:  # not refused while computing: the trainer waits for the lab's lock
        lab = self.lab
        if lab is None:  # loading (the first compile takes a while): a t then was dropped unsaid
            self._toggle_train_when_open()
            return
        if lab.stop_requested:
            self.notify("training is stopping: the step under way finishes first", timeout=2)
        elif lab.training_status == "running":
            lab.pause_training()
            self.notify(PAUSED_NOTICE)
        elif lab.training_status == "paused":
            lab.resume_training()
            withdraw_notices(self, PAUSED_NOTICE)  # it runs again: the toast must not say paused for seconds more
            self.step_rate.restart()  # measured from now: the pause is no training
        else:
            try:
                lab.check_can_train()
            except UserError as exc:
                self.notify(f"cannot train: {exc}", severity="error", timeout=8)
                return
            done, target = lab.trainer.step, lab.next_train_target()
            if lab.run is not None and done and not lab.unsaved_steps:  # a saved run trained on, as --resume notes
                for note in resume_notes(lab.run, done):
                    self.notify(note, timeout=10)
            if done >= lab.spec_as_trained.train.steps:  # finished: a round more, said (it restarts unasked);
                # a round stopped short goes on to its end, as t after s does
                self.notify(f"{done} steps trained already: training {target - done} more, to step {target} "
                            "(t pauses, s stops)")
            self.step_rate.restart()
            self._train()
        self.update_status()

    def _toggle_train_when_open(self) -> None:
        """t before the lab is open: training starts once it is; t again takes that back."""
        if self.load_error is not None:
            self.notify("the lab could not open: nothing to train (q quits)", severity="warning", timeout=4)
            return
        self._train_when_open = not self._train_when_open
        withdraw_notices(self, TRAIN_WHEN_OPEN_NOTICE, NO_TRAIN_WHEN_OPEN_NOTICE)  # each undoes the other
        if self._train_when_open:
            self.notify(TRAIN_WHEN_OPEN_NOTICE, timeout=3600)  # taken down as the lab opens
        else:
            self.notify(NO_TRAIN_WHEN_OPEN_NOTICE, timeout=3)

    @refused_until_open
    def action_train_stop(self) -> None:
        if self.lab.training:
            self.lab.stop_training()
            self.update_status()  # "stopping" at once: a large model's step can take seconds
        else:
            self.notify(NOTHING_TRAINING, timeout=2)

    @work(thread=True, exclusive=True, group="train", exit_on_error=False)
    def _train(self) -> None:
        from ..kernels import compile_notices

        worker, lab, thread = get_current_worker(), self.lab, threading.get_ident()
        self._compiling_at = -1  # (a compile of an earlier round is not this one's)

        def compiling(_message: str) -> None:  # read by the status line (the timer): no wait on the UI here
            if threading.get_ident() == thread:
                self._compiling_at = len(lab.history)

        with compile_notices(compiling):
            lab.train(should_stop=lambda: worker.is_cancelled)

    # ------------------------------------------------------------------ changing the experiment
    def _refuse_while_training(self) -> bool:
        if self.lab is not None and self.lab.training:
            paused = " (t only paused it)" if self.lab.training_status == "paused" else ""
            self.notify(f"{STOP_FIRST_NOTICE}{paused}", severity="warning")
            return True
        return self.lab is None

    @refused_while_computing
    @moves_through_the_view
    def action_new_sequence(self) -> None:
        if not self._refuse_while_training():
            lab = self.lab
            if lab.task.fixed_sequence:  # read again (from step 0, BPTT dropped), and say why it looks the same
                typed = " (i types another)" if hasattr(lab.task, "sequence_from_text") else ""
                self.notify(f"the {lab.task.kind} task has only this sequence: read again{typed}")
            steps = getattr(lab.task, "length", lab.steps)  # the new sequence's length
            self._compute(f"reading a new sequence ({steps} steps)", lab.regenerate,
                          self._forward_macs(steps, lab.view_batch))

    @refused_while_computing
    def action_type_sequence(self) -> None:
        if self._refuse_while_training():
            return
        if not hasattr(self.lab.task, "sequence_from_text"):
            self.notify(f"the {self.lab.task.kind} task takes no typed input: n makes a new sequence", severity="warning")
            return

        lab = self.lab

        def accept(text: str) -> tuple[Batch, str]:  # a refused sequence is named in the dialog, which stays open
            batch = lab.task.sequence_from_text(text)
            lab.check_sequence(batch)
            return batch, text

        def read(typed: tuple[Batch, str] | None) -> None:  # the forward pass, once the dialog is closed
            if typed is not None:
                batch, text = typed
                if note := getattr(lab.task, "typed_range_note", lambda _: "")(batch):
                    self.notify(note, severity="warning")
                self._compute(f"reading the typed sequence ({batch.T} steps)",
                              functools.partial(lab.set_sequence, batch, text=text),
                              self._forward_macs(batch.T, batch.B))

        # what to type and an example come from the task (characters, bits, values, ...)
        line_break = getattr(lab.task, "typing_line_break", lambda: " ")()  # what a pasted line's end types
        self.push_screen(PromptScreen(lab.task.typing_prompt(), "", accept, placeholder=lab.task.typing_placeholder(),
                                      line_break=line_break, pastes_lines=True), read)

    @refused_while_computing
    def action_edit(self) -> None:
        if self._refuse_while_training():
            return

        old = self.lab
        shown = old.spec_as_trained  # steps: as far as t trained, as ctrl+s saves it

        def check(overrides: dict) -> None:  # at once: a bad field is named while the form is open
            edited = shown.with_overrides(overrides)
            if edited == shown:  # an Enter too many must not drop training
                raise UserError("nothing changed (Esc closes the form)")
            edited.check_memory()  # an experiment edited is one to train: sizes it cannot train, named here

        notices: list[str] = []

        def build(overrides: dict) -> Lab:  # in the edit screen's thread, the lab shown meanwhile
            lab = Lab(shown.with_overrides(overrides), None, batch=old.view_batch)
            notices[:] = [lab.show_sequence_of(old)]  # the sequence shown: the two models compare on it
            lab.run_backward()  # compiles the backward kernels too, before the first b
            lab.bptt_cursor = None
            return lab

        def applied(lab: Lab | None) -> None:
            if lab is not None:
                self._show_lab(lab, f"new experiment: {lab.spec.model.cell}, {lab.task.kind}")
                for notice in filter(None, notices):
                    self.notify(notice, severity="warning", timeout=8)

        self.push_screen(EditScreen(shown, check, build, unsaved_steps=lambda: old.unsaved_steps), applied)

    @refused_while_computing
    def action_open(self) -> None:
        if self._refuse_while_training():
            return
        old = self.lab

        def opened(result: tuple[str, Lab, list[tuple[str, str]]] | None) -> None:
            if result is not None:
                target, lab, notices = result
                self.target = target
                self._show_lab(lab, f"opened {target}: {lab.spec.model.cell}, {lab.task.kind}")
                for message, severity in notices:
                    self.notify(message, severity=severity, timeout=10)

        folders = ([old.run.path.parent] if old.run is not None else []) + [Path("runs"), Path(".")]
        self.push_screen(OpenScreen(folders, self._open_target, unsaved_steps=lambda: old.unsaved_steps), opened)

    def _show_lab(self, lab: Lab, message: str) -> None:
        """Put ``lab`` in the place of the one shown (edited or opened): its first layer, unit and
        heatmap, its own plots."""
        self.lab = lab
        self.layer = self.direction = self.unit = self.head = 0
        self._seen_history = self._refreshed_history = -1
        self.query_one(StatePanel).open_on_first_map()  # the new model's first heatmap
        self.update_views()
        self.refresh_bindings()
        self.notify(message)
        self._warn_about_the_experiment()

    # ------------------------------------------------------------------ saving
    @refused_while_computing
    def action_save_run(self) -> None:
        if self.lab is None:
            return
        if self.lab.nothing_to_save:
            self.notify(f"nothing new to save: {self.lab.run.path.resolve()} holds step {self.lab.trainer.step}")
            return
        try:
            path = self.lab.save_run()
        except (UserError, OSError) as exc:
            self.notify(f"cannot save the run: {exc}", severity="error")
            return
        self._update_header(self.lab)  # it names the run now
        self.withdraw_quit_warning()  # a first q's "... not saved: q again quits without them" no longer holds
        if self.lab.diverted_from is not None:  # trained further by another process, or its checkpoint is gone
            self.notify(f"{Path(self.lab.diverted_from).resolve()} {self.lab.diverted_because}, so it was left as it "
                        f"is: the run was saved to {path.resolve()} instead", severity="warning", timeout=10)
            return
        self.notify(f"run saved to {path.resolve()}")

    @refused_while_computing
    def action_export_trace(self) -> None:
        lab = self.lab
        if lab is None:
            return

        def accept(name: str, replace: bool = False) -> Path | tuple[Path, bool]:
            if self._computing is not None:  # started while the dialog was open (a pause, training's end)
                raise UserError(f"busy {self._computing}: wait a moment")
            if lab.bptt_cursor is not None or self._backward_macs() < BACKGROUND_WORK_MACS:
                return lab.export_trace(name, replace=replace)  # at once: a failed write is named in the dialog
            # A large backward pass to run first: the name checked here, the rest in the worker.
            return npz_target(name, "trace file", replace=replace), replace

        def export(path: Path, replace: bool) -> None:
            try:
                lab.export_trace(path, replace=replace)
            except (UserError, OSError) as exc:  # a write that fails (a full disk, a file made meanwhile)
                self.notify(str(exc), severity="error", timeout=10)  # and nothing is replaced
            else:
                self.notify(f"trace written to {path.resolve()}")

        def written(result: Path | tuple[Path, bool] | None) -> None:
            if isinstance(result, Path):
                self.notify(f"trace written to {result.resolve()}")
            elif result is not None:
                self._compute(f"writing the trace to {result[0].name}", functools.partial(export, *result),
                              self._backward_macs())

        # named for the run where there is one: two runs of one experiment (two inits) offered one name
        named = lab.spec.name if lab.run is None else lab.run.path.resolve().name  # "rnnlab tui .": not "."
        self.push_screen(PromptScreen("Export the trace (every state, gate and dL/dh_t) to",
                                      f"{named}-trace.npz", accept), written)

    @refused_while_computing
    def action_pin_curve(self) -> None:
        """Keep this model's ||dL/dh_t|| curve and training loss on their plots, to compare another
        (o, e) with."""
        if self.lab is None:
            return
        plot, training = self.query_one(GradientPlot), self.query_one(TrainingPlots)
        curve = "||dL/dx_t||" if self.lab.is_attention else "||dL/dh_t||"  # where self-attention's gradient goes
        backward = "dh" in self.lab.trace
        if not backward and not len(self.lab.history):
            self.notify(f"nothing to pin yet: t trains (its loss), b steps back ({curve})", severity="warning")
            return
        names_before = {pin[0] for pin in (*plot.pins, *training.pins)}
        name = plot.pin(self.lab, self.layer, self.direction) if backward else \
            plot.pin_name(self.lab, self.layer, self.direction)
        training.pin(self.lab, name)
        plot.update_from(self.lab, self.layer, self.direction)
        training.update_from(self.lab)
        loss_pinned = bool(training.pins) and training.pins[-1][0] == name
        pinned = " and ".join(([curve] if backward else []) + (["its training loss"] if loss_pinned else []))
        later = "" if backward else f"; {curve} too after a backward pass (b, then m)"
        dropped = names_before - {pin[0] for pin in (*plot.pins, *training.pins)}
        oldest = f"; '{', '.join(sorted(dropped))}' dropped (at most {MAX_PINS} kept)" if dropped else ""
        self.notify(f"pinned {pinned} as '{name}'{oldest}{later}: open (o) or edit (e) another model to compare; "
                    "M drops them")

    @refused_until_open
    def action_unpin_curve(self) -> None:
        plot, training = self.query_one(GradientPlot), self.query_one(TrainingPlots)
        if not plot.pins and not training.pins:
            self.notify("no curve is pinned (m pins one)", timeout=2)
            return
        plot.pins, training.pins = [], []
        if self.lab is not None:
            plot.update_from(self.lab, self.layer, self.direction)
            training.update_from(self.lab)

    def action_screenshot(self) -> None:
        take_screenshot_and_say(self)

    @refused_until_open
    def action_scroll_side(self, pages: int) -> None:
        """PgDn/PgUp: the values and explain column by a page (the mouse wheel scrolls it too)."""
        scroll_pages(self.query_one(SideColumn), pages)

    def quit_warning(self) -> str:
        """Trained steps not saved (as the edit form warns before it drops them): q asks again."""
        unsaved = self.lab.unsaved_steps if self.lab is not None else 0
        if not unsaved:
            return ""
        steps = "1 trained step is" if unsaved == 1 else f"{unsaved} trained steps are"
        going_on = training_goes_on(self.lab)
        them = "it" if unsaved == 1 and not going_on else "them"  # (training goes on: more by the second q)
        return f"{steps} not saved{going_on}: q (or ctrl+c) again quits without {them}, ctrl+s " \
               f"saves {them}, Esc stays"

    def save_before_exit(self, why: str) -> str:
        """Trained steps not saved go where ``ctrl+s`` would put them (the run, or a new one beside
        where it was if another process changed it), training stopped after the step under way."""
        lab = self.lab
        if lab is None or not lab.unsaved_steps:
            return ""
        lab.stop_training()
        path = lab.save_run()  # (waits for the step under way: the lab's lock)
        diverted = f" ({Path(lab.diverted_from).resolve()} {lab.diverted_because}, so it was left as it is)" \
            if lab.diverted_from is not None else ""
        return f"{why}: the trained steps not saved were saved to {path.resolve()}{diverted} (step {lab.trainer.step})"

    def begin_quit(self) -> str:
        if self.lab is None or not self.lab.training:
            return ""
        self.lab.stop_training()  # at once: the step under way is the last
        return "quitting: the training step under way finishes first"

    #: What some keys do for a self-attention model (blocks, not layers; no recurrence to step back through).
    ATTENTION_HELP = {"backprop": "backprop (every step at once: no recurrence)", "bptt_all": "backprop",
                      "previous_stream": "prev block", "next_stream": "next block"}

    def action_help(self) -> None:
        attention = self.lab is not None and self.lab.is_attention
        keys = [(key_names(b.key), self.ATTENTION_HELP.get(b.action, b.description) if attention else b.description)
                for b in self.BINDINGS
                if self.check_action(b.action, ())]  # the head keys as the model has them (or a notice)
        keys.append(("mouse wheel", "scroll the panel under the mouse"))
        self.push_screen(HelpScreen(keys))


def run_lab(target: str | Path | Spec | None = None, *, choose_in: Path | None = None) -> int:
    """Open the lab in this terminal (blocks until the user quits); returns the exit status: 2 if
    the lab could not open on bad input (a damaged run: the screen said why, and stderr says it
    again once the screen is gone), 1 on any other error. ``choose_in``: see :class:`LabApp`."""
    app = LabApp(target, choose_in=choose_in)
    app.run()
    say_exit(app)
    if app.load_error is not None and not app.return_code:
        sys.stderr.write(f"rnnlab: error: cannot open the lab: {error_text(app.load_error)}\n")
        return 2 if isinstance(app.load_error, UserError) else 1
    return app.return_code or 0
