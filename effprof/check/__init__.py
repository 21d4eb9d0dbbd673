"""Scaling claims as CI checks: load them from TOML, measure, fit, judge, compare with a baseline.

One file, one job:

    claims.py     the check file format and its validation (Check, CheckSuite, load_checks, make_check)
    locate.py     line numbers of TOML tables and keys, for messages that point at the bad line
    run.py        measuring only what a check needs (run_check, run_suite, needed_options)
    result.py     fitting a check's records and judging its own claim (CheckResult, judge_check)
    baseline.py   the point-by-point comparison with a baseline results file
    ci_output.py  JUnit XML and GitHub Actions annotations

Verdict: the points are fitted with effprof.analyse.fit.fit_frame judging the check's own claim (not
the spec's), so the rule is fit's one rule: pass iff the claimed exponent lies in the dominant
term's interval [leading_ci_low − tolerance, leading_ci_high + tolerance]; `inconclusive` when
the data cannot identify the dominant term (the reason names the sizes that would decide).
A time claim resting on noisy points is `uncertain`, as in `compare` and the report: the outcome is
effprof.analyse.outcome.claim_outcome, the one rule all four entry points (compare, report, check,
assert_scaling) apply. The gate (effprof.analyse.outcome.gate_fails) fails on `fail` and on a regression
against the baseline, and on `inconclusive` or `uncertain` unless the claim sets
allow_inconclusive = true. A check whose points fail to measure fails.
"""

from effprof.check.baseline import DEFAULT_REGRESSION, compare_baseline
from effprof.check.ci_output import github_annotations, junit_xml
from effprof.check.claims import (
    CLAIM_KEYS,
    HOW_TO_ADD,
    METRIC_NAMES,
    REQUIRED_KEYS,
    SECTION_KEYS,
    Check,
    CheckFileError,
    CheckSuite,
    load_checks,
    make_check,
)
from effprof.check.result import CheckResult, exponent_text, judge_check, leading_text, measured_text
from effprof.check.run import needed_options, run_check, run_suite

__all__ = [
    "CLAIM_KEYS", "DEFAULT_REGRESSION", "HOW_TO_ADD", "METRIC_NAMES", "REQUIRED_KEYS", "SECTION_KEYS", "Check",
    "CheckFileError", "CheckResult", "CheckSuite", "compare_baseline", "exponent_text", "github_annotations", "judge_check",
    "junit_xml", "leading_text", "load_checks", "make_check", "measured_text", "needed_options", "run_check", "run_suite",
]
