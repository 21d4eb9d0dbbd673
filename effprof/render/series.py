"""Shared by every renderer: which axis was swept, series labels, units."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from effprof.config import KEYS

METRIC_LABELS = {
    "flops_counted": "FLOPs (counted)",
    "flops_analytic": "FLOPs (analytic)",
    "flops_fvcore": "FLOPs (fvcore)",
    "time_s": "time (median)",
    "peak_bytes": "peak memory",
    "activation_bytes": "activation memory",
    "state_bytes": "decode state / KV cache",
    "params": "parameters",
}
TABLE_METRICS = ["flops_counted", "time_s", "peak_bytes", "activation_bytes", "state_bytes"]


def swept_axis(frame: pd.DataFrame) -> str | None:
    """The numeric config key with the most distinct values (seq_len on ties)."""
    best, best_count = None, 1
    for key, info in KEYS.items():
        if key in frame.columns and info.type in (int, float):
            count = frame[key].dropna().nunique()
            if count > best_count or (count == best_count and key == "seq_len" and best is not None):
                best, best_count = key, count
    return best


def varying_keys(frame: pd.DataFrame, axis: str | None) -> list[str]:
    keys = [k for k in KEYS if k in frame.columns and k != axis]
    out = []
    for k in keys:
        for _, group in frame.groupby("mechanism"):
            if group[k].dropna().astype(str).nunique() > 1:
                out.append(k)
                break
    return out


def add_labels(frame: pd.DataFrame, axis: str | None) -> pd.DataFrame:
    """A `series` column: mechanism plus the config that distinguishes its series."""
    frame = frame.copy()
    keys = varying_keys(frame, axis)

    def label(row: pd.Series) -> str:
        parts = [f"{k}={fmt_value(row[k])}" for k in keys if k in row and _present(row[k])]
        return row["mechanism"] + (f" [{', '.join(parts)}]" if parts else "")

    frame["series"] = frame.apply(label, axis=1) if len(frame) else []
    return frame


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def fmt_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def human(value: Any, metric: str) -> str:
    """FLOPs in k/M/G/T, bytes in KiB/MiB/GiB, seconds in ns/µs/ms/s."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    if metric.startswith("time"):
        for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {unit}"
        return f"{value / 1e-9:.3g} ns"
    if metric.endswith("bytes"):
        for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {unit}"
        return f"{value:.0f} B"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"
