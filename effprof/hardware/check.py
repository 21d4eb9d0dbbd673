"""Projection against measurement on a GPU: how far the datasheet roofline lies below the measured CUDA times.

    python3 scripts/hardware-check.py RESULTS.jsonl [RESULTS.jsonl ...] [--hardware NAME]

Reads records measured on a GPU (scripts/device-check.sh's cuda-*.jsonl), projects each ok, timed point onto the
hardware its device_name names (detect(); or --hardware NAME), and prints per point the measured time, the
projection (effprof.hardware.project: a lower bound, no launch overhead) and the error projected / measured − 1,
then the median absolute error and the worst point. A projection above the measurement (error > 0) breaks the
bound: it means a datasheet figure or a count is wrong, and is flagged. Exit 2 with one line for a bad argument
or a GPU no entry names.
"""

from __future__ import annotations

import statistics

# Substrings of torch.cuda.get_device_name() -> the registry entry (most specific first).
DEVICE_NAMES = (("H100 PCIe", "h100-pcie"), ("H100", "h100-sxm"), ("H200", "h200"), ("A100-SXM4-80GB", "a100-80gb"),
                ("A100 80GB", "a100-80gb"), ("A100", "a100-40gb"), ("L40S", "l40s"), ("L4", "l4"), ("RTX 4090", "rtx-4090"),
                ("MI300X", "mi300x"))


def detect(device_name: str) -> str | None:
    """The registry entry a GPU's name stands for ("NVIDIA H100 80GB HBM3" -> h100-sxm), or None."""
    for part, name in DEVICE_NAMES:
        if part.lower() in device_name.lower():
            return name
    return None


def compare(records: list[dict], hardware_name: str | None = None) -> tuple[list[dict], list[str]]:
    """Rows (mechanism, mode, config, measured, projected, error) and the lines to print."""
    from effprof.hardware.project import projection
    from effprof.hardware.user import find

    rows, lines = [], []
    for record in records:
        if record.get("status") != "ok" or not record.get("time_s"):
            continue
        name = hardware_name or detect(str(record.get("device_name", "")))
        if name is None:
            lines.append(f"skipped {record['mechanism']}: device {record.get('device_name')!r} is no registry entry (give --hardware)")
            continue
        fields = projection(record, find(name))
        if not fields:
            continue
        error = fields["projected_time_s"] / record["time_s"] - 1.0
        rows.append({"mechanism": record["mechanism"], "mode": record["mode"], "impl": record.get("impl") or "-", "dtype": record.get("dtype"),
                     "seq_len": record.get("seq_len"), "measured": record["time_s"], "projected": fields["projected_time_s"],
                     "limit": fields["projected_limit"], "hardware": name, "error": error})
    for r in rows:
        flag = "  ABOVE THE MEASUREMENT: not a bound" if r["error"] > 0 else ""
        lines.append(f"{r['hardware']} {r['mechanism']} {r['impl']} {r['dtype']} {r['mode']} seq_len={r['seq_len']}: measured "
                     f"{r['measured'] * 1e3:.4g} ms, projected {r['projected'] * 1e3:.4g} ms ({r['limit']}), error {100 * r['error']:+.0f}%{flag}")
    if rows:
        worst = max(rows, key=lambda r: abs(r["error"]))
        lines.append(f"median absolute error {100 * statistics.median(abs(r['error']) for r in rows):.0f}% over {len(rows)} points; worst "
                     f"{worst['mechanism']} {worst['mode']} seq_len={worst['seq_len']} ({100 * worst['error']:+.0f}%)")
    else:
        lines.append("no timed point to compare")
    return rows, lines
