"""Repeated measurements of one point, shown once: the median of each measured quantity, and how many.

A results file may hold the same point many times (a sweep re-run into one file, `merge` of several
machines' runs, a benchmark's repeats). Figures and tables show each point once — the median of its
records' figures, with the count `n` beside it — so a file of 100,000 records of a few points draws
a few markers, not 100,000. Failed records are grouped by their status and error text, so every
distinct failure stays visible. The records file itself keeps every record; this is presentation.

    points = aggregate(frame)   # one row per (mechanism, mode, config, status, error); column n

No torch (render stage): it reads DataFrames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from effprof.analyse.frames import noisy_mask
from effprof.config import KEYS
from effprof.store.records import point_identity

COUNT = "n"  # the column holding how many records a row stands for
POINT = "_point"  # the grouping key (point_keys)
SAMPLE_QUANTILES = 101  # pooled timing samples kept per aggregated point: their percentiles 0, 1, ..., 100


def point_columns(frame: pd.DataFrame) -> list[str]:
    """The columns that identify a point: mechanism, mode, every config key present, status and error."""
    return [c for c in ("mechanism", "mode", *KEYS, "status", "error") if c in frame.columns]


def point_keys(frame: pd.DataFrame) -> list[str]:
    """Each row's point, by the one definition of "the same point" (store.records.point_identity: mechanism, mode and
    the config it carries, `compile=none` as no compile, 2.0 as 2), with its status and error: failures stay apart."""
    identity = [c for c in ("mechanism", "mode", *KEYS) if c in frame.columns]
    rows = frame[identity].to_dict("records")
    status = frame["status"].astype(str).tolist() if "status" in frame.columns else [""] * len(frame)
    error = frame["error"].astype(str).tolist() if "error" in frame.columns else [""] * len(frame)
    return [f"{point_identity(r)}|{s}|{e}" for r, s, e in zip(rows, status, error, strict=True)]


def aggregate(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per point (in order of first appearance; the point by `point_keys`): numeric fields are the median over
    its records, other fields (the config included) the first record's, `n` the number of records, timing samples
    pooled (as percentiles), and `time_noisy` judged on the medians (metrics.is_noisy_timing). A frame without repeats comes
    back as it was, with n = 1."""
    if frame.empty:
        return frame.assign(**{COUNT: pd.Series(dtype=int)})
    keys = point_columns(frame)
    groups = frame.groupby(pd.Series(point_keys(frame), index=frame.index, name=POINT), sort=False)
    sizes = groups.size()
    if (sizes == 1).all():
        return _flag_noisy(frame.assign(**{COUNT: 1}))
    numeric = [c for c in frame.columns if c not in keys and pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    other = [c for c in frame.columns if c not in numeric]
    parts = [groups[numeric].median(), groups[other].first(), sizes.rename(COUNT)]
    points = pd.concat(parts, axis=1).reset_index(drop=True)
    if "time_samples_s" in frame.columns:
        points["time_samples_s"] = _pooled_samples(frame, groups, len(points))
    return _flag_noisy(points[[*(c for c in frame.columns if c in points.columns), COUNT]])


def _flag_noisy(points: pd.DataFrame) -> pd.DataFrame:
    """Set `time_noisy` by the one noise rule (frames.noisy_mask) on each row's median and IQR: an aggregated point is judged on
    its medians, and records written before the flag existed are flagged like new ones."""
    if {"time_s", "time_iqr_s"} <= set(points.columns):
        points = points.assign(time_noisy=noisy_mask(points))
    return points


def _pooled_samples(frame: pd.DataFrame, groups, n_groups: int) -> list:
    """Each point's timing samples from all its records, kept as their 101 percentiles (the quartiles the
    figures' error bars read are exact; a point of 25,000 records does not carry 175,000 numbers)."""
    codes = groups.ngroup().to_numpy()  # group number of each row, numbered in order of first appearance
    samples = frame["time_samples_s"].to_numpy()
    order = np.argsort(codes, kind="stable")
    ends = np.cumsum(np.bincount(codes, minlength=n_groups))
    pooled = []
    for g in range(n_groups):
        rows = order[(ends[g - 1] if g else 0):ends[g]]
        lists = [samples[i] for i in rows if isinstance(samples[i], list) and samples[i]]
        if len(rows) == 1:
            pooled.append(lists[0] if lists else None)
        elif lists:
            values = np.concatenate([np.asarray(v, dtype=float) for v in lists])
            pooled.append(np.percentile(values, np.linspace(0, 100, SAMPLE_QUANTILES)).tolist())
        else:
            pooled.append(None)
    return pooled
