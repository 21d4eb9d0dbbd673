"""The environment a record was measured in."""

from __future__ import annotations

import datetime
import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch


@functools.lru_cache(maxsize=1)
def git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine()


def machine_load() -> dict[str, Any]:
    """The machine's 1-minute load average (runnable tasks) and its logical CPU count.

    A load above the core count means other work competed for the cores while a point was
    timed; renderers flag such points' timings. None where the OS has no load average.
    """
    try:
        load = round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        load = None
    return {"load_avg_1m": load, "cpu_count": os.cpu_count()}


def environment(device: str, threads: int) -> dict[str, Any]:
    from effprof import __version__

    return {
        **machine_load(),
        "torch": torch.__version__,
        "device_name": device_name(device),
        "threads": threads,
        "effprof": __version__,
        "git_sha": git_sha(),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
