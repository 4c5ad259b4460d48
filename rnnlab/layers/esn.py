"""Echo state network: a fixed random leaky-tanh reservoir and a linear readout fitted in closed form.

    x_t = (1 - a) x_{t-1} + a tanh(W x_{t-1} + W_in u_t + b)        reservoir (never trained)
    y_t = W_out z_t + b_out,   z_t = x_t  (or [x_t; u_t])             readout (ridge regression)

The reservoir follows reservoirpy 0.3's ``Reservoir`` defaults (``W`` normal, ``Win`` and the bias
Bernoulli +-1, sparse, ``W`` rescaled to the requested spectral radius; the "internal" leaky
equation above) and the readout its ``Ridge`` node (a bias term, ridge penalty, closed form), so
reservoirpy's published setups carry over parameter for parameter; the random draws differ.

Shapes are time-major as everywhere in rnnlab: inputs u (T, B, I), targets and outputs (T, B, O),
states (T, B, N) with N = ``reservoir_size``; a reservoir state passed in or out is (B, N).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import kernels
from ..kernels import esn as esn_kernels
from ._params import (CallsForward, IncompatibleKeys, LiveParameters, NamedParameters, Part, array_shape, assign_params,
                      check_array, check_bool, check_forward_memory, check_keys, check_param_memory, check_params,
                      check_positive_int, check_seed, load_entry, parse_dtype, shape_mismatches)
from .trace import Trace

__all__ = ["EchoStateNetwork", "ridge_readout"]


#: Attempts at drawing a reservoir whose W is not nilpotent (a cycle-free sparsity pattern has
#: every eigenvalue 0 and cannot be rescaled); only very sparse, tiny reservoirs ever need a redraw.
_MAX_DRAWS = 100

#: Names of the reservoir's arrays and of the readout's in :meth:`EchoStateNetwork.state_dict`.
RESERVOIR_KEYS = ("weight_ih", "weight_hh", "bias")
READOUT_KEYS = ("readout.weight", "readout.bias")


# ---------------------------------------------------------------------------------------------
# argument checks: one-line ValueErrors naming the argument
# ---------------------------------------------------------------------------------------------


def _real(name: str, value: Any, low: float, high: float = math.inf, *, low_open: bool = True,
          high_open: bool = False) -> float:
    """``value`` as a float inside the interval (low, high] (or [low, ...) / ..., high) as flagged)."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open or high == math.inf else ']'}"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    v = float(value)
    below = v <= low if low_open else v < low
    above = v >= high if (high_open or high == math.inf) else v > high
    if not math.isfinite(v) or below or above:
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return v


# ---------------------------------------------------------------------------------------------
# the ridge readout
# ---------------------------------------------------------------------------------------------

def ridge_readout(features: np.ndarray, targets: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """The readout (W_out (O, F), b_out (O,)), float64, minimising

        J = ||Y - (X W_out^T + b_out)||^2 + ridge ||W_out||^2

    over the rows of ``features`` X (M, F) (reservoir states, maybe with the inputs beside them)
    and ``targets`` Y (M, O) (any leading shape, flattened to rows).

    The bias is not penalised, so it is eliminated by centring: with the means x_bar and y_bar,

        W_out = argmin_W ||Y_c - X_c W^T||^2 + ridge ||W||^2,    b_out = y_bar - W_out x_bar,

    and that ridge problem is solved as the ordinary least-squares problem of the stacked system

        [X_c; sqrt(ridge) I] W^T = [Y_c; 0]

    by a Householder QR factorisation (R of the stacked matrix with [Y_c; 0] appended gives R and
    Q^T [Y_c; 0] at once, then one triangular solve), not through the normal equations
    (X_c^T X_c + ridge I) W^T = X_c^T Y_c, which square the condition number. Reservoir states
    are strongly correlated: on the Mackey-Glass benchmark cond(X_c) is about 3e6, so X_c^T X_c
    is near 1e13. At ridge = 1e-5 both give the same forecasts; at ridge <= 1e-12 the normal
    equations lose accuracy (median test RMSE 4.8e-4 against 4.1e-4 at ridge 1e-12) and at
    ridge = 0 they may be singular. The price: about 2.6x the normal equations' time (M = 20000,
    F = 1000: 2.2 s against 0.8 s; M = 400, F = 100: 1.4 ms against 0.3 ms). ``ridge = 0`` is
    plain least squares by SVD (LAPACK ``gelsd``: the minimum-norm solution if X_c is rank
    deficient), singular values below ``eps * max(M, F)`` of the largest taken as zero, eps the
    features' own (float32's for a float32 reservoir: scipy's float64 cutoff kept its rounding noise
    as directions, readout weights near 1e12 whose training error was 1e5 where the mean's is 1).
    The solve runs with BLAS single-threaded, like the kernels (on 2 shared cores a
    multithreaded LAPACK QR ran up to 8x slower).
    """
    import scipy.linalg  # here, not at import: it is a quarter of the lab's start-up otherwise

    given = np.asarray(features)
    eps = float(np.finfo(given.dtype if given.dtype.kind == "f" else np.float64).eps)
    X = np.asarray(given, dtype=np.float64)
    X = X.reshape(-1, X.shape[-1])
    Y = np.asarray(targets, dtype=np.float64).reshape(X.shape[0], -1)
    M, F = X.shape
    x_bar, y_bar = X.mean(axis=0), Y.mean(axis=0)
    with kernels.blas_single_threaded():
        if ridge > 0.0:
            stacked = np.zeros((M + F, F + Y.shape[1]))
            stacked[:M, :F] = X - x_bar
            stacked[:M, F:] = Y - y_bar
            stacked[M:, :F] = math.sqrt(ridge) * np.eye(F)
            r = np.linalg.qr(stacked, mode="r")  # [[R, Q^T rhs], [0, residual]]
            w_t = scipy.linalg.solve_triangular(r[:F, :F], r[:F, F:], check_finite=False)  # W_out^T (F, O)
        else:
            w_t = scipy.linalg.lstsq(X - x_bar, Y - y_bar, cond=eps * max(M, F), lapack_driver="gelsd",
                                     check_finite=False)[0]
    w_out = np.ascontiguousarray(w_t.T)
    return w_out, y_bar - w_out @ x_bar


# ---------------------------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------------------------

class EchoStateNetwork(NamedParameters, CallsForward):
    """Echo state network: a fixed random reservoir and a ridge-regression readout.

    Parameters
    ----------
    input_size : int
        Features of the input u_t (I).
    reservoir_size : int
        Units of the reservoir (N).
    output_size : int or None
        Features of the target/output (O); None takes it from the targets given to :meth:`fit`.
    spectral_radius : float, default 1.25
        W is rescaled so that its largest |eigenvalue| equals this (> 0). Values above 1 are
        common with leaky units: the effective recurrent matrix is (1 - a) I + a W.
    leak_rate : float, default 0.3
        a in (0, 1]: x_t = (1 - a) x_{t-1} + a tanh(...). 1 is a plain tanh RNN.
    input_scaling : float, default 1.0
        The non-zero entries of W_in are +-input_scaling (> 0).
    connectivity : float, default 0.1
        Fraction of W's entries that are non-zero, in (0, 1] (at least one); those are N(0, 1)
        before the spectral rescaling.
    input_connectivity : float, default 0.1
        Fraction of W_in's entries that are non-zero (at least one), and of the bias's, in (0, 1].
    bias_scaling : float, default 1.0
        The non-zero entries of the reservoir bias b are +-bias_scaling (>= 0; 0 = no bias).
    ridge : float, default 1e-5
        Ridge (Tikhonov) penalty of the readout's weights (>= 0); the readout bias is not penalised.
    readout_input : bool, default False
        False: the readout sees the reservoir state only, y_t = W_out x_t + b_out (reservoirpy's
        ``reservoir >> readout``). True: it also sees the input, y_t = W_out [x_t; u_t] + b_out
        (the "extended state" of Jaeger's and Lukosevicius's ESN papers; W_out is (O, N + I)).
    dtype : "float32" or "float64", default "float64"
        Of the weights and of every array in and out. float64 by default (the library's layers
        default to float32): an ESN is cheap to run and this keeps it reference grade; the readout
        is always solved in float64. float32 (the kernels' fast tanh) gave the same one-step
        Mackey-Glass RMSE to three digits.
    seed : int or None
        Seeds the reservoir's random draws (None: fresh randomness).

    The defaults are reservoirpy 0.3's (``Reservoir(units, lr=0.3, sr=1.25)``, its default input
    scaling 1, connectivities 0.1, bias scaling 1; ``Ridge(ridge=1e-5)``).

    Workflow: ``final = esn.fit(u, y, warmup=100)``; ``y_hat = esn.predict(u_test, state=final)``
    (one step ahead, teacher forced); ``y_gen, trace = esn.generate(n, u_warm)`` (free running).
    ``run`` gives the reservoir states alone (no readout needed); every method that runs the
    reservoir returns a :class:`~rnnlab.layers.trace.Trace` whose record ``"h"`` holds the states
    (``trace["h"]`` is (1, T, B, N), ``trace.get("h")`` is (T, B, N)), for heatmaps.
    """

    mode = "ESN"
    record_names = ("h",)

    def __init__(
        self,
        input_size: int,
        reservoir_size: int,
        *,
        output_size: int | None = None,
        spectral_radius: float = 1.25,
        leak_rate: float = 0.3,
        input_scaling: float = 1.0,
        connectivity: float = 0.1,
        input_connectivity: float = 0.1,
        bias_scaling: float = 1.0,
        ridge: float = 1e-5,
        readout_input: bool = False,
        dtype: str = "float64",
        seed: int | None = None,
    ) -> None:
        self.input_size = check_positive_int("input_size", input_size)
        self.reservoir_size = check_positive_int("reservoir_size", reservoir_size)
        self._requested_output_size = None if output_size is None else check_positive_int("output_size", output_size)
        self.spectral_radius = _real("spectral_radius", spectral_radius, 0.0)
        self.leak_rate = _real("leak_rate", leak_rate, 0.0, 1.0)
        self.input_scaling = _real("input_scaling", input_scaling, 0.0)
        self.connectivity = _real("connectivity", connectivity, 0.0, 1.0)
        self.input_connectivity = _real("input_connectivity", input_connectivity, 0.0, 1.0)
        self.bias_scaling = _real("bias_scaling", bias_scaling, 0.0, low_open=False)
        self.ridge = _real("ridge", ridge, 0.0, low_open=False)
        self.readout_input = check_bool("readout_input", readout_input)
        self.dtype = parse_dtype(dtype, none_means="float64")
        self._params: dict[str, np.ndarray] = {}
        self._readout: dict[str, np.ndarray] | None = None
        self._fitted_outputs: int | None = None  # O, once fitted: what the readout's arrays are checked against
        # refused before the reservoir is drawn: numpy's MemoryError names neither the network nor a size
        N, I = self.reservoir_size, self.input_size
        check_param_memory(f"EchoStateNetwork({I}, {N})", [(N, I), (N, N), (N,)], self.dtype, "reservoir_size")
        self.reset_parameters(seed)  # sets self.seed

    # ------------------------------------------------------------------ the reservoir's weights
    def reset_parameters(self, seed: int | None = None) -> None:
        """Draw a new reservoir (and forget the readout); reproducible from ``seed`` (recorded as
        :attr:`seed`). The new values are written into the reservoir's existing arrays.

        - W (N, N): round(connectivity * N^2) entries (at least one) at distinct random positions,
          each N(0, 1); redrawn if its sparsity pattern has no cycle (then W is nilpotent); then
          scaled by spectral_radius / max|eig(W)| (eigenvalues computed in float64).
        - W_in (N, I): round(input_connectivity * N * I) entries (at least one), each
          +-input_scaling with equal probability.
        - b (N,): round(input_connectivity * N) entries, each +-bias_scaling (all zero if
          bias_scaling is 0).
        """
        seed = check_seed(seed)
        rng = np.random.default_rng(seed)
        N, I = self.reservoir_size, self.input_size
        for _ in range(_MAX_DRAWS):
            w = _sparse(rng, (N, N), self.connectivity, rng.standard_normal)
            if _has_cycle(w):
                with kernels.blas_single_threaded():  # see eigenvalues()
                    radius = float(np.abs(np.linalg.eigvals(w)).max())
                if radius > 0.0:
                    break
        else:
            raise ValueError(
                f"connectivity={self.connectivity:g} is too sparse for reservoir_size={N}: every draw of W "
                f"was nilpotent (spectral radius 0); raise connectivity or reservoir_size"
            )
        with np.errstate(over="ignore", invalid="ignore"):  # said just below as what it is
            w *= self.spectral_radius / radius
        if not np.all(np.abs(w) <= np.finfo(self.dtype).max):
            raise ValueError(f"spectral_radius={self.spectral_radius:g} scales W's entries beyond {self.dtype.name}'s "
                             f"range (the W drawn has spectral radius {radius:.3g} before scaling): choose a smaller "
                             "spectral_radius")
        w_in = self.input_scaling * _sparse(rng, (N, I), self.input_connectivity, lambda k: _signs(rng, k))
        if self.bias_scaling > 0.0:
            bias = self.bias_scaling * _sparse(rng, (N,), self.input_connectivity, lambda k: _signs(rng, k),
                                               at_least_one=False)
        else:
            bias = np.zeros(N)
        assign_params(self._params, {"weight_ih": w_in.astype(self.dtype), "weight_hh": w.astype(self.dtype),
                                     "bias": bias.astype(self.dtype)})
        self._readout = None
        self.seed = seed

    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of the (scaled) recurrent matrix W, complex (N,), largest |lambda| first.

        max |lambda| is the spectral radius; plotted against the unit circle it shows how far
        the reservoir is from the edge of stability. Computed in float64 from the current W
        (after :meth:`load_state_dict`, from the loaded one).

        LAPACK runs with BLAS single-threaded, as the kernels and the readout do: on 2 shared,
        busy cores a multithreaded eig of a 100 x 100 W took ~200 ms against ~2 ms single-threaded.
        """
        with kernels.blas_single_threaded():
            lam = np.linalg.eigvals(self._reservoir()["weight_hh"].astype(np.float64)).astype(np.complex128)
        return lam[np.argsort(-np.abs(lam), kind="stable")]  # complex even where every lambda is real (eigvals)

    @property
    def _features(self) -> int:
        """F, the readout's inputs: N, or N + I with ``readout_input``."""
        return self.reservoir_size + (self.input_size if self.readout_input else 0)

    @property
    def fitted(self) -> bool:
        """True once the readout exists (after :meth:`fit`, or loaded by :meth:`load_state_dict`)."""
        return self._readout is not None

    @property
    def output_size(self) -> int | None:
        """O: the readout's outputs once fitted, else the ``output_size`` asked for (maybe None)."""
        return self._requested_output_size if self._readout is None else self._fitted_outputs

    def parameters(self) -> LiveParameters:
        """The live arrays by :meth:`state_dict`'s names: the reservoir's, and once fitted the
        readout's. Editing one in place, or replacing it with an array of the same shape and dtype,
        changes the network (its next pass checks, ValueError); :meth:`fit` replaces the readout."""
        return LiveParameters(self._parameter_parts)

    @property
    def num_parameters(self) -> int:
        """Scalars in :meth:`parameters`: the reservoir's (fixed) and, once fitted, the readout's."""
        return sum(p.size for p in self.parameters().values())

    def _parameter_parts(self) -> list[Part]:
        return [("", self._params, None)] + ([("", self._readout, None)] if self._readout is not None else [])

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every array: ``weight_ih`` = W_in (N, I), ``weight_hh`` = W (N, N) (already
        scaled), ``bias`` = b (N,), and once fitted ``readout.weight`` = W_out (O, N) (with
        ``readout_input``: (O, N + I), the input's columns last) and ``readout.bias`` = b_out (O,)."""
        state = {name: value.copy() for name, value in self._params.items()}
        if self._readout is not None:
            state.update({name: value.copy() for name, value in self._readout.items()})
        return state

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Load arrays as :meth:`state_dict` gives them; the readout keys are optional (both or neither:
        without them the network is unfitted). Values are converted to the network's dtype.

        ``strict=False``, as torch's: a reservoir array the state lacks keeps its value, a key of none
        is ignored, and a state without the readout keeps the network's (listed missing if fitted).
        Returns torch's ``(missing_keys, unexpected_keys)``.

        Raises ValueError naming any missing, extra, misshapen or non-finite entry; on error the
        network is left unchanged. The reservoir's values are copied into its existing arrays, as
        torch's ``load_state_dict`` does. The hyperparameters (leak rate, ridge, ...) are not
        part of the state: construct the network with the ones the weights were made with.
        """
        N, I = self.reservoir_size, self.input_size
        shapes: dict[str, tuple[int, ...]] = {"weight_ih": (N, I), "weight_hh": (N, N), "bias": (N,)}
        keys = check_keys(RESERVOIR_KEYS, state, allowed=RESERVOIR_KEYS + READOUT_KEYS, strict=strict,
                          misshapen=shape_mismatches(shapes, state))  # each wrong key and shape, in one message
        has_readout = [k in state for k in READOUT_KEYS]
        if any(has_readout) and not all(has_readout):
            absent = READOUT_KEYS[has_readout.index(False)]
            raise ValueError(f"state dict has only half of the readout: {absent!r} is missing")
        if all(has_readout):
            O = self._requested_output_size
            if O is None:  # taken from the readout's bias (O,)
                out = array_shape("state dict entry 'readout.bias'", state["readout.bias"])
                if len(out) != 1 or out[0] < 1:
                    raise ValueError(f"state dict entry 'readout.bias' has shape {out}, expected (O,)")
                O = out[0]
            shapes.update({"readout.weight": (O, self._features), "readout.bias": (O,)})
        loaded = {name: load_entry(name, state[name], shape, self.dtype) if name in state else self._params[name]
                  for name, shape in shapes.items()}
        assign_params(self._params, {k: loaded[k] for k in RESERVOIR_KEYS})
        if all(has_readout) or strict:
            self._readout = {k: loaded[k] for k in READOUT_KEYS} if all(has_readout) else None
            self._fitted_outputs = int(loaded["readout.bias"].shape[0]) if all(has_readout) else None
        elif self._readout is not None:  # not strict: the network keeps its readout
            keys.missing_keys.extend(READOUT_KEYS)
        return keys

    def __repr__(self) -> str:
        out = "" if self.output_size is None else f", output_size={self.output_size}"
        return (f"EchoStateNetwork({self.input_size}, {self.reservoir_size}{out}, "
                f"spectral_radius={self.spectral_radius:g}, leak_rate={self.leak_rate:g}, "
                f"input_scaling={self.input_scaling:g}, connectivity={self.connectivity:g}, "
                f"input_connectivity={self.input_connectivity:g}, bias_scaling={self.bias_scaling:g}, "
                f"ridge={self.ridge:g}, readout_input={self.readout_input}, dtype='{self.dtype.name}')")

    # ------------------------------------------------------------------ validation
    def _check_array(self, what: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
        return check_array(what, value, shape, self.dtype, owner="the network")

    def _check_sequence(self, what: str, x: Any, features: int, size_name: str) -> np.ndarray:
        shape = array_shape(what, x)
        if len(shape) != 3:
            raise ValueError(f"{what} must have shape (T, B, {features}) ({size_name}={features}), got {shape}")
        if shape[0] < 1 or shape[1] < 1:
            raise ValueError(f"{what} must have at least one step and one sequence, got shape {shape}")
        return self._check_array(what, x, (shape[0], shape[1], features))

    def _check_state(self, state: Any, batch: int) -> np.ndarray:
        shape = (batch, self.reservoir_size)
        return np.zeros(shape, self.dtype) if state is None else self._check_array("state", state, shape)

    def _require_readout(self, method: str) -> dict[str, np.ndarray]:
        """The readout's arrays (C order), checked as ``parameters()`` may have replaced them."""
        if self._readout is None:
            raise ValueError(f"{method}() needs a fitted readout: call fit(x, y) first")
        O = self._fitted_outputs
        check_params(self._readout, {"readout.weight": (O, self._features), "readout.bias": (O,)}, self.dtype)
        return {name: np.ascontiguousarray(value) for name, value in self._readout.items()}

    def _reservoir(self) -> dict[str, np.ndarray]:
        """W_in, W and b (C order), checked as ``parameters()`` may have replaced them."""
        N, I = self.reservoir_size, self.input_size
        check_params(self._params, {"weight_ih": (N, I), "weight_hh": (N, N), "bias": (N,)}, self.dtype)
        return {name: np.ascontiguousarray(value) for name, value in self._params.items()}

    def _trace(self, states: np.ndarray) -> Trace:
        T, B, N = states.shape
        trace = Trace(self.mode, 1, 1, N, T, B, self.dtype, _owner=self)
        trace._set_record(0, 0, "h", states)
        return trace

    # ------------------------------------------------------------------ running
    def _states(self, u: np.ndarray, x0: np.ndarray) -> np.ndarray:
        """x_1 .. x_T (T, B, N) from validated u and x0."""
        p = self._reservoir()
        with kernels.blas_single_threaded():
            xs = esn_kernels.esn_forward(u, p["weight_ih"], p["weight_hh"], p["bias"], x0, self.leak_rate,
                                         kernels.kernel_threads())
        return xs[1:]

    def run(self, x: Any, state: Any = None) -> tuple[np.ndarray, Trace]:
        """Drive the reservoir with inputs ``x`` (T, B, I) from ``state`` (B, N) (None: zeros).

        Returns ``(states, trace)``: states (T, B, N), states[t] = x_t after input t (the last one
        is the state to continue from), and a Trace recording them as ``"h"``. Needs no readout.
        """
        u = self._check_sequence("input", x, self.input_size, "input_size")
        x0 = self._check_state(state, u.shape[1])
        states = self._states(u, x0)
        return states.copy(), self._trace(states)  # editing the result leaves the trace as computed

    def fit(self, x: Any, y: Any, warmup: int = 0, state: Any = None) -> np.ndarray:
        """Fit the readout by ridge regression (:func:`ridge_readout`) of targets ``y`` (T, B, O) on
        the states the inputs ``x`` (T, B, I) drive, from ``state`` (B, N) (None: zeros).

        The first ``warmup`` steps of every sequence are run but left out of the regression (the
        reservoir forgetting its arbitrary initial state). Row t of the regression pairs x_t, the
        state after input t (with ``readout_input``, [x_t; u_t]), with y[t]: for one-step-ahead
        forecasting pass y[t] = x[t + 1]. Rows of all B sequences are pooled. Returns the final
        reservoir state (B, N), to continue from (e.g. ``predict(..., state=)``).
        """
        u = self._check_sequence("input", x, self.input_size, "input_size")
        T, B, _ = u.shape
        O = self._requested_output_size
        y_shape = array_shape("targets", y)
        if len(y_shape) != 3:
            raise ValueError(f"targets must have shape (T, B, O), got {y_shape}")
        if O is not None and y_shape[2] != O:
            raise ValueError(f"targets have {y_shape[2]} features, but output_size is {O}")
        if y_shape[2] < 1:
            raise ValueError(f"targets must have at least one feature, got shape {y_shape}")
        targets = self._check_array("targets", y, (T, B, y_shape[2]))
        if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or not 0 <= warmup < T:
            raise ValueError(f"warmup must be an integer in [0, {T}) (the input has T={T} steps), got {warmup!r}")
        x0 = self._check_state(state, B)
        states = self._states(u, x0)
        z = self._readout_features(states[warmup:], u[warmup:])
        w_out, b_out = ridge_readout(z, targets[warmup:], self.ridge)
        for name, value in (("weight", w_out), ("bias", b_out)):
            if not np.all(np.abs(value) <= np.finfo(self.dtype).max):  # NaN too: nothing fitted is kept
                raise ValueError(f"the fitted readout's {name} holds {float(np.nanmax(np.abs(value))):g}, beyond "
                                 f"{self.dtype.name}'s range: the states are too nearly dependent for ridge="
                                 f"{self.ridge:g}; raise ridge")
        self._readout = {"readout.weight": w_out.astype(self.dtype), "readout.bias": b_out.astype(self.dtype)}
        self._fitted_outputs = int(b_out.shape[0])
        return states[-1].copy()

    def _readout_features(self, states: np.ndarray, u: np.ndarray) -> np.ndarray:
        """z_t: the states, or [x_t; u_t] with ``readout_input``."""
        return np.concatenate([states, u], axis=2) if self.readout_input else states

    def _readout_of(self, states: np.ndarray, u: np.ndarray, r: dict[str, np.ndarray]) -> np.ndarray:
        """The outputs of readout ``r`` (:meth:`_require_readout`'s) over the states."""
        z = self._readout_features(states, u)
        with kernels.blas_single_threaded():
            return esn_kernels.esn_readout(z, r["readout.weight"], r["readout.bias"], kernels.kernel_threads())

    def forward(self, x: Any, state: Any = None) -> tuple[np.ndarray, np.ndarray, Trace]:
        """One-step forecasts: returns ``(y, state_n, trace)`` with y[t] = W_out x_t + b_out (T, B, O)
        (with ``readout_input``, W_out [x_t; u_t] + b_out), state_n the final reservoir state (B, N)
        and the trace of the states. Needs :meth:`fit`."""
        return self._forward(x, state, "forward")

    def _forward(self, x: Any, state: Any, method: str) -> tuple[np.ndarray, np.ndarray, Trace]:
        r = self._require_readout(method)  # (named by the method called: forward or predict)
        u = self._check_sequence("input", x, self.input_size, "input_size")
        x0 = self._check_state(state, u.shape[1])
        states = self._states(u, x0)
        return self._readout_of(states, u, r), states[-1].copy(), self._trace(states)

    def predict(self, x: Any, state: Any = None) -> np.ndarray:
        """One-step-ahead (teacher-forced) outputs y (T, B, O) for inputs x (T, B, I) from ``state``.

        Each step reads the true input; to continue after :meth:`fit`'s data pass the state it returned.
        """
        return self._forward(x, state, "predict")[0]

    def generate(self, n_steps: int, warmup_inputs: Any, state: Any = None) -> tuple[np.ndarray, Trace]:
        """Free-running forecast: the output of each step is fed back as the next input (needs O = I).

        The reservoir is first driven by the true ``warmup_inputs`` (T0, B, I) from ``state``; then,
        with z_t = x_t (or [x_t; u_t] with ``readout_input``) and u_{T0+k} = y_k,

            y_1 = W_out z_{T0} + b_out,   x_{T0+k} = (1 - a) x_{T0+k-1} + a tanh(W x_{T0+k-1} + W_in y_k + b),
            y_{k+1} = W_out z_{T0+k} + b_out,   k = 1 .. n_steps - 1.

        So y_1 forecasts the step after the last warm-up input. Returns ``(y, trace)``: y
        (n_steps, B, O) and a trace whose ``"h"`` (n_steps, B, N) holds the state each y_k is read
        from (``predict(concatenate([warmup_inputs, y[:-1]]))[-n_steps:]`` reproduces y).
        """
        n_steps = check_positive_int("n_steps", n_steps)
        r = self._require_readout("generate")
        if self.output_size != self.input_size:
            raise ValueError(f"generate() feeds outputs back as inputs: needs output_size == input_size, "
                             f"got {self.output_size} and {self.input_size}")
        u = self._check_sequence("warmup_inputs", warmup_inputs, self.input_size, "input_size")
        x0 = self._check_state(state, u.shape[1])
        # the outputs and states of every step, before the kernel allocates them (10**13 steps was numpy's
        # MemoryError, 2**63 "Maximum allowed dimension exceeded")
        per_step = u.shape[1] * (self.output_size + self.reservoir_size)
        check_forward_memory("EchoStateNetwork.generate", n_steps * per_step, self.dtype, "n_steps")
        p = self._reservoir()
        start = self._states(u, x0)[-1]
        with kernels.blas_single_threaded():
            ys, xs = esn_kernels.esn_generate(start, u[-1], p["weight_ih"], p["weight_hh"], p["bias"],
                                              r["readout.weight"], r["readout.bias"], self.leak_rate, n_steps,
                                              kernels.kernel_threads())
        return ys, self._trace(xs)


# ---------------------------------------------------------------------------------------------
# random sparse draws
# ---------------------------------------------------------------------------------------------

def _signs(rng: np.random.Generator, k: int) -> np.ndarray:
    """k values +-1 with equal probability (reservoirpy's Bernoulli initialiser)."""
    return np.where(rng.random(k) < 0.5, -1.0, 1.0)


def _sparse(rng: np.random.Generator, shape: tuple[int, ...], density: float, draw, *,
            at_least_one: bool = True) -> np.ndarray:
    """A dense float64 array of ``shape`` with round(density * size) non-zeros (at least one if asked)
    at distinct uniformly random positions, values from ``draw(k)`` (as ``scipy.sparse.random``)."""
    size = math.prod(shape)
    k = min(size, int(round(density * size)))
    if at_least_one:
        k = max(k, 1)
    out = np.zeros(size)
    out[rng.choice(size, size=k, replace=False)] = draw(k)
    return out.reshape(shape)


def _has_cycle(w: np.ndarray) -> bool:
    """Whether W's sparsity pattern, as a directed graph, has a cycle; if not, W is nilpotent."""
    from scipy.sparse import csgraph  # here, not at import (start-up time)

    pattern = w != 0
    if np.any(np.diagonal(pattern)):
        return True
    _, labels = csgraph.connected_components(pattern, directed=True, connection="strong")
    return bool(np.bincount(labels).max() > 1)
