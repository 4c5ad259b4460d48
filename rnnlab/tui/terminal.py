"""What the terminal can show: the lab's colour maps need true colour, its panels a minimum size,
a title the width it gets; notices are plain text."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

from rich.cells import cell_len
from textual import events
from textual.app import App
from textual.dom import DOMNode
from textual.notifications import Notify
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from ..errors import UserError, clipped, counted

#: Columns, rows: below this the heatmaps get no rows and the plots' labels run together.
MIN_SIZE = (60, 20)
#: A second q within this long quits though trained work would be lost.
QUIT_CONFIRM_S = 5.0
#: How long a quit that must wait gives its notice to be drawn first.
QUIT_NOTICE_S = 0.1
#: Columns below which a footer packs its keys closer and drops the palette key (fit_footer).
FOOTER_ROOMY_WIDTH = 120

_warned: weakref.WeakSet[App] = weakref.WeakSet()


class PassKeysToDialog:
    """Screen mixin, with :class:`KeysFollowDialogs` on the app: a key typed right after one that
    opens a dialog (``e`` then ``99``, faster than the dialog draws) reached this screen, and the
    app after it, before the first key's binding pushed the dialog, and was lost. This screen marks
    the keys it passes up; the app passes a marked key on to the dialog now above it."""

    def on_key(self, event: events.Key) -> None:
        event._typed_under = self  # (Textual's events take attributes: no __slots__)


class RefitsAfterDialogs:
    """Screen mixin for a screen that fits itself to the terminal in ``on_resize`` (titles, footer,
    layout classes): a resize while a dialog covers it reaches the dialog alone, and textual lays
    the covered screen out anew when it returns without a Resize event, so its titles kept the old
    widths' forms (a heatmap's window of steps, the eigenvalue panel's short title) until a key
    redrew them. Its return replays the resize."""

    def on_screen_resume(self) -> None:
        self.call_after_refresh(self._refit)

    def _refit(self) -> None:
        if self.is_attached and self.app.screen is self:  # (popped, or covered again, meanwhile: not now)
            size = self.app.size  # as it is now, not at the return
            self.on_resize(events.Resize(size, size))


class KeysFollowDialogs:
    """App mixin: see :class:`PassKeysToDialog`. The keys are kept and, once the dialog has drawn
    (its first field focused), typed again in order: the printable ones that lead go straight into
    its focused text field (a pasted sequence at once); from the first other key on (Enter, Esc,
    an arrow, or any key where no text field has the focus: help's q), each goes through the app,
    which runs the dialog's bindings, a moment after the one before (``i h e Enter l``: "he" is
    read, then l steps; sent at once, l overtook Enter and "hel" was read)."""

    #: Seconds between two keys typed again through the app: each is handled before the next.
    TYPED_AGAIN_GAP_S = 0.05

    def on_key(self, event: events.Key) -> None:
        dialog = self.screen
        under = getattr(event, "_typed_under", None)
        if under is None or dialog is under:
            return
        event.stop()
        event.prevent_default()
        pending = self.__dict__.setdefault("_typed_again", [])
        if not pending:  # the first of a burst: one replay for all of it, once the dialog has drawn
            dialog.call_after_refresh(self._type_again, dialog)
        pending.append((event.key, event.character))

    def _type_again(self, dialog: Screen) -> None:
        keys, self._typed_again = self._typed_again, []
        if dialog is not self.screen:  # closed meanwhile: what was typed for it goes with it
            return
        field = dialog.focused if isinstance(dialog.focused, Input) else None
        lead = 0
        while field is not None and lead < len(keys) and _printable(keys[lead][1]):
            field.post_message(events.Key(*keys[lead]))
            lead += 1
        if lead < len(keys):
            self.run_worker(self._type_through_app(keys[lead:]), group="typed-again")

    async def _type_through_app(self, keys: list[tuple[str, str | None]]) -> None:
        for key, character in keys:
            await asyncio.sleep(self.TYPED_AGAIN_GAP_S)
            self.post_message(events.Key(key, character))


def _printable(character: str | None) -> bool:
    return character is not None and len(character) == 1 and character.isprintable()


class LabMainScreen(PassKeysToDialog, Screen):
    """The main lab's screen (:meth:`LabApp.get_default_screen`)."""


class FittedFooter(Footer):
    """A compact footer that shows only whole keys: where its ``width`` cannot hold them all, keys
    are left out from the right, help and quit last (Textual's footer cut "? help  q quit" to
    "? hel" at 70 columns: the two keys that lead to every other). The keys still work."""

    #: The actions left out last: the help lists every key, and quit is the way out.
    KEPT_ACTIONS = frozenset({"help", "quit"})

    def __init__(self, width: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fit_width = width

    def compose(self):
        left_out = self.left_out()
        for child in super().compose():
            if getattr(child, "action", None) not in left_out:  # a FooterKey (Textual does not export it)
                yield child

    def left_out(self) -> set[str]:
        """The actions whose keys do not fit (none in a roomy footer, which has room for them)."""
        if not self.compact or not self._bindings_ready:
            return set()
        widths: dict[str, int] = {}  # action -> cells, in the footer's order (the first binding of each)
        for _, binding, _, _ in self.screen.active_bindings.values():
            if binding.show and binding.action not in widths:
                description = f" {binding.description}" if binding.description else ""
                widths[binding.action] = cell_len(self.app.get_key_display(binding) + description) + 1  # its margin
        left_out: set[str] = set()
        droppable = [action for action in widths if action not in self.KEPT_ACTIONS]
        while sum(widths.values()) - 1 > self.fit_width and droppable:  # the last key's margin may go
            action = droppable.pop()
            left_out.add(action)
            del widths[action]
        return left_out


def fitted_footer(app: App) -> FittedFooter:
    """A footer as :func:`fit_footer` leaves it for the terminal's width now: composed so from the
    start, not composed again by the first resize (a test reading the screen then found no footer)."""
    roomy = app.size.width >= FOOTER_ROOMY_WIDTH
    return FittedFooter(app.size.width, show_command_palette=roomy, compact=not roomy)


def fit_footer(node: DOMNode, width: int) -> None:
    """Every key of the footers under ``node`` (a screen, an app) in view down to 80 columns:
    closer together, and without the command palette's key (ctrl+p still opens it), below
    FOOTER_ROOMY_WIDTH columns; narrower, those of a :class:`FittedFooter` that fit, whole. The
    main lab and each architecture lab call it on a resize."""
    roomy = width >= FOOTER_ROOMY_WIDTH
    for footer in node.query(Footer):
        fitted = isinstance(footer, FittedFooter)
        left_out = footer.left_out() if fitted else set()
        footer.compact = not roomy
        if fitted:
            footer.fit_width = width
        # the palette's key and the keys left out are read only in compose: a resized footer is composed again
        if footer.show_command_palette != roomy or (fitted and footer.left_out() != left_out):
            footer.show_command_palette = roomy
            footer.refresh(recompose=True)


class ConfirmQuit:
    """App mixin: with trained work that quitting would lose (:meth:`quit_warning` says it), q (or
    ctrl+c) quits only when pressed again within QUIT_CONFIRM_S: one stray key must not throw away
    an hour of training. Nothing to lose: at once."""

    _quit_armed_until = 0.0  # monotonic time until which q quits despite the warning
    _quit_warning_shown = ""  # that warning, as its toast says it

    def quit_warning(self) -> str:
        """What quitting now would lose, as the notice says it; "" for nothing."""
        return ""

    def begin_quit(self) -> str:
        """Called once the app will quit: stop what must stop (training), and say what the exit
        waits for (a training step under way, seconds for a large model) as a notice shown before
        it; "" for nothing. Once the exit begins the screen is not redrawn."""
        return ""

    async def action_quit(self) -> None:
        warning = self.quit_warning()
        if warning and time.monotonic() > self._quit_armed_until:
            self._quit_armed_until = time.monotonic() + QUIT_CONFIRM_S
            self._quit_warning_shown = warning
            self.notify(warning, severity="warning", timeout=QUIT_CONFIRM_S)
            return
        wait = self.begin_quit()
        if wait:
            self.notify(wait, timeout=60)
            await asyncio.sleep(QUIT_NOTICE_S)  # a frame or two to draw it
        self.exit()

    def follow_quit_warning(self) -> None:
        """While the first q's warning is up, keep it saying what a second q would lose now (the
        app's timer calls this): training went on under it while it kept the count it was written
        with, "120 trained steps are not saved (and training goes on)" at step 900 and after s."""
        shown = self._quit_warning_shown
        if not shown or time.monotonic() > self._quit_armed_until:
            return
        warning = self.quit_warning()
        if not warning or warning == shown:
            return
        for notification in self._notifications:  # the same toast, its text changed: no new one sliding in
            if notification.message == shown:
                notification.message = warning
        self._quit_warning_shown = warning
        for toast in self.screen.query("Toast"):  # (Textual's toast widget: it renders its notification's text)
            toast.refresh(layout=True)

    def action_cancel_quit(self) -> None:
        """Esc after a first q: the lab stays open, a q within the window warns again, and the
        warning's toast goes. (The app's Esc binding: a dialog's own Esc comes first.)"""
        if time.monotonic() > self._quit_armed_until:
            return
        self.withdraw_quit_warning()

    def withdraw_quit_warning(self) -> None:
        """The first q's warning taken back (Esc; a ctrl+s that saved what it warned of): its toast
        goes, and a q asks again if there is anything to lose."""
        self._quit_armed_until = 0.0
        withdraw_notices(self, self._quit_warning_shown)


#: Signals that end a lab: a kill (SIGTERM: ``kill``, a shutdown) and a lost terminal (SIGHUP: the
#: window closed, an ssh session dropped); those this platform has (Windows: no SIGHUP).
EXIT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
#: After a signal's save, how long the clean exit (the terminal given back) may take before the
#: process ends anyway: a terminal that is gone (or stopped) blocks Textual's writes, and its exit.
EXIT_GRACE_S = {"SIGTERM": 10.0, "SIGHUP": 2.0}


class ExitsOnSignal:
    """App mixin: SIGTERM and SIGHUP end the lab as q does, after :meth:`save_before_exit` has kept
    what it can, with the exit status 128 + the signal (143, 129), as ``rnnlab train``'s. Their
    default action ended the process at once: trained steps not saved were lost without a word, and
    a terminal that survived was left in the alternate screen with mouse reporting on.

    The handlers are Python's own (``signal.signal``), not the event loop's: they run in the main
    thread even while it is blocked writing to a terminal that is gone (Textual's writer queue then
    fills and blocks it for good, and an event loop's handler would never run). A handler only
    starts a thread that saves (taking the locks as any thread does: the handler may have
    interrupted the main thread inside one of them, or inside a ctrl+s save, which the thread then
    waits for), asks the app to exit, and ends the process EXIT_GRACE_S later if the exit has not
    happened (a dead terminal's). :meth:`exit_on_signals` once the app runs (``on_mount``),
    :meth:`restore_signals` when it ends (``on_unmount``: the handlers as they were); :func:`say_exit`
    once ``run()`` has returned (the forced exit called off)."""

    exit_signal: int | None = None
    exit_message = ""  # what the exit did (saved, or lost), for stderr once the screen is gone
    _previous_handlers: dict | None = None
    _exited: threading.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    def exit_on_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():  # (signal.signal would refuse)
            return
        self._loop = asyncio.get_running_loop()
        self._exited = threading.Event()
        self._previous_handlers = {sig: signal.getsignal(sig) for sig in EXIT_SIGNALS}
        for sig in EXIT_SIGNALS:  # SIGHUP ignored (trap '' HUP) too: a lab without its terminal only freezes
            signal.signal(sig, lambda number, frame: self.exit_on_signal(number))

    def restore_signals(self) -> None:
        """The handlers as they were before the app ran. A forced exit pending stays so until
        :func:`say_exit` (``run()`` has returned): Textual closes its driver after the unmount, and that
        close blocks for good on a terminal that is gone (its writer's queue full). Headless (a test's
        ``run_test``), no terminal can block it: the exit is done."""
        if self._exited is not None and getattr(self, "is_headless", False):
            self._exited.set()
        for sig, handler in (self._previous_handlers or {}).items():
            with contextlib.suppress(ValueError, TypeError):  # (not the main thread; a handler set from C)
                signal.signal(sig, handler)
        self._previous_handlers = None

    def save_before_exit(self, why: str) -> str:
        """Keep what the exit would lose (the main lab saves its run); what was done, said on stderr
        after the exit, beginning with ``why`` ("SIGTERM"); "" for nothing to keep. Runs in a
        thread of its own."""
        return ""

    def exit_on_signal(self, sig: int) -> threading.Thread | None:
        """What the handlers call: the saving thread started (None for a second signal: the exit is
        under way)."""
        if self.exit_signal is not None:
            return None
        self.exit_signal = sig
        saver = threading.Thread(target=self._save_and_exit, args=(sig,), name="rnnlab-exit", daemon=True)
        saver.start()
        return saver

    def _save_and_exit(self, sig: int) -> None:
        why = signal.Signals(sig).name
        try:
            self.exit_message = self.save_before_exit(why)
        except Exception as exc:  # noqa: BLE001 - the exit goes on, and says what could not be kept
            self.exit_message = f"{why}: could not save before exiting: {error_text(exc)}"
        exit_now = functools.partial(self.exit, return_code=128 + sig)
        if self._loop is None:
            exit_now()
            return
        with contextlib.suppress(RuntimeError):  # (a loop closed meanwhile: the app has ended)
            self._loop.call_soon_threadsafe(exit_now)
        exited = self._exited
        if exited is not None and not exited.wait(EXIT_GRACE_S.get(why, 10.0)):
            _say_exit_message(self)  # the screen's exit did not finish: its terminal is gone or stalled
            os._exit(128 + sig)


def say_exit(app: App) -> None:
    """Once ``app.run()`` has returned: a signal's forced exit called off (the exit is done) and
    what the signal's exit saved or lost said on stderr; a terminal that hung up is no longer there
    to say it to, a file stderr goes to still is."""
    exited = getattr(app, "_exited", None)
    if exited is not None:
        exited.set()
    _say_exit_message(app)


def _say_exit_message(app: App) -> None:
    message = getattr(app, "exit_message", "")
    if message:
        # (RuntimeError: a handler that interrupted a write to stderr, "reentrant call")
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            sys.stderr.write(f"rnnlab: {message}\n")
            sys.stderr.flush()


def training_goes_on(engine) -> str:
    """" (and training goes on)" while ``engine`` (a lab) trains: the steps a quit warning counts
    are more by the second q."""
    return " (and training goes on)" if getattr(engine, "training_status", "") == "running" else ""


def error_text(error: BaseException) -> str:
    """A worker's error as one line: a UserError's own words, anything else with its class."""
    return str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"


def take_screenshot(app: App) -> tuple[str, bool]:
    """Save an SVG screenshot of ``app`` in the working directory (``p`` in every lab): what to
    tell the user (the absolute path, as the trace and run notices give theirs) and whether it
    failed. An unwritable working directory is said, not a traceback that ends the app."""
    try:
        path = app.save_screenshot()
    except OSError as exc:
        return f"cannot save the screenshot: {exc.strerror or exc}", True
    return f"screenshot saved to {Path(path).resolve()}", False


def take_screenshot_and_say(node: DOMNode) -> None:
    """:func:`take_screenshot` of ``node``'s app, said in a notice from ``node`` (an error if it failed)."""
    message, failed = take_screenshot(node.app)
    node.notify(message, severity="error" if failed else "information")


def scroll_pages(container, pages: int) -> None:
    """Scroll ``container`` by ``pages`` of its height (PgDn/PgUp where it has no focus to take them),
    a line of the last page kept in view."""
    container.scroll_to(y=container.scroll_y + pages * max(container.scrollable_content_region.height - 1, 1),
                        animate=False)


def withdraw_notices(app: App, *beginnings: str) -> None:
    """Take down ``app``'s toasts that begin with one of ``beginnings`` (an empty one matches none): they
    speak of a state just left ("training paused" once t resumed it) and for seconds more contradicted
    what the screen shows. (Textual has no public way to dismiss a notification by its text.)"""
    beginnings = tuple(text for text in beginnings if text)
    for shown in list(app._notifications) if beginnings else ():
        if shown.message.startswith(beginnings):
            app._unnotify(shown)


#: The status line's words for a model that has not trained (in every lab: "idle step 0" read as stuck).
UNTRAINED = "untrained (t trains)"
#: What s (stop) says in every lab where nothing trains (it did nothing visible).
NOTHING_TRAINING = "nothing is training (t starts)"
#: What t says as it pauses training, in every lab.
PAUSED_NOTICE = "training paused (t resumes, s stops)"


def training_progress(status: str, unit: str, done: int, target: int | None = None) -> list[str]:
    """The status line's words on training, longest first: ``["running step 714 of 2000",
    "running step 714"]``, ``["completed epoch 30"]``; the total said only while a run is under way
    (running, paused, stopping) and given up first where the line is short. (A stopped or completed
    run has none: t trains another round, past it.)"""
    said = f"{status} {unit} {done}"
    if target is None or status not in ("running", "paused", "stopping"):
        return [said]
    return [f"{said} of {target}", said]


def trains_more(done: int, more: int, unit: str) -> str:
    """What t says as it starts a round, in the main lab's words: ``"training 2000 steps (t pauses,
    s stops)"``, on a trained model ``"838 steps trained already: training 2000 more, to step 2838
    (t pauses, s stops)"`` (a round starts from the step trained, however the last one ended)."""
    if not done:
        return f"training {counted(more, unit)} (t pauses, s stops)"
    return f"{counted(done, unit)} trained already: training {more} more, to {unit} {done + more} (t pauses, s stops)"


class PlainNotices:
    """App mixin: a notice shows its text as it is. Textual reads notices as markup (every widget's
    ``notify`` asks it to), and a notice quoting a path or a name with a bracket in it ("[/]",
    "[a=+].npz") raised MarkupError and ended the lab. rnnlab's notices use no markup.

    A notice is shown once while it is on screen: a refused key pressed six times stacked six
    identical toasts over the plots and the dialogs."""

    def notify(self, message: str, *, markup: bool = False, **kwargs) -> None:
        super().notify(message, markup=False, **kwargs)

    def _on_notify(self, event: Notify) -> None:
        # on the app's own loop (notify posts from any thread), before App's handler adds the toast:
        # the same notice on screen already (not dismissed, not expired) is not added again
        new = event.notification
        if any(shown.message == new.message and shown.severity == new.severity for shown in self._notifications):
            event.prevent_default()  # App._on_notify, next in the MRO, is not called


class FixedTheme:
    """App mixin: the command palette offers no theme. The colour maps, plot colours and heatmap
    backgrounds are chosen for the dark default; under a light theme curves vanish into the
    background (a plot's #e0e0e0 on a light grey)."""

    def get_system_commands(self, screen):
        return (command for command in super().get_system_commands(screen) if command.title != "Theme")


def warn_without_true_colour(app: App, what: str) -> None:
    """Once per app, a notification that ``what`` (e.g. "heatmaps need") true colour when the
    terminal shows fewer colours: under ``TERM=screen`` (16 colours) colour maps read as noise, and
    under ``NO_COLOR`` (textual then draws greys) nearly uniform. Headless apps (tests, benchmarks)
    are not warned."""
    if app.is_headless or app in _warned:
        return
    _warned.add(app)
    system = app.console.color_system
    if getattr(app, "no_color", False):  # textual draws greys only: a map's -0.05 and +0.02 look alike
        app.notify("NO_COLOR is set: the lab draws in greys, in which its colour maps' values look alike "
                   "(unset NO_COLOR for colour)", severity="warning", timeout=12)
    elif system != "truecolor":
        app.notify(f"this terminal shows {system or 'no'} colours: {what} true colour "
                   "(try TERM=xterm-256color COLORTERM=truecolor; TERM=screen gives 16)",
                   severity="warning", timeout=12)


#: What a lab too small for its panels still takes (:func:`held_while_too_small`): q (ctrl+c), Esc,
#: and ctrl+s, which the quit warning offers.
TOO_SMALL_ACTIONS = frozenset({"quit", "cancel_quit", "save_run"})


def held_while_too_small(screen: Screen, action: str) -> bool:
    """True where ``screen`` is covered by the too-small message and ``action`` is not one it takes:
    t trained unseen and ? drew the help over the message that says to enlarge it or quit."""
    return screen.has_class("too-small") and action not in TOO_SMALL_ACTIONS


class HoldsKeysWhileTooSmall:
    """Screen mixin: while the too-small message covers it, its keys but q do nothing."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if held_while_too_small(self, action):
            return False
        return super().check_action(action, parameters)


def show_if_too_small(screen: Screen, width: int, height: int, min_height: int = MIN_SIZE[1]) -> None:
    """Below :data:`MIN_SIZE` (``min_height`` rows: more for a lab whose panels need them) the panels
    would lose their heatmaps without a word: the screen's ``#too-small`` Static covers them with a
    message (lab.tcss styles it by the ``too-small`` class), and their keys are held
    (:func:`held_while_too_small`)."""
    too_small = width < MIN_SIZE[0] or height < min_height
    if too_small != screen.has_class("too-small"):
        screen.set_class(too_small, "too-small")
        screen.app.refresh_bindings()
    if too_small:
        screen.query_one("#too-small", Static).update(
            f"The lab needs at least {MIN_SIZE[0]}x{min_height}\n(this terminal: {width}x{height}).\n"
            "Enlarge it, or q to quit.")


def clipped_at_words(text: str, width: int) -> str:
    """``text`` in ``width`` cells: whole, or its words that fit and " …" ('step 2…' read as a step of its own)."""
    if cell_len(text) <= width:
        return text
    words = text[:max(width - 1, 0)].rpartition(" ")[0].rstrip(" -(,;:")
    return f"{words} …" if words else clipped(text, width)


def first_fit(forms: Sequence[str], width: int | None, fallback: str = "") -> str:
    """The first of ``forms`` (longest first) at most ``width`` cells wide, else ``fallback``; the
    first while the width is not known (None: not laid out yet). Shorter forms are tried whole, so
    a number is never cut short ("units 0-7 of 10" of "units 0-7 of 100" reads as a value)."""
    if width is None:
        return forms[0]
    return next((form for form in forms if len(form) <= width), fallback)
