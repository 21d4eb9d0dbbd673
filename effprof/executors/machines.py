"""Kinds of machine in a set of records: a fit must not silently mix points timed on different hardware."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any


def machine_kind(record: dict[str, Any]) -> str:
    """What a record's timing depends on: the GPU for a CUDA point, the CPU model for a CPU point."""
    device = str(record.get("device") or "cpu")
    if device.startswith("cuda"):
        return str(record.get("device_name") or "unknown GPU")
    return str(record.get("cpu_model") or record.get("device_name") or "unknown CPU")


def machine_kinds(records: Iterable[dict[str, Any]]) -> Counter:
    """How many measured (status ok) records came from each kind of machine."""
    return Counter(machine_kind(r) for r in records if r.get("status", "ok") == "ok")


def mixed_machines_warning(records: Iterable[dict[str, Any]]) -> str | None:
    """A one-line warning when the records were measured on more than one kind of machine, else None.

    Times (and the exponents fitted to them) of one series are only comparable on one kind of machine;
    FLOPs, parameters and state bytes do not depend on it.
    """
    kinds = machine_kinds(records)
    if len(kinds) < 2:
        return None
    listed = ", ".join(f"{kind} ({n})" for kind, n in kinds.most_common())
    return (f"these records were measured on {len(kinds)} kinds of machine: {listed}; time fits mix them "
            "(FLOPs, params and state bytes do not); run each series on one kind, or fit each kind's records apart")
