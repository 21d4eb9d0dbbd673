"""effprof course [WEEK] [--template | --check FILE.py:build]: the roadmap's weeks as labs, and the week-16 projects checked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from effprof.cli import BadInput, app
from effprof.cli.output import check_output_file, command_line, err, measure_with_progress, new_partial_file, out
from effprof.render.escape import plain

COURSE_OUTPUT = Path("effprof-out/course")


@app.command("course")
def course_command(
    week: Annotated[int | None, typer.Argument(help="the roadmap week (effprof course lists them)", metavar="WEEK")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="PAGE.html", help="the lab's HTML page (default effprof-out/course/weekNN.html; "
                                                 "its records go beside it, .jsonl)")] = None,
    check: Annotated[str | None, typer.Option("--check", metavar="FILE.py:build",
                                                  help="check your implementation of the week's project")] = None,
    template: Annotated[bool, typer.Option("--template", help="print the week's project template (shapes, equations, TODOs)")] = False,
) -> None:
    """Run a week of the efficiency roadmap as a lab: measure its mechanisms, print what to look at with the measured
    numbers, and write an HTML page. With --template / --check: the week-16 project of that week."""
    from effprof.course import get_lab, weeks

    if week is None:
        if check or template:
            raise BadInput(f"--check and --template need a WEEK; accepted weeks (with a project): {', '.join(map(str, _project_weeks()))}")
        _list_weeks(weeks(), get_lab)
        return
    lab = get_lab(week)
    if template and check:
        raise BadInput("give --template or --check, not both")
    if template or check:
        from effprof.course.projects import project_of_week

        project = project_of_week(week)
        if template:
            typer.echo(project.template_text(), nl=False)
            return
        _check(project, check)
        return
    _run(lab, output)


def _project_weeks() -> list[int]:
    from effprof.course.projects import PROJECTS

    return sorted(p.week for p in PROJECTS.values())


def _list_weeks(weeks, get_lab) -> None:
    from effprof.course.projects import PROJECTS

    projects = {p.week: name for name, p in PROJECTS.items()}
    table = Table(title="the roadmap's weeks (effprof course WEEK runs one)", title_justify="left")
    for column in ("week", "topic", "mechanisms", "project (--template, --check)"):
        table.add_column(column)
    for week in weeks:
        lab = get_lab(week)
        table.add_row(str(week), plain(lab.title), plain(", ".join(lab.mechanisms)), plain(projects.get(week, "–")))
    out.print(table)


def _run(lab, output: Path | None) -> None:
    from effprof.analyse.session import session_path
    from effprof.course.page import write_page
    from effprof.course.run import run_lab

    output = output or COURSE_OUTPUT / f"week{lab.week:02d}.html"
    if output.suffix.lower() not in (".html", ".htm"):
        raise BadInput(f"--output {str(output)!r} must end in .html")
    check_output_file(output, "--output")
    results = output.with_suffix(".jsonl")
    check_output_file(results, "--output")
    out.print(Text.assemble(plain(f"Week {lab.week}: {lab.title}", "bold")))
    out.print(plain(lab.concept), soft_wrap=True)
    partial = Path(new_partial_file(results))  # the earlier run's records are replaced only once this one has finished
    try:
        result = run_lab(lab, partial, lambda points, options, path: measure_with_progress(points, options, path),
                         command=command_line())
    finally:
        if partial.exists() and not partial.stat().st_size:
            partial.unlink()
    partial.replace(results)
    result.session.save(session_path(results))
    path = write_page(result, output)
    out.print()
    out.print(plain("What to look at:", "bold"))
    for finding in result.findings:
        out.print(Text.assemble("• ", plain(finding.look_at), ": ", plain(finding.measured, "bold")), soft_wrap=True)
        if finding.meaning:
            out.print(Text.assemble("    ", plain(finding.meaning, "dim")), soft_wrap=True)
    err.print(plain(f"page: {path}  (records: {results})"), soft_wrap=True)


def _check(project, target: str) -> None:
    from effprof.course.check import check_project, load_student

    build = load_student(target)
    results = check_project(project, build)
    failed = 0
    out.print(plain(f"checking {target} against effprof's {project.reference} (week {project.week})", "bold"))
    for r in results:
        failed += not r.passed
        mark = Text("pass", style="green") if r.passed else Text("FAIL", style="bold red")
        out.print(Text.assemble("  ", mark, "  ", plain(r.name), plain(f" — {r.detail}" if r.detail else "")), soft_wrap=True)
    if failed:
        out.print(plain(f"{failed} check(s) failed"))
        raise typer.Exit(1)
    out.print(plain("every check passed"))
