"""Errors a user can cause, and so must read as one line naming what is wrong.

Views catch :class:`UserError` and show its message (the CLI on stderr with exit status 2, the TUI
inline); anything else escaping is a bug in rnnlab. Each subclass is also a ``ValueError`` so library
callers can catch the usual type.
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
import stat
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


class UserError(ValueError):
    """Bad input from the user: a spec, a data file, a run directory, an argument."""


class SpecError(UserError):
    """An experiment spec field has a bad value; ``field`` is its dotted name (``train.optimizer``).
    ``refused``: how the message's "got ..." writes a number out of range, for a view that has the
    text the user typed to put there instead (``--set train.learning_rate=1e2``: "got 1e2")."""

    def __init__(self, field: str, message: str, refused: str | None = None) -> None:
        self.field = field
        self.message = message
        self.refused = refused
        super().__init__(f"{field}: {message}" if field else message)


class DataError(UserError):
    """A data file cannot be used: unreadable, empty, ragged, not UTF-8, non-finite values."""


class TargetExistsError(UserError):
    """A file to be written exists and the caller asked not to replace it. Views say how to replace
    it (the CLI's ``--force``, the TUI's second Enter)."""

    def __init__(self, path) -> None:
        self.path = path
        super().__init__(f"{path} already exists")


class RunDirError(UserError):
    """A path given as a run directory is not one (or is damaged)."""


class WriteFailed(OSError):
    """A file could not be written for a reason that is not the user's input: a full disk, a quota,
    an I/O error. Not a :class:`UserError`: the CLI shows its one line and exits with status 1.
    Built as ``WriteFailed(errno, strerror, path)``."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


def special_file(path: str | os.PathLike) -> str | None:
    """What ``path`` is, where it exists and is neither a regular file nor a directory: "a named
    pipe", "a device", "a socket". Such a file read as data never ends (a pipe with no writer, or
    ``/dev/zero`` filling memory): the readers refuse it by this name. None otherwise."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return special_kind(mode)


def special_kind(mode: int) -> str | None:
    """:func:`special_file` of a file whose ``st_mode`` is known already."""
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


def number_or_dash(value: float | None, spec: str = ".4g") -> str:
    """``value`` formatted by ``spec`` for a table, "-" where there is none or it is not finite (a
    diverged loss): the views' one way of writing a number that may be missing. A zero is never signed: a
    negative zero, or a tiny negative rounded to zero digits, read "-0" or "-0.000e+00"."""
    return "-" if value is None or not math.isfinite(value) else _unsigned_zero(format(value, spec))


def percent_or_dash(value: float | None) -> str:
    """A fraction as "93.3%", "-" where there is none or it is not finite (a zero unsigned: never "-0.0%")."""
    return "-" if value is None or not math.isfinite(value) else _unsigned_zero(f"{100 * value:.1f}") + "%"


def _unsigned_zero(text: str) -> str:
    """``text``, a formatted number, without its minus sign where its digits are all zeros ("-0.00", "-0e+00")."""
    digits = text.lower().partition("e")[0]
    return text[1:] if text.startswith("-") and not any(d in "123456789" for d in digits) else text


def clipped(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, the last an ellipsis, for a one-line message (a paste
    or a 400-digit number would fill a dialog)."""
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"


#: How a refused number past a float's range is said ("got ..."): its digits would fill the line.
TOO_LARGE_FOR_A_FLOAT = "an integer beyond a float's range (about 1.8e308)"


def counted(n: int, noun: str) -> str:
    """``1 thread``, ``2 threads``: a count with its noun, plural but for one."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def whole_number(value: Any) -> Any:
    """``value`` as an int where it is a float with an integer value an int holds exactly (below
    2**53: ``1e2``, ``100.0``), else ``value`` as it is: the one rule by which every integer field and
    option takes a whole number written as a float."""
    if isinstance(value, (float, np.floating)) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def number_text(value: float) -> str:
    """A number as every message writes it, a bound and the value refused beside it alike (``[0, 1e+06]``,
    ``got 1e+07``, not ``got 10000000``): an integer whole (a seed's bound 2**63 - 1, never "9.22337e+18");
    a float in the shortest of its exact forms, ``:g``'s first (``-1``, not ``-1.0``: an option typed ``-1``
    reads back so; ``0.5``, ``1e+06``, ``1e-05``), its digits where it is whole (``1234567``), Python's
    (``-1.2345678e-05``, which ``:g`` rounds; ``5e-324``)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    value = float(value)
    if not math.isfinite(value):
        return repr(value)
    whole = [str(int(value))] if value.is_integer() and abs(value) < 1e15 else []  # (not 22 digits of 2.0**70)
    forms = [f"{value:g}", *whole, repr(value)]
    return min((form for form in forms if float(form) == value), key=len)


def range_words(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    """The values a bounded number takes, as its errors word them after "must be": "between 2 and
    100000" (both ends allowed), "greater than 0 and at most 10", "at least 1", "less than 1";
    "any value" without bounds (an infinite bound is none)."""
    low = None if low is None or low == -math.inf else low
    high = None if high is None or high == math.inf else high
    above = None if low is None else f"{'greater than' if low_open else 'at least'} {number_text(low)}"
    below = None if high is None else f"{'less than' if high_open else 'at most'} {number_text(high)}"
    if above and below:
        closed = not (low_open or high_open)
        return f"between {number_text(low)} and {number_text(high)}" if closed else f"{above} and {below}"
    return above or below or "any value"


#: Short names an option goes by elsewhere (papers, other libraries) -> rnnlab's names (the labs' options,
#: the CLI's flags, the spec's fields), for a "did you mean": ``rho=0.9`` is ``spectral_radius``, as α is
#: the leak rate of Lukoševičius's guide to ESNs. Names of initials (``lr``, ``bs``, ``sr``) are found
#: without a table (:func:`abbreviated`).
ABBREVIATIONS: dict[str, str] = {
    "rho": "spectral_radius", "radius": "spectral_radius", "alpha": "leak_rate",
    "reg": "ridge", "l2": "ridge", "density": "connectivity",
    "iters": "steps", "iterations": "steps",
}


def abbreviated(name: str, known: Sequence[str]) -> str | None:
    """The one of ``known`` (option names) that ``name`` abbreviates: by :data:`ABBREVIATIONS`, or as the
    initials of a name of several words (``lr``: ``learning_rate``, ``bs``: ``batch_size``), else None."""
    name = name.lower().replace("-", "_")
    if ABBREVIATIONS.get(name) in known:
        return ABBREVIATIONS[name]
    initials = [k for k in known if "_" in k and "".join(word[:1] for word in k.split("_")) == name]
    return initials[0] if len(initials) == 1 else None


def closest_name(name: str, known: Sequence[str]) -> str | None:
    """The one of ``known`` that ``name`` was most likely meant as, for a "did you mean" (the same
    name in other capitals first: "Hello" is "hello"; then the one name it starts), or None."""
    folded = {k.lower(): k for k in reversed(list(known))}
    if name.lower() in folded:
        return folded[name.lower()]
    starting = [k for k in folded if name and k.startswith(name.lower())]
    if len(starting) == 1:  # the start of one name alone ("esn" of "esn_readout", too short for difflib)
        return folded[starting[0]]
    close = difflib.get_close_matches(name.lower(), list(folded), n=1, cutoff=0.6)
    return folded[close[0]] if close else None


def named_in_part(name: str, known: Sequence[str]) -> str | None:
    """The one of ``known`` (names of words joined by ``_``) that ``name`` names in part, for a "did you mean"
    where a misspelling's guess misleads: its words the starts of the name's words, in order ("gru_bidir" and
    "gru-bidir": "gru_deep_bidirectional", where difflib's closest was "gru_no_bias"), else a part of the name
    that no other holds ("pre_norm"); None where no such name is alone (any case)."""
    folded = {k.lower(): k for k in reversed(list(known))}
    typed = [word for word in name.lower().replace("-", "_").split("_") if word]
    if not typed:
        return None

    def starts_words(words: list[str]) -> bool:  # each typed word starts a later word than the one before
        rest = iter(words)
        return all(any(word.startswith(part) for word in rest) for part in typed)

    starting = [k for k in folded if starts_words(k.split("_"))]
    inside = [k for k in folded if "_".join(typed) in k]
    for found in (starting, inside):
        if len(found) == 1:
            return folded[found[0]]
    return None


def meant_choice(typed: Any, choices: Sequence[str]) -> str | None:
    """The one of a few ``choices`` that ``typed``, refused as none of them, surely meant, for a "did you mean":
    the same word in other capitals ("LSTM", "CPU"), the one it starts ("upd"), or a close misspelling ("adm",
    "lsmt": three of four letters in order); else None. The spelling must be closer than :func:`closest_name`'s:
    among a few short words a looser match is as likely another word meant ("GPU" is not "cpu"), and a misspelling
    keeps its digits ("float16" is another type, not "float64")."""
    if not isinstance(typed, str) or not typed:
        return None
    starting = [choice for choice in choices if choice.lower().startswith(typed.lower())]
    same = [choice for choice in starting if choice.lower() == typed.lower()]
    if len(same) == 1 or len(starting) == 1:
        return (same or starting)[0]
    folded = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(typed.lower(), list(folded), n=2, cutoff=0.75)
    return folded[close[0]] if len(close) == 1 and _digits(close[0]) == _digits(typed) else None


def _digits(text: str) -> str:
    """The digits of ``text`` in order ("64" of "float64")."""
    return "".join(char for char in text if char.isdigit())


def given(value: Any) -> str:
    """A refused value as a one-line error quotes it: text, a number or None as written (numpy's scalars
    too: numpy 2 writes "np.float64(-0.1)"), anything else by its type (an array's repr takes lines)."""
    if isinstance(value, (np.number, np.bool_, np.str_)):
        value = value.item()
    plain = isinstance(value, (str, int, float, type(None)))
    return repr(value) if plain else f"a value of type {type(value).__name__}"


def is_choice(value: Any, choices: Iterable[str]) -> bool:
    """Whether ``value`` is one of the strings ``choices``: an array or a list is not, where ``in`` compared it
    element-wise (an ambiguous truth value) or hashed it (a TypeError, for a dict of choices)."""
    return isinstance(value, str) and value in choices


def choice_refusal(typed: Any, choices: Sequence[str], got: str | None = None, meant: str | None = None) -> str:
    """A refusal of ``typed``, none of ``choices``, from "must be" on, for a caller to put the name before:
    "must be cpu or cuda, got 'gpu'" (two choices), "must be one of rnn, lstm, gru, got 'LSTM' (did you mean
    'lstm'?)", the hint where :func:`meant_choice` is sure, or ``meant`` where the caller knows better (a name's
    other spelling: rho for spectral_radius). ``got``: ``typed`` as the view quotes it (default: :func:`given`'s).
    The CLI's flags, the labs' options and the library's arguments say it so."""
    allowed = " or ".join(choices) if len(choices) == 2 else f"one of {', '.join(choices)}"
    meant = meant or meant_choice(typed, choices)
    hint = f" (did you mean {meant!r}?)" if meant else ""
    return f"must be {allowed}, got {given(typed) if got is None else got}{hint}"
