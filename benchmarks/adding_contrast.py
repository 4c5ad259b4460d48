"""The classic contrast on the adding problem (Hochreiter & Schmidhuber 1997): at T = 100-200 an
Elman RNN's gradient vanishes and it stays at the 'predict 1' baseline (MSE 1/6), while an LSTM
carries the two marked values in its cell state and learns the sum.

    python benchmarks/adding_contrast.py                 # T = 100 and 200, the presets' settings
    python benchmarks/adding_contrast.py --lengths 150 --steps 3000

Prints a markdown table (recorded in benchmarks/README.md). Uses the shipped presets
``adding-rnn`` and ``adding-lstm`` with only the sequence length (and optionally steps) changed.
"""

from __future__ import annotations

import argparse
import time

from rnnlab.lab import Lab
from rnnlab.spec import load_preset
from rnnlab.train import Trainer


def run(preset: str, length: int, steps: int | None) -> dict:
    overrides = {"task.length": length, "train.eval_every": 0}
    if steps:
        overrides["train.steps"] = steps
    spec = load_preset(preset).with_overrides(overrides)
    trainer = Trainer(spec)
    trainer.warm_up()
    started = time.perf_counter()
    final = list(trainer.events(spec.train.steps))[-1]
    seconds = time.perf_counter() - started
    lab = Lab(spec, batch=32, trainer=trainer)  # the trained weights on 32 held-out sequences
    norms = lab.gradient_norms()[0]
    return {"preset": preset, "T": length, "steps": spec.train.steps, "mse": final.loss,
            "baseline": trainer.task.baseline().loss, "ratio": norms[0] / norms[-1], "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 200])
    parser.add_argument("--steps", type=int, default=None, help="override train.steps of both presets")
    args = parser.parse_args()
    print("| T | cell | steps | held-out MSE | baseline MSE | ||dL/dh_1|| / ||dL/dh_T|| | seconds |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for length in args.lengths:
        for preset in ("adding-rnn", "adding-lstm"):
            r = run(preset, length, args.steps)
            print(f"| {r['T']} | {preset.split('-')[1]} | {r['steps']} | {r['mse']:.4f} | {r['baseline']:.4f} | "
                  f"{r['ratio']:.1e} | {r['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
