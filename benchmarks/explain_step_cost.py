"""The explain panel's cost per key at large H: ``explain_step`` of this tree against an older revision's.

The lab calls :func:`rnnlab.explain.explain_step` on every cursor or unit key. Run from the repository root:

    python benchmarks/explain_step_cost.py --against b8a9438 --sizes 1024 4096

Both run in this process, interleaved (``_timing.interleaved_medians``: medians of 7 rounds, one LSTM step
explained), and must give the same equations, numbers and text.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

import numpy as np

import rnnlab
from _timing import interleaved_medians
from rnnlab import explain


def older_explain(revision: str) -> types.ModuleType:
    """rnnlab/explain.py as it was at ``revision``, imported beside this tree's."""
    source = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent.parent), "show",
                             f"{revision}:rnnlab/explain.py"], capture_output=True, text=True, check=True).stdout
    module = types.ModuleType("rnnlab._explain_older")
    module.__package__ = "rnnlab"
    sys.modules[module.__name__] = module  # (its dataclasses look their module up)
    exec(compile(source, f"explain.py@{revision}", "exec"), module.__dict__)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="b8a9438", help="the older revision (default: b8a9438)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096], help="hidden sizes H")
    args = parser.parse_args()
    older = older_explain(args.against)
    print(f"| H | {args.against} (ms) | now (ms) |\n|---|---|---|")
    for hidden in args.sizes:
        lstm = rnnlab.LSTM(8, hidden, seed=0)
        _, _, trace = lstm.forward(np.random.default_rng(0).standard_normal((5, 1, 8), dtype=np.float32))
        if repr(older.explain_step(trace, 2, 3)) != repr(explain.explain_step(trace, 2, 3)):
            raise SystemExit(f"H={hidden}: the two explain_step differ")
        seconds = interleaved_medians({"older": lambda: older.explain_step(trace, 2, 3),
                                       "now": lambda: explain.explain_step(trace, 2, 3)}, repeats=7)
        print(f"| {hidden} | {seconds['older'] * 1e3:.2f} | {seconds['now'] * 1e3:.2f} |")


if __name__ == "__main__":
    main()
