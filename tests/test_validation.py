"""Argument checking, parameters (state_dict, seeds, init) and the invariants users rely on.

Bad input raises ValueError with a message that names what is wrong; nothing is left half-changed.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import rnnlab
from conftest import CELL_IDS, CELLS, layer_dstate, layer_state, make_layer, random_problem

T, B, I, H = 5, 2, 3, 4
ALL_MODES = ["RNN", "LSTM", "GRU"]


def _layer(mode="LSTM", **kwargs):
    kwargs.setdefault("seed", 0)
    return make_layer(mode, I, H, **kwargs)


def _x(dtype=np.float64, shape=(T, B, I), seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _state(layer, batch=B, fill=0.1):
    h = np.full((layer.num_layers * layer.num_directions, batch, layer.hidden_size), fill, layer.dtype)
    return (h, h.copy()) if layer.mode == "LSTM" else h


# ------------------------------------------------------------------------------ input
@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize(
    "shape,words",
    [
        ((B, I), ["shape", "(T, B, 3)"]),  # 2-D
        ((T, B, I, 1), ["shape", "(T, B, 3)"]),  # 4-D
        ((T,), ["shape"]),
        ((T, B, I + 2), ["shape", "(5, 2, 5)", "(5, 2, 3)"]),  # wrong feature size
        ((0, B, I), ["step"]),  # empty sequence
        ((T, 0, I), ["sequence"]),  # empty batch
    ],
    ids=["2d", "4d", "1d", "features", "T0", "B0"],
)
def test_bad_input_shape(mode, shape, words):
    layer = _layer(mode)
    with pytest.raises(ValueError) as info:
        layer.forward(np.zeros(shape))
    message = str(info.value)
    for word in words:
        assert word in message, message


def test_input_scalar_rejected():
    with pytest.raises(ValueError, match="shape"):
        _layer().forward(np.float64(1.0))


@pytest.mark.parametrize("mode", ALL_MODES)
def test_dtype_mismatch_is_not_silently_converted(mode):
    layer32 = _layer(mode, dtype="float32")
    with pytest.raises(ValueError, match="float64.*float32|float32.*float64"):
        layer32.forward(_x(np.float64))
    layer64 = _layer(mode, dtype="float64")
    with pytest.raises(ValueError, match="float32.*float64|float64.*float32"):
        layer64.forward(_x(np.float32))
    with pytest.raises(ValueError, match="dtype"):
        layer64.forward(np.zeros((T, B, I), np.int64))


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_rejected(mode, bad):
    x = _x()
    x[2, 1, 0] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        _layer(mode).forward(x)


# ------------------------------------------------------------------------------ state
@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True)])
def test_bad_state_shape(mode, num_layers, bidirectional):
    layer = _layer(mode, num_layers=num_layers, bidirectional=bidirectional)
    LD = num_layers * (2 if bidirectional else 1)
    good = np.zeros((LD, B, H))
    for bad_shape in [(LD + 1, B, H), (LD, B + 1, H), (LD, B, H + 1), (B, H), (LD, B, H, 1)]:
        bad = np.zeros(bad_shape)
        state = (bad, good) if mode == "LSTM" else bad
        with pytest.raises(ValueError, match=r"h0 has shape .*expected \(" + str(LD)):
            layer.forward(_x(), state)
        if mode == "LSTM":
            with pytest.raises(ValueError, match=r"c0 has shape"):
                layer.forward(_x(), (good, bad))


@pytest.mark.parametrize("mode", ALL_MODES)
def test_state_dtype_and_nan_rejected(mode):
    layer = _layer(mode)
    h = np.zeros((1, B, H), np.float32)
    with pytest.raises(ValueError, match="h0 has dtype float32"):
        layer.forward(_x(), (h, h.astype(np.float64)) if mode == "LSTM" else h)
    h = np.zeros((1, B, H))
    h[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="h0 contains NaN"):
        layer.forward(_x(), (h, np.zeros_like(h)) if mode == "LSTM" else h)


@pytest.mark.parametrize("state", [np.zeros((1, B, H)), (np.zeros((1, B, H)),),
                                   (np.zeros((1, B, H)),) * 3], ids=["array", "1-tuple", "3-tuple"])
def test_lstm_state_must_be_a_pair(state):
    with pytest.raises(ValueError, match=r"pair \(h0, c0\)"):
        _layer("LSTM").forward(_x(), state)


def test_lstm_state_pair_as_list_accepted():
    layer = _layer("LSTM")
    h = np.zeros((1, B, H))
    y_list = layer.forward(_x(), [h, h])[0]
    y_tuple = layer.forward(_x(), (h, h))[0]
    assert np.array_equal(y_list, y_tuple)


@pytest.mark.parametrize("mode", ["RNN", "GRU"])
def test_rnn_state_must_not_be_a_tuple(mode):
    h = np.zeros((1, B, H))
    with pytest.raises(ValueError, match="single array h0.*not a tuple"):
        _layer(mode).forward(_x(), (h, h))
    with pytest.raises(ValueError, match="single array h0"):
        _layer(mode).forward(_x(), (h,))


@pytest.mark.parametrize("mode", ALL_MODES)
def test_none_state_means_zeros(mode):
    layer = _layer(mode)
    zeros = _state(layer, fill=0.0)
    y0, s0, _ = layer.forward(_x())
    y1, s1, _ = layer.forward(_x(), zeros)
    assert np.array_equal(y0, y1)


# ------------------------------------------------------------------------------ constructor
@pytest.mark.parametrize("cls", [rnnlab.RNN, rnnlab.LSTM, rnnlab.GRU])
@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(hidden_size=0), "hidden_size"),
        (dict(hidden_size=-3), "hidden_size"),
        (dict(hidden_size=True), "hidden_size"),
        (dict(hidden_size=4.0), "hidden_size"),
        (dict(hidden_size="4"), "hidden_size"),
        (dict(input_size=0), "input_size"),
        (dict(input_size=False), "input_size"),
        (dict(input_size=-1), "input_size"),
        (dict(num_layers=0), "num_layers"),
        (dict(num_layers=True), "num_layers"),
        (dict(num_layers=1.5), "num_layers"),
        (dict(dtype="float16"), "dtype"),
        (dict(dtype=np.float16), "dtype"),
        (dict(dtype="int32"), "dtype"),
        (dict(dtype=np.int64), "dtype"),
        (dict(dtype="complex128"), "dtype"),
        (dict(dtype="double-ish"), "dtype"),
    ],
    ids=lambda v: repr(v) if not isinstance(v, dict) else "-".join(f"{k}={v[k]!r}" for k in v),
)
def test_invalid_constructor_arguments(cls, kwargs, name):
    args = dict(input_size=I, hidden_size=H)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        cls(**args)


def _too_large():
    from rnnlab.layers import LRU, MinGRU
    from rnnlab.layers.jordan import JordanRNN
    from rnnlab.layers.leaky import LeakyRNN
    from rnnlab.layers.selfattention import SelfAttentionBlock, SelfAttentionModel

    return [
        (lambda: rnnlab.LSTM(4, 10**7), "LSTM(4, 10000000): its 400,000,240,000,000 parameters need about 1.4 PiB "
                                        "(float32), more than half of this machine's "),
        (lambda: rnnlab.RNN(10**12, 4, dtype="float64"), "RNN(1000000000000, 4, dtype='float64'): its "
                                                         "4,000,000,000,024 parameters need about 29.1 TiB (float64)"),
        (lambda: rnnlab.GRU(4, 10**5, num_layers=16, bidirectional=True), "make input_size, hidden_size or num_layers"),
        (lambda: LeakyRNN(4, 10**7), "LeakyRNN(4, 10000000): its"),
        (lambda: MinGRU(4, 10**7, num_layers=2), "MinGRU(4, 10000000, num_layers=2): its"),
        (lambda: LRU(10**7, 10**6), "LRU(10000000, 1000000): its"),
        (lambda: JordanRNN(3, 10**7, 10**7), "JordanRNN(3, 10000000, 10000000): its"),
        (lambda: SelfAttentionBlock(10**6, 2, 8), "make d_model or d_ff smaller"),
        # the models name themselves, not a part the user never built (a block, a GRU, a RecursiveNet)
        (lambda: SelfAttentionModel(3, 2, d_model=10**6, num_heads=2),
         "SelfAttentionModel(3, 2, d_model=1000000, num_layers=2, d_ff=64, max_len=512): its"),
        (lambda: SelfAttentionModel(3, 2, max_len=10**12), "positional-encoding entries need about"),
        (lambda: rnnlab.PositionalEncoding(10**6, max_len=10**6),
         "PositionalEncoding(1000000, max_len=1000000): its 1,000,000,000,000 table entries need about 3.6 TiB"),
        (lambda: rnnlab.Attention("general", 10**6),
         "Attention('general', 1000000): its 3,000,000,000,000 parameters need about 10.9 TiB (float32)"),
        (lambda: rnnlab.Attention("additive", 4, attn_size=10**12), "make hidden_size or attn_size smaller"),
        (lambda: rnnlab.EchoStateNetwork(1, 10**6),
         "EchoStateNetwork(1, 1000000): its 1,000,002,000,000 parameters need about 7.3 TiB (float64)"),
        (lambda: _tree_layers()[0](10**9, 10**6), "RecursiveNet(1000000000, 1000000): its"),
        (lambda: _tree_layers()[1](_tree_layers()[2](["a", "b"]), ["x", "y"], 10**7),
         "TreeClassifier(vocab=2 words, labels=2 classes, hidden_size=10000000): its"),
        (lambda: rnnlab.Seq2Seq(10**9, 10, 10**6),
         "Seq2Seq(1000000000, 10, 1000000, cell='gru'): its 1,012,000,032,000,010 parameters"),
        (lambda: rnnlab.Seq2Seq(10**13, 10, 4), "Seq2Seq(10000000000000, 10, 4, cell='gru'): its"),  # embedding
        # two billion layers: counted, where a list of their shapes was the MemoryError
        (lambda: rnnlab.LSTM(3, 4, num_layers=2**31),
         "LSTM(3, 4, num_layers=2147483648): its 343,597,383,664 parameters need about 1.2 TiB (float32)"),
        (lambda: LRU(3, 4, num_layers=2**31), "LRU(3, 4, num_layers=2147483648): its"),
        (lambda: SelfAttentionModel(3, 2, num_layers=2**31), "num_layers=2147483648, d_ff=64, max_len=512): its"),
        (lambda: rnnlab.Seq2Seq(5, 5, 4, num_layers=2**31), "Seq2Seq(5, 5, 4, cell='gru', num_layers=2147483648): its"),
    ]


def _tree_layers():
    from rnnlab.data.trees import Vocabulary
    from rnnlab.layers.tree import RecursiveNet, TreeClassifier

    return RecursiveNet, TreeClassifier, Vocabulary


@pytest.mark.parametrize("make, message", _too_large(), ids=lambda v: "" if callable(v) else v.split(":")[0])
def test_parameters_too_large_for_this_machine_are_a_value_error_naming_the_size(make, message):
    """``rnnlab.LSTM(4, 10**7)`` raised numpy's MemoryError ("Unable to allocate 2.84 PiB ... float64"):
    refused now before anything is allocated, with what it would need and what there is."""
    with pytest.raises(ValueError) as info:
        make()
    assert message in str(info.value) and "\n" not in str(info.value)
    assert "more than half of this machine's" in str(info.value) and not isinstance(info.value, MemoryError)


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU", "LeakyRNN", "MinGRU", "MinLSTM", "LRU"])
@pytest.mark.parametrize("num_layers, bidirectional", [(1, False), (3, True)])
def test_the_memory_check_counts_every_layers_parameters(monkeypatch, cls, num_layers, bidirectional):
    """It counts the first layer's and num_layers - 1 times a deeper one's: the layer's own count."""
    from rnnlab.layers import _params

    def make():
        return getattr(rnnlab, cls)(3, 4, num_layers=num_layers, bidirectional=bidirectional and cls != "LRU")

    expected = make().num_parameters
    monkeypatch.setattr(_params, "physical_memory", lambda: 0)
    with pytest.raises(ValueError, match=rf": its {expected:,} parameters need"):
        make()


def test_parameters_may_take_half_of_this_machines_memory(monkeypatch):
    """The other half holds a forward pass's copy of them (as a spec's estimate leaves half for the rest)."""
    from rnnlab.layers import _params

    need = 4 * (4 * 64 * (3 + 64) + 2 * 4 * 64)  # LSTM(3, 64) in float32
    monkeypatch.setattr(_params, "physical_memory", lambda: 2 * need)
    assert rnnlab.LSTM(3, 64).num_parameters * 4 == need
    monkeypatch.setattr(_params, "physical_memory", lambda: 2 * need - 2)
    with pytest.raises(ValueError, match=r"^LSTM\(3, 64\): its 17,664 parameters need about 69 KiB \(float32\), "
                                         r"more than half of this machine's 138 KiB; make input_size, hidden_size "
                                         r"or num_layers"):
        rnnlab.LSTM(3, 64)


@pytest.mark.parametrize("bad", [5, object(), [1, 2]], ids=["int", "object", "list"])
def test_non_dtype_object_as_dtype_raises_value_error(bad):
    """A non-dtype object as dtype raises ValueError (np.dtype itself would raise TypeError)."""
    with pytest.raises(ValueError, match="dtype"):
        rnnlab.LSTM(I, H, dtype=bad)


def test_dtype_none_is_not_silently_float64():
    """dtype=None must not silently become float64 (as np.dtype(None) would).

    The documented default is float32; None should either mean that default or be rejected.
    """
    try:
        layer = rnnlab.LSTM(I, H, dtype=None)
    except ValueError:
        return
    assert layer.dtype == np.float32


@pytest.mark.parametrize("nonlinearity", ["sigmoid", "Tanh", "", None])
def test_bad_nonlinearity(nonlinearity):
    with pytest.raises(ValueError, match="nonlinearity"):
        rnnlab.RNN(I, H, nonlinearity=nonlinearity)


@pytest.mark.parametrize("dtype", ["float32", "float64", np.float32, np.float64, np.dtype("float64")])
def test_valid_dtype_spellings(dtype):
    layer = rnnlab.GRU(I, H, dtype=dtype)
    assert layer.dtype == np.dtype(dtype)
    assert all(p.dtype == np.dtype(dtype) for p in layer.state_dict().values())


def test_default_dtype_is_float32():
    for cls in (rnnlab.RNN, rnnlab.LSTM, rnnlab.GRU):
        layer = cls(I, H)
        assert layer.dtype == np.float32
        assert all(p.dtype == np.float32 for p in layer.state_dict().values())


# ------------------------------------------------------------------------------ backward arguments
@pytest.mark.parametrize("truncate", [0, -1, -5, 1.5, 2.0, True, "3"])
def test_bad_truncate(truncate):
    layer = _layer()
    _, _, trace = layer.forward(_x())
    with pytest.raises(ValueError, match="truncate"):
        layer.backward(trace, np.ones((T, B, H)), truncate=truncate)


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_bad_dy(mode, bidirectional):
    layer = _layer(mode, bidirectional=bidirectional)
    D = 2 if bidirectional else 1
    _, _, trace = layer.forward(_x())
    for shape in [(T, B, H * D + 1), (T + 1, B, H * D), (T, B + 1, H * D), (T, B * H * D), (T - 1, B, H * D)]:
        with pytest.raises(ValueError, match=r"dy has shape .*expected \(5, 2, " + str(H * D)):
            layer.backward(trace, np.ones(shape))
    with pytest.raises(ValueError, match="dy has dtype float32"):
        layer.backward(trace, np.ones((T, B, H * D), np.float32))
    dy = np.ones((T, B, H * D))
    dy[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="dy contains NaN or Inf"):
        layer.backward(trace, dy)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_bad_dstate_shape_raises(mode):
    layer = _layer(mode)
    _, _, trace = layer.forward(_x())
    bad = np.zeros((1, B, H + 1))
    with pytest.raises(ValueError, match="shape"):
        layer.backward(trace, None, (bad, np.zeros((1, B, H))) if mode == "LSTM" else bad)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_bad_dstate_message_names_the_gradient_argument(mode):
    """A wrong dstate is reported under the names backward() takes (dh_n, dc_n), not as h0/c0."""
    layer = _layer(mode)
    _, _, trace = layer.forward(_x())
    bad = np.zeros((1, B, H + 1))
    with pytest.raises(ValueError) as info:
        layer.backward(trace, None, (bad, np.zeros((1, B, H))) if mode == "LSTM" else bad)
    assert "h0" not in str(info.value) and ("dh_n" in str(info.value) or "dstate" in str(info.value)), info.value


def test_none_dy_and_dstate_mean_zero():
    layer = _layer("LSTM")
    _, _, trace = layer.forward(_x())
    g_none = layer.backward(trace, None, None)
    g_zero = layer.backward(trace, np.zeros((T, B, H)), (np.zeros((1, B, H)), np.zeros((1, B, H))))
    for name in g_none:
        assert np.array_equal(g_none[name], g_zero[name]), name
        assert not np.any(g_none[name]), name


# ------------------------------------------------------------------------------ traces from elsewhere
def _trace_of(layer):
    return layer.forward(_x(layer.dtype.type, (T, B, layer.input_size)))[2]


@pytest.fixture
def backward_kernels_must_not_run(monkeypatch):
    """A foreign trace must be rejected before any kernel runs: the kernels have boundscheck off, so
    running one on mismatched arrays may read out of bounds. Replace them with a loud stand-in."""
    import rnnlab.kernels

    def refuse(*args, **kwargs):
        raise AssertionError("a backward kernel was called with a trace from another layer")

    for name in ("elman_backward", "lstm_backward", "gru_backward"):
        monkeypatch.setattr(rnnlab.kernels, name, refuse)


@pytest.mark.parametrize(
    "source",
    [
        dict(mode="GRU"),
        dict(mode="RNN"),
        dict(num_layers=2),
        dict(bidirectional=True),
    ],
    ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()),
)
def test_trace_from_differently_built_layer_rejected(source, backward_kernels_must_not_run):
    target = _layer("LSTM")
    kwargs = dict(source)
    other = _layer(kwargs.pop("mode", "LSTM"), **kwargs)
    with pytest.raises(ValueError, match="trace"):
        target.backward(_trace_of(other), np.ones((T, B, H)))


def test_non_trace_rejected():
    with pytest.raises(ValueError, match="trace"):
        _layer().backward({"h": np.zeros((T, B, H))}, np.ones((T, B, H)))


@pytest.mark.parametrize(
    "make_other",
    [
        lambda: make_layer("LSTM", I, H - 1, seed=0),  # hidden size differs (kernel stays in bounds)
        lambda: make_layer("LSTM", I + 2, H, seed=0),  # input size differs
        lambda: make_layer("LSTM", I, H, bias=False, seed=0),  # bias differs
        lambda: make_layer("LSTM", I, H, dtype="float32", seed=0),  # dtype differs
    ],
    ids=["hidden_size", "input_size", "bias", "dtype"],
)
def test_trace_from_layer_of_other_sizes_rejected(make_other, backward_kernels_must_not_run):
    """A trace of another hidden/input size, bias or dtype is refused before any kernel runs
    (otherwise: wrong-shaped gradients, out-of-bounds reads with boundscheck=False, dropped bias
    grads or a numba TypingError). The kernels are stubbed out here, so a missing check shows as
    "a backward kernel was called ..."."""
    target = _layer("LSTM")
    with pytest.raises(ValueError, match="trace"):
        target.backward(_trace_of(make_other()), np.ones((T, B, H)))


def test_trace_from_another_identical_layer_rejected(backward_kernels_must_not_run):
    """A trace recorded by a *different* layer of the same configuration is refused: its gradients
    would be those of the other layer's weights (backward uses the trace's weights)."""
    target = _layer("LSTM", seed=0)
    other = _layer("LSTM", seed=1)
    with pytest.raises(ValueError, match="trace"):
        target.backward(_trace_of(other), np.ones((T, B, H)))


# ------------------------------------------------------------------------------ state_dict
def _bad_entries(layer):
    sd = layer.state_dict()
    name = "weight_hh_l0"
    yield "missing", {k: v for k, v in sd.items() if k != name}, "missing.*weight_hh_l0"
    yield "extra", {**sd, "weight_xx_l0": sd[name]}, "unexpected.*weight_xx_l0"
    yield "misshapen", {**sd, name: sd[name][:, :-1]}, r"weight_hh_l0.*shape .*expected"
    yield "transposed", {**sd, "weight_ih_l0": sd["weight_ih_l0"].T}, r"weight_ih_l0.*shape"
    nan = sd[name].copy()
    nan[0, 0] = np.nan
    yield "nan", {**sd, name: nan}, "weight_hh_l0.*NaN or Inf"
    inf = sd["bias_ih_l0"].copy()
    inf[-1] = np.inf
    yield "inf", {**sd, "bias_ih_l0": inf}, "bias_ih_l0.*NaN or Inf"
    yield "strings", {**sd, name: np.full(sd[name].shape, "a")}, "weight_hh_l0"
    yield "not a mapping", list(sd.items()), "mapping"


@pytest.mark.parametrize("mode", ALL_MODES)
def test_bad_state_dict_rejected_and_layer_unchanged(mode):
    layer = _layer(mode, num_layers=2, bidirectional=True)
    before = layer.state_dict()
    x = _x()
    y_before = layer.forward(x)[0]
    for label, bad, pattern in _bad_entries(layer):
        with pytest.raises(ValueError, match=pattern):
            layer.load_state_dict(bad)
        after = layer.state_dict()
        assert list(after) == list(before), label
        for k in before:
            assert np.array_equal(after[k], before[k]), (label, k)
        assert np.array_equal(layer.forward(x)[0], y_before), label


def test_float32_overflow_in_state_dict_rejected():
    layer = _layer("GRU", dtype="float32")
    sd = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    sd["weight_ih_l0"][0, 0] = 1e300  # finite in float64, inf in float32: said as the overflow it is
    with pytest.raises(ValueError, match=r"^state dict entry 'weight_ih_l0' holds 1e\+300, beyond float32's range"):
        layer.load_state_dict(sd)
    sd["weight_ih_l0"][0, 0] = np.nan
    with pytest.raises(ValueError, match="^state dict entry 'weight_ih_l0' contains NaN or Inf$"):
        layer.load_state_dict(sd)


@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_state_dict_round_trip(mode, nonlinearity, dtype):
    src = make_layer(mode, I, H, num_layers=2, bidirectional=True, nonlinearity=nonlinearity, dtype=dtype, seed=1)
    dst = make_layer(mode, I, H, num_layers=2, bidirectional=True, nonlinearity=nonlinearity, dtype=dtype, seed=2)
    x = _x(np.dtype(dtype).type)
    assert not np.array_equal(src.forward(x)[0], dst.forward(x)[0])
    dst.load_state_dict(src.state_dict())
    y_src, s_src, tr_src = src.forward(x)
    y_dst, s_dst, tr_dst = dst.forward(x)
    assert np.array_equal(y_src, y_dst)
    dy = np.ones_like(y_src)
    g_src, g_dst = src.backward(tr_src, dy), dst.backward(tr_dst, dy)
    for name in g_src:
        assert np.array_equal(g_src[name], g_dst[name]), name


def test_state_dict_converts_dtype():
    src = _layer("LSTM", dtype="float64")
    dst = _layer("LSTM", dtype="float32", seed=5)
    dst.load_state_dict(src.state_dict())
    for name, value in dst.state_dict().items():
        assert value.dtype == np.float32
        assert np.array_equal(value, src.state_dict()[name].astype(np.float32))


def test_load_state_dict_copies_its_input():
    layer = _layer("GRU")
    sd = layer.state_dict()
    x = _x()
    layer.load_state_dict(sd)
    y = layer.forward(x)[0]
    for v in sd.values():
        v[...] = 0.0
    assert np.array_equal(layer.forward(x)[0], y)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_state_dict_returns_copies(mode):
    layer = _layer(mode)
    x = _x()
    y = layer.forward(x)[0]
    sd = layer.state_dict()
    for v in sd.values():
        v += 1.0
    assert np.array_equal(layer.forward(x)[0], y)
    assert not np.array_equal(layer.state_dict()["weight_hh_l0"], sd["weight_hh_l0"])


# torch.nn.{RNN,LSTM,GRU}(...).state_dict(): names in order and shapes, written out by hand.
TORCH_STATE_DICTS = {
    "LSTM(10, 20, num_layers=2, bidirectional=True)": (
        ("LSTM", 10, 20, dict(num_layers=2, bidirectional=True)),
        [
            ("weight_ih_l0", (80, 10)), ("weight_hh_l0", (80, 20)), ("bias_ih_l0", (80,)), ("bias_hh_l0", (80,)),
            ("weight_ih_l0_reverse", (80, 10)), ("weight_hh_l0_reverse", (80, 20)),
            ("bias_ih_l0_reverse", (80,)), ("bias_hh_l0_reverse", (80,)),
            ("weight_ih_l1", (80, 40)), ("weight_hh_l1", (80, 20)), ("bias_ih_l1", (80,)), ("bias_hh_l1", (80,)),
            ("weight_ih_l1_reverse", (80, 40)), ("weight_hh_l1_reverse", (80, 20)),
            ("bias_ih_l1_reverse", (80,)), ("bias_hh_l1_reverse", (80,)),
        ],
    ),
    "GRU(3, 5, bias=False)": (
        ("GRU", 3, 5, dict(bias=False)),
        [("weight_ih_l0", (15, 3)), ("weight_hh_l0", (15, 5))],
    ),
    "GRU(7, 6, num_layers=3)": (
        ("GRU", 7, 6, dict(num_layers=3)),
        [
            ("weight_ih_l0", (18, 7)), ("weight_hh_l0", (18, 6)), ("bias_ih_l0", (18,)), ("bias_hh_l0", (18,)),
            ("weight_ih_l1", (18, 6)), ("weight_hh_l1", (18, 6)), ("bias_ih_l1", (18,)), ("bias_hh_l1", (18,)),
            ("weight_ih_l2", (18, 6)), ("weight_hh_l2", (18, 6)), ("bias_ih_l2", (18,)), ("bias_hh_l2", (18,)),
        ],
    ),
    "RNN(4, 6, num_layers=2, nonlinearity='relu')": (
        ("RNN", 4, 6, dict(num_layers=2, nonlinearity="relu")),
        [
            ("weight_ih_l0", (6, 4)), ("weight_hh_l0", (6, 6)), ("bias_ih_l0", (6,)), ("bias_hh_l0", (6,)),
            ("weight_ih_l1", (6, 6)), ("weight_hh_l1", (6, 6)), ("bias_ih_l1", (6,)), ("bias_hh_l1", (6,)),
        ],
    ),
    "RNN(2, 3, bidirectional=True, bias=False)": (
        ("RNN", 2, 3, dict(bidirectional=True, bias=False)),
        [
            ("weight_ih_l0", (3, 2)), ("weight_hh_l0", (3, 3)),
            ("weight_ih_l0_reverse", (3, 2)), ("weight_hh_l0_reverse", (3, 3)),
        ],
    ),
}


@pytest.mark.parametrize("label", list(TORCH_STATE_DICTS))
def test_state_dict_names_and_shapes_match_torch(label):
    (mode, i, h, kwargs), expected = TORCH_STATE_DICTS[label]
    layer = make_layer(mode, i, h, **kwargs)
    assert [(k, v.shape) for k, v in layer.state_dict().items()] == expected
    assert layer.num_parameters == sum(math.prod(s) for _, s in expected)
    grads = layer.backward(layer.forward(_x(np.float64, (3, 2, i)))[2], np.ones((3, 2, h * layer.num_directions)))
    assert [(k, grads[k].shape) for k in list(grads)[: len(expected)]] == expected


# ------------------------------------------------------------------------------ seeds and init
@pytest.mark.parametrize("mode", ALL_MODES)
def test_seed_reproducibility(mode):
    a = _layer(mode, num_layers=2, bidirectional=True, seed=123)
    b = _layer(mode, num_layers=2, bidirectional=True, seed=123)
    c = _layer(mode, num_layers=2, bidirectional=True, seed=124)
    for name in a.state_dict():
        assert np.array_equal(a.state_dict()[name], b.state_dict()[name]), name
        assert not np.array_equal(a.state_dict()[name], c.state_dict()[name]), name
    b.reset_parameters(123)
    assert all(np.array_equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
    b.reset_parameters(7)
    assert not np.array_equal(a.state_dict()["weight_ih_l0"], b.state_dict()["weight_ih_l0"])


def test_no_seed_gives_fresh_parameters():
    a, b = rnnlab.LSTM(I, H), rnnlab.LSTM(I, H)
    assert not np.array_equal(a.state_dict()["weight_hh_l0"], b.state_dict()["weight_hh_l0"])


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("hidden", [1, 4, 25, 64])
def test_init_uniform_within_torch_bounds(mode, hidden):
    layer = make_layer(mode, 6, hidden, num_layers=2, bidirectional=True, seed=hidden)
    bound = 1.0 / math.sqrt(hidden)
    values = np.concatenate([v.ravel() for v in layer.state_dict().values()])
    assert np.all(np.abs(values) <= bound)
    # uniform over the whole interval, not a narrower or shifted one; biases drawn too.
    # P(max < bound*(1 - 20/n)) ~ exp(-10) for n uniform draws; the mean's std is bound/sqrt(3n).
    n = values.size
    assert values.max() > bound * (1 - 20 / n) and values.min() < -bound * (1 - 20 / n)
    assert abs(values.mean()) < 5 * bound / math.sqrt(3 * n)
    assert abs(values.std() - bound / math.sqrt(3)) < 5 * bound / math.sqrt(n)
    for name, v in layer.state_dict().items():
        assert np.any(v != 0), name


# ------------------------------------------------------------------------------ invariants of forward
@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
def test_forward_and_backward_do_not_modify_inputs(mode, nonlinearity):
    layer = make_layer(mode, I, H, num_layers=2, bidirectional=True, nonlinearity=nonlinearity, seed=2)
    p = random_problem(layer, T, B, np.random.default_rng(8))
    copies = {k: None if v is None else v.copy() for k, v in p.items()}
    params = layer.state_dict()
    _, _, trace = layer.forward(p["x"], layer_state(layer, p))
    layer.backward(trace, p["dy"], layer_dstate(layer, p), truncate=2)
    for k, v in p.items():
        if v is not None:
            assert np.array_equal(v, copies[k]), k
    for k, v in layer.state_dict().items():
        assert np.array_equal(v, params[k]), k


@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
def test_backward_twice_gives_same_result(mode, nonlinearity):
    layer = make_layer(mode, I, H, num_layers=2, bidirectional=True, nonlinearity=nonlinearity, seed=2)
    p = random_problem(layer, T, B, np.random.default_rng(9))
    _, _, trace = layer.forward(p["x"], layer_state(layer, p))
    g1 = layer.backward(trace, p["dy"], layer_dstate(layer, p))
    dh1 = trace["dh"].copy()
    layer.backward(trace, p["dy"] * 2, None, truncate=1)  # a different question in between
    g2 = layer.backward(trace, p["dy"], layer_dstate(layer, p))
    for name in g1:
        assert np.array_equal(g1[name], g2[name]), name
    assert np.array_equal(trace["dh"], dh1)


@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (1, True), (3, True), (2, False)])
def test_outputs_and_final_state_are_the_trace(mode, nonlinearity, num_layers, bidirectional):
    layer = make_layer(mode, I, H, num_layers=num_layers, bidirectional=bidirectional,
                       nonlinearity=nonlinearity, seed=3)
    p = random_problem(layer, T, B, np.random.default_rng(10))
    y, state_n, trace = layer.forward(p["x"], layer_state(layer, p))
    D, top = layer.num_directions, num_layers - 1
    assert y.shape == (T, B, D * H)
    assert np.array_equal(y, np.concatenate([trace.get("h", top, d) for d in range(D)], axis=2))
    h_n, c_n = state_n if mode == "LSTM" else (state_n, None)
    assert h_n.shape == (num_layers * D, B, H)
    for l in range(num_layers):
        assert np.array_equal(h_n[l * D], trace.get("h", l, 0)[-1])  # forward direction: last step
        if c_n is not None:
            assert np.array_equal(c_n[l * D], trace.get("c", l, 0)[-1])
        if D == 2:
            assert np.array_equal(h_n[l * D + 1], trace.get("h", l, 1)[0])  # reverse direction: first step
            if c_n is not None:
                assert np.array_equal(c_n[l * D + 1], trace.get("c", l, 1)[0])


# ------------------------------------------------------------------------------ the trace is a record
@pytest.mark.parametrize("name", ["c", 1, None, [], {}, np.array(["h"])], ids=repr)
def test_a_record_not_there_is_a_key_error_naming_those_there(name):
    """A list or an array asked for was a dict's "unhashable type" TypeError (or, for an array
    equal to "h", a traceback from deep inside), not the KeyError naming the records."""
    _, _, trace = _layer("GRU").forward(_x())
    message = re.escape(f"no record {name!r} in this trace; available: h, r, z, n, hn")
    for read in (lambda: trace[name], lambda: trace.get(name)):
        with pytest.raises(KeyError, match=message):
            read()
    _, seq2seq_trace = _forward(_models()["Seq2Seq"]())
    with pytest.raises(KeyError, match=re.escape(f"no record {name!r} in this trace")):
        seq2seq_trace[name]


def test_backward_uses_the_input_seen_by_forward():
    """The trace owns a copy of the input: editing x in place after forward must not change the
    gradients backward(trace) returns."""
    layer = _layer("GRU")
    x = _x()
    dy = np.ones((T, B, H))
    expected = layer.backward(layer.forward(x.copy())[2], dy)
    _, _, trace = layer.forward(x)
    x += 1.0
    got = layer.backward(trace, dy)
    for name in expected:
        assert np.array_equal(got[name], expected[name]), name


def test_backward_uses_the_weights_seen_by_forward():
    """The trace owns copies of the weights: an in-place update of layer.parameters() between forward
    and backward (an optimizer step, a background trainer while the TUI steps BPTT on an older
    trace) must not change the gradients computed for that trace."""
    layer = _layer("LSTM")
    x = _x()
    dy = np.ones((T, B, H))
    expected = layer.backward(layer.forward(x)[2], dy)
    _, _, trace = layer.forward(x)
    layer.parameters()["weight_hh_l0"] += 0.5
    got = layer.backward(trace, dy)
    for name in expected:
        assert np.array_equal(got[name], expected[name]), name


def test_stacked_trace_record_cannot_be_corrupted():
    """The cached stack ``trace["h"]`` is read-only, so a view that edits it in place (e.g.
    normalising for a heatmap) cannot change what every later ``trace["h"]`` returns."""
    layer = _layer("LSTM")
    _, _, trace = layer.forward(_x())
    first = trace["h"].copy()
    try:
        trace["h"][...] = 0.0
    except ValueError:
        pass  # read-only: fine
    assert np.array_equal(trace["h"], first)


# ------------------------------------------------------------------------------ live parameters
def _run_forward(model):
    """One tiny forward pass of any layer class (float32 inputs of the sizes _PARAM_LAYERS build)."""
    from rnnlab.data.trees import TreeBatch, Vocabulary, parse_tree

    x = np.zeros((T, B, I), np.float32)
    if isinstance(model, rnnlab.Attention):
        return model.forward(np.zeros((T, B, H), np.float32), np.zeros((3, B, H), np.float32))
    if isinstance(model, rnnlab.SelfAttentionBlock):
        return model.forward(np.zeros((T, B, 4), np.float32))
    if isinstance(model, rnnlab.layers.tree.RecursiveNet):
        return model.forward(TreeBatch.from_trees([parse_tree("(a b)")], Vocabulary(["a", "b"])))
    return model.forward(x)


_PARAM_LAYERS = {
    "RNN": lambda: rnnlab.RNN(I, H, seed=0),
    "LSTM-2-bidirectional": lambda: rnnlab.LSTM(I, H, num_layers=2, bidirectional=True, seed=0),
    "GRU": lambda: rnnlab.GRU(I, H, seed=0),
    "LeakyRNN": lambda: rnnlab.LeakyRNN(I, H, seed=0),
    "MinGRU": lambda: rnnlab.MinGRU(I, H, seed=0),
    "LRU": lambda: rnnlab.LRU(I, H, seed=0),
    "JordanRNN": lambda: rnnlab.JordanRNN(I, H, 2, seed=0),
    "SelfAttentionBlock": lambda: rnnlab.SelfAttentionBlock(4, 2, 8, seed=0),
    "Attention": lambda: rnnlab.Attention("general", H, seed=0),
    "RecursiveNet": lambda: rnnlab.layers.tree.RecursiveNet(2, H, seed=0),
}


@pytest.mark.parametrize("make", list(_PARAM_LAYERS.values()), ids=list(_PARAM_LAYERS))
def test_forward_checks_parameters_replaced_through_parameters(make):
    """``parameters()`` hands out the live arrays; an entry replaced by an array of another shape or
    dtype (or by a non-array, or removed, or a stray name added) is refused by forward, naming the
    parameter, before any kernel sees it (not a silent wrong result, a numba TypingError or an
    internal message from backward)."""
    model = make()
    _run_forward(model)  # fine as built
    name, good = list(model.parameters().items())[-1]
    bad_shape = good.shape[:-1] + (good.shape[-1] + 1,)
    cases = [
        (np.zeros(bad_shape, good.dtype), rf"parameter '{re.escape(name)}' has shape {re.escape(str(bad_shape))}, "
                                          rf"expected {re.escape(str(good.shape))}"),
        (good.astype(np.float64), rf"parameter '{re.escape(name)}' has dtype float64, but the layer is float32"),
        (good.tolist(), rf"parameter '{re.escape(name)}' is a list, not a numpy array"),
    ]
    for value, pattern in cases:
        model.parameters()[name] = value
        with pytest.raises(ValueError, match=pattern):
            _run_forward(model)
    del model.parameters()[name]
    with pytest.raises(ValueError, match=rf"parameter '{re.escape(name)}' is missing"):
        _run_forward(model)
    model.parameters()[name] = good
    model.parameters()["stray"] = good
    with pytest.raises(ValueError, match="unexpected parameter 'stray'"):
        _run_forward(model)
    del model.parameters()["stray"]
    model.parameters()[name] = np.asfortranarray(good + 0)  # right shape and dtype, any layout: fine
    _run_forward(model)


def test_replaced_recurrent_weight_message_from_the_audit():
    layer = rnnlab.LSTM(3, 4, seed=0)
    layer.parameters()["weight_hh_l0"] = np.zeros((8, 4), np.float32)
    with pytest.raises(ValueError, match=re.escape("parameter 'weight_hh_l0' has shape (8, 4), expected (16, 4)")):
        layer.forward(np.zeros((2, 1, 3), np.float32))


def test_self_attention_model_checks_its_blocks_parameters():
    from rnnlab.layers.selfattention import SelfAttentionModel

    model = SelfAttentionModel(I, 2, d_model=4, num_heads=2, num_layers=1, d_ff=8, max_len=T)
    model.blocks[0].parameters()["linear1.weight"] = np.zeros((8, 4))
    with pytest.raises(ValueError, match="parameter 'layers.0.linear1.weight' has dtype float64"):
        model.forward(np.zeros((T, B, I), np.float32))


# ------------------------------------------------------------------------------ seeds and flags
def _every_layer(**kwargs):
    """One tiny instance of each layer class, built with ``kwargs``."""
    from rnnlab.layers.selfattention import SelfAttentionModel
    from rnnlab.layers.tree import RecursiveNet

    return {
        "RNN": lambda: rnnlab.RNN(I, H, **kwargs),
        "LSTM": lambda: rnnlab.LSTM(I, H, **kwargs),
        "GRU": lambda: rnnlab.GRU(I, H, **kwargs),
        "LeakyRNN": lambda: rnnlab.LeakyRNN(I, H, **kwargs),
        "MinGRU": lambda: rnnlab.MinGRU(I, H, **kwargs),
        "MinLSTM": lambda: rnnlab.MinLSTM(I, H, **kwargs),
        "LRU": lambda: rnnlab.LRU(I, H, **kwargs),
        "JordanRNN": lambda: rnnlab.JordanRNN(I, H, 2, **kwargs),
        "EchoStateNetwork": lambda: rnnlab.EchoStateNetwork(I, 10, **kwargs),
        "SelfAttentionBlock": lambda: rnnlab.SelfAttentionBlock(4, 2, 8, **kwargs),
        "SelfAttentionModel": lambda: SelfAttentionModel(I, 2, d_model=4, num_heads=2, num_layers=1, d_ff=8,
                                                         **kwargs),
        "Attention": lambda: rnnlab.Attention("dot", H, **kwargs),
        "Seq2Seq": lambda: rnnlab.Seq2Seq(5, 5, H, **kwargs),
        "RecursiveNet": lambda: RecursiveNet(5, H, **kwargs),
    }


@pytest.mark.parametrize("seed, shown", [("x", "'x'"), (1.5, "1.5"), (-1, "-1"), (True, "True"),
                                         (np.float64(2.0), "2.0"), ([1, 2], "a value of type list")], ids=repr)
@pytest.mark.parametrize("cls", list(_every_layer()))
def test_seed_must_be_a_non_negative_integer(cls, seed, shown):
    with pytest.raises(ValueError, match=re.escape(f"seed must be a non-negative integer or None, got {shown}")):
        _every_layer(seed=seed)[cls]()


@pytest.mark.parametrize("cls", list(_every_layer()))
def test_numpy_integer_seed_is_an_integer(cls):
    a, b = _every_layer(seed=np.int64(3))[cls](), _every_layer(seed=3)[cls]()
    for name, value in a.state_dict().items():
        assert np.array_equal(value, b.state_dict()[name]), name


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU", "LeakyRNN", "MinGRU", "LRU", "JordanRNN",
                                 "EchoStateNetwork", "SelfAttentionBlock", "Attention", "RecursiveNet"])
@pytest.mark.parametrize("seed", ["x", -1, True], ids=repr)
def test_reset_parameters_checks_its_seed(cls, seed):
    layer = _every_layer(seed=0)[cls]()
    with pytest.raises(ValueError, match=re.escape(f"seed must be a non-negative integer or None, got {seed!r}")):
        layer.reset_parameters(seed=seed)


_FLAGS = [(cls, flag) for cls in ("RNN", "LSTM", "GRU", "LeakyRNN", "MinGRU", "MinLSTM")
          for flag in ("bias", "batch_first", "bidirectional")]
_FLAGS += [("LRU", "bidirectional"), ("LRU", "batch_first"), ("JordanRNN", "bias"), ("SelfAttentionBlock", "causal"),
           ("SelfAttentionBlock", "batch_first"),
           ("SelfAttentionModel", "causal"), ("EchoStateNetwork", "readout_input")]


@pytest.mark.parametrize("value", ["no", "yes", 0, 1, None], ids=repr)
@pytest.mark.parametrize("cls,flag", _FLAGS, ids=[f"{c}-{f}" for c, f in _FLAGS])
def test_flags_must_be_true_or_false(cls, flag, value):
    """``bias="no"`` used to build a layer WITH biases (bool("no") is True): flags are not coerced."""
    with pytest.raises(ValueError, match=re.escape(f"{flag} must be True or False, got {value!r}")):
        _every_layer(**{flag: value})[cls]()


def test_numpy_bools_are_flags():
    layer = rnnlab.LSTM(I, H, bias=np.bool_(False), bidirectional=np.bool_(True))
    assert layer.bias is False and layer.bidirectional is True
    assert "bias_ih_l0" not in layer.state_dict()


# ------------------------------------------------------------------------------ torch's positional order
@pytest.mark.parametrize("call", [
    lambda: rnnlab.LSTM(3, 5, 2, True, True, 0.5),  # torch: dropout=0.5; here it would mean bidirectional
    lambda: rnnlab.GRU(3, 5, 2, True, True, 0.5),
    lambda: rnnlab.RNN(3, 5, 2, "tanh", True, True, 0.5),
    lambda: rnnlab.LeakyRNN(3, 5, 2, True, True),  # rnnlab's own cells: everything after bias by keyword
    lambda: rnnlab.MinGRU(3, 5, 2, True, True),
    lambda: rnnlab.MinLSTM(3, 5, 2, True, True),
    lambda: rnnlab.LRU(3, 5, 2, "float64"),
    lambda: rnnlab.JordanRNN(3, 5, 2, True, "softmax"),
], ids=["LSTM", "GRU", "RNN", "LeakyRNN", "MinGRU", "MinLSTM", "LRU", "JordanRNN"])
def test_arguments_after_bias_are_keyword_only(call, request):
    layer_name = request.node.callspec.id
    with pytest.raises(TypeError, match="positional argument") as info:
        call()
    assert str(info.value).startswith(f"{layer_name}.__init__()"), "the error names the class the user called"


def test_positional_arguments_up_to_batch_first_keep_torchs_order():
    assert not rnnlab.LSTM(3, 5, 2, False).bias and rnnlab.LSTM(3, 5, 2, False).num_layers == 2
    rnn = rnnlab.RNN(3, 5, 1, "relu", False, True)
    assert rnn.nonlinearity == "relu" and not rnn.bias and rnn.batch_first
    assert rnnlab.GRU(3, 5, 2, True, True).batch_first and not rnnlab.GRU(3, 5, 2, True, True).bidirectional
    assert rnnlab.LSTM(3, 5, 2, True, bidirectional=True).num_directions == 2


# ------------------------------------------------------------------------------ batch_first
_SEQUENCE_LAYERS = {  # every class with torch's batch_first, in its widest form
    "RNN": dict(nonlinearity="relu", bidirectional=True), "LSTM": dict(bidirectional=True),
    "GRU": dict(bidirectional=True), "LeakyRNN": dict(bidirectional=True), "MinGRU": dict(bidirectional=True),
    "MinLSTM": dict(bidirectional=True, method="scan"), "LRU": {},
}


def _pair(name, **kwargs):
    """The same layer (same weights) time-major and batch_first."""
    cls, options = getattr(rnnlab, name), {**_SEQUENCE_LAYERS[name], **kwargs}
    return (cls(I, H, 2, dtype="float64", seed=3, **options),
            cls(I, H, 2, dtype="float64", seed=3, batch_first=True, **options))


@pytest.mark.parametrize("name", list(_SEQUENCE_LAYERS))
def test_batch_first_is_the_same_network_on_swapped_axes(name):
    """As torch's: x, y, dy and the input's gradient (B, T, ...), states (L*D, B, H) either way; the
    numbers, the weight gradients and the (time-major) trace are exactly the time-major layer's."""
    time_major, batch_first = _pair(name)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I))
    y, state, trace = time_major(x)
    dy = rng.standard_normal(y.shape)
    halves = lambda state: state if isinstance(state, tuple) else (state,)  # noqa: E731 - the LSTM's pair or h
    dstate = tuple(np.ones_like(half) for half in halves(state))
    dstate = dstate if isinstance(state, tuple) else dstate[0]
    grads = time_major.backward(trace, dy, dstate)

    y_bf, state_bf, trace_bf = batch_first(np.ascontiguousarray(x.transpose(1, 0, 2)))
    grads_bf = batch_first.backward(trace_bf, dy.transpose(1, 0, 2), dstate)
    assert y_bf.shape == (B, T, y.shape[2]) and y_bf.flags.c_contiguous
    np.testing.assert_array_equal(y_bf, y.transpose(1, 0, 2))
    for half, half_bf in zip(halves(state), halves(state_bf), strict=True):
        np.testing.assert_array_equal(half_bf, half)
    assert grads_bf["input"].shape == (B, T, I) and grads_bf["input"].flags.c_contiguous
    for key, grad in grads.items():
        np.testing.assert_array_equal(grads_bf[key], grad.transpose(1, 0, 2) if key == "input" else grad,
                                      err_msg=key)
    assert list(trace_bf) == list(trace)
    for record in trace:
        np.testing.assert_array_equal(trace_bf[record], trace[record], err_msg=record)
    assert "batch_first=True" in repr(batch_first) and "batch_first" not in repr(time_major)
    truncated = time_major.backward(trace, None, dstate, truncate=2)  # no dy: the state's gradient alone
    for key, grad in batch_first.backward(trace_bf, None, dstate, truncate=2).items():
        np.testing.assert_array_equal(grad, truncated[key].transpose(1, 0, 2) if key == "input" else truncated[key],
                                      err_msg=key)


@pytest.mark.parametrize("name", list(_SEQUENCE_LAYERS))
def test_batch_first_output_is_the_callers_even_at_one_step(name):
    """At T = 1 (or B = 1) the transposed output is already contiguous: it must still be a copy,
    not a view of the trace's record that an edit of y would change."""
    _, layer = _pair(name, bidirectional=False)
    y, _, trace = layer(np.ones((B, 1, I)))
    top = trace.get("h", layer=1).copy()
    y[...] = 7.0
    np.testing.assert_array_equal(trace.get("h", layer=1), top)


def test_batch_first_shapes_are_named_in_its_layout():
    layer = rnnlab.GRU(I, H, batch_first=True, seed=0)
    with pytest.raises(ValueError, match=re.escape("input must have shape (B, T, 3), got (5, 3); one sequence (T, I),"
                                                   " as torch takes it unbatched: x[None] adds B = 1")):
        layer(np.zeros((T, I), np.float32))
    with pytest.raises(ValueError, match=re.escape("input must have shape (T, B, 3), got (5, 3); one sequence (T, I),"
                                                   " as torch takes it unbatched: x[:, None] adds B = 1")):
        rnnlab.GRU(I, H, seed=0)(np.zeros((T, I), np.float32))
    y, _, trace = layer(np.zeros((B, T, I), np.float32))
    assert y.shape == (B, T, H) and trace["h"].shape == (1, T, B, H)
    with pytest.raises(ValueError, match=re.escape(f"dy has shape {(T, B, H)}, expected {(B, T, H)}")):
        layer.backward(trace, np.zeros((T, B, H), np.float32))


def test_backward_follows_the_layout_its_forward_ran_with():
    """batch_first may be switched between a forward and its backward (a plain attribute, as torch's):
    dy and the input's gradient keep the layout of the forward that made the trace."""
    layer = rnnlab.LSTM(I, H, batch_first=True, dtype="float64", seed=0)
    y, _, trace = layer(_x(shape=(B, T, I)))
    layer.batch_first = False
    assert layer.backward(trace, np.ones_like(y))["input"].shape == (B, T, I)
    assert layer(_x())[0].shape == (T, B, H)


def test_batch_first_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for name in ("RNN", "LSTM", "GRU"):
        theirs = getattr(torch.nn, name)(I, H, 2, batch_first=True, bidirectional=True).double()
        ours = getattr(rnnlab, name)(I, H, 2, batch_first=True, bidirectional=True, dtype="float64")
        ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
        x, dy = rng.standard_normal((B, T, I)), rng.standard_normal((B, T, 2 * H))
        x_torch = torch.tensor(x, requires_grad=True)
        y_torch, _ = theirs(x_torch)
        (y_torch * torch.from_numpy(dy)).sum().backward()
        y, _, trace = ours(x)
        np.testing.assert_allclose(y, y_torch.detach().numpy(), rtol=1e-12, atol=1e-13, err_msg=name)
        np.testing.assert_allclose(ours.backward(trace, dy)["input"], x_torch.grad.numpy(), rtol=1e-12, atol=1e-13,
                                   err_msg=name)


# ------------------------------------------------------------------------------ messages name the class
def test_lstm_dstate_that_is_not_a_pair_is_named_dstate():
    layer = rnnlab.LSTM(3, 4, seed=0)
    _, _, trace = layer.forward(np.zeros((T, 2, 3), np.float32))
    with pytest.raises(ValueError) as info:
        layer.backward(trace, None, dstate=np.ones((1, 2, 4), np.float32))
    assert str(info.value) == "LSTM dstate must be a pair (dh_n, dc_n)"


def test_leaky_messages_name_the_class():
    layer = rnnlab.LeakyRNN(I, H, seed=0)
    h = np.zeros((1, B, H), np.float32)
    with pytest.raises(ValueError, match=r"^LeakyRNN state must be a single array h0"):
        layer.forward(np.zeros((T, B, I), np.float32), (h, h))
    other = rnnlab.RNN(I, H, seed=0)
    with pytest.raises(ValueError, match=r"trace must come from this LeakyRNN's own forward\(\)"):
        layer.backward(other.forward(np.zeros((T, B, I), np.float32))[2], None)


@pytest.mark.parametrize("cls", [rnnlab.RNN, rnnlab.GRU, rnnlab.MinGRU, rnnlab.LeakyRNN])
def test_nested_list_state_is_an_array_like_as_the_input_is(cls):
    """``RNN(x, [[[0., 0.]]])`` was refused ("must be a numpy array h0") while an LSTM's pair of lists
    and the input as a list were taken: a state (and dstate) is an array-like of the layer's dtype too."""
    layer = cls(I, H, dtype="float64", seed=0)
    h0 = np.full((1, B, H), 0.25)
    y_list, h_list, trace = layer.forward(_x(), h0.tolist())
    y_array, h_array, _ = layer.forward(_x(), h0)
    assert np.array_equal(y_list, y_array) and np.array_equal(h_list, h_array)
    grads = layer.backward(trace, None, np.ones((1, B, H)).tolist())
    assert np.array_equal(grads["h0"], layer.backward(trace, None, np.ones((1, B, H)))["h0"])
    with pytest.raises(ValueError, match=r"^h0 has dtype float64, but the .* is float32 \(convert with "
                                         r"np\.asarray\(h0, dtype=np\.float32\)\)$"):
        cls(I, H, seed=0).forward(_x(np.float32), h0.tolist())  # a list of Python floats is float64
    with pytest.raises(ValueError, match=re.escape("h0 has shape (2, 1, 2, 4), expected (1, 2, 4)")):
        layer.forward(_x(), [h0, h0])  # an (h, c) pair given to a cell without c: its shape says so


@pytest.mark.parametrize("mode", ["RNN", "LSTM"])
def test_state_lists_follow_one_rule_for_every_cell(mode):
    """The reviewer's pair: ``RNN(x, [[[0., 0.]]])`` and ``LSTM(x, (list, list))`` are both taken."""
    layer = _layer(mode, dtype="float64")
    h = np.zeros((1, B, H)).tolist()
    y, _, _ = layer.forward(_x(), (h, h) if mode == "LSTM" else h)
    assert np.array_equal(y, layer.forward(_x())[0])


# ------------------------------------------------------------------------------ ragged input
_RAGGED = [[[1.0, 2.0, 3.0]], [[1.0, 2.0]]]  # np.shape raises "setting an array element with a sequence"


def _ragged_calls():
    from rnnlab.data.trees import TreeBatch, Vocabulary, parse_tree
    from rnnlab.layers.selfattention import SelfAttentionModel
    from rnnlab.layers.tree import RecursiveNet

    net = RecursiveNet(2, H, seed=0)
    _, tree_trace = net.forward(TreeBatch.from_trees([parse_tree("(a b)")], Vocabulary(["a", "b"])))
    esn = rnnlab.EchoStateNetwork(I, 10, seed=0)
    return {
        "RNN": (lambda: rnnlab.RNN(I, H)(_RAGGED), "input"),
        "LSTM": (lambda: rnnlab.LSTM(I, H)(_RAGGED), "input"),
        "MinGRU": (lambda: rnnlab.MinGRU(I, H)(_RAGGED), "input"),
        "LRU": (lambda: rnnlab.LRU(I, H)(_RAGGED), "input"),
        "JordanRNN": (lambda: rnnlab.JordanRNN(I, H, 2)(_RAGGED), "input"),
        "JordanRNN-teacher": (lambda: rnnlab.JordanRNN(I, H, 3)(np.zeros((2, 1, I), np.float32), None, _RAGGED),
                              "teacher"),
        "SelfAttentionBlock": (lambda: rnnlab.SelfAttentionBlock(4, 2, 8)(_RAGGED), "input"),
        "SelfAttentionModel": (lambda: SelfAttentionModel(I, 2, d_model=4, num_heads=2)(_RAGGED), "input"),
        "PositionalEncoding": (lambda: rnnlab.PositionalEncoding(4)(_RAGGED), "input"),
        "Attention": (lambda: rnnlab.Attention("dot", H)(_RAGGED, np.zeros((3, 2, H), np.float32)), "query"),
        "Attention-mask": (lambda: rnnlab.Attention("dot", H)(np.zeros((2, 2, H), np.float32),
                                                             np.zeros((2, 2, H), np.float32),
                                                             mask=[[True], [True, False]]), "mask"),
        "SelfAttentionBlock-lengths": (lambda: rnnlab.SelfAttentionBlock(4, 2, 8)(np.zeros((3, 2, 4), np.float32),
                                                                                  lengths=[[1], [1, 2]]), "lengths"),
        "EchoStateNetwork": (lambda: esn.run(_RAGGED), "input"),
        "EchoStateNetwork-fit": (lambda: esn.fit(np.zeros((2, 1, I)), _RAGGED), "targets"),
        "RecursiveNet": (lambda: net.backward(tree_trace, _RAGGED), "d_root"),
    }


@pytest.mark.parametrize("name", list(_ragged_calls()))
def test_a_ragged_nested_list_is_said_in_one_line_naming_the_argument(name):
    """``LSTM(3, 2)([[[1., 2, 3]], [[1., 2]]])`` gave numpy's "setting an array element with a
    sequence..." from np.shape deep inside; now "input is not an array: ...", as check_array says it."""
    call, what = _ragged_calls()[name]
    with pytest.raises(ValueError, match=rf"^{what} is not an array: ") as info:
        call()
    assert "\n" not in str(info.value)


_RUNS = {"LSTM": lambda x: rnnlab.LSTM(4, 3)(x), "MinGRU": lambda x: rnnlab.MinGRU(4, 3)(x),
         "JordanRNN": lambda x: rnnlab.JordanRNN(4, 3, 2)(x),
         "SelfAttentionBlock": lambda x: rnnlab.SelfAttentionBlock(4, 2, 8)(x),
         "EchoStateNetwork": lambda x: rnnlab.EchoStateNetwork(4, 10).run(x)}


@pytest.mark.parametrize("value, kind", [("hello", "str"), (None, "NoneType"), ({"x": 1}, "dict")])
@pytest.mark.parametrize("layer", list(_RUNS))
def test_an_input_that_is_no_array_at_all_is_named_so(layer, value, kind):
    """``lstm("hello")`` said "input must have shape (T, B, 4), got ()": true, and no help."""
    with pytest.raises(ValueError, match=rf"^input must be an array, got {kind}$"):
        _RUNS[layer](value)


@pytest.mark.parametrize("layer", list(_RUNS))
def test_a_masked_input_is_refused_not_read_without_its_mask(layer):
    """A NaN under a mask passed the finite check (which skips masked values) and reached the kernel,
    which reads the raw data: NaN outputs. The mask cannot be honoured, so the array is refused."""
    x = np.ma.masked_array(np.ones((3, 2, 4), np.float32 if layer != "EchoStateNetwork" else np.float64))
    x.data[0, 0, 0] = np.nan
    x[0, 0, 0] = np.ma.masked
    with pytest.raises(ValueError, match=r"^input is a masked array, whose mask rnnlab would ignore: pass \.filled"):
        _RUNS[layer](x)


class PackedSequence(tuple):
    """Stands for torch.nn.utils.rnn.PackedSequence (a namedtuple of data, batch_sizes, ...), which
    rnnlab recognises by its name: CI has no torch."""


@pytest.mark.parametrize("layer", list(_RUNS))
def test_a_torch_packed_sequence_is_named_with_what_to_pass_instead(layer):
    """numpy said "setting an array element with a sequence. The requested array has an inhomogeneous
    shape after 1 dimensions": nothing a torch user passing what torch's RNNs take could act on."""
    packed = PackedSequence((np.ones((6, 4), np.float32), np.array([3, 2, 1])))
    with pytest.raises(ValueError, match=r"^input is a torch PackedSequence: pass the padded array "
                                         r"\(pad_packed_sequence\) "
                                         r"and lengths= where the layer takes them$"):
        _RUNS[layer](packed)


def test_a_masked_gradient_or_state_dict_entry_is_refused():
    layer = rnnlab.LSTM(I, H, seed=0)
    y, _, trace = layer(_x(np.float32))
    with pytest.raises(ValueError, match="^dy is a masked array"):
        layer.backward(trace, np.ma.masked_array(np.zeros_like(y)))
    state = layer.state_dict()
    state["bias_ih_l0"] = np.ma.masked_array(state["bias_ih_l0"])
    with pytest.raises(ValueError, match="^state dict entry 'bias_ih_l0' is a masked array"):
        layer.load_state_dict(state)


# ------------------------------------------------------------------------------ mistyped calls name the class
_CALLS = {
    "forward": lambda layer: layer.forward(np.zeros((2, 1, I), np.float32), hx=None),
    "__call__": lambda layer: layer(np.zeros((2, 1, I), np.float32), hx=None),
    "backward": lambda layer: layer.backward(None, dyy=None),
    "load_state_dict": lambda layer: layer.load_state_dict({}, strcit=False),
    "named_parameters": lambda layer: layer.named_parameters(True),
    "reset_parameters": lambda layer: layer.reset_parameters(sed=0),
    "state_dict": lambda layer: layer.state_dict(True),
    "parameters": lambda layer: layer.parameters(True),
}


@pytest.mark.parametrize("make, message", [
    (lambda: rnnlab.RNN(I, H, nonlinearity=np.zeros(0)), "nonlinearity must be tanh or relu, got a value of "
                                                         "type ndarray"),  # was "truth value ... is ambiguous"
    (lambda: rnnlab.LSTM(I, H, device=np.array(["cpu"])),  # taken as "cpu" (the element-wise == was true)
     "device must be cpu or cuda, got a value of type ndarray"),
    (lambda: rnnlab.MinGRU(I, H, method=["scan"]), "method must be one of sequential, scan, blelloch, got a "
                                                   "value of type list"),
    (lambda: rnnlab.Seq2Seq(5, 5, H, cell=[]), "cell must be one of rnn, lstm, gru, got a value of type list"),
    (lambda: rnnlab.Seq2Seq(5, 5, H, attention={}), "attention must be None or one of dot, general, additive, "
                                                    "got a value of type dict"),  # was "unhashable type"
    (lambda: rnnlab.Attention(np.zeros(2), H), "attention kind must be one of"),
    (lambda: rnnlab.SelfAttentionBlock(4, 2, 8, norm=np.zeros((2, 2))), "norm must be post or pre, got a value"),
    (lambda: rnnlab.SelfAttentionBlock(4, 2, 8, activation=["relu"]), "activation must be relu or gelu, got a"),
    (lambda: rnnlab.JordanRNN(I, H, 2, feedback=np.zeros(1)), "feedback must be values or softmax, got a value"),
    (lambda: rnnlab.layers.init.apply_init(rnnlab.RNN(I, H), np.array(["orthogonal"])),  # was taken as orthogonal
     "init must be one of uniform, orthogonal, identity, got a value of type ndarray"),
    (lambda: rnnlab.RNN(I, H, dtype=np.zeros((3, 3))), "dtype must be float32 or float64, got a value of type "
                                                       "ndarray"),  # its repr took four lines
    # a size, a flag, a seed or a number given an array: its repr took a line per 8 numbers
    (lambda: rnnlab.RNN(np.zeros(100), H), "input_size must be a positive integer, got a value of type ndarray"),
    (lambda: rnnlab.GRU(I, H, bias=np.zeros(100)), "bias must be True or False, got a value of type ndarray"),
    (lambda: rnnlab.LSTM(I, H, seed=np.arange(100)), "seed must be a non-negative integer or None, got a value of "
                                                     "type ndarray"),
    (lambda: rnnlab.SelfAttentionBlock(4, 2, 8, layer_norm_eps=np.zeros(100)), "layer_norm_eps must be a finite "
                                                                             "number, got a value of type ndarray"),
])
def test_an_option_given_an_array_or_a_list_is_named_in_one_line(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value).startswith(message) and "\n" not in str(info.value), info.value


@pytest.mark.parametrize("make, message", [
    (lambda: rnnlab.RNN(I, H, nonlinearity="Tanh"), "nonlinearity must be tanh or relu, got 'Tanh' (did you mean "
                                                    "'tanh'?)"),
    (lambda: rnnlab.GRU(I, H, device="gpu"), "device must be cpu or cuda, got 'gpu'"),  # no guess: cpu would be wrong
    (lambda: rnnlab.LSTM(I, H, dtype="Float64"), "dtype must be float32 or float64, got 'Float64' (did you mean "
                                                 "'float64'?)"),
    (lambda: rnnlab.LSTM(I, H, dtype="float16"), "dtype must be float32 or float64, got 'float16'"),  # not float64
    (lambda: rnnlab.MinGRU(I, H, method="Scan"), "method must be one of sequential, scan, blelloch, got 'Scan' (did "
                                                 "you mean 'scan'?)"),
    (lambda: rnnlab.Seq2Seq(5, 5, H, cell="LSTM"), "cell must be one of rnn, lstm, gru, got 'LSTM' (did you mean "
                                                   "'lstm'?)"),
    (lambda: rnnlab.Seq2Seq(5, 5, H, attention="none"), "attention must be None or one of dot, general, additive, got "
                                                        "'none' (did you mean None?)"),  # the CLI's word for it
    (lambda: rnnlab.Attention("Dot", H), "attention kind must be one of dot, general, additive, got 'Dot' (did you "
                                         "mean 'dot'?)"),
    (lambda: rnnlab.SelfAttentionBlock(4, 2, 8, norm="Pre"), "norm must be post or pre, got 'Pre' (did you mean "
                                                             "'pre'?)"),
    (lambda: rnnlab.layers.init.apply_init(rnnlab.RNN(I, H), "orth"), "init must be one of uniform, orthogonal, "
                                                                       "identity, got 'orth' (did you mean "
                                                                       "'orthogonal'?)"),
    (lambda: rnnlab.data.trees.parse_treebank("", format="SST"), "format must be one of labelled, plain, sst, got "
                                                                 "'SST' (did you mean 'sst'?)"),
    (lambda: rnnlab.data.trees.parse_treebank("", format=np.array(["sst"])), "format must be one of labelled, "
                                                                             "plain, sst, got a value of type "
                                                                             "ndarray"),  # was "truth value"
    (lambda: rnnlab.train.runs.list_runs(".", sort="Loss"), "sort must be one of updated, eval, loss, name, got "
                                                            "'Loss' (did you mean 'loss'?)"),
    (lambda: rnnlab.train.runs.list_runs(".", sort=["loss"]), "sort must be one of updated, eval, loss, name, "
                                                              "got a value of type list"),  # was "unhashable type"
    (lambda: rnnlab.train.optim.check_optimizer_arguments("Adam", 0.1, 1.0), "optimizer must be one of sgd, "
                                                                            "adagrad, rmsprop, adam, got 'Adam' "
                                                                            "(did you mean 'adam'?)"),
    (lambda: rnnlab.train.optim.check_optimizer_arguments(["adam"], 0.1, 1.0), "optimizer must be one of sgd, "
                                                                               "adagrad, rmsprop, adam, got a value "
                                                                               "of type list"),
])
def test_the_library_refuses_a_choice_in_the_cli_s_words(make, message):
    """The layers said "must be one of 'a', 'b'" (quoted, "one of" for two), the CLI and the labs "must be a or b",
    with a hint for a capital or a slip: one wording, the exception still a ValueError."""
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value) == message


def test_a_torch_dtype_is_taken_as_its_numpy_twin_and_named_where_refused():
    torch = pytest.importorskip("torch")
    assert rnnlab.LSTM(I, H, dtype=torch.float64).dtype == np.float64
    assert rnnlab.GRU(I, H, dtype=torch.float32).dtype == np.float32
    with pytest.raises(ValueError, match=r"^dtype must be float32 or float64, got torch.float16$"):
        rnnlab.RNN(I, H, dtype=torch.float16)  # was "got a value of type dtype"


def _settings_given_positionally():
    from rnnlab.data.trees import Vocabulary
    from rnnlab.layers.selfattention import SelfAttentionModel
    from rnnlab.layers.tree import RecursiveNet, TreeClassifier

    return {
        "EchoStateNetwork": lambda: rnnlab.EchoStateNetwork(I, 10, 2),  # output_size, or spectral_radius?
        "Attention": lambda: rnnlab.Attention("general", H, 3),
        "Seq2Seq": lambda: rnnlab.Seq2Seq(5, 5, H, "lstm"),
        "SelfAttentionBlock": lambda: rnnlab.SelfAttentionBlock(4, 2, 8, 0.1),  # torch's fourth is dropout
        "SelfAttentionModel": lambda: SelfAttentionModel(I, 2, 4),
        "PositionalEncoding": lambda: rnnlab.PositionalEncoding(4, 16),
        "RecursiveNet": lambda: RecursiveNet(5, H, "float64"),
        "TreeClassifier": lambda: TreeClassifier(Vocabulary(["a", "b"]), ["neg", "pos"], H, "float64"),
    }


@pytest.mark.parametrize("name", list(_settings_given_positionally()))
def test_settings_after_the_sizes_are_keyword_only(name):
    """As the RNN layers' past ``bias``: ``EchoStateNetwork(1, 100, 0.9)`` read 0.9 as output_size,
    ``SelfAttentionBlock(d, h, f, 0.1)`` (torch's dropout) as causal; each is now a TypeError."""
    with pytest.raises(TypeError, match=rf"^{name}.__init__\(\) takes \d+ positional arguments but \d+ were given"):
        _settings_given_positionally()[name]()


@pytest.mark.parametrize("call", list(_CALLS))
@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU", "LeakyRNN", "MinGRU", "MinLSTM", "LRU", "JordanRNN"])
def test_a_mistyped_call_names_the_users_class_not_a_base(cls, call):
    """``rnn.forward(x, hx=h)`` said "RecurrentLayer.forward() got an unexpected keyword argument"
    (and MinGRU's "_LinearRecurrence.forward()"): a class the user never called, as __init__ once did."""
    layer = _every_layer(seed=0)[cls]()
    with pytest.raises(TypeError) as info:
        _CALLS[call](layer)
    method = "forward" if call == "__call__" else call
    assert str(info.value).startswith(f"{cls}.{method}()"), info.value


def test_each_layer_owns_its_copies_of_the_inherited_methods():
    """The copies behave as the originals: same docs and defaults."""
    from rnnlab.layers.recurrent import RecurrentLayer

    for cls in (rnnlab.RNN, rnnlab.LSTM, rnnlab.GRU, rnnlab.LeakyRNN, rnnlab.MinGRU, rnnlab.LRU):
        assert cls.forward.__qualname__ == f"{cls.__name__}.forward"
        assert cls.backward.__defaults__ == (cls.__mro__[1].backward.__defaults__)
    assert rnnlab.LSTM.backward.__doc__ == RecurrentLayer.backward.__doc__
    assert RecurrentLayer.forward.__qualname__ == "RecurrentLayer.forward"  # the base keeps its own


@pytest.mark.parametrize("cls", [rnnlab.RNN, rnnlab.LSTM, rnnlab.GRU, rnnlab.LeakyRNN, rnnlab.MinGRU, rnnlab.MinLSTM,
                                 rnnlab.LRU, rnnlab.JordanRNN, rnnlab.EchoStateNetwork, rnnlab.SelfAttentionBlock,
                                 rnnlab.PositionalEncoding, rnnlab.Attention, rnnlab.Seq2Seq,
                                 rnnlab.layers.tree.RecursiveNet, rnnlab.layers.tree.TreeClassifier])
def test_calling_a_subclass_runs_its_own_forward(cls):
    """``layer(x)`` is ``layer.forward(x)``, as in torch: a subclass that wraps forward is called
    through its wrapper (the base's forward ran before, silently)."""
    Wrapped = type("Wrapped", (cls,), {"forward": lambda self, *args, **kwargs: ("wrapped", args, kwargs)})
    layer = Wrapped.__new__(Wrapped)  # no weights needed: only the call is under test
    assert layer(1, 2, k=3) == ("wrapped", (1, 2), {"k": 3})
    assert cls.__call__(layer, 4) == ("wrapped", (4,), {})
    import inspect

    assert inspect.signature(cls.__call__) == inspect.signature(cls.forward)  # help() and call hints
    assert cls.__call__.__doc__ == cls.forward.__doc__


@pytest.mark.parametrize("mode, nonlinearity", CELLS, ids=CELL_IDS)
def test_read_only_arguments_compile_no_kernel_again(mode, nonlinearity):
    """A read-only h0, dy or dstate (a trace's record, np.broadcast_to's) is another array type to
    numba: every kernel compiled again for it, 2-10 s on first use, silently."""
    import rnnlab.kernels as kernels
    from numba.core.dispatcher import Dispatcher

    dispatchers = [d for module in vars(kernels).values() if hasattr(module, "__dict__")
                   for d in vars(module).values() if isinstance(d, Dispatcher)]
    layer = make_layer(mode, 3, 4, nonlinearity=nonlinearity, dtype="float32")
    x = np.ones((5, 2, 3), np.float32)
    y, _, trace = layer(x)
    layer.backward(trace, np.ones_like(y))
    compiled = sum(len(d.signatures) for d in dispatchers)
    zeros = np.broadcast_to(np.float32(0), (1, 2, 4))  # read-only
    y, _, trace = layer(x, (zeros, zeros) if mode == "LSTM" else zeros)
    grads = layer.backward(trace, trace["h"][0], dstate=(zeros, zeros) if mode == "LSTM" else zeros)
    assert sum(len(d.signatures) for d in dispatchers) == compiled
    assert np.isfinite(grads["input"]).all()


def test_a_trace_differentiates_the_activation_its_forward_ran_with():
    """rnn.nonlinearity switched between forward and backward: the backward took the new one (a
    weight_hh gradient off by 0.7), and an unknown name set after construction ran tanh silently
    (torch raises on it)."""
    from rnnlab import analysis
    from rnnlab.layers import JordanRNN

    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 2, 3))
    rnn = rnnlab.RNN(3, 4, dtype="float64", seed=0)
    y, _, trace = rnn(x)
    expected, jacobians = rnn.backward(trace, np.ones_like(y)), analysis.step_jacobians(trace, 0, 0)
    y, _, trace = rnn(x)
    rnn.nonlinearity = "relu"
    assert trace.options == {"batch_first": False, "nonlinearity": "tanh"}
    assert repr(rnn) == "RNN(3, 4, nonlinearity='relu', dtype='float64')"
    for name, grad in rnn.backward(trace, np.ones_like(y)).items():
        np.testing.assert_array_equal(grad, expected[name], err_msg=name)
    np.testing.assert_array_equal(analysis.step_jacobians(trace, 0, 0), jacobians)
    with pytest.raises(ValueError, match="nonlinearity must be tanh or relu, got 'sigmoid'"):
        rnn.nonlinearity = "sigmoid"
    assert rnn.nonlinearity == "relu"

    jordan = JordanRNN(3, 4, 2, feedback="softmax", dtype="float64", seed=0)
    y, _, trace = jordan(x)
    expected = jordan.backward(trace, np.ones_like(y))
    y, _, trace = jordan(x)
    jordan.feedback = "values"
    for name, grad in jordan.backward(trace, np.ones_like(y)).items():
        np.testing.assert_array_equal(grad, expected[name], err_msg=name)
    with pytest.raises(ValueError, match=r"feedback must be values or softmax, got 'Softmax' \(did you mean"):
        jordan.feedback = "Softmax"


def test_a_trace_reads_as_a_dict_of_its_records(tmp_path):
    """np.savez(path, **trace) and dict(trace), a researcher's first step, raised TypeError."""
    for layer in (rnnlab.GRU(2, 3, num_layers=2, seed=0), rnnlab.SelfAttentionBlock(2, 1, 4, seed=0)):
        trace = layer(np.ones((4, 1, 2), np.float32))[-1]
        assert list(trace.keys()) == list(trace) == list(trace.names) and len(trace) == len(trace.names)
        as_dict = dict(trace)
        assert list(as_dict) == list(trace.names) and all(as_dict[k] is trace[k] for k in trace)
        assert [name for name, _ in trace.items()] == list(trace.names)
        assert all(value is trace[name] for name, value in zip(trace.keys(), trace.values()))
        np.savez(tmp_path / "trace.npz", **trace)
        with np.load(tmp_path / "trace.npz") as saved:
            assert sorted(saved.files) == sorted(trace.names)
            np.testing.assert_array_equal(saved["h"], trace["h"])


def test_a_traces_repr_names_its_records():
    """``trace`` at a prompt is how one meets it: its repr named everything but the records (and wrote
    ``dtype=dtype('float32')``, ``backward_truncate=None``); it now lists them, and the lengths it ran over."""
    lstm = rnnlab.LSTM(2, 3, num_layers=2, seed=0)
    y, _, trace = lstm(np.ones((4, 2, 2), np.float32), None, [4, 2])
    assert repr(trace) == ("Trace(mode='LSTM', num_layers=2, num_directions=1, hidden_size=3, steps=4, batch=2, "
                           "dtype='float32', options={'batch_first': False}, records=['h', 'c', 'i', 'f', 'g', 'o'], "
                           "lengths=[4, 2])")
    lstm.backward(trace, np.ones_like(y), truncate=2)
    assert "dtype='float32', backward_truncate=2," in repr(trace) and "'o', 'dh'], lengths" in repr(trace)
    block = rnnlab.SelfAttentionBlock(2, 1, 4, causal=True, seed=0)
    assert repr(block(np.ones((4, 1, 2), np.float32))[-1]) == (
        "SelfAttentionTrace(mode='SelfAttention', num_layers=1, num_directions=1, hidden_size=2, steps=4, batch=1, "
        "dtype='float32', options={'batch_first': False}, num_heads=1, causal=True, "
        "records=['h', 'z', 'attn', 'q', 'k', 'v'])")


def test_traces_compare_and_hash_as_themselves():
    """A trace (or a tree node) holds arrays: ``t1 == t2`` raised "truth value of an array is
    ambiguous", and a set of traces "unhashable type"."""
    from rnnlab.data.trees import TreeBatch, Vocabulary, parse_tree
    from rnnlab.layers.tree import RecursiveNet

    x = np.ones((4, 1, 2), np.float32)
    for layer in (rnnlab.LSTM(2, 3, seed=0), rnnlab.SelfAttentionBlock(2, 1, 4, seed=0)):
        first, second = layer(x)[-1], layer(x)[-1]
        assert first == first and first != second and len({first, second}) == 2
    tree = parse_tree("(a b)")
    vocab = Vocabulary.from_trees([tree])
    net = RecursiveNet(len(vocab), 3, seed=0)
    trace, other = (net.forward(TreeBatch.from_trees([tree], vocab))[1] for _ in range(2))
    assert trace == trace and trace != other and len({trace, other}) == 2
    leaf, root = trace.node(0, 0), trace.node(0, 2)
    assert leaf == leaf and leaf != root and len({leaf, root, trace.node(0, 0)}) == 3


# ------------------------------------------------------------------------------ the LRU's eigenvalues, as documented
@pytest.mark.parametrize("dtype,bound", [("float32", 1 + 2.0**-23), ("float64", 1.0)])
def test_lru_eigenvalues_reach_the_unit_circle_only_by_rounding_as_documented(dtype, bound):
    """|lambda| < 1 holds in exact arithmetic; with r_max within 1e-7 of 1 the float32 lambda rounds
    to a modulus of 1 or one step above (1.0000001), never more, and float64 never above 1."""
    far = rnnlab.LRU(2, 64, r_min=0.5, r_max=0.99, dtype=dtype, seed=0).eigenvalues()
    assert np.abs(far).max() < 1
    near = np.abs(rnnlab.LRU(2, 64, r_min=0.99999999, r_max=1.0, dtype=dtype, seed=0).eigenvalues())
    assert near.max() <= bound
    if dtype == "float32":
        assert near.max() > 1  # the case the docstring describes (the reviewer's)
    doc = rnnlab.LRU.__doc__ + rnnlab.LRU.eigenvalues.__doc__
    assert "exact arithmetic" in doc and "1 + 1.2e-7" in doc and "for any finite nu_log)" not in doc


# ------------------------------------------------------------------------------ every model class, one API
def _models(seed=0):
    """One tiny instance of every class with parameters(), built with ``seed``."""
    from rnnlab.data.trees import Vocabulary
    from rnnlab.layers.selfattention import SelfAttentionModel
    from rnnlab.layers.tree import RecursiveNet, TreeClassifier

    return {
        "RNN": lambda: rnnlab.RNN(I, H, seed=seed),
        "LSTM-2-bidirectional": lambda: rnnlab.LSTM(I, H, num_layers=2, bidirectional=True, seed=seed),
        "GRU": lambda: rnnlab.GRU(I, H, seed=seed),
        "RNNCell": lambda: rnnlab.RNNCell(I, H, seed=seed),
        "LSTMCell": lambda: rnnlab.LSTMCell(I, H, seed=seed),
        "GRUCell": lambda: rnnlab.GRUCell(I, H, bias=False, seed=seed),
        "LeakyRNN": lambda: rnnlab.LeakyRNN(I, H, seed=seed),
        "MinGRU-bidirectional": lambda: rnnlab.MinGRU(I, H, bidirectional=True, seed=seed),
        "MinLSTM": lambda: rnnlab.MinLSTM(I, H, seed=seed),
        "LRU": lambda: rnnlab.LRU(I, H, seed=seed),
        "JordanRNN": lambda: rnnlab.JordanRNN(I, H, 2, seed=seed),
        "SelfAttentionBlock": lambda: rnnlab.SelfAttentionBlock(4, 2, 8, seed=seed),
        "SelfAttentionModel": lambda: SelfAttentionModel(I, 2, d_model=4, num_heads=2, num_layers=2, d_ff=8,
                                                         seed=seed),
        "Attention": lambda: rnnlab.Attention("additive", H, seed=seed),
        "Seq2Seq": lambda: rnnlab.Seq2Seq(5, 6, H, cell="lstm", attention="general", seed=seed),
        "RecursiveNet": lambda: RecursiveNet(2, H, seed=seed),
        "TreeClassifier": lambda: TreeClassifier(Vocabulary(["a", "b"]), ["neg", "pos"], H, seed=seed),
    }


_MODEL_IDS = list(_models())


def _forward(model):
    """``(results, trace)`` of one tiny forward pass of any class of :func:`_models` (float32 inputs)."""
    from rnnlab.data.trees import TreeBatch, Vocabulary, parse_tree
    from rnnlab.layers.selfattention import SelfAttentionModel
    from rnnlab.layers.tree import RecursiveNet, TreeClassifier

    rng = np.random.default_rng(1)
    if type(model).__name__.endswith("Cell"):  # one step: x (B, I) in, h' (LSTMCell: (h', c')) out
        state, trace = model.forward(rng.standard_normal((B, I)).astype(np.float32))
        return (state,), trace
    if isinstance(model, rnnlab.Attention):
        q, m = rng.standard_normal((T, B, H)), rng.standard_normal((3, B, H))
        out, trace = model.forward(q.astype(np.float32), m.astype(np.float32))
        return (out,), trace
    if isinstance(model, rnnlab.SelfAttentionBlock):
        y, trace = model.forward(rng.standard_normal((T, B, 4)).astype(np.float32))
        return (y,), trace
    if isinstance(model, rnnlab.Seq2Seq):
        logits, trace = model.forward(np.array([[1, 2], [3, 4], [0, 1]]), [3, 2], np.array([[0, 1], [2, 3]]))
        return (logits,), trace
    if isinstance(model, RecursiveNet):
        roots, trace = model.forward(TreeBatch.from_trees([parse_tree("(a (b a))")], Vocabulary(["a", "b"])))
        return (roots,), trace
    if isinstance(model, TreeClassifier):
        logits, trace = model.forward([parse_tree("(a (b a))", label="pos"), parse_tree("b", label="neg")])
        return (logits,), trace
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    if isinstance(model, SelfAttentionModel):
        x = x.astype(np.float64)  # the model converts
    y, state_n, trace = model.forward(x)
    return (y, state_n), trace


def _backward(model, trace, gradient="ones"):
    """Backward of ``trace`` from dL/d(first result) = ones (``"ones"``), zeros (``"zeros"``) or None."""
    from rnnlab.layers.tree import RecursiveNet

    if type(model).__name__.endswith("Cell"):  # dL/dh' (LSTMCell: and dL/dc')
        d = None if gradient is None else (np.ones if gradient == "ones" else np.zeros)((B, H), np.float32)
        return model.backward(trace, (d, d) if model.has_cell_state and d is not None else d)
    if isinstance(model, rnnlab.Seq2Seq):
        shape, dtype = (trace._saved["o"].shape[0], trace._saved["o"].shape[1], model.vocab_out), np.float32
    elif isinstance(model, RecursiveNet):
        shape, dtype = (len(trace.batch), model.hidden_size), np.float32
    elif hasattr(trace, "_outputs"):  # TreeClassifier
        shape, dtype = trace._outputs.shape, np.float32
    elif isinstance(model, rnnlab.Attention):
        shape, dtype = trace._records["attentional"].shape, np.float32
    else:
        width = getattr(model, "output_size", None) or trace.hidden_size * trace.num_directions
        shape = (trace.steps, trace.batch, width)
        dtype = np.float64 if type(model).__name__ == "SelfAttentionModel" else np.float32
    d = None if gradient is None else (np.ones if gradient == "ones" else np.zeros)(shape, dtype)
    if isinstance(model, RecursiveNet):
        return model.backward(trace, d_root=d)
    return model.backward(trace, d)


def _records(trace):
    """A copy of every record a trace of any class exposes (read through views: ``trace[name]`` of a
    :class:`rnnlab.Trace` is a cached stack, which would hide a later edit of the record)."""
    if hasattr(trace, "_h"):  # TreeTrace
        return {"h": trace.h.copy(), "outputs": None if trace.outputs is None else trace.outputs.copy()}
    if isinstance(trace, rnnlab.Trace):
        return {(name, layer, d): trace.get(name, layer, d).copy() for name in trace.names
                for layer in range(trace.num_layers) for d in range(trace.num_directions)}
    return {name: trace[name].copy() for name in trace.names}


def _arrays(value):
    """The numpy arrays in a (nested) tuple of results."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, tuple):
        return [a for v in value for a in _arrays(v)]
    return []


@pytest.mark.parametrize("name", _MODEL_IDS)
def test_editing_forward_results_leaves_the_trace(name):
    """What forward returns is the caller's: editing it in place (scaling outputs, reusing a buffer)
    must change neither the trace's records (documented read-only) nor the gradients its backward
    gives. SelfAttentionBlock's y, JordanRNN's outputs, Attention's h~ and TreeClassifier's logits
    were the trace's own arrays."""
    model = _models()[name]()
    results, trace = _forward(model)
    grads = _backward(model, trace)
    records = _records(trace)
    for a in _arrays(results):
        a[...] = 7
    for key, value in _records(trace).items():
        assert np.array_equal(value, records[key]), key
    for key, value in _backward(model, trace).items():
        assert np.array_equal(value, grads[key]), key


@pytest.mark.parametrize("name", _MODEL_IDS)
def test_none_gradient_means_zero(name):
    """Every backward takes None for the gradient of its outputs (zero), as the RNN layers' dy does
    (JordanRNN's d_out=None used to say "d_out has dtype object")."""
    model = _models()[name]()
    _, trace = _forward(model)
    zero = _backward(model, trace, "zeros")
    none = _backward(model, trace, None)
    assert set(none) == set(zero)
    for key, value in none.items():
        assert np.array_equal(value, zero[key]), key


@pytest.mark.parametrize("name", _MODEL_IDS)
def test_backward_without_the_gradient_means_zero(name):
    """``backward(trace)`` was a TypeError (dy required) though every docstring says dy may be None:
    the gradient of the outputs defaults to None, zero, in every class."""
    model = _models()[name]()
    _, trace = _forward(model)
    zero = _backward(model, trace, "zeros")
    omitted = model.backward(trace)
    assert set(omitted) == set(zero)
    for key, value in omitted.items():
        assert np.array_equal(value, zero[key]), key


@pytest.mark.parametrize("name", _MODEL_IDS)
def test_load_state_dict_and_reset_parameters_write_into_the_live_arrays(name):
    """As torch's load_state_dict copies into its parameters: an optimizer holding the arrays (and the
    dict) parameters() handed out keeps updating the model after a checkpoint is loaded or the
    parameters are redrawn. They used to be replaced, so `held += 1` silently updated stale arrays."""
    model, other = _models(0)[name](), _models(1)[name]()
    params = model.parameters()
    held = dict(params)
    own_dict = params is model.parameters()  # the layers keep one dict; composites build one per call
    target = other.state_dict()
    model.load_state_dict(target)
    for key, value in model.parameters().items():
        assert value is held[key], key
        assert np.array_equal(value, target[key]), key
    assert not own_dict or model.parameters() is params
    for key, value in held.items():
        value += 1
        assert np.array_equal(model.state_dict()[key], target[key] + 1), key
    if hasattr(model, "reset_parameters"):
        model.reset_parameters(1)
        for key, value in model.parameters().items():
            assert value is held[key], key
            assert np.array_equal(value, target[key]), key
        assert not own_dict or model.parameters() is params


def _loaders(seed=0):
    """Every class with a load_state_dict, built with ``seed``: :func:`_models`' and the echo state
    network (fitted) and the trainer's models (the leaky cell's time constants frozen)."""
    from rnnlab.spec import ModelSpec
    from rnnlab.train.model import make_model

    def fitted_esn():
        esn = rnnlab.EchoStateNetwork(I, 6, output_size=2, seed=seed)
        rng = np.random.default_rng(seed)
        esn.fit(rng.standard_normal((T, B, I)), rng.standard_normal((T, B, 2)))
        return esn

    return {**_models(seed), "EchoStateNetwork": fitted_esn,
            "SequenceModel-leaky": lambda: make_model(ModelSpec(cell="leaky", hidden_size=H, learn_tau=False),
                                                      I, 2, seed, T),
            "JordanModel": lambda: make_model(ModelSpec(cell="jordan", hidden_size=H), I, 2, seed, T)}


@pytest.mark.parametrize("name", list(_loaders()))
def test_load_state_dict_not_strict_loads_what_the_state_has(name):
    """torch's ``load_state_dict(state, strict=False)``, how a pretrained network goes into a model with
    more (or other) parts: a parameter the state lacks keeps its value and live array, a key of no
    parameter is ignored, and both lists come back as torch's ``(missing_keys, unexpected_keys)``.
    A misshapen entry is still refused, the model unchanged, as torch refuses a size mismatch."""
    model, target = _loaders(0)[name](), _loaders(1)[name]().state_dict()
    before = model.state_dict()
    names = list(target)
    kept = names[0]
    partial = {**{k: v for k, v in target.items() if k != kept}, "extra.weight": np.zeros(3)}
    with pytest.raises(ValueError, match=rf"^state dict is missing key\(s\): {re.escape(kept)}; it has unexpected "
                                         r"key\(s\): extra.weight$"):  # both, as torch names them
        model.load_state_dict(partial)
    with pytest.raises(ValueError, match="^strict must be True or False, got 'no'$"):
        model.load_state_dict(partial, strict="no")
    for key, value in model.state_dict().items():
        assert np.array_equal(value, before[key]), key
    live = model.parameters()[kept]

    keys = model.load_state_dict(partial, strict=False)
    assert keys == ([kept], ["extra.weight"]) and keys.missing_keys == [kept]
    assert keys.unexpected_keys == ["extra.weight"]
    loaded = model.state_dict()
    assert np.array_equal(loaded[kept], before[kept]) and not np.array_equal(loaded[kept], target[kept])
    assert model.parameters()[kept] is live
    for key in names[1:]:
        assert np.array_equal(loaded[key], target[key]), key

    misshapen = {**partial, names[-1]: target[names[-1]][..., :-1]}
    with pytest.raises(ValueError, match=rf"^state dict entry '{re.escape(names[-1])}' has shape"):
        model.load_state_dict(misshapen, strict=False)
    for key, value in model.state_dict().items():
        assert np.array_equal(value, loaded[key]), key
    keys = model.load_state_dict(target)
    assert keys == ([], []) and repr(keys) == "<All keys matched successfully>"


@pytest.mark.parametrize("name", list(_loaders()))
def test_named_parameters_are_the_live_arrays_by_name(name):
    """``for name, p in model.named_parameters()``, torch's idiom: the state dict's names (torch's), in
    its order, each with its live array (the trainer's models leave out what they do not train)."""
    model = _loaders()[name]()
    pairs = list(model.named_parameters())
    assert [key for key, _ in pairs] == [key for key in model.state_dict() if key not in getattr(model, "frozen", ())]
    for key, value in pairs:
        assert value is model.parameters()[key], key
        assert np.array_equal(value, model.state_dict()[key]) and value is not model.state_dict()[key], key


@pytest.mark.parametrize("name", list(_loaders()))
def test_load_state_dict_names_every_wrong_key_and_shape_at_once(name):
    """A checkpoint from other sizes is wrong in many entries: each is named in one message, as torch
    names them, with its shape and the one expected (only the first used to be, so a user fixing them
    met the next on each try); missing and unexpected keys come in the same message. Nothing loads."""
    model, target = _loaders(0)[name](), _loaders(1)[name]().state_dict()
    before = model.state_dict()
    names = list(target)
    first, second = names[:2]
    shrunk = {key: target[key][..., :-1] for key in (first, second)}

    def said(key):
        return rf"'{re.escape(key)}' has shape {re.escape(str(shrunk[key].shape))}, " \
               rf"expected {re.escape(str(target[key].shape))}"

    with pytest.raises(ValueError, match=rf"^state dict entry {said(first)}; {said(second)}$"):
        model.load_state_dict({**target, **shrunk})
    with pytest.raises(ValueError, match=rf"^state dict entry {said(first)}; {said(second)}$"):
        model.load_state_dict({**target, **shrunk}, strict=False)
    dropped = names[2] if len(names) > 2 else second
    partial = {key: value for key, value in {**target, **shrunk}.items() if key != dropped}
    wrong = "; ".join(said(key) for key in (first, second) if key != dropped)
    with pytest.raises(ValueError, match=rf"^state dict is missing key\(s\): {re.escape(dropped)}; it has unexpected "
                                         rf"key\(s\): extra.weight; entry {wrong}$"):
        model.load_state_dict({**partial, "extra.weight": np.zeros(3)})
    for key, value in model.state_dict().items():
        assert np.array_equal(value, before[key]), key


@pytest.mark.parametrize("name", ["LSTM-2-bidirectional", "Seq2Seq"])
def test_load_state_dict_of_a_larger_torch_module_says_which_entries_to_take(name):
    """torch's ``model.state_dict()`` of a module holding the layer as ``model.rnn`` has every key under
    ``rnn.``: the error says so, with the line that picks them out (it listed the keys only), and
    that line loads them."""
    model, target = _loaders(0)[name](), _loaders(1)[name]().state_dict()
    state = {**{"rnn." + key: value for key, value in target.items()}, "fc.weight": np.zeros((2, H))}
    hint = "{k.removeprefix('rnn.'): v for k, v in state.items() if k.startswith('rnn.')}"
    with pytest.raises(ValueError, match=rf"^state dict is missing key\(s\): .*fc\.weight \(the keys are under "
                                         rf"'rnn\.', a larger module's: load {re.escape(hint)}\)$"):
        model.load_state_dict(state)
    assert model.load_state_dict(eval(hint)) == ([], [])
    for key, value in model.state_dict().items():
        assert np.array_equal(value, target[key]), key


def test_load_state_dict_not_strict_says_what_torch_says():
    """The same partial state into torch's LSTM and ours: the same two lists, the same numbers after."""
    torch = pytest.importorskip("torch")
    ours, theirs = rnnlab.LSTM(I, H, num_layers=2, seed=0), torch.nn.LSTM(I, H, num_layers=2)
    state = {k: v for k, v in rnnlab.LSTM(I, H, num_layers=2, seed=1).state_dict().items() if k != "bias_hh_l1"}
    state["head.weight"] = np.zeros((1, H), np.float32)
    expected = theirs.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    theirs.bias_hh_l1.data = torch.from_numpy(ours.state_dict()["bias_hh_l1"])
    assert ours.load_state_dict(state, strict=False) == (expected.missing_keys, expected.unexpected_keys)
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    y_torch, _ = theirs(torch.from_numpy(x))
    np.testing.assert_allclose(ours(x)[0], y_torch.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_composite_models_share_their_parts_arrays_after_load():
    for model in (_models()["Seq2Seq"](), _models()["SelfAttentionModel"](), _models()["TreeClassifier"]()):
        model.load_state_dict(model.state_dict())
        params = model.parameters()
        parts = [("encoder.", getattr(model, "encoder", None)), ("decoder.", getattr(model, "decoder", None)),
                 ("attn.", getattr(model, "attention", None)), ("", getattr(model, "net", None))]
        parts += [(f"layers.{k}.", block) for k, block in enumerate(getattr(model, "blocks", []))]
        for prefix, part in parts:
            for key, value in ({} if part is None else part.parameters()).items():
                assert params[prefix + key] is value, prefix + key


@pytest.mark.parametrize("name", ["Seq2Seq", "SelfAttentionModel", "TreeClassifier"])
def test_composite_models_take_an_entry_replaced_through_parameters(name):
    """An optimizer written ``params[k] = params[k] - lr * g[k]`` trains a composite as it does a
    layer: the mapping parameters() hands out writes a replaced entry into the part that owns it.
    It used to be a new dict per call, so the replacement (and a wrong shape) was silently ignored."""
    model, shifted = _models(0)[name](), _models(0)[name]()
    params = model.parameters()
    names = list(params)
    assert names == list(model.state_dict())
    target = {key: value + 0.25 * (k % 3) for k, (key, value) in enumerate(model.state_dict().items())}
    for key in names:
        params[key] = params[key] + 0.25 * (names.index(key) % 3)  # a new array for every name
    shifted.load_state_dict(target)
    assert np.array_equal(_forward(model)[0][0], _forward(shifted)[0][0])
    for key in (names[0], names[len(names) // 2], names[-1]):  # the composite's own arrays and its parts'
        good = params[key]
        params[key] = good[..., :-1]
        with pytest.raises(ValueError, match=rf"parameter '{re.escape(key)}' has shape"):
            _forward(model)
        params[key] = good
    with pytest.raises(KeyError, match="no parameter named 'stray'"):
        params["stray"] = good
    with pytest.raises(TypeError, match="parameters cannot be removed"):
        del params[names[0]]
    assert list(model.parameters()) == names


@pytest.mark.parametrize("name", _MODEL_IDS)
def test_a_trace_copied_apart_from_its_layer_is_said_to_be_a_copy(name):
    """``layer.backward(copy.deepcopy(trace))`` said "trace must come from this LSTM's own forward()",
    which it did; a trace is tied to the object that made it, and the message now says so. A layer
    and its trace copied together still work."""
    import copy

    model = _models()[name]()
    _, trace = _forward(model)
    with pytest.raises(ValueError, match=rf"^trace comes from another {type(model).__name__}'s forward\(\): .*"
                                         r"\(a copy of a layer is another object"):
        _backward(model, copy.deepcopy(trace))
    with pytest.raises(ValueError, match=rf"^trace must come from this {type(model).__name__}'s own forward"):
        model.backward(object())
    model_copy, trace_copy = copy.deepcopy((model, trace))
    for key, value in _backward(model_copy, trace_copy).items():
        np.testing.assert_array_equal(value, _backward(model, trace)[key], err_msg=key)


@pytest.mark.parametrize("name", _MODEL_IDS)
def test_old_traces_keep_the_weights_they_were_computed_with(name):
    """A trace owns copies of the weights: loading a checkpoint, redrawing the parameters or an
    in-place update after forward must not change the gradients of that trace's backward."""
    model = _models(0)[name]()
    _, trace = _forward(model)
    expected = _backward(model, trace)
    model.load_state_dict(_models(1)[name]().state_dict())
    if hasattr(model, "reset_parameters"):
        model.reset_parameters(2)
    for value in model.parameters().values():
        value += 0.5
    for key, value in _backward(model, trace).items():
        assert np.array_equal(value, expected[key]), key


def test_load_state_dict_replaces_entries_the_user_replaced():
    """An entry no longer the layer's own kind of array (another dtype, read-only, or sharing memory
    with another entry) is replaced by the loaded array, not written through."""
    layer = rnnlab.RNN(I, H, seed=0)
    params = layer.parameters()
    params["weight_ih_l0"] = params["weight_ih_l0"].astype(np.float64)
    frozen = params["bias_ih_l0"].copy()
    frozen.flags.writeable = False
    params["bias_ih_l0"] = frozen
    params["bias_hh_l0"] = params["bias_ih_l0"]  # one array for two names
    target = rnnlab.RNN(I, H, seed=1).state_dict()
    layer.load_state_dict(target)
    for key, value in layer.parameters().items():
        assert value.dtype == np.float32 and np.array_equal(value, target[key]), key
    assert layer.parameters()["bias_ih_l0"] is not frozen and not np.shares_memory(
        layer.parameters()["bias_ih_l0"], layer.parameters()["bias_hh_l0"])
    layer.forward(np.zeros((T, B, I), np.float32))


@pytest.mark.parametrize("cls", [c for c in _every_layer() if c not in ("SelfAttentionModel", "Seq2Seq")])
def test_reset_parameters_records_its_seed(cls):
    layer = _every_layer(seed=9)[cls]()
    layer.reset_parameters(4)
    assert layer.seed == 4
    assert all(np.array_equal(v, _every_layer(seed=4)[cls]().state_dict()[k]) for k, v in layer.state_dict().items())
    layer.reset_parameters()
    assert layer.seed is None


@pytest.mark.parametrize("cls", list(_every_layer()))
def test_seed_none_is_fresh_randomness_everywhere(cls):
    """None means fresh randomness for every class (SelfAttentionModel(seed=None) meant seed 0)."""
    a, b = _every_layer(seed=None)[cls](), _every_layer(seed=None)[cls]()
    assert a.seed is None
    assert any(not np.array_equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


# ------------------------------------------------------------------------------ messages say how to fix it
@pytest.mark.parametrize("make", [lambda: rnnlab.RNN(I, H), lambda: rnnlab.LSTM(I, H), lambda: rnnlab.LeakyRNN(I, H),
                                  lambda: rnnlab.MinGRU(I, H), lambda: rnnlab.LRU(I, H)],
                         ids=["RNN", "LSTM", "LeakyRNN", "MinGRU", "LRU"])
def test_truncate_zero_says_none_is_full_bptt(make):
    """The spec's and the CLI's truncate = 0 mean full BPTT; the API asks for None, and says so."""
    layer = make()
    y, _, trace = layer.forward(np.zeros((T, B, I), np.float32))
    with pytest.raises(ValueError) as info:
        layer.backward(trace, np.ones_like(y), truncate=0)
    assert str(info.value) == "truncate must be a positive number of steps or None (full BPTT), got 0"


def test_list_input_dtype_message_says_how_to_convert_a_list():
    """A list has no .astype: the message names np.asarray for it, .astype for an array."""
    layer = rnnlab.RNN(I, H)
    with pytest.raises(ValueError) as info:
        layer.forward(np.zeros((T, B, I)).tolist())
    assert str(info.value) == ("input has dtype float64, but the layer is float32 "
                               "(convert with np.asarray(x, dtype=np.float32))")
    with pytest.raises(ValueError, match=re.escape("(convert with .astype(np.float32))")):
        layer.forward(np.zeros((T, B, I)))
    y, _, trace = layer.forward(np.zeros((T, B, I), np.float32))  # the argument named, not "x" (an API review)
    with pytest.raises(ValueError, match=re.escape("dy has dtype float64, but the layer is float32 (convert with "
                                                   "np.asarray(dy, dtype=np.float32))")):
        layer.backward(trace, np.zeros_like(y).tolist())


def test_sizes_past_any_memory_read_as_numbers():
    """LSTM(2, 2**40) said "about 17179869184.1 PiB" (an API review), and 2**60 bytes "1e3 PiB"."""
    from rnnlab.layers._params import format_bytes

    assert [format_bytes(n) for n in (512, 3 * 2**50, 2**60 - 2**50, 2**60, 2**40 * 2**40 * 16)] == [
        "512 bytes", "3.0 PiB", "1023.0 PiB", "1.0 EiB", "1.7e7 EiB"]
    with pytest.raises(ValueError, match=r"about 1\.7e7 EiB \(float32\)"):
        rnnlab.LSTM(2, 2**40)


# ------------------------------------------------------------------------------ the API as a user reaches it
def test_the_dotted_names_the_readme_gives_resolve_after_import_rnnlab():
    """``rnnlab.layers.tree.RecursiveNet``, ``rnnlab.layers.init``, ``rnnlab.data.trees``: a fresh
    interpreter (this one has imported them all already), and nothing private in ``dir(rnnlab)``."""
    import subprocess
    import sys

    code = ("import rnnlab; print(rnnlab.layers.tree.RecursiveNet.__name__, rnnlab.layers.init.orthogonal_.__name__, "
            "rnnlab.data.trees.__name__, rnnlab.analysis.__name__, "
            "[n for n in dir(rnnlab) if n.startswith('_') and n != '__version__' "
            "or n in ('importlib', 'typing', 'Any', 'TYPE_CHECKING')])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["RecursiveNet", "orthogonal_", "rnnlab.data.trees", "rnnlab.analysis", "[]"]


@pytest.mark.parametrize("function", ["orthogonal_", "identity_"])
@pytest.mark.parametrize("seed", [-1, 1.5, True, "0", [0, -2]])
def test_init_functions_check_their_seed_as_the_layers_do(function, seed):
    from rnnlab.layers import init

    layer = rnnlab.RNN(I, H, seed=0)
    before = layer.state_dict()
    with pytest.raises(ValueError, match=rf"^{function}: seed must be a non-negative integer, a sequence of them, or "
                                         "None, got"):
        getattr(init, function)(layer, seed=seed)
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    getattr(init, function)(layer, seed=[0, 2])  # a SeedSequence's entropy, as the trainer passes it


@pytest.mark.parametrize("where,message", [
    ({"layer": 3}, "layer 3 out of range: the network has 2 layer(s)"),
    ({"direction": 1}, "direction 1 out of range: the network has 1 direction(s)"),
    ({"layer": True}, "layer must be an integer, got True"),
    ({"layer": 1.0}, "layer must be an integer, got 1.0"),
])
def test_leaky_rates_and_trace_get_name_a_bad_layer_or_direction(where, message):
    leaky = rnnlab.LeakyRNN(I, H, 2, seed=0)
    _, _, trace = leaky.forward(_x(np.float32))
    with pytest.raises(ValueError, match=re.escape(message)):
        leaky.rates(**where)
    with pytest.raises(ValueError, match=re.escape(message)):
        leaky.time_constants_of(**where)
    with pytest.raises(ValueError, match=re.escape(message)):
        trace.get("h", **where)
    assert trace.get("h", layer=np.int64(1)).shape == (T, B, H)  # numpy's integers are integers


def test_seq2seq_and_attention_traces_iterate_over_their_record_names():
    model = rnnlab.Seq2Seq(5, 5, 4, attention="dot", seed=0)
    src = np.array([[1, 2], [3, 4], [2, 1]])
    _, trace = model.forward(src, [3, 2], src)
    assert list(trace) == list(trace.names) and "weights" in list(trace)
    ones = np.ones((3, 1, 4), np.float32)
    _, attention_trace = rnnlab.Attention("dot", 4, seed=0).forward(ones[:2], ones)
    assert list(attention_trace) == list(attention_trace.names)


def test_a_trace_iterates_over_its_record_names_as_a_dict_does():
    layer = _layer("LSTM")
    _, _, trace = layer.forward(_x())
    assert list(trace) == ["h", "c", "i", "f", "g", "o"]
    layer.backward(trace, np.ones((T, B, H)))
    assert {name: trace[name].shape for name in trace}["dh"] == (1, T, B, H)


def test_numpy_floats_pass_where_python_floats_do():
    block = rnnlab.SelfAttentionBlock(4, 2, 8, layer_norm_eps=np.float32(1e-5), seed=0)
    assert block.layer_norm_eps == pytest.approx(1e-5)
    for bad in (True, float("nan"), -1e-5, "1e-5", 10**400):
        with pytest.raises(ValueError, match="layer_norm_eps must be a"):
            rnnlab.SelfAttentionBlock(4, 2, 8, layer_norm_eps=bad)


def test_jordan_dtype_none_is_float32_as_every_layer_but_the_esn():
    assert rnnlab.JordanRNN(I, H, 2, dtype=None).dtype == np.float32


def test_esn_eigenvalues_are_complex_even_where_every_one_is_real():
    lam = rnnlab.EchoStateNetwork(1, 1, seed=0).eigenvalues()
    assert lam.dtype == np.complex128 and lam.shape == (1,)


@pytest.mark.parametrize("build,text", [
    (lambda: rnnlab.LRU(3, 4, max_phase=1.0), "LRU(3, 4, max_phase=1.0)"),
    (lambda: rnnlab.MinGRU(3, 4, 2, method="scan"), "MinGRU(3, 4, num_layers=2, method='scan')"),
    (lambda: rnnlab.RNN(3, 4, 2, "relu", bidirectional=True),
     "RNN(3, 4, num_layers=2, nonlinearity='relu', bidirectional=True)"),
    (lambda: rnnlab.Seq2Seq(5, 5, 4, attention="additive", embed_size=2, attn_size=3),
     "Seq2Seq(5, 5, 4, cell='gru', attention='additive', embed_size=2, attn_size=3)"),
    (lambda: rnnlab.PositionalEncoding(4, dtype="float64"), "PositionalEncoding(4, max_len=512, dtype='float64')"),
    (lambda: rnnlab.SelfAttentionBlock(4, 2, 8, layer_norm_eps=1e-6),
     "SelfAttentionBlock(4, 2, 8, layer_norm_eps=1e-06)"),
])
def test_reprs_name_every_argument_that_differs_from_its_default(build, text):
    assert repr(build()) == text


def test_an_unbatched_sequence_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=re.escape("got (5, 3); one sequence (T, I), as torch takes it unbatched: "
                                                   "x[:, None] adds B = 1")):
        _layer("LSTM").forward(np.zeros((5, 3), np.float32))


# ------------------------------------------------------------------------------ spec step counts
@pytest.mark.parametrize("field", ["truncate", "eval_every", "checkpoint_every"])
def test_spec_step_counts_have_an_upper_bound_below_the_kernels_integers(field):
    """A 20-digit truncate reached a numba kernel ("Int value is too large", a traceback); 2**63 compiled a
    kernel of another integer type. Step counts stop where train.steps does; truncation past any sequence."""
    from rnnlab.errors import SpecError
    from rnnlab.spec import STEPS_MAX, TRUNCATE_MAX, load_preset

    spec = load_preset("hello")
    high = TRUNCATE_MAX if field == "truncate" else STEPS_MAX
    assert getattr(spec.with_overrides({f"train.{field}": high}).train, field) == high
    for value in (high + 1, 2**63, 99999999999999999999):
        with pytest.raises(SpecError, match=rf"^train\.{field}: must be between 0 and {high}, got {value}$"):
            spec.with_overrides({f"train.{field}": value})


@pytest.mark.parametrize("cls", [rnnlab.RNN, rnnlab.LSTM, rnnlab.GRU, rnnlab.LeakyRNN])
def test_a_forward_whose_trace_exceeds_the_machines_memory_is_one_line_naming_the_layer(cls, monkeypatch):
    """LSTM(1, 256).forward on (100000, 1024, 1) failed inside a compiled kernel with numba's
    "MemoryError: Allocation failed (probably too large)", naming neither the layer nor the size."""
    from rnnlab.layers import _params

    monkeypatch.setattr(_params, "physical_memory", lambda: 2**20)  # a 1 MiB machine
    layer = cls(4, 32, num_layers=2)
    x = np.zeros((300, 16, 4), np.float32)  # 2 layers x 300 steps x 16 x 32 records: beyond 1 MiB
    with pytest.raises(ValueError, match=rf"^{cls.__name__}\.forward: this input's trace would hold [\d,]+ values, "
                                         r"about [\d.]+ MiB \(float32\), more than this machine's 1 MiB; make the "
                                         r"sequence \(T\), the batch \(B\), hidden_size or num_layers smaller$"):
        layer.forward(x)
    layer.forward(x[:2, :1])  # a small one still runs


@pytest.mark.parametrize("bounds,words", [
    ((2, 100_000), "between 2 and 100000"),
    ((0, 10, True), "greater than 0 and at most 10"),
    ((0, 1, False, True), "at least 0 and less than 1"),
    ((-10, 10, True, True), "greater than -10 and less than 10"),
    ((0.5, 1.5), "between 0.5 and 1.5"),
    ((1e-8, 1e6), "between 1e-08 and 1e+06"),  # as a value refused beside it is written (got 1e+07)
    ((1, None), "at least 1"),
    ((1.0, None, True), "greater than 1"),
    ((0, math.inf), "at least 0"),  # an infinite bound is none
    ((None, 1, False, True), "less than 1"),
    ((None, None), "any value"),
])
def test_a_range_is_worded_in_words(bounds, words):
    from rnnlab.errors import range_words

    assert range_words(*bounds) == words


def test_a_refused_number_and_its_bound_read_alike_in_every_message():
    """Three ways of writing a number met in one message: the labs' bounds wrote 1e6 "1e+06", the value
    refused beside it "10000000" (number_text), a spec's "10000000.0" (repr)."""
    from rnnlab.errors import UserError, number_text
    from rnnlab.labs._options import as_typed, bound, check_int, check_number
    from rnnlab.spec import load_spec

    with pytest.raises(UserError, match=r"^threshold must be a number in \(0, 1e\+06\], got 1e\+07$"):
        check_number("threshold", 1e7, 0, 1e6, low_open=True)
    with pytest.raises(UserError, match=r"^units must be an integer in \[1, 1000\], got 5000$"):  # not 5000.0
        check_int("units", 5000.0, 1, 1000)
    hello = load_spec("hello")
    for overrides, message in (({"model.cell": "leaky", "model.tau_min": 2e6},
                                "model.tau_min: must be greater than 1 and at most 1e+06, got 2e+06"),
                               ({"train.learning_rate": 100.0},
                                "train.learning_rate: must be greater than 0 and at most 10, got 100")):
        with pytest.raises(UserError) as info:
            hello.with_overrides(overrides)
        assert str(info.value) == message
    assert [bound(1e6), bound(0.3), bound(1000), bound(2**63 - 1)] == ["1e+06", "0.3", "1000", "2^63-1"]
    assert [as_typed(1e6), as_typed(1234567.0), as_typed(0.1)] == ["1e+06", "1234567", "0.1"]
    # exact: a bound or value is never rounded (0.123456789 is no 0.123457)
    assert [number_text(v) for v in (0.123456789, 5e-324, 2.0**70)] == ["0.123456789", "5e-324",
                                                                        "1.1805916207174113e+21"]


def test_a_range_is_worded_alike_for_task_model_and_train_fields():
    """One wording for every bounded spec field (task fields said "between 2 and 100000", model and
    train fields "1 <= x <= 8192")."""
    from rnnlab.errors import SpecError
    from rnnlab.spec import load_preset

    spec = load_preset("adding-lstm")
    messages = []
    for field, value in (("task.length", 1), ("model.hidden_size", 0), ("train.learning_rate", 0)):
        with pytest.raises(SpecError) as info:
            spec.with_overrides({field: value})
        messages.append(str(info.value))
    assert messages == ["task.length: must be between 2 and 100000, got 1",
                        "model.hidden_size: must be between 1 and 8192, got 0",
                        "train.learning_rate: must be greater than 0 and at most 10, got 0"]


@pytest.mark.parametrize("preset,field", [("adding-lstm", "train.clip_norm"), ("adding-lstm", "train.learning_rate"),
                                          ("sine", "task.noise")])
def test_an_integer_past_a_floats_range_is_a_one_line_error(preset, field):
    """A 400-digit integer in a float field raised OverflowError (a traceback in `rnnlab spec`, and
    `rnnlab runs` over a run whose spec.toml held one)."""
    from rnnlab.errors import TOO_LARGE_FOR_A_FLOAT, SpecError
    from rnnlab.spec import load_preset

    with pytest.raises(SpecError) as info:
        load_preset(preset).with_overrides({field: 10**400})
    message = str(info.value)
    assert message.startswith(f"{field}: ") and message.endswith(f"got {TOO_LARGE_FOR_A_FLOAT}"), message


@pytest.mark.parametrize("value, spec, shown", [
    (-0.0, ".4g", "0"), (-1e-9, ".3f", "0.000"), (-0.0, ".3e", "0.000e+00"), (-4e-7, ".2f", "0.00"),
    (-1e-9, ".4g", "-1e-09"), (-2.5, ".4g", "-2.5"), (-0.004, ".2f", "0.00"), (-0.006, ".2f", "-0.01"),
    (None, ".4g", "-"), (float("nan"), ".4g", "-"),
])
def test_a_table_number_rounded_to_zero_is_never_signed(value, spec, shown):
    """A negative zero, or a tiny negative rounded to zero digits, read "-0" and "-0.000" in the tables (the
    tables' numbers all go through number_or_dash, their shares through percent_or_dash: "-0.0%")."""
    from rnnlab.errors import number_or_dash, percent_or_dash

    assert number_or_dash(value, spec) == shown
    assert percent_or_dash(-1e-6) == "0.0%" and percent_or_dash(-0.0) == "0.0%" and percent_or_dash(-0.5) == "-50.0%"


def test_the_losses_name_a_wrong_argument():
    """``rnnlab.train.cross_entropy`` and ``mean_squared_error`` are exported for a user's own loop: a
    float 0/1 mask (torch's habit) raised "ufunc 'bitwise_and' not supported", an id out of range an
    IndexError, and a wrong shape numpy's "could not be broadcast" from inside. Each now names the
    argument, and a 0/1 mask gives the bool mask's numbers."""
    from rnnlab.train import cross_entropy, mean_squared_error

    rng = np.random.default_rng(0)
    logits, targets = rng.standard_normal((T, B, 3)), rng.integers(0, 3, (T, B))
    mask = rng.random((T, B)) < 0.7
    for loss, second in ((cross_entropy, targets), (mean_squared_error, logits[::-1])):
        want = loss(logits, second, mask)
        got = loss(logits, second, mask.astype(np.float32))
        assert got.loss == want.loss and got.accuracy == want.accuracy and np.array_equal(got.grad, want.grad)
        with pytest.raises(ValueError, match=r"^mask must be True/False \(or 0/1\) per step, got dtype float64"):
            loss(logits, second, np.full((T, B), 0.5))
        with pytest.raises(ValueError, match=rf"^mask must have shape \(T, B\) = \({T}, {B}\), one flag per step, "
                                             rf"got \({T - 1}, {B}\)$"):
            loss(logits, second, mask[1:])
    with pytest.raises(ValueError, match=r"^logits must be a real array of shape \(T, B, V\), got float64 \(5, 3\)$"):
        cross_entropy(logits[:, 0], targets, mask)
    with pytest.raises(ValueError, match=r"^targets must have shape \(T, B\) = \(5, 2\), one class id per step, "
                                         r"got \(4, 2\)$"):
        cross_entropy(logits, targets[1:], mask)
    with pytest.raises(ValueError, match="^targets must be integer class ids, got dtype float64$"):
        cross_entropy(logits, targets.astype(float), mask)
    for bad in (3, -1, -100):  # -1 wrapped around silently; -100 (torch's ignore_index) was an IndexError
        with pytest.raises(ValueError, match=rf"^targets hold class id {bad}, outside 0\.\.2 \(logits have V = 3\)"):
            cross_entropy(logits, np.where(mask, targets, bad), mask)
    with pytest.raises(ValueError, match=r"^targets must have the outputs' shape \(5, 2, 3\), got \(5, 2, 2\)$"):
        mean_squared_error(logits, logits[..., :2], mask)


@pytest.mark.parametrize("name", ["sgd", "adagrad", "rmsprop", "adam"])
def test_an_optimizer_refuses_a_misshapen_gradient_and_a_bad_learning_rate(name):
    """A user's own loop over ``rnnlab.train``'s optimizers: a gradient of another shape was broadcast
    (a (1,) one moved every element of a bias by it, without a word) or failed inside numpy's
    arithmetic, after the parameters before it were updated (as after a missing gradient); a learning
    rate "0.1" failed only at the first step, and -1 climbed the loss."""
    from rnnlab.train import OPTIMIZER_CLASSES

    layer = _layer("GRU")
    y, _, trace = layer(_x())
    grads = layer.backward(trace, np.ones_like(y))
    before = layer.state_dict()
    optimizer = OPTIMIZER_CLASSES[name](layer.parameters(), 0.1)
    for wrong in (grads["bias_hh_l0"][:1], grads["bias_hh_l0"][:2]):
        with pytest.raises(ValueError, match=rf"^gradient 'bias_hh_l0' has shape \({len(wrong)},\), "
                                             rf"expected the parameter's \({3 * H},\)$"):
            optimizer.step(layer.parameters(), {**grads, "bias_hh_l0": wrong})
    with pytest.raises(KeyError, match="no gradient for parameter 'bias_hh_l0'"):  # the last: the others were updated
        optimizer.step(layer.parameters(), {key: value for key, value in grads.items() if key != "bias_hh_l0"})
    for key, value in layer.state_dict().items():
        assert np.array_equal(value, before[key]), key
    assert optimizer.steps == 0
    for rate in ("0.1", -1, 0, float("nan"), True):
        with pytest.raises(ValueError, match=rf"^learning_rate must be a positive number, got {re.escape(repr(rate))}"):
            OPTIMIZER_CLASSES[name](layer.parameters(), rate)
    # a rate from numpy (np.logspace's) is written as a number, not numpy 2's "np.float64(-0.1)"
    with pytest.raises(ValueError, match=r"^learning_rate must be a positive number, got -0\.1$"):
        OPTIMIZER_CLASSES[name](layer.parameters(), np.float64(-0.1))


def test_a_refused_numpy_scalar_is_quoted_as_the_value_it_holds():
    """numpy 2 writes a scalar's repr as "np.float64(-0.1)" or "np.str_('Tanh')": the errors quoting a
    refused value (errors.given) wrote that, where a float or a str is written as itself."""
    from rnnlab.errors import given
    from rnnlab.layers import RNN
    from rnnlab.train.optim import check_optimizer_arguments

    assert [given(v) for v in (np.float64(-0.1), np.int64(3), np.str_("Tanh"), np.bool_(True))] == \
        ["-0.1", "3", "'Tanh'", "True"]
    with pytest.raises(ValueError, match=r"^nonlinearity must be tanh or relu, got 'Tanh' \(did you mean 'tanh'\?\)$"):
        RNN(3, 4, nonlinearity=np.str_("Tanh"))
    with pytest.raises(ValueError, match=r"^clip_norm must be a number >= 0, got -1\.0$"):
        check_optimizer_arguments("adam", 0.1, np.float32(-1.0))  # (a library trainer's check: seq2seq's, trees')
