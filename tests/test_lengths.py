"""Sequences of their own lengths in one batch (``forward(x, state, lengths)``), as torch's packed sequences.

The oracle: each sequence b run alone over its first lengths[b] steps (the layer's path without
lengths, itself checked against the float64 reference, finite differences and torch). The packed
golden files (test_golden.py) pin the same against torch's pack_padded_sequence.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnlab
from rnnlab import analysis, explain

LENGTHS = np.array([3, 6, 1, 4, 3])  # unsorted, with ties, a sequence of one step and one of all T
T, B, I, H = 6, 5, 3, 4


def _layer(mode, nonlinearity="tanh", **options):
    kwargs = {"nonlinearity": nonlinearity} if mode == "RNN" else {}
    return getattr(rnnlab, mode)(I, H, 2, dtype="float64", seed=1, **kwargs, **options)


def _problem(layer, rng, steps=T, batch=B, dc_n=True):
    """x, the state and the cotangents (dy, dstate) for one forward and backward of ``layer``
    (``dc_n=False``: an LSTM's dc_n is zero, as where the loss reads only outputs and h_n)."""
    k = layer.num_layers * layer.num_directions
    x = rng.normal(size=(batch, steps, I) if layer.batch_first else (steps, batch, I))
    states = [rng.normal(size=(k, batch, H)) for _ in range(4)]  # h0, c0, dh_n, dc_n
    states[3] *= dc_n
    width = layer.num_directions * H
    dy = rng.normal(size=(batch, steps, width) if layer.batch_first else (steps, batch, width))
    pair = layer.has_cell_state
    return x, (tuple(states[:2]) if pair else states[0]), dy, (tuple(states[2:]) if pair else states[2])


def _sequence(array, b, length, batch_first):
    """Sequence b's first ``length`` steps of a (T, B, ...) array ((B, T, ...) for batch_first), kept batched."""
    return array[b : b + 1, :length] if batch_first else array[:length, b : b + 1]


def _states(state, b):
    return tuple(s[:, b : b + 1] for s in state) if isinstance(state, tuple) else state[:, b : b + 1]


def _halves(state):
    return state if isinstance(state, tuple) else (state,)


#: (mode, nonlinearity, dc_n): an LSTM's nonzero dc_n on a sequence that ends early takes the
#: segments' path (rnnlab/layers/_lengths.py), a zero one the one-call path as the other cells do
CELLS = [("RNN", "tanh", False), ("RNN", "relu", False), ("LSTM", "tanh", False), ("LSTM", "tanh", True),
         ("GRU", "tanh", False)]
CONFIGS = [(*cell, bi, bf) for cell in CELLS for bi in (False, True) for bf in (False, True)]


@pytest.mark.parametrize("truncate", [None, 2, 4], ids=["full", "trunc2", "trunc4"])
@pytest.mark.parametrize("mode,nonlinearity,dc_n,bidirectional,batch_first", CONFIGS,
                         ids=[f"{m}-{nl}{'-dc_n' if dc else ''}{'-bi' if bi else ''}{'-bf' if bf else ''}"
                              for m, nl, dc, bi, bf in CONFIGS])
def test_each_sequence_gets_what_it_gets_run_alone(mode, nonlinearity, dc_n, bidirectional, batch_first, truncate):
    """Outputs, final states, every trace record, dL/dh_t and the gradients of the input and the
    initial state are sequence b's alone over its own steps; the weights' gradients are the sums
    over the sequences. Truncation counts each direction's steps from that sequence's first."""
    layer = _layer(mode, nonlinearity, bidirectional=bidirectional, batch_first=batch_first)
    _assert_as_run_alone(layer, *_problem(layer, np.random.default_rng(0), dc_n=dc_n), truncate)


def _assert_as_run_alone(layer, x, state, dy, dstate, truncate=None):
    """The layer's forward and backward with LENGTHS against each sequence's own, run alone."""
    batch_first = layer.batch_first
    y, state_n, trace = layer(x, state, LENGTHS)
    grads = layer.backward(trace, dy, dstate, truncate=truncate)
    assert trace.lengths.tolist() == LENGTHS.tolist()

    summed: dict[str, np.ndarray] = {}
    for b, length in enumerate(LENGTHS):
        y_b, state_b, trace_b = layer(_sequence(x, b, length, batch_first), _states(state, b))
        grads_b = layer.backward(trace_b, _sequence(dy, b, length, batch_first), _states(dstate, b),
                                 truncate=truncate)
        np.testing.assert_allclose(_sequence(y, b, length, batch_first), y_b, rtol=0, atol=1e-12)
        for ours, alone in zip(_halves(state_n), _halves(state_b)):
            np.testing.assert_allclose(ours[:, b : b + 1], alone, rtol=0, atol=1e-12)
        for name in trace_b.names:
            np.testing.assert_allclose(trace[name][:, :length, b : b + 1], trace_b[name], rtol=0, atol=1e-12,
                                       err_msg=name)
        np.testing.assert_allclose(_sequence(grads["input"], b, length, batch_first), grads_b["input"], rtol=0,
                                   atol=1e-12)
        for name in ("h0", "c0") if layer.mode == "LSTM" else ("h0",):
            np.testing.assert_allclose(grads[name][:, b : b + 1], grads_b[name], rtol=0, atol=1e-12)
        for name in layer.state_dict():
            summed[name] = summed.get(name, 0) + grads_b[name]
    for name, total in summed.items():
        np.testing.assert_allclose(grads[name], total, rtol=0, atol=1e-11, err_msg=name)


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("dc_n", [False, True], ids=["one-call", "segments"])
def test_beyond_its_length_a_sequence_is_padding(mode, dc_n):
    """y, every record and the input's gradient are zeros past each sequence's end, and what dy
    holds there changes nothing (torch's pad_packed_sequence pads with zeros; the padding is no
    output at all)."""
    layer = _layer(mode, bidirectional=True)
    x, state, dy, dstate = _problem(layer, np.random.default_rng(1), dc_n=dc_n)
    y, _, trace = layer(x, state, LENGTHS)
    grads = layer.backward(trace, dy, dstate)
    padding = np.arange(T)[:, None] >= LENGTHS  # (T, B)
    assert not y[padding].any() and not grads["input"][padding].any()
    for name in trace.names:
        assert not trace[name][:, padding].any(), name

    x2, dy2 = x.copy(), dy.copy()
    x2[padding], dy2[padding] = np.nan, np.nan  # nothing read there: NaN too, as torch's packing drops it
    x2[-1, 0, 0] = np.inf  # (sequence 0 ends at step 3)
    y2, state2, trace2 = layer(x2, state, LENGTHS)
    grads2 = layer.backward(trace2, dy2, dstate)
    np.testing.assert_array_equal(y2, y)
    for name in grads:
        np.testing.assert_array_equal(grads2[name], grads[name], err_msg=name)


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_lengths_of_all_steps_are_the_run_without_lengths(mode):
    """Every sequence of length T: the same bits as no lengths, and a trace that says so."""
    layer = _layer(mode, bidirectional=True)
    x, state, dy, dstate = _problem(layer, np.random.default_rng(2))
    y, state_n, trace = layer(x, state)
    y_l, state_l, trace_l = layer(x, state, [T] * B)
    assert trace_l.lengths is None
    np.testing.assert_array_equal(y_l, y)
    for ours, theirs in zip(_halves(state_l), _halves(state_n)):
        np.testing.assert_array_equal(ours, theirs)
    grads, grads_l = layer.backward(trace, dy, dstate), layer.backward(trace_l, dy, dstate)
    for name in grads:
        np.testing.assert_array_equal(grads_l[name], grads[name])


def test_an_lstms_dc_n_takes_the_segments_only_where_a_sequence_ends_early(monkeypatch):
    """dc_n on the sequences of all T steps enters at the last step, as without lengths: one call."""
    layer = _layer("LSTM")
    x, state, dy, (dh_n, dc_n) = _problem(layer, np.random.default_rng(6))
    dc_n[:, LENGTHS < T] = 0
    assert dc_n.any()
    monkeypatch.setattr(type(layer), "_backward_segments", None)  # a TypeError if called
    _assert_as_run_alone(layer, x, state, dy, (dh_n, dc_n), truncate=4)


def test_float32_agrees_with_float64():
    """The float32 layer with lengths is the float64 one to float32's precision."""
    wide = _layer("LSTM", bidirectional=True)
    narrow = rnnlab.LSTM(I, H, 2, bidirectional=True)
    narrow.load_state_dict(wide.state_dict())
    x, state, dy, dstate = _problem(wide, np.random.default_rng(3))
    y64, _, trace64 = wide(x, state, LENGTHS)
    y32, _, trace32 = narrow(x.astype(np.float32), tuple(s.astype(np.float32) for s in state), LENGTHS)
    np.testing.assert_allclose(y32, y64, rtol=0, atol=2e-6)
    g64 = wide.backward(trace64, dy, dstate)
    g32 = narrow.backward(trace32, dy.astype(np.float32), tuple(s.astype(np.float32) for s in dstate))
    for name in g64:
        np.testing.assert_allclose(g32[name], g64[name], rtol=0, atol=2e-5, err_msg=name)


def test_gradients_match_finite_differences():
    """Central differences of L = sum(y * dy) + sum(h_n * dh_n) + sum(c_n * dc_n) in a few
    weights, the input and the initial state, through the lengths path itself."""
    layer = _layer("LSTM", bidirectional=True)
    x, state, dy, dstate = _problem(layer, np.random.default_rng(4))

    def loss() -> float:
        y, (h_n, c_n), _ = layer(x, state, LENGTHS)
        return float((y * dy).sum() + (h_n * dstate[0]).sum() + (c_n * dstate[1]).sum())

    grads = layer.backward(layer(x, state, LENGTHS)[2], dy, dstate)
    params = layer.parameters()
    rng = np.random.default_rng(5)
    cases = [(params[name], grads[name]) for name in ("weight_hh_l0_reverse", "weight_ih_l1", "bias_hh_l0")]
    cases += [(x, grads["input"]), (state[0], grads["h0"]), (state[1], grads["c0"])]
    for array, grad in cases:
        for _ in range(4):
            index = tuple(int(rng.integers(n)) for n in array.shape)
            saved, eps = array[index], 1e-6
            array[index] = saved + eps
            up = loss()
            array[index] = saved - eps
            down = loss()
            array[index] = saved
            assert abs((up - down) / (2 * eps) - grad[index]) < 1e-7, index


@pytest.mark.parametrize("lengths,message", [
    ([3, 6], "lengths has shape (2,), expected (5,): one length per sequence"),
    ([3, 6, 0, 4, 3], "lengths[2] = 0 is out of range: every length must be between 1 and T=6"),
    ([3, 7, 1, 4, 3], "lengths[1] = 7 is out of range"),
    ([3.0, 6.0, 1.0, 4.0, 3.0], "lengths must be integers, got dtype float64"),
    ([[3], [6, 1]], "lengths is not an array"),
])
def test_bad_lengths_are_named_in_one_line(lengths, message):
    layer = _layer("GRU")
    with pytest.raises(ValueError, match=None) as err:
        layer(np.zeros((T, B, I)), None, lengths)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_nan_before_a_sequences_end_is_refused_naming_the_padding():
    layer = _layer("LSTM")
    x = np.zeros((T, B, I))
    x[2, 0, 1] = np.nan  # sequence 0 runs steps 0-2
    with pytest.raises(ValueError, match=r"^input contains NaN or Inf before a sequence's end \(past it, the padding "
                                         r"may hold anything\)$"):
        layer(x, None, LENGTHS)
    x[2, 0, 1] = 0.0
    x[:, 1] = np.inf  # sequence 1 runs all T steps: every one of them is read
    with pytest.raises(ValueError, match="before a sequence's end"):
        layer(x, None, LENGTHS)
    with pytest.raises(ValueError, match=r"^input contains NaN or Inf$"):  # without lengths, as ever
        layer(x)
    x[:, 1] = 0.0
    trace = layer(x, None, LENGTHS)[2]
    dy = np.zeros((T, B, H))
    dy[3, 0] = np.nan  # past sequence 0's end (3 steps): taken
    layer.backward(trace, dy)
    dy[2, 0] = np.inf
    with pytest.raises(ValueError, match=r"^dy contains NaN or Inf before a sequence's end \(past it, dy is never "
                                         r"read\)$"):
        layer.backward(trace, dy)


@pytest.mark.parametrize("name", ["LeakyRNN", "MinGRU", "MinLSTM", "LRU"])
def test_layers_without_lengths_refuse_them(name):
    """In RNN's place (the third argument) and by name: MinGRU's third was its scan method, which
    said "method must be one of ..., got a value of type list" (an API review)."""
    layer = getattr(rnnlab, name)(I, H)
    x = np.zeros((T, B, I), np.float32)
    for call in (lambda: layer(x, None, LENGTHS), lambda: layer.forward(x, lengths=LENGTHS)):
        with pytest.raises(TypeError, match=rf"^{name}.forward takes no lengths \(RNN, LSTM and GRU do\)$"):
            call()


def test_the_analyses_refuse_a_trace_of_lengths_and_say_what_to_run():
    """Their Jacobians read the kernels' saved outputs step by step, which a forward with lengths
    keeps sorted and cut into segments: refused, with the one-sequence run that they can read."""
    layer = _layer("LSTM")
    _, _, trace = layer(np.zeros((T, B, I)), None, LENGTHS)
    for run in (lambda: analysis.step_jacobians(trace), lambda: explain.explain_step(trace, 0, 0)):
        with pytest.raises(ValueError, match=r"had lengths: run sequence b alone, x\[:lengths\[b\], b:b\+1\]"):
            run()


def test_a_cell_is_unchanged_by_the_layers_lengths():
    """The cells step one (B, I) input: their forward has no lengths argument."""
    cell = rnnlab.GRUCell(I, H)
    with pytest.raises(TypeError):
        cell(np.zeros((B, I), np.float32), None, LENGTHS)
