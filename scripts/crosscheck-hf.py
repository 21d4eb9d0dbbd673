#!/usr/bin/env python3
"""effprof's mechanisms beside the Hugging Face layers they correspond to: the README's table (effprof.measure.crosscheck).

    python3 scripts/crosscheck-hf.py [--seq-len 256] [--d-model 128] [--ops]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this repository's effprof, as `python3 -m` from its root

from effprof.measure.crosscheck import crosscheck, markdown  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python3 scripts/crosscheck-hf.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--ops", action="store_true", help="also list the aten ops whose FLOPs differ, per pair")
    args = parser.parse_args(argv)
    rows = crosscheck(args.seq_len, args.d_model)
    print(f"batch 1, seq_len {args.seq_len}, d_model {args.d_model}, float32, forward\n")
    print(markdown(rows))
    if args.ops:
        for r in rows:
            print(f"\n{r['effprof']} {r['effprof_config']} vs {r['hf']}:")
            for op, (ours, theirs) in r["differing_ops"].items():
                print(f"  {op:50s} {ours:>14,.0f} {theirs:>14,.0f}")


if __name__ == "__main__":
    main()
