#!/usr/bin/env python3
"""Projection against measurement on a GPU: how far the datasheet roofline lies below the measured CUDA times.

    python3 scripts/hardware-check.py RESULTS.jsonl [RESULTS.jsonl ...] [--hardware NAME]

The command line of effprof.hardware.check (its docstring says what is compared). Exit 2 with one line for a bad
argument or a GPU no entry names.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this repository's effprof, as `python3 -m` from its root

from effprof.hardware.check import compare  # noqa: E402
from effprof.render.escape import terminal  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    from effprof.hardware.user import HardwareError, find
    from effprof.store.records import ResultsError, read

    parser = argparse.ArgumentParser(prog="python3 scripts/hardware-check.py", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+")
    parser.add_argument("--hardware", default=None, help="the registry entry to project onto (default: detected from device_name)")
    args = parser.parse_args(argv)
    try:
        if args.hardware is not None:
            find(args.hardware)
        records = [r for path in args.results for r in read(path)]
    except (HardwareError, ResultsError) as e:
        print(f"error: {terminal(str(e))}", file=sys.stderr)
        return 2
    for line in compare(records, args.hardware)[1]:
        print(terminal(line))  # the lines carry a results file's own text (mechanism, device_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
