"""Per-module scaling across a sweep: how each submodule's cost grows with the swept size.

Records measured with `--breakdown` carry `breakdown: {path: {flops, time_s, peak_bytes, ...}}`
(effprof.measure.breakdown). `breakdown_frame` unfolds them into one row per
(record, path); `fit_breakdown` fits, per mechanism, mode and module path, the
log-log slope of each metric against the swept axis with fit.fit_series, the same
fit the mechanism totals get, so e.g. the attention core of a Llama layer shows an
exponent near 2 in seq_len while its projections show 1.

No torch here (fit stage): it reads DataFrames.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from effprof.analyse.fit import fit_series
from effprof.analyse.frames import swept_axis

BREAKDOWN_METRICS = ("flops", "time_s", "peak_bytes")
REST = "(rest)"  # a module's own work between its children: the whole minus its direct children (FLOPs and time add up)
ADDITIVE = ("flops", "time_s")


def breakdown_frame(frame: pd.DataFrame, axis: str | None = None, rest: bool = False) -> pd.DataFrame:
    """One row per (ok record with a breakdown, submodule): mechanism, mode, axis value, path, type, depth, metrics.

    `axis` defaults to the frame's swept axis; the column `size` holds its value. With `rest`, each record
    also gets a row "(rest)": the root's FLOPs and time that its direct children do not account for (in an
    attention layer: the attention core between the projections); memory peaks do not add, so it has none.
    """
    columns = ["mechanism", "mode", "size", "path", "type", "depth", *BREAKDOWN_METRICS]
    if "breakdown" not in frame.columns or frame.empty:
        return pd.DataFrame(columns=columns)
    ok = frame[frame["status"] == "ok"] if "status" in frame.columns else frame
    axis = axis or swept_axis(ok)
    rows = []
    for record in ok.to_dict("records"):
        tree = record.get("breakdown")
        if not isinstance(tree, dict):
            continue
        size = record.get(axis) if axis else None
        for path, row in tree.items():
            if not isinstance(row, dict):
                continue
            rows.append({"mechanism": record["mechanism"], "mode": record["mode"], "size": size,
                         "path": path, "type": row.get("type", ""), "depth": 0 if path == "" else path.count(".") + 1,
                         **{m: row.get(m) for m in BREAKDOWN_METRICS}})
        root = tree.get("")
        if rest and isinstance(root, dict):
            children = [row for path, row in tree.items() if path and "." not in path and isinstance(row, dict)]
            left = {m: _minus(root.get(m), [c.get(m) for c in children]) for m in ADDITIVE}
            rows.append({"mechanism": record["mechanism"], "mode": record["mode"], "size": size, "path": REST,
                         "type": "the module's own ops", "depth": 1, **left, "peak_bytes": None})
    return pd.DataFrame(rows, columns=columns)


def _minus(whole: Any, parts: list[Any]) -> float | None:
    if whole is None or any(p is None for p in parts):
        return None
    return float(whole) - float(sum(parts))


def fit_breakdown(frame: pd.DataFrame, axis: str | None = None) -> list[dict[str, Any]]:
    """Rows {mechanism, mode, path, type, metric, axis, exponent, ci_low, ci_high, r2, leading_exponent, sizes} for every module
    path (and each module's "(rest)") measured at 3 or more sizes of the swept axis with positive values."""
    ok = frame[frame["status"] == "ok"] if "status" in frame.columns and not frame.empty else frame
    axis = axis or swept_axis(ok)
    long = breakdown_frame(frame, axis, rest=True)
    if long.empty or axis is None:
        return []
    out = []
    for (mechanism, mode, path), rows in long.groupby(["mechanism", "mode", "path"], sort=False):
        for metric in BREAKDOWN_METRICS:
            values = pd.to_numeric(rows[metric], errors="coerce")
            by_size = values.groupby(pd.to_numeric(rows["size"], errors="coerce")).median()
            by_size = by_size[by_size.notna() & (by_size > 0)]
            if len(by_size) < 3:
                continue
            x, y = by_size.index.to_numpy(dtype=float), by_size.to_numpy(dtype=float)
            fit = {"exponent": 0.0, "ci_low": 0.0, "ci_high": 0.0, "r2": 1.0} if np.allclose(y, y[0], rtol=1e-9) else fit_series(x, y, None)
            out.append({"mechanism": mechanism, "mode": mode, "path": path, "type": rows["type"].iloc[0], "metric": metric,
                        "axis": axis, "exponent": fit["exponent"], "ci_low": fit["ci_low"], "ci_high": fit["ci_high"],
                        "r2": fit["r2"], "leading_exponent": fit.get("leading_exponent"), "sizes": [float(v) for v in x]})
    return out
