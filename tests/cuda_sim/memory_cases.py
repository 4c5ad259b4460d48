"""The device block cache (rnnlab.kernels.cuda._memory), on numba's real memory classes over a
fake context: run by tests/test_cuda.py in a subprocess, since it needs numba's CUDA target (not
the simulator, which has no device memory to pool) and stands in for the driver.

The fake context hands out addresses from a counter and records what numba frees; numba's
``AutoFreePointer``/``OwnedPointer`` reference counting, the arrays, views and slices are real
(and rnnlab's own prefix views, ``_memory.prefix_view``).
"""

from __future__ import annotations

import contextlib
import gc
import threading
import types
import weakref

import numpy as np

import numba.cuda
import pytest
from numba.cuda.cudadrv import devices, driver

from rnnlab.kernels.cuda import _device


class FakeContext:
    """Hands out fresh addresses; ``freed`` lists the sizes numba freed."""

    def __init__(self):
        self.next_address = 1 << 20
        self.allocated: list[int] = []
        self.freed: list[int] = []
        self.out_of_memory_once = False

    def get_memory_info(self):
        return types.SimpleNamespace(free=64 << 30, total=80 << 30)

    def memalloc(self, size):
        if self.out_of_memory_once:
            self.out_of_memory_once = False
            raise driver.CudaAPIError(driver.binding.CUresult.CUDA_ERROR_OUT_OF_MEMORY, "out of memory")
        pointer = driver.binding.CUdeviceptr(self.next_address)
        self.next_address += size
        self.allocated.append(size)
        mem = driver.AutoFreePointer(weakref.proxy(self), pointer, size,
                                     finalizer=lambda: self.freed.append(size))
        self._keep = getattr(self, "_keep", []) + [mem]  # as numba's memory manager does
        return mem.own()


@pytest.fixture
def memory(monkeypatch):
    """rnnlab.kernels.cuda._memory imported against numba's real CUDA target, on a fake context."""
    import importlib
    import sys

    monkeypatch.setattr(_device, "require_cuda", lambda: numba.cuda)
    monkeypatch.setattr(_device, "simulator_enabled", lambda: False)
    monkeypatch.setattr(devices._runtime, "ensure_context", contextlib.nullcontext)  # slicing asks for one
    sys.modules.pop("rnnlab.kernels.cuda._memory", None)
    module = importlib.import_module("rnnlab.kernels.cuda._memory")
    context = FakeContext()
    monkeypatch.setattr(module, "block_cache", lambda cache=module.BlockCache(context): cache)
    yield module, context
    sys.modules.pop("rnnlab.kernels.cuda._memory", None)


def _address(array) -> int:
    return array.device_ctypes_pointer.value


def test_an_array_is_c_contiguous_with_its_shape_and_dtype(memory):
    module, _ = memory
    a = module.device_empty((3, 4, 5), "float32")
    assert a.shape == (3, 4, 5) and a.dtype == "float32" and a.strides == (80, 20, 4)
    assert a.is_c_contiguous()
    assert module.device_empty(np.int64(7), "float64").shape == (7,)


def test_the_cache_keeps_at_most_a_quarter_of_the_device(memory):
    module, context = memory
    assert module.BlockCache(context)._limit == min(module.CACHE_LIMIT_BYTES, 20 << 30)


def test_memory_is_reused_only_after_its_last_view_is_gone(memory):
    module, context = memory
    a = module.device_empty((3, 4, 5), "float32")
    address = _address(a)
    reshaped, sliced = a.reshape(12, 5), a[1:]
    del a
    gc.collect()
    other = module.device_empty((3, 4, 5), "float32")  # the reshape and the slice still use a's memory
    del reshaped
    gc.collect()
    another = module.device_empty((3, 4, 5), "float32")  # the slice still does
    assert address not in (_address(other), _address(another))
    del sliced
    gc.collect()
    again = module.device_empty((60,), "float32")  # same size, other shape: a's block
    assert _address(again) == address
    assert context.allocated == [512] * 3 and context.freed == []  # 240 bytes round up to 512


def test_a_block_lent_again_keeps_the_same_rules(memory):
    """Each loan of a block counts its own references: on the third loan a slice still holds it."""
    module, context = memory
    address = None
    for loan in range(3):
        a = module.device_empty((4, 8), "float32")
        address = address or _address(a)
        assert _address(a) == address  # the one block, lent again
        view = a[1:] if loan == 2 else a.reshape(32)
        del a
        gc.collect()
        if loan == 2:
            assert _address(module.device_empty((4, 8), "float32")) != address  # the slice holds it
        del view
        gc.collect()
    assert _address(module.device_empty((32,), "float32")) == address
    assert context.allocated == [512, 512] and context.freed == []


def test_a_prefix_view_holds_the_memory_like_a_slice(memory):
    module, context = memory
    hs = module.device_empty((5, 2, 3), "float32")
    address = _address(hs)
    rows = module.prefix_view(hs, (4 * 2, 3))  # hs[:4] as rows
    assert rows.shape == (8, 3) and rows.strides == (12, 4) and rows.is_c_contiguous()
    assert _address(rows) == address and _address(module.prefix_view(hs, (2, 3))) == address  # hs[0]
    del hs
    gc.collect()
    assert _address(module.device_empty((5, 2, 3), "float32")) != address  # rows still use hs's block
    del rows
    gc.collect()
    assert _address(module.device_empty((5, 2, 3), "float32")) == address


def test_a_prefix_view_needs_a_c_contiguous_array_holding_enough(memory):
    module, _ = memory
    a = module.device_empty((4, 3), "float64")
    with pytest.raises(ValueError, match="13 elements does not fit a \\(4, 3\\) device array"):
        module.prefix_view(a, (13,))
    with pytest.raises(ValueError, match="needs a C-contiguous device array"):
        module.prefix_view(a[:, 1], (2,))


def test_a_step_view_is_the_slice_and_holds_the_memory(memory):
    """step_view(hs, t) is hs[t] (its address, shape and strides, as numba-cuda's own slicing
    gives), and keeps hs's block lent out while it lives."""
    module, _ = memory
    hs = module.device_empty((5, 2, 3), "float32")
    address = _address(hs)
    step = module.step_view(hs, 3)
    sliced = hs[3]
    assert (step.shape, step.strides, _address(step)) == (sliced.shape, sliced.strides, _address(sliced))
    assert _address(step) == address + 3 * 2 * 3 * 4 and step.is_c_contiguous()
    del hs, sliced
    gc.collect()
    assert _address(module.device_empty((5, 2, 3), "float32")) != address  # the step still uses hs's block
    del step
    gc.collect()
    assert _address(module.device_empty((5, 2, 3), "float32")) == address
    a = module.device_empty((4, 3), "float64")
    with pytest.raises(IndexError, match="step 4 of a device array of 4"):
        module.step_view(a, 4)
    with pytest.raises(ValueError, match="needs a C-contiguous device array"):
        module.step_view(a[:, 1:], 0)


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_to_device_copies_the_arrays_bytes_in_c_order_to_its_new_block(memory, monkeypatch, layout):
    """One cuMemcpyHtoD of the whole array, from a C-ordered host buffer, into the new array."""
    import ctypes

    module, _ = memory
    copies = []
    monkeypatch.setattr(driver, "driver", types.SimpleNamespace(
        cuMemcpyHtoD=lambda dst, src, size: copies.append((int(dst), ctypes.string_at(src, size)))))
    host = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    host = {"C": host, "F": np.asfortranarray(host), "strided": host[:, ::2]}[layout]
    out = module.to_device(host)
    assert out.shape == host.shape and out.dtype == host.dtype and out.is_c_contiguous()
    assert copies == [(_address(out), np.ascontiguousarray(host).tobytes())]


def test_sizes_round_to_granules_and_do_not_mix(memory):
    module, context = memory
    small = module.device_empty(100, "float64")  # 800 bytes: a 1024-byte block
    address = _address(small)
    del small
    gc.collect()
    assert _address(module.device_empty(200, "float64")) != address  # 1600 bytes: another size
    assert _address(module.device_empty(128, "float64")) == address  # 1024 bytes: that block
    assert context.allocated == [1024, 2048]


def test_large_sizes_round_to_eighths_of_their_power_of_two(memory):
    module, context = memory
    assert module.size_class(1 << 20) == 1 << 20
    assert module.size_class(1_050_000) == module.size_class(1_100_000) == 9 << 17  # (1 + 1/8) MiB
    assert module.size_class(1_200_000) == 10 << 17
    first = module.device_empty(1_050_000 // 4, "float32")  # T*B*H of one length, then of a longer one
    address = _address(first)
    del first
    gc.collect()
    assert _address(module.device_empty(1_100_000 // 4, "float32")) == address


def test_blocks_beyond_the_limit_are_freed(memory, monkeypatch):
    module, context = memory
    cache = module.block_cache()
    monkeypatch.setattr(cache, "_limit", 1024)
    arrays = [module.device_empty(256, "float32") for _ in range(3)]  # three 1024-byte blocks
    del arrays
    gc.collect()
    assert cache.free_bytes == 1024 and context.freed == [1024, 1024]  # one kept, two handed to numba


def test_running_out_of_memory_drops_the_free_blocks_and_retries(memory):
    module, context = memory
    cache = module.block_cache()
    module.device_empty(256, "float32")  # gone at once: its block waits in the cache
    gc.collect()
    assert cache.free_bytes == 1024
    context.out_of_memory_once = True
    big = module.device_empty(1024, "float32")
    assert big.shape == (1024,) and cache.free_bytes == 0 and context.freed == [1024]
    context.out_of_memory_once = True
    with pytest.raises(driver.CudaAPIError):  # nothing cached to drop: the error stands
        module.device_empty(2048, "float32")


def test_each_context_has_its_own_cache(memory, monkeypatch):
    module, _ = memory
    monkeypatch.undo()  # the real block_cache, looking up numba's current context (faked here)
    first, second = FakeContext(), FakeContext()
    current = [first]
    monkeypatch.setattr(module.cuda, "current_context", lambda: current[0])
    cache = module.block_cache()
    assert module.block_cache() is cache
    current[0] = second
    assert module.block_cache() is not cache


class _Cycle:
    """Garbage only the cyclic collector frees, holding an array."""

    def __init__(self, array):
        self.me = self
        self.array = array


def test_a_collection_inside_the_cache_does_not_deadlock(memory):
    """Any allocation may run the garbage collector, and with it the finalizer of an array
    whose memory goes back to this cache, on the same thread that holds its lock."""
    module, _ = memory
    cache = module.block_cache()

    class CollectingDict(dict):  # a collection at the cache's first dictionary lookup under its lock
        def get(self, *args):
            gc.collect()
            return super().get(*args)

    cache._free = CollectingDict()
    done = threading.Event()

    def work():
        gc.disable()
        _Cycle(module.device_empty(512, "float32"))  # 2048 bytes, freed by the next collection
        gc.enable()
        kept = module.device_empty(256, "float32")  # its lookup collects: the cycle's block returns
        del kept
        done.set()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(20)
    assert done.is_set(), "deadlocked: a finalizer re-entered the cache under its lock"
    assert cache.free_bytes == 2048 + 1024 == sum(size * len(b) for size, b in cache._free.items())


def test_release_cached_memory_frees_every_free_block(memory, monkeypatch):
    module, context = memory
    cache = module.block_cache()
    monkeypatch.setitem(module._CACHES, 0, cache)
    module.device_empty(256, "float32")
    gc.collect()
    assert module.release_cached_memory() == 1024
    assert cache.free_bytes == 0 and context.freed == [1024]
