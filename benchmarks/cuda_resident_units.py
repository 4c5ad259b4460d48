"""Time the resident recurrence at small batches with fewer units a block (more blocks), on a GPU.

A resident block holds as many units' weights as fit 48 KB: at B=1, H=256, 43 units (Elman), six
blocks, each lane of a K-slice computing two outputs. A step there is a chain of latencies (stage
h_{t-1}, the product, the partial sums, a grid sync), so a smaller product on more blocks may or
may not shorten it. Forward and forward+backward, ms (median of interleaved rounds, as ``rnnlab
bench``), resident forced, for each of ``--caps``: "rule", the units a block holds by default
(at batch 1, one output a lane where that takes several blocks anyway); "all", as many as fit
(``_resident.RESIDENT_ONE_OUTPUT_A_LANE`` off); a number, at most that many units a block
(``_resident.RESIDENT_MAX_UNITS``, the rule off):

    python benchmarks/cuda_resident_units.py --cells rnn_tanh,lstm,gru --shapes 1,100,64,256 \\
        --caps rule,all,32,16,8

Without a usable GPU it prints why and exits 2.
"""

from __future__ import annotations

import argparse
import functools
import sys


def main(argv: list[str] | None = None) -> int:
    from rnnlab import bench_cuda

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="rnn_tanh,lstm,gru")
    parser.add_argument("--shapes", nargs="+", type=bench_cuda._parse_shape, default=[(1, 100, 64, 256)],
                        metavar="B,T,I,H")
    parser.add_argument("--caps", default="rule,all,32,16,8",
                        help="rule: the default; all: as many as fit; a number: at most that many units a block")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    caps = args.caps.split(",")
    bad = [cap for cap in caps if cap not in ("rule", "all") and not (cap.isdigit() and int(cap) > 0)]
    if bad:
        parser.error(f"--caps takes rule, all or positive numbers, got {', '.join(bad)}")

    opened = bench_cuda.open_gpu("cuda_resident_units")
    if opened is None:
        return 2
    gpu, cuda = opened
    from rnnlab.kernels.cuda import _resident

    def capped(cap: str, func):
        """``func`` with the units a block as ``cap`` says."""
        if cap == "rule":
            return func
        func = bench_cuda.with_setting(_resident, "RESIDENT_ONE_OUTPUT_A_LANE", False, func)
        return func if cap == "all" else bench_cuda.with_setting(_resident, "RESIDENT_MAX_UNITS", int(cap), func)

    print("| cell | B,T,I,H | units a block | blocks | forward | f+b |")
    print("|---|---|---|---|---|---|")
    for cell in args.cells.split(","):
        for shape in args.shapes:
            case = bench_cuda.Case(cell, shape, gpu, cuda, None, False)
            B, _, _, H = shape
            rows, k = _resident.resident_matrix(bench_cuda.GATES[cell], H, False)
            impls = {}
            for cap in caps:
                for what, func in (("fwd", case.rnnlab_forward), ("fwdbwd", case.rnnlab_forward_backward)):
                    impls[f"{cap}-{what}"] = (capped(cap, functools.partial(func, "resident")), cuda.synchronize)
            times = bench_cuda.time_interleaved(impls, args.repeats)
            for cap in caps:
                units = capped(cap, lambda: _resident.resident_units(H, B, rows, k, "float32"))()
                print(f"| {cell} | {','.join(map(str, shape))} | {cap}: {units} | {-(-H // units)} "
                      f"| {times[f'{cap}-fwd']:.3f} | {times[f'{cap}-fwdbwd']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
