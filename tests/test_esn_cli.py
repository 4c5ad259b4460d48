"""``rnnlab esn``'s edges: Ctrl-C during a sweep, option combinations it refuses, and errors that
name the flag the user typed (the figures themselves are tested in test_lab_esn.py)."""

from __future__ import annotations

import importlib
import json
import os
import signal

import pytest

from rnnlab.cli import main
from rnnlab.labs import esn as esn_lab

importlib.import_module("rnnlab.cli.esn")  # registers `rnnlab esn` (until rnnlab.cli imports it)

SMALL_ARGS = ["--units", "20", "--length", "300", "--test", "50", "--warmup", "20", "--generate", "60"]


def _interrupt_at_call(monkeypatch, k: int) -> None:
    """Send this process SIGINT (Ctrl-C) during the k-th computation (the first is the lab's own
    fit, then one per sweep value): the point being computed finishes, the sweep stops after it."""
    real, calls = esn_lab.compute, []

    def interrupting(*args):
        calls.append(None)
        if len(calls) == k:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args)

    monkeypatch.setattr(esn_lab, "compute", interrupting)


@pytest.mark.parametrize("json_output", [True, False])
def test_ctrl_c_during_a_sweep_prints_the_finished_points_and_exits_130(monkeypatch, capsys, json_output):
    _interrupt_at_call(monkeypatch, 3)  # during the second sweep value
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN where the tests run in the background (CI)
    args = ["esn", *SMALL_ARGS, "--sweep", "spectral-radius"] + (["--json"] if json_output else [])
    assert main(args) == 130
    captured = capsys.readouterr()
    if json_output:
        sweep = json.loads(captured.out)["sweep"]
        assert sweep["status"] == "stopped" and [p["spectral_radius"] for p in sweep["points"]] == [0.1, 0.2]
        assert all(p["rmse"] is not None for p in sweep["points"])
    else:
        assert "sweep of spectral_radius (stopped)" in captured.out and "one-step RMSE" in captured.out
    assert captured.err.strip().splitlines()[-1] == "rnnlab: sweep of spectral_radius interrupted after 2 of 20 values"
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back


def test_an_interrupted_sweep_still_exports_what_it_has(monkeypatch, capsys, tmp_path):
    import numpy as np

    _interrupt_at_call(monkeypatch, 2)
    out = tmp_path / "esn.npz"
    assert main(["esn", *SMALL_ARGS, "--sweep", "leak_rate", "--export", str(out)]) == 130
    with np.load(out, allow_pickle=False) as arrays:
        assert np.isfinite(arrays["sweep.rmse"][:1]).all() and np.isnan(arrays["sweep.rmse"][1:]).all()


@pytest.mark.parametrize("args, message", [
    (["--force"], "--force needs --export"),
    (["--spectral-radius", "11"], "--spectral-radius must be a number in (0, 10], got 11.0"),
    (["--input-scaling", "0"], "--input-scaling must be a number in (0, 100]"),
    (["--length", "300", "--test", "400"],
     "--test=400 leaves 0 training steps of --length=300 (its 299 steps before the last, less 400), "
     "not more than --warmup=100: lower --test or --warmup, or raise --length"),
    (["--units", "500", "--connectivity", "1e-7"], "--connectivity=1e-07 is too sparse for --units=500"),
    (["--sweep", "units"], "--sweep takes one of spectral_radius, leak_rate"),
])
def test_bad_input_names_the_flag_in_one_line_and_exits_2(capsys, args, message):
    assert main(["esn", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert "spectral_radius must" not in lines[0] and "reservoir_size" not in lines[0]


def test_refused_combinations_cost_no_fit(monkeypatch, capsys):
    def no_fit(*args):
        raise AssertionError("fitted before refusing the options")

    monkeypatch.setattr(esn_lab, "compute", no_fit)
    for args in (["--force"], ["--sweep", "units"]):
        assert main(["esn", *args]) == 2
    assert capsys.readouterr().out == ""
