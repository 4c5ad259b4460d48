"""What sequences of different lengths cost: a layer's forward+backward with ``lengths`` against the
same padded batch run over all T steps, and torch's packed sequences against its padded batch,
each library in a process of its own (torch's thread pool and numba's fight in one).

    python benchmarks/lengths.py                  # the shapes below, median of 7 rounds
    python benchmarks/lengths.py --repeats 15

The lengths are drawn uniformly in T/2..T (seeded), so about half of the padded steps are work
neither side needs to do. Each round times every contender once, in turn; the table shows
medians, float32, 2 threads on each side.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from _timing import in_own_process, interleaved_medians  # (benchmarks/, where the script runs)

SHAPES = [(16, 100, 32, 64), (32, 100, 64, 128), (64, 50, 256, 512)]  # B, T, I, H
CELLS = ("LSTM", "GRU")


def _lengths(B: int, T: int) -> np.ndarray:
    return np.random.default_rng(B * T).integers(T // 2, T + 1, size=B)


def time_rnnlab(repeats: int) -> dict[str, dict[str, float]]:
    import rnnlab

    times = {}
    for cell in CELLS:
        for B, T, I, H in SHAPES:
            layer = getattr(rnnlab, cell)(I, H, seed=0)
            x = np.random.default_rng(0).standard_normal((T, B, I), dtype=np.float32)
            dy, lengths = np.ones((T, B, H), np.float32), _lengths(B, T)
            times[f"{cell} {B},{T},{I},{H}"] = interleaved_medians({
                "padded": lambda: layer.backward(layer(x)[2], dy),
                "lengths": lambda: layer.backward(layer(x, None, lengths)[2], dy),
            }, repeats)
    return times


def time_torch(repeats: int) -> dict[str, dict[str, float]]:
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.set_num_threads(2)
    times = {}
    for cell in CELLS:
        for B, T, I, H in SHAPES:
            layer = getattr(torch.nn, cell)(I, H)
            x = torch.randn(T, B, I, requires_grad=True)
            lengths = torch.from_numpy(_lengths(B, T))

            def padded():
                layer(x)[0].sum().backward()

            def packed():
                out = layer(pack_padded_sequence(x, lengths, enforce_sorted=False))[0]
                pad_packed_sequence(out, total_length=T)[0].sum().backward()

            times[f"{cell} {B},{T},{I},{H}"] = interleaved_medians({"padded": padded, "lengths": packed}, repeats)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--torch", action="store_true", help="time torch alone; JSON on stdout")
    args = parser.parse_args()
    if args.torch:
        print(json.dumps(time_torch(args.repeats)))
        return
    ours = time_rnnlab(args.repeats)
    theirs = in_own_process(__file__, "--torch", "--repeats", str(args.repeats))
    print("forward+backward (float32), ms; lengths uniform in T/2..T")
    header = f"{'cell B,T,I,H':>22} {'padded':>8} {'lengths':>8} {'ratio':>6}"
    if theirs:
        header += f" {'torch padded':>13} {'torch packed':>13} {'ratio':>6} {'torch/rnnlab':>13}"
    print(header)
    for key, t in ours.items():
        line = f"{key:>22} {1e3 * t['padded']:8.2f} {1e3 * t['lengths']:8.2f} {t['lengths'] / t['padded']:6.2f}"
        if theirs:
            o = theirs[key]
            line += (f" {1e3 * o['padded']:13.2f} {1e3 * o['lengths']:13.2f} {o['lengths'] / o['padded']:6.2f}"
                     f" {o['lengths'] / t['lengths']:13.2f}")
        print(line)


if __name__ == "__main__":
    main()
