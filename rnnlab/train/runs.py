"""A folder of run directories at a glance: what ``rnnlab runs`` lists.

Reads only each run's small files (``spec.toml``, ``summary.json``, the last line of each log and
the lock), never its data file or weights, so a folder of many runs lists at once and a run whose
data moved or whose files are damaged still gets its row. Nothing is written.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RunDirError
from .rundir import CHECKPOINT, EVALS, LOCK, METRICS, RUN_FILES, SPEC, SUMMARY, _read_error, is_run_dir

#: The tail of a log read for its last record: one JSON line is about 150 bytes.
_TAIL_BYTES = 8192


@dataclass(frozen=True)
class RunListing:
    """One run directory as listed. ``status``: "completed", "stopped" or "diverged" (how its last
    training ended), "training" (another process holds its lock now), "interrupted" (its logs go on
    past its summary: a process killed mid-run), "untrained" or "damaged" (``problem`` says why)."""

    path: Path
    name: str | None
    task: str | None
    cell: str | None
    hidden_size: int | None
    step: int | None          # the last step logged (the checkpoint's, after a divergence)
    steps: int | None         # the step its training ran toward
    status: str
    loss: float | None        # the last training step's
    eval: dict[str, Any] | None   # the last evaluation: step, loss, accuracy
    eval_held_out: bool
    baseline: dict[str, Any] | None  # name, loss, accuracy: what a model that learned nothing scores
    updated: float            # when a file of it last changed (seconds since the epoch)
    problem: str = ""

    def to_json(self) -> dict[str, Any]:
        record = {k: getattr(self, k) for k in self.__dataclass_fields__}
        record["path"] = str(self.path)
        return record


def list_runs(folder: str | Path) -> list[RunListing]:
    """The run directories directly inside ``folder`` (or ``folder`` itself, if it is one), the
    most recently updated first. :class:`RunDirError` if ``folder`` is not a readable directory."""
    folder = Path(folder)
    try:
        if is_run_dir(folder):
            return [read_listing(folder)]
        children = sorted(folder.iterdir())
    except FileNotFoundError:
        raise RunDirError(f"{folder} does not exist (rnnlab train puts its runs in runs/)") from None
    except NotADirectoryError:
        raise RunDirError(f"{folder} is not a directory") from None
    except OSError as exc:
        raise _read_error(folder, exc) from None
    runs = []
    for child in children:
        try:
            if child.is_dir() and is_run_dir(child):
                runs.append(read_listing(child))
        except (RunDirError, OSError):  # a run that cannot even be looked into is no run to list
            continue
    return sorted(runs, key=lambda run: run.updated, reverse=True)


def read_listing(path: Path) -> RunListing:
    """The :class:`RunListing` of the run directory at ``path``."""
    updated = max((_mtime(path / name) for name in RUN_FILES), default=0.0) or _mtime(path)
    problem = ""
    try:
        spec = tomllib.loads((path / SPEC).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        spec, problem = {}, f"{SPEC}: {_why(exc)}"
    task, model, train = (_table(spec, key) for key in ("task", "model", "train"))
    summary = _read_json(path / SUMMARY)
    last_step, last_eval = _last_record(path / METRICS), _last_record(path / EVALS)
    logged = _int(last_step.get("step")) if last_step else None
    summarized = _int(summary.get("step")) if summary else None
    if problem:
        status = "damaged"
    elif _locked(path):
        status = "training"
    elif summary is not None and isinstance(summary.get("status"), str) and (logged or 0) <= (summarized or 0):
        status = summary["status"]
    elif logged is not None or (path / CHECKPOINT).exists():
        status = "interrupted"
    else:
        status = "untrained"
    step = logged if logged is not None else summarized
    if status == "diverged" and summary is not None:  # the weights kept are the last good checkpoint's
        step = _int(summary.get("checkpoint_step"), step)
    steps = _int(summary.get("steps")) if summary and status != "training" else None
    baseline = summary.get("baseline") if summary else _baseline(task)
    return RunListing(
        path=path, name=_str(spec.get("name")), task=_str(task.get("kind")), cell=_str(model.get("cell")),
        hidden_size=_int(model.get("hidden_size")), step=step, steps=steps or _int(train.get("steps")),
        status=status, loss=_float(last_step.get("loss")) if last_step else None,
        eval=None if last_eval is None else {k: last_eval.get(k) for k in ("step", "loss", "accuracy")},
        eval_held_out=bool(summary.get("eval_held_out", True)) if summary else True,
        baseline=baseline if isinstance(baseline, dict) else None, updated=updated, problem=problem)


def _baseline(task: dict[str, Any]) -> dict[str, Any] | None:
    """The baseline of a run that has no summary yet (one in training, or killed), where its task
    draws its own data; a task that reads a file (reading it could take seconds) gets None."""
    from ..data import make_task

    if "path" in task or not isinstance(task.get("kind"), str):
        return None
    try:
        baseline = make_task(task["kind"], {k: v for k, v in task.items() if k != "kind"}, None).baseline()
    except Exception:  # noqa: BLE001 - a spec an older or newer rnnlab wrote: no baseline, still a row
        return None
    return None if baseline is None else {"name": baseline.name, "loss": baseline.loss,
                                          "accuracy": baseline.accuracy}


def _locked(path: Path) -> bool:
    """Whether another process holds the run's writer lock (:meth:`RunDir.writing`). The lock file
    is only opened for reading: a run without one has never been written under a lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return False
    try:
        with open(path / LOCK, "rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def _last_record(log: Path) -> dict[str, Any] | None:
    """The last line of a ``.jsonl`` log that is a JSON object with a step (a torn last line, as a
    crash leaves, is passed over), or None."""
    try:
        with open(log, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(size - _TAIL_BYTES, 0))
            lines = handle.read().split(b"\n")
    except OSError:
        return None
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            return record
    return None


def _read_json(file: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8"
    return f"not TOML ({exc})"


def _table(spec: dict[str, Any], key: str) -> dict[str, Any]:
    value = spec.get(key)
    return value if isinstance(value, dict) else {}


def _int(value: Any, default: int | None = None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
