"""The trained network: a recurrent layer stack plus a linear readout at every step (or, for the
``selfattention`` cell, a Transformer encoder with the same interface; see :func:`make_model`).

``logits_t = W_out y_t + b_out`` where ``y_t`` is the top layer's output (both directions).
Parameters are the recurrent layer's state_dict names (PyTorch's for rnn/lstm/gru; see
:mod:`rnnlab.layers.minimal` for mingru/minlstm/lru) plus ``readout.weight`` (O, F) and
``readout.bias`` (O,), the names of ``torch.nn.Linear`` inside a module called ``readout``.
F is the layer's output width: D*H, except the LRU, whose output y_t = Re(C h_t) + D x_t has the
input's width I.

Frozen parameters: a layer may list names in ``frozen`` (the ``leaky`` cell's ``alpha_*`` when
``model.learn_tau = false``). :meth:`SequenceModel.parameters` leaves them out, so the trainer
neither updates nor clips nor checkpoints them (they are set by the spec: the leaky cell's initial
time constants are not random); :meth:`SequenceModel.state_dict` has every parameter, and
:meth:`SequenceModel.load_state_dict` takes frozen ones when given and keeps them otherwise.

:func:`make_model` builds either from a :class:`~rnnlab.spec.ModelSpec`: a :class:`SequenceModel`, or
for ``cell = "selfattention"`` a :class:`~rnnlab.layers.selfattention.SelfAttentionModel` (input
projection, positional encoding, ``num_layers`` blocks, readout; parameters ``input_proj.*``,
``layers.{k}.*``, ``readout.*``). Both have ``forward(x, state=None) -> (outputs, state, trace)``,
``backward(trace, d_out, truncate)``, ``parameters``/``state_dict``/``load_state_dict``,
``zero_state`` and ``step_outputs``; the attention model's state is always None (it carries nothing
from one call to the next) and its backward refuses ``truncate``.

Diverged weights: ``forward`` returns what it gets (NaN and Inf included: a view shows them, the
trainer's loss check catches them); ``backward`` raises :class:`WeightsDiverged` (a one-line
UserError) when the loss's gradient, dL/dy or a parameter's gradient leaves the model's dtype's
range, rather than the layer's ValueError about a bad argument (:class:`DivergenceChecks`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import SpecError, UserError
from ..layers import GRU, LRU, LSTM, RNN, MinGRU, MinLSTM, Trace
from ..layers._params import (IncompatibleKeys, NamedParameters, TooLargeForMemory, assign_params, converted_copy,
                              load_params)
from ..layers.init import apply_init
from ..layers.jordan import JordanRNN, one_hot
from ..layers.leaky import LeakyRNN
from ..layers.selfattention import SelfAttentionModel

CELL_CLASSES = {"rnn": RNN, "lstm": LSTM, "gru": GRU, "leaky": LeakyRNN, "mingru": MinGRU, "minlstm": MinLSTM,
                "lru": LRU}


class WeightsDiverged(UserError):
    """Numbers computed from the weights are NaN or Inf in the model's dtype (an overflow: a finite
    1e39 is Inf in float32): the weights have diverged, in training (the trainer reports it as
    :class:`~rnnlab.train.TrainingDiverged`) or in a checkpoint saved before it showed. ``what`` names
    the numbers; ``step``, where the caller knows it, the updates the weights had (:meth:`at_step`)."""

    def __init__(self, what: str, dtype: Any, step: int | None = None) -> None:
        self.what, self.dtype, self.step = what, np.dtype(dtype), step
        if step == 0:  # untrained: no learning rate to blame
            super().__init__(f"{what} went beyond {self.dtype.name}'s range with the initial weights (their scale "
                             "is too large for this sequence)")
            return
        at = "" if step is None else f" with the weights of step {step}"
        super().__init__(f"{what} went beyond {self.dtype.name}'s range{at}: the weights diverged (train with "
                         "a smaller learning_rate or clip_norm)")

    def at_step(self, step: int) -> "WeightsDiverged":
        """The same error, saying which step's weights it was."""
        return WeightsDiverged(self.what, self.dtype, step)


def check_finite(what: str, array: np.ndarray) -> None:
    """WeightsDiverged naming ``what`` unless every element of ``array`` is finite."""
    if not np.isfinite(array).all():
        raise WeightsDiverged(what, array.dtype)


class DivergenceChecks:
    """What every trained model's ``backward`` shares: the loss's gradient is cast to the model's
    dtype and the gradients of :meth:`parameters` come back finite, or :class:`WeightsDiverged`
    says which numbers overflowed (the layers' own checks would raise a bare ValueError about their
    arguments, which a diverged model's numbers are not). The class's own pass is ``_backward``.

    ``check_gradients=False`` (the lab's and ``bptt``'s view of BPTT): gradients that explode
    through time to Inf are what it shows, not an error; only what the layers would refuse as
    their input (the loss's gradient, dL/dy) is checked."""

    dtype: np.dtype

    def backward(self, trace: Trace, d_out: np.ndarray, truncate: int | None = None, *,
                 check_gradients: bool = True) -> dict[str, np.ndarray]:
        d_out = np.asarray(d_out)
        if d_out.dtype.kind == "f":  # anything else: the layer's check names it
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported just below
                d_out = d_out.astype(self.dtype)
            check_finite("the loss's gradient dL/d(outputs)", d_out)
        with np.errstate(over="ignore", invalid="ignore"):
            grads = self._backward(trace, d_out, truncate)
        for name in self.parameters() if check_gradients else ():
            check_finite(f"the gradient of {name}", grads[name])
        return grads


def make_model(model_spec, input_size: int, output_size: int, seed: int, max_len: int):
    """The network a :class:`~rnnlab.spec.ModelSpec` describes, with a readout of ``output_size``.

    ``cell = "selfattention"``: an :class:`AttentionModel` (a ``SelfAttentionModel`` with the
    divergence checks) ``(input_size, output_size, d_model=hidden_size,
    num_heads, num_layers, d_ff (0: 2 x hidden_size), causal=not bidirectional, max_len, dtype, seed)``;
    ``max_len`` is the task's sequence length T (the positional encoding covers steps 0..T-1, and a
    longer sequence is refused naming both lengths). ``cell = "jordan"``: a :class:`JordanModel`
    (the readout is inside its recurrence). Every other cell: a :class:`SequenceModel`
    (``max_len`` unused: a recurrence takes any length).
    """
    m = model_spec
    try:
        if m.cell == "jordan":
            return JordanModel(m, input_size, output_size, seed=seed)
        if m.attention:
            return AttentionModel(input_size, output_size, d_model=m.hidden_size, num_heads=m.num_heads,
                                  num_layers=m.num_layers, d_ff=m.feed_forward_size,
                                  causal=not m.bidirectional, max_len=max_len, dtype=m.dtype, seed=seed)
        return SequenceModel(m, input_size, output_size, seed=seed)
    except TooLargeForMemory as exc:  # what the spec's estimate let through and a layer refuses
        raise SpecError("model", str(exc)) from exc


class SequenceModel(NamedParameters, DivergenceChecks):
    """A recurrent network with a linear readout, built from a :class:`~rnnlab.spec.ModelSpec`."""

    def __init__(self, model_spec, input_size: int, output_size: int, seed: int) -> None:
        m = model_spec
        kwargs: dict[str, Any] = dict(num_layers=m.num_layers, bidirectional=m.bidirectional, dtype=m.dtype, seed=seed)
        if m.cell != "lru":  # the LRU has no biases (the spec refuses bias = false for it)
            kwargs["bias"] = m.bias
        if m.cell == "rnn":
            kwargs["nonlinearity"] = m.nonlinearity
        if m.device != "cpu":  # raises a UserError naming why when the GPU cannot be used
            kwargs["device"] = m.device
        if m.cell in ("mingru", "minlstm", "lru"):  # how their linear recurrence is evaluated
            kwargs["method"] = m.scan
        if m.cell == "leaky":
            kwargs["time_constants"] = (m.tau_min, m.tau_max)
            kwargs["learn_time_constants"] = m.learn_tau
        self.cell = m.cell
        self.rnn = CELL_CLASSES[m.cell](input_size, m.hidden_size, **kwargs)
        apply_init(self.rnn, m.init, m.forget_bias, seed=[seed, 2])  # its own seed stream, as the readout's
        self.input_size, self.output_size = input_size, output_size
        self.dtype = self.rnn.dtype
        features = self.features
        # torch.nn.Linear's init: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)); its own seed stream
        rng = np.random.default_rng([seed, 1])
        bound = 1.0 / math.sqrt(features)
        self.readout = {
            "readout.weight": rng.uniform(-bound, bound, (output_size, features)).astype(self.dtype),
            "readout.bias": rng.uniform(-bound, bound, output_size).astype(self.dtype),
        }

    # ------------------------------------------------------------------ parameters
    @property
    def frozen(self) -> tuple[str, ...]:
        """Names of parameters the trainer must not update (the leaky cell's fixed time constants)."""
        return tuple(getattr(self.rnn, "frozen", ()))

    def parameters(self) -> dict[str, np.ndarray]:
        """Every live trainable parameter array by name (optimizers update them in place); leaves out
        :attr:`frozen` ones."""
        frozen = set(self.frozen)
        return {**{k: v for k, v in self.rnn.parameters().items() if k not in frozen}, **self.readout}

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter, frozen ones included."""
        return {name: value.copy() for name, value in {**self.rnn.parameters(), **self.readout}.items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray], strict: bool = True) -> IncompatibleKeys:
        """Load every parameter (ValueError naming a missing, extra, misshapen or non-finite key; nothing
        changes on error). A frozen parameter missing from ``state`` keeps its current value, and with
        ``strict=False`` any missing one does (a key of none is ignored). Values are copied into the live
        arrays, as the layers do; returns torch's ``(missing_keys, unexpected_keys)``."""
        current = {**self.rnn.parameters(), **self.readout}
        if isinstance(state, Mapping):  # anything else load_params refuses, naming it
            state = {**{key: current[key] for key in self.frozen}, **state}
        rnn_shapes = self.rnn._param_shapes()
        O = self.output_size
        shapes = {**rnn_shapes, "readout.weight": (O, self.features), "readout.bias": (O,)}
        loaded, keys = load_params(shapes, state, self.dtype, strict, current)  # all validated: nothing below fails
        assign_params(self.rnn._params, {key: loaded[key] for key in rnn_shapes})
        assign_params(self.readout, {key: loaded[key] for key in self.readout})
        return keys

    @property
    def num_parameters(self) -> int:
        """Every parameter's element count, frozen ones included."""
        return sum(p.size for p in self.state_dict().values())

    @property
    def features(self) -> int:
        """Width of the recurrent layer's output y_t, what the readout reads: D*H (LRU: the input's I)."""
        return getattr(self.rnn, "output_size", self.rnn.hidden_size * self.rnn.num_directions)

    @property
    def state_dtype(self) -> np.dtype:
        """dtype of the recurrent state: the model's dtype, or the matching complex dtype for the LRU."""
        return np.dtype(getattr(self.rnn, "state_dtype", self.dtype))

    def zero_state(self, batch: int):
        """The zero initial state for ``batch`` sequences: h (L*D, B, H), (h, c) for an LSTM; complex for the LRU."""
        shape = (self.rnn.num_layers * self.rnn.num_directions, batch, self.rnn.hidden_size)
        h = np.zeros(shape, self.state_dtype)
        return (h, np.zeros_like(h)) if self.cell == "lstm" else h

    # ------------------------------------------------------------------ passes
    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any, Trace]:
        """x (T, B, I) -> (outputs (T, B, O) float64, final state, trace)."""
        y, state_n, trace = self.rnn.forward(converted_copy("input", x, self.dtype), state)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is caught by the trainer
            out = y @ self.readout["readout.weight"].T + self.readout["readout.bias"]
        trace._readout_input = y  # what backward's readout gradient needs
        return out.astype(np.float64), state_n, trace

    def backward(self, trace: Trace, d_out: np.ndarray, truncate: int | None = None, *,
                 check_gradients: bool = True) -> dict[str, np.ndarray]:
        """Gradients of every parameter (and ``input``, ``h0``, ``c0``) given dL/d(outputs);
        :class:`WeightsDiverged` where they overflow the model's dtype (see :class:`DivergenceChecks`).

        ``h0`` is complex for the LRU (dL/dRe + 1j dL/dIm); every parameter gradient is real."""
        return DivergenceChecks.backward(self, trace, d_out, truncate, check_gradients=check_gradients)

    def _backward(self, trace: Trace, d_out: np.ndarray, truncate: int | None) -> dict[str, np.ndarray]:
        y = trace._readout_input
        T, B, O = d_out.shape
        W = self.readout["readout.weight"]
        flat_d = d_out.reshape(T * B, O)
        dy = d_out @ W
        check_finite("the gradient dL/dy of the recurrent layer's output", dy)
        grads = self.rnn.backward(trace, dy, None, truncate=truncate or None)
        grads["readout.weight"] = flat_d.T @ y.reshape(T * B, -1)
        grads["readout.bias"] = flat_d.sum(axis=0)
        return grads

    def step_outputs(self, x_t: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """One step for sampling: x_t (B, I) -> (outputs (B, O), new state)."""
        out, state_n, _ = self.forward(x_t[None], state)
        return out[0], state_n


class JordanModel(NamedParameters, DivergenceChecks):
    """``cell = "jordan"``: a :class:`~rnnlab.layers.jordan.JordanRNN` (its readout, whose output
    feeds back, is part of the recurrence), with :class:`SequenceModel`'s interface.

    Its state is what the next step reads back, f (B, O) (zeros to start). ``forward(x, state)``
    runs free (its own previous output, or its softmax for ``model.feedback = "softmax"``, feeds
    back); ``forward(x, state, teacher=(y, mask))`` runs under teacher forcing: step t reads the
    previous step's TARGET (class ids as one-hot, or values; zeros where the mask is off). A
    teacher-forced trace's backward is per step (the targets are constants: no BPTT); a free
    one's is full BPTT through the fed-back outputs (``truncate`` is refused: the spec refuses
    ``train.truncate`` for this cell).
    """

    def __init__(self, model_spec, input_size: int, output_size: int, seed: int) -> None:
        m = model_spec
        self.cell = "jordan"
        self.net = JordanRNN(input_size, m.hidden_size, output_size, bias=m.bias, feedback=m.feedback,
                             dtype=m.dtype, seed=seed)
        self.rnn = self.net  # what generic code reads sizes and dtype from
        self.input_size, self.output_size = input_size, output_size
        self.dtype = self.net.dtype
        self.state_dtype = self.dtype
        self.frozen: tuple[str, ...] = ()

    @property
    def readout(self) -> dict[str, np.ndarray]:
        """The live readout arrays (y_t = W_out h_t + b_out), as :class:`SequenceModel`'s."""
        params = self.net.parameters()
        return {"readout.weight": params["readout.weight"], "readout.bias": params["readout.bias"]}

    @property
    def features(self) -> int:
        return self.net.hidden_size

    def parameters(self) -> dict[str, np.ndarray]:
        """Every live parameter array by name (optimizers update them in place)."""
        return self.net.parameters()

    def state_dict(self) -> dict[str, np.ndarray]:
        return self.net.state_dict()

    def load_state_dict(self, state: Mapping[str, np.ndarray], strict: bool = True) -> IncompatibleKeys:
        """Load every parameter (ValueError naming a missing, extra or misshapen key), as
        :meth:`JordanRNN.load_state_dict <rnnlab.layers.jordan.JordanRNN.load_state_dict>` does."""
        return self.net.load_state_dict(state, strict)

    @property
    def num_parameters(self) -> int:
        return self.net.num_parameters

    def zero_state(self, batch: int) -> np.ndarray:
        """Nothing fed back yet: f = zeros (B, O)."""
        return np.zeros((batch, self.output_size), self.dtype)

    def teacher_signal(self, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """What teacher forcing feeds back from a batch's targets: (T, B, O), one-hot for class ids
        (T, B), the values for (T, B, O); zeros at steps without a target (mask off)."""
        y = np.asarray(y)
        signal = one_hot(y, self.output_size, self.dtype) if y.ndim == 2 else y.astype(self.dtype)
        return np.ascontiguousarray(signal * np.asarray(mask, self.dtype)[..., None])

    def forward(self, x: np.ndarray, state: Any = None, teacher: tuple | None = None
                ) -> tuple[np.ndarray, np.ndarray, Trace]:
        """x (T, B, I) -> (outputs (T, B, O) float64, f_n (B, O), trace); ``teacher = (y, mask)``
        for teacher forcing, None to run free."""
        signal = None if teacher is None else self.teacher_signal(*teacher)
        y0 = None if state is None else np.asarray(state, self.dtype)
        out, f_n, trace = self.net.forward(converted_copy("input", x, self.dtype), y0, signal)
        trace._readout_input = trace.get("h")  # what the readout read (the Lab recomputes outputs from it)
        return out.astype(np.float64), f_n, trace

    def backward(self, trace: Trace, d_out: np.ndarray, truncate: int | None = None, *,
                 check_gradients: bool = True) -> dict[str, np.ndarray]:
        """Gradients of every parameter (and ``input``, ``y0``) given dL/d(outputs);
        :class:`WeightsDiverged` where they overflow the model's dtype (see :class:`DivergenceChecks`)."""
        if truncate:
            raise ValueError("the jordan cell takes no truncate: teacher forcing needs no BPTT, and running "
                             "free it backpropagates through every fed-back output")
        return DivergenceChecks.backward(self, trace, d_out, truncate, check_gradients=check_gradients)

    def _backward(self, trace: Trace, d_out: np.ndarray, truncate: int | None) -> dict[str, np.ndarray]:
        return self.net.backward(trace, d_out)

    def step_outputs(self, x_t: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """One free-running step: x_t (B, I) -> (outputs (B, O), what the next step reads back)."""
        out, f_n, _ = self.forward(x_t[None], state)
        return out[0], f_n


class AttentionModel(DivergenceChecks, SelfAttentionModel):
    """``cell = "selfattention"``: a :class:`~rnnlab.layers.selfattention.SelfAttentionModel` whose
    ``backward`` reports overflowed numbers as :class:`WeightsDiverged`, as the other models do."""

    def _backward(self, trace, d_out, truncate):
        return SelfAttentionModel.backward(self, trace, d_out, truncate)
