"""The self-attention block, positional encoding and model: reference, PyTorch's numbers, masks, errors, training.

The golden files in tests/golden/selfattention were written by
tests/golden/make_selfattention_golden.py with torch; no torch is needed here.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import GOLDEN_DIR, rel_err
from rnnlab import gradcheck
from rnnlab.errors import UserError
from rnnlab.layers.selfattention import (BLOCK_PARAM_NAMES, PositionalEncoding, SelfAttentionBlock,
                                         SelfAttentionModel, SelfAttentionTrace, SequenceTooLongError,
                                         positional_encoding)
from rnnlab.reference import selfattention as reference

GOLDEN_FILES = sorted((GOLDEN_DIR / "selfattention").glob("*.npz"))
GOLDEN_TOLERANCE = {"float32": 1e-5, "float64": 1e-10}
TORCH_NAMES = (  # torch.nn.TransformerEncoderLayer().state_dict().keys(), in order
    "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias",
    "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
    "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
)
CONFIGS = [  # (norm, activation, causal, padded)
    ("post", "relu", False, False),
    ("post", "gelu", True, True),
    ("pre", "relu", True, False),
    ("pre", "gelu", False, True),
]


def _block(dtype="float64", *, d_model=8, num_heads=2, d_ff=12, norm="post", activation="relu", causal=False,
           seed=0, jitter=0.3, **kwargs):
    """A block whose parameters are moved off their init (zero biases, unit norms) so every term counts."""
    block = SelfAttentionBlock(d_model, num_heads, d_ff, causal=causal, norm=norm, activation=activation,
                               dtype=dtype, seed=seed, **kwargs)
    rng = np.random.default_rng(100 + seed)
    block.load_state_dict({k: v + jitter * rng.standard_normal(v.shape) for k, v in block.state_dict().items()})
    return block


def _problem(block, T, B, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, block.d_model)).astype(block.dtype)
    dy = rng.standard_normal((T, B, block.d_model)).astype(block.dtype)
    return x, dy


def _lengths(T, B):
    return np.array([T] + [max(1, T - 2 * b) for b in range(1, B)], dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# kernels vs the float64 reference
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 2e-5)])
@pytest.mark.parametrize("norm, activation, causal, padded", CONFIGS)
def test_block_matches_reference(dtype, tol, norm, activation, causal, padded):
    T, B = 6, 3
    block = _block(dtype, norm=norm, activation=activation, causal=causal)
    x, dy = _problem(block, T, B)
    lengths = _lengths(T, B) if padded else None
    y, trace = block.forward(x, lengths)
    grads = block.backward(trace, dy)
    kw = dict(lengths=lengths, causal=causal, norm_first=norm == "pre", activation=activation)
    y_ref, rec = reference.block_forward(block.state_dict(), x, 2, **kw)
    grads_ref = reference.block_backward(block.state_dict(), x, dy, 2, **kw)

    assert y.dtype == block.dtype and y.shape == (T, B, 8)
    assert rel_err(y, y_ref) < tol
    assert rel_err(trace["h"][0], y_ref) < tol
    assert rel_err(trace.get("z"), rec["z"]) < tol
    assert rel_err(trace.get("attn"), rec["attn"]) < tol
    for name in ("q", "k", "v"):  # (T, B, H, d_head) against the reference's (T, B, d)
        assert rel_err(trace.get(name), rec[name].reshape(T, B, 2, 4)) < tol, name
    assert list(grads) == list(TORCH_NAMES) + ["input"]
    errors = {name: rel_err(grads[name], grads_ref[name]) for name in grads_ref}
    assert max(errors.values()) < tol, errors
    np.testing.assert_array_equal(trace.get("dh"), dy)


@pytest.mark.parametrize("T, B", [(1, 1), (1, 3), (4, 1)])
def test_single_step_or_single_sequence(T, B):
    block = _block(causal=True, norm="pre")
    x, dy = _problem(block, T, B)
    y, trace = block.forward(x)
    grads = block.backward(trace, dy)
    kw = dict(causal=True, norm_first=True)
    assert rel_err(y, reference.block_forward(block.state_dict(), x, 2, **kw)[0]) < 1e-12
    grads_ref = reference.block_backward(block.state_dict(), x, dy, 2, **kw)
    assert max(rel_err(grads[name], grads_ref[name]) for name in grads_ref) < 1e-12
    if T == 1:
        assert np.all(trace.get("attn") == 1.0)


def test_threaded_shape_matches_reference():
    """Big enough that the batch and the GEMM rows are split across threads."""
    T, B = 32, 16
    block = _block("float32", d_model=64, num_heads=4, d_ff=96, norm="pre", causal=True, jitter=0.05)
    x, dy = _problem(block, T, B, seed=3)
    lengths = np.random.default_rng(4).integers(1, T + 1, size=B)
    y, trace = block.forward(x, lengths)
    grads = block.backward(trace, dy)
    kw = dict(lengths=lengths, causal=True, norm_first=True)
    y_ref, rec = reference.block_forward(block.state_dict(), x, 4, **kw)
    grads_ref = reference.block_backward(block.state_dict(), x, dy, 4, **kw)
    assert rel_err(y, y_ref) < 2e-5
    assert rel_err(trace.get("attn"), rec["attn"]) < 2e-5
    errors = {name: rel_err(grads[name], grads_ref[name]) for name in grads_ref}
    assert max(errors.values()) < 5e-5, errors


def test_float32_softmax_exponential_is_as_accurate_as_libm():
    """The vectorised float32 exp of the softmax: within one float32 ulp of exp on [-87, 0]; the sum it returns."""
    import numba

    from rnnlab.kernels.selfattention import exp_shifted

    @numba.njit
    def run(row, shift, scale, bits):
        return exp_shifted(row, row.shape[0], shift, scale, bits)

    x = np.concatenate([-np.geomspace(1e-8, 87.0, 20_000), [0.0, -1e-30, -0.5, -1.0, -2.0 ** -10]])
    for dtype in (np.float32, np.float64):
        row = x.astype(dtype)
        expected = np.exp(row.astype(np.float64))
        total = run(row, dtype(0.0), dtype(1.0), np.empty(row.size, np.int32))
        assert np.max(np.abs(row - expected) / expected) < (1.2e-7 if dtype is np.float32 else 1e-15)
        assert total == pytest.approx(expected.sum(), rel=1e-6)
    row = np.array([3.0, 1.0, -200.0], np.float32)  # shifted by the max and scaled: exp((x - 3) / 2)
    run(row, np.float32(3.0), np.float32(0.5), np.empty(3, np.int32))
    np.testing.assert_allclose(row[:2], [1.0, math.exp(-1.0)], rtol=1e-7)
    assert 0.0 <= row[2] < 1e-37  # far below the max: at most exp(-87), never garbage


# ---------------------------------------------------------------------------------------------
# PyTorch's numbers
# ---------------------------------------------------------------------------------------------

def test_golden_files_are_present():
    assert len(GOLDEN_FILES) == 8


def _load(path):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return json.loads(str(arrays.pop("meta"))), arrays


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.stem)
def test_matches_pytorch(path):
    meta, data = _load(path)
    block = SelfAttentionBlock(meta["d_model"], meta["nhead"], meta["dim_feedforward"], causal=meta["causal"],
                               norm="pre" if meta["norm_first"] else "post", activation=meta["activation"],
                               layer_norm_eps=meta["layer_norm_eps"], dtype=meta["dtype"])
    block.load_state_dict({k.removeprefix("param."): v for k, v in data.items() if k.startswith("param.")})
    tol = GOLDEN_TOLERANCE[meta["dtype"]]
    y, trace = block.forward(data["x"], data["lengths"] if meta["padded"] else None)
    assert rel_err(y, data["y"]) < tol
    assert rel_err(trace.get("attn"), data["attn"]) < tol
    grads = block.backward(trace, data["dy"])
    expected = {k.removeprefix("grad."): v for k, v in data.items() if k.startswith("grad.")}
    assert set(grads) == set(expected)
    errors = {name: rel_err(grads[name], expected[name]) for name in expected}
    assert max(errors.values()) < tol, errors


# ---------------------------------------------------------------------------------------------
# masks and attention weights
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("norm", ["post", "pre"])
def test_causal_outputs_do_not_depend_on_the_future(norm):
    T, B = 7, 2
    block = _block(norm=norm, causal=True)
    x, dy = _problem(block, T, B)
    y, _ = block.forward(x)
    for t in range(T - 1):
        changed = x.copy()
        changed[t + 1:] += np.random.default_rng(t).standard_normal(changed[t + 1:].shape)
        y2, _ = block.forward(changed)
        np.testing.assert_array_equal(y2[: t + 1], y[: t + 1])
        assert np.abs(y2[t + 1:] - y[t + 1:]).max() > 1e-3  # the future did change
    # the non-causal block does look ahead
    free = SelfAttentionBlock(8, 2, 12, norm=norm, dtype="float64", seed=0)
    free.load_state_dict(block.state_dict())
    changed = x.copy()
    changed[-1] += np.random.default_rng(9).standard_normal(changed[-1].shape)  # not a constant: LN ignores those
    assert np.abs(free.forward(changed)[0][0] - free.forward(x)[0][0]).max() > 1e-6


def test_causal_gradient_reaches_only_the_past():
    T, B = 5, 2
    block = _block(causal=True)
    x, _ = _problem(block, T, B)
    _, trace = block.forward(x)
    dy = np.zeros((T, B, 8))
    dy[2] = 1.0  # L = sum(y_2)
    d_input = block.backward(trace, dy)["input"]
    assert np.all(d_input[3:] == 0.0)
    assert np.abs(d_input[:3]).min(axis=-1).max() > 0


def test_causal_model_outputs_do_not_depend_on_the_future():
    model = SelfAttentionModel(3, 2, d_model=8, num_heads=2, num_layers=2, d_ff=12, causal=True,
                               dtype="float64", seed=1)
    x = np.random.default_rng(0).standard_normal((6, 2, 3))
    out, state, trace = model.forward(x)
    assert state is None and out.shape == (6, 2, 2) and out.dtype == np.float64
    changed = x.copy()
    changed[4:] = 5.0
    np.testing.assert_array_equal(model.forward(changed)[0][:4], out[:4])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_padded_keys_get_zero_weight_and_do_not_change_valid_outputs(dtype):
    T, B = 6, 3
    lengths = np.array([6, 4, 1])
    block = _block(dtype)
    x, _ = _problem(block, T, B)
    y, trace = block.forward(x, lengths)
    attn = trace.get("attn")  # (B, H, T, T)
    for b, n in enumerate(lengths):
        assert np.all(attn[b, :, :, n:] == 0.0)
        assert np.all(attn[b, :, :, :n] > 0.0)
    changed = x.copy()
    for b, n in enumerate(lengths):
        changed[n:, b] = 9.0
    y2, _ = block.forward(changed, lengths)
    for b, n in enumerate(lengths):  # every output at a valid step ignores the padding
        np.testing.assert_array_equal(y2[:n, b], y[:n, b])


@pytest.mark.parametrize("dtype, tol", [("float32", 1e-6), ("float64", 1e-14)])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_rows_sum_to_one(dtype, tol, causal):
    block = _block(dtype, causal=causal, num_heads=4)
    x, _ = _problem(block, 9, 3)
    _, trace = block.forward(x, np.array([9, 5, 2]))
    attn = trace.get("attn")
    assert attn.shape == (3, 4, 9, 9)
    assert np.abs(attn.sum(axis=-1) - 1.0).max() < tol
    assert attn.min() >= 0.0
    if causal:
        assert np.all(np.triu(attn, k=1) == 0.0)
    one_head = trace.attention(0, sequence=1, head=2)
    np.testing.assert_array_equal(one_head, attn[1, 2])
    assert trace.attention(0, sequence=1).shape == (4, 9, 9)


def test_trace_records_and_layout():
    block = _block()
    x, dy = _problem(block, 5, 2)
    y, trace = block.forward(x)
    assert isinstance(trace, SelfAttentionTrace)
    assert trace.mode == "SelfAttention" and trace.num_heads == 2 and not trace.has_gradients
    assert set(trace.names) == {"h", "z", "attn", "q", "k", "v"}
    assert trace["attn"].shape == (1, 2, 2, 5, 5)
    assert trace.get("q").shape == (5, 2, 2, 4)
    np.testing.assert_array_equal(trace.get("h"), y)
    block.backward(trace, dy)
    assert trace.has_gradients
    with pytest.raises(ValueError, match="head 2 out of range"):
        trace.attention(0, 0, head=2)


@pytest.mark.parametrize("args,message", [
    ((0, 0, True), "head must be an integer, got True"),  # was the (1, 2, 5, 5) of attn[0, True]
    ((0, True), "sequence must be an integer, got True"),  # was (1, 2, 2, 5, 5)
    ((0, 0, 1.0), "head must be an integer, got 1.0"),  # was numpy's IndexError
    ((0, 1.0), "sequence must be an integer, got 1.0"),
    ((0, "0"), "sequence must be an integer, got '0'"),
    ((True,), "layer must be an integer, got True"),
    ((0, 2), "sequence 2 out of range: the batch has 2 sequence(s)"),
    ((0, -1), "sequence -1 out of range: the batch has 2 sequence(s)"),
    ((0, 0, -1), "head -1 out of range: the block has 2 head(s)"),
    ((1,), "layer 1 out of range: the network has 1 layer(s)"),
])
def test_trace_attention_checks_every_index_as_it_checks_the_layer(args, message):
    block = _block()
    x, _ = _problem(block, 5, 2)
    _, trace = block.forward(x)
    with pytest.raises(ValueError) as info:
        trace.attention(*args)
    assert str(info.value) == message
    assert trace.attention(np.int64(0), np.int64(1), np.int32(1)).shape == (5, 5)  # numpy's integers are integers
    assert np.array_equal(trace.attention(0, 1), trace["attn"][0, 1])


# ---------------------------------------------------------------------------------------------
# positional encoding
# ---------------------------------------------------------------------------------------------

def test_positional_encoding_values():
    pe = positional_encoding(50, 6)
    np.testing.assert_array_equal(pe[0], [0, 1, 0, 1, 0, 1])
    assert pe[1, 0] == pytest.approx(math.sin(1.0), abs=1e-15)
    assert pe[1, 1] == pytest.approx(math.cos(1.0), abs=1e-15)
    assert pe[7, 2] == pytest.approx(math.sin(7 / 10000 ** (2 / 6)), abs=1e-15)
    assert pe[49, 5] == pytest.approx(math.cos(49 / 10000 ** (4 / 6)), abs=1e-15)
    np.testing.assert_allclose(pe, reference.positional_encoding(50, 6), rtol=0, atol=1e-13)
    odd = positional_encoding(10, 5)  # the last column of an odd width is a sine
    np.testing.assert_allclose(odd, reference.positional_encoding(10, 5), rtol=0, atol=1e-13)
    assert odd[3, 4] == pytest.approx(math.sin(3 / 10000 ** (4 / 5)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_positional_encoding_is_built_in_blocks_with_the_whole_tables_numbers(dtype, monkeypatch):
    """The table is computed a block of rows at a time (no float64 table beside a float32 one): the
    numbers are exactly those of the whole float64 table rounded once, whatever the block size."""
    from rnnlab.layers import selfattention

    pos = np.arange(23, dtype=np.float64)[:, None]  # the one-shot float64 table the code built before
    angle = pos / 10000.0 ** (np.arange(0, 7, 2, dtype=np.float64) / 7)
    whole = np.empty((23, 7))
    whole[:, 0::2], whole[:, 1::2] = np.sin(angle), np.cos(angle[:, :3])
    for chunk in (1, 7, 20, 2**20):  # a row, rows of 1, 2 and 3 (a ragged last block), all
        monkeypatch.setattr(selfattention, "DRAW_CHUNK", chunk)
        table = positional_encoding(23, 7, dtype)
        assert table.dtype == dtype and table.tobytes() == whole.astype(dtype).tobytes(), chunk


def test_positional_encoding_and_the_model_refuse_a_table_too_large_for_memory(monkeypatch):
    """``PositionalEncoding(10**6, max_len=10**6)`` was numpy's MemoryError (3.64 TiB of float64); the
    model is checked whole (blocks, table, projections) and named as called, not as its block."""
    from rnnlab.layers import _params

    need = 4 * 64 * 16
    monkeypatch.setattr(_params, "physical_memory", lambda: 2 * need)
    assert PositionalEncoding(16, max_len=64).table.nbytes == need
    monkeypatch.setattr(_params, "physical_memory", lambda: 2 * need - 2)
    with pytest.raises(ValueError, match=r"^PositionalEncoding\(16, max_len=64\): its 1,024 table entries need "
                                         r"about 4 KiB \(float32\), more than half of this machine's 8 KiB; make "
                                         r"d_model or max_len smaller$"):
        PositionalEncoding(16, max_len=64)
    monkeypatch.undo()
    model = SelfAttentionModel(3, 2, d_model=8, num_heads=2, num_layers=2, d_ff=12, max_len=20, seed=0)
    need = 8 * (model.num_parameters + 20 * 8)
    monkeypatch.setattr(_params, "physical_memory", lambda: 2 * need)
    SelfAttentionModel(3, 2, d_model=8, num_heads=2, num_layers=2, d_ff=12, max_len=20, dtype="float64")
    monkeypatch.setattr(_params, "physical_memory", lambda: 2 * need - 2)
    with pytest.raises(ValueError, match=rf"^SelfAttentionModel\(3, 2, d_model=8, num_layers=2, d_ff=12, max_len=20\): "
                                         rf"its {model.num_parameters + 160:,} parameters and positional-encoding "
                                         rf"entries need about .* \(float64\)"):
        SelfAttentionModel(3, 2, d_model=8, num_heads=2, num_layers=2, d_ff=12, max_len=20, dtype="float64")


def test_positional_encoding_module():
    enc = PositionalEncoding(4, max_len=8, dtype="float32")
    e = np.ones((5, 2, 4), np.float32)
    out = enc(e)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out - 1.0, np.broadcast_to(positional_encoding(5, 4)[:, None], (5, 2, 4)), atol=1e-6)
    de = enc.backward(e)  # the identity, as a new array: the caller's gradient is not handed back
    assert de is not e and not np.shares_memory(de, e) and np.array_equal(de, e)


def test_positional_encoding_batch_first_adds_along_time():
    """Time-major only, a (B, T, d) embedding got the table added along its batch axis: every step of a
    sequence the same vector, no error."""
    time_major, batch_first = PositionalEncoding(4, max_len=8), PositionalEncoding(4, max_len=8, batch_first=True)
    e = np.random.default_rng(0).standard_normal((5, 3, 4)).astype(np.float32)
    expected = time_major(e).transpose(1, 0, 2)
    np.testing.assert_array_equal(batch_first(e.transpose(1, 0, 2)), expected)
    assert repr(batch_first) == "PositionalEncoding(4, max_len=8, batch_first=True)"
    with pytest.raises(SequenceTooLongError, match="9"):  # T is the second axis
        batch_first(np.zeros((2, 9, 4), np.float32))
    with pytest.raises(ValueError, match=r"^input must have shape \(B, T, 4\), got \(2, 3, 5\)$"):
        batch_first(np.zeros((2, 3, 5), np.float32))


@pytest.mark.parametrize("x, message", [
    (np.full((4, 1, 3), 1e300), r"^input holds 1e\+300, beyond float32's range \(largest finite 3\.40282e\+38\)$"),
    (np.full((4, 1, 3), np.inf), r"^input contains NaN or Inf$"),
    (np.ones((4, 1, 3), complex), r"^input must be a real array, got dtype complex128$"),
])
def test_model_input_is_checked_before_it_is_converted(x, message):
    """The model converts its input to its dtype: 1e300 was cast first and then said to be "NaN or
    Inf" (which it is not), and a complex input lost its imaginary part with only numpy's warning."""
    model = SelfAttentionModel(3, 2, d_model=8, num_heads=2, seed=0)
    with pytest.raises(ValueError, match=message):
        model(x)
    assert model(np.ones((4, 1, 3), int))[0].shape == (4, 1, 2)  # integers are numbers: converted


@pytest.mark.parametrize("shape", [(0, 1, 4), (3, 0, 4)])
def test_positional_encoding_refuses_empty_input_like_every_layer(shape):
    enc = PositionalEncoding(4, max_len=8)
    for call, what in ((enc.forward, "input"), (enc.backward, "d_out")):
        with pytest.raises(ValueError) as info:
            call(np.zeros(shape, np.float32))
        assert str(info.value) == f"{what} must have at least one step and one sequence, got shape {shape}"
    with pytest.raises(ValueError, match="d_out has dtype float64"):
        enc.backward(np.zeros((2, 1, 4)))


@pytest.mark.parametrize("make, x", [
    (lambda: PositionalEncoding(4, max_len=5), np.zeros((6, 1, 4), np.float32)),
    (lambda: SelfAttentionBlock(4, 2, 8, max_len=5), np.zeros((6, 1, 4), np.float32)),
    (lambda: SelfAttentionModel(3, 2, d_model=4, num_heads=2, max_len=5), np.zeros((6, 1, 3))),
])
def test_sequences_longer_than_max_len_are_refused(make, x):
    with pytest.raises(SequenceTooLongError) as info:
        make()(x)
    message = str(info.value)
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)
    assert "\n" not in message and "6" in message and "max_len=5" in message


# ---------------------------------------------------------------------------------------------
# parameters and bad input
# ---------------------------------------------------------------------------------------------

def test_state_dict_has_torch_names_and_round_trips():
    meta, data = _load(GOLDEN_FILES[0])
    torch_state = {k.removeprefix("param."): v for k, v in data.items() if k.startswith("param.")}
    assert tuple(torch_state) == TORCH_NAMES
    block = SelfAttentionBlock(meta["d_model"], meta["nhead"], meta["dim_feedforward"], dtype="float64")
    assert tuple(block.state_dict()) == TORCH_NAMES == BLOCK_PARAM_NAMES
    assert {k: v.shape for k, v in block.state_dict().items()} == {k: v.shape for k, v in torch_state.items()}
    block.load_state_dict(torch_state)
    for name, value in block.state_dict().items():
        np.testing.assert_array_equal(value, torch_state[name].astype(np.float64))
    other = SelfAttentionBlock(meta["d_model"], meta["nhead"], meta["dim_feedforward"], dtype="float64")
    other.load_state_dict(block.state_dict())
    x = np.random.default_rng(0).standard_normal((4, 2, meta["d_model"]))
    np.testing.assert_array_equal(other.forward(x)[0], block.forward(x)[0])


def test_load_state_dict_errors_leave_the_block_unchanged():
    block = SelfAttentionBlock(8, 2, 12, seed=0)
    before = block.state_dict()
    state = block.state_dict()
    del state["norm2.bias"]
    with pytest.raises(ValueError, match="missing key.*norm2.bias"):
        block.load_state_dict(state)
    state = block.state_dict()
    state["linear1.weight"] = np.zeros((8, 12))
    with pytest.raises(ValueError, match=r"'linear1.weight' has shape \(8, 12\), expected \(12, 8\)"):
        block.load_state_dict(state)
    state = {**block.state_dict(), "extra": np.zeros(1)}
    with pytest.raises(ValueError, match="unexpected key.*extra"):
        block.load_state_dict(state)
    for name, value in block.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_init_is_seeded_and_shaped_like_torch():
    a, b = SelfAttentionBlock(8, 2, 12, seed=3), SelfAttentionBlock(8, 2, 12, seed=3)
    for name in TORCH_NAMES:
        np.testing.assert_array_equal(a.state_dict()[name], b.state_dict()[name])
    p = a.state_dict()
    assert np.all(p["self_attn.in_proj_bias"] == 0) and np.all(p["norm1.weight"] == 1)
    assert np.abs(p["self_attn.in_proj_weight"]).max() <= math.sqrt(6 / 32)
    assert a.num_parameters == 3 * 64 + 24 + 64 + 8 + 96 + 12 + 96 + 8 + 4 * 8


@pytest.mark.parametrize("kwargs, match", [
    (dict(d_model=10, num_heads=3, d_ff=4), r"d_model \(10\) must be divisible by num_heads \(3\)"),
    (dict(d_model=8, num_heads=0, d_ff=4), "num_heads must be a positive integer"),
    (dict(d_model=8, num_heads=2, d_ff=4, norm="middle"), "norm must be post or pre"),
    (dict(d_model=8, num_heads=2, d_ff=4, activation="tanh"), "activation must be relu or gelu"),
    (dict(d_model=8, num_heads=2, d_ff=4, dtype="float16"), "dtype must be"),
    (dict(d_model=8, num_heads=2, d_ff=4, layer_norm_eps=0.0), "layer_norm_eps must be a positive number"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SelfAttentionBlock(**kwargs)


def test_bad_inputs():
    block = SelfAttentionBlock(8, 2, 12, seed=0)
    x = np.zeros((5, 2, 8), np.float32)
    with pytest.raises(ValueError, match=r"input must have shape \(T, B, 8\), got \(5, 2, 7\)"):
        block.forward(np.zeros((5, 2, 7), np.float32))
    with pytest.raises(ValueError, match="dtype float64, but the layer is float32"):
        block.forward(x.astype(np.float64))
    with pytest.raises(ValueError, match="NaN or Inf"):
        block.forward(np.full((5, 2, 8), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"lengths\[1\] = 0 is out of range"):
        block.forward(x, [5, 0])
    with pytest.raises(ValueError, match=r"lengths\[0\] = 6 is out of range"):
        block.forward(x, [6, 5])
    with pytest.raises(ValueError, match=r"lengths has shape \(3,\), expected \(2,\)"):
        block.forward(x, [5, 5, 5])
    with pytest.raises(ValueError, match="lengths must be integers"):
        block.forward(x, [5.0, 4.0])
    _, trace = block.forward(x)
    with pytest.raises(ValueError, match=r"dy has shape \(4, 2, 8\), expected \(5, 2, 8\)"):
        block.backward(trace, np.zeros((4, 2, 8), np.float32))
    with pytest.raises(ValueError, match="trace comes from another SelfAttentionBlock"):
        SelfAttentionBlock(8, 2, 12).backward(trace, np.zeros((5, 2, 8), np.float32))


def test_batch_first_is_the_same_block_on_swapped_axes():
    """As torch's ``TransformerEncoderLayer(batch_first=True)``: x, y, dy and the input's gradient
    (B, T, d_model), lengths (B,), the trace time-major; every number the time-major block's."""
    T, B = 5, 3
    time_major, batch_first = _block(causal=True), _block(causal=True, batch_first=True)
    x, dy = _problem(time_major, T, B)
    y, trace = time_major.forward(x, _lengths(T, B))
    grads = time_major.backward(trace, dy)
    y_bf, trace_bf = batch_first.forward(x.transpose(1, 0, 2), _lengths(T, B))
    grads_bf = batch_first.backward(trace_bf, dy.transpose(1, 0, 2))
    np.testing.assert_array_equal(y_bf, y.transpose(1, 0, 2))
    assert y_bf.flags.c_contiguous and grads_bf["input"].flags.c_contiguous
    for name, grad in grads.items():
        np.testing.assert_array_equal(grads_bf[name], grad.transpose(1, 0, 2) if name == "input" else grad, name)
    for name in trace:
        np.testing.assert_array_equal(trace_bf[name], trace[name], name)
    assert repr(batch_first).endswith("causal=True, batch_first=True, dtype='float64')")
    with pytest.raises(ValueError, match=r"input must have shape \(B, T, 8\), got \(5, 3, 7\)"):
        batch_first.forward(np.zeros((5, 3, 7)))
    with pytest.raises(ValueError, match=r"dy has shape \(5, 3, 8\), expected \(3, 5, 8\)"):
        batch_first.backward(trace_bf, dy)
    short = SelfAttentionBlock(8, 2, 12, max_len=4, batch_first=True)  # max_len counts steps, not sequences
    short.forward(np.zeros((6, 4, 8), np.float32))
    with pytest.raises(SequenceTooLongError):
        short.forward(np.zeros((4, 6, 8), np.float32))


def test_batch_first_matches_torch():
    torch = pytest.importorskip("torch")
    block = _block(batch_first=True)
    theirs = torch.nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, batch_first=True).double().eval()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in block.state_dict().items()})
    x, dy = np.random.default_rng(0).standard_normal((2, 3, 5, 8))
    x_torch = torch.tensor(x, requires_grad=True)
    y_torch = theirs(x_torch)
    (y_torch * torch.from_numpy(dy)).sum().backward()
    y, trace = block.forward(x)
    np.testing.assert_allclose(y, y_torch.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(block.backward(trace, dy)["input"], x_torch.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_backward_uses_the_weights_of_its_forward():
    block = _block()
    x, dy = _problem(block, 4, 2)
    _, trace = block.forward(x)
    expected = block.backward(trace, dy)
    block.parameters()["linear1.weight"] += 1.0  # an optimizer step between forward and backward
    again = block.backward(trace, dy)
    for name in expected:
        np.testing.assert_array_equal(again[name], expected[name])


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------

def test_model_parameters_gradients_and_state_dict():
    model = SelfAttentionModel(3, 5, d_model=8, num_heads=2, num_layers=2, d_ff=12, dtype="float64", seed=0)
    names = list(model.parameters())
    assert names[:2] == ["input_proj.weight", "input_proj.bias"]
    assert names[2:14] == [f"layers.0.{n}" for n in TORCH_NAMES]
    assert names[-2:] == ["readout.weight", "readout.bias"]
    x = np.random.default_rng(0).standard_normal((6, 2, 3))
    out, _, trace = model.forward(x)
    assert trace["attn"].shape == (2, 2, 2, 6, 6) and trace["h"].shape == (2, 6, 2, 8)
    grads = model.backward(trace, np.ones_like(out))
    assert list(grads) == names + ["input"]
    assert all(grads[n].shape == p.shape for n, p in model.parameters().items())
    clone = SelfAttentionModel(3, 5, d_model=8, num_heads=2, num_layers=2, d_ff=12, dtype="float64", seed=9)
    clone.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(clone.forward(x)[0], out)
    with pytest.raises(ValueError, match="missing key.*layers.1.norm2.bias"):
        clone.load_state_dict({k: v for k, v in model.state_dict().items() if k != "layers.1.norm2.bias"})
    with pytest.raises(ValueError, match="no recurrent state"):
        model.forward(x, state=np.zeros((1, 2, 8)))
    with pytest.raises(ValueError, match="truncate does not apply"):
        model.backward(trace, np.ones_like(out), truncate=3)


def test_model_backward_checks_d_out_like_every_layer():
    """NaN used to go straight into NaN gradients and an integer d_out was silently cast."""
    model = SelfAttentionModel(3, 5, d_model=8, num_heads=2, num_layers=1, d_ff=12, seed=0)
    out, _, trace = model.forward(np.zeros((4, 2, 3), np.float32))
    bad = np.ones_like(out)
    bad[1, 0, 2] = np.nan
    with pytest.raises(ValueError, match="^d_out contains NaN or Inf$"):
        model.backward(trace, bad)
    with pytest.raises(ValueError, match="^d_out must be a float array, got dtype int64$"):
        model.backward(trace, np.ones(out.shape, np.int64))
    with pytest.raises(ValueError, match=r"^d_out has shape \(4, 2, 4\), expected \(4, 2, 5\)$"):
        model.backward(trace, np.ones((4, 2, 4)))
    float64, float32 = model.backward(trace, np.ones_like(out)), model.backward(trace, np.ones(out.shape, np.float32))
    for name, value in float64.items():  # the float64 outputs' gradient is cast to the model's dtype
        np.testing.assert_array_equal(value, float32[name])


def test_model_step_outputs_match_the_whole_sequence():
    model = SelfAttentionModel(3, 2, d_model=8, num_heads=2, num_layers=1, d_ff=12, causal=True,
                               dtype="float64", seed=2)
    x = np.random.default_rng(1).standard_normal((5, 2, 3))
    out, _, _ = model.forward(x)
    state = model.zero_state(2)
    for t in range(5):
        out_t, state = model.step_outputs(x[t], state)
        np.testing.assert_allclose(out_t, out[t], rtol=0, atol=1e-12)
    assert state.shape == (5, 2, 3)


def test_trainer_drives_the_model_and_it_learns():
    """rnnlab's own Trainer, with the model swapped in, trains it: 80 Adam steps on the adding
    task (T = 12) take the held-out loss from its start to well below the 'predict 1' baseline."""
    from rnnlab.spec import load_preset
    from rnnlab.train import Trainer, make_optimizer

    spec = load_preset("adding-lstm").with_overrides(
        {"task.length": 12, "train.steps": 80, "train.eval_every": 0, "train.eval_batch_size": 128})
    trainer = Trainer(spec)
    trainer.model = SelfAttentionModel(trainer.task.input_size, trainer.task.output_size, d_model=16,
                                       num_heads=2, num_layers=1, d_ff=32, causal=True, seed=spec.seed)
    trainer.optimizer = make_optimizer(spec.train.optimizer, trainer.model.parameters(), spec.train)
    start = trainer.evaluate().loss
    final = list(trainer.events(80))[-1]
    assert final.step == 80
    assert final.loss < 0.5 * trainer.task.baseline().loss < start, (start, final.loss)


# ---------------------------------------------------------------------------------------------
# gradient checks
# ---------------------------------------------------------------------------------------------

NAMES = ("self_attention", "self_attention_pre_norm_causal", "self_attention_model")


@pytest.mark.parametrize("name", NAMES)
def test_gradient_check_is_registered_and_passes(name):
    result = gradcheck.CHECKS[name]()
    assert result.ok, result
    expected = set(TORCH_NAMES) | {"input"}
    if name == "self_attention_model":
        expected = set(SelfAttentionModel(3, 2, d_model=4, num_heads=2, num_layers=2, d_ff=6).parameters()) | {"input"}
    assert set(result.errors) == expected


def test_gradient_check_catches_a_wrong_gradient(monkeypatch):
    original = SelfAttentionBlock.backward

    def backward(self, trace, dy):
        grads = original(self, trace, dy)
        grads["norm1.bias"] = grads["norm1.bias"] * 1.001
        return grads

    monkeypatch.setattr(SelfAttentionBlock, "backward", backward)
    result = gradcheck.CHECKS["self_attention"]()
    assert not result.ok and result.worst == "norm1.bias"
    assert result.max_rel_err == pytest.approx(1e-3, rel=0.05)
