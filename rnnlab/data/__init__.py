"""Sequence tasks and data: synthetic benchmarks, series generators and loaders for the user's files.

``make_task(kind, options, base_dir)`` builds a task from a spec's ``[task]`` table;
``task.batch(batch_size, step, seed)`` gives time-major :class:`Batch` es, float64 (``batch.x.astype(
layer.dtype)`` feeds a float32 layer, which refuses float64 input). Kinds, in order:
hello, text, adding, copy, selective-copy, sine, two-scales, mackey-glass, parity, counting, series (see :data:`TASKS` and
:func:`task_fields`). Pure NumPy; no UI imports.
"""

from . import trees  # rnnlab.data.trees, as the README names it
from .base import (REQUIRED, TASKS, Baseline, Batch, Field, Task, check_task_options, held_out_split, make_task,
                   task_fields)
from .files import MAX_VOCAB, SAMPLE_DIR, load_series, load_text, resolve_path
from .series import mackey_glass, sine_waves
from .text import CharTask, HelloTask, TextTask, display_char  # registers hello, text first
from .tasks import (AddingTask, CopyTask, CountingTask, MackeyGlassTask, ParityTask,  # noqa: E402
                    SelectiveCopyTask, SeriesTask, SineTask, TwoScalesTask)

__all__ = [
    "REQUIRED", "TASKS", "Baseline", "Batch", "Field", "Task", "make_task", "task_fields", "held_out_split",
    "check_task_options",
    "CharTask", "HelloTask", "TextTask", "AddingTask", "CopyTask", "SelectiveCopyTask", "SineTask", "TwoScalesTask", "MackeyGlassTask",
    "ParityTask", "CountingTask", "SeriesTask",
    "mackey_glass", "sine_waves", "display_char",
    "load_text", "load_series", "resolve_path", "SAMPLE_DIR", "MAX_VOCAB", "trees",
]
