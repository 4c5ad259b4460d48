"""Time the GPU recurrence with other tile shapes, one subprocess per variant, in one device call.

Each variant runs in a fresh interpreter (its kernels compiled apart from the others') that makes
it the step tile of every shape (``_common.set_step_tile``) and then runs :mod:`rnnlab.bench_cuda`
(``--json``, no torch by default). Prints one line per variant and shape: forward and
forward+backward milliseconds, the variant's forward against the CPU kernels at the first shape
(max |hs - hs_cpu| / max |hs_cpu|), and y against cuDNN with --torch.

    python benchmarks/cuda_tile_variants.py --shape 32,100,64,128 --shape 64,50,256,512 \\
        --variant 32,8,4,32 --variant 16,8,4,32 --variant 32,8,2,32 --variant 32,4,4,16

A variant is UNITS,ROW_THREADS,ROWS_PER_THREAD,K: a block of UNITS x ROW_THREADS threads owns
UNITS hidden units x ROW_THREADS*ROWS_PER_THREAD sequences, K deep per shared-memory stage
(the shipped tiles are 32,8,4,32 and its quarter 16,8,2,32, by shape). Without a GPU (and
without NUMBA_ENABLE_CUDASIM=1) every variant reports why and the script exits 2.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys
import numpy as np
from rnnlab.kernels.cuda import cuda_available
ok, why = cuda_available()
if not ok:
    print("device 'cuda' is not available: " + why, file=sys.stderr)
    sys.exit(2)
import rnnlab.kernels.cuda._common as c
c.set_step_tile(*{variant})
from rnnlab import bench_cuda, kernels
from rnnlab.kernels import cuda as gpu
argv = {argv}
errors = {{}}
for cell in argv[argv.index("--cells") + 1].split(","):  # this tile's forward against the CPU kernels
    shape = bench_cuda._parse_shape(argv[argv.index("--shapes") + 1])
    h = bench_cuda.Case(cell, shape, gpu, gpu.require_cuda(), None, False).host
    if cell == "lstm":
        args = (h["x"], h["w_ih"], h["w_hh"], h["bias"], h["h0"], h["c0"])
        ours, ref = gpu.lstm_forward(*args)[0], kernels.lstm_forward(*args, 1)[0]
    elif cell == "gru":
        args = (h["x"], h["w_ih"], h["w_hh"], h["b_ih"], h["b_hh"], h["h0"])
        ours, ref = gpu.gru_forward(*args)[0], kernels.gru_forward(*args, 1)[0]
    else:
        args = (h["x"], h["w_ih"], h["w_hh"], h["bias"], h["h0"], False)
        ours, ref = gpu.elman_forward(*args), kernels.elman_forward(*args, 1)
    errors[cell] = float(np.abs(ours - ref).max() / np.abs(ref).max())
print(json.dumps(errors), file=sys.stderr)
sys.exit(bench_cuda.main(argv))
"""

def _variant(text: str) -> tuple[int, int, int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or min(values) < 1 or values[0] * values[1] > 1024:
        raise argparse.ArgumentTypeError(
            f"a variant is UNITS,ROW_THREADS,ROWS_PER_THREAD,K (positive, at most 1024 threads), got {text!r}")
    from rnnlab.kernels.cuda._tile import step_tile_problem  # no numba.cuda: checked before any GPU work

    problem = step_tile_problem(*values)
    if problem:
        raise argparse.ArgumentTypeError(f"variant {text!r}: {problem}")
    return values


def _shape(text: str) -> str:
    """A B,T,I,H shape, checked here (bench_cuda's own check) so a typo fails before any variant runs."""
    from rnnlab.bench_cuda import _parse_shape

    return ",".join(map(str, _parse_shape(text)))


def _cells(text: str) -> str:
    from rnnlab.bench_cuda import CELLS

    cells = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in cells if c not in CELLS]
    if not cells or unknown:
        raise argparse.ArgumentTypeError(f"cells must be among {', '.join(CELLS)}, got {text!r}")
    return ",".join(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", type=_variant, required=True, metavar="U,RT,RPT,K")
    parser.add_argument("--shape", action="append", required=True, type=_shape, metavar="B,T,I,H")
    parser.add_argument("--cells", default="lstm", type=_cells, help="comma-separated: rnn_tanh, lstm, gru")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--torch", action="store_true", help="time cuDNN too (and check y against it)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per variant")
    args = parser.parse_args(argv)
    status = 0
    for variant in args.variant:
        bench_argv = ["--json", "--cells", args.cells, "--repeats", str(args.repeats), "--shapes", *args.shape]
        if not args.torch:
            bench_argv.append("--no-torch")
        code = CHILD.format(variant=variant, argv=bench_argv)
        try:
            done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                  timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"{variant}: over {args.timeout:.0f} s")
            status = 1
            continue
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            print(f"{variant}: {reason}")
            status = max(status, 2 if done.returncode == 2 else 1)
            continue
        errors = json.loads(next(line for line in done.stderr.splitlines() if line.startswith("{")))
        for row in json.loads(done.stdout)["rows"]:
            check = f"  y vs cuDNN {row['y_rel_diff']:.1e}" if "y_rel_diff" in row else ""
            print(f"{variant} {row['cell']} B,T,I,H={row['B']},{row['T']},{row['I']},{row['H']}: "
                  f"fwd {row['rnnlab_fwd_ms']:.3f} ms  f+b {row['rnnlab_fwdbwd_ms']:.3f} ms  "
                  f"hs vs CPU {errors[row['cell']]:.1e}{check}")
    return status


if __name__ == "__main__":
    sys.exit(main())
