"""A folder of run directories at a glance: what ``rnnlab runs`` lists.

Reads only each run's small files (``spec.toml``, ``summary.json``, the last line of each log, the
lock and the checkpoint's step entry), never its data file or weights, so a folder of many runs
lists at once and a run whose data moved or whose files are damaged still gets its row. Nothing is
written.
"""

from __future__ import annotations

import datetime
import itertools
import math
import os
import shlex
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RunDirError, UserError, choice_refusal, closest_name, is_choice, special_file
from ..spec import flat_fields, spec_toml
from .rundir import (CHECKPOINT, EVALS, METRICS, RUN_FILES, SPEC, SUMMARY, RunDir, _is_number, MODEL_SHAPE_FIELDS,
                     _read_error, checkpoint_glance, is_run_dir, last_record, read_summary, _settings, setting_changes,
                     weights_lost_at)


@dataclass(frozen=True)
class RunListing:
    """One run directory as listed. ``status``: "completed", "stopped" or "diverged" (how its last
    training ended), "training" (a process holds its lock now: training it, or a lab saving it),
    "interrupted" (its logs or checkpoint went on after its summary: a process killed mid-run),
    "untrained" or "damaged" (``problem`` says why: a spec that is not TOML, a checkpoint gone or
    unreadable)."""

    path: Path
    name: str | None
    task: str | None
    cell: str | None
    hidden_size: int | None
    step: int | None          # the last step logged; an interrupted run's checkpoint's (what it resumes from)
    steps: int | None         # the step its training ran (or runs) toward
    status: str
    loss: float | None        # the last training step's (an interrupted run's: its checkpoint's step's)
    eval: dict[str, Any] | None   # the last evaluation (up to an interrupted run's checkpoint): step, loss, accuracy
    eval_held_out: bool
    baseline: dict[str, Any] | None  # name, loss, accuracy: what a model that learned nothing scores
    updated: float            # when a file of it last changed (seconds since the epoch)
    problem: str = ""
    #: Its spec.toml's fields, flattened to dotted names ("train.learning_rate": 0.01).
    spec: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The listing as JSON values: the path a string, a loss that is not finite null."""
        def finite(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, (datetime.date, datetime.time)):  # a TOML date typed into a spec.toml
                return value.isoformat()
            if isinstance(value, list):
                return [finite(v) for v in value]
            return {k: finite(v) for k, v in value.items()} if isinstance(value, dict) else value

        record = {k: finite(getattr(self, k)) for k in self.__dataclass_fields__}
        record["path"] = str(self.path)
        return record


def _loss_key(loss: Any) -> tuple[bool, float]:
    """Lowest first; a run without one (or a non-finite one) last."""
    finite = isinstance(loss, (int, float)) and math.isfinite(loss)
    return (not finite, loss if finite else 0.0)


#: How :func:`list_runs` orders the runs: each a key for ``sorted`` (stable, after "updated").
SORTS: dict[str, Any] = {
    "updated": lambda run: -run.updated,
    "eval": lambda run: _loss_key((run.eval or {}).get("loss")),
    "loss": lambda run: _loss_key(run.loss),
    "name": lambda run: (run.name or "", str(run.path)),  # the experiment's, then the path
}


def list_runs(folder: str | Path, sort: str = "updated") -> list[RunListing]:
    """The run directories directly inside ``folder`` (or ``folder`` itself, if it is one), the
    most recently updated first, or in another of :data:`SORTS` (runs it cannot rank, such as
    those not yet evaluated, last). :class:`RunDirError` if ``folder`` is not a readable directory,
    ValueError for another ``sort``."""
    if not is_choice(sort, SORTS):
        raise ValueError(f"sort {choice_refusal(sort, tuple(SORTS))}")
    folder = Path(folder)
    try:
        if is_run_dir(folder):
            return [read_listing(folder)]
        children = sorted(folder.iterdir())
    except FileNotFoundError:
        raise RunDirError(_missing_folder(folder)) from None
    except NotADirectoryError:
        raise RunDirError(f"{folder} is not a directory") from None
    except OSError as exc:
        raise _read_error(folder, exc) from None
    runs = []
    for child in children:
        try:
            if is_run_dir(child):
                runs.append(read_listing(child))
        except (RunDirError, OSError):  # a run that cannot even be looked into is no run to list
            continue
    return sorted(sorted(runs, key=SORTS["updated"]), key=SORTS[sort])


def _missing_folder(folder: Path) -> str:
    """Why ``folder`` lists nothing, and where to look: a folder beside it that it was likely meant
    as, the runs beside it (a run's name mistyped), else where train puts runs. "(rnnlab train puts
    its runs in runs/)" was said of runs/x too, and of the default runs/ where train never ran
    ("runs does not exist")."""
    parent = folder.parent
    try:
        beside = [entry.name for entry in itertools.islice(os.scandir(parent), 1000) if entry.is_dir()]
    except OSError:
        beside = []
    meant = closest_name(folder.name, beside) if folder.name else None
    if meant is not None:
        return f"{folder} does not exist (did you mean {parent / meant}?)"
    if holds_runs(parent):
        return f"{folder} does not exist (rnnlab runs {shlex.quote(str(parent))} lists the runs beside it)"
    if folder == Path("runs"):  # the default: a folder of the working directory
        return f"no runs/ folder in {Path.cwd()} (rnnlab train makes it there; rnnlab runs FOLDER lists another)"
    return f"{folder} does not exist (rnnlab train puts its runs in runs/ of the folder it runs in, or in --out)"


def holds_runs(folder: Path) -> bool:
    """True for a folder that is no run directory but holds some (``runs/``), which the lab opened
    on it lists to choose from; False for anything else, one it cannot look into too."""
    try:
        return not is_run_dir(folder) and any(is_run_dir(child) for child in folder.iterdir())
    except (RunDirError, OSError):
        return False


def read_listing(path: Path) -> RunListing:
    """The :class:`RunListing` of the run directory at ``path``."""
    times = {name: _mtime(path / name) for name in RUN_FILES}  # (0 for a file it lacks)
    updated = max(times.values()) or _mtime(path)
    problem, resolved = "", None  # resolved: the Spec the other commands read (short of data)
    try:
        if kind := special_file(path / SPEC):  # read, it never ends
            raise OSError(f"it is {kind}")
        spec = spec_toml((path / SPEC).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        spec, problem = {}, f"{SPEC}: {_why(exc)}"
    else:  # TOML, but a spec every other command takes? (a hand edit: hidden_size = "x")
        problem, resolved = _spec_problem(spec, path)
    task, model, train = (_table(spec, key) for key in ("task", "model", "train"))
    summary = read_summary(path)
    last_step, last_eval = last_record(path / METRICS), last_record(path / EVALS)
    logged = last_step["step"] if last_step else None
    if problem:
        status = "damaged"
    elif RunDir.being_written(path):
        status = "training"
    elif isinstance((summary or {}).get("status"), str) and _summary_is_current(times, summary, logged):
        status = summary["status"]
    elif logged is not None or times[CHECKPOINT]:  # a checkpoint there
        status = "interrupted"
    else:
        status = "untrained"
    step = logged if logged is not None else (_int(summary.get("step")) if summary else None)
    if summary is not None and status == summary.get("status") and _int(summary.get("step")) is not None:
        step = _int(summary["step"])  # where it ended: a log whose last line was torn reads a step short
    loss = _float(last_step.get("loss")) if last_step else None
    evaluated = None if last_eval is None else {k: last_eval.get(k) for k in ("step", "loss", "accuracy")}
    # its small entries, not the weights: the step, and the settings trained with
    saved, trained_with = checkpoint_glance(path) if times[CHECKPOINT] else (None, None)
    if status not in ("damaged", "training"):  # weights gone or unreadable: every other command refuses them
        if saved == "unknown":
            status, problem = "damaged", f"{CHECKPOINT} cannot be read"
        elif saved is None and (lost := weights_lost_at(summary, last_step)) is not None:  # (RunDir.lost_step)
            status, problem = "damaged", f"no {CHECKPOINT}: the weights of step {lost} are gone"
        elif isinstance(saved, int) and resolved is not None \
                and (changed := setting_changes(trained_with or {}, _settings(resolved))):
            if reshaped := [change for change in changed if change.partition(":")[0] in MODEL_SHAPE_FIELDS]:
                status = "damaged"
                problem = f"{SPEC} no longer describes its checkpoint's model ({'; '.join(reshaped)})"
            else:  # readable (the lab, bptt, trace), but --resume and the lab's t refuse to train it further
                problem = (f"{SPEC} changed since its checkpoint was trained ({'; '.join(changed)}): it cannot be "
                           "trained further as it is")
    if not problem and isinstance(saved, int) and (logged or 0) < saved:  # the log cut, or another run's weights
        logs = (f"{METRICS} is missing" if not times[METRICS] else f"{METRICS} holds no step" if logged is None
                else f"{METRICS} ends at step {logged}")  # (emptied, or nothing in it a record: not "at step 0")
        problem = f"{logs}, but its {CHECKPOINT} is at step {saved}"
    if not problem and times[SUMMARY] and not isinstance((summary or {}).get("status"), str):  # (written atomically:
        # a hand edit, a disk's damage) listed "interrupted" unsaid why, as a run killed before its first summary
        problem = f"{SUMMARY} cannot be read (not JSON, or not as rnnlab writes it): how its training ended is unknown"
    if status == "interrupted" and times[CHECKPOINT]:  # what --resume goes on from: steps logged past it go
        if isinstance(saved, int) and logged is not None and saved < logged:  # the losses logged are past it:
            # the checkpoint's own, as the run stands ("-" for both read as if nothing was learned)
            at_checkpoint = last_record(path / METRICS, at_most=saved)
            loss = _float(at_checkpoint["loss"]) if at_checkpoint and at_checkpoint["step"] == saved else None
            if evaluated is not None and (_int(evaluated["step"]) or 0) > saved:
                earlier = last_record(path / EVALS, at_most=saved)
                evaluated = None if earlier is None else {k: earlier.get(k) for k in ("step", "loss", "accuracy")}
        step = saved if isinstance(saved, int) else step
    from_summary = summary is not None and status == summary.get("status")
    steps = _int(summary.get("steps")) if from_summary else _int(train.get("steps"))
    baseline, held_out = (summary.get("baseline"), bool(summary.get("eval_held_out", True))) if summary \
        else _baseline(task)
    return RunListing(
        path=path, name=_str(spec.get("name")), task=_str(task.get("kind")), cell=_str(model.get("cell")),
        hidden_size=_int(model.get("hidden_size")),
        step=step, steps=steps,
        status=status, loss=loss, eval=evaluated,
        eval_held_out=held_out,
        baseline=baseline if isinstance(baseline, dict) else None, updated=updated, problem=problem,
        spec=flat_fields(spec))


def _spec_problem(spec: dict[str, Any], path: Path) -> tuple[str, Any]:
    """Why every other command calls the run's parsed spec.toml damaged ("" for none), short of its
    data file, and the spec it reads as short of it (:meth:`~rnnlab.spec.Spec.short_of_data`: what
    is compared with its checkpoint's settings, None where it cannot be read). The data file is not
    read (a listing of many runs reads no corpus), and one gone or changed is not the spec's fault:
    the commands that read it say so, and the settings are then not compared."""
    from ..errors import DataError
    from ..spec import EMPTY_SPEC, Spec, SpecError

    if not spec:  # (the defaults would pass: every command refuses the file first)
        return f"{SPEC} {EMPTY_SPEC}", None
    try:  # (read with every check of the fields, once: a listing of thousands of runs checked each twice)
        return "", Spec.short_of_data(spec, base_dir=path.resolve(), saved=True)
    except SpecError as exc:
        return f"{SPEC}: {exc}", None
    except DataError:
        return "", None


#: Fields a listing shows in columns of their own (and the description, which follows the task
#: and cell): :func:`differing_fields` leaves them out.
LISTED_FIELDS = frozenset({"name", "description", "task.kind", "model.cell", "model.hidden_size", "train.steps"})


def differing_fields(runs: Sequence[RunListing]) -> list[str]:
    """The spec fields whose values differ between runs of one experiment (one name) among ``runs``:
    what a sweep changed (``train.learning_rate``, ``seed``), in the spec's order, but for
    :data:`LISTED_FIELDS`."""
    by_name: dict[str | None, list[RunListing]] = {}
    for run in runs:
        by_name.setdefault(run.name, []).append(run)
    differing: dict[str, None] = {}
    for group in by_name.values():
        if len(group) < 2:
            continue
        keys = dict.fromkeys(key for run in group for key in run.spec)
        for key in keys:
            # a field some runs lack follows from another that differs (sgd's momentum, from the optimizer)
            if key not in LISTED_FIELDS and all(key in run.spec for run in group) \
                    and len({repr(run.spec[key]) for run in group}) > 1:
                differing[key] = None
    return list(differing)


def setting_text(value: Any) -> str:
    """A spec value as a listing shows it: 0.001 and 1e-05 as TOML writes them (every digit),
    true/false, "-" for none."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


#: How much older (seconds) than the logs and checkpoint a summary may be and still describe them:
#: a copied run's files (``cp -r``) get their times in the order they were copied.
_COPY_SLACK = 2.0


def _summary_is_current(times: dict[str, float], summary: dict[str, Any], logged: int | None) -> bool:
    """Whether ``summary.json`` describes the run as it is (``times``: its files' modification
    times): it is written last, after the final checkpoint and log lines, so a process killed after
    it went on (a resume, which first cuts the logs back) left logs or a checkpoint newer than it,
    or logged past its step."""
    summarized = _int(summary.get("step"))
    if logged is not None and (summarized is None or logged > summarized):
        return False
    return times[SUMMARY] >= max(times[METRICS], times[CHECKPOINT]) - _COPY_SLACK


def _baseline(task: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """The baseline of a run that has no summary yet (one in training, or killed), where its task
    draws its own data, and whether its eval batch is held out (hello's is its one word: listed
    "(train)", as a summary says it); a task that reads a file (reading it could take seconds) gets
    (None, True)."""
    from ..data import make_task

    if "path" in task or not isinstance(task.get("kind"), str):
        return None, True
    try:
        made = make_task(task["kind"], {k: v for k, v in task.items() if k != "kind"}, None)
        baseline = made.baseline()
    except UserError:  # a spec an older or newer rnnlab wrote: no baseline, still a row (a bug still shows)
        return None, True
    return None if baseline is None else asdict(baseline), not made.eval_not_held_out  # as summary.json holds them


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


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if _is_number(value) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
