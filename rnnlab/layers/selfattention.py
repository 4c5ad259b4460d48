"""Self-attention: a Transformer encoder block, sinusoidal positional encoding, and a sequence model.

:class:`SelfAttentionBlock` is ``torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward,
dropout=0.0)`` with the same ``state_dict`` names and shapes, so weights move both ways;
``norm="post"`` is torch's default ``norm_first=False``, ``norm="pre"`` is ``norm_first=True``.
There is no dropout: the lab is deterministic. Inputs are time-major ``(T, B, d_model)``, or
``(B, T, d_model)`` with ``batch_first=True``; traces are time-major either way.

:class:`PositionalEncoding` adds the sinusoids of Vaswani et al. (2017) to an input embedding.
:class:`SelfAttentionModel` (input projection, positional encoding, N blocks, a linear readout at
every step) has :class:`rnnlab.train.SequenceModel`'s interface, so it trains on the same tasks.

The equations are in :mod:`rnnlab.kernels.selfattention` (and, slowly, in
:mod:`rnnlab.reference.selfattention`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import kernels
from ..errors import UserError
from ..kernels import selfattention as sa_kernels
from ._lengths import check_lengths
from ._params import (CallsForward, DRAW_CHUNK, IncompatibleKeys, LiveParameters, NamedParameters, array_shape,
                      assign_params, caller_layout, check_array, check_bool, check_finite_number, check_float_array,
                      check_index, check_param_memory, check_params, check_positive_int, check_seed,
                      check_sequence_gradient, converted_copy, draw_uniform, foreign_trace, is_one_of, load_into,
                      load_params, parse_dtype, refused_choice, time_major)
from .trace import Trace

__all__ = ["positional_encoding", "PositionalEncoding", "SelfAttentionBlock", "SelfAttentionModel",
           "SelfAttentionTrace", "SequenceTooLongError", "BLOCK_PARAM_NAMES"]


#: The block's parameter names (torch.nn.TransformerEncoderLayer's state_dict), in torch's order.
BLOCK_PARAM_NAMES = (
    "self_attn.in_proj_weight", "self_attn.in_proj_bias",
    "self_attn.out_proj.weight", "self_attn.out_proj.bias",
    "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
    "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
)


class SequenceTooLongError(UserError):
    """A sequence is longer than the ``max_len`` a positional encoding or block was built for."""


# ---------------------------------------------------------------------------------------------
# shared validation
# ---------------------------------------------------------------------------------------------

def _check_length(T: int, max_len: int, what: str) -> None:
    if T > max_len:
        raise SequenceTooLongError(f"sequence length {T} exceeds max_len={max_len} of the {what}; "
                                   f"build it with max_len >= {T}")


def _block_shapes(d: int, f: int) -> list[tuple[int, ...]]:
    """The shapes of a block's parameters (d_model d, d_ff f), in :data:`BLOCK_PARAM_NAMES`' order."""
    return [(3 * d, d), (3 * d,), (d, d), (d,), (f, d), (f,), (d, f), (d,), (d,), (d,), (d,), (d,)]


def _check_block_seed(seed: Any) -> Any:
    """A block's seed: as every layer's (:func:`~rnnlab.layers._params.check_seed`), or a
    ``np.random.SeedSequence`` (how :class:`SelfAttentionModel` gives each block its own stream)."""
    return seed if isinstance(seed, np.random.SeedSequence) else check_seed(seed)


# ---------------------------------------------------------------------------------------------
# positional encoding
# ---------------------------------------------------------------------------------------------

def positional_encoding(length: int, d_model: int, dtype: Any = "float64") -> np.ndarray:
    """The sinusoidal positional encoding table ``PE`` (length, d_model) of Vaswani et al. (2017)::

        PE[pos, 2i]   = sin(pos / 10000^(2i / d_model))
        PE[pos, 2i+1] = cos(pos / 10000^(2i / d_model))

    Computed in float64, then rounded to ``dtype``, a block of rows at a time (about
    :data:`~rnnlab.layers._params.DRAW_CHUNK` entries), so that a float32 table never has a
    float64 twice its size beside it. An odd ``d_model``'s last column is a sine.
    """
    length = check_positive_int("length", length)
    d_model = check_positive_int("d_model", d_model)
    out = np.empty((length, d_model), parse_dtype(dtype))
    two_i = np.arange(0, d_model, 2, dtype=np.float64)
    inv_freq = 10000.0 ** (two_i / d_model)
    rows = max(1, DRAW_CHUNK // d_model)
    for start in range(0, length, rows):  # elementwise in float64: the blocks give the whole table's numbers
        pos = np.arange(start, min(start + rows, length), dtype=np.float64)[:, None]
        angle = pos / inv_freq  # (rows, ceil(d/2))
        out[start:start + rows, 0::2] = np.sin(angle)
        out[start:start + rows, 1::2] = np.cos(angle[:, : d_model // 2])
    return out


class PositionalEncoding(CallsForward):
    """Adds the sinusoidal table to an embedding: ``forward(e) = e + PE[:T]`` for e (T, B, d_model),
    or (B, T, d_model) with ``batch_first=True`` (as :class:`SelfAttentionBlock` takes it).

    No parameters; its gradient is the identity (``backward(d_out)`` is a copy of ``d_out``). A
    sequence longer than ``max_len`` raises :class:`SequenceTooLongError` (a ``ValueError``) naming
    both lengths; an empty one (T or B of 0) a ValueError, as every layer does. A (max_len, d_model)
    table that would take more than half this machine's memory is refused (ValueError) before it is built.
    """

    def __init__(self, d_model: int, *, max_len: int = 512, batch_first: bool = False,
                 dtype: Any = "float32") -> None:
        self.d_model = check_positive_int("d_model", d_model)
        self.max_len = check_positive_int("max_len", max_len)
        self.batch_first = check_bool("batch_first", batch_first)
        self.dtype = parse_dtype(dtype)
        # the (max_len, d_model) table is this layer's memory, as parameters are the others'
        check_param_memory(repr(self), [(self.max_len, self.d_model)], self.dtype, "d_model or max_len",
                           what="table entries")
        self.table = positional_encoding(self.max_len, self.d_model, self.dtype)
        self.table.flags.writeable = False

    def _check(self, what: str, value: Any) -> np.ndarray:
        shape = array_shape(what, value)
        layout = "(B, T" if self.batch_first else "(T, B"
        if len(shape) != 3 or shape[2] != self.d_model:
            raise ValueError(f"{what} must have shape {layout}, {self.d_model}), got {shape}")
        if shape[0] < 1 or shape[1] < 1:
            raise ValueError(f"{what} must have at least one step and one sequence, got shape {shape}")
        _check_length(shape[1] if self.batch_first else shape[0], self.max_len, "positional encoding")
        return check_array(what, value, shape, self.dtype)

    def forward(self, e: Any) -> np.ndarray:
        """e (T, B, d_model) -> e + PE[:T] (a new array); (B, T, d_model) with ``batch_first``."""
        e = self._check("input", e)
        if self.batch_first:
            return e + self.table[None, : e.shape[1], :]
        return e + self.table[: e.shape[0], None, :]

    def backward(self, d_out: Any) -> np.ndarray:
        """dL/de = dL/d(out) (T, B, d_model), as a new array: adding a constant passes the gradient
        through unchanged. Checked as forward's input."""
        return self._check("d_out", d_out).copy()

    def __repr__(self) -> str:
        dtype = "" if self.dtype == np.float32 else f", dtype='{self.dtype.name}'"
        batch_first = ", batch_first=True" if self.batch_first else ""
        return f"PositionalEncoding({self.d_model}, max_len={self.max_len}{batch_first}{dtype})"


# ---------------------------------------------------------------------------------------------
# the trace
# ---------------------------------------------------------------------------------------------

@dataclass(eq=False, repr=False)  # Trace's repr, which names the records
class SelfAttentionTrace(Trace):
    """What a self-attention block (or a stack of them) recorded in one forward pass.

    A :class:`~rnnlab.Trace` with ``mode = "SelfAttention"``, one direction, ``hidden_size =
    d_model`` and one "layer" per block. Records per block (``trace.get(name, layer)``; ``trace[name]``
    stacks the blocks on a new first axis):

    - ``"h"`` (T, B, d_model): the block's output (what a recurrent layer's ``h`` is);
    - ``"z"`` (T, B, d_model): the output of the attention sublayer (after its residual, and for
      post-norm its layer norm), the feed-forward sublayer's input;
    - ``"attn"`` (B, heads, T, T): attention weights, ``attn[b, h, i, j]`` = how much query
      step i of sequence b attends to key step j in head h; each row sums to 1 and masked keys
      (padding, the future under a causal mask) get exactly 0. Head-major like torch's
      ``need_weights=True, average_attn_weights=False``; :meth:`attention` slices it;
    - ``"q"``, ``"k"``, ``"v"`` (T, B, heads, d_head): queries (before the 1/sqrt(d_head) scaling),
      keys and values per head, time-major;
    - after ``backward``: ``"dh"`` (T, B, d_model), dL/d(block output).
    """

    num_heads: int = 1
    causal: bool = False
    lengths: np.ndarray | None = field(default=None, repr=False)

    def attention(self, layer: int = 0, sequence: int = 0, head: int | None = None) -> np.ndarray:
        """Attention weights of one sequence: (heads, T, T), or (T, T) for one ``head`` (read-only).

        ``layer``, ``sequence`` and ``head`` are integers (not bools) from 0: ValueError for one that
        is not, or out of range (negative ones included).
        """
        attn = self.get("attn", layer)
        sequence = check_index("sequence", sequence, self.batch, "the batch", "sequence")
        if head is None:
            return attn[sequence]
        return attn[sequence, check_index("head", head, self.num_heads, "the block", "head")]


# ---------------------------------------------------------------------------------------------
# the block
# ---------------------------------------------------------------------------------------------

class SelfAttentionBlock(NamedParameters, CallsForward):
    """A Transformer encoder block, as ``torch.nn.TransformerEncoderLayer(dropout=0.0)``.

    ``post`` norm (torch's default)::  z = LN1(x + MHA(x));  y = LN2(z + FFN(z))
    ``pre`` norm (``norm_first=True``)::  z = x + MHA(LN1(x));  y = z + FFN(LN2(z))

    MHA is ``num_heads``-head scaled dot-product self-attention (``d_model`` divisible by
    ``num_heads``), optionally ``causal`` (step t sees steps <= t); FFN(u) = W_2 act(W_1 u + b_1) + b_2
    with ``activation`` "relu" (torch's default) or "gelu" (exact, erf). Layer norms use
    ``layer_norm_eps``. Sequences longer than ``max_len`` are refused (the attention maps are T x T).

    Parameters (``state_dict`` names as torch's): ``self_attn.in_proj_weight`` (3d, d) (rows
    W_q, W_k, W_v), ``self_attn.in_proj_bias`` (3d,), ``self_attn.out_proj.weight/bias``,
    ``linear1.weight`` (d_ff, d), ``linear1.bias``, ``linear2.weight`` (d, d_ff), ``linear2.bias``,
    ``norm1.weight/bias``, ``norm2.weight/bias``; initialised as torch does (xavier-uniform
    in-projection, zero attention biases, uniform(+-1/sqrt(fan_in)) linears, unit norms).
    Dropout is not supported: the lab is deterministic. ``batch_first=True`` takes x and dy, and
    gives y and the input's gradient, as ``(B, T, d_model)``, as torch's does.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, *, causal: bool = False, max_len: int = 512,
                 norm: str = "post", activation: str = "relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, dtype: Any = "float32", seed: int | None = None) -> None:
        self.d_model = check_positive_int("d_model", d_model)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.d_ff = check_positive_int("d_ff", d_ff)
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")
        self.max_len = check_positive_int("max_len", max_len)
        if not is_one_of(norm, ("post", "pre")):
            raise refused_choice("norm", norm, ("post", "pre"))
        if not is_one_of(activation, ("relu", "gelu")):
            raise refused_choice("activation", activation, ("relu", "gelu"))
        if check_finite_number("layer_norm_eps", layer_norm_eps) <= 0:
            raise ValueError(f"layer_norm_eps must be a positive number, got {layer_norm_eps!r}")
        self.causal = check_bool("causal", causal)
        self.batch_first = check_bool("batch_first", batch_first)
        self.norm = norm
        self.activation = activation
        self.layer_norm_eps = float(layer_norm_eps)
        self.dtype = parse_dtype(dtype)
        self._params: dict[str, np.ndarray] = {}
        check_param_memory(repr(self), self._param_shapes().values(), self.dtype, "d_model or d_ff")
        self.reset_parameters(seed)  # sets self.seed

    @property
    def d_head(self) -> int:
        """Features a head: d_model / num_heads."""
        return self.d_model // self.num_heads

    @property
    def norm_first(self) -> bool:
        """torch's ``norm_first``: True for pre-norm."""
        return self.norm == "pre"

    # ------------------------------------------------------------------ parameters
    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        return dict(zip(BLOCK_PARAM_NAMES, _block_shapes(self.d_model, self.d_ff)))

    def reset_parameters(self, seed: int | None = None) -> None:
        """Draw parameters as torch initialises a TransformerEncoderLayer; reproducible from ``seed``
        (recorded as :attr:`seed`). Writes into the arrays :meth:`parameters` handed out."""
        self.seed = seed = _check_block_seed(seed)
        rng = np.random.default_rng(seed)
        d, f = self.d_model, self.d_ff

        def uniform(bound, shape):
            return draw_uniform(rng, -bound, bound, shape, self.dtype)

        values = {
            "self_attn.in_proj_weight": uniform(math.sqrt(6.0 / (d + 3 * d)), (3 * d, d)),  # xavier_uniform_
            "self_attn.in_proj_bias": np.zeros(3 * d),
            "self_attn.out_proj.weight": uniform(1.0 / math.sqrt(d), (d, d)),
            "self_attn.out_proj.bias": np.zeros(d),
            "linear1.weight": uniform(1.0 / math.sqrt(d), (f, d)),
            "linear1.bias": uniform(1.0 / math.sqrt(d), (f,)),
            "linear2.weight": uniform(1.0 / math.sqrt(f), (d, f)),
            "linear2.bias": uniform(1.0 / math.sqrt(f), (d,)),
            "norm1.weight": np.ones(d), "norm1.bias": np.zeros(d),
            "norm2.weight": np.ones(d), "norm2.bias": np.zeros(d),
        }
        assign_params(self._params, {name: values[name].astype(self.dtype) for name in BLOCK_PARAM_NAMES})

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter, keyed and shaped as torch's TransformerEncoderLayer state_dict."""
        return {name: value.copy() for name, value in self._params.items()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Load parameters (e.g. ``{k: v.numpy()}`` of a torch TransformerEncoderLayer); keys and shapes
        must match exactly (with ``strict=False`` a missing parameter keeps its value, an unknown key is
        ignored). Values are converted to the block's dtype and copied into the arrays :meth:`parameters`
        handed out (as torch does); on error nothing changes. Returns torch's ``(missing_keys,
        unexpected_keys)``."""
        return load_into(self._params, self._param_shapes(), state, self.dtype, strict)

    def parameters(self) -> dict[str, np.ndarray]:
        """The live parameter arrays (updating them in place changes the block). An entry replaced by
        another array must keep its shape and the block's dtype: ``forward`` checks (ValueError)."""
        return self._params

    @property
    def num_parameters(self) -> int:
        """Scalars in the parameters (what torch's ``sum(p.numel() for p in m.parameters())`` counts)."""
        return sum(p.size for p in self._params.values())

    def __repr__(self) -> str:
        extra = ", causal=True" if self.causal else ""
        extra += f", max_len={self.max_len}" if self.max_len != 512 else ""
        extra += ", norm='pre'" if self.norm == "pre" else ""
        extra += ", activation='gelu'" if self.activation == "gelu" else ""
        extra += f", layer_norm_eps={self.layer_norm_eps:g}" if self.layer_norm_eps != 1e-5 else ""
        extra += ", batch_first=True" if self.batch_first else ""
        extra += f", dtype='{self.dtype.name}'" if self.dtype != np.float32 else ""
        return f"SelfAttentionBlock({self.d_model}, {self.num_heads}, {self.d_ff}{extra})"

    # ------------------------------------------------------------------ passes
    def _check_input(self, x: Any) -> np.ndarray:
        """``x`` checked in the caller's layout (``batch_first``), returned time-major (T, B, d_model)."""
        shape = array_shape("input", x)
        if len(shape) != 3 or shape[2] != self.d_model:
            layout = "B, T" if self.batch_first else "T, B"
            raise ValueError(f"input must have shape ({layout}, {self.d_model}), got {shape}")
        if shape[0] < 1 or shape[1] < 1:
            raise ValueError(f"input must have at least one step and one sequence, got shape {shape}")
        _check_length(shape[1 if self.batch_first else 0], self.max_len, "self-attention block")
        return time_major(check_array("input", x, shape, self.dtype), self.batch_first)

    def _new_trace(self, num_layers: int, T: int, B: int, lengths: np.ndarray, params: dict, owner: Any):
        return SelfAttentionTrace("SelfAttention", num_layers, 1, self.d_model, T, B, self.dtype,
                                  _params=params, _owner=owner, num_heads=self.num_heads,
                                  causal=self.causal, lengths=lengths)

    def _run_forward(self, trace: SelfAttentionTrace, layer: int, x: np.ndarray, params: Mapping[str, np.ndarray],
                     n_threads: int) -> np.ndarray:
        """Run the block on x (T, B, d) with ``params`` (unprefixed names), recording into ``trace``."""
        p = params
        y, saved = sa_kernels.block_forward(
            x, p["self_attn.in_proj_weight"], p["self_attn.in_proj_bias"], p["self_attn.out_proj.weight"],
            p["self_attn.out_proj.bias"], p["linear1.weight"], p["linear1.bias"], p["linear2.weight"],
            p["linear2.bias"], p["norm1.weight"], p["norm1.bias"], p["norm2.weight"], p["norm2.bias"],
            self.num_heads, trace.lengths, self.causal, self.norm_first, self.activation == "gelu",
            self.layer_norm_eps, n_threads)
        T, B, d = x.shape
        trace._saved[(layer, 0)] = saved
        trace._set_record(layer, 0, "h", y)
        trace._set_record(layer, 0, "z", saved["z"].reshape(T, B, d))
        trace._set_record(layer, 0, "attn", saved["P"])
        qkv = saved["qkv"].reshape(T, B, 3, self.num_heads, self.d_head)
        for i, name in enumerate(("q", "k", "v")):
            trace._set_record(layer, 0, name, qkv[:, :, i])  # views: (T, B, heads, d_head)
        return y

    def _run_backward(self, trace: SelfAttentionTrace, layer: int, dy: np.ndarray, params: Mapping[str, np.ndarray],
                      n_threads: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(dL/dx, grads by unprefixed name) of block ``layer`` of ``trace`` given dy (T, B, d)."""
        p = params
        dx, g = sa_kernels.block_backward(
            dy, trace._saved[(layer, 0)], p["self_attn.in_proj_weight"], p["self_attn.out_proj.weight"],
            p["linear1.weight"], p["linear2.weight"], p["norm1.weight"], p["norm2.weight"],
            self.norm_first, self.activation == "gelu", n_threads)
        trace._set_record(layer, 0, "dh", dy)
        grads = {
            "self_attn.in_proj_weight": g["w_in"], "self_attn.in_proj_bias": g["b_in"],
            "self_attn.out_proj.weight": g["w_out"], "self_attn.out_proj.bias": g["b_out"],
            "linear1.weight": g["w_1"], "linear1.bias": g["b_1"],
            "linear2.weight": g["w_2"], "linear2.bias": g["b_2"],
            "norm1.weight": g["gamma_1"], "norm1.bias": g["beta_1"],
            "norm2.weight": g["gamma_2"], "norm2.bias": g["beta_2"],
        }
        return dx, grads

    def forward(self, x: Any, lengths: Any = None) -> tuple[np.ndarray, SelfAttentionTrace]:
        """Run the block over x (T, B, d_model); (B, T, d_model) for a ``batch_first`` block.

        ``lengths`` (B,) ints in 1..T: keys at steps >= lengths[b] are padding (torch's
        ``src_key_padding_mask``), given weight exactly 0; queries there are still computed.
        Returns ``(y, trace)``: y shaped as x and a (time-major) :class:`SelfAttentionTrace`.
        """
        x = self._check_input(x)
        T, B, _ = x.shape
        lengths = check_lengths(lengths, T, B)
        x = x.copy()  # C-contiguous and time-major; backward must see exactly what forward computed
        check_params(self._params, self._param_shapes(), self.dtype)
        params = {k: v.copy() for k, v in self._params.items()}
        trace = self._new_trace(1, T, B, lengths, params, self)
        trace.options["batch_first"] = self.batch_first  # the layout backward's dy and dx follow
        with kernels.blas_single_threaded():
            y = self._run_forward(trace, 0, x, params, kernels.kernel_threads())
        return caller_layout(y, self.batch_first, copy=True), trace  # y is the trace's "h": the caller's a copy

    def backward(self, trace: SelfAttentionTrace, dy: Any = None) -> dict[str, np.ndarray]:
        """Gradients of ``L = sum(y * dy)``: a dict keyed by the state_dict names plus ``"input"``;
        ``dy``, shaped as the forward's y, may be None (zero), and ``"input"`` is shaped as its x.

        Fills ``trace["dh"]`` (= dy, time-major). ``trace`` must come from this block's own ``forward``.
        """
        if not isinstance(trace, SelfAttentionTrace) or trace._owner is not self:
            raise foreign_trace(self, trace)
        batch_first = trace.options["batch_first"]
        # a time-major C-contiguous copy: the kernel reads it and the trace records it
        dy = np.array(check_sequence_gradient(dy, trace.steps, trace.batch, self.d_model, self.dtype, batch_first),
                      order="C")
        with kernels.blas_single_threaded():
            dx, grads = self._run_backward(trace, 0, dy, trace._params, kernels.kernel_threads())
        grads["input"] = caller_layout(dx, batch_first)
        return grads


# ---------------------------------------------------------------------------------------------
# the sequence model
# ---------------------------------------------------------------------------------------------

class SelfAttentionModel(NamedParameters, CallsForward):
    """A small Transformer encoder for rnnlab's sequence tasks, with :class:`~rnnlab.train.SequenceModel`'s interface.

        e_t   = W_in x_t + b_in + PE[t]                   input projection + positional encoding
        h^0   = e;   h^k = Block_k(h^(k-1))               ``num_layers`` :class:`SelfAttentionBlock` s
        out_t = W_out h^L_t + b_out                       a linear readout at every step

    Parameters: ``input_proj.weight`` (d_model, I), ``input_proj.bias``, ``layers.{k}.<block name>``
    (torch.nn.TransformerEncoder's naming), ``readout.weight`` (O, d_model), ``readout.bias``.
    ``causal=True`` (the default) makes out_t depend on x_0..x_t only, like a unidirectional RNN;
    ``False`` lets every step see the whole sequence, like a bidirectional one. ``seed`` makes the
    initialisation reproducible (None: fresh randomness, as for every layer; kept as :attr:`seed`).

    There is no recurrent state: ``forward(x, state)`` takes ``state=None`` (stream tasks that carry a
    state across windows do not apply) and returns None as the final state; ``backward`` refuses
    ``truncate`` (there is no time recursion to truncate).
    """

    cell = "selfattention"

    def __init__(self, input_size: int, output_size: int, *, d_model: int = 32, num_heads: int = 4,
                 num_layers: int = 2, d_ff: int = 64, causal: bool = True, max_len: int = 512,
                 norm: str = "post", activation: str = "relu", dtype: Any = "float32", seed: int | None = None) -> None:
        self.input_size = check_positive_int("input_size", input_size)
        self.output_size = check_positive_int("output_size", output_size)
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.dtype = parse_dtype(dtype)
        self.d_model = check_positive_int("d_model", d_model)
        self.max_len = check_positive_int("max_len", max_len)
        self.seed = seed = check_seed(seed)
        # None: fresh randomness, as for every layer (one draw of entropy feeds the streams below)
        root = np.random.SeedSequence().entropy if seed is None else seed
        causal = check_bool("causal", causal)
        # the whole model at once, named as it was called (each block and the table would otherwise be
        # checked alone, in a message naming a SelfAttentionBlock or PositionalEncoding the user never built)
        d, f = self.d_model, check_positive_int("d_ff", d_ff)
        shapes = [(self.max_len, d), (d, self.input_size), (d,), (self.output_size, d), (self.output_size,)]
        check_param_memory(f"SelfAttentionModel({input_size}, {output_size}, d_model={d_model}, num_layers="
                           f"{num_layers}, d_ff={d_ff}, max_len={max_len})", shapes, self.dtype,
                           "d_model, d_ff, num_layers or max_len", what="parameters and positional-encoding entries",
                           each_layer=_block_shapes(d, f), layers=self.num_layers)
        self.blocks = [
            SelfAttentionBlock(d_model, num_heads, d_ff, causal=causal, max_len=max_len, norm=norm,
                               activation=activation, dtype=self.dtype, seed=np.random.SeedSequence([root, 2, k]))
            for k in range(self.num_layers)
        ]
        self.positional = PositionalEncoding(d_model, max_len=max_len, dtype=self.dtype)
        self.causal = causal
        # torch.nn.Linear's init: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)); separate seed streams
        rng = np.random.default_rng([root, 0])
        b = 1.0 / math.sqrt(input_size)
        self.input_proj = {"input_proj.weight": draw_uniform(rng, -b, b, (d_model, input_size), self.dtype),
                           "input_proj.bias": draw_uniform(rng, -b, b, (d_model,), self.dtype)}
        rng = np.random.default_rng([root, 1])
        b = 1.0 / math.sqrt(d_model)
        self.readout = {"readout.weight": draw_uniform(rng, -b, b, (output_size, d_model), self.dtype),
                        "readout.bias": draw_uniform(rng, -b, b, (output_size,), self.dtype)}
        self._shapes = {name: v.shape for name, v in self.parameters().items()}  # what forward checks

    # ------------------------------------------------------------------ parameters
    def parameters(self) -> LiveParameters:
        """Every live parameter array by name: updating one in place, or replacing it with an array
        of the same shape and dtype, changes the model (``forward`` checks, ValueError)."""
        return LiveParameters(lambda: [("", self.input_proj, None),
                                       *((f"layers.{k}.", b.parameters(), None) for k, b in enumerate(self.blocks)),
                                       ("", self.readout, None)])

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter by name, torch's: ``input_proj``, ``layers.k.*``, ``readout``."""
        return {name: value.copy() for name, value in self.parameters().items()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Load every parameter (ValueError naming a missing, extra, misshapen or non-finite key; nothing
        changes on error); with ``strict=False`` a missing parameter keeps its value, an unknown key is
        ignored. Values are copied into the arrays :meth:`parameters` handed out, as torch does; returns
        torch's ``(missing_keys, unexpected_keys)``."""
        loaded, keys = load_params(self._shapes, state, self.dtype, strict, self.parameters())
        assign_params(self.input_proj, {name: loaded[name] for name in ("input_proj.weight", "input_proj.bias")})
        assign_params(self.readout, {name: loaded[name] for name in ("readout.weight", "readout.bias")})
        for k, block in enumerate(self.blocks):
            assign_params(block._params, self._block_params(loaded, k))
        return keys

    @property
    def num_parameters(self) -> int:
        """Scalars in the parameters (what torch's ``sum(p.numel() for p in m.parameters())`` counts)."""
        return sum(p.size for p in self.parameters().values())

    def zero_state(self, batch: int) -> None:
        """Self-attention carries no state between calls: None."""
        return None

    def __repr__(self) -> str:
        blk = self.blocks[0]
        return (f"SelfAttentionModel({self.input_size}, {self.output_size}, d_model={self.d_model}, "
                f"num_heads={blk.num_heads}, num_layers={self.num_layers}, d_ff={blk.d_ff}, causal={self.causal}, "
                f"norm='{blk.norm}', activation='{blk.activation}', dtype='{self.dtype.name}')")

    # ------------------------------------------------------------------ passes
    def forward(self, x: Any, state: Any = None, lengths: Any = None) -> tuple[np.ndarray, None, SelfAttentionTrace]:
        """x (T, B, I) -> (outputs (T, B, O) float64, None, trace); ``lengths`` as the block's.

        ``x`` is converted to the model's dtype. ``trace`` records every block (see
        :class:`SelfAttentionTrace`; layer k is block k).
        """
        if state is not None:
            raise ValueError("a self-attention model has no recurrent state: state must be None")
        shape = array_shape("input", x)
        if len(shape) != 3 or shape[2] != self.input_size:
            raise ValueError(f"input must have shape (T, B, {self.input_size}), got {shape}")
        T, B, _ = shape
        if T < 1 or B < 1:
            raise ValueError(f"input must have at least one step and one sequence, got shape {shape}")
        _check_length(T, self.max_len, "model's positional encoding")
        x = converted_copy("input", x, self.dtype)
        lengths = check_lengths(lengths, T, B)
        live = self.parameters()
        check_params(live, self._shapes, self.dtype)  # e.g. a block's entry replaced by another array
        params = {k: v.copy() for k, v in live.items()}
        trace = self.blocks[0]._new_trace(self.num_layers, T, B, lengths, params, self)
        W, b = params["input_proj.weight"], params["input_proj.bias"]
        with kernels.blas_single_threaded():
            n_threads = kernels.kernel_threads()
            h = (x.reshape(T * B, -1) @ W.T + b).reshape(T, B, self.d_model) + self.positional.table[:T, None, :]
            trace._model_input = x
            for k, block in enumerate(self.blocks):
                h = block._run_forward(trace, k, h, self._block_params(params, k), n_threads)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is caught by the trainer
            out = h @ params["readout.weight"].T + params["readout.bias"]
        return out.astype(np.float64), None, trace

    @staticmethod
    def _block_params(params: Mapping[str, np.ndarray], k: int) -> dict[str, np.ndarray]:
        prefix = f"layers.{k}."
        return {name: params[prefix + name] for name in BLOCK_PARAM_NAMES}

    def backward(self, trace: SelfAttentionTrace, d_out: Any = None,
                 truncate: int | None = None) -> dict[str, np.ndarray]:
        """Gradients of every parameter and ``"input"`` given dL/d(outputs) (T, B, O).

        ``d_out`` is any float array (cast to the model's dtype, as the float64 outputs' gradient
        from a loss is), finite, or None (zero). Fills ``trace["dh"]`` (dL/d(each block's output)).
        ``truncate`` must be None.
        """
        if not isinstance(trace, SelfAttentionTrace) or trace._owner is not self:
            raise foreign_trace(self, trace)
        if truncate is not None:
            raise ValueError("truncate does not apply to self-attention (no recurrence): pass None")
        T, B, O = trace.steps, trace.batch, self.output_size
        if d_out is None:
            d_out = np.zeros((T, B, O), self.dtype)
        else:
            d_out = check_float_array("d_out", d_out, (T, B, O), self.dtype)
        params = trace._params
        top = trace.get("h", self.num_layers - 1).reshape(T * B, self.d_model)
        flat_d = d_out.reshape(T * B, O)
        grads: dict[str, np.ndarray] = {}
        with kernels.blas_single_threaded():
            n_threads = kernels.kernel_threads()
            dh = (flat_d @ params["readout.weight"]).reshape(T, B, self.d_model)
            for k in range(self.num_layers - 1, -1, -1):
                dh, g = self.blocks[k]._run_backward(trace, k, dh, self._block_params(params, k), n_threads)
                grads.update({f"layers.{k}.{name}": v for name, v in g.items()})
            de = dh.reshape(T * B, self.d_model)  # the positional encoding adds a constant: dL/de = dh
            x = trace._model_input.reshape(T * B, self.input_size)
            grads["input_proj.weight"] = de.T @ x
            grads["input_proj.bias"] = de.sum(axis=0)
            grads["readout.weight"] = flat_d.T @ top
            grads["readout.bias"] = flat_d.sum(axis=0)
            d_input = (de @ params["input_proj.weight"]).reshape(T, B, self.input_size)
        ordered = {name: grads[name] for name in params}
        ordered["input"] = d_input
        return ordered

    def step_outputs(self, x_t: np.ndarray, state: Any) -> tuple[np.ndarray, np.ndarray]:
        """One step for sampling: x_t (B, I) -> (outputs (B, O), new state).

        The "state" is the input so far, (t, B, I) (None at the start): attention re-reads the whole
        prefix each step, so this costs O(t^2) per step; meaningful for causal models.
        """
        x_t = np.asarray(x_t, self.dtype)[None]
        prefix = x_t if state is None else np.concatenate([np.asarray(state, self.dtype), x_t], axis=0)
        out, _, _ = self.forward(prefix)
        return out[-1], prefix
