"""effprof check: a CI gate that measures scaling claims and exits 1 when one fails."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from effprof.analyse.outcome import UNJUDGED
from effprof.cli import app
from effprof.cli.options import AddressOpt, ExecutorOpt, IsolateOpt, JsonOpt, MaxTimeOpt, ThreadsOpt, TimeoutOpt, choose_executor
from effprof.cli.output import check_output_file, check_results_file, err, out, print_json, say
from effprof.render.escape import plain


@app.command("check")
def check_command(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="check file (TOML); default: [tool.effprof.check] of ./pyproject.toml")] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="write JUnit XML here: one testcase per check")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="append the measured records here (a baseline for later runs)")] = None,
    max_time: MaxTimeOpt = 0.5,
    threads: ThreadsOpt = 0,
    executor: ExecutorOpt = None,
    address: AddressOpt = None,
    isolate: IsolateOpt = False,
    timeout: TimeoutOpt = None,
    count_only: Annotated[bool, typer.Option("--count-only", help=("judge FLOP, state and memory checks on counts (fake tensors, "
                                             "any size, nothing timed); time checks still run for real"))] = False,
    json_: JsonOpt = False,
) -> None:
    """Measure each claimed exponent, fit it and exit 1 when any claim (or a baseline comparison) fails.

    Exit codes: 0 all checks hold, 1 a check failed, 2 a bad check file.
    """
    from effprof.check import github_annotations, junit_xml, load_checks, run_suite
    from effprof.contract import validate
    from effprof.plugins import load_project_plugins

    load_project_plugins(say, check=validate)

    suite = load_checks(file)
    runner = choose_executor(executor, isolate, timeout, None, address)
    if junit is not None:
        check_output_file(junit, "--junit")
    if output is not None:
        check_results_file(output, "--output")
    with runner:
        results = _run_with_progress(suite, run_suite, threads, max_time, str(output) if output else None, runner, count_only)
    if json_:
        print_json([r.to_dict() for r in results])
    else:
        out.print(_checks_table(results))
    for r in results:
        for note in r.notes:
            err.print(plain(f"note: {r.check.label}: {note}"), soft_wrap=True)
        if r.failed:
            err.print(plain(f"FAILED {r.check.source}: {r.message}"), soft_wrap=True)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in github_annotations(results):
            # one workflow command per line: the fields inside are %-encoded (no newline can start another
            # `::` command) and no control character reaches the log
            (err if json_ else out).print(plain(line), highlight=False, soft_wrap=True)
    if junit is not None:
        from effprof.store.records import atomic_writer

        with atomic_writer(junit) as f:  # as every file effprof writes: never through a symlink, never into a FIFO
            f.write(junit_xml(results))
    failed = sum(r.failed for r in results)
    allowed = {v: sum(r.verdict == v and not r.failed for r in results) for v in UNJUDGED}
    err.print(f"{len(results) - failed} of {len(results)} checks hold" + (f"; {failed} failed" if failed else "")
              + "".join(f"; {n} {v} (allowed)" for v, n in allowed.items() if n))
    if failed:
        raise typer.Exit(1)


def _run_with_progress(suite, run_suite, threads: int, max_time: float, output: str | None, executor=None, count_only: bool = False):
    from effprof.render.console import point_label, progress_bar

    with progress_bar(err, sum(len(c.points) for c in suite.checks)) as bar:
        task = bar.add_task("measuring", total=sum(len(c.points) for c in suite.checks))

        def on_record(record) -> None:
            bar.update(task, advance=1, description=point_label(record))

        return run_suite(suite, threads, max_time, output, on_record, executor, count_only)


def _checks_table(results):
    from rich.table import Table
    from rich.text import Text

    from effprof.check import exponent_text, leading_text
    from effprof.render.console import VERDICT_STYLE

    table = Table(title="effprof check: the verdict judges leading, the dominant term's p of a·x^p + b·x^q (95% CI); "
                        "exponent: the raw upper-half slope, description only",
                  title_justify="left")
    numeric = ("exponent [CI]", "leading [CI]", "claimed", "tolerance")
    for column in ("mechanism", "variant", "mode", "metric", "axis", *numeric, "verdict"):
        table.add_column(column, justify="right" if column in numeric else "left", no_wrap=column != "variant",
                         overflow="fold" if column == "variant" else "ellipsis")
    for r in results:
        c = r.check
        measured = exponent_text(r.fit) if r.fit else r.error
        verdict = Text(r.verdict, style=VERDICT_STYLE.get(r.verdict, "")) + (" (regressed)" if r.regressions else "")
        table.add_row(plain(c.shown), plain(c.variant), plain(c.mode), plain(c.metric), plain(c.axis),
                      plain(measured), plain(leading_text(r.fit) or "–"), f"{c.exponent:g}", f"{c.tolerance:g}", verdict)
    return table
