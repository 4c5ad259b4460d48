"""Finite-difference gradient checks of the self-attention block and model, in float64.

Registered into :data:`rnnlab.gradcheck.CHECKS` on import:

- ``self_attention``: one post-norm block (torch's default), ReLU feed-forward, key padding
  (one sequence shorter than T);
- ``self_attention_pre_norm_causal``: one pre-norm block with a causal mask and a GELU feed-forward;
- ``self_attention_model``: :class:`~rnnlab.layers.selfattention.SelfAttentionModel` with two causal
  blocks, its input projection, positional encoding and readout.

Each perturbs every element of every parameter and of the input, for the loss
``L = sum(y * dy)`` with a random cotangent ``dy``. ReLU problems are re-drawn (seed + 1, ...)
until every feed-forward pre-activation is at least :data:`rnnlab.gradcheck.RELU_MARGIN` from
the kink at 0.
"""

from __future__ import annotations

import time

import numpy as np

from ..gradcheck import RELU_MARGIN, CheckResult, finite_difference_check, register


def _min_preactivation(trace) -> float:
    """Smallest |feed-forward pre-activation| over every block of a trace."""
    return min(float(np.abs(saved["a1"]).min()) for saved in trace._saved.values())


def check_block(name: str, *, norm: str, activation: str, causal: bool, padded: bool, T: int = 4, B: int = 2,
                d_model: int = 4, num_heads: int = 2, d_ff: int = 6, seed: int = 0) -> CheckResult:
    """Gradient check of one :class:`SelfAttentionBlock` in float64: every parameter and the input."""
    from ..layers.selfattention import SelfAttentionBlock

    started = time.perf_counter()
    for attempt in range(100):
        s = seed + attempt
        block = SelfAttentionBlock(d_model, num_heads, d_ff, causal=causal, norm=norm, activation=activation,
                                   dtype="float64", seed=s)
        rng = np.random.default_rng(20_000 + s)
        # parameters away from their init (zero biases, unit norms) so every term is exercised
        for value in block.parameters().values():
            value += 0.3 * rng.standard_normal(value.shape)
        x = rng.standard_normal((T, B, d_model))
        dy = rng.standard_normal((T, B, d_model))
        lengths = np.array([T] + [max(1, T - 1 - b) for b in range(1, B)]) if padded else None
        _, trace = block.forward(x, lengths)
        if activation != "relu" or _min_preactivation(trace) > RELU_MARGIN:
            break
    else:  # pragma: no cover - 100 unlucky seeds in a row
        raise RuntimeError(f"{name}: found no ReLU problem away from the kink")
    grads = block.backward(trace, dy)

    def loss() -> float:
        y, _ = block.forward(x, lengths)
        return float(np.sum(y * dy))

    tensors = dict(block.parameters())
    tensors["input"] = x
    detail = (f"SelfAttentionBlock norm={norm} activation={activation} causal={causal} "
              f"lengths={None if lengths is None else lengths.tolist()} T={T} B={B} d_model={d_model} "
              f"heads={num_heads} d_ff={d_ff} seed={s}")
    return finite_difference_check(name, loss, tensors, grads, detail=detail, started=started)


def check_model(name: str, *, T: int = 4, B: int = 2, input_size: int = 3, output_size: int = 2,
                seed: int = 0) -> CheckResult:
    """Gradient check of a two-block causal :class:`SelfAttentionModel` in float64 (every parameter, the input)."""
    from ..layers.selfattention import SelfAttentionModel

    started = time.perf_counter()
    for attempt in range(100):
        s = seed + attempt
        model = SelfAttentionModel(input_size, output_size, d_model=4, num_heads=2, num_layers=2, d_ff=6,
                                   causal=True, dtype="float64", seed=s)
        rng = np.random.default_rng(30_000 + s)
        for value in model.parameters().values():
            value += 0.3 * rng.standard_normal(value.shape)
        x = rng.standard_normal((T, B, input_size))
        d_out = rng.standard_normal((T, B, output_size))
        _, _, trace = model.forward(x)
        if _min_preactivation(trace) > RELU_MARGIN:
            break
    else:  # pragma: no cover
        raise RuntimeError(f"{name}: found no ReLU problem away from the kink")
    grads = model.backward(trace, d_out)

    def loss() -> float:
        out, _, _ = model.forward(x)
        return float(np.sum(out * d_out))

    tensors = dict(model.parameters())
    tensors["input"] = x
    detail = f"SelfAttentionModel layers=2 causal T={T} B={B} I={input_size} O={output_size} d_model=4 seed={s}"
    return finite_difference_check(name, loss, tensors, grads, detail=detail, started=started)


@register("self_attention")
def check_self_attention() -> CheckResult:
    """Post-norm block, ReLU, key padding."""
    return check_block("self_attention", norm="post", activation="relu", causal=False, padded=True)


@register("self_attention_pre_norm_causal")
def check_self_attention_pre_norm_causal() -> CheckResult:
    """Pre-norm block, causal mask, GELU."""
    return check_block("self_attention_pre_norm_causal", norm="pre", activation="gelu", causal=True, padded=False)


@register("self_attention_model")
def check_self_attention_model() -> CheckResult:
    """Input projection + positional encoding + two causal blocks + readout."""
    return check_model("self_attention_model")
