"""The metrics table: every measured quantity once, with its record column, unit, label and tolerance.

Every stage reads this table — fits and claims (by `name`), analysis (crossovers and the
baseline comparison), the console, HTML, LaTeX and CSV renderers (labels and units) — so a
metric is added or renamed in one place. Plain Python: `measure` may import it too.

    name       what claims, fits and crossovers call it: flops, time, peak_bytes, ...
    column     the Record field holding it (records.Record)
    unit       its unit kind, a key of LADDERS: flops, time, bytes, count, intensity (FLOP/byte), fraction (a percentage)
    label      how a table or figure title names it
    short      how a narrow table header names it (the summary table, crossover lines); with `per_call`, also how an
               axis names it ("time" -> "time per forward pass")
    file       the word for it in file names and LaTeX labels (forward-time.pdf, tab:effprof-values-decode-state)
    per_call   its value is per call, so an axis says per what (per forward pass, per generated token); else the axis
               reads its label (peak memory is the point's, not per token)
    tolerance  the default tolerance on a claimed exponent of this metric
    timed      measured by the clock, so subject to noise (is_noisy_timing: IQR/median > NOISE_THRESHOLD is flagged)
    claimable  a spec's claims may name it (and fits fit it)
    compared   shown in comparison tables and figures, crossed in crossovers, diffed against a baseline

The unit ladder (LADDERS) is the one rule for writing a value in its unit: `human` (the console, the HTML tables,
LaTeX notes), the axes of figures (effprof.render.axes) and the report page's script (which reads it as JSON
data, `ladder_data`) all use its steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from effprof.store.records import is_missing

NOISE_THRESHOLD = 0.10  # a timed point with IQR / median above this is noisy
NOISY_MARK = "†"  # how every output marks a noisy point (LaTeX: \dag)


@dataclass(frozen=True)
class Metric:
    name: str
    column: str
    unit: str
    label: str
    short: str
    file: str
    per_call: bool = False
    tolerance: float = 0.1
    timed: bool = False
    claimable: bool = True
    compared: bool = True


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("flops", "flops_counted", "flops", "FLOPs (counted)", "FLOPs", "flops", per_call=True),
    Metric("time", "time_s", "time", "time (median)", "time", "time", per_call=True, tolerance=0.25, timed=True),
    Metric("peak_bytes", "peak_bytes", "bytes", "peak memory", "peak mem", "peak-memory"),
    Metric("activation_bytes", "activation_bytes", "bytes", "activations saved for backward", "activations", "activations"),
    Metric("state_bytes", "state_bytes", "bytes", "decode state / KV cache", "state", "state"),
    Metric("params", "params", "count", "parameters", "params", "params", compared=False),
    Metric("forward_passes", "forward_passes", "count", "denoiser passes per generation", "passes", "forward-passes", compared=False),
    Metric("flops_analytic", "flops_analytic", "flops", "FLOPs (analytic)", "FLOPs (analytic)", "flops-analytic", per_call=True,
           claimable=False, compared=False),
    Metric("flops_fvcore", "flops_fvcore", "flops", "FLOPs (fvcore)", "FLOPs (fvcore)", "flops-fvcore", per_call=True,
           claimable=False, compared=False),
    # the roofline (effprof.hardware.model); every renderer's roofline table shows these four
    Metric("intensity", "arithmetic_intensity", "intensity", "arithmetic intensity (FLOP/byte)", "intensity (FLOP/byte)", "intensity",
           claimable=False, compared=False),
    Metric("roofline_bound", "roofline_bound_s", "time", "roofline bound (a lower bound on time)", "bound", "roofline-bound", per_call=True,
           claimable=False, compared=False),
    Metric("roofline_fraction", "roofline_fraction", "fraction", "achieved fraction of the bound (bound / measured time)", "achieved",
           "roofline-fraction", claimable=False, compared=False),
    Metric("projected_time", "projected_time_s", "time", "projected time (roofline lower bound on --hardware, not measured)",
           "projected time", "projected-time", per_call=True, claimable=False),
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


@dataclass(frozen=True)
class Ladder:
    """How a value of one unit kind is written: divided by the scale of the largest step it reaches (the last step
    takes everything below), to 3 significant digits, then `sep` and the step's suffix.

    `whole`: the last step is written as a whole number (bytes: "1000 B", never "1e+03 B"). `axis`: the unit an
    axis title adds to a step's suffix (FLOPs: "G" in a table cell, "GFLOP" on an axis); None where the kind has no
    unit of its own to title an axis with (a count, an intensity, a fraction)."""

    steps: tuple[tuple[str, float], ...]  # (suffix, scale), largest first
    sep: str = " "
    whole: bool = False
    axis: str | None = ""


DECIMAL = (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1.0))
# The one unit ladder. FLOPs and counts in decimal prefixes to P (the column says what is counted, so a cell reads
# "419M"; an axis "GFLOP"), bytes in binary units to TiB, seconds from ns to s, fractions as percentages.
LADDERS: dict[str, Ladder] = {
    "flops": Ladder(DECIMAL, sep="", axis="FLOP"),
    "count": Ladder(DECIMAL, sep="", axis=None),
    "time": Ladder((("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))),
    "bytes": Ladder((("TiB", 2.0**40), ("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10), ("B", 1.0)), whole=True),
    "intensity": Ladder((("", 1.0),), sep="", axis=None),  # FLOP/byte: the label says so
    "fraction": Ladder((("%", 0.01),), sep="", axis=None),
}
UNITS = tuple(LADDERS)
PATTERNS = "time*, *bytes, *bytes_per_s or *flops*"  # the columns outside the table that unit_of knows


def unit_of(name_or_column: str) -> str:
    """The unit kind (a key of LADDERS) of a unit kind itself, a metric, a record column, or a column outside the table
    by its name: time* is time (time_iqr_s), *bytes and *bytes_per_s are bytes, *flops* is FLOPs (peak_flops_per_s).

    Anything else raises ValueError: a column silently written as FLOPs would print a wrong unit."""
    if not isinstance(name_or_column, str):
        raise ValueError(f"no unit for {name_or_column!r}: give a unit kind ({', '.join(UNITS)}) or a metric or column name")
    if name_or_column in LADDERS:
        return name_or_column
    found = METRICS.get(name_or_column) or BY_COLUMN.get(name_or_column)
    if found is not None:
        return found.unit
    if name_or_column.startswith("time"):
        return "time"
    if name_or_column.endswith(("bytes", "bytes_per_s")):
        return "bytes"
    if "flops" in name_or_column:
        return "flops"
    raise ValueError(f"no unit for {name_or_column!r}: not a unit kind ({', '.join(UNITS)}), a metric ({', '.join(METRICS)}), "
                     f"a record column of one, nor a column named {PATTERNS}")


def human(value: Any, unit: str) -> str:
    """`value` written on the unit's LADDERS steps: FLOPs 419M, bytes 20 KiB, seconds 1.5 ms, fractions 31%.
    `unit` is a unit kind, a metric or a column name (unit_of; an unknown one raises ValueError)."""
    ladder = LADDERS[unit_of(unit)]
    if is_missing(value) or not isinstance(value, (int, float)):
        return "–"
    value = float(value)
    for suffix, scale in ladder.steps[:-1]:
        if abs(value) >= scale:
            return f"{value / scale:.3g}" + (ladder.sep + suffix if suffix else "")
    suffix, scale = ladder.steps[-1]
    number = str(_round_half_up(value / scale)) if ladder.whole else f"{value / scale:.3g}"
    return number + (ladder.sep + suffix if suffix else "")


def _round_half_up(x: float) -> int:
    """The nearest whole number, halves upward: JavaScript's Math.round, so the page writes 2.5 B as this does."""
    n = math.floor(x)
    return n + 1 if x - n >= 0.5 else n


def ladder_data() -> dict[str, dict[str, Any]]:
    """LADDERS as JSON data for the report page's script, which writes its table cells as `human` does."""
    return {kind: {"steps": [list(step) for step in ladder.steps], "sep": ladder.sep, "whole": ladder.whole} for kind, ladder in LADDERS.items()}


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
