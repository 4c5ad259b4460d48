"""The lab's panels: each reads the :class:`~rnnlab.lab.Lab` and draws one aspect of it.

Panels never compute model numbers themselves: they read the Lab's trace, evaluation, history and
the analysis/explain functions, and redraw when the screen calls ``update_from(lab)``.
"""

from __future__ import annotations

import math
import re
import time
from functools import lru_cache
from typing import Any

import numpy as np
from rich.cells import cell_len
from rich.color import Color as RichColor
from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.geometry import Region
from textual.widgets import Static

from ..analysis import LINEAR_MODES
from ..data.files import is_number
from ..errors import UserError, clipped
from ..lab import Lab
from .terminal import clipped_at_words, first_fit
from .widgets import ColorBar, ComplexPlane, Heatmap, LinePlot
from .widgets.colormaps import Colormap
from .widgets.heatmap import _highlighted

# How each record is coloured: "signed" records (states, candidates, gradients) with the diverging
# map centred on 0, "magnitude" records (moduli) with the sequential map from 0 to their maximum,
# and everything else -- the gates, in [0, 1] -- with the sequential map on [0, 1].
SIGNED = {"h", "c", "g", "n", "hn", "dh", "h_tilde", "h_im", "dh_re", "dh_im", "u"}
MAGNITUDE = {"h_abs"}
# Records of the backward pass: revealed from t = T down to the BPTT cursor (a reverse direction's from t = 1 up).
GRADIENTS = {"dh", "dh_re", "dh_im"}
GATE_NAMES = {
    "h": "hidden state h_t", "c": "cell state c_t", "i": "input gate i_t", "f": "forget gate f_t",
    "g": "candidate g_t", "o": "output gate o_t", "r": "reset gate r_t", "z": "update gate z_t",
    "n": "candidate n_t", "hn": "W_hn h_{t-1} + b_hn", "dh": "dL/dh_t (BPTT)",
    "h_tilde": "candidate h~_t", "f_norm": "f'_t = f_t/(f_t + i_t), the share of h_{t-1} kept",
    "h_im": "Im h_t", "h_abs": "|h_t|", "dh_re": "dL/dRe h_t (BPTT)", "dh_im": "dL/dIm h_t (BPTT)",
    "u": "candidate u_t", "a": "leak rate a = 1/tau (per unit, fixed in time)",
}
# The LRU's state is complex: its "h" record is the real part, its "dh" the gradient's modulus.
_LRU_NAMES = {"h": "hidden state Re h_t", "dh": "|dL/dh_t| (BPTT)"}
_LRU_COLUMNS = {"h": "h_re", "dh": "|dh|"}  # the values table's headings, beside h_im, dh_re, dh_im
# The Jordan network's outputs and what it reads back (its "f" is no forget gate): signed, O rows.
_JORDAN_NAMES = {"y": "output y_t (one row per output)", "f": "fed back f_{t-1} (previous output or target)"}
# A self-attention block's records per step (its "z" is no gate: the attention sublayer's output).
_ATTENTION_NAMES = {"h": "block output h_t", "z": "attention sublayer output z_t",
                    "dh": "dL/dh_t (backprop)"}


# A record's name alone, its heatmap's title where the whole one would be cut (a heatmap is some 40 columns
# wide at 80): "hidden state h_… (r = 1)" said less than "h_t (r = 1)".
_SHORT_NAMES = {"h": "h_t", "c": "c_t", "i": "i_t", "f": "f_t", "g": "g_t", "o": "o_t", "r": "r_t", "z": "z_t",
                "n": "n_t", "dh": "dL/dh_t", "h_tilde": "h~_t", "f_norm": "f'_t = f_t/(f_t + i_t)", "h_im": "Im h_t",
                "dh_re": "dL/dRe h_t", "dh_im": "dL/dIm h_t", "u": "u_t", "a": "leak rate a = 1/tau (per unit)"}
_SHORT_MODE_NAMES = {"LRU": {"h": "Re h_t", "dh": "|dL/dh_t|"}, "Jordan": {"y": "y_t", "f": "f_{t-1}"},
                     "SelfAttention": {"h": "h_t", "z": "z_t", "dh": "dL/dh_t"}}


def record_short_title(name: str, mode: str) -> str:
    """The short heading of record ``name``'s heatmap for a ``mode`` trace: its symbol ("h_t", "dL/dh_t"),
    "" where it has none shorter than :func:`record_title`."""
    return _SHORT_MODE_NAMES.get(mode, {}).get(name) or _SHORT_NAMES.get(name, "")


def record_kind(name: str, mode: str) -> str:
    """``"signed"``, ``"magnitude"`` or ``"gate"``: which colour scale record ``name`` of a ``mode``
    trace is drawn with (the LRU's ``dh`` is a modulus, everyone else's is signed; a self-attention
    block's ``z`` is a signed vector, not a gate)."""
    if name in MAGNITUDE or (mode == "LRU" and name == "dh"):
        return "magnitude"
    if (mode == "SelfAttention" and name in _ATTENTION_NAMES) or (mode == "Jordan" and name in _JORDAN_NAMES):
        return "signed"
    return "signed" if name in SIGNED else "gate"


def record_title(name: str, mode: str, reverse: bool = False) -> str:
    """The heading of record ``name``'s heatmap for a ``mode`` trace; ``reverse``: of a reverse
    direction, whose previous state is h_{t+1} (as the explain panel writes it)."""
    if mode == "LRU" and name in _LRU_NAMES:
        return _LRU_NAMES[name]
    if mode == "SelfAttention" and name in _ATTENTION_NAMES:
        return _ATTENTION_NAMES[name]
    if mode == "Jordan" and name in _JORDAN_NAMES:
        return _JORDAN_NAMES[name]
    title = GATE_NAMES.get(name, name)
    return title.replace("h_{t-1}", "h_{t+1}") if reverse else title


def unit_records(lab: Lab) -> list[str]:
    """The trace's records with one value per unit and step ((T, B, H): drawn as units x time),
    in the trace's order; a self-attention trace's attention maps and per-head q, k, v are not."""
    trace = lab.trace
    return [name for name in trace.names if trace.get(name).ndim == 3]


def time_cursor(lab: Lab) -> int | None:
    """The step under the cursor: the last revealed one (None before the first step)."""
    return lab.cursor - 1 if lab.cursor > 0 else None


def output_tokens(lab: Lab, b: int = 0, channel: int = 0) -> list[str]:
    """What the network outputs at every step: the argmax symbol, or the value (of one channel)."""
    outputs = lab.evaluation.outputs[:, b]
    if lab.task.loss == "xent" and lab.task.vocab is not None:
        return [lab.task.vocab[int(k)] for k in outputs.argmax(axis=-1)]
    return [f"{v:.2f}" for v in outputs[:, channel]]


#: The sequence bar shows at most this many channels of a regression target (a target and an output row each).
BAR_CHANNELS = 3
#: A channel's name in the bar's labels, at most (terminal cells; a longer CSV header name is cut with "…").
CHANNEL_NAME_CELLS = 12
#: A pinned gradient curve's legend names its experiment in at most this many cells.
PIN_NAME_CELLS = 24  # selective-copy-mingru whole (16 cut "selective-copy-…", which told no preset apart)
#: Curves kept to compare with at once (``m``; an rnn, an lstm and a gru); a fourth drops the oldest.
MAX_PINS = 3
#: Their colours, the first pinned first: muted, under the current model's bright ones.
PIN_COLORS = ("#8a8a8a", "#a07aa8", "#6aa08c")


def bar_layout(lab: Lab) -> list[tuple[str, str, int | None]]:
    """The sequence bar's rows as (label, kind, channel), kind "input", "target" or "output": one
    target and one output row per channel of the target (two-scales: slow and fast; the first
    BAR_CHANNELS of a many-column series), and one input row per channel where the input has the
    same channels. Channel None: the task's only one."""
    task = lab.task
    if not task.channels:
        return [("input", "input", None), ("target", "target", None), ("output", "output", None)]
    names = [(c, fit_cells(name, CHANNEL_NAME_CELLS, centre=False).rstrip())
             for c, name in enumerate(task.channels[:BAR_CHANNELS])]
    if task.input_size == len(task.channels):  # a forecast: each channel's input is its last value
        rows = [(f"input {name}", "input", c) for c, name in names]
    else:
        rows = [("input", "input", None)]
    for c, name in names:
        rows += [(f"target {name}", "target", c), (f"output {name}", "output", c)]
    return rows


def bar_rows(lab: Lab) -> list[tuple[str, str, list[str]]]:
    """:func:`bar_layout` with each row's tokens: (label, kind, one string per step)."""
    task, sequence = lab.task, lab.sequence
    rows = []
    for label, kind, channel in bar_layout(lab):
        c = {} if channel is None else {"channel": channel}  # single-channel tasks' token methods take none
        if kind == "input":
            tokens = task.input_tokens(sequence, **c)
        elif kind == "target":
            tokens = task.target_tokens(sequence, **c)
        else:
            tokens = output_tokens(lab, **c)
        rows.append((label, kind, tokens))
    return rows


class StepRate:
    """Training steps per second, from the step count a timer samples: re-measured once a second
    or more has passed since the last mark and a step has ended since; None until then (not
    "0 steps/s"). A large model's step takes seconds: a window with no step in it says nothing,
    and its rate reads "0.2 steps/s", not "0 steps/s". The first mark is the first sample after a
    step has ended: the first step's time holds the kernels' compile (or their load from the
    cache), and a rate counted from the start said "0.11 steps/s" of a model that trains hundreds."""

    def __init__(self) -> None:
        self.per_second: float | None = None
        self._mark: tuple[float, int] | None = None
        self._first_count: int | None = None  # the step count when training (re)started

    def restart(self) -> None:
        """Forget the last mark and rate (training starts again)."""
        self._mark = None
        self._first_count = None
        self.per_second = None

    def __str__(self) -> str:
        rate = self.per_second
        return "… steps/s" if rate is None else f"{rate:.0f} steps/s" if rate >= 10 else f"{rate:.2g} steps/s"

    def update(self, steps: int) -> None:
        """Sample the step count (the timer's tick)."""
        now = time.perf_counter()
        if self._mark is None:
            if self._first_count is None:
                self._first_count = steps
            if steps > self._first_count:  # a step has ended: the compile is behind
                self._mark = (now, steps)
        elif now - self._mark[0] >= 1.0 and steps > self._mark[1]:
            self.per_second = (steps - self._mark[1]) / (now - self._mark[0])
            self._mark = (now, steps)


class LabView(Static):
    """A panel drawn from a lab engine: :meth:`update_from` keeps the engine and redraws, and a
    resize redraws from it (the window of steps or nodes shown depends on the width), unless the
    app is computing in a worker that changes the engine (the app redraws every panel after)."""

    _lab: Any = None

    def update_from(self, lab: Any) -> None:
        self._lab = lab
        self.refresh_view()

    def on_resize(self) -> None:
        if self._lab is not None and not getattr(self.app, "computing", None):
            self.refresh_view()

    def refresh_view(self) -> None:  # pragma: no cover - every panel defines it
        raise NotImplementedError


def fit_number(number: str, room: int) -> str:
    """``number`` (a token that reads as a float) in at most ``room`` characters, with fewer
    significant digits rather than fewer digits: 1000063000.00 in 7 is ``1e9``, not ``1000063``."""
    if len(number) <= room or not is_number(number):
        return number
    value = float(number)
    for digits in range(room, 0, -1):
        text = f"{value:.{digits}g}"
        if "e" in text:  # 1e+09 -> 1e9, 1.2e-05 -> 1.2e-5
            mantissa, exponent = text.split("e")
            text = f"{mantissa}e{int(exponent)}"
        if len(text) <= room:
            return text
    return "#" * room  # a room too small for any exponent form (never at the bar's widths): no wrong digits


def fit_cells(token: str, width: int, centre: bool = True) -> str:
    """``token`` in exactly ``width`` terminal cells (a wide character, CJK or most emoji, takes
    two), centred or left-aligned; a longer one cut, and marked "…" where it is more than a symbol."""
    if cell_len(token) > width:
        cut = token
        while cell_len(cut) > width - (width > 2):
            cut = cut[:-1]
        token = cut + "…" if width > 2 else cut
    pad = width - cell_len(token)
    left = pad // 2 if centre else 0
    return " " * left + token + " " * (pad - left)


class SequenceBar(LabView):
    """The sequence on the bench: inputs, targets and outputs per step (of each channel of a
    regression target), the cursor column marked. Shows a window of steps around the cursor when
    the sequence is wider than the panel. Its height follows the rows: :meth:`rows_needed`."""

    @staticmethod
    def rows_needed(lab: Lab) -> int:
        """Terminal rows the bar takes for ``lab``'s task: the step numbers, its rows, the status
        line and the border under it."""
        return len(bar_layout(lab)) + 3

    def refresh_view(self) -> None:
        lab = self._lab
        rows = bar_rows(lab)
        self.styles.height = self.rows_needed(lab)
        targets = {label.removeprefix("target"): tokens for label, kind, tokens in rows if kind == "target"}
        label_width = max(6, *(cell_len(label) for label, _, _ in rows))
        T = lab.steps
        width = max(1, min(6, max((cell_len(s) for _, _, tokens in rows for s in tokens), default=1)))
        # numbers (the adding task marks some with "*") line up on their last digit, marks beyond it
        tokens_shown = [s for _, _, tokens in rows for s in tokens if s and s != "·"]
        numeric = bool(tokens_shown) and all(is_number(s.removesuffix("*")) for s in tokens_shown)
        starred = numeric and any(s.endswith("*") for s in tokens_shown)
        if numeric:
            width = min(7, max(len(s.removesuffix("*")) for s in tokens_shown) + starred)
        usable = max(1, (self.size.width or 80) - label_width - 2)
        visible = max(1, usable // (width + 1))
        cursor = time_cursor(lab)
        focus = cursor if cursor is not None else 0
        start = min(max(0, focus - visible // 2), max(0, T - visible))
        stop = min(T, start + visible)
        text = Text(no_wrap=True, overflow="crop")
        text.append("t".ljust(label_width + 1), style="dim")
        # label every k-th step, k the first of 1, 2, 5, 10, ... whose span fits the widest label;
        # a label ends at its step's column and may run left over the unlabelled ones
        every = next(k for k in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10**9)
                     if len(str(stop)) <= k * (width + 1) - 1)
        row = [" "] * ((stop - start) * (width + 1))
        mark = (cursor - start) * (width + 1) + width - 1 if cursor is not None else -1
        for t in range(start, stop):
            label, end = str(t + 1), (t - start) * (width + 1) + width
            if (t + 1) % every == 0 and end >= len(label) and not end - len(label) <= mark < end:
                row[end - len(label):end] = label  # whole labels only; the cursor's mark wins
        text.append("".join(row), style="dim")
        if cursor is not None and start <= cursor < stop:  # the cursor's mark over its column
            column = label_width + 1 + (cursor - start) * (width + 1)
            marked = Text(text.plain[:column + width - 1], style="dim")
            marked.append("▼", style="bold yellow")
            marked.append(text.plain[column + width:], style="dim")
            text = marked
        text.append("\n")
        for label, kind, tokens in rows:
            text.append(fit_cells(label, label_width, centre=False) + " ", style="bold")
            target = targets.get(label.removeprefix("output"))  # this output's target row
            for t in range(start, stop):
                token = tokens[t]
                revealed = kind != "output" or t < lab.cursor
                style = "reverse" if t == cursor else ("" if revealed else "dim")
                shown = token if revealed else ""  # not computed yet: empty, unlike a blank symbol's "·"
                if kind == "output" and revealed and lab.task.loss == "xent" and target[t]:
                    style += " green" if tokens[t] == target[t] else " red"
                if numeric:  # a blank's dot under the last digit too
                    number = fit_number(shown.removesuffix("*"), width - starred)
                    cell = f"{number:>{width - starred}}" + ("*" if shown.endswith("*") else " " * starred)
                else:
                    cell = fit_cells(shown, width)
                text.append(cell, style=style.strip() or None)
                text.append(" ")
            text.append("\n")
        evaluation = lab.evaluation
        acc = "" if evaluation.accuracy is None else f"  accuracy {100 * evaluation.accuracy:.0f}%"
        channels = len(lab.task.channels)
        cut = f"   channels 1-{BAR_CHANNELS} of {channels}" if channels > BAR_CHANNELS else ""
        # a typed sequence is not what the task's description says (10 bits, 100 pairs): it trains on those
        which, task = ("this typed sequence", "trained on ") if lab.sequence_typed else ("this sequence", "")
        # the trivial predictor on this very sequence: an easy one (adding's target 0.98 near "predict 1")
        # made any loss look good against the baseline's average
        baseline, here = lab.task.baseline(), lab.task.baseline_on(lab.sequence)
        against = f" ({baseline.name}: {here:.2g})" if baseline is not None and here is not None else ""
        # "t 1-11 of 100" as the heatmaps' titles write their windows (this one said "steps 1-11 of 100")
        where, loss = f"t {start + 1}-{stop} of {T}{cut}", f"{which}: loss {evaluation.loss:.4g}"
        text.append(self._fitted_line(where, [f"{loss}{against}{acc}", f"{loss}{acc}", loss],
                                      f"{task}{lab.task.describe()}"), style="dim")
        self.update(text)

    #: The bar's last line gives the task's description a place, cut where a word ends, if this many cells are left.
    DESCRIPTION_CELLS = 16

    def _fitted_line(self, where: str, scores: list[str], description: str) -> str:
        """The bar's last line in its width: the steps shown, the score of the sequence (``scores``, its
        forms longest first) and the task's description, which gives way first, its words cut (see
        DESCRIPTION_CELLS), then the baseline, then the accuracy. Cut at its end, at 62 columns it read
        "loss 0.005242 (predict 1: 0.0…", a number cut short."""
        width = self.content_size.width or None
        line = f"{where}   {scores[0]}"
        if width is None:  # not laid out yet: whole (the resize draws it again)
            return f"{line}   {description}"
        if cell_len(line) + 3 + self.DESCRIPTION_CELLS <= width:
            return f"{line}   {clipped_at_words(description, width - cell_len(line) - 3)}"
        return first_fit([f"{where}   {score}" for score in scores] + [where], width, fallback=where)


class StatePanel(VerticalScroll):
    """Heatmaps (units x time) of every record of one layer and direction, plus dL/dh_t after BPTT.
    Not focusable: once focused (as a closing dialog leaves it) a scroll container takes home,
    end and the arrows for scrolling; j/k and the mouse wheel scroll it."""

    can_focus = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stream = (0, 0)  # (layer, direction) shown
        self.unit = 0  # the chosen unit, marked in every map
        self._maps: dict[str, Heatmap] = {}
        self._shown: dict[str, tuple] = {}  # per map: what _show last gave it (source, where, vmin, vmax)
        self._cursors: tuple[int | None, int] = (None, 0)  # (BPTT, time) cursors of the last update
        self._gradient_follows_time = False  # the dL/dh_t map's view: the time cursor's, else the BPTT step's
        self._scroll_before_gradient: int | None = None  # where BPTT's map, brought into view, took the panel from
        self._shown_whole: Heatmap | None = None  # the map _show_whole brought into view last (BPTT's)

    def compose(self) -> ComposeResult:
        with Horizontal(id="colorbars"):  # the colour key, docked on top: each signed map's title gives its r
            yield Static("signed ", classes="key-signed")
            yield ColorBar(colormap="diverging", vmin=-1.0, vmax=1.0, labels=("-r", "+r"), id="bar-signed",
                           classes="key-signed")
            yield Static("  gates ", classes="key-gate")
            yield ColorBar(colormap="sequential", vmin=0.0, vmax=1.0, id="bar-gates", classes="key-gate")
            # the LRU's |h_t| and |dL/dh_t|: sequential from 0 to the r its title gives
            yield Static("  moduli ", classes="key-magnitude")
            yield ColorBar(colormap="sequential", vmin=0.0, vmax=1.0, labels=("0", "r"), id="bar-moduli",
                           classes="key-magnitude")
        yield Vertical(id="maps")

    def select(self, lab: Lab, layer: int, direction: int, unit: int) -> None:
        moved = unit != self.unit
        self.stream, self.unit = (layer, direction), unit
        self.update_from(lab)
        if moved:
            self.call_after_refresh(self.show_unit)

    def update_from(self, lab: Lab) -> None:
        mode = lab.trace.mode
        names = unit_records(lab)
        if lab.bptt_cursor is None:  # a stale backward pass of a previous trace is not shown
            names = [name for name in names if name not in GRADIENTS]
        container = self.query_one("#maps", Vertical)
        dropped = [n for n in self._maps if n not in names]
        # BPTT's map dropped while in view (a new sequence): back to the map it took the panel from;
        # one scrolled away from, the panel stays on the map it shows
        back = self._scroll_before_gradient if any(name in GRADIENTS and self._in_view(self._maps[name])
                                                   for name in dropped) else None
        for name in dropped:
            self._maps.pop(name).remove()
            self._shown.pop(name, None)
        if dropped:  # the panel, scrolled down to them, would open inside the map above, untitled
            self._scroll_before_gradient = None
            if back is None:
                self.call_after_refresh(self._snap_to_title)
            else:
                self.call_after_refresh(self._scroll_back, back)
        if not any(name in GRADIENTS for name in names):  # the room _show_whole made under them
            container.styles.padding = 0
        kinds = {record_kind(name, mode) for name in names}
        for kind in ("signed", "gate", "magnitude"):  # only the keys of maps shown (the LRU: no gates)
            for part in self.query(f"#colorbars .key-{kind}"):
                part.display = kind in kinds
        new = {name: Heatmap(colormap="diverging" if record_kind(name, mode) == "signed" else "sequential",
                             vmin=-1.0 if record_kind(name, mode) == "signed" else 0.0, vmax=1.0,
                             title=record_title(name, mode), id=f"map-{name}")
               for name in names if name not in self._maps}
        for heatmap in new.values():
            heatmap.first_step = 1  # the lab numbers steps t = 1..T
            heatmap.show_row_labels = True  # which units a line shows, where a map is taller than the panel
        if dropped or new:  # the maps moved under the scroll position: which title is out of view
            self.call_after_refresh(self._pin_titles)
        if new:
            self._maps.update(new)
            container.mount_all(new.values())
            gradient = next((heatmap for name, heatmap in new.items() if name in GRADIENTS), None)
            if gradient is not None:  # BPTT has begun: bring its heatmap into view, below the states
                self._scroll_before_gradient = round(self.scroll_y)
                self.call_after_refresh(self._show_whole, gradient)
        cursor = time_cursor(lab)
        # The dL/dh_t map's view follows the BPTT step while b steps (to t = 1 too, where the user
        # looks), and the time cursor once the pass is whole and a time key moved, or B revealed it
        # whole at once (self-attention always): it stayed on t = 1..65 of 200, out of any key's reach.
        bptt, time = self._cursors
        if lab.bptt_cursor != bptt:
            self._gradient_follows_time = lab.is_attention or (lab.bptt_cursor == 0 and (bptt is None or bptt > 1))
        elif lab.cursor != time:
            self._gradient_follows_time = lab.bptt_cursor == 0
        self._cursors = (lab.bptt_cursor, lab.cursor)
        layer, direction = self.stream
        revealed = lab.bptt_revealed(direction)  # a reverse direction's BPTT runs from t = 1 up
        streams = lab.spec.model.num_layers * lab.num_directions
        where = ("" if streams == 1 else f"  · block {layer}" if lab.is_attention
                 else f"  · layer {layer}{' reverse' if direction else ''}")
        for name, heatmap in self._maps.items():
            record = lab.trace.get(name, *self.stream)[:, 0, :]  # (T, H), a view of the trace's record
            kind, title = record_kind(name, mode), record_title(name, mode, reverse=direction == 1)
            short = record_short_title(name, mode)
            colormap = "diverging" if kind == "signed" else "sequential"
            if heatmap.colormap.name != colormap:  # the same record of another cell (the LRU's dh)
                heatmap.colormap = colormap
            if kind == "gate":
                vmin, vmax = 0.0, 1.0
                range_text = ""
            else:  # gradients span their own range; states at least [-1, 1] (moduli [0, 1])
                # a gradient's scale from the steps revealed so far: the unrevealed ones, often far
                # larger (or smaller), would leave the revealed columns one flat colour
                shown = record[revealed] if name in GRADIENTS else record
                finite = np.abs(shown[np.isfinite(shown)])  # a gradient that overflowed: Inf has no scale
                largest = float(finite.max()) if finite.size else 0.0
                scale = (largest or 1.0) if name in GRADIENTS else max(1.0, largest)
                vmin, vmax = (-scale if kind == "signed" else 0.0), scale
                # the colour key reads -r .. +r for signed maps, 0 .. r for moduli: each map says its r
                range_text = f"r = {scale:.2g}"
            self._show(name, heatmap, record, vmin, vmax)
            heatmap.marked_row = self.unit
            if name in GRADIENTS:
                heatmap.reveal_from_end = direction == 0
                heatmap.revealed = revealed.size
                stepped = revealed.size > 0 and not self._gradient_follows_time
                heatmap.cursor = lab.bptt_t(direction) - 1 if stepped else cursor
                tag = "backprop" if title.endswith("(backprop)") else "BPTT"
                heatmap.title = f"{title.removesuffix(f' ({tag})')} ({tag}, {range_text}){where}"
                heatmap.short_title = f"{short} ({range_text}){where}" if short else ""
            else:
                heatmap.revealed = lab.cursor
                heatmap.cursor = cursor
                heatmap.title = title + (f"  ({range_text})" if range_text else "") + where
                heatmap.short_title = short + (f" ({range_text})" if range_text else "") + where if short else ""

    def _show(self, name: str, heatmap: Heatmap, record: np.ndarray, vmin: float, vmax: float) -> None:
        """Give ``heatmap`` the (T, H) ``record`` on that scale, unless it shows it already: a key that
        moves a cursor leaves the maps' colours as they are (re-binning seven maps of 2000 steps and
        512 units took 50-75 ms a key). A trace's records are never rewritten, so the array a record
        views (held, so that its memory is not reused) and where in it identify the data."""
        source = record.base if record.base is not None else record
        where = (record.__array_interface__["data"][0], record.shape, record.strides)
        last = self._shown.get(name)
        if last is None or last[0] is not source or last[1:] != (where, vmin, vmax):
            heatmap.set_data(record.T, vmin=vmin, vmax=vmax)  # (H, T)
            self._shown[name] = (source, where, vmin, vmax)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._pin_titles()

    def on_resize(self) -> None:
        self._pin_titles()
        # a taller panel scrolls less far: the clamped position lands inside a map, its title and
        # first rows out of view (j/k scrolled to a map at 60x20, then enlarged)
        self.call_after_refresh(self._after_resize)

    def _after_resize(self) -> None:
        # BPTT's map, brought into view whole, stays so: the room under it was made for the old
        # height, and the snap to a title took the map above (enlarged, dL/dh_t's title sat on the
        # panel's last line, its rows out of view)
        whole = self._shown_whole
        if whole is not None and whole in self._maps.values() and self._in_view(whole):
            self._show_whole(whole)
        else:
            self._snap_to_title()
        self._pin_titles()

    def _pin_titles(self) -> None:
        """The map whose title line the scrolling has taken out of view (u/U scroll to the chosen unit
        deep in a tall map) draws its title on the panel's top line: otherwise nothing said which
        record the rows under it are, nor the window of steps."""
        now = round(self.scroll_y)
        for heatmap in self._maps.values():
            top = heatmap.virtual_region.y
            heatmap.pin_title(now - top if top < now < top + heatmap.size.height - 1 else None)

    def _show_whole(self, heatmap: Heatmap) -> None:
        """Scroll so that ``heatmap`` is in view whole with a heatmap's title on the panel's top line:
        the highest map above it that leaves it room, else its own. (Scrolled only as far as it
        needed, the panel opened inside the map above, without that map's title.) Where the maps end
        too soon for that, the panel gets room to scroll past their end: blank lines under the last."""
        if heatmap not in self._maps.values():  # BPTT dropped (a new sequence) before this ran
            return
        self._shown_whole = heatmap
        visible = self.scrollable_content_region.height - self.query_one("#colorbars").outer_size.height
        top, bottom = heatmap.virtual_region.y, heatmap.virtual_region_with_margin.bottom
        tops = [map_.virtual_region.y for map_ in self._maps.values()]
        y = min((t for t in tops if bottom - visible <= t <= top), default=top)
        end = max(map_.virtual_region_with_margin.bottom for map_ in self._maps.values())
        self.query_one("#maps").styles.padding = (0, 0, max(0, y + visible - end), 0)
        self.call_after_refresh(self.scroll_to, y=y, animate=False)  # once the room is laid out

    def show_unit(self) -> None:
        """Where no map shows the chosen unit's line, scroll the map at the panel's top to it
        (centred): u and U reach every unit of a map taller than the panel."""
        visible = self.scrollable_content_region.height - self.query_one("#colorbars").outer_size.height
        now = round(self.scroll_y)
        lines = [(m.virtual_region.y, m.virtual_region.y + m.row_line(self.unit)) for m in self._maps.values()]
        if not lines or any(now <= line < now + visible for _, line in lines):
            return
        line = max(((top, line) for top, line in lines if top <= now), default=lines[0])[1]
        self.scroll_to(y=max(0, line - visible // 2), animate=False, immediate=True)

    def open_on_first_map(self) -> None:
        """Scroll home, for another model (edited or opened): its first heatmap, with nothing of the
        last model's scrolling to go back to."""
        self._scroll_before_gradient = None
        self.scroll_home(animate=False)

    def _in_view(self, heatmap: Heatmap) -> bool:
        """Whether any line of ``heatmap`` is in the panel's view (under the colour key)."""
        visible = self.scrollable_content_region.height - self.query_one("#colorbars").outer_size.height
        top, now = heatmap.virtual_region.y, round(self.scroll_y)
        return top < now + visible and top + heatmap.outer_size.height > now

    def _scroll_back(self, y: int) -> None:
        """Scroll to ``y`` (as far as the maps now reach), a heatmap's title on the top line."""
        self.scroll_to(y=min(y, round(self.max_scroll_y)), animate=False, immediate=True)
        self._snap_to_title()

    def _snap_to_title(self) -> None:
        """Scroll up to the top (the title) of the heatmap the panel's top line is in, unless that
        leaves no map showing the chosen unit's line (which u/U scrolled to)."""
        now = round(self.scroll_y)
        top = max((m.virtual_region.y for m in self._maps.values() if m.virtual_region.y <= now), default=0)
        if top != now:
            self.scroll_to(y=top, animate=False, immediate=True)
            self.show_unit()

    def scroll_maps(self, delta: int) -> bool:
        """Scroll a heatmap at a time: the next (``delta`` > 0) or previous one starts at the top
        of the panel (the j and k keys; the mouse wheel scrolls by rows). False where it cannot
        move: every heatmap to that side is in view already."""
        tops = sorted(heatmap.virtual_region.y for heatmap in self._maps.values())
        now = round(self.scroll_y)
        later, earlier = [y for y in tops if y > now], [y for y in tops if y < now]
        if delta > 0:
            target = later[0] if later else now  # the last heatmap stays with its title in view
        else:
            target = earlier[-1] if earlier else 0
        target = min(target, round(self.max_scroll_y))
        self.scroll_to(y=target, animate=False, immediate=True)  # the next key reads it
        if target != now:  # the user's choice of map now: a resize keeps it
            self._shown_whole = None
        return target != now


class CursorValues(Static):
    """The exact values of the cursor column: one row per unit, one column per record."""

    MIN_ROWS = 4  # units shown at least, however short the panel
    _drawn: tuple = ()  # update_from's arguments, for a redraw at another width

    def on_resize(self) -> None:
        # its layout (wide or compact numbers) is chosen for its width, which can change after it is
        # drawn: a longer table brings the column's scrollbar (one cell), and "+0.…" cut a whole column
        if self._drawn and not getattr(self.app, "computing", None):
            self.update_from(*self._drawn)

    def update_from(self, lab: Lab, layer: int, direction: int, unit: int, rows: int | None = None) -> None:
        """Draw step t's values of one layer and direction with ``unit`` highlighted: every unit,
        or, given ``rows`` lines, a window of units around ``unit`` with a line saying which."""
        self._drawn = (lab, layer, direction, unit, rows)
        t = time_cursor(lab)
        if t is None:
            self.update(Text("Step forward (→) to see the values of each step.", style="dim"))
            return
        H = lab.spec.model.hidden_size  # records of another width (the jordan cell's y, f) are not per unit
        names = [n for n in unit_records(lab) if (n not in GRADIENTS or lab.bptt_cursor is not None)
                 and lab.trace.get(n, layer, direction).shape[-1] == H]
        where = f"block {layer}" if lab.is_attention else f"layer {layer}{' reverse' if direction else ''}"
        # "+0.16" with two spaces between columns where it fits; else ".16" / "-.16" and one space (a
        # narrow terminal: an LSTM's seven records then fit in 35 columns instead of being cut to "+…")
        full = 4 + sum(max(len(n), 5) + 2 for n in names)
        compact = full > (self.size.width or 80)
        fmt = _num_compact if compact else _num
        # the title and the caption as lines of their own, not the table's: a table as narrow as one
        # record (jordan's h) would wrap them to its width
        title = Text(f"t = {t + 1}  ({where})", style="table.title", no_wrap=True, overflow="ellipsis")
        if "dh" in names and t in lab.bptt_revealed(direction):  # the number the gradient plot draws at t,
            # readable at any step the cursor is on (the plot's title gives the BPTT step's ratio only);
            # its short form where the long one does not fit, none where neither does (a number cut reads wrong)
            dh = np.asarray(lab.trace.get("dh", layer, direction)[t], np.float64)
            norm = f"{math.sqrt(float(np.sum(dh * dh))):.3g}"
            room = (self.size.width or 80) - len(title)
            title.append(first_fit((f"  ||dL/dh_t|| {norm}", f"  |dh| {norm}"), room), style="dim")
        caption = None
        table = Table(box=None, pad_edge=False, expand=False, padding=(0, 0, 0, 1) if compact else (0, 1))
        table.add_column("#" if compact else "unit", justify="right", style="dim")
        for name in names:
            table.add_column(_LRU_COLUMNS.get(name, name) if lab.trace.mode == "LRU" else name, justify="right")
        columns = {n: np.asarray(lab.trace.get(n, layer, direction)[t, 0]) for n in names}
        shown = range(H)
        count = H if rows is None else max(self.MIN_ROWS, rows - 1)  # a line under it says which units
        if count < H:
            first = min(max(unit - count // 2, 0), H - count)
            shown = range(first, first + count)
            units = f"units {first}-{first + count - 1} of {H}"  # the keys dropped where they would wrap to a line
            caption = Text(first_fit((f"{units} (u/U)", units), self.size.width or None, units), style="dim")
        # a gradient BPTT has not reached yet (it steps back from t = T, a reverse direction's from t = 1
        # up): "·", as its heatmap's empty column
        reached = t in lab.bptt_revealed(direction)
        unrevealed = {n for n in names if n in GRADIENTS and not reached}
        for j in shown:
            style = "reverse" if j == unit else None
            table.add_row(str(j), *["·" if n in unrevealed else fmt(columns[n][j]) for n in names], style=style)
        self.update(Group(title, table, *([caption] if caption is not None else [])))


def _num(value: float) -> str:
    """+0.16, -0.16, +1234.57; smaller values as +3e-5 (the exponent written as :func:`_num_compact`
    writes it), larger ones as +9.6e21 (an exploding state or gradient: 24 digits would not fit).
    A negative zero (a gradient's 0 times a negative weight) is +0.00, not -0.00."""
    if not math.isfinite(value):
        return str(value)
    value += 0.0  # -0.0 + 0.0 is +0.0
    if 5e-3 <= abs(value) < 9999.995 or value == 0:
        return f"{value:+.2f}"
    mantissa, exponent = (f"{value:+.1e}" if abs(value) >= 9999.995 else f"{value:+.0e}").split("e")
    return f"{mantissa}e{int(exponent)}"


def _num_compact(value: float) -> str:
    """At most 4 characters for 0.005 <= |value| < 100, no sign for positive values: .16, -.16, 2.1,
    -12; smaller values as 3e-5, -3e-5, and below 1e-9 as ~0; zero as .00, a negative one too."""
    if not math.isfinite(value):
        return str(value)[:4]
    value += 0.0  # -0.0 + 0.0 is +0.0: "-.00" read as a small negative number
    size = abs(value)
    if 0 < size < 1e-9:  # vanished: below anything the colours or a plot could show
        return "~0"
    if 0 < size < 0.005:  # "1e-5": a vanishing gradient is not ".00"
        mantissa, exponent = f"{value:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    if size < 0.995:
        return f"{value:.2f}".replace("0.", ".", 1)
    if size < 9.95:
        return f"{value:.1f}"
    if size < 99.5:
        return f"{value:.0f}"
    return f"{value:.0e}"


class ExplainPanel(Static):
    """The cell's equations with the numbers of the cursor step for one chosen unit; for
    self-attention, the softmax of the cursor step in the chosen block and head with the keys it
    attends to most."""

    TOP_KEYS = 5

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._text = Text()  # what is shown, for rows_needed

    def rows_needed(self, width: int) -> int:
        """Lines the panel takes at ``width`` columns."""
        return len(self._text.wrap(self.app.console, max(width, 1))) if self._text.plain else 0

    def _show(self, text: Text) -> None:
        self._text = text
        self.update(text)

    def update_from(self, lab: Lab, layer: int, direction: int, unit: int, head: int = 0) -> None:
        from ..explain import explain_attention, explain_step

        t = time_cursor(lab)
        if t is None:
            hint = "a/A choose the head" if lab.is_attention else "u/U choose the unit"
            self._show(Text(f"explain: step forward to a time step; {hint}", style="dim"))
            return
        text = Text()
        width = self.size.width  # a name longer than that is broken at its own joints (_break_long_words)

        def add(line: str, style: str | None = None) -> None:
            text.append(_break_long_words(line, width), style=style)

        if lab.is_attention:
            step = explain_attention(lab.trace, t, layer, head, top=self.TOP_KEYS)
            add(f"explain: step t = {t + 1} attends to (block {layer}, head {head + 1})\n", "bold")
            for line in step.lines(labels=lab.task.input_tokens(lab.sequence), numbered=True):
                add(line + "\n")
            add("q_t, k_j: rows of self_attn.in_proj_weight [W_q; W_k] times the block's input", "dim")
            self._show(text)
            return
        with np.errstate(over="ignore", invalid="ignore"):  # states that overflowed read as inf and nan
            equations = explain_step(lab.trace, t, unit, layer, direction)
        add(f"explain: unit {unit}, step t = {t + 1} ({lab.spec.model.cell})\n", "bold")
        for equation in equations:
            add(equation.text() + "\n")
        if equations:
            add(equations[0].params, "dim")
        self._show(text)


#: Where a long name may be broken, the stronger joints first: after a dot, comma or slash (between
#: names: "self_attn." / "in_proj_weight"), else after an underscore (inside one).
NAME_JOINTS = (".,/", "_")


def _joint_cut(head: str) -> int:
    """Where to break a word whose first characters are ``head``: after its last joint of the
    strongest kind there (0: none)."""
    for joints in NAME_JOINTS:
        cut = max((k + 1 for k, c in enumerate(head) if c in joints), default=0)
        if cut:
            return cut
    return 0


def _break_long_words(line: str, width: int) -> str:
    """``line`` with every word longer than ``width`` broken (a newline) after the last joint of
    the strongest kind (NAME_JOINTS) that leaves the piece within the width, as often as needed:
    rich folds a long word at the width itself, which cut names mid-word ("self_attn.in_proj_weigh"
    / "t"). A word with no joint to break at is left to rich."""
    if width <= 0:
        return line
    words = line.split(" ")
    for i, word in enumerate(words):
        pieces = []
        while len(word) > width:
            cut = _joint_cut(word[:width])
            if not cut:
                break
            pieces.append(word[:cut])
            word = word[cut:]
        words[i] = "\n".join([*pieces, word])
    return " ".join(words)


def pin_short_name(index: int, count: int) -> str:
    """The legend's name of pin ``index`` of ``count`` where its own ("pin adding-lstm") finds no room:
    "pin", or "pin 1", "pin 2" among several (at 80x24 a pinned loss curve went unnamed)."""
    return "pin" if count == 1 else f"pin {index + 1}"


def keep_pinned(pins: list, pin: tuple) -> list:
    """``pins`` with ``pin`` added last: one of its name (the same model pinned again) replaced, the
    oldest dropped beyond :data:`MAX_PINS`."""
    kept = [p for p in pins if p[0] != pin[0]] + [pin]
    return kept[-MAX_PINS:]


class GradientPlot(LinePlot):
    """||dL/dh_t|| over t on a log scale, growing as BPTT steps backward; and each step's
    contribution to dW_hh (cells with recurrent weights only: minGRU, minLSTM and the LRU have none).
    For self-attention, ||dL/dx_t|| instead: a block's output at t feeds only y_t, so with a loss at
    the last step dL/dh_t is 0 elsewhere, while the input's gradient reaches every step the last
    one attends to, directly (the adding task's two marked values)."""

    _memo: tuple = ()  # (the trace's dh, layer, direction, norms, contributions) last computed
    #: Curves kept for comparison (``m``), the oldest first, at most MAX_PINS: (legend name,
    #: ||dL/dh_t|| at t = 1..T, whether it lines up from t = 1: a reverse direction's, whose chain
    #: starts there), drawn muted under the current one whatever model the lab shows now, until
    #: ``M`` drops them.
    pins: list[tuple[str, np.ndarray, bool]]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pins = []

    @property
    def pinned(self) -> tuple[str, np.ndarray] | None:
        """The curve pinned last: (legend name, norms), or None."""
        return self.pins[-1][:2] if self.pins else None

    def pin(self, lab: Lab, layer: int, direction: int) -> str:
        """Keep the current model's whole ||dL/dh_t|| curve (of ``layer`` and ``direction``; for
        self-attention ||dL/dx_t||, where its gradient goes) to compare the next with, named for
        its run (else its experiment); returns the legend name. UserError where no backward pass ran."""
        if "dh" not in lab.trace:
            raise UserError("no backward pass to pin (b runs it)")
        norms, contributions = self._curves(lab, layer, direction)
        if lab.is_attention:
            norms = contributions
        name = self.pin_name(lab, layer, direction)
        self.pins = keep_pinned(self.pins, (name, np.array(norms, dtype=np.float64), bool(direction)))
        return name

    @staticmethod
    def pin_name(lab: Lab, layer: int, direction: int) -> str:
        """The legend name of ``lab``'s pinned curves: its run's (else its experiment's), and the
        layer and direction where it has more than one."""
        where = (f" l{layer}" if lab.spec.model.num_layers > 1 else "") + ("r" if direction else "")
        named = lab.run.path.name if lab.run is not None else lab.spec.name
        if re.fullmatch(re.escape(lab.spec.name) + r"-\d{8}-\d{6}(-\d+)?", named):  # the default runs/NAME-TIME
            named = lab.spec.name  # its time would take the legend's room ("adding-lstm-202…")
        return f"pin {clipped(named, PIN_NAME_CELLS)}{where}" + (" dx" if lab.is_attention else "")

    def _draw_pinned(self, steps: int) -> None:
        """The pinned curves, each's last step at this model's t = T: both vanish from the loss at T
        backward, so a curve of another length lines up by its distance from the end (a reverse
        direction's, whose backward pass starts at t = 1, by its distance from the start)."""
        for index, ((name, norms, from_start), color) in enumerate(zip(self.pins, PIN_COLORS)):
            first = 1 if from_start else steps - norms.size + 1
            self.set_series(name, np.arange(first, first + norms.size), norms, color=color,
                            short_name=pin_short_name(index, len(self.pins)))
        if self.pins:
            self.x_range = self._t_range(steps)

    def _t_range(self, steps: int) -> tuple[float, float]:
        """t = 1..T, and back to where a longer pinned curve starts (the axis then labelled by the
        distance from T, "T-99" .. "T": t = -89 named no step of either model); else on to where a
        longer pinned reverse-direction curve ends."""
        first = min([1] + [steps - norms.size + 1 for _, norms, from_start in self.pins if not from_start])
        self.x_from_end = "T" if first < 1 else ""
        if first < 1:  # labelled from T: a reverse direction's curve longer than T is cut there
            return float(first), float(steps)
        return 1.0, float(max([steps] + [norms.size for _, norms, from_start in self.pins if from_start]))

    def _curves(self, lab: Lab, layer: int, direction: int) -> tuple[np.ndarray, np.ndarray | None]:
        """||dL/dh_t|| and the per-step ||dW_hh|| of every step, computed once per backward pass,
        layer and direction: a key that only moves a cursor redraws them (at H=512, T=2000 the
        per-step products took 100 ms a key)."""
        from ..analysis import gradient_norms, has_recurrent_weights, step_weight_grad_norms

        dh = lab.trace["dh"]  # a new array after every backward pass
        memo = self._memo
        if not (memo and memo[0] is dh and memo[1:3] == (layer, direction)):
            norms = gradient_norms(lab.trace)[layer * lab.num_directions + direction]
            if lab.is_attention:
                dx = np.asarray(lab.grads["input"], dtype=np.float64)
                contributions = np.sqrt(np.einsum("tbi,tbi->t", dx, dx))
            elif has_recurrent_weights(lab.trace):
                contributions = step_weight_grad_norms(lab.trace, layer, direction)
            else:
                contributions = None
            self._memo = (dh, layer, direction, norms, contributions)
        return self._memo[3], self._memo[4]

    def update_from(self, lab: Lab, layer: int, direction: int) -> None:
        self.clear()
        self.short_titles = ()
        self.x_range, self.x_from_end = None, ""
        self.marker = None  # no BPTT step on this trace yet: not the last one's
        self.empty_text = "no data"
        self._draw_pinned(lab.steps)  # first: the current curve is drawn over it
        if lab.bptt_cursor is None:
            self.title = ("||dL/dh_t|| (press b to reveal the backward pass)" if lab.is_attention
                          else "||dL/dh_t|| (press b to step backward through time)")
            # the key whole where the plot is narrow (100-120 columns, beside the eigenvalue plane)
            self.short_titles = ("||dL/dh_t|| (b: backprop)" if lab.is_attention else "||dL/dh_t|| (b steps back)",
                                 "||dL/dh_t||")  # beside the eigenvalue plane at 80: "(b steps…" said no key
            return
        self.x_range = self._t_range(lab.steps)  # from the first revealed step on
        norms, contributions = self._curves(lab, layer, direction)
        shown = lab.bptt_revealed(direction)  # a reverse direction's from t = 1 up
        # short names where the long ones find no room (at 80x24 the curves took the corners, and
        # "||ΔW_hh(t)||" was left out, then "||dL/dh_t||" too)
        self.set_series("||dL/dh_t||", shown + 1, norms[shown], color="#f0a030", short_name="dL/dh_t")
        if contributions is not None:
            name, short = ("||dL/dx_t||", "dL/dx_t") if lab.is_attention else ("||ΔW_hh(t)||", "ΔW_hh")
            self.set_series(name, shown + 1, contributions[shown], color="#60a0f0", short_name=short)
        t = lab.bptt_t(direction)  # the step reached; this direction's chain began at T (a reverse one's at 1)
        self.marker = float(t) if shown.size and not lab.is_attention else None
        start = norms[-1] if direction == 0 else norms[0]
        end = "T" if direction == 0 else "1"
        if lab.is_attention:  # the reveal runs from T down, but backward computed every step at once
            self.title = "backprop (not through time): each step's gradient arrives at once, through attention"
            self.short_titles = ("backprop, all steps at once",)
            return
        # The short title says the same, in the same digits, number first: where even it is cut, the
        # cut (between words) leaves "t=28: 2.57e+02 …" rather than a number cut short.
        if shown.size and start == 0 and not np.any(norms[shown]):  # none yet: all 0, which a log scale cannot
            # draw; the title and the canvas say so (the title gave "0.00e+00" over a canvas saying "no data")
            steps = f"t={shown.min() + 1}" + (f"..{shown.max() + 1}" if shown.size > 1 else "")
            self.title = f"BPTT t={t}: ||dL/dh_t|| = 0 at {steps}: no loss there (a log scale draws no 0)"
            self.short_titles = (f"t={t}: |dh_t| = 0 at {steps}, no loss there", f"t={t}: |dh_t| = 0 at {steps}")
            self.empty_text = f"0 at {steps}: none drawn on a log scale"
        elif shown.size and start == 0:  # no loss where this direction's chain starts (a reverse direction's t=1
            # of a task scored at T): no ratio to it, the norm itself
            self.title = f"BPTT t={t}: ||dL/dh_t|| = {norms[t - 1]:.2e} (||dL/dh_{end}|| = 0: no loss there)"
            self.short_titles = (f"t={t}: {norms[t - 1]:.2e} |dh_t|, |dh_{end}| = 0",)
        else:
            ratio = norms[t - 1] / start if shown.size and start > 0 else math.nan
            self.title = f"BPTT t={t}: ||dL/dh_t|| / ||dL/dh_{end}|| = {ratio:.2e}"
            self.short_titles = (f"t={t}: {ratio:.2e} |dh_t|/|dh_{end}|",)
        if not np.all(np.isfinite(norms[shown])):
            self.title += "  (the gradient overflowed: not finite)"
            self.short_titles = (f"t={t}: overflowed",)
        elif shown.size and norms[t - 1] == 0 and start > 0:  # vanished past the dtype: a log plot has no 0
            smallest = float(np.finfo(lab.trace.dtype).smallest_subnormal)
            self.title += f"  (0 in {lab.trace.dtype.name}, whose smallest is {smallest:.1e}: zeros are not drawn)"
            self.short_titles = (f"t={t}: 0 (not drawn)",)


#: Below this terminal width the eigenvalue plane is hidden: its 30 columns at 60 left the loss
#: curve two columns wide and the gradient-norm plot none.
DECAY_PLANE_NARROWEST_TERMINAL = 80


class DecayPlane(ComplexPlane):
    """Each unit's recurrence coefficient a in h_t = a_t * h_{t-1} + b_t against the unit circle:
    the LRU's eigenvalues lambda (complex, input-independent), or minGRU's 1 - z_t and minLSTM's
    f'_t averaged over the bench sequence (real, in (0, 1)); for the leaky cell its leak 1 - a, the
    share of h_{t-1} each unit keeps (time constant tau = 1/a), slow units near 1. Hidden for rnn,
    lstm and gru, and in a terminal narrower than DECAY_PLANE_NARROWEST_TERMINAL."""

    _has_points = False

    def fit_width(self, width: int) -> None:
        """Shown where the cell has points to draw and a terminal ``width`` columns wide leaves the
        training plots their room (called at each update and on a resize)."""
        self.display = self._has_points and width >= DECAY_PLANE_NARROWEST_TERMINAL

    def update_from(self, lab: Lab, layer: int, direction: int) -> None:
        self._has_points = lab.trace.mode in ("Leaky", *LINEAR_MODES)  # (unit_decays is None for the rest)
        self.fit_width(self.app.size.width)
        where = f"l{layer}{'r' if direction else ''}"
        if lab.trace.mode == "Leaky":  # the rate a is a parameter: the same at every step
            a = np.asarray(lab.trace.get("a", layer, direction)[0, 0], np.float64)
            self.clear()  # another cell's series (an edited experiment)
            self.set_points("1−a", (1.0 - a).astype(np.complex128), color="#f06080")
            tau = 1.0 / a
            # the time constants first, which the preset is about: "leak 1−a l0: tau = 1/a 1.0..100.0
            # steps (median 9.5)" was cut in the plane's 30 columns
            taus = f"tau {tau.min():.3g}..{tau.max():.3g}"
            self.title = f"1−a {where}: {taus}, med {np.median(tau):.3g}"
            self.short_titles = (f"1−a {where}: {taus}", taus)
            return
        decays = lab.unit_decays(layer, direction)
        if decays is None:
            self.clear()
            return
        self.clear()  # another cell's series (an edited experiment)
        # the shortest forms leave the symbol to the legend beside them (and the layer to the status
        # line): at 80x24 the plane is as wide as its square of a few rows, and its header
        if lab.trace.mode == "LRU":
            self.set_points("λ", decays, color="#f06080")
            moduli = f"|λ| {np.abs(decays).min():.2f}..{np.abs(decays).max():.3f}"
            self.title, self.short_titles = f"λ {where}: {moduli}", (moduli,)
        else:
            symbol = "1−z_t" if lab.trace.mode == "MinGRU" else "f'_t"
            self.set_points(symbol, decays, color="#f06080")  # the legend names what the title does
            spread = f"{decays.real.min():.2f}..{decays.real.max():.2f}"
            self.title = f"mean {symbol} {where}: {spread}"
            self.short_titles = (f"{symbol} {where}: {spread}", spread)


@lru_cache(maxsize=8)
def _half_styles(colormap: Colormap, empty_rgb: tuple, background_rgb: tuple) -> tuple[Style, ...]:
    """Styles of every half-block cell with its upper and lower halves highlighted independently:
    index ``((hu * 2 + hl) * stride + upper) * stride + lower`` (hu, hl in {0, 1}), levels as in
    :func:`rnnlab.tui.widgets.heatmap.pair_styles` (colours, missing, empty, background)."""
    palette = [*colormap.colors, colormap.missing, empty_rgb, background_rgb]
    plain = [RichColor.from_rgb(*rgb) for rgb in palette]
    lit = [RichColor.from_rgb(*_highlighted(rgb)) for rgb in palette[:-1]] + [plain[-1]]
    return tuple(Style(color=(lit if hu else plain)[upper], bgcolor=(lit if hl else plain)[lower])
                 for hu in (0, 1) for hl in (0, 1) for upper in range(len(palette)) for lower in range(len(palette)))


class AttentionMap(Heatmap):
    """A T x T attention map: rows are query steps, columns key steps (a :class:`Heatmap` whose
    rows are steps, not units).

    ``blank`` (a boolean (T, T) mask, set with :meth:`set_attention`) cells are drawn empty: keys a
    query may not attend to (the future under a causal mask, padding) and rows not revealed yet.
    ``query_row`` is highlighted (one half-block row, so its neighbour on the same line is not), and
    the view keeps its diagonal column in sight when the map is wider than the widget.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(colormap="sequential", vmin=0.0, vmax=1.0, **kwargs)
        self._blank = np.zeros((0, 0), bool)
        self.query_row: int | None = None

    def set_attention(self, weights: np.ndarray, blank: np.ndarray, query_row: int | None, vmax: float) -> None:
        """Show ``weights`` (T, T) with ``blank`` cells empty and row ``query_row`` highlighted."""
        self._blank = np.asarray(blank, bool)
        self.query_row = query_row
        self.set_data(weights, vmin=0.0, vmax=vmax)

    def _newest_revealed(self, columns: int) -> int | None:
        return self.query_row  # the column the view follows: the query's own step, on the diagonal

    def _prepare(self) -> None:
        key = (self.size.width, self.visual_style.rich_style)
        if key == self._render_key:
            return
        super()._prepare()  # geometry, base styles and the frame's cache; the codes are rebuilt here
        cmap = self._colormap
        empty, background, stride = cmap.n_levels + 1, cmap.n_levels + 2, cmap.n_levels + 3
        start, count = self._start, self._count
        levels = self._levels[:, start:start + count].astype(np.int32)
        if self._blank.shape == self._levels.shape:
            levels[self._blank[:, start:start + count]] = empty
        upper, lower = levels[0::2], levels[1::2]
        if lower.shape[0] < upper.shape[0]:
            lower = np.vstack([lower, np.full((1, count), background, dtype=np.int32)])
        variant = np.zeros(upper.shape, np.int32)  # hu * 2 + hl
        row = self.query_row
        if row is not None and 0 <= row < self._levels.shape[0]:
            variant[row // 2] = 2 if row % 2 == 0 else 1
        self._codes = (variant * stride + upper) * stride + lower
        background_rgb = tuple(self._base_style.bgcolor.get_truecolor()) if self._base_style.bgcolor else (0, 0, 0)
        base = self._styles  # pair_styles' table: its empty colour is at level n_levels + 1
        empty_rgb = tuple(base[empty * stride + empty].color.get_truecolor())
        self._styles = _half_styles(cmap, empty_rgb, background_rgb)
        self._segments.clear()

    def query_line(self) -> int | None:
        """The content line (title and cursor line included) that holds ``query_row``."""
        return None if self.query_row is None else self._header_lines + self.query_row // 2


ATTENTION_MIN_WIDTH, ATTENTION_FRAME = 28, 4  # the panel's columns: at least; besides its map's
ATTENTION_ROOM_BESIDE = 52  # columns left to the heatmaps and the values when it widens (24 each and borders)
#: Below this many columns left beside the heatmaps and values, the panel is hidden: at 60 columns
#: its 28 left the state heatmaps one column wide.
ATTENTION_NARROWEST = 16
#: ... and at most this share of the terminal: at 160 columns a map of 100 keys took 102 and left the
#: heatmaps 25 steps (wider terminals gave them less); a longer sequence shares columns instead.
ATTENTION_MAX_SHARE = 0.4


class _MapScroll(VerticalScroll):
    """The attention map and its colour key, scrolled under the panel's header where the panel is
    shorter than they are. Not focusable, as StatePanel."""

    can_focus = False


class AttentionPanel(Vertical):
    """Self-attention only: the attention map of one block and head for the bench sequence, query
    steps as rows and key steps as columns; revealed row by row with the time cursor, the cursor
    step's row highlighted; under a causal mask the upper triangle (the future) stays empty.
    Its header (block, head, the row shown and the axes) stays in view; only the map scrolls."""

    _header: tuple[str, ...] = ()  # its lines, kept for a redraw at another width
    _steps = 0  # T of the map shown: its width follows the terminal's (fit_width)

    def fit_width(self, width: int) -> None:
        """A column per key for a terminal ``width`` columns wide: T columns besides the border,
        padding and scrollbar (ATTENTION_FRAME), as far as the heatmaps and values beside it keep
        their room (a longer sequence shares columns); hidden where even its narrowest would take
        theirs. Called at each update and as the terminal is resized (it kept its width till a key)."""
        room = width - ATTENTION_ROOM_BESIDE
        self.styles.display = "block" if room >= ATTENTION_NARROWEST else "none"
        self.styles.min_width = max(min(ATTENTION_MIN_WIDTH, room),
                                    min(self._steps + ATTENTION_FRAME, room, int(ATTENTION_MAX_SHARE * width)))

    def compose(self) -> ComposeResult:
        yield Static(id="attention-title")
        with _MapScroll(id="attention-body"):
            yield AttentionMap(id="attention-map")
            yield ColorBar(colormap="sequential", vmin=0.0, vmax=1.0, id="attention-bar")

    def update_from(self, lab: Lab, layer: int, head: int) -> None:
        self.display = lab.is_attention
        if not lab.is_attention:
            return
        weights = lab.attention_map(layer, head)
        T = weights.shape[0]
        self._steps = T
        self.fit_width(self.app.size.width)
        query, key = np.indices((T, T))
        blank = query >= lab.cursor  # rows not revealed yet
        if lab.trace.causal:
            blank |= key > query
        length = int(lab.sequence.lengths[0])
        blank |= key >= length  # padding
        cursor = time_cursor(lab)
        vmax = float(weights.max()) or 1.0
        attention_map = self.query_one(AttentionMap)
        attention_map.first_step = 1
        attention_map.set_attention(weights, blank, cursor, vmax)
        self.query_one(ColorBar).vmax = vmax
        row = (("→ reveals rows", "→ reveals") if cursor is None else
               (f"row {cursor + 1}: what step {cursor + 1} attends to", f"row {cursor + 1} attends to",
                f"row {cursor + 1}"))
        causal = lab.trace.causal
        # the map's title is the header's last line: scrolled with the map, it left the rows unnamed;
        # each line longest first, the first that fits drawn (at 80 columns the three took six rows;
        # the shortest fit the narrowest panel's 12 columns: at 68-71 the map was under its header)
        self._header = ((f"attention: block {layer}, head {head + 1}/{lab.num_heads}",
                         f"block {layer}, head {head + 1}/{lab.num_heads}", f"b{layer} h{head + 1}/{lab.num_heads}"),
                        row,
                        (f"query t ↓, key j →{' (causal)' if causal else ''}",
                         f"query ↓ key →{' causal' if causal else ''}", f"q↓ k→{' causal' if causal else ''}"))
        self._draw_header()
        self.call_after_refresh(self._follow_query)

    def _draw_header(self) -> None:
        """The header's three lines, the head keys' hint after the first where it fits (wrapped to
        a line of its own, it took a row from the map)."""
        if not self._header:
            return
        width = self.content_size.width or None
        title, row, axes = (first_fit(forms, width, forms[-1]) for forms in self._header)
        hint = "  a/A" if len(title) + 5 <= self.content_size.width else ""
        self.query_one("#attention-title", Static).update(
            Text.assemble((title, "bold"), (f"{hint}\n{row}\n", "dim"), axes))

    def on_resize(self) -> None:
        self._draw_header()

    def _follow_query(self) -> None:
        """Scroll the map so that the highlighted row stays in view."""
        attention_map = self.query_one(AttentionMap)
        line = attention_map.query_line()
        if line is None:
            return
        y = attention_map.virtual_region.y + line
        self.query_one(_MapScroll).scroll_to_region(Region(0, y, 1, 1), animate=False, immediate=True)


class TrainingPlots(Vertical):
    """Loss and global gradient norm over training steps, the clipping threshold drawn."""

    #: Training losses kept for comparison (``m``, with the gradient curves), the oldest first:
    #: (legend name, steps, losses), drawn muted under the current model's until ``M`` drops them.
    pins: list[tuple[str, np.ndarray, np.ndarray]]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pins = []

    def compose(self) -> ComposeResult:
        yield LinePlot(title="loss", log_y=True, id="loss-plot")
        yield LinePlot(title="gradient norm", log_y=True, threshold_label="clip", id="norm-plot")

    def pin(self, lab: Lab, name: str) -> None:
        """Keep ``lab``'s training loss so far (none: nothing kept) under the legend ``name``."""
        size = len(lab.history)
        if size:
            self.pins = keep_pinned(self.pins, (name, lab.history.column("step", size).copy(),
                                                lab.history.column("loss", size).copy()))

    def update_from(self, lab: Lab) -> None:
        history = lab.history
        size = len(history)  # one moment for every column: the trainer thread appends meanwhile
        steps = history.column("step", size)
        clipped = int(np.count_nonzero(history.column("clipped", size)))
        evals = lab.evals[:]
        loss_plot = self.query_one("#loss-plot", LinePlot)
        norm_plot = self.query_one("#norm-plot", LinePlot)
        loss_plot.clear()
        for index, ((name, steps_pinned, losses), color) in enumerate(zip(self.pins, PIN_COLORS)):
            # first: the current curves on top
            loss_plot.set_series(name, steps_pinned, losses, color=color,
                                 short_name=pin_short_name(index, len(self.pins)))
        baseline = lab.task.baseline()  # this model's task's (drawn under a pinned loss before it trains)
        loss_plot.threshold = baseline.loss if baseline else None
        loss_plot.threshold_label = f"{baseline.name}:" if baseline else ""  # "predict 1 0.167" read as one number
        if not size:
            norm_plot.clear()
            # not the last experiment's numbers; down to the bare names where even the key is cut
            # ("loss (t…" and "gradient…" at 80 columns beside the eigenvalue plane)
            loss_plot.title, loss_plot.short_titles = "loss (press t to train)", ("loss (t trains)", "loss")
            norm_plot.title, norm_plot.short_titles = "gradient norm", ("|g|",)
            return
        loss_plot.set_series("train", steps, history.column("loss", size), color="#e0e0e0")
        if evals:
            evaluated = "held-out" if not lab.task.eval_not_held_out else "eval (train data)"
            loss_plot.set_series(evaluated, [e.step for e in evals], [e.loss for e in evals], color="#40c040")
        last = history[size - 1]
        accuracy = "" if last.accuracy is None else f"acc {100 * last.accuracy:.0f}%"
        loss_plot.title = f"loss {last.loss:.4g}  {accuracy}".rstrip()
        loss_plot.short_titles = (f"loss {last.loss:.2g} {accuracy}".rstrip(), f"loss {last.loss:.2g}")
        norm_plot.set_series("|g|", steps, history.column("grad_norm", size), color="#f0a030")
        clip = lab.spec.train.clip_norm
        norm_plot.threshold = clip if clip > 0 else None
        norm_plot.title = (f"gradient norm {last.grad_norm:.3g}  "
                           f"(clipped {clipped} of {size} steps)")
        # A share ("28%", not "1140/4000") keeps the short title short enough for a narrow plot;
        # rounded down, and "<1%" for a few: "0%" or "100%" only where it is so.
        share = 100 * clipped / size
        share_text = "<1" if 0 < share < 1 else str(int(share))
        # where even that is cut ("|g| 0.98 0%…" in the 20 columns of 80), the norm alone
        norm_plot.short_titles = (f"|g| {last.grad_norm:.2g} {share_text}% clipped", f"|g| {last.grad_norm:.2g}")
