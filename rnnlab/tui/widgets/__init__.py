"""Reusable Textual widgets of the lab: heatmaps of units x time, their colour bars, line plots, the complex plane."""

from rnnlab.tui.widgets.colormaps import COLORMAPS, DIVERGING, SEQUENTIAL, Colormap, get_colormap, value_levels
from rnnlab.tui.widgets.complexplane import ComplexPlane, plane_extent
from rnnlab.tui.widgets.heatmap import ColorBar, Heatmap, colorbar_strip
from rnnlab.tui.widgets.plot import LinePlot, downsample_minmax

__all__ = [
    "COLORMAPS", "DIVERGING", "SEQUENTIAL", "Colormap", "get_colormap", "value_levels",
    "ColorBar", "Heatmap", "colorbar_strip",
    "ComplexPlane", "plane_extent",
    "LinePlot", "downsample_minmax",
]
