"""The training loop: one optimizer update per step, as a generator of events.

Every batch is a pure function of ``(seed, step)`` and the weights are seeded from ``seed``, so the
same spec on the same machine gives the same metrics bit for bit, and a resumed run continues
exactly where a checkpoint left it. Stream tasks (``task.stream``) carry the recurrent state from
one step to the next (detached: the gradient stops at the window boundary); ``train.truncate = k``
also cuts it every k steps inside a window, so the state is carried across chunks of k.

The ``selfattention`` cell carries nothing: its state is always None, so on a stream task every
window is read on its own (no context from the windows before it), and ``train.truncate`` does not
apply (the spec refuses it). Its batches' ``lengths`` become the attention's key padding mask.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..kernels import blas_single_threaded
from .losses import LOSSES, LossResult
from .model import WeightsDiverged, make_model
from .optim import clip_gradients, make_optimizer


class TrainingDiverged(RuntimeError):
    """A number of the step (the loss, the loss's gradient, a parameter's gradient, an updated
    parameter or optimizer slot) became NaN or Inf in the model's dtype; the update was not applied."""

    def __init__(self, step: int, what: str, dtype: Any = None) -> None:
        self.step = step
        where = "" if dtype is None else f" in {np.dtype(dtype).name}"  # the range it left: 4e38 is Inf in float32
        super().__init__(f"{what} became non-finite{where} at step {step}")


def check_loss(loss: float, step: int, dtype: Any) -> None:
    """TrainingDiverged unless the loss of update ``step`` is within the model's ``dtype``: it is
    computed in float64, but past the model's own range (4e38 for float32) its gradient overflows."""
    if not abs(loss) <= float(np.finfo(dtype).max):
        raise TrainingDiverged(step, "the loss", dtype)


def apply_update(optimizer, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], step: int, dtype: Any,
                 clip_value: float = 0.0, clip_norm: float = 0.0) -> tuple[float, bool]:
    """Clip ``grads`` and update ``params`` all or nothing (``optimizer.step(..., finite=True)``) as
    update ``step``; TrainingDiverged, nothing changed, where the gradient norm or an updated
    parameter or slot is not finite in ``dtype``. Returns (the norm before clipping, whether clipped):
    every trainer's update (the sequence models', seq2seq's)."""
    norm, clipped = clip_gradients(grads, clip_value, clip_norm)
    if not np.isfinite(norm):
        raise TrainingDiverged(step, "the gradient norm", dtype)
    try:
        optimizer.step(params, grads, finite=True)
    except WeightsDiverged as exc:  # names the first number that overflowed
        raise TrainingDiverged(step, exc.what, exc.dtype) from None
    return norm, clipped


@dataclass(frozen=True)
class StepRecord:
    """One training step, as written to ``metrics.jsonl``."""

    step: int            # updates done so far (1 for the first)
    loss: float
    accuracy: float | None
    grad_norm: float     # global norm of the gradient before clipping
    clipped: bool
    time: float          # seconds of training so far (across resumes)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvalRecord:
    """The held-out batch's loss after ``step`` updates, as written to ``evals.jsonl``."""

    step: int
    loss: float
    accuracy: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Trainer:
    """Owns the model, the optimizer and the step counter of one experiment."""

    def __init__(self, spec, task=None) -> None:
        self.spec = spec
        self.task = task if task is not None else spec.make_task()
        self.model = make_model(spec.model, self.task.input_size, self.task.output_size, seed=spec.seed,
                                max_len=self.task.length)
        self.optimizer = make_optimizer(spec.train.optimizer, self.model.parameters(), spec.train)
        self.loss_fn = LOSSES[self.task.loss]
        self.step = 0              # updates done
        self.elapsed = 0.0         # seconds spent in train_step, across resumes
        self.carried: Any = None   # stream tasks: the state the next window starts from
        self._eval_batch = None

    # ------------------------------------------------------------------ one step
    def compute(self, batch, state: Any = None, train: bool = False) -> tuple[LossResult, Any, Any]:
        """Forward and loss on a batch: (loss result, final state, trace). ``train``: a training
        step (with ``train.teacher_forcing`` the jordan cell reads back the previous targets)."""
        if self.spec.model.attention:  # padding past each length is masked out of the attention
            outputs, state_n, trace = self.model.forward(batch.x, state, lengths=batch.lengths)
        elif train and self.spec.train.teacher_forcing:
            outputs, state_n, trace = self.model.forward(batch.x, state, teacher=(batch.y, batch.mask))
        else:
            outputs, state_n, trace = self.model.forward(batch.x, state)
        return self.loss_fn(outputs, batch.y, batch.mask), state_n, trace

    def train_step(self) -> StepRecord:
        """One update on batch number ``self.step``; raises :class:`TrainingDiverged` (weights untouched)."""
        # One BLAS thread for the whole step, not only inside the kernels: the readout's products,
        # the gradient norm and the optimizer otherwise wake OpenBLAS's spinning threads, which
        # fight the kernels' own threads on a small machine (adding-lstm: 20 -> 56 steps/s on
        # 2 busy cores, side by side in one process).
        with blas_single_threaded():
            return self._train_step()

    def _train_step(self) -> StepRecord:
        started = time.perf_counter()
        t = self.spec.train
        batch = self.task.batch(t.batch_size, self.step, self.spec.seed)
        state = self.carried if self.task.stream else None
        result, state_n, trace = self.compute(batch, state, train=True)
        # every number of the step must stay in the model's range: the loss, the gradients, the update
        dtype = self.model.dtype
        check_loss(result.loss, self.step + 1, dtype)
        params = self.model.parameters()
        try:
            grads = self.model.backward(trace, result.grad, truncate=t.truncate or None)
        except WeightsDiverged as exc:  # names the first gradient that overflowed
            raise TrainingDiverged(self.step + 1, exc.what, exc.dtype) from None
        grads = {name: grads[name] for name in params}
        norm, clipped = apply_update(self.optimizer, params, grads, self.step + 1, dtype, t.clip_value, t.clip_norm)
        if self.task.stream:
            self.carried = state_n
        self.step += 1
        self.elapsed += time.perf_counter() - started
        return StepRecord(self.step, result.loss, result.accuracy, norm, clipped, self.elapsed)

    def warm_up(self) -> None:
        """Load (or compile) the kernels with one forward and backward pass that changes nothing,
        so the first step's time -- and steps/s -- measures training, not the JIT."""
        batch = self.task.batch(1 if not self.task.stream else self.spec.train.batch_size, self.step, self.spec.seed)
        result, _, trace = self.compute(batch, self.carried if self.task.stream else None)
        try:
            self.model.backward(trace, result.grad, truncate=self.spec.train.truncate or None)
        except WeightsDiverged:  # weights that diverged (a checkpoint saved just before it showed): the
            pass                 # first step reports it as TrainingDiverged, what callers of a step handle

    def evaluate(self) -> EvalRecord:
        """Loss (and accuracy) on the fixed held-out batch, from a zero state."""
        if self._eval_batch is None:
            self._eval_batch = self.task.eval_batch(self.spec.train.eval_batch_size, self.spec.seed)
        with blas_single_threaded():
            result, _, _ = self.compute(self._eval_batch)
        return EvalRecord(self.step, result.loss, result.accuracy)

    def events(self, until_step: int, should_stop: Callable[[], bool] = lambda: False
               ) -> Iterator[StepRecord | EvalRecord]:
        """Train up to ``until_step`` updates, yielding each step and each evaluation.

        Stops early (between steps, never inside one) when ``should_stop()`` is true.
        """
        every = self.spec.train.eval_every
        while self.step < until_step and not should_stop():
            record = self.train_step()
            yield record
            if every and record.step % every == 0 and record.step < until_step:
                yield self.evaluate()
        if self.step >= until_step:
            yield self.evaluate()

    def owes_evaluation(self, until_step: int, last_evaluated: int | None) -> bool:
        """Whether training on from here to ``until_step`` must first evaluate at this step: a run
        resumed from a checkpoint saved at an evaluation's step, just before :meth:`events` yielded
        that evaluation, which a process killed in between never logged (``last_evaluated``: the
        last step logged, None for none). The CLI's resume and the lab's ``t`` both ask: the lab left
        that row out where the CLI logged it."""
        every = self.spec.train.eval_every
        return (bool(every) and 0 < self.step < until_step and self.step % every == 0
                and (last_evaluated is None or last_evaluated < self.step))

    # ------------------------------------------------------------------ checkpoints
    def state_arrays(self) -> dict[str, np.ndarray]:
        """Everything a resumed run needs, as named arrays (no pickle): weights, optimizer, carried state."""
        out = {f"param/{k}": v for k, v in self.model.parameters().items()}
        out.update({f"optim/{k}": v for k, v in self.optimizer.state_arrays().items()})
        out["step"] = np.array(self.step, np.int64)
        out["elapsed"] = np.array(self.elapsed, np.float64)
        if self.carried is not None:
            h, c = self.carried if isinstance(self.carried, tuple) else (self.carried, None)
            out["carried/h"] = h
            if c is not None:
                out["carried/c"] = c
        return out

    def load_state_arrays(self, arrays, *, optimizer: bool = True) -> None:
        """Restore what :meth:`state_arrays` saved; ValueError naming the first inconsistency.
        ``optimizer=False``: the weights, the step and the clock, with a fresh optimizer (a checkpoint
        of another optimizer than the spec's, read to be looked at, not trained further)."""
        params = {k[len("param/"):]: arrays[k] for k in arrays if k.startswith("param/")}
        self.model.load_state_dict(params)
        self.optimizer = make_optimizer(self.spec.train.optimizer, self.model.parameters(), self.spec.train)
        if optimizer:
            self.optimizer.load_state_arrays({k[len("optim/"):]: arrays[k] for k in arrays if k.startswith("optim/")})
        self.step = int(arrays["step"])
        self.elapsed = float(arrays["elapsed"])
        if "carried/h" in arrays:
            h = np.array(arrays["carried/h"], self.model.state_dtype)
            self.carried = (h, np.array(arrays["carried/c"], self.model.dtype)) if "carried/c" in arrays else h
        else:
            self.carried = None
