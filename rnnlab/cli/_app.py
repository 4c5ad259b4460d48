"""rnnlab's command line: ``rnnlab [COMMAND]`` (typer).

Conventions (DESIGN.md): results go to stdout (``--json`` for machines), progress and messages to
stderr; exit status 0 ok, 1 failure (a gradient check failed, a target missed with
``--check-targets``), 2 bad input with one line on stderr naming what is wrong, never a traceback.

Heavy modules (the numba kernels' compilation, torch) are imported inside the commands so that
``rnnlab --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import json
import math
import os
import select
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

try:  # typer >= 0.2x vendors its own copy of click; its exceptions are not click's
    from typer._click import exceptions as _click_exceptions
except ImportError:  # pragma: no cover - older typer on top of click
    from click import exceptions as _click_exceptions

try:  # Ctrl-C at a prompt: typer >= 0.2x raises its own Abort, older typer click's
    from typer.exceptions import Abort as _Abort
except ImportError:  # pragma: no cover - older typer
    _Abort = _click_exceptions.Abort

from .. import __version__, notices
from ..errors import TargetExistsError, UserError, WriteFailed, choice_refusal, closest_name

class _Commands(TyperGroup):
    """rnnlab's commands. An experiment or a lab typed where the command goes (``rnnlab copy-gru``) is
    refused with the command that opens it: click's "No such command 'copy-gru'." said nothing of it."""

    def resolve_command(self, ctx, args):
        try:
            return super().resolve_command(ctx, args)
        except _click_exceptions.UsageError as exc:
            if args and args[0].lower() in ("lab", "labs", "open"):  # the verb other tools have: `rnnlab lab esn`
                exc.message = self._opened_by_tui(args[0], args[1:2])
            elif args and not args[0].startswith("-") and (hint := self._not_a_command(args[0], exc.message)):
                exc.message = hint
            raise

    @staticmethod
    def _opened_by_tui(verb: str, rest: list[str]) -> str:
        """``rnnlab lab esn``: there is no such verb, `rnnlab tui` opens every lab (and `rnnlab` the main one)."""
        import shlex

        from ..labs import LABS

        if rest and _Commands._kind_opened(rest[0]) is not None:  # (not any path: `rnnlab tui /tmp` opens nothing)
            return f"No such command {verb!r}: `rnnlab tui {shlex.quote(rest[0])}` opens it"
        return f"No such command {verb!r}: `rnnlab tui` opens the lab (`rnnlab tui {'|'.join(LABS)}` an " \
               "architecture lab, `rnnlab presets` lists what there is)"

    @staticmethod
    def _kind_opened(name: str) -> str | None:
        """What `rnnlab tui NAME` opens ``name`` as: "lab" (an architecture lab), "preset", "spec" (a .toml
        file), "run" (a run directory) or "runs" (a folder of them); None for anything else, a name too long
        to look up too."""
        from ..labs import LABS
        from ..spec import preset_names

        if name in LABS:
            return "lab"
        if name in preset_names():
            return "preset"
        path = Path(name)
        with contextlib.suppress(OSError):  # (ENAMETOOLONG: Path.exists and is_file raise it, not False)
            if path.suffix.lower() == ".toml" and path.is_file():
                return "spec"
            if (path / "spec.toml").is_file():
                return "run"
        from ..train.runs import holds_runs

        return "runs" if holds_runs(path) else None

    def _not_a_command(self, name: str, message: str) -> str | None:
        """How to open ``name``, an unknown command, where it names a preset, an architecture lab, a spec file
        or a run directory; else, where typer's ``message`` suggests no command, the command, preset or lab
        it is closest to (in other capitals too: ``ESN``)."""
        import shlex

        from ..labs import LABS
        from ..spec import preset_names
        from .experiments import LAB_COMMANDS

        quoted, presets = shlex.quote(name), preset_names()
        kind = self._kind_opened(name)
        if kind == "lab":
            return (f"{name!r} is an architecture lab, not a command: open it with `rnnlab tui {name}` (headless: "
                    f"`rnnlab {LAB_COMMANDS.get(name, name)}`)")
        if kind == "preset":
            return f"{name!r} is a preset, not a command: open it with `rnnlab tui {name}` (or train it: " \
                   f"`rnnlab train {name}`)"
        if kind == "spec":
            return f"{name!r} is a spec file, not a command: open it with `rnnlab tui {quoted}` (or train it: " \
                   f"`rnnlab train {quoted}`)"
        if kind == "run":
            return f"{name!r} is a run directory, not a command: open it with `rnnlab tui {quoted}`"
        if kind == "runs":
            return f"{name!r} is a folder of runs, not a command: open one with `rnnlab tui {quoted}` (or list " \
                   f"them: `rnnlab runs {quoted}`)"
        if "Did you mean" in message:
            return None
        commands = {**{known: f"rnnlab tui {known}" for known in [*presets, *LABS]},
                    **{command: f"rnnlab {command}" for command in self.commands}}  # (esn: the command)
        close = closest_name(name, list(commands))
        return None if close is None else f"No such command {name!r}; did you mean `{commands[close]}`?"


app = typer.Typer(
    cls=_Commands,
    name="rnnlab",
    help="A terminal laboratory for recurrent networks: watch RNNs, LSTMs, GRUs and their kin step forward "
    "and backward through time. `rnnlab` alone opens the lab (TUI) on the hello experiment.",
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


#: The largest seed any command takes: the spec's (rnnlab.spec.SEED_MAX) and the labs', written here so
#: that --help shows it without importing them; tests keep them equal.
SEED_MAX = 2**63 - 1


# ---------------------------------------------------------------------------------------------
# consoles and messages
# ---------------------------------------------------------------------------------------------

_consoles: dict[str, Any] = {}


def _err_console():
    """The rich console on stderr: progress bars and messages. A message is wrapped at words to a terminal's
    width (the terminal's own wrap broke words: "(floa" / "t64)"); in a file or a pipe it is one line, which a
    log's grep finds whole."""
    if "err" not in _consoles:
        from rich.console import Console

        console = Console(stderr=True, highlight=False)
        console.soft_wrap = not console.is_terminal
        _consoles["err"] = console
    return _consoles["err"]


def say(line: str) -> None:
    """``line``, a message of plain text (no markup: a path may hold brackets), on stderr as
    :func:`_err_console` writes it: wrapped at words on a terminal, one line elsewhere."""
    console = _err_console()
    if console.soft_wrap:  # (as it was written before: no console's line ending or encoding in the way)
        sys.stderr.write(f"{line}\n")
    else:
        console.print(line, markup=False, emoji=False, highlight=False)


#: ``title_justify`` for a table's title at its left edge: rich's "left" pads the title with spaces
#: to the table's width, which a terminal's copy of it keeps ("hello: completed at step 5 of 5      ").
TITLE_LEFT = "default"


def _out_console():
    """The rich console on stdout: results. Output to a pipe or a file has no screen to fit: its lines
    of text are never wrapped (grep sees whole lines, titles included), and tables, which need a
    width, get a page of $COLUMNS columns where it is set, else 160 (not 80)."""
    if "out" not in _consoles:
        from rich.console import Console

        console = Console(highlight=False)
        if not console.is_terminal:
            columns = os.environ.get("COLUMNS", "")
            page = int(columns) if columns.isdigit() and int(columns) > 0 else 160
            console = Console(highlight=False, width=page, soft_wrap=True)
        _consoles["out"] = console
    return _consoles["out"]


def whole_cells(table):
    """``table`` with each column at least as wide as the longest word of its header and cells where stdout is
    a file or a pipe, which crop no line: a page of $COLUMNS columns cut them there ("6.59e…", "lstm…"),
    their digits and names lost in the file; a cell's words may still wrap. A terminal's table still fits its
    width, its text cut where it must (rich's "…" shows a cut), but not its figures: where it is too wide, each
    right-justified column (numbers) is as wide as its widest cell, its header wrapped to that, and the text
    columns that can wrap give way (at 40 columns gradcheck's errors read "6.59e…", a wrong figure; tree's
    one-word "prediction" column "predicti…", where the trees beside it could wrap); where its words do not
    fit even so, its frame goes (the table then printed through :class:`_Trimmed`, its lines ending in no space)."""
    from rich.cells import cell_len
    from rich.text import Text

    from rich.measure import Measurement

    console = _out_console()
    natural = Measurement.get(console, console.options.update_width(10**6), table).maximum  # (else clamped)
    squeezed = not console.soft_wrap and natural > console.width
    for column in table.columns:
        texts = [cell if isinstance(cell, Text) else console.render_str(cell)
                 for cell in (column.header, *column.cells) if isinstance(cell, (str, Text))]
        words = [word for text in texts for word in text.plain.split()]
        if console.soft_wrap:
            column.min_width = max(map(cell_len, words), default=None)
        elif squeezed and column.justify == "right" and column.width is None and texts[1:]:
            column.width = max(max(map(cell_len, words), default=1), *(text.cell_len for text in texts[1:]))
        elif squeezed and column.width is None and column.overflow != "fold" and texts[1:]:
            # a text column of one word a line (tree's prediction, its header the widest): wrapping narrows it
            # none, so rich cut it ("predicti…") to give a column of many words (the tree) width it could wrap to
            widest = max(cell_len(line) for text in texts for line in text.plain.splitlines() or [""])
            if widest == max(map(cell_len, words), default=0) > 0:
                column.width = widest
    if squeezed and Measurement.get(console, console.options.update_width(10**6), table).minimum > console.width:
        # still too wide for its words whole (an esn sweep's five numbers at 40 columns: "0.004…" in every row;
        # gradcheck's "chec" / "k"): its lines and padding go, a space between columns, as bench's (51 columns: 39)
        from rich import box

        table.box, table.show_edge, table.pad_edge, table.padding = box.SIMPLE_HEAD, False, False, (0, 0, 0, 0)
        return _Trimmed(table)  # no frame at its right edge now: the lines' padding to its width would end them
    return table


class _Trimmed:
    """A renderable whose lines end in no space: a frameless table's cells are padded to their columns' widths,
    and a terminal's copy of it kept them ("but)" and 36 spaces, a wrapped tree's line)."""

    def __init__(self, renderable: Any) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        from rich.segment import Segment

        for line in console.render_lines(self.renderable, options, pad=False):
            while line and not line[-1].control and not line[-1].text.rstrip(" "):
                line.pop()  # a segment of spaces alone (a cell's padding)
            if line and not line[-1].control:
                last = line.pop()
                line.append(Segment(last.text.rstrip(" "), last.style))
            yield from line
            yield Segment.line()


def out_glyph(glyph: str, plain: str) -> str:
    """``glyph`` (a mark such as ✓ or ≥ in a result) where stdout's encoding holds it, else ``plain``: in a
    Latin-1 or ASCII locale it came out as ``\\u2713``, six characters where the table had room for one."""
    try:
        glyph.encode(_out_console().encoding)
    except (UnicodeEncodeError, LookupError):
        return plain
    return glyph


def _message(text: str) -> None:
    """A message for the user, on stderr (rich markup allowed): one the user must see (a warning, an error,
    what a stop keeps), said under --quiet too; what is only informational goes through :func:`_info`."""
    _err_console().print(text)


def _info(text: str) -> None:
    """An informational message on stderr (rich markup allowed): what a command is doing ("training hello ...
    -> runs/..."), which --quiet drops (:func:`quieted`)."""
    if not _quiet:
        _message(text)


#: Whether --quiet is in force (:func:`quieted`): progress, compile notices and notes are dropped.
_quiet = False


@contextlib.contextmanager
def quieted() -> Iterator[None]:
    """Within it, a command's progress (bar or log lines), its informational messages (:func:`_info`), the
    kernels' compile notices and every note (rnnlab.notices') go nowhere; its results, warnings and errors,
    and what a stop keeps, are said as ever. ``2>/dev/null`` hid the errors of a sweep's loop too."""
    global _quiet
    before, _quiet = _quiet, True
    try:
        with notices.notes_dropped():
            yield
    finally:
        _quiet = before


def _quiet_callback(ctx: typer.Context, value: bool) -> bool:
    if value:  # for the command's run only: its context closes it (main() in-process runs many)
        ctx.with_resource(quieted())
    return value  # (what a callback returns is the option's value)


def quiet_option() -> Any:
    """``-q/--quiet`` for a command that says how it goes on stderr: see :func:`quieted`."""
    return typer.Option("-q", "--quiet", callback=_quiet_callback, is_eager=True,
                        help="Say nothing on stderr but warnings and errors: no progress, no notes (results on "
                             "stdout as ever).")


def _exit_for_training_status(status: str, diverged: str, stopped: str, stopped_code: int = 130) -> None:
    """After a training run: exit 1 with ``diverged`` (in red) if it diverged, ``stopped_code`` (130:
    Ctrl-C, 143: SIGTERM) with ``stopped`` if a signal stopped it; return if it finished."""
    from rich.markup import escape  # the messages name run paths, and "runs/a[/]b" is markup

    if status == "diverged":
        _message(f"[red]rnnlab: {escape(diverged)}[/red]")
        raise typer.Exit(1)
    if status == "stopped":
        _message(escape(stopped))
        raise typer.Exit(stopped_code)


def _on_compile(message: str) -> None:
    """Called when a numba kernel compiles (a cold start); tells the user why they are waiting."""
    _info(f"[dim]rnnlab: {message}[/dim]")


@contextlib.contextmanager
def _compile_notices() -> Iterator[None]:
    """Route kernel compile notices (``rnnlab.kernels.compile_notices``) to :func:`_on_compile`
    for the duration of a command: a cold numba cache says what it is compiling."""
    from ..kernels import compile_notices

    with compile_notices(_on_compile):
        yield


def no_progress_bar() -> bool:
    """Whether stderr cannot show a progress bar (a log file, a pipe, TERM=dumb): rich's would leave
    an empty line there, and :class:`ProgressLines` says how it goes instead."""
    console = _err_console()
    return not console.is_terminal or console.is_dumb_terminal


#: The longest a log goes without a progress line while a command trains (:class:`ProgressLines`).
PROGRESS_LINE_S = 60.0


class ProgressLines:
    """Where no progress bar is drawn (a cron job's log, ``2> train.log``): a line on stderr for
    every tenth of the ``unit``s (steps, epochs) and at least every PROGRESS_LINE_S seconds,
    ``rnnlab: hello: step 300 of 1500, loss 0.0123, |g| 0.45, 85 steps/s``. A log said nothing from
    the start of a training to its end. None under --quiet (:func:`quieted`)."""

    def __init__(self, name: str, unit: str, until: int, start: int = 0) -> None:
        self.name, self.unit, self.until = name, unit, until
        self.every = max(1, (until - start) // 10)
        self.next_done = start + self.every
        self.last_time = time.monotonic()

    def __call__(self, done: int, figures: str) -> None:
        if _quiet:
            return
        now = time.monotonic()
        if done < self.next_done and now - self.last_time < PROGRESS_LINE_S and done < self.until:
            return
        while self.next_done <= done:
            self.next_done += self.every
        self.last_time = now
        sys.stderr.write(f"rnnlab: {self.name}: {self.unit} {done} of {self.until}, {figures}\n")
        sys.stderr.flush()


def _progress(figures: str = ""):
    """A rich progress bar on stderr that disappears when done: the task's description, the bar,
    done of total, ``figures`` (a format of the task's fields: "loss {task.fields[loss]}"; without
    them a spinner leads), the time taken. None where no bar can be drawn (a log file, a pipe,
    TERM=dumb: rich would leave an empty line there), which :class:`ProgressLines` writes to instead,
    nor under --quiet (:func:`quieted`)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    columns = [*columns, TextColumn(figures)] if figures else [SpinnerColumn(), *columns]
    return Progress(*columns, TimeElapsedColumn(), console=_err_console(), transient=True,
                    disable=_quiet or no_progress_bar())


def help_notes(notes: Callable[[], Mapping[str, str]]) -> type[TyperCommand]:
    """A command class (``app.command(cls=...)``) whose --help ends each option's help with what
    ``notes()`` says of it, by parameter name. ``notes`` runs only when that help is shown, so it can
    read an engine's own limits and defaults (one source of truth) without every other command, and
    ``rnnlab --help``, paying for the engine's import."""

    class NotedCommand(TyperCommand):
        def format_help(self, ctx, formatter) -> None:
            for name, note in notes().items():
                for param in self.params:
                    if param.name == name and not (param.help or "").endswith(note):
                        param.help = f"{param.help} {note}" if param.help else note
            super().format_help(ctx, formatter)

    return NotedCommand


def nonempty_path(value: str | Path) -> Path:
    """A path argument's parser (its default too): an empty one (an unset shell variable) is
    refused, where Path("") would read it as "." and write a run into the current directory; a
    leading ``~`` is the home directory (:func:`home_expanded`)."""
    if not str(value).strip():
        raise typer.BadParameter("is empty: give a path")
    return Path(home_expanded(str(value)))


def home_expanded(value: str | None) -> str | None:
    """``value`` with a leading ``~`` (or ``~user``) read as the shell reads it, the parser of a target
    argument (a spec file, a run directory) too: a quoted one (``OUT="~/runs/a"``, a config file's) reached
    rnnlab as it was, and ``train --out "$OUT"`` made a folder named ``~`` in the working directory (one
    ``rm -rf ~`` from a disaster), where the lab's open dialog and a spec's data path read it as home."""
    return os.path.expanduser(value) if value is not None and value.startswith("~") else value


EXPORT_HELP_FORCE = "Replace the --export file if it exists."


def export_option(what: str) -> Any:
    """An architecture lab's ``--export FILE.npz``, the lab's x: ``what`` it writes."""
    return typer.Option("--export", help=f"Write {what} to this .npz file, as the lab's x exports it.",
                        parser=nonempty_path, metavar="<path>", show_default=False)


def export_file(export: Path | None, force: bool, example: str) -> Path | None:
    """``--export`` checked before any work (``--force`` without it refused, an existing file without ``--force``
    refused, a directory refused naming ``example``, the lab's own file name, to give in it); None without it."""
    if force and export is None:
        raise UserError("--force needs --export (it replaces an existing --export file)")
    if export is None:
        return None
    from ..train.rundir import npz_target

    return npz_target(export, "export file", replace=force, example=example)


def choice_refused(flag: str, typed: str, choices: Sequence[str], meant: str | None = None) -> UserError:
    """``flag`` refusing ``typed``, none of ``choices``: "--sort must be one of updated, eval, loss, name, got 'Loss'
    (did you mean 'loss'?)", the hint where the choice meant is sure (:func:`~rnnlab.errors.choice_refusal`, as the
    labs' options say it), or ``meant``: a value in other capitals was refused unsaid why, and a guess could be
    wrong ("GPU" is not "cpu")."""
    return UserError(f"{flag} {choice_refusal(typed, choices, meant=meant)}")


def option_flag(name: str) -> str:
    """A lab option's flag, the name a CLI error gives it: ``spectral_radius`` -> ``--spectral-radius``."""
    return "--" + name.replace("_", "-")


def lab_option(flag: str, help: str) -> Any:
    """An option of an architecture lab (esn, seq2seq, tree): None (the lab's preset value) unless given;
    the command's :func:`help_notes` add its range and default to the help."""
    return typer.Option(flag, help=help, show_default=False)


def _split_names(values: list[str] | None) -> list[str] | None:
    """``--only a --only b,c`` -> [a, b, c]."""
    if not values:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _json_float(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _print_json(data: Any) -> None:
    write_out(json.dumps(data, indent=2) + "\n")


def write_out(text: str) -> None:
    """``text`` on stdout, flushed (a result: where nobody reads it any more, see :class:`_Output`).
    A result the stream's encoding cannot hold is refused in one line, not escaped as messages are
    (``caf\\xe9`` in a spec's TOML is no TOML, in sampled text no text)."""
    encoding = getattr(getattr(sys.stdout, "_stream", sys.stdout), "encoding", None)
    if encoding:
        try:
            text.encode(encoding)
        except UnicodeEncodeError as exc:
            raise UserError(f"stdout ({encoding}) cannot encode {text[exc.start:exc.end]!r}, which the output "
                            "holds: set PYTHONIOENCODING=utf-8 (or a UTF-8 locale)") from None
        except LookupError:  # (an encoding Python does not know: the write says so)
            pass
    sys.stdout.write(text)
    sys.stdout.flush()


#: Why a write to stdout or stderr fails where nobody reads it any more: a closed pipe, a terminal
#: that hung up (SIGHUP, then EIO on every write).
_READER_GONE = (errno.EPIPE, errno.EIO)


class _Output:
    """sys.stdout or sys.stderr while a command runs (:func:`main`). Where its reader is gone (``|
    head`` stopped reading, a terminal hung up) what is still written goes nowhere, and the command
    ends as it would have, with its own exit status (a diverged run's 1, a stopped one's 130): the
    write's BrokenPipeError or EIO used to end it with 1 (typer's way, rich's) or a traceback, and a
    run whose stderr was closed never started. rich's consoles write through it too (they look up
    sys.stdout and sys.stderr when they write), so their own broken-pipe exit is never reached.

    Any other failure (a full disk, a descriptor closed before the start: ``2>/dev/full``,
    ``>&-``) is the same on stderr, which only says how things go: a training goes on. On stdout,
    which carries the result, it is :class:`~rnnlab.errors.WriteFailed`: one line on stderr and
    exit 1 (it was a traceback, and training never started where stderr failed). Everything else
    is the stream's own."""

    def __init__(self, stream, name: str) -> None:
        self._stream = stream  # None: the descriptor was closed when Python started
        self._name = name
        self._gone = stream is None and name == "stderr"
        self._reader_gone = False

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                if self._stream is None:
                    raise OSError(errno.EBADF, "the descriptor is closed")
                return self._stream.write(text)
            except OSError as exc:
                self._failed(exc)
        return len(text)

    def flush(self) -> None:
        if not self._gone and self._stream is not None:
            try:
                self._stream.flush()
            except OSError as exc:
                self._failed(exc)

    @property
    def reader_gone(self) -> bool:
        """Whether a write found nobody reading (:data:`_READER_GONE`): what follows goes nowhere."""
        return self._reader_gone

    def _failed(self, exc: OSError) -> None:
        self._gone = True
        self._reader_gone = exc.errno in _READER_GONE
        if self._stream is not None:
            _drop(self._stream)  # what its buffer holds is flushed at exit: to nowhere, not a failure
        if self._name == "stdout" and exc.errno not in _READER_GONE:
            raise WriteFailed(exc.errno, exc.strerror or str(exc), "the output (stdout)") from None

    def isatty(self) -> bool:
        return self._stream is not None and self._stream.isatty()

    def __getattr__(self, name: str) -> Any:  # fileno, encoding, ...
        if self._stream is None:
            raise AttributeError(f"{self._name} is closed, it has no {name}")
        return getattr(self._stream, name)


def output_unread() -> bool:
    """Whether nobody reads stdout any more: a write to it found its reader gone (``| head -c 20``
    stopped reading), or, a pipe not written to yet, its read end is closed (``| true``, a pager
    quit before the table came: poll's POLLERR). A command whose only product is its output
    (sample, gradcheck) stops then, quietly: it ran on to its end, the output dropped."""
    if isinstance(sys.stdout, _Output) and sys.stdout.reader_gone:
        return True
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()  # (none on Windows: AttributeError)
    except (AttributeError, OSError, ValueError):  # a test's stream, a closed descriptor
        return False
    poller.register(fd, 0)  # POLLERR and POLLHUP are reported unasked
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _drop(stream) -> None:
    """Send what is still written to ``stream`` (stdout, stderr) nowhere: its reader is gone."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


# ---------------------------------------------------------------------------------------------
# the root: `rnnlab`, `rnnlab --version`
# ---------------------------------------------------------------------------------------------

def _version_callback(value: bool) -> None:
    if value:
        write_out(f"rnnlab {__version__}\n")
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            open_lab(None)
            raise typer.Exit(0)
        # no terminal to draw in: a hint (a message, so on stderr) instead of a TUI waiting on a pipe
        sys.stderr.write("rnnlab: the lab needs a terminal. Run `rnnlab` in one, or script it:\n"
                         "  rnnlab presets | train PRESET | bptt PRESET | trace PRESET --out FILE.npz"
                         " | sample RUN_DIR\n  rnnlab --help lists every command.\n")
        raise typer.Exit(2)  # as `rnnlab tui`'s: a cron job's `rnnlab` did nothing, and must not read as done


SET_HELP = ("Change a field of the spec, FIELD=VALUE with the spec's dotted name and a TOML value (model.cell=gru, "
            "train.learning_rate=0.01, task.length=200; repeatable). A preset given another task or cell is named for "
            "it (hello-gru); another task starts from its own defaults.")


def _set_option(*own: str) -> Any:
    """The --set option of a command whose options ``own`` (--steps, --device) set spec fields of their own."""
    said = "" if not own else (f" {own[0]} sets its own field: that field in --set too is refused." if len(own) == 1
                               else f" {', '.join(own[:-1])} and {own[-1]} set their own fields: the same one in --set "
                               "too is refused.")
    return typer.Option("--set", metavar="FIELD=VALUE", help=SET_HELP + said, show_default=False)


def _overrides(sets: list[str] | None, flags: Mapping[str, tuple[str, Any]] = {}) -> dict[str, tuple[Any, str]]:
    """``--set`` values as spec overrides, ``{field: (value, text as typed)}``: ``FIELD=VALUE``, the
    value read as TOML (1e-3, true, "gru"), else as a number (.01), else as the text it is (gru). A
    relative ``task.path`` is the working directory's, as on any command line, else a file of rnnlab's
    sample_data/ by that name, as in a spec file (``task.path=tiny-shakespeare.txt``). ``flags``: the
    options that set a field of their own, ``{field: (option, value)}`` (--steps: train.steps),
    which --set may not set too."""
    import tomllib

    overrides: dict[str, tuple[Any, str]] = {}
    for item in sets or ():
        field, sep, text = item.partition("=")
        field, text = field.strip(), text.strip()
        if not sep or not field or not text:
            raise UserError(f"--set takes FIELD=VALUE (model.cell=gru), got {item!r}")
        if "\n" in text or "\r" in text:  # the lines after the first were read as TOML of their own, and dropped
            raise UserError(f"--set takes one FIELD=VALUE on one line (model.cell=gru), got {item!r}")
        if field in flags:
            raise UserError(f"--set {field} and {flags[field][0]} both set {field}: give one")
        if field in overrides:  # the second silently won
            raise UserError(f"--set {field} given twice ({overrides[field][1]} and {text}): give one")
        try:
            value = tomllib.loads(f"value = {text}")["value"]
        except (tomllib.TOMLDecodeError, RecursionError):  # (an array of arrays ... 400 deep)
            try:  # what TOML refuses but a reader would not (.01, 1.); ASCII digits only, as TOML's
                value = float(text) if text.isascii() else text  # (float("٨") is 8.0)
            except ValueError:
                value = text
        if isinstance(value, (dict, list)):
            raise UserError(f"--set takes one field at a time (model.cell=gru), not a table or list: {item!r}")
        if field == "task.path" and isinstance(value, str):
            from ..data.files import resolve_path

            value = str(resolve_path(value))
        overrides[field] = (value, text)
    return overrides


def set_fields(sets: list[str] | None) -> list[str]:
    """The fields ``--set`` items name (``model.cell`` of ``model.cell=gru``), as :func:`_overrides`
    reads them, without reading their values."""
    return [item.partition("=")[0].strip() for item in sets or ()]


def _with_sets(spec, sets: list[str] | None, flags: Mapping[str, tuple[str, Any]] = {}):
    """``spec`` with the ``--set`` fields and the ``flags``' fields changed, in one edit
    (:func:`rnnlab.spec.edited`); a refused field is named as given ("--set model.hidden_size: ...").
    A text field given what TOML reads as something else (name=1e3, name=true) gets the text."""
    from ..spec import edited

    sets_given = _overrides(sets, flags)
    values = {field: value for field, (value, _) in sets_given.items()}
    values.update({field: value for field, (_, value) in flags.items()})
    if not values:
        return spec
    spec = _as_typed_where_refused(lambda changed: edited(spec, changed), values, sets_given)
    unread = spec.unread_fields()
    for field in sets_given:  # (at its default it passed, and a sweep over it trained one run many times)
        if field in unread and field != "model.device":  # (--set model.device=cpu: where it runs anyway)
            raise UserError(f"--set {field}: {unread[field]}: the run would ignore it")
    return spec


def _as_typed_where_refused(build, values: dict[str, Any], given: Mapping[str, tuple[Any, str]]):
    """``build(values)``; where a ``--set`` text field was given what TOML reads as something else
    (name=1e3, name=true), again with the text as typed; a refused ``--set`` field named as given
    ("--set model.hidden_size: ..."), a number out of its range quoted as typed ("got 1e2", not "got 100")."""
    from ..errors import SpecError

    retried: set[str] = set()
    while True:
        try:
            return build(values)
        except SpecError as exc:
            field = exc.field
            if field in given and field not in retried and not isinstance(values[field], str) \
                    and "expected a string" in str(exc):
                values[field] = given[field][1]  # the text as typed
                retried.add(field)
                continue
            if field not in given:
                raise UserError(str(exc)) from None
            message = str(exc)
            if exc.refused is not None and message.endswith(f", got {exc.refused}"):  # echoed as typed: 1e2, not 100
                message = message.removesuffix(exc.refused) + given[field][1]
            raise UserError(f"--set {message}") from None


def load_with_sets(target: str, sets: list[str] | None, flags: Mapping[str, tuple[str, Any]] = {}):
    """``load_spec(target)``; where a spec file's (or stdin's: ``-``) own task fields fail on its data (a text
    shorter than its length, a file gone) and ``--set`` changes a task field, the file's fields with the
    sets' task fields in them, loaded in one: "--set task.length=2" could not fix what it was given
    for, as the file was checked alone first."""
    from ..errors import SpecError
    from ..spec import STDIN_TARGET, load_spec, spec_from_document, spec_toml, stdin_text

    try:
        return load_spec(target)
    except SpecError as exc:
        given = {field: pair for field, pair in _overrides(sets, flags).items() if field.startswith("task.")}
        path = Path(target)
        stdin = target == STDIN_TARGET
        if not exc.field.startswith("task") or not given or "task.kind" in given \
                or not stdin and (path.suffix.lower() != ".toml" or not path.is_file()):  # (another kind: its own
            raise  # fields, edited)
        data = spec_toml(stdin_text() if stdin else path.read_text(encoding="utf-8"))
        if not isinstance(data.get("task"), dict):
            raise

        def build(values: dict[str, Any]):
            data["task"].update({field.removeprefix("task."): value for field, value in values.items()})
            return spec_from_document(data, source="stdin" if stdin else str(path),
                                      base_dir=None if stdin else path.resolve().parent)

        return _as_typed_where_refused(build, {field: value for field, (value, _) in given.items()}, given)


#: The task fields ``--set`` may not change on a run that ``bptt`` and ``trace`` examine (its trained
#: weights on other sequences: adding's T=100 model at T=400): its kind, its data file, its units.
RUN_TASK_FIELDS_FIXED = ("task.kind", "task.path", "task.standardize")  # (standardize: the inputs' units)


def spec_with_sets(target: str | None, sets: list[str] | None, device: str | None = None, *,
                   run_task_sets: bool = False, fallback: bool = True):
    """``open_target(target)``: (spec, run or None), the spec with the ``--set`` fields and
    ``device`` changed, which a run directory refuses (its weights were trained with its own spec);
    with ``run_task_sets`` (bptt, trace: nothing is saved) but for task fields other than
    :data:`RUN_TASK_FIELDS_FIXED`, which read its weights on other sequences. ``fallback`` as
    :func:`~rnnlab.lab.open_target`'s."""
    from ..errors import SpecError
    from ..lab import open_target

    try:
        spec, run = open_target(target, device, fallback=fallback)
    except SpecError:
        if not sets or target is None:
            raise
        spec, run = open_target(load_with_sets(target, sets), device, fallback=fallback)
    if not sets:
        return spec, run
    if run is not None:
        if run_task_sets and all(f.startswith("task.") and f not in RUN_TASK_FIELDS_FIXED for f in set_fields(sets)):
            return _with_sets(spec, sets), run  # (the device as the run's: open_target chose it)
        only = (" (its task's fields but kind, path and standardize: this command reads its weights on other "
                "sequences)"
                if run_task_sets else "")
        raise UserError(f"--set changes a spec, not a run{only}: {target}'s weights were trained with its own (to "
                        f"train a variant: rnnlab train {Path(target) / 'spec.toml'} --set ...)")
    flags = {} if device is None else {"model.device": ("--device", device)}
    return open_target(_with_sets(spec, sets, flags), device, fallback=fallback)  # (a cuda spec may fall back)


def _require_terminal(script: str = "rnnlab train, bptt, trace or sample") -> None:
    """UserError unless stdin, stdout and stderr are a terminal: a full-screen app on a pipe would
    wait for keys that never come and write its screen into the pipe, and Textual draws on stderr
    (``rnnlab tui 2>log`` drew the whole screen into the file, the terminal blank). ``script``: the
    commands that do the lab's work without one."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError(f"the lab needs a terminal (stdin and stdout are not one); script it with {script} instead")
    if not sys.stderr.isatty():
        raise UserError("the lab draws its screen on stderr, which is not a terminal here: leave stderr on the "
                        "terminal (no 2>FILE)")


def open_lab(target: str | None, sets: list[str] | None = None) -> None:
    """Run the TUI on ``target``: a preset, a spec file or a run directory (None: hello), a folder of
    run directories (the lab opens on the one the user chooses), or the name of an architecture
    lab (``rnnlab.labs.LABS``: esn, seq2seq, treebank) or of its headless command (``tree`` for
    treebank). ``sets``: ``--set`` fields, for a preset or a spec file."""
    from ..labs import LABS
    from ..spec import EMPTY_TARGET, STDIN_TARGET
    from .experiments import LAB_COMMANDS

    target = {command: lab for lab, command in LAB_COMMANDS.items()}.get(target, target)
    if target is not None and not target.strip():
        raise UserError(EMPTY_TARGET)
    if target == STDIN_TARGET:
        raise UserError("the lab reads its keys from stdin, so it takes no spec from there (-): save the spec to a "
                        ".toml file and give that")
    if sets and target in LABS:
        raise UserError(f"--set changes an experiment's spec; {target} is an architecture lab, with options of its "
                        f"own (rnnlab {LAB_COMMANDS.get(target, target)} --help)")
    if target in LABS:
        from ..tui.labs import LabScreenApp
        from ..tui.terminal import say_exit

        _require_terminal(f"rnnlab {LAB_COMMANDS.get(target, target)}")
        with _compile_notices():  # the engine is built (and its kernels loaded) before the screen opens
            app = LabScreenApp(target)
        app.run()
        say_exit(app)
        if app.return_code:  # the screen stopped on an error (Textual has printed it)
            raise typer.Exit(app.return_code)
        return
    from ..spec import preset_names, spelt_as_path
    from ..train.rundir import stat_path
    from ..train.runs import holds_runs
    from ..tui.app import run_lab

    if target is not None and target not in preset_names() and stat_path(target) is None \
            and Path(target).suffix != ".toml":
        if spelt_as_path(target):  # ./hello: as load_spec says it
            raise UserError(f"no such file or directory: {target} (a preset name, a spec .toml file, a run "
                            "directory or a folder of them)")
        match = f"{target}.toml" if Path(f"{target}.toml").is_file() else closest_name(target,
                                                                                      preset_names() + sorted(LABS))
        hint = f" (did you mean {match!r}?)" if match else ""
        raise UserError(f"unknown experiment {target!r}{hint}: not a preset ({', '.join(preset_names())}), "
                        f"an architecture lab ({', '.join(sorted(LABS))}), a spec file or a run directory")
    if target is not None and target not in preset_names() and holds_runs(Path(target)):
        if sets:
            raise UserError(f"--set changes an experiment's spec; {target} is a folder of runs")
        _require_terminal("rnnlab runs")
        status = run_lab(choose_in=Path(target))  # the open dialog lists them first
        if status:
            raise typer.Exit(status)
        return
    # a bad target (or --set field) is refused here, as one line and exit 2, before the screen opens
    spec, run = spec_with_sets(target, sets)
    if run is not None:
        run.check_data(spec.make_task())  # and weights whose data file changed since
        run.check_model()  # or whose model the spec no longer describes
    _require_terminal()
    status = run_lab(spec if sets else target)
    if status:
        raise typer.Exit(status)


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------

def reflow_help(typer_app: typer.Typer) -> None:
    """Join the lines of each command's help paragraphs: typer's rich help keeps the single line
    breaks of every paragraph after the first, so a docstring wrapped for the source would print
    ragged in a terminal of any other width."""
    for info in typer_app.registered_commands:
        text = info.help or inspect.getdoc(info.callback) or ""
        info.help = "\n\n".join(" ".join(paragraph.split()) for paragraph in text.split("\n\n"))


def option_range(low: float | None, high: float | None) -> str:
    """A ranged number option's range as both its --help ("In [1, 4096].") and its refusal ("--batch must be an
    integer in [1, 4096], got 0") say it, so that the two always agree: "in [1, 4096]" where both ends are
    bounded (the labs' options' words), else "at least 1" (:func:`~rnnlab.errors.range_words`)."""
    from ..errors import range_words
    from ..labs._options import interval

    return f"in {interval(low, high)}" if low is not None and high is not None else range_words(low, high)


def _tidy_help(command: Any, parent: Any = None) -> None:
    """What typer 0.2x writes in a help that reads badly: "<bool>" beside a flag (which takes no
    value: ``--json false`` is refused), an argument named in lower case (``{run_dir}``, and its errors
    "Missing argument 'run_dir'") where the README says RUN_DIR, and a ranged number option's range as ``<int range>
    [1<=x<=4096]`` (the seed's as [0<=x<=9223372036854775807], which an 80-column terminal cuts
    between two lines): written as the architecture labs' options and every range error write it,
    ``<int>`` and "In [1, 4096]." at the end of its help (the range checked is unchanged).
    Duck-typed: typer 0.2x vendors click, older typer uses click's."""
    # --help is made on demand, from a context (its names, -h included, are the context's), and kept
    ctx = command.context_class(command, parent=parent, **command.context_settings)
    help_option = command.get_help_option(ctx)
    for param in [*command.params, *([help_option] if help_option is not None else [])]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        if getattr(param, "param_type_name", None) == "argument" and param.metavar is None:  # "RUN_DIR", as the
            param.metavar = param.name.upper()  # README and the errors name it ("give a spec (TARGET)"), not "run_dir"
        low, high = getattr(param, "min", None), getattr(param, "max", None)
        kind = getattr(getattr(param, "type_descriptor", None), "annotation", None)
        if (low is not None or high is not None) and kind in (int, float) \
                and hasattr(param, "_get_number_range_help_str"):  # typer 0.2x's
            phrase = option_range(low, high)
            note = f"{phrase[0].upper()}{phrase[1:]}."
            if not (param.help or "").endswith(note):
                param.help = f"{param.help} {note}" if param.help else note
            param._get_number_range_help_str = lambda: None
            param.display_type = param.display_type_rich = lambda ctx, label=f"<{kind.__name__}>": label
    for sub in getattr(command, "commands", {}).values():
        _tidy_help(sub, ctx)


def _interrupted(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt is what ``exc`` was raised from (its cause or context, at any depth)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (the console script passes it to ``sys.exit``)."""
    streams, errors = (sys.stdout, sys.stderr), getattr(sys.stdout, "errors", None)
    with contextlib.suppress(AttributeError, ValueError):  # (a stream replaced by a test's, or closed)
        # a message's path in UTF-8 to an ASCII stdout: escaped, as on stderr, not a UnicodeEncodeError
        # (exit 1 for a run that trained and was saved); a result is checked whole (write_out)
        sys.stdout.reconfigure(errors="backslashreplace")
    sys.stdout, sys.stderr = _Output(sys.stdout, "stdout"), _Output(sys.stderr, "stderr")
    try:
        with notices.written_by(say):  # the core's warnings and notes wrapped at words, as the CLI's own messages
            return _main(argv)
    finally:
        sys.stdout, sys.stderr = streams
        with contextlib.suppress(AttributeError, ValueError, TypeError):
            sys.stdout.reconfigure(errors=errors)  # as it was, for a caller of main() in-process


def _value_typed(exc: Exception) -> str:
    """`` (got '1e3')`` where typer's check of an option's type or range says what it should be but not
    what was typed (``Input should be a valid integer``: pydantic's words, its error the cause); else ""."""
    errors = getattr(exc.__cause__, "errors", None)
    try:
        typed = errors()[0]["input"] if callable(errors) else None
    except (TypeError, LookupError):
        return ""
    return "" if typed is None else f" (got {typed!r})"


#: pydantic's kinds of error for a number typer refused as an int or float option's value
_NUMBER_REFUSALS = {"int_parsing", "float_parsing", "int_from_float", "greater_than_equal", "greater_than",
                    "less_than_equal", "less_than", "finite_number"}


def _number_refused(exc: Exception) -> str | None:
    """An int or float option's value typer refused, worded as rnnlab's own checks word theirs: "--steps must be
    an integer in [1, 100000000], got 0" beside "--units must be an integer in [1, 1000], got 0" (the lab's),
    where typer said "Invalid value for '--steps': Input should be greater than or equal to 1"; a whole number
    in an exponent gets its digits (1e3: 1000), as a spec's integer fields take it. None for anything else."""
    from ..labs._options import shown

    param, errors = getattr(exc, "param", None), getattr(exc.__cause__, "errors", None)
    kind = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if getattr(param, "param_type_name", None) != "option" or kind not in (int, float) or not callable(errors):
        return None
    try:
        error = errors()[0]
    except (TypeError, LookupError):
        return None
    typed = error.get("input")
    if error.get("type") not in _NUMBER_REFUSALS or not isinstance(typed, str):
        return None
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    what = "an integer" if kind is int else "a number"
    if low is not None or high is not None:
        what += f" {option_range(low, high)}"
    try:
        number = float(typed) if typed.strip().isascii() else None  # (float("٨") is 8.0)
    except ValueError:
        number = None
    got = shown(typed) if number is None else typed.strip()  # a number as typed, anything else quoted
    if kind is int and number is not None and number.is_integer() and (low is None or number >= low) \
            and (high is None or number <= high) and abs(number) < 2**53:
        got += f" (in digits: {int(number)})"
    flag = max(param.opts, key=len)
    return f"{flag} must be {what}, got {got}"


#: The commands that take an experiment (and --set): the first that takes an option typed before any command
#: is the one named for it, before a spec field's --set and then any other command.
_EXPERIMENT_COMMANDS = ("tui", "train", "spec", "bptt", "trace")


def _unknown_option(exc: Exception, group: Any) -> str | None:
    """Where an option unknown where it was typed belongs: after a command (``rnnlab --steps 50`` is
    ``rnnlab train --steps 50``), or, a spec field's name (``--cell``, ``--hidden-size``), in
    ``--set FIELD=VALUE`` (``rnnlab --cell gru``: ``rnnlab tui --set model.cell=gru``). None where it is
    neither: click's "No such option" (with its guesses) says it."""
    from ..spec import field_named

    option, ctx = getattr(exc, "option_name", None), getattr(exc, "ctx", None)
    if not isinstance(exc, _click_exceptions.NoSuchOption) or not option or ctx is None:
        return None
    name, command = option.split("=", 1)[0], ctx.command
    field = field_named(name[2:]) if name.startswith("--") else None
    if command is group:  # typed before any command
        takers = [word for word, sub in group.commands.items()
                  if not sub.hidden and any(name in param.opts for param in sub.params)]
        first = next((word for word in _EXPERIMENT_COMMANDS if word in takers), None)
        if first is None and field is None and takers:
            first = takers[0]
        if first is not None:
            others = [word for word in takers if word != first]
            also = f" ({', '.join(others)} {'takes' if len(others) == 1 else 'take'} it too)" if others else ""
            return f"{name} goes after a command: `rnnlab {first} {name} ...`{also}"
        command = group.commands.get("tui")
    if command is None:
        return None
    if field is not None and any("--set" in param.opts for param in command.params):
        return f"No such option: {name} (the experiment's {field} is set with `rnnlab {command.name} --set " \
               f"{field}=VALUE`)"
    return _abbreviated_option(name, command)


def _abbreviated_option(name: str, command: Any) -> str | None:
    """"No such option: --rho (did you mean --spectral-radius?)": an option's abbreviation (its initials, or the
    name papers give it: :func:`rnnlab.errors.abbreviated`, as the labs' options dialogs take them), which click's
    spelling guess does not see; None where ``name`` abbreviates none of ``command``'s long options."""
    from ..errors import abbreviated

    if not name.startswith("--"):
        return None
    flags = {opt[2:].replace("-", "_"): opt for param in command.params for opt in param.opts if opt.startswith("--")}
    meant = abbreviated(name[2:], list(flags))
    return None if meant is None else f"No such option: {name} (did you mean {flags[meant]}?)"


def _main(argv: list[str] | None) -> int:
    command = typer.main.get_command(app)
    _tidy_help(command)
    try:
        result = command.main(args=argv, prog_name="rnnlab", standalone_mode=False)
    except _click_exceptions.UsageError as exc:
        if refused := _number_refused(exc):  # as the labs' own range errors read
            say(f"rnnlab: error: {refused}")
            return 2
        # "rnnlab: error:" as every other refusal reads, typer's "rnnlab sample: error:" too (a log's grep finds all)
        message = _unknown_option(exc, command) or " ".join(exc.format_message().split()) + _value_typed(exc)
        say(f"rnnlab: error: {message}")
        return 2
    except _click_exceptions.ClickException as exc:
        say(f"rnnlab: error: {' '.join(exc.format_message().split())}")
        return exc.exit_code
    except _Abort:
        sys.stderr.write("rnnlab: aborted\n")
        return 130
    except SystemError as exc:  # Ctrl-C inside a compiled kernel: numba reports it wrapped in a SystemError
        if not _interrupted(exc):
            raise
        return 130  # as typer ends any other Ctrl-C: the status, nothing more than the terminal's ^C
    except UserError as exc:  # a bad spec, data file, run directory or argument value
        message = " ".join(str(exc).split())
        if isinstance(exc, TargetExistsError):  # only the commands with --force write without replacing
            message += " (add --force to replace it)"
        say(f"rnnlab: error: {message}")
        return 2
    except WriteFailed as exc:  # a full disk, an I/O error: a failure, not bad input (what is saved is kept)
        say(f"rnnlab: error: {' '.join(str(exc).split())}")
        return 1
    except MemoryError as exc:  # the last guard: sizes are checked before allocating where they can be
        reason = " ".join(str(exc).split()) or "an allocation failed"
        say(f"rnnlab: error: out of memory: {reason}")
        return 2
    return result if isinstance(result, int) else 0

