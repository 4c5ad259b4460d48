"""PyTorch-compatible recurrent layers built from the numba kernels."""

from .esn import EchoStateNetwork
from .minimal import LRU, MinGRU, MinLSTM
from .recurrent import GRU, LSTM, RNN, RecurrentLayer
from .trace import Trace

__all__ = ["RNN", "LSTM", "GRU", "MinGRU", "MinLSTM", "LRU", "EchoStateNetwork", "RecurrentLayer", "Trace"]
