"""The benchmark's machinery on tiny shapes. Structure only: no timing is asserted."""

from __future__ import annotations

import pytest

from rnnlab import bench

TINY = [(2, 5, 3, 4)]


def test_row_structure_without_torch():
    calls = []
    rows = bench.run_bench(["rnn_tanh", "lstm"], TINY, repeats=2, use_torch=False, block_ms=1,
                           progress=lambda *a: calls.append(a))
    assert [r["cell"] for r in rows] == ["rnn_tanh", "lstm"]
    for row in rows:
        assert tuple(row) == bench.ROW_KEYS
        assert (row["B"], row["T"], row["I"], row["H"]) == TINY[0]
        assert row["rnnlab_fwd_ms"] > 0 and row["rnnlab_fwdbwd_ms"] > 0 and row["ref_fwdbwd_ms"] > 0
        assert row["ratio_ref"] > 0
        assert row["torch_fwd_ms"] is None and row["ratio_fwd"] is None and row["met"] is None
        assert row["repeats"] == 2 and row["ref_repeats"] == 2
    assert calls[0] == (0, 2, "rnn_tanh B=2 T=5 I=3 H=4") and calls[-1] == (2, 2, "")


def test_with_torch():
    pytest.importorskip("torch")
    (row,) = bench.run_bench(["gru"], TINY, repeats=1, use_reference=False, block_ms=1)
    assert row["torch_fwd_ms"] > 0 and row["torch_fwdbwd_ms"] > 0
    assert row["ratio_fwdbwd"] == pytest.approx(row["torch_fwdbwd_ms"] / row["rnnlab_fwdbwd_ms"])
    assert isinstance(row["met"], bool) and row["ref_fwdbwd_ms"] is None


def test_targets():
    assert bench.target_for("lstm", 1, 16) == 5.0
    assert bench.target_for("gru", 1, 64) == 5.0
    assert bench.target_for("rnn_tanh", 1, 128) == 1.5
    assert bench.target_for("lstm", 16, 64) == 1.0
    assert bench.target_for("gru", 64, 512) == 1.5


def test_reference_repeats():
    assert bench.reference_repeats(7, 128) == 7
    assert bench.reference_repeats(7, 256) == 3
    assert bench.reference_repeats(12, 512) == 4
    assert bench.reference_repeats(1, 512) == 1


def test_shapes():
    assert bench.SHAPES[0] == (1, 100, 8, 16) and bench.SHAPES[-1] == (64, 50, 256, 512)
    assert bench.QUICK_SHAPES == bench.SHAPES[:3]


@pytest.mark.parametrize(
    "kwargs",
    [dict(cells=["nope"]), dict(cells=[]), dict(shapes=[(1, 2, 3)]), dict(shapes=[(0, 1, 1, 1)]),
     dict(repeats=0), dict(threads=0), dict(threads=10_000)],
)
def test_bad_arguments(kwargs):
    args = dict(cells=["lstm"], shapes=TINY, repeats=1, use_torch=False, use_reference=False)
    with pytest.raises(ValueError):
        bench.run_bench(**{**args, **kwargs})


def test_thread_limits_restore():
    import numba

    before = numba.get_num_threads()
    with bench.thread_limits(1) as info:
        assert numba.get_num_threads() == 1 and info["threads"] == 1
    assert numba.get_num_threads() == before


def test_environment():
    env = bench.environment(1, use_torch=False)
    assert env["threads"] == 1 and env["torch"] is None and env["cores"] >= 1
