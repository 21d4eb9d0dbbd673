"""Wall time of one call: warm-up, then repeated blocks until stable; median and IQR.

Built on torch.utils.benchmark (which synchronises CUDA around each block and
runs with a fixed thread count). Nothing is timed under a FLOP counter or a
memory tracker: the harness times last, with no dispatch mode active.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.utils.benchmark as benchmark

from effprof.store.metrics import NOISE_THRESHOLD, is_noisy_timing  # the one noise rule and its threshold (plain Python)


@dataclass(frozen=True)
class Timing:
    median_s: float
    iqr_s: float
    reps: int  # calls measured
    samples_s: tuple[float, ...]  # per-call time of each measured block

    @property
    def noisy(self) -> bool:
        """The one noise rule (metrics.is_noisy_timing), which a record's `time_noisy` stores."""
        return is_noisy_timing(self.median_s, self.iqr_s)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], Any], device: str, threads: int, max_time_s: float = 1.0, warmup: int = 2) -> Timing:
    """Median time of fn() over repeated blocks; stops once IQR/median < 10% or max_time_s is spent.

    On CUDA `device` is the current GPU while timing: the benchmark timer synchronises the current GPU only,
    so work left running on another (cuda:1 while cuda:0 is current) would be timed as its launch.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.cuda.device(device) if device.startswith("cuda") else nullcontext():
            for _ in range(warmup):
                fn()
            synchronize(device)
            timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
            m = timer.adaptive_autorange(threshold=NOISE_THRESHOLD, min_run_time=min(0.1, max_time_s), max_run_time=max_time_s)
            return Timing(float(m.median), float(m.iqr), int(len(m.times) * m.number_per_run), tuple(float(t) for t in m.times))
    finally:
        torch.set_num_threads(previous)
