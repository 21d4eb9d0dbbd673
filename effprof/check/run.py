"""Running checks: measure only what a check needs, then judge it and compare with the baseline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from effprof.check.baseline import compare_baseline
from effprof.check.claims import Check, CheckSuite
from effprof.check.result import CheckResult, judge_check


def needed_options(metrics: set[str], threads: int = 0, max_time: float = 0.5, count_only: bool = False):
    """Measure only what the metrics need: no fvcore, no timing unless time is judged.

    count_only: count on fake tensors (runtime/counting.py) unless time is judged: a time claim is always
    judged on a real run, never on counts.
    """
    from effprof.measure.harness import Options

    return Options(threads=threads, max_time_s=max_time, count_flops="flops" in metrics, fvcore=False,
                   memory=bool(metrics & {"peak_bytes", "activation_bytes"}), timing="time" in metrics,
                   count_only=count_only and "time" not in metrics)


def run_check(check: Check, baseline: list[dict[str, Any]] | None = None, regression: dict[str, float] | None = None,
              threads: int = 0, max_time: float = 0.5, output: str | None = None,
              on_record: Callable[[dict[str, Any]], None] | None = None, executor=None, count_only: bool = False) -> CheckResult:
    """Measure a check's points (on `executor`, default this process), fit, judge its claim, and compare with the baseline."""
    from effprof.runner import run_points

    regression = regression or {}
    started = time.perf_counter()
    options = needed_options({check.metric, *(regression if baseline is not None else ())}, threads, max_time, count_only)
    records = run_points(check.points, options, output, on_record, executor=executor)
    result = judge_check(check, records)
    if options.count_only:  # counts cost no time at any size: judge the claim where its dominant term is identified
        result = judged_where_decided(check, result, lambda grown: run_points(grown.points, options, output, on_record, executor=executor))
    if baseline is not None:
        result.regressions, result.notes = compare_baseline(records, baseline, regression)  # CheckResult.failed gates on them too
    result.seconds = time.perf_counter() - started
    return result


def run_suite(suite: CheckSuite, threads: int = 0, max_time: float = 0.5, output: str | None = None,
              on_record: Callable[[dict[str, Any]], None] | None = None, executor=None, count_only: bool = False) -> list[CheckResult]:
    return [run_check(c, suite.baseline, suite.regression, threads, max_time, output, on_record, executor, count_only)
            for c in suite.checks]




# Counting, a claim left inconclusive because a lower term still dominates is measured again at sizes GROWTH
# times larger, up to MAX_ROUNDS times (×4⁶ = 4096: seq_len 1024 becomes 4M): the dominant term decides.
GROWTH = 4
MAX_ROUNDS = 6


def judged_where_decided(check: Check, result: CheckResult, measure: Callable[[Check], list[dict[str, Any]]]) -> CheckResult:
    """`result`, or the verdict at larger sizes where the sizes given leave the second term dominant.

    Only counted metrics reach here (time is never extrapolated: a time check always runs for real). The
    result's notes say at which sizes the claim was judged and why.
    """
    import dataclasses

    from effprof.runner import plan

    given, rounds = check.values, 0
    while result.verdict == "inconclusive" and result.reason.startswith("second term dominates") and rounds < MAX_ROUNDS:
        rounds += 1
        values = [type(v)(v * GROWTH**rounds) for v in given]
        points = plan([check.mechanism], {check.axis: values}, [check.mode], check.params, count_only=True)
        grown = dataclasses.replace(check, values=values, points=points)
        result = judge_check(grown, measure(grown))
    if rounds:
        result.notes.append(f"judged on counts at {check.axis}={', '.join(map(str, result.check.values))}: at the sizes given "
                            f"({', '.join(map(str, given))}) a lower term dominated")
    return result
