"""Optimizers (SGD with momentum, Adagrad, RMSprop, Adam) and gradient clipping.

Each optimizer updates a dict of parameter arrays in place with the same rules as ``torch.optim``
and keeps its slots as plain arrays, so a checkpoint stores them as ``.npz`` entries and a resumed
run continues bit for bit. ``step(..., finite=True)`` (the trainer's) applies an update only if
every updated parameter and slot is finite, else changes nothing and raises
:class:`~rnnlab.train.model.WeightsDiverged` naming the first that is not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import choice_refusal, given, is_choice
from .model import WeightsDiverged


def _check_amount(name: str, value: Any, positive: bool = True) -> None:
    """ValueError unless ``value`` is a finite int or float (numpy's too, not a bool), positive (a
    learning rate) or else at least 0 (a clipping norm)."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not (number and math.isfinite(value) and (value > 0 if positive else value >= 0)):
        raise ValueError(f"{name} must be a {'positive number' if positive else 'number >= 0'}, got {given(value)}")


class Optimizer:
    """Base: ``step(params, grads)`` updates ``params`` in place; ``slots`` holds the state.

    The ``params`` given at construction name the parameters and shape their slots (a layer's
    ``parameters()``); each ``step`` updates the arrays of the ``params`` it is given (the same
    names: the same arrays, or a copy's) from ``grads[name]``, ignoring the other keys of ``grads``
    (a layer's ``"input"``, ``"h0"``)."""

    slot_names: tuple[str, ...] = ()

    def __init__(self, params: Mapping[str, np.ndarray], learning_rate: float) -> None:
        _check_amount("learning_rate", learning_rate)  # ("0.1" failed only at the first step, -1 climbed the loss)
        self.learning_rate = learning_rate
        self.steps = 0
        self.slots = {slot: {k: np.zeros_like(v) for k, v in params.items()} for slot in self.slot_names}

    def step(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray], *, finite: bool = False) -> None:
        """Update ``params`` in place from ``grads``. ``finite``: first compute every new parameter
        and slot on copies; if one holds NaN or Inf (in the parameter's dtype: an overflow), raise
        WeightsDiverged naming it, with the parameters, the slots and the step count untouched."""
        for name, p in params.items():  # all checked before any is updated: a refused step changes nothing
            if name not in grads:
                raise KeyError(f"no gradient for parameter {name!r} (grads has {', '.join(map(repr, grads))})")
            if np.shape(grads[name]) != p.shape:  # numpy would broadcast a (1,) into every element
                raise ValueError(f"gradient {name!r} has shape {np.shape(grads[name])}, "
                                 f"expected the parameter's {p.shape}")
        steps = self.steps + 1
        updated = []
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported as what it is, or left
            for name, p in params.items():
                g = np.asarray(grads[name]).astype(p.dtype, copy=False)
                slots = {slot: values[name] for slot, values in self.slots.items()}
                if finite:
                    p, slots = p.copy(), {slot: value.copy() for slot, value in slots.items()}
                self._update(p, g, slots, steps)
                if finite:
                    named = [(name, p)] + [(f"optimizer's {slot} of {name}", v) for slot, v in slots.items()]
                    for what, value in named:
                        if not np.isfinite(value).all():
                            raise WeightsDiverged(f"the updated {what}", value.dtype)
                    updated.append((name, p, slots))
        for name, p, slots in updated:  # every update finite: now they are applied together
            np.copyto(params[name], p)
            for slot, value in slots.items():
                np.copyto(self.slots[slot][name], value)
        self.steps = steps

    def _update(self, p: np.ndarray, g: np.ndarray, slots: dict[str, np.ndarray], steps: int) -> None:
        """Update ``p`` and its ``slots`` in place from ``g``; ``steps`` counts this update."""
        raise NotImplementedError  # pragma: no cover

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Everything needed to resume, flattened to ``"<slot>/<param>"`` keys (plus ``"steps"``)."""
        out = {f"{slot}/{name}": value for slot, values in self.slots.items() for name, value in values.items()}
        out["steps"] = np.array(self.steps, np.int64)
        return out

    def load_state_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        for slot, values in self.slots.items():
            for name, value in values.items():
                key = f"{slot}/{name}"
                if key not in arrays or arrays[key].shape != value.shape:
                    raise ValueError(f"optimizer state {key!r} is missing or misshapen")
                value[...] = arrays[key]
        self.steps = int(arrays["steps"])


class SGD(Optimizer):
    """v = momentum * v + g;  p -= lr * v   (torch.optim.SGD, dampening 0)."""

    slot_names = ("velocity",)

    def __init__(self, params, learning_rate: float, momentum: float = 0.0) -> None:
        super().__init__(params, learning_rate)
        self.momentum = momentum

    def _update(self, p, g, slots, steps):
        v = slots["velocity"]
        if self.momentum and steps > 1:
            v *= self.momentum
            v += g
        else:  # torch starts the buffer at the first gradient
            v[...] = g
        p -= self.learning_rate * v


class Adagrad(Optimizer):
    """G += g^2;  p -= lr * g / (sqrt(G) + eps)."""

    slot_names = ("sum_squares",)

    def __init__(self, params, learning_rate: float, eps: float = 1e-10) -> None:
        super().__init__(params, learning_rate)
        self.eps = eps

    def _update(self, p, g, slots, steps):
        G = slots["sum_squares"]
        G += g * g
        p -= self.learning_rate * g / (np.sqrt(G) + self.eps)


class RMSprop(Optimizer):
    """s = alpha * s + (1 - alpha) * g^2;  p -= lr * g / (sqrt(s) + eps)."""

    slot_names = ("square_avg",)

    def __init__(self, params, learning_rate: float, alpha: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__(params, learning_rate)
        self.alpha, self.eps = alpha, eps

    def _update(self, p, g, slots, steps):
        s = slots["square_avg"]
        s *= self.alpha
        s += (1.0 - self.alpha) * g * g
        p -= self.learning_rate * g / (np.sqrt(s) + self.eps)


class Adam(Optimizer):
    """m, v: decayed first and second moments with bias correction (Kingma & Ba 2015)."""

    slot_names = ("m", "v")

    def __init__(self, params, learning_rate: float, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8) -> None:
        super().__init__(params, learning_rate)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _update(self, p, g, slots, steps):
        m, v = slots["m"], slots["v"]
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * g * g
        m_hat_scale = 1.0 / (1.0 - self.beta1**steps)
        v_hat_scale = 1.0 / (1.0 - self.beta2**steps)
        p -= self.learning_rate * (m * m_hat_scale) / (np.sqrt(v * v_hat_scale) + self.eps)


def check_optimizer_arguments(optimizer: Any, learning_rate: Any, clip_norm: Any) -> None:
    """ValueError for what a library trainer (seq2seq, trees) cannot train with: an optimizer not
    in :data:`OPTIMIZER_CLASSES`, a learning rate not a positive finite number, a clipping norm not a
    finite number >= 0 (a negative or NaN one turned clipping off without a word)."""
    if not is_choice(optimizer, OPTIMIZER_CLASSES):
        raise ValueError(f"optimizer {choice_refusal(optimizer, tuple(OPTIMIZER_CLASSES))}")
    _check_amount("learning_rate", learning_rate)
    _check_amount("clip_norm", clip_norm, positive=False)


def make_optimizer(name: str, params: Mapping[str, np.ndarray], train) -> Optimizer:
    """The optimizer a :class:`~rnnlab.spec.TrainSpec` names, with its settings."""
    lr = train.learning_rate
    if name == "sgd":
        return SGD(params, lr, momentum=train.momentum)
    if name == "adagrad":
        return Adagrad(params, lr, eps=train.eps)
    if name == "rmsprop":
        return RMSprop(params, lr, alpha=train.alpha, eps=train.eps)
    if name == "adam":
        return Adam(params, lr, beta1=train.beta1, beta2=train.beta2, eps=train.eps)
    raise ValueError(f"unknown optimizer {name!r}")


def global_norm(grads: Mapping[str, np.ndarray]) -> float:
    """sqrt of the sum of every squared gradient element, accumulated in float64."""
    return math.sqrt(sum(float(np.dot(g.ravel().astype(np.float64), g.ravel().astype(np.float64)))
                         for g in grads.values()))


def clip_gradients(grads: dict[str, np.ndarray], clip_value: float = 0.0, clip_norm: float = 0.0) -> tuple[float, bool]:
    """Clamp elements to [-clip_value, clip_value], then rescale to global norm <= clip_norm (0: off).

    Works in place. Returns (the global norm before any clipping, whether anything was clipped).
    Every array of ``grads`` counts: pass the parameters' gradients only (a layer's ``backward``
    also returns ``"input"``, ``"h0"`` and ``"c0"``, which would count in the norm and be scaled;
    ``{k: grads[k] for k in layer.parameters()}``), as :class:`~rnnlab.train.Trainer` does.
    """
    norm = global_norm(grads)
    clipped = False
    if clip_value > 0:
        for g in grads.values():
            if np.any(np.abs(g) > clip_value):
                clipped = True
                np.clip(g, -clip_value, clip_value, out=g)
    if clip_norm > 0:
        after = global_norm(grads) if clipped else norm
        if after > clip_norm:
            scale = clip_norm / (after + 1e-12)
            for g in grads.values():
                g *= scale
            clipped = True
    return norm, clipped


OPTIMIZER_CLASSES = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam}
