"""effprof profile, sweep, compare: measure points."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from effprof.cli import BadInput, app, complete
from effprof.cli.options import (
    AddressOpt,
    ClaimOpt,
    CompileModeOpt,
    CompileOpt,
    CountOnlyOpt,
    CsvOpt,
    ExecutorOpt,
    FigureSizeOpt,
    FiguresOpt,
    ForceOpt,
    HardwareFileOpt,
    HardwareOpt,
    IsolateOpt,
    JsonOpt,
    LabelOpt,
    LatexOpt,
    MaxMemoryOpt,
    MaxTimeOpt,
    ModeOpt,
    ModuleOpt,
    ParamOpt,
    PlotlyjsOpt,
    ThreadsOpt,
    TimeoutOpt,
    VaryOpt,
    choose_executor,
    choose_hardware,
    parse_modes,
    parse_params,
    parse_vary,
    with_compile,
)
from effprof.cli.output import (
    check_export_paths,
    check_output_file,
    check_results_file,
    command_line,
    err,
    load_results,
    measure_with_progress,
    new_partial_file,
    out,
    print_json,
    read_records,
    say,
    warn_mixed_machines,
)
from effprof.config import ConfigError
from effprof.contract import validate as contract_validate
from effprof.plugins import load_project_plugins
from effprof.render.escape import plain, terminal


def _options(max_time: float, threads: int, breakdown: bool = False, depth: int | None = None, count_only: bool = False):
    from effprof.measure.harness import Options

    return Options(threads=threads, max_time_s=max_time, breakdown=breakdown, breakdown_depth=depth, count_only=count_only)


def _targets(names: list[str] | None, module: list[str] | None, claim: list[str] | None,
             param: list[str] | None, executor=None) -> tuple[list[str], dict]:
    """Mechanism names plus --module factories (registered with the --claim claims, probed with the --param values
    where `executor` runs its points: --isolate's worker), and the parsed --param values."""
    from effprof.modules import resolve_targets

    names = [*(names or []), *(m for m in module or [] if m not in (names or []))]
    config = parse_params(param, open_keys=any(":" in n for n in names))
    return resolve_targets(names, [], list(claim or []), config, getattr(executor, "probe", None)), config


@contextlib.contextmanager
def _closed_on_error(executor):
    """Close the executor (its worker, started to probe a --module) when what runs here fails."""
    try:
        yield
    except BaseException:
        executor.close()
        raise


# What `effprof compare` prints: the summary that fits one screen, or every table.
COMPARE_TABLES = ("summary", "all")

# Where `effprof compare` writes when no -o is given: a scratch folder git ignores, never the committed
# example reports in reports/.
DEFAULT_COMPARE_OUTPUT = Path("effprof-out/compare.html")


def _fresh_default(output: Path) -> Path:
    """The default report path, or compare-2.html, compare-3.html ... when an earlier run's results are there."""
    candidate, n = output, 1
    while candidate.with_suffix(".jsonl").exists():
        n += 1
        candidate = output.with_name(f"{output.stem}-{n}{output.suffix}")
    return candidate


def _compare_results_path(output: Path, baseline: str | None, overwrite: bool) -> Path:
    """The results file beside the report; an existing one is only replaced with --overwrite, never a baseline."""
    results = output.with_suffix(".jsonl")
    check_output_file(results, "--output")
    if baseline is not None and Path(baseline).exists() and Path(baseline).resolve() == results.resolve():
        raise BadInput(f"--baseline {baseline!r} is the file this compare would write its records to; give -o another name")
    if results.exists() and not overwrite:
        raise BadInput(f"{str(results)!r} already holds results (compare saves its records beside -o {str(output)!r}); "
                       "choose another -o, or pass --overwrite to replace them once the new points are measured")
    return results


def _move_into_place(partial: Path, results: Path, overwrite: bool, output: Path) -> None:
    """The finished sweep takes the results' name. Without --overwrite the name is claimed with an exclusive create
    (O_EXCL) at this moment, so two compares writing one -o cannot both succeed with one's records replacing the
    other's (the check before measuring cannot see a compare that started alongside): the second is refused in
    one line, its records kept in the partial file."""
    import os

    if not overwrite:
        try:
            os.close(os.open(results, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666))
        except FileExistsError:
            raise BadInput(f"{str(results)!r} was written by another run while this one measured; this run's records are kept "
                           f"in {str(partial)!r}: effprof report {partial} -o OTHER.html renders them, or pass --overwrite") from None
    partial.replace(results)  # our own claim (or, with --overwrite, the old results) replaced whole


@app.command("profile")
def profile_command(
    name: Annotated[str | None, typer.Argument(help="a registered mechanism (see effprof list), or pkg.mod:factory",
                                               autocompletion=complete.mechanisms)] = None,
    mode: Annotated[str, typer.Option("--mode", "-m", help="forward, train or decode")] = "forward",
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda or cuda:N")] = None,
    dtype: Annotated[str | None, typer.Option("--dtype", help="float32, float16 or bfloat16")] = None,
    seq_len: Annotated[str | None, typer.Option("--seq-len", help="tokens per sequence")] = None,
    d_model: Annotated[str | None, typer.Option("--d-model", help="model width")] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="sequences per call")] = None,
    param: ParamOpt = None,
    module: ModuleOpt = None,
    claim: ClaimOpt = None,
    breakdown: Annotated[bool, typer.Option("--breakdown", help="also measure FLOPs, time and peak memory per submodule, as a tree")] = False,
    depth: Annotated[int | None, typer.Option("--depth", help="levels of submodules in the --breakdown tree (default: all)", min=1)] = None,
    max_time: MaxTimeOpt = 1.0,
    threads: ThreadsOpt = 0,
    count_only: CountOnlyOpt = False,
    json_: JsonOpt = False,
    hardware: HardwareOpt = None,
    hardware_file: HardwareFileOpt = None,
) -> None:
    """Measure one point: FLOPs (analytic, counted, fvcore), time, memory, state, its roofline bound."""
    load_project_plugins(say, check=contract_validate)
    from effprof.render.console import record_table
    from effprof.runner import profile

    targets = [*([name] if name else []), *(module or [])]
    if len(targets) != 1:
        raise BadInput(f"profile measures one mechanism or --module, {len(targets)} given: {', '.join(targets) or 'none'}")
    sizes = [f"{key}={value}" for key, value in (("device", device), ("dtype", dtype), ("seq_len", seq_len), ("d_model", d_model),
                                                  ("batch", batch)) if value is not None]
    (name,), config = _targets(targets, [], claim, [*(param or []), *sizes])
    parse_modes([mode])
    device_entry = choose_hardware(hardware, hardware_file)
    record = profile(name, mode=mode, options=_options(max_time, threads, breakdown, depth, count_only), **config)
    if device_entry is not None:
        from effprof.hardware.project import project_records

        (record,), notes = project_records([record], device_entry)
        for note in notes:
            err.print(plain(note), soft_wrap=True)
    if json_:
        print_json(record)
    else:
        out.print(record_table(record))
        if record.get("breakdown"):
            from effprof.render.breakdown import breakdown_tree

            out.print(breakdown_tree(record))
    if record["status"] != "ok":
        raise typer.Exit(1)


@app.command("sweep")
def sweep_command(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="mechanisms to measure", autocompletion=complete.mechanisms)] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="results file (JSON Lines, appended)")] = ...,
    vary: VaryOpt = None,
    param: ParamOpt = None,
    module: ModuleOpt = None,
    claim: ClaimOpt = None,
    breakdown: Annotated[bool, typer.Option("--breakdown", help="also store FLOPs, time and peak memory per submodule in each record")] = False,
    depth: Annotated[int | None, typer.Option("--depth", help="levels of submodules kept with --breakdown (default: all)", min=1)] = None,
    mode: ModeOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="skip points already in -o with status ok; retry the rest")] = False,
    isolate: IsolateOpt = False,
    executor: ExecutorOpt = None,
    address: AddressOpt = None,
    timeout: TimeoutOpt = None,
    max_memory: MaxMemoryOpt = None,
    force: ForceOpt = False,
    max_time: MaxTimeOpt = 1.0,
    threads: ThreadsOpt = 0,
    compile_: CompileOpt = False,
    compile_mode: CompileModeOpt = "default",
    count_only: CountOnlyOpt = False,
    hardware: HardwareOpt = None,
    hardware_file: HardwareFileOpt = None,
) -> None:
    """Measure every combination of the --vary values; each record is appended to -o as soon as it is measured."""
    load_project_plugins(say, check=contract_validate)
    from effprof.analyse.session import analyse
    from effprof.render.console import comparison_tables, roofline_table
    from effprof.runner import pending, plan

    varied = parse_vary(vary)
    if not varied:
        raise BadInput("sweep needs at least one --vary key=v1,v2,...; e.g. --vary seq_len=256,512,1024")
    varied = with_compile(varied, compile_, compile_mode)
    runner = choose_executor(executor, isolate, timeout, max_memory, address)
    check_results_file(output, "--output")
    device_entry = choose_hardware(hardware, hardware_file)
    with _closed_on_error(runner):
        names, config = _targets(names, module, claim, param, runner)
        points = plan(names, varied, parse_modes(mode), config, force=force, count_only=count_only)
    if resume and output.exists():
        total = len(points)
        points = pending(points, read_records(output))
        err.print(plain(f"resume: {total - len(points)} of {total} points already in {output}"))
    elif output.exists() and output.stat().st_size:
        err.print(plain(f"appending to {output}, which already holds records (--resume skips the points measured ok)"))
    hint = command_line() if resume else command_line() + " --resume"
    with runner:
        records = measure_with_progress(points, _options(max_time, threads, breakdown, depth, count_only), str(output), runner, hint)
    warn_mixed_machines(records)
    if records:
        # the renderers read a Session; the projection (--hardware) is made there, as compare and report make it: shown,
        # never stored (the file holds what was measured)
        session = analyse(records, hardware=device_entry)
        for note in (session.hardware or {}).get("notes", []):
            err.print(plain(note), soft_wrap=True)
        for table in [*comparison_tables(session), roofline_table(session)]:
            if table is not None:
                out.print(table)
    err.print(plain(f"{len(records)} records appended to {output}"))


@app.command("compare")
def compare_command(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="mechanisms (default: one per family)", autocompletion=complete.mechanisms)] = None,
    vary: VaryOpt = None,
    param: ParamOpt = None,
    module: ModuleOpt = None,
    claim: ClaimOpt = None,
    breakdown: Annotated[bool | None, typer.Option("--breakdown/--no-breakdown", help=("store FLOPs, time and peak memory per submodule "
                                                    "in each record (default: on, off with --count-only)"))] = None,
    depth: Annotated[int | None, typer.Option("--depth", help="levels of submodules kept in the breakdown (default: 2)", min=1)] = 2,
    mode: ModeOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML report to write; its records go beside it (.jsonl)")] = DEFAULT_COMPARE_OUTPUT,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace the .jsonl beside -o when it exists (only once the new sweep has finished)")] = False,
    baseline: Annotated[str | None, typer.Option("--baseline",
        help=("an earlier results file (.jsonl) to compare against, or a series name to show ratios to"))] = None,
    latex: LatexOpt = None,
    csv: CsvOpt = None,
    figures: FiguresOpt = None,
    figure_size: FigureSizeOpt = "single",
    plotlyjs: PlotlyjsOpt = "inline",
    isolate: IsolateOpt = False,
    executor: ExecutorOpt = None,
    address: AddressOpt = None,
    timeout: TimeoutOpt = None,
    max_memory: MaxMemoryOpt = None,
    force: ForceOpt = False,
    max_time: MaxTimeOpt = 0.5,
    threads: ThreadsOpt = 0,
    count_only: CountOnlyOpt = False,
    json_: JsonOpt = False,
    tables: Annotated[str, typer.Option("--tables", help="summary: one summary table, the crossovers that exist and the report's "
                                        "path (fits one screen); all: every table (values per size, fits, crossovers, complexity)")] = "summary",
    verbose: Annotated[bool, typer.Option("--verbose", help="print every table (= --tables all; -v is --vary, as in sweep)")] = False,
    label: LabelOpt = None,
    compile_: CompileOpt = False,
    compile_mode: CompileModeOpt = "default",
    hardware: HardwareOpt = None,
    hardware_file: HardwareFileOpt = None,
) -> None:
    """Measure mechanisms side by side, fit their exponents, print a summary and write an HTML report.

    The records are saved next to the report (same name, .jsonl) so it can be re-rendered without re-measuring.
    """
    load_project_plugins(say, check=contract_validate)
    from effprof.analyse.session import analyse, session_path
    from effprof.measure.patterns import sparse_patterns
    from effprof.render import RenderOptions, html, render
    from effprof.render.export import ExportError, write_exports
    from effprof.render.labels import apply, apply_patterns, parse_labels
    from effprof.runner import DEFAULT_MODES, DEFAULT_VARY, default_compare, plan
    from effprof.store.records import file_digest

    if breakdown is None:  # counting at production sizes, the breakdown's own pass over the model doubles the time
        breakdown = not count_only
    if tables not in COMPARE_TABLES:
        raise BadInput(f"--tables {tables!r} is not a choice; accepted: {', '.join(COMPARE_TABLES)}")
    labels = parse_labels(label)
    runner = choose_executor(executor, isolate, timeout, max_memory, address)
    with _closed_on_error(runner):
        names, config = _targets(names, module, claim, param, runner) if names or module else (default_compare(), parse_params(param))
    varied = with_compile(parse_vary(vary) or {k: [str(v) for v in vs] for k, vs in DEFAULT_VARY.items()}, compile_, compile_mode)
    if output.suffix.lower() not in (".html", ".htm"):
        raise BadInput(f"--output {str(output)!r} must end in .html")
    if plotlyjs not in html.PLOTLYJS:
        raise BadInput(f"--plotlyjs {plotlyjs!r} is not accepted; accepted: {', '.join(html.PLOTLYJS)}")
    check_export_paths(latex, csv, figures, figure_size, output if plotlyjs == "directory" else None)
    check_output_file(output, "--output")
    device_entry = choose_hardware(hardware, hardware_file)
    if output == DEFAULT_COMPARE_OUTPUT and not overwrite:
        output = _fresh_default(output)  # the main job, run again, keeps the earlier run's files
    results = _compare_results_path(output, baseline, overwrite)
    check_output_file(session_path(results), "--output side file")
    old = None
    if baseline is not None and (baseline.endswith(".jsonl") or Path(baseline).exists()):
        old, baseline = load_results(Path(baseline), "--baseline"), None
    if baseline is not None and baseline not in names:
        raise BadInput(f"--baseline {baseline!r} is neither a results file nor among the compared mechanisms; accepted: "
                       f"a .jsonl file or one of {', '.join(names)}")
    points = plan(names, varied, parse_modes(mode) if mode else list(DEFAULT_MODES), config, force=force, count_only=count_only)
    if labels:  # refused before anything is measured: a label must name a series of this compare
        from effprof.suggest import accepted

        known = [*names, *(f"{k}={v}" for k, values in varied.items() for v in values), *(f"{k}={v}" for k, v in config.items())]
        for name in labels:
            if name not in known:
                raise BadInput(f"--label {name!r} names nothing this compare measures" + accepted(name, known))
    # Measure into a fresh file of its own; it takes the results' name only when the sweep has finished,
    # so an interrupted compare leaves an existing results file as it was.
    partial = Path(new_partial_file(results))
    hint = f"effprof sweep {' '.join(names)} ... -o {partial} --resume, then effprof report {partial} -o {output}"
    try:
        with runner:
            records = measure_with_progress(points, _options(max_time, threads, breakdown, depth, count_only), str(partial), runner, hint)
    finally:
        if partial.exists() and not partial.stat().st_size:
            partial.unlink()  # nothing measured: leave nothing behind
    _move_into_place(partial, results, overwrite, output)
    warn_mixed_machines(records)
    session = analyse(records, old, patterns=sparse_patterns(records), title="effprof compare: " + ", ".join(names),
                      command=command_line(), hardware=device_entry)
    for note in (session.hardware or {}).get("notes", []):
        err.print(plain(note), soft_wrap=True)
    session.source_sha256 = file_digest(results)  # report uses the session only while it belongs to these records
    session.save(session_path(results), records_in=results)  # the names measured; the labels are the report's
    if labels:
        try:
            session = analyse(apply(records, labels), apply(old, labels) if old is not None else None,
                              patterns=apply_patterns(session.patterns, labels), title=session.title, command=session.command,
                              hardware=device_entry)
        except ConfigError as e:  # a --label naming nothing measured: the records are saved, the report is not written
            raise BadInput(f"{e} (the results are saved in {results}; effprof report {results} --label ... renders them)") from None
        baseline = labels.get(baseline, baseline) if baseline else baseline
    path = html.write(session, output, plotlyjs)
    try:
        for line in write_exports(session, latex, csv, figures, figure_size):
            err.print(terminal(line), markup=False, soft_wrap=True)
    except ExportError as e:
        raise BadInput(str(e)) from None
    if json_:
        data = {"records": session.records, "fits": session.fits, "report": path, "crossovers": session.crossovers}
        if session.baseline is not None:
            data["baseline"] = session.baseline
        print_json(data)
        return
    for part in render(session, RenderOptions("console", report=path, baseline_series=baseline, verbose=verbose or tables == "all")):
        out.print(part, soft_wrap=not hasattr(part, "columns"))
    err.print(plain(f"report: {path}  (records: {results}; analysis: {session_path(results)})"), soft_wrap=True)
