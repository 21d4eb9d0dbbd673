"""Synthetic result records with known scaling laws: for benchmarks of fit/report and for property tests.

Each series is one mechanism name (`synthetic_00000`, ...) measured at `sizes` sequence lengths
(256, 512, ...) in forward mode, `repeats` times each. Its metrics follow laws the tests know:

    flops_counted = a·n^p + b·n^q          (exact; p, q per series from `exponents`)
    state_bytes   = c                      (a constant: claimed exponent 0)
    time_s        = 1e-9·flops · e^ε, ε ~ N(0, noise)   with time_samples_s, time_iqr_s and time_blocks
    peak_bytes    = 4·n·d_model (exact)

and each record claims ("flops", "seq_len", p) and ("state_bytes", "seq_len", 0). The records are
schema-valid (`effprof.store.records.read` loads them) and never import torch.

    python3 scripts/synthetic.py -o big.jsonl --series 25000 --sizes 4 --repeats 1
    python3 scripts/synthetic.py -o big.jsonl --series 1 --sizes 4 --repeats 25000
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from effprof.config import MAX_INT
from effprof.store.records import SCHEMA_VERSION

D_MODEL = 64
SAMPLES = 7  # timed blocks per record
MAX_NOISE = 2.0  # log-normal σ: beyond it a "time" is noise, not a law


class SyntheticError(ValueError):
    """An argument that would give no records, or records `fit` cannot read: one line naming it."""


def power_law(n: np.ndarray, p: float, q: float, a: float = 1.0, b: float = 0.0) -> np.ndarray:
    """a·n^p + b·n^q."""
    return a * n**p + b * n**q


def records(series: int = 1, sizes: int = 4, repeats: int = 1, exponents: tuple[float, float] = (2.0, 1.0),
            second: float = 8.0 * D_MODEL, noise: float = 0.03, seed: int = 0, first_size: int = 256
            ) -> Iterator[dict[str, Any]]:
    """series × sizes × repeats records (a generator; the arguments are checked at once, SyntheticError naming
    the bad one). `second` is b/a of the flops law (the size where the terms cross)."""
    _check(series, sizes, repeats, exponents, second, noise, seed, first_size)
    return _records(series, sizes, repeats, exponents, second, noise, seed, first_size)


def _check(series: int, sizes: int, repeats: int, exponents: tuple[float, float], second: float, noise: float, seed: int,
           first_size: int) -> None:
    for name, value in (("series", series), ("sizes", sizes), ("repeats", repeats), ("first_size", first_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise SyntheticError(f"--{name} must be at least 1; got {value}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SyntheticError(f"--seed must be a whole number >= 0; got {seed}")
    largest = first_size * 2 ** (sizes - 1)
    if largest > MAX_INT:  # seq_len is a config key: above MAX_INT no record of it could be read
        most = int(math.log2(MAX_INT / first_size)) + 1
        raise SyntheticError(f"--sizes {sizes} reaches seq_len={largest}, above the largest size effprof reads ({MAX_INT}); "
                             f"accepted: 1 to {most}")
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and 0 <= noise <= MAX_NOISE):
        raise SyntheticError(f"--noise {noise} is not a log-normal σ; accepted: a number from 0 to {MAX_NOISE:g}")
    p, q = exponents
    if not all(math.isfinite(v) for v in (p, q, second)) or second < 0:
        raise SyntheticError(f"exponents {exponents} and second={second} must be finite (second >= 0)")
    peak = float(power_law(np.array([float(largest)]), p, q, 2.0 * D_MODEL, 2.0 * D_MODEL * second)[0])
    if not (math.isfinite(peak) and math.isfinite(1e-9 * peak * math.exp(8 * noise))):
        raise SyntheticError(f"flops at seq_len={largest} overflow ({peak}); use fewer --sizes or smaller exponents")


def _records(series: int, sizes: int, repeats: int, exponents: tuple[float, float], second: float, noise: float, seed: int,
             first_size: int) -> Iterator[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    p, q = exponents
    lengths = first_size * 2 ** np.arange(sizes, dtype=np.int64)
    flops = power_law(lengths.astype(float), p, q, 2.0 * D_MODEL, 2.0 * D_MODEL * second)
    for s in range(series):
        name = f"synthetic_{s:05d}"
        claims = [["flops", "seq_len", p, 0.0], ["state_bytes", "seq_len", 0.0, 0.0]]
        for j, n in enumerate(lengths):
            for _ in range(repeats):
                samples = 1e-9 * flops[j] * np.exp(rng.normal(0.0, noise, SAMPLES))
                quartiles = np.percentile(samples, [25, 75])
                yield {
                    "schema": SCHEMA_VERSION, "mechanism": name, "family": "synthetic", "mode": "forward",
                    "status": "ok", "error": "", "seq_len": int(n), "d_model": D_MODEL, "batch": 1,
                    "flops_counted": float(flops[j]), "flops_analytic": float(flops[j]),
                    "time_s": float(np.median(samples)), "time_iqr_s": float(quartiles[1] - quartiles[0]),
                    "time_reps": SAMPLES, "time_blocks": SAMPLES, "time_samples_s": [float(v) for v in samples],
                    "peak_bytes": int(4 * n * D_MODEL), "state_bytes": 2 * D_MODEL * D_MODEL * 4,
                    "params": 4 * D_MODEL * D_MODEL, "claims": claims,
                }


def write(path: str | Path, **options: Any) -> int:
    """Write records(**options) as JSON Lines to `path` (the options checked before it is opened); returns how many."""
    count = 0
    made = records(**options)
    with open(path, "w", encoding="utf-8") as f:
        for record in made:
            f.write(json.dumps(record) + "\n")
            count += 1
    return count
