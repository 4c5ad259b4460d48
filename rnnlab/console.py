"""The ``rnnlab`` console script (and ``python -m rnnlab``).

The CLI, and numba and NumPy under it, are imported and the command built inside the Ctrl-C
guard: an interrupt in the first fraction of a second ends as one during a command does (typer's
way: exit status 130, no traceback, nothing more than the terminal's own ^C).
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Import the CLI and run it; returns the exit status."""
    try:
        from .cli import main as cli_main

        return cli_main(argv)  # typer handles an interrupt during the command, not while it builds it
    except KeyboardInterrupt:
        return 130
