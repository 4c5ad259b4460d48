"""Shared helpers for the test suite."""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import background
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


#: A spec whose training diverges at once: the adding task at learning rate 10 without clipping
#: (step 1 is done, step 2's loss overflows float32).
DIVERGING_SPEC = ('name = "div"\n[task]\nkind = "adding"\n[model]\ncell = "rnn"\nnonlinearity = "relu"\n'
                  'init = "identity"\nhidden_size = 64\n[train]\noptimizer = "sgd"\nlearning_rate = 10\n'
                  'clip_norm = 0\n')


def run_cli(capsys, *args):
    """``rnnlab ARGS`` in this process: (exit status, stdout, stderr)."""
    from rnnlab import cli

    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def ctrl_c_at(question: int):
    """A stand-in for the CLI's ``_graceful_interrupt`` (monkeypatch it in): its stop event turns set
    at the ``question``-th time a command asks (0 = the first), as a Ctrl-C in the unit before would."""
    import contextlib

    from rnnlab.cli import experiments

    @contextlib.contextmanager
    def interrupt(unit: str = "step"):
        stop = experiments._Stop()
        asked = iter(range(10**6))
        stop.is_set = lambda: next(asked) >= question
        stop.exit_code = 130
        yield stop

    return interrupt


def one_line_error(err: str) -> str:
    """The one line a refused command prints on stderr (bad input: one line, never a traceback).
    The notices of kernels compiled on the way (a fresh cache, as in CI, where a command trains
    before its input is refused: `tree --parse`) are not part of it."""
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("rnnlab: compiling ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def refuse_screenshots(monkeypatch, app, error: OSError | None = None) -> None:
    """``app.save_screenshot`` raises ``error`` (default: no permission, as in an unwritable
    working directory)."""
    import errno

    def refuse():
        raise error or PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(app, "save_screenshot", refuse)


def notices_of(node) -> list[tuple[str, str]]:
    """The notices ``node`` gives from now on, as (message, severity), instead of showing them."""
    said: list[tuple[str, str]] = []
    node.notify = lambda message, **kw: said.append((message, kw.get("severity", "information")))
    return said


def screen_text(app) -> str:
    """The text a Textual app's screen shows now, line by line (for TUI tests)."""
    return "\n".join(strip.text.rstrip() for strip in app.screen._compositor.render_strips())


def footer_keys(app, screen) -> list[str]:
    """What a Textual footer shows of each shown binding of ``screen`` and ``app``: its first key (or
    key_display) and its description, "→ decode", "q quit" (for TUI tests of what fits)."""
    return [f"{app.get_key_display(replace(b, key=b.key.split(',')[0]))} {b.description}"
            for b in (*screen.BINDINGS, *app.BINDINGS) if b.show]


async def wait_for(pilot, condition, timeout=30.0, what="the lab", poll=0.05):
    """Let a Textual test app run until ``condition()`` holds; AssertionError after ``timeout`` s."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(poll)
    await pilot.pause()


@contextlib.contextmanager
def held_by_another_thread(lock):
    """``lock`` (the lab's) held by another thread, as the trainer holds it for a step, until the
    ``with`` block ends."""
    held, release = threading.Event(), threading.Event()

    def a_step():
        with lock:
            held.set()
            release.wait(10)

    thread = threading.Thread(target=a_step)
    thread.start()
    held.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join(10)


def load_golden(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    return meta, arrays


# ---------------------------------------------------------------------------------------------
# Shared by test_kernels_vs_reference.py and test_properties.py
# ---------------------------------------------------------------------------------------------
import os  # noqa: E402

from hypothesis import HealthCheck, settings  # noqa: E402

from rnnlab import reference  # noqa: E402

#: Every cell the layers implement, as (mode, nonlinearity); the nonlinearity only matters for RNN.
CELLS = [("RNN", "tanh"), ("RNN", "relu"), ("LSTM", "tanh"), ("GRU", "tanh")]
CELL_IDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]

#: Per-step records the reference writes, per mode (the layers may record more, e.g. GRU's "hn").
REFERENCE_RECORDS = {"RNN": ("h",), "LSTM": ("h", "c", "i", "f", "g", "o"), "GRU": ("h", "r", "z", "n")}

# Hypothesis profiles: "ci" (default; deterministic, modest), "dev" (quick local loop) and
# "thorough" (many examples, for a nightly run). Select with HYPOTHESIS_PROFILE=<name>.
_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("ci", max_examples=25, derandomize=True, database=None, **_COMMON)
settings.register_profile("dev", max_examples=10, **_COMMON)
settings.register_profile("thorough", max_examples=400, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def random_problem(layer, T, B, rng, *, random_state=True, random_dstate=True):
    """Input, initial state, dy and dstate for ``layer`` drawn from ``rng`` in the layer's dtype.

    Returns a dict with x, h0, c0 (None unless LSTM), dy, dh_n, dc_n (None unless LSTM).
    """
    dt = layer.dtype
    L, D, H, I = layer.num_layers, layer.num_directions, layer.hidden_size, layer.input_size
    lstm = layer.mode == "LSTM"

    def draw(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(dt)

    def zeros(*shape, scale=1.0):
        return np.zeros(shape, dt)

    state_draw = draw if random_state else zeros
    dstate_draw = draw if random_dstate else zeros
    return dict(
        x=draw(T, B, I),
        h0=state_draw(L * D, B, H, scale=0.5),
        c0=state_draw(L * D, B, H, scale=0.5) if lstm else None,
        dy=draw(T, B, D * H),
        dh_n=dstate_draw(L * D, B, H),
        dc_n=dstate_draw(L * D, B, H) if lstm else None,
    )


def layer_state(layer, p):
    """The ``state`` argument of ``layer.forward`` for problem ``p``."""
    return (p["h0"], p["c0"]) if layer.mode == "LSTM" else p["h0"]


def layer_dstate(layer, p):
    """The ``dstate`` argument of ``layer.backward`` for problem ``p``."""
    return (p["dh_n"], p["dc_n"]) if layer.mode == "LSTM" else p["dh_n"]


def reference_run(layer, p, truncate=None):
    """float64 reference forward and backward of ``layer``'s network on problem ``p``.

    Returns ``(y, h_n, c_n, records, grads)`` as :mod:`rnnlab.reference` defines them.
    """
    params = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    kwargs = dict(num_layers=layer.num_layers, bidirectional=layer.bidirectional,
                  nonlinearity=getattr(layer, "nonlinearity", "tanh"))
    f64 = lambda a: None if a is None else np.asarray(a, np.float64)  # noqa: E731
    y, h_n, c_n, records = reference.forward(layer.mode, params, f64(p["x"]), f64(p["h0"]), f64(p["c0"]), **kwargs)
    grads = reference.backward(layer.mode, params, f64(p["x"]), f64(p["h0"]), f64(p["c0"]), dy=f64(p["dy"]),
                               dh_n=f64(p["dh_n"]), dc_n=f64(p["dc_n"]), truncate=truncate, **kwargs)
    return y, h_n, c_n, records, grads


def pytest_configure(config):
    """The main process (pytest-xdist's controller, or the only one) makes the directory where
    background cases leave their results, before any worker starts (tests/background.py). Not
    the cases' own pytest runs (which load this file too)."""
    if not hasattr(config, "workerinput") and background.CASES_RUN_ENV not in os.environ:
        directory = background.make_directory()
        config.add_cleanup(lambda: background.stop_and_remove(directory))


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected what they deselect
def pytest_collection_modifyitems(config, items):
    """Start the cases that the selected tests wait for in the background (test_cuda's GPU cases:
    minutes on one core, spent while the rest of the suite runs), and run those tests last."""
    waiting = [item for item in items if hasattr(getattr(item, "function", None), "background_cases")]
    if config.option.collectonly:  # listing the tests (an IDE's discovery) runs none
        return
    for queue in {id(item.function.background_cases): item.function.background_cases for item in waiting}.values():
        queue.start([item.function.__name__ for item in waiting if item.function.background_cases is queue])
    items[:] = [item for item in items if item not in waiting] + waiting
