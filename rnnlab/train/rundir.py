"""Run directories: what ``rnnlab train`` leaves behind, and what ``--resume`` continues.

::

    RUN/
      spec.toml        the resolved spec (every default its cell and optimizer read, absolute paths)
      metrics.jsonl    one line per training step: step, loss, accuracy, grad_norm, clipped, time
      evals.jsonl      one line per evaluation on the held-out batch: step, loss, accuracy
      checkpoint.npz   weights, optimizer state, step, carried state (plain arrays, never pickle), and
                       what they were trained on (a character model's vocabulary, a text file's sha256):
                       weights whose data changed since are refused, not read against other characters
      summary.json     the final summary (also printed by ``rnnlab train --json``)
      .rnnlab.lock     held (flock) by the process writing the run: training, or the lab saving it

Every file but the two ``.jsonl`` logs is replaced atomically (temp file + ``os.replace``); the logs
are appended and, on resume, cut back to the checkpoint's step, so a run stopped at any moment
(Ctrl-C, a crash, a full disk) is always consistent. A resume takes the writer lock before it
changes any file, and holds it until training ends.

A log line that is not a record (not JSON, such as the torn last line a crash leaves, or JSON
that is not an object with every field of the record, of the right type) is skipped by every
reader, with one warning line on stderr per file naming the lines; a resume removes such lines
when it cuts the log back, saying so the same way. Keys a record does not have are ignored.
A file that cannot be read at all (no permission, a directory in its place) is refused as one
line naming it and the reason (:class:`RunDirError`): nothing is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import stat
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from .. import notices
from ..data.files import user_path
from ..data.text import display_char
from ..errors import RunDirError, SpecError, TargetExistsError, UserError, WriteFailed, counted, special_kind
from ..fsio import atomic_file, atomic_write_text, not_a_directory, os_error_reason, stat_or_none, write_error
from ..spec import DataFileError, Spec, parse_spec, respelt_spec, spec_toml
from .trainer import EvalRecord, StepRecord, Trainer, TrainingDiverged

SPEC, METRICS, EVALS, CHECKPOINT, SUMMARY = "spec.toml", "metrics.jsonl", "evals.jsonl", "checkpoint.npz", "summary.json"
RUN_FILES = (SPEC, METRICS, EVALS, CHECKPOINT, SUMMARY)
LOCK = ".rnnlab.lock"
#: How long (seconds) :meth:`RunDir.writing` waits for a lock another process holds before it
#: gives up: out-waits a probe (:meth:`RunDir.being_written`), not a writer.
LOCK_PATIENCE = 0.2
FORMAT_VERSION = 1
#: What np.load raises for a file that is not a readable .npz (EOFError: an empty file).
_UNREADABLE = (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile, zlib.error)
#: How every .npz file (a zip archive) starts: np.load's own test, before it falls back to pickle.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
def npz_target(path: str | Path, what: str, *, replace: bool = True, example: str | None = None) -> Path:
    """``path`` as the place to write a ``.npz`` file: UserError (naming ``what``: "trace file",
    "export file") unless it ends in .npz, its directory exists and it is not a directory itself.
    A directory is refused as one, before its want of ``.npz``, with a file in it to give instead
    (``example``, by default ``what``'s first word: ``/tmp is a directory: name the trace file in it,
    e.g. /tmp/trace.npz``).
    ``replace=False`` also refuses an existing file with a :class:`TargetExistsError` (the CLI's
    default; ``--force`` replaces it).
    A run directory's own files (its ``checkpoint.npz``) are refused always: writing there would
    destroy a trained run."""
    if not str(path).strip():
        raise UserError(f"no name given for the {what} (a path ending in .npz)")
    path = user_path(path)
    try:  # a name too long for the file system, a directory that may not be looked in: OSError
        if path.is_dir():  # refused at once (--force would only fail to replace it), and not for its suffix
            example = example or f"{what.split()[0]}.npz"
            raise UserError(f"{path} is a directory: name the {what} in it, e.g. {path / example}")
        if path.suffix != ".npz":
            raise UserError(f"{what} must end in .npz: {path}")
        if not path.parent.is_dir():
            if reason := not_a_directory(path):  # (good.toml/x.npz: good.toml is there)
                raise UserError(f"cannot write the {what} {path}: {reason}")
            raise UserError(f"no such directory for the {what}: {path.parent}")
        if is_run_file(path):
            raise UserError(f"{path} belongs to the run directory {path.parent}: choose another name for the {what}")
        if not replace and (path.exists() or path.is_symlink()):
            raise TargetExistsError(path)
    except OSError as exc:
        raise UserError(f"cannot write the {what} {path}: {exc.strerror or exc}") from None
    return path


def stat_path(path: str | Path) -> os.stat_result | None:
    """``path``'s ``os.stat``, or None if nothing is there; :class:`RunDirError` naming it if the
    OS will not say (a directory above it that may not be looked in): what ``Path.exists`` and
    ``Path.is_dir`` raise as a PermissionError."""
    return stat_or_none(path, RunDirError)


def is_run_dir(path: str | Path) -> bool:
    """True if ``path`` is a directory holding a ``spec.toml`` (what :meth:`RunDir.open` opens);
    :class:`RunDirError` if the OS will not say (a directory without permission to look in)."""
    path = Path(path)
    try:
        (path / SPEC).stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise _read_error(path, exc) from None
    return path.is_dir()


def is_run_file(path: str | Path) -> bool:
    """True if ``path`` names one of a run directory's own files (``checkpoint.npz``, ``spec.toml``,
    ...) inside a directory that holds another of them (a run directory, or what is left of one)."""
    path = Path(path)
    if path.name not in RUN_FILES:
        return False
    return any((path.parent / name).is_file() for name in RUN_FILES if name != path.name)


def atomic_save_npz(path: Path, arrays: Mapping[str, np.ndarray], *, replace: bool = True) -> None:
    """``np.savez`` through a temp file and ``os.replace``; ``replace=False`` as :func:`atomic_file`."""
    with atomic_file(path, replace=replace) as handle:
        np.savez(handle, **arrays)


def default_run_path(spec: Spec, root: Path = Path("runs")) -> Path:
    """``runs/<name>-<YYYYmmdd-HHMMSS>``, with a numeric suffix if that exists already."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = root / f"{spec.name}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = Path(f"{base}-{n}")
    return path


@dataclass
class RunDir:
    """A run directory on disk. Create with :meth:`create`, reopen with :meth:`open`."""

    path: Path
    spec: Spec
    _pending: list[str] = field(default_factory=list, repr=False)
    _pending_evals: list[str] = field(default_factory=list, repr=False)
    _writer: int | None = field(default=None, repr=False, compare=False)  # the thread holding the lock
    #: Opened with its data file found where it moved with the run (:func:`_moved_data_file`):
    #: ``spec`` reads it there, and a resume writes that path into spec.toml.
    data_moved: bool = field(default=False, compare=False)
    #: How many steps the lab's ``t`` trains past a finished run: the ``train.steps`` it was made
    #: with, which each checkpoint keeps (a save of the lab's grown steps, or a resume to more, does
    #: not change it: each round doubled after a save and a reopen). Set from the checkpoint it reads.
    more_steps: int = field(default=0, compare=False)
    #: A character model's text may have changed since, its characters not (``rnnlab sample``: the
    #: vocabulary is what the weights read and write): a note on stderr, not a refusal.
    text_may_differ: bool = field(default=False, compare=False)

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(cls, path: Path, spec: Spec) -> "RunDir":
        """A new run directory holding ``spec``; refuses a non-empty existing directory."""
        path = Path(path)
        try:  # a name too long for the file system is an OSError from the first look at it
            if path.exists() and not path.is_dir():
                raise RunDirError(f"{path} is a file, not a directory; choose another --out")
            if path.exists() and any(path.iterdir()):
                raise RunDirError(f"{path} already exists and is not empty; choose another --out or --resume it")
            # a run's folder (its spec.toml, log and evaluations) as the parent: rnnlab runs of the folder
            # the runs are in would not list this one (one a level deeper it does: runs/ inside a run)
            holder = Path(os.path.normpath(path.absolute())).parent
            if all((holder / name).is_file() for name in (SPEC, METRICS, EVALS)):
                raise RunDirError(f"{holder} is a run directory: rnnlab runs would not list a run inside it; "
                                  "choose a place beside it")
            made = not path.exists()
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create run directory {path}: {os_error_reason(path, exc)}") from None
        written: list[Path] = []
        try:  # put in place only where none is: a run started into the same folder a moment before keeps its own
            with atomic_file(path / SPEC, replace=False) as handle:
                handle.write(spec.to_toml().encode("utf-8"))
            written.append(path / SPEC)
            for name in (METRICS, EVALS):
                try:
                    (path / name).touch()
                except OSError as exc:
                    raise write_error(path / name, exc) from None
                written.append(path / name)
        except TargetExistsError:
            raise RunDirError(f"{path} already exists and is not empty; choose another --out or --resume it") from None
        except (UserError, WriteFailed):  # a full disk: no empty run left behind (runs/ filled with them, one a
            for file in written:          # retry); rmdir keeps a folder another process put files in meanwhile
                with contextlib.suppress(OSError):
                    file.unlink()
            if made:
                with contextlib.suppress(OSError):
                    path.rmdir()
            raise
        return cls(path, spec, more_steps=spec.train.steps)

    @classmethod
    def open(cls, path: Path, *, warn_untrained: bool = True) -> "RunDir":
        """An existing run directory; :class:`RunDirError` says why a path is not one.

        One without a checkpoint gives its reader the initial weights; ``warn_untrained`` says so on
        stderr (what the lab, ``bptt`` and ``trace`` load). Callers that refuse such a run pass False."""
        path = Path(path)
        found = stat_path(path)
        if found is None:
            raise RunDirError(f"no such run directory: {path}")
        if not stat.S_ISDIR(found.st_mode):
            raise RunDirError(f"{path} is not a run directory (it is a file)")
        spec_file = path / SPEC
        try:
            mode = spec_file.stat().st_mode  # the directory itself unreadable: name it, not the spec it may hold
        except (FileNotFoundError, NotADirectoryError):
            if path.suffix.lower() == ".toml":  # as train says it of the same folder
                raise RunDirError(f"{path} is a directory, not a spec file (nor a run directory: it has no "
                                  f"{SPEC})") from None
            raise RunDirError(f"{path} is not a run directory: it has no {SPEC}{_runs_inside(path)}") from None
        except OSError as exc:
            raise _read_error(path, exc) from None
        if kind := special_kind(mode):  # read, it never ends
            raise RunDirError(f"{path} has a damaged {SPEC}: it is {kind}")
        try:
            text = spec_file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise RunDirError(f"{path} has a damaged {SPEC}: not UTF-8") from None
        except OSError as exc:  # no permission, a directory of that name
            raise _read_error(spec_file, exc) from None
        moved = None
        try:
            spec = parse_spec(text, source=str(spec_file), base_dir=path.resolve(), saved=True)
        except DataFileError as exc:  # the spec is sound: the file it trained on is gone or changed
            moved = _moved_data_file(path, exc) if exc.missing else None
            if moved is None and exc.missing:
                raise RunDirError(f"{path}'s data file {exc.path} ({exc.field}) is missing: put it back to use "
                                  "the run") from None
            if moved is None:
                raise RunDirError(f"{path}'s data file ({exc.field}) cannot be used: {exc.reason}") from None
            spec = _with_data_file(text, spec_file, path, moved)
            # once per stream, though a command opens the run twice (the lab, reading stderr for its
            # notices, opens it again after the CLI's check: it must see the note too)
            if (noted := (str(path), str(moved), notices.listener())) not in _NOTED_MOVES:
                _NOTED_MOVES.add(noted)
                notices.note(f"{exc.path} is gone; using {moved}, at the same place relative to the run as when "
                             "it was trained")
        except SpecError as exc:
            raise RunDirError(f"{path} has a damaged {SPEC}: {exc}") from None
        run = cls(path, spec, data_moved=moved is not None, more_steps=spec.train.steps)
        if (lost := run.lost_step()) is not None:  # read as untrained, the run would claim weights it lost
            raise RunDirError(f"{path} has no {CHECKPOINT}: the weights of step {lost} are gone (its experiment "
                              f"from the start: {path / SPEC})")
        if warn_untrained and not run.has_checkpoint:
            notices.warn(f"{path} has no {CHECKPOINT}: its weights are the initial ones, untrained")
        return run

    def write_spec(self, spec: Spec) -> None:
        """Make ``spec`` this run's spec, and its spec.toml say it: a file that says the same already
        is left alone; one whose changed values are each a one-line ``key = value`` gets those values
        respelt in place, its comments kept (:func:`~rnnlab.spec.respelt_spec`); another is written whole."""
        try:
            text = (self.path / SPEC).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = None
        new = spec.to_toml() if text is None else respelt_spec(text, spec)
        if new != text:
            atomic_write_text(self.path / SPEC, new)
        self.spec = spec

    @property
    def has_checkpoint(self) -> bool:
        """Whether something is at ``checkpoint.npz``: a directory there is a checkpoint that cannot
        be read (reading it says so), not an untrained run."""
        return stat_path(self.path / CHECKPOINT) is not None

    def lost_step(self) -> int | None:
        """The step whose weights are gone: no checkpoint.npz where the summary names a checkpoint of a
        step past 0 or the log holds training steps (the file deleted or moved), as ``rnnlab runs``
        lists it damaged; None where nothing is lost (step 0's weights are the seed's, drawn again)."""
        return None if self.has_checkpoint else weights_lost_at(self.read_summary(), last_record(self.path / METRICS))

    @property
    def never_trained(self) -> bool:
        """No checkpoint, and no step whose weights it lost (:meth:`lost_step`): a run killed before its
        first checkpoint, a folder holding only a spec.toml, one saved untrained whose checkpoint went.
        Resuming it trains from step 0, as a new run of its spec (whose seed draws the same weights)."""
        return not self.has_checkpoint and self.lost_step() is None

    @contextlib.contextmanager
    def writing(self) -> Iterator[bool]:
        """Try to take this run's writer lock (an advisory ``flock`` on ``.rnnlab.lock``, released
        when the ``with`` ends or the process dies); yields whether this process got it. Another
        process training or saving the run holds it. Without ``fcntl`` (Windows) it yields True.

        Reentrant for this object in the thread holding it: a resume takes the lock before it
        changes any file and :func:`train_run`, inside, takes it again."""
        if self._writer == threading.get_ident():
            yield True
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield True
            return
        try:
            handle = open(self.path / LOCK, "a")
        except OSError as exc:
            raise write_error(self.path / LOCK, exc) from None
        with handle:
            # a moment's patience: `rnnlab runs` (and the lab's open dialog) probe the lock for an
            # instant (being_written); a real holder, training or saving, holds it for much longer
            deadline = time.monotonic() + LOCK_PATIENCE
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        yield False
                        return
                    time.sleep(0.01)
            self._writer = threading.get_ident()
            try:
                yield True
            finally:
                self._writer = None
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def being_written(path: Path) -> bool:
        """Whether a process holds the writer lock of the run directory at ``path`` now (training
        it, or a lab saving it): :meth:`writing` would be refused. Only opens the lock file to read,
        and takes a shared lock for an instant, which :meth:`writing` waits out."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return False
        try:
            with open(path / LOCK, "rb") as handle:  # no lock file: never written under a lock
                try:
                    fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                fcntl.flock(handle, fcntl.LOCK_UN)
        except OSError:
            return False
        return False

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """:meth:`writing`, refusing (:class:`RunDirError`, nothing changed) a run that another
        process holds: what must be entered before any file of the run is changed."""
        with self.writing() as held:
            if not held:
                raise RunDirError(f"{self.path} is being written by another rnnlab process (training it, or a lab "
                                  "saving it): wait for it to finish, or train a copy")
            self._remove_unfinished_writes()
            yield

    def _remove_unfinished_writes(self) -> None:
        """The temporary files (:func:`~rnnlab.fsio.atomic_file`'s ``.checkpoint.npz.*.tmp``) of a
        writer killed mid-write: as large as what they would have replaced, and never read. Only a
        writer holding the run's lock writes them, so while this one holds it they are all leftovers."""
        for name in RUN_FILES:
            for leftover in self.path.glob(f".{name}.*.tmp"):
                with contextlib.suppress(OSError):  # (one that cannot be removed costs only its space)
                    leftover.unlink()

    def state(self) -> tuple[int | None, int]:
        """What a writer compares to see whether another process changed the run since it looked:
        the checkpoint's step (:meth:`checkpoint_step`) and the size of ``metrics.jsonl``."""
        metrics = self.path / METRICS
        return self.checkpoint_step(), metrics.stat().st_size if metrics.is_file() else 0

    def checkpoint_step(self) -> int | None:
        """The step of the checkpoint on disk now: None without one, -1 for one that cannot be read
        (what a writer that must not overwrite another's progress compares against)."""
        if not self.has_checkpoint:
            return None
        step = _checkpoint_step(self.path)
        return step if isinstance(step, int) else -1

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, trainer: Trainer) -> None:
        """Flush the logs, then replace the checkpoint atomically."""
        self.flush()
        arrays = dict(trainer.state_arrays())
        meta = {"format": FORMAT_VERSION, "step": trainer.step, "spec": trainer.spec.name,
                "settings": _settings(trainer.spec), "more_steps": self.more_steps or trainer.spec.train.steps,
                "evaluation": _evaluation(trainer.spec), "environment": environment()}
        data = _data_record(trainer.task, self.path)
        if data:
            meta["data"] = data
        arrays["meta"] = np.array(json.dumps(meta))
        atomic_save_npz(self.path / CHECKPOINT, arrays)

    def resume(self, trainer: Trainer) -> None:
        """Restore ``trainer`` from the checkpoint and cut the logs back to its step (to continue
        training); the writer lock (:meth:`exclusive`) is held while the logs are cut, not after:
        a caller that trains the run next holds :meth:`exclusive` across both (as ``rnnlab train
        --resume`` does) where another process may write it. A spec.toml edited since the
        checkpoint is refused first, as that command refuses it (:meth:`check_settings`)."""
        self.check_settings()
        self.read_checkpoint(trainer)
        with self.exclusive():
            self.cut_logs(trainer.step)

    def cut_logs(self, step: int) -> int | None:
        """Cut the logs back to ``step`` (the checkpoint's), before training continues from it:
        lines past it (written after the checkpoint) and lines that are not records go. Both logs
        are read before either is written, so one that cannot be read changes no file; a log with
        nothing to drop, whose last line ends in a newline, is not rewritten (without it the next
        record appended would join the last one). Returns the last step logged past ``step``
        (trained again from there), None for none."""
        cuts = []
        dropped = None
        for name in (METRICS, EVALS):
            file = self.path / name
            if not file.exists():
                if name == METRICS:
                    self._warn_of_lost_steps(set(), step)
                cuts.append((file, None))
                continue
            log = _read_log(file, warn=False)
            kept = [line for line, row in zip(log.lines, log.rows) if row["step"] <= step]
            if name == METRICS and log.rows and log.rows[-1]["step"] > step:
                dropped = log.rows[-1]["step"]
            if name == METRICS:
                self._warn_of_lost_steps({row["step"] for row in log.rows if row["step"] <= step}, step)
            cuts.append((file, (log, kept)))
        for file, cut in cuts:
            if cut is None:
                file.touch()
                continue
            log, kept = cut
            if len(kept) != log.count or not log.ends_a_line:  # appending would join two records
                log.warn("removed")
                atomic_write_text(file, "".join(line + "\n" for line in kept))
        return dropped

    def _warn_of_lost_steps(self, logged: set[int], step: int) -> None:
        """A warning where ``metrics.jsonl`` lacks some of the steps up to the checkpoint's (cut by
        hand, or a checkpoint copied from a run further on): the resumed log would have a gap that
        nothing else names."""
        if missing := step - len(logged & set(range(1, step + 1))):
            first = min(set(range(1, step + 1)) - logged)
            notices.warn(f"{self.path / METRICS} lacks {missing} of the {step} steps up to the checkpoint's (the "
                         f"first missing: step {first}); training goes on from step {step} and the gap stays in "
                         "the log")

    def read_checkpoint(self, trainer: Trainer) -> None:
        """Restore ``trainer``'s weights, optimizer and step from the checkpoint; changes no file.

        :class:`RunDirError` if the OS will not let it be read ("cannot read": no permission), if
        its contents are not a checkpoint rnnlab wrote ("is damaged", a step that is not an
        integer >= 0 too), if the data it was trained on changed since (:meth:`_check_same_data`),
        or if its arrays do not fit the model ``spec.toml`` describes ("does not match")."""
        file = self.path / CHECKPOINT
        if not self.has_checkpoint:
            raise RunDirError(f"{self.path} has no {CHECKPOINT} to resume from")
        arrays, meta = self._checked_checkpoint(trainer.task)
        # spec.toml names another optimizer than the checkpoint's (a hand edit): the run reads (bptt,
        # trace, the lab), as `runs` says, but its optimizer's state is not this one's; training it
        # further is refused (check_settings) before any step would use the fresh one
        other_optimizer = bool(self.changed_settings(only=("train.optimizer",)))
        try:
            trainer.load_state_arrays(arrays, optimizer=not other_optimizer)
        except ValueError as exc:  # readable, but not this model's: another shape, cell or optimizer
            raise RunDirError(f"{file} does not match {self.path / SPEC}: {exc} "
                              f"(was {SPEC} or the training data changed?)") from None
        except (KeyError, TypeError) as exc:
            raise RunDirError(f"{file} is damaged and cannot be read: {_reason(exc)}") from None
        more = meta.get("more_steps")  # (checkpoints written before it was kept: the spec's steps)
        if isinstance(more, int) and not isinstance(more, bool) and more >= 1:
            self.more_steps = more

    def check_checkpoint(self, task) -> None:
        """What :meth:`read_checkpoint` checks before it loads the weights into a model (``rnnlab spec``
        on a run): the file reads as a checkpoint rnnlab wrote, the data it was trained on is
        ``task``'s, spec.toml's model is its model. Nothing to check without a checkpoint."""
        if self.has_checkpoint:
            self._checked_checkpoint(task)

    def _checked_checkpoint(self, task) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The checkpoint's arrays (but its meta) and its meta, after :meth:`check_checkpoint`'s checks."""
        file = self.path / CHECKPOINT
        try:
            with _open_npz(file) as data:
                arrays = {key: data[key] for key in data.files}
            meta = _checkpoint_meta(arrays.pop("meta"))
            saved_data = _saved_data(meta)
            _step_and_elapsed(arrays)  # scalars in range; anything else is not a checkpoint rnnlab wrote
            _check_finite(arrays)
        except _UNREADABLE as exc:
            raise _unreadable(file, exc) from None
        self._check_same_data(saved_data, task)
        self.check_model()
        return arrays, meta

    def changed_settings(self, only: Collection[str] | None = None) -> list[str]:
        """The settings ``spec.toml`` now gives otherwise than the checkpoint was trained with,
        ``"train.learning_rate: 0.05 -> 5.0"`` (a hand edit), in the spec's order; [] where none changed,
        for a checkpoint that cannot be read or one saved before checkpoints kept them. The fields a
        resume may change (the steps, the device), how often and on how much it evaluates and when it
        saves (the weights' path is the same), the name, the description and the data file's path (it
        moves with the run) are left out; so is a field one of the two does not record (a checkpoint
        of an rnnlab with other fields). ``only``: these fields alone."""
        saved = checkpoint_settings(self.path)
        if saved is None:
            return []
        now = _settings(self.spec)
        return setting_changes(saved, now if only is None else {k: v for k, v in now.items() if k in only})

    def check_settings(self, fix: str | None = None) -> None:
        """RunDirError naming the settings spec.toml was edited in since the checkpoint was trained
        (:meth:`changed_settings`), ending in ``fix`` (default: how to train the variant as a new
        run): what refuses to train such a run further, which would no longer say how it trained."""
        if changed := self.changed_settings():
            raise RunDirError(f"{self.path / SPEC} changed since its checkpoint was trained ({'; '.join(changed)}): "
                              f"{fix or self._variant_hint()}")

    def check_model(self) -> None:
        """RunDirError naming the model settings spec.toml gives otherwise than the checkpoint was
        trained with that give its weights other shapes (``model.hidden_size: 8 -> 9``): they would
        not load. The rest (an init, a scan method, a nonlinearity) leave them loadable, as before.
        Nothing for a checkpoint that predates recording them (its loading says "does not match")."""
        if changed := self.changed_settings(only=MODEL_SHAPE_FIELDS):
            raise RunDirError(f"{self.path / SPEC} no longer describes its checkpoint's model ({'; '.join(changed)}): "
                              f"{self._variant_hint()}")

    def _variant_hint(self) -> str:
        """How a refused edit is undone, or trained on: the end of :meth:`check_settings`' and
        :meth:`check_model`'s messages."""
        return (f"put it back, or train the variant as a new run: rnnlab train "
                f"{shlex.quote(str(self.path / SPEC))} --out NEW")

    def check_data(self, task) -> None:
        """:meth:`_check_same_data` alone, from the checkpoint's meta (no weights read): what the
        lab calls before its screen opens, so a changed data file is one line and exit 2 there
        too. Nothing to check without a checkpoint, or in one that cannot be read (reading its
        weights says why)."""
        try:
            with _open_npz(self.path / CHECKPOINT) as data:
                saved = _saved_data(data["meta"])
        except _UNREADABLE:
            return
        self._check_same_data(saved, task)

    def _check_same_data(self, saved: Mapping[str, Any], task) -> None:
        """RunDirError, naming the file, if ``task`` (built from ``spec.toml`` and the data file as
        they are now) no longer has the data the checkpoint's weights were trained on (``saved``:
        :func:`_data_record` at the time). A character model's class ids index its vocabulary, so
        the same number of other characters would load without error and mean nothing."""
        where = getattr(task, "path", None) or self.path / SPEC
        advice = "restore it, or train a new run on it"
        relative = saved.get("file_from_run")  # a project moved whole, another file made at the old place
        beside = Path(os.path.normpath(self.path.resolve() / relative)) if isinstance(relative, str) else None
        if beside is not None and beside != Path(where) and beside.is_file():
            advice += (f"; or, if {beside} (where it sat beside the run) is the file trained on, set task.path to it "
                       f"in {self.path / SPEC}")
        vocabulary = saved.get("vocabulary")
        if vocabulary is not None and vocabulary != "".join(getattr(task, "chars", ())):
            raise RunDirError(f"{where}: its characters changed since {self.path} was trained "
                              f"({_vocabulary_change(vocabulary, getattr(task, 'chars', ()))}); {advice}")
        digest = saved.get("sha256")
        if digest is not None and digest != getattr(task, "data_sha256", None):
            if vocabulary is not None and self.text_may_differ:
                notices.note(f"{where}'s text changed since {self.path} was trained (the same characters): the "
                             "model is used as it was trained")
                return
            same = "the same characters, other contents" if vocabulary is not None else "other numbers"
            raise RunDirError(f"{where}: its {'text' if vocabulary is not None else 'data'} changed since "
                              f"{self.path} was trained ({same}); {advice}")

    # ------------------------------------------------------------------ logs
    def record(self, event: StepRecord | EvalRecord) -> None:
        """Queue a step or evaluation record for its log (written by :meth:`flush`)."""
        line = json.dumps(event.to_json())
        (self._pending if isinstance(event, StepRecord) else self._pending_evals).append(line)

    def flush(self) -> None:
        """Append the queued records to metrics.jsonl and evals.jsonl."""
        for name, pending in ((METRICS, self._pending), (EVALS, self._pending_evals)):
            if pending:
                try:  # a torn last line (a full disk) is dropped when the logs are cut back on resume
                    with open(self.path / name, "a", encoding="utf-8") as handle:
                        handle.write("".join(line + "\n" for line in pending))
                except OSError as exc:
                    raise write_error(self.path / name, exc) from None
                pending.clear()

    def read_metrics(self) -> list[dict[str, Any]]:
        """``metrics.jsonl``'s step records, each a dict of :class:`StepRecord`'s fields (lines that
        are not one are skipped with a warning: see the module docstring); [] without the file.
        :class:`RunDirError` if it cannot be read."""
        return _read_log(self.path / METRICS).rows

    def read_evals(self) -> list[dict[str, Any]]:
        """``evals.jsonl``'s records, each a dict of :class:`EvalRecord`'s fields, as :meth:`read_metrics`."""
        return _read_log(self.path / EVALS).rows

    def read_summary(self) -> dict[str, Any] | None:
        """``summary.json`` as written by :meth:`write_summary`, or None if it is missing or unreadable
        (a run stopped between its last checkpoint and its summary)."""
        return read_summary(self.path)

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        """Replace summary.json (atomically) with ``summary`` (:func:`make_summary`'s)."""
        atomic_write_text(self.path / SUMMARY, json.dumps(summary, indent=2) + "\n")


def read_summary(path: Path) -> dict[str, Any] | None:
    """The ``summary.json`` of the run directory at ``path`` (:meth:`RunDir.read_summary`)."""
    try:
        summary = json.loads((path / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def last_record(file: Path, at_most: int | None = None) -> dict[str, Any] | None:
    """The last record of a log (``metrics.jsonl`` or ``evals.jsonl``), read from its tail, or None:
    lines that are not records (a torn last line, as a crash leaves) are passed over, as
    :func:`_read_log` skips them. ``at_most``: the last of a step up to it (a checkpoint's, where a
    killed run logged past it), looked for in a longer tail, None where that holds none."""
    record_type = _LOGS[file.name][0]
    tail = _TAIL_BYTES if at_most is None else _LONG_TAIL_BYTES
    try:
        with open(file, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(size - tail, 0))
            lines = handle.read().split(b"\n")
    except OSError:
        return None
    for line in reversed(lines[1:] if size > tail else lines):  # the first may be cut
        try:
            record = _record(json.loads(line), record_type)
        except ValueError:
            continue
        if at_most is None or record["step"] <= at_most:
            return record
    return None


#: The tail of a log :func:`last_record` reads: a record is about 150 bytes.
_TAIL_BYTES = 8192
#: ... and where it looks for a checkpoint's step: the steps a run logs between two checkpoints
#: (``train.checkpoint_every``, 50 in hello, 100 by default) and a few thousand more.
_LONG_TAIL_BYTES = 512 * 1024

#: What each log holds: its record type and how a warning names one.
_LOGS = {METRICS: (StepRecord, "a step record", "step records"), EVALS: (EvalRecord, "an eval record", "eval records")}


@dataclass
class _Log:
    """A log file as read: its good lines (text as written) with their records, and the numbers
    of the lines that are not a record (1-based)."""

    file: Path
    what: tuple[str, str]  # a record, records
    lines: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    bad: list[int] = field(default_factory=list)
    ends_a_line: bool = True  # False: the last line has no newline (a write cut short, an editor)

    @property
    def count(self) -> int:
        return len(self.lines) + len(self.bad)

    def warn(self, done: str) -> None:
        """One line on stderr naming the lines that are not records and what was ``done`` with them."""
        if not self.bad:
            return
        shown = ", ".join(map(str, self.bad[:5])) + (f", ... ({len(self.bad)} in all)" if len(self.bad) > 5 else "")
        which = f"line {shown} is not {self.what[0]}" if len(self.bad) == 1 else f"lines {shown} are not {self.what[1]}"
        notices.warn(f"{self.file}: {which}: {done}")


def _read_log(file: Path, *, warn: bool = True) -> _Log:
    """``file`` (``metrics.jsonl`` or ``evals.jsonl``) as a :class:`_Log`: an empty one if it does
    not exist, :class:`RunDirError` if it cannot be read. ``warn``: say which lines were skipped."""
    record_type, *what = _LOGS[file.name]
    log = _Log(file, tuple(what))
    try:
        text = file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return log
    except OSError as exc:  # no permission, a directory of that name
        raise _read_error(file, exc) from None
    log.ends_a_line = not text or text.endswith("\n")
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = _record(json.loads(line), record_type)
        except ValueError:  # not JSON (a torn last line), or JSON that is not a record
            log.bad.append(number)
            continue
        log.lines.append(line)
        log.rows.append(row)
    if warn:
        log.warn("skipped")
    return log


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: The type of each record field that is not a plain number (every other one is).
_FIELD_CHECKS: dict[str, Callable[[Any], bool]] = {
    "step": lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= 0,
    "clipped": lambda value: isinstance(value, bool),
    "accuracy": lambda value: value is None or _is_number(value),
}


def _record(row: Any, record_type: type) -> dict[str, Any]:
    """``row`` (a parsed log line) as the fields of ``record_type`` (:class:`StepRecord`,
    :class:`EvalRecord`); ValueError unless it is an object with each of them, of its type.
    Other keys are ignored; a field with a default may be missing."""
    if not isinstance(row, dict):
        raise ValueError("not an object")
    out = {}
    for item in fields(record_type):
        if item.name not in row:
            if item.default is MISSING and item.default_factory is MISSING:
                raise ValueError(f"no {item.name}")
            continue
        value = row[item.name]
        if not _FIELD_CHECKS.get(item.name, _is_number)(value):
            raise ValueError(f"bad {item.name}")
        out[item.name] = value
    return out


@dataclass
class RunOutcome:
    """How a call to :func:`train_run` ended."""

    status: str                  # "completed", "stopped" (interrupted; resumable) or "diverged"
    summary: dict[str, Any]
    message: str = ""


def train_run(run: RunDir, trainer: Trainer, until_step: int, *,
              should_stop: Callable[[], bool] = lambda: False,
              on_event: Callable[[StepRecord | EvalRecord], None] = lambda event: None) -> RunOutcome:
    """Train ``trainer`` to ``until_step`` updates, logging to and checkpointing ``run``, under its
    writer lock (:meth:`RunDir.exclusive`; a caller that prepared the run under it keeps it).

    Checkpoints every ``train.checkpoint_every`` steps and when it ends or is stopped; a diverged
    run keeps its last good checkpoint (the update that went non-finite is never applied or saved).

    ValueError, before anything is written, for a ``trainer`` of another experiment than the run's
    (its settings, as :meth:`RunDir.changed_settings` compares them), one behind the run's
    checkpoint (a trained run resumed without :meth:`RunDir.resume`: its checkpoint and log would
    be overwritten from step 0), or an ``until_step`` that is no integer past the trainer's step.
    An ``until_step`` past the run's ``train.steps`` becomes its ``train.steps`` in spec.toml.
    """
    if isinstance(until_step, bool) or not isinstance(until_step, int) or until_step <= trainer.step:
        raise ValueError(f"until_step must be an integer past the trainer's step {trainer.step}, got {until_step!r}")
    if changed := setting_changes(_settings(run.spec), _settings(trainer.spec)):
        raise ValueError(f"the trainer's spec is not {run.path}'s ({'; '.join(changed)})")
    for name in RUN_FILES:  # refused now, not after the training whose results it could not hold
        if (run.path / name).is_dir():
            raise RunDirError(f"{run.path / name} is a directory: the run writes a file there; move it away")
    saved = run.checkpoint_step()
    if saved is not None and saved != trainer.step:
        raise ValueError(f"{run.path}'s checkpoint is at step {saved}, the trainer at step {trainer.step}: "
                         "resume it first (run.resume(trainer))")
    with run.exclusive():
        if until_step > run.spec.train.steps:  # its spec.toml says how far it was asked to train, as a resume's does
            run.write_spec(run.spec.with_overrides({"train.steps": until_step}))
        return _train_run(run, trainer, until_step, should_stop, on_event)


def _train_run(run: RunDir, trainer: Trainer, until_step: int, should_stop, on_event) -> RunOutcome:
    every = trainer.spec.train.checkpoint_every
    last_step = last_eval = None
    status, message = "completed", ""
    if trainer.step < until_step:
        trainer.warm_up()
    if not run.has_checkpoint:  # so that even a run that fails at once has a good state to return to
        run.save_checkpoint(trainer)
    logged = last_record(run.path / EVALS)
    if trainer.owes_evaluation(until_step, None if logged is None else logged["step"]):
        # done now, on the same weights, as the run without a stop did it
        last_eval = trainer.evaluate()
        run.record(last_eval)
        on_event(last_eval)
    try:
        for event in trainer.events(until_step, should_stop):
            run.record(event)
            on_event(event)
            if isinstance(event, StepRecord):
                last_step = event
                if every and event.step % every == 0:
                    run.save_checkpoint(trainer)
            else:
                last_eval = event
        if trainer.step < until_step:
            status = "stopped"
        run.save_checkpoint(trainer)
    except TrainingDiverged as exc:
        run.flush()
        status = "diverged"
        message = f"training stopped: {exc}; the last good checkpoint (step {_checkpoint_step(run.path)}) is kept"
    summary = make_summary(run, trainer, until_step, status, last_step, last_eval)
    run.write_summary(summary)
    return RunOutcome(status, summary, message)


#: How many runs of a folder given for a run its error names.
RUNS_NAMED = 3


def _runs_inside(path: Path) -> str:
    """What a folder of runs (``runs/``) given for a run holds, for its error to name: "; the runs
    in it: runs/b, runs/a" (the newest first; past RUNS_NAMED, "(5 in all, the newest first:
    rnnlab runs runs lists them)"), or "" for none."""
    from .runs import list_runs  # the order `rnnlab runs` lists them in

    try:
        runs = [run.path for run in list_runs(path)]
    except (OSError, UserError):
        return ""
    if not runs:
        return ""
    shown = ", ".join(str(p) for p in runs[:RUNS_NAMED])
    more = f" ({len(runs)} in all, the newest first: rnnlab runs {path} lists them)" if len(runs) > RUNS_NAMED else ""
    return f"; the run{'s' if len(runs) > 1 else ''} in it: {shown}{more}"


def _checkpoint_step(path: Path) -> int | str:
    """The step of the checkpoint in run directory ``path``; "unknown" where it cannot be read, its
    small meta entry included (every command that opens the run refuses a meta it cannot parse)."""
    return checkpoint_glance(path)[0]


def checkpoint_glance(path: Path) -> tuple[int | str, dict[str, Any] | None]:
    """The checkpoint of run directory ``path`` from one look at its small entries, never its weights:
    its step (:func:`_checkpoint_step`) and the settings it was trained with (:func:`checkpoint_settings`;
    None where it cannot be read). ``rnnlab runs`` wants both of every run: each opening of the archive
    reads its whole table of contents, as long as the model has parameters."""
    try:
        with _open_npz(path / CHECKPOINT) as data:
            meta = _checkpoint_meta(data["meta"])
            _saved_data(meta)
            step = _step_and_elapsed(data)[0]
    except _UNREADABLE:
        return "unknown", None
    settings = meta.get("settings")
    return step, settings if isinstance(settings, dict) else None


#: The model settings that give the weights their names and shapes: one changed, a checkpoint no
#: longer loads into the model spec.toml describes (:meth:`RunDir.check_model`).
MODEL_SHAPE_FIELDS = frozenset(f"model.{name}" for name in ("cell", "hidden_size", "num_layers", "bidirectional",
                                                             "bias", "num_heads", "d_ff", "learn_tau"))


def checkpoint_settings(path: Path, key: str = "settings") -> dict[str, Any] | None:
    """The settings the checkpoint of run directory ``path`` was trained with (by dotted field, see
    :func:`_settings`), read from its meta alone; None where it cannot be read or predates them.
    ``key``: another table of its meta ("evaluation", "environment")."""
    try:
        with _open_npz(path / CHECKPOINT) as data:
            saved = json.loads(str(data["meta"])).get(key)
    except (*_UNREADABLE, AttributeError):
        return None
    return saved if isinstance(saved, dict) else None


def environment() -> dict[str, Any]:
    """What a run's bits depend on beyond its spec, as its checkpoint and summary record it: the
    kernels' thread count (a weight gradient is summed in one piece per thread) and the versions of
    what computes it."""
    import numba

    from .. import __version__
    from ..kernels import kernel_threads

    return {"threads": kernel_threads(), "rnnlab": __version__, "numba": numba.__version__, "numpy": np.__version__}


def _evaluation(spec: Spec) -> dict[str, Any]:
    """How a run evaluates, which a resume may change (:meth:`RunDir.changed_settings` leaves it out):
    recorded to say so when it does."""
    return {"train.eval_every": spec.train.eval_every, "train.eval_batch_size": spec.train.eval_batch_size}


def resume_notes(run: RunDir, step: int) -> list[str]:
    """What a resume of ``run`` from its checkpoint at ``step`` does otherwise than the training that
    made it, where its spec check allows it: another kernel thread count (the run is no longer the one
    an uninterrupted training would be, bit for bit) and another evaluation (the logged ones are not
    comparable with those to come). [] for none, or for a checkpoint that predates recording them."""
    notes = []
    trained = checkpoint_settings(run.path, "environment") or {}
    now = environment()
    if isinstance(trained.get("threads"), int) and trained["threads"] != now["threads"]:
        notes.append(f"{run.path} was trained with {counted(trained['threads'], 'kernel thread')}, this process has "
                     f"{now['threads']} (NUMBA_NUM_THREADS, the cores it may use): sums round otherwise from step "
                     f"{step} on, so the run drifts from the one it would have been, bit for bit")
    if changes := setting_changes(checkpoint_settings(run.path, "evaluation") or {}, _evaluation(run.spec)):
        notes.append(f"{'; '.join(changes)} since the checkpoint: the evaluations logged up to step {step} ran "
                     "with the old setting")
    return notes


def _settings(spec: Spec) -> dict[str, Any]:
    """What a checkpoint records of the spec it was trained with, by dotted field (as JSON reads it
    back): every field but those :meth:`RunDir.changed_settings` leaves out."""
    flat = {"seed": spec.seed}  # in the spec's order: the top-level field first
    flat.update({f"{table}.{key}": value for table in ("task", "model", "train")
                 for key, value in spec.to_mapping()[table].items()})
    for free in ("train.steps", "train.eval_every", "train.eval_batch_size", "train.checkpoint_every", "model.device",
                 "task.path"):
        flat.pop(free, None)
    return json.loads(json.dumps(flat))


def setting_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """``"train.learning_rate: 0.05 -> 5.0"`` for every setting (by dotted field, as JSON reads it)
    that both record and ``after`` gives otherwise, in ``after``'s order; values as spec.toml spells
    them (``true``, ``"gru"``, ``0.05``)."""
    return [f"{name}: {json.dumps(before[name])} -> {json.dumps(value)}"
            for name, value in after.items() if name in before and before[name] != value]


def weights_lost_at(summary: Mapping[str, Any] | None, last_logged: Mapping[str, Any] | None) -> int | None:
    """For a run without checkpoint.npz, the step whose weights are gone: the checkpoint its summary
    names or the last step its log holds, past 0 (None: nothing was lost, step 0's weights are the
    seed's, drawn again). ``summary``: summary.json's; ``last_logged``: metrics.jsonl's last record."""
    steps = [step for step in ((summary or {}).get("checkpoint_step"), (last_logged or {}).get("step"))
             if isinstance(step, int) and not isinstance(step, bool) and step > 0]
    return max(steps) if steps else None


def _checkpoint_meta(meta_array) -> dict[str, Any]:
    """A checkpoint's ``meta`` entry as a dict; ValueError for a meta rnnlab did not write."""
    meta = json.loads(str(meta_array))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ValueError(f"checkpoint format {found!r}, expected {FORMAT_VERSION}")
    return meta


def _saved_data(meta: dict[str, Any] | np.ndarray) -> dict[str, Any]:
    """A checkpoint's meta (or its ``meta`` entry) -> the record of its training data
    (:func:`_data_record`; empty in checkpoints written before it was stored). ValueError for a
    meta rnnlab did not write."""
    if not isinstance(meta, dict):
        meta = _checkpoint_meta(meta)
    saved_data = meta.get("data", {})
    if not isinstance(saved_data, dict):
        raise ValueError("its meta's data entry is not a table")
    return saved_data


def _step_and_elapsed(arrays: Mapping[str, np.ndarray]) -> tuple[int, float]:
    """A checkpoint's step (an integer >= 0) and elapsed seconds (a finite number >= 0); ValueError
    (KeyError if missing) for anything else: not a checkpoint rnnlab wrote."""
    step, elapsed = (np.asarray(arrays[key]) for key in ("step", "elapsed"))
    value = step.item() if step.size == 1 and step.dtype.kind in "iuf" else None
    if not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())) or value < 0:
        raise ValueError(f"its step is {_shown(step)}, not an integer >= 0")
    seconds = elapsed.item() if elapsed.size == 1 and elapsed.dtype.kind in "iuf" else None
    if seconds is None or not (np.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"its elapsed time is {_shown(elapsed)}, not a number of seconds >= 0")
    return int(value), float(seconds)


def _check_finite(arrays: Mapping[str, np.ndarray]) -> None:
    """ValueError naming the first weight, optimizer slot or carried state that holds NaN or Inf:
    training never saves one (a diverged step is not applied; the last good checkpoint is kept), so
    the file was damaged or edited. Read, it was called "does not match spec.toml" (NaN weights) or
    trained into a divergence at once, its "last good checkpoint" the damaged one (NaN in a slot)."""
    for key, array in arrays.items():
        if key.startswith(("param/", "optim/", "carried/")) and array.dtype.kind in "fc" \
                and not np.isfinite(array).all():
            raise ValueError(f"its {key} holds NaN or Inf, which training never saves")


def _shown(array: np.ndarray) -> str:
    """A checkpoint entry in a message: its value if it is one short scalar, else its shape and type."""
    if array.size == 1 and array.dtype.kind in "iufb":
        return repr(array.item())
    return f"an array of shape {array.shape} ({array.dtype})"


def _read_error(file: Path, exc: OSError) -> RunDirError:
    """A file of a run directory (or the directory) that the OS would not let us read, as one line."""
    return RunDirError(f"cannot read {file}: {exc.strerror or exc}")


def _unreadable(file: Path, exc: BaseException) -> RunDirError:
    """Why ``file`` (an .npz) could not be loaded: the OS refused (``cannot read``: no permission,
    an I/O error), or its contents are not what rnnlab writes (``is damaged``)."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return _read_error(file, exc)
    return RunDirError(f"{file} is damaged and cannot be read: {_reason(exc)}")


def _open_npz(file: Path):
    """``np.load(file)`` for an .npz archive only. np.load guesses the format from the first bytes
    and takes anything else for a pickle, refusing it with advice to load it unsafely that must
    never reach a user; a file that does not start as a zip archive is refused here first."""
    with open(file, "rb") as handle:
        head = handle.read(len(_ZIP_MAGIC[0]))
    if not head:
        raise EOFError
    if head not in _ZIP_MAGIC:
        raise ValueError("it is not a NumPy .npz archive")
    return np.load(file, allow_pickle=False)


def _reason(exc: BaseException) -> str:
    """An exception as a short reason: its message, or its kind when it has none (an empty file's EOFError)."""
    if isinstance(exc, EOFError):
        return "the file is empty or cut short"
    if isinstance(exc, KeyError):
        return f"no entry {exc}"
    if "pickle" in str(exc):  # numpy's refusal of object arrays, with advice not to pass on
        return "it holds Python objects (pickled data), which rnnlab never loads"
    return str(exc) or type(exc).__name__


def _data_record(task, run_path: Path) -> dict[str, str]:
    """What a checkpoint's weights were trained on, for :meth:`RunDir._check_same_data`: a character
    model's vocabulary and, for a data file, the file, a fingerprint of its contents, and where it
    is from the run directory (``file_from_run``: :func:`_moved_data_file` looks there)."""
    record = {}
    chars = getattr(task, "chars", None)
    if chars is not None:
        record["vocabulary"] = "".join(chars)
    digest = getattr(task, "data_sha256", None)
    if digest is not None:
        record.update(file=str(task.path), sha256=digest)
        try:
            record["file_from_run"] = Path(os.path.relpath(os.path.realpath(task.path),
                                                           run_path.resolve())).as_posix()
        except ValueError:  # another drive (Windows): no relative path
            pass
    return record


_NOTED_MOVES: set[tuple[str, str, int]] = set()  # (run, data file, listener) the note was said to


def _moved_data_file(run_path: Path, error: DataFileError) -> Path | None:
    """The data file of a run whose spec names a file that is gone, where it sat relative to the
    run when the checkpoint was saved (a project folder of data and runs, moved or copied as a
    whole); None when the checkpoint records no such place or nothing is there. The checkpoint's
    fingerprint still decides whether its contents are the ones trained on."""
    try:
        with _open_npz(run_path / CHECKPOINT) as data:
            relative = _saved_data(data["meta"]).get("file_from_run")
    except _UNREADABLE:  # no checkpoint (an untrained run), or one that cannot be read
        return None
    if not isinstance(relative, str):
        return None
    candidate = Path(os.path.normpath(run_path.resolve() / relative))
    return candidate if candidate != error.path and candidate.is_file() else None


def _with_data_file(text: str, spec_file: Path, run_path: Path, data_file: Path) -> Spec:
    """The run's spec (``text``, from ``spec_file``) reading ``data_file`` instead of the path it names."""
    data = spec_toml(text)
    data["task"]["path"] = str(data_file)
    try:
        return Spec.from_mapping(data, source=str(spec_file), base_dir=run_path.resolve(), saved=True)
    except SpecError as exc:  # a file there that will not do (DataFileError is one): as if it were missing
        raise RunDirError(f"{run_path}'s data file ({exc.field}) cannot be used: {exc}") from None


def _vocabulary_change(old: str, new: str) -> str:
    """What changed between two vocabularies, briefly: "new: 'xy'; gone: 'ab'"."""
    def shown(chars: str) -> str:
        text = "".join(map(display_char, chars))
        return repr(text if len(text) <= 30 else text[:30] + "...")

    added = "".join(c for c in new if c not in old)
    gone = "".join(c for c in old if c not in new)
    parts = [f"{what} {shown(chars)}" for what, chars in (("new:", added), ("gone:", gone)) if chars]
    return "; ".join(parts) or "the same characters, numbered in another order"


def summary_of_finished(run: RunDir, trainer: Trainer) -> dict[str, Any]:
    """summary.json's contents for a run whose checkpoint (read into ``trainer``) is at its last step
    but that has no summary of it, stopped between the two (killed, or a full disk): "completed", with
    the last evaluation it logged, that of the last step (logged before the checkpoint was saved)."""
    logged = last_record(run.path / EVALS)
    last_eval = EvalRecord(**logged) if logged is not None and logged["step"] == trainer.step else None
    return make_summary(run, trainer, trainer.step, "completed", None, last_eval)


def make_summary(run: RunDir, trainer: Trainer, until_step: int, status: str,
                 last_step: StepRecord | None, last_eval: EvalRecord | None) -> dict[str, Any]:
    """summary.json's contents: how the run ended (``status``), its step of ``until_step``, the last
    training and evaluation records, the task's baseline, the time spent and the speed."""
    task = trainer.task
    baseline = task.baseline()
    if last_step is None:
        metrics = run.read_metrics()
        last = metrics[-1] if metrics else None
    else:
        last = last_step.to_json()
    return {
        "run_dir": str(run.path),
        "name": trainer.spec.name,
        "status": status,
        "step": trainer.step,
        "steps": until_step,
        # where the run continues from: ``step`` but after a divergence, which keeps the last good
        # checkpoint (its weights still compute; those of the steps after it overflowed)
        "checkpoint_step": run.checkpoint_step(),
        "task": task.kind,
        "cell": trainer.spec.model.cell,
        "parameters": trainer.model.num_parameters,
        "final": None if last is None else {k: last[k] for k in ("loss", "accuracy", "grad_norm", "clipped")},
        "eval": None if last_eval is None else {"step": last_eval.step, "loss": last_eval.loss,
                                                 "accuracy": last_eval.accuracy},
        # false: a data file too short to hold out a tail; the eval batch drew from the training data
        "eval_held_out": not task.eval_not_held_out,
        "baseline": None if baseline is None else asdict(baseline),
        "seconds": round(trainer.elapsed, 3),
        "steps_per_second": round(trainer.step / trainer.elapsed, 2) if trainer.elapsed > 0 else None,
        "environment": environment(),
    }


