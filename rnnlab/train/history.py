"""A training history kept as columns: what a lab plots and saves, at ~41 bytes a step.

A list of :class:`~rnnlab.train.trainer.StepRecord` objects costs ~260 bytes a step; the lab trains
a small model at thousands of steps a second for as long as the user lets it, so a list grew by
tens of megabytes a minute. :class:`StepHistory` stores the same fields in growable NumPy columns
and still reads like that list (``len``, indexing, slicing, iteration give records).

One thread appends (the trainer) while others read (the views): a row is written before the length
that makes it visible, and a column grown by reallocation leaves the old one intact for a reader
still holding it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from typing import overload

import numpy as np

from .trainer import StepRecord

#: The columns: StepRecord's fields, with a missing accuracy stored as NaN.
COLUMNS = (("step", np.int64), ("loss", np.float64), ("accuracy", np.float64), ("grad_norm", np.float64),
           ("clipped", np.bool_), ("time", np.float64))


class StepHistory:
    """The steps of a training run, oldest first, as columns (see the module docstring)."""

    def __init__(self, records: Iterable[StepRecord] = (), capacity: int = 1024) -> None:
        self._columns = {name: np.empty(max(1, capacity), dtype) for name, dtype in COLUMNS}
        self._size = 0
        for record in records:
            self.append(record)

    def append(self, record: StepRecord) -> None:
        i = self._size
        if i == len(self._columns["step"]):
            self._columns = {name: np.concatenate([column, np.empty_like(column)])
                             for name, column in self._columns.items()}
        columns = self._columns
        columns["step"][i] = record.step
        columns["loss"][i] = record.loss
        columns["accuracy"][i] = np.nan if record.accuracy is None else record.accuracy
        columns["grad_norm"][i] = record.grad_norm
        columns["clipped"][i] = record.clipped
        columns["time"][i] = record.time
        self._size = i + 1  # after the row: a reader sees it only once it is whole

    def column(self, name: str, size: int | None = None) -> np.ndarray:
        """A read-only view of column ``name`` (one of :data:`COLUMNS`), its first ``size`` rows
        (default: all). Pass the same ``size`` to read several columns of one moment."""
        size = self._size if size is None else size
        view = self._columns[name][:size]
        view.flags.writeable = False
        return view

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> StepRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[StepRecord]: ...

    def __getitem__(self, index):
        size = self._size
        if isinstance(index, slice):
            return [self._record(i) for i in range(*index.indices(size))]
        i = index + size if index < 0 else index
        if not 0 <= i < size:
            raise IndexError(f"step history index {index} out of range ({size} steps)")
        return self._record(i)

    def __iter__(self) -> Iterator[StepRecord]:
        return (self._record(i) for i in range(self._size))

    def _record(self, i: int) -> StepRecord:
        c = self._columns
        accuracy = float(c["accuracy"][i])
        return StepRecord(step=int(c["step"][i]), loss=float(c["loss"][i]),
                          accuracy=None if np.isnan(accuracy) else accuracy, grad_norm=float(c["grad_norm"][i]),
                          clipped=bool(c["clipped"][i]), time=float(c["time"][i]))

    def jsonl(self) -> str:
        """Every step as ``metrics.jsonl`` holds it, one JSON object a line, the text
        ``json.dumps(record.to_json())`` gives each: six times faster, for a lab saving a long run
        (300k steps took 4 s, the screen frozen)."""
        size = self._size
        step, loss, accuracy, grad_norm, clipped, seconds = (self._columns[name][:size].tolist() for name, _ in COLUMNS)

        def number(x: float) -> str:
            return repr(x) if math.isfinite(x) else json.dumps(x)

        return "".join(f'{{"step": {s}, "loss": {number(l)}, "accuracy": {"null" if a != a else number(a)}, '
                       f'"grad_norm": {number(g)}, "clipped": {"true" if c else "false"}, "time": {number(t)}}}\n'
                       for s, l, a, g, c, t in zip(step, loss, accuracy, grad_norm, clipped, seconds))

    def __repr__(self) -> str:
        return f"StepHistory({self._size} steps)"
