"""The views of the architecture labs (:mod:`rnnlab.labs`): one :class:`~textual.screen.Screen`
per lab, each owning its bindings, panels and messages, built on the shared widgets
(:mod:`rnnlab.tui.widgets`: heatmaps, line plots, colour bars).

:data:`SCREENS` maps a lab's name to ``"module:Class"`` of its screen; the screen's constructor
takes the lab's engine. :class:`LabScreenApp` runs one of them as the whole app
(``python -m rnnlab.tui.labs NAME``; ``rnnlab tui NAME`` does the same).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Input, Label, Static

from ...errors import UserError, counted
from ...labs import lab_class
from ..screens import PromptScreen
from ..terminal import (ConfirmQuit, ExitsOnSignal, FixedTheme, KeysFollowDialogs, PlainNotices, first_fit,
                        scroll_pages, training_goes_on)

#: lab name -> "module:Class" of its Screen (constructor: ``Screen(engine)``).
SCREENS: dict[str, str] = {
    "treebank": "rnnlab.tui.labs.tree:TreeLabScreen",
    "seq2seq": "rnnlab.tui.labs.seq2seq:Seq2SeqScreen",
    "esn": "rnnlab.tui.labs.esn:EsnScreen",
}


#: Columns of Textual's Header that its title does not get: the icon (8) and the clock's space (10).
HEADER_CHROME = 18

#: The quit keys as each lab's help lists them (the app's binding, :class:`LabScreenApp`).
QUIT_HELP = ("q, ctrl+c", "quit")
#: ... in a lab that trains (and cannot save what it trained): :meth:`LabScreenApp.action_quit`.
QUIT_HELP_TRAINED = ("q, ctrl+c", "quit (after training: press twice; Esc between keeps the lab open)")


def trained_count(count: int, unit: str) -> str:
    """``"938 trained steps"``, ``"1 trained epoch"``; "" for none (nothing to lose, nothing to ask)."""
    return counted(count, f"trained {unit}") if count else ""


def changes_said(changes: dict[str, Any]) -> str:
    """``{"steps": 3, "eval_size": 6}`` -> ``"steps 3, eval_size 6"``: options changed, as a message says them."""
    return ", ".join(f"{name} {value}" for name, value in changes.items())


def model_stays(changes: dict[str, Any], trained: str) -> str:
    """What a change that kept the model says: ``"steps 3: the model stays with its 2 trained steps"``
    (``trained`` as :func:`trained_count` writes it; "" for an untrained model)."""
    return f"{changes_said(changes)}: the model stays" + (f" with its {trained}" if trained else "")


def or_list(names: Sequence[str]) -> str:
    """``"steps"``, ``"steps or eval_size"``, ``"steps, eval_every or eval_size"``."""
    return " or ".join(filter(None, [", ".join(names[:-1]), *names[-1:]]))


def fit_sub_title(screen: Screen, width: int, *forms: str) -> None:
    """The screen's sub-title: the first of ``forms`` (longest first) that fits the header beside
    its title ("rnnlab — treebank: ..."), else the last: the header would cut it with "…" mid-word
    ("450 trainin…" at 80 columns). ``width`` is the terminal's (0: not laid out yet, the first)."""
    title = screen.title if screen.title is not None else screen.app.title
    room = width - HEADER_CHROME - len(title) - len(" — ") if width else None
    screen.sub_title = first_fit(forms, room, fallback=forms[-1])


class _FitsTheList(Label):
    """A line of the options dialog whose height follows its text (the error, the warning): a new height
    fits the list again, measured once laid out. Fitted from the handler that set the text, the list was
    measured before the error's new lines were laid out, in a terminal though not under the pilot: at 80x24
    a three-line error showed two, the hint under it cut off."""

    def on_resize(self) -> None:
        if isinstance(self.screen, OptionsPrompt):
            self.screen.call_after_refresh(self.screen._fit_list)


class OptionsPrompt(PromptScreen):
    """A lab's options as ``name=value`` text, pre-filled with ``value``. Above the field, ``rows``
    list the options, ``(name, current value, what it takes)``, in a list that scrolls where the
    terminal is too short for it (PgUp/PgDn; the field keeps the focus, its error and the hint stay
    in view). ``accept(text)`` applies the text, as :class:`PromptScreen`'s does: a UserError is
    shown under the field and the dialog stays.

    ``lost`` names the trained work that applying drops (``"938 trained steps"``; "" for none, as
    in a lab that cannot lose any): the dialog then says so above the field, and a text for which
    ``changes(text)`` is true takes a second Enter, the first saying what it would drop, as the main
    lab's edit form and quit do (the labs cannot save a model). ``changes`` checks the text the
    lab's own way, so a bad value is named at once (its UserError), not after the confirmation.
    ``kept`` names the options a change of which alone keeps the trained work (the lab applies them
    in place; ``changes`` is then false for such a text): the warning says so."""

    DEFAULT_CSS = """
    OptionsPrompt .dialog {
        max-height: 100%;  /* never taller than the terminal: the screen would scroll, the field with it */
    }
    OptionsPrompt #options-scroll {
        height: auto;
        margin-bottom: 1;
    }
    OptionsPrompt #options-table {
        height: auto;
        text-wrap: nowrap;  /* a long note cut short, not wrapped under the names */
        text-overflow: ellipsis;
    }
    OptionsPrompt #prompt-warning {  /* after training: applying drops it (a second Enter) */
        width: 100%;
        color: $warning;
        margin-bottom: 1;
    }
    OptionsPrompt #prompt-warning.armed {
        text-style: bold;
    }
    """
    BINDINGS = [Binding("pagedown", "scroll_options(1)", "options down", show=False),
                Binding("pageup", "scroll_options(-1)", "options up", show=False)]
    #: Columns of the value, at most: a longer one (a seed of 19 digits) pushes its note right.
    VALUE_WIDTH = 12
    #: The hint under the field, and where the list is cut (one line each down to 60 columns).
    HINT, SCROLL_HINT = "Enter to apply, Esc to cancel", "Enter applies, Esc cancels, PgUp/PgDn scroll"

    def __init__(self, title: str, rows: Sequence[tuple[str, str, str]], value: str, accept, *,
                 placeholder: str = "", lost: str = "", changes: Callable[[str], object] | None = None,
                 kept: Sequence[str] = ()) -> None:
        super().__init__(title, value, accept, placeholder=placeholder)
        self._rows, self._lost, self._changes, self._kept = list(rows), lost, changes, list(kept)
        self._armed: str | None = None  # the text a first Enter would apply: Enter again on it applies

    def options_table(self) -> Text:
        """The rows as a table: names right-aligned, the values, the notes dimmed."""
        name_width = max((len(name) for name, _, _ in self._rows), default=0)
        value_width = min(max((len(value) for _, value, _ in self._rows), default=0), self.VALUE_WIDTH)
        table = Text()
        for name, value, note in self._rows:
            table.append(f"{name:>{name_width}}  ", style="bold").append(f"{value:<{value_width}}")
            table.append(f"  {note}\n", style="dim")
        table.rstrip()
        return table

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="dialog-title")
            with VerticalScroll(id="options-scroll", can_focus=False):  # the field keeps the focus
                yield Static(self.options_table(), id="options-table")
            if self._lost:
                yield _FitsTheList(self._warning_text(), classes="warning", id="prompt-warning")
            yield Input(value=self._value, placeholder=self._placeholder, id="prompt-input")
            yield _FitsTheList("", id="prompt-error", classes="error", markup=False)  # it may quote what was typed
            yield Label(self.HINT, classes="dim", id="prompt-hint")

    def _warning_text(self) -> str:
        unless = f", unless it changes only {or_list(self._kept)}" if self._kept else ""
        return f"Applying a change drops the {self._lost} (this lab cannot save them){unless}."

    @on(Input.Changed)
    def disarm(self, event: Input.Changed) -> None:
        """An edit after a first Enter: the "Enter again drops ..." no longer holds for this text
        (it may change only what keeps the model, or another option, which is asked about anew)."""
        if self._armed is not None and event.value != self._armed:
            self._armed = None
            warning = self.query_one("#prompt-warning", Label)
            warning.update(self._warning_text())
            warning.remove_class("armed")
            self.call_after_refresh(self._fit_list)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_list)

    def _fit_list(self) -> None:
        """The list's rows: what the terminal leaves beside the rest of the dialog (its frame, the
        title, the warning, the field, the error and the hint, each as tall as it wraps now)."""
        if not self.is_attached:
            return
        try:
            dialog, scroll = self.query_one(".dialog"), self.query_one("#options-scroll")
            hint = self.query_one("#prompt-hint", Label)
        except NoMatches:  # closing: an Enter's dismissal removes its widgets, in no set order
            return
        others = sum(w.outer_size.height + w.styles.margin.bottom for w in dialog.children if w is not scroll)
        taken = dialog.styles.gutter.height + others + scroll.styles.margin.height
        room = max(self.app.size.height - taken, 3)
        scroll.styles.max_height = room
        text = self.SCROLL_HINT if len(self._rows) > room else self.HINT
        if str(hint.content) != text:  # the longer hint may wrap in a narrow dialog: measured again
            hint.update(text)
            self.call_after_refresh(self._fit_list)

    def action_scroll_options(self, pages: int) -> None:
        """PgDn/PgUp: the list by a page, the field keeping the focus."""
        scroll_pages(self.query_one("#options-scroll"), pages)

    @on(Input.Submitted)
    def submit(self, event: Input.Submitted) -> None:
        event.prevent_default()  # PromptScreen's own handler runs once, from here (super)
        self.call_after_refresh(self._fit_list)  # an error or the warning may take another line
        if self._lost and self._changes is not None and event.value != self._armed:
            try:  # a bad value is named now, not after the confirmation
                changes = self._changes(event.value)
            except UserError as exc:
                self.query_one("#prompt-error", Label).update(str(exc))
                return
            if changes:
                self._armed = event.value
                self.query_one("#prompt-error", Label).update("")
                warning = self.query_one("#prompt-warning", Label)
                warning.update(f"Enter again drops the {self._lost} for a fresh model; Esc keeps them.")
                warning.add_class("armed")
                return
        super().submit(event)


def screen_class(name: str) -> Any:
    module, _, cls = SCREENS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


class LabScreenApp(ConfirmQuit, ExitsOnSignal, KeysFollowDialogs, FixedTheme, PlainNotices, App[None]):
    """An app that shows one architecture lab: the engine is opened first (errors are the
    caller's, before the terminal is taken), then its screen is pushed."""

    TITLE = "rnnlab"
    CSS_PATH = "../lab.tcss"  # the shared dialogs (help, prompts); the labs' own ids are prefixed
    # ctrl+c quits, as in the main lab (not Textual's hint)
    BINDINGS = [Binding("q,ctrl+c", "quit", "quit", key_display="q"),
                Binding("escape", "cancel_quit", "after a first q: keep the lab open", show=False)]

    def __init__(self, name: str, options: dict | None = None, engine: Any = None) -> None:
        super().__init__()
        self.lab_name = name
        self.engine = engine if engine is not None else lab_class(name).open(options)
        self.lab_screen: Any = None

    def on_unmount(self) -> None:
        self.restore_signals()

    def on_mount(self) -> None:
        self.exit_on_signals()
        self.lab_screen = screen_class(self.lab_name)(self.engine)
        self.push_screen(self.lab_screen)

    def save_before_exit(self, why: str) -> str:
        """No architecture lab can save its model: what the exit lost, said (training stopped)."""
        unsaved = getattr(self.lab_screen, "unsaved_work", None)
        lost = unsaved() if unsaved is not None else ""
        stop = getattr(self.engine, "stop_training", None)
        if stop is not None and getattr(self.engine, "training", False):
            stop()
        return f"{why}: lost {lost} (this lab cannot save a model)" if lost else ""

    def quit_warning(self) -> str:
        """Trained work (the lab's ``unsaved_work()``, e.g. "938 trained steps"): no lab can save
        its model, so q asks again, as the main lab does."""
        unsaved = getattr(self.lab_screen, "unsaved_work", None)
        lost = unsaved() if unsaved is not None else ""
        going_on = training_goes_on(self.engine)
        if not lost:
            return ""
        return f"{lost} would be lost (this lab cannot save them){going_on}: q (or ctrl+c) again quits, Esc stays"
