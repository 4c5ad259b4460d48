"""Every GPU kernel with the argument types the host code launches it with, for compiling them
without a GPU: tests/cuda_sim/ptx_cases.py (PTX for sm_90) and benchmarks/cuda_sass.py (what
ptxas makes of it). Imports numba's types only, not numba.cuda."""

from __future__ import annotations

import numpy as np
from numba import from_dtype, types


def kernel_signatures(dtype, small_tile: bool = True) -> list[tuple]:
    """(name, kernel getter, argument types) of every kernel, as the host code launches them; the
    getter takes a namespace of the modules (``common``, ``elman``, ``lstm``, ``gru``).

    The cells' kernels are built on the step tile in use (``common.STEP_TILE``, or the one
    ``set_step_tile`` chose for every shape); with ``small_tile``, the step, persistent and
    "gemm" kernels also on ``common.SMALL_STEP_TILE``, named ``<cell>.small_tile.<kernel>``."""
    nb = from_dtype(np.dtype(dtype))
    i, b = types.int64, types.boolean

    def A(ndim):
        return types.Array(nb, ndim, "C")

    common = [
        ("gemm", lambda m: m.common.for_dtype(dtype).gemm_kernel, (A(2), A(2), A(2), A(1), b, b, b, i)),
        ("colsum", lambda m: m.common.for_dtype(dtype).colsum_kernel, (A(2), A(1))),
        ("fill", lambda m: m.common.for_dtype(dtype).fill_kernel, (A(2), nb)),
        ("bias_rows", lambda m: m.common.for_dtype(dtype).bias_rows_kernel, (A(2), A(1))),
        ("recurrent_grad", lambda m: m.common.for_dtype(dtype).recurrent_grad_kernel, (A(2), A(2), A(2), b, A(2))),
    ]
    name = np.dtype(dtype).name

    def getter(module: str, kernel: str, tile: str = "STEP_TILE"):
        def get(m):
            shape = m.common.STEP_TILE_OVERRIDE or getattr(m.common, tile)
            return getattr(getattr(m, module)._kernels(name, shape), kernel)

        return get

    def cell(module: str, table: dict) -> list[tuple]:
        """One cell's kernels; each step kernel also as its "gemm" twin, which takes the step's
        product (a 2-D array) right after the step index."""
        rows = []
        for kernel, types_ in table.items():
            tiles = [("", "STEP_TILE")]
            if small_tile and not kernel.endswith("_resident"):  # the resident kernels hold no step tile
                tiles.append(("small_tile.", "SMALL_STEP_TILE"))
            for prefix, tile in tiles:
                rows.append((f"{module}.{prefix}{kernel}", getter(module, kernel, tile), types_))
                if kernel.endswith("_step"):
                    twin = kernel.replace("_step", "_from_product")
                    rows.append((f"{module}.{prefix}{twin}", getter(module, twin, tile),
                                 (types_[0], A(2), *types_[1:])))
        return rows

    elman = cell("elman", {
        "forward_step": (i, b, A(3), A(2), A(2), A(3)),
        "forward_persistent": (b, A(3), A(2), A(2), A(3)),
        "backward_step": (i, b, i, A(2), A(3), A(3), A(3), A(3), A(2)),
        "backward_persistent": (b, i, A(2), A(3), A(3), A(3), A(3), A(2)),
        "forward_resident": (i, b, A(3), A(2), A(2), A(3)),
        "backward_resident": (i, b, i, A(2), A(3), A(3), A(3), A(3), A(2)),
    })
    lstm = cell("lstm", {
        "forward_step": (i, A(3), A(2), A(2), A(2), A(3), A(3), A(4)),
        "forward_persistent": (A(3), A(2), A(2), A(2), A(3), A(3), A(4)),
        "backward_step": (i, i, A(2), A(3), A(4), A(3), A(3), A(3), A(2), A(2), A(2)),
        "backward_persistent": (i, A(2), A(3), A(4), A(3), A(3), A(3), A(2), A(2), A(2)),
        "forward_resident": (i, A(3), A(2), A(2), A(2), A(3), A(3), A(4)),
        "backward_resident": (i, i, A(2), A(3), A(4), A(3), A(3), A(3), A(2), A(2), A(2)),
    })
    gru = cell("gru", {
        "input_bias": (A(1), A(1), A(1)),
        "forward_step": (i, A(3), A(2), A(1), A(2), A(3), A(4), A(3)),
        "forward_persistent": (A(3), A(2), A(1), A(2), A(3), A(4), A(3)),
        "backward_step": (i, i, A(2), A(3), A(4), A(3), A(3), A(3), A(3), A(3), A(2), A(2)),
        "backward_persistent": (i, A(2), A(3), A(4), A(3), A(3), A(3), A(3), A(3), A(2), A(2)),
        "forward_resident": (i, A(3), A(2), A(1), A(2), A(3), A(4), A(3)),
        "backward_resident": (i, i, A(2), A(3), A(4), A(3), A(3), A(3), A(3), A(3), A(2), A(2)),
    })
    return common + elman + lstm + gru
