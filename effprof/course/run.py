"""Run a week's lab: plan its sweeps, measure them with effprof's runner, analyse once, read the findings.

    result = run_lab(get_lab(7), "effprof-out/course/week07.jsonl")
    result.findings      # [Finding(look_at, measured, meaning)], every figure from the measurement
    result.session       # effprof.analyse.session.Session (saved beside the results, re-rendered by effprof report)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effprof.course.lab import Finding, Lab
from effprof.course.read import NOT_MEASURED


@dataclass
class LabResult:
    lab: Lab
    session: Any  # effprof.analyse.session.Session
    findings: list[Finding]
    extras: dict[str, Any]


def lab_points(lab: Lab) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (name, mode, overrides) point of the lab's sweeps, validated by effprof.runner.plan."""
    from effprof.runner import plan

    return [point for sweep in lab.sweeps for point in plan(list(sweep.names), sweep.vary, list(sweep.modes), dict(sweep.config))]


def lab_options(lab: Lab):
    from effprof.measure.harness import Options

    return Options(max_time_s=lab.max_time_s, timing=lab.timing, fvcore=False, roofline=lab.week == 13)


def run_lab(lab: Lab, results: str | Path | None = None, measure: Callable[..., list[dict[str, Any]]] | None = None,
            command: str = "") -> LabResult:
    """Measure the lab (appending each record to `results` when given), analyse, and read every look.

    `measure(points, options, output)` runs the points (default effprof.runner.run_points; the CLI passes its
    progress-bar form). A look that cannot read its figure says "not measured" with the reason."""
    import contextlib

    from effprof.analyse.session import analyse
    from effprof.course.threads import one_thread
    from effprof.measure.patterns import sparse_patterns
    from effprof.runner import run_points

    points = lab_points(lab)
    with contextlib.nullcontext() if lab.timing else one_thread():  # counting only: one thread (threads.py)
        records = (measure or run_points)(points, lab_options(lab), str(results) if results else None)
    with one_thread():
        extras = {name: probe() for name, probe in lab.extras.items()}
    session = analyse(records, patterns=sparse_patterns(records) if lab.patterns else None,
                      title=f"effprof course, week {lab.week}: {lab.title}", command=command)
    return LabResult(lab, session, [read_look(look, session, extras) for look in lab.looks], extras)


def read_look(look, session, extras: dict[str, Any]) -> Finding:
    """The look's finding; a figure it cannot read (a failed point) is 'not measured', with why."""
    try:
        return look(session, extras)
    except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError) as e:
        return Finding((look.__doc__ or look.__name__).strip(), NOT_MEASURED, f"({type(e).__name__}: {e})")
