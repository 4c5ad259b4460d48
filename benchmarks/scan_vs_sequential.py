"""Parallel-in-time scan against the sequential loop: MinGRU's three strategies beside rnnlab.GRU.

Forward and forward+backward times (float32, milliseconds, medians of interleaved repeats in one
process) against the sequence length T, at B = 1 and 8, H = I = 64:

    python benchmarks/scan_vs_sequential.py                      # the full table (a few minutes)
    python benchmarks/scan_vs_sequential.py --lengths 64 1024 --repeats 3
    python benchmarks/scan_vs_sequential.py --cell minlstm       # or lru

Columns: MinGRU (or the chosen cell) with ``method="sequential"`` (the time loop, channels split
across threads), ``"scan"`` (chunked scan, one time chunk per thread) and ``"blelloch"`` (the
log-depth tree, one thread per block of channels); ``rnnlab.GRU`` at the same sizes (its
recurrent matrix product per step makes it the sequential baseline a minGRU replaces), up to
``--gru-max-length``. The input projections are one GEMM in every minGRU column: the strategies
differ only in how the linear recurrence is evaluated. Each case runs once untimed first (compiles
and warms the caches); then every repeat runs every column once, so load from other processes
spreads across columns. Prints a markdown table; its last column gives the threads the recurrence
ran on (channel blocks of "sequential" / time chunks of "scan"; 1/1: the same single-thread loop).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import rnnlab
from rnnlab.kernels import kernel_threads
from rnnlab.kernels.scan import auto_chunks, channel_blocks
from rnnlab.layers.minimal import LRU, MinGRU, MinLSTM

CELLS = {"mingru": MinGRU, "minlstm": MinLSTM, "lru": LRU}
METHODS = ("sequential", "scan", "blelloch")


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _cases(cell: str, B: int, T: int, H: int, with_gru: bool):
    """(column name, forward(), forward_backward()) for every column of one row."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, H)).astype(np.float32)
    cases = []
    layer = CELLS[cell](H, H, seed=0)
    dy = np.ones((T, B, layer.output_size), np.float32)
    for method in METHODS:
        def forward(method=method):
            layer.forward(x, method=method)

        def forward_backward(method=method):
            _, _, trace = layer.forward(x, method=method)
            layer.backward(trace, dy, method=method)

        cases.append((method, forward, forward_backward))
    if with_gru:
        gru = rnnlab.GRU(H, H, seed=0)
        dy_gru = np.ones((T, B, H), np.float32)

        def gru_forward():
            gru.forward(x)

        def gru_forward_backward():
            _, _, trace = gru.forward(x)
            gru.backward(trace, dy_gru)

        cases.append(("GRU", gru_forward, gru_forward_backward))
    return cases


def measure(cell: str, B: int, T: int, H: int, repeats: int, with_gru: bool) -> dict[str, tuple[float, float]]:
    """Median forward and forward+backward seconds per column."""
    cases = _cases(cell, B, T, H, with_gru)
    for _, forward, forward_backward in cases:  # compile, allocate, warm up
        forward_backward()
    times = {name: ([], []) for name, _, _ in cases}
    for _ in range(repeats):
        for name, forward, forward_backward in cases:
            times[name][0].append(_timed(forward))
            times[name][1].append(_timed(forward_backward))
    return {name: (statistics.median(f), statistics.median(fb)) for name, (f, fb) in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cell", choices=sorted(CELLS), default="mingru")
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 256, 1024, 4096, 16384, 65536])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--hidden", type=int, default=64, help="H = I")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gru-max-length", type=int, default=16384, help="longest T timed for rnnlab.GRU")
    args = parser.parse_args()

    name = CELLS[args.cell].__name__
    columns = [*METHODS, "GRU"]
    print(f"{name} vs rnnlab.GRU, float32, H = I = {args.hidden}, {kernel_threads()} threads, "
          f"median of {args.repeats} interleaved runs, milliseconds\n")
    header = " | ".join(f"{c} fwd" for c in columns) + " | " + " | ".join(f"{c} f+b" for c in columns)
    print(f"| B | T | {header} | fastest f+b | threads seq/scan |")
    print("| ---: | ---: |" + " ---: |" * (2 * len(columns)) + " --- | ---: |")
    for B in args.batches:
        for T in args.lengths:
            r = measure(args.cell, B, T, args.hidden, args.repeats, with_gru=T <= args.gru_max_length)
            cells = [f"{r[c][0] * 1e3:.3g}" if c in r else "-" for c in columns]
            cells += [f"{r[c][1] * 1e3:.3g}" if c in r else "-" for c in columns]
            fastest = min((c for c in METHODS), key=lambda c: r[c][1])
            N, threads = B * args.hidden, kernel_threads()  # how each strategy splits the recurrence
            split = f"{channel_blocks(T, N, threads)}/{auto_chunks(T, N, threads)}"
            print(f"| {B} | {T} | {' | '.join(cells)} | {fastest} | {split} |", flush=True)


if __name__ == "__main__":
    main()
