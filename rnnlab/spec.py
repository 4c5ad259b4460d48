"""Experiment specs: a TOML file (or a shipped preset) that says everything a run needs.

A spec has three tables besides ``name``, ``description`` and ``seed``::

    [task]   kind = "adding", plus the task's own fields (see ``rnnlab.data.task_fields``)
    [model]  cell, hidden_size, num_layers, bidirectional, nonlinearity, bias, dtype, init, forget_bias, scan,
             device, num_heads, d_ff (the selfattention cell's), tau_min, tau_max, learn_tau (the leaky cell's),
             feedback (the jordan cell's)
    [train]  steps, batch_size, optimizer, learning_rate, ..., clip_norm, clip_value, truncate

Every field is validated on load; an error is a :class:`~rnnlab.errors.SpecError` naming the
dotted field and the allowed values. ``Spec.to_toml()`` writes the *resolved* spec (every default
filled in but the fields only another cell or optimizer reads, paths absolute but those of rnnlab's
own sample_data/, written by name), which is what a run directory keeps so the run can be reproduced.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import sys
import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import notices
from .fsio import stat_or_none
from .data import check_task_options, make_task, task_fields
from .data import files as data_files
from .data.files import resolve_path
from .errors import (TOO_LARGE_FOR_A_FLOAT, DataError, SpecError, abbreviated, closest_name, meant_choice,
                     number_text, range_words, special_file, whole_number)
from .layers._params import physical_memory
from .layers.init import INITS
from .layers.minimal import METHODS

PRESET_PACKAGE = "rnnlab.presets"
DEFAULT_PRESET = "hello"
CELLS = ("rnn", "lstm", "gru", "mingru", "minlstm", "lru", "leaky", "jordan", "selfattention")
#: Cells that are not recurrent: no state carried from step to step, no W_hh, no step Jacobian.
ATTENTION_CELLS = ("selfattention",)
#: Cells whose recurrence is linear in the state (gates from the input only): no W_hh, a ``scan``.
LINEAR_CELLS = ("mingru", "minlstm", "lru")
#: Cells whose biases are always there: ``bias = false`` is refused for them.
ALWAYS_BIASED = ("lru", "selfattention")
DEVICES = ("cpu", "cuda")
GPU_CELLS = ("rnn", "lstm", "gru")  # the cells with numba.cuda twins (rnnlab.kernels.cuda)
OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adam")
#: The ``[train]`` settings each optimizer reads; another's is refused where it is not its default.
OPTIMIZER_SETTINGS = {"sgd": ("momentum",), "adagrad": ("eps",), "rmsprop": ("alpha", "eps"),
                      "adam": ("beta1", "beta2", "eps")}
#: The [model] fields only some cells read (the others' must stay at the default, and a resolved
#: spec leaves them out). The others are written for every cell (init and bias are refused
#: where a cell has nothing to initialise or no bias to turn off).
CELL_FIELDS = {"nonlinearity": ("rnn",), "forget_bias": ("lstm",), "scan": LINEAR_CELLS, "device": GPU_CELLS,
               "num_heads": ATTENTION_CELLS, "d_ff": ATTENTION_CELLS, "tau_min": ("leaky",),
               "tau_max": ("leaky",), "learn_tau": ("leaky",), "feedback": ("jordan",)}
#: The most training steps a spec asks for; eval_every and checkpoint_every count steps too.
STEPS_MAX = 100_000_000
#: The longest truncation: above any task's sequence length (100 020 steps at most), where a cut never
#: happens (full BPTT), and far below what the kernels' 64-bit integers hold.
TRUNCATE_MAX = 1_000_000
#: The largest seed: numpy's generators take any, this one still fits every 64-bit integer on the way.
SEED_MAX = 2**63 - 1


class DataFileError(SpecError):
    """The data file a spec's task names (``path``, resolved) cannot be used: the spec may be sound, as a
    run directory's spec.toml is after its data file was moved or deleted. ``reason`` is the loader's."""

    def __init__(self, field: str, message: str, path: Path, reason: str) -> None:
        super().__init__(field, message)
        self.path = path
        self.reason = reason

    @property
    def missing(self) -> bool:
        """Whether nothing is at the path. One the OS will not look at (a directory above it that may
        not be searched) is there, unreadable: its reason is what to say (Path.exists raised)."""
        try:
            return stat_or_none(self.path) is None
        except DataError:
            return False


@dataclass(frozen=True)
class Rule:
    """How one field is checked: its type, and either allowed choices or a numeric range."""

    kind: type
    help: str
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: the value must be strictly greater than ``low``
    high_open: bool = False

    def check(self, name: str, value: Any) -> Any:
        if isinstance(value, np.generic):  # a sweep's np.linspace value: np.float64 is a float, but
            value = value.item()  # spec.toml would get its repr, no TOML
        given = value  # as a refusal quotes it: learning_rate = -1 is "got -1", not the float it is read as
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > sys.float_info.max:  # float() would raise OverflowError (309 digits and more)
                raise SpecError(name, f"must be a finite number, got {TOO_LARGE_FOR_A_FLOAT}")
            value = float(value)
        if self.kind is int:
            value = whole_number(value)
        if isinstance(value, bool) != (self.kind is bool) or not isinstance(value, self.kind):
            raise SpecError(name, f"expected {_type_name(self.kind)}, got {_show(value)}")
        if self.choices is not None and value not in self.choices:
            close = meant_choice(value, self.choices)  # "LSTM": "lstm"; "GPU" no guess ('cpu' would be wrong)
            hint = f"did you mean {close!r}? " if close else ""
            raise SpecError(name, f"unknown value {_show(value)} ({hint}allowed: {', '.join(self.choices)})")
        if self.kind is float and not math.isfinite(value):
            raise SpecError(name, f"must be a finite number, got {value}")
        if (self.low is not None and (value < self.low or (self.low_open and value == self.low))) \
                or (self.high is not None and (value > self.high or (self.high_open and value == self.high))):
            got = number_text(given)  # as its bounds are written: "at most 1e+06, got 1e+07", not "10000000.0"
            raise SpecError(name, f"must be {self.range_text()}, got {got}", refused=got)
        return value

    def range_text(self) -> str:
        return range_words(self.low, self.high, self.low_open, self.high_open)


def _type_name(kind: type) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[kind]


def _show(value: Any) -> str:
    """A TOML value as its writer spelt it, near enough: "x", true, 1.5, ["a", true], 1979-05-27."""
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (str, bool, list, dict)):
        return json.dumps(value, default=str)
    return repr(value)


# ---------------------------------------------------------------------------- the tables
@dataclass(frozen=True)
class ModelSpec:
    """The network: ``rnnlab.RNN``/``LSTM``/``GRU``/``MinGRU``/``MinLSTM``/``LRU`` arguments plus a
    linear readout; or, for ``cell = "selfattention"``, a Transformer encoder
    (:class:`rnnlab.layers.selfattention.SelfAttentionModel`) with ``d_model = hidden_size``,
    ``num_layers`` blocks of ``num_heads`` heads, a feed-forward width ``d_ff`` (0: 2 x hidden_size)
    and a causal mask unless ``bidirectional``. ``cell = "leaky"`` is
    :class:`rnnlab.layers.leaky.LeakyRNN`: units with time constants spread from ``tau_min`` to
    ``tau_max`` steps, learned unless ``learn_tau = false``. ``cell = "jordan"`` is a
    :class:`rnnlab.train.model.JordanModel`: one layer whose previous output (``feedback =
    "values"``, or its ``"softmax"`` for classes) feeds back instead of its hidden state."""

    cell: str = "lstm"
    hidden_size: int = 32
    num_layers: int = 1
    bidirectional: bool = False
    nonlinearity: str = "tanh"
    bias: bool = True
    dtype: str = "float32"
    init: str = "uniform"
    forget_bias: float = 0.0
    scan: str = "sequential"
    device: str = "cpu"
    num_heads: int = 4
    d_ff: int = 0
    tau_min: float = 1.25
    tau_max: float = 50.0
    learn_tau: bool = True
    feedback: str = "values"

    @property
    def attention(self) -> bool:
        """True for the self-attention cell (no recurrence)."""
        return self.cell in ATTENTION_CELLS

    @property
    def feed_forward_size(self) -> int:
        """The selfattention block's feed-forward width: ``d_ff``, or 2 x hidden_size when it is 0."""
        return self.d_ff or 2 * self.hidden_size

    def parameter_count(self, input_size: int, output_size: int) -> int:
        """About how many numbers the model's parameters hold, readout included (the layers' own
        shapes, biases counted whether or not ``bias`` is off): what training keeps several
        copies of (gradients, the optimizer's state)."""
        H, out = self.hidden_size, output_size
        if self.attention:  # input projection; per block q, k, v, out (d x d), the two feed-forward layers
            d, f = H, self.feed_forward_size
            return input_size * d + self.num_layers * (4 * d * d + 2 * d * f + 9 * d + f) + d * out + out
        if self.cell == "lru":  # complex B (H x I) and C (I x H) per layer, each layer as wide as the input
            return self.num_layers * (3 * H + 4 * H * input_size + input_size) + input_size * out + out
        if self.cell == "jordan":  # the output feeds back: W_yh (H x O) where the others have W_hh
            return H * (input_size + out) + 2 * H + out * H + out
        gates = {"rnn": 1, "lstm": 4, "gru": 3, "leaky": 1, "mingru": 2, "minlstm": 3}[self.cell]
        recurrent = H if self.cell not in ("mingru", "minlstm") else 0  # the minimal cells have no W_hh
        directions = 2 if self.bidirectional else 1
        count = 0
        for layer in range(self.num_layers):
            width = input_size if layer == 0 else H * directions
            count += directions * (gates * H * (width + recurrent) + 2 * gates * H + H)
        return count + H * directions * out + out


MODEL_RULES = {
    "cell": Rule(str, "recurrent cell: rnn (Elman), lstm, gru, leaky (Elman units with per-unit time "
                      "constants: h_t = (1 - a) h_{t-1} + a tanh(...)), or a recurrence linear in its state "
                      "(gates from the input only): mingru, minlstm, lru; or selfattention, a Transformer "
                      "encoder (no recurrence: every step attends to the others)", choices=CELLS),
    "hidden_size": Rule(int, "units per layer and direction (selfattention: d_model)", low=1, high=8192),
    "num_layers": Rule(int, "stacked recurrent layers (selfattention: encoder blocks)", low=1, high=16),
    "bidirectional": Rule(bool, "add a reverse-time direction per layer; selfattention: true drops the causal "
                                "mask (every step sees the whole sequence), false keeps it (steps <= t only)"),
    "nonlinearity": Rule(str, "rnn cell only: tanh or relu", choices=("tanh", "relu")),
    "bias": Rule(bool, "use bias_ih and bias_hh"),
    "dtype": Rule(str, "floating-point type of weights and kernels", choices=("float32", "float64")),
    "init": Rule(str, "recurrent weights: uniform (torch's), orthogonal, or identity (IRNN: rnn cell)",
                 choices=INITS),
    "forget_bias": Rule(float, "lstm: the forget gate's bias at init (1 is usual; 0 keeps torch's)", low=-10, high=10),
    "scan": Rule(str, "mingru, minlstm, lru: how the linear recurrence is evaluated: sequential (time loop), "
                      "scan (chunked parallel scan) or blelloch (log-depth tree); same numbers", choices=METHODS),
    "device": Rule(str, "where the kernels run: cpu, or cuda (rnn, lstm, gru; needs numba-cuda and an NVIDIA GPU)",
                   choices=DEVICES),
    "num_heads": Rule(int, "selfattention: attention heads per block (hidden_size must be divisible by it)",
                      low=1, high=256),
    "d_ff": Rule(int, "selfattention: width of each block's feed-forward layer (0: 2 x hidden_size)",
                 low=0, high=65_536),
    "tau_min": Rule(float, "leaky: the fastest unit's initial time constant 1/a, in steps (> 1)", low=1, high=1e6,
                    low_open=True),
    "tau_max": Rule(float, "leaky: the slowest unit's initial time constant, in steps (>= tau_min); the units' "
                           "time constants are spread log-uniformly between the two", low=1, high=1e6, low_open=True),
    "learn_tau": Rule(bool, "leaky: learn the time constants (false: they stay as initialised)"),
    "feedback": Rule(str, "jordan: what a free-running step reads back: the previous output (values) or its "
                          "softmax (for classes; teacher forcing feeds back one-hot targets)",
                     choices=("values", "softmax")),
}


@dataclass(frozen=True)
class TrainSpec:
    """Optimisation: steps, batch, optimizer and its settings, clipping, truncation, cadence."""

    steps: int = 500
    batch_size: int = 32
    optimizer: str = "adam"
    learning_rate: float = 0.01
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    alpha: float = 0.99
    eps: float = 1e-8
    clip_norm: float = 5.0
    clip_value: float = 0.0
    truncate: int = 0
    eval_every: int = 100
    eval_batch_size: int = 256
    checkpoint_every: int = 100
    teacher_forcing: bool = False


TRAIN_RULES = {
    "steps": Rule(int, "training steps (one optimizer update each)", low=1, high=STEPS_MAX),
    "batch_size": Rule(int, "sequences per step", low=1, high=65_536),
    "optimizer": Rule(str, "sgd (with momentum), adagrad, rmsprop or adam", choices=OPTIMIZERS),
    "learning_rate": Rule(float, "step size", low=0, high=10, low_open=True),
    "momentum": Rule(float, "sgd momentum", low=0, high=1, high_open=True),
    "beta1": Rule(float, "adam: decay of the first moment", low=0, high=1, high_open=True),
    "beta2": Rule(float, "adam: decay of the second moment", low=0, high=1, high_open=True),
    "alpha": Rule(float, "rmsprop: decay of the squared-gradient average", low=0, high=1, high_open=True),
    "eps": Rule(float, "adagrad/rmsprop/adam: added to the denominator", low=0, high=1, low_open=True),
    "clip_norm": Rule(float, "rescale gradients whose global norm exceeds this (0: off)", low=0),
    "clip_value": Rule(float, "clamp every gradient element to [-v, v] (0: off)", low=0),
    "truncate": Rule(int, "truncated BPTT: cut the gradient every k steps (0: full BPTT)", low=0, high=TRUNCATE_MAX),
    "eval_every": Rule(int, "evaluate on the held-out batch every n steps (0: only at the end)", low=0,
                       high=STEPS_MAX),
    "eval_batch_size": Rule(int, "sequences in the held-out batch", low=1, high=65_536),
    "checkpoint_every": Rule(int, "write a checkpoint every n steps (0: only at the end)", low=0, high=STEPS_MAX),
    "teacher_forcing": Rule(bool, "jordan: feed back the previous target, not the model's own output, while "
                                  "training (evaluation always runs free)"),
}

#: The [train] settings only some optimizers read (OPTIMIZER_SETTINGS), in the table's order.
_OPTIMIZER_ONLY = tuple(name for name in TRAIN_RULES if any(name in names for names in OPTIMIZER_SETTINGS.values()))

TOP_RULES = {
    "name": Rule(str, "a short name for the experiment (it names the run directory: runs/NAME-TIME)"),
    "description": Rule(str, "what the experiment shows"),
    "seed": Rule(int, "seeds the weights and every batch: same seed, same numbers", low=0, high=SEED_MAX),
}


@dataclass(frozen=True)
class Spec:
    """A validated experiment. Build it with :func:`load_spec` or :meth:`Spec.from_mapping`."""

    name: str = "experiment"
    description: str = ""
    seed: int = 0
    task: Mapping[str, Any] = field(default_factory=lambda: {"kind": "hello"})
    model: ModelSpec = ModelSpec()
    train: TrainSpec = TrainSpec()
    source: str = ""  # where it came from (preset name or file path); not written to TOML

    # ------------------------------------------------------------------ building
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "", base_dir: Path | None = None,
                     saved: bool = False) -> "Spec":
        """Validate a parsed TOML document; relative task paths resolve against ``base_dir``.

        ``saved``: a run directory's ``spec.toml``, which an older rnnlab may have written with
        another optimizer's setting changed (ignored then, refused now): put back to its default,
        as the run trained with it, rather than leave the run unreadable."""
        top, model, train, task_table = cls._checked_tables(data, saved)
        options = {k: v for k, v in task_table.items() if k != "kind"}
        try:
            task = make_task(task_table["kind"], options, base_dir)
        except DataError as exc:  # the data file a field names: say which field
            if "path" in options:  # a valid path field (make_task checked it), naming a file that will not do
                raise DataFileError("task.path", str(exc), resolve_path(options["path"], base_dir), str(exc)) \
                    from None
            raise SpecError("task", str(exc)) from None
        if model.dtype == "float32" and (beyond := task.beyond_float32()):
            raise DataFileError("task.path", beyond, resolve_path(options["path"], base_dir), beyond)
        return cls(task={"kind": task.kind, **task.options()}, model=model, train=train, source=source, **top)

    @classmethod
    def check_fields(cls, data: Mapping[str, Any], base_dir: Path | None = None, saved: bool = False) -> None:
        """What :meth:`from_mapping` refuses of a parsed TOML document short of its data file
        (SpecError naming the field): a listing of many runs reads no corpus to check their specs."""
        _, _, _, task_table = cls._checked_tables(data, saved)
        check_task_options(task_table["kind"], {k: v for k, v in task_table.items() if k != "kind"}, base_dir)

    @classmethod
    def short_of_data(cls, data: Mapping[str, Any], base_dir: Path | None = None, saved: bool = False) -> "Spec":
        """The spec :meth:`from_mapping` would give, read short of its data file (SpecError as
        :meth:`check_fields` raises): the task's fields checked and defaulted, but those derived from
        the data (a default of None) left out where the document leaves them out, and ``path`` left
        out. What ``rnnlab runs`` compares with a checkpoint's settings without reading a corpus."""
        from .data import TASKS

        top, model, train, task_table = cls._checked_tables(data, saved)
        kind, options = task_table["kind"], {k: v for k, v in task_table.items() if k != "kind"}
        check_task_options(kind, options, base_dir)  # (the fields against each other too)
        checked = TASKS[kind].checked_options(options, base_dir)
        task = {name: value for name, value in checked.items()
                if name != "path" and (name in options or value is not None)}
        return cls(task={"kind": kind, **task}, model=model, train=train, **top)

    @classmethod
    def _checked_tables(cls, data: Mapping[str, Any], saved: bool) -> tuple[dict, "ModelSpec", "TrainSpec", Mapping]:
        """The top-level fields, [model] and [train] checked, each alone and against each other, and
        the [task] table as given (its kind there)."""
        known = set(TOP_RULES) | {"task", "model", "train"}
        _reject_unknown("", data, known)
        _reject_misplaced(data)
        top = {name: rule.check(name, data[name]) for name, rule in TOP_RULES.items() if name in data}
        if "name" in top:
            _check_name(top["name"])
        model = _table(ModelSpec, MODEL_RULES, "model", data.get("model", {}))
        train = _table(TrainSpec, TRAIN_RULES, "train", data.get("train", {}))
        if model.cell != "rnn" and model.nonlinearity != "tanh":
            raise SpecError("model.nonlinearity", f"only the rnn cell takes a nonlinearity; {model.cell} has its own")
        if model.init == "identity" and model.cell != "rnn":
            raise SpecError("model.init", f"identity (IRNN) is for the rnn cell, not {model.cell}")
        if model.init != "uniform" and model.cell in LINEAR_CELLS:
            raise SpecError("model.init", f"{model.init} initialises recurrent weights W_hh; {model.cell} has none "
                                          "(its gates read the input only): use uniform")
        if model.forget_bias and model.cell == "minlstm":
            raise SpecError("model.forget_bias", "the forget-gate bias is an lstm option; minlstm's f_t keeps "
                                                 "its uniform initialisation")
        if model.forget_bias and model.cell != "lstm":
            raise SpecError("model.forget_bias", f"only the lstm cell has a forget gate, not {model.cell}")
        if model.forget_bias and not model.bias:
            raise SpecError("model.forget_bias", "needs model.bias = true")
        if model.scan != "sequential" and model.cell not in LINEAR_CELLS:
            raise SpecError("model.scan", f"only the linear recurrences ({', '.join(LINEAR_CELLS)}) are evaluated "
                                          f"by a scan; {model.cell} steps through time")
        if model.device != "cpu" and model.cell not in GPU_CELLS:
            raise SpecError("model.device", f"the GPU kernels are {', '.join(GPU_CELLS)}; {model.cell} runs on the cpu")
        if model.cell == "lru" and model.bidirectional:
            raise SpecError("model.bidirectional", "the lru has no reverse direction")
        if model.cell == "lru" and not model.bias:  # (one of ALWAYS_BIASED, with selfattention)
            raise SpecError("model.bias", "the lru has no biases to turn off (its D x_t skip term is always there)")
        _check_attention(model)
        _check_leaky(model)
        _check_jordan(model, train)
        train = _check_optimizer(train, reset=saved)
        smallest = float(np.finfo(model.dtype).smallest_subnormal)
        if train.optimizer != "sgd" and np.asarray(train.eps, model.dtype) == 0:  # 0/0 where a gradient is 0
            raise SpecError("train.eps", f"{number_text(train.eps)} is 0 in {model.dtype} (its smallest is "
                                         f"{smallest:.3g}): a weight whose gradient is 0 would be updated by 0/0")
        if model.attention and train.truncate:
            raise SpecError("train.truncate", "selfattention has no recurrence to truncate (its backward pass is "
                                              "not through time): use 0")
        task_table = data.get("task", {"kind": "hello"})
        if not isinstance(task_table, Mapping):
            raise SpecError("task", "expected a table [task]")
        if "kind" not in task_table:
            raise SpecError("task.kind", "missing: say which task, e.g. kind = \"adding\"")
        return top, model, train, task_table

    def with_overrides(self, overrides: Mapping[str, Any]) -> "Spec":
        """A copy with dotted fields changed (``{"train.steps": 100, "model.cell": "gru"}``), validated.

        Another ``train.optimizer`` puts the settings only the old one read (``momentum`` for sgd to
        adam) back to their defaults, and another ``model.cell`` the fields only the old cell read (a
        leaky cell's ``tau_min``, jordan's ``teacher_forcing``), unless ``overrides`` sets them too:
        they would be refused.
        Another task or cell makes the description say so (``copy-attention with the lru cell instead
        of selfattention``), unless ``overrides`` sets it: the old one described another experiment."""
        data = self.to_mapping()
        for dotted, value in overrides.items():
            table, dot, key = dotted.rpartition(".")
            target = data if not table else data.setdefault(table, {})
            if dot and not table or table and table not in ("task", "model", "train"):  # (".seed" too)
                raise SpecError(dotted, "unknown table (allowed: task, model, train)")
            if not isinstance(target, dict):  # the table itself set to a number too: --set model=3
                raise SpecError(table, f"expected a table [{table}]")
            target[key] = value
        # the fields ``overrides`` gives, dotted ("train.momentum"), whether dotted or in a table
        given = {key for key in overrides if "." in key}
        given |= {f"{table}.{key}" for table in ("task", "model", "train") if isinstance(overrides.get(table), Mapping)
                  for key in overrides[table]}  # (a table set to a number is refused below, as not a table)
        task = data.get("task")
        if isinstance(task, dict) and task.get("kind") != self.task["kind"]:
            # another task starts from its own defaults: the old one's fields (adding's length = 100,
            # hello's text) meant something else there, or nothing; those given here stay
            data["task"] = {key: value for key, value in task.items() if key == "kind" or f"task.{key}" in given}
        # a preset's words, or words made from them ("adding-lstm with the gru cell instead of lstm"):
        # said anew from that preset, every edit since it listed; a description of the user's own
        # says the task or cell changed, and what else changed with it
        origin = _origin_preset(self) if "description" not in overrides and self.description else None
        train = data.get("train")
        if isinstance(train, dict) and train.get("optimizer") != self.train.optimizer:
            kept = OPTIMIZER_SETTINGS.get(train.get("optimizer"), ())  # (an unknown one is refused below)
            for name in OPTIMIZER_SETTINGS[self.train.optimizer]:
                if name not in kept and f"train.{name}" not in given:
                    train[name] = getattr(TrainSpec(), name)
        model = data.get("model")
        if isinstance(model, dict) and isinstance(model.get("cell"), str) and model["cell"] != self.model.cell \
                and isinstance(train, dict):
            # another cell puts the fields only the old one read back to their defaults, unless given
            # too: a jordan spec's teacher_forcing refused --set model.cell=gru, and --set of it again
            now_read = unread_fields_of(model["cell"], train.get("optimizer", self.train.optimizer))
            for dotted in set(now_read) - set(self.unread_fields()) - given - {"model.device"}:  # (a cuda spec
                # given a cell without GPU kernels is refused, naming the device: not run on the CPU unsaid)
                table, _, name = dotted.partition(".")
                (model if table == "model" else train)[name] = getattr(ModelSpec() if table == "model" else
                                                                       TrainSpec(), name)
        spec = Spec.from_mapping(data, source=self.source)
        if origin is not None:
            spec = replace(spec, description=_described(origin, spec))
        elif "description" not in overrides and self.description:
            spec = replace(spec, description=self._edited_description(spec))
        if "description" not in overrides and self.description and spec.name in preset_names() and \
                (spec.task["kind"], spec.model.cell) != (self.task["kind"], self.model.cell):
            # edited back into a preset (hello-gru -> hello): its own words, only where it is that
            # preset (they tell its results): adding-rnn with an lstm is no adding-lstm
            preset = load_preset(spec.name)
            if _experiment(preset) == _experiment(spec):
                spec = replace(spec, description=preset.description)
        return spec

    def _edited_description(self, spec: "Spec") -> str:
        """The description of ``spec``, this spec edited: this one, or where the task or the cell
        changed, what the experiment now is, in terms of this one, and what else changed with it
        (the lab's form applies every field at once: hidden_size, a rate)."""
        old, new = (self.task["kind"], self.model.cell), (spec.task["kind"], spec.model.cell)
        if new == old:
            return self.description
        edits = _edits(self, spec, "was")
        return _other_task_or_cell(self.name, old, new) + (f"{EDITED}{edits})" if edits else "")

    # ------------------------------------------------------------------ writing
    def to_mapping(self) -> dict[str, Any]:
        """Every field as a nested dict, as :meth:`from_mapping` reads it back (defaults included)."""
        return {
            "name": self.name,
            "description": self.description,
            "seed": self.seed,
            "task": dict(self.task),
            "model": {f.name: getattr(self.model, f.name) for f in fields(ModelSpec)},
            "train": {f.name: getattr(self.train, f.name) for f in fields(TrainSpec)},
        }

    def unread_fields(self) -> dict[str, str]:
        """The fields this spec's cell and optimizer do not read (a resolved spec.toml leaves them
        out), by dotted name, each saying so: ``{"train.momentum": "adam does not read it (only sgd
        does)"}``."""
        return unread_fields_of(self.model.cell, self.train.optimizer)

    def applied_mapping(self) -> dict[str, Any]:
        """:meth:`to_mapping` without the fields that only another cell or optimizer reads (an
        lstm's ``tau_min``, adam's ``momentum``): the settings that apply, as :meth:`to_toml`
        writes them (``rnnlab spec --json``)."""
        data = self.to_mapping()
        for dotted in self.unread_fields():
            table, _, name = dotted.partition(".")
            del data[table][name]
        return data

    def to_toml(self) -> str:
        """The resolved spec as TOML text: every field that applies, defaults included; those that
        only another cell or optimizer reads are left out (:meth:`applied_mapping`), as a spec must
        leave them at their defaults. A data file shipped in rnnlab's ``sample_data/`` is written
        by its name there, as the presets name it, so that the run still finds it after rnnlab
        moves (another install, another machine)."""
        data = self.applied_mapping()
        path, shipped = data["task"].get("path"), data_files.SAMPLE_DIR
        if isinstance(path, (str, Path)) and Path(path).is_absolute() and Path(path).is_relative_to(shipped):
            data["task"]["path"] = Path(path).relative_to(shipped).as_posix()
        lines = [f"{key} = {_toml_value(data[key])}" for key in TOP_RULES]
        for table in ("task", "model", "train"):
            lines.append("")
            lines.append(f"[{table}]")
            lines.extend(f"{key} = {_toml_value(value)}" for key, value in data[table].items())
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ sizes
    def estimated_bytes(self, task=None, batch: int | None = None) -> int:
        """What one training step holds at once: traces of every step and gate, forward and
        backward buffers, inputs and logits, and the parameters with their gradients and the
        optimizer's state (an estimate, within a small factor). For the selfattention cell, the
        attention maps (batch x num_heads x T x T per block) too. ``batch``: what one forward and
        backward pass over that many sequences holds instead (``rnnlab bptt --batch``, the lab's
        view), whatever the training's batch sizes."""
        task = task or self.make_task()
        m, t = self.model, self.train
        itemsize = 4 if m.dtype == "float32" else 8
        batch = max(t.batch_size, t.eval_batch_size) if batch is None else batch
        steps = task.length + 1
        io = steps * batch * (task.input_size + 3 * task.output_size) * 8
        if m.attention:
            # per block: records and saved activations (h, z, q, k, v, layer-norm inputs, ...) and the
            # backward's buffers, about 14 vectors of d_model and 3 of d_ff per step, plus the
            # attention maps P (B, heads, T, T), which grow with the square of the length
            vectors = steps * batch * (14 * m.hidden_size + 3 * m.feed_forward_size) * itemsize
            maps = batch * m.num_heads * steps * steps * itemsize
            return int(m.num_layers * (vectors + maps) + io + self._parameter_bytes(task, itemsize))
        # per step and unit: gate records (and their saved copies), states, backward buffers; the
        # lru's complex state counts twice and it records Re, Im, |h| and their gradients
        gates = {"rnn": 1, "lstm": 4, "gru": 3, "leaky": 2, "jordan": 2, "mingru": 2, "minlstm": 4, "lru": 4}[m.cell]
        directions = 2 if m.bidirectional else 1
        per_direction = steps * batch * m.hidden_size * (3 * gates + 6) * itemsize
        recurrent = m.num_layers * directions * per_direction
        return int(recurrent + io + self._parameter_bytes(task, itemsize))

    def _parameter_bytes(self, task, itemsize: int) -> int:
        """The parameters as training holds them: the weights, a working copy (the kernels' packed
        or transposed weights), the gradients and the optimizer's state (Adam: two moments)."""
        t = self.train
        slots = {"sgd": 1 if t.momentum else 0, "adagrad": 1, "rmsprop": 1, "adam": 2}[t.optimizer]
        return (3 + slots) * self.model.parameter_count(task.input_size, task.output_size) * itemsize

    def check_memory(self, task=None, batch: int | None = None, fix: str = "make them smaller") -> None:
        """Refuse, before allocating anything, what would not fit in this machine's memory: training
        this spec, or with ``batch`` one pass over that many sequences (all that ``bptt``, ``trace``
        and a lab's view run: a run trained on a larger machine is still read here), see
        :meth:`estimated_bytes`. The error names the field furthest above its usual size (the
        default; the length against 100 steps, the pass's batch against 1) and ends in ``fix``."""
        task = task or self.make_task()
        need = self.estimated_bytes(task, batch)
        have = physical_memory()  # the layers' own: a layer too large is refused the same way
        if need <= have // 2:
            return
        m, t = self.model, self.train
        sizes = {"model.hidden_size": (m.hidden_size, ModelSpec.hidden_size), "model.num_layers": (m.num_layers, 1)}
        if batch is not None:
            sizes["batch"] = (batch, 1)  # the pass's own (the CLI's --batch)
        elif t.batch_size >= t.eval_batch_size:  # the larger of the two is counted: the other saves nothing
            sizes["train.batch_size"] = (t.batch_size, TrainSpec.batch_size)
        else:
            sizes["train.eval_batch_size"] = (t.eval_batch_size, TrainSpec.eval_batch_size)
        # the length by the task's own field (copy's is its delay; a file's text has none to blame)
        length_field = next((f"task.{name}" for name in ("length", "delay") if name in task_fields(task.kind)), None)
        if length_field is not None:
            power = 2 if m.attention else 1
            sizes[length_field] = (task.length ** power, 100 ** power)
        field = max(sizes, key=lambda name: sizes[name][0] / sizes[name][1])
        heads = f", num_heads={m.num_heads}: attention maps grow as length^2" if m.attention else ""
        batches = f"batch={batch}" if batch is not None else \
            f"batch_size={t.batch_size}, eval_batch_size={t.eval_batch_size}"
        passes = "training this experiment" if batch is None else f"a pass over {batch} sequence{'s' * (batch != 1)}"
        raise SpecError(
            field,
            f"{passes} needs about {_gib(need)} (hidden_size={m.hidden_size}, num_layers={m.num_layers}, "
            f"{batches}, length={task.length}{heads}), more than half of this machine's {_gib(have)}; {fix}",
        )

    def reads_its_targets(self, task) -> str:
        """A warning ("" for none) for a model that reads the steps after each one (a reverse
        direction, non-causal attention) on a ``task`` whose target is the next input: it reads
        the answer, so its loss and accuracy measure no prediction. Allowed (the lab shows what
        such a model does) but said, where a run is trained or a lab opened on it."""
        if not (self.model.bidirectional and task.predicts_next_input):
            return ""
        reader = "non-causal attention" if self.model.attention else "a reverse direction"
        return (f"{reader} reads the input after each step, which is the {task.kind} task's target: this model's "
                "loss and accuracy are no prediction (bidirectional = false predicts)")

    def make_task(self):
        """The task object this spec describes (cheap: tasks build their data lazily or small)."""
        options = {k: v for k, v in self.task.items() if k != "kind"}
        return make_task(self.task["kind"], options, None)


def unread_fields_of(cell: str, optimizer: str) -> dict[str, str]:
    """:meth:`Spec.unread_fields` of a spec of ``cell`` and ``optimizer``."""
    def unread(reader: str, readers) -> str:
        who = " and ".join(readers) if len(readers) < 3 else ", ".join(readers[:-1]) + " and " + readers[-1]
        return f"{reader} does not read it (only {who} do{'es' * (len(readers) == 1)})"

    fields_unread = {f"model.{name}": unread(cell, cells) for name, cells in CELL_FIELDS.items() if cell not in cells}
    fields_unread.update({f"train.{name}": unread(optimizer, [o for o, names in OPTIMIZER_SETTINGS.items()
                                                            if name in names])
                          for name in sorted(set(_OPTIMIZER_ONLY) - set(OPTIMIZER_SETTINGS.get(optimizer, ())))})
    if cell != "jordan":
        fields_unread["train.teacher_forcing"] = unread(cell, ["jordan"])
    return fields_unread


#: What a preset's description gets after it where its experiment was edited: " (edited: task.length
#: = 30, the preset's 100)".
EDITED = " (edited: "

#: Fields that leave a preset's experiment what its description says: how long and from which seed
#: it trains, how often it evaluates and saves.
_SAME_EXPERIMENT = {"seed", "train.steps", "train.eval_every", "train.eval_batch_size", "train.checkpoint_every"}


def _origin_preset(spec: Spec) -> Spec | None:
    """The shipped preset ``spec``'s description is in the words of: the preset's own (``(edited:
    ...)`` after them or not), or made from them on another cell or task ("adding-lstm with the gru
    cell instead of lstm ..."); None for a description of the user's own."""
    names = preset_names()
    if spec.name in names and spec.description.partition(EDITED)[0] == load_preset(spec.name).description:
        return load_preset(spec.name)
    made = re.match(r"(\S+) (with the \S+ cell instead of |on the \S+ task)", spec.description)
    return load_preset(made.group(1)) if made and made.group(1) in names else None


def _other_task_or_cell(name: str, old: tuple[str, str], new: tuple[str, str]) -> str:
    """What experiment ``name`` of (task, cell) ``old`` became with (task, cell) ``new``: "adding-lstm
    with the gru cell instead of lstm", "... on the copy task instead of adding", or both."""
    (old_kind, old_cell), (kind, cell) = old, new
    if kind == old_kind:
        return f"{name} with the {cell} cell instead of {old_cell}"
    if cell == old_cell:
        return f"{name} on the {kind} task instead of {old_kind}"
    return f"{name} on the {kind} task with the {cell} cell (was {old_kind}, {old_cell})"


def _described(preset: Spec, spec: Spec) -> str:
    """``spec``'s description in the words of ``preset``, the experiment it was edited from: the
    preset's own where the task and cell are its, else what they now are; then every field edited
    since (:func:`_edits`)."""
    old, new = (preset.task["kind"], preset.model.cell), (spec.task["kind"], spec.model.cell)
    words = preset.description if new == old else _other_task_or_cell(preset.name, old, new)
    edits = _edits(preset, spec, "the preset's")
    return words + (f"{EDITED}{edits})" if edits else "")


def _edits(base: Spec, spec: Spec, earlier: str) -> str:
    """``spec``'s changes to ``base``'s experiment, "task.length = 30, the preset's 100; ..." (``earlier``:
    "the preset's", "was"), but those of :data:`_SAME_EXPERIMENT`, the task and the cell themselves
    (the words say them), another task's fields, and fields ``spec``'s cell or optimizer does not
    read (put back to their defaults); "" for none."""
    before, after = flat_fields(_experiment(base)), flat_fields(_experiment(spec))
    skipped = _SAME_EXPERIMENT | {"task.kind", "model.cell"} | set(spec.unread_fields())
    same_task = spec.task["kind"] == base.task["kind"]

    def spelt(key: str, values: Mapping[str, Any]) -> str:
        return json.dumps(values[key], default=str) if key in values else "(none)"

    return "; ".join(f"{key} = {spelt(key, after)}, {earlier} {spelt(key, before)}" for key in after
                     if key not in skipped and after[key] != before.get(key)
                     and (same_task or not key.startswith("task.")))


def _experiment(spec: Spec) -> dict[str, Any]:
    """What ``spec`` computes, for telling whether two specs are one experiment: every field, the
    task's defaults filled in, but the name, the description and the device (the same numbers)."""
    data = spec.to_mapping()
    del data["name"], data["description"], data["model"]["device"]
    data["task"] = {**{key: default for key, (default, _) in task_fields(spec.task["kind"]).items()}, **data["task"]}
    return data


def edited_name(name: str, old: tuple[str, str], new: tuple[str, str]) -> str:
    """The name an edited experiment (the lab's form, ``--set``) is saved under (``runs/NAME-TIME``),
    given its (task, cell) before and after. A shipped preset's name says its task and cell
    ("copy-attention"), so a preset given another cell is named for it ("copy-lru"), and one given
    another task for both ("adding-lstm"); a name so made follows the next cell ("hello-gru" given
    mingru: "hello-mingru"), and one that reads TASK-CELL the next task too ("hello-gru" given the
    copy task: "copy-gru"); a name of the user's own, or an unchanged task and cell, stays."""
    (old_kind, old_cell), (kind, cell) = old, new
    short = {"selfattention": "attention"}
    if new == old:
        return name
    if kind != old_kind and name not in preset_names() and name == f"{old_kind}-{short.get(old_cell, old_cell)}":
        return f"{kind}-{short.get(cell, cell)}"
    if name not in preset_names():  # one named so before ("hello-gru" given mingru: "hello-mingru")
        suffix = "-" + short.get(old_cell, old_cell)
        return name.removesuffix(suffix) + "-" + short.get(cell, cell) if kind == old_kind and \
            name.endswith(suffix) else name
    if kind != old_kind:
        base = kind
    else:  # "multiscale-leaky" -> "multiscale-rnn", "hello" -> "hello-gru"
        base = name.removesuffix("-" + short.get(old_cell, old_cell))
    return f"{base}-{short.get(cell, cell)}"


def edited(spec: "Spec", overrides: Mapping[str, Any]) -> "Spec":
    """``spec.with_overrides(overrides)``, named by :func:`edited_name` unless ``overrides`` names it."""
    new = spec.with_overrides(overrides)
    name = edited_name(spec.name, (spec.task["kind"], spec.model.cell), (new.task["kind"], new.model.cell))
    return new if "name" in overrides or name == new.name else new.with_overrides({"name": name})


NAME_MAX = 100


def _check_name(name: str) -> None:
    """``name`` becomes part of a directory name (``runs/NAME-TIME``): no path separators, no
    control characters, no leading '.' (a name like "../x" or "/tmp/x" would leave runs/), no
    leading or trailing blanks (" " made the directory "runs/ -TIME")."""
    if not name:
        raise SpecError("name", "must not be empty")
    if name != name.strip():
        raise SpecError("name", f"{_show(name)} must not be blank or start or end with a blank")
    if len(name) > NAME_MAX:
        raise SpecError("name", f"must be at most {NAME_MAX} characters, got {len(name)}")
    if "/" in name or "\\" in name or name.startswith(".") or not name.isprintable():
        raise SpecError("name", f"{_show(name)} names a run directory: no '/', '\\', control characters "
                                "or leading '.'")


def _check_leaky(model: ModelSpec) -> None:
    """The leaky cell's own fields: refused (when changed from their defaults) for the other cells."""
    defaults = ModelSpec()
    if model.cell != "leaky":
        for name in ("tau_min", "tau_max", "learn_tau"):
            if getattr(model, name) != getattr(defaults, name):
                raise SpecError(f"model.{name}", f"only the leaky cell has time constants, not {model.cell}")
        return
    if model.tau_max < model.tau_min:
        raise SpecError("model.tau_max",
                        f"must be at least tau_min ({number_text(model.tau_min)}), got {number_text(model.tau_max)}")


def _check_jordan(model: ModelSpec, train: TrainSpec) -> None:
    """The jordan cell's own field, and the recurrent options it does not take."""
    if model.cell != "jordan":
        if model.feedback != ModelSpec().feedback:
            raise SpecError("model.feedback", f"only the jordan cell feeds its output back, not {model.cell}")
        if train.teacher_forcing:
            raise SpecError("train.teacher_forcing", f"only the jordan cell feeds its output back, not {model.cell}")
        return
    if model.num_layers != 1:
        raise SpecError("model.num_layers", "the jordan cell has one layer: its output is what feeds back")
    if model.bidirectional:
        raise SpecError("model.bidirectional", "the jordan cell runs forward only: it reads back its previous output")
    if model.init != "uniform":
        raise SpecError("model.init", f"{model.init} initialises recurrent weights W_hh; jordan has none "
                                      "(W_yh reads the previous output): use uniform")
    if train.truncate:
        raise SpecError("train.truncate", "the jordan cell takes no truncation (with teacher forcing there is no "
                                          "BPTT at all, and running free it backpropagates through every fed-back "
                                          "output): use 0")


def _check_optimizer(train: TrainSpec, reset: bool = False) -> TrainSpec:
    """The optimizer's settings: another optimizer's is refused (when changed from its default, as a
    spec written by an older rnnlab lists every field), rather than silently ignored; ``reset``: put
    back to its default instead. Returns ``train`` as checked."""
    defaults = TrainSpec()
    used = OPTIMIZER_SETTINGS[train.optimizer]
    for name in _OPTIMIZER_ONLY:
        if name not in used and getattr(train, name) != getattr(defaults, name):
            if reset:
                train = replace(train, **{name: getattr(defaults, name)})
                continue
            users = [optimizer for optimizer, names in OPTIMIZER_SETTINGS.items() if name in names]
            which = users[0] if len(users) == 1 else ", ".join(users[:-1]) + " and " + users[-1]
            raise SpecError(f"train.{name}", f"only {which} use{'s' if len(users) == 1 else ''} {name}, not "
                                             f"{train.optimizer} (its settings: {', '.join(used)})")
    return train


def _check_attention(model: ModelSpec) -> None:
    """The selfattention cell's own fields, and the recurrent options it does not take."""
    defaults = ModelSpec()
    if not model.attention:
        for name in ("num_heads", "d_ff"):
            if getattr(model, name) != getattr(defaults, name):
                raise SpecError(f"model.{name}", f"only the selfattention cell takes {name}, not {model.cell}")
        return
    if model.hidden_size % model.num_heads:
        raise SpecError("model.num_heads", f"hidden_size ({model.hidden_size}) must be divisible by num_heads "
                                           f"({model.num_heads}): each head gets hidden_size / num_heads dimensions")
    if model.init != "uniform":
        raise SpecError("model.init", f"{model.init} initialises recurrent weights W_hh; selfattention has none "
                                      "(its blocks are initialised as torch's TransformerEncoderLayer): use uniform")
    if not model.bias:
        raise SpecError("model.bias", "rnnlab's selfattention blocks always have their biases: use bias = true")


#: Per recurrent cell, the products per unit and step: (rows of W_ih, rows of W_hh) per H, i.e.
#: the gates reading the input and the gates reading the state (the linear recurrences read the
#: input only; the LRU's complex B and C count as four).
CELL_PRODUCTS = {"rnn": (1, 1), "leaky": (1, 1), "jordan": (1, 1), "gru": (3, 3), "lstm": (4, 4),
                 "mingru": (2, 0), "minlstm": (3, 0), "lru": (4, 0)}
BACKWARD_WORK = 2  # a backward pass counted as this many forward passes (measured 1-1.5)


def forward_macs(model: ModelSpec, steps: int, input_size: int, output_size: int, batch: int = 1) -> int:
    """A forward pass's multiply-adds (estimated): per step, every layer's and direction's products
    with its input and its state (self-attention: the projections, the feed-forward layer and the
    attention over the steps), and the readout."""
    H = model.hidden_size
    if model.attention:
        block = 4 * H * H + 2 * H * model.feed_forward_size + 2 * steps * H
        per_step = input_size * H + model.num_layers * block + output_size * H
    else:
        directions = 2 if model.bidirectional else 1
        on_input, on_state = CELL_PRODUCTS.get(model.cell, (4, 4))
        layer = [directions * H * (on_input * layer_input + on_state * H)
                 for layer_input in [input_size] + [directions * H] * (model.num_layers - 1)]
        per_step = sum(layer) + output_size * directions * H
    return steps * batch * per_step


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**28 else f"{n / 2**20:.0f} MiB"


def _table_fields() -> dict[str, set[str]]:
    """Each table's field names: [model]'s and [train]'s, and [task]'s of any kind (and ``kind``)."""
    from .data import TASKS

    return {"model": {f.name for f in fields(ModelSpec)}, "train": {f.name for f in fields(TrainSpec)},
            "task": {name for kind in TASKS for name in task_fields(kind)} | {"kind"}}


def _reject_misplaced(data: Mapping[str, Any]) -> None:
    """SpecError for a field written under another table than its own: TOML reads every line after
    ``[train]`` as [train]'s, so ``seed = 3`` written last is ``train.seed``, and a student was told
    only that train.seed is unknown. Says where it belongs (a field of neither stays the tables' own
    "unknown field", which suggests spellings)."""
    from .data import TASKS

    own = _table_fields()
    any_task = own["task"]
    task_table = data.get("task")
    kind = task_table.get("kind") if isinstance(task_table, Mapping) else "hello"
    own["task"] = set(task_fields(kind)) | {"kind"} if isinstance(kind, str) and kind in TASKS else None
    for table in ("task", "model", "train"):
        given = data.get(table)
        if not isinstance(given, Mapping) or own[table] is None:
            continue
        for key in given:
            if not isinstance(key, str) or key in own[table]:
                continue
            if key in TOP_RULES:
                raise SpecError(f"{table}.{key}", f"{key} is a top-level field, not [{table}]'s: write it above the "
                                                  f"first [table] line (every line after [{table}] belongs to it)")
            home = next((other for other in ("model", "train") if key in own[other]), None)
            if home is None and table != "task" and key in any_task:
                home = "task"
            if home is not None:
                raise SpecError(f"{table}.{key}", f"{key} belongs in [{home}], not [{table}]")


def _reject_unknown(table: str, data: Mapping[str, Any], known) -> None:
    for key in data:
        if key not in known:
            name = f"{table}.{key}" if table else key
            close = closest_name(key, sorted(known)) if isinstance(key, str) else None
            if not table and isinstance(key, str):  # a table's field without its table: learning_rate=0.1
                close = close or _in_a_table(key)
            if not table and close in ("task", "model", "train") and isinstance(data[key], Mapping):
                raise SpecError(name, f"unknown table [{key}] (did you mean [{close}]? tables: [task], [model], "
                                      "[train])")
            hint = f"did you mean {close!r}? " if close else ""
            raise SpecError(name, f"unknown field ({hint}allowed: {', '.join(sorted(known))})")


def field_named(leaf: str) -> str | None:
    """The dotted name of the field of [model], [train] or [task] whose own name is ``leaf`` (a dash read as an
    underscore: "hidden-size" is "model.hidden_size") or that ``leaf`` abbreviates ("lr": "train.learning_rate",
    :func:`~rnnlab.errors.abbreviated`), or a top-level field's ("seed"); None if none is. No guess at a
    misspelling, unlike :func:`_in_a_table`: the CLI names the field an unknown option was meant for only where
    it is sure."""
    dotted = {**_dotted_by_leaf(), **{name: name for name in TOP_RULES}}
    leaf = leaf.replace("-", "_")
    return dotted.get(leaf) or dotted.get(abbreviated(leaf, sorted(dotted)) or "")


def _dotted_by_leaf() -> dict[str, str]:
    """Each field of [model], [train] and [task] by its own name: {"learning_rate": "train.learning_rate", ...}
    (a name in two tables is model's, then train's)."""
    tables = _table_fields()
    return {name: f"{table}.{name}" for table in ("task", "train", "model") for name in sorted(tables[table])}


def _in_a_table(key: str) -> str | None:
    """The dotted name of the one field of [task], [model] or [train] named ``key`` (or nearly:
    "learning-rate"), for a top-level field that is none: "train.learning_rate"; None if none is."""
    by_leaf = _dotted_by_leaf()
    leaf = closest_name(key.replace("-", "_"), sorted(by_leaf))
    return by_leaf[leaf] if leaf is not None else None


def _table(cls, rules: Mapping[str, Rule], table: str, data: Any):
    if not isinstance(data, Mapping):
        raise SpecError(table, f"expected a table [{table}]")
    _reject_unknown(table, data, rules)
    return cls(**{key: rules[key].check(f"{table}.{key}", value) for key, value in data.items()})


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):  # a JSON string is a TOML basic string, but for DEL, which TOML wants escaped
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007F")
    raise TypeError(f"cannot write {type(value).__name__} to TOML")  # pragma: no cover


# ---------------------------------------------------------------------------- loading
def preset_names() -> list[str]:
    """Names of the presets shipped inside the package, sorted, the default first."""
    names = sorted(p.name[:-5] for p in resources.files(PRESET_PACKAGE).iterdir() if p.name.endswith(".toml"))
    return sorted(names, key=lambda n: (n != DEFAULT_PRESET, n))


def load_preset(name: str) -> Spec:
    """A shipped preset by name; :class:`SpecError` lists the presets if there is none by that name."""
    names = preset_names()
    if not isinstance(name, str):
        raise SpecError("", f"a preset is named by a string, got {_show(name)}")
    if name not in names:
        close = closest_name(name, names)
        hint = f"did you mean {close!r}? " if close else ""
        raise SpecError("", f"unknown preset {name!r} ({hint}presets: {', '.join(names)})")
    text = resources.files(PRESET_PACKAGE).joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return parse_spec(text, source=name, base_dir=None)


class _NestedTooDeeply(tomllib.TOMLDecodeError):
    """tomllib's RecursionError (a table in a table ... some 400 deep: 3,000 lines of traceback), as
    the TOMLDecodeError every reader of a spec already says in one line."""

    def __init__(self) -> None:
        ValueError.__init__(self, "tables or arrays nested too deeply to read")  # (no position to give)


def spec_toml(text: str) -> dict[str, Any]:
    """A spec file's text as TOML reads it (tomllib.TOMLDecodeError if it is none). A byte-order mark,
    as Windows editors write one, is no TOML but no content either: it is passed over."""
    try:
        return tomllib.loads(text.removeprefix("\ufeff"))
    except RecursionError:
        raise _NestedTooDeeply() from None


def respelt_spec(text: str, spec: Spec) -> str:
    """spec.toml's text once it says ``spec``: ``text`` itself where it says the same already; where
    only values differ, each a one-line ``key = value`` under its table, ``text`` with those values
    respelt in place (the comments, the order and the spelling of the rest kept); else
    ``spec.to_toml()``, the resolved spec written whole."""
    whole = spec.to_toml()
    wanted = spec_toml(whole)
    try:
        said = spec_toml(text)
    except tomllib.TOMLDecodeError:
        return whole
    if said == wanted:
        return text
    old, new = flat_fields(said), flat_fields(wanted)
    if old.keys() != new.keys():  # a field added or dropped: no one line to respell
        return whole
    changed = {key for key in new if old[key] != new[key]}
    lines, table = text.splitlines(keepends=True), ""
    for number, line in enumerate(lines):
        head, eq, rest = line.partition("=")
        if line.strip().startswith("["):
            table = line.strip().partition("]")[0].strip("[ ")
        elif eq and (key := ".".join(filter(None, (table, head.strip())))) in changed:
            value = _value_spelling(rest)
            if value is None:
                return whole
            lines[number] = f"{head}{eq}{rest[:len(rest) - len(rest.lstrip())]}{_toml_value(new[key])}" \
                            f"{rest.lstrip()[len(value):]}"
    respelt = "".join(lines)
    try:  # a key quoted, dotted or spread over lines reads otherwise than this line-by-line look
        return respelt if spec_toml(respelt) == wanted else whole
    except tomllib.TOMLDecodeError:
        return whole


def flat_fields(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A spec document's fields by dotted name: ``{"train.learning_rate": 0.01, ...}``."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update(flat_fields(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _value_spelling(rest: str) -> str | None:
    """The value a ``key = value  # comment`` line spells after its ``=``, without the comment (which
    a string value may hold a ``#`` of its own); None where no one-line value is there."""
    rest = rest.lstrip()
    cuts = [i for i, char in enumerate(rest) if char == "#"] + [len(rest)]
    for cut in cuts:
        value = rest[:cut].rstrip()
        try:
            tomllib.loads(f"v = {value}")
        except tomllib.TOMLDecodeError:
            continue
        return value
    return None


def spelt_as_path(target: str | os.PathLike) -> bool:
    """Whether an experiment named on the command line is spelt as a path (``./hello``, ``runs/a``),
    not a preset's bare name: where nothing is there, it is "no such file", not an unknown preset."""
    return "/" in str(target) or os.sep in str(target)


def _toml_hint(text: str, message: str) -> str:
    """What tomllib's words mean for the mistakes a spec's writer makes most, "; text needs quotes:
    "adding"" ("" for another): its own say "Invalid value (at line 2, column 8)"."""
    if text.lstrip("\ufeff \t\r\n").startswith(("{", "[{")):
        return "; this looks like JSON: a spec is TOML ([task] then kind = \"adding\", one per line)"
    at = re.search(r"\(at line (\d+), column (\d+)\)", message)
    line = text.splitlines()[int(at.group(1)) - 1] if at and int(at.group(1)) <= len(text.splitlines()) else ""
    rest = line[int(at.group(2)) - 1:] if at else ""
    if message.startswith("Invalid value") and (word := re.match(r"[A-Za-z_][\w-]*", rest)):
        if word.group() in ("True", "False", "TRUE", "FALSE"):
            return f"; TOML writes {word.group().lower()} in lower case"
        return f'; text needs quotes: "{word.group()}"'
    if message.startswith("Cannot overwrite a value"):
        return "; a field is given twice"
    if message.startswith("Cannot declare"):
        return "; that table is given twice (a dotted key such as model.cell = ... declares [model] too)"
    if "\\" in line and ("escape" in message.lower() or "hex value" in message):
        return "; a backslash in \"...\" starts an escape: write a Windows path in '...' or with /"
    return ""


#: Why a spec file with no field (empty, or comments alone) is refused, after its name.
EMPTY_SPEC = "is empty: a spec needs at least one field, a [task] table say (see `rnnlab presets`)"


def parse_spec(text: str, *, source: str, base_dir: Path | None, saved: bool = False) -> Spec:
    """Parse TOML text into a validated :class:`Spec`; errors name ``source``. ``saved``: a run
    directory's spec (see :meth:`Spec.from_mapping`)."""
    try:
        data = spec_toml(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError("", f"{source}: not valid TOML: {exc}{_toml_hint(text, str(exc))}") from None
    if not data:
        raise SpecError("", f"{source} {EMPTY_SPEC}")
    return spec_from_document(data, source=source, base_dir=base_dir, saved=saved)


def spec_from_document(data: Mapping[str, Any], *, source: str, base_dir: Path | None,
                       saved: bool = False) -> Spec:
    """A parsed spec file's fields as a validated :class:`Spec`, errors naming ``source``."""
    try:
        return Spec.from_mapping(data, source=source, base_dir=base_dir, saved=saved)
    except DataFileError as exc:
        raise DataFileError(exc.field, f"{exc.message} (in {source})", exc.path, exc.reason) from None
    except SpecError as exc:
        raise SpecError(exc.field, f"{exc.message} (in {source})") from None


#: What an empty experiment name (an unset shell variable, a quoted nothing) is refused with: not
#: hello, nor the folder ".".
EMPTY_TARGET = "the experiment named is empty: give a preset name, a spec .toml file or a run directory"


#: The target that names a spec read from stdin: ``rnnlab spec hello --set seed=3 | rnnlab train -``.
STDIN_TARGET = "-"
_stdin_read: list[tuple[Any, str]] = []  # (stream, its text): a command may load its target twice
#: The most stdin is read of for a spec: a preset's is a kilobyte, and an endless stream (``< /dev/zero``,
#: ``yes |``) read to its end filled the memory.
STDIN_SPEC_MAX_BYTES = 16 * 2**20


def _stdin_spec() -> Spec:
    """The spec piped into stdin (:data:`STDIN_TARGET`), its relative paths the working directory's (no base
    directory: a missing file's error says where it was looked for)."""
    return parse_spec(stdin_text(), source="stdin", base_dir=None)


def stdin_text() -> str:
    """The text piped into stdin for :data:`STDIN_TARGET`. Read once per stream: ``--set`` loads a target again
    where the first load failed, and a second read would find it empty. A terminal is refused rather than waited
    on (SpecError)."""
    stream = sys.stdin
    if stream is None or stream.closed:
        raise SpecError("", "- reads a spec from stdin, which is closed here")
    if not _stdin_read or _stdin_read[0][0] is not stream:
        if stream.isatty():
            raise SpecError("", "- reads a spec from stdin, which is a terminal here: pipe one in (rnnlab spec "
                                "hello --set seed=3 | rnnlab train -)")
        raw = getattr(stream, "buffer", None)
        try:
            read = (raw or stream).read(STDIN_SPEC_MAX_BYTES + 1)  # (a text stream's count is of characters)
            if len(read) > STDIN_SPEC_MAX_BYTES:
                most = STDIN_SPEC_MAX_BYTES // 2**20
                raise SpecError("", f"- reads a spec from stdin, which holds more than {most} MiB: no spec is that "
                                    "long (a device such as /dev/zero, or a stream that never ends?)")
            text = read.decode("utf-8") if raw is not None else read
        except UnicodeDecodeError as exc:
            raise SpecError("", f"stdin: not UTF-8 text ({_where_undecodable(exc.object, exc.start)})") from None
        except OSError as exc:
            raise SpecError("", f"cannot read stdin: {exc.strerror or exc}") from None
        _stdin_read[:] = [(stream, text)]
    return _stdin_read[0][1]


def load_spec(target: str | os.PathLike) -> Spec:
    """A preset name or a path to a ``.toml`` spec file, or ``-``: the spec piped into stdin. A preset's bare
    name is the preset even where a folder or a non-.toml file of that name is in the way (``./copy`` names the
    folder); where that folder is a run directory, a warning on stderr says how to name it."""
    if not str(target).strip():
        raise SpecError("", EMPTY_TARGET)
    if str(target) == STDIN_TARGET:
        return _stdin_spec()
    path = Path(target)
    if str(target) in preset_names() and (path.is_dir() or path.exists() and path.suffix.lower() != ".toml"):
        if (path / "spec.toml").is_file():  # a run trained with --out NAME: the user may have meant it
            notices.warn(f"{target} is the preset; the run directory of that name here is ./{target}")
        return load_preset(str(target))
    if path.suffix == ".toml" or path.exists():
        if path.is_dir():
            raise SpecError("", f"{path} is a directory, not a spec file")
        if kind := special_file(path):  # read as TOML, it never ends
            raise SpecError("", f"{path} is {kind}, not a spec file")
        if path.suffix.lower() != ".toml":  # a trace .npz, a data file: not read as TOML
            raise SpecError("", f"{path} is not a spec .toml file (expected a preset name, a spec .toml file "
                                "or a run directory)")
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError("", f"no such spec file: {path}") from None
        except UnicodeDecodeError as exc:
            raise SpecError("", f"{path}: not UTF-8 text ({_where_undecodable(exc.object, exc.start)})") from None
        except OSError as exc:
            raise SpecError("", f"cannot read {path}: {exc.strerror}") from None
        return parse_spec(text, source=str(path), base_dir=path.resolve().parent)
    if len(path.parts) > 1 or spelt_as_path(target):  # a path, not a preset name: say that nothing is there
        raise SpecError("", f"no such file or directory: {target} (a preset name, a spec .toml file or a run "
                            "directory)")
    if str(target) not in preset_names() and Path(f"{target}.toml").is_file():  # the .toml left off: hw1 for hw1.toml
        raise SpecError("", f"unknown preset {str(target)!r}: did you mean the spec file {target}.toml?")
    return load_preset(str(target))


def _where_undecodable(raw: bytes, start: int) -> str:
    """Where a file stops being UTF-8, as an editor shows it: "line 3, column 12 (byte 0xe9)"; a
    UTF-16 file (Notepad's "Unicode") is named so."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "it is UTF-16: save it as UTF-8"
    before = raw[:start]
    line = before.count(b"\n") + 1
    column = len(before[before.rfind(b"\n") + 1:].decode("utf-8", errors="replace")) + 1
    return f"line {line}, column {column}: byte 0x{raw[start]:02x}; save it as UTF-8"
