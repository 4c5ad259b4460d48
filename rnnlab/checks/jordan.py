"""Finite-difference gradient checks of the Jordan network (float64), registered into
:data:`rnnlab.gradcheck.CHECKS`: ``jordan`` (teacher forcing: the fed-back targets are constants),
``jordan_free_running`` (the own outputs fed back: BPTT through them), ``jordan_free_running_softmax``
(their softmax fed back) and ``jordan_no_bias``.

Each compares ``backward``'s gradient of ``L = sum(outputs * d_out)`` (random cotangent) with
central differences for every parameter, the input and the initial feedback y0.
"""

from __future__ import annotations

import time

import numpy as np

from ..gradcheck import CheckResult, finite_difference_check, register_call

__all__ = ["check_jordan"]


def check_jordan(name: str, *, teacher_forcing: bool = True, feedback: str = "values", bias: bool = True,
                 T: int = 6, B: int = 2, I: int = 3, H: int = 4, O: int = 3, seed: int = 0) -> CheckResult:
    """Gradient check of :class:`rnnlab.layers.jordan.JordanRNN` on a random tiny float64 problem."""
    from ..layers.jordan import JordanRNN

    started = time.perf_counter()
    net = JordanRNN(I, H, O, bias=bias, feedback=feedback, dtype="float64", seed=seed)
    # twice torch's init scale, so that the feedback path matters
    net.load_state_dict({k: 2.0 * v for k, v in net.state_dict().items()})
    rng = np.random.default_rng(30_000 + seed)
    x = rng.standard_normal((T, B, I))
    y0 = rng.uniform(-1.0, 1.0, (B, O))
    teacher = rng.standard_normal((T, B, O)) if teacher_forcing else None
    d_out = rng.standard_normal((T, B, O))
    _, _, trace = net.forward(x, y0, teacher)
    grads = net.backward(trace, d_out)

    def loss() -> float:
        outputs, _, _ = net.forward(x, y0, teacher)
        return float(np.sum(outputs * d_out))

    tensors: dict[str, np.ndarray] = dict(net.parameters())  # live arrays: forward reads them
    tensors["input"] = x
    tensors["y0"] = y0
    detail = (f"Jordan teacher_forcing={teacher_forcing} feedback={feedback} bias={bias} "
              f"T={T} B={B} I={I} H={H} O={O} seed={seed}")
    return finite_difference_check(name, loss, tensors, grads, detail=detail, started=started)


def _register(name: str, **options) -> None:
    register_call(name, check_jordan, "JordanRNN", **options)


_register("jordan")
_register("jordan_no_bias", bias=False)
_register("jordan_free_running", teacher_forcing=False)
_register("jordan_free_running_softmax", teacher_forcing=False, feedback="softmax")
