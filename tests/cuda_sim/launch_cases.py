"""Kernel launches through a plan (rnnlab.kernels.cuda._launch), on numba-cuda's real argument
marshalling and a fake driver: run by tests/test_cuda.py in a subprocess, since it needs numba's
CUDA target (the simulator launches through numba-cuda, never through a plan).

A plan must lay out every argument exactly as numba-cuda's ``_Kernel._prepare_args`` does, value
and type: the first cases compare the two on the kinds of argument rnnlab's kernels take. The
rest stand in for the compiled kernel and for ``cuda.core.launch``, and check when a plan is
built, reused, rebuilt, or handed back to numba-cuda's own launch.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import sys
import types

import numba
import numba.cuda
import numpy as np
import pytest
from numba.cuda import dispatcher
from numba.cuda.cudadrv import devicearray, devices, driver

from rnnlab.kernels.cuda import _device

_NEXT_ADDRESS = [1 << 20]


def device_array(shape, dtype="float32"):
    """A C-contiguous numba DeviceNDArray at a fresh fake address (no context needed)."""
    dtype = np.dtype(dtype)
    size = max(1, int(np.prod(shape))) * dtype.itemsize
    pointer = driver.MemoryPointer(context=None, pointer=driver.binding.CUdeviceptr(_NEXT_ADDRESS[0]), size=size)
    _NEXT_ADDRESS[0] += size
    strides = np.empty(shape, dtype).strides
    return devicearray.DeviceNDArray(shape, strides, dtype, gpu_data=pointer)


@pytest.fixture
def plans(monkeypatch):
    """rnnlab.kernels.cuda._launch imported against numba's real CUDA target (slicing a device
    array asks for a context: none is needed)."""
    monkeypatch.setattr(_device, "require_cuda", lambda: numba.cuda)
    monkeypatch.setattr(_device, "simulator_enabled", lambda: False)
    monkeypatch.setattr(devices._runtime, "ensure_context", contextlib.nullcontext)
    sys.modules.pop("rnnlab.kernels.cuda._launch", None)
    module = importlib.import_module("rnnlab.kernels.cuda._launch")
    assert module._FAST, "this numba-cuda launches through cuda.core: plans should be on"
    yield module
    sys.modules.pop("rnnlab.kernels.cuda._launch", None)


def _numba_layout(args) -> list:
    """The kernel arguments numba-cuda's own launch makes of ``args``."""
    marshal = types.SimpleNamespace(extensions=[])
    marshal._prepare_args = lambda *a: dispatcher._Kernel._prepare_args(marshal, *a)
    out: list = []
    for value in args:
        dispatcher._Kernel._prepare_args(marshal, numba.typeof(value), value, 0, [], out)
    return out


def _comparable(values) -> list:
    return [(type(v), v.value if isinstance(v, ctypes._SimpleCData) else v) for v in values]


ARGUMENTS = ["3-D float32", "3-D float64", "2-D", "1-D", "4-D", "a step of a 3-D array", "the first steps",
             "reshaped", "sizes of 1", "a step of sizes of 1", "strided (layout A)", "int", "bool", "numpy float32",
             "numpy float64", "float"]


def _arguments():
    """One value of each name in ARGUMENTS (slicing needs the ``plans`` fixture)."""
    a = device_array((3, 4, 5))
    ones = device_array((1, 1, 6), "float64")
    return {
        "3-D float32": a,
        "3-D float64": device_array((2, 3, 4), "float64"),
        "2-D": device_array((7, 9)),
        "1-D": device_array((11,)),
        "4-D": device_array((4, 3, 2, 5)),
        "a step of a 3-D array": a[1],
        "the first steps": a[:2],
        "reshaped": a.reshape(12, 5),
        "sizes of 1": ones,
        "a step of sizes of 1": ones[0],
        "strided (layout A)": a[:, 1],
        "int": 7,
        "bool": True,
        "numpy float32": np.float32(0.5),
        "numpy float64": np.float64(-0.25),
        "float": 1.5,
    }


@pytest.mark.parametrize("name", ARGUMENTS)
def test_a_plan_lays_out_each_argument_as_numba_cuda_does(plans, name):
    values = _arguments()
    assert list(values) == ARGUMENTS
    value = values[name]
    kinds = plans.argument_kinds((value,))
    assert kinds is not None, f"{name}: a plan should cover it"
    assert plans.argument_types((value,)) == (numba.typeof(value),)
    convert = plans.converter(numba.typeof(value))
    out: list = []
    convert(value, out)
    assert _comparable(out) == _comparable(_numba_layout((value,)))


def test_kinds_tell_apart_what_numba_types_apart(plans):
    a = device_array((3, 4, 5))
    same = [a, device_array((6, 4, 2)), a[:2]]
    assert len({plans.argument_kinds((v,)) for v in same}) == 1
    different = [a, device_array((3, 4, 5), "float64"), a[0], a[:, 1], 3, True, np.float32(1), 2.0]
    assert len({plans.argument_kinds((v,)) for v in different}) == len(different)
    assert plans.argument_kinds((np.zeros(3, np.float32),)) is None  # host arrays: numba-cuda copies them


class FakeKernel:
    """A numba-cuda kernel stand-in: ``compiled`` counts compiles, which give a kernel marshalling
    its arguments with numba-cuda's real ``_Kernel._prepare_args`` (or, ``layout_differs``, one
    that lays out a scalar otherwise, as another numba-cuda might); ``kernel[...](*args)``, numba-
    cuda's own launch, is recorded in ``numba_launches`` (or raises, ``numba_refuses``)."""

    def __init__(self, cooperative=False, debug=False, layout_differs=False):
        self.cooperative, self.debug, self.layout_differs = cooperative, debug, layout_differs
        self.numba_refuses = False
        self.compiled: list = []
        self.numba_launches: list = []

    def compile(self, signature):
        self.compiled.append(signature)
        function = types.SimpleNamespace(kernel=f"cufunc of {signature}")
        compiled = types.SimpleNamespace(_codelibrary=types.SimpleNamespace(get_cufunc=lambda: function),
                                         cooperative=self.cooperative, debug=self.debug, extensions=[],
                                         argument_types=signature)

        def prepare_args(ty, value, stream, retr, out):
            dispatcher._Kernel._prepare_args(compiled, ty, value, stream, retr, out)
            if self.layout_differs and isinstance(ty, numba.types.Integer):
                out[-1] = ctypes.c_int32(value)

        compiled._prepare_args = prepare_args
        self.last = compiled
        return compiled

    def __getitem__(self, config):
        def launch(*args):
            if self.numba_refuses:
                raise driver.CudaAPIError(driver.binding.CUresult.CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "too many")
            self.numba_launches.append((config, args))

        return launch


@pytest.fixture
def gpu(plans, monkeypatch):
    """A fake current context, default stream, LaunchConfig and cuda.core launch; ``launches``
    records (stream, config, kernel, arguments)."""
    state = types.SimpleNamespace(context=object(), launches=[], configs=[], refuse=False)
    monkeypatch.setattr(plans._devices, "get_context", lambda: state.context)
    monkeypatch.setattr(plans._driver, "_to_core_stream", lambda stream: f"stream {stream}")

    def launch_config(**config):
        state.configs.append(config)
        return config

    def launch(stream, config, kernel, *arguments):
        if state.refuse:
            raise driver.CudaAPIError(driver.binding.CUresult.CUDA_ERROR_INVALID_VALUE, "invalid value")
        state.launches.append((stream, config, kernel, arguments))

    monkeypatch.setattr(plans._dispatcher, "LaunchConfig", launch_config)
    monkeypatch.setattr(plans._dispatcher, "launch", launch)
    plans.FALLBACKS.clear()
    return state


@pytest.mark.parametrize("cooperative", [False, True])
def test_a_planned_launch_is_the_launch_numba_cuda_makes(plans, gpu, cooperative):
    """numba-cuda's own ``_Kernel.launch`` and a plan, on the same arguments and launch shape:
    the same stream, LaunchConfig, kernel handle and arguments."""
    a = device_array((5, 2, 3))
    args = (3, True, a, a[1], a[:, 1], np.float32(0.5), 2.5, device_array((4,), "float64"))
    kernel = FakeKernel(cooperative=cooperative)
    plans.launch(kernel, 4, 256, args, 1024)
    dispatcher._Kernel.launch(kernel.last, args, (4, 1, 1), (256, 1, 1), "stream 0", 1024)
    (ours, theirs), (our_config, their_config) = gpu.launches, gpu.configs[-2:]
    assert ours[:3] == theirs[:3] and _comparable(ours[3]) == _comparable(theirs[3])
    assert our_config == their_config == dict(grid=(4, 1, 1), block=(256, 1, 1), shmem_size=1024,
                                              is_cooperative=cooperative)


def test_a_launch_builds_a_plan_once_and_lays_out_each_calls_arguments(plans, gpu):
    kernel = FakeKernel(cooperative=True)
    first, second = (device_array((5, 2, 3)), device_array((5, 2, 3)))
    plans.launch(kernel, 4, 256, (first, 3), 1024)
    plans.launch(kernel, 4, 256, (second, 9), 1024)
    assert kernel.compiled == [(numba.typeof(first), numba.int64)] and kernel.numba_launches == []
    assert gpu.configs == [dict(grid=(4, 1, 1), block=(256, 1, 1), shmem_size=1024, is_cooperative=True)]
    cufunc = f"cufunc of {kernel.compiled[0]}"
    assert [launch[:3] for launch in gpu.launches] == [("stream 0", gpu.configs[0], cufunc)] * 2
    for (_, _, _, arguments), args in zip(gpu.launches, [(first, 3), (second, 9)]):
        assert _comparable(arguments) == _comparable(_numba_layout(args))
    plans.launch(kernel, (2, 3), (16, 16), (second, 9))  # another shape: another LaunchConfig, same plan
    assert len(kernel.compiled) == 1
    assert gpu.configs[-1] == dict(grid=(2, 3, 1), block=(16, 16, 1), shmem_size=0, is_cooperative=True)
    assert not plans.FALLBACKS


def test_other_argument_kinds_compile_another_plan(plans, gpu):
    kernel = FakeKernel()
    plans.launch(kernel, 1, 32, (device_array((4, 4)),))
    plans.launch(kernel, 1, 32, (device_array((4, 4), "float64"),))
    plans.launch(kernel, 1, 32, (device_array((4, 4))[:, 1],))
    assert len(kernel.compiled) == 3 and len(gpu.launches) == 3


def test_a_new_context_gets_a_new_plan(plans, gpu):
    kernel = FakeKernel()
    plans.launch(kernel, 1, 32, (device_array((4,)),))
    gpu.context = object()  # e.g. another thread's: plans are per context
    plans.launch(kernel, 1, 32, (device_array((4,)),))
    assert len(kernel.compiled) == 2 and len(gpu.launches) == 2


def test_a_plan_that_fails_where_numba_cuda_launches_hands_over_for_good(plans, gpu):
    kernel = FakeKernel()
    a = device_array((4,))
    gpu.refuse = True
    plans.launch(kernel, 2, 64, (a, 1), 128)
    assert kernel.numba_launches == [((2, 64, 0, 128), (a, 1))]
    gpu.refuse = False
    plans.launch(kernel, 2, 64, (a, 2), 128)
    assert len(kernel.numba_launches) == 2 and gpu.launches == [] and len(kernel.compiled) == 1
    assert plans.FALLBACKS == {"FakeKernel": 2}


def test_a_launch_numba_cuda_refuses_too_raises_and_keeps_the_plan(plans, gpu):
    """E.g. a resident kernel asking for more shared memory than the device gives (its caller
    then tries a smaller launch): the error is numba-cuda's, and the next launch is planned."""
    kernel = FakeKernel()
    a = device_array((4,))
    gpu.refuse = kernel.numba_refuses = True
    with pytest.raises(driver.CudaAPIError, match="too many"):
        plans.launch(kernel, 2, 64, (a, 1), 200_000)
    gpu.refuse = kernel.numba_refuses = False
    plans.launch(kernel, 2, 64, (a, 1), 1024)
    assert len(gpu.launches) == 1 and kernel.numba_launches == [] and not plans.FALLBACKS


def test_no_plan_where_numba_cuda_lays_out_arguments_otherwise(plans, gpu):
    kernel = FakeKernel(layout_differs=True)
    args = (device_array((4,)), 3)
    plans.launch(kernel, 1, 32, args)
    assert kernel.numba_launches == [((1, 32, 0, 0), args)] and gpu.launches == []
    plans.launch(kernel, 1, 32, (device_array((4,)),))  # no integer: the same layout, planned
    assert len(gpu.launches) == 1


@pytest.mark.parametrize("case", ["host array", "debug kernel", "string"])
def test_what_a_plan_does_not_cover_launches_through_numba_cuda(plans, gpu, case):
    kernel = FakeKernel(debug=case == "debug kernel")
    args = {"host array": (np.zeros(3, np.float32),), "debug kernel": (device_array((3,)),), "string": ("x",)}[case]
    plans.launch(kernel, 1, 32, args)
    plans.launch(kernel, 1, 32, args)
    assert kernel.numba_launches == [((1, 32, 0, 0), args)] * 2 and gpu.launches == []
    assert plans.FALLBACKS == ({"FakeKernel": 2} if case == "debug kernel" else {})
