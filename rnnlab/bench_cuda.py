"""rnnlab's CUDA kernels against PyTorch's cuDNN RNNs on the same GPU (issue 6).

    rnnlab bench --device cuda                               # every cell and shape, markdown table
    rnnlab bench --device cuda --cells lstm --shape 1,100,8,16 --shape 32,100,64,128 --repeats 11
    rnnlab bench --device cuda --json > cuda-bench.json
    python benchmarks/cuda_vs_cudnn.py --compare-launch      # the same, plus each recurrence kernel
                                                             # forced
    python benchmarks/cuda_vs_cudnn.py --compare-tiles       # plus each shipped step tile forced

For each cell (Elman tanh, LSTM, GRU; one layer, one direction, float32) and shape (B, T, I, H)
it times one forward pass and one forward+backward pass (full BPTT: every parameter, the input
and the initial state(s), from random cotangents dy, dh_n (dc_n)):

- ``rnnlab``: the device-level kernels (``rnnlab.kernels.cuda.*_forward_device`` /
  ``*_backward_device``), inputs already on the GPU, outputs left there: what cuDNN is given;
  the recurrence kernel chosen by shape (``--compare-launch`` adds forward+backward columns with
  each of "resident", "persistent", "per-step" and "gemm" forced, resident only where it fits;
  ``--compare-tiles`` columns with the full and the quarter step tile forced at every shape);
- ``rnnlab host``: the host-level functions a layer with ``device="cuda"`` calls (NumPy in and
  out, so the transfers are included; the backward reuses the forward's device copies of x,
  the weights and the records, as a layer's trace does), forward+backward only;
- ``cuDNN``: ``torch.nn.RNN/LSTM/GRU`` on ``cuda`` with the same weights, forward with autograd on
  (it keeps what backward needs, as rnnlab's forward records every step) and
  ``torch.autograd.backward`` of y and the final state(s), x and h0 requiring grad. TF32 is off
  (``--allow-tf32`` turns it on): rnnlab computes in full float32.

Timing: two warm-up calls each (the first rnnlab call compiles its kernels), then ``--repeats``
interleaved rounds (>= 7); in a round each implementation runs a block of back-to-back calls
lasting about 20 ms between two ``synchronize()`` calls, and the round's time is the block's mean
per call; the table shows the median over rounds, in milliseconds, and torch / rnnlab (> 1:
rnnlab faster). The first forward of each case also checks that both compute the same y.

Targets (issue 6), on forward+backward: within 2x of cuDNN at B >= 64 (ratio >= 0.5), and faster
than cuDNN at B = 1, H <= 256 (ratio >= 1). The table marks each as met or missed, and
``--check-targets`` exits 1 if one is missed (it needs torch).

Without a usable GPU (or without numba-cuda) it prints why on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

SHAPES = [(1, 100, 8, 16), (1, 100, 32, 64), (1, 100, 64, 256), (16, 100, 32, 64), (32, 100, 64, 128),
          (32, 200, 128, 256), (64, 50, 256, 512), (256, 100, 512, 1024)]
CELLS = ("rnn_tanh", "lstm", "gru")
#: The fewest timed rounds a case takes: a GPU's launch and clock jitter needs more medians than a CPU's.
MIN_REPEATS = 7
GATES = {"rnn_tanh": 1, "lstm": 4, "gru": 3}
BLOCK_MS = 20.0
#: The shipped step tiles ``--compare-tiles`` forces, by their names in ``_common`` (lower case).
TILES = ("step_tile", "small_step_tile")


def target_for(B: int, H: int) -> float | None:
    """The least f+b ratio (cuDNN / rnnlab) issue 6 asks for at batch B and hidden size H: 0.5
    (within 2x) at B >= 64, 1.0 (faster) at B = 1 with H <= 256; None where it sets none."""
    if B >= 64:
        return 0.5
    if B == 1 and H <= 256:
        return 1.0
    return None


def _parse_shape(text: str) -> tuple[int, int, int, int]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"shape must be B,T,I,H (positive integers), got {text!r}")
    return shape


def _block_time_ms(func: Callable[[], object], calls: int, synchronize: Callable[[], None]) -> float:
    synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        func()
    synchronize()
    return (time.perf_counter() - start) * 1e3 / calls


class Case:
    """One cell at one shape: the same weights and cotangents on the rnnlab and the torch side."""

    def __init__(self, cell: str, shape, gpu, cuda, torch, allow_tf32: bool, seed: int = 0):
        B, T, I, H = shape
        G = GATES[cell]
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(H)
        f32 = np.float32
        self.cell, self.shape, self.gpu, self.cuda, self.torch = cell, shape, gpu, cuda, torch
        self.host = dict(
            x=rng.standard_normal((T, B, I)).astype(f32),
            w_ih=rng.uniform(-bound, bound, (G * H, I)).astype(f32),
            w_hh=rng.uniform(-bound, bound, (G * H, H)).astype(f32),
            b_ih=rng.uniform(-bound, bound, G * H).astype(f32),
            b_hh=rng.uniform(-bound, bound, G * H).astype(f32),
            h0=(0.5 * rng.standard_normal((B, H))).astype(f32),
            c0=(0.5 * rng.standard_normal((B, H))).astype(f32),
            dy=rng.standard_normal((T, B, H)).astype(f32),
            dh_n=rng.standard_normal((B, H)).astype(f32),
            dc_n=rng.standard_normal((B, H)).astype(f32),
        )
        self.host["bias"] = self.host["b_ih"] + self.host["b_hh"]
        self.dev = {k: cuda.to_device(v) for k, v in self.host.items()}
        self.module = None
        if torch is not None:
            torch.backends.cuda.matmul.allow_tf32 = allow_tf32
            torch.backends.cudnn.allow_tf32 = allow_tf32
            kind = {"rnn_tanh": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
            self.module = kind(I, H).to("cuda")
            self.module.load_state_dict({name: torch.from_numpy(self.host[key]) for name, key in (
                ("weight_ih_l0", "w_ih"), ("weight_hh_l0", "w_hh"), ("bias_ih_l0", "b_ih"), ("bias_hh_l0", "b_hh"))})
            self.t = {k: torch.from_numpy(v).to("cuda") for k, v in self.host.items()}
            self.t["x"].requires_grad_(True)
            self.t["h0"] = self.t["h0"][None].clone().requires_grad_(True)
            self.t["c0"] = self.t["c0"][None].clone().requires_grad_(True)
            self.t["dh_n"] = self.t["dh_n"][None]
            self.t["dc_n"] = self.t["dc_n"][None]

    # --------------------------------------------------------------- rnnlab, data on the device
    def rnnlab_forward(self, recurrence=None):
        d, gpu = self.dev, self.gpu
        if self.cell == "lstm":
            return gpu.lstm_forward_device(d["x"], d["w_ih"], d["w_hh"], d["bias"], d["h0"], d["c0"],
                                           recurrence=recurrence)
        if self.cell == "gru":
            return gpu.gru_forward_device(d["x"], d["w_ih"], d["w_hh"], d["b_ih"], d["b_hh"], d["h0"],
                                          recurrence=recurrence)
        return (gpu.elman_forward_device(d["x"], d["w_ih"], d["w_hh"], d["bias"], d["h0"], False,
                                         recurrence=recurrence),)

    def rnnlab_forward_backward(self, recurrence=None):
        d, gpu = self.dev, self.gpu
        saved = self.rnnlab_forward(recurrence)
        if self.cell == "lstm":
            return gpu.lstm_backward_device(d["x"], d["w_ih"], d["w_hh"], *saved, d["dy"], d["dh_n"], d["dc_n"], 0,
                                            recurrence=recurrence)
        if self.cell == "gru":
            return gpu.gru_backward_device(d["x"], d["w_ih"], d["w_hh"], *saved, d["dy"], d["dh_n"], 0,
                                           recurrence=recurrence)
        return gpu.elman_backward_device(d["x"], d["w_ih"], d["w_hh"], saved[0], d["dy"], d["dh_n"], False, 0,
                                         recurrence=recurrence)

    def fits_resident(self) -> bool:
        """Whether both passes can run "resident" (one unit's weights fit a block)."""
        from rnnlab.kernels.cuda._resident import resident_matrix, resident_units

        B, _, _, H = self.shape
        return all(resident_units(H, B, *resident_matrix(GATES[self.cell], H, backward), np.float32)
                   for backward in (False, True))

    # --------------------------------------------------------------- rnnlab, NumPy in and out
    def rnnlab_host_forward_backward(self):
        h, gpu = self.host, self.gpu
        kept = {}  # as a layer's trace: the backward takes the forward's device copies
        if self.cell == "lstm":
            saved = gpu.lstm_forward(h["x"], h["w_ih"], h["w_hh"], h["bias"], h["h0"], h["c0"], device_arrays=kept)
            return gpu.lstm_backward(h["x"], h["w_ih"], h["w_hh"], *saved, h["dy"], h["dh_n"], h["dc_n"], 0,
                                     device_arrays=kept)
        if self.cell == "gru":
            saved = gpu.gru_forward(h["x"], h["w_ih"], h["w_hh"], h["b_ih"], h["b_hh"], h["h0"], device_arrays=kept)
            return gpu.gru_backward(h["x"], h["w_ih"], h["w_hh"], *saved, h["dy"], h["dh_n"], 0, device_arrays=kept)
        hs = gpu.elman_forward(h["x"], h["w_ih"], h["w_hh"], h["bias"], h["h0"], False, device_arrays=kept)
        return gpu.elman_backward(h["x"], h["w_ih"], h["w_hh"], hs, h["dy"], h["dh_n"], False, 0, device_arrays=kept)

    # --------------------------------------------------------------- torch / cuDNN
    def torch_forward(self):
        t = self.t
        return self.module(t["x"], (t["h0"], t["c0"]) if self.cell == "lstm" else t["h0"])

    def torch_forward_backward(self):
        t = self.t
        y, state = self.torch_forward()
        if self.cell == "lstm":
            self.torch.autograd.backward([y, state[0], state[1]], [t["dy"], t["dh_n"], t["dc_n"]])
        else:
            self.torch.autograd.backward([y, state], [t["dy"], t["dh_n"]])

    def max_y_difference(self) -> float:
        """max |y_rnnlab - y_torch| / max |y_torch|: both sides compute the same thing."""
        hs = self.rnnlab_forward()[0].copy_to_host()[1:]
        with self.torch.no_grad():
            y = self.torch_forward()[0].cpu().numpy()
        return float(np.abs(hs - y).max() / max(np.abs(y).max(), 1e-30))


def time_interleaved(impls: dict[str, tuple[Callable[[], object], Callable[[], None]]], repeats: int) -> dict:
    """Median milliseconds per call of each ``name: (func, synchronize)``: two warm-up calls (the
    first compiles), then ``repeats`` rounds, each timing every implementation in turn over a
    block of back-to-back calls lasting about BLOCK_MS."""
    calls = {}
    for name, (func, sync) in impls.items():  # warm-up: compiles, allocates, picks cuDNN's algorithm
        _block_time_ms(func, 1, sync)
        calls[name] = max(1, round(BLOCK_MS / max(_block_time_ms(func, 1, sync), 1e-3)))
    rounds: dict[str, list[float]] = {name: [] for name in impls}
    for _ in range(repeats):
        for name, (func, sync) in impls.items():
            rounds[name].append(_block_time_ms(func, calls[name], sync))
    return {name: statistics.median(times) for name, times in rounds.items()}


def open_gpu(prog: str):
    """(``rnnlab.kernels.cuda``, its numba.cuda) for a GPU benchmark; None after one line on stderr,
    ``prog: why``, where no GPU is usable (no device, no numba-cuda, a driver)."""
    from rnnlab.errors import UserError
    from rnnlab.kernels import cuda as gpu

    try:
        return gpu, gpu.require_cuda()
    except UserError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None


def with_setting(module, name: str, value, func: Callable[[], object]) -> Callable[[], object]:
    """``func`` run with ``module.name`` set to ``value`` (a kernel module's knob, such as
    ``_common.STEP_TILE_OVERRIDE``), and set back after."""
    def run():
        before = getattr(module, name)
        setattr(module, name, value)
        try:
            return func()
        finally:
            setattr(module, name, before)

    return run


def measure(case: Case, repeats: int, compare_launch: bool, compare_tiles: bool = False) -> dict:
    cuda, torch = case.cuda, case.torch
    impls: dict[str, tuple[Callable[[], object], Callable[[], None]]] = {
        "rnnlab_fwd": (case.rnnlab_forward, cuda.synchronize),
        "rnnlab_fwdbwd": (case.rnnlab_forward_backward, cuda.synchronize),
        "rnnlab_host_fwdbwd": (case.rnnlab_host_forward_backward, cuda.synchronize),
    }
    B, T, I, H = case.shape
    if compare_launch:
        for recurrence in ("resident", "persistent", "per-step", "gemm"):
            if recurrence != "resident" or case.fits_resident():
                impls[f"{recurrence.replace('-', '_')}_fwdbwd"] = (
                    lambda recurrence=recurrence: case.rnnlab_forward_backward(recurrence), cuda.synchronize)
    if compare_tiles:
        from rnnlab.kernels.cuda import _common

        for name in TILES:
            impls[f"{name}_fwdbwd"] = (with_setting(_common, "STEP_TILE_OVERRIDE", getattr(_common, name.upper()),
                                                    case.rnnlab_forward_backward), cuda.synchronize)
    if case.module is not None:
        impls["cudnn_fwd"] = (case.torch_forward, torch.cuda.synchronize)
        impls["cudnn_fwdbwd"] = (case.torch_forward_backward, torch.cuda.synchronize)
    row = {"cell": case.cell, "B": B, "T": T, "I": I, "H": H}
    row.update({f"{name}_ms": ms for name, ms in time_interleaved(impls, repeats).items()})
    if case.module is not None:
        row["y_rel_diff"] = case.max_y_difference()
        for what in ("fwd", "fwdbwd"):
            row[f"ratio_{what}"] = row[f"cudnn_{what}_ms"] / row[f"rnnlab_{what}_ms"]
    row["target"] = target_for(B, H)
    row["met"] = None if row["target"] is None or "ratio_fwdbwd" not in row else bool(
        row["ratio_fwdbwd"] >= row["target"])
    return row


def markdown(rows: list[dict]) -> str:
    """The rows as a markdown table (times in ms; ratio = cuDNN / rnnlab, > 1: rnnlab faster)."""
    head = ("| cell | B | T | I | H | rnnlab fwd | cuDNN fwd | ratio | rnnlab f+b | cuDNN f+b | ratio | target "
            "| rnnlab host f+b | y rel. diff |")
    launch = any("per_step_fwdbwd_ms" in r for r in rows)  # --compare-launch
    tiles = any(f"{TILES[0]}_fwdbwd_ms" in r for r in rows)  # --compare-tiles
    if launch:
        head += " resident f+b | persistent f+b | per-step f+b | gemm f+b |"
    if tiles:
        head += " full tile f+b | quarter tile f+b |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]

    def num(value, fmt=".3f"):
        return "-" if value is None else format(value, fmt)

    def target(r) -> str:
        goal = r.get("target")
        if goal is None:
            return "-"
        met = r.get("met")
        return f">= {goal:g}" + ("" if met is None else " met" if met else " **missed**")

    for r in rows:
        line = (
            f"| {r['cell']} | {r['B']} | {r['T']} | {r['I']} | {r['H']} | {num(r['rnnlab_fwd_ms'])} "
            f"| {num(r.get('cudnn_fwd_ms'))} | {num(r.get('ratio_fwd'), '.2f')} | {num(r['rnnlab_fwdbwd_ms'])} "
            f"| {num(r.get('cudnn_fwdbwd_ms'))} | {num(r.get('ratio_fwdbwd'), '.2f')} | {target(r)} "
            f"| {num(r['rnnlab_host_fwdbwd_ms'])} | {num(r.get('y_rel_diff'), '.1e')} |"
        )
        if launch:
            line += "".join(f" {num(r.get(f'{name}_fwdbwd_ms'))} |"
                            for name in ("resident", "persistent", "per_step", "gemm"))
        if tiles:
            line += "".join(f" {num(r.get(f'{name}_fwdbwd_ms'))} |" for name in TILES)
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None, should_stop: Callable[[], bool] = lambda: False,
         progress: Callable[[int, int], None] = lambda done, total: None) -> int:
    """The benchmark, as a script (``argv``); ``should_stop()``, checked before each (cell, shape), true ends
    the measuring there: the rows measured so far are printed (``rnnlab bench`` stops on Ctrl-C, and where
    nobody reads them). ``progress(done, total)``: the (cell, shape) pairs measured, before the first and
    after each (``rnnlab bench`` says how far a stopped run got)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default=",".join(CELLS), help="comma-separated: rnn_tanh, lstm, gru")
    parser.add_argument("--shapes", nargs="+", type=_parse_shape, default=SHAPES, metavar="B,T,I,H")
    parser.add_argument("--repeats", type=int, default=MIN_REPEATS,
                        help=f"timed rounds (median reported; at least {MIN_REPEATS})")
    parser.add_argument("--allow-tf32", action="store_true", help="let cuDNN use TF32 tensor cores")
    parser.add_argument("--no-torch", action="store_true", help="time rnnlab only")
    parser.add_argument("--compare-launch", action="store_true",
                        help="also time each recurrence kernel forced: resident, persistent, per-step, gemm")
    parser.add_argument("--compare-tiles", action="store_true",
                        help="also time forward+backward with each shipped step tile forced: full, quarter")
    parser.add_argument("--json", action="store_true", help="JSON on stdout instead of a markdown table")
    parser.add_argument("--check-targets", action="store_true",
                        help="exit 1 if a target is missed (needs torch: the targets are ratios cuDNN / rnnlab)")
    args = parser.parse_args(argv)
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    unknown = [c for c in cells if c not in CELLS]
    if unknown:
        parser.error(f"unknown cell(s): {', '.join(unknown)} (choose from {', '.join(CELLS)})")
    if args.repeats < MIN_REPEATS:
        parser.error(f"--repeats must be at least {MIN_REPEATS}, got {args.repeats}")
    if args.check_targets and args.no_torch:
        parser.error("--check-targets needs torch (the targets are ratios cuDNN / rnnlab): drop --no-torch")

    opened = open_gpu("rnnlab bench")
    if opened is None:
        return 2
    gpu, cuda = opened
    _, what = gpu.cuda_available()
    torch, no_cudnn = None, None  # no_cudnn: why cuDNN cannot be timed
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            no_cudnn = "torch is not installed"
        else:
            if not torch.cuda.is_available():
                torch, no_cudnn = None, "torch sees no CUDA device"
    if no_cudnn:
        if args.check_targets:  # the targets are ratios against cuDNN: nothing to check them with
            print(f"rnnlab bench: --check-targets needs cuDNN through torch: {no_cudnn}", file=sys.stderr)
            return 2
        print(f"rnnlab bench: {no_cudnn}; timing rnnlab only", file=sys.stderr)
    environment = {"device": what, "numba_cuda": _version("numba-cuda"),
                   "torch": None if torch is None else torch.__version__,
                   "cudnn": None if torch is None else torch.backends.cudnn.version(),
                   "allow_tf32": args.allow_tf32, "repeats": args.repeats}
    print(f"rnnlab bench: {environment}", file=sys.stderr)
    rows = []
    cases = list(itertools.product(cells, args.shapes))
    progress(0, len(cases))
    for cell, shape in cases:
        if should_stop():
            break
        print(f"  {cell} B,T,I,H={','.join(map(str, shape))} ...", file=sys.stderr, flush=True)
        rows.append(measure(Case(cell, shape, gpu, cuda, torch, args.allow_tf32), args.repeats,
                            args.compare_launch, args.compare_tiles))
        progress(len(rows), len(cases))
    from rnnlab.kernels.cuda import _cublas

    # What ran the large GEMMs (cuBLAS and its version, or why rnnlab's own kernel), per dtype reached.
    environment["large_gemms"] = _cublas.status()
    print(f"rnnlab bench: large GEMMs: {environment['large_gemms'] or 'none this large'}", file=sys.stderr)
    if args.json:
        print(json.dumps({"environment": environment, "rows": rows}, indent=1))
    else:
        print(markdown(rows))
    if args.check_targets:
        missed = [r for r in rows if r["met"] is False]
        for r in missed:
            print(f"rnnlab bench: target missed: {r['cell']} B,T,I,H={r['B']},{r['T']},{r['I']},{r['H']}: "
                  f"f+b ratio {r['ratio_fwdbwd']:.2f} < {r['target']:g}", file=sys.stderr)
        return 1 if missed else 0
    return 0


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
