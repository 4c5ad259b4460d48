"""Points in the complex plane against the unit circle, in braille dots (the LRU's eigenvalues).

A diagonal linear recurrence h_t = lambda * h_{t-1} + b_t keeps its state (and passes its gradient
back) as long as |lambda| < 1 and forgets at the rate |lambda| per step; the phase of lambda makes
the unit oscillate. This widget draws each lambda as one braille dot in the complex plane with the
unit circle -- the stability boundary -- and the two axes for reference, so "how close to the
circle" (long memory) and "how far round" (oscillation) read at a glance.

Layout of the content area, top to bottom:

- header line: title on the left (the longest of its forms that leaves the legend room beside it,
  else the longest that fits), legend ("● name" in each series' colour, of the series with points to
  draw) on the right, or where it does not fit beside the title, in the canvas where nothing is
  drawn (else left out);
- the canvas (all lines but the first and the last): a square region of dots, centred
  horizontally, spanning [-R, R] on both axes with R = 1.1 * max(1, max |z|), so the unit circle
  and every point are always in view;
- label line: "-R" and "R" under the real axis' ends (R shown as a number, 1.1 by default).

With ``width: auto`` the plane is as wide as it uses (:meth:`ComplexPlane.get_content_width`): its
square at its height, the axis labels, and its header.

Braille dots are half a cell wide and a quarter of a cell high; terminal cells are about twice as
high as wide, so dots are about square and the circle is drawn round on a dot grid of equal steps.
Where several things share a cell, points win over the circle and the circle over the axes; a cell
shows only its winner's dots, in the winner's colour.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from rich.style import Style
from textual.css.scalar import Unit
from textual.geometry import Size
from textual.reactive import reactive
from textual.strip import Strip

from rnnlab.tui.widgets.plot import (BRAILLE_BLANK, DEFAULT_COLORS, CachedFrame, _CellGrid, _cut, _free_spot,
                                     _joined, _pack, _put_legend)

# Style ids of the cell grid; series follow from _SERIES_STYLE on, in insertion order.
_BASE_STYLE, _AXIS_STYLE, _TITLE_STYLE, _CIRCLE_STYLE, _SERIES_STYLE = range(5)
MARGIN = 1.1  # the view's half-width, as a multiple of max(1, max |z|)


def plane_extent(points) -> float:
    """Half-width R of the square view [-R, R]^2 that shows the unit circle and every finite point."""
    largest = 1.0
    for values in points:
        finite = values[np.isfinite(values)]
        if finite.size:
            largest = max(largest, float(np.abs(finite).max()))
    return MARGIN * largest


class ComplexPlane(CachedFrame):
    """A braille scatter plot of complex numbers with the unit circle and the axes.

    Args:
        title: Header text (left of the legend).
        short_titles: What the title says in fewer characters, longest first: the first of the title
            and these with which the legend fits beside it is shown, else the first that fits alone
            (the legend then goes into the canvas), else the last, cut.

    ``set_points(name, values)`` adds or replaces a series of complex numbers (real numbers are
    points on the real axis); non-finite values are skipped.
    """

    DEFAULT_CSS = """
    ComplexPlane {
        height: 12;
    }
    ComplexPlane > .complexplane--title {
        text-style: bold;
    }
    ComplexPlane > .complexplane--axis {
        color: $text-muted;
    }
    ComplexPlane > .complexplane--circle {
        color: $secondary;
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"complexplane--title", "complexplane--axis", "complexplane--circle"}
    """
    | Class | Description |
    | :- | :- |
    | `complexplane--title` | The title. |
    | `complexplane--axis` | The real and imaginary axes, their labels, "no data". |
    | `complexplane--circle` | The unit circle. |
    """

    title: reactive[str] = reactive("")
    short_titles: reactive[tuple[str, ...]] = reactive(())

    def __init__(self, *, title: str = "", short_titles: tuple[str, ...] = (), name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.set_reactive(ComplexPlane.title, title)
        self.set_reactive(ComplexPlane.short_titles, tuple(short_titles))
        self._series: dict[str, tuple[np.ndarray, Style]] = {}
        self._widths: tuple = ()  # what the width it uses depends on, as last laid out

    @property
    def series_names(self) -> list[str]:
        """Names of the series, in the order they were first set (= drawing order)."""
        return list(self._series)

    def points(self, name: str) -> np.ndarray:
        """A copy of the complex values of series ``name``."""
        return self._series[name][0].copy()

    def set_points(self, name: str, values, color: str | None = None) -> None:
        """Create or replace the series ``name`` (complex or real values, any shape; copied).

        ``color``: any rich colour; None keeps the series' colour or picks the next default one.
        """
        values = np.array(values, dtype=np.complex128).ravel()
        if color is not None:
            style = Style(color=color)
        elif name in self._series:
            style = self._series[name][1]
        else:
            style = Style(color=DEFAULT_COLORS[len(self._series) % len(DEFAULT_COLORS)])
        self._series[name] = (values, style)
        self._invalidate()

    def clear(self) -> None:
        """Remove every series."""
        self._series.clear()
        self._invalidate()

    def _invalidate(self) -> None:
        super()._invalidate()
        # a width: auto plane's width follows the lengths of its header and axis label: laid out
        # again where they change (not at every new set of points)
        extent = f"{plane_extent(values for values, _ in self._series.values()):.3g}"
        widths = (tuple(map(len, (self.title, *self.short_titles))), len(_joined(self._legend())), len(extent))
        if widths != self._widths:
            self._widths = widths
            if self.styles.width is not None and self.styles.width.is_auto:
                self.refresh(layout=True)

    watch_title = watch_short_titles = _invalidate

    # ----------------------------------------------------------------------------- header

    def _legend(self) -> list[tuple[str, int]]:
        """The legend's entries (text, style id): the series with a point to draw. One with none
        named nothing drawn (and sat over "no data")."""
        return [(f"● {name}", _SERIES_STYLE + i) for i, (name, (values, _)) in enumerate(self._series.items())
                if np.isfinite(values).any()]

    def _header(self, width: int) -> tuple[str, bool]:
        """The title's form shown in ``width`` columns, and whether the legend goes beside it."""
        forms = (self.title, *self.short_titles)
        legend = len(_joined(self._legend()))
        beside = next((form for form in forms if len(form) + 2 + legend <= width), None) if legend else None
        if beside is not None:
            return beside, True
        return next((form for form in forms if len(form) <= width), forms[-1]), False

    def get_content_width(self, container: Size, viewport: Size) -> int:
        """The columns the plane uses (its width where ``width: auto``): its square at its height --
        where that is the container's (a percentage) or its own (cells) -- and the axis labels under it,
        and its header: the shortest title form with the legend beside it, a longer one as far as a
        quarter of the ``container`` allows. At 80x24 the main lab's plane, 30 columns, drew 8 of
        circle and squeezed the training plots beside it to 9-13."""
        height = self.styles.height
        rows = (int(height.resolve(container, viewport)) if height is not None and height.unit in
                (Unit.CELLS, Unit.PERCENT, Unit.HEIGHT) else self.size.height)
        label = f"{plane_extent(values for values, _ in self._series.values()):.3g}"
        used = max(2 * max(rows - 2, 0), 2 * len(label) + 2)  # the square, "-1.1 1.1"
        legend = len(_joined(self._legend()))
        headers = [len(form) + (2 + legend if legend else 0) for form in (self.title, *self.short_titles)]
        return max(used, min(headers[0], max(min(headers), container.width // 4)))

    # ----------------------------------------------------------------------------- geometry

    def canvas(self) -> tuple[int, int, int, float]:
        """``(left, top, side, R)``: the square of dots the plane is drawn in -- its first dot column
        and dot row, counted from the first canvas line (content line 1), and its side in dots -- and
        the view's half-width R (the square spans [-R, R] on both axes)."""
        width, height = self.size
        dot_width, dot_height = 2 * max(width, 0), 4 * max(height - 2, 0)
        side = min(dot_width, dot_height)
        left, top = (dot_width - side) // 2, (dot_height - side) // 2
        left, top = left - left % 2, top - top % 4  # start on a cell boundary
        return left, top, side, plane_extent(values for values, _ in self._series.values())

    @staticmethod
    def _to_dots(z: np.ndarray, side: int, extent: float) -> tuple[np.ndarray, np.ndarray]:
        """Dot (column, row) of each complex z in a canvas of ``side`` dots spanning [-extent, extent]."""
        half = (side - 1) / 2.0
        scale = half / extent
        cols = np.rint(half + z.real * scale).astype(np.int64)
        rows = np.rint(half - z.imag * scale).astype(np.int64)
        return cols, rows

    # ----------------------------------------------------------------------------- rendering

    def _render_all(self, base_style: Style) -> list[Strip]:
        width, height = self.size
        if width <= 0 or height <= 0:
            return []
        grid = _CellGrid(width, height)
        legend = self._legend()
        title, beside = self._header(width)
        if beside:  # else the title ran over it
            _put_legend(grid, 0, width - len(_joined(legend)), legend)
            legend = []
        grid.put(0, 0, _cut(title, width), _TITLE_STYLE)

        left, top, side, extent = self.canvas()
        if side >= 3:
            self._draw(grid, left, top, side, extent)
        if not any(np.isfinite(values).any() for values, _ in self._series.values()) and height > 2:
            grid.put(1 + (height - 3) // 2, max(0, (width - 7) // 2), "no data", _AXIS_STYLE)
        if legend and height > 2:  # beside the square, clear of the circle and the points
            spot = _free_spot(grid.codes[1:height - 1] != ord(" "), len(_joined(legend)))
            if spot is not None:
                _put_legend(grid, 1 + spot[0], spot[1], legend)

        def component(name: str) -> Style:
            return base_style + self.get_component_rich_style(name, partial=True)

        styles = [base_style, component("complexplane--axis"), component("complexplane--title"),
                  component("complexplane--circle"), *(base_style + style for _, style in self._series.values())]
        return grid.strips(styles, base_style)

    def _draw(self, grid: _CellGrid, left: int, top: int, side: int, extent: float) -> None:
        """Axes, circle and points on the canvas lines 1 .. height-2; axis labels on the last line."""
        rows_cells = grid.height - 2
        dot_width, dot_height = 2 * grid.width, 4 * rows_cells
        # every layer is a dot grid over the whole canvas area; the square starts at (top, left)

        def layer(cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
            dots = np.zeros((dot_height, dot_width), dtype=bool)
            cols, rows = cols + left, rows + top
            inside = (cols >= 0) & (cols < dot_width) & (rows >= 0) & (rows < dot_height)
            dots[rows[inside], cols[inside]] = True
            return _pack(dots)

        span = np.arange(side)
        centre = (side - 1) // 2
        axes = layer(np.r_[span, np.full(side, centre)], np.r_[np.full(side, centre), span])
        angles = np.linspace(0.0, 2.0 * np.pi, 8 * side, endpoint=False)
        circle = layer(*self._to_dots(np.exp(1j * angles), side, extent))

        bits = np.zeros((rows_cells, grid.width), dtype=np.uint8)
        owner = np.full((rows_cells, grid.width), _BASE_STYLE, dtype=np.int64)
        for index, (values, _) in enumerate(self._series.values()):
            finite = values[np.isfinite(values)]
            if finite.size:
                series_bits = layer(*self._to_dots(finite, side, extent))
                bits |= series_bits
                owner[series_bits > 0] = _SERIES_STYLE + index
        for extra, style_id in ((circle, _CIRCLE_STYLE), (axes, _AXIS_STYLE)):
            free = (owner == _BASE_STYLE) & (extra > 0)
            owner[free] = style_id
            bits[owner == style_id] |= extra[owner == style_id]
        grid.codes[1:1 + rows_cells] = np.where(bits > 0, BRAILLE_BLANK + bits.astype(np.uint32), ord(" "))
        grid.style_ids[1:1 + rows_cells] = owner

        label = f"{extent:.3g}"
        first_cell, last_cell = left // 2, (left + side - 1) // 2
        left_at, right_at = first_cell, last_cell - len(label) + 1
        # a square narrower than its two labels (a short plane): they move out into the margins beside it
        # as far as needed and there is room, each a cell at a time
        while right_at - (left_at + len(label) + 1) < 1:  # a blank between them: "-1.11.1" reads as one number
            if right_at + len(label) < grid.width:
                right_at += 1
            elif left_at > 0:
                left_at -= 1
            else:
                break
        grid.put(grid.height - 1, left_at, f"-{label}", _AXIS_STYLE)
        if right_at - (left_at + len(label) + 1) >= 1:
            grid.put(grid.height - 1, right_at, label, _AXIS_STYLE)
