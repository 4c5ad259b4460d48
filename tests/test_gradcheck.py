"""The finite-difference gradient checks: every registered check passes, and a broken gradient is caught."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rnnlab import gradcheck
from rnnlab.layers import recurrent


@pytest.mark.parametrize("name", list(gradcheck.CHECKS))
def test_registered_check_passes(name):
    result = gradcheck.CHECKS[name]()
    assert result.name == name
    assert result.ok, result
    assert 0.0 <= result.max_rel_err < gradcheck.TOLERANCE
    assert result.worst in result.errors
    assert result.max_rel_err == max(result.errors.values())
    assert result.seconds > 0


def test_registry_covers_every_cell_deep_and_bidirectional():
    for cell in ("rnn_tanh", "rnn_relu", "lstm", "gru"):
        assert cell in gradcheck.CHECKS
        assert f"{cell}_deep_bidirectional" in gradcheck.CHECKS


def test_every_parameter_input_and_state_is_checked():
    result = gradcheck.CHECKS["lstm_deep_bidirectional"]()
    expected = set(recurrent.LSTM(3, 4, num_layers=2, bidirectional=True).state_dict()) | {"input", "h0", "c0"}
    assert set(result.errors) == expected


def _scaled_backward(original, key, factor):
    def backward(self, *args, **kwargs):
        grads = original(self, *args, **kwargs)
        grads[key] = grads[key] * factor
        return grads

    return backward


@pytest.mark.parametrize(
    "cls, check, key",
    [
        (recurrent.LSTM, "lstm", "weight_hh_l0"),
        (recurrent.GRU, "gru_deep_bidirectional", "bias_hh_l1_reverse"),
        (recurrent.RNN, "rnn_tanh", "h0"),
        (recurrent.RNN, "rnn_relu_deep_bidirectional", "input"),
    ],
)
def test_broken_gradient_is_caught(monkeypatch, cls, check, key):
    monkeypatch.setattr(cls, "backward", _scaled_backward(cls.backward, key, 1.001))
    result = gradcheck.CHECKS[check]()
    assert not result.ok
    assert result.worst == key
    assert result.max_rel_err == pytest.approx(1e-3, rel=0.05)


def test_missing_gradient_is_a_failure(monkeypatch):
    original = recurrent.GRU.backward

    def backward(self, *args, **kwargs):
        grads = original(self, *args, **kwargs)
        del grads["weight_ih_l0"]
        return grads

    monkeypatch.setattr(recurrent.GRU, "backward", backward)
    result = gradcheck.CHECKS["gru"]()
    assert not result.ok and result.worst == "weight_ih_l0" and result.max_rel_err == float("inf")


def test_nan_gradient_is_a_failure():
    x = np.zeros(3)
    result = gradcheck.finite_difference_check("nan", lambda: float(x.sum()), {"x": x}, {"x": np.full(3, np.nan)})
    assert not result.ok


def test_tensor_error():
    assert gradcheck.tensor_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert gradcheck.tensor_error(np.array([1.0, 2.0]), np.array([1.0, 2.2])) == pytest.approx(0.2 / 2.2)
    assert gradcheck.tensor_error(np.zeros(2), np.zeros(2)) == 0.0
    with pytest.raises(ValueError):
        gradcheck.tensor_error(np.zeros(2), np.zeros(3))


def test_finite_difference_check_on_a_known_function():
    a = np.array([0.3, -1.2, 2.0])
    b = np.array([[1.0, 2.0], [-0.5, 0.25]])

    def loss():
        return float(np.sum(np.sin(a)) + np.sum(b**3))

    result = gradcheck.finite_difference_check("known", loss, {"a": a, "b": b}, {"a": np.cos(a), "b": 3 * b**2})
    assert result.ok and result.max_rel_err < 1e-8
    assert a.tolist() == [0.3, -1.2, 2.0]  # perturbations were undone


def test_results_are_deterministic():
    first, second = gradcheck.CHECKS["rnn_relu"](), gradcheck.CHECKS["rnn_relu"]()
    assert first.errors == second.errors and first.detail == second.detail


def test_run_checks_selects_and_reports_progress():
    calls = []
    results = gradcheck.run_checks(["gru", "rnn_tanh"], progress=lambda *a: calls.append(a))
    assert [r.name for r in results] == ["rnn_tanh", "gru"]  # registry order
    assert calls == [(0, 2, "rnn_tanh"), (1, 2, "gru"), (2, 2, "")]


def test_run_checks_takes_one_name_as_that_check():
    """A bare string was split into its letters: "unknown gradient check 'r', 'n', ..."."""
    assert [r.name for r in gradcheck.run_checks("rnn_relu")] == ["rnn_relu"]


def test_run_checks_rejects_unknown_names_before_running():
    with pytest.raises(gradcheck.UnknownCheckError, match="'nope'"):
        gradcheck.run_checks(["lstm", "nope"])


def test_register_extends_the_registry_and_refuses_duplicates(monkeypatch):
    monkeypatch.setattr(gradcheck, "CHECKS", dict(gradcheck.CHECKS))

    @gradcheck.register("square")
    def _square():
        x = np.array([1.5, -2.0])
        return gradcheck.finite_difference_check("square", lambda: float(np.sum(x**2)), {"x": x}, {"x": 2 * x})

    assert gradcheck.run_checks(["square"])[0].ok
    with pytest.raises(ValueError, match="already registered"):
        gradcheck.register("square")(_square)


def test_core_modules_do_not_import_views():
    code = (
        "import sys, rnnlab.gradcheck, rnnlab.bench; "
        "bad = [m for m in ('rich', 'typer', 'textual', 'torch') if m in sys.modules]; "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
