"""Scaling fits: exponents with bootstrap CIs, local slopes, and claim verdicts.

For each mechanism, variant, mode, metric and swept axis with at least three sizes:

    exponent  = slope of log(metric) against log(axis) over the upper half of the range
                (the three largest sizes when the upper half holds fewer), where the
                asymptotic term dominates; a claimed log factor log(axis)^q is divided out first
    ci_low/high = 95% bootstrap interval: points resampled with replacement, and timed points
                also redrawn within their measured spread (IQR)
    r2        = R² of that fit
    local     = slope between each pair of consecutive sizes
    analytic_exponent = the same fit on the cost model's FLOPs (flops only): what theory gives
                at these very sizes, lower-order terms included
    leading_exponent = p of the two-term model y = a·x^p + b·x^q (a, b ≥ 0) fitted to all sizes, with
                its own bootstrap interval: the exponent of the dominant term once the next lower
                term is separated out. Sequence mixers pay projections linear in seq_len (8·n·d²
                for attention) beside their mixing term (2·n²·d), so at n ≈ d the raw slope of an
                O(n²) mechanism is still ≈ 1.8: with q = 1 the leading exponent recovers the 2.
                Likewise a decode step costs a constant (projections, FFN) plus attention over the
                n cached keys: with q = 0 the leading exponent recovers the 1. q = 1 when the raw
                slope exceeds 1.05, q = 0 when it lies in (0.05, 1.05]; not fitted below.
    verdict   = pass when the claimed exponent lies in [ci_low − tol, ci_high + tol] of the raw
                exponent or of the leading exponent, fail otherwise, no-claim when nothing is claimed

A series is the set of records that differ only in the axis; `variant` names the
other config keys that vary between series of one mechanism (e.g. "impl=chunked").
This module takes DataFrames and never imports torch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from effprof.config import KEYS

METRICS = {  # metric name in claims -> record column
    "flops": "flops_counted",
    "time": "time_s",
    "peak_bytes": "peak_bytes",
    "activation_bytes": "activation_bytes",
    "state_bytes": "state_bytes",
    "params": "params",
    "forward_passes": "forward_passes",  # a sampler's denoiser passes per generation (diffusion LMs)
}
TOLERANCE = {"time": 0.25}  # default 0.1 for flops, bytes and params
DEFAULT_TOLERANCE = 0.1
BOOTSTRAP = 1000
NUMERIC_AXES = [k for k, info in KEYS.items() if info.type in (int, float)]
FIT_COLUMNS = [
    "mechanism", "variant", "mode", "metric", "axis", "exponent", "ci_low", "ci_high", "r2", "claimed",
    "tolerance", "verdict", "analytic_exponent", "leading_exponent", "leading_ci_low", "leading_ci_high",
    "local", "sizes", "n_points",
]
LEADING_BOOTSTRAP = 200


def tolerance(metric: str) -> float:
    return TOLERANCE.get(metric, DEFAULT_TOLERANCE)


def loglog_slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(slope, r2) of the least-squares line through (log x, log y)."""
    lx, ly = np.log(x), np.log(y)
    slope, intercept = np.polyfit(lx, ly, 1)
    residual = ly - (slope * lx + intercept)
    total = ((ly - ly.mean()) ** 2).sum()
    r2 = 1.0 - (residual**2).sum() / total if total > 0 else 1.0
    return float(slope), float(r2)


def upper_half(x: np.ndarray) -> np.ndarray:
    """Indices (sorted by x) of the points in the upper half of the log range; at least three."""
    order = np.argsort(x)
    lx = np.log(x[order])
    middle = (lx[0] + lx[-1]) / 2
    keep = order[lx >= middle - 1e-12]
    return keep if len(keep) >= 3 else order[-3:]


def bootstrap_ci(x: np.ndarray, y: np.ndarray, spread: np.ndarray | None, seed: int = 0) -> tuple[float, float]:
    """95% interval of the log-log slope: resampled points, values redrawn within their spread."""
    rng = np.random.default_rng(seed)
    n = len(x)
    slopes = []
    for _ in range(BOOTSTRAP):
        idx = rng.integers(0, n, n)
        if len(np.unique(x[idx])) < 2:
            continue
        yy = y[idx]
        if spread is not None:
            yy = yy * np.exp(rng.normal(0.0, spread[idx]))
        slopes.append(np.polyfit(np.log(x[idx]), np.log(yy), 1)[0])
    if not slopes:
        return math.nan, math.nan
    low, high = np.percentile(slopes, [2.5, 97.5])
    return float(low), float(high)


def _series_key_columns(group: pd.DataFrame, axis: str) -> list[str]:
    return [k for k in _varying(group) if k != axis]


def _varying(group: pd.DataFrame) -> list[str]:
    columns = [k for k in KEYS if k in group.columns]
    return [k for k in columns if group[k].dropna().astype(str).nunique() > 1]


def _variant(values: dict[str, Any]) -> str:
    return ",".join(f"{k}={_fmt(v)}" for k, v in values.items())


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _claim_for(rows: pd.DataFrame, metric: str, axis: str) -> tuple[float, float] | None:
    """(exponent, log_power) the records claim for metric ∝ axis, when they all agree."""
    found = set()
    for claims in rows.get("claims", pd.Series([[]] * len(rows))):
        match = [(c[2], c[3] if len(c) > 3 else 0.0) for c in (claims or []) if c[0] == metric and c[1] == axis]
        found.add(match[0] if match else None)
    if len(found) == 1:
        return found.pop()
    return None


def _two_term_losses(x: np.ndarray, y: np.ndarray, p: np.ndarray, q: float) -> np.ndarray:
    """For each p: min over a, b ≥ 0 of Σ((a·x^p + b·x^q − y)/y)², vectorised over p."""
    s = x / x.max()  # conditioning
    u = (s[None, :] ** p[:, None]) / y[None, :]  # (P, n) column of a, relative units
    v = np.broadcast_to(s**q / y, u.shape)  # column of b
    uu, vv, uv = (u * u).sum(1), (v * v).sum(1), (u * v).sum(1)
    uy, vy = u.sum(1), v.sum(1)  # target is all ones
    det = uu * vv - uv * uv
    with np.errstate(divide="ignore", invalid="ignore"):
        a = (uy * vv - vy * uv) / det
        b = (vy * uu - uy * uv) / det
    n = len(x)

    def loss(a_: np.ndarray, b_: np.ndarray) -> np.ndarray:
        return n - 2 * (a_ * uy + b_ * vy) + a_ * a_ * uu + b_ * b_ * vv + 2 * a_ * b_ * uv

    both = np.where((a >= 0) & (b >= 0) & np.isfinite(a) & np.isfinite(b), loss(a, b), np.inf)
    only_a = loss(np.maximum(uy / uu, 0), np.zeros_like(uu))
    only_b = loss(np.zeros_like(vv), np.maximum(vy / vv, 0))
    return np.minimum(both, np.minimum(only_a, only_b))


def lower_term(raw_slope: float) -> float | None:
    """The exponent q of the term a leading fit separates out, or None when there is nothing to separate."""
    if raw_slope > 1.05:
        return 1.0
    if raw_slope > 0.05:
        return 0.0
    return None


def leading_exponent(x: np.ndarray, y: np.ndarray, q: float = 1.0) -> float:
    """p of y ≈ a·x^p + b·x^q with a, b ≥ 0, least squares in relative error, p in (q, q + 3]."""
    grid = np.linspace(q + 0.005, q + 3.0, 600)
    coarse = grid[np.argmin(_two_term_losses(x, y, grid, q))]
    fine = np.linspace(max(grid[0], coarse - 0.005), min(grid[-1], coarse + 0.005), 51)
    return float(fine[np.argmin(_two_term_losses(x, y, fine, q))])


def leading_fit(x: np.ndarray, y: np.ndarray, spread: np.ndarray | None, q: float = 1.0, seed: int = 0) -> tuple[float, float, float]:
    """(p, ci_low, ci_high) of the two-term model; the interval from resampled points."""
    p = leading_exponent(x, y, q)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(LEADING_BOOTSTRAP):
        idx = rng.integers(0, len(x), len(x))
        if len(np.unique(x[idx])) < 3:
            continue
        yy = y[idx] * np.exp(rng.normal(0.0, spread[idx])) if spread is not None else y[idx]
        samples.append(leading_exponent(x[idx], yy, q))
    if len(samples) < 20:
        return p, math.nan, math.nan
    low, high = np.percentile(samples, [2.5, 97.5])
    return p, float(low), float(high)


def fit_series(x: np.ndarray, y: np.ndarray, spread: np.ndarray | None, log_power: float = 0.0) -> dict[str, Any]:
    """Fit one series (x sorted ascending, y > 0)."""
    y_fit = y / np.log(x) ** log_power if log_power else y
    keep = upper_half(x)
    slope, r2 = loglog_slope(x[keep], y_fit[keep])
    ci_low, ci_high = bootstrap_ci(x[keep], y_fit[keep], None if spread is None else spread[keep])
    local = [float(math.log(y_fit[i + 1] / y_fit[i]) / math.log(x[i + 1] / x[i])) for i in range(len(x) - 1)]
    fit = {"exponent": slope, "ci_low": ci_low, "ci_high": ci_high, "r2": r2, "local": local,
           "leading_exponent": None, "leading_ci_low": None, "leading_ci_high": None}
    q = lower_term(slope)
    if q is not None and len(x) >= 3:
        p, low, high = leading_fit(x, y_fit, spread, q)
        fit.update(leading_exponent=p, leading_ci_low=low, leading_ci_high=high)
    return fit


def _within(claimed: float, exponent: float | None, low: float | None, high: float | None, tol: float) -> bool:
    if exponent is None or (isinstance(exponent, float) and math.isnan(exponent)):
        return False
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        low = high = exponent
    return low - tol <= claimed <= high + tol


def fit_frame(frame: pd.DataFrame, tolerances: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per fitted (mechanism, variant, mode, metric, axis); columns FIT_COLUMNS."""
    tolerances = tolerances or {}
    rows: list[dict[str, Any]] = []
    if frame.empty or "status" not in frame.columns:
        return pd.DataFrame(columns=FIT_COLUMNS)
    ok = frame[frame["status"] == "ok"]
    for (mechanism, mode), group in ok.groupby(["mechanism", "mode"], sort=False):
        varying = _varying(group)
        for axis in [k for k in varying if k in NUMERIC_AXES]:
            others = [k for k in varying if k != axis]
            series_groups = group.groupby(others, sort=False, dropna=False) if others else [((), group)]
            for key, series in series_groups:
                key = key if isinstance(key, tuple) else (key,)
                variant = _variant(dict(zip(others, key)))
                rows.extend(_fit_metrics(series, mechanism, variant, mode, axis, tolerances))
    return pd.DataFrame(rows, columns=FIT_COLUMNS)


def _fit_metrics(series: pd.DataFrame, mechanism: str, variant: str, mode: str, axis: str, tolerances: dict[str, float]) -> list[dict[str, Any]]:
    out = []
    by_size = series.groupby(axis)
    if by_size.ngroups < 3:
        return out
    for metric, column in METRICS.items():
        if column not in series.columns:
            continue
        values = by_size[column].median()
        values = values[values.notna() & (values > 0)]
        if len(values) < 3:
            continue
        x = values.index.to_numpy(dtype=float)
        y = values.to_numpy(dtype=float)
        claim = _claim_for(series, metric, axis)
        constant = np.allclose(y, y[0], rtol=1e-9) and metric != "time"
        if constant and claim is None:
            continue  # e.g. params against seq_len: nothing to learn
        if constant:
            fit = {"exponent": 0.0, "ci_low": 0.0, "ci_high": 0.0, "r2": 1.0, "local": [0.0] * (len(x) - 1),
                   "leading_exponent": None, "leading_ci_low": None, "leading_ci_high": None}
        else:
            spread = None
            if metric == "time" and "time_iqr_s" in series.columns:
                # standard error of a median ≈ 1.253·σ/√blocks, σ ≈ IQR/1.349 (in log units: ÷ median)
                iqr = by_size["time_iqr_s"].median().reindex(values.index).to_numpy(dtype=float)
                blocks = by_size["time_blocks"].median().reindex(values.index).to_numpy(dtype=float) if "time_blocks" in series.columns else np.ones_like(y)
                spread = np.nan_to_num(1.253 * iqr / y / 1.349 / np.sqrt(np.maximum(np.nan_to_num(blocks, nan=1.0), 1.0)), nan=0.0)
            fit = fit_series(x, y, spread, claim[1] if claim else 0.0)
        tol = tolerances.get(metric, tolerance(metric))
        verdict = "no-claim"
        if claim is not None:
            held = _within(claim[0], fit["exponent"], fit["ci_low"], fit["ci_high"], tol) or _within(
                claim[0], fit["leading_exponent"], fit["leading_ci_low"], fit["leading_ci_high"], tol)
            verdict = "pass" if held else "fail"
        analytic = None
        if metric == "flops" and "flops_analytic" in series.columns:
            a = by_size["flops_analytic"].median().reindex(values.index).to_numpy(dtype=float)
            if (a > 0).all():
                a = a / np.log(x) ** claim[1] if claim and claim[1] else a
                analytic = loglog_slope(x[upper_half(x)], a[upper_half(x)])[0]
        out.append({
            "mechanism": mechanism, "variant": variant, "mode": mode, "metric": metric, "axis": axis,
            **fit, "claimed": None if claim is None else claim[0], "tolerance": tol, "verdict": verdict,
            "analytic_exponent": analytic, "sizes": [float(v) for v in x], "n_points": len(x),
        })
    return out
