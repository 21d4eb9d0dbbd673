"""Records: one flat dict per measured point, stored as JSON Lines.

The store is append-only: each record is written as one line, flushed and
fsynced as soon as it is measured, so an interrupted sweep loses nothing that
finished. Reading skips a truncated or corrupt line with a warning naming it.
`to_frame` turns records into a pandas DataFrame for fitting and rendering.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    import pandas

SCHEMA_VERSION = 1


class ResultsError(ValueError):
    """A results file that cannot be read: the message names the file and why."""


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def append(path: str | Path, record: dict[str, Any]) -> None:
    """Append one record as a JSON line, flushed and fsynced."""
    line = json.dumps({k: _clean(v) for k, v in record.items()}, default=str)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def read(path: str | Path) -> list[dict[str, Any]]:
    """Every valid record in a JSON Lines file; bad lines are skipped with a warning."""
    path = Path(path)
    if not path.exists():
        raise ResultsError(f"results file {str(path)!r} does not exist")
    if path.is_dir():
        raise ResultsError(f"results file {str(path)!r} is a directory; expected a .jsonl file")
    records = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ResultsError(f"results file {str(path)!r} cannot be read: {e}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            warnings.warn(f"{path}:{number}: skipped a corrupt or truncated line", stacklevel=2)
            continue
        if not isinstance(record, dict) or "mechanism" not in record or "mode" not in record:
            warnings.warn(f"{path}:{number}: skipped a line that is not an effprof record", stacklevel=2)
            continue
        version = record.get("schema", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise ResultsError(f"{path}:{number}: record schema {version!r} is not supported; this effprof reads schema {SCHEMA_VERSION}")
        records.append(record)
    return records


def to_frame(records: Iterable[dict[str, Any]]) -> "pandas.DataFrame":
    import pandas as pd

    return pd.DataFrame(list(records))


def point_identity(record: dict[str, Any]) -> str:
    """Which point a record measured: its mechanism, mode and every config key it carries.

    The one definition of "the same point" for --resume, merge, baseline comparison and check.
    """
    from effprof.config import KEYS

    config = {k: _plain_value(record[k]) for k in KEYS if k in record and not is_missing(record[k])}
    return json.dumps([record.get("mechanism"), record.get("mode"), config], sort_keys=True, default=str)


def is_missing(value: Any) -> bool:
    """A key absent from a record shows as NaN (or None) in a DataFrame row of mixed mechanisms."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain_value(value: Any) -> Any:
    """2.0 in a DataFrame column is the 2 of its record."""
    if hasattr(value, "item"):
        value = value.item()
    return int(value) if isinstance(value, float) and value.is_integer() else value


def merge(groups: Iterable[list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Records of several files in order: exact duplicates dropped, repeated points all kept."""
    seen: set[str] = set()
    points: dict[str, int] = {}
    merged = []
    total = 0
    for group in groups:
        for record in group:
            total += 1
            exact = json.dumps(record, sort_keys=True, default=str)
            if exact in seen:
                continue
            seen.add(exact)
            merged.append(record)
            key = point_identity(record)
            points[key] = points.get(key, 0) + 1
    conflicts = sum(1 for n in points.values() if n > 1)
    return merged, {"records": len(merged), "duplicates": total - len(merged), "conflicts": conflicts}


def write_all(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Write records to a new file atomically (a temporary file renamed into place)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps({k: _clean(v) for k, v in record.items()}, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
