"""Series in a frame of records: which axis was swept and how series are labelled (no torch, no rendering)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from effprof.config import KEYS


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
