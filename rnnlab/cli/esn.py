"""``rnnlab esn``: the echo state network lab, headless.

Draws a reservoir, fits its readout in closed form on the Mackey-Glass series, forecasts the test
part one step ahead and runs freely from the end of the training part, then prints the figures
(a table, or JSON with ``--json``). Options default to the lab's preset (reservoirpy's published
setup, see :mod:`rnnlab.labs.esn`); ``--sweep NAME`` also refits once per value of one option,
and Ctrl-C stops it with the values finished so far printed (exit status 130). Bad values leave
through ``main`` as one line naming the flag and exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import counted
from ..errors import number_or_dash as _fmt
from ._app import (EXPORT_HELP_FORCE, _compile_notices, _info, _message, _out_console, _print_json, _progress, app,
                   choice_refused, export_file, help_notes, lab_option, nonempty_path, option_flag, output_unread,
                   quiet_option, whole_cells)


def _option_notes() -> dict[str, str]:
    """Each lab option's range and default, for --help: the engine's own (:mod:`rnnlab.labs.esn`)."""
    from ..labs.esn import DEFAULTS, option_range

    notes = {}
    for name, default in DEFAULTS.items():
        if isinstance(default, bool):
            notes[name] = f"(default: --{'' if default else 'no-'}{option_flag(name)[2:]})"
        else:
            notes[name] = f"In {option_range(name)} (default: {default:g})."
    return notes


@app.command("esn", cls=help_notes(_option_notes))
def esn(
    units: Annotated[int | None, lab_option("--units", "Reservoir units N.")] = None,
    spectral_radius: Annotated[float | None, lab_option("--spectral-radius", "Largest |eigenvalue| of W.")] = None,
    leak_rate: Annotated[float | None, lab_option("--leak-rate", "Leak rate a.")] = None,
    input_scaling: Annotated[float | None, lab_option("--input-scaling", "Scale of W_in's entries.")] = None,
    connectivity: Annotated[float | None, lab_option("--connectivity",
                                                      "Fraction of W's entries that are non-zero.")] = None,
    ridge: Annotated[float | None, lab_option("--ridge", "Ridge penalty of the readout (0: least squares).")] = None,
    readout_input: Annotated[bool | None, lab_option("--readout-input/--no-readout-input",
                                                      "Readout of (x_t, u_t) or of x_t alone.")] = None,
    seed: Annotated[int | None, lab_option("--seed", "Seed of the reservoir.")] = None,
    length: Annotated[int | None, lab_option("--length", "Steps of the Mackey-Glass series.")] = None,
    test: Annotated[int | None, lab_option("--test", "Steps scored at the end; the rest (less one) trains.")] = None,
    warmup: Annotated[int | None, lab_option("--warmup", "Training steps left out of the regression.")] = None,
    tau: Annotated[int | None, lab_option("--tau", "Mackey-Glass delay.")] = None,
    generate: Annotated[int | None, lab_option("--generate",
                                                "Free-running steps from the end of the training part.")] = None,
    threshold: Annotated[float | None, lab_option("--threshold", "|error| that ends the free run's horizon.")] = None,
    sweep: Annotated[str | None, typer.Option(
        "--sweep", help="Also refit for each value of one option: spectral_radius, leak_rate, input_scaling, "
        "connectivity or ridge.", show_default=False)] = None,
    export: Annotated[Path | None, typer.Option(
        "--export", help="Write every recorded array (states, forecasts, eigenvalues, weights) to this .npz file.",
        parser=nonempty_path, metavar="<path>", show_default=False)] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print every figure as JSON.")] = False,
    force: Annotated[bool, typer.Option("--force", help=EXPORT_HELP_FORCE)] = False,
    quiet: Annotated[bool, quiet_option()] = False,
) -> None:
    """Echo state network on Mackey-Glass: one-step RMSE and R^2, and how long the free run holds.

    The reservoir is never trained: only the linear readout, fitted in closed form (ridge
    regression). The free run feeds each forecast back as the next input. Ctrl-C stops a sweep
    and prints the values finished so far (exit status 130). A score that has no value (the RMSE
    of a free run that left the float range, the R^2 of a single test step) is "-" in the table
    and null in --json.
    """
    from ..errors import abbreviated
    from ..labs.esn import SWEEP_VALUES, EsnLab
    from .experiments import _graceful_interrupt

    export = export_file(export, force, "esn.npz")  # (the lab's export_name)
    if sweep is not None:  # before the fit: a bad name costs no time
        sweep = sweep.replace("-", "_")
        if sweep not in SWEEP_VALUES:  # 'rho' (the table's title names spectral_radius so) and 'alpha' are hinted
            raise choice_refused("--sweep", sweep, list(SWEEP_VALUES), meant=abbreviated(sweep, list(SWEEP_VALUES)))
    given = {"units": units, "spectral_radius": spectral_radius, "leak_rate": leak_rate,
             "input_scaling": input_scaling, "connectivity": connectivity, "ridge": ridge,
             "readout_input": readout_input, "seed": seed, "length": length, "test": test, "warmup": warmup,
             "tau": tau, "generate": generate, "threshold": threshold}
    options = {name: value for name, value in given.items() if value is not None}
    checked = EsnLab.checked_options(options, spell=option_flag)
    if sys.stderr.isatty():  # a large fit takes seconds: not a silent terminal (a log keeps bad input one line:
        # the draw of W refuses a connectivity too sparse only as it fits)
        _info(f"[dim]rnnlab: fitting an echo state network ({checked.units} units) on {checked.length} steps of "
              f"Mackey-Glass[/dim]")
    with _compile_notices():
        lab = EsnLab(checked, spell=option_flag)
    interrupted = None
    if sweep is not None:
        values = len(SWEEP_VALUES[sweep])
        progress = _progress()  # none on a pipe or under TERM=dumb
        with _compile_notices(), _graceful_interrupt("refit") as stop, progress:
            bar = progress.add_task(f"sweep of {sweep}", total=values)
            # a reader gone (| true, a pager quit) stops it too, unless the sweep goes to an --export file
            result = lab.sweep(sweep, should_stop=lambda: stop.is_set() or (export is None and output_unread()),
                               on_point=lambda r: progress.update(bar, completed=r.done))
        if result.status == "stopped" and not stop.is_set():  # the reader gone: quietly, as it would have ended (0)
            return
        if result.status == "stopped":  # the points finished so far are printed (and exported) below
            interrupted = f"sweep of {sweep} interrupted after {result.done} of {values} values"
    path = lab.export(export, replace=force) if export is not None else None
    summary = lab.summary()
    if json_output:
        if path is not None:
            summary["export"] = str(path)
        _print_json(summary)
    else:
        _print_table(summary)
        if path is not None:
            _out_console().print(f"exported to {path}", markup=False)
    if interrupted is not None:
        _message(f"rnnlab: {interrupted}")
        raise typer.Exit(stop.exit_code)  # 130 for Ctrl-C, 143 for SIGTERM


def _print_table(summary: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    from ..labs.esn import format_r2

    o = summary["options"]
    one, gen = summary["one_step"], summary["generation"]
    title = (f"ESN on Mackey-Glass (tau {o['tau']}, {o['length']} steps): {o['units']} units, "
             f"rho {o['spectral_radius']:g}, a {o['leak_rate']:g}, ridge {o['ridge']:g}, "
             f"readout {'[x; u]' if o['readout_input'] else 'x'}, seed {o['seed']}")
    table = Table()
    table.add_column("")
    table.add_column("value", justify="right")
    horizon = f"{gen['horizon']}" if gen["exceeded"] else f"{gen['horizon']} (never exceeded)"
    rows = [
        (f"one-step RMSE (last {counted(summary['test_steps'], 'step')})", _fmt(one["rmse"], ".6g")),
        ("one-step R^2", format_r2(one["r2"], 6)),
        (f"free run RMSE ({counted(gen['compared'], 'step')})", _fmt(gen["rmse"], ".4g")),
        (f"free run steps until |error| > {gen['threshold']:g}", horizon),
        ("spectral radius of W", _fmt(summary["spectral_radius"], ".4g")),
        ("largest |eig| of (1-a) I + a W", _fmt(summary["effective_radius"], ".4g")),
        (f"training steps (warm-up {o['warmup']})", str(summary["train_steps"])),
    ]
    for label, value in rows:
        table.add_row(label, value)
    console = _out_console()
    console.print(Text(title))
    console.print(whole_cells(table))
    sweep = summary.get("sweep")
    if sweep:
        name = sweep["name"]
        best = "-" if sweep["best"] is None else f"{sweep['best']:g}"
        console.print(Text(f"sweep of {name} ({sweep['status']}): lowest one-step RMSE at {name} = {best}"))
        st = Table()
        for column in (name, "one-step RMSE", "R^2", "free run RMSE", "horizon"):
            st.add_column(column, justify="right")
        for p in sweep["points"]:
            horizon = "-" if p["horizon"] is None else f"{p['horizon']}{'' if p['exceeded'] else '+'}"
            st.add_row(f"{p[name]:g}", _fmt(p["rmse"], ".4g"), format_r2(p["r2"], 6),
                       _fmt(p["generation_rmse"], ".4g"), horizon)
        if any(p["exceeded"] is False for p in sweep["points"]):
            st.caption = f"+: within {sweep['options']['threshold']:g} for every step compared"
        console.print(whole_cells(st))
