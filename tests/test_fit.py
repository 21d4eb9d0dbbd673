"""Fits recover known exponents, synthetic and measured; verdicts follow the claims."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import effprof
from effprof.analyse.fit import fit_frame, leading_exponent, loglog_slope, upper_half

SIZES = [256, 512, 1024, 2048, 4096]


def _frame(fn, claim=None, metric_column="flops_counted", mechanism="m", **extra):
    return pd.DataFrame([
        {"mechanism": mechanism, "mode": "forward", "seq_len": n, "status": "ok", metric_column: fn(n),
         "claims": [claim] if claim else [], **extra}
        for n in SIZES
    ])


@pytest.mark.parametrize("p", [0.5, 1.0, 1.5, 2.0, 3.0])
def test_pure_power_law_is_recovered(p):
    fits = fit_frame(_frame(lambda n: 7.0 * n**p, ["flops", "seq_len", p, 0.0]))
    row = fits[fits.metric == "flops"].iloc[0]
    assert row.exponent == pytest.approx(p, abs=1e-9)
    assert row.r2 == pytest.approx(1.0)
    assert row.verdict == "pass"
    assert row.local == pytest.approx([p] * (len(SIZES) - 1))


def test_wrong_claim_fails():
    fits = fit_frame(_frame(lambda n: n**2.0, ["flops", "seq_len", 1.0, 0.0]))
    assert fits.iloc[0].verdict == "fail"


def test_no_claim():
    fits = fit_frame(_frame(lambda n: n**2.0))
    assert fits.iloc[0].verdict == "no-claim"


def test_upper_half_uses_the_largest_sizes():
    x = np.array(SIZES, dtype=float)
    assert list(x[upper_half(x)]) == [1024, 2048, 4096]


def test_leading_exponent_separates_the_linear_term():
    """y = a·n² + b·n with b large: raw slope well below 2, leading exponent 2."""
    frame = _frame(lambda n: 261.0 * n**2 + 131072.0 * n, ["flops", "seq_len", 2.0, 0.0])
    row = fit_frame(frame).iloc[0]
    assert row.exponent < 1.9
    assert row.leading_exponent == pytest.approx(2.0, abs=1e-3)
    assert row.verdict == "pass"


def test_leading_exponent_direct():
    x = np.array(SIZES, dtype=float)
    assert leading_exponent(x, 3 * x**1.5 + 50 * x) == pytest.approx(1.5, abs=1e-3)


def test_log_factor_is_divided_out():
    fits = fit_frame(_frame(lambda n: 5 * n * math.log(n), ["flops", "seq_len", 1.0, 1.0]))
    assert fits.iloc[0].exponent == pytest.approx(1.0, abs=1e-6)
    assert fits.iloc[0].verdict == "pass"


def test_noisy_time_gets_an_interval_that_contains_the_truth():
    rng = np.random.default_rng(0)
    frame = _frame(lambda n: 1e-9 * n**2 * math.exp(rng.normal(0, 0.03)), ["time", "seq_len", 2.0, 0.0],
                   metric_column="time_s")
    frame["time_iqr_s"] = frame["time_s"] * 0.05
    frame["time_blocks"] = 10
    row = fit_frame(frame).iloc[0]
    assert row.ci_low < row.exponent < row.ci_high
    assert row.ci_low - 0.25 <= 2.0 <= row.ci_high + 0.25
    assert row.verdict == "pass"


def test_series_are_split_by_variant():
    a = _frame(lambda n: n**2.0, ["flops", "seq_len", 2.0, 0.0], impl="naive")
    b = _frame(lambda n: n**1.0, ["flops", "seq_len", 1.0, 0.0], impl="chunked")
    fits = fit_frame(pd.concat([a, b]))
    by_variant = {r.variant: r.exponent for r in fits.itertuples()}
    assert by_variant == pytest.approx({"impl=naive": 2.0, "impl=chunked": 1.0})


def test_fewer_than_three_sizes_are_not_fitted():
    frame = _frame(lambda n: n**2.0).iloc[:2]
    assert fit_frame(frame).empty


def test_failed_points_are_ignored():
    frame = _frame(lambda n: n**2.0, ["flops", "seq_len", 2.0, 0.0])
    frame.loc[2, "status"] = "error"
    frame.loc[2, "flops_counted"] = 1.0
    assert fit_frame(frame).iloc[0].exponent == pytest.approx(2.0)


def test_loglog_slope():
    x = np.array([1.0, 2.0, 4.0])
    assert loglog_slope(x, x**3)[0] == pytest.approx(3.0)


def test_real_sweep_exponents():
    """Measured FLOPs of real modules: softmax ≈ 2, linear attention ≈ 1 in seq_len (raw slope, no correction)."""
    from effprof.measure.harness import Options

    options = Options(timing=False, memory=False, fvcore=False)
    frame = effprof.sweep(["softmax_attention", "linear_attention"], vary={"seq_len": [256, 512, 1024, 2048]},
                          options=options, d_model=8, n_heads=1)
    fits = fit_frame(frame)
    flops = fits[fits.metric == "flops"].set_index("mechanism")
    assert flops.loc["softmax_attention", "exponent"] == pytest.approx(2.0, abs=0.05)
    assert flops.loc["linear_attention", "exponent"] == pytest.approx(1.0, abs=0.05)
    assert set(flops["verdict"]) == {"pass"}
