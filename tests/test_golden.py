"""The layers reproduce PyTorch's numbers: outputs, final states and every gradient.

The files in tests/golden were written by scripts/make_golden.py with torch; no torch is needed here.
"""

from __future__ import annotations

import pytest

from conftest import GOLDEN_DIR, load_golden, make_layer, rel_err

GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.npz"))
TOLERANCE = {"float32": 1e-5, "float64": 1e-10}


def test_golden_files_are_present():
    assert len(GOLDEN_FILES) >= 40


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.stem)
def test_matches_pytorch(path):
    meta, data = load_golden(path)
    layer = make_layer(
        meta["mode"], meta["I"], meta["H"], num_layers=meta["num_layers"], bidirectional=meta["bidirectional"],
        dtype=meta["dtype"], nonlinearity=meta["nonlinearity"] or "tanh", bias=meta.get("bias", True),
    )
    layer.load_state_dict({k.removeprefix("param."): v for k, v in data.items() if k.startswith("param.")})
    lstm = meta["mode"] == "LSTM"
    state = (data["h0"], data["c0"]) if lstm else data["h0"]
    y, state_n, trace = layer.forward(data["x"], state, lengths=data.get("lengths"))  # packed cases
    tol = TOLERANCE[meta["dtype"]]
    h_n = state_n[0] if lstm else state_n
    assert rel_err(y, data["y"]) < tol
    assert rel_err(h_n, data["h_n"]) < tol
    if lstm:
        assert rel_err(state_n[1], data["c_n"]) < tol
    dstate = (data["dh_n"], data["dc_n"]) if lstm else data["dh_n"]
    grads = layer.backward(trace, data["dy"], dstate, truncate=meta["truncate"])
    expected = {k.removeprefix("grad."): v for k, v in data.items() if k.startswith("grad.")}
    assert set(grads) == set(expected)
    errors = {name: rel_err(grads[name], expected[name]) for name in expected}
    assert max(errors.values()) < tol, errors
