"""The Lab: the one headless object that both the TUI and the CLI drive.

A Lab holds an experiment (spec, task, model through its :class:`~rnnlab.train.Trainer`, an
optional run directory), the sequence on the bench, the forward trace of that sequence, and two
cursors: ``cursor`` (how many forward steps are revealed, 0..T) and ``bptt_cursor`` (down to which
step the backward pass has been revealed, T..0). The recurrence is causal, so the trace of the
whole sequence, revealed one column at a time, is exactly what stepping the cell one step at a
time computes; BPTT is likewise computed once and revealed from t = T down to 1 (in a reverse
direction, whose recurrence runs the other way, from t = 1 up: :meth:`bptt_revealed`).

A ``selfattention`` model (:class:`~rnnlab.layers.selfattention.SelfAttentionModel`) has no
recurrence: its trace records per block ``h`` and ``z`` (units x time, as a recurrent layer's), the
attention maps ``attn`` and the queries, keys and values. With a causal mask the revealed columns
are still exactly what a step-by-step run computes; without one (``bidirectional = true``) every
step sees the whole sequence and the cursor is only a reveal. Its backward pass is not through
time: every step gets dL/dh_t at once; the BPTT cursor reveals it from T down all the same. What
only a recurrence has (step Jacobians, :meth:`jacobian_norms`) raises
:class:`~rnnlab.analysis.NotRecurrentError`, a :class:`~rnnlab.errors.UserError`.

No view logic here and no UI imports: views read the Lab's arrays and call its methods.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._cursor import StepCursor
from ._locks import HandoffLock, TrainingControl
from . import analysis, notices
from .data import Batch, Task
from .errors import UserError
from .spec import Spec, load_spec, preset_names
from .train import EvalRecord, RunDir, StepRecord, Trainer, TrainingDiverged, default_run_path
from .train.rundir import (EVALS, METRICS, atomic_save_npz, atomic_write_text, checkpoint_settings, make_summary,
                           npz_target, stat_path)
from .train.history import StepHistory
from .train.model import WeightsDiverged

__all__ = ["Lab", "Evaluation", "SequenceRefused", "open_target"]

STOP_POLL_S = 0.1  # how often a trainer waiting for the lab's lock looks whether it was stopped


class SequenceRefused(UserError):
    """A sequence the lab's model cannot run (:meth:`Lab.check_sequence`): a front end names where it came from."""


@dataclass(frozen=True)
class Evaluation:
    """The bench sequence's forward pass: outputs and loss (targets where the mask is set)."""

    outputs: np.ndarray      # (T, B, O) float64: logits (xent) or values (mse)
    loss: float
    accuracy: float | None


def _draw(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """A class drawn from softmax(logits / temperature). Shifted by the largest logit before the
    division: logits / 1e-308 overflowed, inf - inf made the probabilities NaN, and sampling ended
    in a traceback; now a temperature that small draws the most likely class, as its limit does."""
    with np.errstate(over="ignore"):
        z = (logits - logits.max()) / temperature
    p = np.exp(z)
    return int(rng.choice(len(p), p=p / p.sum()))


def open_target(target: str | Path | Spec | RunDir | None, device: str | None = None, *,
                fallback: bool = True) -> tuple[Spec, RunDir | None]:
    """A preset name, a spec file or a run directory (or a Spec, or a RunDir opened) -> (spec, run dir or None).

    ``device`` (cpu or cuda) replaces the spec's ``model.device`` in the spec returned. Without it, a
    spec asking for cuda where no GPU is usable gets the CPU, said in one line on stderr: both compute
    the same numbers, so a run trained on a GPU can be examined anywhere (``fallback=False``: it keeps
    cuda, as training, which refuses it, reads it). The run's spec.toml is never rewritten here
    (``run.spec`` keeps what it says)."""
    run = None
    if isinstance(target, Spec):  # one already made (the CLI's --set)
        spec = target
    elif isinstance(target, RunDir):  # one opened already (sample's, told its text may have changed)
        run, spec = target, target.spec
        target = run.path
    elif target is None:
        spec = load_spec("hello")
    elif (found := stat_path(target)) is not None and stat.S_ISDIR(found.st_mode) \
            and str(target) not in preset_names():  # a folder named like a preset: the preset (./NAME: the folder)
        run = RunDir.open(Path(target))  # names a directory it cannot read, or one without a spec.toml
        spec = run.spec
    else:
        spec = load_spec(target)
    if device is None and spec.model.device == "cuda" and fallback:
        from .kernels.cuda import cuda_available

        usable, reason = cuda_available()
        if not usable:
            device = "cpu"
            named = target.name if isinstance(target, Spec) else target  # a Spec by its name, not its repr
            notices.warn(f"{named} asks for device 'cuda', which is not available here ({reason}): running on "
                         "the CPU instead (the same numbers)")
    if device is not None and device != spec.model.device:
        spec = spec.with_overrides({"model.device": device})
    return spec, run


class Lab(StepCursor, TrainingControl):
    """An experiment on the bench. See the module docstring for the cursors' meaning."""

    def __init__(self, spec: Spec, run: RunDir | None = None, *, batch: int = 1, trainer: Trainer | None = None,
                 task: Task | None = None, sequence_seed: int | None = None, sequence: Batch | None = None,
                 sequence_text: str | None = None) -> None:
        """``task``: ``spec.make_task()`` made already (its data file read once); ``trainer``: one
        handed over with its own weights (no checkpoint is read).

        The bench's first sequence is the task's draw of ``batch`` sequences with the spec's seed, or with
        ``sequence_seed``, or ``sequence`` itself (checked as :meth:`set_sequence` checks it; ``sequence_text``:
        what the user typed for it): one forward pass, where building on the spec's draw and then
        :meth:`regenerate` or :meth:`set_sequence` ran two (a large model's bptt --input took twice as long)."""
        if sequence is not None and sequence_seed is not None:
            raise ValueError("give sequence or sequence_seed, not both")
        fresh = trainer is None
        if fresh:  # first: a refusal leaves a lab being reconfigured as it was
            task = spec.make_task() if task is None else task
            spec.check_memory(task, batch=batch)  # the view's pass: training is checked when it starts
            trainer = Trainer(spec, task)
        self.spec = spec
        self.run = run
        self.trainer = trainer
        # training history (what the loss and gradient-norm plots draw)
        self.history = StepHistory()  # columns: a lab may train for hours at thousands of steps a second
        self.evals: list[EvalRecord] = []
        if run is not None and run.has_checkpoint and fresh:
            run.read_checkpoint(self.trainer)
            self.history = StepHistory(StepRecord(**row) for row in run.read_metrics()
                                       if row["step"] <= self.trainer.step)
            self.evals = [EvalRecord(**row) for row in run.read_evals() if row["step"] <= self.trainer.step]
        self.saved_step = self.trainer.step  # the step on disk: what quitting now would keep
        self._opened = (run, self.trainer.step)  # a save of it with no step trained since keeps its summary
        # the run directory as this lab last saw it (checkpoint step, metrics size): a save finding
        # it changed (a `rnnlab train --resume` meanwhile), or another process writing it, goes to a
        # new run instead of replacing it
        self._run_state = run.state() if run is not None else None
        self._train_target = spec.train.steps  # the step the last training ran toward
        #: The steps ``t`` trains past a finished model: the spec's, or those its run was made with
        #: (:attr:`RunDir.more_steps`: a run saved at a grown step count keeps its round).
        self.more_steps = run.more_steps if run is not None and run.more_steps else spec.train.steps
        self.diverted_from: Path | None = None  # the run the last save did not replace (see save_run)
        self.diverted_because = ""  # why: "changed on disk since this lab read it", ...
        # training in a worker thread: every step and every read of the weights holds the lock,
        # handed over between steps to a waiting reader (an RLock let the trainer starve it)
        self.lock = HandoffLock()
        self._init_training_control()
        if run is not None and fresh and run.has_checkpoint:  # how its training ended, as its session said
            summary = run.read_summary() or {}
            if summary.get("status") in ("completed", "stopped", "diverged") and summary.get("step") == trainer.step:
                self.training_status = summary["status"]  # (it read "idle": as if never trained)
        # a divergence the run on disk records already (opened so, or saved since): nothing new to save
        self._divergence_saved = self.training_status == "diverged"
        self.task = self.trainer.task
        self.view_batch = batch
        self.sequence_seed = spec.seed if sequence_seed is None else int(sequence_seed)
        if sequence is not None:
            self.check_sequence(sequence)
        self.sequence: Batch = self.task.eval_batch(batch, self.sequence_seed) if sequence is None else sequence
        #: what the user typed for the bench's sequence (set_sequence)
        self.sequence_text: str | None = sequence_text if sequence is not None else None
        self.trace = None
        #: The gradients by parameter name (and "input", "h0") of the last :meth:`run_backward` on the
        #: bench's trace; None before it, and again once a new forward pass replaces the trace.
        self.grads: dict[str, np.ndarray] | None = None
        self.evaluation: Evaluation | None = None
        self.cursor = 0
        self.bptt_cursor: int | None = None  # None: backward not run on this trace
        self.truncate: int | None = spec.train.truncate or None
        self.refresh()

    @classmethod
    def open(cls, target: str | Path | Spec | RunDir | None = None, *, batch: int = 1,
             device: str | None = None) -> "Lab":
        """A Lab on a preset name, a spec file or a run directory (its latest checkpoint), its kernels
        on ``device`` (default: the spec's, or the CPU where its cuda is not usable: :func:`open_target`)."""
        spec, run = open_target(target, device)
        return cls(spec, run, batch=batch)

    # ------------------------------------------------------------------ the sequence
    @property
    def model(self):
        """The network being trained and shown (the trainer's: its weights are the live ones)."""
        return self.trainer.model

    @property
    def steps(self) -> int:
        """T of the bench sequence."""
        return self.sequence.x.shape[0]

    @property
    def is_attention(self) -> bool:
        """True when the model is self-attention (no recurrence) rather than a recurrent network."""
        return self.spec.model.attention

    @property
    def num_directions(self) -> int:
        """Directions per layer in the trace: 2 for a bidirectional recurrent network, else 1
        (self-attention has one "direction" per block, causal or not)."""
        return self.trace.num_directions

    @property
    def num_heads(self) -> int:
        """Attention heads per block (0 for a recurrent network)."""
        return self.spec.model.num_heads if self.is_attention else 0

    def check_sequence(self, batch: Batch) -> None:
        """Raise :class:`SequenceRefused` (a UserError) if :meth:`set_sequence` would refuse ``batch`` (cheap: no
        forward pass)."""
        max_len = getattr(self.model, "max_len", None)
        if self.is_attention and max_len is not None and batch.T > max_len:
            raise SequenceRefused(f"this sequence has {batch.T} steps but the selfattention model's positional "
                                  f"encoding covers the task's length, {max_len} steps: use at most {max_len}")

    @property
    def sequence_typed(self) -> bool:
        """Whether the bench's sequence is one the user typed, not the task's draw (the views say so:
        the task's description is of what it trains on)."""
        return self.sequence_text is not None

    def set_sequence(self, batch: Batch, *, text: str | None = None) -> None:
        """Put another sequence on the bench (recomputes the forward pass, rewinds the cursors);
        ``text``: what the user typed for it, where it is not the task's draw (:attr:`sequence_text`).

        A self-attention model refuses (UserError, nothing changes) a sequence longer than the
        task's length, which its positional encoding was built for."""
        self.check_sequence(batch)
        self.refresh(sequence=batch)
        self.sequence_text = text

    def sequence_source(self) -> dict[str, Any]:
        """Which sequence is on the bench, as a trace's meta and ``bptt --json`` name it: ``{"typed": TEXT}``
        or ``{"drawn": {"seed": S, "batch": B}}`` (what ``--input`` or ``--sequence-seed`` and ``--batch``
        give back)."""
        if self.sequence_text is not None:
            return {"typed": self.sequence_text}
        return {"drawn": {"seed": self.sequence_seed, "batch": self.view_batch}}

    def sequence_from_text(self, text: str) -> None:
        """Put a typed sequence on the bench, in the task's own syntax (``task.typing_prompt()``: characters,
        bits, symbols, values); UserError naming what is wrong where the text is refused, or where the
        task takes no typed sequence (two-scales), nothing changed then."""
        if not hasattr(self.task, "sequence_from_text"):
            raise UserError(f"the {self.task.kind} task takes no typed text; regenerate a sequence instead")
        self.set_sequence(self.task.sequence_from_text(text), text=text)

    def show_sequence_of(self, other: "Lab") -> str:
        """Put on the bench the sequence ``other`` shows, where this lab is ``other`` edited: the same
        draw of the task (its seed), or the same typed text where the task is unchanged, so that the
        two models can be compared on it (a pinned curve of one beside the other's). Returns a notice
        where the typed text does not fit this lab (its sequence is the task's draw then), else ""."""
        notice = ""
        if other.sequence_text is not None:
            if self.spec.task == other.spec.task:
                try:
                    self.sequence_from_text(other.sequence_text)
                    self.sequence_seed = other.sequence_seed  # n goes on as it would have there
                    return ""
                except UserError as exc:
                    notice = f"the typed sequence does not fit the edited model ({exc}): the task's draw instead"
            else:
                notice = "the task changed: its draw, not the typed sequence"
        if other.sequence_seed != self.sequence_seed:  # the draw shown there (or before the typing)
            self.regenerate(other.sequence_seed)
        return notice

    def regenerate(self, seed: int | None = None) -> None:
        """A fresh sequence from the task's generator (a new seed each call unless one is given)."""
        self.sequence_seed = self.sequence_seed + 1 if seed is None else int(seed)
        self.set_sequence(self.task.eval_batch(self.view_batch, self.sequence_seed))

    def refresh(self, keep_bptt: bool = False, *, timeout: float | None = None, sequence: Batch | None = None) -> bool:
        """Recompute the forward pass of the bench sequence with the current weights. The backward
        pass is dropped, unless ``keep_bptt``: then, if BPTT was under way, it is run again on the
        new trace with the same steps revealed (the lab's view while training runs).

        ``timeout`` (seconds): give up, change nothing and return False if the trainer holds the
        weights longer (a step that evaluates, or compiles a kernel): the lab's timer must never
        freeze the screen. None waits; True once refreshed.

        ``sequence``: put this one on the bench instead (the cursor rewound). The lab changes only
        once its forward pass is done: a view reading it from another thread meanwhile (the TUI
        computes a long sequence in a worker) sees the old sequence with the old trace."""
        if not self.lock.acquire(timeout=-1 if timeout is None else timeout):
            return False
        try:
            revealed = self.bptt_cursor if keep_bptt else None
            result, _, trace = self.trainer.compute(self.sequence if sequence is None else sequence)
            evaluation = Evaluation(self._outputs_of(trace), result.loss, result.accuracy)
            # Everything computed: now the lab's fields change together. The BPTT cursor goes
            # first: a view reading meanwhile never pairs it with a trace that has no dL/dh.
            self.bptt_cursor = None
            if sequence is not None:
                self.sequence, self.cursor = sequence, 0
            self.trace, self._loss_grad, self.evaluation = trace, result.grad, evaluation  # grad: where BPTT starts
            self.grads = None  # the last backward pass's, of the trace just replaced
            self.cursor = min(self.cursor, self.steps)
            if revealed is not None:  # with these weights: the trainer waits meanwhile
                self.run_backward()
                self.bptt_cursor = min(revealed, self.steps)
        finally:
            self.lock.release()
        return True

    def _outputs_of(self, trace) -> np.ndarray:
        # what the readout read: the recurrent layer's output, or the top attention block's
        y = trace.get("h", trace.num_layers - 1) if self.is_attention else trace._readout_input
        m = self.model.readout
        with np.errstate(over="ignore", invalid="ignore"):  # diverged weights: backward names it, in one line
            return (y @ m["readout.weight"].T + m["readout.bias"]).astype(np.float64)

    # ------------------------------------------------------------------ forward cursor
    # step_forward, step_back, jump_start, jump_end: StepCursor's, over 0..T
    @property
    def cursor_end(self) -> int:
        """The last position of the time cursor: T, every step of the bench sequence run."""
        return self.steps

    def move_to(self, t: int) -> int:
        """Reveal steps 0..t-1 (``t`` clamped to 0..T)."""
        return self._set_cursor(t)

    # ------------------------------------------------------------------ backward through time
    def run_backward(self, truncate: int | None = None) -> dict[str, np.ndarray]:
        """BPTT of the bench sequence's loss; fills ``trace["dh"]`` and puts the BPTT cursor at T;
        returns the gradients by parameter name.

        ``truncate``: cut the gradient every k steps from now on (kept in :attr:`truncate`, the
        spec's ``train.truncate`` at first); 0 for full BPTT from now on; None keeps the lab's
        current setting (unlike a layer's ``backward``, where None is full BPTT).
        Self-attention: the backward pass (not through time); a ``truncate`` other than None or 0
        is refused with a UserError, as it is for the jordan cell."""
        if self.is_attention and truncate:
            raise UserError(f"truncate {truncate}: selfattention has no recurrence to truncate "
                            "(its backward pass is not through time)")
        if self.spec.model.cell == "jordan" and truncate:  # as the spec's train.truncate is refused
            raise UserError(f"truncate {truncate}: the jordan cell takes no truncation (with teacher forcing there "
                            "is no BPTT at all, and running free it backpropagates through every fed-back output)")
        if truncate is not None:
            self.truncate = truncate or None
        self.bptt_cursor = None  # trace["dh"] is rewritten: no view reads it meanwhile
        with self.lock:
            try:
                # gradients exploding through time are the view's to show, not an error
                grads = self.model.backward(self.trace, self._loss_grad, truncate=self.truncate, check_gradients=False)
            except WeightsDiverged as exc:
                raise exc.at_step(self.trainer.step) from None
        self.grads = grads  # first: a view that sees the BPTT cursor set reads these gradients
        self.bptt_cursor = self.steps
        return grads

    def bptt_revealed(self, direction: int = 0) -> np.ndarray:
        """The steps (0-based, natural time) whose dL/dh_t BPTT has revealed in a layer's ``direction``:
        T - 1 down to the cursor in the forward direction; as many from 0 up in a reverse one, whose
        backward pass starts at its own last step, t = 1 (at the end the whole sequence; before
        ``b``, none)."""
        if self.bptt_cursor is None:
            return np.arange(0)
        return np.arange(self.bptt_cursor, self.steps) if direction == 0 else np.arange(self.steps - self.bptt_cursor)

    def bptt_t(self, direction: int = 0) -> int | None:
        """The step t (from 1) BPTT has reached in a layer's ``direction``, as the lab says it: the
        cursor's in the forward direction, as many steps from t = 1 in a reverse one (see
        :meth:`bptt_revealed`); T + 1 (reverse: 0) with nothing revealed yet; None before ``b``."""
        if self.bptt_cursor is None:
            return None
        return self.bptt_cursor + 1 if direction == 0 else self.steps - self.bptt_cursor

    def bptt_step(self) -> int:
        """Reveal one more step of BPTT (from t = T down to 1; a reverse direction's from 1 up, see
        :meth:`bptt_revealed`); runs backward first if needed."""
        if self.bptt_cursor is None:
            self.run_backward()
            self.bptt_cursor = self.steps
        self.bptt_cursor = max(self.bptt_cursor - 1, 0)
        return self.bptt_cursor

    def gradient_norms(self) -> np.ndarray:
        """(L*D, T) ||dL/dh_t||; runs backward if it has not run on the current trace."""
        if self.bptt_cursor is None:
            self.run_backward()
        return analysis.gradient_norms(self.trace)

    def jacobian_norms(self, b: int = 0, progress=None) -> dict[str, np.ndarray]:
        """Per step ||d s_t / d s_{t-1}|| and their running products (see :mod:`rnnlab.analysis`,
        ``progress`` too); :class:`~rnnlab.analysis.NotRecurrentError` for self-attention."""
        return analysis.jacobian_norms(self.trace, b=b, progress=progress)

    def attention_map(self, layer: int = 0, head: int = 0, b: int = 0) -> np.ndarray:
        """Self-attention: the bench sequence's attention weights of block ``layer``, ``head``,
        (T_query, T_key) float64 (row t: how much step t attends to each step). UserError for a
        recurrent network."""
        if not self.is_attention:
            raise UserError(f"the {self.spec.model.cell} cell has no attention maps")
        return np.asarray(self.trace.attention(layer, b, head), np.float64)

    def unit_decays(self, layer: int = 0, direction: int = 0) -> np.ndarray | None:
        """Each unit's coefficient a in h_t = a_t * h_{t-1} + b_t, for the cells linear in their state.

        The LRU's lambda (complex (H,): the same at every step, whatever the input), or minGRU's
        1 - z_t / minLSTM's f'_t averaged over the bench sequence's steps (sequence 0; real (H,),
        in (0, 1)). None for rnn, lstm and gru, whose step Jacobian is a full matrix. |a| near 1:
        the unit keeps its state and passes dL/dh_t back almost unchanged; near 0: it forgets.
        """
        if self.trace.mode not in analysis.LINEAR_MODES:
            return None
        a = analysis.step_coefficients(self.trace, layer, direction, b=0)
        return a[0].copy() if self.trace.mode == "LRU" else a.mean(axis=0)

    def task_edits(self) -> dict[str, list]:
        """The task fields this lab's sequences are drawn with otherwise than its run's weights were
        trained with (``rnnlab bptt RUN --set task.length=400``, or a spec.toml edited since),
        ``{"task.length": [100, 400]}`` (trained, here), as its checkpoint recorded them (its
        spec.toml where a checkpoint predates that); {} for none, or without a run."""
        if self.run is None:
            return {}
        recorded = checkpoint_settings(self.run.path) or {}
        here = json.loads(json.dumps(dict(self.spec.task), default=str))
        trained = {key: recorded.get(f"task.{key}", json.loads(json.dumps(self.run.spec.task.get(key), default=str)))
                   for key in here if key != "path"}  # (its data file: checked by its fingerprint)
        return {f"task.{key}": [trained[key], value] for key, value in here.items()
                if key in trained and value != trained[key]}

    # ------------------------------------------------------------------ training
    def train(self, until_step: int | None = None, should_stop=lambda: False) -> str:
        """Train in the calling thread (the TUI calls it from a worker) until ``until_step`` updates
        (default: the spec's steps, or :attr:`more_steps` more if they are done), :meth:`stop_training` or
        ``should_stop()``. :meth:`pause_training` holds it between steps. Returns the final status.

        Each step holds :attr:`lock`, so a view that reads the weights under it never sees half an
        update. Steps and evaluations are appended to :attr:`history` and :attr:`evals`.
        :class:`~rnnlab.errors.UserError` first where this lab cannot train (:meth:`check_can_train`),
        ValueError for an ``until_step`` that is no integer past the step trained (each call logged
        its final evaluation again).
        """
        self.check_can_train()
        if until_step is None:
            until_step = self.next_train_target()
        elif isinstance(until_step, bool) or not isinstance(until_step, int) or until_step <= self.trainer.step:
            raise ValueError(f"until_step must be an integer past the {self.trainer.step} steps trained, "
                             f"got {until_step!r}")
        self._train_target = until_step
        self._start_training()
        with self.lock:
            self.trainer.warm_up()
            if self.trainer.owes_evaluation(until_step, self.evals[-1].step if self.evals else None):
                self.evals.append(self.trainer.evaluate())  # a run killed at its checkpoint: as its resume does
        events = self.trainer.events(until_step, lambda: self._stopping(should_stop))
        try:
            while True:
                if self._between_steps(should_stop) and self.trainer.step < until_step:
                    break  # (a stop at until_step goes on to the final evaluation the events end with)
                if not self._lock_for_a_step(should_stop, until_step):
                    break
                try:  # the step and its record together: a save between them would miss it
                    event = next(events, None)
                    if event is not None:
                        (self.history if isinstance(event, StepRecord) else self.evals).append(event)
                finally:
                    self.lock.release()
                if event is None:
                    break
        except TrainingDiverged as exc:
            self.training_status, self._divergence_saved = "diverged", False
            self.training_message = f"{exc}; the weights before that step are kept"
            return self.training_status
        self.training_status = "completed" if self.trainer.step >= until_step else "stopped"
        return self.training_status

    @property
    def train_target(self) -> int:
        """The step the training under way runs toward (or the last one ran toward): the status line's
        "running step 838 of 2000"."""
        return self._train_target

    def next_train_target(self) -> int:
        """The step ``train()`` trains to by default: the spec's steps, or the step the last training
        ran toward where a stop (``s``) left it short (as a reopened run's saved steps say), or
        :attr:`more_steps` past the step trained where those are done."""
        planned = max(self.spec.train.steps, self._train_target)
        return planned if self.trainer.step < planned else self.trainer.step + self.more_steps

    def check_can_train(self) -> None:
        """:class:`~rnnlab.errors.UserError` where this lab cannot train: training this spec would not
        fit in this machine's memory (a SpecError naming the field: the lab opens on any model whose
        view fits, a run trained on a larger machine too), or the run's spec.toml was edited since its
        checkpoint (as ``rnnlab train --resume`` refuses it: the run would no longer say how it trained)."""
        fix = "make them smaller" if self.run is None else f"{self.run.path} can be read here, not trained further"
        self.spec.check_memory(self.task, fix=fix)
        if self.run is not None:
            self.run.check_settings(fix="put it back and open the run again (o)")

    def _lock_for_a_step(self, should_stop, until_step: int) -> bool:
        """Take :attr:`lock` for the next step; False, not holding it, if training is stopped while
        waiting (before ``until_step``). A view's long computation may hold the lock for seconds,
        and a stop (the app quitting) must not wait for it."""
        while not self.lock.acquire(timeout=STOP_POLL_S):
            if self._stopping(should_stop) and self.trainer.step < until_step:
                return False
        return True

    def reconfigure(self, overrides: dict[str, Any]) -> None:
        """A changed experiment (``{"model.cell": "gru", "train.learning_rate": 0.01}``): validated
        first (:class:`~rnnlab.errors.SpecError` names a bad field and nothing changes), then a
        fresh model, history and bench sequence. The next save makes a new run directory."""
        if self.training:
            raise UserError("stop training before changing the experiment")
        spec = self.spec.with_overrides(overrides)
        self.__init__(spec, None, batch=self.view_batch)

    @property
    def spec_as_trained(self) -> Spec:
        """The spec with ``train.steps`` the step training last ran toward (``t`` past the spec's
        steps trains that many more): what a save writes, and what the edit form shows."""
        target = max(self.spec.train.steps, self._train_target)
        return self.spec if target == self.spec.train.steps else self.spec.with_overrides({"train.steps": target})

    def save_run(self, path: str | Path | None = None) -> Path:
        """Write the run directory (spec, metrics and evals so far, checkpoint, summary): a new one
        at ``path`` (default ``runs/NAME-TIME``) the first time, the same one after. Its spec's
        ``train.steps`` is the step training last ran toward, its status "diverged" after a
        divergence.

        If the run directory's checkpoint changed since this lab opened or last saved it (another
        process trained it further, or its checkpoint.npz was deleted), it is left alone and the run
        goes to a new directory;
        :attr:`diverted_from` then names the one left alone (else None), :attr:`diverted_because`
        says why. A run with nothing new (:attr:`nothing_to_save`) is left as it is on disk."""
        with self.lock, contextlib.ExitStack() as stack:
            self.diverted_from, self.diverted_because = None, ""
            if self.nothing_to_save:  # rewritten, its summary went stale ("interrupted"), and a spec.toml
                return self.run.path  # edited since its checkpoint was stamped into it
            if self.run is not None:
                if not stack.enter_context(self.run.writing()) or self.run.state() != self._run_state:
                    self.diverted_because = "changed on disk since this lab read it"
                    self.diverted_from, self.run = self.run.path, None
            spec = self.spec_as_trained
            target = spec.train.steps
            if self.run is None:
                self.run = RunDir.create(Path(path) if path else default_run_path(spec), spec)
                stack.enter_context(self.run.writing())  # a new directory: nobody else's
            run = self.run
            run.more_steps = self.more_steps  # kept by the checkpoint: a reopened run trains the same rounds
            if run.spec.model.device != spec.model.device:  # a GPU run read on the CPU (open_target): it stays one
                spec = spec.with_overrides({"model.device": run.spec.model.device})
            run.write_spec(spec)
            atomic_write_text(run.path / METRICS, self.history.jsonl())
            atomic_write_text(run.path / EVALS, "".join(json.dumps(r.to_json()) + "\n" for r in self.evals))
            run.save_checkpoint(self.trainer)
            if self.training_status == "diverged":
                status = "diverged"
            else:
                status = ("completed" if self.trainer.step >= target else
                          "stopped" if self.trainer.step else "untrained")  # saved before any step
            # a run opened and saved untrained keeps what its summary says of how its training
            # ended (a divergence, at a step after the checkpoint read): nothing new happened to it
            if (self._opened[0] is not run or self._opened[1] != self.trainer.step or run.read_summary() is None
                    or status == "diverged"):  # (a divergence at the step it was opened at: said)
                run.write_summary(make_summary(run, self.trainer, target, status,
                                               self.history[-1] if self.history else None,
                                               self.evals[-1] if self.evals else None))
            self._run_state = run.state()
            self.saved_step = self.trainer.step
            self._divergence_saved = self.training_status == "diverged"
        return run.path

    @property
    def nothing_to_save(self) -> bool:
        """Whether the run on disk already holds everything this lab has: its checkpoint at this step,
        unchanged since this lab read or saved it, its summary, and no divergence since to record."""
        return (self.run is not None and self.trainer.step == self.saved_step and self.run.has_checkpoint
                and (self.training_status != "diverged" or self._divergence_saved)
                and self.run.state() == self._run_state
                and self.run.read_summary() is not None)

    @property
    def unsaved_steps(self) -> int:
        """Steps trained since the run was opened or last saved (0 for a new, untrained model):
        what quitting without :meth:`save_run` would lose."""
        return max(self.trainer.step - self.saved_step, 0)

    # ------------------------------------------------------------------ exports
    def trace_arrays(self) -> dict[str, np.ndarray]:
        """Every record of every step (and dL/dh_t if backward ran), with inputs, targets, outputs
        (and, for the LRU, its eigenvalues ``lambda``)."""
        data = {"x": self.sequence.x, "y": self.sequence.y, "mask": self.sequence.mask,
                "outputs": self.evaluation.outputs}
        # a record named like the task's arrays (the jordan cell's y, its outputs) keeps its own key
        keys = {name: f"record_{name}" if name in data else name for name in self.trace.names}
        arrays: dict[str, np.ndarray] = {keys[name]: np.asarray(self.trace[name]) for name in self.trace.names}
        arrays.update(data)
        layout = ("records are (num_layers * num_directions, T, B, H), index layer * D + direction, "
                  "natural time order; x (T, B, I), y (T, B[, O]), mask (T, B), outputs (T, B, O)")
        for name, key in keys.items():
            if key != name:
                layout += f"; {key} is the cell's record {name}, {name} the task's array"
        if self.is_attention:
            layout = ("h, z and dh are (num_layers, T, B, d_model), one row per block; attn is "
                      "(num_layers, B, heads, T_query, T_key) (rows sum to 1); q, k, v are "
                      "(num_layers, T, B, heads, d_head); x (T, B, I), y (T, B[, O]), mask (T, B), outputs (T, B, O)")
        meta = {
            "spec": self.spec.name, "task": self.task.kind, "cell": self.spec.model.cell,
            "layout": layout,
            "num_layers": self.spec.model.num_layers,
            "num_directions": self.num_directions,
            "step": self.trainer.step, "loss": self.evaluation.loss,
            "names": list(keys.values()),  # the records' keys in this file
        }
        if not self.is_attention and self.trace.has_gradients:  # what dh is (0 before each cut)
            meta["truncate"] = self.trace.backward_truncate or 0
        meta["task_fields"] = json.loads(json.dumps(dict(self.spec.task), default=str))
        meta["task_edits"] = self.task_edits()  # the trained weights read on other sequences: which, and how
        # where the numbers come from: two runs of one experiment (an init against another) export
        # files that said the same; the sequence may be the task's draw or one the user typed
        meta["run"] = None if self.run is None else str(self.run.path.resolve())
        meta["spec_toml"] = self.spec_as_trained.to_toml()
        meta["sequence"] = self.sequence_source()
        # what x's columns and y's classes are (copy's marker, selective-copy's tokens): the task's own words
        doc = re.sub(r":\w+:`~?([^`]+)`", r"\1", inspect.cleandoc(type(self.task).__doc__ or ""))
        meta["task_layout"] = doc.replace("``", "")
        if self.is_attention:
            meta.update(num_heads=self.spec.model.num_heads, causal=bool(self.trace.causal))
        if self.task.vocab is not None:  # the outputs' classes (text, hello: x's one-hot columns too)
            meta["vocab"] = list(getattr(self.task, "chars", self.task.vocab))  # a text's own, "\n" not "⏎"
        if self.task.channels:
            meta["channels"] = list(self.task.channels)
        if getattr(self.task, "mean", None) is not None:  # a standardized series, in the file's units:
            meta["standardized"] = {"mean": self.task.mean.tolist(), "std": self.task.std.tolist(),
                                    "to_file_units": "x * std + mean (per column)"}
        if self.trace.mode == "LRU":  # the eigenvalues the trace was computed with
            arrays["lambda"] = np.stack([analysis.step_coefficients(self.trace, layer)[0]
                                         for layer in range(self.trace.num_layers)])
            meta["lambda"] = "complex (num_layers, H): the LRU's diagonal recurrence h_t = lambda * h_{t-1} + ..."
        arrays["meta"] = np.array(json.dumps(meta))
        return arrays

    def export_trace(self, path: str | Path, *, replace: bool = True) -> Path:
        """Write :meth:`trace_arrays` to ``path`` (``.npz``, atomically), dL/dh_t included: the
        backward pass runs first if it has not (the BPTT cursor stays where it was); returns the
        path written. ``replace=False`` refuses an existing file (:class:`~rnnlab.errors.TargetExistsError`)."""
        path = npz_target(path, "trace file", replace=replace)
        if self.bptt_cursor is None:
            self.run_backward()
            self.bptt_cursor = None  # computed for the file, not revealed in the views
        atomic_save_npz(path, self.trace_arrays(), replace=replace)
        return path

    # ------------------------------------------------------------------ sampling
    def default_prime(self) -> str:
        """What :meth:`sample` starts from unless told: a newline where the vocabulary has one (a text
        starts a line), else the training text's first character (hello: "h")."""
        if not hasattr(self.task, "encode"):
            raise UserError(f"the {self.task.kind} task is not a character model; sampling needs one")
        return "\n" if "\n" in self.task.chars else self.task.first_character()

    def sample(self, prime: str | None, length: int, temperature: float = 1.0, seed: int | None = None,
               should_stop: Callable[[], bool] = lambda: False,
               on_text: Callable[[str], None] = lambda text: None) -> str:
        """Generate ``length`` characters after ``prime`` (character tasks), drawing from
        softmax(logits / temperature); the prime's own characters are returned first. ``prime``
        None: a newline where the vocabulary has one (a text starts a line), else the training
        text's first character (hello: "h").

        A causal self-attention model re-reads its context at every step: the last ``task.length``
        characters (the length its positional encoding covers), a sliding window. A non-causal one
        or a bidirectional recurrent one (``bidirectional = true``) saw the future in training and
        is refused. Once ``should_stop()`` is true it returns what it has generated so far.
        ``on_text`` gets the prime, then each character as it is drawn (the CLI prints them so)."""
        if not hasattr(self.task, "encode"):
            raise UserError(f"the {self.task.kind} task is not a character model; sampling needs one")
        if prime is None:
            prime = self.default_prime()
        if not prime:
            raise UserError("--prime must have at least one character")
        if temperature <= 0 or not np.isfinite(temperature):
            raise UserError(f"temperature must be a positive finite number, got {temperature}")
        if self.spec.model.bidirectional and not self.is_attention:
            raise UserError("this model is bidirectional: its reverse direction read the characters after each "
                            "step in training, so it cannot generate one character at a time")
        ids = self.task.encode(prime)
        prime = self.task.decode(ids)  # as the text it stands for: a typed \n is a newline
        on_text(prime)
        vocab_size = self.task.input_size
        rng = np.random.default_rng(self.spec.seed if seed is None else seed)
        eye = np.eye(vocab_size)
        if self.is_attention:
            drawn = self._sample_attention(ids, length, temperature, rng, eye, should_stop, on_text)
            return prime + self.task.decode(drawn)
        out, state, _ = self.model.forward(eye[ids][:, None, :])
        logits = out[-1, 0]
        generated = []
        while len(generated) < length and not should_stop():
            nxt = _draw(logits, temperature, rng)
            generated.append(nxt)
            on_text(self.task.chars[nxt])
            out, state = self.model.step_outputs(eye[nxt][None, :], state)
            logits = out[0]
        return prime + self.task.decode(np.array(generated, np.int64))

    def _sample_attention(self, ids, length: int, temperature: float, rng, eye, should_stop, on_text) -> np.ndarray:
        """:meth:`sample` for self-attention: the whole window is read again for each character."""
        if not self.model.causal:
            raise UserError("this selfattention model is not causal (bidirectional = true): every step saw the "
                            "characters after it in training, so it cannot generate one character at a time")
        window = self.model.max_len
        context = [int(i) for i in ids[-window:]]
        generated = []
        while len(generated) < length and not should_stop():
            out, _, _ = self.model.forward(eye[context][:, None, :])
            nxt = _draw(out[-1, 0], temperature, rng)
            generated.append(nxt)
            on_text(self.task.chars[nxt])
            context = (context + [nxt])[-window:]
        return np.array(generated, np.int64)

    def describe(self) -> dict[str, Any]:
        """The lab in a few fields (spec, task, cell, steps, trained_steps), as ``--json`` prints it."""
        return {"spec": self.spec.name, "task": self.task.describe(), "cell": self.spec.model.cell,
                "steps": self.steps, "trained_steps": self.trainer.step}
