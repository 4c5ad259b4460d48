"""Finite-difference gradient checks of attention and the encoder-decoder, in float64.

Registered checks (``rnnlab gradcheck --only NAME``):

- ``attention_dot``, ``attention_general``, ``attention_additive``: the :class:`Attention` layer
  alone with variable memory lengths; every parameter, the query and the memory.
  L = sum(h~ * dy) for a random cotangent dy.
- ``seq2seq``: a 2-layer LSTM encoder-decoder without attention (the encoder's final (h, c) of
  every layer initialises the decoder), variable source lengths; every parameter.
- ``seq2seq_attention``: a GRU encoder-decoder with additive attention, variable source lengths.
  For both, L = sum(logits * dlogits) for a random cotangent.

Embedding rows of tokens absent from the problem have zero gradient, which the check confirms.

The whole-model checks use a central-difference step of :data:`SEQ2SEQ_EPS` = 1e-5 instead of
1e-6: their loss sums many O(1) terms, so at 1e-6 the rounding noise of the differences
(~1e-16 |L| / eps, about 5e-10) reaches 1e-7 of the smallest gradients (an LSTM encoder's
recurrent weights seen through two decoders' worth of BPTT). At 1e-5 the noise falls ten times
while the truncation error (~eps^2 / 6 times a third derivative) stays near 1e-11. With additive
attention the gradient of W_1 exists only through tanh's curvature (W_1 d_t is the same for every
encoder step, and the softmax is blind to a shift), so the check also scales the score's parameters
by :data:`ATTN_SCALE`, which keeps that gradient well above the noise.
"""

from __future__ import annotations

import time

import numpy as np

from ..gradcheck import EPS, TOLERANCE, CheckResult, finite_difference_check, register

__all__ = ["check_attention", "check_seq2seq", "SEQ2SEQ_EPS", "ATTN_SCALE"]

#: Central-difference step of the whole-model checks (see the module docstring).
SEQ2SEQ_EPS = 1e-5
#: Factor on the attention score's parameters (W_a; W_1, W_2, v) in the whole-model checks.
ATTN_SCALE = 3.0


def check_attention(name: str, kind: str, *, T: int = 3, B: int = 3, S: int = 4, H: int = 4, A: int = 3,
                    seed: int = 0, eps: float = EPS, tolerance: float = TOLERANCE) -> CheckResult:
    """Gradient check of ``Attention(kind, H, attn_size=A)`` on a random problem with memory lengths (S, S-2, 1, ...)."""
    from ..layers.seq2seq import Attention

    started = time.perf_counter()
    layer = Attention(kind, H, attn_size=A, dtype="float64", seed=seed)
    rng = np.random.default_rng(20_000 + seed)
    query = rng.standard_normal((T, B, H))
    memory = rng.standard_normal((S, B, H))
    lengths = np.maximum(S - 2 * np.arange(B), 1)
    dy = rng.standard_normal((T, B, H))
    _, trace = layer.forward(query, memory, lengths=lengths)
    grads = layer.backward(trace, dy)

    def loss() -> float:
        out, _ = layer.forward(query, memory, lengths=lengths)
        return float(np.sum(out * dy))

    tensors = dict(layer.parameters())  # live arrays
    tensors["query"] = query
    tensors["memory"] = memory
    detail = f"Attention({kind!r}) T={T} B={B} S={S} H={H} A={A} lengths={lengths.tolist()} seed={seed}"
    return finite_difference_check(name, loss, tensors, grads, eps=eps, tolerance=tolerance, detail=detail,
                                   started=started)


def check_seq2seq(name: str, cell: str, attention: str | None, *, num_layers: int = 1, V_in: int = 5,
                  V_out: int = 6, H: int = 3, E: int = 2, S: int = 4, T: int = 3, B: int = 3, seed: int = 0,
                  attn_scale: float = ATTN_SCALE, eps: float = SEQ2SEQ_EPS,
                  tolerance: float = TOLERANCE) -> CheckResult:
    """Gradient check of a tiny ``Seq2Seq`` in float64: every parameter, source lengths (S, S-1, ..., >= 1).

    The attention score's parameters are multiplied by ``attn_scale`` first (see the module docstring).
    """
    from ..layers.seq2seq import Seq2Seq

    started = time.perf_counter()
    model = Seq2Seq(V_in, V_out, H, cell=cell, attention=attention, num_layers=num_layers, dtype="float64",
                    seed=seed, embed_size=E, attn_size=H)
    params = model.parameters()
    for key in ("attn.weight", "attn.W1", "attn.W2", "attn.v"):
        if key in params:
            params[key] *= attn_scale
    rng = np.random.default_rng(30_000 + seed)
    src = rng.integers(0, V_in, (S, B))
    src_lengths = np.maximum(S - np.arange(B), 1)
    tgt_in = rng.integers(0, V_out, (T, B))
    d_logits = rng.standard_normal((T, B, V_out))
    _, trace = model.forward(src, src_lengths, tgt_in)
    grads = model.backward(trace, d_logits)

    def loss() -> float:
        logits, _ = model.forward(src, src_lengths, tgt_in)
        return float(np.sum(logits * d_logits))

    detail = (f"Seq2Seq(cell={cell!r}, attention={attention!r}, num_layers={num_layers}) V_in={V_in} "
              f"V_out={V_out} E={E} H={H} S={S} T={T} B={B} src_lengths={src_lengths.tolist()} attn_scale={attn_scale} eps={eps} seed={seed}")
    return finite_difference_check(name, loss, params, grads, eps=eps, tolerance=tolerance,
                                   detail=detail, started=started)


def _register() -> None:
    for kind in ("dot", "general", "additive"):
        register(f"attention_{kind}")(lambda kind=kind: check_attention(f"attention_{kind}", kind))
    register("seq2seq")(lambda: check_seq2seq("seq2seq", "lstm", None, num_layers=2))
    register("seq2seq_attention")(lambda: check_seq2seq("seq2seq_attention", "gru", "additive"))


_register()
