"""Training: losses, optimizers and clipping, the model with its readout, the loop, run directories."""

from .losses import LOSSES, LossResult, cross_entropy, mean_squared_error
from .model import SequenceModel
from .optim import OPTIMIZER_CLASSES, clip_gradients, global_norm, make_optimizer
from .rundir import RunDir, RunOutcome, default_run_path, train_run
from .runs import RunListing, list_runs
from .trainer import EvalRecord, StepRecord, Trainer, TrainingDiverged

__all__ = [
    "LOSSES", "LossResult", "cross_entropy", "mean_squared_error", "SequenceModel",
    "OPTIMIZER_CLASSES", "clip_gradients", "global_norm", "make_optimizer",
    "RunDir", "RunOutcome", "default_run_path", "train_run", "RunListing", "list_runs",
    "EvalRecord", "StepRecord", "Trainer", "TrainingDiverged",
]
