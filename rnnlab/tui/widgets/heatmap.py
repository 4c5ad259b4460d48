"""Heatmap widget (units x time steps) on textual's Line API, and a colour bar for its legend.

Each terminal line shows two data rows with the upper half block "▀": foreground = upper row,
background = lower row. Values are binned into colour levels once per :meth:`Heatmap.set_data`;
a line is then a run-length encoding of (upper level, lower level) pairs looked up in a cached
table of rich styles, so a frame costs a few list operations per run of equal cells.

Layout of the content area, top to bottom:

- a title line, only when ``title`` is set (with the visible column range at its right when the
  map is wider than the widget and only a window of it is shown: "t 66-100 of 100", or "t 66-100"
  where the total would cut the title's name or scale; ``short_title`` where ``title`` would be cut);
- the cursor line: "▼" and the step number above the cursor column (blank without a cursor);
- ``ceil(rows / 2)`` map lines.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import ClassVar

import numpy as np
from rich.color import Color as RichColor
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from rnnlab.tui.widgets._strips import runs, text_strip
from rnnlab.tui.widgets.colormaps import RGB, Colormap, get_colormap

HALF_BLOCK = "▀"
CURSOR_MARK = "▼"
CHOSEN_ROW_MARK = "›"  # after the chosen row's label, where the others have a blank
_MAX_CACHED_SEGMENTS = 20_000


def _highlighted(rgb: RGB) -> RGB:
    """The cursor column's version of a colour: lighter if dark, darker if light (hue kept)."""
    r, g, b = rgb
    luminance = (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255.0
    if luminance < 0.55:
        return tuple(round(c + (255 - c) * 0.45) for c in rgb)  # type: ignore[return-value]
    return tuple(round(c * 0.6) for c in rgb)  # type: ignore[return-value]


@lru_cache(maxsize=16)
def pair_styles(colormap: Colormap, empty_rgb: RGB, background_rgb: RGB) -> tuple[Style, ...]:
    """Styles of every half-block cell, indexed ``(highlighted * stride + upper) * stride + lower``.

    Levels are the colormap's colours, then missing (NaN), empty (unrevealed) and background
    (below the last row when the row count is odd): ``stride = n_levels + 3``. The background
    level is not highlighted under the cursor: it is not data.
    """
    palette = [*colormap.colors, colormap.missing, empty_rgb, background_rgb]
    plain = [RichColor.from_rgb(*rgb) for rgb in palette]
    highlighted = [RichColor.from_rgb(*_highlighted(rgb)) for rgb in palette[:-1]] + [plain[-1]]
    return tuple(Style(color=upper, bgcolor=lower)
                 for colors in (plain, highlighted) for upper in colors for lower in colors)


def _rgb(color: RichColor | None, default: RGB) -> RGB:
    return default if color is None else tuple(color.get_truecolor())  # type: ignore[return-value]


#: A tail after a title's scale cut to fewer cells than this is left out, its "…" kept
#: ("  · layer 0 rev…", not "  · l…").
TITLE_TAIL_KEPT = 8


#: A title's colour scale, "(r = 1.37)" or "(BPTT, r = 0.02)", and the blanks before it.
_SCALE = re.compile(r"\s*(\([^()]*\br = [^()]*\))")


#: What begins the tail of a title with no scale, which gives way before its name ("forget gate f_t  · layer 0").
_TAIL = "  · "


def _name_and_scale(title: str) -> str:
    """``title`` up to the end of its scale (what follows it, "  · layer 0 reverse", is cut first), or
    where it has none, up to its tail (:data:`_TAIL`)."""
    scale = _SCALE.search(title)
    return title.partition(_TAIL)[0] if scale is None else title[:scale.end()]


def _keeps_scale(title: str, width: int) -> bool:
    """Whether ``title`` cut to ``width`` (:func:`cut_title`) keeps its scale (or has none)."""
    scale = _SCALE.search(title)
    return scale is None or scale.group(1) in cut_title(title, width)


def cut_title(title: str, width: int) -> str:
    """``title`` in ``width`` cells: what follows the scale ("  · layer 0 reverse", which the status
    line says too) cut first, then the record's name before its scale ("(r = 1.37)", "(BPTT, r =
    0.02)"), which alone says what the colours mean (cut from its end, the scale went first and at
    60 columns no map said it); else cut from the end."""
    if len(title) <= width:
        return title
    scale = _SCALE.search(title)
    if scale is not None:
        head, tail = title[:scale.start()], title[scale.end():]
        # the tail gives way first: at 80 columns "dL/d… (BPTT, r = 1)  · layer 0 reverse" hid which map it was
        room = width - scale.end()
        if room >= 0:
            return title[:scale.end()] + (tail[:room - 1].rstrip() if room > TITLE_TAIL_KEPT else "") + "…"[:room]
        keep = width - len(scale.group(1)) - 2  # the tail left out; "…" and a space
        if keep >= 4:
            return head[:keep].rstrip() + "… " + scale.group(1)
    return title[:width - 1] + "…"


class Heatmap(Widget):
    """A units x time heatmap: rows are units, columns are time steps.

    Args:
        data: Initial 2-D array ``(rows, columns)``, or None for an empty map.
        colormap: ``"diverging"`` (centred on 0, for tanh-range values), ``"sequential"`` (gates,
            magnitudes) or a :class:`~rnnlab.tui.widgets.colormaps.Colormap`.
        vmin: Value drawn with the lowest colour (and anything below it).
        vmax: Value drawn with the highest colour (and anything above it).
        title: Text of the title line; empty for no title line.

    Reactive attributes (set them directly; each repaints):

    - ``revealed``: None colours every column; an int ``k`` colours only columns ``0 .. k-1`` and
      draws the rest as dim empty cells (the map "grows by one column per step").
    - ``reveal_from_end``: count ``revealed`` from the last column instead (BPTT: gradients
      arrive from the last step backwards). Off by default.
    - ``cursor``: None, or the time step to mark ("▼" above it, its cells lightened/darkened).
      The view scrolls to keep it visible when the map is wider than the widget.
    - ``cell_width``: terminal columns per time step; None fits the widget's width (min 1).
    - ``show_row_labels``: prefix each line with the index of its upper row (off by default).
    - ``marked_row``: None, or a data row (a chosen unit) whose line's label shows that row's own
      index, marked "›" in the cursor's style (with ``show_row_labels``).
    - ``title``: the title text.
    - ``short_title``: a shorter form of it ("h_t (r = 1)" for "hidden state h_t  (r = 1)"), drawn
      where the title's name and scale would be cut and the short form's are whole; "" for none.
    - ``first_step``: the number shown for column 0 in labels (0 by default; 1 numbers steps 1..T).

    Clicking a map or cursor-line cell posts :class:`Heatmap.ColumnClicked`.
    """

    DEFAULT_CSS = """
    Heatmap {
        height: auto;
    }
    Heatmap > .heatmap--title {
        text-style: bold;
    }
    Heatmap > .heatmap--cursor {
        color: $accent;
        text-style: bold;
    }
    Heatmap > .heatmap--label {
        color: $text-muted;
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"heatmap--title", "heatmap--cursor", "heatmap--label"}
    """
    | Class | Description |
    | :- | :- |
    | `heatmap--title` | The title line. |
    | `heatmap--cursor` | The cursor mark and step number. |
    | `heatmap--label` | Row labels and the visible column range. |
    """

    class ColumnClicked(Message):
        """Posted when a map cell (or the cursor line above it) is clicked.

        Attributes:
            heatmap: The Heatmap clicked.
            column: The clicked time step (data column index; may be past ``revealed``).
        """

        def __init__(self, heatmap: Heatmap, column: int) -> None:
            self.heatmap = heatmap
            self.column = column
            super().__init__()

        @property
        def control(self) -> Heatmap:
            """The Heatmap clicked (lets ``@on(Heatmap.ColumnClicked, "#id")`` match)."""
            return self.heatmap

    revealed: reactive[int | None] = reactive(None)
    reveal_from_end: reactive[bool] = reactive(False)
    cursor: reactive[int | None] = reactive(None)
    cell_width: reactive[int | None] = reactive(None)
    show_row_labels: reactive[bool] = reactive(False)
    marked_row: reactive[int | None] = reactive(None)
    title: reactive[str] = reactive("", layout=True)
    short_title: reactive[str] = reactive("")
    first_step: reactive[int] = reactive(0)  # the label of column 0 (1 for t = 1..T)

    def __init__(
        self,
        data=None,
        *,
        colormap: str | Colormap = "diverging",
        vmin: float = -1.0,
        vmax: float = 1.0,
        title: str = "",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._colormap = get_colormap(colormap)
        self._vmin = float(vmin)
        self._vmax = float(vmax)
        self._data = np.zeros((0, 0))
        self._levels = np.zeros((0, 0), dtype=np.int16)
        self._view_start = 0  # first visible column when the map is wider than the widget
        self._render_key: tuple | None = None  # (width, base style) of the cached frame; None = stale
        self._lines: dict[int, Strip] = {}
        self._pinned_line: int | None = None  # a content line drawn as the title (pin_title)
        self._styles: tuple[Style, ...] = ()
        self._segments: dict[tuple[int, int], Segment] = {}
        self._segments_cell_width = 0
        self.set_reactive(Heatmap.title, title)
        if data is not None:
            self.set_data(data)

    # ----------------------------------------------------------------------------- data

    @property
    def data(self) -> np.ndarray:
        """The ``(rows, columns)`` array shown (a float64 copy of what was set)."""
        return self._data

    @property
    def vmin(self) -> float:
        """Value of the lowest colour."""
        return self._vmin

    @property
    def vmax(self) -> float:
        """Value of the highest colour."""
        return self._vmax

    @property
    def colormap(self) -> Colormap:
        """The colour map; assign a name or a Colormap to change it."""
        return self._colormap

    @colormap.setter
    def colormap(self, colormap: str | Colormap) -> None:
        self._colormap = get_colormap(colormap)
        self._update_levels()

    def set_data(self, data, vmin: float | None = None, vmax: float | None = None) -> None:
        """Show ``data``, a 2-D array ``(rows = units, columns = time steps)``.

        ``vmin``/``vmax`` change the colour scale when given and keep the current one when None.
        ``data`` is copied. NaN cells get the colour map's "missing" colour. Raises ValueError
        unless ``data`` is 2-D.
        """
        array = np.array(data, dtype=np.float64)  # a copy: the caller may reuse its buffer
        if array.ndim != 2:
            raise ValueError(f"heatmap data must be 2-D (units, time steps), got shape {array.shape}")
        rows_changed = array.shape[0] != self._data.shape[0]
        self._data = array
        if vmin is not None:
            self._vmin = float(vmin)
        if vmax is not None:
            self._vmax = float(vmax)
        self._update_levels()
        if rows_changed:
            self.refresh(layout=True)

    def _update_levels(self) -> None:
        self._levels = self._colormap.levels(self._data, self._vmin, self._vmax)
        self._invalidate()

    # ----------------------------------------------------------------------------- reactives

    def validate_revealed(self, revealed: int | None) -> int | None:
        return None if revealed is None else max(0, int(revealed))

    def validate_cursor(self, cursor: int | None) -> int | None:
        return None if cursor is None else int(cursor)

    def validate_cell_width(self, cell_width: int | None) -> int | None:
        return None if cell_width is None else max(1, int(cell_width))

    def _invalidate(self) -> None:
        """Drop the cached frame; the next render recomputes it."""
        self._render_key = None
        self.refresh()

    def watch_reveal_from_end(self, from_end: bool) -> None:
        """The revealed columns now start at the other end (a reverse direction's BPTT after a forward
        one's): the view goes to that end, which a cursor then scrolls as little as needed. It stayed
        where the other end had scrolled it, the revealed columns past its edge."""
        self._view_start = self._data.shape[1] if from_end else 0  # clamped to the last full view
        self._invalidate()

    watch_revealed = watch_cursor = watch_cell_width = _invalidate
    watch_show_row_labels = watch_marked_row = watch_title = watch_short_title = _invalidate

    def on_resize(self) -> None:
        self._invalidate()

    # ----------------------------------------------------------------------------- layout

    @property
    def _header_lines(self) -> int:
        return (1 if self.title else 0) + 1

    def row_line(self, row: int) -> int:
        """The content line (from the widget's top, title included) that shows data row ``row``."""
        return self._header_lines + row // 2

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """Title line (if any) + cursor line + one line per two data rows."""
        return self._header_lines + math.ceil(self._data.shape[0] / 2)

    def _geometry(self, width: int) -> tuple[int, int, int, int]:
        """``(label_width, cell_width, first visible column, visible column count)`` at this width."""
        rows, columns = self._data.shape
        label_width = len(str(max(rows - 1, 0))) + 1 if self.show_row_labels and rows else 0
        available = max(0, width - label_width)
        cell_width = self.cell_width or (max(1, available // columns) if columns else 1)
        count = min(columns, available // cell_width)
        focus = self.cursor if self.cursor is not None else self._newest_revealed(columns)
        # nothing to follow (another model, no step taken yet): from the start, not where the last
        # model's cursor had scrolled the view ("t 36-100 of 100" at step 0)
        start = self._view_start if focus is not None else 0
        if focus is not None and count:
            # Scroll as little as needed to keep the focus column in view.
            if focus < start:
                start = focus
            elif focus >= start + count:
                start = focus - count + 1
        self._view_start = start = max(0, min(start, columns - count))
        return label_width, cell_width, start, count

    def _newest_revealed(self, columns: int) -> int | None:
        """The column revealed last (None when ``revealed`` is None or 0): without a cursor, the
        view follows it."""
        if not self.revealed:
            return None
        return max(0, columns - self.revealed) if self.reveal_from_end else self.revealed - 1

    # ----------------------------------------------------------------------------- rendering

    def render_lines(self, crop: Region) -> list[Strip]:
        # Once per refresh, textual's entry point: catch size and theme changes here, so that
        # render_line, called once per line, only checks a flag.
        self._prepare()
        return super().render_lines(crop)

    def _prepare(self) -> None:
        """Recompute the frame's geometry and cell codes if anything they depend on changed."""
        base_style = self.visual_style.rich_style
        width = self.size.width
        key = (width, base_style)
        if key == self._render_key:
            return
        self._render_key = key
        self._lines.clear()
        self._width, self._base_style = width, base_style
        self._label_width, self._cell_width, start, count = self._geometry(width)
        self._start, self._count = start, count

        cmap = self._colormap
        empty, background = cmap.n_levels + 1, cmap.n_levels + 2
        stride = cmap.n_levels + 3
        background_rgb = _rgb(base_style.bgcolor, (0, 0, 0))
        foreground_rgb = _rgb(base_style.color, (255, 255, 255))
        # Unrevealed cells: the background nudged towards the text colour, visibly "not yet".
        empty_rgb = tuple(round(b + (f - b) * 0.12) for b, f in zip(background_rgb, foreground_rgb))
        styles = pair_styles(cmap, empty_rgb, background_rgb)
        if styles is not self._styles or self._cell_width != self._segments_cell_width:
            self._styles, self._segments_cell_width = styles, self._cell_width
            self._segments.clear()

        levels = self._levels[:, start:start + count].astype(np.int32)
        if self.revealed is not None:
            if self.reveal_from_end:
                levels[:, :max(0, self._data.shape[1] - self.revealed - start)] = empty
            else:
                levels[:, max(0, self.revealed - start):] = empty
        upper, lower = levels[0::2], levels[1::2]
        if lower.shape[0] < upper.shape[0]:
            lower = np.vstack([lower, np.full((1, count), background, dtype=np.int32)])
        codes = upper * stride + lower
        if self.cursor is not None and start <= self.cursor < start + count:
            codes[:, self.cursor - start] += stride * stride
        self._codes = codes

    def render_line(self, y: int) -> Strip:
        """Line ``y`` of the content area (title, cursor line or map line), exactly as wide as the widget."""
        if self._render_key is None:
            self._prepare()
        strip = self._lines.get(y)
        if strip is None:
            strip = self._lines[y] = self._render_line_uncached(y)
        return strip

    def pin_title(self, line: int | None) -> None:
        """Draw the title on content line ``line`` (over what that line shows), where a scrolling
        container has the title line out of view and ``line`` at its top: a map scrolled to the
        chosen unit still says what it is. None: the title on its own line only."""
        line = line if line and self.title else None
        if line != self._pinned_line:
            for old in (self._pinned_line, line):
                self._lines.pop(old, None)
            self._pinned_line = line
            self.refresh()

    def _render_line_uncached(self, y: int) -> Strip:
        width, base_style = self._width, self._base_style
        if self.title:
            if y == 0 or y == self._pinned_line:
                return self._title_strip()
            y -= 1
        if y == 0:
            return self._cursor_strip()
        line = y - 1
        if line >= self._codes.shape[0]:
            return Strip.blank(width, base_style)

        segments: list[Segment] = []
        if self._label_width:
            marked = self.marked_row
            if marked is not None and marked // 2 == line:  # the chosen unit: its own number, marked
                label = str(marked).rjust(self._label_width - 1) + CHOSEN_ROW_MARK
                component = "heatmap--cursor"
            else:
                label, component = str(2 * line).rjust(self._label_width - 1) + " ", "heatmap--label"
            segments.append(Segment(label, base_style + self.get_component_rich_style(component, partial=True)))
        codes = self._codes[line]
        starts, ends = runs(codes)
        # Segments are immutable: reuse one per (cell pair, run length) across lines and frames.
        cache, styles, cell_width = self._segments, self._styles, self._cell_width
        for code, begin, end in zip(codes[starts].tolist(), starts, ends):
            key = (code, end - begin)
            segment = cache.get(key)
            if segment is None:
                if len(cache) > _MAX_CACHED_SEGMENTS:
                    cache.clear()
                segment = cache[key] = Segment(HALF_BLOCK * ((end - begin) * cell_width), styles[code])
            segments.append(segment)
        length = self._label_width + self._count * cell_width
        return Strip(segments, length).adjust_cell_length(width, base_style)

    #: A title cut to make room for the window of steps keeps at least this many cells ("hidden s…").
    TITLE_KEPT = 8

    def _title_strip(self) -> Strip:
        width = self._width
        # the title, else its short form where that keeps a name and scale whole which the title's would cut
        # (at 80 columns "hidden state h_… (r = 1)", "h_t (r = 1)" now); else the shortest, cut
        titles = [self.title, *([self.short_title] if self.short_title else [])]
        title = next((form for form in titles if len(_name_and_scale(form)) <= width), titles[-1])
        pieces = []
        columns = self._data.shape[1]
        if self._count < columns:  # which steps the map shows: the title is cut for it, not it dropped
            first = self._start + self.first_step
            steps = f" t {first}-{first + self._count - 1}"
            # of how many where the title keeps its name and scale whole with it: the sequence bar and the
            # status line say the total too, and at 80x24 "dL/d… (BPTT, r = 0.26) t 66-100 of 100" cut the
            # name; else the short title whole with it; else the title cut for the window where it keeps its
            # scale, which alone says what the colours mean ("hidden sta… t 1-15" said none)
            windows = (f"{steps} of {columns}", steps)
            title, window = next(((form, window) for form in titles for window in windows
                                  if len(_name_and_scale(form)) + len(window) <= width), (titles[-1], None))
            window = window or next((form for form in windows if width - len(form) >= self.TITLE_KEPT
                                     and _keeps_scale(title, width - len(form))), None)
            if window is not None:
                room = width - len(window)
                title = cut_title(title, room)
                pieces.append((room, window, self.get_component_rich_style("heatmap--label", partial=True)))
        pieces.append((0, cut_title(title, width), self.get_component_rich_style("heatmap--title", partial=True)))
        return text_strip(width, self._base_style, pieces)

    def _cursor_strip(self) -> Strip:
        width, cursor = self._width, self.cursor
        if cursor is None or not self._start <= cursor < self._start + self._count:
            return Strip.blank(width, self._base_style)
        x = self._label_width + (cursor - self._start) * self._cell_width + self._cell_width // 2
        step = str(cursor + self.first_step)
        # The step number goes right of the mark, or left of it at the right edge.
        text, x_text = (CURSOR_MARK + step, x) if x + 1 + len(step) <= width else (step + CURSOR_MARK, x - len(step))
        return text_strip(width, self._base_style,
                          [(max(0, x_text), text, self.get_component_rich_style("heatmap--cursor", partial=True))])

    # ----------------------------------------------------------------------------- mouse

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < self._header_lines - 1:
            return
        self._prepare()
        x = offset.x - self._label_width
        if x < 0:
            return
        column = self._start + x // self._cell_width
        if column < self._start + self._count:
            self.post_message(self.ColumnClicked(self, column))


def colorbar_strip(colormap: str | Colormap, width: int, vmin: float, vmax: float,
                   base_style: Style | None = None, labels: tuple[str, str] | None = None) -> Strip:
    """A one-line colour scale ``width`` cells wide: ``vmin`` label, gradient, ``vmax`` label
    (``labels`` replace the two numbers, e.g. ``("-r", "+r")`` for maps that each have a range).

    The labels are dropped when they would leave fewer than 4 cells of gradient.
    """
    cmap = get_colormap(colormap)
    base_style = base_style or Style()
    low, high = (f"{vmin:.3g} ", f" {vmax:.3g}") if labels is None else (f"{labels[0]} ", f" {labels[1]}")
    bar_width = width - len(low) - len(high)
    if bar_width < 4:
        low = high = ""
        bar_width = width
    if bar_width <= 0:
        return Strip.blank(max(width, 0), base_style)
    levels = np.arange(bar_width) * cmap.n_levels // bar_width
    starts, ends = runs(levels)
    segments = [Segment(low, base_style)]
    segments += [Segment(" " * (end - begin), Style(bgcolor=RichColor.from_rgb(*cmap.colors[level])))
                 for level, begin, end in zip(levels[starts].tolist(), starts, ends)]
    segments.append(Segment(high, base_style))
    return Strip(segments, width)


class ColorBar(Widget):
    """One-line legend for a :class:`Heatmap`: ``vmin``, the colour gradient, ``vmax``.

    Args:
        colormap: Name or Colormap, as for Heatmap.
        vmin: Left label value.
        vmax: Right label value.
        labels: Texts shown instead of the two values, or None.

    The reactive attributes ``colormap``, ``vmin`` and ``vmax`` may be set at any time.
    """

    DEFAULT_CSS = """
    ColorBar {
        height: 1;
    }
    """

    colormap: reactive[Colormap] = reactive(get_colormap("diverging"))
    vmin: reactive[float] = reactive(-1.0)
    vmax: reactive[float] = reactive(1.0)

    def __init__(self, colormap: str | Colormap = "diverging", vmin: float = -1.0, vmax: float = 1.0, *,
                 labels: tuple[str, str] | None = None, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.labels = labels
        self.set_reactive(ColorBar.colormap, get_colormap(colormap))
        self.set_reactive(ColorBar.vmin, float(vmin))
        self.set_reactive(ColorBar.vmax, float(vmax))

    def validate_colormap(self, colormap: str | Colormap) -> Colormap:
        return get_colormap(colormap)

    def render_line(self, y: int) -> Strip:
        base_style = self.visual_style.rich_style
        if y:
            return Strip.blank(self.size.width, base_style)
        return colorbar_strip(self.colormap, self.size.width, self.vmin, self.vmax, base_style, self.labels)
