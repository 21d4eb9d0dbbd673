"""A claim's outcome: the one rule every entry point applies to a judged fit (no torch, no pandas).

effprof.analyse.fit judges each fit against its claim (`verdict`: pass, fail, inconclusive, or no-claim), and
the analyse stage marks the fits of a timed metric that rest on noisy points (`uncertain`, with
`noisy_points`). What a claim's outcome *is* follows from those two, here and nowhere else:

    no-claim      nothing was claimed for this fit: not counted
    uncertain     a timed fit resting on noisy points: shown, set aside, never counted as held or failed
    pass          the claim held
    fail          the claim is refuted
    inconclusive  the data cannot judge the claim (the reason says why)

`compare` and `report` count outcomes (`tally`), `effprof check` and `assert_scaling` gate on them
(`gate_fails`): the same claim on the same records has the same outcome in all four.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

OUTCOMES = ("pass", "fail", "inconclusive", "uncertain", "no-claim")
COUNTED = ("pass", "fail", "inconclusive")  # the outcomes of a claim the data judged
UNJUDGED = ("inconclusive", "uncertain")  # the data could not judge the claim: a gate fails on them unless it allows them


def claim_outcome(fit: dict[str, Any]) -> str:
    """The outcome of one fit row (effprof.analyse.fit's columns, plus `uncertain` from the noise marking)."""
    verdict = fit.get("verdict")
    if verdict in (None, "no-claim") or verdict != verdict:  # NaN: a fit row with no verdict column value
        return "no-claim"
    if verdict not in COUNTED:  # a damaged or foreign fit row: not judged, and never counted as held (outcome_reason says why)
        return "inconclusive"
    uncertain = fit.get("uncertain")
    if uncertain is not None and uncertain == uncertain and bool(uncertain):  # NaN (no noise marking) is not uncertain
        return "uncertain"
    return verdict


def outcome_reason(fit: dict[str, Any], mark: str = "") -> str:
    """Why the outcome is what it is: the verdict's reason, led by the noise for an uncertain one."""
    reason = fit.get("verdict_reason") if isinstance(fit.get("verdict_reason"), str) else ""
    verdict = fit.get("verdict")
    if isinstance(verdict, str) and verdict not in (*COUNTED, "no-claim"):
        return f"unknown verdict {verdict!r}, not one of {', '.join(COUNTED)}" + (f"; {reason}" if reason else "")
    if claim_outcome(fit) == "uncertain":
        noisy = fit.get("noisy_points") or 0
        return f"uncertain: {int(noisy)} noisy point(s){' ' + mark if mark else ''}" + (f"; {reason}" if reason else "")
    return reason


def tally(fits: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The claimed fits by outcome (no-claim left out): {"pass": [...], "fail": [...], "inconclusive": [...], "uncertain": [...]}."""
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in OUTCOMES if name != "no-claim"}
    for fit in fits:
        outcome = claim_outcome(fit)
        if outcome != "no-claim":
            out[outcome].append(fit)
    return out


def gate_fails(outcome: str, allow_inconclusive: bool = False) -> bool:
    """Whether a gate (effprof check, assert_scaling) fails on this outcome: a refuted claim always; a claim the data
    could not judge (inconclusive, or uncertain: its timings were noisy) unless the gate allows that."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    if outcome == "fail":
        return True
    return outcome in UNJUDGED and not allow_inconclusive
