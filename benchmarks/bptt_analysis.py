"""Time ``analysis.jacobian_norms`` (what `rnnlab bptt` spends its time on) on experiments, and
optionally against another commit's ``rnnlab/analysis.py`` in the same process.

    python benchmarks/bptt_analysis.py adding-lstm SPEC.toml ...            # this tree's analysis
    python benchmarks/bptt_analysis.py SPEC.toml --against 474e0cb          # old vs new, side by side

Each target is opened as the lab opens it (batch 1), its backward pass run, then the analysis
timed (median of --repeats) with its peak traced memory; with --against, the largest relative
difference between the two results is printed too.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _module_at(revision: str):
    """``rnnlab/analysis.py`` as it was at ``revision``, importable beside the current package."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:rnnlab/analysis.py"], check=True,
                            capture_output=True, text=True).stdout
    source = source.replace("from .errors", "from rnnlab.errors").replace("from .layers", "from rnnlab.layers")
    path = Path(tempfile.mkdtemp()) / "analysis_at_revision.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("analysis_at_revision", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _time(module, trace, repeats: int) -> tuple[float, float, dict]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = module.jacobian_norms(trace)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    module.jacobian_norms(trace)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(times), peak / 2**20, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="+", help="presets, spec files or run directories")
    parser.add_argument("--against", metavar="REV", help="also time this commit's analysis.py")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from rnnlab import analysis
    from rnnlab.lab import Lab

    other = _module_at(args.against) if args.against else None
    for target in args.targets:
        lab = Lab.open(target)
        lab.run_backward()
        S = analysis.state_size(lab.trace)
        seconds, peak, ours = _time(analysis, lab.trace, args.repeats)
        line = f"{target} (S={S}, T={lab.steps}): {seconds:.2f} s, peak {peak:.0f} MiB"
        if other is not None:
            their_seconds, their_peak, theirs = _time(other, lab.trace, args.repeats)
            worst = max(float(np.nanmax(np.abs(ours[k] - theirs[k]) / np.maximum(np.abs(theirs[k]), 1e-300)))
                        for k in ("norm", "product", "chain"))
            line += (f"; at {args.against}: {their_seconds:.2f} s, peak {their_peak:.0f} MiB; "
                     f"{their_seconds / seconds:.1f}x; largest relative difference {worst:.1e}")
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
