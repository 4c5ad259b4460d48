"""Argument and state-dict checks every layer shares: the dtype, and loading parameters.

Each raises ValueError with one line naming the bad argument or state-dict entry; nothing is
silently broadcast or cast from a non-numeric type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

DTYPES = {"float32": np.float32, "float64": np.float64}


def parse_dtype(dtype: Any, none_means: str = "float32") -> np.dtype:
    """``"float32"``/``"float64"`` (or the numpy dtypes) as a dtype; ``None`` means ``none_means``."""
    try:
        name = np.dtype(none_means if dtype is None else dtype).name
    except TypeError:
        name = repr(dtype)
    if name not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return np.dtype(DTYPES[name])


def check_array(what: str, value: Any, shape: tuple[int, ...], dtype: np.dtype, owner: str = "the layer") -> np.ndarray:
    """``value`` as a C-contiguous array of exactly ``dtype`` and ``shape``, all finite (an argument
    of forward or backward); ``owner`` names what fixes the dtype in the message."""
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except Exception as exc:
            raise ValueError(f"{what} is not an array: {exc}") from None
    if value.dtype != dtype:
        raise ValueError(f"{what} has dtype {value.dtype}, but {owner} is {dtype.name}"
                         f" (convert with .astype(np.{dtype.name}))")
    if value.shape != shape:
        raise ValueError(f"{what} has shape {value.shape}, expected {shape}")
    if not np.isfinite(value).all():
        raise ValueError(f"{what} contains NaN or Inf")
    return np.ascontiguousarray(value)


def check_keys(required: Iterable[str], state: Any, allowed: Iterable[str] | None = None) -> None:
    """``state`` is a mapping holding every ``required`` key and nothing outside ``allowed``
    (default: the required keys)."""
    if not isinstance(state, Mapping):
        raise ValueError(f"state dict must be a mapping of names to arrays, got {type(state).__name__}")
    required = list(required)
    allowed = set(required if allowed is None else allowed)
    missing = [k for k in required if k not in state]
    extra = [k for k in state if k not in allowed]
    if missing:
        raise ValueError(f"state dict is missing key(s): {', '.join(missing)}")
    if extra:
        raise ValueError(f"state dict has unexpected key(s): {', '.join(map(str, extra))}")


def load_entry(name: str, value: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A C-contiguous copy of one state-dict entry in ``dtype``: exactly ``shape``, numeric, finite."""
    try:
        value = np.asarray(value)
    except Exception as exc:  # e.g. a torch tensor that needs .numpy() on another device
        raise ValueError(f"state dict entry {name!r} is not an array: {exc}") from None
    if value.shape != shape:
        raise ValueError(f"state dict entry {name!r} has shape {value.shape}, expected {shape}")
    if value.dtype.kind not in "fiu":
        raise ValueError(f"state dict entry {name!r} has non-numeric dtype {value.dtype}")
    with np.errstate(over="ignore"):  # an overflow becomes Inf and is reported just below
        value = np.array(value, dtype=dtype, copy=True, order="C")
    if not np.isfinite(value).all():
        raise ValueError(f"state dict entry {name!r} contains NaN or Inf")
    return value


def load_params(shapes: Mapping[str, tuple[int, ...]], state: Any, dtype: np.dtype) -> dict[str, np.ndarray]:
    """Validated copies of ``state``'s entries: exactly the keys and shapes of ``shapes``."""
    check_keys(shapes, state)
    return {name: load_entry(name, state[name], shape, dtype) for name, shape in shapes.items()}
