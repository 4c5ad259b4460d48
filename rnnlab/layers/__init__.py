"""PyTorch-compatible recurrent layers built from the numba kernels."""

from .recurrent import GRU, LSTM, RNN, RecurrentLayer
from .trace import Trace

__all__ = ["RNN", "LSTM", "GRU", "RecurrentLayer", "Trace"]
