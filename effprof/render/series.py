"""Labels and units shared by every renderer."""

from __future__ import annotations

import math
from typing import Any

from effprof.frames import add_labels, fmt_value, swept_axis, varying_keys  # noqa: F401  (re-exported for renderers)

METRIC_LABELS = {
    "flops_counted": "FLOPs (counted)",
    "flops_analytic": "FLOPs (analytic)",
    "flops_fvcore": "FLOPs (fvcore)",
    "time_s": "time (median)",
    "peak_bytes": "peak memory",
    "activation_bytes": "activation memory",
    "state_bytes": "decode state / KV cache",
    "params": "parameters",
}
TABLE_METRICS = ["flops_counted", "time_s", "peak_bytes", "activation_bytes", "state_bytes"]


def human(value: Any, metric: str) -> str:
    """FLOPs in k/M/G/T, bytes in KiB/MiB/GiB, seconds in ns/µs/ms/s."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    if metric.startswith("time"):
        for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {unit}"
        return f"{value / 1e-9:.3g} ns"
    if metric.endswith("bytes"):
        for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {unit}"
        return f"{value:.0f} B"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"
