#!/usr/bin/env python3
"""Mamba's selective scan in effprof against the authors' pure-torch reference, interleaved (issue #26).

    python3 scripts/bench-selective-scan.py [--seq-len 1024,4096,16384] [--rounds 5] [--threads N] [--json out.json]

The op measured is the selective scan with the block's output around it, (scan(x) + D ⊙ x) ⊙ SiLU(z), at
mamba's defaults: d_model 128, expand 2 (D_in = 256 channels), d_state 16, batch 1, chunk_size 64, float32 on
CPU. Every form gets the same values (Δ already positive, as after softplus), each in its own layout, made
before timing. Each round times every form once, in turn (effprof.measure.timing.time_call: warm-up, then
blocks until stable), so that a change in the machine's load touches all forms of a round alike; the table
gives the median over rounds of each form's time and of its ratio to the reference within the round.

Forms:
- reference: `reference_scan` below, the algorithm of the authors' `selective_scan_ref` (state-spaces/mamba,
  mamba_ssm/ops/selective_scan_interface.py, at commit 01887ed): Ā = exp(Δ A) and B̄x = Δ B x materialised
  for every token as (b, D_in, n, N) tensors, then a Python loop over the n tokens doing h = Ā_t h + B̄x_t and
  y_t = einsum(h, C_t). It is kept here, outside the package: effprof never runs it.
- effprof `impl=chunked` (the torch lane scan) and `impl=chunked_c` (the compiled kernel); the first line on
  stderr says which of them mamba's default, `impl=auto`, resolves to on this machine, and the load average.
Before timing, both effprof forms are checked against the reference (relative error ≤ 1e-4, else it exits).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

import torch
import torch.nn.functional as F

from effprof.measure.timing import time_call
from effprof.mechanisms.ssm.selective_scan import selective_scan


def reference_scan(u, delta, A, B, C, D, z):
    """The authors' reference algorithm for real A and B, C of shape (b, N, n) (the case mamba runs).

    u, delta, z: (b, D_in, n); A: (D_in, N); B, C: (b, N, n); D: (D_in,) -> (b, D_in, n).
    """
    batch, channels, n = u.shape
    decay = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))  # Ā for every token: (b, D_in, n, N)
    drive = torch.einsum("bdl,bnl,bdl->bdln", delta, B, u)  # B̄ x for every token: (b, D_in, n, N)
    h = A.new_zeros(batch, channels, A.shape[1])  # (b, D_in, N)
    ys = []
    for t in range(n):  # the token loop
        h = decay[:, :, t] * h + drive[:, :, t]
        ys.append(torch.einsum("bdn,bn->bd", h, C[:, :, t]))  # y_t = h_t C_t: (b, D_in)
    y = torch.stack(ys, dim=2)  # (b, D_in, n)
    return (y + u * D[:, None]) * F.silu(z)


def inputs(n: int, channels: int = 256, state: int = 16, batch: int = 1, seed: int = 0):
    """The same values in effprof's layout (b, n, ·) and in the reference's (b, ·, n)."""
    g = torch.Generator().manual_seed(seed)
    x, z = torch.randn(batch, n, channels, generator=g), torch.randn(batch, n, channels, generator=g)
    delta = F.softplus(torch.randn(batch, n, channels, generator=g) - 2)  # Δ > 0, as mamba's dt_proj gives
    A = -torch.arange(1, state + 1, dtype=torch.float32).repeat(channels, 1)  # S4D-real, mamba's initialisation
    B, C = torch.randn(batch, n, state, generator=g), torch.randn(batch, n, state, generator=g)
    D = torch.ones(channels)
    ours = (x, delta, A, B, C, D, z)
    theirs = tuple(t.transpose(1, 2).contiguous() for t in (x, delta)) + (A,) + tuple(
        t.transpose(1, 2).contiguous() for t in (B, C)) + (D, z.transpose(1, 2).contiguous())
    return ours, theirs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", default="1024,4096,16384")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-time", type=float, default=1.0, help="seconds per timing (time_call's max_time_s)")
    parser.add_argument("--threads", type=int, default=0, help="torch (and kernel) threads; 0: torch's default")
    parser.add_argument("--json", help="write the raw times here")
    args = parser.parse_args()
    from effprof.mechanisms.ssm.mamba import resolve_impl

    if args.threads:
        torch.set_num_threads(args.threads)

    auto = resolve_impl({"device": "cpu", "dtype": "float32", "d_state": 16, "impl": "auto"}, "forward")
    print(f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs, {torch.get_num_threads()} threads; "
          f"impl=auto resolves to {auto.impl} ({auto.reason})", file=sys.stderr)
    threads = torch.get_num_threads()
    results = {}
    for n in (int(s) for s in args.seq_len.split(",")):
        ours, theirs = inputs(n)
        with torch.no_grad():  # the forms compute the same function
            reference = reference_scan(*theirs).transpose(1, 2)
            for impl in ("chunked", "chunked_c"):
                got = selective_scan(*ours, impl, 64)[0]
                error = (got - reference).abs().max().item() / reference.abs().max().item()
                if error > 1e-4:
                    raise SystemExit(f"n={n}: impl={impl} differs from the reference by {error:.2e} (relative)")
        forms = {
            "reference": lambda theirs=theirs: reference_scan(*theirs),
            "chunked": lambda ours=ours: selective_scan(*ours, "chunked", 64),
            "chunked_c": lambda ours=ours: selective_scan(*ours, "chunked_c", 64),
        }
        times: dict[str, list[float]] = {name: [] for name in forms}
        with torch.no_grad():
            for _ in range(args.rounds):
                for name, fn in forms.items():
                    times[name].append(time_call(fn, "cpu", threads, args.max_time).median_s)
        ratios = {name: [r / t for r, t in zip(times["reference"], times[name], strict=True)] for name in forms if name != "reference"}
        results[n] = {"times_s": times, "ratios": ratios}
        row = ", ".join(f"{name} {statistics.median(v) * 1e3:.2f} ms" for name, v in times.items())
        speed = ", ".join(f"{name} {statistics.median(v):.1f}× (rounds {min(v):.1f}–{max(v):.1f})" for name, v in ratios.items())
        print(f"n={n}: {row}; faster than the reference: {speed}", flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
