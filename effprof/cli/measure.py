"""effprof profile, sweep, compare: measure points."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from effprof.cli import BadInput, app
from effprof.cli.options import (
    CsvOpt, FiguresOpt, FigureSizeOpt, ForceOpt, IsolateOpt, JsonOpt, LatexOpt, MaxMemoryOpt, MaxTimeOpt, ModeOpt, ParamOpt, ThreadsOpt, TimeoutOpt, VaryOpt,
    isolation, parse_modes, parse_params, parse_vary,
)
from effprof.cli.output import (
    check_export_paths, command_line, err, frame_records, load_results, measure_with_progress, out, print_json, write_exports,
)


def _options(max_time: float, threads: int):
    from effprof.measure.harness import Options

    return Options(threads=threads, max_time_s=max_time)


def _writable(path: Path, what: str) -> None:
    if path.exists() and path.is_dir():
        raise BadInput(f"{what} {str(path)!r} is a directory; give a file path")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise BadInput(f"{what} {str(path)!r}: {str(parent)!r} is not a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"{what} {str(path)!r}: cannot create its folder ({e.strerror})") from None


@app.command("profile")
def profile_command(
    name: Annotated[str, typer.Argument(help="a registered mechanism (see effprof list)")],
    mode: Annotated[str, typer.Option("--mode", "-m", help="forward, train or decode")] = "forward",
    device: Annotated[Optional[str], typer.Option("--device", help="cpu, cuda or cuda:N")] = None,
    dtype: Annotated[Optional[str], typer.Option("--dtype", help="float32, float16 or bfloat16")] = None,
    seq_len: Annotated[Optional[str], typer.Option("--seq-len", help="tokens per sequence")] = None,
    d_model: Annotated[Optional[str], typer.Option("--d-model", help="model width")] = None,
    batch: Annotated[Optional[str], typer.Option("--batch", help="sequences per call")] = None,
    param: ParamOpt = None,
    max_time: MaxTimeOpt = 1.0,
    threads: ThreadsOpt = 0,
    json_: JsonOpt = False,
) -> None:
    """Measure one point: FLOPs (analytic, counted, fvcore), time, memory, state."""
    from effprof.api import profile
    from effprof.render.console import record_table

    config = parse_params(param)
    for key, value in (("device", device), ("dtype", dtype), ("seq_len", seq_len), ("d_model", d_model), ("batch", batch)):
        if value is not None:
            config[key] = value
    parse_modes([mode])
    record = profile(name, mode=mode, options=_options(max_time, threads), **config)
    if json_:
        print_json(record)
    else:
        out.print(record_table(record))
    if record["status"] != "ok":
        raise typer.Exit(1)


@app.command("sweep")
def sweep_command(
    names: Annotated[list[str], typer.Argument(help="mechanisms to measure")],
    output: Annotated[Path, typer.Option("--output", "-o", help="results file (JSON Lines, appended)")],
    vary: VaryOpt = None,
    param: ParamOpt = None,
    mode: ModeOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="skip points already in -o with status ok; retry the rest")] = False,
    isolate: IsolateOpt = False,
    timeout: TimeoutOpt = None,
    max_memory: MaxMemoryOpt = None,
    force: ForceOpt = False,
    max_time: MaxTimeOpt = 1.0,
    threads: ThreadsOpt = 0,
) -> None:
    """Measure every combination of the --vary values; each record is appended to -o as soon as it is measured."""
    from effprof.api import pending, plan
    from effprof.records import read, to_frame
    from effprof.render.console import comparison_tables

    varied = parse_vary(vary)
    if not varied:
        raise BadInput("sweep needs at least one --vary key=v1,v2,...; e.g. --vary seq_len=256,512,1024")
    isolated = isolation(isolate, timeout, max_memory)
    _writable(output, "--output")
    points = plan(names, varied, parse_modes(mode), parse_params(param), force=force)
    if resume and output.exists():
        total = len(points)
        points = pending(points, read(output))
        err.print(f"resume: {total - len(points)} of {total} points already in {output}")
    elif output.exists() and output.stat().st_size:
        err.print(f"appending to {output}, which already holds records (--resume skips the points measured ok)")
    hint = command_line() if resume else command_line() + " --resume"
    records = measure_with_progress(points, _options(max_time, threads), str(output), isolated, hint)
    if records:
        for table in comparison_tables(to_frame(records)):
            out.print(table)
    err.print(f"{len(records)} records appended to {output}")


@app.command("compare")
def compare_command(
    names: Annotated[Optional[list[str]], typer.Argument(help="mechanisms (default: one per family)")] = None,
    vary: VaryOpt = None,
    param: ParamOpt = None,
    mode: ModeOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML report to write")] = Path("reports/compare.html"),
    baseline: Annotated[Optional[str], typer.Option("--baseline", help="an earlier results file (.jsonl) to compare against, or a series name to show ratios to")] = None,
    latex: LatexOpt = None,
    csv: CsvOpt = None,
    figures: FiguresOpt = None,
    figure_size: FigureSizeOpt = "single",
    isolate: IsolateOpt = False,
    timeout: TimeoutOpt = None,
    max_memory: MaxMemoryOpt = None,
    force: ForceOpt = False,
    max_time: MaxTimeOpt = 0.5,
    threads: ThreadsOpt = 0,
    json_: JsonOpt = False,
) -> None:
    """Measure mechanisms side by side, fit their exponents, print tables and write an HTML report.

    The records are saved next to the report (same name, .jsonl) so it can be re-rendered without re-measuring.
    """
    from effprof.analysis import baseline_diff, complexity_table, crossovers
    from effprof.api import DEFAULT_MODES, DEFAULT_VARY, default_compare, pattern_panels, plan
    from effprof.fit import fit_frame
    from effprof.records import to_frame
    from effprof.render import console
    from effprof.render.html import write_report

    names = names or default_compare()
    varied = parse_vary(vary) or {k: [str(v) for v in vs] for k, vs in DEFAULT_VARY.items()}
    isolated = isolation(isolate, timeout, max_memory)
    if output.suffix.lower() not in (".html", ".htm"):
        raise BadInput(f"--output {str(output)!r} must end in .html")
    check_export_paths(latex, csv, figures, figure_size)
    old = None
    if baseline is not None and (baseline.endswith(".jsonl") or Path(baseline).exists()):
        old, baseline = load_results(Path(baseline), "--baseline"), None
    _writable(output, "--output")
    results = output.with_suffix(".jsonl")
    points = plan(names, varied, parse_modes(mode) if mode else list(DEFAULT_MODES), parse_params(param), force=force)
    if results.exists():
        results.unlink()  # a compare writes its own fresh results beside its report
    hint = f"effprof sweep {' '.join(names)} ... -o {results} --resume, then effprof report {results}"
    records = measure_with_progress(points, _options(max_time, threads), str(results), isolated, hint)
    frame = to_frame(records)
    fits = fit_frame(frame)
    if baseline is not None and baseline not in set(frame["mechanism"]):
        raise BadInput(f"--baseline {baseline!r} is not among the compared mechanisms; accepted: {', '.join(dict.fromkeys(frame['mechanism']))}")
    crossings = crossovers(frame)
    path = write_report(frame, fits, output, command=command_line(), title="effprof compare: " + ", ".join(names),
                        baseline=old, pattern_panels=pattern_panels(frame))
    write_exports(frame, fits, latex, csv, figures, figure_size)
    if json_:
        data = {"records": frame_records(frame), "fits": frame_records(fits), "report": path, "crossovers": crossings}
        if old is not None:
            data["baseline"] = frame_records(baseline_diff(frame, old))
        print_json(data)
        return
    for table in console.comparison_tables(frame, baseline):
        out.print(table)
    if not fits.empty:
        out.print(console.fits_table(fits))
    if crossings:
        out.print(console.crossovers_table(crossings))
    complexity = complexity_table(frame, fits)
    if complexity:
        out.print(console.complexity_table(complexity))
    if old is not None:
        out.print(console.baseline_table(baseline_diff(frame, old)))
    err.print(f"report: {path}  (records: {results})")
