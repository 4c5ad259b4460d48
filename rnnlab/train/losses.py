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


def _sequence(what: str, value: np.ndarray, layout: str) -> np.ndarray:
    """A model's output as float64, (T, B, features): what the losses read (numpy's own errors from
    deep inside them, "bitwise_and" or "could not be broadcast", said nothing of which argument)."""
    value = np.asarray(value)
    if value.ndim != 3 or value.dtype.kind not in "iuf":
        raise ValueError(f"{what} must be a real array of shape {layout}, got {value.dtype} {value.shape}")
    return value.astype(np.float64, copy=False)


def _mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``mask`` as a (T, B) bool array: a bool one as it is, a numeric one of only 0 and 1 converted."""
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"mask must have shape (T, B) = {shape}, one flag per step, got {mask.shape}")
    if mask.dtype != bool:
        if mask.dtype.kind not in "iuf" or not np.isin(mask, (0, 1)).all():
            raise ValueError(f"mask must be True/False (or 0/1) per step, got dtype {mask.dtype} "
                             f"with values other than 0 and 1")
        mask = mask.astype(bool)
    return mask


def _quiet_on_divergence(loss):
    @functools.wraps(loss)
    def quiet(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return loss(*args, **kwargs)
    return quiet


@_quiet_on_divergence
def cross_entropy(logits: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> LossResult:
    """Mean of -log softmax(logits)[target] over masked steps. logits (T, B, V), targets/mask (T, B).

    ``targets`` are class ids in 0..V-1 at every step (a masked-out one too: any id pads, the mask
    drops it); ``mask`` is bool, or 0/1. ValueError names a wrong shape, dtype or id."""
    logits = _sequence("logits", logits, "(T, B, V)")
    targets = np.asarray(targets)
    if targets.shape != logits.shape[:2]:
        raise ValueError(f"targets must have shape (T, B) = {logits.shape[:2]}, one class id per step, "
                         f"got {targets.shape}")
    if targets.dtype.kind not in "iu":
        raise ValueError(f"targets must be integer class ids, got dtype {targets.dtype}")
    V = logits.shape[-1]
    if targets.size and not (0 <= targets.min() and targets.max() < V):  # a negative id would wrap around
        bad = targets.min() if targets.min() < 0 else targets.max()
        raise ValueError(f"targets hold class id {bad}, outside 0..{V - 1} (logits have V = {V}); "
                         f"pad masked-out steps with any id in range: the mask drops them")
    mask = _mask(mask, logits.shape[:2])
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
    """Mean of (output - target)^2 over masked steps and features. outputs/targets (T, B, O), mask (T, B)
    (bool, or 0/1). ValueError names a wrong shape or dtype."""
    outputs = _sequence("outputs", outputs, "(T, B, O)")
    targets = np.asarray(targets)
    if targets.shape != outputs.shape:
        raise ValueError(f"targets must have the outputs' shape {outputs.shape}, got {targets.shape}")
    if targets.dtype.kind not in "biuf":
        raise ValueError(f"targets must be real numbers, got dtype {targets.dtype}")
    mask = _mask(mask, outputs.shape[:2])
    count = max(int(mask.sum()), 1) * outputs.shape[-1]
    diff = (outputs - targets) * mask[..., None]
    return LossResult(float((diff * diff).sum() / count), None, 2.0 * diff / count)


LOSSES = {"xent": cross_entropy, "mse": mean_squared_error}
