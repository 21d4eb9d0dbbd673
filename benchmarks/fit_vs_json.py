"""`effprof fit` of a large results file against reading it with json.loads, in one run (issue 26).

    python3 benchmarks/fit_vs_json.py big25k.jsonl [--repeats 3] [--baseline DIR]

Make the file with `python3 scripts/synthetic.py -o big25k.jsonl --series 25000 --repeats 1`. Each repeat
times, one after the other, a plain read (`[json.loads(line) for line in file]`) and the whole command
`python3 -m effprof fit FILE --json > /dev/null` (a fresh process: imports, reading, validating, fitting,
noise marking, writing the JSON), and prints both and their ratio, by wall time and by CPU time (user +
system: less disturbed by a shared machine's other work); then the median ratios and the load.
Machines differ about 3× in absolute speed, so the target (fit within 2× of the read) is the ratio.
--baseline DIR also times, in the same rounds, the effprof checked out in DIR (e.g. an earlier commit:
`git worktree add DIR COMMIT`, or `git archive COMMIT | tar -x -C DIR`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def read_json(path: str) -> tuple[float, float]:
    """(wall, CPU) seconds of reading the file with json.loads, line by line."""
    start, cpu = time.perf_counter(), time.process_time()
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    elapsed = time.perf_counter() - start, time.process_time() - cpu
    del records
    return elapsed


def fit(path: str, code: str | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of `python3 -m effprof fit FILE --json` in a fresh process (CPU: user + system)."""
    env = dict(os.environ, PYTHONPATH=code) if code else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "effprof", "fit", path, "--json"], stdout=subprocess.DEVNULL, check=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a JSON Lines results file")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", help="a folder holding another effprof checkout, timed in the same rounds")
    args = parser.parse_args()
    ratios: dict[str, list[float]] = {"wall": [], "cpu": [], "baseline wall": [], "baseline cpu": []}
    for i in range(args.repeats):
        loads, fitted = read_json(args.results), fit(args.results)
        ratios["wall"].append(fitted[0] / loads[0])
        ratios["cpu"].append(fitted[1] / loads[1])
        line = (f"run {i + 1}: json.loads {loads[0]:.2f} s ({loads[1]:.2f} s CPU), effprof fit {fitted[0]:.2f} s "
                f"({fitted[1]:.2f} s CPU), ratio {fitted[0] / loads[0]:.2f} ({fitted[1] / loads[1]:.2f} CPU)")
        if args.baseline:
            before = fit(args.results, args.baseline)
            ratios["baseline wall"].append(before[0] / loads[0])
            ratios["baseline cpu"].append(before[1] / loads[1])
            line += f"; baseline fit {before[0]:.2f} s ({before[1]:.2f} s CPU), ratio {before[0] / loads[0]:.2f} ({before[1] / loads[1]:.2f} CPU)"
        print(line)
    medians = ", ".join(f"{kind} {statistics.median(values):.2f}" for kind, values in ratios.items() if values)
    print(f"median ratios over {args.repeats} runs: {medians}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
