"""The one verdict rule: monotonic, false claims fail, and inconclusive where the data cannot judge."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from effprof.analyse.fit import FIT_COLUMNS, fit_frame, judge, judge_many
from effprof.store import synthetic
from effprof.store.records import to_frame

GRID = np.round(np.arange(-0.5, 4.5, 0.01), 2)


def _frame(sizes, values, claim, column="flops_counted", mechanism="m", **extra) -> pd.DataFrame:
    return pd.DataFrame([
        {"mechanism": mechanism, "mode": "forward", "seq_len": n, "status": "ok", column: v,
         "claims": [claim] if claim else [], **extra}
        for n, v in zip(sizes, values, strict=False)
    ])


def passing_set(row: dict) -> np.ndarray:
    """The claimed exponents on GRID that pass for this fit row: every one judged at once by judge_many, the rule
    `judge` applies to one claim (the property test judges 12 × 40 rows × 500 claims: one call each was 20 s)."""
    reason = row["verdict_reason"] if row["verdict"] == "inconclusive" else ""
    low, high = (math.nan if row[k] is None else float(row[k]) for k in ("leading_ci_low", "leading_ci_high"))
    count = len(GRID)
    verdicts, _ = judge_many(GRID.astype(float), np.full(count, low), np.full(count, high), np.full(count, reason or "", dtype=object),
                             np.full(count, float(row["tolerance"])))
    return GRID[verdicts == "pass"]


def is_interval(values: np.ndarray) -> bool:
    return len(values) == 0 or len(values) == round((values[-1] - values[0]) / 0.01) + 1


def test_fit_columns_name_the_reason_and_the_lower_term():
    assert {"verdict_reason", "lower_exponent", "leading_exponent", "leading_ci_low", "leading_ci_high"} <= set(FIT_COLUMNS)


def test_the_issue_example_is_one_interval_around_two():
    """softmax-like FLOPs 2·n²·d + 8·n·d² at d = 64: the raw slope is ≈ 1.7, the verdict follows the leading term only."""
    n = np.array([256, 512, 1024, 2048], dtype=float)
    row = fit_frame(_frame(n, 2 * n**2 * 64 + 8 * n * 64**2, ["flops", "seq_len", 2.0, 0.0])).iloc[0].to_dict()
    assert row["exponent"] < 1.8 and row["verdict"] == "pass"
    passing = passing_set(row)
    assert is_interval(passing) and passing[0] > 1.75 and passing[-1] < 2.25
    one_by_one = [e for e in GRID if judge(float(e), {**row, "reason": ""}, row["tolerance"])[0] == "pass"]
    assert list(passing) == one_by_one  # the batched rule is the scalar one
    for wrong in (1.5, 1.6, 1.75, 2.25):
        claimed = _frame(n, 2 * n**2 * 64 + 8 * n * 64**2, ["flops", "seq_len", wrong, 0.0])
        assert fit_frame(claimed).iloc[0].verdict == "fail", wrong


@pytest.mark.parametrize("exponent,law", [(0.0, lambda n: 0 * n + 4096.0), (1.0, lambda n: 3.0 * n),
                                          (0.5, lambda n: 7 * n**0.5), (1.5, lambda n: n**1.5)])
def test_pure_power_laws_are_judged_by_the_same_estimator(exponent, law):
    n = np.array([64, 128, 256, 512], dtype=float)
    for claimed, verdict in ((exponent, "pass"), (exponent + 0.25, "fail"), (exponent - 0.25, "fail")):
        row = fit_frame(_frame(n, law(n), ["state_bytes" if exponent == 0 else "flops", "seq_len", claimed, 0.0],
                               column="state_bytes" if exponent == 0 else "flops_counted")).iloc[0]
        assert row.leading_exponent == pytest.approx(exponent, abs=1e-3)
        assert row.verdict == verdict, (claimed, row.verdict_reason)


def test_three_sizes_with_a_second_term_are_inconclusive_and_name_sizes():
    n = np.array([256, 512, 1024], dtype=float)
    row = fit_frame(_frame(n, n**2 + 300 * n, ["flops", "seq_len", 2.0, 0.0])).iloc[0]
    assert row.verdict == "inconclusive"
    assert row.verdict_reason.startswith("too few sizes") and "2048" in row.verdict_reason


def test_second_term_dominating_everywhere_is_inconclusive_with_the_crossing():
    n = np.array([16, 32, 64, 128, 256], dtype=float)
    row = fit_frame(_frame(n, n**2 + 4096 * n, ["flops", "seq_len", 2.0, 0.0])).iloc[0]
    assert row.verdict == "inconclusive" and row.verdict_reason.startswith("second term dominates")
    assert "4096" in row.verdict_reason  # the terms cross at n = 4096


def test_a_fit_at_its_bound_is_unidentified_and_prints_no_interval():
    """Upward bends steeper than x^(q+3) pin the fit at its bound: no leading exponent, no CI, never pass."""
    n = np.array([64, 128, 256, 512, 1024], dtype=float)
    row = fit_frame(_frame(n, 1e6 * n + 1e-9 * n**6, ["flops", "seq_len", 4.0, 0.0])).iloc[0]
    assert row.verdict == "inconclusive" and row.verdict_reason.startswith("unidentified")
    assert pd.isna(row.leading_exponent) and pd.isna(row.leading_ci_low) and pd.isna(row.leading_ci_high)


def test_pure_noise_is_never_a_pass():
    rng = np.random.default_rng(3)
    n = np.array([256, 512, 1024, 2048, 4096], dtype=float)
    for seed in range(20):
        values = np.exp(rng.normal(0, 0.5, len(n))) * 1e-3
        frame = _frame(n, values, ["time", "seq_len", 1.0, 0.0], column="time_s", time_iqr_s=values * 0.6, time_blocks=3)
        row = fit_frame(frame).iloc[0]
        assert row.verdict != "pass", (seed, row.leading_exponent, row.leading_ci_low, row.leading_ci_high)


def test_no_runtime_warning_leaks_from_degenerate_series():
    """#12 §4: `invalid value encountered in add` reached compare's output; nothing may leak."""
    n = np.array([1, 2, 4, 8], dtype=float)
    frames = [_frame(n, [1.0, 1.0, 1.0, 1.0], ["flops", "seq_len", 0.0, 0.0]),
              _frame(n, n**2 + 1e300 * 0, ["flops", "seq_len", 2.0, 1.0]),  # log(1) = 0 under a log factor
              _frame(n, [1e-300, 1e-300, 2e-300, 1e300], ["flops", "seq_len", 2.0, 0.0]),
              _frame(n, [1e-3, 1e-3, 1e-3, 1e-3], ["time", "seq_len", 0.0, 0.0], column="time_s", time_iqr_s=0.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for frame in frames:
            fit_frame(frame)


def _timed(samples_spread: float | None, seed: int = 0) -> pd.DataFrame:
    records = list(synthetic.records(series=1, sizes=5, noise=0.02, seed=seed, exponents=(2.0, 1.0), second=64.0))
    for record in records:
        if samples_spread is None:
            record.pop("time_samples_s")
        else:  # the same median, the given spread
            samples = np.array(record["time_samples_s"])
            record["time_samples_s"] = list(record["time_s"] * np.exp(samples_spread * np.log(samples / np.median(samples))))
    return to_frame(records)


def test_time_interval_comes_from_the_raw_samples_when_records_carry_them():
    def width(frame: pd.DataFrame) -> float:
        row = fit_frame(frame, tolerances={"time": 0.1})
        row = row[row.metric == "time"].iloc[0]
        return row.leading_ci_high - row.leading_ci_low

    narrow, wide, no_samples = width(_timed(1.0)), width(_timed(20.0)), width(_timed(None))
    assert wide > 3 * narrow  # the samples' spread, not the IQR (identical in all three), sets the interval
    assert no_samples > 0  # without samples, the IQR still gives one


# ---- the property: one interval containing p, excluding p ± 0.25 -------------------------------

SIZES = 64 * 2 ** np.arange(7)  # 64 … 4096


def _synthetic_frame(p: float, q: float, ratio: float, noise: float, seeds: int) -> pd.DataFrame:
    """`seeds` series of a·x^p + b·x^q with multiplicative noise; the x^q term passes x^p at x = ratio."""
    rng = np.random.default_rng(int(p * 1000 + q * 100 + ratio))
    rows = []
    for seed in range(seeds):
        values = SIZES.astype(float) ** p + ratio ** (p - q) * SIZES.astype(float) ** q
        values *= np.exp(rng.normal(0, noise, len(SIZES)))
        rows.append(_frame(SIZES, values, ["flops", "seq_len", p, 0.0], mechanism=f"s{seed}"))
    return pd.concat(rows, ignore_index=True)


# Derandomized, so CI judges the same 12 cases every run. Over the grid p ∈ {0.5 … 3}, crossing at 8, 64, 256,
# noise 0–1%, the worst setting (p = 1.5 beside x¹, crossing at 256, 1% noise) meets the property at 38 of 40 seeds.
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(case=st.one_of(st.tuples(st.floats(1.5, 3.0), st.just(1.0)), st.tuples(st.floats(0.5, 1.0), st.just(0.0))),
       ratio=st.sampled_from([8.0, 64.0, 256.0]), noise=st.sampled_from([0.0, 0.005, 0.01]))
def test_passing_set_is_an_interval_with_p_and_without_p_plus_minus_a_quarter(case, ratio, noise):
    p, q = case
    seeds = 40
    fits = fit_frame(_synthetic_frame(p, q, ratio, noise, seeds))
    assert len(fits) == seeds
    good = 0
    for row in fits.to_dict("records"):
        passing = passing_set(row)
        assert is_interval(passing)  # always, whatever the seed
        if len(passing) and passing[0] <= p <= passing[-1] and passing[0] > p - 0.25 and passing[-1] < p + 0.25:
            good += 1
    assert good >= 0.95 * seeds, fits[["leading_exponent", "leading_ci_low", "leading_ci_high", "verdict_reason"]].head()
