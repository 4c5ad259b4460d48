"""Self-attention against the LSTM on the same tasks, and the block against PyTorch's on the CPU.

    python benchmarks/selfattention_vs_lstm.py                       # both parts, a few minutes
    python benchmarks/selfattention_vs_lstm.py --steps 500 --no-torch

Part 1 trains, with rnnlab's own :class:`~rnnlab.train.Trainer` (same task, seed, batches, optimizer,
learning rate, clipping and number of steps), the shipped preset's LSTM ``SequenceModel`` and a
causal :class:`~rnnlab.layers.selfattention.SelfAttentionModel` swapped into the trainer, and
reports the final held-out loss / accuracy, parameter counts and milliseconds per training step.
Tasks: the adding problem (``adding-lstm`` preset) and copy memory (``copy`` preset), at shorter
lengths than the presets so the run stays short.

Part 2 times one float32 forward+backward of :class:`SelfAttentionBlock` against
``torch.nn.TransformerEncoderLayer(dropout=0)`` (same shapes; torch in a fresh subprocess) at a few
shapes, median (and minimum) of ``--repeats`` runs, both on the same number of threads.

Prints markdown tables on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numba
import numpy as np

from rnnlab.kernels import kernel_threads
from rnnlab.layers.selfattention import SelfAttentionBlock, SelfAttentionModel
from rnnlab.spec import load_preset
from rnnlab.train import Trainer, make_optimizer

TASKS = [  # (preset, overrides)
    ("adding-lstm", {"task.length": 50}),
    ("copy", {"task.delay": 10}),
]
SHAPES = [  # (T, B, d_model, heads, d_ff)
    (50, 32, 64, 4, 128),
    (128, 16, 128, 8, 256),
    (256, 8, 256, 8, 1024),
]


def train(preset: str, overrides: dict, steps: int, model: str, args) -> dict:
    spec = load_preset(preset).with_overrides({**overrides, "train.steps": steps, "train.eval_every": 0})
    trainer = Trainer(spec)
    if model == "self-attention":  # swap the model in; everything else is the trainer's own
        trainer.model = SelfAttentionModel(trainer.task.input_size, trainer.task.output_size, d_model=args.d_model,
                                           num_heads=args.heads, num_layers=args.layers, d_ff=2 * args.d_model,
                                           causal=True, seed=spec.seed)
        trainer.optimizer = make_optimizer(spec.train.optimizer, trainer.model.parameters(), spec.train)
    trainer.warm_up()
    started = time.perf_counter()
    final = list(trainer.events(steps))[-1]
    seconds = time.perf_counter() - started
    what = (f"LSTM H={spec.model.hidden_size}" if model == "lstm" else
            f"attention d={args.d_model} heads={args.heads} layers={args.layers} causal")
    return {"task": trainer.task.describe().split(":")[0], "T": trainer.task.length, "model": what,
            "params": trainer.model.num_parameters, "loss": final.loss, "accuracy": final.accuracy,
            "baseline": trainer.task.baseline().loss, "ms_per_step": 1000 * seconds / steps}


def time_block(shape, repeats: int, use_torch: bool, threads: int) -> dict:
    T, B, d, H, f = shape
    block = SelfAttentionBlock(d, H, f, max_len=max(512, T), seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, d)).astype(np.float32)
    dy = rng.standard_normal((T, B, d)).astype(np.float32)

    def ours():
        _, trace = block.forward(x)
        block.backward(trace, dy)

    ours()
    row = {"shape": f"T={T} B={B} d={d} heads={H} d_ff={f}"}
    row["rnnlab_ms"], row["rnnlab_min"] = _times_ms(ours, repeats)
    if use_torch:
        # torch runs in a fresh process: in one process with rnnlab's kernels, torch's OpenMP threads
        # were at times 10-100x slower on this 2-core machine, which would flatter rnnlab
        cmd = [sys.executable, __file__, "--torch-worker", ",".join(map(str, shape)),
               "--repeats", str(repeats), "--threads", str(threads)]
        result = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        row["torch_ms"], row["torch_min"] = result["median"], result["min"]
        row["ratio"] = row["torch_ms"] / row["rnnlab_ms"]
    return row


def torch_worker(shape: str, repeats: int, threads: int) -> None:
    """Print {"median": ms, "min": ms} of torch.nn.TransformerEncoderLayer forward+backward at ``shape``."""
    import torch

    torch.set_num_threads(threads)
    T, B, d, H, f = (int(v) for v in shape.split(","))
    layer = torch.nn.TransformerEncoderLayer(d, H, f, dropout=0.0)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((T, B, d)).astype(np.float32)).requires_grad_(True)
    dy = torch.from_numpy(rng.standard_normal((T, B, d)).astype(np.float32))

    def theirs():
        x.grad = None
        layer.zero_grad(set_to_none=True)
        layer(x).backward(dy)

    theirs()
    median, minimum = _times_ms(theirs, repeats)
    print(json.dumps({"median": median, "min": minimum}))


def _times_ms(fn, repeats: int) -> tuple[float, float]:
    """(median, minimum) milliseconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times), 1000 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=600, help="training steps per model and task")
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for rnnlab's kernels and for torch (default: numba's setting)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch timings")
    parser.add_argument("--no-train", action="store_true", help="skip part 1")
    parser.add_argument("--torch-worker", metavar="T,B,d,H,F", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_worker:
        return torch_worker(args.torch_worker, args.repeats, args.threads or 1)
    if args.threads:
        numba.set_num_threads(args.threads)
    threads = kernel_threads()

    if not args.no_train:
        rows = []
        for preset, overrides in TASKS:
            for model in ("lstm", "self-attention"):
                print(f"training {model} on {preset} {overrides} for {args.steps} steps", file=sys.stderr)
                rows.append(train(preset, overrides, args.steps, model, args))
        print(f"### Same task, same trainer, {args.steps} steps (Adam, batch 32, preset learning rate)\n")
        print("| task | T | model | params | final eval loss | accuracy | baseline loss | ms/step |")
        print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            acc = "" if r["accuracy"] is None else f"{r['accuracy']:.3f}"
            print(f"| {r['task']} | {r['T']} | {r['model']} | {r['params']} | {r['loss']:.4f} | {acc} | "
                  f"{r['baseline']:.4f} | {r['ms_per_step']:.1f} |")
        print()

    print(f"### SelfAttentionBlock forward+backward, float32, {threads} thread(s), "
          f"median (min) of {args.repeats}; load average {os.getloadavg()[0]:.1f}\n")
    print("| shape | rnnlab ms | torch ms | torch / rnnlab (medians) |")
    print("| --- | ---: | ---: | ---: |")
    for shape in SHAPES:
        print(f"timing {shape}", file=sys.stderr)
        r = time_block(shape, args.repeats, not args.no_torch, threads)
        torch_ms = f"{r['torch_ms']:.2f} ({r['torch_min']:.2f})" if "torch_ms" in r else "-"
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else "-"
        print(f"| {r['shape']} | {r['rnnlab_ms']:.2f} ({r['rnnlab_min']:.2f}) | {torch_ms} | {ratio} |")


if __name__ == "__main__":
    main()
