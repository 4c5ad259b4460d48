"""Slow and fast units split the work: the presets ``multiscale-leaky`` and ``multiscale-rnn`` on the
``two-scales`` task (a noisy slow sine plus a fast one; targets: the two clean components).

    python benchmarks/multiscale_leaky.py                      # the presets' settings
    python benchmarks/multiscale_leaky.py --steps 1200 --noise 1.0

Trains both presets (only the overrides given changed), then on the held-out batch prints
(1) the held-out MSE of each, overall and per component, against the zero baseline (0.5), and
(2) for the leaky network every unit sorted by its learned time constant tau = 1/a, with the
correlation of its activity h_t (over steps and sequences) with the slow component s_t and with
the fast one f_t, and (3) a summary by quarter of tau: mean |corr| with each component. The split
shows as slow units (large tau) tracking s_t and fast units tracking f_t. For the rnn the same
summary by quarter of each unit's own time scale (its activity's lag-1 autocorrelation rho as
tau = -1/log rho) is printed beside it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rnnlab.spec import load_preset
from rnnlab.train import Trainer


def _corr(h: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pearson correlation of every unit of h (N, H) with target (N,)."""
    hc = h - h.mean(axis=0)
    tc = target - target.mean()
    denom = np.sqrt((hc * hc).sum(axis=0) * (tc * tc).sum()) + 1e-12
    return (hc * tc[:, None]).sum(axis=0) / denom


def _autocorr_tau(h: np.ndarray) -> np.ndarray:
    """Each unit's time scale from its lag-1 autocorrelation: h (T, B, H) -> tau (H,) in steps."""
    a, b = h[1:].reshape(-1, h.shape[2]), h[:-1].reshape(-1, h.shape[2])
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    rho = (a * b).sum(axis=0) / (np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0)) + 1e-12)
    return -1.0 / np.log(np.clip(rho, 1e-6, 1 - 1e-9))


def run(preset: str, overrides: dict) -> dict:
    spec = load_preset(preset).with_overrides({**overrides, "train.eval_every": 0})
    trainer = Trainer(spec)
    started = time.perf_counter()
    for _ in range(spec.train.steps):
        trainer.train_step()
    seconds = time.perf_counter() - started
    batch = trainer.task.eval_batch(spec.train.eval_batch_size, spec.seed)
    out, _, trace = trainer.model.forward(batch.x)
    per_component = ((out - batch.y) ** 2).mean(axis=(0, 1))
    h = np.asarray(trace.get("h"), np.float64)  # (T, B, H), layer 0
    flat = h.reshape(-1, h.shape[2])
    slow, fast = batch.y[..., 0].reshape(-1), batch.y[..., 1].reshape(-1)
    if "a" in trace:
        tau = 1.0 / np.asarray(trace.get("a")[0, 0], np.float64)
        tau_kind = "tau=1/a"
    else:
        tau = _autocorr_tau(h)
        tau_kind = "tau from lag-1 autocorr."
    return {"preset": preset, "mse": float(per_component.mean()), "mse_slow": float(per_component[0]),
            "mse_fast": float(per_component[1]), "seconds": seconds, "tau": tau, "tau_kind": tau_kind,
            "corr_slow": _corr(flat, slow), "corr_fast": _corr(flat, fast)}


def _quarters(r: dict) -> list[str]:
    order = np.argsort(r["tau"])
    rows = []
    for q, part in enumerate(np.array_split(order, 4)):
        label = {0: " (fastest)", 3: " (slowest)"}.get(q, "")
        rows.append(f"| {r['preset']} | {q + 1}{label} "
                    f"| {r['tau'][part].min():.1f}-{r['tau'][part].max():.1f} "
                    f"| {np.abs(r['corr_slow'][part]).mean():.2f} | {np.abs(r['corr_fast'][part]).mean():.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, help="training steps (default: the presets')")
    parser.add_argument("--noise", type=float, help="input noise std (default: the presets')")
    parser.add_argument("--seed", type=int, help="seed (default: the presets')")
    args = parser.parse_args()
    overrides: dict = {}
    if args.steps:
        overrides["train.steps"] = args.steps
    if args.noise is not None:
        overrides["task.noise"] = args.noise
    if args.seed is not None:
        overrides["seed"] = args.seed
    results = [run(p, overrides) for p in ("multiscale-leaky", "multiscale-rnn")]

    print("| preset | held-out MSE | slow part | fast part | zero baseline | train s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['preset']} | {r['mse']:.4f} | {r['mse_slow']:.4f} | {r['mse_fast']:.4f} | 0.5 | {r['seconds']:.1f} |")

    leaky = results[0]
    print("\nmultiscale-leaky, every unit by learned time constant:\n")
    print("| unit | tau = 1/a (steps) | corr(h, slow) | corr(h, fast) |")
    print("|---|---|---|---|")
    for j in np.argsort(leaky["tau"]):
        print(f"| {j} | {leaky['tau'][j]:.1f} | {leaky['corr_slow'][j]:+.2f} | {leaky['corr_fast'][j]:+.2f} |")

    print("\nBy quarter of time scale (leaky: tau = 1/a; rnn: tau from each unit's lag-1 autocorrelation):\n")
    print("| preset | quarter | tau range | mean abs corr(h, slow) | mean abs corr(h, fast) |")
    print("|---|---|---|---|---|")
    for r in results:
        print("\n".join(_quarters(r)))
    rho = np.corrcoef(np.log(leaky["tau"]), np.abs(leaky["corr_slow"]) - np.abs(leaky["corr_fast"]))[0, 1]
    print(f"\nleaky: correlation over units of log(tau) with |corr slow| - |corr fast|: {rho:+.2f}")


if __name__ == "__main__":
    main()
