"""Plain NumPy float64 references: the slow, obviously-correct twins of rnnlab's kernels.

One module per family, each written equation by equation in float64 with exact libm functions:
:mod:`.recurrent` holds RNN, LSTM and GRU (``forward``/``backward`` re-exported here, as the
tests and ``rnnlab bench`` use them). Later architectures add their own modules beside it.
"""

from .recurrent import GATES, backward, forward, param_names

__all__ = ["forward", "backward", "GATES", "param_names"]
