"""The encoder-decoder lab: train a seq2seq model on digit reversal (or sorting), then decode a
sequence on the bench one output token at a time and watch where the decoder looks.

The model (:class:`~rnnlab.layers.seq2seq.Seq2Seq`) reads the source digits with its encoder,
then writes the target token by token until it emits EOS. Training is teacher-forced (the decoder
is fed the true previous token); the bench is decoded free-running and greedy (each step is fed
the model's own previous argmax), exactly as :meth:`Seq2Seq.greedy_decode` does, or, in the
"teacher-forced" mode (:attr:`Seq2SeqLab.decode_mode`), fed the true previous token as in training
(:meth:`Seq2Seq.forward`): exposure bias shows where the two differ, greedy going wrong after one
mistake (every later step fed that mistake) while teacher forcing stays right. With attention,
decoder step t mixes the encoder states with weights a_t = softmax_s score(d_t, e_s): the rows
a_1..a_T form the attention matrix (decoder step x encoder step). For reversal, output t must copy
source position S + 1 - t, and a trained model's matrix is an anti-diagonal.

The preset (:data:`DEFAULTS`) shows that in seconds: a GRU with H = 32 and Luong's "general"
attention, trained for 2000 steps of 32 reversals of 3-10 digits (Adam, lr 0.01, clip 1), gets
95.8% of 500 held-out 8-10-digit sources right and draws a clean anti-diagonal; the same run
without attention (``attention="none"``: the decoder sees the source only through the encoder's
final state) gets 18.0%: one context vector does not hold ten digits (``rnnlab seq2seq`` and
``rnnlab seq2seq --attention none``, 5-17 s each on a shared 2-core machine, 2026-11-29; an
earlier measurement gave 96.6% and 22.4%: 2000 steps of training amplify rounding differences).
Accuracy is measured by length bucket, three inside the training range and one longer than any
training input, where both fail (3.8% and 1.0% at 11-13 digits): attention learned positions it
has seen.

Decoding the bench sequence is causal, so the lab decodes it once (after every change of the
sequence or the weights) and reveals it one step at a time: ``cursor`` = how many output tokens
are shown (0..T'), the highlighted step is ``cursor - 1`` (as :class:`~rnnlab.lab.Lab` does for
time steps).

No view logic here and no UI imports (textual, rich, typer): :mod:`rnnlab.tui.labs.seq2seq` and
:mod:`rnnlab.cli.seq2seq` draw what this engine holds.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import kernels
from .._cursor import StepCursor
from .._locks import HandoffLock, TrainingControl
from ..data.seq2seq import BOS, DIGIT0, EOS, PAD, VOCAB, ReversalTask, SortTask
from ..errors import UserError, choice_refusal, counted, named_in_part
from ..layers.seq2seq import ATTENTION_KINDS, CELLS, Seq2Seq
from ..spec import SEED_MAX
from ..train.rundir import atomic_save_npz
from ..train.seq2seq import Seq2SeqStep, Seq2SeqTrainer, evaluate_greedy
from ..train.trainer import TrainingDiverged
from . import export_target, unknown_name
from ._options import check_int, check_number, interval, shown

__all__ = ["ATTENTION_CHOICES", "CHOICES", "DECODE_MODES", "DEFAULTS", "IN_PLACE_OPTIONS", "LEARNING_RATE_MAX",
           "TASKS", "BucketScore", "Decoding", "EvalRecord", "OptionError", "Seq2SeqLab", "StepInfo", "digit_count",
           "length_buckets", "option_range", "token_text"]

#: The tasks, by option value.
TASKS = {"reverse": ReversalTask, "sort": SortTask}
#: The attention kinds an option may name; "none" is the plain encoder-decoder.
ATTENTION_CHOICES = ("none", *ATTENTION_KINDS)

#: The preset: what :meth:`Seq2SeqLab.open` uses for every option not given (see the module docstring).
DEFAULTS: dict[str, Any] = {
    "task": "reverse",        # reverse | sort
    "attention": "general",   # none | dot | general | additive
    "cell": "gru",            # rnn | lstm | gru
    "hidden_size": 32,
    "min_length": 3,          # training sources have min_length..max_length digits
    "max_length": 10,
    "steps": 2000,            # training steps per run (t in the TUI, the CLI's --steps)
    "batch_size": 32,
    "learning_rate": 0.01,    # Adam, global gradient norm clipped to 1
    "seed": 0,                # weights, training batches, held-out batches and bench sequences
    "eval_every": 250,        # greedy accuracy by length bucket every this many steps (0: only at the end)
    "eval_size": 100,         # held-out sequences per length bucket
    # (a lab scores as it trains, a curve: small and often; rnnlab seq2seq scores once, at the end, on 500: 0, 500)
}

_LIMITS = {  # integer options: (lowest, highest)
    "hidden_size": (1, 512), "min_length": (1, 50), "max_length": (1, 50), "steps": (1, 10_000_000),
    "batch_size": (1, 4096), "seed": (0, SEED_MAX), "eval_every": (0, 10_000_000), "eval_size": (1, 10_000),
}
#: The options that name a choice: their values.
CHOICES: dict[str, tuple[str, ...]] = {"task": tuple(TASKS), "attention": ATTENTION_CHOICES, "cell": tuple(CELLS)}
#: Adam's learning rate is in (0, LEARNING_RATE_MAX].
LEARNING_RATE_MAX = 1.0
#: The options of how later runs train and score, not of the model: :meth:`Seq2SeqLab.reconfigure`
#: applies a change of only these in place (the weights, trained steps, history and scores stay).
#: :meth:`Seq2SeqLab.train` reads ``steps`` and ``eval_every`` when a run starts, :meth:`Seq2SeqLab.evaluate`
#: ``eval_size`` each time it scores; scores already taken keep the sources they were taken on.
#: ``batch_size`` and ``learning_rate`` go to the trainer (never mid-run: reconfigure refuses while
#: training). Batch k is drawn from (seed, k) at the size it is drawn with, so the steps after a change
#: are as reproducible as before; Adam reads its rate at every update and keeps its moments, as
#: torch's does when a param group's lr is set.
IN_PLACE_OPTIONS = frozenset({"steps", "batch_size", "learning_rate", "eval_every", "eval_size"})


def option_range(name: str) -> str | None:
    """The values a numeric option takes, as its errors (and the CLI's help) write them: ``[1, 512]``,
    ``(0, 1]``; None for the options that name a choice."""
    if name in _LIMITS:
        return interval(*_LIMITS[name])
    return interval(0, LEARNING_RATE_MAX, low_open=True) if name == "learning_rate" else None


#: How the bench is decoded: each step fed the model's own previous token (greedy, free-running), or the
#: expected output's previous token (teacher-forced, as in training).
DECODE_MODES = ("greedy", "teacher-forced")

#: The longest sequence the bench takes (typed or drawn).
MAX_BENCH_LENGTH = 40
#: Decoding runs this many steps past the expected output's EOS before giving up on one.
DECODE_SLACK = 3
#: Tokens the decoder never writes: no target holds them (greedy decoding skips them).
MARKERS = (PAD, BOS)
CLIP_NORM = 1.0
_BENCH_TAG = 0x7332_7362  # "s2sb": bench sequences draw from a stream of their own


class OptionError(UserError):
    """A lab option has a bad value; ``option`` is its name (``hidden_size``), ``other`` the option
    ``message`` compares it with, named in it as is (the CLI spells both as flags). It reads as the
    other labs' errors do: "hidden_size must be an integer in [1, 512], got 0"."""

    def __init__(self, option: str, message: str, other: str | None = None) -> None:
        self.option, self.message, self.other = option, message, other
        super().__init__(f"{option} {message}")


def _resolve_options(options: dict | None, base: dict) -> dict[str, Any]:
    """``base`` updated with ``options``, every value checked (OptionError naming the first bad one)."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise UserError(f"options must be a dict of option names to values, got {type(options).__name__}")
    unknown = [k for k in options if k not in DEFAULTS]
    if unknown:
        raise UserError(unknown_name("option", unknown[0], list(DEFAULTS)))  # as the other labs: "did you mean"
    out = dict(base)
    for name, value in options.items():
        if name == "attention" and value is None:
            value = "none"
        try:  # the message from "must be" on: an OptionError says "name must be ..."
            if name in CHOICES:
                if value not in CHOICES[name]:  # "reverse or sort", "LSTM": (did you mean 'lstm'?), as the CLI's
                    raise UserError(choice_refusal(value, CHOICES[name], shown(value)))
            elif name in _LIMITS:
                value = check_int("", value, *_LIMITS[name])
            elif name == "learning_rate":
                value = check_number("", value, 0, LEARNING_RATE_MAX, low_open=True)
        except UserError as exc:
            raise OptionError(name, str(exc)) from None
        out[name] = value
    if out["min_length"] > out["max_length"]:  # blame the one changed: max_length alone, or else min_length
        if "max_length" in options and "min_length" not in options:
            raise OptionError("max_length", f"must be >= min_length ({out['min_length']}), got {out['max_length']}",
                              "min_length")
        raise OptionError("min_length", f"must be <= max_length ({out['max_length']}), got {out['min_length']}",
                          "max_length")
    return out


def length_buckets(min_length: int, max_length: int) -> list[tuple[int, int]]:
    """Source-length buckets to score: up to three splitting the training range, then one of three
    lengths past it (inputs longer than any seen in training)."""
    span = max_length - min_length + 1
    cuts = [min_length + round(span * k / 3) for k in range(4)]
    inside = [(cuts[k], cuts[k + 1] - 1) for k in range(3) if cuts[k + 1] - 1 >= cuts[k]]
    return inside + [(max_length + 1, max_length + 3)]


def digit_count(low: int, high: int | None = None) -> str:
    """``"1 digit"``, ``"7 digits"``, or for a range ``"3-10 digits"`` (``"5 digits"`` when it is one length)."""
    if high is None or high == low:
        return counted(low, "digit")
    return f"{low}-{high} digits"


def token_text(token: int) -> str:
    """A token as the lab writes it: the digit, or ``<s>``, ``</s>``, ``<pad>``."""
    return VOCAB[token] if 0 <= token < len(VOCAB) else f"<{token}?>"


@dataclass(frozen=True)
class BucketScore:
    """Greedy-decoding accuracy on held-out sources of ``min_length..max_length`` digits."""

    min_length: int
    max_length: int
    unseen: bool               # longer than every training source
    sequence_accuracy: float   # every output token (EOS included) right
    token_accuracy: float      # output tokens right at their position
    count: int

    @property
    def label(self) -> str:
        return f"{self.min_length}-{self.max_length}" if self.max_length > self.min_length else str(self.min_length)


@dataclass(frozen=True)
class EvalRecord:
    """The length-bucket scores after ``step`` training steps."""

    step: int
    buckets: tuple[BucketScore, ...]


@dataclass(frozen=True)
class Decoding:
    """A decoding of the bench sequence (batch of one, batch axis dropped), in ``mode`` (one of
    :data:`DECODE_MODES`).

    ``source`` (S,) and ``expected`` (T,) are token ids (``expected`` ends with EOS); ``tokens``
    (T',) what the decoder wrote at each step (the argmax, markers excluded); ``inputs`` (T',) the
    token each step was fed: BOS, then greedy, the previous of ``tokens`` (T' steps up to and
    including its EOS, T + DECODE_SLACK at most), teacher-forced, the previous of ``expected``
    (T' = T: there is no true token to feed past the expected output). ``records`` are the trace's
    records by name: ``encoder`` (S, H), ``decoder`` (T', H), ``logits`` (T', V) and, with
    attention, ``scores`` and ``weights`` (T', S) (the attention matrix: decoder step x encoder
    step) and ``context``, ``attentional`` (T', H). ``probabilities`` (T', V) is the softmax of the
    logits.
    """

    source: np.ndarray
    expected: np.ndarray
    tokens: np.ndarray
    records: dict[str, np.ndarray]
    probabilities: np.ndarray
    mode: str = "greedy"
    inputs: np.ndarray | None = None

    @property
    def steps(self) -> int:
        """T': decoder steps run."""
        return int(self.tokens.shape[0])

    @property
    def ended(self) -> bool:
        """Whether the decoder wrote EOS."""
        return bool(self.steps and self.tokens[-1] == EOS)

    @property
    def correct(self) -> np.ndarray:
        """(T',) bool: token t equals the expected token t (False past the expected output)."""
        n = min(self.steps, self.expected.shape[0])
        right = np.zeros(self.steps, bool)
        right[:n] = self.tokens[:n] == self.expected[:n]
        return right

    @property
    def all_correct(self) -> bool:
        """The whole expected output, EOS included, and nothing more."""
        return self.steps == self.expected.shape[0] and bool(self.correct.all())

    @property
    def weights(self) -> np.ndarray | None:
        """The attention matrix (T', S), or None for the plain encoder-decoder."""
        return self.records.get("weights")

    @property
    def misses(self) -> int:
        """Expected tokens (EOS included) not written at their step: a count that compares the modes
        (teacher-forced decoding runs exactly the expected steps; greedy may stop early or run on)."""
        n = min(self.steps, self.expected.shape[0])
        return int(self.expected.shape[0] - np.count_nonzero(self.tokens[:n] == self.expected[:n]))


@dataclass(frozen=True)
class StepInfo:
    """What decoder step ``step`` (0-based) did: the token it wrote with its probability, the
    runner-up, the expected token, the token it was fed (``fed``: BOS, then its own previous token
    or, teacher-forced, the expected one) and, with attention, the source position it looked at most."""

    step: int
    token: int
    probability: float
    runner_up: int
    runner_up_probability: float
    expected: int | None          # None past the expected output
    focus: int | None             # argmax_s of the attention row (None without attention)
    focus_weight: float | None
    focus_token: int | None       # the source token at ``focus``
    fed: int = BOS                # the decoder's input at this step

    @property
    def correct(self) -> bool:
        return self.expected is not None and self.token == self.expected


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


class Seq2SeqLab(StepCursor, TrainingControl):
    """An encoder-decoder on the bench: model, task, training history, the bench sequence, its
    greedy decoding and the decoder-step cursor. Open it with :meth:`open`; every user action is a
    method. Training (:meth:`train`) runs in the calling thread, holding :attr:`lock` per step."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = dict(options)
        o = self.options
        self.task = TASKS[o["task"]](o["min_length"], o["max_length"])
        self.model = Seq2Seq(self.task.vocab_size, self.task.vocab_size, o["hidden_size"], cell=o["cell"],
                             attention=None if o["attention"] == "none" else o["attention"], seed=o["seed"])
        self.trainer = Seq2SeqTrainer(self.model, self.task, batch_size=o["batch_size"],
                                      learning_rate=o["learning_rate"], clip_norm=CLIP_NORM, seed=o["seed"])
        self.buckets = length_buckets(o["min_length"], o["max_length"])
        self.history: list[Seq2SeqStep] = []
        self.evals: list[EvalRecord] = []
        self.lock = HandoffLock()
        self._init_training_control()
        self._bench_rng = np.random.default_rng([_BENCH_TAG, o["seed"]])
        self.source = self._bench_rng.integers(0, 10, size=o["max_length"])  # digits 0..9
        self.decoding: Decoding | None = None  # the decode_mode's decoding of the bench
        self.decodings: dict[str, Decoding] = {}  # every mode's, by mode (decoded together: the view compares them)
        self.decode_mode = DECODE_MODES[0]
        self.decoded_at_step = -1  # the training step whose weights decoded the bench
        self.cursor = 0
        self.refresh()
        self.cursor = self.decoding.steps  # open on the whole decoding; home rewinds

    @classmethod
    def open(cls, options: dict | None = None) -> "Seq2SeqLab":
        """A lab from ``options`` (any of :data:`DEFAULTS`; the rest take the preset's values).
        A bad option raises :class:`OptionError` naming it."""
        return cls(_resolve_options(options, DEFAULTS))

    # ------------------------------------------------------------------ the model
    @property
    def attention(self) -> str:
        """The attention kind, ``"none"`` for the plain encoder-decoder."""
        return self.options["attention"]

    @property
    def trained_steps(self) -> int:
        return self.trainer.step

    def describe(self) -> str:
        """One line: model and task."""
        o = self.options
        attention = "no attention" if o["attention"] == "none" else f"{o['attention']} attention"
        return (f"{o['cell'].upper()} H={o['hidden_size']}, {attention}; {o['task']} "
                f"{digit_count(o['min_length'], o['max_length'])}")

    def reconfigure(self, overrides: dict[str, Any]) -> bool:
        """Change some options (``{"attention": "none"}``), validated first (nothing changes on a
        bad value). A change of only :data:`IN_PLACE_OPTIONS` (``{"steps": 5000}``,
        ``{"learning_rate": 0.001}``) applies to this lab as it is: the model, its trained steps, the
        optimizer's state and the scores stay, and the next run trains with the new values. Any
        other re-creates the lab: a fresh model, history and bench. The bench keeps its digits, and
        n goes on drawing where it was (under the same seed: it drew the seed's first digits again
        after every switch).
        Returns whether the model was rebuilt."""
        if self.training:
            raise UserError("stop training before changing the model")
        wanted = self.check_options(overrides)
        if not self._changes_the_model(wanted):
            self.trainer.batch_size = wanted["batch_size"]
            self.trainer.optimizer.learning_rate = wanted["learning_rate"]
            self.options = wanted  # swapped whole: a reader sees the old options or the new
            return False
        fresh = Seq2SeqLab(wanted)
        fresh.decode_mode = self.decode_mode  # a new model is decoded as the old one was
        fresh.set_source(self.source)
        if fresh.options["seed"] == self.options["seed"]:
            fresh._bench_rng = self._bench_rng
        self.__dict__.update(fresh.__dict__)  # swapped in whole: a reader never sees a half-built lab
        return True

    def rebuilds(self, overrides: dict[str, Any]) -> bool:
        """Whether :meth:`reconfigure` with ``overrides`` would build a fresh model (dropping the
        trained steps): they change an option outside :data:`IN_PLACE_OPTIONS`. Checked as
        :meth:`check_options` is (:class:`OptionError` naming a bad value)."""
        return self._changes_the_model(self.check_options(overrides))

    def _changes_the_model(self, wanted: dict[str, Any]) -> bool:
        return any(value != self.options[name] for name, value in wanted.items() if name not in IN_PLACE_OPTIONS)

    def check_options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """The options :meth:`reconfigure` would use (``overrides`` over the current ones), checked
        (:class:`OptionError` naming a bad one) without building a model: a view can ask before it
        drops a trained one."""
        return _resolve_options(overrides, self.options)

    def set_attention(self, kind: str | None) -> None:
        """Switch the attention kind (``"none"``/None, ``"dot"``, ``"general"``, ``"additive"``): a new, untrained model
        (nothing changes for the kind it has)."""
        self.reconfigure({"attention": kind})

    # ------------------------------------------------------------------ the bench sequence
    @property
    def length(self) -> int:
        """Digits in the bench sequence."""
        return int(self.source.shape[0])

    @property
    def unseen_length(self) -> bool:
        """Whether the bench sequence is longer than every training source."""
        return self.length > self.options["max_length"]

    def set_source(self, digits: Any) -> None:
        """Put these digits (0..9) on the bench, decode them and show the whole decoding."""
        digits = np.asarray(digits)
        if digits.ndim != 1 or digits.dtype.kind not in "iu" or not 1 <= digits.size <= MAX_BENCH_LENGTH:
            raise UserError(f"the bench sequence must be 1 to {MAX_BENCH_LENGTH} digits, got shape {digits.shape}")
        if digits.min() < 0 or digits.max() > 9:
            raise UserError(f"the bench sequence must hold digits 0..9, got {int(digits.min())}..{int(digits.max())}")
        self.source = digits.astype(np.int64)
        self.refresh()
        self.cursor = self.decoding.steps

    def source_from_text(self, text: str) -> None:
        """Type the bench sequence: digits, optionally separated by spaces or commas (``"3 1 4"``, ``"314"``)."""
        bad = re.search(r"[^0-9\s,]", text)
        if bad:
            raise UserError(f"type digits 0-9 only (spaces and commas allowed), got {bad.group()!r}")
        digits = [int(c) for c in text if c.isdigit()]
        if not digits:
            raise UserError("type at least one digit")
        if len(digits) > MAX_BENCH_LENGTH:
            raise UserError(f"type at most {MAX_BENCH_LENGTH} digits, got {len(digits)}")
        self.set_source(np.array(digits, np.int64))

    def new_sequence(self, length: int | None = None) -> None:
        """Draw fresh random digits (``length`` of them; default: as many as now)."""
        length = self.length if length is None else length
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or not 1 <= length <= MAX_BENCH_LENGTH:
            raise UserError(f"length must be an integer in [1, {MAX_BENCH_LENGTH}], got {length!r}")
        self.set_source(self._bench_rng.integers(0, 10, size=int(length)))

    def longer(self) -> None:
        """One more random digit at the end of the bench sequence (it may outgrow the training lengths)."""
        if self.length >= MAX_BENCH_LENGTH:
            raise UserError(f"the bench sequence is at its longest ({MAX_BENCH_LENGTH} digits)")
        self.set_source(np.append(self.source, self._bench_rng.integers(0, 10)))

    def shorter(self) -> None:
        """Drop the bench sequence's last digit."""
        if self.length <= 1:
            raise UserError("the bench sequence is at its shortest (1 digit)")
        self.set_source(self.source[:-1])

    def refresh(self) -> None:
        """Decode the bench sequence with the current weights, greedily and teacher-forced (the
        cursor is kept, or follows the end if it was there)."""
        source = DIGIT0 + self.source
        expected = np.append(DIGIT0 + self.task.transform(self.source), EOS)
        at_end = self.decoding is not None and self.cursor == self.decoding.steps
        lengths = np.array([source.size])
        with self.lock, kernels.blas_single_threaded():
            tokens, trace = self.model.greedy_decode(source[:, None], lengths,
                                                     expected.size + DECODE_SLACK, BOS, EOS, exclude=MARKERS)
            fed = np.append(BOS, expected[:-1])  # teacher forcing: the true previous token, as training feeds it
            logits, forced = self.model.forward(source[:, None], lengths, fed[:, None])
            self.decoded_at_step = self.trainer.step
        steps = int(trace.output_lengths[0])
        records = {name: np.array(trace[name][:steps, 0] if name != "encoder" else trace[name][:, 0])
                   for name in trace.names if name not in ("src_mask", "tokens")}
        greedy = tokens[:steps, 0].copy()
        forced_records = {name: np.array(forced[name][:, 0]) for name in forced.names if name != "src_mask"}
        forced_records["logits"] = np.array(logits[:, 0])
        never = np.zeros(logits.shape[-1])
        never[list(MARKERS)] = -np.inf  # as greedy decoding: the markers are never written
        decodings = {
            "greedy": Decoding(source, expected, greedy, records, _softmax(records["logits"]), "greedy",
                               np.append(BOS, greedy[:-1])),
            "teacher-forced": Decoding(source, expected, (forced_records["logits"] + never).argmax(axis=1),
                                       forced_records, _softmax(forced_records["logits"]), "teacher-forced", fed),
        }
        self.decodings, self.decoding = decodings, decodings[self.decode_mode]
        self.cursor = self.decoding.steps if at_end else min(self.cursor, self.decoding.steps)

    def set_decode_mode(self, mode: str) -> str:
        """Decode the bench ``"greedy"`` (each step fed the model's own previous token) or
        ``"teacher-forced"`` (fed the expected previous token); the cursor stays on its step where the
        other decoding has it, at the end if it was at the end."""
        if mode not in DECODE_MODES:
            meant = named_in_part(mode, DECODE_MODES) if isinstance(mode, str) else None  # "forced"
            raise UserError(f"decode mode {choice_refusal(mode, DECODE_MODES, meant=meant)}")
        at_end = self.cursor == self.decoding.steps
        self.decode_mode = mode
        self.decoding = self.decodings[mode]
        self.cursor = self.decoding.steps if at_end else min(self.cursor, self.decoding.steps)
        return mode

    def toggle_decode_mode(self) -> str:
        """Switch between greedy and teacher-forced decoding; returns the new mode."""
        return self.set_decode_mode(DECODE_MODES[1 - DECODE_MODES.index(self.decode_mode)])

    # ------------------------------------------------------------------ the decoder-step cursor
    @property
    def cursor_step(self) -> int | None:
        """The highlighted decoder step (0-based): the last one revealed; None before the first."""
        return self.cursor - 1 if self.cursor > 0 else None

    # step_forward (one more output token), step_back, jump_start, jump_end: StepCursor's
    @property
    def cursor_end(self) -> int:
        return self.decoding.steps

    def step_info(self, step: int | None = None) -> StepInfo | None:
        """What decoder step ``step`` (default: the cursor's) did; None before the first step."""
        step = self.cursor_step if step is None else step
        d = self.decoding
        if step is None:
            return None
        if not 0 <= step < d.steps:
            raise UserError(f"step must be in [0, {d.steps}), got {step}")
        p = d.probabilities[step]
        token = int(d.tokens[step])
        candidates = np.delete(np.arange(p.size), [token, *MARKERS])  # the runner-up is one it could write
        runner = int(candidates[np.argmax(p[candidates])])
        focus = focus_weight = focus_token = None
        if d.weights is not None:
            focus = int(np.argmax(d.weights[step]))
            focus_weight = float(d.weights[step, focus])
            focus_token = int(d.source[focus])
        return StepInfo(step, token, float(p[token]), runner, float(p[runner]),
                        int(d.expected[step]) if step < d.expected.size else None, focus, focus_weight, focus_token,
                        int(d.inputs[step]))

    # ------------------------------------------------------------------ training
    def train(self, until_step: int | None = None, should_stop: Callable[[], bool] = lambda: False,
              on_step: Callable[[Seq2SeqStep], None] | None = None) -> str:
        """Train in the calling thread (the TUI calls it from a worker) until ``until_step``
        updates (default: ``steps`` more), :meth:`stop_training` or ``should_stop()``;
        :meth:`pause_training` holds it between steps. Every ``eval_every`` steps, and when the
        run completes, the length buckets are scored (:meth:`evaluate`). ``on_step(record)`` is
        called after each step (outside the lock). Returns the final status.

        Each step holds :attr:`lock`, so a reader under it never sees half an update.
        """
        if until_step is None:
            until_step = self.trainer.step + self.options["steps"]
        every = self.options["eval_every"]
        self._start_training()
        try:
            while self.trainer.step < until_step and not self._between_steps(should_stop):
                with self.lock:
                    record = self.trainer.train_step()
                    self.history.append(record)
                    if (every and record.step % every == 0) or record.step == until_step:
                        self.evaluate(should_stop)
                if on_step is not None:
                    on_step(record)
        except TrainingDiverged as exc:
            self.training_status = "diverged"
            self.training_message = f"{exc}; the weights before that step are kept"
            return self.training_status
        self.training_status = "completed" if self.trainer.step >= until_step else "stopped"
        return self.training_status

    def evaluate(self, should_stop: Callable[[], bool] = lambda: False) -> EvalRecord:
        """Score greedy decoding on ``eval_size`` held-out sources per length bucket (the same
        sources every time), append the result to :attr:`evals` (replacing one of the same step)
        and return it. ``should_stop()`` true between two buckets ends it there: the buckets
        scored so far (a large --eval-size takes minutes)."""
        size, seed = self.options["eval_size"], self.options["seed"]
        scores = []
        with self.lock, kernels.blas_single_threaded():
            for lo, hi in self.buckets:
                if scores and should_stop():
                    break
                s = evaluate_greedy(self.model, self.task.eval_batch(size, seed, lo, hi), BOS, EOS, exclude=MARKERS)
                scores.append(BucketScore(lo, hi, lo > self.options["max_length"], s.sequence_accuracy,
                                          s.token_accuracy, s.count))
            record = EvalRecord(self.trainer.step, tuple(scores))
            if self.evals and self.evals[-1].step == record.step:
                self.evals[-1] = record
            else:
                self.evals.append(record)
        return record

    # ------------------------------------------------------------------ results
    def _fresh_decoding(self) -> Decoding:
        """The bench decoding, redone first if the weights changed since."""
        if self.decoded_at_step != self.trainer.step:
            self.refresh()
        return self.decoding

    def summary(self) -> dict[str, Any]:
        """Everything a ``--json`` reader wants: options, model, training, the latest bucket scores,
        the bench sequence decoded with the current weights in :attr:`decode_mode` (``bench.fed``:
        the token each step was fed)."""
        d = self._fresh_decoding()
        last = self.history[-1] if self.history else None
        return {
            "lab": "seq2seq",
            "options": dict(self.options),
            "model": repr(self.model),
            "parameters": int(self.model.num_parameters),
            "trained_steps": self.trainer.step,
            "status": self.training_status,
            "message": self.training_message,
            "train_seconds": round(self.trainer.elapsed, 3),
            "loss": None if last is None else float(last.loss),
            "token_accuracy": None if last is None else float(last.accuracy),
            "buckets": [asdict(b) for b in self.evals[-1].buckets] if self.evals else [],
            "evaluated_at_step": self.evals[-1].step if self.evals else None,
            "bench": {
                "source": [token_text(int(t)) for t in d.source],
                "expected": [token_text(int(t)) for t in d.expected],
                "decode_mode": d.mode,
                "fed": [token_text(int(t)) for t in d.inputs],
                "decoded": [token_text(int(t)) for t in d.tokens],
                "correct": d.all_correct,
                "longer_than_training": self.unseen_length,
            },
        }

    def export_arrays(self) -> dict[str, np.ndarray]:
        """Every recorded internal of the bench decoding (in :attr:`decode_mode`, which ``meta``
        names) by its trace name, the tokens, both modes' decoded tokens, the training history and
        the bucket scores, with a JSON ``meta`` describing the layout."""
        d = self._fresh_decoding()
        arrays: dict[str, np.ndarray] = {"source": d.source, "expected": d.expected, "fed": d.inputs,
                                         "decoded": d.tokens, "probabilities": d.probabilities}
        arrays.update(d.records)
        arrays.update({f"decoded_{mode.replace('-', '_')}": self.decodings[mode].tokens for mode in DECODE_MODES})
        arrays["history_step"] = np.array([r.step for r in self.history], np.int64)
        arrays["history_loss"] = np.array([r.loss for r in self.history], np.float64)
        arrays["history_accuracy"] = np.array([r.accuracy for r in self.history], np.float64)
        arrays["history_grad_norm"] = np.array([r.grad_norm for r in self.history], np.float64)
        arrays["history_learning_rate"] = np.array([r.learning_rate for r in self.history], np.float64)
        arrays["history_batch_size"] = np.array([r.batch_size for r in self.history], np.int64)
        arrays["buckets"] = np.array(self.buckets, np.int64).reshape(-1, 2)
        arrays["eval_step"] = np.array([e.step for e in self.evals], np.int64)
        arrays["eval_sequence_accuracy"] = np.array(
            [[b.sequence_accuracy for b in e.buckets] for e in self.evals], np.float64).reshape(-1, len(self.buckets))
        arrays["eval_token_accuracy"] = np.array(
            [[b.token_accuracy for b in e.buckets] for e in self.evals], np.float64).reshape(-1, len(self.buckets))
        meta = {
            "lab": "seq2seq", "options": self.options, "model": repr(self.model), "trained_steps": self.trainer.step,
            "vocab": list(VOCAB), "records": list(d.records), "decode_mode": d.mode,
            "layout": "source (S,), expected (T,), fed and decoded (T',) are token ids (vocab), decoded what each "
                      "step wrote and fed its input, in decode_mode: greedy (fed BOS, then its own previous token) "
                      "or teacher-forced (fed BOS, then the expected previous token; T' = T); decoded_greedy and "
                      "decoded_teacher_forced each mode's tokens; the records are decode_mode's: encoder (S, H); "
                      "decoder, context, attentional (T', H); logits, probabilities (T', V); scores, weights (T', S): "
                      "the attention matrix, decoder step x encoder step; history_* per training step (its "
                      "learning_rate and batch_size as it trained: options holds the next run's); "
                      "eval_* (evaluations, buckets) with buckets (K, 2) = source lengths [lo, hi]",
        }
        arrays["meta"] = np.array(json.dumps(meta))
        return arrays

    @property
    def export_name(self) -> str:
        """The file name an export is offered under (and a directory given instead is told to hold)."""
        forced = "-forced" if self.decode_mode == "teacher-forced" else ""  # the two modes' files side by side
        return f"seq2seq-{self.options['task']}-{self.options['attention']}{forced}.npz"

    def export(self, path: str | Path, *, replace: bool = True) -> Path:
        """Write :meth:`export_arrays` to ``path`` (``.npz``, atomically); returns the path written.
        ``replace=False`` refuses an existing file (:class:`~rnnlab.errors.TargetExistsError`)."""
        path = export_target(path, self.export_name, replace=replace)
        with self.lock:
            arrays = self.export_arrays()
        atomic_save_npz(path, arrays, replace=replace)  # an OSError leaves as one line naming the path
        return path
