"""Predicted against measured on this machine: the roofline bound of every registered mechanism's default form.

    python3 scripts/roofline-check.py [--sizes 1024,2048,4096] [--threads 1] [--max-time 0.5]
                                      [--markdown table.md] [--output records.jsonl]

The model (effprof.hardware.model) is calibrated on microbenchmarks only (measure.roofline: matmuls, STREAM
copy/triad, exp, a tiny op), never on the mechanisms. Each mechanism is measured in forward mode at its
defaults (default impl, d_model, batch) at each size; a point's prediction is its roofline_bound_s and its error
is bound / measured − 1 (negative: faster than predicted is impossible for a true bound, so a negative error
says how far the machine runs from its roofs). The table gives, per mechanism, the measured median time and
the error at each size and the mechanism's median absolute error; then the median absolute error over every
point, and the worst point. The same, against each point's fastest timed block, is given beside it: on a
machine shared with other work the median carries the other work's share, the fastest block less of it.

The ceilings are measured again at the start of the run (and replace the cached ones), so that they and the points
share the machine's state. One thread by default: with two or more, a point's parallel regions wait for the slowest thread, and on a
busy machine that is a thread the scheduler has put aside (a ceiling and a point then measure the scheduler).
The 1-minute load average is printed with the table: quote it beside the figures.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

DEFAULT_SIZES = (1024, 2048, 4096)  # 16384 with --sizes: a 16K forward of a hybrid or diffusion stack takes 10-60 s here


def _error(bound: float, measured: float) -> float:
    return bound / measured - 1.0


def summarize(rows: list[dict[str, Any]], key: str = "error") -> dict[str, Any]:
    """Median absolute error and the worst point (largest |error|) of rows with an `error` (or `key`) figure."""
    errors = [(abs(r[key]), r) for r in rows if r.get(key) is not None]
    if not errors:
        return {"points": 0, "median_abs": None, "worst": None, "within_2x": 0}
    worst = max(errors, key=lambda e: e[0])[1]
    # "worse than 2×": the bound off by more than a factor 2 either way
    within = sum(1 for _, r in errors if 0.5 <= 1.0 + r[key] <= 2.0)
    return {"points": len(errors), "median_abs": statistics.median(e for e, _ in errors), "worst": worst, "within_2x": within}


def measure(mechanisms: list[str], sizes: list[int], threads: int, max_time: float, output: str | None,
            cpu_roofs: Any = None) -> list[dict[str, Any]]:
    """Each point measured (its record's wall-clock bound and time); with `cpu_roofs` (ceilings by CPU time), also its
    CPU time and the bound under those roofs."""
    from effprof.hardware.model import bound, op_counts
    from effprof.measure.harness import Options, measure_point
    from effprof.store.records import append

    options = Options(threads=threads, max_time_s=max_time, fvcore=False, memory=False)
    rows = []
    for name in mechanisms:
        for size in sizes:
            start = time.perf_counter()
            record = measure_point(name, "forward", {"seq_len": size}, options)
            if output:
                append(output, record)
            row = {"mechanism": name, "seq_len": size, "status": record["status"], "error_text": record.get("error", "")}
            if record["status"] == "ok" and record.get("time_s") and record.get("roofline_bound_s"):
                fastest = min(record.get("time_samples_s") or [record["time_s"]])
                row.update(measured=record["time_s"], fastest=fastest, bound=record["roofline_bound_s"], limit=record["roofline_limit"],
                           error=_error(record["roofline_bound_s"], record["time_s"]),
                           error_fastest=_error(record["roofline_bound_s"], fastest), load=record.get("load_avg_1m"))
                if cpu_roofs is not None:
                    cpu = _cpu_time(name, size, max_time)
                    cpu_bound = bound(op_counts(record["ops"]), cpu_roofs)
                    row.update(measured_cpu=cpu, bound_cpu=cpu_bound.time_s, limit_cpu=cpu_bound.limit, error_cpu=_error(cpu_bound.time_s, cpu))
            rows.append(row)
            print(f"  {name} seq_len={size}: {record['status']}"
                  + (f" measured {row['measured'] * 1e3:.3g} ms, bound {row['bound'] * 1e3:.3g} ms ({row['limit']}), "
                     f"error {100 * row['error']:+.0f}%" if "error" in row else f" {row['error_text'][:100]}")
                  + f"  [{time.perf_counter() - start:.1f} s]", file=sys.stderr, flush=True)
    return rows


def _cpu_time(name: str, size: int, max_time: float) -> float:
    """The point's CPU time per call on this thread (measure.roofline.cpu_time), built as the harness builds it."""
    from effprof.measure.harness import check_point
    from effprof.measure.roofline import cpu_time
    from effprof.measure.workload import make_workload
    from effprof.registry import build

    spec, config = check_point(name, "forward", {"seq_len": size})
    work = make_workload(build(spec.name, seed=0, **config), config, "forward", seed=0)
    return cpu_time(work.run, max_time) / work.per_call


def markdown(rows: list[dict[str, Any]], sizes: list[int], header: str, clock: str = "wall") -> str:
    """The README table: a row per mechanism, the measured time and error per size (wall clock, or CPU time with
    clock="cpu"), its median |error|."""
    measured, bound_error, limit = ("measured", "error", "limit") if clock == "wall" else ("measured_cpu", "error_cpu", "limit_cpu")
    lines = [header, "",
             "| mechanism | " + " | ".join(f"{s} tokens: measured, error" for s in sizes) + " | median abs error |",
             "|---|" + "---|" * len(sizes) + "---|"]
    by_mechanism: dict[str, dict[int, dict[str, Any]]] = {}
    for r in rows:
        by_mechanism.setdefault(r["mechanism"], {})[r["seq_len"]] = r
    for name, points in by_mechanism.items():
        cells = []
        for s in sizes:
            r = points.get(s)
            if r is None or bound_error not in r:
                cells.append(r["status"] if r else "–")
            else:
                cells.append(f"{r[measured] * 1e3:.3g} ms, {100 * r[bound_error]:+.0f}% ({r[limit]})")
        own = summarize(list(points.values()), bound_error)
        cells.append(f"{100 * own['median_abs']:.0f}%" if own["median_abs"] is not None else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    for key, what in (("error_cpu", "CPU time (the table)"), ("error", "median wall time"), ("error_fastest", "fastest timed block (wall)")):
        s = summarize(rows, key)
        if not s["points"]:
            continue
        worst = s["worst"]
        lines.append(f"Against the {what}: median absolute error {100 * s['median_abs']:.0f}% over {s['points']} points; "
                     f"worst {worst['mechanism']} at {worst['seq_len']} tokens ({100 * worst[key]:+.0f}%); "
                     f"{s['within_2x']} of {s['points']} points within 2×.")
    return "\n".join(lines) + "\n"
