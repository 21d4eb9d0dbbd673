"""The sliding window, Longformer and BigBird against sdpa at 16K tokens (issue #26), and the four projections alone.

    python3 scripts/bench-window.py [--rounds 5] [--seq-len 16384] [--before-window OLD.py]

d_model 512, 8 heads, forward under no_grad, CPU float32; sliding_window at window 256, longformer and bigbird at
their defaults. Longformer and BigBird run both their `blocked` (gathered) and `fused` forms. --before-window
times an earlier sliding_window.py too (e.g. `git show REV:effprof/mechanisms/sparse/sliding_window.py > OLD.py`),
loaded without registering it, with its own defaults and the same weights. Each round times every form once, in
turn; the table gives median times and the median of the per-round ratios (sdpa / form), so load that drifts
between rounds moves every form alike. Nothing here is a test: no time is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time
import types

import torch

from effprof.config import resolve_config
from effprof.registry import build, get_spec


def old_window(path: str, config: dict) -> torch.nn.Module:
    source = open(path).read().replace("from effprof.registry import Claim, Cost, MechanismSpec, Paper, register",
                                       "from effprof.registry import Claim, Cost, MechanismSpec, Paper\nregister = lambda spec: (lambda f: f)")
    module = types.ModuleType("before_sliding_window")
    exec(compile(source, path, "exec"), module.__dict__)
    return module.SlidingWindowAttention(resolve_config(get_spec("sliding_window"), {**config, "block_size": 128}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seq-len", type=int, default=16384)
    parser.add_argument("--before-window", help="an earlier sliding_window.py to time beside the current one (block_size 128)")
    args = parser.parse_args()
    n, d_model, heads = args.seq_len, 512, 8
    config = {"seq_len": n, "d_model": d_model, "n_heads": heads, "batch": 1}
    forms: dict[str, torch.nn.Module] = {}
    window = build("sliding_window", window=256, **config).eval()
    if args.before_window:
        before = old_window(args.before_window, {**config, "window": 256}).eval()
        before.load_state_dict(window.state_dict())
        forms["sliding_window before"] = before
    forms["sliding_window"] = window
    for name in ("longformer", "bigbird"):
        forms[f"{name} blocked"] = build(name, impl="blocked", **config).eval()
        forms[f"{name} fused"] = build(name, impl="fused", **config).eval()
        forms[f"{name} fused"].load_state_dict(forms[f"{name} blocked"].state_dict())
    forms["softmax_attention (sdpa)"] = build("softmax_attention", **config).eval()
    projections = [torch.nn.Linear(d_model, d_model, bias=False) for _ in range(4)]
    x = torch.randn(1, n, d_model)
    calls = {name: (lambda m=m: m(x)) for name, m in forms.items()}
    calls["projections alone (4 × Linear)"] = lambda: [p(x) for p in projections]
    times: dict[str, list[float]] = {name: [] for name in calls}
    with torch.no_grad():
        for a, b in (("sliding_window before", "sliding_window"), ("longformer blocked", "longformer fused"), ("bigbird blocked", "bigbird fused")):
            if a in forms:
                print(f"{b} vs {a}: max |difference| {(forms[a](x) - forms[b](x)).abs().max().item():.1e}")
        for name in calls:  # warm-up: plans, masks
            calls[name]()
        for _ in range(args.rounds):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
    sdpa = times["softmax_attention (sdpa)"]
    print(f"seq_len {n}, {args.rounds} rounds, {torch.get_num_threads()} threads")
    print(f"{'form':34s} {'median':>9s}   sdpa / form: median of rounds (range)")
    for name, t in times.items():
        ratios = [s / u for s, u in zip(sdpa, t, strict=True)]
        print(f"{name:34s} {statistics.median(t) * 1e3:7.0f} ms   {statistics.median(ratios):5.2f}× ({min(ratios):.2f}–{max(ratios):.2f})")
    for a, b in (("sliding_window before", "sliding_window"), ("longformer blocked", "longformer fused"), ("bigbird blocked", "bigbird fused")):
        if a in times:
            gain = [u / v for u, v in zip(times[a], times[b], strict=True)]
            print(f"{b} is {statistics.median(gain):.2f}× as fast as {a} (rounds {min(gain):.2f}–{max(gain):.2f})")


if __name__ == "__main__":
    main()
