"""The lab: the Textual app that ``rnnlab`` opens.

One screen shows the sequence on the bench, heatmaps of every state and gate (units x time) of one
layer and direction, the exact values and the equations of the cursor step, the BPTT gradient
curve (beside it, for the cells linear in their state, each unit's recurrence coefficient in the
complex plane: the LRU's eigenvalues against the unit circle) and the training curves. With a
self-attention model the heatmaps are each block's output h and attention sublayer output z, and an
attention panel shows the map of one block and head (a/A switch heads). The
headless :class:`~rnnlab.lab.Lab` does all the work; training runs in one worker thread and the
screen reads the Lab's history on a timer (12 Hz), so the UI never waits for the trainer and the
trainer never waits for the UI.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult, ScreenStackError
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Header, LoadingIndicator, RichLog, Static
from textual.worker import Worker, WorkerState, get_current_worker

from ..errors import UserError
from ..lab import Lab
from .panels import (AttentionPanel, CursorValues, DecayPlane, ExplainPanel, GradientPlot, SequenceBar, StatePanel,
                     StepRate, TrainingPlots)
from .screens import EditScreen, HelpScreen, PromptScreen
from .terminal import PlainNotices, warn_without_true_colour
from .widgets import Heatmap

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


def plots_rows(terminal_rows: int, bar_rows: int = SEQUENCE_BAR_ROWS) -> int:
    """The plots band's height in a terminal ``terminal_rows`` high under a sequence bar
    ``bar_rows`` high (see PLOTS_ROWS)."""
    return max(PLOTS_MIN_ROWS, min(PLOTS_ROWS, (terminal_rows - FIXED_ROWS - bar_rows) * 2 // 5))


class LabApp(PlainNotices, App[None]):
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
        Binding("B", "bptt_all", "BPTT all", show=False),
        Binding("t", "train_toggle", "train/pause"),
        Binding("s", "train_stop", "stop", show=False),
        Binding("n", "new_sequence", "new sequence"),
        Binding("i", "type_sequence", "type input", show=False),
        Binding("e", "edit", "edit"),
        Binding("left_square_bracket", "previous_stream", "prev layer", show=False),
        Binding("right_square_bracket", "next_stream", "next layer", show=False),
        Binding("j", "next_map", "next heatmap", show=False),
        Binding("k", "previous_map", "previous heatmap", show=False),
        Binding("u", "next_unit", "unit +", show=False),  # lower case forward, as n, a, ]
        Binding("U", "previous_unit", "unit -", show=False),
        Binding("a", "next_head", "attn head +"),  # self-attention only (check_action hides it otherwise)
        Binding("A", "previous_head", "attn head -", show=False),
        Binding("ctrl+s", "save_run", "save run", show=False),
        Binding("x", "export_trace", "export trace", show=False),
        Binding("p", "screenshot", "screenshot", show=False),
        Binding("question_mark", "help", "help"),
        Binding("q,ctrl+c", "quit", "quit", key_display="q"),
    ]

    def __init__(self, target: str | Path | None = None) -> None:
        super().__init__()
        self.target = target
        self.lab: Lab | None = None
        self.layer = 0
        self.direction = 0
        self.unit = 0
        self.head = 0  # the attention head shown (self-attention models)
        self._ticks = 0
        self._seen_history = -1
        self._refreshed_history = -1  # history length at the last refresh of the heatmaps
        self._status_text = ""  # the status line as last drawn
        self.step_rate = StepRate()

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="loading"):
            yield LoadingIndicator()
            yield RichLog(id="loading-log", markup=True, wrap=True)
        with Vertical(id="lab"):
            yield SequenceBar(id="sequence")
            with Horizontal(id="middle"):
                yield StatePanel(id="states")
                yield AttentionPanel(id="attention")
                with VerticalScroll(id="side"):
                    yield CursorValues(id="values")
                    yield ExplainPanel(id="explain")
            with Horizontal(id="plots"):
                yield GradientPlot(title="||dL/dh_t||", log_y=True, id="grad-plot")
                yield DecayPlane(id="decay-plane")
                yield TrainingPlots(id="training")
            yield Static(id="status")
        yield Footer()

    def on_resize(self, event: events.Resize) -> None:
        self._fit_plots(event.size.height)  # self.size still holds the size before this resize
        self.call_after_refresh(self._update_side)  # as many unit rows as the new height leaves

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

    def on_mount(self) -> None:
        self._fit_plots()
        self.query_one("#lab").display = False
        self.sub_title = "loading"
        self._load_lab()
        self.set_interval(1 / REFRESH_HZ, self._tick)

    # ------------------------------------------------------------------ start-up
    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load_lab(self) -> None:
        """Build the Lab off the UI thread: a cold Numba cache compiles kernels (seconds), and
        each compile is announced on the loading screen."""
        from ..kernels import compile_notices

        def notice(message: str) -> None:
            self.call_from_thread(self._loading_message, message)

        self.call_from_thread(self._loading_message, f"opening {self.target or 'hello'} ...")
        with compile_notices(notice):
            lab = Lab.open(self.target)
            lab.run_backward()  # compiles the backward kernels too, before the first key press
            lab.refresh()
        self.call_from_thread(self._lab_ready, lab)

    def _loading_message(self, message: str, style: str = "") -> None:
        self.query_one("#loading-log", RichLog).write(Text(message, style=style))  # a typed path is not markup

    def _lab_ready(self, lab: Lab) -> None:
        self.lab = lab
        self.query_one("#loading").remove()  # hidden, its indicator would keep animating (idle CPU)
        self.query_one("#lab").display = True
        self.update_views()
        self.refresh_bindings()
        warn_without_true_colour(self, "heatmaps need")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The head keys only exist for a self-attention model (hidden from the footer otherwise)."""
        if action in ("next_head", "previous_head"):
            return self.lab is not None and self.lab.is_attention
        return True

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Errors of the workers are handled here, in one place."""
        worker = event.worker
        if event.state == WorkerState.ERROR:
            error = worker.error
            if worker.group == "load":
                message = str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
                self._loading_message(f"cannot open the lab: {message}", style="red")
                self.query_one("#loading LoadingIndicator").remove()
                self.sub_title = "error (q quits)"
            else:
                self.notify(f"{type(error).__name__}: {error}", severity="error", timeout=10)
        elif worker.group == "train" and event.state in (WorkerState.SUCCESS, WorkerState.CANCELLED):
            lab = self.lab
            if lab is not None:
                lab.refresh(keep_bptt=True)
                self.update_views()
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

    def update_views(self) -> None:
        """Redraw every panel from the Lab."""
        lab = self.lab
        if lab is None or not self._views_alive():
            return
        m = lab.spec.model
        scan = f" ({m.scan})" if m.scan != "sequential" else ""
        if lab.is_attention:
            self.sub_title = (f"{lab.spec.name}: {m.cell}, d_model={m.hidden_size}, {m.num_heads} heads, "
                              f"{m.num_layers} block(s), {'non-causal' if m.bidirectional else 'causal'}")
        else:
            self.sub_title = f"{lab.spec.name}: {m.cell}{scan}, H={m.hidden_size}, " \
                             f"{m.num_layers} layer(s){' bidirectional' if m.bidirectional else ''}"
        self.query_one("#middle").set_class(lab.is_attention, "with-attention")  # a narrower side panel
        self.query_one(SequenceBar).update_from(lab)
        self._fit_plots()  # a task with several target channels has a taller sequence bar
        self.query_one(StatePanel).select(lab, self.layer, self.direction)
        self.query_one(AttentionPanel).update_from(lab, self.layer, self.head)
        self._update_side()
        self.query_one(GradientPlot).update_from(lab, self.layer, self.direction)
        self.query_one(DecayPlane).update_from(lab, self.layer, self.direction)
        self.query_one(TrainingPlots).update_from(lab)
        self.update_status()

    def _update_side(self) -> None:
        """The explain panel of the chosen unit, then the values table cut to the units around it
        that leave the equations in view (on a short terminal the panel scrolls instead)."""
        lab = self.lab
        if lab is None:
            return
        explain, side = self.query_one(ExplainPanel), self.query_one("#side")
        explain.update_from(lab, self.layer, self.direction, self.unit, self.head)
        height, width = side.content_size.height, side.content_size.width
        rows = height - explain.rows_needed(width) - VALUES_FRAME_ROWS if height else None
        self.query_one(CursorValues).update_from(lab, self.layer, self.direction, self.unit, rows)

    def update_status(self) -> None:
        lab = self.lab
        if lab is None or not self._views_alive():
            return
        t = f"t {lab.cursor}/{lab.steps}"
        bptt = "" if lab.bptt_cursor is None else f"  BPTT t={lab.bptt_cursor + 1}"
        if lab.is_attention:
            layer = f"block {self.layer}  head {self.head + 1}/{lab.num_heads}  unit {self.unit}"
        else:
            layer = f"layer {self.layer}{' reverse' if self.direction else ''}  unit {self.unit}"
        training = f"{lab.training_status} step {lab.trainer.step}"
        if lab.training_status == "running":
            training += f"  {self.step_rate.per_second:.0f} steps/s"
        trunc = f"  truncate {lab.truncate}" if lab.truncate else ""
        text = f"{t}{bptt}   {layer}   {training}{trunc}   ? help"
        if text != self._status_text:  # the timer calls this 12 times a second: an unchanged line costs a layout
            self._status_text = text
            self.query_one("#status", Static).update(text)

    def _tick(self) -> None:
        """The timer: while training, read the trainer's buffer (plots, status) and now and then
        recompute the bench sequence with the new weights (heatmaps)."""
        lab = self.lab
        if lab is None or not lab.training or not self._views_alive():
            return
        self._ticks += 1
        n = len(lab.history)
        self.step_rate.update(n)
        if n != self._seen_history and self._ticks % PLOTS_EVERY == 0:
            self._seen_history = n
            self.query_one(TrainingPlots).update_from(lab)
        if (self._ticks % HEATMAP_EVERY == 0 and n != self._refreshed_history  # paused: nothing new
                and lab.refresh(keep_bptt=True, timeout=REFRESH_WAIT)):  # a BPTT view follows the weights too
            self._refreshed_history = n
            self.query_one(SequenceBar).update_from(lab)
            self.query_one(StatePanel).update_from(lab)
            self.query_one(AttentionPanel).update_from(lab, self.layer, self.head)
            self._update_side()
            self.query_one(GradientPlot).update_from(lab, self.layer, self.direction)
            self.query_one(DecayPlane).update_from(lab, self.layer, self.direction)
        self.update_status()

    # ------------------------------------------------------------------ time
    def _has_lab(self) -> bool:
        return self.lab is not None

    def action_step_forward(self) -> None:
        if self._has_lab():
            self.lab.step_forward()
            self.update_views()

    def action_step_back(self) -> None:
        if self._has_lab():
            self.lab.step_back()
            self.update_views()

    def action_jump_start(self) -> None:
        if self._has_lab():
            self.lab.jump_start()
            self.update_views()

    def action_jump_end(self) -> None:
        if self._has_lab():
            self.lab.jump_end()
            self.update_views()

    @on(Heatmap.ColumnClicked)
    def column_clicked(self, event: Heatmap.ColumnClicked) -> None:
        if self._has_lab():
            self.lab.move_to(event.column + 1)
            self.update_views()

    def action_bptt_step(self) -> None:
        if self._has_lab():
            self.lab.bptt_step()
            self.update_views()

    def action_bptt_all(self) -> None:
        if self._has_lab():
            self.lab.run_backward()
            self.lab.bptt_cursor = 0
            self.update_views()

    # ------------------------------------------------------------------ layers and units
    def _streams(self) -> list[tuple[int, int]]:
        m = self.lab.spec.model
        return [(layer, d) for layer in range(m.num_layers) for d in range(self.lab.num_directions)]

    def _move_stream(self, delta: int) -> None:
        if not self._has_lab():
            return
        streams = self._streams()
        k = (streams.index((self.layer, self.direction)) + delta) % len(streams)
        self.layer, self.direction = streams[k]
        self.update_views()

    def action_previous_stream(self) -> None:
        self._move_stream(-1)

    def action_next_stream(self) -> None:
        self._move_stream(1)

    def action_next_map(self) -> None:
        self.query_one(StatePanel).scroll_maps(1)

    def action_previous_map(self) -> None:
        self.query_one(StatePanel).scroll_maps(-1)

    def action_previous_unit(self) -> None:
        if self._has_lab():
            self.unit = (self.unit - 1) % self.lab.spec.model.hidden_size
            self.update_views()

    def action_next_unit(self) -> None:
        if self._has_lab():
            self.unit = (self.unit + 1) % self.lab.spec.model.hidden_size
            self.update_views()

    def _move_head(self, delta: int) -> None:
        if self._has_lab() and self.lab.is_attention:
            self.head = (self.head + delta) % self.lab.num_heads
            self.update_views()

    def action_next_head(self) -> None:
        self._move_head(1)

    def action_previous_head(self) -> None:
        self._move_head(-1)

    # ------------------------------------------------------------------ training
    def action_train_toggle(self) -> None:
        lab = self.lab
        if lab is None:
            return
        if lab.training_status == "running":
            lab.pause_training()
            self.notify("training paused (t resumes, s stops)")
        elif lab.training_status == "paused":
            lab.resume_training()
        else:
            done, planned = lab.trainer.step, lab.spec.train.steps
            if done >= planned:  # the engine trains train.steps more: say so, a finished run restarts unasked
                self.notify(f"{done} steps trained already (train.steps = {planned}): training {planned} more, "
                            f"to step {done + planned} (t pauses, s stops)")
            self.step_rate.restart()
            self._train()
        self.update_status()

    def action_train_stop(self) -> None:
        if self.lab is not None and self.lab.training:
            self.lab.stop_training()

    @work(thread=True, exclusive=True, group="train", exit_on_error=False)
    def _train(self) -> None:
        worker = get_current_worker()
        self.lab.train(should_stop=lambda: worker.is_cancelled)

    # ------------------------------------------------------------------ changing the experiment
    def _refuse_while_training(self) -> bool:
        if self.lab is not None and self.lab.training:
            paused = " (t only paused it)" if self.lab.training_status == "paused" else ""
            self.notify(f"stop training first (s){paused}", severity="warning")
            return True
        return self.lab is None

    def action_new_sequence(self) -> None:
        if not self._refuse_while_training():
            self.lab.regenerate()
            self.update_views()

    def action_type_sequence(self) -> None:
        if self._refuse_while_training():
            return
        if not hasattr(self.lab.task, "sequence_from_text"):
            self.notify(f"the {self.lab.task.kind} task takes no typed input: n makes a new sequence", severity="warning")
            return

        def accept(text: str) -> bool:
            self.lab.sequence_from_text(text)
            return True

        vocab = "".join(self.lab.task.vocab or ())
        self.push_screen(PromptScreen("Type a sequence: the network reads it and predicts each next character",
                                      "", accept, placeholder=f"characters from: {vocab}"),
                         lambda done: done and self.update_views())

    def action_edit(self) -> None:
        if self._refuse_while_training():
            return

        old = self.lab

        def check(overrides: dict) -> None:  # at once: a bad field is named while the form is open
            if old.spec.with_overrides(overrides) == old.spec:  # an Enter too many must not drop training
                raise UserError("nothing changed (Esc closes the form)")

        def build(overrides: dict) -> Lab:  # in the edit screen's thread, the lab shown meanwhile
            lab = Lab(old.spec.with_overrides(overrides), None, batch=old.view_batch)
            lab.run_backward()  # compiles the backward kernels too, before the first b
            lab.bptt_cursor = None
            return lab

        def applied(lab: Lab | None) -> None:
            if lab is not None:
                self.lab = lab
                self.layer = self.direction = self.unit = self.head = 0
                self._seen_history = self._refreshed_history = -1
                self.query_one(StatePanel).scroll_home(animate=False)  # the new model's first heatmap
                self.update_views()
                self.refresh_bindings()
                self.notify(f"new experiment: {lab.spec.model.cell}, {lab.task.kind}")

        self.push_screen(EditScreen(old.spec, check, build, trained_steps=old.trainer.step), applied)

    # ------------------------------------------------------------------ saving
    def action_save_run(self) -> None:
        if self.lab is None:
            return
        try:
            path = self.lab.save_run()
        except (UserError, OSError) as exc:
            self.notify(f"cannot save the run: {exc}", severity="error")
            return
        if self.lab.diverted_from is not None:  # trained further by another process since this lab read it
            self.notify(f"{self.lab.diverted_from} changed on disk since this lab read it, so it was left as it "
                        f"is: the run was saved to {path.resolve()} instead", severity="warning", timeout=10)
            return
        self.notify(f"run saved to {path.resolve()}")

    def action_export_trace(self) -> None:
        if self.lab is None:
            return

        def accept(name: str, replace: bool = False) -> Path:
            return self.lab.export_trace(name, replace=replace)

        self.push_screen(PromptScreen("Export the trace (every state, gate and dL/dh_t) to", f"{self.lab.spec.name}-trace.npz",
                                      accept), lambda path: path and self.notify(f"trace written to {path.resolve()}"))

    def action_screenshot(self) -> None:
        path = self.save_screenshot()
        self.notify(f"screenshot saved to {path}")

    def action_help(self) -> None:
        keys = [(b.key.replace("left_square_bracket", "[").replace("right_square_bracket", "]")
                 .replace("question_mark", "?").replace(",", ", "), b.description) for b in self.BINDINGS
                if self.check_action(b.action, ())]  # the head keys only for a self-attention model
        self.push_screen(HelpScreen(keys))


def run_lab(target: str | Path | None = None) -> int:
    """Open the lab in this terminal (blocks until the user quits); returns the exit status (not
    0 if the app stopped on an error)."""
    app = LabApp(target)
    app.run()
    return app.return_code or 0
