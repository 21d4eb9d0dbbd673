"""Axes that read: one unit per axis picked from its data, ticks at the measured sizes, titles with units.

- **Units** (``unit_for``): the steps of effprof.store.metrics.LADDERS, the ladder the tables print with: seconds
  ns … s, bytes in binary units B … TiB, FLOPs as FLOP, kFLOP … PFLOP. The data are divided by the unit's
  scale, so the ticks, the hover text and the axis title ("time per forward pass (ms)") read in it.
- **Ticks**: the swept axis at the measured sizes (``size_ticks``): 256, 512, 1024, … or 2⁸, 2⁹, … when a
  powers-of-two sweep would need labels of five digits or more; a value axis on the 1-2-5 ladder
  (``value_ticks``), never plotly's "5 6 7 8 9 1000 2".
- **Names**: what a metric figure plots in words (``metric_label``) and the file it is exported to
  (``figure_name``: forward-time, decode-state), both from the metrics table (effprof.store.metrics.METRICS).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from effprof.store.metrics import BY_COLUMN, LADDERS, METRICS, metric, unit_of


def axis_units(kind: str) -> tuple[tuple[str, float], ...]:
    """The (symbol, scale) steps of an axis of this unit kind, largest first: metrics.LADDERS' steps with the kind's
    axis unit added (FLOPs: k -> kFLOP, and FLOP for the last step)."""
    ladder = LADDERS[kind]
    if ladder.axis is None:
        raise ValueError(f"no axis unit for {kind!r} values; axes are drawn in {', '.join(AXIS_KINDS)}")
    return tuple((suffix + ladder.axis, scale) for suffix, scale in ladder.steps)


AXIS_KINDS = tuple(kind for kind, ladder in LADDERS.items() if ladder.axis is not None)  # time, bytes, flops
TIME_UNITS = axis_units("time")

# Axis titles of the swept config keys: what the number counts, in its unit.
SIZE_TITLES = {
    "seq_len": "sequence length (tokens)", "batch": "batch size (sequences)", "d_model": "model width d_model (features)",
    "n_heads": "attention heads", "head_dim": "head dimension (features)", "d_state": "state size d_state",
    "window": "window (tokens)", "block_size": "block size (tokens)", "chunk_size": "chunk size (tokens)",
    "n_experts": "experts", "top_k": "top-k", "d_ff": "feed-forward width d_ff (features)", "n_layers": "layers",
    "gen_len": "generated length (tokens)", "n_features": "random features", "diffusion_steps": "diffusion steps",
    "block_len": "block length (tokens)", "n_buckets": "LSH buckets", "n_hashes": "LSH rounds", "n_clusters": "clusters",
}
# What one measurement of a metric covers, by mode (decode figures are per generated token).
PER_MODE = {"forward": "per forward pass", "train": "per training step", "decode": "per generated token"}


@dataclass(frozen=True)
class Unit:
    """A display unit: values in base units (s, bytes, FLOPs) divided by `scale` read in `symbol`."""

    symbol: str
    scale: float

    def scaled(self, values: Iterable[float]) -> list[float]:
        return [float(v) / self.scale for v in values]


def metric_kind(name: str) -> str:
    """'time', 'bytes' or 'flops': which unit ladder a metric or record field is drawn in (metrics.unit_of, the one
    classifier; a field with no axis unit, such as a count, or one it does not know raises ValueError)."""
    kind = unit_of(name)
    if kind not in AXIS_KINDS:
        raise ValueError(f"no unit for metric {name!r}: its values ({kind}) are not drawn on a unit axis; axes are drawn in "
                         f"{', '.join(AXIS_KINDS)}")
    return kind


def unit_for(kind: str, values: Iterable[float]) -> Unit:
    """One unit for an axis, from its data range: the unit in which the values read as plain numbers
    (0.001 … 9999, no powers of ten), preferring the one that puts their geometric middle in 1 … 1000.

    A time axis from 40 µs to 300 ms reads in ms (0.04 … 300); FLOPs from 1 MFLOP to 65 GFLOP in GFLOP
    (0.001 … 65), not 10⁴ MFLOP.
    """
    ladder = axis_units(kind)
    positive = [float(v) for v in values if v is not None and math.isfinite(float(v)) and float(v) > 0]
    if not positive:
        return Unit(*ladder[-1])
    low, high = min(positive), max(positive)

    def cost(scale: float) -> tuple[float, float]:
        outside = max(0.0, math.log10(1e-3 * scale / low)) + max(0.0, math.log10(high / scale / 1e4))
        middle = math.log10(math.sqrt(low * high) / scale)  # 0 … 3 is best
        return round(outside, 9), max(0.0, -middle, middle - 3)

    symbol, scale = min(ladder, key=lambda unit: cost(unit[1]))
    return Unit(symbol, scale)


def axis_title(label: str, unit: Unit | str | None) -> str:
    """'time per forward pass' + ms -> 'time per forward pass (ms)'."""
    symbol = unit.symbol if isinstance(unit, Unit) else unit
    return f"{label} ({symbol})" if symbol else label


def metric_label(name: str, mode: str) -> str:
    """The quantity a metric figure plots, in words, from the metrics table: a per-call metric's short label and what a
    call is in this mode ('time per generated token'), else its label ('peak memory')."""
    entry = metric(name)
    return f"{entry.short} {PER_MODE.get(mode, 'per call')}" if entry.per_call else entry.label


def figure_name(*parts: str) -> str:
    """A file name that reads: ('forward', 'time_s') -> 'forward-time'; ('pattern', 'sliding_window') -> 'pattern-sliding-window'."""
    words = [_file_word(part) for part in parts]
    name = "-".join("".join(ch if ch.isalnum() else "-" for ch in w.lower()) for w in words)
    return "-".join(filter(None, name.split("-")))


def _file_word(part: str) -> str:
    """A metric (by name or record column) as its file word from the metrics table; any other part as given."""
    entry = METRICS.get(part) or BY_COLUMN.get(part)
    return entry.file if entry is not None else part


def size_title(axis: str | None) -> str:
    return SIZE_TITLES.get(axis or "", (axis or "").replace("_", " "))


def _is_power_of_two(value: float) -> bool:
    return value >= 1 and float(value).is_integer() and (int(value) & (int(value) - 1)) == 0


SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def size_ticks(sizes: Iterable[float], max_labels: int = 8) -> tuple[list[float], list[str]]:
    """Ticks at the measured sizes of the swept axis and their labels.

    Powers of two are written as such (2¹⁰) when plain numbers would need five digits or more; otherwise
    the numbers themselves (256, 512, 1024), large ones in k (10k, 25k). Beyond `max_labels` sizes every
    other label is left blank (the tick stays), so labels never overlap on a narrow figure.
    """
    values = sorted({float(s) for s in sizes if s is not None and math.isfinite(float(s)) and float(s) > 0})
    if not values:
        return [], []
    powers = all(_is_power_of_two(v) for v in values) and len(values) >= 2
    if powers and max(values) >= 10_000:
        labels = [f"2{str(int(math.log2(v))).translate(SUPERSCRIPT)}" for v in values]
    else:
        labels = [_plain(v) for v in values]
    stride = math.ceil(len(values) / max_labels)
    labels = [label if (len(values) - 1 - i) % stride == 0 else "" for i, label in enumerate(labels)]  # keep the largest
    return values, labels


def _plain(value: float) -> str:
    if value >= 10_000 and value % 1000 == 0:
        return f"{value / 1000:g}k"
    return f"{value:g}" if value < 1e6 else f"{value:.3g}"


def log_range(values: Iterable[float], pad: float = 0.06) -> tuple[float, float] | None:
    """A log10 axis range around the positive values, padded by a fraction of its span (at least 0.04 decades)."""
    positive = [float(v) for v in values if v is not None and math.isfinite(float(v)) and float(v) > 0]
    if not positive:
        return None
    low, high = math.log10(min(positive)), math.log10(max(positive))
    margin = max((high - low) * pad, 0.04)
    return low - margin, high + margin


def value_ticks(log_lo: float, log_hi: float, max_ticks: int = 7) -> tuple[list[float], list[str]]:
    """Ticks on a log value axis spanning 10**log_lo .. 10**log_hi: the densest of the ladders
    1-2-5, 1-3, 1 (per decade; then every other or third decade) that gives at most `max_ticks`,
    with at least two ticks (a finer 1..9 ladder for a narrow range)."""
    ladders: list[tuple[tuple[float, ...], int]] = [((1, 2, 5), 1), ((1, 3), 1), ((1,), 1), ((1,), 2), ((1,), 3), ((1,), 5)]
    best: list[float] = []
    for mantissas, every in ladders:
        ticks = _ladder(log_lo, log_hi, mantissas, every)
        if len(ticks) <= max_ticks:
            best = ticks
            break
    if len(best) < 2:
        best = [t for t in _ladder(log_lo, log_hi, (1, 2, 3, 4, 5, 6, 7, 8, 9), 1)]
        if len(best) > max_ticks:
            best = best[:: math.ceil(len(best) / max_ticks)]
    return best, [tick_label(t) for t in best]


def _ladder(log_lo: float, log_hi: float, mantissas: Sequence[float], every: int) -> list[float]:
    ticks = []
    for exponent in range(math.floor(log_lo) - 1, math.ceil(log_hi) + 1):
        if exponent % every:
            continue
        for m in mantissas:
            value = m * 10.0**exponent
            if log_lo - 1e-9 <= math.log10(value) <= log_hi + 1e-9:
                ticks.append(float(f"{value:.12g}"))
    return ticks


def tick_label(value: float) -> str:
    """0.05, 2, 300, 2000; beyond 10⁴ or below 10⁻³ as powers of ten (5×10⁻⁴)."""
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:g}"
    exponent = math.floor(math.log10(abs(value)) + 1e-9)
    mantissa = value / 10.0**exponent
    power = f"10{str(exponent).translate(SUPERSCRIPT)}"
    return power if abs(mantissa - 1) < 1e-9 else f"{mantissa:g}×{power}"


def log_axis(title: str, values: Iterable[float], max_ticks: int = 7) -> dict[str, Any]:
    """A log value axis over `values` (in their display unit): 1-2-5 ticks, padded range, title with unit."""
    span = log_range(values)
    axis: dict[str, Any] = {"type": "log", "title": {"text": title}}
    if span is None:
        return axis
    ticks, labels = value_ticks(*span, max_ticks=max_ticks)
    if len(ticks) < 2:  # a flat series: widen to the neighbouring ladder ticks so the axis is still labelled
        center = (span[0] + span[1]) / 2
        span = (min(span[0], math.floor(center)), max(span[1], math.floor(center) + 1))
        ticks, labels = value_ticks(*span, max_ticks=max_ticks)
    axis.update(range=list(span), tickmode="array", tickvals=ticks, ticktext=labels)
    return axis


def size_axis(axis: str | None, sizes: Iterable[float], max_labels: int = 8) -> dict[str, Any]:
    """The swept axis: log scale ticked at the measured sizes, titled with its unit."""
    values = list(sizes)
    ticks, labels = size_ticks(values, max_labels)
    out: dict[str, Any] = {"type": "log", "title": {"text": size_title(axis)}, "tickmode": "array", "tickvals": ticks, "ticktext": labels}
    span = log_range(values, pad=0.08)
    if span is not None:
        out["range"] = list(span)
    return out
