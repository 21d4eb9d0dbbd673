#!/usr/bin/env python3
"""Predicted against measured on this machine: the roofline bound of every registered mechanism's default form.

    python3 scripts/roofline-check.py [--sizes 1024,2048,4096] [--threads 1] [--max-time 0.5] [--clock wall|cpu]
                                      [--mechanisms a,b] [--markdown table.md] [--output records.jsonl]

The command line of effprof.measure.roofline_check (its docstring says what is measured and how). Exit 2 with one
line for a bad argument.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this repository's effprof, as `python3 -m` from its root

from effprof.measure.roofline_check import DEFAULT_SIZES, markdown, measure, summarize  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 scripts/roofline-check.py", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="seq_len values, comma-separated")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-time", type=float, default=0.5, help="seconds timing each point")
    parser.add_argument("--mechanisms", default="", help="comma-separated (default: every registered mechanism)")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    parser.add_argument("--output", default=None, help="also append the records to this JSON Lines file")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="the table's clock: wall (default), or cpu: this thread's CPU time, ceilings and points alike, "
                             "immune to the share of the CPU other work takes (the wall-clock errors are printed too)")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        if not sizes or min(sizes) <= 0 or args.threads <= 0 or not args.max_time > 0:
            raise ValueError
    except ValueError:
        print(f"error: --sizes {args.sizes!r}, --threads {args.threads}, --max-time {args.max_time}: sizes are positive whole numbers, "
              "threads at least 1, max-time above 0", file=sys.stderr)
        return 2
    import torch

    from effprof.measure.env import cpu_model
    from effprof.measure.roofline import machine_ceilings
    from effprof.registry import list_mechanisms

    known = list_mechanisms()
    mechanisms = [m for m in args.mechanisms.split(",") if m] or known
    unknown = [m for m in mechanisms if m not in known]
    if unknown:
        print(f"error: --mechanisms {unknown[0]!r} is not registered; accepted: {', '.join(known)}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    # measured again now, not read from the cache: ceilings and points then share the machine's state (its load)
    if args.clock == "cpu" and args.threads != 1:
        print(f"error: --clock cpu needs --threads 1 (a thread's CPU time measures one thread's work), not {args.threads}", file=sys.stderr)
        return 2
    os.environ["EFFPROF_REMEASURE_CEILINGS"] = "1"
    machine_ceilings.cache_clear()
    try:
        ceilings = machine_ceilings("cpu", "float32", args.threads)  # kept in-process (lru_cache) for every point
        cpu_ceilings = machine_ceilings("cpu", "float32", 1, "cpu") if args.clock == "cpu" else None
    finally:
        del os.environ["EFFPROF_REMEASURE_CEILINGS"]
    load_before = os.getloadavg()[0]
    rows = measure(mechanisms, sizes, args.threads, args.max_time, args.output, cpu_ceilings.roofs() if cpu_ceilings else None)
    load_after = os.getloadavg()[0]
    shown = cpu_ceilings or ceilings
    header = (f"Roofline bound against measured {'CPU' if args.clock == 'cpu' else 'wall-clock'} time, forward mode, default forms, "
              f"float32, {args.threads} thread(s) on "
              f"{cpu_model()} ({os.cpu_count()} cores); 1-minute load {load_before:.1f} before, {load_after:.1f} after. "
              f"Ceilings (microbenchmarks only, by the same clock): matmul peak {shown.peak_flops_per_s / 1e9:.3g} GFLOP/s, bandwidth "
              f"{shown.in_cache_bytes_per_s / 1e9:.3g} GB/s in cache, {shown.beyond_cache_bytes_per_s / 1e9:.3g} GB/s beyond, "
              f"exp {shown.exp_flops_per_s / 1e9:.3g} G/s, {shown.overhead_s * 1e6:.3g} µs per op. "
              "Error = bound / measured − 1; the limiting term in brackets.")
    table = markdown(rows, sizes, header, args.clock)
    print(table)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(table)
    print(json.dumps({k: v for k, v in summarize(rows, "error_cpu" if args.clock == "cpu" else "error").items() if k != "worst"}),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
