"""Echo state network on Mackey-Glass (tau = 17), reservoirpy's published setup, over many seeds.

reservoirpy's README (0.3.x; its numbers were printed from this code)::

    X = mackey_glass(n_timesteps=2000)
    x_train, x_test, y_train, y_test = to_forecasting(X, test_size=0.2)   # X[:-1] -> X[1:], last 400 test
    esn = Reservoir(units=100, sr=1.25, lr=0.3) >> Ridge(ridge=1e-5)
    esn.fit(x_train, y_train, warmup=100)
    predictions = esn.run(x_test)                # continues from the training's last state
    # RMSE: 0.0020282; R^2 score: 0.99992

The series is not normalised, and that is one random reservoir. Its older README fitted on the
first 500 steps instead (``esn.fit(X[:500], X[1:501], warmup=100)``, ``esn.run(X[501:-1])``
scored against ``X[502:]``) without printing numbers; both setups are run here.

rnnlab's ``EchoStateNetwork`` with the same hyperparameters (its defaults are reservoirpy's:
input scaling 1, connectivities 0.1, Bernoulli +-1 input weights and bias, normal W) is fitted
for each seed; the random draws differ from reservoirpy's, so results are reported as a
distribution over seeds (median, worst, best, and the fraction of seeds at or below the
published RMSE). ``readout_input=True`` adds the input to the readout's features
(y_t = W_out [x_t; u_t] + b_out), everything else equal.

Also reported, for the published split: free-running generation from the end of the training
data (its last target fed in, then each output fed back as the next input; the first forecast is
the one-step test's first target), scored by the RMSE of the first 100 generated
steps and by the number of steps until the error first exceeds 0.1; and wall-clock times of
``fit`` (1599 steps plus the ridge solve) and ``predict`` (400 steps), medians over seeds.

    python benchmarks/esn_mackey_glass.py                     # 10 seeds
    python benchmarks/esn_mackey_glass.py --seeds 40
    python benchmarks/esn_mackey_glass.py --reservoirpy       # also run reservoirpy, if importable
    python benchmarks/esn_mackey_glass.py --normalize         # the series min-max scaled to [-1, 1]

With ``--reservoirpy`` the same setups run through reservoirpy itself (``rpy.set_seed(seed)``,
independent draws for W, Win and bias), for a side-by-side distribution.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rnnlab.data.series import mackey_glass
from rnnlab.layers.esn import EchoStateNetwork

PUBLISHED_RMSE = 0.0020282
PUBLISHED_R2 = 0.99992
HYPER = dict(spectral_radius=1.25, leak_rate=0.3, ridge=1e-5)
UNITS, WARMUP, GENERATE, DIVERGE = 100, 100, 100, 0.1


def splits(series: np.ndarray) -> dict[str, tuple[np.ndarray, ...]]:
    """(x_train, y_train, x_test, y_test) of each setup, time-major (T, 1, 1)."""
    x = series[:, None, None]
    test = round(0.2 * len(series))  # reservoirpy's to_forecasting(X, test_size=0.2)
    n_train = len(series) - 1 - test
    return {
        "published: train 1599, test 400": (x[:n_train], x[1:n_train + 1], x[n_train:-1], x[n_train + 1:]),
        "old README: train 500": (x[:500], x[1:501], x[501:-1], x[502:]),
    }


def scores(y: np.ndarray, y_hat: np.ndarray) -> tuple[float, float]:
    """reservoirpy's rmse and rsquare."""
    err = np.sum((y - y_hat) ** 2)
    return float(np.sqrt(err / y.size)), float(1.0 - err / np.sum((y - y.mean()) ** 2))


def run_rnnlab(split, seed: int, readout_input: bool, free_run: bool) -> dict:
    x_train, y_train, x_test, y_test = split
    esn = EchoStateNetwork(1, UNITS, readout_input=readout_input, seed=seed, **HYPER)
    t0 = time.perf_counter()
    state = esn.fit(x_train, y_train, warmup=WARMUP)
    t1 = time.perf_counter()
    y_hat = esn.predict(x_test, state=state)
    t2 = time.perf_counter()
    rmse, r2 = scores(y_test, y_hat)
    out = {"rmse": rmse, "r2": r2, "fit_s": t1 - t0, "predict_s": t2 - t1}
    if free_run:
        n = len(y_test)
        # driven by the true inputs through x_test[0] (= y_train[-1], the last training target, known
        # data), then fed back: y_gen[k] forecasts y_test[k], the one-step test's targets (as the lab)
        y_gen, _ = esn.generate(n, np.concatenate([x_train, x_test[:1]]))
        err = np.abs(y_gen - y_test)[:, 0, 0]
        out["gen_rmse"] = float(np.sqrt(np.mean(err[:GENERATE] ** 2)))
        over = np.nonzero(err > DIVERGE)[0]
        out["horizon"] = int(over[0]) if len(over) else n
    return out


def run_reservoirpy(split, seed: int) -> dict:  # pragma: no cover - optional comparison
    import reservoirpy as rpy
    from reservoirpy.nodes import Reservoir, Ridge

    rpy.verbosity(0)
    rpy.set_seed(seed)
    x_train, y_train, x_test, y_test = (a[:, 0, :] for a in split)
    esn = Reservoir(units=UNITS, sr=HYPER["spectral_radius"], lr=HYPER["leak_rate"]) >> Ridge(ridge=HYPER["ridge"])
    esn.fit(x_train, y_train, warmup=WARMUP)
    rmse, r2 = scores(y_test, esn.run(x_test))
    return {"rmse": rmse, "r2": r2}


def summary(name: str, setup: str, rows: list[dict]) -> str:
    rmse = np.array([r["rmse"] for r in rows])
    r2 = np.array([r["r2"] for r in rows])
    return (f"| {setup} | {name} | {np.median(rmse):.5f} | {rmse.max():.5f} | {rmse.min():.5f} | "
            f"{np.mean(rmse <= PUBLISHED_RMSE):.0%} | {np.median(r2):.6f} | {r2.min():.6f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="reservoirs per configuration (seeds 0..n-1)")
    parser.add_argument("--reservoirpy", action="store_true", help="also run reservoirpy (must be importable)")
    parser.add_argument("--normalize", action="store_true",
                        help="min-max scale the series to [-1, 1] first (reservoirpy's README does not)")
    args = parser.parse_args()

    series = mackey_glass(2000, tau=17)  # reservoirpy 0.3's series, bit for bit
    if args.normalize:
        series = 2.0 * (series - series.min()) / (series.max() - series.min()) - 1.0
    seeds = range(args.seeds)
    EchoStateNetwork(1, UNITS, seed=0).fit(series[:200, None, None], series[1:201, None, None])  # compile/load kernels

    print(f"Mackey-Glass tau=17, 2000 steps{' scaled to [-1, 1]' if args.normalize else ''}, {UNITS} units, sr 1.25, lr 0.3, ridge 1e-5, warmup {WARMUP}; "
          f"{args.seeds} seeds. Published (reservoirpy README, one reservoir): RMSE {PUBLISHED_RMSE}, "
          f"R^2 {PUBLISHED_R2}.\n")
    print("| setup | model | RMSE median | RMSE worst | RMSE best | seeds <= 0.0020282 | R^2 median | R^2 worst |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    free = {}
    timings = []
    for setup, split in splits(series).items():
        published = setup.startswith("published")
        for readout_input in (False, True):
            rows = [run_rnnlab(split, s, readout_input, free_run=published) for s in seeds]
            name = "rnnlab, readout [x; u]" if readout_input else "rnnlab, readout x (as reservoirpy)"
            print(summary(name, setup, rows), flush=True)
            if published:
                free[name] = rows
                timings += rows
        if args.reservoirpy:
            rows = [run_reservoirpy(split, s) for s in seeds]
            print(summary("reservoirpy " + __import__("reservoirpy").__version__, setup, rows), flush=True)

    print("\nFree-running generation from the end of the training data (published split), fed back "
          "its own output:\n")
    print(f"| model | RMSE of the first {GENERATE} steps, median | worst | steps until error > {DIVERGE}, "
          f"median | worst |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, rows in free.items():
        g = np.array([r["gen_rmse"] for r in rows])
        h = np.array([r["horizon"] for r in rows])
        print(f"| {name} | {np.median(g):.4f} | {g.max():.4f} | {np.median(h):.0f} | {h.min()} |")

    fit = np.median([r["fit_s"] for r in timings])
    pred = np.median([r["predict_s"] for r in timings])
    print(f"\nTimes (median over {len(timings)} fits, float64): fit (1599 steps + ridge solve) "
          f"{fit * 1e3:.1f} ms, predict (400 steps) {pred * 1e3:.2f} ms.")


if __name__ == "__main__":
    main()
