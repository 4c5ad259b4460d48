"""What the architecture labs share for their options: ``name=value`` text as their dialogs take it,
and one wording for a bad value and the range it must lie in (``units must be an integer in
[1, 1000], got 'abc'``), whichever lab says it."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import UserError, clipped, number_text, whole_number

#: How an error names an option: as the user typed it (the CLI passes ``--spectral-radius``
#: style flags; the labs' options forms label their fields with the names themselves).
Spell = Callable[[str], str]

_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


def parse_assignments(text: str, names: Sequence[str] | None = None, example: str = "") -> dict[str, Any]:
    """``"units=200, ridge=1e-6 readout-input=no"`` -> ``{"units": 200, "ridge": 1e-06, "readout_input": False}``.

    Pairs are separated by spaces or commas; hyphens in names read as underscores; values are
    integers, numbers or true/false (yes/no, on/off), anything else the text as typed, for the
    lab's own check to name. UserError for a piece that is not ``name=value`` (``example`` shows
    one), a name given twice, or, given ``names``, a name not among them."""
    from . import unknown_name

    changes: dict[str, Any] = {}
    for piece in re.split(r"[\s,]+", text.strip()):
        if not piece:
            continue
        name, sep, raw = piece.partition("=")
        if not sep or not name or not raw:
            hint = f", e.g. {example}" if example else ""
            raise UserError(f"expected name=value, got {clipped(piece, 16)!r}{hint}")
        name = name.replace("-", "_")
        if names is not None and name not in names:
            raise UserError(unknown_name("option", name, list(names)))
        if name in changes:
            raise UserError(f"{name} is given twice: give it once")
        changes[name] = _value(raw)
    return changes


def number_or_text(text: str) -> int | float | str:
    """``"32"`` -> 32, ``"0.01"`` -> 0.01; anything else stays text, for the check that follows to
    refuse by name: other digits than ASCII's too (int("١٢") is 12; the CLI's options and a spec's
    TOML take ASCII digits only). What the labs' option dialogs and the edit form type is read so."""
    text = text.strip()
    if not text.isascii():
        return text
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _value(raw: str) -> Any:
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    return number_or_text(raw)


def bound(value: float) -> str:
    """A range's end as the labs write it: as :func:`~rnnlab.errors.number_text` writes the value refused
    beside it (``1000``, ``1e-08``, ``1e+06``), but the largest seed as ``2^63-1`` (nineteen digits, which
    a dialog or an 80-column help would cut in two)."""
    return "2^63-1" if value == 2**63 - 1 else number_text(value)


def as_typed(value: Any) -> str:
    """An option's value as its ``name=value`` text would give it: ``true``, ``200``, ``1e+06`` and
    ``0.1`` (:func:`~rnnlab.errors.number_text`, as the labs' messages write them), not ``1000000.0``."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)):
        return number_text(value)
    return str(value)


def interval(low: float, high: float, low_open: bool = False) -> str:
    """``[1, 1000]``, or ``(0, 10]`` where ``low`` itself is not allowed."""
    return f"{'(' if low_open else '['}{bound(low)}, {bound(high)}]"


def shown(value: Any) -> str:
    """A refused value as the message quotes it: text in quotes, a number as
    :func:`~rnnlab.errors.number_text` writes it and the range's bounds (``1e+09`` beside ``[1, 1000]``)."""
    if isinstance(value, (numbers.Real, np.number)) and not isinstance(value, (bool, np.bool_)):
        return clipped(number_text(value), 24)  # (an integer of 400 digits)
    return clipped(repr(value), 24)


def _must_be(label: str, what: str, value: Any) -> UserError:
    return UserError(f"{label + ' ' if label else ''}must be {what}, got {shown(value)}")


def check_int(label: str, value: Any, low: int, high: int) -> int:
    """``value`` as an int if it is an integer in [low, high], else a UserError naming ``label``
    (none: the message starts at "must be", for a caller that names the option its own way)."""
    if isinstance(value, (float, np.floating)) and low <= value <= high:
        value = whole_number(value)  # 1e2 and 100.0 as 100, as a spec's integer fields take them
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise _must_be(label, f"an integer in {interval(low, high)}", value)
    return int(value)


def check_bool(label: str, value: Any) -> bool:
    """``value`` as a bool if it is one or a word the options' text reads as one (true/false,
    yes/no, on/off, any case), else a UserError naming ``label`` and those words."""
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    if not isinstance(value, (bool, np.bool_)):
        raise _must_be(label, "true or false (yes/no, on/off)", value)
    return bool(value)


def check_number(label: str, value: Any, low: float, high: float, low_open: bool = False) -> float:
    """``value`` as a float if it is a finite number in the interval, else a UserError naming ``label``."""
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))
    try:
        v = float(value) if ok else math.nan
    except OverflowError:  # an integer of more than 308 digits
        v = math.inf
    if not (math.isfinite(v) and v <= high and (v > low if low_open else v >= low)):
        raise _must_be(label, f"a number in {interval(low, high, low_open)}", value)
    return v
