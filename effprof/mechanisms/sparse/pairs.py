"""Which (query, key) pairs a sparse layer attends: from a plan, and as the spec's `pattern` for rendering."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from effprof.mechanisms.sparse.layout import KINDS, Plan


def plan_pairs(plan: Plan, n: int, batch_index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(query, key) positions a plan attends for real queries (< n), union over heads: (rows, cols)."""
    layout = plan.layout
    if layout.order is not None:
        q_pos = layout.order[batch_index].cpu().numpy()  # (h, G, r)
    else:
        q_pos = layout.positions()[None]  # (1, G, r)
    rows, cols = [], []
    for part in plan.parts:
        index = part.index.cpu().numpy()
        if index.ndim > KINDS[part.kind]:
            index = index[batch_index]
        else:
            index = index[None]
        blocked = np.zeros((), dtype=bool)
        for mask in part.blocked if isinstance(part.blocked, tuple) else (part.blocked,):
            mask = mask.cpu().numpy()
            mask = mask[batch_index if mask.shape[0] > 1 else 0] if mask.ndim > 3 else mask[None]
            blocked = blocked | mask
        if part.kind == "shared":
            keys = index[:, None, None, :]
        elif part.kind == "group":
            keys = index[:, :, None, :]
        else:
            keys = index
        queries = q_pos[..., None]
        keys, queries, blocked = np.broadcast_arrays(keys, queries, blocked)
        keep = ~blocked & (queries < n)
        rows.append(queries[keep])
        cols.append(keys[keep])
    pairs = unique_sorted(np.concatenate(rows).astype(np.int64) * n + np.concatenate(cols))
    return pairs // n, pairs % n


def unique_sorted(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a sort and a comparison; np.unique hashes, slowly, at millions of ints)."""
    x = np.sort(x)
    return x[np.concatenate([[True], x[1:] != x[:-1]])] if len(x) else x


def pattern_lists(name: str, config: dict[str, Any], seed: int = 0) -> list[torch.Tensor]:
    """The spec's `pattern`: per-query key index lists of mechanism `name` at config (batch 1)."""
    rows, cols = pattern_of(name, config, seed)
    n = config["seq_len"]
    counts = np.bincount(rows, minlength=n)
    return list(torch.split(torch.as_tensor(cols, dtype=torch.long), counts.tolist()))


def pattern_of(name: str, config: dict[str, Any], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the pattern at config: built with a fixed seed, on a fixed random input for dynamic patterns."""
    from effprof.registry import build

    config = {**config, "batch": 1, "device": "cpu", "dtype": "float32"}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build(name, **config).eval()
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, config["seq_len"], config["d_model"], generator=generator)
    return module.pattern(x)
