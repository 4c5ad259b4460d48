"""rnnlab: a terminal laboratory for recurrent neural networks.

The public API mirrors ``torch.nn``: :class:`RNN`, :class:`LSTM` and :class:`GRU` take time-major
inputs ``(T, B, I)``, share PyTorch's ``state_dict`` names, and return a :class:`Trace` of every
step's state and gates from ``forward``; ``backward`` runs (truncated) BPTT. :class:`LeakyRNN`
(per-unit time constants), :class:`MinGRU`, :class:`MinLSTM` and :class:`LRU` (gates from the
input only: linear recurrences a parallel scan evaluates) share that API. :class:`JordanRNN` feeds
its previous output back instead of its state; :class:`EchoStateNetwork` is a fixed reservoir
with a ridge-regression readout; :class:`Seq2Seq` an encoder-decoder with optional
:class:`Attention`; :class:`SelfAttentionBlock` a Transformer encoder layer (torch's names).
"""

from .layers import (GRU, LRU, LSTM, RNN, Attention, EchoStateNetwork, JordanRNN, LeakyRNN, MinGRU, MinLSTM,
                     PositionalEncoding, SelfAttentionBlock, Seq2Seq, Trace)

__version__ = "0.1.0"
__all__ = ["RNN", "LSTM", "GRU", "LeakyRNN", "JordanRNN", "MinGRU", "MinLSTM", "LRU", "EchoStateNetwork",
           "Seq2Seq", "Attention", "SelfAttentionBlock", "PositionalEncoding", "Trace", "__version__"]
