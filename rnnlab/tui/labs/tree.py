"""The ``treebank`` lab's screen: a recursive net computing a parse tree node by node.

Left, the tree on the bench drawn as an outline (root on top, post-order numbers, the forward
cursor ▶ and the backward cursor ◀), every computed node with a colour strip of its vector and
what the classifier makes of its phrase alone; right, the bench, the prediction and the cursor
node's equation and numbers. Below, heatmaps (units x nodes, post-order) of the node vectors,
growing as the cursor advances, and of dL/dh, growing from the root down as backpropagation
through structure steps; then the training curves (loss, train and test accuracy per epoch).
Below the minimum size (:data:`rnnlab.tui.terminal.MIN_SIZE`) a message covers the panels, as in
the main lab.

The headless :class:`~rnnlab.labs.tree.TreeLab` does all the work. Training runs in one worker
thread; the screen reads the lab's history on a timer (12 Hz) and now and then recomputes the
bench tree with the new weights.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Static
from textual.worker import Worker, WorkerState, get_current_worker

from ...data.trees import Tree
from ...errors import clipped, counted
from ...labs.tree import DEFAULTS, IN_PLACE_OPTIONS, TreeLab, option_range
from ..panels import LabView
from ..terminal import (NOTHING_TRAINING, PAUSED_NOTICE, UNTRAINED, HoldsKeysWhileTooSmall, PassKeysToDialog,
                        RefitsAfterDialogs, error_text, first_fit, fit_footer, fitted_footer, show_if_too_small,
                        take_screenshot_and_say, training_progress, trains_more, warn_without_true_colour,
                        withdraw_notices)
from ..screens import Dialog, PromptScreen, key_names, key_table
from ..widgets import ColorBar, Heatmap, LinePlot
from ..widgets.colormaps import DIVERGING
from ...labs._options import parse_assignments as parse_name_values
from . import QUIT_HELP_TRAINED, OptionsPrompt, fit_sub_title, model_stays, or_list, trained_count

REFRESH_HZ = 12      # how often the screen reads the training history while training
BENCH_EVERY = 6      # ... and recomputes the bench tree with the new weights (2 Hz)
TOP_MIN = 19        # lines of the tree panel at least (the side panel's content)
TOP_LEAST = 6        # ... and where the terminal is too short for that, still these
STRIP_MAX = 32       # at most this many units in a node's colour strip
TEXT_MIN = 16        # cells of the tree's text (outline and words) kept before a column right of it
#: The options dialog's word on an option, after the values it takes (as the seq2seq lab's dialog has one).
OPTION_NOTES = {
    "hidden_size": "units per node vector",
    "learning_rate": "Adam's",
    "epochs": "per run (t)",
    "seed": "weights, minibatch order",
    "batch_size": "trees per step",
}
#: The options a change of which builds a fresh model ("hidden_size or seed"): the others keep it.
MODEL_OPTIONS = or_list([name for name in DEFAULTS if name not in IN_PLACE_OPTIONS and name != "tree"])

# class colours: the shipped labels are (neg, pos)
CLASS_COLORS = ("#e06c75", "#98c379", "#61afef", "#e5c07b", "#c678dd", "#56b6c2")
_STRIP_STYLES = tuple(Style(color=Color.from_rgb(*rgb)) for rgb in DIVERGING.colors)
_BAR_EIGHTHS = " ▏▎▍▌▋▊▉"


def class_color(k: int) -> str:
    return CLASS_COLORS[k % len(CLASS_COLORS)]


def outline_rows(tree: Tree) -> list[tuple[int, str]]:
    """``(node, prefix)`` for every node in pre-order (root first, each left subtree before its
    right one): the box-drawing prefix that draws the tree as an indented outline::

        ┬ not truly clumsy but lovely
        ├─┬ not truly clumsy but
        │ ├─┬ not truly clumsy
        │ │ ├── not
        ...
        └── lovely
    """
    rows: list[tuple[int, str]] = []
    stack: list[tuple[int, str, bool | None]] = [(tree.root, "", None)]  # node, indent, is the right child
    while stack:
        i, indent, is_right = stack.pop()
        if is_right is None:
            prefix, child_indent = "", ""
        else:
            prefix = indent + ("└─" if is_right else "├─")
            child_indent = indent + ("  " if is_right else "│ ")
        children = tree.children(i)
        rows.append((i, prefix + ("┬ " if children else "─ ")))
        if children:
            stack.append((children[1], child_indent, True))
            stack.append((children[0], child_indent, False))
    return rows


def cap_prefix(prefix: str, limit: int, depth_width: int = 2) -> str:
    """An outline prefix (:func:`outline_rows`) in at most about ``limit`` cells: a deeper one keeps
    its last levels (the node's own connector always) behind its depth as a number, ``"25›"``
    (``depth_width`` digits, so rows line up), so a deep tree's labels stay on the panel."""
    if len(prefix) <= limit:
        return prefix
    depth = len(prefix) // 2 - 1  # the root's prefix is 2 cells, each level adds 2
    tag = f"{depth:>{depth_width}}›"
    keep = max(4, limit - len(tag))
    return tag + prefix[-(keep - keep % 2):]


def probability_bar(p: float, width: int) -> str:
    """``p`` in [0, 1] as a bar of ``width`` cells with eighth-block resolution."""
    eighths = int(round(max(0.0, min(1.0, p)) * width * 8))
    full, part = divmod(eighths, 8)
    return ("█" * full + (_BAR_EIGHTHS[part] if part else "")).ljust(width)


def _fit(text: str, width: int) -> str:
    return clipped(text, width) if width > 0 else ""


def map_title(titles: tuple[str, str, str], start: int, end: int, n: int, width: int) -> str:
    """A node heatmap's title in ``width`` cells (0: not laid out yet, the longest). ``titles``: the
    long one, the start of a window's ("node vectors h_i") and the symbol ("h_i"); ``start``-``end``
    (inclusive) the window of the ``n`` nodes shown."""
    if end - start + 1 < n:
        shown = f"{start}-{end}"
        forms = (f"{titles[1]}: nodes {shown} of {n}", f"{titles[2]}: nodes {shown} of {n}",
                 f"{titles[2]} {shown}/{n}", titles[2])
    else:
        forms = titles
    return first_fit(forms, width or None)


def range_line(first: int, last: int, total: int, width: int, lead: int) -> str:
    """The outline's ``lines first-last of total`` in ``width`` cells, after ``lead`` blank cells
    (under the node numbers) while they fit; shorter forms whole, or nothing, never a cut number."""
    shown = f"{first}-{last}"
    forms = (f"lines {shown} of {total}", f"{shown} of {total}", f"{shown}/{total}")
    text = first_fit(forms, width - lead)
    return " " * lead + text if text else first_fit(forms[-1:], width)


def status_forms(lab: TreeLab, plots_hidden: bool = False, target: int | None = None) -> list[str]:
    """The status line from its longest form to its shortest, one part shortened (or an optional
    one dropped) per step, for the screen to show the first that fits: the epoch and the training
    state stay in every form, as the plots that also say them may be hidden (``plots_hidden``:
    then the last epoch's loss and test accuracy join, while they fit). ``target``: the epoch the
    run under way trains to ("running epoch 12 of 30", as the seq2seq lab's "of" its steps)."""
    n = lab.num_nodes
    i = lab.node_index
    k = None if lab.back_cursor is None else n - lab.back_cursor
    if lab.epochs_done or lab.training:
        state, e = lab.status_shown, lab.epochs_done
        progress = training_progress(state, "epoch", e, target)  # the total given up at the first "training" step
        training = [progress[0], progress[-1], f"{state} ep {e}"]
    else:
        training = [UNTRAINED, UNTRAINED, "untrained"]
    stats = [""]
    if plots_hidden and lab.history:
        last = lab.history[-1]
        test = "" if last.test_accuracy is None else f" test {last.test_accuracy:.0%}"
        stats = [f"loss {last.loss:.3g}{test}", ""]
    parts = {
        "bench": [lab.bench_name] + ([] if lab.tree_index is None
                                     else [f"tree {lab.tree_index}/{len(lab.test_bank)}"]),
        "node": ["no node yet", "no node"] if i is None
        else [f"node {i} ({lab.cursor}/{n} computed)", f"node {i} ({lab.cursor}/{n})", f"node {i}"],
        "back": [""] if k is None else [f"backward {k}/{n}", f"back {k}/{n}"],
        "training": training, "stats": stats, "help": ["? help", ""], "sep": ["   ", "  "],
    }
    # what goes first: the loss figures and the help (the footer has it), then the wide gaps and words
    steps = ("stats", "help", "sep", "node", "back", "training", "node", "bench", "training", "training")
    at = dict.fromkeys(parts, 0)
    forms = []
    for step in (None, *steps):
        if step is not None:
            if at[step] + 1 >= len(parts[step]):
                continue
            at[step] += 1
        pick = {name: forms_[at[name]] for name, forms_ in parts.items()}
        line = pick["sep"].join(p for p in (pick["bench"], pick["node"], pick["back"], pick["training"],
                                            pick["stats"], pick["help"]) if p)
        if line not in forms:
            forms.append(line)
    return forms


# ---------------------------------------------------------------------------------------------
# panels
# ---------------------------------------------------------------------------------------------

class TreeOutline(LabView):
    """The bench tree as an outline: one line per node, root on top. A computed node shows a
    colour strip of its vector (diverging colours on [-1, 1]) and the classifier's reading of its
    phrase; after backward, ||dL/dh|| of every node reached. A window of lines follows the cursor
    when the tree is taller than the panel."""

    def refresh_view(self) -> None:
        lab: TreeLab = self._lab
        tree, n = lab.tree, lab.num_nodes
        width = max(1, self.content_size.width or 80)
        height = max(2, self.content_size.height or 20)
        h = lab.vectors()
        probs = lab.node_probabilities()
        grads = lab.gradients()
        focus = lab.node_index
        back = lab.back_cursor if lab.back_cursor is not None and lab.back_cursor < n else None

        index_width = len(str(n - 1))
        lead = 3 + index_width  # the cursors, the node's number and a space
        strip = min(lab.hidden_size, STRIP_MAX, max(8, (width - 50) // 2))
        more = lab.hidden_size > strip
        # the columns right of the tree, each dropped (last first) when the tree's text would get
        # under TEXT_MIN cells: a line never wraps, and the maps below show h and dL/dh anyway
        show_strip, show_readout, show_grads = True, True, grads is not None
        while True:
            right = (1 + strip + more) * show_strip + 9 * show_readout + 9 * show_grads
            if width - lead - right >= TEXT_MIN or not (show_strip or show_readout or show_grads):
                break
            if show_grads:
                show_grads = False
            elif show_readout:
                show_readout = False
            else:
                show_strip = False
        text_width = max(1, width - lead - right)

        text = Text(no_wrap=True, overflow="crop")
        titles = ("tree (post-order numbers: children first)", "tree (post-order)", "tree: post-order", "tree")
        heading = next((title for title in titles if len(title) <= text_width), "")
        text.append(f"{'':>{lead}}{heading:<{text_width}}", style="bold")
        if show_strip:
            units = f"h ({lab.hidden_size} units)" if strip >= 14 else f"h ({lab.hidden_size})"
            text.append(f" {units:<{strip + more}}"[: 1 + strip + more], style="bold")
        if show_readout:
            text.append(f" {'readout':<8}", style="bold")
        if show_grads:
            text.append(f" {'‖dL/dh‖':>8}", style="bold")
        text.append("\n")

        # deeper rows show their depth as a number instead; a narrow panel keeps half its text for the words
        indent = max(12, text_width // 3) if text_width >= TEXT_MIN else max(6, text_width // 2)
        depth_width = len(str(tree.height()))
        rows = [(i, cap_prefix(prefix, indent, depth_width)) for i, prefix in outline_rows(tree)]
        visible = height - 1  # below the heading; one line less when a window needs its range line
        start = 0
        if len(rows) > visible:
            visible = max(1, visible - 1)
            at = next((k for k, (i, _) in enumerate(rows) if i == (focus if focus is not None else back)), 0)
            start = min(max(0, at - visible // 2), len(rows) - visible)
        levels = DIVERGING.levels(h[:, :strip], -1.0, 1.0)
        for i, prefix in rows[start: start + visible]:
            computed = i < lab.cursor
            line_style = "on #2c3e50" if i == focus else None
            line = Text(style=line_style or "")
            line.append("▶" if i == focus else " ", style="bold #e5c07b")
            line.append("◀" if i == back else " ", style="bold #c678dd")
            line.append(f"{i:>{index_width}} ", style="dim")
            word = tree.word(i)
            label = word if word is not None else tree.phrase(i)
            body = _fit(prefix + label, text_width)
            line.append(body[: len(prefix)], style="dim")
            line.append(body[len(prefix):], style=("bold" if word is not None else "italic")
                        if computed else "dim")
            line.append(" " * (text_width - len(body)))
            if show_strip:
                line.append(" ")
                if computed:
                    for level in levels[i].tolist():
                        line.append("█", style=_STRIP_STYLES[level])
                    if more:
                        line.append("…", style="dim")
                else:
                    line.append("·" * strip + (" " if more else ""), style="dim")
            if show_readout:
                if computed:
                    k = int(np.argmax(probs[i]))
                    line.append(f" {_fit(lab.labels[k], 3):<3} {probs[i, k]:>4.0%}", style=class_color(k))
                else:
                    line.append(" " * 9)
            if show_grads:
                reached = lab.gradient_reached(i)
                value = f"{np.linalg.norm(grads[i]):>8.2g}" if reached else f"{'·':>8}"
                line.append(f" {value}", style="#c678dd" if reached else "dim")
            text.append(line)
            text.append("\n")
        if len(rows) > visible:
            text.append(range_line(start + 1, min(len(rows), start + visible), len(rows), width, lead), style="dim")
        self.update(text)


class TreeInfo(Static):
    """The bench (which tree, its label and s-expression), the prediction once the root is
    computed, the loss after backward, and the cursor node's equation and numbers.

    Where the panel is too short for all of it (80x24: seven lines), the node comes second, after the
    bench's line and the prediction's: read in order, the node's equation was below the cut, and
    stepping through a tree showed nothing of what each step computes. The s-expression (the outline
    draws the tree) and the bars come after it, for the mouse wheel."""

    def on_resize(self) -> None:
        lab = getattr(self.screen, "lab", None)
        if lab is not None:  # another width wraps the text to another number of lines
            self.update_from(lab)

    def update_from(self, lab: TreeLab) -> None:
        width = self.content_size.width
        bench, tree, verdict, bars, node = (self._bench(lab), self._tree(lab), self._verdict(lab, width),
                                            self._bars(lab, width), self._node(lab))
        prediction = Text("\n").join([verdict, bars]) if bars else verdict
        text = Text("\n").join([bench, tree, Text(), prediction, Text(), node])
        room = self.parent.content_size.height if isinstance(self.parent, Scrolled) else 0
        if room and width and len(text.wrap(self.app.console, width)) > room:
            text = Text("\n").join([bench, verdict, node, *([Text(), bars] if bars else []), Text(), tree])
        self.update(text)

    @staticmethod
    def _bench(lab: TreeLab) -> Text:
        text = Text(lab.bench_name, style="bold")
        label = lab.tree.label
        if label is not None:
            text.append("  label ")
            text.append(label, style=f"bold {class_color(lab.labels.index(label))}")
        else:
            text.append("  no label", style="dim")
        return text

    @staticmethod
    def _tree(lab: TreeLab) -> Text:
        text = Text(lab.tree.to_sexpr(), style="italic")
        return text.append(f"\n{counted(lab.num_nodes, 'node')}, height {lab.tree.height()}", style="dim")

    @staticmethod
    def _verdict(lab: TreeLab, width: int) -> Text:
        """The prediction's heading: the formula, and once the root is computed the predicted class and
        whether it is the label's (at 80x24 the bars below were cut after the first class, and a tree
        predicted pos showed "neg 44.8%" alone under "prediction")."""
        n = lab.num_nodes
        heading = Text("prediction ", style="bold")
        formula = f"softmax(W_o h_{n - 1} + b_o)"
        if lab.cursor < n:
            # hints short enough for the side panel's 36 columns: a wrapped one ran under the margin
            return heading.append(formula, style="dim").append("\n  needs the root (End computes it)", style="dim")
        probs = lab.probabilities()
        best = int(np.argmax(probs))
        heading.append(f"{lab.labels[best]} {probs[best]:.1%}", style=f"bold {class_color(best)}")
        if lab.tree.label is not None:
            hit = lab.labels[best] == lab.tree.label
            heading.append(" ✓ label" if hit else " ✗ label", style="green" if hit else "red")
        if not width or heading.cell_len + 2 + len(formula) <= width:
            heading.append(f"  {formula}", style="dim")
        return heading

    @staticmethod
    def _bars(lab: TreeLab, width: int) -> Text:
        """A bar per class once the root is computed, and the loss once backward has run."""
        lines = []
        if lab.cursor >= lab.num_nodes:
            probs = lab.probabilities()
            best = int(np.argmax(probs))
            bar = max(6, min(20, (width or 60) - 27))
            for k, (name, p) in enumerate(zip(lab.labels, probs)):
                line = Text(f"  {_fit(name, 6):<6} ", style="bold" if k == best else "")
                line.append(probability_bar(float(p), bar), style=class_color(k))
                lines.append(line.append(f" {p:6.1%}"))
        if lab.loss is not None:
            target, why = lab.target()
            line = Text(f"  loss -log p({lab.labels[target]}) = {lab.loss:.4g}")
            lines.append(line.append(f" (target = {why})", style="dim"))
        return Text("\n").join(lines)

    @staticmethod
    def _node(lab: TreeLab) -> Text:
        i = lab.node_index
        if i is None:
            return Text("no node yet: → computes node 0", style="dim")
        node = lab.node(i)
        text = Text(f"node {i}", style="bold #e5c07b")
        text.append(f" of {lab.num_nodes}  ", style="dim")
        text.append(_fit(node.phrase, 60) + "\n", style="italic")
        text.append(f"  {node.equation}\n")
        if node.child_inputs is not None:
            left, right = node.children
            text.append(f"  ‖W_L h_{left}‖ {node.child_inputs[0]:.3g}   "
                        f"‖W_R h_{right}‖ {node.child_inputs[1]:.3g}\n")
        text.append(f"  ‖h_{i}‖ {np.linalg.norm(node.h):.3g}   max |h| {np.abs(node.h).max():.3g}"
                    f" (unit {int(np.abs(node.h).argmax())})\n")
        k = int(np.argmax(node.probabilities))
        text.append("  as a sentence: ")
        text.append(f"{lab.labels[k]} {node.probabilities[k]:.0%}", style=class_color(k))
        if node.dh is not None:
            text.append(f"\n  ‖dL/dh_{i}‖ {np.linalg.norm(node.dh):.3g}", style="#c678dd")
        elif lab.back_cursor is not None:
            text.append("\n  dL/dh has not reached it yet (b)", style="dim")
        return text


class TreeHelpScreen(Dialog[None]):
    """Every key of the treebank lab, read from the screen's bindings so it cannot drift."""

    DEFAULT_CSS = """
    TreeHelpScreen {
        align: center middle;
    }
    TreeHelpScreen > VerticalScroll {
        width: 80;  /* as the seq2seq lab's: at 80 columns no column of the lab shows beside it */
        max-width: 100%;
        height: 80%;
        border: round $primary;
        background: $surface;
        padding: 1 2;
    }
    """
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "close")]

    def __init__(self, keys: list[tuple[str, str]], words: tuple[str, ...] | list[str] = ()) -> None:
        super().__init__()
        self._keys = keys
        self._words = words

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="tree-help"):
            yield Static("[b]treebank lab: keys[/b]\n", markup=True)
            yield Static(key_table(self._keys))
            yield Static(
                "\nThe net computes a tree bottom-up, in post-order: a leaf is its word's embedding, "
                "an internal node h = tanh(W [h_left; h_right] + b); the root's vector is classified. "
                "Backward, dL/dh flows from the root down to every node. Click a heatmap column to put "
                "the cursor on that node. Type a tree like ((good but) dull), optionally after its "
                "label: pos ((dull but) good). In a deep tree the outline indents a third of the panel at "
                "most; a deeper row starts with its depth, 25›.", classes="dim")
            if self._words:  # a typed tree's words must be among them: the error names only a few
                yield Static(f"\nThe model knows {len(self._words)} words: {', '.join(self._words)}.",
                             classes="dim", id="tree-help-words")
            yield Static("\nEsc closes this.", classes="dim")  # last, as the other labs' helps end


class Scrolled(VerticalScroll):
    """A panel that scrolls with the mouse wheel but never takes the focus: the screen's keys
    (arrows, home, end) stay the screen's even when the panel overflows (a deep tree's info)."""

    can_focus = False


class NodeHeatmap(Heatmap):
    """A heatmap of units x nodes that tells the screen when its width changes (the screen
    shows the window of nodes that fits, see :meth:`TreeLabScreen._draw_map`); ``first_node`` is the
    node of its first column."""

    class Resized(Message):
        """The map's size changed."""

    first_node = 0

    def on_resize(self) -> None:  # (Heatmap's own on_resize runs too)
        self.post_message(self.Resized())


#: Titles of the two heatmaps (see :func:`map_title`): all nodes shown, the start of the title of
#: a window of them, and the shortest.
H_MAP_TITLES = ("node vectors h_i (units × nodes, post-order)", "node vectors h_i", "h_i")
DH_MAP_TITLES = ("dL/dh_i (backward: from the root down)", "dL/dh_i (root down)", "dL/dh_i")


class StatusLine(Static):
    """The status line: shows the first of its forms (longest first) that fits its width, again
    on a resize, then the last error after it; an error that cannot fit whole is cut with "…"."""

    _forms: list[str] = [""]
    _message = ""

    def show(self, forms: list[str], message: str = "") -> None:
        self._forms, self._message = forms, message
        self._pick()

    def on_resize(self) -> None:
        self._pick()

    def _pick(self) -> None:
        width = self.content_size.width
        message = f"   {self._message}" if self._message else ""
        # not laid out yet: the longest; too narrow for any form beside the message: the shortest
        base = first_fit(self._forms, width - len(message) if width else None, fallback=self._forms[-1])
        text = Text(base, no_wrap=True, overflow="ellipsis")
        if message:
            text.append(message, style="bold red")
        if width:
            text.truncate(width, overflow="ellipsis")
        self.update(text)


# ---------------------------------------------------------------------------------------------
# the screen
# ---------------------------------------------------------------------------------------------

class TreeLabScreen(HoldsKeysWhileTooSmall, PassKeysToDialog, RefitsAfterDialogs, Screen[None]):
    """The treebank lab (``python -m rnnlab.tui.labs treebank``)."""

    CSS_PATH = "tree.tcss"

    BINDINGS = [
        # the footer shows the keys that fit 80 columns, named as in the main lab; ? lists every one
        Binding("right,l", "step_forward", "forward", key_display="→"),
        Binding("left,h", "step_back", "back", key_display="←"),
        Binding("home,g", "first_leaf", "first leaf", show=False),
        Binding("end,G", "root", "root", key_display="End"),
        Binding("b", "backward_step", "backprop"),
        Binding("B", "backward_all", "backprop all", show=False),
        Binding("t", "train_toggle", "train/pause"),
        Binding("s", "train_stop", "stop", show=False),
        Binding("n,pagedown", "next_tree", "next tree"),
        Binding("N,pageup", "previous_tree", "prev tree", show=False),
        Binding("i", "type_tree", "type tree", show=False),
        Binding("e", "edit", "options", show=False),
        Binding("x", "export", "export", show=False),
        Binding("p", "screenshot", "screenshot", show=False),
        Binding("question_mark,f1", "help", "help"),
    ]

    def __init__(self, lab: TreeLab) -> None:
        super().__init__()
        self.lab = lab
        self._ticks = 0
        self._seen_history = -1
        self.message = ""  # the last error, shown in the status line until the next action
        self._train_target: int | None = None  # the epoch the run under way trains to (the status line's total)
        self._round_notice = ""  # what t said of a round on a trained model: withdrawn as it ends

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="tree-lab"):
            with Horizontal(id="tree-top"):
                yield TreeOutline(id="tree-outline")
                with Scrolled(id="tree-side"):
                    yield TreeInfo(id="tree-info")
            with Horizontal(id="tree-maps"):
                with Scrolled(classes="tree-map"):
                    yield ColorBar("diverging", -1.0, 1.0, id="tree-bar-h")
                    yield NodeHeatmap(title=H_MAP_TITLES[0], id="tree-map-h")
                with Scrolled(classes="tree-map"):
                    yield ColorBar("diverging", -1.0, 1.0, id="tree-bar-dh")
                    yield NodeHeatmap(title=DH_MAP_TITLES[0], id="tree-map-dh")
            with Horizontal(id="tree-plots"):
                yield LinePlot(title="loss per epoch", id="tree-loss")
                yield LinePlot(title="accuracy per epoch", id="tree-accuracy")
            yield StatusLine(id="tree-status")
        yield Static(id="too-small")  # styled by lab.tcss, as the main lab's and the ESN lab's
        yield fitted_footer(self.app)

    def on_mount(self) -> None:
        self.query_one("#tree-map-dh", Heatmap).reveal_from_end = True
        self.update_views()
        self.set_interval(1 / REFRESH_HZ, self._tick)
        warn_without_true_colour(self.app, "the vectors' colours need")

    def on_resize(self, event: events.Resize) -> None:
        show_if_too_small(self, *event.size)
        fit_footer(self, event.size.width)
        self._fit_sub_title(event.size.width)
        self._fit_layout()
        self.update_status()  # -tiny may have changed, and with it the status line's parts
        # the side panel's new height may hold all of its text, or no longer (its order: TreeInfo)
        self.call_after_refresh(lambda: self.query_one(TreeInfo).update_from(self.lab))

    def _fit_sub_title(self, width: int) -> None:
        lab = self.lab
        model = f"treebank: recursive net, H={lab.hidden_size}"
        fit_sub_title(self, width, f"{model}, {len(lab.vocab)} words, {len(lab.train_bank)} training trees",
                      f"{model}, {len(lab.vocab)} words, {len(lab.train_bank)} trees", model, "treebank")

    def _fit_layout(self) -> None:
        """Give the tree the lines it needs (at least the side panel's), the plots the rest; small
        terminals (under 40 lines) get shorter heatmaps and plots so the tree keeps some room, and
        where even those leave the tree under TOP_LEAST lines the plots are hidden (the status line
        says the training state and the epoch, and the last loss and test accuracy where they fit:
        :func:`status_forms`)."""
        height = self.size.height
        if not height:
            return
        compact = height < 40
        self.set_class(compact, "-compact")
        maps = min(8 if compact else 14, math.ceil(self.lab.hidden_size / 2) + 4)
        plots = 6 if compact else 10
        tiny = height - 3 - maps - plots < TOP_LEAST  # 3: the header, the status line and the footer
        self.set_class(tiny, "-tiny")
        top = min(max(self.lab.num_nodes + 2, TOP_MIN), height - 3 - maps - (0 if tiny else plots))
        self.query_one("#tree-top").styles.height = max(TOP_LEAST, top)

    # ------------------------------------------------------------------ drawing
    def update_views(self) -> None:
        """Redraw every panel from the lab."""
        self._fit_sub_title(self.size.width)
        self._fit_layout()
        self.update_bench()
        self.update_plots()
        self.update_status()

    def update_bench(self) -> None:
        """The tree, the prediction and the two heatmaps."""
        lab = self.lab
        n = lab.num_nodes
        self.query_one(TreeOutline).update_from(lab)
        self.query_one(TreeInfo).update_from(lab)
        focus = lab.node_index if lab.node_index is not None else 0
        vectors = lab.vectors()
        # at least [-1, 1] (the composed nodes are tanh's); the leaves' embeddings may go past it,
        # and at a fixed 1 their columns were one saturated colour
        h_scale = max(1.0, float(np.abs(vectors).max(initial=0.0)))
        self._draw_map("#tree-map-h", vectors.T, h_scale, revealed=lab.cursor, cursor=lab.node_index,
                       focus=focus, titles=H_MAP_TITLES)
        h_bar = self.query_one("#tree-bar-h", ColorBar)
        h_bar.vmin, h_bar.vmax = -h_scale, h_scale
        grads = lab.gradients()
        if grads is None:
            scale = 1.0
            self._draw_map("#tree-map-dh", np.zeros((lab.hidden_size, n)), scale, revealed=0, cursor=None,
                           focus=focus, titles=DH_MAP_TITLES)
        else:
            scale = float(np.abs(grads).max()) or 1.0
            back = lab.back_cursor if lab.back_cursor < n else None
            self._draw_map("#tree-map-dh", grads.T, scale, revealed=n - lab.back_cursor, cursor=back,
                           focus=back if back is not None else focus, titles=DH_MAP_TITLES)
        bar = self.query_one("#tree-bar-dh", ColorBar)
        bar.vmin, bar.vmax = -scale, scale

    def _draw_map(self, selector: str, data: np.ndarray, scale: float, *, revealed: int, cursor: int | None,
                  focus: int, titles: tuple[str, str, str]) -> None:
        """A heatmap of ``data`` (units x nodes). More nodes than the map is wide: a window of
        them around ``focus``, titled with its node range (the widget itself would say "t")."""
        heatmap = self.query_one(selector, NodeHeatmap)
        n = data.shape[1]
        width = heatmap.size.width
        start, count = 0, n
        if 0 < width < n:
            count = width
            start = min(max(0, focus - count // 2), n - count)
        end = start + count
        heatmap.set_data(data[:, start:end], -scale, scale)
        heatmap.first_step = start
        heatmap.first_node = start
        if heatmap.reveal_from_end:  # revealed counts the last columns: those of the window at or after n - revealed
            heatmap.revealed = max(0, min(count, end - max(0, n - revealed)))
        else:
            heatmap.revealed = max(0, min(count, revealed - start))
        heatmap.cursor = cursor - start if cursor is not None and start <= cursor < end else None
        heatmap.title = map_title(titles, start, end - 1, n, width)

    def update_plots(self) -> None:
        lab = self.lab
        history = list(lab.history)
        self._seen_history = len(history)
        epochs = [s.epoch for s in history]
        loss = self.query_one("#tree-loss", LinePlot)
        loss.set_series("loss", epochs, [s.loss for s in history], color="#e5c07b")
        accuracy = self.query_one("#tree-accuracy", LinePlot)
        accuracy.set_series("train", epochs, [s.train_accuracy for s in history], color="#61afef")
        accuracy.set_series("test", epochs, [np.nan if s.test_accuracy is None else s.test_accuracy
                                             for s in history], color="#98c379")
        if history:
            last = history[-1]
            loss.title = f"loss per epoch ({last.loss:.3g})"
            test = "" if last.test_accuracy is None else f", test {last.test_accuracy:.0%}"
            accuracy.title = f"accuracy per epoch (train {last.train_accuracy:.0%}{test})"
            # where the title does not fit (80 columns: half a terminal), the same numbers, not "test…"
            loss.short_titles = (f"loss {last.loss:.3g}",)
            accuracy.short_titles = (f"train {last.train_accuracy:.0%}{test}",)
        else:
            loss.title = "loss per epoch (t trains)"
            accuracy.title = "accuracy per epoch"
            loss.short_titles = accuracy.short_titles = ()

    def update_status(self) -> None:
        self.query_one(StatusLine).show(status_forms(self.lab, self.has_class("-tiny"), self._train_target),
                                        self.message)

    def _tick(self) -> None:
        """While training: the plots and status from the lab's history, and every few ticks the
        bench tree recomputed with the new weights."""
        lab = self.lab
        self.app.follow_quit_warning()  # the first q's count, as training goes on (the main lab's too)
        if not lab.training:
            return
        self._ticks += 1
        if len(lab.history) != self._seen_history:
            self.update_plots()
        if self._ticks % BENCH_EVERY == 0:
            lab.refresh()
            self.update_bench()
        self.update_status()

    def _done(self) -> None:
        """After an action: clear the last error, redraw."""
        self.message = ""
        self.update_views()

    # ------------------------------------------------------------------ the cursors
    def action_step_forward(self) -> None:
        self.lab.step_forward()
        self._done()

    def action_step_back(self) -> None:
        self.lab.step_back()
        self._done()

    def action_first_leaf(self) -> None:
        self.lab.jump_first_leaf()
        self._done()

    def action_root(self) -> None:
        self.lab.jump_root()
        self._done()

    def action_backward_step(self) -> None:
        self.lab.backward_step()
        self._done()

    def action_backward_all(self) -> None:
        self.lab.backward_all()
        self._done()

    @on(Heatmap.ColumnClicked)
    def column_clicked(self, event: Heatmap.ColumnClicked) -> None:
        self.lab.move_to(getattr(event.heatmap, "first_node", 0) + event.column)
        self._done()

    @on(NodeHeatmap.Resized)
    def map_resized(self) -> None:
        self.update_bench()  # the window of nodes that fits the new width

    # ------------------------------------------------------------------ trees
    def action_next_tree(self) -> None:
        self.lab.next_tree()
        self._done()

    def action_previous_tree(self) -> None:
        self.lab.previous_tree()
        self._done()

    def action_type_tree(self) -> None:
        lab = self.lab
        current = lab.tree.to_sexpr()
        if lab.tree.label is not None:
            current = f"{lab.tree.label} {current}"
        self.app.push_screen(
            PromptScreen("Type a tree: (A B) joins two subtrees; optionally its label first", current,
                         lab.type_tree, placeholder="pos ((dull but) good)"),
            lambda tree: tree is not None and self._done())

    # ------------------------------------------------------------------ training
    def action_train_toggle(self) -> None:
        lab = self.lab
        if lab.stop_requested:
            self.notify("training is stopping: the epoch under way finishes first", timeout=2)
        elif lab.training_status == "running":
            lab.pause_training()
            self.notify(PAUSED_NOTICE)
        elif lab.training_status == "paused":
            lab.resume_training()
            withdraw_notices(self.app, PAUSED_NOTICE)  # it runs again: the toast must not say paused for seconds more
        else:
            self.message = ""
            # how the last run ended (a toast for 5 s) read as this one's state: "training stopped" over "running"
            withdraw_notices(self.app, *(f"training {status} at epoch" for status in ("completed", "stopped")))
            done, more = lab.epochs_done, lab.options["epochs"]
            self._train_target = done + more
            if done:  # a round more, said (the main lab's words); a fresh model's status line says "of 30"
                self._round_notice = trains_more(done, more, "epoch")
                self.notify(self._round_notice)
            lab.mark_running()  # at once: e (options) is refused from now, not once the worker starts
            self._train(more)
        self.update_status()

    def action_train_stop(self) -> None:
        if self.lab.training:
            self.lab.stop_training()
            self.update_status()
        else:  # said, as the main lab says it: s did nothing visible
            self.notify(NOTHING_TRAINING, timeout=2)

    @work(thread=True, exclusive=True, group="tree-train", exit_on_error=False)
    def _train(self, epochs: int) -> None:
        worker = get_current_worker()
        self.lab.train(epochs=epochs, should_stop=lambda: worker.is_cancelled)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The workers' ends, in one place: errors shown inline, the views brought up to date."""
        if event.worker.group != "tree-train":
            return
        lab = self.lab
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            what = error_text(error)
            self.message = f"training failed: {' '.join(what.split())}"
            self.notify(self.message, severity="error", timeout=10)
        elif event.state in (WorkerState.SUCCESS, WorkerState.CANCELLED):
            withdraw_notices(self.app, PAUSED_NOTICE, self._round_notice)  # of a training that has ended
            if lab.training_status == "diverged":
                self.message = f"training diverged: {lab.training_message}"
                self.notify(self.message, severity="error", timeout=10)
            else:
                self.notify(f"training {lab.training_status} at epoch {lab.epochs_done}")
        else:
            return
        lab.refresh()
        self.update_views()

    def _refuse_while_training(self) -> bool:
        if self.lab.training:
            self.notify("stop training first (s)", severity="warning")
            return True
        return False

    def unsaved_work(self) -> str:
        """What quitting would lose ("30 trained epochs"; "" when untrained): the lab cannot save a
        model, so the app asks for a second q (:meth:`~rnnlab.tui.labs.LabScreenApp.action_quit`)."""
        return trained_count(self.lab.epochs_done, "epoch")

    def action_edit(self) -> None:
        if self._refuse_while_training():
            return
        lab = self.lab

        def changed(text: str) -> dict:
            """The options the text would change, checked by the lab (UserError naming a bad one)."""
            wanted = parse_assignments(text)
            lab.check_options(wanted)
            return {name: value for name, value in wanted.items() if lab.options.get(name) != value}

        def accept(text: str) -> dict:
            """The changes applied, and whether they built a fresh model (IN_PLACE_OPTIONS alone keep it)."""
            changes = changed(text)
            return {"changes": changes, "rebuilt": bool(changes) and lab.reconfigure(changes)}

        def applied(done: dict | None) -> None:
            if done is None:
                return
            if done["rebuilt"]:
                self._seen_history = -1
                self._done()
                self.notify(f"a fresh model: H={lab.hidden_size}, learning rate {lab.options['learning_rate']}")
            elif done["changes"]:
                self._done()
                self.notify(model_stays(done["changes"], trained_count(lab.epochs_done, "epoch")))
            else:
                self.notify("options unchanged: the model stays")

        names = [name for name in DEFAULTS if name != "tree"]  # the bench tree has keys of its own (n, i)
        rows = [(name, str(lab.options[name]), f"{option_range(name)}  {OPTION_NOTES.get(name, '')}".rstrip())
                for name in names]
        in_place = [name for name in names if name in IN_PLACE_OPTIONS]
        self.app.push_screen(OptionsPrompt(f"Options: name=value ... (a fresh model for {MODEL_OPTIONS})", rows,
                                           " ".join(f"{name}={lab.options[name]}" for name in names), accept,
                                           lost=trained_count(lab.epochs_done, "epoch"),
                                           changes=lambda text: lab.rebuilds(changed(text)), kept=in_place), applied)

    # ------------------------------------------------------------------ files
    def action_export(self) -> None:
        lab = self.lab

        def accept(text: str, replace: bool = False) -> Path:  # a file that cannot be written: PromptScreen shows why
            return lab.export(text, replace=replace).absolute()

        self.app.push_screen(
            PromptScreen("Export the bench tree's vectors, dL/dh, weights and history to", lab.export_name, accept),
            lambda path: path and self.notify(f"exported to {path}"))

    def action_screenshot(self) -> None:
        take_screenshot_and_say(self)

    HELP = {  # the help's longer word on each action (the footer's descriptions are short, to fit 80 columns)
        "step_forward": "compute the next node (children first)",
        "step_back": "take the last node computed back",
        "first_leaf": "back to the first leaf (node 0)",
        "root": "compute every node up to the root",
        "backward_step": "dL/dh one node further, from the root down",
        "backward_all": "dL/dh through the whole tree",
        "train_toggle": "train (another run of epochs), pause, resume",  # as the seq2seq lab's help says them
        "train_stop": "stop training",
        "next_tree": "the next test tree on the bench",
        "previous_tree": "the previous test tree",
        "type_tree": "type a tree, e.g. pos ((dull but) good)",
        "edit": f"name=value; {MODEL_OPTIONS}: a fresh model",
        "export": "vectors, dL/dh, weights, history (.npz)",
        "screenshot": "save an SVG screenshot",
    }

    def action_help(self) -> None:
        keys = [(key_names(b.key),
                 b.description + (f": {self.HELP[b.action]}" if b.action in self.HELP else ""))
                for b in self.BINDINGS]
        keys.append(QUIT_HELP_TRAINED)  # a click is in the text below, as the other labs' helps say it
        self.app.push_screen(TreeHelpScreen(keys, self.lab.vocab.words))


def parse_assignments(text: str) -> dict:
    """``"hidden_size=32 learning_rate=0.02"`` -> ``{"hidden_size": 32, "learning_rate": 0.02}``
    (the labs' ``name=value`` text; UserError for a piece that is not ``name=value``, a name given
    twice or an unknown one; the values are the lab's to check)."""
    return parse_name_values(text, [k for k in DEFAULTS if k != "tree"], example="hidden_size=16")
