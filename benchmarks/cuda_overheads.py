"""What a GPU call costs before any arithmetic, on numba-cuda: the numbers behind the CUDA
kernels' design (one persistent launch per pass instead of one launch per step).

    python benchmarks/cuda_overheads.py            # needs a CUDA GPU and numba-cuda

Prints microseconds per operation (median of 7 rounds of 200): a launch of an empty kernel with
no argument and with six device-array arguments (the per-step kernels take six to twelve), the
latter through numba-cuda and through a launch plan (``rnnlab.kernels.cuda._launch``), a
device allocation (numba's, then rnnlab's block cache: ``rnnlab.kernels.cuda._memory``), a small
device-to-device copy, and one grid-wide barrier of a persistent kernel on 1, 2, 8, 32 blocks and
as many as fit (the per-step cost of ``recurrence="persistent"`` and ``"resident"``).
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np


def main() -> int:
    from rnnlab.errors import UserError
    from rnnlab.kernels.cuda import require_cuda

    try:
        cuda = require_cuda()
    except UserError as exc:
        print(f"cuda_overheads: {exc}", file=sys.stderr)
        return 2

    @cuda.jit
    def empty():
        pass

    @cuda.jit
    def six(a, b, c, d, e, f):
        if cuda.grid(1) == 0:
            a[0, 0, 0] = b[0, 0] + c[0, 0, 0] + d[0, 0] + e[0, 0, 0] + f[0, 0]

    @cuda.jit
    def barriers(steps, out):
        grid = cuda.cg.this_grid()
        for t in range(steps):
            if cuda.grid(1) == 0:
                out[0] += 1.0
            grid.sync()

    from rnnlab.kernels.cuda._launch import launch
    from rnnlab.kernels.cuda._memory import block_cache, device_empty

    arrays = [cuda.to_device(np.ones((4, 4, 4) if i % 2 == 0 else (4, 4), np.float32)) for i in range(6)]
    out = cuda.to_device(np.zeros(1, np.float32))
    small = cuda.to_device(np.ones((64, 512), np.float32))
    target = cuda.device_array((64, 512), np.float32)
    empty[1, 32]()
    six[1, 32](*arrays)
    barriers[1, 256](1, out)
    blocks = barriers.overloads[next(iter(barriers.overloads))].max_cooperative_grid_blocks(256)
    steps = 1000

    cases = {
        "launch, no arguments": lambda: empty[1, 32](),
        "launch, six device arrays": lambda: six[1, 32](*arrays),
        "launch, six device arrays, through a plan": lambda: launch(six, 1, 32, tuple(arrays)),
        "device_array (101, 64, 512) float32": lambda: cuda.device_array((101, 64, 512), np.float32),
        "device_empty (101, 64, 512) float32, cached": lambda: device_empty((101, 64, 512), np.float32),
        "device_array (16, 64) float32": lambda: cuda.device_array((16, 64), np.float32),
        "device_empty (16, 64) float32, cached": lambda: device_empty((16, 64), np.float32),
        "copy_to_device, device (64, 512) float32": lambda: target.copy_to_device(small),
    }
    print(f"device: {cuda.get_current_device().name}; {blocks} resident blocks of 256 threads")
    for name, func in cases.items():
        rounds = []
        for _ in range(7):
            cuda.synchronize()
            start = time.perf_counter()
            for _ in range(200):
                func()
            cuda.synchronize()
            rounds.append((time.perf_counter() - start) / 200 * 1e6)
        print(f"{name:45s} {statistics.median(rounds):8.1f} us")
    cache = block_cache()
    print(f"block cache: {cache.hits} hits, {cache.misses} misses")
    for grid in sorted({1, 2, 8, 32, blocks}):  # a small shape's persistent grid has few blocks
        if grid > blocks:
            continue
        rounds = []
        for _ in range(7):
            cuda.synchronize()
            start = time.perf_counter()
            barriers[grid, 256](steps, out)
            cuda.synchronize()
            rounds.append((time.perf_counter() - start) / steps * 1e6)
        print(f"{'grid sync, ' + str(grid) + ' blocks (per barrier)':45s} {statistics.median(rounds):8.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
