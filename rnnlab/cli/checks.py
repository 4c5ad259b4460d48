"""``rnnlab gradcheck`` and ``rnnlab bench``: the foundation's correctness and speed checks."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from ..errors import UserError, counted, meant_choice, named_in_part
from ._app import (_compile_notices, _info, _json_float, _message, _out_console, _print_json, _progress, _split_names,
                   app, choice_refused, out_glyph, output_unread, quiet_option, whole_cells, write_out)

#: Timed rounds a case at most: each is a whole forward and backward pass (a typo of 10**30 ran on
#: with no end); 10,000 of the largest standard shape take hours already.
REPEATS_MAX = 10_000


# ---------------------------------------------------------------------------------------------
# rnnlab gradcheck
# ---------------------------------------------------------------------------------------------

@app.command()
def gradcheck(
    json_output: Annotated[
        bool, typer.Option("--json", help='Print {"cells": {NAME: {"max_rel_err": float, "ok": bool, "worst_tensor": '
                           'str, "seconds": float}}} instead of a table.')
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", metavar="NAME", help="Run only this check (repeatable, or comma-separated)."),
    ] = None,
    list_checks: Annotated[
        bool, typer.Option("--list", help="List the checks' names (those --only selects) and exit; "
                           "with --json as a JSON list.")
    ] = False,
    quiet: Annotated[bool, quiet_option()] = False,
) -> None:
    """Finite-difference gradient checks (float64) of every cell, stacked and bidirectional too.

    Exits 1 if any check's relative error is 1e-6 or more. A check's seconds include compiling its
    kernels the first time (cached after).
    """
    from .. import gradcheck as gc
    from ..labs import unknown_name

    names = _split_names(only)
    if only is not None and not names:  # --only "" or --only ,
        raise UserError("--only names no check (rnnlab gradcheck --list lists them)")
    if names is not None:
        unknown = [n for n in names if n not in gc.CHECKS]
        if unknown:  # each named whole, as typed ("lstm_bidirectio…" left the user to guess what was read)
            more = f"; also unknown: {', '.join(map(repr, unknown[1:]))}" if len(unknown) > 1 else ""
            if meant := named_in_part(unknown[0], list(gc.CHECKS)):  # "gru_bidir": difflib's guess was gru_no_bias
                first = f"unknown check {unknown[0]!r} ({len(gc.CHECKS)} known; did you mean {meant!r}?)"
            else:
                first = unknown_name("check", unknown[0], list(gc.CHECKS), longest=None)
            raise UserError(f"--only: {first}{more} (--list names them)")
    if list_checks:
        listed = [name for name in gc.CHECKS if names is None or name in names]
        if json_output:
            _print_json(listed)
        else:
            write_out("".join(f"{name}\n" for name in listed))
        return

    from .experiments import _graceful_interrupt

    total = len(dict.fromkeys(names)) if names else len(gc.CHECKS)  # a name given twice runs once
    with _compile_notices(), _graceful_interrupt("check") as stop, _progress() as progress:
        task = progress.add_task("gradient checks", total=total)

        def report(done: int, total: int, name: str) -> None:
            progress.update(task, completed=done, total=total, description=name or "done")

        # Ctrl-C, or a reader gone before the table (| true, a pager quit): after the check under way
        results = gc.run_checks(names, progress=report, should_stop=lambda: stop.is_set() or output_unread())

    failed = [r for r in results if not r.ok]
    if json_output:
        _print_json({"cells": {r.name: {"max_rel_err": _json_float(r.max_rel_err), "ok": r.ok, "worst_tensor": r.worst,
                                        "seconds": r.seconds} for r in results}})
    else:
        from rich.table import Table

        # title and caption as lines of their own: a table's are wrapped to its width, at 80 columns 'float64' and
        # '< 1e-06' centred on lines of their own under the rest
        table = Table()
        table.add_column("check", overflow="fold")  # a narrow terminal: "lstm_deep_bidirec" over "tional", not "lst…"
        table.add_column("max rel err", justify="right")
        table.add_column("worst tensor", overflow="fold")
        table.add_column("seconds", justify="right")
        table.add_column("", justify="center")
        for r in results:
            table.add_row(r.name, f"{r.max_rel_err:.2e}", r.worst, f"{r.seconds:.2f}",
                          "[green]ok[/green]" if r.ok else "[bold red]FAIL[/bold red]")
        console = _out_console()
        console.print("Gradient checks: central differences vs backward(), float64", markup=False)
        console.print(whole_cells(table))
        console.print(f"error = max|fd - analytic| / max|.| per tensor; pass < {gc.TOLERANCE:g}", style="dim",
                      markup=False)
    if failed:
        _message(f"[red]{len(failed)} of {len(results)} gradient checks failed: "
                 f"{', '.join(r.name for r in failed)}[/red]")
    if stop.is_set() and len(results) < total:  # the checks finished are printed above
        _message(f"rnnlab: gradient checks interrupted after {len(results)} of {total}")
        raise typer.Exit(stop.exit_code)  # 130 for Ctrl-C, 143 for SIGTERM
    if failed:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------------
# rnnlab bench
# ---------------------------------------------------------------------------------------------

def _parse_shape(text: str) -> tuple[int, int, int, int]:
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1:
        raise UserError(f"--shape: {text!r} is not four positive integers B,T,I,H")
    return shape  # type: ignore[return-value]


def _ms(value: float | None) -> str:
    """At most 5 characters: 0.093, 2.38, 25.9, 11255."""
    if value is None:
        return "-"
    for limit, fmt in ((1, ".3f"), (10, ".2f"), (100, ".1f")):
        if value < limit:
            return format(value, fmt)
    return f"{value:.0f}"


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.2f}"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"



#: bench's table's columns: (name, header, justify), and the order they are left out in where a terminal is too
#: narrow (at 40 columns rich cut every figure to "11…"): the reference's ratio, then the forward pass's columns
#: (the targets are forward+backward's), torch's time, the target, rnnlab's time; its ratio to torch last
BENCH_COLUMNS = [("cell", "cell", "left"), ("shape", "B,T,I,H", "left"), ("fwd rnnlab", "fwd\nrnnlab", "right"),
                 ("fwd torch", "fwd\ntorch", "right"), ("fwd x", "fwd\nx", "right"),
                 ("f+b rnnlab", "f+b\nrnnlab", "right"), ("f+b torch", "f+b\ntorch", "right"),
                 ("f+b x", "f+b\nx", "right"), ("target", "target", "left"), ("ref x", "ref\nx", "right")]
TORCH_COLUMNS = ("fwd torch", "fwd x", "f+b torch", "f+b x", "target")  # (the target: a ratio to torch)
BENCH_LEFT_OUT_FIRST = ("ref x", "fwd x", "fwd torch", "fwd rnnlab", "f+b torch", "target", "f+b rnnlab", "f+b x")


def _bench_table(rows: list[dict[str, Any]], env: dict[str, Any], left_out: Sequence[str] = ()):
    """Compact enough for 80 columns: shape in one column, two-line headers, ratios as x. ``left_out``: names
    of :data:`BENCH_COLUMNS` not to show (:func:`_bench_fitted`)."""
    from rich import box
    from rich.table import Table

    # without torch (--no-torch, or not installed) its columns and the targets, which compare with
    # it, would be dashes in every row: left out, as the reference's column with --no-reference
    torch = any(r["torch_fwd_ms"] is not None for r in rows)
    ref = any(r["ratio_ref"] is not None for r in rows)
    shown = {name for name, _, _ in BENCH_COLUMNS
             if name not in left_out and (torch or name not in TORCH_COLUMNS) and (ref or name != "ref x")}
    notes = (["x = torch / rnnlab"] if shown & {"fwd x", "f+b x"} else []) + \
        (["target on f+b (forward+backward)"] if "target" in shown else []) + \
        (["ref x = float64 NumPy reference / rnnlab"] if "ref x" in shown else [])
    table = Table(
        title=f"rnnlab bench: float32, median milliseconds, {counted(env['threads'], 'thread')}",
        caption="; ".join(notes) or None,
        box=box.SIMPLE_HEAD,
        padding=(0, 0),  # the box's blank divider separates columns: 80 terminal columns suffice
        pad_edge=False,
        show_edge=False,  # its blank edges ended every line in a space, and began and ended it with blank lines
    )
    for name, header, justify in BENCH_COLUMNS:
        if name in shown:
            table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    at_least, met, missed = out_glyph("≥", ">="), out_glyph("✓", "met"), out_glyph("✗", "missed")
    for r in rows:
        if r["met"] is None:
            target = f"[dim]{at_least}{r['target']:g}[/dim]"
        elif r["met"]:
            target = f"[green]{at_least}{r['target']:g} {met}[/green]"
        else:
            target = f"[bold red]{at_least}{r['target']:g} {missed}[/bold red]"
        cells = [r["cell"], f"{r['B']},{r['T']},{r['I']},{r['H']}",
                 _ms(r["rnnlab_fwd_ms"]), _ms(r["torch_fwd_ms"]), _ratio(r["ratio_fwd"]),
                 _ms(r["rnnlab_fwdbwd_ms"]), _ms(r["torch_fwdbwd_ms"]), _ratio(r["ratio_fwdbwd"]),
                 target, _ratio(r["ratio_ref"])]
        table.add_row(*(cell for cell, (name, _, _) in zip(cells, BENCH_COLUMNS) if name in shown))
    return table


def _bench_fitted(rows: list[dict[str, Any]], env: dict[str, Any]):
    """(bench's table, the names of the columns left out): a terminal too narrow for the table loses whole
    columns (:data:`BENCH_LEFT_OUT_FIRST`) until it fits, rather than every figure cut to "11…"; a file or a
    pipe, which crops no line, gets every column, each cell whole (:func:`whole_cells`)."""
    from rich.measure import Measurement

    console = _out_console()
    table = _bench_table(rows, env)
    if console.soft_wrap:  # (not a terminal)
        return whole_cells(table), []
    headers = {header: name for name, header, _ in BENCH_COLUMNS}
    shown = {headers[column.header] for column in table.columns}  # (no torch, no reference: fewer)
    left_out: list[str] = []
    for name in (name for name in BENCH_LEFT_OUT_FIRST if name in shown):
        if Measurement.get(console, console.options.update_width(10**6), table).maximum <= console.width:
            break
        left_out.append(name)
        table = _bench_table(rows, env, left_out)
    return table, left_out


def _bench_cuda(json_output: bool, quick: bool, cells: list[str] | None, shapes: list[str] | None,
                repeats: int, no_torch: bool, check_targets: bool) -> None:
    """``rnnlab bench --device cuda``: :mod:`rnnlab.bench_cuda` (a markdown table, or JSON)."""
    from .. import bench_cuda

    argv = ["--repeats", str(repeats)]
    names = _split_names(cells)
    if names:
        unknown = [c for c in names if c not in bench_cuda.CELLS]
        if unknown:
            raise UserError(f"--cells: unknown cell {', '.join(map(repr, unknown))} on cuda "
                            f"(known: {', '.join(bench_cuda.CELLS)})")
        argv += ["--cells", ",".join(names)]
    if shapes:
        argv += ["--shapes", *(",".join(map(str, _parse_shape(s))) for s in shapes)]
    elif quick:
        argv += ["--shapes", *(",".join(map(str, s)) for s in bench_cuda.SHAPES[:3])]
    if no_torch:
        argv.append("--no-torch")
    if json_output:
        argv.append("--json")
    if check_targets:
        argv.append("--check-targets")
    from ..kernels.cuda import require_cuda

    from .experiments import _graceful_interrupt

    require_cuda()  # no GPU: one line, as every other error ("rnnlab: error: device 'cuda' is not available: ...")
    measured = [0, 0]  # (cell, shape) pairs done, of all

    def progress(done: int, total: int) -> None:
        measured[:] = done, total

    # Ctrl-C (SIGTERM) ends the measuring after the current (cell, shape), whose rows are printed, as on the CPU
    with _graceful_interrupt("measurement") as stop:
        status = bench_cuda.main(argv, should_stop=lambda: stop.is_set() or output_unread(),  # (| true: for nobody)
                                 progress=progress)
    sys.stdout.flush()  # its print()s, here where a reader gone is quietly dropped (at exit: a traceback, status 120)
    done, total = measured
    if done < total and stop.is_set():
        _message(f"rnnlab: bench interrupted after {done} of {total} measurements (cell and shape)")
        raise typer.Exit(stop.exit_code)
    if status:
        raise typer.Exit(status)


def _bench_markdown(rows: list[dict[str, Any]]) -> str:
    head = ("| cell | B | T | I | H | rnnlab fwd ms | torch fwd ms | ratio fwd | rnnlab f+b ms | torch f+b ms "
            "| ratio f+b | target | ref f+b ms | ref/rnnlab |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        met = "" if r["met"] is None else (" met" if r["met"] else " **missed**")
        lines.append(
            f"| {r['cell']} | {r['B']} | {r['T']} | {r['I']} | {r['H']} | {_ms(r['rnnlab_fwd_ms'])} "
            f"| {_ms(r['torch_fwd_ms'])} | {_ratio(r['ratio_fwd'])} | {_ms(r['rnnlab_fwdbwd_ms'])} "
            f"| {_ms(r['torch_fwdbwd_ms'])} | {_ratio(r['ratio_fwdbwd'])} | >= {r['target']:g}{met} "
            f"| {_ms(r['ref_fwdbwd_ms'])} | {_ratio(r['ratio_ref'])} |"
        )
    return "\n".join(lines)


@app.command()
def bench(
    json_output: Annotated[bool, typer.Option("--json", help="Print the environment and every row as JSON.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a Markdown table (for benchmarks/README.md).")] = False,
    quick: Annotated[bool, typer.Option("--quick", help="Only the first three (small) shapes.")] = False,
    cells: Annotated[
        list[str] | None,
        typer.Option("--cells", metavar="CELL", help="Cells to run (repeatable or comma-separated): "
                     "rnn_tanh, rnn_relu, lstm, gru. Default: rnn_tanh, lstm, gru."),
    ] = None,
    shapes: Annotated[
        list[str] | None,
        typer.Option("--shape", metavar="B,T,I,H", help="Run this shape instead of the standard ones (repeatable)."),
    ] = None,
    repeats: Annotated[int, typer.Option("--repeats", min=1, max=REPEATS_MAX,
                                         help="Timed rounds per case; the median is reported "
                                         "(at least 7 with --device cuda).")] = 7,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="Threads for numba, torch and BLAS (default: all cores).")
    ] = None,
    no_torch: Annotated[bool, typer.Option("--no-torch", help="Do not compare against PyTorch.")] = False,
    no_reference: Annotated[bool, typer.Option("--no-reference", help="Do not time the NumPy reference.")] = False,
    check_targets: Annotated[
        bool, typer.Option("--check-targets", help="Exit 1 if a speed target is missed (needs PyTorch: the targets "
                           "are ratios torch / rnnlab).")
    ] = False,
    device: Annotated[
        str, typer.Option("--device", help="cpu, or cuda: rnnlab's GPU kernels against PyTorch/cuDNN on the GPU.")
    ] = "cpu",
    quiet: Annotated[bool, quiet_option()] = False,
) -> None:
    """Time forward and forward+backward (float32) against PyTorch CPU and the NumPy reference.

    Single-layer networks at six standard shapes (B, T, I, H), from (1, 100, 8, 16) to
    (64, 50, 256, 512); each case interleaves rnnlab, torch and the reference round by round
    and reports medians. Targets (torch / rnnlab, fwd+bwd): >= 5
    at B=1 and H <= 64; otherwise >= 1.0 for LSTM and >= 1.5 for GRU and RNN. With --device cuda,
    against cuDNN: >= 0.5 at B >= 64, and >= 1 at B = 1 with H <= 256.
    """
    if json_output and markdown:
        raise UserError("choose one of --json and --markdown")
    if device not in ("cpu", "cuda"):
        raise choice_refused("--device", device, ("cpu", "cuda"))
    if check_targets and no_torch:
        raise UserError("--check-targets needs PyTorch (the targets are ratios torch / rnnlab): drop --no-torch")
    if cells is not None and not _split_names(cells):  # --cells "" (an unset shell variable): not every cell
        raise UserError("--cells names no cell (e.g. --cells lstm,gru)")
    if shapes and quick:
        raise UserError("--quick and --shape exclude each other")
    if device == "cuda":  # what only the CPU benchmark reads is refused, not dropped in silence
        if threads is not None:
            raise UserError("--threads applies to the CPU benchmark (on cuda the kernels' launches set their threads)")
        if no_reference:
            raise UserError("--no-reference applies to the CPU benchmark (the cuda one times no NumPy reference)")
        if quiet:  # (its script says how it goes on stderr in lines of its own)
            raise UserError("--quiet applies to the CPU benchmark (the cuda one's script says how it goes on stderr "
                            "as it measures)")
        from ..bench_cuda import MIN_REPEATS

        if repeats < MIN_REPEATS:
            raise UserError(f"--repeats must be at least {MIN_REPEATS} with --device cuda (a GPU's timings vary "
                            f"more), got {repeats}")
        _bench_cuda(json_output, quick, cells, shapes, repeats, no_torch, check_targets)
        return
    from .. import bench as bm

    cell_names = _split_names(cells) or list(bm.DEFAULT_CELLS)
    unknown = [c for c in cell_names if c not in bm.CELLS]
    if unknown:
        meant = meant_choice(unknown[0], bm.CELLS) if len(unknown) == 1 else None
        hint = f"did you mean {meant!r}? " if meant else ""
        raise UserError(f"--cells: unknown cell {', '.join(map(repr, unknown))} ({hint}known: {', '.join(bm.CELLS)})")
    if shapes:
        shape_list = [_parse_shape(s) for s in shapes]
    else:
        shape_list = list(bm.QUICK_SHAPES if quick else bm.SHAPES)
    if threads is not None:
        import numba

        most = numba.config.NUMBA_NUM_THREADS
        if threads > most:
            raise UserError(f"--threads {threads} is more than numba's {counted(most, 'thread')} "
                            "(set NUMBA_NUM_THREADS before starting)")

    use_torch = not no_torch
    if use_torch:
        try:
            importlib.import_module("torch")
        except ImportError:
            if check_targets:
                raise UserError("--check-targets: the targets are ratios against PyTorch, which is not installed "
                                "(pip install torch)") from None
            _message("rnnlab bench: torch is not installed; timing rnnlab"
                     + (" only" if no_reference else " and the reference only"))
            use_torch = False
    bm.check_memory(cell_names, shape_list, use_torch=use_torch, use_reference=not no_reference)
    env = bm.environment(threads, use_torch)
    load = env.get("load_average")
    if load is not None and load > 0.5:
        _message(f"[yellow]rnnlab bench: load average {load} on {counted(env['cores'], 'core')}: other processes are "
                 "running, timings will be noisy[/yellow]")

    from .experiments import _graceful_interrupt

    total = len(dict.fromkeys(cell_names)) * len(shape_list)
    with _compile_notices(), _graceful_interrupt("measurement") as stop, _progress() as progress:
        task = progress.add_task("warming up", total=total)

        def report(done: int, total: int, label: str) -> None:
            progress.update(task, completed=done, total=total, description=label or "done")

        rows = bm.run_bench(cell_names, shape_list, repeats=repeats, threads=threads, use_torch=use_torch,
                            use_reference=not no_reference, progress=report,
                            should_stop=lambda: stop.is_set() or output_unread())  # (| true: for nobody)
    if len(rows) < total and not stop.is_set():  # the reader gone: quietly, as it would have ended
        raise typer.Exit(1 if check_targets and any(r["met"] is False for r in rows) else 0)
    env["load_average_after"] = bm.load_average()

    if json_output:
        _print_json({"environment": env, "rows": rows})
    elif markdown:
        write_out(_bench_markdown(rows) + "\n")
    else:
        table, left_out = _bench_fitted(rows, env)
        _out_console().print(table)
        if left_out:
            _out_console().print(f"left out to fit the terminal: {', '.join(left_out)} (a wider one, a pipe, "
                                 "--markdown or --json has them)", markup=False)
        _info(f"[dim]{env['cpu']}, {counted(env['cores'], 'core')}; rnnlab {env['rnnlab']}, numba {env['numba']}, "
              f"numpy {env['numpy']}, torch {env['torch'] or '-'}; BLAS threads: {env['blas_threads']}[/dim]")
    missed = [r for r in rows if r["met"] is False]
    if missed:
        _message(f"{len(missed)} of {len(rows)} speed targets missed")
    if len(rows) < total:  # Ctrl-C: the shapes measured are printed above
        _message(f"rnnlab: bench interrupted after {len(rows)} of {total} measurements (cell and shape)")
        raise typer.Exit(stop.exit_code)
    if missed and check_targets:
        raise typer.Exit(1)


