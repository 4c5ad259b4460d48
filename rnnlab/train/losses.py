"""Masked sequence losses: softmax cross-entropy for classes, mean squared error for values.

Both average over the steps the mask selects (and, for MSE, over output features), so a
many-to-one task's loss is its last step's loss, and padding never counts. Computed in float64.
Outputs that have diverged (inf, nan) give a non-finite loss silently: the trainer reports it
as divergence, in one line, and NumPy's RuntimeWarnings would only repeat it with a source line.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LossResult:
    """A loss's value and its gradient. ``grad`` is dL/d(output) in float64 whatever the output's
    dtype: cast it to the layer's (``grad.astype(layer.dtype)``) before its ``backward``."""

    loss: float
    accuracy: float | None  # classification tasks only: argmax == target over the masked steps
    grad: np.ndarray        # dL/d(output), same shape as the output, float64


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def _quiet_on_divergence(loss):
    @functools.wraps(loss)
    def quiet(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return loss(*args, **kwargs)
    return quiet


@_quiet_on_divergence
def cross_entropy(logits: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> LossResult:
    """Mean of -log softmax(logits)[target] over masked steps. logits (T, B, V), targets/mask (T, B)."""
    logits = np.asarray(logits, np.float64)
    count = max(int(mask.sum()), 1)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(axis=-1))
    picked = np.take_along_axis(shifted, targets[..., None], axis=-1)[..., 0]
    nll = (log_z - picked) * mask
    probs = np.exp(shifted - log_z[..., None])
    grad = probs
    np.put_along_axis(grad, targets[..., None], np.take_along_axis(grad, targets[..., None], axis=-1) - 1.0, axis=-1)
    grad *= (mask / count)[..., None]
    correct = (logits.argmax(axis=-1) == targets) & mask
    return LossResult(float(nll.sum() / count), float(correct.sum() / count), grad)


@_quiet_on_divergence
def mean_squared_error(outputs: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> LossResult:
    """Mean of (output - target)^2 over masked steps and features. outputs/targets (T, B, O), mask (T, B)."""
    outputs = np.asarray(outputs, np.float64)
    count = max(int(mask.sum()), 1) * outputs.shape[-1]
    diff = (outputs - targets) * mask[..., None]
    return LossResult(float((diff * diff).sum() / count), None, 2.0 * diff / count)


LOSSES = {"xent": cross_entropy, "mse": mean_squared_error}
