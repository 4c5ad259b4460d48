"""Every GPU kernel with the argument types the host code launches it with, for compiling them
without a GPU: tests/cuda_sim/ptx_cases.py (PTX for sm_90) and benchmarks/cuda_sass.py (what
ptxas makes of it). Imports numba's types only, not numba.cuda."""

from __future__ import annotations

import numpy as np
from numba import from_dtype, types


def kernel_signatures(dtype) -> list[tuple]:
    """(name, kernel getter, argument types) of every kernel, as the host code launches them; the
    getter takes a namespace of the modules (``common``, ``elman``, ``lstm``, ``gru``)."""
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
    elman = [
        ("elman.forward_step", lambda m: m.elman._kernels(name)[0], (i, b, A(3), A(2), A(2), A(3))),
        ("elman.forward_persistent", lambda m: m.elman._kernels(name)[1], (b, A(3), A(2), A(2), A(3))),
        ("elman.backward_step", lambda m: m.elman._kernels(name)[2], (i, b, i, A(2), A(3), A(3), A(3), A(3), A(2))),
        ("elman.backward_persistent", lambda m: m.elman._kernels(name)[3], (b, i, A(2), A(3), A(3), A(3), A(3), A(2))),
        ("elman.forward_resident", lambda m: m.elman._kernels(name)[4], (i, b, A(3), A(2), A(2), A(3))),
        ("elman.backward_resident", lambda m: m.elman._kernels(name)[5],
         (i, b, i, A(2), A(3), A(3), A(3), A(3), A(2))),
    ]
    lstm = [
        ("lstm.forward_step", lambda m: m.lstm._kernels(name)[0], (i, A(3), A(2), A(2), A(2), A(3), A(3), A(4))),
        ("lstm.forward_persistent", lambda m: m.lstm._kernels(name)[1], (A(3), A(2), A(2), A(2), A(3), A(3), A(4))),
        ("lstm.backward_step", lambda m: m.lstm._kernels(name)[2],
         (i, i, A(2), A(3), A(4), A(3), A(3), A(3), A(2), A(2), A(2))),
        ("lstm.backward_persistent", lambda m: m.lstm._kernels(name)[3],
         (i, A(2), A(3), A(4), A(3), A(3), A(3), A(2), A(2), A(2))),
        ("lstm.forward_resident", lambda m: m.lstm._kernels(name)[4], (i, A(3), A(2), A(2), A(2), A(3), A(3), A(4))),
        ("lstm.backward_resident", lambda m: m.lstm._kernels(name)[5],
         (i, i, A(2), A(3), A(4), A(3), A(3), A(3), A(2), A(2), A(2))),
    ]
    gru = [
        ("gru.input_bias", lambda m: m.gru._kernels(name)[0], (A(1), A(1), A(1))),
        ("gru.forward_step", lambda m: m.gru._kernels(name)[1], (i, A(3), A(2), A(1), A(2), A(3), A(4), A(3))),
        ("gru.forward_persistent", lambda m: m.gru._kernels(name)[2], (A(3), A(2), A(1), A(2), A(3), A(4), A(3))),
        ("gru.backward_step", lambda m: m.gru._kernels(name)[3],
         (i, i, A(2), A(3), A(4), A(3), A(3), A(3), A(3), A(3), A(2), A(2))),
        ("gru.backward_persistent", lambda m: m.gru._kernels(name)[4],
         (i, A(2), A(3), A(4), A(3), A(3), A(3), A(3), A(3), A(2), A(2))),
        ("gru.forward_resident", lambda m: m.gru._kernels(name)[5], (i, A(3), A(2), A(1), A(2), A(3), A(4), A(3))),
        ("gru.backward_resident", lambda m: m.gru._kernels(name)[6],
         (i, i, A(2), A(3), A(4), A(3), A(3), A(3), A(3), A(3), A(2), A(2))),
    ]
    return common + elman + lstm + gru
