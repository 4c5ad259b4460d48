"""PyTorch-compatible recurrent layers built from the numba kernels."""

from . import init  # rnnlab.layers.init, as the README names it
from .cells import GRUCell, LSTMCell, RNNCell
from .esn import EchoStateNetwork
from .jordan import JordanRNN
from .leaky import LeakyRNN
from .minimal import LRU, MinGRU, MinLSTM
from .recurrent import GRU, LSTM, RNN, RecurrentLayer
from .selfattention import PositionalEncoding, SelfAttentionBlock, SelfAttentionModel, SelfAttentionTrace
from .seq2seq import Attention, Seq2Seq
from .trace import Trace

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "LeakyRNN", "JordanRNN", "MinGRU", "MinLSTM", "LRU",
           "EchoStateNetwork", "Seq2Seq", "Attention", "SelfAttentionBlock", "SelfAttentionModel", "SelfAttentionTrace",
           "PositionalEncoding", "RecurrentLayer", "Trace", "init", "tree"]


def __getattr__(name: str):
    """``rnnlab.layers.tree`` (as the README names it) on first use: it reaches rnnlab.train, which
    imports rnnlab.spec, which imports these layers; imported here it would close that circle."""
    if name == "tree":
        import importlib

        return importlib.import_module(".tree", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
