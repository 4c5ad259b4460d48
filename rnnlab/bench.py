"""The benchmark behind ``rnnlab bench``: rnnlab vs PyTorch CPU vs the NumPy reference.

For each cell and shape ``(B, T, I, H)`` it times, in float32, one forward pass and one
forward+backward pass (full BPTT: gradients of every parameter, the input and the initial
state(s), from random cotangents ``dy``, ``dh_n`` (``dc_n``)) of a single-layer unidirectional
network, in three implementations side by side in one process:

- ``rnnlab``: ``layer.forward(x)`` and ``layer.backward(trace, dy, dstate)`` (public API, input
  validation included);
- ``torch``: ``torch.nn.RNN/LSTM/GRU`` with the same weights (loaded through ``state_dict``),
  forward with autograd on (like rnnlab's forward, it keeps what backward needs) and
  ``torch.autograd.backward`` of y and the final state(s), ``x`` and ``h0`` requiring grad;
  only when torch is importable;
- ``reference``: :func:`rnnlab.reference.backward` (NumPy, float64; it runs its own forward).

Measurement: each implementation is called twice to warm up (the first rnnlab call compiles the
numba kernels, or loads them from the disk cache; the second sizes the blocks below), then
``repeats`` rounds run. In every round each implementation runs once, in turn (rnnlab forward,
rnnlab forward+backward, torch forward, torch forward+backward, reference: interleaved, so a drift
of the machine hits all of them alike), as a block of n back-to-back calls, n chosen so that a
block lasts about ``block_ms`` (20 ms; n = 1 for anything slower); a round's time is the block's
mean per call, and the reported time is the median over rounds. Blocks amortise the cost of
switching from one library to the next (cold caches, the other library's worker threads still
spinning), measured at 0.3-0.4 ms per switch on 2 cores, which would otherwise swamp the smallest
shapes. The reference is slow at the large shapes, so for ``H >= 256`` it runs in only
``max(3, repeats // 3)`` rounds (the first ones) and is warmed up with a single call.

Threads: ``threads`` (default: the cores this process may run on) is applied to numba
(``numba.set_num_threads``), to torch (``torch.set_num_threads``) and to the BLAS libraries
(OpenBLAS of NumPy and SciPy, which numba's ``np.dot`` calls) through ``threadpoolctl`` when it is
importable. Without threadpoolctl the BLAS thread count cannot be changed at run time: set
``OPENBLAS_NUM_THREADS`` (and ``OPENBLAS_THREAD_TIMEOUT``, see DESIGN.md) in the environment
before starting Python; :func:`environment` reports which was possible.

Targets (issue 2), ratio = torch time / rnnlab time for forward+backward: >= 5 for every cell at
B = 1 and H <= 64; otherwise >= 1.0 for LSTM and >= 1.5 for GRU and the Elman RNN.

This module is part of the core: no rich, typer or textual. Heavy imports (numba, torch) happen
inside functions.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from .layers._params import physical_memory

__all__ = [
    "SHAPES",
    "QUICK_SHAPES",
    "CELLS",
    "DEFAULT_CELLS",
    "DEFAULT_REPEATS",
    "ROW_KEYS",
    "default_threads",
    "target_for",
    "reference_repeats",
    "thread_limits",
    "environment",
    "load_average",
    "run_bench",
    "estimated_bytes",
    "check_memory",
]

#: (B, T, I, H) of the issue's benchmark, smallest first.
SHAPES: tuple[tuple[int, int, int, int], ...] = (
    (1, 100, 8, 16),
    (1, 100, 32, 64),
    (16, 100, 32, 64),
    (32, 100, 64, 128),
    (32, 200, 128, 256),
    (64, 50, 256, 512),
)
#: ``--quick``: the first three shapes.
QUICK_SHAPES = SHAPES[:3]

#: cell name -> (layer class name, nonlinearity or None).
CELLS: dict[str, tuple[str, str | None]] = {
    "rnn_tanh": ("RNN", "tanh"),
    "rnn_relu": ("RNN", "relu"),
    "lstm": ("LSTM", None),
    "gru": ("GRU", None),
}
#: The cells benchmarked by default (the issue's three).
DEFAULT_CELLS = ("rnn_tanh", "lstm", "gru")
DEFAULT_REPEATS = 7
#: Each timing is the mean of as many back-to-back calls as fill this many milliseconds.
DEFAULT_BLOCK_MS = 20.0
#: From this hidden size on, the float64 reference runs fewer rounds (see :func:`reference_repeats`).
REFERENCE_LARGE_H = 256

#: Keys of every row :func:`run_bench` returns, in table order.
ROW_KEYS = (
    "cell", "B", "T", "I", "H", "threads", "repeats", "ref_repeats", "calls",
    "rnnlab_fwd_ms", "rnnlab_fwdbwd_ms", "torch_fwd_ms", "torch_fwdbwd_ms", "ref_fwdbwd_ms",
    "ratio_fwd", "ratio_fwdbwd", "ratio_ref", "target", "met",
)

Progress = Callable[[int, int, str], None]


def default_threads() -> int:
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def target_for(cell: str, B: int, H: int) -> float:
    """The issue's target for ratio fwd+bwd (torch / rnnlab) of ``cell`` at batch B, hidden size H."""
    if B == 1 and H <= 64:
        return 5.0
    return 1.0 if cell == "lstm" else 1.5


def reference_repeats(repeats: int, H: int) -> int:
    """Rounds in which the float64 reference is timed: all of them, or max(3, repeats // 3) at H >= 256."""
    if H >= REFERENCE_LARGE_H:
        return min(repeats, max(3, repeats // 3))
    return repeats


#: Gate blocks per cell: what its forward records per step and unit.
_GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def estimated_bytes(cell: str, shape: Sequence[int], *, use_torch: bool = True, use_reference: bool = True) -> int:
    """What one case (``cell`` at ``shape`` = B, T, I, H) holds at once, within a small factor: the
    input x and its gradient, dy, rnnlab's float32 records of every step and gate and its backward
    buffers (as :meth:`rnnlab.spec.Spec.estimated_bytes` counts them), the same again for torch's
    autograd, and twice that (float64) for the reference; weights and their gradients."""
    B, T, I, H = (int(v) for v in shape)
    gates = _GATES[CELLS[cell][0]]
    steps = T * B
    one = steps * (3 * I + H * (3 * gates + 6)) * 4 + 4 * gates * H * (I + H + 2) * 4  # float32
    total = one * (2 if use_torch else 1)
    if use_reference:
        total += 2 * one
    return int(total)


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**28 else f"{n / 2**20:.0f} MiB"


def check_memory(cells: Iterable[str], shapes: Iterable[Sequence[int]], *, use_torch: bool = True,
                 use_reference: bool = True) -> None:
    """Refuse, before allocating anything, a case that would need more than half of this machine's
    memory (:class:`rnnlab.errors.UserError`, a ValueError, naming the shape)."""
    from .errors import UserError

    have = physical_memory()
    for shape in shapes:
        for cell in cells:
            need = estimated_bytes(cell, shape, use_torch=use_torch, use_reference=use_reference)
            if need > have // 2:
                B, T, I, H = shape
                raise UserError(f"--shape {B},{T},{I},{H}: {cell} needs about {_gib(need)}, more than half of "
                                f"this machine's {_gib(have)}; make B, T, I or H smaller")


def _import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _threadpoolctl():
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl


@contextlib.contextmanager
def thread_limits(threads: int, torch_module: Any = None) -> Iterator[dict[str, Any]]:
    """Run the block with ``threads`` threads in numba, torch (if given) and BLAS; restore afterwards.

    Yields a dict telling what was set. Raises ValueError if ``threads`` is below 1 or above what
    numba was started with (``NUMBA_NUM_THREADS``, the core count by default).
    """
    import numba

    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    numba_max = numba.config.NUMBA_NUM_THREADS
    if threads > numba_max:
        raise ValueError(
            f"threads={threads} is more than numba's {numba_max} (set NUMBA_NUM_THREADS before starting)"
        )
    info: dict[str, Any] = {"threads": threads, "numba": threads}
    old_numba = numba.get_num_threads()
    old_torch = torch_module.get_num_threads() if torch_module is not None else None
    numba.set_num_threads(threads)
    if torch_module is not None:
        torch_module.set_num_threads(threads)
        info["torch"] = threads
    tpc = _threadpoolctl()
    try:
        with contextlib.ExitStack() as stack:
            if tpc is not None:
                stack.enter_context(tpc.threadpool_limits(limits=threads))
                info["blas"] = f"threadpoolctl limits={threads}"
            else:
                info["blas"] = (
                    "not controlled (threadpoolctl not installed): OPENBLAS_NUM_THREADS="
                    + os.environ.get("OPENBLAS_NUM_THREADS", "unset")
                )
            yield info
    finally:
        numba.set_num_threads(old_numba)
        if torch_module is not None:
            torch_module.set_num_threads(old_torch)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(threads: int | None = None, use_torch: bool = True) -> dict[str, Any]:
    """What the numbers were measured on: versions, CPU, thread settings."""
    import numba
    import scipy

    from . import __version__

    torch = _import_torch() if use_torch else None
    tpc = _threadpoolctl()
    return {
        "rnnlab": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "cpu": _cpu_model(),
        "cores": default_threads(),
        "threads": threads if threads is not None else default_threads(),
        # how many, and how they are held there ("threadpoolctl" alone read as a broken count)
        "blas_threads": f"{threads if threads is not None else default_threads()} (threadpoolctl)" if tpc is not None
        else f"not controlled (OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')})",
        "numba_threading_layer": numba.config.THREADING_LAYER,
        "load_average": load_average(),
    }


def load_average() -> float | None:
    """The 1-minute load average (None where unknown): above ~0.5, other processes share the cores."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # pragma: no cover - not Unix
        return None


def _time_ms(func: Callable[[], Any], calls: int = 1) -> float:
    """Mean milliseconds per call over ``calls`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(calls):
        func()
    return (time.perf_counter() - start) * 1000.0 / calls


def _calls_per_block(ms_per_call: float, block_ms: float) -> int:
    """How many back-to-back calls fill ``block_ms`` (at least 1, at most 1000)."""
    if ms_per_call <= 0:
        return 1000
    return int(min(1000, max(1, math.ceil(block_ms / ms_per_call))))


class _Case:
    """One cell at one shape: the data and the three implementations' callables."""

    def __init__(self, cell: str, shape: tuple[int, int, int, int], torch: Any, use_reference: bool, seed: int):
        from . import layers

        mode, nonlinearity = CELLS[cell]
        B, T, I, H = shape
        self.lstm = mode == "LSTM"
        kwargs: dict[str, Any] = dict(dtype="float32", seed=seed)
        if mode == "RNN":
            kwargs["nonlinearity"] = nonlinearity
        self.layer = getattr(layers, mode)(I, H, **kwargs)
        rng = np.random.default_rng(seed + 1)
        self.x = rng.standard_normal((T, B, I)).astype(np.float32)
        self.dy = rng.standard_normal((T, B, H)).astype(np.float32)
        self.dh = rng.standard_normal((1, B, H)).astype(np.float32)
        self.dc = rng.standard_normal((1, B, H)).astype(np.float32) if self.lstm else None
        self.dstate = (self.dh, self.dc) if self.lstm else self.dh

        self.torch = torch
        if torch is not None:
            tkwargs: dict[str, Any] = {}
            if mode == "RNN":
                tkwargs["nonlinearity"] = nonlinearity
            module = getattr(torch.nn, mode)(I, H, **tkwargs)
            module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.layer.state_dict().items()})
            self.module = module.float()
            self.tx = torch.from_numpy(self.x.copy()).requires_grad_(True)
            self.th0 = torch.zeros(1, B, H).requires_grad_(True)
            self.tc0 = torch.zeros(1, B, H).requires_grad_(True) if self.lstm else None
            self.tdy = torch.from_numpy(self.dy.copy())
            self.tdh = torch.from_numpy(self.dh.copy())
            self.tdc = torch.from_numpy(self.dc.copy()) if self.lstm else None

        self.use_reference = use_reference
        if use_reference:
            self.mode, self.nonlinearity = mode, nonlinearity or "tanh"
            self.params64 = {k: v.astype(np.float64) for k, v in self.layer.state_dict().items()}
            self.x64 = self.x.astype(np.float64)
            self.dy64 = self.dy.astype(np.float64)
            self.dh64 = self.dh.astype(np.float64)
            self.dc64 = self.dc.astype(np.float64) if self.lstm else None

    # rnnlab -----------------------------------------------------------------------------------
    def rnnlab_fwd(self) -> None:
        self.layer.forward(self.x)

    def rnnlab_fwdbwd(self) -> None:
        _, _, trace = self.layer.forward(self.x)
        self.layer.backward(trace, self.dy, self.dstate)

    # torch ------------------------------------------------------------------------------------
    def _torch_state(self):
        return (self.th0, self.tc0) if self.lstm else self.th0

    def torch_fwd(self) -> None:
        self.module(self.tx, self._torch_state())

    def torch_fwdbwd(self) -> None:
        y, state = self.module(self.tx, self._torch_state())
        if self.lstm:
            h_n, c_n = state
            self.torch.autograd.backward([y, h_n, c_n], [self.tdy, self.tdh, self.tdc])
        else:
            self.torch.autograd.backward([y, state], [self.tdy, self.tdh])

    def torch_reset(self) -> None:
        """Drop accumulated .grad (outside the timed region) so every round does the same work."""
        self.module.zero_grad(set_to_none=True)
        for t in (self.tx, self.th0, self.tc0):
            if t is not None:
                t.grad = None

    # reference --------------------------------------------------------------------------------
    def ref_fwdbwd(self) -> None:
        from . import reference

        reference.backward(self.mode, self.params64, self.x64, nonlinearity=self.nonlinearity,
                           dy=self.dy64, dh_n=self.dh64, dc_n=self.dc64)


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return num / den


def _measure(case: _Case, repeats: int, ref_rounds: int, block_ms: float) -> dict[str, Any]:
    """Median ms per call of each implementation; see the module docstring for the protocol."""
    impls: dict[str, tuple[Callable[[], Any], int]] = {}
    # warm-up: the first call compiles (or loads) the numba kernels and lets torch pick its paths;
    # the second sizes the blocks
    candidates: list[tuple[str, Callable[[], Any], int]] = [
        ("rnnlab_fwd", case.rnnlab_fwd, 2), ("rnnlab_fwdbwd", case.rnnlab_fwdbwd, 2)]
    if case.torch is not None:
        candidates += [("torch_fwd", case.torch_fwd, 2), ("torch_fwdbwd", case.torch_fwdbwd, 2)]
    if ref_rounds:
        candidates.append(("ref_fwdbwd", case.ref_fwdbwd, 1))
    for key, func, warm_calls in candidates:
        for _ in range(warm_calls - 1):
            func()
        impls[key] = (func, _calls_per_block(_time_ms(func), block_ms))
        if case.torch is not None:
            case.torch_reset()

    times: dict[str, list[float]] = {key: [] for key in impls}
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside a timed block would land on whoever runs then
    try:
        for round_ in range(repeats):
            for key, (func, calls) in impls.items():
                if key == "ref_fwdbwd" and round_ >= ref_rounds:
                    continue
                times[key].append(_time_ms(func, calls))
                if case.torch is not None and key.startswith("torch"):
                    case.torch_reset()
            gc.collect()
    finally:
        if gc_was_enabled:
            gc.enable()
    result: dict[str, Any] = {k: (statistics.median(v) if v else None) for k, v in times.items()}
    result["calls"] = {key: calls for key, (_, calls) in impls.items()}
    return result


def run_bench(
    cells: Iterable[str] = DEFAULT_CELLS,
    shapes: Sequence[tuple[int, int, int, int]] = SHAPES,
    *,
    repeats: int = DEFAULT_REPEATS,
    threads: int | None = None,
    use_torch: bool = True,
    use_reference: bool = True,
    seed: int = 0,
    block_ms: float = DEFAULT_BLOCK_MS,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[dict[str, Any]]:
    """Benchmark ``cells`` at ``shapes``; one row dict per (cell, shape) with the keys :data:`ROW_KEYS`.

    Times are medians in milliseconds (None where an implementation was not run); ratios are
    torch / rnnlab (``ratio_fwd``, ``ratio_fwdbwd``) and reference / rnnlab (``ratio_ref``), both
    for forward+backward except ``ratio_fwd``. ``target`` is :func:`target_for` and ``met``
    whether ``ratio_fwdbwd >= target`` (None without torch).

    ``progress(done, total, label)`` is called before each (cell, shape) and once at the end with
    ``label == ""``. ``use_torch`` is ignored (treated as False) when torch is not importable.
    Once ``should_stop()`` is true (checked before each pair) it returns the rows measured so far.
    Raises ValueError for an unknown cell, a bad shape, ``repeats < 1`` or a bad ``threads``.
    """
    cells = list(dict.fromkeys(cells))
    unknown = [c for c in cells if c not in CELLS]
    if unknown:
        raise ValueError(f"unknown cell {', '.join(map(repr, unknown))}; known: {', '.join(CELLS)}")
    if not cells:
        raise ValueError("no cells selected")
    shapes = [tuple(int(v) for v in s) for s in shapes]
    for s in shapes:
        if len(s) != 4 or min(s) < 1:
            raise ValueError(f"shape must be four positive integers B,T,I,H, got {s}")
    if not shapes:
        raise ValueError("no shapes selected")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    threads = default_threads() if threads is None else threads
    torch = _import_torch() if use_torch else None
    check_memory(cells, shapes, use_torch=torch is not None, use_reference=use_reference)

    rows: list[dict[str, Any]] = []
    total = len(cells) * len(shapes)
    with thread_limits(threads, torch):
        for cell, shape in itertools.product(cells, shapes):
            if should_stop():
                return rows
            B, T, I, H = shape
            if progress is not None:
                progress(len(rows), total, f"{cell} B={B} T={T} I={I} H={H}")
            ref_rounds = reference_repeats(repeats, H) if use_reference else 0
            case = _Case(cell, shape, torch, use_reference, seed)
            t = _measure(case, repeats, ref_rounds, block_ms)
            del case
            target = target_for(cell, B, H)
            ratio_fwdbwd = _ratio(t.get("torch_fwdbwd"), t["rnnlab_fwdbwd"])
            rows.append({
                "cell": cell, "B": B, "T": T, "I": I, "H": H,
                "threads": threads, "repeats": repeats, "ref_repeats": ref_rounds,
                "calls": t["calls"],
                "rnnlab_fwd_ms": t["rnnlab_fwd"],
                "rnnlab_fwdbwd_ms": t["rnnlab_fwdbwd"],
                "torch_fwd_ms": t.get("torch_fwd"),
                "torch_fwdbwd_ms": t.get("torch_fwdbwd"),
                "ref_fwdbwd_ms": t.get("ref_fwdbwd"),
                "ratio_fwd": _ratio(t.get("torch_fwd"), t["rnnlab_fwd"]),
                "ratio_fwdbwd": ratio_fwdbwd,
                "ratio_ref": _ratio(t.get("ref_fwdbwd"), t["rnnlab_fwdbwd"]),
                "target": target,
                "met": None if ratio_fwdbwd is None else bool(ratio_fwdbwd >= target),
            })
    if progress is not None:
        progress(total, total, "")
    return rows
