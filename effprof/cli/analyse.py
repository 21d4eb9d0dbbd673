"""effprof fit, report, merge: analyse saved results without re-measuring (and without torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from effprof.cli import BadInput, app
from effprof.cli.options import (
    CsvOpt,
    FigureSizeOpt,
    FiguresOpt,
    HardwareFileOpt,
    HardwareOpt,
    JsonOpt,
    LabelOpt,
    LatexOpt,
    PlotlyjsOpt,
    choose_hardware,
)
from effprof.cli.output import check_export_paths, check_output_file, command_line, err, load_results, out, print_frame_json, read_records
from effprof.render.escape import plain


@app.command("fit")
def fit_command(
    results: Annotated[Path, typer.Argument(help="results file from effprof sweep (JSON Lines)")],
    json_: JsonOpt = False,
) -> None:
    """Fit scaling exponents of saved results and check them against the mechanisms' claims."""
    from effprof.analyse.session import scaling_fits
    from effprof.render.console import fits_table

    frame = load_results(results)
    fits = scaling_fits(frame)  # as effprof.fit() and the Session make them
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
    output: Annotated[Path | None, typer.Option("--output", "-o", help="HTML file to write (default: beside RESULTS, RESULTS.html)")] = None,
    baseline: Annotated[Path | None, typer.Option("--baseline", help="an earlier results file: ratio columns, changes beyond noise flagged")] = None,
    latex: LatexOpt = None,
    csv: CsvOpt = None,
    figures: FiguresOpt = None,
    figure_size: FigureSizeOpt = "single",
    plotlyjs: PlotlyjsOpt = "inline",
    label: LabelOpt = None,
    hardware: HardwareOpt = None,
    hardware_file: HardwareFileOpt = None,
) -> None:
    """Write a self-contained HTML report (plots, claims, crossovers, records) of saved results.

    Attention patterns measured with the results (by effprof compare, in RESULTS.session.json beside
    them) are drawn; results without them are reported without, with a note.
    """
    from effprof.analyse.session import analyse, saved_session
    from effprof.render import html
    from effprof.render.export import ExportError, write_exports
    from effprof.render.labels import apply, apply_patterns, parse_labels
    from effprof.store.records import file_digest

    if output is None:
        output = results.with_suffix(".html")  # beside the results: runs.jsonl -> runs.html
    if output.suffix.lower() not in (".html", ".htm"):
        raise BadInput(f"--output {str(output)!r} must end in .html")
    if plotlyjs not in html.PLOTLYJS:
        raise BadInput(f"--plotlyjs {plotlyjs!r} is not accepted; accepted: {', '.join(html.PLOTLYJS)}")
    labels = parse_labels(label)
    check_output_file(output, "--output")
    check_export_paths(latex, csv, figures, figure_size, output if plotlyjs == "directory" else None)
    device = choose_hardware(hardware, hardware_file)
    frame = load_results(results)
    old = load_results(baseline, "--baseline") if baseline is not None else None
    digest = file_digest(results)
    saved, why = saved_session(results, digest)  # used only when it belongs to these records (its content hash)
    patterns = saved.patterns if saved else None
    if why or not labels:  # the session file holds the names measured (labels are the report's): analysed unlabelled
        session = analyse(frame, old, patterns=patterns, command=command_line(), hardware=device)
        session.source_sha256 = digest
        if why:
            _rebuild_session(session, results, why)
    if labels:
        session = analyse(apply(frame, labels), apply(old, labels) if old is not None else None,
                          patterns=apply_patterns(patterns, labels), command=command_line(), hardware=device)
    for note in (session.hardware or {}).get("notes", []):
        err.print(plain(note), soft_wrap=True)
    path = html.write(session, output, plotlyjs)
    try:
        for line in write_exports(session, latex, csv, figures, figure_size):
            err.print(plain(line), soft_wrap=True)
    except ExportError as e:
        raise BadInput(str(e)) from None
    err.print(plain(f"report: {path}"), soft_wrap=True)


def _rebuild_session(session, results: Path, why: str) -> None:
    """Replace a session file that does not belong to its results (or fails its checks) with one rebuilt from them.
    Only a regular file is replaced: a FIFO, device, folder or symbolic link there is left alone (a FIFO was never read)."""
    from effprof.analyse.session import session_path

    path = session_path(results)
    rewrite = path.is_file() and not path.is_symlink()
    then = "rebuilt from the records" if rewrite else "not used, and left as it is"
    err.print(plain(f"warning: {why}; {then} (attention patterns are measured by effprof compare)"), soft_wrap=True)
    if rewrite:
        try:
            session.save(path, records_in=results)
        except OSError as e:
            err.print(plain(f"warning: {path} could not be rewritten: {e.strerror or e}"), soft_wrap=True)


@app.command("merge")
def merge_command(
    inputs: Annotated[list[Path], typer.Argument(help="results files to merge")],
    output: Annotated[Path, typer.Option("--output", "-o", help="merged results file to write")],
) -> None:
    """Merge results from several runs or machines: exact duplicates removed, conflicting measurements kept."""
    from effprof.store.records import merge, write_all

    if output.resolve() in {p.resolve() for p in inputs}:
        raise BadInput(f"--output {str(output)!r} is also an input; write the merge to a new file")
    check_output_file(output, "--output")
    loaded = [read_records(p) for p in inputs]
    merged, stats = merge(loaded)
    write_all(output, merged)
    err.print(plain(f"{stats['records']} records written to {output}: {stats['duplicates']} exact duplicates removed, "
                    f"{stats['conflicts']} points measured more than once (all kept, with their environments)"), soft_wrap=True)
