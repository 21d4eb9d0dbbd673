"""effprof fit, effprof report: analyse saved results without re-measuring."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from effprof.cli import BadInput, app
from effprof.cli.options import CsvOpt, FiguresOpt, FigureSizeOpt, JsonOpt, LatexOpt
from effprof.cli.output import check_export_paths, command_line, err, frame_records, load_results, out, print_json, write_exports


@app.command("fit")
def fit_command(
    results: Annotated[Path, typer.Argument(help="results file from effprof sweep (JSON Lines)")],
    json_: JsonOpt = False,
) -> None:
    """Fit scaling exponents of saved results and check them against the mechanisms' claims."""
    from effprof.fit import fit_frame
    from effprof.render.console import fits_table

    fits = fit_frame(load_results(results))
    if json_:
        print_json(frame_records(fits))
        return
    if fits.empty:
        err.print("no series with three or more sizes: nothing to fit")
        return
    out.print(fits_table(fits))


@app.command("report")
def report_command(
    results: Annotated[Path, typer.Argument(help="results file from effprof sweep (JSON Lines)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write")],
    baseline: Annotated[Optional[Path], typer.Option("--baseline", help="an earlier results file: ratio columns, changes beyond noise flagged")] = None,
    latex: LatexOpt = None,
    csv: CsvOpt = None,
    figures: FiguresOpt = None,
    figure_size: FigureSizeOpt = "single",
) -> None:
    """Write a self-contained HTML report (plots, claims, crossovers, records) of saved results."""
    from effprof.api import pattern_panels
    from effprof.fit import fit_frame
    from effprof.render.html import write_report

    if output.suffix.lower() not in (".html", ".htm"):
        raise BadInput(f"--output {str(output)!r} must end in .html")
    check_export_paths(latex, csv, figures, figure_size)
    frame = load_results(results)
    old = load_results(baseline, "--baseline") if baseline is not None else None
    fits = fit_frame(frame)
    path = write_report(frame, fits, output, command=command_line(), baseline=old, pattern_panels=pattern_panels(frame))
    write_exports(frame, fits, latex, csv, figures, figure_size)
    err.print(f"report: {path}")


@app.command("merge")
def merge_command(
    inputs: Annotated[list[Path], typer.Argument(help="results files to merge")],
    output: Annotated[Path, typer.Option("--output", "-o", help="merged results file to write")],
) -> None:
    """Merge results from several runs or machines: exact duplicates removed, conflicting measurements kept."""
    from effprof.records import merge, read, write_all

    if output.resolve() in {p.resolve() for p in inputs}:
        raise BadInput(f"--output {str(output)!r} is also an input; write the merge to a new file")
    loaded = [read(p) for p in inputs]
    merged, stats = merge(loaded)
    write_all(output, merged)
    err.print(f"{stats['records']} records written to {output}: {stats['duplicates']} exact duplicates removed, "
              f"{stats['conflicts']} points measured more than once (all kept, with their environments)")
