"""Training throughput with the lab open, against headless training (issue: ">= 80%").

    python benchmarks/tui_throughput.py                                   # adding-lstm:200, hello:10000
    python benchmarks/tui_throughput.py --preset adding-lstm:300 --rounds 5 --no-cli
    python benchmarks/tui_throughput.py --json results.json

Each preset is trained to the same number of steps (a spec file written with ``train.steps = N``)
in three ways, interleaved round by round so that a drift of the machine hits all of them alike:

- **headless**: ``Lab.open(spec).train()``, nothing else running;
- **lab open**: a ``LabApp`` on the same spec in ``app.run_test(size=(160, 50))`` (textual's
  headless driver), ``t`` pressed once the lab is ready, polled until
  ``lab.training_status == "completed"``. The app trains in its worker thread while its timer
  (``REFRESH_HZ``) reads the history and every ``HEATMAP_EVERY``-th tick reruns the bench
  sequence and redraws every panel, as in a terminal. The headless driver skips only the last
  step of a frame, encoding the screen update into escape sequences and writing them; with
  ``--encode`` (default) each frame is encoded anyway and the text thrown away, so the UI
  thread does a terminal's work;
- **rnnlab train** (``--cli``, default): the console script in a subprocess (``--json``), which
  also writes the run directory; it reports only in-step time (``steps_per_second``).

Two rates per run: *wall* = N / wall-clock from the key press (or the call) until training
completed, evaluations, the Lab's lock and the warm-up pass included; *in-step* = N /
``history[-1].time``, the seconds spent inside ``Trainer.train_step`` (what ``rnnlab train``
reports). The table shows the median over rounds and the ratios lab-open / headless.

Per-frame cost (lab open, while training): the timer's callback (``LabApp._tick``; a light tick
updates the plots and status, every ``HEATMAP_EVERY``-th tick also reruns the bench sequence
and refills the heatmaps), how long the UI thread waited for ``Lab.lock`` (the trainer holds it
for each step), and the screen's refresh (``Screen._compositor_refresh``: render the dirty
widgets, compose, encode), each as median and 90th percentile; then the share of the wall time
the UI thread spent working (competing with the trainer for the GIL) and blocked on the lock.

Every run is a fresh interpreter (``--child``, internal) that first trains a 3-step copy of the
spec untimed, so the kernels are loaded from numba's disk cache and no run inherits another's
garbage or threads; one untimed run per preset before the rounds fills a cold cache. Run it on an
idle machine: on 2 cores another busy process changes the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import textual
from textual.app import App
from textual.screen import Screen

from rnnlab.lab import Lab
from rnnlab.spec import load_spec
from rnnlab.tui.app import HEATMAP_EVERY, REFRESH_HZ, LabApp

DEFAULT_PRESETS = ["adding-lstm:200", "hello:10000"]
SIZE = (160, 50)
FINISHED = ("completed", "stopped", "diverged")


# ---------------------------------------------------------------------------------------------
# the arms
# ---------------------------------------------------------------------------------------------

def write_spec(target: str | Path, steps: int, folder: Path) -> Path:
    """A preset (or spec file) with ``train.steps = steps``, as a spec file in ``folder``."""
    spec = load_spec(target).with_overrides({"train.steps": steps})
    path = folder / f"{Path(target).stem}-{steps}.toml"
    path.write_text(spec.to_toml())
    return path


def run_headless(spec_path: Path, steps: int) -> dict:
    lab = Lab.open(spec_path)
    started = time.perf_counter()
    status = lab.train()
    wall = time.perf_counter() - started
    if status != "completed" or lab.trainer.step != steps:
        raise RuntimeError(f"headless training ended {status} at step {lab.trainer.step}")
    return {"wall_rate": steps / wall, "step_rate": steps / lab.history[-1].time, "wall_s": wall}


class FrameClock:
    """Times ``Screen._compositor_refresh`` (class-wide) while ``active``; with ``encode``, also
    encodes each update for a terminal as the real driver would (the headless driver skips it)."""

    def __init__(self, encode: bool) -> None:
        self.encode = encode
        self.active = False
        self.refresh: list[float] = []

    def __enter__(self) -> "FrameClock":
        self._refresh, self._display = Screen._compositor_refresh, App._display
        clock, refresh, display = self, Screen._compositor_refresh, App._display

        def timed_refresh(screen: Screen) -> None:
            started = time.perf_counter()
            refresh(screen)
            if clock.active:
                clock.refresh.append(time.perf_counter() - started)

        def encoding_display(app: App, screen: Screen, renderable) -> None:
            if clock.encode and app.is_headless and renderable is not None and hasattr(renderable, "render_segments"):
                renderable.render_segments(app.console)  # the terminal's escape sequences, discarded
            display(app, screen, renderable)

        Screen._compositor_refresh = timed_refresh
        App._display = encoding_display
        return self

    def __exit__(self, *exc) -> None:
        Screen._compositor_refresh, App._display = self._refresh, self._display


class LockClock:
    """Stands in for ``Lab.lock`` and times how long the UI thread waits to acquire it (the
    trainer holds it for each step; the screen takes it to rerun the bench sequence)."""

    def __init__(self, lock, frames: FrameClock) -> None:
        self.lock, self.frames, self.ui = lock, frames, threading.main_thread()
        self.waits: list[float] = []

    def __enter__(self) -> "LockClock":
        if threading.current_thread() is self.ui:
            started = time.perf_counter()
            self.lock.acquire()
            if self.frames.active:
                self.waits.append(time.perf_counter() - started)
        else:
            self.lock.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.lock.release()


async def _run_app(spec_path: Path, steps: int, encode: bool, timeout_s: float) -> dict:
    app = LabApp(str(spec_path))
    ticks: list[tuple[float, bool]] = []
    tick = app._tick

    def timed_tick() -> None:  # bound before on_mount, which hands self._tick to set_interval
        training = app.lab is not None and app.lab.training
        started = time.perf_counter()
        tick()
        if training:
            ticks.append((time.perf_counter() - started, app._ticks % HEATMAP_EVERY == 0))

    app._tick = timed_tick
    with FrameClock(encode) as clock:
        async with app.run_test(size=SIZE) as pilot:
            deadline = time.monotonic() + timeout_s
            while app.lab is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("the lab did not open")
                await asyncio.sleep(0.05)
            await pilot.pause(0.3)  # the first full frame
            lock = app.lab.lock = LockClock(app.lab.lock, clock)
            clock.active = True
            started = time.perf_counter()
            await pilot.press("t")
            lab = app.lab
            while lab.training_status not in FINISHED:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"training did not finish in {timeout_s:.0f} s")
                await asyncio.sleep(0.01)
            wall = time.perf_counter() - started
            clock.active = False
            if lab.training_status != "completed" or lab.trainer.step != steps:
                raise RuntimeError(f"training in the lab ended {lab.training_status} at step {lab.trainer.step}")
            step_time = lab.history[-1].time
    light = [d for d, heavy in ticks if not heavy]
    heavy = [d for d, h in ticks if h]
    return {"wall_rate": steps / wall, "step_rate": steps / step_time, "wall_s": wall,
            "ticks": len(ticks), "light_tick": light, "heavy_tick": heavy, "refresh": clock.refresh,
            "lock_wait": lock.waits, "ui_lock_share": sum(lock.waits) / wall,
            "ui_busy": (sum(d for d, _ in ticks) + sum(clock.refresh) - sum(lock.waits)) / wall}


def run_app(spec_path: Path, steps: int, encode: bool, timeout_s: float = 600) -> dict:
    return asyncio.run(_run_app(spec_path, steps, encode, timeout_s))


def rnnlab_command() -> list[str]:
    script = shutil.which("rnnlab")
    return [script] if script else [sys.executable, "-m", "rnnlab.cli"]


def run_cli(spec_path: Path, steps: int, out: Path) -> dict:
    result = subprocess.run([*rnnlab_command(), "train", str(spec_path), "--json", "--out", str(out)],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1200)
    if result.returncode != 0:
        raise RuntimeError(f"rnnlab train failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    summary = json.loads(result.stdout)
    if summary["status"] != "completed" or summary["step"] != steps:
        raise RuntimeError(f"rnnlab train ended {summary['status']} at step {summary['step']}")
    return {"step_rate": summary["steps_per_second"], "seconds": summary["seconds"]}


# ---------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------

def _ms(samples: list[float], q: float = 0.5) -> str:
    if not samples:
        return "-"
    ordered = sorted(samples)
    return f"{1e3 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]:.1f}"


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def run_child(arm: str, spec_path: Path, steps: int, args) -> dict:
    """One timed run in a fresh interpreter, so that no run inherits another's garbage, threads or
    caches; the kernels are warmed up (loaded from numba's disk cache) before the clock starts."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", arm, str(spec_path), str(steps)]
    if not args.encode:
        command.append("--no-encode")
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1200)
    if result.returncode != 0:
        raise RuntimeError(f"the {arm} run failed ({result.returncode}):\n{result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def child(arm: str, spec_path: Path, steps: int, encode: bool) -> dict:
    warm = write_spec(spec_path, 3, spec_path.parent)
    Lab.open(warm).train()  # kernels loaded, first-call costs paid, in both arms alike
    gc.collect()
    return run_headless(spec_path, steps) if arm == "headless" else run_app(spec_path, steps, encode)


def measure(preset: str, steps: int, args, folder: Path) -> dict:
    spec_path = write_spec(preset, steps, folder)
    print(f"[{preset}] warm-up (a cold numba cache compiles here)", file=sys.stderr, flush=True)
    run_child("headless", write_spec(preset, min(steps, 10), folder), min(steps, 10), args)
    runs: dict[str, list[dict]] = {"headless": [], "app": [], "cli": []}
    for k in range(args.rounds):
        runs["headless"].append(run_child("headless", spec_path, steps, args))
        runs["app"].append(run_child("app", spec_path, steps, args))
        if args.cli:
            runs["cli"].append(run_cli(spec_path, steps, folder / f"run-{preset}-{k}"))
        h, a = runs["headless"][-1], runs["app"][-1]
        print(f"[{preset}] round {k + 1}/{args.rounds}: headless {h['wall_rate']:.1f} steps/s, "
              f"lab open {a['wall_rate']:.1f} steps/s (wall)"
              + (f", rnnlab train {runs['cli'][-1]['step_rate']:.1f} (in-step)" if args.cli else ""),
              file=sys.stderr, flush=True)
    return {"preset": preset, "steps": steps, "runs": runs}


def report(results: list[dict], args, command: str, load: tuple[tuple, tuple]) -> str:
    lines = [f"Command: `{command}`  ",
             f"Machine: {os.cpu_count()} CPUs, load average {load[0][0]:.2f} before / {load[1][0]:.2f} after; "
             f"textual {textual.__version__}, Python {sys.version.split()[0]}; lab {SIZE[0]}x{SIZE[1]}, "
             f"timer {REFRESH_HZ} Hz (heatmaps every {HEATMAP_EVERY} ticks), frame encoding "
             f"{'on' if args.encode else 'off'}; median of {args.rounds} interleaved rounds.", ""]
    head = "| preset | steps | headless steps/s (wall) | lab open steps/s (wall) | ratio (wall) " \
           "| headless (in-step) | lab open (in-step) | ratio (in-step) |"
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|"
    if args.cli:
        head += " rnnlab train (in-step) | lab open / rnnlab train (in-step) |"
        rule += "---:|---:|"
    lines += [head, rule]
    for r in results:
        h, a, c = r["runs"]["headless"], r["runs"]["app"], r["runs"]["cli"]
        hw, aw, hs, as_ = (_median(h, "wall_rate"), _median(a, "wall_rate"),
                           _median(h, "step_rate"), _median(a, "step_rate"))
        row = (f"| {r['preset']} | {r['steps']} | {hw:.1f} | {aw:.1f} | **{aw / hw:.2f}** "
               f"| {hs:.1f} | {as_:.1f} | {as_ / hs:.2f} |")
        if args.cli:
            cs = _median(c, "step_rate")
            row += f" {cs:.1f} | {as_ / cs:.2f} |"
        lines.append(row)
    lines += ["", "Per-frame cost with the lab open, while training (ms, median / 90th percentile over all rounds; "
              "UI time = ticks + refreshes; lock waits: the UI thread blocked on `Lab.lock`, which the trainer "
              "holds for each step):", "",
              f"| preset | ticks/s | light tick | heatmap tick (every {HEATMAP_EVERY}th) "
              "| lock wait (per acquisition, in heatmap ticks) | screen refresh (render + encode) | refreshes/s "
              "| UI thread working | UI thread waiting on the lock |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        a = r["runs"]["app"]
        wall = sum(x["wall_s"] for x in a)
        light, heavy, refresh, waits = ([d for x in a for d in x[key]]
                                        for key in ("light_tick", "heavy_tick", "refresh", "lock_wait"))
        lines.append(f"| {r['preset']} | {sum(x['ticks'] for x in a) / wall:.1f} | {_ms(light)} / {_ms(light, 0.9)} "
                     f"| {_ms(heavy)} / {_ms(heavy, 0.9)} | {_ms(waits)} / {_ms(waits, 0.9)} "
                     f"| {_ms(refresh)} / {_ms(refresh, 0.9)} | {len(refresh) / wall:.1f} "
                     f"| {100 * statistics.median(x['ui_busy'] for x in a):.0f}% "
                     f"| {100 * statistics.median(x['ui_lock_share'] for x in a):.0f}% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:  # internal: one timed run, its figures as one JSON line
        arm, spec_path, steps = argv[1], Path(argv[2]), int(argv[3])
        print(json.dumps(child(arm, spec_path, steps, encode="--no-encode" not in argv)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", action="append", metavar="NAME[:STEPS]",
                        help=f"preset and step count, repeatable (default: {' '.join(DEFAULT_PRESETS)})")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per preset (default 3)")
    parser.add_argument("--cli", action=argparse.BooleanOptionalAction, default=True,
                        help="also time `rnnlab train` in a subprocess (default on)")
    parser.add_argument("--encode", action=argparse.BooleanOptionalAction, default=True,
                        help="encode each frame for a terminal as the real driver does (default on)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every run's figures here")
    args = parser.parse_args(argv)
    presets = []
    for item in args.preset or DEFAULT_PRESETS:
        name, _, steps = item.partition(":")
        presets.append((name, int(steps) if steps else load_spec(name).train.steps))
    command = shlex.join(["python", "benchmarks/tui_throughput.py", *argv])
    load_before = os.getloadavg()
    if load_before[0] > 0.5:
        print(f"warning: load average {load_before[0]:.2f}: other processes will skew the ratio",
              file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="rnnlab-tui-bench-") as folder:
        results = [measure(name, steps, args, Path(folder)) for name, steps in presets]
    table = report(results, args, command, (load_before, os.getloadavg()))
    print(table)
    if args.json:
        args.json.write_text(json.dumps({"command": command, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
