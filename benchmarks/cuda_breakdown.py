"""Where a GPU forward+backward spends its time: the GEMMs against the recurrence, and rnnlab's
GEMM against cuBLAS at the same shapes. The B >= 64 target (within 2x of cuDNN) needs this split
before any kernel is rewritten.

    python benchmarks/cuda_breakdown.py                          # LSTM and GRU at B=64 and B=256
    python benchmarks/cuda_breakdown.py --cells lstm --shapes 256,100,512,1024 --json
    python benchmarks/cuda_breakdown.py --gemm-tile 128,128,8,16,16 --gemm-tile 128,64,8,16,16

A forward is one GEMM, the input projection x W_ih^T + b of all T*B rows, then the recurrence.
A backward is the recurrence, then three GEMMs over all steps: dx = d_pre W_ih,
dW_ih = d_pre^T x and dW_hh = d_pre^T h. The script times the whole device forward and
forward+backward (as ``rnnlab.bench_cuda`` does), and each GEMM alone on arrays of the same
shapes. The recurrences are the differences (the backward's also holds its two small kernels,
dL/dh_0 and the bias gradients' column sums). With torch, ``torch.matmul`` (cuBLAS, TF32 off)
is timed on the same GEMMs. Times are milliseconds, the median of interleaved rounds; TFLOP/s
counts 2 flops a multiply-add.

``--gemm-tile BM,BN,BK,TX,TY`` (repeatable) times the whole breakdown again with another GEMM
tile (BM x BN outputs a block, BK deep a stage, TX x TY threads; the shipped tile is
64,64,16,16,16), the forward and backward included, since they run the same GEMM. Each tile is
first checked against NumPy on small products, every transposition.

Everything here is rnnlab's own GEMM kernel: the script sets ``RNNLAB_CUBLAS=0`` before the
first product, so the forward and backward it splits run the GEMM it times (a GPU cell otherwise
hands its large GEMMs to cuBLAS; see ``rnnlab/kernels/cuda/_cublas.py``).

Without a usable GPU (and without NUMBA_ENABLE_CUDASIM=1) it says why and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

SHAPES = [(64, 50, 256, 512), (256, 100, 512, 1024)]


def gemm_cases(case) -> dict[str, tuple[str, int, int, int]]:
    """The GEMMs of one forward+backward: name -> (what, M, N, K)."""
    from rnnlab.bench_cuda import GATES

    B, T, I, H = case.shape
    GH, TB = GATES[case.cell] * H, T * B
    return {"x W_ih^T": ("forward", TB, GH, I), "d_pre W_ih": ("backward", TB, I, GH),
            "d_pre^T x": ("backward", GH, I, TB), "d_pre^T h": ("backward", GH, H, TB)}


def check_gemm(tile) -> float:
    """The largest relative error of the current GEMM tile against NumPy (float64 products of
    float32 operands) over every transposition, with and without a bias, at sizes that leave
    partial tiles and split the reduction."""
    from rnnlab.kernels.cuda._common import gemm, to_device

    rng = np.random.default_rng(2)
    M, N, K = 3 * tile[0] + 7, 2 * tile[1] + 5, 40 * tile[2] + 3
    worst = 0.0
    for trans_a in (False, True):
        for trans_b in (False, True):
            a = rng.standard_normal((K, M) if trans_a else (M, K)).astype(np.float32)
            b = rng.standard_normal((N, K) if trans_b else (K, N)).astype(np.float32)
            bias = rng.standard_normal(N).astype(np.float32)
            want = (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b).astype(np.float64)
            for with_bias in (False, True):
                got = gemm(to_device(a), to_device(b), trans_a=trans_a, trans_b=trans_b,
                           bias=to_device(bias) if with_bias else None).copy_to_host()
                expected = want + bias if with_bias else want
                worst = max(worst, float(np.abs(got - expected).max() / np.abs(expected).max()))
    return worst


def breakdown(case, repeats: int) -> dict:
    """One cell at one shape: the row of times (ms) and rates (TFLOP/s)."""
    from rnnlab.bench_cuda import GATES, time_interleaved
    from rnnlab.kernels.cuda._common import gemm, rows

    cuda, torch = case.cuda, case.torch
    B, T, I, H = case.shape
    GH, TB = GATES[case.cell] * H, T * B
    rng = np.random.default_rng(1)
    d = case.dev
    d_pre = cuda.to_device(rng.standard_normal((TB, GH)).astype(np.float32))
    h_rows = cuda.to_device(rng.standard_normal((TB, H)).astype(np.float32))
    bias = d["b_ih"] if case.cell == "gru" else d["bias"]
    x_rows = rows(d["x"])
    ours = {"x W_ih^T": lambda: gemm(x_rows, d["w_ih"], trans_b=True, bias=bias),
            "d_pre W_ih": lambda: gemm(d_pre, d["w_ih"]),
            "d_pre^T x": lambda: gemm(d_pre, x_rows, trans_a=True),
            "d_pre^T h": lambda: gemm(d_pre, h_rows, trans_a=True)}
    impls = {"fwd": (case.rnnlab_forward, cuda.synchronize), "fwdbwd": (case.rnnlab_forward_backward, cuda.synchronize)}
    impls.update({f"ours {name}": (func, cuda.synchronize) for name, func in ours.items()})
    if torch is not None:
        t = {k: torch.from_numpy(v.copy_to_host()).cuda() for k, v in (("d_pre", d_pre), ("h", h_rows))}
        tx, tw = case.t["x"].detach().reshape(TB, I), case.t["w_ih"]
        tb = case.t["b_ih" if case.cell == "gru" else "bias"]
        theirs = {"x W_ih^T": lambda: torch.addmm(tb, tx, tw.T), "d_pre W_ih": lambda: t["d_pre"] @ tw,
                  "d_pre^T x": lambda: t["d_pre"].T @ tx, "d_pre^T h": lambda: t["d_pre"].T @ t["h"]}
        impls.update({f"cuBLAS {name}": (func, torch.cuda.synchronize) for name, func in theirs.items()})
    ms = time_interleaved(impls, repeats)

    flops = {name: 2.0 * M * N * K for name, (_, M, N, K) in gemm_cases(case).items()}
    recurrence_flops = 2.0 * TB * GH * H  # h_{t-1} W_hh^T each step; the backward's d_pre W_hh the same
    from rnnlab.kernels.cuda import _common

    tile = [_common.GEMM_BM, _common.GEMM_BN, _common.GEMM_BK, _common.GEMM_TX, _common.GEMM_TY]
    row = {"cell": case.cell, "gemm_tile": tile, "B": B, "T": T, "I": I, "H": H, "fwd_ms": ms["fwd"], "bwd_ms": ms["fwdbwd"] - ms["fwd"]}
    gemm_fwd = ms["ours x W_ih^T"]
    gemm_bwd = sum(ms[f"ours {n}"] for n, (what, *_) in gemm_cases(case).items() if what == "backward")
    row.update({"fwd_gemm_ms": gemm_fwd, "fwd_recurrence_ms": ms["fwd"] - gemm_fwd,
                "bwd_gemms_ms": gemm_bwd, "bwd_recurrence_ms": row["bwd_ms"] - gemm_bwd})
    row["recurrence_tflops"] = {"fwd": recurrence_flops / row["fwd_recurrence_ms"] / 1e9,
                                "bwd": recurrence_flops / row["bwd_recurrence_ms"] / 1e9}
    row["gemms"] = {}
    for name in ours:
        row["gemms"][name] = {"ours_ms": ms[f"ours {name}"], "ours_tflops": flops[name] / ms[f"ours {name}"] / 1e9}
        if torch is not None:
            row["gemms"][name].update(cublas_ms=ms[f"cuBLAS {name}"],
                                      cublas_tflops=flops[name] / ms[f"cuBLAS {name}"] / 1e9)
    return row


def describe(row: dict) -> str:
    lines = [f"{row['cell']} B,T,I,H={row['B']},{row['T']},{row['I']},{row['H']} "
             f"GEMM tile {','.join(map(str, row['gemm_tile']))}: "
             f"fwd {row['fwd_ms']:.3f} ms = GEMM {row['fwd_gemm_ms']:.3f} + recurrence {row['fwd_recurrence_ms']:.3f}; "
             f"bwd {row['bwd_ms']:.3f} ms = GEMMs {row['bwd_gemms_ms']:.3f} "
             f"+ recurrence {row['bwd_recurrence_ms']:.3f}; "
             f"recurrence TFLOP/s fwd {row['recurrence_tflops']['fwd']:.1f} bwd {row['recurrence_tflops']['bwd']:.1f}"]
    for name, g in row["gemms"].items():
        cublas = f"  cuBLAS {g['cublas_ms']:.3f} ms {g['cublas_tflops']:.1f} TFLOP/s" if "cublas_ms" in g else ""
        lines.append(f"  {name:<11} ours {g['ours_ms']:.3f} ms {g['ours_tflops']:.1f} TFLOP/s{cublas}")
    return "\n".join(lines)


def _parse_tile(text: str) -> tuple[int, ...]:
    from rnnlab.kernels.cuda._tile import gemm_tile_problem

    try:
        tile = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a GEMM tile is five integers BM,BN,BK,TX,TY, got {text!r}") from None
    problem = gemm_tile_problem(*tile) if len(tile) == 5 else "it needs five sizes"
    if problem:
        raise argparse.ArgumentTypeError(f"GEMM tile {text}: {problem}")
    return tile


def main(argv: list[str] | None = None) -> int:
    from rnnlab.bench_cuda import CELLS, Case, _parse_shape, open_gpu

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="lstm,gru", help="comma-separated: rnn_tanh, lstm, gru")
    parser.add_argument("--shapes", nargs="+", type=_parse_shape, default=SHAPES, metavar="B,T,I,H")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-torch", action="store_true", help="rnnlab's GEMM only, no cuBLAS")
    parser.add_argument("--gemm-tile", action="append", type=_parse_tile, default=[], metavar="BM,BN,BK,TX,TY",
                        help="time the breakdown again with this GEMM tile (repeatable)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ["RNNLAB_CUBLAS"] = "0"  # the forward and backward split here must run the GEMM timed here
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    if not cells or any(c not in CELLS for c in cells):
        parser.error(f"cells must be among {', '.join(CELLS)}, got {args.cells!r}")

    opened = open_gpu("cuda_breakdown")
    if opened is None:
        return 2
    gpu, cuda = opened
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None and not torch.cuda.is_available():
            torch = None
    from rnnlab.kernels.cuda import _common

    rows, checks = [], {}
    for tile in [None, *args.gemm_tile]:
        if tile is not None:
            _common.set_gemm_tile(*tile)
            checks[",".join(map(str, tile))] = error = check_gemm(tile)
            if not args.json:
                print(f"GEMM tile {','.join(map(str, tile))}: largest relative error against NumPy {error:.1e}",
                      flush=True)
        for cell in cells:
            for shape in args.shapes:
                row = breakdown(Case(cell, shape, gpu, cuda, torch if tile is None else None, allow_tf32=False),
                                args.repeats)
                rows.append(row)
                if not args.json:
                    print(describe(row), flush=True)
    if args.json:
        print(json.dumps({"rows": rows, "gemm_tile_errors": checks}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
