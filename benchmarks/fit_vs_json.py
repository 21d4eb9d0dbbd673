"""`effprof fit` of a large results file against reading it with json.loads, in one run (issue 26).

    python3 benchmarks/fit_vs_json.py big25k.jsonl [--repeats 3] [--baseline DIR]

Make the file with `python3 -m effprof.synthetic -o big25k.jsonl --series 25000 --repeats 1`. Each repeat
times, one after the other, a plain read (`[json.loads(line) for line in file]`) and the whole command
`python3 -m effprof fit FILE --json > /dev/null` (a fresh process: imports, reading, validating, fitting,
noise marking, writing the JSON), and prints both and their ratio; then the median ratio and the load.
Machines differ about 3× in absolute speed, so the target (fit within 2× of the read) is the ratio.
--baseline DIR also times, in the same rounds, the effprof checked out in DIR (e.g. an earlier commit:
`git worktree add DIR COMMIT`, or `git archive COMMIT | tar -x -C DIR`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def read_json(path: str) -> float:
    start = time.perf_counter()
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    elapsed = time.perf_counter() - start
    del records
    return elapsed


def fit(path: str, code: str | None = None) -> float:
    env = dict(os.environ, PYTHONPATH=code) if code else None
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "effprof", "fit", path, "--json"], stdout=subprocess.DEVNULL, check=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a JSON Lines results file")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", help="a folder holding another effprof checkout, timed in the same rounds")
    args = parser.parse_args()
    ratios, earlier = [], []
    for i in range(args.repeats):
        loads, fitted = read_json(args.results), fit(args.results)
        ratios.append(fitted / loads)
        line = f"run {i + 1}: json.loads {loads:.2f} s, effprof fit {fitted:.2f} s, ratio {fitted / loads:.2f}"
        if args.baseline:
            before = fit(args.results, args.baseline)
            earlier.append(before / loads)
            line += f"; baseline fit {before:.2f} s, ratio {before / loads:.2f}"
        print(line)
    load = os.getloadavg()[0]
    summary = f"median ratio {statistics.median(ratios):.2f}"
    if earlier:
        summary += f" (baseline {statistics.median(earlier):.2f})"
    print(f"{summary} over {args.repeats} runs; load average {load:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
