"""The forward cursor shared by the labs: how many steps (tokens, nodes) are revealed, 0..end."""

from __future__ import annotations


class StepCursor:
    """``cursor`` counts the revealed steps, from 0 (none) to :attr:`cursor_end` (all); each move
    clamps it to that range and returns it. A subclass says where the end is."""

    cursor: int

    @property
    def cursor_end(self) -> int:  # pragma: no cover - every lab defines it
        raise NotImplementedError

    def step_forward(self) -> int:
        """Reveal one more step."""
        return self._set_cursor(self.cursor + 1)

    def step_back(self) -> int:
        """The time cursor one step back (not past 0); returns it."""
        return self._set_cursor(self.cursor - 1)

    def jump_start(self) -> int:
        """The time cursor to 0, before the first step; returns it."""
        return self._set_cursor(0)

    def jump_end(self) -> int:
        """The time cursor to its end (:attr:`cursor_end`); returns it."""
        return self._set_cursor(self.cursor_end)

    def _set_cursor(self, value: int) -> int:
        self.cursor = max(0, min(int(value), self.cursor_end))
        return self.cursor
