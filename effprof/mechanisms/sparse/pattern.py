"""A mechanism's attention pattern as plain data, for rendering (effprof/render/patterns.py).

    pattern_data("sliding_window", seq_len=1024, window=64)
    -> {"name", "config", "n", "rows", "cols", "pairs", "density", "causal"}

`rows[k], cols[k]` is the k-th attended (query, key) pair (numpy int64, sorted by query then
key); `density` is pairs / (n·(n + 1)/2), the fraction of what causal softmax attention computes
(pairs / n² for a non-causal mechanism). The pattern is the spec's `pattern(config)`: per-query
key index lists (or a boolean (n, n) mask), built from the fast form's plan, so nothing n×n is
allocated for the sparse mechanisms; dynamic patterns use a fixed-seed random input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from effprof.config import ConfigError, resolve_config
from effprof.registry import get_spec, list_mechanisms

MAX_SEQ_LEN = 1 << 15


def with_patterns() -> list[str]:
    """Mechanisms whose spec exposes an attention pattern."""
    return [name for name in list_mechanisms() if get_spec(name).pattern is not None]


def coordinates(pattern: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-query key lists or a boolean (n, n) mask -> (rows, cols), sorted, duplicates removed."""
    if isinstance(pattern, (list, tuple)):
        cols = [np.asarray(keys, dtype=np.int64).reshape(-1) for keys in pattern]
        rows = np.repeat(np.arange(len(cols), dtype=np.int64), [len(c) for c in cols])
        cols = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    else:
        mask = np.asarray(pattern.cpu() if hasattr(pattern, "cpu") else pattern, dtype=bool)
        rows, cols = (a.astype(np.int64) for a in np.nonzero(mask))
    pairs = np.sort(rows * n + cols)
    pairs = pairs[np.concatenate([[True], pairs[1:] != pairs[:-1]])] if len(pairs) else pairs
    return pairs // n, pairs % n


def pattern_data(name: str, **config: Any) -> dict[str, Any]:
    """The attention pattern of mechanism `name` at `config` (CLI strings accepted), as plain data."""
    spec = get_spec(name)
    if spec.pattern is None:
        raise ConfigError(f"{name} exposes no attention pattern; accepted: {', '.join(with_patterns())}")
    resolved = resolve_config(spec, config)
    n = resolved["seq_len"]
    if n > MAX_SEQ_LEN:
        raise ConfigError(f"seq_len={n} is too long to draw a pattern; at most {MAX_SEQ_LEN}")
    rows, cols = coordinates(spec.pattern(resolved), n)
    total = n * (n + 1) / 2 if spec.causal else n * n
    return {
        "name": name,
        "config": {k: v for k, v in resolved.items() if k not in ("device", "dtype")},
        "n": n,
        "rows": rows,
        "cols": cols,
        "pairs": len(rows),
        "density": float(len(rows) / total),
        "causal": spec.causal,
    }
