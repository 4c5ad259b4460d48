"""The echo state network lab's screen: the reservoir's states, its eigenvalues against the unit
circle, and the Mackey-Glass forecast one step ahead or free-running.

Panels (all drawn from :class:`~rnnlab.labs.esn.EsnLab`; the screen computes nothing itself):

- reservoir states x_t as a heatmap, units x time (as many units as fit, two per line; up/down
  pages through them), the time cursor marked, the view following it;
- the eigenvalues of W and of the leaky update's linearisation (1 - a) I + a W in the complex
  plane with the unit circle;
- the cursor's values (input, forecast, target, error, the state's size and saturation) and the
  options; in a short terminal (under 40 rows) two lines: the input, the forecast and its error;
- the series against the forecast (one-step or free run, the train/test boundary marked), the
  forecast's |error| on a log scale with the horizon threshold, and the last sweep's RMSE curve;
- a status line: RMSE, R^2, the free run's horizon, rho, a, the seed, the cursor, what is running.

Below the minimum size (:data:`rnnlab.tui.terminal.MIN_SIZE`) a message covers the panels, as in
the main lab.

Every refit runs in one exclusive worker (a newer request cancels an older one, and the engine
applies only the latest request), sweeps in the same group; errors of both are handled in
:meth:`EsnScreen.on_worker_state_changed` and shown on the status line. A worker's thread cannot be
interrupted: a cancelled sweep finishes the point it is on ("stopping sweep…"), so Esc stops only a
sweep (a refit always ends with its result shown), and a refit or sweep asked for meanwhile waits
for it and says so. Whatever happens to the workers, the screen ends up drawing ``lab.result`` and
applying ``lab.requested`` (:meth:`EsnScreen._tick`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from rich.cells import cell_len
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Static
from textual.worker import Worker, WorkerState, get_current_worker

from ...errors import UserError, counted
from ...errors import number_or_dash as _fmt
from ...labs._options import as_typed
from ...labs.esn import DEFAULTS, OPTION_HELP, EsnLab, format_r2, option_range, parse_option_text
from ..terminal import (HoldsKeysWhileTooSmall, PassKeysToDialog, RefitsAfterDialogs, error_text, first_fit,
                        fit_footer, fitted_footer, show_if_too_small, take_screenshot_and_say, warn_without_true_colour)
from ..screens import HelpScreen, PromptScreen, key_names, key_table
from ..widgets import ColorBar, ComplexPlane, Heatmap, LinePlot
from ..workers import run_until_cancelled
from . import QUIT_HELP, OptionsPrompt, fit_sub_title

TICK_HZ = 10          # how often a running sweep's curve is redrawn
CONTEXT = 100         # training steps shown before the forecast part in the series plot
BIG_STEP = 50         # shift+left/right: about one Mackey-Glass period (tau = 17)
TRUTH, FORECAST, FREE, EFFECTIVE, STALE = "#c8c8c8", "#ffaf5f", "#f06080", "#87d75f", "#6c6c6c"
SYMBOLS = {"spectral_radius": "ρ", "leak_rate": "a", "input_scaling": "input scaling",
           "connectivity": "connectivity", "ridge": "ridge"}
SWEEP_KEYS = {"spectral_radius": "w", "leak_rate": "W"}  # the keys that sweep each option


VALUE_WIDTH = 9  # the values panel's numbers: "0.91234", "+1.23e-03"; the two-line panel is laid out for it


def _fit(value: float, spec: str, width: int = VALUE_WIDTH) -> str:
    """``value`` in ``spec``, or in e-notation with as many digits as ``width`` holds: a free run
    that diverged reaches 1e233, which ``.5f`` writes in 240 digits ("-" where not finite)."""
    text = _fmt(value, spec)
    sign = "+" if spec.startswith("+") else ""
    for digits in (3, 2, 1, 0):
        if len(text) <= width:
            break
        text = format(value, f"{sign}.{digits}e")
    return text


def _packed(items: list[str], width: int | None, gap: str = "  ") -> str:
    """``items`` ("label value") joined by ``gap`` into lines of at most ``width`` cells (None: one
    line), broken only between items: a wrap at any space put "conn" and its 0.1 on two lines."""
    lines = [items[0]]
    for item in items[1:]:
        if width is not None and cell_len(lines[-1] + gap + item) > width:
            lines.append(item)
        else:
            lines[-1] += gap + item
    return "\n".join(lines)


def _of_steps(lab: EsnLab) -> str:
    """The one total every step count of the mode is stated against, so t never exceeds it: the
    series' length (the ``length`` option), t numbered 0 .. length - 1; where a long free run's
    columns reach past the series' end, their count and where the series ends: "of 898 (series
    t < 600)" (not "t 897 of 600")."""
    length, columns = len(lab.result.series), lab.columns
    return f"of {length}" if columns <= length else f"of {columns} (series t < {length})"


def _states_title(first: int, last: int, units: int, start: int, end: int, of_steps: str, width: int) -> str:
    """The heatmap's title in ``width`` columns (0: not laid out yet, the longest): shorter words
    first, then fewer parts, never a number cut short ("units 0-7 of 10" of 100 units reads as 10)."""
    shown, word = (f"{first}-{last}", "units") if last > first else (f"{first}", "unit")  # one unit: "unit 0"
    titles = (f"reservoir states x_t: {word} {shown} of {units}, t {start}-{end} {of_steps}",
              f"x_t: {word} {shown} of {units}, t {start}-{end} {of_steps}",
              f"x_t {word} {shown}/{units}, t {start}-{end}",
              f"x_t: {word} {shown} of {units}",
              f"x_t {shown}/{units}", "x_t", "")
    return first_fit(titles, width or None)


def _time_legend(lab: EsnLab, width: int | None = None) -> str:
    """Which t each part covers and what it forecasts (x_t forecasts s(t+1)): the one-step test and
    the free run both start at x_n (after the true s(n), the last training target), forecasting s(n+1).
    In ``width`` columns (None: the longest) shorter forms drop the forecast values, then the
    training part, never cutting a number; the last form is cut with "…" by the legend's style."""
    n, last, length = lab.n_train, lab.columns - 1, len(lab.result.series)
    part, forecast_end = ("free", n + lab.result.generation.steps) if lab.mode == "generative" else ("test", length - 1)
    forms = (f"train t < {n} · {part} t {n}-{last} → s({n + 1})..s({forecast_end})",
             f"train t < {n} · {part} t {n}-{last}", f"{part} t {n}-{last}", f"{part} t ≥ {n}")
    return first_fit(forms, width, fallback=forms[-1])


def _active(worker: Worker | None) -> bool:
    """Whether a worker is still to do its work: started or about to start, and not cancelled."""
    return (worker is not None and not worker.is_cancelled
            and worker.state in (WorkerState.PENDING, WorkerState.RUNNING))


#: The sweep chart draws a free run's RMSE up to this (one that diverged reaches 1e50), and says so
FREE_RUN_CAP = 1e3
#: The sweep chart's curves, as its legend names them: in full, else short where the full names leave no room.
SWEEP_CURVES = ("one-step", "free run")
SHORT_SWEEP_CURVES = ("1-step", "free")


def _sweep_header(width: int, symbol: str, capped: bool) -> tuple[tuple[str, str], str, tuple[str, ...]]:
    """The current sweep chart's curve names, title and shorter titles in ``width`` columns (0: not laid
    out yet, the longest): the longest title beside which the legend naming both curves fits, their short
    names where only those do, down to "RMSE", then no title (at 60x20 the names say more: the panel beside
    says "RMSE" with the best value). The chart's legend that did not fit there went into its canvas, where
    the curves left no room at 80x24 (neither was named) or only a pocket between them."""
    cap = f"≤{FREE_RUN_CAP:g}"  # the free run's top: a flat line there read as an error of a thousand
    titles = ((f"RMSE vs {symbol}, free run cut at {FREE_RUN_CAP:g}", f"RMSE vs {symbol} {cap}", f"RMSE {cap}")
              if capped else (f"RMSE vs {symbol}",))
    for title in (*titles, "RMSE", ""):
        for names in (SWEEP_CURVES, SHORT_SWEEP_CURVES):
            if not width or len(title) + 2 + len("  ".join(f"━ {name}" for name in names)) <= width:
                return names, title, ()
    return SWEEP_CURVES, titles[0], (*titles[1:], "RMSE")  # no room even so: the plot places what it can

class EsnHelp(HelpScreen):
    """The key list, styled by this lab's stylesheet (it may run without the main lab's), in two
    columns (a long description wraps under itself, not under the keys), then what an echo state
    network is and what to try: the seq2seq and treebank labs' helps explain their architecture, and
    this one listed keys alone, the reservoir's idea (only the readout is fit) said nowhere on screen."""

    ABOUT = (  # the formulas on lines of their own, whole at 60 columns: as prose, "(1-a)" ended a line
        "An echo state network trains only its readout:\n"
        "x_t = (1-a)x_{t-1} + a·tanh(Wx_{t-1} + W_in u_t + b)\n"  # 52 columns: the help's width at 60
        "y_t = W_out [x_t; u_t] + b_out\n"  # the bias too: an export's readout.bias is b_out
        "The reservoir x_t is drawn at random once (n draws another) and never trained; the readout W_out, "
        "b_out (of x_t alone where readout_input=false) is fit by ridge regression, in closed form, so that y_t "
        "forecasts s(t+1): every change refits in a moment.\n\n"
        "W is scaled so that its largest |eigenvalue| is the spectral radius ρ: how long an input "
        "echoes. Each step keeps 1-a of the old state (a: the leak rate); the leaky update's eigenvalues "
        "(1-a) + aλ, against the unit circle, show the memory left. Too small a ρ forgets fast; "
        "too large a one makes the reservoir run on its own (chaos) rather than echo the input: "
        "w sweeps ρ, W sweeps a, each plotting the RMSE of every refit; B then refits at the value "
        "with the lowest one-step RMSE.\n\n"
        "One-step: every input is the true s(t). Free run (f): from the end of training the network "
        "is fed its own forecasts and its errors compound; the horizon counts the steps before "
        "|error| first exceeds the threshold."
    )

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static("[b]esn lab: keys[/b]\n", markup=True)
            yield Static(key_table(self._keys))
            yield Static("\n" + self.ABOUT, classes="dim")
            yield Static("\nClick a heatmap column to move the time cursor there. Esc closes this.", classes="dim")


class EsnPrompt(PromptScreen):
    """One line of input (a file name), styled by this lab's stylesheet."""


class EsnOptionsPrompt(OptionsPrompt):
    """``name=value`` pairs for any option, with the options' current values and what each is listed
    above (:class:`~rnnlab.tui.labs.OptionsPrompt`, styled by this lab's stylesheet). The field is
    pre-filled with every option as it stands, as the other labs' dialogs are: a change is an edit
    of one value, not the whole text typed anew."""

    def __init__(self, lab: EsnLab, accept) -> None:
        options = {name: as_typed(value) for name, value in vars(lab.requested).items()}
        super().__init__("Options: name=value ... (a change refits the reservoir)",
                         [(name, options[name], f"{option_range(name) or 'true, false'}  {OPTION_HELP[name]}")
                          for name in DEFAULTS],  # the values each takes, as the other labs' dialogs list them
                         " ".join(f"{name}={options[name]}" for name in DEFAULTS), accept,
                         placeholder="e.g. units=200 ridge=1e-6 readout_input=no")


class EsnScreen(HoldsKeysWhileTooSmall, PassKeysToDialog, RefitsAfterDialogs, Screen[None]):
    """The echo state network lab; its constructor takes the engine (:class:`EsnLab`)."""

    CSS_PATH = "esn.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (130, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-tiny"), (24, "-short"), (40, "-tall")]  # -tiny: -short's rules and its own

    BINDINGS = [
        # the time keys as in the main lab and the other labs: ←/→ or h/l, home/end or g/G
        Binding("left,h", "cursor(-1)", "t-1", show=False, tooltip="time cursor one step back"),
        Binding("right,l", "cursor(1)", "t+1", show=False, tooltip="time cursor one step forward"),
        Binding("shift+left,comma", f"cursor(-{BIG_STEP})", f"t-{BIG_STEP}", show=False,
                tooltip=f"time cursor {BIG_STEP} steps back (about one period)"),
        Binding("shift+right,full_stop", f"cursor({BIG_STEP})", f"t+{BIG_STEP}", show=False,
                tooltip=f"time cursor {BIG_STEP} steps forward"),
        Binding("home,g", "jump('start')", "t = 0", show=False, tooltip="time cursor to t = 0"),
        Binding("end,G", "jump('end')", "last t", show=False, tooltip="time cursor to the last step"),
        Binding("b", "jump('boundary')", "forecast start", show=False,
                tooltip="time cursor to the first forecast step (train/test boundary)"),
        Binding("up", "units(-1)", "previous units", show=False, tooltip="heatmap: previous units"),
        Binding("down", "units(1)", "next units", show=False, tooltip="heatmap: next units"),
        Binding("r", "nudge('spectral_radius', -1)", "ρ-", tooltip="spectral radius ρ - 0.1, refit"),
        Binding("R", "nudge('spectral_radius', 1)", "ρ+", tooltip="spectral radius ρ + 0.1, refit"),
        Binding("a", "nudge('leak_rate', -1)", "a-", tooltip="leak rate a - 0.05, refit"),
        Binding("A", "nudge('leak_rate', 1)", "a+", tooltip="leak rate a + 0.05, refit"),
        Binding("n", "new_seed", "new seed", tooltip="draw another reservoir (next seed), refit"),
        # the footer's descriptions are short and export is left to the help: every shown key fits 80 columns
        Binding("f", "toggle_mode", "1-step/free",
                tooltip="toggle one-step forecast / free run (outputs fed back)"),
        Binding("w", "sweep('spectral_radius')", "sweep ρ",
                tooltip="sweep ρ 0.1..2.0: RMSE of each refit (w again stops)"),
        Binding("W", "sweep('leak_rate')", "sweep a", show=False, tooltip="sweep a 0.05..1.0 (W again stops)"),
        Binding("escape", "stop", "stop sweep", show=False,
                tooltip="stop a running or waiting sweep (a refit always runs to its end)"),
        Binding("e", "edit", "options", tooltip="set any option (units, ridge, seed, series length, ...)"),
        # after e: the footer leaves it out first where there is no room (80 columns); the sweep's line
        # and the notice of a finished sweep name it there
        Binding("B", "use_best", "use best", tooltip="set the swept option to the last sweep's best value, refit"),
        Binding("x", "export", "export", show=False, tooltip="export every recorded array to .npz"),
        Binding("p", "screenshot", "screenshot", show=False, tooltip="save an SVG screenshot"),
        Binding("question_mark,f1", "help", "help", tooltip="this help"),
    ]

    def __init__(self, lab: EsnLab) -> None:
        super().__init__()
        self.lab = lab
        self.unit_offset = 0
        self.message: Text | None = None  # an error (or notice) shown on the status line
        self._drawn_key: tuple | None = None  # what the heatmap holds: (result, mode, units, time window)
        self._window_start = 0  # the time step of the heatmap's first column
        self._sweep_worker: Worker | None = None  # the last sweep's; cancelled while its sweep runs: stopping
        self._sweep_name = ""  # the option _sweep_worker sweeps
        self._queued_sweep: str | None = None  # w/W while a sweep is stopping: started once it has stopped
        # refits still to run, or failed with the error not handled yet: a worker's state turns ERROR
        # before its message arrives, and a queued sweep started in between ran on the failed options
        self._refits_unsettled: set[Worker] = set()
        self._sweep_drawn: tuple | None = None  # the sweep's state the panels show (_sweep_state)
        self._result_drawn = None  # the lab.result every panel shows (refresh_views); held, so its id is not reused

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="esn-top"):
            with Vertical(id="esn-states"):
                yield Heatmap(colormap="diverging", vmin=-1.0, vmax=1.0, title="reservoir states x_t", id="esn-heatmap")
                with Horizontal(id="esn-legend"):
                    yield ColorBar("diverging", -1.0, 1.0, id="esn-colorbar")
                    yield Static(id="esn-legend-text")
            with Vertical(id="esn-side"):
                yield ComplexPlane(title="eigenvalues", id="esn-eigen")
                yield Static(id="esn-info")
                yield Static(id="esn-sweep-info")
        with Horizontal(id="esn-plots"):
            yield LinePlot(id="esn-series")
            yield LinePlot(log_y=True, threshold_label="threshold", id="esn-error")
            yield LinePlot(log_y=True, id="esn-sweep")
        yield Static(id="esn-status")
        yield Static(id="too-small")  # styled by lab.tcss (the labs' host app's), as the main lab's
        yield fitted_footer(self.app)

    def on_mount(self) -> None:
        self.title = "rnnlab"
        self._fit_sub_title(self.size.width)
        self.set_interval(1 / TICK_HZ, self._tick)
        self.refresh_views()
        warn_without_true_colour(self.app, "the reservoir's heatmap needs")

    def on_resize(self, event: events.Resize) -> None:
        show_if_too_small(self, *event.size)
        fit_footer(self, event.size.width)
        self._fit_sub_title(event.size.width)
        # every panel: the titles fit the new widths, and a change of the breakpoints' classes
        # switches the values panel between its full and its two-line form
        self.call_after_refresh(self.refresh_views)

    def _fit_sub_title(self, width: int) -> None:
        fit_sub_title(self, width, "esn: echo state network on Mackey-Glass", "esn: echo state network", "esn")

    # ------------------------------------------------------------------ drawing
    def refresh_views(self) -> None:
        """Redraw every panel from the lab."""
        self._result_drawn = self.lab.result  # read first: a result stored while drawing is redrawn by _tick
        self.draw_eigenvalues()
        self.draw_plots()
        self.draw_sweep()
        self.draw_cursor()  # and the states

    def _unit_rows(self) -> int:
        """Units the heatmap shows: two per line of its height (less the title and cursor lines)."""
        height = self.query_one("#esn-heatmap", Heatmap).size.height
        return max(2, 2 * (height - 2))

    def draw_states(self) -> None:
        """The heatmap: the units that fit, from ``unit_offset``, over a window of time steps
        centred on the cursor (as many as the widget is wide)."""
        lab = self.lab
        result, mode = lab.result, lab.mode
        view = lab.view()
        N, columns, cursor = result.options.units, view.columns, lab.cursor
        rows = min(N, self._unit_rows())
        self.unit_offset = max(0, min(self.unit_offset, N - rows))
        first = self.unit_offset
        heatmap = self.query_one("#esn-heatmap", Heatmap)
        width = min(columns, max(1, heatmap.size.width))
        start = max(0, min(cursor - width // 2, columns - width))
        self._window_start = start
        key = (id(result), mode, first, rows, start, width)
        if key != self._drawn_key:
            self._drawn_key = key
            heatmap.set_data(view.states[start:start + width, first:first + rows].T)
            heatmap.first_step = start
        end = start + width - 1
        heatmap.title = _states_title(first, first + rows - 1, N, start, end, _of_steps(lab), heatmap.size.width)
        heatmap.cursor = cursor - start
        legend = self.query_one("#esn-legend-text", Static)
        width = legend.content_region.width or None
        text = f" {_time_legend(lab)}"
        keys = f"{text}  ↑/↓ units  ←/→ time"
        legend.update(first_fit([keys], width, fallback=f" {_time_legend(lab, width and width - 1)}"))

    def draw_eigenvalues(self) -> None:
        r = self.lab.result
        plane = self.query_one("#esn-eigen", ComplexPlane)
        plane.set_points("W", r.eigenvalues, color=FREE)
        plane.set_points("(1-a)I+aW", r.effective_eigenvalues, color=EFFECTIVE)
        rho, leaky = np.abs(r.eigenvalues).max(), np.abs(r.effective_eigenvalues).max()
        wide = plane.size.width >= 44 or plane.size.width == 0
        plane.title = f"eig: ρ {rho:.3g}, leaky {leaky:.3g}" if wide else f"eig ρ {rho:.3g}, {leaky:.3g}"

    def draw_plots(self) -> None:
        lab = self.lab
        r, mode, n = lab.result, lab.mode, lab.n_train
        s = r.series
        generative = mode == "generative"
        # x is the time of the value forecast, s(t+1) for x_t: both modes' forecasts start at n + 1
        end = n + 1 + r.generation.steps if generative else len(s)
        low = max(0, n - CONTEXT)
        truth = s[low:min(end, len(s))]
        band = (float(truth.min()), float(truth.max()))
        span = band[1] - band[0] or 1.0
        past_the_series = generative and end > len(s)
        if generative:
            xs, ys = np.arange(n + 1, n + 1 + r.generation.steps), r.generated
            if past_the_series:  # drawn to the series' end: beyond it the truth would fill a sliver of the plot
                xs, ys = xs[xs < len(s)], ys[xs < len(s)]
        else:
            xs, ys = np.arange(n + 1, len(s)), r.onestep[n:]
        with np.errstate(invalid="ignore"):  # a diverged free run: drawn along the plot's edge
            ys = np.clip(ys, band[0] - span, band[1] + span)
        plot = self.query_one("#esn-series", LinePlot)
        plot.clear()
        plot.set_series("s(t)", np.arange(low, low + len(truth)), truth, color=TRUTH)
        plot.set_series("free run" if generative else "one-step", xs, ys, color=FREE if generative else FORECAST)
        plot.marker = n
        plot.title = "Mackey-Glass: free run" if generative else "Mackey-Glass: one-step forecast"
        if past_the_series:
            plot.title = first_fit([f"{plot.title} (to the series' end, t {len(s) - 1}; it runs to {end - 1})",
                                    f"free run to t {len(s) - 1} of {end - 1}"], plot.content_size.width or None,
                                   plot.title)

        times, errors = r.forecast_errors(mode)
        with np.errstate(invalid="ignore"):
            errors = np.clip(errors, 1e-9, 1e3)
        error_plot = self.query_one("#esn-error", LinePlot)
        error_plot.clear()
        error_plot.set_series("free run" if generative else "one-step", times, errors,
                              color=FREE if generative else FORECAST)
        error_plot.threshold = r.options.threshold
        g = r.generation
        error_plot.marker = n + 1 + g.horizon if generative and g.exceeded else None  # the first step over
        error_plot.title = "|error|, horizon ▲" if generative else "|error|"

    def draw_sweep(self) -> None:
        """The last sweep's curves and its line (best value) under the values panel; a sweep made
        with other options than the current ones (but the swept one) is greyed and titled stale."""
        lab = self.lab
        sweep = lab.sweep_result
        plot = self.query_one("#esn-sweep", LinePlot)
        self._sweep_drawn = self._sweep_state()
        self.set_class(sweep is not None, "-swept")
        info = self.query_one("#esn-sweep-info", Static)
        items = self._sweep_items()
        line, width = " ".join(items), info.content_region.width or None
        # on one line where it fits without its first word (35 columns), else broken between items
        # (a wrap at any space put "RMSE" and its value on two lines); first with the key that sets the
        # model to the best value, at 35 columns without the count of a completed sweep ("20/20")
        hinted = " ".join(self._sweep_items(hint=True))
        forms = [line, line.removeprefix("sweep ")]
        if hinted != line:
            forms[:0] = [hinted, hinted.removeprefix("sweep "),
                         " ".join(self._sweep_items(hint=True, count=False)).removeprefix("sweep ")]
        info.update(first_fit(forms, width, _packed(items, width, " ")))
        if sweep is None:
            plot.title = "sweep: w ρ, W a"
            return
        k = sweep.done
        # the whole grid from the first point on: the curve grows left to right, and the axis'
        # end labels are the grid's short values ("0.05", "1"), not one point's margins
        plot.x_range = (float(sweep.values.min()), float(sweep.values.max()))
        current = lab.sweep_is_current()
        with np.errstate(invalid="ignore"):
            capped = bool(np.any(sweep.generation_rmse[:k] > FREE_RUN_CAP))  # a free run that blew up (1e50)
        symbol = SYMBOLS[sweep.name]
        # the legend beside the title, naming both curves (a stale sweep has none: its title says so)
        names, title, short = _sweep_header(plot.size.width, symbol, capped) if current else (SWEEP_CURVES, "", ())
        if plot.series_names != list(names):
            plot.clear()
        with np.errstate(invalid="ignore"):
            plot.set_series(names[0], sweep.values[:k], sweep.rmse[:k], color=FORECAST if current else STALE)
            plot.set_series(names[1], sweep.values[:k], np.clip(sweep.generation_rmse[:k], 0, FREE_RUN_CAP),
                            color=FREE if current else STALE)
        plot.marker = getattr(lab.options, sweep.name)
        plot.show_legend = current  # a stale sweep's curves are both grey: a legend could not tell them apart
        if current:
            plot.title, plot.short_titles = title, short
            return
        redo = f" ({SWEEP_KEYS[sweep.name]} redoes)" if sweep.name in SWEEP_KEYS else ""
        cap = f", free run cut at {FREE_RUN_CAP:g}" if capped else ""  # its line flat at the top said nothing
        plot.title = f"RMSE vs {symbol}: stale{redo}{cap}"
        plot.short_titles = (f"RMSE vs {symbol}{f' ≤{FREE_RUN_CAP:g}' if capped else ''} stale",)

    def _sweep_items(self, hint: bool = False, count: bool = True) -> list[str]:
        """The last sweep in words, ["sweep a 20/20 (stale):", "best 1,", "RMSE 0.00587"]: its state,
        its best value, whether the options moved since; with ``hint``, "best 1 (B)," where B would
        set the model to it (the sweep over and current, the model at another value); without
        ``count``, a completed sweep without its "20/20"."""
        lab = self.lab
        sweep = lab.sweep_result
        if sweep is None:
            return [""]
        best = sweep.best()
        status = "stopping" if self._sweep_stopping() else sweep.status
        state = "" if status == "completed" else f" {status}"
        stale = "" if lab.sweep_is_current() else " (stale)"  # made with other options
        done = f" {sweep.done}/{len(sweep.values)}" if count or status != "completed" else ""
        line = f"sweep {SYMBOLS[sweep.name]}{state}{done}{stale}"
        if best is None:
            return [line]
        usable = (hint and status != "running" and lab.sweep_is_current() and not _active(self._sweep_worker)
                  and best != getattr(lab.options, sweep.name))
        return [f"{line}:", f"best {best:g}{' (B)' if usable else ''},", f"RMSE {self._best_rmse():.3g}"]

    def _sweep_stopping(self) -> bool:
        """Whether the running sweep was told to stop: its worker is cancelled at once, but its
        thread cannot be interrupted and finishes the point it is on before the sweep stops."""
        sweep, worker = self.lab.sweep_result, self._sweep_worker
        return sweep is not None and sweep.status == "running" and worker is not None and worker.is_cancelled

    def _sweep_state(self) -> tuple:
        """What the sweep's panels show: redrawn whenever it changes (:meth:`_tick`; a new
        ``lab.result``, which may make the sweep stale, redraws every panel there)."""
        sweep = self.lab.sweep_result
        if sweep is None:
            return (None,)
        return id(sweep), sweep.done, sweep.status, self._sweep_stopping()

    def draw_cursor(self) -> None:
        """The heatmap's cursor, the values panel and the status line."""
        self.draw_states()
        self.query_one("#esn-info", Static).update(self._values_text())
        self.update_status()

    def _values_text(self) -> Text:
        """The values panel: the cursor's values and the options; under 40 rows two lines, the
        cursor's input, forecast and error (the status line has the scores and the main options)."""
        lab = self.lab
        v = lab.cursor_values()
        o = lab.options
        info = Text()
        if self.has_class("-short") or self.has_class("-tiny"):
            info.append(f"t {v['t']}", style="bold").append(f" {v['part']}", style="dim")
            u, forecast, error = _fit(v["input"], ".5f"), _fit(v["forecast"], ".5f"), _fit(v["error"], "+.2e")
            if self.has_class("-wide"):  # 53 columns
                info.append(f"   u_t {u}   s(t+1) {_fit(v['target'], '.5f')}\n")
                info.append(f"forecast of s(t+1) {forecast}   error {error}")
            else:  # 35 columns: "forecast " and "  error " leave two numbers of VALUE_WIDTH
                info.append(f"   u_t {u}\nforecast {forecast}  error {error}")
            return info
        info.append(f"t {v['t']}", style="bold").append(f"  {v['part']}\n", style="dim")
        u, forecast, target, error = (_fit(v[k], spec) for k, spec in
                                      (("input", ".5f"), ("forecast", ".5f"), ("target", ".5f"), ("error", "+.2e")))
        if self.has_class("-narrow"):  # 35 columns: no label wrapped away from its number
            info.append(f"u_t {u}   s(t+1) {target}\nforecast {forecast}  error {error}\n")
        else:
            info.append(f"u_t {u}   forecast of s(t+1) {forecast}\ns(t+1) {target}   error {error}\n")
        width = self.query_one("#esn-info", Static).content_region.width or None
        info.append(_packed([f"‖x_t‖ {v['norm']:.3g}", f"mean |x| {v['mean_abs']:.3f}",
                             f"saturated {100 * v['saturated']:.0f}%"], width, gap="   ") + "\n")
        options = (
            [f"N {o.units}", f"ρ {o.spectral_radius:g}", f"a {o.leak_rate:g}", f"input ×{o.input_scaling:g}",
             f"conn {o.connectivity:g}"],
            [f"ridge {o.ridge:g}", f"readout {'[x; u]' if o.readout_input else 'x'}", f"seed {o.seed}", f"τ {o.tau}"],
            [f"train {lab.n_train} (warm-up {o.warmup})", f"test {o.test}", f"free run {o.generate}"])
        info.append("\n".join(_packed(group, width) for group in options), style="dim")
        return info

    def update_status(self) -> None:
        """The status line: the first of its forms (longest first) that fits with the cursor on any
        column, each dropping or shortening one part (the help first: the footer has it); the message and
        what runs stay in every form, and a line that still does not fit ends in "…", never cut mid-word
        unmarked."""
        self.query_one("#esn-status", Static).update(self._status_line())

    def _status_line(self) -> Text:
        lab = self.lab
        r = lab.result
        g = r.generation
        o = r.options
        lead = Text()
        if self.message is not None:
            lead.append_text(self.message).append("  ")
        busy = self._busy_text()
        if busy:  # first: what runs is what a user waits on
            lead.append(busy, style="bold yellow").append(" │ ")
        if lab.mode == "generative":  # the free run's own measures, as `rnnlab esn` reports them
            held = counted(g.horizon, "step") if g.exceeded else f"all {g.compared}"
            rmse = _fmt(g.scores.rmse, '.3g')
            scores = [("[free run]", f"RMSE {rmse} ({counted(g.compared, 'step')})  within {g.threshold:g} for {held}"),
                      ("[free run]", f"RMSE {rmse}  within {g.threshold:g}: {held}")]
        else:
            rmse, horizon = _fmt(r.onestep_scores.rmse, '.3g'), f"{g.horizon}{'' if g.exceeded else '+'}"
            scores = [("[one-step]", f"RMSE {rmse}  R² {format_r2(r.onestep_scores.r2, 6)} │ "
                                     f"horizon {horizon} (<{g.threshold:g})"),
                      ("[one-step]", f"RMSE {rmse}  R² {format_r2(r.onestep_scores.r2, 4)} │ horizon {horizon}")]
        rho_a = f"ρ {o.spectral_radius:g}  a {o.leak_rate:g}"
        options = [f"{rho_a}  seed {o.seed}", rho_a]
        of = _of_steps(lab)
        cursor = [f"t {lab.cursor} {of}", f"t {lab.cursor} {of.split(' (')[0]}", f"t {lab.cursor}"]
        helps = ["? help", ""]
        at = {"help": 0, "cursor": 0, "options": 0, "scores": 0}
        steps = ("help", "cursor", "options", "scores", "cursor")  # what goes first
        width = self.query_one("#esn-status", Static).content_size.width
        # each form is measured with the mode's last t, so moving the cursor never changes the form: "t 0 of 2000"
        # at the first column read "t 1998" at the last, its total left out for three digits more
        widest = len(str(lab.columns - 1)) - len(str(lab.cursor))
        parts = {"help": helps, "cursor": cursor, "options": options, "scores": scores}
        for step in (None, *steps):
            if step is not None:
                at[step] = min(at[step] + 1, len(parts[step]) - 1)
            line = lead.copy()
            mode, figures = scores[at["scores"]]
            line.append(f"{mode} ", style="bold").append(f"{figures} │ {options[at['options']]} │ ")
            line.append(cursor[at["cursor"]])
            if helps[at["help"]]:
                line.append(f"  │ {helps[at['help']]}", style="dim")
            if not width or line.cell_len + widest <= width:
                return line
        line.no_wrap, line.overflow = True, "ellipsis"
        line.truncate(width, overflow="ellipsis")
        return line

    def _busy_text(self) -> str:
        """What runs, and what waits for a stopping sweep: "stopping sweep…, then fitting"."""
        sweep = self.lab.sweep_result
        fitting = self._fitting()
        if self._sweep_stopping():  # after the point it is on
            then = (["fitting"] if fitting else []) + ([f"sweeping {SYMBOLS[self._queued_sweep]}"]
                                                       if self._queued_sweep else [])
            return f"stopping sweep…, then {' and '.join(then)}" if then else "stopping sweep…"
        if _active(self._sweep_worker):
            if sweep is not None and sweep.status == "running":
                return f"sweeping {SYMBOLS[sweep.name]} {sweep.done}/{len(sweep.values)} (esc stops)"
            # its first step applies a change requested before it
            symbol = SYMBOLS[self._sweep_name]
            return f"fitting…, then sweeping {symbol}" if self.lab.pending else f"sweeping {symbol}…"
        if fitting and self._queued_sweep:
            return f"fitting…, then sweeping {SYMBOLS[self._queued_sweep]}"
        return "fitting…" if fitting else ""

    def _fitting(self) -> bool:
        """Whether a refit (an "esn" worker other than the sweep's) is still to finish."""
        return any(_active(w) for w in self.workers if w.group == "esn" and w is not self._sweep_worker)

    def _tick(self) -> None:
        """Keep the screen on the lab, whatever the workers did: a cancelled worker's thread runs on,
        so its CANCELLED redraw may come before the result it stores, or before its sweep's status
        turns "stopped". Redraw everything when ``lab.result`` is not the one drawn, the sweep
        when a point arrived or its status changed; start a sweep queued behind a stopping one once
        it has stopped; and apply a requested change that no worker will (its worker cancelled
        before it ran)."""
        lab = self.lab
        self._refits_unsettled = {w for w in self._refits_unsettled if _active(w) or w.state == WorkerState.ERROR}
        if (self._queued_sweep is not None and not self._sweep_stopping() and not self._fitting()
                and not self._refits_unsettled):
            # not before a refit ends: the group is exclusive, so starting the sweep would cancel
            # the refit, and with it the error a bad option gives
            name, self._queued_sweep = self._queued_sweep, None
            self._start_sweep(name)
        elif lab.pending and not any(_active(w) for w in self.workers if w.group == "esn"):
            self._refit()
        if lab.result is not self._result_drawn:
            self.refresh_views()
        elif self._sweep_state() != self._sweep_drawn:
            self.draw_sweep()
            self.update_status()

    # ------------------------------------------------------------------ workers
    def _refit(self) -> None:
        """Apply the requested options in a worker (:meth:`_apply`), unsettled until its end is handled."""
        self._refits_unsettled.add(self._apply())

    # Both run their computation where a quit does not wait for it (run_until_cancelled); a
    # cancelled worker's computation goes on to its end, as an uninterruptible refit always did.
    @work(thread=True, exclusive=True, group="esn", exit_on_error=False)
    def _apply(self) -> None:
        worker = get_current_worker()
        run_until_cancelled(lambda: self.lab.apply(should_stop=lambda: worker.is_cancelled), worker)

    @work(thread=True, exclusive=True, group="esn", exit_on_error=False)
    def _sweep(self, name: str) -> None:
        worker = get_current_worker()

        def sweep() -> None:
            # a change requested just before: this worker cancelled the refit's, so it applies it even
            # when the sweep is stopped (by Esc, or by a newer request, which the lab then applies too)
            self.lab.apply()
            if not worker.is_cancelled:  # else the last sweep stays, not an empty stopped one
                self.lab.sweep(name, should_stop=lambda: worker.is_cancelled)

        run_until_cancelled(sweep, worker)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Every worker's end lands here: redraw; an error goes to the status line, inline."""
        if event.worker.group != "esn":
            return
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            text = error_text(error)
            dropped = f" (the sweep of {SYMBOLS[self._queued_sweep]} waiting for it is dropped)" \
                if self._queued_sweep else ""
            self._queued_sweep = None  # it would sweep from the options that just failed
            self.message = Text(f"error: {' '.join(text.split())}{dropped}", style="bold red")
            # whole in a notice too, as the other labs' worker errors: the status line may end it in "…"
            self.notify(self.message.plain, severity="error", timeout=10)
        if event.state == WorkerState.SUCCESS and event.worker is self._sweep_worker:
            self._say_the_sweeps_best()
        if event.state in (WorkerState.SUCCESS, WorkerState.CANCELLED, WorkerState.ERROR):
            self._refits_unsettled.discard(event.worker)  # (its error, if any, is handled above)
            self.refresh_views()
        else:
            self.update_status()

    def _say_the_sweeps_best(self) -> None:
        """A sweep completed: say its best value and the key that uses it, where the model is at another
        (at 80 columns the footer has no room for B, and the sweep's line none for its "(B)")."""
        lab, sweep = self.lab, self.lab.sweep_result
        best = None if sweep is None or sweep.status != "completed" else sweep.best()
        if best is None or not lab.sweep_is_current() or best == getattr(lab.options, sweep.name):
            return
        symbol = SYMBOLS[sweep.name]
        self.notify(f"sweep of {symbol} done: best {symbol} {best:g} (RMSE {self._best_rmse():.3g}); B uses it",
                    timeout=5)

    def _request(self, change) -> None:
        """Record a change (instantly; a bad one is shown and nothing changes), refit in the worker."""
        try:
            change()
        except UserError as exc:
            self.message = Text(f"error: {exc}", style="bold red")
            self.update_status()
            return
        self.message = None
        self._refit()
        self.update_status()

    # ------------------------------------------------------------------ actions: time and units
    def action_cursor(self, delta: int) -> None:
        self.lab.move_cursor(delta)
        self.draw_cursor()

    def action_jump(self, where: str) -> None:
        {"start": self.lab.jump_start, "end": self.lab.jump_end, "boundary": self.lab.jump_boundary}[where]()
        self.draw_cursor()

    @on(Heatmap.ColumnClicked, "#esn-heatmap")
    def column_clicked(self, event: Heatmap.ColumnClicked) -> None:
        self.lab.move_to(self._window_start + event.column)
        self.draw_cursor()

    def action_units(self, direction: int) -> None:
        rows = min(self.lab.options.units, self._unit_rows())
        self.unit_offset += direction * max(1, rows // 2)
        self.draw_states()

    def action_toggle_mode(self) -> None:
        self.lab.toggle_mode()
        self.draw_plots()
        self.draw_cursor()

    # ------------------------------------------------------------------ actions: the model
    def action_nudge(self, name: str, direction: int) -> None:
        before = getattr(self.lab.requested, name)
        self._request(lambda: self.lab.nudge(name, direction, apply=False))
        if getattr(self.lab.requested, name) == before:  # at the end of its range: say so, not nothing
            edge = "largest" if direction > 0 else "smallest"
            self.notify(f"{SYMBOLS.get(name, name)} is at its {edge} value for this key, {before:g}",
                        timeout=2)

    def action_new_seed(self) -> None:
        before = self.lab.requested.seed
        self._request(lambda: self.lab.new_seed(apply=False))
        # said: the status line keeps the seed only where it is wide, and at 80 columns n changed the
        # scores with no word of which reservoir they were (`rnnlab esn --seed N` draws it again)
        if self.lab.requested.seed != before:
            self.notify(f"seed {self.lab.requested.seed} (was {before}): another reservoir", timeout=3)

    def action_sweep(self, name: str) -> None:
        """Start a sweep of ``name``; w or W again stops it, or drops it while it waits; the other
        key during a sweep stops it and sweeps its option next. While a sweep is stopping (its thread
        finishes its point) or a refit runs, the new one waits for it (:meth:`_tick` starts it)."""
        if _active(self._sweep_worker) and self._sweep_name != name and self._queued_sweep is None:
            self.action_stop()  # the other key during a sweep: that one stops, this one starts after it
            self._queued_sweep = name
            self.update_status()
        elif _active(self._sweep_worker) or self._queued_sweep == name:
            self.action_stop()
        elif self._sweep_stopping() or self._fitting():  # after it: starting now would cancel it
            self._queued_sweep = name
            self.update_status()
        else:
            self._start_sweep(name)

    def _start_sweep(self, name: str) -> None:
        self.message = None
        self._sweep_name = name
        self._sweep_worker = self._sweep(name)
        self.update_status()

    def action_stop(self) -> None:
        """Stop the sweep (or the one waiting to start). Only the sweep's worker: a refit's thread
        cannot be interrupted, and cancelling its worker would only hide the fit it still makes
        (or, waiting for a stopping sweep, drop the change it was to apply)."""
        if not (_active(self._sweep_worker) or self._queued_sweep or self._sweep_stopping()):
            # said, as the other labs' s says "nothing is training": Esc did nothing visible
            self.notify("no sweep to stop (w sweeps ρ, W sweeps a)", timeout=2)
        self._queued_sweep = None
        if _active(self._sweep_worker):
            self._sweep_worker.cancel()
        self.update_status()

    def action_use_best(self) -> None:
        """Set the swept option to the last sweep's best value and refit; refused with a notice (and
        nothing changes) with no sweep, while one runs or waits, or when it is stale."""
        lab, sweep = self.lab, self.lab.sweep_result
        waiting = self._queued_sweep or (self._sweep_name if _active(self._sweep_worker) else None)
        if waiting:  # its best may still change, or it is about to replace the sweep shown
            self.notify(f"the sweep of {SYMBOLS[waiting]} is not done: B uses its best value once it ends "
                        f"(esc stops it)", severity="warning", timeout=4)
            return
        if sweep is None:
            self.notify("no sweep yet: w sweeps ρ, W sweeps a, then B uses the best value",
                        severity="warning", timeout=4)
            return
        symbol, before = SYMBOLS[sweep.name], lab.requested
        try:
            options = lab.use_sweep_best(apply=False)
        except UserError as exc:  # stale, or no value scored
            redo = SWEEP_KEYS.get(sweep.name) if str(exc).endswith("sweep again") else None
            self.notify(f"{exc} with {redo}" if redo else str(exc), severity="warning", timeout=6)
            return
        best = getattr(options, sweep.name)
        if options == before and not lab.pending:
            self.notify(f"{symbol} is {best:g} already, the sweep's best", timeout=3)
            return
        self.message = None
        self._refit()
        self.update_status()
        self.notify(f"{symbol} {best:g}: the sweep's lowest one-step RMSE, {self._best_rmse():.3g}", timeout=3)

    def _best_rmse(self) -> float:
        """The one-step RMSE of the last sweep's best value (NaN with none)."""
        sweep = self.lab.sweep_result
        best = None if sweep is None else sweep.best()
        return math.nan if best is None else float(sweep.rmse[int(np.flatnonzero(sweep.values == best)[0])])

    def action_edit(self) -> None:
        def accept(text: str) -> bool:
            """Whether the text changed any option (the pre-filled text as it was changes none)."""
            before = self.lab.requested
            return self.lab.request(parse_option_text(text)) != before

        def applied(changed: bool | None) -> None:
            if changed:
                self.message = None
                self._refit()
                self.update_status()
            elif changed is not None:
                self.notify("options unchanged: the model stays", timeout=3)

        self.app.push_screen(EsnOptionsPrompt(self.lab, accept), applied)

    # ------------------------------------------------------------------ actions: files and help
    def action_export(self) -> None:
        if self._fitting() or self.lab.pending:  # the file would hold the fit before the options asked for
            self.notify(f"busy {self._busy_text() or 'fitting…'}: wait a moment", severity="warning", timeout=2)
            return

        def accept(name: str, replace: bool = False) -> Path:  # a file that cannot be written: PromptScreen shows why
            return self.lab.export(name, replace=replace).absolute()

        self.app.push_screen(EsnPrompt("Export every recorded array (states, forecasts, eigenvalues, weights) to",
                                       self.lab.export_name, accept),
                             lambda path: path and self.notify(f"exported to {path}"))

    def action_screenshot(self) -> None:
        take_screenshot_and_say(self)

    def action_help(self) -> None:
        keys = [(key_names(b.key), b.tooltip or b.description) for b in self.BINDINGS]
        keys.append(QUIT_HELP)
        self.app.push_screen(EsnHelp(keys))
