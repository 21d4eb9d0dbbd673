"""Comparison with a baseline results file, point by point.

Regression against a baseline (same mechanism, mode and full resolved config) is judged by the
one baseline rule the reports use too, `effprof.analyse.session.change`: a metric regresses when
new > old × max(allowed ratio, 1 + noise band), the noise band of a time being the two runs'
combined IQR (at least 5%), of a counted quantity 0.5%. So a slowdown fails only beyond both
the allowance and the measured noise, and `check` and `compare --baseline` never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from effprof.config import ConfigError
from effprof.store.records import point_identity

DEFAULT_REGRESSION = {"flops": 1.0, "peak_bytes": 1.05}


def load_baseline(value: Any, path: Path, bad: Callable[[str], ConfigError]) -> list[dict[str, Any]]:
    """The records of the results file `value` names, relative to the check file `path`'s folder; `bad(message)` is
    the error to raise (the check file's, naming the line)."""
    import warnings

    from effprof.store.records import ResultsError, read

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
    """(regressions, notes) of new records against the baseline's records of the same points: the report's diff
    (effprof.analyse.session.baseline_diff) with the check's allowed ratios, its `worse` rows as lines."""
    from effprof.analyse.session import baseline_diff
    from effprof.store.metrics import human
    from effprof.store.records import to_frame

    if not records:
        return [], []
    before = {point_identity(r) for r in baseline if r.get("status") == "ok"}
    if not any(point_identity(r) in before for r in records if r.get("status") == "ok"):
        return [], ["no point of this check is in the baseline: nothing compared"]
    diff = baseline_diff(to_frame(records), to_frame(baseline), regression)
    regressions = []
    for row in diff.to_dict("records"):
        if row["change"] != "worse":
            continue
        ratio = row["ratio"]
        shown = f"+{(ratio - 1) * 100:.3g}%" if ratio < 2 else f"×{ratio:.3g}"
        regressions.append(f"{row['point']} {row['name']} {human(row['new'], row['metric'])} vs {human(row['old'], row['metric'])} "
                           f"({shown}, allowed ×{row['allowed']:g})")
    return regressions, []
