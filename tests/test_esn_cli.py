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
    (["--spectral-radius", "11"], "--spectral-radius must be a number in (0, 10], got 11"),
    (["--input-scaling", "0"], "--input-scaling must be a number in (0, 100]"),
    (["--length", "600", "--test", "600"],
     "--test=600 leaves no training steps: --length=600 has only 599 steps before the last (which is only a "
     "target), fewer than --test: lower --test or raise --length"),
    (["--length", "600", "--test", "599"],
     "--test=599 and --warmup=100 leave no step to fit the readout on: of --length=600's 599 steps before its "
     "last value (a target only), the test takes 599 and the warm-up 100; lower --test or --warmup, or raise "
     "--length"),
    (["--length", "600", "--test", "500", "--warmup", "100"],
     "--test=500 and --warmup=100 leave no step to fit the readout on: of --length=600's 599 steps"),
    (["--length", "300", "--test", "298"],
     "--test=298 and --warmup=100 leave no step to fit the readout on"),
    (["--seed", str(2**63)], f"--seed must be an integer in [0, 2^63-1], got {2**63}"),
    (["--units", "500", "--connectivity", "1e-7"], "--connectivity=1e-07 is too sparse for --units=500"),
    (["--sweep", "units"], "--sweep must be one of spectral_radius, leak_rate"),
])
def test_bad_input_names_the_flag_in_one_line_and_exits_2(capsys, args, message):
    assert main(["esn", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert "spectral_radius must" not in lines[0] and "reservoir_size" not in lines[0]


@pytest.mark.parametrize("typed, meant", [("rho", "spectral_radius"), ("alpha", "leak_rate"), ("reg", "ridge"),
                                           ("sr", "spectral_radius")])
def test_a_sweep_named_by_another_of_its_names_is_hinted(capsys, typed, meant):
    """The table's title names the spectral radius 'rho'; --sweep rho listed the five choices with no hint, where
    the options dialogs ask whether 'rho' meant spectral_radius (ABBREVIATIONS, and a name's initials)."""
    assert main(["esn", "--sweep", typed]) == 2
    assert capsys.readouterr().err == (
        "rnnlab: error: --sweep must be one of spectral_radius, leak_rate, input_scaling, connectivity, ridge, "
        f"got {typed!r} (did you mean {meant!r}?)\n")


def test_refused_combinations_cost_no_fit(monkeypatch, capsys):
    def no_fit(*args):
        raise AssertionError("fitted before refusing the options")

    monkeypatch.setattr(esn_lab, "compute", no_fit)
    for args in (["--force"], ["--sweep", "units"]):
        assert main(["esn", *args]) == 2
    assert capsys.readouterr().out == ""


def test_help_shows_the_engines_own_ranges_and_defaults(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setitem(esn_lab._INT_LIMITS, "units", (1, 777))  # the help reads the engine, not a copy

    def option_line(flag):
        return next(line for line in out.splitlines() if f" {flag} " in line)

    assert main(["esn", "--help"]) == 0
    out = capsys.readouterr().out
    assert "In [1, 777] (default: 100)." in option_line("--units")
    assert "In (0, 10] (default: 1.25)." in option_line("--spectral-radius")
    assert "In (0, 100] (default: 1)." in option_line("--input-scaling")
    assert "In [10, 20000] (default: 2000)." in option_line("--length")
    assert "In [0, 2^63-1] (default: 0)." in option_line("--seed")
    assert "(default: --readout-input)" in option_line("--readout-input")


def test_a_seed_past_32_bits_draws_a_reservoir(capsys):
    assert main(["esn", *SMALL_ARGS, "--seed", str(2**63 - 1), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["options"]["seed"] == 2**63 - 1


def test_the_table_writes_r2_cut_as_the_lab_does(capsys):
    """`rnnlab esn` printed R^2 0.999968 (rounded) where the ESN lab showed 0.999967 (cut) for the
    same fit: one number, two spellings."""
    from rnnlab.labs.esn import format_r2

    assert main(["esn", *SMALL_ARGS, "--json"]) == 0
    r2 = json.loads(capsys.readouterr().out)["one_step"]["r2"]
    assert main(["esn", *SMALL_ARGS]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "one-step R^2" in line)
    assert row.replace("│", " ").split()[-1] == format_r2(r2, 6)


def test_the_fit_says_what_it_fits_and_a_ridge_sweep_lists_its_values_as_typed(capsys, monkeypatch):
    """A large fit (1000 units, 20000 steps) sat 12 s on a silent terminal; and the ridge sweep's
    JSON listed 9.999999999999999e-06 (geomspace's) where the table showed 1e-05."""
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # on a terminal (into a log: bad input stays one line)
    assert main(["esn", *SMALL_ARGS, "--sweep", "ridge", "--json"]) == 0
    captured = capsys.readouterr()
    assert "rnnlab: fitting an echo state network (20 units) on 300 steps of Mackey-Glass" in captured.err
    ridges = [point["ridge"] for point in json.loads(captured.out)["sweep"]["points"]]
    assert ridges == [float(f"1e{k}") for k in range(-12, 1)] and 1e-5 in ridges
