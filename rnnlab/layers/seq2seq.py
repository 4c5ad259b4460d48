"""Encoder-decoder (seq2seq) with optional attention, built on :class:`RNN`, :class:`LSTM` and :class:`GRU`.

The model (Sutskever et al. 2014; attention as Luong et al. 2015 without input feeding, with
Luong's dot and general scores and Bahdanau et al.'s additive score)::

    x_s = src_embed[src_s]                         source tokens (S, B) -> (S, B, E)
    e_1..e_n, state_n = encoder(x_1..x_n)          each sequence over its own length n = src_lengths[b]
    y_t = tgt_embed[tgt_in_t]                      decoder input tokens (T, B) -> (T, B, E)
    d_1..d_T = decoder(y_1..y_T, state_0 = encoder's state_n)
    plain:      o_t = d_t
    attention:  a_t = softmax over valid s of score(d_t, e_s);  c_t = sum_s a_ts e_s
                o_t = h~_t = tanh(W_c [c_t ; d_t])
    logits_t = W_out o_t + b_out                   (T, B, vocab_out)

Training is teacher-forced: ``tgt_in`` is the target shifted right behind a BOS token, and the
decoder runs over all of it in one layer call. :meth:`Seq2Seq.greedy_decode` runs the decoder one
step at a time and feeds back its own argmax until EOS. The encoder runs each group of equal
source lengths separately (as ``torch.nn.utils.rnn.pack_padded_sequence`` does), so padding never
enters the encoder's state, the decoder starts from the state after each sequence's own last
token, and the gradient dL/dh_0 of the decoder flows back into exactly that state. Padded source
steps get attention weight exactly 0; padded target steps are left out of the loss by its mask.

Parameter names, as the ``state_dict`` of a torch module with these submodules::

    src_embed.weight (vocab_in, E)      torch.nn.Embedding, init N(0, 1)
    encoder.<weight_ih_l0, ...>         the encoder's own names (torch.nn.GRU/LSTM/RNN)
    tgt_embed.weight (vocab_out, E)
    decoder.<weight_ih_l0, ...>
    attn.weight (H, H)                  general only: W_a
    attn.W1 (A, H), attn.W2 (A, H), attn.v (A,)   additive only
    attn.combine.weight (H, 2H)         any attention: W_c (torch.nn.Linear(2H, H, bias=False))
    readout.weight (vocab_out, H), readout.bias (vocab_out,)   torch.nn.Linear(H, vocab_out)

Training (teacher forcing, masked cross-entropy) and greedy-decoding accuracy live in
:mod:`rnnlab.train.seq2seq`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import kernels
from ..errors import choice_refusal
from ..kernels import attention as attn_kernels
from ._lengths import check_lengths
from ._params import (CallsForward, IncompatibleKeys, LiveParameters, NamedParameters, Part, array_shape, as_array,
                      assign_params, check_array, check_float_array, check_param_memory, check_params,
                      check_positive_int, check_seed, draw_normal, draw_uniform, foreign_trace, is_integer, is_one_of,
                      load_into, load_params, parse_dtype, refused_choice)
from .recurrent import GRU, LSTM, RNN, RecurrentLayer

__all__ = [
    "ATTENTION_KINDS",
    "CELLS",
    "Attention",
    "AttentionTrace",
    "Seq2Seq",
    "Seq2SeqTrace",
    "lengths_mask",
]

#: The score functions of :class:`Attention`.
ATTENTION_KINDS = ("dot", "general", "additive")
#: The recurrent cells an encoder and decoder can use.
CELLS: dict[str, type[RecurrentLayer]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
#: The parameters :class:`Seq2Seq` holds itself (the rest are its encoder's, decoder's and attention's).
_OWN_NAMES = ("src_embed.weight", "tgt_embed.weight", "readout.weight", "readout.bias")
#: The most steps :meth:`Seq2Seq.greedy_decode` runs (each step's records are kept).
MAX_DECODE_STEPS = 1_000_000


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------


def _token_array(what: str, value: Any, vocab: int, name_of_vocab: str) -> np.ndarray:
    """A 2-D (steps, B) array of integer token ids in [0, vocab), as a new int64 array (a trace keeps it:
    the caller may reuse theirs)."""
    value = as_array(what, value)
    if value.dtype.kind not in "iu":
        raise ValueError(f"{what} must hold integer token ids, got dtype {value.dtype}")
    if value.ndim != 2 or value.shape[0] < 1 or value.shape[1] < 1:
        raise ValueError(f"{what} must have shape (steps, B) with at least one of each, got {value.shape}")
    if value.size and (value.min() < 0 or value.max() >= vocab):
        bad = int(value.min()) if value.min() < 0 else int(value.max())
        raise ValueError(f"{what} contains token {bad}, outside [0, {vocab}) ({name_of_vocab} is {vocab})")
    return np.array(value, dtype=np.int64, order="C")


def lengths_mask(lengths: Any, steps: int) -> np.ndarray:
    """The (steps, B) bool mask that is True at ``s < lengths[b]``."""
    lengths = np.asarray(lengths)
    return np.arange(steps)[:, None] < lengths[None, :]


class _Records:
    """Named per-step records, read as ``trace[name]`` (read-only views)."""

    _records: dict[str, np.ndarray]

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the records held."""
        return tuple(self._records)

    def __getitem__(self, name: str) -> np.ndarray:
        if not isinstance(name, str) or name not in self._records:  # a list asked for is named, not "unhashable"
            raise KeyError(f"no record {name!r} in this trace; available: {', '.join(self._records)}")
        view = self._records[name].view()
        view.flags.writeable = False
        return view

    def __contains__(self, name: object) -> bool:
        return name in self._records

    def __iter__(self):
        """The names of the records, as a dict's keys (and as :class:`~rnnlab.layers.trace.Trace`)."""
        return iter(self._records)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self._records.items())
        return f"{type(self).__name__}({shapes})"


# ---------------------------------------------------------------------------------------------
# attention
# ---------------------------------------------------------------------------------------------

class AttentionTrace(_Records):
    """What :meth:`Attention.forward` recorded.

    Records: ``"scores"`` and ``"weights"`` (T, B, S) (weights are exactly 0 on masked steps and
    sum to 1 over the valid ones), ``"context"`` (T, B, H), ``"attentional"`` (T, B, H) = the output h~.
    """

    def __init__(self, records: dict[str, np.ndarray], owner: Attention, saved: dict[str, Any]) -> None:
        self._records = records
        self._owner = owner
        self._saved = saved  # inputs, mask, parameter copies and projections for backward


class Attention(NamedParameters, CallsForward):
    """Global attention of decoder states over encoder states, with Luong's attentional state.

    ``kind`` picks the score: ``"dot"`` (d . e), ``"general"`` (d . W_a e) or ``"additive"``
    (v . tanh(W_1 d + W_2 e), Bahdanau's). Output: ``h~_t = tanh(W_c [c_t ; d_t])``.
    Parameters (``state_dict`` names): ``weight`` (H, H) = W_a for general; ``W1``, ``W2`` (A, H)
    and ``v`` (A,) for additive (A = ``attn_size``, default H); ``combine.weight`` (H, 2H) = W_c
    always. Init as ``torch.nn.Linear``: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    ``attn_size`` is the additive score's size only: the dot and general scores have none, and
    ignore it (it is kept as :attr:`attn_size` but sizes nothing; the repr leaves it out).
    :class:`Seq2Seq` refuses it there.
    """

    def __init__(self, kind: str, hidden_size: int, *, attn_size: int | None = None, dtype: str = "float32",
                 seed: int | None = None) -> None:
        if not is_one_of(kind, ATTENTION_KINDS):
            raise refused_choice("attention kind", kind, ATTENTION_KINDS)
        self.kind = kind
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.attn_size = self.hidden_size if attn_size is None else check_positive_int("attn_size", attn_size)
        self.dtype = parse_dtype(dtype)
        self._params: dict[str, np.ndarray] = {}
        # refused before any array is allocated: numpy's MemoryError names neither the layer nor a size
        check_param_memory(repr(self), self._param_shapes().values(), self.dtype,
                           "hidden_size or attn_size" if kind == "additive" else "hidden_size")
        self.reset_parameters(seed)  # sets self.seed

    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        H, A = self.hidden_size, self.attn_size
        shapes: dict[str, tuple[int, ...]] = {}
        if self.kind == "general":
            shapes["weight"] = (H, H)
        elif self.kind == "additive":
            shapes["W1"] = (A, H)
            shapes["W2"] = (A, H)
            shapes["v"] = (A,)
        shapes["combine.weight"] = (H, 2 * H)
        return shapes

    def reset_parameters(self, seed: int | None = None) -> None:
        """Draw every parameter from uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) (v: fan_in = A), reproducible from
        ``seed`` (recorded as :attr:`seed`). Writes into the arrays :meth:`parameters` handed out."""
        self.seed = seed = check_seed(seed)
        rng = np.random.default_rng(seed)
        params = {}
        for name, shape in self._param_shapes().items():
            bound = 1.0 / math.sqrt(shape[-1])
            params[name] = draw_uniform(rng, -bound, bound, shape, self.dtype)  # no float64 array of it
        assign_params(self._params, params)

    def parameters(self) -> dict[str, np.ndarray]:
        """The live parameter arrays (updating them in place changes the layer). An entry replaced by
        another array must keep its shape and the layer's dtype: ``forward`` checks (ValueError)."""
        return self._params

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter by name."""
        return {k: v.copy() for k, v in self._params.items()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Load every parameter; ValueError naming a missing, extra, misshapen or non-finite entry (layer
        unchanged). ``strict=False``: a missing parameter keeps its value, an unknown key is ignored.
        Values are copied into the arrays :meth:`parameters` handed out, as torch does; returns torch's
        ``(missing_keys, unexpected_keys)``."""
        return load_into(self._params, self._param_shapes(), state, self.dtype, strict)

    @property
    def num_parameters(self) -> int:
        """Scalars in the parameters (what torch's ``sum(p.numel() for p in m.parameters())`` counts)."""
        return sum(p.size for p in self._params.values())

    def __repr__(self) -> str:
        extra = f", attn_size={self.attn_size}" if self.kind == "additive" and self.attn_size != self.hidden_size else ""
        if self.dtype != np.float32:
            extra += f", dtype='{self.dtype.name}'"
        return f"Attention({self.kind!r}, {self.hidden_size}{extra})"

    # ------------------------------------------------------------------ passes
    def _check_inputs(self, query: Any, memory: Any, lengths: Any, mask: Any):
        H = self.hidden_size
        q_shape, m_shape = array_shape("query", query), array_shape("memory", memory)
        if len(q_shape) != 3 or q_shape[2] != H or q_shape[0] < 1 or q_shape[1] < 1:
            raise ValueError(f"query must have shape (T, B, {H}), got {q_shape}")
        if len(m_shape) != 3 or m_shape[2] != H or m_shape[0] < 1:
            raise ValueError(f"memory must have shape (S, B, {H}), got {m_shape}")
        T, B, _ = q_shape
        S = m_shape[0]
        if m_shape[1] != B:
            raise ValueError(f"memory has batch {m_shape[1]}, but query has batch {B}")
        query = check_array("query", query, (T, B, H), self.dtype)
        memory = check_array("memory", memory, (S, B, H), self.dtype)
        if lengths is not None and mask is not None:
            raise ValueError("give lengths or mask, not both")
        if mask is not None:
            mask = as_array("mask", mask)
            if mask.dtype != np.bool_ or mask.shape != (S, B):
                raise ValueError(f"mask must be a bool array of shape ({S}, {B}), got {mask.dtype} {mask.shape}")
            if not mask.any(axis=0).all():
                raise ValueError(f"mask has a sequence with no valid memory step (column {int(np.argmin(mask.any(axis=0)))})")
            mask = mask.copy()  # the trace keeps it
        elif lengths is not None:
            mask = lengths_mask(check_lengths(lengths, S, B), S)
        else:
            mask = np.ones((S, B), dtype=bool)
        return query, memory, mask

    def forward(self, query: Any, memory: Any, lengths: Any = None, mask: Any = None) -> tuple[np.ndarray, AttentionTrace]:
        """Attend from ``query`` (T, B, H) over ``memory`` (S, B, H).

        Valid memory steps: ``lengths`` (B,) (steps s < lengths[b]) or ``mask`` (S, B) bool, or all.
        Returns ``(h~ (T, B, H), trace)``; see :class:`AttentionTrace` for the records.
        """
        query, memory, mask = self._check_inputs(query, memory, lengths, mask)
        check_params(self._params, self._param_shapes(), self.dtype)
        params = {k: v.copy() for k, v in self._params.items()}  # backward differentiates these exactly
        saved: dict[str, Any] = {"query": query.copy(), "memory": memory.copy(), "mask": mask, "params": params}
        n = kernels.kernel_threads()
        with kernels.blas_single_threaded():
            if self.kind == "dot":
                scores = attn_kernels.dot_scores(query, memory, n)
            elif self.kind == "general":
                scores, saved["k_proj"] = attn_kernels.general_scores(query, memory, params["weight"], n)
            else:
                scores, saved["q_proj"], saved["k_proj"] = attn_kernels.additive_scores(
                    query, memory, params["W1"], params["W2"], params["v"], n)
            weights = attn_kernels.masked_softmax(scores, mask, n)
            context = attn_kernels.attention_context(weights, memory, n)
            out = attn_kernels.attentional_state(context, query, params["combine.weight"], n)
        records = {"scores": scores, "weights": weights, "context": context, "attentional": out}
        return out.copy(), AttentionTrace(records, self, saved)  # backward reads the trace's "attentional"

    def backward(self, trace: AttentionTrace, d_out: Any = None) -> dict[str, np.ndarray]:
        """Gradients of ``sum(h~ * d_out)``: every parameter name, plus ``"query"`` (T, B, H) and
        ``"memory"`` (S, B, H). ``d_out`` (T, B, H) may be None (zero)."""
        if not isinstance(trace, AttentionTrace) or trace._owner is not self:
            raise foreign_trace(self, trace)
        sv = trace._saved
        query, memory, params = sv["query"], sv["memory"], sv["params"]
        out = trace._records["attentional"]
        d_out = np.zeros_like(out) if d_out is None else check_array("d_out", d_out, out.shape, self.dtype)
        weights, context = trace._records["weights"], trace._records["context"]
        grads: dict[str, np.ndarray] = {}
        n = kernels.kernel_threads()
        with kernels.blas_single_threaded():
            d_context, d_query, grads["combine.weight"] = attn_kernels.attentional_state_backward(
                context, query, params["combine.weight"], out, d_out, n)
            d_weights, d_memory = attn_kernels.attention_context_backward(weights, memory, d_context, n)
            d_scores = attn_kernels.masked_softmax_backward(weights, d_weights, n)
            if self.kind == "dot":
                dq, dk = attn_kernels.dot_scores_backward(query, memory, d_scores, n)
            elif self.kind == "general":
                dq, dk, grads["weight"] = attn_kernels.general_scores_backward(
                    query, memory, params["weight"], sv["k_proj"], d_scores, n)
            else:
                dq, dk, grads["W1"], grads["W2"], grads["v"] = attn_kernels.additive_scores_backward(
                    query, memory, params["W1"], params["W2"], params["v"], sv["q_proj"], sv["k_proj"], d_scores, n)
        ordered = {name: grads[name] for name in self._param_shapes()}
        ordered["query"] = d_query + dq
        ordered["memory"] = d_memory + dk
        return ordered


# ---------------------------------------------------------------------------------------------
# seq2seq
# ---------------------------------------------------------------------------------------------

class Seq2SeqTrace(_Records):
    """What :meth:`Seq2Seq.forward` (or :meth:`Seq2Seq.greedy_decode`) recorded.

    Records: ``"encoder"`` (S, B, H) the top encoder layer's states (0 past each source length),
    ``"decoder"`` (T, B, H) the top decoder layer's states, ``"src_mask"`` (S, B) bool; with
    attention also ``"scores"``, ``"weights"`` (T, B, S) (the attention matrix of sequence b is
    ``trace["weights"][:, b, :]``, decoder step x encoder step), ``"context"`` and
    ``"attentional"`` (T, B, H). A greedy decode also records ``"logits"`` (T, B, vocab_out)
    and ``"tokens"`` (T, B). ``encoder_traces`` holds ``(batch indices, length, Trace)`` of each
    group of equal source lengths, ``decoder_trace`` the decoder layer's :class:`Trace`
    (teacher-forced forward only).
    """

    def __init__(self, records: dict[str, np.ndarray], owner: Seq2Seq | None, saved: dict[str, Any]) -> None:
        self._records = records
        self._owner = owner  # None: not differentiable (greedy decoding)
        self._saved = saved
        self.encoder_traces = saved.get("groups", [])
        self.decoder_trace = saved.get("decoder_trace")
        self.output_lengths: np.ndarray | None = saved.get("output_lengths")


def _part_seeds(seed: int | None) -> list[int]:
    """The seeds of a Seq2Seq's encoder, decoder, attention and own parameters, from its one seed."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(4)]


class Seq2Seq(NamedParameters, CallsForward):
    """Encoder-decoder over token sequences, with optional attention; see the module docstring.

    ``cell`` is ``"rnn"``, ``"lstm"`` or ``"gru"`` (encoder and decoder alike, ``num_layers``
    each); ``attention`` is None (the decoder sees the source only through the encoder's final
    state) or ``"dot"``, ``"general"``, ``"additive"``. ``embed_size`` defaults to ``hidden_size``,
    ``attn_size`` (the additive score's size, :attr:`attn_size`) too; another attention has no such
    size, and an ``attn_size`` other than None (or ``hidden_size``, the default it would have) is
    refused there rather than ignored. Everything is reproducible from ``seed``. A model whose
    parameters would not fit in half this machine's memory is refused (ValueError) before anything
    is allocated.
    """

    def __init__(self, vocab_in: int, vocab_out: int, hidden_size: int, *, cell: str = "gru",
                 attention: str | None = None, num_layers: int = 1, dtype: str = "float32",
                 seed: int | None = None, embed_size: int | None = None, attn_size: int | None = None) -> None:
        self.vocab_in = check_positive_int("vocab_in", vocab_in)
        self.vocab_out = check_positive_int("vocab_out", vocab_out)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.embed_size = self.hidden_size if embed_size is None else check_positive_int("embed_size", embed_size)
        if not is_one_of(cell, CELLS):
            raise refused_choice("cell", cell, CELLS)
        if attention is not None and not is_one_of(attention, ATTENTION_KINDS):
            # the CLI's and the lab's "none" is None here: said so, where the plain refusal would offer no hint
            none_meant = isinstance(attention, str) and attention.lower() == "none"
            refusal = choice_refusal(attention, ATTENTION_KINDS).removeprefix("must be ")
            raise ValueError(f"attention must be None or {refusal}{' (did you mean None?)' if none_meant else ''}")
        if attention == "additive":
            attn_size = self.hidden_size if attn_size is None else check_positive_int("attn_size", attn_size)
        elif attn_size is not None and not (is_integer(attn_size) and attn_size == self.hidden_size):
            # hidden_size is let through: the default it would have, which sizes nothing here either
            raise ValueError(f"attn_size is the additive attention's size; attention={attention!r} has none, "
                             f"so attn_size must be None, got {attn_size!r}")
        else:
            attn_size = None
        self.cell = cell
        self.attention_kind = attention
        #: The additive score's size A (``attn.W1`` is (A, H)); None for any other attention.
        self.attn_size = attn_size
        self.dtype = parse_dtype(dtype)
        self.seed = seed = check_seed(seed)
        # the whole model, named as it was called: the encoder would otherwise be checked alone, in a message
        # naming a GRU the user never built, and the embeddings not at all (numpy's MemoryError)
        shapes, deeper = self._planned_shapes()
        check_param_memory(repr(self), shapes, self.dtype, "vocab_in, vocab_out, hidden_size, embed_size or num_layers",
                           each_layer=deeper, layers=self.num_layers - 1)
        seeds = _part_seeds(seed)
        E, H = self.embed_size, self.hidden_size
        self.encoder = CELLS[cell](E, H, num_layers=num_layers, dtype=self.dtype.name, seed=seeds[0])
        self.decoder = CELLS[cell](E, H, num_layers=num_layers, dtype=self.dtype.name, seed=seeds[1])
        self.attention = (None if attention is None else
                          Attention(attention, H, attn_size=attn_size, dtype=self.dtype.name, seed=seeds[2]))
        self._own = self._draw_own(seeds[3])

    def _planned_shapes(self) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
        """The shapes of every parameter the constructor is about to draw (what :meth:`_param_shapes`
        lists once the parts exist), from the sizes alone: those with the first layers of the encoder
        and the decoder, and those of each deeper layer of both (``num_layers - 1`` of them)."""
        E, H, A = self.embed_size, self.hidden_size, self.attn_size
        G = CELLS[self.cell].gate_count

        def layer(inputs: int) -> list[tuple[int, ...]]:
            return [(G * H, inputs), (G * H, H), (G * H,), (G * H,)]

        attention = {None: [], "dot": [], "general": [(H, H)], "additive": [(A, H), (A, H), (A,)]}[self.attention_kind]
        combine = [] if self.attention_kind is None else [(H, 2 * H)]
        own = [(self.vocab_in, E), (self.vocab_out, E), (self.vocab_out, H), (self.vocab_out,)]
        return layer(E) * 2 + attention + combine + own, layer(H) * 2

    def _draw_own(self, seed: int) -> dict[str, np.ndarray]:
        """The embeddings, N(0, 1) as ``torch.nn.Embedding``'s, and the readout, as ``torch.nn.Linear``'s."""
        rng = np.random.default_rng(seed)
        E, H = self.embed_size, self.hidden_size
        bound = 1.0 / math.sqrt(H)
        return {  # drawn in order, straight into the dtype (the numbers of .astype(dtype), no float64 copy)
            "src_embed.weight": draw_normal(rng, (self.vocab_in, E), self.dtype),
            "tgt_embed.weight": draw_normal(rng, (self.vocab_out, E), self.dtype),
            "readout.weight": draw_uniform(rng, -bound, bound, (self.vocab_out, H), self.dtype),
            "readout.bias": draw_uniform(rng, -bound, bound, (self.vocab_out,), self.dtype),
        }

    def reset_parameters(self, seed: int | None = None) -> None:
        """Draw every parameter again, as the constructor does: ``Seq2Seq(..., seed=s)`` and
        ``reset_parameters(s)`` give the same weights (``seed`` is recorded as :attr:`seed`). The
        values are written into the arrays :meth:`parameters` handed out (the parts' too)."""
        seed = check_seed(seed)
        seeds = _part_seeds(seed)
        self.encoder.reset_parameters(seeds[0])
        self.decoder.reset_parameters(seeds[1])
        if self.attention is not None:
            self.attention.reset_parameters(seeds[2])
        assign_params(self._own, self._draw_own(seeds[3]))
        self.seed = seed

    # ------------------------------------------------------------------ parameters
    def _parts(self) -> list[tuple[str, Any]]:
        parts: list[tuple[str, Any]] = [("encoder.", self.encoder), ("decoder.", self.decoder)]
        if self.attention is not None:
            parts.append(("attn.", self.attention))
        return parts

    def parameters(self) -> LiveParameters:
        """Every live parameter array by name, in torch's registration order: updating one in place,
        or replacing it with an array of the same shape and dtype, changes the model (its part's
        ``forward`` checks the new array, ValueError)."""
        return LiveParameters(self._parameter_parts)

    def _parameter_parts(self) -> list[Part]:
        """The parts' parameters (:meth:`_parts`) between the model's own, in torch's order."""
        encoder, *decoder_and_attention = [(prefix, part.parameters(), None) for prefix, part in self._parts()]
        return [("", self._own, ("src_embed.weight",)), encoder, ("", self._own, ("tgt_embed.weight",)),
                *decoder_and_attention, ("", self._own, ("readout.weight", "readout.bias"))]

    def _check_params(self) -> None:
        """Every parameter is still an array of its shape and dtype (``parameters()`` may have replaced
        one), checked here to name it as the model does: the parts' own checks say "weight_hh_l0"."""
        check_params(self.parameters(), self._param_shapes(), self.dtype)

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter by name (see the module docstring for names and shapes)."""
        return {k: v.copy() for k, v in self.parameters().items()}

    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's name and shape, in :meth:`parameters`' order."""
        E, H = self.embed_size, self.hidden_size
        shapes = {"src_embed.weight": (self.vocab_in, E)}
        shapes.update({"encoder." + k: v for k, v in self.encoder._param_shapes().items()})
        shapes["tgt_embed.weight"] = (self.vocab_out, E)
        shapes.update({"decoder." + k: v for k, v in self.decoder._param_shapes().items()})
        if self.attention is not None:
            shapes.update({"attn." + k: v for k, v in self.attention._param_shapes().items()})
        shapes.update({"readout.weight": (self.vocab_out, H), "readout.bias": (self.vocab_out,)})
        return shapes

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Load every parameter; ValueError naming a missing, extra, misshapen or non-finite entry (model
        unchanged). ``strict=False``: a missing parameter keeps its value, an unknown key is ignored.
        Values are copied into the arrays :meth:`parameters` handed out (the parts' too), as torch does;
        returns torch's ``(missing_keys, unexpected_keys)``."""
        loaded, keys = load_params(self._param_shapes(), state, self.dtype, strict, self.parameters())
        assign_params(self._own, {k: loaded[k] for k in _OWN_NAMES})  # all validated: nothing here can fail
        for prefix, part in self._parts():
            assign_params(part._params, {k: loaded[prefix + k] for k in part._param_shapes()})
        return keys

    @property
    def num_parameters(self) -> int:
        """Scalars in the parameters (what torch's ``sum(p.numel() for p in m.parameters())`` counts)."""
        return sum(p.size for p in self.parameters().values())

    def __repr__(self) -> str:
        extra = f", attention={self.attention_kind!r}" if self.attention_kind else ""
        if self.num_layers != 1:
            extra += f", num_layers={self.num_layers}"
        if self.dtype != np.float32:
            extra += f", dtype='{self.dtype.name}'"
        if self.embed_size != self.hidden_size:
            extra += f", embed_size={self.embed_size}"
        if self.attn_size is not None and self.attn_size != self.hidden_size:
            extra += f", attn_size={self.attn_size}"
        return f"Seq2Seq({self.vocab_in}, {self.vocab_out}, {self.hidden_size}, cell={self.cell!r}{extra})"

    # ------------------------------------------------------------------ encoder
    def _check_source(self, src: Any, src_lengths: Any) -> tuple[np.ndarray, np.ndarray]:
        src = _token_array("src", src, self.vocab_in, "vocab_in")
        S, B = src.shape
        return src, check_lengths(src_lengths, S, B, "src_lengths")  # None: every source fills its S steps

    def _encode(self, src: np.ndarray, lengths: np.ndarray):
        """Run the encoder over each group of equal lengths: (E (S, B, H), final state, groups)."""
        S, B = src.shape
        L, H = self.num_layers, self.hidden_size
        x = self._own["src_embed.weight"][src]  # (S, B, E)
        memory = np.zeros((S, B, H), self.dtype)
        h_n = np.zeros((L, B, H), self.dtype)
        c_n = np.zeros((L, B, H), self.dtype) if self.cell == "lstm" else None
        groups = []
        for n in np.unique(lengths):
            n = int(n)
            idx = np.flatnonzero(lengths == n)
            y, state_n, trace = self.encoder.forward(np.ascontiguousarray(x[:n, idx]))
            memory[:n, idx] = y
            if c_n is not None:
                h_n[:, idx], c_n[:, idx] = state_n
            else:
                h_n[:, idx] = state_n
            groups.append((idx, n, trace))
        return memory, (h_n if c_n is None else (h_n, c_n)), groups

    def _attend(self, dec: np.ndarray, memory: np.ndarray, mask: np.ndarray):
        """The readout's input o (T, B, H) and the attention's trace (None without attention)."""
        if self.attention is None:
            return dec, None
        return self.attention.forward(dec, memory, mask=mask)

    def _readout(self, o: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is caught by the trainer
            return o @ w.T + b

    # ------------------------------------------------------------------ passes
    def forward(self, src: Any, src_lengths: Any, tgt_in: Any) -> tuple[np.ndarray, Seq2SeqTrace]:
        """Teacher-forced pass: source tokens ``src`` (S, B) with ``src_lengths`` (B,) in [1, S]
        (None: all S), decoder input tokens ``tgt_in`` (T, B) (BOS, then the target shifted right).

        Returns ``(logits (T, B, vocab_out), trace)`` in the model's dtype; see :class:`Seq2SeqTrace`.
        """
        src, lengths = self._check_source(src, src_lengths)
        self._check_params()
        tgt_in = _token_array("tgt_in", tgt_in, self.vocab_out, "vocab_out")
        if tgt_in.shape[1] != src.shape[1]:
            raise ValueError(f"tgt_in has batch {tgt_in.shape[1]}, but src has batch {src.shape[1]}")
        S = src.shape[0]
        mask = lengths_mask(lengths, S)
        memory, enc_state, groups = self._encode(src, lengths)
        dec, _, dec_trace = self.decoder.forward(self._own["tgt_embed.weight"][tgt_in], enc_state)
        o, attn_trace = self._attend(dec, memory, mask)
        w_out, b_out = self._own["readout.weight"].copy(), self._own["readout.bias"].copy()
        logits = self._readout(o, w_out, b_out)
        records = {"encoder": memory, "decoder": dec, "src_mask": mask}
        if attn_trace is not None:
            records.update(attn_trace._records)
        saved = {"src": src, "tgt_in": tgt_in, "groups": groups, "decoder_trace": dec_trace,
                 "attn_trace": attn_trace, "o": o, "readout.weight": w_out}
        return logits, Seq2SeqTrace(records, self, saved)

    def backward(self, trace: Seq2SeqTrace, d_logits: Any = None) -> dict[str, np.ndarray]:
        """Gradients of ``sum(logits * d_logits)`` for every parameter, keyed as :meth:`parameters`.

        ``d_logits`` (T, B, vocab_out) is cast to the model's dtype (a loss's float64 gradient is fine);
        None means zero.
        The path: readout -> attention (query and memory) -> decoder (BPTT) -> its dh_0 into the
        encoder's final state of each sequence -> encoder (BPTT) -> embeddings.
        """
        if not isinstance(trace, Seq2SeqTrace) or trace._owner is not self:
            raise foreign_trace(self, trace, note=" (greedy decoding traces have no backward)")
        sv = trace._saved
        o = sv["o"]
        T, B, H = o.shape
        V = self.vocab_out
        if d_logits is None:
            d_logits = np.zeros((T, B, V), self.dtype)
        else:
            d_logits = check_float_array("d_logits", d_logits, (T, B, V), self.dtype)
        grads: dict[str, np.ndarray] = {}

        flat = d_logits.reshape(T * B, V)
        grads["readout.weight"] = flat.T @ o.reshape(T * B, H)
        grads["readout.bias"] = flat.sum(axis=0)
        d_o = d_logits @ sv["readout.weight"]  # (T, B, H)

        memory = trace._records["encoder"]
        if self.attention is not None:
            ag = self.attention.backward(sv["attn_trace"], d_o)
            d_dec, d_memory = ag.pop("query"), ag.pop("memory")
            grads.update({"attn." + k: v for k, v in ag.items()})
        else:
            d_dec, d_memory = d_o, np.zeros_like(memory)

        dg = self.decoder.backward(sv["decoder_trace"], d_dec)
        d_tgt_x, dh0, dc0 = dg.pop("input"), dg.pop("h0"), dg.pop("c0", None)
        grads.update({"decoder." + k: v for k, v in dg.items()})
        d_tgt_embed = np.zeros((self.vocab_out, self.embed_size), self.dtype)
        np.add.at(d_tgt_embed, sv["tgt_in"], d_tgt_x)
        grads["tgt_embed.weight"] = d_tgt_embed

        src = sv["src"]
        d_src_x = np.zeros((*src.shape, self.embed_size), self.dtype)
        enc_grads: dict[str, np.ndarray] = {}
        for idx, n, enc_trace in sv["groups"]:
            dstate = dh0[:, idx] if dc0 is None else (dh0[:, idx], dc0[:, idx])
            g = self.encoder.backward(enc_trace, np.ascontiguousarray(d_memory[:n, idx]), dstate)
            d_src_x[:n, idx] = g.pop("input")
            g.pop("h0")
            g.pop("c0", None)
            for k, v in g.items():
                enc_grads[k] = enc_grads[k] + v if k in enc_grads else v
        grads.update({"encoder." + k: v for k, v in enc_grads.items()})
        d_src_embed = np.zeros((self.vocab_in, self.embed_size), self.dtype)
        np.add.at(d_src_embed, src, d_src_x)  # padded steps carry 0
        grads["src_embed.weight"] = d_src_embed
        return {name: grads[name] for name in self.parameters()}

    def greedy_decode(self, src: Any, src_lengths: Any, max_len: int, bos: int, eos: int,
                      pad: int | None = None, exclude: Sequence[int] = ()) -> tuple[np.ndarray, Seq2SeqTrace]:
        """Free-running greedy decoding: start from ``bos``, feed back each step's argmax, stop at ``eos``.

        Runs at most ``max_len`` steps, fewer once every sequence has produced ``eos``. Returns
        ``(tokens (T', B) int64, trace)``: each sequence's tokens up to and including its ``eos``,
        then ``pad`` (default ``eos``). The argmax skips the tokens in ``exclude``, which are never
        written (markers such as BOS and padding, which no target holds; ``eos`` cannot be one).
        ``trace.output_lengths`` (B,) counts each sequence's tokens including ``eos`` (``max_len``
        if it never produced one); the records are those of :class:`Seq2SeqTrace` for the steps
        run, plus ``"logits"`` (the readout's, over the whole vocabulary) and ``"tokens"``.
        """
        src, lengths = self._check_source(src, src_lengths)
        self._check_params()
        max_len = check_positive_int("max_len", max_len)
        if max_len > MAX_DECODE_STEPS:
            raise ValueError(f"max_len must be at most {MAX_DECODE_STEPS:,}, got {max_len!r}")
        if isinstance(exclude, (str, bytes)) or not isinstance(exclude, Iterable):
            raise ValueError(f"exclude must be a sequence of token ids, got {exclude!r}")
        exclude = list(exclude)  # once: a generator read by the checks below would be empty for the mask
        named = [("bos", bos), ("eos", eos)] + ([("pad", pad)] if pad is not None else [])
        for name, tok in named + [("exclude", tok) for tok in exclude]:
            if isinstance(tok, bool) or not isinstance(tok, (int, np.integer)) or not 0 <= tok < self.vocab_out:
                raise ValueError(f"{name} must be a token id in [0, {self.vocab_out}), got {tok!r}")
        if eos in exclude:
            raise ValueError(f"exclude must not hold eos ({eos}): decoding could never stop")
        never = np.zeros(self.vocab_out)  # added to the logits before the argmax
        never[list(exclude)] = -np.inf
        fill = eos if pad is None else int(pad)
        S, B = src.shape
        mask = lengths_mask(lengths, S)
        memory, state, groups = self._encode(src, lengths)
        embed, w_out, b_out = self._own["tgt_embed.weight"], self._own["readout.weight"], self._own["readout.bias"]
        prev = np.full(B, bos, np.int64)
        finished = np.zeros(B, bool)
        output_lengths = np.full(B, max_len, np.int64)
        steps: dict[str, list[np.ndarray]] = {}
        for t in range(max_len):
            d, state, _ = self.decoder.forward(embed[prev][None], state)
            o, attn_trace = self._attend(d, memory, mask)
            logits = self._readout(o, w_out, b_out)
            token = np.where(finished, fill, (logits[0] + never).argmax(axis=1))
            rec = {"decoder": d, "logits": logits, "tokens": token[None]}
            if attn_trace is not None:
                rec.update(attn_trace._records)
            for k, v in rec.items():
                steps.setdefault(k, []).append(v)
            ended = ~finished & (token == eos)
            output_lengths[ended] = t + 1
            finished |= ended
            prev = token
            if finished.all():
                break
        records = {"encoder": memory, "src_mask": mask}
        records.update({k: np.concatenate(v, axis=0) for k, v in steps.items()})
        tokens = records["tokens"]
        return tokens.copy(), Seq2SeqTrace(records, None, {"groups": groups, "output_lengths": output_lengths})
