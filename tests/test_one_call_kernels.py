"""At small shapes a kernel call runs as one compiled function (``*_forward_one``/``*_backward_one``);
its results must be bit-for-bit those of the general path (separate GEMMs, batch chunks, Python
between them), which is what larger shapes and multi-threaded calls run."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.kernels import elman, gru, lstm

T, I, H = 5, 3, 4


def _data(dtype, gates: int, seed: int = 0, B: int = 2):
    rng = np.random.default_rng(seed)
    draw = lambda *shape: rng.standard_normal(shape).astype(dtype)  # noqa: E731
    return dict(x=draw(T, B, I), w_ih=draw(gates * H, I), w_hh=draw(gates * H, H), b_ih=draw(gates * H),
                b_hh=draw(gates * H), h0=draw(B, H), c0=draw(B, H), dy=draw(T, B, H), dh_n=draw(B, H),
                dc_n=draw(B, H))


def _run(module, name: str, d, truncate: int, relu: bool = False):
    """forward then backward of one cell family, through the public entry points."""
    if name == "lstm":
        saved = lstm.lstm_forward(d["x"], d["w_ih"], d["w_hh"], d["b_ih"] + d["b_hh"], d["h0"], d["c0"], 2)
        grads = lstm.lstm_backward(d["x"], d["w_ih"], d["w_hh"], *saved, d["dy"], d["dh_n"], d["dc_n"], truncate, 2)
    elif name == "gru":
        saved = gru.gru_forward(d["x"], d["w_ih"], d["w_hh"], d["b_ih"], d["b_hh"], d["h0"], 2)
        grads = gru.gru_backward(d["x"], d["w_ih"], d["w_hh"], *saved, d["dy"], d["dh_n"], truncate, 2)
    else:
        saved = (elman.elman_forward(d["x"], d["w_ih"], d["w_hh"], d["b_ih"] + d["b_hh"], d["h0"], relu, 2),)
        grads = elman.elman_backward(d["x"], d["w_ih"], d["w_hh"], *saved, d["dy"], d["dh_n"], relu, truncate, 2)
    return list(saved) + list(grads)


CASES = [(lstm, "lstm", 4, False), (gru, "gru", 3, False), (elman, "elman", 1, False), (elman, "elman", 1, True)]


@pytest.mark.parametrize("batch", [2, 5])  # LSTM and Elman project their input per step from a batch of 4
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("module,name,gates,relu", CASES, ids=["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_one_call_path_equals_the_general_path_bit_for_bit(monkeypatch, module, name, gates, relu, dtype, batch):
    d = _data(dtype, gates, B=batch)
    for truncate in (0, 2):
        one_call = _run(module, name, d, truncate, relu)
        with monkeypatch.context() as m:
            m.setattr(module, "fits_one_thread", lambda *args: False)
            general = _run(module, name, d, truncate, relu)
        assert len(one_call) == len(general)
        for a, b in zip(one_call, general):
            assert a.dtype == b.dtype == dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)


def test_small_shapes_take_the_one_call_path(monkeypatch):
    # the comparison above means something only if the small shape really runs the fused kernels
    calls = []
    for fn in ("lstm_forward_one", "lstm_backward_one"):
        real = getattr(lstm, fn)
        monkeypatch.setattr(lstm, fn, lambda *args, _real=real, _fn=fn: calls.append(_fn) or _real(*args))
    _run(lstm, "lstm", _data(np.float32, 4), 0)
    assert calls == ["lstm_forward_one", "lstm_backward_one"]


@pytest.mark.parametrize("module,name,gates", [(lstm, "lstm", 4), (elman, "elman", 1)], ids=["lstm", "rnn"])
def test_a_long_wide_input_takes_the_same_path_as_forced_general(monkeypatch, module, name, gates):
    """T*B rows times a wide input: the dW_ih GEMM is split across threads, so the call must not
    take the one-call path (which runs it whole, summing in another order)."""
    rng = np.random.default_rng(7)
    T_, B_, I_, H_ = 300, 4, 64, 8
    draw = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    d = dict(x=draw(T_, B_, I_), w_ih=draw(gates * H_, I_), w_hh=draw(gates * H_, H_), b_ih=draw(gates * H_),
             b_hh=draw(gates * H_), h0=draw(B_, H_), c0=draw(B_, H_), dy=draw(T_, B_, H_), dh_n=draw(B_, H_),
             dc_n=draw(B_, H_))
    natural = _run(module, name, d, 0)
    with monkeypatch.context() as m:
        m.setattr(module, "fits_one_thread", lambda *args: False)
        general = _run(module, name, d, 0)
    for a, b in zip(natural, general):
        np.testing.assert_array_equal(a, b)


def test_a_new_kernel_cache_removes_the_folders_of_other_sources_unused_for_a_month(tmp_path):
    """Each kernel source (a version of rnnlab, an edit) got a numba-<hash> folder of 20-40 MB and
    nothing removed them: 16 folders, 397 MB on a developer's machine (a code review)."""
    import os
    import time

    from rnnlab.kernels._jit import CACHE_KEEP_DAYS, use_cache_dir

    now = time.time()
    month = CACHE_KEEP_DAYS * 86400
    old, recent, used = (tmp_path / f"numba-{name}" for name in ("old", "recent", "used"))
    for folder, age in ((old, month + 3600), (recent, month - 3600), (used, month + 3600)):
        folder.mkdir()
        (folder / "kernel.nbi").write_text("index")
        os.utime(folder / "kernel.nbi", (now - age, now - age))
        os.utime(folder, (now - age, now - age))
    use_cache_dir(used, now=now - 10)  # an old folder used since: its marker says so
    (tmp_path / "other-tool").mkdir()
    use_cache_dir(tmp_path / "numba-new", now=now)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["numba-new", "numba-recent", "numba-used", "other-tool"]
    use_cache_dir(tmp_path / "numba-new", now=now + 10 * month)  # not new: nothing is removed
    assert (tmp_path / "numba-recent").is_dir()
    (tmp_path / "file").write_text("")
    use_cache_dir(tmp_path / "file" / "numba-x")  # a cache that cannot be made: no error (numba compiles anyway)
