"""Records: one typed dict per measured point (`Record`), stored as JSON Lines.

The store is append-only: each record is written as one line, flushed and
fsynced as soon as it is measured, so an interrupted sweep loses nothing that
finished. Reading skips a truncated or corrupt line with a warning naming it,
and converts records of older schemas to this one (`upgrade`).
`to_frame` turns records into a pandas DataFrame for fitting and rendering.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, TypedDict

if TYPE_CHECKING:
    import pandas

SCHEMA_VERSION = 2  # 2: per-kind breakdowns nested in `layer_kinds`; time_samples_s, load_avg_1m, cpu_count added


class LayerKind(TypedDict, total=False):
    """One kind of layer of a stack (attention, ssm, moe, ffn, stack = the glue; attention_kv, conv ... for state)."""

    flops_analytic: float  # FLOPs — the cost model's FLOPs of every layer of this kind (per generated token in decode)
    state_bytes_analytic: float  # bytes — the cost model's decode state held by this kind
    time_s: float  # seconds — median forward time spent in this kind (forward hooks, a separate pass; forward mode)
    state_bytes: int  # bytes — measured decode state held by this kind (Mechanism.state_breakdown)


class Record(TypedDict, total=False):
    """One measured point. Every config key (config.KEYS: batch, seq_len, d_model, impl, ...) is also a
    field, resolved to the value that ran. Figures of decode records are per generated token.
    Absent or None: not measured (e.g. a failed point, or timing switched off)."""

    schema: int  # SCHEMA_VERSION of the effprof that wrote it
    mechanism: str  # registered name
    family: str  # attention, linear_attention, ssm, sparse, moe, hybrid, diffusion
    mode: str  # forward | train | decode
    status: str  # ok | oom | timeout | error | unsupported
    error: str  # one line: why the point failed ("" when ok)
    seed: int  # seed of the weights and inputs
    # FLOPs (a multiply-add is 2 FLOPs; DESIGN.md "Metrics")
    flops_analytic: float  # FLOPs — the spec's cost model
    flops_counted: float  # FLOPs — counted at the op dispatcher
    flops_fvcore: float  # FLOPs — fvcore's count in this convention; None where fvcore cannot trace
    fvcore_note: str  # why fvcore gave no figure or a partial one
    uncounted_ops: str  # comma-separated ops with no FLOP formula (counted as 0)
    custom_ops: str  # comma-separated compiled kernels that ran
    bytes_moved: float  # bytes — read + written by the counted ops
    arithmetic_intensity: float  # FLOP/byte — flops_counted / bytes_moved
    # time (torch.utils.benchmark blocks after warm-up; per generated token in decode)
    time_s: float  # seconds — median per call
    time_iqr_s: float  # seconds — interquartile range per call
    time_reps: int  # calls measured
    time_blocks: int  # timed blocks (each a number of calls)
    time_samples_s: list[float]  # seconds — per-call time of each timed block (the raw samples)
    time_noisy: bool  # IQR / median > 10% (metrics.NOISE_THRESHOLD)
    load_avg_1m: float  # runnable tasks — the machine's 1-minute load average when the point was measured
    cpu_count: int  # cores — logical CPUs of the machine (load_avg_1m above this: busy)
    achieved_flops_per_s: float  # FLOP/s — flops_counted / time_s
    peak_flops_per_s: float  # FLOP/s — the machine's measured matmul peak
    peak_bytes_per_s: float  # bytes/s — the machine's measured copy bandwidth
    fraction_of_peak: float  # achieved_flops_per_s / peak_flops_per_s
    # memory
    peak_bytes: int  # bytes — highest memory held during the call above what was held before it
    activation_bytes: int  # bytes — saved for backward (train)
    state_bytes: int  # bytes — decode state after a prefill of seq_len tokens
    state_bytes_analytic: float  # bytes — the cost model's decode state
    params: int  # parameters
    layer_kinds: dict[str, LayerKind]  # a stack's costs by kind of layer (hybrids)
    analytic_peak_bytes: float  # bytes — the cost model's own memory estimate, where it gives one
    # diagnostics (MoE routing, diffusion samplers), where the mechanism reports them
    aux_loss: float  # load-balancing loss, 1 when balanced
    z_loss: float  # router z-loss
    dropped_fraction: float  # fraction of tokens dropped by capacity
    expert_load: list[float]  # tokens routed to each expert
    load_cv: float  # coefficient of variation of expert_load
    forward_passes: int  # a sampler's denoiser passes per generation
    tokens_per_pass: float  # gen_len / forward_passes
    # what the spec said
    claims: list[list[Any]]  # [metric, axis, exponent, log_power] of each claim applying here
    complexity: dict[str, str]  # the spec's theoretical prefill/train/decode/state costs, as text
    # environment
    torch: str  # torch version
    device_name: str  # CPU model or GPU name
    threads: int  # torch threads used
    effprof: str  # effprof version
    git_sha: str  # effprof's commit, where run from a checkout
    timestamp: str  # UTC, ISO 8601


_KIND_PREFIXES = (  # schema 1 kept per-kind figures as prefixed flat keys
    ("analytic_flops_", "flops_analytic"),
    ("analytic_state_bytes_", "state_bytes_analytic"),
    ("time_s_", "time_s"),
    ("state_bytes_", "state_bytes"),
)


def upgrade(record: dict[str, Any], where: str = "record") -> dict[str, Any]:
    """A record of any schema this effprof reads, converted to SCHEMA_VERSION (a new dict).

    Schema 1 -> 2: the prefixed keys analytic_flops_<kind>, analytic_state_bytes_<kind>,
    time_s_<kind> and state_bytes_<kind> move into layer_kinds[kind]; nothing else changes.
    """
    version = record.get("schema", 1)
    if version == SCHEMA_VERSION:
        return record
    if version != 1:
        raise ResultsError(f"{where}: record schema {version!r} is not supported; this effprof reads schemas 1 to {SCHEMA_VERSION}")
    out: dict[str, Any] = {}
    kinds: dict[str, dict[str, Any]] = {}
    for key, value in record.items():
        prefix = next((p for p in _KIND_PREFIXES if key.startswith(p[0]) and key != "state_bytes_analytic"), None)
        if prefix is None:
            out[key] = value
        elif value is not None:
            kinds.setdefault(key.removeprefix(prefix[0]), {})[prefix[1]] = value
    if kinds:
        out["layer_kinds"] = kinds
    out["schema"] = SCHEMA_VERSION
    return out


class ResultsError(ValueError):
    """A results file that cannot be read: the message names the file and why."""


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def append(path: str | Path, record: dict[str, Any]) -> None:
    """Append one record as a JSON line, flushed and fsynced."""
    line = json.dumps({k: _clean(v) for k, v in record.items()}, default=str)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def read(path: str | Path) -> list[dict[str, Any]]:
    """Every valid record in a JSON Lines file; bad lines are skipped with a warning."""
    path = Path(path)
    if not path.exists():
        raise ResultsError(f"results file {str(path)!r} does not exist")
    if path.is_dir():
        raise ResultsError(f"results file {str(path)!r} is a directory; expected a .jsonl file")
    records = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ResultsError(f"results file {str(path)!r} cannot be read: {e}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            warnings.warn(f"{path}:{number}: skipped a corrupt or truncated line", stacklevel=2)
            continue
        if not isinstance(record, dict) or "mechanism" not in record or "mode" not in record:
            warnings.warn(f"{path}:{number}: skipped a line that is not an effprof record", stacklevel=2)
            continue
        records.append(upgrade(record, f"{path}:{number}"))
    return records


def to_frame(records: Iterable[dict[str, Any]]) -> "pandas.DataFrame":
    import pandas as pd

    return pd.DataFrame(list(records))


def point_identity(record: dict[str, Any]) -> str:
    """Which point a record measured: its mechanism, mode and every config key it carries.

    The one definition of "the same point" for --resume, merge, baseline comparison and check.
    """
    from effprof.config import KEYS

    config = {k: _plain_value(record[k]) for k in KEYS if k in record and not is_missing(record[k])}
    return json.dumps([record.get("mechanism"), record.get("mode"), config], sort_keys=True, default=str)


def is_missing(value: Any) -> bool:
    """A key absent from a record shows as NaN (or None) in a DataFrame row of mixed mechanisms."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain_value(value: Any) -> Any:
    """2.0 in a DataFrame column is the 2 of its record."""
    if hasattr(value, "item"):
        value = value.item()
    return int(value) if isinstance(value, float) and value.is_integer() else value


def merge(groups: Iterable[list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Records of several files in order: exact duplicates dropped, repeated points all kept."""
    seen: set[str] = set()
    points: dict[str, int] = {}
    merged = []
    total = 0
    for group in groups:
        for record in group:
            total += 1
            exact = json.dumps(record, sort_keys=True, default=str)
            if exact in seen:
                continue
            seen.add(exact)
            merged.append(record)
            key = point_identity(record)
            points[key] = points.get(key, 0) + 1
    conflicts = sum(1 for n in points.values() if n > 1)
    return merged, {"records": len(merged), "duplicates": total - len(merged), "conflicts": conflicts}


def write_all(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Write records to a new file atomically (a temporary file renamed into place)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps({k: _clean(v) for k, v in record.items()}, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
