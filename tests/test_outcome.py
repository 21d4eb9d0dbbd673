"""One claim outcome: compare, report, check and assert_scaling give the same outcome for the same claim on the same records."""

from __future__ import annotations

import math

import pytest

from effprof.analyse.outcome import claim_outcome, gate_fails, outcome_reason, tally
from effprof.analyse.session import analyse
from effprof.check import make_check
from effprof.check.result import judge_check
from effprof.pytest_plugin import assert_scaling
from effprof.render.html import _verdicts
from effprof.store import synthetic

SIZES = [256, 512, 1024, 2048]


def _records(metric: str, exponent: float, noise: float = 0.0, law: tuple[float, float] = (2.0, 1.0), second: float = 0.0,
             sizes: int = 4) -> list[dict]:
    """Synthetic records of one series renamed to a registered mechanism, claiming `metric` ∝ seq_len^`exponent`."""
    records = list(synthetic.records(series=1, sizes=sizes, exponents=law, second=second, noise=noise, seed=3))
    for r in records:
        r["mechanism"] = "softmax_attention"
        r["claims"] = [[metric, "seq_len", exponent, 0.0]]
    return records


# (metric, claimed exponent, records): one case per outcome
CASES = {
    "pass": ("flops", 2.0, lambda: _records("flops", 2.0)),
    "fail": ("flops", 1.0, lambda: _records("flops", 1.0)),
    # a second term that dominates at every measured size: the dominant term cannot be identified
    "inconclusive": ("flops", 2.0, lambda: _records("flops", 2.0, second=3000.0)),
    # a true time claim on timings whose IQR is far above 10% of the median: set aside, never counted
    "uncertain": ("time", 2.0, lambda: _records("time", 2.0, noise=0.6)),
}


def _fit_of(fits: list[dict], metric: str) -> dict:
    (fit,) = [f for f in fits if f["metric"] == metric and f["axis"] == "seq_len" and f.get("verdict") != "no-claim"]
    return fit


@pytest.mark.parametrize("expected", list(CASES))
def test_the_four_entry_points_agree(expected, monkeypatch):
    metric, exponent, make = CASES[expected]
    records = make()
    # compare and report: the Session's summary and the page's verdict panel
    session = analyse(records)
    fit = _fit_of(session.fits, metric)
    assert claim_outcome(fit) == expected
    summary = session.summary
    counted = {"pass": summary["held"], "fail": len(summary["failing"]), "inconclusive": len(summary["inconclusive"]),
               "uncertain": len(summary["uncertain"])}
    assert counted == {k: int(k == expected) for k in counted}
    panel = _verdicts(session.fits)
    assert {**panel["counts"], "uncertain": panel["uncertain"]} == counted
    # effprof check: the check's own claim on the same records
    check = make_check("softmax_attention", "seq_len", SIZES, metric, exponent)
    result = judge_check(check, records)
    assert result.verdict == expected
    assert result.failed == (expected != "pass")
    # assert_scaling: the same records, as if it had measured them
    monkeypatch.setattr("effprof.runner.run_points", lambda *a, **k: records)
    if expected == "pass":
        assert assert_scaling("softmax_attention", "seq_len", SIZES, metric, exponent)["verdict"] == "pass"
    else:
        with pytest.raises(AssertionError, match=expected if expected != "fail" else "claimed"):
            assert_scaling("softmax_attention", "seq_len", SIZES, metric, exponent)


def test_check_sets_noisy_time_claims_aside_as_compare_does():
    """Before one outcome rule, `effprof check` judged a time claim on noisy points as pass/fail while compare set it aside."""
    records = _records("time", 1.0, noise=0.6)  # a false claim, on noisy timings
    session = analyse(records)
    assert claim_outcome(_fit_of(session.fits, "time")) == "uncertain"
    result = judge_check(make_check("softmax_attention", "seq_len", SIZES, "time", 1.0), records)
    assert result.verdict == "uncertain" and "noisy point" in result.reason and result.failed
    allowed = judge_check(make_check("softmax_attention", "seq_len", SIZES, "time", 1.0, allow_inconclusive=True), records)
    assert allowed.verdict == "uncertain" and not allowed.failed


def test_outcome_rule():
    assert claim_outcome({"verdict": "pass"}) == "pass"
    assert claim_outcome({"verdict": "pass", "uncertain": True, "noisy_points": 2}) == "uncertain"
    assert claim_outcome({"verdict": "fail", "uncertain": math.nan}) == "fail"  # no noise marking is not uncertain
    assert claim_outcome({"verdict": "no-claim", "uncertain": True}) == "no-claim"
    assert claim_outcome({"verdict": math.nan}) == "no-claim"
    assert claim_outcome({"verdict": "held"}) == "inconclusive"  # not a verdict (a damaged session): never counted as held
    assert "unknown verdict 'held'" in outcome_reason({"verdict": "held"})
    assert outcome_reason({"verdict": "fail", "uncertain": True, "noisy_points": 3, "verdict_reason": "x"}, "†") == \
        "uncertain: 3 noisy point(s) †; x"
    fits = [{"verdict": "pass"}, {"verdict": "fail"}, {"verdict": "pass", "uncertain": True}, {"verdict": "no-claim"}]
    assert {k: len(v) for k, v in tally(fits).items()} == {"pass": 1, "fail": 1, "inconclusive": 0, "uncertain": 1}


def test_the_gate():
    assert gate_fails("fail") and gate_fails("fail", allow_inconclusive=True)
    assert gate_fails("inconclusive") and not gate_fails("inconclusive", allow_inconclusive=True)
    assert gate_fails("uncertain") and not gate_fails("uncertain", allow_inconclusive=True)
    assert not gate_fails("pass") and not gate_fails("no-claim")
    with pytest.raises(ValueError, match="'held'"):
        gate_fails("held")


def test_a_regression_fails_the_gate_without_rewriting_the_outcome():
    from effprof.check.result import CheckResult

    check = make_check("softmax_attention", "seq_len", SIZES, "flops", 2.0)
    held = CheckResult(check, "pass", {"exponent": 2.0})
    assert not held.failed
    regressed = CheckResult(check, "pass", {"exponent": 2.0}, regressions=["seq_len=256 flops 2 vs 1 (×2, allowed ×1)"])
    assert regressed.failed and regressed.verdict == "pass" and "regressed against the baseline" in regressed.message
