"""The environment a record was measured in."""

from __future__ import annotations

import datetime
import functools
import os
import platform
import socket
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


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name ("AMD EPYC 7763 64-Core Processor"), from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "cpu model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str) -> dict[str, Any]:
    """Where a point runs: the host, its CPU and the device (an executor adds the cluster's node_id)."""
    return {"hostname": socket.gethostname(), "cpu_model": cpu_model(), "device_name": device_name(device)}
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
    from effprof.version import __version__

    return {
        **machine_load(),
        "torch": torch.__version__,
        **machine(device),
        "threads": threads,
        "effprof": __version__,
        "git_sha": git_sha(),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
