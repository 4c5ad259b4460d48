"""Every GPU kernel compiles for a real GPU (PTX for sm_90), with no float64 in float32 kernels.

Run by tests/test_cuda.py in a subprocess WITHOUT the simulator: the simulator runs kernels as
Python and so never type-checks or lowers them for the device. No GPU is needed, only NVVM (the
``numba-cuda[cu12]``/``[cu13]`` extras install it); without it every case is skipped.
Not collected by a plain ``pytest`` run (no ``test_`` prefix).
"""

from __future__ import annotations

import types as pytypes

import pytest

numba_cuda = pytest.importorskip("numba_cuda", reason="numba-cuda is not installed")

from numba import cuda, types  # noqa: E402
from numba.core import config  # noqa: E402

if config.ENABLE_CUDASIM:
    pytest.skip("PTX is only generated without the simulator", allow_module_level=True)
try:  # a trivial kernel: finds NVVM (or that it is missing) the way the cases below would
    cuda.compile_ptx(lambda a: None, (types.float32[::1],), cc=(9, 0))
except Exception as exc:  # noqa: BLE001 - whatever the reason, the cases cannot run
    pytest.skip(f"NVVM is not available: {' '.join(str(exc).split())[:200]}", allow_module_level=True)

import numba.cuda.dispatcher as cuda_dispatcher  # noqa: E402

from rnnlab.kernels.cuda import _device  # noqa: E402
from rnnlab.kernels.cuda._signatures import kernel_signatures  # noqa: E402

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


CASES = [(dtype, *case) for dtype in ("float32", "float64") for case in kernel_signatures(dtype)]


@pytest.mark.parametrize("dtype,name,get_kernel,signature", CASES, ids=[f"{c[1]}-{c[0]}" for c in CASES])
def test_kernel_compiles_to_ptx(modules, dtype, name, get_kernel, signature):
    kernel = get_kernel(modules)  # compiled with its own launch bounds, if any, as on a GPU
    options = {key: kernel.targetoptions[key] for key in ("launch_bounds",) if key in kernel.targetoptions}
    ptx, return_type = cuda.compile_ptx(kernel.py_func, signature, device=False, cc=CC, **options)
    assert return_type == types.void
    assert ".entry" in ptx
    if dtype == "float32":  # nothing promoted to double precision: no mixed dtypes in a kernel
        assert ".f64" not in ptx
    if name == "gemm" or name.endswith(("_step", "_persistent", "_resident")):
        # The products read a thread's run of rows as one 16-byte vector (benchmarks/cuda_sass.py
        # shows the loop): alignment lost, e.g. an odd padding, would quietly double the loads.
        assert ("ld.shared.v4.f32" if dtype == "float32" else "ld.shared.v2.f64") in ptx
