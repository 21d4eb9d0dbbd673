"""Judging one check: fit its records and apply effprof.analyse.fit's one rule to the check's own claim."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from effprof.analyse.outcome import UNJUDGED, claim_outcome, gate_fails, outcome_reason
from effprof.check.claims import Check
from effprof.store.metrics import CLAIMABLE, NOISY_MARK
from effprof.store.records import is_number as _number


@dataclass
class CheckResult:
    """The outcome of one check: its verdict (pass, fail or inconclusive), the fit row, and why."""

    check: Check
    verdict: str  # the claim's outcome (effprof.analyse.outcome): pass, fail, inconclusive or uncertain (a time claim on noisy points)
    fit: dict[str, Any] | None  # the fit row (effprof.analyse.fit.FIT_COLUMNS)
    error: str = ""  # why nothing could be fitted
    reason: str = ""  # the fit's verdict_reason: why inconclusive (or why it failed)
    regressions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        """Whether the gate fails (effprof.analyse.outcome.gate_fails): a failed claim, one the data could not judge (inconclusive,
        or uncertain on noisy timings) unless the check allows that, or a regression against the baseline."""
        return gate_fails(self.verdict, self.check.allow_inconclusive) or bool(self.regressions)

    @property
    def message(self) -> str:
        """One line: the check, what was measured and what was claimed."""
        c = self.check
        if self.error:
            text = f"{c.label}: {self.error}"
        else:
            text = f"{c.label}: measured {measured_text(self.fit)}, claimed {c.exponent:g} ± {c.tolerance:g}"
            if self.verdict in UNJUDGED:
                allowed = " (allowed by allow_inconclusive)" if c.allow_inconclusive else ""
                text += f"; {self.verdict}{allowed}: {self.reason}"
        if self.regressions:
            text += "; regressed against the baseline: " + "; ".join(self.regressions)
        return text

    def to_dict(self) -> dict[str, Any]:
        c, f = self.check, self.fit or {}
        return {
            "name": c.name, "mechanism": c.mechanism, "label": c.shown, "mode": c.mode, "variant": c.variant, "params": c.params,
            "metric": c.metric, "axis": c.axis, "values": c.values, "claimed": c.exponent, "log_power": c.log_power,
            "tolerance": c.tolerance, **{k: f.get(k) for k in ("exponent", "ci_low", "ci_high", "r2", "leading_exponent",
                                                           "leading_ci_low", "leading_ci_high", "local")},
            "verdict": self.verdict, "verdict_reason": self.reason,
            "allow_inconclusive": c.allow_inconclusive, "message": self.message, "error": self.error, "regressions": self.regressions,
            "source": c.source, "seconds": self.seconds,
        }


def measured_text(fit: dict[str, Any] | None) -> str:
    """'1.803 [1.750, 1.856], leading 2.000 [1.990, 2.010]': the raw slope (description), then the judged exponent."""
    leading = leading_text(fit)
    return exponent_text(fit) + (f", leading {leading}" if leading else "")


def exponent_text(fit: dict[str, Any] | None) -> str:
    return _with_ci(fit or {}, "exponent", "ci_low", "ci_high") or "–"


def leading_text(fit: dict[str, Any] | None) -> str:
    return _with_ci(fit or {}, "leading_exponent", "leading_ci_low", "leading_ci_high")


def _with_ci(fit: dict[str, Any], value: str, low: str, high: str) -> str:
    if not _number(fit.get(value)):
        return ""
    text = f"{fit[value]:.3f}"
    if _number(fit.get(low)) and _number(fit.get(high)):
        text += f" [{fit[low]:.3f}, {fit[high]:.3f}]"
    return text


def judge_check(check: Check, records: list[dict[str, Any]]) -> CheckResult:
    """Fit the records of one check and judge the check's own claim: effprof.analyse.fit's rule, the noise marking of every
    other entry point (analyse.session.scaling_fits), and the one outcome rule (effprof.analyse.outcome.claim_outcome)."""
    from effprof.analyse.fit import fit_frame
    from effprof.analyse.session import scaling_fits
    from effprof.store.records import to_frame

    frame = to_frame(records)
    # the check's claim replaces the spec's in the frame fitted: fit_frame judges it, divides out its
    # log factor, and fits a constant metric (e.g. state_bytes ∝ n⁰) even where the spec claims nothing
    frame["claims"] = [[[check.metric, check.axis, check.exponent, check.log_power]] for _ in range(len(frame))]
    fits = scaling_fits(frame, fit_frame(frame, tolerances={check.metric: check.tolerance}))
    rows = fits[(fits["metric"] == check.metric) & (fits["axis"] == check.axis)]
    if not rows.empty:
        row = rows.iloc[0].to_dict()
        return CheckResult(check, claim_outcome(row), row, reason=outcome_reason(row, NOISY_MARK), records=records)
    failed = [r for r in records if r.get("status") != "ok"]
    if failed:
        error = f"{len(failed)} of {len(records)} points did not measure: {failed[0]['status']}: {failed[0].get('error', '')}"
    else:
        column = CLAIMABLE[check.metric]
        error = f"no fit: {column} was not measured at three or more sizes with a positive value"
    return CheckResult(check, "fail", None, error=error, records=records)


