"""Labs for the architectures that are not a sequence model trained step by step on a task.

The main :class:`~rnnlab.lab.Lab` drives recurrent networks (RNN, LSTM, GRU and their kin) on a
sequence task. Echo state networks (fit in closed form), recursive nets (trees, not sequences)
and encoder-decoders (an output sequence of its own length) each get a lab of their own here: a
headless engine holding the model, its data and cursors, with methods for every action its view
offers. Like the main Lab, these modules never import textual or rich; their views live in
:mod:`rnnlab.tui.labs`.

:data:`LABS` maps each lab's name (what ``rnnlab tui NAME`` opens) to ``"module:Class"``,
imported only when that lab is opened.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from ..errors import UserError, abbreviated, clipped, closest_name

#: name -> "module:Class" of the engine; each class has ``open(options: dict | None) -> instance``.
LABS: dict[str, str] = {
    "treebank": "rnnlab.labs.tree:TreeLab",
    "seq2seq": "rnnlab.labs.seq2seq:Seq2SeqLab",
    "esn": "rnnlab.labs.esn:EsnLab",
}


#: name -> what the lab shows (one line, for `rnnlab presets` and help texts).
DESCRIPTIONS: dict[str, str] = {
    "esn": "Echo state network on Mackey-Glass: reservoir states, eigenvalues against the unit circle, "
           "one-step and free-running forecasts as the spectral radius and leak rate change",
    "seq2seq": "Encoder-decoder reversing digits: decode step by step and watch the attention matrix "
               "turn anti-diagonal; without attention, long inputs fail (past the trained lengths, both do)",
    "treebank": "Recursive net on a sentiment treebank where structure decides: step through a tree node "
                "by node, forward and backward through structure",
}


def unknown_name(what: str, name: Any, known: Sequence[str], where: str = "", longest: int | None = 16) -> str:
    """One line for a name that is not among ``known``: the name (and ``where``, e.g. " at column 3"),
    then the known names where they are few and short, else their count and the closest (or the
    first few): ``unknown option 'unit' (14 known; did you mean 'units'?)``. Never the whole list
    of a long vocabulary, which would wrap a dialog's message over several lines. The name is cut to
    ``longest`` characters (a paste in a dialog's field); None: whole (a name typed on a command line)."""
    text = str(name)
    shown = repr(text if longest is None else clipped(text, longest))
    listed = ", ".join(known)
    # "GOOD" is "good" typed in capitals; an option's abbreviation ("lr") is no misspelling of its name
    match = (abbreviated(text, known) if what == "option" else None) or closest_name(text, known)
    close = [match] if match is not None else []
    if len(listed) <= 40 and not close:
        return f"unknown {what} {shown}{where} (known: {listed})"
    hint = f"did you mean {close[0]!r}?" if close else f"e.g. {', '.join(known[:3])}"
    return f"unknown {what} {shown}{where} ({len(known)} known; {hint})"


def lab_class(name: str) -> Any:
    """The engine class of lab ``name`` (UserError naming the known labs if there is none)."""
    if name not in LABS:
        raise UserError(f"unknown lab {name!r} (known: {', '.join(LABS) or 'none'})")
    module, _, cls = LABS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def export_target(path: Any, example: str, *, replace: bool) -> Any:
    """``path`` as the place to write a lab's export file (:func:`~rnnlab.train.rundir.npz_target`), a
    directory refused as one with a file in it to give instead (``example``: the lab's own name for it):
    ``/tmp is a directory: name the export file in it, e.g. /tmp/esn.npz``."""
    from ..train.rundir import npz_target  # (imported when exporting: listing the labs needs none of it)

    return npz_target(path, "export file", replace=replace, example=example)
