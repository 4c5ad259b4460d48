"""Initialisations the RNN literature leans on, applied in place to a layer (like ``torch.nn.init``).

The layers start as torch's do: every weight and bias from uniform(-1/sqrt(H), 1/sqrt(H)). These
functions overwrite some of them:

- :func:`orthogonal_` — every gate block of ``W_hh`` an orthogonal matrix (Saxe et al. 2014):
  all singular values 1, so at initialisation the linear part of the recurrence neither shrinks
  nor grows dL/dh_t as it goes back through time.
- :func:`identity_` — IRNN (Le, Jaitly & Hinton 2015): ``W_hh = scale * I``, biases 0, ``W_ih``
  from N(0, 0.001^2). With ReLU units the state is copied forward unchanged until inputs move it,
  and the gradient is copied backward unchanged: the adding problem becomes learnable.
- :func:`forget_gate_bias_` — LSTM forget-gate bias b_f (Gers et al. 2000; Jozefowicz et al. 2015
  recommend 1): f_t = sigma(... + b_f) starts near sigma(1) = 0.73 instead of 0.5, so the cell
  state (and its gradient) survives many more steps from the first update on.

Each takes an optional ``seed`` where it draws random numbers and is reproducible from it. A layer
without the weights a scheme sets (a MinGRU, an LRU or a JordanRNN has no ``weight_hh``; an
EchoStateNetwork's is its fixed reservoir), a parameter replaced by an array of another shape or
dtype or by a read-only one, or a non-finite or non-numeric value is refused with a ValueError
naming the function and the problem, before anything is written.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._params import check_finite_number, check_params, check_seed, is_integer, is_one_of, refused_choice
from .esn import EchoStateNetwork
from .recurrent import LSTM, RNN, RecurrentLayer

__all__ = ["orthogonal_", "identity_", "forget_gate_bias_", "INITS", "apply_init"]

#: Names accepted by :func:`apply_init` (and the spec's ``model.init``).
INITS = ("uniform", "orthogonal", "identity")


def _finite(function: str, name: str, value: Any) -> float:
    """``value`` as a float: a real number (not a bool) and finite; ValueError naming ``function``."""
    try:
        return check_finite_number(name, value)
    except ValueError as exc:
        raise ValueError(f"{function}: {exc}") from None


def _rng(function: str, seed: Any) -> np.random.Generator:
    """The generator for ``seed``: None, a non-negative integer (as a layer's) or a sequence of them
    (a SeedSequence's entropy: the trainer passes its run seed and a stream number); ValueError
    naming ``function`` otherwise (numpy's own errors name neither, and a bool would seed with 0 or 1)."""
    if isinstance(seed, (list, tuple)) and seed and all(is_integer(s) and s >= 0 for s in seed):
        return np.random.default_rng(seed)
    try:
        return np.random.default_rng(check_seed(seed))
    except ValueError:
        raise ValueError(f"{function}: seed must be a non-negative integer, a sequence of them, or None, "
                         f"got {seed!r}") from None


def _recurrent_params(function: str, layer: Any) -> dict[str, np.ndarray]:
    """The live parameters of ``layer`` if it has trained recurrent weights ``weight_hh_l*`` (RNN, LSTM,
    GRU, LeakyRNN); ValueError naming the layer's class, and why, otherwise."""
    cls = type(layer).__name__
    if any(c.__module__.split(".")[0] == "torch" for c in type(layer).__mro__):  # (a user's subclass too)
        raise ValueError(f"{function} is for rnnlab's layers, not torch's {cls} (torch.nn.init has its own; or "
                         f"set it on the rnnlab layer, then load its state_dict into torch)")
    if not callable(getattr(layer, "parameters", None)):
        raise ValueError(f"{function} needs a layer with live parameters() and recurrent weights weight_hh_l* "
                         f"(RNN, LSTM, GRU, LeakyRNN), got {cls}")
    if isinstance(layer, EchoStateNetwork):  # it has a weight_hh, but not one an initialisation scheme may set
        raise ValueError(f"{function} is for trained recurrent layers (RNN, LSTM, GRU, LeakyRNN); an "
                         f"EchoStateNetwork's weight_hh is its fixed reservoir, drawn sparse and scaled to its "
                         f"spectral_radius (choose connectivity and spectral_radius when building it)")
    params = layer.parameters()
    if not any(name.startswith("weight_hh") for name in params):
        raise ValueError(f"{function} needs recurrent weights weight_hh_l*; {cls} has none")
    if not isinstance(layer, RecurrentLayer):  # some other object with a weight_hh: not laid out as these are
        raise ValueError(f"{function} is for the recurrent layers RNN, LSTM, GRU and LeakyRNN, not {cls}")
    return params


def _writable(function: str, layer: RecurrentLayer, names: list[str]) -> dict[str, np.ndarray]:
    """The live parameters of ``layer``, after checking (before anything is written) that every entry
    is still an array of its shape and dtype (as forward checks) and that those of ``names`` can be
    written in place; ValueError naming ``function`` and the parameter otherwise (numpy would say
    only "assignment destination is read-only", or report a failed broadcast)."""
    params = layer.parameters()
    try:
        check_params(params, layer._expected_params(), layer.dtype)
    except ValueError as exc:
        raise ValueError(f"{function}: {exc}") from None
    for name in names:
        if not params[name].flags.writeable:
            raise ValueError(f"{function}: parameter {name!r} is a read-only array, and {function} writes in place "
                             f"(put a writable one in parameters(), e.g. its .copy())")
    return params


def _orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    """A uniformly distributed orthogonal matrix: Q of the QR decomposition of a Gaussian matrix,
    its columns' signs fixed by diag(R) (without that, Q is not uniform; Mezzadri 2007)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def orthogonal_(layer: RecurrentLayer, gain: float = 1.0, seed: int | None = None) -> None:
    """Set each gate's ``H x H`` block of every ``weight_hh`` to ``gain`` times an orthogonal matrix.

    ValueError for a layer without ``weight_hh`` (MinGRU, MinLSTM, LRU, JordanRNN, ...) or a
    non-finite ``gain``.
    """
    _recurrent_params("orthogonal_", layer)
    gain = _finite("orthogonal_", "gain", gain)
    rng = _rng("orthogonal_", seed)
    params = _writable("orthogonal_", layer, ["weight_hh" + sfx for sfx in layer._suffixes()])
    H = layer.hidden_size
    for sfx in layer._suffixes():
        w_hh = params["weight_hh" + sfx]
        for g in range(layer.gate_count):
            w_hh[g * H:(g + 1) * H] = gain * _orthogonal(rng, H)


def identity_(layer: RecurrentLayer, scale: float = 1.0, input_std: float = 1e-3, seed: int | None = None) -> None:
    """IRNN: ``weight_hh = scale * I``, every bias 0, ``weight_ih`` from N(0, input_std^2).

    Only for the Elman cell (:class:`~rnnlab.layers.RNN`, as the spec's ``model.init = "identity"``):
    a gated cell's recurrent blocks do not copy the state, and a :class:`~rnnlab.layers.LeakyRNN`
    already carries its state over through its own rates (``h_t = (1 - a) h_{t-1} + a u_t``), so
    the identity has no meaning there (ValueError); so is a layer without ``weight_hh``, a
    non-finite ``scale`` or a negative or non-finite ``input_std``.
    """
    _recurrent_params("identity_", layer)
    if not isinstance(layer, RNN):
        raise ValueError(f"identity init is for the Elman RNN (IRNN), not {type(layer).__name__}")
    scale = _finite("identity_", "scale", scale)
    if _finite("identity_", "input_std", input_std) < 0:
        raise ValueError(f"identity_: input_std must be >= 0, got {input_std!r}")
    rng = _rng("identity_", seed)
    params = _writable("identity_", layer, [name + sfx for sfx in layer._suffixes()
                                            for name in ("weight_hh", "weight_ih", "bias_ih", "bias_hh")
                                            if name + sfx in layer._expected_params()])
    for sfx in layer._suffixes():
        params["weight_hh" + sfx][...] = scale * np.eye(layer.hidden_size)
        w_ih = params["weight_ih" + sfx]
        w_ih[...] = rng.normal(0.0, input_std, w_ih.shape)
        for name in ("bias_ih" + sfx, "bias_hh" + sfx):
            if name in params:
                params[name][...] = 0.0


def forget_gate_bias_(layer: RecurrentLayer, value: float = 1.0) -> None:
    """LSTM: make the forget gate's total bias ``b_if + b_hf`` equal ``value`` (b_if = value,
    b_hf = 0) in every layer and direction. ValueError for other cells, a layer without biases or
    a non-finite ``value``."""
    if not isinstance(layer, LSTM):
        raise ValueError(f"the forget-gate bias is an LSTM option, not {type(layer).__name__}")
    if not layer.bias:
        raise ValueError("the forget-gate bias needs bias=True")
    value = _finite("forget_gate_bias_", "value", value)
    H = layer.hidden_size
    params = _writable("forget_gate_bias_", layer, [name + sfx for sfx in layer._suffixes()
                                                    for name in ("bias_ih", "bias_hh")])
    for sfx in layer._suffixes():
        params["bias_ih" + sfx][H:2 * H] = value  # gate order i, f, g, o: f is the second block
        params["bias_hh" + sfx][H:2 * H] = 0.0


def apply_init(layer: RecurrentLayer, init: str = "uniform", forget_bias: float = 0.0,
               seed: int | None = None) -> None:
    """Apply a named scheme from :data:`INITS` (``"uniform"`` keeps torch's initialisation) and,
    for an LSTM, a forget-gate bias when ``forget_bias`` is not 0."""
    if not is_one_of(init, INITS):
        raise refused_choice("init", init, INITS)
    _rng("apply_init", seed)  # the seed is checked even where the scheme draws nothing
    if init == "orthogonal":
        orthogonal_(layer, seed=seed)
    elif init == "identity":
        identity_(layer, seed=seed)
    if forget_bias:
        forget_gate_bias_(layer, forget_bias)
