"""rnnlab: a terminal laboratory for recurrent neural networks.

The public API mirrors ``torch.nn``: :class:`RNN`, :class:`LSTM` and :class:`GRU` take time-major
inputs ``(T, B, I)``, share PyTorch's ``state_dict`` names, and return a :class:`Trace` of every
step's state and gates from ``forward``; ``backward`` runs (truncated) BPTT; :class:`RNNCell`,
:class:`LSTMCell` and :class:`GRUCell` run one step, as torch's cells. :class:`LeakyRNN`
(per-unit time constants), :class:`MinGRU`, :class:`MinLSTM` and :class:`LRU` (gates from the
input only: linear recurrences a parallel scan evaluates) share that API. :class:`JordanRNN` feeds
its previous output back instead of its state; :class:`EchoStateNetwork` is a fixed reservoir
with a ridge-regression readout; :class:`Seq2Seq` an encoder-decoder with optional
:class:`Attention`; :class:`SelfAttentionBlock` a Transformer encoder layer (torch's names).
"""

import importlib as _importlib
import importlib.util as _importlib_util
import typing as _typing

if _typing.TYPE_CHECKING:  # what type checkers and IDEs read; at run time __getattr__ loads these on first use
    from .layers import (GRU, LRU, LSTM, RNN, Attention, EchoStateNetwork, GRUCell, JordanRNN, LeakyRNN, LSTMCell,
                         MinGRU, MinLSTM, PositionalEncoding, RNNCell, SelfAttentionBlock, Seq2Seq, Trace)

__version__ = "0.1.0"
__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "LeakyRNN", "JordanRNN", "MinGRU", "MinLSTM",
           "LRU", "EchoStateNetwork", "Seq2Seq", "Attention", "SelfAttentionBlock", "PositionalEncoding", "Trace",
           "__version__"]

# The layers (and numba under them) load on first use, not on ``import rnnlab``: the console script
# imports this package before any of its own code runs, so a Ctrl-C there could only end in a traceback.
_LAYER_NAMES = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> _typing.Any:
    if name in _LAYER_NAMES:
        value = getattr(_importlib.import_module(".layers", __name__), name)
    elif not name.startswith("_") and _importlib_util.find_spec(f"{__name__}.{name}") is not None:
        value = _importlib.import_module(f".{name}", __name__)  # rnnlab.analysis without importing it first
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(name for name in set(globals()) | set(__all__) if not name.startswith("_") or name == "__version__")
