"""Reading a lab's Session: the fitted exponent, the measured value, the crossover a look asks for.

Every figure a lab prints comes through here from the measured records and effprof.analyse.fit's fits; when a
point failed or was not measured, the answer is None and the look says "not measured".
"""

from __future__ import annotations

from typing import Any

from effprof.analyse.frames import fmt_value, plain_value
from effprof.store.metrics import human
from effprof.store.records import is_missing
from effprof.store.records import is_number as _number

NOT_MEASURED = "not measured"


def _matches(row: dict[str, Any], where: dict[str, Any]) -> bool:
    return all(k in row and not is_missing(row[k]) and fmt_value(row[k]) == fmt_value(v) for k, v in where.items())


def records(session, mechanism: str, mode: str, **where: Any) -> list[dict[str, Any]]:
    """The ok records of `mechanism` in `mode` whose config has the `where` values."""
    return [r for r in session.records if r.get("mechanism") == mechanism and r.get("mode") == mode
            and r.get("status") == "ok" and _matches(r, where)]


def value(session, mechanism: str, mode: str, column: str, **where: Any) -> float | None:
    """The median of `column` over the matching ok records (None when there is none)."""
    values = sorted(float(r[column]) for r in records(session, mechanism, mode, **where)
                    if column in r and isinstance(r[column], (int, float)) and not is_missing(r[column]))
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def largest(session, key: str = "seq_len", mechanism: str | None = None) -> Any:
    """The largest value of `key` among the ok records (of `mechanism`, when given)."""
    values = [r[key] for r in session.records if r.get("status") == "ok" and key in r and isinstance(r[key], (int, float))
              and (mechanism is None or r.get("mechanism") == mechanism)]
    return max(values) if values else None


def fit(session, mechanism: str, metric: str, mode: str, axis: str = "seq_len", **variant: Any) -> dict[str, Any] | None:
    """The fit of `metric` along `axis` for the series of `mechanism` in `mode` whose variant has these values."""
    for row in session.fits:
        if (row.get("mechanism"), row.get("metric"), row.get("mode"), row.get("axis")) != (mechanism, metric, mode, axis):
            continue
        config = row.get("config") or {}
        if all(k in config and config[k] == plain_value(v) for k, v in variant.items()):
            return row
    return None


def exponent(row: dict[str, Any] | None) -> float | None:
    """The exponent a fit shows: the dominant term's when a claim is judged (effprof.analyse.fit's estimator), else the slope."""
    if row is None:
        return None
    for key in ("leading_exponent", "exponent") if _number(row.get("claimed")) else ("exponent",):
        if _number(row.get(key)):
            return float(row[key])
    return None


def exponent_text(row: dict[str, Any] | None, axis: str = "N") -> str:
    """'∝ N^1.98 (claimed N^2: pass)', or 'not measured'."""
    found = exponent(row)
    if found is None:
        return NOT_MEASURED
    text = f"∝ {axis}^{found:.2f}"
    if _number(row.get("claimed")):
        mark = " (noisy timings: uncertain)" if row.get("uncertain") in (True,) else ""
        text += f" (claimed {axis}^{row['claimed']:g}: {row.get('verdict')}{mark})"
    return text


def growth_text(session, mechanism: str, metric: str, mode: str, axis: str = "seq_len", **where: Any) -> str:
    """exponent_text of the fit; a series with one value at every size (not fitted) is 'constant: X at every N'."""
    row = fit(session, mechanism, metric, mode, axis, **where)
    if row is not None:
        return exponent_text(row)
    from effprof.store.metrics import METRICS

    column = METRICS[metric].column
    values = {r[axis]: r.get(column) for r in records(session, mechanism, mode, **where) if axis in r}
    numbers = [v for v in values.values() if _number(v)]
    if len(numbers) >= 3 and len(numbers) == len(values) and len(set(numbers)) == 1:
        return f"constant: {show(numbers[0], METRICS[metric].unit)} at every {axis} from {min(values)} to {max(values)}"
    return NOT_MEASURED


def crossover(session, a: str, b: str, metric: str, mode: str) -> dict[str, Any] | None:
    """The crossover row between the series whose labels start with `a` and `b`, or None."""
    for row in session.crossovers:
        if row.get("metric") != metric or row.get("mode") != mode:
            continue
        names = (str(row.get("a")), str(row.get("b")))
        if (names[0].startswith(a) and names[1].startswith(b)) or (names[0].startswith(b) and names[1].startswith(a)):
            return row
    return None


def crossover_text(row: dict[str, Any] | None, axis: str = "N") -> str:
    if row is None:
        return NOT_MEASURED
    if row.get("at") is None:
        cheaper = row.get("cheaper_below") or row.get("cheaper_above")
        return f"no crossover in the measured range ({cheaper} cheaper throughout)"
    text = f"{axis} ≈ {float(row['at']):.0f} ({row.get('cheaper_above')} cheaper above)"
    return text + (" — uncertain: noisy timings" if row.get("uncertain") else "")


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if _number(a) and _number(b) and b else None


def show(number: float | None, unit: str) -> str:
    """A measured figure in its unit (metrics.human), or 'not measured'."""
    return human(number, unit) if _number(number) else NOT_MEASURED


def times(number: float | None) -> str:
    return f"×{number:.3g}" if _number(number) else NOT_MEASURED
