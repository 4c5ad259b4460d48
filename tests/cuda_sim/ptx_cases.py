"""Every GPU kernel compiles for a real GPU (PTX for sm_90), with no float64 in float32 kernels.

Run by tests/test_cuda.py in a subprocess WITHOUT the simulator: the simulator runs kernels as
Python and so never type-checks or lowers them for the device. No GPU is needed, only NVVM (the
``numba-cuda[cu12]``/``[cu13]`` extras install it); without it every case is skipped.
Not collected by a plain ``pytest`` run (no ``test_`` prefix).
"""

from __future__ import annotations

import types as pytypes

import numpy as np
import pytest

numba_cuda = pytest.importorskip("numba_cuda", reason="numba-cuda is not installed")

from numba import cuda, from_dtype, types  # noqa: E402
from numba.core import config  # noqa: E402

if config.ENABLE_CUDASIM:
    pytest.skip("PTX is only generated without the simulator", allow_module_level=True)
try:  # a trivial kernel: finds NVVM (or that it is missing) the way the cases below would
    cuda.compile_ptx(lambda a: None, (types.float32[::1],), cc=(9, 0))
except Exception as exc:  # noqa: BLE001 - whatever the reason, the cases cannot run
    pytest.skip(f"NVVM is not available: {' '.join(str(exc).split())[:200]}", allow_module_level=True)

import numba.cuda.dispatcher as cuda_dispatcher  # noqa: E402

from rnnlab.kernels.cuda import _device  # noqa: E402

CC = (9, 0)


@pytest.fixture(scope="module")
def modules():
    """The kernel modules, imported as if a GPU were there (only compile_ptx is used)."""
    patch = pytest.MonkeyPatch()
    patch.setattr(_device, "cuda_available", lambda: (True, "PTX check"))
    # Device functions compile for the current device's compute capability; name one instead.
    patch.setattr(cuda_dispatcher, "get_current_device", lambda: pytypes.SimpleNamespace(compute_capability=CC))
    from rnnlab.kernels.cuda import _common, elman, gru, lstm

    yield pytypes.SimpleNamespace(common=_common, elman=elman, lstm=lstm, gru=gru)
    patch.undo()


def _signatures(dtype):
    """(name, kernel getter, argument types) of every kernel, as the host code launches them."""
    nb = from_dtype(np.dtype(dtype))
    i, b = types.int64, types.boolean

    def A(ndim):
        return types.Array(nb, ndim, "C")

    common = [
        ("gemm", lambda m: m.common.for_dtype(dtype).gemm_kernel, (A(2), A(2), A(2), A(1), b, b, b, i)),
        ("colsum", lambda m: m.common.for_dtype(dtype).colsum_kernel, (A(2), A(1))),
        ("fill", lambda m: m.common.for_dtype(dtype).fill_kernel, (A(2), nb)),
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


CASES = [(dtype, *case) for dtype in ("float32", "float64") for case in _signatures(dtype)]


@pytest.mark.parametrize("dtype,name,get_kernel,signature", CASES, ids=[f"{c[1]}-{c[0]}" for c in CASES])
def test_kernel_compiles_to_ptx(modules, dtype, name, get_kernel, signature):
    kernel = get_kernel(modules)  # compiled with its own launch bounds, if any, as on a GPU
    options = {key: kernel.targetoptions[key] for key in ("launch_bounds",) if key in kernel.targetoptions}
    ptx, return_type = cuda.compile_ptx(kernel.py_func, signature, device=False, cc=CC, **options)
    assert return_type == types.void
    assert ".entry" in ptx
    if dtype == "float32":  # nothing promoted to double precision: no mixed dtypes in a kernel
        assert ".f64" not in ptx
