"""Shared helpers for the test suite."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import rnnlab

GOLDEN_DIR = Path(__file__).parent / "golden"
LAYERS = {"RNN": rnnlab.RNN, "LSTM": rnnlab.LSTM, "GRU": rnnlab.GRU}


def rel_err(actual, expected) -> float:
    """Max absolute difference scaled by the reference's largest magnitude (norm-wise relative error)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-30)
    return float(np.abs(actual - expected).max(initial=0.0)) / scale


def make_layer(mode, input_size, hidden_size, *, num_layers=1, bidirectional=False, dtype="float64",
               nonlinearity="tanh", bias=True, seed=0):
    kwargs = dict(num_layers=num_layers, bidirectional=bidirectional, dtype=dtype, bias=bias, seed=seed)
    if mode == "RNN":
        kwargs["nonlinearity"] = nonlinearity
    return LAYERS[mode](input_size, hidden_size, **kwargs)


def load_golden(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    return meta, arrays
