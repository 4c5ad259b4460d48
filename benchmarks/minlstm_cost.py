"""MinLSTM forward+backward time (float32, the sequential scan): the median of 15 calls per shape.

Run it against two versions in alternation to compare them on a shared machine, e.g.

    git archive f9442b1 rnnlab | tar -x -C /tmp/before
    for i in 1 2 3; do PYTHONPATH=/tmp/before python benchmarks/minlstm_cost.py; python benchmarks/minlstm_cost.py; done
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

import rnnlab

SHAPES = [(16, 100, 32, 64), (32, 200, 64, 256)]  # B, T, I, H


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"rnnlab from {rnnlab.__file__}", file=sys.stderr)
    for B, T, I, H in SHAPES:
        layer = rnnlab.MinLSTM(I, H, seed=0)
        x = rng.standard_normal((T, B, I)).astype(np.float32)
        y, _, trace = layer(x)
        layer.backward(trace, np.ones_like(y))  # compiles (or loads) the kernels
        times = []
        for _ in range(15):
            start = time.perf_counter()
            y, _, trace = layer(x)
            layer.backward(trace, np.ones_like(y))
            times.append(time.perf_counter() - start)
        print(f"B={B} T={T} I={I} H={H}: {1e3 * statistics.median(times):.2f} ms")


if __name__ == "__main__":
    main()
