"""What the GPU kernels compile to, measured without a GPU: per kernel, ptxas's registers and spills
for sm_90, and the instruction mix of its hottest loop in SASS (nvdisasm).

    python benchmarks/cuda_sass.py                                  # every product kernel, float32
    python benchmarks/cuda_sass.py --dtype float64 --kernels gemm,lstm
    python benchmarks/cuda_sass.py --gemm-tile 128,128,8,16,16 --step-tile 32,8,8,32 --kernels gemm,lstm.forward_step

The hot loop is the basic block that reads shared memory with the most FMAs: the K loop of a
GEMM or of a recurrent step's product. Its columns say what bounds a compute-bound kernel: the share of its
instructions that are FMAs (the rest is address arithmetic and loop control competing for the
same issue slots), and FMAs per shared-memory load (LDS.128 carries 4 float32). A persistent
kernel calls the same product device function as its per-step twin; its loop is not shown,
because its grid sync links against the device runtime only at load time.

Needs NVVM (``pip install "numba-cuda[cu12]"``), ``ptxas`` (the same) and ``nvdisasm``
(``pip install nvidia-cuda-nvdisasm``; found on PATH or in an installed nvidia wheel). No GPU
and no simulator: kernels are compiled as if an sm_90 device were present. Exits 2 with a one-line
reason when a tool is missing.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import types as pytypes

CC = (9, 0)
DEFAULT_KERNELS = "gemm,forward_step,backward_step"


def find_tool(name: str) -> str | None:
    """``name`` on PATH, else in an installed nvidia wheel's bin folder (nvidia/*/bin, nvidia/cu*/bin)."""
    found = shutil.which(name)
    if found:
        return found
    site = sysconfig.get_paths()["purelib"]
    for pattern in (f"{site}/nvidia/*/bin/{name}", f"{site}/nvidia/*/*/bin/{name}"):
        for path in sorted(glob.glob(pattern)):
            if os.access(path, os.X_OK):
                return path
    return None


def _sizes(text: str, count: int, what: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != count:
        raise SystemExit(f"error: {what} {text!r} needs {count} comma-separated integers")
    return sizes


def _modules(gemm_tile, step_tile):
    """The kernel modules imported as if an sm_90 GPU were there (only compile_ptx is used)."""
    import numba.cuda.dispatcher as cuda_dispatcher

    from rnnlab.kernels.cuda import _device

    _device.cuda_available = lambda: (True, "SASS report")
    cuda_dispatcher.get_current_device = lambda: pytypes.SimpleNamespace(compute_capability=CC)
    from rnnlab.kernels.cuda import _common

    if step_tile:
        _common.set_step_tile(*step_tile)
    if gemm_tile:
        _common.set_gemm_tile(*gemm_tile)
    from rnnlab.kernels.cuda import elman, gru, lstm

    return pytypes.SimpleNamespace(common=_common, elman=elman, lstm=lstm, gru=gru)


def hot_loop(sass: str, fma: str) -> collections.Counter:
    """Opcode counts of the basic block (split at labels and branches) that reads shared memory with
    the most ``fma`` instructions: a product's K loop, not the gate math's FMAs (tanh is a rational)."""
    blocks, current = [], collections.Counter()
    for line in sass.splitlines():
        if re.match(r"^\s*\.L", line):
            blocks.append(current)
            current = collections.Counter()
        match = re.search(r"/\*[0-9a-f]{4}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]+)", line)
        if match:
            opcode = match.group(1)
            current[opcode if opcode.startswith(("LDS", "LDL", "STL")) else opcode.split(".")[0]] += 1
            if opcode.startswith(("BRA", "EXIT", "RET")):  # a block also ends at its branch
                blocks.append(current)
                current = collections.Counter()
    blocks.append(current)
    products = [block for block in blocks if any(opcode.startswith("LDS") for opcode in block)] or blocks
    return max(products, key=lambda block: block[fma])


def report(name: str, kernel, signature, dtype: str, ptxas: str, nvdisasm: str, work: str) -> dict:
    from numba import cuda

    options = {key: kernel.targetoptions[key] for key in ("launch_bounds",) if key in kernel.targetoptions}
    ptx, _ = cuda.compile_ptx(kernel.py_func, signature, device=False, cc=CC, **options)
    ptx_path, cubin_path = os.path.join(work, "k.ptx"), os.path.join(work, "k.cubin")
    with open(ptx_path, "w") as f:
        f.write(ptx)
    arch = f"-arch=sm_{CC[0]}{CC[1]}"
    compiled = subprocess.run([ptxas, "-c", "-v", arch, ptx_path, "-o", cubin_path], capture_output=True, text=True)
    if compiled.returncode:
        raise RuntimeError(f"ptxas failed on {name}: {compiled.stderr.strip()[:200]}")

    def number(pattern: str) -> int:
        match = re.search(pattern, compiled.stderr)
        return int(match.group(1)) if match else 0

    row = {"kernel": name, "dtype": dtype, "launch_bounds": options.get("launch_bounds"),
           "registers": number(r"Used (\d+) registers"), "spill_bytes": number(r"(\d+) bytes spill stores"),
           "shared_bytes": number(r"(\d+) bytes smem")}
    sass = subprocess.run([nvdisasm, "-c", cubin_path], capture_output=True, text=True, check=True).stdout
    fma = "DFMA" if dtype == "float64" else "FFMA"
    loop = hot_loop(sass, fma)
    shared_loads = sum(count for opcode, count in loop.items() if opcode.startswith("LDS"))
    total = sum(loop.values())
    row.update(loop_instructions=total, loop_fmas=loop[fma], fma_share=loop[fma] / total if total else 0.0,
               shared_loads=shared_loads,
               vector_loads=loop["LDS.128"] + (loop["LDS.64"] if dtype == "float32" else 0),
               fmas_per_shared_load=loop[fma] / shared_loads if shared_loads else None)
    return row


def markdown(rows: list[dict]) -> str:
    lines = ["| kernel | dtype | registers | spills (B) | loop instr | FMAs | FMA share | shared loads (vector) "
             "| FMAs per load |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        per_load = "-" if r["fmas_per_shared_load"] is None else f"{r['fmas_per_shared_load']:.1f}"
        lines.append(f"| {r['kernel']} | {r['dtype']} | {r['registers']} | {r['spill_bytes']} | {r['loop_instructions']} "
                     f"| {r['loop_fmas']} | {r['fma_share']:.0%} | {r['shared_loads']} ({r['vector_loads']}) | {per_load} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--kernels", default=DEFAULT_KERNELS,
                        help=f"comma-separated parts of kernel names to include (default: {DEFAULT_KERNELS})")
    parser.add_argument("--gemm-tile", help="BM,BN,BK,TX,TY instead of the shipped GEMM tile")
    parser.add_argument("--step-tile", help="UNITS,ROW_THREADS,ROWS_PER_THREAD,K instead of the shipped step tile")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a markdown table")
    args = parser.parse_args(argv)
    gemm_tile = _sizes(args.gemm_tile, 5, "--gemm-tile") if args.gemm_tile else None
    step_tile = _sizes(args.step_tile, 4, "--step-tile") if args.step_tile else None
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        print("error: unset NUMBA_ENABLE_CUDASIM: the simulator compiles nothing", file=sys.stderr)
        return 2
    tools = {name: find_tool(name) for name in ("ptxas", "nvdisasm")}
    missing = [name for name, path in tools.items() if path is None]
    if missing:
        print(f"error: {' and '.join(missing)} not found (pip install \"numba-cuda[cu12]\" nvidia-cuda-nvdisasm)",
              file=sys.stderr)
        return 2
    try:
        modules = _modules(gemm_tile, step_tile)
    except ValueError as exc:  # a tile that breaks its rule
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from rnnlab.kernels.cuda._signatures import kernel_signatures

    wanted = [part for part in args.kernels.split(",") if part]
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, get_kernel, signature in kernel_signatures(args.dtype, small_tile=not step_tile):
            if any(part in name for part in wanted):
                rows.append(report(name, get_kernel(modules), signature, args.dtype, tools["ptxas"],
                                   tools["nvdisasm"], work))
    if not rows:
        print(f"error: no kernel name contains any of {', '.join(wanted)}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=1) if args.json else markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
