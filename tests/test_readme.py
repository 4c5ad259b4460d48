"""The README's Python examples run as written, one after another in one namespace, as a reader
types them (the torch block only where torch is installed)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"


def _check_the_lengths_example(ns: dict) -> None:
    """What its comments say."""
    assert ns["lengths"] == [100, 60, 37, 80]
    assert not ns["y"][60:, 1].any() and ns["y"][59, 1].any()
    assert ns["grads"]["input"].shape == (100, 4, 8) and not ns["grads"]["input"][60:, 1].any()
    alone = ns["lstm"](ns["x"][:60, 1:2])[1][0]  # sequence 1's first 60 steps, run alone
    np.testing.assert_allclose(ns["h_n"][:, 1:2], alone, rtol=1e-5, atol=1e-6)


def test_the_readmes_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 4
    namespace: dict = {}
    checked = False
    for block in blocks:
        if "import torch" in block and importlib.util.find_spec("torch") is None:
            continue
        exec(compile(block, str(README), "exec"), namespace)
        if block.startswith("lengths = "):
            _check_the_lengths_example(namespace)
            checked = True
    assert checked


def _command_rows() -> dict[str, str]:
    """The README's command table, each command's rows joined: ``rnnlab tui`` has two."""
    rows: dict[str, str] = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        if match := re.match(r"\| `rnnlab (\w+)", line):
            rows[match[1]] = rows.get(match[1], "") + line
    return rows


def test_the_readmes_command_table_names_every_command_and_option():
    """A command or an option added to the CLI and not to the README's table left its reader unaware of it: every
    command `rnnlab --help` lists has a row, and the row names each of its options (a flag by either of its forms,
    --readout-input or --no-readout-input)."""
    import typer

    from rnnlab.cli import _app

    rows = _command_rows()
    command = typer.main.get_command(_app.app)
    assert set(command.commands) <= set(rows), set(command.commands) - set(rows)
    missing = [(name, param.opts) for name, sub in command.commands.items() for param in sub.params
               if param.param_type_name == "option" and "--help" not in param.opts
               and not any(f"`{opt}" in rows[name] or f" {opt}" in rows[name] or f"[{opt}" in rows[name]
                           for opt in [*param.opts, *param.secondary_opts] if opt.startswith("--"))]
    assert not missing, missing
