#!/usr/bin/env python3
"""Write synthetic result records with known scaling laws (effprof.store.synthetic) to a JSON Lines file.

    python3 scripts/synthetic.py -o big.jsonl --series 25000 --sizes 4 --repeats 1
    python3 scripts/synthetic.py -o big.jsonl --series 1 --sizes 4 --repeats 25000

A bad argument is one line on stderr and exit 2, before the file is opened.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this repository's effprof, as `python3 -m` from its root

from effprof.store.synthetic import SyntheticError, write  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 scripts/synthetic.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", required=True, help="JSON Lines file to write")
    parser.add_argument("--series", type=int, default=1, help="number of series (one mechanism name each)")
    parser.add_argument("--sizes", type=int, default=4, help="sequence lengths per series: 256, 512, ...")
    parser.add_argument("--repeats", type=int, default=1, help="records per size")
    parser.add_argument("--noise", type=float, default=0.03, help="log-normal σ of the timing samples")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        count = write(args.output, series=args.series, sizes=args.sizes, repeats=args.repeats, noise=args.noise, seed=args.seed)
    except SyntheticError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {args.output}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"{count} records written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
