"""Reusable Textual widgets of the lab: heatmaps of units x time, their colour bars, line plots."""

from rnnlab.tui.widgets.colormaps import COLORMAPS, DIVERGING, SEQUENTIAL, Colormap, get_colormap, value_levels
from rnnlab.tui.widgets.heatmap import ColorBar, Heatmap, colorbar_strip
from rnnlab.tui.widgets.plot import LinePlot, downsample_minmax

__all__ = [
    "COLORMAPS", "DIVERGING", "SEQUENTIAL", "Colormap", "get_colormap", "value_levels",
    "ColorBar", "Heatmap", "colorbar_strip",
    "LinePlot", "downsample_minmax",
]
