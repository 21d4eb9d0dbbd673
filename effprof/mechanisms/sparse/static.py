"""Patterns fixed by (n, config): built once in numpy, cached per device, and the padding they assume."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from effprof.mechanisms.sparse.layout import KeyPart, Layout, Plan


def padded(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def pad_tokens(x: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad (b, h, n, d) to `length` tokens; padded keys come after every real query, so causality masks them."""
    return F.pad(x, (0, 0, 0, length - x.shape[2])) if length > x.shape[2] else x


@dataclass(frozen=True)
class StaticPart:
    kind: str
    index: np.ndarray
    blocked: np.ndarray


def static_plan(build: Callable[..., tuple[Layout, list[StaticPart]]], *args: Any, device: str | torch.device = "cpu") -> Plan:
    """A pattern fixed by (n, config): built once in numpy and cached per device.

    Static layouts are index bookkeeping done before the kernel runs (block-sparse kernels take a
    precomputed layout), so they carry no floating-point work and are not re-derived per call.
    """
    return _static_plan(build, args, str(device))


@functools.lru_cache(maxsize=64)
def _static_plan(build: Callable, args: tuple, device: str) -> Plan:
    layout, parts = build(*args)
    return Plan(layout, tuple(
        KeyPart(p.kind, torch.as_tensor(np.maximum(p.index, 0).copy(), dtype=torch.long, device=device),
                torch.as_tensor(np.array(p.blocked, dtype=bool), device=device))
        for p in parts
    ))


def plan_bias(build: Callable[..., tuple[Layout, list[StaticPart]]], *args: Any) -> np.ndarray:
    """(G, r, ΣL) additive bias of a static plan's parts in order: 0 where attended, −∞ where blocked."""
    layout, parts = build(*args)
    G, r = layout.groups, layout.rows
    blocked = np.concatenate([np.broadcast_to(p.blocked, (G, r, p.index.shape[-1])) for p in parts], axis=-1)
    return np.where(blocked, -np.inf, 0.0).astype(np.float32)


def plan_index(build: Callable[..., tuple[Layout, list[StaticPart]]], *args: Any) -> np.ndarray:
    """(G, ΣL) key positions of a static plan's parts in order (a shared list repeated per group; −1 -> 0, blocked)."""
    layout, parts = build(*args)
    return np.concatenate([np.broadcast_to(np.maximum(p.index, 0), (layout.groups, p.index.shape[-1])) for p in parts], axis=-1)


def static_tensor(build: Callable[..., np.ndarray], *args: Any, device: str | torch.device = "cpu", dtype=torch.bool) -> torch.Tensor:
    """A cached tensor fixed by (n, config), e.g. the dense mask of a static pattern."""
    return _static_tensor(build, args, str(device), dtype)


@functools.lru_cache(maxsize=32)
def _static_tensor(build: Callable, args: tuple, device: str, dtype) -> torch.Tensor:
    return torch.as_tensor(build(*args), device=device).to(dtype)
