"""The Jordan network (output-to-hidden recurrence): kernels against the float64 reference in both
modes (teacher forcing, running free with values or softmax fed back), gradient checks, and what
teacher forcing means: no gradient crosses from one step to the next."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab import gradcheck
from rnnlab.layers.jordan import JordanRNN, one_hot
from rnnlab.reference import jordan as reference

T, B, I, H, O = 6, 10, 3, 5, 4  # B > 8: the per-step products take the BLAS path too
TOL = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-10, atol=1e-12)}
MODES = ["teacher", "free-values", "free-softmax"]


def _problem(dtype, mode, bias=True, batch=B):
    net = JordanRNN(I, H, O, bias=bias, feedback="softmax" if mode == "free-softmax" else "values", dtype=dtype,
                    seed=1)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, batch, I)).astype(dtype)
    y0 = rng.uniform(-1, 1, (batch, O)).astype(dtype)
    teacher = rng.standard_normal((T, batch, O)).astype(dtype) if mode == "teacher" else None
    d_out = rng.standard_normal((T, batch, O)).astype(dtype)
    return net, x, y0, teacher, d_out


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forward_backward_match_the_reference(dtype, mode, bias):
    net, x, y0, teacher, d_out = _problem(dtype, mode, bias)
    params = {k: v.astype(np.float64) for k, v in net.state_dict().items()}
    softmax = mode == "free-softmax"
    tol = TOL[dtype]
    out, f_n, trace = net.forward(x, y0, teacher)
    out_ref, rec = reference.forward(params, x, y0, teacher, softmax)
    assert out.dtype == np.dtype(dtype) and out.shape == (T, B, O)
    np.testing.assert_allclose(out, out_ref, **tol)
    np.testing.assert_allclose(trace.get("h"), rec["h"], **tol)
    np.testing.assert_allclose(trace.get("f"), rec["f"], **tol)
    np.testing.assert_allclose(trace.get("y"), out, **tol)
    grads = net.backward(trace, d_out)
    ref = reference.backward(params, x, y0, teacher, softmax, d_out)
    assert list(grads) == reference.param_names(bias) + ["input", "y0"]
    for name, g in grads.items():
        assert g.dtype == np.dtype(dtype), name
        np.testing.assert_allclose(g, ref[name], err_msg=name, **tol)
    assert trace.has_gradients
    np.testing.assert_allclose(trace.get("dh")[-1], d_out[-1] @ params["readout.weight"], **tol)


def test_what_is_fed_back():
    net, x, y0, teacher, _ = _problem("float64", "teacher")
    out, f_n, trace = net.forward(x, y0, teacher)
    f = trace.get("f")
    np.testing.assert_array_equal(f[0], y0)
    np.testing.assert_array_equal(f[1:], teacher[:-1])  # the previous TARGET, not the output
    np.testing.assert_array_equal(f_n, teacher[-1])
    out, f_n, trace = net.forward(x, y0)  # running free: its own previous output
    np.testing.assert_array_equal(trace.get("f")[1:], out[:-1])
    np.testing.assert_array_equal(f_n, out[-1])
    soft = JordanRNN(I, H, O, feedback="softmax", dtype="float64", seed=1)
    out, f_n, trace = soft.forward(x, y0)
    p = np.exp(out - out.max(axis=2, keepdims=True))
    np.testing.assert_allclose(trace.get("f")[1:], (p / p.sum(axis=2, keepdims=True))[:-1], rtol=1e-12)


def test_teacher_forcing_needs_no_backpropagation_through_time():
    """A loss at the last step reaches only the last step's input under teacher forcing; running
    free it reaches every earlier input through the fed-back outputs."""
    net, x, y0, teacher, _ = _problem("float64", "teacher")
    d_out = np.zeros((T, B, O))
    d_out[-1] = 1.0
    _, _, trace = net.forward(x, y0, teacher)
    forced = net.backward(trace, d_out)
    assert np.all(forced["input"][:-1] == 0) and np.abs(forced["input"][-1]).max() > 0
    assert np.all(forced["y0"] == 0)
    _, _, trace = net.forward(x, y0)
    free = net.backward(trace, d_out)
    assert np.abs(free["input"][0]).max() > 0 and np.abs(free["y0"]).max() > 0


@pytest.mark.parametrize("name", ["jordan", "jordan_no_bias", "jordan_free_running", "jordan_free_running_softmax"])
def test_gradient_checks_are_registered_and_pass(name):
    result = gradcheck.CHECKS[name]()
    assert result.ok and result.max_rel_err < 1e-6, result
    assert set(result.errors) >= {"weight_yh_l0", "readout.weight", "input", "y0"}


@pytest.mark.parametrize("check, key", [("jordan", "weight_yh_l0"), ("jordan_free_running_softmax", "y0")])
def test_a_broken_gradient_is_caught(monkeypatch, check, key):
    original = JordanRNN.backward

    def broken(self, *args, **kwargs):
        grads = original(self, *args, **kwargs)
        grads[key] = grads[key] * 1.001
        return grads

    monkeypatch.setattr(JordanRNN, "backward", broken)
    result = gradcheck.CHECKS[check]()
    assert not result.ok and result.worst == key


def test_bad_arguments_name_themselves():
    net, x, y0, teacher, d_out = _problem("float64", "teacher")
    with pytest.raises(ValueError, match="feedback"):
        JordanRNN(I, H, O, feedback="argmax")
    with pytest.raises(ValueError, match="output_size"):
        JordanRNN(I, H, 0)
    with pytest.raises(ValueError, match="teacher has shape"):
        net.forward(x, y0, teacher[:, :, :2])
    with pytest.raises(ValueError, match="y0 has shape"):
        net.forward(x, y0[:1])
    with pytest.raises(ValueError, match="input has dtype float32"):
        net.forward(x.astype(np.float32))
    _, _, trace = net.forward(x)
    with pytest.raises(ValueError, match="trace comes from another JordanRNN's forward"):
        JordanRNN(I, H, O, dtype="float64").backward(trace, d_out)
    with pytest.raises(ValueError, match="classes"):
        one_hot(np.array([[0, 4]]), 4)
    np.testing.assert_array_equal(one_hot(np.array([[1, 0]]), 3), [[[0, 1, 0], [1, 0, 0]]])


def test_a_teacher_of_class_ids_is_told_it_needs_one_hot_targets():
    """``net(x, None, np.zeros((T, B), int))`` said "teacher has dtype int64, but the layer is float32":
    the dtype is not the problem, the shape is (class ids instead of one-hot (T, B, O))."""
    net = JordanRNN(I, H, O, seed=0)
    x = np.zeros((4, 2, I), np.float32)
    ids = np.zeros((4, 2), int)
    with pytest.raises(ValueError) as info:
        net.forward(x, None, ids)
    assert str(info.value) == (f"teacher has shape (4, 2), expected (T, B, O) = (4, 2, {O}): the targets fed back, "
                               f"one-hot for classes (rnnlab.layers.jordan.one_hot(ids, {O}))")
    with pytest.raises(ValueError, match=r"^teacher has shape \(4, 2, 1\), expected \(T, B, O\)"):
        net.forward(x, None, ids[..., None].astype(np.float32))
    # the right shape but another dtype is the dtype's message, with the fix
    with pytest.raises(ValueError, match=r"^teacher has dtype int64, but the layer is float32 \(convert with "):
        net.forward(x, None, np.zeros((4, 2, O), np.int64))
    out, f_n, trace = net.forward(x, None, one_hot(ids, O))  # what the message says to do
    assert trace.teacher_forced and np.array_equal(f_n, one_hot(ids, O)[-1])


# ------------------------------------------------------------------------------------------------
# the jordan cell in specs, training, analysis and the lab
# ------------------------------------------------------------------------------------------------

def _sine_spec(**overrides):
    from rnnlab.spec import load_preset

    return load_preset("sine-jordan").with_overrides({"task.length": 12, "model.hidden_size": 8,
                                                      "train.batch_size": 4, "train.steps": 5, **overrides})


def test_the_spec_builds_a_jordan_model_that_trains():
    from rnnlab.train import Trainer
    from rnnlab.train.model import JordanModel

    trainer = Trainer(_sine_spec())
    model = trainer.model
    assert isinstance(model, JordanModel) and list(model.parameters()) == reference.param_names(True)
    assert model.readout["readout.weight"] is model.parameters()["readout.weight"]  # live, not a copy
    before = model.state_dict()
    for _ in range(5):
        trainer.train_step()
    assert not np.array_equal(before["weight_yh_l0"], model.state_dict()["weight_yh_l0"])
    assert np.isfinite(trainer.evaluate().loss)
    with pytest.raises(ValueError, match="truncate"):
        model.backward(model.forward(np.zeros((3, 1, 1)))[2], np.zeros((3, 1, 1)), truncate=2)


def test_teacher_forcing_through_the_model_feeds_back_masked_targets():
    from rnnlab.spec import load_preset
    from rnnlab.train import Trainer

    spec = load_preset("counting").with_overrides({"model.cell": "jordan", "model.feedback": "softmax",
                                                   "model.hidden_size": 8})
    trainer = Trainer(spec)
    batch = trainer.task.batch(3, 0, 0)
    mask = batch.mask.copy()
    mask[2] = False
    out, f_n, trace = trainer.model.forward(batch.x, None, teacher=(batch.y, mask))
    signal = trainer.model.teacher_signal(batch.y, mask)
    np.testing.assert_array_equal(signal[mask], np.eye(trainer.task.output_size)[batch.y[mask]])
    np.testing.assert_array_equal(signal[2], 0.0)  # no target there: nothing fed back
    np.testing.assert_array_equal(trace.get("f")[1:], signal[:-1])
    assert trace.teacher_forced and out.dtype == np.float64 and f_n.shape == (3, trainer.task.output_size)
    # the model's state is what the next step reads back
    np.testing.assert_array_equal(trainer.model.zero_state(3), np.zeros((3, trainer.task.output_size)))


@pytest.mark.parametrize("fields, field", [
    ({"model.num_layers": 2}, "model.num_layers"),
    ({"model.bidirectional": True}, "model.bidirectional"),
    ({"model.init": "orthogonal"}, "model.init"),
    ({"train.truncate": 5}, "train.truncate"),
    ({"model.cell": "gru", "model.feedback": "softmax"}, "model.feedback"),
])
def test_the_spec_refuses_what_the_jordan_cell_does_not_take(fields, field):
    from rnnlab.errors import SpecError

    with pytest.raises(SpecError) as info:
        _sine_spec(**fields)
    assert info.value.field == field


@pytest.mark.parametrize("feedback", ["values", "softmax"])
def test_step_jacobians_match_finite_differences_through_the_fed_back_output(feedback):
    from rnnlab import analysis

    net = JordanRNN(I, H, O, feedback=feedback, dtype="float64", seed=3)
    net.load_state_dict({k: 2.0 * v for k, v in net.state_dict().items()})
    x = np.random.default_rng(4).standard_normal((T, 2, I))
    _, _, trace = net.forward(x)
    jac = analysis.step_jacobians(trace, 0, 0, 1)
    p = {k: v for k, v in net.state_dict().items()}
    b = p["bias_ih_l0"] + p["bias_yh_l0"]

    def step(h_prev, t):  # h_t from h_{t-1}: through y_{t-1} = W_out h_{t-1} + b_out and what it feeds back
        y = p["readout.weight"] @ h_prev + p["readout.bias"]
        f = np.exp(y - y.max()) / np.exp(y - y.max()).sum() if feedback == "softmax" else y
        return np.tanh(p["weight_ih_l0"] @ x[t, 1] + p["weight_yh_l0"] @ f + b)

    h = trace.get("h")[:, 1]
    np.testing.assert_array_equal(jac[0], 0.0)  # step 0 reads y0, not a hidden state
    for t in range(1, T):
        np.testing.assert_allclose(step(h[t - 1], t), h[t], rtol=1e-12)
        fd = np.stack([(step(h[t - 1] + e, t) - step(h[t - 1] - e, t)) / 2e-6 for e in 1e-6 * np.eye(H)], axis=1)
        np.testing.assert_allclose(jac[t], fd, rtol=1e-6, atol=1e-9)
    assert np.linalg.matrix_rank(jac[2]) <= O
    _, _, forced = net.forward(x, None, np.zeros((T, 2, O)))
    np.testing.assert_array_equal(analysis.step_jacobians(forced, 0, 0, 1), 0.0)  # teacher forcing: no path
    assert not analysis.has_recurrent_weights(trace)
    with pytest.raises(ValueError, match="no W_hh"):
        net.backward(trace, np.ones((T, 2, O)))
        analysis.step_weight_grads(trace)


def test_explain_shows_what_was_fed_back():
    from rnnlab.explain import explain_step

    net, x, y0, teacher, _ = _problem("float64", "teacher")
    for forced in (teacher, None):
        _, _, trace = net.forward(x, y0, forced)
        p = net.state_dict()
        for t, unit, b in [(0, 0, 0), (T - 1, H - 1, 3)]:
            (eq,) = explain_step(trace, t, unit, b=b)
            f_prev = y0[b] if t == 0 else trace.get("f")[t, b]
            v = {term.name: term.value for term in eq.terms}
            assert eq.formula == "tanh(W·x_t + U·f_{t-1} + b)" and eq.value == trace.get("h")[t, b, unit]
            assert v["U·f_{t-1}"] == pytest.approx(p["weight_yh_l0"][unit] @ f_prev, abs=1e-12)
            assert np.tanh(sum(v.values())) == pytest.approx(eq.value, abs=1e-12)
            assert ("previous target" in eq.params) == (forced is not None)
            assert ("y0 at t = 0" in eq.params) == (t == 0)


def test_lab_shows_the_hidden_state_the_outputs_and_what_was_fed_back():
    import asyncio
    import time

    from rnnlab.tui.app import LabApp
    from rnnlab.tui.panels import GradientPlot, record_kind

    assert record_kind("f", "Jordan") == "signed" and record_kind("f", "LSTM") == "gate"

    async def main():
        app = LabApp("sine-jordan")
        async with app.run_test(size=(160, 50)) as pilot:
            deadline = time.monotonic() + 60
            while app.lab is None:
                assert time.monotonic() < deadline, "the lab did not open"
                await pilot.pause(0.05)
            await pilot.pause()
            lab = app.lab
            assert lab.trace.mode == "Jordan" and lab.trace.names == ("h", "y", "f")
            assert app.query_one("#map-f").title.startswith("fed back f_{t-1}")
            np.testing.assert_allclose(lab.evaluation.outputs[:, :, 0], lab.trace.get("y")[:, :, 0], rtol=1e-5)
            await pilot.press("right", "right")
            explained = str(app.query_one("#explain").render())
            assert "h_t = tanh(W·x_t + U·f_{t-1} + b)" in explained and "previous output" in explained
            await pilot.press("b")
            assert lab.bptt_cursor == lab.steps - 1
            assert app.query_one(GradientPlot).series_names == ["||dL/dh_t||"]  # no W_hh: no per-step dW_hh

    asyncio.run(main())


def test_the_trainer_feeds_back_targets_only_with_teacher_forcing_and_evaluates_running_free():
    """train.teacher_forcing: training steps read back the previous targets (no BPTT through the
    outputs); evaluation always runs free. sine-jordan shows the exposure bias this causes."""
    from rnnlab.errors import SpecError
    from rnnlab.spec import load_preset
    from rnnlab.train import Trainer

    spec = load_preset("sine-jordan")
    assert spec.train.teacher_forcing
    forced, free = (Trainer(spec.with_overrides({"train.teacher_forcing": tf, "train.steps": 60})) for tf in (True, False))
    batch = forced.task.batch(4, 0, spec.seed)
    _, _, trace = forced.compute(batch, train=True)
    np.testing.assert_allclose(trace["f"][0, 1:], batch.y[:-1].astype(trace["f"].dtype))  # the targets came back
    _, _, trace = forced.compute(batch)  # evaluation: its own outputs
    assert not np.allclose(trace["f"][0, 1:], batch.y[:-1])
    for trainer in (forced, free):
        list(trainer.events(60))
    assert forced.model.state_dict()["weight_ih_l0"].tolist() != free.model.state_dict()["weight_ih_l0"].tolist()
    with pytest.raises(SpecError, match="only the jordan cell feeds its output back, not lstm"):
        load_preset("hello").with_overrides({"train.teacher_forcing": True})
