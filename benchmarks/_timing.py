"""What the side-by-side benchmark scripts share (layout_and_cells.py, lengths.py): interleaved
rounds with medians, and torch timed in a process of its own (its thread pool and numba's, spinning
in one process, made torch's step 45x slower at B=32)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any


def interleaved_medians(contenders: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Seconds per call of each contender, the median of ``repeats`` rounds; in each round every
    contender runs once, in turn, so a drift of the machine hits them alike. Each runs once first,
    untimed (it compiles or loads the kernels)."""
    for function in contenders.values():
        function()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, function in contenders.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def in_own_process(script: str, *args: str) -> Any:
    """The JSON that ``python script args`` prints (the script's torch half), or None where it
    fails: no torch installed."""
    try:
        run = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, check=True)
    except subprocess.CalledProcessError:
        return None
    return json.loads(run.stdout)
