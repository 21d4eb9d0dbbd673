"""Analysis for papers, on DataFrames of records (no torch): crossovers, baseline
comparison, and the complexity comparison table.

Crossovers: for every pair of series measured in one mode, and each metric, the
size on the swept axis where one becomes cheaper than the other, interpolated
linearly in log(size)–log(value) between the two measured sizes that bracket the
sign change; "none in range" when one stays cheaper throughout.

Baseline comparison: each point of a new run against the same point (same
mechanism, mode and config) of an old run: the ratio new/old, and a flag when the
change is beyond the noise — for time, beyond the two runs' combined relative IQR
(at least 5%); for counted quantities (FLOPs, bytes), beyond 0.5%.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd

from effprof.config import KEYS
from effprof.frames import add_labels, fmt_value, swept_axis
from effprof.records import is_missing, point_identity

CROSSOVER_METRICS = {"time": "time_s", "flops": "flops_counted", "peak_bytes": "peak_bytes", "state_bytes": "state_bytes"}
TIME_NOISE_FLOOR = 0.05
COUNT_TOLERANCE = 0.005


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "ok"] if "status" in frame.columns else frame


def crossovers(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Every pair of series × metric in each mode: where (if anywhere in range) their order flips."""
    ok = _ok(frame)
    axis = swept_axis(ok)
    if ok.empty or axis is None:
        return []
    ok = add_labels(ok, axis)
    out = []
    for mode, group in ok.groupby("mode", sort=False):
        series = {name: rows for name, rows in group.groupby("series", sort=False)}
        for metric, column in CROSSOVER_METRICS.items():
            if column not in group.columns:
                continue
            curves = {}
            for name, rows in series.items():
                values = rows.groupby(axis)[column].median().dropna()
                values = values[values > 0]
                if len(values) >= 2:
                    curves[name] = values
            for a, b in itertools.combinations(curves, 2):
                crossing = _crossing(curves[a], curves[b])
                names = {"a": a, "b": b, None: None}
                crossing["cheaper_below"], crossing["cheaper_above"] = names[crossing["cheaper_below"]], names[crossing["cheaper_above"]]
                out.append({"mode": mode, "metric": metric, "axis": axis, "a": a, "b": b, **crossing})
    return out


def _crossing(a: pd.Series, b: pd.Series) -> dict[str, Any]:
    sizes = sorted(set(a.index) & set(b.index))
    if len(sizes) < 2:
        return {"at": None, "cheaper_below": None, "cheaper_above": None, "note": "too few common sizes"}
    x = np.log(np.array(sizes, dtype=float))
    d = np.log(a[sizes].to_numpy(dtype=float)) - np.log(b[sizes].to_numpy(dtype=float))  # < 0: a cheaper
    for i in range(len(sizes) - 1):
        if d[i] == 0 or d[i] * d[i + 1] < 0:
            t = 0.0 if d[i] == 0 else d[i] / (d[i] - d[i + 1])
            at = float(math.exp(x[i] + t * (x[i + 1] - x[i])))
            below, above = ("a", "b") if d[i + 1] > 0 or (d[i] == 0 and d[i + 1] > 0) else ("b", "a")
            return {"at": at, "cheaper_below": below, "cheaper_above": above, "note": ""}
    cheaper = "a" if d.mean() < 0 else "b"
    return {"at": None, "cheaper_below": cheaper, "cheaper_above": cheaper, "note": "none in range"}


def baseline_diff(new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """Point-by-point ratios new/old for time, FLOPs and memory, with a flag beyond the noise."""
    new, old = _ok(new), _ok(old)
    if new.empty or old.empty:
        return pd.DataFrame()
    old_by_key = {point_identity(r.to_dict()): r for _, r in old.iterrows()}  # the latest record of a point wins
    varying = [k for k in KEYS if k in new.columns and new[k].dropna().astype(str).nunique() > 1]
    rows = []
    for _, r in new.iterrows():
        o = old_by_key.get(point_identity(r.to_dict()))
        if o is None:
            continue
        key = ", ".join(f"{k}={fmt_value(r[k])}" for k in varying if not is_missing(r[k])) or "defaults"
        for metric in ("time_s", "flops_counted", "peak_bytes", "state_bytes"):
            if metric not in r or metric not in o or not _positive(r[metric]) or not _positive(o[metric]):
                continue
            ratio = float(r[metric]) / float(o[metric])
            if metric == "time_s":
                band = max(TIME_NOISE_FLOOR, _rel(r, "time_iqr_s", metric) + _rel(o, "time_iqr_s", metric))
            else:
                band = COUNT_TOLERANCE
            change = "same" if abs(math.log(ratio)) <= math.log1p(band) else ("worse" if ratio > 1 else "better")
            rows.append({"mechanism": r["mechanism"], "mode": r["mode"], "point": key, "metric": metric, "old": float(o[metric]),
                         "new": float(r[metric]), "ratio": ratio, "noise_band": band, "change": change})
    return pd.DataFrame(rows)


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(float(value)) and float(value) > 0


def _rel(row: pd.Series, iqr: str, metric: str) -> float:
    value = row.get(iqr)
    return float(value) / float(row[metric]) if _positive(value) else 0.0


def complexity_table(frame: pd.DataFrame, fits: pd.DataFrame) -> list[dict[str, Any]]:
    """Per mechanism: theoretical prefill/train cost, decode cost per token and state (from its spec),
    beside the measured exponents along the swept axis and their verdicts."""
    if frame.empty or "complexity" not in frame.columns:
        return []
    rows = []
    for mechanism, group in frame.groupby("mechanism", sort=False):
        theory = next((c for c in group["complexity"] if isinstance(c, dict)), {})
        measured = fits[fits["mechanism"] == mechanism] if fits is not None and not fits.empty else pd.DataFrame()
        row = {"mechanism": mechanism, "family": group["family"].iloc[0] if "family" in group else "", **{
            "prefill": theory.get("prefill", ""), "train": theory.get("train", ""),
            "decode": theory.get("decode", ""), "state": theory.get("state", "")}}
        for label, mode, metric in (("prefill_exponent", "forward", "flops"), ("train_exponent", "train", "flops"),
                                    ("decode_exponent", "decode", "flops"), ("state_exponent", None, "state_bytes")):
            match = measured[(measured["metric"] == metric) & (measured["axis"] == "seq_len")] if not measured.empty else measured
            if mode is not None and not match.empty:
                match = match[match["mode"] == mode]
            if match.empty:
                row[label], row[label.replace("exponent", "verdict")] = None, ""
                continue
            best = match.iloc[0]
            row[label] = float(best["leading_exponent"]) if _positive(best.get("leading_exponent")) else float(best["exponent"])
            row[label.replace("exponent", "verdict")] = ",".join(sorted(set(match["verdict"])))
        rows.append(row)
    return rows
