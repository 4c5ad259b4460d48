"""What the lab costs while the user looks: memory per training step, CPU while idle and paused.

    python benchmarks/lab_frugality.py                       # hello, 50000 steps, 20 s each phase
    python benchmarks/lab_frugality.py --preset sine --steps 20000 --seconds 10

- **bytes per step**: ``Lab.train`` on the preset for ``--steps`` updates after 2000 warm-up steps,
  under ``tracemalloc``; the growth divided by the steps (the training history, the evaluations
  and whatever else a step leaves behind).
- **idle / paused CPU**: a ``LabApp`` in textual's headless driver (``run_test``), left alone for
  ``--seconds`` once the lab is up, then with training started and paused; the process's CPU
  time (``time.process_time``, every thread) over that time, in % of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import tracemalloc


def bytes_per_step(preset: str, steps: int) -> float:
    from rnnlab.lab import Lab

    lab = Lab.open(preset)
    lab.train(until_step=2000)  # compiled, optimizer state allocated
    tracemalloc.start()
    lab.train(until_step=2000 + steps)
    grown, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return grown / steps


async def cpu_percent(preset: str, seconds: float) -> tuple[float, float]:
    from rnnlab.tui.app import LabApp

    app = LabApp(preset)
    async with app.run_test(size=(120, 36)) as pilot:
        while app.lab is None:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # the first frames drawn

        async def measure() -> float:
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.sleep(seconds)
            return 100 * (time.process_time() - cpu) / (time.perf_counter() - wall)

        idle = await measure()
        lab, start = app.lab, app.lab._start_training
        lab._start_training = lambda: (start(), lab.pause_training())  # held before its first step
        await pilot.press("t")
        while app.lab.training_status != "paused":
            await asyncio.sleep(0.05)
        paused = await measure()
        app.lab.stop_training()
    return idle, paused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="hello")
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    per_step = bytes_per_step(args.preset, args.steps)
    idle, paused = asyncio.run(cpu_percent(args.preset, args.seconds))
    print(f"{args.preset}: {per_step:.0f} bytes per training step ({args.steps} steps); "
          f"CPU {idle:.1f}% of a core idle, {paused:.1f}% paused ({args.seconds:g} s each)")


if __name__ == "__main__":
    main()
