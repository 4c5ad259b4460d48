"""The encoder-decoder lab's screen: the bench sequence decoded one output token at a time, the
attention matrix (decoder step x encoder step) growing one row per step, and the training curves.

Top: the source digits (shaded by the cursor step's attention weights), the expected output and the
decoded output (right tokens green, wrong ones red, the cursor step reversed), and what the cursor
step did. f switches every panel of the bench between greedy decoding (each step fed the model's own
previous token) and teacher-forced decoding (fed the expected one, as in training). Middle left: the
attention matrix of the bench sequence, :class:`Seq2SeqAttention` (a reversal model draws an
anti-diagonal), or for the plain encoder-decoder the encoder's and the
decoder's hidden states as heatmaps, with a note. Middle right: the loss and the greedy sequence
accuracy by source length while training, and the latest scores as a table. Bottom: messages and
the status line. Below the minimum size (:data:`rnnlab.tui.terminal.MIN_SIZE`) a message covers the
panels, as in the main lab.

The engine (:class:`~rnnlab.labs.seq2seq.Seq2SeqLab`) does all the work. Training and rebuilding
the model run in worker threads; a 10 Hz timer reads the training history, and twice a second
re-decodes the bench sequence with the new weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from rich.color import Color as RichColor
from rich.console import Group
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.geometry import Region
from textual.message import Message
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Header, Label, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState, get_current_worker

from ...data.seq2seq import BOS, EOS, PAD
from ...errors import UserError, counted
from ...labs._options import parse_assignments
from ...labs.seq2seq import (ATTENTION_CHOICES, CHOICES, DEFAULTS, IN_PLACE_OPTIONS, MAX_BENCH_LENGTH, TASKS,
                             Seq2SeqLab, digit_count, option_range)
from ..panels import LabView, StepRate
from ..terminal import (NOTHING_TRAINING, PAUSED_NOTICE, UNTRAINED, HoldsKeysWhileTooSmall, PassKeysToDialog,
                        RefitsAfterDialogs, error_text, first_fit, fit_footer, fitted_footer, scroll_pages,
                        show_if_too_small, take_screenshot, training_progress, trains_more, warn_without_true_colour)
from ..screens import Dialog, PromptScreen, key_names, key_table
from ..widgets import Heatmap, LinePlot, colorbar_strip, get_colormap
from ..widgets._strips import text_strip
from . import QUIT_HELP_TRAINED, OptionsPrompt, changes_said, fit_sub_title, model_stays, trained_count

REFRESH_HZ = 10          # how often the screen reads the training history
DECODE_EVERY = 5         # ... and re-decodes the bench sequence with the new weights (2 Hz)
MAP_ROWS = 8             # rows of the attention matrix (or all it has) kept before its note gets a line

_SHORT = {PAD: "PAD", BOS: "BOS", EOS: "EOS"}
RIGHT, WRONG = "#5fd75f", "#ff5f5f"
BUCKET_COLORS = ("#87d7ff", "#5fafff", "#ffaf5f", "#ff5f87", "#d787d7", "#ffd75f")

#: The options dialog's word on an option, after the values it takes (none: they say it all).
OPTION_NOTES = {
    "min_length": "shortest training source",
    "max_length": "longest training source",
    "steps": "per run (t)",
    "batch_size": "sources per step",
    "learning_rate": "Adam's",
    "seed": "weights, batches, bench",
    # the lab scores as it trains (a curve: small and often), rnnlab seq2seq once at the end, on more: its defaults
    # differ, and a user who met the other's says so here (whole in the 72-cell dialog: 27 and 30 cells are left)
    "eval_every": "0: at the end only (CLI: 0)",
    "eval_size": "per length bucket (CLI: 500)",
}

ATTENTION_SCORES = {
    "dot": "score = d_t·e_s",
    "general": "score = d_t·W_a e_s",
    "additive": "score = v·tanh(W_1 d_t + W_2 e_s)",
}


def short_token(token: int) -> str:
    """A token in three cells at most: the digit, or BOS, EOS, PAD."""
    return _SHORT.get(int(token), str(int(token) - 3) if 3 <= token <= 12 else "?")


def _luminance(rgb: tuple[int, int, int]) -> float:
    r, g, b = rgb
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255.0


# ---------------------------------------------------------------------------------------------
# the bench: source, expected and decoded tokens
# ---------------------------------------------------------------------------------------------

class Seq2SeqTokens(LabView):
    """The bench sequence: source digits (background = the cursor step's attention on each),
    the expected output and the decoded output revealed up to the cursor; then what the cursor
    step did. Column k is position k in all three rows; rows wider than the panel show one window
    of positions around the cursor's decoder step, and "…" marks a row cut at either end (on the
    source row "◀" or "▶" where the position the step attends to most is out of the window)."""

    CELL = 4   # a token (up to three characters: BOS, EOS) and a space, so neighbours never run together
    LABEL = 10  # "expected" and a space; its last cell holds the "…" of a row cut on the left

    window = range(0)  # the positions shown now (source position s in the column of output step t = s)

    def _window(self, n: int, focus: int) -> range:
        """All ``n`` positions when they fit, else a window around ``focus``. One window for every
        row: scrolling the source apart from the outputs would put unrelated positions in a column."""
        room = (self.size.width or 100) - self.LABEL
        if n * self.CELL <= room:
            return range(n)
        visible = max(1, (room - 1) // self.CELL)  # a cell less the "…" after a cut row
        start = min(max(0, focus - visible // 2), n - visible)
        return range(start, start + visible)

    def _row(self, text: Text, label: str, length: int, focus: int | None = None) -> None:
        """A row's label, with "…" when the row has positions before the window ("◀" in the
        attention's colour when the source position the step attends to most, ``focus``, is among them)."""
        cut = self.window.start > 0 and length > 0
        text.append(f"{label:<{self.LABEL - 1}}", style="bold")
        if cut and focus is not None and focus < self.window.start:
            text.append("◀", style=self._focus_style())
        else:
            text.append("…" if cut else " ", style="dim")

    @staticmethod
    def _focus_style() -> Style:
        return Style(color=RichColor.from_rgb(*get_colormap("sequential").colors[-1]), bold=True)

    def _end_row(self, text: Text, length: int, *notes: list[tuple[str, str]], focus: int | None = None,
                 whole: bool = False) -> None:
        """A row's end: "…" when it has positions after the window ("▶" as :meth:`_row`'s "◀" when
        ``focus`` lies after it), then the first of ``notes`` (each a list of (text, style) pieces,
        the whole note first) that fits the panel, a shortened one ending in "…" as every clipped
        line does ("10 digits…": more than fits); none when none does (a lone "…" would read as a cut
        row). ``whole``: each shorter note is a whole form of its own (the verdict's "✗ 14/14"), no
        "…" after it: "wrong…" read as a word cut short."""
        if length > self.window.stop:
            after = focus is not None and focus >= self.window.stop
            text.append("▶" if after else "…", style=self._focus_style() if after else "dim")
        room = (self.size.width or 100) - (len(text.plain) - text.plain.rfind("\n") - 1)  # one cell a character
        for k, pieces in enumerate(notes):
            marked = k > 0 and not whole
            need = sum(len(piece) for piece, _ in pieces) + marked
            if k > 0 and need > room and pieces[0][0].startswith("   "):  # a cell of the gap given up
                pieces, need = [(pieces[0][0][1:], pieces[0][1]), *pieces[1:]], need - 1
            if need <= room:
                for piece, style in pieces:
                    text.append(piece, style=style)
                if marked:
                    text.append("…", style=pieces[-1][1])
                break
        text.append("\n")

    def refresh_view(self) -> None:
        lab = self._lab
        d = lab.decoding
        step = lab.cursor_step
        info = lab.step_info()
        cmap = get_colormap("sequential")
        text = Text(no_wrap=True, overflow="crop")
        S, n = d.source.size, max(d.source.size, d.expected.size, d.steps)
        self.window = window = self._window(n, 0 if step is None else step)

        # source, shaded by the cursor step's attention weights
        weights = d.weights[step] if (d.weights is not None and step is not None) else None
        focus = info.focus if (weights is not None and info is not None) else None  # out of the window: ◀ or ▶
        self._row(text, "source", S, focus)
        for s in window:
            if s >= S:
                break  # its note follows its last digit
            style = None
            if weights is not None:
                rgb = cmap.colors[int(cmap.levels(weights[s:s + 1], 0.0, 1.0)[0])]
                fg = "black" if _luminance(rgb) > 0.5 else "white"
                style = Style(color=fg, bgcolor=RichColor.from_rgb(*rgb), bold=info.focus == s)
            text.append(f"{short_token(d.source[s]):^{self.CELL}}", style=style)
        low, high = lab.options["min_length"], lab.options["max_length"]
        digits = (f"   {digit_count(S)}", "dim")
        training = (f" (training {low}-{high})" if low != high else f" (training {low})", "dim")
        if lab.unseen_length:
            longer = ("  longer than training", "bold yellow")
            self._end_row(text, S, [digits, training, longer], [digits, longer],
                          [("   longer than training", longer[1])], focus=focus)
        else:
            self._end_row(text, S, [digits, training], [digits], focus=focus)

        # expected and decoded, aligned by output step
        self._row(text, "expected", d.expected.size)
        stop = max(d.expected.size, 0 if step is None else step + 1)  # past its end: up to the cursor (underlined)
        for t in window:
            if t >= stop:
                break
            token = short_token(d.expected[t]) if t < d.expected.size else ""
            text.append(f"{token:^{self.CELL}}", style="underline" if t == step else "dim" if t >= lab.cursor else None)
        self._end_row(text, d.expected.size)
        forced = d.mode == "teacher-forced"
        self._row(text, "forced" if forced else "decoded", d.steps)
        correct = d.correct
        for t in window:
            if t >= d.steps:
                break
            if t >= lab.cursor:
                text.append(f"{'·':^{self.CELL}}", style="dim")
            else:
                colour = RIGHT if correct[t] else WRONG
                style = f"bold reverse {colour}" if t == step else f"{colour}"
                text.append(f"{short_token(d.tokens[t]):^{self.CELL}}", style=style)
        verdicts: list[str] = []
        if lab.cursor == d.steps and forced:
            verdicts = self._forced_verdicts(lab)
        elif lab.cursor == d.steps:
            if d.all_correct:
                verdicts = ["right"]
            else:
                wrong = int((~correct).sum())
                ending = (f", no EOS within {d.steps} steps" if not d.ended else
                          f", {d.expected.size - d.steps} missing" if d.steps < d.expected.size else "")
                tokens = counted(d.steps, "token")
                # each form whole, the count kept longest: at 80x24 a 14-token decoding left "wrong…"
                verdicts = [f"wrong: {wrong} of {tokens}{ending}", f"wrong: {wrong} of {tokens}",
                            f"wrong: {wrong} of {d.steps}", f"wrong {wrong}/{d.steps}", f"✗ {wrong}/{d.steps}", "✗"]
        style = f"bold {RIGHT if d.all_correct else WRONG}"
        self._end_row(text, d.steps, *([(f"   {verdict}", style)] for verdict in verdicts), whole=True)
        text.append(self._step_line(lab, info, self.size.width or 100))
        self.update(text)

    @staticmethod
    def _forced_verdicts(lab: Seq2SeqLab) -> list[str]:
        """The teacher-forced decoding's verdict forms, longest first, beside greedy decoding's misses of
        the same expected tokens: "wrong: 1 of 8 tokens (greedy: 4 of 8)"."""
        d, greedy = lab.decoding, lab.decodings["greedy"]
        T, wrong, greedy_wrong = d.expected.size, d.misses, greedy.misses
        if not wrong:
            return ([f"right (greedy: {greedy_wrong} of {T} wrong)", f"right (greedy {greedy_wrong} wrong)", "right"]
                    if greedy_wrong else ["right, as greedy", "right"])
        return [f"wrong: {wrong} of {counted(T, 'token')} (greedy: {greedy_wrong} of {T})",
                f"wrong: {wrong} of {T} (greedy {greedy_wrong})", f"wrong: {wrong} of {T}",
                f"wrong {wrong}/{T}", f"✗ {wrong}/{T}", "✗"]

    @staticmethod
    def _step_line(lab: Seq2SeqLab, info, width: int) -> Text:
        """What the decoder did at the cursor step: the token it wrote, how sure, what came next,
        and where it looked; in shorter words where the full line is wider than ``width`` (at 80
        columns "looked at source position …" lost the position and the digit)."""
        d = lab.decoding
        if info is None:
            return Text(f"decoder step 0/{d.steps}: → writes the first token (fed BOS, starting from the encoder's "
                        "final state)", style="dim", no_wrap=True, overflow="ellipsis")
        token, runner_up = short_token(info.token), short_token(info.runner_up)
        # what it read: greedy, a wrong token it wrote is fed on (exposure bias); teacher-forced, the true one
        if info.step == 0:
            fed = ("fed BOS → ", "")
        elif d.mode == "teacher-forced":
            fed = (f"fed the true {short_token(info.fed)} → ", "")
        elif not d.correct[info.step - 1]:
            fed = (f"fed its wrong {short_token(info.fed)} → ", WRONG)
        else:
            fed = (f"fed its {short_token(info.fed)} → ", "")
        wrong = ((", past the expected output", ", past the end") if info.expected is None else
                 (f", expected {short_token(info.expected)}",) * 2 if not info.correct else ("", ""))
        if info.focus is not None:
            looked = ((f"   looked at source position {info.focus + 1} ", ""),
                      (f"(digit {short_token(info.focus_token)}, weight {info.focus_weight:.2f})", "bold"))
            short = ((f"  ← source {info.focus + 1} ", ""),
                     (f"({short_token(info.focus_token)}, {info.focus_weight:.2f})", "bold"))
        else:
            looked = (("   no attention: the source reaches the decoder only through its initial state", "dim"),)
            short = (("   no attention", "dim"),)
        head = (f"step {info.step + 1}/{d.steps}: ", "bold")
        full = [("wrote ", ""), (token, "tok"),
                (f" (p {info.probability:.2f}; next best {runner_up} {info.runner_up_probability:.2f})", ""),
                (wrong[0], WRONG), *looked]
        brief = [(token, "tok"), (f" p {info.probability:.2f} (next {runner_up} {info.runner_up_probability:.2f})", ""),
                 (wrong[1], WRONG), *short]
        briefer = [(token, "tok"), (f" p {info.probability:.2f}", ""), (wrong[1], WRONG), *short]
        # what the step was fed goes last but one: at 80 columns, before the runner-up
        forms = [[head, fed, *full], [head, *full], [head, fed, *brief], [head, fed, *briefer], [head, *brief]]
        pieces = next((form for form in forms if sum(len(piece) for piece, _ in form) <= width), forms[-1])
        line = Text(no_wrap=True, overflow="ellipsis")
        for piece, style in pieces:
            line.append(piece, style=f"bold {RIGHT if info.correct else WRONG}" if style == "tok" else style)
        return line


# ---------------------------------------------------------------------------------------------
# the attention matrix
# ---------------------------------------------------------------------------------------------

class Seq2SeqAttention(Widget):
    """The attention matrix as a grid of coloured cells: rows are decoder steps (labelled with
    the token each wrote), columns encoder steps (labelled with the source digit), sequential
    colours on [0, 1]. Rows past the cursor are drawn empty (not decoded yet); the cursor row is
    marked "▶" and shows each weight in percent. Cells are as large as the widget allows (one or
    two lines per row); a matrix larger than the widget shows a window around the cursor.

    Set the data with :meth:`set_matrix`; clicking a row posts :class:`Seq2SeqAttention.RowClicked`.
    """

    DEFAULT_CSS = """
    Seq2SeqAttention {
        height: 1fr;
    }
    Seq2SeqAttention > .seq2seqattention--title {
        text-style: bold;
    }
    Seq2SeqAttention > .seq2seqattention--label {
        color: $text-muted;
    }
    Seq2SeqAttention > .seq2seqattention--cursor {
        color: $accent;
        text-style: bold;
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"seq2seqattention--title", "seq2seqattention--label",
                                             "seq2seqattention--cursor"}

    HEADER_LINES = 3   # title, source digits, source positions
    FOOTER_LINES = 2   # the colour scale, what is out of view
    LABEL = 8          # "▶12 EOS " (marker, step, the token written)

    class RowClicked(Message):
        """A row (decoder step ``row``, 0-based) was clicked."""

        def __init__(self, grid: Seq2SeqAttention, row: int) -> None:
            self.grid = grid
            self.row = row
            super().__init__()

        @property
        def control(self) -> Seq2SeqAttention:
            return self.grid

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._weights = np.zeros((0, 0))
        self._source: list[str] = []
        self._rows: list[str] = []
        self._correct = np.zeros(0, bool)
        self._revealed = 0
        self._heading = ""
        self._lines: list[Strip] | None = None
        # row height, cell width, first row, rows shown, first column, columns shown
        self._geometry = (1, 2, 0, 0, 0, 0)

    def set_matrix(self, weights: np.ndarray, source: list[str], rows: list[str], correct: np.ndarray,
                   revealed: int, title: str) -> None:
        """Show ``weights`` (T', S) with column labels ``source`` (S), row labels ``rows`` (T'),
        ``correct`` (T',) colouring the row labels, rows ``0 .. revealed - 1`` filled in."""
        weights = np.asarray(weights, np.float64)
        if weights.ndim != 2 or weights.shape != (len(rows), len(source)):
            raise ValueError(f"weights must be ({len(rows)}, {len(source)}), got {weights.shape}")
        self._weights, self._source, self._rows = weights, list(source), list(rows)
        self._correct = np.asarray(correct, bool)
        self._revealed = max(0, min(int(revealed), len(rows)))
        self._heading = title
        self._lines = None
        self.refresh()

    @property
    def revealed(self) -> int:
        return self._revealed

    @property
    def cursor_row(self) -> int | None:
        return self._revealed - 1 if self._revealed else None

    def on_resize(self) -> None:
        self._lines = None

    # ------------------------------------------------------------------ layout
    def _layout(self, width: int, height: int) -> tuple[int, int, int, int, int, int]:
        T, S = self._weights.shape
        lines = max(1, height - self.HEADER_LINES - self.FOOTER_LINES)
        row_height = 2 if T and 2 * T <= lines else 1
        rows_shown = min(T, lines // row_height)
        available = max(2, width - self.LABEL)
        cell = max(2, min(available // max(S, 1), 4 if row_height == 1 else 6))
        cols_shown = min(S, available // cell)
        focus = self.cursor_row if self.cursor_row is not None else 0
        first_row = min(max(0, focus - rows_shown // 2), max(0, T - rows_shown))
        focus_col = int(np.argmax(self._weights[focus])) if T and S and self._revealed else 0
        first_col = min(max(0, focus_col - cols_shown // 2), max(0, S - cols_shown))
        return row_height, cell, first_row, rows_shown, first_col, cols_shown

    # ------------------------------------------------------------------ rendering
    def render_lines(self, crop: Region) -> list[Strip]:
        if self._lines is None or len(self._lines) != self.size.height:
            self._lines = self._render_all()
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        if self._lines is None:
            self._lines = self._render_all()
        if y < len(self._lines):
            return self._lines[y]
        return Strip.blank(self.size.width, self.visual_style.rich_style)

    def _render_all(self) -> list[Strip]:
        width, height = self.size
        base = self.visual_style.rich_style
        title_style = self.get_component_rich_style("seq2seqattention--title", partial=True)
        label_style = self.get_component_rich_style("seq2seqattention--label", partial=True)
        cursor_style = self.get_component_rich_style("seq2seqattention--cursor", partial=True)
        lines = [text_strip(width, base, [(0, self._heading, title_style)])]
        T, S = self._weights.shape
        if not T or not S:
            return lines
        row_height, cell, first_row, rows_shown, first_col, cols_shown = self._layout(width, height)
        self._geometry = (row_height, cell, first_row, rows_shown, first_col, cols_shown)
        cols = range(first_col, first_col + cols_shown)
        cursor = self.cursor_row
        focus = int(np.argmax(self._weights[cursor])) if cursor is not None else None

        # column labels: the source digits (the cursor row's focus marked), then positions
        digits = [(0, "source", label_style)]
        positions = [(0, "t wrote", label_style)]  # 7 cells: a space before the first position
        for k, s in enumerate(cols):
            x = self.LABEL + k * cell
            mark = focus == s
            digits.append((x, f"{self._source[s]:^{cell}}", cursor_style if mark else Style(bold=True)))
            if cell >= 3 or s % 2 == 0:
                positions.append((x, f"{s + 1:^{cell}}", cursor_style if mark else label_style))
        lines.append(text_strip(width, base, digits))
        lines.append(text_strip(width, base, positions))

        cmap = get_colormap("sequential")
        levels = cmap.levels(self._weights, 0.0, 1.0)
        background = tuple(base.bgcolor.get_truecolor()) if base.bgcolor else (0, 0, 0)
        foreground = tuple(base.color.get_truecolor()) if base.color else (255, 255, 255)
        empty = RichColor.from_rgb(*(round(b + (f - b) * 0.10) for b, f in zip(background, foreground)))
        for t in range(first_row, first_row + rows_shown):
            revealed = t < self._revealed
            for sub in range(row_height):
                segments: list[Segment] = []
                if sub == 0:
                    marker = "▶" if t == cursor else " "
                    token = self._rows[t] if revealed else "·"
                    colour = (RIGHT if self._correct[t] else WRONG) if revealed else None
                    segments.append(Segment(marker, base + cursor_style))
                    segments.append(Segment(f"{t + 1:>2} ", base + (cursor_style if t == cursor else label_style)))
                    segments.append(Segment(f"{token:<3}", base + Style(color=colour, bold=t == cursor,
                                                                        reverse=t == cursor)))
                    segments.append(Segment(" ", base))
                else:
                    segments.append(Segment(" " * self.LABEL, base))
                for s in cols:
                    if not revealed:
                        segments.append(Segment(" " * cell, Style(bgcolor=empty)))
                        continue
                    rgb = cmap.colors[int(levels[t, s])]
                    text = " " * cell
                    if t == cursor and sub == 0 and cell >= 3:
                        text = f"{round(100 * self._weights[t, s]):>{cell - 1}} "
                    fg = "black" if _luminance(rgb) > 0.5 else "white"
                    segments.append(Segment(text, Style(color=fg, bgcolor=RichColor.from_rgb(*rgb))))
                lines.append(Strip(segments).adjust_cell_length(width, base))
        parts = []  # what is out of view: (name, short name, first shown, last shown, of)
        if rows_shown < T:
            parts.append(("rows", "rows", first_row + 1, first_row + rows_shown, T))
        if cols_shown < S:
            parts.append(("columns", "cols", first_col + 1, first_col + cols_shown, S))
        footer = ", ".join(f"{name} {a}-{b} of {n}" for name, _, a, b, n in parts)
        if len(footer) > width - self.LABEL:  # a narrow matrix: the short form, from the left edge if need be
            footer = ", ".join(f"{short} {a}-{b}/{n}" for _, short, a, b, n in parts)
        if len(lines) < height:  # the colour scale right under the matrix, and what the ▶ row's numbers are
            bar = colorbar_strip(cmap, min(cols_shown * cell, 48), 0.0, 1.0, base)
            unit = [Segment("  ▶ row in %", base + label_style)] if cell >= 3 and cursor is not None else []
            lines.append(Strip([Segment(" " * self.LABEL, base), *bar, *unit]).adjust_cell_length(width, base))
        if footer and len(lines) < height:
            x = self.LABEL if len(footer) <= width - self.LABEL else 0
            lines.append(text_strip(width, base, [(x, footer, label_style)]))
        return lines

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < self.HEADER_LINES:
            return
        row_height, _, first_row, rows_shown, _, _ = self._geometry
        row = first_row + (offset.y - self.HEADER_LINES) // row_height
        if row < first_row + rows_shown:
            self.post_message(self.RowClicked(self, row))


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------

class Seq2SeqTraining(VerticalScroll):
    """Loss (teacher-forced) and greedy sequence accuracy by source length while training, and
    the latest length-bucket scores as a table. Not focusable: the screen's keys (arrows, home,
    end) stay the screen's; the mouse wheel scrolls it."""

    can_focus = False
    #: The fewest rows a plot keeps in a column too short for both at their height (seq2seq.tcss): a
    #: title, three rows of curve, the x-axis.
    PLOT_MIN_ROWS = 5

    def compose(self) -> ComposeResult:
        yield LinePlot(title="loss (t trains)", log_y=True, id="s2s-loss")
        yield LinePlot(title="sequence accuracy", threshold=1.0, id="s2s-buckets")
        yield Static(id="s2s-table")

    def on_resize(self, event: events.Resize) -> None:
        """Both plots whole in the column where their height would overrun it, the table scrolling
        into view under them: at 80x24 two plots of 8 rows (and their margins) in a column of 15 cut
        the accuracy chart above its x-axis."""
        fits = max(self.PLOT_MIN_ROWS, (event.size.height - 1) // 2)  # the first plot's margin between them
        for plot in self.query(LinePlot):
            plot.styles.max_height = fits

    def update_from(self, lab: Seq2SeqLab) -> None:
        history = lab.history[:]  # a snapshot: the trainer thread appends meanwhile
        evals = lab.evals[:]
        loss = self.query_one("#s2s-loss", LinePlot)
        buckets = self.query_one("#s2s-buckets", LinePlot)
        if history:
            loss.set_series("train", [r.step for r in history], [r.loss for r in history], color="#e0e0e0")
            last = history[-1]
            value, accuracy = f"loss {last.loss:.3g}", f"{100 * last.accuracy:.0f}%"
            loss.title = f"{value}, token acc {accuracy}"
            loss.short_titles = (f"{value}, acc {accuracy}", value)  # the plot shows the longest that fits
        else:
            loss.clear()
            loss.title, loss.short_titles = "loss (t trains)", ()
        buckets.clear()
        if evals:
            steps = [e.step for e in evals]
            # the loss plot's steps: the curves line up with the loss above, and one score (the first,
            # at step 250) sat mid-plot on an axis of its own ("225 ... 275", "1.8 ... 2.2" steps)
            buckets.x_range = (history[0].step if history else 1, max(steps[-1], history[-1].step if history else 1))
            for k, b in enumerate(evals[-1].buckets):
                name = b.label + ("*" if b.unseen else "")
                buckets.set_series(name, steps, [e.buckets[k].sequence_accuracy for e in evals],
                                   color=BUCKET_COLORS[k % len(BUCKET_COLORS)])
            # the longest title that leaves room for the legend; where none does, the plot drops the
            # legend and the title says that the table below (lengths in the curves' colours) is the key
            width = buckets.size.width or None
            legend = sum(len(name) + 4 for name in buckets.series_names) - 2
            titles = ("sequence accuracy by length", "sequence accuracy", "seq. accuracy")
            if width is None or any(len(title) + 2 + legend <= width for title in titles):
                buckets.title = first_fit(titles, None if width is None else width - legend - 2)
                buckets.short_titles = ()
                buckets.show_legend = True
            else:  # (the plot would move the legend into its canvas, over the curves, out of order)
                buckets.title = "sequence accuracy by length (key below)"
                buckets.short_titles = ("sequence accuracy (key below)", "accuracy (key below)")
                buckets.show_legend = False
        else:
            buckets.title, buckets.short_titles = "sequence accuracy by source length", ("sequence accuracy",)
        self.query_one("#s2s-table", Static).update(self._table(lab, evals))

    @staticmethod
    def _table(lab: Seq2SeqLab, evals) -> Group | Text:
        if not evals:
            return Text(f"greedy accuracy by source length: every {lab.options['eval_every'] or '-'} steps "
                        f"and at the end of a run, {lab.options['eval_size']} held-out sources each", style="dim")
        last = evals[-1]
        table = Table(box=None, pad_edge=False, expand=False)
        table.add_column("length")
        table.add_column("sequences", justify="right")
        table.add_column("tokens", justify="right")
        for k, b in enumerate(last.buckets):
            table.add_row(Text(b.label + ("*" if b.unseen else ""), style=BUCKET_COLORS[k % len(BUCKET_COLORS)]),
                          f"{100 * b.sequence_accuracy:.1f}%", f"{100 * b.token_accuracy:.1f}%")
        return Group(Text(f"greedy decoding at step {last.step}", style="bold"), table,
                     Text("* longer than any training input", style="dim"))


# ---------------------------------------------------------------------------------------------
# dialogs
# ---------------------------------------------------------------------------------------------

class Seq2SeqPrompt(PromptScreen):
    """One line of input (the shared prompt, styled by this lab's stylesheet)."""


class Seq2SeqChoice(Dialog[str | None]):
    """Pick one of ``choices`` (Enter), or Esc; ``warning`` is shown above them (e.g. that the
    trained weights are discarded). With ``confirm`` (what picking another value does, "drops the
    938 trained steps"), a value other than the current one takes a second Enter: the first
    says what it would do, as the main lab asks before a quit that loses training."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, title: str, choices: list[tuple[str, str]], current: str, warning: str = "",
                 confirm: str = "") -> None:
        super().__init__()
        self._heading, self._choices, self._current, self._warning = title, choices, current, warning
        self._confirm = confirm
        self._armed: str | None = None  # the value a first Enter picked: Enter again on it applies

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._heading, classes="dialog-title")
            if self._warning:
                yield Label(self._warning, classes="warning", id="choice-warning")
            options = [Option(f"{text}{'  (now)' if value == self._current else ''}", id=value)
                       for value, text in self._choices]
            yield OptionList(*options, id="choice-list")
            yield Label("Enter picks, Esc cancels", classes="dim")

    def on_mount(self) -> None:
        option_list = self.query_one(OptionList)
        values = [value for value, _ in self._choices]
        option_list.highlighted = values.index(self._current) if self._current in values else 0
        option_list.focus()

    @on(OptionList.OptionSelected)
    def picked(self, event: OptionList.OptionSelected) -> None:
        value = event.option.id
        if self._confirm and value != self._current and value != self._armed:
            self._armed = value
            warning = self.query_one("#choice-warning", Label)
            warning.update(f"{value}: Enter again {self._confirm}.")  # Esc cancels, as the line below says
            warning.add_class("armed")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


#: What a trained model's attention matrix shows, per task: for the help, and the note under the matrix.
ATTENTION_PATTERNS = {
    "reverse": ("Reversal must copy source position S+1-t at step t, so a trained model draws an anti-diagonal.",
                "Reversal draws an anti-diagonal"),
    "sort": ("Sorting must find the t-th smallest digit wherever it stands, so a trained model's row t peaks on "
             "that digit's source position (equal digits share the weight): a permutation, not a diagonal.",
             "Sorting draws a permutation, each row on the t-th smallest digit"),
}


class Seq2SeqHelp(Dialog[None]):
    """Every key of the screen (read from the bindings, so it cannot drift) and how to read the view."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "close")]

    ABOUT = (
        "An encoder reads the source digits; a decoder then writes the output one token at a time, "
        "fed its own previous token (greedy, free-running), until it writes EOS (</s>). Training "
        "feeds it the true previous token instead (teacher forcing); f decodes the bench so too. A model "
        "trained only on true inputs never saw its own mistakes (exposure bias): greedy, one wrong token is "
        "fed on and the steps after it may go wrong too, where teacher forcing gets them right.\n\n"
        "With attention, decoder step t mixes the encoder states e_s with weights a_t,s = softmax_s "
        "score(d_t, e_s): row t of the matrix. {task} Without attention the decoder starts from the "
        "encoder's final state and never sees the source again: one vector must hold every digit, "
        "and long inputs fail (compare the accuracy by length).\n\n"
        "Click a row of the matrix to move the cursor there. * marks lengths longer than any training input."
    )
    def __init__(self, keys: list[tuple[str, str]], task: str) -> None:
        super().__init__()
        self._keys = keys
        self._about = self.ABOUT.format(task=ATTENTION_PATTERNS[task][0])

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="s2s-help"):
            yield Static("[b]seq2seq lab: keys[/b]\n", markup=True)
            yield Static(key_table(self._keys))
            yield Static("\n" + self._about, classes="dim")
            yield Static("\nEsc closes this.", classes="dim")


# ---------------------------------------------------------------------------------------------
# the screen
# ---------------------------------------------------------------------------------------------

class Seq2SeqScreen(HoldsKeysWhileTooSmall, PassKeysToDialog, RefitsAfterDialogs, Screen):
    """The encoder-decoder lab (``python -m rnnlab.tui.labs seq2seq``); see the module docstring."""

    CSS_PATH = "seq2seq.tcss"

    BINDINGS = [
        # the footer shows the keys that fit 80 columns (the main lab's too); ? lists every one
        Binding("right,l", "step_forward", "decode", key_display="→"),
        Binding("left,h", "step_back", "back", key_display="←"),
        Binding("home,g", "jump_start", "first step", show=False),
        Binding("end,G", "jump_end", "all steps", show=False),
        Binding("n", "new_sequence", "new seq"),
        Binding("plus,equals_sign", "longer", "longer", key_display="+"),
        Binding("minus", "shorter", "shorter", show=False),
        Binding("i", "type_sequence", "type seq", show=False),
        Binding("t", "train_toggle", "train/pause"),
        Binding("s", "train_stop", "stop", show=False),
        Binding("a", "choose_attention", "attention"),
        # the last shown key before help: the one the footer leaves out at 80 columns (the status line names f)
        Binding("f", "toggle_forcing", "forcing"),
        Binding("k", "choose_task", "task", show=False),
        Binding("e", "edit_options", "options", show=False),
        Binding("x", "export", "export", show=False),
        Binding("p", "screenshot", "screenshot", show=False),
        # the training column (plots, the decoding table) is taller than a short terminal
        Binding("pagedown", "scroll_side(1)", "scroll the training column down", show=False),
        Binding("pageup", "scroll_side(-1)", "scroll the training column up", show=False),
        Binding("question_mark,f1", "help", "help"),
    ]

    def __init__(self, engine: Seq2SeqLab) -> None:
        super().__init__()
        self.engine = engine
        self.busy = ""  # what a build worker is doing, shown in the status line
        self._ticks = 0
        # the decoding and cursor the bench was drawn from: the status line's "decode step k/T'" is
        # read from the same, so the two never disagree (update_status redraws the bench first)
        self._bench_drawn: tuple[object, int] | None = None
        self._seen_history = -1
        self._seen_evals = -1
        self.step_rate = StepRate()
        self._train_target: int | None = None  # the step the run under way trains to (the status line's total)
        self._state_scale = 1.0  # the hidden-state heatmaps' colour range, ±r (no attention)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        yield Seq2SeqTokens(id="s2s-bench")
        with Horizontal(id="s2s-middle"):
            with Vertical(id="s2s-view"):
                yield Seq2SeqAttention(id="s2s-grid")
                with Horizontal(id="s2s-states"):
                    yield Heatmap(colormap="diverging", title="encoder states e_s", id="s2s-encoder")
                    yield Heatmap(colormap="diverging", title="decoder states d_t", id="s2s-decoder")
                yield Static(id="s2s-note")
            yield Seq2SeqTraining(id="s2s-side")
        yield Static(id="s2s-message")
        yield Static(id="s2s-status")
        yield Static(id="too-small")  # styled by lab.tcss, as the main lab's and the ESN lab's
        yield fitted_footer(self.app)

    def on_mount(self) -> None:
        for heatmap in self.query(Heatmap):
            heatmap.first_step = 1
        self.update_views()
        self.set_interval(1 / REFRESH_HZ, self._tick)
        warn_without_true_colour(self.app, "the attention matrix needs")

    def on_resize(self, event: events.Resize) -> None:
        show_if_too_small(self, *event.size)
        self.set_class(event.size.width < 130, "-narrow")
        self.set_class(event.size.width < 80, "-tiny")
        self.set_class(event.size.height < 40, "-short")
        fit_footer(self, event.size.width)
        self.call_after_refresh(self.update_views)  # titles chosen to fit the new widths

    def unsaved_work(self) -> str:
        """What quitting would lose ("938 trained steps"; "" when untrained): the lab cannot save
        a model, so the app asks for a second q (:meth:`~rnnlab.tui.labs.LabScreenApp.action_quit`)."""
        return trained_count(self.engine.trained_steps, "step")

    # ------------------------------------------------------------------ drawing
    def update_views(self) -> None:
        """Redraw every panel from the engine."""
        self.update_bench()
        self.query_one(Seq2SeqTraining).update_from(self.engine)
        self.update_status()

    def update_bench(self) -> None:
        """The panels that show the bench sequence's decoding."""
        lab = self.engine
        self._bench_drawn = (lab.decoding, lab.cursor)
        o = lab.options
        self.title = "rnnlab"  # "rnnlab — seq2seq: ...", as the other labs' and the main lab's headers read
        # shorter forms drop the words the status line and the panels also say
        full = lab.describe()
        forms = (full, full.removesuffix(" digits").removesuffix(" digit"), full.partition(";")[0],
                 f"{o['cell'].upper()} H={o['hidden_size']}")
        fit_sub_title(self, self.size.width, *(f"seq2seq: {form}" for form in forms), "seq2seq")
        self.query_one(Seq2SeqTokens).update_from(lab)
        d = lab.decoding
        attention = d.weights is not None
        grid = self.query_one(Seq2SeqAttention)
        switched = grid.display != attention
        grid.display = attention
        self.query_one("#s2s-states").display = not attention
        if attention:
            kind = o["attention"]
            titles = (f"attention weights a_t,s ({kind}): decoder step t x source position s",
                      f"attention weights a_t,s ({kind})", f"attention ({kind})")
            if d.mode == "teacher-forced":  # its rows are the teacher-forced steps'
                titles = (f"attention weights a_t,s ({kind}), teacher-forced: decoder step t x source position s",
                          f"attention weights a_t,s ({kind}), teacher-forced", f"attention ({kind}), teacher-forced",
                          f"attention ({kind}), forced", "attention, forced")
            grid.set_matrix(d.weights, [short_token(t) for t in d.source], [short_token(t) for t in d.tokens],
                            d.correct, lab.cursor, first_fit(titles, grid.size.width or None, fallback=titles[-1]))
        else:
            encoder, decoder = self.query_one("#s2s-encoder", Heatmap), self.query_one("#s2s-decoder", Heatmap)
            enc, dec = d.records["encoder"].T, d.records["decoder"].T  # (H, S), (H, T')
            scale = max(1.0, float(np.abs(enc).max(initial=0.0)), float(np.abs(dec).max(initial=0.0)))
            self._state_scale = scale  # the titles say it: blue -r .. red +r
            encoder.set_data(enc, vmin=-scale, vmax=scale)
            decoder.set_data(dec, vmin=-scale, vmax=scale)
            encoder.cursor = d.source.size - 1
            decoder.revealed = lab.cursor
            decoder.cursor = lab.cursor_step
            self._state_titles()
            if not encoder.size.width:  # just shown: its width is known after the next layout
                self.call_after_refresh(self._state_titles)
        self._fit_note()
        if switched or not self.query_one("#s2s-view").content_size.height:
            self.call_after_refresh(self._fit_note)  # the heights it needs are known after the next layout

    def _fit_note(self) -> None:
        """The note under the matrix (or the hidden states): the longest version that leaves them
        their lines of the view (MAP_ROWS rows of the matrix at least), or none: at small sizes the
        picture wins over its explanation (the help, ?, has it too)."""
        lab = self.engine
        if lab.decoding.weights is not None:
            score = ATTENTION_SCORES[lab.options["attention"]]
            pattern = ATTENTION_PATTERNS[lab.options["task"]][1]
            texts = (f"a_t = softmax_s score(d_t, e_s), {score}: each row sums to 1 and says where step t looks in "
                     f"the source. {pattern}; past the training lengths it blurs.",
                     f"a_t = softmax_s score(d_t, e_s), {score}: each row sums to 1.")
            need = (Seq2SeqAttention.HEADER_LINES + min(lab.decoding.steps, MAP_ROWS)
                    + Seq2SeqAttention.FOOTER_LINES)
        else:
            texts = ("No attention: the decoder starts from the encoder's final state (▼, left) and never sees the "
                     "source again, so those H numbers must hold every digit. Press a to give it attention and "
                     "compare the accuracy on long inputs.",
                     "No attention: the decoder sees only the encoder's final state (▼).")
            need = self.query_one("#s2s-states").outer_size.height
        width, height = self.query_one("#s2s-view").content_size
        if not width:  # no column to wrap into (rich's wrap fails at width 0): no note
            texts = ()
        fits = [text for text in texts if not height or need + 1 + len(Text(text).wrap(self.app.console, width))
                <= height]  # 1: the note's top margin; not laid out yet: the full note, refitted after
        note = self.query_one("#s2s-note", Static)
        note.display = bool(fits)
        if fits:
            note.update(Text(fits[0], style="dim"))

    def _state_titles(self) -> None:
        """The hidden-state heatmaps' titles, the longest that fit their width."""
        H, r = self.engine.options["hidden_size"], f"±{self._state_scale:.2g}"  # the colours' range, blue to red
        encoder, decoder = self.query_one("#s2s-encoder", Heatmap), self.query_one("#s2s-decoder", Heatmap)
        encoder.title = first_fit((f"encoder states e_s (H={H} x s, {r}), ▼ final",
                                   f"encoder e_s (H={H} x s, {r}), ▼ final", f"encoder e_s ({r}), ▼ final",
                                   "encoder e_s, ▼ final"), encoder.size.width or None, fallback="encoder e_s")
        decoder.title = first_fit((f"decoder states d_t (H={H} x t, {r})", f"decoder d_t (H={H} x t, {r})",
                                   f"decoder d_t ({r})"), decoder.size.width or None, fallback="decoder d_t")

    def update_status(self) -> None:
        """The status line, drawn 10 times a second while training. The bench is redrawn only when the
        screen re-decodes (2 Hz) or the cursor moves; the engine may re-decode meanwhile (an export
        decodes with the newest weights), and a status line read from it said "decode step 10/10"
        under a bench still showing "step 11/11". A bench behind the engine is redrawn here first."""
        lab = self.engine
        drawn = self._bench_drawn
        if drawn is None or drawn[0] is not lab.decoding or drawn[1] != lab.cursor:
            self.update_bench()
        trainings = training_progress(lab.status_shown, "step", lab.trained_steps, self._train_target)
        if lab.status_shown == "idle" and not lab.trained_steps:  # "idle step 0" said nothing of what to do
            trainings = ["untrained" if self.busy else UNTRAINED]
        elif lab.status_shown == "running":
            trainings = [f"{training} ({self.step_rate})" for training in trainings]
        busy = f"   {self.busy}" if self.busy else ""
        steps, bench = f"step {lab.cursor}/{lab.decoding.steps}", f"bench {digit_count(lab.length)}"
        # the mode, where teacher-forced: greedy decoding is what the lab shows unless f was pressed
        modes = ("teacher-forced", "forced") if lab.decode_mode == "teacher-forced" else ("decode",)
        # given up in turn where the line is short: the help (the footer has it), the wide gaps, the mode's
        # longer word, the run's total
        forms = [f"{gap.join((f'{mode} {steps}', bench, training))}{busy}{hint}" for training in trainings
                 for mode in modes for gap, hint in (("   ", "   ? help"), ("   ", ""), ("  ", ""))]
        status = self.query_one("#s2s-status", Static)
        line = first_fit(forms, status.content_size.width or None, fallback=forms[-1])
        status.update(Text(line, no_wrap=True, overflow="ellipsis"))

    def show_message(self, text: str, error: bool = False, shorter: tuple[str, ...] = ()) -> None:
        """One line above the status line (errors in red; the screen carries on): the first of ``text``
        and its ``shorter`` forms that fits, else the last ending in "…" where it is cut, as every
        clipped line of the lab."""
        message = self.query_one("#s2s-message", Static)
        text = first_fit((text, *shorter), message.content_size.width or None, fallback=(text, *shorter)[-1])
        message.update(Text(text, style="bold red" if error else "dim", no_wrap=True, overflow="ellipsis"))

    def _tick(self) -> None:
        """The timer: while training, read the history (plots, status) and, every DECODE_EVERY
        ticks, re-decode the bench sequence with the new weights."""
        lab = self.engine
        self.app.follow_quit_warning()  # the first q's count, as training goes on (the main lab's too)
        if not lab.training:
            return
        self._ticks += 1
        n = len(lab.history)
        self.step_rate.update(n)
        if n != self._seen_history or len(lab.evals) != self._seen_evals:
            self._seen_history, self._seen_evals = n, len(lab.evals)
            self.query_one(Seq2SeqTraining).update_from(lab)
        if self._ticks % DECODE_EVERY == 0 and lab.decoded_at_step != lab.trained_steps:
            lab.refresh()
            self.update_bench()
        self.update_status()

    # ------------------------------------------------------------------ workers
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Every worker's end is handled here: errors are shown inline, the screen stays."""
        worker = event.worker
        if event.state == WorkerState.ERROR:
            error = worker.error
            message = error_text(error)
            self.busy = ""
            self.show_message(f"{worker.group}: {message}", error=True)
            self.notify(message, severity="error", timeout=10)
            self.update_status()
        elif event.state in (WorkerState.SUCCESS, WorkerState.CANCELLED):
            lab = self.engine
            if worker.group == "s2s-train":
                lab.refresh()
                self.update_views()
                if lab.training_status == "diverged":
                    self.show_message(f"training stopped: {lab.training_message}", error=True)
                else:
                    self.show_message(f"training {lab.training_status} at step {lab.trained_steps}")
            elif worker.group == "s2s-build" and event.state == WorkerState.SUCCESS:
                self.busy = ""
                self._seen_history = self._seen_evals = -1
                self.update_views()
                # the status line says "untrained (t trains)" too: at 80 columns the hint gives way
                self.show_message(f"new model: {lab.describe()} (untrained: t trains it)",
                                  shorter=(f"new model: {lab.describe()}",))

    @work(thread=True, exclusive=True, group="s2s-train", exit_on_error=False)
    def _train(self, until_step: int) -> None:
        worker = get_current_worker()
        self.engine.train(until_step=until_step, should_stop=lambda: worker.is_cancelled)

    @work(thread=True, exclusive=True, group="s2s-build", exit_on_error=False)
    def _rebuild(self, overrides: dict) -> None:
        """A new model off the UI thread (a new attention kind may compile its kernels)."""
        self.engine.reconfigure(overrides)

    # ------------------------------------------------------------------ the decoder-step cursor
    def _moved(self) -> None:
        self.update_bench()
        self.update_status()

    def action_step_forward(self) -> None:
        self.engine.step_forward()
        self._moved()

    def action_step_back(self) -> None:
        self.engine.step_back()
        self._moved()

    def action_jump_start(self) -> None:
        self.engine.jump_start()
        self._moved()

    def action_jump_end(self) -> None:
        self.engine.jump_end()
        self._moved()

    @on(Seq2SeqAttention.RowClicked)
    def row_clicked(self, event: Seq2SeqAttention.RowClicked) -> None:
        lab = self.engine
        lab.cursor = min(event.row + 1, lab.decoding.steps)
        self._moved()

    # ------------------------------------------------------------------ the bench sequence
    def _bench_action(self, action, done: str) -> None:
        if self.busy:
            return
        try:
            action()
        except UserError as exc:
            self.show_message(str(exc), error=True)
            return
        self.show_message(done.format(digits=digit_count(self.engine.length)))
        self._moved()

    def action_new_sequence(self) -> None:
        self._bench_action(self.engine.new_sequence, "new sequence of {digits}")

    def action_longer(self) -> None:
        self._bench_action(self.engine.longer, "one digit longer: {digits}")

    def action_shorter(self) -> None:
        self._bench_action(self.engine.shorter, "one digit shorter: {digits}")

    def action_type_sequence(self) -> None:
        if self.busy:
            return

        def accept(text: str) -> bool:
            self.engine.source_from_text(text)
            return True

        def done(accepted: bool | None) -> None:
            if accepted:
                self.show_message(f"typed sequence of {digit_count(self.engine.length)}")
                self._moved()

        current = "".join(str(int(d)) for d in self.engine.source)
        self.app.push_screen(Seq2SeqPrompt(f"Type source digits (1 to {MAX_BENCH_LENGTH}, spaces optional)",
                                           current, accept, placeholder="e.g. 3 1 4 1 5"), done)

    # ------------------------------------------------------------------ training
    def action_train_toggle(self) -> None:
        lab = self.engine
        if self.busy:
            return
        if lab.stop_requested:
            self.show_message("training is stopping: the step under way finishes first")
        elif lab.training_status == "running":
            lab.pause_training()
            self.show_message(PAUSED_NOTICE)
        elif lab.training_status == "paused":
            lab.resume_training()
            self.step_rate.restart()  # measured from now: the pause is no training
            self.show_message("training resumed")
        else:
            self.step_rate.restart()
            done, more = lab.trained_steps, lab.options["steps"]
            self._train_target = done + more
            said = trains_more(done, more, "step")  # its keys give way at 80 columns (the footer has t)
            self.show_message(said, shorter=(said.removesuffix(" (t pauses, s stops)"),))
            lab.mark_running()  # at once, so the timer and a second key see it
            self._train(self._train_target)
        self.update_status()

    def action_train_stop(self) -> None:
        if self.engine.training:
            self.engine.stop_training()
            self.update_status()
        else:  # said, as the main lab says it: s did nothing visible
            self.show_message(NOTHING_TRAINING)

    # ------------------------------------------------------------------ the model
    def _refuses_a_new_model(self) -> bool:
        """Whether the model cannot change now: while one is built (silently), or while training."""
        if self.busy:
            return True
        if self.engine.training:
            self.show_message("stop training first (s)", error=True)
            return True
        return False

    def _build(self, overrides: dict) -> None:
        """A new model with ``overrides``, built in a worker; the status line says so meanwhile."""
        self.busy = f"building a model with {changes_said(overrides)} ..."
        self.update_status()
        self._rebuild(overrides)

    def _choose(self, option: str, title: str, choices: list[tuple[str, str]]) -> None:
        lab = self.engine
        if self._refuses_a_new_model():
            return
        steps = trained_count(lab.trained_steps, "step")
        warning = f"A switch starts a new model: the {steps} are lost." if steps else ""  # one line

        def picked(value: str | None) -> None:
            if value is not None and value != lab.options[option]:
                self._build({option: value})

        self.app.push_screen(Seq2SeqChoice(title, choices, lab.options[option], warning,
                                           confirm=f"drops the {steps}" if steps else ""), picked)

    def action_edit_options(self) -> None:
        """Every option as ``name=value`` text: checked by the engine in the dialog (a bad value is
        named there and nothing changes), then a new model built as ``a`` and ``k`` build one; a
        change of only the engine's in-place options (steps, batch_size, learning_rate, eval_*)
        applies at once and keeps the model, so it takes no second Enter after training."""
        lab = self.engine
        if self._refuses_a_new_model():
            return

        def changed(text: str) -> dict:
            """The options the text changes, checked by the engine (OptionError naming a bad one)."""
            wanted = lab.check_options(parse_assignments(text, list(DEFAULTS), example="hidden_size=16"))
            return {name: value for name, value in wanted.items() if value != lab.options[name]}

        def applied(changes: dict | None) -> None:
            if not changes:
                if changes is not None:
                    self.show_message("options unchanged: the model stays")
            elif lab.rebuilds(changes):
                self._build(changes)
            else:
                self._apply_in_place(changes)

        rows = [(name, str(value), ", ".join(CHOICES[name]) if name in CHOICES
                 else f"{option_range(name)}  {OPTION_NOTES.get(name, '')}".rstrip())
                for name, value in lab.options.items()]
        text = " ".join(f"{name}={value}" for name, value in lab.options.items())
        in_place = [name for name in DEFAULTS if name in IN_PLACE_OPTIONS]
        # the five options that keep the model would not fit the title's line: after training, the warning names them
        self.app.push_screen(OptionsPrompt("Options: name=value ... (a model option starts a fresh model)",
                                           rows, text, changed, lost=trained_count(lab.trained_steps, "step"),
                                           changes=lambda text: lab.rebuilds(changed(text)), kept=in_place), applied)

    def _apply_in_place(self, changes: dict) -> None:
        """Options that keep the model (how many steps a run trains, on what batches at what rate, how
        it is scored): set now."""
        lab = self.engine
        try:
            lab.reconfigure(changes)
        except UserError as exc:  # training started meanwhile
            self.show_message(str(exc), error=True)
            return
        self.show_message(model_stays(changes, trained_count(lab.trained_steps, "step")))
        self.update_views()

    def action_toggle_forcing(self) -> None:
        """Decode the bench greedy or teacher-forced (the engine decodes both with the same weights)."""
        lab = self.engine
        if self.busy:  # as the bench's keys: the model being built takes the mode it started with
            return
        mode = lab.toggle_decode_mode()
        d, greedy = lab.decoding, lab.decodings["greedy"]
        if mode == "teacher-forced":
            compared = f"{d.misses} of {d.expected.size} wrong, greedy {greedy.misses}"
            self.show_message(f"teacher-forced: each step fed the expected previous token, as in training "
                              f"({compared}; f: greedy)",
                              shorter=(f"teacher-forced: fed the expected previous token ({compared})",
                                       f"teacher-forced ({compared})"))
        else:
            self.show_message("greedy: each step fed the model's own previous token (f: teacher-forced)",
                              shorter=("greedy: fed its own previous token", "greedy"))
        self._moved()

    def action_choose_attention(self) -> None:
        texts = {"none": "none: the decoder sees only the encoder's final state",
                 "dot": f"dot ({ATTENTION_SCORES['dot']})",
                 "general": f"general, Luong ({ATTENTION_SCORES['general']})",
                 "additive": f"additive, Bahdanau ({ATTENTION_SCORES['additive']})"}
        self._choose("attention", "Attention", [(k, texts[k]) for k in ATTENTION_CHOICES])

    def action_choose_task(self) -> None:
        texts = {"reverse": "reverse: 3 1 4 -> 4 1 3", "sort": "sort: 3 1 4 -> 1 3 4"}
        self._choose("task", "Task", [(k, texts[k]) for k in TASKS])

    # ------------------------------------------------------------------ files
    def action_export(self) -> None:
        lab = self.engine

        def accept(name: str, replace: bool = False) -> Path:  # a file that cannot be written: PromptScreen shows why
            return lab.export(name, replace=replace).absolute()

        self.app.push_screen(Seq2SeqPrompt("Export the bench decoding, the history and the scores to (.npz)",
                                           lab.export_name, accept),
                             lambda path: path and self._exported(path))

    def _exported(self, path: Path) -> None:
        self.show_message(f"exported to {path}")
        self._moved()  # the export decoded the bench with the newest weights (while training): show that

    def action_screenshot(self) -> None:
        self.show_message(*take_screenshot(self.app))

    HELP: ClassVar[dict[str, str]] = {  # the help's longer word on each action
        "step_forward": "the decoder writes one more token; its attention row appears",
        "step_back": "take the last token back",
        "jump_start": "before the first token (then → steps)",
        "jump_end": "the whole decoding",
        "new_sequence": "new random digits, as many as now",
        "longer": "one more random digit (also past the training lengths)",
        "shorter": "drop the last digit",
        "type_sequence": "type the source digits",
        "train_toggle": "train (another run of steps), pause, resume",
        "train_stop": "stop training",
        "choose_attention": "none, dot, general or additive: a new model",
        "toggle_forcing": "decode the bench greedy (each step fed its own previous token) or teacher-forced (fed "
                          "the expected one, as in training): where greedy goes wrong after one mistake",
        "choose_task": "reverse or sort: a new model",
        "edit_options": "any option, name=value: a new model, unless only steps, batch_size, learning_rate "
                        "or eval_* change",
        "export": "every record of the bench decoding, history, scores (.npz)",
        "screenshot": "save an SVG screenshot",
    }

    def help_keys(self) -> list[tuple[str, str]]:
        """(key, description) of every binding of this screen and the app's quit."""
        keys = [(key_names(b.key), b.description + (f": {self.HELP[b.action]}" if b.action in self.HELP else ""))
                for b in self.BINDINGS]
        keys.append(QUIT_HELP_TRAINED)
        return keys

    def action_help(self) -> None:
        self.app.push_screen(Seq2SeqHelp(self.help_keys(), self.engine.options["task"]))

    def action_scroll_side(self, pages: int) -> None:
        scroll_pages(self.query_one(Seq2SeqTraining), pages)
