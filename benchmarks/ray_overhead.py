"""Ray's own cost per point (issue 26): the same points that only build the module, run locally and through
`--executor ray`, interleaved, on one local Ray instance started once (its start-up is not counted).

    python3 benchmarks/ray_overhead.py [--points 24] [--rounds 3]

Each point builds softmax_attention (d_model 64) at one seq_len and measures nothing else (no FLOPs, timing,
memory or roofline), reserving 2 CPUs so that Ray runs the points one at a time as the local executor does.
A first Ray pass starts the workers and is not counted. Per round: wall time per point locally and on Ray,
and their difference, Ray's overhead per point; then the median overhead and the load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from effprof.executors.ray import RayExecutor
from effprof.measure.harness import Options
from effprof.runner import plan, run_points

BUILD_ONLY = Options(threads=2, count_flops=False, fvcore=False, memory=False, timing=False, roofline=False)


def per_point(points, executor=None) -> float:
    start = time.perf_counter()
    records = run_points(points, BUILD_ONLY, executor=executor)
    elapsed = time.perf_counter() - start
    bad = [r for r in records if r["status"] != "ok"]
    if bad or len(records) != len(points):
        raise SystemExit(f"{len(bad)} points failed: {bad[:1]}")
    return elapsed / len(points)


def main() -> None:
    import ray

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    points = plan(["softmax_attention"], {"seq_len": [16 * (i + 1) for i in range(args.points)]}, ["forward"], {"d_model": 64})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with RayExecutor() as executor:
            per_point(points, executor)  # starts the workers
            overheads = []
            for i in range(args.rounds):
                local, remote = per_point(points), per_point(points, executor)
                overheads.append(remote - local)
                print(f"round {i + 1}: local {local * 1e3:.1f} ms/point, ray {remote * 1e3:.1f} ms/point, "
                      f"overhead {(remote - local) * 1e3:.1f} ms/point")
    finally:
        ray.shutdown()
    print(f"median overhead {statistics.median(overheads) * 1e3:.1f} ms/point over {args.rounds} rounds of {args.points} points; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
