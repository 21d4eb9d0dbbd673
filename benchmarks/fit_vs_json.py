"""`effprof fit` of a large results file against reading it with json.loads, in one run (issue 26).

    python3 benchmarks/fit_vs_json.py big25k.jsonl [--repeats 3]

Make the file with `python3 -m effprof.synthetic -o big25k.jsonl --series 25000 --repeats 1`. Each repeat
times, one after the other, a plain read (`[json.loads(line) for line in file]`) and the whole command
`python3 -m effprof fit FILE --json > /dev/null` (a fresh process: imports, reading, validating, fitting,
noise marking, writing the JSON), and prints both and their ratio; then the median ratio and the load.
Machines differ about 3× in absolute speed, so the target (fit within 2× of the read) is the ratio.
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


def fit(path: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "effprof", "fit", path, "--json"], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a JSON Lines results file")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ratios = []
    for i in range(args.repeats):
        loads, fitted = read_json(args.results), fit(args.results)
        ratios.append(fitted / loads)
        print(f"run {i + 1}: json.loads {loads:.2f} s, effprof fit {fitted:.2f} s, ratio {fitted / loads:.2f}")
    load = os.getloadavg()[0]
    print(f"median ratio {statistics.median(ratios):.2f} over {args.repeats} runs; load average {load:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
