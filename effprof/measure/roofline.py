"""The machine's roofline, measured once per run: matmul peak (FLOP/s) and memory bandwidth (bytes/s).

- peak: a square matmul large enough to be compute-bound (2·n³ FLOPs), median of repeats.
- bandwidth: copying a buffer much larger than the caches (read + write = 2× its bytes).
Both in the point's dtype, with the point's thread count, on its device, and cached for
the process: a sweep measures them once. A point's achieved FLOP/s is flops_counted /
time_s; its arithmetic intensity is flops_counted / bytes_moved (see flops.FlopCounter).
"""

from __future__ import annotations

import functools

import torch

from effprof.measure.timing import time_call

MATMUL_SIZE = {"cpu": 1024, "cuda": 8192}
COPY_BYTES = {"cpu": 256 << 20, "cuda": 2 << 30}


@functools.lru_cache(maxsize=8)
def machine_roofline(device: str, dtype: str, threads: int) -> tuple[float, float]:
    """(peak FLOP/s, bandwidth bytes/s) of `device` in `dtype` with `threads` CPU threads."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    torch_dtype = getattr(torch, dtype)
    n = MATMUL_SIZE[kind] if kind == "cuda" or dtype == "float32" else MATMUL_SIZE[kind] // 2  # CPU half precision is slow
    a = torch.randn(n, n, device=device).to(torch_dtype)
    b = torch.randn(n, n, device=device).to(torch_dtype)
    matmul = time_call(lambda: a @ b, device, threads, max_time_s=0.5, warmup=1)
    buffer = torch.empty(COPY_BYTES[kind] // a.element_size(), device=device, dtype=torch_dtype)
    target = torch.empty_like(buffer)
    copy = time_call(lambda: target.copy_(buffer), device, threads, max_time_s=0.5, warmup=1)
    return 2.0 * n**3 / matmul.median_s, 2.0 * buffer.numel() * buffer.element_size() / copy.median_s
