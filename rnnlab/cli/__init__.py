"""rnnlab's command line (typer). ``main()`` is the ``rnnlab`` console script.

One module per family of commands, each registering on the shared ``app``:
``_app`` (the app, consoles, messages, error handling, ``main``), ``checks`` (gradcheck, bench),
``experiments`` (presets, train, bptt, trace, sample), and one module per architecture lab (``esn``, ``seq2seq``, ``tree``).
"""

# the commands register in this order, which --help lists: the lab and its experiments first, then the
# architectures' own commands, then the checks
from . import experiments, esn, seq2seq, tree, checks  # noqa: F401  (registers the commands)  # isort: skip
from ._app import app, main, reflow_help

reflow_help(app)

__all__ = ["app", "main"]
