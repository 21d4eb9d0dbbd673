"""Series in a frame of records: which rows count, which axis was swept, how series are labelled,
which points are noisy (no torch, no rendering). One helper per concept, used by analysis and
every renderer."""

from __future__ import annotations

from typing import Any

import pandas as pd

from effprof.config import KEYS
from effprof.store.metrics import is_noisy_timing
from effprof.store.records import is_missing, plain_value

__all__ = ["add_labels", "fmt_value", "is_missing", "noisy_mask", "ok_rows", "plain_value", "series_rows", "swept_axis", "variant_column", "variant_part",
           "variant_text", "variant_words", "varying_keys"]


def ok_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of points measured successfully (status ok); a frame without a status column is all ok."""
    return frame[frame["status"] == "ok"] if "status" in frame.columns else frame


def swept_axis(frame: pd.DataFrame) -> str | None:
    """The numeric config key with the most distinct values (seq_len on ties)."""
    best, best_count = None, 1
    for key, info in KEYS.items():
        if key in frame.columns and info.type in (int, float):
            count = frame[key].dropna().nunique()
            if count > best_count or (count == best_count and key == "seq_len" and best is not None):
                best, best_count = key, count
    return best


def varying_keys(frame: pd.DataFrame, axis: str | None = None, within: str | None = "mechanism") -> list[str]:
    """Config keys (other than `axis`) taking more than one value within some group of `within`
    (each mechanism's own series by default; the whole frame when `within` is None)."""
    out = []
    for key in (k for k in KEYS if k in frame.columns and k != axis):
        groups = [frame] if within is None else [g for _, g in frame.groupby(within)]
        if any(g[key].dropna().astype(str).nunique() > 1 for g in groups):
            out.append(key)
    return out


def add_labels(frame: pd.DataFrame, axis: str | None) -> pd.DataFrame:
    """A `series` column: mechanism plus the config that distinguishes its series, as words: a text key by its
    value (impl=recurrent -> `mamba2 [recurrent]`), a number with its key (`[d_model=64]`)."""
    frame = frame.copy()
    words = variant_column(frame, axis)
    frame["series"] = [m + (f" [{w}]" if w else "") for m, w in zip(frame["mechanism"], words, strict=True)] if len(frame) else []
    return frame


def variant_column(frame: pd.DataFrame, axis: str | None) -> list[str]:
    """Each row's variant as words (the config keys that vary within its mechanism, apart from `axis`): what
    add_labels writes in brackets and the LaTeX tables' Variant column show."""
    keys = varying_keys(frame, axis)
    if not keys:
        return [""] * len(frame)
    return [", ".join(variant_part(k, row[k]) for k in keys if not is_missing(row[k])) for row in frame[keys].to_dict("records")]


def variant_part(key: str, value: Any) -> str:
    """One config value of a variant as a reader says it: the word itself for a text key (impl, feature_map,
    pattern, dtype, device), key=value for a number."""
    text = fmt_value(value)
    return text if key in KEYS and KEYS[key].type is str else f"{key}={text}"


def variant_words(config: Any) -> str:
    """A series' config (a fit row's `config`: {"impl": "chunked", "d_model": 64}) as words: 'chunked, d_model=64'."""
    if isinstance(config, str):
        raise TypeError(f"variant_words takes a series' config (a dict), not its text {config!r}: the text is never parsed back")
    if not isinstance(config, dict):
        return ""  # no config (a series of the mechanism's defaults, or a missing cell)
    return ", ".join(variant_part(k, v) for k, v in config.items())


def variant_text(config: dict[str, Any]) -> str:
    """A series' config as the fit rows' `variant` text ('impl=chunked,d_model=64'): for display and the --json
    contract only; code joins on the `config` dict (`series_rows`), never on this text."""
    return ",".join(f"{k}={fmt_value(v)}" for k, v in config.items())


def series_rows(frame: pd.DataFrame, config: dict[str, Any] | None) -> pd.DataFrame:
    """The rows of `frame` whose config has every value of `config` (a fit row's structured series key)."""
    rows = frame
    for key, value in (config or {}).items():
        if key not in rows.columns:
            return rows.iloc[0:0]
        rows = rows[[plain_value(v) == value for v in rows[key]]]
    return rows


def noisy_mask(frame: pd.DataFrame) -> pd.Series:
    """A boolean Series: True for each row whose timing is noisy by the one rule (metrics.is_noisy_timing of its
    time_s and time_iqr_s; a stored `time_noisy` is not read, so records from before the flag are judged alike)."""
    if "time_s" not in frame.columns or "time_iqr_s" not in frame.columns:
        return pd.Series(False, index=frame.index)
    flags = [is_noisy_timing(m, i) for m, i in zip(frame["time_s"].tolist(), frame["time_iqr_s"].tolist(), strict=True)]
    return pd.Series(flags, index=frame.index, dtype=bool)


def fmt_value(value: Any) -> str:
    """A config value as a user typed it: 2.0 from a DataFrame column is 2."""
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
