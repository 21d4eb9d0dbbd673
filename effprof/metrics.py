"""The metrics table: every measured quantity once, with its record column, unit, label and tolerance.

Every stage reads this table — fits and claims (by `name`), analysis (crossovers and the
baseline comparison), the console, HTML, LaTeX and CSV renderers (labels and units) — so a
metric is added or renamed in one place. Plain Python: `measure` may import it too.

    name       what claims, fits and crossovers call it: flops, time, peak_bytes, ...
    column     the Record field holding it (records.Record)
    unit       how a value is written: flops (k/M/G/T), time (ns..s), bytes (KiB..GiB), count, intensity (FLOP/byte),
               fraction (a percentage)
    label      how a table or axis names it
    tolerance  the default tolerance on a claimed exponent of this metric
    timed      measured by the clock, so subject to noise (is_noisy_timing: IQR/median > NOISE_THRESHOLD is flagged)
    claimable  a spec's claims may name it (and fits fit it)
    compared   shown in comparison tables and figures, crossed in crossovers, diffed against a baseline
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from effprof.records import is_missing

NOISE_THRESHOLD = 0.10  # a timed point with IQR / median above this is noisy
NOISY_MARK = "†"  # how every output marks a noisy point (LaTeX: \dag)


@dataclass(frozen=True)
class Metric:
    name: str
    column: str
    unit: str
    label: str
    tolerance: float = 0.1
    timed: bool = False
    claimable: bool = True
    compared: bool = True


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("flops", "flops_counted", "flops", "FLOPs (counted)"),
    Metric("time", "time_s", "time", "time (median)", tolerance=0.25, timed=True),
    Metric("peak_bytes", "peak_bytes", "bytes", "peak memory"),
    Metric("activation_bytes", "activation_bytes", "bytes", "activation memory"),
    Metric("state_bytes", "state_bytes", "bytes", "decode state / KV cache"),
    Metric("params", "params", "count", "parameters", compared=False),
    Metric("forward_passes", "forward_passes", "count", "denoiser passes per generation", compared=False),
    Metric("flops_analytic", "flops_analytic", "flops", "FLOPs (analytic)", claimable=False, compared=False),
    Metric("flops_fvcore", "flops_fvcore", "flops", "FLOPs (fvcore)", claimable=False, compared=False),
    # the roofline (effprof.hardware.model); every renderer's roofline table shows these four
    Metric("intensity", "arithmetic_intensity", "intensity", "arithmetic intensity (FLOP/byte)", claimable=False, compared=False),
    Metric("roofline_bound", "roofline_bound_s", "time", "roofline bound (a lower bound on time)", claimable=False, compared=False),
    Metric("roofline_fraction", "roofline_fraction", "fraction", "achieved fraction of the bound (bound / measured time)",
           claimable=False, compared=False),
    Metric("projected_time", "projected_time_s", "time", "projected time (roofline lower bound on --hardware, not measured)",
           claimable=False),
)}
ROOFLINE: list[Metric] = [METRICS[name] for name in ("intensity", "roofline_bound", "roofline_fraction")]
BY_COLUMN: dict[str, Metric] = {m.column: m for m in METRICS.values()}
CLAIMABLE: dict[str, str] = {m.name: m.column for m in METRICS.values() if m.claimable}  # claim metric name -> record column
COMPARED: list[Metric] = [m for m in METRICS.values() if m.compared]
CROSSED: list[Metric] = [m for m in COMPARED if m.name != "activation_bytes"]  # train-only; crossovers compare both modes' costs


def metric(name_or_column: str) -> Metric:
    """The table entry for a metric name (`time`) or a record column (`time_s`)."""
    found = METRICS.get(name_or_column) or BY_COLUMN.get(name_or_column)
    if found is None:
        raise KeyError(f"{name_or_column!r} is not a metric; known: {', '.join(METRICS)}")
    return found


def label(name_or_column: str) -> str:
    return metric(name_or_column).label


def tolerance(name: str) -> float:
    return METRICS[name].tolerance if name in METRICS else 0.1


def unit_of(name_or_column: str) -> str:
    """The unit of a metric or record column; columns outside the table by their name (time_iqr_s is time)."""
    found = METRICS.get(name_or_column) or BY_COLUMN.get(name_or_column)
    if found is not None:
        return found.unit
    if name_or_column.startswith("time"):
        return "time"
    if name_or_column.endswith(("bytes", "bytes_per_s")):
        return "bytes"
    return "flops"


UNITS = ("flops", "time", "bytes", "count", "intensity", "fraction")


def human(value: Any, unit: str) -> str:
    """FLOPs in k/M/G/T, bytes in KiB/MiB/GiB, seconds in ns/µs/ms/s, fractions in %; `unit` may be a metric or column name."""
    if is_missing(value) or not isinstance(value, (int, float)):
        return "–"
    unit = unit if unit in UNITS else unit_of(unit)
    value = float(value)
    if unit == "fraction":
        return f"{100 * value:.3g}%"
    if unit == "intensity":
        return f"{value:.3g}"
    if unit == "time":
        for suffix, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {suffix}"
        return f"{value / 1e-9:.3g} ns"
    if unit == "bytes":
        for suffix, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {suffix}"
        return f"{value:.0f} B"
    for suffix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def is_noisy_timing(median: Any, iqr: Any) -> bool:
    """The one noise rule: a timing (its median and IQR, in seconds) is noisy when IQR / median > NOISE_THRESHOLD (10%).

    Modeled on torch.utils.benchmark's `Measurement.meets_confidence(threshold)`, `iqr / median < threshold`: a
    timing that does not meet it is noisy, except that a spread of exactly the threshold still meets it here (noisy
    only beyond it, as effprof has always flagged). No median (missing, NaN or not positive) or no IQR: not noisy.
    Plain Python, so every layer calls this one function: measure.timing.Timing.noisy when a record's `time_noisy`
    is written, and every reader (is_noisy on a record, frames.noisy_mask on a frame, the CLI's sweep warnings)
    on (time_s, time_iqr_s); a record written before the flag existed is judged like a new one.
    """
    if is_missing(median) or is_missing(iqr):
        return False
    median = float(median)
    return median > 0 and float(iqr) / median > NOISE_THRESHOLD


def relative_spread(record: dict[str, Any]) -> float | None:
    """IQR / median of a record's timing, or None where it was not timed."""
    median, iqr = record.get("time_s"), record.get("time_iqr_s")
    if is_missing(median) or is_missing(iqr) or not float(median) > 0:
        return None
    return float(iqr) / float(median)


def is_busy(record: dict[str, Any]) -> bool:
    """The one busy-machine rule: the 1-minute load average was at or above the core count while the point ran
    (other work competed for every core). False where a record does not say."""
    load, cores = record.get("load_avg_1m"), record.get("cpu_count")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and not is_missing(v) for v in (load, cores))
    return numbers and cores > 0 and load >= cores


def is_noisy(record: dict[str, Any]) -> bool:
    """Whether a record's timing is noisy: is_noisy_timing of its time_s and time_iqr_s (never its stored flag)."""
    return is_noisy_timing(record.get("time_s"), record.get("time_iqr_s"))
