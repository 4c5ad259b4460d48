"""The lab's training history as columns: reads like the list of records it replaced, costs ~41 bytes a step."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from rnnlab.train import StepRecord
from rnnlab.train.history import COLUMNS, StepHistory


def record(step: int) -> StepRecord:
    return StepRecord(step=step, loss=1.0 / step, accuracy=None if step % 2 else step / 1e4,
                      grad_norm=float(step), clipped=step % 3 == 0, time=step * 1e-3)


def test_it_reads_like_the_list_of_records_past_several_growths():
    records = [record(s) for s in range(1, 3000)]
    history = StepHistory(capacity=4)
    for r in records:
        history.append(r)
    assert len(history) == 2999 and list(history) == records
    assert history[0] == records[0] and history[-1] == records[-1] and history[1500] == records[1500]
    assert history[10:20] == records[10:20] and history[-3:] == records[-3:] and history[::1000] == records[::1000]
    assert history[1].accuracy == 2e-4 and history[0].accuracy is None  # None survives the float column
    assert history.column("clipped").sum() == 999  # steps 3, 6, ..., 2997
    with pytest.raises(IndexError, match="2999 steps"):
        history[2999]
    assert StepHistory(records)[-1] == records[-1]


def test_its_jsonl_is_the_text_each_record_dumps_to():
    """What a lab's save writes to metrics.jsonl: the same text as `rnnlab train` writes, line for line."""
    import json

    records = [record(s) for s in range(1, 500)]
    records.append(StepRecord(step=500, loss=float("inf"), accuracy=0.1 + 0.2, grad_norm=1e-310, clipped=False,
                              time=1e21))  # not finite, not short, subnormal, exponent
    assert StepHistory(records).jsonl() == "".join(json.dumps(r.to_json()) + "\n" for r in records)
    assert StepHistory().jsonl() == ""
    from dataclasses import fields  # jsonl spells the fields out: a new one must be added there too

    assert [name for name, _ in COLUMNS] == [f.name for f in fields(StepRecord)]


def test_columns_are_read_only_views_and_one_size_reads_one_moment():
    history = StepHistory(record(s) for s in range(1, 11))
    steps = history.column("step")
    assert steps.tolist() == list(range(1, 11)) and history.column("loss", 3).tolist() == [1.0, 0.5, 1 / 3]
    with pytest.raises(ValueError, match="read-only"):
        steps[0] = 5
    old = history.column("grad_norm")
    for s in range(11, 5000):  # grows: views taken before stay whole
        history.append(record(s))
    assert old.tolist() == [float(s) for s in range(1, 11)]


def test_a_step_costs_41_bytes():
    assert sum(np.dtype(dtype).itemsize for _, dtype in COLUMNS) == 41  # a StepRecord object took ~260


def test_a_reader_never_sees_a_row_before_it_is_written():
    history = StepHistory(capacity=1)
    done = threading.Event()

    def trainer():
        for s in range(1, 200_001):
            history.append(record(s))
        done.set()

    thread = threading.Thread(target=trainer)
    thread.start()
    checks = 0
    while not done.is_set() or checks == 0:
        size = len(history)
        steps, losses = history.column("step", size), history.column("loss", size)
        assert np.array_equal(steps, np.arange(1, size + 1))
        assert np.array_equal(losses, 1.0 / np.arange(1, size + 1))
        checks += 1
    thread.join()
    assert len(history) == 200_000
