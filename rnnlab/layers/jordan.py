"""Jordan network: output-to-hidden recurrence, trained with teacher forcing.

    h_t = tanh(W_ih x_t + b_ih + W_yh f_{t-1} + b_yh)      (B, H)
    y_t = W_out h_t + b_out                                (B, O), the network's output (logits)

The previous OUTPUT feeds back, not the hidden state (Jordan 1986; Elman's nets feed h back).
What is fed back, f_{t-1}, depends on how the network is run:

- **Teacher forcing** (training): f_{t-1} is the previous TARGET, given (``teacher``: the targets
  (T, B, O), values or one-hot classes; step t reads ``teacher[t-1]``, step 0 reads ``y0``). Every
  step's input is then known in advance, nothing computed at one step reaches the next, and the
  exact gradient of the loss needs no backpropagation through time: each step is a two-layer
  feed-forward net of (x_t, target_{t-1}). That is why Jordan nets were cheap to train.
- **Running free** (evaluation, generation): f_{t-1} is the model's own previous output, y_{t-1}
  (``feedback="values"``) or softmax(y_{t-1}) (``feedback="softmax"``, for classes, so that what is
  fed back lives where the one-hot targets do). Its gradient, if asked for, is full BPTT through
  the fed-back outputs.

Parameters: ``weight_ih_l0`` (H, I), ``weight_yh_l0`` (H, O), ``bias_ih_l0``, ``bias_yh_l0`` (H,)
(unless ``bias=False``), and the readout inside the recurrence, ``readout.weight`` (O, H),
``readout.bias`` (O,) (``torch.nn.Linear``'s names). Init: uniform(-1/sqrt(H), 1/sqrt(H)) for all.

Trace (mode ``"Jordan"``, one layer and direction): ``"h"`` (T, B, H), ``"y"`` (T, B, O) the
outputs, ``"f"`` (T, B, O) what each step read back (the previous target or output); after
backward ``"dh"`` (T, B, H), dL/dh_t.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import kernels
from ..kernels.jordan import jordan_backward, jordan_forward_free, jordan_forward_teacher
from ._params import (CallsForward, NamedParameters, array_shape, assign_params, check_bool, check_param_memory,
                      check_params, check_positive_int, check_seed, draw_uniform, foreign_trace, is_one_of,
                      own_function, parse_dtype, refused_choice)
from .recurrent import RecurrentLayer
from .trace import Trace

__all__ = ["JordanRNN", "FEEDBACKS", "one_hot"]

#: What a free-running Jordan net feeds back: its output as it is, or its softmax (classes).
FEEDBACKS = ("values", "softmax")


def one_hot(classes: np.ndarray, num_classes: int, dtype="float32") -> np.ndarray:
    """Class ids (T, B) -> one-hot (T, B, num_classes): the teacher signal of a classification task."""
    classes = np.asarray(classes)
    if classes.dtype.kind not in "iu" or classes.size and not (0 <= classes.min() and classes.max() < num_classes):
        raise ValueError(f"classes must be integers in 0..{num_classes - 1}")
    return np.eye(num_classes, dtype=dtype)[classes]


class JordanRNN(NamedParameters, CallsForward):
    """A Jordan network (see the module docstring): ``forward(x, y0=None, teacher=None)`` and
    ``backward(trace, d_out)``; parameters as a state dict.

    ``JordanRNN(input_size, hidden_size, output_size, bias=True, *, feedback="values",
    dtype="float32", seed=None)``: the arguments after ``bias`` are keyword-only.
    """

    mode = "Jordan"
    record_names = ("h", "y", "f")

    @property
    def feedback(self) -> str:
        """What each step reads back, ``"values"`` or ``"softmax"``; may be switched between forwards
        (anything else is a ValueError when set, as an RNN's nonlinearity)."""
        return self._feedback

    @feedback.setter
    def feedback(self, value: str) -> None:
        if not is_one_of(value, FEEDBACKS):
            raise refused_choice("feedback", value, FEEDBACKS)
        self._feedback = value

    def __init__(self, input_size: int, hidden_size: int, output_size: int, bias: bool = True, *,
                 feedback: str = "values", dtype: str = "float32", seed: int | None = None) -> None:
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.output_size = check_positive_int("output_size", output_size)
        self.bias = check_bool("bias", bias)
        self.feedback = feedback
        self.dtype = parse_dtype(dtype)  # None: float32, the default, as every layer but the ESN
        self.num_layers, self.num_directions = 1, 1
        self._params: dict[str, np.ndarray] = {}
        check_param_memory(repr(self), self._param_shapes().values(), self.dtype, "its sizes")
        self.reset_parameters(seed)  # sets self.seed

    # ------------------------------------------------------------------ parameters
    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        H, I, O = self.hidden_size, self.input_size, self.output_size
        shapes = {"weight_ih_l0": (H, I), "weight_yh_l0": (H, O)}
        if self.bias:
            shapes.update({"bias_ih_l0": (H,), "bias_yh_l0": (H,)})
        shapes.update({"readout.weight": (O, H), "readout.bias": (O,)})
        return shapes

    def reset_parameters(self, seed: int | None = None) -> None:
        """Every parameter from uniform(-1/sqrt(H), 1/sqrt(H)); reproducible from ``seed`` (recorded as
        :attr:`seed`). Writes into the arrays :meth:`parameters` handed out."""
        self.seed = seed = check_seed(seed)
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.hidden_size)
        assign_params(self._params, {name: draw_uniform(rng, -bound, bound, shape, self.dtype)
                                     for name, shape in self._param_shapes().items()})

    # borrowed, each named as JordanRNN's own (a mistyped keyword says "JordanRNN.load_state_dict()")
    state_dict = own_function(RecurrentLayer.state_dict, "JordanRNN.state_dict")
    load_state_dict = own_function(RecurrentLayer.load_state_dict, "JordanRNN.load_state_dict")
    parameters = own_function(RecurrentLayer.parameters, "JordanRNN.parameters")
    num_parameters = RecurrentLayer.num_parameters
    _check_array = RecurrentLayer._check_array

    def __repr__(self) -> str:
        extra = "" if self.bias else ", bias=False"
        extra += "" if self.feedback == "values" else ", feedback='softmax'"
        extra += "" if self.dtype == np.float32 else f", dtype='{self.dtype.name}'"
        return f"JordanRNN({self.input_size}, {self.hidden_size}, {self.output_size}{extra})"

    def _weights(self, params):
        H = self.hidden_size
        b = params["bias_ih_l0"] + params["bias_yh_l0"] if self.bias else np.zeros(H, self.dtype)
        return params["weight_ih_l0"], params["weight_yh_l0"], b, params["readout.weight"], params["readout.bias"]

    # ------------------------------------------------------------------ passes
    def forward(self, x: Any, y0: Any = None, teacher: Any = None) -> tuple[np.ndarray, np.ndarray, Trace]:
        """Run over x (T, B, I). ``y0`` (B, O): what step 0 reads back (None: zeros). ``teacher``
        (T, B, O): teacher forcing, step t reads ``teacher[t-1]``; None: running free.

        Returns ``(outputs (T, B, O), f_n (B, O), trace)``: f_n is what a next step would read back
        (the last target under teacher forcing, else the last output or its softmax).
        """
        shape = array_shape("input", x)
        if len(shape) != 3 or shape[0] < 1 or shape[1] < 1:
            raise ValueError(f"input must have shape (T, B, {self.input_size}) with T, B >= 1, got {shape}")
        T, B, _ = shape
        O = self.output_size
        x = self._check_array("input", x, (T, B, self.input_size)).copy()
        y0 = np.zeros((B, O), self.dtype) if y0 is None else self._check_array("y0", y0, (B, O))
        if teacher is not None:
            # the shape first: class ids (T, B) are the usual mistake, and their int dtype is not the problem
            teacher_shape = array_shape("teacher", teacher)
            if teacher_shape != (T, B, O):
                raise ValueError(f"teacher has shape {teacher_shape}, expected (T, B, O) = {(T, B, O)}: the targets "
                                 f"fed back, one-hot for classes (rnnlab.layers.jordan.one_hot(ids, {O}))")
            teacher = self._check_array("teacher", teacher, (T, B, O))
        # the kernels read the trace's own (checked, C-contiguous) copies of the weights
        check_params(self._params, self._param_shapes(), self.dtype)
        params = {k: v.copy() for k, v in self._params.items()}
        w_ih, w_yh, b, w_out, b_out = self._weights(params)
        n_threads = kernels.kernel_threads()
        with kernels.blas_single_threaded():
            if teacher is not None:
                fs = np.concatenate([y0[None], teacher])  # fs[t] = f_{t-1}
                hs, ys = jordan_forward_teacher(x, np.ascontiguousarray(fs[:T]), w_ih, w_yh, b, w_out, b_out,
                                                n_threads)
            else:
                hs, ys, fs = jordan_forward_free(x, w_ih, w_yh, b, w_out, b_out, y0,
                                                 self.feedback == "softmax", n_threads)
        trace = Trace(self.mode, 1, 1, self.hidden_size, T, B, self.dtype, _params=params, _owner=self,
                      options={"feedback": self.feedback})
        trace._inputs[(0, 0)] = x
        trace._saved[(0, 0)] = (fs, hs, teacher is None)
        for name, rec in (("h", hs), ("y", ys), ("f", fs[:T])):
            trace._set_record(0, 0, name, rec)
        trace.teacher_forced = teacher is not None
        return ys.copy(), fs[T].copy(), trace  # the trace's "y" stays what backward differentiates

    def backward(self, trace: Trace, d_out: Any = None) -> dict[str, np.ndarray]:
        """Gradient of ``sum(outputs * d_out)`` for every parameter, ``"input"`` and ``"y0"``; ``d_out``
        (T, B, O) may be None (zero), as ``dy`` of the other layers.

        A teacher-forced trace: the targets fed back are constants, so the steps are independent
        (no BPTT). A free-running trace: full BPTT through the fed-back outputs. Fills
        ``trace["dh"]``.
        """
        if not isinstance(trace, Trace) or trace._owner is not self:
            raise foreign_trace(self, trace)
        T, B = trace.steps, trace.batch
        shape = (T, B, self.output_size)
        d_out = np.zeros(shape, self.dtype) if d_out is None else self._check_array("d_out", d_out, shape)
        fs, hs, free = trace._saved[(0, 0)]
        w_ih, w_yh, _, w_out, _ = self._weights(trace._params)
        with kernels.blas_single_threaded():
            dx, dw_ih, dw_yh, db, dw_out, db_out, df, d_y = jordan_backward(
                trace._inputs[(0, 0)], fs, hs, w_ih, w_yh, w_out, d_out, free, trace.options["feedback"] == "softmax",
                kernels.kernel_threads())
        trace._set_record(0, 0, "dh", (d_y.reshape(T * B, -1) @ w_out).reshape(T, B, self.hidden_size))
        grads = {"weight_ih_l0": dw_ih, "weight_yh_l0": dw_yh}
        if self.bias:
            grads["bias_ih_l0"], grads["bias_yh_l0"] = db, db.copy()
        grads["readout.weight"], grads["readout.bias"] = dw_out, db_out
        grads["input"] = dx
        grads["y0"] = df[0]
        return grads
