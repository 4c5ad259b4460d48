"""Modal screens: help, editing the experiment, opening another, typing a sequence or a file name."""

from __future__ import annotations

import functools
import os
import re
import sys
import threading
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, NamedTuple

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.await_complete import AwaitComplete
from textual.screen import ModalScreen, ScreenResultType
from textual.widget import Widget
from textual.widgets import Button, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState, get_current_worker

from ..data import TASKS, task_fields
from ..errors import SpecError, TargetExistsError, UserError, counted
from ..labs._options import number_or_text
from ..spec import (ALWAYS_BIASED, ATTENTION_CELLS, CELLS, LINEAR_CELLS, OPTIMIZERS, ModelSpec, Spec,
                    edited_name, preset_names)
from ..spec import CELL_FIELDS as SPEC_CELL_FIELDS
from ..layers.init import INITS
from ..layers.minimal import METHODS
from .terminal import clipped_at_words, withdraw_notices


#: How a help writes the keys textual names (the others as they are: l, ctrl+s).
KEY_SYMBOLS = {"right": "→", "left": "←", "up": "↑", "down": "↓", "shift+right": "shift+→",
               "shift+left": "shift+←", "home": "Home", "end": "End", "pagedown": "PgDn", "pageup": "PgUp",
               "question_mark": "?", "left_square_bracket": "[", "right_square_bracket": "]", "comma": ",",
               "full_stop": ".", "plus": "+", "minus": "-", "equals_sign": "=", "escape": "Esc", "f1": "F1",
               "number_sign": "#"}


def key_names(key: str) -> str:
    """A binding's keys as every lab's help writes them: ``"right,l"`` -> ``"→, l"``."""
    return ", ".join(KEY_SYMBOLS.get(k, k) for k in key.split(","))


def key_table(keys: list[tuple[str, str]]) -> Table:
    """A help's keys as two columns, the keys right-aligned: a description longer than its line
    wraps under itself, not under the keys (a hanging indent), at any width of the dialog (the
    lab's help and the architecture labs')."""
    table = Table.grid(padding=(0, 0, 0, 2), expand=True)
    table.add_column(justify="right", no_wrap=True, style="bold")
    table.add_column(ratio=1)
    for key, description in keys:
        table.add_row(key, description)
    return table


class Dialog(ModalScreen[ScreenResultType]):
    """A modal screen of the lab, dismissed once. Textual's ``dismiss`` pops whatever screen is on top:
    two closing keys that reach a dialog in one batch of input (Enter then Esc, a paste ending in a line
    break, a script) dismissed it and then the lab's screen under it (a blank screen with no lab keys,
    or a ScreenStackError). A dialog already dismissed ignores the rest."""

    @property
    def dismissed(self) -> bool:
        """Whether this dialog has left the screen stack (its input still queued is not its to act on)."""
        return self not in self.app.screen_stack

    def dismiss(self, result: ScreenResultType | None = None) -> AwaitComplete:
        if self.dismissed:
            return AwaitComplete.nothing()
        return super().dismiss(result)


class ScrollsWithHint(VerticalScroll):
    """A scrolling box that says it scrolls: a last line, "↓ more: ↓/PgDn", while its content goes on under
    its bottom edge (at 80x24 the lab's help showed 20 of its 30 keys, nothing saying there were more)."""

    DEFAULT_CSS = """
    ScrollsWithHint > .more-below {
        dock: bottom;  /* it stays on the box's last row while the rest scrolls */
        height: 1;
        color: $text-muted;
        background: $panel;
    }
    """

    def compose(self) -> ComposeResult:
        hint = Static("↓ more: ↓/PgDn", classes="more-below")
        hint.display = False  # until the box is laid out: shown, its row would make content that fits overflow
        yield hint

    def on_mount(self) -> None:
        self.call_after_refresh(self.show_more)

    def on_resize(self) -> None:
        self.call_after_refresh(self.show_more)  # (after the layout that gives the new max_scroll_y)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self.show_more()

    def watch_virtual_size(self) -> None:
        self.show_more()

    def show_more(self) -> None:
        """Show the hint while more of the content lies below the box's bottom edge."""
        if not self.container_size.height:  # not laid out yet: all of it would seem to lie below
            return
        self.query_one(".more-below").display = self.max_scroll_y > 0 and self.scroll_y < self.max_scroll_y


class HelpScreen(Dialog[None]):
    """Every key binding of the lab, read from the bindings themselves so it cannot drift."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "close")]

    def __init__(self, bindings: list[tuple[str, str]]) -> None:
        super().__init__()
        self._keys = bindings

    def compose(self) -> ComposeResult:
        with ScrollsWithHint(id="help"):
            yield Static("[b]rnnlab: keys[/b]\n", markup=True)
            yield Static(key_table(self._keys))
            yield Static("\nClick a heatmap column to move the time cursor there. Esc closes this.", classes="dim")


class PastingInput(Input):
    """A one-line field that keeps every line of a paste, each line break written ``line_break``
    (a typed sequence's newline, ``⏎``; a separator between numbers): textual's Input keeps the
    first line alone, and a pasted poem or column of numbers lost all but its first line, unsaid.
    It also keeps the invisible characters typed (a zero-width joiner), which Input drops."""

    class Refused(Message):
        """A paste the field cannot hold; ``reason`` says why (the dialog shows it under the field)."""

        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    def __init__(self, *args, line_break: str | None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.line_break = line_break  # None: nothing types one (a paste of several lines is refused)

    async def _on_key(self, event: events.Key) -> None:
        # a zero-width joiner, a variation selector, a combining accent: text, though not "printable"
        # (Input drops them), as an emoji picker or an input method types them, and a vocabulary holds them
        character = event.character
        if character and len(character) == 1 and not event.is_printable and \
                unicodedata.category(character) in ("Cf", "Mn", "Me"):
            event.prevent_default()
            event.stop()
            self.replace(character, *self.selection)  # (an empty selection: at the cursor, as Input's own paste)

    def _on_paste(self, event: events.Paste) -> None:
        event.prevent_default()  # Input._on_paste, next in the MRO, would insert the first line again
        event.stop()
        lines = re.split(r"\r\n|\r|\n", event.text.rstrip("\r\n"))  # (its last line's end, or ends, types nothing)
        if len(lines) > 1 and self.line_break is None:  # a raw newline in the field broke the screen's drawing
            self.post_message(self.Refused("a pasted line break cannot be typed here: paste one line at a time"))
            return
        text = (self.line_break or "").join(lines)
        if text:
            self.replace(text, *self.selection)


class PromptScreen(Dialog[Any]):
    """One line of input; ``accept(value)`` returns the result or raises UserError shown inline.

    A file prompt's ``accept`` refuses an existing file with :class:`TargetExistsError`; Enter again
    on the same name calls ``accept(value, replace=True)``, so nothing is overwritten unasked.
    ``pastes_lines``: a paste keeps every line, each line break written ``line_break`` (None: one
    cannot be typed, and a paste of several lines is refused); else it keeps its first line, as a
    file name should."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, title: str, value: str, accept, placeholder: str = "", line_break: str | None = "",
                 pastes_lines: bool = False, select_on_focus: bool = True) -> None:
        super().__init__()
        self._title, self._value, self._accept, self._placeholder = title, value, accept, placeholder
        self._line_break, self._pastes_lines = line_break, pastes_lines
        self._select_on_focus = select_on_focus  # False: what is typed goes on after ``value``, not over it
        self._existing: str | None = None  # the name just refused as an existing file

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="dialog-title", markup=False)  # a column named "time [/s]"
            if not self._pastes_lines:
                yield Input(value=self._value, placeholder=self._placeholder, id="prompt-input",
                            select_on_focus=self._select_on_focus)
            else:
                yield PastingInput(value=self._value, placeholder=self._placeholder, id="prompt-input",
                                   line_break=self._line_break, select_on_focus=self._select_on_focus)
            yield Label("", id="prompt-error", classes="error", markup=False)  # it may quote what was typed
            yield Label("Enter to apply, Esc to cancel", classes="dim")

    @on(PastingInput.Refused)
    def _refused_paste(self, event: PastingInput.Refused) -> None:
        self.query_one("#prompt-error", Label).update(event.reason)

    @on(Input.Changed)
    def _edited(self) -> None:
        self._existing = None  # a second Enter replaces only right after the warning, on the name it named
        self.query_one("#prompt-error", Label).update("")  # what it said was of the text before

    @on(Input.Submitted)
    def submit(self, event: Input.Submitted) -> None:
        if self.dismissed:  # a second Enter queued behind the first: accepted once (an export written once)
            return
        try:
            if event.value == self._existing:
                result = self._accept(event.value, replace=True)
            else:
                result = self._accept(event.value)
        except TargetExistsError as exc:
            self._existing = event.value
            self.query_one("#prompt-error", Label).update(f"{exc}: Enter again to replace it")
            return
        except UserError as exc:
            self.query_one("#prompt-error", Label).update(str(exc))
            return
        except OSError as exc:  # a file that cannot be written: the reason, and the dialog stays
            self.query_one("#prompt-error", Label).update(f"cannot write {exc.filename or 'the file'}: "
                                                          f"{exc.strerror or exc}")
            return
        self.dismiss(result)

    def action_cancel(self) -> None:
        self.dismiss(None)


class CompactInput(Input):
    """A one-line text field (no border): the edit form's twenty fields fit a 36-row terminal."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, compact=True, **kwargs)


class CompactSelect(Select):
    """A one-line drop-down, as :class:`CompactInput`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, compact=True, **kwargs)


#: The edit form's fields that only some cells have: field id -> does it apply to this cell? The
#: spec's CELL_FIELDS that the form holds.
FORM_CELL_FIELDS: dict[str, Callable[[str], bool]] = {
    f"model-{name}": (lambda cell, cells=SPEC_CELL_FIELDS[name]: cell in cells)
    for name in ("nonlinearity", "forget_bias", "scan", "num_heads", "d_ff")
}
#: The edit form's fields that every cell has but whose values the spec refuses for some (an init but
#: uniform without W_hh, identity but for rnn; a second layer or a reverse direction for jordan, a
#: reverse direction for lru; truncation for jordan and selfattention): field id -> the values to ask
#: the spec about (:func:`cell_refuses`), the default first. The form offers a cell only those it
#: accepts; a field left with one holds it, disabled.
CELL_LIMITED_FIELDS: dict[str, tuple] = {"model-init": INITS, "model-num_layers": (1, 2),
                                         "model-bidirectional": (False, True), "train-truncate": (0, 1)}


@functools.cache
def cell_refuses(cell: str, field: str, value: Any, **model: Any) -> str:
    """Why the spec refuses ``value`` of the dotted ``field`` for ``cell`` (every other field at its
    default, or as ``model`` gives it: heads against a hidden size), or "": asked of the spec's own
    checks, so that the form cannot drift from them."""
    table, _, name = field.partition(".")
    document: dict[str, Any] = {"model": {**model, "cell": cell}}
    document.setdefault(table, {})[name] = value
    try:
        Spec.check_fields(document)
    except SpecError as exc:
        return exc.message if exc.field == field else ""
    return ""

#: The edit form's four columns (two label-field pairs a row) need this many terminal columns.
EDIT_FOUR_COLUMNS_WIDTH = 112


def _unsaved(steps: int) -> str:
    """``"200 steps trained since the last save"`` (``"1 step ..."``), as the dialogs' warnings name them."""
    return f"{counted(steps, 'step')} trained since the last save"


def _them(steps: int) -> str:
    """The steps of a warning named again: "it" for one ("ctrl+s saves them" read wrong of "the 1 step")."""
    return "it" if steps == 1 else "them"


class FormMessage(Label):
    """The line under the edit form's fields (a refusal, a note): a change of its height refits the form."""

    def on_resize(self) -> None:
        self.screen.call_after_refresh(self.screen._message_resized)


class ReplacesTheModel(Dialog[Any]):
    """A dialog whose outcome replaces the lab's model (the edit form, the open dialog): what it
    makes is made in a thread behind a loading indicator (a new cell compiles its kernels) and the
    dialog is dismissed with it; a UserError raised meanwhile is shown by :meth:`_refuse` and the
    dialog stays. It names the trained steps the new model would drop, and ctrl+s saves them; with
    steps unsaved, the model made is shown only on a second try of the same (:meth:`_make`)."""

    BINDINGS = [Binding("escape", "cancel", "cancel"),
                Binding("ctrl+s", "save_run", "save run")]  # as the warning offers: the app's own is cut off
    #: The id of the dialog's frame (the loading indicator covers it) and of its warning line.
    FRAME_ID = WARNING_ID = ""
    #: What the dialog's action does, before "the N steps trained since the last save are dropped".
    DROPS = ""
    #: How the action is taken a second time, which drops the unsaved steps ("Enter again").
    AGAIN = ""
    #: A model still being made after this many seconds (a large one, a new cell's kernels compiling)
    #: is said in a notice: the loading cover alone said nothing, and Esc seemed to do nothing.
    MAKING_NOTICE_S = 1.0

    def __init__(self, unsaved_steps: Callable[[], int] = lambda: 0) -> None:
        super().__init__()
        self._unsaved_steps = unsaved_steps  # asked again after a ctrl+s from within the dialog
        self._making: Worker | None = None
        self._what: Any = None  # what the worker makes: the form's values, the target to open
        self._made: tuple[Any, Any] | None = None  # (what, its result) held for a second try to confirm
        self._focus: Widget | None = None  # what had the focus before the loading cover took it
        self._cancelled = False  # Esc while a model was being made: it is dropped when done
        self._making_notice = ""  # the notice shown while it is made
        self._compiling = ""  # the kernel compiling for it, as compile_notices says it ("compiling ...; cached ...")

    def _make(self, what: Any, make: Callable[[], Any]) -> None:
        """Run ``make()`` (which makes ``what``) in a thread, one at a time; the dialog is dismissed with
        its result. Where that drops trained steps not saved, the first try keeps it and says so (a
        bad value is named at once, not after a confirmation); the same ``what`` again dismisses with
        it, as q quits when pressed again."""
        if self._making is not None:
            return
        if self._made is not None and self._made[0] == what:
            self.dismiss(self._made[1])
            return
        self._disarm()  # something else is tried
        self._what, self._focus, self._compiling = what, self.focused, ""
        self.query_one(f"#{self.FRAME_ID}").loading = True
        self._making = self.run_worker(functools.partial(self._make_saying_compiles, make), thread=True,
                                       exit_on_error=False, group="replace")
        self.set_timer(self.MAKING_NOTICE_S, functools.partial(self._say_making, self._making))

    def _make_saying_compiles(self, make: Callable[[], Any]) -> Any:
        """``make()`` in the worker's thread, each kernel it compiles said in the making notice: a cell's
        first use compiles its kernels for 10-60 s, and "opening adding-rnn: Esc cancels" alone said
        nothing of why it took a minute (the lab's loading screen names each)."""
        from ..kernels import compile_notices

        worker, thread = get_current_worker(), threading.get_ident()

        def compiling(message: str) -> None:  # (numba says every thread's compiles: this one's only)
            if threading.get_ident() == thread:
                self.app.call_from_thread(self._say_compiling, worker, message)

        with compile_notices(compiling):
            return make()

    def _say_compiling(self, worker: Worker, message: str) -> None:
        if worker is self._making and not self._cancelled:
            self._compiling = message
            self._say_making(worker)

    def _making_what(self) -> str:
        """What is being made, as its notice says it ("building the new model")."""
        raise NotImplementedError

    def _say_making(self, worker: Worker, cancelled: bool = False) -> None:
        """Say what ``worker`` (the one under way) makes, and what Esc does: cancels it, or, pressed,
        closes the dialog once it is done (a thread cannot be interrupted)."""
        if worker is not self._making or (self._cancelled and not cancelled):
            return
        self._withdraw_making_notice()
        esc = "cancelled; the dialog closes once that is done (it cannot be interrupted)" if cancelled else \
            "Esc cancels"
        compiling = f"{self._compiling}. " if self._compiling and not cancelled else ""
        self._making_notice = f"{self._making_what()}: {compiling}{esc}"
        self.notify(self._making_notice, timeout=3600)  # taken down when it is done

    def _withdraw_making_notice(self) -> None:
        withdraw_notices(self.app, self._making_notice)
        self._making_notice = ""

    def _arm(self, unsaved: int) -> None:
        """Say that the same try again drops the ``unsaved`` steps (bold, with a bell)."""
        warning = self.query_one(f"#{self.WARNING_ID}", Label)
        them = _them(unsaved)
        warning.update(f"{self.DROPS}: {self.AGAIN} drops the {_unsaved(unsaved)}; ctrl+s saves {them} first, "
                       f"Esc keeps {them}.")
        warning.add_class("armed")
        warning.display = True
        self.app.bell()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self._making:
            return
        event.stop()  # the outcome is this dialog's to show
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self._withdraw_making_notice()
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR) and self._cancelled:
            self.dismiss(None)  # Esc, pressed while it was made: the lab's model stays
        elif event.state == WorkerState.SUCCESS:
            unsaved = self._unsaved_steps()
            if not unsaved:
                self.dismiss(event.worker.result)
                return
            self._made = (self._what, event.worker.result)
            self._end_loading()
            self._arm(unsaved)
        elif event.state == WorkerState.ERROR:
            error = event.worker.error
            self._end_loading()
            self._refuse(error if isinstance(error, UserError) else f"{type(error).__name__}: {error}")

    def _end_loading(self) -> None:
        """The dialog back from under its loading cover, the focus where it was (the cover took it:
        Enter again would reach nothing)."""
        self._making = None
        self.query_one(f"#{self.FRAME_ID}").loading = False
        if self._focus is not None and self._focus.is_attached:
            self._focus.focus()

    def _refuse(self, error: UserError | str) -> None:
        raise NotImplementedError

    def action_save_run(self) -> None:
        """Save the run being replaced, from within the dialog (a modal screen hides the app's keys)."""
        save = getattr(self.app, "action_save_run", None)
        if save is not None:
            save()
            self._made = None  # made before the save: the run opened again must be read as saved now
            self._show_warning()

    def _disarm(self) -> None:
        """What the dialog would do changed since a first try armed it: that try must be made again."""
        if self._made is not None:
            self._made = None
            self._show_warning()

    def _show_warning(self) -> None:
        """Name the trained steps the new model would drop: those not saved yet (none: no warning)."""
        unsaved = self._unsaved_steps()
        warning = self.query_one(f"#{self.WARNING_ID}", Label)
        warning.update(f"{self.DROPS}: the {_unsaved(unsaved)} {'is' if unsaved == 1 else 'are'} dropped "
                       f"(ctrl+s saves {_them(unsaved)} first).")
        warning.display = unsaved > 0
        warning.remove_class("armed")

    def action_cancel(self) -> None:
        if self._making is None:
            self.dismiss(None)
        elif not self._cancelled:  # one under way cannot be stopped: dropped once done
            self._cancelled = True
            self._say_making(self._making, cancelled=True)


class EditScreen(ReplacesTheModel):
    """Change the experiment: task, cell (and the linear recurrences' scan, self-attention's heads
    and feed-forward width), sizes, optimizer, learning rate, clipping, truncation.

    Apply (or Enter in a field) first calls ``check(overrides)``, at once: a refused value stays on
    screen with the reason (the spec's one-line error naming the field) and nothing changes. Then
    ``build(overrides)`` runs in a thread behind a loading indicator (a large model takes seconds
    to build) and the screen is dismissed with what it returns (with trained steps unsaved, on a
    second Apply of the same values); a UserError it raises is shown like a refused value. Cancel
    (or Esc) dismisses with None.
    """

    FRAME_ID, WARNING_ID, DROPS = "edit", "edit-warning", "Applying starts a new, untrained model"
    AGAIN = "Apply (or Enter) again"

    def __init__(self, spec, check, build, unsaved_steps: Callable[[], int] = lambda: 0) -> None:
        super().__init__(unsaved_steps)
        self._spec = spec
        self._check, self._build = check, build
        self._shown_kind = spec.task["kind"]  # the task whose length the length field holds
        self._proposed_name = spec.name  # the name field's value until the user types another
        self._refused_values: list[Any] | None = None  # the fields' values the message under them refused
        self._all_options: dict[str, list[tuple[str, Any]]] = {}  # a limited Select's options, for every cell
        self._offered: dict[str, tuple] = {}  # the values a limited Select offers now
        self._held: dict[str, tuple[Any, Any]] = {}  # a limited field's value a cell refused, and its replacement

    def _options_of(self, field_id: str, options: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        """``options`` of the Select ``field_id``, kept: :meth:`_limit_to_the_cell` offers those the cell takes."""
        self._all_options[field_id] = options
        return options

    def _task_kinds(self) -> list[str]:
        # tasks that need a file can only come from a spec file; the rest can be picked here
        return [k for k in TASKS if "path" not in task_fields(k) or self._spec.task["kind"] == k]

    def compose(self) -> ComposeResult:
        s = self._spec
        # The title, the warning and the buttons stay in view: only the fields scroll on a terminal
        # shorter than the form (the focused field would otherwise scroll the warning away).
        with Vertical(classes="dialog", id="edit"):
            yield Label(f"Edit experiment: {s.name}", classes="dialog-title")
            yield Label("", id="edit-warning", classes="warning")
            # The layout for this width from the first frame (set on a resize only, a narrow terminal drew the
            # four columns, each value cut to a letter, for half a second), and set here: on the mounted grid it
            # restyled its 70 widgets again. The fields take the focus, not their scroll (focused first, it
            # restyled them all once more as the hidden size took it).
            narrow = "narrow" if self.app.size.width < EDIT_FOUR_COLUMNS_WIDTH else ""
            with VerticalScroll(id="edit-fields", can_focus=False), Grid(id="edit-grid", classes=narrow):
                yield Label("name (runs/NAME-TIME)")
                yield CompactInput(s.name, name="name", id="name")
                yield Label("task")
                yield CompactSelect([(k, k) for k in self._task_kinds()], value=s.task["kind"], allow_blank=False,
                                    name="task.kind", id="task-kind")
                yield Label("task length", id="task-length-label")  # "task delay" for copy (its field)
                yield CompactInput(str(s.task.get("length", s.task.get("delay", ""))), name="task.length",
                                   id="task-length")  # enabled or not by _enable_what_applies, as it mounts
                yield Label("cell")
                yield CompactSelect([(c, c) for c in CELLS], value=s.model.cell, allow_blank=False, name="model.cell",
                                    id="model-cell")
                # the sizes next to the cell, the cell's own fields after them: at 80x24 the focused hidden
                # size shows with the name, task and cell above it (under them, it opened scrolled past them)
                yield Label("hidden size")
                yield CompactInput(str(s.model.hidden_size), name="model.hidden_size", id="model-hidden_size")
                yield Label("layers")
                yield CompactInput(str(s.model.num_layers), name="model.num_layers", id="model-num_layers")
                yield Label("bidir. / non-causal")
                yield CompactSelect(self._options_of("model-bidirectional", [("no", False), ("yes", True)]),
                                    value=s.model.bidirectional, allow_blank=False, name="model.bidirectional",
                                    id="model-bidirectional")
                yield Label("nonlinearity (rnn)")
                yield CompactSelect([("tanh", "tanh"), ("relu", "relu")], value=s.model.nonlinearity, allow_blank=False,
                             name="model.nonlinearity", id="model-nonlinearity")
                yield Label("init")
                yield CompactSelect(self._options_of("model-init", [(i, i) for i in INITS]), value=s.model.init,
                                    allow_blank=False, name="model.init", id="model-init")
                yield Label("forget bias (lstm)")
                yield CompactInput(repr(s.model.forget_bias), name="model.forget_bias", id="model-forget_bias")
                yield Label("scan (min*, lru)")
                yield CompactSelect([(m, m) for m in METHODS], value=s.model.scan, allow_blank=False, name="model.scan",
                             id="model-scan")
                yield Label("heads (selfattention)")
                yield CompactInput(str(s.model.num_heads), name="model.num_heads", id="model-num_heads")
                yield Label("d_ff (attn, 0: 2H)")
                yield CompactInput(str(s.model.d_ff), name="model.d_ff", id="model-d_ff")
                yield Label("optimizer")
                yield CompactSelect([(o, o) for o in OPTIMIZERS], value=s.train.optimizer, allow_blank=False,
                                    name="train.optimizer", id="train-optimizer")
                yield Label("learning rate")
                yield CompactInput(repr(s.train.learning_rate), name="train.learning_rate", id="train-learning_rate")
                yield Label("clip norm (0 off)")
                yield CompactInput(repr(s.train.clip_norm), name="train.clip_norm", id="train-clip_norm")
                yield Label("truncate BPTT (0 off)")
                yield CompactInput(str(s.train.truncate), name="train.truncate", id="train-truncate")
                yield Label("steps")
                yield CompactInput(str(s.train.steps), name="train.steps", id="train-steps")
                yield Label("seed")
                yield CompactInput(str(s.seed), name="seed", id="seed")
            yield FormMessage("", id="edit-error", classes="error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Apply", variant="primary", id="apply")
                yield Button("Cancel", id="cancel")

    def on_resize(self) -> None:
        self._fit_columns(self.size.width)
        self.call_after_refresh(self._fit_fields)

    def _making_what(self) -> str:
        model = f"{self._what.get('model.cell')}, H={self._what.get('model.hidden_size')}"
        return f"building the new model ({model}) and its passes over the sequence shown"

    def _fit_columns(self, width: int) -> None:
        """Two columns of fields where the terminal is narrower than the four-column form."""
        self.query_one("#edit-grid").set_class(width < EDIT_FOUR_COLUMNS_WIDTH, "narrow")

    def _fit_fields(self) -> None:
        """The form as tall as its title, warning, buttons and every field (as laid out for this
        width), at most the terminal's height; the fields' scroll takes what room that leaves."""
        form, fields = self.query_one("#edit"), self.query_one("#edit-fields")
        around_fields = form.outer_size.height - fields.outer_size.height
        form.styles.height = around_fields + self.query_one("#edit-grid").outer_size.height

    def overrides(self) -> dict[str, Any]:
        """The form's values as dotted spec fields; text boxes parsed as numbers where they are."""
        values: dict[str, Any] = {}
        for widget in self.query("#edit-grid Select, #edit-grid Input"):
            key = widget.name
            if widget.disabled and widget.id not in CELL_LIMITED_FIELDS:  # (a limited one holds the value taken)
                continue
            if isinstance(widget, Select):
                values[key] = widget.value
            elif key == "name":
                values[key] = widget.value  # text, even where it reads as a number
            else:
                values[key] = number_or_text(widget.value)
        if values.get("task.length") == "":  # left empty (a task whose length is derived): its default
            values.pop("task.length")
        if "task.length" in values:
            length = values.pop("task.length")
            field = "delay" if "delay" in task_fields(values["task.kind"]) else "length"
            if field in task_fields(values["task.kind"]):
                values[f"task.{field}"] = length
        if values.get("model.cell") != "rnn":
            values["model.nonlinearity"] = "tanh"
        if values.get("model.cell") != "lstm":
            values["model.forget_bias"] = 0.0
        defaults = ModelSpec()
        if values.get("model.cell") != "leaky":  # the leaky cell's own fields go back to their defaults
            values.update({"model.tau_min": defaults.tau_min, "model.tau_max": defaults.tau_max,
                           "model.learn_tau": defaults.learn_tau})
        if values.get("model.cell") != "jordan":
            values["model.feedback"] = defaults.feedback
            values["train.teacher_forcing"] = False
        if values.get("model.cell") not in LINEAR_CELLS:
            values["model.scan"] = "sequential"
        if values.get("model.cell") in ALWAYS_BIASED:  # bias = false of another cell: no field here undoes it
            values["model.bias"] = True
        if values.get("model.cell") not in ATTENTION_CELLS:  # the heads and feed-forward width are
            # self-attention's: back to their defaults
            values["model.num_heads"] = ModelSpec.num_heads
            values["model.d_ff"] = ModelSpec.d_ff
        if values.get("task.kind") != self._spec.task["kind"]:
            # a different task: keep only the fields it has (the rest were the old task's)
            kind = values["task.kind"]
            values = {k: v for k, v in values.items() if not k.startswith("task.") or k == "task.kind"
                      or k[5:] in task_fields(kind)}
            values["task"] = {"kind": kind, **{k[5:]: v for k, v in values.items() if k.startswith("task.") and k != "task.kind"}}
            values = {k: v for k, v in values.items() if not k.startswith("task.")}
        return values

    @on(Button.Pressed, "#apply")
    @on(Input.Submitted)
    def apply(self) -> None:
        if self._making is not None:  # one build at a time
            return
        overrides = self.overrides()
        try:
            self._check(overrides)
        except UserError as exc:
            self._refuse(exc)
            return
        self.query_one("#edit-error", Label).update("")
        self._make(overrides, lambda: self._build(overrides))

    def _show_warning(self) -> None:
        super()._show_warning()
        self.call_after_refresh(self._fit_fields)  # the warning takes rows from the fields

    def _arm(self, unsaved: int) -> None:
        super()._arm(unsaved)
        self.call_after_refresh(self._fit_fields_keeping_the_focus)  # the warning says more: it takes rows

    def _fit_fields_keeping_the_focus(self) -> None:
        """:meth:`_fit_fields`, then the focused field scrolled back into view (the rows the warning
        took had it under the fold at 80x24: Enter again went to a field out of sight)."""
        self._fit_fields()
        # the field the loading cover took the focus from: Widget.focus() gives it back later
        # (call_later), so self.focused may still be None here, and the field was left out of sight
        self._keep_in_view(self._focus if self._focus is not None and self._focus.is_attached else self.focused)

    def _keep_in_view(self, field: Widget | None) -> None:
        """``field``, where it is one of the form's, scrolled back into view after a refit."""
        if field is not None and field in self.query("#edit-grid *"):
            self.call_after_refresh(self.query_one("#edit-fields").scroll_to_widget, field, animate=False)

    def _refuse(self, error: UserError | str) -> None:
        """Show why the form was refused under the fields (which alone scroll: it stays in view). A
        spec error names its field as the form labels it ("hidden size: ...", not "model.hidden_size:
        ..."), and that field takes the focus, scrolled into view, to be corrected."""
        message = str(error)
        field = getattr(error, "field", None)
        widget = next((w for w in self.query("#edit-grid > *") if field and w.name == field), None)
        if widget is not None:
            if message.startswith(f"{field}: "):
                message = f"{self._label_of(widget)}: {message.removeprefix(f'{field}: ')}"
            if widget.focusable:
                widget.focus()
        self._say_under_fields([message])

    def _say_under_fields(self, lines: list[str], note: bool = False) -> None:
        """``lines`` under the fields (in view: they alone scroll), an error's colour unless a ``note``
        (what choosing a cell changed), until a value changes; the fields give them rows."""
        message = self.query_one("#edit-error", Label)
        message.update("\n".join(lines))
        message.set_class(note, "note")
        self._refused_values = self._values()

    def _message_resized(self) -> None:
        """The message under the fields is taller or shorter (a note of up to 6 lines came or went): the
        fields give it their rows or take them back, the focused field kept in view. (Fitted on its
        update instead, the form was measured a layout behind: it grew as the note went.)"""
        if not self.is_attached:  # dismissed meanwhile
            return
        self._fit_fields()
        self._keep_in_view(self.focused)

    def on_mount(self) -> None:
        self._show_warning()
        self._enable_what_applies()
        hidden_size = self.query_one("#model-hidden_size")
        hidden_size.focus(scroll_visible=False)  # a field to type in (and Enter to apply) at once, in view
        # once laid out (focus's own scroll ran before, and left it under the fold at 100x30), scrolled
        # no further than that: the name, the task and the cell above it stay in view where they can
        self._keep_in_view(hidden_size)

    def _values(self) -> list[Any]:
        """What the form's fields hold now."""
        return [field.value for field in self.query("#edit-grid Input, #edit-grid Select")]

    @on(Input.Changed, "#edit-grid Input")
    @on(Select.Changed, "#edit-grid Select")
    def _edited(self) -> None:
        # a refusal speaks of the values it refused: gone once one is changed (not on a Changed
        # message of a value set before it, which may arrive after it)
        if self._refused_values is not None and self._values() != self._refused_values:
            self._refused_values = None
            self.query_one("#edit-error", Label).update("")
        if self._made is not None and self.overrides() != self._made[0]:  # (a late Changed of the same: kept)
            self._disarm()
        self._check_heads()

    def _check_heads(self, notes: Sequence[str] = ()) -> None:
        """Heads that do not divide the hidden size, said at once (the field tinted, the reason under the
        fields) as either is typed or self-attention chosen: the spec refused them only at Apply. After
        ``notes`` (what choosing a cell changed), which are said there too."""
        heads = self.query_one("#model-num_heads", Input)
        refusal = self._heads_refusal()
        heads.set_class(bool(refusal), "-invalid")
        refused = [f"{self._label_of(heads)}: {refusal}"] if refusal else []
        if notes or (refusal and self._refused_values is None):  # (another refusal of these values stays)
            self._say_under_fields([*notes, *refused], note=not refusal)  # gone once a value changes

    def _heads_refusal(self) -> str:
        """Why the spec refuses the heads typed with the hidden size typed, or "" (a value not a
        whole number yet, or not self-attention's: Apply names what is wrong with it)."""
        cell = self.query_one("#model-cell", Select).value
        heads = number_or_text(self.query_one("#model-num_heads", Input).value)
        hidden_size = number_or_text(self.query_one("#model-hidden_size", Input).value)
        if cell not in ATTENTION_CELLS or not isinstance(heads, int) or not isinstance(hidden_size, int):
            return ""
        return cell_refuses(cell, "model.num_heads", heads, hidden_size=hidden_size)

    @on(Select.Changed, "#task-kind")
    def _task_changed(self) -> None:
        """Another task: its own default length (or delay) in the length field, not the last task's;
        back to the spec's task, the spec's own. (Textual also posts Changed as the form mounts.)"""
        kind = self.query_one("#task-kind", Select).value
        if kind == self._shown_kind:
            return
        self._shown_kind = kind
        if kind == self._spec.task["kind"]:
            length = self._spec.task.get("length", self._spec.task.get("delay"))
        else:
            fields = task_fields(kind)
            length = fields.get("length", fields.get("delay", (None, "")))[0]  # None: derived (counting)
        self.query_one("#task-length", Input).value = "" if length is None else str(length)
        self._enable_what_applies()

    @on(Select.Changed, "#model-cell")
    def _enable_what_applies(self) -> None:
        """Only the fields of the chosen cell and task take input (and the focus): the others are
        dimmed, and :meth:`overrides` gives them their defaults. The name follows the task and cell
        (:func:`edited_name`) until the user types one."""
        cell, kind = self.query_one("#model-cell", Select).value, self.query_one("#task-kind", Select).value
        name_field = self.query_one("#name", Input)
        if name_field.value == self._proposed_name:
            self._proposed_name = edited_name(self._spec.name, (self._spec.task["kind"], self._spec.model.cell),
                                              (kind, cell))
            name_field.value = self._proposed_name
        for field, applies in FORM_CELL_FIELDS.items():
            self.query_one(f"#{field}").disabled = not applies(cell)
        changed = [note for field in CELL_LIMITED_FIELDS if (note := self._limit_to_the_cell(field, cell))]
        self._check_heads(changed)  # under the fields: at 80 columns three toasts covered the form for 8 s
        self.query_one("#task-length").disabled = not {"length", "delay"} & set(task_fields(kind))
        # copy's field is its delay (T = delay + 2 * its length of symbols): "length 5" read as T = 5
        self.query_one("#task-length-label", Label).update("task delay" if "delay" in task_fields(kind) else
                                                           "task length")

    def _limit_to_the_cell(self, field_id: str, cell: str) -> str:
        """Offer in ``field_id`` only the values the spec takes for ``cell`` (CELL_LIMITED_FIELDS),
        disabled where that is one. A value it refuses is replaced by the default, and held: a cell
        that takes it gets it back. Returns what was changed and why (the form offered what Apply
        then refused), or ""."""
        widget = self.query_one(f"#{field_id}")
        candidates = CELL_LIMITED_FIELDS[field_id]
        refuses = functools.partial(cell_refuses, cell, widget.name)
        taken = tuple(value for value in candidates if not refuses(value))
        is_select = isinstance(widget, Select)
        current = widget.value if is_select else number_or_text(widget.value)
        held = self._held.get(field_id)  # (the value refused, the one put in its place)
        changed = ""
        # refused for this cell, not for all (those the spec names at Apply: layers "abc" or 99)
        if refuses(current) and any(not cell_refuses(other, widget.name, current) for other in CELLS):
            if held is None or current != held[1]:
                self._held[field_id] = (current, taken[0])
            changed = f"{self._label_of(widget)} set to {self._shown(widget, taken[0])}: {refuses(current)}"
            value = taken[0]
        elif held is not None and current == held[1] and not refuses(held[0]):
            value = self._held.pop(field_id)[0]  # (back as it was: said by the field itself)
        else:
            value = current
            if held is not None and current != held[1]:  # chosen since: that is the value now
                del self._held[field_id]
        if is_select:
            if self._offered.get(field_id) != taken:
                self._offered[field_id] = taken
                widget.set_options(option for option in self._all_options[field_id] if option[1] in taken)
            widget.value = value
        elif value != current:
            widget.value = str(value)
        widget.disabled = len(taken) == 1
        return changed

    def _label_of(self, widget: Widget) -> str:
        """The form's label of a field (each field follows its label in the grid)."""
        grid = list(self.query_one("#edit-grid").children)
        return str(grid[grid.index(widget) - 1].content)

    def _shown(self, widget: Widget, value: Any) -> str:
        """``value`` as ``widget`` shows it (a Select's prompt: "no" for False)."""
        if isinstance(widget, Select):
            return next(str(prompt) for prompt, option in self._all_options[widget.id] if option == value)
        return str(value)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        super().action_cancel()


#: The open dialog pads names to the longest, up to this many cells (a longer one pushes its row's details on),
#: or as many as a wider terminal leaves beside a run's details (OPEN_ROW_CELLS).
OPEN_NAME_CELLS = 32
#: Cells of a run's row besides its name: "run    ", step, status, eval loss, task, cell, H, a setting or two.
OPEN_ROW_CELLS = 90
#: A run's row in the open dialog names at most this many settings its sweep changed.
OPEN_SETTINGS = 2
#: The open dialog's width where the terminal is wider (lab.tcss #open); it grows to its longest
#: row where the terminal has room (a run's row ends with its task, cell and H).
OPEN_DIALOG_CELLS = 110
#: Columns of the open dialog besides a row of its list: its border and padding (6), the list's (4) and
#: its scrollbar (2); the dialog grows by them past its longest row. (The list cuts each row at its own
#: edge, lab.tcss: a row cut here to the dialog's width less a guess of them stopped short of the edge.)
OPEN_FRAME_CELLS = 12
#: ... and cuts a damaged run's reason to this many where the terminal's width is not known.
OPEN_ABOUT_CELLS = 50
#: ... and leaves out a run's problem where fewer cells than this are left for it in its row.
OPEN_PROBLEM_CELLS = 12
#: The cells a row of the open dialog begins with: its kind, "run    " or "preset ".
OPEN_KIND_CELLS = 7
#: The open dialog lists at most this many entries, saying how many it leaves out: a list of 3000 runs took
#: 0.3 s to draw again on each letter typed (an OptionList measures each row), and none is read down so far.
OPEN_LISTED = 500


def _without_kind(typed: str) -> str:
    """What was typed in the open dialog, without the word its rows begin with ("preset text",
    "run runs/x" as a row reads): the name alone."""
    typed = typed.strip()
    kind, _, rest = typed.partition(" ")
    if kind in ("preset", "run") and rest.strip() and not os.path.lexists(os.path.expanduser(typed)):
        return rest.strip()  # (a folder named "run 2" is itself)
    return typed


class OpenListing(NamedTuple):
    """What the open dialog lists, read from the disk once (:func:`open_listing`) and fitted to each width of
    the terminal (:func:`fitted_choices`): reading a folder of 3000 runs takes some 15 s."""
    #: The runs, the most recently updated first.
    runs: list
    #: What a sweep changed, as rnnlab runs shows it: the differing spec fields of each experiment's runs.
    differing: dict[str, list[str]]
    #: Each preset's (name, task, cell, hidden size).
    presets: list[tuple[str, str, str, int]]


def open_listing(folders: Sequence[Path]) -> OpenListing:
    """The runs in ``folders`` (those that exist; each run once) and the presets, as the open dialog lists
    them (slow: every run's files are read)."""
    from ..train.runs import differing_fields, list_runs

    runs = {}
    for folder in dict.fromkeys(folders):
        try:
            for run in list_runs(folder):
                runs.setdefault(run.path.resolve(), run)
        except UserError:  # a folder that is not there, or cannot be read, lists nothing
            continue
    listed = sorted(runs.values(), key=lambda r: r.updated, reverse=True)
    by_name: dict[str, list] = {}
    for run in listed:
        by_name.setdefault(run.name, []).append(run)
    differing = {name: differing_fields(group) for name, group in by_name.items()}
    return OpenListing(listed, differing, _preset_summaries())


@functools.cache
def _preset_summaries() -> list[tuple[str, str, str, int]]:
    """Each shipped preset's (name, task, cell, hidden size): they never change while the lab runs."""
    from ..spec import load_preset

    return [(name, (spec := load_preset(name)).task["kind"], spec.model.cell, spec.model.hidden_size)
            for name in preset_names()]


def count_runs(folders: Sequence[Path]) -> int:
    """How many run directories ``folders`` hold (each folder once), as :func:`open_listing` will list them,
    but found at the cost of a look at each entry: what the open dialog says it is listing meanwhile."""
    from ..train.runs import is_run_dir

    count = 0
    for folder in {Path(os.path.realpath(folder)): None for folder in folders}:
        try:
            count += 1 if is_run_dir(folder) else sum(is_run_dir(child) for child in folder.iterdir())
        except (UserError, OSError):  # (listed as nothing, as open_listing lists it)
            continue
    return count


def open_choices(folders: Sequence[Path], columns: int = 0) -> list[tuple[str, Text, str]]:
    """What the open dialog lists of ``folders``: :func:`fitted_choices` of their :func:`open_listing`."""
    return fitted_choices(open_listing(folders), columns)


def fitted_choices(listing: OpenListing, columns: int = 0) -> list[tuple[str, Text, str]]:
    """What the open dialog lists: the runs of ``listing``, the most recently updated first, then the
    presets; each ``(target, label, words)``, the words those that typing narrows the list by (its name,
    task and cell). ``columns``: the terminal's width (0: unknown, rows whole), where wide enough a long
    run's path is shown whole (else cut to OPEN_NAME_CELLS, its end kept); a row's details are fitted to
    it, each whole or left out (:func:`_run_details`)."""
    from ..train.runs import setting_text

    listed, differing = listing.runs, listing.differing
    names = [name for name, *_ in listing.presets]
    room = max(OPEN_NAME_CELLS, columns - OPEN_FRAME_CELLS - OPEN_ROW_CELLS)
    # a run's target: its path, "./name" in the working directory (not a preset's name)
    targets = [str(run.path) if run.path.parent != Path(".") else f".{os.sep}{run.path}" for run in listed]
    width = min(max(map(len, [*targets, *names])), room)  # (+ 2 for a "./" no run had cost 80 columns)
    paths_of = {}  # each experiment's task.path files, where its runs differ in them: ...
    for run in listed:
        paths_of.setdefault(run.name, set()).add(str(run.spec.get("task.path")))

    def setting(run, key: str) -> str:
        value = run.spec.get(key)
        if key == "task.path" and isinstance(value, str):  # the file's name, where it tells the runs apart:
            others = {Path(other).name for other in paths_of[run.name]}  # a cut path showed "/tm…"
            if len(others) == len(paths_of[run.name]):
                return Path(value).name
        return setting_text(value)

    # the cells a row's details have: the list's row (the terminal less the dialog's frame: a narrower dialog is
    # the terminal's width) less its kind ("run    ") and padded name; none known (0 columns): all of them
    details_room = columns - OPEN_FRAME_CELLS - OPEN_KIND_CELLS - width - 2 if columns else None
    # "eval 7.04e-05" in every row where "eval loss 7.04e-05" would be left out of one (a default run at 80 columns)
    long_form = [(_run_progress(run), _eval_text(run, "eval loss")) for run in listed if run.status != "damaged"]
    crowded = details_room is not None and any(len(progress) + 2 + len(loss) > details_room
                                               for progress, loss in long_form if loss)
    eval_label = "eval" if crowded else "eval loss"
    choices = []
    for run, target in zip(listed, targets):
        varied = [f"{key.rpartition('.')[2]}={setting(run, key)}"
                  for key in differing.get(run.name, ())[:OPEN_SETTINGS]]
        shown = target if len(target) <= width else "…" + target[len(target) - width + 1:]  # its own end tells
        label = Text.assemble(("run    ", "dim"), (f"{shown:<{width}}", "bold"), "  ",
                              _run_details(run, varied, details_room, eval_label))
        choices.append((target, label, f"{target} {run.task} {run.cell}"))
    for name, task, cell, hidden_size in listing.presets:
        what = _fitted_items([task, cell, f"H={hidden_size}"], details_room)
        label = Text.assemble(("preset ", "dim"), (f"{name:<{width}}", "bold"), f"  {what}")
        choices.append((name, label, f"{name} {task} {cell}"))
    return choices


def _fitted_items(items: Sequence[str], room: int | None) -> str:
    """``items`` joined with ", " (a run's task, cell, H and settings), as many of the first as fit whole in
    ``room`` cells (None: all; none fitting: "")."""
    for count in range(len(items), 0, -1):
        text = ", ".join(items[:count])
        if room is None or cell_len(text) <= room:
            return text
    return ""


def _run_progress(run) -> str:
    """How far a run of the open dialog trained: "200/200 completed" (no "step": at 80 columns a default run's
    path left the eval loss cut), "step 12 interrupted" where its steps are unknown, "untrained"."""
    step = "" if run.step is None else (f"step {run.step}" if run.steps is None else f"{run.step}/{run.steps}")
    return f"{step} {run.status}".strip()


def _eval_text(run, label: str) -> str:
    """A run's eval loss as the open dialog's row writes it after ``label`` ("eval loss"), "" if none."""
    loss = (run.eval or {}).get("loss")
    return f"{label} {loss:.4g}" if isinstance(loss, (int, float)) and not isinstance(loss, bool) else ""


def _run_details(run, varied: Sequence[str], room: int | None, eval_label: str = "eval loss") -> Text:
    """A run's details in its row of the open dialog: how far it trained first (what tells runs of one
    experiment apart), its eval loss, what it is (task, cell, H and ``varied``, the settings its sweep
    changed), then a problem of a run that opens (a setting edited since its checkpoint: only t refuses).
    ``eval_label`` names the eval loss ("eval" where the list is short of room).

    In ``room`` cells (None: all) a field is whole or left out, the list of what it is losing its last
    items first, rather than cut at the list's edge: 'eval loss 7.04e-…' read as another number. A
    problem, words, is cut after its last word that fits (a damaged run's, its row's one detail, too)."""
    left = sys.maxsize if room is None else room
    if run.status == "damaged":
        return Text(clipped_at_words(f"damaged: {run.problem}", min(OPEN_ABOUT_CELLS, left) if room is None
                                      else left), "red")
    details = Text()

    def add(text: str, style: str = "") -> None:
        nonlocal left
        cost = cell_len(text) + (2 if details else 0)  # two spaces after the field before
        if text and cost <= left:
            details.append(f"{'  ' if details else ''}{text}", style)
            left -= cost

    add(_run_progress(run), "dim")
    add(_eval_text(run, eval_label), "dim")
    add(_fitted_items([run.task, run.cell, f"H={run.hidden_size}", *varied], left - 2 * bool(details)))
    if run.problem and left - 2 >= OPEN_PROBLEM_CELLS:  # (fewer cells than that tell nothing)
        add(clipped_at_words(run.problem, left - 2), "yellow")
    return details


class OpenScreen(ReplacesTheModel):
    """Open another experiment in the lab: one of the runs in ``folders`` (beside the open one, in ./runs
    and in ./) or the presets, as :func:`open_choices` lists them (again as the terminal's width changes:
    its rows are fitted to it), or any preset, spec file or run directory typed (a folder of runs typed
    lists those instead). The runs are read in a thread (a folder of thousands takes seconds), the dialog
    saying how many meanwhile; Esc, a preset's name or a path typed, do not wait for it.

    Typing narrows the list to the entries whose name, task or cell holds it, one named so exactly
    first; Enter opens the highlighted entry (up and down move it), or what was typed where no
    entry is left; a folder of runs typed, and no entry named so nor chosen with up or down, lists
    that folder's runs. ``load(target)`` runs in a thread behind a loading indicator (a cell not used
    yet compiles its kernels) and the screen is dismissed with what it returns (with trained steps
    unsaved, on a second Enter on the same target); a UserError it raises is shown under the field
    and the dialog stays. Esc cancels (``escape`` says what that
    does: the lab's first dialog, with no lab behind it, quits)."""

    BINDINGS = [Binding("down", "move(1)", "next", show=False), Binding("up", "move(-1)", "previous", show=False)]
    FRAME_ID, WARNING_ID, DROPS = "open", "open-warning", "Opening another experiment drops this model"
    AGAIN = "opening it again"
    #: Rows of the dialog besides its list: borders and padding 4, title 2, field 3, hint 1, list margin 1.
    FRAME_ROWS = 11

    def __init__(self, folders: Sequence[Path], load,
                 unsaved_steps: Callable[[], int] = lambda: 0, escape: str = "cancels") -> None:
        super().__init__(unsaved_steps)
        self._folders, self._load, self._escape = folders, load, escape
        self._listing: OpenListing | None = None  # open_listing(folders), once read (None: being read) ...
        self._listing_worker: Worker | None = None  # ... by this worker
        self._counted: int | None = None  # the runs it is reading, as count_runs counted them
        self._choices: list[tuple[str, Text, str]] = []  # the listing's choices, fitted to ...
        self._fitted_to: int | None = None  # ... this many columns
        self._shown: list[str] = []  # the targets of the options listed, by index (an option's id)
        self._matched = 0  # the entries that what is typed leaves, listed or not (OPEN_LISTED)
        self._moved = False  # the highlight moved (up/down) since the text last changed: Enter opens it

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="open"):
            yield Label("Open a run, a preset or a spec file", classes="dialog-title")
            yield Input(placeholder="type to narrow the list, or a path (a run directory, a spec .toml)",
                        id="open-input", select_on_focus=False)  # letters typed in the list go on from there
            yield Label("", id="open-error", classes="error", markup=False)  # it may quote what was typed
            yield Label("", id="open-warning", classes="warning")
            yield Label("", id="open-listing", classes="dim")  # the runs being read
            yield OptionList(id="open-list")
            yield Label(f"↑/↓ choose, Enter opens, Esc {self._escape}", classes="dim")

    def on_mount(self) -> None:
        self.query_one("#open-error").display = False
        self._show_warning()
        self._read_folders()
        self._list(self.query_one("#open-input", Input).value)  # keys typed before the dialog drew count
        self.query_one("#open-input", Input).focus()

    def on_resize(self) -> None:
        self._list(self.query_one("#open-input", Input).value)  # fitted again, not read again

    @property
    def listed(self) -> bool:
        """Whether the runs of its folders are read and listed (their reading, in a thread, is over)."""
        return self._listing is not None

    def _read_folders(self) -> None:
        """Read the runs of the folders in a thread (a newer reading, of a folder typed, replaces one under
        way); the dialog says how many meanwhile, and lists them once they are read."""
        self._listing, self._choices, self._fitted_to, self._counted = None, [], None, None
        self._say_listing()
        self._listing_worker = self.run_worker(functools.partial(self._read_in_thread, list(self._folders)),
                                               thread=True, exit_on_error=False, group="listing", exclusive=True)

    def _read_in_thread(self, folders: list[Path]) -> OpenListing | None:
        from .workers import run_until_cancelled

        worker = get_current_worker()
        count = count_runs(folders)
        self.app.call_from_thread(self._counted_runs, worker, count)
        # (not waited for once cancelled: Esc then q quits at once, its reading left to end in a daemon thread)
        return run_until_cancelled(lambda: open_listing(folders), worker, "rnnlab-open-listing")

    def _counted_runs(self, worker: Worker, count: int) -> None:
        if worker is self._listing_worker and self._listing is None:
            self._counted = count
            self._say_listing()

    def _say_listing(self) -> None:
        """Say which runs are being read, or, once they are listed, how many entries the list leaves out."""
        label = self.query_one("#open-listing", Label)
        label.display = self._listing is None or self._matched > OPEN_LISTED
        if self._listing is None:
            what = "runs" if self._counted is None else counted(self._counted, "run")
            *others, last = dict.fromkeys(os.path.join(str(folder), "") for folder in self._folders)  # "runs/"
            where = f"{', '.join(others)} and {last}" if others else last
            label.update(f"listing {what} in {where} …")
        elif label.display:
            label.update(f"the first {OPEN_LISTED} of {self._matched} listed: type to narrow them")

    def _listing_done(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.SUCCESS and event.worker.result is not None:
            self._listing = event.worker.result
        elif event.state == WorkerState.ERROR:  # (each run's and folder's own problems are listed, not raised)
            self._listing = OpenListing([], {}, _preset_summaries())
            self.notify(f"cannot list the runs: {event.worker.error}", severity="error")
        else:
            return
        self._listing_worker = None
        self._say_listing()
        self._list(self.query_one("#open-input", Input).value)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # (textual calls ReplacesTheModel's handler after this one, for the worker making the model)
        if event.worker is self._listing_worker:
            event.stop()
            self._listing_done(event)

    def _list(self, typed: str) -> None:
        """List the choices that ``typed`` leaves, each one line (the list cuts it at its edge, lab.tcss; ids
        are indices: a run in ./ and a preset may have one name), as many rows as the terminal has; none
        while the runs are read."""
        if self._listing is not None and self._fitted_to != self.app.size.width:
            self._fitted_to = self.app.size.width
            self._choices = fitted_choices(self._listing, self._fitted_to)
        wanted = _without_kind(typed).casefold()
        matches = [(target, label) for target, label, words in self._choices if wanted in words.casefold()]
        matches.sort(key=lambda choice: choice[0].casefold() != wanted)  # stable: the rest keep their order
        self._matched = len(matches)
        matches = matches[:OPEN_LISTED]
        self._shown = [target for target, _ in matches]
        options = self.query_one("#open-list", OptionList)
        self.query_one("#open").styles.width = self._dialog_width()
        options.set_options(Option(label, id=str(k)) for k, (_, label) in enumerate(matches))
        options.highlighted = 0 if matches else None
        options.display = bool(matches)  # no empty box under a typed path
        self._say_listing()
        self._fit_list()

    def _dialog_width(self) -> int:
        """As wide as its longest row (of all, not only those typing leaves: it keeps its width), at
        least OPEN_DIALOG_CELLS, at most the terminal; a row is cut to the room inside."""
        longest = max((label.cell_len for _, label, _ in self._choices), default=0) + OPEN_FRAME_CELLS
        return min(max(longest, OPEN_DIALOG_CELLS), self.app.size.width)

    def _fit_list(self) -> None:
        """The list's rows: what the terminal leaves beside the dialog's frame and its messages."""
        messages = (self.query_one("#open-error", Label), self.query_one("#open-warning", Label),
                    self.query_one("#open-listing", Label))
        inside = max(self._dialog_width() - 6, 1)  # the dialog's borders and padding (lab.tcss .dialog);
        # at least a column, in a terminal a few wide: rich's wrap into none raises
        taken = self.FRAME_ROWS + sum(len(Text(str(message.content)).wrap(self.app.console, inside))
                                      for message in messages if message.display)
        self.query_one("#open-list", OptionList).styles.max_height = max(self.app.size.height - taken, 3)

    @on(Input.Changed, "#open-input")
    def _narrow(self, event: Input.Changed) -> None:
        self._disarm()
        self._list(event.value)
        self._moved = False
        self.query_one("#open-error").display = False

    def on_key(self, event) -> None:
        """Letters typed while the list has the focus (Tab) go to the field, to narrow it."""
        if self.focused is self.query_one("#open-list") and event.is_printable and event.character:
            field = self.query_one("#open-input", Input)
            field.focus()
            field.insert_text_at_cursor(event.character)
            event.stop()
            event.prevent_default()

    def action_move(self, by: int) -> None:
        options = self.query_one("#open-list", OptionList)
        if options.option_count:
            current = options.highlighted if options.highlighted is not None else -by
            options.highlighted = min(max(current + by, 0), options.option_count - 1)
            self._moved = True

    @on(Input.Submitted, "#open-input")
    def _submitted(self, event: Input.Submitted) -> None:
        typed = _without_kind(event.value)
        options = self.query_one("#open-list", OptionList)
        chosen = options.highlighted is not None and options.option_count
        exact = chosen and self._shown[options.highlighted].casefold() == typed.casefold()
        if typed and not exact and not self._moved and self._lists_runs(typed):
            return  # a folder of runs typed ("runs" also narrows the list to the runs in it): its runs
        if not chosen and self._listing is None and not self._names_one(typed):  # a run's name, in part?
            self._refuse("the runs are still being listed: Enter chooses among them once they are (a preset's "
                         "name or a path opens now)")
            return
        if chosen:
            self._open(self._shown[options.highlighted])
        elif typed:
            self._open(typed)
        else:
            self._refuse("type a preset name, a spec .toml or a run directory")

    def _lists_runs(self, typed: str) -> bool:
        """A folder of runs typed: list its runs (and the presets) to choose from; True if it is one."""
        from ..train.runs import holds_runs

        folder = Path(typed).expanduser()
        if not holds_runs(folder):  # (one that cannot be looked into: opening it says why)
            return False
        self._folders = [folder]
        self._read_folders()
        self.query_one("#open-input", Input).value = ""  # lists them all (Input.Changed), once read
        return True

    @staticmethod
    def _names_one(typed: str) -> bool:
        """Whether ``typed`` names a preset or a path that is there: what opens without the list."""
        return typed in preset_names() or os.path.lexists(os.path.expanduser(typed))

    @on(OptionList.OptionSelected, "#open-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self._open(self._shown[event.option_index])

    def _making_what(self) -> str:
        return f"opening {self._what}"

    def _open(self, target: str) -> None:
        self.query_one("#open-error").display = False
        self._make(target, lambda: self._load(target))

    def _arm(self, unsaved: int) -> None:
        super()._arm(unsaved)
        self._fit_list()  # the warning says more: the list gives it rows, the chosen entry kept

    def _refuse(self, error: UserError | str) -> None:
        self._moved = False  # the list is drawn again, its first entry highlighted
        message = self.query_one("#open-error", Label)
        message.update(str(error))
        message.display = True
        self._list(self.query_one("#open-input", Input).value)  # the list gives the message its rows
        self.query_one("#open-input", Input).focus()  # to be corrected
