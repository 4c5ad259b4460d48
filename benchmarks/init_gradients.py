"""What initialisation does to the gradient-norm curve on the adding problem (T = 100).

Five networks with the ``adding-rnn`` and ``adding-lstm`` presets' settings (H = 64, Adam, clip 1,
batch 32; learning rate 1e-3 for the Elman nets, 5e-3 for the LSTMs), only the initialisation changed:

- Elman tanh, torch's uniform init (the preset as it is);
- Elman tanh, orthogonal W_hh (Saxe et al. 2014);
- IRNN: Elman ReLU, W_hh = I, zero biases, small input weights (Le, Jaitly & Hinton 2015);
- LSTM, torch's init (forget-gate bias ~ 0);
- LSTM, forget-gate bias 1 (Gers et al. 2000; Jozefowicz et al. 2015).

For each: ||dL/dh_1|| / ||dL/dh_T|| on 32 held-out sequences at initialisation and after
training (how much of the loss's gradient reaches the first step: ~1e-20 means nothing does),
the held-out MSE after training (baseline, "always predict 1": 0.167) and the training time.

    python benchmarks/init_gradients.py                # 3000 steps
    python benchmarks/init_gradients.py --steps 3000 --length 150

Prints a markdown table (recorded in benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import time

from rnnlab.lab import Lab
from rnnlab.spec import load_preset
from rnnlab.train import Trainer

CONFIGS = {  # name: (preset, overrides)
    "rnn tanh, uniform": ("adding-rnn", {}),
    "rnn tanh, orthogonal": ("adding-rnn", {"model.init": "orthogonal"}),
    "IRNN (relu, identity)": ("adding-rnn", {"model.nonlinearity": "relu", "model.init": "identity"}),
    "lstm, uniform": ("adding-lstm", {}),
    "lstm, forget bias 1": ("adding-lstm", {"model.forget_bias": 1.0}),
}


def ratio(lab: Lab) -> float:
    norms = lab.gradient_norms()[0]
    return float(norms[0] / norms[-1])


def run(name: str, preset: str, overrides: dict, length: int, steps: int) -> dict:
    spec = load_preset(preset).with_overrides(
        {**overrides, "task.length": length, "train.steps": steps, "train.eval_every": 0})
    trainer = Trainer(spec)
    at_init = ratio(Lab(spec, batch=32, trainer=trainer))
    trainer.warm_up()
    started = time.perf_counter()
    final = list(trainer.events(spec.train.steps))[-1]
    seconds = time.perf_counter() - started
    after = ratio(Lab(spec, batch=32, trainer=trainer))
    held_out = trainer.evaluate()
    return {"name": name, "init_ratio": at_init, "trained_ratio": after, "train_mse": final.loss,
            "eval_mse": held_out.loss, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()
    print(f"Adding problem T={args.length}, H=64, Adam, clip 1, batch 32, {args.steps} steps; "
          "baseline MSE 0.167\n")
    print("| network | ‖dL/dh_1‖/‖dL/dh_T‖ at init | after training | held-out MSE | train s |")
    print("|---|---:|---:|---:|---:|")
    for name, (preset, overrides) in CONFIGS.items():
        r = run(name, preset, overrides, args.length, args.steps)
        print(f"| {r['name']} | {r['init_ratio']:.1e} | {r['trained_ratio']:.1e} | {r['eval_mse']:.4f} "
              f"| {r['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
