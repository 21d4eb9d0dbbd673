"""The batched fit (fit_frame over all series at once, then mark_noisy_fits) equals fitting each series on its own
(issue 26): a varied synthetic set — missing sizes, repeated points, noisy points, log-factor claims, two-term laws,
variants — is refitted series by series with the scalar helpers (fit_series, judge) and must give the same
exponents, intervals, verdicts, reasons and noise counts, figure for figure."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from effprof.analyse.fit import _log_claim_lower_terms, fit_series, judge
from effprof.analyse.frames import fmt_value
from effprof.analyse.session import scaling_fits
from effprof.store.metrics import CLAIMABLE, is_noisy, tolerance

SIZES = (64, 128, 256, 512, 1024, 2048)
LAWS = {  # name: (metric values of n, claims)
    "square": (lambda n: 3.0 * n * n, [["flops", "seq_len", 2.0, 0.0], ["time", "seq_len", 2.0, 0.0]]),
    "two_term": (lambda n: 0.5 * n * n + 400.0 * n, [["flops", "seq_len", 2.0, 0.0], ["time", "seq_len", 2.0, 0.0]]),
    "decode_like": (lambda n: 2.0 * n + 5000.0, [["flops", "seq_len", 1.0, 0.0], ["time", "seq_len", 1.0, 0.0]]),
    "n_log_n": (lambda n: 7.0 * n * math.log(n), [["flops", "seq_len", 1.0, 1.0], ["time", "seq_len", 1.0, 1.0]]),
    "n_log_n_plus_n": (lambda n: n * math.log(n) + 40.0 * n, [["flops", "seq_len", 1.0, 1.0], ["time", "seq_len", 1.0, 1.0]]),
    "wrong_claim": (lambda n: 1.0 * n ** 1.5, [["flops", "seq_len", 2.0, 0.0], ["time", "seq_len", 1.0, 0.0]]),
    "cubic": (lambda n: 1e-3 * n ** 3 + n, [["flops", "seq_len", 3.0, 0.0]]),
}


def _records(seed: int = 0, full: bool = False) -> list[dict]:
    """Every law once in the default run (the series differ in their sizes); `full`: two impls and two modes of
    most laws, 22 series."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, (law, (values, claims)) in enumerate(LAWS.items()):
        for impl in ("a", "b") if i % 2 == 0 and full else ("a",):
            for mode in ("forward", "decode") if full else ("forward",):
                keep = [n for n in SIZES if rng.random() > 0.25] or list(SIZES)  # missing sizes: 3 to 6 per series
                keep = keep if len(keep) >= 3 else list(SIZES[:3])
                for n in keep:
                    exact = values(n)
                    for _ in range(1 + int(rng.random() < 0.3)):  # some points measured twice
                        time = exact * 1e-9 * (1 + 0.05 * rng.standard_normal())
                        noisy = rng.random() < 0.2
                        rows.append({"schema": 2, "mechanism": f"m_{law}", "family": "attention", "mode": mode, "status": "ok",
                                     "impl": impl, "seq_len": n, "d_model": 16, "batch": 1, "time_s": time,
                                     "time_iqr_s": time * (0.3 if noisy else 0.02 * rng.random()),
                                     "time_blocks": int(rng.integers(1, 9)), "flops_counted": exact,
                                     "peak_bytes": 64.0 * n, "claims": claims})
    rows.append(dict(rows[0], status="oom", time_s=None))  # a failed point takes no part
    return rows


def _series(records: list[dict], fit: dict) -> list[dict]:
    variant = dict(part.split("=", 1) for part in fit["variant"].split(",") if part)
    return [r for r in records if r["status"] == "ok" and r["mechanism"] == fit["mechanism"] and r["mode"] == fit["mode"]
            and all(fmt_value(r[k]) == v for k, v in variant.items())]


def _one_by_one(records: list[dict], fit: dict) -> dict:
    """The fit of one series, from its own records, with the scalar helpers."""
    rows = pd.DataFrame(_series(records, fit))
    column = CLAIMABLE[fit["metric"]]
    per_size = rows.groupby("seq_len")[[column, "time_iqr_s", "time_blocks"]].median()
    per_size = per_size[per_size[column].notna() & (per_size[column] > 0)]
    x = per_size.index.to_numpy(dtype=float)
    y = per_size[column].to_numpy(dtype=float)
    claim = next((c for c in rows["claims"].iloc[0] if c[0] == fit["metric"] and c[1] == "seq_len"), None)
    claimed, log_power = (None, 0.0) if claim is None else (float(claim[2]), float(claim[3]))
    sigma = np.zeros_like(x)
    if fit["metric"] == "time":  # each size's standard error of its median from its IQR (no raw samples here)
        blocks = np.maximum(per_size["time_blocks"].to_numpy(dtype=float), 1.0)
        sigma = 1.253 * per_size["time_iqr_s"].to_numpy(dtype=float) / y / 1.349 / np.sqrt(blocks)
    tol = tolerance(fit["metric"])
    row = fit_series(x, y, sigma, log_power, tol)
    verdict, reason = judge(claimed, row, tol)
    if log_power and verdict == "fail":
        why = _log_claim_lower_terms(x, y, sigma, claimed, log_power)
        verdict, reason = ("inconclusive", why) if why else (verdict, reason)
    noisy = sum(is_noisy(r) for r in _series(records, fit) if r["seq_len"] in set(x)) if fit["metric"] == "time" else 0
    return {**row, "sizes": x.tolist(), "verdict": verdict, "verdict_reason": reason, "claimed": claimed, "noisy_points": noisy}


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b, strict=True))
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)) or (isinstance(b, float) and math.isnan(b)):
        return (a is None or a != a) and (b is None or b != b)
    return a == b


@pytest.mark.parametrize("full", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_the_batched_fit_equals_fitting_each_series_alone(full):
    records = _records(full=full)
    fits = scaling_fits(pd.DataFrame(records)).to_dict("records")
    assert len(fits) == 3 * (22 if full else 7)  # every series, fitted in flops, time and peak_bytes
    verdicts = {f["verdict"] for f in fits}
    assert {"pass", "fail", "inconclusive"} <= verdicts, verdicts  # the set exercises every outcome
    assert any(f["noisy_points"] for f in fits) and any(f["lower_exponent"] == 1.0 for f in fits)
    assert len({f["n_points"] for f in fits}) >= 2  # missing sizes: series of different lengths in one batch
    for fit in fits:
        alone = _one_by_one(records, fit)
        for key in ("exponent", "ci_low", "ci_high", "r2", "leading_exponent", "leading_ci_low", "leading_ci_high",
                    "lower_exponent", "local", "sizes", "verdict", "verdict_reason", "claimed", "noisy_points"):
            assert _same(fit[key], alone[key]), (fit["mechanism"], fit["variant"], fit["mode"], fit["metric"], key, fit[key], alone[key])


def test_the_comparison_sees_a_changed_figure():
    records = _records()
    fit = next(f for f in scaling_fits(pd.DataFrame(records)).to_dict("records") if f["metric"] == "flops")
    smallest = min(fit["sizes"])
    moved = [dict(r, flops_counted=r["flops_counted"] * 1.01) if r["seq_len"] == smallest else r for r in records]
    assert not _same(fit["local"], _one_by_one(moved, fit)["local"])
