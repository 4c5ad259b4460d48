"""PyTorch-compatible recurrent layers built from the numba kernels."""

from .esn import EchoStateNetwork
from .jordan import JordanRNN
from .leaky import LeakyRNN
from .minimal import LRU, MinGRU, MinLSTM
from .recurrent import GRU, LSTM, RNN, RecurrentLayer
from .selfattention import PositionalEncoding, SelfAttentionBlock, SelfAttentionModel, SelfAttentionTrace
from .seq2seq import Attention, Seq2Seq
from .trace import Trace

# Last: tree reaches rnnlab.train, which imports the layers above.
from . import init, tree  # noqa: E402  (rnnlab.layers.init, rnnlab.layers.tree: as the README names them)

__all__ = ["RNN", "LSTM", "GRU", "LeakyRNN", "JordanRNN", "MinGRU", "MinLSTM", "LRU", "EchoStateNetwork", "Seq2Seq",
           "Attention", "SelfAttentionBlock", "SelfAttentionModel", "SelfAttentionTrace", "PositionalEncoding",
           "RecurrentLayer", "Trace", "init", "tree"]
