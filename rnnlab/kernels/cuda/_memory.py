"""Device arrays from a cache of freed blocks, so that a kernel call allocates nothing new.

On an H200, ``cuda.device_array`` measured 116 us a call in numba-cuda (``cuMemAlloc``, and the
``cuMemFree`` batches its deferred deallocation runs, which synchronise the device): more than a
small step's whole forward pass, and a forward plus backward allocates a dozen arrays. Here a
block of device memory, once allocated through numba, is never freed while rnnlab runs; when the
last array or view on it goes away it returns to a free list keyed by its size, and the next
request of that size takes it back. Repeated calls with the same shapes (training, benchmarks)
then allocate nothing.

Lifetimes follow numba's own allocations exactly. Each block is one reference-counted numba
``AutoFreePointer`` (a ``_Block``), made once and lent out again and again: an array gets an
``OwnedPointer`` on it, as from numba's own allocator, and its views and slices add references
the same way. When the count drops to zero the block's ``free`` returns it to the cache instead
of freeing it. Making one owned pointer a loan, not a new auto-free pointer and its finalizer as
well, took an allocation from 17 to 7 us of Python.

Reuse is ordered after earlier use by the stream: rnnlab launches everything on the legacy
default stream, which also waits for work queued on other blocking streams (numba's
``cuda.stream()``). Not covered: an array from a ``*_device`` function dropped while work queued
on a non-blocking stream still uses it (synchronise first); and numba's per-thread default
stream mode (``NUMBA_CUDA_PER_THREAD_DEFAULT_STREAM=1``), where the cache is off.

Sizes are rounded up to classes (512-byte granules to 1 MiB, then eighths of each power of
two), so arrays of nearby sizes (another T) share blocks. Free blocks are capped at
:data:`CACHE_LIMIT_BYTES` or a quarter of the device's memory, whichever is less; beyond, a
returned block is freed. Memory held there is invisible to other allocators: when an
allocation here runs out of memory the free blocks are dropped and it is retried, and
:func:`release_cached_memory` drops them on request.

The CUDA simulator has no device memory to pool: there :func:`device_empty` is ``cuda.device_array``.
"""

from __future__ import annotations

import math
import os
import threading
import weakref

import numpy as np

from ._device import require_cuda, simulator_enabled

cuda = require_cuda()

#: Bytes of freed blocks kept for reuse, all sizes together (at most a quarter of the device's
#: memory); a block returned beyond this is freed.
CACHE_LIMIT_BYTES = 4 << 30
#: Small blocks are a multiple of this (cudaMalloc's own alignment); from 1 MiB up, sizes round
#: up to the next eighth of their power of two (at most 12.5% unused).
GRANULE = 512
_SMALL = 1 << 20


def size_class(nbytes: int) -> int:
    """The block size that serves a request of ``nbytes``."""
    step = GRANULE if nbytes <= _SMALL else 1 << (nbytes.bit_length() - 4)
    return max(GRANULE, -(-nbytes // step) * step)


class BlockCache:
    """Free device blocks of one CUDA context, by size; see the module docstring.

    ``allocate(nbytes)`` returns numba device memory (an owned pointer) of at least ``nbytes``,
    ready to be a ``DeviceNDArray``'s ``gpu_data``. ``context`` is numba's context, whose
    ``memalloc`` obtains new blocks.
    """

    def __init__(self, context, limit_bytes: int | None = None):
        self._context = context
        if limit_bytes is None:
            limit_bytes = min(CACHE_LIMIT_BYTES, context.get_memory_info().total // 4)
        self._limit = limit_bytes
        self._free: dict[int, list] = {}  # size -> free blocks (_Block: each holds numba's allocation)
        self._free_bytes = 0
        self._live: dict[int, object] = {}  # id -> _Block lent out: held here until it comes back
        # Finalizers run wherever the garbage collector does, which can be inside a locked region
        # of this very thread (any allocation may collect): so a re-entrant lock, and nothing but
        # bookkeeping under it (no block is dropped while it is held).
        self._lock = threading.RLock()
        self.hits = 0
        self.misses = 0

    @property
    def free_bytes(self) -> int:
        """Bytes held in free blocks, waiting for reuse."""
        return self._free_bytes

    def allocate(self, nbytes: int):
        size = size_class(nbytes)
        with self._lock:
            blocks = self._free.get(size)
            block = blocks.pop() if blocks else None
            if block is not None:
                self._free_bytes -= size
                self.hits += 1
            else:
                self.misses += 1
        if block is None:
            block = _Block(weakref.proxy(self._context), self._new_block(size), size, weakref.ref(self))
        self._live[id(block)] = block  # lent out: alive (its handles only hold a proxy) until released
        return block.own()

    def clear(self) -> None:
        """Drop every free block (numba frees them); blocks lent out are unaffected."""
        with self._lock:
            dropped, self._free, self._free_bytes = self._free, {}, 0
        del dropped  # numba's finalizers run here, outside the lock

    def _new_block(self, size: int):
        try:
            return self._context.memalloc(size)
        except cuda.cudadrv.driver.CudaAPIError as error:
            out_of_memory = cuda.cudadrv.driver.binding.CUresult.CUDA_ERROR_OUT_OF_MEMORY
            if error.code != out_of_memory or not self._free_bytes:
                raise
            self.clear()
            return self._context.memalloc(size)

    def _release(self, block) -> None:
        with self._lock:
            self._live.pop(id(block), None)
            kept = self._free_bytes + block.size <= self._limit
            if kept:
                blocks = self._free.get(block.size)
                if blocks is None:
                    blocks = self._free[block.size] = []
                blocks.append(block)
                self._free_bytes += block.size
        if not kept:
            del block  # numba frees its memory, outside the lock


def _block_class():
    class _Block(cuda.cudadrv.driver.AutoFreePointer):
        """A block of this cache, lent out again and again: each loan is one numba owned pointer
        (``own()``) whose references (views, slices) count on this object, as on numba's own
        auto-free pointers; when the count drops to zero, ``free`` returns the block to the cache
        instead of freeing it. ``memory``: numba's allocation, freed when the block is dropped."""

        def __init__(self, context, memory, size: int, cache):
            super().__init__(context, memory.device_pointer, size)
            self.memory, self.cache = memory, cache

        def free(self) -> None:
            cache = self.cache()
            if cache is not None:
                cache._release(self)

    return _Block


# Per numba context object. Each cache holds its context, so no later context can take its id
# (after cuda.close(), a new context gets a new cache; the old one's blocks are never handed out).
_CACHES: dict[int, BlockCache] = {}


def block_cache() -> BlockCache:
    """The block cache of the current CUDA context."""
    context = cuda.current_context()
    key = id(context)
    cache = _CACHES.get(key)
    if cache is None:
        cache = _CACHES.setdefault(key, BlockCache(context))
    return cache


def release_cached_memory() -> int:
    """Free the device blocks the CUDA kernels keep for reuse, in every context (for another
    library that needs the memory); returns the bytes released."""
    released = 0
    for cache in list(_CACHES.values()):
        released += cache.free_bytes
        cache.clear()
    return released


def _device_empty(shape, dtype):
    """An uninitialised C-contiguous device array, its memory from :func:`block_cache`."""
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(map(int, shape))
    dtype = np.dtype(dtype)
    strides = _c_strides(shape, dtype.itemsize)
    nbytes = shape[0] * strides[0] if shape else dtype.itemsize
    if nbytes == 0:
        return cuda.device_array(shape, dtype)
    return _DeviceNDArray(shape, strides, dtype, gpu_data=block_cache().allocate(nbytes))


def _c_strides(shape: tuple, itemsize: int) -> tuple:
    """The byte strides of a C-contiguous array of ``shape``."""
    strides = []
    for size in reversed(shape):
        strides.append(itemsize)
        itemsize *= size
    return tuple(reversed(strides))


def _per_thread_default_stream() -> bool:
    """Whether numba launches on the per-thread default stream: its own setting, or (numba-cuda
    on NVIDIA's bindings, which ignores that one) CUDA_PYTHON_CUDA_PER_THREAD_DEFAULT_STREAM."""
    try:  # numba-cuda's own config since 0.2x; numba's before
        from numba.cuda.core import config
    except ImportError:
        from numba.core import config
    if os.environ.get("CUDA_PYTHON_CUDA_PER_THREAD_DEFAULT_STREAM", "").strip() == "1":
        return True
    return bool(getattr(config, "CUDA_PER_THREAD_DEFAULT_STREAM", 0))


_SIM = simulator_enabled()
_DeviceNDArray = None if _SIM else cuda.cudadrv.devicearray.DeviceNDArray
_Block = None if _SIM else _block_class()
_host_to_device = None if _SIM else cuda.cudadrv.driver.host_to_device
device_empty = cuda.device_array if _SIM or _per_thread_default_stream() else _device_empty


def prefix_view(array, shape):
    """The first prod(``shape``) elements of the C-contiguous device array ``array``, viewed
    C-contiguous as ``shape`` (``hs[:T]`` as rows, ``d_pre[0]``, a product's rows as steps),
    holding its memory as a slice does. On the host numba-cuda's own slicing costs 15-17 us and
    its reshaping 4 us; building the view directly, 1.4 us."""
    shape = tuple(int(s) for s in shape)
    count = math.prod(shape)
    if not array.is_c_contiguous():
        raise ValueError(f"a prefix view needs a C-contiguous device array, got strides {array.strides}")
    if count > array.size:
        raise ValueError(f"a view of {count} elements does not fit a {tuple(array.shape)} device array")
    if _SIM:  # the simulator's arrays are NumPy arrays underneath
        return array.reshape(array.size)[:count].reshape(shape)
    return _DeviceNDArray(shape, _c_strides(shape, array.dtype.itemsize), array.dtype, gpu_data=array.gpu_data)


def step_view(array, index: int):
    """``array[index]`` of the C-contiguous device array ``array`` (T, ...): step ``index`` viewed
    C-contiguous, holding its memory as a slice does, built directly (numba-cuda's slicing is most
    of the host time of a "gemm" recurrence's step; benchmarks/README.md)."""
    if _SIM:
        return array[index]
    if not array.is_c_contiguous():
        raise ValueError(f"a step view needs a C-contiguous device array, got strides {array.strides}")
    if not 0 <= index < array.shape[0]:
        raise IndexError(f"step {index} of a device array of {array.shape[0]}")
    shape = tuple(array.shape[1:])
    step_bytes = array.strides[0]
    data = array.gpu_data.view(index * step_bytes, (index + 1) * step_bytes)
    return _DeviceNDArray(shape, _c_strides(shape, array.dtype.itemsize), array.dtype, gpu_data=data)


def to_device(array):
    """A C-contiguous device copy of a host (NumPy) array, in pooled memory; anything else is
    taken as a device array already.

    The copy is numba-cuda's own ``host_to_device`` (a synchronous ``cuMemcpyHtoD``), called
    directly: ``DeviceNDArray.copy_to_device`` spends ~70 us of Python first (it slices both
    arrays to check their extents), on arrays that are C-contiguous and alike by construction."""
    if not isinstance(array, np.ndarray):
        return array
    array = np.ascontiguousarray(array)
    out = device_empty(array.shape, array.dtype)
    if _SIM or array.size == 0:
        out.copy_to_device(array)
    else:
        _host_to_device(out, array, array.nbytes)
    return out


def upload(arrays, device_arrays: dict | None = None) -> list:
    """Device arrays for the host ``arrays``: those that are the very objects a forward recorded
    in ``device_arrays`` (:func:`remember`) take its device copies, the rest are copied up."""
    known = {id(host): (host, device) for host, device in zip(*_recorded(device_arrays))}
    out = []
    for array in arrays:
        host, device = known.get(id(array), (None, None))
        out.append(device if host is array else to_device(array))
    return out


def remember(device_arrays: dict | None, host, device) -> None:
    """Record in ``device_arrays`` (a layer's per-trace dict; None: nothing to record) that the
    device arrays ``device`` hold what the host arrays ``host`` hold. The caller vouches that the
    host arrays stay unchanged while the record lives (a trace's private copies and records)."""
    if device_arrays is not None:
        device_arrays["host"], device_arrays["device"] = tuple(host), tuple(device)


def _recorded(device_arrays: dict | None):
    if not device_arrays:
        return (), ()
    return device_arrays["host"], device_arrays["device"]
