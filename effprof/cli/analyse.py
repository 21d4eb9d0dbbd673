"""effprof fit, effprof report: analyse saved results without re-measuring."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from effprof.cli import BadInput, app
from effprof.cli.options import JsonOpt
from effprof.cli.output import command_line, err, frame_records, out, print_json


def _load(path: Path):
    import warnings

    from effprof.records import read, to_frame

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = read(path)
    for w in caught:
        err.print(f"warning: {w.message}")
    if not records:
        raise BadInput(f"results file {str(path)!r} holds no records; make one with effprof sweep ... -o {path}")
    return to_frame(records)


@app.command("fit")
def fit_command(
    results: Annotated[Path, typer.Argument(help="results file from effprof sweep (JSON Lines)")],
    json_: JsonOpt = False,
) -> None:
    """Fit scaling exponents of saved results and check them against the mechanisms' claims."""
    from effprof.fit import fit_frame
    from effprof.render.console import fits_table

    fits = fit_frame(_load(results))
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
) -> None:
    """Write a self-contained HTML report (plots, claims, records) of saved results."""
    from effprof.fit import fit_frame
    from effprof.render.html import write_report

    if output.suffix.lower() not in (".html", ".htm"):
        raise BadInput(f"--output {str(output)!r} must end in .html")
    frame = _load(results)
    path = write_report(frame, fit_frame(frame), output, command=command_line())
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
