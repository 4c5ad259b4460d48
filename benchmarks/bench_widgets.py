"""Frame times of the lab's widgets inside a running (headless) Textual app.

    python benchmarks/bench_widgets.py [--frames 300]

Per widget, two figures (median over frames, each frame with new random data):

- widget: ``set_data`` / ``set_series`` plus every ``render_line`` call of the widget;
- end-to-end: the same update followed by what textual does for one screen refresh: the
  compositor renders the dirty widget (styles, padding, screen composition) and the update is
  encoded into the escape sequences a terminal would receive. The headless driver drops that
  output, so the benchmark calls the compositor itself (private textual API, as of 8.2).

Target: <= 12 ms per widget frame for the 100 x 64 heatmap.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time

import numpy as np
from textual.app import App, ComposeResult

from rnnlab.tui.widgets import Heatmap, LinePlot
from rnnlab.tui.widgets.heatmap import pair_styles

TIME_STEPS, UNITS = 100, 64
PLOT_SIZE, PLOT_POINTS = (100, 20), 2000
NARROW_SIZE = (17, 8)  # the loss plot beside the eigenvalue plane at 80x24: names and titles compete for room


class BenchApp(App):
    CSS = """
    Heatmap { width: 100; }
    #plot { width: 100; height: 20; }
    #narrow { width: 17; height: 8; }
    """

    def compose(self) -> ComposeResult:
        yield Heatmap(title="h", id="heatmap")
        yield LinePlot(title="loss", threshold=1.0, threshold_label="clip", id="plot")
        # its legend finds no room beside its longest title: the shorter titles and the curves' short names are tried
        yield LinePlot(title="loss 0.0123 (held-out 0.0456)", short_titles=("loss 0.0123", "loss"), id="narrow")


def _median_ms(samples: list[float]) -> float:
    return 1e3 * statistics.median(samples)


def _end_to_end(app: App, widget) -> None:
    """What the screen's update timer does for one dirty widget, plus the terminal encoding."""
    compositor = app.screen._compositor
    compositor.update_widgets({widget})
    update = compositor.render_update(screen_stack=app._background_screens)
    update.render_segments(app.console)


async def run(frames: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    heat_frames = [np.tanh(rng.standard_normal((UNITS, TIME_STEPS))) for _ in range(8)]
    walks = [np.cumsum(rng.standard_normal((2, PLOT_POINTS)), axis=1) for _ in range(8)]
    steps = np.arange(PLOT_POINTS)
    app = BenchApp()
    results: dict[str, float] = {}
    async with app.run_test(size=(120, 60)) as pilot:
        heatmap, plot, narrow = app.query_one(Heatmap), app.query_one("#plot"), app.query_one("#narrow")
        heatmap.set_data(heat_frames[0])  # the layout needs the row count before the timed frames
        heatmap.cursor = TIME_STEPS // 2
        await pilot.pause()
        assert heatmap.size == (TIME_STEPS, 2 + UNITS // 2) and plot.size == PLOT_SIZE, (heatmap.size, plot.size)
        assert narrow.size == NARROW_SIZE, narrow.size

        def heatmap_update(i: int) -> None:
            heatmap.set_data(heat_frames[i % len(heat_frames)])

        def plot_update(i: int) -> None:
            walk = walks[i % len(walks)]
            plot.set_series("train", steps, walk[0])
            plot.set_series("valid", steps, walk[1])

        def narrow_update(i: int) -> None:
            walk = walks[i % len(walks)]
            narrow.set_series("train", steps, walk[0], short_name="tr")
            narrow.set_series("held-out", steps, walk[1], short_name="ho")
            narrow.set_series("pin adding-lstm", steps, walk[0] + walk[1], short_name="pin")

        for label, widget, update in (("heatmap 100x64", heatmap, heatmap_update),
                                      ("lineplot 2x2000 pts at 100x20", plot, plot_update),
                                      ("lineplot 3x2000 pts at 17x8, names squeezed", narrow, narrow_update)):
            height = widget.size.height
            pair_styles.cache_clear()  # the heatmap's style table is built again on the first frame
            gc.collect()  # a collection owed by the previous section would land in this one sample
            start = time.perf_counter()
            update(0)
            for y in range(height):
                widget.render_line(y)
            results[f"{label}: first frame (cold caches)"] = 1e3 * (time.perf_counter() - start)

            widget_times, end_to_end_times = [], []
            for i in range(frames):
                start = time.perf_counter()
                update(i)
                for y in range(height):
                    widget.render_line(y)
                widget_times.append(time.perf_counter() - start)
            for i in range(frames):
                start = time.perf_counter()
                update(i)
                _end_to_end(app, widget)
                end_to_end_times.append(time.perf_counter() - start)
            results[f"{label}: widget frame"] = _median_ms(widget_times)
            results[f"{label}: end-to-end frame"] = _median_ms(end_to_end_times)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="frames timed per figure (median reported)")
    args = parser.parse_args()
    for label, ms in asyncio.run(run(args.frames)).items():
        print(f"{label:<62} {ms:7.2f} ms")


if __name__ == "__main__":
    main()
