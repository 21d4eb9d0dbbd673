"""Scaling fits: exponents with bootstrap CIs, local slopes, and claim verdicts.

For each mechanism, variant, mode, metric and swept axis with at least three sizes, every
series is described and one estimator judges its claim.

Description (printed, never used to pass or fail a claim):

    exponent  = slope of log(metric) against log(axis) over the upper half of the range
                (the three largest sizes when the upper half holds fewer); a claimed log
                factor log(axis)^q is divided out first
    ci_low/high = its 95% bootstrap interval
    r2        = R² of that line
    local     = slope between each pair of consecutive sizes
    analytic_exponent = the same slope of the cost model's FLOPs (flops only)

The judged estimator: the exponent p of the dominant term.

    leading_exponent = p of y = a·x^p + b·x^q (a, b ≥ 0), least squares in relative error over
                all sizes, with q the next lower term a sequence mixer pays: q = 1 (projections,
                linear in seq_len, beside an n² mixing term) when the raw slope exceeds 1.05,
                q = 0 (a constant, e.g. a decode step's projections beside attention over n
                cached keys) when it lies in (0.05, 1.05]. Below, the series is a constant-like
                pure power law and p is the plain log-log slope over all sizes. When b = 0 fits
                best, the two-term fit is a pure power law and p is its plain exponent.
    leading_ci_low/high = 95% bootstrap interval of p: sizes reweighted (Poisson bootstrap) and,
                for time, each size's median redrawn from its raw samples (`time_samples_s`) or,
                in records without samples, within the spread its IQR implies. An exact fit of a
                deterministic metric has no spread: its interval is the point.
    lower_exponent = q (NaN when no second term was fitted)

The rule: a claim passes iff the claimed exponent lies in
[leading_ci_low − tolerance, leading_ci_high + tolerance]; so the claims that pass are one
interval. It fails otherwise, unless the data cannot identify the dominant term, when the
verdict is `inconclusive` and `verdict_reason` says why and which sizes would decide:

    - the fit of p hits its bounds q or q + 3, or more than 5% of the bootstrap refits do
      (the data bend more than two power terms allow: noise, or a different law): unidentified,
      and the leading columns are left empty rather than printing the bounds as an interval;
    - the x^q term carries more than half of the metric even at the largest size (the
      dominant term is not yet dominant): the message names the size where the terms cross;
    - three sizes and a non-negligible second term: three parameters through three points
      test nothing;
    - the interval is wider than max(2·tolerance, 0.1): the data do not resolve the claim.

A series is the set of records that differ only in the axis; `variant` names the other
config keys that vary between series of one mechanism (e.g. "impl=chunked"). Fits run
batched over all series with the same number of sizes. This module takes DataFrames and
never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
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
BOOTSTRAP = 200  # bootstrap replicates per series
NUMERIC_AXES = [k for k, info in KEYS.items() if info.type in (int, float)]
FIT_COLUMNS = [
    "mechanism", "variant", "mode", "metric", "axis", "exponent", "ci_low", "ci_high", "r2", "claimed",
    "tolerance", "verdict", "analytic_exponent", "leading_exponent", "leading_ci_low", "leading_ci_high",
    "local", "sizes", "n_points", "lower_exponent", "verdict_reason",
]
SPAN = 3.0  # p is sought in [q, q + SPAN]
AT_BOUND = 0.01  # a fit within this of a bound of its search interval hit it
WINDOW = 0.75  # bootstrap refits look for p within ± WINDOW of the point estimate
MAX_BOUNDED = 0.05  # more bootstrap refits than this at a bound: unidentified
MIN_REPLICATES = 20  # fewer usable bootstrap refits than this: no interval
MIN_RESOLUTION = 0.1  # an interval wider than max(2·tolerance, this) does not resolve a claim
NEGLIGIBLE = 0.01  # a second term below this share of the metric at the smallest size is absent
EXACT = 1e-9  # largest relative residual of a fit that is exact
GOLDEN = (math.sqrt(5) - 1) / 2


def tolerance(metric: str) -> float:
    """The default half-width a claim of `metric` is allowed beyond the fit's interval."""
    return TOLERANCE.get(metric, DEFAULT_TOLERANCE)


# ---- least squares, batched over series (leading axes) and sizes (last axis) -------------


def _weighted_line(lx: np.ndarray, ly: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(slope, r2) of the weighted least-squares line through (lx, ly) along the last axis; NaN
    where fewer than two distinct x carry weight."""
    total = w.sum(-1, keepdims=True)
    safe = np.where(total > 0, total, 1.0)
    mx, my = (w * lx).sum(-1, keepdims=True) / safe, (w * ly).sum(-1, keepdims=True) / safe
    dx, dy = lx - mx, ly - my
    sxx, sxy, syy = (w * dx * dx).sum(-1), (w * dx * dy).sum(-1), (w * dy * dy).sum(-1)
    ok = sxx > 1e-12 * np.maximum((w * lx * lx).sum(-1), 1e-300)
    slope = np.where(ok, sxy / np.where(ok, sxx, 1.0), np.nan)
    explained = np.where(ok, sxy * sxy / np.where(ok, sxx, 1.0), 0.0)
    r2 = np.where(syy > 0, explained / np.where(syy > 0, syy, 1.0), 1.0)
    return slope, np.where(ok, r2, np.nan)


def loglog_slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(slope, r2) of the least-squares line through (log x, log y)."""
    slope, r2 = _weighted_line(np.log(x), np.log(y), np.ones(len(x)))
    return float(slope), float(r2)


def _upper_mask(lx: np.ndarray) -> np.ndarray:
    """Per series (rows of sorted log sizes): the upper half of the log range, at least three points."""
    middle = (lx[..., :1] + lx[..., -1:]) / 2
    k = lx.shape[-1]
    return (lx >= middle - 1e-12) | (np.arange(k) >= k - 3)


def upper_half(x: np.ndarray) -> np.ndarray:
    """Indices (sorted by x) of the points in the upper half of the log range; at least three."""
    order = np.argsort(x)
    return order[_upper_mask(np.log(x[order]))]


def _two_term(ls: np.ndarray, ly: np.ndarray, w: np.ndarray, p: np.ndarray, q: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(loss, a, b) of min over a, b ≥ 0 of Σ w·((a·s^p + b·s^q)/y − 1)² for each p.

    ls, ly, w: (..., k) log sizes (largest 0), log values, weights; p: (..., P). Returns (..., P).
    """
    u = np.exp(p[..., :, None] * ls[..., None, :] - ly[..., None, :])  # column of a, in units of y
    v = np.exp(q * ls - ly)[..., None, :]  # column of b
    wk = w[..., None, :]
    uu, vv, uv = (wk * u * u).sum(-1), (wk * v * v).sum(-1), (wk * u * v).sum(-1)
    uy, vy = (wk * u).sum(-1), (wk * v).sum(-1)  # the target is all ones
    vv, uv, vy = np.broadcast_arrays(vv, uv, vy)  # the b column is the same for every p
    vv, vy = vv * np.ones_like(uu), vy * np.ones_like(uu)
    n = w.sum(-1)[..., None]
    det = uu * vv - uv * uv
    both_ok = det > 1e-10 * uu * vv
    safe_det = np.where(both_ok, det, 1.0)
    a = (uy * vv - vy * uv) / safe_det
    b = (vy * uu - uy * uv) / safe_det
    both_ok &= (a >= 0) & (b >= 0)
    only_a = np.maximum(uy, 0) / np.where(uu > 0, uu, 1.0)
    only_b = np.maximum(vy, 0) / np.where(vv > 0, vv, 1.0)
    loss_a, loss_b = n - only_a * uy, n - only_b * vy
    loss_both = np.where(both_ok, n - (a * uy + b * vy), np.inf)
    best = np.argmin(np.stack([loss_both, loss_a, loss_b]), axis=0)
    loss = np.choose(best, [loss_both, loss_a, loss_b])
    a_out = np.choose(best, [np.where(both_ok, a, 0.0), only_a, np.zeros_like(a)])
    b_out = np.choose(best, [np.where(both_ok, b, 0.0), np.zeros_like(b), only_b])
    return loss, a_out, b_out


def _golden(ls: np.ndarray, ly: np.ndarray, w: np.ndarray, q: float, low: np.ndarray, high: np.ndarray,
            tol: float = 5e-4) -> np.ndarray:
    """p minimising the two-term loss in [low, high] (per element), by golden-section search."""
    low, high = low.astype(float), high.astype(float)
    steps = int(math.ceil(math.log(tol / max(float(np.max(high - low, initial=tol)), tol)) / math.log(GOLDEN))) + 1

    def loss(p: np.ndarray) -> np.ndarray:
        return _two_term(ls, ly, w, p[..., None], q)[0][..., 0]

    c, d = high - GOLDEN * (high - low), low + GOLDEN * (high - low)
    fc, fd = loss(c), loss(d)
    for _ in range(steps):
        left = fc < fd  # the minimum lies in [low, d]
        high, low = np.where(left, d, high), np.where(left, low, c)
        new = np.where(left, high - GOLDEN * (high - low), low + GOLDEN * (high - low))
        fnew = loss(new)
        # left: (c, d) become (new, old c); right: (old d, new). The right side uses the old values.
        c, fc, d, fd = (np.where(left, new, d), np.where(left, fnew, fd),
                        np.where(left, c, new), np.where(left, fc, fnew))
    return np.where(fc < fd, c, d)


def _leading_point(ls: np.ndarray, ly: np.ndarray, w: np.ndarray, q: float) -> np.ndarray:
    """p of the two-term fit for each series: a grid over [q, q + SPAN], then golden section."""
    grid = np.linspace(q, q + SPAN, 61)
    losses = _two_term(ls, ly, w, np.broadcast_to(grid, ls.shape[:-1] + grid.shape), q)[0]
    best = grid[np.argmin(losses, axis=-1)]
    step = grid[1] - grid[0]
    return _golden(ls, ly, w, q, np.maximum(best - step, q), np.minimum(best + step, q + SPAN))


def leading_exponent(x: np.ndarray, y: np.ndarray, q: float = 1.0) -> float:
    """p of y ≈ a·x^p + b·x^q with a, b ≥ 0, least squares in relative error, p in [q, q + 3]."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ls, ly = np.log(x / x.max()), np.log(y / y.max())
    return float(_leading_point(ls[None], ly[None], np.ones((1, len(x))), q)[0])


def lower_term(raw_slope: float) -> float | None:
    """The exponent q of the term a leading fit separates out, or None when there is nothing to separate."""
    if raw_slope > 1.05:
        return 1.0
    if raw_slope > 0.05:
        return 0.0
    return None


# ---- one batch: S series with the same number k of sizes -------------------------------------


def _replicates(rng: np.random.Generator, ly: np.ndarray, spread: np.ndarray | None,
                samples: list[list[np.ndarray | None]] | None) -> np.ndarray | None:
    """(S, B, k) log values of the bootstrap replicates' medians, or None for an exact metric.

    A size with raw samples redraws its median as a bootstrap of the samples would: the median
    of n draws is the sample quantile at a Beta((n+1)/2, (n+1)/2) level. A size without them
    redraws log y within its spread (standard error of the median, log units).
    """
    if spread is None and samples is None:
        return None
    s, k = ly.shape
    out = ly[:, None, :] + (rng.normal(0.0, 1.0, (s, BOOTSTRAP, k)) * spread[:, None, :] if spread is not None else 0.0)
    for i, row in enumerate(samples or []):
        for j, values in enumerate(row):
            if values is None or len(values) < 2:
                continue
            n = len(values)
            levels = rng.beta((n + 1) / 2, (n + 1) / 2, BOOTSTRAP)
            # the point's value times (a bootstrap median / the samples' median): centred on the point
            out[i, :, j] = ly[i, j] + np.log(np.quantile(values, levels) / np.median(values))
    return out


def _fit_batch(x: np.ndarray, y: np.ndarray, spread: np.ndarray | None, samples: list | None,
               tol: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Describe and judge S series at once. x, y: (S, k), sizes ascending, y > 0."""
    rng = np.random.default_rng(seed)
    s, k = x.shape
    lx = np.log(x)
    ly = np.log(y)
    ly_n = ly - ly.max(-1, keepdims=True)
    ls = lx - lx[:, -1:]
    reps = _replicates(rng, ly_n, spread, samples)
    upper = _upper_mask(lx).astype(float)
    slope, r2 = _weighted_line(lx, ly, upper)
    weights = rng.poisson(1.0, (s, BOOTSTRAP, k)).astype(float)
    rep_ly = reps if reps is not None else np.broadcast_to(ly_n[:, None, :], (s, BOOTSTRAP, k))
    raw = _weighted_line(lx[:, None, :], rep_ly, weights * upper[:, None, :])[0]
    with np.errstate(all="ignore"):
        ci_low, ci_high = _percentiles(raw)
    local = np.diff(ly, axis=-1) / np.diff(lx, axis=-1)

    lead, lead_low, lead_high = np.full(s, np.nan), np.full(s, np.nan), np.full(s, np.nan)
    lower = np.full(s, np.nan)
    reasons: list[str] = [""] * s
    terms = np.array([lower_term(v) if np.isfinite(v) else None for v in slope], dtype=object)
    for q in (None, 0.0, 1.0):
        rows = np.array([t == q if q is not None else t is None for t in terms])
        if not rows.any():
            continue
        index = np.flatnonzero(rows)
        sub = {name: arr[index] for name, arr in (("lx", lx), ("ls", ls), ("ly", ly_n))}
        sub_reps = rep_ly[index]
        sub_w = weights[index]
        if q is None:
            p, low, high, why = _judge_one_term(sub, sub_reps, sub_w, reps is None)
        else:
            p, low, high, why = _judge_two_term(sub, sub_reps, sub_w, q, reps is None, x[index])
            lower[index] = q
        lead[index], lead_low[index], lead_high[index] = p, low, high
        for position, reason in zip(index, why):
            reasons[position] = reason
    resolution = np.maximum(2 * tol, MIN_RESOLUTION)
    for i in range(s):
        if not reasons[i] and not (np.isfinite(lead_low[i]) and np.isfinite(lead_high[i])):
            reasons[i] = (f"no interval: too few bootstrap refits had enough sizes; {_more_sizes(x[i])}")
        elif not reasons[i] and lead_high[i] - lead_low[i] > resolution[i]:
            reasons[i] = (f"noise: the dominant exponent's interval [{lead_low[i]:.2f}, {lead_high[i]:.2f}] is wider than "
                          f"{resolution[i]:.2g}, too wide to judge a claim; add repeats, sizes, or larger sizes "
                          f"({_more_sizes(x[i])})")
    return {"exponent": slope, "ci_low": ci_low, "ci_high": ci_high, "r2": r2, "local": local,
            "leading_exponent": lead, "leading_ci_low": lead_low, "leading_ci_high": lead_high,
            "lower_exponent": lower, "reason": np.array(reasons, dtype=object)}


def _percentiles(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per series (rows) 2.5th and 97.5th percentiles of the finite bootstrap values; NaN when fewer than MIN_REPLICATES."""
    count = np.isfinite(values).sum(-1)
    low, high = np.nanpercentile(np.where(count[:, None] > 0, values, 0.0), [2.5, 97.5], axis=-1)
    enough = count >= MIN_REPLICATES
    return np.where(enough, low, np.nan), np.where(enough, high, np.nan)


def _more_sizes(x: np.ndarray) -> str:
    largest = float(np.max(x))
    return f"e.g. add sizes {_fmt(largest * 2)} and {_fmt(largest * 4)}"


def _judge_one_term(sub: dict[str, np.ndarray], reps: np.ndarray, w: np.ndarray, exact: bool
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """A pure power law (slope ≤ 0.05): p is the log-log slope over all sizes."""
    lx, ly = sub["lx"], sub["ly"]
    p = _weighted_line(lx, ly, np.ones_like(lx))[0]
    residual = np.abs(ly - (ly.mean(-1, keepdims=True) + p[:, None] * (lx - lx.mean(-1, keepdims=True)))).max(-1)
    with np.errstate(all="ignore"):
        low, high = _percentiles(_weighted_line(lx[:, None, :], reps, w)[0])
    point = exact & (residual < EXACT)
    low = np.where(point, p, np.where(np.isfinite(low), np.fmin(low, p), np.nan))
    high = np.where(point, p, np.where(np.isfinite(high), np.fmax(high, p), np.nan))
    return p, low, high, [""] * len(p)


def _judge_two_term(sub: dict[str, np.ndarray], reps: np.ndarray, w: np.ndarray, q: float, exact: bool,
                    x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The dominant term's exponent p of a·x^p + b·x^q, its interval, and why it cannot judge (or '')."""
    ls, ly = sub["ls"], sub["ly"]
    s, k = ls.shape
    ones = np.ones_like(ls)
    p = _leading_point(ls, ly, ones, q)
    loss, a, b = (v[..., 0] for v in _two_term(ls, ly, ones, p[:, None], q))
    fitted = a[:, None] * np.exp(p[:, None] * ls - ly) + b[:, None] * np.exp(q * ls - ly)  # fit / y
    residual = np.abs(fitted - 1).max(-1)
    lead_share_top = a / np.maximum(a + b * 1.0, 1e-300) * 1.0  # at the largest size s = 1 (in units of y_max)
    second_share_bottom = b * np.exp(q * ls[:, 0]) / np.maximum(b * np.exp(q * ls[:, 0]) + a * np.exp(p * ls[:, 0]), 1e-300)
    point = exact & (residual < EXACT)  # an exact fit of a deterministic metric: every refit gives p
    low, high, bounded_share = p.copy(), p.copy(), np.zeros(s)
    refit_rows = np.flatnonzero(~point)
    if len(refit_rows):  # bootstrap refits in a window around p
        r = refit_rows
        low_edge, high_edge = np.maximum(p[r] - WINDOW, q), np.minimum(p[r] + WINDOW, q + SPAN)
        usable = (w[r] > 0).sum(-1) >= 3
        shape = w[r].shape[:2]
        refit = _golden(ls[r][:, None, :], reps[r], w[r], q, np.broadcast_to(low_edge[:, None], shape),
                        np.broadcast_to(high_edge[:, None], shape))
        bounded = usable & ((refit - low_edge[:, None] < AT_BOUND) | (high_edge[:, None] - refit < AT_BOUND))
        bounded_share[r] = bounded.sum(-1) / np.maximum(usable.sum(-1), 1)
        with np.errstate(all="ignore"):
            rep_low, rep_high = _percentiles(np.where(usable & ~bounded, refit, np.nan))
        low[r], high[r] = np.fmin(rep_low, p[r]), np.fmax(rep_high, p[r])
        low[r] = np.where(np.isfinite(rep_low), low[r], np.nan)
        high[r] = np.where(np.isfinite(rep_high), high[r], np.nan)
    reasons = []
    for i in range(s):
        pure = second_share_bottom[i] < NEGLIGIBLE
        crossing = float(x[i, -1] * (b[i] / a[i]) ** (1 / (p[i] - q))) if a[i] > 0 and b[i] > 0 and p[i] > q else math.inf
        if p[i] - q < AT_BOUND or q + SPAN - p[i] < AT_BOUND:
            reasons.append(f"unidentified: the dominant term's fit hit its bound (p = {p[i]:.2f} of [{q:g}, {q + SPAN:g}] "
                           f"in a·x^p + b·x^{q:g}): the points bend more than two power terms explain; "
                           f"add repeats or sizes ({_more_sizes(x[i])})")
        elif bounded_share[i] > MAX_BOUNDED:
            reasons.append(f"unidentified: {bounded_share[i]:.0%} of the bootstrap refits of the dominant exponent hit "
                           f"their bounds; add repeats or sizes ({_more_sizes(x[i])})")
        elif lead_share_top[i] < 0.5:
            suggestion = (f"measure up to {_fmt(4 * crossing)} (the x^{p[i]:.2f} term passes the x^{q:g} term near "
                          f"{_fmt(crossing)})") if math.isfinite(crossing) else _more_sizes(x[i])
            reasons.append(f"second term dominates: at every size measured the x^{q:g} term carries more than the "
                           f"dominant one; {suggestion}")
        elif k < 4 and not pure:
            reasons.append(f"too few sizes: {k} sizes fit the three parameters of a·x^p + b·x^{q:g} exactly and test "
                           f"nothing; {_more_sizes(x[i])}")
        else:
            reasons.append("")
        if reasons[-1].startswith("unidentified"):
            p[i] = low[i] = high[i] = np.nan  # never print the search bounds as an interval
    return p, low, high, reasons


# ---- scalar helpers kept for callers that fit one series ----------------------------------


def fit_series(x: np.ndarray, y: np.ndarray, spread: np.ndarray | None, log_power: float = 0.0,
               samples: list[np.ndarray | None] | None = None, tol: float = DEFAULT_TOLERANCE) -> dict[str, Any]:
    """Fit one series (x sorted ascending, y > 0): the columns fit_frame gives, without the claim."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    y_fit = y / np.log(x) ** log_power if log_power else y
    batch = _fit_batch(x[None], y_fit[None], None if spread is None else np.asarray(spread, float)[None],
                       None if samples is None else [samples], np.array([tol]))
    return _row_of(batch, 0)


def _row_of(batch: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    def number(v: float) -> float | None:
        return None if not np.isfinite(v) else float(v)

    return {"exponent": float(batch["exponent"][i]), "ci_low": float(batch["ci_low"][i]),
            "ci_high": float(batch["ci_high"][i]), "r2": float(batch["r2"][i]),
            "local": [float(v) for v in batch["local"][i]],
            "leading_exponent": number(batch["leading_exponent"][i]),
            "leading_ci_low": number(batch["leading_ci_low"][i]), "leading_ci_high": number(batch["leading_ci_high"][i]),
            "lower_exponent": number(batch["lower_exponent"][i]), "reason": batch["reason"][i]}


def judge(claimed: float | None, fit: dict[str, Any], tol: float) -> tuple[str, str]:
    """(verdict, verdict_reason): the one rule. pass iff claimed ∈ [leading_ci_low − tol, leading_ci_high + tol]."""
    if claimed is None:
        return "no-claim", ""
    if fit.get("reason"):
        return "inconclusive", fit["reason"]
    low, high = fit.get("leading_ci_low"), fit.get("leading_ci_high")
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return "inconclusive", "no interval for the dominant exponent"
    if low - tol <= claimed <= high + tol:
        return "pass", ""
    return "fail", (f"claimed {claimed:g} lies outside the dominant exponent's interval [{low:.3f}, {high:.3f}] "
                    f"± {tol:g}")


# ---- frames -------------------------------------------------------------------------------------


def _variant(values: dict[str, Any]) -> str:
    return ",".join(f"{k}={_fmt(v)}" for k, v in values.items())


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _claims_key(claims: Any) -> Hashable:
    """A hashable form of a record's claims list."""
    if not isinstance(claims, (list, tuple)):
        return ()
    return tuple(tuple(c) if isinstance(c, (list, tuple)) else (c,) for c in claims)


def _claim_in(claims: tuple, metric: str, axis: str) -> tuple[float, float] | None:
    match = [(c[2], c[3] if len(c) > 3 else 0.0) for c in claims if len(c) > 2 and c[0] == metric and c[1] == axis]
    return match[0] if match else None


def fit_frame(frame: pd.DataFrame, tolerances: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per fitted (mechanism, variant, mode, metric, axis); columns FIT_COLUMNS.

    The frame is grouped once: the keys that vary within each (mechanism, mode) decide its
    axes and series, every series is reduced to a median per size, and all series with the
    same number of sizes are fitted together.
    """
    tolerances = tolerances or {}
    if frame.empty or "status" not in frame.columns:
        return pd.DataFrame(columns=FIT_COLUMNS)
    ok = frame[frame["status"] == "ok"].reset_index(drop=True)
    if ok.empty:
        return pd.DataFrame(columns=FIT_COLUMNS)
    keys = [k for k in KEYS if k in ok.columns]
    ok = ok.assign(_claims=ok["claims"].map(_claims_key) if "claims" in ok.columns else [()] * len(ok))
    counts = ok.groupby(["mechanism", "mode"], sort=False)[keys].nunique(dropna=True) if keys else None
    signature = {} if counts is None else {
        index: tuple(k for k in keys if row[k] > 1) for index, row in zip(counts.index, counts.to_dict("records"))}
    by_signature: dict[tuple, list] = {}
    for index, varying in signature.items():
        by_signature.setdefault(varying, []).append(index)
    rows: list[dict[str, Any]] = []
    pair = pd.MultiIndex.from_frame(ok[["mechanism", "mode"]])
    for varying, pairs in by_signature.items():
        part = ok[pair.isin(pairs)]
        for axis in [k for k in varying if k in NUMERIC_AXES]:
            others = [k for k in varying if k != axis]
            rows.extend(_fit_axis(part, axis, others, tolerances))
    order = {key: i for i, key in enumerate(signature)}
    result = pd.DataFrame(rows, columns=FIT_COLUMNS)
    if not result.empty:  # the order of first appearance of (mechanism, mode), as the records came
        rank = [order.get((m, mo), 0) for m, mo in zip(result["mechanism"], result["mode"])]
        result = result.iloc[np.argsort(rank, kind="stable")].reset_index(drop=True)
    return result


def _fit_axis(part: pd.DataFrame, axis: str, others: list[str], tolerances: dict[str, float]) -> list[dict[str, Any]]:
    """The fits of every series of `part` along `axis`."""
    part = part[pd.to_numeric(part[axis], errors="coerce") > 0]
    if part.empty:
        return []
    ids = part.groupby(["mechanism", "mode", *others], sort=False, dropna=False).ngroup().to_numpy()
    sizes = pd.to_numeric(part[axis]).to_numpy(dtype=float)
    info = pd.DataFrame({"series": ids, "size": sizes})
    first = part.assign(series=ids).drop_duplicates("series").set_index("series").sort_index()
    claim_sets = part.assign(series=ids).groupby("series")["_claims"].nunique()
    columns = [c for c in set(METRICS.values()) | {"flops_analytic", "time_iqr_s", "time_blocks"} if c in part.columns]
    medians = info
    if columns:
        medians = pd.concat([info, part[columns].apply(pd.to_numeric, errors="coerce").reset_index(drop=True)], axis=1)
    per_size = medians.groupby(["series", "size"], sort=True).median()
    n_sizes = per_size.groupby(level=0).size()
    samples = _samples_by_size(part, ids, sizes) if "time_samples_s" in part.columns else {}
    out = []
    for metric, column in METRICS.items():
        if column not in per_size.columns:
            continue
        values = per_size[column]
        values = values[values.notna() & (values > 0)]
        if values.empty:
            continue
        frame = values.reset_index()
        frame = frame[frame["series"].map(n_sizes).to_numpy() >= 3]
        length = frame.groupby("series")["size"].transform("size").to_numpy()
        for k in sorted(set(length[length >= 3])):
            chunk = frame[length == k]
            series = chunk["series"].to_numpy()[::k]
            x = chunk["size"].to_numpy(dtype=float).reshape(-1, k)
            y = chunk[column].to_numpy(dtype=float).reshape(-1, k)
            out.extend(_fit_chunk(metric, axis, others, series, x, y, first, claim_sets, per_size, samples, tolerances))
    return out


def _samples_by_size(part: pd.DataFrame, ids: np.ndarray, sizes: np.ndarray) -> dict[tuple[int, float], np.ndarray]:
    """(series, size) -> the pooled raw timing samples of its records, where records carry them."""
    pooled: dict[tuple[int, float], list] = {}
    for series, size, values in zip(ids, sizes, part["time_samples_s"]):
        if isinstance(values, (list, tuple, np.ndarray)) and len(values):
            pooled.setdefault((int(series), float(size)), []).append(np.asarray(values, dtype=float))
    return {key: np.concatenate(v) for key, v in pooled.items()}


def _fit_chunk(metric: str, axis: str, others: list[str], series: np.ndarray, x: np.ndarray, y: np.ndarray,
               first: pd.DataFrame, claim_sets: pd.Series, per_size: pd.DataFrame,
               samples: dict[tuple[int, float], np.ndarray], tolerances: dict[str, float]) -> list[dict[str, Any]]:
    """Fit S series of k sizes of one metric and build their rows."""
    tol = tolerances.get(metric, tolerance(metric))
    claims = [(_claim_in(first.at[s, "_claims"], metric, axis) if claim_sets.get(s, 0) == 1 else None) for s in series]
    constant = (np.abs(y - y[:, :1]) <= 1e-9 * np.abs(y[:, :1])).all(-1) & (metric != "time")
    keep = ~constant | np.array([c is not None for c in claims])  # a constant nobody claims teaches nothing
    if not keep.any():
        return []
    series, x, y, constant = series[keep], x[keep], y[keep], constant[keep]
    claims = [c for c, k in zip(claims, keep) if k]
    log_power = np.array([c[1] if c else 0.0 for c in claims], dtype=float)
    y_fit = np.where(log_power[:, None] != 0, y / np.log(x) ** log_power[:, None], y)
    positive = (y_fit > 0).all(-1) & np.isfinite(y_fit).all(-1)  # log(1) = 0 makes a log factor infinite
    if not positive.all():
        series, x, y, y_fit, constant, log_power = (v[positive] for v in (series, x, y, y_fit, constant, log_power))
        claims = [c for c, k in zip(claims, positive) if k]
        if not len(series):
            return []
    spread, pooled = None, None
    if metric == "time":
        spread = _iqr_spread(series, x, y, per_size)
        if samples:
            pooled = [[samples.get((int(s), float(v))) for v in row] for s, row in zip(series, x)]
    batch = _fit_batch(x, y_fit, spread, pooled, np.full(len(series), tol))
    analytic = _analytic(series, x, per_size, log_power) if metric == "flops" else None
    rows = []
    for i, s in enumerate(series):
        fit = _row_of(batch, i)
        if constant[i]:
            fit.update(exponent=0.0, ci_low=0.0, ci_high=0.0, r2=1.0, local=[0.0] * (x.shape[1] - 1),
                       leading_exponent=0.0, leading_ci_low=0.0, leading_ci_high=0.0, lower_exponent=None, reason="")
        claim = claims[i]
        verdict, reason = judge(None if claim is None else float(claim[0]), fit, tol)
        fit.pop("reason")
        record = first.loc[s]
        rows.append({
            "mechanism": record["mechanism"], "variant": _variant({k: record[k] for k in others}), "mode": record["mode"],
            "metric": metric, "axis": axis, **fit, "claimed": None if claim is None else claim[0], "tolerance": tol,
            "verdict": verdict, "verdict_reason": reason,
            "analytic_exponent": None if analytic is None or not np.isfinite(analytic[i]) else float(analytic[i]),
            "sizes": [float(v) for v in x[i]], "n_points": x.shape[1],
        })
    return rows


def _iqr_spread(series: np.ndarray, x: np.ndarray, y: np.ndarray, per_size: pd.DataFrame) -> np.ndarray | None:
    """Log-unit standard error of each size's median time, from its IQR: 1.253·(IQR/1.349)/median/√blocks."""
    if "time_iqr_s" not in per_size.columns:
        return None
    index = pd.MultiIndex.from_arrays([np.repeat(series, x.shape[1]), x.ravel()])
    iqr = per_size["time_iqr_s"].reindex(index).to_numpy(dtype=float).reshape(x.shape)
    blocks = (per_size["time_blocks"].reindex(index).to_numpy(dtype=float).reshape(x.shape)
              if "time_blocks" in per_size.columns else np.ones_like(y))
    blocks = np.maximum(np.nan_to_num(blocks, nan=1.0), 1.0)
    return np.nan_to_num(1.253 * iqr / y / 1.349 / np.sqrt(blocks), nan=0.0, posinf=0.0)


def _analytic(series: np.ndarray, x: np.ndarray, per_size: pd.DataFrame, log_power: np.ndarray) -> np.ndarray | None:
    """Upper-half log-log slope of the cost model's FLOPs at the same sizes."""
    if "flops_analytic" not in per_size.columns:
        return None
    index = pd.MultiIndex.from_arrays([np.repeat(series, x.shape[1]), x.ravel()])
    a = per_size["flops_analytic"].reindex(index).to_numpy(dtype=float).reshape(x.shape)
    a = np.where(log_power[:, None] != 0, a / np.log(x) ** log_power[:, None], a)
    valid = (a > 0).all(-1)
    with np.errstate(all="ignore"):
        slope = _weighted_line(np.log(x), np.log(np.where(a > 0, a, 1.0)), _upper_mask(np.log(x)).astype(float))[0]
    return np.where(valid, slope, np.nan)
