"""Helpers that build one terminal line (a textual ``Strip``) from pieces of styled text."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip


def text_strip(width: int, base_style: Style, pieces: Iterable[tuple[int, str, Style]]) -> Strip:
    """A line of exactly ``width`` cells holding ``(x, text, style)`` pieces on ``base_style``.

    Pieces are placed left to right; one that would overlap the piece before it is dropped, and
    text past ``width`` is cut, its last cell an ellipsis. Gaps are filled explicitly with
    ``base_style``: since textual 6 unstyled blanks do not inherit the widget's background.
    """
    segments: list[Segment] = []
    cursor = 0
    for x, text, style in sorted(pieces, key=lambda piece: piece[0]):
        if x < cursor or x >= width or not text:
            continue
        if x > cursor:
            segments.append(Segment(" " * (x - cursor), base_style))
        if len(text) > width - x:
            text = text[: width - x - 1] + "…"
        segments.append(Segment(text, base_style + style))
        cursor = x + len(text)
    return Strip(segments).adjust_cell_length(width, base_style)


def runs(keys: np.ndarray) -> tuple[list[int], list[int]]:
    """Start and end indices of the runs of equal adjacent values in a 1-D array."""
    if keys.size == 0:
        return [], []
    changes = (np.flatnonzero(keys[1:] != keys[:-1]) + 1).tolist()
    return [0, *changes], [*changes, int(keys.size)]
