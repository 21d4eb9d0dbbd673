"""A roofline projection of measured or counted points onto named hardware (`--hardware NAME`).

A projection is a lower bound under stated assumptions, never a measurement: each point's per-op counts
(records' `ops`: FLOPs, bytes, calls) run through effprof.hardware.model with the device's datasheet roofs —
one matmul peak for the record's dtype (registry.RECORD_DTYPES), one memory bandwidth, no dispatch or launch
overhead, no cache (every op's traffic at the memory bandwidth), perfect overlap within an op and none between
ops. A record without per-op counts (an older record, or one counted without them) is projected from its
totals, max(flops_counted / peak, bytes_moved / bandwidth): coarser (a layer's matmuls and its elementwise
work share one max), still a lower bound. Needs counted FLOPs and bytes only, never a time: count-only
records project alike.
"""

from __future__ import annotations

from typing import Any

from effprof.hardware.model import Roofs, bound, op_counts, totals_bound
from effprof.hardware.registry import RECORD_DTYPES, Hardware
from effprof.store.records import is_number

ASSUMPTIONS = ("roofline projection: a lower bound, not a measurement — per op max(FLOPs / datasheet peak in the record's dtype, "
               "bytes / datasheet bandwidth), summed over ops; no launch overhead, no cache reuse between ops")


def roofs(hardware: Hardware, dtype: str) -> Roofs | None:
    """The datasheet roofs a record in `dtype` (float32, bfloat16, float16) runs under, or None where the entry gives no peak."""
    peak = hardware.flops.get(RECORD_DTYPES.get(dtype, ""))
    if peak is None:
        return None
    return Roofs(matmul=((0.0, peak),), bandwidth=((0.0, hardware.bandwidth),), name=hardware.name)


def projection(record: dict[str, Any], hardware: Hardware) -> dict[str, Any]:
    """The projected_* fields of one record (records.Record), or {} where it cannot be projected (failed, not counted,
    a dtype the entry has no peak for)."""
    if record.get("status", "ok") != "ok":
        return {}
    ceiling = roofs(hardware, str(record.get("dtype", "float32")))
    if ceiling is None:
        return {}
    ops = record.get("ops")
    if isinstance(ops, dict) and ops:
        result = bound(op_counts(ops), ceiling, overhead=False)
    elif is_number(record.get("flops_counted")) and is_number(record.get("bytes_moved")):
        result = totals_bound(float(record["flops_counted"]), float(record["bytes_moved"]), ceiling)
    else:
        return {}
    return {"projected_time_s": result.time_s, "projected_limit": result.limit, "projected_hardware": hardware.name}


def project_records(records: list[dict[str, Any]], hardware: Hardware) -> tuple[list[dict[str, Any]], list[str]]:
    """Each record with its projection added (new dicts), and one line per dtype that could not be projected."""
    out, missing = [], set()
    for record in records:
        fields = projection(record, hardware)
        if not fields and record.get("status", "ok") == "ok" and roofs(hardware, str(record.get("dtype", "float32"))) is None:
            missing.add(str(record.get("dtype")))
        stale = {k: None for k in ("projected_time_s", "projected_limit", "projected_hardware") if k in record}
        out.append({**record, **stale, **fields})
    notes = [f"{hardware.name} gives no peak for {dtype} (it gives {', '.join(hardware.flops)}): those points are not projected"
             for dtype in sorted(missing)]
    return out, notes
