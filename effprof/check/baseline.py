"""Comparison with a baseline results file, point by point.

Regression against a baseline (same mechanism, mode and full resolved config) is judged by the
one baseline rule the reports use too, `effprof.analysis.change`: a metric regresses when
new > old × max(allowed ratio, 1 + noise band), the noise band of a time being the two runs'
combined IQR (at least 5%), of a counted quantity 0.5%. So a slowdown fails only beyond both
the allowance and the measured noise, and `check` and `compare --baseline` never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effprof.metrics import CLAIMABLE
from effprof.records import is_number as _number
from effprof.records import point_identity

if TYPE_CHECKING:
    from effprof.check.claims import CheckFileError

DEFAULT_REGRESSION = {"flops": 1.0, "peak_bytes": 1.05}


def load_baseline(value: Any, path: Path, bad: Callable[[str], CheckFileError]) -> list[dict[str, Any]]:
    import warnings

    from effprof.records import ResultsError, read

    if not isinstance(value, str) or not value:
        raise bad(f"baseline must be the path of a results file (JSON Lines); got {value!r}")
    file = path.parent / value
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a truncated line of an old results file does not void the rest
            return read(file)
    except ResultsError as e:
        raise bad(f"{e} (a path relative to {str(path)!r}'s folder)") from None


def compare_baseline(records: list[dict[str, Any]], baseline: list[dict[str, Any]],
                     regression: dict[str, float]) -> tuple[list[str], list[str]]:
    """(regressions, notes) of new records against the baseline's records of the same points."""
    from effprof.metrics import human

    old = {}
    for record in baseline:
        if record.get("status") == "ok":
            old[point_identity(record)] = record  # the latest record of a point wins
    regressions, notes, matched = [], [], 0
    for record in records:
        before = old.get(point_identity(record))
        if record.get("status") != "ok" or before is None:
            continue
        matched += 1
        for metric, ratio in regression.items():
            column = CLAIMABLE[metric]
            new, previous = record.get(column), before.get(column)
            if not (_number(new) and _number(previous)):
                continue
            if not _regressed(metric, new, previous, ratio, record.get("time_iqr_s"), before.get("time_iqr_s")):
                continue
            ratio_now = new / previous if previous > 0 else math.inf
            change = f"+{(ratio_now - 1) * 100:.3g}%" if ratio_now < 2 else f"×{ratio_now:.3g}"
            regressions.append(f"{_point_text(record)} {metric} {human(new, column)} vs {human(previous, column)} "
                               f"({change}, allowed ×{ratio:g})")
    if records and not matched:
        notes.append("no point of this check is in the baseline: nothing compared")
    return regressions, notes


def _regressed(metric: str, new: float, old: float, ratio: float, iqr_new: Any, iqr_old: Any) -> bool:
    from effprof.analysis import change
    from effprof.metrics import METRICS as TABLE

    timed = TABLE[metric].timed
    return change(metric, new, old, iqr_new if timed else None, iqr_old if timed else None, allowed=ratio)[0] == "worse"


def _point_text(record: dict[str, Any]) -> str:
    return " ".join(f"{k}={record[k]}" for k in ("seq_len", "d_model", "batch") if k in record)


