"""Colour maps shipped in code (no matplotlib), and the mapping from values to colour levels.

A :class:`Colormap` is a short table of RGB colours ("levels"). Values are binned into level
indices once per update, so a renderer only ever deals with small integers and can cache one
style per level (or per pair of levels).

- ``"diverging"``: blue - light grey - red, for tanh-range values and signed gradients. It has an
  odd number of levels so that 0 gets a neutral level of its own, and 0 stays on that level even
  when ``vmin`` and ``vmax`` are not symmetric (two slopes, as matplotlib's ``TwoSlopeNorm``).
  Its ends are mid-bright so the strongest values stand out on a dark terminal.
- ``"sequential"``: a viridis approximation (dark purple - teal - yellow) for gates in [0, 1] and
  magnitudes.

NaN maps to ``colormap.missing_level``, drawn in a colour that appears nowhere in the map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RGB = tuple[int, int, int]


def _interpolate(anchors: list[RGB], n_levels: int) -> tuple[RGB, ...]:
    """``n_levels`` colours linearly interpolated (in RGB) between evenly spaced anchors."""
    anchor_array = np.asarray(anchors, dtype=np.float64)
    positions = np.linspace(0.0, len(anchors) - 1, n_levels)
    low = np.minimum(np.floor(positions).astype(int), len(anchors) - 2)
    frac = (positions - low)[:, None]
    colours = anchor_array[low] * (1.0 - frac) + anchor_array[low + 1] * frac
    return tuple(tuple(int(c) for c in row) for row in np.rint(colours).astype(int))


def value_levels(values, vmin: float, vmax: float, n_levels: int, centre: float | None = None) -> np.ndarray:
    """Bin ``values`` into level indices ``0 .. n_levels - 1``; NaN becomes ``n_levels``.

    Values at or beyond ``vmin``/``vmax`` (infinities included) land on the end levels. With
    ``centre`` strictly inside (vmin, vmax), each side of it is scaled separately so that
    ``centre`` always falls in the middle level. A degenerate range (``vmax <= vmin``) puts every
    finite value on the middle level rather than failing: a constant signal is not an error.

    Returns an ``int16`` array of the same shape as ``values``.
    """
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if not vmax > vmin:
            fraction = np.full(values.shape, 0.5)
        elif centre is not None and vmin < centre < vmax:
            fraction = np.where(values < centre,
                                0.5 * (values - vmin) / (centre - vmin),
                                0.5 + 0.5 * (values - centre) / (vmax - centre))
        else:
            fraction = (values - vmin) / (vmax - vmin)
        levels = np.clip(np.floor(fraction * n_levels), 0, n_levels - 1)
    levels = np.where(np.isnan(values), n_levels, levels)
    return levels.astype(np.int16)


@dataclass(frozen=True)
class Colormap:
    """A named table of colours.

    Attributes:
        name: Registry name (``"diverging"``, ``"sequential"``).
        colors: RGB tuples from the lowest to the highest level.
        missing: RGB for NaN (the level ``missing_level``).
        centre: Value pinned to the middle level (diverging maps), or None (sequential maps).
    """

    name: str
    colors: tuple[RGB, ...]
    missing: RGB
    centre: float | None = None

    @property
    def n_levels(self) -> int:
        """Number of colour levels (NaN's level not counted)."""
        return len(self.colors)

    @property
    def missing_level(self) -> int:
        """Level index that :meth:`levels` gives NaN."""
        return len(self.colors)

    def levels(self, values, vmin: float, vmax: float) -> np.ndarray:
        """Level indices of ``values`` on the scale ``vmin .. vmax`` (see :func:`value_levels`)."""
        return value_levels(values, vmin, vmax, self.n_levels, self.centre)

    def rgb(self, level: int) -> RGB:
        """Colour of a level; ``missing_level`` gives the NaN colour."""
        return self.missing if level == self.missing_level else self.colors[level]


DIVERGING = Colormap(
    name="diverging",
    colors=_interpolate([(33, 102, 172), (67, 147, 195), (146, 197, 222), (200, 222, 235), (215, 215, 215),
                         (245, 210, 190), (244, 165, 130), (214, 96, 77), (190, 30, 45)], 33),
    missing=(255, 0, 255),
    centre=0.0,
)
SEQUENTIAL = Colormap(
    name="sequential",
    # matplotlib's viridis sampled at 9 evenly spaced points.
    colors=_interpolate([(68, 1, 84), (71, 45, 123), (59, 82, 139), (44, 114, 142), (33, 145, 140),
                         (40, 174, 128), (94, 201, 98), (173, 220, 48), (253, 231, 37)], 32),
    missing=(255, 0, 255),
)
COLORMAPS: dict[str, Colormap] = {cmap.name: cmap for cmap in (DIVERGING, SEQUENTIAL)}


def get_colormap(colormap: str | Colormap) -> Colormap:
    """The :class:`Colormap` itself, or the registered one of that name (ValueError if unknown)."""
    if isinstance(colormap, Colormap):
        return colormap
    try:
        return COLORMAPS[colormap]
    except KeyError:
        raise ValueError(f"unknown colormap {colormap!r}; known: {', '.join(COLORMAPS)}") from None
