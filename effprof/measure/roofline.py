"""This machine's ceilings, measured once per machine and cached: the roofs of the roofline model.

    matmul       square n×n matmuls (2·n³ FLOPs) at a ladder of n: the rate at each size (a small matmul runs
                 further from the peak than a large one); the peak is the best of them
    bandwidth    STREAM's copy (a[i] = b[i]: 2 arrays, into a buffer kept) and triad (a = b + s·c: 3 arrays, the
                 result a fresh tensor, as every out-of-place op makes its result: its allocation and first touch
                 are part of an op's traffic) at a ladder of working sets, from inside the L1/L2 caches to
                 beyond the last-level cache (bytes read + written / time); the model's memory roof at each size
                 is the triad (the form the ops of a forward pass take), the copy is kept beside it
    exp          torch.exp over a working set inside L2: the rate of transcendental ops (1 FLOP per element)
    overhead     a tiny module's forward (a linear layer on 8 features, an activation, a product, a sum, reshapes: 12
                 ops on a few dozen elements) over the ops it dispatches: the fixed cost of one op as a module runs
                 it, the dispatcher and the Python between ops (a bare op in a loop costs half as much here)

All in the point's dtype, with its thread count, on its device (CUDA: larger ladders; the overhead is then
a launch). Measured with torch.utils.benchmark (measure.timing.time_call), each figure from its
blocks' median, the statistic of every point's time_s: on a machine shared with other work a ceiling and a
point then carry the same share of it (STREAM's own rule, the fastest block, would set the roofs by the
moments nothing else ran, which a point of many milliseconds never sees); on a quiet machine the two agree.
Cached per machine in <cache>/effprof/ceilings/ (EFFPROF_CACHE, else XDG_CACHE_HOME, else ~/.cache;
the folder effprof's compiled kernels use), keyed by the CPU model or GPU name, the logical core count, the
thread count, the dtype and the torch version; EFFPROF_REMEASURE_CEILINGS=1 measures again and replaces the
cached figures. Ceilings measured on a busy machine (load at or above the core count) serve that run only and are
not cached. The model that turns ceilings and per-op counts into a bound is effprof.hardware.model.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from typing import Any

import torch

from effprof.hardware.model import Roofs
from effprof.kernels import cache_root
from effprof.measure.env import cpu_model, device_name
from effprof.measure.timing import time_call

MATMUL_SIZES = {"cpu": (64, 128, 256, 512, 1024), "cuda": (512, 1024, 2048, 4096, 8192)}
# working sets (bytes read + written by one pass); the last is sized beyond the last-level cache where it is known
BANDWIDTH_SIZES = {"cpu": (64 << 10, 512 << 10, 4 << 20, 32 << 20, 128 << 20), "cuda": (4 << 20, 64 << 20, 512 << 20, 4 << 30)}
MAX_BEYOND_CACHE = 1 << 30  # the largest CPU working set measured (two or three buffers together)
EXP_BYTES = 512 << 10  # the exp kernel's working set: inside a 1 MiB+ L2
CACHE_VERSION = 4  # 4: overhead from a tiny module; 3: the median block, the triad allocating its result (2: the fastest block; 1: out= triad)


@dataclass(frozen=True)
class Ceilings:
    """The measured roofs of one machine × dtype × thread count."""

    machine: str  # CPU model or GPU name
    cores: int
    threads: int
    dtype: str
    device: str  # cpu | cuda
    torch: str
    matmul: list[list[float]]  # [n, FLOPs of one matmul, FLOP/s]
    bandwidth: list[list[float]]  # [working-set bytes, copy bytes/s, triad bytes/s]
    exp_flops_per_s: float
    overhead_s: float
    last_level_cache_bytes: int | None = None
    clock: str = "wall"  # wall | cpu (the calling thread's CPU time: one thread only, immune to other work's share)

    @property
    def peak_flops_per_s(self) -> float:
        return max(rate for _, _, rate in self.matmul)

    @property
    def beyond_cache_bytes_per_s(self) -> float:
        return self.bandwidth[-1][2]

    @property
    def in_cache_bytes_per_s(self) -> float:
        return max(triad for _, _, triad in self.bandwidth)

    def roofs(self) -> Roofs:
        """The model's view: matmul rate by FLOPs per call (each rung as measured: a larger product can run slower than a
        smaller one that fits the caches), triad bandwidth by working set, exp rate, overhead per op."""
        return Roofs(matmul=tuple((flops, rate) for _, flops, rate in self.matmul),
                     bandwidth=tuple((size, triad) for size, _, triad in self.bandwidth),
                     transcendental_flops_per_s=self.exp_flops_per_s, overhead_s=self.overhead_s, name=self.machine)

    def record_fields(self) -> dict[str, float]:
        """The figures every record carries (records.Record)."""
        return {"peak_flops_per_s": self.peak_flops_per_s, "peak_bytes_per_s": self.beyond_cache_bytes_per_s,
                "bandwidth_in_cache_bytes_per_s": self.in_cache_bytes_per_s, "dispatch_overhead_s": self.overhead_s}


def last_level_cache_bytes() -> int | None:
    """The largest CPU cache (sysfs), or None where the OS does not say."""
    sizes = []
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in os.listdir(root):
            if entry.startswith("index"):
                with open(f"{root}/{entry}/size", encoding="ascii") as f:
                    text = f.read().strip().upper()
                scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
                sizes.append(int(text.rstrip("KMG")) * scale)
    except (OSError, ValueError):
        return None
    return max(sizes) if sizes else None


CLOCKS = ("wall", "cpu")


def _key(kind: str, device: str, dtype: str, threads: int, clock: str = "wall") -> dict[str, Any]:
    machine = device_name(device) if kind == "cuda" else cpu_model()
    return {"machine": machine, "cores": os.cpu_count() or 0, "threads": threads, "dtype": dtype, "device": kind, "torch": torch.__version__,
            "clock": clock}


def cache_file(key: dict[str, Any]):
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, key], sort_keys=True).encode()).hexdigest()[:16]
    clock = "" if key.get("clock", "wall") == "wall" else f"-{key['clock']}"
    return cache_root() / "ceilings" / f"{key['device']}-{key['dtype']}-{key['threads']}t{clock}-{digest}.json"


@functools.lru_cache(maxsize=8)
def machine_ceilings(device: str, dtype: str, threads: int, clock: str = "wall") -> Ceilings:
    """The ceilings of `device` in `dtype` with `threads` threads: from the cache, else measured (and cached).
    clock="cpu" times by the calling thread's CPU time (CPU, one thread): what the work costs the CPU, whatever share
    of it other work takes (scripts/roofline-check.py --clock cpu)."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    if clock not in CLOCKS or (clock == "cpu" and (kind == "cuda" or threads != 1)):
        raise ValueError(f"clock {clock!r}: accepted wall, or cpu on a CPU with one thread")
    key = _key(kind, device, dtype, threads, clock)
    path = cache_file(key)
    if os.environ.get("EFFPROF_REMEASURE_CEILINGS") != "1":
        cached = _read(path, key)
        if cached is not None:
            return cached
    ceilings = measure_ceilings(device, dtype, threads, key, clock)
    if _busy():  # measured while other work held every core: used for this run only, never cached for later runs
        return ceilings
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": CACHE_VERSION, **asdict(ceilings)}, indent=1), encoding="utf-8")
        os.replace(tmp, path)  # concurrent workers never read half a file
    except OSError:
        pass  # a read-only cache: the figures are still used, measured again next time
    return ceilings


def _busy() -> bool:
    """The machine is busy now, by effprof's one rule (metrics.is_busy: the 1-minute load at or above the core count).
    Ceilings measured then carry that moment's load; caching them would set every later run's roofs by it (a cache
    written at load 20 on 2 cores put the per-op overhead at 3.7 ms and the bandwidth at 9 MB/s)."""
    from effprof.store.metrics import is_busy

    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        return False
    return is_busy({"load_avg_1m": load, "cpu_count": os.cpu_count() or 1})


def _read(path, key: dict[str, Any]) -> Ceilings | None:
    """The cached ceilings, or None when there are none or they are unreadable or not this machine's."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data.pop("version")
        ceilings = Ceilings(**data)
        ceilings.roofs()  # positive, ascending: a damaged file is measured again
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if any(getattr(ceilings, k) != v for k, v in key.items()):
        return None
    return ceilings


def measure_ceilings(device: str, dtype: str, threads: int, key: dict[str, Any] | None = None, clock: str = "wall") -> Ceilings:
    kind = "cuda" if device.startswith("cuda") else "cpu"
    key = key or _key(kind, device, dtype, threads, clock)
    torch_dtype = getattr(torch, dtype)
    element = torch.empty((), dtype=torch_dtype).element_size()

    def timed(fn, budget: float = 0.2) -> float:  # the median, as every point's time_s (see the module's docstring)
        if clock == "cpu":
            return cpu_time(fn, budget)
        return time_call(fn, device, threads, max_time_s=budget, warmup=1).median_s

    matmul = []
    sizes = MATMUL_SIZES[kind] if kind == "cuda" or dtype == "float32" else MATMUL_SIZES[kind][:-1]  # CPU half precision is slow
    for n in sizes:
        a = torch.randn(n, n, device=device).to(torch_dtype)
        b = torch.randn(n, n, device=device).to(torch_dtype)
        flops = 2.0 * n**3
        matmul.append([n, flops, flops / timed(lambda a=a, b=b: a @ b)])
        del a, b
    llc = last_level_cache_bytes() if kind == "cpu" else None
    working_sets = list(BANDWIDTH_SIZES[kind])
    if llc:  # beyond the last-level cache: four times it, within MAX_BEYOND_CACHE
        working_sets[-1] = max(working_sets[-1], min(4 * llc, MAX_BEYOND_CACHE))
    bandwidth = []
    for size in working_sets:
        n = max(size // (2 * element), 1)
        a, b = torch.ones(n, device=device, dtype=torch_dtype), torch.empty(n, device=device, dtype=torch_dtype)
        copy = 2.0 * n * element / timed(lambda a=a, b=b: b.copy_(a))
        del a, b
        n = max(size // (3 * element), 1)
        a, b, c = (torch.ones(n, device=device, dtype=torch_dtype) for _ in range(3))
        triad = 3.0 * n * element / timed(lambda b=b, c=c: torch.add(b, c, alpha=0.5))  # a fresh result, as an op makes one
        del a, b, c
        bandwidth.append([size, copy, triad])
    n = EXP_BYTES // (2 * element)
    x, y = torch.randn(n, device=device, dtype=torch_dtype), torch.empty(n, device=device, dtype=torch_dtype)
    exp_rate = n / timed(lambda: torch.exp(x, out=y))
    overhead = _overhead_per_op(device, torch_dtype, timed)
    return Ceilings(**key, matmul=matmul, bandwidth=bandwidth, exp_flops_per_s=exp_rate, overhead_s=overhead,
                    last_level_cache_bytes=llc)


def cpu_time(fn, budget: float = 0.2, warmup: int = 1) -> float:
    """Median CPU time of fn() on the calling thread (torch.utils.benchmark with time.thread_time as its clock)."""
    import time

    import torch.utils.benchmark as benchmark

    from effprof.store.metrics import NOISE_THRESHOLD  # the one noise rule's threshold: timing stops once it is met

    for _ in range(warmup):
        fn()
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=1, timer=time.thread_time)
    return float(timer.adaptive_autorange(threshold=NOISE_THRESHOLD, min_run_time=min(0.1, budget), max_run_time=budget).median)


def _overhead_per_op(device: str, dtype: torch.dtype, timed) -> float:
    """Seconds per dispatched op of a tiny module's forward (its ops counted by FlopCounter, views included)."""
    from effprof.measure.flops import FlopCounter

    linear = torch.nn.Linear(8, 8).to(device=device, dtype=dtype)
    x = torch.randn(2, 4, 8, device=device).to(dtype)

    @torch.no_grad()
    def tiny() -> torch.Tensor:
        y = linear(x).view(8, 8)
        y = torch.nn.functional.silu(y) * y
        return (y + 1).sum(-1).unsqueeze(0).transpose(0, 1).reshape(-1)

    with FlopCounter() as counter:
        tiny()
    return timed(tiny) / sum(calls for _, _, calls in counter.ops.values())
