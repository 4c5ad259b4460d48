"""The views of the architecture labs (:mod:`rnnlab.labs`): one :class:`~textual.screen.Screen`
per lab, each owning its bindings, panels and messages, built on the shared widgets
(:mod:`rnnlab.tui.widgets`: heatmaps, line plots, colour bars).

:data:`SCREENS` maps a lab's name to ``"module:Class"`` of its screen; the screen's constructor
takes the lab's engine. :class:`LabScreenApp` runs one of them as the whole app
(``python -m rnnlab.tui.labs NAME``; ``rnnlab tui NAME`` does the same).
"""

from __future__ import annotations

import importlib
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from ...errors import counted
from ...labs import lab_class
from ..terminal import (ConfirmQuit, ExitsOnSignal, FixedTheme, KeysFollowDialogs, PlainNotices, first_fit,
                        training_goes_on)

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


def fit_sub_title(screen: Screen, width: int, *forms: str) -> None:
    """The screen's sub-title: the first of ``forms`` (longest first) that fits the header beside
    its title ("rnnlab — treebank: ..."), else the last: the header would cut it with "…" mid-word
    ("450 trainin…" at 80 columns). ``width`` is the terminal's (0: not laid out yet, the first)."""
    title = screen.title if screen.title is not None else screen.app.title
    room = width - HEADER_CHROME - len(title) - len(" — ") if width else None
    screen.sub_title = first_fit(forms, room, fallback=forms[-1])


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
