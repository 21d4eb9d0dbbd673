"""effprof fit, report, merge: analyse saved results without re-measuring (and without torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from effprof.cli import BadInput, app
from effprof.cli.options import CsvOpt, FigureSizeOpt, FiguresOpt, HardwareFileOpt, HardwareOpt, JsonOpt, LatexOpt, PlotlyjsOpt, choose_hardware
from effprof.cli.output import check_export_paths, check_output_file, command_line, err, load_results, out, print_frame_json, read_records
from effprof.render.escape import plain


@app.command("fit")
def fit_command(
    results: Annotated[Path, typer.Argument(help="results file from effprof sweep (JSON Lines)")],
    json_: JsonOpt = False,
) -> None:
    """Fit scaling exponents of saved results and check them against the mechanisms' claims."""
    from effprof.analysis import mark_noisy_fits
    from effprof.fit import fit_frame
    from effprof.render.console import fits_table

    frame = load_results(results)
    fits = mark_noisy_fits(fit_frame(frame), frame)
    if json_:
        print_frame_json(fits)
        return
    if fits.empty:
        err.print("no series with three or more sizes: nothing to fit")
        return
    out.print(fits_table(fits))


@app.command("report")
def report_command(
    results: Annotated[Path, typer.Argument(help="results file from effprof sweep (JSON Lines)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write")],
    baseline: Annotated[Path | None, typer.Option("--baseline", help="an earlier results file: ratio columns, changes beyond noise flagged")] = None,
    latex: LatexOpt = None,
    csv: CsvOpt = None,
    figures: FiguresOpt = None,
    figure_size: FigureSizeOpt = "single",
    plotlyjs: PlotlyjsOpt = "inline",
    hardware: HardwareOpt = None,
    hardware_file: HardwareFileOpt = None,
) -> None:
    """Write a self-contained HTML report (plots, claims, crossovers, records) of saved results.

    Attention patterns measured with the results (by effprof compare, in RESULTS.session.json beside
    them) are drawn; results without them are reported without, with a note.
    """
    from effprof.analysis import Session, analyse, session_path
    from effprof.render import html
    from effprof.render.export import ExportError, write_exports

    if output.suffix.lower() not in (".html", ".htm"):
        raise BadInput(f"--output {str(output)!r} must end in .html")
    if plotlyjs not in html.PLOTLYJS:
        raise BadInput(f"--plotlyjs {plotlyjs!r} is not accepted; accepted: {', '.join(html.PLOTLYJS)}")
    check_output_file(output, "--output")
    check_export_paths(latex, csv, figures, figure_size)
    device = choose_hardware(hardware, hardware_file)
    frame = load_results(results)
    old = load_results(baseline, "--baseline") if baseline is not None else None
    saved = session_path(results)
    patterns = Session.load(saved).patterns if saved.exists() else None
    session = analyse(frame, old, patterns=patterns, command=command_line(), hardware=device)
    for note in (session.hardware or {}).get("notes", []):
        err.print(plain(note), soft_wrap=True)
    path = html.write(session, output, plotlyjs)
    try:
        for line in write_exports(session, latex, csv, figures, figure_size):
            err.print(plain(line), soft_wrap=True)
    except ExportError as e:
        raise BadInput(str(e)) from None
    err.print(plain(f"report: {path}"), soft_wrap=True)


@app.command("merge")
def merge_command(
    inputs: Annotated[list[Path], typer.Argument(help="results files to merge")],
    output: Annotated[Path, typer.Option("--output", "-o", help="merged results file to write")],
) -> None:
    """Merge results from several runs or machines: exact duplicates removed, conflicting measurements kept."""
    from effprof.records import merge, write_all

    if output.resolve() in {p.resolve() for p in inputs}:
        raise BadInput(f"--output {str(output)!r} is also an input; write the merge to a new file")
    check_output_file(output, "--output")
    loaded = [read_records(p) for p in inputs]
    merged, stats = merge(loaded)
    write_all(output, merged)
    err.print(plain(f"{stats['records']} records written to {output}: {stats['duplicates']} exact duplicates removed, "
                    f"{stats['conflicts']} points measured more than once (all kept, with their environments)"), soft_wrap=True)
