"""What every task shares: the Batch and Baseline records, declared fields, the Task base and its registry.

A task is a sequence builder: ``batch(batch_size, step, seed)`` is a pure function of its arguments
(runs resume by calling it again), ``eval_batch`` a fixed held-out batch. Each task declares its
fields once, in ``FIELDS``; validation (:func:`make_task`), ``options()`` and :func:`task_fields`
all read that one table.
"""

from __future__ import annotations

import math
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import TOO_LARGE_FOR_A_FLOAT, DataError, SpecError, closest_name, range_words, whole_number
from ..fsio import stat_or_none
from .files import resolve_path, user_path

# Tags mixed into every seed so training steps and the eval batch draw from unrelated streams
# (np.random.SeedSequence hashes the whole list; the first entries differ, so no collision).
_TRAIN_TAG = 0x7472_6169  # "trai"
_EVAL_TAG = 0x6576_616C  # "eval"


@dataclass(frozen=True, eq=False)
class Batch:
    """One batch of sequences, time-major.

    ``x`` ``(T, B, I)`` float64 inputs. ``y``: for loss ``"xent"`` ``(T, B)`` int64 class ids, for
    ``"mse"`` ``(T, B, O)`` float64 targets. ``mask`` ``(T, B)`` bool marks the steps whose loss and
    accuracy count (``y`` holds 0 elsewhere). ``lengths`` ``(B,)`` int64 is each sequence's valid
    length (``T`` unless the task has variable lengths; steps past it are padding).
    """

    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    lengths: np.ndarray

    def __post_init__(self) -> None:
        if self.x.ndim != 3:
            raise ValueError(f"batch inputs must be (T, B, I), got shape {self.x.shape}")
        T, B = self.x.shape[:2]
        if self.y.shape[:2] != (T, B) or self.mask.shape != (T, B) \
                or self.lengths.shape != (B,):
            raise ValueError(f"inconsistent batch shapes: x {self.x.shape}, y {self.y.shape}, "
                             f"mask {self.mask.shape}, lengths {self.lengths.shape}")

    @property
    def T(self) -> int:
        """Number of time steps."""
        return self.x.shape[0]

    @property
    def B(self) -> int:
        """Number of sequences."""
        return self.x.shape[1]


def masked_mse(predicted: np.ndarray, batch: Batch) -> float:
    """The mean squared error of ``predicted`` (shaped as ``batch.y``) at the steps ``batch.mask``
    counts, as training's MSE averages it (over those steps and every output)."""
    diff = (predicted - batch.y) * batch.mask[..., None]
    return float((diff * diff).sum() / (max(int(batch.mask.sum()), 1) * batch.y.shape[-1]))


@dataclass(frozen=True)
class Baseline:
    """What a trivial predictor scores on a task, to read a training loss against.

    ``loss`` is in the task's own loss: MSE, or mean cross-entropy in nats per masked step.
    ``accuracy`` (fraction of masked steps whose argmax is right) only for ``"xent"`` tasks.
    """

    name: str
    loss: float
    accuracy: float | None = None


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: Default of a field that has none: the spec must give it (e.g. ``text.path``).
REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Field:
    """One option of a task: its type, default, help text and inclusive range.

    ``type`` is one of ``bool``, ``int``, ``float``, ``str`` or ``Path`` (a file path: relative
    paths resolve against the spec's directory, then the packaged sample data). ``default`` is a
    value, :data:`REQUIRED`, or ``None`` for a default derived from other fields (the help says how).
    """

    name: str
    type: type
    default: Any
    help: str
    min: float | None = None
    max: float | None = None

    def check(self, value: Any, base_dir: str | Path | None) -> Any:
        """The value converted to the field's type; SpecError ``task.<name>`` if it is not one."""
        where = f"task.{self.name}"
        t = self.type
        if value is None and self.default is None:  # "derived from other fields", as task_fields says it
            return None
        if t is bool:
            if not isinstance(value, bool):
                raise SpecError(where, f"expected true or false, got {_show(value)}")
            return value
        if t is int:
            value = whole_number(value)  # 1e2 and 100.0 as 100, as the [model] and [train] fields take them
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise SpecError(where, f"expected an integer, got {_show(value)}")
            value = int(value)
        elif t is float:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise SpecError(where, f"expected a number, got {_show(value)}")
            if isinstance(value, (int, np.integer)) and abs(value) > sys.float_info.max:  # float() would raise
                # OverflowError (309 digits and more); an infinite float is said as what it is, below
                raise SpecError(where, f"expected a finite number, got {TOO_LARGE_FOR_A_FLOAT}")
            value = float(value)
            if not math.isfinite(value):
                raise SpecError(where, f"expected a finite number, got {value}")
        elif t is str:
            if not isinstance(value, str):
                raise SpecError(where, f"expected a string, got {_show(value)}")
            return value
        elif t is Path:
            if not isinstance(value, (str, Path)) or not str(value).strip():
                raise SpecError(where, f"expected a file path (a non-empty string), got {_show(value)}")
            path = resolve_path(value, base_dir)
            if stat_or_none(path) is None and not user_path(value).is_absolute():  # resolve_path looked in two places
                where = "in the working directory" if base_dir is None else "beside the spec"  # (None: stdin's)
                raise DataError(f"{path}: no such file (a relative path is looked for {where}, then in rnnlab's "
                                "sample_data/)")
            return path
        else:  # pragma: no cover - a declaration error in rnnlab itself
            raise TypeError(f"field {self.name}: unsupported type {t}")
        lo, hi = self.min, self.max
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise SpecError(where, f"must be {range_words(lo, hi)}, got {value}")
        return value


def _show(value: Any) -> str:
    """A value as a spec author wrote it, with its kind (TOML spelling for booleans)."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, (int, np.integer)):
        return f"an integer ({value})"
    if isinstance(value, (float, np.floating)):
        return f"a number ({value})"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a table"
    return f"a {type(value).__name__}"


class Task(ABC):
    """A sequence task: builds batches, knows its loss, sizes, baseline and how to show its tokens.

    Construct through :func:`make_task` (or ``SomeTask(options, base_dir)``): options are checked
    against ``FIELDS`` and become attributes. Subclasses set the class attributes ``kind``, ``loss``,
    ``mode`` and ``FIELDS``, and in ``_setup`` the sizes ``input_size``, ``output_size``, ``length``.

    A task the user can type a sequence for (the lab's ``i``, which asks ``hasattr``) also has
    ``sequence_from_text(text) -> Batch``: one sequence (B = 1) laid out as ``_make`` lays out a
    batch, or a one-line DataError naming what is wrong; ``typing_prompt()``, the dialog's title
    (what to type, what the network does with it); and ``typing_placeholder()``, a short example.
    """

    kind: ClassVar[str]
    FIELDS: ClassVar[tuple[Field, ...]]
    loss: str  # "xent" | "mse"
    mode: str  # "many-to-many" | "many-to-one" | "one-to-many"
    input_size: int
    output_size: int
    length: int
    stream: bool = False
    vocab: tuple[str, ...] | None = None
    #: Names of a regression target's channels when it has several (two-scales: slow, fast): views
    #: show each channel's target and output. Empty: one channel, or classes.
    channels: tuple[str, ...] = ()
    #: Every batch is the same sequence (hello's word): there is no new one to draw.
    fixed_sequence: ClassVar[bool] = False
    #: The target at step t is the input at step t + 1 (next character, next value): a model that
    #: reads later steps (a reverse direction, non-causal attention) reads its own targets.
    predicts_next_input: ClassVar[bool] = False
    #: Why the eval batch is not held out ("" when it is: fresh draws, or a data file's last tenth):
    #: a data file too short to spare a tail, whose eval batch then draws from the training data.
    eval_not_held_out: str = ""
    #: Something in the user's data file that is read as data but likely is not ("" for nothing):
    #: a series column that counts the rows (pandas' index). Said where a run is trained, a lab opened or
    #: a pass run (bptt, trace).
    data_warning: str = ""

    def beyond_float32(self) -> str:
        """Why a float32 model cannot read this task's data ("" when it can): a data file's values
        beyond float32's range. The spec refuses such a task for a float32 model."""
        return ""

    def __init__(self, options: Mapping[str, Any] | None = None,
                 base_dir: str | Path | None = None) -> None:
        for name, value in self.checked_options(options, base_dir).items():
            setattr(self, name, value)
        self._setup()

    @classmethod
    def checked_options(cls, options: Mapping[str, Any] | None, base_dir: str | Path | None) -> dict[str, Any]:
        """Every field's value from ``options`` (a spec's ``[task]`` table), each checked, defaults
        filled in; SpecError naming the field as :func:`make_task` does. No data file is read."""
        options = dict(options or {})
        # A whole [task] table may be passed; its kind must then be this one.
        if "kind" in options and (given := options.pop("kind")) != cls.kind:
            raise SpecError("task.kind", f"{_show(given)} given to task '{cls.kind}'")
        fields = {f.name: f for f in cls.FIELDS}
        for name in options:
            if name not in fields:
                allowed = ", ".join(fields) or "none"
                close = closest_name(name, list(fields)) if isinstance(name, str) else None
                hint = f"did you mean {close!r}? " if close else ""
                raise SpecError(f"task.{name}", f"unknown field for task '{cls.kind}' ({hint}allowed: {allowed})")
        values = {}
        for f in cls.FIELDS:
            if f.name in options:
                values[f.name] = f.check(options[f.name], base_dir)
            elif f.default is REQUIRED:
                raise SpecError(f"task.{f.name}", f"missing; task '{cls.kind}' requires it ({f.help})")
            else:
                values[f.name] = f.default
        return values

    @abstractmethod
    def _setup(self) -> None:
        """Resolve derived defaults, check fields against each other, load data, set sizes."""

    # ---- batches --------------------------------------------------------------------------------

    def batch(self, batch_size: int, step: int, seed: int) -> Batch:
        """Training batch ``step`` of a run seeded ``seed``: the same arguments give the same arrays."""
        _check_args(batch_size, step, seed)
        return self._make(np.random.default_rng([_TRAIN_TAG, seed, step]), batch_size, train=True)

    def eval_batch(self, batch_size: int, seed: int) -> Batch:
        """The held-out batch of a run seeded ``seed``: fixed, and drawn independently of every training step.

        Tasks built on data (text, series, Mackey-Glass) draw it from a held-out part of the data.
        """
        _check_args(batch_size, 0, seed)
        return self._make(np.random.default_rng([_EVAL_TAG, seed]), batch_size, train=False)

    @abstractmethod
    def _make(self, rng: np.random.Generator, batch_size: int, train: bool) -> Batch:
        """A batch drawn with ``rng`` (from the training or the held-out data)."""

    def baseline(self) -> Baseline | None:
        """The score of a trivial predictor (see each task), or None."""
        return None

    def baseline_on(self, batch: Batch) -> float | None:
        """What :meth:`baseline`'s predictor scores on ``batch`` itself, in the task's loss; None where
        the task has no such per-sequence score. One sequence's loss reads against it, not against the
        average: adding's first sequence, whose target is 0.98, gave "predict 1" a loss of 0.0004,
        and an untrained RNN's 0.0003 there looked better than a trained LSTM's 0.01."""
        return None

    # ---- display --------------------------------------------------------------------------------

    def input_tokens(self, batch: Batch, b: int = 0, channel: int = 0) -> list[str]:
        """One short label per time step of sequence ``b``'s input (default: feature ``channel`` as ``0.42``)."""
        return [f"{v:.2f}" for v in batch.x[:, b, channel]]

    def target_tokens(self, batch: Batch, b: int = 0, channel: int = 0) -> list[str]:
        """One short label per time step of sequence ``b``'s target (of one of :attr:`channels`);
        ``""`` where the mask is False."""
        if self.loss == "xent":
            assert self.vocab is not None
            labels = [self.vocab[int(c)] for c in batch.y[:, b]]
        else:
            labels = [f"{v:.2f}" for v in batch.y[:, b, channel]]
        return [s if m else "" for s, m in zip(labels, batch.mask[:, b])]

    @abstractmethod
    def describe(self) -> str:
        """One line for humans: what the task asks of the network."""

    def options(self) -> dict[str, Any]:
        """Every field with its resolved value (paths absolute, as strings).

        ``make_task(kind, task.options())`` rebuilds an equal task, so writing these into a run's
        spec makes the run reproducible.
        """
        out = {}
        for f in self.FIELDS:
            v = getattr(self, f.name)
            out[f.name] = str(v) if isinstance(v, Path) else v
        return out

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.options() == self.options()  # type: ignore[union-attr]

    def __hash__(self) -> int:
        return hash((self.kind, tuple(self.options().items())))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({args})"


def not_held_out(n: int, split: int, need: int, items: str) -> str:
    """Why ``n`` items (rows, characters) split at ``split`` (:func:`held_out_split`) hold out no
    tail when both parts need ``need`` ("" when they do): :attr:`Task.eval_not_held_out`."""
    if split < n:
        return ""
    return (f"{n} {items} are too few to hold out the last tenth (both parts need length + 1 = {need}: "
            f"{10 * need} {items}): the eval batch draws from the training data")


def held_out_split(n: int, need: int) -> int:
    """Where the held-out tail of ``n`` items starts: the last tenth when both parts hold ``need``, else ``n`` (none).

    Data tasks train on ``[:split]`` and evaluate on ``[split:]``; without a held-out tail (small
    data) the eval batch draws its windows from all of it.
    """
    tail = n // 10
    return n - tail if tail >= need and n - tail >= need else n


def _check_args(batch_size: int, step: int, seed: int) -> None:
    for name, v, lo in (("batch_size", batch_size, 1), ("step", step, 0), ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")


#: Every task class by kind, in the order they are listed to users.
TASKS: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator adding a Task subclass to :data:`TASKS` under its ``kind``."""
    if cls.kind in TASKS:  # pragma: no cover - a declaration error in rnnlab itself
        raise ValueError(f"task kind {cls.kind!r} registered twice")
    TASKS[cls.kind] = cls
    return cls


def _task_class(kind: Any) -> type[Task]:
    if not isinstance(kind, str):
        raise SpecError("task.kind", f"expected a task name, got {_show(kind)} (allowed: {', '.join(TASKS)})")
    if kind not in TASKS:
        close = closest_name(kind, list(TASKS))
        hint = f"did you mean {close!r}? " if close else ""
        raise SpecError("task.kind", f"unknown task {kind!r} ({hint}allowed: {', '.join(TASKS)})")
    return TASKS[kind]


def make_task(kind: str, options: Mapping[str, Any] | None = None, base_dir: str | Path | None = None) -> Task:
    """The task ``kind`` with ``options`` (a spec's ``[task]`` table; a ``kind`` key in it is allowed).

    Relative paths resolve against ``base_dir`` (the spec file's directory), then the packaged
    sample data. Raises SpecError naming ``task.<field>`` for an unknown kind or field, a wrong type
    (a boolean is not an integer), a value out of range or a missing required field, and DataError
    for a data file that cannot be used.
    """
    return _task_class(kind)(options, base_dir)


def check_task_options(kind: Any, options: Mapping[str, Any] | None, base_dir: str | Path | None = None) -> None:
    """What :func:`make_task` refuses of a ``[task]`` table short of its data (SpecError): the kind,
    each field's name, type and range, and, for a task that reads no file (its data drawn, in
    milliseconds), the fields against each other (a sine's min_period past its max_period). No data
    file is read."""
    task_class = _task_class(kind)
    if any(f.type is Path for f in task_class.FIELDS):
        task_class.checked_options(options, base_dir)
    else:
        task_class(options, base_dir)


def task_fields(kind: str) -> dict[str, tuple[Any, str]]:
    """``{field: (default, help)}`` for task ``kind``, in declaration order.

    A default of :data:`REQUIRED` means the spec must give the field; ``None`` means it is derived
    from other fields (the help says how).
    """
    return {f.name: (f.default, f.help) for f in _task_class(kind).FIELDS}
