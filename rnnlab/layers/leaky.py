"""Leaky-integrator RNN: units with their own time constants (multiple time scales).

    u_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)      the candidate          (B, H)
    h_t = (1 - a) * h_{t-1} + a * u_t                      a = sigmoid(alpha)     (H,)

Each unit j moves a fraction a_j of the way towards its candidate per step, so it forgets with
time constant tau_j = 1 / a_j steps: a fast unit (a near 1, tau near 1) follows its input, a slow
unit (a small, tau large) integrates it. ``alpha`` is a parameter, so 0 < a < 1 always, and
learning it learns the time constants.

Parameters (state_dict, per layer k and direction): ``weight_ih_l{k}`` (H, I_k), ``weight_hh_l{k}``
(H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (H,) as ``torch.nn.RNN``, plus ``alpha_l{k}`` (H,)
(``_reverse`` for the reverse direction). The weights start as torch's; the alphas start from time
constants spread log-uniformly (geometrically) between ``tau_min`` and ``tau_max`` over the units,
``tau_j = tau_min * (tau_max / tau_min) ** (j / (H - 1))``, ``alpha_j = logit(1 / tau_j)``: slow and
fast units exist from the first step, the same in every layer and direction.

``learn_time_constants=False`` keeps them fixed: ``backward`` still returns the alphas' gradients,
but their names are in :attr:`LeakyRNN.frozen`, which trainers leave out
(:meth:`rnnlab.train.model.SequenceModel.parameters` returns only what the optimizer updates).

Trace records (see :class:`rnnlab.Trace`): ``"h"``; ``"u"``, the candidate; ``"a"``, each unit's rate
(constant over time and batch, recorded per step so that it shows as a gate heatmap).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..kernels.leaky import leaky_backward, leaky_forward
from ._params import assign_params, check_bool, check_layer_direction, check_seed, draw_uniform
from .recurrent import RecurrentLayer, layer_suffix

__all__ = ["LeakyRNN", "DEFAULT_TIME_CONSTANTS", "time_constant_spread", "sigmoid"]

#: (tau_min, tau_max) when ``time_constants`` is None: from nearly an Elman unit to a 50-step integrator.
DEFAULT_TIME_CONSTANTS = (1.25, 50.0)


def _check_time_constants(value: Any) -> tuple[float, float]:
    if value is None:
        return DEFAULT_TIME_CONSTANTS
    try:  # no text: float() would read "25" as the pair ("2", "5"), and "2" as 2.0; no flags either
        if isinstance(value, (str, bytes)) or any(isinstance(v, (str, bytes, bool, np.bool_)) for v in value):
            raise TypeError
        tau_min, tau_max = (float(v) for v in value)  # numbers of any kind: Fraction, a torch tensor
    except (TypeError, ValueError):
        raise ValueError(f"time_constants must be None or a pair (tau_min, tau_max), got {value!r}") from None
    if not (math.isfinite(tau_min) and math.isfinite(tau_max)):
        raise ValueError(f"time_constants must be finite numbers of steps, got {value!r}")
    if not 1.0 < tau_min <= tau_max:
        raise ValueError(f"time_constants must satisfy 1 < tau_min <= tau_max (tau = 1/a steps, a < 1), "
                         f"got {value!r}")
    return tau_min, tau_max


def sigmoid(alpha) -> np.ndarray:
    """1 / (1 + exp(-alpha)) in float64, to full relative precision in both tails (no overflow)."""
    alpha = np.asarray(alpha, np.float64)
    e = np.exp(-np.abs(alpha))
    return np.where(alpha >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def time_constant_spread(hidden_size: int, tau_min: float, tau_max: float) -> np.ndarray:
    """tau_j for j = 0..H-1, geometrically spaced from tau_min to tau_max (H = 1: their geometric mean)."""
    if hidden_size == 1:
        return np.array([math.sqrt(tau_min) * math.sqrt(tau_max)])  # the product overflows from 1.3e154 each
    return tau_min * (tau_max / tau_min) ** (np.arange(hidden_size) / (hidden_size - 1))


class LeakyRNN(RecurrentLayer):
    """Leaky-integrator RNN with per-unit time constants; see the module docstring for the equations.

    ``time_constants``: None (default :data:`DEFAULT_TIME_CONSTANTS`) or ``(tau_min, tau_max)`` with
    ``1 < tau_min <= tau_max``, the range the initial time constants are spread over.
    ``learn_time_constants``: False lists every ``alpha_*`` in :attr:`frozen`. Every argument after
    ``bias`` is keyword-only (``batch_first`` and ``bidirectional`` as :class:`~rnnlab.layers.RNN`'s).
    """

    mode = "Leaky"
    gate_count = 1
    record_names = ("h", "u", "a")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True, *,
                 batch_first: bool = False, bidirectional: bool = False, dtype: str = "float32",
                 seed: int | None = None, time_constants: tuple[float, float] | None = None,
                 learn_time_constants: bool = True) -> None:
        self.time_constants = _check_time_constants(time_constants)
        self.learn_time_constants = check_bool("learn_time_constants", learn_time_constants)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, bidirectional=bidirectional,
                         dtype=dtype, seed=seed)

    def _repr_extra(self) -> str:
        extra = ""
        if self.time_constants != DEFAULT_TIME_CONSTANTS:
            extra += f", time_constants={self.time_constants}"
        if not self.learn_time_constants:
            extra += ", learn_time_constants=False"
        return extra

    # ------------------------------------------------------------------ parameters
    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = super()._param_shapes()
        ordered: dict[str, tuple[int, ...]] = {}
        for sfx in self._suffixes():  # each direction's alpha after its weights and biases
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                if name + sfx in shapes:
                    ordered[name + sfx] = shapes[name + sfx]
            ordered["alpha" + sfx] = (self.hidden_size,)
        return ordered

    def reset_parameters(self, seed: int | None = None) -> None:
        """Weights and biases drawn exactly as :class:`~rnnlab.layers.RNN`'s with the same seed
        (uniform(-1/sqrt(H), 1/sqrt(H))); alphas from the time-constant spread (no randomness). ``seed``
        is recorded as :attr:`seed`; the arrays :meth:`parameters` handed out are written in place."""
        self.seed = seed = check_seed(seed)
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.hidden_size)
        drawn = {name: draw_uniform(rng, -bound, bound, shape, self.dtype)
                 for name, shape in RecurrentLayer._param_shapes(self).items()}
        alpha = self.initial_alpha()
        assign_params(self._params, {name: drawn[name] if name in drawn else alpha.astype(self.dtype)
                                     for name in self._param_shapes()})

    def initial_alpha(self) -> np.ndarray:
        """alpha = logit(1 / tau) of the initial time constants, (H,) float64."""
        a = 1.0 / time_constant_spread(self.hidden_size, *self.time_constants)
        return np.log(a / (1.0 - a))

    @property
    def frozen(self) -> tuple[str, ...]:
        """Parameter names a trainer must not update: every ``alpha_*`` when the time constants are fixed."""
        return () if self.learn_time_constants else tuple("alpha" + sfx for sfx in self._suffixes())

    def rates(self, layer: int = 0, direction: int = 0) -> np.ndarray:
        """a = sigmoid(alpha) of one layer and direction, (H,) float64 (each in (0, 1))."""
        layer, direction = check_layer_direction(layer, direction, self.num_layers, self.num_directions)
        return sigmoid(self._params["alpha" + layer_suffix(layer, direction)])

    def time_constants_of(self, layer: int = 0, direction: int = 0) -> np.ndarray:
        """tau = 1 / a of one layer and direction, (H,) float64, in steps."""
        return 1.0 / self.rates(layer, direction)

    def _rate(self, params, sfx: str) -> np.ndarray:
        """a = sigmoid(alpha) in the layer's dtype (what the kernels read)."""
        return np.ascontiguousarray(sigmoid(params["alpha" + sfx]), dtype=self.dtype)

    # ------------------------------------------------------------------ kernels
    def _run_forward(self, params, x, sfx, h0, c0, n_threads):
        w_ih, w_hh, b_ih, b_hh = self._weights(params, sfx)
        a = self._rate(params, sfx)
        hs, us = leaky_forward(x, w_ih, w_hh, b_ih + b_hh, a, h0, n_threads)
        return hs, us, a

    def _records(self, saved):
        hs, us, a = saved
        return {"h": hs[1:], "u": us, "a": np.broadcast_to(a, us.shape).copy()}

    def _run_backward(self, trace, x, sfx, saved, dy, dh_n, dc_n, truncate, grads, n_threads):
        w_ih, w_hh, _, _ = self._weights(trace._params, sfx)
        hs, us, a = saved
        dx, dw_ih, dw_hh, db, da, dh0, dh = leaky_backward(x, w_ih, w_hh, a, hs, us, dy, dh_n, truncate, n_threads)
        grads["weight_ih" + sfx], grads["weight_hh" + sfx] = dw_ih, dw_hh
        self._store_bias_grads(grads, sfx, db, db.copy())
        grads["alpha" + sfx] = (da * a * (1 - a)).astype(self.dtype)  # a = sigmoid(alpha)
        return dx, dh0, None, dh
