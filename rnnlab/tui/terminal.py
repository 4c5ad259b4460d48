"""What the terminal can show: the lab's colour maps need true colour."""

from __future__ import annotations

import weakref

from textual.app import App

_warned: weakref.WeakSet[App] = weakref.WeakSet()


def warn_without_true_colour(app: App, what: str) -> None:
    """Once per app, a notification that ``what`` (e.g. "heatmaps need") true colour when the
    terminal shows fewer colours: under ``TERM=screen`` (16 colours) colour maps read as noise.
    Headless apps (tests, benchmarks) are not warned."""
    if app.is_headless or app in _warned:
        return
    _warned.add(app)
    system = app.console.color_system
    if system != "truecolor":
        app.notify(f"this terminal shows {system or 'no'} colours: {what} true colour "
                   "(try TERM=xterm-256color COLORTERM=truecolor; TERM=screen gives 16)",
                   severity="warning", timeout=12)
