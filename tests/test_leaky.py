"""The leaky-integrator RNN (cell ``leaky``): kernels against the float64 reference, gradient checks,
the time constants (a = sigmoid(alpha) in (0, 1), their initial spread, fixed ones staying fixed
through training and resuming), the spec fields and the lab's view of it."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from rnnlab import gradcheck
from rnnlab.errors import SpecError
from rnnlab.layers.leaky import DEFAULT_TIME_CONSTANTS, LeakyRNN
from rnnlab.reference import leaky as reference
from rnnlab.spec import load_preset
from rnnlab.train import RunDir, Trainer, train_run
from rnnlab.train.rundir import CHECKPOINT

T, B, I, H = 7, 3, 4, 5
TOL = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-10, atol=1e-12)}


def _problem(dtype, num_layers, bidirectional, bias=True, seed=0):
    layer = LeakyRNN(I, H, num_layers=num_layers, bidirectional=bidirectional, bias=bias, dtype=dtype, seed=seed,
                     time_constants=(1.5, 20.0))
    rng = np.random.default_rng(seed + 1)
    D = 2 if bidirectional else 1
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = rng.uniform(-1, 1, (num_layers * D, B, H)).astype(dtype)
    dy = rng.standard_normal((T, B, D * H)).astype(dtype)
    dh_n = rng.standard_normal((num_layers * D, B, H)).astype(dtype)
    return layer, x, h0, dy, dh_n


# ------------------------------------------------------------------------------------------------
# kernels vs the float64 reference
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("truncate", [None, 3], ids=["full", "trunc3"])
@pytest.mark.parametrize("num_layers, bidirectional, bias", [(1, False, True), (2, True, True), (2, False, False)],
                         ids=["l1", "l2-bi", "l2-nobias"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forward_backward_match_the_reference(dtype, num_layers, bidirectional, bias, truncate):
    layer, x, h0, dy, dh_n = _problem(dtype, num_layers, bidirectional, bias)
    params = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    tol = TOL[dtype]
    y, h_n, trace = layer.forward(x, h0)
    y_ref, h_n_ref, records = reference.forward(params, x, h0, num_layers=num_layers, bidirectional=bidirectional)
    assert y.dtype == np.dtype(dtype) and y.shape == (T, B, layer.num_directions * H)
    np.testing.assert_allclose(y, y_ref, **tol)
    np.testing.assert_allclose(h_n, h_n_ref, **tol)
    assert trace.names == ("h", "u", "a")
    for (lyr, d), rec in records.items():
        np.testing.assert_allclose(trace.get("h", lyr, d), rec["h"], **tol)
        np.testing.assert_allclose(trace.get("u", lyr, d), rec["u"], **tol)
        np.testing.assert_allclose(trace.get("a", lyr, d), np.broadcast_to(rec["a"], (T, B, H)), **tol)

    grads = layer.backward(trace, dy, dh_n, truncate=truncate)
    ref = reference.backward(params, x, h0, num_layers=num_layers, bidirectional=bidirectional, dy=dy, dh_n=dh_n,
                             truncate=truncate)
    assert list(grads) == reference.param_names(num_layers, bidirectional, bias) + ["input", "h0"]
    for name, g in grads.items():
        assert g.dtype == np.dtype(dtype), name
        np.testing.assert_allclose(g, ref[name], err_msg=name, **tol)
    for (lyr, d), dh in ref["dh"].items():
        np.testing.assert_allclose(trace.get("dh", lyr, d), dh, **tol)


def test_truncation_cuts_the_gradient_through_the_leak_too():
    """With W_hh = 0 the only path between steps is the leak (1 - a): truncate=k must still cut it."""
    layer, x, h0, dy, _ = _problem("float64", 1, False)
    layer.parameters()["weight_hh_l0"][...] = 0.0
    _, _, trace = layer.forward(x, h0)
    full = layer.backward(trace, dy)
    cut = layer.backward(trace, dy, truncate=3)
    dy_first = dy.copy()
    dy_first[3:] = 0.0  # steps 0-2 are the first chunk: only their losses reach h0 when cut
    first_only = layer.backward(trace, dy_first)
    assert np.abs(full["h0"] - first_only["h0"]).max() > 1e-3  # the leak alone carries later losses to h0
    np.testing.assert_allclose(cut["h0"], first_only["h0"], rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------------------------------------
# finite differences
# ------------------------------------------------------------------------------------------------

def test_gradient_checks_are_registered_under_their_own_names_and_pass():
    for name in ("leaky", "leaky_deep_bidirectional", "leaky_no_bias", "leaky_truncated"):
        result = gradcheck.CHECKS[name]()
        assert result.ok and result.max_rel_err < 1e-6, result
    expected = set(LeakyRNN(3, 4, num_layers=2, bidirectional=True).state_dict()) | {"input", "h0"}
    assert set(gradcheck.CHECKS["leaky_deep_bidirectional"]().errors) == expected  # alphas included


@pytest.mark.parametrize("check, key", [("leaky", "alpha_l0"), ("leaky_truncated", "weight_hh_l1")])
def test_a_broken_gradient_is_caught(monkeypatch, check, key):
    original = LeakyRNN.backward

    def broken(self, *args, **kwargs):
        grads = original(self, *args, **kwargs)
        grads[key] = grads[key] * 1.001
        return grads

    monkeypatch.setattr(LeakyRNN, "backward", broken)
    result = gradcheck.CHECKS[check]()
    assert not result.ok and result.worst == key


def test_full_bptt_fails_the_truncated_check():
    """leaky_truncated really differentiates the chunked loss: full BPTT's gradient does not pass it."""
    from rnnlab.checks.leaky import check_leaky

    assert check_leaky("x", num_layers=1, truncate=2, T=5).ok
    original = LeakyRNN.backward
    try:
        LeakyRNN.backward = lambda self, trace, dy, dstate=None, truncate=None: original(self, trace, dy, dstate)
        assert not check_leaky("x", num_layers=1, truncate=2, T=5).ok
    finally:
        LeakyRNN.backward = original


# ------------------------------------------------------------------------------------------------
# time constants
# ------------------------------------------------------------------------------------------------

def test_rates_stay_strictly_between_0_and_1_whatever_alpha():
    layer = LeakyRNN(2, 4, dtype="float64", seed=0)
    layer.parameters()["alpha_l0"][...] = [-30.0, -3.0, 3.0, 30.0]
    a = layer.rates()
    assert np.all((a > 0) & (a < 1)) and np.all(np.diff(a) > 0)
    np.testing.assert_allclose(a, 1 / (1 + np.exp(-np.array([-30.0, -3.0, 3.0, 30.0]))), rtol=1e-12)
    _, _, trace = layer.forward(np.zeros((3, 1, 2)))
    np.testing.assert_array_equal(trace.get("a")[2, 0], a)  # the record is the rate the kernel used


def test_initial_time_constants_spread_log_uniformly_from_tau_min_to_tau_max():
    layer = LeakyRNN(3, 6, num_layers=2, bidirectional=True, dtype="float64", seed=0, time_constants=(2.0, 64.0))
    for lyr in range(2):
        for d in range(2):
            np.testing.assert_allclose(layer.time_constants_of(lyr, d), [2, 4, 8, 16, 32, 64], rtol=1e-12)
    assert LeakyRNN(3, 6, seed=0).time_constants == DEFAULT_TIME_CONSTANTS
    default = LeakyRNN(3, 6, dtype="float64").time_constants_of()
    assert default[0] == pytest.approx(DEFAULT_TIME_CONSTANTS[0]) and default[-1] == pytest.approx(DEFAULT_TIME_CONSTANTS[1])
    assert LeakyRNN(3, 1, dtype="float64", time_constants=(4.0, 16.0)).time_constants_of()[0] == pytest.approx(8.0)
    # one unit's geometric mean of two huge ones: their product overflowed to an infinite tau, alpha -inf
    huge = LeakyRNN(2, 1, dtype="float64", time_constants=(1e155, 1e155))
    assert huge.time_constants_of()[0] == pytest.approx(1e155) and np.isfinite(huge.parameters()["alpha_l0"]).all()
    # the weights are the RNN's draw with the same seed, whatever the time constants
    from rnnlab.layers import RNN

    rnn = RNN(3, 6, num_layers=2, bidirectional=True, seed=5).state_dict()
    leaky = LeakyRNN(3, 6, num_layers=2, bidirectional=True, seed=5, time_constants=(3.0, 9.0)).state_dict()
    assert [k for k in leaky if not k.startswith("alpha")] == list(rnn)
    for name, value in rnn.items():
        np.testing.assert_array_equal(leaky[name], value, err_msg=name)


def test_time_constants_are_numbers_of_any_kind():
    from fractions import Fraction

    for value in ((Fraction(5, 2), 30), np.array([2.5, 30.0]), (np.float32(2.5), np.int64(30))):
        assert LeakyRNN(3, 4, time_constants=value).time_constants == (2.5, 30.0)


@pytest.mark.parametrize("value", [(1.0, 5.0), (5.0, 2.0), (0.5, 2.0), (2.0, float("inf")), (3.0,), "slow",
                                   "25", ("2", "5"), (True, 5.0)])  # "25" was read as the pair (2.0, 5.0)
def test_bad_time_constants_are_refused_by_name(value):
    with pytest.raises(ValueError, match="time_constants"):
        LeakyRNN(3, 4, time_constants=value)


def test_infinite_time_constants_are_said_to_be_infinite():
    """(2, inf) was told it must satisfy 1 < tau_min <= tau_max, which it does."""
    with pytest.raises(ValueError, match=r"time_constants must be finite numbers of steps, got \(2.0, inf\)"):
        LeakyRNN(3, 4, time_constants=(2.0, float("inf")))


def test_learn_time_constants_must_be_a_bool():
    with pytest.raises(ValueError, match="learn_time_constants"):
        LeakyRNN(3, 4, learn_time_constants="no")


def _spec(learn_tau: bool, **overrides):
    return load_preset("multiscale-leaky").with_overrides({
        "model.learn_tau": learn_tau, "model.hidden_size": 8, "task.length": 30, "train.batch_size": 4,
        "train.steps": 6, "train.eval_every": 3, "train.checkpoint_every": 3, **overrides})


@pytest.mark.parametrize("learn_tau", [False, True])
def test_fixed_time_constants_stay_fixed_through_training(learn_tau):
    trainer = Trainer(_spec(learn_tau))
    model = trainer.model
    before = model.state_dict()
    assert ("alpha_l0" in model.parameters()) == learn_tau and model.frozen == (() if learn_tau else ("alpha_l0",))
    assert "alpha_l0" in before and model.num_parameters == sum(v.size for v in before.values())
    for _ in range(6):
        trainer.train_step()
    after = model.state_dict()
    assert not np.array_equal(before["weight_hh_l0"], after["weight_hh_l0"])
    assert np.array_equal(before["alpha_l0"], after["alpha_l0"]) != learn_tau
    # the gradient is still computed for a frozen alpha (it is just not applied)
    batch = trainer.task.batch(4, 0, 0)
    result, _, trace = trainer.compute(batch)
    assert np.abs(model.backward(trace, result.grad)["alpha_l0"]).max() > 0


def test_fixed_time_constants_resume_bit_for_bit(tmp_path):
    spec = _spec(False)
    straight = RunDir.create(tmp_path / "straight", spec)
    train_run(straight, Trainer(spec), 6)
    run = RunDir.create(tmp_path / "stopped", spec)
    calls = iter(range(1000))
    train_run(run, Trainer(spec), 6, should_stop=lambda: next(calls) >= 3)
    reopened = RunDir.open(run.path)
    trainer = Trainer(reopened.spec)
    reopened.resume(trainer)
    assert trainer.step == 3
    train_run(reopened, trainer, 6)
    a, b = (np.load(p / CHECKPOINT) for p in (straight.path, reopened.path))
    assert "param/alpha_l0" not in a.files  # set by the spec, not trained: not in the checkpoint
    for key in a.files:
        if key not in ("elapsed", "meta"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # a state dict with the alpha replaces it; one without keeps it
    model = trainer.model
    state = model.state_dict()
    state["alpha_l0"] = state["alpha_l0"] + 1
    model.load_state_dict(state)
    np.testing.assert_array_equal(model.state_dict()["alpha_l0"], state["alpha_l0"])
    kept = state.pop("alpha_l0")
    model.load_state_dict(state)
    np.testing.assert_array_equal(model.state_dict()["alpha_l0"], kept)


def test_spec_builds_the_layer_from_its_fields():
    spec = _spec(False, **{"model.tau_min": 2.0, "model.tau_max": 8.0, "model.num_layers": 2})
    rnn = Trainer(spec).model.rnn
    assert isinstance(rnn, LeakyRNN) and rnn.time_constants == (2.0, 8.0) and not rnn.learn_time_constants
    np.testing.assert_allclose(rnn.time_constants_of(1), np.geomspace(2.0, 8.0, 8), rtol=1e-6)
    assert "learn_tau = false" in spec.to_toml() and "tau_max = 8.0" in spec.to_toml()
    gru = spec.with_overrides({"model.cell": "gru"})  # the leaky cell's fields back to their defaults, as
    assert "tau_min" not in gru.to_toml()  # another optimizer's are
    with pytest.raises(SpecError) as info:  # given with the cell, they are refused
        spec.with_overrides({"model.cell": "gru", "model.tau_min": 3.0})
    assert info.value.field == "model.tau_min"


# ------------------------------------------------------------------------------------------------
# the lab
# ------------------------------------------------------------------------------------------------

def test_headless_lab_records_exports_and_analyses_the_leaky_cell(tmp_path):
    from rnnlab import analysis
    from rnnlab.lab import Lab

    lab = Lab(_spec(True))
    assert lab.trace.mode == "Leaky" and lab.unit_decays() is None  # not linear in h: a full Jacobian
    grads = lab.run_backward()
    assert "alpha_l0" in grads and lab.trace.has_gradients
    norms = lab.jacobian_norms()
    assert norms["norm"].shape == (1, lab.steps) and np.all(norms["norm"] > 0)
    per_step = analysis.step_weight_grads(lab.trace)
    np.testing.assert_allclose(per_step.sum(axis=0), grads["weight_hh_l0"], rtol=1e-4, atol=1e-6)
    with np.load(lab.export_trace(tmp_path / "trace.npz")) as saved:
        assert {"h", "u", "a", "dh"} <= set(saved.files)
        np.testing.assert_allclose(saved["a"][0, 0, 0], lab.model.rnn.rates(), rtol=1e-6)


def test_lab_shows_the_candidate_signed_the_rate_as_a_gate_and_the_time_constants():
    from rnnlab.tui.app import LabApp
    from rnnlab.tui.panels import DecayPlane, record_kind

    assert record_kind("u", "Leaky") == "signed" and record_kind("a", "Leaky") == "gate"

    async def main():
        app = LabApp("multiscale-leaky")
        async with app.run_test(size=(160, 50)) as pilot:
            deadline = time.monotonic() + 60
            while app.lab is None:
                assert time.monotonic() < deadline, "the lab did not open"
                await pilot.pause(0.05)
            await pilot.pause()
            lab = app.lab
            assert lab.trace.mode == "Leaky"
            for name in ("h", "u", "a"):
                assert app.query_one(f"#map-{name}")
            assert app.query_one("#map-u").title.startswith("candidate u_t")
            plane = app.query_one(DecayPlane)
            tau = lab.model.rnn.time_constants_of()
            assert plane.display and "tau 1.25..50" in plane.title  # the time constants, whole
            np.testing.assert_allclose(plane.points("1−a").real, 1 - 1 / tau, rtol=1e-5)
            await pilot.press("right", "right")
            explained = str(app.query_one("#explain").render())
            assert "a = σ(α)" in explained and "h_t = (1 − a)·h_{t-1} + a·u_t" in explained
            assert f"τ = 1/a = {tau[0]:.3g} steps" in explained

    asyncio.run(main())
