"""The TUI widgets: colour maps, the heatmap, the braille line plot and the complex plane, rendered in a
headless app."""

from __future__ import annotations

import asyncio
import math
import re

import numpy as np
import pytest
from textual.app import App, ComposeResult
from textual.strip import Strip
from textual.widget import Widget

from rnnlab.tui.widgets import (DIVERGING, SEQUENTIAL, ColorBar, ComplexPlane, Heatmap, LinePlot, colorbar_strip,
                                downsample_minmax, get_colormap, value_levels)

WIDTH = 40


class WidgetApp(App):
    """Hosts the given widgets and records the columns its heatmaps report as clicked."""

    def __init__(self, *widgets: Widget) -> None:
        super().__init__()
        self._widgets = widgets
        self.clicked: list[int] = []

    def compose(self) -> ComposeResult:
        yield from self._widgets

    def on_heatmap_column_clicked(self, message: Heatmap.ColumnClicked) -> None:
        self.clicked.append(message.column)


def run_in_app(*widgets: Widget, check, size=(WIDTH, 24)) -> None:
    """Mount ``widgets`` in a headless app of ``size`` and await ``check(pilot)``."""
    async def main() -> None:
        app = WidgetApp(*widgets)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await check(pilot)
    asyncio.run(main())


def lines_of(widget: Widget) -> list:
    return [widget.render_line(y) for y in range(widget.size.height)]


def style_at(strip, x: int):
    """The rich style of cell ``x`` of a strip."""
    position = 0
    for segment in strip:
        position += segment.cell_length
        if x < position:
            return segment.style
    raise IndexError(x)


def rgb(color) -> tuple[int, int, int]:
    return tuple(color.get_truecolor())


# --------------------------------------------------------------------------------- colour maps

def test_diverging_map_is_blue_grey_red_with_zero_on_its_own_middle_level():
    assert DIVERGING.n_levels % 2 == 1
    middle = DIVERGING.n_levels // 2
    assert DIVERGING.levels([-1.0, 0.0, 1.0], -1.0, 1.0).tolist() == [0, middle, DIVERGING.n_levels - 1]
    red, green, blue = DIVERGING.rgb(middle)
    assert red == green == blue and red > 150  # neutral, light
    low, high = DIVERGING.rgb(0), DIVERGING.rgb(DIVERGING.n_levels - 1)
    assert low[2] > 2 * low[0] and high[0] > 3 * high[2]  # blue end, red end
    # Zero stays neutral on an asymmetric scale; the ends stay the ends.
    assert DIVERGING.levels([-0.2, 0.0, 3.0], -0.2, 3.0).tolist() == [0, middle, DIVERGING.n_levels - 1]


def test_sequential_map_runs_from_viridis_purple_to_yellow():
    assert SEQUENTIAL.rgb(0) == (68, 1, 84)
    assert SEQUENTIAL.rgb(SEQUENTIAL.n_levels - 1) == (253, 231, 37)
    top = SEQUENTIAL.n_levels - 1
    assert SEQUENTIAL.levels([0.0, 0.5, 1.0], 0.0, 1.0).tolist() == [0, SEQUENTIAL.n_levels // 2, top]
    assert get_colormap("sequential") is SEQUENTIAL and get_colormap(DIVERGING) is DIVERGING
    with pytest.raises(ValueError, match="unknown colormap"):
        get_colormap("jet")


@pytest.mark.parametrize("cmap", [DIVERGING, SEQUENTIAL], ids=lambda c: c.name)
def test_levels_are_monotonic_cover_the_map_and_mark_nan_missing(cmap):
    values = np.linspace(-1.5, 1.5, 2001)
    levels = cmap.levels(values, -1.0, 1.0)
    assert np.all(np.diff(levels) >= 0)
    assert set(levels.tolist()) == set(range(cmap.n_levels))
    special = cmap.levels([np.nan, -np.inf, np.inf], -1.0, 1.0).tolist()
    assert special == [cmap.missing_level, 0, cmap.n_levels - 1]
    assert cmap.rgb(cmap.missing_level) not in cmap.colors
    # A degenerate scale (constant signal) is drawn, not rejected.
    assert value_levels([2.0, np.nan], 1.0, 1.0, 9).tolist() == [4, 9]


# --------------------------------------------------------------------------------- heatmap

def test_heatmap_draws_two_rows_per_line_at_the_full_width():
    data = np.tanh(np.random.default_rng(0).standard_normal((7, 20)))
    heatmap = Heatmap(data)

    async def check(pilot):
        lines = lines_of(heatmap)
        assert heatmap.size.height == 1 + math.ceil(7 / 2)  # cursor line + map lines
        assert all(line.cell_length == WIDTH for line in lines)
        assert all(set(line.text) == {"▀"} for line in lines[1:])
        # 20 steps in 40 columns: 2 columns per step, and the odd last row's lower half is background.
        background = heatmap.visual_style.rich_style.bgcolor
        assert style_at(lines[-1], 0).bgcolor == background

    run_in_app(heatmap, check=check)


def test_heatmap_cell_colours_match_the_colormap_upper_and_lower():
    data = np.zeros((4, 10))
    data[2, 6], data[3, 6] = -1.0, 1.0  # map line 1 holds rows 2 (upper) and 3 (lower)
    data[0, 0] = np.nan
    heatmap = Heatmap(data, title="h")

    async def check(pilot):
        lines = lines_of(heatmap)
        assert lines[0].text.startswith("h")
        cell = style_at(lines[3], 6 * 4)  # title, cursor line, map line 0, map line 1; 4 columns per step
        assert rgb(cell.color) == DIVERGING.rgb(0) and rgb(cell.bgcolor) == DIVERGING.rgb(DIVERGING.n_levels - 1)
        neutral = DIVERGING.rgb(DIVERGING.n_levels // 2)
        assert rgb(style_at(lines[3], 5 * 4).color) == neutral
        assert rgb(style_at(lines[2], 0).color) == DIVERGING.missing

        heatmap.colormap = "sequential"
        heatmap.set_data(np.full((4, 10), 0.5), vmin=0.0, vmax=1.0)
        await pilot.pause()
        assert rgb(style_at(heatmap.render_line(2), 0).color) == SEQUENTIAL.rgb(SEQUENTIAL.n_levels // 2)

    run_in_app(heatmap, check=check)


def test_unrevealed_columns_are_drawn_empty():
    heatmap = Heatmap(np.ones((4, 10)))
    heatmap.revealed = 3

    async def check(pilot):
        line = heatmap.render_line(1)
        red = DIVERGING.rgb(DIVERGING.n_levels - 1)
        for step in range(10):
            cell = style_at(line, step * 4)
            if step < 3:
                assert rgb(cell.color) == rgb(cell.bgcolor) == red
            else:
                assert cell.color == cell.bgcolor and rgb(cell.color) not in DIVERGING.colors

        heatmap.reveal_from_end = True  # BPTT: the last 3 steps have gradients
        await pilot.pause()
        line = heatmap.render_line(1)
        assert rgb(style_at(line, 6 * 4).color) != red and rgb(style_at(line, 7 * 4).color) == red

        heatmap.revealed = None
        await pilot.pause()
        assert rgb(style_at(heatmap.render_line(1), 0).color) == red

    run_in_app(heatmap, check=check)


def test_cursor_column_is_marked_and_highlighted():
    heatmap = Heatmap(np.zeros((4, 10)))

    async def check(pilot):
        heatmap.cursor = 4
        await pilot.pause()
        marker, first_map_line = heatmap.render_line(0), heatmap.render_line(1)
        assert marker.text.index("▼") == 4 * 4 + 2  # middle of the step's 4 columns
        assert "▼4" in marker.text
        normal, under_cursor = style_at(first_map_line, 3 * 4), style_at(first_map_line, 4 * 4)
        assert under_cursor != normal
        assert style_at(first_map_line, 5 * 4) == normal

        heatmap.cursor = None
        await pilot.pause()
        assert "▼" not in heatmap.render_line(0).text
        assert style_at(heatmap.render_line(1), 4 * 4) == normal

    run_in_app(heatmap, check=check)


def test_a_long_title_is_cut_for_the_window_of_steps_not_the_window_dropped():
    """At 80x24 "hidden state h_t  (r = 1)  · layer 0 reverse" took the line and the "t 66-100 of 100"
    that says only part of the map is shown was left out (a TUI walkthrough)."""
    heatmap = Heatmap(np.zeros((2, 100)), title="hidden state h_t  (r = 1)  · layer 0 reverse " * 3)

    async def check(pilot):
        heatmap.cursor = 99
        await pilot.pause()
        line = heatmap.render_line(0).text
        assert line.rstrip().endswith("of 100") and line.startswith("hidden state h_t  (r = 1)")
        assert "reverse" not in line  # cut for the window (what follows the scale first)

    run_in_app(heatmap, check=check)


def test_a_cut_title_cuts_what_follows_its_scale_before_the_records_name():
    """At 80x24 a reverse direction's BPTT map read "dL/d… (BPTT, r = 1)  · layer 0 reverse": the
    stream, which the status line names too, kept whole and the map's own name cut."""
    from rnnlab.tui.widgets.heatmap import cut_title

    title = "dL/dh_t (BPTT, r = 1)  · layer 0 reverse"
    assert cut_title(title, 38) == "dL/dh_t (BPTT, r = 1)  · layer 0 reve…"
    assert cut_title(title, 27) == "dL/dh_t (BPTT, r = 1)…"  # too little of it left: none
    assert cut_title(title, 21) == "dL/dh_t (BPTT, r = 1)"
    assert cut_title(title, 20) == "dL/dh… (BPTT, r = 1)"


def test_a_cut_title_keeps_its_scale_and_cuts_the_records_name():
    """The scale "(r = 1.37)", which alone says what the colours mean, was the first thing cut: at 80x24
    "hidden state h_t  (r = … t 1-35 of 100", at 60 columns every map lost it."""
    from rnnlab.tui.widgets.heatmap import cut_title

    assert cut_title("hidden state h_t  (r = 1.37)", 20) == "hidden s… (r = 1.37)"
    assert cut_title("dL/dh_t (BPTT, r = 0.02) l0r", 23) == "dL/dh… (BPTT, r = 0.02)"  # what follows went first
    assert cut_title("hidden state h_t  (r = 1.37)", 40) == "hidden state h_t  (r = 1.37)"
    assert cut_title("block output y", 8) == "block o…"
    heatmap = Heatmap(np.zeros((2, 100)), title="hidden state h_t  (r = 1.37)")

    async def check(pilot):
        heatmap.cursor = 99
        await pilot.pause()
        line = heatmap.render_line(0).text
        assert "(r = 1.37)" in line and line.rstrip().endswith(" t 60-99"), line

    run_in_app(heatmap, check=check, size=(40, 10))


def test_the_window_of_steps_leaves_out_its_total_before_the_title_cuts_the_records_name():
    """At 80x24 the BPTT map read "dL/d… (BPTT, r = 0.26) t 66-100 of 100": which record it was went
    for a total that the sequence bar and the status line say too. The total where both fit."""
    heatmap = Heatmap(np.zeros((2, 100)), title="dL/dh_t (BPTT, r = 0.26)")

    async def check(pilot):
        heatmap.cursor = 99
        await pilot.pause()
        line = heatmap.render_line(0).text
        assert line.startswith("dL/dh_t (BPTT, r = 0.26) ") and line.endswith(" t 62-99"), line
        heatmap.styles.width = 39  # room for both
        await pilot.pause()
        assert heatmap.render_line(0).text == "dL/dh_t (BPTT, r = 0.26) t 61-99 of 100"
        heatmap.title = "hidden state h_t  (r = 1)"
        heatmap.styles.width = 18  # no room for a window that leaves the scale, which says what the colours mean
        await pilot.pause()
        assert heatmap.render_line(0).text == "hidden st… (r = 1)"

    run_in_app(heatmap, check=check, size=(38, 10))


def test_a_title_too_long_gives_way_to_its_short_form_whole_before_either_is_cut():
    """At 80 columns the titles were cut in mid-word, "hidden state h_… (r = 1)", "dL/d… (BPTT, r = 0.24)":
    a short form, its scale kept, is drawn whole where the title's name and scale would be cut."""
    heatmap = Heatmap(np.zeros((2, 100)), title="hidden state h_t  (r = 1)")

    async def check(pilot):
        heatmap.short_title = "h_t (r = 1)"
        heatmap.cursor = 99
        await pilot.pause()
        assert heatmap.render_line(0).text == "hidden state h_t  (r = 1)  t 59-99 of 100"  # both fit: the title
        heatmap.styles.width = 30
        await pilot.pause()
        assert heatmap.render_line(0).text == "h_t (r = 1)     t 70-99 of 100"  # not "hidden… (r = 1) t 70-99 ..."
        heatmap.title = "dL/dh_t (BPTT, r = 0.24)  · layer 0 reverse"
        heatmap.short_title = "dL/dh_t (r = 0.24)  · layer 0 reverse"
        await pilot.pause()
        assert heatmap.render_line(0).text == "dL/dh_t (r = 0.24)…    t 70-99"  # not "dL/d… (BPTT, r = 0.24) ..."
        heatmap.cursor = None  # the map's first steps: no window
        heatmap.styles.width = 22
        await pilot.pause()
        assert heatmap.render_line(0).text.rstrip() == "dL/dh_t (r = 0.24)…"  # not "dL/d… (BPTT, r = 0.24)"
        heatmap.styles.width = 12
        await pilot.pause()
        assert heatmap.render_line(0).text == "dL/dh_t (r …"  # neither whole: the short form cut

    run_in_app(heatmap, check=check, size=(41, 10))


def test_wide_map_scrolls_to_keep_the_cursor_in_view():
    heatmap = Heatmap(np.zeros((2, 100)), title="wide")

    async def check(pilot):
        heatmap.cursor = 90
        await pilot.pause()
        assert "▼90" in heatmap.render_line(1).text or "90▼" in heatmap.render_line(1).text
        assert "of 100" in heatmap.render_line(0).text
        # another model, no step taken: the view starts at its start, not where the cursor had taken it
        heatmap.cursor = None
        heatmap.set_data(np.ones((2, 100)))
        await pilot.pause()
        assert f" t {heatmap.first_step}-" in heatmap.render_line(0).text

    run_in_app(heatmap, check=check)


def test_clicking_a_cell_posts_its_time_step():
    heatmap = Heatmap(np.zeros((6, 20)), id="map")  # 2 terminal columns per step

    async def check(pilot):
        await pilot.click("#map", offset=(7 * 2 + 1, 2))
        await pilot.click("#map", offset=(0, 3))
        await pilot.pause()
        assert pilot.app.clicked == [7, 0]

    run_in_app(heatmap, check=check)


def test_heatmap_rejects_non_matrix_data_and_colorbar_spans_its_width():
    with pytest.raises(ValueError, match="2-D"):
        Heatmap(np.zeros(5))
    strip = colorbar_strip("diverging", 30, -1.0, 1.0)
    assert strip.cell_length == 30 and strip.text.startswith("-1 ") and strip.text.endswith(" 1")
    assert rgb(style_at(strip, 3).bgcolor) == DIVERGING.rgb(0)
    assert colorbar_strip("sequential", 5, 0.0, 1.0).cell_length == 5  # too narrow for labels

    bar = ColorBar("sequential", 0.0, 1.0)

    async def check(pilot):
        line = bar.render_line(0)
        assert line.cell_length == WIDTH and line.text.endswith(" 1")

    run_in_app(bar, check=check)


# --------------------------------------------------------------------------------- line plot

def braille_cells(line) -> list[int]:
    """x positions of the braille characters with at least one dot in a line."""
    return [x for x, char in enumerate(line.text) if 0x2801 <= ord(char) <= 0x28FF]


def canvas_rows(plot: LinePlot) -> list:
    return lines_of(plot)[1:-1]


def test_rising_series_rises_left_to_right():
    plot = LinePlot(title="up")
    plot.set_series("up", np.arange(50), np.arange(50.0))

    async def check(pilot):
        rows = canvas_rows(plot)
        mean_x = [np.mean(braille_cells(row)) for row in rows]  # top row first
        assert all(a > b for a, b in zip(mean_x, mean_x[1:]))
        assert rows[0].text.lstrip().startswith("49") and rows[-1].text.lstrip().startswith("0")
        assert all(line.cell_length == WIDTH for line in lines_of(plot))
        assert "━ up" in plot.render_line(0).text

    run_in_app(plot, check=check, size=(WIDTH, 12))


def test_log_scale_straightens_an_exponential_and_skips_nonpositive_values():
    xs = np.arange(-2, 41)
    ys = np.r_[0.0, -5.0, 10.0 ** (np.arange(41) / 10)]  # 1 .. 1e4, after two unplottable values
    plot = LinePlot(log_y=True)
    plot.set_series("exp", xs, ys)

    async def check(pilot):
        rows = canvas_rows(plot)
        counts = [len(braille_cells(row)) for row in rows]
        assert min(counts) > 0 and max(counts) <= 2 * min(counts) + 1  # a straight line: even rows
        assert "1e+04┤" in rows[0].text and rows[-1].text.lstrip().startswith("1┤")

        plot.log_y = False
        await pilot.pause()
        counts = [len(braille_cells(row)) for row in canvas_rows(plot)]
        assert counts[-1] > 4 * counts[0]  # linear scale: the curve hugs the bottom

    run_in_app(plot, check=check, size=(WIDTH, 12))


def test_threshold_line_is_dashed_labelled_and_kept_in_range():
    plot = LinePlot(threshold=5.0, threshold_label="clip")
    plot.set_series("norm", None, np.linspace(0.0, 1.0, 30))

    async def check(pilot):
        rows = canvas_rows(plot)
        assert rows[0].text.lstrip().startswith("5┤")  # the y range grew to show the threshold
        threshold_color = plot.get_component_rich_style("lineplot--threshold").color
        labelled = [row for row in rows if row.text.endswith("clip 5")]
        assert len(labelled) == 1
        dashes = [seg for seg in labelled[0] if seg.style.color == threshold_color and braille_cells(Strip([seg]))]
        assert len(dashes) >= 5  # one-cell dashes with gaps

        plot.threshold = None
        await pilot.pause()
        assert not any("clip" in row.text for row in canvas_rows(plot))

    run_in_app(plot, check=check, size=(WIDTH, 12))


def test_the_threshold_label_never_covers_a_curve():
    plot = LinePlot(threshold=1.0, threshold_label="clip")
    plot.set_series("norm", None, np.r_[np.zeros(25), np.ones(5)])  # reaches the threshold at the right end

    async def check(pilot):
        labelled = [row.text for row in canvas_rows(plot) if "clip 1" in row.text]
        assert len(labelled) == 1 and not labelled[0].rstrip().endswith("clip 1")  # moved to the left
        plot.set_series("norm", None, np.ones(30))  # along the whole threshold line: just above or below it
        await pilot.pause()
        rows = [row.text for row in canvas_rows(plot)]
        line_row = next(i for i, text in enumerate(rows) if any(0x2801 <= ord(c) <= 0x28FF for c in text))
        labelled = [i for i, text in enumerate(rows) if "clip 1" in text]
        assert len(labelled) == 1 and abs(labelled[0] - line_row) == 1
        plot.set_series("norm", None, np.tile([0.0, 2.0], 15))  # a curve through every row: no room anywhere
        await pilot.pause()
        assert not any("clip" in row.text for row in canvas_rows(plot))

    run_in_app(plot, check=check, size=(WIDTH, 12))


def test_a_threshold_label_with_curves_all_along_its_line_goes_elsewhere_keyed_by_a_dash():
    """The loss plot's baseline ("predict 1 0.167") was never named where the loss ran along it."""
    plot = LinePlot(threshold=1.0, threshold_label="baseline")
    plot.set_series("loss", None, np.r_[4.0, np.tile([0.5, 1.5], 20)])  # around the line, room above

    async def check(pilot):
        rows = [row.text for row in canvas_rows(plot)]
        keyed = [text for text in rows if "┄ baseline 1" in text]
        assert len(keyed) == 1 and not any(" baseline 1 " in text and "┄" not in text for text in rows)

    run_in_app(plot, check=check, size=(WIDTH, 12))


def test_a_threshold_label_with_no_room_anywhere_gives_its_value_alone_on_the_axis_at_its_row():
    """With a pinned curve beside the live ones the baseline's dotted line had no label at all, and
    read as part of the pin; then "┄ 1" went wherever the canvas had room, rows away from its line:
    on the axis at the line's row the value says where the line is, as the axis' own labels do. Where
    the axis writes another value on that row (its top or bottom), the value goes after a dash."""
    plot = LinePlot(threshold=1.0, threshold_label="ignores input:")
    plot.set_series("loss", None, np.r_[4.0, np.tile([0.5, 1.5], 20)])

    async def check(pilot):
        rows = canvas_rows(plot)
        texts = [row.text for row in rows]
        assert not any("ignores input" in text for text in texts)  # 18 cells and its blanks: no room
        assert not any("┄ 1" in text for text in texts), texts
        labelled = [y for y, text in enumerate(texts) if text.startswith("  1┤")]
        assert labelled == [len(texts) - 2] and texts[-1].startswith("0.5┤"), texts  # 1 of 0.5 .. 4: its row
        assert style_at(rows[labelled[0]], 2).color == threshold_color(plot)  # its colour, not the axis'
        plot.threshold = 0.5  # on the bottom row, where the axis writes 0.5 ... and 1.5 there
        plot.set_series("loss", None, np.r_[4.0, np.tile([0.4, 1.5], 20)])
        await pilot.pause()
        texts = [row.text for row in canvas_rows(plot)]
        assert sum((text + " ").count("┄ 0.5 ") for text in texts) == 1, texts

    run_in_app(plot, check=check, size=(21, 12))


def threshold_color(plot: LinePlot):
    return plot.get_component_rich_style("lineplot--threshold").color


def test_the_threshold_label_gives_way_where_it_would_leave_a_curve_unnamed():
    """At 80x24 the main lab's loss plot, a pinned loss beside the live one and the held-out curve,
    had one row free of curves: "┄ 0.167" took it and only "━ train" was named. Every curve named,
    the baseline's value on the axis at its line's row; legend entries one blank apart in the canvas
    (two left "━ train" no room)."""
    plot = LinePlot(title="loss 0.1871", log_y=True, threshold=0.25, threshold_label="predict 1:")
    steps = np.arange(1, 601)
    zigzag = np.r_[2.0, np.tile([0.06, 0.3], 300)][:600]  # a first loss, then the lower two rows
    plot.set_series("pin adding-rnn", steps[:300], zigzag[:300], short_name="pin")
    plot.set_series("train", steps, zigzag)
    plot.set_series("held-out", np.arange(30, 601, 30), np.full(20, 0.17), short_name="held")
    plot.styles.height = 5

    async def check(pilot):
        lines = [line.text for line in lines_of(plot)]
        assert lines[0] == "loss 0.1871    ━ held", lines
        assert lines[1].endswith("┤⡇  ━ pin ━ train") and is_clear(lines[1], "━ pin ━ train"), lines
        assert lines[2].startswith("0.25┤") and not any("┄" in line for line in lines), lines
        plot.styles.width = 20  # a column fewer: the two entries one blank apart
        await pilot.pause()
        lines = [line.text for line in lines_of(plot)]
        assert lines[1].endswith("┤⡇ ━ pin ━ train") and lines[0].endswith("━ held"), lines

    run_in_app(plot, check=check, size=(21, 7))


def test_a_bare_threshold_value_the_axis_already_writes_is_not_written_again():
    """The seq2seq lab's accuracy chart, its line at 1.0 unlabelled, read "1┤⠉ 1 ⠒⠒": the axis's 1, then
    the line's. A value the axis does not write on its row, or one with a label, is still written."""
    plot = LinePlot(title="sequence accuracy", threshold=1.0)
    plot.set_series("accuracy", None, np.linspace(0.0, 0.4, 30))

    async def check(pilot):
        rows = [row.text for row in canvas_rows(plot)]
        assert rows[0].startswith("1┤") and rows[0].count("1") == 1, rows[0]
        plot.threshold = 0.25  # mid-canvas: the axis does not say 0.25
        await pilot.pause()
        assert sum(" 0.25 " in row.text + " " for row in canvas_rows(plot)) == 1
        plot.threshold, plot.threshold_label = 1.0, "target"
        await pilot.pause()
        assert sum("target 1" in row.text for row in canvas_rows(plot)) == 1

    run_in_app(plot, check=check, size=(WIDTH, 12))


def test_a_narrow_plots_axis_labels_give_up_digits_to_leave_the_curve_room():
    """At 80 columns the gradient-norm plot beside the eigenvalue plane was 9 columns wide, and
    "0.00912┤" left one of them to the curve; a wide plot keeps three digits."""
    norms = np.geomspace(9.02, 0.00912, 50)
    narrow, wide = LinePlot(log_y=True), LinePlot(log_y=True)
    narrow.styles.width, narrow.styles.height = 9, 6
    for plot in (narrow, wide):
        plot.set_series("|g|", None, norms)

    async def check(pilot):
        rows = [row.text for row in canvas_rows(narrow)]
        assert rows[0].startswith("   9┤") and rows[-1].startswith("9e-3┤"), rows
        assert len({x for row in canvas_rows(narrow) for x in braille_cells(row)}) == 4  # 9 - len("9e-3┤")
        rows = [row.text for row in canvas_rows(wide)]
        assert rows[0].startswith("   9.02┤") and rows[-1].startswith("0.00912┤"), rows

    run_in_app(narrow, wide, check=check, size=(WIDTH, 12))


def test_a_narrow_linear_plot_keeps_two_digits_and_labels_that_differ():
    plot = LinePlot()
    plot.styles.width, plot.styles.height = 9, 6
    plot.set_series("loss", None, np.linspace(0.3154, 0.2841, 20))

    async def check(pilot):
        rows = [row.text for row in canvas_rows(plot)]
        assert rows[0].startswith("0.32┤") and rows[-1].startswith("0.28┤"), rows

    run_in_app(plot, check=check, size=(WIDTH, 12))


def test_a_single_step_is_labelled_by_itself_under_its_point():
    """The loss after the first step: the x-axis read "0.9" and "1.1", steps that are not."""
    plot = LinePlot()
    plot.set_series("loss", [1], [0.7])

    async def check(pilot):
        lines = lines_of(plot)
        point = next(braille_cells(line) for line in lines[1:-1] if braille_cells(line))[0]
        axis = lines[-1].text
        assert axis.split() == ["1"] and abs(axis.index("1") - point) <= 1, axis

    run_in_app(plot, check=check, size=(WIDTH, 12))


def test_marker_is_drawn_and_labelled_on_the_x_axis():
    plot = LinePlot(marker=25)
    plot.set_series("loss", np.arange(100), np.ones(100))

    async def check(pilot):
        axis = plot.render_line(plot.size.height - 1).text
        assert "▲25" in axis and axis.rstrip().endswith("99")
        marker_color = plot.get_component_rich_style("lineplot--marker").color
        rows = canvas_rows(plot)
        marked = [any(seg.style.color == marker_color for seg in row) for row in rows]
        assert sum(marked) == len(rows) - 1  # every row but the one where the series wins the cell

    run_in_app(plot, check=check, size=(WIDTH, 12))


def test_a_marker_near_an_end_hides_that_end_label_rather_than_running_into_it():
    plot = LinePlot(marker=35)
    plot.set_series("g", np.arange(1, 41), np.ones(40))

    async def check(pilot):
        axis = plot.render_line(plot.size.height - 1).text
        assert axis.split() == ["1", "▲35"]  # not "▲3540"
        plot.marker = 20
        await pilot.pause()
        assert plot.render_line(plot.size.height - 1).text.split() == ["1", "▲20", "40"]

    run_in_app(plot, check=check, size=(WIDTH, 12))


def test_empty_single_constant_and_non_finite_series_render_without_errors():
    plot = LinePlot(title="odd", log_y=False)

    async def check(pilot):
        assert any("no data" in line.text for line in lines_of(plot))
        cases = [([], []), ([3.0], [2.0]), (np.arange(5), np.full(5, 7.0)), ([1.0, 2.0], [np.nan, np.inf]),
                 (np.arange(6), [np.nan, 1.0, np.inf, -np.inf, 2.0, np.nan]), ([np.nan, 1.0], [1.0, 1.0])]
        for xs, ys in cases:
            plot.clear()
            plot.set_series("s", xs, ys)
            for log_y in (False, True):
                plot.log_y = log_y
                await pilot.pause()
                assert all(line.cell_length == WIDTH for line in lines_of(plot))
        plot.clear()
        plot.set_series("point", [3.0], [2.0])
        await pilot.pause()
        assert sum(len(braille_cells(row)) for row in canvas_rows(plot)) == 1
        with pytest.raises(ValueError, match="x values"):
            plot.set_series("bad", [1.0, 2.0], [1.0])

    run_in_app(plot, check=check, size=(WIDTH, 14))


def test_the_title_keeps_its_numbers_and_the_legend_gives_way_where_both_do_not_fit():
    plot = LinePlot(title="loss 0.0001462  acc 100%")
    plot.set_series("train", np.arange(5), np.ones(5))
    plot.set_series("held-out", np.arange(5), np.ones(5))

    async def check(pilot):
        header = plot.render_line(0).text
        assert header.rstrip() == "loss 0.0001462  acc 100%"  # 24 + 2 + 19 > 40: no legend run into it
        plot.title = "loss 0.1"
        await pilot.pause()
        header = plot.render_line(0).text
        assert header.startswith("loss 0.1  ") and header.rstrip().endswith("━ train  ━ held-out")
        plot.title = "x" * 50
        await pilot.pause()
        assert plot.render_line(0).text == "x" * (WIDTH - 1) + "…"

    run_in_app(plot, check=check, size=(WIDTH, 12))


def is_clear(text: str, label: str) -> bool:
    """``label`` is in ``text`` with a blank (or the line's end) on each side: it touches nothing."""
    at = text.find(label)
    return at > 0 and text[at - 1] == " " and text[at + len(label):at + len(label) + 1] in ("", " ")


def test_the_short_title_is_shown_only_where_the_long_one_does_not_fit():
    """Not to make room for the legend: the header changed wording as a legend grew ("BPTT t=3: ... =
    7.46e-01" at one width, "t=3 ... 7.5e-01" at another). The legend moves into the canvas instead."""
    plot = LinePlot(title="BPTT t=3: |dh_t| / |dh_T| = 7.46e-01", short_titles=("t=3: 7.46e-01 |dh_t|/|dh_T|",))
    plot.set_series("a", np.arange(1, 41), np.linspace(1.0, 2.0, 40))  # rising: the top left is free
    plot.set_series("b", np.arange(1, 41), np.linspace(1.0, 1.5, 40))

    async def check(pilot):
        lines = [line.text for line in lines_of(plot)]
        assert lines[0].rstrip() == "BPTT t=3: |dh_t| / |dh_T| = 7.46e-01"  # 36 of 40 columns: no legend
        assert sum("━ a  ━ b" in line for line in lines[1:-1]) == 1
        plot.title = "BPTT t=3: ||dL/dh_t|| / ||dL/dh_T|| = 7.46e-01"  # 46 columns: the short one
        await pilot.pause()
        assert plot.render_line(0).text == "t=3: 7.46e-01 |dh_t|/|dh_T|     ━ a  ━ b"  # and room for the legend

    run_in_app(plot, check=check, size=(WIDTH, 12))


def test_a_shorter_title_makes_room_for_a_curves_name_that_would_be_left_out():
    """At 80x24 the loss plot beside the eigenvalue plane read "loss (t trains)" over a pinned loss
    curve that ran along its canvas's every row: "━ pin" had no room and the curve went unnamed.
    The title says "loss" where that leaves the name room beside it; the longer form where the names
    fit either way (a title does not change wording to make room for nothing)."""
    plot = LinePlot(title="loss (t trains)", short_titles=("loss",))
    plot.set_series("pin", np.arange(40), np.where(np.arange(40) % 2, 1.0, 2.0))  # a zigzag on every row

    async def check(pilot):
        assert re.fullmatch(r"loss +━ pin", plot.render_line(0).text), [line.text for line in lines_of(plot)]
        plot.set_series("pin", np.arange(40), np.linspace(1.0, 2.0, 40))  # rising: the top left is free
        await pilot.pause()
        lines = [line.text for line in lines_of(plot)]
        assert lines[0].rstrip() == "loss (t trains)" and sum("━ pin" in line for line in lines[1:-1]) == 1, lines

    run_in_app(plot, check=check, size=(20, 6))


def test_a_series_with_no_point_to_draw_is_not_named():
    """A curve with no finite point (a held-out loss before its first evaluation, a log plot of zeros)
    was named in the legend over "no data", or beside the curves that were drawn."""
    plot = LinePlot(title="loss", log_y=True)
    plot.set_series("held-out", [1.0, 2.0], [np.nan, 0.0])

    async def check(pilot):
        lines = [line.text for line in lines_of(plot)]
        assert any("no data" in line for line in lines) and not any("held-out" in line for line in lines), lines
        plot.set_series("train", [1.0, 2.0], [2.0, 1.0])
        await pilot.pause()
        lines = [line.text for line in lines_of(plot)]
        assert "━ train" in lines[0] and not any("held-out" in line for line in lines), lines

    run_in_app(plot, check=check, size=(WIDTH, 8))


def test_a_legend_that_does_not_fit_the_header_goes_where_no_curve_runs_never_on_the_x_axis():
    """It was drawn between the x-axis labels, "1 ━ a  ━ b 40", where it reads as tick labels."""
    plot = LinePlot(title="gradient norm 0.334  (clipped 0 of 307 steps)", marker=20)
    plot.set_series("a", np.arange(1, 41), np.linspace(1.0, 2.0, 40))  # rising: the top left is free
    plot.set_series("b", np.arange(1, 41), np.linspace(1.0, 1.5, 40))

    async def check(pilot):
        lines = [line.text for line in lines_of(plot)]
        assert lines[-1].split() == ["1", "▲20", "40"]
        legend_rows = [y for y, line in enumerate(lines) if "━ a  ━ b" in line]
        assert legend_rows == [1] and is_clear(lines[1], "━ a  ━ b")  # top row, a blank from the curves
        plot.set_series("a", np.arange(1, 41), np.tile([1.0, 2.0], 20))  # a curve over every cell: left out
        await pilot.pause()
        lines = [line.text for line in lines_of(plot)]
        assert not any("━" in line for line in lines) and lines[-1].split() == ["1", "▲20", "40"]

    run_in_app(plot, check=check, size=(WIDTH, 12))


def test_a_legend_goes_in_a_corner_the_curves_leave_free_never_in_a_pocket_between_them():
    """In the ESN lab's sweep plot at 80x24 "━ free run" lay between its two curves, in free cells
    but read as drawn over them; a legend keeps to a corner with no curve between it and the edges,
    and where none has room, what fits of it beside the title, the rest where it has room (a curve
    left unnamed reads worse than a name between curves)."""
    plot = LinePlot(title="x" * 27, log_y=False)  # room beside it for "━ bottom", not for more
    plot.set_series("top", np.arange(1, 41), np.full(40, 2.0))  # along the top row
    plot.set_series("mid", np.arange(1, 21), np.ones(20))  # across the left half, halfway down

    async def check(pilot):
        lines = [line.text for line in canvas_rows(plot)]
        holding = [y for y, line in enumerate(lines) if "━ top  ━ mid" in line]
        assert holding == [len(lines) - 1], lines  # the bottom right, not just under the top curve
        assert lines[-1].rstrip().endswith("━ top  ━ mid") and is_clear(lines[-1], "━ top  ━ mid")
        plot.set_series("bottom", np.arange(1, 41), np.zeros(40))  # every corner taken
        await pilot.pause()
        lines = [line.text for line in lines_of(plot)]
        assert lines[0] == "x" * 27 + "     ━ bottom", lines
        for entry in ("━ top", "━ mid"):  # no corner: between the curves, in free cells, rather than unnamed
            placed = [line for line in lines[1:] if entry in line]
            assert len(placed) == 1 and is_clear(placed[0], entry), lines

    run_in_app(plot, check=check, size=(WIDTH, 12))


def test_the_title_is_the_longest_of_its_forms_that_fits_whole():
    """At 80 columns the main lab's gradient-norm plot read "|g| 0.98 0%…": its one short form did
    not fit, and a shorter one that did ("|g| 0.98") was not asked for."""
    plot = LinePlot(title="gradient norm 0.981  (clipped 0 of 200 steps)",
                    short_titles=("|g| 0.98 0% clipped", "|g| 0.98"))
    plot.set_series("|g|", None, np.linspace(1.0, 2.0, 30))

    async def check(pilot):
        for width, shown in ((WIDTH, "|g| 0.98 0% clipped"), (16, "|g| 0.98"),
                             (60, "gradient norm 0.981  (clipped 0 of 200 steps)")):
            plot.styles.width = width
            await pilot.pause()
            assert plot.render_line(0).text.startswith(f"{shown} "), plot.render_line(0).text
        plot.styles.width = 6  # none fits: the last, cut
        await pilot.pause()
        assert plot.render_line(0).text == "|g|…  "

    run_in_app(plot, check=check, size=(WIDTH, 12))


def test_a_legend_with_no_room_in_one_line_names_each_curve_where_it_has_room():
    """Two curves crossing every row left no line free for "━ dh_t  ━ dW_hh(t)" and the legend was
    left out; each entry fits beside the spike that splits the canvas."""
    plot = LinePlot(title="x" * 36, log_y=False)
    plot.set_series("dh_t", np.arange(1, 41), np.r_[np.zeros(20), 8.0, np.zeros(19)])  # a spike: every row
    plot.set_series("dW_hh(t)", np.arange(1, 41), np.r_[np.full(10, 8.0), np.zeros(30)])  # a step down

    async def check(pilot):
        lines = [line.text for line in lines_of(plot)][1:-1]
        assert not any("━ dh_t  ━ dW_hh(t)" in line for line in lines)  # no row for both
        for entry in ("━ dh_t", "━ dW_hh(t)"):
            holding = [line for line in lines if entry in line]
            assert len(holding) == 1 and is_clear(holding[0], entry), (entry, lines)

    run_in_app(plot, check=check, size=(WIDTH, 12))


def test_a_legend_with_no_room_for_its_names_names_each_curve_by_its_short_name():
    """At 80x24 the main lab's BPTT plot named one curve or none ("||ΔW_hh(t)||" left out, then
    "||dL/dh_t||" too) once its curves took the corners: each is named by its short form there, and
    by its name where that has room."""
    plot = LinePlot(title="x" * 28)
    spikes = np.zeros(76)
    spikes[[24, 52]] = 8.0  # through every row: the canvas in three parts, each too narrow for a name
    plot.set_series("||dL/dh_t||", np.arange(1, 77), spikes, short_name="dL/dh_t")
    plot.set_series("||ΔW_hh(t)||", np.arange(1, 77), np.zeros(76), short_name="ΔW_hh")
    plot.styles.width = 40

    async def check(pilot):
        lines = [line.text for line in lines_of(plot)]
        for entry in ("━ dL/dh_t", "━ ΔW_hh"):
            holding = [line for line in lines if entry in line]
            assert len(holding) == 1 and is_clear(holding[0], entry), (entry, lines)
        assert not any("||" in line for line in lines[1:])
        plot.styles.width = 72  # room beside the title: the names
        await pilot.pause()
        assert plot.render_line(0).text.endswith("━ ||dL/dh_t||  ━ ||ΔW_hh(t)||")

    run_in_app(plot, check=check, size=(80, 12))


def test_where_one_legend_entry_fits_it_names_the_curve_added_last_not_the_one_drawn_under_it():
    """With a pinned loss (added first, drawn grey under the others) the legend kept "━ pin adding-rnn"
    and left out "━ train", the curve being watched."""
    plot = LinePlot(title="x" * 20, log_y=False)
    plot.set_series("pin x", np.arange(1, 41), np.r_[np.zeros(20), 8.0, np.zeros(19)])  # a spike: every row
    plot.set_series("train", np.arange(1, 41), np.r_[np.full(10, 8.0), np.zeros(30)])
    plot.styles.height = 4  # two rows of canvas, the lower one all curve: room for one entry

    async def check(pilot):
        lines = [line.text for line in lines_of(plot)][1:-1]
        assert [line for line in lines if "━ train" in line] and not any("━ pin x" in line for line in lines)

    run_in_app(plot, check=check, size=(22, 13))


def test_the_threshold_label_keeps_a_blank_from_curves_and_from_its_own_dashes():
    """It was glued to them: "⠉clip 5", "threshold 0.1⢀⢤⡔"."""
    plot = LinePlot(threshold=5.0, threshold_label="clip")
    plot.set_series("norm", None, np.linspace(0.0, 1.0, 30))

    async def check(pilot):
        labelled = [row.text for row in canvas_rows(plot) if "clip 5" in row.text]
        assert len(labelled) == 1 and is_clear(labelled[0], "clip 5")  # "⠉ ⠉  clip 5", not "⠉ ⠉clip 5"
        plot.threshold, plot.threshold_label = 1.0, "threshold"
        for ys in (np.r_[np.zeros(25), np.ones(5)], np.r_[np.ones(10), np.zeros(10), np.ones(10)]):
            plot.set_series("norm", None, ys)  # the curve meets the threshold line right of the label
            await pilot.pause()
            labelled = [row.text for row in canvas_rows(plot) if "threshold 1" in row.text]
            assert len(labelled) == 1 and is_clear(labelled[0], "threshold 1"), labelled

    run_in_app(plot, check=check, size=(WIDTH + 1, 12))  # a dash right before where the label ends up


def test_a_title_too_long_for_the_plot_is_cut_between_words_never_inside_a_number():
    """"clipped 114…" of 1140 read as another number."""
    plot = LinePlot(title="|g| 5.6  clipped 1140/4000")
    plot.set_series("|g|", np.arange(5), np.ones(5))

    async def check(pilot):
        assert plot.render_line(0).text.rstrip() == "|g| 5.6  clipped…"
        plot.title = "x" * 30  # one word: cut where it must be
        await pilot.pause()
        assert plot.render_line(0).text == "x" * 20 + "…"

    run_in_app(plot, check=check, size=(21, 12))


def test_a_plot_too_narrow_for_both_end_labels_keeps_the_first_whole():
    plot = LinePlot()
    plot.set_series("g", np.arange(16, 2000), np.ones(1984))

    async def check(pilot):
        axis = plot.render_line(plot.size.height - 1).text
        assert axis.split() == ["16"]  # not "161999"
        await pilot.resize_terminal(WIDTH, 12)
        await pilot.pause()
        assert plot.render_line(plot.size.height - 1).text.split() == ["16", "1999"]

    run_in_app(plot, check=check, size=(10, 12))


def test_an_x_range_fixes_the_axis_whatever_the_data_spans():
    plot = LinePlot(marker=4)
    plot.set_series("one point", [4.0], [0.5])
    plot.x_range = (1.0, 4.0)

    async def check(pilot):
        axis = plot.render_line(plot.size.height - 1).text
        assert axis.split()[0] == "1" and axis.rstrip().endswith("▲4")  # not 3.6 .. 4.4 around the point
        plot.set_series("beyond", [0.0, 9.0], [0.1, 0.9])  # drawn clipped to the range, not an IndexError
        await pilot.pause()
        assert all(line.cell_length == WIDTH for line in lines_of(plot))

    run_in_app(plot, check=check, size=(WIDTH, 12))


def test_downsampling_keeps_a_single_spike():
    xs = np.arange(10_000)
    ys = np.zeros(10_000)
    ys[5_003] = 100.0
    kept_x, kept_y = downsample_minmax(xs, ys, 50)
    assert len(kept_x) <= 100 and 100.0 in kept_y and np.all(np.diff(kept_x) > 0)
    assert downsample_minmax(xs[:80], ys[:80], 50)[0].size == 80  # short series untouched

    plot = LinePlot()
    plot.set_series("spiky", xs, ys)

    async def check(pilot):
        assert braille_cells(canvas_rows(plot)[0])  # the spike reaches the top row

    run_in_app(plot, check=check, size=(WIDTH, 12))


# --------------------------------------------------------------------------------- complex plane

def cells_coloured(widget, color) -> list[tuple[int, int]]:
    """(x, y) of the braille cells drawn in ``color``, y counted in content lines."""
    found = []
    for y, line in enumerate(lines_of(widget)):
        x = 0
        for segment in line:
            for char in segment.text:
                if segment.style.color == color and 0x2801 <= ord(char) <= 0x28FF:
                    found.append((x, y))
                x += 1
    return found


def test_points_inside_and_outside_the_unit_circle_land_on_the_right_side_of_it():
    plane = ComplexPlane(title="λ")
    plane.styles.height = 14
    inside = {"0.5": 0.5, "-0.7": -0.7, "0.5i": 0.5j}
    outside = {"1.5": 1.5, "1.5i": 1.5j}
    colours = dict(zip([*inside, *outside], ["#ff0000", "#00ff00", "#0000ff", "#ffff00", "#00ffff"]))

    async def check(pilot):
        circle_colour = plane.get_component_rich_style("complexplane--circle").color
        spots = {}
        for name, z in {**inside, **outside}.items():
            plane.clear()
            plane.set_points("keeper", [1.5])  # the same view (R = 1.1 * 1.5) for every point
            plane.set_points(name, [z], color=colours[name])
            await pilot.pause()
            drawn = cells_coloured(plane, plane._series[name][1].color)
            assert len(drawn) == 1, name  # one point, one cell
            x, y = spots[name] = drawn[0]
            circle = cells_coloured(plane, circle_colour)
            assert len(circle) > 20
            row = sorted(cx for cx, cy in circle if cy == y)
            column = sorted(cy for cx, cy in circle if cx == x)
            if name in inside:
                assert row[0] < x < row[-1] and column[0] < y < column[-1], name
            else:
                assert not row or x > row[-1] or x < row[0], name
                assert not column or y < column[0] or y > column[-1], name
        # the real axis runs through the middle: 0.5, 1.5 and -0.7 on one line, 0.5i above it
        assert spots["0.5"][1] == spots["1.5"][1] == spots["-0.7"][1]
        assert spots["-0.7"][0] < spots["0.5i"][0] < spots["0.5"][0] < spots["1.5"][0]
        assert spots["1.5i"][1] < spots["0.5i"][1] < spots["0.5"][1]
        assert "1.65" in plane.render_line(plane.size.height - 1).text  # R labels the real axis' ends

    run_in_app(plane, check=check, size=(WIDTH, 14))


def test_a_short_complex_planes_axis_labels_move_into_its_margins():
    """At 80x24 the ESN lab's plane is a few rows high, its square narrower than "-1.38" and "1.38":
    the right one was left out (a TUI walkthrough); they move out beside the square."""
    plane = ComplexPlane(title="λ")
    plane.styles.height = 5
    plane.styles.width = 30
    plane.set_points("eig", np.array([1.2 + 0.3j, -1.25 + 0j]))

    async def check(pilot):
        await pilot.pause()
        words = plane.render_line(plane.size.height - 1).text.split()
        assert words == ["-1.38", "1.38"]  # R = 1.1 * 1.25

    run_in_app(plane, check=check)


def test_complex_plane_keeps_the_unit_circle_in_view_and_handles_no_data():
    plane = ComplexPlane(title="eigenvalues")
    plane.styles.height = 12

    async def check(pilot):
        lines = lines_of(plane)
        assert any("no data" in line.text for line in lines) and lines[0].text.startswith("eigenvalues")
        assert all(line.cell_length == WIDTH for line in lines)
        circle_colour = plane.get_component_rich_style("complexplane--circle").color
        assert cells_coloured(plane, circle_colour)  # the circle is drawn even without points
        plane.set_points("λ", np.array([0.9 * np.exp(1j * a) for a in np.linspace(0, 6, 16)] + [np.nan]))
        await pilot.pause()
        assert "● λ" in plane.render_line(0).text and not any("no data" in line.text for line in lines_of(plane))
        assert plane.render_line(plane.size.height - 1).text.split() == ["-1.1", "1.1"]
        assert len(cells_coloured(plane, plane._series["λ"][1].color)) >= 8
        np.testing.assert_array_equal(plane.points("λ")[-1:], [complex(np.nan)])

    run_in_app(plane, check=check, size=(WIDTH, 12))


def test_a_complex_plane_names_only_series_with_a_point_to_draw():
    """A series of NaNs was named "● far" in the header over "no data"."""
    plane = ComplexPlane(title="λ")
    plane.styles.height = 8
    plane.set_points("far", [np.nan])

    async def check(pilot):
        lines = [line.text for line in lines_of(plane)]
        assert any("no data" in line for line in lines) and not any("far" in line for line in lines), lines
        plane.set_points("λ", [0.5])
        await pilot.pause()
        assert "● λ" in plane.render_line(0).text and "far" not in plane.render_line(0).text

    run_in_app(plane, check=check, size=(WIDTH, 8))


def test_a_complex_plane_title_too_long_for_its_legend_keeps_both_readable():
    """The title was drawn over the legend ("● 1−a" gone) and cut inside a number; a small plane's
    axis labels ran into each other ("-11.65")."""
    plane = ComplexPlane(title="leak 1−a l0: tau = 1/a 1.1..41.0 steps (median 5.0)")
    plane.styles.height = 12
    plane.set_points("1−a", [0.5, 0.9])

    async def check(pilot):
        lines = [line.text for line in lines_of(plane)]
        assert lines[0].rstrip() == "leak 1−a l0: tau = 1/a 1.1..41.0 steps…"
        assert sum("● 1−a" in line for line in lines[1:-1]) == 1
        assert all(is_clear(line, "● 1−a") for line in lines[1:-1] if "● 1−a" in line)
        plane.set_points("far", [1.5])  # R = 1.65
        plane.styles.height = 5  # a square of 6 cells: "-1.65" and "1.65" apart in the margins beside it
        await pilot.pause()
        assert plane.render_line(plane.size.height - 1).text.split() == ["-1.65", "1.65"]
        plane.styles.width = 9  # no margins: the one that fits
        await pilot.pause()
        assert plane.render_line(plane.size.height - 1).text.split() == ["-1.65"]

    run_in_app(plane, check=check, size=(WIDTH, 12))


def test_a_range_of_rounding_width_is_widened_as_a_single_value_is():
    """A constant series and its forecast, one ulp apart, were drawn at the plot's opposite edges."""
    from rnnlab.tui.widgets.plot import _expanded

    low, high = _expanded(1.0, 1.0 + 2.2e-16)
    assert low < 0.95 and high > 1.05
    assert _expanded(0.0, 1e-3) == (0.0, 1e-3) and _expanded(-2.0, 3.0) == (-2.0, 3.0)
    assert _expanded(0.0, 0.0) == (-0.5, 0.5)


def test_turning_the_legend_off_alone_redraws_the_plot():
    """show_legend=False left the cached frame, legend and all, until another attribute changed."""
    plot = LinePlot(title="t")

    async def check(pilot):
        plot.set_series("a", [0, 1, 2], [0, 1, 0])
        plot.set_series("b", [0, 1, 2], [1, 0, 1])
        await pilot.pause()
        assert any("━ a" in plot.render_line(y).text for y in range(plot.size.height))
        plot.show_legend = False
        await pilot.pause()
        assert not any("━" in plot.render_line(y).text for y in range(plot.size.height))

    run_in_app(plot, check=check, size=(60, 12))
