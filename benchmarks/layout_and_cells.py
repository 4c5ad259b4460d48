"""What torch's conveniences cost around the same kernels: ``batch_first=True`` (a transposed copy of
x and y, of dy and the input's gradient) against the time-major layer, and stepping an LSTMCell by
hand (forward and backward, one call a step) against the layer's one call over the sequence, with
torch's LSTMCell and autograd beside it where torch is installed (timed in a process of its own:
torch's thread pool and numba's, spinning in one process, made torch's step 45x slower at B=32).

    python benchmarks/layout_and_cells.py                  # the shapes below, median of 7 rounds
    python benchmarks/layout_and_cells.py --repeats 15

Each round times every contender once, in turn, so a drift of the machine hits them alike; the
table shows medians and the ratio to the time-major layer measured in the same rounds.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import rnnlab
from _timing import in_own_process, interleaved_medians  # (benchmarks/, where the script runs)

LAYOUT_SHAPES = [(1, 100, 8, 16), (16, 100, 32, 64), (32, 100, 64, 128), (64, 50, 256, 512)]  # B, T, I, H
CELL_SHAPES = [(1, 100, 8, 16), (4, 100, 8, 16), (32, 100, 64, 128)]


def layout(repeats: int) -> None:
    print("batch_first=True against time-major, LSTM forward+backward (float32), ms")
    print(f"{'B,T,I,H':>16} {'time-major':>11} {'batch_first':>12} {'ratio':>6}")
    rng = np.random.default_rng(0)
    for B, T, I, H in LAYOUT_SHAPES:
        time_major = rnnlab.LSTM(I, H, seed=0)
        batch_first = rnnlab.LSTM(I, H, batch_first=True, seed=0)
        x = rng.standard_normal((T, B, I), dtype=np.float32)
        x_bf = np.ascontiguousarray(x.transpose(1, 0, 2))
        dy = np.ones((T, B, H), np.float32)
        dy_bf = np.ones((B, T, H), np.float32)

        def run(layer, x, dy):
            return lambda: layer.backward(layer(x)[2], dy)

        t = interleaved_medians({"tm": run(time_major, x, dy), "bf": run(batch_first, x_bf, dy_bf)}, repeats)
        print(f"{f'{B},{T},{I},{H}':>16} {1e3 * t['tm']:11.3f} {1e3 * t['bf']:12.3f} {t['bf'] / t['tm']:6.2f}")


def torch_cells(repeats: int) -> dict[str, float]:
    """Seconds a step of torch's LSTMCell stepped by hand, forward and autograd's backward, by shape."""
    import torch

    torch.set_num_threads(2)
    times = {}
    for B, T, I, H in CELL_SHAPES:
        cell, x = torch.nn.LSTMCell(I, H), torch.randn(T, B, I)

        def by_hand():
            state, outputs = None, []
            for x_t in x:
                state = cell(x_t, state)
                outputs.append(state[0])
            torch.stack(outputs).sum().backward()

        times[f"{B},{T},{I},{H}"] = interleaved_medians({"torch": by_hand}, repeats)["torch"] / T
    return times


def cells(repeats: int) -> None:
    torch = in_own_process(__file__, "--torch-cells", "--repeats", str(repeats))
    print("\nLSTMCell stepped by hand against the layer, forward+backward over T steps (float32), us a step")
    print(f"{'B,T,I,H':>16} {'layer':>8} {'cell':>8} {'ratio':>6}" + (f" {'torch cell':>11}" if torch else ""))
    rng = np.random.default_rng(0)
    for B, T, I, H in CELL_SHAPES:
        layer = rnnlab.LSTM(I, H, seed=0)
        cell = rnnlab.LSTMCell(I, H)
        cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
        x = rng.standard_normal((T, B, I), dtype=np.float32)
        dy = np.ones((T, B, H), np.float32)

        def by_hand():
            state, traces = None, []
            for x_t in x:
                state, trace = cell(x_t, state)
                traces.append(trace)
            dstate = (np.zeros((B, H), np.float32), None)
            for t in range(T - 1, -1, -1):
                grads = cell.backward(traces[t], (dstate[0] + dy[t], dstate[1]))
                dstate = (grads["hx"], grads["cx"])

        t = interleaved_medians({"layer": lambda: layer.backward(layer(x)[2], dy), "cell": by_hand}, repeats)
        line = f"{f'{B},{T},{I},{H}':>16} {1e6 * t['layer'] / T:8.1f} {1e6 * t['cell'] / T:8.1f} "
        line += f"{t['cell'] / t['layer']:6.1f}"
        if torch is not None:
            line += f" {1e6 * torch[f'{B},{T},{I},{H}']:11.1f}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--torch-cells", action="store_true", help="time torch's cells alone; JSON on stdout")
    args = parser.parse_args()
    if args.torch_cells:
        print(json.dumps(torch_cells(args.repeats)))
        return
    layout(args.repeats)
    cells(args.repeats)


if __name__ == "__main__":
    main()
