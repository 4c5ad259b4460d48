"""The echo state network lab: the engine (preset, actions, validation, sweep, export), its screen
driven by Textual's pilot (keys in, engine state and rendered text out) and ``rnnlab esn``."""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import math
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import footer_keys, screen_text, wait_for
from rnnlab import fsio
from rnnlab.cli import main
from rnnlab.data.series import mackey_glass
from rnnlab.errors import TargetExistsError, UserError
from rnnlab.labs import esn as esn_lab
from rnnlab.labs import lab_class
from rnnlab.labs.esn import DEFAULTS, EsnLab, parse_option_text
from rnnlab.labs._options import check_int
from rnnlab.layers.esn import EchoStateNetwork
from rnnlab.tui.labs import LabScreenApp, screen_class
from rnnlab.tui.labs.esn import VALUE_WIDTH, EsnScreen, _fit, _states_title
from rnnlab.tui.widgets import ComplexPlane, Heatmap, LinePlot
from rich.text import Text
from textual.widgets import Static

importlib.import_module("rnnlab.cli.esn")  # registers `rnnlab esn` (until rnnlab.cli imports it)
ROOT = Path(__file__).resolve().parent.parent
#: A small lab: every computation takes a few ms.
USE_BEST = "B use best"  # the one footer key without room at 80 columns
SMALL = dict(units=20, length=300, test=50, warmup=20, generate=60)
PUBLISHED_RMSE = 0.0020282  # reservoirpy's README, one reservoir


def small(**changes) -> EsnLab:
    return EsnLab.open({**SMALL, **changes})


@pytest.fixture(scope="module")
def preset() -> EsnLab:
    """The preset lab (read only: tests that change a lab make their own)."""
    return EsnLab.open()


# ---------------------------------------------------------------------------------------------
# the engine
# ---------------------------------------------------------------------------------------------

def test_registries_name_the_engine_and_the_screen():
    assert lab_class("esn") is EsnLab
    assert screen_class("esn") is EsnScreen


def test_the_engine_imports_no_ui():
    code = ("import sys, rnnlab.labs.esn; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'typer')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_preset_is_reservoirpys_published_setup_and_beats_its_rmse(preset):
    o = preset.options
    assert (o.units, o.spectral_radius, o.leak_rate, o.ridge, o.length, o.test, o.warmup, o.tau) == \
        (100, 1.25, 0.3, 1e-5, 2000, 400, 100, 17)
    assert preset.n_train == 1599
    # the same numbers as the layer used directly, as benchmarks/esn_mackey_glass.py does
    x = mackey_glass(2000, tau=17)[:, None, None]
    esn = EchoStateNetwork(1, 100, readout_input=True, seed=0, spectral_radius=1.25, leak_rate=0.3, ridge=1e-5)
    final = esn.fit(x[:1599], x[1:1600], warmup=100)
    y_hat = esn.predict(x[1599:-1], state=final)
    rmse = float(np.sqrt(np.mean((y_hat - x[1600:]) ** 2)))
    assert preset.result.onestep_scores.rmse == pytest.approx(rmse, rel=1e-9)
    assert preset.result.onestep_scores.rmse < PUBLISHED_RMSE
    assert preset.result.onestep_scores.r2 > 0.9999
    # the free run goes on from every known value (s[1599], the last training target, too): its first
    # forecast is of s[1600], the test's first target
    y_gen, _ = esn.generate(400, x[:1600])
    over = np.flatnonzero(np.abs(y_gen[:, 0, 0] - x[1600:2000, 0, 0]) > 0.1)
    assert preset.result.generation.horizon == over[0] > 100  # it tracks the chaotic series for a while
    # rho 1.25 > 1, but the leaky linearisation's eigenvalues (1 - a) + a lambda reach only ~1.07
    assert np.abs(preset.result.eigenvalues).max() == pytest.approx(1.25)
    assert np.abs(preset.result.effective_eigenvalues).max() < 1.1


def test_states_forecasts_and_free_run_line_up():
    lab = small()
    r, n = lab.result, lab.n_train
    s = r.series
    assert r.states.shape == (len(s) - 1, 20) and r.onestep.shape == (len(s) - 1,)
    esn = r.esn
    # states[t] is x_t after the true input s[t]; onestep[t] is its readout, the forecast of s[t+1]
    states, _ = esn.run(s[:, None, None][:-1])
    np.testing.assert_allclose(r.states, states[:, 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.onestep, esn.predict(s[:-1, None, None])[:, 0, 0], rtol=0, atol=1e-12)
    # the free run starts after the true s[n] (the last training target), as the one-step test does:
    # generated[k] forecasts s[n + 1 + k], and its first forecast is the test's first
    y_gen, trace = esn.generate(60, s[:n + 1, None, None])
    np.testing.assert_allclose(r.generated, y_gen[:, 0, 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.generated_states[0], r.states[n], rtol=0, atol=1e-12)
    assert r.generated[0] == pytest.approx(r.onestep[n], abs=1e-12)
    np.testing.assert_allclose(r.generated_states, trace.get("h")[:, 0], rtol=0, atol=1e-12)


def test_the_two_modes_share_one_time_axis():
    lab = small()
    n, G = lab.n_train, lab.options.generate
    one = lab.view("one-step")
    free = lab.view("generative")
    assert one.columns == 299 and free.columns == n + G
    np.testing.assert_array_equal(free.states[:n + 1], one.states[:n + 1])  # x_n after the true s[n] in both
    np.testing.assert_array_equal(free.inputs[:n + 1], one.inputs[:n + 1])
    np.testing.assert_array_equal(free.inputs[n + 1:], lab.result.generated[:-1])  # fed back
    np.testing.assert_array_equal(free.forecasts[n:], lab.result.generated)
    assert free.forecasts[n] == pytest.approx(one.forecasts[n], abs=1e-12)  # the same first forecast
    assert np.isnan(free.targets[len(lab.result.series) - 1:]).all()  # past the series' end
    assert free.targets[n] == one.targets[n] == lab.result.series[n + 1]


def test_horizon_is_the_first_step_over_the_threshold():
    lab = small()
    g, n = lab.result.generation, lab.n_train
    errors = np.abs(lab.result.generated[:g.compared] - lab.result.series[n + 1:n + 1 + g.compared])
    assert g.exceeded and g.horizon == np.flatnonzero(errors > 0.1)[0]
    assert (errors[:g.horizon] <= 0.1).all()
    lab.configure(threshold=1e5, generate=200)
    g = lab.result.generation
    assert g.compared == len(lab.result.series) - 1 - n == 50  # the series covers only the test's 50 steps
    assert not g.exceeded and g.horizon == g.compared and len(lab.result.generated) == 200


def test_nudges_step_within_range_and_keep_the_draw():
    lab = small()
    lam = lab.result.eigenvalues
    lab.nudge("spectral_radius", +1)
    assert lab.options.spectral_radius == 1.35
    np.testing.assert_allclose(lab.result.eigenvalues, lam * 1.35 / 1.25, atol=1e-9)  # same seed: rescaled
    for _ in range(20):
        lab.nudge("leak_rate", +1, apply=False)
    assert lab.requested.leak_rate == 1.0 and lab.options.leak_rate == 0.3  # requested only
    lab.apply()
    assert lab.options.leak_rate == 1.0
    for _ in range(30):
        lab.nudge("leak_rate", -1)
    assert lab.options.leak_rate == 0.05
    with pytest.raises(UserError, match="only spectral_radius and leak_rate"):
        lab.nudge("units", 1)


def test_only_the_latest_request_is_applied():
    lab = small()
    lab.request(spectral_radius=1.5)
    lab.request(leak_rate=0.5)
    assert lab.pending and lab.options.spectral_radius == 1.25
    assert lab.apply(should_stop=lambda: True) is False and lab.pending  # superseded: nothing changes
    assert lab.apply() is True
    assert (lab.options.spectral_radius, lab.options.leak_rate) == (1.5, 0.5)
    assert lab.apply() is False and not lab.pending


def test_every_computation_holds_the_lock(monkeypatch):
    lab = small()
    real = esn_lab.compute
    held = []

    def checked(options, *spell):
        held.append(lab.lock.locked_by_me())
        return real(options, *spell)

    monkeypatch.setattr(esn_lab, "compute", checked)
    lab.configure(seed=3)
    lab.fit()
    lab.sweep("leak_rate", [0.2, 0.4])
    assert held == [True] * 4


@pytest.mark.parametrize("changes, message", [
    ({"units": 0}, "units must be an integer in [1, 1000], got 0"),
    ({"units": 2.5}, "units must be an integer"),
    ({"spectral_radius": -1}, "spectral_radius must be a number in (0, 10]"),
    ({"spectral_radius": float("nan")}, "spectral_radius must be a number"),
    ({"leak_rate": 1.5}, "leak_rate must be a number in (0, 1]"),
    ({"ridge": -1e-3}, "ridge must be a number in [0, 1e+06]"),
    ({"readout_input": "maybe"}, "readout_input must be true or false (yes/no, on/off), got 'maybe'"),
    ({"readout_input": 1}, "readout_input must be true or false (yes/no, on/off), got 1"),
    ({"seed": -1}, "seed must be an integer"),
    ({"generate": True}, "generate must be an integer"),
    ({"test": 280}, "test=280 and warmup=20 leave no step to fit the readout on: of length=300's 299 steps "
                    "before its last value (a target only), the test takes 280 and the warm-up 20"),
    ({"test": 400}, "test=400 leaves no training steps: length=300 has only 299 steps before the last (which is "
                    "only a target), fewer than test"),
    ({"bogus": 1}, "unknown option 'bogus' (14 known; e.g. units, spectral_radius, leak_rate)"),
    ({"unit": 1}, "unknown option 'unit' (14 known; did you mean 'units'?)"),
    # an abbreviation, a paper's name: no guess ("e.g. units, spectral_radius, leak_rate")
    ({"sr": 1}, "unknown option 'sr' (14 known; did you mean 'spectral_radius'?)"),
    ({"rho": 1}, "unknown option 'rho' (14 known; did you mean 'spectral_radius'?)"),
    ({"alpha": 1}, "unknown option 'alpha' (14 known; did you mean 'leak_rate'?)"),
])
def test_bad_options_are_one_line_errors_naming_them(changes, message):
    lab = small()
    before = lab.result
    with pytest.raises(UserError) as info:
        lab.configure(changes)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert lab.result is before and not lab.pending
    with pytest.raises(UserError, match=message.split()[0]):
        EsnLab.open({**SMALL, **changes})


def test_a_reservoir_the_layer_refuses_is_a_user_error_and_changes_nothing():
    lab = small()
    before = lab.result
    with pytest.raises(UserError, match="too sparse"):
        lab.configure(units=300, connectivity=1e-5, seed=1)  # every draw of W is nilpotent
    assert lab.result is before and not lab.pending


def test_new_seed_draws_another_reservoir_reproducibly():
    lab = small()
    first = lab.result.eigenvalues
    assert lab.new_seed() == 1
    assert not np.allclose(lab.result.esn.state_dict()["weight_hh"], small().result.esn.state_dict()["weight_hh"])
    assert lab.new_seed(0) == 0
    np.testing.assert_array_equal(lab.result.eigenvalues, first)


def test_cursor_moves_clamps_and_follows_the_mode():
    lab = small()
    n = lab.n_train
    assert lab.cursor == n and lab.cursor_values()["part"] == "test"
    warmup = lab.result.options.warmup
    assert lab.move_to(-5) == 0 and lab.cursor_values()["part"] == "warm-up"  # run, left out of the fit
    assert lab.move_to(warmup - 1) == warmup - 1 and lab.cursor_values()["part"] == "warm-up"
    assert lab.move_to(warmup) == warmup and lab.cursor_values()["part"] == "train"
    assert lab.move_to(10**6) == lab.columns - 1 == 298
    assert lab.move_cursor(-10) == 288
    assert lab.jump_start() == 0 and lab.jump_end() == 298 and lab.jump_boundary() == n
    lab.toggle_mode()
    assert lab.mode == "generative" and lab.cursor == n and lab.cursor_values()["part"] == "free run"
    lab.configure(generate=10)
    assert lab.columns == n + 10 and lab.jump_end() == n + 9  # one column per forecast, from x_n
    v = lab.cursor_values()
    assert v["input"] == lab.result.generated[8] and np.isfinite(v["error"])  # the ninth fed back
    lab.toggle_mode()
    assert lab.mode == "one-step"
    with pytest.raises(UserError, match="^mode must be one-step or generative, got 'teacher'$"):
        lab.set_mode("teacher")


def test_a_refit_to_a_shorter_series_keeps_the_cursor_on_its_step_in_both_modes():
    lab = small()
    lab.jump_end()  # t 298 of the 300-step series
    lab.configure(length=200, test=30, generate=300)
    assert lab.cursor == 198
    lab.toggle_mode()  # the free run is wider than the short series: the cursor stays on t 198
    assert lab.columns > 298 and lab.cursor == 198
    lab.toggle_mode()
    assert lab.cursor == 198
    lab.jump_end()
    lab.fit()  # fit() takes its result the same way
    assert lab.cursor == 198


def test_sweep_refits_per_value_leaves_the_model_and_can_stop():
    lab = small()
    before = lab.result
    result = lab.sweep("spectral_radius", [0.5, 1.0, 1.5])
    assert lab.result is before and lab.sweep_result is result
    assert result.status == "completed" and result.done == 3 and lab.sweep_is_current()
    other = small(spectral_radius=1.0)
    assert result.rmse[1] == other.result.onestep_scores.rmse
    assert result.horizon[1] == other.result.generation.horizon
    assert result.best() == result.values[np.argmin(result.rmse)]
    lab.configure(spectral_radius=0.5)
    assert lab.sweep_is_current()  # the swept option may differ
    lab.configure(seed=4)
    assert not lab.sweep_is_current()

    calls = []
    stopped = lab.sweep("leak_rate", should_stop=lambda: len(calls) >= 1, on_point=calls.append)
    assert stopped.status == "stopped" and stopped.done == 1 and np.isnan(stopped.rmse[1:]).all()
    with pytest.raises(UserError, match="^sweep must be one of spectral_radius, .*, got 'units'$"):
        lab.sweep("units")
    with pytest.raises(UserError, match="leak_rate must be a number in"):
        lab.sweep("leak_rate", [0.5, 2.0])


def test_a_sweep_point_without_a_reservoir_is_nan_and_the_sweep_goes_on():
    lab = small(units=300, seed=1)
    result = lab.sweep("connectivity", [1e-5, 0.1])  # 1e-5: every draw of W is nilpotent
    assert result.status == "completed" and result.done == 2
    assert np.isnan(result.rmse[0]) and np.isfinite(result.rmse[1]) and result.best() == 0.1
    assert result.rows()[0]["rmse"] is None and result.rows()[0]["horizon"] is None


def test_the_sweeps_best_value_refits_the_model_with_the_scores_of_its_row():
    """After a sweep the panel said "best 0.9" and the model stayed at its value: use_sweep_best sets
    it, and the scores are those of the sweep's best row (the same reservoir, refit)."""
    lab = small()
    with pytest.raises(UserError, match="^no sweep yet: sweep an option first$"):
        lab.use_sweep_best()
    sweep = lab.sweep("spectral_radius", [0.5, 0.9, 1.5])
    best = int(np.nanargmin(sweep.rmse))
    assert sweep.values[best] != lab.options.spectral_radius  # (else nothing would change)
    lab.use_sweep_best()
    assert lab.options.spectral_radius == sweep.values[best] and not lab.pending
    assert lab.result.onestep_scores.rmse == sweep.rmse[best] and lab.result.onestep_scores.r2 == sweep.r2[best]
    assert lab.result.generation.horizon == sweep.horizon[best]
    assert lab.sweep_is_current() and lab.sweep_result is sweep  # the sweep stays, and still describes the model

    lab.configure(seed=4, units=30, apply=False)  # another reservoir requested: the best was of others
    before = (lab.result, lab.requested)
    with pytest.raises(UserError, match=r"^the sweep of spectral_radius was made with units=20 \(now 30\), "
                                        r"seed=0 \(now 4\): its best value was for other reservoirs; sweep again$"):
        lab.use_sweep_best()
    assert (lab.result, lab.requested) == before  # nothing changed


def test_the_sweeps_best_value_is_refused_while_the_sweep_runs_or_where_none_was_scored():
    lab = small(units=300, seed=1)
    refusals = []

    def use_best(sweep):
        with pytest.raises(UserError) as refusal:
            lab.use_sweep_best()
        refusals.append(str(refusal.value))

    lab.sweep("connectivity", [1e-5, 0.1], on_point=use_best)  # 1e-5: no reservoir, no score
    assert refusals == [f"the sweep of connectivity is still running ({k}/2): its best value may change"
                        for k in (1, 2)]
    assert lab.options.connectivity == 0.1 and not lab.pending
    lab.sweep("connectivity", [1e-5])
    with pytest.raises(UserError, match="^the sweep of connectivity scored no value: it has no best one$"):
        lab.use_sweep_best()
    lab.sweep("connectivity", [0.1, 0.2, 0.5])
    requested = lab.use_sweep_best(apply=False)  # as every change: requested now, applied by apply()
    assert requested.connectivity == lab.sweep_result.best() and lab.pending
    lab.apply()
    assert lab.options == requested


def test_sweep_in_a_worker_thread_while_options_change():
    lab = small()
    stop = threading.Event()
    worker = threading.Thread(target=lambda: lab.sweep("leak_rate", should_stop=stop.is_set))
    worker.start()
    lab.configure(spectral_radius=0.9)
    stop.set()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert lab.options.spectral_radius == 0.9 and lab.sweep_result.status in ("stopped", "completed")


def test_a_diverging_free_run_is_scored_not_crashed():
    lab = small(spectral_radius=2.0, generate=300, length=1000, test=300)
    g = lab.result.generation
    assert g.exceeded and g.horizon < 100
    summary = json.loads(json.dumps(lab.summary()))  # JSON-ready even when the run blew up
    assert summary["generation"]["horizon"] == g.horizon


def test_export_writes_every_recorded_array(tmp_path):
    lab = small()
    lab.sweep("leak_rate", [0.2, 0.4])
    path = lab.export(tmp_path / "esn.npz")
    with pytest.raises(TargetExistsError):  # the TUI's first Enter and the CLI without --force
        lab.export(path, replace=False)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    r = lab.result
    for name in ("series", "states", "onestep", "generated", "generated_states", "eigenvalues"):
        np.testing.assert_array_equal(arrays[name], getattr(r, name))
    assert arrays["eigenvalues"].dtype == np.complex128
    assert arrays["readout.weight"].shape == (1, 21)  # [x_t; u_t]
    np.testing.assert_array_equal(arrays["sweep.values"], [0.2, 0.4])
    meta = json.loads(str(arrays["meta"]))
    assert meta["options"] == {**DEFAULTS, **SMALL} and meta["sweep"]["name"] == "leak_rate"
    assert "states" in meta["layout"]
    assert [p.name for p in tmp_path.iterdir()] == ["esn.npz"]  # no temporary file left behind
    with pytest.raises(UserError, match="must end in .npz"):
        lab.export(tmp_path / "esn.txt")
    with pytest.raises(UserError, match="no such directory"):
        lab.export(tmp_path / "missing" / "esn.npz")


def test_option_text_parses_pairs_and_refuses_the_rest():
    assert parse_option_text(" units=200, ridge=1e-6 readout-input=no seed=3 ") == \
        {"units": 200, "ridge": 1e-6, "readout_input": False, "seed": 3}
    assert parse_option_text("") == {}
    with pytest.raises(UserError, match="expected name=value, got 'units'"):
        parse_option_text("units")


def test_a_bad_yes_or_no_names_the_words_the_options_take():
    """readout_input=maybe said "must be true or false", though the dialog takes no (and yes, on, off):
    the message names them, and the engine takes those words as the dialog does."""
    with pytest.raises(UserError, match=r"^readout_input must be true or false \(yes/no, on/off\), got 'maybe'$"):
        small(**parse_option_text("readout_input=maybe"))
    assert small(**parse_option_text("readout_input=no")).options.readout_input is False
    assert small(readout_input="Off").options.readout_input is False  # the API reads the words too
    assert small(readout_input="yes").options.readout_input is True


# ---------------------------------------------------------------------------------------------
# the screen
# ---------------------------------------------------------------------------------------------

wait_for = functools.partial(wait_for, poll=0.02)


def idle(app) -> bool:
    return not any(w.is_running for w in app.screen.workers)


def drive(check, size=(160, 50), **options):
    async def run():
        app = LabScreenApp("esn", engine=small(**options))
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await check(app, pilot)

    asyncio.run(run())


def test_a_notice_leaves_the_status_line_whole_at_80_columns():
    """Textual stacks notices on the footer, where their last row lay over the status line's end
    (its cursor's t); they stand above it now, as the main lab's."""
    async def run():
        app = LabScreenApp("esn", engine=small())
        async with app.run_test(size=(80, 24), notifications=True) as pilot:  # (toasts drawn)
            await pilot.pause()
            status = app.screen._status_line().plain
            await pilot.press("escape")  # "no sweep to stop (w sweeps ρ, W sweeps a)"
            await wait_for(pilot, lambda: "no sweep to stop" in screen_text(app), what="the notice")
            assert screen_text(app).splitlines()[-2].strip() == status

    asyncio.run(run())


def test_screen_shows_states_eigenvalues_forecast_and_figures():
    async def check(app, pilot):
        screen, lab = app.screen, app.engine
        assert isinstance(screen, EsnScreen) and {"-wide", "-tall"} <= screen.classes
        text = screen_text(app)
        for piece in ("reservoir states x_t: units 0-19 of 20", "eig: ρ 1.25, leaky ",
                      "Mackey-Glass: one-step forecast",
                      "[one-step]", f"RMSE {lab.result.onestep_scores.rmse:.3g}", "ρ 1.25", f"t {lab.n_train}",
                      "train t < 249 · test t 249-298 → s(250)..s(299)", "▲249", "sweep: w ρ, W a"):
            assert piece in text, piece
        heatmap = screen.query_one("#esn-heatmap", Heatmap)
        assert heatmap.data.shape[0] == 20  # every unit fits
        window = heatmap.data.shape[1]
        start = heatmap.first_step
        np.testing.assert_array_equal(heatmap.data, lab.result.states[start:start + window].T)
        assert heatmap.cursor + start == lab.cursor  # the window is centred on the cursor
        plane = screen.query_one("#esn-eigen", ComplexPlane)
        np.testing.assert_array_equal(plane.points("W"), lab.result.eigenvalues)
        np.testing.assert_allclose(plane.points("(1-a)I+aW"), lab.result.effective_eigenvalues)
        assert screen.query_one("#esn-series", LinePlot).marker == lab.n_train

    drive(check)


def test_the_one_step_and_the_free_run_plots_share_their_time_axis():
    """A free run as long as the test (generate = test) covers the test's steps: its plots' x-axes
    ended one step before the one-step forecast's (1998 against 1999 for the preset), as the run
    began with the fitted value of s(n), a training target. Both forecast s(n+1) first, from x_n
    (after the true s(n)), to the series' last value: the same times in the series and error plots."""
    async def check(app, pilot):
        lab, screen = app.engine, app.screen
        n, L = lab.n_train, len(lab.result.series)
        ends = {}
        for curve in ("one-step", "free run"):
            series = screen.query_one("#esn-series", LinePlot)._series[curve].xs
            errors = screen.query_one("#esn-error", LinePlot)._series[curve].xs
            ends[curve] = (series[0], series[-1], errors[0], errors[-1], len(series))
            await pilot.press("f")
        assert ends["one-step"] == ends["free run"] == (n + 1, L - 1, n + 1, L - 1, 50)
        g = lab.result.generation
        assert g.compared == lab.options.test == 50  # scored on the test's targets, s(n+1) .. s(L-1)

    drive(check, generate=50)


def test_keys_move_the_cursor_and_toggle_the_free_run():
    async def check(app, pilot):
        lab, n = app.engine, app.engine.n_train
        await pilot.press("right", "right")
        assert lab.cursor == n + 2 and f"▼{n + 2}" in screen_text(app)
        await pilot.press("comma")
        assert lab.cursor == n + 2 - 50
        await pilot.press("home")
        assert lab.cursor == 0 and "  warm-up" in screen_text(app)  # run, left out of the fit
        await pilot.press("end")
        assert lab.cursor == lab.columns - 1
        await pilot.press("b", "f")
        assert lab.mode == "generative" and lab.cursor == n
        text = screen_text(app)
        assert "[free run]" in text and "Mackey-Glass: free run" in text and "free run" in text
        plot = app.screen.query_one("#esn-error", LinePlot)
        assert plot.marker == n + 1 + lab.result.generation.horizon  # the time of the first forecast over
        await pilot.press("f")
        assert lab.mode == "one-step"

    drive(check)


def _time_labels(app) -> tuple[str, str, str]:
    """The heatmap's title, the legend under it and the status line's cursor."""
    screen = app.screen
    status = screen.query_one("#esn-status").render().plain
    return (screen.query_one("#esn-heatmap", Heatmap).title, str(screen.query_one("#esn-legend-text").render()),
            next(part.strip() for part in status.split("│") if part.strip().startswith("t ")))


@pytest.mark.parametrize("generate", [40, 60])  # a free run inside the series, and one past its end
def test_step_counts_share_one_total_the_series_length(generate):
    """t is the series' index, counted against length (300) in the title and the status alike, or
    where a free run reaches past the series' end against its columns, saying where the series ends
    (t never beyond its total: not "t 307 of 300"); the legend says which t the test and the free
    run cover and which values they forecast."""
    async def check(app, pilot):
        n = app.engine.n_train  # 249: 300 - 1 - 50
        title, legend, cursor = _time_labels(app)
        assert title.endswith(" of 300") and cursor == f"t {n} of 300"
        assert legend.startswith(f" train t < {n} · test t {n}-298 → s({n + 1})..s(299)")
        await pilot.press("end")
        assert _time_labels(app)[2] == "t 298 of 300"  # x_298 forecasts s(299), the series' last value
        await pilot.press("f")
        title, legend, cursor = _time_labels(app)
        last = n + generate - 1  # the last fed-back input; the first forecast, of s(n + 1), is made at t = n
        # columns n .. last: as many as the forecasts, s(n + 1) .. s(n + generate), as the test's
        assert f" free t {n}-{last} → s({n + 1})..s({n + generate})" in legend
        await pilot.press("end")
        title, legend, cursor = _time_labels(app)
        of = "of 300" if last < 300 else f"of {last + 1} (series t < 300)"
        assert title.endswith(f"-{last} {of}") and cursor == f"t {last} {of}"
        await pilot.press("home")
        assert _time_labels(app)[2] == f"t 0 {of}"  # one total for the whole mode

    drive(check, generate=generate)


def test_the_status_lines_cursor_keeps_one_form_from_the_first_t_to_the_last():
    """At 80x24 the status line read "t 0 of 2000" after g and only "t 1998" after G: its form was the
    first that fitted the cursor's digits, the total left out for three digits more. Now the form is the
    one that fits every column's t, in each mode and at each width: its words alike at both ends and between."""
    async def check(app, pilot):
        for width in range(74, 96, 3):
            await pilot.resize_terminal(width, 24)
            for mode in ("one-step", "free run"):
                forms = set()
                for key in ("g", "G", "left", "left", "left"):  # the first t, the last, and between
                    await pilot.press(key)
                    forms.add(re.sub(r"\d+", "N", _time_labels(app)[2]))
                assert len(forms) == 1, (width, mode, forms)
                await pilot.press("f")

    drive(check, size=(80, 24), length=2000, test=400)


def test_a_free_run_past_the_series_end_is_drawn_to_the_end_and_says_how_far_it_runs():
    """generate=2000 on a 300-step series: drawn whole, the truth took a sliver of the plot's width
    and the forecast a flat line beyond it; the plot now ends with the series and says so."""
    from rnnlab.tui.widgets import LinePlot

    async def check(app, pilot):
        await pilot.press("f")
        await pilot.pause()
        plot = app.screen.query_one("#esn-series", LinePlot)
        n = app.engine.n_train
        assert plot.title == f"Mackey-Glass: free run (to the series' end, t 299; it runs to {n + 2000})"
        assert max(plot._series["free run"].xs) == 299

    drive(check, generate=2000)


def test_clicking_a_heatmap_column_moves_the_cursor():
    async def check(app, pilot):
        heatmap = app.screen.query_one("#esn-heatmap", Heatmap)
        start = heatmap.first_step
        await pilot.click("#esn-heatmap", offset=(5, 4))
        assert app.engine.cursor == start + 5

    drive(check)


def test_hyperparameter_keys_refit_in_the_background():
    async def check(app, pilot):
        lab = app.engine
        await pilot.press("R", "R")
        await wait_for(pilot, lambda: lab.options.spectral_radius == 1.45 and idle(app))
        assert "ρ 1.45" in screen_text(app) and "eig: ρ 1.45" in screen_text(app)
        await pilot.press("a")
        await wait_for(pilot, lambda: lab.options.leak_rate == 0.25 and idle(app))
        await pilot.press("n")
        await wait_for(pilot, lambda: lab.options.seed == 1 and idle(app))
        assert "seed 1" in screen_text(app)

    drive(check)


def test_n_names_the_new_seed_where_the_status_line_has_no_room_for_it():
    """At 80 columns the status line drops the seed ("ρ 1.25  a 0.3 │ t 1599") and the values panel has two
    lines: n changed the scores and nothing said which reservoir they were now (to draw it again with
    `rnnlab esn --seed 1`). A notice names it."""
    from conftest import notices_of

    async def check(app, pilot):
        lab = app.engine
        notices = notices_of(app.screen)
        assert "seed" not in app.screen._status_line().plain  # (where it is, the notice only repeats it)
        await pilot.press("n")
        await wait_for(pilot, lambda: lab.options.seed == 1 and idle(app))
        assert notices == [("seed 1 (was 0): another reservoir", "information")]

    drive(check, size=(80, 24))


def test_the_options_prompt_refuses_bad_values_inline_and_applies_good_ones():
    async def check(app, pilot):
        lab = app.engine
        await pilot.press("e")
        assert "spectral_radius" in screen_text(app)
        prompt = app.screen.query_one("#prompt-input")
        prompt.value = "units=0"
        await pilot.press("enter")
        assert "units must be an integer" in str(app.screen.query_one("#prompt-error").render())
        prompt.value = "spectral-radius=11"  # named as the form lists it, not as typed
        await pilot.press("enter")
        assert str(app.screen.query_one("#prompt-error").render()).startswith("spectral_radius must be a number")
        prompt.value = "units=30 ridge=1e-6"
        await pilot.press("enter")
        await wait_for(pilot, lambda: lab.options.units == 30 and idle(app))
        assert "units 0-29 of 30" in screen_text(app)

    drive(check)


def test_the_options_dialog_is_prefilled_with_every_option_as_the_other_labs_are():
    """The dialog opened on an empty field (a placeholder) where the seq2seq and treebank labs' hold
    every option's value: a change of one value meant typing it all anew, and Enter on the empty
    field "applied" nothing unsaid."""
    async def check(app, pilot):
        lab, screen = app.engine, app.screen
        await pilot.press("e")
        await pilot.pause()
        field = app.screen.query_one("#prompt-input")
        assert field.value == ("units=20 spectral_radius=1.25 leak_rate=0.3 input_scaling=1 connectivity=0.1 "
                               "ridge=1e-05 readout_input=true seed=0 length=300 test=50 warmup=20 tau=17 "
                               "generate=60 threshold=0.1")
        result = lab.result
        await pilot.press("enter")  # as it stands: nothing to refit, and said so
        await pilot.pause()
        assert app.screen is screen and lab.result is result
        assert list(app._notifications)[-1].message == "options unchanged: the model stays"
        await pilot.press("e")
        await pilot.pause()
        field = app.screen.query_one("#prompt-input")
        field.value = field.value.replace("ridge=1e-05", "ridge=1e-06")  # one value edited, the rest kept
        await pilot.press("enter")
        await wait_for(pilot, lambda: lab.options.ridge == 1e-6 and idle(app))
        assert lab.options.units == 20 and lab.options.length == 300
        await pilot.press("e")
        await pilot.pause()
        assert "ridge=1e-06 " in app.screen.query_one("#prompt-input").value

    drive(check)


def test_the_options_dialog_closing_under_a_pending_fit_of_its_list_is_no_traceback():
    """Enter closes the dialog while a fit of its list waits for the next refresh (Enter and a
    resize schedule one): the dismissal removes its widgets in no set order, and the fit found the hint gone,
    "NoMatches: No nodes match '#prompt-hint'", a traceback that ended the lab (seen in tmux)."""
    async def check(app, pilot):
        await pilot.press("e")
        await pilot.pause()
        dialog = app.screen
        await dialog.query_one("#prompt-hint").remove()  # as the dismissal leaves it, mid-way
        dialog._fit_list()
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, EsnScreen)

    drive(check, size=(80, 24))


def test_the_forecast_plot_names_its_forecast_beside_the_title_at_80x24():
    """"━ s(t)  ━ one-step" fits neither beside the title nor in a corner of the canvas, and
    "━ one-step" was drawn between the curves' dips, read as drawn over them; the entry that fits
    beside the title goes there."""
    async def check(app, pilot):
        await pilot.pause()
        plot = app.screen.query_one("#esn-series", LinePlot)
        header = plot.render_line(0).text
        assert header.startswith("Mackey-Glass: one-step forecast ") and header.rstrip().endswith("━ one-step")

    drive(check, size=(80, 24), units=100, length=2000, test=400, warmup=100, generate=400)  # the preset's


def test_esc_with_no_sweep_to_stop_says_so():
    """Esc stops a sweep; with none running or waiting it did nothing visible (the other labs' s
    says "nothing is training (t starts)")."""
    async def check(app, pilot):
        await pilot.press("escape")
        await pilot.pause()
        assert [n.message for n in app._notifications] == ["no sweep to stop (w sweeps ρ, W sweeps a)"]
        assert isinstance(app.screen, EsnScreen) and app.is_running

    drive(check, size=(80, 24))


def test_a_sweep_runs_in_the_background_and_its_curve_is_drawn():
    async def check(app, pilot):
        lab = app.engine
        await pilot.press("w")
        await wait_for(pilot, lambda: lab.sweep_result is not None and lab.sweep_result.status == "completed"
                       and idle(app))
        plot = app.screen.query_one("#esn-sweep", LinePlot)
        assert plot.series_names == ["one-step", "free run"] and plot.marker == 1.25
        text = screen_text(app)
        assert "RMSE vs ρ" in text and f"sweep ρ 20/20: best {lab.sweep_result.best():g} (B), RMSE" in text
        await pilot.press("n")  # another reservoir: the sweep was made with other options
        await wait_for(pilot, lambda: lab.options.seed == 1 and idle(app))
        assert "sweep ρ 20/20 (stale): best" in screen_text(app)

    drive(check)


def test_B_sets_the_model_to_the_sweeps_best_value_and_says_so_at_80x24():
    """The sweep's line said "best 1.5" and nothing set the model to it: B does, and the status line's
    RMSE is then the best row's. At 80 columns the footer has no room for B: the sweep's line and the
    notice of the finished sweep name it."""
    from conftest import notices_of

    async def check(app, pilot):
        lab, screen = app.engine, app.screen
        notices = notices_of(screen)
        await pilot.press("B")
        assert notices == [("no sweep yet: w sweeps ρ, W sweeps a, then B uses the best value", "warning")]
        assert not lab.pending and lab.options.spectral_radius == 1.25
        await pilot.press("w")
        await wait_for(pilot, lambda: lab.sweep_result is not None and lab.sweep_result.status == "completed"
                       and idle(app))
        sweep, info = lab.sweep_result, screen.query_one("#esn-sweep-info", Static)
        best = sweep.best()
        rmse = float(sweep.rmse[sweep.values == best][0])
        assert best != 1.25 and f"best {best:g} (B), RMSE {rmse:.3g}" in info.render().plain
        assert notices[-1] == (f"sweep of ρ done: best ρ {best:g} (RMSE {rmse:.3g}); B uses it", "information")
        await pilot.press("B")
        await wait_for(pilot, lambda: lab.options.spectral_radius == best and idle(app))
        assert lab.result.onestep_scores.rmse == rmse and lab.sweep_result is sweep
        assert _status(app).startswith(f"[one-step] RMSE {rmse:.3g}  R²")
        assert notices[-1] == (f"ρ {best:g}: the sweep's lowest one-step RMSE, {rmse:.3g}", "information")
        assert f"ρ 20/20: best {best:g}, RMSE {rmse:.3g}" in info.render().plain  # (B) would change nothing now
        assert screen.query_one("#esn-sweep", LinePlot).marker == best
        await pilot.press("B")
        await pilot.pause()
        assert notices[-1] == (f"ρ is {best:g} already, the sweep's best", "information") and not lab.pending

    drive(check, size=(80, 24))


def test_B_is_refused_while_a_sweep_runs_and_for_a_sweep_of_other_reservoirs(monkeypatch):
    from conftest import notices_of

    async def check(app, pilot):
        lab, screen = app.engine, app.screen
        notices = notices_of(screen)
        finish = await _press_W_and_hold_its_second_point(monkeypatch, pilot)
        await pilot.press("B")
        assert notices == [("the sweep of a is not done: B uses its best value once it ends (esc stops it)",
                            "warning")]
        assert lab.requested == lab.options and lab.options.leak_rate == 0.3
        finish.set()
        await wait_for(pilot, lambda: lab.sweep_result.status == "completed" and idle(app))
        assert "(B)" in screen.query_one("#esn-sweep-info", Static).render().plain
        await pilot.press("n")
        await wait_for(pilot, lambda: lab.options.seed == 1 and idle(app))
        assert "(B)" not in screen.query_one("#esn-sweep-info", Static).render().plain  # stale: B refuses it
        await pilot.press("B")
        assert notices[-1] == ("the sweep of leak_rate was made with seed=0 (now 1): its best value was for other "
                               "reservoirs; sweep again with W", "warning")
        assert lab.requested == lab.options and lab.options.leak_rate == 0.3

    drive(check, size=(120, 36))


def test_the_other_sweep_key_during_a_sweep_stops_it_and_sweeps_its_own_option():
    """W during a sweep of ρ stopped it and swept nothing: the help says only "w again stops"."""
    async def check(app, pilot):
        lab = app.engine
        await wait_for(pilot, lambda: idle(app))  # (a refit under way would queue the first sweep)
        await pilot.press("w")
        await wait_for(pilot, lambda: lab.sweep_result is not None and lab.sweep_result.done >= 1)  # under way
        await pilot.press("W")
        await wait_for(pilot, lambda: lab.sweep_result is not None and lab.sweep_result.name == "leak_rate"
                       and lab.sweep_result.done >= 1, timeout=120)  # a's own sweep, one point in: enough
        await pilot.press("escape")
        await wait_for(pilot, lambda: lab.sweep_result.status != "running" and idle(app), timeout=120)

    drive(check, units=300, length=6000)


def test_errors_in_the_worker_are_shown_inline_and_the_screen_lives_on(monkeypatch):
    def broken(*args):
        raise RuntimeError("the reservoir caught fire")

    async def check(app, pilot):
        lab = app.engine
        monkeypatch.setattr(esn_lab, "compute", broken)
        await pilot.press("R")
        await wait_for(pilot, lambda: idle(app) and "caught fire" in screen_text(app))
        assert "error: RuntimeError: the reservoir caught fire" in screen_text(app)
        assert lab.options.spectral_radius == 1.25
        await pilot.press("right")  # still alive
        assert lab.cursor == lab.n_train + 1

    drive(check)


def test_export_key_writes_the_file(tmp_path):
    async def check(app, pilot):
        await pilot.press("x")
        app.screen.query_one("#prompt-input").value = str(tmp_path / "run.npz")
        await pilot.press("enter")
        await pilot.pause()
        assert (tmp_path / "run.npz").is_file()

    drive(check)


def test_keys_typed_faster_than_the_options_dialog_draws_land_in_it():
    from textual import events
    from textual.widgets import Input

    async def check(app, pilot):
        for key in "eunits=30":  # all queued before the first is handled
            app.post_message(events.Key(key, key))
        await wait_for(pilot, lambda: app.screen.query(Input))
        await pilot.pause(0.2)
        assert app.screen.query_one(Input).value == "units=30"

    drive(check)


def test_help_lists_every_key():
    async def check(app, pilot):
        await pilot.press("question_mark")
        text = screen_text(app)
        for binding in EsnScreen.BINDINGS:
            assert binding.tooltip in text, binding.tooltip
        await pilot.press("escape")
        assert isinstance(app.screen, EsnScreen)

    drive(check)


def test_the_help_says_what_an_echo_state_network_is():
    """The seq2seq and treebank labs' helps explain their architecture; this one listed the keys alone, and a
    student met ρ, a and a free run with nothing on screen saying that only the readout is fit. The update's
    formulas stand on lines of their own, whole down to 60 columns (wrapped as prose, "(1-a)" ended a line)."""
    async def check(app, pilot):
        await pilot.press("question_mark")
        seen: list[str] = []
        for _ in range(8):  # page through it all: at 60x20 it is three pages
            await pilot.pause()
            seen += [line.strip("│ ▁▂▃▄▅▆▇█") for line in screen_text(app).splitlines()]
            await pilot.press("pagedown")
        assert "x_t = (1-a)x_{t-1} + a·tanh(Wx_{t-1} + W_in u_t + b)" in seen, seen
        assert "y_t = W_out [x_t; u_t] + b_out" in seen, seen  # (an export's readout.bias: its b_out)
        text = " ".join(seen)
        for idea in ("trains only its readout", "never trained", "ridge regression", "spectral radius ρ",
                     "its own forecasts", "horizon"):
            assert idea in text, idea

    drive(check, size=(60, 20))
    drive(check, size=(80, 24))


def test_the_small_layout_trades_the_error_plot_for_the_sweep():
    async def check(app, pilot):
        screen = app.screen
        assert {"-narrow", "-short"} <= screen.classes
        info = screen.query_one("#esn-info")  # two lines: the status line keeps the scores
        assert info.display and info.content_region.height == 2 and "error" in info.render().plain
        error, sweep = screen.query_one("#esn-error"), screen.query_one("#esn-sweep")
        assert error.display and error.size.width > 0 and not sweep.display
        heatmap = screen.query_one("#esn-heatmap", Heatmap)
        rows = heatmap.data.shape[0]
        assert 2 <= rows < 100 and heatmap.size.height >= rows // 2 + 2
        await pilot.press("down")
        assert screen.unit_offset == rows // 2 and f"units {rows // 2}-" in screen_text(app)
        await pilot.press("w")
        await wait_for(pilot, lambda: app.engine.sweep_result is not None
                       and app.engine.sweep_result.status == "completed" and idle(app))
        await pilot.pause()
        assert sweep.display and sweep.size.width > 0 and not error.display
        await pilot.resize_terminal(60, 20)  # the smallest: the eigenvalues keep rows beside the sweep's line
        await pilot.pause()
        await pilot.pause()
        assert "-tiny" in screen.classes and screen.query_one("#esn-eigen").size.height >= 5
        sweep_info = screen.query_one("#esn-sweep-info")
        assert sweep_info.size.height == 1 and sweep_info.render().plain.startswith("ρ 20/20: best ")

    drive(check, size=(100, 30), units=100)


# ---------------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------------

SMALL_ARGS = ["--units", "20", "--length", "300", "--test", "50", "--warmup", "20", "--generate", "60"]


def test_cli_prints_the_figures(capsys):
    assert main(["esn", *SMALL_ARGS]) == 0
    out = capsys.readouterr().out
    lab = small()
    assert "readout [x; u]" in out and "one-step RMSE (last 50 steps)" in out
    assert f"{lab.result.onestep_scores.rmse:.6g}" in out
    horizon_line = next(line for line in out.splitlines() if "steps until |error| > 0.1" in line)
    assert f" {lab.result.generation.horizon} " in horizon_line


def test_cli_json_is_the_engines_summary(capsys):
    assert main(["esn", *SMALL_ARGS, "--no-readout-input", "--spectral-radius", "0.9", "--seed", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    expected = small(readout_input=False, spectral_radius=0.9, seed=2).summary()
    data.pop("fit_ms"), expected.pop("fit_ms")
    assert data == expected
    assert data["options"]["readout_input"] is False


def test_cli_sweep_and_export(tmp_path, capsys):
    out_file = tmp_path / "esn.npz"
    assert main(["esn", *SMALL_ARGS, "--sweep", "leak-rate", "--export", str(out_file), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["sweep"]["name"] == "leak_rate" and len(data["sweep"]["points"]) == 20
    assert data["export"] == str(out_file) and out_file.is_file()
    assert main(["esn", *SMALL_ARGS, "--sweep", "spectral_radius"]) == 0
    assert "sweep of spectral_radius (completed)" in capsys.readouterr().out


def test_a_sweep_says_which_free_runs_never_exceeded_the_threshold(tmp_path, capsys):
    """A point's horizon read as the step the error passed the threshold where it never did (the
    single fit said "(never exceeded)", the sweep's row the same number bare)."""
    assert main(["esn", *SMALL_ARGS, "--sweep", "spectral_radius", "--threshold", "1e5", "--json"]) == 0
    points = json.loads(capsys.readouterr().out)["sweep"]["points"]
    assert points and all(p["exceeded"] is False and p["horizon"] == 50 for p in points)
    assert main(["esn", *SMALL_ARGS, "--sweep", "spectral_radius", "--threshold", "1e5"]) == 0
    out = capsys.readouterr().out
    assert "50+" in out and "+: within 100000 for every step compared" in out
    assert main(["esn", *SMALL_ARGS, "--sweep", "spectral_radius", "--threshold", "1e-9", "--json"]) == 0
    points = json.loads(capsys.readouterr().out)["sweep"]["points"]
    assert all(p["exceeded"] is True and p["horizon"] == 0 for p in points)
    lab = small()
    lab.sweep("spectral_radius", [0.5, 1.0])
    assert lab.arrays()["sweep.exceeded"].dtype == bool


@pytest.mark.parametrize("args, message", [
    (["--leak-rate", "2"], "--leak-rate must be a number in (0, 1]"),
    (["--units", "0"], "--units must be an integer"),
    (["--test", "1999"], "--test=1999 and --warmup=100 leave no step to fit the readout on"),
    (["--sweep", "units"], "--sweep must be one of"),
    (["--export", "out.txt"], "must end in .npz"),
    (["--spectral-radius", "abc"], "--spectral-radius"),
])
def test_cli_bad_input_is_one_line_and_exit_2(capsys, args, message):
    assert main(["esn", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


# ---------------------------------------------------------------------------------------------
# the audit's findings (exports, free-run scores, stale sweeps, ctrl+c, small terminals)
# ---------------------------------------------------------------------------------------------

def _unwritable(*args, **kwargs):  # the atomic writer's temp file, in a directory not writable
    raise PermissionError(13, "Permission denied")


def test_an_export_that_cannot_be_written_is_a_user_error(tmp_path, monkeypatch):
    lab = small()
    monkeypatch.setattr(fsio.tempfile, "mkstemp", _unwritable)
    with pytest.raises(UserError, match=r"cannot write .*esn\.npz: Permission denied"):
        lab.export(tmp_path / "esn.npz")


def test_export_errors_stay_in_the_dialog_and_the_notice_names_the_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def check(app, pilot):
        with monkeypatch.context() as patch:
            patch.setattr(fsio.tempfile, "mkstemp", _unwritable)
            await pilot.press("x")
            app.screen.query_one("#prompt-input").value = "denied.npz"
            await pilot.press("enter")
            assert "cannot write denied.npz: Permission denied" in str(app.screen.query_one("#prompt-error").render())
            await pilot.press("escape")
        assert isinstance(app.screen, EsnScreen)
        notices = []
        monkeypatch.setattr(app, "notify", lambda message, **kwargs: notices.append(message))
        await pilot.press("x")
        app.screen.query_one("#prompt-input").value = "relative.npz"  # relative to the working directory
        await pilot.press("enter")
        assert (tmp_path / "relative.npz").is_file()
        assert notices == [f"exported to {tmp_path / 'relative.npz'}"]

    drive(check)


def test_an_export_to_a_directory_says_it_is_one_and_names_a_file_in_it(tmp_path, monkeypatch):
    """The export prompt given a folder said "export file must end in .npz: /tmp", as if a suffix were
    missing; it says the folder is one, and the file to name in it (the prompt's own default)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(UserError, match=rf"^{re.escape(str(tmp_path))} is a directory: name the export file in it, "
                                        rf"e\.g\. {re.escape(str(tmp_path / 'esn.npz'))}$"):
        small().export("~")

    async def check(app, pilot):
        await pilot.press("x")
        assert app.screen.query_one("#prompt-input").value == "esn.npz"
        app.screen.query_one("#prompt-input").value = str(tmp_path)
        await pilot.press("enter")
        assert f"{tmp_path} is a directory: name the export file in it, e.g. {tmp_path / 'esn.npz'}" in str(
            app.screen.query_one("#prompt-error").render())
        assert list(tmp_path.iterdir()) == []

    drive(check)


def test_the_free_run_status_shows_the_free_runs_own_scores():
    async def check(app, pilot):
        r = app.engine.result
        g, one = r.generation, r.onestep_scores
        assert g.scores.rmse != pytest.approx(one.rmse)
        await pilot.press("f")
        status = app.screen.query_one("#esn-status").render().plain
        assert f"[free run] RMSE {g.scores.rmse:.3g} ({g.compared} steps)" in status
        assert f"within {g.threshold:g} for {g.horizon} steps" in status and "R²" not in status
        await pilot.press("f")
        status = app.screen.query_one("#esn-status").render().plain
        assert f"[one-step] RMSE {one.rmse:.3g}  R² {math.floor(one.r2 * 1e6) / 1e6:.6f}" in status

    drive(check)


def test_r2_is_cut_not_rounded_up_to_a_perfect_fit():
    """At 80 columns R² 0.999968 showed as 1.0000 (rnnlab esn writes it so too)."""
    from rnnlab.labs.esn import format_r2

    assert format_r2(0.999968, 4) == "0.9999" and format_r2(0.999968, 6) == "0.999968" and format_r2(1.0, 4) == "1.0000"
    assert format_r2(-0.25, 4) == "-0.2500" and format_r2(float("nan"), 4) == "-"
    assert format_r2(0.57, 4) == "0.5700" and format_r2(-1e303, 6) == "-1e+303"  # 0.57 * 1e4 is 5699.999... in binary
    assert format_r2(np.float64(0.57), 4) == "0.5700"  # a sweep's scores are NumPy's (repr "np.float64(0.57)")


def test_a_resize_under_a_dialog_refits_the_screen_when_the_dialog_closes():
    """A resize while a dialog covered the lab reached the dialog alone (textual lays the covered
    screen out anew on its return, with no Resize): the heatmap's title still named the rows and
    the eigenvalue panel's form of the old size (the architecture labs' walkthrough)."""
    async def check(app, pilot):
        screen = app.screen
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen is not screen)
        await pilot.resize_terminal(200, 60)
        await pilot.pause()
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.pause()
        heatmap = screen.query_one("#esn-heatmap", Heatmap)
        start, end = map(int, re.search(r" t (\d+)-(\d+) ", heatmap.title).groups())
        assert end - start + 1 == min(app.engine.view().columns, heatmap.size.width), (heatmap.title, heatmap.size)
        assert screen.query_one("#esn-eigen").title.startswith("eig: ρ")  # the wide form

    drive(check, size=(90, 24))


def test_a_free_run_cut_at_the_top_of_the_sweep_chart_is_said_so():
    """A free run that blew up (RMSE 1e28 here) drew a line flat along the chart's top, 1e+03, read
    as an error of a thousand (the architecture labs' walkthrough)."""
    async def check(app, pilot):
        lab, screen = app.engine, app.screen
        await pilot.press("w")
        await wait_for(pilot, lambda: lab.sweep_result is not None and lab.sweep_result.status == "completed"
                       and idle(app))
        plot = screen.query_one("#esn-sweep", LinePlot)
        assert plot.title == "RMSE vs ρ"
        lab.sweep_result.generation_rmse[3] = 1.2e28  # as rnnlab esn --spectral-radius 0.05 --leak-rate 1 --seed 1
        screen.draw_sweep()
        await pilot.pause()
        assert plot.title == "RMSE vs ρ ≤1000" and plot.size.width < 40  # (the long form leaves the legend no room)
        await pilot.resize_terminal(200, 50)
        await pilot.pause()
        await pilot.pause()
        assert plot.title == "RMSE vs ρ, free run cut at 1000"

    drive(check, size=(120, 36))


@pytest.mark.parametrize("size, header", [
    ((80, 24), "RMSE ━ 1-step ━ free"),  # the preset's named neither curve: no room in the canvas
    ((100, 30), "RMSE ≤1000 ━ 1-step ━ free"),  # the preset's: "━ free run" in a pocket between the curves
    ((60, 20), "━ 1-step ━ free"),  # a 20-column chart titled "RMSE vs ρ ≤1000" named neither
])
def test_the_sweep_chart_names_both_its_curves_beside_its_title(size, header):
    """The sweep chart kept its title and moved the legend that did not fit beside it into its canvas, which
    the two curves fill: at 80x24 neither curve was named. Now the title and the names shorten until the
    legend fits beside the title."""
    async def check(app, pilot):
        lab, screen = app.engine, app.screen
        await pilot.press("w")
        await wait_for(pilot, lambda: lab.sweep_result is not None and lab.sweep_result.status == "completed"
                       and idle(app))
        await pilot.pause()
        plot = screen.query_one("#esn-sweep", LinePlot)
        lines = [plot.render_line(y).text for y in range(plot.size.height)]
        assert " ".join(lines[0].split()) == header, lines[0]  # (the legend right-aligned)
        assert not any("━" in line for line in lines[1:]), lines  # none left in the canvas

    drive(check, size=size, units=100)


def test_a_sweep_from_other_options_is_marked_stale_and_its_best_shows_at_120x36():
    async def check(app, pilot):
        lab, screen = app.engine, app.screen
        assert {"-narrow", "-short"} <= screen.classes
        await pilot.press("W")
        await wait_for(pilot, lambda: lab.sweep_result is not None and lab.sweep_result.status == "completed"
                       and idle(app))
        plot = screen.query_one("#esn-sweep", LinePlot)
        assert plot.title == "RMSE vs a" and plot.display
        best = screen.query_one("#esn-sweep-info", Static)
        assert best.display and best.region.height >= 1
        assert f"best {lab.sweep_result.best():g}" in " ".join(screen_text(app).split())
        await pilot.press("e")
        app.screen.query_one("#prompt-input").value = "units=30"
        await pilot.press("enter")
        await wait_for(pilot, lambda: lab.options.units == 30 and idle(app))
        assert plot.title == "RMSE vs a: stale (W redoes)" and "RMSE vs a: stale" in screen_text(app)
        # both curves grey: no legend (a grey "━ free run" sat between them, naming neither apart)
        assert not any("━" in plot.render_line(y).text for y in range(plot.size.height))
        assert "(stale)" in best.render().plain
        await pilot.press("W")  # a new sweep is current again
        await wait_for(pilot, lambda: lab.sweep_result.status == "completed" and lab.sweep_result.base.units == 30
                       and idle(app))
        assert plot.title == "RMSE vs a"

    drive(check, size=(120, 36))


def test_the_sweep_line_breaks_between_its_items_never_inside_one():
    """At 120x40 "sweep a 20/20 (stale): best 1, RMSE 0.00587" fits the 35-column panel neither
    whole nor without "sweep": it wrapped at any space, "RMSE" ending one line and its value the next."""
    async def check(app, pilot):
        lab, screen = app.engine, app.screen
        await pilot.press("W")
        await wait_for(pilot, lambda: lab.sweep_result is not None and lab.sweep_result.status == "completed"
                       and idle(app))
        await pilot.press("n")  # another reservoir: the sweep is stale, its line longer
        await wait_for(pilot, lambda: lab.options.seed == 5 and idle(app))
        await pilot.pause()
        info = screen.query_one("#esn-sweep-info", Static)
        region = info.content_region
        lines = [line[region.x:region.right].rstrip() for line in screen_text(app).splitlines()[region.y:region.bottom]]
        best = lab.sweep_result.best()
        rmse = lab.sweep_result.rmse[int(np.flatnonzero(lab.sweep_result.values == best)[0])]
        assert best == 1 and lines == ["sweep a 20/20 (stale): best 1,", f"RMSE {rmse:.3g}"]

    drive(check, size=(120, 40), seed=4)  # its best a is 1: the line is 35 columns up to "RMSE"


def test_g_and_G_go_to_the_start_and_the_end_as_in_every_lab_and_f_switches_the_forecast():
    """g is "go to the start" in the main lab, seq2seq and treebank: here too (with G, h and l as
    there); the one-step / free-run switch is f, and the footer and the help say so."""
    async def check(app, pilot):
        lab = app.engine
        await pilot.press("g")
        assert lab.cursor == 0 and lab.mode == "one-step"
        await pilot.press("l", "l", "h")
        assert lab.cursor == 1
        await pilot.press("G")
        assert lab.cursor == lab.columns - 1 and lab.mode == "one-step"
        await pilot.press("f")
        assert lab.mode == "generative"
        await pilot.press("g")
        assert lab.cursor == 0 and lab.mode == "generative"
        assert "f 1-step/free" in screen_text(app).splitlines()[-1]  # the footer
        await pilot.press("f", "question_mark")
        text = screen_text(app)
        assert lab.mode == "one-step"
        assert re.search(r"Home, g +time cursor to t = 0", text) and re.search(r"End, G +time cursor to", text)
        assert re.search(r"\bf +toggle one-step forecast / free run", text)

    drive(check)


@pytest.mark.parametrize("size", [(120, 36), (80, 24)])
def test_a_long_free_run_status_line_fits_and_never_puts_t_past_its_total(size):
    """A free run past the series' end (defect: "t 897 of 600 + free run  │ ?" cut at 120x36): the
    line is one of its whole forms, or ends in "…"; t is counted against the columns there are."""
    async def check(app, pilot):
        lab, screen = app.engine, app.screen
        await pilot.press("f", "end")
        status = screen.query_one("#esn-status")
        line = status.render().plain
        assert len(line) <= status.content_size.width
        assert line.endswith("? help") or line.endswith("…") or re.search(r"t \d+( of \d+.*)?$", line), line
        match = re.search(r"t (\d+) of (\d+)", line)
        if match:
            assert int(match[1]) < int(match[2]) == lab.columns
        if size == (120, 36):
            # the help goes first (the footer has it); the cursor's part stays whole
            assert line.endswith(f"│ t {lab.columns - 1} of {lab.columns} (series t < 300)"), line
        screen.message = Text("error: a long message that takes a good part of the line " * 2, style="bold red")
        screen.update_status()
        line = status.render().plain
        assert len(line) <= status.content_size.width and line.endswith("…"), line

    drive(check, size=size, generate=400)


def test_q_during_a_long_refit_quits_without_waiting_for_it(monkeypatch):
    """A refit of 1000 units cannot be interrupted: the exit waited for its worker thread, the
    terminal blank for 13 s. It now runs where a quit does not wait for it."""
    import time

    held: dict = {}

    async def run():
        app = LabScreenApp("esn", engine=small())
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.pause()
            held["finish"] = await _press_r_and_hold_its_fit(monkeypatch, pilot)
            await pilot.press("q")
            held["quit_at"] = time.monotonic()

    try:
        asyncio.run(run())  # its end waits for every worker thread that is not a daemon
        assert time.monotonic() - held["quit_at"] < 5  # not the 30 s the held fit waits
    finally:
        held["finish"].set()


def test_quitting_the_esn_lab_never_asks():
    """An ESN is fit in closed form in a moment and its options and seed are on the screen:
    nothing is lost that a refit cannot make again, so q quits at once, even after refits."""
    async def check(app, pilot):
        await pilot.press("R")
        await wait_for(pilot, lambda: idle(app) and app.engine.result.options.spectral_radius > 1.25)
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0 and not app._notifications

    drive(check)


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 36)])
def test_every_footer_key_is_in_view_down_to_80_columns(size):
    """At 80 columns the footer ended "… w sweep ρ  e▏^p palette": below 120 it packs its keys closer
    and leaves out the palette's (ctrl+p still opens it), as the main lab's; x is in the help. B (use the
    sweep's best value) is the one key left out at 80 columns: the sweep's line says "(B)" there."""
    async def check(app, pilot):
        screen = app.screen
        lines = screen_text(app).splitlines()
        for shown in footer_keys(app, screen):
            assert (shown in lines[-1]) == (shown != USE_BEST or size[0] > 80), (shown, lines[-1])
        assert ("palette" in lines[-1]) == (size[0] >= 120)
        assert "…" not in lines[0] and "rnnlab — esn: echo state network" in lines[0]

    drive(check, size=size)


def test_the_footer_keeps_every_key_in_view_when_the_terminal_shrinks_and_grows():
    """Shrunk from 160 to 80 columns the footer kept the palette's key and lost "? help  q quit":
    Textual's footer reads show_command_palette only when it is composed."""
    async def check(app, pilot):
        def footer() -> str:
            return screen_text(app).splitlines()[-1]

        for size in ((80, 24), (160, 50), (60, 20), (100, 30)):
            await pilot.resize_terminal(*size)
            # composed again: a moment (more on a loaded machine) before it is on the screen
            await wait_for(pilot, lambda: ("palette" in footer()) == (size[0] >= 120), timeout=10, what=str(size))
            if size[0] >= 80:
                await wait_for(pilot, lambda: all(shown in footer() for shown in footer_keys(app, app.screen)
                                                  if shown != USE_BEST or size[0] > 80),
                               timeout=10, what=f"every key at {size}")

    drive(check, size=(160, 50))


def test_the_header_shortens_its_sub_title_rather_than_cut_it():
    """60 columns leave the header's title 42: the sub-title's shorter form, not "…Mackey-Gl…"."""
    async def check(app, pilot):
        header = screen_text(app).splitlines()[0]
        assert header.rstrip().endswith("rnnlab — esn: echo state network") and "…" not in header

    drive(check, size=(60, 20))


def test_the_help_wraps_a_long_description_under_itself():
    """b's description wrapped before "(train/test boundary)", under the keys: the keys and the
    descriptions are two columns, so a long one goes on under its own first word."""
    async def check(app, pilot):
        await pilot.press("question_mark")
        await pilot.pause()
        lines = screen_text(app).splitlines()
        assert any("esn lab: keys" in line for line in lines)
        at = next(k for k, line in enumerate(lines) if "time cursor to the first forecast step" in line)
        column = lines[at].index("time cursor to the first")
        assert "boundary)" not in lines[at]  # 64 columns: it wraps
        follow = lines[at + 1].strip("│")
        assert "boundary)" in follow and len(follow) - len(follow.lstrip()) + 1 == column, (lines[at], follow)
        assert "Home, g  time cursor to t = 0" in "\n".join(lines)

    drive(check, size=(64, 24))


def test_ctrl_c_quits_and_the_help_says_so():
    async def check(app, pilot):
        await pilot.press("question_mark")
        assert "q, ctrl+c  quit" in screen_text(app)
        await pilot.press("escape")
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert not app.is_running and app.return_code == 0

    drive(check)


def test_a_long_option_error_wraps_in_the_dialog_at_120x36():
    async def check(app, pilot):
        await pilot.press("e")
        app.screen.query_one("#prompt-input").value = "test=290"
        await pilot.press("enter")
        error = app.screen.query_one("#prompt-error")
        message = str(error.render())
        assert message.endswith("lower test or warmup, or raise length")
        assert error.size.width == error.parent.content_size.width and error.size.height >= 2
        assert "or warmup, or raise length" in screen_text(app)

    drive(check, size=(120, 36))


# ---------------------------------------------------------------------------------------------
# the second audit's findings (a stopped sweep's last redraw, stale sweeps in exports, titles,
# the cursor's values in short terminals, terminals below the minimum)
# ---------------------------------------------------------------------------------------------

def test_a_stopped_sweep_is_drawn_as_the_lab_holds_it(monkeypatch):
    """Esc cancels the sweep's worker at once (CANCELLED, redrawn), but its thread finishes the
    point it is on before the sweep's status turns "stopped": that last state must be drawn too."""
    async def check(app, pilot):
        lab, screen = app.engine, app.screen
        finish = await _press_W_and_hold_its_second_point(monkeypatch, pilot)  # until the test lets it finish
        await pilot.press("escape")
        info = screen.query_one("#esn-sweep-info", Static)
        await wait_for(pilot, lambda: "stopping 1/20" in info.render().plain, what="the sweep stopping")
        assert "stopping sweep" in screen.query_one("#esn-status").render().plain
        assert "stopping sweep" in screen_text(app)  # on screen at 120 columns: what runs comes first
        finish.set()
        await wait_for(pilot, lambda: lab.sweep_result.status == "stopped" and lab.sweep_result.done == 2)
        sweep = lab.sweep_result
        line = f"sweep a stopped 2/20: best {sweep.best():g}, RMSE {np.nanmin(sweep.rmse):.3g}"
        said = lambda: " ".join(info.render().plain.split())  # noqa: E731 (on two lines where it is long)
        await wait_for(pilot, lambda: said() == line, timeout=5, what=line)
        assert "sweep a stopped 2/20: best" in screen_text(app)
        plot = screen.query_one("#esn-sweep", LinePlot)
        np.testing.assert_array_equal(plot._series["one-step"].xs, [0.05, 0.1])
        await pilot.resize_terminal(110, 36)  # and it stays so through resizes and redraws
        await pilot.pause(0.3)
        assert said() == line and "stopping" not in screen.query_one("#esn-status").render().plain

    drive(check, size=(120, 36))


def test_stopping_a_sweep_before_it_starts_keeps_the_last_one():
    async def check(app, pilot):
        lab = app.engine
        lab.sweep("leak_rate", [0.2, 0.4])
        before = lab.sweep_result
        with lab.lock:  # the new sweep's worker waits for the lock; Esc stops it meanwhile
            await pilot.press("w")
            await pilot.pause(0.1)
            await pilot.press("escape")
        await wait_for(pilot, lambda: idle(app))
        assert lab.sweep_result is before

    drive(check)


def test_export_marks_a_sweep_made_with_other_options_and_names_them(tmp_path):
    lab = small()
    lab.sweep("spectral_radius", [0.9, 1.2])
    sweep = lab.summary()["sweep"]
    assert sweep["current"] is True and sweep["options"] == lab.summary()["options"]
    lab.new_seed()  # another reservoir: the sweep's points and best value are the old seed's
    with np.load(lab.export(tmp_path / "esn.npz"), allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        np.testing.assert_array_equal(data["sweep.values"], [0.9, 1.2])
    sweep = meta["sweep"]
    assert sweep["current"] is False and sweep["status"] == "completed"
    assert sweep["options"] == {**DEFAULTS, **SMALL} and meta["options"] == {**DEFAULTS, **SMALL, "seed": 1}
    assert "sweep.current is false" in meta["layout"]["sweep.values"]
    lab.configure(spectral_radius=0.5)  # the swept option may differ: the sweep is current again
    lab.new_seed(0)
    assert lab.summary()["sweep"]["current"] is True


@pytest.mark.parametrize("units", [100, 1000])
def test_the_heatmap_title_never_cuts_a_number(units):
    numbers = {"0", "7", str(units), "1500", "1599", "2000"}
    longest = _states_title(0, 7, units, 1500, 1599, "of 2000", 0)
    assert longest == f"reservoir states x_t: units 0-7 of {units}, t 1500-1599 of 2000"
    for width in range(1, len(longest) + 2):
        title = _states_title(0, 7, units, 1500, 1599, "of 2000", width)
        assert len(title) <= width and set(re.findall(r"\d+", title)) <= numbers, (width, title)

    async def check(app, pilot):
        heatmap = app.screen.query_one("#esn-heatmap", Heatmap)
        assert heatmap.title == f"x_t 0-11/{units}" and f"x_t 0-11/{units} " in screen_text(app)

    drive(check, size=(60, 20), units=units)


def test_the_heatmap_title_of_one_unit_says_unit_0():
    assert _states_title(0, 0, 1, 0, 99, "of 100", 0) == "reservoir states x_t: unit 0 of 1, t 0-99 of 100"


@pytest.mark.parametrize("size", [(120, 36), (80, 24), (160, 36)])
def test_the_cursors_forecast_and_error_show_in_a_short_terminal(size):
    async def check(app, pilot):
        lab, screen = app.engine, app.screen
        assert "-short" in screen.classes
        await pilot.press("right", "right")
        v = lab.cursor_values()
        info = screen.query_one("#esn-info", Static)
        text = info.render().plain
        assert info.content_region.height == 2 and text.startswith(f"t {lab.cursor} test")
        for piece in (f"u_t {v['input']:.5f}", f" {v['forecast']:.5f}", f"error {v['error']:+.2e}"):
            assert piece in text and piece in screen_text(app), piece
        assert max(len(line) for line in text.splitlines()) <= info.content_region.width  # no wrapped line
        for plot in ("#esn-series", "#esn-error"):  # the main plots keep their rows (the band's 10 less its border)
            assert screen.query_one(plot).region.height == 9

    drive(check, size=size)


def test_a_terminal_below_the_minimum_says_so_until_enlarged():
    async def check(app, pilot):
        message = app.screen.query_one("#too-small", Static)
        assert message.display and "The lab needs at least 60x20" in screen_text(app)
        assert "(this terminal: 50x15)" in screen_text(app) and "RMSE vs" not in screen_text(app)
        await pilot.resize_terminal(60, 20)
        await pilot.pause(0.1)
        assert not message.display and "Mackey-Glass" in screen_text(app)
        await pilot.press("W")  # at the minimum the sweep plot's x labels stay apart
        await wait_for(pilot, lambda: app.engine.sweep_result.status == "completed" and idle(app))
        await pilot.pause(0.1)
        plot = app.screen.query_one("#esn-sweep", LinePlot)
        assert plot.x_range == (0.05, 1.0)
        axis = plot.render_line(plot.size.height - 1).text.split()
        assert axis and set(axis) <= {"0.05", "1", "▲0.3"}, axis
        await pilot.resize_terminal(59, 30)
        await pilot.pause(0.1)
        assert message.display and "(this terminal: 59x30)" in screen_text(app)

    drive(check, size=(50, 15))


# ---------------------------------------------------------------------------------------------
# the third review's findings (a diverged free run's values, Esc during a refit, a refit or a
# sweep asked for while a sweep is stopping)
# ---------------------------------------------------------------------------------------------

#: Options any user can set with e: the free run diverges to about 1.9e233.
DIVERGING = dict(units=100, ridge=1e-12, input_scaling=0.1, length=2000, test=400, warmup=100, generate=400)


@pytest.mark.parametrize("value", [0.0, 0.91234, -0.5, 99.9, -123.456, 9999.99999, 12345.6, -1e17, 1.89e233,
                                   -1.89e233, 1.7e308, 1e-300, -4.2e-7])
def test_the_values_panels_numbers_stay_short_at_any_magnitude(value):
    for spec in (".5f", "+.2e"):
        text = _fit(value, spec)
        assert len(text) <= VALUE_WIDTH and float(text) == pytest.approx(value, rel=0.06, abs=1e-5), (spec, text)
    assert _fit(0.91234, ".5f") == "0.91234" and _fit(-1.2e-3, "+.2e") == "-1.20e-03"  # as before: unchanged
    assert _fit(float("nan"), ".5f") == _fit(float("inf"), "+.2e") == "-"


@pytest.mark.parametrize("size", [(120, 36), (160, 36), (120, 50), (160, 50)])
def test_a_diverged_free_run_keeps_the_values_panel_short(size):
    async def check(app, pilot):
        lab, screen = app.engine, app.screen
        await pilot.press("f", "end")
        v = lab.cursor_values()
        assert abs(v["forecast"]) > 1e200  # the free run diverged
        info = screen.query_one("#esn-info", Static)
        lines = info.render().plain.splitlines()
        value_lines = [line for line in lines if "u_t" in line or "error" in line]
        assert value_lines and max(map(len, value_lines)) <= info.content_region.width, value_lines
        if "-short" in screen.classes:  # the promised two lines
            assert len(lines) == 2 and info.content_region.height == 2
        text = " ".join(screen_text(app).split())
        for name, spec in (("forecast", ".5f"), ("error", "+.2e")):
            assert re.search(rf"{name} (of s\(t\+1\) )?{re.escape(_fit(v[name], spec))} ", text), name
        assert screen.query_one("#esn-eigen").region.height >= 4  # not squeezed by the panel

    drive(check, size=size, **DIVERGING)


def _hold_compute(monkeypatch, hold):
    """Patch the engine's compute so that a call for which ``hold(options)`` is true waits until
    the returned event is set; ``busy`` is set when it starts waiting."""
    real = esn_lab.compute
    busy, finish = threading.Event(), threading.Event()

    def slow(options, *spell):
        if hold(options):
            busy.set()
            finish.wait(30)
        return real(options, *spell)

    monkeypatch.setattr(esn_lab, "compute", slow)
    return busy, finish


async def _press_r_and_hold_its_fit(monkeypatch, pilot):
    """r (rho 1.25 -> 1.15), its fit held once it computes; returns the event that releases it."""
    busy, finish = _hold_compute(monkeypatch, lambda options: options.spectral_radius == 1.15)
    await pilot.press("r")
    await wait_for(pilot, busy.is_set)
    return finish


async def _queue_w_behind_a_held_refit(monkeypatch, app, pilot):
    """r, its fit held, then w: the sweep waits for the fit; returns the event that releases it."""
    finish = await _press_r_and_hold_its_fit(monkeypatch, pilot)
    await pilot.press("w")
    await pilot.pause(0.1)
    assert _status(app).startswith("fitting…, then sweeping ρ │ ")
    return finish


async def _press_W_and_hold_its_second_point(monkeypatch, pilot):
    """W (sweep a), its second point held once it computes (the second compute from now); returns
    the event that releases it."""
    calls = []

    def second(options):
        calls.append(options)
        return len(calls) == 2

    busy, finish = _hold_compute(monkeypatch, second)
    await pilot.press("W")
    await wait_for(pilot, busy.is_set)
    return finish


def _status(app) -> str:
    return app.screen.query_one("#esn-status").render().plain


def _shows_rho(app, rho: str) -> bool:
    """Every panel that names the reservoir's rho shows ``rho``."""
    text = screen_text(app)
    return f"eig: ρ {rho}," in text and f"│ ρ {rho}  a" in _status(app) and f"N 20  ρ {rho}  a" in text


def test_esc_during_a_refit_does_not_stop_it_and_its_result_is_drawn(monkeypatch):
    """Esc stops a sweep only: a refit's thread cannot be interrupted, and cancelling its worker
    left every panel on the old reservoir while the lab held the new one."""
    async def check(app, pilot):
        lab = app.engine
        finish = await _press_r_and_hold_its_fit(monkeypatch, pilot)
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert "fitting…" in _status(app)  # still: the fit goes on, and the status says so
        finish.set()
        await wait_for(pilot, lambda: lab.options.spectral_radius == 1.15 and idle(app))
        await wait_for(pilot, lambda: _shows_rho(app, "1.15"), timeout=5, what="the new reservoir drawn")
        assert "fitting" not in _status(app) and not lab.pending

    drive(check)


def test_export_waits_for_a_refit_and_then_writes_the_new_fit(monkeypatch, tmp_path):
    """x during a refit wrote the fit before it, with the status saying "fitting…"."""
    async def check(app, pilot):
        lab = app.engine
        finish = await _press_r_and_hold_its_fit(monkeypatch, pilot)
        await pilot.press("x")
        await pilot.pause(0.1)
        assert isinstance(app.screen, EsnScreen)  # no dialog
        assert any(n.message == "busy fitting…: wait a moment" for n in app._notifications)
        finish.set()
        await wait_for(pilot, lambda: lab.options.spectral_radius == 1.15 and idle(app))
        await pilot.press("x")
        app.screen.query_one("#prompt-input").value = str(tmp_path / "new.npz")
        await pilot.press("enter")
        await wait_for(pilot, (tmp_path / "new.npz").is_file)
        with np.load(tmp_path / "new.npz") as data:
            assert json.loads(str(data["meta"]))["options"]["spectral_radius"] == 1.15

    drive(check)


def test_a_result_stored_after_the_workers_last_redraw_is_drawn(monkeypatch):
    """r, w at once, then Esc: both workers are cancelled (and redrawn) while the refit's thread is
    still computing; the result it stores after them must be drawn all the same."""
    async def check(app, pilot):
        lab, screen = app.engine, app.screen
        finish = await _press_r_and_hold_its_fit(monkeypatch, pilot)
        await pilot.press("w", "escape")
        await pilot.pause(0.2)
        finish.set()
        await wait_for(pilot, lambda: lab.options.spectral_radius == 1.15 and idle(app))
        await wait_for(pilot, lambda: _shows_rho(app, "1.15"), timeout=5, what="the new reservoir drawn")
        assert lab.sweep_result is None  # the sweep was stopped before it began
        lab.configure(seed=7)  # a result stored by no worker at all: drawn within a tick
        await wait_for(pilot, lambda: "seed 7" in _status(app), timeout=5, what="seed 7 drawn")
        np.testing.assert_array_equal(screen.query_one("#esn-eigen", ComplexPlane).points("W"),
                                      lab.result.eigenvalues)

    drive(check)


@pytest.mark.parametrize("key", ["w", "W", "escape"])
def test_a_refit_waiting_for_a_stopping_sweep_is_never_lost(monkeypatch, key):
    """r during a sweep: the sweep stops after its point, then the refit runs. w, W or Esc
    meanwhile cancelled the waiting refit, and the change was silently forgotten."""
    async def check(app, pilot):
        lab = app.engine
        finish = await _press_W_and_hold_its_second_point(monkeypatch, pilot)
        first = lab.sweep_result
        await pilot.press("r")
        await wait_for(pilot, lambda: "stopping sweep…, then fitting" in _status(app), timeout=5,
                       what="the refit said to wait")
        await pilot.press(key)
        await pilot.pause(0.2)
        queued = {"w": " and sweeping ρ", "W": " and sweeping a", "escape": " │"}[key]
        assert f"stopping sweep…, then fitting{queued}" in _status(app)
        finish.set()
        await wait_for(pilot, lambda: lab.options.spectral_radius == 1.15 and idle(app)
                       and (lab.sweep_result is not first) == (key != "escape")
                       and lab.sweep_result.status != "running", what="the refit applied (and the sweep run)")
        assert not lab.pending and _shows_rho(app, "1.15")
        assert first.status == "stopped" and first.done == 2
        if key == "escape":
            assert lab.sweep_result is first
        else:  # the sweep asked for runs after the refit, from its options
            assert lab.sweep_result is not first and lab.sweep_result.base.spectral_radius == 1.15
            assert lab.sweep_result.name == {"w": "spectral_radius", "W": "leak_rate"}[key]
            assert lab.sweep_result.status == "completed"

    drive(check)


@pytest.mark.parametrize("cancel", [False, True])
def test_w_while_a_sweep_stops_starts_the_new_sweep_after_it(monkeypatch, cancel):
    """W, Esc, then w while the first sweep finishes its point: the ρ sweep waits for it and says
    so (it was swallowed without a word); Esc cancels the waiting sweep."""
    async def check(app, pilot):
        lab = app.engine
        finish = await _press_W_and_hold_its_second_point(monkeypatch, pilot)
        first = lab.sweep_result
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert _status(app).startswith("stopping sweep… │ ")
        await pilot.press("w")
        await pilot.pause(0.1)
        assert _status(app).startswith("stopping sweep…, then sweeping ρ │ ")
        if cancel:
            await pilot.press("escape")
            await pilot.pause(0.1)
            assert _status(app).startswith("stopping sweep… │ ")
        finish.set()
        await wait_for(pilot, lambda: first.status == "stopped" and idle(app))
        await pilot.pause(0.3)  # a tick: the waiting sweep starts now
        await wait_for(pilot, lambda: idle(app) and lab.sweep_result.status != "running"
                       and (lab.sweep_result is first) == cancel)
        assert first.done == 2
        if cancel:
            assert lab.sweep_result is first and "sweep a stopped 2/20" in screen_text(app)
        else:
            sweep = lab.sweep_result
            assert sweep.name == "spectral_radius" and sweep.status == "completed" and sweep.done == 20
            assert "sweep ρ 20/20: best" in screen_text(app)

    drive(check)


def test_a_sweep_waiting_behind_a_failing_refit_is_dropped_and_the_error_shown(monkeypatch):
    """W running, options that parse but cannot be fitted, then w: the sweep waited for the refit
    and then cancelled it (the group is exclusive), so the error never showed and the sweep ran
    on the old options."""
    async def check(app, pilot):
        lab, screen = app.engine, app.screen
        finish = await _press_W_and_hold_its_second_point(monkeypatch, pilot)
        first = lab.sweep_result
        await pilot.press("e")
        app.screen.query_one("#prompt-input").value = "units=300 connectivity=1e-5 seed=1"  # W nilpotent: no radius
        await pilot.press("enter")
        await pilot.pause(0.1)
        await pilot.press("w")
        await pilot.pause(0.1)
        assert "then fitting and sweeping ρ" in _status(app)
        finish.set()
        await wait_for(pilot, lambda: idle(app) and screen.message is not None, what="the refit's error")
        await pilot.pause(0.3)  # ticks: nothing more starts
        assert idle(app) and lab.sweep_result is first and first.status == "stopped"
        status = _status(app)
        assert status.startswith("error: ") and "(the sweep of ρ waiting for it is dropped)" in screen.message.plain
        assert any("(the sweep of ρ waiting for it is dropped)" in n.message for n in app._notifications)  # whole
        assert lab.options.units == 20  # the old reservoir stays

    drive(check)


def test_a_queued_sweep_waits_for_a_failed_refits_error_to_be_handled():
    """The race behind a flaky failure under load: a refit's worker turns ERROR (and leaves the
    worker list) before its state-change message is handled; a tick in between started the queued
    sweep on the options that had just failed, and the error then dropped nothing."""
    from types import SimpleNamespace

    from textual.worker import WorkerState

    class FailedRefit:  # what the screen reads of a worker (hashable, as workers are)
        group, state, is_cancelled = "esn", WorkerState.ERROR, False
        error = UserError("the reservoir has no nonzero eigenvalue")

    async def check(app, pilot):
        screen = app.screen
        await wait_for(pilot, lambda: idle(app))
        failed = FailedRefit()
        screen._refits_unsettled.add(failed)
        screen._queued_sweep, before = "spectral_radius", screen._sweep_worker
        screen._tick()  # the error's message not handled yet: the sweep waits
        assert screen._queued_sweep == "spectral_radius" and screen._sweep_worker is before
        screen.on_worker_state_changed(SimpleNamespace(worker=failed, state=WorkerState.ERROR))
        assert "(the sweep of ρ waiting for it is dropped)" in screen.message.plain
        screen._tick()
        assert screen._queued_sweep is None and screen._sweep_worker is before and not screen._refits_unsettled

    drive(check)


def test_w_during_a_refit_sweeps_after_it_from_its_options(monkeypatch):
    """w while r's refit computes: starting the sweep would cancel the refit; it waits for it."""
    async def check(app, pilot):
        lab = app.engine
        finish = await _queue_w_behind_a_held_refit(monkeypatch, app, pilot)
        finish.set()
        await wait_for(pilot, lambda: lab.sweep_result is not None and lab.sweep_result.status == "completed"
                       and idle(app), what="the refit, then the sweep")
        assert lab.options.spectral_radius == 1.15 and lab.sweep_result.base.spectral_radius == 1.15

    drive(check)


def test_w_again_drops_the_sweep_waiting_for_a_refit(monkeypatch):
    """w during a refit queues the sweep; w again did nothing (the help says it stops it), and
    the sweep ran after the fit."""
    async def check(app, pilot):
        lab = app.engine
        finish = await _queue_w_behind_a_held_refit(monkeypatch, app, pilot)
        await pilot.press("w")
        await pilot.pause(0.1)
        assert _status(app).startswith("fitting… │ ")
        finish.set()
        await wait_for(pilot, lambda: idle(app) and lab.options.spectral_radius == 1.15, what="the refit")
        await pilot.pause(0.3)  # ticks: no sweep starts
        assert lab.sweep_result is None and idle(app)

    drive(check)


def test_the_options_dialog_keeps_its_field_and_error_in_view_at_80x24():
    """At 80x24 the list of options pushed the field's error and the hint below the screen (Enter
    seemed to do nothing), and long descriptions wrapped under the names."""
    async def check(app, pilot):
        await pilot.press("e")
        await pilot.pause()
        field = app.screen.query_one("#prompt-input")
        assert app.focused is field
        await pilot.press(*"units=0", "enter")
        await pilot.pause()
        error = app.screen.query_one("#prompt-error")
        assert str(error.render()).startswith("units must be an integer in [1, 1000]")
        assert error.region.y + error.region.height <= 24 and error.region.height > 0
        table = app.screen.query_one("#options-table")
        assert table.size.height == len(app.engine.options.__dict__)  # one line an option, none wrapped
        # each with the values it takes, as the seq2seq and treebank labs' dialogs list them, and none cut
        # ("... or of x_t alone (fal…", "... from the end of the training p…")
        rows = [line for line in screen_text(app).splitlines() if re.search(r"│ +[a-z_]+  \S", line)]
        assert len(rows) == len(DEFAULTS) and "…" not in "".join(rows), rows  # as the terminal shows them
        for row in (r"units +20 +\[1, 1000\]  reservoir units N", r"leak_rate +0\.3 +\(0, 1\]  a: x_t = ",
                    r"readout_input +true +true, false  readout of \[x_t; u_t\] \(true\) or x_t",
                    r"seed +0 +\[0, 2\^63-1\]  the reservoir's random draws",
                    r"generate +60 +\[1, 10000\]  free-run steps after the training part"):
            assert any(re.search(row, line) for line in rows), (row, rows)
        scroll = app.screen.query_one("#options-scroll")
        await pilot.resize_terminal(60, 20)  # the smallest: the list scrolls, the field and its error stay
        await pilot.pause()
        assert error.region.y + error.region.height <= 20 and error.region.height > 0
        await pilot.press("pagedown")
        await pilot.pause()
        assert scroll.scroll_y > 0 and app.focused is field

    drive(check, size=(80, 24))


def test_a_long_error_typed_at_80x24_shows_whole_with_the_hint_under_it():
    """The list was fitted to the dialog from Enter's handler, before the error's new lines were laid
    out: a refusal of three lines typed at 80x24 showed two, the hint below the screen."""
    async def check(app, pilot):
        await pilot.press("e")
        await pilot.pause()
        await pilot.press("end", "ctrl+u", *"test=1990", "enter")  # typed, as in a terminal
        await pilot.pause()
        await pilot.pause()
        dialog, error = app.screen.query_one(".dialog"), app.screen.query_one("#prompt-error")
        assert str(error.render()).startswith("test=1990 and warmup=20 leave no step to fit the readout on")
        assert error.region.height == 3  # (74 columns)
        hint = app.screen.query_one("#prompt-hint")
        assert hint.region.y == error.region.bottom and hint.region.bottom < dialog.region.bottom <= 24
        assert "raise length" in screen_text(app) and "PgUp/PgDn scroll" in screen_text(app)

    drive(check, size=(80, 24), length=2000)


def test_a_change_whose_refit_was_cancelled_before_it_applied_is_applied_by_the_tick():
    """A refit worker cancelled while it waits (as a newer exclusive worker does) gives up without
    applying: the tick sees the change still pending with no worker to apply it, and starts one."""
    async def check(app, pilot):
        lab, screen = app.engine, app.screen
        with lab.lock:  # the refit's worker waits for the lock
            await pilot.press("r")
            await pilot.pause(0.1)
            [refit] = [w for w in screen.workers if w.group == "esn"]
            refit.cancel()
            await pilot.pause(0.05)
        await wait_for(pilot, lambda: lab.options.spectral_radius == 1.15 and not lab.pending and idle(app),
                       what="the change applied")
        assert _shows_rho(app, "1.15")

    drive(check)


def test_the_labs_option_text_and_messages_read_the_same_in_every_lab():
    """One parser and one wording for the ESN and treebank dialogs (and seq2seq's options): a name
    given twice is refused, not silently the last; 1e9 is quoted as a number; the largest seed
    as 2^63-1, not nineteen digits."""
    from rnnlab.labs import seq2seq, tree
    from rnnlab.tui.labs.tree import parse_assignments

    with pytest.raises(UserError, match="^units is given twice: give it once$"):
        parse_option_text("units=100 units=200")
    with pytest.raises(UserError, match="^hidden_size is given twice"):
        parse_assignments("hidden_size=8, hidden_size=9")
    messages = []
    for open_lab, options in ((EsnLab.open, {"units": 1e9}), (tree.TreeLab.open, {"hidden_size": 1e9}),
                              (seq2seq.Seq2SeqLab.open, {"hidden_size": 1e9})):
        with pytest.raises(UserError) as info:
            open_lab(options)
        messages.append(str(info.value))
    assert messages == ["units must be an integer in [1, 1000], got 1e+09",
                        "hidden_size must be an integer in [1, 256], got 1e+09",
                        "hidden_size must be an integer in [1, 512], got 1e+09"]  # seq2seq's said "hidden_size: must"
    with pytest.raises(UserError, match=r"^seed must be an integer in \[0, 2\^63-1\], got -1$"):
        tree.TreeLab.open({"seed": -1})
    # digits other than ASCII's stay text, as the CLI's options refuse them (int("١٢") is 12); a whole
    # number written 1e2 is 100, as in a spec (--set model.hidden_size=1e2): the labs refused it
    assert parse_option_text("units=١٢") == {"units": "١٢"}
    with pytest.raises(UserError, match=r"^units must be an integer in \[1, 1000\], got '١٢'$"):
        EsnLab.open(parse_option_text("units=١٢"))
    assert check_int("units", parse_option_text("units=1e2")["units"], 1, 1000) == 100
    with pytest.raises(UserError, match=r"^units must be an integer in \[1, 1000\], got 100.5$"):
        EsnLab.open(parse_option_text("units=100.5"))


def test_a_nudge_at_the_end_of_its_range_says_so(monkeypatch):
    """A at leak rate 1 (its largest) did nothing and said nothing."""
    async def check(app, pilot):
        notices = []
        monkeypatch.setattr(app.screen, "notify", lambda message, **kw: notices.append(message))
        await pilot.press("A")
        await wait_for(pilot, lambda: idle(app))
        assert app.engine.requested.leak_rate == 1.0 and notices == ["a is at its largest value for this key, 1"]

    drive(check, leak_rate=1.0)


def test_p_says_a_screenshot_it_cannot_save_and_the_lab_goes_on(monkeypatch):
    """An unwritable working directory ended the architecture labs with a traceback (code review)."""
    from conftest import notices_of, refuse_screenshots

    async def check(app, pilot):
        notices = notices_of(app.screen)
        refuse_screenshots(monkeypatch, app)
        await pilot.press("p")
        assert notices == [("cannot save the screenshot: Permission denied", "error")]
        assert app.is_running

    drive(check)


def test_a_constant_series_forecast_perfectly_has_no_r2_and_the_largest_seed_wraps():
    """tau = 1 settles to 1.0: a perfect forecast read "R² 0.000000" (1 - noise / noise); n at the
    largest seed said "got 9223372036854775808", a value the user never typed."""
    from rnnlab.labs.esn import Scores
    from rnnlab.spec import SEED_MAX

    truth = np.full(400, 1.0) + np.finfo(np.float64).eps * (np.arange(400) % 3)  # rounding's wobble
    scores = Scores.of(truth, np.full(400, 1.0))
    assert math.isnan(scores.r2) and scores.rmse < 1e-15
    assert Scores.of(np.sin(np.arange(400.0)), np.sin(np.arange(400.0))).r2 == 1.0
    lab = small(seed=SEED_MAX)
    assert lab.new_seed() == 0


@pytest.mark.parametrize("size", [(120, 40), (160, 50)])
def test_the_values_panel_never_wraps_a_label_away_from_its_value(size):
    """At 120x40 the options wrapped at any space: "conn" ended a line, its 0.1 began the next (and
    "seed" / "123456", "test" / "4000" with larger values)."""
    async def check(app, pilot):
        info = app.screen.query_one("#esn-info", Static)
        lines = [info.render_line(y).text.rstrip() for y in range(info.size.height)]
        o = app.engine.options
        for item in (f"N {o.units}", "ρ 1.25", "a 0.3", "input ×0.25", "conn 0.1", "ridge 1e-07", "readout [x; u]",
                     "seed 123456", "τ 17", f"train {app.engine.n_train} (warm-up 20)", "test 50", "free run 60"):
            assert any(item in line for line in lines), (item, lines)
        assert max(len(line) for line in lines) <= info.content_region.width

    drive(check, size=size, seed=123456, input_scaling=0.25, ridge=1e-7)


@pytest.mark.parametrize("size, shown", [
    ((160, 50), " train t < 15999 · test t 15999-19998 → s(16000)..s(19999)"),
    ((120, 40), " train t < 15999 · test t 15999-19998"),
    ((100, 30), " test t 15999-19998"),
    ((80, 24), " test t ≥ 15999"),
    ((70, 22), " test…"),
])
def test_the_time_legend_of_a_long_series_drops_whole_parts_then_ends_in_an_ellipsis(size, shown):
    """Under the heatmap in one row: at length 20000 the legend wrapped, and the row showed its
    first line alone, cut short without a word (" train t < 15999" at 80x24)."""
    async def check(app, pilot):
        legend = app.screen.query_one("#esn-legend-text", Static)
        assert legend.render_line(0).text.rstrip() == shown

    drive(check, size=size, length=20000, test=4000)


def test_a_threshold_is_written_as_the_axis_and_the_status_line_write_it():
    """threshold=1000000: the error plot's label said "threshold 1000000" beside its axis' "1e+06" (and
    the status line's "<1e+06"); the options dialog listed it as 1000000.0 and readout_input as True,
    neither as its text is typed."""
    async def check(app, pilot):
        plot = app.screen.query_one("#esn-error", LinePlot)
        rows = [plot.render_line(y).text for y in range(plot.size.height)]
        assert any("1e+06┤" in row and "threshold 1e+06" in row for row in rows), rows
        assert "<1e+06" in app.screen.query_one("#esn-status").render().plain
        await pilot.press("e")
        await pilot.pause()
        table = app.screen.query_one("#options-table", Static).render().plain
        assert re.search(r"threshold +1e\+06 ", table) and re.search(r"readout_input +true ", table), table
        assert "1000000" not in table + "".join(rows)

    drive(check, threshold=1000000)
