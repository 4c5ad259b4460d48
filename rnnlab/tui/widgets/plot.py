"""Braille line plot on textual's Line API (loss curves, gradient norms).

Each terminal cell is a braille character (U+2800 block) holding 2 x 4 dots, so a plot of
``w x h`` cells has ``2w x 4h`` dots. Series are downsampled to at most two points (the lowest
and the highest) per dot column before drawing, so cost depends on the widget's size, not on the
series' length, and a one-step spike is never lost.

Layout of the content area, top to bottom:

- header line: title on the left (the longest of its forms that fits), legend ("━ name" in each
  series' colour) on the right, or where it does not fit beside the title, in a corner of the
  canvas that no curve runs through; where no corner has room for it, the entries that fit beside
  the title there and each other one in a corner with room, else where it has room between the
  curves, else left out; where the names leave one out or between curves, their short forms
  (``set_series(short_name=...)``) are placed so, and win if they do better;
- plot rows (all lines but the first and the last): y-axis labels (max at the top, min at the
  bottom, actual values also with ``log_y``; the threshold's at its row where its label has no
  room in the canvas) left of an axis, then the braille canvas;
- x-axis line: first and last x (or their distance from the last, ``x_from_end``), and "▲x"
  under the vertical marker.

Where several layers share a cell, series win over the marker and the marker over the threshold;
a cell shows the dots of every series in it, coloured as the last series added. Text in the canvas
(the threshold's label, a legend that did not fit in the header) goes only where it covers no
curve and keeps a blank cell from curves and the axis on both sides, or is left out: glued to a
curve, "clip 5" reads as part of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, TypeVar

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from rnnlab.tui.widgets._strips import runs

BRAILLE_BLANK = 0x2800
# Bit of each braille dot, indexed [dot row 0..3][dot column 0..1] (Unicode dots 1-8).
_DOT_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint8)
DEFAULT_COLORS = ("#5fafff", "#ffaf5f", "#87d75f", "#d787d7", "#ffd75f", "#5fd7d7")

# Style ids of the cell grid; series follow from _SERIES_STYLE on, in insertion order.
_BASE_STYLE, _AXIS_STYLE, _TITLE_STYLE, _THRESHOLD_STYLE, _MARKER_STYLE, _SERIES_STYLE = range(6)


def downsample_minmax(xs: np.ndarray, ys: np.ndarray, n_buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``2 * n_buckets`` points of a series: the lowest and highest point of each bucket.

    Buckets split the x range into ``n_buckets`` equal widths; points are returned in x order.
    Keeping both extremes per bucket (rather than a mean or a stride) preserves spikes and the
    envelope of noisy curves. Inputs must be finite and of equal length.
    """
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    if xs.size <= 2 * n_buckets:
        return xs, ys
    span = (xs[-1] - xs[0]) or 1.0  # all x equal: one bucket
    buckets = np.minimum(((xs - xs[0]) / span * n_buckets).astype(np.int64), n_buckets - 1)
    by_bucket_then_y = np.lexsort((ys, buckets))
    sorted_buckets = buckets[by_bucket_then_y]
    firsts = np.flatnonzero(np.r_[True, sorted_buckets[1:] != sorted_buckets[:-1]])
    lasts = np.r_[firsts[1:] - 1, sorted_buckets.size - 1]
    keep = np.zeros(xs.size, dtype=bool)  # a mask keeps x order (and np.unique imports numpy.ma: ~25 ms once)
    keep[by_bucket_then_y[firsts]] = True
    keep[by_bucket_then_y[lasts]] = True
    return xs[keep], ys[keep]


def _line_dots(cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every dot on the straight segments joining consecutive dot positions (DDA, vectorised)."""
    if cols.size < 2:
        return cols, rows
    d_col, d_row = np.diff(cols), np.diff(rows)
    steps = np.maximum(np.maximum(np.abs(d_col), np.abs(d_row)), 1)
    segment = np.repeat(np.arange(steps.size), steps)
    fraction = (np.arange(steps.sum()) - np.repeat(np.cumsum(steps) - steps, steps)) / steps[segment]
    line_cols = np.rint(cols[segment] + d_col[segment] * fraction).astype(np.int64)
    line_rows = np.rint(rows[segment] + d_row[segment] * fraction).astype(np.int64)
    return np.r_[line_cols, cols[-1]], np.r_[line_rows, rows[-1]]


def _pack(dots: np.ndarray) -> np.ndarray:
    """A ``(4h, 2w)`` boolean dot grid as ``(h, w)`` braille bit masks."""
    height, width = dots.shape[0] // 4, dots.shape[1] // 2
    cells = dots.reshape(height, 4, width, 2) * _DOT_BITS[None, :, None, :]
    return cells.sum(axis=(1, 3), dtype=np.uint16).astype(np.uint8)


def _format_number(value: float) -> str:
    if value == int(value) and abs(value) < 1e7:
        return str(int(value))
    return f"{value:.3g}"


def _format_threshold(value: float) -> str:
    """A threshold as typed where ``:g`` writes it exactly, as the axis and the status lines do
    ("1e+06", "0.1", "5"; "1000000" read beside the axis' "1e+06"), else :func:`_format_number`."""
    text = f"{value:g}"
    return text if float(text) == value else _format_number(value)


def _axis_label(value: float, digits: int) -> str:
    """``value`` to ``digits`` significant digits in the fewest characters: "0.0021" or "2.1e-3"."""
    plain = f"{value:.{digits}g}"
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    if "." in mantissa:  # "2.00e-03" at 3 digits: the zeros say nothing here either
        mantissa = mantissa.rstrip("0").rstrip(".")
    return min(plain, f"{mantissa}e{int(exponent)}", key=len)


def _y_labels(high: float, low: float, width: int, log_y: bool) -> tuple[str, str]:
    """The y-axis' top and bottom labels for a plot ``width`` columns wide: three significant digits
    ("1e+06", as the status lines write numbers), fewer where those would take more than a third of
    the width, as long as the two stay apart: two, or on a log scale one (within 0.2 decades, less
    than a row of a plot that narrow). At 80 columns the gradient-norm plot beside the eigenvalue
    plane had 9 columns, "0.00912┤" took 8 of them and one was left for the curve."""
    labels = (f"{high:.3g}", f"{low:.3g}")
    for digits in (2, 1) if log_y else (2,):
        if max(map(len, labels)) + 1 <= width // 3:
            break
        shorter = (_axis_label(high, digits), _axis_label(low, digits))
        if shorter[0] == shorter[1] and high != low:  # "0.3" and "0.3" for 0.315 and 0.284
            break
        if max(map(len, shorter)) < max(map(len, labels)):
            labels = shorter
    return labels


def _cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` columns, "…" marking a cut, made between words where there is
    a space to cut at: a number cut short reads as another number ("clipped 114…" of 1140)."""
    if len(text) <= width:
        return text
    if width <= 0:
        return ""
    kept = text[:width - 1]
    if text[width - 1] != " " and " " in kept.strip():  # the cut falls in a word: leave it out
        kept = kept[:kept.rindex(" ")]
    return kept.rstrip() + "…"


def _joined(legend: list[tuple[str, int]]) -> str:
    """The legend's entries as one line, two spaces apart (its width, before it is drawn)."""
    return "  ".join(text for text, _ in legend)


def _put_legend(grid: _CellGrid, y: int, x: int, legend: list[tuple[str, int]]) -> None:
    """The legend's entries (text, style id) from column ``x`` of row ``y``, two spaces apart."""
    for text, style_id in legend:
        grid.put(y, x, text, style_id)
        x += len(text) + 2


def _clear_windows(busy: np.ndarray, length: int) -> np.ndarray | None:
    """``[row, column]``: whether ``length`` cells of text from that column of that row of ``busy``
    (cells in use, one row per canvas line) are free, and a free cell either side of them -- except
    at the right edge -- since the axis is just left of column 0; None where the row is too short."""
    rows, width = busy.shape
    window = length + 2  # the text and its two clear cells
    if window > width + 2:
        return None
    padded = np.zeros((rows, width + 3), dtype=np.int32)  # 0, then axis, busy..., open edge
    padded[:, 1] = 1
    padded[:, 2:width + 2] = busy
    used = np.cumsum(padded, axis=1)
    return used[:, window:] == used[:, :-window]  # [r, p]: cells p - 1 .. p + length of row r all free


def _free_spot(busy: np.ndarray, length: int) -> tuple[int, int] | None:
    """``(row, column)`` of the right-most place for ``length`` cells of text on the first row of
    ``busy`` that has one (see :func:`_clear_windows`)."""
    clear = _clear_windows(busy, length)
    if clear is None or not clear.any():
        return None
    row = int(clear.any(axis=1).argmax())
    return row, int(np.flatnonzero(clear[row])[-1])


def _corner_spot(busy: np.ndarray, curves: np.ndarray, length: int) -> tuple[int, int] | None:
    """``(row, column)`` of a place for ``length`` cells of text free in ``busy`` (as for
    :func:`_free_spot`) in a corner the ``curves`` leave free: no curve cell from its row to the top
    (or bottom) row, from its first blank to the right edge (or from the left edge to its last
    blank). A legend in a pocket between curves read as drawn over them. The highest place, else the
    lowest, in its row as near the corner as it goes (right-most where the right one is free, else
    left-most); None where no corner has room."""
    clear = _clear_windows(busy, length)
    if clear is None:
        return None
    width = busy.shape[1]
    starts = np.arange(clear.shape[1])
    first_blank, last_blank = np.maximum(starts - 1, 0), np.minimum(starts + length, width - 1)
    right = _any_toward(curves, axis=1, forward=False)  # [r, c]: a curve at c or right of it
    left = _any_toward(curves, axis=1, forward=True)  # [r, c]: a curve at c or left of it
    for from_top in (True, False):
        right_corner = clear & ~_any_toward(right, axis=0, forward=from_top)[:, first_blank]
        left_corner = clear & ~_any_toward(left, axis=0, forward=from_top)[:, last_blank]
        rows = np.flatnonzero((right_corner | left_corner).any(axis=1))
        if rows.size:
            row = int(rows[0] if from_top else rows[-1])
            if right_corner[row].any():
                return row, int(np.flatnonzero(right_corner[row])[-1])
            return row, int(np.flatnonzero(left_corner[row])[0])
    return None


def _any_toward(cells: np.ndarray, axis: int, forward: bool) -> np.ndarray:
    """``[i, j]``: whether any of ``cells`` is set from the start of ``axis`` to ``i`` (or ``j``), or
    where not ``forward``, from there to its end."""
    if forward:
        return np.maximum.accumulate(cells, axis=axis)
    return np.flip(np.maximum.accumulate(np.flip(cells, axis=axis), axis=axis), axis=axis)


def _expanded(low: float, high: float) -> tuple[float, float]:
    """A non-empty range: a single value gets a margin around it, as does a range of rounding
    width (a constant series and its forecast, one ulp apart, were drawn at opposite edges)."""
    if high - low > 1e-9 * max(abs(low), abs(high)):
        return low, high
    margin = abs(low) * 0.1 if low else 0.5
    return low - margin, high + margin


_Candidate = TypeVar("_Candidate")
_Result = TypeVar("_Result")


def _fewest_misplaced(candidates: Iterable[_Candidate], attempt: Callable[[_Candidate], tuple[_Result, tuple[int, int]]]
                      ) -> tuple[_Result, tuple[int, int]]:
    """``attempt``'s result for the first of ``candidates`` (at least one) whose legend misplaces nothing:
    ``(0, 0)`` curves left unnamed and named in a pocket between curves; else for the first that
    misplaces fewest. Titles, the threshold's labels and the legend's names are each chosen so."""
    best: tuple[_Result, tuple[int, int]] | None = None
    for candidate in candidates:
        result, misplaced = attempt(candidate)
        if best is None or misplaced < best[1]:
            best = (result, misplaced)
        if misplaced == (0, 0):
            break
    assert best is not None, "no candidate"
    return best


class _ThresholdLabel(NamedTuple):
    """One form of the threshold's label: the texts to write (grid row, column, text), and the canvas
    cells it keeps from the legend (canvas row, first and end column, its blanks included), or None."""
    puts: list[tuple[int, int, str]]
    span: tuple[int, int, int] | None


_NO_THRESHOLD_LABEL = _ThresholdLabel([], None)


class _Canvas(NamedTuple):
    """Where a legend may go in a drawn plot: the canvas' first terminal row and column, its cells not
    blank and those of curves (one row per terminal row), and the threshold's labels that fit
    (:meth:`LinePlot._threshold_labels`)."""
    top: int
    gutter: int
    taken: np.ndarray
    curves: np.ndarray
    labels: Iterator[_ThresholdLabel]


class _CellGrid:
    """The plot as a grid of characters and style ids, turned into strips at the end."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.codes = np.full((height, width), ord(" "), dtype=np.uint32)
        self.style_ids = np.zeros((height, width), dtype=np.int64)

    def put(self, y: int, x: int, text: str, style_id: int) -> None:
        """Write single-width ``text`` at row ``y``, column ``x``, cut to the grid."""
        x_end = min(self.width, x + len(text))
        if 0 <= y < self.height and x_end > max(x, 0):
            chars = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
            self.codes[y, max(x, 0):x_end] = chars[max(-x, 0):x_end - x]
            self.style_ids[y, max(x, 0):x_end] = style_id

    def strips(self, styles: list[Style], base_style: Style) -> list[Strip]:
        """One strip per row, one segment per run of equal style ids."""
        lines = []
        for row_codes, row_styles in zip(self.codes, self.style_ids):
            text = row_codes.tobytes().decode("utf-32-le")
            starts, ends = runs(row_styles)
            segments = [Segment(text[begin:end], styles[style_id])
                        for style_id, begin, end in zip(row_styles[starts].tolist(), starts, ends)]
            lines.append(Strip(segments).adjust_cell_length(self.width, base_style))
        return lines


@dataclass
class _Series:
    xs: np.ndarray
    ys: np.ndarray
    style: Style
    short_name: str = ""  # the legend's name where the series' own does not fit ("" none shorter)


class CachedFrame(Widget):
    """A widget drawn whole into a list of strips, cached until its data, size or theme change.

    Subclasses implement ``_render_all(base_style) -> list[Strip]`` and call :meth:`_invalidate`
    when their data change; textual's line-by-line rendering then reads the cached frame.
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._render_key: tuple | None = None  # (size, base style) of the cached frame; None = stale
        self._lines: list[Strip] = []

    def _invalidate(self) -> None:
        """Drop the cached frame; the next render recomputes it."""
        self._render_key = None
        self.refresh()

    def on_resize(self) -> None:
        self._invalidate()

    def render_lines(self, crop: Region) -> list[Strip]:
        # Once per refresh, textual's entry point: catch size and theme changes here, so that
        # render_line, called once per line, only checks a flag.
        self._prepare()
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        """Line ``y`` of the content area, exactly as wide as the widget."""
        if self._render_key is None:
            self._prepare()
        if y < len(self._lines):
            return self._lines[y]
        return Strip.blank(self.size.width, self.visual_style.rich_style)

    def _prepare(self) -> None:
        """Redraw the whole frame (it is small) if its size or the theme changed since the last one."""
        base_style = self.visual_style.rich_style
        key = (self.size, base_style)
        if key != self._render_key:
            self._render_key = key
            self._lines = self._render_all(base_style)

    def _render_all(self, base_style: Style) -> list[Strip]:  # pragma: no cover - overridden
        raise NotImplementedError


class LinePlot(CachedFrame):
    """A multi-series braille line plot.

    Args:
        title: Header text (left of the legend).
        short_titles: What the title says in fewer characters, longest first (the same numbers, as
            many as fit): the first of the title and these that fits the width whole is shown, else
            the last, cut. Legend entries that do not fit beside the title move into a corner of the
            canvas that the curves leave free (see :func:`_corner_spot`), by their short names
            (:meth:`set_series`) where that places more of them, or are left out.
        log_y: Plot log10(y); non-positive values are skipped, axis labels show actual values.
        threshold: y value of a dashed horizontal line (e.g. the clipping threshold), or None.
        threshold_label: Text drawn with the threshold's value where no curve runs: the right-most
            free place on its line, else just above or below it, else elsewhere after a dash; else the
            value alone on the axis at the line's row (or after a dash), and in those of its forms
            that leave every curve named where some do (see :meth:`_threshold_labels`). With no text,
            the value alone is left out where the axis writes it on the line's row.
        marker: x value of a vertical dotted line (e.g. the current step), or None.

    All of these are reactive attributes and may be set at any time. Non-finite points (NaN,
    +-Inf, and non-positive values under ``log_y``) are skipped; the rest are joined by lines.
    The y range spans every series and the threshold; the x range every series.
    """

    DEFAULT_CSS = """
    LinePlot {
        height: 12;
    }
    LinePlot > .lineplot--title {
        text-style: bold;
    }
    LinePlot > .lineplot--axis {
        color: $text-muted;
    }
    LinePlot > .lineplot--threshold {
        color: #5fd7d7;  /* cyan and violet: no curve of the labs is drawn in either (orange ones are) */
    }
    LinePlot > .lineplot--marker {
        color: #d7afff;
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "lineplot--title", "lineplot--axis", "lineplot--threshold", "lineplot--marker"}
    """
    | Class | Description |
    | :- | :- |
    | `lineplot--title` | The title. |
    | `lineplot--axis` | Axis lines and labels, "no data" (``empty_text``). |
    | `lineplot--threshold` | The threshold line and its label. |
    | `lineplot--marker` | The vertical marker and its label. |
    """

    title: reactive[str] = reactive("")
    short_titles: reactive[tuple[str, ...]] = reactive(())
    log_y: reactive[bool] = reactive(False)
    threshold: reactive[float | None] = reactive(None)
    threshold_label: reactive[str] = reactive("")
    marker: reactive[float | None] = reactive(None)
    x_range: reactive[tuple[float, float] | None] = reactive(None)
    """The x-axis from first to last value, whatever the data spans (None: the data's extent)."""
    x_from_end: reactive[str] = reactive("")
    """Where set ("T"), the x-axis ends and the marker are labelled by their distance from the last
    x: "T-99", "▲T-2" and "T" (curves of several lengths lined up by their ends), not -89, 8 and 10."""
    show_legend: reactive[bool] = reactive(True)
    empty_text: reactive[str] = reactive("no data")
    """What the canvas says where no series has a point to draw (a log scale draws no 0: "all 0")."""
    """False: no legend, in the header or the canvas (a key drawn elsewhere names the curves)."""

    def __init__(
        self,
        *,
        title: str = "",
        short_titles: tuple[str, ...] = (),
        log_y: bool = False,
        threshold: float | None = None,
        threshold_label: str = "",
        marker: float | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.set_reactive(LinePlot.title, title)
        self.set_reactive(LinePlot.short_titles, tuple(short_titles))
        self.set_reactive(LinePlot.log_y, log_y)
        self.set_reactive(LinePlot.threshold, threshold)
        self.set_reactive(LinePlot.threshold_label, threshold_label)
        self.set_reactive(LinePlot.marker, marker)
        self._series: dict[str, _Series] = {}

    @property
    def series_names(self) -> list[str]:
        """Names of the series, in the order they were first set (= drawing order)."""
        return list(self._series)

    def set_series(self, name: str, xs, ys, color: str | None = None, short_name: str | None = None) -> None:
        """Create or replace the series ``name``.

        Args:
            name: Legend text; setting an existing name replaces its points in place.
            xs: x values, or None for ``0 .. len(ys) - 1``.
            ys: y values, same length as ``xs``. Both are copied.
            color: Any rich colour ("red", "#ff8800"); None keeps the series' colour, or picks
                the next default colour for a new series.
            short_name: The legend's text where ``name`` finds no room ("ΔW_hh" for
                "||ΔW_hh(t)||"); None keeps the series' short name, "" has none.
        """
        # Copies: the caller may keep writing into its buffers (from a training thread) before the next frame.
        ys = np.array(ys, dtype=np.float64).ravel()
        xs = np.arange(ys.size, dtype=np.float64) if xs is None else np.array(xs, dtype=np.float64).ravel()
        if xs.shape != ys.shape:
            raise ValueError(f"series {name!r}: {xs.size} x values but {ys.size} y values")
        if color is not None:
            style = Style(color=color)
        elif name in self._series:
            style = self._series[name].style
        else:
            style = Style(color=DEFAULT_COLORS[len(self._series) % len(DEFAULT_COLORS)])
        if short_name is None:
            short_name = self._series[name].short_name if name in self._series else ""
        self._series[name] = _Series(xs, ys, style, short_name)
        self._invalidate()

    def clear(self) -> None:
        """Remove every series."""
        self._series.clear()
        self._invalidate()

    watch_title = watch_short_titles = watch_log_y = watch_threshold = watch_threshold_label = watch_marker = \
        watch_x_range = watch_x_from_end = watch_show_legend = watch_empty_text = CachedFrame._invalidate

    def _plotted_points(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each series' finite points in plot coordinates (log10 y under ``log_y``)."""
        points = []
        for series in self._series.values():
            xs, ys = series.xs, series.ys
            if self.log_y:
                with np.errstate(divide="ignore", invalid="ignore"):
                    ys = np.where(ys > 0, np.log10(np.where(ys > 0, ys, 1.0)), np.nan)
            finite = np.isfinite(xs) & np.isfinite(ys)
            points.append((xs[finite], ys[finite]))
        return points

    def _plotted_threshold(self) -> float | None:
        value = self.threshold
        if value is None or not np.isfinite(value) or (self.log_y and value <= 0):
            return None
        return float(np.log10(value)) if self.log_y else float(value)

    def _render_all(self, base_style: Style) -> list[Strip]:
        width, height = self.size
        if width <= 0 or height <= 0:
            return []
        grid = _CellGrid(width, height)
        points = self._plotted_points()
        plot_height = height - 2
        canvas = None
        if plot_height >= 1 and any(xs.size for xs, _ in points):
            canvas = self._draw_plot(grid, points, plot_height)
        elif plot_height >= 1:
            empty = _cut(self.empty_text, width)
            grid.put(1 + (plot_height - 1) // 2, max(0, (width - len(empty)) // 2), empty, _AXIS_STYLE)
        # Only the series with a point to draw are named: one with none named nothing drawn (its
        # entry sat over "no data").
        named = [i for i, (xs, _) in enumerate(points) if xs.size] if self.show_legend else []
        names, series = list(self._series), list(self._series.values())
        legend = [(f"━ {names[i]}", _SERIES_STYLE + i) for i in named]
        short = [(f"━ {series[i].short_name or names[i]}", _SERIES_STYLE + i) for i in named]
        legends = [legend] + ([short] if short != legend else [])  # the names, then their short forms

        # Header: the title, then the legend right-aligned, two spaces at least between them. The
        # title (the plot's numbers) comes first, in a shorter form only where the longer ones do
        # not fit at all (a title that changed wording with the legend's length read as two
        # different numbers), or where a shorter one leaves a curve's name room that a longer left
        # out (at 80x24 "loss (t trains)" left a pinned curve unnamed where "loss  ━ pin" fits); a
        # legend that does not fit beside it moves into the canvas. A form that fits whole, where
        # one does: "|g| 0.98 0%…" was cut where "|g| 0.98" fitted.
        forms = (self.title, *self.short_titles)
        titles = [form for form in forms if len(form) <= width] or [forms[-1]]

        def under(title: str, label: _ThresholdLabel) -> tuple[tuple[str, list], tuple[int, int]]:
            """Where the legend goes under ``title`` beside the threshold's ``label``, and what it misplaces."""
            if not legend or len(title) + 2 + len(_joined(legend)) <= width:
                return (title, [(-1, 0, legend)] if legend else []), (0, 0)
            if canvas is None:  # no rows for it
                return (title, []), (len(legend), 0)
            taken = canvas.taken.copy()
            if label.span is not None:  # its blanks too: "━ |g| clip 5" would read as one label
                taken[label.span[0], label.span[1]:label.span[2]] = True

            def placed(entries: list[tuple[str, int]]) -> tuple[tuple[str, list], tuple[int, int]]:
                places, misplaced = self._legend_places(entries, taken, canvas.curves, width - len(title) - 2)
                return (title, places), misplaced

            return _fewest_misplaced(legends, placed)

        def beside(label: _ThresholdLabel) -> tuple[tuple[_ThresholdLabel, str, list], tuple[int, int]]:
            (title, places), misplaced = _fewest_misplaced(titles, lambda title: under(title, label))
            return (label, title, places), misplaced

        # The threshold's label in the first of its forms that leaves every curve named, under the
        # longest title that does: at 80x24 the loss plot's "┄ 0.167" took the one row free of curves
        # and left the pinned and held-out curves unnamed; a shorter title ("loss" for "loss (t
        # trains)") leaves both named where it can.
        (label, title, places), _ = _fewest_misplaced(canvas.labels if canvas else [_NO_THRESHOLD_LABEL], beside)
        grid.put(0, 0, _cut(title, width), _TITLE_STYLE)
        for y, x, text in label.puts:
            grid.put(y, x, text, _THRESHOLD_STYLE)
        for row, column, entries in places:
            if row < 0:  # right-aligned beside the title
                _put_legend(grid, 0, width - len(_joined(entries)), entries)
            else:
                _put_legend(grid, canvas.top + row, canvas.gutter + column, entries)

        def component(name: str) -> Style:
            return base_style + self.get_component_rich_style(name, partial=True)

        styles = [base_style, component("lineplot--axis"), component("lineplot--title"),
                  component("lineplot--threshold"), component("lineplot--marker"),
                  *(base_style + series.style for series in self._series.values())]
        return grid.strips(styles, base_style)

    def _draw_plot(self, grid: _CellGrid, points: list[tuple[np.ndarray, np.ndarray]],
                   plot_height: int) -> _Canvas | None:
        """Axes, labels and canvas of the rows ``1 .. plot_height``, and the x-axis line below them;
        what the legend and the threshold's label need to find room there (None: no column for a
        canvas)."""
        threshold = self._plotted_threshold()
        all_ys = [ys for _, ys in points if ys.size] + ([np.array([threshold])] if threshold is not None else [])
        all_xs = [xs for xs, _ in points if xs.size]
        if self.x_range is not None:
            x_low, x_high = _expanded(*self.x_range)
        else:
            x_low, x_high = _expanded(min(xs.min() for xs in all_xs), max(xs.max() for xs in all_xs))
        only_x = None  # the one x of every point, where there is one (a loss after its first step)
        if self.x_range is None and min(xs.min() for xs in all_xs) == max(xs.max() for xs in all_xs):
            only_x = float(all_xs[0][0])
        y_low, y_high = _expanded(min(ys.min() for ys in all_ys), max(ys.max() for ys in all_ys))
        top_label, bottom_label = _y_labels(*(10.0 ** y if self.log_y else y for y in (y_high, y_low)), grid.width,
                                             self.log_y)
        gutter = max(len(top_label), len(bottom_label)) + 1
        plot_width = grid.width - gutter
        if plot_width < 1:
            return None
        top, bottom = 1, plot_height  # terminal rows of the canvas

        for row in range(top, bottom + 1):
            grid.put(row, gutter - 1, "┤" if row in (top, bottom) else "│", _AXIS_STYLE)
        grid.put(top, gutter - 1 - len(top_label), top_label, _AXIS_STYLE)
        if bottom != top:
            grid.put(bottom, gutter - 1 - len(bottom_label), bottom_label, _AXIS_STYLE)

        dot_width, dot_height = 2 * plot_width, 4 * plot_height

        def to_col(x):  # clipped: with an x_range, data may lie beyond it
            return np.clip(np.rint((x - x_low) / (x_high - x_low) * (dot_width - 1)), 0, dot_width - 1).astype(np.int64)

        def to_row(y):
            return np.rint((y_high - y) / (y_high - y_low) * (dot_height - 1)).astype(np.int64)

        series_bits = np.zeros((plot_height, plot_width), dtype=np.uint8)
        owner = np.full((plot_height, plot_width), _BASE_STYLE, dtype=np.int64)
        for index, (xs, ys) in enumerate(points):
            if not xs.size:
                continue
            xs, ys = downsample_minmax(xs, ys, dot_width)
            cols, rows = _line_dots(to_col(xs), to_row(ys))
            dots = np.zeros((dot_height, dot_width), dtype=bool)
            dots[rows, cols] = True
            bits = _pack(dots)
            series_bits |= bits
            owner[bits > 0] = _SERIES_STYLE + index
        cell_bits = series_bits.copy()

        # Marker and threshold only fill cells that no series uses.
        marker_col = None
        if self.marker is not None and x_low <= self.marker <= x_high:
            marker_col = int(to_col(self.marker))
            dots = np.zeros((dot_height, dot_width), dtype=bool)
            dots[:, marker_col] = True
            self._fill_free(cell_bits, owner, _pack(dots), _MARKER_STYLE)
        if threshold is not None:
            threshold_row = int(to_row(threshold))
            dots = np.zeros((dot_height, dot_width), dtype=bool)
            dots[threshold_row, (np.arange(dot_width) % 4) < 2] = True  # dashes one cell long
            self._fill_free(cell_bits, owner, _pack(dots), _THRESHOLD_STYLE)

        grid.codes[top:bottom + 1, gutter:] = np.where(cell_bits > 0, BRAILLE_BLANK + cell_bits.astype(np.uint32),
                                                       ord(" "))
        grid.style_ids[top:bottom + 1, gutter:] = owner

        taken = grid.codes[top:bottom + 1, gutter:] != ord(" ")  # before any label
        canvas = _Canvas(top, gutter, taken, owner >= _SERIES_STYLE, self._threshold_labels(
            owner, taken, threshold_row // 4 if threshold is not None else None, plot_height, gutter,
            (top_label, bottom_label)))

        # x-axis line: first and last x, and the marker's label, which wins: an end label it would
        # touch is left out whole ("▲38" beside "40" read as "▲3840"). No legend here: beside the
        # tick labels "1 ━ |g| 200" reads as one more of them.
        axis_row = plot_height + 1

        def x_label(x: float) -> str:  # with x_from_end, by the distance from the last x: "T-99" .. "T"
            if not self.x_from_end:
                return _format_number(x)
            return f"{self.x_from_end}-{_format_number(x_high - x)}" if x < x_high else self.x_from_end

        first, last = x_label(x_low), x_label(x_high)
        ends = [(gutter, first), (grid.width - len(last), last)]
        if gutter + len(first) >= grid.width - len(last):  # too narrow for both apart: "16" "1999" read "161999"
            ends = ends[:1]
        if only_x is not None:  # its x under it, not the margin's ends: "0.9" and "1.1" named no step
            label = self.x_from_end or _format_number(only_x)  # (by the distance from itself: "T")
            ends = [(min(max(gutter + int(to_col(only_x)) // 2 - len(label) // 2, gutter), grid.width - len(label)),
                     label)]
        marked = None
        if marker_col is not None:
            label = f"▲{x_label(self.marker)}"
            x = min(gutter + marker_col // 2, grid.width - len(label))
            marked = (x, label)
            ends = [(at, text) for at, text in ends if at + len(text) < x or at > x + len(label)]
        for at, text in ends:
            grid.put(axis_row, at, text, _AXIS_STYLE)
        if marked is not None:
            grid.put(axis_row, marked[0], marked[1], _MARKER_STYLE)
        return canvas

    def _threshold_labels(self, owner: np.ndarray, taken: np.ndarray, line_row: int | None, plot_height: int,
                          gutter: int, axis_labels: tuple[str, str]) -> Iterator[_ThresholdLabel]:
        """The threshold's label in each form it has room for, the best first, and none last: its text and
        value where no curve runs, on its line or just above or below it; elsewhere after a dash that says
        whose it is (curves run all along its line); its value on the axis at its line's row; its value
        after a dash (a pinned curve beside the live ones fills the canvas). Cells are those of the
        canvas: ``owner`` (its style ids), ``taken`` (its cells not blank), ``line_row`` (the line's)."""
        top = 1  # the canvas' first terminal row
        if line_row is None:
            yield _NO_THRESHOLD_LABEL
            return
        value = _format_threshold(self.threshold)
        axis_writes = {plot_height - 1: axis_labels[1], 0: axis_labels[0]}  # canvas row: the value the axis writes
        if not self.threshold_label.strip() and axis_writes.get(line_row) == value:
            yield _NO_THRESHOLD_LABEL  # a bare value the axis writes on the line's row: "1┤⠉ 1 ⠒⠒" said 1 twice
            return
        label = f"{self.threshold_label} {value}".strip()
        rows = [row for row in (line_row, line_row - 1, line_row + 1) if 0 <= row < plot_height]
        curves = (owner >= _SERIES_STYLE) | (owner == _MARKER_STYLE)  # its own dashes may go under it
        spot = _free_spot(curves[rows], len(label))
        if spot is not None:  # with a blank either side: the line's own dashes must not touch it either
            row, x = rows[spot[0]], spot[1]
            yield _ThresholdLabel([(top + row, gutter + x - 1, f" {label} ")], (row, x - 1, x + len(label) + 1))

        def keyed(text: str) -> Iterator[_ThresholdLabel]:
            spot = _free_spot(taken, len(text))
            if spot is not None:
                yield _ThresholdLabel([(top + spot[0], gutter + spot[1], text)],
                                      (spot[0], spot[1] - 1, spot[1] + len(text) + 1))

        yield from keyed(f"┄ {label}")
        if line_row not in axis_writes:  # the axis' tick at its row, which names it as the top and bottom ones do
            for text in dict.fromkeys((value, _axis_label(self.threshold, 3), _axis_label(self.threshold, 2))):
                if len(text) < gutter:
                    yield _ThresholdLabel([(top + line_row, gutter - 1 - len(text), f"{text}┤")], None)
                    break
        if label != value:
            yield from keyed(f"┄ {value}")
        yield _NO_THRESHOLD_LABEL

    @staticmethod
    def _legend_places(legend: list[tuple[str, int]], taken: np.ndarray, curves: np.ndarray,
                       header_room: int) -> tuple[list[tuple[int, int, list[tuple[str, int]]]], tuple[int, int]]:
        """Where ``legend``'s entries go, each as (canvas row and column, or -1 and 0: the header's right
        end; entries), and how many it left out and how many it put in a pocket between curves. Beside
        the title where it fits in the ``header_room`` columns, else in one line in a corner the
        ``curves`` leave free of ``taken``, else the entries that fit beside the title there and each
        other one in a corner with room, the last added first, as it is drawn over the others (a curve
        pinned to compare with goes first); else in a pocket, where an entry reads worse than in a
        corner, but a plot whose curves are not named at all (the ESN sweep's at 80x24) reads worse."""
        width = len(_joined(legend))
        if width <= header_room:
            return [(-1, 0, legend)], (0, 0)
        spot = _corner_spot(taken, curves, width)
        if spot is not None:
            return [(spot[0], spot[1], legend)], (0, 0)
        taken = taken.copy()
        beside: list[tuple[str, int]] = []
        for entry in reversed(legend):
            if len(_joined([entry, *beside])) <= header_room:
                beside.insert(0, entry)
        places: list[tuple[int, int, list[tuple[str, int]]]] = []
        if beside:
            places.append((-1, 0, beside))
        left_out = in_pockets = 0
        for entry in reversed([entry for entry in legend if entry not in beside]):
            spot = _corner_spot(taken, curves, len(entry[0]))
            if spot is None:
                spot = _free_spot(taken, len(entry[0]))
                in_pockets += spot is not None
            if spot is None:
                left_out += 1
                continue
            places.append((spot[0], spot[1], [entry]))
            # its text alone: the next entry keeps a blank from it, one blank enough between two entries
            # ("━ train ━ pin" named both curves in the 15 columns of the loss plot's canvas at 80x24)
            taken[spot[0], spot[1]:spot[1] + len(entry[0])] = True
        return places, (left_out, in_pockets)

    @staticmethod
    def _fill_free(cell_bits: np.ndarray, owner: np.ndarray, bits: np.ndarray, style_id: int) -> None:
        free = (owner == _BASE_STYLE) & (bits > 0)
        cell_bits[free] = bits[free]
        owner[free] = style_id
