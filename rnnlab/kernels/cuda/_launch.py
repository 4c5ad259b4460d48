"""Kernel launches that spend little Python per call, on numba-cuda's own compiled kernels.

numba-cuda prepares every launch from scratch: it types each argument (~8 us for a device array
it has not seen), wraps each array in a strided-memory-view shim, converts it to the kernel's
argument layout and builds a LaunchConfig. On an H200 a launch with six array arguments took
77 us against 13 us with none (benchmarks/cuda_overheads.py), and a device forward+backward makes
9-12 launches: at batch 1 that alone is about cuDNN's whole forward+backward.

:func:`launch` makes the same launch with less. A *plan*, built once per kernel and argument
kinds (each array's dtype, ndim and layout; each scalar's type), holds what numba-cuda would
rebuild every time: the compiled kernel's cuda.core handle (from numba-cuda's own ``compile``)
and one converter per argument; LaunchConfigs are kept by launch shape. A launch then lays the
arguments out as numba-cuda's ``_Kernel._prepare_args`` does and makes the same
``cuda.core.launch`` call. Building a plan checks its layout against ``_prepare_args`` on the
arguments at hand, value by value and type by type, so a numba-cuda that lays them out otherwise
is never planned for (tests/cuda_sim/launch_cases.py compares whole launches with numba-cuda's).
benchmarks/cuda_host_overhead.py measures the Python a device forward+backward spends.

Whatever a plan does not cover goes through numba-cuda's own launch: an argument other than a
numba ``DeviceNDArray``, a bool, an int or a float; a debug or launch-config-sensitive kernel;
a numba-cuda that does not launch through cuda.core; a plan that fails to build. A planned
launch that fails is made again by numba-cuda: if that one fails too the error was real and is
raised (the plan stays); if it succeeds, numba-cuda launches that kernel from then on.
:data:`FALLBACKS` counts the launches numba-cuda made where a plan could have. The simulator
always launches through numba-cuda.
"""

from __future__ import annotations

import collections
import ctypes

import numba
import numpy as np

from ._device import require_cuda, simulator_enabled

cuda = require_cuda()
_SIM = simulator_enabled()

_FAST = False
if not _SIM:
    try:  # the names numba-cuda's own _Kernel.launch uses; without them, numba-cuda's launch
        import numba.cuda.dispatcher as _dispatcher
        from numba.cuda import _compat
        from numba.cuda.cudadrv import devices as _devices
        from numba.cuda.cudadrv import driver as _driver
        from numba.cuda.cudadrv.devicearray import DeviceNDArray
        from numba.cuda.errors import normalize_kernel_dimensions
        from numba.cuda.typing.typeof import Purpose, typeof

        _FAST = callable(getattr(_dispatcher, "launch", None)) and hasattr(_dispatcher, "LaunchConfig")
    except ImportError:
        pass

#: Scalar kinds a plan converts itself, by Python type (numba types the rest otherwise or not at all).
_SCALARS = (bool, int, float, np.bool_, np.int32, np.int64, np.float32, np.float64)

_PLANS: dict[tuple, "_Plan | None"] = {}  # by (kernel, argument kinds); None: numba-cuda launches
_TYPES: dict[tuple, tuple] = {}  # numba's argument types, by argument kinds
_CONFIGS: dict[tuple, object] = {}  # cuda.core LaunchConfigs, by launch shape
_MAX_CONFIGS = 512  # then forgotten at once (a GEMM's grid follows T*B: many lengths, many shapes)

#: Launches numba-cuda made instead of a plan, by kernel name (not counting the simulator's,
#: nor arguments a plan does not cover).
FALLBACKS: collections.Counter = collections.Counter()


def launch(kernel, griddim, blockdim, args: tuple, shared_bytes: int = 0) -> None:
    """``kernel[griddim, blockdim, 0, shared_bytes](*args)`` on the default stream, with the
    plan of the module docstring where there is one."""
    if _FAST:
        kinds = argument_kinds(args)
        if kinds is not None:
            key = (kernel, kinds)
            plan = _PLANS.get(key, False)
            if plan is False or (plan is not None and plan.context is not _devices.get_context()):
                plan = _PLANS[key] = _build_plan(kernel, args)
            if plan is None:
                FALLBACKS[_name(kernel)] += 1
            else:
                try:
                    config = _launch_config(griddim, blockdim, shared_bytes, plan.cooperative)
                    _dispatcher.launch(plan.stream, config, plan.kernel, *plan.arguments(args))
                    return
                except Exception:  # noqa: BLE001 - made again below, which raises a real error
                    kernel[griddim, blockdim, 0, shared_bytes](*args)
                    _PLANS[key] = None  # numba-cuda launched what the plan could not
                    FALLBACKS[_name(kernel)] += 1
                    return
    kernel[griddim, blockdim, 0, shared_bytes](*args)


def _name(kernel) -> str:
    return getattr(getattr(kernel, "py_func", None), "__name__", type(kernel).__name__)


def argument_kinds(args: tuple) -> tuple | None:
    """What numba's type of each argument depends on (cheap to compute; a cache key), or None
    where an argument is of a kind a plan does not convert (or there are no plans here)."""
    if not _FAST:
        return None
    kinds = []
    for value in args:
        kind = type(value)
        if kind is DeviceNDArray:
            kind = (value.dtype, value.ndim, _layout(value))
        elif kind not in _SCALARS:
            return None
        kinds.append(kind)
    return tuple(kinds)


def argument_types(args: tuple) -> tuple:
    """numba's types of ``args``, as a kernel launched on them is compiled for (cached by kind)."""
    if not _FAST:
        return tuple(numba.typeof(a) for a in args)
    kinds = argument_kinds(args)
    types = _TYPES.get(kinds) if kinds is not None else None
    if types is None:
        types = tuple(typeof(a, Purpose.argument) for a in args)
        if kinds is not None:
            _TYPES[kinds] = types
    return types


def _layout(array) -> str:
    """The layout numba types a DeviceNDArray with (``DeviceNDArrayBase._numba_type_``)."""
    if 0 in array.strides and array.size != 0:  # broadcast
        return "A"
    flags = array.flags
    return "C" if flags["C_CONTIGUOUS"] else "F" if flags["F_CONTIGUOUS"] else "A"


class _Plan:
    """A kernel compiled for one set of argument kinds (module docstring)."""

    __slots__ = ("context", "kernel", "cooperative", "stream", "converters")

    def __init__(self, context, kernel, cooperative: bool, stream, converters):
        self.context, self.kernel, self.cooperative, self.stream = context, kernel, cooperative, stream
        self.converters = converters

    def arguments(self, args: tuple) -> list:
        out: list = []
        for convert, value in zip(self.converters, args):
            convert(value, out)
        return out


def _build_plan(kernel, args: tuple) -> _Plan | None:
    """The plan for launching ``kernel`` on arguments like ``args``; None where numba-cuda's own
    launch must do it (the module docstring says when)."""
    try:
        types = argument_types(args)
        converters = [converter(t) for t in types]
        if None in converters:
            return None
        compiled = kernel.compile(types)
        if compiled.debug or compiled.extensions or getattr(compiled, "launch_config_sensitive", False):
            return None
        context = _devices.get_context()
        cufunc = compiled._codelibrary.get_cufunc()
        plan = _Plan(context, cufunc.kernel, bool(compiled.cooperative), _driver._to_core_stream(0), converters)
        expected: list = []  # what numba-cuda's launch would pass, to the type
        for numba_type, value in zip(types, args):
            compiled._prepare_args(numba_type, value, 0, [], expected)
        return plan if _comparable(plan.arguments(args)) == _comparable(expected) else None
    except Exception:  # noqa: BLE001 - internals of numba-cuda: without them, its own launch
        return None


def _comparable(arguments: list) -> list:
    """Kernel arguments as (type, value) pairs: ctypes scalars compare by identity otherwise."""
    return [(type(a), a.value if isinstance(a, ctypes._SimpleCData) else a) for a in arguments]


def _launch_config(griddim, blockdim, shared_bytes: int, cooperative: bool):
    """The cuda.core LaunchConfig numba-cuda's ``_Kernel.launch`` makes for this launch shape."""
    key = (griddim, blockdim, shared_bytes, cooperative)
    config = _CONFIGS.get(key)
    if config is None:
        if len(_CONFIGS) >= _MAX_CONFIGS:
            _CONFIGS.clear()
        griddim, blockdim = normalize_kernel_dimensions(griddim, blockdim)  # as kernel[...] does
        flag = "is_cooperative" if _compat.CUDA_CORE_GE_1_0 else "cooperative_launch"
        config = _CONFIGS[key] = _dispatcher.LaunchConfig(
            grid=griddim, block=blockdim, shmem_size=shared_bytes, **{flag: cooperative})
    return config


def converter(numba_type):
    """``convert(value, out)``: appends the kernel arguments numba-cuda's
    ``_Kernel._prepare_args`` makes of a value of ``numba_type``; None for a type it handles
    in ways a plan does not copy."""
    if isinstance(numba_type, numba.types.Array):
        return _array
    if numba_type == numba.types.boolean:
        return _as_is
    if isinstance(numba_type, numba.types.Integer):
        return _ctype(getattr(ctypes, f"c_{numba_type}"))
    if numba_type == numba.types.float64:
        return _ctype(ctypes.c_double)
    if numba_type == numba.types.float32:
        return _ctype(ctypes.c_float)
    return None


def _array(a, out: list) -> None:
    # meminfo, parent, nitems, itemsize, data, shape..., strides... (numba's array model)
    out += (0, 0, a.size, a.dtype.itemsize, a.device_ctypes_pointer.value, *a.shape, *a.strides)


def _as_is(value, out: list) -> None:
    out.append(value)


def _ctype(ctype):
    def convert(value, out: list) -> None:
        out.append(ctype(value))

    return convert
