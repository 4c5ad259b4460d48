"""The echo state network lab: a fixed random reservoir, a readout fitted in closed form, and the
chaotic Mackey-Glass series forecast one step ahead and free-running.

The model (:class:`~rnnlab.layers.esn.EchoStateNetwork`) is never trained by gradients:

    x_t = (1 - a) x_{t-1} + a tanh(W x_{t-1} + W_in u_t + b)     reservoir, drawn once from the seed
    y_t = W_out z_t + b_out,  z_t = x_t  (or [x_t; u_t])          readout, ridge regression

with u_t = s[t], the series, and the readout fitted so that y_t forecasts s[t + 1]. W is rescaled
so that its largest |eigenvalue| is the spectral radius rho; with leaky units (a < 1) the
reservoir's linearisation at 0 is (1 - a) I + a W, whose eigenvalues (1 - a) + a lambda are drawn
beside W's against the unit circle: rho > 1 is common, and what keeps the echo state property is
the leak and the tanh's saturation.

The preset (:data:`DEFAULTS`) is reservoirpy's published Mackey-Glass setup (tau = 17, 2000 steps,
100 units, rho 1.25, a 0.3, input scaling 1, connectivity 0.1, ridge 1e-5, the raw series, the
readout fitted on the first 1599 steps after a warm-up of 100 and scored on the last 400), with
the input beside the state in the readout (``readout_input=True``), which beats the published
one-step RMSE of 0.0020 at the median over seeds (seed 0: RMSE 1.3e-3, R^2 0.99997). Fed back its
own output from the end of the training part, the same network tracks the series for 206 steps
(s[1600] .. s[1805], the test's first targets) before its error first exceeds 0.1. Moving one
knob shows what it is for (seed 0, measured with :meth:`EsnLab.sweep`): rho 0.5 (a short memory)
triples the one-step error and ends the free run after ~40 steps; rho 1.5 is best (RMSE 9.7e-4);
from rho 1.8 on the reservoir turns chaotic, the one-step error is 6-8x the preset's and the free
run blows up within 40 steps; a leak rate of 1 (no leak: a plain tanh reservoir) still forecasts
one step well but its free run diverges after 57.

Time axis: column t of every state array is x_t, the state after input t; the readout of column
t forecasts s[t + 1]. Two modes share it: "one-step" (every input is the true s[t]: the test part
continues the training part's states) and "generative" (columns up to n_train as in "one-step",
x_{n_train} after the last training target; from t = n_train + 1 on, each input is the network's
own previous forecast). Both forecast s[n_train + 1] first. ``cursor`` is a column of the current mode.

Every action is a method; changes of the options are validated first (one-line
:class:`~rnnlab.errors.UserError` naming the option; nothing changes on error). A change is
*requested* (:meth:`EsnLab.request`, instant) and *applied* (:meth:`EsnLab.apply`: draw, fit,
forecast; tens of ms for the preset), so a view can request on its UI thread and apply in a
worker; the convenience methods (:meth:`EsnLab.configure`, :meth:`EsnLab.nudge`,
:meth:`EsnLab.new_seed`) do both unless ``apply=False``. Each computation holds :attr:`lock` and
publishes its results in one assignment, so a reader never sees half an update. The long action,
:meth:`EsnLab.sweep` (refit for each value of one option), is stoppable and fills its result as
it goes.

No view logic here and no UI imports (textual, rich, typer): :mod:`rnnlab.tui.labs.esn` and
:mod:`rnnlab.cli.esn` draw what this engine holds.
"""

from __future__ import annotations

import json
import math
import time
from decimal import ROUND_FLOOR, Decimal
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._locks import HandoffLock
from ..data.series import mackey_glass
from ..errors import UserError, choice_refusal
from ..layers.esn import EchoStateNetwork
from ..spec import SEED_MAX
from ..train.rundir import atomic_save_npz
from . import export_target, unknown_name
from ._options import Spell, as_typed, check_bool, check_int, check_number, interval, parse_assignments

__all__ = ["DEFAULTS", "MODES", "NUDGE_STEPS", "OPTION_HELP", "SWEEP_VALUES", "EsnLab", "EsnOptions", "EsnResult",
           "Generation", "ModeView", "Scores", "SweepResult", "compute", "mode_view", "option_range",
           "parse_option_text"]

#: The two ways of running the forecast part: true inputs, or the network's own outputs fed back.
MODES = ("one-step", "generative")


@dataclass(frozen=True)
class EsnOptions:
    """Every option of the lab; the defaults are the preset (see the module docstring)."""

    units: int = 100               # N, reservoir units
    spectral_radius: float = 1.25  # rho = max |eig(W)|
    leak_rate: float = 0.3         # a in (0, 1]
    input_scaling: float = 1.0     # non-zero entries of W_in are +-input_scaling
    connectivity: float = 0.1      # fraction of W's entries that are non-zero
    ridge: float = 1e-5            # readout's ridge penalty
    readout_input: bool = True     # readout of [x_t; u_t] (True) or of x_t alone (reservoirpy's)
    seed: int = 0                  # the reservoir's draws
    length: int = 2000             # steps of the Mackey-Glass series
    test: int = 400                # one-step forecasts scored at the end (training: length - 1 - test)
    warmup: int = 100              # training steps run but left out of the regression
    tau: int = 17                  # Mackey-Glass delay (17: mildly chaotic)
    generate: int = 400            # free-running steps from the end of the training part
    threshold: float = 0.1         # |error| that ends the free run's horizon


#: The preset as a dict: what :meth:`EsnLab.open` uses for every option not given.
DEFAULTS: dict[str, Any] = asdict(EsnOptions())

#: Help text of each option (the TUI's options dialog shows it after the values it takes): short
#: enough that, after its range, each fits the dialog's line at 80 columns.
OPTION_HELP: dict[str, str] = {
    "units": "reservoir units N",
    "spectral_radius": "largest |eigenvalue| of W (ρ)",
    "leak_rate": "a: x_t = (1-a) x_{t-1} + a tanh(...)",
    "input_scaling": "W_in's non-zero entries: ±input_scaling",
    "connectivity": "fraction of W's entries non-zero",
    "ridge": "readout's penalty (0: least squares)",
    "readout_input": "readout of [x_t; u_t] (true) or x_t",
    "seed": "the reservoir's random draws",
    "length": "steps of the Mackey-Glass series",
    "test": "one-step forecasts scored at the end",
    "warmup": "training steps left out of the fit",
    "tau": "Mackey-Glass delay",
    "generate": "free-run steps after the training part",
    "threshold": "|error| ending the free run's horizon",
}

# integer options: (lowest, highest); float options: (low, high, low included)
_INT_LIMITS = {"units": (1, 1000), "seed": (0, SEED_MAX), "length": (10, 20_000), "test": (1, 19_990),
               "warmup": (0, 19_990), "tau": (1, 1000), "generate": (1, 10_000)}
_FLOAT_LIMITS = {"spectral_radius": (0.0, 10.0, False), "leak_rate": (0.0, 1.0, False),
                 "input_scaling": (0.0, 100.0, False), "connectivity": (0.0, 1.0, False),
                 "ridge": (0.0, 1e6, True), "threshold": (0.0, 1e6, False)}

#: What one press of "up"/"down" changes (:meth:`EsnLab.nudge`), and the lowest value it goes to.
NUDGE_STEPS: dict[str, tuple[float, float]] = {"spectral_radius": (0.1, 0.05), "leak_rate": (0.05, 0.05)}

#: The values :meth:`EsnLab.sweep` tries by default, per option.
SWEEP_VALUES: dict[str, np.ndarray] = {
    "spectral_radius": np.round(np.arange(1, 21) * 0.1, 10),      # 0.1 .. 2.0
    "leak_rate": np.round(np.arange(1, 21) * 0.05, 10),           # 0.05 .. 1.0
    "input_scaling": np.round(np.geomspace(0.01, 10.0, 16), 6),
    "connectivity": np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]),
    "ridge": np.array([float(f"1e{k}") for k in range(-12, 1)]),  # (geomspace's 1e-5 is 9.999999999999999e-06)
}


# ---------------------------------------------------------------------------------------------
# option checks: one-line UserErrors naming the option
# ---------------------------------------------------------------------------------------------

def option_range(name: str) -> str | None:
    """The values option ``name`` takes, as its errors (and the CLI's help) write them: ``[1, 1000]``,
    ``(0, 10]``; None for readout_input (true or false)."""
    if name in _INT_LIMITS:
        return interval(*_INT_LIMITS[name])
    if name in _FLOAT_LIMITS:
        low, high, low_included = _FLOAT_LIMITS[name]
        return interval(low, high, low_open=not low_included)
    return None


def _check_value(name: str, value: Any, spell: Spell = str) -> Any:
    if name == "readout_input":
        return check_bool(spell(name), value)
    if name in _INT_LIMITS:
        return check_int(spell(name), value, *_INT_LIMITS[name])
    low, high, low_included = _FLOAT_LIMITS[name]
    return check_number(spell(name), value, low, high, low_open=not low_included)


def _validated(base: EsnOptions, changes: Mapping[str, Any] | None, spell: Spell = str) -> EsnOptions:
    """``base`` with ``changes`` applied, every value and their combination checked; errors name
    each option as ``spell`` writes it."""
    if changes is None:
        changes = {}
    if not isinstance(changes, Mapping):
        raise UserError(f"options must be a mapping of names to values, got {type(changes).__name__}")
    unknown = [str(k) for k in changes if k not in DEFAULTS]
    if unknown:
        raise UserError(unknown_name("option", unknown[0], list(DEFAULTS)))  # the options dialog lists them
    options = replace(base, **{name: _check_value(name, value, spell) for name, value in changes.items()})
    L, test, warmup = options.length, options.test, options.warmup
    if L - 1 - test <= warmup:  # the last step is only a target: L - 1 steps to share out
        length_, test_, warmup_ = spell("length"), spell("test"), spell("warmup")
        if test > L - 1:  # "its L - 1 steps, less test" would be negative
            raise UserError(f"{test_}={test} leaves no training steps: {length_}={L} has only {L - 1} steps "
                            f"before the last (which is only a target), fewer than {test_}: lower {test_} or "
                            f"raise {length_}")
        raise UserError(f"{test_}={test} and {warmup_}={warmup} leave no step to fit the readout on: of "
                        f"{length_}={L}'s {L - 1} steps before its last value (a target only), the test takes "
                        f"{test} and the warm-up {warmup}; lower {test_} or {warmup_}, or raise {length_}")
    return options


def parse_option_text(text: str) -> dict[str, Any]:
    """``"units=200 ridge=1e-6 readout_input=no"`` -> ``{"units": 200, "ridge": 1e-06, "readout_input": False}``.

    The labs' ``name=value`` text (:func:`rnnlab.labs._options.parse_assignments`): names and
    values are checked by :meth:`EsnLab.request`, not here; a piece that is not ``name=value``, or a
    name given twice, is a UserError.
    """
    return parse_assignments(text, example="units=200")


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scores:
    """Root-mean-square error and R^2 = 1 - sum(err^2) / sum((y - mean y)^2), as reservoirpy's."""

    rmse: float
    r2: float

    @classmethod
    def of(cls, truth: np.ndarray, forecast: np.ndarray) -> Scores:
        if truth.size == 0:
            return cls(math.nan, math.nan)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverged free run reaches Inf
            sq = float(np.sum((truth - forecast) ** 2))
        mean = float(truth.mean())
        spread = float(np.sum((truth - mean) ** 2))
        # a constant series (tau = 1 settles to 1.0) has no spread to explain: R^2 is undefined, not
        # 1 - noise / noise (a perfect forecast read "R² 0.000000"); rounding leaves ~1e-32 a step
        rounding = truth.size * (64 * np.finfo(np.float64).eps * abs(mean)) ** 2  # (relative: any scale)
        return cls(math.sqrt(sq / truth.size), 1.0 - sq / spread if spread > rounding else math.nan)


@dataclass(frozen=True)
class Generation:
    """Scores of the free run against the series from s[n_train + 1] on (the one-step test's
    targets): ``compared`` steps (those the series covers),
    ``horizon`` = generated steps before the error first exceeds ``threshold`` (``compared`` if it
    never does, then ``exceeded`` is False)."""

    steps: int
    compared: int
    scores: Scores
    horizon: int
    exceeded: bool
    threshold: float


@dataclass(frozen=True)
class EsnResult:
    """Everything one set of options computes; published by the lab in one assignment.

    Arrays (float64; t is the series' time, N the units, G the free-running steps):

    - ``series`` (L,): s[0 .. L-1], the Mackey-Glass series;
    - ``states`` (L-1, N): x_t after the true input s[t], t = 0 .. L-2 (one run through the
      whole series: the test part continues the training part);
    - ``onestep`` (L-1,): the readout of ``states[t]``, the forecast of s[t + 1];
    - ``generated`` (G,): the free run, ``generated[k]`` forecasts s[n_train + 1 + k] (``[0]`` is
      ``onestep[n_train]``, the one-step test's first forecast: both start from the true s[n_train]);
    - ``generated_states`` (G, N): the state each ``generated[k]`` is read from
      (``[0]`` is ``states[n_train]``, after the last training target s[n_train] as input, ``[k]``
      the state after the input ``generated[k - 1]``);
    - ``eigenvalues`` (N,) complex: eig(W), largest |lambda| first.
    """

    options: EsnOptions
    esn: EchoStateNetwork
    series: np.ndarray
    n_train: int
    states: np.ndarray
    onestep: np.ndarray
    generated: np.ndarray
    generated_states: np.ndarray
    eigenvalues: np.ndarray
    onestep_scores: Scores
    generation: Generation
    fit_seconds: float

    @property
    def effective_eigenvalues(self) -> np.ndarray:
        """(1 - a) + a lambda: the eigenvalues of the leaky update's linearisation (1 - a) I + a W at 0."""
        a = self.options.leak_rate
        return (1.0 - a) + a * self.eigenvalues

    def forecast_errors(self, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """``(times, |error|)`` over the forecast part, the times those of the values forecast: one-step,
        the test targets n_train+1 .. L-1; generative, the generated steps the series covers (from the
        same n_train+1)."""
        L, n = len(self.series), self.n_train
        if mode == "one-step":
            return np.arange(n + 1, L), np.abs(self.onestep[n:] - self.series[n + 1:])
        k = self.generation.compared
        return np.arange(n + 1, n + 1 + k), np.abs(self.generated[:k] - self.series[n + 1:n + 1 + k])


@dataclass
class SweepResult:
    """One option swept over ``values`` from the options ``base`` (its other options): per value
    the one-step test RMSE and R^2, the free run's RMSE and horizon (NaN until computed; filled in
    order while :meth:`EsnLab.sweep` runs, ``done`` of them so far) and whether its error exceeded
    the threshold (False where the horizon is every step compared, as :class:`Generation`'s)."""

    name: str
    values: np.ndarray
    base: EsnOptions
    rmse: np.ndarray = field(init=False)
    r2: np.ndarray = field(init=False)
    generation_rmse: np.ndarray = field(init=False)
    horizon: np.ndarray = field(init=False)
    exceeded: np.ndarray = field(init=False)
    done: int = 0
    status: str = "running"  # running | completed | stopped

    def __post_init__(self) -> None:
        self.rmse, self.r2, self.generation_rmse, self.horizon = (np.full(len(self.values), np.nan) for _ in range(4))
        self.exceeded = np.zeros(len(self.values), bool)

    def best(self) -> float | None:
        """The value with the lowest one-step RMSE so far (None before the first)."""
        scored = np.flatnonzero(np.isfinite(self.rmse[:self.done]))
        if not scored.size:
            return None
        return float(self.values[scored[np.argmin(self.rmse[scored])]])

    def rows(self) -> list[dict[str, Any]]:
        """The computed points as JSON-ready dicts."""
        return [{self.name: float(self.values[i]), "rmse": _finite(self.rmse[i]), "r2": _finite(self.r2[i]),
                 "generation_rmse": _finite(self.generation_rmse[i]),
                 "horizon": None if math.isnan(self.horizon[i]) else int(self.horizon[i]),
                 "exceeded": None if math.isnan(self.horizon[i]) else bool(self.exceeded[i])}
                for i in range(self.done)]


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


# ---------------------------------------------------------------------------------------------
# the computation
# ---------------------------------------------------------------------------------------------

_SERIES_CACHE: dict[tuple[int, int], np.ndarray] = {}


def _series(length: int, tau: int) -> np.ndarray:
    key = (length, tau)
    if key not in _SERIES_CACHE:
        if len(_SERIES_CACHE) > 8:
            _SERIES_CACHE.clear()
        _SERIES_CACHE[key] = mackey_glass(length, tau=tau)
        _SERIES_CACHE[key].setflags(write=False)
    return _SERIES_CACHE[key]


def compute(options: EsnOptions, spell: Spell = str) -> EsnResult:
    """Draw the reservoir of ``options``, fit its readout on the training part, run the one-step
    forecast over the whole series and the free run from the end of the training part. A
    reservoir the layer cannot draw is a UserError naming the options as ``spell`` writes them."""
    start = time.perf_counter()
    s = _series(options.length, options.tau)
    L = len(s)
    n = L - 1 - options.test  # training steps: inputs s[0 .. n-1], targets s[1 .. n]
    u = s[:, None, None]  # (L, 1, 1) time-major
    try:
        esn = EchoStateNetwork(1, options.units, spectral_radius=options.spectral_radius,
                               leak_rate=options.leak_rate, input_scaling=options.input_scaling,
                               connectivity=options.connectivity, ridge=options.ridge,
                               readout_input=options.readout_input, seed=options.seed)
    except ValueError:  # the options are checked: all the layer can still refuse is a W too sparse to rescale
        connectivity, units = spell("connectivity"), spell("units")
        raise UserError(f"{connectivity}={options.connectivity:g} is too sparse for {units}={options.units}: "
                        f"every draw of W was nilpotent (spectral radius 0); raise {connectivity} or {units}") from None
    try:
        esn.fit(u[:n], u[1:n + 1], warmup=options.warmup)
        onestep, _, trace = esn.forward(u[:-1])  # one run over every input: train, then test
        states = trace.get("h")[:, 0]
        # free run: from x_{n-1} with s[n] -> x_n, then outputs fed back. s[n] is the last training
        # target, known data, so it goes in as it is, and the first free forecast is of s[n+1], as the
        # one-step test's: both score the same steps. (Started from x_{n-1}, the run's first "forecast"
        # was the fitted value of s[n], a training target, counted in its RMSE and horizon, and a run
        # as long as the test ended one step before it: the plots' axes ended at 1998 and 1999.)
        generated, gen_trace = esn.generate(options.generate, u[n:n + 1], state=states[n - 1:n])
    except ValueError as exc:  # not expected of checked options; still one line, not a traceback
        raise UserError(str(exc)) from None
    onestep, generated = onestep[:, 0, 0], generated[:, 0, 0]
    G = options.generate
    compared = min(G, L - 1 - n)  # targets s[n+1 ..]: the test's, as many as the series has
    with np.errstate(over="ignore", invalid="ignore"):
        errors = np.abs(generated[:compared] - s[n + 1:n + 1 + compared])
    over = np.flatnonzero(~(errors <= options.threshold))  # NaN (a run gone to Inf - Inf) counts as over
    generation = Generation(G, compared, Scores.of(s[n + 1:n + 1 + compared], generated[:compared]),
                            int(over[0]) if over.size else compared, bool(over.size), options.threshold)
    return EsnResult(
        options=options, esn=esn, series=s, n_train=n, states=states, onestep=onestep, generated=generated,
        generated_states=gen_trace.get("h")[:, 0], eigenvalues=esn.eigenvalues(),
        onestep_scores=Scores.of(s[n + 1:], onestep[n:]), generation=generation,
        fit_seconds=time.perf_counter() - start,
    )


@dataclass(frozen=True)
class ModeView:
    """The columns of one mode, t = 0 .. C-1: ``states`` (C, N) x_t, ``inputs`` (C,) u_t (true
    or fed back), ``forecasts`` (C,) the readout of x_t (the forecast of s[t+1]) and ``targets``
    (C,) s[t+1] (NaN past the series' end)."""

    mode: str
    states: np.ndarray
    inputs: np.ndarray
    forecasts: np.ndarray
    targets: np.ndarray

    @property
    def columns(self) -> int:
        return len(self.inputs)


def mode_view(result: EsnResult, mode: str) -> ModeView:
    """The time columns of ``mode`` (see :class:`ModeView`)."""
    s, n = result.series, result.n_train
    if mode == "one-step":
        return ModeView(mode, result.states, s[:-1], result.onestep, s[1:])
    # columns 0 .. n are the one-step mode's (x_n after the true s[n], the last training target);
    # from n + 1 each input is the previous forecast: G forecasts, of s[n+1] .. s[n+G]
    G = result.generation.steps
    columns = n + G
    targets = np.full(columns, np.nan)
    available = min(columns, len(s) - 1)
    targets[:available] = s[1:available + 1]
    return ModeView(
        mode,
        np.concatenate([result.states[:n + 1], result.generated_states[1:]]),
        np.concatenate([s[:n + 1], result.generated[:G - 1]]),
        np.concatenate([result.onestep[:n], result.generated]),
        targets,
    )


# ---------------------------------------------------------------------------------------------
# the lab
# ---------------------------------------------------------------------------------------------

class EsnLab:
    """An echo state network on the Mackey-Glass series (see the module docstring).

    Read :attr:`options` and :attr:`result` (replaced as a whole by each applied change),
    :attr:`mode`, :attr:`cursor`, :meth:`view` (the columns of the current mode) and
    :attr:`sweep_result`. Build with :meth:`open`.
    """

    name = "esn"

    def __init__(self, options: EsnOptions | None = None, spell: Spell = str) -> None:
        options = options or EsnOptions()
        self.spell = spell  # how errors name an option (see Spell)
        self.lock = HandoffLock()
        self.result: EsnResult = compute(options, spell)
        self.requested: EsnOptions = options  # what the next apply() computes
        self.mode = "one-step"
        self._cursor = self.result.n_train  # the first forecast step
        self.sweep_result: SweepResult | None = None
        self._views: dict[str, tuple[EsnResult, ModeView]] = {}

    @classmethod
    def open(cls, options: Mapping[str, Any] | None = None, spell: Spell = str) -> EsnLab:
        """A lab on ``options`` (any subset of :data:`DEFAULTS`; the rest default), fitted and
        forecast. UserError naming an unknown option or a bad value, as ``spell`` writes its name
        (the CLI: its flag)."""
        return cls(cls.checked_options(options, spell), spell)

    @staticmethod
    def checked_options(options: Mapping[str, Any] | None = None, spell: Spell = str) -> EsnOptions:
        """``options`` (any subset of :data:`DEFAULTS`) checked and completed, as :meth:`open` fits
        them; UserError as it raises one."""
        return _validated(EsnOptions(), options, spell)

    # ------------------------------------------------------------------ reading
    @property
    def options(self) -> EsnOptions:
        """The options of the current :attr:`result`."""
        return self.result.options

    @property
    def pending(self) -> bool:
        """Whether a requested change has not been applied yet."""
        return self.requested != self.result.options

    @property
    def n_train(self) -> int:
        """Training steps (inputs s[0 .. n_train-1]); also the first forecast column."""
        return self.result.n_train

    def view(self, mode: str | None = None) -> ModeView:
        """The columns of ``mode`` (default: the current one); made once per result and mode (the
        generative one is a concatenation as large as the states)."""
        result, mode = self.result, mode or self.mode
        cached = self._views.get(mode)
        if cached is None or cached[0] is not result:
            cached = self._views[mode] = (result, mode_view(result, mode))
        return cached[1]

    @property
    def columns(self) -> int:
        """Time columns of the current mode: L - 1 one-step, n_train + generate generative."""
        return self.view().columns

    @property
    def cursor(self) -> int:
        """The time column under the cursor (0 .. columns - 1)."""
        return max(0, min(self._cursor, self.columns - 1))

    def cursor_values(self) -> dict[str, Any]:
        """What the cursor column holds: t, the part (warm-up, train, test or free run: the
        warm-up's steps are run but left out of the readout's fit), u_t, the forecast of s[t+1] and
        its target and error, and the state's size: ||x_t||, mean |x_t|, and the fraction of units
        with |x_t| > 0.95 (saturated tanh)."""
        view, t = self.view(), self.cursor
        x = view.states[t]
        target = float(view.targets[t])
        forecast = float(view.forecasts[t])
        if t < self.n_train:
            part = "warm-up" if t < self.result.options.warmup else "train"
        else:
            part = "free run" if self.mode == "generative" else "test"
        return {"t": t, "part": part, "input": float(view.inputs[t]), "forecast": forecast,
                "target": target, "error": forecast - target if math.isfinite(target) else math.nan,
                "norm": float(np.linalg.norm(x)), "mean_abs": float(np.abs(x).mean()),
                "saturated": float(np.mean(np.abs(x) > 0.95))}

    # ------------------------------------------------------------------ changing the options
    def request(self, changes: Mapping[str, Any] | None = None, **kwargs: Any) -> EsnOptions:
        """Record a change of options for the next :meth:`apply` (checked now, on top of the
        options already requested; UserError naming a bad one, and nothing changes)."""
        self.requested = _validated(self.requested, {**(changes or {}), **kwargs}, self.spell)
        return self.requested

    def apply(self, should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Compute the requested options (draw, fit, forecast) if they differ from the current
        ones; returns whether anything changed. Holds :attr:`lock`; gives up without a change if
        ``should_stop()`` is true once it holds it (a newer request is on its way)."""
        with self.lock:
            target = self.requested
            if should_stop() or target == self.result.options:
                return False
            try:
                result = compute(target, self.spell)
            except Exception:
                if self.requested == target:  # not applied: forget it, so the views match the model
                    self.requested = self.result.options
                raise
            self._take(result)
            return True

    def configure(self, changes: Mapping[str, Any] | None = None, *, apply: bool = True, **kwargs: Any) -> EsnOptions:
        """Change options (``lab.configure(spectral_radius=1.5)``) and refit; ``apply=False`` only
        requests the change. Returns the requested options."""
        options = self.request(changes, **kwargs)
        if apply:
            self.apply()
        return options

    def nudge(self, name: str, direction: int, *, apply: bool = True) -> EsnOptions:
        """Step the spectral radius (0.1) or the leak rate (0.05) up (``direction`` > 0) or down
        from the requested value, within its range, and refit (see :meth:`configure`)."""
        if name not in NUDGE_STEPS:
            raise UserError(f"only {' and '.join(NUDGE_STEPS)} can be nudged, not {name!r}")
        step, lowest = NUDGE_STEPS[name]
        low, high, _ = _FLOAT_LIMITS[name]
        value = getattr(self.requested, name) + (step if direction > 0 else -step)
        value = round(min(max(value, lowest), high), 10)
        return self.configure({name: value}, apply=apply)

    def new_seed(self, seed: int | None = None, *, apply: bool = True) -> int:
        """Draw another reservoir (the next seed, or ``seed``), refit; returns the seed."""
        if seed is None:  # the next, after the largest the first (it said "got 9223372036854775808")
            seed = self.requested.seed + 1 if self.requested.seed < SEED_MAX else 0
        return self.configure(seed=seed, apply=apply).seed

    # ------------------------------------------------------------------ the model's actions
    def fit(self) -> Scores:
        """Draw the reservoir again and refit the readout in closed form (with the requested
        options); returns the one-step test scores. Deterministic: the same options give the
        same numbers."""
        with self.lock:
            self._take(compute(self.requested, self.spell))
        return self.result.onestep_scores

    def _take(self, result: EsnResult) -> None:
        """Make ``result`` the lab's, the cursor clamped to its columns now: a shorter series left
        unclamped would put the cursor elsewhere once the mode changes (:meth:`set_mode`)."""
        self.result = result
        self._cursor = self.cursor

    def predict(self) -> tuple[np.ndarray, Scores]:
        """One-step forecasts of the test part (n_test,), continuing from the training part's
        final state, and their scores."""
        r = self.result
        return r.onestep[r.n_train:].copy(), r.onestep_scores

    def generate(self, steps: int | None = None) -> Generation:
        """Run freely for ``steps`` (default: the ``generate`` option; a new value becomes the
        option) from the end of the training part; returns the scores of the run."""
        if steps is not None and steps != self.requested.generate:
            self.configure(generate=steps)
        elif self.pending:
            self.apply()
        return self.result.generation

    # ------------------------------------------------------------------ mode and cursor
    def set_mode(self, mode: str) -> str:
        """"one-step" or "generative" (the cursor stays on its time step where it still exists)."""
        if mode not in MODES:
            raise UserError(f"mode {choice_refusal(mode, MODES)}")
        self.mode = mode
        self._cursor = self.cursor
        return mode

    def toggle_mode(self) -> str:
        return self.set_mode(MODES[1 - MODES.index(self.mode)])

    def move_to(self, t: int) -> int:
        """Put the cursor on column ``t`` (clamped to the columns)."""
        self._cursor = max(0, min(int(t), self.columns - 1))
        return self._cursor

    def move_cursor(self, delta: int) -> int:
        return self.move_to(self.cursor + delta)

    def jump_start(self) -> int:
        return self.move_to(0)

    def jump_end(self) -> int:
        return self.move_to(self.columns - 1)

    def jump_boundary(self) -> int:
        """To the first forecast column (t = n_train, in both modes: x_t after the true s[n_train],
        whose readout is the first forecast of the test and of the free run)."""
        return self.move_to(self.n_train)

    # ------------------------------------------------------------------ the long action
    def sweep(self, name: str = "spectral_radius", values=None, should_stop: Callable[[], bool] = lambda: False,
              on_point: Callable[[SweepResult], None] | None = None) -> SweepResult:
        """Refit once per value of option ``name`` (default grid: :data:`SWEEP_VALUES`), every
        other option as now, and record the scores; the lab's own model is left as it is.

        The result is :attr:`sweep_result` from the start and fills in order (``on_point`` is
        called after each value); each point holds :attr:`lock`. Stops early, status "stopped",
        when ``should_stop()`` turns true. A value at which the layer cannot draw a reservoir
        (too sparse to rescale) gets NaN scores and the sweep goes on. UserError for an option
        that cannot be swept or a bad value (all checked before the first fit).
        """
        if name not in SWEEP_VALUES:
            raise UserError(f"{self.spell('sweep')} {choice_refusal(name, list(SWEEP_VALUES))}")
        grid = SWEEP_VALUES[name] if values is None else np.asarray(values, dtype=np.float64).ravel()
        if grid.size == 0:
            raise UserError("sweep needs at least one value")
        base = self.options
        candidates = [_validated(base, {name: float(v)}, self.spell) for v in grid]
        result = SweepResult(name, grid.copy(), base)
        self.sweep_result = result
        try:
            for i, options in enumerate(candidates):
                if should_stop():
                    result.status = "stopped"
                    return result
                try:
                    with self.lock:
                        point = compute(options, self.spell)
                except UserError:  # a reservoir the layer refuses at this value: no scores, go on
                    pass
                else:
                    result.rmse[i], result.r2[i] = point.onestep_scores.rmse, point.onestep_scores.r2
                    result.generation_rmse[i] = point.generation.scores.rmse
                    result.horizon[i], result.exceeded[i] = point.generation.horizon, point.generation.exceeded
                result.done = i + 1
                if on_point is not None:
                    on_point(result)
            result.status = "completed"
        finally:
            if result.status == "running":  # a point raised something else
                result.status = "stopped"
        return result

    def sweep_is_current(self) -> bool:
        """Whether :attr:`sweep_result` was made from the current options (but the swept one)."""
        s = self.sweep_result
        return s is not None and replace(s.base, **{s.name: getattr(self.options, s.name)}) == self.options

    def use_sweep_best(self, *, apply: bool = True) -> EsnOptions:
        """Set the swept option to the last sweep's best value (:meth:`SweepResult.best`) and refit:
        the one-step scores are then those of the sweep's best row (the same reservoir, refit
        deterministically). ``apply=False`` only requests it. Returns the requested options.

        UserError, and nothing changes, when there is no sweep, while it runs, when it scored no
        value, or when it was made with other options than those requested (but the swept one):
        its best value was the best of other reservoirs."""
        s = self.sweep_result
        if s is None:
            raise UserError("no sweep yet: sweep an option first")
        if s.status == "running":
            raise UserError(f"the sweep of {self.spell(s.name)} is still running ({s.done}/{len(s.values)}): "
                            f"its best value may change")
        best = s.best()
        if best is None:
            raise UserError(f"the sweep of {self.spell(s.name)} scored no value: it has no best one")
        changed = [f"{self.spell(name)}={as_typed(value)} (now {as_typed(getattr(self.requested, name))})"
                   for name, value in asdict(s.base).items()
                   if name != s.name and value != getattr(self.requested, name)]
        if changed:
            raise UserError(f"the sweep of {self.spell(s.name)} was made with {', '.join(changed)}: its best "
                            f"value was for other reservoirs; sweep again")
        return self.configure({s.name: best}, apply=apply)

    # ------------------------------------------------------------------ results out
    def summary(self) -> dict[str, Any]:
        """The options and every figure, JSON-ready (what ``rnnlab esn --json`` prints); ``fit_ms``
        is the wall time of the last computation (the first in a process includes loading the
        kernels).

        After a sweep, ``sweep`` holds ``name``, ``status`` (running, completed or stopped),
        ``best`` (the value with the lowest one-step RMSE so far), ``points`` (one dict per value
        computed), ``options`` (the options it was made with; the swept one there is its value at
        the start) and ``current``: whether those options (but the swept one) are still ``options``.
        False when the options changed after the sweep (another seed, more units): its points and
        best value then describe other reservoirs than this summary's."""
        r = self.result
        g = r.generation
        out: dict[str, Any] = {
            "lab": self.name,
            "options": asdict(r.options),
            "train_steps": r.n_train,
            "test_steps": r.options.test,
            "spectral_radius": float(np.abs(r.eigenvalues).max()),
            "effective_radius": float(np.abs(r.effective_eigenvalues).max()),
            "one_step": {"rmse": _finite(r.onestep_scores.rmse), "r2": _finite(r.onestep_scores.r2)},
            "generation": {"steps": g.steps, "compared": g.compared, "rmse": _finite(g.scores.rmse),
                           "r2": _finite(g.scores.r2), "horizon": g.horizon, "exceeded": g.exceeded,
                           "threshold": g.threshold},
            "fit_ms": round(1e3 * r.fit_seconds, 3),
        }
        if self.sweep_result is not None:
            s = self.sweep_result
            out["sweep"] = {"name": s.name, "status": s.status, "best": s.best(), "points": s.rows(),
                            "current": self.sweep_is_current(), "options": asdict(s.base)}
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """Every recorded internal, by name (what :meth:`export` writes): ``series``, ``states``
        (the trace's "h" in one-step mode), ``onestep``, ``generated``, ``generated_states``,
        ``eigenvalues`` (complex), ``effective_eigenvalues``, the network's state dict
        (``weight_ih``, ``weight_hh``, ``bias``, ``readout.weight``, ``readout.bias``), the sweep
        (``sweep.values``, ``sweep.rmse``, ...) if one ran, and ``meta`` (JSON: the summary and
        the layout of each array). A sweep is written whether or not it is current: ``meta``'s
        ``sweep.current`` says whether it was made with the options of the rest of the file, and
        ``sweep.options`` which options it was made with (see :meth:`summary`)."""
        r = self.result
        arrays: dict[str, np.ndarray] = {
            "series": r.series, "states": r.states, "onestep": r.onestep, "generated": r.generated,
            "generated_states": r.generated_states, "eigenvalues": r.eigenvalues,
            "effective_eigenvalues": r.effective_eigenvalues, **r.esn.state_dict(),
        }
        if self.sweep_result is not None:
            s = self.sweep_result
            arrays.update({"sweep.values": s.values, "sweep.rmse": s.rmse, "sweep.r2": s.r2,
                           "sweep.generation_rmse": s.generation_rmse, "sweep.horizon": s.horizon,
                           "sweep.exceeded": s.exceeded})
        meta = {**self.summary(), "layout": {
            "series": "(L,) s[0..L-1]",
            "states": "(L-1, N): x_t after the true input s[t]",
            "onestep": "(L-1,): readout of states[t], the forecast of s[t+1]",
            "generated": f"(G,): free run, generated[k] forecasts s[{r.n_train + 1} + k]",
            "generated_states": "(G, N): the state generated[k] is read from",
            "eigenvalues": "(N,) complex: eig(weight_hh), largest |lambda| first",
            "effective_eigenvalues": "(N,) complex: (1 - leak_rate) + leak_rate * eigenvalues",
        }}
        if self.sweep_result is not None:
            s = self.sweep_result
            made = "these options" if self.sweep_is_current() else "sweep.options (not these: sweep.current is false)"
            meta["layout"].update({
                "sweep.values": f"(V,): the values of {s.name} in sweep order; the first len(sweep.points) have "
                                f"scores, made with {made}",
                "sweep.rmse": "(V,): one-step test RMSE per value (NaN: not computed, or no reservoir)",
                "sweep.r2": "(V,): one-step test R^2 per value",
                "sweep.generation_rmse": "(V,): the free run's RMSE per value",
                "sweep.horizon": "(V,): the free run's steps within the threshold per value",
                "sweep.exceeded": "(V,) bool: whether the free run's error exceeded the threshold (False: the horizon "
                                  "is every step compared, or no score)",
            })
        arrays["meta"] = np.array(json.dumps(meta))
        return arrays

    @property
    def export_name(self) -> str:
        """The file name an export is offered under (and a directory given instead is told to hold)."""
        return "esn.npz"

    def export(self, path: str | Path, *, replace: bool = True) -> Path:
        """Write :meth:`arrays` to ``path`` (``.npz``, atomically); returns the path written.
        ``replace=False`` refuses an existing file (:class:`~rnnlab.errors.TargetExistsError`)."""
        path = export_target(path, self.export_name, replace=replace)
        atomic_save_npz(path, self.arrays(), replace=replace)  # an OSError leaves as one line naming the path
        return path

    def __repr__(self) -> str:
        o = self.options
        return (f"EsnLab(units={o.units}, spectral_radius={o.spectral_radius:g}, leak_rate={o.leak_rate:g}, "
                f"seed={o.seed}, rmse={self.result.onestep_scores.rmse:.3g})")


def format_r2(value: float | None, decimals: int) -> str:
    """R² cut (not rounded) to ``decimals``, as the ESN lab and ``rnnlab esn`` write it: 0.999968 is
    "0.9999" at 4, where rounding wrote the perfect fit it is not ("1.0000"). Cut in decimal (0.57 *
    10**4 is 5699.999... in binary); a diverged model's huge negative R² in e-notation."""
    if value is None or not math.isfinite(value):
        return "-"
    if abs(value) >= 1e6:
        return format(value, ".3g")
    cut = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_FLOOR)  # (np.float64 too)
    return format(cut, f".{decimals}f")
