"""Scaling fits: exponents with bootstrap CIs, local slopes, and claim verdicts.

For each mechanism, variant, mode, metric and swept axis with at least three sizes, every
series is described and one estimator judges its claim.

Description (printed, never used to pass or fail a claim):

    exponent  = slope of log(metric) against log(axis) over the upper half of the range
                (the three largest sizes when the upper half holds fewer); a claimed log
                factor log(axis)^q is divided out first
    ci_low/high = its 95% interval (influence of each size and its noise, as for the leading exponent)
    r2        = R² of that line
    local     = slope between each pair of consecutive sizes
    analytic_exponent = the same slope of the cost model's FLOPs (flops only)

The judged estimator: the exponent p of the dominant term.

    leading_exponent = p of y = a·x^p + b·x^q (a, b ≥ 0, p in [q, 5]), least squares in relative
                error over all sizes. q is the next lower term a sequence mixer pays: q = 1
                (projections, linear in seq_len, beside an n² mixing term) where that model fits
                clearly better than q = 0 (a constant, e.g. a decode step's projections beside
                attention over n cached keys) with both terms present; q = 0 otherwise. Where q = 1
                fits better but not clearly, the interval spans both models' intervals. When b = 0
                fits best the model is a pure power law and p its plain exponent; below a raw slope
                of 0.05 (constants) p is the plain log-log slope over all sizes.
    leading_ci_low/high = p ± 1.96·se, se from each size's influence on p (the infinitesimal
                jackknife of reweighting sizes, as a bootstrap over points does, plus the delta
                method for noise): ∂p/∂w_j and ∂p/∂log y_j by the implicit function theorem on the
                loss. Noise is each size's standard error of its median time: from a bootstrap of the
                raw samples (`time_samples_s`) where records carry them, else from the IQR. An exact
                fit of a deterministic metric has no spread: its interval is (nearly) the point.
    lower_exponent = q (NaN when no second term was fitted)

The rule: a claim passes iff the claimed exponent lies in
[leading_ci_low − tolerance, leading_ci_high + tolerance]; so the claims that pass are one
interval. It fails otherwise, unless the data cannot identify the dominant term, when the
verdict is `inconclusive` and `verdict_reason` says why and which sizes would decide:

    - unidentified: the fit of p hits its bounds q or 5, the loss is flat in p, or the interval
      reaches past them (the data bend more than two power terms explain: noise, or another
      law); the leading columns are then left empty rather than printing the bounds as an interval;
    - second term dominates: the x^q term carries more than half of the metric even at the
      largest size; the message names the size where the terms cross and how far to measure;
    - too few sizes: three sizes and a non-negligible second term (three parameters through
      three points test nothing);
    - noise: the interval is wider than max(2·tolerance, 0.1), too wide to judge a claim.

A series is the set of records that differ only in the axis; `variant` names the other
config keys that vary between series of one mechanism (e.g. "impl=chunked"). Fits run
batched over all series with the same number of sizes. This module takes DataFrames and
never imports torch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd

from effprof.analyse.frames import fmt_value as _fmt
from effprof.analyse.frames import plain_value, variant_text
from effprof.config import KEYS
from effprof.store.metrics import CLAIMABLE, tolerance
from effprof.store.records import is_missing

BOOTSTRAP = 200  # bootstrap replicates of a size's median from its raw timing samples
NUMERIC_AXES = [k for k, info in KEYS.items() if info.type in (int, float)]
FIT_COLUMNS = [
    "mechanism", "variant", "config", "mode", "metric", "axis", "exponent", "ci_low", "ci_high", "r2", "claimed",
    "tolerance", "verdict", "analytic_exponent", "leading_exponent", "leading_ci_low", "leading_ci_high",
    "local", "sizes", "n_points", "lower_exponent", "verdict_reason",
]
P_MAX = 5.0  # p is sought in [q, P_MAX]
AT_BOUND = 0.01  # a fit within this of a bound of its search interval hit it
MAX_LOG_RANGE = math.log(1e100)  # a series spanning more is not fitted (its powers would overflow)
Z95 = 1.959964  # the normal quantile of a two-sided 95% interval
MIN_RESOLUTION = 0.1  # an interval wider than max(2·tolerance, this) does not resolve a claim
NEGLIGIBLE = 0.01  # a second term below this share of the metric at the smallest size is absent
EXACT = 1e-9  # largest relative residual of a fit that is exact
GOLDEN = (math.sqrt(5) - 1) / 2


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


BLOCK = 1 << 16  # numbers per (..., P) array of one block of series: a few hundred KB, held in cache


def _two_term(ls: np.ndarray, ly: np.ndarray, w: np.ndarray, p: np.ndarray, q: float, loss_only: bool = False
              ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(loss, a, b) of min over a, b ≥ 0 of Σ w·((a·s^p + b·s^q)/y − 1)² for each p.

    ls, ly, w: (S, ..., k) log sizes (largest 0), log values, weights; p: (S, ..., P). Returns (S, ..., P).
    Series are independent: they are solved in blocks of rows small enough to stay in cache.
    `loss_only`: a and b are not formed (None), for the searches that compare losses alone.
    """
    shape = np.broadcast_shapes(ls.shape[:-1], ly.shape[:-1], w.shape[:-1], p.shape[:-1]) + p.shape[-1:]
    rows = shape[0] if shape else 1
    per_row = math.prod(shape[1:])
    step = max(1, BLOCK // max(per_row, 1))
    if len(shape) < 2 or rows <= step:
        return _two_term_block(ls, ly, w, p, q, loss_only)

    def block(v: np.ndarray, start: int) -> np.ndarray:
        return v[start:start + step] if v.ndim == len(shape) and v.shape[0] == rows else v

    parts = [_two_term_block(block(ls, i), block(ly, i), block(w, i), block(p, i), q, loss_only) for i in range(0, rows, step)]
    return tuple(None if parts[0][j] is None else np.concatenate([part[j] for part in parts]) for j in range(3))  # type: ignore[return-value]


def _two_term_block(ls: np.ndarray, ly: np.ndarray, w: np.ndarray, p: np.ndarray, q: float, loss_only: bool = False
                    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """_two_term on one block of series. The sums over sizes run size by size on (..., P) arrays (k is
    small: an inner axis of 4 would cost numpy a loop per 4 numbers), added in numpy's own order
    (_sum_sizes), so every figure is bit for bit the one of `(w·u·u).sum(-1)` on the (..., P, k) array.
    Below 8 sizes that order is left to right, so the sums run in place as the sizes come; unit weights
    (every search but the influence's) are not multiplied in, since 1·x is x exactly."""
    k = ls.shape[-1]
    unit = bool((w == 1.0).all())
    running = k < 8
    # values spanning more than ~1e±150 overflow: their loss is inf (never chosen), not a warning
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        uu_terms, uv_terms, uy_terms, vv_terms, vy_terms = [], [], [], [], []
        for j in range(k):
            ls_j, ly_j = ls[..., j, None], ly[..., j, None]  # (..., 1)
            u = np.exp(p * ls_j - ly_j)  # (..., P) column of a at size j, in units of y
            v = np.exp(q * ls_j - ly_j)  # (..., 1) column of b
            if unit:
                wu, vv_j, vy_j = u, v * v, v
            else:
                w_j = w[..., j, None]
                wu, vv_j, vy_j = w_j * u, w_j * v * v, w_j * v
            uu_j, uv_j = wu * u, wu * v
            if not running:
                uu_terms.append(uu_j)
                uv_terms.append(uv_j)
                uy_terms.append(wu)  # the target is all ones
                vv_terms.append(vv_j)
                vy_terms.append(vy_j)
            elif j == 0:
                uu, uv, uy, vv, vy = uu_j, uv_j, wu.copy() if unit else wu, vv_j, vy_j.copy() if unit else vy_j
            else:
                uu += uu_j
                uv += uv_j
                uy += wu
                vv += vv_j
                vy += vy_j
        if not running:
            uu, uv, uy = _sum_sizes(uu_terms), _sum_sizes(uv_terms), _sum_sizes(uy_terms)  # (..., P)
            vv, vy = _sum_sizes(vv_terms), _sum_sizes(vy_terms)  # (..., 1): the b column is the same for every p
        n = w.sum(-1)[..., None]
        det = uu * vv - uv * uv
        both_ok = det > 1e-10 * uu * vv
        safe_det = np.where(both_ok, det, 1.0)
        a = (uy * vv - vy * uv) / safe_det
        b = (vy * uu - uy * uv) / safe_det
        both_ok &= (a >= 0) & (b >= 0)
        only_a = np.maximum(uy, 0) / np.where(uu > 0, uu, 1.0)
        only_b = np.maximum(vy, 0) / np.where(vv > 0, vv, 1.0)  # (..., 1), broadcast below
        loss_a, loss_b = n - only_a * uy, np.broadcast_to(n - only_b * vy, uu.shape)
        only_b = np.broadcast_to(only_b, uu.shape)
        loss = np.where(both_ok, n - (a * uy + b * vy), np.inf)
        # the least of (both, a alone, b alone), the first on ties and a NaN where one comes first (as argmin)
        take_a = (loss_a < loss) | np.isnan(loss_a)  # loss (both terms) is never NaN
        loss = np.where(take_a, loss_a, loss)
        take_b = (loss_b < loss) | (np.isnan(loss_b) & ~np.isnan(loss))
        loss = np.where(take_b, loss_b, loss)
        loss = np.where(np.isnan(loss), np.inf, loss)
        if loss_only:
            return loss, None, None
        a_out = np.where(take_b, 0.0, np.where(take_a, only_a, np.where(both_ok, a, 0.0)))
        b_out = np.where(take_b, only_b, np.where(take_a, 0.0, np.where(both_ok, b, 0.0)))
    return loss, a_out, b_out


def _sum_sizes(terms: list[np.ndarray]) -> np.ndarray:
    """Σ of the per-size arrays in numpy's pairwise order for a contiguous row of len(terms) numbers
    (sequential below 8; eight running sums, then their tree, then the rest; halves above 128)."""
    n = len(terms)
    if n < 8:
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total
    if n <= 128:
        partial = list(terms[:8])
        whole = n - n % 8
        for i in range(8, whole, 8):
            for j in range(8):
                partial[j] = partial[j] + terms[i + j]
        total = ((partial[0] + partial[1]) + (partial[2] + partial[3])) + ((partial[4] + partial[5]) + (partial[6] + partial[7]))
        for term in terms[whole:]:
            total = total + term
        return total
    half = n // 2
    half -= half % 8
    return _sum_sizes(terms[:half]) + _sum_sizes(terms[half:])


def _golden(ls: np.ndarray, ly: np.ndarray, w: np.ndarray, q: float, low: np.ndarray, high: np.ndarray,
            tol: float = 5e-4) -> np.ndarray:
    """p minimising the two-term loss in [low, high] (per element), by golden-section search."""
    low, high = low.astype(float), high.astype(float)
    steps = math.ceil(math.log(tol / max(float(np.max(high - low, initial=tol)), tol)) / math.log(GOLDEN)) + 1

    def loss(p: np.ndarray) -> np.ndarray:
        return _two_term(ls, ly, w, p[..., None], q, loss_only=True)[0][..., 0]

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
    """p of the two-term fit for each series: a grid over [q, P_MAX], then golden section."""
    grid = np.linspace(q, P_MAX, 41 if q else 51)  # steps of 0.1
    losses = _two_term(ls, ly, w, np.broadcast_to(grid, ls.shape[:-1] + grid.shape), q, loss_only=True)[0]
    best = grid[np.argmin(losses, axis=-1)]
    step = grid[1] - grid[0]
    return _golden(ls, ly, w, q, np.maximum(best - step, q), np.minimum(best + step, P_MAX))


def leading_exponent(x: np.ndarray, y: np.ndarray, q: float = 1.0) -> float:
    """p of y ≈ a·x^p + b·x^q with a, b ≥ 0, least squares in relative error, p in [q, 5]."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ls, ly = np.log(x / x.max()), np.log(y / y.max())
    return float(_leading_point(ls[None], ly[None], np.ones((1, len(x))), q)[0])


# ---- one batch: S series with the same number k of sizes -------------------------------------


def _interval(p: np.ndarray, by_weight: np.ndarray, by_value: np.ndarray, sigma: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """95% interval of an estimate from its influence on each size (infinitesimal jackknife + delta method).

    by_weight[j] = ∂p/∂w_j (a bootstrap reweights sizes: w_j − 1 has variance 1), by_value[j] =
    ∂p/∂log y_j (each size's log value has standard error sigma_j). This is the normal
    approximation of the bootstrap of `p` over sizes and noise, without drawing replicates.
    """
    se = np.sqrt((by_weight**2).sum(-1) + (by_value**2 * sigma**2).sum(-1))
    return p - Z95 * se, p + Z95 * se


def _line_influence(lx: np.ndarray, ly: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(slope, r2, ∂slope/∂w_j, ∂slope/∂ly_j) of the weighted log-log line, in closed form."""
    slope, r2 = _weighted_line(lx, ly, w)
    total = w.sum(-1, keepdims=True)
    dx = lx - (w * lx).sum(-1, keepdims=True) / np.where(total > 0, total, 1.0)
    dy = ly - (w * ly).sum(-1, keepdims=True) / np.where(total > 0, total, 1.0)
    sxx = (w * dx * dx).sum(-1, keepdims=True)
    sxx = np.where(sxx > 0, sxx, np.inf)
    residual = dy - np.nan_to_num(slope)[..., None] * dx
    return slope, r2, w * dx * residual / sxx, w * dx / sxx


def _fit_batch(x: np.ndarray, y: np.ndarray, sigma: np.ndarray, tol: np.ndarray) -> dict[str, np.ndarray]:
    """Describe and judge S series at once. x, y: (S, k), sizes ascending, y > 0; sigma: (S, k) standard
    error of each log value (0 for an exact metric); tol: (S,) the claims' tolerances."""
    s, k = x.shape
    lx, ly = np.log(x), np.log(y)
    ly_n = ly - ly.max(-1, keepdims=True)  # relative error is scale-free: keep the numbers near 1
    ls = lx - lx[:, -1:]
    upper = _upper_mask(lx).astype(float)
    slope, r2, by_weight, by_value = _line_influence(lx, ly, upper)
    ci_low, ci_high = _interval(slope, by_weight, by_value, sigma)
    local = np.diff(ly, axis=-1) / np.diff(lx, axis=-1)

    lead, lead_low, lead_high = np.full(s, np.nan), np.full(s, np.nan), np.full(s, np.nan)
    lower = np.full(s, np.nan)
    reasons = np.full(s, "", dtype=object)
    # the lower term: a constant (q = 0) or linear (q = 1), whichever two-term model fits all sizes
    # better (q = 0 on a tie); none below a raw slope of 0.05, where the series is constant-like
    terms = np.full(s, np.nan)
    ambiguous = np.array([], dtype=int)
    two = np.flatnonzero(np.isfinite(slope) & (slope > 0.05))
    points: dict[float, np.ndarray] = {}
    if len(two):
        ones = np.ones((len(two), k))
        fits = {q: _leading_point(ls[two], ly_n[two], ones, q) for q in (0.0, 1.0)}
        solved = {q: [v[:, 0] for v in _two_term(ls[two], ly_n[two], ones, p[:, None], q)] for q, p in fits.items()}
        losses = {q: v[0] for q, v in solved.items()}
        # q = 1 only where the constant model visibly misfits (rms relative residual above 1e-4, beyond
        # the search's precision) and the linear one fits at least 2× better with both terms present
        # and p off its bound; elsewhere (a pure power law, b·x alone) q = 0 judges the same law
        linear = ((losses[0.0] > 1e-8 * k) & (losses[1.0] < 0.5 * losses[0.0]) & (fits[1.0] - 1.0 >= AT_BOUND)
                  & (solved[1.0][1] > 0) & (solved[1.0][2] > 0))
        terms[two] = np.where(linear, 1.0, 0.0)
        points = fits
        # where the linear model fits better, with both terms, but not clearly (noise can hide which lower term
        # is there), both models are plausible: the interval spans both, rather than the constant model's alone
        plausible = (~linear & (losses[1.0] < losses[0.0]) & (fits[1.0] - 1.0 >= AT_BOUND)
                     & (solved[1.0][1] > 0) & (solved[1.0][2] > 0))
        ambiguous = two[plausible]
    for q in (None, 0.0, 1.0):
        index = np.flatnonzero(np.isnan(terms) if q is None else terms == q)
        if not len(index):
            continue
        if q is None:
            p, _, w_inf, v_inf = _line_influence(lx[index], ly_n[index], np.ones((len(index), k)))
            low, high = _interval(p, w_inf, v_inf, sigma[index])
            why = [""] * len(index)
        else:
            chosen = points[q][np.searchsorted(two, index)]
            p, low, high, why = _judge_two_term(ls[index], ly_n[index], sigma[index], q, x[index], chosen)
            lower[index] = q
        lead[index], lead_low[index], lead_high[index] = p, low, high
        reasons[index] = why
    if len(two) and len(ambiguous):
        chosen = points[1.0][np.searchsorted(two, ambiguous)]
        _, low, high, why = _judge_two_term(ls[ambiguous], ly_n[ambiguous], sigma[ambiguous], 1.0, x[ambiguous], chosen)
        usable = np.array([w == "" for w in why]) & np.isfinite(low) & np.isfinite(high) & np.isfinite(lead_low[ambiguous])
        widen = ambiguous[usable]
        lead_low[widen] = np.minimum(lead_low[widen], low[usable])
        lead_high[widen] = np.maximum(lead_high[widen], high[usable])
    resolution = np.maximum(2 * tol, MIN_RESOLUTION)
    wide = (reasons == "") & (lead_high - lead_low > resolution)
    for i in np.flatnonzero(wide):
        reasons[i] = (f"noise: the dominant exponent's interval [{lead_low[i]:.2f}, {lead_high[i]:.2f}] is wider than "
                      f"{resolution[i]:.2g}, too wide to judge a claim; add repeats or larger sizes ({_more_sizes(x[i])})")
    return {"exponent": slope, "ci_low": ci_low, "ci_high": ci_high, "r2": r2, "local": local,
            "leading_exponent": lead, "leading_ci_low": lead_low, "leading_ci_high": lead_high,
            "lower_exponent": lower, "reason": reasons}


def _more_sizes(x: np.ndarray) -> str:
    largest = float(np.max(x))
    return f"e.g. add sizes {_fmt(largest * 2)} and {_fmt(largest * 4)}"


def _two_term_influence(ls: np.ndarray, ly: np.ndarray, p: np.ndarray, q: float
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(∂p/∂w_j, ∂p/∂ly_j, curvature) of the two-term fit's minimiser, by the implicit function theorem:
    dp/dθ = −(∂²L/∂p∂θ)/(∂²L/∂p²), the second derivatives of the loss L by central differences."""
    k = ly.shape[-1]
    h, e = 1e-3, 1e-3
    eye = np.eye(k)
    # the data, unperturbed and with each weight and each log value moved by ±e: (S, 1 + 4k, k)
    w = np.concatenate([np.ones((1, k)), 1 + e * eye, 1 - e * eye, np.ones((2 * k, k))])
    dly = np.concatenate([np.zeros((1 + 2 * k, k)), e * eye, -e * eye])
    lys = ly[:, None, :] + dly[None]
    ws = np.broadcast_to(w[None], lys.shape)
    steps = np.array([-h, 0.0, h])
    loss = _two_term(np.broadcast_to(ls[:, None, :], lys.shape), lys, ws, p[:, None, None] + steps, q, loss_only=True)[0]  # (S, 1+4k, 3)
    slope = (loss[..., 2] - loss[..., 0]) / (2 * h)  # ∂L/∂p at p, for each perturbation
    curvature = (loss[:, 0, 2] - 2 * loss[:, 0, 1] + loss[:, 0, 0]) / h**2
    safe = np.where(curvature > 0, curvature, np.inf)
    by_weight = -(slope[:, 1:1 + k] - slope[:, 1 + k:1 + 2 * k]) / (2 * e) / safe[:, None]
    by_value = -(slope[:, 1 + 2 * k:1 + 3 * k] - slope[:, 1 + 3 * k:]) / (2 * e) / safe[:, None]
    return by_weight, by_value, curvature


def _judge_two_term(ls: np.ndarray, ly: np.ndarray, sigma: np.ndarray, q: float, x: np.ndarray, p: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The dominant term's exponent p (fitted: `p`) of a·x^p + b·x^q, its interval, and why it cannot judge (or '')."""
    s, k = ls.shape
    ones = np.ones_like(ls)
    p = p.copy()
    a, b = (v[..., 0] for v in _two_term(ls, ly, ones, p[:, None], q)[1:])
    lead_share_top = a / np.maximum(a + b, 1e-300)  # at the largest size s = 1 both terms are in units of y
    bottom_a, bottom_b = a * np.exp(p * ls[:, 0]), b * np.exp(q * ls[:, 0])
    second_share_bottom = bottom_b / np.maximum(bottom_a + bottom_b, 1e-300)
    by_weight, by_value, curvature = _two_term_influence(ls, ly, p, q)
    low, high = _interval(p, by_weight, by_value, sigma)
    with np.errstate(invalid="ignore"):  # the same tests as the loop below, for every series at once
        flagged = ((p - q < AT_BOUND) | (P_MAX - p < AT_BOUND) | ~(curvature > 0) | (low < q) | (high > P_MAX)
                   | (lead_share_top < 0.5) | ((k < 4) & (second_share_bottom >= NEGLIGIBLE)))
    reasons = [""] * s  # a series none of the tests flags judges its claim; only the flagged ones get a message
    for i in np.flatnonzero(flagged):
        crossing = math.inf  # the size where the two terms are equal
        if a[i] > 0 and b[i] > 0 and p[i] - q > AT_BOUND:
            crossing = float(x[i, -1] * math.exp(min(math.log(b[i] / a[i]) / (p[i] - q), 700.0)))
        if p[i] - q < AT_BOUND or P_MAX - p[i] < AT_BOUND or not curvature[i] > 0:
            where = f"p = {p[i]:.2f}, at a bound of [{q:g}, {P_MAX:g}]" if curvature[i] > 0 else "the loss is flat in p"
            reasons[i] = (f"unidentified: the dominant term's fit in a·x^p + b·x^{q:g} is not determined ({where}); "
                          f"the points bend more than two power terms explain: noise, or a different law; "
                          f"add repeats or sizes ({_more_sizes(x[i])})")
        elif low[i] < q or high[i] > P_MAX:
            reasons[i] = (f"unidentified: the dominant exponent's interval [{low[i]:.2f}, {high[i]:.2f}] reaches past "
                          f"the bounds [{q:g}, {P_MAX:g}] of a·x^p + b·x^{q:g}; add repeats or sizes "
                          f"({_more_sizes(x[i])})")
        elif lead_share_top[i] < 0.5:
            suggestion = (f"measure up to {_fmt(round(4 * crossing))} (the x^{p[i]:.2f} term passes the x^{q:g} term "
                          f"near {_fmt(round(crossing))})") if math.isfinite(crossing) else _more_sizes(x[i])
            reasons[i] = (f"second term dominates: at every size measured the x^{q:g} term carries more than the "
                          f"dominant one; {suggestion}")
        elif k < 4 and second_share_bottom[i] >= NEGLIGIBLE:
            reasons[i] = (f"too few sizes: {k} sizes fit the three parameters of a·x^p + b·x^{q:g} exactly and test "
                          f"nothing; {_more_sizes(x[i])}")
        if reasons[i].startswith("unidentified"):
            p[i] = low[i] = high[i] = np.nan  # never print the search bounds as an interval
        elif reasons[i].startswith("too few sizes"):
            low[i] = high[i] = np.nan  # an exact fit through three points has no interval to show
    return p, low, high, reasons


# ---- claims with a log factor ------------------------------------------------------------------


def _log_claim_lower_terms(x: np.ndarray, y: np.ndarray, sigma: np.ndarray, claimed: float, log_power: float) -> str:
    """Why a failed claim y ∝ x^c·log(x)^r cannot be judged at these sizes (or '' when the failure stands).

    The fit judges y / log(x)^r, where a lower term without the log factor (b·x^q: projections and gating
    beside an FFT convolution, linear in N) reads as an exponent below c. The claimed law with such a term,

        y ≈ a·x^c·log(x)^r + b·x^q,   a, b ≥ 0, q ∈ {0, 1}, q ≤ c   (least squares in relative error),

    is fitted with c fixed. Where it fits within the noise (rms relative residual ≤ max(0.5%, 2·rms σ)) and the
    log term is present (≥ 1% of the metric at the largest size), the failure is the lower term's: these
    sizes cannot judge the claim, inconclusive, naming the claimed term's share and the size where it would
    pass the lower one. A series with no log term (a pure x^q: N where N log N was claimed) or one the
    claimed law does not fit keeps its failure: N log N is told apart from N.
    """
    ls, ly = np.log(x / x[-1]), np.log(y / y[-1])
    log_x = np.log(x)
    if not (log_x > 0).all():
        return ""
    lead = np.exp(claimed * ls + log_power * np.log(log_x / log_x[-1]) - ly)  # the claimed term over y, 1 at the top
    best = None
    for q in (0.0, 1.0):
        if q > claimed:
            continue
        loss, a, b = _nonnegative_pair(lead, np.exp(q * ls - ly))
        if best is None or loss < best[0]:
            best = (loss, a, b, q)
    if best is None:
        return ""
    loss, a, b, q = best
    rms = math.sqrt(max(loss, 0.0) / len(x))
    allowed = max(0.005, 2 * math.sqrt(float(np.mean(np.square(sigma)))))
    share = a / (a + b) if a + b > 0 else 0.0  # the claimed term's share of the metric at the largest size
    if rms > allowed or share < NEGLIGIBLE:
        return ""
    passes = next((2.0**k * x[-1] for k in range(1, 64)
                   if a * 2.0 ** (k * claimed) * (np.log(2.0**k * x[-1]) / log_x[-1]) ** log_power > b * 2.0 ** (k * q)), None)
    if share >= 0.5:
        where = "measure larger sizes, where it weighs less"
    elif passes:
        where = f"the claimed term passes it near {_fmt(round(passes))}"
    else:
        where = f"the claimed term does not pass it below 2^63 × {_fmt(x[-1])}"
    law = f"x^{claimed:g}·log(x)^{log_power:g}"
    head = "lower terms dominate" if share < 0.5 else "a lower term biases the fit"
    return (f"{head}: the claimed {law} term carries {100 * share:.0f}% of the metric at the largest size and a lower "
            f"x^{q:g} term without the log factor the rest; the claimed law with that term fits to {100 * rms:.2g}%, so these "
            f"sizes cannot judge its exponent ({where})")


def _nonnegative_pair(u: np.ndarray, v: np.ndarray) -> tuple[float, float, float]:
    """(loss, a, b) of min over a, b ≥ 0 of Σ (a·u + b·v − 1)²: both columns, or the better single one."""
    uu, vv, uv, uy, vy = float(u @ u), float(v @ v), float(u @ v), float(u.sum()), float(v.sum())
    n = float(len(u))
    candidates = []
    det = uu * vv - uv * uv
    if det > 1e-12 * uu * vv:
        a, b = (uy * vv - vy * uv) / det, (vy * uu - uy * uv) / det
        if a >= 0 and b >= 0:
            candidates.append((n - (a * uy + b * vy), a, b))
    if uu > 0:
        a = max(uy, 0.0) / uu
        candidates.append((n - a * uy, a, 0.0))
    if vv > 0:
        b = max(vy, 0.0) / vv
        candidates.append((n - b * vy, 0.0, b))
    return min(candidates) if candidates else (math.inf, 0.0, 0.0)


# ---- scalar helpers kept for callers that fit one series ----------------------------------


def fit_series(x: np.ndarray, y: np.ndarray, spread: np.ndarray | None, log_power: float = 0.0,
               tol: float = 0.1) -> dict[str, Any]:
    """Fit one series (x sorted ascending, y > 0; spread: each value's log-unit standard error, or None
    when exact): the columns fit_frame gives, and `reason` (why a claim could not be judged, or '')."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    y_fit = y / np.log(x) ** log_power if log_power else y
    sigma = np.zeros_like(x) if spread is None else np.asarray(spread, float)
    batch = _fit_batch(x[None], y_fit[None], sigma[None], np.array([tol]))
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
    """(verdict, verdict_reason) of one claim against a fit (fit_series' columns): the one rule, see judge_many."""
    def value(key: str) -> float:
        v = fit.get(key)
        return math.nan if v is None else float(v)

    verdicts, reasons = judge_many(np.array([math.nan if claimed is None else claimed]), np.array([value("leading_ci_low")]),
                                   np.array([value("leading_ci_high")]), np.array([fit.get("reason") or ""], dtype=object),
                                   np.array([tol]))
    return str(verdicts[0]), str(reasons[0])


def judge_many(claimed: np.ndarray, low: np.ndarray, high: np.ndarray, reason: np.ndarray, tol: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """The one rule, for arrays of claims: no-claim where claimed is NaN; inconclusive where the fit
    gives a reason it cannot judge (or no interval); else pass iff low − tol ≤ claimed ≤ high + tol."""
    with np.errstate(invalid="ignore"):
        inside = (low - tol <= claimed) & (claimed <= high + tol)
    no_interval = ~(np.isfinite(low) & np.isfinite(high))
    reason = np.where((reason == "") & no_interval, "no interval for the dominant exponent", reason)
    verdict = np.where(np.isnan(claimed), "no-claim",
                       np.where(reason != "", "inconclusive", np.where(inside, "pass", "fail"))).astype(object)
    out = np.where(verdict == "inconclusive", reason, "").astype(object)
    for i in np.flatnonzero(verdict == "fail"):
        out[i] = (f"claimed {claimed[i]:g} lies outside the dominant exponent's interval [{low[i]:.3f}, {high[i]:.3f}] "
                  f"± {tol[i]:g}")
    return verdict, out


# ---- frames -------------------------------------------------------------------------------------


def _claims_key(claims: Any) -> Hashable:
    """A hashable form of a record's claims list."""
    if not isinstance(claims, (list, tuple)):
        return ()
    if all(type(c) is list for c in claims):
        return tuple(map(tuple, claims))
    return tuple(tuple(c) if isinstance(c, (list, tuple)) else (c,) for c in claims)


def _claims_keys(claims: list[Any]) -> list[Hashable]:
    """_claims_key of each row's claims, worked out once per claims object (records.read_frame stores each distinct
    claims list once, so 100k rows hold a few dozen)."""
    known: dict[int, Hashable] = {}
    out = []
    for c in claims:
        key = known.get(id(c))
        if key is None:
            key = known[id(c)] = _claims_key(c)
        out.append(key)
    return out


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
    ok = ok.assign(_claims=_claims_keys(ok["claims"].tolist()) if "claims" in ok.columns else [()] * len(ok))
    counts = ok.groupby(["mechanism", "mode"], sort=False)[keys].nunique(dropna=True) if keys else None
    signature = {} if counts is None else {
        index: tuple(k for k in keys if row[k] > 1) for index, row in zip(counts.index, counts.to_dict("records"), strict=False)}
    by_signature: dict[tuple, list] = {}
    for index, varying in signature.items():
        by_signature.setdefault(varying, []).append(index)
    rows: list[pd.DataFrame] = []
    pair = pd.MultiIndex.from_frame(ok[["mechanism", "mode"]])
    for varying, pairs in by_signature.items():
        part = ok[pair.isin(pairs)]
        for axis in [k for k in varying if k in NUMERIC_AXES]:
            others = [k for k in varying if k != axis]
            rows.extend(_fit_axis(part, axis, others, tolerances))
    order = {key: i for i, key in enumerate(signature)}
    if not rows:
        return pd.DataFrame(columns=FIT_COLUMNS)
    result = pd.concat(rows, ignore_index=True)
    if not result.empty:  # the order of first appearance of (mechanism, mode), as the records came
        rank = [order.get((m, mo), 0) for m, mo in zip(result["mechanism"], result["mode"], strict=False)]
        result = result.iloc[np.argsort(rank, kind="stable")].reset_index(drop=True)
    return result


def _fit_axis(part: pd.DataFrame, axis: str, others: list[str], tolerances: dict[str, float]) -> list[pd.DataFrame]:
    """The fits of every series of `part` along `axis`."""
    part = part[pd.to_numeric(part[axis], errors="coerce") > 0]
    if part.empty:
        return []
    ids = part.groupby(["mechanism", "mode", *others], sort=False, dropna=False).ngroup().to_numpy()
    sizes = pd.to_numeric(part[axis]).to_numpy(dtype=float)
    info = pd.DataFrame({"series": ids, "size": sizes})
    first = part.assign(series=ids).drop_duplicates("series").sort_values("series")
    unanimous = (part.assign(series=ids).groupby("series")["_claims"].nunique() == 1).sort_index().to_numpy()
    meta = {  # per series id: what its rows print, and its claims when all its records agree
        "mechanism": first["mechanism"].tolist(), "mode": first["mode"].tolist(),
        # the series' structured key: the config that tells it from the mechanism's other series (frames.series_rows joins on it)
        "config": [{k: plain_value(v) for k, v in zip(others, values, strict=True) if not is_missing(v)}
                   for values in zip(*(first[k].tolist() for k in others), strict=True)] if others else [{} for _ in range(len(first))],
        "claims": [c if ok else None for c, ok in zip(first["_claims"].tolist(), unanimous, strict=False)],
    }
    meta["variant"] = [variant_text(c) for c in meta["config"]]  # its display text (the --json contract); never parsed
    columns = [c for c in set(CLAIMABLE.values()) | {"flops_analytic", "time_iqr_s", "time_blocks"} if c in part.columns]
    medians = info
    if columns:
        medians = pd.concat([info, part[columns].apply(pd.to_numeric, errors="coerce").reset_index(drop=True)], axis=1)
    per_size = medians.groupby(["series", "size"], sort=True).median()
    if "time_samples_s" in part.columns:
        per_size["sample_se"] = _sample_noise(info, part["time_samples_s"].tolist()).reindex(per_size.index)
    n_sizes = per_size.groupby(level=0).size()
    out = []
    for metric, column in CLAIMABLE.items():
        if column not in per_size.columns:
            continue
        values = per_size[column]
        present = (values.notna() & (values > 0)).to_numpy()
        values = values[present]
        if values.empty:
            continue
        frame = values.reset_index().assign(_row=np.flatnonzero(present))  # _row: the position in per_size
        frame = frame[frame["series"].map(n_sizes).to_numpy() >= 3]
        length = frame.groupby("series")["size"].transform("size").to_numpy()
        for k in sorted(set(length[length >= 3])):
            chunk = frame[length == k]
            series = chunk["series"].to_numpy()[::k]
            x = chunk["size"].to_numpy(dtype=float).reshape(-1, k)
            y = chunk[column].to_numpy(dtype=float).reshape(-1, k)
            at = chunk["_row"].to_numpy().reshape(-1, k)
            rows = _fit_chunk(metric, axis, series, x, y, at, meta, per_size, tolerances)
            if rows is not None:
                out.append(rows)
    return out


def _sample_noise(info: pd.DataFrame, samples: list[Any], seed: int = 0, chunk: int = 512) -> pd.Series:
    """Per (series, size): the standard error, in log units, of the median of the pooled raw timing samples.

    A bootstrap of the samples, without drawing resamples: the median of n draws with replacement
    is the sample quantile at a Beta((n+1)/2, (n+1)/2) level, so each replicate is one quantile.
    Sizes whose records carry fewer than two samples get NaN (their IQR is used instead). The draws come in
    chunks of `chunk` sizes (small enough that a chunk's (chunk, BOOTSTRAP) arrays stay in cache); the chunking
    does not change them: one generator draws them all in order.
    """
    lengths = np.fromiter((len(v) if isinstance(v, (list, tuple, np.ndarray)) else 0 for v in samples),
                          dtype=np.int64, count=len(samples))
    if not lengths.any():
        return pd.Series(dtype=float)
    flat = np.fromiter(itertools.chain.from_iterable(v for v, n in zip(samples, lengths, strict=False) if n),
                       dtype=float, count=int(lengths.sum()))
    keys = info[lengths > 0]
    codes = keys.groupby(["series", "size"], sort=False).ngroup().to_numpy()  # numbered in order of appearance
    groups = keys.drop_duplicates()
    group = np.repeat(codes, lengths[lengths > 0])
    order = np.lexsort((flat, group))
    flat, count = flat[order], np.bincount(group, minlength=len(groups))
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    rng = np.random.default_rng(seed)
    se = np.full(len(groups), np.nan)

    def quantile(g: np.ndarray, level: np.ndarray) -> np.ndarray:  # linear interpolation, as np.quantile
        position = level * (count[g, None] - 1)
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, count[g, None] - 1)
        frac = position - below
        return flat[start[g, None] + below] * (1 - frac) + flat[start[g, None] + above] * frac

    for first in range(0, len(groups), chunk):
        g = np.arange(first, min(first + chunk, len(groups)))
        g = g[count[g] >= 2]
        if not len(g):
            continue
        half = (count[g, None] + 1) / 2
        medians = quantile(g, rng.beta(half, half, (len(g), BOOTSTRAP)))
        centre = quantile(g, np.full((len(g), 1), 0.5))
        with np.errstate(all="ignore"):
            se[g] = np.log(medians / centre).std(axis=1)
    return pd.Series(se, index=pd.MultiIndex.from_frame(groups, names=["series", "size"]))


def _fit_chunk(metric: str, axis: str, series: np.ndarray, x: np.ndarray, y: np.ndarray, at: np.ndarray,
               meta: dict[str, list], per_size: pd.DataFrame, tolerances: dict[str, float]) -> pd.DataFrame | None:
    """Fit S series of k sizes of one metric: their rows, columns FIT_COLUMNS (None when none is fitted).
    at: (S, k) the rows of per_size that hold each point's medians."""
    tol = tolerances.get(metric, tolerance(metric))
    found: dict[tuple, tuple[float, float] | None] = {None: None}  # most series share one claims list: look it up once
    claims = []
    for s in series:
        key = meta["claims"][s]
        if key not in found:
            found[key] = _claim_in(key, metric, axis)
        claims.append(found[key])
    constant = (np.abs(y - y[:, :1]) <= 1e-9 * np.abs(y[:, :1])).all(-1) & (metric != "time")
    keep = ~constant | np.array([c is not None for c in claims])  # a constant nobody claims teaches nothing
    log_power = np.array([c[1] if c else 0.0 for c in claims], dtype=float)
    with np.errstate(all="ignore"):
        y_fit = np.where(log_power[:, None] != 0, y / np.log(x) ** log_power[:, None], y)
    keep &= (y_fit > 0).all(-1) & np.isfinite(y_fit).all(-1)  # log(1) = 0 makes a log factor infinite
    with np.errstate(all="ignore"):  # no measured metric spans 1e100 within a series: such a file is crafted
        keep &= np.log(y_fit.max(-1) / y_fit.min(-1)) < MAX_LOG_RANGE
    if not keep.any():
        return None
    series, x, y, y_fit, at, constant, log_power = (v[keep] for v in (series, x, y, y_fit, at, constant, log_power))
    claims = [c for c, k in zip(claims, keep, strict=False) if k]
    sigma = _time_noise(at, y, per_size) if metric == "time" else np.zeros_like(x)
    batch = _fit_batch(x, y_fit, sigma, np.full(len(series), tol))
    analytic = _analytic(at, x, per_size, log_power) if metric == "flops" else None
    fit = dict(batch)
    if constant.any():  # exactly constant values: exponent 0, no interval to speak of
        for key in ("exponent", "ci_low", "ci_high", "leading_exponent", "leading_ci_low", "leading_ci_high"):
            fit[key] = np.where(constant, 0.0, fit[key])
        fit["r2"] = np.where(constant, 1.0, fit["r2"])
        fit["local"] = np.where(constant[:, None], 0.0, fit["local"])
        fit["lower_exponent"] = np.where(constant, np.nan, fit["lower_exponent"])
        fit["reason"] = np.where(constant, "", fit["reason"]).astype(object)
    claimed = np.array([math.nan if c is None else float(c[0]) for c in claims])
    verdict, reason = judge_many(claimed, fit["leading_ci_low"], fit["leading_ci_high"], fit["reason"],
                                 np.full(len(series), tol))
    for i in np.flatnonzero((log_power != 0) & (verdict == "fail")):
        why = _log_claim_lower_terms(x[i], y[i], sigma[i], claimed[i], log_power[i])
        if why:
            verdict[i], reason[i] = "inconclusive", why
    count = len(series)
    return pd.DataFrame({
        "mechanism": [meta["mechanism"][s] for s in series], "variant": [meta["variant"][s] for s in series], "config": [meta["config"][s] for s in series],
        "mode": [meta["mode"][s] for s in series], "metric": [metric] * count, "axis": [axis] * count,
        "exponent": fit["exponent"], "ci_low": fit["ci_low"], "ci_high": fit["ci_high"], "r2": fit["r2"],
        "claimed": [None if c is None else c[0] for c in claims], "tolerance": np.full(count, tol),
        "verdict": verdict, "analytic_exponent": np.full(count, np.nan) if analytic is None else analytic,
        "leading_exponent": fit["leading_exponent"], "leading_ci_low": fit["leading_ci_low"],
        "leading_ci_high": fit["leading_ci_high"], "local": fit["local"].tolist(), "sizes": x.tolist(),
        "n_points": np.full(count, x.shape[1]), "lower_exponent": fit["lower_exponent"], "verdict_reason": reason,
    }, columns=FIT_COLUMNS)


def _time_noise(at: np.ndarray, y: np.ndarray, per_size: pd.DataFrame) -> np.ndarray:
    """(S, k) log-unit standard error of each size's median time: from the raw samples where records
    carry them (`time_samples_s`), else from the IQR: 1.253·(IQR/1.349)/median/√blocks; else 0."""
    def column(name: str) -> np.ndarray:
        if name not in per_size.columns:
            return np.full(at.shape, np.nan)
        return per_size[name].to_numpy(dtype=float)[at]

    blocks = np.maximum(np.nan_to_num(column("time_blocks"), nan=1.0), 1.0)
    with np.errstate(all="ignore"):
        from_iqr = np.nan_to_num(1.253 * column("time_iqr_s") / y / 1.349 / np.sqrt(blocks), nan=0.0, posinf=0.0)
    from_samples = column("sample_se")
    return np.where(np.isfinite(from_samples), from_samples, from_iqr)


def _analytic(at: np.ndarray, x: np.ndarray, per_size: pd.DataFrame, log_power: np.ndarray) -> np.ndarray | None:
    """Upper-half log-log slope of the cost model's FLOPs at the same sizes (at: their rows of per_size)."""
    if "flops_analytic" not in per_size.columns:
        return None
    a = per_size["flops_analytic"].to_numpy(dtype=float)[at]
    with np.errstate(all="ignore"):
        a = np.where(log_power[:, None] != 0, a / np.log(x) ** log_power[:, None], a)
        valid = (a > 0).all(-1)
        slope = _weighted_line(np.log(x), np.log(np.where(a > 0, a, 1.0)), _upper_mask(np.log(x)).astype(float))[0]
    return np.where(valid, slope, np.nan)
