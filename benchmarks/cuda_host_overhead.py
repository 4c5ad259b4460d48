"""The Python a GPU forward+backward spends on the host, measured without a GPU.

    python benchmarks/cuda_host_overhead.py                       # every cell at (1,100,32,64)
    python benchmarks/cuda_host_overhead.py --shape 1,100,8,16 --shape 64,50,256,512 --cell lstm
    python benchmarks/cuda_host_overhead.py --layer               # rnnlab.LSTM(device="cuda") etc.
    python benchmarks/cuda_host_overhead.py --shape 64,50,256,512 --recurrence gemm --recurrence persistent

Runs ``{elman,lstm,gru}_forward_device`` then ``*_backward_device`` (float32, the default
recurrence, or each ``--recurrence`` given) on numba-cuda's real CUDA target with the GPU stood in for: a fake context hands out
device addresses, kernels compile to PTX for a compute capability 9.0 device (so NVVM is needed:
``pip install -e ".[cuda]"``) but are never loaded, and ``cuda.core.launch`` and the driver's
copies do nothing. ``--layer`` runs a one-layer ``rnnlab.RNN/LSTM/GRU(device="cuda")`` instead:
NumPy in and out, so the uploads and downloads' Python counts too. What is timed is everything
rnnlab and numba-cuda do in Python around a launch or a copy (typing, argument marshalling,
allocation from the block cache, views, the launch plans of ``rnnlab.kernels.cuda._launch``),
not the driver's own work (a few us a call) nor any GPU work. At batch 1 this is most of a GPU
forward+backward: cuDNN's whole LSTM f+b at (1,100,32,64) took 1.07 ms on an H200
(benchmarks/README.md).

Prints microseconds per forward+backward (median of 7 rounds of 50) and the launches each makes.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import statistics
import sys
import time
import types
import weakref

import numpy as np


def stand_in_for_the_gpu() -> list:
    """Patch numba-cuda so that kernels compile and launch without a GPU; returns the launch count
    (a one-element list)."""
    import numba.cuda
    import numba.cuda.codegen as codegen
    import numba.cuda.dispatcher as dispatcher
    from numba.cuda.cudadrv import devices, driver

    from rnnlab.kernels.cuda import _device

    class Context:
        def __init__(self):
            self.next_address, self.blocks = 1 << 20, []
            self.handle = ctypes.c_void_p(1)  # the driver's context handle (cuBLAS keys its state by it)

        def get_memory_info(self):
            return types.SimpleNamespace(free=64 << 30, total=80 << 30)

        def memalloc(self, size):
            pointer = driver.binding.CUdeviceptr(self.next_address)
            self.next_address += size
            block = driver.AutoFreePointer(weakref.proxy(self), pointer, size, finalizer=lambda: None)
            self.blocks.append(block)
            return block.own()

    context = Context()
    device = types.SimpleNamespace(compute_capability=(9, 0), id=0, COOPERATIVE_LAUNCH=1, MULTIPROCESSOR_COUNT=132,
                                   MAX_SHARED_MEMORY_PER_BLOCK_OPTIN=232448, name="stand-in")
    launches = [0]

    def launch(*args):
        launches[0] += 1

    import rnnlab.kernels.cuda as gpu

    _device.cuda_available = gpu.cuda_available = lambda: (True, "stand-in")
    _device.require_cuda = gpu.require_cuda = lambda: numba.cuda
    _device.simulator_enabled = lambda: False
    numba.cuda.current_context = lambda: context
    numba.cuda.get_current_device = dispatcher.get_current_device = lambda: device
    devices.get_context = lambda devnum=None: context
    devices._runtime.ensure_context = contextlib.nullcontext
    driver._to_core_stream = lambda stream: stream
    codegen.CUDACodeLibrary._ensure_cc = lambda self, cc: cc or (9, 0, "a")
    function = types.SimpleNamespace(kernel=None, handle=0, name="stand-in",
                                     module=types.SimpleNamespace(initialized=True))
    codegen.CUDACodeLibrary.get_cufunc = lambda self: function
    dispatcher._Kernel.max_cooperative_grid_blocks = lambda self, block, shared=0: 132
    dispatcher.LaunchConfig = lambda **config: config
    dispatcher.launch = launch
    # Downloads read zeros (NumPy's work on what comes back then runs on finite numbers).
    driver.driver = types.SimpleNamespace(cuMemcpyHtoD=lambda *args: None,
                                          cuMemcpyDtoH=lambda host, device, size: ctypes.memset(host, 0, size))
    return launches


def forward_backward(cell: str, shape: tuple[int, int, int, int], recurrence: str | None = None):
    """A function running one forward+backward of ``cell`` at (B, T, I, H) on device arrays."""
    from rnnlab.kernels.cuda import _memory, elman, gru, lstm

    B, T, I, H = shape
    G = {"elman": 1, "lstm": 4, "gru": 3}[cell]

    def empty(*shape):
        return _memory.device_empty(shape, np.float32)

    x, w_ih, w_hh, b_ih, b_hh, h0, c0 = empty(T, B, I), empty(G * H, I), empty(G * H, H), empty(G * H), \
        empty(G * H), empty(B, H), empty(B, H)
    dy, dh_n, dc_n = empty(T, B, H), empty(B, H), empty(B, H)

    def run():
        r = recurrence
        if cell == "lstm":
            hs, cs, gates = lstm.lstm_forward_device(x, w_ih, w_hh, b_ih, h0, c0, recurrence=r)
            lstm.lstm_backward_device(x, w_ih, w_hh, hs, cs, gates, dy, dh_n, dc_n, 0, recurrence=r)
        elif cell == "gru":
            hs, gates, hn = gru.gru_forward_device(x, w_ih, w_hh, b_ih, b_hh, h0, recurrence=r)
            gru.gru_backward_device(x, w_ih, w_hh, hs, gates, hn, dy, dh_n, 0, recurrence=r)
        else:
            hs = elman.elman_forward_device(x, w_ih, w_hh, b_ih, h0, False, recurrence=r)
            elman.elman_backward_device(x, w_ih, w_hh, hs, dy, dh_n, False, 0, recurrence=r)

    return run


def layer_forward_backward(cell: str, shape: tuple[int, int, int, int]):
    """A function running one forward+backward of a one-layer ``device="cuda"`` layer at (B, T, I, H)."""
    import rnnlab

    B, T, I, H = shape
    layer = {"elman": rnnlab.RNN, "lstm": rnnlab.LSTM, "gru": rnnlab.GRU}[cell](I, H, seed=0, device="cuda")
    x = np.random.default_rng(0).standard_normal((T, B, I), dtype=np.float32)
    dy = np.ones((T, B, H), np.float32)

    def run():
        _, _, trace = layer.forward(x)
        layer.backward(trace, dy)

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cell", action="append", choices=["elman", "lstm", "gru"])
    parser.add_argument("--shape", action="append", help="B,T,I,H (repeatable; default 1,100,32,64)")
    parser.add_argument("--layer", action="store_true", help="Time the layers (NumPy in and out), not *_device.")
    parser.add_argument("--recurrence", action="append", choices=["resident", "persistent", "per-step", "gemm"],
                        help="force this recurrence (repeatable; default: the one chosen by shape); not with --layer")
    args = parser.parse_args(argv)
    try:
        shapes = [tuple(int(v) for v in s.split(",")) for s in (args.shape or ["1,100,32,64"])]
        if any(len(s) != 4 or min(s) < 1 for s in shapes):
            raise ValueError
    except ValueError:
        parser.error("--shape takes four positive integers B,T,I,H")
    if args.layer and args.recurrence:
        parser.error("--recurrence times the device functions; drop --layer")
    try:
        launches = stand_in_for_the_gpu()
    except ImportError as exc:
        print(f"cuda_host_overhead: numba-cuda is needed: {exc}", file=sys.stderr)
        return 2
    print(f"{'cell':6s} {'B,T,I,H':>16s} {'recurrence':>10s} {'host f+b':>10s} {'launches':>9s}")
    for cell in args.cell or ["elman", "lstm", "gru"]:
        for shape, recurrence in [(s, r) for s in shapes for r in (args.recurrence or [None])]:
            run = layer_forward_backward(cell, shape) if args.layer else forward_backward(cell, shape, recurrence)
            run()  # compiles (PTX for the stand-in device; minutes when nothing is cached)
            launches[0] = 0
            run()
            count = launches[0]
            rounds = []
            for _ in range(7):
                start = time.perf_counter()
                for _ in range(50):
                    run()
                rounds.append((time.perf_counter() - start) / 50 * 1e6)
            print(f"{cell:6s} {','.join(map(str, shape)):>16s} {recurrence or 'by shape':>10s} "
                  f"{statistics.median(rounds):7.0f} us {count:9d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
